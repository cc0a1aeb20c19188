//! Live updates: a Server-Sent Events stream that says when new spans have been committed,
//! and what is happening now (`/api/v1/live…`, what `devtrace watch --server` reads: the
//! answers of `devtrace_query::live`, the same the dashboard computes on a local store).
//!
//! Why SSE and not polling or WebSockets: the browser's `EventSource` reconnects by itself,
//! the stream is one idle HTTP response (no request every second per open tab), and the
//! direction is one-way, which is all the UI needs. Events carry counts, not traces: the UI
//! re-runs its own query (with whatever filters the user set) when told something arrived, so
//! the server never evaluates per-client filters and a busy ingest is coalesced into at most
//! one event per [`TICK`].

use crate::json::Json;
use crate::state::ApiState;
use axum::extract::{Path, RawQuery};
use axum::response::sse::{Event, KeepAlive, Sse};
use devtrace_query::live::{
    self, LiveQuery, LiveSnapshot, SessionProgress, SessionTimeline, TraceFindings,
};
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

use super::params::Params;
use super::traces::NoParams;
use super::{ApiError, ApiResult, blocking};

/// How often each stream checks for newly committed spans.
pub const TICK: Duration = Duration::from_millis(500);

/// The data of an `ingest` event.
#[derive(Serialize, ToSchema)]
pub struct IngestEvent {
    /// Spans committed since the server started.
    pub committed_spans: u64,
    /// Spans committed since the previous event on this stream (0 in the first event).
    pub new_spans: u64,
    /// Spans per second over the last ten seconds.
    pub spans_per_second: f64,
}

/// A stream of `ingest` events: one when the stream opens, then one whenever spans were
/// committed since the last (checked every 500 ms). Ends when the server shuts down.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "live",
    responses(
        (status = 200, description = "text/event-stream of `ingest` events whose data is an IngestEvent", content_type = "text/event-stream", body = IngestEvent),
        (status = 400, description = "An unknown parameter", body = super::ApiErrorBody),
    )
)]
pub async fn events(
    state: ApiState,
    RawQuery(raw): RawQuery,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let stopping = state.stopping.clone();
    let stream = futures_util::stream::unfold(
        (state, stopping, None::<u64>),
        |(state, mut stopping, last)| async move {
            loop {
                if last.is_some() {
                    tokio::select! {
                        _ = tokio::time::sleep(TICK) => {}
                        _ = stopping.wait_for(|stop| *stop) => return None,
                    }
                }
                if *stopping.borrow() {
                    return None;
                }
                // Every node's commits to this request's project (the local writer's alone on
                // the embedded store).
                let committed = state.feed.committed_spans(state.store.project());
                if last == Some(committed) {
                    continue;
                }
                let data = IngestEvent {
                    committed_spans: committed,
                    new_spans: last.map_or(0, |l| committed.saturating_sub(l)),
                    spans_per_second: state.rate.spans_per_second(),
                };
                let event = match devtrace_query::safe_json::to_string(&data) {
                    Ok(json) => Event::default().event("ingest").data(json),
                    Err(_) => Event::default().event("ingest"),
                };
                return Some((Ok(event), (state, stopping, Some(committed))));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct LiveParams {
    /// Newest program traces listed, 1 to 500 (default 50).
    traces: Option<usize>,
    /// Sessions listed, 1 to 50 (default 10).
    sessions: Option<usize>,
    /// A session is in progress when something happened in it this recently: `15m` (the
    /// default), `2h`, `30s`.
    active_within: Option<String>,
}

/// What is happening now, from summary rows only (cheap enough to ask several times a
/// second): the store's counters, the newest program traces, the sessions active lately.
/// What `devtrace watch` polls.
#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "live",
    params(LiveParams),
    responses(
        (status = 200, description = "Counters, newest traces, active sessions", body = LiveSnapshot),
        (status = 400, description = "A parameter is malformed", body = super::ApiErrorBody),
    )
)]
pub async fn snapshot(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<LiveSnapshot> {
    let p = Params::parse::<LiveParams>(raw.as_deref())?;
    let mut query = LiveQuery::at(now_unix_nano());
    query.traces = p.number("traces", live::DEFAULT_TRACES, 1..=live::MAX_TRACES)?;
    query.sessions = p.number("sessions", live::DEFAULT_SESSIONS, 1..=live::MAX_SESSIONS)?;
    if let Some(within) = p.duration("active_within")? {
        query.active_within_nanos = within;
    }
    let store = state.store.clone();
    let answer = blocking(move || Ok(live::snapshot(&*store, &query)?)).await?;
    Ok(Json(answer))
}

/// The runtime detectors on one trace once its root span has arrived, read beside earlier
/// runs of its operation; the findings this trace is evidence of.
#[utoipa::path(
    get,
    path = "/api/v1/live/traces/{id}/findings",
    tag = "live",
    params(("id" = String, Path, description = "Trace id, or a unique prefix of it")),
    responses(
        (status = 200, description = "The trace's findings (none until it is complete)", body = TraceFindings),
        (status = 400, description = "Not a trace id, or an ambiguous prefix", body = super::ApiErrorBody),
        (status = 404, description = "No such trace", body = super::ApiErrorBody),
    )
)]
pub async fn trace_findings(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<TraceFindings> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let answer = blocking(move || {
        let trace_id = store.resolve_trace_id(&id)?;
        Ok(live::trace_findings(&*store, trace_id)?)
    })
    .await?;
    Ok(Json(answer))
}

/// A session in progress: current turn, tool calls so far, the action running now, tokens,
/// context size per LLM call, and the session detectors' findings with when each fired.
#[utoipa::path(
    get,
    path = "/api/v1/live/sessions/{id}",
    tag = "live",
    params(("id" = String, Path, description = "`latest`, a trace id or unique prefix, or the agent's session id")),
    responses(
        (status = 200, description = "The session's progress", body = SessionProgress),
        (status = 400, description = "An ambiguous prefix, or `latest` with no session stored", body = super::ApiErrorBody),
        (status = 404, description = "No such session", body = super::ApiErrorBody),
    )
)]
pub async fn session_progress(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionProgress> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let answer = blocking(move || {
        let trace_id = live::resolve_session(&*store, &id)?;
        Ok(live::session_progress(&*store, trace_id)?)
    })
    .await?;
    Ok(Json(answer))
}

/// A session turn by turn: each tool call with its status, duration and a one-line summary,
/// findings where they fired, linked `devtrace run` traces.
#[utoipa::path(
    get,
    path = "/api/v1/live/sessions/{id}/timeline",
    tag = "live",
    params(("id" = String, Path, description = "`latest`, a trace id or unique prefix, or the agent's session id")),
    responses(
        (status = 200, description = "The session, one line per entry", body = SessionTimeline),
        (status = 400, description = "An ambiguous prefix, or `latest` with no session stored", body = super::ApiErrorBody),
        (status = 404, description = "No such session", body = super::ApiErrorBody),
    )
)]
pub async fn session_timeline(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionTimeline> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let answer = blocking(move || Ok(live::session_timeline(&*store, &id)?)).await?;
    Ok(Json(answer))
}

fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
