//! What every session answer starts from: a session's trace loaded and built, the session
//! detectors run over it (long outputs read whole from the blobs), its spans' text attributes,
//! and the `devtrace run` traces recorded while it ran.

use devtrace_analyze::detectors::session::{TokenAnalysis, run_all_analysed, token_analysis_with};
use devtrace_analyze::session::{RunFacts, SessionView};
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::{AnyValue, Span, TraceId, semconv};
use devtrace_store::{Store, StoreError, TraceQuery};

/// A session's findings and token analysis, the detectors reading long tool outputs whole
/// from `store`'s blobs ([`crate::blobs::whole_outputs`]).
pub(crate) fn analyse(
    store: &dyn Store,
    view: &SessionView,
    settings: &devtrace_analyze::detectors::session::Settings,
) -> (Vec<Finding>, TokenAnalysis) {
    let budget = settings.batchable.output_budget_bytes;
    let mut outputs = crate::blobs::whole_outputs(store, budget);
    let analysis = token_analysis_with(view, settings, &mut outputs);
    let findings = run_all_analysed(
        std::slice::from_ref(view),
        std::slice::from_ref(&analysis),
        settings,
    );
    (findings, analysis)
}

pub(super) fn load(
    store: &dyn Store,
    trace_id: TraceId,
) -> Result<Option<AnalyzedTrace>, StoreError> {
    Ok(store
        .get_trace(trace_id)?
        .map(|stored| AnalyzedTrace::new(trace_id, stored.spans)))
}

pub(super) fn text(span: &Span, key: &str) -> Option<String> {
    span.attr(key)
        .and_then(AnyValue::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Recorded runs whose time overlaps [from, to], with what linking needs.
pub(super) fn runs_between(
    store: &dyn Store,
    from: u64,
    to: u64,
) -> Result<Vec<(RunFacts, Option<i64>)>, StoreError> {
    let summaries = store.list_traces(&TraceQuery {
        runs_only: true,
        since_unix_nano: Some(from.saturating_sub(3_600_000_000_000)),
        until_unix_nano: Some(to),
        limit: 1_000,
        ..Default::default()
    })?;
    let mut runs = Vec::new();
    for summary in summaries.iter().filter(|s| s.end_unix_nano >= from) {
        let Some(stored) = store.get_trace(summary.trace_id)? else {
            continue;
        };
        let Some(root) = stored
            .spans
            .spans
            .iter()
            .find(|s| s.parent_span_id.is_none() && s.attr(semconv::RUN_ID).is_some())
        else {
            continue;
        };
        runs.push((
            RunFacts {
                trace_id: summary.trace_id,
                command: text(root, semconv::RUN_COMMAND).unwrap_or_else(|| root.name.clone()),
                cwd: text(root, semconv::RUN_CWD),
                start: root.start_unix_nano,
                end: root.end_unix_nano,
            },
            root.attr(semconv::RUN_EXIT_CODE).and_then(AnyValue::as_i64),
        ));
    }
    Ok(runs)
}
