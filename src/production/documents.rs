//! Documents (work instructions, BOMs, reports) attached to a line, an order or a work order.
//! MANAGER uploads; MANAGER and the leaders of the line concerned download. The bytes go to the
//! configured [`crate::storage::Storage`] under a generated key, with their SHA-256 recorded and
//! checked again on download; the declared content type must match the bytes, and the name is
//! reduced to a safe one. The row is written only after the bytes are stored, so a listed
//! document always has content.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{invalid, lines, work_orders, ProdError, ProdResult, Viewer};
use crate::app::AppState;
use crate::storage::{self, sniff, StorageError};

/// Largest upload, in bytes.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerType {
    Line,
    Order,
    WorkOrder,
}

impl OwnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Line => "line",
            OwnerType::Order => "order",
            OwnerType::WorkOrder => "work_order",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [OwnerType::Line, OwnerType::Order, OwnerType::WorkOrder]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Instruction,
    Bom,
    Report,
    Other,
}

impl DocKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Instruction => "instruction",
            DocKind::Bom => "bom",
            DocKind::Report => "report",
            DocKind::Other => "other",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        [
            DocKind::Instruction,
            DocKind::Bom,
            DocKind::Report,
            DocKind::Other,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Document {
    pub id: String,
    pub owner_type: OwnerType,
    pub owner_id: String,
    pub kind: DocKind,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub uploaded_by: Option<String>,
    pub created_at: String,
    #[serde(skip)]
    pub storage_key: String,
}

pub struct Upload<'a> {
    pub owner_type: OwnerType,
    pub owner_id: &'a str,
    pub kind: DocKind,
    pub name: &'a str,
    pub content_type: &'a str,
    pub bytes: &'a [u8],
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    i64,
);
const COLUMNS: &str =
    "id, owner_type, owner_id, kind, name, content_type, size, sha256, storage_key, uploaded_by, created_at";

fn from_row(r: Row) -> Option<Document> {
    Some(Document {
        owner_type: OwnerType::parse(&r.1)?,
        kind: DocKind::parse(&r.3)?,
        id: r.0,
        owner_id: r.2,
        name: r.4,
        content_type: r.5,
        size: r.6,
        sha256: r.7,
        storage_key: r.8,
        uploaded_by: r.9,
        created_at: crate::clock::rfc3339(r.10),
    })
}

fn storage_error(e: StorageError) -> ProdError {
    match e {
        StorageError::Full => ProdError::StorageFull,
        StorageError::Unavailable(reason) => {
            tracing::warn!(%reason, "document storage unavailable");
            ProdError::Unavailable
        }
        StorageError::NotFound => ProdError::Other(anyhow::anyhow!("document content missing")),
        StorageError::Corrupt => ProdError::Other(anyhow::anyhow!("document content corrupt")),
    }
}

/// Whether the owner exists and (for a leader) concerns a line they lead.
async fn may_see_owner(
    state: &AppState,
    viewer: &Viewer,
    owner: OwnerType,
    id: &str,
) -> ProdResult<bool> {
    let db = &state.db;
    Ok(match owner {
        OwnerType::Line => {
            let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM lines WHERE id = $1")
                .bind(id)
                .fetch_one(db.pool())
                .await?;
            exists > 0 && (viewer.manager || lines::leads(db.pool(), &viewer.user_id, id).await?)
        }
        OwnerType::WorkOrder => match work_orders::visible(db, viewer, id).await {
            Ok(_) => true,
            Err(ProdError::NotFound) => false,
            Err(e) => return Err(e),
        },
        OwnerType::Order => {
            let n: i64 = if viewer.manager {
                sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE id = $1")
                    .bind(id)
                    .fetch_one(db.pool())
                    .await?
            } else {
                sqlx::query_scalar(
                    "SELECT COUNT(*) FROM work_orders w JOIN line_leaders ll ON ll.line_id = w.line_id
                     WHERE w.order_id = $1 AND ll.user_id = $2 AND w.published_at IS NOT NULL",
                )
                .bind(id)
                .bind(&viewer.user_id)
                .fetch_one(db.pool())
                .await?
            };
            n > 0
        }
    })
}

pub fn parse_owner(owner_type: &str, kind: Option<&str>) -> ProdResult<(OwnerType, DocKind)> {
    let owner = OwnerType::parse(owner_type).ok_or_else(|| {
        invalid(
            "invalid_owner",
            "owner_type must be line, order or work_order",
        )
    })?;
    let kind = match kind {
        None => DocKind::Other,
        Some(k) => DocKind::parse(k).ok_or_else(|| {
            invalid(
                "invalid_kind",
                "kind must be instruction, bom, report or other",
            )
        })?,
    };
    Ok((owner, kind))
}

pub async fn upload(state: &AppState, actor: Option<&str>, up: Upload<'_>) -> ProdResult<Document> {
    let viewer = Viewer {
        user_id: actor.unwrap_or_default().to_owned(),
        manager: true,
    };
    if !may_see_owner(state, &viewer, up.owner_type, up.owner_id).await? {
        return Err(invalid(
            "unknown_owner",
            format!("no {} with that id", up.owner_type.as_str()),
        ));
    }
    if up.bytes.len() > MAX_BYTES {
        return Err(ProdError::Invalid(
            "too_large",
            format!("documents are limited to {} MiB", MAX_BYTES / 1024 / 1024),
        ));
    }
    let content_type = sniff::check(up.content_type, up.bytes).map_err(|e| match e {
        sniff::Rejected::NotAllowed(_) => ProdError::Invalid("unsupported_type", e.to_string()),
        other => ProdError::Invalid("content_mismatch", other.to_string()),
    })?;
    let name = sniff::safe_name(up.name)
        .ok_or_else(|| invalid("invalid_name", "the file name has no usable characters"))?;
    let sha = storage::sha256_hex(up.bytes);
    let key = storage::new_key();
    state
        .storage
        .put(&key, up.bytes, content_type)
        .await
        .map_err(storage_error)?;
    let id = super::new_id();
    let inserted = sqlx::query(&format!(
        "INSERT INTO documents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    ))
    .bind(&id)
    .bind(up.owner_type.as_str())
    .bind(up.owner_id)
    .bind(up.kind.as_str())
    .bind(&name)
    .bind(content_type)
    .bind(up.bytes.len() as i64)
    .bind(&sha)
    .bind(&key)
    .bind(actor)
    .bind(crate::clock::now())
    .execute(state.db.pool())
    .await;
    if let Err(e) = inserted {
        // No row points at the bytes; remove them rather than leave an orphan.
        if let Err(cleanup) = state.storage.delete(&key).await {
            tracing::warn!(error = %cleanup, "could not remove the content of a failed upload");
        }
        return Err(e.into());
    }
    get(state, &id).await?.ok_or(ProdError::NotFound)
}

async fn get(state: &AppState, id: &str) -> ProdResult<Option<Document>> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM documents WHERE id = $1"))
            .bind(id)
            .fetch_optional(state.db.pool())
            .await?;
    Ok(row.and_then(from_row))
}

/// A document's metadata, if the viewer may see its owner.
pub async fn visible(state: &AppState, viewer: &Viewer, id: &str) -> ProdResult<Document> {
    let doc = get(state, id).await?.ok_or(ProdError::NotFound)?;
    if may_see_owner(state, viewer, doc.owner_type, &doc.owner_id).await? {
        Ok(doc)
    } else {
        Err(ProdError::NotFound)
    }
}

/// The documents attached to one owner.
pub async fn list(
    state: &AppState,
    viewer: &Viewer,
    owner: OwnerType,
    owner_id: &str,
) -> ProdResult<Vec<Document>> {
    if !may_see_owner(state, viewer, owner, owner_id).await? {
        return Err(ProdError::NotFound);
    }
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM documents WHERE owner_type = $1 AND owner_id = $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(owner.as_str())
    .bind(owner_id)
    .fetch_all(state.db.pool())
    .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// The content as a stream, verified against the stored size and checksum on the way (a
/// mismatch ends the stream with an error, so the transfer fails rather than delivering it).
pub async fn content(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> ProdResult<(Document, storage::ByteStream)> {
    let doc = visible(state, viewer, id).await?;
    let stream = state
        .storage
        .open(&doc.storage_key)
        .await
        .map_err(|e| match e {
            StorageError::NotFound => ProdError::Other(anyhow::anyhow!(
                "document {} has no content in storage",
                doc.id
            )),
            other => storage_error(other),
        })?;
    let size = u64::try_from(doc.size).unwrap_or_default();
    let id = doc.id.clone();
    let checked = storage::verified(stream, doc.sha256.clone(), size);
    let logged = futures_util::StreamExt::inspect(checked, move |chunk| {
        if let Err(e) = chunk {
            tracing::error!(document = %id, error = %e, "document download failed");
        }
    });
    Ok((doc, Box::pin(logged)))
}

pub async fn delete(state: &AppState, id: &str) -> ProdResult<()> {
    let doc = get(state, id).await?.ok_or(ProdError::NotFound)?;
    sqlx::query("DELETE FROM documents WHERE id = $1")
        .bind(id)
        .execute(state.db.pool())
        .await?;
    if let Err(e) = state.storage.delete(&doc.storage_key).await {
        tracing::warn!(error = %e, "document row deleted but its content could not be removed");
    }
    Ok(())
}
