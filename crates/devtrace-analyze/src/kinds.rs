//! Time by kind of work, in wall-clock time that adds up.
//!
//! Each span's own time (its interval, clipped to its parent's, minus its children's) is work
//! of its kind ([`classify`]); a wait recorded inside a span ([`crate::waits`]) is waiting, not
//! its kind's work. Where several pieces of work run at once, each instant is shared equally
//! among them: ten concurrent 100 ms HTTP calls under a 100 ms request are 100 ms of HTTP, not
//! 1 s. So the kinds of one span's subtree sum exactly to its duration, and no share exceeds
//! 100 %.

use crate::AnalyzedTrace;
use crate::classify::{WorkKind, classify};
use std::collections::BTreeMap;

/// Nanoseconds of wall-clock time per kind of work in the subtree of `top`; they sum to
/// `top`'s duration.
pub fn time_by_kind(trace: &AnalyzedTrace, top: usize) -> BTreeMap<WorkKind, u64> {
    let mut segments: Vec<(u64, u64, WorkKind)> = Vec::new();
    let span = trace.span(top);
    let (start, end) = (
        span.start_unix_nano,
        span.end_unix_nano.max(span.start_unix_nano),
    );
    collect(trace, top, start, end, &mut segments);
    share_out(&segments)
}

/// [`time_by_kind`] for many spans of one trace (every run of an operation, however nested),
/// each in time proportional to its children rather than its subtree.
///
/// Where no work under a span runs concurrently (children lie within their parent and do not
/// overlap) its subtree's own-time segments are disjoint, so each kind's share is the plain sum
/// of its spans' own time: a sum over the subtree's contiguous run of the tree's pre-order,
/// read from prefix sums. Elsewhere it falls back to the sweep.
pub struct KindTotals {
    /// Per pre-order position, per kind ([`WorkKind::ALL`] order): the own time of the spans
    /// before it.
    before: Vec<[u64; WorkKind::ALL.len()]>,
    /// Per pre-order position: how many spans before it have concurrent or out-of-bounds
    /// children.
    concurrent_before: Vec<usize>,
}

/// Beyond 2^53 ns the sweep's floating-point sums are not exact: leave such spans to it.
const EXACT_NANOS: u64 = 1 << 53;

impl KindTotals {
    pub fn of(trace: &AnalyzedTrace) -> Self {
        let order = &trace.tree.preorder;
        let mut before = Vec::with_capacity(order.len() + 1);
        let mut concurrent_before = Vec::with_capacity(order.len() + 1);
        let mut sums = [0u64; WorkKind::ALL.len()];
        let mut concurrent = 0;
        for &node in order {
            before.push(sums);
            concurrent_before.push(concurrent);
            let Ok(frame) = own_frame(trace, node) else {
                concurrent += 1;
                continue;
            };
            let Some(frame) = frame else {
                continue;
            };
            let mut segments = Vec::new();
            push_own_time(trace, &frame, &mut segments);
            for (s, e, kind) in segments {
                let slot = WorkKind::ALL.iter().position(|k| *k == kind);
                sums[slot.expect("every kind is in WorkKind::ALL")] += e - s;
            }
        }
        before.push(sums);
        concurrent_before.push(concurrent);
        Self {
            before,
            concurrent_before,
        }
    }

    /// [`time_by_kind`] of `top`.
    pub fn of_subtree(&self, trace: &AnalyzedTrace, top: usize) -> BTreeMap<WorkKind, u64> {
        let (from, to) = (trace.tree.position[top], trace.tree.subtree_end[top]);
        let span = trace.span(top);
        let duration = span.end_unix_nano.saturating_sub(span.start_unix_nano);
        if self.concurrent_before[to] != self.concurrent_before[from] || duration >= EXACT_NANOS {
            return time_by_kind(trace, top);
        }
        WorkKind::ALL
            .iter()
            .enumerate()
            .map(|(k, kind)| (*kind, self.before[to][k] - self.before[from][k]))
            .filter(|(_, nanos)| *nanos > 0)
            .collect()
    }
}

/// The frame of `node` over its own interval, its children as covered (`None` when it has
/// no length), or `Err` when the sweep could not just add up its subtree: children that stick
/// out of it or overlap each other, or children under a span of no length (the sweep skips
/// them).
fn own_frame(trace: &AnalyzedTrace, node: usize) -> Result<Option<Frame>, ()> {
    let span = trace.span(node);
    let (start, end) = (
        span.start_unix_nano,
        span.end_unix_nano.max(span.start_unix_nano),
    );
    let children = &trace.tree.children[node];
    let Some(mut frame) = Frame::enter(trace, node, start, end) else {
        return if children.is_empty() {
            Ok(None)
        } else {
            Err(())
        };
    };
    let mut reached = start;
    for &child in children {
        let c = trace.span(child);
        if c.start_unix_nano < start || c.end_unix_nano > end {
            return Err(());
        }
        if c.start_unix_nano < c.end_unix_nano {
            if c.start_unix_nano < reached {
                return Err(());
            }
            reached = c.end_unix_nano;
            frame.covered.push((c.start_unix_nano, c.end_unix_nano));
        }
    }
    Ok(Some(frame))
}

/// The own-time segments of `top` (clipped to `[lo, hi)`) and of its subtree: each span's
/// after its children's, children in order. Iterative (an explicit stack), so a 100,000-deep
/// chain of calls costs heap, not the thread's stack.
fn collect(
    trace: &AnalyzedTrace,
    top: usize,
    lo: u64,
    hi: u64,
    out: &mut Vec<(u64, u64, WorkKind)>,
) {
    let mut stack: Vec<Frame> = Vec::new();
    stack.extend(Frame::enter(trace, top, lo, hi));
    while let Some(frame) = stack.last_mut() {
        let Some(&child) = trace.tree.children[frame.node].get(frame.next_child) else {
            let done = stack.pop().expect("a frame is on the stack");
            push_own_time(trace, &done, out);
            continue;
        };
        frame.next_child += 1;
        let c = trace.span(child);
        let (cs, ce) = (
            c.start_unix_nano.clamp(frame.start, frame.end),
            c.end_unix_nano.clamp(frame.start, frame.end),
        );
        if cs < ce {
            frame.covered.push((cs, ce));
            let (start, end) = (frame.start, frame.end);
            stack.extend(Frame::enter(trace, child, start, end));
        }
    }
}

/// A span being collected: its clipped interval, the next child to visit and the parts of
/// its interval its children cover so far.
struct Frame {
    node: usize,
    start: u64,
    end: u64,
    next_child: usize,
    covered: Vec<(u64, u64)>,
}

impl Frame {
    /// `node` clipped to `[lo, hi)`, or `None` when nothing of it is left.
    fn enter(trace: &AnalyzedTrace, node: usize, lo: u64, hi: u64) -> Option<Frame> {
        let span = trace.span(node);
        let start = span.start_unix_nano.clamp(lo, hi);
        let end = span.end_unix_nano.clamp(start, hi);
        (start < end).then(|| Frame {
            node,
            start,
            end,
            next_child: 0,
            covered: Vec::new(),
        })
    }
}

/// The own time of `frame`'s span (its interval less its children's), waits cut out as
/// waiting.
fn push_own_time(trace: &AnalyzedTrace, frame: &Frame, out: &mut Vec<(u64, u64, WorkKind)>) {
    let (node, start, end) = (frame.node, frame.start, frame.end);
    let span = trace.span(node);
    let kind = classify(trace, node);
    let waits: Vec<(u64, u64)> = crate::waits::span_waits(span, node)
        .iter()
        .map(|w| {
            (
                w.start_unix_nano.clamp(start, end),
                w.end_unix_nano.clamp(start, end),
            )
        })
        .filter(|(s, e)| s < e)
        .collect();
    for (s, e) in gaps(start, end, &frame.covered) {
        let mut cursor = s;
        let mut inside: Vec<(u64, u64)> = waits
            .iter()
            .map(|(ws, we)| ((*ws).max(s), (*we).min(e)))
            .filter(|(ws, we)| ws < we)
            .collect();
        inside.sort_unstable();
        for (ws, we) in merge(inside) {
            if ws > cursor {
                out.push((cursor, ws, kind));
            }
            out.push((ws.max(cursor), we, WorkKind::LockWait));
            cursor = cursor.max(we);
        }
        if cursor < e {
            out.push((cursor, e, kind));
        }
    }
}

fn merge(mut intervals: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    intervals.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (s, e) in intervals {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The parts of `[start, end)` not covered by `covered`.
fn gaps(start: u64, end: u64, covered: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut cursor = start;
    for (s, e) in merge(covered.to_vec()) {
        if s > cursor {
            out.push((cursor, s));
        }
        cursor = cursor.max(e);
    }
    if cursor < end {
        out.push((cursor, end));
    }
    out
}

/// Sweeps the segments, sharing each instant equally among the segments active then.
fn share_out(segments: &[(u64, u64, WorkKind)]) -> BTreeMap<WorkKind, u64> {
    // Boundaries: +1 at a segment's start, −1 at its end, per kind.
    let mut points: Vec<(u64, i64, WorkKind)> = Vec::with_capacity(segments.len() * 2);
    for &(s, e, kind) in segments {
        if s < e {
            points.push((s, 1, kind));
            points.push((e, -1, kind));
        }
    }
    points.sort_unstable_by_key(|(t, delta, kind)| (*t, *delta, *kind));
    let mut active: BTreeMap<WorkKind, i64> = BTreeMap::new();
    let mut total_active: i64 = 0;
    let mut shares: BTreeMap<WorkKind, f64> = BTreeMap::new();
    let mut last = points.first().map_or(0, |p| p.0);
    let mut covered: u64 = 0;
    for (t, delta, kind) in points {
        if t > last && total_active > 0 {
            let length = (t - last) as f64;
            covered += t - last;
            for (k, n) in &active {
                if *n > 0 {
                    *shares.entry(*k).or_default() += length * *n as f64 / total_active as f64;
                }
            }
        }
        last = t;
        *active.entry(kind).or_default() += delta;
        total_active += delta;
    }
    // Round to whole nanoseconds so that the kinds sum exactly to the covered time: floor
    // each, then hand the remainder to the largest fractions.
    let mut out: BTreeMap<WorkKind, u64> = shares.iter().map(|(k, v)| (*k, *v as u64)).collect();
    let assigned: u64 = out.values().sum();
    let mut remainder = covered.saturating_sub(assigned);
    let mut by_fraction: Vec<(f64, WorkKind)> =
        shares.iter().map(|(k, v)| (v - v.floor(), *k)).collect();
    by_fraction.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, kind) in by_fraction {
        if remainder == 0 {
            break;
        }
        *out.entry(kind).or_default() += 1;
        remainder -= 1;
    }
    out.retain(|_, v| *v > 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{Event, KeyValue, SpanKind, TraceId};

    fn http(id: u8, parent: u8, start: u64, end: u64) -> devtrace_model::Span {
        let mut s = span(id, Some(parent), "GET", start, end);
        s.kind = SpanKind::Client;
        s.attributes
            .push(KeyValue::new("http.request.method", "GET"));
        s
    }

    #[test]
    fn concurrent_calls_count_once_and_kinds_sum_to_the_duration() {
        let mut spans = vec![span(1, None, "request", 0, 120)];
        for i in 0..10u8 {
            spans.push(http(2 + i, 1, 10, 110));
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let kinds = time_by_kind(&t, 0);
        assert_eq!(kinds[&WorkKind::Http], 100);
        assert_eq!(kinds[&WorkKind::Other], 20);
        assert_eq!(kinds.values().sum::<u64>(), 120);
    }

    #[test]
    fn overlapping_kinds_share_the_instant() {
        let mut db = span(3, Some(1), "SELECT", 0, 100);
        db.attributes.push(KeyValue::new("db.system", "postgresql"));
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![
                span(1, None, "request", 0, 100),
                http(2, 1, 0, 100),
                db,
            ]),
        );
        let kinds = time_by_kind(&t, 0);
        assert_eq!(kinds[&WorkKind::Http], 50);
        assert_eq!(kinds[&WorkKind::Database], 50);
        assert!(!kinds.contains_key(&WorkKind::Other));
    }

    #[test]
    fn a_wait_inside_a_span_is_waiting() {
        let mut db = span(2, Some(1), "UPDATE accounts", 0, 1_300);
        db.attributes.push(KeyValue::new("db.system", "postgresql"));
        for (name, at) in [("Waiting for lock", 100), ("Acquired lock", 1_068)] {
            db.events.push(Event {
                time_unix_nano: at,
                name: name.into(),
                attributes: vec![],
                dropped_attributes_count: 0,
            });
        }
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![span(1, None, "transfer", 0, 1_300), db]),
        );
        let kinds = time_by_kind(&t, 0);
        assert_eq!(kinds[&WorkKind::LockWait], 968);
        assert_eq!(kinds[&WorkKind::Database], 332);
    }
}
