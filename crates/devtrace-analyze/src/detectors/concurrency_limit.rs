//! Bounded concurrency: a fan-out of sibling calls that overlap but never exceed k in flight —
//! the shape of a worker pool, a semaphore or a connection pool of size k.
//!
//! **Rule.** Under one parent span, at least [`Thresholds::min_calls`] successful outbound
//! sibling calls with the same name and template (grouped as `repeated_calls` groups
//! them) where the most in flight at once, k, is at least 2 and less than the number of calls,
//! and k calls are in flight for at least [`Thresholds::min_time_at_limit`] of the phase (first
//! start to last end): the limit is what paces the work, not the calls' own arrival.
//!
//! **Start jitter.** Real clients do not start a pooled call the instant a slot frees: the next
//! call's span starts a little after the previous one ended, or a little before (the pool slot
//! is released before the client span is closed). So the in-flight count is read with a
//! tolerance of a quarter of the median call's duration: k is the largest count held for a
//! continuous stretch of at least the tolerance (an instant at k + 1 is two spans' edges
//! touching, not a larger pool), and a dip below k shorter than the tolerance between two
//! stretches at k is a slot being refilled, and counts as time at the limit.
//!
//! **Estimate.** With the calls' own durations, started in their order whenever a slot frees
//! (list scheduling, what a pool does), the phase would take [`super::calls::makespan`] with a
//! larger limit: one slot per call (unbounded) gives the longest call; twice the limit is shown
//! too. The saving per run is the observed phase minus the unbounded estimate — what raising
//! the limit could give at most, if whatever the calls go to can take the load. It is never
//! presented as batching, and never as the sum of the calls: they already overlap.
//!
//! **Does not fire on** calls that never overlap (that is an N+1 loop), calls that all run at
//! once (nothing to gain from a larger limit), too few calls, a limit that is rarely reached
//! (calls that merely arrive staggered), or a saving below [`Thresholds::min_saving_share`] of
//! the parent.

use super::calls::{
    Claims, Overlap, evidence_per_trace, format_count, makespan, median, outbound_groups, root_name,
};
use crate::call::Template;
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Finding, FindingKind};
use devtrace_model::SpanId;
use devtrace_model::recorded::name as q;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Fewest calls in the fan-out: 4 (a limit of 2 or 3 must bind at least once).
    pub min_calls: usize,
    /// Share of the phase during which the limit is reached: 0.5.
    pub min_time_at_limit: f64,
    /// Smallest saving (phase − unbounded estimate) as a share of the parent: 0.05.
    pub min_saving_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_calls: 4,
            min_time_at_limit: 0.5,
            min_saving_share: 0.05,
        }
    }
}

#[derive(Debug)]
struct Pool {
    trace: usize,
    parent_id: SpanId,
    parent_nanos: u64,
    call_ids: Vec<SpanId>,
    limit: usize,
    phase: u64,
    doubled: u64,
    unbounded: u64,
    calls_sum: u64,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    detect_claiming(traces, thresholds).0
}

/// [`detect`], and the calls its findings account for.
pub fn detect_claiming(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
) -> (Vec<Finding>, Claims) {
    let mut by_subject: BTreeMap<(String, String, String, Template), Vec<Pool>> = BTreeMap::new();
    let mut claims = Claims::default();
    for group in outbound_groups(traces, thresholds.min_calls.max(3)) {
        let trace = &traces[group.trace];
        let intervals: Vec<(u64, u64)> = group
            .calls
            .iter()
            .map(|c| (trace.span(*c).start_unix_nano, trace.span(*c).end_unix_nano))
            .collect();
        let durations: Vec<u64> = group
            .calls
            .iter()
            .map(|c| trace.span(*c).duration_nanos())
            .collect();
        let tolerance = median(&mut durations.clone()) / JITTER_TOLERANCE_DIVISOR;
        let Some(o) = sustained_limit(&intervals, tolerance) else {
            continue;
        };
        let n = group.calls.len();
        if o.max_in_flight < 2 || o.max_in_flight >= n || o.phase_nanos == 0 {
            continue;
        }
        if (o.at_max_nanos as f64) < thresholds.min_time_at_limit * o.phase_nanos as f64 {
            continue;
        }
        let unbounded = makespan(&durations, n);
        let doubled = makespan(&durations, (o.max_in_flight * 2).min(n));
        let parent_nanos = trace.span(group.parent).duration_nanos();
        let saving = o.phase_nanos.saturating_sub(unbounded);
        if saving == 0 || (saving as f64) < thresholds.min_saving_share * parent_nanos as f64 {
            continue;
        }
        for &c in &group.calls {
            claims.claim(group.trace, c);
        }
        by_subject
            .entry((
                root_name(trace).to_owned(),
                trace.span(group.parent).name.clone(),
                group.name.clone(),
                group.template.clone(),
            ))
            .or_default()
            .push(Pool {
                trace: group.trace,
                parent_id: trace.span(group.parent).span_id,
                parent_nanos,
                call_ids: group.calls.iter().map(|c| trace.span(*c).span_id).collect(),
                limit: o.max_in_flight,
                phase: o.phase_nanos,
                doubled,
                unbounded,
                calls_sum: durations.iter().sum(),
            });
    }
    let findings = by_subject
        .into_iter()
        .map(|((_, parent, name, template), pools)| {
            finding(traces, &parent, &name, &template, &pools)
        })
        .collect();
    (findings, claims)
}

/// The start-jitter tolerance is the median call's duration divided by this.
const JITTER_TOLERANCE_DIVISOR: u64 = 4;

/// How many calls were in flight, read with a tolerance for start jitter (see the module
/// documentation): `max_in_flight` is the largest count held for a continuous stretch of at
/// least `tolerance`, `at_max_nanos` the time at or above it, with dips shorter than
/// `tolerance` between two such stretches counted in. `None` when no call has a length.
fn sustained_limit(intervals: &[(u64, u64)], tolerance: u64) -> Option<Overlap> {
    let mut points: Vec<(u64, i64)> = intervals
        .iter()
        .filter(|(s, e)| s < e)
        .flat_map(|&(s, e)| [(s, 1), (e, -1)])
        .collect();
    // Ends before starts at the same instant: back-to-back calls do not overlap.
    points.sort_unstable();
    let (first, end) = (points.first()?.0, points.last()?.0);
    // The depth between consecutive points: (from, to, calls in flight).
    let mut segments: Vec<(u64, u64, i64)> = Vec::new();
    let (mut depth, mut last) = (0i64, first);
    for (t, delta) in points {
        if t > last {
            segments.push((last, t, depth));
        }
        last = t;
        depth += delta;
    }
    // Continuous stretches with at least `d` calls in flight.
    let stretches = |d: i64| -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &(from, to, _) in segments.iter().filter(|s| s.2 >= d) {
            match out.last_mut() {
                Some(open) if open.1 == from => open.1 = to,
                _ => out.push((from, to)),
            }
        }
        out
    };
    let deepest = segments.iter().map(|s| s.2).max()?;
    let limit = (1..=deepest)
        .rev()
        .find(|d| stretches(*d).iter().any(|(s, e)| e - s >= tolerance.max(1)))?;
    let at_limit = stretches(limit);
    let held: u64 = at_limit.iter().map(|(s, e)| e - s).sum();
    let refills: u64 = at_limit
        .windows(2)
        .map(|w| w[1].0 - w[0].1)
        .filter(|gap| *gap < tolerance)
        .sum();
    Some(Overlap {
        max_in_flight: limit as usize,
        at_max_nanos: held + refills,
        busy_nanos: segments.iter().filter(|s| s.2 > 0).map(|s| s.1 - s.0).sum(),
        phase_nanos: end - first,
    })
}

fn finding(
    traces: &[AnalyzedTrace],
    parent: &str,
    name: &str,
    template: &Template,
    pools: &[Pool],
) -> Finding {
    // Per run: phase, estimates and saving summed over the parent's instances.
    let mut per_trace: BTreeMap<usize, (u64, u64, u64, u64)> = BTreeMap::new();
    for p in pools {
        let e = per_trace.entry(p.trace).or_default();
        e.0 += p.phase;
        e.1 += p.doubled;
        e.2 += p.unbounded;
        e.3 += p.phase.saturating_sub(p.unbounded);
    }
    let runs = per_trace.len() as u64;
    let mid = |f: fn(&(u64, u64, u64, u64)) -> u64| {
        median(&mut per_trace.values().map(f).collect::<Vec<_>>())
    };
    let (phase, doubled, unbounded, saving) =
        (mid(|v| v.0), mid(|v| v.1), mid(|v| v.2), mid(|v| v.3));
    let mut limits: Vec<u64> = pools.iter().map(|p| p.limit as u64).collect();
    let limit = median(&mut limits) as usize;
    let calls_per_pool =
        pools.iter().map(|p| p.call_ids.len()).sum::<usize>() as f64 / pools.len().max(1) as f64;
    let calls_sum = pools.iter().map(|p| p.calls_sum).sum::<u64>() / pools.len().max(1) as u64;
    let repeated = if pools.len() as u64 > runs {
        format!(
            " ({} times per run)",
            format_count(pools.len() as f64 / runs.max(1) as f64)
        )
    } else {
        String::new()
    };
    let title = format!(
        "{} runs {} calls of {} at most {limit} at a time{repeated}: {} for the phase, where \
         one slot per call would take ≈ {}",
        q(parent),
        format_count(calls_per_pool),
        template.display(name),
        human_duration(phase),
        human_duration(unbounded),
    );
    let recommendation = format!(
        "a pool, semaphore or connection limit of {limit} paces these calls: raise it if what \
         they call can take the load (with {}: ≈ {}; one per call: ≈ {}), saving up to ≈ {} \
         per run — they already overlap, so batching or summing their times would not describe it",
        (limit * 2).min(calls_per_pool.round() as usize),
        human_duration(doubled),
        human_duration(unbounded),
        human_duration(saving),
    );
    let numbers = BTreeMap::from([
        ("limit".to_owned(), limit as f64),
        ("calls".to_owned(), calls_per_pool),
        ("phase_nanos".to_owned(), phase as f64),
        ("doubled_limit_nanos".to_owned(), doubled as f64),
        ("unbounded_nanos".to_owned(), unbounded as f64),
        ("calls_sum_nanos".to_owned(), calls_sum as f64),
        ("saving_nanos".to_owned(), saving as f64),
        ("runs".to_owned(), runs as f64),
        (
            "parent_nanos".to_owned(),
            (pools.iter().map(|p| p.parent_nanos).sum::<u64>() / pools.len().max(1) as u64) as f64,
        ),
    ]);
    Finding {
        kind: FindingKind::ConcurrencyLimit,
        operation: Some(parent.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::ConcurrencyLimit.as_str(),
            parent,
            name,
            template.key(),
        ]),
        saving_nanos: saving,
        occurrences: runs,
        numbers,
        evidence: evidence_per_trace(
            pools.iter().map(|p| {
                (
                    traces[p.trace].trace_id,
                    std::iter::once(p.parent_id)
                        .chain(p.call_ids.iter().copied())
                        .collect(),
                )
            }),
            MAX_EVIDENCE,
            41,
        ),
        impact: Impact::of(ImpactBasis::Time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, SpanKind, TraceId};

    const MS: u64 = 1_000_000;

    fn call(id: u8, start: u64, end: u64) -> Span {
        let mut s = span(id, Some(1), "GET", start * MS, end * MS);
        s.kind = SpanKind::Client;
        s.attributes
            .push(KeyValue::new("http.request.method", "GET"));
        s.attributes.push(KeyValue::new(
            "url.full",
            format!("https://geo.example/v1/lookup/{}", 1000 + u32::from(id)),
        ));
        s
    }

    /// Ten lookups through a pool of three, scheduled as a pool does (each starts when a slot
    /// frees): nine of 60 ms and one of 74 ms.
    fn pool_of_three() -> Vec<Span> {
        let durations = [60u64, 60, 74, 60, 60, 60, 60, 60, 60, 60];
        let mut free_at = [0u64; 3];
        let mut spans = vec![span(1, None, "geocode.batch", 0, 260 * MS)];
        for (i, d) in durations.iter().enumerate() {
            let slot = (0..3).min_by_key(|s| (free_at[*s], *s)).unwrap();
            let start = free_at[slot];
            free_at[slot] = start + d;
            spans.push(call(10 + i as u8, start, start + d));
        }
        spans
    }

    #[test]
    fn a_pool_of_three_is_reported_as_a_limit_not_as_batching() {
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(pool_of_three()));
        let findings = detect(std::slice::from_ref(&t), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::ConcurrencyLimit);
        // Waves: 0–60 ×2 and 0–74; 60–120 ×2; 74–134; 120–180 ×2; 134–194; 180–240.
        assert_eq!(f.numbers["limit"], 3.0);
        assert_eq!(f.numbers["phase_nanos"], (240 * MS) as f64);
        assert_eq!(f.numbers["unbounded_nanos"], (74 * MS) as f64);
        assert_eq!(f.saving_nanos, (240 - 74) * MS);
        // Doubling the limit to 6: 0–60 ×5 and 0–74, then 60–120 ×4: 120 ms.
        assert_eq!(f.numbers["doubled_limit_nanos"], (120 * MS) as f64);
        assert!(f.title.contains("at most 3 at a time"), "{}", f.title);
        assert!(!f.recommendation.contains("batch them"));
        // The N+1 detector leaves it alone.
        assert!(super::super::repeated_calls::detect(&[t], &Default::default()).is_empty());
    }

    /// A pool of three as a real client runs it, across services: the api's client spans start
    /// 0.3–3 ms after a slot frees or up to 2.5 ms before the previous span is closed (the slot
    /// is released first), and each call is served by the geo service, which queries its
    /// database.
    fn staggered_pool_across_services() -> AnalyzedTrace {
        const US: u64 = 1_000;
        let durations_ms = [52u64, 61, 47, 58, 66, 50, 55, 63, 49, 57, 60, 54];
        let jitter_us: [i64; 12] = [
            0, 300, 1_700, -2_500, 3_000, 800, -1_200, 2_200, 400, -600, 1_500, 2_900,
        ];
        let mut free_at = [0u64; 3];
        let mut spans = vec![span(1, None, "geocode.batch", 0, 300 * MS)];
        for (i, (d, j)) in durations_ms.iter().zip(jitter_us).enumerate() {
            let slot = (0..3).min_by_key(|s| (free_at[*s], *s)).unwrap();
            let start = (free_at[slot] as i64 + j * US as i64).max(0) as u64;
            let end = start + d * MS;
            free_at[slot] = end;
            let id = 10 + 3 * i as u8;
            let mut client = call(id, 0, 1);
            (client.start_unix_nano, client.end_unix_nano) = (start, end);
            let mut server = span(
                id + 1,
                Some(id),
                "GET /v1/lookup/{id}",
                start + 400 * US,
                end - 300 * US,
            );
            server.kind = SpanKind::Server;
            server.resource = 1;
            let mut query = span(id + 2, Some(id + 1), "SELECT geo", start + MS, end - MS);
            query.kind = SpanKind::Client;
            query.resource = 1;
            query
                .attributes
                .push(KeyValue::new("db.system.name", "postgresql"));
            query.attributes.push(KeyValue::new(
                "db.query.text",
                "SELECT lat, lon FROM places WHERE id = $1",
            ));
            spans.extend([client, server, query]);
        }
        let mut b = batch(spans);
        b.resources[0]
            .attributes
            .push(KeyValue::new("service.name", "api"));
        let mut geo = b.resources[0].clone();
        geo.attributes = vec![KeyValue::new("service.name", "geo")];
        b.resources.push(geo);
        AnalyzedTrace::new(TraceId([1; 16]), b)
    }

    #[test]
    fn a_pool_whose_calls_start_staggered_is_still_a_pool() {
        let t = staggered_pool_across_services();
        let findings = detect(std::slice::from_ref(&t), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.numbers["limit"], 3.0, "{}", f.title);
        assert_eq!(f.numbers["calls"], 12.0);
        // One slot per call: the longest call.
        assert_eq!(f.numbers["unbounded_nanos"], (66 * MS) as f64);
        assert!(f.title.contains("at most 3 at a time"), "{}", f.title);
    }

    #[test]
    fn near_misses_all_at_once_or_one_at_a_time_or_rarely_at_the_limit() {
        // All at once: nothing to gain.
        let mut spans = vec![span(1, None, "p", 0, 100 * MS)];
        for i in 0..6 {
            spans.push(call(10 + i, 0, 70));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // All at once, with starts jittered by up to 3 ms: still all at once.
        let mut spans = vec![span(1, None, "p", 0, 100 * MS)];
        for i in 0..6u8 {
            let mut c = call(10 + i, 0, 70);
            c.start_unix_nano = u64::from(i) * 600_000;
            spans.push(c);
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // One at a time: an N+1 loop, not a pool.
        let mut spans = vec![span(1, None, "p", 0, 100 * MS)];
        for i in 0..6u8 {
            spans.push(call(10 + i, u64::from(i) * 10, u64::from(i) * 10 + 10));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // Staggered arrivals that overlap by a sliver: two in flight for 2 % of the phase.
        let mut spans = vec![span(1, None, "p", 0, 100 * MS)];
        for i in 0..6u8 {
            let start = u64::from(i) * 10;
            spans.push(call(10 + i, start, start + 10 + u64::from(i % 2)));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
    }
}
