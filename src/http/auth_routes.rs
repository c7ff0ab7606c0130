//! `/auth/*` and the JWKS: login, refresh-token rotation, logout, the caller's profile. Login runs
//! the throttle check first, then Argon2 verification (a dummy one for unknown emails), and answers
//! one identical `401` for every kind of bad credentials. The refresh token goes out in the body
//! and in an `HttpOnly`, `SameSite=Strict` cookie scoped to `/auth`; using the cookie requires an
//! `Origin` equal to the public URL's.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::access::{route, Access, Route, ANY_ROLE};
use super::error::{ApiError, ApiResult, Problem};
use super::extract::{ApiJson, ClientIp, Identity};
use crate::app::AppState;
use crate::auth::audit::{self, kind, Event};
use crate::auth::sessions::{self, RefreshToken, Rotation};
use crate::auth::throttle::Admission;
use crate::users::{self, email, UserView};

pub const REFRESH_COOKIE: &str = "ims_refresh";
const MAX_EMAIL_INPUT: usize = 320;
const MAX_PASSWORD_INPUT: usize = 1024;

pub fn routes() -> Vec<Route> {
    vec![
        route(Method::POST, "/auth/login", Access::Public, post(login)),
        route(Method::POST, "/auth/refresh", Access::Public, post(refresh)),
        route(Method::POST, "/auth/logout", Access::Public, post(logout)),
        route(Method::GET, "/auth/me", ANY_ROLE, get(me)),
        route(
            Method::GET,
            "/.well-known/jwks.json",
            Access::Public,
            get(jwks),
        ),
        route(
            Method::GET,
            "/auth/oidc/config",
            Access::Public,
            get(oidc_config),
        ),
    ]
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    pub user: UserView,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

fn bad_credentials() -> ApiError {
    ApiError::unauthorized("invalid_credentials", "The email or password is incorrect.")
}

/// Sign in with email and password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 400, description = "Malformed body", body = Problem),
        (status = 401, description = "Wrong password, unknown email or disabled account", body = Problem),
        (status = 403, description = "Email not verified (after a correct password)", body = Problem),
        (status = 429, description = "Too many failures for this email or client", body = Problem),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    ApiJson(body): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    if body.email.len() > MAX_EMAIL_INPUT || body.password.len() > MAX_PASSWORD_INPUT {
        return Err(ApiError::bad_request(
            "invalid_body",
            "A field is too long.",
        ));
    }
    let normalized = email::normalize(&body.email);
    // A string that is no address still gets a throttle key (so it locks like any other), but is
    // never looked up.
    let email = normalized
        .clone()
        .unwrap_or_else(|| body.email.trim().to_lowercase());
    let ip_text = ip.text();
    let attempt = match state.throttle.admit(&state.db, &email, &ip_text).await? {
        Admission::Proceed(attempt) => attempt,
        Admission::Refused(wait) => {
            state.metrics.login("throttled");
            return Err(ApiError::too_many_requests(wait));
        }
    };
    let password = SecretString::from(body.password);
    let user = match &normalized {
        Some(e) => users::by_email(state.db.pool(), e).await?,
        None => None,
    };
    let verified = state
        .hasher
        .verify(
            &password,
            user.as_ref().and_then(|u| u.password_hash.as_deref()),
        )
        .await?;
    let user = match user {
        Some(u) if verified.ok && !u.disabled => u,
        other => {
            let reason = match &other {
                None => "unknown_email",
                Some(u) if u.disabled => "disabled",
                Some(_) => "wrong_password",
            };
            let subject = other.as_ref().map(|u| u.id.clone());
            let mut tx = state.db.begin_write().await?;
            let failure = state.throttle.failed(&mut tx, &email, attempt).await?;
            let mut event = Event::new(kind::LOGIN_FAILED)
                .ip(Some(&ip_text))
                .detail(serde_json::json!({ "reason": reason }));
            if let Some(id) = &subject {
                event = event.subject(id);
            }
            audit::record(&mut *tx, event).await?;
            if failure.locked_now {
                let mut event = Event::new(kind::LOGIN_LOCKED).ip(Some(&ip_text)).detail(
                    serde_json::json!({ "lock_seconds": state.config.auth.login_lock_duration.as_secs() }),
                );
                if let Some(id) = &subject {
                    event = event.subject(id);
                }
                audit::record(&mut *tx, event).await?;
                // The owner of an existing, active account is told.
                if let Some(owner) = other.as_ref().filter(|u| !u.disabled) {
                    state
                        .notifier
                        .send_account_locked(
                            &mut tx,
                            owner,
                            state.config.auth.login_lock_duration.as_secs().div_ceil(60),
                        )
                        .await?;
                }
            }
            tx.commit().await?;
            state.metrics.login(if failure.locked_now {
                "locked"
            } else {
                "failed"
            });
            return Err(bad_credentials());
        }
    };
    if !user.email_verified {
        state
            .throttle
            .succeeded(&state.db, &email, &ip_text)
            .await?;
        state.metrics.login("unverified");
        return Err(ApiError::forbidden(
            "email_not_verified",
            "Verify your email address before signing in; ask for a verification code.",
        ));
    }
    let new_hash = if verified.needs_rehash {
        Some(state.hasher.hash(&password).await?)
    } else {
        None
    };
    state
        .throttle
        .succeeded(&state.db, &email, &ip_text)
        .await?;
    let mut tx = state.db.begin_write().await?;
    if let Some(hash) = &new_hash {
        users::set_password_hash(&mut *tx, &user.id, hash).await?;
    }
    let (session_id, refresh) = sessions::start(&mut tx, &user.id, state.lifetimes).await?;
    audit::record(
        &mut *tx,
        Event::new(kind::LOGIN_OK)
            .actor(&user.id)
            .subject(&user.id)
            .ip(Some(&ip_text))
            .detail(
                serde_json::json!({ "session_id": session_id, "rehashed": new_hash.is_some() }),
            ),
    )
    .await?;
    tx.commit().await?;
    state.metrics.login("ok");
    token_response(&state, &user, &session_id, refresh, StatusCode::OK)
}

fn token_response(
    state: &AppState,
    user: &users::User,
    session_id: &str,
    refresh: RefreshToken,
    status: StatusCode,
) -> ApiResult<Response> {
    let (access, _) = state
        .tokens
        .issue(&user.id, &user.roles, session_id, user.auth_version)?;
    let body = TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token: refresh.expose().to_owned(),
        user: UserView::from(user),
    };
    let mut response = (status, Json(body)).into_response();
    let cookie = refresh_cookie(state, Some(refresh.expose()));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The refresh cookie (or, with `None`, the header that deletes it).
fn refresh_cookie(state: &AppState, token: Option<&str>) -> String {
    let max_age = match token {
        Some(_) => state.lifetimes.absolute.as_secs(),
        None => 0,
    };
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    format!(
        "{REFRESH_COOKIE}={}; Path=/auth; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        token.unwrap_or("")
    )
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == REFRESH_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

/// Parses an optional JSON body: empty means `T::default()`.
fn optional_json<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ));
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "invalid_body",
            "The body does not match the expected shape.",
        )
    })
}

/// Exchange a refresh token for a new access token and a new refresh token.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "Rotated", body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or already-used token", body = Problem),
        (status = 403, description = "Cookie used without the app's Origin", body = Problem),
    ))]
pub async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let request: RefreshRequest = optional_json(&headers, &body)?;
    let presented = match request.refresh_token {
        Some(token) => token,
        None => {
            let token = cookie_token(&headers).ok_or_else(invalid_refresh)?;
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            if origin != Some(state.public_origin.as_str()) {
                return Err(ApiError::forbidden(
                    "invalid_origin",
                    "The refresh cookie may only be used from the IMS web app.",
                ));
            }
            token
        }
    };
    // Unknown tokens are refused without taking the write lock.
    if !sessions::exists(state.db.pool(), &presented).await? {
        return Err(invalid_refresh());
    }
    let mut tx = state.db.begin_write().await?;
    let outcome = sessions::rotate(&mut tx, &presented, state.lifetimes).await?;
    match outcome {
        Rotation::Rotated {
            holder,
            session_id,
            token,
        } => {
            tx.commit().await?;
            let user = users::by_id(state.db.pool(), &holder.user_id)
                .await?
                .ok_or_else(invalid_refresh)?;
            token_response(&state, &user, &session_id, token, StatusCode::OK)
        }
        Rotation::Reused {
            user_id,
            session_id,
        } => {
            audit::record(
                &mut *tx,
                Event::new(kind::REFRESH_REUSE)
                    .subject(&user_id)
                    .ip(Some(&ip.text()))
                    .detail(serde_json::json!({ "session_id": session_id })),
            )
            .await?;
            tx.commit().await?;
            state.revocations.note_session(&session_id);
            state.metrics.refresh_reuse();
            tracing::warn!(session_id, "refresh token reuse; session revoked");
            Err(invalid_refresh())
        }
        Rotation::Refused => {
            tx.rollback().await?;
            Err(invalid_refresh())
        }
    }
}

fn invalid_refresh() -> ApiError {
    ApiError::unauthorized(
        "invalid_refresh_token",
        "The session has ended; sign in again.",
    )
}

/// End the session: by refresh token (body or cookie) or by the access token's session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", request_body = RefreshRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Session revoked (also when it already was)"),
        (status = 401, description = "No credentials, or an invalid access token", body = Problem),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let request: RefreshRequest = optional_json(&headers, &body)?;
    let refresh = request.refresh_token.or_else(|| cookie_token(&headers));
    let mut tx = state.db.begin_write().await?;
    let target = match refresh {
        Some(token) => sessions::find(&mut tx, &token).await?,
        None if headers.contains_key(header::AUTHORIZATION) => {
            let identity = super::access::authenticate(&state, &headers)?;
            Some((identity.session_id, identity.user_id))
        }
        None => {
            return Err(ApiError::unauthorized(
                "unauthenticated",
                "Send the refresh token or an access token.",
            ))
        }
    };
    if let Some((session_id, user_id)) = &target {
        sessions::revoke(&mut tx, user_id, session_id, "logout").await?;
        audit::record(
            &mut *tx,
            Event::new(kind::LOGOUT)
                .actor(user_id)
                .subject(user_id)
                .ip(Some(&ip.text()))
                .detail(serde_json::json!({ "session_id": session_id })),
        )
        .await?;
    }
    tx.commit().await?;
    if let Some((session_id, _)) = &target {
        state.revocations.note_session(session_id);
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&refresh_cookie(&state, None)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The signed-in user.
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserView),
        (status = 401, description = "Not signed in", body = Problem),
    ))]
pub async fn me(State(state): State<AppState>, identity: Identity) -> ApiResult<Json<UserView>> {
    let user = state
        .users
        .get(&state.db, &identity.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "The account is no longer active.")
        })?;
    let mut view = UserView::from(user.as_ref());
    // An identity provider's user holds the roles its groups grant now.
    view.roles = identity.roles;
    Ok(Json(view))
}

/// Whether the web app should offer sign-in with the external identity provider, and how
/// (authorization code with PKCE).
#[utoipa::path(get, path = "/auth/oidc/config", tag = "auth",
    responses((status = 200, body = crate::auth::oidc::PublicConfig)))]
pub async fn oidc_config(State(state): State<AppState>) -> Json<crate::auth::oidc::PublicConfig> {
    Json(match &state.oidc {
        Some(oidc) => oidc.public_config(),
        None => crate::auth::oidc::PublicConfig {
            enabled: false,
            issuer: None,
            client_id: None,
            discovery_url: None,
            flow: None,
        },
    })
}

/// Public keys that verify IMS access tokens.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "JSON Web Key Set", body = Object)))]
pub async fn jwks(State(state): State<AppState>) -> Response {
    let mut response = Json(state.tokens.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
