//! A trace's threads and BEAM processes as lanes, for a waterfall drawn lane by lane: which
//! rows run on which thread or process, how deep each sits among its own lane's spans, and
//! how many messages each lane received and sent; and a GenServer's state at a moment — the
//! `after` of its process's last callback that ended before it (docs/beam.md, "GenServer
//! state"; computed by [`crate::processes::state_at`]), for time travel in a span panel.
//!
//! A span's thread is its own `thread.name` (a BEAM process's registered name or pid), else
//! its `thread.id`, else its parent's ([`devtrace_analyze::causality::thread_of`]).

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::causality::thread_of;
use devtrace_model::{AnyValue, SpanId};
use serde::{Deserialize, Serialize};

use crate::causal::{CausalArrow, STATE_AFTER, STATE_BEFORE};
use crate::processes::{StateAt, state_at};

/// The BEAM process a span ran in: a lane of such spans is a process, not a thread.
pub const BEAM_PROCESS: &str = "devtrace.beam.process";

/// One thread or process of a trace, with the waterfall rows that ran on it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lane {
    /// `thread.name`, else `thread.id`; `None` for the spans that name no thread (a run's own
    /// span).
    pub name: Option<String>,
    /// `process` (a BEAM process) or `thread`.
    pub kind: String,
    /// The rows on this lane, in row order (depth-first).
    pub rows: Vec<u32>,
    /// Its first span's start and its last span's end, from the trace's earliest start,
    /// nanoseconds.
    pub start_ns: u64,
    pub end_ns: u64,
    /// Messages (causal links of kind `message`) its spans received, and sent.
    pub messages_received: u32,
    pub messages_sent: u32,
}

/// Every row's lane: the lanes in order of their first start, each row's lane and its depth
/// among its lane's spans (0: no ancestor on the same lane).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub lanes: Vec<Lane>,
    pub lane: Vec<u32>,
    pub lane_depth: Vec<u32>,
}

/// The lanes of `trace`, whose waterfall rows are `order` (span index and depth, row by row)
/// with `origin` its earliest start and `arrows` its causal arrows.
pub fn lanes(
    trace: &AnalyzedTrace,
    order: &[(usize, usize)],
    origin: u64,
    arrows: &[CausalArrow],
) -> Lanes {
    let n = order.len();
    let mut row_of = vec![0usize; trace.spans.spans.len()];
    for (row, &(i, _)) in order.iter().enumerate() {
        row_of[i] = row;
    }
    // Depth-first order: a parent's thread is known before its children's.
    let mut thread: Vec<Option<String>> = vec![None; n];
    let mut parent_row: Vec<Option<usize>> = vec![None; n];
    for (row, &(i, _)) in order.iter().enumerate() {
        parent_row[row] = trace.tree.parent[i].map(|p| row_of[p]);
        thread[row] =
            own_thread(trace, i).or_else(|| parent_row[row].and_then(|p| thread[p].clone()));
    }
    let mut found: Vec<Lane> = Vec::new();
    let mut index_of: std::collections::HashMap<Option<&str>, usize> = Default::default();
    let mut lane_of_row = vec![0usize; n];
    for (row, &(i, _)) in order.iter().enumerate() {
        let span = trace.span(i);
        let k = *index_of.entry(thread[row].as_deref()).or_insert_with(|| {
            found.push(Lane {
                name: thread[row].clone(),
                kind: "thread".into(),
                rows: Vec::new(),
                start_ns: u64::MAX,
                end_ns: 0,
                messages_received: 0,
                messages_sent: 0,
            });
            found.len() - 1
        });
        let lane = &mut found[k];
        lane.rows.push(row as u32);
        lane.start_ns = lane
            .start_ns
            .min(span.start_unix_nano.saturating_sub(origin));
        lane.end_ns = lane.end_ns.max(span.end_unix_nano.saturating_sub(origin));
        if span.attr(BEAM_PROCESS).is_some() {
            lane.kind = "process".into();
        }
        lane_of_row[row] = k;
    }
    count_messages(&mut found, &lane_of_row, trace, &row_of, arrows);
    // Lanes by first start (the first row breaks ties), renumbered.
    let mut by_start: Vec<usize> = (0..found.len()).collect();
    by_start.sort_by_key(|&k| (found[k].start_ns, found[k].rows[0]));
    let mut renumber = vec![0u32; found.len()];
    for (new, &old) in by_start.iter().enumerate() {
        renumber[old] = new as u32;
    }
    let lane: Vec<u32> = lane_of_row.iter().map(|&k| renumber[k]).collect();
    let mut lane_depth = vec![0u32; n];
    for row in 0..n {
        if let Some(p) = parent_row[row].filter(|&p| lane[p] == lane[row]) {
            lane_depth[row] = lane_depth[p] + 1;
        }
    }
    let mut slots: Vec<Option<Lane>> = found.into_iter().map(Some).collect();
    Lanes {
        lanes: by_start
            .iter()
            .map(|&k| slots[k].take().expect("each lane once"))
            .collect(),
        lane,
        lane_depth,
    }
}

/// A span's own thread (not its parent's): `thread.name`, else `thread.id`.
fn own_thread(trace: &AnalyzedTrace, i: usize) -> Option<String> {
    let span = trace.span(i);
    span.attr("thread.name")
        .or_else(|| span.attr("thread.id"))
        .map(AnyValue::to_display_string)
}

fn count_messages(
    lanes: &mut [Lane],
    lane_of_row: &[usize],
    trace: &AnalyzedTrace,
    row_of: &[usize],
    arrows: &[CausalArrow],
) {
    let index: std::collections::HashMap<SpanId, usize> = trace
        .spans
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    for arrow in arrows.iter().filter(|a| a.kind == "message") {
        if let (Some(&cause), Some(&waiter)) = (index.get(&arrow.cause), index.get(&arrow.waiter)) {
            lanes[lane_of_row[row_of[cause]]].messages_sent += 1;
            lanes[lane_of_row[row_of[waiter]]].messages_received += 1;
        }
    }
}

/// A GenServer's state around one span: the span's own (a callback's state before and after
/// it) and the process's state when the span started.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessState {
    /// The process (its registered name or pid), as recorded.
    pub process: String,
    /// For a callback: the state it was given and the state it returned, as recorded.
    pub before: Option<String>,
    pub after: Option<String>,
    /// The state when the span started: the `after` of the process's last callback that had
    /// ended by then; `None` when none had.
    pub at_start: Option<StateAt>,
}

/// The GenServer state around span `index`: `None` when no callback of its process (the
/// span's own included) recorded a state.
pub fn process_state(trace: &AnalyzedTrace, index: usize) -> Option<ProcessState> {
    let span = trace.span(index);
    let text = |i: usize, key: &str| trace.span(i).attr(key).map(AnyValue::to_display_string);
    let process = thread_of(trace, index)?;
    let records_state = (0..trace.spans.spans.len())
        .filter(|&c| trace.span(c).attr(STATE_AFTER).is_some())
        .any(|c| thread_of(trace, c).as_deref() == Some(process.as_str()));
    if !records_state && span.attr(STATE_BEFORE).is_none() {
        return None;
    }
    // Ended by the span's start, and begun before it (not the span itself, nor a callback of
    // no length at the same instant inside it).
    let at_start = state_at(trace, &process, span.start_unix_nano, Some(index));
    Some(ProcessState {
        process,
        before: text(index, STATE_BEFORE),
        after: text(index, STATE_AFTER),
        at_start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::span;
    use devtrace_model::{KeyValue, Link, Resource, Scope, Span, SpanBatch, TraceId, semconv};

    const MS: u64 = 1_000_000;

    fn on(mut s: Span, process: &str) -> Span {
        s.attributes.push(KeyValue::new("thread.name", process));
        s.attributes.push(KeyValue::new(BEAM_PROCESS, process));
        s
    }

    fn callback(s: Span, before: &str, after: &str) -> Span {
        let mut s = on(s, "Cart.Server");
        s.attributes.push(KeyValue::new(STATE_BEFORE, before));
        s.attributes.push(KeyValue::new(STATE_AFTER, after));
        s
    }

    fn message_from(mut s: Span, cause: u8) -> Span {
        s.links.push(Link {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([cause; 8]),
            trace_state: String::new(),
            attributes: vec![KeyValue::new(semconv::causal::LINK_KIND, "message")],
            dropped_attributes_count: 0,
            flags: 0,
        });
        s
    }

    /// `elixir cart.exs` (no thread) → process Cart.Server (init, handle_call, handle_call)
    /// and process <0.106.0> (add/1, whose receive the server's process answered); the server's
    /// wait for the request is linked to add/1.
    fn cart() -> AnalyzedTrace {
        AnalyzedTrace::new(
            TraceId([9; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans: vec![
                    span(9, 1, None, "elixir cart.exs", 0, 100 * MS),
                    on(
                        span(9, 2, Some(1), "process Cart.Server", 10 * MS, 90 * MS),
                        "Cart.Server",
                    ),
                    callback(
                        span(9, 3, Some(2), "Cart.Server.init/1", 10 * MS, 11 * MS),
                        "%{items: 0}",
                        "%{items: 0}",
                    ),
                    message_from(span(9, 4, Some(2), "receive", 11 * MS, 30 * MS), 7),
                    callback(
                        span(9, 5, Some(2), "Cart.Server.handle_call/3", 30 * MS, 40 * MS),
                        "%{items: 0}",
                        "%{items: 1}",
                    ),
                    span(9, 6, Some(5), "receive", 31 * MS, 39 * MS),
                    on(
                        span(9, 8, Some(1), "process <0.106.0>", 20 * MS, 45 * MS),
                        "<0.106.0>",
                    ),
                    span(9, 7, Some(8), "Cart.Server.add/1", 29 * MS, 44 * MS),
                    message_from(span(9, 10, Some(7), "receive", 29 * MS, 44 * MS), 2),
                    callback(
                        span(
                            9,
                            11,
                            Some(2),
                            "Cart.Server.handle_call/3",
                            50 * MS,
                            60 * MS,
                        ),
                        "%{items: 1}",
                        "%{items: 3}",
                    ),
                ],
            },
        )
    }

    fn rows(trace: &AnalyzedTrace) -> Vec<(usize, usize)> {
        trace.tree.walk().collect()
    }

    #[test]
    fn each_process_is_a_lane_of_its_rows_with_its_messages() {
        let trace = cart();
        let order = rows(&trace);
        let arrows = crate::causal::arrows(&trace);
        let lanes = lanes(&trace, &order, 0, &arrows);
        let names: Vec<Option<&str>> = lanes.lanes.iter().map(|l| l.name.as_deref()).collect();
        assert_eq!(
            names,
            [None, Some("Cart.Server"), Some("<0.106.0>")],
            "by first start"
        );
        let server = &lanes.lanes[1];
        assert_eq!(server.kind, "process");
        assert_eq!(
            lanes.lanes[0].kind, "thread",
            "the run's own span names no process"
        );
        let named = |lane: &Lane| -> Vec<String> {
            lane.rows
                .iter()
                .map(|&r| trace.span(order[r as usize].0).name.clone())
                .collect()
        };
        assert_eq!(
            named(server),
            [
                "process Cart.Server",
                "Cart.Server.init/1",
                "receive",
                "Cart.Server.handle_call/3",
                "receive",
                "Cart.Server.handle_call/3"
            ]
        );
        assert_eq!((server.start_ns, server.end_ns), (10 * MS, 90 * MS));
        assert_eq!((server.messages_received, server.messages_sent), (1, 1));
        let client = &lanes.lanes[2];
        assert_eq!((client.messages_received, client.messages_sent), (1, 1));
        for (row, &(i, _)) in order.iter().enumerate() {
            let lane = &lanes.lanes[lanes.lane[row] as usize];
            assert!(
                lane.rows.contains(&(row as u32)),
                "row {row} is in its lane"
            );
            let expected = match trace.span(i).name.as_str() {
                "elixir cart.exs" | "process Cart.Server" | "process <0.106.0>" => 0,
                "receive"
                    if trace.tree.parent[i].map(|p| trace.span(p).name.as_str())
                        == Some("Cart.Server.handle_call/3") =>
                {
                    2
                }
                "receive" if trace.span(i).span_id == SpanId([10; 8]) => 2,
                _ => 1,
            };
            assert_eq!(lanes.lane_depth[row], expected, "{}", trace.span(i).name);
        }
    }

    #[test]
    fn the_state_at_a_moment_is_the_after_of_the_last_callback_ended_by_then() {
        let trace = cart();
        let at = |id: u8| {
            let i = trace
                .spans
                .spans
                .iter()
                .position(|s| s.span_id == SpanId([id; 8]))
                .unwrap();
            process_state(&trace, i)
        };
        // The second handle_call: its own before and after, and the state the first left.
        let second = at(11).unwrap();
        assert_eq!(second.process, "Cart.Server");
        assert_eq!(second.before.as_deref(), Some("%{items: 1}"));
        assert_eq!(second.after.as_deref(), Some("%{items: 3}"));
        let then = second.at_start.unwrap();
        assert_eq!(then.state, "%{items: 1}");
        assert_eq!(then.callback_span_id, SpanId([5; 8]));
        assert_eq!(then.callback, "Cart.Server.handle_call/3");
        assert_eq!(then.ended_ns, 40 * MS);
        // Inside the first handle_call (its receive): init had ended, the call had not.
        let inside = at(6).unwrap();
        assert_eq!((inside.before, inside.after), (None, None));
        assert_eq!(inside.at_start.unwrap().state, "%{items: 0}");
        // The process's start: no callback had ended yet, but its callbacks record state.
        let life = at(2).unwrap();
        assert_eq!(
            (life.before, life.after, life.at_start),
            (None, None, None),
            "no callback had ended"
        );
        // Step-through shows each callback's state too.
        let steps = crate::causal::thread_steps(&trace, 4);
        let call = steps
            .steps
            .iter()
            .find(|s| s.span_id == SpanId([11; 8]))
            .unwrap();
        assert_eq!(call.state_before.as_deref(), Some("%{items: 1}"));
        assert_eq!(call.state_after.as_deref(), Some("%{items: 3}"));
        // Another process's spans say nothing of the server's state.
        assert_eq!(at(7), None);
        assert_eq!(at(1), None, "the run's own span is on no process");
    }
}
