//! N+1 / repeated calls: many sibling calls of the same statement or URL template under one
//! parent, made one after another, which one batched call could replace.
//!
//! **Rule.** Under one parent span, the children that leave the process (client or producer
//! spans, or spans with database, HTTP client, RPC, messaging or LLM attributes: see
//! [`crate::call`]), or a thin wrapper's one call ([`crate::call::wrapped_calls`]: the anonymous
//! function `Enum.map` runs for each item, a helper around a query), are grouped by span name
//! and call template (the statement with its literals
//! folded, else the HTTP method and URL template, else the RPC method, else the destination,
//! else the name). A group of at least [`Thresholds::min_calls`] successful calls that run one
//! after another — never more than one in flight — is reported. Internal spans (a loop in the
//! program's own code) are never reported here: there is nothing to batch. Calls that overlap
//! are a concurrency question, not a batching one: a fan-out held to a few at a time is
//! `concurrency_limit`'s, and calls that all run at once are already as fast as they
//! get. Calls that overlap in any run were issued together: a fan-out that a pool happened to
//! run one at a time in another run is still not a loop, so a subject (root operation, parent,
//! call name, template) with overlapping calls in any run is not reported in any.
//!
//! **Saving model.** One batched call (`IN (...)`, a JOIN, a batch endpoint) is assumed to cost
//! [`Thresholds::batch_cost_factor`] × the mean duration of one call. The saving of one loop is
//! the sum of its calls minus that cost.
//! When the called process's time on the requests — its own work, and its wait for answers
//! from outside the recording ([`crate::served`]) — is most of the calls' time, a batch saves it
//! only if it is per request, which the trace cannot tell: the finding says so and gives both
//! figures.
//!
//! **Across runs** the finding is one per (root operation, parent operation, call name,
//! template). A parent that repeats inside one run (the same subtree a hundred times: a batch
//! job's chunks) is one pattern with its count: "10 times per call of \"chunk\", 100 calls per
//! run". `occurrences` is the number of runs with the loop; the saving per run is the median,
//! over those runs, of the run's savings summed over the parent's instances — but instances
//! that ran at the same time (the same loop in six processes or threads at once) give back
//! the wall-clock time once, not six times: of instances whose loops overlap in time, only
//! the largest saving counts. Evidence lists each trace once.
//!
//! **Does not fire on** a few similar calls (below [`Thresholds::min_calls`]), calls that differ
//! in statement or URL template, calls under different parents, failed calls (a call failing
//! again and again is a retry storm, see `retry_storm`), internal spans, or calls that
//! already overlap.

use super::calls::{
    Claims, evidence_per_trace, format_count, median, outbound_groups, overlap, root_name,
};
use crate::call::Template;
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Finding, FindingKind};
use devtrace_model::SpanId;
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest number of sibling calls with the same name and template to report. Default 5:
    /// two or three similar calls are usually deliberate; five or more under one parent is the
    /// shape of a loop issuing one call per item.
    pub min_calls: usize,
    /// Cost of the one batched call replacing the group, as a multiple of one call's mean
    /// duration. Default 1.5: a batched call still pays one round trip, plus the extra rows or
    /// items it carries; 1.5 keeps the estimate conservative for small groups.
    pub batch_cost_factor: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_calls: 5,
            batch_cost_factor: 1.5,
        }
    }
}

/// One loop: the calls under one parent instance.
#[derive(Debug)]
struct Occurrence {
    trace: usize,
    parent_id: SpanId,
    call_ids: Vec<SpanId>,
    /// From its first call's start to its last call's end.
    extent: (u64, u64),
    total_nanos: u64,
    saving_nanos: u64,
    /// Of `total_nanos`, the time the called process worked on the requests, where the trace
    /// shows it ([`server_work`]).
    server: Option<ServerWork>,
    /// Of `total_nanos`, the calls' waits for messages from outside the recording (BEAM calls
    /// out of it: [`crate::classify::WAITED_OUTSIDE_NS`]).
    outside_nanos: u64,
}

/// The part of a loop's calls the called process spent on the requests: its own work, and
/// then its wait for answers from outside the recording ([`crate::served::outside_time`]).
#[derive(Debug, Clone)]
struct ServerWork {
    /// The process, as findings show it ([`crate::processes::shown_process`]: quoted).
    process: String,
    nanos: u64,
    outside_nanos: u64,
    /// Of `nanos`, its waits for the other processes it called, by process (shown).
    downstream: BTreeMap<String, u64>,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    detect_claiming(traces, thresholds).0
}

/// [`detect`], and the calls its findings account for.
pub fn detect_claiming(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
) -> (Vec<Finding>, Claims) {
    // (root operation, parent name, call name, template) → occurrences, in trace order.
    let mut by_subject: BTreeMap<(String, String, String, Template), Vec<Occurrence>> =
        BTreeMap::new();
    let mut claims = Claims::default();
    let groups = outbound_groups(traces, thresholds.min_calls.max(2));
    let subject = |group: &super::calls::CallGroup| {
        let trace = &traces[group.trace];
        (
            root_name(trace).to_owned(),
            trace.span(group.parent).name.clone(),
            group.name.clone(),
            group.template.clone(),
        )
    };
    // Calls that overlap in any run were issued together (a fan-out a pool sometimes runs one
    // at a time is still a fan-out): their subject is never a loop.
    let concurrent: BTreeSet<_> = groups
        .iter()
        .filter(|g| overlaps(&traces[g.trace], &g.calls))
        .map(subject)
        .collect();
    for group in groups {
        let trace = &traces[group.trace];
        if concurrent.contains(&subject(&group)) {
            continue;
        }
        let total: u64 = group
            .calls
            .iter()
            .map(|c| trace.span(*c).duration_nanos())
            .fold(0, u64::saturating_add);
        let batched =
            total as f64 / group.calls.len() as f64 * thresholds.batch_cost_factor.max(0.0);
        let saving = (total as f64 - batched).max(0.0).round() as u64;
        if saving == 0 {
            continue;
        }
        for &c in &group.calls {
            claims.claim(group.trace, c);
        }
        by_subject
            .entry(subject(&group))
            .or_default()
            .push(Occurrence {
                trace: group.trace,
                parent_id: trace.span(group.parent).span_id,
                call_ids: group.calls.iter().map(|c| trace.span(*c).span_id).collect(),
                extent: extent(trace, &group.calls),
                total_nanos: total,
                saving_nanos: saving,
                server: server_work(trace, &group.calls),
                outside_nanos: group.calls.iter().map(|&c| waited_outside(trace, c)).sum(),
            });
    }
    let findings = by_subject
        .into_iter()
        .map(|((_, parent, name, template), occurrences)| {
            finding(traces, &parent, &name, &template, &occurrences)
        })
        .collect();
    (findings, claims)
}

/// The time the process `calls` asked worked on their requests (a BEAM call's server:
/// [`crate::served::server_time`]), when the trace shows it for every one of them.
fn server_work(trace: &AnalyzedTrace, calls: &[usize]) -> Option<ServerWork> {
    let mut process = None;
    let (mut nanos, mut outside_nanos) = (0u64, 0u64);
    let mut downstream: BTreeMap<String, u64> = BTreeMap::new();
    for &c in calls {
        let call = trace
            .subtree(c)
            .iter()
            .copied()
            .find(|&n| trace.span(n).attr(crate::processes::PEER).is_some())?;
        nanos = nanos.saturating_add(crate::served::server_time(trace, call)?);
        outside_nanos = outside_nanos.saturating_add(crate::served::outside_time(trace, call)?);
        for (peer, waited) in crate::served::waited_downstream(trace, call)? {
            *downstream.entry(peer.clone()).or_default() += waited;
        }
        process = crate::processes::text(trace, call, crate::processes::PEER);
    }
    let shown = |name: &str| crate::processes::shown_process(trace, name);
    Some(ServerWork {
        process: shown(&process?),
        nanos,
        outside_nanos,
        downstream: downstream
            .into_iter()
            .map(|(p, n)| (shown(&p), n))
            .collect(),
    })
}

/// How long BEAM call `call` waited for messages from outside the recording (0: none, or not
/// a call out of it).
fn waited_outside(trace: &AnalyzedTrace, call: usize) -> u64 {
    let waited = trace.span(call).attr(crate::classify::WAITED_OUTSIDE_NS);
    waited.and_then(|v| v.as_i64()).unwrap_or(0).max(0) as u64
}

/// From the first of `calls`' start to the last one's end.
fn extent(trace: &AnalyzedTrace, calls: &[usize]) -> (u64, u64) {
    let start = calls.iter().map(|c| trace.span(*c).start_unix_nano).min();
    let end = calls.iter().map(|c| trace.span(*c).end_unix_nano).max();
    (start.unwrap_or(0), end.unwrap_or(0))
}

/// The called process's share of the calls' time (its own work on the requests and its wait
/// for answers from outside the recording), when the trace shows it for every request and it
/// is at least [`SERVER_SHARE_TO_SAY`] of the calls' time.
fn server_share(occurrences: &[Occurrence]) -> Option<ServerShare> {
    let mut process = None;
    let (mut worked, mut outside, mut total) = (0u64, 0u64, 0u64);
    let mut downstream: BTreeMap<&str, u64> = BTreeMap::new();
    for o in occurrences {
        let server = o.server.as_ref()?;
        process = Some(server.process.clone());
        worked = worked.saturating_add(server.nanos);
        outside = outside.saturating_add(server.outside_nanos);
        total = total.saturating_add(o.total_nanos);
        for (peer, &waited) in &server.downstream {
            *downstream.entry(peer).or_default() += waited;
        }
    }
    let share = |nanos: u64| (nanos as f64 / total.max(1) as f64).min(1.0);
    let all = share(worked.saturating_add(outside));
    let waited_most = downstream.into_iter().max_by_key(|&(_, waited)| waited);
    (all >= SERVER_SHARE_TO_SAY).then(|| ServerShare {
        process: process.unwrap_or_default(),
        share: all,
        outside: share(outside),
        downstream: waited_most.map(|(peer, waited)| (peer.to_owned(), share(waited))),
    })
}

/// [`server_share`]: of the calls' time, the share the called process spent on the requests,
/// and of it the share it waited for answers from outside the recording.
struct ServerShare {
    /// Quoted, as [`ServerWork::process`].
    process: String,
    share: f64,
    outside: f64,
    /// The process it waited for most while it worked (shown), with that wait's share.
    downstream: Option<(String, f64)>,
}

impl ServerShare {
    /// " if …'s work is per request: …; if that work is per item, a batch saves ≈ `per_item`
    /// per run (the trace cannot tell which)", in the words of the share's larger part.
    fn caveat(&self, per_item: u64) -> String {
        let (percent, process) = ((self.share * 100.0).floor(), &self.process);
        let downstream = self
            .downstream
            .as_ref()
            .filter(|(_, waited)| waited * 2.0 > self.share);
        let (what, was, that) = if let Some((other, waited)) = downstream {
            (
                format!("the work of {other}, which {process} waited for,"),
                format!(
                    "{percent:.0} % of the calls' time was {process}'s work on them, {:.0} % of it its wait for {other}",
                    (waited / self.share * 100.0).floor()
                ),
                "that work",
            )
        } else if self.outside * 2.0 > self.share {
            (
                format!("what {process} waited for"),
                format!(
                    "{percent:.0} % of the calls' time it waited for answers from outside the recording (it answered each from a message no recorded process sent: a socket's, a port's, a timer's)"
                ),
                "that",
            )
        } else {
            (
                format!("{process}'s work"),
                format!("{percent:.0} % of the calls' time was its own work on them"),
                "that work",
            )
        };
        format!(
            " if {what} is per request: {was}, which a batch saves only then; if {that} is per item, a batch saves ≈ {} per run (the trace cannot tell which)",
            human_duration(per_item)
        )
    }
}

/// The share of a loop's call time that is the called process's own work from which the
/// finding says what batching saves if that work is per item (half: below it, the round trips
/// are most of what a batch saves either way).
const SERVER_SHARE_TO_SAY: f64 = 0.5;

/// One run's saving over its loops: loops that ran at the same time give back the time of the
/// largest, one after another the sum (runs of overlapping extents, by start).
fn wall_clock_saving<'a>(loops: impl Iterator<Item = &'a Occurrence>) -> u64 {
    let mut loops: Vec<&Occurrence> = loops.collect();
    loops.sort_by_key(|o| o.extent);
    let (mut total, mut group_end, mut group_best) = (0u64, 0u64, 0u64);
    for o in loops {
        if o.extent.0 >= group_end {
            total = total.saturating_add(group_best);
            group_best = 0;
        }
        group_end = group_end.max(o.extent.1);
        group_best = group_best.max(o.saving_nanos);
    }
    total.saturating_add(group_best)
}

/// Whether more than one of `calls` was in flight at once (beyond the clock's resolution,
/// [`crate::clock`]).
fn overlaps(trace: &AnalyzedTrace, calls: &[usize]) -> bool {
    let intervals: Vec<(u64, u64)> = calls
        .iter()
        .map(|c| (trace.span(*c).start_unix_nano, trace.span(*c).end_unix_nano))
        .collect();
    let tolerance = trace.overlap_tolerance(calls);
    overlap(&crate::clock::beyond_tolerance(&intervals, tolerance)).max_in_flight > 1
}

fn finding(
    traces: &[AnalyzedTrace],
    parent: &str,
    name: &str,
    template: &Template,
    occurrences: &[Occurrence],
) -> Finding {
    // Per run: calls, total time, saving, parent instances.
    let mut per_trace: BTreeMap<usize, (u64, u64, u64, u64)> = BTreeMap::new();
    for o in occurrences {
        let entry = per_trace.entry(o.trace).or_default();
        entry.0 += o.call_ids.len() as u64;
        entry.1 = entry.1.saturating_add(o.total_nanos);
        entry.3 += 1;
    }
    for (trace, entry) in per_trace.iter_mut() {
        entry.2 = wall_clock_saving(occurrences.iter().filter(|o| o.trace == *trace));
    }
    let runs = per_trace.len().max(1) as f64;
    let calls: u64 = per_trace.values().map(|v| v.0).sum();
    let total: f64 = per_trace.values().map(|v| v.1 as f64).sum();
    let saving = median(&mut per_trace.values().map(|v| v.2).collect::<Vec<_>>());
    let calls_per_run = calls as f64 / runs;
    let instances_per_run = occurrences.len() as f64 / runs;
    let calls_per_instance = calls as f64 / occurrences.len().max(1) as f64;
    let mean_call = (total / calls.max(1) as f64).round() as u64;
    let outside: u64 = occurrences.iter().map(|o| o.outside_nanos).sum();
    let outside_share = (outside as f64 / total.max(1.0)).min(1.0);
    let total_per_run = (total / runs).round() as u64;
    let (verb, remedy) = match template {
        Template::Sql(_) => (
            "runs",
            "batch them into one query (WHERE … IN (...) or a JOIN)",
        ),
        Template::Http(_) => ("calls", "fetch them in a single request (a batch endpoint)"),
        _ if outside_share > 0.0 => (
            "calls",
            "ask for all the items in one call where what it calls can answer that, else \
             overlap the calls (Task.async_stream/3)",
        ),
        _ => ("calls", "batch them into a single call"),
    };
    let how_often = if instances_per_run > 1.05 {
        format!(
            "{} times per call of {} ({} calls per run, {} in all per run)",
            format_count(calls_per_instance),
            q(parent),
            format_count(instances_per_run),
            format_count(calls_per_run),
        )
    } else {
        format!("{} times per run", format_count(calls_per_run))
    };
    let title = format!(
        "{} {verb} {} one after another, {how_often} ({} each, {} in all)",
        q(parent),
        template.display(name),
        human_duration(mean_call),
        human_duration(total_per_run),
    );
    let mut recommendation = format!("{remedy}; saving ≈ {} per run", human_duration(saving));
    if outside_share > 0.0 {
        recommendation.push_str(&format!(
            "; {:.0} % of the calls' time they waited for messages from outside the recording \
             (a socket, an OS process, a process not recorded)",
            outside_share * 100.0
        ));
    }
    let per_item = server_share(occurrences).map(|server| {
        let per_item = (saving as f64 * (1.0 - server.share)).round() as u64;
        recommendation.push_str(&server.caveat(per_item));
        (server, per_item)
    });
    let mut numbers = BTreeMap::from([
        ("calls_per_run".to_owned(), calls_per_run),
        ("calls_per_parent".to_owned(), calls_per_instance),
        ("parents_per_run".to_owned(), instances_per_run),
        ("mean_call_nanos".to_owned(), mean_call as f64),
        ("total_nanos_per_run".to_owned(), total_per_run as f64),
        ("saving_nanos".to_owned(), saving as f64),
        ("runs".to_owned(), per_trace.len() as f64),
    ]);
    if let Some((server, per_item)) = per_item {
        numbers.insert("server_share".to_owned(), server.share);
        numbers.insert("outside_share".to_owned(), server.outside);
        if let Some((_, waited)) = &server.downstream {
            numbers.insert("downstream_share".to_owned(), *waited);
        }
        numbers.insert("saving_if_per_item_nanos".to_owned(), per_item as f64);
    }
    if outside_share > 0.0 {
        numbers.insert("outside_recording_share".to_owned(), outside_share);
    }
    Finding {
        kind: FindingKind::RepeatedCalls,
        operation: Some(parent.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::RepeatedCalls.as_str(),
            parent,
            name,
            template.key(),
        ]),
        saving_nanos: saving,
        occurrences: per_trace.len() as u64,
        numbers,
        evidence: evidence_per_trace(
            occurrences.iter().map(|o| {
                (
                    traces[o.trace].trace_id,
                    std::iter::once(o.parent_id)
                        .chain(o.call_ids.iter().copied())
                        .collect(),
                )
            }),
            MAX_EVIDENCE,
            MAX_SPANS_PER_EVIDENCE,
        ),
        impact: Impact::of(ImpactBasis::Time),
    }
}

/// Most span ids one evidence item lists (the parent, then the first calls).
const MAX_SPANS_PER_EVIDENCE: usize = 41;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, StatusCode, TraceId};

    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    /// A finding's evidence in these traces: the parent (span 1), then the calls.
    fn parent_and_calls(calls: std::ops::Range<u8>) -> Vec<SpanId> {
        std::iter::once(1)
            .chain(calls)
            .map(|n| SpanId([n; 8]))
            .collect()
    }

    /// chat_history.load: `count` sequential queries of 3.1 ms, one per message id, then render.
    fn chat_history(count: u8) -> Vec<Span> {
        let mut spans = vec![span(1, None, "chat_history.load", 0, 200 * MS)];
        for i in 0..count {
            let start = u64::from(i) * 3_100 * US;
            let mut query = span(10 + i, Some(1), "db.query", start, start + 3_100 * US);
            query.attributes.push(KeyValue::new(
                "db.query.text",
                format!("SELECT * FROM messages WHERE id = {}", 100 + u32::from(i)),
            ));
            spans.push(query);
        }
        spans.push(span(2, Some(1), "render", 190 * MS, 200 * MS));
        spans
    }

    /// A loop under the Node.js SDK: each query's start stamped at `Date.now()` (whole ms),
    /// its end at that start + its sub-ms duration, so consecutive queries appear to overlap
    /// by up to 1 ms; `gap` is the real time between one query's start and the next's.
    fn node_loop(count: u8, gap: u64) -> Vec<Span> {
        let duration = 3_500 * US + 124;
        let mut spans = vec![span(
            1,
            None,
            "request handler - /orders/:id",
            0,
            200 * MS + 7,
        )];
        for i in 0..count {
            let real_start = 5 * MS + u64::from(i) * gap;
            let start = real_start / MS * MS;
            let mut query = span(10 + i, Some(1), "pg.query:SELECT", start, start + duration);
            query.attributes.push(KeyValue::new(
                "db.query.text",
                "SELECT * FROM products WHERE id = $1",
            ));
            spans.push(query);
        }
        spans
    }

    #[test]
    fn an_overlap_a_millisecond_clock_made_is_not_concurrency() {
        // Back to back (3.6 ms apart for 3.5 ms queries): overlaps of up to 1 ms are the clock.
        let findings = detect(
            &[trace(1, node_loop(10, 3_600 * US))],
            &Thresholds::default(),
        );
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].numbers["calls_per_run"], 10.0);
        // 10 × 3.5 ms − 1.5 × 3.5 ms.
        assert_eq!(findings[0].saving_nanos, (3_500 * US + 124) * 85 / 10);
        // Started 2 ms apart, they do run two at a time: no N+1.
        let concurrent = detect(&[trace(1, node_loop(10, 2 * MS))], &Thresholds::default());
        assert!(concurrent.is_empty(), "{concurrent:#?}");
        // Issued together in one run, one at a time in another (a pool that had one free
        // connection): a fan-out, not a loop, in either.
        let mixed = detect(
            &[
                trace(1, node_loop(10, 2 * MS)),
                trace(2, node_loop(10, 3_600 * US)),
            ],
            &Thresholds::default(),
        );
        assert!(mixed.is_empty(), "{mixed:#?}");
    }

    /// Flask with SQLAlchemy and psycopg2 both instrumented: each ORM query is a SQLAlchemy
    /// span (`SELECT devtrace`, scope 0) and a psycopg2 span (`SELECT`, scope 1) of the same
    /// statement, siblings, the second inside the first's interval.
    fn orm_loop(count: u8) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "GET /orders", 0, 100 * MS)];
        let db = |s: &mut Span| {
            s.kind = devtrace_model::SpanKind::Client;
            s.attributes = vec![
                KeyValue::new("db.system", "postgresql"),
                KeyValue::new("db.name", "shop"),
                KeyValue::new(
                    "db.statement",
                    "SELECT customers.id FROM customers WHERE customers.id = %(pk_1)s",
                ),
                KeyValue::new("net.peer.name", "127.0.0.1"),
                KeyValue::new("net.peer.port", 5432i64),
            ];
        };
        for i in 0..count {
            let start = 10 * MS + u64::from(i) * 4 * MS;
            let mut orm = span(10 + i, Some(1), "SELECT shop", start, start + 3 * MS);
            db(&mut orm);
            let mut driver = span(
                50 + i,
                Some(1),
                "SELECT",
                start + 70 * US,
                start + 2_850 * US,
            );
            db(&mut driver);
            driver.scope = 1;
            spans.push(orm);
            spans.push(driver);
        }
        let mut batch = batch(spans);
        batch.scopes = [
            "opentelemetry.instrumentation.sqlalchemy",
            "opentelemetry.instrumentation.psycopg2",
        ]
        .map(|name| devtrace_model::Scope {
            name: name.to_owned(),
            ..Default::default()
        })
        .to_vec();
        AnalyzedTrace::new(TraceId([1; 16]), batch)
    }

    #[test]
    fn a_query_two_instrumentations_record_is_one_call() {
        let findings = detect(&[orm_loop(6)], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert!(f.title.contains("SELECT customers.id"), "{}", f.title);
        assert_eq!(f.numbers["calls_per_run"], 6.0);
        // The outer spans' time, once: 6 × 3 ms − 1.5 × 3 ms.
        assert_eq!(f.saving_nanos, 18 * MS - 4_500 * US);
        assert_eq!(f.evidence[0].span_ids, parent_and_calls(10..16));
    }

    #[test]
    fn an_n_plus_one_loop_fires_with_its_numbers() {
        let findings = detect(&[trace(1, chat_history(40))], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::RepeatedCalls);
        assert_eq!(f.operation.as_deref(), Some("chat_history.load"));
        assert_eq!(
            f.title,
            format!(
                "\"chat_history.load\" runs \"SELECT * FROM messages WHERE id = <n>\" one after \
                 another, 40 times per run \
                 ({} each, {} in all)",
                human_duration(3_100 * US),
                human_duration(124 * MS)
            )
        );
        // 124 ms − 1.5 × 3.1 ms.
        assert_eq!(f.saving_nanos, 124 * MS - 4_650 * US);
        assert_eq!(f.occurrences, 1);
        assert_eq!(f.numbers["calls_per_run"], 40.0);
        assert_eq!(f.numbers["mean_call_nanos"], (3_100 * US) as f64);
        assert_eq!(f.numbers["total_nanos_per_run"], (124 * MS) as f64);
        let expected_ids = parent_and_calls(10..50);
        assert_eq!(f.evidence.len(), 1);
        assert_eq!(f.evidence[0].trace_id, TraceId([1; 16]));
        assert_eq!(f.evidence[0].span_ids, expected_ids);
        assert!(f.recommendation.starts_with("batch them into one query"));
    }

    #[test]
    fn a_loop_of_calls_each_in_a_thin_wrapper_is_the_same_n_plus_one() {
        // `Enum.map(ids, fn id -> Repo.get(id) end)`, a helper `load_message(id)`: each query
        // in a span of its own that adds 50 µs.
        let mut spans = chat_history(40);
        for i in 0..40u8 {
            let query = spans
                .iter_mut()
                .find(|s| s.span_id == SpanId([10 + i; 8]))
                .unwrap();
            query.parent_span_id = Some(SpanId([100 + i; 8]));
            let (start, end) = (query.start_unix_nano, query.end_unix_nano);
            spans.push(span(100 + i, Some(1), "load_message", start, end + 50 * US));
        }
        let findings = detect(&[trace(1, spans.clone())], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.operation.as_deref(), Some("chat_history.load"));
        assert_eq!(f.numbers["calls_per_run"], 40.0);
        assert_eq!(f.saving_nanos, 124 * MS - 4_650 * US);
        assert_eq!(f.evidence[0].span_ids, parent_and_calls(10..50));
        // One of the forty descheduled for 2 ms after its query returned is still a wrapper:
        // its namesakes are thin.
        let descheduled = spans
            .iter_mut()
            .find(|s| s.span_id == SpanId([107; 8]))
            .unwrap();
        descheduled.end_unix_nano += 2 * MS;
        let findings = detect(&[trace(1, spans.clone())], &Thresholds::default());
        assert_eq!(findings[0].numbers["calls_per_run"], 40.0, "{findings:#?}");
        assert_eq!(findings[0].evidence[0].span_ids, parent_and_calls(10..50));
        // A helper that does as much again of its own work is a loop of the program's own.
        for wrapper in spans.iter_mut().filter(|s| s.name == "load_message") {
            wrapper.end_unix_nano += 3 * MS;
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_loop_of_calls_out_of_the_recording_says_where_their_time_went() {
        // `Enum.map(ids, &fetch/1)`, `fetch/1` waiting 2.8 ms of its 3 ms for `:httpc`'s
        // messages: a call out (a client span), named by its function.
        let mut spans = vec![span(1, None, "Profiles.fetch_all/1", 0, 100 * MS)];
        for i in 0..10u8 {
            let start = u64::from(i) * 3 * MS;
            let mut fetch = span(10 + i, Some(1), "Profiles.fetch/1", start, start + 3 * MS);
            fetch.kind = devtrace_model::SpanKind::Client;
            fetch.attributes.push(KeyValue::new(
                crate::classify::WAITED_OUTSIDE_NS,
                (2_800 * US) as i64,
            ));
            spans.push(fetch);
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        let f = &findings[0];
        assert!(
            f.title.starts_with(
                "\"Profiles.fetch_all/1\" calls \"Profiles.fetch/1\" one after another, 10 times"
            ),
            "{}",
            f.title
        );
        assert!(
            f.recommendation
                .starts_with("ask for all the items in one call where what it calls can answer"),
            "{}",
            f.recommendation
        );
        assert!(
            f.recommendation.contains(
                "93 % of the calls' time they waited for messages from outside the recording"
            ),
            "{}",
            f.recommendation
        );
        assert!((f.numbers["outside_recording_share"] - 2.8 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn runs_aggregate_per_parent_and_template() {
        let traces = [trace(1, chat_history(40)), trace(2, chat_history(20))];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.occurrences, 2);
        assert_eq!(f.numbers["calls_per_run"], 30.0);
        // Per run: 124 ms − 4.65 ms and 62 ms − 4.65 ms; the mean of the two.
        assert_eq!(f.saving_nanos, 93 * MS - 4_650 * US);
        assert_eq!(f.evidence.len(), 2);
        let alone = &detect(&traces[1..], &Thresholds::default())[0];
        assert_eq!(alone.fingerprint, f.fingerprint);
    }

    #[test]
    fn a_few_similar_calls_do_not_fire() {
        assert!(detect(&[trace(1, chat_history(2))], &Thresholds::default()).is_empty());
        assert!(detect(&[trace(1, chat_history(4))], &Thresholds::default()).is_empty());
    }

    #[test]
    fn different_templates_are_not_grouped() {
        let mut spans = chat_history(6);
        for (i, s) in spans
            .iter_mut()
            .filter(|s| s.name == "db.query")
            .enumerate()
        {
            if i % 2 == 0 {
                s.attributes[0] =
                    KeyValue::new("db.query.text", "SELECT * FROM users WHERE id = 1");
            }
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn failed_calls_are_left_to_the_retry_storm_detector() {
        let mut spans = chat_history(5);
        spans[3].status.code = StatusCode::Error;
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn concurrent_calls_save_only_the_time_they_cover() {
        // Five 10 ms calls at once cover 10 ms; one batched call would take 15 ms: no saving.
        let mut spans = vec![span(1, None, "fan_out", 0, 20 * MS)];
        for i in 0..5 {
            let mut s = span(10 + i, Some(1), "cache.get", MS, 11 * MS);
            s.attributes
                .push(KeyValue::new("url.full", "http://cache/k/1"));
            spans.push(s);
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn http_calls_group_by_method_and_url_template() {
        let mut spans = vec![span(1, None, "profile.render", 0, 100 * MS)];
        for i in 0..6u8 {
            let start = u64::from(i) * 10 * MS;
            let mut s = span(10 + i, Some(1), "GET", start, start + 10 * MS);
            s.attributes.push(KeyValue::new(
                "url.full",
                format!("https://api.x.com/users/{}?fields=all", 1000 + u32::from(i)),
            ));
            s.attributes
                .push(KeyValue::new("http.request.method", "GET"));
            spans.push(s);
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert!(
            f.title.starts_with(
                "\"profile.render\" calls \"GET api.x.com/users/{id}\" one after another, 6 \
                     times per run"
            ),
            "{}",
            f.title
        );
        assert_eq!(f.saving_nanos, 60 * MS - 15 * MS);
        assert!(
            f.recommendation
                .starts_with("fetch them in a single request")
        );
    }

    /// Five `cache.lookup` spans in a row; `kind` says whether they leave the process.
    fn lookups(kind: devtrace_model::SpanKind) -> Vec<Span> {
        let mut spans = vec![span(1, None, "index", 0, 100)];
        for i in 0..5u8 {
            let mut s = span(
                10 + i,
                Some(1),
                "cache.lookup",
                u64::from(i) * 10,
                u64::from(i) * 10 + 10,
            );
            s.kind = kind;
            spans.push(s);
        }
        spans
    }

    #[test]
    fn without_a_statement_or_url_a_client_call_is_named_by_its_span() {
        let f = &detect(
            &[trace(1, lookups(devtrace_model::SpanKind::Client))],
            &Thresholds::default(),
        )[0];
        assert!(
            f.title
                .starts_with("\"index\" calls \"cache.lookup\" one after another, 5 times per run"),
            "{}",
            f.title
        );
        assert_eq!(f.saving_nanos, 50 - 15);
    }

    #[test]
    fn an_internal_loop_is_not_batching_material() {
        // The program's own loop: nothing leaves the process, nothing to batch.
        let spans = lookups(devtrace_model::SpanKind::Internal);
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_repeated_subtree_is_one_pattern_with_its_count_and_evidence_lists_a_trace_once() {
        // A batch job: 100 chunks, each inserting 10 rows one at a time.
        let mut spans = vec![span(1, None, "import.run", 0, 100_000 * US)];
        let mut id: u16 = 2;
        let sid = |n: u16| SpanId([(n >> 8) as u8, n as u8, 0, 0, 0, 0, 0, 1]);
        let mut all = vec![];
        for chunk in 0..100u64 {
            let parent = sid(id);
            id += 1;
            let start = chunk * 1_000 * US;
            let mut c = span(0, None, "chunk.process", start, start + 1_000 * US);
            c.span_id = parent;
            c.parent_span_id = Some(SpanId([1; 8]));
            all.push(c);
            for row in 0..10u64 {
                let s0 = start + row * 90 * US;
                let mut insert = span(0, None, "INSERT", s0, s0 + 80 * US);
                insert.span_id = sid(id);
                id += 1;
                insert.parent_span_id = Some(parent);
                insert.attributes.push(KeyValue::new(
                    "db.statement",
                    format!("INSERT INTO rows VALUES ({})", chunk * 10 + row),
                ));
                all.push(insert);
            }
        }
        spans.extend(all);
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.occurrences, 1);
        assert_eq!(f.numbers["calls_per_parent"], 10.0);
        assert_eq!(f.numbers["parents_per_run"], 100.0);
        assert!(
            f.title
                .contains("10 times per call of \"chunk.process\" (100 calls per run"),
            "{}",
            f.title
        );
        // 100 loops of (800 µs − 1.5 × 80 µs).
        assert_eq!(f.saving_nanos, 100 * (800 - 120) * US);
        assert_eq!(f.evidence.len(), 1, "one trace, listed once");
        let ids = &f.evidence[0].span_ids;
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "no span id twice");
    }

    #[test]
    fn the_same_loop_in_processes_at_once_saves_its_time_once() {
        // Six workers at once, each a loop of 10 calls of 10 ms under its own parent; then
        // one more loop after them.
        let mut spans = vec![span(1, None, "escript kv.escript", 0, 300 * MS)];
        let mut id: u16 = 2;
        let sid = |n: u16| SpanId([(n >> 8) as u8, n as u8, 0, 0, 0, 0, 0, 1]);
        for start in (0..7u64).map(|w| if w < 6 { w * MS } else { 150 * MS }) {
            let parent = sid(id);
            id += 1;
            let mut p = span(0, None, "worker", start, start + 100 * MS);
            (p.span_id, p.parent_span_id) = (parent, Some(SpanId([1; 8])));
            spans.push(p);
            for n in 0..10u64 {
                let s0 = start + n * 10 * MS;
                let mut call = span(0, None, "kv_store/put", s0, s0 + 10 * MS);
                (call.span_id, call.parent_span_id) = (sid(id), Some(parent));
                id += 1;
                call.kind = devtrace_model::SpanKind::Client;
                call.attributes
                    .push(KeyValue::new("rpc.service", "kv_store"));
                call.attributes.push(KeyValue::new("rpc.method", "put"));
                spans.push(call);
            }
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        // Each loop: 100 ms − 1.5 × 10 ms; the six at once count once, the seventh again.
        assert_eq!(f.saving_nanos, 2 * 85 * MS, "{}", f.title);
    }

    #[test]
    fn calls_to_several_processes_of_one_kind_are_no_n_plus_one() {
        // Five calls to `Sub/seen`, one after another: to five subscriber processes, then
        // (a second parent) five to the same one.
        let mut spans = vec![span(1, None, "elixir pubsub.exs", 0, 200 * MS)];
        let sid = |n: u8| SpanId([n, 0, 0, 0, 0, 0, 0, 1]);
        for (parent, start) in [(2u8, 0u64), (3, 100 * MS)] {
            let mut p = span(0, None, "report", start, start + 60 * MS);
            (p.span_id, p.parent_span_id) = (sid(parent), Some(SpanId([1; 8])));
            spans.push(p);
            for n in 0..5u8 {
                let s0 = start + u64::from(n) * 10 * MS;
                let mut call = span(0, None, "Sub.seen/1", s0, s0 + 10 * MS);
                (call.span_id, call.parent_span_id) = (sid(10 * parent + n), Some(sid(parent)));
                call.kind = devtrace_model::SpanKind::Client;
                let to = if parent == 2 { n } else { 0 };
                call.attributes.extend([
                    KeyValue::new("rpc.service", "Sub"),
                    KeyValue::new("rpc.method", "seen"),
                    KeyValue::new(crate::processes::PEER, format!("<0.11{to}.0>")),
                ]);
                spans.push(call);
            }
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        assert_eq!(f.occurrences, 1);
        assert!(f.title.contains("5 times per run"), "{}", f.title);
        assert_eq!(f.evidence[0].span_ids.len(), 6, "the second parent's loop");
    }

    /// "<0.9.0>"'s `parent` (span 3) calling `server` six times, 10 ms apart, each call
    /// `Server.method/1` (span 10 + i) 10 ms long; with the server's life (span 4) and `serve`'s
    /// spans for each call (given its index and start).
    fn six_calls(
        (parent, server, method): (&str, &str, &str),
        mut serve: impl FnMut(u8, u64) -> Vec<Span>,
    ) -> AnalyzedTrace {
        use crate::processes::tests::life;
        let mut spans = vec![
            span(1, None, "elixir app.exs", 0, 100 * MS),
            life(2, "<0.9.0>", 0, 100 * MS),
            span(3, Some(2), parent, 0, 60 * MS),
            life(4, server, 0, 100 * MS),
        ];
        for i in 0..6u8 {
            let at = u64::from(i) * 10 * MS;
            let name = format!("{server}.{method}/1");
            let mut call = span(10 + i, Some(3), &name, at, at + 10 * MS);
            call.kind = devtrace_model::SpanKind::Client;
            call.attributes.extend([
                KeyValue::new("rpc.service", server),
                KeyValue::new("rpc.method", method),
                KeyValue::new(crate::processes::PEER, server),
            ]);
            spans.push(call);
            spans.extend(serve(i, at));
        }
        trace(1, spans)
    }

    /// `Checkout.total/1` (on "<0.9.0>") calling `PriceBook.price/1` six times, 10 ms each;
    /// "PriceBook" takes each request 0.5 ms in and works on it until `work_ms` in, then waits
    /// for the next one (its next `receive`).
    fn calls_to_a_server(work_ms: u64) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        const US: u64 = 1_000;
        six_calls(("Checkout.total/1", "PriceBook", "price"), |i, at| {
            // Waiting since it finished the request before.
            let idle = (at + work_ms * MS).saturating_sub(10 * MS).min(at);
            let receive = span(20 + i, Some(4), "receive", idle, at + 500 * US);
            vec![
                linked(
                    receive,
                    10 + i,
                    crate::processes::MESSAGE,
                    at + 100 * US,
                    400 * US,
                ),
                span(
                    30 + i,
                    Some(4),
                    "PriceBook.lookup/2",
                    at + 500 * US,
                    at + work_ms * MS,
                ),
            ]
        })
    }

    #[test]
    fn calls_whose_server_works_most_of_their_time_say_what_a_batch_saves_per_item() {
        let findings = detect(&[calls_to_a_server(9)], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        // 60 ms − 1.5 × 10 ms if the work is per request; the server worked 8.5 ms of each
        // call (to its next receive) and 9.5 ms of the last (no receive before the call ended).
        assert_eq!(f.saving_nanos, 45 * MS);
        let share = (5 * 8_500_000 + 9_500_000) as f64 / (60 * MS) as f64;
        assert!(
            (f.numbers["server_share"] - share).abs() < 1e-9,
            "{:?}",
            f.numbers
        );
        assert_eq!(
            f.numbers["saving_if_per_item_nanos"],
            (45e6 * (1.0 - share)).round()
        );
        assert!(
            f.recommendation.ends_with(
                "saving ≈ 45.0 ms per run if \"PriceBook\"'s work is per request: 86 % of the \
                 calls' time was its own work on them, which a batch saves only then; if that \
                 work is per item, a batch saves ≈ 6.0 ms per run (the trace cannot tell which)"
            ),
            "{}",
            f.recommendation
        );
        // Calls that are mostly round trips: a batch saves them either way; nothing to say.
        let findings = detect(&[calls_to_a_server(3)], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        assert!(
            f.recommendation.ends_with("saving ≈ 45.0 ms per run"),
            "{}",
            f.recommendation
        );
        assert!(!f.numbers.contains_key("server_share"));
    }

    #[test]
    fn calls_whose_server_waited_for_another_process_name_that_process() {
        // A pipeline's first stage: "Parse" takes each item 0.5 ms in and hands it to "Enrich"
        // with a call (1–9 ms of each 10), answering when Enrich did.
        use crate::causality::tests::linked;
        const US: u64 = 1_000;
        let t = six_calls(("Pipe.feed/1", "Parse", "push"), |i, at| {
            let receive = span(20 + i, Some(4), "receive", at, at + 500 * US);
            let handle = span(
                30 + i,
                Some(4),
                "Stage.handle_call/3",
                at + 500 * US,
                at + 9_500 * US,
            );
            let mut hand_on = span(40 + i, Some(30 + i), "Stage.push/2", at + MS, at + 9 * MS);
            hand_on
                .attributes
                .push(KeyValue::new(crate::processes::PEER, "Enrich"));
            vec![
                linked(
                    receive,
                    10 + i,
                    crate::processes::MESSAGE,
                    at + 100 * US,
                    400 * US,
                ),
                handle,
                hand_on,
            ]
        });
        let findings = detect(&[t], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        // Parse worked 9.5 ms of each 10 (to the next request's receive), 8 ms of it waiting.
        assert!(
            (f.numbers["downstream_share"] - 0.8).abs() < 1e-9,
            "{:?}",
            f.numbers
        );
        assert!(
            f.recommendation.ends_with(
                "saving ≈ 45.0 ms per run if the work of \"Enrich\", which \"Parse\" waited \
                 for, is per request: 95 % of the calls' time was \"Parse\"'s work on them, 84 % \
                 of it its wait for \"Enrich\", which a batch saves only then; if that work is \
                 per item, a batch saves ≈ 2.2 ms per run (the trace cannot tell which)"
            ),
            "{}",
            f.recommendation
        );
    }

    /// `Client.fetch/1` (on "<0.9.0>") calling `Conn.get/1` six times, 10 ms each; "Conn"
    /// takes each request 0.5 ms in, sends it on its socket by 1 ms, and answers at 9.5 ms from
    /// the `handle_info/2` that the socket's data began at 9 ms (a message no recorded process
    /// sent).
    fn calls_to_a_connection() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        const US: u64 = 1_000;
        six_calls(("Client.fetch/1", "Conn", "get"), |i, at| {
            let request = span(20 + i, Some(4), "receive", at, at + 500 * US);
            let answer = span(70 + i, Some(10 + i), "receive", at, at + 10 * MS);
            vec![
                linked(request, 10 + i, MESSAGE, at + 100 * US, 400 * US),
                span(
                    30 + i,
                    Some(4),
                    "Conn.handle_call/3",
                    at + 500 * US,
                    at + MS,
                ),
                span(40 + i, Some(4), "receive", at + MS, at + 9 * MS),
                span(
                    50 + i,
                    Some(4),
                    "Conn.handle_info/2",
                    at + 9 * MS,
                    at + 9_500 * US,
                ),
                linked(answer, 50 + i, MESSAGE, at + 9_500 * US, 10 * MS),
            ]
        })
    }

    #[test]
    fn calls_a_server_answered_from_outside_the_recording_say_what_a_batch_saves_per_item() {
        let findings = detect(&[calls_to_a_connection()], &Thresholds::default());
        let [f] = findings.as_slice() else {
            panic!("{findings:#?}")
        };
        // Its own work 0.5 ms a call, then 8 ms waiting for its socket: 85 % of the calls.
        assert_eq!(f.saving_nanos, 45 * MS);
        assert!(
            (f.numbers["server_share"] - 0.85).abs() < 1e-9,
            "{:?}",
            f.numbers
        );
        assert!(
            (f.numbers["outside_share"] - 0.8).abs() < 1e-9,
            "{:?}",
            f.numbers
        );
        assert!(
            f.recommendation.ends_with(
                "saving ≈ 45.0 ms per run if what \"Conn\" waited for is per request: 85 % of \
                 the calls' time it waited for answers from outside the recording (it answered \
                 each from a message no recorded process sent: a socket's, a port's, a \
                 timer's), which a batch saves only then; if that is per item, a batch saves ≈ \
                 6.8 ms per run (the trace cannot tell which)"
            ),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn children_started_one_at_a_time_under_a_supervisor_are_no_n_plus_one() {
        // `for addr <- addrs, do: DynamicSupervisor.start_child(sup, {Conn, addr})`.
        let mut spans = vec![span(1, None, "elixir dynsup.exs", 0, 100 * MS)];
        let sid = |n: u8| SpanId([n, 0, 0, 0, 0, 0, 0, 1]);
        let mut child = span(0, None, "process <0.120.0>", 0, 100 * MS);
        (child.span_id, child.parent_span_id) = (sid(9), Some(SpanId([1; 8])));
        child.attributes.extend([
            KeyValue::new("thread.name", "<0.120.0>"),
            KeyValue::new(crate::processes::EXIT_REASON, ":normal"),
            KeyValue::new(crate::processes::SUPERVISOR, "<0.110.0>"),
        ]);
        spans.push(child);
        for n in 0..6u8 {
            let s0 = u64::from(n) * 10 * MS;
            let mut call = span(0, None, "Devices.connect/1", s0, s0 + 10 * MS);
            (call.span_id, call.parent_span_id) = (sid(10 + n), Some(SpanId([1; 8])));
            call.kind = devtrace_model::SpanKind::Client;
            call.attributes.extend([
                KeyValue::new("rpc.service", "DynamicSupervisor"),
                KeyValue::new("rpc.method", "connect"),
                KeyValue::new(crate::processes::PEER, "<0.110.0>"),
            ]);
            spans.push(call);
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut spans = vec![span(1, None, "p", 100, 0)];
        for i in 0..6u8 {
            spans.push(span(10 + i, Some(1), "q", 50, 10)); // ends before it starts
        }
        spans.push(span(30, Some(77), "orphan", 0, 1));
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn templates_display_without_the_scheme() {
        assert_eq!(
            Template::Http("POST https://api.openai.com/v1/chat".into()).display("x"),
            "\"POST api.openai.com/v1/chat\""
        );
        assert_eq!(
            Template::Http("/v1/items".into()).display("x"),
            "\"/v1/items\""
        );
        assert_eq!(Template::Name.display("span"), "\"span\"");
        assert_eq!(
            Template::Sql("x".repeat(120)).display("").chars().count(),
            103
        );
    }
}
