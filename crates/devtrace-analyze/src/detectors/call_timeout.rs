//! A call to another process that timed out, and what that process was doing meanwhile.
//!
//! **Rule.** A span whose recorded exception is OTP's call timeout — `{:timeout, {GenServer,
//! :call, [server, request, timeout]}}` in Elixir's syntax, `{timeout,{gen_server,call,[…]}}`
//! in Erlang's (also `gen_statem`, `gen`) — and none of whose children carries the same
//! exception (the call itself, not the callers it propagated through) is a call timeout. The
//! server is the list's first element (a registered name, or a pid matched to the thread
//! `<0.1.0>`); what it was doing is its top-level span (a callback) that overlapped the call
//! the longest. The time lost per run is the wait itself.
//!
//! **What the server waited for.** When what the server was running was itself waiting, over
//! at least half of the call, in a call to another process (a span under it that calls that
//! process, `devtrace.beam.peer` or `rpc.service`, or whose call-timeout exit names it), the
//! finding names that call and process.
//! When that process is the caller's own, neither could answer before the other: a call
//! cycle, which only a timeout ends; the finding says so and recommends breaking the cycle,
//! not a faster server. So is a longer one: that process itself waiting, in its own callback,
//! in a call to a third, and so on back to the caller's (up to [`MAX_CYCLE`] processes). When
//! several calls of a cycle timed out (equal timeouts, as OTP's default 5 s makes them), the
//! one that closed the cycle (the latest) is the finding, not each.
//!
//! **A call never answered.** A call with no timeout (`:infinity`) whose answer never comes
//! hangs until the program is stopped. A call still waiting for its answer when the recording
//! ended, for at least [`processes::STUCK_NANOS`], after a request the server took
//! ([`processes::left_unanswered`]) is read as a timeout is, with no timeout to show; its run
//! did not survive it. Not such calls waiting by design for work: several processes waiting in
//! the same function on the same server (idle workers at a queue's blocking dequeue), or a
//! process whose earlier call of that function to that server was answered.
//!
//! `Task.await/2` and `Task.await_many/2` timing out (`{:timeout, {Task, :await, [task,
//! timeout]}}`) are the same wait for a task's result. The task is the pid in the summary when
//! it kept one; else the process the caller spawned last before the timeout that was still
//! running at it (one spawned within the timed-out call first). Its findings group by what
//! the task ran, since each task is a process of its own.

use crate::AnalyzedTrace;
use crate::causality;
use crate::dialect::Dialect;
use crate::errors::runs_and_survivors;
use crate::finding::{Evidence, Finding, FindingKind, Impact, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::processes::{self, CALL_EXCEPTION, CALL_TIMED_OUT_MS, PEER};
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, BTreeSet};

/// One timed-out call.
struct Timeout {
    trace: usize,
    call: usize,
    /// The server's name, or the awaited task's pid.
    server: String,
    /// Whether it awaited a task (`Task.await`) rather than called a server.
    task: bool,
    /// The caller's timeout as recorded, milliseconds (None: not a number).
    timeout_ms: Option<f64>,
    /// Whether the call never timed out but was still waiting when the recording ended
    /// ([`processes::left_unanswered`]: a call without a timeout, stuck).
    unanswered: bool,
    /// The server's callback that overlapped the call the longest.
    busy: Option<usize>,
    /// The server idle through most of the call (no callback ran for half of it): when it
    /// took the request, after the call began, if it did.
    idle: Option<Option<u64>>,
    /// The span under `busy` that was waiting meanwhile in a call to another process, with
    /// that process's name.
    waiting: Option<(usize, String)>,
    /// Whether that process is the caller's own, or waits on it through others: a call cycle.
    cycle: bool,
    /// The cycle's calls after `waiting`'s, each with the process it waits on, the last the
    /// caller's (empty when that process is the caller's: a cycle of two).
    cycle_on: Vec<(usize, String)>,
}

pub fn detect(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    let mut by_subject: BTreeMap<(String, String), Vec<Timeout>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let found: Vec<Timeout> = (0..trace.spans.spans.len())
            .filter_map(|call| timeout_of(t, trace, call))
            .collect();
        let found = without_askers_for_work(trace, found);
        let timed_out: Vec<usize> = found.iter().map(|f| f.call).collect();
        for found in found {
            if opened_a_cycle_another_closed(trace, &found, &timed_out) {
                continue;
            }
            let subject = (
                trace
                    .span(processes::calling_function(trace, found.call))
                    .name
                    .clone(),
                subject_of(trace, &found),
            );
            by_subject.entry(subject).or_default().push(found);
        }
    }
    by_subject
        .into_iter()
        .map(|((call, subject), found)| finding(traces, &call, &subject, &found))
        .collect()
}

/// `found` without the calls left unanswered that wait by design, for work that has not come:
/// several processes waiting in the same function on the same server (a pool's idle workers
/// asking a queue for their next job, which keeps their `from` until one comes), or a process
/// whose earlier call of the same function to that server was answered (a loop asking again).
/// A lone call that never got an answer is what hung.
fn without_askers_for_work(trace: &AnalyzedTrace, found: Vec<Timeout>) -> Vec<Timeout> {
    let asked = |f: &Timeout| {
        let function = &trace.span(processes::calling_function(trace, f.call)).name;
        (function.clone(), f.server.clone())
    };
    let mut askers: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for f in found.iter().filter(|f| f.unanswered) {
        let process = causality::thread_of(trace, f.call).unwrap_or_default();
        askers.entry(asked(f)).or_default().insert(process);
    }
    found
        .into_iter()
        .filter(|f| {
            !f.unanswered
                || (askers[&asked(f)].len() == 1 && !asked_before(trace, f.call, &f.server))
        })
        .collect()
}

/// Whether the process of call `call` (to `server`) had called `server` from a function of the
/// same name before, and got its answer.
fn asked_before(trace: &AnalyzedTrace, call: usize, server: &str) -> bool {
    let function = processes::calling_function(trace, call);
    let (name, start) = (&trace.span(function).name, trace.span(call).start_unix_nano);
    let process = causality::thread_of(trace, call);
    (0..trace.spans.spans.len()).any(|i| {
        let span = trace.span(i);
        i != function
            && span.end_unix_nano <= start
            && processes::is_call_to(trace, i, server)
            && trace.span(processes::calling_function(trace, i)).name == *name
            && causality::thread_of(trace, i) == process
    })
}

/// What timeouts group by besides the call: the server, or what the awaited task ran.
fn subject_of(trace: &AnalyzedTrace, found: &Timeout) -> String {
    match (found.task, found.busy) {
        (true, Some(busy)) => format!("task {}", trace.span(busy).name),
        (true, None) => "task".to_owned(),
        (false, _) => found.server.clone(),
    }
}

fn timeout_of(t: usize, trace: &AnalyzedTrace, call: usize) -> Option<Timeout> {
    let exception = processes::text(trace, call, CALL_EXCEPTION);
    let gave_up = || exception.as_deref().and_then(parse_call_timeout);
    let (awaited, timeout_ms, unanswered) = match gave_up().or_else(|| given_up(trace, call)) {
        Some((awaited, timeout_ms)) => (awaited, timeout_ms, false),
        None => {
            let server = processes::left_unanswered(trace, call)?;
            (Awaited::Server(server), None, true)
        }
    };
    let task = matches!(awaited, Awaited::Task(_));
    let server = match awaited {
        Awaited::Server(server) => server_called(trace, call, server),
        Awaited::Task(Some(server)) => server,
        Awaited::Task(None) => awaited_task(trace, call)?,
    };
    let propagated = exception.is_some_and(|exception| {
        trace.tree.children[call]
            .iter()
            .any(|&c| processes::text(trace, c, CALL_EXCEPTION).as_deref() == Some(&exception))
    });
    if propagated {
        return None;
    }
    let idle = if task {
        None
    } else {
        idle_server(trace, &server, call)
    };
    let busy = busy_callback(trace, &server, call).filter(|_| idle.is_none());
    let waiting = busy.and_then(|b| {
        // The task's work, or the task itself (probes leave a killed process's open work
        // without an error of its own), failed.
        let failed = |i: usize| trace.span(i).is_error();
        let killed_task = task && (failed(b) || trace.tree.parent[b].is_some_and(failed));
        waiting_in(trace, b, call)
            .or_else(|| killed_task.then(|| asked_unanswered(trace, b).map(|p| (b, p)))?)
    });
    let caller = causality::thread_of(trace, call).unwrap_or_default();
    let cycle_on = waiting
        .as_ref()
        .and_then(|first| cycle_through(trace, call, first, &caller));
    let cycle = cycle_on.is_some();
    let cycle_on = cycle_on.unwrap_or_default();
    Some(Timeout {
        trace: t,
        call,
        server,
        task,
        timeout_ms,
        unanswered,
        busy,
        idle,
        waiting,
        cycle,
        cycle_on,
    })
}

/// The server call `call` went to: as its exit names it, unless the summary left it out (`…`,
/// where the call's arguments were too long to keep) or names it by a term no process is named
/// by (a tuple: `{:via, Registry, {Rooms, "lobby"}}`, `{:global, :ledger}`): then the process the
/// recorder saw the request go to (`devtrace.beam.peer`, on the call or a call in it).
fn server_called(trace: &AnalyzedTrace, call: usize, named: String) -> String {
    if !named.contains('…') && !named.starts_with(OPENERS) {
        return named;
    }
    let peer = std::iter::once(call)
        .chain(trace.tree.descendants(call).iter().copied())
        .find_map(|d| processes::text(trace, d, PEER));
    peer.unwrap_or(named)
}

/// The most processes a call cycle is followed through.
const MAX_CYCLE: usize = 8;

/// When `first` (a server's call, over `call`, waiting on another process) leads back to the
/// `caller`'s process — each process on the way busy in a callback waiting in a call to the
/// next — the calls after `first` on the way, the last one waiting on the caller's.
fn cycle_through(
    trace: &AnalyzedTrace,
    call: usize,
    first: &(usize, String),
    caller: &str,
) -> Option<Vec<(usize, String)>> {
    let mut on: Vec<(usize, String)> = Vec::new();
    let mut process = first.1.clone();
    while process != caller {
        if on.len() + 1 >= MAX_CYCLE {
            return None;
        }
        let next = waiting_in(trace, busy_callback(trace, &process, call)?, call)?;
        let seen = next.1 == first.1 || on.iter().any(|(_, p)| *p == next.1);
        if seen {
            return None; // a cycle the caller is not in
        }
        process = next.1.clone();
        on.push(next);
    }
    Some(on)
}

/// Whether `found`'s call opened a call cycle whose closing call (the server's call back,
/// made later) timed out too: that one is the finding.
fn opened_a_cycle_another_closed(
    trace: &AnalyzedTrace,
    found: &Timeout,
    timed_out: &[usize],
) -> bool {
    let start = trace.span(found.call).start_unix_nano;
    let closed_later = |&(back, _): &(usize, String)| {
        timed_out.contains(&back) && trace.span(back).start_unix_nano > start
    };
    found.cycle
        && found
            .waiting
            .iter()
            .chain(&found.cycle_on)
            .any(closed_later)
}

/// Whether `server` sat idle through most of `call` (its callbacks ran for less than half of
/// it: it had deferred its answer — a GenServer's `{:noreply, …}`, a `gen_statem`'s
/// `:postpone` — or never took the request): then, when it took the request, after the call
/// began, if it did.
fn idle_server(trace: &AnalyzedTrace, server: &str, call: usize) -> Option<Option<u64>> {
    let span = trace.span(call);
    let (from, to) = (span.start_unix_nano, span.end_unix_nano);
    let life = processes::life_at(trace, server, to)?;
    let busy: u64 = work_during(trace, life, call).iter().map(|&(_, n)| n).sum();
    if busy * 2 >= to - from {
        return None;
    }
    // The server's wait the request ended is linked to the call (processes::MESSAGE).
    let took = trace
        .tree
        .descendants(life)
        .iter()
        .map(|&d| trace.span(d))
        .filter(|d| d.name == "receive" && d.links.iter().any(|l| l.span_id == span.span_id))
        .map(|d| d.end_unix_nano.saturating_sub(from))
        .min();
    Some(took)
}

/// The top-level spans of the server's `life` that overlapped `call`, each with how long.
fn work_during(trace: &AnalyzedTrace, life: usize, call: usize) -> Vec<(usize, u64)> {
    let span = trace.span(call);
    let (from, to) = (span.start_unix_nano, span.end_unix_nano);
    processes::top_level_work(trace, life)
        .into_iter()
        .map(|c| {
            let s = trace.span(c);
            (
                c,
                s.end_unix_nano
                    .min(to)
                    .saturating_sub(s.start_unix_nano.max(from)),
            )
        })
        .filter(|&(_, overlap)| overlap > 0)
        .collect()
}

/// A call whose wait for the reply the recorder saw time out (`CALL_TIMED_OUT_MS`), its exit
/// caught inside it: the server it called and how long it waited.
fn given_up(trace: &AnalyzedTrace, call: usize) -> Option<(Awaited, Option<f64>)> {
    let waited = trace.span(call).attr(CALL_TIMED_OUT_MS)?.as_f64();
    let server = processes::text(trace, call, PEER)?;
    Some((Awaited::Server(server), waited.map(stated_timeout)))
}

/// The timeout a caller wrote, from how long its wait lasted: the wait overran it by the VM's
/// wake-up, a fraction of a millisecond on a quiet machine, a few on a loaded one (4 ms seen
/// with both cores compiling). Timeouts are written in whole milliseconds, most as round numbers: a wait up to
/// [`WAKE_UP_MS`] past a multiple of 10 ms is that multiple (`101.3` → 100), else its whole
/// milliseconds (`37.4` → 37).
pub(super) fn stated_timeout(waited_ms: f64) -> f64 {
    let round = (waited_ms / 10.0).floor() * 10.0;
    if round > 0.0 && waited_ms - round < WAKE_UP_MS {
        round
    } else {
        waited_ms.floor()
    }
}

/// How late a timed-out wait may end past a round timeout, milliseconds.
pub(super) const WAKE_UP_MS: f64 = 5.0;

/// What a timed-out call waited on.
#[derive(Debug, PartialEq)]
pub enum Awaited {
    /// A server: its registered name or pid (`<0.1.0>`).
    Server(String),
    /// A task's result (`Task.await`): its pid, when the summary kept it.
    Task(Option<String>),
}

/// How a call's `{M, F, A}` begins in an exit's summary, whitespace removed, in either syntax.
const CALL_MARKERS: [&str; 5] = [
    "GenServer,:call,[",
    "gen_server,call,[",
    ":gen_statem,:call,[",
    "gen_statem,call,[",
    "gen,call,[",
];

/// What a call-timeout exit waited on and its timeout (milliseconds; None: not a number), from
/// its summary in either syntax: OTP's call timeout, Elixir's `Task.await`, or a
/// `Task.async_stream` whose task outlived the stream's `timeout:` (`{:timeout,
/// {Task.Supervised, :stream, [timeout]}}`: the same wait for a task's result, the task not
/// named).
pub fn parse_call_timeout(summary: &str) -> Option<(Awaited, Option<f64>)> {
    let compact: String = summary.chars().filter(|c| !c.is_whitespace()).collect();
    let start = [":timeout,", "timeout,"]
        .iter()
        .find_map(|first| tuple_of(&compact, first))?;
    let rest = &compact[start..];
    let after = |markers: &[&str]| {
        markers
            .iter()
            .filter_map(|marker| rest.find(marker).map(|at| at + marker.len()))
            .min()
    };
    if let Some(at) = after(&CALL_MARKERS) {
        let items = top_level_items(&rest[at..]);
        let server = items.first()?.trim_start_matches("#PID").to_owned();
        return Some((Awaited::Server(server), number(items.get(2))));
    }
    if let Some(at) = after(&AWAIT_MARKERS) {
        let items = top_level_items(&rest[at..]);
        let pid = items.first().and_then(|task| pid_field(task));
        return Some((Awaited::Task(pid), number(items.get(1))));
    }
    let at = after(&STREAM_MARKERS)?;
    let items = top_level_items(&rest[at..]);
    Some((Awaited::Task(None), number(items.first())))
}

/// How `Task.await/2`'s and `Task.await_many/2`'s `{M, F, [task, timeout]}` begins in an
/// exit's summary, whitespace removed, in either syntax.
const AWAIT_MARKERS: [&str; 4] = [
    "Task,:await,[",
    "Task,:await_many,[",
    "'Elixir.Task',await,[",
    "'Elixir.Task',await_many,[",
];

/// How `Task.async_stream`'s `{Task.Supervised, :stream, [timeout]}` begins, in either syntax.
const STREAM_MARKERS: [&str; 2] = [
    "Task.Supervised,:stream,[",
    "'Elixir.Task.Supervised',stream,[",
];

fn number(item: Option<&String>) -> Option<f64> {
    item.and_then(|t| t.parse::<f64>().ok())
}

/// The `pid` field of a task's summary (`%Task{…,pid:#PID<0.1.0>,…}`), whitespace removed.
fn pid_field(task: &str) -> Option<String> {
    let at = task.find("pid:#PID<").or_else(|| task.find("pid=>#PID<"))?;
    let pid = &task[at..];
    let open = pid.find('<')?;
    let close = pid.find('>')?;
    Some(pid[open..=close].to_owned())
}

/// The task a `Task.await` in span `call` waited on, when its summary lost the pid: of the
/// processes still running at the call's end (or killed during it: a stream kills its tasks
/// before it exits) that the caller started — spawned, or (a task `Task.async_stream` spawns
/// from a process of its own) first woken by the caller's message — one started within the
/// call first, then the last started.
fn awaited_task(trace: &AnalyzedTrace, call: usize) -> Option<String> {
    let caller = causality::thread_of(trace, call)?;
    let (start, end) = (
        trace.span(call).start_unix_nano,
        trace.span(call).end_unix_nano,
    );
    let killed =
        |life: usize| processes::was_killed(trace, life) && trace.span(life).end_unix_nano >= start;
    let index = causality::span_index(trace);
    let by_caller = |cause: usize| {
        (causality::thread_of(trace, cause)? == caller)
            .then(|| cause == call || trace.tree.is_within(cause, call))
    };
    processes::lives(trace)
        .filter(|&life| {
            let span = trace.span(life);
            span.start_unix_nano <= end && (span.end_unix_nano >= end || killed(life))
        })
        .filter_map(|life| {
            let spawned = causality::waits_of(trace, &index, life)
                .into_iter()
                .find(|w| w.kind == "thread.start")
                .and_then(|w| by_caller(w.cause?));
            let woken = || by_caller(first_message(trace, &index, life)?).filter(|&within| within);
            let within = spawned.or_else(woken)?;
            Some(((within, trace.span(life).start_unix_nano), life))
        })
        .max_by_key(|&(key, _)| key)
        .and_then(|(_, life)| processes::thread_name(trace, life))
}

/// The send that ended the first `receive` of a process's life, directly in it.
fn first_message(
    trace: &AnalyzedTrace,
    index: &std::collections::HashMap<devtrace_model::SpanId, usize>,
    life: usize,
) -> Option<usize> {
    let first = trace.tree.children[life]
        .iter()
        .copied()
        .min_by_key(|&c| trace.span(c).start_unix_nano)?;
    causality::waits_of(trace, index, first)
        .into_iter()
        .find(|w| w.kind == processes::MESSAGE)?
        .cause
}

/// The brackets that nest in a summary: its lists, tuples and maps, and calls' parentheses.
const OPENERS: [char; 3] = ['[', '{', '('];
const CLOSERS: [char; 3] = [']', '}', ')'];

/// Where a tuple whose first element is `first` (`:timeout,`) and whose second is a tuple
/// begins in `text`, whitespace removed: the exit `{:timeout, {…}}` and not a `:timeout`
/// elsewhere in it. Nor one that is itself the first element of a tuple: `{{:timeout, {…,
/// [A, …]}}, {GenServer, :call, [B, …]}}` is a call to B that failed because B died of its
/// own call's timeout, not a call that timed out.
fn tuple_of(text: &str, first: &str) -> Option<usize> {
    let tuple = OPENERS[1];
    text.match_indices(first)
        .map(|(at, _)| at)
        .find(|&at| text[..at].ends_with(tuple) && text[at + first.len()..].starts_with(tuple))
        .map(|at| at - tuple.len_utf8())
        .filter(|&start| !text[..start].ends_with(tuple))
}

/// The comma-separated items of a list's text up to its closing bracket, nesting respected.
fn top_level_items(list: &str) -> Vec<String> {
    let (mut items, mut item, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in list.chars() {
        match c {
            c if OPENERS.contains(&c) => depth += 1,
            c if CLOSERS.contains(&c) && depth == 0 => break,
            c if CLOSERS.contains(&c) => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
}

/// The call under `busy` (the server's work) to another process that was in progress over the
/// most of `call`, at least half of it: what the server was waiting for meanwhile.
fn waiting_in(trace: &AnalyzedTrace, busy: usize, call: usize) -> Option<(usize, String)> {
    let waited = trace.span(call);
    let (from, to) = (waited.start_unix_nano, waited.end_unix_nano);
    trace
        .tree
        .descendants(busy)
        .iter()
        .filter_map(|&d| {
            let process = called_process(trace, d)?;
            let span = trace.span(d);
            let overlap = span
                .end_unix_nano
                .min(to)
                .saturating_sub(span.start_unix_nano.max(from));
            (overlap * 2 >= to - from).then_some((overlap, d, process))
        })
        .max_by_key(|&(overlap, d, _)| (overlap, std::cmp::Reverse(d)))
        .map(|(_, d, process)| (d, process))
}

/// The one other process that span `busy` (or a span under it) sent a message to and that
/// sent nothing back to it afterwards: a request `busy` was still waiting on when it ended —
/// asked of a task's work that failed (killed in `GenServer.call/3`, whose wait for the reply
/// no `receive` span records); a server's callback sends its late reply the same way.
fn asked_unanswered(trace: &AnalyzedTrace, busy: usize) -> Option<String> {
    let own = causality::thread_of(trace, busy)?;
    let within = |i: usize| i == busy || trace.tree.is_within(i, busy);
    let waits = processes::message_waits(trace);
    let mut asked = waits
        .iter()
        .filter(|w| w.waiter != own && w.wait.cause.is_some_and(within))
        .map(|w| {
            (
                w.wait.cause_time_unix_nano.unwrap_or(w.start_unix_nano),
                w.waiter.as_str(),
            )
        });
    let (sent_at, process) = asked.next()?;
    if asked.any(|(_, other)| other != process) {
        return None;
    }
    let answered = waits
        .iter()
        .any(|w| w.sender == process && within(w.wait.waiter) && w.end_unix_nano >= sent_at);
    (!answered).then(|| process.to_owned())
}

/// The process span `d` called: as the recorder marked it, or as its call-timeout exit names
/// it (a call given up carries its server in the exit even where no reply marked it).
fn called_process(trace: &AnalyzedTrace, d: usize) -> Option<String> {
    processes::text(trace, d, PEER)
        .or_else(|| processes::text(trace, d, "rpc.service"))
        .or_else(|| server_of_failed_call(&processes::text(trace, d, CALL_EXCEPTION)?))
        .or_else(|| processes::left_unanswered(trace, d))
}

/// The server a failed call's exit names as the one called: `{reason, {GenServer, :call,
/// [server, …]}}`, the last call in the summary (a reason may hold the server's own call).
fn server_of_failed_call(summary: &str) -> Option<String> {
    let compact: String = summary.chars().filter(|c| !c.is_whitespace()).collect();
    let at = CALL_MARKERS
        .iter()
        .filter_map(|marker| compact.rfind(marker).map(|at| at + marker.len()))
        .max()?;
    let server = top_level_items(&compact[at..]).into_iter().next()?;
    Some(server.trim_start_matches("#PID").to_owned())
}

/// The life of the process named `name` that began and ended within span `call` (a task
/// killed at its stream's timeout, before the caller exited).
fn life_within(trace: &AnalyzedTrace, name: &str, call: usize) -> Option<usize> {
    processes::lives(trace).find(|&life| {
        processes::thread_name(trace, life).as_deref() == Some(name) && {
            let (l, c) = (trace.span(life), trace.span(call));
            c.start_unix_nano <= l.start_unix_nano && l.end_unix_nano <= c.end_unix_nano
        }
    })
}

/// The server's top-level span that overlapped the call the longest.
fn busy_callback(trace: &AnalyzedTrace, server: &str, call: usize) -> Option<usize> {
    let span = trace.span(call);
    let life = processes::life_at(trace, server, span.end_unix_nano)
        .or_else(|| processes::life_at(trace, server, span.start_unix_nano))
        .or_else(|| life_within(trace, server, call))?;
    work_during(trace, life, call)
        .into_iter()
        .max_by_key(|&(_, overlap)| overlap)
        .map(|(c, _)| c)
}

fn finding(traces: &[AnalyzedTrace], call: &str, subject: &str, found: &[Timeout]) -> Finding {
    let example = &found[0];
    let server = example.server.as_str();
    let trace = &traces[example.trace];
    let waited = trace.span(example.call).duration_nanos();
    let saving = found
        .iter()
        .map(|f| traces[f.trace].span(f.call).duration_nanos())
        .sum::<u64>()
        / found.len() as u64;
    let timeout = example
        .timeout_ms
        .map_or("its timeout".to_owned(), |ms| format!("{ms} ms"));
    let shown = processes::shown_process(trace, server);
    let idle = example.idle.map(|took| idle_meanwhile(&shown, took));
    let meanwhile = example.busy.map(|b| {
        let waiting = match &example.waiting {
            Some(first) if example.cycle => format!(
                "{}: a call cycle, {}",
                cycle_waits(trace, first, &example.cycle_on),
                match (example.unanswered, example.cycle_on.is_empty()) {
                    (true, true) => "a deadlock: neither could answer, and no timeout ends it",
                    (true, false) => "a deadlock: none could answer, and no timeout ends it",
                    (false, _) => "which only a timeout ends",
                }
            ),
            Some((d, process)) if *d == b => format!(
                ", itself waiting for {}{}",
                processes::shown_process(trace, process),
                running(trace, process, example.call)
            ),
            Some((d, process)) => format!(
                ", itself waiting in {} for {}",
                q(&trace.span(*d).name),
                processes::shown_process(trace, process)
            ),
            None => String::new(),
        };
        meanwhile(trace, b, example.call, example.task) + &waiting
    });
    let times = format!(
        "{} time{}",
        found.len(),
        if found.len() == 1 { "" } else { "s" }
    );
    let meanwhile = meanwhile.or(idle).unwrap_or_default();
    let title = if example.unanswered {
        format!(
            "A call to {shown} in {} was never answered ({times}): it was still waiting after {} when the recording ended{meanwhile}",
            q(call),
            human_duration(waited),
        )
    } else if example.task {
        format!(
            "An await of task {} timed out after {timeout} in {} ({times}){meanwhile}",
            q(server),
            q(call)
        )
    } else {
        format!(
            "A call to {shown} timed out after {timeout} in {} ({times}){meanwhile}",
            q(call)
        )
    };
    let recommendation = recommendation(trace, example, &shown, &timeout);
    // Timeouts are counted per call, failures per run: one run may time out many times, and
    // a caller that caught the exit ran on.
    // A run still stuck in a call when the recording ended did not survive it.
    let stuck: BTreeSet<usize> = found
        .iter()
        .filter(|f| f.unanswered)
        .map(|f| f.trace)
        .collect();
    let (runs, _) = runs_and_survivors(traces, found.iter().map(|f| f.trace));
    let ran_on = found.iter().map(|f| f.trace).filter(|t| !stuck.contains(t));
    let (_, survived) = runs_and_survivors(traces, ran_on);
    let mut numbers = BTreeMap::new();
    numbers.insert("contained_runs".into(), survived as f64);
    numbers.insert("timeouts".into(), found.len() as f64);
    numbers.insert("waited_ms".into(), processes::millis(waited));
    if let Some(t) = example.timeout_ms {
        numbers.insert("timeout_ms".into(), t);
    }
    if example.cycle {
        numbers.insert("call_cycle".into(), 1.0);
    }
    if example.unanswered {
        numbers.insert("unanswered".into(), 1.0);
    }
    if example.idle.is_some() {
        numbers.insert("server_idle".into(), 1.0);
    }
    if let Some(b) = example.busy {
        numbers.insert(
            "server_busy_ms".into(),
            processes::millis(trace.span(b).duration_nanos()),
        );
    }
    Finding {
        kind: FindingKind::CallTimeout,
        operation: Some(call.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::CallTimeout.as_str(), call, subject]),
        saving_nanos: saving,
        occurrences: found.len() as u64,
        numbers,
        evidence: found
            .iter()
            .take(MAX_EVIDENCE)
            .map(|f| evidence(traces, f))
            .collect(),
        impact: Impact::failures(runs),
    }
}

/// ", itself waiting in "X.get/1" for "X", itself waiting in "P.get/1" for the caller "P"":
/// the waits of a call cycle, from the server's (`first`) back to the caller's process.
fn cycle_waits(trace: &AnalyzedTrace, first: &(usize, String), on: &[(usize, String)]) -> String {
    let hops: Vec<&(usize, String)> = std::iter::once(first).chain(on).collect();
    let last = hops.len() - 1;
    hops.iter()
        .enumerate()
        .map(|(i, (d, process))| {
            let whose = if i == last { "the caller " } else { "" };
            format!(
                ", itself waiting in {} for {whose}{}",
                q(&trace.span(*d).name),
                q(process)
            )
        })
        .collect()
}

/// What to do (`server` as shown, quoted).
fn recommendation(trace: &AnalyzedTrace, example: &Timeout, server: &str, timeout: &str) -> String {
    let caller = processes::calling_function(trace, example.call);
    let dialect = Dialect::of(&trace.span(caller).name);
    let reply_later = dialect.reply_later();
    if let (Some(b), Some((d, first)), true) = (example.busy, &example.waiting, example.cycle) {
        let (ends, reply) = if example.unanswered {
            let infinity = Dialect::of(&trace.span(b).name).infinity();
            (
                format!("ever (with {infinity}, a deadlock)"),
                "; and give the calls a timeout, so that a cycle is an error rather than a hang",
            )
        } else {
            ("before the timeout".to_owned(), "")
        };
        let further: String = example
            .cycle_on
            .iter()
            .map(|(d, p)| format!(", which calls {} ({})", q(p), q(&trace.span(*d).name)))
            .collect();
        let caller = example.cycle_on.last().map_or(first, |(_, p)| p);
        let (neither, calls) = if example.cycle_on.is_empty() {
            ("neither", "one of the two calls")
        } else {
            ("none", "one of the calls")
        };
        return format!(
            "Break the call cycle: {} calls {} ({}){further} while {} is waiting for {}'s answer, so {neither} can answer {ends}; pass what {server_q} is asked for in the first request, make {calls} a cast, or reply later ({reply_later}) so the server is free{reply}",
            q(&trace.span(b).name),
            q(first),
            q(&trace.span(*d).name),
            q(caller),
            server.to_owned(),
            server_q = server,
        );
    }
    if example.unanswered {
        return unstuck(trace, example, server);
    }
    if let Some(took) = example.idle {
        return format!(
            "{} {}: answer within {timeout} (an error, or what it has now), or give the call a timeout that covers what the server waits for",
            server.to_owned(),
            match took {
                Some(_) => {
                    let (noreply, postpone) = dialect.no_reply();
                    format!(
                        "took the request and answered only later (a deferred reply: {noreply} in a {}, {postpone} in a gen_statem)",
                        dialect.gen_server()
                    )
                }
                None => "never took the request while the caller waited".to_owned(),
            },
        );
    }
    match (example.busy, example.task) {
        (Some(b), false) if example.waiting.is_some() => {
            let (d, process) = example.waiting.as_ref().expect("checked");
            format!(
                "{} spent the wait in {}, a call to {}: find what kept {} from answering, or make that call outside the callback ({}, replying later with {reply_later}) so {} is free, and give the call a timeout that fits the work",
                q(&trace.span(b).name),
                q(&trace.span(*d).name),
                processes::shown_process(trace, process),
                processes::shown_process(trace, process),
                dialect.worker(),
                server.to_owned(),
            )
        }
        // Work the server began before the request came (a cast's, a timer's, another
        // caller's) kept it from taking the request at all.
        (Some(b), false)
            if trace.span(b).start_unix_nano < trace.span(example.call).start_unix_nano =>
        {
            format!(
                "{} was busy in {} when the call came (it took {}): shorten that work or run it in {} so that the server takes the request within the caller's {timeout}, and give the call a timeout that fits the work",
                server.to_owned(),
                q(&trace.span(b).name),
                human_duration(trace.span(b).duration_nanos()),
                dialect.worker(),
            )
        }
        (Some(b), false) => format!(
            "Make {} answer within the caller's {timeout} (it took {}), or reply later from {} ({reply_later}) so the server is free, and give the call a timeout that fits the work",
            q(&trace.span(b).name),
            human_duration(trace.span(b).duration_nanos()),
            dialect.worker(),
        ),
        (Some(b), true) if example.waiting.is_some() => {
            let (_, process) = example.waiting.as_ref().expect("checked");
            format!(
                "{} spent the wait in a call to {}{}: make that call answer within the caller's {timeout}, or give the task and its await a timeout that fits the work",
                q(&trace.span(b).name),
                processes::shown_process(trace, process),
                running(trace, process, example.call),
            )
        }
        (Some(b), true) => format!(
            "Make {} finish within the caller's {timeout} (it took {}), or await it with a timeout that fits the work; a task awaited past its timeout runs on and its late result is left in the caller's mailbox (Task.yield/2 then Task.shutdown/2 stops it)",
            q(&trace.span(b).name),
            human_duration(trace.span(b).duration_nanos()),
        ),
        (None, _) => format!(
            "Find what kept {} from answering within {timeout}: its work is not recorded (record its module)",
            server.to_owned()
        ),
    }
}

/// What to do about a call still waiting for its answer when the recording ended (`server` as
/// shown, quoted): what kept the answer, and a timeout, so that a lost answer is an error the
/// program can handle rather than a hang.
fn unstuck(trace: &AnalyzedTrace, example: &Timeout, server: &str) -> String {
    let caller = processes::calling_function(trace, example.call);
    let dialect = Dialect::of(&trace.span(caller).name);
    let ((noreply, postpone), reply) = (dialect.no_reply(), dialect.reply_later());
    let (statem_reply, infinity) = (dialect.statem_reply_later(), dialect.infinity());
    let task = dialect.worker();
    let cause = match (example.idle, example.busy, &example.waiting) {
        (Some(Some(_)), _, _) => format!(
            "{server} took the request and never answered it: a deferred reply ({noreply} in a gen_server, {postpone} in a gen_statem) needs {reply} ({statem_reply}) on every path, an error one included"
        ),
        (Some(None), _, _) => format!(
            "{server} never took the request: find what its receive was waiting for instead"
        ),
        (None, Some(b), Some((d, process))) => format!(
            "{} was still waiting in {}, a call to {}: find what kept {} from answering, or make that call outside the callback ({task}, replying later with {reply}) so {server} is free",
            q(&trace.span(b).name),
            q(&trace.span(*d).name),
            processes::shown_process(trace, process),
            processes::shown_process(trace, process),
        ),
        (None, Some(b), None) => format!(
            "{} was still running after {}: make it answer sooner, or reply later from {task} ({reply}) so {server} is free",
            q(&trace.span(b).name),
            human_duration(trace.span(b).duration_nanos()),
        ),
        (None, None, _) => format!(
            "Find what kept {server} from answering: its work is not recorded (record its module)"
        ),
    };
    format!(
        "{cause}, and give the call a timeout rather than {infinity}, so that an answer that never comes is an error rather than a hang"
    )
}

/// ", which was running "S.handle_call/3"": what `process` ran over most of span `call`,
/// when recorded.
fn running(trace: &AnalyzedTrace, process: &str, call: usize) -> String {
    busy_callback(trace, process, call).map_or(String::new(), |b| {
        format!(", which was running {}", q(&trace.span(b).name))
    })
}

/// ": meanwhile "Door" was idle: it took the request 81 µs into the call and did not answer".
fn idle_meanwhile(server: &str, took: Option<u64>) -> String {
    match took {
        Some(at) => format!(
            ": meanwhile {server} was idle: it took the request {} into the call and did not answer",
            human_duration(at)
        ),
        None => format!(": meanwhile {server} was idle, and never took the request"),
    }
}

/// ": meanwhile the server was running "S.handle_call/3" (304.7 ms, from 0.1 ms before the
/// call)".
fn meanwhile(trace: &AnalyzedTrace, busy: usize, call: usize, task: bool) -> String {
    let (b, c) = (trace.span(busy), trace.span(call));
    let when = if b.start_unix_nano <= c.start_unix_nano {
        format!(
            "from {} before the call",
            human_duration(c.start_unix_nano - b.start_unix_nano)
        )
    } else {
        format!(
            "from {} into the call",
            human_duration(b.start_unix_nano - c.start_unix_nano)
        )
    };
    format!(
        ": meanwhile the {} was running {} ({}, {when})",
        if task { "task" } else { "server" },
        q(&b.name),
        human_duration(b.duration_nanos())
    )
}

fn evidence(traces: &[AnalyzedTrace], found: &Timeout) -> Evidence {
    let trace = &traces[found.trace];
    trace.evidence(std::iter::once(found.call).chain(found.busy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, StatusCode, TraceId};

    /// A run (`failed`: whose root span failed) with `calls` calls that timed out.
    fn run_with_timeouts(calls: u8, failed: bool) -> AnalyzedTrace {
        let mut root = span(1, None, "elixir inventory.exs", 0, 1000);
        if failed {
            root.status.code = StatusCode::Error;
        }
        let mut spans = vec![root];
        for n in 0..calls {
            let id = 10 + n;
            let mut call = span(
                id,
                Some(1),
                "Warehouse.stock/1",
                100 * n as u64,
                100 * n as u64 + 50,
            );
            call.status.code = StatusCode::Error;
            call.attributes.push(KeyValue::new(
                CALL_EXCEPTION,
                "{:exit, {:timeout, {GenServer, :call, [Warehouse, {:stock, 1}, 50]}}}",
            ));
            spans.push(call);
        }
        AnalyzedTrace::new(TraceId([1 + failed as u8; 16]), batch(spans))
    }

    #[test]
    fn a_timeout_is_read_as_the_round_number_its_wait_overran() {
        assert_eq!(stated_timeout(100.6), 100.0);
        assert_eq!(stated_timeout(101.9), 100.0);
        assert_eq!(stated_timeout(5000.3), 5000.0);
        assert_eq!(stated_timeout(37.4), 37.0);
        assert_eq!(stated_timeout(104.0), 100.0, "late on a loaded machine");
        assert_eq!(stated_timeout(106.5), 106.0);
        assert_eq!(stated_timeout(5.4), 5.0);
    }

    #[test]
    fn timeouts_are_counted_per_call_and_failures_per_run() {
        let traces = [run_with_timeouts(5, false), run_with_timeouts(2, true)];
        let [found] = detect(&traces).try_into().expect("one finding");
        assert_eq!(found.numbers["timeouts"], 7.0);
        assert_eq!(found.impact.affected_runs, 2, "two runs, not seven");
        assert_eq!(found.numbers["contained_runs"], 1.0, "the first run ran on");
    }

    #[test]
    fn both_syntaxes_name_the_server_and_the_timeout() {
        let elixir = "{:exit, {:timeout, {GenServer, :call, [Report.Server, :build, 100]}}}";
        let server = |name: &str| Awaited::Server(name.into());
        assert_eq!(
            parse_call_timeout(elixir),
            Some((server("Report.Server"), Some(100.0)))
        );
        let erlang = "{exit,{timeout,{gen_server,call,[report_server,{build,[1,2]},5000]}}}";
        assert_eq!(
            parse_call_timeout(erlang),
            Some((server("report_server"), Some(5000.0)))
        );
        let pid = "{:exit, {:timeout, {GenServer, :call, [#PID<0.108.0>, :build, :infinity]}}}";
        assert_eq!(parse_call_timeout(pid), Some((server("<0.108.0>"), None)));
    }

    #[test]
    fn a_task_await_timeout_names_the_task_when_its_summary_kept_the_pid() {
        let elided = "{:exit, {:timeout, {Task, :await, [\u{2026}, 100]}}}";
        assert_eq!(
            parse_call_timeout(elided),
            Some((Awaited::Task(None), Some(100.0)))
        );
        let kept = "{:exit, {:timeout, {Task, :await, [%Task{mfa: {:erlang, :apply, 2}, \
                    owner: #PID<0.98.0>, pid: #PID<0.105.0>, ref: #Reference<0.1.2.3>}, 250]}}}";
        assert_eq!(
            parse_call_timeout(kept),
            Some((Awaited::Task(Some("<0.105.0>".into())), Some(250.0)))
        );
        let many = "{:exit, {:timeout, {Task, :await_many, [[\u{2026}], 5000]}}}";
        assert_eq!(
            parse_call_timeout(many),
            Some((Awaited::Task(None), Some(5000.0)))
        );
    }

    #[test]
    fn an_async_stream_timeout_is_an_await_of_an_unnamed_task() {
        let elixir = "{:exit, {:timeout, {Task.Supervised, :stream, [150]}}}";
        assert_eq!(
            parse_call_timeout(elixir),
            Some((Awaited::Task(None), Some(150.0)))
        );
        let erlang = "{exit,{timeout,{'Elixir.Task.Supervised',stream,[5000]}}}";
        assert_eq!(
            parse_call_timeout(erlang),
            Some((Awaited::Task(None), Some(5000.0)))
        );
        // A stream's own exit nested in another reason is not the timeout (see tuple_of).
        let nested = "{{:timeout, {Task.Supervised, :stream, [150]}}, {Worker, :run, []}}";
        assert_eq!(parse_call_timeout(nested), None);
    }

    /// `Report.build/1` (span 3, on `<0.98.0>`) spawns a task at 10 ms and awaits it for
    /// 100 ms; the task (life 20) runs 250 ms. An older task (life 30, spawned before the call
    /// by the same process) and another process's task (life 40) also run on.
    fn an_await_that_timed_out() -> AnalyzedTrace {
        use crate::causality::tests::{linked, on_thread};
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let mut build = on_thread(
            span(3, Some(2), "Report.build/1", 5 * MS, 110 * MS),
            "<0.98.0>",
        );
        build.status.code = StatusCode::Error;
        build.attributes.push(KeyValue::new(
            CALL_EXCEPTION,
            "{:exit, {:timeout, {Task, :await, [\u{2026}, 100]}}}",
        ));
        let spawned = |life, by, at| linked(life, by, "thread.start", at, 0);
        let spans = vec![
            span(1, None, "elixir report.exs", 0, 400 * MS),
            life(2, "<0.98.0>", 0, 400 * MS),
            build,
            life(4, "<0.97.0>", 0, 400 * MS),
            spawned(life(20, "<0.105.0>", 10 * MS, 260 * MS), 3, 10 * MS),
            span(
                21,
                Some(20),
                "anonymous fn#0 in Report.build/1",
                10 * MS,
                260 * MS,
            ),
            spawned(life(30, "<0.101.0>", 2 * MS, 300 * MS), 2, 2 * MS),
            spawned(life(40, "<0.110.0>", 50 * MS, 300 * MS), 4, 50 * MS),
        ];
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_task_await_that_timed_out_names_the_task_spawned_in_the_call_and_its_work() {
        let [found] = detect(&[an_await_that_timed_out()])
            .try_into()
            .expect("one finding");
        assert_eq!(
            found.title,
            "An await of task \"<0.105.0>\" timed out after 100 ms in \"Report.build/1\" (1 time): \
             meanwhile the task was running \"anonymous fn#0 in Report.build/1\" (250.0 ms, from \
             5.0 ms into the call)"
        );
        assert!(
            found.recommendation.contains("late result"),
            "{}",
            found.recommendation
        );
        assert_eq!(found.numbers["server_busy_ms"], 250.0);
    }

    /// `Prices.fetch_all/1` (span 3, on `<0.98.0>`, 5–160 ms) exits with the stream's 150 ms
    /// timeout. The task (life 20) was spawned by the stream's own process (no link) and woken
    /// by the caller's message at 10 ms; it asked "shop" at 11 ms and was killed at 159 ms with
    /// no answer. "shop" (life 4, spawned by the caller before the call) ran its callback.
    fn a_stream_that_timed_out() -> AnalyzedTrace {
        use crate::causality::tests::{linked, on_thread};
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let mut fetch = on_thread(
            span(3, Some(2), "Prices.fetch_all/1", 5 * MS, 160 * MS),
            "<0.98.0>",
        );
        fetch.attributes.push(KeyValue::new(
            CALL_EXCEPTION,
            "{:exit, {:timeout, {Task.Supervised, :stream, [150]}}}",
        ));
        let message = |waiter, cause, at| linked(waiter, cause, processes::MESSAGE, at, 0);
        let mut task = life(20, "<0.105.0>", 10 * MS, 159 * MS);
        task.attributes.retain(|a| a.key != processes::EXIT_REASON);
        task.attributes
            .push(KeyValue::new(processes::EXIT_REASON, ":killed"));
        let on = |s, name| on_thread(s, name);
        let name = "anonymous fn#1 in Prices.fetch_all/1";
        let mut killed_work = on(span(21, Some(20), name, 10 * MS + 1, 159 * MS), "<0.105.0>");
        killed_work.status.code = StatusCode::Error;
        let spans = vec![
            span(1, None, "elixir prices.exs", 0, 400 * MS),
            life(2, "<0.98.0>", 0, 400 * MS),
            fetch,
            linked(life(4, "shop", MS, 400 * MS), 2, "thread.start", MS, 0),
            message(
                on(span(42, Some(4), "receive", MS, 11 * MS), "shop"),
                21,
                11 * MS,
            ),
            on(
                span(41, Some(4), "Shop.handle_call/3", 11 * MS, 400 * MS),
                "shop",
            ),
            task,
            message(
                on(
                    span(22, Some(20), "receive", 10 * MS, 10 * MS + 1),
                    "<0.105.0>",
                ),
                3,
                10 * MS,
            ),
            killed_work,
        ];
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_stream_timeout_names_the_task_it_killed_and_the_server_that_task_waited_for() {
        let [found] = detect(&[a_stream_that_timed_out()])
            .try_into()
            .expect("one finding");
        assert!(
            found.title.starts_with(
                "An await of task \"<0.105.0>\" timed out after 150 ms in \"Prices.fetch_all/1\" \
                 (1 time): meanwhile the task was running \"anonymous fn#1 in Prices.fetch_all/1\""
            ),
            "{}",
            found.title
        );
        assert!(
            found
                .title
                .ends_with("itself waiting for \"shop\", which was running \"Shop.handle_call/3\""),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.contains("a call to \"shop\""),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn other_exits_are_not_call_timeouts() {
        assert_eq!(parse_call_timeout("{:exit, :timeout}"), None);
        // A `:timeout` that is not the exit's `{:timeout, {…}}`, before a call's text.
        assert_eq!(
            parse_call_timeout("{:error, {:timeout, :later}, {GenServer, :call, [S, :x, 5]}}"),
            None
        );
        assert_eq!(
            parse_call_timeout("{:error, %RuntimeError{message: \"timeout\"}}"),
            None
        );
        // A call to Inventory, which died of its own call's timeout to Pricing.
        let died = "{:exit, {{:timeout, {GenServer, :call, [Pricing, …, 400]}}, \
                    {GenServer, :call, [Inventory, …, 400]}}}";
        assert_eq!(parse_call_timeout(died), None);
        assert_eq!(server_of_failed_call(died).as_deref(), Some("Inventory"));
    }

    /// "Orders" (life 2) runs `handle_call/3` (span 3) from 0 to 303 ms, in it a call to
    /// "Stock" (span 4); "Stock" (life 10) runs its `handle_call/3` (span 11), in it a call back
    /// to "Orders" (span 12) that times out at 300 ms.
    fn two_servers_calling_each_other() -> AnalyzedTrace {
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let calling = |mut s: devtrace_model::Span, service: &str| {
            s.attributes.push(KeyValue::new("rpc.service", service));
            s
        };
        let mut back = calling(
            span(12, Some(11), "Orders.priority/1", MS, 301 * MS),
            "Orders",
        );
        back.status.code = StatusCode::Error;
        back.attributes.push(KeyValue::new(
            CALL_EXCEPTION,
            "{:exit, {:timeout, {GenServer, :call, [Orders, {:priority, 1}, 300]}}}",
        ));
        let spans = vec![
            span(1, None, "elixir deadlock.exs", 0, 400 * MS),
            life(2, "Orders", 0, 400 * MS),
            span(3, Some(2), "Orders.handle_call/3", 0, 303 * MS),
            calling(span(4, Some(3), "Stock.reserve/1", 0, 302 * MS), "Stock"),
            life(10, "Stock", 0, 400 * MS),
            span(11, Some(10), "Stock.handle_call/3", MS, 302 * MS),
            back,
        ];
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_timeout_while_the_server_waited_for_its_caller_is_a_call_cycle() {
        let [found] = detect(&[two_servers_calling_each_other()])
            .try_into()
            .expect("one finding");
        assert!(
            found.title.ends_with(
                "itself waiting in \"Stock.reserve/1\" for the caller \"Stock\": a call cycle, which only a timeout ends"
            ),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with("Break the call cycle"),
            "{}",
            found.recommendation
        );
        assert_eq!(found.numbers["call_cycle"], 1.0);
        // A server busy with work of its own is no cycle.
        let [plain] = detect(&[run_with_timeouts(1, false)])
            .try_into()
            .expect("one");
        assert!(!plain.numbers.contains_key("call_cycle"));
    }

    /// OTP's default timeouts, equal: the script (life 20) calls "Inventory" (life 2), whose
    /// `handle_call/3` calls "Pricing" (life 10), whose `handle_call/3` calls "Inventory" back.
    /// All three calls time out at 2 s, each a few µs after the one made before it.
    fn a_cycle_with_equal_timeouts() -> AnalyzedTrace {
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let timed_out = |id: u8, parent: u8, name: &str, from: u64, server: &str| {
            let mut call = span(id, Some(parent), name, from, from + 2_000 * MS + 40_000);
            // The call that closed the cycle unmarked: its exit names the server.
            if id != 12 {
                call.attributes.push(KeyValue::new("rpc.service", server));
            }
            call.status.code = StatusCode::Error;
            call.attributes.push(KeyValue::new(
                CALL_EXCEPTION,
                format!("{{:exit, {{:timeout, {{GenServer, :call, [{server}, :x, 2000]}}}}}}"),
            ));
            call
        };
        let spans = vec![
            span(1, None, "elixir deadlock.exs", 0, 2_500 * MS),
            life(20, "<0.98.0>", 0, 2_500 * MS),
            timed_out(21, 20, "Inventory.reserve/1", 0, "Inventory"),
            life(2, "Inventory", 0, 2_001 * MS),
            span(
                3,
                Some(2),
                "Inventory.handle_call/3",
                10_000,
                2_000 * MS + 60_000,
            ),
            timed_out(4, 3, "Pricing.quote/1", 20_000, "Pricing"),
            life(10, "Pricing", 0, 2_500 * MS),
            span(
                11,
                Some(10),
                "Pricing.handle_call/3",
                30_000,
                2_000 * MS + 90_000,
            ),
            timed_out(12, 11, "Inventory.stock/1", 40_000, "Inventory"),
        ];
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_cycle_whose_two_calls_timed_out_is_one_finding_and_its_callers_wait_names_it() {
        let findings = detect(&[a_cycle_with_equal_timeouts()]);
        let titles: Vec<&str> = findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(findings.len(), 2, "{titles:#?}");
        let cycle = findings
            .iter()
            .find(|f| f.operation.as_deref() == Some("Inventory.stock/1"))
            .expect("the call that closed the cycle");
        assert_eq!(cycle.numbers["call_cycle"], 1.0);
        assert!(
            cycle.title.ends_with(
                "itself waiting in \"Pricing.quote/1\" for the caller \"Pricing\": a call cycle, which only a timeout ends"
            ),
            "{}",
            cycle.title
        );
        // The script's call waited on a server that waited on "Pricing": said, no cycle.
        let outer = findings
            .iter()
            .find(|f| f.operation.as_deref() == Some("Inventory.reserve/1"))
            .expect("the script's call");
        assert!(!outer.numbers.contains_key("call_cycle"));
        assert!(
            outer
                .title
                .ends_with(", itself waiting in \"Pricing.quote/1\" for \"Pricing\""),
            "{}",
            outer.title
        );
        assert!(
            outer.recommendation.starts_with(
                "\"Inventory.handle_call/3\" spent the wait in \"Pricing.quote/1\", a call to \"Pricing\""
            ),
            "{}",
            outer.recommendation
        );
    }

    /// `Door.open/1` (span 3, on `<0.98.0>`) calls "Door" (life 10) for 150 ms and catches its
    /// own timeout (the recorder saw the wait time out); Door took the request at 1 ms (its
    /// wait 11, linked to the call) and postponed it: a 2 µs callback, then nothing.
    fn a_call_to_an_idle_server() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let mut call = span(3, Some(2), "Door.open/1", 0, 150 * MS);
        call.attributes
            .push(KeyValue::new(CALL_TIMED_OUT_MS, 150.4));
        call.attributes.push(KeyValue::new(PEER, "Door"));
        let spans = vec![
            span(1, None, "elixir door.exs", 0, 600 * MS),
            life(2, "<0.98.0>", 0, 600 * MS),
            call,
            life(10, "Door", 0, 600 * MS),
            linked(
                span(11, Some(10), "receive", 0, MS),
                3,
                processes::MESSAGE,
                0,
                0,
            ),
            span(12, Some(10), "Door.handle_event/4", MS, MS + 2_000),
            span(13, Some(10), "Door.handle_event/4", 400 * MS, 401 * MS),
        ];
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_caught_timeout_of_a_server_that_deferred_its_answer_says_it_was_idle() {
        let [found] = detect(&[a_call_to_an_idle_server()])
            .try_into()
            .expect("one finding");
        assert_eq!(
            found.title,
            "A call to \"Door\" timed out after 150 ms in \"Door.open/1\" (1 time): meanwhile \"Door\" was idle: it took the request 1.0 ms into the call and did not answer"
        );
        assert!(
            found
                .recommendation
                .contains("took the request and answered only later"),
            "{}",
            found.recommendation
        );
        assert_eq!(
            found.numbers["timeout_ms"], 150.0,
            "the wait, whole milliseconds"
        );
        assert_eq!(found.numbers["server_idle"], 1.0);
    }

    #[test]
    fn a_call_to_a_server_named_through_a_registry_names_the_process_the_request_went_to() {
        // `GenServer.call({:via, Registry, {Rooms, "lobby"}}, …, 100)`: the exit's summary
        // keeps no name for the server (`…`); the request went to <0.111.0>, busy in a cast's
        // callback from before the call.
        use crate::processes::tests::life;
        const MS: u64 = 1_000_000;
        let mut call = span(3, Some(1), "Room.post/2", 10 * MS, 110 * MS);
        call.status.code = StatusCode::Error;
        call.attributes.extend([
            KeyValue::new(
                CALL_EXCEPTION,
                "{:exit, {:timeout, {GenServer, :call, […, …, 100]}}}",
            ),
            KeyValue::new(PEER, "<0.111.0>"),
        ]);
        let spans = vec![
            span(1, None, "elixir rooms.exs", 0, 400 * MS),
            call,
            life(10, "<0.111.0>", 0, 400 * MS),
            span(11, Some(10), "Room.handle_cast/2", 5 * MS, 305 * MS),
        ];
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace]).try_into().expect("one finding");
        assert!(
            found
                .title
                .starts_with("A call to \"<0.111.0>\" timed out after 100 ms")
                && found.title.contains("running \"Room.handle_cast/2\""),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                "\"<0.111.0>\" was busy in \"Room.handle_cast/2\" when the call came (it took 300.0 ms)"
            ),
            "{}",
            found.recommendation
        );
    }

    /// A server's wait (span `wait`, under its life `server`) from `from` until the request of
    /// span `call` came `at`, and the 2 µs callback that took it (span `wait + 1`).
    fn taken(
        (wait, server): (u8, u8),
        call: u8,
        (from, at): (u64, u64),
        callback: &str,
    ) -> [devtrace_model::Span; 2] {
        let waited = span(wait, Some(server), "receive", from, at);
        [
            crate::causality::tests::linked(waited, call, processes::MESSAGE, at, at - from),
            span(wait + 1, Some(server), callback, at, at + 2_000),
        ]
    }

    /// `Gateway.charge/2` (span 3, inside `Checkout.run/1`, span 4, both open when the
    /// recording ended `waited_ms` after the call) sent "Gateway" its request at 10 µs; Gateway
    /// took it (its wait 11) and returned `{:noreply, …}` from a 3 µs callback, then nothing.
    /// With `answered`, a message of Gateway's ended a wait of the caller's after the request.
    fn a_call_left_waiting(waited_ms: u64, answered: bool) -> AnalyzedTrace {
        use crate::causality::tests::{linked, on_thread};
        use crate::processes::tests::life;
        const US: u64 = 1_000;
        let end = waited_ms * 1_000 * US;
        let open = |mut s: devtrace_model::Span| {
            s.attributes.push(KeyValue::new(processes::OPEN, true));
            s
        };
        let mut spans = vec![
            span(1, None, "elixir hung.exs", 0, end),
            open(on_thread(
                span(2, Some(1), "process <0.98.0>", 0, end),
                "<0.98.0>",
            )),
            open(span(4, Some(2), "Checkout.run/1", 0, end)),
            open(span(3, Some(4), "Gateway.charge/2", 0, end)),
            life(10, "Gateway", 0, end),
        ];
        spans.extend(taken((11, 10), 3, (0, 10 * US), "Gateway.handle_call/3"));
        if answered {
            spans.push(linked(
                span(5, Some(3), "receive", 10 * US, 20 * US),
                12,
                processes::MESSAGE,
                20 * US,
                10 * US,
            ));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_call_still_waiting_for_its_answer_when_the_recording_ended_was_never_answered() {
        let [found] = detect(&[a_call_left_waiting(2_000, false)])
            .try_into()
            .expect("one finding");
        assert_eq!(
            found.title,
            "A call to \"Gateway\" in \"Gateway.charge/2\" was never answered (1 time): it was still waiting after 2.00 s when the recording ended: meanwhile \"Gateway\" was idle: it took the request 10 µs into the call and did not answer"
        );
        assert!(
            found
                .recommendation
                .starts_with("\"Gateway\" took the request and never answered it")
                && found.recommendation.contains("rather than :infinity"),
            "{}",
            found.recommendation
        );
        assert_eq!(found.numbers["unanswered"], 1.0);
        assert_eq!(
            found.numbers["contained_runs"], 0.0,
            "a stuck run did not survive it"
        );
        assert!(!found.numbers.contains_key("timeout_ms"), "it had none");
        assert_eq!(
            found.evidence[0].span_ids,
            vec![devtrace_model::SpanId([3; 8])]
        );
    }

    #[test]
    fn a_call_never_answered_in_an_erlang_program_is_told_in_erlangs_words() {
        let mut erlang = a_call_left_waiting(2_000, false);
        for s in &mut erlang.spans.spans {
            s.name = s.name.replace("Gateway.charge/2", "gateway:charge/2");
        }
        let erlang = AnalyzedTrace::new(TraceId([1; 16]), batch(erlang.spans.spans));
        let [found] = detect(&[erlang]).try_into().expect("one finding");
        assert!(
            found.recommendation.contains(
                "a deferred reply ({noreply, …} in a gen_server, postpone in a gen_statem) needs \
                 gen_server:reply/2 (gen_statem:reply/2) on every path"
            ) && found.recommendation.ends_with(
                "give the call a timeout rather than infinity, so that an answer that never \
                 comes is an error rather than a hang"
            ),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_call_answered_or_waiting_briefly_when_the_recording_ended_is_not_stuck() {
        assert!(
            detect(&[a_call_left_waiting(2_000, true)]).is_empty(),
            "the answer came; the span goes on with other work"
        );
        assert!(
            detect(&[a_call_left_waiting(500, false)]).is_empty(),
            "half a second is a call in progress when the program was stopped, not one stuck"
        );
    }

    /// Servers that call each other round a ring with `:infinity`, all still waiting 2 s
    /// later (a deadlock): server k (life `10k + 10`) took its request and ran its callback
    /// (`10k + 11`), which at 3 µs in called the next server through `calls[k]` (span `10k +
    /// 12`, its `call request` event at 5 µs); the next server took that request 2 µs later
    /// (its wait `10k + 13`) — all but the first server's own, which "Orders" never took (the
    /// recorder's events say where each went) — or, `traced`, one the VM told "Orders" of when
    /// it arrived, ending a wait the recorder marked a request.
    fn a_deadlock_of(servers: &[&str], calls: &[&str], traced: bool) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::life;
        const US: u64 = 1_000;
        let end = 2_000_000 * US;
        let open = |mut s: devtrace_model::Span| {
            s.attributes.push(KeyValue::new(processes::OPEN, true));
            s
        };
        let asked = |mut s: devtrace_model::Span, at: u64, to: &str| {
            s.events.push(devtrace_model::Event {
                time_unix_nano: at,
                name: processes::CALL_REQUEST_EVENT.to_owned(),
                attributes: vec![KeyValue::new(processes::ASKED, to)],
                dropped_attributes_count: 0,
            });
            open(s)
        };
        let mut spans = vec![span(1, None, "elixir deadlock.exs", 0, end)];
        let mut began = 5 * US;
        for (k, (&server, &call)) in servers.iter().zip(calls).enumerate() {
            let id = 10 * k as u8 + 10;
            let next = servers[(k + 1) % servers.len()];
            spans.push(open(life(id, server, 0, end)));
            let callback = format!("{server}.handle_call/3");
            spans.push(open(span(id + 1, Some(id), &callback, began, end)));
            spans.push(asked(
                span(id + 2, Some(id + 1), call, began + 3 * US, end),
                began + 5 * US,
                next,
            ));
            if k > 0 {
                let took = span(id + 3, Some(id), "receive", 0, began);
                spans.push(linked(took, id - 8, processes::MESSAGE, began, began));
            }
            began += 7 * US;
        }
        if traced {
            let last = 10 * servers.len() as u8 + 2;
            let mut told = span(13, Some(12), "receive", 8 * US, began);
            told.attributes
                .push(KeyValue::new(processes::REQUEST, true));
            spans.push(linked(
                told,
                last,
                processes::MESSAGE,
                began,
                began - 8 * US,
            ));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    fn a_deadlock(traced: bool) -> AnalyzedTrace {
        a_deadlock_of(
            &["Orders", "Warehouse"],
            &["Warehouse.reserve/2", "Orders.priority/1"],
            traced,
        )
    }

    #[test]
    fn three_servers_left_waiting_round_a_ring_are_one_deadlock() {
        let ring = a_deadlock_of(
            &["Orders", "Warehouse", "Billing"],
            &["Warehouse.reserve/2", "Billing.check/1", "Orders.tier/1"],
            false,
        );
        let [found] = detect(&[ring])
            .try_into()
            .expect("one finding: the call that closed it");
        assert_eq!(found.operation.as_deref(), Some("Orders.tier/1"));
        assert!(
            found.title.ends_with(
                "itself waiting in \"Warehouse.reserve/2\" for \"Warehouse\", itself waiting in \"Billing.check/1\" for the caller \"Billing\": a call cycle, a deadlock: none could answer, and no timeout ends it"
            ),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                "Break the call cycle: \"Orders.handle_call/3\" calls \"Warehouse\" (\"Warehouse.reserve/2\"), which calls \"Billing\" (\"Billing.check/1\") while \"Billing\" is waiting for \"Orders\"'s answer, so none can answer ever"
            ),
            "{}",
            found.recommendation
        );
        assert_eq!(found.numbers["call_cycle"], 1.0);
    }

    /// `Report.run/0` (span 3, open 2 s later at the end) asked `to` at 10 µs and went on with
    /// work of its own; nothing took the request that the recording shows.
    fn asked_and_went_on(to: &str, server_recorded: bool) -> AnalyzedTrace {
        use crate::causality::tests::on_thread;
        use crate::processes::tests::life;
        const US: u64 = 1_000;
        let end = 2_000_000 * US;
        let open = |mut s: devtrace_model::Span| {
            s.attributes.push(KeyValue::new(processes::OPEN, true));
            s
        };
        let mut run = open(span(3, Some(2), "Report.run/0", 0, end));
        run.events.push(devtrace_model::Event {
            time_unix_nano: 10 * US,
            name: processes::CALL_REQUEST_EVENT.to_owned(),
            attributes: vec![KeyValue::new(processes::ASKED, to)],
            dropped_attributes_count: 0,
        });
        let mut spans = vec![
            span(1, None, "elixir report.exs", 0, end),
            open(on_thread(
                span(2, Some(1), "process <0.98.0>", 0, end),
                "<0.98.0>",
            )),
            run,
        ];
        if server_recorded {
            spans.push(open(life(10, to, 0, end)));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_request_only_a_process_of_the_program_left_unanswered_is_a_hang() {
        let [found] = detect(&[asked_and_went_on("Reports", true)])
            .try_into()
            .expect("the program's server never took it");
        assert!(
            found
                .title
                .starts_with("A call to \"Reports\" in \"Report.run/0\" was never answered"),
            "{}",
            found.title
        );
        // The VM's own processes are not recorded, nor are their answers: no hang to tell.
        assert!(detect(&[asked_and_went_on("application_controller", false)]).is_empty());
    }

    #[test]
    fn two_servers_left_waiting_on_each_other_are_a_deadlock() {
        for traced in [false, true] {
            let [found] = detect(&[a_deadlock(traced)])
                .try_into()
                .expect("one finding: the call that closed the cycle");
            assert_eq!(
                found.title,
                "A call to \"Orders\" in \"Orders.priority/1\" was never answered (1 time): it was still waiting after 2.00 s when the recording ended: meanwhile the server was running \"Orders.handle_call/3\" (2.00 s, from 10 µs before the call), itself waiting in \"Warehouse.reserve/2\" for the caller \"Warehouse\": a call cycle, a deadlock: neither could answer, and no timeout ends it",
                "traced: {traced}"
            );
            assert!(
                found.recommendation.starts_with("Break the call cycle")
                    && found.recommendation.contains("with :infinity, a deadlock"),
                "{}",
                found.recommendation
            );
            assert_eq!(found.numbers["call_cycle"], 1.0);
            assert_eq!(found.numbers["unanswered"], 1.0);
        }
    }

    /// Workers `<0.98.0>` and `<0.99.0>` (with `both`) each asked "Jobs" for the next job in
    /// `Jobs.next/0` and were still waiting 2 s later, the queue keeping their `from` for a
    /// job that never came; with `answered_before`, the first had asked the same before and got
    /// a job (its earlier `Jobs.next/0`, marked a call to "Jobs").
    fn workers_waiting_for_work(both: bool, answered_before: bool) -> AnalyzedTrace {
        use crate::causality::tests::on_thread;
        use crate::processes::tests::life;
        const US: u64 = 1_000;
        let end = 2_000_000 * US;
        let open = |mut s: devtrace_model::Span| {
            s.attributes.push(KeyValue::new(processes::OPEN, true));
            s
        };
        let mut spans = vec![
            span(1, None, "elixir jobs.exs", 0, end),
            life(10, "Jobs", 0, end),
            open(on_thread(
                span(2, Some(1), "process <0.98.0>", 0, end),
                "<0.98.0>",
            )),
            open(span(3, Some(2), "Jobs.next/0", 100 * US, end)),
        ];
        spans.extend(taken((11, 10), 3, (0, 110 * US), "Jobs.handle_call/3"));
        if both {
            spans.extend([
                open(on_thread(
                    span(4, Some(1), "process <0.99.0>", 0, end),
                    "<0.99.0>",
                )),
                open(span(5, Some(4), "Jobs.next/0", 120 * US, end)),
            ]);
            spans.extend(taken(
                (13, 10),
                5,
                (112 * US, 130 * US),
                "Jobs.handle_call/3",
            ));
        }
        if answered_before {
            let mut earlier = span(6, Some(2), "Jobs.next/0", 10 * US, 50 * US);
            earlier.attributes.push(KeyValue::new(PEER, "Jobs"));
            spans.push(earlier);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn workers_left_waiting_for_work_when_the_recording_ended_are_no_hang() {
        assert_eq!(
            detect(&[workers_waiting_for_work(false, false)]).len(),
            1,
            "a lone call never answered is one"
        );
        assert!(
            detect(&[workers_waiting_for_work(true, false)]).is_empty(),
            "two processes asking the same server the same way: a pool's idle workers"
        );
        assert!(
            detect(&[workers_waiting_for_work(false, true)]).is_empty(),
            "asked before and answered: a loop asking for its next job"
        );
    }
}
