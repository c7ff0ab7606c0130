//! The revocation cache. Disabling a user, changing their roles, resetting their password or
//! revoking sessions must invalidate access tokens already issued, on every instance, within five
//! seconds, without a database query per request. Each such change bumps `users.auth_version` and
//! appends a row to `auth_changes` in the same transaction. Every instance polls that feed once a
//! second (re-reading a 60-second overlap, so rows committed out of order are not missed) and keeps,
//! per recently changed user, the newest version and, per revoked session, its id. A token whose `ver`
//! is older than the cached version, or whose `sid` was revoked, is refused. Entries older than the
//! access-token lifetime are pruned: tokens that old have expired anyway. On startup the feed is read
//! back one token lifetime plus a margin. When the feed cannot be read for 30 seconds (database
//! gone), authenticated requests get `503` rather than trust a cache that may miss a revocation.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use sqlx::{Any, Transaction};

use super::tokens::Claims;
use crate::db::Db;

pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Each poll re-reads this many seconds before the previous one, so rows committed late (or
/// stamped by an instance whose clock is slightly behind) are not missed.
const OVERLAP_SECS: i64 = 60;
/// After this long without a successful poll the cache cannot vouch for tokens any more.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Default)]
struct State {
    /// user id → (newest auth version, when it changed)
    versions: HashMap<String, (i64, i64)>,
    /// revoked session id → when
    sessions: HashMap<String, i64>,
    /// Unix time from which the next poll reads.
    next_from: Option<i64>,
}

pub struct Revocations {
    state: RwLock<State>,
    retention_secs: i64,
    last_ok: std::sync::Mutex<std::time::Instant>,
}

impl Revocations {
    pub fn new(access_token_ttl: Duration) -> Self {
        Self {
            state: RwLock::new(State::default()),
            retention_secs: access_token_ttl.as_secs() as i64 + 60,
            last_ok: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// True when the token has not been revoked by a later change.
    pub fn allows(&self, claims: &Claims) -> bool {
        let Ok(state) = self.state.read() else {
            return false;
        };
        if state.sessions.contains_key(&claims.sid) {
            return false;
        }
        match state.versions.get(&claims.sub) {
            Some((version, _)) => claims.ver >= *version,
            None => true,
        }
    }

    /// False when the feed has not been read for [`STALE_AFTER`]: a revocation made elsewhere
    /// might be missing, so tokens should not be trusted until the database answers again.
    pub fn is_fresh(&self) -> bool {
        self.last_ok
            .lock()
            .map(|t| t.elapsed() < STALE_AFTER)
            .unwrap_or(false)
    }

    /// Applies a change made by this instance at once (other instances learn of it by polling).
    pub fn note_user(&self, user_id: &str, version: i64) {
        if let Ok(mut state) = self.state.write() {
            let now = crate::clock::now();
            let entry = state.versions.entry(user_id.to_owned()).or_insert((0, now));
            *entry = (entry.0.max(version), now);
        }
    }

    pub fn note_session(&self, session_id: &str) {
        if let Ok(mut state) = self.state.write() {
            state
                .sessions
                .insert(session_id.to_owned(), crate::clock::now());
        }
    }

    /// Reads the change feed since the last poll.
    pub async fn poll(&self, db: &Db) -> Result<(), sqlx::Error> {
        let started = crate::clock::now();
        let from = self
            .state
            .read()
            .ok()
            .and_then(|s| s.next_from)
            .unwrap_or(started - self.retention_secs);
        let rows: Vec<(String, Option<String>, i64, Option<i64>)> = sqlx::query_as(
            "SELECT c.user_id, c.session_id, c.at, u.auth_version
             FROM auth_changes c LEFT JOIN users u ON u.id = c.user_id
             WHERE c.at >= $1",
        )
        .bind(from)
        .fetch_all(db.pool())
        .await?;
        if let Ok(mut state) = self.state.write() {
            for (user_id, session_id, at, version) in rows {
                if let Some(version) = version {
                    let entry = state.versions.entry(user_id).or_insert((0, at));
                    *entry = (entry.0.max(version), entry.1.max(at));
                }
                if let Some(session_id) = session_id {
                    state.sessions.entry(session_id).or_insert(at);
                }
            }
            let horizon = started - self.retention_secs;
            state.versions.retain(|_, (_, at)| *at >= horizon);
            state.sessions.retain(|_, at| *at >= horizon);
            state.next_from = Some(started - OVERLAP_SECS);
        }
        if let Ok(mut last) = self.last_ok.lock() {
            *last = std::time::Instant::now();
        }
        Ok(())
    }

    /// Deletes feed rows nobody needs any more.
    pub async fn prune(&self, db: &Db) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM auth_changes WHERE at < $1")
            .bind(crate::clock::now() - self.retention_secs - 3600)
            .execute(db.pool())
            .await
            .map(|_| ())
    }
}

/// Bumps the user's auth version and records the change; returns the new version. Call inside the
/// transaction that makes the change, then [`Revocations::note_user`] after commit.
pub async fn user_changed(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    let (version,): (i64,) = sqlx::query_as(
        "UPDATE users SET auth_version = auth_version + 1, updated_at = $2, tokens_valid_after = $2
         WHERE id = $1 RETURNING auth_version",
    )
    .bind(user_id)
    .bind(crate::clock::now())
    .fetch_one(&mut **tx)
    .await?;
    insert_change(tx, user_id, None).await?;
    Ok(version)
}

/// Records that a session was revoked, so its access tokens stop working everywhere.
pub async fn session_revoked(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    session_id: &str,
) -> Result<(), sqlx::Error> {
    insert_change(tx, user_id, Some(session_id)).await
}

async fn insert_change(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    session_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO auth_changes (id, user_id, session_id, at) VALUES ($1, $2, $3, $4)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(user_id)
        .bind(session_id)
        .bind(crate::clock::now())
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, sid: &str, ver: i64) -> Claims {
        Claims {
            iss: "i".into(),
            aud: "ims".into(),
            sub: sub.into(),
            roles: vec![],
            jti: "j".into(),
            iat: 0,
            exp: i64::MAX,
            sid: sid.into(),
            ver,
        }
    }

    #[test]
    fn older_versions_and_revoked_sessions_are_refused() {
        let r = Revocations::new(Duration::from_secs(900));
        assert!(r.allows(&claims("u", "s", 1)));
        r.note_user("u", 2);
        assert!(!r.allows(&claims("u", "s", 1)));
        assert!(r.allows(&claims("u", "s", 2)));
        assert!(r.allows(&claims("other", "s", 1)));
        r.note_session("s2");
        assert!(!r.allows(&claims("u", "s2", 5)));
        r.note_user("u", 1);
        assert!(!r.allows(&claims("u", "s", 1)), "versions never go back");
    }
}
