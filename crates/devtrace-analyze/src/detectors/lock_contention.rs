//! Lock contention (time spent waiting for a lock) and lock-order inversions (two locks taken in
//! both orders, which can deadlock), from the `devtrace.lock.*` spans read by [`crate::locks`].
//!
//! A lock is contended when its waits add up to a noticeable share of the runs it slowed, or
//! when any single wait is long. The estimated saving is the lock's total wait per affected run:
//! what the waiters would get back if the lock were never held when they asked for it.

use crate::AnalyzedTrace;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::locks::{self, Inversion, LockUse};
use devtrace_model::TraceId;
use devtrace_model::recorded::{name as q, quote_short};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// A lock is contended when its total wait, over the runs in which it was waited on, is at
    /// least this share of those runs' root-span time (0.10 = 10 %)…
    pub min_wait_share: f64,
    /// …and at least this long in total (1 ms), so 10 % of a 3 ms run is not reported…
    pub min_total_wait_nanos: u64,
    /// …or when any single wait is at least this long (100 ms), whatever its share.
    pub long_wait_nanos: u64,
    /// A run is slowed by a lock only when its waits for it add up to at least this (1 ms):
    /// a pool that hands out an idle connection in 0.2 ms did not slow the run, and counting
    /// it would spread the real waits' time over runs that never waited.
    pub min_run_wait_nanos: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_wait_share: 0.10,
            min_total_wait_nanos: 1_000_000,
            long_wait_nanos: 100_000_000,
            min_run_wait_nanos: 1_000_000,
        }
    }
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let report = locks::analyze(traces);
    let mut findings = contention(traces, &report.uses, thresholds);
    findings.extend(report.inversions.iter().map(inversion));
    findings
}

fn contention(traces: &[AnalyzedTrace], uses: &[LockUse], thresholds: &Thresholds) -> Vec<Finding> {
    let run_time: HashMap<TraceId, u64> =
        traces.iter().map(|t| (t.trace_id, root_nanos(t))).collect();
    // `uses` is longest wait first, so each lock's list is too. A pool's acquisitions are
    // grouped per operation that waited: the time lost is per run of that operation (a pool
    // shared by a request that queues six queries and one that takes an idle connection slows
    // the first).
    let mut by_lock: BTreeMap<(&str, &str), Vec<&LockUse>> = BTreeMap::new();
    for u in uses {
        let waiter = match (&u.kind, &u.waited_in) {
            (Some(kind), Some(operation)) if kind == locks::ACQUISITION_KIND => operation.as_str(),
            _ => "",
        };
        by_lock.entry((&u.lock, waiter)).or_default().push(u);
    }
    let mut findings = Vec::new();
    for ((lock, waiter), lock_uses) in by_lock {
        let mut run_wait: HashMap<TraceId, u64> = HashMap::new();
        for u in &lock_uses {
            *run_wait.entry(u.trace_id).or_default() += u.wait_nanos;
        }
        let waits: Vec<&LockUse> = lock_uses
            .iter()
            .copied()
            .filter(|u| u.wait_nanos > 0 && run_wait[&u.trace_id] >= thresholds.min_run_wait_nanos)
            .collect();
        let Some(longest) = waits.first() else {
            continue;
        };
        let affected: BTreeSet<TraceId> = waits.iter().map(|u| u.trace_id).collect();
        let total_wait: u64 = waits.iter().fold(0, |s, u| s.saturating_add(u.wait_nanos));
        let affected_time: u64 = affected
            .iter()
            .map(|t| run_time.get(t).copied().unwrap_or(0))
            .fold(0, u64::saturating_add);
        let share = if affected_time > 0 {
            total_wait as f64 / affected_time as f64
        } else {
            1.0
        };
        let by_share =
            share >= thresholds.min_wait_share && total_wait >= thresholds.min_total_wait_nanos;
        let by_length = longest.wait_nanos >= thresholds.long_wait_nanos;
        if !(by_share || by_length) {
            continue;
        }
        let runs = affected.len() as u64;
        let total_hold: u64 = lock_uses
            .iter()
            .fold(0, |s, u| s.saturating_add(u.hold_nanos));
        let mean_hold = total_hold / lock_uses.len().max(1) as u64;
        let holder = if longest.holder.is_empty() {
            String::new()
        } else {
            format!(", holder {}", q(&longest.holder))
        };
        let behind = match waits.iter().filter_map(|u| u.behind).max() {
            Some(n) => format!(", behind up to {n}"),
            None => String::new(),
        };
        let (title, recommendation) = match &longest.waited_in {
            // A wait the operation's own events recorded (a row lock, a pool, a queue).
            Some(operation) => (
                format!(
                    "{} waited {} time{} for {} ({} in all, longest {}{behind}) = {:.0} % of the \
                     time of the {runs} run{} it slowed",
                    quote_short(operation, 100),
                    waits.len(),
                    plural(waits.len() as u64),
                    lock_phrase(longest),
                    human_duration(total_wait),
                    human_duration(longest.wait_nanos),
                    share * 100.0,
                    plural(runs),
                ),
                format!(
                    "The time is spent waiting, not working: find who holds {} meanwhile (the \
                     concurrent runs in the evidence) and shorten or reorder that work, or size \
                     the pool/queue for the load",
                    lock_phrase(longest)
                ),
            ),
            None => (
                format!(
                    "lock {}: {} wait{} totalling {} = {:.0} % of the time of the {runs} run{} it \
                     slowed (longest {}{holder}{behind})",
                    q(lock),
                    waits.len(),
                    plural(waits.len() as u64),
                    human_duration(total_wait),
                    share * 100.0,
                    plural(runs),
                    human_duration(longest.wait_nanos),
                ),
                format!(
                    "Hold {} for less time (it is held {} on average: move work that does not need \
                     it out of the critical section), split it per resource, or stop sharing it \
                     between these holders",
                    q(lock),
                    human_duration(mean_hold)
                ),
            ),
        };
        let numbers = BTreeMap::from([
            ("uses".to_owned(), lock_uses.len() as f64),
            ("waits".to_owned(), waits.len() as f64),
            ("total_wait_ns".to_owned(), total_wait as f64),
            ("max_wait_ns".to_owned(), longest.wait_nanos as f64),
            ("mean_hold_ns".to_owned(), mean_hold as f64),
            ("affected_runs".to_owned(), runs as f64),
            ("affected_run_time_ns".to_owned(), affected_time as f64),
            ("wait_share".to_owned(), share),
        ]);
        findings.push(Finding {
            kind: FindingKind::LockContention,
            operation: Some(format!("{}{lock}", locks::SPAN_PREFIX)),
            title,
            recommendation,
            fingerprint: if waiter.is_empty() {
                fingerprint(&[FindingKind::LockContention.as_str(), lock])
            } else {
                fingerprint(&[FindingKind::LockContention.as_str(), lock, waiter])
            },
            saving_nanos: total_wait / runs.max(1),
            occurrences: runs,
            numbers,
            evidence: contention_evidence(&waits, &lock_uses),
            impact: Impact::of(ImpactBasis::Time),
        });
    }
    findings.sort_by(|a, b| {
        b.total_saving_nanos()
            .cmp(&a.total_saving_nanos())
            .then(a.title.cmp(&b.title))
    });
    findings
}

/// Span ids listed per evidence trace, at most.
const SPANS_PER_TRACE: usize = 12;

/// Per trace (the traces of the longest waits first): the waiting spans, each followed by the
/// spans that held the lock while it waited.
fn contention_evidence(waits: &[&LockUse], all: &[&LockUse]) -> Vec<Evidence> {
    let mut evidence: Vec<Evidence> = Vec::new();
    for w in waits {
        if evidence.len() == MAX_EVIDENCE {
            break;
        }
        if !evidence.iter().any(|e| e.trace_id == w.trace_id) {
            evidence.push(Evidence {
                trace_id: w.trace_id,
                span_ids: Vec::new(),
            });
        }
    }
    for e in &mut evidence {
        let in_trace: Vec<&LockUse> = all
            .iter()
            .copied()
            .filter(|u| u.trace_id == e.trace_id)
            .collect();
        for w in in_trace.iter().filter(|u| u.wait_nanos > 0) {
            let blockers = in_trace.iter().filter(|h| {
                h.span_id != w.span_id && h.acquired < w.acquired && h.released > w.requested
            });
            for id in std::iter::once(w.span_id).chain(blockers.map(|h| h.span_id)) {
                if e.span_ids.len() < SPANS_PER_TRACE && !e.span_ids.contains(&id) {
                    e.span_ids.push(id);
                }
            }
            if e.span_ids.len() >= SPANS_PER_TRACE {
                break;
            }
        }
    }
    evidence
}

fn inversion(inv: &Inversion) -> Finding {
    let (ab, ba) = (&inv.a_then_b, &inv.b_then_a);
    let in_holder = |h: &str| {
        if h.is_empty() {
            String::new()
        } else {
            format!(" in holder {}", q(h))
        }
    };
    let (a, b) = (q(&inv.lock_a), q(&inv.lock_b));
    let title = format!(
        "lock-order inversion: {a}→{b}{}, {b}→{a}{} — can deadlock",
        in_holder(&ab.holder),
        in_holder(&ba.holder),
    );
    let recommendation = format!(
        "Take {a} and {b} in one order everywhere (e.g. always {a} first), or merge them into one lock: two holders taking them in opposite orders at the same time wait for each other forever",
    );
    let mut evidence: Vec<Evidence> = Vec::new();
    for order in [ab, ba] {
        let spans = [order.outer_span_id, order.inner_span_id];
        match evidence.iter_mut().find(|e| e.trace_id == order.trace_id) {
            Some(e) => {
                for span in spans {
                    if !e.span_ids.contains(&span) {
                        e.span_ids.push(span);
                    }
                }
            }
            None => evidence.push(Evidence {
                trace_id: order.trace_id,
                span_ids: spans.to_vec(),
            }),
        }
    }
    let numbers = BTreeMap::from([
        ("a_then_b".to_owned(), inv.a_then_b_count as f64),
        ("b_then_a".to_owned(), inv.b_then_a_count as f64),
        ("traces".to_owned(), inv.traces as f64),
    ]);
    Finding {
        kind: FindingKind::LockOrderInversion,
        operation: None,
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::LockOrderInversion.as_str(),
            &inv.lock_a,
            &inv.lock_b,
        ]),
        saving_nanos: 0,
        occurrences: inv.traces,
        numbers,
        evidence,
        impact: Impact::of(ImpactBasis::Correctness),
    }
}

/// "a lock", "the pool \"primary\"": what a wait inside a span waited for.
fn lock_phrase(lock_use: &LockUse) -> String {
    let kind = lock_use
        .kind
        .as_deref()
        .and_then(|k| k.split(' ').next())
        .unwrap_or("lock");
    let noun = match kind {
        "backoff" => "a back-off",
        "pool" => "a pool",
        "queue" => "a queue",
        "wait" => "something",
        _ => "a lock",
    };
    match lock_use.lock.split_once(' ') {
        Some((_, rest)) if !rest.starts_with("in ") => format!("{noun} {}", q(rest)),
        _ => noun.to_owned(),
    }
}

/// The root span's duration, or the trace's extent when the root has none.
fn root_nanos(trace: &AnalyzedTrace) -> u64 {
    let root = trace.root().map_or(0, |r| trace.span(r).duration_nanos());
    if root > 0 {
        return root;
    }
    let spans = &trace.spans.spans;
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(0);
    end.saturating_sub(start)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::locks::tests::{lock_span, trace};
    use crate::tree::tests::span;
    use devtrace_model::SpanId;

    const MS: u64 = 1_000_000;

    fn contended(n: u8, wait_ms: u64, run_ms: u64) -> AnalyzedTrace {
        // Holder 12 holds `db` from 10 ms for `wait_ms`; holder 13 asks at 10 ms and waits.
        let free = (10 + wait_ms) * MS;
        trace(
            n,
            vec![
                span(1, None, "job", 0, run_ms * MS),
                lock_span(2, Some(1), "db", "12", 10 * MS, 10 * MS, free),
                lock_span(3, Some(1), "db", "13", 10 * MS, free, free + 5 * MS),
            ],
        )
    }

    #[test]
    fn waits_that_are_a_tenth_of_the_run_are_contention() {
        let findings = detect(&[contended(1, 40, 100)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::LockContention);
        assert_eq!(
            f.title,
            "lock \"db\": 1 wait totalling 40.0 ms = 40 % of the time of the 1 run it slowed (longest 40.0 ms, holder \"13\")"
        );
        assert_eq!(f.operation.as_deref(), Some("lock db"));
        assert_eq!((f.saving_nanos, f.occurrences), (40 * MS, 1));
        assert_eq!(f.numbers["total_wait_ns"], 40e6);
        assert_eq!(f.numbers["wait_share"], 0.4);
        assert_eq!(f.numbers["mean_hold_ns"], 22.5e6);
        assert!(f.recommendation.contains("held 22.5 ms on average"));
        // The waiter, then the holder that blocked it.
        assert_eq!(f.evidence[0].span_ids, [SpanId([3; 8]), SpanId([2; 8])]);
        assert_eq!(f.fingerprint, fingerprint(&["lock_contention", "db"]));
    }

    /// Node's pg under `Promise.all` with a pool of two: six `pg-pool.connect` client spans
    /// (the wait for a connection, as @opentelemetry/instrumentation-pg records it) under the
    /// handler, each followed by its query.
    fn pool_waits(n: u8, waits_ms: &[u64]) -> AnalyzedTrace {
        let mut spans = vec![span(
            1,
            None,
            "request handler - /regions/totals",
            0,
            170 * MS,
        )];
        let postgres = || {
            vec![
                devtrace_model::KeyValue::new("db.system.name", "postgresql"),
                devtrace_model::KeyValue::new("db.namespace", "shop"),
                devtrace_model::KeyValue::new("server.address", "10.0.0.5"),
                devtrace_model::KeyValue::new("server.port", 5432i64),
            ]
        };
        for (i, wait) in waits_ms.iter().enumerate() {
            let id = 10 + i as u8;
            let mut connect = span(id, Some(1), "pg-pool.connect", MS, (1 + wait) * MS);
            connect.kind = devtrace_model::SpanKind::Client;
            connect.attributes = postgres();
            spans.push(connect);
            let (start, end) = ((1 + wait) * MS, (21 + wait) * MS);
            let mut query = span(id + 50, Some(1), "pg.query:SELECT", start, end);
            query.kind = devtrace_model::SpanKind::Client;
            query.attributes = postgres();
            query
                .attributes
                .push(devtrace_model::KeyValue::new("db.query.text", "SELECT 1"));
            spans.push(query);
        }
        trace(n, spans)
    }

    #[test]
    fn a_pool_acquisition_span_is_a_wait_for_the_pool() {
        // A run that got an idle connection at once (0.2 ms) was not slowed.
        let mut idle = pool_waits(3, &[0]);
        let connect = idle
            .spans
            .spans
            .iter_mut()
            .find(|s| s.name == "pg-pool.connect");
        connect.expect("one acquisition").end_unix_nano = MS + 200_000;
        let idle = trace(3, idle.spans.spans);
        // A run whose pool had no connection yet: 40 ms opening one (pg.connect) is not a wait.
        let mut opening = pool_waits(4, &[41]);
        let mut connect = span(90, Some(10), "pg.connect", MS + 100_000, 42 * MS);
        connect.kind = devtrace_model::SpanKind::Client;
        opening.spans.spans.push(connect);
        let opening = trace(4, opening.spans.spans);
        // Another operation that waited 5 ms for the same pool: its own question (5 ms of a
        // 170 ms run is not contention), not more of the first one's wait.
        let mut other = pool_waits(5, &[0, 5]);
        other.spans.spans[0].name = "request handler - /orders/:id".to_owned();
        let other = trace(5, other.spans.spans);
        let findings = detect(
            &[
                pool_waits(1, &[0, 0, 20, 20, 40, 40]),
                pool_waits(2, &[30, 60, 0, 0, 0, 0]),
                idle,
                opening,
                other,
            ],
            &Thresholds::default(),
        );
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::LockContention);
        assert!(
            f.title.starts_with(
                "\"request handler - /regions/totals\" waited 6 times for a pool \
                 \"postgresql 10.0.0.5:5432\" (210.0 ms in all, longest 60.0 ms)"
            ),
            "{}",
            f.title
        );
        // The wait per run it slowed: (120 + 90) ms over 2 runs.
        assert_eq!((f.saving_nanos, f.occurrences), (105 * MS, 2));
        assert_eq!(f.evidence[0].span_ids[0], SpanId([11; 8]));
        // A cold start: 150 ms getting a connection while nothing else used the database is
        // opening one, not waiting for the pool.
        let cold = detect(&[pool_waits(6, &[150])], &Thresholds::default());
        assert!(cold.is_empty(), "{cold:#?}");
    }

    /// `trace` as Node.js's SDK stamps it: starts at whole milliseconds (`Date.now()`), ends
    /// at the start plus a sub-millisecond duration ([`crate::clock`]).
    fn node_clock(n: u8, mut stamped: AnalyzedTrace) -> AnalyzedTrace {
        for s in &mut stamped.spans.spans {
            s.end_unix_nano += 197_593;
        }
        trace(n, stamped.spans.spans)
    }

    #[test]
    fn a_query_stamped_before_its_connection_came_is_no_one_holding_the_pool() {
        // A report asked alone: 4.2 ms getting an idle connection on a busy machine, then its
        // query, stamped at the whole millisecond before the acquisition ended. Nothing else
        // used the database: no contention.
        let mut alone = pool_waits(1, &[4]);
        alone.spans.spans[0].name = "request handler - /reports/:year".to_owned();
        let alone = node_clock(1, alone);
        let findings = detect(std::slice::from_ref(&alone), &Thresholds::default());
        assert!(findings.is_empty(), "{findings:#?}");
        // The overlap the clock cannot account for is still contention.
        let busy = node_clock(2, pool_waits(2, &[0, 0, 20, 20, 40, 40]));
        let findings = detect(&[busy, alone], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0]
                .title
                .starts_with("\"request handler - /regions/totals\" waited 4 times for a pool"),
            "{}",
            findings[0].title
        );
    }

    #[test]
    fn one_long_wait_is_contention_whatever_its_share() {
        let findings = detect(&[contended(1, 150, 10_000)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].numbers["wait_share"], 0.015);
        assert_eq!(findings[0].saving_nanos, 150 * MS);
    }

    #[test]
    fn a_short_wait_is_not_contention() {
        // 5 ms in a 100 ms run: 5 % and shorter than 100 ms.
        assert!(detect(&[contended(1, 5, 100)], &Thresholds::default()).is_empty());
        // 10 % of a 2 ms run is under the 1 ms floor.
        let tiny = trace(
            1,
            vec![
                span(1, None, "job", 0, 2_000_000),
                lock_span(2, Some(1), "db", "12", 0, 0, 200_000),
                lock_span(3, Some(1), "db", "13", 0, 200_000, 300_000),
            ],
        );
        assert!(detect(&[tiny], &Thresholds::default()).is_empty());
    }

    #[test]
    fn an_inversion_is_reported_with_both_orders_and_no_saving() {
        let one = trace(
            1,
            vec![
                lock_span(1, None, "accounts", "12", 0, 0, 100),
                lock_span(2, Some(1), "ledger", "12", 10, 10, 20),
            ],
        );
        let two = trace(
            2,
            vec![
                lock_span(1, None, "ledger", "13", 0, 0, 100),
                lock_span(2, Some(1), "accounts", "13", 10, 10, 20),
            ],
        );
        let findings = detect(&[one, two], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::LockOrderInversion);
        assert_eq!(
            f.title,
            "lock-order inversion: \"accounts\"→\"ledger\" in holder \"12\", \"ledger\"→\"accounts\" in holder \"13\" — can deadlock"
        );
        assert_eq!((f.saving_nanos, f.occurrences), (0, 2));
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(f.evidence[1].trace_id, TraceId([2; 16]));
        assert_eq!(f.numbers["a_then_b"], 1.0);
    }
}
