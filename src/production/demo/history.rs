//! The demo's past: every shift of every line that has already ended, from the first day of
//! history up to now, ran one completed work order of that line's weekly customer order (one
//! order per line and ISO week, quantity = what was made, due at the end of the week). Each
//! shift's stops and output come from [`super::sim`]. Written one week at a time, each week in
//! one transaction. A work order's history keeps its transitions (scheduled, started, completed),
//! not one entry per output report, to keep the volume down.

use std::collections::BTreeMap;

use time::{Date, Duration};

use super::rows::{OrderRow, Tables, WorkRow};
use super::sim::Rng;
use super::{Factory, Slot, CUSTOMERS, PRODUCTS};
use crate::db::Db;
use crate::production::calendar::{format_date, week_start};
use crate::production::new_id;

pub(super) async fn write(
    db: &Db,
    f: &Factory,
    rng: &mut Rng,
    from: Date,
    tables: &mut Tables,
) -> anyhow::Result<()> {
    let today = f.clock.date_at(f.now);
    let mut weeks: BTreeMap<Date, Vec<Slot>> = BTreeMap::new();
    for slot in f
        .slots(from, today)
        .into_iter()
        .filter(|s| s.window.1 <= f.now)
    {
        weeks.entry(week_start(slot.date)).or_default().push(slot);
    }
    let total = weeks.len();
    for (n, (monday, slots)) in weeks.into_iter().enumerate() {
        for line in &f.lines {
            let order_id = new_id();
            let product = rng.range(0, PRODUCTS.len() as i64 - 1) as usize;
            let ideal_ms = f.ideal_ms(product, line.kind);
            let created_at = f.clock.midnight(monday) - rng.range(3 * 86_400, 10 * 86_400);
            let mut made = 0;
            for slot in &slots {
                let wo = new_id();
                let run = f.run(line.kind, ideal_ms, slot, slot.window.1);
                let (good, scrap, last) = tables.execute(f, rng, &wo, line, slot, &run);
                made += good;
                let scheduled = f.clock.midnight(slot.date) - rng.range(2 * 86_400, 4 * 86_400);
                let started = slot.window.0 + rng.range(0, 180);
                let completed = (slot.window.1 - rng.range(0, 90)).max(last.unwrap_or(0) + 30);
                tables.event(
                    f,
                    &wo,
                    "scheduled",
                    scheduled,
                    (None, "planned"),
                    "{}".into(),
                );
                tables.event(
                    f,
                    &wo,
                    "started",
                    started,
                    (Some("planned"), "in_progress"),
                    "{}".into(),
                );
                tables.event(
                    f,
                    &wo,
                    "completed",
                    completed,
                    (Some("in_progress"), "completed"),
                    "{}".into(),
                );
                tables.work_order(
                    f,
                    WorkRow {
                        id: &wo,
                        order_id: &order_id,
                        line,
                        slot,
                        quantity: f.target(ideal_ms).max(good),
                        ideal_ms,
                        status: "completed",
                        good,
                        scrap,
                        published_at: Some(scheduled + 3_600),
                        started_at: Some(started),
                        completed_at: Some(completed),
                        created_at: scheduled,
                        updated_at: completed,
                        version: 4,
                    },
                );
            }
            tables.order(
                f,
                OrderRow {
                    id: &order_id,
                    number: number(monday, &line.code),
                    customer: CUSTOMERS[rng.range(0, CUSTOMERS.len() as i64 - 1) as usize],
                    product,
                    quantity: made.max(1),
                    due: monday + Duration::days(6 + rng.range(0, 3)),
                    priority: rng.pick(&[(2, 60), (3, 25), (1, 10), (4, 5)]),
                    created_at,
                },
            );
        }
        tables.flush(db).await?;
        if (n + 1) % 8 == 0 || n + 1 == total {
            tracing::info!(week = %format_date(monday), done = n + 1, weeks = total, "demo history loaded");
        }
    }
    Ok(())
}

/// `SO-25W14-SMT-1`: ISO year and week, and the line.
fn number(monday: Date, line: &str) -> String {
    let (year, week, _) = monday.to_iso_week_date();
    format!("SO-{:02}W{week:02}-{line}", year.rem_euclid(100))
}
