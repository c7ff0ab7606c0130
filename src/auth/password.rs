//! Password hashing: Argon2id in PHC strings, run on the blocking pool behind a semaphore so a login
//! storm can neither stall the async runtime nor exhaust memory (each hash holds ~19 MiB). Unknown
//! accounts are verified against a dummy hash so they take as long as real ones. A hash made with
//! weaker parameters than the current ones is reported so the caller can re-hash it on login.

use std::sync::Arc;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// The production parameters: at least OWASP's m=19456 KiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    dummy: Arc<String>,
    permits: Arc<Semaphore>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// The stored hash uses other parameters than the current ones.
    pub needs_rehash: bool,
}

impl Hasher {
    pub fn new() -> anyhow::Result<Self> {
        Self::with_params(MEMORY_KIB, ITERATIONS, PARALLELISM)
    }

    pub fn with_params(m: u32, t: u32, p: u32) -> anyhow::Result<Self> {
        let params = Params::new(m, t, p, None).map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
        let salt = SaltString::generate(&mut OsRng);
        let dummy = argon(&params)
            .hash_password(b"dummy password for unknown accounts", &salt)
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
            .to_string();
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
        Ok(Self {
            params,
            dummy: Arc::new(dummy),
            permits: Arc::new(Semaphore::new(slots)),
        })
    }

    /// Hashes a password into a PHC string.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let params = self.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon(&params)
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
        })
        .await?
    }

    /// Verifies a password against a stored hash, or against the dummy hash when there is none
    /// (unknown account, or no password set yet): then the answer is always "no", in the same time.
    #[tracing::instrument(skip_all)]
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<&str>,
    ) -> anyhow::Result<Verified> {
        let _permit = self.permits.acquire().await?;
        let real = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy.as_str().to_owned(), str::to_owned);
        let password = password.clone();
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                return Verified {
                    ok: false,
                    needs_rehash: false,
                };
            };
            let ok = argon(&params)
                .verify_password(password.expose_secret().as_bytes(), &parsed)
                .is_ok();
            Verified {
                ok: ok && real,
                needs_rehash: ok && real && !matches_params(&parsed, &params),
            }
        })
        .await
        .map_err(Into::into)
    }
}

fn argon(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn matches_params(hash: &PasswordHash<'_>, current: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(0x13)
        && stored.m_cost() >= current.m_cost()
        && stored.t_cost() >= current.t_cost()
        && stored.p_cost() == current.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_weak_parameters_ask_for_a_rehash() {
        let weak = Hasher::with_params(8192, 1, 1).unwrap();
        let strong = Hasher::new().unwrap();
        let pw = SecretString::from("a long enough passphrase");
        let old = weak.hash(&pw).await.unwrap();
        assert!(old.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        let v = strong.verify(&pw, Some(&old)).await.unwrap();
        assert!(v.ok && v.needs_rehash);

        let new = strong.hash(&pw).await.unwrap();
        assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let v = strong.verify(&pw, Some(&new)).await.unwrap();
        assert!(v.ok && !v.needs_rehash);

        let wrong = SecretString::from("another long passphrase");
        assert!(!strong.verify(&wrong, Some(&new)).await.unwrap().ok);
        assert!(!strong.verify(&pw, None).await.unwrap().ok);
        assert!(
            !strong
                .verify(&pw, Some("not a phc string"))
                .await
                .unwrap()
                .ok
        );
    }
}
