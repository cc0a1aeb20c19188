//! What the session and QA routes share, below both: a session document's JSON body within
//! its size limit, and the answer for a session that does not exist.

use super::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use devtrace_query::QueryError;
use devtrace_query::sessions::{self, Face};
use devtrace_store::Store;

/// Largest session document or event batch accepted.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// A session that does not exist is a 404 in the words every face uses
/// ([`devtrace_query::sessions::no_session`]); other lookup errors as everywhere. The QA
/// routes answer the same way.
pub(crate) fn session_error(store: &dyn Store, error: QueryError) -> ApiError {
    sessions::session_error(store, error, Face::Rest).into()
}

/// The request's body, when it is JSON and within the size limit.
pub(crate) fn json_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type {content_type:?}: send application/json"),
        ));
    }
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is larger than {} MiB; send the session in parts \
                     (POST /api/v1/sessions/{{id}}/events appends events)",
                    MAX_DOCUMENT_BYTES / (1024 * 1024)
                ),
            )
        } else {
            ApiError::new(rejection.status(), rejection.body_text())
        }
    })
}
