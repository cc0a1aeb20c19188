//! The API port's shared state, below every route that reads it (the REST API, MCP over HTTP,
//! sign-in): the store and writer, the ingest rate, the cache of traces a viewer opened,
//! authentication, the live commit feed, and QA's workers. `ApiState` is also each handler's
//! extractor, with the store scoped to the request's project.

use devtrace_analyze::AnalyzedTrace;
use devtrace_model::TraceId;
use devtrace_query::QueryError;
use devtrace_query::analytics::{
    FindingsOfTrace, findings_of_trace_in, trace_findings_scope, window_findings,
};
use devtrace_store::writer::WriteHandle;
use devtrace_store::{Store, StoreError, TraceSummary};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct ApiState {
    /// The default project's store; a handler's `ApiState` holds its request's project's.
    pub store: Arc<dyn Store>,
    pub writer: WriteHandle,
    pub rate: IngestRate,
    pub mcp: crate::mcp_http::McpHttp,
    /// Traces recently opened in a viewer, built once.
    pub traces: TraceCache,
    /// Becomes true when the server shuts down, so long-lived responses (event streams) end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Applied to sessions posted to the REST API, as to everything ingested.
    pub redactor: Arc<devtrace_ingest::redact::Redactor>,
    pub auth: crate::auth::Auth,
    /// Commits heard from every node, per project (live updates).
    pub feed: Arc<dyn devtrace_store::CommitFeed>,
    /// Mark the login cookie `Secure` (the API port serves HTTPS).
    pub secure_cookies: bool,
    /// Who the request acts as (set per request by authentication).
    pub principal: Option<crate::auth::Principal>,
    /// QA of sessions: defaults, `serve --qa`, and the workers to wake. Without it jobs are
    /// still queued in the store, for a process with workers to run.
    pub qa: Option<devtrace_qa::worker::QaHandle>,
}

/// A handler's state: the server's, with the store scoped to the request's project.
impl axum::extract::FromRequestParts<ApiState> for ApiState {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let mut scoped = state.clone();
        if let Some(crate::mcp_http::ProjectStore(store)) = parts.extensions.get() {
            scoped.store = Arc::clone(store);
        }
        scoped.principal = parts.extensions.get::<crate::auth::Principal>().cloned();
        Ok(scoped)
    }
}

/// Committed spans per second over a sliding ten-second window, sampled once a second.
#[derive(Clone)]
pub struct IngestRate {
    samples: Arc<Mutex<VecDeque<(Instant, u64)>>>,
}

const WINDOW: usize = 11;

impl IngestRate {
    /// Starts sampling on the current runtime; stops when the runtime does.
    pub fn start(writer: WriteHandle) -> Self {
        let rate = Self {
            samples: Arc::default(),
        };
        let samples = Arc::clone(&rate.samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let mut samples = samples.lock().expect("rate samples poisoned");
                samples.push_back((Instant::now(), writer.committed_spans()));
                if samples.len() > WINDOW {
                    samples.pop_front();
                }
            }
        });
        rate
    }

    pub fn spans_per_second(&self) -> f64 {
        let samples = self.samples.lock().expect("rate samples poisoned");
        match (samples.front(), samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// The last few traces opened, built into trees: a viewer asks for a trace's waterfall, then
/// for its spans one by one, and a large trace should be decoded once, not per click. An
/// entry is reused only while the trace's span count is unchanged (a trace still receiving
/// spans is rebuilt). Beside them, the findings of the last windows their pages read: every
/// trace page of the same traces shows its part of the same findings, found once.
#[derive(Clone, Default)]
pub struct TraceCache {
    entries: Arc<Mutex<Vec<Arc<CachedTrace>>>>,
    windows: Arc<Mutex<Vec<Arc<WindowFindings>>>>,
}

/// The findings of one window's traces, ranked ([`devtrace_query::analytics::window_findings`]).
struct WindowFindings {
    project: devtrace_store::ProjectId,
    /// The traces read, as their summary rows were: a trace that grew or a window that moved
    /// reads again.
    summaries: Vec<TraceSummary>,
    findings: Vec<devtrace_analyze::Finding>,
}

/// Windows kept.
const CACHED_WINDOWS: usize = 2;

pub struct CachedTrace {
    /// The project the trace was read from: the same id may name another trace elsewhere.
    pub project: devtrace_store::ProjectId,
    pub summary: TraceSummary,
    pub trace: AnalyzedTrace,
    pub logs: devtrace_model::LogBatch,
}

/// Traces kept.
const CACHED_TRACES: usize = 4;

impl TraceCache {
    /// The trace `id` (full id or unique prefix), from the cache when current.
    pub fn get(
        &self,
        store: &dyn devtrace_store::Store,
        id: &str,
    ) -> Result<Arc<CachedTrace>, StoreError> {
        let trace_id: TraceId = store.resolve_trace_id(id)?;
        let current = store
            .trace_summary(trace_id)?
            .ok_or_else(|| StoreError::TraceNotFound(id.to_owned()))?;
        let cached = {
            let entries = self.entries.lock().expect("trace cache poisoned");
            entries
                .iter()
                .find(|e| e.trace.trace_id == trace_id && e.project == store.project())
                .cloned()
        };
        if let Some(entry) = cached
            && entry.summary == current
        {
            return Ok(entry);
        }
        let found = store
            .get_trace(trace_id)?
            .ok_or_else(|| StoreError::TraceNotFound(id.to_owned()))?;
        let logs = store.logs_for_trace(trace_id)?;
        let entry = Arc::new(CachedTrace {
            project: store.project(),
            trace: AnalyzedTrace::new(trace_id, found.spans),
            summary: found.summary,
            logs,
        });
        let mut entries = self.entries.lock().expect("trace cache poisoned");
        entries.retain(|e| e.trace.trace_id != trace_id);
        entries.insert(0, Arc::clone(&entry));
        entries.truncate(CACHED_TRACES);
        Ok(entry)
    }

    /// The findings about trace `id` at `now`, the window's findings found once for every trace
    /// of the same traces.
    pub fn findings(
        &self,
        store: &dyn Store,
        id: &str,
        now: u64,
    ) -> Result<FindingsOfTrace, QueryError> {
        let trace_id = store.resolve_trace_id(id)?;
        let scope = trace_findings_scope(store, trace_id, now)?;
        let cached = {
            let windows = self.windows.lock().expect("findings cache poisoned");
            windows
                .iter()
                .find(|w| w.project == store.project() && w.summaries == scope.summaries)
                .cloned()
        };
        let window = match cached {
            Some(window) => window,
            None => {
                let window = Arc::new(WindowFindings {
                    project: store.project(),
                    findings: window_findings(store, &scope)?,
                    summaries: scope.summaries.clone(),
                });
                let mut windows = self.windows.lock().expect("findings cache poisoned");
                windows.insert(0, Arc::clone(&window));
                windows.truncate(CACHED_WINDOWS);
                window
            }
        };
        Ok(findings_of_trace_in(&scope, &window.findings))
    }
}
