//! `/api/lines`, `/api/leaders`, `/api/products`, `/api/reasons`: the factory's master data, kept by MANAGER
//! (line leaders may read the reason lists they pick from). Writes answer with the new version
//! as `ETag` and honour `If-Match`.

use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::access::{route, Route, FLOOR, MANAGER};
use super::error::{ApiResult, Problem};
use super::extract::{tagged, ApiJson, ApiQuery, IfMatch};
use crate::app::AppState;
use crate::production::lines::{self, Leader, Line, LinePatch, NewLine};
use crate::production::products::{self, NewProduct, Product, ProductPatch};
use crate::production::reasons::{self, Kind, NewReason, Reason, ReasonPatch};
use crate::production::ProdError;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/api/lines", MANAGER, get(list_lines)),
        route(Method::POST, "/api/lines", MANAGER, post(create_line)),
        route(Method::GET, "/api/lines/{id}", MANAGER, get(get_line)),
        route(
            Method::PATCH,
            "/api/lines/{id}",
            MANAGER,
            patch(update_line),
        ),
        route(
            Method::PUT,
            "/api/lines/{id}/leaders",
            MANAGER,
            put(set_leaders),
        ),
        route(Method::GET, "/api/leaders", MANAGER, get(list_leaders)),
        route(Method::GET, "/api/products", MANAGER, get(list_products)),
        route(Method::POST, "/api/products", MANAGER, post(create_product)),
        route(Method::GET, "/api/products/{id}", MANAGER, get(get_product)),
        route(
            Method::PATCH,
            "/api/products/{id}",
            MANAGER,
            patch(update_product),
        ),
        route(Method::GET, "/api/reasons", FLOOR, get(list_reasons)),
        route(Method::POST, "/api/reasons", MANAGER, post(create_reason)),
        route(
            Method::PATCH,
            "/api/reasons/{id}",
            MANAGER,
            patch(update_reason),
        ),
    ]
}

fn created<T: serde::Serialize>(version: i64, body: T) -> Response {
    let mut response = tagged(version, body);
    *response.status_mut() = StatusCode::CREATED;
    response
}

/// The users a manager may make line leaders: enabled accounts holding LINE_LEADER (ADMIN
/// grants the role), by name.
#[utoipa::path(get, path = "/api/leaders", tag = "production", security(("bearer" = [])),
    responses((status = 200, body = [Leader]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_leaders(State(state): State<AppState>) -> ApiResult<Json<Vec<Leader>>> {
    Ok(Json(lines::candidates(&state.db).await?))
}

/// Every line, by code, with shifts and leaders.
#[utoipa::path(get, path = "/api/lines", tag = "production", security(("bearer" = [])),
    responses((status = 200, body = [Line]), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn list_lines(State(state): State<AppState>) -> ApiResult<Json<Vec<Line>>> {
    Ok(Json(lines::list(&state.db).await?))
}

/// Create a line.
#[utoipa::path(post, path = "/api/lines", tag = "production", request_body = NewLine,
    security(("bearer" = [])),
    responses((status = 201, body = Line), (status = 400, body = Problem),
              (status = 409, description = "Code taken", body = Problem),
              (status = 422, description = "Invalid code, name or shifts", body = Problem)))]
pub async fn create_line(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewLine>,
) -> ApiResult<Response> {
    let line = lines::create(&state.db, body).await?;
    Ok(created(line.version, line))
}

/// One line.
#[utoipa::path(get, path = "/api/lines/{id}", tag = "production", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Line), (status = 404, body = Problem)))]
pub async fn get_line(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let line = lines::get(&state.db, &id)
        .await?
        .ok_or(ProdError::NotFound)?;
    Ok(tagged(line.version, line))
}

/// Rename, change shifts, activate or deactivate a line.
#[utoipa::path(patch, path = "/api/lines/{id}", tag = "production", request_body = LinePatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Line), (status = 404, body = Problem),
              (status = 409, description = "Stale If-Match", body = Problem), (status = 422, body = Problem)))]
pub async fn update_line(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<LinePatch>,
) -> ApiResult<Response> {
    let line = lines::update(&state.db, &id, body, if_match.0).await?;
    Ok(tagged(line.version, line))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadersBody {
    /// Users holding LINE_LEADER; replaces the current list.
    pub user_ids: Vec<String>,
}

/// Set the line's leaders.
#[utoipa::path(put, path = "/api/lines/{id}/leaders", tag = "production", request_body = LeadersBody,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Line), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, description = "A user is not an enabled LINE_LEADER", body = Problem)))]
pub async fn set_leaders(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<LeadersBody>,
) -> ApiResult<Response> {
    let line = lines::set_leaders(&state.db, &id, &body.user_ids, if_match.0).await?;
    Ok(tagged(line.version, line))
}

/// Every product, by SKU.
#[utoipa::path(get, path = "/api/products", tag = "production", security(("bearer" = [])),
    responses((status = 200, body = [Product]), (status = 401, body = Problem)))]
pub async fn list_products(State(state): State<AppState>) -> ApiResult<Json<Vec<Product>>> {
    Ok(Json(products::list(&state.db).await?))
}

/// Create a product.
#[utoipa::path(post, path = "/api/products", tag = "production", request_body = NewProduct,
    security(("bearer" = [])),
    responses((status = 201, body = Product), (status = 409, description = "SKU taken", body = Problem),
              (status = 422, body = Problem)))]
pub async fn create_product(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewProduct>,
) -> ApiResult<Response> {
    let product = products::create(&state.db, body).await?;
    Ok(created(product.version, product))
}

/// One product.
#[utoipa::path(get, path = "/api/products/{id}", tag = "production", security(("bearer" = [])),
    params(("id" = String, Path)), responses((status = 200, body = Product), (status = 404, body = Problem)))]
pub async fn get_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let product = products::get(&state.db, &id)
        .await?
        .ok_or(ProdError::NotFound)?;
    Ok(tagged(product.version, product))
}

/// Rename a product or change its cycle times (scheduled work orders keep theirs).
#[utoipa::path(patch, path = "/api/products/{id}", tag = "production", request_body = ProductPatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Product), (status = 404, body = Problem), (status = 409, body = Problem),
              (status = 422, body = Problem)))]
pub async fn update_product(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<ProductPatch>,
) -> ApiResult<Response> {
    let product = products::update(&state.db, &id, body, if_match.0).await?;
    Ok(tagged(product.version, product))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReasonQuery {
    pub kind: Option<Kind>,
}

/// Downtime and scrap reasons (inactive ones included, flagged).
#[utoipa::path(get, path = "/api/reasons", tag = "production", params(ReasonQuery),
    security(("bearer" = [])), responses((status = 200, body = [Reason]), (status = 400, body = Problem)))]
pub async fn list_reasons(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ReasonQuery>,
) -> ApiResult<Json<Vec<Reason>>> {
    Ok(Json(reasons::list(&state.db, q.kind).await?))
}

/// Add a reason.
#[utoipa::path(post, path = "/api/reasons", tag = "production", request_body = NewReason,
    security(("bearer" = [])),
    responses((status = 201, body = Reason), (status = 409, description = "Code taken", body = Problem),
              (status = 422, body = Problem)))]
pub async fn create_reason(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewReason>,
) -> ApiResult<Response> {
    let reason = reasons::create(&state.db, body).await?;
    Ok(created(reason.version, reason))
}

/// Relabel, deactivate or reactivate a reason.
#[utoipa::path(patch, path = "/api/reasons/{id}", tag = "production", request_body = ReasonPatch,
    security(("bearer" = [])), params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Reason), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn update_reason(
    State(state): State<AppState>,
    Path(id): Path<String>,
    if_match: IfMatch,
    ApiJson(body): ApiJson<ReasonPatch>,
) -> ApiResult<Response> {
    let reason = reasons::update(&state.db, &id, body, if_match.0).await?;
    Ok(tagged(reason.version, reason).into_response())
}
