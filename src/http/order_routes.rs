//! `/api/orders` and `/api/schedule/publish` (MANAGER): customer orders with their derived
//! status and progress, and publishing a schedule to the shop floor.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::access::{route, Route, MANAGER};
use super::error::{ApiResult, Problem};
use super::extract::{tagged, ApiJson, ApiQuery, Identity, IfMatch};
use super::paging::{decode_cursor, encode_cursor, limit};
use crate::app::AppState;
use crate::production::cancellation;
use crate::production::orders::{self, NewOrder, Order, OrderPatch, OrderStatus};
use crate::production::schedule::{self, PublishBody, Published};
use crate::production::ProdError;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/orders", MANAGER, get(list_orders)),
        route(Method::POST, "/api/orders", MANAGER, post(create_order)),
        route(Method::GET, "/api/orders/{id}", MANAGER, get(get_order)),
        route(
            Method::PATCH,
            "/api/orders/{id}",
            MANAGER,
            patch(update_order),
        ),
        route(
            Method::POST,
            "/api/orders/{id}/cancel",
            MANAGER,
            post(cancel_order),
        ),
        route(
            Method::POST,
            "/api/schedule/publish",
            MANAGER,
            post(publish),
        ),
    ]
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OrderQuery {
    /// Only orders with this derived status (e.g. `at_risk`).
    pub status: Option<OrderStatus>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<Order>,
    pub next_cursor: Option<String>,
}

/// Orders, oldest first, with derived status and progress.
#[utoipa::path(get, path = "/api/orders", tag = "production", params(OrderQuery),
    security(("bearer" = [])), responses((status = 200, body = OrderPage), (status = 400, body = Problem)))]
pub async fn list_orders(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<OrderQuery>,
) -> ApiResult<Json<OrderPage>> {
    let limit = limit(q.limit)?;
    let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let mut items =
        orders::page(&state.db, &state.clock, after.as_deref(), q.status, limit).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(|o| encode_cursor(&o.id))
    } else {
        None
    };
    Ok(Json(OrderPage { items, next_cursor }))
}

/// Create a customer order.
#[utoipa::path(post, path = "/api/orders", tag = "production", request_body = NewOrder,
    security(("bearer" = [])),
    responses((status = 201, body = Order), (status = 409, description = "Number taken", body = Problem),
              (status = 422, description = "Invalid quantity, date or product", body = Problem)))]
pub async fn create_order(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewOrder>,
) -> ApiResult<Response> {
    let order = orders::create(&state.db, &state.clock, body).await?;
    let mut response = tagged(order.version, order);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// One order.
#[utoipa::path(get, path = "/api/orders/{id}", tag = "production", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Order), (status = 404, body = Problem)))]
pub async fn get_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let order = orders::get(&state.db, &state.clock, &id)
        .await?
        .ok_or(ProdError::NotFound)?;
    Ok(tagged(order.version, order))
}

/// Change customer, quantity, due date or priority.
#[utoipa::path(patch, path = "/api/orders/{id}", tag = "production", request_body = OrderPatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
              (status = 409, description = "Stale If-Match or cancelled", body = Problem), (status = 422, body = Problem)))]
pub async fn update_order(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<OrderPatch>,
) -> ApiResult<Response> {
    let order = orders::update(&state.db, &state.clock, &id, body, if_match.0).await?;
    Ok(tagged(order.version, order))
}

/// Cancel an order and its planned or paused work orders (running work must be paused first).
#[utoipa::path(post, path = "/api/orders/{id}/cancel", tag = "production",
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Order), (status = 404, body = Problem),
              (status = 409, description = "Already cancelled, work in progress, or stale", body = Problem)))]
pub async fn cancel_order(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    if_match: IfMatch,
) -> ApiResult<Response> {
    let order =
        cancellation::order(&state.db, &state.clock, &identity.user_id, &id, if_match.0).await?;
    Ok(tagged(order.version, order))
}

/// Publish the schedule of a date range: leaders see the work and are emailed their tasks.
#[utoipa::path(post, path = "/api/schedule/publish", tag = "production", request_body = PublishBody,
    security(("bearer" = [])),
    responses((status = 200, body = Published), (status = 422, description = "Invalid range", body = Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PublishBody>,
) -> ApiResult<Json<Published>> {
    Ok(Json(schedule::publish(&state, &body).await?))
}
