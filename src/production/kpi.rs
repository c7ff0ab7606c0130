//! KPIs: OEE per line and shift rolled up per day or week, the factory's day at a glance, and the
//! downtime Pareto. Inputs per (line, date, shift) come from three indexed queries — scheduled
//! work, output reports (already attributed to their shift when written) and stops overlapping
//! the period — and the factors are computed by [`super::oee`]. A shift counts as planned
//! production time when work was scheduled or output reported in it; for a shift still under way
//! only its elapsed part counts, so today's availability is not diluted by hours yet to come.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, Duration};
use utoipa::ToSchema;

use super::calendar::{format_date, merge, overlap, week_start, FactoryClock};
use super::lines::{self, Line};
use super::oee::{self, Inputs, Oee};
use super::orders::{self, Order, OrderStatus};
use super::{invalid, ProdError, ProdResult};
use crate::app::AppState;
use crate::db::Db;

/// Longest period one KPI request may cover.
pub const MAX_DAYS: i64 = 366;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    Shift,
    Day,
    Week,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Bucket {
    /// `YYYY-MM-DD` (day, or the Monday of a week), or `YYYY-MM-DD/SHIFT` for shifts.
    pub period: String,
    #[serde(flatten)]
    pub oee: Oee,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineKpi {
    pub line_id: String,
    pub line_code: String,
    pub from: String,
    pub to: String,
    pub group: Group,
    pub buckets: Vec<Bucket>,
    pub total: Oee,
}

pub fn check_range(from: Date, to: Date) -> ProdResult<()> {
    if to < from || (to - from).whole_days() >= MAX_DAYS {
        return Err(invalid(
            "invalid_range",
            format!("to must be on or after from, within {MAX_DAYS} days"),
        ));
    }
    Ok(())
}

/// (line id, date, shift) → inputs.
type Slots = BTreeMap<(String, String, String), Inputs>;

/// Inputs per (line, date, shift) over a date range for these lines, in three grouped queries
/// that each read the `(line_id, work_date …)` indexes, one range per line.
async fn slot_inputs(
    db: &Db,
    clock: &FactoryClock,
    lines: &[&Line],
    from: Date,
    to: Date,
    now: i64,
) -> ProdResult<Slots> {
    if lines.is_empty() {
        return Ok(Slots::new());
    }
    let (f, t) = (format_date(from), format_date(to));
    let placeholders: Vec<String> = (3..3 + lines.len()).map(|i| format!("${i}")).collect();
    let line_filter = format!(" AND line_id IN ({})", placeholders.join(", "));
    let mut slots = Slots::new();
    let sql = format!(
        "SELECT line_id, work_date, shift, CAST(COALESCE(SUM(quantity), 0) AS BIGINT) FROM work_orders
         WHERE work_date >= $1 AND work_date <= $2{line_filter} AND status <> 'cancelled'
         GROUP BY line_id, work_date, shift"
    );
    let mut q = sqlx::query_as::<_, (String, String, String, i64)>(&sql)
        .bind(&f)
        .bind(&t);
    for l in lines {
        q = q.bind(&l.id);
    }
    for (line, date, shift, qty) in q.fetch_all(db.pool()).await? {
        slots.entry((line, date, shift)).or_default().planned_qty += qty;
    }
    let sql = format!(
        "SELECT line_id, work_date, shift, CAST(COALESCE(SUM(good), 0) AS BIGINT),
                CAST(COALESCE(SUM(scrap), 0) AS BIGINT),
                CAST(COALESCE(SUM(ideal_cycle_ms * (good + scrap)), 0) AS BIGINT)
         FROM output_reports WHERE work_date >= $1 AND work_date <= $2{line_filter}
         GROUP BY line_id, work_date, shift"
    );
    let mut q = sqlx::query_as::<_, (String, String, String, i64, i64, i64)>(&sql)
        .bind(&f)
        .bind(&t);
    for l in lines {
        q = q.bind(&l.id);
    }
    for (line, date, shift, good, scrap, ideal) in q.fetch_all(db.pool()).await? {
        let slot = slots.entry((line, date, shift)).or_default();
        slot.good += good;
        slot.scrap += scrap;
        slot.ideal_ms += ideal;
    }
    // Real-time bounds of the period, widened by a day for night shifts.
    let start = clock.midnight(from);
    let end = clock.midnight(to + Duration::days(2));
    let sql = format!(
        "SELECT line_id, started_at, ended_at FROM downtimes
         WHERE started_at < $1 AND (ended_at IS NULL OR ended_at > $2){line_filter}"
    );
    let mut q = sqlx::query_as::<_, (String, i64, Option<i64>)>(&sql)
        .bind(end)
        .bind(start);
    for l in lines {
        q = q.bind(&l.id);
    }
    let stops = q.fetch_all(db.pool()).await?;
    let mut by_line: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (line, s, e) in stops {
        by_line.entry(line).or_default().push((s, e.unwrap_or(now)));
    }
    let by_line: BTreeMap<String, Vec<(i64, i64)>> =
        by_line.into_iter().map(|(l, v)| (l, merge(v))).collect();
    for ((line_id, date, shift_name), slot) in slots.iter_mut() {
        let shift = lines
            .iter()
            .find(|l| &l.id == line_id)
            .and_then(|l| l.shifts.iter().find(|s| &s.name == shift_name));
        let (Some(date), Some(shift)) = (super::calendar::parse_date(date), shift) else {
            continue;
        };
        let window = clock.window(date, shift);
        if window.0 >= now {
            slot.planned_secs = 0;
            continue;
        }
        let elapsed = overlap(window, (window.0, now));
        // Breaks are spread over the shift: an elapsed fraction carries its share.
        slot.planned_secs = shift.planned_secs() * elapsed / (shift.minutes * 60).max(1);
        let live = (window.0, window.1.min(now));
        slot.downtime_secs = by_line
            .get(line_id)
            .map(|stops| stops.iter().map(|stop| overlap(live, *stop)).sum())
            .unwrap_or(0);
    }
    Ok(slots)
}

pub async fn line_oee(
    state: &AppState,
    line_id: &str,
    from: Date,
    to: Date,
    group: Group,
) -> ProdResult<LineKpi> {
    check_range(from, to)?;
    let line = lines::get(&state.db, line_id)
        .await?
        .ok_or(ProdError::NotFound)?;
    let now = crate::clock::now();
    let slots = slot_inputs(&state.db, &state.clock, &[&line], from, to, now).await?;
    let mut buckets: BTreeMap<String, Inputs> = BTreeMap::new();
    let mut total = Inputs::default();
    for ((_, date, shift), inputs) in slots {
        let key = match group {
            Group::Shift => format!("{date}/{shift}"),
            Group::Day => date,
            Group::Week => super::calendar::parse_date(&date)
                .map(|d| format_date(week_start(d)))
                .unwrap_or(date),
        };
        *buckets.entry(key).or_default() += inputs;
        total += inputs;
    }
    Ok(LineKpi {
        line_id: line.id,
        line_code: line.code,
        from: format_date(from),
        to: format_date(to),
        group,
        buckets: buckets
            .into_iter()
            .map(|(period, i)| Bucket {
                period,
                oee: oee::compute(i),
            })
            .collect(),
        total: oee::compute(total),
    })
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    Running,
    Paused,
    Idle,
    Inactive,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LineToday {
    pub line_id: String,
    pub line_code: String,
    pub line_name: String,
    pub state: LineState,
    /// The running or paused work order, if any.
    pub current_work_order: Option<String>,
    pub oee: Oee,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FactorySummary {
    pub date: String,
    pub lines: Vec<LineToday>,
    /// All lines together.
    pub factory: Oee,
    pub orders_at_risk: Vec<Order>,
    pub open_alerts: i64,
}

pub async fn factory_summary(state: &AppState, date: Date) -> ProdResult<FactorySummary> {
    let now = crate::clock::now();
    let all = lines::list(&state.db).await?;
    let running: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT line_id, id, status FROM work_orders WHERE status IN ('in_progress', 'paused')",
    )
    .fetch_all(state.db.pool())
    .await?;
    let refs: Vec<&Line> = all.iter().collect();
    let slots = slot_inputs(&state.db, &state.clock, &refs, date, date, now).await?;
    let mut factory = Inputs::default();
    let mut out = Vec::new();
    for line in &all {
        let mut day = Inputs::default();
        for (_, inputs) in slots.iter().filter(|((l, _, _), _)| l == &line.id) {
            day += *inputs;
        }
        factory += day;
        let current = running
            .iter()
            .find(|r| r.0 == line.id && r.2 == "in_progress")
            .or_else(|| running.iter().find(|r| r.0 == line.id));
        let state_now = match (line.active, current.map(|c| c.2.as_str())) {
            (false, _) => LineState::Inactive,
            (_, Some("in_progress")) => LineState::Running,
            (_, Some(_)) => LineState::Paused,
            _ => LineState::Idle,
        };
        out.push(LineToday {
            current_work_order: current.map(|c| c.1.clone()),
            line_id: line.id.clone(),
            line_code: line.code.clone(),
            line_name: line.name.clone(),
            state: state_now,
            oee: oee::compute(day),
        });
    }
    let at_risk = orders::open(&state.db, &state.clock)
        .await?
        .into_iter()
        .filter(|o| o.status == OrderStatus::AtRisk)
        .collect();
    let open_alerts: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NULL")
            .fetch_one(state.db.pool())
            .await?;
    Ok(FactorySummary {
        date: format_date(date),
        lines: out,
        factory: oee::compute(factory),
        orders_at_risk: at_risk,
        open_alerts,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ParetoEntry {
    pub reason_code: String,
    pub label: Option<String>,
    pub minutes: f64,
    pub stops: i64,
    /// Share of all downtime in the period, and the running total in this order.
    pub share: f64,
    pub cumulative_share: f64,
}

/// Downtime by reason over a date range (one line or all), largest first.
pub async fn pareto(
    state: &AppState,
    line_id: Option<&str>,
    from: Date,
    to: Date,
) -> ProdResult<Vec<ParetoEntry>> {
    check_range(from, to)?;
    let now = crate::clock::now();
    let start = state.clock.midnight(from);
    let end = state.clock.midnight(to + Duration::days(1));
    let rows: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT reason_code, started_at, ended_at FROM downtimes
         WHERE ($1 = '' OR line_id = $1) AND started_at < $2 AND (ended_at IS NULL OR ended_at > $3)",
    )
    .bind(line_id.unwrap_or(""))
    .bind(end)
    .bind(start)
    .fetch_all(state.db.pool())
    .await?;
    let labels: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT code, label FROM reasons WHERE kind = 'downtime'",
    )
    .fetch_all(state.db.pool())
    .await?
    .into_iter()
    .collect();
    let mut by_reason: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (reason, s, e) in rows {
        let secs = overlap((start, end.min(now)), (s, e.unwrap_or(now)));
        let entry = by_reason.entry(reason).or_default();
        entry.0 += secs;
        entry.1 += 1;
    }
    let total: i64 = by_reason.values().map(|v| v.0).sum();
    let mut entries: Vec<(String, i64, i64)> =
        by_reason.into_iter().map(|(r, (s, n))| (r, s, n)).collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut running = 0;
    let share = |x: i64| {
        if total > 0 {
            (x as f64 * 10_000.0 / total as f64).round() / 10_000.0
        } else {
            0.0
        }
    };
    Ok(entries
        .into_iter()
        .map(|(reason, secs, stops)| {
            running += secs;
            ParetoEntry {
                label: labels.get(&reason).cloned(),
                reason_code: reason,
                minutes: (secs as f64 / 6.0).round() / 10.0,
                stops,
                share: share(secs),
                cumulative_share: share(running),
            }
        })
        .collect())
}
