//! Production lines: code, name, kind, shifts, active flag, and the LINE_LEADER users who lead
//! them. Only leaders listed here may see or execute a line's work orders.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Executor};
use utoipa::ToSchema;

use super::calendar::{validate_shifts, Shift};
use super::{
    check_version, conflict, guarded, invalid, new_id, text, LineKind, ProdError, ProdResult,
};
use crate::auth::roles::{self, Role};
use crate::db::{self, Db};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Line {
    pub id: String,
    /// Upper-case, e.g. `SMT-1`.
    pub code: String,
    pub name: String,
    pub kind: LineKind,
    pub shifts: Vec<Shift>,
    pub active: bool,
    pub leaders: Vec<Leader>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Leader {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLine {
    pub code: String,
    pub name: String,
    pub kind: LineKind,
    pub shifts: Vec<Shift>,
    pub active: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinePatch {
    pub name: Option<String>,
    pub shifts: Option<Vec<Shift>>,
    pub active: Option<bool>,
}

type Row = (String, String, String, String, String, i64, i64, i64, i64);
const COLUMNS: &str = "id, code, name, kind, shifts, active, version, created_at, updated_at";

fn from_row(r: Row) -> ProdResult<Line> {
    Ok(Line {
        kind: LineKind::parse(&r.3).ok_or_else(|| anyhow::anyhow!("stored line kind {}", r.3))?,
        shifts: serde_json::from_str(&r.4).map_err(anyhow::Error::from)?,
        id: r.0,
        code: r.1,
        name: r.2,
        active: r.5 != 0,
        leaders: Vec::new(),
        version: r.6,
        created_at: crate::clock::rfc3339(r.7),
        updated_at: crate::clock::rfc3339(r.8),
    })
}

fn normalise_code(raw: &str) -> ProdResult<String> {
    let code = raw.trim().to_uppercase();
    let ok = (1..=16).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_alphanumeric())
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(
            "invalid_code",
            "code must be 1 to 16 letters, digits, '-' or '_', e.g. SMT-1",
        ));
    }
    Ok(code)
}

fn checked_shifts(shifts: &[Shift]) -> ProdResult<String> {
    validate_shifts(shifts).map_err(|e| invalid("invalid_shifts", e))?;
    Ok(serde_json::to_string(shifts).map_err(anyhow::Error::from)?)
}

pub async fn create(db: &Db, new: NewLine) -> ProdResult<Line> {
    let code = normalise_code(&new.code)?;
    let name = text("name", &new.name, 100)?;
    let shifts = checked_shifts(&new.shifts)?;
    let id = new_id();
    let now = crate::clock::now();
    let inserted = sqlx::query(
        "INSERT INTO lines (id, code, name, kind, shifts, active, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7)",
    )
    .bind(&id)
    .bind(&code)
    .bind(&name)
    .bind(new.kind.as_str())
    .bind(&shifts)
    .bind(i64::from(new.active.unwrap_or(true)))
    .bind(now)
    .execute(db.pool())
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(conflict(
            "code_taken",
            format!("a line with code {code} already exists"),
        )),
        other => {
            other?;
            get(db, &id).await?.ok_or(ProdError::NotFound)
        }
    }
}

pub async fn update(
    db: &Db,
    id: &str,
    patch: LinePatch,
    expected: Option<i64>,
) -> ProdResult<Line> {
    let current = get(db, id).await?.ok_or(ProdError::NotFound)?;
    check_version(expected, current.version)?;
    let name = match &patch.name {
        Some(n) => text("name", n, 100)?,
        None => current.name.clone(),
    };
    let shifts = checked_shifts(patch.shifts.as_deref().unwrap_or(&current.shifts))?;
    if let Some(new) = &patch.shifts {
        for gone in current
            .shifts
            .iter()
            .filter(|s| !new.iter().any(|n| n.name == s.name))
        {
            let used: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM work_orders WHERE line_id = $1 AND shift = $2
                   AND status IN ('planned', 'in_progress', 'paused')",
            )
            .bind(id)
            .bind(&gone.name)
            .fetch_one(db.pool())
            .await?;
            if used > 0 {
                return Err(conflict(
                    "shift_in_use",
                    format!(
                        "shift '{}' has open work orders; move or finish them first",
                        gone.name
                    ),
                ));
            }
        }
    }
    let active = patch.active.unwrap_or(current.active);
    let done = sqlx::query(
        "UPDATE lines SET name = $1, shifts = $2, active = $3, version = version + 1, updated_at = $4
         WHERE id = $5 AND version = $6",
    )
    .bind(&name)
    .bind(&shifts)
    .bind(i64::from(active))
    .bind(crate::clock::now())
    .bind(id)
    .bind(current.version)
    .execute(db.pool())
    .await?;
    guarded(&done, current.version)?;
    get(db, id).await?.ok_or(ProdError::NotFound)
}

/// Replaces the line's leaders. Each must be an enabled user holding LINE_LEADER.
pub async fn set_leaders(
    db: &Db,
    id: &str,
    user_ids: &[String],
    expected: Option<i64>,
) -> ProdResult<Line> {
    if user_ids.len() > 50 {
        return Err(invalid("invalid_leaders", "at most 50 leaders per line"));
    }
    let mut tx = db.begin_write().await?;
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM lines WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    let version = version.ok_or(ProdError::NotFound)?;
    check_version(expected, version)?;
    for user_id in user_ids {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT roles, disabled FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        let ok = row.is_some_and(|(r, disabled)| {
            disabled == 0 && roles::from_db(&r).contains(&Role::LineLeader)
        });
        if !ok {
            return Err(invalid(
                "invalid_leaders",
                format!(
                    "user {} is not an enabled LINE_LEADER",
                    user_id.chars().take(40).collect::<String>()
                ),
            ));
        }
    }
    let done = sqlx::query(
        "UPDATE lines SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3",
    )
    .bind(crate::clock::now())
    .bind(id)
    .bind(version)
    .execute(&mut *tx)
    .await?;
    guarded(&done, version)?;
    sqlx::query("DELETE FROM line_leaders WHERE line_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let mut unique: Vec<&String> = user_ids.iter().collect();
    unique.sort();
    unique.dedup();
    for user_id in unique {
        sqlx::query("INSERT INTO line_leaders (line_id, user_id) VALUES ($1, $2)")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    get(db, id).await?.ok_or(ProdError::NotFound)
}

/// A line with its leaders.
pub async fn get(db: &Db, id: &str) -> ProdResult<Option<Line>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM lines WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut line = from_row(row)?;
    line.leaders = leaders(db.pool(), id).await?;
    Ok(Some(line))
}

/// Every line, by code, with leaders.
pub async fn list(db: &Db) -> ProdResult<Vec<Line>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM lines ORDER BY code"))
        .fetch_all(db.pool())
        .await?;
    let all: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT ll.line_id, u.id, u.name, u.email FROM line_leaders ll
         JOIN users u ON u.id = ll.user_id ORDER BY u.name",
    )
    .fetch_all(db.pool())
    .await?;
    rows.into_iter()
        .map(|r| {
            let mut line = from_row(r)?;
            line.leaders = all
                .iter()
                .filter(|l| l.0 == line.id)
                .map(|l| Leader {
                    id: l.1.clone(),
                    name: l.2.clone(),
                    email: l.3.clone(),
                })
                .collect();
            Ok(line)
        })
        .collect()
}

/// The users a line may be given as leaders: enabled accounts holding LINE_LEADER, by name.
pub async fn candidates(db: &Db) -> Result<Vec<Leader>, sqlx::Error> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, name, email, roles FROM users
         WHERE disabled = 0 AND roles LIKE '%LINE_LEADER%' ORDER BY name, id LIMIT 1000",
    )
    .fetch_all(db.pool())
    .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, _, _, r)| roles::from_db(r).contains(&Role::LineLeader))
        .map(|(id, name, email, _)| Leader { id, name, email })
        .collect())
}

async fn leaders<'e, E>(exec: E, line_id: &str) -> Result<Vec<Leader>, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT u.id, u.name, u.email FROM line_leaders ll JOIN users u ON u.id = ll.user_id
         WHERE ll.line_id = $1 ORDER BY u.name",
    )
    .bind(line_id)
    .fetch_all(exec)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| Leader { id, name, email })
        .collect())
}

/// Whether this user leads this line.
pub async fn leads<'e, E>(exec: E, user_id: &str, line_id: &str) -> Result<bool, sqlx::Error>
where
    E: Executor<'e, Database = Any>,
{
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM line_leaders WHERE user_id = $1 AND line_id = $2")
            .bind(user_id)
            .bind(line_id)
            .fetch_one(exec)
            .await?;
    Ok(n > 0)
}

/// The kind and shifts of a line (for scheduling and attributing reports to shifts).
pub async fn kind_and_shifts<'e, E>(
    exec: E,
    line_id: &str,
) -> ProdResult<Option<(LineKind, Vec<Shift>, bool)>>
where
    E: Executor<'e, Database = Any>,
{
    let row: Option<(String, String, i64)> =
        sqlx::query_as("SELECT kind, shifts, active FROM lines WHERE id = $1")
            .bind(line_id)
            .fetch_optional(exec)
            .await?;
    row.map(|(kind, shifts, active)| {
        Ok((
            LineKind::parse(&kind).ok_or_else(|| anyhow::anyhow!("stored line kind {kind}"))?,
            serde_json::from_str(&shifts).map_err(anyhow::Error::from)?,
            active != 0,
        ))
    })
    .transpose()
}
