//! The one-time-code journeys and password changes: `forgot-password` and `send-verification`
//! (queue a code request and answer `202` identically for every address), `verify-otp`,
//! `reset-password`, and `change-password` for a signed-in user. Codes never appear in a response,
//! a URL or a log line; only the email the worker sends carries them.

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::routing::post;
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{route, Access, Route, ANY_ROLE};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ClientIp, Identity};
use crate::app::AppState;
use crate::auth::audit::{self, kind, Event};
use crate::auth::otp::{self, Check, Purpose, RESET_TOKEN_TTL_SECS};
use crate::auth::throttle::Admission;
use crate::auth::{revocation, sessions};
use crate::mail::notify;
use crate::users::{self, accounts, email};

/// Wrong codes one client address may send per hour before `verify-otp` answers 429.
pub const OTP_FAILURES_PER_CLIENT_PER_HOUR: i64 = 50;

pub fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/auth/forgot-password",
            Access::Public,
            post(forgot_password),
        ),
        route(
            Method::POST,
            "/auth/send-verification",
            Access::Public,
            post(send_verification),
        ),
        route(
            Method::POST,
            "/auth/verify-otp",
            Access::Public,
            post(verify_otp),
        ),
        route(
            Method::POST,
            "/auth/reset-password",
            Access::Public,
            post(reset_password),
        ),
        route(
            Method::POST,
            "/auth/change-password",
            ANY_ROLE,
            post(change_password),
        ),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub message: &'static str,
}

const ACCEPTED: &str =
    "If an account uses this address, a code is on its way. It expires in 10 minutes.";

/// Email a password-reset code (if the account exists).
#[utoipa::path(post, path = "/auth/forgot-password", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Accepted), (status = 400, description = "Malformed email", body = Problem)))]
pub async fn forgot_password(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    request_code(&state, ip, &body.email, Purpose::PasswordReset).await
}

/// Email an email-verification code (if the account exists and is unverified).
#[utoipa::path(post, path = "/auth/send-verification", tag = "auth", request_body = EmailRequest,
    responses((status = 202, body = Accepted), (status = 400, description = "Malformed email", body = Problem)))]
pub async fn send_verification(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<EmailRequest>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    request_code(&state, ip, &body.email, Purpose::EmailVerification).await
}

/// The same database work whatever the address: count the client, queue the request.
async fn request_code(
    state: &AppState,
    ip: ClientIp,
    raw_email: &str,
    purpose: Purpose,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let email = (raw_email.len() <= 320)
        .then(|| email::normalize(raw_email))
        .flatten()
        .ok_or_else(|| ApiError::bad_request("invalid_email", "The email address is not valid."))?;
    let ip = ip.text();
    let mut tx = state.db.begin_write().await?;
    let requests = state
        .throttle
        .count_event(&mut tx, &format!("code-ip:{ip}"), 3600)
        .await?;
    if requests <= i64::from(state.config.auth.code_requests_per_client) {
        notify::request_code(&mut *tx, &email, purpose, &ip).await?;
    } else {
        tracing::info!(ip, "code requests over the per-client limit; dropped");
    }
    tx.commit().await?;
    state.notifier.wake.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Accepted { message: ACCEPTED })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyOtpRequest {
    pub email: String,
    /// The six digits from the email.
    pub otp: String,
    /// `password_reset` (default) or `email_verification`.
    pub purpose: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum VerifyOtpResponse {
    Reset {
        reset_token: String,
        /// Seconds.
        expires_in: i64,
    },
    Verified {
        email_verified: bool,
    },
}

fn invalid_otp() -> ApiError {
    ApiError::bad_request("invalid_otp", "The code is wrong, expired or already used.")
}

/// Check a one-time code.
#[utoipa::path(post, path = "/auth/verify-otp", tag = "auth", request_body = VerifyOtpRequest,
    responses((status = 200, body = VerifyOtpResponse),
              (status = 400, description = "Wrong, expired or used code (also for unknown emails)", body = Problem),
              (status = 429, body = Problem)))]
pub async fn verify_otp(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<VerifyOtpRequest>,
) -> ApiResult<Json<VerifyOtpResponse>> {
    let purpose = match body.purpose.as_deref() {
        None => Purpose::PasswordReset,
        Some(p) => Purpose::parse(p).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_purpose",
                "purpose must be password_reset or email_verification.",
            )
        })?,
    };
    let ip = ip.text();
    let fail_key = format!("otp-fail-ip:{ip}");
    // Count the attempt first (so parallel guesses cannot slip past); a success takes it back.
    {
        let mut tx = state.db.begin_write().await?;
        let tries = state.throttle.count_event(&mut tx, &fail_key, 3600).await?;
        tx.commit().await?;
        if tries > OTP_FAILURES_PER_CLIENT_PER_HOUR {
            return Err(ApiError::too_many_requests(600));
        }
    }
    let well_formed = body.otp.len() == 6 && body.otp.bytes().all(|b| b.is_ascii_digit());
    let email = (body.email.len() <= 320)
        .then(|| email::normalize(&body.email))
        .flatten();
    let mut tx = state.db.begin_write().await?;
    let user = match &email {
        Some(e) => users::by_email(&mut *tx, e).await?,
        None => None,
    };
    let check = match (&user, well_formed) {
        (Some(u), true) if !u.disabled => {
            otp::verify(&mut tx, &state.notifier.codes, &u.id, purpose, &body.otp).await?
        }
        _ => {
            let _ = state.notifier.codes.matches(purpose, "", &body.otp, "");
            Check::Invalid
        }
    };
    let Some(user) = user.filter(|_| check == Check::Valid) else {
        audit::record(
            &mut *tx,
            Event::new(kind::OTP_FAILED)
                .ip(Some(&ip))
                .detail(serde_json::json!({ "purpose": purpose.as_str() })),
        )
        .await?;
        tx.commit().await?;
        return Err(invalid_otp());
    };
    state.throttle.uncount(&mut tx, &fail_key).await?;
    audit::record(
        &mut *tx,
        Event::new(kind::OTP_USED)
            .subject(&user.id)
            .ip(Some(&ip))
            .detail(serde_json::json!({ "purpose": purpose.as_str() })),
    )
    .await?;
    let response = match purpose {
        Purpose::PasswordReset => {
            let token = otp::issue_reset_token(&mut tx, &user.id).await?;
            VerifyOtpResponse::Reset {
                reset_token: token.expose().to_owned(),
                expires_in: RESET_TOKEN_TTL_SECS,
            }
        }
        Purpose::EmailVerification => {
            sqlx::query("UPDATE users SET email_verified = 1, updated_at = $2 WHERE id = $1")
                .bind(&user.id)
                .bind(crate::clock::now())
                .execute(&mut *tx)
                .await?;
            VerifyOtpResponse::Verified {
                email_verified: true,
            }
        }
    };
    tx.commit().await?;
    state.users.forget(&user.id);
    Ok(Json(response))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub reset_token: String,
    #[schema(format = Password)]
    pub new_password: String,
}

fn invalid_reset_token() -> ApiError {
    ApiError::bad_request(
        "invalid_reset_token",
        "The reset link has expired or was already used; ask for a new code.",
    )
}

fn bounded_password(raw: String) -> ApiResult<SecretString> {
    if raw.len() > 1024 {
        return Err(ApiError::unprocessable(
            "weak_password",
            "password must be at most 128 characters",
        ));
    }
    Ok(SecretString::from(raw))
}

/// Set a new password with a reset token from `verify-otp`; signs the user out everywhere.
#[utoipa::path(post, path = "/auth/reset-password", tag = "auth", request_body = ResetPasswordRequest,
    responses((status = 204, description = "Password set; every session revoked"),
              (status = 400, description = "Unknown, expired or used reset token", body = Problem),
              (status = 422, description = "Weak password (the token stays usable)", body = Problem)))]
pub async fn reset_password(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let password = bounded_password(body.new_password)?;
    // Look the token up without using it: a weak password must not use it up.
    let mut tx = state.db.begin_write().await?;
    let owner = otp::reset_token_owner(&mut tx, &body.reset_token).await?;
    tx.rollback().await?;
    let user_id = owner.ok_or_else(invalid_reset_token)?;
    let user = users::by_id(state.db.pool(), &user_id)
        .await?
        .ok_or_else(invalid_reset_token)?;
    accounts::check_password_off_runtime(&password, &user.email, &user.name).await?;
    let hash = state.hasher.hash(&password).await?;

    let mut tx = state.db.begin_write().await?;
    if !otp::consume_reset_token(&mut tx, &body.reset_token).await? {
        tx.rollback().await?;
        return Err(invalid_reset_token());
    }
    sqlx::query(
        "UPDATE users SET password_hash = $2, email_verified = 1, updated_at = $3 WHERE id = $1",
    )
    .bind(&user.id)
    .bind(&hash)
    .bind(crate::clock::now())
    .execute(&mut *tx)
    .await?;
    otp::revoke_all(&mut tx, &user.id).await?;
    let revoked = sessions::revoke_all(&mut tx, &user.id, None, "password reset").await?;
    let version = revocation::user_changed(&mut tx, &user.id).await?;
    state.throttle.clear(&mut *tx, &user.email).await?;
    audit::record(
        &mut *tx,
        Event::new(kind::PASSWORD_RESET)
            .subject(&user.id)
            .ip(Some(&ip.text()))
            .detail(serde_json::json!({ "sessions_revoked": revoked.len() })),
    )
    .await?;
    state.notifier.send_password_changed(&mut tx, &user).await?;
    tx.commit().await?;
    state.revocations.note_user(&user.id, version);
    state.users.forget(&user.id);
    state.notifier.wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(format = Password)]
    pub current_password: String,
    #[schema(format = Password)]
    pub new_password: String,
}

/// Change the signed-in user's password; every other session is signed out.
#[utoipa::path(post, path = "/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed; other sessions revoked"),
              (status = 403, description = "The current password is wrong", body = Problem),
              (status = 422, description = "Weak new password", body = Problem),
              (status = 429, body = Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    identity: Identity,
    ip: ClientIp,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let current = bounded_password(body.current_password)?;
    let new = bounded_password(body.new_password)?;
    let ip = ip.text();
    let user = users::by_id(state.db.pool(), &identity.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "The account is no longer active.")
        })?;
    let attempt = match state.throttle.admit(&state.db, &user.email, &ip).await? {
        Admission::Proceed(attempt) => attempt,
        Admission::Refused(wait) => return Err(ApiError::too_many_requests(wait)),
    };
    let verified = state
        .hasher
        .verify(&current, user.password_hash.as_deref())
        .await?;
    if !verified.ok {
        let mut tx = state.db.begin_write().await?;
        state.throttle.failed(&mut tx, &user.email, attempt).await?;
        tx.commit().await?;
        return Err(ApiError::forbidden(
            "invalid_current_password",
            "The current password is not correct.",
        ));
    }
    state
        .throttle
        .succeeded(&state.db, &user.email, &ip)
        .await?;
    accounts::check_password_off_runtime(&new, &user.email, &user.name).await?;
    let hash = state.hasher.hash(&new).await?;
    let mut tx = state.db.begin_write().await?;
    otp::revoke_all(&mut tx, &user.id).await?;
    users::set_password_hash(&mut *tx, &user.id, &hash).await?;
    let revoked = sessions::revoke_all(
        &mut tx,
        &user.id,
        Some(&identity.session_id),
        "password changed",
    )
    .await?;
    audit::record(
        &mut *tx,
        Event::new(kind::PASSWORD_CHANGED)
            .actor(&user.id)
            .subject(&user.id)
            .ip(Some(&ip))
            .detail(serde_json::json!({ "other_sessions_revoked": revoked.len() })),
    )
    .await?;
    state.notifier.send_password_changed(&mut tx, &user).await?;
    tx.commit().await?;
    // Apply the session revocations here at once (other instances poll).
    for session_id in &revoked {
        state.revocations.note_session(session_id);
    }
    state.notifier.wake.notify_one();
    Ok(StatusCode::NO_CONTENT)
}
