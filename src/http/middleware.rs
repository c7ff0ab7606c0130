//! The edge every request passes through once, outermost ([`edge`]): a request id (response header
//! and every log line of the request), the client's address (from the socket, or
//! `X-Forwarded-For` when the peer is a trusted proxy), `503` at once while the database is known
//! to be down, the request timeout, panics turned into a `500` problem while the process lives
//! on, problem details for errors produced outside handlers (404, 405, 413, timeouts), per-route
//! metrics, security headers and `Cache-Control: no-store`. It is one middleware rather than a
//! stack of them because every layer costs an allocation and a move of the request on every
//! call, and this path is the floor under every figure in `bench/README.md`.

use std::any::Any;
use std::net::{IpAddr, SocketAddr};
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use ipnet::IpNet;
use tracing::Instrument;

use super::error::{problem_response, ApiError, DatabaseUnreachable};
use super::extract::ClientIp;
use super::REQUEST_TIMEOUT;
use crate::app::AppState;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

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

/// Every request, outermost, once. A write runs in a task of its own, so a client that
/// disconnects cannot cancel it halfway: no throttle count left behind, no transaction abandoned
/// mid-flight (sqlx's `begin` is not cancel-safe), no half-done work. The task is tracked in
/// [`Services::requests`](crate::app::Services::requests), so a graceful stop waits for it, and
/// does the bookkeeping too, so a write whose client has gone away is still counted, logged and
/// still invalidates the task-list cache. A safe method (`GET`, `HEAD`, `OPTIONS`) writes nothing
/// and runs inline, which saves a task per read; should its client go away, it is logged and
/// counted as `499`. (The one read that can write, a first request with an identity provider's
/// token, provisions the user in a task of its own: see [`super::access`].)
pub async fn edge(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
    );
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let ip = resolve_client(peer, forwarded, &state.config.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    let call = Call::of(&req);
    if call.safe {
        let _counted = state.requests.enter();
        return answer(state, call, req, next, id).instrument(span).await;
    }
    let task = answer(state.clone(), call, req, next, id).instrument(span.clone());
    match state.requests.spawn(task).await {
        Ok(response) => response,
        // The bookkeeping after the handler panicked (the handler's own panics are caught in
        // `handled`): the write may have happened, so this is no invitation to retry.
        Err(e) => {
            span.in_scope(|| tracing::error!(error = %e, "request task failed"));
            let mut response = problem_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "An unexpected error occurred.",
            );
            decorate(&state, response.headers_mut(), id);
            response
        }
    }
}

/// The request's answer, with its bookkeeping: fail fast while the database is down, the
/// handler, the cache and database-health side effects, metrics, the problem body of a bare
/// error, the headers every response carries, and the log line.
async fn answer(state: AppState, call: Call, req: Request, next: Next, id: uuid::Uuid) -> Response {
    let mut watch = Abandoned {
        state: &state,
        call: &call,
        started: Instant::now(),
        answered: false,
    };
    let response = if call.api && state.db.health().is_down() {
        ApiError::unavailable().into_response()
    } else {
        let response = handled(req, next).await;
        if call.writes {
            state.task_cache.invalidate();
        }
        response
    };
    watch.answered = true;
    if response.extensions().get::<DatabaseUnreachable>().is_some() {
        state.db.health().mark_down();
    }
    let status = response.status().as_u16();
    let seconds = watch.started.elapsed().as_secs_f64();
    state
        .metrics
        .request(call.method, call.route, status, seconds);
    let mut response = problem_for_bare_error(response);
    decorate(&state, response.headers_mut(), id);
    tracing::info!(status, latency_ms = seconds * 1000.0, "request finished");
    response
}

/// Logs and counts, as `499`, a request dropped before it was answered: a read whose client went
/// away (or, at shutdown, anything).
struct Abandoned<'a> {
    state: &'a AppState,
    call: &'a Call,
    started: Instant,
    answered: bool,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        self.state
            .metrics
            .request(self.call.method, self.call.route, 499, seconds);
        tracing::info!(
            status = 499,
            latency_ms = seconds * 1000.0,
            "request abandoned: the client went away before the answer"
        );
    }
}

/// Runs the handler: one that outlives [`REQUEST_TIMEOUT`] is dropped and answered `408`; one
/// that panics is answered `500` and serving goes on.
async fn handled(req: Request, next: Next) -> Response {
    let run = AssertUnwindSafe(next.run(req)).catch_unwind();
    match tokio::time::timeout(REQUEST_TIMEOUT, run).await {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => panic_response(panic),
        Err(_) => problem_response(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "The request took too long.",
        ),
    }
}

/// What the edge needs to know of a request once its body has gone to the handler.
struct Call {
    /// The metrics label: any token is a valid HTTP method, so the values are kept bounded.
    method: &'static str,
    /// The matched route template, or `unmatched`.
    route: &'static str,
    /// `GET`, `HEAD` or `OPTIONS`: writes nothing, so it may run inline.
    safe: bool,
    /// Under `/api/` or `/auth/`: refused at once while the database is down.
    api: bool,
    /// A write under `/api/`: answering it starts a new generation of the leaders' task-list
    /// cache ([`crate::production::task_cache`]).
    writes: bool,
}

impl Call {
    fn of(req: &Request) -> Self {
        let method = match *req.method() {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "OTHER",
        };
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .and_then(|p| super::access::template(p.as_str()))
            .unwrap_or("unmatched");
        let path = req.uri().path();
        let under_api = path.starts_with("/api/");
        let safe = matches!(method, "GET" | "HEAD" | "OPTIONS");
        Self {
            method,
            route,
            safe,
            api: under_api || path.starts_with("/auth/"),
            writes: under_api && !safe,
        }
    }
}

/// The request id, the security headers, and `no-store` unless the handler chose a cache policy.
fn decorate(state: &AppState, h: &mut HeaderMap, id: uuid::Uuid) {
    h.reserve(9);
    let mut buf = uuid::Uuid::encode_buffer();
    if let Ok(value) = HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)) {
        h.insert(REQUEST_ID, value);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        state.content_security_policy.clone(),
    );
    h.insert(
        CROSS_ORIGIN_OPENER_POLICY,
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

/// Gives an error response that is not already a problem (404 from routing, 405, 413 from a
/// limit, the framework's plain-text rejections) a problem-details body, so no library text
/// reaches a client.
fn problem_for_bare_error(response: Response) -> Response {
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

/// The response for a panicking handler: a `500` problem, nothing of the panic's message.
pub fn panic_response(_payload: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked; answered 500 and carried on");
    problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "An unexpected error occurred.",
    )
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
