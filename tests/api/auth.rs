//! Login, tokens, refresh rotation and reuse detection, logout, throttling.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ims::auth::roles::Role;
use serde_json::{json, Value};

use crate::helpers::*;

fn jwt_part(token: &str, i: usize) -> Value {
    let part = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test]
async fn login_returns_tokens_a_cookie_and_the_user() {
    let app = spawn_app().await;
    let (id, email) = app.create_user(&[Role::Manager, Role::LineLeader]).await;
    let response = app.login(&email, PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("ims_refresh=imsr_"), "{cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/auth"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain-HTTP loopback gets no Secure flag"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(
        body["user"],
        json!({"id": id, "email": email, "name": body["user"]["name"], "roles": ["MANAGER", "LINE_LEADER"], "email_verified": true})
    );
    let refresh = body["refresh_token"].as_str().unwrap();
    assert!(refresh.len() >= 43 + 5, "256-bit refresh token");
    assert!(cookie.contains(refresh));

    let access = body["access_token"].as_str().unwrap();
    let header = jwt_part(access, 0);
    assert_eq!(header["alg"], "EdDSA");
    let claims = jwt_part(access, 1);
    assert!(header["kid"].is_string());
    for claim in ["iss", "aud", "sub", "jti"] {
        assert!(claims[claim].is_string(), "{claim}");
    }
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["aud"], "ims");
    assert_eq!(claims["roles"], json!(["MANAGER", "LINE_LEADER"]));
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );

    // The token verifies with the published JWKS key.
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key published");
    assert_eq!(key["kty"], "OKP");
    assert!(key.get("d").is_none(), "no private part in the JWKS");
    let decoding =
        jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["ims"]);
    jsonwebtoken::decode::<Value>(access, &decoding, &validation).expect("verifies with JWKS");

    let me = app.get("/auth/me", access).await;
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["cache-control"], "no-store");
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["id"], id);
}

#[tokio::test]
async fn bad_credentials_all_look_the_same() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let (disabled_id, disabled_email) = app.create_user(&[Role::Manager]).await;
    let r = app
        .patch(
            &format!("/api/admin/users/{disabled_id}"),
            &admin.access,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), 200);

    let mut bodies = Vec::new();
    for (e, p) in [
        (email.as_str(), "Wrong-Password-1234!"),
        ("nobody-here@factory.example", PASSWORD),
        (disabled_email.as_str(), PASSWORD),
        ("not an email", PASSWORD),
    ] {
        let response = app.login(e, p).await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let mut body = assert_problem(response, 401, "invalid_credentials").await;
        body.as_object_mut().unwrap().remove("instance");
        bodies.push(body);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn unverified_accounts_are_told_only_after_a_correct_password() {
    let app = spawn_app().await;
    let email = "fresh@factory.example";
    app.create_user_with(email, "Fresh Hire", &[Role::LineLeader], false)
        .await;
    assert_problem(
        app.login(email, "Wrong-Password-1234!").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(app.login(email, PASSWORD).await, 403, "email_not_verified").await;
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.login_as(&[Role::Manager]).await;

    let r = app.refresh(&first.refresh).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let second_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    let second_access = second["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first.refresh);
    assert_eq!(second["user"]["id"], first.user_id);
    assert_eq!(app.get("/auth/me", &second_access).await.status(), 200);

    // The rotated token comes back: theft. The family dies, including the newest token and the
    // access tokens of the session.
    assert_problem(
        app.refresh(&first.refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.refresh(&second_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.get("/auth/me", &second_access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.get("/auth/me", &first.access).await,
        401,
        "invalid_token",
    )
    .await;

    // Other sessions of the same user are unaffected.
    let other = app.login_ok(&first.email).await;
    assert_eq!(app.get("/auth/me", &other.access).await.status(), 200);

    let admin = app.login_as(&[Role::Admin]).await;
    let events = app.audit(&admin.access, "refresh_reuse").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["subject_id"], first.user_id);

    assert_problem(
        app.refresh("imsr_made-up").await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.refresh(&"x".repeat(10_000)).await,
        401,
        "invalid_refresh_token",
    )
    .await;
}

#[tokio::test]
async fn refresh_by_cookie_needs_the_apps_origin() {
    let app = spawn_app().await;
    let s = app.login_as(&[Role::Manager]).await;
    let cookie = format!("ims_refresh={}", s.refresh);
    let send = |origin: Option<&str>| {
        let mut req = app
            .client
            .post(app.url("/auth/refresh"))
            .header("cookie", cookie.clone())
            .header("content-type", "application/json")
            .body("{}");
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    assert_problem(
        send(Some("https://evil.example")).await.unwrap(),
        403,
        "invalid_origin",
    )
    .await;
    assert_problem(send(None).await.unwrap(), 403, "invalid_origin").await;
    let ok = send(Some(&app.base)).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .starts_with("ims_refresh=imsr_"));
}

#[tokio::test]
async fn logout_revokes_the_session_by_refresh_token_or_bearer() {
    let app = spawn_app().await;
    let a = app.login_as(&[Role::Manager]).await;
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .json(&json!({"refresh_token": a.refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_problem(app.refresh(&a.refresh).await, 401, "invalid_refresh_token").await;
    assert_problem(app.get("/auth/me", &a.access).await, 401, "invalid_token").await;

    let b = app.login_ok(&a.email).await;
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&b.access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_problem(app.refresh(&b.refresh).await, 401, "invalid_refresh_token").await;
    assert_problem(app.get("/auth/me", &b.access).await, 401, "invalid_token").await;

    let r = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "unauthenticated").await;
}

#[tokio::test]
async fn refresh_tokens_expire_when_idle_and_at_the_absolute_limit() {
    let app = spawn_app_with(&[("IMS_REFRESH_IDLE_TIMEOUT", "2s")]).await;
    let s = app.login_as(&[Role::Manager]).await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_problem(app.refresh(&s.refresh).await, 401, "invalid_refresh_token").await;

    let app = spawn_app_with(&[
        ("IMS_REFRESH_IDLE_TIMEOUT", "30m"),
        ("IMS_REFRESH_ABSOLUTE_TIMEOUT", "3s"),
    ])
    .await;
    let s = app.login_as(&[Role::Manager]).await;
    let r: Value = app.refresh(&s.refresh).await.json().await.unwrap();
    let next = r["refresh_token"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(4100)).await;
    assert_problem(app.refresh(&next).await, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn forged_and_malformed_tokens_are_401_with_a_challenge() {
    let app = spawn_app().await;
    let s = app.login_as(&[Role::LineLeader]).await;
    let header = jwt_part(&s.access, 0);
    let mut claims = jwt_part(&s.access, 1);
    claims["roles"] = json!(["ADMIN"]);
    let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
    let sig = s.access.split('.').nth(2).unwrap();
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": header["kid"]})),
        b64(&claims)
    );
    let tampered = format!("{}.{}.{sig}", b64(&header), b64(&claims));
    for token in [none.as_str(), tampered.as_str(), "abc", "a.b.c"] {
        let r = app.get("/api/admin/users", token).await;
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer error=\"invalid_token\""
        );
        assert_problem(r, 401, "invalid_token").await;
    }
    let r = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .unwrap();
    assert_problem(r, 401, "invalid_token").await;
    let r = app.client.get(app.url("/auth/me")).send().await.unwrap();
    assert_problem(r, 401, "unauthenticated").await;
}

#[tokio::test]
async fn repeated_failures_lock_an_email_whether_or_not_it_exists() {
    let app = spawn_app_with(&[("IMS_LOGIN_MAX_FAILURES", "3")]).await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (victim_id, victim) = app.create_user(&[Role::Manager]).await;
    let ghost = "ghost@factory.example";
    for email in [victim.as_str(), ghost] {
        for _ in 0..3 {
            assert_eq!(app.login(email, "Wrong-Password-1234!").await.status(), 401);
        }
    }
    let mut seen = Vec::new();
    for email in [victim.as_str(), ghost] {
        // Even the right password is refused while locked.
        let r = app.login(email, PASSWORD).await;
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry > 0 && retry <= 900, "{retry}");
        seen.push(assert_problem(r, 429, "too_many_requests").await);
    }
    assert_eq!(
        seen[0], seen[1],
        "locked existing and unknown emails look the same"
    );
    // Another account is unaffected.
    let other = app.login_as(&[Role::Manager]).await;
    assert_eq!(app.get("/auth/me", &other.access).await.status(), 200);

    let locked = app.audit(&admin.access, "login_locked").await;
    assert!(locked.iter().any(|e| e["subject_id"] == victim_id.as_str()));

    // The admin unlocks the account; the owner signs in; the count starts again.
    let r = app
        .post(
            &format!("/api/admin/users/{victim_id}/unlock"),
            &admin.access,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    app.login_ok(&victim).await;
    assert_eq!(app.audit(&admin.access, "login_unlocked").await.len(), 1);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let app = spawn_app_with(&[("IMS_LOGIN_MAX_FAILURES", "3")]).await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    for _ in 0..2 {
        assert_eq!(
            app.login(&email, "Wrong-Password-1234!").await.status(),
            401
        );
    }
    app.login_ok(&email).await;
    for _ in 0..2 {
        assert_eq!(
            app.login(&email, "Wrong-Password-1234!").await.status(),
            401
        );
    }
    app.login_ok(&email).await;
}

#[tokio::test]
async fn failures_from_one_client_address_are_limited() {
    let app = spawn_app_with(&[("IMS_LOGIN_IP_MAX_FAILURES", "4")]).await;
    for i in 0..4 {
        let r = app
            .login(&format!("spray{i}@factory.example"), "Wrong-Password-1234!")
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .login("spray-next@factory.example", "Wrong-Password-1234!")
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_problem(r, 429, "too_many_requests").await;
}

#[tokio::test]
async fn client_address_comes_from_forwarded_for_only_behind_trusted_proxies() {
    for (trusted, expected) in [(None, "127.0.0.1"), (Some("127.0.0.1/32"), "203.0.113.7")] {
        let settings: Vec<(&str, &str)> = trusted
            .map(|t| vec![("IMS_TRUSTED_PROXIES", t)])
            .unwrap_or_default();
        let app = spawn_app_with(&settings).await;
        let admin = app.login_as(&[Role::Admin]).await;
        app.client
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"email": "x@factory.example", "password": "Wrong-Password-1234!"}))
            .send()
            .await
            .unwrap();
        let events = app.audit(&admin.access, "login_failed").await;
        assert_eq!(events[0]["ip"], expected);
    }
}

#[tokio::test]
async fn weaker_hashes_are_upgraded_at_login() {
    let app = spawn_app().await;
    let (id, email) = app.create_user(&[Role::Manager]).await;
    let weak = ims::auth::password::Hasher::with_params(8192, 1, 1).unwrap();
    let hash = weak
        .hash(&secrecy::SecretString::from(PASSWORD))
        .await
        .unwrap();
    ims::users::set_password_hash(app.state.db.pool(), &id, &hash)
        .await
        .unwrap();
    app.login_ok(&email).await;
    let stored = ims::users::by_id(app.state.db.pool(), &id)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    app.login_ok(&email).await;
}

#[tokio::test]
async fn parallel_guesses_cannot_slip_past_the_lock() {
    let app = spawn_app_with(&[("IMS_LOGIN_MAX_FAILURES", "3")]).await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (id, email) = app.create_user(&[Role::Manager]).await;
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, url, email) = (app.client.clone(), app.url("/auth/login"), email.clone());
        set.spawn(async move {
            client
                .post(url)
                .json(&json!({"email": email, "password": "Wrong-Password-1234!"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(s) = set.join_next().await {
        statuses.push(s.unwrap());
    }
    let guesses = statuses.iter().filter(|s| **s == 401).count();
    assert!(guesses <= 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20 - guesses);
    let failed = app.audit(&admin.access, "login_failed").await;
    assert!(
        failed
            .iter()
            .filter(|e| e["subject_id"] == id.as_str())
            .count()
            <= 3
    );
}

#[tokio::test]
async fn control_characters_are_client_errors_on_every_backend() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let r = app
        .login("a\u{0}@factory.example", "Wrong-Password-1234!")
        .await;
    // A NUL cannot be stored in PostgreSQL text: refused as such on every backend alike.
    assert_problem(r, 400, "invalid_characters").await;
    for path in [
        "/api/admin/audit?type=a%00b",
        "/api/admin/audit?user_id=%00",
    ] {
        let status = app.get(path, &admin.access).await.status().as_u16();
        assert!(status == 200 || status == 400, "{path} → {status}");
    }
    let cursor = URL_SAFE_NO_PAD.encode("\u{0}");
    let status = app
        .get(&format!("/api/admin/users?cursor={cursor}"), &admin.access)
        .await
        .status()
        .as_u16();
    assert!(status == 200 || status == 400, "{status}");
}

#[tokio::test]
async fn logins_abandoned_by_the_client_are_not_held_against_it() {
    let app = spawn_app_with(&[("IMS_LOGIN_IP_MAX_FAILURES", "3")]).await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(5))
        .build()
        .unwrap();
    for _ in 0..8 {
        let sent = impatient
            .post(app.url("/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await;
        // Either the client gave up, or the server refused at once because attempts already in
        // flight fill the client's allowance.
        if let Ok(r) = &sent {
            assert_eq!(r.status(), 429);
        }
    }
    // The server finished the admitted logins (they succeeded) and took the refused ones back, so
    // nothing counts against this client.
    let ok = eventually(Duration::from_secs(10), || async {
        app.login(&email, PASSWORD).await.status() == 200
    })
    .await;
    assert!(ok, "a correct login still works from this address");
}

#[tokio::test]
async fn bodies_must_be_json_objects() {
    let app = spawn_app().await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    for body in [json!([email, PASSWORD]), json!("text"), json!(42)] {
        let r = app
            .client
            .post(app.url("/auth/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(r, 400, "invalid_body").await;
    }
}
