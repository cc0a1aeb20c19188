//! The web UI: files from `web/`, embedded at build time (see build.rs), served from the API
//! port. `/` and every UI route (`/traces/…`, `/compare`, …) answer with `index.html`, whose
//! scripts route on the path, so each view has a stable URL; `/assets/…` are the files.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub struct Asset {
    /// Relative to `web/`, with `/` separators.
    pub path: &'static str,
    pub bytes: &'static [u8],
    /// A quoted hash of the content.
    pub etag: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// URL prefix of the embedded files.
pub const ASSET_PREFIX: &str = "/assets/";

pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Serves an embedded file, answering 304 when the browser's copy is current. Files are
/// revalidated on every load (`no-cache`) so a new binary's UI is never mixed with an old one.
fn serve(asset: &'static Asset, request_headers: &HeaderMap) -> Response {
    let fresh = request_headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == asset.etag.as_bytes());
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(asset.path)),
    );
    // The UI only talks to its own origin; nothing inline, nothing from elsewhere.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    (headers, asset.bytes).into_response()
}

/// Everything outside `/api/`: an embedded file under `/assets/`, else the UI's page.
pub async fn handle(uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if let Some(file) = path.strip_prefix(ASSET_PREFIX) {
        return match asset(file) {
            Some(found) => serve(found, &headers),
            None => (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("no UI file {file:?}"),
            )
                .into_response(),
        };
    }
    match asset("index.html") {
        Some(index) => serve(index, &headers),
        None => (
            StatusCode::NOT_FOUND,
            "this devtrace was built without its web UI (web/index.html was missing)",
        )
            .into_response(),
    }
}
