//! Password hashing: Argon2id in PHC strings, run on a dedicated low-priority thread pool
//! ([`super::hash_pool`]) so a login storm can neither stall the async runtime nor slow every
//! other request, behind a semaphore that bounds the queue. Each hash needs ~19 MiB of work
//! memory; it comes from a per-thread buffer that is reused, not from a fresh allocation, because
//! the allocator keeps freed 19 MiB chunks in per-thread arenas and a login storm would otherwise
//! grow the process to gigabytes. Unknown accounts are verified against a dummy hash so they take
//! as long as real ones. A hash made with weaker parameters than the current ones is reported so
//! the caller can re-hash it on login.

use std::sync::Arc;

use std::cell::RefCell;

use argon2::password_hash::{rand_core::OsRng, Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use super::hash_pool::HashPool;

/// The production parameters: at least OWASP's m=19456 KiB, t=2, p=1.
pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    dummy: Arc<String>,
    permits: Arc<Semaphore>,
    pool: Arc<HashPool>,
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
        // On a short-lived thread, so its 19 MiB of work memory is freed when it ends.
        let dummy = std::thread::scope(|s| {
            s.spawn(|| phc_hash(&params, b"dummy password for unknown accounts"))
                .join()
                .map_err(|_| anyhow::anyhow!("the dummy hash thread panicked"))
        })??;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            params,
            dummy: Arc::new(dummy),
            // Bounds the queue (and the memory of waiting requests) in front of the pool.
            permits: Arc::new(Semaphore::new(cores * 8)),
            pool: Arc::new(HashPool::new(cores)?),
        })
    }

    /// Hashes a password into a PHC string.
    #[tracing::instrument(skip_all)]
    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let params = self.params.clone();
        let password = password.clone();
        self.pool
            .run(move || phc_hash(&params, password.expose_secret().as_bytes()))
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
        self.pool
            .run(move || {
                let Ok(parsed) = PasswordHash::new(&stored) else {
                    return Verified {
                        ok: false,
                        needs_rehash: false,
                    };
                };
                let ok = phc_verify(&parsed, password.expose_secret().as_bytes());
                Verified {
                    ok: ok && real,
                    needs_rehash: ok && real && !matches_params(&parsed, &params),
                }
            })
            .await
    }
}

thread_local! {
    /// Argon2 work memory of this hashing thread, reused across hashes.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs Argon2id with this thread's reusable work memory.
fn compute(params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = params.block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
}

/// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` with a fresh 128-bit salt.
fn phc_hash(params: &Params, password: &[u8]) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; 32];
    compute(params, password, salt_raw, &mut out)?;
    let output = Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        salt.as_str(),
        output
    ))
}

/// Recomputes a stored Argon2id hash with its own parameters and compares in constant time.
fn phc_verify(stored: &PasswordHash<'_>, password: &[u8]) -> bool {
    if stored.algorithm.as_str() != "argon2id" || stored.version != Some(0x13) {
        return false;
    }
    let (Some(salt), Some(expected), Ok(params)) =
        (stored.salt, stored.hash, Params::try_from(stored))
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    if compute(&params, password, salt_raw, &mut out).is_err() {
        return false;
    }
    out.iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
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

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(8192, 1, 1, None).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        // Ours verifies with the reference implementation …
        let ours = phc_hash(&params, b"correct horse").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
        assert!(reference.verify_password(b"wrong horse", &parsed).is_err());
        // … and the reference's verifies with ours.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = reference
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&theirs).unwrap();
        assert!(phc_verify(&parsed, b"correct horse"));
        assert!(!phc_verify(&parsed, b"wrong horse"));
    }
}
