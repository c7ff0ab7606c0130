//! Schema migrations, embedded in the binary. Each migration has one SQL file per dialect under
//! `migrations/<dialect>/`, or one under `migrations/common/` when the dialects agree; they are
//! applied in order, each in its own transaction, and recorded with a checksum in
//! `ims_migrations` so an edited migration is detected instead of silently skipped.
//! On PostgreSQL an advisory lock keeps two instances starting at once from racing.

use ring::digest;
use sqlx::Acquire;

use super::{Backend, Db};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "accounts, sessions, throttling, audit",
        sqlite: include_str!("../../migrations/sqlite/0001_accounts.sql"),
        postgres: include_str!("../../migrations/postgres/0001_accounts.sql"),
    },
    Migration {
        version: 2,
        name: "one-time codes, reset tokens, outbox",
        // The same SQL serves both dialects.
        sqlite: include_str!("../../migrations/common/0002_codes_and_outbox.sql"),
        postgres: include_str!("../../migrations/common/0002_codes_and_outbox.sql"),
    },
    Migration {
        version: 3,
        name: "production: lines, orders, work orders, execution, documents, alerts, queue",
        sqlite: include_str!("../../migrations/common/0003_production.sql"),
        postgres: include_str!("../../migrations/common/0003_production.sql"),
    },
    Migration {
        version: 4,
        name: "external identities (OIDC provider users)",
        sqlite: include_str!("../../migrations/common/0004_external_identities.sql"),
        postgres: include_str!("../../migrations/common/0004_external_identities.sql"),
    },
    Migration {
        version: 5,
        name: "token cut-off for identity-provider tokens",
        sqlite: include_str!("../../migrations/common/0005_token_cutoff.sql"),
        postgres: include_str!("../../migrations/common/0005_token_cutoff.sql"),
    },
    Migration {
        version: 6,
        name: "idempotency keys on output reports",
        sqlite: include_str!("../../migrations/common/0006_output_idempotency.sql"),
        postgres: include_str!("../../migrations/common/0006_output_idempotency.sql"),
    },
];

/// An arbitrary constant naming IMS's migration lock in `pg_advisory_lock`.
const PG_LOCK_KEY: i64 = 0x1a5_0001;

/// Applies every pending migration; returns how many were applied.
pub async fn run(db: &Db) -> anyhow::Result<usize> {
    let mut conn = db.pool().acquire().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply_pending(db.backend(), &mut conn).await;
    if db.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply_pending(backend: Backend, conn: &mut sqlx::AnyConnection) -> anyhow::Result<usize> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS ims_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *conn)
    .await?;
    let applied: Vec<(i64, String)> =
        sqlx::query_as("SELECT version, checksum FROM ims_migrations ORDER BY version")
            .fetch_all(&mut *conn)
            .await?;
    let mut count = 0;
    for m in MIGRATIONS {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let checksum = hex(digest::digest(&digest::SHA256, sql.as_bytes()).as_ref());
        if let Some((_, recorded)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *recorded != checksum {
                anyhow::bail!(
                    "migration {} ({}) was changed after it was applied; restore it and add a new migration",
                    m.version,
                    m.name
                );
            }
            continue;
        }
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| anyhow::anyhow!("migration {} ({}) failed: {e}", m.version, m.name))?;
        sqlx::query(
            "INSERT INTO ims_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(&checksum)
        .bind(crate::clock::now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        count += 1;
    }
    if let Some(newest) = applied.iter().map(|(v, _)| *v).max() {
        let known = MIGRATIONS.iter().map(|m| m.version).max().unwrap_or(0);
        if newest > known {
            anyhow::bail!(
                "the database has migration {newest}, newer than this binary knows ({known}); run a newer ims"
            );
        }
    }
    Ok(count)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
