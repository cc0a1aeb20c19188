//! One trace as a viewer needs it: a compact columnar waterfall that stays small for traces of
//! tens of thousands of spans, the full detail of one span on demand, search within the trace,
//! and the timeline of its events for playback.
//!
//! The waterfall is columns (one entry per span, in depth-first tree order) rather than an
//! array of span objects: names and services are interned in a string table, times are
//! nanosecond offsets from the trace start, so 50,000 spans encode in a few megabytes of JSON
//! and decode in tens of milliseconds. Attributes, events, links and logs stay out of it; the
//! viewer asks for them span by span ([`span_detail`]).

use crate::causal::{CausalArrow, RowWaits, WaitView};
use crate::json::value_json;
use crate::lanes::{Lane, ProcessState};
use devtrace_analyze::classify::{LlmCall, WorkKind, classify, llm_call};
use devtrace_analyze::critical_path::path_credits;
use devtrace_analyze::fold::{DEFAULT_MIN_RUN, FoldedChild, fold_children};
use devtrace_analyze::{AnalyzedTrace, errors};
use devtrace_model::{AnyValue, KeyValue, LogBatch, SpanId, StatusCode, TraceId, semconv};
use devtrace_store::TraceSummary;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The span tree of a trace as parallel columns, indexed by row (depth-first, children in
/// start order).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Waterfall {
    pub trace_id: TraceId,
    pub root_name: String,
    pub service: String,
    /// The earliest span start: every `start` below is an offset from it.
    pub start_unix_nano: u64,
    /// From the earliest start to the latest end, nanoseconds: the time the waterfall spans.
    pub duration_ns: u64,
    /// The trace's duration: its root span's own, nanoseconds
    /// ([`TraceSummary::duration_nanos`]).
    pub root_duration_ns: u64,
    /// When a span ends after the root (a server still working after its client gave up):
    /// how long after the root's start the last one ends.
    pub last_span_end_ns: Option<u64>,
    pub span_count: usize,
    pub error_count: usize,
    /// The trace is a development session: its timeline view is `/sessions/ID`.
    pub session: bool,
    /// For a `devtrace run`, the traces its program sent on its own (an SDK that did not
    /// continue `TRACEPARENT`): where the program's spans are.
    pub attached_traces: Vec<String>,
    /// Names, services and kinds of work, referred to by index from the columns.
    pub strings: Vec<String>,
    pub span_id: Vec<SpanId>,
    /// Row of the parent span, or -1 for a root.
    pub parent: Vec<i64>,
    pub depth: Vec<u32>,
    /// The row just after this span's subtree: rows `i + 1 .. subtree_end[i]` are its
    /// descendants, so collapsing skips them in one step.
    pub subtree_end: Vec<u32>,
    /// Start offset from `start_unix_nano`, nanoseconds.
    pub start: Vec<u64>,
    pub duration: Vec<u64>,
    /// Duration minus time covered by children.
    pub self_time: Vec<u64>,
    /// Index into `strings`.
    pub name: Vec<u32>,
    /// Index into `strings` (the resource's `service.name`).
    pub service_name: Vec<u32>,
    /// Index into `strings`: `llm`, `database`, `http`, `file_io`, `lock_wait` or `other`.
    pub work: Vec<u32>,
    /// 0 unset, 1 ok, 2 error (as OTLP numbers them).
    pub status: Vec<u8>,
    /// Time this span itself spends on the critical path of its root, nanoseconds (0: off the
    /// path).
    pub critical: Vec<u64>,
    /// Whether the span is on the critical path: it or a descendant spends time on it.
    pub on_critical_path: Vec<bool>,
    /// The critical path's length: the sum of `critical`, nanoseconds (what a viewer states
    /// beside the number of spans on the path).
    #[serde(default)]
    pub critical_path_ns: u64,
    pub event_count: Vec<u32>,
    /// Log records correlated with the span.
    pub log_count: Vec<u32>,
    /// Runs of at least five consecutive same-named siblings, which a viewer shows folded.
    pub folds: Vec<Fold>,
    /// Waits another thread's call ended, from the cause to the waiting span
    /// ([`crate::causal`]).
    #[serde(default)]
    pub causal_arrows: Vec<CausalArrow>,
    /// The rows that waited for another thread or process, each with its waits in words
    /// (the `⇠ waited …` lines of `show`), in row order.
    #[serde(default)]
    pub waits: Vec<RowWaits>,
    /// The trace's threads and BEAM processes in order of their first start, each with its
    /// rows ([`crate::lanes`]): a viewer draws them as lanes. Empty (and so are `lane` and
    /// `lane_depth`) when the trace runs on fewer than two: there are no lanes to tell apart.
    #[serde(default)]
    pub lanes: Vec<Lane>,
    /// Each row's lane (an index into `lanes`).
    #[serde(default)]
    pub lane: Vec<u32>,
    /// Each row's depth among its lane's spans (0: no ancestor on the same lane).
    #[serde(default)]
    pub lane_depth: Vec<u32>,
}

/// Consecutive siblings sharing a name: rows `first_row` … up to the end of `last_row`'s subtree.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fold {
    pub first_row: u32,
    pub last_row: u32,
    pub count: u32,
    pub name: String,
    pub total_ns: u64,
    /// How long one member takes, successes and failures apart when any member failed:
    /// "3.1 ms each", "124.0 ms when it succeeds, 503.0 ms when it fails (1 of 6)"
    /// ([`devtrace_analyze::outcome::typical`]).
    pub each: String,
    /// Members that failed, or with a failed span anywhere under them.
    pub errors: u32,
    /// The row of the first failed span inside the fold (itself or under a member), so a
    /// viewer can show it without unfolding everything.
    pub first_error_row: Option<u32>,
}

/// Builds the waterfall of `trace`, with `logs` counted against their spans.
pub fn waterfall(trace: &AnalyzedTrace, summary: &TraceSummary, logs: &LogBatch) -> Waterfall {
    let spans = &trace.spans.spans;
    let n = spans.len();
    let order: Vec<(usize, usize)> = trace.tree.walk().collect();
    let mut row_of = vec![0u32; n];
    for (row, (i, _)) in order.iter().enumerate() {
        row_of[*i] = row as u32;
    }
    let origin = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans
        .iter()
        .map(|s| s.end_unix_nano)
        .max()
        .unwrap_or(origin);

    let critical = critical_per_span(trace);
    let logs_per_span = logs_per_span(logs);

    let mut strings: Vec<String> = Vec::new();
    let mut interned: HashMap<String, u32> = HashMap::new();
    let mut intern = |text: &str| -> u32 {
        if let Some(&i) = interned.get(text) {
            return i;
        }
        let i = strings.len() as u32;
        strings.push(text.to_owned());
        interned.insert(text.to_owned(), i);
        i
    };

    let mut view = Waterfall {
        trace_id: trace.trace_id,
        root_name: summary.root_name.clone(),
        service: summary.service.clone(),
        start_unix_nano: origin,
        duration_ns: end.saturating_sub(origin),
        root_duration_ns: summary.duration_nanos(),
        last_span_end_ns: summary.last_span_end_nanos(),
        span_count: n,
        error_count: spans.iter().filter(|s| s.is_error()).count(),
        session: spans.iter().any(|s| {
            devtrace_model::session::session_role(s) == Some(semconv::SESSION_SPAN_SESSION)
        }),
        attached_traces: crate::runs::attached_traces(spans),
        strings: Vec::new(),
        span_id: Vec::with_capacity(n),
        parent: Vec::with_capacity(n),
        depth: Vec::with_capacity(n),
        subtree_end: Vec::new(),
        start: Vec::with_capacity(n),
        duration: Vec::with_capacity(n),
        self_time: Vec::with_capacity(n),
        name: Vec::with_capacity(n),
        service_name: Vec::with_capacity(n),
        work: Vec::with_capacity(n),
        status: Vec::with_capacity(n),
        critical: Vec::with_capacity(n),
        on_critical_path: Vec::new(),
        critical_path_ns: critical.iter().sum(),
        event_count: Vec::with_capacity(n),
        log_count: Vec::with_capacity(n),
        folds: Vec::new(),
        causal_arrows: crate::causal::arrows(trace),
        waits: crate::causal::row_waits(trace, &row_of),
        lanes: Vec::new(),
        lane: Vec::new(),
        lane_depth: Vec::new(),
    };
    let lanes = crate::lanes::lanes(trace, &order, origin, &view.causal_arrows);
    if lanes.lanes.len() > 1 {
        (view.lanes, view.lane, view.lane_depth) = (lanes.lanes, lanes.lane, lanes.lane_depth);
    }
    let mut parent_of = vec![-1i64; n];
    for (i, children) in trace.tree.children.iter().enumerate() {
        for &c in children {
            parent_of[c] = i64::from(row_of[i]);
        }
    }
    for &(i, depth) in &order {
        let span = &spans[i];
        view.span_id.push(span.span_id);
        view.parent.push(parent_of[i]);
        view.depth.push(depth as u32);
        view.start.push(span.start_unix_nano.saturating_sub(origin));
        view.duration.push(span.duration_nanos());
        view.self_time.push(trace.tree.self_time[i]);
        view.name.push(intern(&span.name));
        view.service_name.push(intern(trace.service(i)));
        view.work.push(intern(classify(trace, i).as_str()));
        view.status.push(span.status.code.to_otlp() as u8);
        view.critical.push(critical[i]);
        view.event_count.push(span.events.len() as u32);
        view.log_count
            .push(logs_per_span.get(&span.span_id).copied().unwrap_or(0));
    }
    view.subtree_end = subtree_ends(trace, &order, &row_of);
    view.on_critical_path = on_critical_path(&view.parent, &view.critical);
    view.folds = folds(trace, &row_of);
    view.strings = strings;
    view
}

/// Per row, the row after its subtree, from the last row back: a row's subtree ends where its
/// last child's does.
fn subtree_ends(trace: &AnalyzedTrace, order: &[(usize, usize)], row_of: &[u32]) -> Vec<u32> {
    let mut subtree_end = vec![0u32; order.len()];
    for row in (0..order.len()).rev() {
        let i = order[row].0;
        subtree_end[row] = match trace.tree.children[i].last() {
            Some(&last) => subtree_end[row_of[last] as usize],
            None => row as u32 + 1,
        };
    }
    subtree_end
}

/// Per row, whether its subtree holds time on the critical path: a row's subtree is rows
/// row..subtree_end[row], so summing from the last row back gives each subtree's time on it.
fn on_critical_path(parent: &[i64], critical: &[u64]) -> Vec<bool> {
    let mut subtree_credit = critical.to_vec();
    for row in (0..parent.len()).rev() {
        if let Ok(p) = usize::try_from(parent[row]) {
            subtree_credit[p] += subtree_credit[row];
        }
    }
    subtree_credit.iter().map(|c| *c > 0).collect()
}

/// The runs of same-named siblings folded into one row each, by first row.
fn folds(trace: &AnalyzedTrace, row_of: &[u32]) -> Vec<Fold> {
    let first_failure = first_failure_under(trace);
    let mut folds = Vec::new();
    for children in &trace.tree.children {
        for folded in fold_children(&trace.spans, children, DEFAULT_MIN_RUN) {
            if let FoldedChild::Run {
                name,
                spans: members,
                total_nanos,
                ..
            } = folded
            {
                // A failure anywhere in a member's subtree counts: folding must not hide it.
                let failures: Vec<usize> =
                    members.iter().filter_map(|m| first_failure[*m]).collect();
                folds.push(Fold {
                    first_row: row_of[members[0]],
                    last_row: row_of[*members.last().expect("a run has members")],
                    count: members.len() as u32,
                    name,
                    total_ns: total_nanos,
                    each: devtrace_analyze::outcome::typical(&devtrace_analyze::outcome::calls_of(
                        members.iter().map(|m| trace.span(*m)),
                    ))
                    .unwrap_or_default(),
                    errors: failures.len() as u32,
                    first_error_row: failures.first().map(|f| row_of[*f]),
                });
            }
        }
    }
    folds.sort_by_key(|f| f.first_row);
    folds
}

/// Per span, the first failed span of its subtree in tree order (itself first): one pass from
/// the last span back, so folds at every level of a deep tree cost each span once.
fn first_failure_under(trace: &AnalyzedTrace) -> Vec<Option<usize>> {
    let mut first = vec![None; trace.spans.spans.len()];
    for &i in trace.tree.preorder.iter().rev() {
        first[i] = if errors::is_error_span(trace.span(i)) {
            Some(i)
        } else {
            trace.tree.children[i].iter().find_map(|c| first[*c])
        };
    }
    first
}

/// Each span's own time on its root's critical path. Roots are walked longest first; a root
/// whose subtree an earlier root's path already crossed into (a thread that root waited for,
/// recorded as a root of its own) is on that path, not one of its own, and a span an earlier
/// path credited keeps that credit: no span's time counts twice.
fn critical_per_span(trace: &AnalyzedTrace) -> Vec<u64> {
    let mut critical = vec![0u64; trace.spans.spans.len()];
    let mut roots = trace.tree.roots.clone();
    roots.sort_by_key(|&r| (std::cmp::Reverse(trace.span(r).duration_nanos()), r));
    for root in roots {
        if trace.subtree(root).iter().any(|i| critical[*i] > 0) {
            continue;
        }
        for (i, credit) in path_credits(trace, root) {
            if critical[i] == 0 {
                critical[i] = credit;
            }
        }
    }
    critical
}

/// How many log records each span has correlated with it.
fn logs_per_span(logs: &LogBatch) -> HashMap<SpanId, u32> {
    let mut counts: HashMap<SpanId, u32> = HashMap::new();
    for log in &logs.logs {
        if let Some(id) = log.span_id {
            *counts.entry(id).or_default() += 1;
        }
    }
    counts
}

/// Everything recorded about one span, for the span panel.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanDetail {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub name: String,
    pub kind: String,
    pub service: String,
    pub scope_name: String,
    pub scope_version: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub duration_ns: u64,
    pub self_time_ns: u64,
    /// `unset`, `ok` or `error`.
    pub status: String,
    pub status_message: String,
    pub work: WorkKind,
    pub attributes: Vec<Attribute>,
    pub dropped_attributes_count: u32,
    pub resource: Vec<Attribute>,
    pub events: Vec<SpanEvent>,
    pub dropped_events_count: u32,
    pub links: Vec<SpanLink>,
    /// What the span waited for on another thread or process (its causal links, in words).
    pub waited_for: Vec<WaitView>,
    /// The first `exception` event, when the span recorded one.
    pub exception: Option<Exception>,
    pub llm: Option<LlmCall>,
    pub logs: Vec<LogLine>,
    /// For a span of a BEAM process whose GenServer callbacks record their state: the
    /// callback's state before and after, and the process's state when the span started.
    pub process_state: Option<ProcessState>,
}

/// One attribute: its key, its value as natural JSON and the OTLP type name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attribute {
    pub key: String,
    /// `string`, `bool`, `int`, `double`, `bytes`, `array`, `kvlist` or `empty`.
    pub r#type: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub value: serde_json::Value,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanEvent {
    pub time_unix_nano: u64,
    /// Offset from the span's start, nanoseconds (negative if recorded before it).
    pub offset_ns: i64,
    pub name: String,
    pub attributes: Vec<Attribute>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpanLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub attributes: Vec<Attribute>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exception {
    pub r#type: Option<String>,
    pub message: Option<String>,
    pub stacktrace: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    pub time_unix_nano: u64,
    pub severity_text: String,
    pub severity_number: i32,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub body: serde_json::Value,
    pub attributes: Vec<Attribute>,
}

fn attributes(list: &[KeyValue]) -> Vec<Attribute> {
    list.iter()
        .map(|kv| Attribute {
            key: kv.key.clone(),
            r#type: type_name(&kv.value).to_owned(),
            value: value_json(&kv.value),
        })
        .collect()
}

fn type_name(value: &AnyValue) -> &'static str {
    match value {
        AnyValue::Empty => "empty",
        AnyValue::String(_) => "string",
        AnyValue::Bool(_) => "bool",
        AnyValue::Int(_) => "int",
        AnyValue::Double(_) => "double",
        AnyValue::Bytes(_) => "bytes",
        AnyValue::Array(_) => "array",
        AnyValue::KvList(_) => "kvlist",
    }
}

/// The row of `span_id` in `trace`, when the trace has such a span.
pub fn find_span(trace: &AnalyzedTrace, span_id: SpanId) -> Option<usize> {
    trace.spans.spans.iter().position(|s| s.span_id == span_id)
}

/// The detail of span `index` of `trace`, with the log records correlated with it.
pub fn span_detail(trace: &AnalyzedTrace, index: usize, logs: &LogBatch) -> SpanDetail {
    let span = trace.span(index);
    let scope = trace.spans.scope_of(span);
    let text = |event: &devtrace_model::Event, key: &str| {
        devtrace_model::find_attr(&event.attributes, key).map(AnyValue::to_display_string)
    };
    let exception = span
        .events
        .iter()
        .find(|e| e.name == semconv::EXCEPTION_EVENT)
        .map(|e| Exception {
            r#type: text(e, semconv::EXCEPTION_TYPE),
            message: text(e, semconv::EXCEPTION_MESSAGE),
            stacktrace: text(e, semconv::EXCEPTION_STACKTRACE),
        });
    let logs = logs
        .logs
        .iter()
        .filter(|l| l.span_id == Some(span.span_id))
        .map(|l| LogLine {
            time_unix_nano: l.effective_time(),
            severity_text: l.severity_text.clone(),
            severity_number: l.severity_number,
            body: value_json(&l.body),
            attributes: attributes(&l.attributes),
        })
        .collect();
    SpanDetail {
        trace_id: trace.trace_id,
        span_id: span.span_id,
        parent_span_id: span.parent_span_id,
        name: span.name.clone(),
        kind: span.kind.as_str().to_owned(),
        service: trace.service(index).to_owned(),
        scope_name: scope.name.clone(),
        scope_version: scope.version.clone(),
        start_unix_nano: span.start_unix_nano,
        end_unix_nano: span.end_unix_nano,
        duration_ns: span.duration_nanos(),
        self_time_ns: trace.tree.self_time[index],
        status: if errors::is_error_span(span) && span.status.code != StatusCode::Error {
            // An exception event without an error status still failed the work it records.
            "error".to_owned()
        } else {
            span.status.code.as_str().to_owned()
        },
        status_message: span.status.message.clone(),
        work: classify(trace, index),
        attributes: attributes(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        resource: attributes(&trace.spans.resource_of(span).attributes),
        events: span
            .events
            .iter()
            .map(|e| SpanEvent {
                time_unix_nano: e.time_unix_nano,
                offset_ns: e.time_unix_nano as i64 - span.start_unix_nano as i64,
                name: e.name.clone(),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|l| SpanLink {
                trace_id: l.trace_id,
                span_id: l.span_id,
                attributes: attributes(&l.attributes),
            })
            .collect(),
        waited_for: crate::causal::waits_of_span(trace, index),
        exception,
        llm: llm_call(trace, index),
        logs,
        process_state: crate::lanes::process_state(trace, index),
    }
}

/// Most matches [`search_spans`] returns.
pub const MAX_MATCHES: usize = 10_000;

/// Spans whose name, status message, attribute keys or values, resource service, or event
/// names contain `text` (case-insensitively), in tree order, at most [`MAX_MATCHES`].
pub fn search_spans(trace: &AnalyzedTrace, text: &str) -> Vec<SpanId> {
    let needle = text.to_lowercase();
    if needle.is_empty() {
        return Vec::new();
    }
    let has = |haystack: &str| haystack.to_lowercase().contains(&needle);
    let in_attributes = |list: &[KeyValue]| {
        list.iter()
            .any(|kv| has(&kv.key) || has(&kv.value.to_display_string()))
    };
    trace
        .tree
        .walk()
        .map(|(i, _)| i)
        .filter(|&i| {
            let span = trace.span(i);
            has(&span.name)
                || has(&span.status.message)
                || has(trace.service(i))
                || span.span_id.to_hex().starts_with(&needle)
                || in_attributes(&span.attributes)
                || span
                    .events
                    .iter()
                    .any(|e| has(&e.name) || in_attributes(&e.attributes))
        })
        .take(MAX_MATCHES)
        .map(|i| trace.span(i).span_id)
        .collect()
}

/// Every span event of the trace in time order, for playback.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    /// Offsets are from this instant (the earliest span start).
    pub start_unix_nano: u64,
    pub events: Vec<TimelineEvent>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub offset_ns: i64,
    pub span_id: SpanId,
    pub name: String,
    /// The exception message, or the event's first string attribute, shortened.
    pub summary: Option<String>,
}

/// Events shown by playback at most (the earliest ones).
pub const MAX_TIMELINE_EVENTS: usize = 20_000;

pub fn timeline(trace: &AnalyzedTrace) -> Timeline {
    let origin = trace.earliest_start();
    let mut events: Vec<TimelineEvent> = trace
        .spans
        .spans
        .iter()
        .flat_map(|span| {
            span.events.iter().map(move |e| TimelineEvent {
                offset_ns: e.time_unix_nano as i64 - origin as i64,
                span_id: span.span_id,
                name: e.name.clone(),
                summary: devtrace_model::find_attr(&e.attributes, semconv::EXCEPTION_MESSAGE)
                    .or_else(|| {
                        e.attributes
                            .iter()
                            .find(|kv| matches!(kv.value, AnyValue::String(_)))
                            .map(|kv| &kv.value)
                    })
                    .map(|v| crate::text::truncate(&v.to_display_string(), 120)),
            })
        })
        .collect();
    events.sort_by_key(|e| e.offset_ns);
    events.truncate(MAX_TIMELINE_EVENTS);
    Timeline {
        start_unix_nano: origin,
        events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::{Event, Resource, Scope, Span, SpanBatch};

    fn span(id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
        crate::testing::span(7, id, parent, name, start, end)
    }

    /// root 1000..2000 with: a (1000..1100), six `q` siblings under b (1100..1900, the last
    /// failing with an exception), c (1900..2000, an LLM call).
    fn sample() -> (AnalyzedTrace, TraceSummary) {
        let mut spans = vec![
            span(1, None, "root", 1000, 2000),
            span(2, Some(1), "a", 1000, 1100),
            span(3, Some(1), "b", 1100, 1900),
        ];
        for k in 0..6u8 {
            let start = 1100 + u64::from(k) * 100;
            spans.push(span(10 + k, Some(3), "q", start, start + 100));
        }
        spans[8].status.code = StatusCode::Error;
        spans[8].events.push(Event {
            time_unix_nano: 1650,
            name: semconv::EXCEPTION_EVENT.into(),
            attributes: vec![
                KeyValue::new(semconv::EXCEPTION_TYPE, "TimeoutError"),
                KeyValue::new(semconv::EXCEPTION_MESSAGE, "took too long"),
                KeyValue::new(semconv::EXCEPTION_STACKTRACE, "at q()\nat b()"),
            ],
            dropped_attributes_count: 0,
        });
        let mut llm = span(4, Some(1), "c", 1900, 2000);
        llm.attributes = vec![
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.usage.input_tokens", AnyValue::Int(500)),
            KeyValue::new("gen_ai.usage.output_tokens", AnyValue::Int(20)),
        ];
        spans.push(llm);
        let batch = SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "svc")],
                ..Default::default()
            }],
            scopes: vec![Scope::default()],
            spans,
        };
        let summary = TraceSummary {
            trace_id: TraceId([7; 16]),
            start_unix_nano: 1000,
            end_unix_nano: 2000,
            root_name: "root".into(),
            service: "svc".into(),
            services: vec!["svc".into()],
            span_count: 10,
            error_count: 1,
            root_start_unix_nano: 1000,
            root_end_unix_nano: 2000,
            root_failed: false,
        };
        (AnalyzedTrace::new(TraceId([7; 16]), batch), summary)
    }

    /// A failure at the bottom of a 20,000-level tree whose every level folds five `q` calls,
    /// the first of which goes on down: each fold counts the one failure under it and points at
    /// its row — found once for all folds, not by a walk under each (20,000² steps).
    #[test]
    fn folds_at_every_level_of_a_deep_tree_find_the_failure_under_them() {
        const LEVELS: u64 = 20_000;
        let end = 20 * LEVELS;
        let mut spans = Vec::new();
        for k in 0..LEVELS {
            let id = |n: u64| SpanId(n.to_be_bytes());
            let spine = |k: u64| 5 * k + 1;
            let mut call = Span::new(
                TraceId([7; 16]),
                id(spine(k)),
                (k > 0).then(|| id(spine(k - 1))),
                "q",
                10 * k,
                end - 10 * k,
            );
            if k == LEVELS - 1 {
                call.status.code = StatusCode::Error;
            } else {
                // Four short calls after the one that goes on down returns.
                for j in 0..4 {
                    let start = end - 10 * (k + 1) + 2 * j;
                    spans.push(Span::new(
                        TraceId([7; 16]),
                        id(spine(k) + 1 + j),
                        Some(id(spine(k))),
                        "q",
                        start,
                        start + 1,
                    ));
                }
            }
            spans.push(call);
        }
        let span_count = spans.len();
        let batch = SpanBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope::default()],
            spans,
        };
        let trace = AnalyzedTrace::new(TraceId([7; 16]), batch);
        let summary = TraceSummary {
            trace_id: TraceId([7; 16]),
            start_unix_nano: 0,
            end_unix_nano: end,
            root_name: "q".into(),
            service: "unknown_service".into(),
            services: vec!["unknown_service".into()],
            span_count: span_count as u64,
            error_count: 1,
            root_start_unix_nano: 0,
            root_end_unix_nano: end,
            root_failed: false,
        };
        let view = waterfall(&trace, &summary, &LogBatch::default());
        assert_eq!(view.folds.len() as u64, LEVELS - 1);
        // The calls that go on down come first in the tree order: the failure is row LEVELS − 1.
        let failed_row = (LEVELS - 1) as u32;
        assert_eq!(view.status[failed_row as usize], 2);
        for fold in &view.folds {
            assert_eq!((fold.count, fold.errors), (5, 1), "{fold:?}");
            assert_eq!(fold.first_error_row, Some(failed_row), "{fold:?}");
        }
    }

    #[test]
    fn the_waterfall_is_columns_in_tree_order_with_folds_and_the_critical_path() {
        let (trace, summary) = sample();
        let view = waterfall(&trace, &summary, &LogBatch::default());
        let names: Vec<&str> = view
            .name
            .iter()
            .map(|n| view.strings[*n as usize].as_str())
            .collect();
        assert_eq!(names, ["root", "a", "b", "q", "q", "q", "q", "q", "q", "c"]);
        assert_eq!(view.parent, [-1, 0, 0, 2, 2, 2, 2, 2, 2, 0]);
        assert_eq!(view.depth, [0, 1, 1, 2, 2, 2, 2, 2, 2, 1]);
        assert_eq!(view.subtree_end, [10, 2, 9, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(view.start[2], 100);
        assert_eq!(view.duration_ns, 1000);
        assert_eq!(view.status[8], 2);
        // Sequential children: all are on the path, credits sum to the root's duration; the
        // root has no time of its own.
        assert_eq!(view.critical.iter().sum::<u64>(), 1000);
        assert_eq!(view.critical_path_ns, 1000, "the path's time, stated once");
        assert_eq!(view.critical[0], 0);
        assert!(
            view.on_critical_path.iter().all(|on| *on),
            "the root leads to the path"
        );
        assert!(view.critical[1..].iter().all(|c| *c > 0));
        assert_eq!(
            view.folds,
            [Fold {
                first_row: 3,
                last_row: 8,
                count: 6,
                name: "q".into(),
                total_ns: 600,
                each: "100 ns each (1 of 6 failed)".into(),
                errors: 1,
                first_error_row: Some(8),
            }]
        );
        assert_eq!(view.strings[view.work[9] as usize], "llm");
        assert_eq!(view.event_count[8], 1);
        assert!(
            view.lanes.is_empty() && view.lane.is_empty() && view.lane_depth.is_empty(),
            "one thread: no lanes to tell apart"
        );
    }

    /// The producer thread is a root of its own, and the consumer's path crosses into it while
    /// its get waits: its time on the path counts once, under the path that waited for it.
    #[test]
    fn a_thread_another_root_waited_for_is_credited_once() {
        let trace = crate::causal::tests::two_threads();
        let summary = TraceSummary {
            trace_id: trace.trace_id,
            start_unix_nano: 0,
            end_unix_nano: 100_000_000,
            root_name: "consume".into(),
            service: "unknown_service".into(),
            services: vec![],
            span_count: 5,
            error_count: 1,
            root_start_unix_nano: 0,
            root_end_unix_nano: 100_000_000,
            root_failed: false,
        };
        let view = waterfall(&trace, &summary, &LogBatch::default());
        let lanes: Vec<Option<&str>> = view.lanes.iter().map(|l| l.name.as_deref()).collect();
        assert_eq!(
            lanes,
            [Some("MainThread"), Some("worker-1")],
            "two threads, two lanes"
        );
        assert_eq!(view.lane.len(), view.span_count);
        let row = |id: u8| {
            view.span_id
                .iter()
                .position(|s| *s == SpanId([id; 8]))
                .unwrap()
        };
        const MS: u64 = 1_000_000;
        assert_eq!(
            view.critical[row(4)],
            40 * MS,
            "produce: the get's wait, once"
        );
        assert_eq!(
            view.critical[row(3)],
            0,
            "the worker's own path is not another"
        );
        for r in 0..view.span_id.len() {
            assert!(view.critical[r] <= view.duration[r], "row {r}: {view:?}");
        }
        assert_eq!(view.critical.iter().sum::<u64>(), 100 * MS);
        assert!(view.on_critical_path[row(3)], "it leads to produce");
    }

    #[test]
    fn span_detail_has_the_exception_the_llm_call_and_typed_attributes() {
        let (trace, _) = sample();
        let failing = find_span(&trace, SpanId([15; 8])).unwrap();
        let detail = span_detail(&trace, failing, &LogBatch::default());
        assert_eq!(detail.status, "error");
        assert_eq!(
            detail.exception,
            Some(Exception {
                r#type: Some("TimeoutError".into()),
                message: Some("took too long".into()),
                stacktrace: Some("at q()\nat b()".into()),
            })
        );
        assert_eq!(detail.events[0].offset_ns, 50);
        let llm = span_detail(
            &trace,
            find_span(&trace, SpanId([4; 8])).unwrap(),
            &LogBatch::default(),
        );
        let call = llm.llm.unwrap();
        assert_eq!(
            (call.input_tokens, call.output_tokens),
            (Some(500), Some(20))
        );
        assert_eq!(llm.attributes[1].r#type, "int");
        assert_eq!(llm.attributes[1].value, serde_json::json!(500));
    }

    #[test]
    fn search_matches_names_attribute_values_and_event_text() {
        let (trace, _) = sample();
        assert_eq!(search_spans(&trace, "GPT-4"), [SpanId([4; 8])]);
        assert_eq!(search_spans(&trace, "too long"), [SpanId([15; 8])]);
        // The six `q` spans, and `c` whose attribute key gen_ai.re*q*uest.model matches.
        let q = search_spans(&trace, "q");
        assert_eq!(q.len(), 7);
        assert_eq!(q[6], SpanId([4; 8]));
        assert!(search_spans(&trace, "").is_empty());
    }

    #[test]
    fn the_timeline_orders_events_from_the_trace_start() {
        let (trace, _) = sample();
        let timeline = timeline(&trace);
        assert_eq!(timeline.start_unix_nano, 1000);
        assert_eq!(timeline.events.len(), 1);
        assert_eq!(timeline.events[0].offset_ns, 650);
        assert_eq!(timeline.events[0].summary.as_deref(), Some("took too long"));
    }
}
