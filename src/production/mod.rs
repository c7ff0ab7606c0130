//! Production management, the part of IMS the roles exist for: lines and their shifts, products,
//! customer orders, work orders scheduled on lines and executed by the lines' leaders, downtime
//! and scrap reasons, KPIs (OEE), documents, alert rules and alerts, and daily reports. Each
//! submodule owns its tables and transactions; the HTTP handlers in `crate::http` only parse,
//! bound and authorise. Who may see what is decided here too ([`Viewer`]): a line leader sees the
//! published work orders of the lines they lead and nothing else, and anything else is "not found".

pub mod alert_rules;
pub mod alerts;
pub mod calendar;
pub mod cancellation;
pub mod demo;
pub mod documents;
pub mod execution;
pub mod history;
pub mod kpi;
pub mod lines;
pub mod oee;
pub mod order_status;
pub mod orders;
pub mod products;
pub mod reasons;
pub mod reports;
pub mod schedule;
pub mod state;
pub mod task_cache;
pub mod work_orders;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::roles::Role;

/// Why a production operation was refused. Mapped to problem details at the HTTP edge.
#[derive(Debug, thiserror::Error)]
pub enum ProdError {
    #[error("no such resource")]
    NotFound,
    /// Input that is well-formed JSON but not acceptable (422).
    #[error("{1}")]
    Invalid(&'static str, String),
    /// The current state does not allow it (409).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// `If-Match` named an older version (409).
    #[error("the resource changed since you read it; it is now at version {0}")]
    Stale(i64),
    /// A backing service (document storage) is unreachable (503).
    #[error("a backing service is unavailable")]
    Unavailable,
    /// Document storage has no room left (507).
    #[error("document storage is full")]
    StorageFull,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type ProdResult<T> = Result<T, ProdError>;

pub fn invalid(code: &'static str, detail: impl Into<String>) -> ProdError {
    ProdError::Invalid(code, detail.into())
}

pub fn conflict(code: &'static str, detail: impl Into<String>) -> ProdError {
    ProdError::Conflict(code, detail.into())
}

/// Largest quantity on an order, a work order or one output report.
pub const MAX_QUANTITY: i64 = 10_000_000;

/// The kinds of line, which are also the stages a work order belongs to, in flow order.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum LineKind {
    Smt,
    Dip,
    Test,
    Assembly,
}

impl LineKind {
    pub const ALL: [LineKind; 4] = [
        LineKind::Smt,
        LineKind::Dip,
        LineKind::Test,
        LineKind::Assembly,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LineKind::Smt => "SMT",
            LineKind::Dip => "DIP",
            LineKind::Test => "TEST",
            LineKind::Assembly => "ASSEMBLY",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Who is asking, as far as production visibility goes.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user_id: String,
    /// MANAGER: sees and plans everything.
    pub manager: bool,
}

impl Viewer {
    pub fn new(user_id: &str, roles: &[Role]) -> Self {
        Self {
            user_id: user_id.to_owned(),
            manager: roles.contains(&Role::Manager),
        }
    }
}

/// A new id (UUIDv7: ordered by creation).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Checks a required, trimmed text field's length; returns it trimmed.
pub fn text(field: &'static str, value: &str, max: usize) -> ProdResult<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(invalid(
            "invalid_field",
            format!("{field} must be 1 to {max} characters, without control characters"),
        ));
    }
    Ok(value.to_owned())
}

/// Checks a quantity: whole, non-negative (or positive) and at most [`MAX_QUANTITY`].
pub fn quantity(field: &'static str, value: i64, allow_zero: bool) -> ProdResult<i64> {
    let min = i64::from(!allow_zero);
    if value < min || value > MAX_QUANTITY {
        return Err(invalid(
            "invalid_quantity",
            format!("{field} must be between {min} and {MAX_QUANTITY}"),
        ));
    }
    Ok(value)
}

/// After an `UPDATE … WHERE id = $n AND version = $v`: no row changed means someone else moved
/// the row past version `v` first.
pub fn guarded(done: &sqlx::any::AnyQueryResult, version: i64) -> ProdResult<()> {
    if done.rows_affected() == 0 {
        return Err(ProdError::Stale(version + 1));
    }
    Ok(())
}

/// Compares an `If-Match` version with the current one.
pub fn check_version(expected: Option<i64>, current: i64) -> ProdResult<()> {
    match expected {
        Some(v) if v != current => Err(ProdError::Stale(current)),
        _ => Ok(()),
    }
}
