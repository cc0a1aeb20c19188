//! Trace search and one trace's views: summary, waterfall, span detail, search, timeline, the
//! findings about it, and where a run came from (the session that made it).

use super::params::Params;
use super::{ApiError, ApiErrorBody, ApiResult, blocking};
use crate::json::Json;
use crate::state::ApiState;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use devtrace_model::SpanId;
use devtrace_query::analytics::FindingsOfTrace;
use devtrace_query::causal::{ThreadSteps, thread_steps};
use devtrace_query::search::{AttributeFilter, TraceSearch, search as search_traces};
use devtrace_query::sessions::{RunOrigin, run_origin};
use devtrace_query::timefmt::now_nanos;
use devtrace_query::trace_view::{
    SpanDetail, Timeline, Waterfall, find_span, search_spans, span_detail, timeline as timeline_of,
    waterfall as waterfall_of,
};
use devtrace_store::{Store, TraceCursor, TraceQuery, TraceSummary};
use prost::Message;
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

/// Largest page of traces.
pub const MAX_PAGE: usize = 1_000;

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct TraceListParams {
    /// Only traces with a span of this `service.name` (any span, not only the root).
    service: Option<String>,
    /// Only traces whose root operation contains this text.
    name: Option<String>,
    /// Only traces containing a span named exactly this (any span, not only the root).
    operation: Option<String>,
    /// Shortest trace duration, e.g. `250ms`, `1.5s`, `2m`.
    min_duration: Option<String>,
    /// Longest trace duration, same format.
    max_duration: Option<String>,
    /// `error`: only traces with an error span; `ok`: only traces without one.
    status: Option<String>,
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
    /// Only traces started before this instant (same formats as `since`).
    until: Option<String>,
    /// Attribute filter on any span or resource, repeatable: `key=value` (equals) or
    /// `key~text` (contains).
    attr: Option<Vec<String>>,
    /// Traces of one `devtrace run` (its run id).
    run: Option<String>,
    /// Runs recorded with `devtrace run --label LABEL`.
    label: Option<String>,
    /// `runs`: only `devtrace run` executions; `runtime`: leave development sessions out.
    only: Option<String>,
    /// Traces per page, 1 to 1000 (default 50).
    limit: Option<usize>,
    /// Continue after this position: `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One row of the traces list.
#[derive(Serialize, ToSchema)]
pub struct TraceRow {
    #[serde(flatten)]
    pub summary: TraceSummary,
    /// The root span's own duration.
    pub duration_ns: u64,
    /// When a span ends after the root: how long after the root's start the last one ends.
    pub last_span_end_ns: Option<u64>,
}

impl From<TraceSummary> for TraceRow {
    fn from(summary: TraceSummary) -> Self {
        Self {
            duration_ns: summary.duration_nanos(),
            last_span_end_ns: summary.last_span_end_nanos(),
            summary,
        }
    }
}

/// A page of traces, newest first.
#[derive(Serialize, ToSchema)]
pub struct TracePage {
    pub traces: Vec<TraceRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// Candidate traces whose spans were read for attribute, run or label filters.
    pub scanned: usize,
    /// The scan bound stopped the search before the page was full: older matches may exist,
    /// continue from `next_cursor`.
    pub scan_limited: bool,
}

/// Search traces, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/traces",
    tag = "traces",
    params(TraceListParams),
    responses(
        (status = 200, description = "A page of traces", body = TracePage),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn list(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<TracePage> {
    let p = Params::parse::<TraceListParams>(raw.as_deref())?;
    let status = p.choice("status", &["error", "ok"])?;
    let only = p.choice("only", &["runs", "runtime"])?;
    let attributes = p
        .all("attr")
        .iter()
        .map(|text| AttributeFilter::parse(text).map_err(|e| ApiError::bad_parameter("attr", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let after = p
        .text("cursor")
        .map(|text| {
            TraceCursor::decode(&text).ok_or_else(|| {
                ApiError::bad_parameter(
                    "cursor",
                    format!("{text:?} is not a cursor; pass next_cursor from the previous page"),
                )
            })
        })
        .transpose()?;
    let wanted = TraceSearch {
        query: TraceQuery {
            service: p.text("service"),
            name_contains: p.text("name"),
            operation: p.text("operation"),
            min_duration_nanos: p.duration("min_duration")?,
            max_duration_nanos: p.duration("max_duration")?,
            errors_only: status == Some("error"),
            without_errors: status == Some("ok"),
            runs_only: only == Some("runs"),
            runtime_only: only == Some("runtime"),
            since_unix_nano: p.time("since")?,
            until_unix_nano: p.time("until")?,
            after,
            limit: p.number("limit", 50, 1..=MAX_PAGE)?,
        },
        attributes,
        run_id: p.text("run"),
        label: p.text("label"),
    };
    let store = state.store.clone();
    let page = blocking(move || Ok(search_traces(&*store, &wanted)?)).await?;
    Ok(Json(TracePage {
        traces: page.traces.into_iter().map(TraceRow::from).collect(),
        next_cursor: page.next.map(|c| c.encode()),
        scanned: page.scanned,
        scan_limited: page.scan_limited,
    }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoParams {}

/// Runs `view` on trace `id` (from the cache of opened traces) on a blocking thread; the view
/// gets the store too, for what lies beyond the trace.
async fn with_trace<T: Send + 'static>(
    state: &ApiState,
    id: String,
    view: impl FnOnce(&dyn Store, &crate::state::CachedTrace) -> Result<T, ApiError> + Send + 'static,
) -> Result<Json<T>, ApiError> {
    let (store, cache) = (state.store.clone(), state.traces.clone());
    let answer = blocking(move || view(&*store, &*cache.get(&*store, &id)?)).await?;
    Ok(Json(answer))
}

/// One trace's summary row.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "The trace's summary", body = TraceRow),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn summary(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<TraceRow> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let row = blocking(move || {
        let trace_id = store.resolve_trace_id(&id)?;
        let summary = store
            .trace_summary(trace_id)?
            .ok_or(devtrace_store::StoreError::TraceNotFound(id))?;
        Ok(TraceRow::from(summary))
    })
    .await?;
    Ok(Json(row))
}

/// How an OTLP export is encoded: protobuf when the client accepts it, else OTLP/JSON.
fn otlp_reply(headers: &axum::http::HeaderMap, proto: Vec<u8>, json: Vec<u8>) -> Response {
    let wants_proto = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-protobuf"));
    if wants_proto {
        (
            [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
            proto,
        )
            .into_response()
    } else {
        // Recorded text as data: written again with every dangerous character escaped
        // (lossless: a client's parser reads back what was stored).
        match serde_json::from_slice::<serde_json::Value>(&json) {
            Ok(value) => Json(value).into_response(),
            Err(error) => ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the OTLP/JSON could not be written: {error}"),
            )
            .into_response(),
        }
    }
}

/// The trace's spans as OTLP, every field as it was stored: OTLP/JSON (`TracesData`), or
/// protobuf (`ExportTraceServiceRequest`) with `Accept: application/x-protobuf`. What
/// `devtrace export` writes, and what the CLI reads from a server (`--server`).
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/otlp",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "OTLP/JSON TracesData (or protobuf with Accept: application/x-protobuf)", body = Object),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn otlp(
    state: ApiState,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    export(&state, id, &headers, raw, |store, trace_id, id| {
        let trace = store
            .get_trace(trace_id)?
            .ok_or(devtrace_store::StoreError::TraceNotFound(id))?;
        let resource_spans = devtrace_ingest::proto::spans_to_proto(&trace.spans);
        Ok((
            devtrace_ingest::json::write_traces(&resource_spans, false),
            devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest {
                resource_spans,
            }
            .encode_to_vec(),
        ))
    })
    .await
}

/// Resolves `id` and encodes what `encode` reads of it as (JSON, protobuf), answering in the
/// encoding the client accepts.
async fn export(
    state: &ApiState,
    id: String,
    headers: &axum::http::HeaderMap,
    raw: Option<String>,
    encode: impl FnOnce(
        &dyn Store,
        devtrace_model::TraceId,
        String,
    ) -> Result<(Vec<u8>, Vec<u8>), ApiError>
    + Send
    + 'static,
) -> Result<Response, ApiError> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let (json, proto) = blocking(move || {
        let trace_id = store.resolve_trace_id(&id)?;
        encode(&*store, trace_id, id)
    })
    .await?;
    Ok(otlp_reply(headers, proto, json))
}

/// The log records correlated with the trace as OTLP: OTLP/JSON (`LogsData`), or protobuf
/// (`ExportLogsServiceRequest`) with `Accept: application/x-protobuf`.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/logs/otlp",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "OTLP/JSON LogsData (or protobuf with Accept: application/x-protobuf)", body = Object),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn logs_otlp(
    state: ApiState,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    export(&state, id, &headers, raw, |store, trace_id, _| {
        let resource_logs = devtrace_ingest::proto::logs_to_proto(&store.logs_for_trace(trace_id)?);
        Ok((
            serde_json::to_vec(&devtrace_ingest::json::encode_logs(&resource_logs))
                .expect("JSON values serialise"),
            devtrace_ingest::otlp::collector::logs::v1::ExportLogsServiceRequest { resource_logs }
                .encode_to_vec(),
        ))
    })
    .await
}

/// The span tree as columns, for a virtualised waterfall.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/waterfall",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "The waterfall columns", body = Waterfall),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn waterfall(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Waterfall> {
    Params::parse::<NoParams>(raw.as_deref())?;
    with_trace(&state, id, |_, entry| {
        Ok(waterfall_of(&entry.trace, &entry.summary, &entry.logs))
    })
    .await
}

/// Everything recorded about one span: attributes, events, exception, links, logs, LLM call.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/spans/{span_id}",
    tag = "traces",
    params(
        ("id" = String, Path, description = "Trace id, or a unique prefix of it"),
        ("span_id" = String, Path, description = "Span id: 16 hexadecimal characters"),
    ),
    responses(
        (status = 200, description = "The span", body = SpanDetail),
        (status = 400, description = "Malformed id", body = ApiErrorBody),
        (status = 404, description = "No such trace or span", body = ApiErrorBody),
    )
)]
pub async fn span(
    state: ApiState,
    Path((id, span_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SpanDetail> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let wanted = parse_span_id(&span_id)?;
    with_trace(&state, id, move |_, entry| {
        let index = span_index_of(&entry.trace, wanted, &span_id)?;
        Ok(span_detail(&entry.trace, index, &entry.logs))
    })
    .await
}

/// The recorded calls of the thread a span ran on, in order with their values and what each
/// waited for, for stepping through the run (the span's own step is `current`).
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/spans/{span_id}/steps",
    tag = "traces",
    params(
        ("id" = String, Path, description = "Trace id, or a unique prefix of it"),
        ("span_id" = String, Path, description = "Span id: 16 hexadecimal characters"),
    ),
    responses(
        (status = 200, description = "The thread's calls (at most 2,000, around the span)", body = ThreadSteps),
        (status = 400, description = "Malformed id", body = ApiErrorBody),
        (status = 404, description = "No such trace or span", body = ApiErrorBody),
    )
)]
pub async fn steps(
    state: ApiState,
    Path((id, span_id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<ThreadSteps> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let wanted = parse_span_id(&span_id)?;
    with_trace(&state, id, move |_, entry| {
        let index = span_index_of(&entry.trace, wanted, &span_id)?;
        Ok(thread_steps(&entry.trace, index))
    })
    .await
}

fn parse_span_id(span_id: &str) -> Result<SpanId, ApiError> {
    span_id.parse().map_err(|_| {
        ApiError::bad_parameter(
            "span_id",
            format!("{span_id:?} is not a span id: span ids are 16 hexadecimal characters"),
        )
    })
}

fn span_index_of(
    trace: &devtrace_analyze::AnalyzedTrace,
    wanted: SpanId,
    span_id: &str,
) -> Result<usize, ApiError> {
    find_span(trace, wanted).ok_or_else(|| {
        ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            format!("trace {} has no span {span_id}", trace.trace_id),
        )
    })
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SearchParams {
    /// Text to find (case-insensitive) in span names, attribute keys and values, event
    /// names, status messages, services and span ids.
    q: String,
}

/// Spans of the trace that match a text.
#[derive(Serialize, ToSchema)]
pub struct SpanMatches {
    /// In tree order, at most 10,000.
    pub span_ids: Vec<SpanId>,
}

/// Search within one trace.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/search",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it"), SearchParams),
    responses(
        (status = 200, description = "Matching spans", body = SpanMatches),
        (status = 400, description = "No `q`, or a malformed id", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn search(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SpanMatches> {
    let p = Params::parse::<SearchParams>(raw.as_deref())?;
    let q = p.text("q").ok_or_else(|| {
        ApiError::bad_parameter("q", "give the text to search for, e.g. ?q=SELECT")
    })?;
    with_trace(&state, id, move |_, entry| {
        Ok(SpanMatches {
            span_ids: search_spans(&entry.trace, &q),
        })
    })
    .await
}

/// Every span event in time order, for playback.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/timeline",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "Events in time order (at most 20,000)", body = Timeline),
        (status = 400, description = "Malformed id", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn timeline(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Timeline> {
    Params::parse::<NoParams>(raw.as_deref())?;
    with_trace(&state, id, |_, entry| Ok(timeline_of(&entry.trace))).await
}

/// Where a trace came from.
#[derive(Serialize, ToSchema)]
pub struct TraceOrigin {
    /// For a `devtrace run` trace, the development session command that ran it (the session's
    /// timeline links the run back); null for other traces and for runs made outside any
    /// recorded session.
    pub session: Option<RunOrigin>,
}

/// The development session whose command made this run, if any.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/origin",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "The session that made the run, or null", body = TraceOrigin),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn origin(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<TraceOrigin> {
    Params::parse::<NoParams>(raw.as_deref())?;
    with_trace(&state, id, |store, entry| {
        let trace = &entry.trace;
        Ok(TraceOrigin {
            session: run_origin(store, trace.trace_id, &trace.spans.spans)?,
        })
    })
    .await
}

/// The findings about one trace: the findings list's (`/api/v1/findings`, its default window
/// and ranking), those whose evidence includes the trace, each with its rank in the window.
#[utoipa::path(
    get,
    path = "/api/v1/traces/{id}/findings",
    tag = "traces",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "The trace's findings and the window they were read in", body = FindingsOfTrace),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = ApiErrorBody),
        (status = 404, description = "No such trace", body = ApiErrorBody),
    )
)]
pub async fn findings(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<FindingsOfTrace> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let (store, cache) = (state.store.clone(), state.traces.clone());
    let answer = blocking(move || Ok(cache.findings(&*store, &id, now_nanos())?)).await?;
    Ok(Json(answer))
}
