//! Calls from one BEAM process to another, found in the built spans: a recorded function
//! whose waits in `receive` were all ended by messages from one other process made a call to
//! that process (`GenServer.call`, a hand-written `send` then `receive`, a synchronous start).
//!
//! The BEAM has no client span for a call: `gen_server:call/2` is OTP's code, not the
//! program's. The innermost recorded function around the wait is the call as the program wrote
//! it (`Cart.Server.add/1`), and the message that ended the wait names the process it went to.
//! The exporter marks such a span as a call to that process, so the analysis reads it as any
//! other call out of a thread of work (N+1, sequential work, who waited on whom).
//!
//! **Rule.** A function span (not a process's life, not a `receive`) is a call to process P
//! when it sent P a message (a wait of P's is linked to it: the request) and at least one of
//! its direct `receive` children has a `message` link to a span of P's stream (the reply), P is
//! not the span's own process, no direct `receive` child was ended by a message
//! from any other process (a function that gathers replies from several processes is not a
//! call to one of them), and its waits for P's answers take at least half its time: a call is
//! the program's thin wrapper around OTP's request and reply (which may call a helper first,
//! a `name/0` or a `via` tuple), while a function that mostly does its own work besides asking
//! (a `main/0` that starts a supervisor, works, then stops it) is not one. A direct child that
//! is the same function (`client(n) -> call(…), client(n - 1)`, the way a BEAM program loops)
//! is the loop's next turn, not this turn's own work: its time is left out of the half.

use std::collections::HashMap;

use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;
use crate::ring::LinkKind;

/// For each span that is a call to another process: its span id → the stream (process) it
/// called.
pub fn calls_to_processes(spans: &[OutSpan]) -> HashMap<u64, u64> {
    let stream_of: HashMap<u64, u64> = spans.iter().map(|s| (s.span_id, s.stream)).collect();
    let callers: HashMap<u64, &OutSpan> = spans
        .iter()
        .filter(|s| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE))
        .map(|s| (s.span_id, s))
        .collect();
    // sender span id → the streams its messages went to.
    let mut sent_to: HashMap<u64, Vec<u64>> = HashMap::new();
    for wait in spans.iter().filter(|s| s.code == RECEIVE_CODE) {
        for link in wait.links.iter().filter(|l| l.kind == LinkKind::Message) {
            sent_to.entry(link.span_id).or_default().push(wait.stream);
        }
    }
    // caller span id → the peer its waits came from (None once two peers are seen), and how
    // long it waited for it.
    let mut peers: HashMap<u64, Option<u64>> = HashMap::new();
    let mut waited: HashMap<u64, u64> = HashMap::new();
    for wait in spans.iter().filter(|s| s.code == RECEIVE_CODE) {
        let Some(caller) = callers.get(&wait.parent_span_id) else {
            continue;
        };
        for link in wait.links.iter().filter(|l| l.kind == LinkKind::Message) {
            let Some(&peer) = stream_of.get(&link.span_id) else {
                continue;
            };
            let entry = peers.entry(caller.span_id).or_insert(Some(peer));
            if entry.is_none() {
                continue;
            }
            if *entry != Some(peer) || peer == caller.stream {
                *entry = None;
            }
            *waited.entry(caller.span_id).or_default() += wait.end.saturating_sub(wait.start);
        }
    }
    let next_turns = next_turns(&callers);
    let mostly_waiting = |span: u64| {
        let caller = callers[&span];
        let own = caller
            .end
            .saturating_sub(caller.start)
            .saturating_sub(next_turns.get(&span).copied().unwrap_or(0));
        waited.get(&span).copied().unwrap_or(0) * 2 >= own
    };
    peers
        .into_iter()
        .filter_map(|(span, peer)| Some((span, peer?)))
        .filter(|(span, peer)| sent_to.get(span).is_some_and(|to| to.contains(peer)))
        .filter(|(span, _)| mostly_waiting(*span))
        .collect()
}

/// Function span id → the time of its direct children that are the same function in the same
/// process: a recursive loop's later turns.
fn next_turns(callers: &HashMap<u64, &OutSpan>) -> HashMap<u64, u64> {
    let mut out: HashMap<u64, u64> = HashMap::new();
    for child in callers.values() {
        if let Some(parent) = callers.get(&child.parent_span_id)
            && parent.code == child.code
            && parent.stream == child.stream
        {
            *out.entry(parent.span_id).or_default() += child.end.saturating_sub(child.start);
        }
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::OutLink;

    /// A built span of `stream` (a process) with no values or links, from 0 to 10.
    pub(in crate::beam) fn span(span_id: u64, parent: u64, code: u32, stream: u64) -> OutSpan {
        OutSpan {
            trace_id: 1,
            span_id,
            parent_span_id: parent,
            code,
            stream,
            tid: stream,
            start: 0,
            end: 10,
            resumed: false,
            error: None,
            handled: Vec::new(),
            calls: Vec::new(),
            open: false,
            started_before_window: false,
            values: [0; 3],
            links: Vec::new(),
        }
    }

    pub(in crate::beam) fn timed(mut s: OutSpan, start: u64, end: u64) -> OutSpan {
        (s.start, s.end) = (start, end);
        s
    }

    fn ended_by(mut wait: OutSpan, cause: u64) -> OutSpan {
        wait.links.push(OutLink {
            kind: LinkKind::Message,
            trace_id: 1,
            span_id: cause,
            cause_code: 0,
            cause_ts: 5,
            wait_ns: 5,
        });
        wait
    }

    /// Process 1 calls `add` (span 11) and waits for the server (process 2, span 20); a
    /// gatherer (span 12) waits for two workers (processes 3 and 4).
    fn program() -> Vec<OutSpan> {
        vec![
            span(10, 0, PROCESS_CODE, 1),
            span(11, 10, 7, 1),
            ended_by(span(111, 11, RECEIVE_CODE, 1), 20),
            span(12, 10, 8, 1),
            ended_by(span(121, 12, RECEIVE_CODE, 1), 30),
            ended_by(span(122, 12, RECEIVE_CODE, 1), 40),
            span(20, 0, PROCESS_CODE, 2),
            // The server's waits for the requests of spans 11 and 50.
            ended_by(span(21, 20, RECEIVE_CODE, 2), 11),
            ended_by(span(22, 20, RECEIVE_CODE, 2), 50),
            ended_by(span(23, 20, RECEIVE_CODE, 2), 60),
            span(30, 0, PROCESS_CODE, 3),
            span(40, 0, PROCESS_CODE, 4),
            // A process's own wait in its life span is no call.
            ended_by(span(41, 40, RECEIVE_CODE, 4), 11),
            // A function mostly doing its own work (span 51) besides asking process 2.
            timed(span(50, 10, 9, 1), 0, 100),
            timed(span(51, 50, 7, 1), 0, 90),
            ended_by(timed(span(501, 50, RECEIVE_CODE, 1), 90, 100), 20),
            // A wrapper calling a helper (span 61) before asking process 2.
            span(60, 10, 9, 1),
            timed(span(61, 60, 7, 1), 0, 1),
            ended_by(timed(span(601, 60, RECEIVE_CODE, 1), 1, 10), 20),
        ]
    }

    #[test]
    fn a_function_waiting_on_one_process_calls_it() {
        let calls = calls_to_processes(&program());
        assert_eq!(calls.get(&11), Some(&2));
    }

    #[test]
    fn a_function_gathering_from_several_processes_calls_none_of_them() {
        let calls = calls_to_processes(&program());
        assert_eq!(calls.get(&12), None);
        assert_eq!(
            calls.len(),
            2,
            "the call (11) and the wrapper (60) only: {calls:?}"
        );
    }

    #[test]
    fn a_function_mostly_doing_its_own_work_is_no_call() {
        assert_eq!(calls_to_processes(&program()).get(&50), None);
    }

    #[test]
    fn a_wrapper_calling_a_helper_before_it_asks_is_a_call() {
        assert_eq!(calls_to_processes(&program()).get(&60), Some(&2));
    }

    #[test]
    fn waiting_for_a_process_it_sent_nothing_is_no_call() {
        // Span 13 only waits for process 2's message (a notification, not a reply).
        let mut spans = program();
        spans.push(span(13, 10, 8, 1));
        spans.push(ended_by(span(131, 13, RECEIVE_CODE, 1), 20));
        assert_eq!(calls_to_processes(&spans).get(&13), None);
        assert_eq!(calls_to_processes(&spans).get(&11), Some(&2));
    }

    #[test]
    fn each_turn_of_a_recursive_loop_of_calls_is_a_call() {
        // `client(n) -> gen_server:call(…), client(n - 1)`: each turn (code 7) waits 10 for
        // process 2's reply, then runs the next turn inside itself.
        let mut spans = vec![span(10, 0, PROCESS_CODE, 1), span(20, 0, PROCESS_CODE, 2)];
        for turn in 0..3u64 {
            let (id, start) = (11 + turn, 10 * turn);
            let parent = if turn == 0 { 10 } else { id - 1 };
            spans.push(timed(span(id, parent, 7, 1), start, 30));
            spans.push(ended_by(
                timed(span(100 + id, id, RECEIVE_CODE, 1), start, start + 10),
                20,
            ));
            spans.push(ended_by(span(200 + id, 20, RECEIVE_CODE, 2), id));
        }
        let calls = calls_to_processes(&spans);
        assert_eq!(
            calls.get(&11),
            Some(&2),
            "waits 10 of its 30, 20 of which are later turns"
        );
        assert_eq!((calls.get(&12), calls.get(&13)), (Some(&2), Some(&2)));
        // A child that is another function is the function's own work, as before.
        spans
            .iter_mut()
            .filter(|s| s.span_id == 12)
            .for_each(|s| s.code = 8);
        assert_eq!(calls_to_processes(&spans).get(&11), None);
    }

    #[test]
    fn a_message_from_its_own_process_is_no_call() {
        let spans = vec![
            span(10, 0, PROCESS_CODE, 1),
            span(11, 10, 7, 1),
            ended_by(span(111, 11, RECEIVE_CODE, 1), 10),
        ];
        assert!(calls_to_processes(&spans).is_empty());
    }
}
