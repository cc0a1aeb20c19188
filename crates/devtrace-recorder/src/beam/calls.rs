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
//! when it sent P a message (a wait of P's is linked to it: the request) or spawned P (a task
//! started and awaited in one function: `Task.async(…) |> Task.await()`, `spawn_monitor` then
//! `receive`: the spawn is the request), and at least one of
//! its direct `receive` children has a `message` link to a span of P's stream (the reply), P is
//! not the span's own process, no direct `receive` child was ended by a message
//! from any other process (a function that gathers replies from several processes is not a
//! call to one of them), and its waits for P's answers take at least half its time: a call is
//! the program's thin wrapper around OTP's request and reply (which may call a helper first,
//! a `name/0` or a `via` tuple), while a function that mostly does its own work besides asking
//! (a `main/0` that starts a supervisor, works, then stops it) is not one. A direct child that
//! is the same function (`client(n) -> call(…), client(n - 1)`, the way a BEAM program loops)
//! is the loop's next turn, not this turn's own work: its time is left out of the half.
//!
//! A call whose reply never came in time ends in a `receive` that timed out, with no reply to
//! link: [`timed_out_calls`] finds those from the waits the reader saw time out after a call
//! request ([`super::BeamReader::call_timeouts`]), whether or not the caller caught the exit.

use std::collections::{HashMap, HashSet};

use super::{PROCESS_CODE, RECEIVE_CODE};
use crate::OutSpan;
use crate::ring::LinkKind;

/// For each span that is a call to another process: its span id → the process it called.
/// `requests`: the waits other processes' call requests ended (the `receive` spans `annotate`
/// marks `devtrace.beam.request`), which answer nothing.
pub fn calls_to_processes(spans: &[OutSpan], requests: &HashSet<u64>) -> HashMap<u64, Called> {
    let callers = function_spans(spans);
    let asked = Asked::new(spans);
    let next_turns = next_turns(&callers);
    answers_by_caller(spans, &callers, requests)
        .into_iter()
        .filter_map(|(span, answers)| {
            let caller = callers[&span];
            let peer = one_peer(&answers, caller.stream)?;
            let waited: u64 = answers.iter().map(|a| a.waited).sum();
            let own = (caller.end.saturating_sub(caller.start))
                .saturating_sub(next_turns.get(&span).copied().unwrap_or(0));
            let answered_at = answers.iter().map(|a| a.sent_at).max().unwrap_or(0);
            let task = asked.started_for(caller, peer) && asked.done_after(peer, answered_at);
            let called = Called {
                process: peer,
                task,
            };
            (waited * 2 >= own && (task || asked.sent(caller, peer))).then_some((span, called))
        })
        .collect()
}

/// The process a call went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Called {
    /// Its stream.
    pub process: u64,
    /// It was a task: started for the call (spawned by it, or begun while it ran) and done
    /// once it answered (a server started goes on waiting for requests; a long-lived server
    /// was not started for the call).
    pub task: bool,
}

/// A message a function waited for: from whom, how long it waited, when it was sent.
struct Answer {
    from: u64,
    waited: u64,
    sent_at: u64,
}

/// Each function's waits ended by a message from another recorded span, by function span id
/// (not by another process's call request).
fn answers_by_caller(
    spans: &[OutSpan],
    callers: &HashMap<u64, &OutSpan>,
    requests: &HashSet<u64>,
) -> HashMap<u64, Vec<Answer>> {
    let mut answers: HashMap<u64, Vec<Answer>> = HashMap::new();
    let received = messages_received(spans);
    for received in received
        .iter()
        .filter(|r| !requests.contains(&r.wait.span_id))
    {
        let wait = received.wait;
        if let Some(caller) = callers.get(&wait.parent_span_id) {
            answers.entry(caller.span_id).or_default().push(Answer {
                from: received.from,
                waited: wait.end.saturating_sub(wait.start),
                sent_at: received.sent_at,
            });
        }
    }
    answers
}

/// The one process a function's waits were answered by, besides its own (a message a process
/// sent itself answers no call): none when several did.
fn one_peer(answers: &[Answer], own: u64) -> Option<u64> {
    let mut peers: Vec<u64> = answers
        .iter()
        .map(|a| a.from)
        .filter(|&p| p != own)
        .collect();
    peers.sort_unstable();
    peers.dedup();
    match peers.as_slice() {
        [peer] => Some(*peer),
        _ => None,
    }
}

/// What a function asked of other processes: the messages it sent them, and the tasks started
/// for it.
struct Asked {
    sent_to: HashMap<u64, Vec<u64>>,
    spawned: HashMap<u64, Vec<u64>>,
    last_wait: HashMap<u64, u64>,
    /// When each process's life began, by stream.
    born: HashMap<u64, u64>,
}

impl Asked {
    fn new(spans: &[OutSpan]) -> Self {
        let lives = spans.iter().filter(|s| s.code == PROCESS_CODE);
        Self {
            sent_to: messages_sent_to(spans),
            spawned: processes_spawned(spans),
            last_wait: last_wait_starts(spans),
            born: lives.map(|life| (life.stream, life.start)).collect(),
        }
    }

    /// Whether function `caller` sent `peer` a message.
    fn sent(&self, caller: &OutSpan, peer: u64) -> bool {
        self.sent_to
            .get(&caller.span_id)
            .is_some_and(|to| to.contains(&peer))
    }

    /// Whether `peer` was started for function `caller`: spawned by it, or begun while it ran
    /// (by a `Task.Supervisor` it asked, whose request may be unrecorded).
    fn started_for(&self, caller: &OutSpan, peer: u64) -> bool {
        let spawned = self
            .spawned
            .get(&caller.span_id)
            .is_some_and(|s| s.contains(&peer));
        let begun_meanwhile = self
            .born
            .get(&peer)
            .is_some_and(|&at| caller.start < at && at <= caller.end);
        spawned || begun_meanwhile
    }

    /// Whether `peer` waited for nothing more once it answered at `answered_at`.
    fn done_after(&self, peer: u64, answered_at: u64) -> bool {
        self.last_wait.get(&peer).is_none_or(|&w| w < answered_at)
    }
}

/// For each call to a task (a process done once it answered): the first function the task
/// ran (by code), looking through the anonymous functions that only wrap it — what the task
/// was for (`Prices.fetch/1` for `Task.async(fn -> Prices.fetch(sku) end)`), the same from one
/// run to the next where its pid is not. `is_anonymous` tells an anonymous function's code.
pub fn tasks_work(
    spans: &[OutSpan],
    calls: &HashMap<u64, Called>,
    is_anonymous: impl Fn(u32) -> bool,
) -> HashMap<u64, u32> {
    let mut children: HashMap<u64, Vec<&OutSpan>> = HashMap::new();
    for span in spans.iter().filter(|s| s.code != RECEIVE_CODE) {
        children.entry(span.parent_span_id).or_default().push(span);
    }
    children
        .values_mut()
        .for_each(|c| c.sort_by_key(|s| s.start));
    let lives: HashMap<u64, u64> = spans
        .iter()
        .filter(|s| s.code == PROCESS_CODE)
        .map(|s| (s.stream, s.span_id))
        .collect();
    // Through an anonymous function: the first function it called, or the one it ended in
    // (a tail call, which probes record beside it: its next sibling).
    let first_work = |life: u64| {
        let mut siblings = children.get(&life)?.as_slice();
        let mut work = *siblings.first()?;
        while is_anonymous(work.code) {
            let next = match children.get(&work.span_id) {
                Some(inner) => inner.as_slice(),
                None => &siblings[1..],
            };
            let Some(&inner) = next.first() else { break };
            (work, siblings) = (inner, next);
        }
        Some(work.code)
    };
    calls
        .iter()
        .filter(|(_, called)| called.task)
        .filter_map(|(&call, called)| Some((call, first_work(*lives.get(&called.process)?)?)))
        .collect()
}

/// Stream → when its last wait in `receive` began.
fn last_wait_starts(spans: &[OutSpan]) -> HashMap<u64, u64> {
    let mut last: HashMap<u64, u64> = HashMap::new();
    for wait in spans.iter().filter(|s| s.code == RECEIVE_CODE) {
        let at = last.entry(wait.stream).or_default();
        *at = (*at).max(wait.start);
    }
    last
}

/// Span id → the processes (streams) it spawned: their lives' `thread.start` links.
fn processes_spawned(spans: &[OutSpan]) -> HashMap<u64, Vec<u64>> {
    let mut spawned: HashMap<u64, Vec<u64>> = HashMap::new();
    for life in spans.iter().filter(|s| s.code == PROCESS_CODE) {
        for link in life
            .links
            .iter()
            .filter(|l| l.kind == LinkKind::ThreadStart)
        {
            spawned.entry(link.span_id).or_default().push(life.stream);
        }
    }
    spawned
}

/// For each span that is a call to another process whose wait for the reply timed out (the
/// caller gave up: `GenServer.call(server, request, 100)`, caught or not): its span id → (the
/// stream it called, how long it waited). `timeouts` are the timed-out waits, (stream, end)
/// ([`super::BeamReader::call_timeouts`]). The called process is the one other process the
/// function's messages went to (one of its waits is linked to the function: the request);
/// the wait is at least half the function's time, as for a call answered.
pub fn timed_out_calls(
    spans: &[OutSpan],
    timeouts: &HashSet<(u64, u64)>,
) -> HashMap<u64, (u64, u64)> {
    let callers = function_spans(spans);
    let sent_to = messages_sent_to(spans);
    let next_turns = next_turns(&callers);
    let timed_out = spans
        .iter()
        .filter(|s| s.code == RECEIVE_CODE && timeouts.contains(&(s.stream, s.end)));
    let mut out = HashMap::new();
    for wait in timed_out {
        let Some(caller) = callers.get(&wait.parent_span_id) else {
            continue;
        };
        let mut peers: Vec<u64> = sent_to.get(&caller.span_id).cloned().unwrap_or_default();
        peers.retain(|&p| p != caller.stream);
        peers.sort_unstable();
        peers.dedup();
        let &[peer] = peers.as_slice() else {
            continue;
        };
        let waited = wait.end.saturating_sub(wait.start);
        let own = (caller.end.saturating_sub(caller.start))
            .saturating_sub(next_turns.get(&caller.span_id).copied().unwrap_or(0));
        if waited * 2 >= own {
            out.insert(caller.span_id, (peer, waited));
        }
    }
    out
}

/// The function each hand-written receive loop's turns run (`spawn(fn -> loop(s) end)`), by
/// stream: the code its life runs most at top level, at least twice (each turn a tail call
/// of the last). What its callers can call it by, where its pid changes from run to run.
pub fn loop_functions(spans: &[OutSpan]) -> HashMap<u64, u32> {
    let lives: HashMap<u64, u64> = spans
        .iter()
        .filter(|s| s.code == PROCESS_CODE)
        .map(|s| (s.span_id, s.stream))
        .collect();
    let mut turns: HashMap<(u64, u32), usize> = HashMap::new();
    for s in spans.iter().filter(|s| s.code != RECEIVE_CODE) {
        if let Some(&stream) = lives.get(&s.parent_span_id) {
            *turns.entry((stream, s.code)).or_default() += 1;
        }
    }
    let mut most: HashMap<u64, (usize, u32)> = HashMap::new();
    for ((stream, code), count) in turns {
        let best = most.entry(stream).or_insert((count, code));
        // The lower code on a tie: the same answer whatever order the map gives.
        if (count, std::cmp::Reverse(code)) > (best.0, std::cmp::Reverse(best.1)) {
            *best = (count, code);
        }
    }
    most.into_iter()
        .filter(|&(_, (count, _))| count >= 2)
        .map(|(stream, (_, code))| (stream, code))
        .collect()
}

/// The spans of the program's functions (not lives, not waits), by span id.
fn function_spans(spans: &[OutSpan]) -> HashMap<u64, &OutSpan> {
    spans
        .iter()
        .filter(|s| !matches!(s.code, PROCESS_CODE | RECEIVE_CODE))
        .map(|s| (s.span_id, s))
        .collect()
}

/// Sender span id → the streams its messages went to (their waits linked to it).
fn messages_sent_to(spans: &[OutSpan]) -> HashMap<u64, Vec<u64>> {
    let mut sent_to: HashMap<u64, Vec<u64>> = HashMap::new();
    for received in messages_received(spans) {
        let to = received.wait.stream;
        sent_to.entry(received.sent_by).or_default().push(to);
    }
    sent_to
}

/// A message received whose send was recorded.
pub(super) struct Received<'a> {
    /// The `receive` span its arrival ended.
    pub wait: &'a OutSpan,
    /// The span that sent it.
    pub sent_by: u64,
    /// The process (stream) that sent it.
    pub from: u64,
    /// When it was sent.
    pub sent_at: u64,
}

/// Every message received in `spans` whose sending span is among them, from the `receive`
/// spans' message links.
pub(super) fn messages_received(spans: &[OutSpan]) -> Vec<Received<'_>> {
    let stream_of: HashMap<u64, u64> = spans.iter().map(|s| (s.span_id, s.stream)).collect();
    let waits = spans.iter().filter(|s| s.code == RECEIVE_CODE);
    waits
        .flat_map(|wait| {
            let links = wait.links.iter().filter(|l| l.kind == LinkKind::Message);
            links.filter_map(|link| {
                Some(Received {
                    wait,
                    sent_by: link.span_id,
                    from: *stream_of.get(&link.span_id)?,
                    sent_at: link.cause_ts,
                })
            })
        })
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

    #[test]
    fn a_receive_loop_is_known_by_the_function_its_turns_run() {
        let spans = vec![
            span(10, 0, PROCESS_CODE, 1),
            span(11, 10, 5, 1),
            span(12, 10, 6, 1),
            span(13, 10, RECEIVE_CODE, 1),
            span(14, 10, 6, 1),
            span(15, 14, 7, 1),
            span(16, 14, 7, 1),
            span(17, 14, 7, 1),
            // A process that ran its function once is no loop.
            span(20, 0, PROCESS_CODE, 2),
            span(21, 20, 8, 2),
        ];
        assert_eq!(loop_functions(&spans), HashMap::from([(1, 6)]));
    }

    /// The processes the calls in `spans` went to.
    fn processes_called(spans: &[OutSpan]) -> HashMap<u64, u64> {
        calls_to_processes(spans, &HashSet::new())
            .into_iter()
            .map(|(span, called)| (span, called.process))
            .collect()
    }

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
            ..OutSpan::default()
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

    /// Process 1's `open` (span 70) asks process 2 (its wait 24 is linked to it) and gives up
    /// waiting at 100 (its wait 701 timed out); `notify` (span 80) tells processes 2 and 3,
    /// then waits in a `receive` that timed out.
    fn timing_out() -> (Vec<OutSpan>, HashSet<(u64, u64)>) {
        let spans = vec![
            span(10, 0, PROCESS_CODE, 1),
            timed(span(70, 10, 7, 1), 0, 101),
            timed(span(701, 70, RECEIVE_CODE, 1), 1, 101),
            timed(span(80, 10, 8, 1), 200, 301),
            timed(span(801, 80, RECEIVE_CODE, 1), 201, 301),
            span(20, 0, PROCESS_CODE, 2),
            ended_by(span(24, 20, RECEIVE_CODE, 2), 70),
            ended_by(span(25, 20, RECEIVE_CODE, 2), 80),
            span(30, 0, PROCESS_CODE, 3),
            ended_by(span(31, 30, RECEIVE_CODE, 3), 80),
        ];
        (spans, HashSet::from([(1, 101), (1, 301)]))
    }

    #[test]
    fn a_call_whose_wait_for_the_reply_timed_out_is_a_call_that_timed_out() {
        let (spans, timeouts) = timing_out();
        let calls = timed_out_calls(&spans, &timeouts);
        assert_eq!(calls.get(&70), Some(&(2, 100)));
        assert_eq!(
            calls.get(&80),
            None,
            "it sent to two processes: a call to neither"
        );
        assert_eq!(calls.len(), 1);
        assert!(
            timed_out_calls(&spans, &HashSet::new()).is_empty(),
            "a wait that did not time out after a call request (a sleep) is none"
        );
    }

    #[test]
    fn a_function_waiting_on_one_process_calls_it() {
        let calls = processes_called(&program());
        assert_eq!(calls.get(&11), Some(&2));
        // A server that was there before the call is no task, though it waited for nothing
        // after its last answer (the program ended).
        let called = calls_to_processes(&program(), &HashSet::new());
        assert!(!called[&11].task);
    }

    /// Span 111's wait, ended by a call request of the server's (two servers calling each
    /// other: the VM tells a traced process of a message when it arrives), answered nothing.
    #[test]
    fn a_wait_another_process_call_request_ended_answers_no_call() {
        let calls = calls_to_processes(&program(), &HashSet::from([111]));
        assert_eq!(calls.get(&11), None);
        assert!(calls.contains_key(&60), "the other calls stay calls");
    }

    #[test]
    fn a_function_gathering_from_several_processes_calls_none_of_them() {
        let calls = processes_called(&program());
        assert_eq!(calls.get(&12), None);
        assert_eq!(
            calls.len(),
            2,
            "the call (11) and the wrapper (60) only: {calls:?}"
        );
    }

    #[test]
    fn a_function_mostly_doing_its_own_work_is_no_call() {
        assert_eq!(processes_called(&program()).get(&50), None);
    }

    #[test]
    fn a_wrapper_calling_a_helper_before_it_asks_is_a_call() {
        assert_eq!(processes_called(&program()).get(&60), Some(&2));
    }

    #[test]
    fn waiting_for_a_process_it_sent_nothing_is_no_call() {
        // Span 13 only waits for process 2's message (a notification, not a reply).
        let mut spans = program();
        spans.push(span(13, 10, 8, 1));
        spans.push(ended_by(span(131, 13, RECEIVE_CODE, 1), 20));
        assert_eq!(processes_called(&spans).get(&13), None);
        assert_eq!(processes_called(&spans).get(&11), Some(&2));
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
        let calls = processes_called(&spans);
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
        assert_eq!(processes_called(&spans).get(&11), None);
    }

    #[test]
    fn waiting_for_the_process_it_spawned_is_a_call_to_it() {
        // Span 14 spawns process 5 (a task) and waits for its result.
        let mut spans = program();
        spans.push(span(14, 10, 8, 1));
        spans.push(ended_by(span(141, 14, RECEIVE_CODE, 1), 551));
        let mut task = span(55, 0, PROCESS_CODE, 5);
        task.links.push(OutLink {
            kind: LinkKind::ThreadStart,
            trace_id: 1,
            span_id: 14,
            cause_code: 8,
            cause_ts: 0,
            wait_ns: 0,
        });
        spans.push(task);
        spans.push(span(551, 55, 9, 5));
        let calls = calls_to_processes(&spans, &HashSet::new());
        assert_eq!(
            calls.get(&14),
            Some(&Called {
                process: 5,
                task: true
            })
        );
        // What the task ran: its first function (code 9), or, when that is an anonymous
        // function, the first it called (code 4).
        assert_eq!(
            tasks_work(&spans, &calls, |_| false),
            HashMap::from([(14, 9)])
        );
        spans.push(timed(span(552, 551, 4, 5), 1, 5));
        assert_eq!(
            tasks_work(&spans, &calls, |c| c == 9),
            HashMap::from([(14, 4)])
        );
        // Or, when it called nothing, the function it ended in, beside it (a tail call).
        spans.retain(|s| s.span_id != 552);
        spans.push(timed(span(553, 55, 6, 5), 20, 30));
        assert_eq!(
            tasks_work(&spans, &calls, |c| c == 9),
            HashMap::from([(14, 6)])
        );
        // A process that went on waiting after it answered was started, not asked: a server
        // (`GenServer.start_link` waits for its acknowledgement), no call.
        let mut started = spans.clone();
        started.push(timed(span(554, 55, RECEIVE_CODE, 5), 6, 40));
        assert_eq!(processes_called(&started).get(&14), None);
        // Begun while it ran, by another process (a `Task.Supervisor` it asked): a task too.
        let mut started_elsewhere = spans.clone();
        for s in started_elsewhere.iter_mut().filter(|s| s.span_id == 55) {
            s.links.clear();
            s.start = 1;
        }
        assert_eq!(processes_called(&started_elsewhere).get(&14), Some(&5));
        // Without the spawn it is a notification from a process it never asked.
        spans.retain(|s| s.span_id != 55);
        spans.push(span(55, 0, PROCESS_CODE, 5));
        assert_eq!(processes_called(&spans).get(&14), None);
    }

    #[test]
    fn a_message_from_its_own_process_is_no_call() {
        let spans = vec![
            span(10, 0, PROCESS_CODE, 1),
            span(11, 10, 7, 1),
            ended_by(span(111, 11, RECEIVE_CODE, 1), 10),
        ];
        assert!(processes_called(&spans).is_empty());
        // Beside a server's answer (`Task.Supervisor.async` then `Task.await`: the
        // supervisor unrecorded, its reply taken for one of the caller's own sends), it is
        // no other process: a call to the server.
        let mut spans = spans;
        spans.push(ended_by(span(112, 11, RECEIVE_CODE, 1), 20));
        spans.push(span(20, 0, PROCESS_CODE, 2));
        spans.push(ended_by(span(21, 20, RECEIVE_CODE, 2), 11));
        assert_eq!(processes_called(&spans).get(&11), Some(&2));
    }
}
