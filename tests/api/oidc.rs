//! Cognito access tokens beside IMS's own, against a real stand-in: `moto_server` on loopback
//! with user pools, groups and tokens from `initiate_auth` (`tests/support/cognito.py`). Roles
//! come only from mapped groups; tokens of another pool or client, ID tokens, expired and forged ones are
//! refused; users are provisioned by (iss, sub) and an ADMIN can disable them; without the
//! provider's keys its tokens are refused while IMS's own keep working.

use std::process::Stdio;
use std::time::Duration;

use ims::auth::roles::Role;
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::helpers::*;

const ROLE_MAP: &str = "ims-admins=ADMIN,ims-managers=MANAGER,ims-line-leaders=LINE_LEADER";

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    pub endpoint: String,
    _child: Child,
}

impl Moto {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port).await
    }

    /// Runs a setup script of `tests/support/` against this stand-in; returns what it printed.
    pub async fn setup(&self, script: &str) -> Value {
        let out = Command::new("python3")
            .arg(format!(
                "{}/tests/support/{script}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&self.endpoint)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap()
    }

    pub async fn start_on(port: u16) -> Self {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "moto_server runs (python3 -m pip install 'moto[server]', or run scripts/test.sh)",
            );
        let endpoint = format!("http://127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(30), || async {
            reqwest::get(format!("{endpoint}/moto-api/")).await.is_ok()
        })
        .await;
        assert!(up, "moto_server did not start");
        Self {
            endpoint,
            _child: child,
        }
    }
}

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

    let config: Value = app
        .client
        .get(app.url("/auth/oidc/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
