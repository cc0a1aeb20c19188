//! Development sessions over REST (the only part of the API that writes):
//!
//! | method | path | |
//! |---|---|---|
//! | `POST` | `/api/v1/sessions` | a `trace-1.0.0` document: validated (400 with the field paths), redacted, stored; 201, or 200 when it replaces the session's earlier document |
//! | `POST` | `/api/v1/sessions/{id}/events` | `{"events": [...]}` appended to a stored `trace-1.0.0` session |
//! | `GET` | `/api/v1/sessions` | sessions, newest first (`agent`, `repo`, `since`, `limit`) |
//! | `GET` | `/api/v1/sessions/{id}` | a `trace-1.0.0` session's document as stored; any other session's overview |
//! | `GET` | `/api/v1/sessions/{id}/overview` | the timeline with findings and linked runs |
//! | `GET` | `/api/v1/sessions/{a}/compare/{b}` | two sessions side by side, as `devtrace session compare --json` |
//! | `DELETE` | `/api/v1/sessions/{id}` | removes the session's trace; 204 |
//! | `GET` | `/api/v1/blobs/{hash}` | a large recorded value (a whole output), a bounded page at a time |
//! | `GET` | `/api/v1/usage` | what agents reported through their metrics, per UTC day (`agent`, `since`) |
//!
//! `{id}` is a trace id (or unique prefix) or the session's own id. Errors are the API's
//! [`ApiErrorBody`], with `errors: [{path, message}]` for an invalid document. Everything here
//! is a thin layer over `devtrace-ingest` (validation), `devtrace-intake` (mapping, redaction,
//! the commit) and `devtrace-query` (the read side).

use super::params::{Params, bounded_json};
use super::session_io::{MAX_DOCUMENT_BYTES, json_body, session_error};
use super::traces::NoParams;
use super::{ApiError, ApiErrorBody, ApiResult, FieldErrorBody, blocking};
use crate::json::Json;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use devtrace_ingest::sessions::trace_v1::{self, DocumentError, TraceDocument};
use devtrace_intake::commit::CommitError;
use devtrace_intake::files::session_batch;
use devtrace_model::{AnyValue, TraceId, semconv};
use devtrace_query::QueryError;
use devtrace_query::blobs::{BlobPage, DEFAULT_PAGE_BYTES, MAX_PAGE_BYTES, parse_hash, read_page};
use devtrace_query::limits;
use devtrace_query::sessions::compare::{SessionComparison, compare_sessions};
use devtrace_query::sessions::{
    Face, MAX_LIST_LIMIT, PageRequest, SessionFilter, SessionItem, SessionOverview, SessionPage,
    UsageDay, list_sessions, render_page, repository_argument, resolve_session, session_overview,
    usage_per_day,
};
use devtrace_query::text::TextOptions;
use devtrace_store::{Store, StoreError, WriteBatch};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The sessions routes (and the blobs their large values are kept in), with their documents.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(one, remove))
        .routes(routes!(overview))
        .routes(routes!(text))
        .routes(routes!(compare))
        .routes(routes!(append))
        .routes(routes!(blob))
        .routes(routes!(usage))
        .layer(DefaultBodyLimit::max(MAX_DOCUMENT_BYTES))
}

/// A body that is not JSON at all, refused as the validator refuses a document (path `$`).
fn not_json(error: &serde_json::Error) -> ApiError {
    invalid(&DocumentError {
        errors: vec![trace_v1::FieldError {
            path: "$".into(),
            message: format!("not JSON: {error}"),
        }],
    })
}

fn invalid(error: &DocumentError) -> ApiError {
    ApiError::invalid_document(
        error.to_string(),
        error
            .errors
            .iter()
            .map(|e| FieldErrorBody {
                path: e.path.clone(),
                message: e.message.clone(),
            })
            .collect(),
    )
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
}

/// Writes a batch through devtrace-intake's commit and waits until it is durable.
async fn commit(state: &ApiState, batch: WriteBatch) -> Result<(), ApiError> {
    devtrace_intake::commit::commit(&state.writer, batch.in_project(state.store.project()))
        .await
        .map_err(|e| match e {
            CommitError::Overloaded => ApiError {
                retry_after: true,
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "devtrace is busy writing; retry shortly",
                )
            },
            CommitError::Unavailable(message) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            }
        })
}

/// Stores a validated document: its spans merged into the session, the document as a blob.
async fn store_document(state: &ApiState, document: &TraceDocument) -> Result<usize, ApiError> {
    let (batch, spans) = session_batch(document, Arc::clone(&state.redactor));
    commit(state, batch).await?;
    Ok(spans)
}

fn events_in(document: &TraceDocument) -> usize {
    document.document["events"].as_array().map_or(0, Vec::len)
}

/// A document stored.
#[derive(Serialize, ToSchema)]
pub struct SessionStored {
    /// The session's trace id (the document's `trace_id` without dashes).
    pub trace_id: String,
    /// The document's `trace_id` as sent.
    pub session_id: String,
    /// False when the document replaced the session's earlier one.
    pub created: bool,
    /// Events in the document.
    pub events: usize,
    /// Spans the session is now made of.
    pub spans: usize,
}

/// Stores a `trace-1.0.0` developer-telemetry document as a session: validated (every problem
/// reported with its field's path, and nothing stored), redacted, merged.
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "sessions",
    request_body(
        content = Object,
        content_type = "application/json",
        description = "A trace-1.0.0 document (docs/sessions.md), at most 32 MiB"
    ),
    responses(
        (status = 201, description = "A new session", body = SessionStored,
            headers(("Location" = String, description = "/api/v1/sessions/{trace_id}"))),
        (status = 200, description = "The session's earlier document, replaced", body = SessionStored),
        (status = 400, description = "Not JSON, or an invalid document: `errors` lists every problem with its path", body = ApiErrorBody),
        (status = 413, description = "Larger than 32 MiB", body = ApiErrorBody),
        (status = 415, description = "Not sent as application/json", body = ApiErrorBody),
        (status = 503, description = "The writer is busy (Retry-After) or stopping", body = ApiErrorBody),
    )
)]
pub async fn create(
    state: ApiState,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let body = json_body(&headers, body)?;
    let value = bounded_json(&body, limits::DOCUMENT_BODY, |e| not_json(&e))?;
    let document = trace_v1::from_value(value, &state.redactor).map_err(|e| invalid(&e))?;
    let store = Arc::clone(&state.store);
    let trace_id = document.trace_id;
    let existed = blocking(move || Ok(store.session(trace_id)?.is_some())).await?;
    let spans = store_document(&state, &document).await?;
    super::qa::on_upload(&state, trace_id, &document.document).await;
    Ok((
        if existed {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        },
        [(
            header::LOCATION,
            format!("/api/v1/sessions/{}", trace_id.to_hex()),
        )],
        Json(SessionStored {
            trace_id: trace_id.to_hex(),
            session_id: document.id.clone(),
            created: !existed,
            events: events_in(&document),
            spans,
        }),
    )
        .into_response())
}

/// The stored `trace-1.0.0` document of a session, if it has one.
fn stored_document(store: &dyn Store, trace_id: TraceId) -> Result<Option<Value>, StoreError> {
    let Some(trace) = store.get_trace(trace_id)? else {
        return Ok(None);
    };
    let hash = trace.spans.spans.iter().find_map(|s| {
        s.attr(semconv::SESSION_DOCUMENT_REF)
            .and_then(AnyValue::as_str)
            .and_then(parse_hash)
    });
    let Some(hash) = hash else {
        return Ok(None);
    };
    let Some(bytes) = store.blob(&hash)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("stored document: {e}")))
}

/// Events added to a session.
#[derive(Serialize, ToSchema)]
pub struct EventsAdded {
    pub trace_id: String,
    /// Events in this batch.
    pub added: usize,
    /// Events in the session's document now.
    pub events: usize,
    /// Spans the session is now made of.
    pub spans: usize,
}

/// A batch of events for a stored session.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the request body; it is read as JSON and validated by trace_v1
pub struct EventBatch {
    /// `trace-1.0.0` events (`t`, `type`, and the fields of their type).
    #[schema(value_type = Vec<Object>)]
    events: Vec<Value>,
}

/// Appends events to a session that was sent as a `trace-1.0.0` document.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{id}/events",
    tag = "sessions",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or the document's trace_id")),
    request_body(content = EventBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "The events were added", body = EventsAdded),
        (status = 400, description = "Not JSON, or invalid events: `errors` lists every problem with its path", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
        (status = 409, description = "The session was not sent as a trace-1.0.0 document", body = ApiErrorBody),
        (status = 413, description = "Larger than 32 MiB", body = ApiErrorBody),
        (status = 415, description = "Not sent as application/json", body = ApiErrorBody),
        (status = 503, description = "The writer is busy (Retry-After) or stopping", body = ApiErrorBody),
    )
)]
pub async fn append(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<EventsAdded> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let body = json_body(&headers, body)?;
    let batch = bounded_json(&body, limits::DOCUMENT_BODY, |e| not_json(&e))?;
    let store = Arc::clone(&state.store);
    let (trace_id, document) = blocking(move || {
        let trace_id =
            resolve_session(store.as_ref(), &id).map_err(|e| session_error(store.as_ref(), e))?;
        Ok((trace_id, stored_document(store.as_ref(), trace_id)?))
    })
    .await?;
    let Some(document) = document else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "session {} was not sent as a {} document; events can only be added to those",
                trace_id.to_hex(),
                trace_v1::VERSION
            ),
        ));
    };
    let mut document = trace_v1::from_value(document, &state.redactor)
        .map_err(|e| internal(format!("the stored document is invalid: {e}")))?;
    let added =
        trace_v1::append_events(&mut document, &batch, &state.redactor).map_err(|e| invalid(&e))?;
    let spans = store_document(&state, &document).await?;
    Ok(Json(EventsAdded {
        trace_id: trace_id.to_hex(),
        added,
        events: events_in(&document),
        spans,
    }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct SessionListParams {
    /// Only sessions of this agent (`claude-code`, `codex`, `developer`).
    agent: Option<String>,
    /// Only sessions in this directory or below it, or of this repository URL.
    repo: Option<String>,
    /// Only sessions started at or after: `30m`, `7d` (ago), an RFC 3339 UTC time, or Unix
    /// nanoseconds.
    since: Option<String>,
    /// With `active_to`: only sessions whose time overlaps [active_from, active_to] (both
    /// inclusive; same formats as `since`): those that could have made something that ran then.
    active_from: Option<String>,
    active_to: Option<String>,
    /// How many sessions, 1 to 200 (default 20).
    limit: Option<usize>,
}

/// Sessions, newest first.
#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionItem>,
}

/// Sessions newest first, with their numbers and how many findings each has
/// (`devtrace sessions`).
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    params(SessionListParams),
    responses(
        (status = 200, description = "Sessions, newest first", body = SessionList),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn list(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<SessionList> {
    let p = Params::parse::<SessionListParams>(raw.as_deref())?;
    let filter = SessionFilter {
        agent: p.text("agent"),
        // As the CLI and MCP take it: a directory names its canonical path.
        project: p.text("repo").as_deref().map(repository_argument),
        since_unix_nano: p.time("since")?,
        active_between: match (p.time("active_from")?, p.time("active_to")?) {
            (Some(from), Some(to)) => Some((from, to)),
            (None, None) => None,
            _ => {
                return Err(ApiError::bad_parameter(
                    "active_from",
                    "give active_from and active_to together",
                ));
            }
        },
        limit: Some(p.number(
            "limit",
            devtrace_query::sessions::DEFAULT_LIST_LIMIT,
            1..=MAX_LIST_LIMIT,
        )?),
    };
    let store = Arc::clone(&state.store);
    let sessions = blocking(move || Ok(list_sessions(store.as_ref(), &filter)?)).await?;
    Ok(Json(SessionList { sessions }))
}

/// Parameters of `GET /api/v1/usage`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct UsageParams {
    /// Only this agent's metrics (`claude-code`, `gemini-cli`).
    agent: Option<String>,
    /// Only days from: `7d` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
}

/// Agent-reported usage per UTC day, oldest first.
#[derive(Serialize, ToSchema)]
pub struct UsageList {
    pub days: Vec<UsageDay>,
}

/// What coding agents reported through their OpenTelemetry metrics (cost, tokens, lines
/// changed), per UTC day (`devtrace sessions --daily`).
#[utoipa::path(
    get,
    path = "/api/v1/usage",
    tag = "sessions",
    params(UsageParams),
    responses(
        (status = 200, description = "Usage per day, oldest first", body = UsageList),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn usage(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<UsageList> {
    let p = Params::parse::<UsageParams>(raw.as_deref())?;
    let (agent, since) = (p.text("agent"), p.time("since")?);
    let store = Arc::clone(&state.store);
    let days =
        blocking(move || Ok(usage_per_day(store.as_ref(), agent.as_deref(), since)?)).await?;
    Ok(Json(UsageList { days }))
}

/// A session as sent: the stored `trace-1.0.0` document (after redaction) for a session sent
/// as one; for any other session (an imported transcript), its overview.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or the agent's session id")),
    responses(
        (status = 200, description = "The trace-1.0.0 document as stored, or a SessionOverview", body = Object),
        (status = 400, description = "An ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
    )
)]
pub async fn one(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Value> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = Arc::clone(&state.store);
    let answer = blocking(move || {
        let trace_id =
            resolve_session(store.as_ref(), &id).map_err(|e| session_error(store.as_ref(), e))?;
        if let Some(document) = stored_document(store.as_ref(), trace_id)? {
            return Ok(document);
        }
        let overview = session_overview(store.as_ref(), &trace_id.to_hex())
            .map_err(|e| session_error(store.as_ref(), e))?;
        serde_json::to_value(overview).map_err(internal)
    })
    .await?;
    Ok(Json(answer))
}

/// One session as a timeline (turns, replies, tool calls with outcome, edits as diffs,
/// commands with output, notes, sub-agents, linked `devtrace run` traces) with its findings
/// inline (`devtrace session show`).
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}/overview",
    tag = "sessions",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or the agent's session id")),
    responses(
        (status = 200, description = "The session's timeline, findings and linked runs", body = SessionOverview),
        (status = 400, description = "An ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
    )
)]
pub async fn overview(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionOverview> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = Arc::clone(&state.store);
    let overview = blocking(move || {
        session_overview(store.as_ref(), &id).map_err(|e| session_error(store.as_ref(), e))
    })
    .await?;
    Ok(Json(overview))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct TextParams {
    /// The first timeline entry to show (default 0, the first page; a page's `next_offset`
    /// continues it).
    offset: Option<usize>,
    /// Tokens a page may take, 300 to 20000; without it the whole session is one page.
    budget: Option<usize>,
}

/// One session as text, a page at a time: what `devtrace session show` prints and MCP's
/// `session_overview` returns (header, findings, then the timeline), paged the same way
/// (`page` of `pages`, the footer naming the next page).
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}/text",
    tag = "sessions",
    params(
        ("id" = String, Path, description = "The session: trace id, unique prefix, or the agent's session id"),
        TextParams,
    ),
    responses(
        (status = 200, description = "A page of the session's text", body = SessionPage),
        (status = 400, description = "An ambiguous prefix, or a parameter out of range", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
    )
)]
pub async fn text(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionPage> {
    let p = Params::parse::<TextParams>(raw.as_deref())?;
    let offset = p.number("offset", 0, 0..=usize::MAX)?;
    let budget = match p.text("budget") {
        None => None,
        Some(_) => Some(p.number(
            "budget",
            0,
            devtrace_mcp::budget::MIN_BUDGET..=devtrace_mcp::budget::MAX_BUDGET,
        )?),
    };
    let store = Arc::clone(&state.store);
    let page = blocking(move || {
        let store = store.as_ref();
        let overview = session_overview(store, &id).map_err(|e| session_error(store, e))?;
        let page = render_page(
            &overview,
            &PageRequest {
                face: Face::Rest,
                options: TextOptions {
                    more_attributes_hint: "GET /api/v1/sessions/{id}/overview has them all",
                    ..TextOptions::plain(100)
                },
                offset,
                budget,
                repeat_budget: true,
                measure: &devtrace_mcp::budget::count,
                qa: String::new(),
                trailer: String::new(),
                requests: false,
            },
        )
        .map_err(|e| match e {
            QueryError::Invalid(message) => {
                ApiError::bad_parameter("offset", message.trim_start_matches("offset ").to_owned())
            }
            other => other.into(),
        })?;
        Ok(page)
    })
    .await?;
    Ok(Json(page))
}

/// Two sessions side by side (the answer of `devtrace session compare A B --json`): turns,
/// requests, tool calls by tool and outcome, tokens by kind, cost, wall and active time, the
/// findings of each, and the first main-chain request whose tool calls differ.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{a}/compare/{b}",
    tag = "sessions",
    params(
        ("a" = String, Path, description = "Session A: trace id, unique prefix, or the agent's session id"),
        ("b" = String, Path, description = "Session B, the same way"),
    ),
    responses(
        (status = 200, description = "The two sessions side by side", body = SessionComparison),
        (status = 400, description = "An ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such session (the message names which)", body = ApiErrorBody),
    )
)]
pub async fn compare(
    state: ApiState,
    Path((a, b)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionComparison> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = Arc::clone(&state.store);
    let comparison = blocking(move || {
        compare_sessions(store.as_ref(), &a, &b).map_err(|e| session_error(store.as_ref(), e))
    })
    .await?;
    Ok(Json(comparison))
}

/// Deletes a session (its trace and everything stored for it; the blobs it shared stay).
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or the agent's session id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
        (status = 503, description = "The writer is busy (Retry-After) or stopping", body = ApiErrorBody),
    )
)]
pub async fn remove(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = Arc::clone(&state.store);
    let trace_id = blocking(move || {
        let trace_id =
            resolve_session(store.as_ref(), &id).map_err(|e| session_error(store.as_ref(), e))?;
        match store.session(trace_id)? {
            Some(_) => Ok(trace_id),
            None => Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("{} is a trace but not a session", trace_id.to_hex()),
            )),
        }
    })
    .await?;
    commit(
        &state,
        WriteBatch {
            deletes: vec![trace_id],
            ..Default::default()
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct BlobParams {
    /// Where to start, in bytes (default 0; a page's `next_offset` continues it).
    offset: Option<u64>,
    /// Bytes to return, 1 to 4194304 (default 1048576); the page ends on a character boundary.
    limit: Option<usize>,
}

/// A large recorded value (a tool's whole output, a long prompt or patch), referenced by
/// `output_ref` or `text_ref` in a session's timeline: a page of it as text.
#[utoipa::path(
    get,
    path = "/api/v1/blobs/{hash}",
    tag = "sessions",
    params(
        ("hash" = String, Path, description = "The value's blake3 hash: 64 hexadecimal characters"),
        BlobParams,
    ),
    responses(
        (status = 200, description = "A page of the value", body = BlobPage),
        (status = 400, description = "Not a hash, or a parameter out of range", body = ApiErrorBody),
        (status = 404, description = "No such value stored", body = ApiErrorBody),
    )
)]
pub async fn blob(
    state: ApiState,
    Path(hash): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<BlobPage> {
    let p = Params::parse::<BlobParams>(raw.as_deref())?;
    let parsed = parse_hash(&hash).ok_or_else(|| {
        ApiError::bad_parameter(
            "hash",
            format!("{hash:?} is not a blob hash: expected 64 hexadecimal characters"),
        )
    })?;
    let offset = match p.text("offset") {
        None => 0,
        Some(text) => text.parse::<u64>().map_err(|_| {
            ApiError::bad_parameter(
                "offset",
                format!("{text:?} is not a whole number of bytes (0, or a page's next_offset)"),
            )
        })?,
    };
    let limit = p.number("limit", DEFAULT_PAGE_BYTES, 1..=MAX_PAGE_BYTES)?;
    let store = Arc::clone(&state.store);
    let page = blocking(move || {
        read_page(store.as_ref(), &parsed, offset, limit).map_err(|e| match e {
            QueryError::Invalid(message) => {
                ApiError::bad_parameter("offset", message.trim_start_matches("offset: ").to_owned())
            }
            other => other.into(),
        })
    })
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no value stored under {hash}"),
        )
    })?;
    Ok(Json(page))
}
