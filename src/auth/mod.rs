//! Authentication and authorisation: password hashing and policy, signing keys and access tokens,
//! refresh-token sessions, an external identity provider's tokens (OIDC), login throttling, the revocation cache that makes disables and role
//! changes reach every instance within seconds, roles, and the audit trail. HTTP handlers live in
//! `crate::http`; this module knows nothing of requests and responses.

pub mod audit;
pub mod hash_pool;
pub mod keys;
pub mod oidc;
pub mod otp;
pub mod password;
pub mod password_policy;
pub mod revocation;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use ring::rand::{SecureRandom, SystemRandom};

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
    Ok(buf)
}

/// Lower-case hex SHA-256 of the input.
pub fn sha256_hex(input: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
