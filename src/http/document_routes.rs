//! `/api/documents`: upload (MANAGER; the raw bytes as the body with their `Content-Type`, the
//! owner and name in the query), list, metadata and download (MANAGER, and leaders of the line
//! concerned), delete (MANAGER). Downloads are attachments with a safe name, `nosniff`, and the
//! checksum as the `ETag`.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{route, Route, FLOOR, MANAGER};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiQuery, Identity};
use crate::app::AppState;
use crate::production::documents::{self, Document, Upload, MAX_BYTES};

pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/documents",
            MANAGER,
            post(upload).layer(DefaultBodyLimit::max(MAX_BYTES)),
        ),
        route(Method::GET, "/api/documents", FLOOR, get(list)),
        route(Method::GET, "/api/documents/{id}", FLOOR, get(metadata)),
        route(
            Method::GET,
            "/api/documents/{id}/content",
            FLOOR,
            get(content),
        ),
        route(
            Method::DELETE,
            "/api/documents/{id}",
            MANAGER,
            delete(remove),
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    /// `line`, `order` or `work_order`
    pub owner_type: String,
    pub owner_id: String,
    /// `instruction`, `bom`, `report` or `other` (default)
    pub kind: Option<String>,
    /// The file name; reduced to a safe one.
    pub name: String,
}

/// Upload a document: the body is the file itself, `Content-Type` its type (PDF, PNG, JPEG,
/// CSV, plain text, XLSX or DOCX — checked against the bytes), at most 20 MiB.
#[utoipa::path(post, path = "/api/documents", tag = "documents", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security(("bearer" = [])),
    responses((status = 201, body = Document), (status = 400, body = Problem),
              (status = 413, description = "Over 20 MiB", body = Problem),
              (status = 422, description = "Type not accepted or not matching the bytes; unknown owner; bad name", body = Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<UploadQuery>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let (owner_type, kind) = documents::parse_owner(&q.owner_type, q.kind.as_deref())?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let doc = documents::upload(
        &state,
        Some(&identity.user_id),
        Upload {
            owner_type,
            owner_id: &q.owner_id,
            kind,
            name: &q.name,
            content_type,
            bytes: &body,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(doc)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub owner_type: String,
    pub owner_id: String,
}

/// The documents of a line, order or work order.
#[utoipa::path(get, path = "/api/documents", tag = "documents", operation_id = "list_documents", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = [Document]), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<Document>>> {
    let (owner, _) = documents::parse_owner(&q.owner_type, None)?;
    Ok(Json(
        documents::list(&state, &identity.viewer(), owner, &q.owner_id).await?,
    ))
}

/// A document's metadata.
#[utoipa::path(get, path = "/api/documents/{id}", tag = "documents", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Document), (status = 404, body = Problem)))]
pub async fn metadata(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Document>> {
    Ok(Json(
        documents::visible(&state, &identity.viewer(), &id).await?,
    ))
}

/// Download a document (as an attachment).
#[utoipa::path(get, path = "/api/documents/{id}/content", tag = "documents", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>),
              (status = 404, body = Problem)))]
pub async fn content(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (doc, stream) = documents::content(&state, &identity.viewer(), &id).await?;
    let mut response = axum::body::Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(doc.size));
    let value = |s: &str| HeaderValue::from_str(s).map_err(|e| ApiError::internal(e.into()));
    headers.insert(header::CONTENT_TYPE, value(&doc.content_type)?);
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition(&doc.name))?);
    headers.insert(header::ETAG, value(&format!("\"{}\"", doc.sha256))?);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the exact name per RFC 5987.
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Delete a document and its content.
#[utoipa::path(delete, path = "/api/documents/{id}", tag = "documents", params(("id" = String, Path)),
    security(("bearer" = [])), responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    documents::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn disposition_keeps_unicode_names_safely() {
        assert_eq!(
            super::disposition("Bản vẽ.pdf"),
            "attachment; filename=\"B_n v_.pdf\"; filename*=UTF-8''B%E1%BA%A3n%20v%E1%BA%BD.pdf"
        );
    }
}
