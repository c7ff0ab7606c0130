//! The web app: the built SPA in `IMS_WEB_DIR` (default `web/dist`), served as the router's
//! fallback. A file that exists is served with its type — hashed `assets/` for a year, everything
//! else revalidated — and any other `GET` outside the API's prefixes gets `index.html`, so the
//! app's own routes survive a reload. Paths are resolved component by component inside the
//! directory: no `..`, no hidden files, no symlink escapes. The API's unknown paths, and other
//! methods, stay `404` problem documents. The strict Content-Security-Policy is set for every
//! response by [`super::middleware::edge`].

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::app::AppState;

/// Paths that belong to the API: never answered with the web app.
const API_PREFIXES: &[&str] = &[
    "/api/",
    "/auth/",
    "/.well-known/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
];

/// Files larger than this are not served (the bundle's are far smaller).
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

pub async fn fallback(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    let path = uri.path();
    if !matches!(method, Method::GET | Method::HEAD)
        || API_PREFIXES
            .iter()
            .any(|p| path.starts_with(p) || path == p.trim_end_matches('/'))
    {
        return ApiError::not_found().into_response();
    }
    // Hidden segments and traversal attempts are never the app.
    let Some(decoded) = visible(path) else {
        return ApiError::not_found().into_response();
    };
    let root = &state.config.web_dir;
    if let Some(file) = resolve(root, &decoded) {
        if let Some(response) = serve(&file, path.starts_with("/assets/")).await {
            return response;
        }
    }
    // Client-side routes (no extension) get the app; a missing asset is a plain 404.
    let last = path.rsplit('/').next().unwrap_or_default();
    if last.contains('.') {
        return ApiError::not_found().into_response();
    }
    match serve(&root.join("index.html"), false).await {
        Some(response) => response,
        None => not_built(),
    }
}

/// The percent-decoded path, unless it is malformed or has a hidden (`.`-led) segment.
fn visible(path: &str) -> Option<String> {
    percent_decode(path).filter(|p| !p.split('/').any(|s| s.starts_with('.')))
}

/// The file under `root` that the decoded `path` names, if it is a plain, existing file inside it.
fn resolve(root: &Path, decoded: &str) -> Option<PathBuf> {
    let mut file = root.to_path_buf();
    for component in Path::new(decoded.trim_start_matches('/')).components() {
        match component {
            Component::Normal(part) if !part.to_string_lossy().starts_with('.') => file.push(part),
            _ => return None,
        }
    }
    let canonical_root = root.canonicalize().ok()?;
    let canonical = file.canonicalize().ok()?;
    (canonical.starts_with(&canonical_root) && canonical.is_file()).then_some(canonical)
}

fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.contains('\0') && !text.contains('\\')).then_some(text)
}

async fn serve(file: &Path, immutable: bool) -> Option<Response> {
    let meta = tokio::fs::metadata(file).await.ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = tokio::fs::read(file).await.ok()?;
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = Response::new(Body::from(bytes));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(file)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(response)
}

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// The answer when the SPA has not been built: a plain page saying how to build it (`200`, as a
/// page of the app: an error status would be replaced by a problem document).
fn not_built() -> Response {
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>IMS</title></head>\
        <body><h1>IMS</h1><p>The web app is not built. Run <code>./scripts/run.sh</code>, or \
        <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>, or point \
        <code>IMS_WEB_DIR</code> at a built copy. The API is at <a href=\"/docs\">/docs</a>.</p></body></html>";
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(root: &Path, path: &str) -> bool {
        visible(path).and_then(|d| resolve(root, &d)).is_some()
    }

    #[test]
    fn paths_stay_inside_the_directory() {
        let root = std::env::temp_dir().join(format!("ims-web-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "x").unwrap();
        std::fs::write(root.join("assets/app.js"), "x").unwrap();
        std::fs::write(root.join(".env"), "x").unwrap();
        assert!(found(&root, "/assets/app.js"));
        assert!(found(&root, "/assets/app%2Ejs"));
        for bad in [
            "/../Cargo.toml",
            "/assets/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/.env",
            "/assets/missing.js",
            "/assets",
            "/a%00b",
            "/%zz",
        ] {
            assert!(!found(&root, bad), "{bad}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
