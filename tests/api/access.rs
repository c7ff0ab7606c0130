//! The route table walked with every identity: anonymous, ADMIN, MANAGER, LINE_LEADER and a user
//! with no role. The expected table below is the contract; a route missing from it fails the test.

use std::collections::BTreeMap;

use ims::auth::roles::Role;
use ims::http::access::{self, Access};
use serde_json::json;

use crate::helpers::*;

const PUBLIC: &[&str] = &["PUBLIC"];
const ANY: &[&str] = &["ADMIN", "MANAGER", "LINE_LEADER"];
const ADMIN: &[&str] = &["ADMIN"];
const MANAGER: &[&str] = &["MANAGER"];
const LEADER: &[&str] = &["LINE_LEADER"];
const FLOOR: &[&str] = &["MANAGER", "LINE_LEADER"];

/// (method, path) → who may call it.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    ("GET", "/healthz", PUBLIC),
    ("GET", "/readyz", PUBLIC),
    ("GET", "/metrics", PUBLIC),
    ("GET", "/api/openapi.json", PUBLIC),
    ("GET", "/docs", PUBLIC),
    ("GET", "/docs/docs.js", PUBLIC),
    ("POST", "/auth/login", PUBLIC),
    ("POST", "/auth/refresh", PUBLIC),
    ("POST", "/auth/logout", PUBLIC),
    ("GET", "/auth/me", ANY),
    ("GET", "/.well-known/jwks.json", PUBLIC),
    ("GET", "/auth/oidc/config", PUBLIC),
    ("GET", "/api/admin/users", ADMIN),
    ("POST", "/api/admin/users", ADMIN),
    ("GET", "/api/admin/users/{id}", ADMIN),
    ("PATCH", "/api/admin/users/{id}", ADMIN),
    ("POST", "/api/admin/users/{id}/revoke-sessions", ADMIN),
    ("POST", "/api/admin/users/{id}/unlock", ADMIN),
    ("GET", "/api/admin/audit", ADMIN),
    ("POST", "/auth/forgot-password", PUBLIC),
    ("POST", "/auth/send-verification", PUBLIC),
    ("POST", "/auth/verify-otp", PUBLIC),
    ("POST", "/auth/reset-password", PUBLIC),
    ("POST", "/auth/change-password", ANY),
    ("GET", "/api/admin/mail/failed", ADMIN),
    ("POST", "/api/admin/mail/{id}/retry", ADMIN),
    ("GET", "/api/lines", MANAGER),
    ("GET", "/api/leaders", MANAGER),
    ("POST", "/api/lines", MANAGER),
    ("GET", "/api/lines/{id}", MANAGER),
    ("PATCH", "/api/lines/{id}", MANAGER),
    ("PUT", "/api/lines/{id}/leaders", MANAGER),
    ("POST", "/api/lines/{id}/reports", MANAGER),
    ("GET", "/api/products", MANAGER),
    ("POST", "/api/products", MANAGER),
    ("GET", "/api/products/{id}", MANAGER),
    ("PATCH", "/api/products/{id}", MANAGER),
    ("GET", "/api/reasons", FLOOR),
    ("POST", "/api/reasons", MANAGER),
    ("PATCH", "/api/reasons/{id}", MANAGER),
    ("GET", "/api/orders", MANAGER),
    ("POST", "/api/orders", MANAGER),
    ("GET", "/api/orders/{id}", MANAGER),
    ("PATCH", "/api/orders/{id}", MANAGER),
    ("POST", "/api/orders/{id}/cancel", MANAGER),
    ("POST", "/api/schedule/publish", MANAGER),
    ("GET", "/api/work-orders", MANAGER),
    ("POST", "/api/work-orders", MANAGER),
    ("GET", "/api/work-orders/{id}", FLOOR),
    ("PATCH", "/api/work-orders/{id}", MANAGER),
    ("POST", "/api/work-orders/{id}/cancel", MANAGER),
    ("GET", "/api/work-orders/{id}/history", FLOOR),
    ("GET", "/api/my/tasks", LEADER),
    ("POST", "/api/work-orders/{id}/start", LEADER),
    ("POST", "/api/work-orders/{id}/pause", LEADER),
    ("POST", "/api/work-orders/{id}/resume", LEADER),
    ("POST", "/api/work-orders/{id}/output", LEADER),
    ("POST", "/api/work-orders/{id}/downtime", LEADER),
    ("POST", "/api/work-orders/{id}/complete", LEADER),
    ("GET", "/api/kpi/lines/{id}", MANAGER),
    ("GET", "/api/kpi/summary", MANAGER),
    ("GET", "/api/kpi/downtime-pareto", MANAGER),
    ("GET", "/api/alerts", MANAGER),
    ("POST", "/api/alerts/{id}/acknowledge", MANAGER),
    ("GET", "/api/alert-rules", MANAGER),
    ("POST", "/api/alert-rules", MANAGER),
    ("PATCH", "/api/alert-rules/{id}", MANAGER),
    ("DELETE", "/api/alert-rules/{id}", MANAGER),
    ("POST", "/api/documents", MANAGER),
    ("GET", "/api/documents", FLOOR),
    ("GET", "/api/documents/{id}", FLOOR),
    ("GET", "/api/documents/{id}/content", FLOOR),
    ("DELETE", "/api/documents/{id}", MANAGER),
];

#[tokio::test]
async fn every_route_is_declared_and_enforces_its_roles() {
    let table = access::table();
    let expected: BTreeMap<(String, String), &[&str]> = EXPECTED
        .iter()
        .map(|(m, p, r)| ((m.to_string(), p.to_string()), *r))
        .collect();
    let actual: BTreeMap<(String, String), Access> = table
        .iter()
        .map(|r| ((r.method.to_string(), r.path.to_string()), r.access))
        .collect();
    for key in actual.keys() {
        assert!(
            expected.contains_key(key),
            "route {key:?} is not in the expected table"
        );
    }
    for key in expected.keys() {
        assert!(
            actual.contains_key(key),
            "expected route {key:?} does not exist"
        );
    }

    let app = spawn_app().await;
    let (victim, _) = app.create_user(&[Role::Manager]).await;
    let (admin_id, _) = app.create_user(&[Role::Admin]).await;
    let (manager_id, _) = app.create_user(&[Role::Manager]).await;
    let (leader_id, _) = app.create_user(&[Role::LineLeader]).await;
    let (nobody_id, _) = app.create_user(&[Role::Manager]).await;
    // Tokens are minted per request (with a fresh session), so a logout or revocation in one
    // request cannot disturb the next.
    let mint = |user: &str, roles: &[Role]| {
        app.state
            .tokens
            .issue(user, roles, &uuid::Uuid::now_v7().to_string(), 1)
            .unwrap()
            .0
    };
    type Identity = Option<(String, Vec<Role>)>;
    let identities: Vec<(&str, Identity)> = vec![
        ("anonymous", None),
        ("ADMIN", Some((admin_id.clone(), vec![Role::Admin]))),
        ("MANAGER", Some((manager_id, vec![Role::Manager]))),
        ("LINE_LEADER", Some((leader_id, vec![Role::LineLeader]))),
        ("no role", Some((nobody_id, vec![]))),
    ];

    for ((method, path), allowed) in &expected {
        let concrete = path.replace("{id}", &victim);
        for (name, identity) in &identities {
            let mut req = app.client.request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                app.url(&concrete),
            );
            if method != "GET" && method != "DELETE" {
                req = req.json(&json!({}));
            }
            if let Some((user, roles)) = identity {
                req = req.bearer_auth(mint(user, roles));
            }
            let status = req.send().await.unwrap().status().as_u16();
            let public = *allowed == PUBLIC;
            let may = public || allowed.contains(name);
            let what = format!("{name} {method} {path} → {status}");
            if public {
                assert_ne!(status, 403, "{what}");
                // Public, but the body carries the credential: an empty one is 401.
                if ![
                    "/auth/logout",
                    "/auth/refresh",
                    "/auth/verify-otp",
                    "/auth/reset-password",
                ]
                .contains(&path.as_str())
                {
                    assert_ne!(status, 401, "{what}");
                }
            } else if identity.is_none() {
                assert_eq!(status, 401, "{what}");
            } else if may {
                assert!(status != 401 && status != 403, "{what}");
                assert!(status < 500, "{what}");
            } else {
                assert_eq!(status, 403, "{what}");
            }
        }
    }
}

#[tokio::test]
async fn roles_are_not_hierarchical() {
    let app = spawn_app().await;
    // An ADMIN is not a MANAGER or LINE_LEADER; MANAGER+LINE_LEADER is not an ADMIN.
    let both = app.login_as(&[Role::Manager, Role::LineLeader]).await;
    assert_problem(
        app.get("/api/admin/users", &both.access).await,
        403,
        "forbidden",
    )
    .await;
    let admin = app.login_as(&[Role::Admin]).await;
    assert_eq!(
        app.get("/api/admin/users", &admin.access).await.status(),
        200
    );
}
