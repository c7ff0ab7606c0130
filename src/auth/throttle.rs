//! Login throttling, shared by every instance through the database. Two counters:
//! - per email (existing or not, hashed so unknown addresses are not stored in clear): after
//!   `login_max_failures` consecutive failures within the lock period the email is locked for that
//!   period; a success resets it; an admin can unlock it;
//! - per client address: more than `ip_max_failures` failures within `ip_window` refuse further
//!   attempts from that address until the window ends.
//!
//! Both answer `429` with `Retry-After`, checked before the password is looked at, so a locked
//! existing account and a locked unknown email are indistinguishable.

use sqlx::{Any, AnyConnection, Executor};

use crate::config::AuthSettings;
use crate::db::Db;

#[derive(Clone)]
pub struct Throttle {
    settings: AuthSettings,
}

/// What a recorded failure led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// This failure locked the email.
    pub locked_now: bool,
}

fn email_key(email: &str) -> String {
    format!("email:{}", super::sha256_hex(email.as_bytes()))
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl Throttle {
    pub fn new(settings: AuthSettings) -> Self {
        Self { settings }
    }

    /// Seconds to wait when this attempt must be refused, `None` when it may proceed.
    pub async fn retry_after(
        &self,
        db: &Db,
        email: &str,
        ip: &str,
    ) -> Result<Option<u64>, sqlx::Error> {
        let now = crate::clock::now();
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT key, failures, window_start, locked_until FROM login_throttle
             WHERE key = $1 OR key = $2",
        )
        .bind(email_key(email))
        .bind(ip_key(ip))
        .fetch_all(db.pool())
        .await?;
        let window = self.settings.ip_window.as_secs() as i64;
        let wait = rows
            .iter()
            .filter_map(|(key, failures, window_start, locked_until)| {
                if key.starts_with("email:") && *locked_until > now {
                    Some(*locked_until - now)
                } else if key.starts_with("ip:")
                    && *failures >= i64::from(self.settings.ip_max_failures)
                    && window_start + window > now
                {
                    Some(window_start + window - now)
                } else {
                    None
                }
            })
            .max();
        Ok(wait.map(|s| s.max(1) as u64))
    }

    /// Counts a failed attempt for the email and the address.
    pub async fn record_failure(
        &self,
        conn: &mut AnyConnection,
        email: &str,
        ip: &str,
    ) -> Result<Failure, sqlx::Error> {
        let now = crate::clock::now();
        let lock = self.settings.login_lock_duration.as_secs() as i64;
        let email_failures = bump(&mut *conn, &email_key(email), now, now - lock).await?;
        bump(
            &mut *conn,
            &ip_key(ip),
            now,
            now - self.settings.ip_window.as_secs() as i64,
        )
        .await?;
        let locked_now = email_failures >= i64::from(self.settings.login_max_failures);
        if locked_now {
            sqlx::query(
                "UPDATE login_throttle SET failures = 0, window_start = $2, locked_until = $3
                 WHERE key = $1",
            )
            .bind(email_key(email))
            .bind(now)
            .bind(now + lock)
            .execute(&mut *conn)
            .await?;
        }
        Ok(Failure { locked_now })
    }

    /// Clears the email's counter and lock (a successful login, or an admin's unlock).
    pub async fn clear<'e, E>(&self, exec: E, email: &str) -> Result<bool, sqlx::Error>
    where
        E: Executor<'e, Database = Any>,
    {
        let done = sqlx::query("DELETE FROM login_throttle WHERE key = $1")
            .bind(email_key(email))
            .execute(exec)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes counters whose windows and locks are over.
    pub async fn prune(&self, db: &Db) -> Result<(), sqlx::Error> {
        let now = crate::clock::now();
        let oldest = self
            .settings
            .ip_window
            .max(self.settings.login_lock_duration)
            .as_secs() as i64;
        sqlx::query("DELETE FROM login_throttle WHERE locked_until < $1 AND window_start < $2")
            .bind(now)
            .bind(now - oldest)
            .execute(db.pool())
            .await
            .map(|_| ())
    }
}

/// Adds one failure to a counter, restarting it when its window began before `window_from`.
async fn bump(
    conn: &mut AnyConnection,
    key: &str,
    now: i64,
    window_from: i64,
) -> Result<i64, sqlx::Error> {
    let (failures,): (i64,) = sqlx::query_as(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_throttle.window_start < $3 THEN 1
                           ELSE login_throttle.failures + 1 END,
           window_start = CASE WHEN login_throttle.window_start < $3 THEN $2
                               ELSE login_throttle.window_start END
         RETURNING failures",
    )
    .bind(key)
    .bind(now)
    .bind(window_from)
    .fetch_one(&mut *conn)
    .await?;
    Ok(failures)
}

impl Throttle {
    /// Counts an event under `key` in a sliding window of `window_secs` (restarting when the window
    /// is over); returns the count including this one. Used for code-sending limits.
    pub async fn count_event(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        window_secs: i64,
    ) -> Result<i64, sqlx::Error> {
        let now = crate::clock::now();
        bump(conn, key, now, now - window_secs).await
    }

    /// The current count under `key` within the window, without adding to it.
    pub async fn peek(&self, db: &Db, key: &str, window_secs: i64) -> Result<i64, sqlx::Error> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT failures, window_start FROM login_throttle WHERE key = $1")
                .bind(key)
                .fetch_optional(db.pool())
                .await?;
        Ok(match row {
            Some((n, start)) if start >= crate::clock::now() - window_secs => n,
            _ => 0,
        })
    }
}
