//! The HTTP edge as a client sees it: security headers on every kind of response, problem details
//! for every kind of bad input (never a 500, never an internal detail or an echoed value), CORS
//! closed by default, `/metrics` for trusted networks only, health and readiness (including a
//! database outage and recovery on PostgreSQL), the OpenAPI document against the route table, a
//! panicking handler answered with a 500 problem, and a read whose client went away counted.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ims::auth::roles::Role;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;

use crate::helpers::*;

/// Words that would mean internals reached the client.
const LEAKS: &[&str] = &[
    "sqlx",
    "SELECT",
    "panicked",
    "/work/",
    "src/",
    "backtrace",
    "RUST_",
];

fn assert_no_leak(body: &str) {
    for word in LEAKS {
        assert!(
            !body.to_lowercase().contains(&word.to_lowercase()),
            "body leaks {word:?}: {body}"
        );
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().expect("ASCII header"))
}

/// The headers every response carries; returns the request id.
fn assert_security_headers(what: &str, headers: &HeaderMap) -> String {
    assert_eq!(
        header(headers, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(header(headers, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(headers, "referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    let csp = header(headers, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    assert!(csp.contains("default-src"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    let id = header(headers, "x-request-id")
        .unwrap_or_else(|| panic!("{what}: no x-request-id"))
        .to_owned();
    assert!(!id.is_empty(), "{what}");
    id
}

/// Asserts the problem (status, code, content type), that it leaks nothing, and returns the body.
async fn problem(what: &str, response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{what}: status");
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/problem+json"),
        "{what}: content type"
    );
    let text = response.text().await.unwrap();
    assert_no_leak(&text);
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{what}: {text}"));
    assert_eq!(body["code"], code, "{what}: {body}");
    assert_eq!(body["status"], status, "{what}: {body}");
    assert_eq!(body["type"], format!("urn:ims:problem:{code}"), "{what}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{what}"
    );
    body
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// 1. Security headers
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let c = &app.client;
    let cases: Vec<(&str, reqwest::Response, u16)> = vec![
        (
            "GET /healthz",
            c.get(app.url("/healthz")).send().await.unwrap(),
            200,
        ),
        (
            "GET /auth/me without a token",
            c.get(app.url("/auth/me")).send().await.unwrap(),
            401,
        ),
        (
            "GET /api/admin/users without a token",
            c.get(app.url("/api/admin/users")).send().await.unwrap(),
            401,
        ),
        (
            "GET unknown path",
            c.get(app.url("/api/no/such/path")).send().await.unwrap(),
            404,
        ),
        (
            "DELETE /auth/login",
            c.delete(app.url("/auth/login")).send().await.unwrap(),
            405,
        ),
        (
            "POST /auth/login with a malformed body",
            post_raw(&app, "/auth/login", Some("application/json"), "{\"email\":").await,
            400,
        ),
        (
            "GET /docs",
            c.get(app.url("/docs")).send().await.unwrap(),
            200,
        ),
        (
            "GET /.well-known/jwks.json",
            c.get(app.url("/.well-known/jwks.json"))
                .send()
                .await
                .unwrap(),
            200,
        ),
        (
            "GET /api/openapi.json",
            c.get(app.url("/api/openapi.json")).send().await.unwrap(),
            200,
        ),
    ];
    let mut ids = std::collections::HashSet::new();
    for (what, response, status) in cases {
        assert_eq!(response.status().as_u16(), status, "{what}");
        let id = assert_security_headers(what, response.headers());
        assert!(ids.insert(id.clone()), "{what}: request id {id} reused");
        if what.contains(" /auth/") || what.contains(" /api/admin/") {
            assert_eq!(
                header(response.headers(), "cache-control"),
                Some("no-store"),
                "{what}"
            );
        }
    }

    // Two identical requests get different ids.
    let a = c.get(app.url("/healthz")).send().await.unwrap();
    let b = c.get(app.url("/healthz")).send().await.unwrap();
    assert_ne!(
        assert_security_headers("healthz a", a.headers()),
        assert_security_headers("healthz b", b.headers())
    );

    // Successful auth and API responses are not cacheable either.
    let (_, email) = app.create_user(&[Role::Admin]).await;
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status(), 200);
    assert_security_headers("login", login.headers());
    assert_eq!(header(login.headers(), "cache-control"), Some("no-store"));
    let body: Value = login.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    for path in ["/auth/me", "/api/admin/users", "/api/admin/audit"] {
        let response = app.get(path, token).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(path, response.headers());
        assert_eq!(
            header(response.headers(), "cache-control"),
            Some("no-store"),
            "{path}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Problem details for bad input
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn malformed_bodies_are_400_problems() {
    let app = spawn_app().await;
    let json_ct = Some("application/json");
    for (what, body, code) in [
        ("truncated JSON", "{\"email\":", "malformed_body"),
        (
            "not JSON at all",
            "email=a@b.co&password=x",
            "malformed_body",
        ),
        (
            "trailing garbage",
            "{\"email\":\"a@b.co\",\"password\":\"x\"} x",
            "malformed_body",
        ),
        (
            "email is a number",
            "{\"email\":5,\"password\":\"x\"}",
            "invalid_body",
        ),
        (
            "password is null",
            "{\"email\":\"a@b.co\",\"password\":null}",
            "invalid_body",
        ),
        ("password missing", "{\"email\":\"a@b.co\"}", "invalid_body"),
        ("an empty array", "[]", "invalid_body"),
        ("a string", "\"a@b.co\"", "invalid_body"),
        (
            "unknown field",
            "{\"email\":\"a@b.co\",\"password\":\"x\",\"roles\":[\"ADMIN\"]}",
            "invalid_body",
        ),
    ] {
        let response = post_raw(&app, "/auth/login", json_ct, body).await;
        assert_security_headers(what, response.headers());
        problem(what, response, 400, code).await;
    }
    // An empty body with a JSON content type is malformed too.
    let response = post_raw(&app, "/auth/login", json_ct, "").await;
    problem("empty body", response, 400, "malformed_body").await;
}

#[tokio::test]
async fn unknown_fields_cannot_set_what_a_route_does_not_take() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (target, target_email) = app.create_user(&[Role::LineLeader]).await;
    let path = format!("/api/admin/users/{target}");
    for body in [
        json!({ "id": uuid::Uuid::new_v4().to_string() }),
        json!({ "email": "other@factory.example" }),
        json!({ "name": "Renamed", "email_verified": true }),
        json!({ "name": "Renamed", "password_hash": "x" }),
    ] {
        let response = app.patch(&path, &admin.access, &body).await;
        problem(&format!("PATCH {body}"), response, 400, "invalid_body").await;
    }
    for body in [
        json!({ "disabled": "yes" }),
        json!({ "roles": "ADMIN" }),
        json!({ "name": 7 }),
    ] {
        let response = app.patch(&path, &admin.access, &body).await;
        problem(&format!("PATCH {body}"), response, 400, "invalid_body").await;
    }
    // Nothing changed.
    let user: Value = app.get(&path, &admin.access).await.json().await.unwrap();
    assert_eq!(user["id"], target);
    assert_eq!(user["email"], target_email);
    assert_eq!(user["roles"], json!(["LINE_LEADER"]));
    assert_eq!(user["disabled"], false);

    let create = json!({
        "email": "new-user@factory.example",
        "name": "New User",
        "roles": ["MANAGER"],
        "password": PASSWORD,
        "email_verified": true,
    });
    let response = app.post("/api/admin/users", &admin.access, &create).await;
    problem("POST with email_verified", response, 400, "invalid_body").await;
    let mut with_id = create.clone();
    with_id.as_object_mut().unwrap().remove("email_verified");
    with_id["id"] = json!(uuid::Uuid::new_v4().to_string());
    let response = app.post("/api/admin/users", &admin.access, &with_id).await;
    problem("POST with id", response, 400, "invalid_body").await;
    // No user was created by either attempt.
    let response = app.login(create["email"].as_str().unwrap(), PASSWORD).await;
    problem(
        "login of the refused user",
        response,
        401,
        "invalid_credentials",
    )
    .await;
}

#[tokio::test]
async fn wrong_content_types_are_415_problems() {
    let app = spawn_app().await;
    let body = "{\"email\":\"a@b.co\",\"password\":\"x\"}";
    for (what, ct) in [
        ("no content type", None),
        ("text/plain", Some("text/plain")),
        ("form", Some("application/x-www-form-urlencoded")),
    ] {
        let response = post_raw(&app, "/auth/login", ct, body).await;
        assert_security_headers(what, response.headers());
        problem(what, response, 415, "unsupported_media_type").await;
    }
    // The same on an authenticated JSON route.
    let admin = app.login_as(&[Role::Admin]).await;
    let response = app
        .client
        .post(app.url("/api/admin/users"))
        .bearer_auth(&admin.access)
        .header("content-type", "text/plain")
        .body("{\"email\":\"x@factory.example\",\"name\":\"X\",\"roles\":[\"MANAGER\"]}")
        .send()
        .await
        .unwrap();
    problem(
        "admin create as text/plain",
        response,
        415,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_problems() {
    let app = spawn_app().await;
    let big = format!(
        "{{\"email\":\"a@b.co\",\"password\":\"{}\"}}",
        "x".repeat(65 * 1024)
    );
    let response = post_raw(&app, "/auth/login", Some("application/json"), big.clone()).await;
    assert_security_headers("413", response.headers());
    problem("login 65 KiB", response, 413, "payload_too_large").await;

    let admin = app.login_as(&[Role::Admin]).await;
    let response = app
        .client
        .post(app.url("/api/admin/users"))
        .bearer_auth(&admin.access)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem("admin create 65 KiB", response, 413, "payload_too_large").await;

    // Just under the limit is read (and refused for what it says, not for its size).
    let under = format!(
        "{{\"email\":\"a@b.co\",\"password\":\"{}\"}}",
        "x".repeat(60 * 1024)
    );
    let response = post_raw(&app, "/auth/login", Some("application/json"), under).await;
    let status = response.status().as_u16();
    assert!(status == 400 || status == 401, "under the limit: {status}");
    assert_ne!(status, 413);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems() {
    let app = spawn_app().await;
    for path in [
        "/api/v2/nope",
        "/api/nope",
        "/auth/nope",
        "/api/admin/users/00000000-0000-0000-0000-000000000000/nope",
        "/.env",
        "/src/main.rs",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_security_headers(path, response.headers());
        problem(path, response, 404, "not_found").await;
    }

    for (method, path, allowed) in [
        (Method::DELETE, "/auth/login", "POST"),
        (Method::GET, "/auth/login", "POST"),
        (Method::PUT, "/healthz", "GET"),
        (Method::POST, "/.well-known/jwks.json", "GET"),
    ] {
        let what = format!("{method} {path}");
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_security_headers(&what, response.headers());
        if let Some(allow) = header(response.headers(), "allow") {
            assert!(allow.contains(allowed), "{what}: Allow: {allow}");
            assert!(!allow.contains(method.as_str()), "{what}: Allow: {allow}");
        }
        problem(&what, response, 405, "method_not_allowed").await;
    }
}

#[tokio::test]
async fn bad_queries_and_ids_are_client_errors_for_an_admin() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    for query in [
        "limit=abc",
        "limit=0",
        "limit=-1",
        "limit=100000",
        "limit=99999999999999999999999",
        "limit=1.5",
        "unknown=1",
    ] {
        let path = format!("/api/admin/users?{query}");
        problem(
            &path,
            app.get(&path, &admin.access).await,
            400,
            "invalid_query",
        )
        .await;
    }
    for cursor in ["%%%", "!!!", "%ZZ", "Zm9v%00"] {
        let path = format!("/api/admin/users?cursor={cursor}");
        let response = app.get(&path, &admin.access).await;
        assert_eq!(response.status(), 400, "{path}");
        let code = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(code.as_deref(), Some("application/problem+json"), "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["code"] == "invalid_cursor" || body["code"] == "invalid_query",
            "{path}: {body}"
        );
        assert_no_leak(&body.to_string());
    }
    // Valid pages still work.
    let response = app.get("/api/admin/users?limit=1", &admin.access).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);

    for query in [
        "since=yesterday",
        "since=2024-13-45T99:00:00Z",
        "limit=0",
        "limit=abc",
        "bogus=1",
    ] {
        let path = format!("/api/admin/audit?{query}");
        problem(
            &path,
            app.get(&path, &admin.access).await,
            400,
            "invalid_query",
        )
        .await;
    }
    let response = app
        .get("/api/admin/audit?since=2000-01-01T00:00:00Z", &admin.access)
        .await;
    assert_eq!(response.status(), 200);

    for id in [
        "not-a-uuid",
        "1",
        "00000000-0000-0000-0000-00000000000g",
        "%27%20OR%201%3D1--",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        let path = format!("/api/admin/users/{id}");
        problem(&path, app.get(&path, &admin.access).await, 404, "not_found").await;
        let response = app
            .patch(&path, &admin.access, &json!({"name": "X Y"}))
            .await;
        problem(&format!("PATCH {path}"), response, 404, "not_found").await;
        let response = app
            .post(
                &format!("{path}/revoke-sessions"),
                &admin.access,
                &json!({}),
            )
            .await;
        problem(
            &format!("{path}/revoke-sessions"),
            response,
            404,
            "not_found",
        )
        .await;
    }
    // A well-formed id of nobody is 404 as well.
    let nobody = format!("/api/admin/users/{}", uuid::Uuid::new_v4());
    problem(
        &nobody,
        app.get(&nobody, &admin.access).await,
        404,
        "not_found",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Submitted values are never echoed
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn error_bodies_never_echo_submitted_values() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (target, _) = app.create_user(&[Role::Manager]).await;

    let login_bodies = [
        json!({ "email": 5, "password": "CanaryValue-123456" }),
        json!({ "email": "a@b.co", "password": "x", "disabled": "CanaryValue-abc" }),
        json!({ "email": "a@b.co", "password": ["CanaryValue-arr"] }),
        json!({ "email": "CanaryValue@b.co", "password": 12 }),
    ];
    for body in &login_bodies {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("CanaryValue"), "echoed: {text}");
        assert_no_leak(&text);
    }

    let path = format!("/api/admin/users/{target}");
    let patch_bodies = [
        // serde quotes a string where a boolean belongs.
        json!({ "disabled": "CanaryValue-bool" }),
        json!({ "name": ["CanaryValue-name"] }),
        json!({ "roles": [1, "CanaryValue-role"] }),
    ];
    for body in &patch_bodies {
        let response = app.patch(&path, &admin.access, body).await;
        assert_eq!(response.status(), 400, "{body}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("CanaryValue"), "echoed for {body}: {text}");
        assert_no_leak(&text);
    }

    // Rule violations (422) do not echo either.
    let response = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({
                "email": "canary-user@factory.example",
                "name": "Canary User",
                "roles": ["MANAGER"],
                "password": "CanaryValue",
            }),
        )
        .await;
    assert_eq!(response.status(), 422);
    let text = response.text().await.unwrap();
    assert!(!text.contains("CanaryValue"), "echoed: {text}");
}

/// Values serde would quote (with escaped quotes inside, or in backticks) are never echoed.
#[tokio::test]
async fn values_with_quotes_and_unknown_role_names_are_not_echoed() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (target, _) = app.create_user(&[Role::Manager]).await;
    let path = format!("/api/admin/users/{target}");
    for body in [
        json!({ "disabled": "a\"CanaryValue-quoted\"b" }),
        json!({ "roles": ["CanaryValue-role"] }),
        json!({ "roles": ["MANAGER", "x`CanaryValue-tick`y"] }),
    ] {
        let response = app.patch(&path, &admin.access, &body).await;
        let status = response.status().as_u16();
        assert!(status == 400 || status == 422, "{body}: {status}");
        let text = response.text().await.unwrap();
        assert!(!text.contains("CanaryValue"), "echoed for {body}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. CORS
// ---------------------------------------------------------------------------------------------

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, app.url("/auth/login"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_closed_by_default() {
    let app = spawn_app().await;
    let response = preflight(&app, "https://evil.example").await;
    assert!(response.status().as_u16() < 500, "{}", response.status());
    assert_security_headers("preflight", response.headers());
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    for path in ["/healthz", "/auth/me", "/.well-known/jwks.json"] {
        let response = app
            .client
            .get(app.url(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{path}"
        );
    }
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": "a@b.co", "password": "x"}))
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = spawn_app_with(&[("IMS_CORS_ORIGINS", "https://app.factory.example")]).await;
    let response = preflight(&app, "https://app.factory.example").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some("https://app.factory.example")
    );
    let methods = header(response.headers(), "access-control-allow-methods")
        .unwrap_or_default()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    assert_security_headers("allowed preflight", response.headers());

    for origin in [
        "https://evil.example",
        "https://app.factory.example.evil.example",
        "http://app.factory.example",
        "null",
    ] {
        let response = preflight(&app, origin).await;
        assert!(response.status().as_u16() < 500, "{origin}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin}"
        );
    }

    // Simple requests: the allowed origin is named, others get nothing.
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://app.factory.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        Some("https://app.factory.example")
    );
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

// ---------------------------------------------------------------------------------------------
// 5. Metrics
// ---------------------------------------------------------------------------------------------

fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_are_served_to_loopback_with_samples() {
    let app = spawn_app().await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let session = app.login_ok(&email).await;
    let failed = app.login(&email, "Wrong-Password-123456!").await;
    assert_eq!(failed.status(), 401);
    let bad_token = app.get("/auth/me", "not.a.jwt").await;
    assert_eq!(bad_token.status(), 401);
    // Refresh once, then present the rotated token again: reuse.
    let rotated = app.refresh(&session.refresh).await;
    assert_eq!(rotated.status(), 200);
    let reuse = app.refresh(&session.refresh).await;
    assert_eq!(reuse.status(), 401);
    // An unmatched path must not become a label.
    let unknown = app
        .client
        .get(app.url("/api/probe-9f3c2e7a"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_security_headers("/metrics", response.headers());
    let ct = header(response.headers(), "content-type")
        .unwrap_or_default()
        .to_owned();
    assert!(
        ct.starts_with("text/plain") || ct.starts_with("application/openmetrics-text"),
        "{ct}"
    );
    let text = response.text().await.unwrap();
    for family in [
        "ims_http_requests",
        "ims_http_request_duration_seconds",
        "ims_logins",
        "ims_refresh_token_reuse",
        "ims_token_verification_failures",
        "ims_db_pool_connections",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "family {family} missing:\n{text}"
        );
    }
    assert_eq!(
        sample_value(&text, "ims_logins_total{outcome=\"failed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample_value(&text, "ims_logins_total{outcome=\"ok\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample_value(&text, "ims_refresh_token_reuse_total"),
        Some(1.0),
        "{text}"
    );
    let rejections: f64 = text
        .lines()
        .filter(|l| l.starts_with("ims_token_verification_failures_total{reason=\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rejections, 1.0, "{text}");
    let pool = sample_value(&text, "ims_db_pool_connections").expect("pool gauge sample");
    assert!(pool >= 1.0, "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("ims_http_requests_total{")
                && l.contains("method=\"POST\"")
                && l.contains("route=\"/auth/login\"")
                && l.contains("status=\"401\"")
                && l.ends_with(" 1")),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("ims_http_request_duration_seconds_count{")
                && l.contains("route=\"/auth/login\"")
                && l.ends_with(" 2")
        ),
        "{text}"
    );
    assert!(
        text.contains("route=\"unmatched\""),
        "unmatched routes are grouped:\n{text}"
    );
    assert!(!text.contains("probe-9f3c2e7a"), "raw path used as a label");
    // No secret or token material in the metrics.
    assert!(!text.contains(&session.refresh) && !text.contains(&session.access));
}

#[tokio::test]
async fn metrics_are_hidden_outside_the_allowed_networks() {
    let app = spawn_app_with(&[("IMS_METRICS_ALLOW", "10.0.0.0/8")]).await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_security_headers("/metrics refused", response.headers());
    let body = problem("/metrics from loopback", response, 404, "not_found").await;
    assert!(!body.to_string().contains("ims_"));
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let response = app
        .client
        .get(app.url("/metrics"))
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    problem("/metrics with forged XFF", response, 404, "not_found").await;
}

// ---------------------------------------------------------------------------------------------
// 6. Health, readiness, database outage
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_security_headers(path, response.headers());
        assert!(header(response.headers(), "content-type")
            .unwrap_or_default()
            .starts_with("application/json"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "ok"}), "{path}");
    }
}

/// A TCP proxy that can be cut (listener closed, every connection dropped) and restored on the
/// same port, to simulate a database outage without touching the database server.
struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut proxy = Self {
            addr,
            target,
            accept: None,
            conns: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let conns = self.conns.clone();
        let target = self.target;
        self.accept = Some(tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                });
                conns.lock().unwrap().push(task);
            }
        }));
    }

    /// Closes the listening socket and every proxied connection, and waits until they are gone.
    async fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let conns: Vec<JoinHandle<()>> = std::mem::take(&mut *self.conns.lock().unwrap());
        for conn in conns {
            conn.abort();
            let _ = conn.await;
        }
    }

    /// Listens again on the same port.
    async fn restart(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let listener = loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(self.addr).and_then(|()| socket.listen(128)) {
                Ok(listener) => break listener,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("proxy rebind on {}: {e}; retrying", self.addr);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot listen again on {}: {e}", self.addr),
            }
        };
        self.serve(listener);
    }
}

#[tokio::test]
async fn database_outage_is_503_and_recovers_without_restart() {
    if !is_postgres() {
        eprintln!("database outage test runs on PostgreSQL only (IMS_TEST_BACKEND=postgres)");
        return;
    }
    let db = TestDb::new().await;
    let mut url = url::Url::parse(&db.url).unwrap();
    let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
    let port = url.port().unwrap_or(5432);
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .unwrap()
        .next()
        .expect("database address");
    let mut proxy = Proxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let proxied = url.to_string();
    let app = spawn_on(db, &[("IMS_DATABASE_URL", &proxied)]).await;

    let (_, email) = app.create_user(&[Role::Manager]).await;
    let session = app.login_ok(&email).await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    // Outage.
    proxy.stop().await;

    let response = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert!(
        header(response.headers(), "retry-after").is_some(),
        "readyz 503 without Retry-After"
    );
    assert_security_headers("readyz down", response.headers());
    problem("readyz during outage", response, 503, "unavailable").await;

    // Liveness does not depend on the database.
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);

    let response = app.login(&email, PASSWORD).await;
    assert!(header(response.headers(), "retry-after").is_some());
    problem("login during outage", response, 503, "unavailable").await;

    let response = app.refresh(&session.refresh).await;
    problem("refresh during outage", response, 503, "unavailable").await;

    let response = app.get("/auth/me", &session.access).await;
    let status = response.status().as_u16();
    assert!(
        status == 200 || status == 503,
        "/auth/me during outage: {status}"
    );
    assert_no_leak(&response.text().await.unwrap());

    // The database comes back: IMS recovers on its own.
    proxy.restart().await;
    let recovered = app.ready_within(Duration::from_secs(10)).await;
    assert!(recovered, "readyz did not return to 200 within 10 s");
    let again = app.login_ok(&email).await;
    assert_eq!(app.get("/auth/me", &again.access).await.status(), 200);
    // The refresh attempted during the outage did not use the token up.
    assert_eq!(app.refresh(&session.refresh).await.status(), 200);

    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 7. OpenAPI and docs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn openapi_documents_every_route_in_the_table() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(response.headers(), "content-type")
        .unwrap_or_default()
        .starts_with("application/json"));
    let doc: Value = response.json().await.unwrap();
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string());
    let paths = doc["paths"].as_object().expect("paths");

    let table = ims::http::access::table();
    assert!(!table.is_empty());
    let mut missing = Vec::new();
    for route in &table {
        let method = route.method.as_str().to_lowercase();
        if paths.get(route.path).and_then(|p| p.get(&method)).is_none() {
            missing.push(format!("{} {}", route.method, route.path));
        }
    }
    assert!(missing.is_empty(), "undocumented routes: {missing:?}");
    // And the document describes nothing that is not served.
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            assert!(
                table
                    .iter()
                    .any(|r| r.path == path && r.method.as_str().eq_ignore_ascii_case(method)),
                "documented but not routed: {method} {path}"
            );
        }
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"].is_object(),
        "bearer scheme"
    );
    assert!(!doc.to_string().contains("/work/"));
}

#[tokio::test]
async fn docs_page_and_script_are_served_with_their_types() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_security_headers("/docs", page.headers());
    assert!(header(page.headers(), "content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.to_lowercase().contains("<html"));
    // The CSP forbids inline scripts, so every script must be external.
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(
            open.contains("src="),
            "inline script in /docs: <script{open}>"
        );
    }
    assert!(html.contains("/docs/docs.js"));

    let script = app
        .client
        .get(app.url("/docs/docs.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert_security_headers("/docs/docs.js", script.headers());
    let ct = header(script.headers(), "content-type")
        .unwrap_or_default()
        .to_owned();
    assert!(ct.contains("javascript"), "{ct}");
    assert!(!script.text().await.unwrap().trim().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 8. Panics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_panicking_handler_becomes_a_500_problem_and_serving_continues() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    let app = spawn_app().await;
    // The real edge around handlers that panic, on a read (inline) and on a write (own task).
    let boom = || async {
        if true {
            panic!("boom at src/secret.rs: SELECT password FROM users");
        }
        "unreachable"
    };
    let router = axum::Router::new()
        .route("/boom", get(boom).post(boom))
        .route("/fine", get(|| async { "fine" }))
        .layer(axum::middleware::from_fn_with_state(
            app.state.clone(),
            ims::http::middleware::edge,
        ));

    for (round, method) in ["GET", "POST", "GET"].into_iter().enumerate() {
        let request = Request::builder()
            .method(method)
            .uri("/boom")
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::INTERNAL_SERVER_ERROR,
            "round {round}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "round {round}"
        );
        assert!(
            response.headers().contains_key("x-request-id")
                && response.headers().contains_key("content-security-policy"),
            "round {round}: a panic's answer carries the edge's headers"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(!text.contains("boom"), "{text}");
        assert_no_leak(&text);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["status"], 500);
        assert_eq!(body["code"], "internal");
        assert_eq!(body["type"], "urn:ims:problem:internal");

        let fine = router
            .clone()
            .oneshot(Request::get("/fine").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(fine.status(), StatusCode::OK, "round {round}");
    }
}

#[tokio::test]
async fn a_read_whose_client_goes_away_is_counted_as_499() {
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;

    let app = spawn_app().await;
    let router = axum::Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/quick", get(|| async { "quick" }))
        .layer(axum::middleware::from_fn_with_state(
            app.state.clone(),
            ims::http::middleware::edge,
        ));
    let metrics = || {
        app.state
            .metrics
            .render(0, 0, 0)
            .lines()
            .filter(|l| l.starts_with("ims_http_requests_total{") && l.contains("status=\"499\""))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert!(metrics().is_empty(), "{:?}", metrics());
    let running = app.state.requests.len();
    // The client gives up: the request's future is dropped mid-handler.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(200),
        router
            .clone()
            .oneshot(Request::get("/slow").body(Body::empty()).unwrap()),
    )
    .await;
    assert!(gave_up.is_err(), "the handler is still sleeping");
    // A read that is answered is not a 499.
    let quick = router
        .oneshot(Request::get("/quick").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(quick.status(), 200);
    assert_eq!(
        metrics(),
        vec![
            "ims_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"499\"} 1"
                .to_owned()
        ]
    );
    assert_eq!(
        app.state.requests.len(),
        running,
        "both reads were counted as running only while they ran"
    );
}
