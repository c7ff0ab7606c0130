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
        // Bodies are JSON objects: serde's derive would also read an array as a struct.
        let (parts, body) = req.into_parts();
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|e| json_rejection(JsonRejection::BytesRejection(e)))?;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let is_json = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"));
        let not_an_object = is_json
            && first.is_some_and(|b| *b != b'{')
            && serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok();
        if not_an_object {
            return Err(ApiError::bad_request(
                "invalid_body",
                "The body must be a JSON object.",
            ));
        }
        if has_nul_escape(&bytes) {
            // PostgreSQL cannot store U+0000 in text; refuse it on every backend alike.
            return Err(ApiError::bad_request(
                "invalid_characters",
                "The request contains characters that cannot be stored.",
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// True when the JSON text escapes U+0000 (`\u0000`) in a string: an escape is a backslash
/// preceded by an even number of backslashes (`\\u0000` is the text `\u0000`, not a NUL). A raw
/// NUL byte is not valid JSON and fails parsing anyway.
fn has_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(6).enumerate().any(|(i, w)| {
        w[0] == b'\\'
            && w[1] == b'u'
            && w[2..].iter().all(|b| *b == b'0')
            && bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0
    })
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

/// Rebuilds serde's message from the parts that come from our schema (the field path, the kind
/// of error, what was expected), so no submitted value is ever echoed, however it is quoted.
fn body_detail(text: &str) -> String {
    const KINDS: &[&str] = &[
        "unknown field",
        "unknown variant",
        "missing field",
        "duplicate field",
        "invalid type",
        "invalid value",
        "invalid length",
    ];
    let plain = |s: &str, extra: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || extra.contains(c))
    };
    // axum: "Failed to deserialize the JSON body into the target type: <path>: <message> at line …"
    let core = text.split_once(": ").map_or(text, |(_, rest)| rest);
    let core = core.rsplit_once(" at line ").map_or(core, |(head, _)| head);
    let (path, message) = match core.split_once(": ") {
        Some((p, m)) if plain(p, "[].") => (Some(p), m),
        _ => (None, core),
    };
    let mut detail = String::from("The body does not match the expected shape");
    if let Some(p) = path {
        detail.push_str(&format!(" at `{p}`"));
    }
    if let Some(kind) = KINDS.iter().find(|k| message.starts_with(**k)) {
        detail.push_str(&format!(": {kind}"));
        // Field names of missing/unknown/duplicate fields are identifiers; keep them if plain.
        if kind.ends_with("field") {
            let name = message[kind.len()..]
                .trim()
                .trim_start_matches('`')
                .split('`')
                .next()
                .unwrap_or("");
            if plain(name, "") {
                detail.push_str(&format!(" `{name}`"));
            }
        }
        // What was expected comes from our types, never from the client.
        if let Some((_, expected)) = message.rsplit_once(", expected ") {
            let expected: String = expected.chars().take(160).collect();
            detail.push_str(&format!(", expected {expected}"));
        }
    }
    detail.push('.');
    detail
}

#[cfg(test)]
mod tests {
    use super::{
        body_detail, has_nul_escape, parse_idempotency_key, parse_if_match,
        IDEMPOTENCY_KEY_PATTERN, IF_MATCH_PATTERN,
    };

    /// Every string of up to `len` characters from `alphabet`.
    fn strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut cases = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..len {
            last = last
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            cases.extend(last.iter().cloned());
        }
        cases
    }

    #[test]
    fn idempotency_keys_are_taken_exactly_as_the_document_allows() {
        let pattern = regex_lite::Regex::new(IDEMPOTENCY_KEY_PATTERN).unwrap();
        let mut cases = strings(&['"', 'a', 'Z', '7', '-', ':', ' ', '/', '*', 'é'], 4);
        let uuid = "8e03978e-40d5-43e8-bc93-6894a57f9324";
        cases.extend([
            uuid.to_owned(),
            format!("\"{uuid}\""),
            "k".repeat(64),
            "k".repeat(65),
        ]);
        for case in &cases {
            let parsed = parse_idempotency_key(case);
            assert_eq!(parsed.is_some(), pattern.is_match(case), "{case:?}");
            if let Some(key) = parsed {
                assert!(!key.contains('"') && case.contains(&key), "{case:?}");
            }
        }
        assert_eq!(
            parse_idempotency_key(&format!("\"{uuid}\"")).as_deref(),
            Some(uuid)
        );
        assert_eq!(parse_idempotency_key(&"k".repeat(65)), None);
    }

    #[test]
    fn if_match_takes_exactly_what_the_document_allows() {
        let pattern = regex_lite::Regex::new(IF_MATCH_PATTERN).unwrap();
        // Every string of up to five characters from the ones that matter, and a few longer ones.
        let mut cases = strings(&['W', '/', '"', '0', '1', '9', '*', '+', '-', ' ', 'x'], 5);
        cases.extend(
            [
                "W/\"123456789012345678\"",
                "\"1234567890123456789\"",
                "9223372036854775807",
            ]
            .map(String::from),
        );
        let mut accepted = 0;
        for case in &cases {
            let parsed = parse_if_match(case);
            assert_eq!(parsed.is_some(), pattern.is_match(case), "{case:?}");
            if let Some(Some(version)) = parsed {
                assert!(case.contains(&version.to_string()), "{case:?}");
                accepted += 1;
            }
        }
        assert!(accepted > 100, "{accepted}");
        assert_eq!(parse_if_match("*"), Some(None));
        assert_eq!(parse_if_match("W/\"12\""), Some(Some(12)));
        for refused in ["\"+3\"", "\"03\"", "\"\"3\"\"", "3 ", "", "\"\""] {
            assert_eq!(parse_if_match(refused), None, "{refused:?}");
        }
    }

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        for (json, nul) in [
            (r#"{"a":"x\u0000y"}"#, true),
            (r#"{"a":"\u0000"}"#, true),
            (r#"{"a":"\\\u0000"}"#, true),
            (r#"{"a":"\\u0000"}"#, false),
            (r#"{"a":"\u0001"}"#, false),
            (r#"{"a":"u0000"}"#, false),
        ] {
            assert_eq!(has_nul_escape(json.as_bytes()), nul, "{json}");
        }
    }

    #[test]
    fn submitted_values_are_never_echoed() {
        let prefix = "Failed to deserialize the JSON body into the target type: ";
        for (message, want) in [
            ("disabled: invalid type: string \"a\\\"Canary\\\"b\", expected a boolean at line 1 column 9",
             "The body does not match the expected shape at `disabled`: invalid type, expected a boolean."),
            ("roles[0]: unknown variant `Canary-role`, expected one of `ADMIN`, `MANAGER`, `LINE_LEADER` at line 1 column 9",
             "The body does not match the expected shape at `roles[0]`: unknown variant, expected one of `ADMIN`, `MANAGER`, `LINE_LEADER`."),
            ("extra: unknown field `extra`, expected `email` or `password` at line 1 column 9",
             "The body does not match the expected shape at `extra`: unknown field `extra`, expected `email` or `password`."),
            ("missing field `password` at line 1 column 9",
             "The body does not match the expected shape: missing field `password`."),
        ] {
            let got = body_detail(&format!("{prefix}{message}"));
            assert_eq!(got, want);
            assert!(!got.contains("Canary"));
        }
    }
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

impl Identity {
    /// Who is asking, for production visibility rules.
    pub fn viewer(&self) -> crate::production::Viewer {
        crate::production::Viewer::new(&self.user_id, &self.roles)
    }
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

/// The `If-Match` header as a version: `"3"`, `W/"3"` or `3`; `*` or no header is `None`.
/// Responses carry the version as `ETag: "3"`. The grammar is exactly [`IF_MATCH_PATTERN`], the
/// one the OpenAPI document states: whatever the document calls invalid is refused here.
pub struct IfMatch(pub Option<i64>);

/// An `If-Match` value IMS takes: `*`, or a version (1 to 18 digits, no leading zero), optionally
/// quoted, optionally marked weak.
pub const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"?[1-9][0-9]{0,17}"?)$"#;

/// `Some(None)` for `*`, `Some(Some(version))` for a version, `None` for anything else.
fn parse_if_match(text: &str) -> Option<Option<i64>> {
    if text == "*" {
        return Some(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let tag = tag.strip_prefix('"').unwrap_or(tag);
    let digits = tag.strip_suffix('"').unwrap_or(tag);
    let well_formed = (1..=18).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok()).flatten().map(Some)
}

impl IfMatch {
    /// For routes where a blind overwrite is never right: no `If-Match`, or `*`, is `428`.
    pub fn required(&self) -> Result<i64, ApiError> {
        self.0.ok_or_else(|| {
            ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "if_match_required",
                "Send If-Match with the version (ETag) you read.",
            )
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(axum::http::header::IF_MATCH) else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(parse_if_match)
            .map(Self)
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_if_match",
                    "If-Match must be an ETag such as \"3\".",
                )
            })
    }
}

/// The `Idempotency-Key` header (draft-ietf-httpapi-idempotency-key-header): a client's name for
/// one request, so that sending it again (after a timeout, say) does not do it twice. Bare or
/// quoted, as [`IDEMPOTENCY_KEY_PATTERN`] states; a UUID is the usual choice.
pub struct IdempotencyKey(pub Option<String>);

/// An `Idempotency-Key` IMS takes: 1 to 64 letters, digits, `-`, `_`, `.` or `:`, optionally quoted.
pub const IDEMPOTENCY_KEY_PATTERN: &str = r#"^("[A-Za-z0-9_.:-]{1,64}"|[A-Za-z0-9_.:-]{1,64})$"#;

fn parse_idempotency_key(text: &str) -> Option<String> {
    let key = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let well_formed = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:-".contains(&b));
    well_formed.then(|| key.to_owned())
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        value
            .to_str()
            .ok()
            .and_then(parse_idempotency_key)
            .map(|key| Self(Some(key)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 64 letters, digits, '-', '_', '.' or ':', such as a UUID.",
                )
            })
    }
}

/// A JSON body with its version as the `ETag`.
pub fn tagged<T: serde::Serialize>(version: i64, body: T) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut response = axum::Json(body).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(axum::http::header::ETAG, v);
    }
    response
}
