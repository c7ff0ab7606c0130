//! Middleware applied to every response: a request id (response header and every log line of the
//! request), the client's address (from the socket, or `X-Forwarded-For` when the peer is a
//! trusted proxy), security headers and `Cache-Control: no-store`, per-route metrics, problem
//! details for errors produced outside handlers (404, 405, 413, timeouts), and panics turned into
//! a `500` problem while the process lives on.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use tracing::Instrument;

use super::error::problem_response;
use super::extract::ClientIp;
use crate::app::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// The policy for this configuration: [`CONTENT_SECURITY_POLICY`], with the identity provider's
/// origins added to `connect-src` when one is configured (the web app reads its discovery
/// document and exchanges the authorization code there). A Cognito issuer's hosted sign-in lives
/// on the pool's domain under `auth.<region>.amazoncognito.com`.
pub fn content_security_policy(config: &crate::config::Config) -> String {
    let Some(issuer) = &config.oidc_issuer else {
        return CONTENT_SECURITY_POLICY.to_owned();
    };
    let mut origins = vec![issuer.origin().ascii_serialization()];
    if let Some(region) = issuer
        .host_str()
        .and_then(|h| h.strip_prefix("cognito-idp."))
        .and_then(|h| h.strip_suffix(".amazonaws.com"))
    {
        origins.push(format!("https://*.auth.{region}.amazoncognito.com"));
    }
    if let Some(jwks) = &config.oidc_jwks_url {
        origins.push(jwks.origin().ascii_serialization());
    }
    origins.dedup();
    CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'",
        &format!("connect-src 'self' {}", origins.join(" ")),
    )
}

/// Assigns a request id and runs the request inside a span carrying it. The outcome is logged by
/// [`run_to_completion`], so a request whose client has gone away is logged too.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(req).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Runs the rest of the request in its own task, so a client that disconnects cannot cancel a
/// handler halfway: no throttle count left behind, no transaction abandoned mid-flight (sqlx's
/// `begin` is not cancel-safe), no half-done work. The task is tracked in
/// [`Services::requests`](crate::app::Services::requests), so a graceful stop waits for it, and
/// logs the outcome when it ends, whether or not anyone is still waiting for it.
pub async fn run_to_completion(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let task = async move {
        let response = next.run(req).await;
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
        response
    };
    match state
        .requests
        .spawn(task.instrument(tracing::Span::current()))
        .await
    {
        Ok(response) => response,
        Err(_) => problem_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "An unexpected error occurred.",
        ),
    }
}

/// Resolves the client's address and stores it as [`ClientIp`].
pub async fn client_ip(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = resolve_client(peer, forwarded, &state.config.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

/// The client address: the peer, unless the peer is a trusted proxy, in which case the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn resolve_client(peer: IpAddr, forwarded: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(forwarded) = forwarded else {
        return peer;
    };
    let hops: Vec<IpAddr> = forwarded
        .split(',')
        .filter_map(|h| h.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer)
}

/// Security headers on every response; `no-store` unless the handler chose a cache policy.
pub async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        state.content_security_policy.clone(),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    if state.config.public_url.scheme() == "https" {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Records the request in the metrics, labelled by its route template.
pub async fn metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // Any token is a valid HTTP method; keep the label's values bounded.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    state.metrics.request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Gives every error response that is not already a problem (404 from routing, 405, 413 from a
/// limit, 408 from the timeout, the framework's plain-text rejections) a problem-details body, so
/// no library text reaches a client.
pub async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes()
                .starts_with(super::error::PROBLEM_JSON.as_bytes())
        });
    if status.as_u16() < 400 || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "No such resource."),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "This method is not allowed on this route.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The body is too large."),
        StatusCode::REQUEST_TIMEOUT => ("timeout", "The request took too long."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        s if s.is_server_error() => ("internal", "An unexpected error occurred."),
        _ => ("bad_request", "The request could not be handled."),
    };
    let mut problem = problem_response(status, code, detail);
    for (name, value) in response.headers() {
        if name == header::ALLOW || name == header::RETRY_AFTER {
            problem.headers_mut().insert(name.clone(), value.clone());
        }
    }
    problem
}

/// API requests (`/api/…`, `/auth/…`) while the database is marked unreachable get `503` at once;
/// a response that found it unreachable marks it so (see [`crate::db::health`]).
pub async fn fail_fast(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let guarded = path.starts_with("/api/") || path.starts_with("/auth/");
    if guarded && state.db.health().is_down() {
        return super::error::ApiError::unavailable().into_response();
    }
    let response = next.run(req).await;
    if response
        .extensions()
        .get::<super::error::DatabaseUnreachable>()
        .is_some()
    {
        state.db.health().mark_down();
    }
    response
}

/// A write under `/api/` (any method but GET, HEAD and OPTIONS), once answered, starts a new
/// generation of the leaders' task-list cache ([`crate::production::task_cache`]).
pub async fn production_writes(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let writes = req.uri().path().starts_with("/api/")
        && !matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
    let response = next.run(req).await;
    if writes {
        state.task_cache.invalidate();
    }
    response
}

/// The response for a panicking handler (used with `CatchPanicLayer`).
pub fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response<Body> {
    tracing::error!("handler panicked; answered 500 and carried on");
    let response = problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "An unexpected error occurred.",
    );
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/16".parse().unwrap()];
        let client: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.0.1.5".parse().unwrap();
        let outsider: IpAddr = "198.51.100.7".parse().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(
            resolve_client(outsider, Some("1.2.3.4"), &trusted),
            outsider
        );
        // Trusted peer: rightmost untrusted hop wins; a spoofed leftmost entry does not.
        assert_eq!(
            resolve_client(proxy, Some("6.6.6.6, 203.0.113.9"), &trusted),
            client
        );
        assert_eq!(
            resolve_client(proxy, Some("203.0.113.9, 10.0.2.2"), &trusted),
            client
        );
        assert_eq!(resolve_client(proxy, Some("garbage"), &trusted), proxy);
        assert_eq!(resolve_client(proxy, None, &trusted), proxy);
    }
}
