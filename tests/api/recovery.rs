//! One-time-code journeys over HTTP with the embedded `file` mail transport: codes are read from
//! the `.eml` files the server wrote, as a user would read their mail.

use std::time::Duration;

use ims::auth::roles::Role;
use serde_json::{json, Value};

use crate::helpers::*;

const NEW_PASSWORD: &str = "Copper-Kestrel-Meadow-7714";

/// Mails written to the file transport for this recipient, oldest first.
fn mails_to(app: &TestApp, to: &str) -> Vec<String> {
    let dir = app.db.dir.join("mail");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| {
            m.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        })
        .collect()
}

async fn wait_for_mails(app: &TestApp, to: &str, count: usize) -> Vec<String> {
    let mut found = Vec::new();
    let ok = eventually(Duration::from_secs(10), || {
        found = mails_to(app, to);
        let n = found.len();
        async move { n >= count }
    })
    .await;
    assert!(
        ok,
        "expected {count} mail(s) to {to}, found {}",
        found.len()
    );
    found
}

/// The body of a mail: everything after the headers, without MIME boundaries and part headers.
fn body_of(mail: &str) -> String {
    let body = mail.split_once("\r\n\r\n").map_or(mail, |(_, b)| b);
    body.lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with("Content-"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Six-digit runs in a mail's body.
fn body_digit_runs(mail: &str) -> Vec<String> {
    six_digit_runs(&body_of(mail))
}

/// The only six-digit number in a mail's body (it appears in the text and the HTML part).
fn code_in(mail: &str) -> String {
    let mut runs = body_digit_runs(mail);
    runs.dedup();
    assert_eq!(runs.len(), 1, "exactly one six-digit number: {runs:?}");
    runs.remove(0)
}

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/forgot-password"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

async fn verify(app: &TestApp, email: &str, otp: &str, purpose: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "email": email, "otp": otp });
    if let Some(p) = purpose {
        body["purpose"] = json!(p);
    }
    app.client
        .post(app.url("/auth/verify-otp"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/reset-password"))
        .json(&json!({ "reset_token": token, "new_password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn forgotten_password_journey_resets_and_signs_out_everywhere() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    let user = app.login_as(&[Role::LineLeader]).await;

    let r = forgot(&app, &user.email).await;
    assert_eq!(r.status(), 202);
    let mails = wait_for_mails(&app, &user.email, 1).await;
    assert!(mails[0].contains("Subject: Your IMS password reset code"));
    assert!(mails[0].contains("multipart/alternative"));
    let code = code_in(&mails[0]);

    let r = verify(&app, &user.email, &code, None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["expires_in"], 900);
    let token = body["reset_token"].as_str().unwrap().to_owned();
    // The code was single-use.
    assert_problem(
        verify(&app, &user.email, &code, None).await,
        400,
        "invalid_otp",
    )
    .await;

    // A weak password is refused and does not use the token up.
    assert_problem(
        reset(&app, &token, "password1234").await,
        422,
        "weak_password",
    )
    .await;
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), 204);
    assert_problem(
        reset(&app, &token, "Another-Strong-Pass-5521").await,
        400,
        "invalid_reset_token",
    )
    .await;

    // Every session is gone; the new password works, the old does not.
    assert_problem(
        app.refresh(&user.refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.get("/auth/me", &user.access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.login(&user.email, PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(app.login(&user.email, NEW_PASSWORD).await.status(), 200);

    let mails = wait_for_mails(&app, &user.email, 2).await;
    let notice = &mails[1];
    assert!(notice.contains("Subject: Your IMS password was changed"));
    assert!(body_digit_runs(notice).is_empty());

    for kind in ["otp_sent", "otp_used", "password_reset"] {
        let events = app.audit(&admin.access, kind).await;
        assert!(
            events
                .iter()
                .any(|e| e["subject_id"] == user.user_id.as_str()),
            "{kind}"
        );
    }
    let audit: Value = app
        .get("/api/admin/audit?limit=200", &admin.access)
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        !text.contains(&code) && !text.contains(&token),
        "no code or token in the audit trail"
    );
}

#[tokio::test]
async fn unknown_emails_get_the_same_answers() {
    let app = spawn_app().await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    let known = forgot(&app, &email).await;
    let unknown = forgot(&app, "nobody@factory.example").await;
    assert_eq!(known.status(), 202);
    assert_eq!(unknown.status(), 202);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    wait_for_mails(&app, &email, 1).await;
    assert!(mails_to(&app, "nobody@factory.example").is_empty());

    let wrong = verify(&app, &email, "000000", None).await;
    let missing = verify(&app, "nobody@factory.example", "000000", None).await;
    let a = assert_problem(wrong, 400, "invalid_otp").await;
    let b = assert_problem(missing, 400, "invalid_otp").await;
    assert_eq!(a, b);
    assert_problem(
        verify(&app, &email, "12ab56", None).await,
        400,
        "invalid_otp",
    )
    .await;
    assert_problem(
        verify(&app, &email, "123456", Some("sudo")).await,
        400,
        "invalid_purpose",
    )
    .await;
    assert_problem(forgot(&app, "not an address").await, 400, "invalid_email").await;
    assert_problem(
        forgot(&app, "a@b.example\r\nBcc: x@evil.example").await,
        400,
        "invalid_email",
    )
    .await;
}

#[tokio::test]
async fn five_wrong_tries_kill_a_code_and_a_new_code_replaces_the_old() {
    let app = spawn_app().await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    forgot(&app, &email).await;
    let first = code_in(&wait_for_mails(&app, &email, 1).await[0]);
    forgot(&app, &email).await;
    let second = code_in(&wait_for_mails(&app, &email, 2).await[1]);
    if first != second {
        assert_problem(verify(&app, &email, &first, None).await, 400, "invalid_otp").await;
    }
    let wrong = if second == "000000" {
        "111111"
    } else {
        "000000"
    };
    // The replaced code's failed try above counts too; make it exactly five wrong tries in all.
    let tries = if first != second { 4 } else { 5 };
    for _ in 0..tries {
        assert_problem(verify(&app, &email, wrong, None).await, 400, "invalid_otp").await;
    }
    assert_problem(
        verify(&app, &email, &second, None).await,
        400,
        "invalid_otp",
    )
    .await;

    // Expired codes are refused.
    forgot(&app, &email).await;
    let third = code_in(&wait_for_mails(&app, &email, 3).await[2]);
    sqlx::query("UPDATE one_time_codes SET expires_at = 0")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    assert_problem(verify(&app, &email, &third, None).await, 400, "invalid_otp").await;
}

#[tokio::test]
async fn an_address_gets_at_most_five_codes_an_hour() {
    let app = spawn_app().await;
    let (id, email) = app.create_user(&[Role::Manager]).await;
    for _ in 0..7 {
        assert_eq!(forgot(&app, &email).await.status(), 202);
    }
    // Wait until every request has been decided and every mail handled.
    let settled = eventually(Duration::from_secs(15), || async {
        let (pending,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
                .fetch_one(app.state.db.pool())
                .await
                .unwrap();
        pending == 0
    })
    .await;
    assert!(settled);
    let (issued,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_events WHERE type = 'otp_sent' AND subject_id = $1",
    )
    .bind(&id)
    .fetch_one(app.state.db.pool())
    .await
    .unwrap();
    assert_eq!(issued, 5, "five codes issued, the other requests dropped");
    // A newer code replaces an older one whose mail had not gone out yet, so at most five mails
    // arrive, and the newest one's code works.
    let mails = mails_to(&app, &email);
    assert!((1..=5).contains(&mails.len()), "{}", mails.len());
    let code = code_in(mails.last().unwrap());
    assert_eq!(verify(&app, &email, &code, None).await.status(), 200);
}

#[tokio::test]
async fn email_verification_lets_an_unverified_user_sign_in() {
    let app = spawn_app().await;
    let email = "new.hire@factory.example";
    app.create_user_with(email, "New Hire", &[Role::LineLeader], false)
        .await;
    assert_problem(app.login(email, PASSWORD).await, 403, "email_not_verified").await;
    let r = app
        .client
        .post(app.url("/auth/send-verification"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mail = &wait_for_mails(&app, email, 1).await[0];
    assert!(mail.contains("Subject: Your IMS email verification code"));
    let code = code_in(mail);
    // A code for one purpose does not work for the other.
    assert_problem(
        verify(&app, email, &code, Some("password_reset")).await,
        400,
        "invalid_otp",
    )
    .await;
    let r = verify(&app, email, &code, Some("email_verification")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({ "email_verified": true })
    );
    app.login_ok(email).await;

    // Verified accounts are not sent verification codes.
    app.client
        .post(app.url("/auth/send-verification"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(mails_to(&app, email).len(), 1);
}

#[tokio::test]
async fn accounts_created_by_an_admin_are_sent_the_right_code() {
    let app = spawn_app().await;
    let admin = app.login_as(&[Role::Admin]).await;
    // Without a password: a code to set one.
    let r = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({"email": "setpw@factory.example", "name": "Sam Setter", "roles": ["MANAGER"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let mail = &wait_for_mails(&app, "setpw@factory.example", 1).await[0];
    assert!(mail.contains("Subject: Welcome to IMS: set your password"));
    let body: Value = verify(&app, "setpw@factory.example", &code_in(mail), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        reset(&app, body["reset_token"].as_str().unwrap(), NEW_PASSWORD)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.login("setpw@factory.example", NEW_PASSWORD)
            .await
            .status(),
        200
    );

    // With a password: a code to verify the address.
    let r = app
        .post(
            "/api/admin/users",
            &admin.access,
            &json!({"email": "verify@factory.example", "name": "Vera Verify", "roles": ["LINE_LEADER"], "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let mail = &wait_for_mails(&app, "verify@factory.example", 1).await[0];
    assert!(mail.contains("Subject: Welcome to IMS: confirm your email address"));
    let r = verify(
        &app,
        "verify@factory.example",
        &code_in(mail),
        Some("email_verification"),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.login_ok("verify@factory.example").await;
}

#[tokio::test]
async fn change_password_keeps_this_session_and_ends_the_others() {
    let app = spawn_app().await;
    let here = app.login_as(&[Role::Manager]).await;
    let elsewhere = app.login_ok(&here.email).await;
    let change = |current: &str, new: &str| {
        let body = json!({ "current_password": current, "new_password": new });
        let request = app
            .client
            .post(app.url("/auth/change-password"))
            .bearer_auth(&here.access)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    assert_problem(
        change("Wrong-Current-Pass-99", NEW_PASSWORD).await,
        403,
        "invalid_current_password",
    )
    .await;
    assert_problem(change(PASSWORD, "short").await, 422, "weak_password").await;
    assert_eq!(change(PASSWORD, NEW_PASSWORD).await.status(), 204);

    assert_eq!(app.get("/auth/me", &here.access).await.status(), 200);
    assert_eq!(app.refresh(&here.refresh).await.status(), 200);
    assert_problem(
        app.get("/auth/me", &elsewhere.access).await,
        401,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.refresh(&elsewhere.refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(app.login(&here.email, NEW_PASSWORD).await.status(), 200);
    let mail = &wait_for_mails(&app, &here.email, 1).await[0];
    assert!(mail.contains("Subject: Your IMS password was changed"));
}

#[tokio::test]
async fn a_locked_account_owner_is_told_by_email() {
    let app = spawn_app_with(&[("IMS_LOGIN_MAX_FAILURES", "3")]).await;
    let (_, email) = app.create_user(&[Role::Manager]).await;
    for _ in 0..3 {
        app.login(&email, "Wrong-Password-1234!").await;
    }
    let mail = &wait_for_mails(&app, &email, 1).await[0];
    assert!(mail.contains("Subject: Sign-in to your IMS account was paused"));
    assert!(mail.contains("15 minutes"));
}
