//! Blind spots: operations whose own time — time in no child span — is a large part of their
//! duration across runs. devtrace knows *that* the time went somewhere in the code, not *where*; the
//! answer is to record the functions the operation calls (`devtrace plan`, MCP
//! `plan_instrumentation`).
//!
//! **Rule.** For each span name (operation) that has child spans or names its function
//! (`code.function.name`), over all its spans in the analysed traces: the
//! own time of a span is its self time (its duration less the time covered by its children)
//! less the time its recorded short calls account for (`devtrace.calls.accounted_ns`, set by
//! the native recorder: those calls are known, just not spans). The operation is a blind spot
//! when it ran at least [`Thresholds::min_runs`] times, its own time is at least
//! [`Thresholds::min_share`] of its total duration (a quarter), and at least
//! [`Thresholds::min_own_nanos`] per run on average (5 ms).
//!
//! **No cliff.** The share does not change when a machine is faster or slower: scaling every
//! duration of a trace scales the own time and the duration alike. What does change is the
//! share of CPU work against waits (the own time is usually the program's code, the children
//! its I/O), so the share threshold sits well below "most of the time": an operation with
//! half its time unexplained on one machine still has over a quarter on one twice as fast.
//! The size floor (5 ms a run) only keeps out what is not worth a planned run: it is far
//! below any blind spot worth finding, so halving the speed of a found one keeps it found.
//!
//! **Ranking.** A blind spot estimates no saving; among observations it ranks by what a plan
//! could explain: its own time over all its runs (`numbers.explainable_ms`, read by
//! [`crate::finding::rank`]).
//!
//! **Does not fire on** leaf spans that name no function (nothing says what code they cover),
//! spans whose kind of work explains their time (LLM, database, HTTP,
//! file I/O, lock waits: [`classify`]; client spans waiting on another service), spans the
//! native recorder made (`devtrace.recorder`: already a function, its own time is its own code
//! or C calls), `devtrace run` spans (a command's wall time: the program's own spans are what
//! a plan can fill), operations whose time is covered by children or recorded calls, or rare and
//! short ones.
//!
//! **Saving model.** None (`saving_nanos` 0): the finding says where devtrace cannot see, not
//! what a change would save. `numbers` hold the share and the milliseconds so the planned
//! run's result can be compared with it.

use crate::classify::{WorkKind, classify};
use crate::finding::{Impact, ImpactBasis};
use crate::finding::{MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::{AnyValue, SpanKind};
use std::collections::BTreeMap;

/// The attribute the native recorder sets on a span: the self time of the short calls it
/// counted there (docs/conventions.md).
pub const ACCOUNTED_NS: &str = "devtrace.calls.accounted_ns";
/// Set on spans the native recorder made.
pub const RECORDER: &str = "devtrace.recorder";

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest share of the operation's duration that is its own time. Default 0.25: a
    /// quarter of the time unexplained is worth a look, and an operation found at half on one
    /// machine stays found on one twice as fast (see the module doc).
    pub min_share: f64,
    /// Smallest own time per run on average. Default 5 ms: below that, recording it is not
    /// worth a run.
    pub min_own_nanos: u64,
    /// Runs needed (spans of the operation). Default 2: measured across runs, not once.
    pub min_runs: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_share: 0.25,
            min_own_nanos: 5_000_000,
            min_runs: 2,
        }
    }
}

/// One operation's own time across runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OwnTime {
    pub runs: usize,
    pub duration_nanos: u64,
    pub own_nanos: u64,
    pub accounted_nanos: u64,
    /// (trace index, span index, own nanos) of each run.
    pub spans: Vec<(usize, usize, u64)>,
}

impl OwnTime {
    pub fn share(&self) -> f64 {
        if self.duration_nanos == 0 {
            0.0
        } else {
            self.own_nanos as f64 / self.duration_nanos as f64
        }
    }
}

/// The own time of every eligible operation (see the module doc), by name.
pub fn own_times(traces: &[AnalyzedTrace]) -> BTreeMap<String, OwnTime> {
    let mut out: BTreeMap<String, OwnTime> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for i in 0..trace.spans.spans.len() {
            let span = trace.span(i);
            // A leaf span tells nothing about code unless it names its function: the blind
            // spots worth planning for are gaps between instrumented children, or functions.
            let names_code =
                span.attr("code.function.name").is_some() || span.attr("code.function").is_some();
            if (trace.tree.children[i].is_empty() && !names_code)
                || span.kind == SpanKind::Client
                || classify(trace, i) != WorkKind::Other
                || matches!(span.attr(RECORDER), Some(AnyValue::Bool(true)))
                || span.attr(devtrace_model::semconv::RUN_ID).is_some()
            {
                continue;
            }
            let duration = span.duration_nanos();
            let accounted = match span.attr(ACCOUNTED_NS) {
                Some(AnyValue::Int(n)) => (*n).max(0) as u64,
                _ => 0,
            };
            let own = trace.tree.self_time[i].saturating_sub(accounted);
            let entry = out.entry(span.name.clone()).or_default();
            entry.runs += 1;
            entry.duration_nanos += duration;
            entry.own_nanos += own;
            entry.accounted_nanos += accounted.min(trace.tree.self_time[i]);
            entry.spans.push((t, i, own));
        }
    }
    out
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    own_times(traces)
        .into_iter()
        .filter_map(|(operation, own)| finding(traces, &operation, own, thresholds))
        .collect()
}

fn finding(
    traces: &[AnalyzedTrace],
    operation: &str,
    mut own: OwnTime,
    thresholds: &Thresholds,
) -> Option<Finding> {
    let runs = own.runs as u64;
    if own.runs < thresholds.min_runs
        || own.share() < thresholds.min_share
        || own.own_nanos / runs < thresholds.min_own_nanos
    {
        return None;
    }
    let per_run = own.own_nanos / runs;
    let share = own.share();
    own.spans.sort_by_key(|s| std::cmp::Reverse(s.2));
    let evidence = own
        .spans
        .iter()
        .take(MAX_EVIDENCE)
        .map(|&(t, i, _)| Evidence {
            trace_id: traces[t].trace_id,
            span_ids: vec![traces[t].span(i).span_id],
        })
        .collect();
    let quoted = devtrace_model::recorded::name(operation);
    let mut numbers = BTreeMap::new();
    numbers.insert("own_share".to_owned(), share);
    numbers.insert("own_ms_per_run".to_owned(), per_run as f64 / 1e6);
    numbers.insert(
        "duration_ms_per_run".to_owned(),
        own.duration_nanos as f64 / runs as f64 / 1e6,
    );
    numbers.insert(
        "accounted_ms_per_run".to_owned(),
        own.accounted_nanos as f64 / runs as f64 / 1e6,
    );
    numbers.insert("runs".to_owned(), runs as f64);
    numbers.insert(
        crate::finding::EXPLAINABLE_MS.to_owned(),
        own.own_nanos as f64 / 1e6,
    );
    Some(Finding {
        kind: FindingKind::BlindSpot,
        operation: Some(operation.to_owned()),
        title: format!(
            "{quoted}: {:.0} % of its time ({} a run, over {runs} runs) is its own, in no child span: a blind spot",
            share * 100.0,
            human_duration(per_run)
        ),
        recommendation: format!(
            "Record the functions it calls: run devtrace plan {quoted} (MCP plan_instrumentation), then devtrace run --plan ID -- …, and look at the new trace"
        ),
        fingerprint: fingerprint(&["blind_spot", operation]),
        saving_nanos: 0,
        occurrences: runs,
        numbers,
        evidence,
        impact: Impact::of(ImpactBasis::Observation),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, TraceId};

    const MS: u64 = 1_000_000;

    fn trace(spans: Vec<devtrace_model::Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    fn with(mut s: devtrace_model::Span, key: &str, value: AnyValue) -> devtrace_model::Span {
        s.attributes.push(KeyValue {
            key: key.into(),
            value,
        });
        s
    }

    /// A run of "handle": 100 ms, of which a child "db" covers `child_ms`.
    fn run(child_ms: u64) -> AnalyzedTrace {
        trace(vec![
            span(1, None, "handle", 0, 100 * MS),
            with(
                span(2, Some(1), "db", 10 * MS, (10 + child_ms) * MS),
                "db.system",
                AnyValue::String("sqlite".into()),
            ),
        ])
    }

    #[test]
    fn fires_with_the_share_and_the_milliseconds_across_runs() {
        let findings = detect(&[run(20), run(30)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::BlindSpot);
        assert_eq!(f.operation.as_deref(), Some("handle"));
        assert_eq!(
            f.title,
            "\"handle\": 75 % of its time (75.0 ms a run, over 2 runs) is its own, in no child span: a blind spot"
        );
        assert_eq!(f.numbers["own_share"], 0.75);
        assert_eq!(f.numbers["own_ms_per_run"], 75.0);
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(f.occurrences, 2);
    }

    #[test]
    fn near_misses_stay_silent() {
        let t = Thresholds::default();
        // Covered by children: 80 % in the child, 20 % own.
        assert!(detect(&[run(80), run(80)], &t).is_empty());
        // One run only.
        assert!(detect(&[run(20)], &t).is_empty());
        // Short: 80 % own but 4 ms a run.
        let short = || {
            trace(vec![
                span(1, None, "tiny", 0, 5 * MS),
                span(2, Some(1), "x", 0, MS),
            ])
        };
        assert!(
            detect(&[short(), short()], &t)
                .iter()
                .all(|f| f.operation.as_deref() != Some("tiny"))
        );
        // The kind of work explains it: an HTTP client span is all own time.
        let http = || {
            trace(vec![with(
                span(1, None, "GET /api", 0, 100 * MS),
                "http.request.method",
                AnyValue::String("GET".into()),
            )])
        };
        assert!(detect(&[http(), http()], &t).is_empty());
        // A function the recorder made: already a function.
        let recorded = || {
            trace(vec![with(
                span(1, None, "app.work", 0, 100 * MS),
                RECORDER,
                AnyValue::Bool(true),
            )])
        };
        assert!(detect(&[recorded(), recorded()], &t).is_empty());
        // A leaf span naming no function: nothing to plan from.
        let leaf = || trace(vec![span(1, None, "fetch", 0, 100 * MS)]);
        assert!(detect(&[leaf(), leaf()], &t).is_empty());
        // The same leaf naming its function is one.
        let coded = || {
            trace(vec![with(
                span(1, None, "fetch", 0, 100 * MS),
                "code.function.name",
                AnyValue::String("fetch".into()),
            )])
        };
        assert_eq!(detect(&[coded(), coded()], &t).len(), 1);
        // A devtrace run span: a command, not a function.
        let run = || {
            trace(vec![with(
                span(1, None, "python app.py", 0, 100 * MS),
                devtrace_model::semconv::RUN_ID,
                AnyValue::String("r".into()),
            )])
        };
        assert!(detect(&[run(), run()], &t).is_empty());
    }

    /// Four runs of "render" (130 ms), own time 63 ms: 48 %, just under the old rule's 50 %.
    fn render_run(scale: f64) -> AnalyzedTrace {
        let at = |ms: f64| (ms * scale * MS as f64) as u64;
        let sql = |id, start, end| {
            with(
                span(id, Some(1), "SELECT", at(start), at(end)),
                "db.system",
                AnyValue::String("postgresql".into()),
            )
        };
        trace(vec![
            span(1, None, "render", 0, at(130.0)),
            sql(2, 5.0, 40.0),
            sql(3, 70.0, 102.0),
        ])
    }

    #[test]
    fn an_operation_at_the_old_boundary_is_found() {
        let runs: Vec<_> = (0..4).map(|_| render_run(1.0)).collect();
        let findings = detect(&runs, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:?}");
        let f = &findings[0];
        assert_eq!(f.operation.as_deref(), Some("render"));
        assert_eq!(f.numbers["own_ms_per_run"], 63.0);
        assert_eq!(f.numbers[crate::finding::EXPLAINABLE_MS], 252.0);
        assert!(
            f.title
                .starts_with("\"render\": 48 % of its time (63.0 ms a run, over 4 runs)")
        );
    }

    #[test]
    fn the_same_finding_on_a_machine_twice_as_fast_or_twice_as_slow() {
        let at = |scale: f64| {
            let runs: Vec<_> = (0..4).map(|_| render_run(scale)).collect();
            let findings = detect(&runs, &Thresholds::default());
            assert_eq!(findings.len(), 1, "at {scale}×: {findings:?}");
            findings.into_iter().next().unwrap()
        };
        let (normal, fast, slow) = (at(1.0), at(0.5), at(2.0));
        for f in [&fast, &slow] {
            assert_eq!(
                (&f.kind, &f.operation, &f.fingerprint),
                (&normal.kind, &normal.operation, &normal.fingerprint)
            );
            assert!((f.numbers["own_share"] - normal.numbers["own_share"]).abs() < 1e-9);
        }
        assert_eq!(fast.numbers["own_ms_per_run"], 31.5);
        assert_eq!(slow.numbers["own_ms_per_run"], 126.0);
    }

    #[test]
    fn blind_spots_rank_by_the_time_they_could_explain() {
        // "render": 63 ms own a run (126 ms on a machine half as fast); "handle": 80 ms own a
        // run, alphabetically first either way.
        let ranked = |render_scale: f64| {
            let mut findings = detect(
                &[
                    render_run(render_scale),
                    render_run(render_scale),
                    run(20),
                    run(20),
                ],
                &Thresholds::default(),
            );
            crate::finding::rank(&mut findings);
            findings
                .iter()
                .map(|f| f.operation.clone().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(ranked(1.0), ["handle", "render"]);
        assert_eq!(ranked(2.0), ["render", "handle"]);
    }

    #[test]
    fn time_accounted_for_by_recorded_calls_is_not_a_blind_spot() {
        // 80 ms own, of which the recorder counted 60 ms of short calls: 20 % unexplained.
        let accounted = || {
            trace(vec![
                with(
                    span(1, None, "handle", 0, 100 * MS),
                    ACCOUNTED_NS,
                    AnyValue::Int(60 * MS as i64),
                ),
                with(
                    span(2, Some(1), "child", 0, 20 * MS),
                    "db.system",
                    AnyValue::String("sqlite".into()),
                ),
            ])
        };
        assert!(detect(&[accounted(), accounted()], &Thresholds::default()).is_empty());
        let own = own_times(&[accounted()]);
        assert_eq!(
            (own["handle"].own_nanos, own["handle"].accounted_nanos),
            (20 * MS, 60 * MS)
        );
    }
}
