//! Work orders: an order's quantity for one stage, scheduled by a MANAGER on a line, date and
//! shift, in a sequence; their listing, the leader's task list, and the visibility rule (a leader
//! sees published work orders of the lines they lead). The state machine is in [`super::state`].
//! Every change is guarded by the row's version (the `ETag`), so two people editing the same work
//! order cannot overwrite each other: the loser gets `409 stale_version` and reloads.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{Any, Executor, Row};
use time::Date;
use utoipa::ToSchema;

use super::calendar::{format_date, parse_date};
pub use super::history::{history, record, HistoryEntry};
pub use super::state::{illegal, Action, Status};
use super::{
    check_version, conflict, guarded, invalid, lines, new_id, products, quantity, LineKind,
    ProdError, ProdResult, Viewer,
};
use crate::db::Db;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkOrder {
    pub id: String,
    pub order_id: String,
    pub order_number: String,
    pub product_sku: String,
    pub product_name: String,
    pub stage: LineKind,
    pub line_id: String,
    pub line_code: String,
    /// `YYYY-MM-DD`, factory calendar.
    pub work_date: String,
    pub shift: String,
    pub sequence: i64,
    pub quantity: i64,
    pub ideal_cycle_seconds: f64,
    pub status: Status,
    pub good_quantity: i64,
    pub scrap_quantity: i64,
    pub published_at: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub cancelled_at: Option<String>,
    /// The reason code of the stop a pause opened, while paused.
    pub paused_reason: Option<String>,
    pub version: i64,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkOrder {
    pub order_id: String,
    pub line_id: String,
    /// `YYYY-MM-DD`
    pub work_date: String,
    pub shift: String,
    pub quantity: i64,
    /// Defaults to the line's kind; must match it when given.
    pub stage: Option<LineKind>,
    /// Position in the shift's queue; defaults to after the last one.
    pub sequence: Option<i64>,
}

/// Rescheduling: any subset of these, while the work order is planned or paused.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderPatch {
    pub line_id: Option<String>,
    pub work_date: Option<String>,
    pub shift: Option<String>,
    pub sequence: Option<i64>,
    pub quantity: Option<i64>,
}

pub(crate) const SELECT: &str =
    "SELECT w.id, w.order_id, o.number, p.sku, p.name, w.stage, w.line_id, l.code,
        w.work_date, w.shift, w.sequence, w.quantity, w.ideal_cycle_ms, w.status, w.good_qty,
        w.scrap_qty, w.published_at, w.started_at, w.completed_at, w.cancelled_at, w.version,
        w.updated_at,
        (SELECT d.reason_code FROM downtimes d WHERE d.work_order_id = w.id AND d.ended_at IS NULL
          AND d.source = 'pause' LIMIT 1) AS paused_reason
     FROM work_orders w
     JOIN orders o ON o.id = w.order_id
     JOIN products p ON p.id = o.product_id
     JOIN lines l ON l.id = w.line_id";

fn from_row(r: &AnyRow) -> ProdResult<WorkOrder> {
    let ts = |i: usize| -> Result<Option<String>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(i)?.map(crate::clock::rfc3339))
    };
    let stage: String = r.try_get(5)?;
    let status: String = r.try_get(13)?;
    Ok(WorkOrder {
        stage: LineKind::parse(&stage).ok_or_else(|| anyhow::anyhow!("stored stage {stage}"))?,
        status: Status::parse(&status).ok_or_else(|| anyhow::anyhow!("stored status {status}"))?,
        id: r.try_get(0)?,
        order_id: r.try_get(1)?,
        order_number: r.try_get(2)?,
        product_sku: r.try_get(3)?,
        product_name: r.try_get(4)?,
        line_id: r.try_get(6)?,
        line_code: r.try_get(7)?,
        work_date: r.try_get(8)?,
        shift: r.try_get(9)?,
        sequence: r.try_get(10)?,
        quantity: r.try_get(11)?,
        ideal_cycle_seconds: r.try_get::<i64, _>(12)? as f64 / 1000.0,
        good_quantity: r.try_get(14)?,
        scrap_quantity: r.try_get(15)?,
        published_at: ts(16)?,
        started_at: ts(17)?,
        completed_at: ts(18)?,
        cancelled_at: ts(19)?,
        version: r.try_get(20)?,
        updated_at: crate::clock::rfc3339(r.try_get(21)?),
        paused_reason: r.try_get(22)?,
    })
}

pub(crate) async fn fetch<'e, E>(
    exec: E,
    filter: &str,
    binds: &[&str],
) -> ProdResult<Vec<WorkOrder>>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!("{SELECT} {filter}");
    let mut query = sqlx::query(&sql);
    for b in binds {
        query = query.bind(b.to_string());
    }
    query.fetch_all(exec).await?.iter().map(from_row).collect()
}

/// One work order, if the viewer may see it: managers see all; a line leader sees the
/// published work orders of the lines they lead. Otherwise "not found", never "forbidden".
pub async fn visible(db: &Db, viewer: &Viewer, id: &str) -> ProdResult<WorkOrder> {
    let wo = fetch(db.pool(), "WHERE w.id = $1", &[id])
        .await?
        .pop()
        .ok_or(ProdError::NotFound)?;
    if viewer.manager {
        return Ok(wo);
    }
    if wo.published_at.is_some() && lines::leads(db.pool(), &viewer.user_id, &wo.line_id).await? {
        return Ok(wo);
    }
    Err(ProdError::NotFound)
}

pub fn work_date(raw: &str) -> ProdResult<Date> {
    parse_date(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(20).collect();
        invalid(
            "invalid_date",
            format!("'{shown}' is not a valid YYYY-MM-DD date"),
        )
    })
}

/// Checks that the line can take work of this stage on this shift; returns the line's kind.
async fn check_slot(
    db: &Db,
    line_id: &str,
    shift: &str,
    stage: Option<LineKind>,
) -> ProdResult<LineKind> {
    let (kind, shifts, active) = lines::kind_and_shifts(db.pool(), line_id)
        .await?
        .ok_or_else(|| invalid("unknown_line", "line_id names no line"))?;
    if !active {
        return Err(conflict("line_inactive", "the line is not active"));
    }
    if !shifts.iter().any(|s| s.name == shift) {
        return Err(invalid(
            "unknown_shift",
            format!(
                "the line has no shift named '{}'",
                shift.chars().take(16).collect::<String>()
            ),
        ));
    }
    if stage.is_some_and(|s| s != kind) {
        return Err(invalid(
            "stage_mismatch",
            format!("a {} line cannot take work of another stage", kind.as_str()),
        ));
    }
    Ok(kind)
}

pub async fn create(db: &Db, new: NewWorkOrder) -> ProdResult<WorkOrder> {
    let date = format_date(work_date(&new.work_date)?);
    let qty = quantity("quantity", new.quantity, false)?;
    if new.sequence.is_some_and(|s| !(1..=10_000).contains(&s)) {
        return Err(invalid("invalid_sequence", "sequence must be 1 to 10000"));
    }
    let stage = check_slot(db, &new.line_id, &new.shift, new.stage).await?;
    let order: Option<(String, Option<i64>)> =
        sqlx::query_as("SELECT product_id, cancelled_at FROM orders WHERE id = $1")
            .bind(&new.order_id)
            .fetch_optional(db.pool())
            .await?;
    let (product_id, cancelled) =
        order.ok_or_else(|| invalid("unknown_order", "order_id names no order"))?;
    if cancelled.is_some() {
        return Err(conflict("order_cancelled", "the order is cancelled"));
    }
    let product = products::get(db, &product_id)
        .await?
        .ok_or(ProdError::NotFound)?;
    let cycle_ms = products::cycle_ms_for(&product, stage).ok_or_else(|| {
        invalid(
            "no_cycle_time",
            format!(
                "product {} has no ideal cycle time for {}",
                product.sku,
                stage.as_str()
            ),
        )
    })?;
    let id = new_id();
    let now = crate::clock::now();
    let mut tx = db.begin_write().await?;
    let sequence = match new.sequence {
        Some(s) => s,
        None => {
            let max: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(sequence) FROM work_orders WHERE line_id = $1 AND work_date = $2 AND shift = $3",
            )
            .bind(&new.line_id)
            .bind(&date)
            .bind(&new.shift)
            .fetch_one(&mut *tx)
            .await?;
            max.unwrap_or(0) + 1
        }
    };
    sqlx::query(
        "INSERT INTO work_orders (id, order_id, stage, line_id, work_date, shift, sequence, quantity,
                                  ideal_cycle_ms, status, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'planned', 1, $10, $10)",
    )
    .bind(&id)
    .bind(&new.order_id)
    .bind(stage.as_str())
    .bind(&new.line_id)
    .bind(&date)
    .bind(&new.shift)
    .bind(sequence)
    .bind(qty)
    .bind(cycle_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    record(&mut *tx, &id, "scheduled", None, None, Some(Status::Planned), serde_json::json!({
        "line_id": new.line_id, "work_date": date, "shift": new.shift, "sequence": sequence, "quantity": qty,
    }))
    .await?;
    tx.commit().await?;
    get(db, &id).await
}

pub async fn get(db: &Db, id: &str) -> ProdResult<WorkOrder> {
    fetch(db.pool(), "WHERE w.id = $1", &[id])
        .await?
        .pop()
        .ok_or(ProdError::NotFound)
}

/// Reschedules a planned or paused work order (line, date, shift, sequence, quantity). A planned
/// one becomes a draft again until the schedule is republished (and its leaders told); a paused
/// one stays on the shop floor, where it is being worked.
pub async fn reschedule(
    db: &Db,
    actor: &str,
    id: &str,
    patch: WorkOrderPatch,
    expected: i64,
) -> ProdResult<WorkOrder> {
    let current = get(db, id).await?;
    check_version(Some(expected), current.version)?;
    if !matches!(current.status, Status::Planned | Status::Paused) {
        return Err(conflict(
            "not_reschedulable",
            format!(
                "a work order that is {} cannot be rescheduled",
                current.status.as_str()
            ),
        ));
    }
    let line_id = patch
        .line_id
        .clone()
        .unwrap_or_else(|| current.line_id.clone());
    let shift = patch.shift.clone().unwrap_or_else(|| current.shift.clone());
    let date = match &patch.work_date {
        Some(d) => format_date(work_date(d)?),
        None => current.work_date.clone(),
    };
    if line_id != current.line_id || shift != current.shift {
        check_slot(db, &line_id, &shift, Some(current.stage)).await?;
    }
    let qty = quantity(
        "quantity",
        patch.quantity.unwrap_or(current.quantity),
        false,
    )?;
    if qty < current.good_quantity + current.scrap_quantity {
        return Err(conflict(
            "quantity_below_reported",
            "quantity cannot be less than what was already reported",
        ));
    }
    let sequence = patch.sequence.unwrap_or(current.sequence);
    if !(1..=10_000).contains(&sequence) {
        return Err(invalid("invalid_sequence", "sequence must be 1 to 10000"));
    }
    let mut tx = db.begin_write().await?;
    let done = sqlx::query(
        "UPDATE work_orders SET line_id = $1, work_date = $2, shift = $3, sequence = $4, quantity = $5,
                version = version + 1, updated_at = $6,
                published_at = CASE WHEN status = 'planned' THEN NULL ELSE published_at END
         WHERE id = $7 AND version = $8",
    )
    .bind(&line_id)
    .bind(&date)
    .bind(&shift)
    .bind(sequence)
    .bind(qty)
    .bind(crate::clock::now())
    .bind(id)
    .bind(expected)
    .execute(&mut *tx)
    .await?;
    guarded(&done, expected)?;
    record(&mut *tx, id, "rescheduled", Some(actor), Some(current.status), Some(current.status), serde_json::json!({
        "line_id": line_id, "work_date": date, "shift": shift, "sequence": sequence, "quantity": qty,
    }))
    .await?;
    tx.commit().await?;
    get(db, id).await
}

/// Filters for the planner's list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub line_id: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<Status>,
    pub from: String,
    pub to: String,
}

/// Work orders in a date range, in schedule order (date, shift, line, sequence).
pub async fn list(db: &Db, f: &ListFilter) -> ProdResult<Vec<WorkOrder>> {
    let mut filter = String::from("WHERE w.work_date >= $1 AND w.work_date <= $2");
    let mut binds: Vec<&str> = vec![&f.from, &f.to];
    if let Some(line) = &f.line_id {
        binds.push(line);
        filter.push_str(&format!(" AND w.line_id = ${}", binds.len()));
    }
    if let Some(order) = &f.order_id {
        binds.push(order);
        filter.push_str(&format!(" AND w.order_id = ${}", binds.len()));
    }
    if let Some(status) = f.status {
        binds.push(status.as_str());
        filter.push_str(&format!(" AND w.status = ${}", binds.len()));
    }
    filter.push_str(" ORDER BY w.work_date, w.shift, l.code, w.sequence LIMIT 5000");
    fetch(db.pool(), &filter, &binds).await
}

/// A line leader's tasks: published work orders on their lines for the date, plus any still
/// running or paused from earlier dates and the day before's work not yet started (a night
/// shift runs past midnight), in line and sequence order.
pub async fn tasks(db: &Db, user_id: &str, date: Date) -> ProdResult<Vec<WorkOrder>> {
    let day = format_date(date);
    let before = date.previous_day().map(format_date).unwrap_or_default();
    fetch(
        db.pool(),
        "WHERE w.line_id IN (SELECT line_id FROM line_leaders WHERE user_id = $1)
           AND w.published_at IS NOT NULL
           AND (w.work_date = $2
                OR (w.work_date < $2 AND w.status IN ('in_progress', 'paused'))
                OR (w.work_date = $3 AND w.status = 'planned'))
         ORDER BY l.code, w.work_date, w.shift, w.sequence",
        &[user_id, &day, &before],
    )
    .await
}
