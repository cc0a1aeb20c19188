//! What a call to another BEAM process did to the server that answered it: whether the
//! callback that handled its request left the server's recorded state as it was, and how long
//! the server worked on it ([`server_time`]), how much of that it waited for the other
//! processes it called ([`waited_downstream`]: a pipeline's next stage), and then waited for a
//! message from outside the recording before it answered ([`outside_time`]: a connection
//! process waiting for its socket's reply).
//!
//! A GenServer's client functions are named by what they ask for (`Pricing.quote/1`,
//! `stock:level/1`, `Tax.rate/1`), so their names often say nothing of whether they read or
//! write. The recorder keeps the state before and after each callback (docs/beam.md); a call
//! whose request was handled by a callback that changed nothing in the server, and asked no
//! other process for anything, read from it. One that changed the state wrote.
//! A server written as a receive loop of its own (`loop(State) -> receive … -> loop(New)
//! end`) carries its state in its loop function's arguments: the turn that took a request
//! kept it when the next turn was given the same ([`loop_turn_changed`]).
//!
//! The handling callback is found by the message: the server's `receive` that the call's
//! request ended (a causal link from the call's subtree, or, for a call made inline, from the
//! function that made it, sent just before the call's wait began), then the first callback
//! with a state on the server after it, begun before the call ended.

use crate::AnalyzedTrace;
use crate::processes::{self, PEER, STATE_AFTER, STATE_BEFORE};
use crate::trace::ServerTimes;
use std::collections::HashMap;

/// Whether call `index` (a span carrying [`PEER`]) changed its server's state: `Some(false)`
/// when the callback that handled it kept the state whole and called no other process (it
/// read), `Some(true)` when it changed it (it wrote), `None` when the trace does not say (no
/// state recorded, a state cut short, no link to the server's receive).
pub fn changed_state(trace: &AnalyzedTrace, index: usize) -> Option<bool> {
    let calls = trace.served_calls.get_or_init(|| served_calls(trace));
    calls.get(&index).copied().flatten()
}

/// Every call to another process whose handling callback the trace shows, with whether that
/// callback changed the server's state.
fn served_calls(trace: &AnalyzedTrace) -> HashMap<usize, Option<bool>> {
    let mut calls = HashMap::new();
    let callbacks = callbacks_by_process(trace);
    for (wait, call) in requests(trace, processes::message_waits(trace)) {
        let handled = callbacks.get(&wait.waiter).and_then(|starts| {
            first_callback_between(starts, wait.end_unix_nano, trace.span(call).end_unix_nano)
        });
        let changed = match handled {
            Some(callback) => callback_changed(trace, callback),
            None => loop_turn_changed(trace, wait.wait.waiter),
        };
        let entry = calls.entry(call).or_insert(changed);
        // A call answered after several requests (a retry inside it): any change is a write.
        if changed == Some(true) || entry.is_none() {
            *entry = changed;
        }
    }
    calls
}

/// How long the server worked on the request of call `index` (a span carrying [`PEER`]): from
/// the end of the server's `receive` that the request ended to the start of its next
/// top-level `receive` (the next message it waited for), or to the call's end when that comes
/// first. `None` when no wait of the server's is linked to the call.
pub fn server_time(trace: &AnalyzedTrace, index: usize) -> Option<u64> {
    server_times(trace)
        .get(&index)
        .map(|&(worked, _, _)| worked)
}

/// Of [`server_time`], how long the server waited for each other process it called while it
/// worked on the request of call `index` (its outermost calls to them: a pipeline's stage
/// handing the item on with a call), by that process. `None` as for [`server_time`].
pub fn waited_downstream(trace: &AnalyzedTrace, index: usize) -> Option<&HashMap<String, u64>> {
    server_times(trace).get(&index).map(|(_, _, waited)| waited)
}

/// How long the server of call `index`, its own work on the request done, then waited for a
/// message from outside the recording (a port's — a socket, a file, an OS process — or a
/// timer's) before it answered from the callback that message began: a connection process
/// that sends the request on a socket and answers when the reply arrives. `Some(0)` when it
/// answered otherwise; `None` as for [`server_time`].
pub fn outside_time(trace: &AnalyzedTrace, index: usize) -> Option<u64> {
    server_times(trace)
        .get(&index)
        .map(|&(_, outside, _)| outside)
}

/// What a server did between each call's request and its answer: ([`server_time`],
/// [`outside_time`], [`waited_downstream`]), by call.
fn server_times(trace: &AnalyzedTrace) -> &ServerTimes {
    trace.server_times.get_or_init(|| times_of(trace))
}

/// [`server_times`] of every call whose request a wait of its server's is linked to.
fn times_of(trace: &AnalyzedTrace) -> ServerTimes {
    let mut times = ServerTimes::new();
    let waits = processes::message_waits(trace);
    let receives = top_level_receives(trace);
    let answered_from_outside = answered_from_outside(trace, &waits);
    let calls_out = calls_out(trace);
    for (wait, call) in requests(trace, waits) {
        let call_end = trace.span(call).end_unix_nano;
        // The server begins when its `receive` ends (the send may come before: a request
        // sent while the server still worked on the one before).
        let taken = trace
            .span(wait.wait.waiter)
            .end_unix_nano
            .max(wait.end_unix_nano);
        let next = receives.get(&wait.waiter).and_then(|starts| {
            let at = starts.partition_point(|&start| start < taken);
            starts.get(at).copied()
        });
        let until = next.map_or(call_end, |n| n.min(call_end));
        let outside = answered_from_outside
            .get(&call)
            .map_or(0, |&answered| answered.min(call_end).saturating_sub(until));
        let (worked, waited, downstream) = times.entry(call).or_default();
        *worked = worked.saturating_add(until.saturating_sub(taken));
        *waited = waited.saturating_add(outside);
        let made = calls_out.get(&wait.waiter).map_or(&[][..], Vec::as_slice);
        for (peer, nanos) in overlapping(made, taken, until) {
            *downstream.entry(peer.to_owned()).or_default() += nanos;
        }
    }
    times
}

/// A process's outermost call to another: (start, end, the process called).
type CallOut = (u64, u64, String);

/// Each process's outermost calls to other processes (spans carrying [`PEER`] inside no other
/// on the process), by start: one after another, as a process makes them.
fn calls_out(trace: &AnalyzedTrace) -> HashMap<String, Vec<CallOut>> {
    let mut by_process: HashMap<String, Vec<CallOut>> = HashMap::new();
    for (i, span) in trace.spans.spans.iter().enumerate() {
        let Some(peer) = processes::text(trace, i, PEER) else {
            continue;
        };
        let inside_another = trace.tree.parent[i].and_then(|p| enclosing_call(trace, p));
        let Some(process) = crate::causality::thread_of(trace, i) else {
            continue;
        };
        if inside_another.is_none() {
            let call = (span.start_unix_nano, span.end_unix_nano, peer);
            by_process.entry(process).or_default().push(call);
        }
    }
    for calls in by_process.values_mut() {
        calls.sort_unstable();
    }
    by_process
}

/// Of `calls` (by start, one after another), the time each spent between `from` and `until`.
fn overlapping(calls: &[CallOut], from: u64, until: u64) -> impl Iterator<Item = (&str, u64)> {
    let before = calls.partition_point(|&(start, _, _)| start < until);
    calls[..before]
        .iter()
        .rev()
        .take_while(move |&&(_, end, _)| end > from)
        .map(move |(start, end, peer)| {
            let nanos = (*end).min(until).saturating_sub((*start).max(from));
            (peer.as_str(), nanos)
        })
}

/// The calls a server answered from a unit of work that a message from outside the recording
/// began ([`processes::begun_from_outside`]), with when that unit began.
fn answered_from_outside(
    trace: &AnalyzedTrace,
    waits: &[processes::MessageWait],
) -> HashMap<usize, u64> {
    let sent = processes::recorded_receives(trace);
    waits
        .iter()
        .filter_map(|w| Some((processes::answered_call(trace, w)?, w)))
        .filter_map(|(call, w)| Some((call, processes::sending_unit(trace, w)?)))
        .filter(|&(_, unit)| processes::begun_from_outside(trace, unit, &sent))
        .map(|(call, unit)| (call, trace.span(unit).start_unix_nano))
        .collect()
}

/// The server's unit of work that each call's request began (the callback right after the
/// server's `receive` the request ended), by call: part of serving that call, whichever
/// callback then answered it (a connection process answers from a later one).
pub fn request_units(trace: &AnalyzedTrace) -> HashMap<usize, usize> {
    let mut units = HashMap::new();
    for (wait, call) in requests(trace, processes::message_waits(trace)) {
        let receive = wait.wait.waiter;
        let Some(life) = trace.tree.parent[receive].filter(|&p| processes::is_life(trace, p))
        else {
            continue;
        };
        let children = &trace.tree.children[life];
        let next = processes::child_position(trace, children, receive)
            .and_then(|at| children.get(at + 1))
            .filter(|&&c| trace.span(c).name != "receive");
        if let Some(&unit) = next {
            units.entry(call).or_insert(unit);
        }
    }
    units
}

/// Every wait of a server that a call's request ended, with the call (none in a trace without
/// calls to other processes).
fn requests(
    trace: &AnalyzedTrace,
    waits: Vec<processes::MessageWait>,
) -> Vec<(processes::MessageWait, usize)> {
    if !trace.spans.spans.iter().any(|s| s.attr(PEER).is_some()) {
        return Vec::new();
    }
    waits
        .into_iter()
        .filter_map(|wait| {
            let call = requesting_call(trace, &wait)?;
            Some((wait, call))
        })
        .collect()
}

/// The call whose request ended `wait` (a wait of the call's server), if any.
fn requesting_call(trace: &AnalyzedTrace, wait: &processes::MessageWait) -> Option<usize> {
    let sent_at = wait
        .wait
        .cause_time_unix_nano
        .unwrap_or(wait.start_unix_nano);
    let cause = wait.wait.cause?;
    let call = enclosing_call(trace, cause)
        .or_else(|| inline_call(trace, cause, &wait.waiter, sent_at, wait.end_unix_nano))?;
    let peer = processes::text(trace, call, PEER);
    (peer.as_deref() == Some(wait.waiter.as_str())).then_some(call)
}

/// Each process's `receive`s made between units of work (the children of its life), by start:
/// a wait inside a callback (a sleep) is part of the callback's work.
fn top_level_receives(trace: &AnalyzedTrace) -> HashMap<String, Vec<u64>> {
    let mut by_process: HashMap<String, Vec<u64>> = HashMap::new();
    for (i, span) in trace.spans.spans.iter().enumerate() {
        let top_level = trace.tree.parent[i].is_some_and(|p| processes::is_life(trace, p));
        if span.name != "receive" || !top_level {
            continue;
        }
        if let Some(process) = crate::causality::thread_of(trace, i) {
            by_process
                .entry(process)
                .or_default()
                .push(span.start_unix_nano);
        }
    }
    for starts in by_process.values_mut() {
        starts.sort_unstable();
    }
    by_process
}

/// The call to another process span `index` belongs to: itself or its nearest ancestor on
/// the same process carrying [`PEER`].
fn enclosing_call(trace: &AnalyzedTrace, index: usize) -> Option<usize> {
    let mut node = Some(index);
    while let Some(n) = node {
        if trace.span(n).attr(PEER).is_some() {
            return Some(n);
        }
        if processes::is_life(trace, n) {
            return None;
        }
        node = trace.tree.parent[n];
    }
    None
}

/// The call made inline (`gen_server:call/2` in a function doing more: the recorder marks its
/// wait for the answer as the call) whose request span `index` sent to `peer` at `sent_at`, and
/// `peer` took at `taken_at`: its first child call begun since, when that is to `peer` — the
/// caller waits right after it sends, so before long after the request was taken
/// ([`INLINE_WAIT_NANOS`]).
fn inline_call(
    trace: &AnalyzedTrace,
    index: usize,
    peer: &str,
    sent_at: u64,
    taken_at: u64,
) -> Option<usize> {
    // Children are in start order: those begun since are found by bisection, and the walk
    // stops at the first call, not after the thousands a loop leaves under one function.
    let children = &trace.tree.children[index];
    let since = children.partition_point(|&c| trace.span(c).start_unix_nano < sent_at);
    let until = taken_at.saturating_add(INLINE_WAIT_NANOS);
    children[since..]
        .iter()
        .copied()
        .take_while(|&c| trace.span(c).start_unix_nano <= until)
        .find(|&c| trace.span(c).attr(PEER).is_some())
        .filter(|&c| processes::text(trace, c, PEER).as_deref() == Some(peer))
}

/// How long after its request was taken a call made inline may begin its wait for the answer:
/// the caller sends, then waits; a scheduler may run the server first, not for this long.
const INLINE_WAIT_NANOS: u64 = 10_000_000;

/// Each process's callbacks with a recorded state (both ends), by start.
fn callbacks_by_process(trace: &AnalyzedTrace) -> HashMap<String, Vec<(u64, usize)>> {
    let mut by_process: HashMap<String, Vec<(u64, usize)>> = HashMap::new();
    for (i, span) in trace.spans.spans.iter().enumerate() {
        if span.attr(STATE_BEFORE).is_none() || span.attr(STATE_AFTER).is_none() {
            continue;
        }
        if let Some(process) = crate::causality::thread_of(trace, i) {
            by_process
                .entry(process)
                .or_default()
                .push((span.start_unix_nano, i));
        }
    }
    for starts in by_process.values_mut() {
        starts.sort_unstable();
    }
    by_process
}

/// The first callback of `starts` begun at or after `from` and no later than `until`.
fn first_callback_between(starts: &[(u64, usize)], from: u64, until: u64) -> Option<usize> {
    let at = starts.partition_point(|&(start, _)| start < from);
    let &(start, callback) = starts.get(at)?;
    (start <= until).then_some(callback)
}

/// Whether `callback` changed its state: `Some(false)` when it kept it whole and called no
/// other process, `None` when the summaries were cut short (equal texts may hide a change).
fn callback_changed(trace: &AnalyzedTrace, callback: usize) -> Option<bool> {
    let before = processes::text(trace, callback, STATE_BEFORE)?;
    let after = processes::text(trace, callback, STATE_AFTER)?;
    state_changed(trace, callback, &before, &after)
}

/// For a hand-written receive loop (`loop(State) -> receive … -> loop(New) end`), whose state
/// is what its loop function is given: whether the turn that took a request in `receive` (the
/// function span the wait is in, right under its process's life) changed it — its arguments
/// against those of the next turn of the same function. `None` where the wait is in no such
/// turn or no next turn was recorded.
fn loop_turn_changed(trace: &AnalyzedTrace, receive: usize) -> Option<bool> {
    let turn = trace.tree.parent[receive]?;
    let life = trace.tree.parent[turn]?;
    if !processes::is_life(trace, life) {
        return None;
    }
    let name = &trace.span(turn).name;
    let turns = &trace.tree.children[life];
    let at = turns.iter().position(|&c| c == turn)?;
    let next = turns[at + 1..]
        .iter()
        .find(|&&c| trace.span(c).name == *name)?;
    let before = processes::text(trace, turn, processes::CALL_ARGUMENTS)?;
    let after = processes::text(trace, *next, processes::CALL_ARGUMENTS)?;
    state_changed(trace, turn, &before, &after)
}

/// Whether `handler` (a callback, a loop's turn) changed the state it went from `before` to
/// `after`: `Some(false)` when it kept it whole and called no other process.
fn state_changed(trace: &AnalyzedTrace, handler: usize, before: &str, after: &str) -> Option<bool> {
    if before != after {
        return Some(true);
    }
    let cut_short = before.ends_with('…');
    let asked_another = trace
        .subtree(handler)
        .iter()
        .any(|&n| n != handler && trace.span(n).attr(PEER).is_some());
    (!cut_short && !asked_another).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::tests::{linked, on_thread};
    use crate::processes::MESSAGE;
    use crate::processes::tests::life;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, SpanKind, TraceId};

    const MS: u64 = 1_000_000;

    /// A call (id `n`) from "<0.9.0>" (life 2) to `server` at `at` ms, its request received by
    /// the server's life (id `n + 10`) and handled by a callback (`n + 20`) going from state
    /// `before` to `after`.
    fn served(n: u8, server: &str, at: u64, (before, after): (&str, &str)) -> Vec<Span> {
        let mut call = span(n, Some(2), "Client.ask/1", at * MS, (at + 10) * MS);
        call.kind = SpanKind::Client;
        call.attributes.push(KeyValue::new(PEER, server));
        let receive = span(n + 30, Some(n + 10), "receive", 0, (at + 1) * MS);
        let mut callback = on_thread(
            span(
                n + 20,
                Some(n + 10),
                "handle_call/3",
                (at + 1) * MS,
                (at + 9) * MS,
            ),
            server,
        );
        callback
            .attributes
            .push(KeyValue::new(STATE_BEFORE, before));
        callback.attributes.push(KeyValue::new(STATE_AFTER, after));
        vec![
            call,
            life(n + 10, server, 0, 100 * MS),
            linked(receive, n, MESSAGE, (at + 1) * MS, MS),
            callback,
        ]
    }

    fn trace(calls: Vec<Vec<Span>>) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir shop.exs", 0, 100 * MS),
            life(2, "<0.9.0>", 0, 100 * MS),
        ];
        spans.extend(calls.into_iter().flatten());
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    fn changed(trace: &AnalyzedTrace, id: u8) -> Option<bool> {
        let index = trace
            .spans
            .spans
            .iter()
            .position(|s| s.span_id.0 == [id; 8])
            .expect("the call");
        changed_state(trace, index)
    }

    #[test]
    fn a_call_whose_server_kept_its_state_read_and_one_that_changed_it_wrote() {
        let t = trace(vec![
            served(3, "Pricing", 0, ("%{rates: 2}", "%{rates: 2}")),
            served(4, "Stock", 20, ("%{a1: 3}", "%{a1: 2}")),
            served(5, "Catalog", 40, ("%{big: [1, …]…", "%{big: [1, …]…")),
        ]);
        assert_eq!(changed(&t, 3), Some(false), "kept: a read");
        assert_eq!(changed(&t, 4), Some(true), "changed: a write");
        assert_eq!(changed(&t, 5), None, "a state cut short");
    }

    /// A call (id `n`) to `server`, a receive loop of its own: the turn (`n + 20`, given
    /// `before`) took the request in its `receive`, and the next turn (`n + 25`) was given
    /// `after` (no next turn when `None`).
    fn looped(n: u8, server: &str, at: u64, before: &str, after: Option<&str>) -> Vec<Span> {
        let mut call = span(n, Some(2), "client:ask/2", at * MS, (at + 10) * MS);
        call.kind = SpanKind::Client;
        call.attributes.push(KeyValue::new(PEER, server));
        let turn = |id: u8, (from, to): (u64, u64), given: &str| {
            let mut t = on_thread(span(id, Some(n + 10), "server:loop/1", from, to), server);
            t.attributes
                .push(KeyValue::new(processes::CALL_ARGUMENTS, given));
            t
        };
        let receive = span(n + 30, Some(n + 20), "receive", 0, (at + 1) * MS);
        let mut spans = vec![
            call,
            life(n + 10, server, 0, 100 * MS),
            turn(n + 20, (0, (at + 9) * MS), before),
            linked(receive, n, MESSAGE, (at + 1) * MS, MS),
        ];
        spans.extend(after.map(|after| turn(n + 25, ((at + 9) * MS, 100 * MS), after)));
        spans
    }

    #[test]
    fn a_receive_loop_given_the_same_arguments_again_read_and_one_given_others_wrote() {
        let t = trace(vec![
            looped(3, "users", 0, "10", Some("10")),
            looped(4, "counter", 20, "7", Some("8")),
            looped(5, "last", 40, "1", None),
        ]);
        assert_eq!(changed(&t, 3), Some(false));
        assert_eq!(changed(&t, 4), Some(true));
        // Its next turn not recorded: the trace does not say.
        assert_eq!(changed(&t, 5), None);
    }

    #[test]
    fn a_callback_that_asked_another_process_or_no_link_says_nothing() {
        let mut asking = served(3, "Ledger", 0, ("%{}", "%{}"));
        let mut inner = span(40, Some(23), "Ledger.fetch/1", 2 * MS, 8 * MS);
        inner.attributes.push(KeyValue::new(PEER, "Bank"));
        asking.push(inner);
        let mut unlinked = served(4, "Tax", 20, ("%{}", "%{}"));
        unlinked[2].links.clear();
        let t = trace(vec![asking, unlinked]);
        assert_eq!(changed(&t, 3), None);
        assert_eq!(changed(&t, 4), None);
    }

    #[test]
    fn a_servers_calls_to_others_while_it_worked_are_its_wait_downstream() {
        // Parse's callback (1–9 ms) hands the item to Enrich (2–8 ms), whose own call to Store
        // (3–4 ms) is Enrich's wait, not Parse's.
        let mut call = served(3, "Parse", 0, ("%{}", "%{}"));
        let mut enrich = on_thread(span(40, Some(23), "Stage.push/2", 2 * MS, 8 * MS), "Parse");
        enrich.attributes.push(KeyValue::new(PEER, "Enrich"));
        let mut store = on_thread(span(41, Some(40), "Stage.push/2", 3 * MS, 4 * MS), "Parse");
        store.attributes.push(KeyValue::new(PEER, "Store"));
        call.extend([enrich, store]);
        // A call to Enrich before the request came is not part of its work.
        let mut earlier = on_thread(span(42, Some(13), "Stage.push/2", 0, MS / 2), "Parse");
        earlier.attributes.push(KeyValue::new(PEER, "Enrich"));
        call.push(earlier);
        let t = trace(vec![call]);
        let index = t.spans.spans.iter().position(|s| s.span_id.0 == [3; 8]);
        let waited = waited_downstream(&t, index.unwrap()).cloned();
        assert_eq!(waited, Some(HashMap::from([("Enrich".to_owned(), 6 * MS)])));
        assert_eq!(server_time(&t, index.unwrap()), Some(9 * MS), "1–10 ms");
    }

    /// A call (id 3) from "<0.9.0>" to "Conn" over 0–10 ms, as a connection process answers:
    /// it takes the request (1 ms), sends it on (`handle_call/3`, 1–2 ms) and answers from the
    /// callback (8–9 ms) that the next message began: a socket's (no recorded sender, `sender`
    /// none), or one span `sender` sent ("<0.7.0>"'s life 7, or its own `handle_call/3`, 32).
    fn answered_by_the_next_message(sender: Option<u8>) -> AnalyzedTrace {
        let mut call = span(3, Some(2), "Conn.get/1", 0, 10 * MS);
        call.kind = SpanKind::Client;
        call.attributes.push(KeyValue::new(PEER, "Conn"));
        let request = linked(span(30, Some(13), "receive", 0, MS), 3, MESSAGE, MS, MS);
        let mut data = span(31, Some(13), "receive", 2 * MS, 8 * MS);
        if let Some(sender) = sender {
            data = linked(data, sender, MESSAGE, 8 * MS, 6 * MS);
        }
        let answer = linked(
            span(4, Some(3), "receive", 0, 10 * MS),
            33,
            MESSAGE,
            9 * MS,
            10 * MS,
        );
        trace(vec![vec![
            call,
            answer,
            life(7, "<0.7.0>", 0, 100 * MS),
            life(13, "Conn", 0, 100 * MS),
            request,
            span(32, Some(13), "Conn.handle_call/3", MS, 2 * MS),
            data,
            span(33, Some(13), "Conn.handle_info/2", 8 * MS, 9 * MS),
        ]])
    }

    #[test]
    fn a_server_answering_from_a_message_no_recorded_process_sent_waited_outside_the_recording() {
        let call = |t: &AnalyzedTrace| {
            t.spans
                .spans
                .iter()
                .position(|s| s.span_id.0 == [3; 8])
                .unwrap()
        };
        let t = answered_by_the_next_message(None);
        assert_eq!(server_time(&t, call(&t)), Some(MS), "its own work: 1–2 ms");
        assert_eq!(
            outside_time(&t, call(&t)),
            Some(6 * MS),
            "then the socket: 2–8 ms"
        );
        for (sender, whose) in [(7, "another process's message"), (32, "its own message")] {
            let t = answered_by_the_next_message(Some(sender));
            assert_eq!(server_time(&t, call(&t)), Some(MS));
            assert_eq!(outside_time(&t, call(&t)), Some(0), "{whose}");
        }
    }
}
