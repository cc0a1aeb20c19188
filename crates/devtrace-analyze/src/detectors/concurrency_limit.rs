//! Bounded concurrency: a fan-out of sibling calls that overlap but never exceed k in flight —
//! the shape of a worker pool, a semaphore or a connection pool of size k.
//!
//! **Rule.** In one run, at least [`Thresholds::min_calls`] successful outbound calls with the
//! same name and template issued by one span (below), where the most in flight at once, k, is
//! at least 2 and less than the number of calls, k calls are in flight for at least
//! [`Thresholds::min_time_at_limit`] of the phase (first start to last end), and **more
//! waited**: at least half of the calls beyond the first k started at a hand-over — within the
//! start-jitter tolerance of another call's end, while the other k − 1 slots were busy. A call
//! that waits for a slot starts the moment one frees and never when one is free, so the limit
//! is what paces the work, not the calls' own arrival. One trace is enough.
//!
//! **Which span issued a call.** Programs wrap each pooled call in a span of its own (a task,
//! a worker function: `fetch_one` around its `GET`), so the calls of one pool are often
//! cousins, not siblings. A call's issuer is the nearest span above it that holds another call
//! of the same name and template, climbing only through spans of its own service that are
//! neither requests it serves nor calls it makes (a per-call wrapper holds one call; the span
//! that fanned out holds them all; a batch job's chunks each hold their own). Worker spans —
//! instances of one operation under one parent, running at the same time, each making several
//! of the calls — are the pool's slots: their calls are the parent's.
//!
//! **Not a pool:** calls that mostly queued at a process that serialised them
//! (`serialised_process`: raising their callers' limit would not help), a loop (one at a
//! time), calls that all run at once or all there is running at once (k = n), waves (`gather` of three, then of three more: the next wave starts when
//! the *last* of the previous ends, when no slot is busy — no hand-over), arrivals that happen
//! to overlap.
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
    CallGroup, Claims, Overlap, evidence_per_trace, format_count, makespan, median, root_name,
};
use crate::call::{Template, describe};
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Finding, FindingKind};
use devtrace_model::recorded::name as q;
use devtrace_model::{SpanId, semconv};
use std::collections::{BTreeMap, HashMap};

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
    detect_claiming(traces, thresholds, &Claims::default()).0
}

/// [`detect`], and the calls its findings account for. A group most of whose calls are in
/// `queued` (calls that waited in a serialising process's queue: `serialised_process`) is
/// no pool: what paced those calls is the process they queued at, not their callers' limit.
pub fn detect_claiming(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
    queued: &Claims,
) -> (Vec<Finding>, Claims) {
    let mut by_subject: BTreeMap<(String, String, String, Template), Vec<Pool>> = BTreeMap::new();
    let mut claims = Claims::default();
    for group in issued_groups(traces, thresholds.min_calls.max(3)) {
        let trace = &traces[group.trace];
        let queued_calls = group
            .calls
            .iter()
            .filter(|&&c| queued.is_claimed(group.trace, c))
            .count();
        if 2 * queued_calls > group.calls.len() {
            continue;
        }
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
        if 2 * handovers(&intervals, o.max_in_flight, tolerance) < n - o.max_in_flight {
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
                issuer_name(trace, group.parent),
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

/// The groups of at least `min_calls` successful outbound calls of one name and template that
/// one span issued (see the module doc), per trace; calls in start order.
fn issued_groups(traces: &[AnalyzedTrace], min_calls: usize) -> Vec<CallGroup> {
    let mut out = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        let inner = crate::call::inner_layers(trace);
        let mut by_call: BTreeMap<(&str, Template), Vec<usize>> = BTreeMap::new();
        for (i, &is_inner) in inner.iter().enumerate() {
            let span = trace.span(i);
            if is_inner || span.is_error() || crate::errors::is_error_span(span) {
                continue;
            }
            let call = describe(trace, i);
            if call.outbound {
                by_call
                    .entry((span.name.as_str(), call.template))
                    .or_default()
                    .push(i);
            }
        }
        for ((name, template), calls) in by_call {
            if calls.len() < min_calls {
                continue;
            }
            for (issuer, mut calls) in by_issuer(trace, &calls) {
                if calls.len() >= min_calls {
                    calls.sort_by_key(|&c| (trace.span(c).start_unix_nano, c));
                    out.push(CallGroup {
                        trace: t,
                        parent: issuer,
                        name: name.to_owned(),
                        template: template.clone(),
                        calls,
                    });
                }
            }
        }
    }
    out
}

/// `calls` (of one name and template) by the span that issued each: the nearest span above it,
/// through wrappers of its own service, holding another of them; concurrent workers' calls
/// belong to the workers' parent.
fn by_issuer(trace: &AnalyzedTrace, calls: &[usize]) -> BTreeMap<usize, Vec<usize>> {
    let chains: Vec<Vec<usize>> = calls.iter().map(|&c| issuing_chain(trace, c)).collect();
    let mut held: HashMap<usize, usize> = HashMap::new();
    for chain in &chains {
        for &a in chain {
            *held.entry(a).or_default() += 1;
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (&call, chain) in calls.iter().zip(&chains) {
        if let Some(&issuer) = chain.iter().find(|a| held[a] >= 2) {
            groups.entry(issuer).or_default().push(call);
        }
    }
    // Workers: instances of one operation under one parent that ran at the same time.
    let mut workers: BTreeMap<(usize, &str), Vec<usize>> = BTreeMap::new();
    for &issuer in groups.keys() {
        if let Some(parent) = trace.tree.parent[issuer]
            && is_wrapper(trace, issuer, parent)
        {
            workers
                .entry((parent, trace.span(issuer).name.as_str()))
                .or_default()
                .push(issuer);
        }
    }
    for ((parent, _), issuers) in workers {
        let intervals: Vec<(u64, u64)> = issuers
            .iter()
            .map(|&i| (trace.span(i).start_unix_nano, trace.span(i).end_unix_nano))
            .collect();
        if issuers.len() >= 2 && super::calls::overlap(&intervals).max_in_flight >= 2 {
            for issuer in issuers {
                let calls = groups.remove(&issuer).unwrap_or_default();
                groups.entry(parent).or_default().extend(calls);
            }
        }
    }
    groups
}

/// The spans `call` may have been issued by, nearest first: its parent, then on up while the
/// span below is a wrapper ([`is_wrapper`]).
fn issuing_chain(trace: &AnalyzedTrace, call: usize) -> Vec<usize> {
    let mut chain = Vec::new();
    let mut at = trace.tree.parent[call];
    while let Some(span) = at {
        chain.push(span);
        at = trace.tree.parent[span].filter(|&up| is_wrapper(trace, span, up));
    }
    chain
}

/// Span `span` is work of `parent`'s own code in one process: an internal span of the same
/// service, neither a request served nor a call made.
fn is_wrapper(trace: &AnalyzedTrace, span: usize, parent: usize) -> bool {
    matches!(
        trace.span(span).effective_kind(),
        devtrace_model::SpanKind::Internal | devtrace_model::SpanKind::Unspecified
    ) && !describe(trace, span).outbound
        && trace.service(span) == trace.service(parent)
}

/// How many calls started at a hand-over: within `tolerance` of another call's end (the slot
/// it freed), the pool full both just before that end (`limit` calls in flight, the freed one
/// included) and once the call started (`limit`, itself included, the freed one not). Waves —
/// three at once, then three more when all three are done — start when one call was left.
fn handovers(intervals: &[(u64, u64)], limit: usize, tolerance: u64) -> usize {
    let in_flight = |except: usize, counts: &dyn Fn(u64, u64) -> bool| {
        intervals
            .iter()
            .enumerate()
            .filter(|&(m, &(s, e))| m != except && counts(s, e))
            .count()
    };
    intervals
        .iter()
        .enumerate()
        .filter(|&(i, &(start, _))| {
            let freed = intervals
                .iter()
                .enumerate()
                .filter(|&(j, &(_, end))| j != i && end.abs_diff(start) <= tolerance)
                .min_by_key(|&(_, &(_, end))| end.abs_diff(start));
            freed.is_some_and(|(j, &(_, freed_at))| {
                in_flight(i, &|s, e| s < freed_at && freed_at <= e) >= limit
                    && in_flight(j, &|s, e| s <= start && start < e) >= limit
            })
        })
        .count()
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

/// The name of the span that issued a pool's calls: a flight recorder's window, which holds the
/// processes it kept, by the run it is part of (its trace's root): the window is no operation.
fn issuer_name(trace: &AnalyzedTrace, issuer: usize) -> String {
    let name = &trace.span(issuer).name;
    if name == semconv::FLIGHT_WINDOW_SPAN {
        return root_name(trace).to_owned();
    }
    name.clone()
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

    #[test]
    fn calls_a_flight_recorders_window_holds_are_named_by_the_run() {
        // A flight recorder keeps the processes of its last seconds under a window span; the
        // window is no operation a reader knows: the pool is the run's.
        let mut spans = pool_of_three();
        spans[0].name = "elixir crawl.exs".into();
        spans.push(span(2, Some(1), semconv::FLIGHT_WINDOW_SPAN, 0, 250 * MS));
        for s in spans.iter_mut().filter(|s| s.name.starts_with("GET")) {
            s.parent_span_id = Some(SpanId([2; 8]));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [f] = detect(&[t], &Thresholds::default())
            .try_into()
            .expect("one pool");
        assert!(
            f.title.starts_with("\"elixir crawl.exs\" runs 10 calls"),
            "{}",
            f.title
        );
        assert_eq!(f.operation.as_deref(), Some("elixir crawl.exs"));
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

    /// Ten lookups, each in a span of its own ("fetch_one", opened when the task is created,
    /// at 0) that waits for one of three slots and then calls: the calls are cousins.
    fn wrapped_pool_of_three(durations: [u64; 10]) -> AnalyzedTrace {
        let mut free_at = [0u64; 3];
        let mut spans = vec![span(1, None, "geocode.batch", 0, 400 * MS)];
        for (i, d) in durations.iter().enumerate() {
            let slot = (0..3).min_by_key(|s| (free_at[*s], *s)).unwrap();
            let start = free_at[slot];
            free_at[slot] = start + d;
            let wrapper = 100 + i as u8;
            spans.push(span(wrapper, Some(1), "fetch_one", 0, (start + d) * MS));
            let mut c = call(10 + i as u8, start, start + d);
            c.parent_span_id = Some(devtrace_model::SpanId([wrapper; 8]));
            spans.push(c);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn calls_each_in_a_span_of_its_own_are_one_pool_of_the_span_that_made_them() {
        let t = wrapped_pool_of_three([52, 61, 47, 58, 66, 50, 55, 63, 49, 57]);
        let findings = detect(std::slice::from_ref(&t), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.operation.as_deref(), Some("geocode.batch"));
        assert_eq!((f.numbers["limit"], f.numbers["calls"]), (3.0, 10.0));
        // Slots: 0–52 47–94 … the phase ends at 206 ms; one slot per call: the longest, 66 ms.
        let phase = makespan(&[52, 61, 47, 58, 66, 50, 55, 63, 49, 57], 3);
        assert_eq!(f.numbers["phase_nanos"], (phase * MS) as f64);
        assert_eq!(f.saving_nanos, (phase - 66) * MS);
    }

    #[test]
    fn worker_spans_running_at_once_are_the_slots_of_one_pool() {
        // Three worker threads, each a span making its calls one after another.
        let mut spans = vec![span(1, None, "sync.all", 0, 300 * MS)];
        let durations = [[50u64, 62, 55, 48], [58, 51, 60, 0], [47, 66, 53, 0]];
        let mut id = 10u8;
        for (w, calls) in durations.iter().enumerate() {
            let worker = 100 + w as u8;
            let mut at = 0;
            for d in calls.iter().filter(|d| **d > 0) {
                let mut c = call(id, at, at + d);
                c.parent_span_id = Some(devtrace_model::SpanId([worker; 8]));
                spans.push(c);
                (id, at) = (id + 1, at + d);
            }
            spans.push(span(worker, Some(1), "worker", 0, at * MS));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let findings = detect(std::slice::from_ref(&t), &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].operation.as_deref(), Some("sync.all"));
        assert_eq!(findings[0].numbers["limit"], 3.0);
        assert_eq!(findings[0].numbers["calls"], 10.0);
    }

    #[test]
    fn waves_with_work_between_them_and_wrapped_loops_are_not_pools() {
        // Three calls at once, 12 ms of the program's own work on their answers, three more…
        let mut spans = vec![span(1, None, "p", 0, 400 * MS)];
        let mut at = 0;
        for wave in 0..3u8 {
            let durations = [48u64, 60, 55];
            for (i, d) in durations.iter().enumerate() {
                spans.push(call(10 + 3 * wave + i as u8, at, at + d));
            }
            at += 60 + 12;
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // Ten calls one after another, each in a span of its own: a loop, not a pool.
        let mut spans = vec![span(1, None, "p", 0, 400 * MS)];
        for i in 0..10u8 {
            let start = u64::from(i) * 30;
            spans.push(span(
                100 + i,
                Some(1),
                "fetch_one",
                start * MS,
                (start + 30) * MS,
            ));
            let mut c = call(10 + i, start, start + 30);
            c.parent_span_id = Some(devtrace_model::SpanId([100 + i; 8]));
            spans.push(c);
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // Two chunks of a batch, one after the other, each its own pool: two pools, never one.
        let mut spans = vec![span(1, None, "import", 0, 400 * MS)];
        for chunk in 0..2u8 {
            let base = u64::from(chunk) * 200;
            let chunk_id = 200 + chunk;
            spans.push(span(
                chunk_id,
                Some(1),
                "chunk",
                base * MS,
                (base + 180) * MS,
            ));
            for i in 0..6u8 {
                let start = base + u64::from(i / 2) * 50;
                let mut c = call(10 + 6 * chunk + i, start, start + 50);
                c.parent_span_id = Some(devtrace_model::SpanId([chunk_id; 8]));
                spans.push(c);
            }
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let findings = detect(&[t], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].operation.as_deref(), Some("chunk"));
        assert!(
            findings[0].title.contains("(2 times per run)"),
            "{}",
            findings[0].title
        );
        // Each chunk's phase is 150 ms (three pairs of 50 ms); a run's is both chunks'.
        assert_eq!(findings[0].numbers["phase_nanos"], (300 * MS) as f64);
    }
}
