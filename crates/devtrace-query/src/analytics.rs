//! One operation across its recent runs, the `perf` view made visual: its breakdown, the
//! distribution of its durations, percentiles over time and the findings about it; the
//! findings about one trace as the findings list ranks them ([`findings_of_trace`]); and the
//! short duration series the traces list draws as sparklines.

use crate::operation::{OtherIdentity, choose};
use crate::scope::{QueryError, Scope, recent};
use crate::window::{Anchor, DEFAULT_WINDOW_NANOS, Window, default_window, with_default};
use devtrace_analyze::detectors::{Options, run_all_with};
use devtrace_analyze::perf::{OperationProfile, profile_operation, spans_of};
use devtrace_analyze::stats::{Bin, TimeBucket, histogram, percentiles_over_time};
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::{OperationFilter, TraceId};
use devtrace_store::{Store, StoreError, TraceQuery, TraceSummary};
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
    /// Findings about the operation or its direct children, as the findings list has them:
    /// the same detectors over the same traces ([`findings_list`] in the default window), so
    /// they rank, score and read the same on both pages.
    pub findings: Vec<WordedFinding>,
    /// The window the findings read (not the runs above: those are the operation's last
    /// ones); always the default window here.
    pub findings_window: Option<Window>,
    /// Traces the findings read.
    pub findings_traces_analysed: usize,
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
    about_operation(trace_findings(traces), profile)
}

fn about_operation(findings: Vec<Finding>, profile: &OperationProfile) -> Vec<Finding> {
    findings
        .into_iter()
        .filter(|f| {
            f.operation.as_deref().is_none_or(|o| {
                o == profile.operation || profile.children.iter().any(|c| c.name == o)
            })
        })
        .collect()
}

/// The findings list (`GET /api/v1/findings`, the web UI's /findings and every page that shows
/// findings across traces): the detectors over at most [`FINDINGS_TRACES`] traces of `scope`,
/// or of the default window when `scope` names no time (`window` says which), with only the
/// traces containing `operation` when it is given.
pub struct FindingsList {
    pub window: Option<Window>,
    pub traces_analysed: usize,
    pub findings: Vec<Finding>,
}

/// See [`FindingsList`]; `now` is the clock the default window ends at.
pub fn findings_list(
    store: &dyn Store,
    scope: Scope,
    now: u64,
    operation: Option<&OperationFilter>,
) -> Result<FindingsList, QueryError> {
    let (scope, window) = with_default(store, scope, now, operation)?;
    let traces = recent(store, scope, operation, FINDINGS_TRACES)?;
    Ok(FindingsList {
        window,
        traces_analysed: traces.len(),
        findings: trace_findings(&traces),
    })
}

/// Analytics of the operation `filter` names over the runs in `scope` (default: the last 20);
/// of the one [`choose`] picks when the name has several services or kinds. Its findings are
/// the findings list's at `now` (see [`OperationAnalytics::findings`]).
pub fn operation_analytics(
    store: &dyn Store,
    filter: &OperationFilter,
    scope: Scope,
    now: u64,
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
    let list = findings_list(store, Scope::default(), now, None)?;
    let findings = about_operation(list.findings, &profile);
    Ok(OperationAnalytics {
        operation: operation.name.clone(),
        traces_analysed: traces.len(),
        histogram: histogram(&durations, HISTOGRAM_BINS),
        over_time: percentiles_over_time(&points, TIME_BUCKETS),
        profile,
        other_identities: chosen.others,
        findings: findings.into_iter().map(WordedFinding::from).collect(),
        findings_window: list.window,
        findings_traces_analysed: list.traces_analysed,
    })
}

/// Traces the findings list (`GET /api/v1/findings`, the web UI's /findings) reads in its
/// default window at most: [`findings_of_trace`] reads the same.
pub const FINDINGS_TRACES: usize = 500;

/// The findings about one trace, as the findings list ranks them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FindingsOfTrace {
    pub trace_id: TraceId,
    /// The time the detectors read: the default window every face uses (the last hour, or the
    /// hour before the newest trace), or, for a trace outside it, the hour up to the trace's
    /// start (`note` says so).
    pub window: Window,
    pub traces_analysed: usize,
    /// Findings in the window, this trace's among them.
    pub findings_in_window: usize,
    /// The findings whose evidence includes this trace, in the window's order.
    pub findings: Vec<RankedFinding>,
}

/// A finding with its place in the window's ranking.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RankedFinding {
    /// 1 for the window's first finding.
    pub rank: usize,
    #[serde(flatten)]
    pub finding: WordedFinding,
}

/// The traces the findings about one trace are read from: the window and their summary rows,
/// listed without decoding a span. A server can keep [`window_findings`] of the same traces
/// for the next trace of the window.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceFindingsScope {
    pub trace_id: TraceId,
    pub window: Window,
    /// Oldest first or not: [`crate::scope::load`] puts them in time order.
    pub summaries: Vec<TraceSummary>,
}

/// The traces the findings about trace `trace_id` at `now` read: the findings list's (the
/// default window, at most [`FINDINGS_TRACES`], as [`findings_list`] reads them), so they rank,
/// score and word the same there and here. A trace the window does not hold (older, or a busy
/// hour's 500 newest left it out) is read with the hour of traces up to its start instead, and
/// the window says so.
pub fn trace_findings_scope(
    store: &dyn Store,
    trace_id: TraceId,
    now: u64,
) -> Result<TraceFindingsScope, QueryError> {
    let summary = store
        .trace_summary(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_hex()))?;
    let window = default_window(store, now, Anchor::Programs)?;
    // What `recent` lists for the findings list's default window.
    let in_window = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano: Some(window.since_unix_nano),
        limit: FINDINGS_TRACES,
        ..Default::default()
    })?;
    if in_window.iter().any(|s| s.trace_id == trace_id) {
        return Ok(TraceFindingsScope {
            trace_id,
            window,
            summaries: in_window,
        });
    }
    let start = summary.start_unix_nano;
    let around = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano: Some(start.saturating_sub(DEFAULT_WINDOW_NANOS)),
        until_unix_nano: Some(start.saturating_add(1)),
        limit: FINDINGS_TRACES,
        ..Default::default()
    })?;
    Ok(TraceFindingsScope {
        trace_id,
        window: hour_up_to(start, &window),
        summaries: around,
    })
}

/// Every finding of the scope's traces, ranked: the expensive part (spans decoded, detectors
/// run), the same for every trace of those traces.
pub fn window_findings(
    store: &dyn Store,
    scope: &TraceFindingsScope,
) -> Result<Vec<Finding>, QueryError> {
    Ok(trace_findings(&crate::scope::load(
        store,
        &scope.summaries,
    )?))
}

/// The findings about the scope's trace among `all`, the window's ([`window_findings`]), each
/// with its rank there.
pub fn findings_of_trace_in(scope: &TraceFindingsScope, all: &[Finding]) -> FindingsOfTrace {
    let findings = all
        .iter()
        .enumerate()
        .filter(|(_, f)| f.evidence.iter().any(|e| e.trace_id == scope.trace_id))
        .map(|(k, f)| RankedFinding {
            rank: k + 1,
            finding: f.clone().into(),
        })
        .collect();
    FindingsOfTrace {
        trace_id: scope.trace_id,
        window: scope.window.clone(),
        traces_analysed: scope.summaries.len(),
        findings_in_window: all.len(),
        findings,
    }
}

/// The findings about trace `trace_id` at `now` ([`trace_findings_scope`]): those of the
/// findings list whose evidence includes the trace.
pub fn findings_of_trace(
    store: &dyn Store,
    trace_id: TraceId,
    now: u64,
) -> Result<FindingsOfTrace, QueryError> {
    let scope = trace_findings_scope(store, trace_id, now)?;
    let all = window_findings(store, &scope)?;
    Ok(findings_of_trace_in(&scope, &all))
}

/// The window of a trace the default one (`outside`) does not hold: the hour up to its start.
fn hour_up_to(start: u64, outside: &Window) -> Window {
    Window {
        since_unix_nano: start.saturating_sub(DEFAULT_WINDOW_NANOS),
        newest_unix_nano: Some(start),
        description: "the hour up to this trace's start".into(),
        note: Some(format!(
            "this trace is outside the default window ({}); the findings read the hour of traces up to its start",
            outside.description
        )),
    }
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
        let analytics = operation_analytics(
            &store,
            &OperationFilter::named("work"),
            Scope::default(),
            u64::MAX,
        )
        .unwrap();
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

        let unknown = operation_analytics(
            &store,
            &OperationFilter::named("wrok"),
            Scope::default(),
            u64::MAX,
        )
        .unwrap_err();
        assert!(
            unknown.to_string().contains("did you mean \"work\""),
            "{unknown}"
        );
    }

    /// A trace of `calls` database queries made one after another under a root `job`, at
    /// `start` ns: an N+1 when there are enough of them.
    fn job(id: u8, start: u64, calls: u8) -> devtrace_model::SpanBatch {
        use crate::testing::span;
        use devtrace_model::{KeyValue, SpanKind};
        let mut batch = trace(1, vec![], vec![]);
        batch.spans = vec![span(id, 1, None, "job", start, start + 1_000_000)];
        for k in 0..calls {
            let at = start + u64::from(k) * 50_000;
            batch.spans.push(devtrace_model::Span {
                kind: SpanKind::Client,
                attributes: vec![
                    KeyValue::new("db.system", "postgresql"),
                    KeyValue::new("db.statement", "SELECT * FROM rows WHERE id = 1"),
                ],
                ..span(id, k + 2, Some(1), "SELECT row", at, at + 40_000)
            });
        }
        batch
    }

    #[test]
    fn a_traces_findings_are_the_findings_lists_with_its_rank_and_window() {
        const HOUR: u64 = DEFAULT_WINDOW_NANOS;
        let (_dir, store) = store_with(vec![
            job(0xa1, 10 * HOUR, 12),
            job(0xb2, 10 * HOUR + 2_000_000, 1),
            job(0xc3, 5 * HOUR, 12),
        ]);
        let now = 10 * HOUR + 60_000_000_000;
        let list = {
            let window = default_window(&store, now, Anchor::Programs).unwrap();
            let scope = Scope {
                last: None,
                since_unix_nano: Some(window.since_unix_nano),
            };
            trace_findings(&recent(&store, scope, None, FINDINGS_TRACES).unwrap())
        };
        let with_loop = findings_of_trace(&store, TraceId([0xa1; 16]), now).unwrap();
        assert_eq!(with_loop.window.description, "the last hour");
        assert_eq!(
            with_loop.traces_analysed, 2,
            "the window's traces, not the old one"
        );
        assert_eq!(with_loop.findings_in_window, list.len());
        let first = &with_loop.findings[0];
        assert_eq!(
            first.finding.finding,
            list[first.rank - 1],
            "the list's finding, as ranked there"
        );
        assert!(
            with_loop
                .findings
                .iter()
                .any(|f| f.finding.finding.kind.as_str() == "repeated_calls")
        );

        let plain = findings_of_trace(&store, TraceId([0xb2; 16]), now).unwrap();
        assert!(plain.findings.is_empty(), "{plain:?}");
        assert_eq!(plain.findings_in_window, list.len());

        // Five hours older than the window: the hour up to it, and the answer says so.
        let old = findings_of_trace(&store, TraceId([0xc3; 16]), now).unwrap();
        assert_eq!(old.window.description, "the hour up to this trace's start");
        assert_eq!(old.window.since_unix_nano, 4 * HOUR);
        assert!(
            old.window
                .note
                .as_deref()
                .unwrap()
                .contains("outside the default window (the last hour)")
        );
        assert_eq!(old.traces_analysed, 1);
        assert!(!old.findings.is_empty());

        let missing = findings_of_trace(&store, TraceId([0xdd; 16]), now).unwrap_err();
        assert!(missing.to_string().contains("dddd"), "{missing}");
    }
}
