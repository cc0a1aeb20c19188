//! One operation across its recent runs, the `perf` view made visual: its breakdown, the
//! distribution of its durations, percentiles over time and the findings about it; and the
//! short duration series the traces list draws as sparklines.

use crate::operation::{OtherIdentity, choose};
use crate::scope::{QueryError, Scope};
use devtrace_analyze::detectors::{Options, run_all_with};
use devtrace_analyze::perf::{OperationProfile, profile_operation, spans_of};
use devtrace_analyze::stats::{Bin, TimeBucket, histogram, percentiles_over_time};
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::OperationFilter;
use devtrace_store::{Store, StoreError};
use serde::Serialize;

/// Bars in a duration histogram.
pub const HISTOGRAM_BINS: usize = 24;
/// Points in a percentiles-over-time series at most.
pub const TIME_BUCKETS: usize = 30;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationAnalytics {
    pub operation: String,
    /// Traces read (each may hold several spans of the operation).
    pub traces_analysed: usize,
    /// The breakdown of one operation: the name with one service and kind (`profile.service`,
    /// `profile.span_kind`).
    pub profile: OperationProfile,
    /// Other operations of the same name (another service or kind), not in this answer.
    pub other_identities: Vec<OtherIdentity>,
    /// Durations of every span of the operation, nanoseconds.
    pub histogram: Vec<Bin>,
    /// Duration percentiles over the time the runs span.
    pub over_time: Vec<TimeBucket>,
    /// Findings about the operation or its direct children, ranked.
    pub findings: Vec<WordedFinding>,
}

/// A finding as a face shows it: every field of [`Finding`] and its impact in words, worded
/// once ([`crate::text::impact_text`]) so the web UI says what `insights` and MCP say.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WordedFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// The impact in its own units, then the score: "saves ≈ 45.0 ms per run in 2 of 2 runs of
    /// "report" (15 % of its time) · score 0.145".
    pub impact_text: String,
}

impl From<Finding> for WordedFinding {
    fn from(finding: Finding) -> Self {
        let impact_text = crate::text::impact_text(&finding);
        Self {
            finding,
            impact_text,
        }
    }
}

/// Every detector over `traces`, ranked, with the price table this process uses
/// ([`crate::sessions::tokens::prices`]: the config file's `[prices]` when the binary set it), so
/// the CLI, REST, MCP and `watch` put the same money on a token finding.
pub fn trace_findings(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    let options = Options {
        prices: crate::sessions::tokens::prices(),
    };
    run_all_with(traces, &options)
}

/// The findings of `traces` that concern `operation` or one of its direct children (or no
/// operation in particular), as `devtrace perf` shows them.
pub fn findings_for_operation(
    traces: &[AnalyzedTrace],
    profile: &OperationProfile,
) -> Vec<Finding> {
    trace_findings(traces)
        .into_iter()
        .filter(|f| {
            f.operation.as_deref().is_none_or(|o| {
                o == profile.operation || profile.children.iter().any(|c| c.name == o)
            })
        })
        .collect()
}

/// Analytics of the operation `filter` names over the runs in `scope` (default: the last 20);
/// of the one [`choose`] picks when the name has several services or kinds.
pub fn operation_analytics(
    store: &dyn Store,
    filter: &OperationFilter,
    scope: Scope,
) -> Result<OperationAnalytics, QueryError> {
    let chosen = choose(store, filter, scope, crate::scope::DEFAULT_LAST)?;
    let (traces, operation) = (&chosen.traces, &chosen.operation);
    let profile = profile_operation(traces, operation).ok_or_else(|| {
        QueryError::UnknownOperation(format!(
            "no span of {} in the selected traces",
            crate::text::quote(&operation.label())
        ))
    })?;
    let points: Vec<(u64, f64)> = traces
        .iter()
        .flat_map(|t| {
            spans_of(t, operation).map(move |i| {
                let span = t.span(i);
                (span.start_unix_nano, span.duration_nanos() as f64)
            })
        })
        .collect();
    let durations: Vec<f64> = points.iter().map(|p| p.1).collect();
    let findings = findings_for_operation(traces, &profile);
    Ok(OperationAnalytics {
        operation: operation.name.clone(),
        traces_analysed: traces.len(),
        histogram: histogram(&durations, HISTOGRAM_BINS),
        over_time: percentiles_over_time(&points, TIME_BUCKETS),
        profile,
        other_identities: chosen.others,
        findings: findings.into_iter().map(WordedFinding::from).collect(),
    })
}

/// Recent durations of one operation, for a sparkline.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DurationSeries {
    pub operation: String,
    /// Durations of the most recent traces containing the operation, oldest first,
    /// nanoseconds (the trace's duration: its root span's own).
    pub durations_ns: Vec<u64>,
}

/// The durations of the last `points` traces that contain a span named `operation`, read from
/// the trace summaries (no spans decoded).
pub fn duration_series(
    store: &dyn Store,
    operation: &str,
    points: usize,
) -> Result<DurationSeries, StoreError> {
    let mut summaries =
        store.traces_with_operation(&OperationFilter::named(operation), None, points)?;
    summaries.reverse();
    Ok(DurationSeries {
        operation: operation.to_owned(),
        durations_ns: summaries.iter().map(|s| s.duration_nanos()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{store_with, trace};

    #[test]
    fn analytics_bin_durations_and_series_read_summaries() {
        let mut batches: Vec<_> = (1..=4).map(|n| trace(n, vec![], vec![])).collect();
        for (k, b) in batches.iter_mut().enumerate() {
            b.spans[0].name = "work".into();
            b.spans[0].end_unix_nano = b.spans[0].start_unix_nano + 100 * (k as u64 + 1);
        }
        let (_dir, store) = store_with(batches);
        let analytics =
            operation_analytics(&store, &OperationFilter::named("work"), Scope::default()).unwrap();
        assert_eq!(analytics.traces_analysed, 4);
        assert_eq!(analytics.profile.duration.count, 4);
        let counts: usize = analytics.histogram.iter().map(|b| b.count).sum();
        assert_eq!(counts, 4);
        assert_eq!(
            (
                analytics.histogram[0].low,
                analytics.histogram.last().unwrap().high
            ),
            (100.0, 400.0)
        );
        assert_eq!(
            analytics.over_time.iter().map(|b| b.count).sum::<usize>(),
            4
        );

        let series = duration_series(&store, "work", 3).unwrap();
        assert_eq!(series.durations_ns, [200, 300, 400]);

        let unknown =
            operation_analytics(&store, &OperationFilter::named("wrok"), Scope::default())
                .unwrap_err();
        assert!(
            unknown.to_string().contains("did you mean \"work\""),
            "{unknown}"
        );
    }
}
