//! Calls out of the recording: a function whose time went mostly to waits that a message from
//! no recorded process ended — a port's (a socket, an OS process: `System.cmd/3`,
//! `:gen_tcp.recv/2`) or a process the recording leaves out (OTP's `:httpc` handler, a
//! library's connection) — called something outside, as an OpenTelemetry client span does. A
//! loop of such calls is then an N+1 like a loop of calls to a process of the program
//! ([docs/beam.md](../../../docs/beam.md), "Record": calls out of the recording).
//!
//! **Rule.** A function's span — not a process's life or a wait, and not a unit of work of its
//! process (a callback, a loop's turn: a child of the life, whose waits are for its next
//! request) — whose own `receive` children with no message link, that did not end at their
//! timeout (`Process.sleep/1`, `receive … after`) and were not cut by the end of the recording,
//! add up to at least [`OUTSIDE_SHARE`] of its time and to at least [`MIN_OUTSIDE_NS`]. And,
//! as whether a function calls out is the function's, every other span of a function most of
//! whose spans are calls out by that rule: one of twelve `System.cmd/3` calls whose OS process
//! answered at once, or whose start the machine slowed, is still the same call. A function
//! that ended in a tail call to a call out (`fetch_orders(id)` ending in its helper's
//! `get("/orders")`) is not one itself: the call is the helper's, named by the function it
//! stands for (`beam::asking`, in the reader).

use std::collections::{HashMap, HashSet};

use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;

/// The least share of a function's time its waits outside the recording take for it to be a
/// call out: most of it, so a function that also works is not one.
pub const OUTSIDE_SHARE: f64 = 0.5;
/// The least time waited outside the recording, all of a function's waits together (`devtrace
/// run` leaves out each unlinked wait under 1 ms from the spans it shows, but only after this:
/// a port's answer comes in pieces, each of which may be shorter).
pub const MIN_OUTSIDE_NS: u64 = 1_000_000;

/// The spans that are calls out of the recording (see the module's rule), by span id, with
/// their time waiting outside. `timeouts`: the waits that timed out, (process, end)
/// ([`super::BeamReader::timeouts`]).
pub fn calls_out(spans: &[OutSpan], timeouts: &HashSet<(u64, u64)>) -> HashMap<u64, u64> {
    let index: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let waited = waited_outside(spans, &index, timeouts);
    let unit_of_work = |s: &OutSpan| {
        index
            .get(&s.parent_span_id)
            .is_none_or(|&parent| spans[parent].code == PROCESS_CODE)
    };
    let function = |s: &OutSpan| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE) && !unit_of_work(s);
    let calls_out: HashSet<usize> = waited
        .iter()
        .filter(|&(&caller, &outside_ns)| {
            let s = &spans[caller];
            let duration = s.end.saturating_sub(s.start);
            function(s)
                && outside_ns >= MIN_OUTSIDE_NS
                && outside_ns as f64 >= OUTSIDE_SHARE * duration as f64
        })
        .map(|(&caller, _)| caller)
        .collect();
    // Per function: (its spans that are calls out, all its spans).
    let mut per_code: HashMap<u32, (usize, usize)> = HashMap::new();
    for (i, s) in spans.iter().enumerate().filter(|(_, s)| function(s)) {
        let counts = per_code.entry(s.code).or_default();
        counts.0 += usize::from(calls_out.contains(&i));
        counts.1 += 1;
    }
    let out: HashMap<u64, u64> = spans
        .iter()
        .enumerate()
        .filter(|&(i, s)| {
            calls_out.contains(&i)
                || (function(s)
                    && per_code
                        .get(&s.code)
                        .is_some_and(|&(out, all)| 2 * out > all))
        })
        .map(|(i, s)| (s.span_id, waited.get(&i).copied().unwrap_or(0)))
        .collect();
    without_tail_callers(spans, out)
}

/// Per span (by index): its own waits that no recorded send ended, that did not time out and
/// were not cut by the end of the recording, summed.
fn waited_outside(
    spans: &[OutSpan],
    index: &HashMap<u64, usize>,
    timeouts: &HashSet<(u64, u64)>,
) -> HashMap<usize, u64> {
    let mut waited: HashMap<usize, u64> = HashMap::new();
    for wait in spans.iter().filter(|s| s.code == RECEIVE_CODE) {
        let outside =
            wait.links.is_empty() && !wait.open && !timeouts.contains(&(wait.stream, wait.end));
        if let (true, Some(&caller)) = (outside, index.get(&wait.parent_span_id)) {
            *waited.entry(caller).or_default() += wait.end.saturating_sub(wait.start);
        }
    }
    waited
}

/// `calls` less the spans that ended in a tail call to one of them: the call is the one that
/// replaced their frame (`fetch_orders(id)` ending in `get("/orders")`), not two calls.
fn without_tail_callers(spans: &[OutSpan], mut calls: HashMap<u64, u64>) -> HashMap<u64, u64> {
    let mut by_parent: HashMap<(u64, u64), Vec<&OutSpan>> = HashMap::new();
    for s in spans {
        by_parent
            .entry((s.stream, s.parent_span_id))
            .or_default()
            .push(s);
    }
    for siblings in by_parent.values_mut() {
        siblings.sort_by_key(|s| s.start);
        for pair in siblings.windows(2) {
            let (caller, callee) = (pair[0], pair[1]);
            let tail_called = caller.tail_call
                && callee.start.abs_diff(caller.end) <= super::tail_calls::TAIL_GAP_NS;
            if tail_called && calls.contains_key(&callee.span_id) {
                calls.remove(&caller.span_id);
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::calls::tests::timed;
    use crate::ring::LinkKind;

    const MS: u64 = 1_000_000;

    fn span(span_id: u64, parent: u64, code: u32, start: u64, end: u64) -> OutSpan {
        timed(
            crate::beam::calls::tests::span(span_id, parent, code, 1),
            start,
            end,
        )
    }

    fn linked(mut s: OutSpan) -> OutSpan {
        s.links.push(crate::OutLink {
            kind: LinkKind::Message,
            trace_id: 1,
            span_id: 99,
            cause_code: 0,
            cause_ts: s.start,
            wait_ns: 0,
        });
        s
    }

    /// Process 1's life; `main` (7) under it; under `main`, `fetch` (8) waiting 9 ms of its
    /// 10 ms for a port's message.
    fn fetch_under_main() -> Vec<OutSpan> {
        vec![
            span(1, 0, PROCESS_CODE, 0, 100 * MS),
            span(2, 1, 7, 0, 90 * MS),
            span(3, 2, 8, 10 * MS, 20 * MS),
            span(4, 3, RECEIVE_CODE, 10 * MS, 19 * MS),
        ]
    }

    #[test]
    fn a_function_waiting_for_a_message_no_recorded_process_sent_is_a_call_out() {
        let spans = fetch_under_main();
        assert_eq!(
            calls_out(&spans, &HashSet::new()),
            HashMap::from([(3, 9 * MS)])
        );
    }

    #[test]
    fn a_reply_of_a_recorded_process_a_sleep_a_cut_wait_or_a_callback_is_no_call_out() {
        let mut replied = fetch_under_main();
        replied[3] = linked(replied[3].clone());
        assert!(calls_out(&replied, &HashSet::new()).is_empty());
        let slept = fetch_under_main();
        assert!(calls_out(&slept, &HashSet::from([(1, 19 * MS)])).is_empty());
        let mut cut = fetch_under_main();
        cut[3].open = true;
        assert!(calls_out(&cut, &HashSet::new()).is_empty());
        // A callback (a unit of work of its process) waiting for a socket's data.
        let mut callback = fetch_under_main();
        callback[2].parent_span_id = 1;
        assert!(calls_out(&callback, &HashSet::new()).is_empty());
    }

    #[test]
    fn a_call_of_a_function_that_mostly_calls_out_is_one_whatever_it_waited() {
        // `count/1` (8) three times: twice waiting 9 ms of its 10, once answered at once (its
        // wait too short to be a span).
        let mut spans = fetch_under_main();
        spans.push(span(5, 2, 8, 20 * MS, 30 * MS));
        spans.push(span(6, 5, RECEIVE_CODE, 20 * MS, 29 * MS));
        spans.push(span(7, 2, 8, 30 * MS, 31 * MS));
        assert_eq!(
            calls_out(&spans, &HashSet::new()),
            HashMap::from([(3, 9 * MS), (5, 9 * MS), (7, 0)])
        );
        // Once in three, it is no call out.
        spans.retain(|s| s.span_id != 6);
        assert_eq!(
            calls_out(&spans, &HashSet::new()),
            HashMap::from([(3, 9 * MS)])
        );
    }

    #[test]
    fn a_function_that_tail_called_a_call_out_is_not_one_too() {
        // `fetch_user/2` (8) waited 2 ms, then tail-called `get/2` (9), the request.
        let mut spans = fetch_under_main();
        spans[2].end = 13 * MS;
        spans[2].tail_call = true;
        spans[3].end = 12 * MS;
        spans.push(span(5, 2, 9, 13 * MS, 30 * MS));
        spans.push(span(6, 5, RECEIVE_CODE, 13 * MS, 29 * MS));
        assert_eq!(
            calls_out(&spans, &HashSet::new()),
            HashMap::from([(5, 16 * MS)])
        );
    }

    #[test]
    fn a_function_that_mostly_works_or_waits_briefly_is_no_call_out() {
        let mut working = fetch_under_main();
        working[2].end = 40 * MS;
        assert!(calls_out(&working, &HashSet::new()).is_empty());
        let mut brief = fetch_under_main();
        brief[2].end = 10 * MS + MS / 2;
        brief[3].end = 10 * MS + MS / 3;
        assert!(calls_out(&brief, &HashSet::new()).is_empty());
    }
}
