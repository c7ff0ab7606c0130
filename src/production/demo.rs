//! The demo factory behind `ims demo` and the production benchmark: lines with three 8-hour
//! shifts, a few products with realistic cycle times, a history of completed work orders with
//! their output reports and stops ([`history`]), open customer orders with this week's published
//! schedule and a shift under way right now ([`plan`]), alert rules, and optionally one user per
//! role. It loads only into a database without production data, writes in large batches
//! ([`writer`]) inside one transaction per week of history, and is deterministic for a seed
//! except for ids, passwords and the current time.

mod history;
mod plan;
mod rows;
mod sim;
mod writer;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use secrecy::SecretString;
use time::{Date, Duration};

use super::calendar::{dates, FactoryClock, Shift};
use super::{new_id, reasons, LineKind};
use crate::auth::password::Hasher;
use crate::auth::roles::Role;
use crate::db::Db;
use crate::users::accounts::{self, Actor, NewAccount};
use rows::Tables;
use sim::Rng;

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// 1 to 50 lines.
    pub lines: usize,
    /// Days of history before today, 0 to 1000.
    pub days: i64,
    /// Minutes between two output reports of a running line, 1 to 240.
    pub report_every_minutes: i64,
    /// Create admin@, manager@ and leader@demo.factory with random passwords.
    pub with_users: bool,
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            lines: 3,
            days: 30,
            report_every_minutes: 15,
            with_users: true,
            seed: 1,
        }
    }
}

/// The refusal to load into a database that already has lines.
#[derive(Debug, thiserror::Error)]
#[error("the database already has production data; the demo loads only into an empty one")]
pub struct NotEmpty;

/// A demo account and its password, which exists nowhere else: show it once.
#[derive(Debug)]
pub struct DemoUser {
    pub role: Role,
    pub email: &'static str,
    pub password: SecretString,
}

/// Rows written, per table.
#[derive(Debug, Default)]
pub struct Summary {
    pub lines: usize,
    pub products: usize,
    pub orders: usize,
    pub work_orders: usize,
    pub work_order_events: usize,
    pub output_reports: usize,
    pub downtimes: usize,
    pub alert_rules: usize,
    pub users: Vec<DemoUser>,
}

/// SKU, name, ideal cycle time in ms for SMT, DIP, TEST and ASSEMBLY.
const PRODUCTS: &[(&str, &str, [i64; 4])] = &[
    (
        "PCB-MAIN-V2",
        "Main controller board, rev 2",
        [18_000, 34_000, 45_000, 70_000],
    ),
    (
        "PSU-240W",
        "240 W power supply",
        [14_000, 38_000, 40_000, 65_000],
    ),
    (
        "CTRL-IO-8",
        "8-channel I/O controller",
        [12_000, 28_000, 36_000, 55_000],
    ),
    (
        "LED-DRV-3",
        "3-channel LED driver",
        [10_000, 24_000, 30_000, 48_000],
    ),
    (
        "GW-LTE-1",
        "LTE field gateway",
        [22_000, 30_000, 50_000, 75_000],
    ),
];

const CUSTOMERS: &[&str] = &[
    "Nordlicht Automation GmbH",
    "Kestrel Medical Devices",
    "Arcadia Power Systems",
    "Helix Robotics",
    "Bluewater Marine Electronics",
    "Sundial Energy",
    "Vantor Rail Signalling",
    "Orchard Smart Farming",
];

const USERS: [(Role, &str, &str); 3] = [
    (Role::Admin, "admin@demo.factory", "Demo Admin"),
    (Role::Manager, "manager@demo.factory", "Demo Manager"),
    (Role::LineLeader, "leader@demo.factory", "Demo Line Leader"),
];

struct DemoLine {
    id: String,
    code: String,
    kind: LineKind,
}

/// One shift on the calendar: its work date, index in the shift list, and real-time window.
#[derive(Debug, Clone)]
struct Slot {
    date: Date,
    shift: usize,
    window: (i64, i64),
}

/// What the generators share.
struct Factory {
    clock: FactoryClock,
    now: i64,
    shifts: Vec<Shift>,
    lines: Vec<DemoLine>,
    /// Product ids, in [`PRODUCTS`] order.
    products: Vec<String>,
    leader: Option<String>,
    every_secs: i64,
}

impl Factory {
    /// Every shift from `from` to `to`, in time order.
    fn slots(&self, from: Date, to: Date) -> Vec<Slot> {
        let mut out: Vec<Slot> = dates(from, to)
            .flat_map(|date| {
                self.shifts.iter().enumerate().map(move |(shift, s)| Slot {
                    date,
                    shift,
                    window: self.clock.window(date, s),
                })
            })
            .collect();
        out.sort_by_key(|s| s.window.0);
        out
    }

    fn ideal_ms(&self, product: usize, kind: LineKind) -> i64 {
        let k = LineKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
        PRODUCTS.get(product).map_or(30_000, |p| p.2[k])
    }

    /// What a planner schedules for a shift: 85% of the ideal rate over its planned time, in tens.
    fn target(&self, ideal_ms: i64) -> i64 {
        let planned = self.shifts.first().map_or(450 * 60, Shift::planned_secs);
        let units = planned as f64 * 1000.0 / ideal_ms.max(1) as f64 * 0.85;
        ((units / 10.0).round() as i64 * 10).max(10)
    }

    fn run(&self, kind: LineKind, ideal_ms: i64, slot: &Slot, until: i64) -> sim::Run {
        let breaks = self.shifts.get(slot.shift).map_or(0, |s| s.break_minutes);
        sim::Run {
            kind,
            ideal_ms,
            window: slot.window,
            pause: sim::break_window(slot.window, breaks),
            until,
        }
    }
}

fn validate(spec: &Spec) -> anyhow::Result<()> {
    if !(1..=50).contains(&spec.lines) {
        anyhow::bail!("--lines must be 1 to 50");
    }
    if !(0..=1000).contains(&spec.days) {
        anyhow::bail!("--days must be 0 to 1000");
    }
    if !(1..=240).contains(&spec.report_every_minutes) {
        anyhow::bail!("--report-every-minutes must be 1 to 240");
    }
    Ok(())
}

/// Loads the demo factory into an empty database; see the module documentation.
pub async fn load(
    db: &Db,
    hasher: &Hasher,
    clock: FactoryClock,
    spec: &Spec,
) -> anyhow::Result<Summary> {
    validate(spec)?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lines")
        .fetch_one(db.pool())
        .await?;
    if existing > 0 {
        return Err(NotEmpty.into());
    }
    reasons::seed(db).await?;
    let mut summary = Summary::default();
    let mut ids = Vec::new();
    if spec.with_users {
        for (role, email, name) in USERS {
            let password =
                SecretString::from(URL_SAFE_NO_PAD.encode(crate::auth::random_bytes::<18>()?));
            let new = NewAccount {
                email: email.into(),
                name: name.into(),
                roles: vec![role],
                password: Some(password.clone()),
                email_verified: true,
            };
            let user = accounts::create(db, hasher, None, new, Actor { id: None, ip: None })
                .await
                .map_err(|e| anyhow::anyhow!("creating the demo user {email}: {e}"))?;
            ids.push(user.id);
            summary.users.push(DemoUser {
                role,
                email,
                password,
            });
        }
    }
    let now = crate::clock::now();
    let today = clock.date_at(now);
    let from = today - Duration::days(spec.days);
    let mut rng = Rng::new(spec.seed);
    let mut f = Factory {
        clock,
        now,
        shifts: ["06:00", "14:00", "22:00"]
            .iter()
            .zip(["A", "B", "C"])
            .map(|(start, name)| Shift {
                name: name.into(),
                start: (*start).into(),
                minutes: 480,
                break_minutes: 30,
            })
            .collect(),
        lines: Vec::new(),
        products: Vec::new(),
        leader: ids.get(2).cloned(),
        every_secs: spec.report_every_minutes * 60,
    };
    setup(
        db,
        &mut f,
        spec.lines,
        clock.midnight(from) - 30 * 86_400,
        ids.get(1).map(String::as_str),
    )
    .await?;
    summary.lines = f.lines.len();
    summary.products = f.products.len();
    summary.alert_rules = 3;
    let mut tables = Tables::new();
    history::write(db, &f, &mut rng, from, &mut tables).await?;
    plan::write(&f, &mut rng, &mut tables);
    tables.flush(db).await?;
    summary.orders = tables.orders.written;
    summary.work_orders = tables.work_orders.written;
    summary.work_order_events = tables.events.written;
    summary.output_reports = tables.output.written;
    summary.downtimes = tables.downtimes.written;
    // Fresh planner statistics, so the first dashboards after a bulk load get good plans.
    sqlx::query("ANALYZE").execute(db.pool()).await?;
    Ok(summary)
}

/// Lines (led by the demo leader), products and alert rules, in one transaction.
async fn setup(
    db: &Db,
    f: &mut Factory,
    lines: usize,
    since: i64,
    manager: Option<&str>,
) -> anyhow::Result<()> {
    let shifts = serde_json::to_string(&f.shifts)?;
    let mut tx = db.begin_write().await?;
    let mut numbers = [0usize; 4];
    for i in 0..lines {
        let kind = if lines <= 3 {
            [LineKind::Smt, LineKind::Smt, LineKind::Test][i % 3]
        } else {
            LineKind::ALL[i % 4]
        };
        let k = LineKind::ALL.iter().position(|x| *x == kind).unwrap_or(0);
        numbers[k] += 1;
        let n = numbers[k];
        let name = match kind {
            LineKind::Smt => format!("Surface-mount line {n}"),
            LineKind::Dip => format!("Through-hole (DIP) line {n}"),
            LineKind::Test => format!("Functional test line {n}"),
            LineKind::Assembly => format!("Final assembly line {n}"),
        };
        let line = DemoLine {
            id: new_id(),
            code: format!("{}-{n}", kind.as_str()),
            kind,
        };
        sqlx::query(
            "INSERT INTO lines (id, code, name, kind, shifts, active, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 1, 1, $6, $6)",
        )
        .bind(&line.id)
        .bind(&line.code)
        .bind(&name)
        .bind(kind.as_str())
        .bind(&shifts)
        .bind(since)
        .execute(&mut *tx)
        .await?;
        if let Some(leader) = &f.leader {
            sqlx::query("INSERT INTO line_leaders (line_id, user_id) VALUES ($1, $2)")
                .bind(&line.id)
                .bind(leader)
                .execute(&mut *tx)
                .await?;
        }
        f.lines.push(line);
    }
    for (sku, name, cycle) in PRODUCTS {
        let times: std::collections::BTreeMap<&str, i64> = LineKind::ALL
            .iter()
            .map(|k| k.as_str())
            .zip(cycle.iter().copied())
            .collect();
        let id = new_id();
        sqlx::query(
            "INSERT INTO products (id, sku, name, cycle_times, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 1, $5, $5)",
        )
        .bind(&id)
        .bind(*sku)
        .bind(*name)
        .bind(serde_json::to_string(&times)?)
        .bind(since)
        .execute(&mut *tx)
        .await?;
        f.products.push(id);
    }
    for (kind, threshold) in [("line_down", 15), ("scrap_rate", 5), ("order_at_risk", 0)] {
        sqlx::query(
            "INSERT INTO alert_rules (id, kind, line_id, threshold, enabled, version, created_by, created_at)
             VALUES ($1, $2, NULL, $3, 1, 1, $4, $5)",
        )
        .bind(new_id())
        .bind(kind)
        .bind(threshold as i64)
        .bind(manager)
        .bind(since)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
