//! The resolution of the clocks that stamped a trace's spans, and what it means for overlap.
//!
//! Some SDKs stamp a span's start with a coarse clock and its end with a fine one: the Node.js
//! SDK starts a span at `Date.now()` (whole milliseconds) and ends it at start + a
//! sub-millisecond duration, so a span may start up to 1 ms before it really did, and calls
//! made back to back appear to overlap by up to 1 ms. Read as concurrency, that hides an N+1
//! loop or a run of sequential calls.
//!
//! **Rule** (docs/analysis.md, "Clock resolution"). A resource's (a service's) start clock has
//! resolution *r* (1 ms, else 1 µs) when at least [`MIN_SPANS`] of its spans are stamped, every
//! start is a whole multiple of *r*, and some end is not (ends as coarse as starts cannot make
//! a false overlap). Two intervals are concurrent only when they overlap by more than the
//! coarser resolution of their two clocks; a nanosecond clock has resolution 0, so nothing
//! changes for it.

use devtrace_model::SpanBatch;

/// The fewest spans whose starts can show a coarse clock (three whole-millisecond starts of a
/// nanosecond clock happen by chance once in 10¹⁸).
pub const MIN_SPANS: usize = 3;

/// The resolutions a clock is tested for, coarsest first: 1 ms, 1 µs.
const RESOLUTIONS: [u64; 2] = [1_000_000, 1_000];

/// Per span of `batch` (by index): the resolution of the clock that stamped its start, in
/// nanoseconds (0 for a clock as fine as the format).
pub fn start_resolutions(batch: &SpanBatch) -> Vec<u64> {
    let per_resource: Vec<u64> = (0..batch.resources.len())
        .map(|r| {
            let spans: Vec<_> = batch
                .spans
                .iter()
                .filter(|s| s.resource as usize == r)
                .collect();
            if spans.len() < MIN_SPANS {
                return 0;
            }
            RESOLUTIONS
                .into_iter()
                .find(|&res| {
                    spans.iter().all(|s| s.start_unix_nano.is_multiple_of(res))
                        && spans.iter().any(|s| !s.end_unix_nano.is_multiple_of(res))
                })
                .unwrap_or(0)
        })
        .collect();
    batch
        .spans
        .iter()
        .map(|s| per_resource.get(s.resource as usize).copied().unwrap_or(0))
        .collect()
}

/// `intervals` with each start moved `tolerance` later (never past its end): what is left of an
/// overlap is the part longer than the clock can account for. Feed the result to
/// `detectors::calls::overlap`.
pub fn beyond_tolerance(intervals: &[(u64, u64)], tolerance: u64) -> Vec<(u64, u64)> {
    intervals
        .iter()
        .map(|&(s, e)| (s.saturating_add(tolerance).min(e), e))
        .collect()
}

/// Whether `a` and `b` overlap by more than `tolerance`.
pub fn concurrent(a: (u64, u64), b: (u64, u64), tolerance: u64) -> bool {
    let overlap = a.1.min(b.1).saturating_sub(a.0.max(b.0));
    a.0 < b.1 && b.0 < a.1 && overlap > tolerance
}

/// For each interval (`(start, end, resolution)`, end after start): whether it is
/// [`concurrent`] with another of them, with the coarser resolution of the two as tolerance.
///
/// Asking every pair costs k² (10^10 for a 100,000-wide fan-out). Resolutions are few (0,
/// 1 µs, 1 ms), so for each pair of a sibling's resolution and the pair's tolerance `t`, the
/// siblings longer than `t` by start with the two latest ends so far answer each interval with
/// one binary search: two intervals overlap by more than `t` when each ends more than `t` after
/// the other starts and both last more than `t`.
pub fn concurrent_with_another(intervals: &[(u64, u64, u64)]) -> Vec<bool> {
    let mut levels: Vec<u64> = intervals.iter().map(|i| i.2).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut out = vec![false; intervals.len()];
    for &theirs in &levels {
        for &tolerance in levels.iter().filter(|t| **t >= theirs) {
            let mut others: Vec<usize> = (0..intervals.len())
                .filter(|o| {
                    intervals[*o].2 == theirs && intervals[*o].1 - intervals[*o].0 > tolerance
                })
                .collect();
            others.sort_unstable_by_key(|o| intervals[*o].0);
            let latest = latest_two_ends(intervals, &others);
            for (i, &(start, end, own)) in intervals.iter().enumerate() {
                if out[i] || own.max(theirs) != tolerance || end - start <= tolerance {
                    continue;
                }
                let before =
                    others.partition_point(|o| intervals[*o].0.saturating_add(tolerance) < end);
                let Some(latest) = before.checked_sub(1).map(|b| latest[b]) else {
                    continue;
                };
                out[i] = latest
                    .into_iter()
                    .flatten()
                    .find(|(_, o)| *o != i)
                    .is_some_and(|(other_end, _)| other_end > start.saturating_add(tolerance));
            }
        }
    }
    out
}

/// For each prefix of `order`: its two latest ends, with their intervals.
fn latest_two_ends(
    intervals: &[(u64, u64, u64)],
    order: &[usize],
) -> Vec<[Option<(u64, usize)>; 2]> {
    let mut best: [Option<(u64, usize)>; 2] = [None, None];
    order
        .iter()
        .map(|&o| {
            let candidate = Some((intervals[o].1, o));
            if candidate > best[0] {
                best = [candidate, best[0]];
            } else if candidate > best[1] {
                best[1] = candidate;
            }
            best
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};

    const MS: u64 = 1_000_000;

    proptest::proptest! {
        #[test]
        fn concurrent_with_another_is_any_pair_concurrent(
            specs in proptest::collection::vec((0u64..50, 1u64..30, 0usize..3), 0..40)
        ) {
            let intervals: Vec<(u64, u64, u64)> = specs
                .iter()
                .map(|(s, len, r)| (*s, s + len, [0, 2, 5][*r]))
                .collect();
            let pairwise: Vec<bool> = (0..intervals.len())
                .map(|i| {
                    (0..intervals.len()).any(|o| {
                        let (a, b) = (intervals[i], intervals[o]);
                        o != i && concurrent((a.0, a.1), (b.0, b.1), a.2.max(b.2))
                    })
                })
                .collect();
            proptest::prop_assert_eq!(concurrent_with_another(&intervals), pairwise);
        }
    }

    #[test]
    fn whole_millisecond_starts_with_finer_ends_are_a_millisecond_clock() {
        // Node's SDK: starts at Date.now(), ends at start + a sub-ms duration.
        let node = batch(vec![
            span(1, None, "GET /x", 100 * MS, 160 * MS + 400_123),
            span(2, Some(1), "q", 101 * MS, 120 * MS + 812_345),
            span(3, Some(1), "q", 120 * MS, 140 * MS + 7),
        ]);
        assert_eq!(start_resolutions(&node), vec![MS; 3]);
        // A nanosecond clock, and whole-ms starts and ends alike, are taken as they are.
        let fine = batch(vec![
            span(1, None, "GET /x", 100 * MS + 17, 160 * MS + 400_123),
            span(2, Some(1), "q", 101 * MS, 120 * MS + 812_345),
            span(3, Some(1), "q", 120 * MS, 140 * MS + 7),
        ]);
        assert_eq!(start_resolutions(&fine), vec![0; 3]);
        let coarse = batch(vec![
            span(1, None, "GET /x", 100 * MS, 160 * MS),
            span(2, Some(1), "q", 101 * MS, 120 * MS),
            span(3, Some(1), "q", 120 * MS, 140 * MS),
        ]);
        assert_eq!(start_resolutions(&coarse), vec![0; 3]);
        // Two spans are too few to tell.
        let two = batch(vec![
            span(1, None, "GET /x", 100 * MS, 160 * MS + 3),
            span(2, Some(1), "q", 101 * MS, 120 * MS + 3),
        ]);
        assert_eq!(start_resolutions(&two), vec![0; 2]);
    }

    #[test]
    fn an_overlap_within_the_resolution_is_not_concurrency() {
        // The second call started when the first ended (120.81 ms), stamped 120 ms.
        let (a, b) = ((101 * MS, 120 * MS + 812_345), (120 * MS, 140 * MS));
        assert!(concurrent(a, b, 0));
        assert!(!concurrent(a, b, MS));
        assert!(concurrent((0, 50 * MS), (10 * MS, 40 * MS), MS));
        assert_eq!(beyond_tolerance(&[a, b], MS)[1], (121 * MS, 140 * MS));
        assert_eq!(beyond_tolerance(&[(0, 10)], MS), vec![(10, 10)]);
    }
}
