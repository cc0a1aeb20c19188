//! Which traces a comparison reads: two traces (two `devtrace run` executions are two traces),
//! the last runs of an operation split in halves, or the runs before and after an instant.

use crate::scope::{QueryError, load, one, unknown_operation};
use crate::search::{TraceSearch, search};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::compare::{Comparison, compare};
use devtrace_model::recorded::quote;
use devtrace_model::{OperationFilter, TraceId, semconv};
use devtrace_store::{Store, TraceQuery};
use serde::Serialize;

/// Runs read per side for time-window comparisons.
pub const WINDOW_RUNS: usize = 200;

/// What to compare. Faces check their own argument combinations and build one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Trace A (before) and trace B (after), by id or unique prefix.
    Traces { a: String, b: String },
    /// Two `devtrace run` executions (run id, or trace id or prefix of the run's trace), each
    /// with the traces attached to it (programs that started their own trace) merged in.
    Runs { a: String, b: String },
    /// The last `last` runs of `operation` (at least 2): the older half against the newer.
    Last { operation: String, last: usize },
    /// Runs of `operation` that started before `before` (A) against those that started at or
    /// after `after` (B); either defaults to the other.
    Window {
        operation: String,
        before: Option<u64>,
        after: Option<u64>,
    },
}

/// The two sides, loaded and analysed, oldest first within each, and a label saying what they
/// are.
pub struct Sides {
    pub a: Vec<AnalyzedTrace>,
    pub b: Vec<AnalyzedTrace>,
    pub label: String,
}

/// A comparison with the label of what was compared and the traces on each side.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LabelledComparison {
    pub what: String,
    /// Trace ids of side A (hex), oldest first.
    pub a_traces: Vec<String>,
    pub b_traces: Vec<String>,
    pub comparison: Comparison,
}

pub fn select(store: &dyn Store, selection: &Selection) -> Result<Sides, QueryError> {
    let (operation, runs, before): (&str, Vec<AnalyzedTrace>, u64) = match selection {
        Selection::Traces { a, b } => {
            let (ta, tb) = (one(store, a)?, one(store, b)?);
            let label = format!("trace {} (A) vs trace {} (B)", ta.trace_id, tb.trace_id);
            return Ok(Sides {
                a: vec![ta],
                b: vec![tb],
                label,
            });
        }
        Selection::Runs { a, b } => {
            let (ta, tb) = (run_with_attached(store, a)?, run_with_attached(store, b)?);
            let label = format!("run {} (A) vs run {} (B)", ta.trace_id, tb.trace_id);
            return Ok(Sides {
                a: vec![ta],
                b: vec![tb],
                label,
            });
        }
        Selection::Last { operation, last } => {
            let summaries = store.traces_with_operation(
                &OperationFilter::named(operation.as_str()),
                None,
                (*last).max(2),
            )?;
            let runs = load(store, &summaries)?;
            if runs.is_empty() {
                return Err(QueryError::UnknownOperation(unknown_operation(
                    store, operation,
                )?));
            }
            if runs.len() < 2 {
                return Err(QueryError::Invalid(format!(
                    "only {} run(s) of {} are stored; need 2 to compare",
                    runs.len(),
                    crate::text::quote(operation)
                )));
            }
            // Oldest first: the older half is A.
            let boundary = start(&runs[runs.len() / 2]);
            (operation, runs, boundary)
        }
        Selection::Window {
            operation,
            before,
            after,
        } => {
            if before.is_none() && after.is_none() {
                return Err(QueryError::Invalid(
                    "a time-window comparison needs a moment: before, after, or both".into(),
                ));
            }
            let (before, after) = (
                before.or(*after).unwrap_or(0),
                after.or(*before).unwrap_or(0),
            );
            let summaries = store.traces_with_operation(
                &OperationFilter::named(operation.as_str()),
                None,
                WINDOW_RUNS * 2,
            )?;
            let runs: Vec<AnalyzedTrace> = load(store, &summaries)?
                .into_iter()
                .filter(|t| start(t) < before || start(t) >= after)
                .collect();
            if summaries.is_empty() {
                return Err(QueryError::UnknownOperation(unknown_operation(
                    store, operation,
                )?));
            }
            (operation, runs, before)
        }
    };
    let (a, b): (Vec<_>, Vec<_>) = runs.into_iter().partition(|t| start(t) < before);
    if a.is_empty() || b.is_empty() {
        return Err(QueryError::Invalid(format!(
            "one side is empty ({} run(s) before, {} after): move the boundary",
            a.len(),
            b.len()
        )));
    }
    let label = format!(
        "{}: {} earlier run(s) (A) vs {} later run(s) (B)",
        devtrace_model::recorded::name(operation),
        a.len(),
        b.len()
    );
    Ok(Sides { a, b, label })
}

/// Selects and compares.
pub fn compare_selection(
    store: &dyn Store,
    selection: &Selection,
) -> Result<LabelledComparison, QueryError> {
    let sides = select(store, selection)?;
    let ids = |traces: &[AnalyzedTrace]| traces.iter().map(|t| t.trace_id.to_hex()).collect();
    Ok(LabelledComparison {
        comparison: compare(&sides.a, &sides.b),
        a_traces: ids(&sides.a),
        b_traces: ids(&sides.b),
        what: sides.label,
    })
}

/// Traces attached to one run read at most.
pub const MAX_ATTACHED: usize = 100;

/// A run's trace with the spans of the traces attached to it (found by their
/// `devtrace.run.id`, among the traces that started during the run) added as further roots.
pub fn run_with_attached(store: &dyn Store, id: &str) -> Result<AnalyzedTrace, QueryError> {
    let run = one(store, id)?;
    let Some(root) = run.root() else {
        return Ok(run);
    };
    let (start, end) = (run.span(root).start_unix_nano, run.span(root).end_unix_nano);
    if run.span(root).attr(semconv::RUN_ID).is_none() {
        return Err(QueryError::Invalid(format!(
            "trace {} is not a `devtrace run` (its root has no {}); compare it as a trace instead",
            run.trace_id,
            semconv::RUN_ID
        )));
    }
    let attached = search(
        store,
        &TraceSearch {
            query: TraceQuery {
                since_unix_nano: Some(start),
                until_unix_nano: Some(end.max(start) + 1),
                limit: MAX_ATTACHED,
                ..Default::default()
            },
            run_id: Some(run.trace_id.to_hex()),
            ..Default::default()
        },
    )?;
    let mut spans = run.spans.clone();
    for summary in attached
        .traces
        .iter()
        .filter(|t| t.trace_id != run.trace_id)
    {
        if let Some(stored) = store.get_trace(summary.trace_id)? {
            spans.extend(stored.spans);
        }
    }
    Ok(AnalyzedTrace::new(run.trace_id, spans))
}

/// What a `devtrace run` is compared with: the latest run of the same command with the label
/// [`BaselineChoice::Labelled`] names, or the previous run of the same command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BaselineChoice<'a> {
    Previous,
    Labelled(&'a str),
}

/// A run compared with its baseline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineComparison {
    /// What the baseline is, in words: `the previous run` or `baseline "LABEL"`.
    pub against: String,
    pub baseline_trace_id: TraceId,
    /// The baseline (A) against the run (B).
    pub comparison: Comparison,
}

/// Runs of the same command read at most when looking for the baseline.
const BASELINE_CANDIDATES: usize = 50;

/// `run` (the trace of a `devtrace run` whose run span is named `name`) compared with the run
/// `choice` picks among the earlier runs of the same command; `None` when there is none.
pub fn against_baseline(
    store: &dyn Store,
    run: &AnalyzedTrace,
    name: &str,
    choice: BaselineChoice<'_>,
) -> Result<Option<BaselineComparison>, QueryError> {
    let candidates =
        store.traces_with_operation(&OperationFilter::named(name), None, BASELINE_CANDIDATES)?;
    for summary in candidates {
        if summary.trace_id == run.trace_id {
            continue;
        }
        let Some(stored) = store.get_trace(summary.trace_id)? else {
            continue;
        };
        let trace = AnalyzedTrace::new(summary.trace_id, stored.spans);
        let Some(root) = trace
            .spans
            .spans
            .iter()
            .position(|s| s.name == name && s.attr(semconv::RUN_ID).is_some())
        else {
            continue;
        };
        let label = trace
            .span(root)
            .attr(semconv::RUN_LABEL)
            .and_then(|v| v.as_str());
        let against = match choice {
            BaselineChoice::Labelled(wanted) if label != Some(wanted) => continue,
            BaselineChoice::Labelled(wanted) => format!("baseline {}", quote(wanted)),
            BaselineChoice::Previous => "the previous run".to_owned(),
        };
        return Ok(Some(BaselineComparison {
            against,
            baseline_trace_id: trace.trace_id,
            comparison: compare(std::slice::from_ref(&trace), std::slice::from_ref(run)),
        }));
    }
    Ok(None)
}

fn start(trace: &AnalyzedTrace) -> u64 {
    trace.root().map_or(0, |r| trace.span(r).start_unix_nano)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{store_with, trace};

    #[test]
    fn the_last_runs_split_in_halves_and_windows_split_at_an_instant() {
        let mut batches: Vec<_> = (1..=4).map(|n| trace(n, vec![], vec![])).collect();
        for b in &mut batches {
            b.spans[0].name = "work".into();
        }
        let (_dir, store) = store_with(batches);
        let last = compare_selection(
            &store,
            &Selection::Last {
                operation: "work".into(),
                last: 4,
            },
        )
        .unwrap();
        assert_eq!((last.a_traces.len(), last.b_traces.len()), (2, 2));
        assert_eq!(
            last.what,
            "\"work\": 2 earlier run(s) (A) vs 2 later run(s) (B)"
        );
        let window = select(
            &store,
            &Selection::Window {
                operation: "work".into(),
                before: Some(1_500),
                after: None,
            },
        )
        .unwrap();
        assert_eq!((window.a.len(), window.b.len()), (1, 3));
        let empty = select(
            &store,
            &Selection::Window {
                operation: "work".into(),
                before: Some(10),
                after: None,
            },
        )
        .err()
        .unwrap();
        assert!(empty.to_string().contains("one side is empty"), "{empty}");
        let unknown = select(
            &store,
            &Selection::Last {
                operation: "nope".into(),
                last: 4,
            },
        )
        .err()
        .unwrap();
        assert!(unknown.to_string().contains("no span named \"nope\""));
    }

    #[test]
    fn runs_are_compared_with_their_attached_traces() {
        use devtrace_model::{KeyValue, semconv};
        let run = |n: u32| {
            let mut t = trace(
                n,
                vec![KeyValue::new(semconv::RUN_ID, format!("{:032x}", 0))],
                vec![],
            );
            t.spans[0].attributes[0] = KeyValue::new(semconv::RUN_ID, t.spans[0].trace_id.to_hex());
            t.spans[0].end_unix_nano = t.spans[0].start_unix_nano + 900;
            t
        };
        let attached = |n: u32, to: &devtrace_model::SpanBatch, work_ns: u64| {
            let mut t = trace(
                n,
                vec![],
                vec![KeyValue::new(
                    semconv::RUN_ID,
                    to.spans[0].trace_id.to_hex(),
                )],
            );
            t.spans[0].name = "work".into();
            t.spans[0].start_unix_nano = to.spans[0].start_unix_nano + 100;
            t.spans[0].end_unix_nano = t.spans[0].start_unix_nano + work_ns;
            t
        };
        let (a, b) = (run(1), run(5));
        let batches = vec![
            attached(2, &a, 400),
            attached(6, &b, 100),
            a.clone(),
            b.clone(),
        ];
        let (_dir, store) = store_with(batches);
        let compared = compare_selection(
            &store,
            &Selection::Runs {
                a: a.spans[0].trace_id.to_hex(),
                b: b.spans[0].trace_id.to_hex(),
            },
        )
        .unwrap();
        let work = compared
            .comparison
            .operations
            .iter()
            .find(|o| o.operation == "work")
            .expect("the attached traces' spans are compared");
        assert_eq!((work.a.mean_nanos, work.b.mean_nanos), (400.0, 100.0));
        assert!(compared.what.starts_with("run "), "{}", compared.what);
        let not_a_run = select(
            &store,
            &Selection::Runs {
                a: a.spans[0].trace_id.to_hex(),
                b: trace(2, vec![], vec![]).spans[0].trace_id.to_hex(),
            },
        )
        .err()
        .unwrap();
        assert!(
            not_a_run.to_string().contains("is not a `devtrace run`"),
            "{not_a_run}"
        );
    }
}
