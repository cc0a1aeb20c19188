//! The sessions REST API (under the API port's Host/Origin guard):
//!
//! | method | path | |
//! |---|---|---|
//! | `POST` | `/api/v1/sessions` | a `trace-1.0.0` document: validated (400 with the field paths), redacted, stored; 201, or 200 when it replaces the session's earlier document |
//! | `POST` | `/api/v1/sessions/{id}/events` | `{"events": [...]}` appended to a stored `trace-1.0.0` session |
//! | `GET` | `/api/v1/sessions` | sessions, newest first (`agent`, `repo`, `since` = RFC 3339 or 30m/2h/7d, `limit`) |
//! | `GET` | `/api/v1/sessions/{id}` | a `trace-1.0.0` session's document as stored; any other session's overview |
//! | `GET` | `/api/v1/sessions/{id}/overview` | the timeline with findings and linked runs |
//! | `DELETE` | `/api/v1/sessions/{id}` | removes the session's trace; 204 |
//!
//! `{id}` is a trace id (or unique prefix) or the session's own id. Errors are JSON:
//! `{"error": "…"}`, with `"errors": [{"path", "message"}]` for an invalid document.
//! Everything here is a thin layer over `devtrace-ingest` (validation, mapping, redaction),
//! the group-commit writer and `devtrace-query` (the read side).

use crate::api::ApiState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use devtrace_ingest::sessions::trace_v1::{self, DocumentError, TraceDocument};
use devtrace_model::{AnyValue, TraceId, semconv};
use devtrace_query::QueryError;
use devtrace_query::sessions::{SessionFilter, list_sessions, resolve_session, session_overview};
use devtrace_store::writer::SubmitError;
use devtrace_store::{Store, StoreError, WriteBatch, prepare_session};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// Largest session document or event batch accepted.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// The sessions routes, to merge into the API router.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/sessions", post(create).get(list))
        .route("/api/v1/sessions/{id}", get(one).delete(remove))
        .route("/api/v1/sessions/{id}/overview", get(overview))
        .route("/api/v1/sessions/{id}/events", post(append))
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
}

/// An error reply: the status and the JSON body (`{"error": …}`, plus `errors` for invalid
/// documents); small enough to pass around as a `Result` error.
struct ApiError {
    status: StatusCode,
    body: Box<Value>,
    retry_after: bool,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(*self.body)).into_response();
        if self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        body: Box::new(json!({"error": message.into()})),
        retry_after: false,
    }
}

fn invalid(error: &DocumentError) -> ApiError {
    ApiError {
        status: StatusCode::BAD_REQUEST,
        body: Box::new(json!({"error": error.to_string(), "errors": error.errors})),
        retry_after: false,
    }
}

fn query_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Store(StoreError::TraceNotFound(id)) => {
            error(StatusCode::NOT_FOUND, format!("no session matches {id:?}"))
        }
        QueryError::Store(StoreError::AmbiguousPrefix { .. } | StoreError::InvalidTraceId(_)) => {
            error(StatusCode::BAD_REQUEST, e.to_string())
        }
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        Ok(())
    } else {
        Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type {content_type:?}: send application/json"),
        ))
    }
}

/// Writes a batch through the group-commit writer and waits until it is durable.
async fn commit(state: &ApiState, batch: WriteBatch) -> Result<(), ApiError> {
    let ticket = state.writer.submit(batch).map_err(|e| match e {
        SubmitError::Overloaded => ApiError {
            retry_after: true,
            ..error(
                StatusCode::SERVICE_UNAVAILABLE,
                "devtrace is busy writing; retry shortly",
            )
        },
        SubmitError::Closed => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    })?;
    ticket
        .committed()
        .await
        .map_err(|e| error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
}

/// Stores a validated document: its spans merged into the session, the document as a blob.
async fn store_document(state: &ApiState, document: &TraceDocument) -> Result<usize, ApiError> {
    let output = trace_v1::to_spans(document, Arc::clone(&state.redactor));
    let spans = output.spans.spans.len();
    commit(state, prepare_session(output.spans, output.blobs)).await?;
    Ok(spans)
}

fn events_in(document: &TraceDocument) -> usize {
    document.document["events"].as_array().map_or(0, Vec::len)
}

async fn create(State(state): State<ApiState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(response) = require_json(&headers) {
        return response.into_response();
    }
    let document = match trace_v1::parse(&body, &state.redactor) {
        Ok(document) => document,
        Err(e) => return invalid(&e).into_response(),
    };
    let store = Arc::clone(&state.store);
    let trace_id = document.trace_id;
    let existed = match blocking(move || {
        store
            .session(trace_id)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await
    {
        Ok(found) => found.is_some(),
        Err(response) => return response.into_response(),
    };
    match store_document(&state, &document).await {
        Ok(spans) => (
            if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            [(
                header::LOCATION,
                format!("/api/v1/sessions/{}", trace_id.to_hex()),
            )],
            axum::Json(json!({
                "trace_id": trace_id.to_hex(),
                "session_id": document.id,
                "created": !existed,
                "events": events_in(&document),
                "spans": spans,
            })),
        )
            .into_response(),
        Err(response) => response.into_response(),
    }
}

/// The stored `trace-1.0.0` document of a session, if it has one.
fn stored_document(store: &dyn Store, trace_id: TraceId) -> Result<Option<Value>, StoreError> {
    let Some(trace) = store.get_trace(trace_id)? else {
        return Ok(None);
    };
    let reference = trace.spans.spans.iter().find_map(|s| {
        s.attr(semconv::SESSION_DOCUMENT_REF)
            .and_then(AnyValue::as_str)
            .map(str::to_owned)
    });
    let Some(reference) = reference else {
        return Ok(None);
    };
    let mut hash = [0u8; 32];
    for (i, pair) in reference.as_bytes().chunks(2).enumerate().take(32) {
        let hex = std::str::from_utf8(pair).unwrap_or("00");
        hash[i] = u8::from_str_radix(hex, 16).unwrap_or(0);
    }
    let Some(bytes) = store.blob(&hash)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("stored document: {e}")))
}

async fn append(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = require_json(&headers) {
        return response.into_response();
    }
    let batch: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return invalid(&DocumentError {
                errors: vec![trace_v1::FieldError {
                    path: "$".into(),
                    message: format!("not JSON: {e}"),
                }],
            })
            .into_response();
        }
    };
    let store = Arc::clone(&state.store);
    let found = blocking(move || {
        let trace_id = resolve_session(store.as_ref(), &id).map_err(query_error)?;
        let document = stored_document(store.as_ref(), trace_id)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok((trace_id, document))
    })
    .await;
    let (trace_id, document) = match found {
        Ok(found) => found,
        Err(response) => return response.into_response(),
    };
    let Some(document) = document else {
        return error(
            StatusCode::CONFLICT,
            format!(
                "session {} was not sent as a {} document; events can only be added to those",
                trace_id.to_hex(),
                trace_v1::VERSION
            ),
        )
        .into_response();
    };
    let mut document = match trace_v1::from_value(document, &state.redactor) {
        Ok(document) => document,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the stored document is invalid: {e}"),
            )
            .into_response();
        }
    };
    let added = match trace_v1::append_events(&mut document, &batch, &state.redactor) {
        Ok(added) => added,
        Err(e) => return invalid(&e).into_response(),
    };
    match store_document(&state, &document).await {
        Ok(spans) => axum::Json(json!({
            "trace_id": trace_id.to_hex(),
            "added": added,
            "events": events_in(&document),
            "spans": spans,
        }))
        .into_response(),
        Err(response) => response.into_response(),
    }
}

#[derive(Deserialize)]
struct ListParams {
    agent: Option<String>,
    repo: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

async fn list(State(state): State<ApiState>, Query(params): Query<ListParams>) -> Response {
    let since = match params.since.as_deref() {
        Some(text) => {
            match devtrace_query::timefmt::parse_since(text, devtrace_query::timefmt::now_nanos()) {
                Ok(since) => Some(since),
                Err(message) => {
                    return error(StatusCode::BAD_REQUEST, format!("since: {message}"))
                        .into_response();
                }
            }
        }
        None => None,
    };
    let store = Arc::clone(&state.store);
    let filter = SessionFilter {
        agent: params.agent,
        project: params.repo,
        since_unix_nano: since,
        limit: params.limit,
    };
    match blocking(move || list_sessions(store.as_ref(), &filter).map_err(query_error)).await {
        Ok(items) => axum::Json(json!({"sessions": items})).into_response(),
        Err(response) => response.into_response(),
    }
}

async fn one(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let store = Arc::clone(&state.store);
    let answer = blocking(move || {
        let trace_id = resolve_session(store.as_ref(), &id).map_err(query_error)?;
        if let Some(document) = stored_document(store.as_ref(), trace_id)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        {
            return Ok(document);
        }
        let overview = session_overview(store.as_ref(), &trace_id.to_hex()).map_err(query_error)?;
        serde_json::to_value(overview)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    })
    .await;
    match answer {
        Ok(value) => axum::Json(value).into_response(),
        Err(response) => response.into_response(),
    }
}

async fn overview(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let store = Arc::clone(&state.store);
    match blocking(move || session_overview(store.as_ref(), &id).map_err(query_error)).await {
        Ok(overview) => axum::Json(overview).into_response(),
        Err(response) => response.into_response(),
    }
}

async fn remove(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let store = Arc::clone(&state.store);
    let found = blocking(move || {
        let trace_id = resolve_session(store.as_ref(), &id).map_err(query_error)?;
        let session = store
            .session(trace_id)
            .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        match session {
            Some(_) => Ok(trace_id),
            None => Err(error(
                StatusCode::NOT_FOUND,
                format!("{} is a trace but not a session", trace_id.to_hex()),
            )),
        }
    })
    .await;
    let trace_id = match found {
        Ok(trace_id) => trace_id,
        Err(response) => return response.into_response(),
    };
    match commit(
        &state,
        WriteBatch {
            deletes: vec![trace_id],
            ..Default::default()
        },
    )
    .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response.into_response(),
    }
}
