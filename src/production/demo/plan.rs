//! The demo's present and near future: every shift of every line from the one under way now to
//! the end of the sixth day after today carries a published work order of an open customer
//! order (runs of 3–6 consecutive shifts per order), plus a few orders not scheduled yet. One
//! order is overdue (due two days ago, still running) and one is scheduled past its due date, so
//! the dashboards have risks to show. In the shift under way, the first line runs with output so
//! far, the second is paused with an open stop, the third has not started; further lines run.

use time::Duration;

use super::rows::{OrderRow, Tables, WorkRow};
use super::sim::{self, Rng};
use super::writer::V;
use super::{Factory, Slot, CUSTOMERS, PRODUCTS};
use crate::production::new_id;

/// Open orders the demo keeps at least, counting the unscheduled ones.
const MIN_OPEN_ORDERS: usize = 10;

pub(super) fn write(f: &Factory, rng: &mut Rng, tables: &mut Tables) {
    let today = f.clock.date_at(f.now);
    let slots: Vec<Slot> = f
        .slots(today - Duration::days(1), today + Duration::days(6))
        .into_iter()
        .filter(|s| s.window.1 > f.now)
        .collect();
    let mut open = 0;
    for (li, line) in f.lines.iter().enumerate() {
        let mut rest: &[Slot] = &slots;
        let mut chunk_no = 0;
        while !rest.is_empty() {
            let take = (rng.range(3, 6) as usize).min(rest.len());
            let (chunk, tail) = rest.split_at(take);
            rest = tail;
            let product = rng.range(0, PRODUCTS.len() as i64 - 1) as usize;
            let ideal_ms = f.ideal_ms(product, line.kind);
            let order_id = new_id();
            let last = chunk.last().map_or(today, |s| s.date);
            let (due, priority) = if li == 0 && chunk_no == 0 {
                (today - Duration::days(2), 4) // overdue
            } else if li == 1 % f.lines.len() && chunk_no == 1 {
                ((last - Duration::days(2)).max(today), 3) // scheduled past its due date
            } else {
                (
                    last + Duration::days(rng.range(1, 4)),
                    rng.pick(&[(2, 55), (3, 25), (1, 15), (4, 5)]),
                )
            };
            let mut quantity = 0;
            for slot in chunk {
                quantity += work_order(f, rng, tables, li, &order_id, slot, ideal_ms);
            }
            tables.order(
                f,
                OrderRow {
                    id: &order_id,
                    number: format!("SO-{}", 40_100 + open),
                    customer: CUSTOMERS[rng.range(0, CUSTOMERS.len() as i64 - 1) as usize],
                    product,
                    quantity,
                    due,
                    priority,
                    created_at: f.now - rng.range(3 * 86_400, 12 * 86_400),
                },
            );
            open += 1;
            chunk_no += 1;
        }
    }
    // Orders the planner has not scheduled yet.
    let unscheduled = MIN_OPEN_ORDERS.saturating_sub(open).max(2);
    for _ in 0..unscheduled {
        let order_id = new_id();
        let product = rng.range(0, PRODUCTS.len() as i64 - 1) as usize;
        tables.order(
            f,
            OrderRow {
                id: &order_id,
                number: format!("SO-{}", 40_100 + open),
                customer: CUSTOMERS[rng.range(0, CUSTOMERS.len() as i64 - 1) as usize],
                product,
                quantity: rng.range(20, 120) * 50,
                due: today + Duration::days(rng.range(10, 25)),
                priority: rng.pick(&[(2, 60), (3, 25), (1, 15)]),
                created_at: f.now - rng.range(3_600, 2 * 86_400),
            },
        );
        open += 1;
    }
}

/// One published work order; the one of the shift under way is started, paused or not yet,
/// by line. Returns its quantity.
fn work_order(
    f: &Factory,
    rng: &mut Rng,
    tables: &mut Tables,
    li: usize,
    order_id: &str,
    slot: &Slot,
    ideal_ms: i64,
) -> i64 {
    let Some(line) = f.lines.get(li) else {
        return 0;
    };
    let wo = new_id();
    let created = f.now - 2 * 86_400 + rng.range(0, 3_600);
    let published = f.now - 86_400;
    tables.event(f, &wo, "scheduled", created, (None, "planned"), "{}".into());
    let quantity = f.target(ideal_ms);
    let current = slot.window.0 <= f.now && f.now < slot.window.1;
    let mut row = WorkRow {
        id: &wo,
        order_id,
        line,
        slot,
        quantity,
        ideal_ms,
        status: "planned",
        good: 0,
        scrap: 0,
        published_at: Some(published),
        started_at: None,
        completed_at: None,
        created_at: created,
        updated_at: created,
        version: 1,
    };
    if current && li != 2 {
        let started = (slot.window.0 + rng.range(0, 120)).min(f.now);
        tables.event(
            f,
            &wo,
            "started",
            started,
            (Some("planned"), "in_progress"),
            "{}".into(),
        );
        // The second line stopped a quarter of an hour or more ago (long enough for the line_down rule).
        let until = if li == 1 {
            (f.now - rng.range(16 * 60, 30 * 60)).clamp(started, f.now)
        } else {
            f.now
        };
        let run = f.run(line.kind, ideal_ms, slot, until);
        let (good, scrap, last) = tables.execute(f, rng, &wo, line, slot, &run);
        row.status = "in_progress";
        row.good = good;
        row.scrap = scrap;
        row.quantity = quantity.max(good);
        row.started_at = Some(started);
        row.updated_at = last.unwrap_or(started).max(started);
        row.version = 2;
        if li == 1 {
            let (reason, note) = sim::pause_reason(rng);
            tables.downtimes.push([
                new_id().into(),
                line.id.as_str().into(),
                wo.as_str().into(),
                V::S(reason),
                until.into(),
                V::NullInt,
                V::S("pause"),
                V::S(note),
                f.leader.as_deref().into(),
            ]);
            let detail = serde_json::json!({ "reason_code": reason, "note": note }).to_string();
            tables.event(
                f,
                &wo,
                "paused",
                until,
                (Some("in_progress"), "paused"),
                detail,
            );
            row.status = "paused";
            row.updated_at = until;
            row.version = 3;
        }
    }
    let quantity = row.quantity;
    tables.work_order(f, row);
    quantity
}
