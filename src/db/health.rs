//! Failing fast while the database is unreachable. When a request finds the database gone (a
//! connection refused or cut, TLS failing, PostgreSQL shutting down, or no connection within the
//! pool's acquire timeout), the instance marks it down: from then on API requests are answered
//! `503 unavailable` at once (see `http::middleware::edge`) instead of each one waiting out
//! the acquire timeout, and [`watch`] opens a fresh connection every 250 ms until one answers,
//! which marks the database up again — the pool itself reconnects on demand. Liveness, readiness,
//! metrics and the web app's files never depend on this flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::{AnyConnection, ConnectOptions, Connection};
use tokio::sync::{watch as signal, Notify};

use super::Db;

/// How often an unreachable database is probed.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Default)]
pub struct Health {
    down: AtomicBool,
    wake: Notify,
}

impl Health {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Marks the database unreachable and starts probing (once, however many requests report it).
    pub fn mark_down(&self) {
        if !self.down.swap(true, Ordering::SeqCst) {
            tracing::warn!("database unreachable; answering 503 at once until it is back");
            self.wake.notify_one();
        }
    }

    /// Marks the database reachable (a probe or a readiness check reached it).
    pub fn mark_up(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            tracing::info!("database reachable again");
        }
    }
}

/// True when the error means the connection to the database itself failed (not a busy SQLite
/// file, not a constraint, not a query error).
pub fn is_connection_failure(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
        matches!(c.as_ref(), "57P01" | "57P02" | "57P03")
    }))
}

/// Probes the database while it is marked down; returns when `stop` flips.
pub async fn watch(db: Db, mut stop: signal::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = db.health.wake.notified() => {}
            _ = stop.changed() => return,
        }
        while db.health.is_down() {
            tokio::select! {
                _ = tokio::time::sleep(PROBE_INTERVAL) => {}
                _ = stop.changed() => return,
            }
            if probe(&db).await {
                db.health.mark_up();
            }
        }
    }
}

/// Opens a new connection (outside the pool, whose slots may all be waiting) and pings it.
async fn probe(db: &Db) -> bool {
    let options = db.pool().connect_options();
    let attempt = async {
        let mut conn: AnyConnection = options.connect().await?;
        conn.ping().await?;
        conn.close().await
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Ok(()))
    )
}
