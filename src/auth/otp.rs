//! One-time codes and reset tokens. A code is six digits drawn from the OS CSPRNG without modulo
//! bias, bound to one account and one purpose, valid ten minutes, single use, dead after five wrong
//! tries, replaced by a newer one of the same purpose. Only HMAC-SHA256(OTP_PEPPER, purpose, user,
//! code) is stored, with the expiry and the try count; the plaintext exists in memory, in the
//! encrypted outbox payload until the mail is sent, and in the mail itself. A verified
//! `password_reset` code yields a reset token: 256 random bits, stored as SHA-256, valid fifteen
//! minutes, consumed by the reset.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};
use sqlx::{Any, Transaction};

pub const CODE_TTL_SECS: i64 = 10 * 60;
pub const MAX_WRONG_TRIES: i64 = 5;
pub const RESET_TOKEN_TTL_SECS: i64 = 15 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    PasswordReset,
    EmailVerification,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::PasswordReset => "password_reset",
            Purpose::EmailVerification => "email_verification",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "password_reset" => Some(Purpose::PasswordReset),
            "email_verification" => Some(Purpose::EmailVerification),
            _ => None,
        }
    }
}

/// A code in clear; `Debug` is redacted.
pub struct Code(String);

impl Code {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Code([redacted])")
    }
}

/// Six uniformly distributed digits: rejection sampling keeps `u32 % 10^6` unbiased.
pub fn generate_code() -> anyhow::Result<Code> {
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let n = u32::from_le_bytes(super::random_bytes::<4>()?);
        if n < LIMIT {
            return Ok(Code(format!("{:06}", n % 1_000_000)));
        }
    }
}

/// The keyed hashes of codes.
#[derive(Clone)]
pub struct CodeHasher {
    key: hmac::Key,
}

impl CodeHasher {
    pub fn new(pepper: &SecretString) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper.expose_secret().as_bytes()),
        }
    }

    fn message(purpose: Purpose, user_id: &str, code: &str) -> String {
        format!("ims-otp-v1\0{}\0{user_id}\0{code}", purpose.as_str())
    }

    pub fn hash(&self, purpose: Purpose, user_id: &str, code: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(
            &self.key,
            Self::message(purpose, user_id, code).as_bytes(),
        ))
    }

    /// Constant-time comparison against a stored hash.
    pub fn matches(&self, purpose: Purpose, user_id: &str, code: &str, stored: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(stored) else {
            return false;
        };
        hmac::verify(
            &self.key,
            Self::message(purpose, user_id, code).as_bytes(),
            &tag,
        )
        .is_ok()
    }
}

/// Issues a new code for the user and purpose, replacing any previous one.
pub async fn issue(
    tx: &mut Transaction<'static, Any>,
    hasher: &CodeHasher,
    user_id: &str,
    purpose: Purpose,
) -> anyhow::Result<Code> {
    let code = generate_code()?;
    let now = crate::clock::now();
    sqlx::query(
        "INSERT INTO one_time_codes (user_id, purpose, code_hash, expires_at, attempts, created_at)
         VALUES ($1, $2, $3, $4, 0, $5)
         ON CONFLICT (user_id, purpose) DO UPDATE SET
           code_hash = $3, expires_at = $4, attempts = 0, created_at = $5",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(hasher.hash(purpose, user_id, code.expose()))
    .bind(now + CODE_TTL_SECS)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(code)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Valid,
    /// Wrong, expired, used up or absent: callers answer all of these the same way.
    Invalid,
}

/// Checks a code. Every check first claims one of the code's tries in a single conditional
/// `UPDATE`, so parallel guesses cannot exceed the limit; a match then deletes the code, and only
/// the request whose delete took effect wins, so a code is used at most once.
pub async fn verify(
    tx: &mut Transaction<'static, Any>,
    hasher: &CodeHasher,
    user_id: &str,
    purpose: Purpose,
    code: &str,
) -> Result<Check, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "UPDATE one_time_codes SET attempts = attempts + 1
         WHERE user_id = $1 AND purpose = $2 AND attempts < $3 AND expires_at > $4
         RETURNING code_hash",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(MAX_WRONG_TRIES)
    .bind(crate::clock::now())
    .fetch_optional(&mut **tx)
    .await?;
    let Some((stored,)) = row else {
        // Same work as a real check, so timing does not tell "no code" from "wrong code".
        let _ = hasher.matches(purpose, user_id, code, "");
        return Ok(Check::Invalid);
    };
    if !hasher.matches(purpose, user_id, code, &stored) {
        return Ok(Check::Invalid);
    }
    let used = sqlx::query(
        "DELETE FROM one_time_codes WHERE user_id = $1 AND purpose = $2 AND code_hash = $3",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(&stored)
    .execute(&mut **tx)
    .await?;
    Ok(if used.rows_affected() == 1 {
        Check::Valid
    } else {
        Check::Invalid
    })
}

/// Ends every outstanding code and reset token of the user (after a password change or reset).
pub async fn revoke_all(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM one_time_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE reset_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(crate::clock::now())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A reset token in clear; `Debug` is redacted.
pub struct ResetToken(String);

impl ResetToken {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ResetToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetToken([redacted])")
    }
}

pub async fn issue_reset_token(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> anyhow::Result<ResetToken> {
    let token = ResetToken(format!(
        "imsp_{}",
        URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()?)
    ));
    sqlx::query("INSERT INTO reset_tokens (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(super::sha256_hex(token.expose().as_bytes()))
        .bind(user_id)
        .bind(crate::clock::now() + RESET_TOKEN_TTL_SECS)
        .execute(&mut **tx)
        .await?;
    Ok(token)
}

/// The user a live, unused reset token belongs to (without using it up).
pub async fn reset_token_owner(
    tx: &mut Transaction<'static, Any>,
    token: &str,
) -> Result<Option<String>, sqlx::Error> {
    if token.len() > 200 {
        return Ok(None);
    }
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT user_id FROM reset_tokens WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(super::sha256_hex(token.as_bytes()))
    .bind(crate::clock::now())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|(u,)| u))
}

/// Uses the token up; false when another request did first.
pub async fn consume_reset_token(
    tx: &mut Transaction<'static, Any>,
    token: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE reset_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
    )
    .bind(super::sha256_hex(token.as_bytes()))
    .bind(crate::clock::now())
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_roughly_uniform() {
        let mut first_digit = [0u32; 10];
        for _ in 0..20_000 {
            let c = generate_code().unwrap();
            assert_eq!(c.expose().len(), 6);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
            first_digit[(c.expose().as_bytes()[0] - b'0') as usize] += 1;
        }
        // Each leading digit should appear ~2,000 times; a biased generator would skew this.
        assert!(
            first_digit.iter().all(|n| (1_700..2_300).contains(n)),
            "{first_digit:?}"
        );
        assert!(!format!("{:?}", generate_code().unwrap())
            .chars()
            .any(|c| c.is_ascii_digit()));
    }

    #[test]
    fn hashes_are_keyed_and_bound_to_user_and_purpose() {
        let a = CodeHasher::new(&SecretString::from("pepper-one"));
        let b = CodeHasher::new(&SecretString::from("pepper-two"));
        let h = a.hash(Purpose::PasswordReset, "u1", "123456");
        assert!(a.matches(Purpose::PasswordReset, "u1", "123456", &h));
        assert!(!b.matches(Purpose::PasswordReset, "u1", "123456", &h));
        assert!(!a.matches(Purpose::EmailVerification, "u1", "123456", &h));
        assert!(!a.matches(Purpose::PasswordReset, "u2", "123456", &h));
        assert!(!a.matches(Purpose::PasswordReset, "u1", "123457", &h));
        assert!(!h.contains("123456"));
    }
}
