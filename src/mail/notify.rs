//! What IMS tells users by email, queued in the caller's transaction: one-time codes (requested,
//! or sent when an admin creates an account), password-changed notices, and the account-locked
//! notice. Code requests from the public endpoints are queued as jobs and fulfilled here by the
//! worker, which decides whether the account exists, is active and is under its hourly limit —
//! so the endpoint does the same work, in the same time, for every address.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use tokio::sync::Notify;
use url::Url;

use super::outbox::{self, Sealer};
use super::templates::{self, CodeReason, Rendered};
use super::MailContent;
use crate::auth::audit::{self, kind, Event};
use crate::auth::otp::{self, CodeHasher, Purpose};
use crate::users::User;

/// Codes one address may be sent per hour.
pub const CODES_PER_ADDRESS_PER_HOUR: i64 = 5;

pub struct Notifier {
    pub codes: CodeHasher,
    pub sealer: Sealer,
    pub public_url: Url,
    /// Wakes the delivery worker when something was queued.
    pub wake: Notify,
}

impl Notifier {
    async fn queue(
        &self,
        tx: &mut Transaction<'static, Any>,
        to: &str,
        r: Rendered,
    ) -> anyhow::Result<()> {
        let content = MailContent {
            to: to.to_owned(),
            subject: r.subject,
            text: r.text,
            html: r.html,
        };
        outbox::enqueue_mail(tx, &self.sealer, r.template, &content).await?;
        Ok(())
    }

    /// Queues a notice (no secret inside) to one address.
    pub async fn send_notice(
        &self,
        tx: &mut Transaction<'static, Any>,
        to: &str,
        r: Rendered,
    ) -> anyhow::Result<()> {
        self.queue(tx, to, r).await
    }

    /// Issues a code (replacing the previous one) and queues the mail carrying it.
    pub async fn send_code(
        &self,
        tx: &mut Transaction<'static, Any>,
        user: &User,
        purpose: Purpose,
        reason: CodeReason,
        ip: Option<&str>,
    ) -> anyhow::Result<()> {
        let code = otp::issue(tx, &self.codes, &user.id, purpose).await?;
        let rendered = templates::code(purpose, reason, code.expose(), &self.public_url);
        let template = rendered.template;
        // The previous code is dead: so is its mail, if it has not gone out yet.
        outbox::drop_pending(tx, &user.email, template).await?;
        self.queue(tx, &user.email, rendered).await?;
        audit::record(
            &mut **tx,
            Event::new(kind::OTP_SENT)
                .subject(&user.id)
                .ip(ip)
                .detail(serde_json::json!({ "purpose": purpose.as_str(), "template": template })),
        )
        .await?;
        Ok(())
    }

    pub async fn send_password_changed(
        &self,
        tx: &mut Transaction<'static, Any>,
        user: &User,
    ) -> anyhow::Result<()> {
        self.queue(
            tx,
            &user.email,
            templates::password_changed(&user.name, &self.public_url),
        )
        .await
    }

    pub async fn send_account_locked(
        &self,
        tx: &mut Transaction<'static, Any>,
        user: &User,
        lock_minutes: u64,
    ) -> anyhow::Result<()> {
        self.queue(
            tx,
            &user.email,
            templates::account_locked(&user.name, lock_minutes, &self.public_url),
        )
        .await
    }
}

/// The payload of a queued code request.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeRequest {
    pub email: String,
    pub purpose: String,
    pub ip: Option<String>,
}

/// Queues a code request (the public endpoints' only database write besides the client counter).
pub async fn request_code<'e, E>(
    exec: E,
    email: &str,
    purpose: Purpose,
    ip: &str,
) -> anyhow::Result<()>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let payload = serde_json::to_string(&CodeRequest {
        email: email.to_owned(),
        purpose: purpose.as_str().to_owned(),
        ip: Some(ip.to_owned()),
    })?;
    outbox::insert(
        exec,
        &uuid::Uuid::now_v7().to_string(),
        outbox::KIND_CODE_REQUEST,
        purpose.as_str(),
        email,
        &payload,
    )
    .await?;
    Ok(())
}

/// Decides a code request inside the worker's transaction: a code goes out only to an active
/// account (unverified, for email verification) under its hourly limit. Returns whether one did.
pub async fn fulfil_code_request(
    tx: &mut Transaction<'static, Any>,
    notifier: &Notifier,
    throttle: &crate::auth::throttle::Throttle,
    payload: &str,
) -> anyhow::Result<bool> {
    let request: CodeRequest = serde_json::from_str(payload)?;
    let Some(purpose) = Purpose::parse(&request.purpose) else {
        return Ok(false);
    };
    let Some(user) = crate::users::by_email(&mut **tx, &request.email).await? else {
        return Ok(false);
    };
    let wanted = !user.disabled
        && match purpose {
            Purpose::PasswordReset => true,
            Purpose::EmailVerification => !user.email_verified,
        };
    if !wanted {
        return Ok(false);
    }
    let sent = throttle
        .count_event(tx, &format!("code-email:{}", user.id), 3600)
        .await?;
    if sent > CODES_PER_ADDRESS_PER_HOUR {
        tracing::info!(user_id = %user.id, "code request over the hourly limit; not sent");
        return Ok(false);
    }
    notifier
        .send_code(
            tx,
            &user,
            purpose,
            CodeReason::Requested,
            request.ip.as_deref(),
        )
        .await?;
    Ok(true)
}
