//! Access tokens: EdDSA-signed JWTs with `kid`, `iss`, `aud`, `sub`, `roles`, `jti`, `iat`, `exp`,
//! plus `sid` (the session, i.e. refresh-token family) and `ver` (the user's auth version, compared
//! against the revocation cache). Verification accepts only EdDSA and only keys of the configured key
//! ring, looked up by `kid`; tokens carrying `jwk`, `jku`, `x5u` or `x5c` headers are refused outright.
//! Verified signatures are cached by the token's SHA-256 so hot paths skip the Ed25519 check; expiry
//! and revocation are still checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keys::SigningKey;
use super::roles::Role;

pub const AUDIENCE: &str = "ims";
/// Tokens longer than this are not even parsed.
const MAX_TOKEN_LEN: usize = 4096;
const CACHE_CAPACITY: usize = 20_000;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub roles: Vec<Role>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub sid: String,
    pub ver: i64,
}

/// Why a token was refused (for metrics and logs; clients only ever see `401 invalid_token`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    Algorithm,
    ForbiddenHeader,
    UnknownKey,
    Signature,
    Expired,
    Claims,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::Algorithm => "algorithm",
            Rejection::ForbiddenHeader => "forbidden_header",
            Rejection::UnknownKey => "unknown_key",
            Rejection::Signature => "signature",
            Rejection::Expired => "expired",
            Rejection::Claims => "claims",
        }
    }
}

struct KeyRing {
    /// (created_at, kid, key), newest first. The signer is the newest key already active, so a
    /// key set rolled out to every instance before its `created_at` switches them all at once.
    signers: Vec<(i64, String, EncodingKey)>,
    /// Retired keys (dropped from the set), newest first: they sign only while no key of the set
    /// is active yet, so a set whose new key starts later never leaves a gap.
    fallback: Vec<(i64, String, EncodingKey)>,
    verifiers: HashMap<String, DecodingKey>,
    jwks: serde_json::Value,
}

pub struct Tokens {
    ring: RwLock<Arc<KeyRing>>,
    issuer: String,
    ttl: Duration,
    verified: Mutex<HashMap<[u8; 32], Claims>>,
}

impl Tokens {
    /// `keys` must be sorted newest first (as [`super::keys::parse_key_set`] returns them). The
    /// newest key whose `created_at` has passed signs; every key verifies.
    pub fn new(keys: &[SigningKey], issuer: String, ttl: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            ring: RwLock::new(Arc::new(key_ring(keys)?)),
            issuer,
            ttl,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the key ring (rotation); cached verifications are dropped.
    pub fn rotate(&self, keys: &[SigningKey]) -> anyhow::Result<()> {
        self.rotate_with(keys, &[])
    }

    /// Replaces the key ring: `keys` sign and verify, `retired` keys (removed from the set while
    /// tokens they signed may still be valid) only verify, and both are published.
    pub fn rotate_with(&self, keys: &[SigningKey], retired: &[SigningKey]) -> anyhow::Result<()> {
        let ring = Arc::new(key_ring_with(keys, retired)?);
        if let Ok(mut slot) = self.ring.write() {
            *slot = ring;
        }
        if let Ok(mut cache) = self.verified.lock() {
            cache.clear();
        }
        Ok(())
    }

    fn current(&self) -> Arc<KeyRing> {
        match self.ring.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }

    /// Signs an access token; returns it with its claims.
    pub fn issue(
        &self,
        user_id: &str,
        roles: &[Role],
        session_id: &str,
        auth_version: i64,
    ) -> anyhow::Result<(String, Claims)> {
        let ring = self.current();
        let now = crate::clock::now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: user_id.into(),
            roles: roles.to_vec(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            sid: session_id.into(),
            ver: auth_version,
        };
        let active = |(created, _, _): &&(i64, String, EncodingKey)| *created <= now;
        let (_, kid, key) = ring
            .signers
            .iter()
            .find(active)
            .or_else(|| ring.fallback.iter().find(active))
            .or_else(|| ring.signers.last())
            .ok_or_else(|| anyhow::anyhow!("no signing keys"))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, key)?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm, key, issuer, audience and expiry. Revocation is checked by the
    /// caller against [`super::revocation::Revocations`].
    pub fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(digest.as_ref());
        let cached = self
            .verified
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned());
        let claims = match cached {
            Some(claims) => claims,
            None => {
                let claims = self.verify_signature(token)?;
                if let Ok(mut cache) = self.verified.lock() {
                    if cache.len() >= CACHE_CAPACITY {
                        let now = crate::clock::now();
                        cache.retain(|_, c| c.exp > now);
                        if cache.len() >= CACHE_CAPACITY {
                            cache.clear();
                        }
                    }
                    cache.insert(key, claims.clone());
                }
                claims
            }
        };
        if claims.exp <= crate::clock::now() {
            return Err(Rejection::Expired);
        }
        Ok(claims)
    }

    fn verify_signature(&self, token: &str) -> Result<Claims, Rejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(Rejection::Algorithm);
        }
        if header.jwk.is_some()
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(Rejection::ForbiddenHeader);
        }
        let ring = self.current();
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;
        let key = ring.verifiers.get(&kid).ok_or(Rejection::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Rejection::Expired,
                jsonwebtoken::errors::ErrorKind::InvalidSignature => Rejection::Signature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                jsonwebtoken::errors::ErrorKind::InvalidIssuer
                | jsonwebtoken::errors::ErrorKind::InvalidAudience
                | jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(_) => Rejection::Claims,
                _ => Rejection::Malformed,
            })
    }
}

fn key_ring(keys: &[SigningKey]) -> anyhow::Result<KeyRing> {
    key_ring_with(keys, &[])
}

fn key_ring_with(keys: &[SigningKey], retired: &[SigningKey]) -> anyhow::Result<KeyRing> {
    if keys.is_empty() {
        anyhow::bail!("no signing keys");
    }
    let verifying = || keys.iter().chain(retired);
    let signing = |set: &[SigningKey]| {
        let mut v: Vec<(i64, String, EncodingKey)> = set
            .iter()
            .map(|k| {
                (
                    k.created_at,
                    k.kid.clone(),
                    EncodingKey::from_ed_der(&k.pkcs8),
                )
            })
            .collect();
        v.sort_by_key(|(created, _, _)| std::cmp::Reverse(*created));
        v
    };
    Ok(KeyRing {
        signers: signing(keys),
        fallback: signing(retired),
        verifiers: verifying()
            .map(|k| (k.kid.clone(), DecodingKey::from_ed_der(&k.public)))
            .collect(),
        jwks: serde_json::json!({ "keys": verifying().map(SigningKey::jwk).collect::<Vec<_>>() }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::keys::{generate_key_set, parse_key_set};
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn tokens(keys: &[SigningKey]) -> Tokens {
        Tokens::new(keys, "http://ims.test/".into(), Duration::from_secs(900)).unwrap()
    }

    fn b64(v: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    }

    #[test]
    fn issued_tokens_verify_and_carry_the_contract_claims() {
        let keys = parse_key_set(&generate_key_set(None).unwrap()).unwrap();
        let t = tokens(&keys);
        let (jwt, claims) = t.issue("u1", &[Role::Admin], "s1", 3).unwrap();
        let got = t.verify(&jwt).unwrap();
        assert_eq!(got, claims);
        assert_eq!(got.exp - got.iat, 900);
        let header = jsonwebtoken::decode_header(&jwt).unwrap();
        assert_eq!(header.kid.as_deref(), Some(keys[0].kid.as_str()));
    }

    #[test]
    fn rotation_keeps_old_tokens_valid_and_signs_with_the_new_key() {
        let one = generate_key_set(None).unwrap();
        let t = tokens(&parse_key_set(&one).unwrap());
        let (old, _) = t.issue("u1", &[], "s1", 1).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        let both = parse_key_set(&generate_key_set(Some(&one)).unwrap()).unwrap();
        t.rotate(&both).unwrap();
        assert!(t.verify(&old).is_ok());
        let (new, _) = t.issue("u1", &[], "s1", 1).unwrap();
        let kid = jsonwebtoken::decode_header(&new).unwrap().kid.unwrap();
        assert_eq!(kid, both[0].kid);
        // Retiring the old key retires its tokens.
        t.rotate(&both[..1]).unwrap();
        assert_eq!(t.verify(&old), Err(Rejection::UnknownKey));
    }

    #[test]
    fn a_key_dated_in_the_future_verifies_but_does_not_sign_yet() {
        let one = generate_key_set(None).unwrap();
        let old_kid = parse_key_set(&one).unwrap()[0].kid.clone();
        let later = super::super::keys::generate_key_set_at(Some(&one), crate::clock::now() + 3600)
            .unwrap();
        let both = parse_key_set(&later).unwrap();
        let t = tokens(&both);
        let (jwt, _) = t.issue("u1", &[], "s1", 1).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap(),
            old_kid
        );
        // Another instance already signing with the new key is accepted here.
        let only_new = tokens(&both[..1]);
        let (from_new, _) = only_new.issue("u1", &[], "s1", 1).unwrap();
        assert!(t.verify(&from_new).is_ok());
        assert_eq!(t.jwks()["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn forged_tokens_are_refused() {
        let keys = parse_key_set(&generate_key_set(None).unwrap()).unwrap();
        let t = tokens(&keys);
        let (jwt, claims) = t.issue("u1", &[Role::LineLeader], "s1", 1).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let mut elevated = serde_json::to_value(&claims).unwrap();
        elevated["roles"] = serde_json::json!(["ADMIN"]);
        let kid = keys[0].kid.clone();

        // alg none
        let none = format!(
            "{}.{}.",
            b64(&serde_json::json!({"alg":"none","kid":kid})),
            b64(&elevated)
        );
        assert!(t.verify(&none).is_err());
        // HMAC keyed with the public key
        let hs = jsonwebtoken::encode(
            &Header {
                kid: Some(kid.clone()),
                ..Header::new(Algorithm::HS256)
            },
            &elevated,
            &EncodingKey::from_secret(&keys[0].public),
        )
        .unwrap();
        assert_eq!(t.verify(&hs), Err(Rejection::Algorithm));
        // Tampered payload with the original signature
        let tampered = format!("{}.{}.{}", parts[0], b64(&elevated), parts[2]);
        assert_eq!(t.verify(&tampered), Err(Rejection::Signature));
        // Signed by an attacker's key, advertised in an embedded jwk / jku header
        let attacker = parse_key_set(&generate_key_set(None).unwrap()).unwrap();
        for extra in ["jwk", "jku", "x5u"] {
            let mut header = serde_json::json!({"alg":"EdDSA","kid":kid,"typ":"JWT"});
            header[extra] = match extra {
                "jwk" => attacker[0].jwk(),
                _ => serde_json::json!("https://attacker.example/keys"),
            };
            let signing_input = format!("{}.{}", b64(&header), b64(&elevated));
            let pair =
                ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&attacker[0].pkcs8)
                    .unwrap();
            let sig = URL_SAFE_NO_PAD.encode(pair.sign(signing_input.as_bytes()).as_ref());
            assert_eq!(
                t.verify(&format!("{signing_input}.{sig}")),
                Err(Rejection::ForbiddenHeader)
            );
        }
        // An attacker's key under an unknown kid
        let other = tokens(&attacker);
        let (foreign, _) = other.issue("u1", &[Role::Admin], "s1", 1).unwrap();
        assert_eq!(t.verify(&foreign), Err(Rejection::UnknownKey));
        // Garbage
        assert!(t.verify("").is_err());
        assert!(t.verify("a.b.c").is_err());
        assert!(t.verify(&"x".repeat(5000)).is_err());
    }

    #[test]
    fn other_issuers_and_expired_tokens_are_refused() {
        let keys = parse_key_set(&generate_key_set(None).unwrap()).unwrap();
        let ours = tokens(&keys);
        let theirs =
            Tokens::new(&keys, "http://elsewhere/".into(), Duration::from_secs(900)).unwrap();
        let (jwt, _) = theirs.issue("u1", &[], "s1", 1).unwrap();
        assert_eq!(ours.verify(&jwt), Err(Rejection::Claims));
        let short = Tokens::new(&keys, "http://ims.test/".into(), Duration::from_secs(0)).unwrap();
        let (expired, _) = short.issue("u1", &[], "s1", 1).unwrap();
        assert!(short.verify(&expired).is_err());
    }
}
