//! The BEAM runtime's records: what an Erlang VM's tracer (the `devtrace-beamrecorder` NIF)
//! writes into a recorder file beside the calls, and the reader that turns them back into
//! per-process streams the [`crate::builder`] replays as it replays a Python thread's.
//!
//! The tracer runs on the scheduler thread of the process it traces, so a file's streams are
//! *scheduler threads*, and a scheduler runs many processes one after another. A
//! [`BeamKind::Process`] record says which process the records after it belong to (written when
//! a scheduler's tracer sees another process than the one before); [`BeamReader`] splits each
//! scheduler stream at them and merges each process's pieces back in time order (a process runs
//! on one scheduler at a time, and every stream is stamped by one clock), so a *process* becomes
//! the builder's stream (and `thread.name` its registered name or pid).
//!
//! What the reader adds on the way, so the builder needs nothing BEAM-specific:
//! - a frame for the process's life ([`PROCESS_CODE`]): from its first record to its exit, whose
//!   reason is its value and, unless `normal`/`shutdown`, its error; the calls made in the
//!   process nest under it, so a send made outside any recorded call still has a span;
//! - a spawn is a [`LinkKind::ThreadStart`] cause in the parent and its effect at the child's
//!   start (the child's life "follows" the spawning call);
//! - a message received is a `receive` frame ([`RECEIVE_CODE`]) from the process's previous record
//!   (it ran nothing recorded in between: it waited) to the message's arrival, holding the
//!   [`LinkKind::Message`] effect the builder links to the matching send's cause (the key is
//!   the receiver and a hash of the message, made by the tracer);
//! - calls still open when the process exits end with it (by its reason's error, if any).
//!
//! A flight recorder's window ([`BeamReader::for_window`]) begins mid-way, at a chunk of each
//! scheduler stream: the tracer starts every chunk with the header of each process writing
//! there (its [`BeamKind::Process`] record and identity: [`BeamKind::Parent`] and after), so the
//! reader knows whose records follow and who that process is though its spawn was overwritten;
//! what began before the window (the process's life, calls it returns from) is rebuilt at its
//! first record in it. A call that hangs is kept from its start, with the process that took its
//! request ([`stuck`]), however long before the window it began.
//!
//! Value summaries (arguments, return values, exceptions, exit reasons) are text the tracer made
//! from terms (bounded and redacted, no user code run), named by id from [`EventKind::Value`]
//! records. A GenServer callback's state before and after (the state argument of
//! `handle_call/3`, `handle_cast/2`, `handle_info/2`, `handle_continue/2`, `terminate/2`; the
//! state in what it returned, as `init/1`'s) is kept beside them, under the id of the
//! arguments' or the return value's summary, so it needs no record of its own. A short summary
//! no state goes with is written into the ring, in the records before its value record
//! ([`inline_values`]), and the reader gives it an id ([`BeamReader::take_inline_values`]). Where
//! the others are kept ([`TextStore`]): a lossless recording, read whole, keeps them in the names log under
//! their own tags ([`write_value`], [`write_state`]); a flight recorder keeps them in the
//! file's value area as one ring ([`crate::values::SharedValueRing`], [`file_layout`]), so
//! its window, the run's last seconds, keeps its calls' values however long the run was.
//! [`read_values`] and its siblings read both.

use std::collections::{HashMap, HashSet, VecDeque};

mod annotate;
pub mod asking;
pub mod calls;
mod doubles;
pub mod function_names;
pub mod hot;
pub mod inline_calls;
pub mod inline_values;
pub mod outside;
pub mod relays;
pub mod stuck;
pub mod tail_calls;
pub mod vm_stop;

pub use annotate::{
    ASKED, Annotations, Attr, CALL_REQUEST_EVENT, INITIAL_CALL, KILLED_BY, LINK_BY, LINK_PROCESS,
    REQUEST, RESTART, STATEM_STATE, SUPERVISOR, SpanEvent, Texts, annotate,
};
pub use doubles::PROBED_CALL;

use crate::ring::{
    CAUSALITY_KEY_MASK, Event, EventKind, Layout, LinkKind, MAX_VALUE_BLOCKS, RecorderFile,
    RingError, StreamEvents, VALUE_SLOT_SIZE, VALUE_SLOTS_PER_BLOCK, causality_meta, causality_of,
    pack_meta,
};
use crate::values::SharedValueRing;

/// The code id of a process's life frame (named `process NAME` by the reader's caller).
pub const PROCESS_CODE: u32 = u32::MAX - 16;
/// The code id of a wait in `receive` that a message ended.
pub const RECEIVE_CODE: u32 = u32::MAX - 17;
/// The names-log tag of a value summary (after names.rs's tags, which skip it).
const TAG_VALUE: u8 = 16;
/// The names-log tag of a GenServer state summary, kept under the id of the value it goes with
/// (a callback's arguments: the state before; its return value: the state after).
const TAG_STATE: u8 = 17;
/// The names-log tag of a `gen_statem`'s state name after a callback, kept under the id of the
/// callback's return value.
const TAG_STATEM_STATE: u8 = 18;

/// What a [`EventKind::Beam`] record says (aux bits 0–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BeamKind {
    /// The records after it on this stream are process `payload`'s.
    Process = 1,
    /// The current process spawned process `payload`.
    Spawn = 2,
    /// The current process exited: payload's low 32 bits are its reason's value id, bits 32–47
    /// the exception type id of an abnormal reason (0: a normal exit).
    Exit = 3,
    /// The current process linked itself to process `payload` (`link/1`, `spawn_link`).
    Link = 4,
    /// Process `payload` linked itself to the current process.
    GettingLinked = 5,
    /// The current process removed its link to process `payload`.
    Unlink = 6,
    /// Process `payload` removed its link to the current process.
    GettingUnlinked = 7,
    /// The initial call of the process the [`BeamKind::Spawn`] record before it spawned:
    /// payload its code id (`Mod:init/1` for a `gen_server`/`gen_statem`/supervisor, as
    /// proc_lib's `'$initial_call'` says; else the spawned function).
    SpawnCall = 8,
    /// The current process registered a name (its thread name in the names log).
    Register = 9,
    /// The current process received a message telling of process `payload`'s exit (a monitor's
    /// `'DOWN'`, a trapped `'EXIT'`), in place of the message's own record.
    ExitHeard = 10,
    /// Identity, re-written with the [`BeamKind::Process`] record the first time a process
    /// writes into a chunk (so a flight recorder's window, which begins at a chunk, still knows
    /// it when its spawn was overwritten): the current process was spawned by process `payload`.
    Parent = 11,
    /// Identity: the current process's initial call, payload its code id (as
    /// [`BeamKind::SpawnCall`]).
    InitialCall = 12,
    /// Identity: the initial call of the current process's parent, payload its code id (whether
    /// a supervisor started it, when the supervisor itself wrote nothing in the window).
    ParentCall = 13,
    /// Six bytes of the text of the value record that follows (`inline_values`): payload the
    /// bytes, little-endian.
    ValueText = 14,
    /// The call request the current process just sent ([`CALL_REQUEST_BIT`]) went to process
    /// `payload`: who a call was made to, known even when the request is never taken.
    Asked = 15,
}

impl BeamKind {
    fn from_u8(v: u8) -> Option<BeamKind> {
        use BeamKind::*;
        Some(match v {
            1 => Process,
            2 => Spawn,
            3 => Exit,
            4 => Link,
            5 => GettingLinked,
            6 => Unlink,
            7 => GettingUnlinked,
            8 => SpawnCall,
            9 => Register,
            10 => ExitHeard,
            11 => Parent,
            12 => InitialCall,
            13 => ParentCall,
            14 => ValueText,
            15 => Asked,
            _ => return None,
        })
    }
}

impl BeamKind {
    /// Whether another process did it to the current one (linked or unlinked it), which the
    /// current one may have slept through: no work of its own.
    pub fn is_done_to_it(self) -> bool {
        matches!(self, BeamKind::GettingLinked | BeamKind::GettingUnlinked)
    }

    /// Whether it is one of the records that say who a process is (re-written at each chunk):
    /// read even when older than a window, never a span's event.
    pub fn is_identity(self) -> bool {
        matches!(
            self,
            BeamKind::Parent | BeamKind::InitialCall | BeamKind::ParentCall | BeamKind::Register
        )
    }
}

/// The meta word of a BEAM record carrying a 48-bit `payload`.
#[inline(always)]
pub fn beam_meta(kind: BeamKind, payload: u64) -> u64 {
    let payload = payload & CAUSALITY_KEY_MASK;
    let high = ((payload >> 32) & 0xFFFF) as u32;
    pack_meta(EventKind::Beam, payload as u32, kind as u32 | high << 8)
}

/// A BEAM record's (kind, payload), or None for a record of another kind.
pub fn beam_of(e: &Event) -> Option<(BeamKind, u64)> {
    if e.kind != EventKind::Beam {
        return None;
    }
    let kind = BeamKind::from_u8(e.aux as u8)?;
    Some((kind, (e.aux as u64 >> 8) << 32 | e.code as u64))
}

/// The exit payload: the reason's value id and, for an abnormal exit, its type id.
pub fn exit_payload(reason_value: u32, error_type: Option<u16>) -> u64 {
    (error_type.unwrap_or(0) as u64) << 32 | reason_value as u64
}

/// A message's key when it is OTP's call request (`{'$gen_call', From, Request}`: a
/// `GenServer.call`, a `gen_statem` call): this bit set, in its send and its arrival alike.
pub const CALL_REQUEST_BIT: u64 = 1 << 47;
/// A message's key when it is OTP's cast (`{'$gen_cast', Request}`: a `GenServer.cast`, a
/// `gen_statem` cast): this bit set, in its send and its arrival alike.
pub const CAST_REQUEST_BIT: u64 = 1 << 46;
/// The bits of a request that only a server's loop takes (OTP's calls and casts).
const LOOP_REQUEST_BITS: u64 = CALL_REQUEST_BIT | CAST_REQUEST_BIT;
/// The key of the arrival the VM reports when a `receive` timed out (its `after` ran): the
/// atom `timeout`, the message the VM's trace gives it (sent as a message, the same key).
pub const TIMEOUT_KEY: u64 = 1;

/// The meta word of a message's send ([`EventKind::Cause`]) or arrival ([`EventKind::Effect`]).
#[inline(always)]
pub fn message_meta(kind: EventKind, key: u64) -> u64 {
    causality_meta(kind, LinkKind::Message, key & CAUSALITY_KEY_MASK)
}

/// What a text the tracer keeps is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A value summary, under its own id.
    Value,
    /// A GenServer's state, under the id of the value it goes with.
    State,
    /// A `gen_statem`'s state name, under the id of the return value it goes with.
    StatemState,
}

impl TextKind {
    fn tag(self) -> u8 {
        match self {
            TextKind::Value => TAG_VALUE,
            TextKind::State => TAG_STATE,
            TextKind::StatemState => TAG_STATEM_STATE,
        }
    }
}

/// Where a tracer keeps its texts (see the module doc).
#[derive(Debug)]
pub enum TextStore {
    /// The names log, never overwritten: every text until its share is full (lossless).
    NamesLog,
    /// The file's value area as one ring: the last texts (a flight recorder's).
    ValueArea(SharedValueRing),
}

impl TextStore {
    /// The value area when `file` has one (a flight recorder's [`file_layout`]), else the names log.
    pub fn for_file(file: &RecorderFile) -> TextStore {
        if file.shared_value_cells() > 0 {
            TextStore::ValueArea(SharedValueRing::new())
        } else {
            TextStore::NamesLog
        }
    }

    /// Whether writing into the names log, which needs the file's names lock held.
    pub fn needs_names_lock(&self) -> bool {
        matches!(self, TextStore::NamesLog)
    }

    /// Keeps `text` of `kind` under `id`; false when it could not be (the names log's share is
    /// full, or a cell was busy): it is then shown as not kept.
    pub fn write(&self, file: &RecorderFile, kind: TextKind, id: u32, text: &str) -> bool {
        match self {
            TextStore::NamesLog => write_text(file, kind.tag(), id, text),
            TextStore::ValueArea(ring) => ring.write(file, kind.tag(), id, text),
        }
    }
}

/// The value area takes this share of a flight recorder's file (1 in N), up to the most a file
/// has ([`MAX_VALUE_BLOCKS`] blocks: 5 MiB, 81,920 cells of 64 bytes, most summaries one).
const VALUE_AREA_SHARE_OF_FILE: u64 = 8;

/// The layout of a BEAM recorder's file of about `total_bytes`, with no span table (the
/// tracer never writes one): a lossless file's is [`Layout::for_size_without_spans`]; a flight
/// recorder's is that of what is left after its value area (1/8 of it, at most 5 MiB, at least
/// one block), or of the whole size plus the area when the rest would be too small for the rings.
pub fn file_layout(total_bytes: u64, lossless: bool) -> Result<Layout, RingError> {
    if lossless {
        return Layout::for_size_without_spans(total_bytes);
    }
    let block_bytes = VALUE_SLOTS_PER_BLOCK as u64 * VALUE_SLOT_SIZE as u64;
    let blocks =
        (total_bytes / VALUE_AREA_SHARE_OF_FILE / block_bytes).clamp(1, MAX_VALUE_BLOCKS as u64);
    let rings = Layout::for_size_without_spans(total_bytes.saturating_sub(blocks * block_bytes))
        .or_else(|_| Layout::for_size_without_spans(total_bytes))?;
    Ok(rings.with_value_blocks(blocks as u32))
}

/// Appends a value summary's text under `id`; false when the names log is full (the value is
/// then shown as not kept).
pub fn write_value(file: &RecorderFile, id: u32, text: &str) -> bool {
    write_text(file, TAG_VALUE, id, text)
}

/// Appends the summary of a GenServer's state that goes with value `anchor` (the arguments of
/// a callback: its state before; its return value: its state after); false when the names log
/// is full.
pub fn write_state(file: &RecorderFile, anchor: u32, text: &str) -> bool {
    write_text(file, TAG_STATE, anchor, text)
}

/// Value and state texts fill at most this share of the names log (1 in N): the rest stays for
/// names — of functions first called late in a long run, of processes spawned late — which a
/// flight recorder's window needs more than the values of the run's first calls.
const TEXTS_SHARE_OF_NAMES: u64 = 2;

/// Appends a text to the names log, or counts it in the file as not kept (its reader says how
/// many the recording lacks).
fn write_text(file: &RecorderFile, tag: u8, id: u32, text: &str) -> bool {
    let text = crate::ring::truncate_utf8(text, u16::MAX as usize);
    let (used, capacity) = file.names_usage();
    let kept = used + 11 + text.len() as u64 <= capacity / TEXTS_SHARE_OF_NAMES && {
        let mut entry = Vec::with_capacity(7 + text.len());
        entry.push(tag);
        entry.extend_from_slice(&id.to_ne_bytes());
        entry.extend_from_slice(&(text.len() as u16).to_ne_bytes());
        entry.extend_from_slice(text.as_bytes());
        file.append_name(&entry)
    };
    if !kept {
        file.count_text_not_kept();
    }
    kept
}

/// Appends the state name a `gen_statem` callback left its machine in (`locked`), kept under
/// the id of its return value `anchor`; false when the names log is full.
pub fn write_statem_state(file: &RecorderFile, anchor: u32, text: &str) -> bool {
    write_text(file, TAG_STATEM_STATE, anchor, text)
}

/// Every value summary `file` keeps (names log and value area), by id.
pub fn read_values(file: &RecorderFile) -> HashMap<u32, String> {
    read_texts(file, TextKind::Value)
}

/// Every GenServer state summary `file` keeps, by the id of the value it goes with.
pub fn read_states(file: &RecorderFile) -> HashMap<u32, String> {
    read_texts(file, TextKind::State)
}

/// Every `gen_statem` state name `file` keeps, by the id of the return value it goes with.
pub fn read_statem_states(file: &RecorderFile) -> HashMap<u32, String> {
    read_texts(file, TextKind::StatemState)
}

fn read_texts(file: &RecorderFile, kind: TextKind) -> HashMap<u32, String> {
    let mut texts = decode_texts(file.names_bytes(), kind.tag());
    texts.extend(file.read_shared_values(kind.tag()));
    texts
}

fn decode_texts(mut bytes: &[u8], tag: u8) -> HashMap<u32, String> {
    let mut out = HashMap::new();
    while bytes.len() >= 4 {
        let len = u32::from_ne_bytes(bytes[..4].try_into().unwrap()) as usize;
        if len == 0 || bytes.len() < 4 + len {
            break;
        }
        let entry = &bytes[4..4 + len];
        bytes = &bytes[4 + len..];
        if entry.len() >= 7 && entry[0] == tag {
            let id = u32::from_ne_bytes(entry[1..5].try_into().unwrap());
            let n = u16::from_ne_bytes(entry[5..7].try_into().unwrap()) as usize;
            if let Some(text) = entry.get(7..7 + n) {
                out.insert(id, String::from_utf8_lossy(text).into_owned());
            }
        }
    }
    out
}

/// One process as the reader follows it.
#[derive(Debug, Default)]
struct ProcessState {
    started: bool,
    exited: bool,
    /// Recorded calls open now (under the life frame).
    depth: u32,
    last_ts: u64,
    life: Life,
    /// In a window: the process began before it (its spawn is not in it), so its life frame
    /// and the calls the window's records return from are rebuilt at its first record (this
    /// stamp), with these codes.
    before_window: Option<(u64, Vec<u32>)>,
    /// It sent a call request and has had no other message since (but other processes' call
    /// requests): a `receive` timing out now is the call's wait for the reply, given up.
    call_requested: bool,
    /// Call requests and casts that came while it ran a call of its own, which went on
    /// waiting ([`message_arrived`]): its loop takes them once back at the top.
    requests_waiting: VecDeque<Event>,
    /// Calls recorded both by a trace pattern and by a probe, kept once.
    doubles: doubles::Doubles,
    /// The bytes of an inline value summary whose value record is still to come.
    pending_text: inline_values::PendingText,
}

/// What a process's records say of its life beyond its spans, read by [`annotate`] once the
/// spans are built: whom it spawned, linked and heard exit, how it ended.
#[derive(Debug, Default)]
pub(crate) struct Life {
    /// The processes it spawned, in order.
    children: Vec<Child>,
    /// Its links made and removed, by it or by the other process, in order.
    links: Vec<LinkChange>,
    /// The exits it heard of (a monitor's `'DOWN'`, a trapped `'EXIT'`): (arrival, process).
    exits_heard: Vec<(u64, u64)>,
    /// The exits heard of since the last other message received.
    exits_unanswered: Vec<u64>,
    /// When its waits for a call's reply timed out (the `receive` spans' ends).
    call_timeouts: Vec<u64>,
    /// When any of its waits ended at its timeout (`Process.sleep/1`, `receive … after`), not
    /// by a message: the `receive` spans' ends.
    timeouts: Vec<u64>,
    /// When it took another process's call request (the `receive` spans' ends): the answer
    /// to no call of its own, though it may come while it waits for one.
    requests_taken: Vec<u64>,
    /// Its last call request: when it was sent, and the process it went to
    /// ([`BeamKind::Asked`]). What a call still waiting at the end waits for, even when the
    /// request was never taken (a server stuck itself).
    last_asked: Option<(u64, u64)>,
    /// It spawned a process and has received no message since: the next one may be the
    /// child's start acknowledgement (`proc_lib`'s `ack`), which does not end a restart (a
    /// `:one_for_all` supervisor starts its children one after another, each acknowledging).
    awaiting_ack: bool,
    /// The messages taken for acknowledgements since the exits unanswered were heard:
    /// (arrival, the child it must have come from), checked against the senders once the
    /// messages are linked ([`annotate`]).
    acks_taken: Vec<(u64, u64)>,
    /// The message keys of its last few sends ([`SENDS_REMEMBERED`]): a message it takes with
    /// one of them is most likely its own, sent to itself (a supervisor's `try_again_restart`
    /// cast after a child failed to start again), which does not end a restart either.
    recent_sends: [u64; SENDS_REMEMBERED],
    exit: Option<Ending>,
    registered: bool,
    /// Who it is, from its identity records (a window may lack its spawn).
    identity: Identity,
}

/// How many of a process's last sends [`Life::recent_sends`] keeps.
const SENDS_REMEMBERED: usize = 4;

impl Life {
    /// The process sent a message with `key`.
    fn sent(&mut self, key: u64) {
        self.recent_sends.rotate_right(1);
        self.recent_sends[0] = key;
    }

    /// A message other than an exit's news, arrived at `ts`: it ends what a restart answers,
    /// unless it is the acknowledgement of the child just spawned.
    fn message_received(&mut self, ts: u64, key: u64) {
        if key != 0 && self.recent_sends.contains(&key) {
            return;
        }
        let child = self.children.last().map(|c| c.key);
        if let (true, Some(child)) = (std::mem::take(&mut self.awaiting_ack), child) {
            if !self.exits_unanswered.is_empty() {
                self.acks_taken.push((ts, child));
            }
            return;
        }
        self.exits_unanswered.clear();
        self.acks_taken.clear();
    }
}

/// A process's parent, its initial call's code id and its parent's (0: not recorded).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Identity {
    parent: Option<u64>,
    initial_call: u32,
    parent_call: u32,
}

#[derive(Debug, Clone)]
struct Child {
    key: u64,
    /// Its initial call's code id (0: not recorded).
    initial_call: u32,
    /// The processes whose exits the parent had heard of since its last other message when
    /// it spawned this one: what a supervisor's restart answers (a child started on request
    /// comes after the request's message).
    answers: Vec<u64>,
    /// The messages since those exits taken for the acknowledgements of children started
    /// before this one: (arrival, the child it must have come from). One that did not come
    /// from that child was a request, and this child answers no exit.
    acks: Vec<(u64, u64)>,
    /// When it was spawned (0: not recorded).
    at: u64,
}

#[derive(Debug, Clone, Copy)]
struct LinkChange {
    ts: u64,
    other: u64,
    /// Linked (else unlinked).
    linked: bool,
    /// This process made the change (else the other did).
    by_self: bool,
}

#[derive(Debug, Clone, Copy)]
struct Ending {
    ts: u64,
    /// The reason's value id (0: none kept).
    reason: u32,
    /// The exception type id of an abnormal reason (0: a normal exit).
    error_type: u32,
}

/// Turns the scheduler streams of a BEAM recorder file into per-process streams (see the
/// module doc). Feed it every pass of a [`crate::ring::Cursor`], in order.
#[derive(Debug, Default)]
pub struct BeamReader {
    /// The process each scheduler stream writes for now.
    current: HashMap<u64, u64>,
    processes: HashMap<u64, ProcessState>,
    /// Records that came before any process record of their stream (after a loss): dropped.
    pub unattributed: u64,
    /// A flight recorder's window: its start (records stamped before it are left out, but for
    /// the identity records, which say who a process is whenever they were written).
    window_start: Option<u64>,
    /// Where a window ends (and the VM began to stop, if it did).
    window_end: stuck::WindowEnd,
    /// How far back before its start a window reached for calls that hang ([`stuck`]).
    reached_back: Option<u64>,
    /// The short value summaries the tracer wrote inline, by the ids given them here.
    inline_texts: inline_values::InlineTexts,
    /// Records read but stamped too late to be put in order yet ([`BeamReader::split_before`]),
    /// by process.
    held: HashMap<u64, Vec<Event>>,
}

impl BeamReader {
    pub fn new() -> BeamReader {
        BeamReader::default()
    }

    /// A reader of a flight recorder's window from `start` (monotonic nanoseconds) to the end
    /// of what is left, fed as one pass. A window begins mid-way: a process spawned before it
    /// gets its life frame from its first record in it, as do the calls whose return (but not
    /// their start) is in it — marked [`BeamReader::started_before_window`] —, and a receive
    /// whose send is older is a wait without a link.
    pub fn for_window(start: u64, end: stuck::WindowEnd) -> BeamReader {
        BeamReader {
            window_start: Some(start),
            window_end: end,
            ..BeamReader::default()
        }
    }

    /// The earliest record a window kept from before its start: a call that hangs began then
    /// ([`stuck`]); none when it kept none.
    pub fn reached_back(&self) -> Option<u64> {
        self.reached_back
    }

    /// Whether a span of process `key` of `code` starting at `start` was rebuilt at the
    /// window's beginning: it began before the window (its start is the process's first
    /// record in it).
    pub fn started_before_window(&self, key: u64, code: u32, start: u64) -> bool {
        self.processes
            .get(&key)
            .and_then(|p| p.before_window.as_ref())
            .is_some_and(|(first, codes)| *first == start && codes.contains(&code))
    }

    /// The waits for a call's reply that timed out (`GenServer.call(s, r, 100)` given up,
    /// whether or not the caller caught the exit): (process, the `receive` span's end).
    pub fn call_timeouts(&self) -> HashSet<(u64, u64)> {
        self.processes
            .iter()
            .flat_map(|(&key, p)| p.life.call_timeouts.iter().map(move |&ts| (key, ts)))
            .collect()
    }

    /// The waits that ended at their timeout, not by a message: (process, the `receive`
    /// span's end).
    pub fn timeouts(&self) -> HashSet<(u64, u64)> {
        self.processes
            .iter()
            .flat_map(|(&key, p)| p.life.timeouts.iter().map(move |&ts| (key, ts)))
            .collect()
    }

    /// The waits another process's call request ended: (process, the `receive` span's end).
    /// A traced process is told of a message when it arrives, so such a wait may be one for
    /// an answer that goes on (two servers calling each other: a deadlock).
    pub fn requests_taken(&self) -> HashSet<(u64, u64)> {
        self.processes
            .iter()
            .flat_map(|(&key, p)| p.life.requests_taken.iter().map(move |&ts| (key, ts)))
            .collect()
    }

    /// Whether process `key` exited while recorded.
    pub fn exited(&self, key: u64) -> bool {
        self.processes.get(&key).is_some_and(|p| p.exited)
    }

    /// Forgets the exits `which(ts, exception type id)` chooses, as if the processes had not
    /// exited while recorded ([`vm_stop`]); returns those processes with their exits' stamps.
    pub fn forget_exits(&mut self, which: impl Fn(u64, u32) -> bool) -> HashMap<u64, u64> {
        let mut forgotten = HashMap::new();
        for (&key, p) in &mut self.processes {
            if let Some(exit) = p.life.exit.filter(|e| which(e.ts, e.error_type)) {
                p.life.exit = None;
                p.exited = false;
                forgotten.insert(key, exit.ts);
            }
        }
        forgotten
    }

    /// The processes' records in `pass` (one pass of a cursor over the schedulers' streams),
    /// one [`StreamEvents`] per process (its stream id is the process key), in the builder's
    /// vocabulary; the records an earlier [`BeamReader::split_before`] held back among them.
    pub fn split(&mut self, pass: &[StreamEvents]) -> Vec<StreamEvents> {
        self.split_before(pass, u64::MAX)
    }

    /// [`BeamReader::split`] of a pass read while the VM runs, begun at `before` (monotonic
    /// nanoseconds): a process's records stamped from then on are held for the next pass.
    ///
    /// A cursor reads the streams one after another, and a process moves between schedulers:
    /// what it wrote on a stream after the cursor read that stream comes in the next pass, while
    /// what it wrote later on a stream read later is in this one. Put in order by their stamps
    /// only within a pass, its records would be replayed out of order — a call's end before its
    /// start. A process commits each of its records before it stamps the next: what it wrote
    /// before a record stamped before the pass began was committed by then, and is read.
    pub fn split_before(&mut self, pass: &[StreamEvents], before: u64) -> Vec<StreamEvents> {
        let window_start = self.window_start.unwrap_or(0);
        // A window reaches back for calls that hang (and what took their requests).
        let starts = match self.window_start {
            Some(start) => {
                let records = by_process(self.current.clone(), pass);
                let records = records.iter().map(|(&k, events)| (k, events.as_slice()));
                stuck::reach_back(records, start, self.window_end)
            }
            None => HashMap::new(),
        };
        if let Some(&earliest) = starts.values().min() {
            self.reached_back = Some(self.reached_back.map_or(earliest, |t| t.min(earliest)));
        }
        let mut raw = self.attribute(pass, &starts, window_start);
        for (key, held) in self.held.drain() {
            let entry = raw.entry(key).or_default();
            entry.0.splice(0..0, held);
        }
        // In a window, a process spawned in it starts as it does in a whole recording; the
        // others began before it.
        let spawned: std::collections::HashSet<u64> = raw
            .values()
            .flat_map(|(events, _)| events.iter().filter_map(beam_of))
            .filter(|(kind, _)| *kind == BeamKind::Spawn)
            .map(|(_, child)| child)
            .collect();
        let in_window = self.window_start.is_some();
        let mut keys: Vec<u64> = raw.keys().copied().collect();
        keys.sort_unstable();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let (mut events, lost) = raw.remove(&key).unwrap_or_default();
            events.sort_by_key(|e| e.ts); // stable: one stream's order kept at equal stamps
            let late = events.split_off(events.partition_point(|e| e.ts < before));
            if !late.is_empty() {
                self.held.insert(key, late);
            }
            if events.is_empty() && lost == 0 {
                continue;
            }
            let window_start = starts.get(&key).copied().unwrap_or(window_start);
            let state = self.processes.entry(key).or_default();
            out.push(StreamEvents {
                stream: key,
                tid: key,
                first_seq: 0,
                events: translate(
                    state,
                    key,
                    &events,
                    (window_start, in_window && !spawned.contains(&key)),
                    &mut self.inline_texts,
                ),
                lost,
            });
        }
        out
    }

    /// Each process's records in `pass` (the records of a stream belong to the process its
    /// last [`BeamKind::Process`] record named), with the records lost before them; in a
    /// window, those stamped before the window (or, for a call that hangs, before its
    /// process's start in `starts`) left out, but for the identity records.
    fn attribute(
        &mut self,
        pass: &[StreamEvents],
        starts: &HashMap<u64, u64>,
        window_start: u64,
    ) -> HashMap<u64, (Vec<Event>, u64)> {
        let mut raw: HashMap<u64, (Vec<Event>, u64)> = HashMap::new();
        for segment in pass {
            if segment.lost > 0 {
                // Which process the records after a gap are is unknown until the next switch.
                self.current.remove(&segment.stream);
            }
            let mut lost = segment.lost;
            for e in &segment.events {
                let beam = beam_of(e);
                if let Some((BeamKind::Process, key)) = beam {
                    self.current.insert(segment.stream, key);
                    continue;
                }
                let key = self.current.get(&segment.stream).copied();
                let from = key.and_then(|k| starts.get(&k).copied());
                if e.ts < from.unwrap_or(window_start)
                    && !beam.is_some_and(|(kind, _)| kind.is_identity())
                {
                    continue;
                }
                match key {
                    Some(key) => {
                        let entry = raw.entry(key).or_default();
                        entry.0.push(*e);
                        entry.1 += std::mem::take(&mut lost);
                    }
                    None => self.unattributed += 1,
                }
            }
        }
        raw
    }

    /// The value summaries read from the records so far (by id; the file's text stores
    /// hold the others, [`read_values`]), taken: call once the last pass is read.
    pub fn take_inline_values(&mut self) -> HashMap<u32, String> {
        self.inline_texts.take()
    }

    /// Processes seen and how many of them exited while recorded.
    pub fn process_counts(&self) -> (usize, usize) {
        let exited = self.processes.values().filter(|p| p.exited).count();
        (self.processes.len(), exited)
    }
}

/// Each process's records in `pass`, in time order (`current`: the process each stream was
/// writing for before it, as the reader knew).
fn by_process(mut current: HashMap<u64, u64>, pass: &[StreamEvents]) -> HashMap<u64, Vec<Event>> {
    let mut records: HashMap<u64, Vec<Event>> = HashMap::new();
    for segment in pass {
        if segment.lost > 0 {
            current.remove(&segment.stream);
        }
        for e in &segment.events {
            match beam_of(e) {
                Some((BeamKind::Process, key)) => {
                    current.insert(segment.stream, key);
                }
                _ => {
                    if let Some(&key) = current.get(&segment.stream) {
                        records.entry(key).or_default().push(*e);
                    }
                }
            }
        }
    }
    for events in records.values_mut() {
        events.sort_by_key(|e| e.ts);
    }
    records
}

fn record(ts: u64, kind: EventKind, code: u32, aux: u32) -> Event {
    Event {
        ts,
        kind,
        code,
        aux,
    }
}

/// One process's records of a pass, translated for the builder (`window_start`: a window's
/// start, or 0; `before_window`: the process began before it).
fn translate(
    state: &mut ProcessState,
    key: u64,
    events: &[Event],
    (window_start, before_window): (u64, bool),
    inline_texts: &mut inline_values::InlineTexts,
) -> Vec<Event> {
    let mut out = Vec::with_capacity(events.len() + 4);
    for (i, e) in events.iter().enumerate() {
        if state.exited {
            break; // nothing of a process comes after its exit (a reused key would be a new one)
        }
        // Who it is, said before the window: no event of its life in the window.
        if let Some((kind, payload)) = beam_of(e).filter(|(kind, _)| kind.is_identity())
            && e.ts < window_start
        {
            identity(&mut state.life, kind, payload);
            continue;
        }
        if !state.started {
            state.started = true;
            if before_window {
                open_before_window(state, e.ts, &events[i..], &mut out);
            } else {
                let start = causality_meta(EventKind::Effect, LinkKind::ThreadStart, key);
                out.push(Event {
                    ts: e.ts,
                    ..crate::ring::unpack(0, start).expect("a known kind")
                });
                out.push(record(e.ts, EventKind::Call, PROCESS_CODE, 0));
            }
            state.last_ts = e.ts;
        }
        if let Some((BeamKind::ValueText, bytes)) = beam_of(e) {
            state.pending_text.push(bytes);
            continue;
        }
        let resolved;
        let e = if e.kind == EventKind::Value {
            resolved = inline_texts.resolve(&mut state.pending_text, e);
            &resolved
        } else {
            e
        };
        // A chunk's header can fall between a call's two records.
        let header = beam_of(e).is_some_and(|(k, _)| k == BeamKind::Process || k.is_identity());
        if !header && state.doubles.absorbs(e, state.depth, &mut out) {
            continue;
        }
        match (e.kind, beam_of(e)) {
            (EventKind::Beam, Some((kind, payload))) => {
                beam_record(state, e.ts, kind, payload, &mut out);
            }
            (EventKind::Beam, None) => {}
            (EventKind::Effect, _)
                if causality_of(e).is_some_and(|(k, _)| k == LinkKind::Message) =>
            {
                if !message_arrived(state, e, &events[i + 1..], &mut out) {
                    continue; // it went on waiting
                }
            }
            (EventKind::Cause, _) => {
                if let Some((LinkKind::Message, key)) = causality_of(e) {
                    state.call_requested |= key & CALL_REQUEST_BIT != 0;
                    state.life.sent(key);
                }
                out.push(*e);
            }
            (EventKind::Call, _) => {
                if state.depth == 0 {
                    take_waiting_request(state, state.last_ts, &mut out);
                }
                state.depth += 1;
                out.push(Event { aux: 0, ..*e });
            }
            (EventKind::Return | EventKind::Unwind, _) => {
                if state.depth > 0 {
                    state.depth -= 1;
                    out.push(*e);
                }
            }
            _ => out.push(*e),
        }
        // A chunk's header repeats who the process is, stamped when the process first writes
        // there — on a wake-up on the other scheduler, the moment its wait ended: the process
        // ran nothing, so a wait goes on across it. So does another process's link or unlink
        // (a linked task that replied and exited, before its reply is taken).
        if !beam_of(e).is_some_and(|(kind, _)| kind.is_identity() || kind.is_done_to_it()) {
            state.last_ts = e.ts;
        }
    }
    out
}

/// What an identity record says of a process (see [`BeamKind::Parent`]).
fn identity(life: &mut Life, kind: BeamKind, payload: u64) {
    match kind {
        BeamKind::Parent => life.identity.parent = Some(payload),
        BeamKind::InitialCall => life.identity.initial_call = payload as u32,
        BeamKind::ParentCall => life.identity.parent_call = payload as u32,
        BeamKind::Register => life.registered = true,
        _ => {}
    }
}

/// The frames open when a window begins on a process that began before it, opened at its first
/// record `ts`: its life, and the calls whose return `events` hold but not their start
/// (outermost first), so each return ends its own call and the life frame stays the outermost.
fn open_before_window(state: &mut ProcessState, ts: u64, events: &[Event], out: &mut Vec<Event>) {
    let mut depth = 0u32;
    let mut unmatched = Vec::new(); // innermost first
    for e in events {
        match (e.kind, beam_of(e)) {
            (EventKind::Call, _) => depth += 1,
            (EventKind::Return | EventKind::Unwind, _) if depth > 0 => depth -= 1,
            (EventKind::Return | EventKind::Unwind, _) => unmatched.push(e.code),
            (_, Some((BeamKind::Exit, _))) => break,
            _ => {}
        }
    }
    out.push(record(ts, EventKind::Call, PROCESS_CODE, 0));
    for &code in unmatched.iter().rev() {
        out.push(record(ts, EventKind::Call, code, 0));
    }
    state.depth = unmatched.len() as u32;
    unmatched.push(PROCESS_CODE);
    state.before_window = Some((ts, unmatched));
}

/// A BEAM record of process `key`: its spawns, links, exit and what it heard of others' exits.
fn beam_record(
    state: &mut ProcessState,
    ts: u64,
    kind: BeamKind,
    payload: u64,
    out: &mut Vec<Event>,
) {
    let life = &mut state.life;
    let link = |linked, by_self| LinkChange {
        ts,
        other: payload,
        linked,
        by_self,
    };
    match kind {
        BeamKind::Spawn => {
            let cause = causality_meta(EventKind::Cause, LinkKind::ThreadStart, payload);
            out.push(Event {
                ts,
                ..crate::ring::unpack(0, cause).expect("a known kind")
            });
            life.children.push(Child {
                key: payload,
                initial_call: 0,
                answers: life.exits_unanswered.clone(),
                acks: life.acks_taken.clone(),
                at: ts,
            });
            life.awaiting_ack = true;
        }
        BeamKind::SpawnCall => {
            if let Some(child) = life.children.last_mut() {
                child.initial_call = payload as u32;
            }
        }
        BeamKind::Link => life.links.push(link(true, true)),
        BeamKind::GettingLinked => life.links.push(link(true, false)),
        BeamKind::Unlink => life.links.push(link(false, true)),
        BeamKind::GettingUnlinked => life.links.push(link(false, false)),
        BeamKind::Register | BeamKind::Parent | BeamKind::InitialCall | BeamKind::ParentCall => {
            identity(life, kind, payload)
        }
        BeamKind::ExitHeard => {
            state.call_requested = false;
            let life = &mut state.life;
            life.exits_heard.push((ts, payload));
            life.exits_unanswered.push(payload);
            // A child that died starting acknowledges nothing.
            if life.children.last().is_some_and(|c| c.key == payload) {
                life.awaiting_ack = false;
            }
            if state.depth == 0 {
                while take_waiting_request(state, state.last_ts, out) {}
            }
            receive(state, ts, None, out);
        }
        BeamKind::Asked => life.last_asked = Some((ts, payload)),
        BeamKind::Exit => exit(state, ts, payload, out),
        BeamKind::Process | BeamKind::ValueText => {}
    }
}

/// A message `e`'s arrival (`rest`: the process's records after it); false when it did not end
/// the process's wait, which goes on across it.
///
/// Another process's call request or cast is never the reply: the call still waits (two
/// servers calling each other each receive the other's request meanwhile). Nor does one that
/// comes while the process runs a call of its own end what that call waits for, when the
/// process then runs nothing before its next message or its wait's timeout: a GenServer's
/// callback waiting for another server's reply, or sleeping, is woken by each request that
/// comes (the VM reports a message when the process looks at its mailbox), and goes on
/// waiting. OTP's loop takes the request once the callback has returned, and its `receive` is
/// drawn there ([`take_waiting_request`]), as the probes of `--instrument` record it: where a
/// clause took it.
fn message_arrived(
    state: &mut ProcessState,
    e: &Event,
    rest: &[Event],
    out: &mut Vec<Event>,
) -> bool {
    let key = causality_of(e).map_or(0, |(_, key)| key);
    let answers_nothing = key & LOOP_REQUEST_BITS != 0;
    if key == TIMEOUT_KEY {
        state.life.timeouts.push(e.ts);
    }
    if key == TIMEOUT_KEY && std::mem::take(&mut state.call_requested) {
        state.life.call_timeouts.push(e.ts);
    } else if key != TIMEOUT_KEY {
        state.call_requested &= answers_nothing;
        state.life.message_received(e.ts, key);
    }
    if answers_nothing && state.depth > 0 && goes_on_waiting(rest) {
        state.requests_waiting.push_back(*e);
        return false;
    }
    if state.depth == 0 {
        while take_waiting_request(state, state.last_ts, out) {}
    }
    if key & CALL_REQUEST_BIT != 0 {
        state.life.requests_taken.push(e.ts);
    }
    receive(state, e.ts, Some(e), out);
    true
}

/// Whether a process that a message woke ran nothing recorded before its next message came or
/// its wait timed out, or before the call it was in returned (`rest`: its records after that
/// message). A request that came after a callback's awaited reply, while the callback still ran
/// (a busy machine can hold it off its scheduler for milliseconds), is taken by OTP's loop
/// once it returns, not by the callback.
fn goes_on_waiting(rest: &[Event]) -> bool {
    let ran = rest.iter().find(|e| {
        !beam_of(e).is_some_and(|(kind, _)| {
            kind.is_identity()
                || kind.is_done_to_it()
                || matches!(kind, BeamKind::Process | BeamKind::ValueText)
        })
    });
    ran.is_some_and(|e| match (e.kind, beam_of(e)) {
        (EventKind::Beam, Some((kind, _))) => kind == BeamKind::ExitHeard,
        (EventKind::Effect, _) => causality_of(e).is_some_and(|(k, _)| k == LinkKind::Message),
        (EventKind::Return, _) => true,
        _ => false,
    })
}

/// The oldest request that came while the process ran a call of its own, taken at `ts`
/// (when it was back in its loop: its last record's stamp, the callback's return): a `receive`
/// that took no time, holding the request's effect. False when none is waiting.
fn take_waiting_request(state: &mut ProcessState, ts: u64, out: &mut Vec<Event>) -> bool {
    let Some(request) = state.requests_waiting.pop_front() else {
        return false;
    };
    if causality_of(&request).is_some_and(|(_, key)| key & CALL_REQUEST_BIT != 0) {
        state.life.requests_taken.push(ts);
    }
    out.push(record(ts, EventKind::Call, RECEIVE_CODE, 0));
    out.push(Event { ts, ..request });
    out.push(record(ts, EventKind::Return, RECEIVE_CODE, 0));
    true
}

/// A message's arrival: a `receive` frame from the process's last record (it ran nothing
/// recorded in between: it waited) to `ts`, holding the message's `effect` when it has one
/// (an exit heard of is linked by [`annotate`] instead).
fn receive(state: &ProcessState, ts: u64, effect: Option<&Event>, out: &mut Vec<Event>) {
    let since = state.last_ts.min(ts);
    out.push(record(since, EventKind::Call, RECEIVE_CODE, 0));
    if let Some(effect) = effect {
        out.push(record(
            since,
            EventKind::WaitBegin,
            0,
            LinkKind::Message as u32,
        ));
        out.push(*effect);
    }
    out.push(record(ts, EventKind::Return, RECEIVE_CODE, 0));
}

/// A process's exit: its open calls end with it, then its life frame, with the reason as its
/// value (the return value's slot) and, if abnormal, its error.
fn exit(state: &mut ProcessState, ts: u64, payload: u64, out: &mut Vec<Event>) {
    let reason = payload as u32;
    let error_type = (payload >> 32) as u32;
    state.life.exit = Some(Ending {
        ts,
        reason,
        error_type,
    });
    let ending = if error_type != 0 {
        out.push(record(ts, EventKind::Raise, 0, error_type));
        EventKind::Unwind
    } else {
        EventKind::Return
    };
    for _ in 0..std::mem::take(&mut state.depth) {
        out.push(record(ts, ending, 0, 0));
    }
    if reason != 0 {
        out.push(record(ts, EventKind::Value, reason, 1));
    }
    out.push(record(ts, ending, PROCESS_CODE, 0));
    state.exited = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::{Builder, BuilderOptions};
    use crate::ring::{Cursor, Layout};

    const MS: u64 = 1_000_000;

    fn ev(ts: u64, meta: u64) -> Event {
        let mut e = crate::ring::unpack(0, meta).unwrap();
        e.ts = ts;
        e
    }

    fn window_end(end: u64) -> stuck::WindowEnd {
        stuck::WindowEnd { end, stopping: 0 }
    }

    /// A stream of a recording with `events` (its id its thread's).
    pub(super) fn stream(id: u64, events: Vec<Event>) -> StreamEvents {
        StreamEvents {
            stream: id,
            tid: id,
            first_seq: 0,
            events,
            lost: 0,
        }
    }

    #[test]
    fn payloads_round_trip_through_a_record() {
        let payload = 0xABCD_1234_5678;
        let e = ev(1, beam_meta(BeamKind::Spawn, payload));
        assert_eq!(beam_of(&e), Some((BeamKind::Spawn, payload)));
        let e = ev(1, beam_meta(BeamKind::Exit, exit_payload(7, Some(3))));
        assert_eq!(beam_of(&e), Some((BeamKind::Exit, 3 << 32 | 7)));
        let e = ev(1, message_meta(EventKind::Cause, 0xFFFF_FFFF_FFFF_FFFF));
        assert_eq!(
            causality_of(&e),
            Some((LinkKind::Message, CAUSALITY_KEY_MASK))
        );
    }

    #[test]
    fn value_texts_are_kept_in_the_names_log_beside_the_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = RecorderFile::create(
            &dir.path().join("values"),
            Layout::new(16, 4, 8, 4096),
            1,
            0,
            "{}",
        )
        .unwrap();
        crate::names::write_thread(&file, 9, "<0.9.0>");
        assert!(write_value(&file, 1, "[1, \"two\"]"));
        assert!(write_value(&file, 2, "{:ok, 3}"));
        assert!(write_state(&file, 2, "%{total: 3}"));
        let values = read_values(&file);
        assert_eq!(values.get(&1).map(String::as_str), Some("[1, \"two\"]"));
        assert_eq!(values.get(&2).map(String::as_str), Some("{:ok, 3}"));
        assert_eq!(values.len(), 2, "a state is not a value");
        let states = read_states(&file);
        assert_eq!(states.get(&2).map(String::as_str), Some("%{total: 3}"));
        assert_eq!(states.len(), 1);
        let names = crate::names::Names::read(&file);
        assert_eq!(names.threads.get(&9).map(String::as_str), Some("<0.9.0>"));
    }

    #[test]
    fn a_beam_file_gives_the_span_table_it_never_uses_to_its_rings() {
        for lossless in [true, false] {
            let beam = file_layout(2 << 20, lossless).unwrap();
            assert_eq!(beam.span_slots, 1);
            assert!(beam.file_len() <= 2 << 20, "{beam:?}");
        }
        // 2 MiB less the value area: 6 chunks of records rather than 4 with a span table.
        let flight = file_layout(2 << 20, false).unwrap();
        let block_bytes = (VALUE_SLOTS_PER_BLOCK as usize * VALUE_SLOT_SIZE) as u64;
        let with_spans = Layout::for_size((2 << 20) - 12 * block_bytes).unwrap();
        assert_eq!((flight.chunk_count, with_spans.chunk_count), (6, 4));
    }

    #[test]
    fn a_flight_file_keeps_its_last_texts_and_a_lossless_one_its_first() {
        let dir = tempfile::tempdir().unwrap();
        let layout = file_layout(2 << 20, false).unwrap();
        assert_eq!(layout.value_blocks, 12, "1/8 of 2 MiB in blocks of 20 KiB");
        assert!(
            layout.file_len() <= 2 << 20,
            "the value area is within the size asked for"
        );
        assert_eq!(
            file_layout(1 << 30, false).unwrap().value_blocks,
            MAX_VALUE_BLOCKS
        );
        let call = |store: &TextStore, file: &RecorderFile, id: u32| {
            let args = format!("[{id}]");
            store.write(file, TextKind::Value, id, &args)
                & store.write(file, TextKind::State, id, &format!("%{{last: {}}}", id - 1))
        };
        let flight = RecorderFile::create(&dir.path().join("flight"), layout, 1, 0, "{}").unwrap();
        let store = TextStore::for_file(&flight);
        assert!(!store.needs_names_lock());
        let calls = 50_000;
        for id in 1..=calls {
            assert!(call(&store, &flight, id));
        }
        assert_eq!(flight.names_usage().0, 0, "the names log stays for names");
        let (values, states) = (read_values(&flight), read_states(&flight));
        // Each call's two texts take a cell each: the last calls of as many cells, but one.
        let kept = flight.shared_value_cells() as u32 / 2;
        assert!(
            (values.len() as u32).abs_diff(kept) <= 1,
            "{} of {kept}",
            values.len()
        );
        assert!((calls - kept + 2..=calls).all(|id| values[&id] == format!("[{id}]")));
        assert!(
            (calls - kept + 2..=calls).all(|id| states[&id] == format!("%{{last: {}}}", id - 1))
        );
        assert!(read_statem_states(&flight).is_empty());
        assert_eq!(
            flight.texts_not_kept(),
            0,
            "a window loses its oldest by design"
        );

        let lossless = RecorderFile::create(
            &dir.path().join("lossless"),
            file_layout(2 << 20, true).unwrap(),
            1,
            0,
            "{}",
        )
        .unwrap();
        let store = TextStore::for_file(&lossless);
        assert!(store.needs_names_lock());
        let kept = (1..=calls)
            .take_while(|&id| call(&store, &lossless, id))
            .count() as u32;
        assert!(kept > 1000 && kept < calls, "{kept}");
        let values = read_values(&lossless);
        assert_eq!(
            values.len() as u32,
            kept + 1,
            "the first calls' (one without its state)"
        );
        assert_eq!(values[&1], "[1]");
        // What the log could not keep is counted in the file, for its reader: the state of
        // call `kept + 1` (its arguments were kept), then each later text refused.
        let refused = (kept + 2..=calls)
            .map(|id| {
                let refused = |text: &str, kind| u64::from(!store.write(&lossless, kind, id, text));
                refused("[1]", TextKind::Value) + refused("%{}", TextKind::State)
            })
            .sum::<u64>();
        assert!(refused >= u64::from(calls - kept), "{refused}");
        let reopened = RecorderFile::open(lossless.path()).unwrap();
        assert_eq!(reopened.texts_not_kept(), 1 + refused);
    }

    /// The `receive` spans among `spans`, as (start, end) in whole milliseconds, in order.
    fn waits_ms(spans: &[crate::OutSpan]) -> Vec<(u64, u64)> {
        let mut waits: Vec<(u64, u64)> = spans
            .iter()
            .filter(|s| s.code == RECEIVE_CODE)
            .map(|s| (s.start / MS, s.end / MS))
            .collect();
        waits.sort_unstable();
        waits
    }

    /// A server whose callback (code 2) waits for another server's reply while a client's
    /// call request comes, then sleeps while a cast comes: its waits are one each, ended by the
    /// reply and by the timeout, and the requests are taken where its loop took them, as the
    /// callbacks return (the last one never: the server stopped in its callback). Only the call
    /// request is a call's request taken.
    #[test]
    fn a_request_that_comes_during_a_callbacks_wait_is_taken_after_the_callback() {
        let server = 0x200;
        let (asked, reply) = (0x51 | CALL_REQUEST_BIT, 0x52);
        let (first, second, third) = (
            0x61 | CALL_REQUEST_BIT,
            0x62 | CAST_REQUEST_BIT,
            0x63 | CALL_REQUEST_BIT,
        );
        let records = vec![
            ev(0, beam_meta(BeamKind::Process, server)),
            ev(MS, pack_meta(EventKind::Call, 2, 0)),
            ev(MS, message_meta(EventKind::Cause, asked)),
            ev(3 * MS, message_meta(EventKind::Effect, first)),
            ev(9 * MS, message_meta(EventKind::Effect, reply)),
            ev(10 * MS, pack_meta(EventKind::Return, 2, 0)),
            ev(11 * MS, pack_meta(EventKind::Call, 2, 0)),
            ev(12 * MS, message_meta(EventKind::Effect, second)),
            ev(20 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
            ev(21 * MS, pack_meta(EventKind::Return, 2, 0)),
            ev(22 * MS, pack_meta(EventKind::Call, 2, 0)),
            ev(23 * MS, message_meta(EventKind::Effect, third)),
            ev(40 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
        ];
        let mut reader = BeamReader::new();
        let spans = build(&mut reader, &[stream(1, records)]);
        assert_eq!(
            waits_ms(&spans),
            [(1, 9), (10, 10), (11, 20), (21, 21), (22, 40)]
        );
        assert_eq!(reader.requests_taken(), HashSet::from([(server, 10 * MS)]));
    }

    /// A callback (code 2) that got its awaited reply, then was held off its scheduler while a
    /// client's call request came, then returned: the request ended none of its waits, and is
    /// taken where the loop took it, as the callback returned (the next callback its request).
    #[test]
    fn a_request_that_comes_after_a_callbacks_reply_is_taken_after_the_callback() {
        let (asked, reply, request) = (0x51 | CALL_REQUEST_BIT, 0x52, 0x61 | CALL_REQUEST_BIT);
        let records = vec![
            ev(0, beam_meta(BeamKind::Process, 0x200)),
            ev(MS, pack_meta(EventKind::Call, 2, 0)),
            ev(MS, message_meta(EventKind::Cause, asked)),
            ev(9 * MS, message_meta(EventKind::Effect, reply)),
            ev(12 * MS, message_meta(EventKind::Effect, request)),
            ev(15 * MS, pack_meta(EventKind::Return, 2, 0)),
            ev(16 * MS, pack_meta(EventKind::Call, 2, 0)),
            ev(17 * MS, pack_meta(EventKind::Return, 2, 0)),
        ];
        let mut reader = BeamReader::new();
        let spans = build(&mut reader, &[stream(1, records)]);
        assert_eq!(waits_ms(&spans), [(1, 9), (15, 15)]);
    }

    /// A hand-written loop (code 3, recorded) that takes call requests in its own `receive`:
    /// a request it answers (a send follows) ended its wait where it came.
    #[test]
    fn a_request_a_recorded_loop_takes_itself_ends_its_wait() {
        let request = 0x61 | CALL_REQUEST_BIT;
        let records = vec![
            ev(0, beam_meta(BeamKind::Process, 0x300)),
            ev(MS, pack_meta(EventKind::Call, 3, 0)),
            ev(5 * MS, message_meta(EventKind::Effect, request)),
            ev(6 * MS, message_meta(EventKind::Cause, 0x70)),
            ev(7 * MS, message_meta(EventKind::Effect, request + 1)),
        ];
        let mut reader = BeamReader::new();
        let spans = build(&mut reader, &[stream(1, records)]);
        assert_eq!(waits_ms(&spans), [(1, 5), (6, 7)]);
    }

    /// Two processes on two schedulers, one migrating: the client calls `ask/1` (code 1), which
    /// sends to the server and waits; the server's `serve/1` (code 2) replies.
    fn ping_pong() -> Vec<StreamEvents> {
        let (client, server) = (0x100, 0x200);
        let (request, reply) = (0x51, 0x52);
        let sched1 = vec![
            ev(0, beam_meta(BeamKind::Process, client)),
            ev(0, beam_meta(BeamKind::Spawn, server)),
            ev(MS, pack_meta(EventKind::Call, 1, 0)),
            ev(MS, pack_meta(EventKind::Value, 10, 0)),
            ev(2 * MS, message_meta(EventKind::Cause, request)),
            ev(3 * MS, beam_meta(BeamKind::Process, server)),
            ev(3 * MS, message_meta(EventKind::Effect, request)),
            ev(3 * MS, pack_meta(EventKind::Call, 2, 0)),
            ev(9 * MS, message_meta(EventKind::Cause, reply)),
            ev(9 * MS, pack_meta(EventKind::Return, 2, 0)),
        ];
        let sched2 = vec![
            ev(10 * MS, beam_meta(BeamKind::Process, client)),
            ev(10 * MS, message_meta(EventKind::Effect, reply)),
            ev(11 * MS, pack_meta(EventKind::Return, 1, 0)),
            ev(
                12 * MS,
                beam_meta(BeamKind::Exit, exit_payload(11, Some(4))),
            ),
        ];
        vec![stream(1, sched1), stream(2, sched2)]
    }

    #[test]
    fn a_wait_that_times_out_after_a_call_request_is_a_call_timeout() {
        let (caller, sleeper) = (0x100, 0x300);
        let (request, reply) = (0x51 | CALL_REQUEST_BIT, 0x52);
        let records = vec![
            ev(0, beam_meta(BeamKind::Process, caller)),
            // A call answered, then a sleep: no timeout of a call.
            ev(MS, message_meta(EventKind::Cause, request)),
            ev(2 * MS, message_meta(EventKind::Effect, reply)),
            ev(5 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
            // A call given up at 150 ms.
            ev(10 * MS, message_meta(EventKind::Cause, request)),
            ev(160 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
            // A call given up at 400 ms, though another process's call request came meanwhile.
            ev(200 * MS, message_meta(EventKind::Cause, request)),
            ev(
                201 * MS,
                message_meta(EventKind::Effect, 0x53 | CALL_REQUEST_BIT),
            ),
            ev(400 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
            // Another process's plain send, then a wait that times out.
            ev(0, beam_meta(BeamKind::Process, sleeper)),
            ev(MS, message_meta(EventKind::Cause, 0x60)),
            ev(9 * MS, message_meta(EventKind::Effect, TIMEOUT_KEY)),
        ];
        let mut reader = BeamReader::new();
        reader.split(&[stream(1, records)]);
        assert_eq!(
            reader.call_timeouts(),
            HashSet::from([(caller, 160 * MS), (caller, 400 * MS)])
        );
        // Every wait that timed out, a call's or a sleep's.
        assert_eq!(
            reader.timeouts(),
            HashSet::from([
                (caller, 5 * MS),
                (caller, 160 * MS),
                (caller, 400 * MS),
                (sleeper, 9 * MS)
            ])
        );
    }

    /// The client woken on the other scheduler in a chunk of its own there: the chunk begins
    /// with its header (its `Process` record and identity, stamped at the wake-up).
    #[test]
    fn a_wait_goes_on_across_the_header_of_a_new_chunk() {
        let mut streams = ping_pong();
        let client = 0x100;
        let header = [
            ev(10 * MS, beam_meta(BeamKind::Parent, 0x1)),
            ev(10 * MS, beam_meta(BeamKind::InitialCall, 7)),
        ];
        streams[1].events.splice(1..1, header);
        assert_eq!(
            wait_start(&streams, client),
            2 * MS,
            "waited from its send on, not from the header"
        );
    }

    /// When `process`'s first wait in `receive` began.
    fn wait_start(streams: &[StreamEvents], process: u64) -> u64 {
        let mut reader = BeamReader::new();
        let split = reader.split(streams);
        let events = &split.iter().find(|s| s.stream == process).unwrap().events;
        let receive = events
            .iter()
            .find(|e| e.kind == EventKind::Call && e.code == RECEIVE_CODE)
            .expect("the process's wait");
        receive.ts
    }

    #[test]
    fn a_wait_goes_on_across_an_unlink_another_process_made() {
        // The server, linked to the client, exits after its reply: the client hears of the
        // unlink while it sleeps, before it takes the reply.
        let mut streams = ping_pong();
        let unlinked = ev(10 * MS, beam_meta(BeamKind::GettingUnlinked, 0x200));
        streams[1].events.insert(1, unlinked);
        assert_eq!(
            wait_start(&streams, 0x100),
            2 * MS,
            "waited from its send on, not from the unlink"
        );
    }

    #[test]
    fn processes_become_streams_with_their_life_and_waits_in_receive() {
        let mut reader = BeamReader::new();
        let split = reader.split(&ping_pong());
        assert_eq!(split.len(), 2, "one stream a process");
        let client = &split[0];
        assert_eq!(client.stream, 0x100);
        let kinds: Vec<(EventKind, u32)> = client.events.iter().map(|e| (e.kind, e.code)).collect();
        assert_eq!(kinds[1], (EventKind::Call, PROCESS_CODE), "{kinds:?}");
        let receive = client
            .events
            .iter()
            .position(|e| e.kind == EventKind::Call && e.code == RECEIVE_CODE)
            .expect("the client's wait for the reply");
        assert_eq!(
            client.events[receive].ts,
            2 * MS,
            "waited from its send on, across the move to the other scheduler"
        );
        let last = client.events.last().unwrap();
        assert_eq!((last.kind, last.code), (EventKind::Unwind, PROCESS_CODE));
        assert_eq!(reader.process_counts(), (2, 1));
    }

    #[test]
    fn the_builder_links_each_receive_to_its_send() {
        let mut reader = BeamReader::new();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        for s in reader.split(&ping_pong()) {
            builder.feed(&s, &|_| None);
        }
        builder.finish_open();
        let spans = builder.take_spans();
        let find = |code: u32, stream: u64| {
            spans
                .iter()
                .find(|s| s.code == code && s.stream == stream)
                .unwrap_or_else(|| panic!("no span of code {code} in {stream:#x}: {spans:#?}"))
        };
        let ask = find(1, 0x100);
        let serve = find(2, 0x200);
        let wait = find(RECEIVE_CODE, 0x100);
        assert_eq!(wait.parent_span_id, ask.span_id, "the wait is inside ask/1");
        assert_eq!(wait.links.len(), 1, "{wait:#?}");
        assert_eq!(
            wait.links[0].span_id, serve.span_id,
            "ended by serve/1's reply"
        );
        assert_eq!(wait.links[0].kind, LinkKind::Message);
        assert_eq!(ask.values[0], 10, "ask/1's arguments");
        let client_life = find(PROCESS_CODE, 0x100);
        assert_eq!(client_life.values[1], 11, "the exit reason");
        assert_eq!(client_life.error, Some(4));
        let server_life = find(PROCESS_CODE, 0x200);
        assert!(server_life.open, "the server never exited");
        assert_eq!(
            server_life.links[0].span_id, client_life.span_id,
            "spawned by the client"
        );
    }

    #[test]
    fn records_after_a_loss_wait_for_their_process_record() {
        let mut reader = BeamReader::new();
        let mut lossy = stream(1, vec![ev(5, pack_meta(EventKind::Call, 1, 0))]);
        lossy.lost = 3;
        assert!(reader.split(&[lossy]).is_empty());
        assert_eq!(reader.unattributed, 1);
        let dir = tempfile::tempdir().unwrap();
        let file = RecorderFile::create(
            &dir.path().join("f"),
            Layout::new(16, 4, 8, 4096),
            1,
            0,
            "{}",
        )
        .unwrap();
        let mut w = file.writer(1);
        file.push(&mut w, 1, beam_meta(BeamKind::Process, 0x300));
        file.push(&mut w, 2, pack_meta(EventKind::Call, 1, 0));
        let split = reader.split(&Cursor::new().read(&file, None));
        assert_eq!(split[0].stream, 0x300);
    }

    /// A window from 10 ms of two schedulers' records: the server (registered, started by a
    /// supervisor) wrote its identity at 1 ms, began two calls and sent a message before the
    /// window, returns from them in it, receives a message whose send is older, then calls
    /// again and sends to the client, whose receive is in the window.
    fn mid_way() -> Vec<StreamEvents> {
        const SERVER: u64 = 0x100;
        const CLIENT: u64 = 0x200;
        let server = vec![
            ev(MS, beam_meta(BeamKind::Process, SERVER)),
            ev(MS, beam_meta(BeamKind::Parent, 0x50)),
            ev(MS, beam_meta(BeamKind::InitialCall, 30)),
            ev(MS, beam_meta(BeamKind::ParentCall, 31)),
            ev(MS, beam_meta(BeamKind::Register, 0)),
            ev(2 * MS, pack_meta(EventKind::Call, 5, 0)),
            ev(3 * MS, pack_meta(EventKind::Call, 6, 0)),
            ev(4 * MS, message_meta(EventKind::Cause, 0x70)),
            ev(11 * MS, pack_meta(EventKind::Return, 6, 0)),
            ev(12 * MS, pack_meta(EventKind::Return, 5, 0)),
            ev(13 * MS, message_meta(EventKind::Effect, 0x71)),
            ev(14 * MS, pack_meta(EventKind::Call, 7, 0)),
            ev(15 * MS, message_meta(EventKind::Cause, 0x72)),
            ev(16 * MS, pack_meta(EventKind::Return, 7, 0)),
        ];
        let client = vec![
            ev(5 * MS, beam_meta(BeamKind::Process, CLIENT)),
            ev(5 * MS, message_meta(EventKind::Effect, 0x70)),
            ev(6 * MS, pack_meta(EventKind::Call, 8, 0)),
            ev(17 * MS, message_meta(EventKind::Effect, 0x72)),
        ];
        vec![stream(1, server), stream(2, client)]
    }

    fn build(reader: &mut BeamReader, pass: &[StreamEvents]) -> Vec<crate::OutSpan> {
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        for s in reader.split(pass) {
            builder.feed(&s, &|_| None);
        }
        builder.finish_open();
        builder.take_spans()
    }

    /// A call whose arguments and result are written inline, its arguments' records read in
    /// two passes (the reader ran while the scheduler wrote them).
    #[test]
    fn inline_values_read_across_passes_are_the_calls_values() {
        let mut records = vec![beam_meta(BeamKind::Process, 0x100)];
        records.push(pack_meta(EventKind::Call, 1, 0));
        let inline = |slot, text, records: &mut Vec<u64>| {
            assert!(inline_values::push_inline_value(slot, text, |m| records.push(m)));
        };
        inline(0, "{:ok, #PID<0.85.0>}", &mut records);
        inline(1, ":done", &mut records);
        records.push(pack_meta(EventKind::Return, 1, 0));
        let events: Vec<Event> = records.iter().map(|&m| ev(MS, m)).collect();
        let (first, second) = events.split_at(3);
        let mut reader = BeamReader::new();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        for pass in [first, second] {
            for s in reader.split(&[stream(1, pass.to_vec())]) {
                builder.feed(&s, &|_| None);
            }
        }
        builder.finish_open();
        let spans = builder.take_spans();
        let call = spans.iter().find(|s| s.code == 1).expect("the call");
        let texts = reader.take_inline_values();
        let text = |slot: usize| texts.get(&call.values[slot]).map(String::as_str);
        assert_eq!(
            (text(0), text(1)),
            (Some("{:ok, #PID<0.85.0>}"), Some(":done"))
        );
        assert_eq!(texts.len(), 2);
    }

    /// A process calls `calls/2` (code 1), which calls `f/1` (code 2), on scheduler 1, then moves
    /// to scheduler 2, where both return and it exits. The first pass began at 1.2 ms and read
    /// scheduler 1 at 1.5 ms (the call of `calls/2` only), then scheduler 2 at 6 ms (all it
    /// wrote); the call of `f/1`, on scheduler 1, comes in the second pass.
    fn moved_between_reads() -> (Vec<StreamEvents>, [Vec<StreamEvents>; 2]) {
        let process = 0x100;
        let on_1 = [
            ev(MS, beam_meta(BeamKind::Process, process)),
            ev(MS, pack_meta(EventKind::Call, 1, 0)),
            ev(2 * MS, pack_meta(EventKind::Call, 2, 0)),
        ];
        let on_2 = vec![
            ev(3 * MS, beam_meta(BeamKind::Process, process)),
            ev(3 * MS, pack_meta(EventKind::Return, 2, 0)),
            ev(4 * MS, pack_meta(EventKind::Return, 1, 0)),
            ev(5 * MS, beam_meta(BeamKind::Exit, exit_payload(11, None))),
        ];
        let whole = vec![stream(1, on_1.to_vec()), stream(2, on_2.clone())];
        let passes = [
            vec![stream(1, on_1[..2].to_vec()), stream(2, on_2)],
            vec![stream(1, on_1[2..].to_vec())],
        ];
        (whole, passes)
    }

    /// (code, its parent's code, start, end) of each span.
    fn shape(spans: &[crate::OutSpan]) -> Vec<(u32, Option<u32>, u64, u64)> {
        let code_of = |id: u64| spans.iter().find(|s| s.span_id == id).map(|s| s.code);
        let mut shape: Vec<_> = spans
            .iter()
            .map(|s| (s.code, code_of(s.parent_span_id), s.start, s.end))
            .collect();
        shape.sort_unstable();
        shape
    }

    #[test]
    fn a_process_moved_between_two_streams_reads_is_replayed_in_order() {
        let (whole, [first, second]) = moved_between_reads();
        let expected = shape(&build(&mut BeamReader::new(), &whole));
        assert!(
            expected.contains(&(2, Some(1), 2 * MS, 3 * MS)),
            "{expected:?}"
        );
        let mut reader = BeamReader::new();
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns: 0,
            ..Default::default()
        });
        let passes = [(first, 1_200_000), (second, u64::MAX)];
        for (pass, began) in passes {
            for s in reader.split_before(&pass, began) {
                builder.feed(&s, &|_| None);
            }
        }
        builder.finish_open();
        assert_eq!(shape(&builder.take_spans()), expected);
    }

    #[test]
    fn a_window_starting_mid_way_rebuilds_what_began_before_it() {
        let mut reader = BeamReader::for_window(10 * MS, window_end(20 * MS));
        let spans = build(&mut reader, &mid_way());
        let find = |code: u32, stream: u64| {
            spans
                .iter()
                .find(|s| s.code == code && s.stream == stream)
                .unwrap_or_else(|| panic!("no span of code {code} in {stream:#x}: {spans:#?}"))
        };
        assert!(
            spans.iter().all(|s| s.start >= 10 * MS),
            "nothing older: {spans:#?}"
        );
        assert!(
            spans.iter().all(|s| s.code != 8),
            "a call begun and never ended in it"
        );
        // The server's life and the calls it returns from are rebuilt at its first record in
        // the window, nested as they were, and marked as begun before it.
        let life = find(PROCESS_CODE, 0x100);
        let (outer, inner) = (find(5, 0x100), find(6, 0x100));
        assert_eq!(
            (life.start, outer.start, inner.start),
            (11 * MS, 11 * MS, 11 * MS)
        );
        assert_eq!((inner.end, outer.end), (11 * MS, 12 * MS));
        assert_eq!(inner.parent_span_id, outer.span_id);
        assert_eq!(outer.parent_span_id, life.span_id);
        for s in [life, outer, inner] {
            assert!(
                reader.started_before_window(0x100, s.code, s.start),
                "{s:#?}"
            );
        }
        let later = find(7, 0x100);
        assert!(!reader.started_before_window(0x100, 7, later.start));
        assert_eq!(
            later.parent_span_id, life.span_id,
            "the life stays the outermost"
        );
        assert!(!reader.exited(0x100), "alive at the window's end");
        // A receive whose send is older than the window: a wait without a link. One whose send
        // is in it: linked to the sending call.
        let waits: Vec<_> = spans.iter().filter(|s| s.code == RECEIVE_CODE).collect();
        let server_wait = waits
            .iter()
            .find(|s| s.stream == 0x100)
            .expect("the server's wait");
        assert!(server_wait.links.is_empty());
        let client_wait = waits
            .iter()
            .find(|s| s.stream == 0x200)
            .expect("the client's wait");
        assert_eq!(client_wait.links.len(), 1);
        assert_eq!(client_wait.links[0].span_id, later.span_id);
        assert_eq!(
            client_wait.start,
            17 * MS,
            "no earlier record of the client in the window"
        );
    }

    /// A window of the last 3 s of 8 s: a client's `charge` (code 2, inside `run`, code 1) sent
    /// a request at 999.5 ms that a server took in its callback (code 9) at 1 s, and waited
    /// until the end; another process's call (3) ended long before the window, its next (4) is
    /// in it; a fourth's call (5), open at the end, was answered after its request.
    fn a_call_that_hangs() -> Vec<StreamEvents> {
        let call = |ts, code| ev(ts, pack_meta(EventKind::Call, code, 0));
        let ret = |ts, code| ev(ts, pack_meta(EventKind::Return, code, 0));
        let server = vec![
            ev(MS, beam_meta(BeamKind::Process, 0x100)),
            ev(999 * MS + 600, message_meta(EventKind::Effect, 0x91)),
            call(1000 * MS, 9),
            ret(1001 * MS, 9),
        ];
        let client = vec![
            ev(MS, beam_meta(BeamKind::Process, 0x200)),
            call(900 * MS, 1),
            call(999 * MS, 2),
            ev(999 * MS + 500, message_meta(EventKind::Cause, 0x91)),
        ];
        let other = vec![
            ev(MS, beam_meta(BeamKind::Process, 0x300)),
            call(100 * MS, 3),
            ret(200 * MS, 3),
            call(6000 * MS, 4),
            ret(6001 * MS, 4),
        ];
        let answered = vec![
            ev(MS, beam_meta(BeamKind::Process, 0x400)),
            call(800 * MS, 5),
            ev(801 * MS, message_meta(EventKind::Cause, 0x93)),
            ev(850 * MS, message_meta(EventKind::Effect, 0x94)),
        ];
        vec![
            stream(1, server),
            stream(2, client),
            stream(3, other),
            stream(4, answered),
        ]
    }

    #[test]
    fn a_window_keeps_a_call_that_hangs_from_its_start_and_the_server_that_took_its_request() {
        let mut reader = BeamReader::for_window(5000 * MS, window_end(8000 * MS));
        let spans = build(&mut reader, &a_call_that_hangs());
        let codes: Vec<u32> = spans.iter().map(|s| s.code).collect();
        let find = |code: u32| spans.iter().find(|s| s.code == code);
        let hung = find(2).unwrap_or_else(|| panic!("the call that hangs: {codes:?}"));
        assert_eq!(hung.start, 999 * MS, "from its own start");
        let took = find(9).unwrap_or_else(|| panic!("the server's callback: {codes:?}"));
        assert_eq!(took.start, 1000 * MS);
        let request = spans
            .iter()
            .find(|s| s.code == RECEIVE_CODE && s.stream == 0x100)
            .expect("the server's wait the request ended");
        assert_eq!(
            request.links.first().map(|l| l.span_id),
            Some(hung.span_id),
            "linked to the call that sent it"
        );
        assert!(find(4).is_some(), "the window itself is read as before");
        for (code, why) in [
            (1, "the calls around the one that hangs began before it"),
            (3, "a call that ended before the window"),
            (5, "a call answered after its request is not stuck"),
        ] {
            assert!(find(code).is_none(), "{why}: {codes:?}");
        }
        assert_eq!(
            reader.reached_back(),
            Some(999 * MS),
            "the call's start (the server has no record before its request)"
        );
        // The VM stopped (SIGTERM) at 7 s and killed the client: still stuck when it stopped.
        let mut killed = a_call_that_hangs();
        let kill = beam_meta(BeamKind::Exit, exit_payload(0, Some(1)));
        killed[1].events.push(ev(7500 * MS, kill));
        let stopped = stuck::WindowEnd {
            end: 8000 * MS,
            stopping: 7000 * MS,
        };
        let spans = build(&mut BeamReader::for_window(5000 * MS, stopped), &killed);
        assert!(spans.iter().any(|s| s.code == 2), "{spans:#?}");
        let unstopped = stuck::WindowEnd {
            end: 8000 * MS,
            stopping: 0,
        };
        let spans = build(&mut BeamReader::for_window(5000 * MS, unstopped), &killed);
        assert!(
            spans.iter().all(|s| s.code != 2),
            "an exit of its own ends the wait"
        );
        // A call waiting for less than a second when the records end is not kept.
        let mut reader = BeamReader::for_window(1500 * MS, window_end(1900 * MS));
        let spans = build(&mut reader, &a_call_that_hangs());
        assert!(spans.iter().all(|s| s.code != 2), "{spans:#?}");
        assert_eq!(reader.reached_back(), None);
    }

    #[test]
    fn a_window_names_a_process_by_the_identity_its_chunks_repeat() {
        let mut reader = BeamReader::for_window(10 * MS, window_end(20 * MS));
        let mut spans = build(&mut reader, &mid_way());
        let code = |qualname: &str| crate::names::CodeInfo {
            qualname: qualname.to_owned(),
            ..Default::default()
        };
        let mut names = crate::names::Names::default();
        names.codes.insert(30, code("Cart.Server.init/1"));
        names.codes.insert(31, code("supervisor:init/1"));
        names.threads.insert(0x50, "Cart.Sup".to_owned());
        names.threads.insert(0x100, "Cart.Server".to_owned());
        let out = annotate(
            &reader,
            &mut spans,
            &Texts {
                names: &names,
                values: &HashMap::new(),
                statem_states: &HashMap::new(),
            },
        );
        let life = spans
            .iter()
            .find(|s| s.code == PROCESS_CODE && s.stream == 0x100)
            .unwrap();
        let attributes = &out.attributes[&life.span_id];
        let attribute = |key| attributes.iter().find(|(k, _)| *k == key).map(|(_, v)| v);
        assert_eq!(
            attribute(INITIAL_CALL),
            Some(&Attr::Text("Cart.Server.init/1".into()))
        );
        assert_eq!(attribute(SUPERVISOR), Some(&Attr::Text("Cart.Sup".into())));
        assert!(reader.processes[&0x100].life.registered);
    }

    #[test]
    fn identity_records_in_a_whole_recording_change_no_span() {
        let with_headers = |headers: bool| {
            let mut events = vec![
                ev(MS, beam_meta(BeamKind::Process, 0x100)),
                ev(2 * MS, pack_meta(EventKind::Call, 5, 0)),
            ];
            if headers {
                // A chunk began here: the tracer repeats whose records follow and who it is.
                events.push(ev(3 * MS, beam_meta(BeamKind::Process, 0x100)));
                events.push(ev(3 * MS, beam_meta(BeamKind::Parent, 0x50)));
                events.push(ev(3 * MS, beam_meta(BeamKind::InitialCall, 30)));
            }
            events.push(ev(4 * MS, pack_meta(EventKind::Return, 5, 0)));
            let spans = build(&mut BeamReader::new(), &[stream(1, events)]);
            spans
                .iter()
                .map(|s| (s.code, s.start, s.end, s.open))
                .collect::<Vec<_>>()
        };
        assert_eq!(with_headers(true), with_headers(false));
    }
}
