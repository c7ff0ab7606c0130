//! Shop-floor execution by a line's leaders: start, pause (with a downtime reason, which opens a
//! stop), resume (which closes it), report output (good and scrap with a scrap reason), report a
//! stop after the fact, and complete. Each action is one transaction that checks the state
//! machine and the version, writes the change, appends to the history, and queues an execution
//! event through the outbox — so an event exists exactly when the change does.

use serde::Deserialize;
use sqlx::{Any, Transaction};
use utoipa::ToSchema;

use super::work_orders::{self, illegal, Action, Status, WorkOrder};
use super::{
    calendar::{format_date, FactoryClock},
    conflict, guarded, invalid, lines, new_id, quantity, reasons, ProdError, ProdResult, Viewer,
};
use crate::db::Db;
use crate::events::{self, Event};

/// Who acts, and the version they acted on (`If-Match`), if they said.
pub struct Act<'a> {
    pub user_id: &'a str,
    pub expected: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseBody {
    /// A downtime reason code.
    pub reason_code: String,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputBody {
    pub good: i64,
    pub scrap: i64,
    /// Required when scrap > 0: a scrap reason code.
    pub scrap_reason: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DowntimeBody {
    pub reason_code: String,
    /// RFC 3339
    pub start: String,
    /// RFC 3339, after `start` and not in the future.
    pub end: String,
    pub note: Option<String>,
}

/// Allowed clock skew between a tablet and the server for "not in the future".
const SKEW_SECS: i64 = 120;
/// How far back a stop may be reported.
const MAX_BACKDATE_SECS: i64 = 7 * 24 * 3600;

fn note(raw: Option<&str>) -> ProdResult<String> {
    let n = raw.unwrap_or("").trim();
    if n.chars().count() > 500 || n.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(
            "invalid_note",
            "note must be at most 500 characters",
        ));
    }
    Ok(n.to_owned())
}

/// Loads the work order for a leader of its line (not found otherwise), checking `If-Match`.
async fn load(db: &Db, act: &Act<'_>, id: &str) -> ProdResult<WorkOrder> {
    let viewer = Viewer {
        user_id: act.user_id.to_owned(),
        manager: false,
    };
    let wo = work_orders::visible(db, &viewer, id).await?;
    super::check_version(act.expected, wo.version)?;
    Ok(wo)
}

/// Runs `step` on the latest version; without `If-Match`, a concurrent change is retried so two
/// leaders reporting at once both count; with it, the caller's stale version is a `409`.
async fn with_retry<F, Fut>(db: &Db, act: &Act<'_>, id: &str, mut step: F) -> ProdResult<WorkOrder>
where
    F: FnMut(WorkOrder) -> Fut,
    Fut: std::future::Future<Output = ProdResult<()>>,
{
    for _ in 0..5 {
        let wo = load(db, act, id).await?;
        match step(wo).await {
            Err(ProdError::Stale(v)) if act.expected.is_none() => {
                tracing::debug!(version = v, "work order changed underneath; retrying");
            }
            other => {
                other?;
                return work_orders::get(db, id).await;
            }
        }
    }
    Err(conflict(
        "busy",
        "the work order is changing too fast; try again",
    ))
}

/// Bumps the version if it is still `version`, else `Stale`.
async fn bump(
    tx: &mut Transaction<'static, Any>,
    wo: &WorkOrder,
    status: Status,
    set: &str,
    now: i64,
) -> ProdResult<()> {
    let sql = format!(
        "UPDATE work_orders SET status = $1, version = version + 1, updated_at = $2{set}
         WHERE id = $3 AND version = $4"
    );
    let done = sqlx::query(&sql)
        .bind(status.as_str())
        .bind(now)
        .bind(&wo.id)
        .bind(wo.version)
        .execute(&mut **tx)
        .await?;
    guarded(&done, wo.version)?;
    Ok(())
}

/// Adds output to the counts in one conditional statement. Output adds up, so it is counted on
/// top of whatever was reported meanwhile: leaders reporting on one work order at once never
/// refuse each other. It is `Stale` only when the work order closed, the good units would pass
/// the quantity, or the caller's `If-Match` version is no longer current; the caller reloads and
/// says which.
async fn add_output(
    tx: &mut Transaction<'static, Any>,
    wo: &WorkOrder,
    expected: Option<i64>,
    good: i64,
    scrap: i64,
    now: i64,
) -> ProdResult<()> {
    let done = sqlx::query(
        "UPDATE work_orders
         SET good_qty = good_qty + $1, scrap_qty = scrap_qty + $2, version = version + 1,
             updated_at = $3
         WHERE id = $4 AND status IN ($5, $6) AND good_qty + $1 <= quantity
           AND version = COALESCE($7, version)",
    )
    .bind(good)
    .bind(scrap)
    .bind(now)
    .bind(&wo.id)
    .bind(Status::InProgress.as_str())
    .bind(Status::Paused.as_str())
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    guarded(&done, wo.version)
}

fn event(kind: &str, wo: &WorkOrder, at: i64, data: serde_json::Value) -> Event {
    Event {
        kind: kind.to_owned(),
        line_id: Some(wo.line_id.clone()),
        order_id: Some(wo.order_id.clone()),
        work_order_id: Some(wo.id.clone()),
        severity: "info".into(),
        at,
        data,
    }
}

/// start, resume and complete: a transition with no body.
pub async fn transition(db: &Db, act: &Act<'_>, id: &str, action: Action) -> ProdResult<WorkOrder> {
    with_retry(db, act, id, |wo| async move {
        let to = wo
            .status
            .after(action)
            .ok_or_else(|| illegal(wo.status, action))?;
        if action == Action::Cancel || action == Action::Pause {
            return Err(illegal(wo.status, action));
        }
        let now = crate::clock::now();
        let mut tx = db.begin_write().await?;
        lock_line(&mut tx, &wo.line_id).await?;
        if to == Status::InProgress {
            running_elsewhere(&mut tx, &wo).await?;
        }
        let set = match action {
            Action::Start => ", started_at = $2",
            Action::Complete => ", completed_at = $2",
            _ => "",
        };
        bump(&mut tx, &wo, to, set, now).await?;
        // The stop this work order's pause opened ends now; and a line that runs again is no
        // longer stopped for another work order's pause either.
        let closed = close_stops(&mut tx, &wo, to == Status::InProgress, now).await?;
        let kind = match action {
            Action::Start => "started",
            Action::Resume => "resumed",
            _ => "completed",
        };
        work_orders::record(
            &mut *tx,
            &wo.id,
            kind,
            Some(act.user_id),
            Some(wo.status),
            Some(to),
            serde_json::json!({}),
        )
        .await?;
        events::enqueue(
            &mut tx,
            &event(
                &format!("work_order.{kind}"),
                &wo,
                now,
                serde_json::json!({
                    "good": wo.good_quantity, "scrap": wo.scrap_quantity, "quantity": wo.quantity,
                    "closed_stops": closed,
                }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// Serialises execution on one line (a row lock on PostgreSQL; SQLite's writer lock already does).
async fn lock_line(tx: &mut Transaction<'static, Any>, line_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE lines SET version = version WHERE id = $1")
        .bind(line_id)
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

/// A line runs one work order at a time.
async fn running_elsewhere(tx: &mut Transaction<'static, Any>, wo: &WorkOrder) -> ProdResult<()> {
    let other: Option<String> = sqlx::query_scalar(
        "SELECT o.number FROM work_orders w JOIN orders o ON o.id = w.order_id
         WHERE w.line_id = $1 AND w.status = 'in_progress' AND w.id <> $2 LIMIT 1",
    )
    .bind(&wo.line_id)
    .bind(&wo.id)
    .fetch_optional(&mut **tx)
    .await?;
    match other {
        Some(number) => Err(conflict(
            "line_busy",
            format!("a work order of order {number} is running on this line; pause or complete it first"),
        )),
        None => Ok(()),
    }
}

/// Ends the open stops of this work order (and, when the line runs again, of the whole line);
/// returns them as `{downtime_id, reason_code, minutes}` for the alert rules.
async fn close_stops(
    tx: &mut Transaction<'static, Any>,
    wo: &WorkOrder,
    whole_line: bool,
    now: i64,
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    let open: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT id, reason_code, started_at FROM downtimes
         WHERE ended_at IS NULL AND (work_order_id = $1 OR ($2 = 1 AND line_id = $3))",
    )
    .bind(&wo.id)
    .bind(i64::from(whole_line))
    .bind(&wo.line_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut closed = Vec::new();
    for (id, reason, started) in open {
        sqlx::query("UPDATE downtimes SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        closed.push(serde_json::json!({
            "downtime_id": id, "reason_code": reason, "minutes": (now - started).max(0) / 60,
        }));
    }
    Ok(closed)
}

/// Pauses: the line stops for a downtime reason until resumed.
pub async fn pause(db: &Db, act: &Act<'_>, id: &str, body: &PauseBody) -> ProdResult<WorkOrder> {
    let note = note(body.note.as_deref())?;
    reasons::require(db, reasons::Kind::Downtime, &body.reason_code).await?;
    with_retry(db, act, id, |wo| {
        let note = note.clone();
        async move {
            let to = wo.status.after(Action::Pause).ok_or_else(|| illegal(wo.status, Action::Pause))?;
            let now = crate::clock::now();
            let downtime_id = new_id();
            let mut tx = db.begin_write().await?;
            lock_line(&mut tx, &wo.line_id).await?;
            bump(&mut tx, &wo, to, "", now).await?;
            sqlx::query(
                "INSERT INTO downtimes (id, line_id, work_order_id, reason_code, started_at, ended_at, source, note, actor_id)
                 VALUES ($1, $2, $3, $4, $5, NULL, 'pause', $6, $7)",
            )
            .bind(&downtime_id)
            .bind(&wo.line_id)
            .bind(&wo.id)
            .bind(&body.reason_code)
            .bind(now)
            .bind(&note)
            .bind(act.user_id)
            .execute(&mut *tx)
            .await?;
            work_orders::record(&mut *tx, &wo.id, "paused", Some(act.user_id), Some(wo.status), Some(to),
                serde_json::json!({ "reason_code": body.reason_code, "note": note })).await?;
            let mut e = event("work_order.paused", &wo, now, serde_json::json!({ "reason_code": body.reason_code, "downtime_id": downtime_id }));
            e.severity = "warning".into();
            events::enqueue(&mut tx, &e).await?;
            tx.commit().await?;
            Ok(())
        }
    })
    .await
}

/// Reports output. Good units may not exceed the work order's quantity in total. A report with an
/// idempotency `key` that this person already used is not counted again ([`replayed`]).
pub async fn report_output(
    db: &Db,
    clock: &FactoryClock,
    act: &Act<'_>,
    id: &str,
    body: &OutputBody,
    key: Option<&str>,
) -> ProdResult<WorkOrder> {
    // Before any check: a repeat is answered as the report it repeats was, even if a reason has
    // been retired or the work order completed since.
    if let Some(key) = key {
        if let Some(wo) = replayed(db, act, id, body, key).await? {
            return Ok(wo);
        }
    }
    let good = quantity("good", body.good, true)?;
    let scrap = quantity("scrap", body.scrap, true)?;
    if good + scrap == 0 {
        return Err(invalid(
            "invalid_quantity",
            "report at least one good or scrap unit",
        ));
    }
    match (&body.scrap_reason, scrap) {
        (None, s) if s > 0 => {
            return Err(invalid(
                "scrap_reason_required",
                "scrap needs a scrap_reason",
            ))
        }
        (Some(code), _) => reasons::require(db, reasons::Kind::Scrap, code).await?,
        _ => {}
    }
    let counted = with_retry(db, act, id, |wo| async move {
        if !wo.status.is_open() {
            return Err(conflict(
                "not_running",
                format!("output cannot be reported on a work order that is {}", wo.status.as_str()),
            ));
        }
        if wo.good_quantity + good > wo.quantity {
            return Err(invalid(
                "exceeds_quantity",
                format!("this would make {} good units of the {} planned; ask the planner to raise the quantity", wo.good_quantity + good, wo.quantity),
            ));
        }
        let now = crate::clock::now();
        let (_, shifts, _) = lines::kind_and_shifts(db.pool(), &wo.line_id).await?.ok_or(ProdError::NotFound)?;
        let (date, shift) = clock
            .locate(&shifts, now)
            .map(|(d, s)| (format_date(d), s.name.clone()))
            .unwrap_or_else(|| (wo.work_date.clone(), wo.shift.clone()));
        let mut tx = db.begin_write().await?;
        add_output(&mut tx, &wo, act.expected, good, scrap, now).await?;
        sqlx::query(
            "INSERT INTO output_reports (id, work_order_id, line_id, work_date, shift, at, good, scrap,
                                         scrap_reason, ideal_cycle_ms, actor_id, idempotency_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(new_id())
        .bind(&wo.id)
        .bind(&wo.line_id)
        .bind(&date)
        .bind(&shift)
        .bind(now)
        .bind(good)
        .bind(scrap)
        .bind(&body.scrap_reason)
        .bind((wo.ideal_cycle_seconds * 1000.0).round() as i64)
        .bind(act.user_id)
        .bind(key)
        .execute(&mut *tx)
        .await?;
        work_orders::record(&mut *tx, &wo.id, "output", Some(act.user_id), None, None,
            serde_json::json!({ "good": good, "scrap": scrap, "scrap_reason": body.scrap_reason })).await?;
        events::enqueue(&mut tx, &event("work_order.output", &wo, now, serde_json::json!({
            "good": good, "scrap": scrap, "scrap_reason": body.scrap_reason, "work_date": date, "shift": shift,
        }))).await?;
        tx.commit().await?;
        Ok(())
    })
    .await;
    match (counted, key) {
        // The same key in flight twice at once: the second insert lost to the first.
        (Err(ProdError::Database(e)), Some(key)) if crate::db::is_unique_violation(&e) => {
            replayed(db, act, id, body, key)
                .await?
                .ok_or(ProdError::Database(e))
        }
        (counted, _) => counted,
    }
}

/// The work order as it is now when this person already sent this report under `key` (counted
/// then, not again); `None` when the key is new; `422` when it named a different report.
async fn replayed(
    db: &Db,
    act: &Act<'_>,
    id: &str,
    body: &OutputBody,
    key: &str,
) -> ProdResult<Option<WorkOrder>> {
    let earlier: Option<(String, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT work_order_id, good, scrap, scrap_reason FROM output_reports
         WHERE actor_id = $1 AND idempotency_key = $2",
    )
    .bind(act.user_id)
    .bind(key)
    .fetch_optional(db.pool())
    .await?;
    match earlier {
        None => Ok(None),
        Some((wo, good, scrap, reason))
            if wo == id && good == body.good && scrap == body.scrap && reason == body.scrap_reason =>
        {
            tracing::info!(work_order = id, "output report sent again; counted once");
            Ok(Some(work_orders::get(db, id).await?))
        }
        Some(_) => Err(invalid(
            "idempotency_key_reused",
            "this Idempotency-Key was sent with a different report; send a new key for a new report",
        )),
    }
}

/// Reports a stop after the fact. It must end after it starts, not in the future, within the
/// last week, and not overlap another stop recorded on the line.
pub async fn report_downtime(
    db: &Db,
    act: &Act<'_>,
    id: &str,
    body: &DowntimeBody,
) -> ProdResult<WorkOrder> {
    let start = crate::clock::parse_rfc3339(&body.start)
        .ok_or_else(|| invalid("invalid_time", "start must be an RFC 3339 time"))?;
    let end = crate::clock::parse_rfc3339(&body.end)
        .ok_or_else(|| invalid("invalid_time", "end must be an RFC 3339 time"))?;
    let now = crate::clock::now();
    if end <= start {
        return Err(invalid("invalid_interval", "end must be after start"));
    }
    if end > now + SKEW_SECS {
        return Err(invalid("invalid_interval", "end cannot be in the future"));
    }
    if start < now - MAX_BACKDATE_SECS {
        return Err(invalid(
            "invalid_interval",
            "stops older than a week cannot be reported",
        ));
    }
    let note = note(body.note.as_deref())?;
    reasons::require(db, reasons::Kind::Downtime, &body.reason_code).await?;
    with_retry(db, act, id, |wo| {
        let note = note.clone();
        async move {
            if !wo.status.is_open() {
                return Err(conflict(
                    "not_running",
                    format!("downtime cannot be reported on a work order that is {}", wo.status.as_str()),
                ));
            }
            let mut tx = db.begin_write().await?;
            lock_line(&mut tx, &wo.line_id).await?;
            let overlapping: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM downtimes WHERE line_id = $1 AND started_at < $2
                   AND COALESCE(ended_at, $4) > $3",
            )
            .bind(&wo.line_id)
            .bind(end)
            .bind(start)
            .bind(i64::MAX)
            .fetch_one(&mut *tx)
            .await?;
            if overlapping > 0 {
                return Err(conflict("downtime_overlap", "this stop overlaps one already recorded on the line"));
            }
            bump(&mut tx, &wo, wo.status, "", now).await?;
            let downtime_id = new_id();
            sqlx::query(
                "INSERT INTO downtimes (id, line_id, work_order_id, reason_code, started_at, ended_at, source, note, actor_id)
                 VALUES ($1, $2, $3, $4, $5, $6, 'report', $7, $8)",
            )
            .bind(&downtime_id)
            .bind(&wo.line_id)
            .bind(&wo.id)
            .bind(&body.reason_code)
            .bind(start)
            .bind(end)
            .bind(&note)
            .bind(act.user_id)
            .execute(&mut *tx)
            .await?;
            work_orders::record(&mut *tx, &wo.id, "downtime", Some(act.user_id), None, None, serde_json::json!({
                "reason_code": body.reason_code, "start": body.start, "end": body.end, "note": note,
            })).await?;
            let mut e = event("work_order.downtime", &wo, now, serde_json::json!({
                "reason_code": body.reason_code, "minutes": (end - start) / 60, "downtime_id": downtime_id,
            }));
            e.severity = "warning".into();
            events::enqueue(&mut tx, &e).await?;
            tx.commit().await?;
            Ok(())
        }
    })
    .await
}
