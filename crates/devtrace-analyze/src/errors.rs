//! Errors across traces: grouped by fingerprint, with what separates the failing runs from the
//! passing ones ([`group_errors`]), and the causal chain of one error ([`causal_chain`]).
//!
//! An *error span* failed as the conventions define it ([`devtrace_model::Span::is_error`]:
//! status `Error`, OpenTracing's `error=true`, HTTP status codes by span kind), or records an
//! exception that escaped it (`exception.escaped=true`) without an explicit `Ok` status. An
//! exception recorded on a span that ended fine was caught and *handled*: it is reported as
//! such ([`group_handled`]) and never counted as a failure. When an exception propagates, every span it passes through usually records it
//! again, or just sets an error status. An error span with an error descendant is a
//! *propagation*, not an origin, when it carries the same exception type and normalised message,
//! has no exception event of its own (only the status), or has neither a type nor a message;
//! propagations are not grouped on their own: the group is named after the span that failed
//! first. An ancestor that raises a *different* exception is a propagation too when it raised
//! it after the call that led to the failure had returned (the call is its child on the way
//! down, and no span from it down to the failure ended `Ok`): the failure translated, as a client library raises `HTTPError` for a 500
//! answer or a driver raises its own exception for the database's error — one failure, not
//! two. A different exception raised before or without a failed call is an error of its own.
//!
//! An exception recorded on a span whose status is unset was not necessarily handled: some
//! instrumentations record it on every layer it passes through (Express on each middleware and
//! handler span) and set the error status only where the request failed. Such an exception
//! *propagated* ([`propagated_exceptions`]) when an ancestor in the same service failed with
//! the same exception (type and normalised message) — recording it itself, or, with only an
//! error status of its own, having a failed descendant that records it — and no span between
//! them ended `Ok`. It is part of that failure, not a handled exception.

use crate::AnalyzedTrace;
use crate::classify::{WorkKind, classify};
use crate::fingerprint::{fingerprint, normalize_text};
use devtrace_model::{AnyValue, Event, KeyValue, Span, SpanId, StatusCode, TraceId, semconv};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Most spans [`causal_chain`] lists as consumed by the failing span.
pub const MAX_CONSUMED: usize = 5;
/// Most recent occurrences an [`ErrorGroup`] lists.
pub const MAX_RECENT: usize = 5;
/// String attribute values longer than this are not used as correlation features.
const MAX_CATEGORICAL_CHARS: usize = 200;
/// Most attributes shown per consumed span.
const MAX_DETAILS: usize = 10;
/// Characters of an LLM response shown with the call (the span has all of it).
const RESPONSE_PREVIEW_CHARS: usize = 200;
/// Synthetic detail of an LLM call: the first characters of its response text.
pub const RESPONSE_DETAIL: &str = "response";

/// When a correlation is reported: how many failing and passing runs, and how cleanly a value
/// must separate them (the failure-correlation detector's rule, docs/analysis.md).
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Fewest failing runs (traces of the root operation with the error) to correlate: 3.
    pub min_failing_runs: usize,
    /// Fewest passing runs (traces of the root operation without any error): 5.
    pub min_passing_runs: usize,
    /// A value (or range) must be in at least this share of failing runs: 0.8.
    pub min_failing_share: f64,
    /// … and in at most this share of passing runs: 0.1.
    pub max_passing_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_failing_runs: 3,
            min_passing_runs: 5,
            min_failing_share: 0.8,
            max_passing_share: 0.1,
        }
    }
}

/// What one error span says about its error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorKey {
    /// `exception.type` of the span's last exception event.
    pub exception_type: Option<String>,
    /// `exception.message` of that event, else the status message (as recorded).
    pub message: String,
    /// The message with numbers, ids, hex and paths folded.
    pub normalized_message: String,
    /// The failing span's name.
    pub operation: String,
    pub fingerprint: String,
}

/// One occurrence of an error: the failing span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorRef {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub start_unix_nano: u64,
}

/// Errors with the same fingerprint (exception type + normalised message + operation).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ErrorGroup {
    pub fingerprint: String,
    pub exception_type: Option<String>,
    /// The normalised message the group shares.
    pub message: String,
    /// The message of the most recent occurrence, as recorded.
    pub example_message: String,
    /// The failing span's name.
    pub operation: String,
    /// The root span name of most failing traces: the runs compared for correlation.
    pub root_operation: String,
    /// Failing spans (origins, not propagations).
    pub count: usize,
    /// Distinct traces affected.
    pub traces: usize,
    pub first_seen_unix_nano: u64,
    pub last_seen_unix_nano: u64,
    /// The most recent occurrence.
    pub example: ErrorRef,
    /// The most recent occurrences, newest first (at most [`MAX_RECENT`]).
    pub recent: Vec<ErrorRef>,
    /// What distinguishes the failing runs from the passing ones, when something does.
    pub correlation: Option<Correlation>,
    /// Why there is no correlation (too few runs, or nothing separates them).
    pub no_correlation_reason: Option<String>,
    /// Handled exceptions (recorded on spans that ended fine), not failures.
    pub handled: bool,
    /// Traces with the error whose root span did not fail: the run survived it.
    pub contained_traces: usize,
    /// Every occurrence, oldest first.
    #[serde(skip)]
    pub occurrences: Vec<ErrorRef>,
}

/// How a correlated feature is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Operator {
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Gt => ">",
            Self::Ge => "≥",
            Self::Lt => "<",
            Self::Le => "≤",
        }
    }
}

/// A feature (an attribute of some span of the run, or of its resource) whose value separates
/// failing runs from passing ones.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Correlation {
    /// `"<span name>.<attribute>"`, or `"resource.<attribute>"`.
    pub feature: String,
    /// The span carrying the attribute; `None` for a resource attribute.
    pub span_name: Option<String>,
    pub attribute: String,
    pub operator: Operator,
    /// The value, for string and boolean features.
    pub value: Option<String>,
    /// The threshold, for numeric features.
    pub threshold: Option<f64>,
    /// The condition as text: `"> 500 KB"`, `"= gpt-4o"`.
    pub condition: String,
    pub failing_with: usize,
    pub failing_total: usize,
    pub passing_with: usize,
    pub passing_total: usize,
    /// Failing share minus passing share.
    pub separation: f64,
    /// For a numeric feature, what was observed on each side of the threshold: the failing
    /// value nearest to the passing runs (the smallest, for "greater than") and the passing
    /// value nearest to the failing runs (the largest below it). The threshold lies between.
    pub failing_edge: Option<f64>,
    pub passing_edge: Option<f64>,
    /// The two edges are within 10 % of each other: more runs would tell whether the threshold
    /// is real.
    pub narrow_gap: bool,
    /// The sentence: "all 5 timeouts of summary.generate had … > 500 KB; 0 of 45 successes did".
    pub text: String,
}

impl Correlation {
    /// Whether an attribute value meets the condition.
    pub fn matches(&self, value: &AnyValue) -> bool {
        match (self.operator, &self.value, self.threshold) {
            (Operator::Eq, Some(expected), _) => {
                categorical(&self.attribute, value).is_some_and(|v| &v == expected)
            }
            (op, _, Some(threshold)) => numeric(value).is_some_and(|v| match op {
                Operator::Gt => v > threshold,
                Operator::Ge => v >= threshold,
                Operator::Lt => v < threshold,
                Operator::Le => v <= threshold,
                Operator::Eq => false,
            }),
            _ => false,
        }
    }
}

/// The runs (indices into `traces`, each counted once) a failure happened in, and how many of
/// them outlived it: their root span did not fail.
pub fn runs_and_survivors(
    traces: &[AnalyzedTrace],
    runs: impl IntoIterator<Item = usize>,
) -> (u64, u64) {
    let runs: BTreeSet<usize> = runs.into_iter().collect();
    let survived = runs
        .iter()
        .filter(|&&t| {
            let trace = &traces[t];
            trace.root().is_some_and(|r| !is_error_span(trace.span(r)))
        })
        .count();
    (runs.len() as u64, survived as u64)
}

/// Whether the span failed: as the conventions define it, or an exception escaped it.
pub fn is_error_span(span: &Span) -> bool {
    span.is_error()
        || (span.status.code != StatusCode::Ok
            && exception_events(span).any(|e| {
                matches!(
                    devtrace_model::find_attr(&e.attributes, semconv::EXCEPTION_ESCAPED),
                    Some(AnyValue::Bool(true))
                ) || devtrace_model::find_attr(&e.attributes, semconv::EXCEPTION_ESCAPED)
                    .and_then(AnyValue::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            }))
}

/// Whether the span recorded an exception it handled: an exception event on a span that did
/// not fail.
pub fn is_handled_exception(span: &Span) -> bool {
    exception_events(span).next().is_some() && !is_error_span(span)
}

fn exception_events(span: &Span) -> impl DoubleEndedIterator<Item = &Event> {
    span.events
        .iter()
        .filter(|e| e.name == semconv::EXCEPTION_EVENT)
}

fn event_text(event: Option<&Event>, key: &str) -> Option<String> {
    event
        .and_then(|e| devtrace_model::find_attr(&e.attributes, key))
        .map(AnyValue::to_display_string)
        .filter(|s| !s.is_empty())
}

/// The error of a span, `None` if it did not fail. Without an exception, the error is named
/// by `error.type` (the conventions' class of error), else the status message, else the HTTP
/// or RPC status code (`HTTP 503`), so a 404 and a 500 of the same call are different errors.
pub fn error_key(span: &Span) -> Option<ErrorKey> {
    if !is_error_span(span) {
        return None;
    }
    key_of(span)
}

/// The key of a handled exception (see [`is_handled_exception`]).
pub fn handled_key(span: &Span) -> Option<ErrorKey> {
    if !is_handled_exception(span) {
        return None;
    }
    key_of(span).map(|mut key| {
        key.fingerprint = fingerprint(&["handled", &key.fingerprint]);
        key
    })
}

fn key_of(span: &Span) -> Option<ErrorKey> {
    use devtrace_model::conventions::Concept;
    let exception = exception_events(span).next_back();
    let exception_type = event_text(exception, semconv::EXCEPTION_TYPE)
        .or_else(|| span.concept_text(Concept::ErrorType));
    let status_code = span
        .concept_i64(Concept::HttpStatusCode)
        .map(|code| format!("HTTP {code}"))
        .or_else(|| {
            span.concept_i64(Concept::RpcStatusCode)
                .filter(|code| *code != 0)
                .map(|code| format!("RPC status {code}"))
        });
    let message = event_text(exception, semconv::EXCEPTION_MESSAGE)
        .or_else(|| Some(span.status.message.clone()).filter(|m| !m.trim().is_empty()))
        .or_else(|| {
            span.concept_text(Concept::StatusMessageTag)
                .filter(|m| !m.trim().is_empty())
        })
        .map(|m| (normalize_text(&m), m))
        .or(status_code.map(|code| (code.clone(), code)))
        .unwrap_or_default();
    let (normalized_message, message) = message;
    let fingerprint = fingerprint(&[
        "error",
        exception_type.as_deref().unwrap_or(""),
        &normalized_message,
        &span.name,
    ]);
    Some(ErrorKey {
        exception_type,
        message,
        normalized_message,
        operation: span.name.clone(),
        fingerprint,
    })
}

/// The parent of each span in the trace's tree.
fn parent_indices(trace: &AnalyzedTrace) -> Vec<Option<usize>> {
    let mut parents = vec![None; trace.spans.spans.len()];
    for (parent, children) in trace.tree.children.iter().enumerate() {
        for &child in children {
            if let Some(slot) = parents.get_mut(child) {
                *slot = Some(parent);
            }
        }
    }
    parents
}

/// Ancestors of `index`, nearest first.
fn ancestors(parents: &[Option<usize>], index: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut node = parents.get(index).copied().flatten();
    while let Some(ancestor) = node {
        if out.len() > parents.len() || ancestor == index {
            break;
        }
        out.push(ancestor);
        node = parents.get(ancestor).copied().flatten();
    }
    out
}

/// The spans where errors originated (propagations left out), in tree order.
pub fn error_spans(trace: &AnalyzedTrace) -> Vec<usize> {
    let (keys, own_exception) = keys_and_own_exceptions(trace);
    if keys.iter().all(Option::is_none) {
        return Vec::new();
    }
    let passed_on = propagated_exceptions(trace);
    let propagated = propagated_failures(trace, &keys, &own_exception);
    let handled = handled_above(trace, &passed_on);
    trace
        .tree
        .walk()
        .map(|(i, _)| i)
        .filter(|i| keys[*i].is_some() && !propagated[*i] && !handled[*i])
        .collect()
}

/// A failure's error key: its exception type and normalised message.
type Key = (Option<String>, String);

/// Per span, its error key (`None`: no error) and whether it records an exception of its own.
fn keys_and_own_exceptions(trace: &AnalyzedTrace) -> (Vec<Option<Key>>, Vec<bool>) {
    let spans = &trace.spans.spans;
    let keys = spans
        .iter()
        .map(|s| error_key(s).map(|k| (k.exception_type, k.normalized_message)))
        .collect();
    let own_exception = spans
        .iter()
        .map(|s| exception_events(s).next().is_some())
        .collect();
    (keys, own_exception)
}

/// Per span: it failed (`keys`) and a failure under it propagates into it — the module's
/// rule: a failed descendant with the same key, or it has no exception of its own or an empty
/// key, or it raised its exception after the failed call ([`translated_failure`]).
///
/// Each span is asked once, about its subtree as a whole (a count and a binary search over
/// the tree's pre-order), so a chain of 100,000 failed calls costs linear time, not the pairs
/// of a failure and each of its ancestors.
fn propagated_failures(
    trace: &AnalyzedTrace,
    keys: &[Option<Key>],
    own_exception: &[bool],
) -> Vec<bool> {
    let tree = &trace.tree;
    let mut keyed_before = Vec::with_capacity(keys.len() + 1);
    let mut by_key: HashMap<&Key, Vec<usize>> = HashMap::new();
    let mut count = 0;
    for (position, &i) in tree.preorder.iter().enumerate() {
        keyed_before.push(count);
        if let Some(key) = &keys[i] {
            count += 1;
            by_key.entry(key).or_default().push(position);
        }
    }
    keyed_before.push(count);
    let got_through = failures_got_through(trace, keys);
    (0..keys.len())
        .map(|a| {
            let Some(theirs) = &keys[a] else {
                return false;
            };
            let (from, to) = (tree.position[a] + 1, tree.subtree_end[a]);
            if keyed_before[to] == keyed_before[from] {
                return false;
            }
            if !own_exception[a] || (theirs.0.is_none() && theirs.1.is_empty()) {
                return true;
            }
            let same = &by_key[theirs];
            let next = same.partition_point(|p| *p < from);
            same.get(next).is_some_and(|p| *p < to) || translated_failure(trace, a, &got_through)
        })
        .collect()
}

/// Per span: a failure at or under it got through to it — the span itself failed (has a
/// key), or it did not end `Ok` and a failure got through to one of its children. One pass
/// from the last span of the pre-order back.
fn failures_got_through(trace: &AnalyzedTrace, keys: &[Option<Key>]) -> Vec<bool> {
    let mut through = vec![false; keys.len()];
    for &i in trace.tree.preorder.iter().rev() {
        through[i] = keys[i].is_some()
            || (trace.span(i).status.code != StatusCode::Ok
                && trace.tree.children[i].iter().any(|c| through[*c]))
    }
    through
}

/// Whether `ancestor`, failing with an exception of its own, raised it once a call that led
/// to a failure under it had failed and returned: the failure translated, not a new one (a
/// client library's `HTTPError` for a 500 answer, a driver's exception for the database's
/// error). The call is one of the ancestor's children that did not end `Ok`, with a failure
/// that got through to it (`got_through`, [`failures_got_through`]: no span from the call
/// down to the failure ended `Ok` — Express's layer spans leave their status unset), and the
/// exception is recorded no earlier than the call's end (less the resolution of the spans'
/// clocks, which can stamp whole milliseconds).
fn translated_failure(trace: &AnalyzedTrace, ancestor: usize, got_through: &[bool]) -> bool {
    let Some(raised) = exception_events(trace.span(ancestor)).next_back() else {
        return false;
    };
    trace.tree.children[ancestor].iter().any(|&call| {
        let tolerance = trace.overlap_tolerance(&[ancestor, call]);
        got_through[call]
            && trace.span(call).status.code != StatusCode::Ok
            && raised.time_unix_nano + tolerance >= trace.span(call).end_unix_nano
    })
}

/// Per span: the exception that escaped it (a failed span) was caught further up: the
/// spans above it fail with the same exception type up to one that did not fail and records that
/// exception as an event of its own at or after the failure (the native recorder's
/// `devtrace.exception.handled`, or a program's `record_exception` in its `except`). The
/// exception was an answer its caller expected (`KeyError` under `Mapping.__contains__`, a
/// `FileNotFoundError` under an import's fallback), not the program's failure: it is reported
/// with the handled exceptions ([`group_handled`]). An ancestor that ends fine without
/// recording it says nothing either way (a retry that succeeded): the failure stays. One that
/// recorded it and let it through to a failure further up (`passed_on`, Express's layers) did
/// not handle it.
///
/// The span that answers (the first ancestor not passed over) is found top-down, each span
/// from its parent's answer, so a chain of 100,000 failed calls costs linear time.
fn handled_above(trace: &AnalyzedTrace, passed_on: &[bool]) -> Vec<bool> {
    let n = trace.spans.spans.len();
    let exceptions: Vec<Option<Key>> = trace.spans.spans.iter().map(exception_of).collect();
    let raised = |i: usize| exceptions[i].as_ref().and_then(|(kind, _)| kind.as_ref());
    let failed = |i: usize| is_error_span(trace.span(i));
    // Passed over whatever was raised: let through, or failed with only a status.
    let passed_over = |a: usize| passed_on[a] || (failed(a) && exceptions[a].is_none());
    let mut above: Vec<Option<usize>> = vec![None; n];
    let mut answers: Vec<Option<usize>> = vec![None; n];
    for &i in &trace.tree.preorder {
        let Some(parent) = trace.tree.parent[i] else {
            continue;
        };
        above[i] = if passed_over(parent) {
            above[parent]
        } else {
            Some(parent)
        };
        let Some(kind) = raised(i) else {
            continue;
        };
        // A failure with the same exception type passes it over too: its answer is ours.
        answers[i] = match above[i] {
            Some(a) if failed(a) && raised(a) == Some(kind) => answers[a],
            other => other,
        };
    }
    (0..n)
        .map(|i| {
            let (Some(kind), Some(a)) = (raised(i), answers[i]) else {
                return false;
            };
            if failed(a) {
                return false;
            }
            let tolerance = trace.overlap_tolerance(&[a, i]);
            exception_events(trace.span(a)).any(|event| {
                event.time_unix_nano + tolerance >= trace.span(i).end_unix_nano
                    && event_text(Some(event), semconv::EXCEPTION_TYPE).as_deref()
                        == Some(kind.as_str())
            })
        })
        .collect()
}

/// The earliest-starting error origin of the trace.
pub fn first_error(trace: &AnalyzedTrace) -> Option<usize> {
    error_spans(trace)
        .into_iter()
        .min_by_key(|i| (trace.span(*i).start_unix_nano, *i))
}

/// Whether any span of the trace failed.
pub fn has_error(trace: &AnalyzedTrace) -> bool {
    trace.spans.spans.iter().any(is_error_span)
}

fn root_name(trace: &AnalyzedTrace) -> Option<&str> {
    trace.root().map(|r| trace.span(r).name.as_str())
}

/// Groups the error origins of `traces` by fingerprint, most frequent first, with the failure
/// correlation of each (default thresholds).
pub fn group_errors(traces: &[AnalyzedTrace]) -> Vec<ErrorGroup> {
    group_errors_with(traces, &Thresholds::default())
}

struct Builder {
    key: ErrorKey,
    /// (trace index, span index)
    occurrences: Vec<(usize, usize)>,
}

/// The exception of a span as its type and normalised message (the last exception event).
fn exception_of(span: &Span) -> Option<(Option<String>, String)> {
    let event = exception_events(span).next_back()?;
    let message = event_text(Some(event), semconv::EXCEPTION_MESSAGE).unwrap_or_default();
    Some((
        event_text(Some(event), semconv::EXCEPTION_TYPE),
        normalize_text(&message),
    ))
}

/// Per span of `trace`: it records an exception, its status is unset, and the exception
/// propagated into a failure of an ancestor in the same service (the module's rule).
///
/// One walk down the tree's pre-order keeps, for the path to the current span, the failed
/// ancestors by exception and those failed with only a status; each span then asks about the
/// ancestors below its nearest `Ok` or other-service one, so a 100,000-deep chain costs
/// linear time.
pub fn propagated_exceptions(trace: &AnalyzedTrace) -> Vec<bool> {
    let tree = &trace.tree;
    let n = trace.spans.spans.len();
    let exceptions: Vec<Option<Key>> = trace.spans.spans.iter().map(exception_of).collect();
    let failed: Vec<bool> = trace.spans.spans.iter().map(is_error_span).collect();
    let fences = fences(trace);
    // Pre-order positions of the failed spans, by exception.
    let mut failed_with: HashMap<&Key, Vec<usize>> = HashMap::new();
    for (position, &i) in tree.preorder.iter().enumerate() {
        if let (true, Some(exception)) = (failed[i], &exceptions[i]) {
            failed_with.entry(exception).or_default().push(position);
        }
    }
    let mut path: Vec<usize> = Vec::new();
    let mut with_exception: HashMap<&Key, Vec<usize>> = HashMap::new();
    let mut status_only: Vec<usize> = Vec::new();
    let mut out = vec![false; n];
    for (position, &i) in tree.preorder.iter().enumerate() {
        while let Some(&left) = path.last().filter(|l| tree.subtree_end[**l] <= position) {
            path.pop();
            if !failed[left] {
                continue;
            }
            match &exceptions[left] {
                Some(exception) => {
                    with_exception.get_mut(exception).and_then(Vec::pop);
                }
                None => {
                    status_only.pop();
                }
            }
        }
        let span = trace.span(i);
        if let (StatusCode::Unset, false, Some(exception)) =
            (span.status.code, failed[i], &exceptions[i])
        {
            // Ancestors below the fence: positions from `lowest` on.
            let lowest = fences[i].map_or(0, |f| tree.position[f] + 1);
            let recorded = with_exception
                .get(exception)
                .and_then(|stack| stack.last())
                .is_some_and(|p| *p >= lowest);
            // With only a status: what a failed descendant raised. The topmost such ancestor
            // has the largest subtree; it holds one if any of them does.
            let status = || {
                let top = status_only.partition_point(|p| *p < lowest);
                status_only.get(top).is_some_and(|&p| {
                    let end = tree.subtree_end[tree.preorder[p]];
                    failed_with.get(exception).is_some_and(|list| {
                        let next = list.partition_point(|q| *q <= p);
                        list.get(next).is_some_and(|q| *q < end)
                    })
                })
            };
            out[i] = recorded || status();
        }
        path.push(i);
        if failed[i] {
            match &exceptions[i] {
                Some(exception) => with_exception.entry(exception).or_default().push(position),
                None => status_only.push(position),
            }
        }
    }
    out
}

/// Per span, its nearest ancestor that ended `Ok` or runs in another service (`None` for
/// none): an exception does not propagate past it.
fn fences(trace: &AnalyzedTrace) -> Vec<Option<usize>> {
    let tree = &trace.tree;
    let n = trace.spans.spans.len();
    let mut ok: Vec<Option<usize>> = vec![None; n];
    let mut other_service: Vec<Option<usize>> = vec![None; n];
    let mut fence: Vec<Option<usize>> = vec![None; n];
    for &i in &tree.preorder {
        let Some(p) = tree.parent[i] else {
            continue;
        };
        ok[i] = if trace.span(p).status.code == StatusCode::Ok {
            Some(p)
        } else {
            ok[p]
        };
        // The parent's nearest ancestor of another service than the parent's: of ours too.
        other_service[i] = if trace.service(p) != trace.service(i) {
            Some(p)
        } else {
            other_service[p]
        };
        fence[i] = [ok[i], other_service[i]]
            .into_iter()
            .flatten()
            .max_by_key(|a| tree.position[*a]);
    }
    fence
}

/// Exceptions recorded on spans that ended fine, grouped like errors (no correlation: they
/// are not failures); an exception that propagated into a failure
/// ([`propagated_exceptions`]) is not one.
pub fn group_handled(traces: &[AnalyzedTrace]) -> Vec<ErrorGroup> {
    let never = Thresholds {
        min_failing_runs: usize::MAX,
        ..Thresholds::default()
    };
    let mut groups = group_with(traces, &never, |trace| {
        let propagated = propagated_exceptions(trace);
        (0..trace.spans.spans.len())
            .filter(|s| !propagated[*s])
            .filter_map(|s| handled_key(trace.span(s)).map(|k| (s, k)))
            .collect()
    });
    for g in &mut groups {
        g.handled = true;
        g.no_correlation_reason = None;
    }
    groups
}

/// [`group_errors`] with explicit correlation thresholds.
pub fn group_errors_with(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<ErrorGroup> {
    group_with(traces, thresholds, |trace| {
        error_spans(trace)
            .into_iter()
            .filter_map(|s| error_key(trace.span(s)).map(|k| (s, k)))
            .collect()
    })
}

fn group_with(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
    keys: impl Fn(&AnalyzedTrace) -> Vec<(usize, ErrorKey)>,
) -> Vec<ErrorGroup> {
    let mut builders: BTreeMap<String, Builder> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for (s, key) in keys(trace) {
            builders
                .entry(key.fingerprint.clone())
                .or_insert_with(|| Builder {
                    key,
                    occurrences: Vec::new(),
                })
                .occurrences
                .push((t, s));
        }
    }
    let mut passing_cache: HashMap<usize, RunFeatures> = HashMap::new();
    let mut groups: Vec<ErrorGroup> = builders
        .into_values()
        .filter_map(|builder| build_group(traces, builder, thresholds, &mut passing_cache))
        .collect();
    groups.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen_unix_nano.cmp(&a.last_seen_unix_nano))
            .then(a.fingerprint.cmp(&b.fingerprint))
    });
    groups
}

fn build_group(
    traces: &[AnalyzedTrace],
    mut builder: Builder,
    thresholds: &Thresholds,
    passing_cache: &mut HashMap<usize, RunFeatures>,
) -> Option<ErrorGroup> {
    let start = |(t, s): (usize, usize)| traces[t].span(s).start_unix_nano;
    builder
        .occurrences
        .sort_by_key(|&(t, s)| (start((t, s)), t, s));
    let occurrences: Vec<ErrorRef> = builder
        .occurrences
        .iter()
        .map(|&(t, s)| ErrorRef {
            trace_id: traces[t].trace_id,
            span_id: traces[t].span(s).span_id,
            start_unix_nano: start((t, s)),
        })
        .collect();
    let (&(last_t, last_s), example) = (builder.occurrences.last()?, *occurrences.last()?);
    let example_message = error_key(traces[last_t].span(last_s))
        .map(|k| k.message)
        .unwrap_or_default();
    let failing = failing_ends(traces, &builder.occurrences);
    let root_operation = commonest_root(traces, &failing);
    let (correlation, no_correlation_reason) = correlation_of(
        traces,
        &builder,
        (&failing, &root_operation),
        thresholds,
        passing_cache,
    );
    let (_, contained_traces) = runs_and_survivors(traces, failing.keys().copied());
    Some(ErrorGroup {
        handled: false,
        contained_traces: contained_traces as usize,
        fingerprint: builder.key.fingerprint,
        exception_type: builder.key.exception_type,
        message: builder.key.normalized_message,
        example_message,
        operation: builder.key.operation,
        root_operation,
        count: occurrences.len(),
        traces: failing.len(),
        first_seen_unix_nano: occurrences.first().map_or(0, |o| o.start_unix_nano),
        last_seen_unix_nano: example.start_unix_nano,
        example,
        recent: occurrences.iter().rev().take(MAX_RECENT).copied().collect(),
        correlation,
        no_correlation_reason,
        occurrences,
    })
}

/// The failing traces, with the end of their first failing span (what came after is a
/// consequence of the failure, not a cause).
fn failing_ends(traces: &[AnalyzedTrace], occurrences: &[(usize, usize)]) -> BTreeMap<usize, u64> {
    let mut failing: BTreeMap<usize, u64> = BTreeMap::new();
    for &(t, s) in occurrences {
        let end = traces[t].span(s).end_unix_nano;
        failing
            .entry(t)
            .and_modify(|e| *e = (*e).min(end))
            .or_insert(end);
    }
    failing
}

/// The root operation most of the failing traces share (by name, ties to the first name).
fn commonest_root(traces: &[AnalyzedTrace], failing: &BTreeMap<usize, u64>) -> String {
    let mut root_counts: BTreeMap<&str, usize> = BTreeMap::new();
    for &t in failing.keys() {
        if let Some(name) = root_name(&traces[t]) {
            *root_counts.entry(name).or_default() += 1;
        }
    }
    root_counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
        .map(|(name, _)| (*name).to_owned())
        .unwrap_or_default()
}

/// What separates the failing runs of `root_operation` from its passing ones, or why
/// nothing could be said.
fn correlation_of(
    traces: &[AnalyzedTrace],
    builder: &Builder,
    (failing, root_operation): (&BTreeMap<usize, u64>, &str),
    thresholds: &Thresholds,
    passing_cache: &mut HashMap<usize, RunFeatures>,
) -> (Option<Correlation>, Option<String>) {
    let failing_runs: Vec<(usize, u64)> = failing
        .iter()
        .filter(|(t, _)| root_name(&traces[**t]) == Some(root_operation))
        .map(|(t, end)| (*t, *end))
        .collect();
    let passing_runs: Vec<usize> = traces
        .iter()
        .enumerate()
        .filter(|(_, trace)| root_name(trace) == Some(root_operation) && !has_error(trace))
        .map(|(t, _)| t)
        .collect();
    if failing_runs.len() < thresholds.min_failing_runs
        || passing_runs.len() < thresholds.min_passing_runs
    {
        return (
            None,
            Some(format!(
                "too few runs of {} to correlate ({} failing, {} passing; needs {} and {})",
                devtrace_model::recorded::name(root_operation),
                failing_runs.len(),
                passing_runs.len(),
                thresholds.min_failing_runs,
                thresholds.min_passing_runs
            )),
        );
    }
    let failing_features: Vec<RunFeatures> = failing_runs
        .iter()
        .map(|&(t, cutoff)| failing_features(&traces[t], t, cutoff, &builder.occurrences))
        .collect();
    for &t in &passing_runs {
        passing_cache
            .entry(t)
            .or_insert_with(|| RunFeatures::of(&traces[t], None, &HashSet::new()));
    }
    let passing_features: Vec<&RunFeatures> =
        passing_runs.iter().map(|t| &passing_cache[t]).collect();
    let failing_refs: Vec<&RunFeatures> = failing_features.iter().collect();
    match correlate(&failing_refs, &passing_features, thresholds) {
        Some(mut found) => {
            found.text = sentence(
                builder.key.exception_type.as_deref(),
                &builder.key.operation,
                &found,
            );
            (Some(found), None)
        }
        None => (
            None,
            Some(format!(
                "no attribute separates the {} failing runs of {root_operation} from the {} passing ones",
                failing_runs.len(),
                passing_runs.len()
            )),
        ),
    }
}

/// The features of failing run `t` (`trace`) up to `cutoff`, its failed spans' subtrees left
/// out.
fn failing_features(
    trace: &AnalyzedTrace,
    t: usize,
    cutoff: u64,
    occurrences: &[(usize, usize)],
) -> RunFeatures {
    let mut in_trace: Vec<usize> = occurrences
        .iter()
        .filter(|(o, _)| *o == t)
        .map(|(_, s)| *s)
        .collect();
    // Outer occurrences first: one under another is already in with its subtree
    // (nested failures would otherwise cost depth² in a deep chain).
    in_trace.sort_unstable_by_key(|s| trace.tree.position[*s]);
    let mut failed: HashSet<usize> = HashSet::new();
    for s in in_trace {
        if failed.insert(s) {
            failed.extend(trace.descendants(s).iter().copied());
        }
    }
    RunFeatures::of(trace, Some(cutoff), &failed)
}

/// "timeouts", "KeyError failures", "failures".
pub fn failure_noun(exception_type: Option<&str>) -> String {
    match exception_type {
        Some(t) if t.to_ascii_lowercase().contains("timeout") => "timeouts".to_owned(),
        Some(t) if !t.is_empty() => format!("{} failures", devtrace_model::recorded::name(t)),
        _ => "failures".to_owned(),
    }
}

fn sentence(exception_type: Option<&str>, operation: &str, c: &Correlation) -> String {
    use devtrace_model::recorded::name as q;
    let what = failure_noun(exception_type);
    let operation = q(operation);
    let lead = if c.failing_with == c.failing_total {
        format!("all {} {what} of {operation}", c.failing_total)
    } else {
        format!(
            "{} of {} {what} of {operation}",
            c.failing_with, c.failing_total
        )
    };
    let observed = match (c.failing_edge, c.passing_edge) {
        (Some(failing), Some(passing)) => {
            let (f_op, p_op) = match c.operator {
                Operator::Gt | Operator::Ge => ("≥", "≤"),
                _ => ("≤", "≥"),
            };
            format!(
                " (observed: failing runs {f_op} {}, passing runs {p_op} {}{})",
                render_number(&c.attribute, failing),
                render_number(&c.attribute, passing),
                if c.narrow_gap {
                    "; the gap is narrow: more runs would tell whether the limit is real"
                } else {
                    ""
                }
            )
        }
        (Some(failing), None) => format!(
            " (observed: failing runs from {})",
            render_number(&c.attribute, failing)
        ),
        _ => String::new(),
    };
    format!(
        "{lead} had {} {}; {} of {} successes did{observed}",
        q(&c.feature),
        c.condition,
        c.passing_with,
        c.passing_total
    )
}

// ---------------------------------------------------------------------------------------------
// Features of a run and the search for the one that separates failing from passing runs.

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct FeatureId {
    span: Option<String>,
    key: String,
}

impl FeatureId {
    fn name(&self) -> String {
        match &self.span {
            Some(span) => format!("{span}.{}", self.key),
            None => format!("resource.{}", self.key),
        }
    }
}

/// Every attribute value of one run, by feature.
#[derive(Debug, Default)]
struct RunFeatures {
    categorical: HashMap<FeatureId, BTreeSet<String>>,
    /// (min, max) over the spans of the run carrying the feature.
    numeric: HashMap<FeatureId, (f64, f64)>,
    /// Every numeric value seen, for counting distinct values.
    numeric_values: HashMap<FeatureId, Vec<f64>>,
}

impl RunFeatures {
    /// The features of `trace`. With a cutoff, spans starting after it are left out; the
    /// spans in `failed` (the failing spans and their descendants) lose their output-like
    /// attributes (what a failed call returned says nothing about why it failed).
    fn of(trace: &AnalyzedTrace, cutoff: Option<u64>, failed: &HashSet<usize>) -> Self {
        let mut features = Self::default();
        let mut resources = BTreeSet::new();
        for (i, span) in trace.spans.spans.iter().enumerate() {
            if cutoff.is_some_and(|c| span.start_unix_nano > c) {
                continue;
            }
            resources.insert(span.resource);
            let in_failure = failed.contains(&i);
            for kv in trace.attributes(i) {
                if !(in_failure && is_output_key(&kv.key)) {
                    features.add(Some(&span.name), kv);
                }
            }
        }
        for r in resources {
            if let Some(resource) = trace.spans.resources.get(r as usize) {
                for kv in &resource.attributes {
                    features.add(None, kv);
                }
            }
        }
        features
    }

    fn add(&mut self, span: Option<&str>, kv: &KeyValue) {
        if is_outcome_key(&kv.key) {
            return;
        }
        let id = FeatureId {
            span: span.map(str::to_owned),
            key: kv.key.clone(),
        };
        if let Some(value) = numeric(&kv.value).filter(|_| is_threshold_key(&kv.key)) {
            let entry = self.numeric.entry(id.clone()).or_insert((value, value));
            entry.0 = entry.0.min(value);
            entry.1 = entry.1.max(value);
            self.numeric_values.entry(id).or_default().push(value);
        } else if let Some(value) = categorical(&kv.key, &kv.value) {
            self.categorical.entry(id).or_default().insert(value);
        }
    }
}

/// Attributes describing the outcome (a consequence, not a cause): exceptions, error
/// classes, statuses and status codes, exit codes.
fn is_outcome_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.starts_with("exception.")
        || k == "error"
        || k.starts_with("error.")
        || k.starts_with("otel.status")
        || k.contains("status_code")
        || k.contains("status.code")
        || k.ends_with(".status")
        || k == "status"
        || k.contains("exit_code")
        || k.contains("exit.code")
        || k.starts_with("devtrace.test.")
}

/// Attributes a span sets when it completes: its results, not its inputs.
fn is_output_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "output",
        "response",
        "completion",
        "result",
        "finish",
        "status",
        "duration",
        "elapsed",
        "latency",
        "returned",
    ]
    .iter()
    .any(|w| k.contains(w))
}

/// Numbers that identify or date something: compared by value, not by threshold (ids) or not
/// at all (times).
fn is_identity_key(k: &str) -> bool {
    ["id", "pid", "port", "code", "lineno", "line", "number"]
        .iter()
        .any(|suffix| k.ends_with(suffix))
}

fn is_time_key(k: &str) -> bool {
    k.contains("timestamp")
        || k.contains("unix")
        || k.contains("epoch")
        || k.ends_with("_at")
        || k.ends_with(".at")
        || k.ends_with("time")
        || k.ends_with("date")
}

fn is_threshold_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    !is_identity_key(&k) && !is_time_key(&k)
}

fn numeric(value: &AnyValue) -> Option<f64> {
    match value {
        AnyValue::Int(i) => Some(*i as f64),
        AnyValue::Double(d) if d.is_finite() => Some(*d),
        _ => None,
    }
}

/// The value of a string, boolean or identity-like number, as text.
fn categorical(key: &str, value: &AnyValue) -> Option<String> {
    match value {
        AnyValue::String(s) if s.chars().count() <= MAX_CATEGORICAL_CHARS => Some(s.clone()),
        AnyValue::Bool(b) => Some(b.to_string()),
        AnyValue::Int(i) if !is_time_key(&key.to_ascii_lowercase()) => Some(i.to_string()),
        _ => None,
    }
}

/// A candidate explanation: its score and how to report it.
struct Candidate {
    separation: f64,
    distinct: usize,
    correlation: Correlation,
}

fn share(with: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        with as f64 / total as f64
    }
}

fn passes(f_with: usize, f_total: usize, p_with: usize, p_total: usize, th: &Thresholds) -> bool {
    const EPS: f64 = 1e-9;
    f_with > 0
        && share(f_with, f_total) + EPS >= th.min_failing_share
        && share(p_with, p_total) <= th.max_passing_share + EPS
}

fn better(a: &Candidate, b: &Candidate) -> bool {
    const EPS: f64 = 1e-9;
    if (a.separation - b.separation).abs() > EPS {
        return a.separation > b.separation;
    }
    (
        a.distinct,
        &a.correlation.feature,
        a.correlation.threshold.is_some(),
    ) < (
        b.distinct,
        &b.correlation.feature,
        b.correlation.threshold.is_some(),
    )
}

fn correlate(
    failing: &[&RunFeatures],
    passing: &[&RunFeatures],
    th: &Thresholds,
) -> Option<Correlation> {
    let mut best: Option<Candidate> = None;
    let candidates = categorical_candidates(failing, passing, th)
        .into_iter()
        .chain(numeric_candidates(failing, passing, th));
    for candidate in candidates {
        if best.as_ref().is_none_or(|b| better(&candidate, b)) {
            best = Some(candidate);
        }
    }
    best.map(|b| b.correlation)
}

/// Strings and booleans: a value most failing runs have and few passing runs do.
fn categorical_candidates(
    failing: &[&RunFeatures],
    passing: &[&RunFeatures],
    th: &Thresholds,
) -> Vec<Candidate> {
    let (f_total, p_total) = (failing.len(), passing.len());
    let mut found = Vec::new();
    let categorical_ids: BTreeSet<&FeatureId> =
        failing.iter().flat_map(|f| f.categorical.keys()).collect();
    for id in categorical_ids {
        fn values<'a>(run: &'a RunFeatures, id: &FeatureId) -> Option<&'a BTreeSet<String>> {
            run.categorical.get(id)
        }
        let candidates: BTreeSet<&String> = failing
            .iter()
            .filter_map(|r| values(r, id))
            .flatten()
            .collect();
        let distinct = failing
            .iter()
            .chain(passing)
            .filter_map(|r| values(r, id))
            .flatten()
            .collect::<BTreeSet<_>>()
            .len();
        for value in candidates {
            let count = |runs: &[&RunFeatures]| {
                runs.iter()
                    .filter(|r| values(r, id).is_some_and(|v| v.contains(value)))
                    .count()
            };
            let (f_with, p_with) = (count(failing), count(passing));
            if !passes(f_with, f_total, p_with, p_total, th) {
                continue;
            }
            found.push(Candidate {
                separation: share(f_with, f_total) - share(p_with, p_total),
                distinct,
                correlation: Correlation {
                    feature: id.name(),
                    span_name: id.span.clone(),
                    attribute: id.key.clone(),
                    operator: Operator::Eq,
                    value: Some(value.clone()),
                    threshold: None,
                    condition: format!("= {}", display_value(value)),
                    failing_with: f_with,
                    failing_total: f_total,
                    passing_with: p_with,
                    passing_total: p_total,
                    separation: share(f_with, f_total) - share(p_with, p_total),
                    failing_edge: None,
                    passing_edge: None,
                    narrow_gap: false,
                    text: String::new(),
                },
            });
        }
    }

    found
}

/// Numbers: the threshold (≥ or ≤) that best separates them, each way.
fn numeric_candidates(
    failing: &[&RunFeatures],
    passing: &[&RunFeatures],
    th: &Thresholds,
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    let numeric_ids: BTreeSet<&FeatureId> = failing.iter().flat_map(|f| f.numeric.keys()).collect();
    for id in numeric_ids {
        let ranges = |runs: &[&RunFeatures]| -> Vec<Option<(f64, f64)>> {
            runs.iter().map(|r| r.numeric.get(id).copied()).collect()
        };
        let (f_ranges, p_ranges) = (ranges(failing), ranges(passing));
        let distinct = failing
            .iter()
            .chain(passing)
            .filter_map(|r| r.numeric_values.get(id))
            .flatten()
            .map(|v| v.to_bits())
            .collect::<BTreeSet<_>>()
            .len();
        let all: Vec<(f64, f64)> = f_ranges
            .iter()
            .chain(&p_ranges)
            .flatten()
            .copied()
            .collect();
        let sides = Sides {
            f_ranges: &f_ranges,
            p_ranges: &p_ranges,
            all: &all,
            distinct,
        };
        for upward in [true, false] {
            candidates.extend(threshold_candidate(id, &sides, upward, th));
        }
    }
    candidates
}

/// One numeric feature's values over the failing and the passing runs.
struct Sides<'a> {
    f_ranges: &'a [Option<(f64, f64)>],
    p_ranges: &'a [Option<(f64, f64)>],
    all: &'a [(f64, f64)],
    distinct: usize,
}

/// The threshold that best separates failing runs from passing ones in one direction.
/// Upward: runs whose largest value is ≥ t. Downward: whose smallest is ≤ t.
fn threshold_candidate(
    id: &FeatureId,
    sides: &Sides<'_>,
    upward: bool,
    th: &Thresholds,
) -> Option<Candidate> {
    let (f_ranges, p_ranges, all, distinct) =
        (sides.f_ranges, sides.p_ranges, sides.all, sides.distinct);
    let (f_total, p_total) = (f_ranges.len(), p_ranges.len());
    let pick = |r: &(f64, f64)| if upward { r.1 } else { r.0 };
    let meets = |v: f64, t: f64| if upward { v >= t } else { v <= t };
    let mut thresholds: Vec<f64> = f_ranges.iter().flatten().map(pick).collect();
    thresholds.sort_by(|a, b| {
        if upward {
            a.total_cmp(b)
        } else {
            b.total_cmp(a)
        }
    });
    thresholds.dedup();
    let mut best_here: Option<(f64, usize, usize)> = None;
    for &t in &thresholds {
        let count = |ranges: &[Option<(f64, f64)>]| {
            ranges
                .iter()
                .flatten()
                .filter(|r| meets(pick(r), t))
                .count()
        };
        let (f_with, p_with) = (count(f_ranges), count(p_ranges));
        if !passes(f_with, f_total, p_with, p_total, th) {
            continue;
        }
        let separation = share(f_with, f_total) - share(p_with, p_total);
        let improves = best_here
            .is_none_or(|(_, bf, bp)| separation > share(bf, f_total) - share(bp, p_total) + 1e-9);
        if improves {
            best_here = Some((t, f_with, p_with));
        }
    }
    let (t, f_with, p_with) = best_here?;
    // A round number in the gap below (above) t reads better and counts the same runs.
    let (threshold, operator) = if upward {
        let lo = all.iter().map(|r| r.1).filter(|v| *v < t).reduce(f64::max);
        match nice_below(t, lo) {
            Some(n) => (n, Operator::Gt),
            None => (t, Operator::Ge),
        }
    } else {
        let hi = all.iter().map(|r| r.0).filter(|v| *v > t).reduce(f64::min);
        match nice_above(t, hi) {
            Some(n) => (n, Operator::Lt),
            None => (t, Operator::Le),
        }
    };
    let separation = share(f_with, f_total) - share(p_with, p_total);
    // The passing value nearest the failing side (the gap's other edge).
    let passing_edge = p_ranges
        .iter()
        .flatten()
        .map(pick)
        .filter(|v| !meets(*v, t))
        .reduce(|a, b| if upward { a.max(b) } else { a.min(b) });
    let narrow_gap = passing_edge.is_some_and(|p| {
        let width = (t - p).abs();
        width < 0.1 * t.abs().max(p.abs())
    });
    Some(Candidate {
        separation,
        distinct,
        correlation: Correlation {
            feature: id.name(),
            span_name: id.span.clone(),
            attribute: id.key.clone(),
            operator,
            value: None,
            threshold: Some(threshold),
            condition: format!(
                "{} {}",
                operator.symbol(),
                render_number(&id.key, threshold)
            ),
            failing_with: f_with,
            failing_total: f_total,
            passing_with: p_with,
            passing_total: p_total,
            separation,
            failing_edge: Some(t),
            passing_edge,
            narrow_gap,
            text: String::new(),
        },
    })
}

fn display_value(value: &str) -> String {
    devtrace_model::recorded::quote_short(value, 80)
}

/// The largest round number strictly between `lo` and `t` (fewest significant digits first).
fn nice_below(t: f64, lo: Option<f64>) -> Option<f64> {
    if !t.is_finite() {
        return None;
    }
    if t == 0.0 {
        return None;
    }
    if t < 0.0 {
        return nice_above(-t, lo.map(|l| -l)).map(|n| -n);
    }
    let exponent = t.log10().floor() as i32;
    for digits in 1..=6 {
        let unit = 10f64.powi(exponent - digits + 1);
        let mut candidate = (t / unit).floor() * unit;
        if candidate >= t {
            candidate -= unit;
        }
        let clear = lo.is_none_or(|lo| candidate - lo > unit * 1e-6);
        if clear && candidate < t {
            return Some(candidate);
        }
    }
    None
}

/// The smallest round number strictly between `t` and `hi`.
fn nice_above(t: f64, hi: Option<f64>) -> Option<f64> {
    if !t.is_finite() {
        return None;
    }
    if t == 0.0 {
        return None;
    }
    if t < 0.0 {
        return nice_below(-t, hi.map(|h| -h)).map(|n| -n);
    }
    let exponent = t.log10().floor() as i32;
    for digits in 1..=6 {
        let unit = 10f64.powi(exponent - digits + 1);
        let mut candidate = (t / unit).ceil() * unit;
        if candidate <= t {
            candidate += unit;
        }
        let clear = hi.is_none_or(|hi| hi - candidate > unit * 1e-6);
        if clear && candidate > t {
            return Some(candidate);
        }
    }
    None
}

/// A number with its unit when the attribute name says what it measures: bytes ("size",
/// "bytes") in B/KB/MB/GB (powers of 1000), durations ("_ms", "_ns", "_us", "_s") as time.
pub fn render_number(key: &str, value: f64) -> String {
    let k = key.to_ascii_lowercase();
    if is_bytes_key(&k) {
        let a = value.abs();
        let (scale, unit) = if a >= 1e9 {
            (1e9, "GB")
        } else if a >= 1e6 {
            (1e6, "MB")
        } else if a >= 1e3 {
            (1e3, "KB")
        } else {
            (1.0, "B")
        };
        return format!("{} {unit}", trim_number(value / scale));
    }
    if let Some(nanos_per_unit) = duration_scale(&k) {
        let nanos = value * nanos_per_unit;
        let a = nanos.abs();
        let (scale, unit) = if a >= 60e9 {
            (60e9, "min")
        } else if a >= 1e9 {
            (1e9, "s")
        } else if a >= 1e6 {
            (1e6, "ms")
        } else if a >= 1e3 {
            (1e3, "µs")
        } else {
            (1.0, "ns")
        };
        return format!("{} {unit}", trim_number(nanos / scale));
    }
    trim_number(value)
}

fn is_bytes_key(k: &str) -> bool {
    let counts_things = [
        "batch", "page", "pool", "queue", "window", "step", "sample", "count", "font",
    ]
    .iter()
    .any(|w| k.contains(w));
    k.contains("bytes") || (k.contains("size") && !counts_things)
}

fn duration_scale(k: &str) -> Option<f64> {
    let ends = |suffixes: &[&str]| suffixes.iter().any(|s| k.ends_with(s));
    if ends(&["_ns", ".ns", "nanos", "_nanoseconds"]) {
        Some(1.0)
    } else if ends(&["_us", ".us", "micros", "_microseconds"]) {
        Some(1e3)
    } else if ends(&["_ms", ".ms", "millis", "_milliseconds"]) || k == "ms" {
        Some(1e6)
    } else if ends(&["_s", ".s", "_secs", "_sec", "_seconds", ".seconds"]) {
        Some(1e9)
    } else {
        None
    }
}

/// At most two decimals, trailing zeros dropped: 500, 1.5, 0.25.
fn trim_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" || text.is_empty() {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// The causal chain of one error.

/// One span, as the chain shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ChainSpan {
    pub span_id: SpanId,
    pub name: String,
    pub service: String,
    pub kind: Option<WorkKind>,
    pub start_unix_nano: u64,
    pub duration_nanos: u64,
    pub error: bool,
    pub status_message: String,
}

/// An attribute rendered as text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

fn attributes(kvs: &[KeyValue]) -> Vec<Attribute> {
    kvs.iter()
        .map(|kv| Attribute {
            key: kv.key.clone(),
            value: kv.value.to_display_string(),
        })
        .collect()
}

/// Why an earlier span is in the chain: what it is (an LLM call, a state change), and the
/// trace evidence that the failing span used its output (a link, a lock both held, a value
/// passed from one to the other, a state diff naming what the failing span worked on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumedReason {
    /// An LLM call: its output may be what failed.
    Llm,
    /// A state change (`devtrace.state.*` attributes, or named `*.write`, `*.save`, `state.*`).
    StateChange,
    /// Evidence: the failing span links to it.
    Link,
    /// Evidence: both hold or wait for the same lock (`devtrace.lock.name`).
    SameLock,
    /// Evidence: an identifier, key or location from it appears in the failing span.
    SharedValue,
    /// Evidence: its state diff names something the failing span's attributes name.
    StateNamesIt,
}

impl ConsumedReason {
    /// Whether this reason is trace evidence that the output was used (not just what the span
    /// is).
    pub fn is_evidence(self) -> bool {
        matches!(
            self,
            Self::Link | Self::SameLock | Self::SharedValue | Self::StateNamesIt
        )
    }
}

/// An earlier span in the chain: one whose output the failing span used, when the trace shows
/// it (`used`), otherwise one that merely preceded it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConsumedSpan {
    pub span: ChainSpan,
    pub reasons: Vec<ConsumedReason>,
    /// The trace shows the failing span used its output (one of the reasons is evidence).
    pub used: bool,
    /// The values found in both (for [`ConsumedReason::SharedValue`]).
    pub shared_values: Vec<String>,
    /// How long before the failing span started it ended.
    pub ended_before_nanos: u64,
    /// The attributes that say what it was (model and tokens, state keys, link attributes).
    pub details: Vec<Attribute>,
}

/// An `exception` event of the failing span (or of a span its failure passed through).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExceptionInfo {
    pub time_unix_nano: u64,
    pub exception_type: Option<String>,
    pub message: String,
    /// `exception.stacktrace`, line by line, verbatim.
    pub stacktrace: Vec<String>,
    /// Every other attribute of the event (local variables, `exception.escaped`, …).
    pub attributes: Vec<Attribute>,
    /// The recorded frames with their local variables, innermost first (from
    /// `exception.locals.*` and `exception.frame.<n>.*`).
    pub frames: Vec<FrameInfo>,
    /// `devtrace.state.snapshot`: the application's state when the error escaped (JSON).
    pub state_snapshot: Option<String>,
    /// The span that recorded it, when not the failing one: one the failure passed through on
    /// its way up, which captured the program's frames or state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_on: Option<String>,
}

impl ExceptionInfo {
    /// Whether `other` records nothing this one does not: the same type, message, stack trace,
    /// frames and state.
    fn says_the_same(&self, other: &ExceptionInfo) -> bool {
        (
            &self.exception_type,
            &self.message,
            &self.stacktrace,
            &self.frames,
            &self.state_snapshot,
        ) == (
            &other.exception_type,
            &other.message,
            &other.stacktrace,
            &other.frames,
            &other.state_snapshot,
        )
    }
}

/// One frame of a failing call stack, as the instrumentation recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FrameInfo {
    /// 0 is the innermost recorded frame, 1 its caller, …
    pub index: usize,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<i64>,
    /// In the order recorded.
    pub locals: Vec<LocalVariable>,
    /// Locals left out by the instrumentation's bound.
    pub omitted_locals: i64,
}

/// A local variable: its name, type (when recorded) and bounded repr.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LocalVariable {
    pub name: String,
    #[serde(rename = "type")]
    pub type_name: Option<String>,
    pub value: String,
}

/// Where an exception attribute belongs: a local of some frame (value or type), a field of
/// a frame, or neither.
enum FrameKey<'a> {
    Local {
        frame: usize,
        name: &'a str,
        is_type: bool,
    },
    Field {
        frame: usize,
        field: &'a str,
    },
}

/// A local's attribute name after its prefix: `name` (the repr) or `name.type` (its type).
fn local_key(frame: usize, rest: &str) -> Option<FrameKey<'_>> {
    if rest.is_empty() {
        return None;
    }
    Some(match rest.strip_suffix(semconv::LOCAL_TYPE_SUFFIX) {
        Some(name) if !name.is_empty() && !name.contains('.') => FrameKey::Local {
            frame,
            name,
            is_type: true,
        },
        _ => FrameKey::Local {
            frame,
            name: rest,
            is_type: false,
        },
    })
}

fn frame_key(key: &str) -> Option<FrameKey<'_>> {
    if let Some(rest) = key.strip_prefix(semconv::EXCEPTION_LOCALS_PREFIX) {
        return local_key(0, rest);
    }
    if let Some(rest) = key.strip_prefix(semconv::EXCEPTION_FRAME_PREFIX) {
        let (index, field) = rest.split_once('.')?;
        let frame: usize = index.parse().ok()?;
        return match field.strip_prefix(semconv::FRAME_LOCALS) {
            Some(local) => local_key(frame, local),
            None => Some(FrameKey::Field { frame, field }),
        };
    }
    // Other spellings seen in the wild: `exception.local.x`, `locals.x`, `<anything>.locals.x`.
    let rest = key
        .strip_prefix("exception.local.")
        .or_else(|| key.strip_prefix("locals."))
        .or_else(|| key.split_once(".locals.").map(|(_, name)| name))?;
    local_key(0, rest)
}

/// The frames and locals an exception event records, innermost first.
pub fn exception_frames(attributes: &[KeyValue]) -> Vec<FrameInfo> {
    let mut frames: BTreeMap<usize, FrameInfo> = BTreeMap::new();
    for kv in attributes {
        let Some(key) = frame_key(&kv.key) else {
            continue;
        };
        let frame_index = match &key {
            FrameKey::Local { frame, .. } | FrameKey::Field { frame, .. } => *frame,
        };
        let frame = frames.entry(frame_index).or_insert_with(|| FrameInfo {
            index: frame_index,
            ..FrameInfo::default()
        });
        match key {
            FrameKey::Local {
                name,
                is_type,
                frame: _,
            } => {
                let position = match frame.locals.iter().position(|l| l.name == name) {
                    Some(p) => p,
                    None => {
                        frame.locals.push(LocalVariable {
                            name: name.to_owned(),
                            ..LocalVariable::default()
                        });
                        frame.locals.len() - 1
                    }
                };
                let text = kv.value.to_display_string();
                if is_type {
                    frame.locals[position].type_name = Some(text);
                } else {
                    frame.locals[position].value = text;
                }
            }
            FrameKey::Field { field, frame: _ } => match field {
                semconv::FRAME_FUNCTION => frame.function = Some(kv.value.to_display_string()),
                semconv::FRAME_FILE => frame.file = Some(kv.value.to_display_string()),
                semconv::FRAME_LINE => frame.line = kv.value.as_i64(),
                semconv::FRAME_OMITTED_LOCALS => {
                    frame.omitted_locals = kv.value.as_i64().unwrap_or(0)
                }
                _ => {}
            },
        }
    }
    frames.into_values().collect()
}

/// The text of an LLM call's response: `gen_ai.completion`, or the text parts of
/// `gen_ai.output.messages` (the GenAI conventions' JSON messages, or plain text).
pub fn response_text(span: &Span) -> Option<String> {
    if let Some(text) = span.attr(semconv::GEN_AI_COMPLETION) {
        return Some(text.to_display_string());
    }
    let raw = span
        .attr(semconv::GEN_AI_OUTPUT_MESSAGES)?
        .to_display_string();
    let Ok(serde_json::Value::Array(messages)) = serde_json::from_str::<serde_json::Value>(&raw)
    else {
        return Some(raw);
    };
    let mut texts = Vec::new();
    for message in &messages {
        match (&message["content"], message["parts"].as_array()) {
            (serde_json::Value::String(text), _) => texts.push(text.clone()),
            (_, Some(parts)) => texts.extend(
                parts
                    .iter()
                    .filter_map(|p| p["content"].as_str().or_else(|| p["text"].as_str()))
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    Some(texts.join("\n"))
}

fn preview(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_owned();
    }
    format!("{}…", text.chars().take(limit).collect::<String>())
}

/// Any other event of the failing span.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EventInfo {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<Attribute>,
}

/// A link from the failing span to a span outside this trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExternalLink {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub attributes: Vec<Attribute>,
}

/// Why one span failed, as far as the trace can tell.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CausalChain {
    pub trace_id: TraceId,
    pub error: Option<ErrorKey>,
    /// The span that failed.
    pub failing: ChainSpan,
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Its ancestors, root first.
    pub ancestors: Vec<ChainSpan>,
    /// Earlier spans it may have consumed the output of, most recent first.
    pub consumed: Vec<ConsumedSpan>,
    pub exceptions: Vec<ExceptionInfo>,
    pub events: Vec<EventInfo>,
    pub external_links: Vec<ExternalLink>,
}

fn chain_span(trace: &AnalyzedTrace, index: usize) -> ChainSpan {
    let span = trace.span(index);
    ChainSpan {
        span_id: span.span_id,
        name: span.name.clone(),
        service: trace
            .spans
            .resources
            .get(span.resource as usize)
            .map_or("unknown_service", |r| r.service_name())
            .to_owned(),
        kind: Some(classify(trace, index)),
        start_unix_nano: span.start_unix_nano,
        duration_nanos: span.duration_nanos(),
        error: is_error_span(span),
        status_message: span.status.message.clone(),
    }
}

/// A state change: `devtrace.state.*` attributes, or a name like `*.write`, `*.save`, `state.*`.
pub fn is_state_change(span: &Span) -> bool {
    span.attributes
        .iter()
        .any(|kv| kv.key.starts_with(semconv::STATE_PREFIX))
        || span.name.ends_with(".write")
        || span.name.ends_with(".save")
        || span.name.starts_with("state.")
}

/// The causal chain of the span at `failing`: its ancestors, the earlier LLM calls, state
/// changes and linked spans that ended before it started (at most [`MAX_CONSUMED`], linked
/// spans first, then the most recent), and its exception and other events.
pub fn causal_chain(trace: &AnalyzedTrace, failing: usize) -> CausalChain {
    let Some(span) = trace.spans.spans.get(failing) else {
        return CausalChain {
            trace_id: trace.trace_id,
            ..CausalChain::default()
        };
    };
    let parents = parent_indices(trace);
    let ancestor_list = ancestors(&parents, failing);
    let what = FailingSpan::of(trace, failing, &ancestor_list);
    let mut consumed: Vec<(usize, Vec<ConsumedReason>, Vec<String>)> = (0..trace.spans.spans.len())
        .filter(|&i| i != failing && !what.ancestors.contains(&i))
        .filter(|&i| trace.span(i).end_unix_nano <= span.start_unix_nano)
        .filter_map(|i| consumed_reasons(trace, i, &what).map(|(r, shared)| (i, r, shared)))
        .collect();
    let end = |i: usize| trace.span(i).end_unix_nano;
    // Spans with evidence first, then the most recent.
    consumed.sort_by_key(|(i, reasons, _)| {
        (
            !reasons.iter().any(|r| r.is_evidence()),
            std::cmp::Reverse(end(*i)),
            *i,
        )
    });
    consumed.truncate(MAX_CONSUMED);
    consumed.sort_by_key(|(i, _, _)| (std::cmp::Reverse(end(*i)), *i));
    let consumed = consumed
        .into_iter()
        .map(|(i, reasons, shared)| consumed_span(trace, span, i, reasons, shared))
        .collect();
    let (mut exceptions, events) = exceptions_and_events(span);
    let above = exceptions_on_the_way_up(trace, failing, &ancestor_list);
    for info in above {
        // A propagation usually records the same exception again, frames and all: once is enough.
        if !exceptions.iter().any(|e| e.says_the_same(&info)) {
            exceptions.push(info);
        }
    }
    CausalChain {
        trace_id: trace.trace_id,
        error: error_key(span),
        failing: chain_span(trace, failing),
        attributes: attributes(&span.attributes),
        ancestors: ancestor_list
            .iter()
            .rev()
            .map(|a| chain_span(trace, *a))
            .collect(),
        consumed,
        exceptions,
        events,
        external_links: external_links(trace, span),
    }
}

/// What the failing span (and its subtree) carries, and what its context already had: a value
/// in both an earlier span and the failing one, but not in their common ancestors, was passed
/// from one to the other.
struct FailingSpan {
    ancestors: HashSet<usize>,
    /// Spans of this trace it links to.
    linked: HashSet<SpanId>,
    tokens: HashSet<String>,
    context: HashSet<String>,
    locks: HashSet<String>,
    /// Every string it carries (attributes, and its events' — an exception's locals often
    /// hold the very text it choked on).
    texts: Vec<String>,
    /// Its attribute values of a length a state diff could name.
    words: HashSet<String>,
}

impl FailingSpan {
    fn of(trace: &AnalyzedTrace, failing: usize, ancestors: &[usize]) -> Self {
        let span = trace.span(failing);
        Self {
            ancestors: ancestors.iter().copied().collect(),
            linked: span
                .links
                .iter()
                .filter(|l| l.trace_id == trace.trace_id)
                .map(|l| l.span_id)
                .collect(),
            tokens: crate::values::subtree_tokens(trace, failing),
            context: ancestors
                .first()
                .map(|p| crate::values::context_tokens(trace, *p))
                .unwrap_or_default(),
            locks: trace
                .subtree(failing)
                .iter()
                .filter_map(|&n| trace.span(n).attr(crate::locks::LOCK_NAME))
                .map(AnyValue::to_display_string)
                .filter(|l| !l.is_empty())
                .collect(),
            texts: span
                .attributes
                .iter()
                .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
                .filter_map(|kv| kv.value.as_str().map(str::to_owned))
                .collect(),
            words: span
                .attributes
                .iter()
                .map(|kv| kv.value.to_display_string())
                .filter(|v| v.chars().count() >= 3 && v.chars().count() <= 200)
                .collect(),
        }
    }
}

/// Why the earlier span at `i` may have fed the failure, and the values it passed on; `None`
/// when it is neither evidence nor an LLM call or state change worth showing.
fn consumed_reasons(
    trace: &AnalyzedTrace,
    i: usize,
    failing: &FailingSpan,
) -> Option<(Vec<ConsumedReason>, Vec<String>)> {
    let other = trace.span(i);
    let mut reasons = Vec::new();
    if classify(trace, i) == WorkKind::Llm {
        reasons.push(ConsumedReason::Llm);
    }
    let state_change = is_state_change(other);
    if state_change {
        reasons.push(ConsumedReason::StateChange);
    }
    if failing.linked.contains(&other.span_id) {
        reasons.push(ConsumedReason::Link);
    }
    if other
        .attr(crate::locks::LOCK_NAME)
        .map(AnyValue::to_display_string)
        .is_some_and(|l| failing.locks.contains(&l))
    {
        reasons.push(ConsumedReason::SameLock);
    }
    let results = crate::values::span_results(trace, i);
    let mut shared = crate::values::passed(&results, &failing.tokens, &failing.context, 3);
    // An LLM call's response found in what the failing span worked on.
    if let Some(response) = response_text(other) {
        let head: String = response.trim().chars().take(30).collect();
        if head.chars().count() >= 12 && failing.texts.iter().any(|t| t.contains(&head)) {
            shared.push(head);
        }
    }
    if !shared.is_empty() {
        reasons.push(ConsumedReason::SharedValue);
    }
    if state_change
        && other
            .attr(semconv::STATE_DIFF)
            .map(AnyValue::to_display_string)
            .is_some_and(|diff| failing.words.iter().any(|w| diff.contains(w.as_str())))
    {
        reasons.push(ConsumedReason::StateNamesIt);
    }
    let interesting = reasons.iter().any(|r| r.is_evidence())
        || reasons.contains(&ConsumedReason::Llm)
        || state_change;
    interesting.then_some((reasons, shared))
}

/// An earlier span in the chain with the details its reasons make worth reading.
fn consumed_span(
    trace: &AnalyzedTrace,
    failing: &Span,
    i: usize,
    reasons: Vec<ConsumedReason>,
    shared_values: Vec<String>,
) -> ConsumedSpan {
    let other = trace.span(i);
    let mut details: Vec<Attribute> = Vec::new();
    let mut response = None;
    for reason in &reasons {
        match reason {
            ConsumedReason::Llm => {
                details.extend(llm_details(other));
                response = response_text(other).map(|text| Attribute {
                    key: RESPONSE_DETAIL.to_owned(),
                    value: preview(&text, RESPONSE_PREVIEW_CHARS),
                });
            }
            // The diff says what changed; the full before/after stay on the span.
            ConsumedReason::StateChange => details.extend(attributes(
                &other
                    .attributes
                    .iter()
                    .filter(|kv| {
                        kv.key.starts_with(semconv::STATE_PREFIX)
                            && kv.key != semconv::STATE_BEFORE
                            && kv.key != semconv::STATE_AFTER
                    })
                    .cloned()
                    .collect::<Vec<_>>(),
            )),
            ConsumedReason::Link => {
                for link in failing.links.iter().filter(|l| l.span_id == other.span_id) {
                    details.extend(attributes(&link.attributes));
                }
            }
            ConsumedReason::SameLock
            | ConsumedReason::SharedValue
            | ConsumedReason::StateNamesIt => {}
        }
    }
    details.dedup();
    details.truncate(MAX_DETAILS - usize::from(response.is_some()));
    details.extend(response);
    ConsumedSpan {
        span: chain_span(trace, i),
        used: reasons.iter().any(|r| r.is_evidence()),
        shared_values,
        reasons,
        ended_before_nanos: failing.start_unix_nano.saturating_sub(other.end_unix_nano),
        details,
    }
}

/// An LLM call's short GenAI attributes (not its messages, which can be long).
fn llm_details(span: &Span) -> impl Iterator<Item = Attribute> + '_ {
    let messages = [
        semconv::GEN_AI_INPUT_MESSAGES,
        semconv::GEN_AI_OUTPUT_MESSAGES,
        semconv::GEN_AI_COMPLETION,
    ];
    span.attributes
        .iter()
        .filter(|kv| kv.key.starts_with(semconv::GEN_AI_PREFIX) || kv.key.starts_with("llm."))
        .filter(move |kv| !messages.contains(&kv.key.as_str()))
        .filter(|kv| kv.value.to_display_string().chars().count() <= 200)
        .map(|kv| Attribute {
            key: kv.key.clone(),
            value: kv.value.to_display_string(),
        })
}

/// The failing span's links to spans this trace does not hold.
fn external_links(trace: &AnalyzedTrace, span: &Span) -> Vec<ExternalLink> {
    let in_trace: HashSet<SpanId> = trace.spans.spans.iter().map(|s| s.span_id).collect();
    span.links
        .iter()
        .filter(|l| l.trace_id != trace.trace_id || !in_trace.contains(&l.span_id))
        .map(|l| ExternalLink {
            trace_id: l.trace_id,
            span_id: l.span_id,
            attributes: attributes(&l.attributes),
        })
        .collect()
}

/// The failing span's exceptions, and its other events.
fn exceptions_and_events(span: &Span) -> (Vec<ExceptionInfo>, Vec<EventInfo>) {
    let mut exceptions = Vec::new();
    let mut events = Vec::new();
    for event in &span.events {
        if event.name == semconv::EXCEPTION_EVENT {
            exceptions.push(exception_info(event));
        } else {
            events.push(EventInfo {
                time_unix_nano: event.time_unix_nano,
                name: event.name.clone(),
                attributes: attributes(&event.attributes),
            });
        }
    }
    (exceptions, events)
}

/// The exception as the spans it failed on its way up recorded it, when they captured more
/// than its type: the program's own frame with its locals and state (`error_context` around a
/// library call that raised deep inside, recorded too), nearest first. The failure's origin is
/// where it was raised; what the program had in hand is often only recorded above it.
fn exceptions_on_the_way_up(
    trace: &AnalyzedTrace,
    failing: usize,
    ancestors: &[usize],
) -> Vec<ExceptionInfo> {
    let raised = exception_of(trace.span(failing)).and_then(|(kind, _)| kind);
    let mut found = Vec::new();
    for &ancestor in ancestors {
        let span = trace.span(ancestor);
        if !is_error_span(span) {
            break;
        }
        let own = exception_of(span).and_then(|(kind, _)| kind);
        if own.is_some() && own != raised {
            break; // translated into another exception: a failure of its own from here
        }
        for event in exception_events(span) {
            let mut info = exception_info(event);
            if info.frames.is_empty() && info.state_snapshot.is_none() {
                continue;
            }
            info.recorded_on = Some(span.name.clone());
            found.push(info);
        }
    }
    found
}

fn exception_info(event: &Event) -> ExceptionInfo {
    let text = |key: &str| event_text(Some(event), key);
    let own = [
        semconv::EXCEPTION_TYPE,
        semconv::EXCEPTION_MESSAGE,
        semconv::EXCEPTION_STACKTRACE,
    ];
    ExceptionInfo {
        time_unix_nano: event.time_unix_nano,
        exception_type: text(semconv::EXCEPTION_TYPE),
        message: text(semconv::EXCEPTION_MESSAGE).unwrap_or_default(),
        stacktrace: text(semconv::EXCEPTION_STACKTRACE)
            .map(|s| {
                let mut lines: Vec<String> = s.lines().map(|l| l.trim_end().to_owned()).collect();
                while lines.last().is_some_and(String::is_empty) {
                    lines.pop();
                }
                lines
            })
            .unwrap_or_default(),
        attributes: attributes(
            &event
                .attributes
                .iter()
                .filter(|kv| !own.contains(&kv.key.as_str()))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        frames: exception_frames(&event.attributes),
        state_snapshot: text(semconv::STATE_SNAPSHOT),
        recorded_on: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{Link, Status};

    /// A trace with id `[n; 16]` from hand-built spans.
    pub fn trace(n: u8, mut spans: Vec<Span>) -> AnalyzedTrace {
        for s in &mut spans {
            s.trace_id = TraceId([n; 16]);
        }
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    pub fn fail(mut s: Span, exception_type: &str, message: &str) -> Span {
        s.status = Status {
            code: StatusCode::Error,
            message: message.into(),
        };
        s.events.push(Event {
            time_unix_nano: s.end_unix_nano,
            name: "exception".into(),
            attributes: vec![
                KeyValue::new("exception.type", exception_type),
                KeyValue::new("exception.message", message),
            ],
            dropped_attributes_count: 0,
        });
        s
    }

    pub fn with(mut s: Span, key: &str, value: impl Into<AnyValue>) -> Span {
        s.attributes.push(KeyValue::new(key, value));
        s
    }

    /// A journal run: root → diff.collect (with the diff size) → summary.generate, which fails
    /// with a timeout when `failing`; the root fails with the propagated exception.
    pub fn run(n: u8, start: u64, size: i64, failing: bool) -> AnalyzedTrace {
        let t = |ms: u64| start + ms * 1_000_000;
        let mut root = with(
            span(1, None, "journal.generate", t(0), t(1000)),
            "journal.model",
            "gpt-4o",
        );
        root = with(root, "run.index", i64::from(n));
        let diff = with(
            span(2, Some(1), "diff.collect", t(0), t(50)),
            "diff.size_bytes",
            size,
        );
        let mut summary = span(3, Some(1), "summary.generate", t(100), t(900));
        let message = format!("LLM call timed out after {}s", 30 + u64::from(n) % 7);
        if failing {
            summary = fail(summary, "TimeoutError", &message);
            root = fail(root, "TimeoutError", &message);
        }
        trace(n, vec![root, diff, summary])
    }

    #[test]
    fn grouping_folds_numbers_and_skips_propagations() {
        let traces = vec![
            run(1, 0, 10, true),
            run(2, 5_000_000_000, 10, true),
            trace(
                3,
                vec![fail(
                    span(1, None, "journal.generate", 0, 10),
                    "KeyError",
                    "'summary'",
                )],
            ),
        ];
        assert_ne!(
            error_key(traces[0].span(2)).unwrap().message,
            error_key(traces[1].span(2)).unwrap().message,
            "the raw messages differ in a number"
        );
        let groups = group_errors(&traces);
        assert_eq!(groups.len(), 2, "{groups:#?}");
        let timeout = &groups[0];
        assert_eq!(
            (
                timeout.exception_type.as_deref(),
                timeout.message.as_str(),
                timeout.operation.as_str(),
                timeout.count,
                timeout.traces,
            ),
            (
                Some("TimeoutError"),
                "LLM call timed out after <n>s",
                "summary.generate",
                2,
                2
            )
        );
        assert_eq!(timeout.root_operation, "journal.generate");
        assert_eq!(timeout.first_seen_unix_nano, 100_000_000);
        assert_eq!(timeout.last_seen_unix_nano, 5_100_000_000);
        assert_eq!(timeout.example.trace_id, TraceId([2; 16]));
        assert_eq!(timeout.example_message, "LLM call timed out after 32s");
        assert_eq!(
            timeout.fingerprint,
            fingerprint(&[
                "error",
                "TimeoutError",
                "LLM call timed out after <n>s",
                "summary.generate"
            ])
        );
        assert_eq!(groups[1].operation, "journal.generate");
        assert_eq!(groups[1].message, "?");
    }

    /// An exception event as the native recorder writes a caught one (`handled`) or one that
    /// escaped the call (status error).
    fn recorded_exception(mut s: Span, kind: &str, at: u64, handled: bool) -> Span {
        let mut attributes = vec![KeyValue::new("exception.type", kind)];
        if handled {
            attributes.push(KeyValue::new("devtrace.exception.handled", true));
        } else {
            attributes.push(KeyValue::new("exception.escaped", true));
            s.status = Status {
                code: StatusCode::Error,
                message: kind.into(),
            };
        }
        s.events.push(Event {
            time_unix_nano: at,
            name: "exception".into(),
            attributes,
            dropped_attributes_count: 0,
        });
        s
    }

    /// A program that looks a key up with `in` (the standard library's `__contains__` catches
    /// the `KeyError` of `__getitem__`), then fails parsing: `python app.py` under `--record`.
    fn program_failing_after_a_caught_lookup() -> AnalyzedTrace {
        trace(
            9,
            vec![
                fail(
                    span(1, None, "python app.py", 0, 100),
                    "JSONDecodeError",
                    "Expecting value",
                ),
                recorded_exception(
                    span(2, Some(1), "Mapping.__contains__", 10, 20),
                    "KeyError",
                    18,
                    true,
                ),
                recorded_exception(
                    span(3, Some(2), "_Environ.__getitem__", 11, 17),
                    "KeyError",
                    17,
                    false,
                ),
                fail(
                    span(4, Some(1), "plan.parse", 40, 90),
                    "JSONDecodeError",
                    "Expecting value",
                ),
            ],
        )
    }

    #[test]
    fn an_exception_its_caller_caught_is_not_the_failure() {
        let trace = program_failing_after_a_caught_lookup();
        assert_eq!(
            error_spans(&trace),
            vec![3],
            "the parse failure is the only origin"
        );
        assert_eq!(first_error(&trace), Some(3));
        let groups = group_errors(std::slice::from_ref(&trace));
        assert_eq!(groups.len(), 1, "{groups:#?}");
        assert_eq!(groups[0].operation, "plan.parse");
        let handled = group_handled(std::slice::from_ref(&trace));
        assert_eq!(
            handled.len(),
            1,
            "the lookup's KeyError is a handled exception: {handled:#?}"
        );
        assert_eq!(handled[0].exception_type.as_deref(), Some("KeyError"));
    }

    #[test]
    fn the_chain_carries_the_locals_and_state_recorded_above_the_origin() {
        // plan.parse (error_context: locals and state) → json.loads → raw_decode, which raised.
        let mut parse = fail(
            span(1, None, "plan.parse", 0, 100),
            "JSONDecodeError",
            "Expecting value",
        );
        let event = &mut parse.events[0].attributes;
        event.push(KeyValue::new("exception.frame.0.function", "main"));
        event.push(KeyValue::new("exception.locals.reply", "'[\"steps\", '"));
        event.push(KeyValue::new("devtrace.state.snapshot", "{\"next_id\": 4}"));
        let loads = fail(
            span(2, Some(1), "json.loads", 10, 90),
            "JSONDecodeError",
            "Expecting value",
        );
        let raw = fail(
            span(3, Some(2), "JSONDecoder.raw_decode", 20, 80),
            "JSONDecodeError",
            "Expecting value",
        );
        let trace = trace(13, vec![parse, loads, raw]);
        assert_eq!(first_error(&trace), Some(2), "raised in raw_decode");
        let chain = causal_chain(&trace, 2);
        let above: Vec<_> = chain
            .exceptions
            .iter()
            .filter(|e| e.recorded_on.is_some())
            .collect();
        assert_eq!(
            above.len(),
            1,
            "only plan.parse captured more than the type: {:#?}",
            chain.exceptions
        );
        assert_eq!(above[0].recorded_on.as_deref(), Some("plan.parse"));
        assert_eq!(above[0].frames[0].locals[0].name, "reply");
        assert_eq!(above[0].state_snapshot.as_deref(), Some("{\"next_id\": 4}"));
        // Recorded again, frames and all, by the span it propagated to: shown once.
        let framed = |s: Span| {
            let mut s = fail(s, "TimeoutError", "timed out");
            s.events[0]
                .attributes
                .push(KeyValue::new("exception.locals.prompt_chars", "2400311"));
            s
        };
        let again = super::tests::trace(
            15,
            vec![
                framed(span(1, None, "journal", 0, 100)),
                framed(span(2, Some(1), "summary", 0, 90)),
            ],
        );
        assert_eq!(causal_chain(&again, 1).exceptions.len(), 1);
        // Translated into another exception above: what that span recorded is not this failure's.
        let mut wrapped = fail(span(1, None, "main", 0, 100), "RuntimeError", "plan failed");
        wrapped.events[0]
            .attributes
            .push(KeyValue::new("exception.frame.0.function", "main"));
        let inner = fail(
            span(2, Some(1), "json.loads", 10, 50),
            "JSONDecodeError",
            "Expecting value",
        );
        let translated = super::tests::trace(14, vec![wrapped, inner]);
        assert!(
            causal_chain(&translated, 1)
                .exceptions
                .iter()
                .all(|e| e.recorded_on.is_none())
        );
    }

    #[test]
    fn a_failure_stays_one_when_its_caller_catches_something_else_or_nothing() {
        // The caller caught a ValueError earlier, not this KeyError: still a failure.
        let other = trace(
            10,
            vec![
                recorded_exception(span(1, None, "main", 0, 100), "ValueError", 50, true),
                recorded_exception(span(2, Some(1), "lookup", 10, 20), "KeyError", 20, false),
            ],
        );
        assert_eq!(error_spans(&other), vec![1]);
        // A retry that succeeded: the first attempt's failure is not hidden.
        let retried = trace(
            11,
            vec![
                span(1, None, "fetch", 0, 100),
                fail(
                    span(2, Some(1), "GET /api", 10, 20),
                    "TimeoutError",
                    "timed out",
                ),
                span(3, Some(1), "GET /api", 30, 40),
            ],
        );
        assert_eq!(error_spans(&retried), vec![1]);
        // Caught before the failure ended (an earlier KeyError of the same caller): not this one.
        let earlier = trace(
            12,
            vec![
                recorded_exception(span(1, None, "main", 0, 100), "KeyError", 5, true),
                recorded_exception(span(2, Some(1), "lookup", 10, 20), "KeyError", 20, false),
            ],
        );
        assert_eq!(error_spans(&earlier), vec![1]);
    }

    fn journal_runs(failing: usize, passing: usize, separates: bool) -> Vec<AnalyzedTrace> {
        let mut traces = Vec::new();
        let (mut f, mut p) = (0, 0);
        let mut n: u8 = 0;
        while f < failing || p < passing {
            n += 1;
            let fails = f < failing && (n.is_multiple_of(3) || p >= passing);
            let size = if fails {
                f += 1;
                if separates {
                    520_000 + i64::from(n) * 7_919
                } else {
                    10_000 + i64::from(n) * 1_000
                }
            } else {
                p += 1;
                10_000 + i64::from(n) * 1_000
            };
            traces.push(run(n, u64::from(n) * 10_000_000_000, size, fails));
        }
        traces
    }

    #[test]
    fn correlation_finds_the_attribute_that_separates_failing_runs() {
        let traces = journal_runs(5, 45, true);
        let groups = group_errors(&traces);
        assert_eq!(groups.len(), 1);
        let c = groups[0].correlation.as_ref().expect("a correlation");
        assert_eq!(c.feature, "diff.collect.diff.size_bytes");
        assert_eq!(c.span_name.as_deref(), Some("diff.collect"));
        assert_eq!(c.operator, Operator::Gt);
        assert_eq!(c.threshold, Some(500_000.0));
        assert_eq!(c.condition, "> 500 KB");
        assert_eq!(
            (
                c.failing_with,
                c.failing_total,
                c.passing_with,
                c.passing_total
            ),
            (5, 5, 0, 45)
        );
        assert_eq!(
            c.text,
            "all 5 timeouts of \"summary.generate\" had \"diff.collect.diff.size_bytes\" > 500 KB; 0 of 45 successes did (observed: failing runs ≥ 543.76 KB, passing runs ≤ 60 KB)"
        );
        assert!(groups[0].no_correlation_reason.is_none());
        assert!(c.matches(&AnyValue::Int(600_001)));
        assert!(!c.matches(&AnyValue::Int(499_999)));
    }

    #[test]
    fn what_a_failed_call_returned_is_not_a_cause_and_a_bare_error_status_is_a_propagation() {
        let traces: Vec<AnalyzedTrace> = journal_runs(5, 45, true)
            .into_iter()
            .map(|t| {
                let mut spans = t.spans.spans.clone();
                let failed = spans[2].status.code == StatusCode::Error;
                // The timed-out call returned no tokens; the root only sets an error status.
                spans[2] = with(
                    spans[2].clone(),
                    "gen_ai.usage.output_tokens",
                    if failed { 0i64 } else { 620 },
                );
                spans[0].events.clear();
                spans[0].status.message = "summary generation failed".into();
                trace(t.trace_id.0[0], spans)
            })
            .collect();
        let groups = group_errors(&traces);
        assert_eq!(groups.len(), 1, "{groups:#?}");
        assert_eq!(groups[0].operation, "summary.generate");
        let c = groups[0].correlation.as_ref().unwrap();
        assert_eq!(c.feature, "diff.collect.diff.size_bytes");
        // A root that raises an exception of its own once the call failed translated that
        // failure: one error, named after the call.
        let mut spans = traces[2].spans.spans.clone();
        spans[0] = fail(spans[0].clone(), "RuntimeError", "journal failed");
        assert!(spans[0].events[0].time_unix_nano >= spans[2].end_unix_nano);
        assert_eq!(error_spans(&trace(98, spans.clone())), [2]);
        // One that raised it while the call was still running is an error of its own.
        spans[0].events[0].time_unix_nano = spans[2].start_unix_nano;
        assert_eq!(error_spans(&trace(99, spans)), [0, 2]);
    }

    #[test]
    fn a_failure_translated_by_each_caller_is_one_error() {
        // web: GET /dashboard (server) → GET (client, 500) → orders: GET /orders (server,
        // IndexError); the dashboard raises HTTPError once the call returned its 500.
        let root = fail(
            span(1, None, "GET /dashboard", 0, 40),
            "HTTPError",
            "500 Server Error",
        );
        let mut call = span(2, Some(1), "GET", 5, 35);
        call.kind = devtrace_model::SpanKind::Client;
        call.status.code = StatusCode::Error;
        let server = fail(
            span(3, Some(2), "GET /orders", 8, 30),
            "IndexError",
            "list index out of range",
        );
        let t = trace(7, vec![root.clone(), call.clone(), server.clone()]);
        assert_eq!(error_spans(&t), [2], "the origin only");
        let groups = group_errors(&[t]);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].exception_type.as_deref(), Some("IndexError"));
        // Raised before the call returned: not caused by it.
        let mut early = root;
        early.events[0].time_unix_nano = call.start_unix_nano + 1;
        assert_eq!(error_spans(&trace(8, vec![early, call, server])), [0, 2]);
    }

    #[test]
    fn too_few_runs_means_no_correlation_and_says_why() {
        let traces = journal_runs(2, 3, true);
        let groups = group_errors(&traces);
        assert_eq!(groups.len(), 1);
        assert!(groups[0].correlation.is_none());
        let reason = groups[0].no_correlation_reason.as_deref().unwrap();
        assert!(
            reason.starts_with(
                "too few runs of \"journal.generate\" to correlate (2 failing, 3 passing"
            ),
            "{reason}"
        );
    }

    #[test]
    fn no_correlation_when_the_attribute_does_not_separate() {
        let traces = journal_runs(5, 45, false);
        let groups = group_errors(&traces);
        assert!(
            groups[0].correlation.is_none(),
            "{:?}",
            groups[0].correlation
        );
        assert_eq!(
            groups[0].no_correlation_reason.as_deref(),
            Some(
                "no attribute separates the 5 failing runs of journal.generate from the 45 passing ones"
            )
        );
    }

    #[test]
    fn categorical_values_and_downward_thresholds_are_found() {
        // Failing runs used a different model and a small timeout budget.
        let traces: Vec<AnalyzedTrace> = (1..=12u8)
            .map(|n| {
                let fails = n <= 4;
                let mut root = span(1, None, "job", 0, 100);
                root = with(root, "model", if fails { "tiny" } else { "big" });
                root = with(
                    root,
                    "budget_ms",
                    if fails { 200 + i64::from(n) } else { 5_000 },
                );
                let mut work = span(2, Some(1), "work", 10, 90);
                if fails {
                    work = fail(work, "ValueError", "bad output");
                }
                trace(n, vec![root, work])
            })
            .collect();
        let groups = group_errors(&traces);
        let c = groups[0].correlation.as_ref().unwrap();
        // Both separate perfectly; the one with fewer distinct values wins.
        assert_eq!(
            (c.feature.as_str(), c.condition.as_str()),
            ("job.model", "= \"tiny\"")
        );

        let only_budget: Vec<AnalyzedTrace> = traces
            .iter()
            .map(|t| {
                let mut spans = t.spans.spans.clone();
                spans[0].attributes.retain(|kv| kv.key == "budget_ms");
                trace(t.trace_id.0[0], spans)
            })
            .collect();
        let c = group_errors(&only_budget)[0].correlation.clone().unwrap();
        assert_eq!(
            (c.operator, c.condition.as_str()),
            (Operator::Lt, "< 300 ms")
        );
        assert_eq!(
            c.text,
            "all 4 \"ValueError\" failures of \"work\" had \"job.budget_ms\" < 300 ms; 0 of 8 successes \
             did (observed: failing runs ≤ 204 ms, passing runs ≥ 5 s)"
        );
    }

    #[test]
    fn causal_chain_takes_earlier_llm_calls_and_state_changes_only() {
        let llm = |id, name, start, end| {
            with(
                span(id, Some(1), name, start, end),
                "gen_ai.request.model",
                "gpt-4o",
            )
        };
        let mut failing = span(6, Some(2), "summary.parse", 300, 600);
        failing = fail(
            failing,
            "JSONDecodeError",
            "Expecting value: line 1 column 1",
        );
        failing.events[0].attributes.push(KeyValue::new(
            "exception.stacktrace",
            "Traceback (most recent call last):\n  File \"a.py\", line 3, in parse\nJSONDecodeError: Expecting value\n",
        ));
        failing.events[0]
            .attributes
            .push(KeyValue::new("exception.locals.text", "''"));
        failing.events.insert(
            0,
            Event {
                time_unix_nano: 350,
                name: "retry".into(),
                attributes: vec![KeyValue::new("attempt", 1i64)],
                dropped_attributes_count: 0,
            },
        );
        failing.links.push(Link {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([4; 8]),
            trace_state: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
            flags: 0,
        });
        failing.links.push(Link {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([1; 8]),
            trace_state: String::new(),
            attributes: vec![KeyValue::new("relation", "edit")],
            dropped_attributes_count: 0,
            flags: 0,
        });
        let t = trace(
            9,
            vec![
                span(1, None, "journal.generate", 0, 1000),
                span(2, Some(1), "summary.generate", 280, 700),
                llm(3, "dialogue.generate", 100, 200),
                span(4, Some(1), "git.diff", 20, 60), // linked
                span(5, Some(1), "journal.write", 210, 250),
                failing,
                llm(7, "summary.llm.overlapping", 250, 350),
                llm(8, "late.llm", 700, 800),
                span(10, Some(1), "compute", 150, 160), // earlier, but neither LLM nor state
            ],
        );
        let chain = causal_chain(&t, 5);
        assert_eq!(chain.failing.name, "summary.parse");
        let ancestors: Vec<&str> = chain.ancestors.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(ancestors, ["journal.generate", "summary.generate"]);
        let consumed: Vec<(&str, &[ConsumedReason], u64)> = chain
            .consumed
            .iter()
            .map(|c| {
                (
                    c.span.name.as_str(),
                    c.reasons.as_slice(),
                    c.ended_before_nanos,
                )
            })
            .collect();
        assert_eq!(
            consumed,
            [
                ("journal.write", &[ConsumedReason::StateChange][..], 50),
                ("dialogue.generate", &[ConsumedReason::Llm][..], 100),
                ("git.diff", &[ConsumedReason::Link][..], 240),
            ]
        );
        assert_eq!(chain.consumed[1].details[0].key, "gen_ai.request.model");
        assert_eq!(chain.exceptions.len(), 1);
        let e = &chain.exceptions[0];
        assert_eq!(e.exception_type.as_deref(), Some("JSONDecodeError"));
        assert_eq!(e.stacktrace.len(), 3);
        assert_eq!(e.stacktrace[1], "  File \"a.py\", line 3, in parse");
        assert_eq!(
            e.attributes,
            [Attribute {
                key: "exception.locals.text".into(),
                value: "''".into()
            }]
        );
        assert_eq!(chain.events.len(), 1);
        assert_eq!(chain.events[0].name, "retry");
        assert_eq!(chain.external_links.len(), 1);
        assert_eq!(chain.external_links[0].trace_id, TraceId([7; 16]));
        assert_eq!(first_error(&t), Some(5));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let t = trace(1, vec![]);
        assert_eq!(causal_chain(&t, 3).failing.name, "");
        assert!(group_errors(&[t]).is_empty());
        assert!(group_errors(&[]).is_empty());
        // A span that is its own parent, an exception without a type or a message.
        let mut s = span(1, Some(1), "loop", 5, 1);
        s.status.code = StatusCode::Error;
        s.events.push(Event {
            name: "exception".into(),
            ..Event::default()
        });
        let t = trace(2, vec![s]);
        let groups = group_errors(std::slice::from_ref(&t));
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].exception_type, None);
        let chain = causal_chain(&t, 0);
        assert!(chain.ancestors.is_empty());
    }

    #[test]
    fn numbers_render_with_units_from_the_key() {
        assert_eq!(render_number("diff.size_bytes", 500_000.0), "500 KB");
        assert_eq!(render_number("payload.size", 1_500_000.0), "1.5 MB");
        assert_eq!(render_number("batch.size", 50.0), "50");
        assert_eq!(render_number("timeout_ms", 1_500.0), "1.5 s");
        assert_eq!(render_number("items", 3.0), "3");
        assert_eq!(render_number("ratio", 0.126), "0.13");
        assert_eq!(nice_below(600_000.0, Some(19_000.0)), Some(500_000.0));
        assert_eq!(nice_below(600_000.0, Some(590_000.0)), Some(599_000.0));
        assert_eq!(nice_below(600_000.0, Some(599_999.5)), None);
        assert_eq!(nice_above(204.0, Some(5_000.0)), Some(300.0));
        assert_eq!(nice_below(-5.0, None), Some(-6.0));
        assert_eq!(nice_above(-5.0, Some(0.0)), Some(-4.0));
        assert_eq!(nice_below(0.0, Some(-3.0)), None);
        assert_eq!(nice_above(-0.0, None), None);
        assert_eq!(nice_below(f64::NAN, None), None);
    }

    #[test]
    fn exception_frames_gather_locals_types_and_frame_fields() {
        let attrs = vec![
            KeyValue::new("exception.type", "ValueError"),
            KeyValue::new("exception.frame.0.function", "parse_plan"),
            KeyValue::new("exception.frame.0.file", "taskplan/planner.py"),
            KeyValue::new("exception.frame.0.line", 19i64),
            KeyValue::new("exception.locals.reply", "'[\"steps\", '"),
            KeyValue::new("exception.locals.reply.type", "str"),
            KeyValue::new("exception.locals.type", "'a local named type'"),
            KeyValue::new("exception.frame.1.function", "plan"),
            KeyValue::new("exception.frame.1.locals.task_id", "7"),
            KeyValue::new("exception.frame.1.locals.task_id.type", "int"),
            KeyValue::new("exception.frame.1.omitted_locals", 4i64),
            KeyValue::new("exception.escaped", true),
        ];
        let frames = exception_frames(&attrs);
        assert_eq!(
            frames,
            vec![
                FrameInfo {
                    index: 0,
                    function: Some("parse_plan".into()),
                    file: Some("taskplan/planner.py".into()),
                    line: Some(19),
                    locals: vec![
                        LocalVariable {
                            name: "reply".into(),
                            type_name: Some("str".into()),
                            value: "'[\"steps\", '".into(),
                        },
                        LocalVariable {
                            name: "type".into(),
                            type_name: None,
                            value: "'a local named type'".into(),
                        },
                    ],
                    omitted_locals: 0,
                },
                FrameInfo {
                    index: 1,
                    function: Some("plan".into()),
                    file: None,
                    line: None,
                    locals: vec![LocalVariable {
                        name: "task_id".into(),
                        type_name: Some("int".into()),
                        value: "7".into(),
                    }],
                    omitted_locals: 4,
                },
            ]
        );
        // Other spellings land in frame 0, untyped.
        let legacy = exception_frames(&[
            KeyValue::new("locals.a", "1"),
            KeyValue::new("exception.local.b", "2"),
            KeyValue::new("code.locals.c", "3"),
        ]);
        let names: Vec<&str> = legacy[0].locals.iter().map(|l| l.name.as_str()).collect();
        assert_eq!((legacy.len(), names), (1, vec!["a", "b", "c"]));
        assert!(exception_frames(&[KeyValue::new("exception.frame.x.line", 1i64)]).is_empty());
    }

    #[test]
    fn the_chain_shows_state_diffs_llm_responses_and_the_snapshot() {
        let mut llm = with(
            with(
                span(3, Some(1), "plan.llm", 100, 200),
                "gen_ai.request.model",
                "sim-1",
            ),
            "gen_ai.output.messages",
            format!(
                "[{{\"role\":\"assistant\",\"parts\":[{{\"type\":\"text\",\"content\":\"{}\"}}]}}]",
                "x".repeat(300)
            ),
        );
        llm = with(llm, "gen_ai.input.messages", "[]");
        let mut state = span(2, Some(1), "state.tasks", 20, 30);
        for (key, value) in [
            ("devtrace.state.name", "tasks"),
            ("devtrace.state.before", "{\"n\":1}"),
            ("devtrace.state.after", "{\"n\":2}"),
            ("devtrace.state.diff", "n: 1 → 2"),
        ] {
            state = with(state, key, value);
        }
        state = with(state, "devtrace.state.changes", 1i64);
        let mut failing = fail(
            span(4, Some(1), "plan.parse", 210, 220),
            "ValueError",
            "bad",
        );
        failing.events[0]
            .attributes
            .push(KeyValue::new("devtrace.state.snapshot", "{\"n\":2}"));
        let t = trace(4, vec![span(1, None, "add", 0, 300), state, llm, failing]);
        let chain = causal_chain(&t, 3);
        let [llm_detail, state_detail] = [&chain.consumed[0], &chain.consumed[1]];
        assert_eq!(llm_detail.span.name, "plan.llm");
        let keys: Vec<&str> = llm_detail.details.iter().map(|d| d.key.as_str()).collect();
        assert_eq!(keys, vec!["gen_ai.request.model", "response"]);
        assert_eq!(llm_detail.details[1].value, format!("{}…", "x".repeat(200)));
        assert_eq!(state_detail.reasons, vec![ConsumedReason::StateChange]);
        let keys: Vec<&str> = state_detail
            .details
            .iter()
            .map(|d| d.key.as_str())
            .collect();
        assert_eq!(
            keys,
            vec![
                "devtrace.state.name",
                "devtrace.state.diff",
                "devtrace.state.changes"
            ]
        );
        assert_eq!(
            chain.exceptions[0].state_snapshot.as_deref(),
            Some("{\"n\":2}")
        );
    }

    /// The rules as first written, ancestor by ancestor (quadratic in depth): the oracle the
    /// linear passes are checked against.
    mod by_ancestor {
        use super::super::*;

        // Whether `ancestor`, failing with an exception of its own, raised it once the call that led
        // to the failure at `descendant` had failed and returned: the failure translated, not a new
        // one (a client library's `HTTPError` for a 500 answer, a driver's exception for the
        // database's error). The call is the ancestor's child on the way down to `descendant`; no span
        // from it down to the failure ended `Ok` (the failure got through, recorded or not: Express's
        // layer spans leave their status unset), and the exception is recorded no earlier than the
        // call's end (less the resolution of the spans' clocks, which can stamp whole milliseconds).
        fn raised_after_the_failed_call(
            trace: &AnalyzedTrace,
            parents: &[Option<usize>],
            ancestor: usize,
            descendant: usize,
        ) -> bool {
            let Some(raised) = exception_events(trace.span(ancestor)).next_back() else {
                return false;
            };
            // Up from the failure to the call: no span on the way ended fine (the failure got through).
            let mut call = descendant;
            while parents[call] != Some(ancestor) {
                match parents[call] {
                    Some(parent) if trace.span(parent).status.code != StatusCode::Ok => {
                        call = parent
                    }
                    _ => return false,
                }
            }
            let tolerance = trace.overlap_tolerance(&[ancestor, call]);
            trace.span(call).status.code != StatusCode::Ok
                && raised.time_unix_nano + tolerance >= trace.span(call).end_unix_nano
        }

        // Whether the exception that escaped the failed span at `index` was caught further up: the
        // spans above it fail with the same exception type up to one that did not fail and records that
        // exception as an event of its own at or after the failure (the native recorder's
        // `devtrace.exception.handled`, or a program's `record_exception` in its `except`). The
        // exception was an answer its caller expected (`KeyError` under `Mapping.__contains__`, a
        // `FileNotFoundError` under an import's fallback), not the program's failure: it is reported
        // with the handled exceptions ([`group_handled`]). An ancestor that ends fine without
        // recording it says nothing either way (a retry that succeeded): the failure stays. One that
        // recorded it and let it through to a failure further up (`passed_on`, Express's layers) did
        // not handle it.
        pub fn handled_above_one(
            trace: &AnalyzedTrace,
            parents: &[Option<usize>],
            passed_on: &[bool],
            index: usize,
        ) -> bool {
            let failed = trace.span(index);
            let Some(raised) = exception_of(failed).and_then(|(kind, _)| kind) else {
                return false;
            };
            for ancestor in ancestors(parents, index) {
                let span = trace.span(ancestor);
                if passed_on[ancestor] {
                    continue;
                }
                if is_error_span(span) {
                    match exception_of(span) {
                        Some((Some(kind), _)) if kind == raised => continue,
                        Some(_) => return false,
                        None => continue, // only a status: the same failure on its way up
                    }
                }
                let tolerance = trace.overlap_tolerance(&[ancestor, index]);
                return exception_events(span).any(|event| {
                    event.time_unix_nano + tolerance >= failed.end_unix_nano
                        && event_text(Some(event), semconv::EXCEPTION_TYPE).as_deref()
                            == Some(&raised)
                });
            }
            false
        }

        // Per span of `trace`: it records an exception, its status is unset, and the exception
        // propagated into a failure of an ancestor in the same service (the module's rule).
        pub fn propagated_exceptions(trace: &AnalyzedTrace) -> Vec<bool> {
            let spans = &trace.spans.spans;
            let parents = parent_indices(trace);
            (0..spans.len())
                .map(|index| {
                    let span = &spans[index];
                    if span.status.code != StatusCode::Unset || is_error_span(span) {
                        return false;
                    }
                    let Some(exception) = exception_of(span) else {
                        return false;
                    };
                    for ancestor in ancestors(&parents, index) {
                        let theirs = &spans[ancestor];
                        if theirs.status.code == StatusCode::Ok
                            || trace.service(ancestor) != trace.service(index)
                        {
                            return false;
                        }
                        if !is_error_span(theirs) {
                            continue;
                        }
                        let failed_with = match exception_of(theirs) {
                            Some(own) => own == exception,
                            // Failed with only a status: with what a failed descendant raised.
                            None => trace.descendants(ancestor).iter().any(|&d| {
                                is_error_span(&spans[d])
                                    && exception_of(&spans[d]) == Some(exception.clone())
                            }),
                        };
                        if failed_with {
                            return true;
                        }
                    }
                    false
                })
                .collect()
        }

        pub fn error_spans(trace: &AnalyzedTrace) -> Vec<usize> {
            // The same inputs; what is checked is how they are combined, ancestor by ancestor.
            let (keys, own_exception) = keys_and_own_exceptions(trace);
            let parents = parent_indices(trace);
            let passed_on = propagated_exceptions(trace);
            let mut propagated = vec![false; keys.len()];
            for (index, key) in keys.iter().enumerate() {
                let Some(key) = key else { continue };
                for ancestor in ancestors(&parents, index) {
                    if let Some(theirs) = &keys[ancestor]
                        && (theirs == key
                            || !own_exception[ancestor]
                            || (theirs.0.is_none() && theirs.1.is_empty())
                            || raised_after_the_failed_call(trace, &parents, ancestor, index))
                    {
                        propagated[ancestor] = true;
                    }
                }
            }
            trace
                .tree
                .walk()
                .map(|(i, _)| i)
                .filter(|i| {
                    keys[*i].is_some()
                        && !propagated[*i]
                        && !handled_above_one(trace, &parents, &passed_on, *i)
                })
                .collect()
        }
    }

    /// Random trees of failed, fine and unset spans in two services, recording a few
    /// exceptions (escaped or not) at various times.
    fn random_failures() -> impl proptest::strategy::Strategy<Value = AnalyzedTrace> {
        use proptest::prelude::*;
        let spec = (0usize..100, 0u8..3, 0u8..6, 0u8..3, 0u8..2, 0u64..4);
        proptest::collection::vec(spec, 1..40).prop_map(|specs| {
            let spans: Vec<Span> = specs
                .into_iter()
                .enumerate()
                .map(|(i, (parent, status, exception, escaped, service, at))| {
                    let id = i as u8 + 1;
                    let parent = (i > 0 && parent % 5 != 0).then(|| (parent % i) as u8 + 1);
                    let mut s = span(id, parent, "call", 10 * u64::from(id), 1000 - u64::from(id));
                    s.resource = u32::from(service);
                    s.status.code =
                        [StatusCode::Unset, StatusCode::Ok, StatusCode::Error][usize::from(status)];
                    if exception > 0 {
                        let mut attributes = vec![
                            KeyValue::new(
                                "exception.type",
                                ["KeyError", "ValueError"][usize::from(exception % 2)],
                            ),
                            KeyValue::new(
                                "exception.message",
                                ["", "boom"][usize::from(exception / 2 % 2)],
                            ),
                        ];
                        if escaped > 0 {
                            attributes.push(KeyValue::new("exception.escaped", escaped == 1));
                        }
                        if exception == 5 {
                            attributes.remove(0);
                        }
                        s.events.push(Event {
                            time_unix_nano: s.end_unix_nano - 500 + at * 300,
                            name: "exception".into(),
                            attributes,
                            dropped_attributes_count: 0,
                        });
                    }
                    s
                })
                .collect();
            let service = |name: &str| devtrace_model::Resource {
                attributes: vec![KeyValue::new("service.name", name)],
                ..Default::default()
            };
            let batch = devtrace_model::SpanBatch {
                resources: vec![service("a"), service("b")],
                ..batch(spans)
            };
            AnalyzedTrace::new(TraceId([1; 16]), batch)
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(500))]

        #[test]
        fn the_linear_passes_decide_as_the_ancestor_walks(trace in random_failures()) {
            proptest::prop_assert_eq!(
                propagated_exceptions(&trace),
                by_ancestor::propagated_exceptions(&trace)
            );
            let passed_on = propagated_exceptions(&trace);
            let parents = parent_indices(&trace);
            let handled: Vec<bool> = (0..trace.spans.spans.len())
                .map(|i| by_ancestor::handled_above_one(&trace, &parents, &passed_on, i))
                .collect();
            proptest::prop_assert_eq!(handled_above(&trace, &passed_on), handled);
            proptest::prop_assert_eq!(error_spans(&trace), by_ancestor::error_spans(&trace));
        }
    }

    #[test]
    fn a_100000_deep_chain_of_failures_has_one_origin() {
        let depth = 100_000u64;
        let spans = (1..=depth)
            .map(|k| {
                let parent = (k > 1).then(|| SpanId((k - 1).to_be_bytes()));
                let s = Span::new(
                    TraceId([1; 16]),
                    SpanId(k.to_be_bytes()),
                    parent,
                    "recurse",
                    k,
                    2 * depth + 1 - k,
                );
                // Every frame records the exception; every other frame leaves its status unset.
                let s = fail(s, "RecursionError", "maximum recursion depth exceeded");
                Span {
                    status: if k % 2 == 0 {
                        Status::default()
                    } else {
                        s.status.clone()
                    },
                    ..s
                }
            })
            .collect();
        let trace = trace(1, spans);
        let origins = error_spans(&trace);
        // The innermost frame's status is unset: the origin is the innermost failed one.
        assert_eq!(origins.len(), 1, "one failure");
        assert_eq!(
            trace.span(origins[0]).span_id,
            SpanId((depth - 1).to_be_bytes())
        );
        let passed_on = propagated_exceptions(&trace);
        assert_eq!(passed_on.iter().filter(|p| **p).count(), depth as usize / 2);
    }
}
