//! Paging parameters shared by the list routes: the `limit` bounds and opaque base64 cursors.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::error::{ApiError, ApiResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// `limit` from a query string: 1 to 200, default 50.
pub fn limit(raw: Option<i64>) -> ApiResult<i64> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 200.",
        )),
    }
}

pub fn decode_cursor(raw: &str) -> ApiResult<String> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| s.len() <= 64)
        .ok_or_else(|| ApiError::bad_request("invalid_cursor", "The cursor is not valid."))
}

pub fn encode_cursor(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(value)
}
