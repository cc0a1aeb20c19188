//! Dominant cost: where an operation's time goes, when one thing holds most of it.
//!
//! **Rule.** For each root operation (the name of a root span of the tree; each root span is
//! one run), across all its runs:
//! - *by kind of work*: the run's wall-clock time is split by kind of work
//!   ([`crate::kinds::time_by_kind`]: each span's own time is its kind's, waits inside spans
//!   are waiting, and concurrent work shares each instant), so the kinds sum to the run's
//!   duration and no share exceeds 100 %; a kind holding at least
//!   [`Thresholds::min_kind_share`] of the operation's time is dominant.
//!   [`WorkKind::Other`] (the code's own time, unclassified) is not reported as a kind: it
//!   names nothing to look at; the child rule covers it.
//! - *by direct child*: the time covered by the root's direct children of one name (the union
//!   of their intervals, clipped to the root) holding at least
//!   [`Thresholds::min_child_share`] of the operation's duration is dominant. A child that is
//!   a process's life ([`crate::processes`]) counts as its top-level work, not as itself.
//!
//! At most one finding per operation: the larger of the two shares (the kind on a tie).
//!
//! When at least half of that time is waiting for one call on another thread (causal links,
//! [`crate::causality`]: a queue get fed by a put, a join ended by the thread's end), the
//! finding names that call and says to start there: the wait only shortens when it does.
//!
//! **Saving model.** None: `saving_nanos` is 0. The finding is informational; it says where to
//! look, not what a change would save (other detectors estimate savings for specific changes).
//! It therefore ranks after every finding with a saving.
//!
//! **Does not fire on** operations whose time is spread out (no kind and no child reaches its
//! threshold), on zero-length runs, or on non-root spans (their parents' findings cover them).

use crate::causality::{WaitedFor, add_waited_for, hand_over, sort_waited_for, waited_for};
use crate::classify::{WorkKind, classify};
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::recorded::name as q;
use devtrace_model::{SpanId, semconv};
use std::collections::BTreeMap;

/// Most span ids listed per evidence item besides the root (the longest ones).
const MAX_SPANS_PER_EVIDENCE: usize = 10;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest share of an operation's time one kind of work (LLM, database, HTTP, file I/O,
    /// lock wait) must hold to be reported. Default 0.6 (60 %): with most of the time in one
    /// kind, that is where optimisation pays, whatever else the code does.
    pub min_kind_share: f64,
    /// Smallest share of an operation's duration one direct child operation must hold to be
    /// reported. Default 0.5 (50 %): a child taking more than half of its parent is the place
    /// to start reading.
    pub min_child_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_kind_share: 0.6,
            min_child_share: 0.5,
        }
    }
}

/// One run of a root operation, with what its time went to.
struct Run {
    trace: usize,
    root: usize,
    duration: u64,
    by_kind: BTreeMap<WorkKind, Tally>,
    by_child: BTreeMap<String, Tally>,
}

/// Time and calls of one kind or child in one run, with the spans involved.
#[derive(Default)]
struct Tally {
    nanos: u64,
    calls: u64,
    spans: Vec<usize>,
}

enum Subject {
    Kind(WorkKind),
    Child(String),
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_operation: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        // A run is a real root: a span without a parent. Spans whose parent never arrived
        // (dropped by an exporter's full queue) are fragments, not runs of an operation.
        let real: Vec<usize> = trace
            .tree
            .roots
            .iter()
            .copied()
            .filter(|r| trace.span(*r).parent_span_id.is_none())
            .collect();
        let roots = if real.is_empty() {
            trace.root().into_iter().collect()
        } else {
            real
        };
        for root in roots {
            by_operation
                .entry(trace.span(root).name.as_str())
                .or_default()
                .push(run(trace, t, root));
        }
    }
    by_operation
        .into_iter()
        .filter_map(|(operation, runs)| finding(traces, operation, &runs, thresholds))
        .collect()
}

fn run(trace: &AnalyzedTrace, trace_index: usize, root: usize) -> Run {
    let span = trace.span(root);
    let (start, end) = (span.start_unix_nano, span.end_unix_nano);
    let mut by_kind: BTreeMap<WorkKind, Tally> = BTreeMap::new();
    for (kind, nanos) in crate::kinds::time_by_kind(trace, root) {
        by_kind.entry(kind).or_default().nanos = nanos;
    }
    // Depth-first with the kind of the nearest enclosing span, so that a call is counted once
    // even when it nests spans of its own kind (an LLM call wrapping an LLM client span).
    let mut stack: Vec<(usize, Option<WorkKind>)> = vec![(root, None)];
    while let Some((node, enclosing)) = stack.pop() {
        let kind = classify(trace, node);
        let tally = by_kind.entry(kind).or_default();
        if enclosing != Some(kind) {
            tally.calls += 1;
            tally.spans.push(node);
        }
        stack.extend(trace.tree.children[node].iter().map(|c| (*c, Some(kind))));
    }
    let mut intervals: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut by_child: BTreeMap<String, Tally> = BTreeMap::new();
    for child in direct_work(trace, root) {
        let c = trace.span(child);
        // A child is named by its call when the span name is generic ("POST" to two services
        // is two children), quoted as recorded text.
        let label = crate::call::call_template(trace, child).display(&c.name);
        intervals
            .entry(label.clone())
            .or_default()
            .push((c.start_unix_nano.max(start), c.end_unix_nano.min(end)));
        let tally = by_child.entry(label).or_default();
        tally.calls += 1;
        tally.spans.push(child);
    }
    for (name, list) in intervals {
        if let Some(tally) = by_child.get_mut(&name) {
            tally.nanos = covered_nanos(list);
        }
    }
    Run {
        trace: trace_index,
        root,
        duration: span.duration_nanos(),
        by_kind,
        by_child,
    }
}

/// The root's direct children, a process's life seen through: its top-level work (a BEAM
/// process's life spans its whole run, so "most of the time is in process <0.98.0>" would
/// name nothing to look at); a flight recorder's window likewise, through to what it holds.
fn direct_work(trace: &AnalyzedTrace, root: usize) -> Vec<usize> {
    let mut work = Vec::new();
    // Children in order, windows opened in place (a stack, not recursion: spans named like a
    // window can nest as deep as a sender likes).
    let mut pending: Vec<usize> = trace.tree.children[root].iter().rev().copied().collect();
    while let Some(child) = pending.pop() {
        if trace.span(child).name == semconv::FLIGHT_WINDOW_SPAN {
            pending.extend(trace.tree.children[child].iter().rev());
        } else if crate::processes::is_life(trace, child) {
            work.extend(crate::processes::top_level_work(trace, child));
        } else {
            work.push(child);
        }
    }
    work
}

fn finding(
    traces: &[AnalyzedTrace],
    operation: &str,
    runs: &[Run],
    thresholds: &Thresholds,
) -> Option<Finding> {
    let duration: f64 = runs.iter().map(|r| r.duration as f64).sum();
    let time = duration;
    if duration <= 0.0 || time <= 0.0 {
        return None;
    }
    let total = |tallies: &dyn Fn(&Run) -> Option<&Tally>| -> (f64, u64) {
        runs.iter()
            .filter_map(tallies)
            .fold((0.0, 0), |(n, c), t| (n + t.nanos as f64, c + t.calls))
    };
    let mut best: Option<(f64, Subject, f64, u64)> = None; // share, subject, nanos, calls
    for kind in WorkKind::ALL {
        if kind == WorkKind::Other {
            continue;
        }
        let (nanos, calls) = total(&|r: &Run| r.by_kind.get(&kind));
        let share = nanos / time;
        if share >= thresholds.min_kind_share && best.as_ref().is_none_or(|b| share > b.0) {
            best = Some((share, Subject::Kind(kind), nanos, calls));
        }
    }
    let mut names: Vec<&String> = runs.iter().flat_map(|r| r.by_child.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (nanos, calls) = total(&|r: &Run| r.by_child.get(name));
        let share = nanos / duration;
        if share >= thresholds.min_child_share && best.as_ref().is_none_or(|b| share > b.0) {
            best = Some((share, Subject::Child(name.clone()), nanos, calls));
        }
    }
    let (share, subject, nanos, calls) = best?;
    let n = runs.len() as f64;
    let calls_per_run = calls as f64 / n;
    let percent = format!("{:.1} %", share * 100.0);
    let (title, recommendation, subject_key) = match &subject {
        Subject::Kind(kind) => {
            let (what, unit, advice) = describe(*kind);
            (
                format!(
                    "{percent} of the time of {} is {what} ({} {} per run)",
                    q(operation),
                    format_count(calls_per_run),
                    plural(unit, calls_per_run)
                ),
                format!("{advice} (this says where to look; it estimates no saving)"),
                format!("work:{}", kind.as_str()),
            )
        }
        Subject::Child(name) => (
            format!(
                "{percent} of the time of {} is in {} ({} {} per run, {})",
                q(operation),
                name,
                format_count(calls_per_run),
                plural("call", calls_per_run),
                each_call(traces, runs, name),
            ),
            format!(
                "start with {}: it is where the time of {} goes (this says where to look; it \
                 estimates no saving)",
                name,
                q(operation)
            ),
            format!("child:{name}"),
        ),
    };
    let subject_spans = |r: &Run| -> Vec<usize> {
        match &subject {
            Subject::Kind(kind) => r.by_kind.get(kind).map(|t| t.spans.clone()),
            Subject::Child(name) => r.by_child.get(name).map(|t| t.spans.clone()),
        }
        .unwrap_or_default()
    };
    let (title, recommendation) = match main_cause(traces, runs, &subject_spans, nanos) {
        Some(cause) => (
            format!("{title}, waiting for {}", cause_phrase(&cause)),
            format!(
                "start with {}: the time is waiting for it ({}), so making it faster or handing \
                 over sooner is what shortens the wait (this says where to look; it estimates \
                 no saving)",
                q(&cause.function),
                hand_over(&cause.kind)
            ),
        ),
        None => (title, recommendation),
    };
    let numbers = BTreeMap::from([
        ("share".to_owned(), share),
        ("runs".to_owned(), n),
        ("mean_duration_nanos".to_owned(), (duration / n).round()),
        ("mean_nanos".to_owned(), (nanos / n).round()),
        ("calls_per_run".to_owned(), calls_per_run),
    ]);
    let evidence = runs
        .iter()
        .take(MAX_EVIDENCE)
        .map(|r| {
            let trace = &traces[r.trace];
            let spans = match &subject {
                Subject::Kind(kind) => r.by_kind.get(kind).map(|t| t.spans.as_slice()),
                Subject::Child(name) => r.by_child.get(name).map(|t| t.spans.as_slice()),
            };
            evidence_of(trace, r.root, spans.unwrap_or_default())
        })
        .collect();
    Some(Finding {
        kind: FindingKind::DominantCost,
        operation: Some(operation.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::DominantCost.as_str(), operation, &subject_key]),
        saving_nanos: 0,
        occurrences: runs.len() as u64,
        numbers,
        evidence,
        impact: Impact::of(ImpactBasis::Observation),
    })
}

/// The call most of the subject's time waited for (across the runs, through causal links),
/// when those waits are at least half of that time: the place to start, rather than the wait.
fn main_cause(
    traces: &[AnalyzedTrace],
    runs: &[Run],
    spans_of: &dyn Fn(&Run) -> Vec<usize>,
    subject_nanos: f64,
) -> Option<WaitedFor> {
    let mut causes: Vec<WaitedFor> = Vec::new();
    for run in runs {
        for found in waited_for(&traces[run.trace], &spans_of(run)) {
            add_waited_for(&mut causes, found);
        }
    }
    sort_waited_for(&mut causes);
    causes
        .into_iter()
        .next()
        .filter(|c| c.nanos as f64 * 2.0 >= subject_nanos)
}

/// "`app.produce` (queue put, thread worker-1)".
fn cause_phrase(cause: &WaitedFor) -> String {
    match &cause.thread {
        Some(thread) => format!(
            "{} ({}, thread {})",
            q(&cause.function),
            hand_over(&cause.kind),
            q(thread)
        ),
        None => format!("{} ({})", q(&cause.function), hand_over(&cause.kind)),
    }
}

/// The root, then the longest of `spans` (at most [`MAX_SPANS_PER_EVIDENCE`]) in start order.
/// How long one call of child `name` takes, its own span's duration, with successes and
/// failures apart ([`crate::outcome::typical`]).
fn each_call(traces: &[AnalyzedTrace], runs: &[Run], name: &str) -> String {
    let calls: Vec<crate::outcome::Call> = runs
        .iter()
        .filter_map(|r| Some((&traces[r.trace], r.by_child.get(name)?)))
        .flat_map(|(trace, tally)| {
            crate::outcome::calls_of(tally.spans.iter().map(|&s| trace.span(s)))
        })
        .collect();
    crate::outcome::typical(&calls).unwrap_or_default()
}

fn evidence_of(trace: &AnalyzedTrace, root: usize, spans: &[usize]) -> Evidence {
    let mut longest: Vec<usize> = spans.iter().copied().filter(|s| *s != root).collect();
    longest.sort_by_key(|s| (std::cmp::Reverse(trace.span(*s).duration_nanos()), *s));
    longest.truncate(MAX_SPANS_PER_EVIDENCE);
    longest.sort_by_key(|s| (trace.span(*s).start_unix_nano, *s));
    let ids: Vec<SpanId> = std::iter::once(root)
        .chain(longest)
        .map(|s| trace.span(s).span_id)
        .collect();
    Evidence {
        trace_id: trace.trace_id,
        span_ids: ids,
    }
}

/// How a kind of work reads in a title, what one unit of it is called, and where to start.
fn describe(kind: WorkKind) -> (&'static str, &'static str, &'static str) {
    match kind {
        WorkKind::Llm => (
            "LLM calls",
            "call",
            "start with the LLM calls: fewer or smaller prompts, a faster model, caching, or \
             running independent calls concurrently",
        ),
        WorkKind::Database => (
            "database queries",
            "query",
            "start with the database queries: fewer round trips, batching, indexes",
        ),
        WorkKind::Http => (
            "HTTP calls",
            "call",
            "start with the outgoing HTTP calls: fewer round trips, caching, concurrency",
        ),
        WorkKind::Rpc => (
            "RPC calls",
            "call",
            "start with the RPC calls: fewer round trips, batching, concurrency",
        ),
        WorkKind::Messaging => (
            "messaging",
            "operation",
            "start with the messaging calls: batching sends, fewer round trips",
        ),
        WorkKind::FileIo => (
            "file I/O",
            "operation",
            "start with the file I/O: fewer reads and writes, buffering, caching",
        ),
        WorkKind::LockWait => (
            "waiting (on locks, pools, queues or back-off)",
            "wait",
            "start with what it waits for: shorter critical sections, finer-grained locks, \
             a larger pool",
        ),
        WorkKind::Other => ("its own code", "span", "profile the code itself"),
    }
}

fn plural(unit: &str, count: f64) -> String {
    if (count - 1.0).abs() < 0.05 {
        unit.to_owned()
    } else if unit == "query" {
        "queries".to_owned()
    } else {
        format!("{unit}s")
    }
}

/// "3", or "2.5" when the mean is not whole.
fn format_count(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 {
        format!("{}", value.round() as u64)
    } else {
        format!("{value:.1}")
    }
}

/// Length of the union of the intervals (ends before starts count as empty).
fn covered_nanos(mut intervals: Vec<(u64, u64)>) -> u64 {
    intervals.retain(|(s, e)| s < e);
    intervals.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in intervals {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total = total.saturating_add(ce - cs);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total.saturating_add(current.map_or(0, |(s, e)| e - s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::human_duration;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, TraceId};

    const MS: u64 = 1_000_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    fn llm(mut s: Span) -> Span {
        s.attributes
            .push(KeyValue::new("gen_ai.request.model", "gpt-4o"));
        s
    }

    fn db(mut s: Span) -> Span {
        s.attributes.push(KeyValue::new("db.system.name", "sqlite"));
        s
    }

    /// journal.generate (15.95 s): context.gather (0.3 s), then three LLM calls (15.6 s).
    fn journal(n: u8) -> AnalyzedTrace {
        trace(
            n,
            vec![
                span(1, None, "journal.generate", 0, 15_950 * MS),
                span(2, Some(1), "context.gather", 0, 300 * MS),
                llm(span(3, Some(1), "summary.generate", 300 * MS, 9_340 * MS)),
                llm(span(
                    4,
                    Some(1),
                    "dialogue.generate",
                    9_340 * MS,
                    14_230 * MS,
                )),
                llm(span(
                    5,
                    Some(1),
                    "technical_decisions.generate",
                    14_230 * MS,
                    15_900 * MS,
                )),
            ],
        )
    }

    #[test]
    fn a_dominant_kind_of_work_is_reported_once() {
        let findings = detect(&[journal(1), journal(2)], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::DominantCost);
        assert_eq!(f.operation.as_deref(), Some("journal.generate"));
        assert_eq!(
            f.title,
            "97.8 % of the time of \"journal.generate\" is LLM calls (3 calls per run)"
        );
        assert_eq!(f.saving_nanos, 0);
        assert_eq!(f.occurrences, 2);
        assert!((f.numbers["share"] - 15_600.0 / 15_950.0).abs() < 1e-12);
        assert_eq!(f.numbers["calls_per_run"], 3.0);
        assert_eq!(f.numbers["mean_nanos"], (15_600 * MS) as f64);
        let ids: Vec<SpanId> = [1, 3, 4, 5].map(|n| SpanId([n; 8])).to_vec();
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(f.evidence[1].trace_id, TraceId([2; 16]));
        assert_eq!(f.evidence[1].span_ids, ids);
        assert_eq!(
            f.fingerprint,
            detect(&[journal(3)], &Thresholds::default())[0].fingerprint
        );
    }

    #[test]
    fn a_dominant_child_is_reported_when_no_kind_dominates() {
        let t = trace(
            1,
            vec![
                span(1, None, "checkout", 0, 1_000 * MS),
                span(2, Some(1), "payment.authorize", 100 * MS, 700 * MS),
                db(span(3, Some(1), "db.query", 700 * MS, 900 * MS)),
            ],
        );
        let findings = detect(&[t], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(
            f.title,
            format!(
                "60.0 % of the time of \"checkout\" is in \"payment.authorize\" (1 call per run, {} each)",
                human_duration(600 * MS)
            )
        );
        assert_eq!(f.evidence[0].span_ids, [SpanId([1; 8]), SpanId([2; 8])]);
    }

    #[test]
    fn a_flight_recorders_window_is_seen_through_to_the_work_it_holds() {
        let t = trace(
            1,
            vec![
                span(1, None, "checkout", 0, 1_000 * MS),
                span(2, Some(1), semconv::FLIGHT_WINDOW_SPAN, 50 * MS, 1_000 * MS),
                span(3, Some(2), "payment.authorize", 100 * MS, 700 * MS),
                db(span(4, Some(2), "db.query", 700 * MS, 900 * MS)),
            ],
        );
        let findings = detect(&[t], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0].title.contains("is in \"payment.authorize\""),
            "{}",
            findings[0].title
        );
    }

    #[test]
    fn a_dominant_wait_names_the_call_on_another_thread_that_ended_it() {
        use crate::causality::tests::{linked, on_thread};
        // consume spends 600 ms in queue.get, 500 of them waiting for worker-1's produce.
        let t = trace(
            1,
            vec![
                on_thread(span(1, None, "consume", 0, 1_000 * MS), "MainThread"),
                linked(
                    span(2, Some(1), "queue.get", 100 * MS, 700 * MS),
                    4,
                    "queue",
                    600 * MS,
                    500 * MS,
                ),
                on_thread(span(3, None, "worker", 0, 900 * MS), "worker-1"),
                span(4, Some(3), "app.produce", 50 * MS, 650 * MS),
            ],
        );
        let findings = detect(&[t], &Thresholds::default());
        let f = findings
            .iter()
            .find(|f| f.operation.as_deref() == Some("consume"))
            .expect("consume's finding");
        assert!(
            f.title
                .ends_with("waiting for \"app.produce\" (queue put, thread \"worker-1\")"),
            "{}",
            f.title
        );
        assert!(
            f.recommendation
                .starts_with("start with \"app.produce\": the time is waiting for it (queue put)"),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn a_child_that_sometimes_times_out_is_timed_by_outcome() {
        // payment.authorize takes 124 ms twice and times out at 503 ms once: never
        // "250.3 ms each".
        let run = |n: u8, call: u64, failed: bool| {
            let mut authorize = span(2, Some(1), "payment.authorize", 10 * MS, (10 + call) * MS);
            if failed {
                authorize.status.code = devtrace_model::StatusCode::Error;
            }
            trace(
                n,
                vec![span(1, None, "checkout", 0, (20 + call) * MS), authorize],
            )
        };
        let traces = [run(1, 124, false), run(2, 503, true), run(3, 124, false)];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0].title.ends_with(
                "is in \"payment.authorize\" (1 call per run, 124.0 ms when it succeeds, \
                 503.0 ms when it fails (1 of 3))"
            ),
            "{}",
            findings[0].title
        );
    }

    #[test]
    fn spread_out_time_does_not_fire() {
        // 40 % database, 30 % HTTP, 30 % own time; no child above 40 %.
        let mut http = span(3, Some(1), "fetch", 400 * MS, 700 * MS);
        http.attributes
            .push(KeyValue::new("url.full", "https://x.com/a"));
        let t = trace(
            1,
            vec![
                span(1, None, "sync", 0, 1_000 * MS),
                db(span(2, Some(1), "db.query", 0, 400 * MS)),
                http,
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
    }

    #[test]
    fn concurrent_work_never_exceeds_the_whole() {
        // Three concurrent 9 s LLM calls in a 10 s run: 9 s of the run's 10 s are LLM time
        // (each instant counts once, however many calls run in it).
        let t = trace(
            1,
            vec![
                span(1, None, "fan_out", 0, 10_000 * MS),
                llm(span(2, Some(1), "a", 0, 9_000 * MS)),
                llm(span(3, Some(1), "b", 0, 9_000 * MS)),
                llm(span(4, Some(1), "c", 0, 9_000 * MS)),
            ],
        );
        let f = &detect(&[t], &Thresholds::default())[0];
        assert!((f.numbers["share"] - 0.9).abs() < 1e-12);
        assert!(
            f.title
                .starts_with("90.0 % of the time of \"fan_out\" is LLM calls (3 calls"),
            "{}",
            f.title
        );
    }

    #[test]
    fn nested_spans_of_one_kind_count_as_one_call() {
        let t = trace(
            1,
            vec![
                span(1, None, "ask", 0, 100 * MS),
                llm(span(2, Some(1), "llm.chat", 0, 100 * MS)),
                llm(span(3, Some(2), "openai.chat", 10 * MS, 90 * MS)),
            ],
        );
        let f = &detect(&[t], &Thresholds::default())[0];
        assert_eq!(
            f.title,
            "100.0 % of the time of \"ask\" is LLM calls (1 call per run)"
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        let t = trace(
            1,
            vec![
                span(1, None, "p", 100, 0),
                span(2, Some(1), "a", 50, 10),
                span(3, Some(42), "orphan", 0, 0),
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        assert!(detect(&[], &Thresholds::default()).is_empty());
    }
}
