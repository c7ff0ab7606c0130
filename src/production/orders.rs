//! Customer orders: number, customer, product, quantity, due date and priority. Their status is
//! derived from their work orders, never stored: `new` (nothing scheduled), `planned`,
//! `in_progress`, `done` (every work order completed), `cancelled`, or `at_risk` — open and either
//! past due, scheduled past its due date, or projected (from the actual rate of its last stage)
//! to finish after it.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor};
use time::Date;
use utoipa::ToSchema;

use super::calendar::{format_date, parse_date, FactoryClock};
use super::order_status::assess;
pub use super::order_status::{OrderStatus, Progress, WorkSummary};
use super::work_orders::Status;
use super::{
    check_version, conflict, guarded, invalid, new_id, quantity, text, LineKind, ProdError,
    ProdResult,
};
use crate::db::{self, Db};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    fn rank(self) -> i64 {
        match self {
            Priority::Low => 1,
            Priority::Normal => 2,
            Priority::High => 3,
            Priority::Urgent => 4,
        }
    }
    fn from_rank(rank: i64) -> Self {
        match rank {
            1 => Priority::Low,
            3 => Priority::High,
            4 => Priority::Urgent,
            _ => Priority::Normal,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub number: String,
    pub customer: String,
    pub product_id: String,
    pub product_sku: String,
    pub quantity: i64,
    /// `YYYY-MM-DD`, factory calendar.
    pub due_date: String,
    pub priority: Priority,
    pub status: OrderStatus,
    pub progress: Progress,
    pub version: i64,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub number: String,
    pub customer: String,
    pub product_id: String,
    pub quantity: i64,
    pub due_date: String,
    pub priority: Option<Priority>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    pub customer: Option<String>,
    pub quantity: Option<i64>,
    pub due_date: Option<String>,
    pub priority: Option<Priority>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<i64>,
    i64,
    i64,
);
const COLUMNS: &str = "o.id, o.number, o.customer, o.product_id, p.sku, o.quantity, o.due_date, \
                       o.priority, o.cancelled_at, o.version, o.created_at";
const FROM: &str = "FROM orders o JOIN products p ON p.id = o.product_id";

pub fn due_date(raw: &str) -> ProdResult<Date> {
    parse_date(raw)
        .ok_or_else(|| invalid("invalid_date", "due_date must be a valid YYYY-MM-DD date"))
}

fn normalise_number(raw: &str) -> ProdResult<String> {
    let n = raw.trim();
    let ok = (1..=40).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./#".contains(c));
    if !ok {
        return Err(invalid(
            "invalid_number",
            "number must be 1 to 40 letters, digits, '-', '_', '.', '/' or '#'",
        ));
    }
    Ok(n.to_owned())
}

pub async fn create(db: &Db, clock: &FactoryClock, new: NewOrder) -> ProdResult<Order> {
    let number = normalise_number(&new.number)?;
    let customer = text("customer", &new.customer, 200)?;
    let qty = quantity("quantity", new.quantity, false)?;
    let due = due_date(&new.due_date)?;
    let product_exists: Option<String> =
        sqlx::query_scalar("SELECT id FROM products WHERE id = $1")
            .bind(&new.product_id)
            .fetch_optional(db.pool())
            .await?;
    if product_exists.is_none() {
        return Err(invalid("unknown_product", "product_id names no product"));
    }
    let id = new_id();
    let now = crate::clock::now();
    let inserted = sqlx::query(
        "INSERT INTO orders (id, number, customer, product_id, quantity, due_date, priority,
                             version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8)",
    )
    .bind(&id)
    .bind(&number)
    .bind(&customer)
    .bind(&new.product_id)
    .bind(qty)
    .bind(format_date(due))
    .bind(new.priority.unwrap_or(Priority::Normal).rank())
    .bind(now)
    .execute(db.pool())
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(conflict(
            "number_taken",
            format!("an order numbered {number} already exists"),
        )),
        other => {
            other?;
            get(db, clock, &id).await?.ok_or(ProdError::NotFound)
        }
    }
}

pub async fn update(
    db: &Db,
    clock: &FactoryClock,
    id: &str,
    patch: OrderPatch,
    expected: Option<i64>,
) -> ProdResult<Order> {
    let current = get(db, clock, id).await?.ok_or(ProdError::NotFound)?;
    check_version(expected, current.version)?;
    if current.status == OrderStatus::Cancelled {
        return Err(conflict(
            "order_cancelled",
            "a cancelled order cannot be changed",
        ));
    }
    let customer = match &patch.customer {
        Some(c) => text("customer", c, 200)?,
        None => current.customer.clone(),
    };
    let qty = quantity(
        "quantity",
        patch.quantity.unwrap_or(current.quantity),
        false,
    )?;
    let due = match &patch.due_date {
        Some(d) => format_date(due_date(d)?),
        None => current.due_date.clone(),
    };
    let priority = patch.priority.unwrap_or(current.priority);
    let done = sqlx::query(
        "UPDATE orders SET customer = $1, quantity = $2, due_date = $3, priority = $4,
                version = version + 1, updated_at = $5
         WHERE id = $6 AND version = $7",
    )
    .bind(&customer)
    .bind(qty)
    .bind(&due)
    .bind(priority.rank())
    .bind(crate::clock::now())
    .bind(id)
    .bind(current.version)
    .execute(db.pool())
    .await?;
    guarded(&done, current.version)?;
    get(db, clock, id).await?.ok_or(ProdError::NotFound)
}

pub async fn get(db: &Db, clock: &FactoryClock, id: &str) -> ProdResult<Option<Order>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} {FROM} WHERE o.id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let work = summaries(db.pool(), "WHERE order_id = $1", Some(id)).await?;
    Ok(Some(derive(row, &work, clock, crate::clock::now())))
}

/// Orders created after the cursor (id order), filtered by derived status; `limit + 1` at most.
pub async fn page(
    db: &Db,
    clock: &FactoryClock,
    after: Option<&str>,
    status: Option<OrderStatus>,
    limit: i64,
) -> ProdResult<Vec<Order>> {
    let now = crate::clock::now();
    let mut out = Vec::new();
    let mut cursor = after.unwrap_or("").to_owned();
    let batch = (limit + 1).max(50);
    loop {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} {FROM} WHERE o.id > $1 ORDER BY o.id LIMIT $2"
        ))
        .bind(&cursor)
        .bind(batch)
        .fetch_all(db.pool())
        .await?;
        let exhausted = (rows.len() as i64) < batch;
        let Some(last) = rows.last().map(|r| r.0.clone()) else {
            break;
        };
        let work = summaries_between(db.pool(), &cursor, &last).await?;
        for row in rows {
            let order = derive(row, &work, clock, now);
            if status.is_none_or(|s| s == order.status) {
                out.push(order);
                if out.len() as i64 > limit {
                    return Ok(out);
                }
            }
        }
        if exhausted {
            break;
        }
        cursor = last;
    }
    Ok(out)
}

async fn summaries_between<'e, E>(exec: E, after: &str, upto: &str) -> ProdResult<Vec<WorkSummary>>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<(String, String, String, i64, Option<i64>, String)> = sqlx::query_as(
        "SELECT order_id, stage, status, good_qty, started_at, work_date FROM work_orders
         WHERE order_id > $1 AND order_id <= $2",
    )
    .bind(after)
    .bind(upto)
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().filter_map(to_summary).collect())
}

/// Which orders are still open, in SQL: not cancelled, and with work not yet finished, or
/// nothing scheduled, or due within the last two weeks (so an order finished short stays in view
/// while it matters). A year of finished orders is never loaded for a dashboard.
const OPEN: &str = "o.cancelled_at IS NULL AND (
        EXISTS (SELECT 1 FROM work_orders w WHERE w.order_id = o.id
                AND w.status IN ('planned', 'in_progress', 'paused'))
        OR NOT EXISTS (SELECT 1 FROM work_orders w WHERE w.order_id = o.id AND w.status <> 'cancelled')
        OR o.due_date >= $1)";

/// Open orders with their derived status — for risk checks and dashboards.
pub async fn open(db: &Db, clock: &FactoryClock) -> ProdResult<Vec<Order>> {
    let recent = clock
        .today()
        .checked_sub(time::Duration::days(14))
        .map(super::calendar::format_date)
        .unwrap_or_default();
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE {OPEN} ORDER BY o.due_date, o.id"
    ))
    .bind(&recent)
    .fetch_all(db.pool())
    .await?;
    let work = summaries(
        db.pool(),
        &format!("WHERE order_id IN (SELECT o.id FROM orders o WHERE {OPEN})"),
        Some(&recent),
    )
    .await?;
    let now = crate::clock::now();
    Ok(rows
        .into_iter()
        .map(|r| derive(r, &work, clock, now))
        .filter(|o| o.status != OrderStatus::Done)
        .collect())
}

async fn summaries<'e, E>(exec: E, filter: &str, bind: Option<&str>) -> ProdResult<Vec<WorkSummary>>
where
    E: Executor<'e, Database = Any>,
{
    let sql = format!(
        "SELECT order_id, stage, status, good_qty, started_at, work_date FROM work_orders {filter}"
    );
    let mut query = sqlx::query_as::<_, (String, String, String, i64, Option<i64>, String)>(&sql);
    if let Some(b) = bind {
        query = query.bind(b.to_owned());
    }
    let rows = query.fetch_all(exec).await?;
    Ok(rows.into_iter().filter_map(to_summary).collect())
}

fn to_summary(r: (String, String, String, i64, Option<i64>, String)) -> Option<WorkSummary> {
    Some(WorkSummary {
        order_id: r.0,
        stage: LineKind::parse(&r.1)?,
        status: Status::parse(&r.2)?,
        good: r.3,
        started_at: r.4,
        work_date: r.5,
    })
}

fn derive(r: Row, all_work: &[WorkSummary], clock: &FactoryClock, now: i64) -> Order {
    let work: Vec<&WorkSummary> = all_work
        .iter()
        .filter(|w| w.order_id == r.0 && w.status != Status::Cancelled)
        .collect();
    let (status, progress) = assess(r.5, &r.6, r.8.is_some(), &work, clock, now);
    Order {
        id: r.0,
        number: r.1,
        customer: r.2,
        product_id: r.3,
        product_sku: r.4,
        quantity: r.5,
        due_date: r.6,
        priority: Priority::from_rank(r.7),
        status,
        progress,
        version: r.9,
        created_at: crate::clock::rfc3339(r.10),
    }
}
