//! Processes that talk by messages (the BEAM's, as devtrace's BEAM recorder records them,
//! docs/beam.md): each process is a thread of the trace with a `process NAME` span for its life,
//! its own work the spans under that life, and a wait in `receive` linked (kind `message`) to
//! the span that sent the message ending it. This module reads those facts back for the BEAM
//! detectors: the waits one process's messages ended, the work a process did at top level
//! (its callbacks), and each life with its exit.

use crate::AnalyzedTrace;
use crate::causality::{self, CausalWait};
use devtrace_model::AnyValue;
use devtrace_model::recorded::{name as q, quote_short};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The link kind of a message that ended a wait in `receive`.
pub const MESSAGE: &str = "message";
/// The link kind of a process's start, from the span that spawned it.
pub const THREAD_START: &str = "thread.start";
/// A process's exit reason, on its life span.
pub const EXIT_REASON: &str = "devtrace.beam.exit_reason";
/// A GenServer's state when a callback began.
pub const STATE_BEFORE: &str = "devtrace.beam.state.before";
/// A GenServer's state when a callback returned.
pub const STATE_AFTER: &str = "devtrace.beam.state.after";
/// A supervisor's child started again in answer to a crash: its restart count.
pub const RESTART: &str = "devtrace.beam.restart";
/// The function a process was started to run (`Ledger.init/1` for a GenServer).
pub const INITIAL_CALL: &str = "devtrace.beam.initial_call";
/// The supervisor that started a process, when the recorder names it.
pub const SUPERVISOR: &str = "devtrace.beam.supervisor";
/// The process a call to another process called (its registered name or pid), where its
/// `rpc.service` is the service that process is (an unregistered GenServer's module).
pub const PEER: &str = "devtrace.beam.peer";
/// A summarised exception a call ended with.
pub const CALL_EXCEPTION: &str = "devtrace.call.exception";
/// A recorded call's arguments and return value, as summaries.
pub const CALL_ARGUMENTS: &str = "devtrace.call.arguments";
pub const CALL_RETURN: &str = "devtrace.call.return";
/// On a call to another process whose wait for the reply timed out: how long it waited (ms),
/// whether the caller caught the exit or not.
pub const CALL_TIMED_OUT_MS: &str = "devtrace.beam.call.timed_out_ms";
/// A function that ended in a tail call: the next span of its process under the same parent is
/// the call it made, the rest of its work (`handle_cast(M, S) -> work(M, S).`).
pub const TAIL_CALL: &str = "devtrace.beam.tail_call";
/// On a span still running when the recording ended (the program stopped, killed, or its
/// recorder's window closed): the span's end is the recording's, not its own.
pub const OPEN: &str = "devtrace.recorder.open";
/// On a `receive`: another process's call request ended it, so it answered no call of the
/// process's own (the recorder's `devtrace.beam.request`: docs/beam.md).
pub const REQUEST: &str = "devtrace.beam.request";
/// The event on the innermost span open when a process sent its last call request, with the
/// process it went to ([`ASKED`]; docs/beam.md).
pub const CALL_REQUEST_EVENT: &str = "call request";
pub const ASKED: &str = "devtrace.beam.asked";
/// How long a call must have waited for an answer, when the recording ended, to be one the
/// program was stuck in ([`left_unanswered`]): far past what a server takes to answer, short
/// of what someone waits before stopping a program that hangs.
pub const STUCK_NANOS: u64 = 1_000_000_000;

/// A wait in `receive` that a message from another process ended.
#[derive(Clone, Debug)]
pub struct MessageWait {
    pub wait: CausalWait,
    /// The waiting process (its thread name).
    pub waiter: String,
    /// The process whose message ended the wait.
    pub sender: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
}

impl MessageWait {
    pub fn nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

/// Every wait of `trace` a message from another process ended.
pub fn message_waits(trace: &AnalyzedTrace) -> Vec<MessageWait> {
    causality::causal_waits(trace)
        .into_iter()
        .filter(|w| w.kind == MESSAGE)
        .filter_map(|wait| {
            let waiter = causality::thread_of(trace, wait.waiter)?;
            let sender = wait.cause_thread.clone()?;
            (waiter != sender).then(|| MessageWait {
                start_unix_nano: wait.wait_start(trace),
                end_unix_nano: wait.wait_end(trace),
                waiter,
                sender,
                wait,
            })
        })
        .collect()
}

/// A process's life span: the span carrying its exit reason (or, still running, the outermost
/// span of its thread named `process …`).
pub fn is_life(trace: &AnalyzedTrace, index: usize) -> bool {
    let span = trace.span(index);
    span.attr(EXIT_REASON).is_some()
        || (span.name.starts_with("process ") && span.attr("devtrace.beam.process").is_some())
}

/// Whether `life` ended killed: its exit reason (traced), or the `exit:killed` exception its
/// span carries (probes, which see no exit reason).
pub fn was_killed(trace: &AnalyzedTrace, life: usize) -> bool {
    let exit_killed = trace.span(life).events.iter().any(|e| {
        devtrace_model::find_attr(&e.attributes, devtrace_model::semconv::EXCEPTION_TYPE)
            .is_some_and(|t| t.to_display_string() == "exit:killed")
    });
    exit_killed
        || matches!(
            text(trace, life, EXIT_REASON).as_deref(),
            Some(":killed" | "killed")
        )
}

/// Every process life of `trace`, by span index.
pub fn lives(trace: &AnalyzedTrace) -> impl Iterator<Item = usize> + '_ {
    (0..trace.spans.spans.len()).filter(|&i| is_life(trace, i))
}

/// Every process life of `trace` by its process's name (a restarted process has several).
pub fn lives_by_name(trace: &AnalyzedTrace) -> HashMap<String, Vec<usize>> {
    let mut out: HashMap<String, Vec<usize>> = HashMap::new();
    for life in lives(trace) {
        if let Some(name) = thread_name(trace, life) {
            out.entry(name).or_default().push(life);
        }
    }
    out
}

/// Of `lives` (one process's), the one alive at `at`.
pub fn life_among(trace: &AnalyzedTrace, lives: &[usize], at: u64) -> Option<usize> {
    lives.iter().copied().find(|&i| {
        let span = trace.span(i);
        span.start_unix_nano <= at && at <= span.end_unix_nano
    })
}

/// The span of the function a call to another process was made in: the call itself when it is
/// a function (a client wrapper: `Stock.reserve/1`), the function around it when it is the
/// wait for the answer (a call written inline, `gen_server:call/3` in `main/0`: docs/beam.md).
pub fn calling_function(trace: &AnalyzedTrace, call: usize) -> usize {
    match trace.tree.parent[call] {
        Some(parent) if trace.span(call).name == "receive" => parent,
        _ => call,
    }
}

/// Whether span `index` is a call to the process `process` (a request it waits to be answered:
/// the recorder's `devtrace.beam.peer`, the called process, or, without it, its `rpc.service`;
/// docs/beam.md).
pub fn is_call_to(trace: &AnalyzedTrace, index: usize, process: &str) -> bool {
    text(trace, index, PEER)
        .or_else(|| text(trace, index, "rpc.service"))
        .as_deref()
        == Some(process)
}

/// The call `wait` waited in for the answer of the process whose message ended it: the wait
/// itself when it is the call (one written inline, whose `receive` is the call: docs/beam.md),
/// else the call right around it (a client function); none when it answered no call.
pub fn answered_call(trace: &AnalyzedTrace, wait: &MessageWait) -> Option<usize> {
    let waiter = wait.wait.waiter;
    [Some(waiter), trace.tree.parent[waiter]]
        .into_iter()
        .flatten()
        .find(|&call| is_call_to(trace, call, &wait.sender))
}

/// Whether `wait` waited for the answer of a call to the process that ended it
/// ([`answered_call`]).
pub fn is_answer(trace: &AnalyzedTrace, wait: &MessageWait) -> bool {
    answered_call(trace, wait).is_some()
}

/// Whether the message that ended `wait` (a wait of `process`'s) was the request of a call to
/// `process`: marked so by the recorder ([`REQUEST`]), sent by a call to it (a client
/// function), or by a function whose next wait after the send is one (a call written inline:
/// the function sends, then waits for the answer in its own `receive`).
pub fn is_call_request(trace: &AnalyzedTrace, wait: &CausalWait, process: &str) -> bool {
    if matches!(
        trace.span(wait.waiter).attr(REQUEST),
        Some(AnyValue::Bool(true))
    ) {
        return true;
    }
    let Some(cause) = wait.cause else {
        return false;
    };
    if is_call_to(trace, cause, process) {
        return true;
    }
    let Some(sent) = wait.cause_time_unix_nano else {
        return false;
    };
    trace.tree.children[cause]
        .iter()
        .copied()
        .filter(|&c| trace.span(c).name == "receive")
        .find(|&c| trace.span(c).start_unix_nano >= sent)
        .is_some_and(|c| is_call_to(trace, c, process))
}

/// The process a call was still waiting on when the recording ended, stuck there for at least
/// [`STUCK_NANOS`]: span `call` ([`calling_function`] of it: a `receive` open under a call
/// written inline) was open at the end with nothing open under it, its last message went to
/// another process that took it (a wait of that process's is linked to it: the request) — or
/// its last call request went to a process of the program that never took it (the recorder's
/// [`CALL_REQUEST_EVENT`]) — and nothing came back to the caller after it but other
/// processes' call requests. A `GenServer.call(server, request, :infinity)` whose answer
/// never comes hangs until someone stops the program: this says what it hung on.
/// A process's life is no call (its own code is not recorded).
pub fn left_unanswered(trace: &AnalyzedTrace, call: usize) -> Option<String> {
    let open = |i: usize| trace.span(i).attr(OPEN).is_some();
    let sender = calling_function(trace, call);
    if !open(call) || is_life(trace, sender) || trace.tree.children[call].iter().any(|&c| open(c)) {
        return None;
    }
    let caller = causality::thread_of(trace, sender)?;
    let waits = message_waits(trace);
    let taken = waits
        .iter()
        .filter(|w| w.wait.cause == Some(sender) && w.waiter != caller)
        .map(|w| {
            (
                w.wait.cause_time_unix_nano.unwrap_or(w.end_unix_nano),
                w.waiter.clone(),
            )
        })
        .max();
    // The request itself, when the recorder saw where it went: a server stuck in a call of
    // its own never takes it. Only to a process of the program: the VM's own processes are
    // not recorded, so their answers are not either.
    let recorded =
        |name: &str| lives(trace).any(|i| thread_name(trace, i).as_deref() == Some(name));
    let asked = last_request(trace, sender).filter(|(_, to)| *to != caller && recorded(to));
    let (sent_at, server) = match (taken, asked) {
        (Some(taken), Some(asked)) => taken.max(asked),
        (taken, asked) => taken.or(asked)?,
    };
    let end = trace.span(call).end_unix_nano;
    // Another process's call request to the caller is no answer: two servers calling each
    // other each receive the other's request while they wait (a deadlock).
    let answered = waits.iter().any(|w| {
        w.waiter == caller
            && w.end_unix_nano >= sent_at
            && !is_call_request(trace, &w.wait, &caller)
    });
    (!answered && end.saturating_sub(sent_at) >= STUCK_NANOS).then_some(server)
}

/// The last call request sent in span `index` ([`CALL_REQUEST_EVENT`]): when, and to whom.
fn last_request(trace: &AnalyzedTrace, index: usize) -> Option<(u64, String)> {
    let requests = trace.span(index).events.iter().rev();
    requests
        .filter(|e| e.name == CALL_REQUEST_EVENT)
        .find_map(|e| {
            let to = e.attributes.iter().find(|kv| kv.key == ASKED)?;
            Some((e.time_unix_nano, to.value.as_str()?.to_owned()))
        })
}

/// The life span of the process named `name` (its thread) that was alive at `at`.
pub fn life_at(trace: &AnalyzedTrace, name: &str, at: u64) -> Option<usize> {
    lives(trace).find(|&i| {
        let span = trace.span(i);
        thread_name(trace, i).as_deref() == Some(name)
            && span.start_unix_nano <= at
            && at <= span.end_unix_nano
    })
}

/// The work a process did at top level: the spans right under its life that are not waits
/// (its callbacks, for a GenServer).
pub fn top_level_work(trace: &AnalyzedTrace, life: usize) -> Vec<usize> {
    trace.tree.children[life]
        .iter()
        .copied()
        .filter(|&c| trace.span(c).name != "receive")
        .collect()
}

/// What a process does a message at a time, in start order, and whether it is a loop's turns:
/// its callbacks (a GenServer's), or, for a hand-written receive loop (`spawn(fn -> loop(s)
/// end)`), the spans of the function repeated most (at least twice) under the one function it
/// runs. A callback that ended in a tail call (`handle_cast(M, S) -> work(M, S).`) goes on in
/// the calls after it: one unit of work, the callback's span standing for it ([`unit_end`]).
pub fn units_of_work(trace: &AnalyzedTrace, life: usize) -> (Vec<usize>, bool) {
    let top = top_level_work(trace, life);
    let [only] = top[..] else {
        return (callbacks(trace, life, top), false);
    };
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &c in &trace.tree.children[only] {
        let name = trace.span(c).name.as_str();
        if name != "receive" {
            by_name.entry(name).or_default().push(c);
        }
    }
    match by_name.into_values().max_by_key(Vec::len) {
        Some(turns) if turns.len() >= 2 => (turns, true),
        _ => (top, false),
    }
}

/// A server's top-level work less the calls its callbacks' tail calls made (and, in an event
/// manager, less the handlers' callbacks after the first for one message); another process's
/// as it is (a loop's turns at top level are tail calls, each its own unit).
fn callbacks(trace: &AnalyzedTrace, life: usize, top: Vec<usize>) -> Vec<usize> {
    if server_module(trace, life).is_none() {
        return top;
    }
    let manager = is_event_manager(trace, life);
    let mut units = Vec::with_capacity(top.len());
    let mut unit: Vec<usize> = Vec::new();
    for span in top {
        if unit.is_empty() || !goes_on(trace, manager, &unit, span) {
            units.push(span);
            unit.clear();
        }
        unit.push(span);
    }
    units
}

/// OTP's `gen_event` starts a manager with no callback module of its own: its
/// `'$initial_call'` is `'no callback module':init/1`.
const EVENT_MANAGER_INITIAL_CALL: &str = "no callback module:init/1";

/// Whether `life` is an event manager's (`:gen_event`): each message it takes runs a callback
/// of each of its handlers in turn (`handle_event/2` for a notification).
pub fn is_event_manager(trace: &AnalyzedTrace, life: usize) -> bool {
    text(trace, life, INITIAL_CALL)
        .is_some_and(|call| call.replace('\'', "") == EVENT_MANAGER_INITIAL_CALL)
}

/// Whether the top-level span `next` of a server's life goes on the unit of work whose spans
/// so far are `unit`: after a callback that ended in a tail call (the calls it made), or, in
/// an event manager (`manager`), another handler's run of the callback that began the unit.
fn goes_on(trace: &AnalyzedTrace, manager: bool, unit: &[usize], next: usize) -> bool {
    let Some(&last) = unit.last() else {
        return false;
    };
    ended_in_tail_call(trace, last) || (manager && next_handler(trace, unit, next))
}

/// In an event manager: whether `next` is the same callback as `unit`'s first (one message's,
/// `handle_event/2` of each handler for a notification) of a handler not in the unit yet.
/// Handlers run in a fixed order, so a handler met again — the first one, for the next
/// notification — begins the next unit. A `handle_call/2` goes to one handler: a unit alone.
fn next_handler(trace: &AnalyzedTrace, unit: &[usize], next: usize) -> bool {
    let handler = |span: usize| module_and_callback(&trace.span(span).name);
    let (Some((module, callback)), Some((_, first_callback))) = (handler(next), handler(unit[0]))
    else {
        return false;
    };
    callback == first_callback
        && !callback.starts_with("handle_call/")
        && unit
            .iter()
            .all(|&u| handler(u).is_none_or(|(m, _)| m != module))
}

/// `Audit.Sink.handle_event/2` → (`Audit.Sink`, `handle_event/2`); `sink:handle_event/2` →
/// (`sink`, `handle_event/2`).
fn module_and_callback(function: &str) -> Option<(&str, &str)> {
    function
        .split_once(':')
        .or_else(|| function.rsplit_once('.'))
}

/// When a unit of work of [`units_of_work`] ended: its span's end, or, for a server's
/// callback that ended in a tail call, the end of the last call its tail calls made.
pub fn unit_end(trace: &AnalyzedTrace, unit: usize) -> u64 {
    unit_spans(trace, unit)
        .iter()
        .map(|&s| trace.span(s).end_unix_nano)
        .max()
        .unwrap_or(trace.span(unit).end_unix_nano)
}

/// The top-level spans a unit of work of [`units_of_work`] is made of: its span, and, for a
/// server's callback that ended in a tail call, the calls its tail calls made.
pub fn unit_spans(trace: &AnalyzedTrace, unit: usize) -> Vec<usize> {
    let Some(parent) = trace.tree.parent[unit]
        .filter(|&life| is_life(trace, life) && server_module(trace, life).is_some())
    else {
        return vec![unit];
    };
    let siblings = &trace.tree.children[parent];
    let at = child_position(trace, siblings, unit).map_or(siblings.len(), |at| at + 1);
    let after = siblings[at..]
        .iter()
        .copied()
        .filter(|&c| trace.span(c).name != "receive");
    let manager = is_event_manager(trace, parent);
    let mut spans = vec![unit];
    for next in after {
        if !goes_on(trace, manager, &spans, next) {
            break;
        }
        spans.push(next);
    }
    spans
}

/// What a unit of work of [`units_of_work`] waited for other processes: its calls to them
/// (the outermost: a call's own wait is not another) and its waits in `receive` that their
/// messages ended (a call written inline), as (the other process, nanoseconds). `waits` are
/// the trace's [`message_waits`] by their `receive` span.
pub fn waits_out(
    trace: &AnalyzedTrace,
    unit: usize,
    waits: &HashMap<usize, &MessageWait>,
) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for top in unit_spans(trace, unit) {
        let mut inside: Option<usize> = None;
        for &d in trace.tree.descendants(top) {
            if inside.is_some_and(|call| trace.tree.is_within(d, call)) {
                continue;
            }
            let peer = text(trace, d, PEER).or_else(|| text(trace, d, "rpc.service"));
            let waited = match (peer, waits.get(&d)) {
                (Some(peer), _) => (peer, trace.span(d).duration_nanos()),
                (None, Some(wait)) => (wait.sender.clone(), wait.nanos()),
                (None, None) => continue,
            };
            out.push(waited);
            inside = Some(d);
        }
    }
    out
}

/// The callback a top-level span of a server's life is part of: the span itself, or, for a
/// call a callback's tail call made (`handle_info(tick, S) -> poll(S).`), that callback —
/// whose state before is the one the call ran in. Another process's top-level span is a unit
/// of its own, as in [`units_of_work`] (a hand-written loop's turns are tail calls, one a turn).
pub fn unit_of(trace: &AnalyzedTrace, span: usize) -> usize {
    let Some(life) = trace.tree.parent[span] else {
        return span;
    };
    if server_module(trace, life).is_none() {
        return span;
    }
    let children = &trace.tree.children[life];
    let at = child_position(trace, children, span).unwrap_or(0);
    if is_event_manager(trace, life) {
        return manager_unit_of(trace, &children[..=at]);
    }
    let before = &children[..at];
    let mut unit = span;
    for &earlier in before.iter().rev() {
        if trace.span(earlier).name == "receive" {
            continue;
        }
        if !ended_in_tail_call(trace, earlier) {
            break;
        }
        unit = earlier;
    }
    unit
}

/// The unit of work of an event manager that the last of `children` (its life's, up to that
/// span) is part of: its units made as [`units_of_work`] makes them, from where the run of
/// that span's callback began (a handler's `handle_event/2` runs follow the last call or
/// init), so a span is not walked back over every notification before it.
fn manager_unit_of(trace: &AnalyzedTrace, children: &[usize]) -> usize {
    let work = |c: &&usize| trace.span(**c).name != "receive";
    let Some(&span) = children.iter().rev().find(work) else {
        return children[children.len() - 1];
    };
    let callback = |c: usize| module_and_callback(&trace.span(c).name).map(|(_, cb)| cb);
    let run: Vec<usize> = children
        .iter()
        .rev()
        .filter(work)
        .copied()
        .take_while(|&c| callback(c) == callback(span))
        .collect();
    let mut unit: Vec<usize> = Vec::new();
    for &c in run.iter().rev() {
        if unit.is_empty() || !goes_on(trace, true, &unit, c) {
            unit.clear();
        }
        unit.push(c);
    }
    unit.first().copied().unwrap_or(span)
}

/// Where `child` is among `children` (a span's, in (start, index) order: [`crate::tree`]), found
/// by bisection: a server's every callback is not walked for each of its messages.
pub fn child_position(trace: &AnalyzedTrace, children: &[usize], child: usize) -> Option<usize> {
    let key = |c: usize| (trace.span(c).start_unix_nano, c);
    children.binary_search_by(|&c| key(c).cmp(&key(child))).ok()
}

/// The unit of work of the process whose message ended `wait` that sent that message (a reply
/// sent with `GenServer.reply/2` is sent from inside a callback, which goes on after it: not
/// the unit that ended last).
pub fn sending_unit(trace: &AnalyzedTrace, wait: &MessageWait) -> Option<usize> {
    let mut top = wait.wait.cause?;
    while let Some(parent) = trace.tree.parent[top] {
        if is_life(trace, parent) {
            return Some(unit_of(trace, top));
        }
        top = parent;
    }
    None
}

/// The `receive`s a message some recorded process sent ended — another's, or the process's
/// own (`send(self(), …)`): those a causal message link points from.
pub fn recorded_receives(trace: &AnalyzedTrace) -> HashSet<usize> {
    causality::causal_waits(trace)
        .into_iter()
        .filter(|w| w.kind == MESSAGE)
        .map(|w| w.waiter)
        .collect()
}

/// Whether the message that began a process's unit of work `unit` came from outside the
/// recording — a timer's, a port's (a socket, a file, an OS process): from no recorded
/// process. The `receive` just before it in its life is none of `sent` ([`recorded_receives`]).
pub fn begun_from_outside(trace: &AnalyzedTrace, unit: usize, sent: &HashSet<usize>) -> bool {
    let Some(life) = trace.tree.parent[unit] else {
        return false;
    };
    let siblings = &trace.tree.children[life];
    let Some(at) = child_position(trace, siblings, unit) else {
        return false;
    };
    at.checked_sub(1)
        .map(|before| siblings[before])
        .is_some_and(|before| trace.span(before).name == "receive" && !sent.contains(&before))
}

fn ended_in_tail_call(trace: &AnalyzedTrace, span: usize) -> bool {
    trace.span(span).attr(TAIL_CALL) == Some(&AnyValue::Bool(true))
}

/// The thread (process) name on span `index` itself.
pub fn thread_name(trace: &AnalyzedTrace, index: usize) -> Option<String> {
    trace
        .span(index)
        .attr("thread.name")
        .map(AnyValue::to_display_string)
}

/// A process as findings name it, quoted: its registered name; for an unregistered one (a
/// pid, different in every run, saying little) the module it runs beside it when its life
/// says (`"Ledger" process "<0.111.0>"`: `devtrace.beam.initial_call` `Ledger.init/1`) or, for
/// a hand-written receive loop, the function its turns run (`"Kv.loop/1" process "<0.85.0>"`),
/// when other processes ran the same module beside it (one per key, reached through a
/// `Registry`), what it was started with (`"Item" process "<0.118.0>" started with "\"sku-1\""`).
pub fn shown_process(trace: &AnalyzedTrace, name: &str) -> String {
    let module_of = |life| match is_agent(trace, life) {
        true => agent_owner(trace, life).or_else(|| server_module(trace, life)),
        false => server_module(trace, life).or_else(|| loop_function(trace, life)),
    };
    let shown = is_pid_text(name)
        .then(|| lives_by_name(trace).remove(name))
        .flatten()
        .and_then(|lives| {
            lives
                .into_iter()
                .find_map(|life| Some((life, module_of(life)?)))
        });
    let Some((life, module)) = shown else {
        return shown_supervisor(trace, name).unwrap_or_else(|| q(name));
    };
    let started = telling_start(trace, life);
    match started {
        Some(arguments) => format!(
            "{} process {} started with {}",
            q(&module),
            q(name),
            quote_short(&arguments, STARTED_WITH_CHARS)
        ),
        None => format!("{} process {}", q(&module), q(name)),
    }
}

/// An unregistered supervisor as findings name it: by its callback module, the module of the
/// `init/1` it ran first (`supervisor:start_link(?MODULE, sup)`: `"feed_sup" supervisor
/// "<0.85.0>"`), when that was recorded.
fn shown_supervisor(trace: &AnalyzedTrace, name: &str) -> Option<String> {
    let lives = is_pid_text(name).then(|| lives_by_name(trace).remove(name))??;
    let module = lives.into_iter().find_map(|life| {
        if !is_supervisor(trace, life) {
            return None;
        }
        trace.tree.children[life].iter().find_map(|&c| {
            let span = trace.span(c).name.as_str();
            let module = span
                .strip_suffix(":init/1")
                .or_else(|| span.strip_suffix(".init/1"));
            module.map(str::to_owned)
        })
    })?;
    Some(format!("{} supervisor {}", q(&module), q(name)))
}

/// Whether `life` is a supervisor's (its initial call OTP's `supervisor:init/1`).
pub fn is_supervisor(trace: &AnalyzedTrace, life: usize) -> bool {
    text(trace, life, INITIAL_CALL)
        .is_some_and(|call| matches!(call.as_str(), "supervisor:init/1" | "Supervisor.init/1"))
}

/// The function a hand-written receive loop's turns run (`spawn(fn -> loop(s) end)`): the
/// one repeated most, at least twice, among the process's [`units_of_work`]. What its code
/// calls it, where its pid says nothing.
fn loop_function(trace: &AnalyzedTrace, life: usize) -> Option<String> {
    // A supervisor's repeated work is its children's starts, not a loop of its own.
    let supervises = thread_name(trace, life).is_some_and(|n| supervisors(trace).contains(&n));
    if supervises || is_supervisor(trace, life) {
        return None;
    }
    let mut turns: BTreeMap<&str, usize> = BTreeMap::new();
    for unit in units_of_work(trace, life).0 {
        *turns.entry(trace.span(unit).name.as_str()).or_default() += 1;
    }
    let (function, count) = turns.into_iter().max_by_key(|&(_, count)| count)?;
    (count >= 2).then(|| function.to_owned())
}

/// What `life`'s server was started with, when that tells it from the other processes that
/// ran its module beside it ([`siblings`]): none without them, for an Agent (started with a
/// function), or when a sibling was started with the same (a pool's workers).
fn telling_start(trace: &AnalyzedTrace, life: usize) -> Option<String> {
    let others = siblings(trace, life);
    if others.is_empty() || is_agent(trace, life) {
        return None;
    }
    let started = started_with(trace, life)?;
    let shared = others
        .iter()
        .any(|&other| started_with(trace, other).as_deref() == Some(started.as_str()));
    (!shared).then_some(started)
}

/// How many characters of a process's start arguments a title quotes.
const STARTED_WITH_CHARS: usize = 60;

/// Other processes that ran `life`'s server module while it ran (one per key, a pool's
/// workers); not a restarted process's other lives, which never ran beside it.
pub fn siblings(trace: &AnalyzedTrace, life: usize) -> Vec<usize> {
    let Some(module) = server_module(trace, life) else {
        return Vec::new();
    };
    let (span, name) = (trace.span(life), thread_name(trace, life));
    lives(trace)
        .filter(|&other| thread_name(trace, other) != name)
        .filter(|&other| {
            let o = trace.span(other);
            o.start_unix_nano < span.end_unix_nano && span.start_unix_nano < o.end_unix_nano
        })
        .filter(|&other| server_module(trace, other).as_deref() == Some(module.as_str()))
        .collect()
}

/// The arguments `life`'s server was started with, as recorded: those of its `init/1`.
pub fn started_with(trace: &AnalyzedTrace, life: usize) -> Option<String> {
    let init = text(trace, life, INITIAL_CALL)?;
    trace.tree.children[life]
        .iter()
        .find(|&&c| trace.span(c).name == init)
        .and_then(|&c| text(trace, c, CALL_ARGUMENTS))
}

/// The callback module of a GenServer's (or `gen_statem`'s) `life`, from its initial call
/// (`Ledger.init/1` → `Ledger`); none for a supervisor or another process.
pub fn server_module(trace: &AnalyzedTrace, life: usize) -> Option<String> {
    if is_supervisor(trace, life) {
        return None;
    }
    let call = text(trace, life, INITIAL_CALL)?;
    let module = call
        .strip_suffix(".init/1")
        .or_else(|| call.strip_suffix(":init/1"))?;
    Some(module.to_owned())
}

/// The module an Elixir `Agent`'s `life` belongs to: that of the recorded function that started
/// it (`Pricing.Settings.start_link/1` → `Pricing.Settings`), where the Agent's own module,
/// `Agent.Server`, is every Agent's.
fn agent_owner(trace: &AnalyzedTrace, life: usize) -> Option<String> {
    let index = causality::span_index(trace);
    let start = causality::waits_of(trace, &index, life)
        .into_iter()
        .find(|w| w.kind == THREAD_START)?;
    let started_by = match start.cause {
        Some(span) => trace.span(span).name.clone(),
        None => start.cause_function?,
    };
    module_of_function(&started_by)
}

/// `Mod.Sub.fun/1` → `Mod.Sub`, `mod:fun/1` → `mod`, `anonymous fn#0 in Mod.fun/0` → `Mod`.
fn module_of_function(function: &str) -> Option<String> {
    let function = function.rsplit(" in ").next()?;
    if let Some((module, _)) = function.split_once(':') {
        return Some(module.to_owned());
    }
    let (path, _arity) = function.rsplit_once('/')?;
    Some(path.rsplit_once('.')?.0.to_owned())
}

/// Whether `life` is an Elixir task's (its initial call `Task.Supervised.…`: `Task.async`,
/// `Task.async_stream`, a `Task.Supervisor`'s).
pub fn is_task(trace: &AnalyzedTrace, life: usize) -> bool {
    text(trace, life, INITIAL_CALL).is_some_and(|call| call.starts_with("Task.Supervised."))
}

/// Whether `life` is an Elixir `Agent` (its initial call `Agent.Server.init/1`): the functions
/// its callers give it run in its process.
pub fn is_agent(trace: &AnalyzedTrace, life: usize) -> bool {
    text(trace, life, INITIAL_CALL).as_deref() == Some("Agent.Server.init/1")
}

/// The processes that supervise others in `trace` (the `devtrace.beam.supervisor` of a life).
pub fn supervisors(trace: &AnalyzedTrace) -> std::collections::HashSet<String> {
    lives(trace)
        .filter_map(|life| text(trace, life, SUPERVISOR))
        .collect()
}

/// Whether a process's name is its pid (`<0.115.0>`): unregistered, and different in every
/// run, so no name to match findings across runs by.
pub fn is_pid_text(name: &str) -> bool {
    name.starts_with('<') && name.ends_with('>')
}

/// How many of the intervals `(start, end)` were in progress at once, at most (back to back is
/// not at once).
pub fn most_at_once(intervals: impl Iterator<Item = (u64, u64)>) -> usize {
    let mut edges: Vec<(u64, i32)> = intervals
        .flat_map(|(start, end)| [(start, 1), (end, -1)])
        .collect();
    // Ends before starts at the same instant.
    edges.sort_by_key(|&(at, delta)| (at, delta));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, delta) in edges {
        now += delta;
        most = most.max(now);
    }
    most.max(0) as usize
}

/// Nanoseconds as milliseconds to two decimals, for a finding's `numbers`.
pub fn millis(nanos: u64) -> f64 {
    (nanos as f64 / 1e4).round() / 100.0
}

/// A string attribute of span `index`.
pub fn text(trace: &AnalyzedTrace, index: usize, key: &str) -> Option<String> {
    trace.span(index).attr(key).map(AnyValue::to_display_string)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::causality::tests::{linked, on_thread};
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, TraceId};

    /// A process's life span, as the BEAM recorder writes it.
    pub fn life(id: u8, name: &str, start: u64, end: u64) -> Span {
        let mut s = on_thread(
            span(id, Some(1), &format!("process {name}"), start, end),
            name,
        );
        s.attributes.push(KeyValue::new(EXIT_REASON, ":normal"));
        s
    }

    #[test]
    fn an_unregistered_process_is_shown_with_the_module_it_runs() {
        let started = |id, name: &str, call: &str| {
            let mut s = life(id, name, 0, 10);
            s.attributes.push(KeyValue::new(INITIAL_CALL, call));
            s
        };
        let spans = vec![
            span(1, None, "elixir ledger.exs", 0, 10),
            started(2, "<0.111.0>", "Ledger.init/1"),
            started(3, "Cart", "Cart.init/1"),
            started(4, "<0.90.0>", "supervisor:init/1"),
            started(5, "<0.95.0>", "erlang:apply/2"),
            span(6, Some(3), "Pricing.Settings.start_link/1", 1, 2),
            crate::causality::tests::linked(
                started(7, "<0.96.0>", "Agent.Server.init/1"),
                6,
                THREAD_START,
                1,
                0,
            ),
            started(12, "<0.98.0>", "supervisor:init/1"),
            on_thread(span(13, Some(12), "feed_sup:init/1", 1, 2), "<0.98.0>"),
            started(14, "<0.99.0>", "supervisor:init/1"),
            started(8, "<0.97.0>", "erlang:apply/2"),
            on_thread(span(9, Some(8), "Kv.start/0-fun-0-", 1, 2), "<0.97.0>"),
            on_thread(span(10, Some(8), "Kv.loop/1", 2, 5), "<0.97.0>"),
            on_thread(span(11, Some(8), "Kv.loop/1", 5, 9), "<0.97.0>"),
        ];
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let shown = |name| shown_process(&trace, name);
        assert_eq!(shown("<0.111.0>"), "\"Ledger\" process \"<0.111.0>\"");
        assert_eq!(shown("Cart"), "\"Cart\"", "a registered name says enough");
        assert_eq!(
            shown("<0.90.0>"),
            "\"<0.90.0>\"",
            "every supervisor runs supervisor"
        );
        assert_eq!(
            shown("<0.98.0>"),
            "\"feed_sup\" supervisor \"<0.98.0>\"",
            "a supervisor by the callback module whose init/1 it ran"
        );
        assert_eq!(shown("<0.99.0>"), "\"<0.99.0>\"", "its init/1 not recorded");
        assert_eq!(shown("<0.95.0>"), "\"<0.95.0>\"", "no GenServer's module");
        assert_eq!(
            shown("<0.97.0>"),
            "\"Kv.loop/1\" process \"<0.97.0>\"",
            "a receive loop by the function its turns run"
        );
        assert_eq!(
            shown("<0.96.0>"),
            "\"Pricing.Settings\" process \"<0.96.0>\"",
            "an Agent by the module that started it"
        );
        assert_eq!(shown("<0.7.0>"), "\"<0.7.0>\"", "no life recorded");
    }

    /// A GenServer's life `name` started by `Item.init/1` with `key` (its init's arguments).
    pub fn item(id: u8, name: &str, key: &str, (start, end): (u64, u64)) -> [Span; 2] {
        let mut s = life(id, name, start, end);
        s.attributes
            .push(KeyValue::new(INITIAL_CALL, "Item.init/1"));
        let mut init = span(id + 100, Some(id), "Item.init/1", start, start + 1);
        init.attributes.push(KeyValue::new(CALL_ARGUMENTS, key));
        [s, init]
    }

    #[test]
    fn a_process_beside_others_of_its_module_is_shown_with_what_it_was_started_with() {
        let mut spans = vec![span(1, None, "elixir shop.exs", 0, 100)];
        spans.extend(item(2, "<0.2.0>", "\"sku-1\"", (0, 50)));
        spans.extend(item(3, "<0.3.0>", "\"sku-2\" \u{1b}[2J", (10, 100)));
        // Started again after the first ended: never beside it.
        spans.extend(item(4, "<0.4.0>", "\"sku-3\"", (60, 100)));
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let shown = |name| shown_process(&trace, name);
        assert_eq!(
            shown("<0.2.0>"),
            r#""Item" process "<0.2.0>" started with "\"sku-1\"""#
        );
        assert_eq!(
            shown("<0.3.0>"),
            r#""Item" process "<0.3.0>" started with "\"sku-2\" \u001b[2J""#,
            "recorded text stays quoted"
        );
        assert_eq!(
            siblings(&trace, 5).len(),
            1,
            "<0.4.0> ran beside <0.3.0> only"
        );
        // A pool's workers, each started with the same: that tells none of them apart.
        let mut pool = vec![span(1, None, "elixir pool.exs", 0, 100)];
        pool.extend(item(2, "<0.2.0>", "[]", (0, 100)));
        pool.extend(item(3, "<0.3.0>", "[]", (0, 100)));
        let pool = AnalyzedTrace::new(TraceId([1; 16]), batch(pool));
        assert_eq!(
            shown_process(&pool, "<0.2.0>"),
            r#""Item" process "<0.2.0>""#
        );
        let alone = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(item(2, "<0.2.0>", "\"sku-1\"", (0, 50)).into()),
        );
        assert_eq!(
            shown_process(&alone, "<0.2.0>"),
            r#""Item" process "<0.2.0>""#,
            "alone, its module says which it is"
        );
    }

    /// `spans`' server life (index 1) made a GenServer's (its `init`), whose callbacks named
    /// `callback` end `after` nanoseconds in, in a tail call of `helper`, which does the rest
    /// of their work (`handle_call(R, _, S) -> do_reserve(R, S).`); the helpers' span ids
    /// from 60.
    pub fn handing_on_in_tail_calls(
        spans: &mut Vec<Span>,
        (init, callback, helper): (&str, &str, &str),
        after: u64,
    ) {
        spans[1].attributes.push(KeyValue::new(INITIAL_CALL, init));
        let callbacks: Vec<Span> = spans
            .iter()
            .filter(|s| s.name == callback)
            .cloned()
            .collect();
        for (i, mut rest) in callbacks.into_iter().enumerate() {
            let first = spans.iter_mut().find(|s| s.span_id == rest.span_id);
            let first = first.expect("a callback");
            first.end_unix_nano = first.start_unix_nano + after;
            first.attributes.push(KeyValue::new(TAIL_CALL, true));
            rest.name = helper.into();
            rest.span_id = devtrace_model::SpanId([60 + i as u8; 8]);
            rest.start_unix_nano += after;
            spans.push(rest);
        }
    }

    /// A server (span 2, "Stock") whose callback takes 10 ms, and three callers (lives 10, 20,
    /// 30) calling it (`rpc.service`) at 0 ms: the server serves them one after another,
    /// replying at 10, 20, 30 ms.
    pub fn three_callers_in_line() -> AnalyzedTrace {
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir shop.exs", 0, 40 * MS),
            life(2, "Stock", 0, 40 * MS),
        ];
        for (n, caller) in [10u8, 20, 30].into_iter().enumerate() {
            let n = n as u64;
            let name = format!("<0.{caller}.0>");
            spans.push(life(caller, &name, 0, 40 * MS));
            let mut call = span(
                caller + 1,
                Some(caller),
                "Stock.reserve/1",
                0,
                (n + 1) * 10 * MS,
            );
            call.attributes.push(KeyValue::new("rpc.service", "Stock"));
            spans.push(call);
            spans.push(linked(
                span(
                    caller + 2,
                    Some(caller + 1),
                    "receive",
                    0,
                    (n + 1) * 10 * MS,
                ),
                2,
                MESSAGE,
                (n + 1) * 10 * MS,
                (n + 1) * 10 * MS,
            ));
            spans.push(span(
                3 + n as u8,
                Some(2),
                "Stock.handle_call/3",
                n * 10 * MS,
                (n + 1) * 10 * MS - 1,
            ));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn message_waits_name_the_waiter_and_the_sender() {
        let trace = three_callers_in_line();
        let waits = message_waits(&trace);
        assert_eq!(waits.len(), 3);
        assert!(waits.iter().all(|w| w.sender == "Stock"));
        let waiters: Vec<&str> = waits.iter().map(|w| w.waiter.as_str()).collect();
        assert_eq!(waiters, ["<0.10.0>", "<0.20.0>", "<0.30.0>"]);
        assert_eq!(waits[2].nanos(), 30_000_000);
    }

    #[test]
    fn an_event_managers_unit_of_work_is_one_message_through_each_handler() {
        let mut manager = life(2, "audit", 0, 100);
        manager
            .attributes
            .push(KeyValue::new(INITIAL_CALL, "no callback module:init/1"));
        let handled =
            |id, name: &str, start| on_thread(span(id, Some(2), name, start, start + 4), "audit");
        // Three notifications through two handlers, then a call to one of them.
        let spans = vec![
            span(1, None, "elixir audit.exs", 0, 100),
            manager,
            handled(10, "Audit.Counter.handle_event/2", 10),
            handled(11, "Audit.Sink.handle_event/2", 14),
            handled(12, "Audit.Counter.handle_event/2", 18),
            handled(13, "Audit.Sink.handle_event/2", 22),
            handled(14, "Audit.Counter.handle_event/2", 26),
            handled(15, "Audit.Sink.handle_event/2", 30),
            handled(16, "Audit.Counter.handle_call/2", 34),
        ];
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let id = |n: u8| {
            (0..trace.spans.spans.len())
                .find(|&i| trace.span(i).span_id.0[0] == n)
                .expect("the span")
        };
        let life = id(2);
        let (units, a_loop) = units_of_work(&trace, life);
        assert!(!a_loop);
        assert_eq!(units, [id(10), id(12), id(14), id(16)]);
        // Each unit ends with its last handler's callback.
        assert_eq!(unit_end(&trace, id(12)), 26);
        assert_eq!(unit_of(&trace, id(13)), id(12));
        assert_eq!(unit_of(&trace, id(14)), id(14));
        assert_eq!(unit_of(&trace, id(16)), id(16));
        // A GenServer's callbacks back to back stay a unit each.
        let server = three_callers_in_line();
        let stock = life_at(&server, "Stock", 5).expect("the server's life");
        assert_eq!(units_of_work(&server, stock).0.len(), 3);
    }

    #[test]
    fn a_process_top_level_work_is_its_callbacks() {
        let trace = three_callers_in_line();
        let life = life_at(&trace, "Stock", 5).expect("the server's life");
        assert_eq!(top_level_work(&trace, life).len(), 3);
    }
}
