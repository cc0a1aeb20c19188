//! Live updates: a Server-Sent Events stream that says when new spans have been committed.
//!
//! Why SSE and not polling or WebSockets: the browser's `EventSource` reconnects by itself,
//! the stream is one idle HTTP response (no request every second per open tab), and the
//! direction is one-way, which is all the UI needs. Events carry counts, not traces: the UI
//! re-runs its own query (with whatever filters the user set) when told something arrived, so
//! the server never evaluates per-client filters and a busy ingest is coalesced into at most
//! one event per [`TICK`].

use crate::api::ApiState;
use axum::extract::RawQuery;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Serialize;
use std::convert::Infallible;
use std::time::Duration;
use utoipa::ToSchema;

use super::ApiError;
use super::params::Params;
use super::traces::NoParams;

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
                let event = Event::default()
                    .event("ingest")
                    .json_data(&data)
                    .unwrap_or_else(|_| Event::default().event("ingest"));
                return Some((Ok(event), (state, stopping, Some(committed))));
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
