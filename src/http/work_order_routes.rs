//! `/api/work-orders` and `/api/my/tasks`: MANAGER schedules, reschedules (with `If-Match`)
//! and cancels; the leaders of a work order's line see it once published and execute it. A
//! work order on another line is `404` for a leader, exactly as if it did not exist.

use axum::extract::{Path, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::access::{route, Route, FLOOR, LEADER, MANAGER};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::Identity;
use super::extract::{tagged, ApiJson, ApiQuery, IdempotencyKey, IfMatch};
use crate::app::AppState;
use crate::production::calendar::format_date;
use crate::production::cancellation;
use crate::production::execution::{self, Act, DowntimeBody, OutputBody, PauseBody};
use crate::production::invalid;
use crate::production::work_orders::{
    self, work_date, Action, HistoryEntry, ListFilter, NewWorkOrder, Status, WorkOrder,
    WorkOrderPatch,
};

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/work-orders", MANAGER, get(list)),
        route(Method::POST, "/api/work-orders", MANAGER, post(create)),
        route(Method::GET, "/api/work-orders/{id}", FLOOR, get(get_one)),
        route(
            Method::PATCH,
            "/api/work-orders/{id}",
            MANAGER,
            patch(reschedule),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/cancel",
            MANAGER,
            post(cancel),
        ),
        route(
            Method::GET,
            "/api/work-orders/{id}/history",
            FLOOR,
            get(history),
        ),
        route(Method::GET, "/api/my/tasks", LEADER, get(tasks)),
        route(
            Method::POST,
            "/api/work-orders/{id}/start",
            LEADER,
            post(start),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/pause",
            LEADER,
            post(pause),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/resume",
            LEADER,
            post(resume),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/output",
            LEADER,
            post(output),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/downtime",
            LEADER,
            post(downtime),
        ),
        route(
            Method::POST,
            "/api/work-orders/{id}/complete",
            LEADER,
            post(complete),
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `YYYY-MM-DD`, default today (factory calendar).
    pub from: Option<String>,
    /// `YYYY-MM-DD`, default `from` + 6 days; at most 62 days after `from` (5,000 work orders at most).
    pub to: Option<String>,
    pub line_id: Option<String>,
    pub order_id: Option<String>,
    pub status: Option<Status>,
}

/// The schedule: work orders in a date range, in date, shift, line and sequence order.
#[utoipa::path(get, path = "/api/work-orders", tag = "production", operation_id = "list_work_orders", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = [WorkOrder]), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<WorkOrder>>> {
    let from = match &q.from {
        Some(f) => work_date(f)?,
        None => state.clock.today(),
    };
    let to = match &q.to {
        Some(t) => work_date(t)?,
        None => from + time::Duration::days(6),
    };
    if to < from || (to - from).whole_days() > 62 {
        return Err(invalid(
            "invalid_range",
            "to must be on or after from, at most 62 days later",
        )
        .into());
    }
    let filter = ListFilter {
        line_id: q.line_id,
        order_id: q.order_id,
        status: q.status,
        from: format_date(from),
        to: format_date(to),
    };
    Ok(Json(work_orders::list(&state.db, &filter).await?))
}

/// Schedule a work order on a line, date and shift.
#[utoipa::path(post, path = "/api/work-orders", tag = "production", request_body = NewWorkOrder,
    security(("bearer" = [])),
    responses((status = 201, body = WorkOrder), (status = 409, description = "Order cancelled or line inactive", body = Problem),
              (status = 422, description = "Unknown order, line or shift; stage mismatch; bad quantity or date", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewWorkOrder>,
) -> ApiResult<Response> {
    let wo = work_orders::create(&state.db, body).await?;
    let mut response = tagged(wo.version, wo);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// One work order (a leader: only published ones on their lines).
#[utoipa::path(get, path = "/api/work-orders/{id}", tag = "production", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = WorkOrder), (status = 404, body = Problem)))]
pub async fn get_one(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let wo = work_orders::visible(&state.db, &identity.viewer(), &id).await?;
    Ok(tagged(wo.version, wo))
}

/// Reschedule (line, date, shift, sequence, quantity) a planned or paused work order.
/// `If-Match` is required.
#[utoipa::path(patch, path = "/api/work-orders/{id}", tag = "production", request_body = WorkOrderPatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = String, Header)),
    responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
              (status = 409, description = "Stale version or not reschedulable", body = Problem),
              (status = 422, body = Problem), (status = 428, description = "If-Match missing", body = Problem)))]
pub async fn reschedule(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<WorkOrderPatch>,
) -> ApiResult<Response> {
    let expected = if_match.required()?;
    let wo = work_orders::reschedule(&state.db, &identity.user_id, &id, body, expected).await?;
    Ok(tagged(wo.version, wo))
}

/// Cancel a planned or paused work order.
#[utoipa::path(post, path = "/api/work-orders/{id}/cancel", tag = "production",
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
              (status = 409, description = "Illegal transition or stale", body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> ApiResult<Response> {
    let wo = cancellation::work_order(&state.db, &identity.user_id, &id, if_match.0).await?;
    Ok(tagged(wo.version, wo))
}

/// Every transition and report of a work order, oldest first.
#[utoipa::path(get, path = "/api/work-orders/{id}/history", tag = "production", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = [HistoryEntry]), (status = 404, body = Problem)))]
pub async fn history(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<HistoryEntry>>> {
    work_orders::visible(&state.db, &identity.viewer(), &id).await?;
    Ok(Json(work_orders::history(&state.db, &id).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TasksQuery {
    /// `YYYY-MM-DD`, default today (factory calendar).
    pub date: Option<String>,
}

/// The signed-in leader's tasks: published work orders on their lines for the date, plus any
/// still running or paused from earlier days and the previous day's work not yet started.
#[utoipa::path(get, path = "/api/my/tasks", tag = "shop floor", params(TasksQuery), security(("bearer" = [])),
    responses((status = 200, body = [WorkOrder]), (status = 422, body = Problem)))]
pub async fn tasks(
    State(state): State<AppState>,
    identity: Identity,
    ApiQuery(q): ApiQuery<TasksQuery>,
) -> ApiResult<Response> {
    let date = match &q.date {
        Some(d) => work_date(d)?,
        None => state.clock.today(),
    };
    let json = match state.task_cache.get(&identity.user_id, date) {
        Some(json) => json,
        None => {
            let generation = state.task_cache.generation();
            let tasks = work_orders::tasks(&state.db, &identity.user_id, date).await?;
            let json = bytes::Bytes::from(
                serde_json::to_vec(&tasks).map_err(|e| ApiError::internal(e.into()))?,
            );
            state
                .task_cache
                .put(&identity.user_id, date, generation, json.clone());
            json
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

fn act<'a>(identity: &'a Identity, if_match: &IfMatch) -> Act<'a> {
    Act {
        user_id: &identity.user_id,
        expected: if_match.0,
    }
}

macro_rules! transition_handler {
    ($name:ident, $path:literal, $action:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "shop floor", security(("bearer" = [])),
            params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
            responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
                      (status = 409, description = "Illegal transition or stale version", body = Problem)))]
        pub async fn $name(State(state): State<AppState>, identity: Identity, Path(id): Path<String>, if_match: IfMatch) -> ApiResult<Response> {
            let wo = execution::transition(&state.db, &act(&identity, &if_match), &id, $action).await?;
            Ok(tagged(wo.version, wo))
        }
    };
}

transition_handler!(
    start,
    "/api/work-orders/{id}/start",
    Action::Start,
    "Start a planned work order."
);
transition_handler!(
    resume,
    "/api/work-orders/{id}/resume",
    Action::Resume,
    "Resume a paused work order (closes its stop)."
);
transition_handler!(
    complete,
    "/api/work-orders/{id}/complete",
    Action::Complete,
    "Complete a running or paused work order."
);

/// Pause a running work order with a downtime reason (opens a stop until resumed).
#[utoipa::path(post, path = "/api/work-orders/{id}/pause", tag = "shop floor", request_body = PauseBody,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, description = "Unknown reason", body = Problem)))]
pub async fn pause(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<PauseBody>,
) -> ApiResult<Response> {
    let wo = execution::pause(&state.db, &act(&identity, &if_match), &id, &body).await?;
    Ok(tagged(wo.version, wo))
}

/// Report good and scrap units. With an `Idempotency-Key`, sending the same report again (the
/// answer was lost) counts it once and answers with the work order as it is now.
#[utoipa::path(post, path = "/api/work-orders/{id}/output", tag = "shop floor", request_body = OutputBody,
    security(("bearer" = [])),
    params(("id" = String, Path), ("If-Match" = Option<String>, Header),
           ("Idempotency-Key" = Option<String>, Header, description = "The client's name for this report (a UUID); a repeat with the same key is counted once")),
    responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
              (status = 409, description = "Not running, or stale", body = Problem),
              (status = 422, description = "Bad quantities or reason, or an Idempotency-Key already used for another report", body = Problem)))]
pub async fn output(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
    key: IdempotencyKey,
    ApiJson(body): ApiJson<OutputBody>,
) -> ApiResult<Response> {
    let wo = execution::report_output(
        &state.db,
        &state.clock,
        &act(&identity, &if_match),
        &id,
        &body,
        key.0.as_deref(),
    )
    .await?;
    Ok(tagged(wo.version, wo))
}

/// Report a stop after the fact.
#[utoipa::path(post, path = "/api/work-orders/{id}/downtime", tag = "shop floor", request_body = DowntimeBody,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = WorkOrder), (status = 404, body = Problem),
              (status = 409, description = "Not running, overlapping, or stale", body = Problem),
              (status = 422, description = "Bad interval or reason", body = Problem)))]
pub async fn downtime(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<DowntimeBody>,
) -> ApiResult<Response> {
    let wo = execution::report_downtime(&state.db, &act(&identity, &if_match), &id, &body).await?;
    Ok(tagged(wo.version, wo))
}
