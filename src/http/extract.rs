//! Request extractors whose failures are problem details: JSON bodies (malformed → 400, unknown
//! fields → 400, wrong content type → 415, too large → 413), query strings (400), the client's
//! address (as resolved by the client-address middleware) and the authenticated identity (set by
//! the per-route access guard; a handler reached without one answers 401).

use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::auth::roles::Role;

/// A JSON body; rejections become problem details.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the body as application/json.",
        ),
        JsonRejection::JsonDataError(e) => {
            ApiError::bad_request("invalid_body", body_detail(&e.body_text()))
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("malformed_body", "The body is not valid JSON.")
        }
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "The body is too large.",
            )
        }
        _ => ApiError::bad_request("malformed_body", "The body could not be read."),
    }
}

/// serde's message names the offending field and what was expected, without echoing values;
/// keep only that part and bound its length.
fn body_detail(text: &str) -> String {
    let core = text.split_once(": ").map(|(_, rest)| rest).unwrap_or(text);
    let core = core.split(" at line ").next().unwrap_or(core);
    // serde quotes offending string values; never echo them (they may be passwords).
    let mut detail = String::new();
    for (i, part) in core.split('"').enumerate() {
        detail.push_str(if i % 2 == 1 { "…" } else { part });
    }
    let mut detail: String = detail.chars().take(200).collect();
    detail.insert_str(0, "The body does not match the expected shape: ");
    detail
}

/// A query string; rejections become `400 invalid_query`.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(_)) | Err(_) => {
                Err(ApiError::bad_request(
                    "invalid_query",
                    "The query string is not valid for this route.",
                ))
            }
        }
    }
}

/// The client's address: the socket peer, or the forwarded address when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn text(&self) -> String {
        self.0.to_string()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("client address middleware missing")))
    }
}

/// The authenticated caller, from a verified, unrevoked access token.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub roles: Vec<Role>,
    pub session_id: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Identity>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "Sign in to use this route."))
    }
}
