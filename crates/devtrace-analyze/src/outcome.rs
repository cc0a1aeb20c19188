//! Durations split by outcome. The calls of an operation that failed and those that succeeded
//! are two populations (a timeout is not a slow success): as soon as any call failed, their
//! durations are summarised apart and said apart ("124 ms when it succeeds, 503 ms when it
//! fails (1 of 3)"), never as one mean of both. Every typical duration devtrace states (perf,
//! the overview's ranking, the findings' "each") goes through [`split`] and [`typical`].

use crate::finding::human_duration;
use crate::stats::{Summary, summarize};
use serde::Serialize;

/// Means of successes and failures this close (a share of the larger) are one duration.
pub const SAME_WITHIN: f64 = 0.05;

/// The durations of the calls that succeeded and of those that failed, apart.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ByOutcome {
    /// Calls that did not fail (status ok or unset), nanoseconds.
    pub ok: Summary,
    /// Calls that failed (error status), nanoseconds.
    pub failed: Summary,
}

/// One call for [`split`]: its duration in nanoseconds and whether it failed.
pub type Call = (u64, bool);

/// Spans as calls: each one's own duration and whether it failed.
pub fn calls_of<'a>(spans: impl IntoIterator<Item = &'a devtrace_model::Span>) -> Vec<Call> {
    spans
        .into_iter()
        .map(|s| (s.duration_nanos(), s.is_error()))
        .collect()
}

/// The calls' durations by outcome, or `None` when none failed (one summary says it all).
pub fn split(calls: &[Call]) -> Option<ByOutcome> {
    if !calls.iter().any(|(_, failed)| *failed) {
        return None;
    }
    let of = |failed: bool| -> Vec<f64> {
        calls
            .iter()
            .filter(|c| c.1 == failed)
            .map(|c| c.0 as f64)
            .collect()
    };
    Some(ByOutcome {
        ok: summarize(&of(false)),
        failed: summarize(&of(true)),
    })
}

/// How long a call typically takes, by mean: "3.1 ms each" when none failed; "124.0 ms when it
/// succeeds, 503.0 ms when it fails (1 of 3)" when some did; "503.0 ms each (all 3 failed)"
/// when all did. `None` for no calls.
pub fn typical(calls: &[Call]) -> Option<String> {
    if calls.is_empty() {
        return None;
    }
    let mean = |s: &Summary| human_duration(s.mean.round() as u64);
    Some(match split(calls) {
        None => {
            let all: Vec<f64> = calls.iter().map(|c| c.0 as f64).collect();
            format!("{} each", mean(&summarize(&all)))
        }
        Some(by) if by.ok.count == 0 => {
            format!("{} each (all {} failed)", mean(&by.failed), by.failed.count)
        }
        Some(by) => described(&by),
    })
}

/// "124.0 ms when it succeeds, 503.0 ms when it fails (1 of 3)": both means, and how many of
/// the calls failed. When the two means are within [`SAME_WITHIN`] of each other they do not
/// differ, and one is said with the failures still counted: "1.00 s each (2 of 4 failed)".
pub fn described(by: &ByOutcome) -> String {
    let mean = |nanos: f64| human_duration(nanos.round() as u64);
    let total = by.ok.count + by.failed.count;
    let (ok, failed) = (by.ok.mean, by.failed.mean);
    if (ok - failed).abs() <= SAME_WITHIN * ok.max(failed) {
        let all = (ok * by.ok.count as f64 + failed * by.failed.count as f64) / total as f64;
        return format!("{} each ({} of {total} failed)", mean(all), by.failed.count);
    }
    format!(
        "{} when it succeeds, {} when it fails ({} of {total})",
        mean(ok),
        mean(failed),
        by.failed.count
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_timeout_among_successes_is_said_apart_never_blended() {
        let calls = [(124 * MS, false), (503 * MS, true), (124 * MS, false)];
        let by = split(&calls).unwrap();
        assert_eq!((by.ok.count, by.ok.mean), (2, (124 * MS) as f64));
        assert_eq!((by.failed.count, by.failed.mean), (1, (503 * MS) as f64));
        assert_eq!(
            typical(&calls).unwrap(),
            "124.0 ms when it succeeds, 503.0 ms when it fails (1 of 3)"
        );
    }

    #[test]
    fn one_outcome_is_one_mean() {
        let ok = [(3 * MS, false), (5 * MS, false)];
        assert_eq!(split(&ok), None);
        assert_eq!(typical(&ok).unwrap(), "4.0 ms each");
        let failed = [(500 * MS, true), (502 * MS, true)];
        assert_eq!(typical(&failed).unwrap(), "501.0 ms each (all 2 failed)");
        assert_eq!(typical(&[]), None);
    }

    #[test]
    fn means_that_read_the_same_are_said_once_with_the_failures_counted() {
        let calls = [(1_000 * MS, false), (1_001 * MS, true), (999 * MS, false)];
        assert_eq!(typical(&calls).unwrap(), "1.00 s each (1 of 3 failed)");
    }
}
