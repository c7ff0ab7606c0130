//! Products: SKU, name, and the ideal cycle time per line kind (seconds per unit) — the
//! standard OEE's performance factor is measured against. A work order copies the cycle time of
//! its stage when it is scheduled, so later edits do not rewrite history.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    check_version, conflict, guarded, invalid, new_id, text, LineKind, ProdError, ProdResult,
};
use crate::db::{self, Db};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
    pub sku: String,
    pub name: String,
    /// Ideal seconds per unit, by line kind (stage).
    pub ideal_cycle_seconds: BTreeMap<LineKind, f64>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProduct {
    pub sku: String,
    pub name: String,
    pub ideal_cycle_seconds: BTreeMap<LineKind, f64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    pub name: Option<String>,
    pub ideal_cycle_seconds: Option<BTreeMap<LineKind, f64>>,
}

type Row = (String, String, String, String, i64, i64, i64);
const COLUMNS: &str = "id, sku, name, cycle_times, version, created_at, updated_at";

fn from_row(r: Row) -> ProdResult<Product> {
    let ms: BTreeMap<LineKind, i64> = serde_json::from_str(&r.3).map_err(anyhow::Error::from)?;
    Ok(Product {
        id: r.0,
        sku: r.1,
        name: r.2,
        ideal_cycle_seconds: ms
            .into_iter()
            .map(|(k, v)| (k, v as f64 / 1000.0))
            .collect(),
        version: r.4,
        created_at: crate::clock::rfc3339(r.5),
        updated_at: crate::clock::rfc3339(r.6),
    })
}

/// Cycle times as stored: whole milliseconds, 1 ms to 1 hour.
fn cycle_ms(times: &BTreeMap<LineKind, f64>) -> ProdResult<String> {
    if times.is_empty() {
        return Err(invalid(
            "invalid_cycle_time",
            "give an ideal cycle time for at least one line kind",
        ));
    }
    let mut ms = BTreeMap::new();
    for (kind, secs) in times {
        if !secs.is_finite() || *secs < 0.001 || *secs > 3600.0 {
            return Err(invalid(
                "invalid_cycle_time",
                format!(
                    "ideal cycle time for {} must be 0.001 to 3600 seconds",
                    kind.as_str()
                ),
            ));
        }
        ms.insert(*kind, (secs * 1000.0).round() as i64);
    }
    Ok(serde_json::to_string(&ms).map_err(anyhow::Error::from)?)
}

fn normalise_sku(raw: &str) -> ProdResult<String> {
    let sku = raw.trim();
    let ok = (1..=40).contains(&sku.len())
        && sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !ok {
        return Err(invalid(
            "invalid_sku",
            "sku must be 1 to 40 letters, digits, '-', '_', '.' or '/'",
        ));
    }
    Ok(sku.to_owned())
}

pub async fn create(db: &Db, new: NewProduct) -> ProdResult<Product> {
    let sku = normalise_sku(&new.sku)?;
    let name = text("name", &new.name, 200)?;
    let cycle = cycle_ms(&new.ideal_cycle_seconds)?;
    let id = new_id();
    let now = crate::clock::now();
    let inserted = sqlx::query(
        "INSERT INTO products (id, sku, name, cycle_times, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $5)",
    )
    .bind(&id)
    .bind(&sku)
    .bind(&name)
    .bind(&cycle)
    .bind(now)
    .execute(db.pool())
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(conflict(
            "sku_taken",
            format!("a product with SKU {sku} already exists"),
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
    patch: ProductPatch,
    expected: Option<i64>,
) -> ProdResult<Product> {
    let current = get(db, id).await?.ok_or(ProdError::NotFound)?;
    check_version(expected, current.version)?;
    let name = match &patch.name {
        Some(n) => text("name", n, 200)?,
        None => current.name.clone(),
    };
    let cycle = cycle_ms(
        patch
            .ideal_cycle_seconds
            .as_ref()
            .unwrap_or(&current.ideal_cycle_seconds),
    )?;
    let done = sqlx::query(
        "UPDATE products SET name = $1, cycle_times = $2, version = version + 1, updated_at = $3
         WHERE id = $4 AND version = $5",
    )
    .bind(&name)
    .bind(&cycle)
    .bind(crate::clock::now())
    .bind(id)
    .bind(current.version)
    .execute(db.pool())
    .await?;
    guarded(&done, current.version)?;
    get(db, id).await?.ok_or(ProdError::NotFound)
}

pub async fn get(db: &Db, id: &str) -> ProdResult<Option<Product>> {
    let row: Option<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM products WHERE id = $1"))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.map(from_row).transpose()
}

pub async fn list(db: &Db) -> ProdResult<Vec<Product>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM products ORDER BY sku"))
        .fetch_all(db.pool())
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// The ideal cycle time in ms for one stage, if the product has one.
pub fn cycle_ms_for(product: &Product, stage: LineKind) -> Option<i64> {
    product
        .ideal_cycle_seconds
        .get(&stage)
        .map(|s| (s * 1000.0).round() as i64)
}
