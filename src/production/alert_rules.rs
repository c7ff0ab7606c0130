//! Alert rules, defined by MANAGER: a line down longer than N minutes, scrap above N% of a
//! shift's output on a line, an order at risk — for one line or all. Evaluated by
//! [`super::alerts`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_version, guarded, invalid, new_id, ProdError, ProdResult};
use crate::db::Db;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// threshold: minutes
    LineDown,
    /// threshold: percent of a shift's units
    ScrapRate,
    /// threshold: unused (0)
    OrderAtRisk,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::LineDown => "line_down",
            RuleKind::ScrapRate => "scrap_rate",
            RuleKind::OrderAtRisk => "order_at_risk",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            RuleKind::LineDown,
            RuleKind::ScrapRate,
            RuleKind::OrderAtRisk,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
    pub fn severity(self) -> &'static str {
        match self {
            RuleKind::LineDown => "critical",
            RuleKind::ScrapRate | RuleKind::OrderAtRisk => "warning",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    /// Only this line; every line when null.
    pub line_id: Option<String>,
    pub threshold: i64,
    pub enabled: bool,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub kind: RuleKind,
    pub line_id: Option<String>,
    /// Minutes for `line_down` (1–1440), percent for `scrap_rate` (1–100), omitted for `order_at_risk`.
    pub threshold: Option<i64>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    pub threshold: Option<i64>,
    pub enabled: Option<bool>,
}

fn check_threshold(kind: RuleKind, threshold: Option<i64>) -> ProdResult<i64> {
    match (kind, threshold) {
        (RuleKind::LineDown, Some(t)) if (1..=1440).contains(&t) => Ok(t),
        (RuleKind::ScrapRate, Some(t)) if (1..=100).contains(&t) => Ok(t),
        (RuleKind::OrderAtRisk, None | Some(0)) => Ok(0),
        (RuleKind::LineDown, _) => Err(invalid(
            "invalid_threshold",
            "line_down needs threshold minutes, 1 to 1440",
        )),
        (RuleKind::ScrapRate, _) => Err(invalid(
            "invalid_threshold",
            "scrap_rate needs a threshold percent, 1 to 100",
        )),
        (RuleKind::OrderAtRisk, _) => Err(invalid(
            "invalid_threshold",
            "order_at_risk takes no threshold",
        )),
    }
}

type RuleRow = (String, String, Option<String>, i64, i64, i64);
const RULE_COLUMNS: &str = "id, kind, line_id, threshold, enabled, version";

fn rule_from(r: RuleRow) -> Option<Rule> {
    Some(Rule {
        kind: RuleKind::parse(&r.1)?,
        id: r.0,
        line_id: r.2,
        threshold: r.3,
        enabled: r.4 != 0,
        version: r.5,
    })
}

pub async fn create_rule(db: &Db, actor: &str, new: NewRule) -> ProdResult<Rule> {
    let threshold = check_threshold(new.kind, new.threshold)?;
    if new.kind == RuleKind::OrderAtRisk && new.line_id.is_some() {
        return Err(invalid(
            "invalid_rule",
            "order_at_risk rules cover every order; omit line_id",
        ));
    }
    if let Some(line) = &new.line_id {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lines WHERE id = $1")
            .bind(line)
            .fetch_one(db.pool())
            .await?;
        if n == 0 {
            return Err(invalid("unknown_line", "line_id names no line"));
        }
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO alert_rules (id, kind, line_id, threshold, enabled, version, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $7)",
    )
    .bind(&id)
    .bind(new.kind.as_str())
    .bind(&new.line_id)
    .bind(threshold)
    .bind(i64::from(new.enabled.unwrap_or(true)))
    .bind(actor)
    .bind(crate::clock::now())
    .execute(db.pool())
    .await?;
    rule(db, &id).await
}

pub async fn rule(db: &Db, id: &str) -> ProdResult<Rule> {
    let row: Option<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    row.and_then(rule_from).ok_or(ProdError::NotFound)
}

pub async fn rules(db: &Db) -> ProdResult<Vec<Rule>> {
    let rows: Vec<RuleRow> = sqlx::query_as(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY kind, id"
    ))
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().filter_map(rule_from).collect())
}

pub async fn update_rule(
    db: &Db,
    id: &str,
    patch: RulePatch,
    expected: Option<i64>,
) -> ProdResult<Rule> {
    let current = rule(db, id).await?;
    check_version(expected, current.version)?;
    let threshold = match patch.threshold {
        Some(t) => check_threshold(current.kind, Some(t))?,
        None => current.threshold,
    };
    let enabled = patch.enabled.unwrap_or(current.enabled);
    let done = sqlx::query(
        "UPDATE alert_rules SET threshold = $1, enabled = $2, version = version + 1 WHERE id = $3 AND version = $4",
    )
    .bind(threshold)
    .bind(i64::from(enabled))
    .bind(id)
    .bind(current.version)
    .execute(db.pool())
    .await?;
    guarded(&done, current.version)?;
    rule(db, id).await
}

pub async fn delete_rule(db: &Db, id: &str) -> ProdResult<()> {
    let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1")
        .bind(id)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(ProdError::NotFound);
    }
    Ok(())
}
