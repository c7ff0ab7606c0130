//! Signing keys and other generated key material. The `JWT_SIGNING_KEYS` secret is a JSON document
//! `{"keys":[{"kid","alg":"EdDSA","created_at","private_key"}]}` (private key: base64 PKCS#8); the
//! newest key whose `created_at` has passed signs, every listed key verifies, so a key is rotated by
//! adding a new one dated a little in the future (`ims keys generate` dates it one hour ahead),
//! rolling the set out to every instance before that time, and removing the old key once the
//! access-token lifetime has passed after it. When the secret is not configured (embedded mode),
//! the key set is generated at first start into `$IMS_DATA_DIR/jwt-signing-keys.json`, and the OTP
//! pepper into `$IMS_DATA_DIR/otp-pepper`, both created owner-only (0600) in an owner-only directory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::secrets::{Resolved, Source};

pub const SIGNING_KEYS_FILE: &str = "jwt-signing-keys.json";
pub const OTP_PEPPER_FILE: &str = "otp-pepper";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeySetDoc {
    keys: Vec<KeyDoc>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyDoc {
    kid: String,
    alg: String,
    created_at: i64,
    private_key: String,
}

/// One Ed25519 key: the private half for signing, the public half for verifying and the JWKS.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub created_at: i64,
    pub pkcs8: Vec<u8>,
    pub public: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("pkcs8", &"[redacted]")
            .finish()
    }
}

impl SigningKey {
    /// The public key as a JWK.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig",
            "kid": self.kid, "x": URL_SAFE_NO_PAD.encode(&self.public),
        })
    }
}

/// Parses a key-set document; errors never include key material.
pub fn parse_key_set(doc: &SecretString) -> anyhow::Result<Vec<SigningKey>> {
    let parsed: KeySetDoc = serde_json::from_str(doc.expose_secret()).map_err(|_| {
        anyhow::anyhow!(
            "secret JWT_SIGNING_KEYS is not a JSON key set {{\"keys\":[{{\"kid\",\"alg\",\"created_at\",\"private_key\"}}]}}"
        )
    })?;
    if parsed.keys.is_empty() {
        anyhow::bail!("secret JWT_SIGNING_KEYS holds no keys");
    }
    let mut keys = Vec::with_capacity(parsed.keys.len());
    for k in parsed.keys {
        if k.alg != "EdDSA" {
            anyhow::bail!(
                "secret JWT_SIGNING_KEYS: key {} has alg {}; only EdDSA is accepted",
                k.kid,
                k.alg
            );
        }
        if k.kid.is_empty() || k.kid.len() > 64 || keys.iter().any(|o: &SigningKey| o.kid == k.kid)
        {
            anyhow::bail!("secret JWT_SIGNING_KEYS: every kid must be unique and 1-64 characters");
        }
        let pkcs8 = STANDARD.decode(k.private_key.trim()).map_err(|_| {
            anyhow::anyhow!(
                "secret JWT_SIGNING_KEYS: key {} is not base64 PKCS#8",
                k.kid
            )
        })?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).map_err(|_| {
            anyhow::anyhow!(
                "secret JWT_SIGNING_KEYS: key {} is not an Ed25519 PKCS#8 key",
                k.kid
            )
        })?;
        keys.push(SigningKey {
            kid: k.kid,
            created_at: k.created_at,
            public: pair.public_key().as_ref().to_vec(),
            pkcs8,
        });
    }
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    Ok(keys)
}

/// A new key-set document with one fresh key (used for the embedded mode and `ims keys generate`).
pub fn generate_key_set(existing: Option<&SecretString>) -> anyhow::Result<SecretString> {
    generate_key_set_at(existing, crate::clock::now())
}

/// Like [`generate_key_set`], with the new key becoming the signer at `active_from` (Unix
/// seconds): roll the set out to every instance before then, and they all switch together.
pub fn generate_key_set_at(
    existing: Option<&SecretString>,
    active_from: i64,
) -> anyhow::Result<SecretString> {
    let mut doc = match existing {
        Some(text) => serde_json::from_str::<KeySetDoc>(text.expose_secret())
            .map_err(|_| anyhow::anyhow!("the existing key set is not valid JSON"))?,
        None => KeySetDoc { keys: Vec::new() },
    };
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("could not generate an Ed25519 key"))?;
    let now = active_from;
    let suffix: [u8; 4] = super::random_bytes()?;
    doc.keys.push(KeyDoc {
        kid: format!(
            "{}-{}",
            crate::clock::rfc3339(now).get(..10).unwrap_or("key"),
            URL_SAFE_NO_PAD.encode(suffix)
        ),
        alg: "EdDSA".into(),
        created_at: now,
        private_key: STANDARD.encode(pkcs8.as_ref()),
    });
    Ok(SecretString::from(serde_json::to_string_pretty(&doc)?))
}

/// Returns the configured secret, or reads (first creating) the named file in the data directory.
pub fn configured_or_generated(
    configured: Option<&Resolved>,
    data_dir: &Path,
    file: &str,
    generate: impl FnOnce() -> anyhow::Result<SecretString>,
) -> anyhow::Result<(SecretString, Source)> {
    if let Some(r) = configured {
        return Ok((r.value.clone(), r.source.clone()));
    }
    let path = data_dir.join(file);
    ensure_private_dir(data_dir)?;
    match fs::read_to_string(&path) {
        Ok(text) => {
            check_private(&path)?;
            Ok((SecretString::from(text), Source::Generated(path)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let value = generate()?;
            write_private(&path, value.expose_secret())?;
            tracing::info!(file = %path.display(), "generated key material on first start");
            Ok((value, Source::Generated(path)))
        }
        Err(e) => Err(anyhow::anyhow!(
            "cannot read {}: {}",
            path.display(),
            e.kind()
        )),
    }
}

/// A fresh 256-bit pepper, base64.
pub fn generate_pepper() -> anyhow::Result<SecretString> {
    Ok(SecretString::from(
        STANDARD.encode(super::random_bytes::<32>()?),
    ))
}

/// Creates the directory (and parents) and makes it owner-only.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {}", dir.display(), e.kind()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
    }
    Ok(())
}

/// Writes a new file readable only by its owner; never overwrites (a concurrent first start loses
/// the race cleanly and reads the winner's file).
fn write_private(path: &PathBuf, contents: &str) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {}", path.display(), e.kind()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

fn check_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{} is readable by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_owner_only_and_reused() {
        let dir = std::env::temp_dir().join(format!("ims-keys-{}", uuid::Uuid::new_v4()));
        let (first, source) =
            configured_or_generated(None, &dir, SIGNING_KEYS_FILE, || generate_key_set(None))
                .unwrap();
        assert!(matches!(source, Source::Generated(_)));
        let (again, _) =
            configured_or_generated(None, &dir, SIGNING_KEYS_FILE, || panic!("must reuse"))
                .unwrap();
        assert_eq!(first.expose_secret(), again.expose_secret());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(SIGNING_KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dir_mode = fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(dir_mode & 0o077, 0);
        }
        assert_eq!(parse_key_set(&first).unwrap().len(), 1);
    }

    #[test]
    fn rotation_adds_a_newer_key_that_signs_first() {
        let one = generate_key_set(None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let two = generate_key_set(Some(&one)).unwrap();
        let keys = parse_key_set(&two).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].created_at > keys[1].created_at);
        assert!(!format!("{:?}", keys[0]).contains(&STANDARD.encode(&keys[0].pkcs8)));
    }

    #[test]
    fn malformed_sets_are_refused_without_echoing_them() {
        let bad = SecretString::from("{\"keys\":[{\"kid\":\"a\",\"alg\":\"EdDSA\",\"created_at\":1,\"private_key\":\"c2VjcmV0LWNhbmFyeQ==\"}]}");
        let err = parse_key_set(&bad).err().unwrap().to_string();
        assert!(!err.contains("c2VjcmV0LWNhbmFyeQ"));
        assert!(parse_key_set(&SecretString::from("{\"keys\":[]}")).is_err());
        assert!(parse_key_set(&SecretString::from("secret-canary")).is_err());
    }
}
