//! Cognito access tokens beside IMS's own, against a real stand-in: `moto_server` on loopback
//! with user pools, groups and tokens from `initiate_auth` (`tests/support/cognito.py`). Roles
//! come only from mapped groups; tokens of another pool or client, ID tokens, expired and forged ones are
//! refused; users are provisioned by (iss, sub) and an ADMIN can revoke their tokens or disable
//! them; without the
//! provider's keys its tokens are refused while IMS's own keep working.

use std::time::Duration;

use ims::auth::roles::Role;
use serde_json::Value;

use crate::helpers::*;
use crate::moto::Moto;

const ROLE_MAP: &str = "ims-admins=ADMIN,ims-managers=MANAGER,ims-line-leaders=LINE_LEADER";

async fn status(app: &TestApp, path: &str, token: &str) -> u16 {
    app.get(path, token).await.status().as_u16()
}

#[tokio::test]
async fn cognito_tokens_work_beside_ims_tokens_with_roles_only_from_mapped_groups() {
    let moto = Moto::start().await;
    let c = moto.setup("cognito.py").await;
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    let app = spawn_app_with(&[
        ("IMS_OIDC_ISSUER", &s("issuer")),
        ("IMS_OIDC_CLIENT_ID", &s("client_id")),
        ("IMS_OIDC_JWKS_URL", &s("jwks_url")),
        ("IMS_OIDC_ROLE_MAP", ROLE_MAP),
    ])
    .await;

    let config = app.public_json("/auth/oidc/config").await;
    // The web app may reach the provider (discovery, code exchange), and nothing else.
    let page = app.client.get(app.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(
            "connect-src 'self' https://cognito-idp.eu-west-1.amazonaws.com https://*.auth.eu-west-1.amazoncognito.com"
        ),
        "{csp}"
    );
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert_eq!(config["enabled"], true);
    assert_eq!(config["client_id"], s("client_id").as_str());

    // A manager from the pool: provisioned on first use, MANAGER from the group, nothing more.
    let me: Value = app
        .get("/auth/me", &s("manager"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["roles"], serde_json::json!(["MANAGER"]), "{me}");
    assert_eq!(me["name"], "mina-manager");
    assert!(me["email"].as_str().unwrap().ends_with(".oidc.invalid"));
    assert_eq!(status(&app, "/api/lines", &s("manager")).await, 200);
    assert_eq!(status(&app, "/api/admin/users", &s("manager")).await, 403);
    assert_eq!(status(&app, "/api/my/tasks", &s("leader")).await, 200);
    assert_eq!(status(&app, "/api/lines", &s("leader")).await, 403);
    // The same person twice is one user.
    let again: Value = app
        .get("/auth/me", &s("manager"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["id"], me["id"]);

    // Groups outside the map give no role: authenticated, allowed nothing.
    for who in ["unmapped_group", "no_group"] {
        assert_eq!(status(&app, "/auth/me", &s(who)).await, 403, "{who}");
        assert_eq!(status(&app, "/api/lines", &s(who)).await, 403, "{who}");
    }
    // Another pool, another client, an ID token, a forged one: not authenticated.
    let token = s("manager");
    let (head, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let forged_body = base64_url(r#"{"sub":"x","iss":"ISS","token_use":"access","client_id":"CID","exp":9999999999,"cognito:groups":["ims-admins"]}"#
        .replace("ISS", &s("issuer")).replace("CID", &s("client_id")).as_bytes());
    let forged = format!("{head}.{forged_body}.{sig}");
    for (what, token) in [
        ("other pool", s("other_pool")),
        ("other client", s("other_client")),
        ("ID token", s("manager_id_token")),
        ("expired", s("manager_expired")),
        ("forged", forged),
    ] {
        let r = app.get("/auth/me", &token).await;
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
    }

    // An ADMIN (signed in with IMS's own token) sees the provisioned user and can disable it.
    let admin = app.login_as(&[Role::Admin]).await;
    let users: Value = app
        .get("/api/admin/users?limit=200", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    let id = me["id"].as_str().unwrap();
    assert!(users["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == id));
    // Their roles come from the provider's groups: ADMIN sees them, and cannot change them here.
    let shown = app
        .get(&format!("/api/admin/users/{id}"), &admin.access)
        .await;
    let shown: Value = shown.json().await.unwrap();
    assert_eq!(shown["roles"], serde_json::json!(["MANAGER"]), "{shown}");
    let r = app
        .patch(
            &format!("/api/admin/users/{id}"),
            &admin.access,
            &serde_json::json!({"roles": ["ADMIN"]}),
        )
        .await;
    assert_problem(r, 409, "managed_by_provider").await;

    // Revoking the sessions of a provider user cuts the tokens issued before; a token the
    // provider issues afterwards works.
    let leader: Value = app
        .get("/auth/me", &s("leader"))
        .await
        .json()
        .await
        .unwrap();
    let leader_id = leader["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/admin/users/{leader_id}/revoke-sessions"),
            &admin.access,
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    let cut = eventually(Duration::from_secs(5), || async {
        status(&app, "/auth/me", &s("leader")).await == 401
    })
    .await;
    assert!(cut, "a revoked provider token still gets in");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = moto
        .run("cognito.py", &["token", &s("client_id"), "lee-leader"], "")
        .await;
    let fresh = fresh["token"].as_str().unwrap();
    assert_eq!(status(&app, "/auth/me", fresh).await, 200);
    assert_eq!(status(&app, "/api/my/tasks", fresh).await, 200);

    let r = app
        .patch(
            &format!("/api/admin/users/{id}"),
            &admin.access,
            &serde_json::json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let refused = eventually(Duration::from_secs(5), || async {
        status(&app, "/auth/me", &s("manager")).await == 401
    })
    .await;
    assert!(refused, "a disabled provider user still gets in");
}

#[tokio::test]
async fn without_the_providers_keys_its_tokens_are_refused_and_ims_tokens_still_work() {
    let moto = Moto::start().await;
    let c = moto.setup("cognito.py").await;
    let s = |k: &str| c[k].as_str().unwrap().to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(&[
        ("IMS_OIDC_ISSUER", &s("issuer")),
        ("IMS_OIDC_CLIENT_ID", &s("client_id")),
        (
            "IMS_OIDC_JWKS_URL",
            &format!("http://127.0.0.1:{closed}/jwks.json"),
        ),
        ("IMS_OIDC_ROLE_MAP", ROLE_MAP),
    ])
    .await;
    assert_eq!(status(&app, "/auth/me", &s("manager")).await, 401);
    let own = app.login_as(&[Role::Manager]).await;
    assert_eq!(status(&app, "/auth/me", &own.access).await, 200);
    assert_eq!(status(&app, "/api/lines", &own.access).await, 200);
    // Without a provider configured, the config says so.
    let plain = spawn_app().await;
    let config: Value = plain
        .client
        .get(plain.url("/auth/oidc/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["enabled"], false);
    assert_eq!(status(&plain, "/auth/me", &s("manager")).await, 401);
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
