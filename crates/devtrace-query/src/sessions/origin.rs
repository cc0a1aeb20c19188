//! The way back from a recorded run to the session command that made it.

use super::analysis::{load, runs_between};
use devtrace_analyze::session::{LINK_SLACK_NANOS, RunFacts, SessionView, link_runs};
use devtrace_model::{Span, TraceId, semconv};
use devtrace_store::{SessionQuery, Store, StoreError};
use serde::Serialize;

/// The session command that made a recorded run: the other end of
/// [`SessionOverview::linked_runs`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunOrigin {
    /// The session's trace id.
    pub session_trace_id: String,
    /// The agent's own session id.
    pub session_id: String,
    pub agent: String,
    pub title: String,
    /// The tool call (or developer command) that ran it.
    pub tool_span_id: String,
}

/// Sessions active during a run that are examined for the command that made it, newest first.
const ORIGIN_CANDIDATES: usize = 20;

/// Which session made the `devtrace run` recorded in `spans` (the spans of trace `trace_id`),
/// if any: the session whose timeline links this run (see [`link_runs`]), among the sessions
/// active while it ran. `None` for traces that are not runs, which costs nothing.
pub fn run_origin(
    store: &dyn Store,
    trace_id: TraceId,
    spans: &[Span],
) -> Result<Option<RunOrigin>, StoreError> {
    let Some(root) = spans
        .iter()
        .find(|s| s.parent_span_id.is_none() && s.attr(semconv::RUN_ID).is_some())
    else {
        return Ok(None);
    };
    let candidates = store.list_sessions(&SessionQuery {
        active_between: Some((
            root.start_unix_nano.saturating_sub(LINK_SLACK_NANOS),
            root.end_unix_nano.saturating_add(LINK_SLACK_NANOS),
        )),
        limit: ORIGIN_CANDIDATES,
        ..Default::default()
    })?;
    for summary in candidates {
        let Some(trace) = load(store, summary.trace_id)? else {
            continue;
        };
        let view = SessionView::new(&trace);
        // The same matching as the session's own view, so both ends agree.
        let runs: Vec<RunFacts> = runs_between(
            store,
            summary.facts.start_unix_nano,
            summary.facts.end_unix_nano,
        )?
        .into_iter()
        .map(|(facts, _)| facts)
        .collect();
        if let Some((tool, _)) = link_runs(&view.actions, &runs)
            .into_iter()
            .find(|(_, run)| *run == trace_id)
        {
            return Ok(Some(RunOrigin {
                session_trace_id: summary.trace_id.to_hex(),
                session_id: summary.facts.session_id.clone(),
                agent: summary.facts.agent.clone(),
                title: summary.facts.title.clone(),
                tool_span_id: tool.to_hex(),
            }));
        }
    }
    Ok(None)
}
