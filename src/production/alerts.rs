//! Alerts: what the managers' rules ([`super::alert_rules`]) raise. Rules are judged when an execution event arrives ([`on_event`]) and by a periodic sweep for what only
//! time reveals ([`sweep`]). Raising is idempotent: each alert has a key naming the rule and the
//! occurrence (the stop, the shift, the order), so a redelivered event or a second instance
//! raises nothing new. A new alert is stored, queued for the alerts channel and emailed to every
//! manager in the same transaction.

use serde::Serialize;
use utoipa::ToSchema;

pub use super::alert_rules::{rule, rules, Rule, RuleKind};
use super::orders::{self, OrderStatus};
use super::{new_id, ProdError, ProdResult};
use crate::app::AppState;
use crate::db::Db;
use crate::events::{Attributes, Event, KIND_ALERT};
use crate::mail::outbox;

/// Shift output below this many units is too little to judge a scrap rate on.
pub const MIN_UNITS_FOR_SCRAP_RATE: i64 = 20;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alert {
    pub id: String,
    pub rule_id: Option<String>,
    pub kind: RuleKind,
    pub severity: String,
    pub line_id: Option<String>,
    pub order_id: Option<String>,
    pub message: String,
    pub raised_at: String,
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
}

type AlertRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
    Option<String>,
);
const ALERT_COLUMNS: &str = "id, rule_id, kind, severity, line_id, order_id, message, raised_at, acknowledged_at, acknowledged_by";

fn alert_from(r: AlertRow) -> Option<Alert> {
    Some(Alert {
        kind: RuleKind::parse(&r.2)?,
        id: r.0,
        rule_id: r.1,
        severity: r.3,
        line_id: r.4,
        order_id: r.5,
        message: r.6,
        raised_at: crate::clock::rfc3339(r.7),
        acknowledged_at: r.8.map(crate::clock::rfc3339),
        acknowledged_by: r.9,
    })
}

/// Alerts, newest first; only unacknowledged ones when `open`.
pub async fn list(db: &Db, open: bool, limit: i64) -> ProdResult<Vec<Alert>> {
    let rows: Vec<AlertRow> = sqlx::query_as(&format!(
        "SELECT {ALERT_COLUMNS} FROM alerts WHERE ($1 = 0 OR acknowledged_at IS NULL)
         ORDER BY raised_at DESC, id DESC LIMIT $2"
    ))
    .bind(i64::from(open))
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().filter_map(alert_from).collect())
}

pub async fn acknowledge(db: &Db, actor: &str, id: &str) -> ProdResult<Alert> {
    sqlx::query("UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2 WHERE id = $3 AND acknowledged_at IS NULL")
        .bind(crate::clock::now())
        .bind(actor)
        .bind(id)
        .execute(db.pool())
        .await?;
    let row: Option<AlertRow> =
        sqlx::query_as(&format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"))
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.and_then(alert_from).ok_or(ProdError::NotFound)
}

struct Raise<'a> {
    rule: &'a Rule,
    line_id: Option<&'a str>,
    order_id: Option<&'a str>,
    message: String,
    key: String,
}

/// Stores the alert unless its key exists; then queues it for the channel and mails managers.
async fn raise(state: &AppState, r: Raise<'_>) -> anyhow::Result<bool> {
    let id = new_id();
    let now = crate::clock::now();
    let mut tx = state.db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO alerts (id, rule_id, kind, severity, line_id, order_id, message, dedupe_key, raised_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dedupe_key) DO NOTHING",
    )
    .bind(&id)
    .bind(&r.rule.id)
    .bind(r.rule.kind.as_str())
    .bind(r.rule.kind.severity())
    .bind(r.line_id)
    .bind(r.order_id)
    .bind(&r.message)
    .bind(&r.key)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    let attributes = Attributes {
        kind: format!("alert.{}", r.rule.kind.as_str()),
        line: r.line_id.map(str::to_owned),
        order: r.order_id.map(str::to_owned),
        severity: r.rule.kind.severity().to_owned(),
    };
    let body = serde_json::json!({
        "id": id, "kind": r.rule.kind.as_str(), "severity": attributes.severity,
        "line_id": r.line_id, "order_id": r.order_id, "message": r.message,
        "raised_at": crate::clock::rfc3339(now), "attributes": attributes,
    });
    outbox::insert(
        &mut *tx,
        &new_id(),
        KIND_ALERT,
        &attributes.kind,
        "",
        &body.to_string(),
    )
    .await?;
    let managers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT email, name, roles FROM users WHERE disabled = 0 AND email_verified = 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (email, name, roles) in managers {
        if crate::auth::roles::from_db(&roles).contains(&crate::auth::roles::Role::Manager) {
            let mail = crate::mail::templates::alert(&name, &r.message, &state.notifier.public_url);
            state.notifier.send_notice(&mut tx, &email, mail).await?;
        }
    }
    tx.commit().await?;
    state.notifier.wake.notify_one();
    state.metrics.alert_raised(r.rule.kind.as_str());
    tracing::info!(alert = %id, kind = r.rule.kind.as_str(), "alert raised");
    Ok(true)
}

async fn enabled(
    state: &AppState,
    kind: RuleKind,
    line: Option<&str>,
) -> anyhow::Result<Vec<Rule>> {
    Ok(rules(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|r| {
            r.enabled && r.kind == kind && (r.line_id.is_none() || r.line_id.as_deref() == line)
        })
        .collect())
}

async fn line_code(db: &Db, line_id: &str) -> anyhow::Result<String> {
    let code: Option<String> = sqlx::query_scalar("SELECT code FROM lines WHERE id = $1")
        .bind(line_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(code.unwrap_or_else(|| line_id.to_owned()))
}

/// Judges one execution event.
pub async fn on_event(state: &AppState, event: &Event) -> anyhow::Result<()> {
    let line = event.line_id.as_deref();
    if event.kind == "work_order.output" {
        if let (Some(line), Some(date), Some(shift)) = (
            line,
            event.data["work_date"].as_str(),
            event.data["shift"].as_str(),
        ) {
            scrap_rate(state, line, date, shift).await?;
        }
    }
    // A reported stop, and the stops a resume, completion or cancellation closed.
    let mut stops: Vec<&serde_json::Value> = Vec::new();
    if event.kind == "work_order.downtime" {
        stops.push(&event.data);
    }
    if let Some(closed) = event.data["closed_stops"].as_array() {
        stops.extend(closed.iter());
    }
    if let Some(line) = line {
        for stop in stops {
            judge_stop(state, line, event.order_id.as_deref(), stop).await?;
        }
    }
    if let Some(order_id) = event.order_id.as_deref() {
        order_risk(state, order_id).await?;
    }
    Ok(())
}

/// A stop that has ended: `{downtime_id, reason_code, minutes}`.
async fn judge_stop(
    state: &AppState,
    line: &str,
    order_id: Option<&str>,
    stop: &serde_json::Value,
) -> anyhow::Result<()> {
    let minutes = stop["minutes"].as_i64().unwrap_or(0);
    let downtime = stop["downtime_id"].as_str().unwrap_or_default();
    let reason = stop["reason_code"].as_str().unwrap_or("unknown reason");
    for rule in enabled(state, RuleKind::LineDown, Some(line)).await? {
        if minutes >= rule.threshold {
            let code = line_code(&state.db, line).await?;
            raise(
                state,
                Raise {
                    rule: &rule,
                    line_id: Some(line),
                    order_id,
                    message: format!("Line {code} was down for {minutes} min ({reason})"),
                    key: format!("down:{}:{downtime}", rule.id),
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn scrap_rate(state: &AppState, line: &str, date: &str, shift: &str) -> anyhow::Result<()> {
    let rules = enabled(state, RuleKind::ScrapRate, Some(line)).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let (good, scrap): (i64, i64) = sqlx::query_as(
        "SELECT CAST(COALESCE(SUM(good), 0) AS BIGINT), CAST(COALESCE(SUM(scrap), 0) AS BIGINT) FROM output_reports
         WHERE line_id = $1 AND work_date = $2 AND shift = $3",
    )
    .bind(line)
    .bind(date)
    .bind(shift)
    .fetch_one(state.db.pool())
    .await?;
    let total = good + scrap;
    if total < MIN_UNITS_FOR_SCRAP_RATE {
        return Ok(());
    }
    for rule in rules {
        if scrap * 100 > rule.threshold * total {
            let code = line_code(&state.db, line).await?;
            let pct = (scrap as f64 * 1000.0 / total as f64).round() / 10.0;
            raise(
                state,
                Raise {
                    rule: &rule,
                    line_id: Some(line),
                    order_id: None,
                    message: format!(
                        "Scrap on line {code} is {pct}% in shift {shift} of {date} (limit {}%)",
                        rule.threshold
                    ),
                    key: format!("scrap:{}:{line}:{date}:{shift}", rule.id),
                },
            )
            .await?;
        }
    }
    Ok(())
}

async fn order_risk(state: &AppState, order_id: &str) -> anyhow::Result<()> {
    let rules = enabled(state, RuleKind::OrderAtRisk, None).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let Some(order) = orders::get(&state.db, &state.clock, order_id)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
    else {
        return Ok(());
    };
    if order.status == OrderStatus::AtRisk {
        for rule in rules.iter().filter(|r| r.line_id.is_none()) {
            raise(
                state,
                Raise {
                    rule,
                    line_id: None,
                    order_id: Some(&order.id),
                    message: format!(
                        "Order {} for {} (due {}) is at risk: {}",
                        order.number,
                        order.customer,
                        order.due_date,
                        order.progress.risk.as_deref().unwrap_or("behind plan")
                    ),
                    // Once per due date: an order that slips again after a new due date alerts again.
                    key: format!("risk:{}:{}:{}", rule.id, order.id, order.due_date),
                },
            )
            .await?;
        }
    }
    Ok(())
}

/// What time alone reveals: stops still open past a rule's threshold, orders slipping. Also
/// refreshes the count of parked queue messages for `/metrics`.
pub async fn sweep(state: &AppState) -> anyhow::Result<()> {
    let now = crate::clock::now();
    let dead: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_messages WHERE dead = 1")
        .fetch_one(state.db.pool())
        .await?;
    state.metrics.dead_messages(dead);
    let all_down: Vec<Rule> = rules(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .into_iter()
        .filter(|r| r.enabled && r.kind == RuleKind::LineDown)
        .collect();
    if !all_down.is_empty() {
        let open: Vec<(String, String, i64, String, Option<String>, String)> = sqlx::query_as(
            "SELECT d.id, d.line_id, d.started_at, d.reason_code, w.order_id, l.code FROM downtimes d
             JOIN lines l ON l.id = d.line_id LEFT JOIN work_orders w ON w.id = d.work_order_id
             WHERE d.ended_at IS NULL",
        )
        .fetch_all(state.db.pool())
        .await?;
        for (id, line, started, reason, order, code) in open {
            let minutes = (now - started) / 60;
            for rule in all_down
                .iter()
                .filter(|r| r.line_id.is_none() || r.line_id.as_deref() == Some(&line))
            {
                if minutes >= rule.threshold {
                    raise(
                        state,
                        Raise {
                            rule,
                            line_id: Some(&line),
                            order_id: order.as_deref(),
                            message: format!(
                                "Line {code} has been down for {minutes} min ({reason})"
                            ),
                            key: format!("down:{}:{id}", rule.id),
                        },
                    )
                    .await?;
                }
            }
        }
    }
    if !enabled(state, RuleKind::OrderAtRisk, None)
        .await?
        .is_empty()
    {
        let open = orders::open(&state.db, &state.clock)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for order in open.iter().filter(|o| o.status == OrderStatus::AtRisk) {
            order_risk(state, &order.id).await?;
        }
    }
    Ok(())
}
