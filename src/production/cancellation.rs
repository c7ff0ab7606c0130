//! Cancelling: a work order (planned or paused), or a customer order with every planned or
//! paused work order of it. Each cancelled work order gets its history entry and its
//! `work_order.cancelled` event (with the stops its cancellation closed), in the same
//! transaction. Running work must be paused first, so nothing running is silently abandoned;
//! cancelling an order locks its work orders before checking, so a leader starting one at the
//! same moment either wins (and the cancel is refused) or finds it cancelled.

use sqlx::{Any, Transaction};

use super::calendar::FactoryClock;
use super::orders::{self, Order};
use super::work_orders::{self, illegal, record, Action, Status, WorkOrder};
use super::{check_version, conflict, guarded, ProdError, ProdResult};
use crate::db::Db;
use crate::events::{self, Event};

/// Cancels one planned or paused work order.
pub async fn work_order(
    db: &Db,
    actor: &str,
    id: &str,
    expected: Option<i64>,
) -> ProdResult<WorkOrder> {
    let current = work_orders::get(db, id).await?;
    check_version(expected, current.version)?;
    let mut tx = db.begin_write().await?;
    cancel_in(&mut tx, actor, id, current.version, crate::clock::now()).await?;
    tx.commit().await?;
    work_orders::get(db, id).await
}

/// Cancels the order and its planned or paused work orders.
pub async fn order(
    db: &Db,
    clock: &FactoryClock,
    actor: &str,
    id: &str,
    expected: Option<i64>,
) -> ProdResult<Order> {
    let now = crate::clock::now();
    let mut tx = db.begin_write().await?;
    let row: Option<(i64, Option<i64>)> =
        sqlx::query_as("SELECT version, cancelled_at FROM orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let (version, cancelled_at) = row.ok_or(ProdError::NotFound)?;
    check_version(expected, version)?;
    if cancelled_at.is_some() {
        return Err(conflict(
            "order_cancelled",
            "the order is already cancelled",
        ));
    }
    let done = sqlx::query(
        "UPDATE orders SET cancelled_at = $1, version = version + 1, updated_at = $1
         WHERE id = $2 AND version = $3 AND cancelled_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    guarded(&done, version)?;
    // Lock the order's work orders, then look at them.
    sqlx::query("UPDATE work_orders SET version = version WHERE order_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let open: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, status, version FROM work_orders
         WHERE order_id = $1 AND status IN ('planned', 'in_progress', 'paused')",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if open
        .iter()
        .any(|(_, status, _)| status == Status::InProgress.as_str())
    {
        return Err(conflict(
            "work_in_progress",
            "a work order of this order is running; pause it before cancelling the order",
        ));
    }
    for (wo, _, version) in &open {
        cancel_in(&mut tx, actor, wo, *version, now).await?;
    }
    tx.commit().await?;
    orders::get(db, clock, id).await?.ok_or(ProdError::NotFound)
}

async fn cancel_in(
    tx: &mut Transaction<'static, Any>,
    actor: &str,
    id: &str,
    version: i64,
    now: i64,
) -> ProdResult<()> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT status, line_id, order_id FROM work_orders WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
    let (status, line_id, order_id) = row.ok_or(ProdError::NotFound)?;
    let from = Status::parse(&status).ok_or_else(|| anyhow::anyhow!("stored status {status}"))?;
    let to = from
        .after(Action::Cancel)
        .ok_or_else(|| illegal(from, Action::Cancel))?;
    let done = sqlx::query(
        "UPDATE work_orders SET status = $1, cancelled_at = $2, version = version + 1, updated_at = $2
         WHERE id = $3 AND version = $4",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(id)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    guarded(&done, version)?;
    let open: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, reason_code, started_at FROM downtimes WHERE work_order_id = $1 AND ended_at IS NULL",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("UPDATE downtimes SET ended_at = $1 WHERE work_order_id = $2 AND ended_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let closed: Vec<serde_json::Value> = open
        .into_iter()
        .map(|(d, reason, started)| {
            serde_json::json!({
                "downtime_id": d, "reason_code": reason, "minutes": (now - started).max(0) / 60,
            })
        })
        .collect();
    record(
        &mut **tx,
        id,
        "cancelled",
        Some(actor),
        Some(from),
        Some(to),
        serde_json::json!({}),
    )
    .await?;
    let event = Event {
        kind: "work_order.cancelled".into(),
        line_id: Some(line_id),
        order_id: Some(order_id),
        work_order_id: Some(id.to_owned()),
        severity: "info".into(),
        at: now,
        data: serde_json::json!({ "closed_stops": closed }),
    };
    events::enqueue(tx, &event).await?;
    Ok(())
}
