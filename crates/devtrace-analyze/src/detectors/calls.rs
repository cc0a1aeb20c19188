//! What the call detectors share: sibling calls of one kind under one parent, how many of them
//! were in flight at once, aggregation of a parent's instances across runs (a repeated subtree
//! is one pattern with its count), and the spans each finding claims so that no span's time is
//! claimed by two findings.

use crate::call::{Template, describe};
use crate::{AnalyzedTrace, Evidence};
use devtrace_model::SpanId;
use std::collections::{BTreeMap, HashSet};

/// Spans (trace index, span index) that a finding already accounts for.
#[derive(Clone, Debug, Default)]
pub struct Claims {
    spans: HashSet<(usize, usize)>,
}

impl Claims {
    pub fn claim(&mut self, trace: usize, span: usize) {
        self.spans.insert((trace, span));
    }

    pub fn is_claimed(&self, trace: usize, span: usize) -> bool {
        self.spans.contains(&(trace, span))
    }

    pub fn extend(&mut self, other: Claims) {
        self.spans.extend(other.spans);
    }
}

/// Sibling calls under one parent span with the same name and template: one loop or fan-out.
#[derive(Debug)]
pub struct CallGroup {
    pub trace: usize,
    pub parent: usize,
    pub name: String,
    pub template: Template,
    /// Span indices, in start order.
    pub calls: Vec<usize>,
}

/// The groups of at least `min_calls` successful outbound sibling calls (same name and
/// template, and the same process for calls to BEAM processes; none to a supervisor, whose
/// children start one at a time) in `traces`, in trace and tree order; a span that is an inner layer of a call
/// ([`crate::call::inner_layers`]) is not a call of its own, and a thin wrapper's call
/// ([`crate::call::wrapped_calls`]) is its wrapper's parent's.
pub fn outbound_groups(traces: &[AnalyzedTrace], min_calls: usize) -> Vec<CallGroup> {
    let mut out = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        // One call recorded by two instrumentation layers counts once, as its outer span.
        let inner = crate::call::inner_layers(trace);
        let supervisors = crate::processes::supervisors(trace);
        for (parent, _) in trace.tree.walk() {
            let children = &trace.tree.children[parent];
            // The spans right under a process's life are separate events (its callbacks, a
            // supervisor's restarts), not one operation's steps.
            if children.len() < min_calls || crate::processes::is_life(trace, parent) {
                continue;
            }
            // Calls to two processes of one kind (two subscribers, two sessions) are not one
            // server's calls that one call could batch: split by the process called.
            let mut groups: BTreeMap<(&str, Template, Option<String>), Vec<usize>> =
                BTreeMap::new();
            // A thin wrapper (the anonymous function `Enum.map` runs for each item, a
            // helper around a request) stands for the call it makes.
            let call_spans = crate::call::wrapped_calls(trace, children, &inner);
            for (&child, call_span) in children.iter().zip(call_spans) {
                let span = trace.span(call_span);
                if inner[child] || span.is_error() || crate::errors::is_error_span(span) {
                    continue;
                }
                let call = describe(trace, call_span);
                let peer = crate::processes::text(trace, call_span, crate::processes::PEER);
                // Starting children one at a time is what a supervisor does: no batch.
                if peer.as_ref().is_some_and(|p| supervisors.contains(p)) {
                    continue;
                }
                if call.outbound {
                    groups
                        .entry((span.name.as_str(), call.template, peer))
                        .or_default()
                        .push(call_span);
                }
            }
            for ((name, template, _), calls) in groups {
                if calls.len() >= min_calls {
                    out.push(CallGroup {
                        trace: t,
                        parent,
                        name: name.to_owned(),
                        template,
                        calls,
                    });
                }
            }
        }
    }
    out
}

/// How a set of calls overlapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// Most calls in flight at once.
    pub max_in_flight: usize,
    /// Time with exactly `max_in_flight` calls in flight.
    pub at_max_nanos: u64,
    /// Time with at least one call in flight (the union of the intervals).
    pub busy_nanos: u64,
    /// First start to last end.
    pub phase_nanos: u64,
}

/// The overlap of `intervals` (ends before starts count as empty).
pub fn overlap(intervals: &[(u64, u64)]) -> Overlap {
    let mut points: Vec<(u64, i64)> = Vec::with_capacity(intervals.len() * 2);
    for &(s, e) in intervals {
        if s < e {
            points.push((s, 1));
            points.push((e, -1));
        }
    }
    // Ends before starts at the same instant: back-to-back calls do not overlap.
    points.sort_unstable();
    let (mut depth, mut max_depth) = (0i64, 0i64);
    for (_, delta) in &points {
        depth += delta;
        max_depth = max_depth.max(depth);
    }
    let (mut depth, mut at_max, mut busy) = (0i64, 0u64, 0u64);
    let mut last = points.first().map_or(0, |p| p.0);
    for (t, delta) in &points {
        if *t > last {
            if depth > 0 {
                busy += t - last;
            }
            if depth == max_depth {
                at_max += t - last;
            }
        }
        last = *t;
        depth += delta;
    }
    let first = points.first().map_or(0, |p| p.0);
    let end = points.last().map_or(0, |p| p.0);
    Overlap {
        max_in_flight: max_depth.max(0) as usize,
        at_max_nanos: at_max,
        busy_nanos: busy,
        phase_nanos: end - first,
    }
}

/// How long calls of these durations take, started in this order, with at most `limit` in
/// flight (each starts as soon as a slot frees): list scheduling, the model of a pool or
/// semaphore.
pub fn makespan(durations: &[u64], limit: usize) -> u64 {
    let limit = limit.max(1);
    let mut slots: std::collections::BinaryHeap<std::cmp::Reverse<u64>> =
        std::iter::repeat_n(std::cmp::Reverse(0u64), limit).collect();
    let mut end = 0u64;
    for &d in durations {
        let std::cmp::Reverse(free_at) = slots.pop().unwrap_or(std::cmp::Reverse(0));
        let done = free_at.saturating_add(d);
        end = end.max(done);
        slots.push(std::cmp::Reverse(done));
    }
    end
}

/// The median of `values` (for an even count, the mean of the two middle ones, rounded down);
/// 0 when empty.
pub fn median(values: &mut [u64]) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        values[mid - 1] / 2 + values[mid] / 2 + (values[mid - 1] % 2 + values[mid] % 2) / 2
    } else {
        values[mid]
    }
}

/// Evidence with one item per trace (never the same trace twice), at most `max_traces`, each
/// with at most `max_spans` span ids (the first ones given).
pub fn evidence_per_trace(
    items: impl IntoIterator<Item = (devtrace_model::TraceId, Vec<SpanId>)>,
    max_traces: usize,
    max_spans: usize,
) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for (trace_id, spans) in items {
        let full = out.len() >= max_traces;
        match out.iter_mut().find(|e| e.trace_id == trace_id) {
            Some(e) => {
                for s in spans {
                    if e.span_ids.len() >= max_spans {
                        break;
                    }
                    if !e.span_ids.contains(&s) {
                        e.span_ids.push(s);
                    }
                }
            }
            None if !full => {
                let mut unique: Vec<SpanId> = Vec::new();
                for s in spans {
                    if unique.len() >= max_spans {
                        break;
                    }
                    if !unique.contains(&s) {
                        unique.push(s);
                    }
                }
                out.push(Evidence {
                    trace_id,
                    span_ids: unique,
                });
            }
            None => {}
        }
    }
    out
}

/// "40", or "40.5" when the mean is not whole.
pub fn format_count(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 {
        format!("{}", value.round() as u64)
    } else {
        format!("{value:.1}")
    }
}

/// The root operation of the trace (its first root's name).
pub fn root_name(trace: &AnalyzedTrace) -> &str {
    trace.root().map_or("", |r| trace.span(r).name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_calls_in_flight() {
        // Ten calls, three at a time: 0-70, 0-70, 0-70, 70-140 ×3, 140-207 ×3, 140-200.
        let mut intervals = vec![];
        for wave in 0..3u64 {
            for _ in 0..3 {
                intervals.push((wave * 70, wave * 70 + 67));
            }
        }
        intervals.push((67, 70));
        let o = overlap(&intervals);
        assert_eq!(o.max_in_flight, 3);
        assert_eq!(o.phase_nanos, 207);
        // Back to back is not overlap.
        assert_eq!(overlap(&[(0, 10), (10, 20)]).max_in_flight, 1);
    }

    #[test]
    fn makespan_models_a_pool() {
        let d = [10, 10, 10, 10];
        assert_eq!(makespan(&d, 1), 40);
        assert_eq!(makespan(&d, 2), 20);
        assert_eq!(makespan(&d, 4), 10);
        assert_eq!(makespan(&[30, 10, 10, 10], 2), 30);
        assert_eq!(median(&mut [5, 1, 3]), 3);
        assert_eq!(median(&mut [4, 1, 3, 2]), 2);
    }
}
