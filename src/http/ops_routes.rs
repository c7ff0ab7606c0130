//! Operational routes: liveness (`/healthz`), readiness (`/readyz`: the database answers),
//! Prometheus metrics (`/metrics`, only to `IMS_METRICS_ALLOW` networks, `404` to everyone else),
//! the OpenAPI document and the browsable API docs at `/docs`.

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::access::{route, Access, Route};
use super::error::{ApiError, Problem};
use super::extract::ClientIp;
use crate::app::AppState;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::GET, "/healthz", Access::Public, get(healthz)),
        route(Method::GET, "/readyz", Access::Public, get(readyz)),
        route(Method::GET, "/metrics", Access::Public, get(metrics)),
        route(
            Method::GET,
            "/api/openapi.json",
            Access::Public,
            get(openapi),
        ),
        route(Method::GET, "/docs", Access::Public, get(docs_page)),
        route(
            Method::GET,
            "/docs/docs.js",
            Access::Public,
            get(docs_script),
        ),
    ]
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: &'static str,
}

/// Liveness: the process is serving.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let ping = tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await;
    match ping {
        Ok(Ok(())) => {
            // The database answered: API requests need not fail fast any more.
            state.db.health().mark_up();
            Ok(Json(Health { status: "ok" }))
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::db::describe(&e), "readiness check failed");
            Err(ApiError::unavailable())
        }
        Err(_) => Err(ApiError::unavailable()),
    }
}

/// Prometheus metrics (trusted networks only).
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, description = "Prometheus text format", body = String),
              (status = 404, description = "Not from an allowed network", body = Problem)))]
pub async fn metrics(State(state): State<AppState>, ip: ClientIp) -> Result<Response, ApiError> {
    if !state.config.metrics_allow.iter().any(|n| n.contains(&ip.0)) {
        return Err(ApiError::not_found());
    }
    let pool = state.db.pool();
    let body = state
        .metrics
        .render(pool.size(), pool.num_idle(), state.requests.len());
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(response)
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "ops",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object)))]
pub async fn openapi() -> Response {
    let mut response = Json(super::openapi::ApiDoc::openapi()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}

/// Browsable API documentation.
#[utoipa::path(get, path = "/docs", tag = "ops",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub async fn docs_page() -> Response {
    static_asset(include_str!("docs/index.html"), "text/html; charset=utf-8")
}

/// Script of the documentation page.
#[utoipa::path(get, path = "/docs/docs.js", tag = "ops",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")))]
pub async fn docs_script() -> Response {
    static_asset(
        include_str!("docs/docs.js"),
        "text/javascript; charset=utf-8",
    )
}

fn static_asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
