//! What a store holds, at a glance: the first thing an assistant or a person asks for.
//! Services, time range, top operations, recent errors, runs and development sessions.

use crate::window::{Anchor, Window, default_window};
use devtrace_analyze::perf::{OperationTotal, RootRun, rank_operations};
use devtrace_store::{
    ServiceSummary, SessionQuery, SessionSummary, Store, StoreError, StoreStats, TraceQuery,
    TraceSummary,
};
use serde::Serialize;

/// Recent traces ranked for "top operations by time".
const RANKED_TRACES: usize = 1_000;

/// How much of each list an overview carries.
#[derive(Clone, Copy, Debug)]
pub struct OverviewLimits {
    pub operations: usize,
    pub errors: usize,
    pub runs: usize,
    pub sessions: usize,
}

impl Default for OverviewLimits {
    fn default() -> Self {
        Self {
            operations: 10,
            errors: 5,
            runs: 5,
            sessions: 5,
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Overview {
    pub stats: StoreStats,
    /// Earliest trace start and latest trace end in scope, when there are traces.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<u64>>))]
    pub time_range: Option<(u64, u64)>,
    pub services: Vec<ServiceSummary>,
    /// Root operations by total time over the most recent traces.
    pub top_operations: Vec<OperationTotal>,
    /// How many recent traces `top_operations` ranks.
    pub ranked_traces: usize,
    pub recent_errors: Vec<TraceSummary>,
    pub recent_runs: Vec<TraceSummary>,
    /// Development sessions started in scope, newest first (their numbers, no findings: those
    /// need each session read and analysed).
    pub recent_sessions: Vec<SessionSummary>,
    /// The default window, when the caller gave no `since` (its `note` says when it is not the
    /// last hour).
    pub window: Option<Window>,
}

/// The overview since `since`, or over the default window (`crate::window`) when `None`.
pub fn overview_or_default(
    store: &dyn Store,
    since_unix_nano: Option<u64>,
    now: u64,
    limits: OverviewLimits,
) -> Result<Overview, StoreError> {
    if since_unix_nano.is_some() {
        return overview(store, since_unix_nano, limits);
    }
    // The overview lists development sessions too: the window follows them as well.
    let window = default_window(store, now, Anchor::Everything)?;
    let mut seen = overview(store, Some(window.since_unix_nano), limits)?;
    seen.window = Some(window);
    Ok(seen)
}

/// The overview of traces started at or after `since` (all when `None`).
pub fn overview(
    store: &dyn Store,
    since_unix_nano: Option<u64>,
    limits: OverviewLimits,
) -> Result<Overview, StoreError> {
    let services = store.services(since_unix_nano)?;
    let time_range = services
        .iter()
        .map(|s| (s.first_start_unix_nano, s.last_end_unix_nano))
        .reduce(|(a0, a1), (b0, b1)| (a0.min(b0), a1.max(b1)));
    let recent = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano,
        limit: RANKED_TRACES,
        ..Default::default()
    })?;
    let mut top_operations = rank_roots(&recent);
    top_operations.truncate(limits.operations);
    let recent_errors = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano,
        errors_only: true,
        limit: limits.errors,
        ..Default::default()
    })?;
    let recent_runs = store.list_traces(&TraceQuery {
        since_unix_nano,
        runs_only: true,
        limit: limits.runs,
        ..Default::default()
    })?;
    let recent_sessions = if limits.sessions == 0 {
        Vec::new()
    } else {
        store.list_sessions(&SessionQuery {
            since_unix_nano,
            limit: limits.sessions,
            ..Default::default()
        })?
    };
    Ok(Overview {
        stats: store.stats()?,
        time_range,
        services,
        top_operations,
        ranked_traces: recent.len(),
        recent_errors,
        recent_runs,
        recent_sessions,
        window: None,
    })
}

/// The traces' root operations (name and service) ranked by total time, from their summaries:
/// each run's duration and outcome are its root span's own.
pub fn rank_roots(summaries: &[TraceSummary]) -> Vec<OperationTotal> {
    rank_operations(summaries.iter().map(|s| RootRun {
        name: s.root_name.clone(),
        service: s.service.clone(),
        duration_nanos: s.duration_nanos(),
        failed: s.root_failed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{add_sessions, store_with, trace};
    use devtrace_model::{KeyValue, StatusCode, semconv};

    #[test]
    fn overview_counts_services_ranks_operations_and_lists_errors_runs_and_sessions() {
        let mut failing = trace(2, vec![], vec![]);
        failing.spans[0].status.code = StatusCode::Error;
        let mut run = trace(3, vec![KeyValue::new(semconv::RUN_ID, "ab")], vec![]);
        run.spans[0].name = "op 1".into();
        let session = trace(
            4,
            vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
                KeyValue::new(semconv::SESSION_AGENT, "claude-code"),
                KeyValue::new(semconv::SESSION_PROJECT, "/work/shop"),
            ],
            vec![],
        );
        let (dir, store) = store_with(vec![trace(1, vec![], vec![]), failing, run]);
        add_sessions(&dir, vec![session]);
        let seen = overview(&store, None, OverviewLimits::default()).unwrap();
        assert_eq!(seen.stats.traces, 4);
        assert_eq!(seen.time_range, Some((1_000, 4_500)));
        assert_eq!(seen.services.len(), 1);
        assert_eq!(
            (seen.services[0].traces, seen.services[0].error_traces),
            (4, 1)
        );
        let ops: Vec<(&str, usize, u64)> = seen
            .top_operations
            .iter()
            .map(|o| (o.operation.as_str(), o.runs, o.errors))
            .collect();
        // The session is listed as a session, not ranked among the program's operations.
        assert_eq!(ops, [("op 1", 2, 0), ("op 2", 1, 1)]);
        assert_eq!(seen.ranked_traces, 3);
        assert_eq!(seen.recent_errors.len(), 1);
        assert_eq!(seen.recent_runs.len(), 1);
        assert_eq!(seen.recent_runs[0].start_unix_nano, 3_000);
        let sessions: Vec<(&str, &str, u64)> = seen
            .recent_sessions
            .iter()
            .map(|s| {
                (
                    s.facts.agent.as_str(),
                    s.facts.project.as_str(),
                    s.facts.start_unix_nano,
                )
            })
            .collect();
        assert_eq!(sessions, [("claude-code", "/work/shop", 4_000)]);
        let later = overview(&store, Some(10_000), OverviewLimits::default()).unwrap();
        assert_eq!((later.time_range, later.top_operations.len()), (None, 0));
        assert!(later.recent_sessions.is_empty());
        let none = OverviewLimits {
            sessions: 0,
            ..OverviewLimits::default()
        };
        assert!(
            overview(&store, None, none)
                .unwrap()
                .recent_sessions
                .is_empty()
        );
    }
}
