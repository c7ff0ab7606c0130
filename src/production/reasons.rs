//! Downtime and scrap reason lists, configured by MANAGER. A reason is referenced by its code;
//! codes are never deleted (history points at them), only deactivated, and an inactive code
//! cannot be used for new reports. A fresh database starts with a sensible list for electronics
//! lines so the shop floor works on day one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{check_version, conflict, guarded, invalid, new_id, text, ProdError, ProdResult};
use crate::db::{self, Db};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Downtime,
    Scrap,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Downtime => "downtime",
            Kind::Scrap => "scrap",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Reason {
    pub id: String,
    pub kind: Kind,
    pub code: String,
    pub label: String,
    pub active: bool,
    pub version: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReason {
    pub kind: Kind,
    /// Upper-case letters, digits and '_', e.g. `FEEDER_JAM`.
    pub code: String,
    pub label: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonPatch {
    pub label: Option<String>,
    pub active: Option<bool>,
}

/// Installed when the reason table is empty.
pub const DEFAULTS: &[(Kind, &str, &str)] = &[
    (Kind::Downtime, "CHANGEOVER", "Changeover / setup"),
    (Kind::Downtime, "MATERIAL_SHORTAGE", "Material shortage"),
    (Kind::Downtime, "FEEDER_JAM", "Feeder jam"),
    (Kind::Downtime, "MACHINE_FAULT", "Machine fault"),
    (Kind::Downtime, "QUALITY_HOLD", "Quality hold"),
    (Kind::Downtime, "NO_OPERATOR", "No operator"),
    (Kind::Scrap, "SOLDER_BRIDGE", "Solder bridge"),
    (Kind::Scrap, "MISSING_COMPONENT", "Missing component"),
    (Kind::Scrap, "TOMBSTONE", "Tombstoning"),
    (Kind::Scrap, "TEST_FAIL", "Functional test failure"),
    (Kind::Scrap, "DAMAGED", "Damaged in handling"),
];

type Row = (String, String, String, String, i64, i64);

fn from_row(r: Row) -> Reason {
    Reason {
        id: r.0,
        kind: if r.1 == "scrap" {
            Kind::Scrap
        } else {
            Kind::Downtime
        },
        code: r.2,
        label: r.3,
        active: r.4 != 0,
        version: r.5,
    }
}

/// Installs [`DEFAULTS`] if there are no reasons yet.
pub async fn seed(db: &Db) -> Result<(), sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reasons")
        .fetch_one(db.pool())
        .await?;
    if n > 0 {
        return Ok(());
    }
    let now = crate::clock::now();
    for (kind, code, label) in DEFAULTS {
        sqlx::query(
            "INSERT INTO reasons (id, kind, code, label, active, version, created_at)
             VALUES ($1, $2, $3, $4, 1, 1, $5) ON CONFLICT (kind, code) DO NOTHING",
        )
        .bind(new_id())
        .bind(kind.as_str())
        .bind(*code)
        .bind(*label)
        .bind(now)
        .execute(db.pool())
        .await?;
    }
    Ok(())
}

pub async fn list(db: &Db, kind: Option<Kind>) -> ProdResult<Vec<Reason>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, code, label, active, version FROM reasons
         WHERE ($1 = '' OR kind = $1) ORDER BY kind, code",
    )
    .bind(kind.map(Kind::as_str).unwrap_or(""))
    .fetch_all(db.pool())
    .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

pub async fn create(db: &Db, new: NewReason) -> ProdResult<Reason> {
    let code = new.code.trim().to_uppercase();
    if !(1..=40).contains(&code.len())
        || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(invalid(
            "invalid_code",
            "code must be 1 to 40 letters, digits or '_'",
        ));
    }
    let label = text("label", &new.label, 100)?;
    let id = new_id();
    let inserted = sqlx::query(
        "INSERT INTO reasons (id, kind, code, label, active, version, created_at)
         VALUES ($1, $2, $3, $4, 1, 1, $5)",
    )
    .bind(&id)
    .bind(new.kind.as_str())
    .bind(&code)
    .bind(&label)
    .bind(crate::clock::now())
    .execute(db.pool())
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(conflict(
            "code_taken",
            format!("a {} reason {code} already exists", new.kind.as_str()),
        )),
        other => {
            other?;
            get(db, &id).await
        }
    }
}

pub async fn update(
    db: &Db,
    id: &str,
    patch: ReasonPatch,
    expected: Option<i64>,
) -> ProdResult<Reason> {
    let current = get(db, id).await?;
    check_version(expected, current.version)?;
    let label = match &patch.label {
        Some(l) => text("label", l, 100)?,
        None => current.label.clone(),
    };
    let active = patch.active.unwrap_or(current.active);
    let done = sqlx::query(
        "UPDATE reasons SET label = $1, active = $2, version = version + 1 WHERE id = $3 AND version = $4",
    )
    .bind(&label)
    .bind(i64::from(active))
    .bind(id)
    .bind(current.version)
    .execute(db.pool())
    .await?;
    guarded(&done, current.version)?;
    get(db, id).await
}

async fn get(db: &Db, id: &str) -> ProdResult<Reason> {
    let row: Option<Row> =
        sqlx::query_as("SELECT id, kind, code, label, active, version FROM reasons WHERE id = $1")
            .bind(id)
            .fetch_optional(db.pool())
            .await?;
    row.map(from_row).ok_or(ProdError::NotFound)
}

/// Fails unless `code` is an active reason of this kind.
pub async fn require(db: &Db, kind: Kind, code: &str) -> ProdResult<()> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM reasons WHERE kind = $1 AND code = $2 AND active = 1",
    )
    .bind(kind.as_str())
    .bind(code)
    .fetch_one(db.pool())
    .await?;
    if n == 0 {
        return Err(invalid(
            "unknown_reason",
            format!(
                "'{}' is not an active {} reason",
                code.chars().take(40).collect::<String>(),
                kind.as_str()
            ),
        ));
    }
    Ok(())
}
