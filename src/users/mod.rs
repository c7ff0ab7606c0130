//! User accounts: the stored model, its queries, and the account operations shared by the CLI and
//! the admin API (create, update, disable, revoke sessions, unlock). Access tokens are invalidated
//! through [`crate::auth::revocation`] whenever a change must cut them off.

pub mod accounts;
pub mod cache;
pub mod email;

use serde::Serialize;
use sqlx::{Any, Executor};
use utoipa::ToSchema;

use crate::auth::roles::{self, Role};

/// A stored account. The password hash is never serialised and never in `Debug`.
#[derive(Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub roles: Vec<Role>,
    pub email_verified: bool,
    pub disabled: bool,
    pub auth_version: i64,
    pub created_at: i64,
    /// Identity-provider tokens issued at or before this (Unix seconds) are refused.
    pub tokens_valid_after: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// `user` in the contract.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub email_verified: bool,
}

/// `user` plus what admins see.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AdminUserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub roles: Vec<Role>,
    pub email_verified: bool,
    pub disabled: bool,
    /// RFC 3339
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles: u.roles.clone(),
            email_verified: u.email_verified,
        }
    }
}

impl From<&User> for AdminUserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            roles: u.roles.clone(),
            email_verified: u.email_verified,
            disabled: u.disabled,
            created_at: crate::clock::rfc3339(u.created_at),
        }
    }
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
);

const COLUMNS: &str =
    "id, email, name, password_hash, roles, email_verified, disabled, auth_version, created_at, \
     tokens_valid_after";

fn from_row(r: Row) -> User {
    User {
        id: r.0,
        email: r.1,
        name: r.2,
        password_hash: r.3,
        roles: roles::from_db(&r.4),
        email_verified: r.5 != 0,
        disabled: r.6 != 0,
        auth_version: r.7,
        created_at: r.8,
        tokens_valid_after: r.9,
    }
}

pub async fn by_email<'e, E>(exec: E, email: &str) -> Result<Option<User>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(exec)
        .await?;
    Ok(row.map(from_row))
}

pub async fn by_id<'e, E>(exec: E, id: &str) -> Result<Option<User>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(exec)
        .await?;
    Ok(row.map(from_row))
}

/// Users with ids after `after`, oldest first (ids are UUIDv7, so id order is creation order).
pub async fn page<'e, E>(exec: E, after: Option<&str>, limit: i64) -> Result<Vec<User>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
    ))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(exec)
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn set_password_hash<'e, E>(exec: E, id: &str, hash: &str) -> Result<(), sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(crate::clock::now())
        .execute(exec)
        .await
        .map(|_| ())
}

/// Accounts holding ADMIN that can sign in (enabled, verified, with a password).
pub async fn active_admins<'e, E>(exec: E) -> Result<i64, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM users WHERE disabled = 0 AND email_verified = 1
           AND password_hash IS NOT NULL AND (roles = 'ADMIN' OR roles LIKE 'ADMIN,%')",
    )
    .fetch_one(exec)
    .await?;
    Ok(n)
}
