//! What a BEAM recording says beyond the builder's spans, put on them once they are built:
//! the processes' links and unlinks (span events), the supervision tree (which supervisor
//! started a process, and how many times it restarted that child), the causes of exits (a
//! monitor's `'DOWN'` or a trapped `'EXIT'` linked to the process that went down, a process
//! taken down by a linked one's exit), a process's initial call and a `gen_statem`'s state
//! name after each callback.
//!
//! These need the whole recording (a child's restart is known when its predecessor's exit
//! and its own spawn are both read; an exit's cause may be read after its effect), so they are
//! computed from the reader's [`Life`] records after the last pass, rather than as records the
//! builder replays; the links added here are [`LinkKind::ProcessExit`] links to the cause's
//! `process` span. Output: plain values by span id, which the caller turns into attributes
//! and events.

use std::collections::{HashMap, HashSet};

use super::{BeamReader, Child, Ending, Life, LinkChange, PROCESS_CODE, RECEIVE_CODE};
use crate::names::Names;
use crate::ring::LinkKind;
use crate::{OutLink, OutSpan};

/// On a `receive`: the message that ended it was another process's call request (OTP's
/// `{'$gen_call', From, Request}`), so it answered no call of the receiving process's own.
pub const REQUEST: &str = "devtrace.beam.request";
/// On a `call request` event: the process the request went to (its thread name).
pub const ASKED: &str = "devtrace.beam.asked";
/// The event on the innermost span open when a process sent its last call request.
pub const CALL_REQUEST_EVENT: &str = "call request";
/// The supervisor that spawned a process: its thread name.
pub const SUPERVISOR: &str = "devtrace.beam.supervisor";
/// How many times its supervisor had restarted this child before (1: the first restart).
pub const RESTART: &str = "devtrace.beam.restart";
/// The function a process was started in (`Cart.Server.init/1` for a GenServer, as
/// proc_lib's `'$initial_call'` says).
pub const INITIAL_CALL: &str = "devtrace.beam.initial_call";
/// The linked process whose exit took this one down (its thread name).
pub const KILLED_BY: &str = "devtrace.beam.killed_by";
/// A `gen_statem`'s state name after a callback.
pub const STATEM_STATE: &str = "devtrace.beam.statem.state";
/// A `link`/`unlink` event's other process (its thread name).
pub const LINK_PROCESS: &str = "devtrace.beam.link.process";
/// The process that made the link or removed it (its thread name).
pub const LINK_BY: &str = "devtrace.beam.link.by";

/// The initial calls of supervisors (proc_lib's `'$initial_call'` of a process started by
/// `supervisor:start_link`, `Supervisor.start_link` and `DynamicSupervisor.start_link`).
const SUPERVISOR_CALLS: [&str; 2] = ["supervisor:init/1", "DynamicSupervisor.init/1"];

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attr {
    Text(String),
    Int(i64),
    Bool(bool),
}

/// A span event: at `ts` (monotonic nanoseconds), named `link`, `unlink` or `call request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanEvent {
    pub ts: u64,
    pub name: &'static str,
    pub attributes: Vec<(&'static str, Attr)>,
}

/// The attributes and events to add to the built spans, by span id.
#[derive(Debug, Default)]
pub struct Annotations {
    pub attributes: HashMap<u64, Vec<(&'static str, Attr)>>,
    pub events: HashMap<u64, Vec<SpanEvent>>,
    /// The `receive` spans another process's call request ended ([`REQUEST`]), by span id.
    pub requests: HashSet<u64>,
}

impl Annotations {
    fn attribute(&mut self, span: u64, key: &'static str, value: Attr) {
        self.attributes.entry(span).or_default().push((key, value));
    }
}

/// The texts a recording's names log holds.
pub struct Texts<'a> {
    pub names: &'a Names,
    /// Value summaries by id (exit reasons among them).
    pub values: &'a HashMap<u32, String>,
    /// `gen_statem` state names by the id of the return value they go with.
    pub statem_states: &'a HashMap<u32, String>,
}

/// What `reader` learned beyond `spans` (the builder's spans of the same recording): adds
/// the exit links to `spans` and returns the attributes and events to add. Call it before
/// spans are left out, so links to them can be dropped with them.
pub fn annotate(reader: &BeamReader, spans: &mut [OutSpan], texts: &Texts) -> Annotations {
    let lives: HashMap<u64, &Life> = reader
        .processes
        .iter()
        .map(|(key, state)| (*key, &state.life))
        .collect();
    let process_spans: HashMap<u64, usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.code == PROCESS_CODE)
        .map(|(i, s)| (s.stream, i))
        .collect();
    let tree = Tree {
        lives: &lives,
        texts,
        senders: message_senders(spans),
    };
    let mut out = Annotations::default();
    for (key, attributes) in tree.process_attributes() {
        if let Some(&i) = process_spans.get(&key) {
            out.attributes
                .entry(spans[i].span_id)
                .or_default()
                .extend(attributes);
        }
    }
    for (&key, &i) in &process_spans {
        let span_id = spans[i].span_id;
        if let Some(life) = lives.get(&key) {
            let events = tree.link_events(key, life);
            if !events.is_empty() {
                out.events.insert(span_id, events);
            }
        }
    }
    killed_by_links(&tree, spans, &process_spans, &mut out);
    exits_heard(&lives, spans, &process_spans);
    for s in spans.iter() {
        if let Some(state) = texts
            .statem_states
            .get(&s.values[1])
            .filter(|_| s.values[1] != 0)
        {
            out.attribute(s.span_id, STATEM_STATE, Attr::Text(state.clone()));
        }
    }
    mark_requests(reader, spans, &mut out);
    last_requests(&tree, spans, &mut out);
    out
}

/// Each process's last call request, as an event of the innermost span open when it was sent
/// ([`CALL_REQUEST_EVENT`]): whom a call still waiting at the end asked, though the request
/// was never taken. The last only: an earlier call went on, so it was answered or given up.
fn last_requests(tree: &Tree, spans: &[OutSpan], out: &mut Annotations) {
    let asked: HashMap<u64, (u64, u64)> = tree
        .lives
        .iter()
        .filter_map(|(&key, life)| Some((key, life.last_asked?)))
        .collect();
    // A span nested in another starts no earlier and ends no later; a process's life is the
    // outermost of those that begin and end with it.
    let depth = |s: &OutSpan| (s.start, std::cmp::Reverse(s.end), s.code != PROCESS_CODE);
    let mut innermost: HashMap<u64, &OutSpan> = HashMap::new();
    for s in spans.iter().filter(|s| s.code != RECEIVE_CODE) {
        let Some(&(ts, _)) = asked.get(&s.stream) else {
            continue;
        };
        let inner = innermost
            .get(&s.stream)
            .is_none_or(|i| depth(i) <= depth(s));
        if s.start <= ts && ts <= s.end && inner {
            innermost.insert(s.stream, s);
        }
    }
    for (stream, span) in innermost {
        let (ts, to) = asked[&stream];
        out.events.entry(span.span_id).or_default().push(SpanEvent {
            ts,
            name: CALL_REQUEST_EVENT,
            attributes: vec![(ASKED, Attr::Text(tree.name(to)))],
        });
    }
}

/// Marks the waits another process's call request ended ([`REQUEST`]).
fn mark_requests(reader: &BeamReader, spans: &[OutSpan], out: &mut Annotations) {
    let taken = reader.requests_taken();
    let waits = spans.iter().filter(|s| s.code == RECEIVE_CODE);
    for wait in waits.filter(|s| taken.contains(&(s.stream, s.end))) {
        out.requests.insert(wait.span_id);
        out.attribute(wait.span_id, REQUEST, Attr::Bool(true));
    }
}

/// The processes' lives, read together.
struct Tree<'a> {
    lives: &'a HashMap<u64, &'a Life>,
    /// Who sent each message received: (receiver, arrival) → sender.
    senders: HashMap<(u64, u64), u64>,
    texts: &'a Texts<'a>,
}

impl Tree<'_> {
    fn name(&self, key: u64) -> String {
        self.texts
            .names
            .threads
            .get(&key)
            .cloned()
            .unwrap_or_else(|| format!("process {key:x}"))
    }

    fn code_name(&self, code: u32) -> Option<String> {
        self.texts.names.codes.get(&code).map(|c| c.span_name())
    }

    /// Each spawned process's parent and spawn record: from the parent's spawn when it was
    /// recorded, else from the process's identity records (a window that lost its spawn).
    fn spawns(&self) -> HashMap<u64, (u64, Child)> {
        let from_identity = self.lives.iter().filter_map(|(&key, life)| {
            let child = Child {
                key,
                initial_call: life.identity.initial_call,
                answers: Vec::new(),
                acks: Vec::new(),
                at: 0,
            };
            Some((key, (life.identity.parent?, child)))
        });
        let from_spawns = self.lives.iter().flat_map(|(&parent, life)| {
            life.children
                .iter()
                .map(move |c| (c.key, (parent, c.clone())))
        });
        from_identity.chain(from_spawns).collect()
    }

    /// Each process's initial call, by its spawn, its identity, or its children's identity.
    fn initial_calls(&self, spawns: &HashMap<u64, (u64, Child)>) -> HashMap<u64, u32> {
        let told_by_children = self
            .lives
            .values()
            .filter_map(|l| Some((l.identity.parent?, l.identity.parent_call)));
        let own = spawns.iter().map(|(&k, (_, c))| (k, c.initial_call));
        told_by_children
            .chain(own)
            .filter(|(_, code)| *code != 0)
            .collect()
    }

    /// The initial call, supervisor and restart count of every spawned process.
    fn process_attributes(&self) -> HashMap<u64, Vec<(&'static str, Attr)>> {
        let spawns = self.spawns();
        let initial_calls = self.initial_calls(&spawns);
        let mut out: HashMap<u64, Vec<(&'static str, Attr)>> = HashMap::new();
        for (&child, (_, spawn)) in &spawns {
            if let Some(call) = self.code_name(spawn.initial_call) {
                out.entry(child)
                    .or_default()
                    .push((INITIAL_CALL, Attr::Text(call)));
            }
        }
        // Each parent's children in spawn order: those whose spawn it recorded, then those
        // known only by their identity (spawned before the window).
        let mut children: HashMap<u64, Vec<Child>> = HashMap::new();
        for (&parent, life) in self.lives {
            children
                .entry(parent)
                .or_default()
                .extend(life.children.iter().cloned());
        }
        for (&key, (parent, child)) in &spawns {
            let known = children.entry(*parent).or_default();
            if !known.iter().any(|c| c.key == key) {
                known.insert(0, child.clone());
            }
        }
        for (parent, children) in children {
            let is_supervisor = initial_calls
                .get(&parent)
                .and_then(|&code| self.code_name(code))
                .is_some_and(|call| SUPERVISOR_CALLS.contains(&call.as_str()));
            if !is_supervisor {
                continue;
            }
            let supervisor = self.name(parent);
            for child in &children {
                out.entry(child.key)
                    .or_default()
                    .push((SUPERVISOR, Attr::Text(supervisor.clone())));
            }
            for (child, restart) in self.restarts(parent, &children) {
                out.entry(child)
                    .or_default()
                    .push((RESTART, Attr::Int(restart as i64)));
            }
        }
        out
    }

    /// The children of one supervisor started in answer to the exit of an earlier child of
    /// the same initial call (and the same registered name, when both registered one): each
    /// with its restart count. A restart is the supervisor's answer to the exit it heard (its
    /// `'EXIT'`), before any other message than the start acknowledgements of the children it
    /// starts in answer (a `:one_for_all` supervisor starts them all again, one after
    /// another); a child of the same kind started on request (a `start_child` call, a task)
    /// is not one.
    fn restarts(&self, parent: u64, children: &[Child]) -> Vec<(u64, u32)> {
        let initial_calls: HashMap<u64, u32> =
            children.iter().map(|c| (c.key, c.initial_call)).collect();
        let registered = |key: u64| {
            let life = self.lives.get(&key);
            life.is_some_and(|l| l.registered).then(|| self.name(key))
        };
        let mut count: HashMap<u64, u32> = HashMap::new();
        let mut answered: HashSet<u64> = HashSet::new();
        let mut out = Vec::new();
        let acknowledged = |child: &Child| {
            child
                .acks
                .iter()
                .all(|&(ts, from)| self.senders.get(&(parent, ts)) == Some(&from))
        };
        for (i, child) in children.iter().enumerate() {
            if !acknowledged(child) {
                continue;
            }
            let name = registered(child.key);
            let same = |before: &u64| {
                let other = registered(*before);
                initial_calls.get(before) == Some(&child.initial_call)
                    && (name.is_none() || other.is_none() || other == name)
                    && !answered.contains(before)
            };
            let failed = self.failed_starts(&children[..i], child);
            let mut candidates = child.answers.iter().copied().chain(failed);
            if let Some(before) = candidates.find(|b| same(b)) {
                answered.insert(before);
                let restart = count.get(&before).copied().unwrap_or(0) + 1;
                count.insert(child.key, restart);
                out.push((child.key, restart));
            }
        }
        out
    }

    /// The children spawned before `child` (`earlier`, latest first) that had failed to start
    /// by the time it was spawned, while the parent was answering exits (`child.answers` not
    /// empty): a supervisor whose child fails in `init/1` starts it again at once, by a cast to
    /// itself (`try_again_restart`), often before it hears that child's exit — the failed
    /// child, acknowledging its error, is still exiting when the next is spawned.
    fn failed_starts<'c>(
        &'c self,
        earlier: &'c [Child],
        child: &'c Child,
    ) -> impl Iterator<Item = u64> + 'c {
        // How long after the next child's spawn a failed child may still be exiting.
        const EXITING_NS: u64 = 1_000_000;
        let restarting = !child.answers.is_empty() && child.at != 0;
        earlier
            .iter()
            .rev()
            .filter(move |_| restarting)
            .filter(move |before| {
                let exit = self.lives.get(&before.key).and_then(|l| l.exit);
                exit.is_some_and(|e| e.error_type != 0 && e.ts <= child.at + EXITING_NS)
            })
            .map(|before| before.key)
    }

    /// The `link` and `unlink` events of process `key`.
    /// (A link the other process's exit removed is no event: its exit is the news.)
    fn link_events(&self, key: u64, life: &Life) -> Vec<SpanEvent> {
        let removed_by_exit = |change: &LinkChange| {
            !change.linked
                && !change.by_self
                && self
                    .lives
                    .get(&change.other)
                    .and_then(|l| l.exit)
                    .is_some_and(|e| e.ts <= change.ts)
        };
        life.links
            .iter()
            .filter(|change| !removed_by_exit(change))
            .map(|change| SpanEvent {
                ts: change.ts,
                name: if change.linked { "link" } else { "unlink" },
                attributes: vec![
                    (LINK_PROCESS, Attr::Text(self.name(change.other))),
                    (
                        LINK_BY,
                        Attr::Text(self.name(if change.by_self { key } else { change.other })),
                    ),
                ],
            })
            .collect()
    }

    /// The processes linked to `life`'s process when it exited.
    fn linked_at_exit(life: &Life) -> HashSet<u64> {
        let mut linked = HashSet::new();
        for change in &life.links {
            if change.linked {
                linked.insert(change.other);
            } else {
                linked.remove(&change.other);
            }
        }
        linked
    }

    /// The linked process whose abnormal exit, with the same reason, came before process
    /// `life`'s own abnormal exit: the exit signal that took it down (the latest such).
    fn killed_by(&self, life: &Life) -> Option<(u64, Ending)> {
        let ending = life.exit.filter(|e| e.error_type != 0)?;
        let reason = self.texts.values.get(&ending.reason)?;
        Self::linked_at_exit(life)
            .into_iter()
            .filter_map(|other| Some((other, self.lives.get(&other)?.exit?)))
            .filter(|(_, e)| e.error_type != 0 && e.ts <= ending.ts)
            .filter(|(_, e)| self.texts.values.get(&e.reason) == Some(reason))
            .max_by_key(|(_, e)| e.ts)
    }
}

/// A process taken down by a linked process's exit: [`KILLED_BY`] and a link to that
/// process's span.
fn killed_by_links(
    tree: &Tree,
    spans: &mut [OutSpan],
    process_spans: &HashMap<u64, usize>,
    out: &mut Annotations,
) {
    for (&key, &i) in process_spans {
        let Some((other, ending)) = tree.lives.get(&key).and_then(|l| tree.killed_by(l)) else {
            continue;
        };
        out.attribute(spans[i].span_id, KILLED_BY, Attr::Text(tree.name(other)));
        if let Some(&cause) = process_spans.get(&other) {
            let link = exit_link(&spans[cause], ending.ts, 0);
            spans[i].links.push(link);
        }
    }
}

/// The sender of each message received whose send was recorded: (receiver, arrival) →
/// sender.
fn message_senders(spans: &[OutSpan]) -> HashMap<(u64, u64), u64> {
    super::calls::messages_received(spans)
        .into_iter()
        .map(|m| ((m.wait.stream, m.wait.end), m.from))
        .collect()
}

/// Each `receive` that an exit's message ended (a `'DOWN'`, a trapped `'EXIT'`) linked to
/// the span of the process that went down, when it had exited by then.
fn exits_heard(
    lives: &HashMap<u64, &Life>,
    spans: &mut [OutSpan],
    process_spans: &HashMap<u64, usize>,
) {
    let receives: HashMap<(u64, u64), usize> = spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.code == RECEIVE_CODE)
        .map(|(i, s)| ((s.stream, s.end), i))
        .collect();
    for (&key, life) in lives {
        for &(ts, dead) in &life.exits_heard {
            let ending = lives.get(&dead).and_then(|l| l.exit).filter(|e| e.ts <= ts);
            let (Some(ending), Some(&wait), Some(&cause)) =
                (ending, receives.get(&(key, ts)), process_spans.get(&dead))
            else {
                continue;
            };
            let waited = ending.ts.saturating_sub(spans[wait].start);
            let link = exit_link(&spans[cause], ending.ts, waited);
            spans[wait].links.push(link);
        }
    }
}

fn exit_link(cause: &OutSpan, ts: u64, wait_ns: u64) -> OutLink {
    OutLink {
        kind: LinkKind::ProcessExit,
        trace_id: cause.trace_id,
        span_id: cause.span_id,
        cause_code: PROCESS_CODE,
        cause_ts: ts,
        wait_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beam::tests::stream;
    use crate::beam::{BeamKind, beam_meta, exit_payload, message_meta};
    use crate::builder::{Builder, BuilderOptions};
    use crate::names::CodeInfo;
    use crate::ring::{Event, EventKind, StreamEvents, pack_meta};

    const MS: u64 = 1_000_000;
    const MAIN: u64 = 0x1;
    const SUP: u64 = 0x10;
    const OTHER: u64 = 0x40;
    const OTHER_AGAIN: u64 = 0x41;
    const W1: u64 = 0x21;
    const W2: u64 = 0x22;
    const W3: u64 = 0x23;
    const ANCHOR: u64 = 0x31;
    const LINKED: u64 = 0x32;
    const UNLINKER: u64 = 0x33;
    const ORDERS: u64 = 0x51;
    const WAREHOUSE: u64 = 0x52;
    /// Code ids: the supervisor's initial call, the workers', another child's, a function.
    const SUP_INIT: u32 = 4;
    const WORKER_INIT: u32 = 5;
    const OTHER_INIT: u32 = 6;
    const WORK: u32 = 7;
    /// Value ids of exit reasons (`:cut` twice: the anchor's, and the one its link passed on).
    const CRASH: u32 = 50;
    const CUT: u32 = 51;
    const CUT_PASSED: u32 = 52;
    const NORMAL: u32 = 53;

    fn ev(ts: u64, meta: u64) -> Event {
        let mut e = crate::ring::unpack(0, meta).unwrap();
        e.ts = ts;
        e
    }

    fn beam(ts: u64, kind: BeamKind, payload: u64) -> Event {
        ev(ts, beam_meta(kind, payload))
    }

    fn on(process: u64, ts: u64, mut records: Vec<Event>) -> Vec<Event> {
        records.insert(0, beam(ts, BeamKind::Process, process));
        records
    }

    fn spawn(ts: u64, child: u64, initial_call: u32) -> [Event; 2] {
        [
            beam(ts, BeamKind::Spawn, child),
            beam(ts, BeamKind::SpawnCall, initial_call as u64),
        ]
    }

    fn crash(ts: u64, reason: u32) -> Event {
        beam(ts, BeamKind::Exit, exit_payload(reason, Some(3)))
    }

    /// Main starts a supervisor whose worker crashes twice (restarted each time: the
    /// supervisor hears of each exit and starts the next) beside another child, which ends and
    /// is started again on request (a message, then the spawn: no restart); main monitors the
    /// first worker. Then `ANCHOR` is cut, taking `LINKED`
    /// down with it; `UNLINKER` had linked and unlinked, and lives on.
    fn recording() -> Vec<StreamEvents> {
        let mut main = on(MAIN, 0, spawn(0, SUP, SUP_INIT).to_vec());
        main.extend(on(
            MAIN,
            9 * MS,
            vec![beam(9 * MS, BeamKind::ExitHeard, W1)],
        ));
        main.extend(spawn(20 * MS, ANCHOR, 1));
        main.extend(spawn(20 * MS, LINKED, 1));
        main.extend(spawn(20 * MS, UNLINKER, 1));
        let mut sup = on(SUP, MS, spawn(MS, W1, WORKER_INIT).to_vec());
        sup.extend(spawn(MS, OTHER, OTHER_INIT));
        sup.push(beam(10 * MS, BeamKind::ExitHeard, W1));
        sup.extend(spawn(11 * MS, W2, WORKER_INIT));
        sup.push(beam(15 * MS, BeamKind::ExitHeard, W2));
        sup.extend(spawn(16 * MS, W3, WORKER_INIT));
        sup.push(beam(18 * MS, BeamKind::ExitHeard, OTHER));
        sup.push(ev(19 * MS, message_meta(EventKind::Effect, 0x99)));
        sup.extend(spawn(19 * MS, OTHER_AGAIN, OTHER_INIT));
        let mut workers = on(W1, 2 * MS, vec![beam(2 * MS, BeamKind::GettingLinked, SUP)]);
        workers.push(ev(3 * MS, pack_meta(EventKind::Call, WORK, 0)));
        workers.push(crash(8 * MS, CRASH));
        workers.extend(on(W2, 12 * MS, vec![crash(15 * MS, CRASH)]));
        workers.extend(on(W3, 17 * MS, vec![beam(17 * MS, BeamKind::Register, 0)]));
        workers.extend(on(
            OTHER,
            17 * MS,
            vec![
                ev(17 * MS, pack_meta(EventKind::Call, WORK, 0)),
                beam(18 * MS, BeamKind::Exit, exit_payload(NORMAL, None)),
            ],
        ));
        workers.extend(on(
            OTHER_AGAIN,
            20 * MS,
            vec![ev(20 * MS, pack_meta(EventKind::Call, WORK, 0))],
        ));
        let links = [
            on(LINKED, 21 * MS, vec![beam(21 * MS, BeamKind::Link, ANCHOR)]),
            on(
                UNLINKER,
                22 * MS,
                vec![beam(22 * MS, BeamKind::Link, ANCHOR)],
            ),
            vec![beam(23 * MS, BeamKind::Unlink, ANCHOR)],
            on(ANCHOR, 24 * MS, vec![crash(24 * MS, CUT)]),
            on(LINKED, 25 * MS, vec![crash(25 * MS, CUT_PASSED)]),
            on(
                UNLINKER,
                26 * MS,
                vec![beam(26 * MS, BeamKind::Exit, exit_payload(NORMAL, None))],
            ),
        ];
        vec![
            stream(1, main),
            stream(2, sup),
            stream(3, workers),
            stream(4, links.concat()),
        ]
    }

    fn names() -> Names {
        let code = |module: &str, qualname: &str| CodeInfo {
            qualname: qualname.to_owned(),
            module: module.to_owned(),
            ..Default::default()
        };
        let mut names = Names::default();
        names.codes.insert(SUP_INIT, code("", "supervisor:init/1"));
        names.codes.insert(WORKER_INIT, code("Flaky", "init/1"));
        names.codes.insert(OTHER_INIT, code("Other", "init/1"));
        for (key, name) in [
            (MAIN, "<0.1.0>"),
            (SUP, "App.Sup"),
            (W3, "Flaky"),
            (ANCHOR, "anchor"),
            (ORDERS, "Orders"),
            (WAREHOUSE, "Warehouse"),
        ] {
            names.threads.insert(key, name.to_owned());
        }
        names
    }

    struct Annotated {
        spans: Vec<OutSpan>,
        out: Annotations,
    }

    impl Annotated {
        fn life(&self, key: u64) -> &OutSpan {
            self.spans
                .iter()
                .find(|s| s.code == PROCESS_CODE && s.stream == key)
                .unwrap_or_else(|| panic!("no process span of {key:#x}"))
        }

        fn attribute(&self, key: u64, name: &str) -> Option<Attr> {
            let attributes = self.out.attributes.get(&self.life(key).span_id)?;
            attributes
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }

        fn exit_links(&self, span: &OutSpan) -> Vec<u64> {
            let links = span
                .links
                .iter()
                .filter(|l| l.kind == LinkKind::ProcessExit);
            links.map(|l| l.span_id).collect()
        }
    }

    fn annotated() -> Annotated {
        annotated_from(recording())
    }

    fn annotated_from(recording: Vec<StreamEvents>) -> Annotated {
        let mut reader = BeamReader::new();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        for s in reader.split(&recording) {
            builder.feed(&s, &|_| None);
        }
        builder.finish_open();
        let mut spans = builder.take_spans();
        let values: HashMap<u32, String> = [
            (CRASH, "{%RuntimeError{}, []}"),
            (CUT, ":cut"),
            (CUT_PASSED, ":cut"),
            (NORMAL, ":normal"),
        ]
        .into_iter()
        .map(|(id, text)| (id, text.to_owned()))
        .collect();
        let names = names();
        let texts = Texts {
            names: &names,
            values: &values,
            statem_states: &HashMap::new(),
        };
        let out = annotate(&reader, &mut spans, &texts);
        Annotated { spans, out }
    }

    fn text(value: &str) -> Option<Attr> {
        Some(Attr::Text(value.to_owned()))
    }

    /// Two servers calling each other (a deadlock): Orders, in a callback (`WORK`), sends
    /// Warehouse a call request at 2 ms; Warehouse takes it and, in its callback, sends Orders
    /// one at 3 ms, which the VM tells Orders of at once (a traced process hears of a message
    /// when it arrives), though Orders goes on waiting for Warehouse's answer.
    #[test]
    fn call_requests_mark_the_waits_they_end_and_say_where_the_last_one_went() {
        use crate::beam::CALL_REQUEST_BIT;
        let request = |ts, key| ev(ts, message_meta(EventKind::Cause, key | CALL_REQUEST_BIT));
        let arrival = |ts, key| ev(ts, message_meta(EventKind::Effect, key | CALL_REQUEST_BIT));
        let orders = on(
            ORDERS,
            MS,
            vec![
                ev(MS, pack_meta(EventKind::Call, WORK, 0)),
                request(2 * MS, 0x61),
                beam(2 * MS, BeamKind::Asked, WAREHOUSE),
                arrival(3 * MS, 0x62),
            ],
        );
        let warehouse = on(
            WAREHOUSE,
            MS,
            vec![
                arrival(2 * MS, 0x61),
                ev(2 * MS, pack_meta(EventKind::Call, WORK, 0)),
                request(3 * MS, 0x62),
                beam(3 * MS, BeamKind::Asked, ORDERS),
            ],
        );
        let a = annotated_from(vec![stream(1, orders), stream(2, warehouse)]);
        let span_of = |process: u64, code: u32| {
            a.spans
                .iter()
                .find(|s| s.stream == process && s.code == code)
                .unwrap_or_else(|| panic!("no span {code} of {process:#x}"))
        };
        for process in [ORDERS, WAREHOUSE] {
            let wait = span_of(process, RECEIVE_CODE);
            assert!(a.out.requests.contains(&wait.span_id), "{process:#x}");
            assert_eq!(
                a.out.attributes[&wait.span_id],
                vec![(REQUEST, Attr::Bool(true))]
            );
        }
        for (process, at, to) in [(ORDERS, 2 * MS, "Warehouse"), (WAREHOUSE, 3 * MS, "Orders")] {
            let callback = span_of(process, WORK);
            assert_eq!(
                a.out.events[&callback.span_id],
                vec![SpanEvent {
                    ts: at,
                    name: CALL_REQUEST_EVENT,
                    attributes: vec![(ASKED, text(to).unwrap())],
                }],
                "{process:#x}"
            );
        }
    }

    #[test]
    fn a_supervisors_children_name_it_and_count_their_restarts() {
        let a = annotated();
        for child in [W1, W2, W3, OTHER] {
            assert_eq!(
                a.attribute(child, SUPERVISOR),
                text("App.Sup"),
                "{child:#x}"
            );
        }
        assert_eq!(a.attribute(W1, RESTART), None, "the first start");
        assert_eq!(a.attribute(W2, RESTART), Some(Attr::Int(1)));
        assert_eq!(
            a.attribute(W3, RESTART),
            Some(Attr::Int(2)),
            "registered now, same start"
        );
        assert_eq!(a.attribute(OTHER, RESTART), None, "another child");
        assert_eq!(
            a.attribute(OTHER_AGAIN, RESTART),
            None,
            "started again on request, not in answer to the exit"
        );
        assert_eq!(a.attribute(OTHER_AGAIN, SUPERVISOR), text("App.Sup"));
        assert_eq!(a.attribute(W2, INITIAL_CALL), text("Flaky.init/1"));
        assert_eq!(a.attribute(SUP, INITIAL_CALL), text("supervisor:init/1"));
        assert_eq!(
            a.attribute(SUP, SUPERVISOR),
            None,
            "started by a plain process"
        );
        assert_eq!(a.attribute(ANCHOR, SUPERVISOR), None);
    }

    /// A `:one_for_all` supervisor: `W1` crashes; the supervisor stops its sibling `OTHER`
    /// (its `'EXIT'` and `'DOWN'`), then starts both again, each acknowledging its start (a
    /// message) before the next is spawned. Then `W2` crashes; the supervisor starts a task
    /// (no acknowledgement), takes a request (a message from main) and starts a worker.
    fn one_for_all_recording() -> Vec<StreamEvents> {
        let mut main = on(MAIN, 0, spawn(0, SUP, SUP_INIT).to_vec());
        main.push(ev(30 * MS, message_meta(EventKind::Cause, 0x98)));
        let mut sup = on(SUP, MS, spawn(MS, W1, WORKER_INIT).to_vec());
        sup.push(ev(2 * MS, message_meta(EventKind::Effect, 0x90)));
        sup.extend(spawn(2 * MS, OTHER, OTHER_INIT));
        sup.push(ev(3 * MS, message_meta(EventKind::Effect, 0x91)));
        sup.push(beam(10 * MS, BeamKind::ExitHeard, W1));
        sup.push(beam(11 * MS, BeamKind::ExitHeard, OTHER));
        sup.push(beam(11 * MS, BeamKind::ExitHeard, OTHER));
        sup.extend(spawn(12 * MS, W2, WORKER_INIT));
        sup.push(ev(13 * MS, message_meta(EventKind::Effect, 0x92)));
        sup.extend(spawn(13 * MS, OTHER_AGAIN, OTHER_INIT));
        sup.push(ev(14 * MS, message_meta(EventKind::Effect, 0x93)));
        sup.push(beam(20 * MS, BeamKind::ExitHeard, W2));
        sup.extend(spawn(21 * MS, LINKED, WORK));
        sup.push(ev(30 * MS, message_meta(EventKind::Effect, 0x98)));
        sup.extend(spawn(31 * MS, W3, WORKER_INIT));
        let ack = |ts, key| ev(ts, message_meta(EventKind::Cause, key));
        let mut workers = on(W1, 2 * MS, vec![ack(2 * MS, 0x90), crash(10 * MS, CRASH)]);
        workers.extend(on(
            OTHER,
            3 * MS,
            vec![ack(3 * MS, 0x91), crash(11 * MS, CUT)],
        ));
        workers.extend(on(
            W2,
            12 * MS,
            vec![ack(13 * MS, 0x92), crash(20 * MS, CRASH)],
        ));
        workers.extend(on(
            LINKED,
            21 * MS,
            vec![ev(22 * MS, pack_meta(EventKind::Call, WORK, 0))],
        ));
        workers.extend(on(OTHER_AGAIN, 13 * MS, vec![ack(14 * MS, 0x93)]));
        workers.extend(on(
            W3,
            31 * MS,
            vec![ev(32 * MS, pack_meta(EventKind::Call, WORK, 0))],
        ));
        three_streams(main, sup, workers)
    }

    #[test]
    fn a_supervisor_restarting_all_its_children_restarts_each_after_the_others_ack() {
        let a = annotated_from(one_for_all_recording());
        assert_eq!(
            a.attribute(W2, RESTART),
            Some(Attr::Int(1)),
            "the crashed one"
        );
        assert_eq!(
            a.attribute(OTHER_AGAIN, RESTART),
            Some(Attr::Int(1)),
            "its sibling, started after the first one's acknowledgement"
        );
        assert_eq!(
            a.attribute(W3, RESTART),
            None,
            "started on request: the message before it came from main, not from the task"
        );
    }

    /// Main's, the supervisor's and the workers' records as the streams 1, 2 and 3.
    fn three_streams(main: Vec<Event>, sup: Vec<Event>, workers: Vec<Event>) -> Vec<StreamEvents> {
        [(1, main), (2, sup), (3, workers)]
            .into_iter()
            .map(|(id, events)| StreamEvents {
                stream: id,
                tid: id,
                first_seq: 0,
                events,
                lost: 0,
            })
            .collect()
    }

    /// `W1` crashes; the supervisor starts `W2`, which fails in its `init/1`: its
    /// acknowledgement (an error), then the supervisor casts itself `try_again_restart`, hears
    /// `W2`'s exit, takes its own cast and starts `W3`.
    /// `W1` crashes; the supervisor starts `W2`, which fails in its `init/1` (acknowledging its
    /// error when `acked`: a traced run sees the supervisor take it, probes in its modules do
    /// not); the supervisor casts itself `try_again_restart`, takes its own cast and starts
    /// `W3`. `exit_heard_first`: `W2` exited and the supervisor heard it before its cast, else
    /// `W2` was still exiting when `W3` was spawned, its exit heard after.
    fn failed_restart_recording(exit_heard_first: bool, acked: bool) -> Vec<StreamEvents> {
        let main = on(MAIN, 0, spawn(0, SUP, SUP_INIT).to_vec());
        let mut sup = on(SUP, MS, spawn(MS, W1, WORKER_INIT).to_vec());
        sup.push(beam(10 * MS, BeamKind::ExitHeard, W1));
        sup.extend(spawn(11 * MS, W2, WORKER_INIT));
        if acked {
            sup.push(ev(12 * MS, message_meta(EventKind::Effect, 0x92)));
        }
        sup.push(ev(12 * MS + 10, message_meta(EventKind::Cause, 0x97)));
        let w2_exit = if exit_heard_first {
            13 * MS
        } else {
            14 * MS + MS / 2
        };
        if exit_heard_first {
            sup.push(beam(w2_exit, BeamKind::ExitHeard, W2));
        }
        sup.push(ev(14 * MS, message_meta(EventKind::Effect, 0x97)));
        sup.extend(spawn(14 * MS, W3, WORKER_INIT));
        if !exit_heard_first {
            sup.push(beam(w2_exit + 10, BeamKind::ExitHeard, W2));
        }
        let ack = |ts, key| ev(ts, message_meta(EventKind::Cause, key));
        let mut workers = on(W1, 2 * MS, vec![crash(10 * MS, CRASH)]);
        let mut w2 = vec![crash(w2_exit, CRASH)];
        if acked {
            w2.insert(0, ack(12 * MS, 0x92));
        }
        workers.extend(on(W2, 11 * MS, w2));
        workers.extend(on(W3, 14 * MS, vec![crash(15 * MS, CRASH)]));
        three_streams(main, sup, workers)
    }

    #[test]
    fn a_child_started_again_after_failing_to_start_is_a_restart() {
        for (exit_heard_first, acked) in
            [(true, true), (false, true), (true, false), (false, false)]
        {
            let a = annotated_from(failed_restart_recording(exit_heard_first, acked));
            assert_eq!(a.attribute(W2, RESTART), Some(Attr::Int(1)));
            assert_eq!(
                a.attribute(W3, RESTART),
                Some(Attr::Int(2)),
                "the supervisor's cast to itself does not end the restart, and W2's failed \
                 start is what W3 answers (exit heard first: {exit_heard_first}, acked: {acked})"
            );
        }
    }

    #[test]
    fn a_monitors_down_follows_the_exit_of_the_process_that_went_down() {
        let a = annotated();
        let wait = a
            .spans
            .iter()
            .find(|s| s.code == RECEIVE_CODE && s.stream == MAIN)
            .expect("main's wait for the DOWN");
        assert_eq!(a.exit_links(wait), vec![a.life(W1).span_id]);
        assert_eq!(wait.links[0].cause_ts, 8 * MS);
        assert_eq!(
            wait.links[0].wait_ns,
            8 * MS,
            "it waited from its spawn at 0 ms on"
        );
    }

    #[test]
    fn a_process_taken_down_by_a_linked_process_says_so() {
        let a = annotated();
        assert_eq!(a.attribute(LINKED, KILLED_BY), text("anchor"));
        assert_eq!(a.exit_links(a.life(LINKED)), vec![a.life(ANCHOR).span_id]);
        assert_eq!(a.attribute(ANCHOR, KILLED_BY), None, "cut from outside");
        assert_eq!(a.attribute(UNLINKER, KILLED_BY), None, "unlinked first");
        assert_eq!(
            a.attribute(W2, KILLED_BY),
            None,
            "its crash is its own (no link to the first worker)"
        );
    }

    #[test]
    fn links_and_unlinks_are_events_naming_the_other_process_and_who_made_them() {
        let a = annotated();
        type Events<'a> = Vec<(u64, &'a str, Vec<(&'a str, Attr)>)>;
        let events = |key: u64| -> Events {
            let events = a.out.events.get(&a.life(key).span_id);
            events
                .into_iter()
                .flatten()
                .map(|e| (e.ts, e.name, e.attributes.clone()))
                .collect()
        };
        let by = |other: &str, by: &str| {
            vec![
                (LINK_PROCESS, Attr::Text(other.to_owned())),
                (LINK_BY, Attr::Text(by.to_owned())),
            ]
        };
        assert_eq!(
            events(UNLINKER),
            vec![
                (22 * MS, "link", by("anchor", "process 33")),
                (23 * MS, "unlink", by("anchor", "process 33")),
            ]
        );
        assert_eq!(events(W1), vec![(2 * MS, "link", by("App.Sup", "App.Sup"))]);
    }
}
