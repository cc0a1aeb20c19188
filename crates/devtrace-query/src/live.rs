//! What is happening now: the read side of the live dashboard (`devtrace watch`), which reads
//! it from the store directly or from a server through `GET /api/v1/live…`, the same answers
//! either way.
//!
//! - [`snapshot`]: the cheap question asked many times a second: the store's counters, the
//!   newest program traces and the sessions active lately, from summary rows only (no span is
//!   decoded);
//! - [`trace_findings`]: the runtime detectors on one completed trace, read beside the earlier
//!   runs of its operation so the detectors that compare runs can fire, keeping the findings
//!   this trace is evidence of;
//! - [`session_progress`]: a session in progress: its current turn, tool calls so far, the
//!   action running now, tokens, the context size per LLM call, and the session detectors'
//!   findings, each with the moment it became evident and a one-line piece of evidence.
//!
//! The dashboard decides *when* to ask (a trace once it has its root, a session each time it
//! grows); this module only answers. Nothing here formats for a terminal: recorded text is
//! returned as recorded and escaped by whoever shows it.

use crate::scope::QueryError;
use devtrace_analyze::pricing::{BUILT_IN_AS_OF, PriceTable};
use devtrace_analyze::session::{Action, SessionView};
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::session::{SessionFacts, session_role};
use devtrace_model::{AnyValue, Operation, OperationFilter, SpanId, TraceId, semconv};
use devtrace_store::{
    SessionQuery, SessionSummary, Store, StoreError, StoreStats, TraceQuery, TraceSummary,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Traces a snapshot lists when not told, and at most.
pub const DEFAULT_TRACES: usize = 50;
pub const MAX_TRACES: usize = 500;
/// Sessions a snapshot lists when not told, and at most.
pub const DEFAULT_SESSIONS: usize = 10;
pub const MAX_SESSIONS: usize = 50;
/// A session counts as in progress when something happened in it this recently.
pub const DEFAULT_ACTIVE_WITHIN_NANOS: u64 = 15 * 60 * 1_000_000_000;
/// Earlier runs of the same operation read beside a completed trace.
pub const EARLIER_RUNS: usize = 9;
/// LLM calls whose context size a session's progress reports (the most recent).
pub const CONTEXT_POINTS: usize = 60;

/// What a snapshot lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveQuery {
    pub traces: usize,
    pub sessions: usize,
    pub active_within_nanos: u64,
    /// The present, Unix nanoseconds (passed in, so answers are reproducible).
    pub now_unix_nano: u64,
}

impl LiveQuery {
    pub fn at(now_unix_nano: u64) -> Self {
        Self {
            traces: DEFAULT_TRACES,
            sessions: DEFAULT_SESSIONS,
            active_within_nanos: DEFAULT_ACTIVE_WITHIN_NANOS,
            now_unix_nano,
        }
    }
}

/// The store at a glance, as often as the dashboard asks.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveSnapshot {
    /// When it was taken, Unix nanoseconds.
    pub now_unix_nano: u64,
    /// The store's counters (spans, traces and logs ever committed).
    pub stats: StoreStats,
    /// The newest program traces (development sessions left out), newest start first.
    pub traces: Vec<TraceSummary>,
    /// Sessions with activity within the asked window, most recently active first.
    pub sessions: Vec<SessionSummary>,
}

/// The cheap part of the live view: counters and summary rows, no spans decoded.
pub fn snapshot(store: &dyn Store, query: &LiveQuery) -> Result<LiveSnapshot, QueryError> {
    let stats = store.stats()?;
    let traces = store.list_traces(&TraceQuery {
        runtime_only: true,
        limit: query.traces.clamp(1, MAX_TRACES),
        ..Default::default()
    })?;
    let mut sessions = store.list_sessions(&SessionQuery {
        active_between: Some((
            query
                .now_unix_nano
                .saturating_sub(query.active_within_nanos),
            u64::MAX,
        )),
        limit: query.sessions.clamp(1, MAX_SESSIONS),
        ..Default::default()
    })?;
    sessions.sort_by(|a, b| {
        b.facts
            .end_unix_nano
            .cmp(&a.facts.end_unix_nano)
            .then(b.trace_id.cmp(&a.trace_id))
    });
    Ok(LiveSnapshot {
        now_unix_nano: query.now_unix_nano,
        stats,
        traces,
        sessions,
    })
}

/// The runtime findings one completed trace is evidence of.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceFindings {
    pub trace_id: TraceId,
    /// The trace's summary row as it was analysed.
    pub summary: TraceSummary,
    /// The trace has its root span: it is complete as far as anyone can tell, and was
    /// analysed. (Without a root, its spans are still arriving: ask again later.)
    pub complete: bool,
    /// Traces the detectors read: this one and earlier runs of its operation.
    pub traces_analysed: usize,
    /// Findings whose evidence includes this trace, ranked.
    pub findings: Vec<Finding>,
}

/// Runs the runtime detectors on trace `trace_id` once it has its root span, beside up to
/// [`EARLIER_RUNS`] earlier traces of its root operation (regressions and recurring errors
/// need history), and keeps the findings this trace is evidence of.
pub fn trace_findings(store: &dyn Store, trace_id: TraceId) -> Result<TraceFindings, QueryError> {
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_hex()))?;
    let summary = stored.summary.clone();
    let trace = AnalyzedTrace::new(trace_id, stored.spans);
    let Some(root) = trace.root() else {
        return Ok(TraceFindings {
            trace_id,
            summary,
            complete: false,
            traces_analysed: 0,
            findings: Vec::new(),
        });
    };
    // The root's own operation (service, name, kind): another service's span of the same name
    // is not an earlier run of it.
    let operation = OperationFilter::exactly(&Operation::of(&trace.spans, trace.span(root)));
    let earlier: Vec<TraceSummary> = store
        .traces_with_operation(&operation, None, EARLIER_RUNS + 1)?
        .into_iter()
        .filter(|s| s.trace_id != trace_id && s.start_unix_nano <= summary.start_unix_nano)
        .take(EARLIER_RUNS)
        .collect();
    let mut traces = crate::scope::load(store, &earlier)?;
    traces.push(trace);
    let findings = crate::analytics::trace_findings(&traces)
        .into_iter()
        .filter(|f| f.evidence.iter().any(|e| e.trace_id == trace_id))
        .collect();
    Ok(TraceFindings {
        trace_id,
        summary,
        complete: true,
        traces_analysed: traces.len(),
        findings,
    })
}

/// The turn a session is in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentTurn {
    /// 1 for the first turn.
    pub number: usize,
    /// The prompt's first line (as recorded: escape it to show it).
    pub prompt: String,
    pub start_unix_nano: u64,
}

/// One tool call or event, in a line.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionLine {
    pub span_id: SpanId,
    /// The tool (`Bash`, `Edit`) or event type.
    pub tool: String,
    /// The command's first line, else the path, else empty (as recorded).
    pub subject: String,
    /// `running` (no result yet), `ok` or `failed`.
    pub outcome: String,
    pub exit_code: Option<i64>,
    /// The failure's message, its first line.
    pub error: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

/// A session finding and when it became evident.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FiredFinding {
    pub finding: Finding,
    /// The span of its last piece of evidence: the action on which it fired.
    pub at_span: Option<SpanId>,
    /// When that action ended.
    pub at_unix_nano: u64,
    /// That action in a line: what shows it.
    pub evidence: Option<ActionLine>,
}

/// A session in progress.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionProgress {
    pub trace_id: TraceId,
    pub facts: SessionFacts,
    pub turn: Option<CurrentTurn>,
    pub tools_ok: u64,
    pub tools_failed: u64,
    /// The latest tool call when it has no result yet.
    pub running: Option<ActionLine>,
    /// The latest tool call with a result.
    pub last_action: Option<ActionLine>,
    /// Input tokens of the most recent LLM calls (at most [`CONTEXT_POINTS`]), oldest first:
    /// the context the model read each time.
    pub context_tokens: Vec<u64>,
    /// The session detectors' findings, in the order they became evident.
    pub findings: Vec<FiredFinding>,
    /// What the session's LLM calls cost at the built-in price table, when any call's model
    /// has a price.
    pub cost: Option<SessionCost>,
}

/// An estimate of what a session's LLM calls cost.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionCost {
    /// US dollars, cache reads and writes priced apart.
    pub usd: f64,
    pub priced_calls: usize,
    /// Calls whose model has no price in the table (left out of `usd`).
    pub unpriced_calls: usize,
    /// The date of the built-in price table (`devtrace_analyze::pricing::BUILT_IN_AS_OF`).
    pub prices_as_of: String,
    /// The price table used: the built-in one, `+ configuration` when the config file's
    /// `[prices]` changed it.
    #[serde(default)]
    pub prices: String,
}

/// The cost of the session's LLM calls at the configured prices
/// ([`crate::sessions::tokens::prices`]; per request, cache reads and writes priced apart:
/// `devtrace_analyze::session_tokens`); `None` when no call is priced.
fn session_cost(view: &SessionView, prices: &PriceTable) -> Option<SessionCost> {
    let accounting = devtrace_analyze::session_tokens::account(view, prices);
    (accounting.priced > 0).then(|| SessionCost {
        usd: accounting.cost_usd,
        priced_calls: accounting.priced,
        unpriced_calls: accounting.unpriced,
        prices_as_of: BUILT_IN_AS_OF.to_owned(),
        prices: prices.source.clone(),
    })
}

/// The session `trace_id` as it stands, with every session detector re-run on it.
pub fn session_progress(
    store: &dyn Store,
    trace_id: TraceId,
) -> Result<SessionProgress, QueryError> {
    let summary = store.session(trace_id)?.ok_or_else(|| {
        StoreError::TraceNotFound(format!("{} (not a session)", trace_id.to_hex()))
    })?;
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_hex()))?;
    let trace = AnalyzedTrace::new(trace_id, stored.spans);
    let view = SessionView::new(&trace);
    // The same settings (prices, cache lifetime) as every other face's session analysis.
    let settings = crate::sessions::tokens::settings()?;
    let (findings, _) = crate::sessions::analysis::analyse(store, &view, &settings);
    Ok(progress_of(
        &view,
        summary.facts,
        findings,
        &settings.prices,
    ))
}

fn text(span: &devtrace_model::Span, key: &str) -> Option<String> {
    span.attr(key)
        .and_then(AnyValue::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Whether the tool call has its result: a failure, an exit code or output recorded.
fn has_result(trace: &AnalyzedTrace, action: &Action) -> bool {
    let span = trace.span(action.span);
    action.failed
        || action.exit_code.is_some()
        || span.attr(semconv::SESSION_OUTPUT_BYTES).is_some()
        || span.attr(semconv::SESSION_OUTPUT).is_some()
        || action.duration() > 0
        || session_role(span) == Some(semconv::SESSION_SPAN_EVENT)
}

fn action_line(trace: &AnalyzedTrace, action: &Action) -> ActionLine {
    let subject = action
        .command
        .as_deref()
        .and_then(|c| c.lines().next())
        .map(str::to_owned)
        .or_else(|| action.path.clone())
        .unwrap_or_default();
    ActionLine {
        span_id: action.span_id,
        tool: action.tool.clone(),
        subject,
        outcome: if !has_result(trace, action) {
            "running"
        } else if action.failed {
            "failed"
        } else {
            "ok"
        }
        .to_owned(),
        exit_code: action.exit_code,
        error: action.error.lines().next().unwrap_or("").to_owned(),
        start_unix_nano: action.start,
        end_unix_nano: action.end,
    }
}

/// The progress of a session from its view and findings (pure; [`session_progress`] loads).
pub fn progress_of(
    view: &SessionView,
    facts: SessionFacts,
    findings: Vec<Finding>,
    prices: &PriceTable,
) -> SessionProgress {
    let trace = view.trace;
    let turn = view.turns.last().map(|&t| {
        let span = trace.span(t);
        CurrentTurn {
            number: view.turns.len(),
            prompt: devtrace_model::session::prompt_title(
                &text(span, semconv::SESSION_PROMPT).unwrap_or_default(),
            ),
            start_unix_nano: span.start_unix_nano,
        }
    });
    let tools = view
        .actions
        .iter()
        .filter(|a| session_role(trace.span(a.span)) == Some(semconv::SESSION_SPAN_TOOL));
    let (mut tools_ok, mut tools_failed) = (0, 0);
    for action in tools.clone() {
        if action.failed {
            tools_failed += 1;
        } else if has_result(trace, action) {
            tools_ok += 1;
        }
    }
    let latest = tools.clone().max_by_key(|a| (a.start, a.end));
    let running = latest
        .filter(|a| !has_result(trace, a))
        .map(|a| action_line(trace, a));
    let last_action = tools
        .filter(|a| has_result(trace, a))
        .max_by_key(|a| (a.end, a.start))
        .map(|a| action_line(trace, a));
    let context_tokens: Vec<u64> = view
        .llm_calls
        .iter()
        .rev()
        .take(CONTEXT_POINTS)
        .map(|c| c.input_tokens)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let by_id: HashMap<SpanId, &Action> = view.actions.iter().map(|a| (a.span_id, a)).collect();
    let index: HashMap<SpanId, usize> = trace
        .spans
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut fired: Vec<FiredFinding> = findings
        .into_iter()
        .map(|finding| {
            // The same rule as the timeline: a finding shows on its last piece of evidence.
            let last = finding
                .evidence
                .iter()
                .flat_map(|e| e.span_ids.iter())
                .filter_map(|s| index.get(s).map(|i| (trace.span(*i).end_unix_nano, *s)))
                .max();
            FiredFinding {
                at_span: last.map(|(_, s)| s),
                at_unix_nano: last.map_or(0, |(t, _)| t),
                evidence: last
                    .and_then(|(_, s)| by_id.get(&s))
                    .map(|a| action_line(trace, a)),
                finding,
            }
        })
        .collect();
    fired.sort_by_key(|f| f.at_unix_nano);
    SessionProgress {
        cost: session_cost(view, prices),
        trace_id: trace.trace_id,
        facts,
        turn,
        tools_ok,
        tools_failed,
        running,
        last_action,
        context_tokens,
        findings: fired,
    }
}

/// One line of a session followed turn by turn.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineLine {
    /// `turn`, `tool`, `event` or `agent` (a sub-agent starting).
    pub kind: String,
    pub span_id: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    /// 0 for the main agent, one more per sub-agent level.
    pub depth: usize,
    /// The turn's prompt title, the sub-agent's type, or the tool (`Bash`, `Edit`).
    pub label: String,
    /// What a tool call acted on: the command's first line, else the path.
    pub subject: String,
    /// `ok`, `failed` or `running` (a tool call with no result yet).
    pub outcome: Option<String>,
    pub exit_code: Option<i64>,
    /// A one-line summary: the error's first line, else the output's first line.
    pub summary: String,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Traces of `devtrace run` executions this command ran.
    pub linked_runs: Vec<String>,
    /// Indices into [`SessionTimeline::findings`] of the findings that fired on this line.
    pub findings: Vec<usize>,
}

/// A session turn by turn with its findings where they fired: the session timeline of
/// [`crate::sessions::session_overview`] in one line per entry (no outputs, diffs or replies).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionTimeline {
    pub session: crate::sessions::SessionItem,
    pub lines: Vec<TimelineLine>,
    pub findings: Vec<Finding>,
    pub linked_runs: Vec<crate::sessions::LinkedRun>,
}

/// First non-empty line of `text`.
fn first_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// The session `id` (trace id, prefix or the agent's session id) turn by turn.
pub fn session_timeline(store: &dyn Store, id: &str) -> Result<SessionTimeline, QueryError> {
    let trace_id = resolve_session(store, id)?;
    let overview = crate::sessions::session_overview(store, &trace_id.to_hex())?;
    let lines = crate::sessions::text_timeline(&overview)
        .map(|entry| TimelineLine {
            kind: entry.kind.to_owned(),
            span_id: entry.span_id.clone(),
            start_unix_nano: entry.start_unix_nano,
            duration_ns: entry.duration_ns,
            depth: entry.depth,
            label: entry.label.clone(),
            subject: entry
                .command
                .as_deref()
                .map(first_line)
                .or(entry.path.as_deref())
                .unwrap_or("")
                .to_owned(),
            // A tool call recorded when it started (a hook's PreToolUse, a transcript's
            // tool_use) has no result until it ends.
            outcome: if entry.kind == "tool"
                && entry.outcome == Some("ok")
                && entry.duration_ns == 0
                && entry.exit_code.is_none()
                && entry.output.is_none()
                && entry.output_bytes.is_none()
            {
                Some("running".to_owned())
            } else {
                entry.outcome.map(str::to_owned)
            },
            exit_code: entry.exit_code,
            summary: first_line(
                entry
                    .error
                    .as_deref()
                    .or(entry.output.as_deref())
                    .unwrap_or(""),
            )
            .to_owned(),
            input_tokens: entry.input_tokens,
            output_tokens: entry.output_tokens,
            linked_runs: entry.linked_runs.clone(),
            findings: entry.findings.clone(),
        })
        .collect();
    Ok(SessionTimeline {
        session: overview.session,
        lines,
        findings: overview.findings,
        linked_runs: overview.linked_runs,
    })
}

/// The most recently started session, for `watch --session latest`.
pub fn latest_session(store: &dyn Store) -> Result<Option<TraceId>, QueryError> {
    Ok(store
        .list_sessions(&SessionQuery {
            limit: 1,
            ..Default::default()
        })?
        .first()
        .map(|s| s.trace_id))
}

/// A session argument: `latest`, a trace id or unique prefix, or the agent's session id.
pub fn resolve_session(store: &dyn Store, id: &str) -> Result<TraceId, QueryError> {
    if id.trim() == "latest" {
        return latest_session(store)?.ok_or_else(|| {
            QueryError::Invalid(
                "no sessions stored yet: import some with `devtrace import claude-code` (add --follow to keep importing) or record them with the hooks".into(),
            )
        });
    }
    crate::sessions::resolve_session(store, id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_analyze::detectors::session::run_all_with as session_detectors;
    use devtrace_model::{KeyValue, Resource, Scope, Span, SpanBatch, Status, StatusCode};

    const S: u64 = 1_000_000_000;

    /// A session span and four failing `npm test` calls a second apart, then a `Read` whose
    /// result has not arrived.
    fn session() -> AnalyzedTrace {
        let trace_id = TraceId([3; 16]);
        let root_id = devtrace_model::session::session_span_id(trace_id);
        let mut root = Span::new(trace_id, root_id, None, "session", 0, 20 * S);
        root.attributes = vec![KeyValue::new(
            semconv::SESSION_SPAN,
            semconv::SESSION_SPAN_SESSION,
        )];
        let mut spans = vec![root];
        let tool = |n: u8, name: &str, start: u64, end: u64| {
            let mut span = Span::new(
                trace_id,
                SpanId([n; 8]),
                Some(root_id),
                "execute_tool",
                start,
                end,
            );
            span.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
                KeyValue::new(semconv::GEN_AI_TOOL_NAME, name),
            ];
            span
        };
        for n in 0..4u8 {
            let start = u64::from(n) * 2 * S;
            let mut span = tool(n + 1, "Bash", start, start + S);
            span.attributes.extend([
                KeyValue::new(semconv::SESSION_ACTION, "command"),
                KeyValue::new(semconv::SESSION_COMMAND, "npm test"),
                KeyValue::new(semconv::SESSION_EXIT_CODE, 1i64),
            ]);
            span.status = Status {
                code: StatusCode::Error,
                message: "npm ERR! missing script: test".into(),
            };
            spans.push(span);
        }
        for (n, model) in [(20u8, "claude-sonnet-4-20250514"), (21, "mystery-model")] {
            let mut chat = Span::new(trace_id, SpanId([n; 8]), Some(root_id), "chat", S, 2 * S);
            chat.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
                KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, model),
                KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, 10_000i64),
                KeyValue::new(semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 8_000i64),
                KeyValue::new(semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 1_000i64),
                KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, 500i64),
            ];
            spans.push(chat);
        }
        let mut read = tool(9, "Read", 10 * S, 10 * S);
        read.attributes.extend([
            KeyValue::new(semconv::SESSION_ACTION, "read"),
            KeyValue::new(semconv::SESSION_FILE_PATH, "/repo/package.json"),
        ]);
        spans.push(read);
        AnalyzedTrace::new(
            trace_id,
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans,
            },
        )
    }

    #[test]
    fn a_retry_loop_fires_on_its_last_failing_command_and_a_call_without_result_is_running() {
        let trace = session();
        let view = SessionView::new(&trace);
        let settings = Default::default();
        let findings = session_detectors(std::slice::from_ref(&view), &settings);
        let progress = progress_of(&view, SessionFacts::default(), findings, &settings.prices);
        let retry = progress
            .findings
            .iter()
            .find(|f| f.finding.kind == devtrace_analyze::FindingKind::RetryLoop)
            .expect("a retry loop");
        let evidence = retry.evidence.as_ref().expect("evidence");
        assert_eq!(evidence.subject, "npm test");
        assert_eq!(evidence.outcome, "failed");
        assert_eq!(evidence.exit_code, Some(1));
        assert_eq!(evidence.span_id, SpanId([4; 8]), "the fourth failure");
        assert_eq!(retry.at_span, Some(SpanId([4; 8])));
        assert_eq!(retry.at_unix_nano, 7 * S);
        assert_eq!((progress.tools_ok, progress.tools_failed), (0, 4));
        let running = progress.running.expect("the read is running");
        assert_eq!(
            (running.tool.as_str(), running.subject.as_str()),
            ("Read", "/repo/package.json")
        );
        assert_eq!(running.outcome, "running");
        assert_eq!(progress.last_action.unwrap().span_id, SpanId([4; 8]));
        // Claude Sonnet 4 at $3 / $0.30 cache read / $3.75 cache write / $15 per million:
        // 1,000 plain input, 8,000 read, 1,000 written, 500 out; the unknown model left out.
        let cost = progress.cost.expect("one call is priced");
        assert!((cost.usd - 0.01665).abs() < 1e-9, "{}", cost.usd);
        assert_eq!((cost.priced_calls, cost.unpriced_calls), (1, 1));
        assert_eq!(progress.context_tokens, [10_000, 10_000]);
    }
}
