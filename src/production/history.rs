//! A work order's history: every transition and report, timestamped, with who did it. Written
//! in the same transaction as the change it records.

use serde::Serialize;
use sqlx::{Any, Executor};
use utoipa::ToSchema;

use super::state::Status;
use super::{new_id, ProdResult};
use crate::db::Db;

/// Appends to a work order's history.
pub async fn record<'e, E>(
    exec: E,
    work_order_id: &str,
    kind: &str,
    actor: Option<&str>,
    from: Option<Status>,
    to: Option<Status>,
    detail: serde_json::Value,
) -> Result<(), sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO work_order_events (id, work_order_id, kind, at, actor_id, from_status, to_status, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(new_id())
    .bind(work_order_id)
    .bind(kind)
    .bind(crate::clock::now())
    .bind(actor)
    .bind(from.map(Status::as_str))
    .bind(to.map(Status::as_str))
    .bind(detail.to_string())
    .execute(exec)
    .await
    .map(|_| ())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: String,
    pub kind: String,
    pub actor_id: Option<String>,
    pub from_status: Option<String>,
    pub to_status: Option<String>,
    pub detail: serde_json::Value,
}

/// The work order's history, oldest first.
pub async fn history(db: &Db, id: &str) -> ProdResult<Vec<HistoryEntry>> {
    type HistoryRow = (
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
    );
    let rows: Vec<HistoryRow> = sqlx::query_as(
        "SELECT at, kind, actor_id, from_status, to_status, detail FROM work_order_events
             WHERE work_order_id = $1 ORDER BY at, id",
    )
    .bind(id)
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| HistoryEntry {
            at: crate::clock::rfc3339(r.0),
            kind: r.1,
            actor_id: r.2,
            from_status: r.3,
            to_status: r.4,
            detail: serde_json::from_str(&r.5).unwrap_or(serde_json::Value::Null),
        })
        .collect())
}
