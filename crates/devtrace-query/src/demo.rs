//! What the journal demo's report says, computed here so `devtrace demo` only words it: the
//! original program's profile and findings (ranked as `insights` ranks them, with the process's
//! price table) and, with the fixed program's runs, the successful runs of each compared, next
//! to the saving the sequential-work finding predicted.

use crate::scope::{QueryError, load};
use devtrace_analyze::compare::Comparison;
use devtrace_analyze::perf::{OperationProfile, operation_identities, profile_operation};
use devtrace_analyze::{AnalyzedTrace, Finding, FindingKind};
use devtrace_store::Store;

/// The demo's report.
pub struct DemoReport {
    pub profile: OperationProfile,
    pub findings: Vec<Finding>,
    /// With the fixed program's runs.
    pub fixed: Option<FixedComparison>,
}

/// The original program's successful runs against the fixed program's.
pub struct FixedComparison {
    pub comparison: Comparison,
    /// The saving the sequential-work finding predicted per run, when one was made.
    pub predicted_nanos: Option<u64>,
    /// The measured saving per run (negative when the fixed runs were slower).
    pub measured_nanos: f64,
}

/// The report on the last `runs` traces of `operation`; `is_fixed` tells the fixed program's
/// runs from the original's.
pub fn demo_report(
    store: &dyn Store,
    operation: &str,
    runs: usize,
    is_fixed: impl Fn(&AnalyzedTrace) -> bool,
) -> Result<DemoReport, QueryError> {
    let filter = devtrace_model::OperationFilter::named(operation);
    let summaries = store.traces_with_operation(&filter, None, runs)?;
    let (original, fixed): (Vec<AnalyzedTrace>, Vec<AnalyzedTrace>) = load(store, &summaries)?
        .into_iter()
        .partition(|t| !is_fixed(t));
    let missing = || QueryError::Invalid(format!("the demo produced no {operation} spans"));
    let identity = operation_identities(&original, operation)
        .into_iter()
        .next()
        .ok_or_else(missing)?
        .0;
    let profile = profile_operation(&original, &identity).ok_or_else(missing)?;
    let findings = crate::analytics::trace_findings(&original);
    let fixed = (!fixed.is_empty()).then(|| {
        let comparison =
            devtrace_analyze::compare::compare(&succeeded(&original), &succeeded(&fixed));
        FixedComparison {
            predicted_nanos: findings
                .iter()
                .find(|f| f.kind == FindingKind::SequentialWork)
                .map(|f| f.saving_nanos),
            measured_nanos: -comparison.total.delta_nanos,
            comparison,
        }
    });
    Ok(DemoReport {
        profile,
        findings,
        fixed,
    })
}

/// The runs in which no span failed.
fn succeeded(traces: &[AnalyzedTrace]) -> Vec<AnalyzedTrace> {
    traces
        .iter()
        .filter(|t| !t.spans.spans.iter().any(|s| s.is_error()))
        .cloned()
        .collect()
}
