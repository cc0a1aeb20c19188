//! What one `devtrace run` did, read back from the store for the summary the command prints:
//! the program's spans (under the run span, and in the traces its SDK started without
//! continuing `TRACEPARENT`), errors, the slowest spans, the findings ranked as `insights` and
//! MCP rank them (the process's price table), and the comparison with its baseline run.

use crate::analytics::trace_findings;
use crate::comparison::{BaselineChoice, BaselineComparison, against_baseline};
use crate::runs::attached_traces;
use crate::scope::QueryError;
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::{Span, SpanId, TraceId};
use devtrace_store::{Store, StoreError};

/// Slowest spans a report lists.
const SLOWEST: usize = 3;

/// One `devtrace run`, as its summary shows it.
pub struct RunReport {
    pub trace_id: TraceId,
    pub run_span: Span,
    /// Spans of the program: every span of the run's trace but the run span, and every span of
    /// the attached traces (as `devtrace runs` counts them).
    pub spans: usize,
    pub errors: usize,
    /// The program's slowest spans (test cases, a flight window and BEAM processes' lives left
    /// out), slowest first:
    /// name and duration.
    pub slowest: Vec<(String, u64)>,
    /// The findings of the run's trace and its attached traces, ranked by impact.
    pub findings: Vec<Finding>,
    /// The traces the program's SDK started on its own, as recorded on the run span.
    pub attached: Vec<TraceId>,
    /// The run against its baseline, when there is one.
    pub baseline: Option<BaselineComparison>,
}

/// The report of the run whose run span is `run_span_id` in trace `trace_id`.
pub fn run_report(
    store: &dyn Store,
    trace_id: TraceId,
    run_span_id: SpanId,
    baseline: BaselineChoice<'_>,
) -> Result<RunReport, QueryError> {
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_hex()))?;
    let trace = AnalyzedTrace::new(trace_id, stored.spans);
    let run_index = trace
        .spans
        .spans
        .iter()
        .position(|s| s.span_id == run_span_id)
        .ok_or_else(|| QueryError::Invalid(format!("trace {trace_id} has no run span")))?;
    let run_span = trace.span(run_index).clone();
    let attached = attached_traces(std::slice::from_ref(&run_span))
        .into_iter()
        .filter_map(|id| {
            let id = store.resolve_trace_id(&id).ok()?;
            let stored = store.get_trace(id).ok().flatten()?;
            Some(AnalyzedTrace::new(id, stored.spans))
        });
    let analysed: Vec<AnalyzedTrace> = std::iter::once(trace).chain(attached).collect();
    let (trace, attached) = (&analysed[0], &analysed[1..]);
    let mut in_run: Vec<(&AnalyzedTrace, usize)> = (0..trace.spans.spans.len())
        .filter(|&i| i != run_index)
        .map(|i| (trace, i))
        .collect();
    for other in attached {
        in_run.extend((0..other.spans.spans.len()).map(|i| (other, i)));
    }
    let errors = in_run.iter().filter(|(t, i)| t.span(*i).is_error()).count();
    let mut slowest: Vec<(&AnalyzedTrace, usize)> = in_run
        .iter()
        .copied()
        // Test cases, a flight recorder's window and a BEAM process's life (its whole time,
        // mostly waiting in its loop): containers, not work.
        .filter(|(t, i)| {
            let name = &t.span(*i).name;
            !name.starts_with("test ")
                && name != devtrace_model::semconv::FLIGHT_WINDOW_SPAN
                && !devtrace_analyze::processes::is_life(t, *i)
        })
        .collect();
    slowest.sort_by_key(|(t, i)| std::cmp::Reverse(t.span(*i).duration_nanos()));
    slowest.truncate(SLOWEST);
    let baseline = against_baseline(store, trace, &run_span.name, baseline)?;
    Ok(RunReport {
        trace_id,
        spans: in_run.len(),
        errors,
        slowest: slowest
            .iter()
            .map(|(t, i)| (t.span(*i).name.clone(), t.span(*i).duration_nanos()))
            .collect(),
        findings: trace_findings(&analysed),
        attached: attached.iter().map(|t| t.trace_id).collect(),
        baseline,
        run_span,
    })
}
