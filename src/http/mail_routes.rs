//! `/api/admin/mail/*` (role ADMIN): messages that failed for good — listed without their bodies,
//! so without any code — and put back in the queue on request.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{route, Route, ADMIN};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiQuery, ClientIp, Identity};
use crate::app::AppState;
use crate::auth::audit::{self, kind, Event};
use crate::mail::outbox::{self, FailedMail};

pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/admin/mail/failed",
            ADMIN,
            get(list_failed),
        ),
        route(
            Method::POST,
            "/api/admin/mail/{id}/retry",
            ADMIN,
            post(retry),
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FailedQuery {
    /// The `id` of the last item of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct FailedPage {
    pub items: Vec<FailedMail>,
    pub next_cursor: Option<String>,
}

/// Messages that could not be delivered.
#[utoipa::path(get, path = "/api/admin/mail/failed", tag = "admin", params(FailedQuery),
    security(("bearer" = [])),
    responses((status = 200, body = FailedPage), (status = 400, body = Problem)))]
pub async fn list_failed(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<FailedQuery>,
) -> ApiResult<Json<FailedPage>> {
    let limit = super::paging::limit(q.limit)?;
    if q.cursor.as_ref().is_some_and(|c| c.len() > 64) {
        return Err(ApiError::bad_request(
            "invalid_cursor",
            "The cursor is not valid.",
        ));
    }
    let mut items = outbox::failed(&state.db, q.cursor.as_deref(), limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|m| m.id.clone())
    } else {
        None
    };
    Ok(Json(FailedPage { items, next_cursor }))
}

/// Queue a failed message again.
#[utoipa::path(post, path = "/api/admin/mail/{id}/retry", tag = "admin",
    params(("id" = String, Path, description = "Outbox id")), security(("bearer" = [])),
    responses((status = 204, description = "Queued again"), (status = 404, body = Problem)))]
pub async fn retry(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::not_found());
    }
    let mut tx = state.db.begin_write().await?;
    if !outbox::retry_failed(&mut *tx, &id).await? {
        tx.rollback().await?;
        return Err(ApiError::not_found());
    }
    audit::record(
        &mut *tx,
        Event::new(kind::MAIL_RETRIED)
            .actor(&identity.user_id)
            .ip(Some(&ip.text()))
            .detail(serde_json::json!({ "outbox_id": id })),
    )
    .await?;
    tx.commit().await?;
    state.notifier.wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
