//! The one error type at the HTTP edge. Client errors are RFC 9457 problem details with a stable
//! `code`; anything else becomes `500 internal` with a fixed body, its cause chain logged (the log
//! line carries the request id) and never sent. An unreachable database is `503 unavailable`.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::users::accounts::AccountError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// RFC 9457 problem details, as every error response carries them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:ims:problem:<code>`
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code, e.g. `invalid_credentials`.
    pub code: String,
    pub detail: String,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: Cow<'static, str>,
    retry_after: Option<u64>,
    source: Option<anyhow::Error>,
    /// Set when the connection to the database failed: the response then carries
    /// [`DatabaseUnreachable`], so the fail-fast middleware marks the database down.
    unreachable: bool,
}

/// Response extension: this request found the database unreachable.
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            source: None,
            unreachable: false,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "No such resource.")
    }

    pub fn conflict(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unprocessable(code: &'static str, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many attempts; try again later.",
            )
        }
    }

    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "The service is temporarily unavailable; try again shortly.",
            )
        }
    }

    pub fn internal(source: anyhow::Error) -> Self {
        Self {
            source: Some(source),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "An unexpected error occurred.",
            )
        }
    }

    /// `507`: the disk under the database or the document store is full. Nothing was written.
    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "The server's storage is full, so nothing was saved; tell your administrator.",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        if matches!(&err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c == "22021" || c == "22P05"))
        {
            // PostgreSQL refuses NUL bytes and invalid encodings in text: the client's input.
            return Self::bad_request(
                "invalid_characters",
                "The request contains characters that cannot be stored.",
            );
        }
        if crate::db::is_storage_full(&err) {
            tracing::error!(error = %crate::db::describe(&err), "database storage is full");
            return Self::storage_full();
        }
        if crate::db::is_unavailable(&err) {
            tracing::warn!(error = %crate::db::describe(&err), "database unavailable");
            Self {
                unreachable: crate::db::health::is_connection_failure(&err),
                ..Self::unavailable()
            }
        } else {
            Self::internal(err.into())
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        match err.downcast::<sqlx::Error>() {
            Ok(db) => db.into(),
            Err(other) => Self::internal(other),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let detail = err.to_string();
        match err {
            AccountError::InvalidEmail => Self::unprocessable("invalid_email", detail),
            AccountError::InvalidName => Self::unprocessable("invalid_name", detail),
            AccountError::NoRoles => Self::unprocessable("invalid_roles", detail),
            AccountError::WeakPassword(_) => Self::unprocessable("weak_password", detail),
            AccountError::DuplicateEmail => Self::conflict("email_taken", detail),
            AccountError::NotFound => Self::not_found(),
            AccountError::ManagedByProvider => Self::conflict("managed_by_provider", detail),
            AccountError::LastAdmin => Self::conflict(
                "last_admin",
                "The last active ADMIN cannot be demoted or disabled.",
            ),
            AccountError::Database(e) => e.into(),
            AccountError::Other(e) => e.into(),
        }
    }
}

impl From<crate::production::ProdError> for ApiError {
    fn from(err: crate::production::ProdError) -> Self {
        use crate::production::ProdError as E;
        match err {
            E::NotFound => Self::not_found(),
            E::Invalid(code, detail) => Self::unprocessable(code, detail),
            E::Conflict(code, detail) => Self::conflict(code, detail),
            E::Stale(current) => Self::conflict(
                "stale_version",
                format!(
                    "It was changed by someone else (now version {current}); reload and try again."
                ),
            ),
            E::Unavailable => Self::unavailable(),
            E::StorageFull => Self::storage_full(),
            E::Database(e) => e.into(),
            E::Other(e) => e.into(),
        }
    }
}

/// Builds a problem response for any status (also used for errors raised outside handlers).
pub fn problem_response(status: StatusCode, code: &str, detail: &str) -> Response {
    let body = Problem {
        kind: format!("urn:ims:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        code: code.to_owned(),
        detail: detail.to_owned(),
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        let challenge = if code == "invalid_token" {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        };
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = format!("{source:#}"), "internal error");
        }
        let mut response = problem_response(self.status, self.code, &self.detail);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.unreachable {
            response.extensions_mut().insert(DatabaseUnreachable);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_the_contract_statuses() {
        let cases: Vec<(AccountError, StatusCode, &str)> = vec![
            (
                AccountError::InvalidEmail,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
            ),
            (
                AccountError::DuplicateEmail,
                StatusCode::CONFLICT,
                "email_taken",
            ),
            (AccountError::NotFound, StatusCode::NOT_FOUND, "not_found"),
            (AccountError::LastAdmin, StatusCode::CONFLICT, "last_admin"),
            (
                AccountError::WeakPassword(crate::auth::password_policy::WeakPassword::TooShort),
                StatusCode::UNPROCESSABLE_ENTITY,
                "weak_password",
            ),
            (
                AccountError::Database(sqlx::Error::PoolTimedOut),
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
            ),
            (
                AccountError::Database(sqlx::Error::RowNotFound),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let api: ApiError = err.into();
            assert_eq!((api.status(), api.code()), (status, code));
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let api = ApiError::internal(anyhow::anyhow!("SELECT secret FROM /etc/passwd"));
        let response = api.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    }
}
