//! Login throttling, shared by every instance through the database. Two counters:
//! - per email (existing or not, hashed so unknown addresses are not stored in clear): after
//!   `login_max_failures` consecutive failures within the lock period the email is locked for that
//!   period; a success resets it; an admin can unlock it;
//! - per client address: more than `ip_max_failures` failures within `ip_window` refuse further
//!   attempts from that address until the window ends.
//!
//! An attempt is counted *before* the password is checked ([`Throttle::admit`]), in one short
//! transaction, so a burst of parallel requests cannot slip past the limit while the hashes run;
//! a success takes its count back. Both limits answer `429` with `Retry-After` before the password
//! is looked at, so a locked existing account and a locked unknown email are indistinguishable.
//! The same table holds the hourly counters of code requests ([`Throttle::count_event`]).

use sqlx::{Any, AnyConnection, Executor};

use crate::config::AuthSettings;
use crate::db::Db;

#[derive(Clone)]
pub struct Throttle {
    settings: AuthSettings,
}

/// An admitted attempt: the email's failure count including this attempt.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    email_failures: i64,
}

#[derive(Debug, Clone, Copy)]
pub enum Admission {
    Proceed(Attempt),
    /// Refused; retry after this many seconds.
    Refused(u64),
}

/// What a failed attempt led to.
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

    /// Counts an attempt for the email and the client, or refuses it when either is over its limit.
    /// Each step is one atomic statement on its own (no transaction), so the hot per-client row is
    /// locked only for the moment of its increment, never while other work runs.
    pub async fn admit(&self, db: &Db, email: &str, ip: &str) -> Result<Admission, sqlx::Error> {
        let now = crate::clock::now();
        let lock = self.settings.login_lock_duration.as_secs() as i64;
        let window = self.settings.ip_window.as_secs() as i64;
        let mut conn = db.pool().acquire().await?;
        let locked: Option<(i64,)> =
            sqlx::query_as("SELECT locked_until FROM login_throttle WHERE key = $1")
                .bind(email_key(email))
                .fetch_optional(&mut *conn)
                .await?;
        if let Some((until,)) = locked.filter(|(until,)| *until > now) {
            return Ok(Admission::Refused((until - now).max(1) as u64));
        }
        let (ip_failures, ip_started, _) = bump(&mut conn, &ip_key(ip), now, now - window).await?;
        if ip_failures > i64::from(self.settings.ip_max_failures) {
            // A refused attempt is not a failure: take the count back.
            self.uncount(&mut conn, &ip_key(ip)).await?;
            return Ok(Admission::Refused((ip_started + window - now).max(1) as u64));
        }
        let (email_failures, _, locked_until) =
            bump(&mut conn, &email_key(email), now, now - lock).await?;
        if locked_until > now {
            // Locked by a concurrent attempt since the check above.
            self.uncount(&mut conn, &ip_key(ip)).await?;
            return Ok(Admission::Refused((locked_until - now).max(1) as u64));
        }
        if email_failures > i64::from(self.settings.login_max_failures) {
            // Only reachable by parallel attempts racing past the limit: lock now.
            lock_email(&mut conn, email, now, lock).await?;
            self.uncount(&mut conn, &ip_key(ip)).await?;
            return Ok(Admission::Refused(lock.max(1) as u64));
        }
        Ok(Admission::Proceed(Attempt { email_failures }))
    }

    /// The attempt failed: its count stays; reaching the limit locks the email.
    pub async fn failed(
        &self,
        conn: &mut AnyConnection,
        email: &str,
        attempt: Attempt,
    ) -> Result<Failure, sqlx::Error> {
        let locked_now = attempt.email_failures >= i64::from(self.settings.login_max_failures);
        if locked_now {
            let lock = self.settings.login_lock_duration.as_secs() as i64;
            lock_email(conn, email, crate::clock::now(), lock).await?;
        }
        Ok(Failure { locked_now })
    }

    /// The attempt succeeded: the email's count is cleared and the client's takes this one back.
    /// Call it outside any longer transaction (two short statements).
    pub async fn succeeded(&self, db: &Db, email: &str, ip: &str) -> Result<(), sqlx::Error> {
        let mut conn = db.pool().acquire().await?;
        self.clear(&mut *conn, email).await?;
        self.uncount(&mut conn, &ip_key(ip)).await
    }

    /// Clears the email's counter and lock (a success, or an admin's unlock).
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

    /// Counts an event under `key` in a window of `window_secs` (restarting when the window is
    /// over); returns the count including this one. Used for code requests and wrong codes.
    pub async fn count_event(
        &self,
        conn: &mut AnyConnection,
        key: &str,
        window_secs: i64,
    ) -> Result<i64, sqlx::Error> {
        let now = crate::clock::now();
        Ok(bump(conn, key, now, now - window_secs).await?.0)
    }

    /// Takes one count back (never below zero).
    pub async fn uncount(&self, conn: &mut AnyConnection, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE login_throttle SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END
             WHERE key = $1",
        )
        .bind(key)
        .execute(conn)
        .await
        .map(|_| ())
    }

    /// Deletes counters whose windows and locks are over (the longest window is the hourly one of
    /// the code counters).
    pub async fn prune(&self, db: &Db) -> Result<(), sqlx::Error> {
        let now = crate::clock::now();
        let oldest = self
            .settings
            .ip_window
            .max(self.settings.login_lock_duration)
            .as_secs()
            .max(3600) as i64;
        sqlx::query("DELETE FROM login_throttle WHERE locked_until < $1 AND window_start < $2")
            .bind(now)
            .bind(now - oldest)
            .execute(db.pool())
            .await
            .map(|_| ())
    }
}

async fn lock_email(
    conn: &mut AnyConnection,
    email: &str,
    now: i64,
    lock: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        // The count is kept (not reset), so attempts racing with the lock still see it exceeded;
        // the window restarts with the lock and ends with it.
        "UPDATE login_throttle SET window_start = $2, locked_until = $3 WHERE key = $1",
    )
    .bind(email_key(email))
    .bind(now)
    .bind(now + lock)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Adds one to a counter, restarting it when its window began before `window_from`; returns the
/// count, the window's start and the lock's end.
async fn bump(
    conn: &mut AnyConnection,
    key: &str,
    now: i64,
    window_from: i64,
) -> Result<(i64, i64, i64), sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO login_throttle (key, failures, window_start, locked_until) VALUES ($1, 1, $2, 0)
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_throttle.window_start < $3 THEN 1
                           ELSE login_throttle.failures + 1 END,
           window_start = CASE WHEN login_throttle.window_start < $3 THEN $2
                               ELSE login_throttle.window_start END
         RETURNING failures, window_start, locked_until",
    )
    .bind(key)
    .bind(now)
    .bind(window_from)
    .fetch_one(conn)
    .await
}
