//! An order's status, derived from its work orders and never stored: `new` (nothing
//! scheduled), `planned`, `in_progress`, `done` (every work order completed and the last stage's
//! good units reach the order's quantity), `cancelled`, or
//! `at_risk` — open and either past due, scheduled past its due date, or projected from the
//! actual rate of its last stage (good units per hour since that stage started) to finish after
//! the end of its due date.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::calendar::{parse_date, FactoryClock};
use super::work_orders::Status;
use super::LineKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    New,
    Planned,
    InProgress,
    Done,
    Cancelled,
    AtRisk,
}

/// How far the order is, measured at its last scheduled stage.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Progress {
    pub last_stage: Option<LineKind>,
    /// Good units reported at the last stage.
    pub completed_quantity: i64,
    /// Units per hour at the last stage since it started.
    pub actual_rate_per_hour: Option<f64>,
    /// RFC 3339; from the actual rate, when there is one.
    pub projected_completion: Option<String>,
    /// Why the order is at risk, when it is.
    pub risk: Option<String>,
}

/// What status derivation needs of one work order.
#[derive(Debug, Clone)]
pub struct WorkSummary {
    pub order_id: String,
    pub stage: LineKind,
    pub status: Status,
    pub good: i64,
    pub started_at: Option<i64>,
    pub work_date: String,
}

/// The status and progress of an order of `quantity` due on `due_date`, given its
/// non-cancelled work orders.
pub fn assess(
    quantity: i64,
    due_date: &str,
    cancelled: bool,
    work: &[&WorkSummary],
    clock: &FactoryClock,
    now: i64,
) -> (OrderStatus, Progress) {
    let due_end = parse_date(due_date)
        .and_then(|d| d.next_day())
        .map(|d| clock.midnight(d))
        .unwrap_or(i64::MAX);
    let mut progress = Progress::default();
    let status = if cancelled {
        OrderStatus::Cancelled
    } else if work.is_empty() {
        if now >= due_end {
            progress.risk = Some("past its due date with nothing scheduled".into());
            OrderStatus::AtRisk
        } else {
            OrderStatus::New
        }
    } else {
        project(quantity, work, now, due_end, &mut progress);
        // Done when every scheduled work order is finished and the last stage made enough;
        // finished work that fell short leaves the order in progress, awaiting more.
        if work.iter().all(|w| w.status == Status::Completed)
            && progress.completed_quantity >= quantity
        {
            OrderStatus::Done
        } else {
            if now >= due_end {
                progress.risk = Some("past its due date".into());
            } else if work
                .iter()
                .any(|w| w.status == Status::Planned && w.work_date.as_str() > due_date)
            {
                progress.risk = Some("scheduled after its due date".into());
            }
            if progress.risk.is_some() {
                OrderStatus::AtRisk
            } else if work.iter().all(|w| w.status == Status::Planned) {
                OrderStatus::Planned
            } else {
                OrderStatus::InProgress
            }
        }
    };
    if status == OrderStatus::Done || status == OrderStatus::Cancelled {
        progress.risk = None;
    }
    (status, progress)
}

/// Progress at the last stage and, from its actual rate, the projected completion.
fn project(quantity: i64, work: &[&WorkSummary], now: i64, due_end: i64, progress: &mut Progress) {
    let last = work.iter().map(|w| w.stage).max();
    progress.last_stage = last;
    let final_stage: Vec<&&WorkSummary> = work.iter().filter(|w| Some(w.stage) == last).collect();
    let done_qty: i64 = final_stage.iter().map(|w| w.good).sum();
    progress.completed_quantity = done_qty;
    let Some(start) = final_stage
        .iter()
        .filter_map(|w| w.started_at)
        .min()
        .filter(|s| now > *s)
    else {
        return;
    };
    let rate = done_qty as f64 / (now - start) as f64;
    if rate <= 0.0 {
        return;
    }
    progress.actual_rate_per_hour = Some((rate * 3600.0 * 10.0).round() / 10.0);
    let remaining = (quantity - done_qty).max(0) as f64;
    // Capped at ten years ahead: a trickle of output must not overflow the clock.
    let eta = now.saturating_add(((remaining / rate).ceil() as i64).min(10 * 365 * 86_400));
    progress.projected_completion = Some(crate::clock::rfc3339(eta));
    if eta > due_end && remaining > 0.0 {
        progress.risk = Some("projected to finish after its due date".into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(
        stage: LineKind,
        status: Status,
        good: i64,
        started_at: Option<i64>,
        date: &str,
    ) -> WorkSummary {
        WorkSummary {
            order_id: "o".into(),
            stage,
            status,
            good,
            started_at,
            work_date: date.into(),
        }
    }

    #[test]
    fn the_actual_rate_of_the_last_stage_projects_completion() {
        let clock = FactoryClock::new(time::UtcOffset::UTC);
        let due_end = clock.midnight(parse_date("2026-03-11").unwrap());
        let now = due_end - 10 * 3600; // 14:00 on the due date
                                       // SMT is done; TEST has made 100 good units in the last 2 hours: 50/h, 900 to go = 18 h.
        let smt = work(
            LineKind::Smt,
            Status::Completed,
            1000,
            Some(now - 86_400),
            "2026-03-09",
        );
        let test = work(
            LineKind::Test,
            Status::InProgress,
            100,
            Some(now - 7200),
            "2026-03-10",
        );
        let (status, p) = assess(1000, "2026-03-10", false, &[&smt, &test], &clock, now);
        assert_eq!(status, OrderStatus::AtRisk);
        assert_eq!(p.last_stage, Some(LineKind::Test));
        assert_eq!(p.completed_quantity, 100);
        assert_eq!(p.actual_rate_per_hour, Some(50.0));
        assert_eq!(
            p.projected_completion.as_deref(),
            Some("2026-03-11T08:00:00Z")
        );
        assert_eq!(
            p.risk.as_deref(),
            Some("projected to finish after its due date")
        );
        // The same rate with a day more is fine.
        let (status, p) = assess(1000, "2026-03-11", false, &[&smt, &test], &clock, now);
        assert_eq!(status, OrderStatus::InProgress);
        assert!(p.risk.is_none());
    }

    #[test]
    fn statuses_follow_the_work_orders() {
        let clock = FactoryClock::new(time::UtcOffset::UTC);
        let now = clock.midnight(parse_date("2026-03-01").unwrap());
        let planned = work(LineKind::Smt, Status::Planned, 0, None, "2026-03-02");
        let late = work(LineKind::Smt, Status::Planned, 0, None, "2026-03-09");
        let done = work(
            LineKind::Smt,
            Status::Completed,
            10,
            Some(now - 60),
            "2026-02-28",
        );
        let trickle = work(
            LineKind::Smt,
            Status::InProgress,
            1,
            Some(now - 1),
            "2026-03-01",
        );
        let due = "2026-03-05";
        assert_eq!(assess(10, due, false, &[], &clock, now).0, OrderStatus::New);
        assert_eq!(
            assess(10, due, false, &[&planned], &clock, now).0,
            OrderStatus::Planned
        );
        assert_eq!(
            assess(10, due, false, &[&planned, &late], &clock, now).0,
            OrderStatus::AtRisk
        );
        assert_eq!(
            assess(10, due, false, &[&done], &clock, now).0,
            OrderStatus::Done
        );
        assert_eq!(
            assess(10, due, true, &[&late], &clock, now).0,
            OrderStatus::Cancelled
        );
        assert_eq!(
            assess(10, "2026-02-27", false, &[], &clock, now).0,
            OrderStatus::AtRisk
        );
        // A unit a second for ten million units does not overflow the projection.
        let (status, p) = assess(10_000_000, "2999-12-31", false, &[&trickle], &clock, now);
        assert_eq!(status, OrderStatus::InProgress);
        assert!(p.projected_completion.is_some());
    }
}
