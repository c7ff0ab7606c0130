//! The database: one `sqlx` Any pool over SQLite (embedded default) or PostgreSQL, chosen by the URL
//! scheme. All queries are written once with `$1, $2 …` placeholders, which both dialects accept;
//! only the migrations differ per dialect (see `migrations/`). Write transactions go through
//! [`Db::begin_write`] so SQLite takes its write lock up front instead of failing mid-transaction.
//! Timestamps are Unix seconds (`BIGINT`), ids are UUID text.

pub mod health;
pub mod migrate;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

use secrecy::{ExposeSecret, SecretString};

use crate::config::DatabaseUrl;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    url: DatabaseUrl,
    health: std::sync::Arc<health::Health>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Db {
    /// Opens the pool (creating the SQLite file and its directory when needed). Fails fast when the
    /// database cannot be reached.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let raw = match backend {
            Backend::Postgres => url.expose().to_owned(),
            Backend::Sqlite => sqlite_url(url.expose())?,
        };
        let options = AnyConnectOptions::from_str(&raw)
            .map_err(|_| anyhow::anyhow!("IMS_DATABASE_URL ({url}) is not a valid database URL"))?;
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(3))
            .idle_timeout(Duration::from_secs(300))
            .test_before_acquire(true)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                        )
                        .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open the database at {url}: {}", describe(&e)))?;
        Ok(Self {
            pool,
            backend,
            url: url.clone(),
            health: Default::default(),
        })
    }

    /// Uses `password` for every connection the pool opens from now on (a rotated
    /// `DATABASE_PASSWORD`); connections already open stay as they are until they are replaced.
    pub fn use_password(&self, password: &SecretString) -> anyhow::Result<()> {
        if self.backend != Backend::Postgres {
            anyhow::bail!("DATABASE_PASSWORD only applies to PostgreSQL");
        }
        let mut url = url::Url::parse(self.url.expose())
            .map_err(|_| anyhow::anyhow!("IMS_DATABASE_URL is not a valid database URL"))?;
        url.set_password(Some(password.expose_secret()))
            .map_err(|_| anyhow::anyhow!("IMS_DATABASE_URL cannot carry a password"))?;
        let options = AnyConnectOptions::from_str(url.as_str())
            .map_err(|_| anyhow::anyhow!("IMS_DATABASE_URL is not a valid database URL"))?;
        self.pool.set_connect_options(options);
        Ok(())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether requests should fail fast because the database is unreachable ([`health`]).
    pub fn health(&self) -> &health::Health {
        &self.health
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock immediately
    /// (`BEGIN IMMEDIATE`), so a read-then-write transaction waits for its turn rather than failing.
    pub async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Serialises transactions that must see each other's effects (e.g. "the last active admin"):
    /// every caller updates the same row first, so the second waits for the first to commit.
    pub async fn lock(tx: &mut Transaction<'static, Any>, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE app_locks SET n = n + 1 WHERE name = $1")
            .bind(name)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// True when the error means "the database is not reachable right now" (answer 503, retry later)
/// rather than a bug or a constraint violation.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
    ) || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| {
        // PostgreSQL: admin shutdown, cannot connect now, crash shutdown; SQLite: busy / locked.
        matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "5" | "6" | "517")
    }))
}

/// True when the database could not write because its disk is full (SQLite `SQLITE_FULL`,
/// PostgreSQL `disk_full`): nothing was written, and retrying will not help until space is freed.
pub fn is_storage_full(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| matches!(c.as_ref(), "13" | "53100")))
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// A short, value-free description of a database error for operator-facing messages.
pub fn describe(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Io(e) => format!("I/O error ({})", e.kind()),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".into(),
        sqlx::Error::Database(db) => format!("database error {}", db.code().unwrap_or_default()),
        sqlx::Error::Configuration(_) => "invalid connection settings".into(),
        other => other.to_string(),
    }
}

fn sqlite_url(raw: &str) -> anyhow::Result<String> {
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))
        .unwrap_or(raw);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("IMS_DATABASE_URL must name a SQLite file, e.g. sqlite://./ims-data/ims.db");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        // A directory we create for the database (normally the data directory, which also holds
        // the keys) is owner-only; an existing one is left as the operator set it.
        if !parent.exists() {
            crate::auth::keys::ensure_private_dir(parent)?;
        }
    }
    create_private_file(Path::new(path))?;
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Creates the SQLite file owner-only before SQLite does (its -wal and -shm files inherit the mode):
/// it holds password hashes.
fn create_private_file(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::anyhow!(
            "cannot create the database file {}: {}",
            path.display(),
            e.kind()
        )),
    }
}
