//! The breakdown of an operation across runs: where its time goes, child by child and by kind
//! of work, and how much of it is on the critical path.

use crate::AnalyzedTrace;
use crate::classify::{WorkKind, classify};
use crate::critical_path::{critical_credits, subtree_credit};
use crate::stats::{Summary, summarize};
use devtrace_model::{SpanId, TraceId};
use serde::Serialize;
use std::collections::BTreeMap;

/// One run of the operation: a span named like it, in some trace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub duration_nanos: u64,
}

/// A direct child operation, aggregated over the runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChildStats {
    pub name: String,
    pub kind: WorkKind,
    /// Time per run spent in children of this name (0 for runs without one), nanoseconds.
    pub per_run: Summary,
    /// Mean time in this child over mean time of the operation.
    pub share: f64,
    pub calls_per_run: f64,
    /// Mean share of the operation's duration that this child spends on its critical path.
    pub critical_share: f64,
}

/// Time by kind of work within the operation: wall-clock time, each instant shared among the
/// work running then ([`crate::kinds::time_by_kind`]), so the shares sum to 100 %.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindStats {
    pub kind: WorkKind,
    pub mean_nanos: f64,
    pub share: f64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationProfile {
    pub operation: String,
    pub runs: Vec<Run>,
    /// Duration per run, nanoseconds.
    pub duration: Summary,
    /// Children ordered by mean time, largest first.
    pub children: Vec<ChildStats>,
    pub by_kind: Vec<KindStats>,
    /// Mean share of the operation's own time (not in any child) on the critical path.
    pub self_critical_share: f64,
}

/// Profiles every span named `operation` in `traces` (each is one run). `None` if no span has
/// that name.
pub fn profile_operation(traces: &[AnalyzedTrace], operation: &str) -> Option<OperationProfile> {
    let instances: Vec<(&AnalyzedTrace, usize)> = traces
        .iter()
        .flat_map(|t| t.spans_named(operation).map(move |i| (t, i)))
        .collect();
    if instances.is_empty() {
        return None;
    }
    let n = instances.len() as f64;
    let durations: Vec<f64> = instances
        .iter()
        .map(|(t, i)| t.span(*i).duration_nanos() as f64)
        .collect();
    let mean_duration = crate::stats::mean(&durations).max(1.0);

    // name → (per-run totals, total calls, critical-share sum, kind)
    let mut children: BTreeMap<String, (Vec<f64>, u64, f64, WorkKind)> = BTreeMap::new();
    let mut kinds: BTreeMap<WorkKind, f64> = BTreeMap::new();
    let mut self_critical = 0.0;
    for (run, (trace, op)) in instances.iter().enumerate() {
        let duration = trace.span(*op).duration_nanos().max(1) as f64;
        let credits = critical_credits(trace, *op);
        self_critical += credits[*op] as f64 / duration;
        for &child in &trace.tree.children[*op] {
            let span = trace.span(child);
            let entry = children
                .entry(span.name.clone())
                .or_insert_with(|| (vec![0.0; instances.len()], 0, 0.0, classify(trace, child)));
            entry.0[run] += span.duration_nanos() as f64;
            entry.1 += 1;
            entry.2 += subtree_credit(trace, &credits, child) as f64 / duration;
        }
        // Wall-clock time by kind: concurrent work shares each instant, waits inside spans
        // are waiting, and the kinds sum to the run's duration.
        for (kind, nanos) in crate::kinds::time_by_kind(trace, *op) {
            *kinds.entry(kind).or_default() += nanos as f64;
        }
    }
    let mut children: Vec<ChildStats> = children
        .into_iter()
        .map(|(name, (per_run, calls, critical, kind))| {
            let summary = summarize(&per_run);
            ChildStats {
                name,
                kind,
                share: summary.mean / mean_duration,
                per_run: summary,
                calls_per_run: calls as f64 / n,
                critical_share: critical / n,
            }
        })
        .collect();
    children.sort_by(|a, b| {
        b.per_run
            .mean
            .total_cmp(&a.per_run.mean)
            .then(a.name.cmp(&b.name))
    });
    let by_kind = WorkKind::ALL
        .iter()
        .filter_map(|kind| {
            let total = *kinds.get(kind)?;
            (total > 0.0).then(|| KindStats {
                kind: *kind,
                mean_nanos: total / n,
                share: total / n / mean_duration,
            })
        })
        .collect();
    Some(OperationProfile {
        operation: operation.to_owned(),
        runs: instances
            .iter()
            .map(|(t, i)| Run {
                trace_id: t.trace_id,
                span_id: t.span(*i).span_id,
                duration_nanos: t.span(*i).duration_nanos(),
            })
            .collect(),
        duration: summarize(&durations),
        children,
        by_kind,
        self_critical_share: self_critical / n,
    })
}

/// Operations ranked by total time spent, from `(name, duration)` pairs of root spans.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationTotal {
    pub operation: String,
    pub runs: usize,
    pub total_nanos: u64,
    pub duration: Summary,
    pub errors: u64,
}

pub fn rank_operations(runs: impl IntoIterator<Item = (String, u64, bool)>) -> Vec<OperationTotal> {
    let mut by_name: BTreeMap<String, (Vec<f64>, u64)> = BTreeMap::new();
    for (name, duration, failed) in runs {
        let entry = by_name.entry(name).or_default();
        entry.0.push(duration as f64);
        entry.1 += u64::from(failed);
    }
    let mut totals: Vec<OperationTotal> = by_name
        .into_iter()
        .map(|(operation, (durations, errors))| OperationTotal {
            operation,
            runs: durations.len(),
            total_nanos: durations.iter().sum::<f64>() as u64,
            duration: summarize(&durations),
            errors,
        })
        .collect();
    totals.sort_by(|a, b| {
        b.total_nanos
            .cmp(&a.total_nanos)
            .then(a.operation.cmp(&b.operation))
    });
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{AnyValue, KeyValue};

    fn journal_run(trace: u8, offset: u64) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "journal.generate", offset, offset + 160),
            span(2, Some(1), "summary.generate", offset, offset + 90),
            span(3, Some(1), "dialogue.generate", offset + 90, offset + 140),
            span(4, Some(1), "db.query", offset + 140, offset + 145),
            span(5, Some(1), "db.query", offset + 145, offset + 150),
        ];
        spans[1]
            .attributes
            .push(KeyValue::new("gen_ai.request.model", "gpt-4o"));
        spans[2]
            .attributes
            .push(KeyValue::new("gen_ai.request.model", "gpt-4o"));
        for s in &mut spans[3..] {
            s.attributes
                .push(KeyValue::new("db.system.name", AnyValue::from("sqlite")));
        }
        let mut t = AnalyzedTrace::new(devtrace_model::TraceId([trace; 16]), batch(spans));
        t.trace_id = devtrace_model::TraceId([trace; 16]);
        t
    }

    #[test]
    fn breakdown_by_child_kind_and_critical_path() {
        let traces = vec![journal_run(1, 0), journal_run(2, 1000)];
        let profile = profile_operation(&traces, "journal.generate").unwrap();
        assert_eq!(profile.runs.len(), 2);
        assert_eq!(profile.duration.mean, 160.0);
        let names: Vec<&str> = profile.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["summary.generate", "dialogue.generate", "db.query"]);
        let summary = &profile.children[0];
        assert_eq!(summary.kind, WorkKind::Llm);
        assert!((summary.share - 90.0 / 160.0).abs() < 1e-9);
        assert!((summary.critical_share - 90.0 / 160.0).abs() < 1e-9);
        let db = &profile.children[2];
        assert_eq!((db.calls_per_run, db.per_run.mean), (2.0, 10.0));
        let llm = profile
            .by_kind
            .iter()
            .find(|k| k.kind == WorkKind::Llm)
            .unwrap();
        assert!((llm.share - 140.0 / 160.0).abs() < 1e-9);
        let other = profile
            .by_kind
            .iter()
            .find(|k| k.kind == WorkKind::Other)
            .unwrap();
        assert_eq!(other.mean_nanos, 10.0, "the parent's own time");
        assert!(profile_operation(&traces, "nope").is_none());
    }

    #[test]
    fn operations_rank_by_total_time() {
        let ranked = rank_operations([
            ("a".to_owned(), 10, false),
            ("b".to_owned(), 100, true),
            ("a".to_owned(), 10, false),
        ]);
        assert_eq!(ranked[0].operation, "b");
        assert_eq!((ranked[1].runs, ranked[1].total_nanos), (2, 20));
        assert_eq!(ranked[0].errors, 1);
    }
}
