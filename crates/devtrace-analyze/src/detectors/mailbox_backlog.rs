//! A mailbox backlog: a process that falls behind the messages sent to it, so they wait in its
//! mailbox (a slow stage of a pipeline of processes).
//!
//! **Rule.** A process works a message at a time: a GenServer's units of work are its callbacks
//! (the top-level spans of its life); a hand-written receive loop's (`spawn(fn -> loop(s) end)`,
//! `loop` receiving, working, then calling itself) are the loop's turns, the spans of one
//! function repeated under the one function the process runs. Its arrivals are the `receive`
//! waits a message from another process ended, inside a unit of work (a message arriving
//! while a callback's helper sleeps is one) or between them — not one nested in other work
//! (the acknowledgement a `start_link` waits for), not the replies to its own calls (a wait
//! right under a call to the sender, or itself one: a call made inline), and not requests of
//! calls made to it, by a client function or inline ([`processes::is_call_request`]: a caller
//! waiting for it is [`super::serialised_process`]'s). A process takes its messages in order,
//! so the k-th unit of work that starts after an unmatched arrival handles the earliest one: the message waited in the mailbox from its send (the link's cause
//! time: the VM reports a message as received only when the process next looks at its
//! mailbox, so the `receive` span's end is not its arrival) to that callback's start, behind
//! the others still there. The process fell behind in a run when the
//! longest such wait is ≥ [`Thresholds::min_wait_nanos`] with ≥ [`Thresholds::min_queued`]
//! messages queued at once — and, for a loop, when its turns take longer on average than the
//! time between two messages (a loop that was busy elsewhere, then drained its mailbox fast,
//! kept up with its senders). The saving per run is that longest wait.

use crate::AnalyzedTrace;
use crate::dialect::Dialect;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::{causality, processes};
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// The longest a message waited in the mailbox (20 ms).
    pub min_wait_nanos: u64,
    /// Messages queued at once, at most (3).
    pub min_queued: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_wait_nanos: 20_000_000,
            min_queued: 3,
        }
    }
}

/// One run in which a process fell behind.
struct Backlog {
    trace: usize,
    life: usize,
    /// (callback, the arrival it handled, the wait in the mailbox).
    handled: Vec<(usize, usize, u64)>,
    max_queued: usize,
    /// The mean time between two sends to the process, from its first to its last.
    arrival_every_nanos: u64,
}

impl Backlog {
    fn max_wait(&self) -> u64 {
        self.handled.iter().map(|h| h.2).max().unwrap_or(0)
    }
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_process: BTreeMap<String, Vec<Backlog>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let (by_life, started_by) = arrivals_by_life(trace);
        for (life, arrivals) in by_life {
            let arrivals = for_units_of_work(trace, life, &arrivals, &started_by);
            let Some(backlog) = backlog_of(t, trace, life, &arrivals, thresholds) else {
                continue;
            };
            let name = processes::thread_name(trace, life).unwrap_or_default();
            by_process.entry(name).or_default().push(backlog);
        }
    }
    by_process
        .into_iter()
        .map(|(name, runs)| finding(traces, &name, &runs))
        .collect()
}

fn backlog_of(
    t: usize,
    trace: &AnalyzedTrace,
    life: usize,
    arrivals: &[(usize, u64)],
    thresholds: &Thresholds,
) -> Option<Backlog> {
    let (callbacks, a_loop) = processes::units_of_work(trace, life);
    if arrivals.len() < thresholds.min_queued {
        return None;
    }
    let mut waiting: VecDeque<(usize, u64)> = VecDeque::new();
    let mut next = 0;
    let (mut handled, mut max_queued) = (Vec::new(), 0);
    for &callback in &callbacks {
        let start = trace.span(callback).start_unix_nano;
        while next < arrivals.len() && arrivals[next].1 <= start {
            waiting.push_back(arrivals[next]);
            next += 1;
        }
        max_queued = max_queued.max(waiting.len());
        if let Some((arrival, sent)) = waiting.pop_front() {
            handled.push((callback, arrival, start - sent));
        }
    }
    // The senders' sustained pace: senders in step send in bursts, whose gaps say nothing.
    let sent = arrivals.iter().map(|&(_, sent)| sent);
    let sending = sent.clone().max().unwrap_or(0) - sent.min().unwrap_or(0);
    let backlog = Backlog {
        trace: t,
        life,
        handled,
        max_queued,
        arrival_every_nanos: sending / (arrivals.len() as u64 - 1).max(1),
    };
    let behind = !a_loop || mean_work(trace, &backlog.handled) > backlog.arrival_every_nanos;
    (backlog.max_wait() >= thresholds.min_wait_nanos
        && max_queued >= thresholds.min_queued
        && behind)
        .then_some(backlog)
}

/// The arrivals the units of work took: a `receive` inside one of them, or between them (right
/// under the life, or under the function whose turns they are). A `receive` nested in other
/// work took a message that work was waiting for — the acknowledgement a `start_link` waits
/// for, a helper's selective receive of its own reply — not one queued for the units of work;
/// so is the result of a process a unit of work started and then waited for (`Task.async` then
/// `Task.await_many` in one turn), taken where the unit waited for it. `started_by` are the
/// spans that started the senders of the arrivals' messages, by `receive`.
fn for_units_of_work(
    trace: &AnalyzedTrace,
    life: usize,
    arrivals: &[(usize, u64)],
    started_by: &Starters,
) -> Arrivals {
    let (units, a_loop) = processes::units_of_work(trace, life);
    let loop_function = units
        .first()
        .filter(|_| a_loop)
        .and_then(|&u| trace.tree.parent[u]);
    let units: std::collections::HashSet<usize> = units.iter().copied().collect();
    let taken_by_units = |receive: usize| {
        let direct = trace.tree.parent[receive];
        if direct == Some(life) || (direct.is_some() && direct == loop_function) {
            return true;
        }
        let mut node = direct;
        while let Some(n) = node.filter(|&n| n != life) {
            if units.contains(&n) {
                return !started_by
                    .get(&receive)
                    .is_some_and(|&starter| trace.tree.is_within(starter, n));
            }
            node = trace.tree.parent[n];
        }
        false
    };
    arrivals
        .iter()
        .copied()
        .filter(|&(receive, _)| taken_by_units(receive))
        .collect()
}

/// The mean duration of the units of work that handled a message.
fn mean_work(trace: &AnalyzedTrace, handled: &[(usize, usize, u64)]) -> u64 {
    let total: u64 = handled.iter().map(|h| unit_nanos(trace, h.0)).sum();
    total / handled.len().max(1) as u64
}

/// How long a unit of work took, the calls its callback's tail calls made included.
fn unit_nanos(trace: &AnalyzedTrace, unit: usize) -> u64 {
    processes::unit_end(trace, unit).saturating_sub(trace.span(unit).start_unix_nano)
}

/// A process's messages: each `receive` and when its message was sent.
type Arrivals = Vec<(usize, u64)>;
/// The span that started each message's sender, by `receive`.
type Starters = HashMap<usize, usize>;

/// Each life's messages for its units of work — each `receive` in it and when its message was
/// sent — in the order they were sent; replies to its own calls and requests of calls made to
/// the process left out. With the span that started each message's sender, by `receive`.
fn arrivals_by_life(trace: &AnalyzedTrace) -> (BTreeMap<usize, Arrivals>, Starters) {
    let index = causality::span_index(trace);
    let lives = processes::lives_by_name(trace);
    let starter = |wait: &processes::MessageWait, sent: u64| {
        let life = processes::life_among(trace, lives.get(&wait.sender)?, sent)?;
        let start = causality::waits_of(trace, &index, life)
            .into_iter()
            .find(|w| w.kind == processes::THREAD_START)?;
        start.cause
    };
    let mut started_by = HashMap::new();
    let parent = |i: usize| trace.tree.parent[i];
    let life_of = |wait: usize| {
        let mut at = parent(wait)?;
        while !processes::is_life(trace, at) {
            at = parent(at)?;
        }
        Some(at)
    };
    let mut out: BTreeMap<usize, Vec<(usize, u64)>> = BTreeMap::new();
    for wait in processes::message_waits(trace) {
        let (Some(life), Some(sent)) = (life_of(wait.wait.waiter), wait.wait.cause_time_unix_nano)
        else {
            continue;
        };
        if processes::is_answer(trace, &wait) {
            continue;
        }
        let me = processes::thread_name(trace, life).unwrap_or_default();
        if !processes::is_call_request(trace, &wait.wait, &me) {
            out.entry(life).or_default().push((wait.wait.waiter, sent));
            if let Some(span) = starter(&wait, sent) {
                started_by.insert(wait.wait.waiter, span);
            }
        }
    }
    for arrivals in out.values_mut() {
        arrivals.sort_by_key(|&(_, sent)| sent);
    }
    (out, started_by)
}

fn finding(traces: &[AnalyzedTrace], name: &str, runs: &[Backlog]) -> Finding {
    let example = runs
        .iter()
        .max_by_key(|b| b.max_wait())
        .expect("a finding has runs");
    let trace = &traces[example.trace];
    let waits: Vec<u64> = example.handled.iter().map(|h| h.2).collect();
    let mean_wait = waits.iter().sum::<u64>() / waits.len().max(1) as u64;
    let (callback, callback_nanos) = busiest(trace, example);
    let saving = runs.iter().map(Backlog::max_wait).sum::<u64>() / runs.len() as u64;
    let shown = processes::shown_process(trace, name);
    let title = format!(
        "{} fell behind its senders: {} messages waited in its mailbox up to {} (mean {}), up to {} queued; its {} takes {} a message while they came every {}",
        shown.clone(),
        waits.len(),
        human_duration(example.max_wait()),
        human_duration(mean_wait),
        example.max_queued,
        q(&callback),
        human_duration(callback_nanos),
        human_duration(example.arrival_every_nanos),
    );
    let dialect = Dialect::of(&callback);
    let recommendation = format!(
        "Give {} more hands ({}), make {} faster, or hold the senders back ({}): the last message waited {}; saving ≈ {} per run",
        shown.clone(),
        dialect.more_hands(),
        q(&callback),
        dialect.back_pressure(),
        human_duration(example.max_wait()),
        human_duration(saving),
    );
    let mut numbers = BTreeMap::new();
    numbers.insert("messages".into(), waits.len() as f64);
    numbers.insert("max_wait_ms".into(), processes::millis(example.max_wait()));
    numbers.insert("mean_wait_ms".into(), processes::millis(mean_wait));
    numbers.insert("max_queued".into(), example.max_queued as f64);
    numbers.insert("callback_ms_mean".into(), processes::millis(callback_nanos));
    numbers.insert(
        "arrival_every_ms".into(),
        processes::millis(example.arrival_every_nanos),
    );
    Finding {
        kind: FindingKind::MailboxBacklog,
        operation: Some(callback),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::MailboxBacklog.as_str(), name]),
        saving_nanos: saving,
        occurrences: runs.len() as u64,
        numbers,
        evidence: runs
            .iter()
            .take(MAX_EVIDENCE)
            .map(|b| evidence(traces, b))
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    }
}

/// The callback that handled the most messages, and its mean duration.
fn busiest(trace: &AnalyzedTrace, backlog: &Backlog) -> (String, u64) {
    let mut by_name: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for (callback, _, _) in &backlog.handled {
        let span = trace.span(*callback);
        by_name
            .entry(&span.name)
            .or_default()
            .push(unit_nanos(trace, *callback));
    }
    by_name
        .into_iter()
        .max_by_key(|(_, times)| times.len())
        .map(|(name, times)| {
            (
                name.to_owned(),
                times.iter().sum::<u64>() / times.len() as u64,
            )
        })
        .unwrap_or_default()
}

fn evidence(traces: &[AnalyzedTrace], backlog: &Backlog) -> Evidence {
    let trace = &traces[backlog.trace];
    let longest = backlog.handled.iter().max_by_key(|h| h.2);
    trace
        .evidence(std::iter::once(backlog.life).chain(longest.into_iter().flat_map(|h| [h.0, h.1])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::tests::linked;
    use crate::processes::tests::{handing_on_in_tail_calls, life};
    use crate::processes::{MESSAGE, PEER};
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, SpanId, TraceId};

    const MS: u64 = 1_000_000;

    /// The one backlog found in `trace`.
    fn the_backlog(trace: AnalyzedTrace) -> Finding {
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("one backlog");
        found
    }

    /// A stage (life 2) whose callback takes 10 ms, sent `n` messages 1 ms apart by a producer
    /// (life 10, its `push` span 11): it handles them one after another.
    fn slow_stage(n: u64) -> AnalyzedTrace {
        slow_stage_sent(n, |i| i * MS)
    }

    /// The same stage, message `i` sent at `sent_at(i)`.
    fn slow_stage_sent(n: u64, sent_at: impl Fn(u64) -> u64) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir pipeline.exs", 0, 100 * MS),
            life(2, "Stage", 0, 100 * MS),
            life(10, "<0.10.0>", 0, 100 * MS),
            span(11, Some(10), "Stage.push/1", 0, 5 * MS),
        ];
        for i in 0..n {
            let id = 20 + 2 * i as u8;
            spans.push(linked(
                span(id, Some(2), "receive", 0, sent_at(i) + 1),
                11,
                MESSAGE,
                sent_at(i),
                0,
            ));
            spans.push(span(
                id + 1,
                Some(2),
                "Stage.handle_cast/2",
                i * 10 * MS + 1,
                (i + 1) * 10 * MS,
            ));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn messages_waiting_behind_a_slow_callback_are_a_backlog() {
        let findings = detect(&[slow_stage(4)], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(found.kind, FindingKind::MailboxBacklog);
        assert_eq!(found.operation.as_deref(), Some("Stage.handle_cast/2"));
        // The fourth message, sent at 3 ms, was taken at 30 ms.
        assert_eq!(found.numbers["max_wait_ms"], 27.0);
        assert_eq!(found.numbers["max_queued"], 3.0);
        assert_eq!(found.numbers["arrival_every_ms"], 1.0);
        assert!(
            found
                .title
                .starts_with("\"Stage\" fell behind its senders: 4 messages"),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                "Give \"Stage\" more hands (several workers behind a PartitionSupervisor or a \
                 pool, or Task.async_stream over its work)"
            ),
            "{}",
            found.recommendation
        );
        // Written in Erlang, the advice names what Erlang has.
        let mut erlang = slow_stage(4);
        for s in &mut erlang.spans.spans {
            s.name = s.name.replace("Stage.handle_cast/2", "stage:handle_cast/2");
        }
        let erlang = AnalyzedTrace::new(erlang.trace_id, batch(erlang.spans.spans));
        let found = &detect(&[erlang], &Thresholds::default())[0];
        assert!(
            found.recommendation.starts_with(
                "Give \"Stage\" more hands (several workers behind a pool or one per key, or a \
                 process per item), make \"stage:handle_cast/2\" faster, or hold the senders \
                 back (a call instead of a cast, or demand: the server asks for the next items)"
            ),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_callback_going_on_in_its_tail_call_is_one_unit_of_work() {
        // Stage is a GenServer whose callback hands each message to a clause of its own at
        // 1 ms (`handle_cast({line, L, Extra}, S) -> handle_cast({line, L}, S…)`, Erlang):
        // two spans a message, the first ended in the tail call that made the second.
        let mut spans = slow_stage(4).spans.spans;
        let names = (
            "stages:init/1",
            "Stage.handle_cast/2",
            "Stage.handle_cast/2",
        );
        handing_on_in_tail_calls(&mut spans, names, MS);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let found = the_backlog(trace);
        // As in the stage above: four messages, the fourth taken at 30 ms, 10 ms a message.
        assert_eq!(found.numbers["messages"], 4.0);
        assert_eq!(found.numbers["max_wait_ms"], 27.0);
        assert_eq!(found.numbers["callback_ms_mean"], 10.0);
    }

    #[test]
    fn a_call_written_inline_asking_the_stage_is_not_a_message_it_fell_behind_on() {
        // After the four messages, the producer asks Stage for its count with a call written
        // inline (`gen_server:call(stage, count)` in `Main.count/0`, span 12): it sends at
        // 90 ms, then waits for the answer (span 13), which Stage gives at once.
        let mut spans = slow_stage(4).spans.spans;
        spans.push(span(12, Some(10), "Main.count/0", 89 * MS, 92 * MS));
        let mut asking = span(13, Some(12), "receive", 90 * MS + 1, 91 * MS);
        asking.attributes.push(KeyValue::new(PEER, "Stage"));
        spans.push(asking);
        let taken = span(30, Some(2), "receive", 85 * MS, 90 * MS + 1);
        spans.push(linked(taken, 12, MESSAGE, 90 * MS, 0));
        spans.push(span(
            31,
            Some(2),
            "Stage.handle_call/3",
            90 * MS + 2,
            91 * MS,
        ));
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let found = the_backlog(trace);
        assert_eq!(
            found.numbers["messages"], 4.0,
            "the call's request left out"
        );
        assert_eq!(found.numbers["arrival_every_ms"], 1.0);
    }

    #[test]
    fn senders_in_step_are_said_to_send_at_their_sustained_pace() {
        // Four producers in step: bursts of four 1 µs apart, every 2 ms (0.5 ms a message).
        let trace = slow_stage_sent(8, |i| (i / 4) * 2 * MS + (i % 4) * 1_000);
        let found = the_backlog(trace);
        assert_eq!(
            found.numbers["arrival_every_ms"], 0.29,
            "2.003 ms over 7 gaps"
        );
        assert!(
            found.title.ends_with("came every 286 µs"),
            "{}",
            found.title
        );
    }

    /// A hand-written loop (`spawn(fn -> Stage.loop(next) end)`: life 2, its fn 3) sent 4
    /// messages 1 ms apart by a producer (span 11), whose turns start at `first_turn` and take
    /// `turn` each, the work in a helper (`Work.enrich/1`); the messages arrive while the
    /// first turn's helper works, so their waits are inside it.
    fn hand_written_loop(first_turn: u64, turn: u64) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir stages.exs", 0, 100 * MS),
            life(2, "<0.2.0>", 0, 100 * MS),
            span(
                3,
                Some(2),
                "anonymous fn#0 in elixir_compiler_0",
                0,
                100 * MS,
            ),
            life(10, "<0.10.0>", 0, 100 * MS),
            span(11, Some(10), "Stage.push/1", 0, 5 * MS),
        ];
        for i in 0..4u64 {
            let (id, start) = (20 + 2 * i as u8, first_turn + i * turn);
            spans.push(span(id, Some(3), "Stage.loop/2", start, start + turn));
            spans.push(span(
                id + 1,
                Some(id),
                "Work.enrich/1",
                start + 1,
                start + turn,
            ));
        }
        for i in 0..4u64 {
            let arrived = span(40 + i as u8, Some(21), "receive", i * MS, i * MS + 1);
            spans.push(linked(arrived, 11, MESSAGE, i * MS, 0));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_hand_written_loop_falling_behind_is_a_backlog_of_its_turns() {
        let findings = detect(&[hand_written_loop(0, 10 * MS)], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(found.operation.as_deref(), Some("Stage.loop/2"));
        // The fourth message, sent at 3 ms, was taken by the fourth turn at 30 ms.
        assert_eq!(found.numbers["max_wait_ms"], 27.0);
    }

    #[test]
    fn messages_taken_inside_other_work_are_not_for_the_units_of_work() {
        let control = hand_written_loop(5 * MS, 10 * MS);
        assert_eq!(
            detect(std::slice::from_ref(&control), &Thresholds::default()).len(),
            1
        );
        // The same four messages, each taken by a `start_link` waiting for its
        // acknowledgement before the loop began (`[start(S) || S <- …]`, then the turns).
        let mut spans = control.spans.spans;
        spans.push(span(12, Some(3), "Stage.start_link/0", 0, 4 * MS));
        for s in spans.iter_mut().filter(|s| s.name == "receive") {
            s.parent_span_id = Some(SpanId([12; 8]));
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[trace], &Thresholds::default()).is_empty());
    }

    #[test]
    fn results_of_processes_a_turn_started_and_waited_for_are_not_queued_for_the_turns() {
        // The same four messages, now results of a process the first turn started itself
        // (`Task.async` then `Task.await_many` in the turn): taken where it waited for them.
        let mut spans = hand_written_loop(5 * MS, 10 * MS).spans.spans;
        spans.push(span(12, Some(20), "Task.async/1", 5 * MS, 5 * MS + 1));
        let sender = spans
            .iter()
            .position(|s| s.name == "process <0.10.0>")
            .unwrap();
        spans[sender] = linked(
            spans[sender].clone(),
            12,
            processes::THREAD_START,
            5 * MS,
            0,
        );
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[trace], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_loop_draining_its_mailbox_fast_after_other_work_kept_up() {
        // Busy for 50 ms, then four turns of 0.1 ms: the messages waited, the loop did not lag.
        let trace = hand_written_loop(50 * MS, MS / 10);
        assert!(detect(&[trace], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_process_keeping_up_is_not_a_backlog() {
        assert!(detect(&[slow_stage(2)], &Thresholds::default()).is_empty());
    }
}
