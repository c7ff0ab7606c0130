//! The admin API: users (create, list, read, update, disable, revoke sessions) and the audit trail,
//! including revocation reaching other instances within seconds.

use std::time::Duration;

use ims::auth::roles::Role;
use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn admins_create_users_with_validation() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let r = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({"email": "Line.Lead@Factory.example", "name": "Lena Lead", "roles": ["LINE_LEADER"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "line.lead@factory.example");
    assert_eq!(user["roles"], json!(["LINE_LEADER"]));
    assert_eq!(user["email_verified"], false);
    assert!(user.get("password_hash").is_none());

    // Without a password: created, no password set.
    let r = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({"email": "nopass@factory.example", "name": "No Pass", "roles": ["MANAGER"]}),
        )
        .await;
    assert_eq!(r.status(), 201);

    let cases = [
        (
            json!({"email": "line.lead@factory.example", "name": "Dup", "roles": ["MANAGER"]}),
            409,
            "email_taken",
        ),
        (
            json!({"email": "bad", "name": "X Y", "roles": ["MANAGER"]}),
            422,
            "invalid_email",
        ),
        (
            json!({"email": "n@factory.example", "name": "", "roles": ["MANAGER"]}),
            422,
            "invalid_name",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": []}),
            422,
            "invalid_roles",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": ["BOSS"]}),
            400,
            "invalid_body",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": ["MANAGER"], "id": "x"}),
            400,
            "invalid_body",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": ["MANAGER"], "password": "short"}),
            422,
            "weak_password",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": ["MANAGER"], "password": "passwordpassword"}),
            422,
            "weak_password",
        ),
        (
            json!({"email": "n@factory.example", "name": "Nadia Fernández", "roles": ["MANAGER"], "password": "Fernández-Secure-Key-88"}),
            422,
            "weak_password",
        ),
        (
            json!({"email": "n@factory.example", "name": "N", "roles": ["MANAGER"], "password": "x".repeat(129)}),
            422,
            "weak_password",
        ),
    ];
    for (body, status, code) in cases {
        let problem = assert_problem(
            app.post("/api/admin/users", &admin.access, &body).await,
            status,
            code,
        )
        .await;
        if code == "weak_password" {
            let detail = problem["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("password "),
                "the reason is given: {detail}"
            );
        }
    }
    // Nothing half-written: exactly the admin and the two created users exist.
    let list: Value = app
        .get("/api/admin/users?limit=200", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn users_are_listed_with_a_cursor() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    for _ in 0..4 {
        app.create_user(&[Role::LineLeader]).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/admin/users?limit=2&cursor={c}"),
            None => "/api/admin/users?limit=2".into(),
        };
        let page: Value = app.get(&path, &admin.access).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        for item in items {
            assert!(item["created_at"].is_string() && item["disabled"] == false);
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut unique = seen.clone();
    unique.dedup();
    assert_eq!(unique, seen, "no duplicates, creation order");

    let one: Value = app
        .get(&format!("/api/admin/users/{}", seen[1]), &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["id"], seen[1].as_str());
    let missing = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/api/admin/users/{missing}"), &admin.access)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn role_changes_and_disabling_cut_off_issued_tokens() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let worker = app.login_as(&[Role::Manager]).await;
    assert_eq!(app.get("/auth/me", &worker.access).await.status(), 200);

    let r = app
        .patch(
            &format!("/api/admin/users/{}", worker.user_id),
            &admin.access,
            &json!({"roles": ["LINE_LEADER"], "name": "Renamed Person"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["roles"], json!(["LINE_LEADER"]));
    assert_eq!(updated["name"], "Renamed Person");
    // The old token carried MANAGER: refused now; a refresh gives a token with the new roles.
    assert_problem(
        app.get("/auth/me", &worker.access).await,
        401,
        "invalid_token",
    )
    .await;
    let refreshed: Value = app.refresh(&worker.refresh).await.json().await.unwrap();
    assert_eq!(refreshed["user"]["roles"], json!(["LINE_LEADER"]));
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(app.get("/auth/me", access).await.status(), 200);
    let refresh = refreshed["refresh_token"].as_str().unwrap();

    let r = app
        .patch(
            &format!("/api/admin/users/{}", worker.user_id),
            &admin.access,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(app.get("/auth/me", access).await, 401, "invalid_token").await;
    assert_problem(app.refresh(refresh).await, 401, "invalid_refresh_token").await;
    assert_problem(
        app.login(&worker.email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;

    // Re-enabled, the user signs in again.
    let r = app
        .patch(
            &format!("/api/admin/users/{}", worker.user_id),
            &admin.access,
            &json!({"disabled": false}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.login_ok(&worker.email).await;

    let kinds = [
        "roles_changed",
        "user_renamed",
        "user_disabled",
        "user_enabled",
    ];
    for kind in kinds {
        let events = app.audit(&admin.access, kind).await;
        assert_eq!(events.len(), 1, "{kind}");
        assert_eq!(events[0]["actor_id"], admin.user_id.as_str());
        assert_eq!(events[0]["subject_id"], worker.user_id.as_str());
        assert_eq!(events[0]["ip"], "127.0.0.1");
    }
}

#[tokio::test]
async fn revoke_sessions_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let one = app.login_as(&[Role::LineLeader]).await;
    let two = app.login_ok(&one.email).await;
    let r = app
        .post(
            &format!("/api/admin/users/{}/revoke-sessions", one.user_id),
            &admin.access,
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 204);
    for s in [&one, &two] {
        assert_problem(app.get("/auth/me", &s.access).await, 401, "invalid_token").await;
        assert_problem(app.refresh(&s.refresh).await, 401, "invalid_refresh_token").await;
    }
    let fresh = app.login_ok(&one.email).await;
    assert_eq!(app.get("/auth/me", &fresh.access).await.status(), 200);
    let events = app.audit(&admin.access, "sessions_revoked").await;
    assert_eq!(events[0]["detail"]["sessions_revoked"], 2);
}

#[tokio::test]
async fn the_last_active_admin_stays() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let me = format!("/api/admin/users/{}", admin.user_id);
    assert_problem(
        app.patch(&me, &admin.access, &json!({"roles": ["MANAGER"]}))
            .await,
        409,
        "last_admin",
    )
    .await;
    assert_problem(
        app.patch(&me, &admin.access, &json!({"disabled": true}))
            .await,
        409,
        "last_admin",
    )
    .await;
    // Nothing changed.
    let still: Value = app.get(&me, &admin.access).await.json().await.unwrap();
    assert_eq!(still["roles"], json!(["ADMIN"]));
    assert_eq!(still["disabled"], false);
    assert!(app.audit(&admin.access, "roles_changed").await.is_empty());

    // With a second admin, one may step down — but then the other is the last.
    let (second_id, _) = app.create_user(&[Role::Admin, Role::Manager]).await;
    let r = app
        .patch(&me, &admin.access, &json!({"roles": ["ADMIN", "MANAGER"]}))
        .await;
    assert_eq!(r.status(), 200);
    let admin = app.login_ok(&admin.email).await;
    let r = app
        .patch(
            &format!("/api/admin/users/{second_id}"),
            &admin.access,
            &json!({"roles": ["MANAGER"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_problem(
        app.patch(&me, &admin.access, &json!({"roles": ["MANAGER"]}))
            .await,
        409,
        "last_admin",
    )
    .await;
}

#[tokio::test]
async fn concurrent_demotions_cannot_remove_every_admin() {
    let app = spawn_app().await;
    let a = app.login_as(&[Role::Admin]).await;
    let b = app.login_as(&[Role::Admin]).await;
    let body = json!({"roles": ["MANAGER"]});
    let (path_a, path_b) = (
        format!("/api/admin/users/{}", a.user_id),
        format!("/api/admin/users/{}", b.user_id),
    );
    let (r1, r2) = tokio::join!(
        app.patch(&path_b, &a.access, &body),
        app.patch(&path_a, &b.access, &body)
    );
    let mut statuses = [r1.status().as_u16(), r2.status().as_u16()];
    statuses.sort();
    // One wins; the other is refused as the last admin (409), or — when the winner's commit lands
    // first — its own token has already been revoked by its demotion (401).
    assert!(
        statuses == [200, 409] || statuses == [200, 401],
        "{statuses:?}"
    );
    let admins = ims::users::active_admins(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(admins, 1);
}

#[tokio::test]
async fn the_audit_trail_is_filterable_pageable_and_free_of_secrets() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let user = app.login_as(&[Role::Manager]).await;
    app.login(&user.email, "Wrong-Password-Canary-42").await;
    let rotated: Value = app.refresh(&user.refresh).await.json().await.unwrap();
    app.refresh(&user.refresh).await; // reuse

    let body: Value = app
        .get("/api/admin/audit?limit=200", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    let text = body.to_string();
    for secret in [
        PASSWORD,
        "Wrong-Password-Canary-42",
        user.refresh.as_str(),
        user.access.as_str(),
        rotated["refresh_token"].as_str().unwrap(),
        admin.access.as_str(),
    ] {
        assert!(!text.contains(secret), "audit contains a secret");
    }
    let kinds: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "config_loaded",
        "user_created",
        "login_ok",
        "login_failed",
        "refresh_reuse",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    let mine: Value = app
        .get(
            &format!("/api/admin/audit?user_id={}&limit=200", user.user_id),
            &admin.access,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(
            |e| e["actor_id"] == user.user_id.as_str() || e["subject_id"] == user.user_id.as_str()
        ));

    let future: Value = app
        .get("/api/admin/audit?since=2999-01-01T00:00:00Z", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    assert!(future["items"].as_array().unwrap().is_empty());

    let mut ids = Vec::new();
    let mut path = "/api/admin/audit?limit=2".to_owned();
    loop {
        let page: Value = app.get(&path, &admin.access).await.json().await.unwrap();
        ids.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/admin/audit?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), kinds.len());
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
}

#[tokio::test]
async fn revocation_reaches_another_instance_within_five_seconds() {
    // Two instances on one database with the same signing keys (same data directory) and the
    // same public URL (the token issuer), as behind a load balancer.
    let public = [("IMS_PUBLIC_URL", "http://ims.factory.example")];
    let first = spawn_app_with(&public).await;
    let second = spawn_on(first.db.share(), &public).await;
    let admin = first.login_as(&[Role::Admin]).await;
    let worker = first.login_as(&[Role::Manager]).await;
    assert_eq!(second.get("/auth/me", &worker.access).await.status(), 200);

    let started = std::time::Instant::now();
    let r = first
        .patch(
            &format!("/api/admin/users/{}", worker.user_id),
            &admin.access,
            &json!({"disabled": true}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let revoked = eventually(Duration::from_secs(5), || async {
        second.get("/auth/me", &worker.access).await.status() == 401
    })
    .await;
    assert!(revoked, "second instance still accepts the token after 5 s");
    eprintln!(
        "revocation reached the second instance in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn repeated_roles_count_once_and_bad_dates_name_the_value() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let r = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({
                "email": "repeat@factory.example",
                "name": "Rita Repeat",
                "roles": ["MANAGER", "LINE_LEADER", "MANAGER", "LINE_LEADER", "MANAGER"],
            }),
        )
        .await;
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let mut roles: Vec<&str> = user["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    roles.sort();
    assert_eq!(roles, ["LINE_LEADER", "MANAGER"]);

    let manager = app.login_as(&[Role::Manager]).await;
    let body = assert_problem(
        app.get("/api/kpi/summary?date=1999-13-40", &manager.access)
            .await,
        422,
        "invalid_date",
    )
    .await;
    assert_eq!(
        body["detail"],
        "'1999-13-40' is not a valid YYYY-MM-DD date"
    );
}
