//! The audit trail: one row per security event, written in the same transaction as the change it
//! records (or on its own for events that change nothing, like a failed login). The `detail` is a
//! small JSON object built by the caller from non-secret facts; no password, code or token is ever
//! passed here. Listing is newest first with an opaque cursor.

use serde::Serialize;
use sqlx::{Any, Executor};
use utoipa::ToSchema;

use crate::db::Db;

/// Event types, as stored and as filtered on by `GET /api/admin/audit?type=`.
pub mod kind {
    pub const LOGIN_OK: &str = "login_ok";
    pub const LOGIN_FAILED: &str = "login_failed";
    pub const LOGIN_LOCKED: &str = "login_locked";
    pub const LOGIN_UNLOCKED: &str = "login_unlocked";
    pub const REFRESH_REUSE: &str = "refresh_reuse";
    pub const LOGOUT: &str = "logout";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const OTP_SENT: &str = "otp_sent";
    pub const OTP_FAILED: &str = "otp_failed";
    pub const OTP_USED: &str = "otp_used";
    pub const USER_CREATED: &str = "user_created";
    pub const ROLES_CHANGED: &str = "roles_changed";
    pub const USER_RENAMED: &str = "user_renamed";
    pub const USER_DISABLED: &str = "user_disabled";
    pub const USER_ENABLED: &str = "user_enabled";
    pub const SESSIONS_REVOKED: &str = "sessions_revoked";
    pub const CONFIG_LOADED: &str = "config_loaded";
    pub const SECRET_ROTATED: &str = "secret_rotated";
    pub const MAIL_FAILED: &str = "mail_failed";
    pub const MAIL_RETRIED: &str = "mail_retried";
}

/// An event to record.
pub struct Event<'a> {
    pub kind: &'static str,
    pub actor_id: Option<&'a str>,
    pub subject_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            actor_id: None,
            subject_id: None,
            ip: None,
            detail: serde_json::json!({}),
        }
    }
    pub fn actor(mut self, id: &'a str) -> Self {
        self.actor_id = Some(id);
        self
    }
    /// The actor when there is one (an admin), none for the CLI or the system.
    pub fn actor_opt(mut self, id: Option<&'a str>) -> Self {
        self.actor_id = id;
        self
    }
    pub fn subject(mut self, id: &'a str) -> Self {
        self.subject_id = Some(id);
        self
    }
    pub fn ip(mut self, ip: Option<&'a str>) -> Self {
        self.ip = ip;
        self
    }
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}

pub async fn record<'e, E>(exec: E, event: Event<'_>) -> Result<(), sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query(
        "INSERT INTO audit_events (at, type, actor_id, subject_id, ip, detail)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::clock::now())
    .bind(event.kind)
    .bind(event.actor_id)
    .bind(event.subject_id)
    .bind(event.ip)
    .bind(event.detail.to_string())
    .execute(exec)
    .await
    .map(|_| ())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339
    pub at: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor_id: Option<String>,
    pub subject_id: Option<String>,
    pub ip: Option<String>,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

#[derive(Debug, Default)]
pub struct Filter {
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub since: Option<i64>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

type Row = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// Newest first; returns the page and whether more rows follow.
pub async fn list(db: &Db, f: &Filter) -> Result<(Vec<AuditEntry>, bool), sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, at, type, actor_id, subject_id, ip, detail FROM audit_events
         WHERE ($1 IS NULL OR type = $1)
           AND ($2 IS NULL OR actor_id = $2 OR subject_id = $2)
           AND at >= $3
           AND id < $4
         ORDER BY id DESC
         LIMIT $5",
    )
    .bind(f.kind.as_deref())
    .bind(f.user_id.as_deref())
    .bind(f.since.unwrap_or(0))
    .bind(f.before_id.unwrap_or(i64::MAX))
    .bind(f.limit + 1)
    .fetch_all(db.pool())
    .await?;
    let more = rows.len() as i64 > f.limit;
    let items = rows
        .into_iter()
        .take(f.limit as usize)
        .map(
            |(id, at, kind, actor_id, subject_id, ip, detail)| AuditEntry {
                id,
                at: crate::clock::rfc3339(at),
                kind,
                actor_id,
                subject_id,
                ip,
                detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
            },
        )
        .collect();
    Ok((items, more))
}
