//! Row builders of the demo loader: a customer order, a work order, a history entry, and a run
//! of a work order over a shift (its stops and output reports from [`super::sim`]), queued in
//! per-table batches ([`super::writer`]) and flushed together in foreign-key order, one
//! transaction per batch.

use time::Date;

use super::sim::{self, Rng};
use super::writer::{max_params, Table, V};
use super::{DemoLine, Factory, Slot};
use crate::db::Db;
use crate::production::calendar::format_date;
use crate::production::new_id;

/// A customer order row.
pub(super) struct OrderRow<'a> {
    pub(super) id: &'a str,
    pub(super) number: String,
    pub(super) customer: &'static str,
    pub(super) product: usize,
    pub(super) quantity: i64,
    pub(super) due: Date,
    pub(super) priority: i64,
    pub(super) created_at: i64,
}

/// A work order row; `status` is one of the stored status texts.
pub(super) struct WorkRow<'a> {
    pub(super) id: &'a str,
    pub(super) order_id: &'a str,
    pub(super) line: &'a DemoLine,
    pub(super) slot: &'a Slot,
    pub(super) quantity: i64,
    pub(super) ideal_ms: i64,
    pub(super) status: &'static str,
    pub(super) good: i64,
    pub(super) scrap: i64,
    pub(super) published_at: Option<i64>,
    pub(super) started_at: Option<i64>,
    pub(super) completed_at: Option<i64>,
    pub(super) created_at: i64,
    pub(super) updated_at: i64,
    pub(super) version: i64,
}

/// The rows of one batch, flushed in foreign-key order.
pub(super) struct Tables {
    pub(super) orders: Table,
    pub(super) work_orders: Table,
    pub(super) events: Table,
    pub(super) output: Table,
    pub(super) downtimes: Table,
}

impl Tables {
    pub(super) fn new() -> Self {
        Self {
            orders: Table::new(
                "orders",
                &[
                    "id",
                    "number",
                    "customer",
                    "product_id",
                    "quantity",
                    "due_date",
                    "priority",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            ),
            work_orders: Table::new(
                "work_orders",
                &[
                    "id",
                    "order_id",
                    "stage",
                    "line_id",
                    "work_date",
                    "shift",
                    "sequence",
                    "quantity",
                    "ideal_cycle_ms",
                    "status",
                    "good_qty",
                    "scrap_qty",
                    "published_at",
                    "started_at",
                    "completed_at",
                    "version",
                    "created_at",
                    "updated_at",
                ],
            ),
            events: Table::new(
                "work_order_events",
                &[
                    "id",
                    "work_order_id",
                    "kind",
                    "at",
                    "actor_id",
                    "from_status",
                    "to_status",
                    "detail",
                ],
            ),
            output: Table::new(
                "output_reports",
                &[
                    "id",
                    "work_order_id",
                    "line_id",
                    "work_date",
                    "shift",
                    "at",
                    "good",
                    "scrap",
                    "scrap_reason",
                    "ideal_cycle_ms",
                    "actor_id",
                ],
            ),
            downtimes: Table::new(
                "downtimes",
                &[
                    "id",
                    "line_id",
                    "work_order_id",
                    "reason_code",
                    "started_at",
                    "ended_at",
                    "source",
                    "note",
                    "actor_id",
                ],
            ),
        }
    }

    /// Writes everything queued in one transaction.
    pub(super) async fn flush(&mut self, db: &Db) -> anyhow::Result<()> {
        let max_params = max_params(db.backend());
        let mut tx = db.begin_write().await?;
        for table in [
            &mut self.orders,
            &mut self.work_orders,
            &mut self.events,
            &mut self.output,
            &mut self.downtimes,
        ] {
            table.flush(&mut tx, max_params).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) fn order(&mut self, f: &Factory, o: OrderRow<'_>) {
        let product = f.products.get(o.product).cloned().unwrap_or_default();
        self.orders.push([
            o.id.into(),
            o.number.into(),
            V::S(o.customer),
            product.into(),
            o.quantity.into(),
            format_date(o.due).into(),
            o.priority.into(),
            V::I(1),
            o.created_at.into(),
            o.created_at.into(),
        ]);
    }

    pub(super) fn work_order(&mut self, f: &Factory, w: WorkRow<'_>) {
        let shift = f.shifts.get(w.slot.shift).map_or("", |s| s.name.as_str());
        self.work_orders.push([
            w.id.into(),
            w.order_id.into(),
            V::S(w.line.kind.as_str()),
            w.line.id.as_str().into(),
            format_date(w.slot.date).into(),
            shift.into(),
            V::I(1),
            w.quantity.into(),
            w.ideal_ms.into(),
            V::S(w.status),
            w.good.into(),
            w.scrap.into(),
            w.published_at.into(),
            w.started_at.into(),
            w.completed_at.into(),
            w.version.into(),
            w.created_at.into(),
            w.updated_at.into(),
        ]);
    }

    /// A history entry; `change` is the (from, to) status texts.
    pub(super) fn event(
        &mut self,
        f: &Factory,
        wo: &str,
        kind: &'static str,
        at: i64,
        change: (Option<&str>, &str),
        detail: String,
    ) {
        let (from, to) = change;
        let actor = if kind == "scheduled" {
            None
        } else {
            f.leader.as_deref()
        };
        self.events.push([
            new_id().into(),
            wo.into(),
            V::S(kind),
            at.into(),
            actor.into(),
            from.into(),
            to.into(),
            detail.into(),
        ]);
    }

    /// Runs a work order over `run`: queues its stops and output reports; returns good, scrap
    /// and the time of the last report.
    pub(super) fn execute(
        &mut self,
        f: &Factory,
        rng: &mut Rng,
        wo: &str,
        line: &DemoLine,
        slot: &Slot,
        run: &sim::Run,
    ) -> (i64, i64, Option<i64>) {
        let stops = sim::stops(rng, run);
        let reports = sim::output(rng, run, &stops, f.every_secs);
        let shift = f.shifts.get(slot.shift).map_or("", |s| s.name.as_str());
        let date = format_date(slot.date);
        for s in &stops {
            self.downtimes.push([
                new_id().into(),
                line.id.as_str().into(),
                wo.into(),
                V::S(s.reason),
                s.start.into(),
                s.end.into(),
                V::S("report"),
                V::S(""),
                f.leader.as_deref().into(),
            ]);
        }
        let (mut good, mut scrap) = (0, 0);
        for r in &reports {
            good += r.good;
            scrap += r.scrap;
            self.output.push([
                new_id().into(),
                wo.into(),
                line.id.as_str().into(),
                date.as_str().into(),
                shift.into(),
                r.at.into(),
                r.good.into(),
                r.scrap.into(),
                r.reason.into(),
                run.ideal_ms.into(),
                f.leader.as_deref().into(),
            ]);
        }
        (good, scrap, reports.last().map(|r| r.at))
    }
}
