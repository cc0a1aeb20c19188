//! A 100,000-deep chain of calls (non-tail recursion recorded span by span, or a hostile
//! sender) goes through the analyses that walk the span tree without overflowing the stack.

use devtrace_analyze::classify::WorkKind;
use devtrace_analyze::critical_path::{critical_credits, critical_path};
use devtrace_analyze::kinds::time_by_kind;
use devtrace_analyze::{AnalyzedTrace, FindingKind, detectors};
use devtrace_model::{Resource, Scope, Span, SpanBatch, SpanId, TraceId};

const DEPTH: u64 = 100_000;

/// Span k (1-based) calls span k + 1: it runs from k to 2·DEPTH + 1 − k, one nanosecond of
/// its own on each side of its child (the innermost has two in a row).
fn chain() -> AnalyzedTrace {
    let spans = (1..=DEPTH)
        .map(|k| {
            let parent = (k > 1).then(|| SpanId((k - 1).to_be_bytes()));
            Span::new(
                TraceId([7; 16]),
                SpanId(k.to_be_bytes()),
                parent,
                format!("f{}", k % 7),
                k,
                2 * DEPTH + 1 - k,
            )
        })
        .collect();
    let batch = SpanBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        spans,
    };
    AnalyzedTrace::new(TraceId([7; 16]), batch)
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
