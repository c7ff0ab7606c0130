//! Sessions and their refresh tokens. A session is one login: a family of refresh tokens of which
//! only the newest is usable. Tokens are 256-bit random strings, handed out once and stored only as
//! SHA-256 hashes. Each use rotates the token; presenting a token that was already rotated is theft
//! or a replay, so the whole family is revoked. A token expires after the idle timeout unused, and a
//! session after the absolute timeout from login, whatever the use.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sqlx::{Any, Transaction};

use super::revocation;
use super::roles::{self, Role};

/// A refresh token in clear: exists only between creation and the response; `Debug` is redacted.
#[derive(Clone)]
pub struct RefreshToken(String);

impl RefreshToken {
    fn generate() -> anyhow::Result<Self> {
        Ok(Self(format!(
            "imsr_{}",
            URL_SAFE_NO_PAD.encode(super::random_bytes::<32>()?)
        )))
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

fn hash(token: &str) -> String {
    super::sha256_hex(token.as_bytes())
}

#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

/// Starts a session for the user and returns its id and first refresh token.
pub async fn start(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    life: Lifetimes,
) -> anyhow::Result<(String, RefreshToken)> {
    let now = crate::clock::now();
    let id = uuid::Uuid::now_v7().to_string();
    let absolute = now + life.absolute.as_secs() as i64;
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, absolute_expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(now)
    .bind(absolute)
    .execute(&mut **tx)
    .await?;
    let token = issue(
        tx,
        &id,
        now,
        (now + life.idle.as_secs() as i64).min(absolute),
    )
    .await?;
    Ok((id, token))
}

async fn issue(
    tx: &mut Transaction<'static, Any>,
    session_id: &str,
    now: i64,
    idle_expires_at: i64,
) -> anyhow::Result<RefreshToken> {
    let token = RefreshToken::generate()?;
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, idle_expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(hash(token.expose()))
    .bind(session_id)
    .bind(now)
    .bind(idle_expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(token)
}

/// The user a rotated token belongs to, as the token is issued.
#[derive(Debug)]
pub struct Holder {
    pub user_id: String,
    pub roles: Vec<Role>,
    pub auth_version: i64,
}

#[derive(Debug)]
pub enum Rotation {
    Rotated {
        holder: Holder,
        session_id: String,
        token: RefreshToken,
    },
    /// An already-rotated token was presented; the family has been revoked.
    Reused { user_id: String, session_id: String },
    /// Unknown, expired or revoked token, or a disabled user.
    Refused,
}

type Row = (
    String,
    i64,
    Option<i64>,
    String,
    i64,
    Option<i64>,
    i64,
    String,
    i64,
);

/// Rotates a presented refresh token. The caller commits the transaction (also for `Reused`, so the
/// revocation sticks) and records audit events in it.
pub async fn rotate(
    tx: &mut Transaction<'static, Any>,
    presented: &str,
    life: Lifetimes,
) -> anyhow::Result<Rotation> {
    if presented.len() > 200 {
        return Ok(Rotation::Refused);
    }
    let now = crate::clock::now();
    let token_hash = hash(presented);
    let row: Option<Row> = sqlx::query_as(
        "SELECT t.session_id, t.idle_expires_at, t.used_at, s.user_id, s.absolute_expires_at,
                s.revoked_at, u.disabled, u.roles, u.auth_version
         FROM refresh_tokens t
         JOIN sessions s ON s.id = t.session_id
         JOIN users u ON u.id = s.user_id
         WHERE t.token_hash = $1",
    )
    .bind(&token_hash)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((
        session_id,
        idle_expires_at,
        used_at,
        user_id,
        absolute,
        revoked_at,
        disabled,
        roles,
        version,
    )) = row
    else {
        return Ok(Rotation::Refused);
    };
    if revoked_at.is_some() {
        return Ok(Rotation::Refused);
    }
    if used_at.is_some() {
        revoke(tx, &user_id, &session_id, "refresh token reuse").await?;
        return Ok(Rotation::Reused {
            user_id,
            session_id,
        });
    }
    if disabled != 0 || now >= idle_expires_at || now >= absolute {
        return Ok(Rotation::Refused);
    }
    let claimed = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL",
    )
    .bind(&token_hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if claimed.rows_affected() == 0 {
        // Another request rotated it between our read and write: that is a reuse too.
        revoke(tx, &user_id, &session_id, "refresh token reuse").await?;
        return Ok(Rotation::Reused {
            user_id,
            session_id,
        });
    }
    let token = issue(
        tx,
        &session_id,
        now,
        (now + life.idle.as_secs() as i64).min(absolute),
    )
    .await?;
    Ok(Rotation::Rotated {
        holder: Holder {
            user_id,
            roles: roles::from_db(&roles),
            auth_version: version,
        },
        session_id,
        token,
    })
}

/// Whether a refresh token is known at all (a read, before taking any write lock).
pub async fn exists(pool: &sqlx::AnyPool, presented: &str) -> Result<bool, sqlx::Error> {
    if presented.len() > 200 {
        return Ok(false);
    }
    let row: Option<(String,)> =
        sqlx::query_as("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
            .bind(hash(presented))
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// The session and user of a refresh token that is still current, for logout.
pub async fn find(
    tx: &mut Transaction<'static, Any>,
    presented: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    if presented.len() > 200 {
        return Ok(None);
    }
    sqlx::query_as(
        "SELECT s.id, s.user_id FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id
         WHERE t.token_hash = $1 AND s.revoked_at IS NULL",
    )
    .bind(hash(presented))
    .fetch_optional(&mut **tx)
    .await
}

/// Revokes one session (its refresh tokens and, through the revocation feed, its access tokens).
pub async fn revoke(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    session_id: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(session_id)
    .bind(crate::clock::now())
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    revocation::session_revoked(tx, user_id, session_id).await
}

/// Revokes every session of the user, except `keep` if given; returns the revoked sessions' ids.
/// Access tokens are cut off by the caller bumping the user's auth version
/// ([`revocation::user_changed`]) when all sessions go, or per session otherwise.
pub async fn revoke_all(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let sessions: Vec<(String,)> =
        sqlx::query_as("SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id)
            .fetch_all(&mut **tx)
            .await?;
    let mut revoked = Vec::with_capacity(sessions.len());
    for (id,) in sessions {
        if Some(id.as_str()) == keep {
            continue;
        }
        revoke(tx, user_id, &id, reason).await?;
        revoked.push(id);
    }
    Ok(revoked)
}

/// Deletes sessions that can no longer be used.
pub async fn prune(db: &crate::db::Db) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE absolute_expires_at < $1")
        .bind(crate::clock::now() - 86_400)
        .execute(db.pool())
        .await
        .map(|_| ())
}
