//! A process that serialises its callers: many processes wait at once for replies from one
//! process (a GenServer every request goes through), each waiting behind the others' calls.
//!
//! **Rule.** Take the waits in `receive` that messages from one process S ended
//! ([`crate::processes`]) inside a call to S (the recorder's client span with `devtrace.beam.peer` S:
//! a request answered by S — a process idle in its loop waits for work, and a process passing
//! a token along a ring waits for its predecessor, neither for a reply). For each, S's own work
//! for that caller is S's unit of work (a callback, or a hand-written loop's turn:
//! [`processes::units_of_work`]) that ended last before S's message,
//! if it ran during the wait; the rest of the
//! wait, as far as S's other units of work overlapped it, is time queued behind other callers
//! (time S sat idle is not: it deferred its reply, as a pool does until a worker is checked in). S serialises its callers in a run when at least
//! [`Thresholds::min_callers`] processes waited for it, at least two at once, and the most one
//! caller queued, over all its calls in the run, is at least [`Thresholds::min_queued_nanos`].
//! The saving per run is that queue time: with S partitioned (or its slow work moved out of the
//! callback) that caller would not wait behind the others — once for a caller that calls once,
//! at every call for a caller that calls S in a loop. Where the callers are many short lives
//! that take turns (the tasks of a `Task.async_stream`, a worker per job), no one caller
//! queues long, yet the work as a whole waits: then the saving is all the time queued spread
//! over the callers at work at once — the queued time over the mean number of callers alive
//! from the first wait to the last — when that is more.
//!
//! Not all of a queue is other callers' calls: S may have been running work of its own that
//! served no caller (a `handle_continue/2` loading a table, a periodic `handle_info/2`). The
//! part of the waits that S's other units of work overlapped is counted apart; when it is the
//! larger part, the finding names that work and says partitioning would not help.
//!
//! **Held for a timer.** A server may answer calls at a pace of its own rather than as fast as
//! it can: a rate limiter queues its callers (`{:noreply, …}`) and answers one at each tick of
//! a timer (`:timer.send_interval`, `Process.send_after`). It is idle, so no one queued behind
//! its work, and it is no finding here; but those calls are not paced by their callers' limit
//! either (`concurrency_limit`, `task_limit`): a call S answered from a unit of work that a
//! message from no recorded process began (a timer's), after waiting through another such unit
//! that answered someone else, is claimed with the queued ones.

use super::calls::Claims;
use crate::AnalyzedTrace;
use crate::call_values;
use crate::dialect::Dialect;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::processes::{self, MessageWait};
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Processes that waited for S in one run (3).
    pub min_callers: usize,
    /// The most one caller waited behind the others, over its calls in a run (5 ms).
    pub min_queued_nanos: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_callers: 3,
            min_queued_nanos: 5_000_000,
        }
    }
}

/// One run in which S serialised its callers.
struct Run {
    trace: usize,
    callers: usize,
    calls: usize,
    at_once: usize,
    wait_nanos: u64,
    queued_nanos: u64,
    /// The most one caller queued, over all its calls.
    max_queued_nanos: u64,
    /// The time queued spread over the callers alive at once ([`spread_over_callers`]).
    spread_queued_nanos: u64,
    /// The mean number of callers alive while they waited.
    callers_alive: f64,
    /// S's callbacks that served the waits: (span, nanoseconds).
    service: Vec<(usize, u64)>,
    /// Of `queued_nanos`, the time S ran work that served no caller.
    behind_other_work_nanos: u64,
    /// S's units of work that served no caller, with their time during the waits.
    other_work: Vec<(usize, u64)>,
    waiters: Vec<usize>,
    /// The calls that spent at least half their wait queued: S, not their callers, paced them.
    queued_calls: Vec<usize>,
    life: Option<usize>,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    detect_claiming(traces, thresholds).0
}

/// [`detect`], and the calls its findings account for: those that spent at least half their
/// wait queued behind S's other work. A limit on how many such calls their callers run at
/// once does not pace them, S does (`concurrency_limit` leaves them out).
pub fn detect_claiming(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
) -> (Vec<Finding>, Claims) {
    let mut by_server: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    let mut claims = Claims::default();
    for (t, trace) in traces.iter().enumerate() {
        let mut by_sender: BTreeMap<String, Vec<MessageWait>> = BTreeMap::new();
        let sent = processes::recorded_receives(trace);
        for wait in processes::message_waits(trace) {
            if processes::is_answer(trace, &wait) {
                by_sender.entry(wait.sender.clone()).or_default().push(wait);
            }
        }
        let lives = processes::lives_by_name(trace);
        let requests = crate::served::request_units(trace);
        for (name, waits) in by_sender {
            let server = Server::new(trace, lives.get(&name).map_or(&[][..], Vec::as_slice));
            for call in held_for_a_timer(trace, &waits, &sent) {
                claims.claim(t, call);
            }
            if let Some(run) = run_of(t, trace, &server, &waits, &lives, &requests, thresholds) {
                by_server.entry(name).or_default().push(run);
            }
        }
    }
    for run in by_server.values().flatten() {
        for &call in &run.queued_calls {
            claims.claim(run.trace, call);
        }
    }
    let findings = by_server
        .into_iter()
        .map(|(server, runs)| finding(traces, &server, &runs))
        .collect();
    (findings, claims)
}

/// The server's lives, each with its units of work (a callback, ending where the calls its
/// tail calls made end: [`processes::unit_end`]) in the order they ended.
struct Server {
    lives: Vec<(usize, Vec<Unit>)>,
}

/// A unit of work: its span and when it ended.
type Unit = (usize, u64);

fn start(trace: &AnalyzedTrace, unit: Unit) -> u64 {
    trace.span(unit.0).start_unix_nano
}

impl Server {
    fn new(trace: &AnalyzedTrace, lives: &[usize]) -> Self {
        let lives = lives
            .iter()
            .map(|&life| {
                let (units, _) = processes::units_of_work(trace, life);
                let mut work: Vec<Unit> = units
                    .into_iter()
                    .map(|u| (u, processes::unit_end(trace, u)))
                    .collect();
                work.sort_by_key(|&(_, end)| end);
                (life, work)
            })
            .collect();
        Self { lives }
    }

    /// The life alive when `wait` ended, with its callbacks.
    fn life_at(&self, trace: &AnalyzedTrace, wait: &MessageWait) -> Option<&(usize, Vec<Unit>)> {
        let at = wait.end_unix_nano;
        self.lives.iter().find(|(life, _)| {
            let span = trace.span(*life);
            span.start_unix_nano <= at && at <= span.end_unix_nano
        })
    }

    /// S's units of work, but the caller's `own` (the one that served `wait`, and the one its
    /// request began), that ran during `wait`, with their time during it: what S was busy
    /// with while the caller queued.
    fn busy_during(
        &self,
        trace: &AnalyzedTrace,
        wait: &MessageWait,
        own: [Option<usize>; 2],
    ) -> Vec<(usize, u64)> {
        let Some((_, work)) = self.life_at(trace, wait) else {
            return Vec::new();
        };
        // In end order, and one after another (a process runs one at a time): those that
        // ended after the wait began, up to the first that began after it ended — not the
        // server's every unit for each wait.
        let first = work.partition_point(|&(_, end)| end <= wait.start_unix_nano);
        work[first..]
            .iter()
            .take_while(|&&unit| start(trace, unit) < wait.end_unix_nano)
            .filter(|&&(c, _)| !own.contains(&Some(c)))
            .filter_map(|&(c, end)| {
                let overlap = end
                    .min(wait.end_unix_nano)
                    .saturating_sub(start(trace, (c, end)).max(wait.start_unix_nano));
                (overlap > 0).then_some((c, overlap))
            })
            .collect()
    }

    /// The callback that took the request `wait` waited on, when it is the caller's own: when
    /// the server answered (`served`) in the one right after it — a connection process sends
    /// the request on and answers from the callback its reply's data begins. (A queued
    /// GenServer's `receive` may be linked to a later request than the one it took.)
    fn took_request(
        &self,
        trace: &AnalyzedTrace,
        wait: &MessageWait,
        served: Option<usize>,
        requests: &HashMap<usize, usize>,
    ) -> Option<usize> {
        let call = processes::answered_call(trace, wait)?;
        let taken = *requests.get(&call)?;
        (served.is_some() && self.next_after(trace, wait, taken) == served).then_some(taken)
    }

    /// The unit of work that came right after `unit` in the life alive when `wait` ended.
    fn next_after(&self, trace: &AnalyzedTrace, wait: &MessageWait, unit: usize) -> Option<usize> {
        let (_, work) = self.life_at(trace, wait)?;
        let at = position(trace, work, unit)?;
        work.get(at + 1).map(|&(c, _)| c)
    }

    /// The callback that served `wait`, if it ran during the wait, with its time during the
    /// wait: the one that sent the message that ended it (a reply sent from inside a callback
    /// — `GenServer.reply/2`, a hand-written loop's `send` — goes on after it), else the one
    /// that ended last before that message.
    fn served(&self, trace: &AnalyzedTrace, wait: &MessageWait) -> Option<(usize, u64)> {
        let (_, work) = self.life_at(trace, wait)?;
        let ended = work.partition_point(|&(_, end)| end <= wait.end_unix_nano);
        let sent_by = processes::sending_unit(trace, wait)
            .and_then(|unit| position(trace, work, unit).map(|at| work[at]));
        let (c, end) = sent_by.or_else(|| work[..ended].last().copied())?;
        let end = end.min(wait.end_unix_nano);
        (end > wait.start_unix_nano).then(|| {
            let began = start(trace, (c, end)).max(wait.start_unix_nano);
            (c, end.saturating_sub(began))
        })
    }
}

/// Where `unit` is among a life's `work` (in end order), found by bisection.
fn position(trace: &AnalyzedTrace, work: &[Unit], unit: usize) -> Option<usize> {
    let end = processes::unit_end(trace, unit);
    let from = work.partition_point(|&(_, e)| e < end);
    let at = work[from..]
        .iter()
        .take_while(|&&(_, e)| e == end)
        .position(|&(c, _)| c == unit)?;
    Some(from + at)
}

/// The calls of `waits` S held back for a timer (module doc): answered by a unit of work that a
/// message from no recorded process began, after waiting through another such unit that
/// answered someone else. `sent` are the `receive`s a recorded process's message ended
/// ([`processes::recorded_receives`]).
fn held_for_a_timer(
    trace: &AnalyzedTrace,
    waits: &[MessageWait],
    sent: &HashSet<usize>,
) -> Vec<usize> {
    let answered_by_a_tick: Vec<(&MessageWait, usize)> = waits
        .iter()
        .filter_map(|w| Some((w, processes::sending_unit(trace, w)?)))
        .filter(|&(_, unit)| processes::begun_from_outside(trace, unit, sent))
        .collect();
    let mut ticks: Vec<u64> = answered_by_a_tick
        .iter()
        .map(|&(_, unit)| trace.span(unit).start_unix_nano)
        .collect();
    ticks.sort_unstable();
    ticks.dedup();
    let ticks_in = |from: u64, to: u64| {
        ticks.partition_point(|&at| at < to) - ticks.partition_point(|&at| at < from)
    };
    answered_by_a_tick
        .into_iter()
        .filter(|&(w, own)| {
            let own_tick = usize::from(w.start_unix_nano <= trace.span(own).start_unix_nano);
            ticks_in(w.start_unix_nano, w.end_unix_nano) > own_tick
        })
        .filter_map(|(w, _)| processes::answered_call(trace, w))
        .collect()
}

fn run_of(
    t: usize,
    trace: &AnalyzedTrace,
    server: &Server,
    waits: &[MessageWait],
    lives: &HashMap<String, Vec<usize>>,
    requests: &HashMap<usize, usize>,
    thresholds: &Thresholds,
) -> Option<Run> {
    let callers: BTreeSet<&str> = waits.iter().map(|w| w.waiter.as_str()).collect();
    let at_once = processes::most_at_once(
        waits
            .iter()
            .filter(|w| w.nanos() > 0)
            .map(|w| (w.start_unix_nano, w.end_unix_nano)),
    );
    if waits.len() < thresholds.min_callers {
        return None;
    }
    let mut run = Run {
        trace: t,
        callers: callers.len(),
        calls: waits.len(),
        at_once,
        wait_nanos: 0,
        queued_nanos: 0,
        max_queued_nanos: 0,
        spread_queued_nanos: 0,
        callers_alive: 0.0,
        service: Vec::new(),
        behind_other_work_nanos: 0,
        other_work: Vec::new(),
        waiters: Vec::new(),
        queued_calls: Vec::new(),
        life: None,
    };
    let served: Vec<Option<(usize, u64)>> = waits.iter().map(|w| server.served(trace, w)).collect();
    let serving: BTreeSet<usize> = served.iter().flatten().map(|&(c, _)| c).collect();
    let mut queued_by_caller: BTreeMap<&str, u64> = BTreeMap::new();
    for (wait, served) in waits.iter().zip(served) {
        // Queued: S was busy with other work meanwhile (another caller's call, or work of its
        // own), not idle (a reply it deferred until something else happened, as a pool's).
        let own = served.map_or(0, |(_, nanos)| nanos);
        let served_unit = served.map(|(c, _)| c);
        let taken_by = server.took_request(trace, wait, served_unit, requests);
        let busy = server.busy_during(trace, wait, [served_unit, taken_by]);
        let busy_nanos: u64 = busy.iter().map(|(_, n)| n).sum();
        let queued = wait.nanos().saturating_sub(own).min(busy_nanos);
        let (_, other): (Vec<_>, Vec<_>) = busy.into_iter().partition(|(c, _)| serving.contains(c));
        run.behind_other_work_nanos += other.iter().map(|(_, n)| n).sum::<u64>().min(queued);
        run.other_work.extend(other);
        run.wait_nanos += wait.nanos();
        run.queued_nanos += queued;
        *queued_by_caller.entry(wait.waiter.as_str()).or_default() += queued;
        run.service.extend(served);
        run.waiters.push(wait.wait.waiter);
        if let Some(call) =
            processes::answered_call(trace, wait).filter(|_| 2 * queued >= wait.nanos())
        {
            run.queued_calls.push(call);
        }
        run.life = run
            .life
            .or_else(|| server.life_at(trace, wait).map(|(life, _)| *life));
    }
    run.max_queued_nanos = queued_by_caller.into_values().max().unwrap_or(0);
    run.callers_alive = callers_alive(trace, waits, lives);
    run.spread_queued_nanos =
        (run.queued_nanos as f64 / run.callers_alive.max(1.0)).min(run.queued_nanos as f64) as u64;
    let serialised = callers.len() >= thresholds.min_callers && at_once >= 2;
    (run.max_queued_nanos >= thresholds.min_queued_nanos
        && (serialised || behind_own_work(&run, thresholds)))
    .then_some(run)
}

/// Whether calls to S waited mostly behind S's own work, whoever made them and however many
/// at once (a periodic `handle_info/2` whose ticks pile up delays every call, one at a time):
/// at least [`Thresholds::min_callers`] such calls.
fn behind_own_work(run: &Run, thresholds: &Thresholds) -> bool {
    run.calls >= thresholds.min_callers && run.behind_other_work_nanos * 2 > run.queued_nanos
}

impl Run {
    /// What partitioning S saves the run: the most one caller queued, or all the time queued
    /// spread over the callers alive at once, whichever is more (see the module doc).
    fn saving(&self) -> u64 {
        self.max_queued_nanos.max(self.spread_queued_nanos)
    }
}

/// The mean number of callers alive from the first of `waits` to the last: each caller's
/// life (the one its wait was in) as far as it overlaps that phase, a caller whose life was
/// not recorded counted alive throughout.
fn callers_alive(
    trace: &AnalyzedTrace,
    waits: &[MessageWait],
    lives: &HashMap<String, Vec<usize>>,
) -> f64 {
    let start = waits.iter().map(|w| w.start_unix_nano).min().unwrap_or(0);
    let end = waits.iter().map(|w| w.end_unix_nano).max().unwrap_or(0);
    let phase = end.saturating_sub(start);
    if phase == 0 {
        return 1.0;
    }
    let mut seen: BTreeSet<(&str, Option<usize>)> = BTreeSet::new();
    let mut alive: u128 = 0;
    for wait in waits {
        let own = lives.get(&wait.waiter).map_or(&[][..], Vec::as_slice);
        let life = processes::life_among(trace, own, wait.start_unix_nano);
        if !seen.insert((wait.waiter.as_str(), life)) {
            continue;
        }
        alive += life.map_or(phase, |life| {
            let span = trace.span(life);
            span.end_unix_nano
                .min(end)
                .saturating_sub(span.start_unix_nano.max(start))
        }) as u128;
    }
    alive as f64 / phase as f64
}

fn finding(traces: &[AnalyzedTrace], server: &str, runs: &[Run]) -> Finding {
    let example = runs
        .iter()
        .max_by_key(|r| r.saving())
        .expect("a finding has runs");
    let trace = &traces[example.trace];
    let callback = busiest_callback(trace, &example.service);
    let mean_service = mean_service_of(trace, &example.service, callback.as_deref());
    let saving = runs.iter().map(Run::saving).sum::<u64>() / runs.len() as u64;
    let waiting = callback
        .as_deref()
        .and_then(|c| waiting_on(trace, &example.service, c, mean_service));
    let served_by = callback.as_ref().map_or(String::new(), |c| {
        let waiting = waiting.as_ref().map_or(String::new(), |(peer, nanos)| {
            format!(", {} of it waiting for {}", human_duration(*nanos), q(peer))
        });
        format!(
            " ({} takes {} a call{waiting})",
            q(c),
            human_duration(mean_service)
        )
    });
    let shown = processes::shown_process(trace, server);
    let dialect = callback.as_deref().map_or(Dialect::Elixir, Dialect::of);
    let waiting_nanos = waiting.as_ref().map(|(_, nanos)| *nanos);
    let asked_again = SameRequest::of(trace, &example.service);
    let (title, recommendation) = match (blocking_work(trace, example), waiting) {
        (Some(work), _) => blocked_wording(&shown, example, saving, &served_by, &work, dialect),
        (None, _) if let Some(same) = asked_again => {
            same_request_wording(&shown, example, saving, &served_by, &same, dialect)
        }
        (None, Some((peer, _))) => waiting_wording(&shown, example, saving, &served_by, &peer),
        (None, None) if example.life.is_some_and(|l| processes::is_agent(trace, l)) => {
            agent_wording(&shown, example, saving, &served_by)
        }
        (None, None) => {
            let family = example.life.and_then(|life| Family::of(trace, life));
            let family = family.as_ref();
            queued_wording(&shown, example, saving, &served_by, family, dialect)
        }
    };
    let mut numbers = BTreeMap::new();
    numbers.insert("callers".into(), example.callers as f64);
    numbers.insert("calls".into(), example.calls as f64);
    numbers.insert("waiting_at_once".into(), example.at_once as f64);
    numbers.insert("wait_ms".into(), processes::millis(example.wait_nanos));
    numbers.insert("queued_ms".into(), processes::millis(example.queued_nanos));
    numbers.insert(
        "max_queued_ms".into(),
        processes::millis(example.max_queued_nanos),
    );
    numbers.insert("service_ms_mean".into(), processes::millis(mean_service));
    if let Some(nanos) = waiting_nanos {
        numbers.insert("waiting_for_other_ms_mean".into(), processes::millis(nanos));
    }
    numbers.insert(
        "behind_other_work_ms".into(),
        processes::millis(example.behind_other_work_nanos),
    );
    Finding {
        kind: FindingKind::SerialisedProcess,
        operation: callback.or_else(|| Some(format!("process {server}"))),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::SerialisedProcess.as_str(), server]),
        saving_nanos: saving,
        occurrences: runs.len() as u64,
        numbers,
        evidence: runs
            .iter()
            .take(MAX_EVIDENCE)
            .map(|r| evidence(traces, r))
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    }
}

/// Work of S's own that callers queued behind: the callback, how many times it ran while they
/// waited and its longest run.
struct OwnWork {
    name: String,
    runs: usize,
    longest_nanos: u64,
    /// Whether its runs were asked for from outside the recording (a timer's ticks).
    timed: bool,
    /// A state machine's calls of it that postponed a call (`postpone`: taken again only in
    /// another state), not counted in `runs`, and the state they were postponed in.
    postponed: usize,
    state: Option<String>,
}

/// S's work that served no caller, when it, not other callers' calls, is most of what the
/// callers queued behind.
fn blocking_work(trace: &AnalyzedTrace, run: &Run) -> Option<OwnWork> {
    if run.behind_other_work_nanos * 2 <= run.queued_nanos {
        return None;
    }
    let name = busiest_callback(trace, &run.other_work)?;
    let (postponing, units): (BTreeSet<usize>, BTreeSet<usize>) = run
        .other_work
        .iter()
        .map(|&(c, _)| c)
        .filter(|&c| trace.span(c).name == name)
        .partition(|&c| postponed_a_call(trace, c));
    let longest_nanos = units
        .iter()
        .map(|&c| processes::unit_end(trace, c).saturating_sub(trace.span(c).start_unix_nano))
        .max()
        .unwrap_or(0);
    let timed = run
        .life
        .is_some_and(|life| asked_from_outside(trace, life, run.calls, units.len()));
    let state = postponing
        .iter()
        .find_map(|&c| processes::text(trace, c, STATEM_STATE));
    Some(OwnWork {
        name,
        runs: units.len(),
        longest_nanos,
        timed,
        postponed: postponing.len(),
        state,
    })
}

/// A `gen_statem` callback's state after it (`devtrace.beam.statem.state`).
const STATEM_STATE: &str = "devtrace.beam.statem.state";

/// Whether state machine callback `c` postponed the event it was given (`postpone` among
/// the actions it returned): a call it leaves for another state, no work done.
fn postponed_a_call(trace: &AnalyzedTrace, c: usize) -> bool {
    processes::text(trace, c, STATEM_STATE).is_some()
        && processes::text(trace, c, processes::CALL_RETURN).is_some_and(|r| r.contains("postpone"))
}

/// Whether the `runs` runs of process `life`'s own work were asked for from outside the
/// recording — a timer's ticks (`:timer.send_interval/2`: the timer's own process is OTP's), a
/// port's data — rather than by the program's processes (notifications to an event manager,
/// casts, plain sends): fewer messages from recorded processes reached it, beyond its callers'
/// `calls`, than half its runs. (Counted by what recorded sends reached, since a message from
/// nowhere taken at once leaves no `receive` span.)
fn asked_from_outside(trace: &AnalyzedTrace, life: usize, calls: usize, runs: usize) -> bool {
    let sent = processes::recorded_receives(trace);
    let reached = trace
        .tree
        .descendants(life)
        .iter()
        .filter(|d| sent.contains(d))
        .count();
    reached.saturating_sub(calls) * 2 < runs
}

/// "S serialises its callers: …", for callers queued behind each other's calls (`server` as
/// shown, quoted). When S is already one of a module's processes, one per key, and took most
/// of their calls, one key is hot: more partitions cannot spread it.
fn queued_wording(
    server: &str,
    run: &Run,
    saving: u64,
    served_by: &str,
    family: Option<&Family>,
    dialect: Dialect,
) -> (String, String) {
    let title = queued_title(server, run, served_by);
    let reply_later = format!(
        "reply later with {} from {}",
        dialect.reply_later(),
        dialect.worker()
    );
    let advice = match family.filter(|f| f.is_hot()) {
        Some(f) => format!(
            "{server} is one of {} {} processes and answered {} of the {} calls to them: one key is hot, which more processes per key cannot spread. Move the slow work out of its callback ({reply_later}) or split what that key holds",
            f.processes,
            q(&f.module),
            f.calls,
            f.all_calls,
        ),
        None => format!(
            "Partition {server} (one process per key: {}) or move the slow work out of its callback ({reply_later})",
            dialect.per_key()
        ),
    };
    let recommendation = format!(
        "{advice}: {}; saving ≈ {} per run",
        who_waited(run, true),
        human_duration(saving),
    );
    (title, recommendation)
}

/// The request most of the calls S served asked, when each got the same reply: the callers
/// queued behind the same work done again for each of them (a cache's misses all loading one
/// key at once: a stampede).
struct SameRequest {
    request: String,
    calls: usize,
    served: usize,
}

impl SameRequest {
    /// Fewest calls asking the same thing for it to be the advice.
    const MIN_CALLS: usize = 3;

    fn of(trace: &AnalyzedTrace, service: &[(usize, u64)]) -> Option<Self> {
        let mut asked: HashMap<(String, String), usize> = HashMap::new();
        let answers = service
            .iter()
            .filter_map(|&(callback, _)| call_values::request_and_reply(trace, callback));
        // A bare atom (`:ok`) says the work was done, not what it found: work done for its
        // effect (a write, a flush) is not the same work whoever asks.
        for pair in answers.filter(|(_, reply)| !call_values::is_atom(reply)) {
            *asked.entry(pair).or_default() += 1;
        }
        let ((request, _), calls) = asked
            .into_iter()
            .max_by(|(a, n), (b, m)| n.cmp(m).then_with(|| b.cmp(a)))?;
        (calls >= Self::MIN_CALLS && calls * 2 > service.len()).then_some(Self {
            request,
            calls,
            served: service.len(),
        })
    }
}

/// "S serialises its callers: …" where most of the calls asked S the same thing and got the
/// same answer: one answer shared among them ends the queue (more processes would do the work
/// again in each); partitioning or moving the work out of the callback come after.
fn same_request_wording(
    server: &str,
    run: &Run,
    saving: u64,
    served_by: &str,
    same: &SameRequest,
    dialect: Dialect,
) -> (String, String) {
    let title = queued_title(server, run, served_by);
    let recommendation = format!(
        "Do the work for {} once for everyone who asks while it is under way: {} of the {} calls {server} served asked it and got the same reply, so its callers queued behind the same work done again for each. Keep the callers of a request in progress and answer them all with {reply_later} when it is done, or keep the answer where the callers look first (an ETS table); else partition {server} or move the slow work out of its callback (reply later with {reply_later} from {}): {}; saving ≈ {} per run",
        q(&same.request),
        same.calls,
        same.served,
        dialect.worker(),
        who_waited(run, true),
        human_duration(saving),
        reply_later = dialect.reply_later(),
    );
    (title, recommendation)
}

/// S among the other processes that ran its module beside it ([`processes::siblings`]): how
/// many there were, and how many of the calls any of them answered S did.
struct Family {
    module: String,
    processes: usize,
    calls: usize,
    all_calls: usize,
}

impl Family {
    fn of(trace: &AnalyzedTrace, life: usize) -> Option<Self> {
        let siblings = processes::siblings(trace, life);
        let own = processes::thread_name(trace, life)?;
        let names: HashSet<String> = siblings
            .iter()
            .chain([&life])
            .filter_map(|&l| processes::thread_name(trace, l))
            .collect();
        if names.len() < 2 {
            return None;
        }
        let answered: Vec<String> = processes::message_waits(trace)
            .into_iter()
            .filter(|w| names.contains(&w.sender) && processes::is_answer(trace, w))
            .map(|w| w.sender)
            .collect();
        Some(Self {
            module: processes::server_module(trace, life)?,
            processes: names.len(),
            calls: answered.iter().filter(|s| **s == own).count(),
            all_calls: answered.len(),
        })
    }

    /// Whether S answered more of the calls than all the others together.
    fn is_hot(&self) -> bool {
        2 * self.calls > self.all_calls
    }
}

/// "S serialises its callers: …", the title of every finding of callers queued behind each
/// other's calls, whatever the advice.
fn queued_title(server: &str, run: &Run, served_by: &str) -> String {
    format!(
        "{} serialises its callers: {} processes waited for it ({} at once), {} in all over {} calls, {} of it behind other callers' calls{served_by}",
        server,
        run.callers,
        run.at_once,
        human_duration(run.wait_nanos),
        run.calls,
        human_duration(run.queued_nanos),
    )
}

/// The process S's `callback` spent at least half of its mean time (`mean_service`) waiting
/// for, in calls to it or in `receive` for its messages (S only passes its callers' queue on):
/// its name and the mean wait a call.
fn waiting_on(
    trace: &AnalyzedTrace,
    service: &[(usize, u64)],
    callback: &str,
    mean_service: u64,
) -> Option<(String, u64)> {
    let units: Vec<usize> = service
        .iter()
        .map(|&(span, _)| span)
        .filter(|&span| trace.span(span).name == callback)
        .collect();
    let message_waits = processes::message_waits(trace);
    let waits: HashMap<usize, &MessageWait> =
        message_waits.iter().map(|w| (w.wait.waiter, w)).collect();
    let mut by_peer: BTreeMap<String, u64> = BTreeMap::new();
    for &unit in &units {
        for (peer, nanos) in processes::waits_out(trace, unit, &waits) {
            *by_peer.entry(peer).or_default() += nanos;
        }
    }
    let (peer, total) = by_peer.into_iter().max_by_key(|(_, nanos)| *nanos)?;
    let mean = total / units.len().max(1) as u64;
    (mean * 2 >= mean_service && mean > 0).then_some((peer, mean))
}

/// "S serialises its callers: …" where S's callback mostly waits for another process `peer`:
/// partitioning S alone would move the queue to `peer` (`server` as shown, quoted).
fn waiting_wording(
    server: &str,
    run: &Run,
    saving: u64,
    served_by: &str,
    peer: &str,
) -> (String, String) {
    let title = queued_title(server, run, served_by);
    let recommendation = format!(
        "Shorten what {peer_q} does for {server} or partition both: {server}'s callback spends most of each call waiting for {peer_q}, so partitioning {server} alone would move the queue to {peer_q}; {}; saving ≈ {} per run",
        who_waited(run, true),
        human_duration(saving),
        peer_q = q(peer),
    );
    (title, recommendation)
}

/// "S serialises its callers: …" for an Elixir `Agent`, whose callers' functions run inside it
/// one at a time: the work belongs in the callers (`server` as shown, quoted).
fn agent_wording(server: &str, run: &Run, saving: u64, served_by: &str) -> (String, String) {
    let title = queued_title(server, run, served_by);
    let recommendation = format!(
        "Do the work in the callers, not inside {server}: an Agent runs each function it is given (Agent.get/update) in its own process, one caller at a time; take out of its state only what the work needs (Agent.get/2 returning the state or one field) and compute it in the caller, or keep one Agent per key: {}; saving ≈ {} per run",
        who_waited(run, true),
        human_duration(saving),
    );
    (title, recommendation)
}

/// What the saving of `run` stands for: one caller's queue (`behind_others`: other callers'
/// calls, not the server's own work), or everyone's spread over the callers alive at once.
fn who_waited(run: &Run, behind_others: bool) -> String {
    if run.spread_queued_nanos > run.max_queued_nanos {
        format!(
            "its callers, {:.1} alive at once on average, queued {} in all, ≈ {} of the run's time",
            run.callers_alive,
            human_duration(run.queued_nanos),
            human_duration(run.spread_queued_nanos),
        )
    } else {
        let behind = if behind_others {
            " behind the others"
        } else {
            ""
        };
        format!(
            "one caller waited {} in all{behind}",
            human_duration(run.max_queued_nanos)
        )
    }
}

/// "S kept its callers waiting while it ran W: …", for callers queued behind work of S's own
/// (`server` as shown, quoted). Work that ran again and again while they waited (a periodic
/// `handle_info/2`) came faster than S handled it: its advice says so.
fn blocked_wording(
    server: &str,
    run: &Run,
    saving: u64,
    served_by: &str,
    work: &OwnWork,
    dialect: Dialect,
) -> (String, String) {
    let work_q = q(&work.name);
    let (interval, once) = dialect.timers();
    let ran = if work.runs >= REPEATED_WORK_RUNS {
        format!(
            "{} times, up to {} each",
            work.runs,
            human_duration(work.longest_nanos)
        )
    } else {
        human_duration(work.longest_nanos)
    };
    let title = format!(
        "{} kept its callers waiting while it ran {work_q}: {}, {} in all over {} calls, {} of it while {work_q} ran ({ran}), not behind each other's calls{served_by}",
        server,
        who_and_how_many(run),
        human_duration(run.wait_nanos),
        run.calls,
        human_duration(run.behind_other_work_nanos),
    );
    let advice = if work.postponed > 0 {
        postponed_advice(server, work, &work_q)
    } else if work.runs >= REPEATED_WORK_RUNS {
        let asked_by = if work.name.ends_with("handle_cast/2") {
            "the casts asking for it came faster than it did it; send fewer (batch them)".into()
        } else if !work.timed {
            // Sent by the program's processes (an event manager's notifications, plain sends).
            "the messages asking for it came faster than it did it; send fewer (batch them), or have their senders wait for it (a call rather than a message they do not wait for)".into()
        } else {
            format!(
                "the messages asking for it came faster than it did it (a timer such as {interval} whose interval is shorter than the work); re-arm the timer with {once} when each run ends"
            )
        };
        format!(
            "Make {work_q} cheaper or ask {server} for it less often: it ran {} times while the callers waited, so {asked_by}, or move the work out of {server} ({} that sends its result back)",
            work.runs,
            dialect.worker(),
        )
    } else {
        format!(
            "Shorten {work_q} or move it out of {server} ({} that sends its result back, or work done before the callers start)",
            dialect.worker()
        )
    };
    let recommendation = format!(
        "{advice}: its callers waited for it, not for each other, so partitioning {server} would not help; {}; saving ≈ {} per run",
        who_waited(run, false),
        human_duration(saving),
    );
    (title, recommendation)
}

/// The advice for callers a state machine postponed: they waited for it to leave the state
/// (`work` ran in it, on its own timeouts or messages), not for each other.
fn postponed_advice(server: &str, work: &OwnWork, work_q: &str) -> String {
    let state = work
        .state
        .as_deref()
        .map_or_else(String::new, |s| format!(" in state {}", q(s)));
    format!(
        "{server} postponed {} of its callers' calls{state} and took them only when it left it: they waited for {work_q} ({} in that state, up to {} each) to reach the next; make that shorter (fewer or faster attempts), or answer calls in that state at once (an error the caller can act on) rather than postponing them",
        work.postponed,
        match work.runs {
            1 => "one run".to_owned(),
            n => format!("{n} runs"),
        },
        human_duration(work.longest_nanos),
    )
}

/// Runs of S's own work while callers waited from which it is work that came again and again.
const REPEATED_WORK_RUNS: usize = 3;

/// "5 processes waited for it (2 at once)", "one process waited for it (3 calls)".
fn who_and_how_many(run: &Run) -> String {
    match (run.callers, run.at_once) {
        (1, _) => format!("one process waited for it ({} calls)", run.calls),
        (n, 1) => format!("{n} processes waited for it, one at a time"),
        (n, at_once) => format!("{n} processes waited for it ({at_once} at once)"),
    }
}

/// The mean time S spent on a call in `callback` (its busiest callback).
fn mean_service_of(trace: &AnalyzedTrace, service: &[(usize, u64)], callback: Option<&str>) -> u64 {
    let times: Vec<u64> = service
        .iter()
        .filter(|(span, _)| Some(trace.span(*span).name.as_str()) == callback)
        .map(|(_, nanos)| *nanos)
        .collect();
    times.iter().sum::<u64>() / times.len().max(1) as u64
}

/// The callback that served the most time, by name.
fn busiest_callback(trace: &AnalyzedTrace, service: &[(usize, u64)]) -> Option<String> {
    let mut by_name: BTreeMap<&str, u64> = BTreeMap::new();
    for (span, nanos) in service {
        *by_name.entry(trace.span(*span).name.as_str()).or_default() += nanos;
    }
    by_name
        .into_iter()
        .max_by_key(|(_, nanos)| *nanos)
        .map(|(name, _)| name.to_owned())
}

fn evidence(traces: &[AnalyzedTrace], run: &Run) -> Evidence {
    let trace = &traces[run.trace];
    let service = run.service.iter().map(|(s, _)| *s).take(3);
    trace.evidence(
        run.life
            .into_iter()
            .chain(service)
            .chain(run.waiters.iter().copied().take(3)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::tests::{handing_on_in_tail_calls, three_callers_in_line};
    use crate::tree::tests::batch;
    use devtrace_model::{KeyValue, TraceId};

    #[test]
    fn callers_queued_behind_each_other_are_found_with_the_longest_queue_as_saving() {
        let findings = detect(&[three_callers_in_line()], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(found.kind, FindingKind::SerialisedProcess);
        assert_eq!(found.operation.as_deref(), Some("Stock.handle_call/3"));
        // The third caller waited 30 ms, 10 of them for its own call.
        assert_eq!(found.numbers["max_queued_ms"], 20.0);
        assert!(
            (found.saving_nanos as i64 - 20_000_000).abs() < 10,
            "{}",
            found.saving_nanos
        );
        assert_eq!(found.numbers["callers"], 3.0);
        assert_eq!(found.numbers["waiting_at_once"], 3.0);
        assert!(
            found.title.starts_with("\"Stock\" serialises its callers"),
            "{}",
            found.title
        );
    }

    #[test]
    fn the_advice_names_what_the_programs_language_writes() {
        let elixir = &detect(&[three_callers_in_line()], &Thresholds::default())[0];
        assert!(
            elixir.recommendation.starts_with(
                "Partition \"Stock\" (one process per key: a Registry or PartitionSupervisor) or \
                 move the slow work out of its callback (reply later with GenServer.reply/2 from \
                 a Task)"
            ),
            "{}",
            elixir.recommendation
        );
        // The same server written in Erlang: `stock:handle_call/3`.
        let mut t = three_callers_in_line();
        for s in &mut t.spans.spans {
            if s.name == "Stock.handle_call/3" {
                s.name = "stock:handle_call/3".into();
            }
        }
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(t.spans.spans));
        let erlang = &detect(&[t], &Thresholds::default())[0];
        assert!(
            erlang.recommendation.starts_with(
                "Partition \"Stock\" (one process per key: pg, or an ETS table of pids by key) \
                 or move the slow work out of its callback (reply later with gen_server:reply/2 \
                 from a process spawned for it)"
            ),
            "{}",
            erlang.recommendation
        );
    }

    #[test]
    fn callbacks_handing_their_work_to_a_helper_in_a_tail_call_are_found_as_well() {
        // Stock's callbacks end at 1 µs in a tail call of `Stock.do_reserve/1`, which does
        // the 10 ms of work (`handle_call(R, _, S) -> do_reserve(R, S).`).
        let mut spans = three_callers_in_line().spans.spans;
        let names = ("Stock.init/1", "Stock.handle_call/3", "Stock.do_reserve/1");
        handing_on_in_tail_calls(&mut spans, names, 1_000);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("a serialising server");
        assert_eq!(found.operation.as_deref(), Some("Stock.handle_call/3"));
        assert_eq!(found.numbers["max_queued_ms"], 20.0);
        assert_eq!(found.numbers["service_ms_mean"], 10.0);
    }

    #[test]
    fn callers_whose_calls_are_written_inline_are_counted_too() {
        // Each caller's call is written inline in a function that does more
        // (`Shop.checkout/1`): its `receive` is the call (docs/beam.md), not the function.
        let mut spans = three_callers_in_line().spans.spans;
        for s in spans.iter_mut() {
            if s.name == "Stock.reserve/1" {
                s.name = "Shop.checkout/1".into();
                s.attributes.clear();
            } else if s.name == "receive" {
                s.attributes
                    .push(devtrace_model::KeyValue::new("rpc.service", "Stock"));
            }
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let (findings, claims) =
            detect_claiming(std::slice::from_ref(&trace), &Thresholds::default());
        let [found] = findings.try_into().expect("a serialising server");
        assert_eq!(found.numbers["callers"], 3.0);
        assert_eq!(found.numbers["max_queued_ms"], 20.0);
        // The call queued behind others for most of its wait (the third's) is its `receive`,
        // claimed from concurrency_limit; the functions around the calls are no calls.
        let claimed = |name: &str| {
            (0..trace.spans.spans.len())
                .filter(|&i| trace.span(i).name == name && claims.is_claimed(0, i))
                .count()
        };
        assert_eq!((claimed("receive"), claimed("Shop.checkout/1")), (1, 0));
    }

    /// [`three_callers_in_line`] with Stock one of two processes of module `Item`, one per
    /// key ("<0.2.0>" for "sku-1"), through a `Registry`: the other, "<0.7.0>", answered
    /// `other_calls` calls of a caller of its own.
    fn one_key_of_two(other_calls: u8) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::item;
        use crate::tree::tests::span;
        const MS: u64 = 1_000_000;
        let mut spans = three_callers_in_line().spans.spans;
        let [life, init] = item(2, "<0.2.0>", "\"sku-1\"", (0, 40 * MS));
        spans[1] = life;
        spans.push(init);
        spans.extend(item(7, "<0.7.0>", "\"sku-2\"", (0, 40 * MS)));
        spans.push(crate::processes::tests::life(60, "<0.60.0>", 0, 40 * MS));
        for n in 0..other_calls {
            let (at, id) = (u64::from(n) * 2 * MS, 61 + 2 * n);
            let mut call = span(id, Some(60), "Item.reserve/1", at, at + MS);
            call.attributes
                .push(KeyValue::new(processes::PEER, "<0.7.0>"));
            spans.push(call);
            spans.push(linked(
                span(id + 1, Some(id), "receive", at, at + MS),
                7,
                processes::MESSAGE,
                at + MS,
                MS,
            ));
        }
        for s in spans.iter_mut() {
            for a in s
                .attributes
                .iter_mut()
                .filter(|a| a.value.to_display_string() == "Stock")
            {
                a.value = "<0.2.0>".into();
            }
            if s.name.starts_with("Stock.") {
                s.name = s.name.replace("Stock.", "Item.");
            }
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn one_of_a_modules_processes_answering_most_of_their_calls_is_a_hot_key() {
        let [found] = detect(&[one_key_of_two(1)], &Thresholds::default())
            .try_into()
            .expect("a serialising server");
        assert!(
            found.title.starts_with(
                r#""Item" process "<0.2.0>" started with "\"sku-1\"" serialises its callers: 3 processes"#
            ),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                r#""Item" process "<0.2.0>" started with "\"sku-1\"" is one of 2 "Item" processes and answered 3 of the 4 calls to them: one key is hot"#
            ),
            "{}",
            found.recommendation
        );
        assert!(found.recommendation.ends_with("; saving ≈ 20.0 ms per run"));
        // As many calls to the other key: the keys share the work, more of them would too.
        let [found] = detect(&[one_key_of_two(3)], &Thresholds::default())
            .try_into()
            .expect("a serialising server");
        assert!(
            found
                .recommendation
                .starts_with(r#"Partition "Item" process "<0.2.0>" started with"#),
            "{}",
            found.recommendation
        );
    }

    /// [`three_callers_in_line`] with each of Stock's 10 ms callbacks spending 9 ms waiting
    /// for "Db" (a process of its own, span 50): in a call to it (`Db.fetch/1`), or, written
    /// inline, in a `receive` its message ended.
    fn stock_waiting_for_db(inline: bool) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::life;
        use crate::tree::tests::span;
        let mut spans = three_callers_in_line().spans.spans;
        spans.push(life(50, "Db", 0, 40_000_000));
        let callbacks: Vec<(devtrace_model::SpanId, u64)> = spans
            .iter()
            .filter(|s| s.name == "Stock.handle_call/3")
            .map(|s| (s.span_id, s.start_unix_nano))
            .collect();
        for (n, (parent, start)) in callbacks.into_iter().enumerate() {
            let (id, end) = (40 + n as u8, start + 9_000_000);
            let mut wait = if inline {
                linked(
                    span(id, None, "receive", start, end),
                    50,
                    processes::MESSAGE,
                    end,
                    9_000_000,
                )
            } else {
                let mut call = span(id, None, "Db.fetch/1", start, end);
                call.attributes
                    .push(devtrace_model::KeyValue::new("rpc.service", "Db"));
                call
            };
            wait.parent_span_id = Some(parent);
            spans.push(wait);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_server_whose_callback_waits_for_another_says_partitioning_it_alone_moves_the_queue() {
        for inline in [false, true] {
            let [found] = detect(&[stock_waiting_for_db(inline)], &Thresholds::default())
                .try_into()
                .expect("a serialising server");
            assert!(
                found.title.ends_with(
                    "(\"Stock.handle_call/3\" takes 10.0 ms a call, 9.0 ms of it waiting for \"Db\")"
                ),
                "inline {inline}: {}",
                found.title
            );
            assert!(
                found.recommendation.starts_with(
                    "Shorten what \"Db\" does for \"Stock\" or partition both: \"Stock\"'s callback spends most of each call waiting for \"Db\""
                ),
                "inline {inline}: {}",
                found.recommendation
            );
            assert_eq!(found.numbers["max_queued_ms"], 20.0);
            assert_eq!(found.numbers["waiting_for_other_ms_mean"], 9.0);
        }
    }

    #[test]
    fn a_callback_that_calls_another_process_briefly_is_still_the_servers_own_work() {
        let mut spans = three_callers_in_line().spans.spans;
        let first = spans
            .iter()
            .find(|s| s.name == "Stock.handle_call/3")
            .unwrap();
        let mut call = crate::tree::tests::span(40, None, "Db.fetch/1", 0, 4_000_000);
        call.parent_span_id = Some(first.span_id);
        call.attributes
            .push(devtrace_model::KeyValue::new("rpc.service", "Db"));
        spans.push(call);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let advice = the_finding(trace).recommendation;
        assert!(advice.starts_with("Partition \"Stock\""), "{advice}");
    }

    /// The one finding of `trace`.
    fn the_finding(trace: AnalyzedTrace) -> Finding {
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("a serialising server");
        found
    }

    #[test]
    fn callers_of_an_agent_are_told_to_do_the_work_themselves() {
        // Stock is an Agent: the 10 ms of each call is the caller's own function run inside
        // it (`Agent.get(Stock, fn s -> … end)`), so partitioning is not the first advice.
        let mut spans = three_callers_in_line().spans.spans;
        spans[1].attributes.push(devtrace_model::KeyValue::new(
            processes::INITIAL_CALL,
            "Agent.Server.init/1",
        ));
        for s in spans.iter_mut().filter(|s| s.name == "Stock.handle_call/3") {
            s.name = "anonymous fn#0 in Stock.reserve/1".into();
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("a serialising Agent");
        assert!(
            found
                .recommendation
                .starts_with("Do the work in the callers, not inside \"Stock\": an Agent runs"),
            "{}",
            found.recommendation
        );
        assert!(
            found
                .title
                .ends_with("(\"anonymous fn#0 in Stock.reserve/1\" takes 10.0 ms a call)"),
            "{}",
            found.title
        );
        assert_eq!(found.numbers["max_queued_ms"], 20.0);
    }

    /// [`three_callers_in_line`] with each of Stock's callbacks asked `request` and replying
    /// `reply` (its `{n}` the call's number), the state counting its calls.
    fn three_callers_asking(requests: [&str; 3], reply: &str) -> AnalyzedTrace {
        let mut spans = three_callers_in_line().spans.spans;
        let callbacks = spans.iter_mut().filter(|s| s.name == "Stock.handle_call/3");
        for (n, (callback, request)) in callbacks.zip(requests).enumerate() {
            let arguments = format!("{request}, {{#PID<0.{n}0.0>, #Ref<0.1.2.{n}>}}, {n}");
            let reply = reply.replace("{n}", &n.to_string());
            let answered = format!("{{:reply, {reply}, {}}}", n + 1);
            callback.attributes.extend([
                KeyValue::new(processes::CALL_ARGUMENTS, arguments),
                KeyValue::new(processes::CALL_RETURN, answered),
            ]);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn callers_queued_for_one_request_answered_alike_are_told_to_share_its_answer() {
        let load = "{:load, :config}";
        let found = the_finding(three_callers_asking([load; 3], r#"{:config, "v"}"#));
        assert!(
            found.recommendation.starts_with(
                "Do the work for \"{:load, :config}\" once for everyone who asks while it is \
                 under way: 3 of the 3 calls \"Stock\" served asked it and got the same reply"
            ),
            "{}",
            found.recommendation
        );
        assert!(
            found.recommendation.contains(
                "; else partition \"Stock\" or move the slow work out of its callback (reply \
                 later with GenServer.reply/2 from a Task)"
            ),
            "{}",
            found.recommendation
        );
        assert_eq!(found.numbers["max_queued_ms"], 20.0);
        // Different requests, a reply that only says the work was done, different replies, or
        // values not known whole: each caller's work was its own, or may have been.
        let others = [
            three_callers_asking(["{:load, 1}", "{:load, 2}", "{:load, 3}"], "{:ok, 1}"),
            three_callers_asking([":flush"; 3], ":ok"),
            three_callers_asking([":next_id"; 3], "{:ok, {n}}"),
            // Summaries cut short: the same text may be different carts.
            three_callers_asking(["{:quote, [1, 2, 3, …]}"; 3], "{:ok, 60…}"),
        ];
        for trace in others {
            let advice = the_finding(trace).recommendation;
            assert!(advice.starts_with("Partition \"Stock\""), "{advice}");
        }
    }

    /// Twelve jobs, each a process of its own that calls "Limiter" once and ends, run three at
    /// a time (a new one starts as one ends, as `Task.async_stream` runs them); Limiter serves
    /// each in 5 ms, in turn: every job from the fourth on queues 10 ms. Without the queue the
    /// twelve would take 4 × 5 ms; they take 60.
    fn jobs_taking_turns() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir crawl.exs", 0, 60 * MS),
            life(2, "Limiter", 0, 60 * MS),
        ];
        let mut ends: Vec<u64> = Vec::new();
        for k in 0..12u8 {
            let start = if k < 3 { 0 } else { ends[k as usize - 3] };
            let served = ends.last().copied().unwrap_or(0).max(start);
            let end = served + 5 * MS;
            ends.push(end);
            let id = 20 + 4 * k;
            spans.push(life(id, &format!("<0.{id}.0>"), start, end));
            let mut call = span(id + 1, Some(id), "Limiter.take/0", start, end);
            call.attributes
                .push(KeyValue::new("rpc.service", "Limiter"));
            call.attributes
                .push(KeyValue::new("devtrace.beam.peer", "Limiter"));
            spans.push(call);
            let wait = span(id + 2, Some(id + 1), "receive", start, end);
            spans.push(linked(wait, 2, processes::MESSAGE, end, end));
            spans.push(span(
                id + 3,
                Some(2),
                "Limiter.handle_call/3",
                served,
                end - 1,
            ));
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn jobs_taking_turns_save_the_queue_spread_over_the_jobs_alive_at_once() {
        let (findings, queued) = detect_claiming(&[jobs_taking_turns()], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        // No job queued more than 10 ms; all queued 105 ms, 2.75 jobs alive at once on average
        // (165 ms of lives over the 60 ms): ≈ 38.2 ms of the run, where the truth is 60 − 20.
        assert_eq!(found.numbers["max_queued_ms"], 10.0);
        assert_eq!(found.numbers["queued_ms"], 105.0);
        assert!(
            found.saving_nanos.abs_diff(38_181_818) < 1_000,
            "{}",
            found.saving_nanos
        );
        assert!(
            found.recommendation.contains("its callers, 2.8 alive at once on average, queued 105.0 ms in all, ≈ 38.2 ms of the run's time"),
            "{}",
            found.recommendation
        );
        // The calls that queued are the Limiter's, not a pool of three of their callers'.
        let trace = [jobs_taking_turns()];
        let (pools, _) = super::super::concurrency_limit::detect_claiming(
            &trace,
            &Default::default(),
            &Claims::default(),
        );
        assert_eq!(
            pools.len(),
            1,
            "without the claims, the three at a time read as a pool"
        );
        let (pools, _) =
            super::super::concurrency_limit::detect_claiming(&trace, &Default::default(), &queued);
        assert!(pools.is_empty(), "{pools:?}");
    }

    /// Three callers (lives 10, 20, 30) that each call "Stock" twice, both rounds at once:
    /// the server serves each round in line, 10 ms a call, so the third caller queues 20 ms a
    /// round.
    fn three_callers_calling_twice() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "erl", 0, 60 * MS),
            life(2, "Stock", 0, 60 * MS),
        ];
        for (k, caller) in [10u8, 20, 30].into_iter().enumerate() {
            spans.push(life(caller, &format!("<0.{caller}.0>"), 0, 60 * MS));
            for round in 0..2u8 {
                let (k, r) = (k as u64, u64::from(round));
                let (start, end) = (r * 30 * MS, r * 30 * MS + (k + 1) * 10 * MS);
                let id = caller + 1 + 2 * round;
                let mut call = span(id, Some(caller), "kv:client/2", start, end);
                call.attributes.push(KeyValue::new("rpc.service", "Stock"));
                spans.push(call);
                let wait = span(id + 1, Some(id), "receive", start, end);
                spans.push(linked(wait, 2, processes::MESSAGE, end, end));
                let served = 3 + 3 * round + k as u8;
                spans.push(span(
                    served,
                    Some(2),
                    "kv:handle_call/3",
                    end - 10 * MS,
                    end - 1,
                ));
            }
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_caller_that_calls_in_a_loop_queues_at_every_call() {
        let findings = detect(&[three_callers_calling_twice()], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(
            (found.numbers["callers"], found.numbers["calls"]),
            (3.0, 6.0)
        );
        // The third caller queued 20 ms in each round: 40 ms in all, not its longest one wait.
        assert_eq!(found.numbers["max_queued_ms"], 40.0);
        assert!(
            found.saving_nanos.abs_diff(40_000_000) < 10,
            "{}",
            found.saving_nanos
        );
    }

    #[test]
    fn waits_outside_a_call_to_the_sender_are_not_callers() {
        // The same waits in functions that did not call "Stock" (a token passed along, a
        // notification): nobody asked it anything.
        let mut spans = three_callers_in_line().spans;
        for span in &mut spans.spans {
            span.attributes.retain(|kv| kv.key != "rpc.service");
        }
        let trace = AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), spans);
        assert!(detect(&[trace], &Thresholds::default()).is_empty());
    }

    #[test]
    fn two_callers_or_a_short_queue_do_not_fire() {
        let trace = three_callers_in_line();
        let strict = Thresholds {
            min_callers: 4,
            ..Thresholds::default()
        };
        assert!(detect(std::slice::from_ref(&trace), &strict).is_empty());
        let patient = Thresholds {
            min_queued_nanos: 25_000_000,
            ..Thresholds::default()
        };
        assert!(detect(&[trace], &patient).is_empty());
    }

    /// "Stock" loads its table in `handle_continue/2` from 0 to 27 ms; three callers call at
    /// 0 ms and are served 1 ms each after it, at 28, 29 and 30 ms.
    fn three_callers_behind_a_load() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir shop.exs", 0, 40 * MS),
            life(2, "Stock", 0, 40 * MS),
            span(3, Some(2), "Stock.handle_continue/2", 0, 27 * MS),
        ];
        for (n, caller) in [10u8, 20, 30].into_iter().enumerate() {
            let served = (28 + n as u64) * MS;
            spans.push(life(caller, &format!("<0.{caller}.0>"), 0, 40 * MS));
            let mut call = span(caller + 1, Some(caller), "Stock.rate/1", 0, served);
            call.attributes.push(KeyValue::new("rpc.service", "Stock"));
            spans.push(call);
            let wait = span(caller + 2, Some(caller + 1), "receive", 0, served);
            spans.push(linked(wait, 2, MESSAGE, served, served));
            spans.push(span(
                4 + n as u8,
                Some(2),
                "Stock.handle_call/3",
                served - MS,
                served,
            ));
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn callers_waiting_behind_the_servers_own_work_are_told_that_work_not_to_partition() {
        let [found] = detect(&[three_callers_behind_a_load()], &Thresholds::default())
            .try_into()
            .expect("one finding");
        assert!(
            found.title.starts_with(
                "\"Stock\" kept its callers waiting while it ran \"Stock.handle_continue/2\": 3 processes"
            ),
            "{}",
            found.title
        );
        assert!(
            found
                .title
                .contains("(27.0 ms), not behind each other's calls"),
            "{}",
            found.title
        );
        assert!(
            found
                .recommendation
                .contains("partitioning \"Stock\" would not help")
        );
        // 27 ms of each wait was the load; the third caller also waited 2 ms for the others.
        assert_eq!(found.numbers["behind_other_work_ms"], 81.0);
        assert_eq!(found.numbers["max_queued_ms"], 29.0);
        // Without the load, the same callers queued behind each other: the usual wording.
        let [queued] = detect(&[three_callers_in_line()], &Thresholds::default())
            .try_into()
            .expect("one finding");
        assert!(
            queued.title.contains("behind other callers' calls"),
            "{}",
            queued.title
        );
        assert_eq!(queued.numbers["behind_other_work_ms"], 0.0);
    }

    /// "Stock" refreshing itself every 5 ms with work of 6 ms (`handle_info/2`, back to back
    /// from 0 to 36 ms), and one process calling it three times, one call at a time (at 0, 13
    /// and 25 ms), each answered when the refresh running at its end was done.
    fn calls_behind_a_periodic_refresh() -> AnalyzedTrace {
        calls_behind_work_asked_by(None)
    }

    /// The same, each refresh asked for by a message: from a timer (no recorded process sent
    /// it: `sender` none), or sent by process `sender` of the recording.
    fn calls_behind_work_asked_by(sender: Option<u8>) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir dashboard.exs", 0, 40 * MS),
            life(2, "Stock", 0, 40 * MS),
            life(10, "<0.10.0>", 0, 40 * MS),
        ];
        let mut at = 0;
        for n in 0..6u8 {
            // Each refresh's message, taken as the one before ended.
            let asked = span(60 + n, Some(2), "receive", at, at);
            spans.push(match sender {
                Some(sender) => linked(asked, sender, MESSAGE, at, 0),
                None => asked,
            });
            spans.push(span(
                20 + n,
                Some(2),
                "Stock.handle_info/2",
                at,
                at + 6 * MS,
            ));
            at += 6 * MS;
        }
        for (n, (asked, served)) in [(0, 12), (13, 24), (25, 36)].into_iter().enumerate() {
            let (asked, served) = (asked * MS, served * MS);
            let id = 40 + 3 * n as u8;
            let mut call = span(id, Some(10), "Stock.rate/1", asked, served + 10_000);
            call.attributes.push(KeyValue::new("rpc.service", "Stock"));
            spans.push(call);
            spans.push(span(
                id + 1,
                Some(2),
                "Stock.handle_call/3",
                served,
                served + 5_000,
            ));
            let wait = span(id + 2, Some(id), "receive", asked, served + 10_000);
            spans.push(linked(
                wait,
                id + 1,
                MESSAGE,
                served + 5_000,
                served + 5_000 - asked,
            ));
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn calls_a_state_machine_postponed_are_told_they_waited_for_it_to_leave_the_state() {
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        // The refreshing server as a state machine in `:disconnected`, each run an attempt,
        // and three more runs that only postponed a call (10 µs each).
        let mut spans = calls_behind_a_periodic_refresh().spans.spans;
        for s in spans.iter_mut().filter(|s| s.name == "Stock.handle_info/2") {
            s.name = "Stock.disconnected/3".into();
            s.attributes.extend([
                KeyValue::new(STATEM_STATE, ":disconnected"),
                KeyValue::new(processes::CALL_RETURN, "{:keep_state, %{attempts: 1}}"),
            ]);
        }
        for (n, at) in [(0u8, 1_000_000u64), (1, 13_000_000), (2, 25_000_000)] {
            let mut postponing = span(90 + n, Some(2), "Stock.disconnected/3", at, at + 10_000);
            postponing.attributes.extend([
                KeyValue::new(STATEM_STATE, ":disconnected"),
                KeyValue::new(
                    processes::CALL_RETURN,
                    "{:keep_state_and_data, [:postpone]}",
                ),
            ]);
            spans.push(postponing);
        }
        let trace = AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("one finding");
        // The six attempts are its work; the three postponements are not.
        assert!(
            found.title.contains("(6 times, up to 6.0 ms each)"),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                "\"Stock\" postponed 3 of its callers' calls in state \":disconnected\" and took them only when it left it: they waited for \"Stock.disconnected/3\" (6 runs in that state, up to 6.0 ms each)"
            ),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn calls_one_at_a_time_behind_work_that_came_again_and_again_are_told_it_came_too_fast() {
        let [found] = detect(&[calls_behind_a_periodic_refresh()], &Thresholds::default())
            .try_into()
            .expect("one finding");
        assert!(
            found.title.starts_with(
                "\"Stock\" kept its callers waiting while it ran \"Stock.handle_info/2\": one process waited for it (3 calls)"
            ),
            "{}",
            found.title
        );
        assert!(
            found
                .title
                .contains("times, up to 6.0 ms each), not behind"),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.starts_with(
                "Make \"Stock.handle_info/2\" cheaper or ask \"Stock\" for it less often"
            ),
            "{}",
            found.recommendation
        );
        assert!(found.recommendation.contains("Process.send_after/3"));
        // Asked for by the program's own messages (an event manager's notifications), the
        // advice is about their senders, not a timer.
        let [sent] = detect(
            &[calls_behind_work_asked_by(Some(10))],
            &Thresholds::default(),
        )
        .try_into()
        .expect("one finding");
        assert!(
            sent.recommendation.contains(
                "the messages asking for it came faster than it did it; send fewer (batch them), or have their senders wait for it"
            ),
            "{}",
            sent.recommendation
        );
        assert!(
            !sent.recommendation.contains("timer"),
            "{}",
            sent.recommendation
        );
        // Each call waited its whole time behind the refreshes: 12 + 11 + 11 ms.
        assert_eq!(found.numbers["behind_other_work_ms"], 34.0);
        assert_eq!(found.numbers["waiting_at_once"], 1.0);
        // Two such calls are not enough to say the process is behind its own work.
        let mut two = calls_behind_a_periodic_refresh().spans.spans;
        two.retain(|s| ![46, 47, 48].contains(&s.span_id.0[0]));
        let two = AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(two));
        assert!(detect(&[two], &Thresholds::default()).is_empty());
    }

    /// A pool ("Pool"): three callers check out at 0 ms; it has nothing free and defers its
    /// replies (its `handle_call/3` takes 0.1 ms each), then replies at 28, 29 and 30 ms from
    /// the `handle_cast/2` of another process's check-in (0.1 ms each). Idle between.
    fn three_callers_of_an_exhausted_pool() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir pool.exs", 0, 40 * MS),
            life(2, "Pool", 0, 40 * MS),
        ];
        for (n, caller) in [10u8, 20, 30].into_iter().enumerate() {
            let (n, replied) = (n as u64, (28 + n as u64) * MS);
            spans.push(life(caller, &format!("<0.{caller}.0>"), 0, 40 * MS));
            let mut call = span(caller + 1, Some(caller), "Pool.checkout/0", 0, replied);
            call.attributes.push(KeyValue::new("rpc.service", "Pool"));
            spans.push(call);
            let wait = span(caller + 2, Some(caller + 1), "receive", 0, replied);
            spans.push(linked(wait, 2, MESSAGE, replied, replied));
            let (at, id) = (n * MS / 10, 3 + n as u8);
            spans.push(span(id, Some(2), "Pool.handle_call/3", at, at + MS / 10));
            spans.push(span(
                id + 3,
                Some(2),
                "Pool.handle_cast/2",
                replied - MS / 10,
                replied,
            ));
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn callers_of_a_server_idle_until_another_process_lets_it_reply_are_not_queued_behind_it() {
        let findings = detect(
            &[three_callers_of_an_exhausted_pool()],
            &Thresholds::default(),
        );
        assert!(findings.is_empty(), "{findings:?}");
    }

    /// A store written as a bare receive loop ("Kv", life 2: no GenServer) asked four times in
    /// turn by one caller (life 10): each turn (`Kv.loop/1`, a tail call of the last) waits for
    /// the request, works until 10 ms after the call began, sends the reply from inside itself
    /// and calls the next turn 20 µs later — before the caller, 50 µs after its answer, asks
    /// again.
    fn one_caller_of_a_receive_loop() -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        use crate::processes::tests::life;
        use crate::tree::tests::span;
        const MS: u64 = 1_000_000;
        const US: u64 = 1_000;
        let mut spans = vec![
            span(1, None, "erl -s kv main", 0, 50 * MS),
            life(2, "Kv", 0, 50 * MS),
            life(10, "<0.10.0>", 0, 50 * MS),
        ];
        for n in 0..4u8 {
            let at = u64::from(n) * 10 * MS + 50 * US;
            let reply = u64::from(n + 1) * 10 * MS;
            let began = (u64::from(n) * 10 * MS + 20 * US).min(at);
            let mut call = span(20 + n, Some(10), "Kv.get/2", at, reply);
            call.attributes.push(KeyValue::new("rpc.service", "Kv"));
            let answer = span(40 + n, Some(20 + n), "receive", at, reply);
            let request = span(50 + n, Some(30 + n), "receive", began, at + US);
            spans.extend([
                call,
                linked(answer, 30 + n, MESSAGE, reply, reply - at),
                span(30 + n, Some(2), "Kv.loop/1", began, reply + 20 * US),
                linked(request, 20 + n, MESSAGE, at, at + US - began),
            ]);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn one_caller_of_a_loop_replying_from_inside_its_turn_queued_behind_nothing() {
        // Each turn goes on 20 µs after its reply: it ended after the caller's wait, but it is
        // the turn that served it, not work the caller queued behind.
        let findings = detect(&[one_caller_of_a_receive_loop()], &Thresholds::default());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    /// A rate limiter ("Limiter", life 2) whose timer ticks at 10, 20 and 30 ms (a `receive`
    /// no recorded process's message ended, then `handle_info/2`), and three callers (lives
    /// 10, 20, 30) calling it at 0 ms. `one_a_tick`: each tick answers one caller in turn (with
    /// `GenServer.reply/2`, from inside the callback); else the first answers all three.
    fn three_callers_of_a_timer(one_a_tick: bool) -> AnalyzedTrace {
        use crate::causality::tests::linked;
        use crate::processes::MESSAGE;
        use crate::processes::tests::life;
        use crate::tree::tests::{batch, span};
        use devtrace_model::KeyValue;
        const MS: u64 = 1_000_000;
        let mut spans = vec![
            span(1, None, "elixir limiter.exs", 0, 40 * MS),
            life(2, "Limiter", 0, 40 * MS),
        ];
        for tick in 0..3u8 {
            let at = u64::from(tick + 1) * 10 * MS;
            spans.push(span(40 + tick, Some(2), "receive", at - 9 * MS, at));
            spans.push(span(
                50 + tick,
                Some(2),
                "Limiter.handle_info/2",
                at,
                at + MS / 10,
            ));
        }
        for (n, caller) in [10u8, 20, 30].into_iter().enumerate() {
            let tick = if one_a_tick { n as u8 } else { 0 };
            let replied = u64::from(tick + 1) * 10 * MS + MS / 50;
            spans.push(life(caller, &format!("<0.{caller}.0>"), 0, 40 * MS));
            let mut call = span(caller + 1, Some(caller), "Limiter.acquire/0", 0, replied);
            call.attributes
                .push(KeyValue::new("rpc.service", "Limiter"));
            spans.push(call);
            let wait = span(caller + 2, Some(caller + 1), "receive", 0, replied);
            spans.push(linked(wait, 50 + tick, MESSAGE, replied, replied));
        }
        AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch(spans))
    }

    fn claimed_calls(trace: &AnalyzedTrace, claims: &Claims) -> Vec<String> {
        (0..trace.spans.spans.len())
            .filter(|&i| trace.span(i).name == "Limiter.acquire/0" && claims.is_claimed(0, i))
            .map(|i| processes::thread_name(trace, trace.tree.parent[i].unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn calls_a_server_answers_one_a_tick_of_its_timer_are_held_by_it_not_by_their_callers() {
        let trace = three_callers_of_a_timer(true);
        let (findings, claims) =
            detect_claiming(std::slice::from_ref(&trace), &Thresholds::default());
        assert!(findings.is_empty(), "idle between ticks: {findings:?}");
        // The second and third callers waited through a tick that answered another.
        assert_eq!(claimed_calls(&trace, &claims), ["<0.20.0>", "<0.30.0>"]);
    }

    #[test]
    fn calls_one_tick_answers_together_are_not_held() {
        // A batcher: whoever waited is answered at the next tick, so more callers at once
        // would be answered as soon.
        let trace = three_callers_of_a_timer(false);
        let (_, claims) = detect_claiming(std::slice::from_ref(&trace), &Thresholds::default());
        assert!(claimed_calls(&trace, &claims).is_empty());
    }
}
