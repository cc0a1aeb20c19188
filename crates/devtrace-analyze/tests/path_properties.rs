//! Properties of the critical path and of time by kind over random trees: exactly one chain,
//! no credit for concurrent siblings off it, credits and kinds summing to the duration; and
//! the per-run shortcuts (`credits_by_child`, `KindTotals`) agreeing with the full walks.

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::causality::CausalSpans;
use devtrace_analyze::critical_path::{credits_by_child, critical_credits, subtree_credit};
use devtrace_analyze::kinds::{KindTotals, time_by_kind};
use devtrace_model::{KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, TraceId};
use proptest::prelude::*;

/// A random tree: span 0 is the root; every other span has an earlier span as parent and an
/// interval that may overlap its siblings or outlive its parent; some carry HTTP, database or
/// LLM attributes.
fn tree() -> impl Strategy<Value = AnalyzedTrace> {
    specs().prop_map(|specs| build(specs, false))
}

/// A random tree whose spans lie within their parents (siblings may still overlap): where
/// the shortcuts apply.
fn nested_tree() -> impl Strategy<Value = AnalyzedTrace> {
    specs().prop_map(|specs| build(specs, true))
}

type Specs = Vec<(usize, u64, u64, u8)>;

fn specs() -> impl Strategy<Value = Specs> {
    proptest::collection::vec((0usize..1000, 0u64..1000, 1u64..400, 0u8..4), 1..60)
}

fn build(specs: Specs, nested: bool) -> AnalyzedTrace {
    {
        {
            let mut spans = vec![Span::new(
                TraceId([7; 16]),
                SpanId([0, 0, 0, 0, 0, 0, 0, 1]),
                None,
                "root",
                0,
                1_000,
            )];
            for (i, (parent, start, length, kind)) in specs.into_iter().enumerate() {
                let id = (i + 2) as u64;
                let parent = (parent % (i + 1)) as u64 + 1;
                let (mut start, mut length) = (start, length);
                if nested {
                    let p = &spans[parent as usize - 1];
                    let room = p.end_unix_nano - p.start_unix_nano;
                    start = p.start_unix_nano + start % room;
                    length = length.min(p.end_unix_nano - start);
                }
                let mut span = Span::new(
                    TraceId([7; 16]),
                    SpanId(id.to_be_bytes()),
                    Some(SpanId(parent.to_be_bytes())),
                    format!("s{id}"),
                    start,
                    start + length,
                );
                match kind {
                    1 => {
                        span.kind = SpanKind::Client;
                        span.attributes
                            .push(KeyValue::new("http.request.method", "GET"));
                    }
                    2 => span
                        .attributes
                        .push(KeyValue::new("db.system.name", "postgresql")),
                    3 => span
                        .attributes
                        .push(KeyValue::new("gen_ai.request.model", "gpt-4o")),
                    _ => {}
                }
                spans.push(span);
            }
            AnalyzedTrace::new(
                TraceId([7; 16]),
                SpanBatch {
                    resources: vec![Resource::default()],
                    scopes: vec![Scope::default()],
                    spans,
                },
            )
        }
    }
}

/// The span's interval clipped to its ancestors' (what the path can credit).
fn clipped(trace: &AnalyzedTrace, index: usize, parents: &[Option<usize>]) -> (u64, u64) {
    let span = trace.span(index);
    let (mut start, mut end) = (span.start_unix_nano, span.end_unix_nano);
    let mut node = parents[index];
    while let Some(p) = node {
        start = start.max(trace.span(p).start_unix_nano);
        end = end.min(trace.span(p).end_unix_nano);
        node = parents[p];
    }
    (start, end.max(start))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_critical_path_is_one_chain(trace in tree()) {
        let credits = critical_credits(&trace, 0);
        prop_assert_eq!(credits.iter().sum::<u64>(), trace.span(0).duration_nanos());
        let mut parents = vec![None; trace.spans.spans.len()];
        for (p, children) in trace.tree.children.iter().enumerate() {
            for &c in children {
                parents[c] = Some(p);
            }
        }
        // A span on the path lies inside its parent's time on the path: two credited siblings
        // never overlap, so concurrent siblings off the chain get nothing.
        for (p, children) in trace.tree.children.iter().enumerate() {
            let on_path: Vec<usize> = children
                .iter()
                .copied()
                .filter(|c| {
                    let subtree: u64 = trace.subtree(*c).iter().map(|d| credits[*d]).sum();
                    subtree > 0
                })
                .collect();
            for (i, a) in on_path.iter().enumerate() {
                for b in &on_path[i + 1..] {
                    let (sa, ea) = clipped(&trace, *a, &parents);
                    let (sb, eb) = clipped(&trace, *b, &parents);
                    prop_assert!(
                        ea <= sb || eb <= sa,
                        "siblings {} and {} of {} overlap and are both on the path",
                        a, b, p
                    );
                }
            }
        }
    }

    #[test]
    fn time_by_kind_sums_to_the_duration(trace in tree()) {
        let kinds = time_by_kind(&trace, 0);
        prop_assert_eq!(kinds.values().sum::<u64>(), trace.span(0).duration_nanos());
    }

    #[test]
    fn each_childs_credit_is_what_the_whole_walk_credits_its_subtree(
        trace in prop_oneof![tree(), nested_tree()]
    ) {
        let causal = CausalSpans::of(&trace);
        for top in 0..trace.spans.spans.len() {
            let credits = critical_credits(&trace, top);
            let by_child: Vec<u64> = trace.tree.children[top]
                .iter()
                .map(|c| subtree_credit(&trace, &credits, *c))
                .collect();
            prop_assert_eq!(
                credits_by_child(&trace, &causal, top),
                Some((credits[top], by_child)),
                "span {}", top
            );
        }
    }

    #[test]
    fn kind_totals_are_the_sweeps(trace in prop_oneof![tree(), nested_tree()]) {
        let totals = KindTotals::of(&trace);
        for top in 0..trace.spans.spans.len() {
            prop_assert_eq!(totals.of_subtree(&trace, top), time_by_kind(&trace, top), "span {}", top);
        }
    }
}

#[test]
fn ten_concurrent_calls_give_the_path_to_the_last_one_only() {
    let mut spans = vec![Span::new(
        TraceId([1; 16]),
        SpanId([0, 0, 0, 0, 0, 0, 0, 1]),
        None,
        "fan_out",
        0,
        1_000,
    )];
    for i in 0..10u64 {
        // Started 1 apart, each 800 long: all ten overlap; the last to start ends last.
        spans.push(Span::new(
            TraceId([1; 16]),
            SpanId((i + 2).to_be_bytes()),
            Some(SpanId([0, 0, 0, 0, 0, 0, 0, 1])),
            format!("call{i}"),
            10 + i,
            810 + i,
        ));
    }
    let trace = AnalyzedTrace::new(
        TraceId([1; 16]),
        SpanBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope::default()],
            spans,
        },
    );
    let credits = critical_credits(&trace, 0);
    let credited: Vec<usize> = (1..=10).filter(|i| credits[*i] > 0).collect();
    assert_eq!(
        credited,
        [10],
        "only the call that finished last is on the path"
    );
    assert_eq!(credits[10], 800);
    assert_eq!(credits[0], 200);
}
