//! Mail through Amazon SES (v2 `SendEmail`, raw MIME) against `moto_server`: the message is read
//! back from the stand-in's sent-mail record and its code works; with the stand-in gone the mail
//! waits in the outbox and goes out once it returns; a message SES rejects fails at once.

use std::time::Duration;

use ims::auth::roles::Role;
use serde_json::Value;

use crate::helpers::*;
use crate::mail::{forgot, mail_rows, settle, verify, Mail};
use crate::moto::Moto;

const SENDER: &str = "no-reply@factory.example";

fn ses_settings(moto: &Moto) -> Vec<(&'static str, String)> {
    vec![
        ("IMS_MAIL_TRANSPORT", "ses".into()),
        ("IMS_MAIL_FROM", format!("IMS <{SENDER}>")),
        ("IMS_AWS_ENDPOINT_URL", moto.endpoint.clone()),
    ]
}

async fn spawn_with(settings: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_app_with(&pairs).await
}

/// The messages SES accepted, as moto records them: (source, destinations, raw MIME).
async fn sent(moto: &Moto) -> Vec<(String, Vec<String>, String)> {
    let data: Value = reqwest::get(format!("{}/moto-api/data.json", moto.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            (
                m["source"].as_str().unwrap_or_default().to_owned(),
                m["destinations"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_str().unwrap().to_owned())
                    .collect(),
                m["raw_data"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Waits for SES to have accepted a message for `to`; returns it parsed.
async fn wait_for_mail(moto: &Moto, to: &str, within: Duration) -> Mail {
    let found = eventually(within, || async move {
        sent(moto)
            .await
            .iter()
            .any(|(_, d, _)| d.iter().any(|x| x == to))
    })
    .await;
    assert!(found, "SES received no mail for {to} within {within:?}");
    let all = sent(moto).await;
    let mine: Vec<_> = all
        .iter()
        .filter(|(_, d, _)| d.iter().any(|x| x == to))
        .collect();
    assert_eq!(mine.len(), 1, "exactly one mail for {to}");
    let (source, _, raw) = mine[0];
    assert_eq!(source, SENDER);
    Mail::parse("ses", raw.as_bytes())
}

#[tokio::test]
async fn reset_codes_go_out_through_ses_and_wait_out_an_outage() {
    let moto = Moto::start().await;
    moto.run("secret_store.py", &["verify", SENDER], "").await;
    let app = spawn_with(&ses_settings(&moto)).await;

    let (_, email) = app.create_user(&[Role::LineLeader]).await;
    forgot(&app.client, &app.base, &email).await;
    let mail = wait_for_mail(&moto, &email, Duration::from_secs(20)).await;
    assert_eq!(mail.subject(), "Your IMS password reset code");
    assert_eq!(mail.header("To"), Some(email.as_str()));
    verify(&app.client, &app.base, &email, &mail.code()).await;
    settle(&app.state.db, Duration::from_secs(10)).await;

    // The stand-in goes away: the next mail waits in the outbox with the reason, then goes out.
    let port = moto.port();
    drop(moto);
    let (_, second) = app.create_user(&[Role::LineLeader]).await;
    forgot(&app.client, &app.base, &second).await;
    let deferred = eventually(Duration::from_secs(20), || async {
        mail_rows(&app.state.db).await.iter().any(|r| {
            r.recipient == second
                && r.status == "pending"
                && r.attempts >= 1
                && r.last_error.as_deref() == Some("cannot reach SES")
        })
    })
    .await;
    assert!(
        deferred,
        "the mail is deferred: {:?}",
        mail_rows(&app.state.db).await
    );

    let moto = Moto::start_on(port).await;
    moto.run("secret_store.py", &["verify", SENDER], "").await;
    let mail = wait_for_mail(&moto, &second, Duration::from_secs(40)).await;
    verify(&app.client, &app.base, &second, &mail.code()).await;
    settle(&app.state.db, Duration::from_secs(10)).await;
    for row in mail_rows(&app.state.db).await {
        assert_eq!(row.status, "sent", "{row:?}");
    }
}

#[tokio::test]
async fn a_message_ses_rejects_fails_at_once_and_is_visible_to_admins() {
    let moto = Moto::start().await;
    // No verified identity: SES rejects the message (MessageRejected), as it rejects a
    // recipient in the sandbox. Retrying cannot help.
    let app = spawn_with(&ses_settings(&moto)).await;
    let admin = app.login_as(&[Role::Admin]).await;
    let (_, email) = app.create_user(&[Role::LineLeader]).await;
    forgot(&app.client, &app.base, &email).await;
    let failed = eventually(Duration::from_secs(20), || async {
        mail_rows(&app.state.db)
            .await
            .iter()
            .any(|r| r.recipient == email && r.status == "failed")
    })
    .await;
    assert!(failed, "{:?}", mail_rows(&app.state.db).await);
    let rows = mail_rows(&app.state.db).await;
    let row = rows.iter().find(|r| r.recipient == email).unwrap();
    assert_eq!(row.attempts, 1, "a permanent failure is not retried");
    assert_eq!(
        row.last_error.as_deref(),
        Some("SES refused the message (MessageRejected)")
    );
    assert!(sent(&moto).await.is_empty());
    let audit = app.audit(&admin.access, "mail_failed").await;
    assert_eq!(audit.len(), 1, "{audit:?}");
}
