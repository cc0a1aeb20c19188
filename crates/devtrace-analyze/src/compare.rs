//! Comparing two sets of runs, operation by operation, with an honest verdict.

use crate::AnalyzedTrace;
use crate::classify::tokens;
use crate::stats::{RankTest, mann_whitney, mean};
use devtrace_model::{Operation, SpanKind};
use serde::Serialize;
use std::collections::BTreeMap;

/// Below this p-value a difference counts as real.
pub const SIGNIFICANCE: f64 = 0.05;

/// What can honestly be said about a difference.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// B is faster, and the rank test says the difference is real.
    Faster { test: RankTest },
    /// B is slower, and the rank test says the difference is real.
    Slower { test: RankTest },
    /// The samples do not show a real difference.
    NoClearChange { test: RankTest },
    /// Too few runs on a side to tell a change from noise (one each, typically).
    TooFewRuns { runs_a: usize, runs_b: usize },
}

impl Verdict {
    pub fn describe(&self) -> String {
        match self {
            Self::Faster { test } => format!(
                "faster (p = {:.3}, n = {} vs {})",
                test.p_value, test.n_a, test.n_b
            ),
            Self::Slower { test } => format!(
                "slower (p = {:.3}, n = {} vs {})",
                test.p_value, test.n_a, test.n_b
            ),
            Self::NoClearChange { test } => {
                format!(
                    "no clear change (p = {:.2}, n = {} vs {})",
                    test.p_value, test.n_a, test.n_b
                )
            }
            Self::TooFewRuns { runs_a, runs_b } => {
                format!("{runs_a} vs {runs_b} run(s): too few to tell a change from noise")
            }
        }
    }

    /// The verdict in a table cell: the test's p-value when it has one; the sample sizes are
    /// said once, in the whole-run line above the table.
    pub fn short(&self) -> String {
        match self {
            Self::Faster { test } => format!("faster (p = {:.3})", test.p_value),
            Self::Slower { test } => format!("slower (p = {:.3})", test.p_value),
            Self::NoClearChange { test } => format!("no clear change (p = {:.2})", test.p_value),
            Self::TooFewRuns { .. } => "too few runs".into(),
        }
    }
}

/// Per-run totals of one operation in one set.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Side {
    pub runs: usize,
    /// Mean total time per run spent in spans of this name, nanoseconds.
    pub mean_nanos: f64,
    pub calls_per_run: f64,
    pub tokens_per_run: f64,
    pub errors: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationDelta {
    /// The span name; with `service` and `span_kind`, the operation (empty for the whole run).
    pub operation: String,
    pub service: String,
    pub span_kind: String,
    pub a: Side,
    pub b: Side,
    pub delta_nanos: f64,
    /// Relative change of the mean, B against A (−0.4 = 40 % faster); `None` when A is zero.
    pub delta_ratio: Option<f64>,
    pub verdict: Verdict,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The whole runs (root spans), first.
    pub total: OperationDelta,
    /// Every operation seen on either side, largest absolute change first.
    pub operations: Vec<OperationDelta>,
    /// With one run a side: the request parameters of the two roots that differ (absent when
    /// none do, or when a side has several runs, whose parameters vary run by run).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterChange>,
}

/// A request parameter whose value differs between two runs: `OPERATION.url.query.NAME`, or
/// `OPERATION.url.path.NAME` as the route names a segment (derived from the URL in either
/// convention generation; named as failure correlation names its features), of a request the
/// run served — its root, or a server span whose operation occurs once in the run. Values as
/// recorded; absent on a side that lacks it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ParameterChange {
    pub name: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// A run's requests' parameters: those of its root and of each server span whose operation
/// occurs once in it (a repeated one has no single value), keyed `OPERATION.PARAMETER`.
fn request_parameters(trace: &AnalyzedTrace) -> BTreeMap<String, String> {
    let requests: Vec<usize> = (0..trace.spans.spans.len())
        .filter(|&i| Some(i) == trace.root() || trace.span(i).effective_kind() == SpanKind::Server)
        .collect();
    let mut out = BTreeMap::new();
    for &i in &requests {
        let name = &trace.span(i).name;
        if requests
            .iter()
            .filter(|&&j| trace.span(j).name == *name)
            .count()
            > 1
        {
            continue;
        }
        for kv in trace.attributes(i) {
            if kv.key.starts_with("url.query.") || kv.key.starts_with("url.path.") {
                out.insert(format!("{name}.{}", kv.key), kv.value.to_display_string());
            }
        }
    }
    out
}

/// The request parameters of `a` and `b` that differ, when each side is one run.
fn parameter_changes(a: &[AnalyzedTrace], b: &[AnalyzedTrace]) -> Vec<ParameterChange> {
    let ([a], [b]) = (a, b) else {
        return Vec::new();
    };
    let (of_a, of_b) = (request_parameters(a), request_parameters(b));
    let names: std::collections::BTreeSet<&String> = of_a.keys().chain(of_b.keys()).collect();
    names
        .into_iter()
        .filter(|name| of_a.get(*name) != of_b.get(*name))
        .map(|name| ParameterChange {
            name: name.clone(),
            a: of_a.get(name).cloned(),
            b: of_b.get(name).cloned(),
        })
        .collect()
}

/// Compares runs `a` (before) with runs `b` (after).
pub fn compare(a: &[AnalyzedTrace], b: &[AnalyzedTrace]) -> Comparison {
    let totals = |traces: &[AnalyzedTrace]| -> Vec<f64> {
        traces
            .iter()
            .filter_map(|t| t.root().map(|r| t.span(r).duration_nanos() as f64))
            .collect()
    };
    let total = delta(
        &Operation::new("(whole run)", "", SpanKind::Unspecified),
        &totals(a),
        &totals(b),
        Side::default(),
        Side::default(),
    );
    let (per_a, side_a) = per_operation(a);
    let (per_b, side_b) = per_operation(b);
    let names: std::collections::BTreeSet<&Operation> = per_a.keys().chain(per_b.keys()).collect();
    let mut operations: Vec<OperationDelta> = names
        .into_iter()
        .map(|name| {
            let empty = vec![0.0; a.len()];
            let empty_b = vec![0.0; b.len()];
            delta(
                name,
                per_a.get(name).unwrap_or(&empty),
                per_b.get(name).unwrap_or(&empty_b),
                side_a.get(name).cloned().unwrap_or_default(),
                side_b.get(name).cloned().unwrap_or_default(),
            )
        })
        .collect();
    operations.sort_by(|x, y| {
        y.delta_nanos
            .abs()
            .total_cmp(&x.delta_nanos.abs())
            .then(x.operation.cmp(&y.operation))
            .then(x.service.cmp(&y.service))
            .then(x.span_kind.cmp(&y.span_kind))
    });
    Comparison {
        total: Comparison::fill_total(total, a, b),
        operations,
        parameters: parameter_changes(a, b),
    }
}

impl Comparison {
    fn fill_total(
        mut total: OperationDelta,
        a: &[AnalyzedTrace],
        b: &[AnalyzedTrace],
    ) -> OperationDelta {
        let side = |traces: &[AnalyzedTrace], mean_nanos: f64| Side {
            runs: traces.len(),
            mean_nanos,
            calls_per_run: 1.0,
            tokens_per_run: per_run(traces, |t| {
                (0..t.spans.spans.len())
                    .filter_map(|i| tokens(t, i))
                    .map(|(i, o)| (i + o) as f64)
                    .sum()
            }),
            errors: traces
                .iter()
                .map(|t| t.spans.spans.iter().filter(|s| s.is_error()).count() as u64)
                .sum(),
        };
        total.a = side(a, total.a.mean_nanos);
        total.b = side(b, total.b.mean_nanos);
        total
    }
}

fn per_run(traces: &[AnalyzedTrace], f: impl Fn(&AnalyzedTrace) -> f64) -> f64 {
    if traces.is_empty() {
        0.0
    } else {
        traces.iter().map(f).sum::<f64>() / traces.len() as f64
    }
}

type PerOperation = (BTreeMap<Operation, Vec<f64>>, BTreeMap<Operation, Side>);

/// For each operation (name, service, kind: a client span and the server span of the same
/// name stay apart): the per-run totals (one entry per trace, 0 when absent) and the side.
fn per_operation(traces: &[AnalyzedTrace]) -> PerOperation {
    let mut totals: BTreeMap<Operation, Vec<f64>> = BTreeMap::new();
    let mut sides: BTreeMap<Operation, Side> = BTreeMap::new();
    for (run, trace) in traces.iter().enumerate() {
        for (index, span) in trace.spans.spans.iter().enumerate() {
            let operation = Operation::of(&trace.spans, span);
            totals
                .entry(operation.clone())
                .or_insert_with(|| vec![0.0; traces.len()])[run] += span.duration_nanos() as f64;
            let side = sides.entry(operation).or_default();
            side.calls_per_run += 1.0;
            side.tokens_per_run += tokens(trace, index).map_or(0.0, |(i, o)| (i + o) as f64);
            side.errors += u64::from(span.is_error());
        }
    }
    let n = traces.len().max(1) as f64;
    for (name, side) in &mut sides {
        side.runs = traces.len();
        side.calls_per_run /= n;
        side.tokens_per_run /= n;
        side.mean_nanos = mean(&totals[name]);
    }
    (totals, sides)
}

fn delta(
    operation: &Operation,
    a: &[f64],
    b: &[f64],
    mut side_a: Side,
    mut side_b: Side,
) -> OperationDelta {
    let (mean_a, mean_b) = (mean(a), mean(b));
    side_a.mean_nanos = mean_a;
    side_b.mean_nanos = mean_b;
    side_a.runs = a.len();
    side_b.runs = b.len();
    let verdict = match mann_whitney(a, b) {
        // Five runs a side is the least at which the rank test can reach p < 0.05 honestly.
        Some(test) if a.len() >= 5 && b.len() >= 5 => {
            if test.p_value >= SIGNIFICANCE {
                Verdict::NoClearChange { test }
            } else if mean_b < mean_a {
                Verdict::Faster { test }
            } else {
                Verdict::Slower { test }
            }
        }
        _ => Verdict::TooFewRuns {
            runs_a: a.len(),
            runs_b: b.len(),
        },
    };
    let whole_run = operation.service.is_empty();
    OperationDelta {
        operation: operation.name.clone(),
        service: operation.service.clone(),
        span_kind: if whole_run {
            String::new()
        } else {
            operation.kind.as_str().to_owned()
        },
        a: side_a,
        b: side_b,
        delta_nanos: mean_b - mean_a,
        delta_ratio: (mean_a > 0.0).then(|| (mean_b - mean_a) / mean_a),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::TraceId;

    fn run(id: u8, summary: u64, dialogue: u64) -> AnalyzedTrace {
        AnalyzedTrace::new(
            TraceId([id; 16]),
            batch(vec![
                span(1, None, "journal.generate", 0, summary + dialogue),
                span(2, Some(1), "summary.generate", 0, summary),
                span(3, Some(1), "dialogue.generate", summary, summary + dialogue),
            ]),
        )
    }

    fn request(id: u8, target: &str) -> AnalyzedTrace {
        let mut root = span(1, None, "GET /reports/:year", 0, 10);
        root.kind = SpanKind::Server;
        root.attributes = vec![
            devtrace_model::KeyValue::new("http.route", "/reports/:year"),
            devtrace_model::KeyValue::new("http.target", target),
        ];
        AnalyzedTrace::new(TraceId([id; 16]), batch(vec![root]))
    }

    #[test]
    fn two_runs_name_the_request_parameters_that_differ() {
        let a = request(1, "/reports/2024?format=csv&page=2");
        let b = request(2, "/reports/2025?format=csv");
        let changes = compare(std::slice::from_ref(&a), std::slice::from_ref(&b)).parameters;
        let change = |name: &str, a: Option<&str>, b: Option<&str>| ParameterChange {
            name: name.into(),
            a: a.map(Into::into),
            b: b.map(Into::into),
        };
        assert_eq!(
            changes,
            [
                change(
                    "GET /reports/:year.url.path.year",
                    Some("2024"),
                    Some("2025")
                ),
                change("GET /reports/:year.url.query.page", Some("2"), None),
            ]
        );
        // Several runs a side: parameters vary run by run, none is named.
        assert!(
            compare(&[a.clone(), a], &[b.clone(), b])
                .parameters
                .is_empty()
        );
    }

    /// A gRPC call seen from both ends shares a name; its client and server spans are two rows.
    #[test]
    fn a_client_span_and_its_server_span_are_compared_apart() {
        use devtrace_model::{KeyValue, Resource};
        let call = |id: u8, server: u64| {
            let mut spans = vec![
                span(1, None, "GET /", 0, server + 20),
                span(2, Some(1), "Place", 5, server + 15),
                span(3, Some(2), "Place", 10, server + 10),
            ];
            spans[1].kind = SpanKind::Client;
            spans[2].kind = SpanKind::Server;
            spans[2].resource = 1;
            let mut batch = batch(spans);
            batch.resources.push(Resource {
                attributes: vec![KeyValue::new("service.name", "checkout")],
                ..Default::default()
            });
            AnalyzedTrace::new(TraceId([id; 16]), batch)
        };
        let c = compare(&[call(1, 100)], &[call(2, 40)]);
        let rows: Vec<(&str, &str, f64)> = c
            .operations
            .iter()
            .filter(|r| r.operation == "Place")
            .map(|r| (r.service.as_str(), r.span_kind.as_str(), r.b.calls_per_run))
            .collect();
        assert_eq!(
            rows,
            [
                ("checkout", "server", 1.0),
                ("unknown_service", "client", 1.0)
            ],
            "one call each, not two calls of one operation"
        );
        assert_eq!(
            (c.total.service.as_str(), c.total.span_kind.as_str()),
            ("", "")
        );
    }

    #[test]
    fn enough_runs_give_a_verdict_per_operation() {
        let before: Vec<_> = (0..8)
            .map(|i| run(i, 900 + u64::from(i), 500 + u64::from(i)))
            .collect();
        let after: Vec<_> = (0..8)
            .map(|i| run(i, 900 + u64::from(i), 100 + u64::from(i)))
            .collect();
        let c = compare(&before, &after);
        assert!(
            matches!(c.total.verdict, Verdict::Faster { .. }),
            "{:?}",
            c.total.verdict
        );
        assert_eq!(c.operations[0].delta_nanos, -400.0, "largest change first");
        let dialogue = c
            .operations
            .iter()
            .find(|o| o.operation == "dialogue.generate")
            .unwrap();
        assert_eq!(dialogue.delta_nanos, -400.0);
        assert!(matches!(dialogue.verdict, Verdict::Faster { .. }));
        let summary = c
            .operations
            .iter()
            .find(|o| o.operation == "summary.generate")
            .unwrap();
        assert!(
            matches!(summary.verdict, Verdict::NoClearChange { .. }),
            "{:?}",
            summary.verdict
        );
    }

    #[test]
    fn one_run_each_says_so() {
        let c = compare(&[run(1, 900, 500)], &[run(2, 900, 100)]);
        assert_eq!(
            c.total.verdict,
            Verdict::TooFewRuns {
                runs_a: 1,
                runs_b: 1
            }
        );
        assert!(c.total.verdict.describe().contains("too few"));
        assert_eq!(c.total.delta_ratio, Some(-400.0 / 1400.0));
    }
}
