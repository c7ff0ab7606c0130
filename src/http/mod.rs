//! The HTTP edge: the router built from the route table ([`access`]), the one middleware every
//! request passes ([`middleware`]), the error type ([`error`]), extractors, handlers grouped by
//! area, the OpenAPI document, and the web app ([`web`]) as the fallback.

pub mod access;
pub mod admin_routes;
pub mod auth_routes;
pub mod document_routes;
pub mod error;
pub mod extract;
pub mod in_flight;
pub mod kpi_routes;
pub mod line_routes;
pub mod mail_routes;
pub mod middleware;
pub mod openapi;
pub mod ops_routes;
pub mod order_routes;
pub mod paging;
pub mod recovery_routes;
pub mod web;
pub mod work_order_routes;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, Method};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::app::AppState;

/// JSON bodies larger than this are refused with `413`.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let cors = (!state.config.cors_origins.is_empty()).then(|| {
        let origins: Vec<HeaderValue> = state
            .config
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
            ])
            .expose_headers([middleware::REQUEST_ID, header::RETRY_AFTER, header::ETAG])
            .max_age(Duration::from_secs(600))
    });
    access::router(&state)
        .fallback(web::fallback)
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn_with_state(
                    state.clone(),
                    middleware::edge,
                ))
                .option_layer(cors)
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
        )
        .with_state(state)
}
