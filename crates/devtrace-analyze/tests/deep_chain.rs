//! A 100,000-deep chain of calls (non-tail recursion recorded span by span, or a hostile
//! sender) goes through the analyses that walk the span tree without overflowing the stack,
//! and — with a 100,000-wide fan-out and a "comb" (a deep chain with a leaf at each level) —
//! in linear time: a quadratic analysis would take 10^10 steps and not finish here.

use devtrace_analyze::classify::WorkKind;
use devtrace_analyze::critical_path::{critical_credits, critical_path};
use devtrace_analyze::kinds::time_by_kind;
use devtrace_analyze::perf::profile_operation;
use devtrace_analyze::{AnalyzedTrace, FindingKind, detectors};
use devtrace_model::{Operation, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, TraceId};

const DEPTH: u64 = 100_000;

fn analyzed(spans: Vec<Span>) -> AnalyzedTrace {
    let batch = SpanBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        spans,
    };
    AnalyzedTrace::new(TraceId([7; 16]), batch)
}

fn span(id: u64, parent: Option<u64>, name: String, start: u64, end: u64) -> Span {
    Span::new(
        TraceId([7; 16]),
        SpanId(id.to_be_bytes()),
        parent.map(|p| SpanId(p.to_be_bytes())),
        name,
        start,
        end,
    )
}

fn operation(name: &str) -> Operation {
    Operation::new(name, "unknown_service", SpanKind::Internal)
}

/// Span k (1-based) calls span k + 1: it runs from k to 2·DEPTH + 1 − k, one nanosecond of
/// its own on each side of its child (the innermost has two in a row).
fn chain() -> AnalyzedTrace {
    analyzed(
        (1..=DEPTH)
            .map(|k| {
                span(
                    k,
                    (k > 1).then(|| k - 1),
                    format!("f{}", k % 7),
                    k,
                    2 * DEPTH + 1 - k,
                )
            })
            .collect(),
    )
}

/// A root (0..DEPTH + 1) calling DEPTH leaves one after the other, 1 ns each.
fn fan_out() -> AnalyzedTrace {
    let mut spans = vec![span(1, None, "root".into(), 0, DEPTH + 1)];
    spans.extend((1..=DEPTH).map(|k| span(k + 1, Some(1), "leaf".into(), k, k + 1)));
    analyzed(spans)
}

/// The chain's spine (span k from 2k to 4·DEPTH + 2 − 2k), each spine span also calling a
/// 1 ns leaf after its spine child returns.
fn comb() -> AnalyzedTrace {
    let mut spans = Vec::new();
    for k in 1..=DEPTH {
        let spine = (k > 1).then(|| 2 * (k - 1) - 1);
        spans.push(span(
            2 * k - 1,
            spine,
            format!("f{}", k % 7),
            2 * k,
            4 * DEPTH + 2 - 2 * k,
        ));
        let leaf_start = 4 * DEPTH - 2 * k;
        spans.push(span(
            2 * k,
            Some(2 * k - 1),
            "leaf".into(),
            leaf_start,
            leaf_start + 1,
        ));
    }
    analyzed(spans)
}

#[test]
fn the_critical_path_of_a_deep_chain_is_every_span_and_credits_sum_to_the_duration() {
    let trace = chain();
    let root = trace.root().expect("the chain has a root");
    let credits = critical_credits(&trace, root);
    assert_eq!(credits.iter().sum::<u64>(), 2 * DEPTH - 1);
    assert_eq!(credits[root], 2);
    assert_eq!(critical_path(&trace, root).len(), DEPTH as usize);
}

#[test]
fn the_kinds_of_a_deep_chain_sum_to_its_duration() {
    let trace = chain();
    let root = trace.root().expect("the chain has a root");
    let kinds = time_by_kind(&trace, root);
    assert_eq!(kinds.len(), 1);
    assert_eq!(kinds[&WorkKind::Other], 2 * DEPTH - 1);
}

#[test]
fn the_detectors_run_over_a_deep_chain() {
    let trace = chain();
    let findings = detectors::run_all(std::slice::from_ref(&trace));
    // Each call's time is all in the next call: the top one's is where the time goes.
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0].kind, FindingKind::DominantCost);
    assert!(
        findings[0].title.contains("of \"f1\" is in \"f2\""),
        "{}",
        findings[0].title
    );
}

#[test]
fn a_recursive_operation_in_a_deep_chain_is_profiled_run_by_run() {
    let trace = chain();
    let profile =
        profile_operation(std::slice::from_ref(&trace), &operation("f1")).expect("f1 runs");
    // f1 is every 7th call from the first: k = 1, 8, 15, …; each calls f2 for all but 2 ns.
    let runs: Vec<u64> = (1..=DEPTH).filter(|k| k % 7 == 1).collect();
    assert_eq!(profile.runs.len(), runs.len());
    let mean = |f: &dyn Fn(u64) -> f64| runs.iter().map(|k| f(*k)).sum::<f64>() / runs.len() as f64;
    let duration = |k: u64| (2 * DEPTH + 1 - 2 * k) as f64;
    assert_eq!(profile.duration.mean, mean(&duration));
    assert_eq!(profile.children.len(), 1, "{:?}", profile.children);
    let f2 = &profile.children[0];
    assert_eq!((f2.name.as_str(), f2.calls_per_run), ("f2", 1.0));
    assert_eq!(f2.per_run.mean, mean(&|k| duration(k) - 2.0));
    // The whole of each run is on its critical path: f2's part and f1's own 2 ns.
    assert!((f2.critical_share - mean(&|k| 1.0 - 2.0 / duration(k))).abs() < 1e-9);
    assert!((profile.self_critical_share - mean(&|k| 2.0 / duration(k))).abs() < 1e-9);
    assert_eq!(profile.by_kind.len(), 1);
    assert_eq!(profile.by_kind[0].kind, WorkKind::Other);
    assert_eq!(profile.by_kind[0].mean_nanos, profile.duration.mean);
}

#[test]
fn a_100000_wide_fan_out_is_profiled_as_one_run_and_many_runs() {
    let trace = fan_out();
    let traces = std::slice::from_ref(&trace);
    let root = profile_operation(traces, &operation("root")).expect("the root runs");
    let leaf = &root.children[0];
    assert_eq!(
        (leaf.calls_per_run, leaf.per_run.mean),
        (DEPTH as f64, DEPTH as f64)
    );
    assert!((leaf.critical_share - DEPTH as f64 / (DEPTH + 1) as f64).abs() < 1e-9);
    let leaves = profile_operation(traces, &operation("leaf")).expect("the leaves run");
    assert_eq!(
        (leaves.runs.len(), leaves.duration.mean),
        (DEPTH as usize, 1.0)
    );
    assert_eq!(leaves.self_critical_share, 1.0);
    let findings = detectors::run_all(traces);
    assert!(findings.len() < 10, "{findings:?}");
}

#[test]
fn a_comb_is_profiled_and_analysed() {
    let trace = comb();
    let traces = std::slice::from_ref(&trace);
    let f1 = profile_operation(traces, &operation("f1")).expect("f1 runs");
    let names: Vec<&str> = f1.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["f2", "leaf"]);
    assert_eq!(f1.children[1].per_run.mean, 1.0);
    let leaves = profile_operation(traces, &operation("leaf")).expect("the leaves run");
    assert_eq!(leaves.runs.len(), DEPTH as usize);
    let credits = critical_credits(&trace, 0);
    assert_eq!(credits.iter().sum::<u64>(), 4 * DEPTH - 2);
    let findings = detectors::run_all(traces);
    assert!(findings.len() < 10, "{findings:?}");
}

#[test]
fn fifty_thousand_parent_cycles_each_become_a_root() {
    // Spans 2k − 1 and 2k name each other as parent: each pair is a cycle, one of it promoted.
    let pairs = DEPTH / 2;
    let spans = (1..=pairs)
        .flat_map(|k| {
            [
                span(2 * k - 1, Some(2 * k), "a".into(), k, k + 2),
                span(2 * k, Some(2 * k - 1), "b".into(), k, k + 1),
            ]
        })
        .collect();
    let trace = analyzed(spans);
    assert_eq!(trace.tree.roots.len() as u64, pairs);
    assert_eq!(trace.tree.walk().count() as u64, DEPTH);
    assert!(
        trace
            .tree
            .roots
            .iter()
            .all(|r| trace.tree.descendants(*r).len() == 1)
    );
}
