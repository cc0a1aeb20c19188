//! Regressions: a root operation that got slower in its latest runs.
//!
//! **Rule.** Each root span that did not fail is one run of its operation (its name). A failed
//! run is left out: it takes another path, often far shorter (a request refused before its
//! work), so mixing the two would read a change in how often the operation fails as a change
//! in its speed; failures are `recurring_error`'s and `failure_correlation`'s. Runs are put in
//! time order (by start). The last [`Thresholds::recent_runs`] are the recent sample, the earlier ones
//! the baseline, which needs at least [`Thresholds::min_baseline_runs`]. A regression is
//! reported when the two-sided Mann–Whitney U test ([`mann_whitney`]) gives
//! p < [`Thresholds::max_p_value`] *and* the recent median is at least
//! [`Thresholds::min_slowdown`] above the baseline median. Both are needed: the test alone
//! flags tiny but consistent shifts, the ratio alone flags noise.
//!
//! **Saving model.** Getting back to the baseline saves `recent median − baseline median` per
//! run; `occurrences` is the number of recent runs.
//!
//! **Does not fire on** operations with too few runs (fewer than `recent_runs +
//! min_baseline_runs`), small slowdowns (below the ratio, however consistent), noisy
//! differences (not significant), speed-ups, or operations whose baseline median is zero.

use crate::errors::is_error_span;
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::stats::{mann_whitney, percentile};
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::{SpanId, TraceId};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// How many of the latest runs form the recent sample. Default 5: enough for the rank test
    /// to reach p < 0.05 when every recent run is slower than the baseline (5 against 5 gives
    /// p ≈ 0.012 at best), few enough to notice a regression soon after it lands.
    pub recent_runs: usize,
    /// Fewest earlier runs needed as a baseline. Default 5: fewer cannot separate a change from
    /// the operation's normal spread.
    pub min_baseline_runs: usize,
    /// Largest p-value of the Mann–Whitney U test (two-sided) that counts as a real difference.
    /// Default 0.05, the conventional level, as `compare` uses.
    pub max_p_value: f64,
    /// Smallest slowdown of the recent median over the baseline median, as a fraction.
    /// Default 0.2 (20 %): smaller shifts are within what machine load and caches do to a
    /// local run, and are not worth an investigation.
    pub min_slowdown: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            recent_runs: 5,
            min_baseline_runs: 5,
            max_p_value: 0.05,
            min_slowdown: 0.2,
        }
    }
}

/// One run: where it is and how long it took.
struct Run {
    start: u64,
    trace_id: TraceId,
    span_id: SpanId,
    duration: u64,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_operation: BTreeMap<&str, Vec<Run>> = BTreeMap::new();
    for trace in traces {
        for &root in &trace.tree.roots {
            let span = trace.span(root);
            if is_error_span(span) {
                continue;
            }
            by_operation
                .entry(span.name.as_str())
                .or_default()
                .push(Run {
                    start: span.start_unix_nano,
                    trace_id: trace.trace_id,
                    span_id: span.span_id,
                    duration: span.duration_nanos(),
                });
        }
    }
    by_operation
        .into_iter()
        .filter_map(|(operation, mut runs)| {
            runs.sort_by_key(|r| (r.start, r.trace_id, r.span_id));
            regression(operation, &runs, thresholds)
        })
        .collect()
}

fn regression(operation: &str, runs: &[Run], thresholds: &Thresholds) -> Option<Finding> {
    let recent_count = thresholds.recent_runs.max(2);
    if runs.len() < recent_count + thresholds.min_baseline_runs.max(2) {
        return None;
    }
    let (baseline, recent) = runs.split_at(runs.len() - recent_count);
    let durations = |runs: &[Run]| runs.iter().map(|r| r.duration as f64).collect::<Vec<_>>();
    let (baseline_d, recent_d) = (durations(baseline), durations(recent));
    let baseline_median = percentile(&baseline_d, 50.0);
    let recent_median = percentile(&recent_d, 50.0);
    if baseline_median <= 0.0 || recent_median < baseline_median * (1.0 + thresholds.min_slowdown) {
        return None;
    }
    let test = mann_whitney(&recent_d, &baseline_d)?;
    if test.p_value >= thresholds.max_p_value {
        return None;
    }
    let slowdown = recent_median / baseline_median - 1.0;
    let saving = (recent_median - baseline_median).round() as u64;
    let (recent_ns, baseline_ns) = (recent_median.round() as u64, baseline_median.round() as u64);
    let p = if test.p_value < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {:.3}", test.p_value)
    };
    let title = format!(
        "{} is {:.0} % slower in its last {} runs (median {} vs {} over {} earlier runs, {p})",
        devtrace_model::recorded::name(operation),
        slowdown * 100.0,
        recent.len(),
        human_duration(recent_ns),
        human_duration(baseline_ns),
        baseline.len(),
    );
    // The first slow run against the last run before it: where the change should show.
    let first_slow = &recent[0];
    let last_fast = &baseline[baseline.len() - 1];
    let recommendation = format!(
        "find what changed between the last run at the old speed and the first slow one \
         (devtrace compare {} {}); back at the baseline, each run saves ≈ {}",
        short_id(last_fast.trace_id),
        short_id(first_slow.trace_id),
        human_duration(saving),
    );
    let numbers = BTreeMap::from([
        ("recent_median_nanos".to_owned(), recent_median),
        ("baseline_median_nanos".to_owned(), baseline_median),
        ("slowdown".to_owned(), slowdown),
        ("p_value".to_owned(), test.p_value),
        ("u".to_owned(), test.u),
        ("recent_runs".to_owned(), recent.len() as f64),
        ("baseline_runs".to_owned(), baseline.len() as f64),
    ]);
    Some(Finding {
        kind: FindingKind::Regression,
        operation: Some(operation.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::Regression.as_str(), operation]),
        saving_nanos: saving,
        occurrences: recent.len() as u64,
        numbers,
        evidence: recent
            .iter()
            .take(MAX_EVIDENCE)
            .map(|r| Evidence {
                trace_id: r.trace_id,
                span_ids: vec![r.span_id],
            })
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    })
}

/// The first 8 hex digits of a trace id, as the CLI accepts for a unique prefix.
fn short_id(id: TraceId) -> String {
    id.to_hex().chars().take(8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};

    const MS: u64 = 1_000_000;
    const MINUTE: u64 = 60_000_000_000;

    /// One run of `checkout` per duration (in ms), a minute apart, in trace order 1, 2, …
    fn runs(durations_ms: &[u64]) -> Vec<AnalyzedTrace> {
        durations_ms
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                let start = i as u64 * MINUTE;
                let n = i as u8 + 1;
                AnalyzedTrace::new(
                    TraceId([n; 16]),
                    batch(vec![span(n, None, "checkout", start, start + ms * MS)]),
                )
            })
            .collect()
    }

    /// 20 earlier runs around 298 ms (their median).
    fn baseline_20() -> Vec<u64> {
        vec![
            298, 285, 310, 294, 302, 280, 298, 296, 320, 299, 292, 306, 298, 290, 315, 297, 304,
            295, 300, 298,
        ]
    }

    #[test]
    fn a_clear_slowdown_fires_with_its_numbers() {
        let mut durations = baseline_20();
        durations.extend([405, 420, 412, 398, 430]);
        let mut traces = runs(&durations);
        traces.reverse(); // the input order does not matter: runs are ordered by start time
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        let baseline: Vec<f64> = baseline_20().iter().map(|ms| (ms * MS) as f64).collect();
        let recent: Vec<f64> = [405, 420, 412, 398, 430]
            .iter()
            .map(|ms| (ms * MS) as f64)
            .collect();
        let baseline_median = percentile(&baseline, 50.0);
        assert_eq!(baseline_median, (298 * MS) as f64);
        let p = mann_whitney(&recent, &baseline).unwrap().p_value;
        assert_eq!(f.kind, FindingKind::Regression);
        assert_eq!(f.operation.as_deref(), Some("checkout"));
        assert_eq!(f.saving_nanos, (412 - 298) * MS);
        assert_eq!(f.occurrences, 5);
        assert_eq!(f.numbers["p_value"], p);
        assert_eq!(f.numbers["baseline_runs"], 20.0);
        assert_eq!(
            f.title,
            format!(
                "\"checkout\" is 38 % slower in its last 5 runs (median {} vs {} over 20 earlier \
                 runs, p < 0.001)",
                human_duration(412 * MS),
                human_duration(298 * MS)
            )
        );
        let evidence: Vec<TraceId> = f.evidence.iter().map(|e| e.trace_id).collect();
        assert_eq!(
            evidence,
            (21..=25).map(|n| TraceId([n; 16])).collect::<Vec<_>>()
        );
        assert_eq!(f.evidence[0].span_ids, [SpanId([21; 8])]);
        assert!(
            f.recommendation
                .contains("(devtrace compare 14141414 15151515)"),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn a_moderate_p_value_is_shown_to_three_places() {
        // 5 against 5, every recent run slower: U = 0, p ≈ 0.012.
        let f = &detect(
            &runs(&[100, 101, 102, 103, 104, 200, 201, 202, 203, 204]),
            &Thresholds::default(),
        )[0];
        assert!(
            f.title.ends_with("over 5 earlier runs, p = 0.012)"),
            "{}",
            f.title
        );
        assert_eq!(f.saving_nanos, 100 * MS);
    }

    #[test]
    fn too_few_runs_stay_silent() {
        // 4 baseline runs: not enough, however large the jump.
        let traces = runs(&[100, 101, 102, 103, 400, 401, 402, 403, 404]);
        assert!(detect(&traces, &Thresholds::default()).is_empty());
        assert!(detect(&traces[..1], &Thresholds::default()).is_empty());
        assert!(detect(&[], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_five_percent_slowdown_stays_silent_even_when_consistent() {
        let mut durations = vec![100; 20];
        durations.extend([105; 5]);
        let baseline = vec![100.0; 20];
        let recent = vec![105.0; 5];
        assert!(mann_whitney(&recent, &baseline).unwrap().p_value < 0.05);
        assert!(detect(&runs(&durations), &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_noisy_difference_stays_silent() {
        let baseline = [100, 300, 150, 400, 120, 350, 110, 380];
        let recent = [100, 400, 290, 120, 380];
        let as_f64 = |v: &[u64]| v.iter().map(|x| *x as f64).collect::<Vec<_>>();
        // The medians differ by more than 20 %, but the test cannot tell it from noise.
        assert!(percentile(&as_f64(&recent), 50.0) >= 1.2 * percentile(&as_f64(&baseline), 50.0));
        assert!(
            mann_whitney(&as_f64(&recent), &as_f64(&baseline))
                .unwrap()
                .p_value
                >= 0.05
        );
        let durations: Vec<u64> = baseline.iter().chain(&recent).copied().collect();
        assert!(detect(&runs(&durations), &Thresholds::default()).is_empty());
    }

    #[test]
    fn failed_runs_are_not_runs_of_its_speed() {
        // Fast failures among the earlier runs and none among the latest: the medians of all
        // runs differ by 90 %, yet the runs that did the work took 5 % longer, no more.
        let mut durations = vec![5, 100, 5, 5, 101, 5, 99, 5, 5, 100, 5, 102, 5, 101];
        durations.extend([105, 106, 104, 105, 107]);
        let mut traces = runs(&durations);
        for trace in traces
            .iter_mut()
            .filter(|t| t.spans.spans[0].duration_nanos() == 5 * MS)
        {
            trace.spans.spans[0].status.code = devtrace_model::StatusCode::Error;
        }
        let traces: Vec<AnalyzedTrace> = traces
            .into_iter()
            .map(|t| AnalyzedTrace::new(t.trace_id, t.spans))
            .collect();
        assert!(detect(&traces, &Thresholds::default()).is_empty());
        // Read as runs of its speed, they would be a regression.
        assert_eq!(detect(&runs(&durations), &Thresholds::default()).len(), 1);
    }

    #[test]
    fn a_speed_up_stays_silent() {
        let mut durations = vec![400; 10];
        durations.extend([100, 101, 102, 103, 104]);
        assert!(detect(&runs(&durations), &Thresholds::default()).is_empty());
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut traces = runs(&[0; 12]);
        traces[11].spans.spans[0].end_unix_nano = 0; // ends before it starts
        let traces: Vec<AnalyzedTrace> = traces
            .into_iter()
            .map(|t| AnalyzedTrace::new(t.trace_id, t.spans))
            .collect();
        assert!(detect(&traces, &Thresholds::default()).is_empty());
    }
}
