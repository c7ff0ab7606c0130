//! Secrets from AWS Secrets Manager (`IMS_SECRETS_ID`) against `moto_server`: a secret encrypted
//! with a customer-managed KMS key, rotated mid-test. A new signing key set takes effect without a
//! restart and without logging anyone out; a rotated database password is used for new
//! connections (proved on a private PostgreSQL cluster that checks passwords); a missing or
//! malformed secret stops the start with a message naming the secret, never a value.

use std::time::Duration;

use ims::auth::keys::generate_key_set_at;
use ims::auth::roles::Role;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::cli::{ims_command, run};
use crate::helpers::*;
use crate::moto::Moto;
use crate::pg_cluster::PgCluster;

const PEPPER: &str = "test-pepper-0123456789abcdefghijklmnopqrstuvwxyz";

fn key_set(previous: Option<&str>, active_from: i64) -> String {
    let previous = previous.map(|p| SecretString::from(p.to_owned()));
    generate_key_set_at(previous.as_ref(), active_from)
        .unwrap()
        .expose_secret()
        .to_owned()
}

fn kids_of(key_set: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(key_set).unwrap();
    doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn without(key_set: &str, kid: &str) -> String {
    let mut doc: Value = serde_json::from_str(key_set).unwrap();
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .retain(|k| k["kid"] != kid);
    doc.to_string()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn served_kids(app: &TestApp) -> Vec<String> {
    let jwks = app.public_json("/.well-known/jwks.json").await;
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

async fn wait_for_kids(app: &TestApp, expected: &[String]) {
    let mut expected = expected.to_vec();
    expected.sort();
    let ok = eventually(Duration::from_secs(15), || {
        let expected = expected.clone();
        async move { served_kids(app).await == expected }
    })
    .await;
    assert!(
        ok,
        "the served key set became {expected:?}: {:?}",
        served_kids(app).await
    );
}

async fn me(app: &TestApp, token: &str) -> u16 {
    app.get("/auth/me", token).await.status().as_u16()
}

fn store_settings<'a>(moto: &'a Moto, id: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("IMS_SECRETS_ID", id),
        ("IMS_AWS_ENDPOINT_URL", moto.endpoint.as_str()),
        ("IMS_SECRETS_REFRESH", "1s"),
    ]
}

#[tokio::test]
async fn a_rotated_signing_key_set_takes_effect_without_restart_or_logout() {
    let moto = Moto::start().await;
    let now = ims::clock::now();
    let first = key_set(None, now - 60);
    let id = "ims/rotation";
    let created = moto
        .run(
            "secret_store.py",
            &["create", id],
            &json!({ "JWT_SIGNING_KEYS": first, "OTP_PEPPER": PEPPER }).to_string(),
        )
        .await;
    assert_eq!(
        created["described_kms_key"], created["kms_key"],
        "the secret is encrypted with the customer-managed key"
    );
    let app = spawn_app_with(&store_settings(&moto, id)).await;
    let old_kid = kids_of(&first)[0].clone();
    assert_eq!(served_kids(&app).await, vec![old_kid.clone()]);
    let admin = app.login_as(&[Role::Admin]).await;
    assert_eq!(kid_of(&admin.access), old_kid);

    // Rotation: a new key signs from now on; the old one keeps verifying.
    let second = key_set(Some(&first), ims::clock::now() - 1);
    let new_kid = kids_of(&second)[1].clone();
    moto.run(
        "secret_store.py",
        &["put", id],
        &json!({ "JWT_SIGNING_KEYS": second, "OTP_PEPPER": PEPPER }).to_string(),
    )
    .await;
    wait_for_kids(&app, &[old_kid.clone(), new_kid.clone()]).await;
    assert_eq!(me(&app, &admin.access).await, 200, "nobody is logged out");
    // A key first seen at run time signs only once every instance has had a refresh interval
    // (1 s here, plus a 5 s margin) to learn it; until then the old key keeps signing.
    let early = app.login_ok(&admin.email).await;
    assert_eq!(
        kid_of(&early.access),
        old_kid,
        "the new key does not sign at once"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let fresh = loop {
        let session = app.login_ok(&admin.email).await;
        if kid_of(&session.access) == new_kid {
            break session;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new key never signed"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let refreshed = app.refresh(&admin.refresh).await;
    assert_eq!(
        refreshed.status(),
        200,
        "a session from before the rotation refreshes"
    );
    let refreshed: Value = refreshed.json().await.unwrap();
    assert_eq!(kid_of(refreshed["access_token"].as_str().unwrap()), new_kid);

    // The old key leaves the set: it no longer signs, but the tokens it signed keep verifying
    // until they expire (an access-token lifetime), so still nobody is logged out.
    let third = without(&second, &old_kid);
    moto.run(
        "secret_store.py",
        &["put", id],
        &json!({ "JWT_SIGNING_KEYS": third, "OTP_PEPPER": PEPPER }).to_string(),
    )
    .await;
    let applied = eventually(Duration::from_secs(15), || async {
        app.audit(&fresh.access, "secret_rotated")
            .await
            .iter()
            .any(|e| e["detail"]["detail"]["kids"] == json!([new_kid]))
    })
    .await;
    assert!(applied, "the set without the old key was applied");
    let retired = app.audit(&fresh.access, "secret_rotated").await;
    assert_eq!(
        retired[0]["detail"]["detail"]["verifying_until_expiry"],
        json!([old_kid])
    );
    assert_eq!(
        me(&app, &admin.access).await,
        200,
        "the old token still works"
    );
    assert_eq!(me(&app, &fresh.access).await, 200);
    let newest = app.login_ok(&admin.email).await;
    assert_eq!(kid_of(&newest.access), new_kid);

    // A malformed rotation is refused: the keys in use stay.
    moto.run(
        "secret_store.py",
        &["put", id],
        &json!({ "JWT_SIGNING_KEYS": "canary-not-a-key-set", "OTP_PEPPER": PEPPER }).to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut both = vec![old_kid.clone(), new_kid.clone()];
    both.sort();
    assert_eq!(served_kids(&app).await, both);
    assert_eq!(me(&app, &fresh.access).await, 200);
    assert_eq!(kid_of(&app.login_ok(&admin.email).await.access), new_kid);

    let audit = app.audit(&fresh.access, "secret_rotated").await;
    assert_eq!(audit.len(), 2, "{audit:?}");
    let text = serde_json::to_string(&audit).unwrap();
    assert!(text.contains(id) && text.contains(&new_kid), "{text}");
    for secret in [PEPPER, "private_key", "canary"] {
        assert!(!text.contains(secret), "the audit shows {secret}");
    }
}

#[tokio::test]
async fn a_missing_or_malformed_secret_stops_the_start_naming_it_never_its_values() {
    let moto = Moto::start().await;
    let keys = key_set(None, ims::clock::now() - 60);
    let cases = [
        (
            "ims/not-json",
            "canary-plain-text".to_owned(),
            "is not JSON",
        ),
        (
            "ims/no-keys",
            json!({ "OTP_PEPPER": "canary-pepper-0123456789abcdefghijklmnop" }).to_string(),
            "has no key JWT_SIGNING_KEYS",
        ),
        (
            "ims/bad-keys",
            json!({ "JWT_SIGNING_KEYS": "canary-keys", "OTP_PEPPER": PEPPER }).to_string(),
            "JWT_SIGNING_KEYS is not a JSON key set",
        ),
        (
            "ims/bad-type",
            json!({ "JWT_SIGNING_KEYS": keys, "OTP_PEPPER": PEPPER, "DATABASE_PASSWORD": 1234567 })
                .to_string(),
            "the value of DATABASE_PASSWORD must be a string",
        ),
    ];
    for (id, value, _) in &cases {
        moto.run("secret_store.py", &["create", id], value).await;
    }
    let absent = ("ims/absent", String::new(), "does not exist");
    let data = std::env::temp_dir().join(format!("ims-secrets-{}", uuid::Uuid::new_v4().simple()));
    for (id, _, expected) in cases.iter().chain(std::iter::once(&absent)) {
        for command in ["check-config", "serve"] {
            let mut cmd = ims_command();
            cmd.arg(command)
                .env("IMS_DATA_DIR", &data)
                .env("IMS_LISTEN", "127.0.0.1:0")
                .env("IMS_SECRETS_ID", id)
                .env("IMS_AWS_ENDPOINT_URL", &moto.endpoint);
            let out = run(cmd, None).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(!out.status.success(), "{command} with {id} must fail");
            assert!(
                stderr.contains(id) || stderr.contains("JWT_SIGNING_KEYS"),
                "{command} {id}: {stderr}"
            );
            assert!(stderr.contains(expected), "{command} {id}: {stderr}");
            for output in [&stderr, &stdout] {
                assert!(
                    !output.contains("canary"),
                    "{command} {id} shows a value: {output}"
                );
                assert!(!output.contains(PEPPER), "{command} {id} shows the pepper");
            }
        }
    }

    // An RDS credentials secret for another user than the URL's is refused, naming both users.
    moto.run(
        "secret_store.py",
        &["create", "ims/app-ok"],
        &json!({ "JWT_SIGNING_KEYS": keys, "OTP_PEPPER": PEPPER }).to_string(),
    )
    .await;
    moto.run(
        "secret_store.py",
        &["create", "ims/db-other-user"],
        &json!({ "engine": "postgres", "username": "someone", "password": "canary-db-password" })
            .to_string(),
    )
    .await;
    let mut cmd = ims_command();
    cmd.arg("check-config")
        .env("IMS_DATA_DIR", &data)
        .env("IMS_DATABASE_URL", "postgres://ims_app@127.0.0.1:5432/ims")
        .env("IMS_SECRETS_ID", "ims/app-ok,ims/db-other-user")
        .env("IMS_AWS_ENDPOINT_URL", &moto.endpoint);
    let out = run(cmd, None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("ims/db-other-user")
            && stderr.contains("its username is someone, but IMS_DATABASE_URL connects as ims_app"),
        "{stderr}"
    );
    assert!(!stderr.contains("canary"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn a_rotated_database_password_reaches_new_connections_over_tls() {
    let pg = PgCluster::start("first-db-pass");
    let moto = Moto::start().await;
    let keys = key_set(None, ims::clock::now() - 60);
    // Two secrets, as deployed: the app's keys, and the database credentials in the format
    // Secrets Manager's RDS rotation maintains (its `password` is DATABASE_PASSWORD).
    moto.run(
        "secret_store.py",
        &["create", "ims/app"],
        &json!({ "JWT_SIGNING_KEYS": keys, "OTP_PEPPER": PEPPER }).to_string(),
    )
    .await;
    let database = |password: &str| {
        json!({
            "engine": "postgres", "host": "127.0.0.1", "port": pg.port, "dbname": "postgres",
            "username": "postgres", "password": password,
        })
        .to_string()
    };
    moto.run(
        "secret_store.py",
        &["create", "ims/database"],
        &database("first-db-pass"),
    )
    .await;
    let settings = store_settings(&moto, "ims/app,ims/database");
    let app = spawn_on(TestDb::at(&pg.url(None)), &settings).await;
    let admin = app.login_as(&[Role::Admin]).await;

    // The password changes in the database and then in the secret, as the rotation Lambda does.
    let mut conn = sqlx::PgConnection::connect(&pg.url(Some("first-db-pass")))
        .await
        .unwrap();
    let tls: bool = sqlx::query_scalar(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
         WHERE a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(tls, "every connection of the app is encrypted");
    sqlx::query("ALTER ROLE postgres PASSWORD 'second-db-pass'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert!(
        sqlx::PgConnection::connect(&pg.url(Some("first-db-pass")))
            .await
            .is_err(),
        "the cluster checks passwords"
    );
    moto.run(
        "secret_store.py",
        &["put", "ims/database"],
        &database("second-db-pass"),
    )
    .await;
    let rotated = eventually(Duration::from_secs(15), || async {
        app.audit(&admin.access, "secret_rotated")
            .await
            .iter()
            .any(|e| {
                e["detail"]["key"] == "DATABASE_PASSWORD" && e["detail"]["secret"] == "ims/database"
            })
    })
    .await;
    assert!(rotated, "the rotation was applied");

    // Every open connection is cut: the pool reconnects, with the new password.
    let mut conn = sqlx::PgConnection::connect(&pg.url(Some("second-db-pass")))
        .await
        .unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let again = eventually(Duration::from_secs(10), || async {
        app.login(&admin.email, PASSWORD).await.status() == 200
    })
    .await;
    assert!(
        again,
        "logins (database writes) work again after reconnecting"
    );
    let connected: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!(connected >= 1, "the app holds new connections");
}
