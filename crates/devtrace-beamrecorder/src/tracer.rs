//! The tracer's state and its handling of each trace event: which process a record is for
//! (a [`BeamKind::Process`] record when a scheduler's tracer sees another process than
//! before), code ids for functions, value summaries, message keys.
//!
//! Hot path: one thread-local writer per scheduler thread (the VM calls the tracer on the
//! scheduler running the traced process), a thread-local cache of code ids and of the modules
//! known to be state machines, no lock but the names log's (taken to name a function, a
//! process or an exception type the first time, and, in a lossless recording, to keep a value
//! summary's text too long to go into the ring with its call (`beam::inline_values`): a flight
//! recorder keeps those in the file's value area, which takes no lock)
//! and, for a `gen_statem` callback only, the one keeping the state it was given until it
//! returns.
//!
//! Each chunk of a scheduler's ring holds, before a process's first record there, its header:
//! its `Process` record and its identity (parent, initial calls, registered), kept per live
//! process, so a flight recorder's window — which begins at a chunk — names and places the
//! processes spawned before it.
//!
//! Also here: the lifecycle events (a spawn's initial call, links, a registered name, a
//! monitor's `'DOWN'` or a trapped `'EXIT'` as the exit it tells of), written as BEAM records
//! that devtrace-recorder's `beam` module turns into span events, attributes and links.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use devtrace_recorder::beam::{self, BeamKind, TextKind, TextStore, function_names, inline_values};
use devtrace_recorder::names;
use devtrace_recorder::ring::{
    EventKind, RETURN_INTO_TAIL_CALL, RecorderFile, ThreadWriter, pack_meta,
};

use crate::ffi::{self, ErlNifEnv, Term};
use crate::hot::HotCalls;
use crate::statem::{self, Left, StatemAtoms};
use crate::summary::{self, Summarizer, Syntax};
use crate::word_hash::{WordMap, WordSet};

/// What the runtime asked for when it opened the file.
pub struct Options {
    pub syntax: Syntax,
    /// Modules never recorded (OTP's, Elixir's, the runtime's own): atom terms.
    pub excluded: WordSet<Term>,
    /// Summaries of arguments and return values.
    pub values: bool,
    /// Whose GenServer state is summarised before and after each callback (needs `values`).
    pub state: Option<StateOptions>,
    /// Atoms that recognise OTP's processes and messages.
    pub known: Known,
    /// Under `devtrace run --plan`: the only functions recorded, `(module, function, arity)`
    /// (a module loaded later is traced whole until the runtime narrows its patterns; the
    /// calls of its other functions are dropped here meanwhile).
    pub plan: Option<WordSet<(Term, Term, u32)>>,
    /// Keep the processes seen for the first time for the runtime to take ([`Tracer::take_seen`]):
    /// a plan traced by meta patterns sets no process's flags, so the runtime names and follows
    /// only the processes that ran its functions.
    pub announce: bool,
    /// Calls of one function one scheduler makes within 100 ms (no message recorded there
    /// between two) that make it hot ([`crate::hot`]; 0: never).
    pub hot_calls: u32,
}

impl Options {
    fn recorded(&self, module: Term, function: Term, arity: u32) -> bool {
        !self.excluded.contains(&module)
            && self
                .plan
                .as_ref()
                .is_none_or(|plan| plan.contains(&(module, function, arity)))
    }
}

/// The atoms of OTP's spawns and exit messages (atoms are words valid in every env).
pub struct Known {
    proc_lib: Term,
    init_p: Term,
    gen_module: Term,
    init_it: Term,
    gen_statem: Term,
    init: Term,
    down: Term,
    exit: Term,
    process: Term,
    timeout: Term,
    gen_call: Term,
    gen_cast: Term,
    pub statem: StatemAtoms,
}

impl Known {
    pub(crate) fn new(env: *mut ErlNifEnv) -> Known {
        let atom = |name: &std::ffi::CStr| {
            // SAFETY: a NUL-terminated name.
            unsafe { ffi::enif_make_atom(env, name.as_ptr()) }
        };
        Known {
            proc_lib: atom(c"proc_lib"),
            init_p: atom(c"init_p"),
            gen_module: atom(c"gen"),
            init_it: atom(c"init_it"),
            gen_statem: atom(c"gen_statem"),
            init: atom(c"init"),
            down: atom(c"DOWN"),
            exit: atom(c"EXIT"),
            process: atom(c"process"),
            timeout: atom(c"timeout"),
            gen_call: atom(c"$gen_call"),
            gen_cast: atom(c"$gen_cast"),
            statem: StatemAtoms::new(env),
        }
    }

    /// The initial call of a process spawned to run `{M, F, Args}` (see [`InitialCall`]).
    pub(crate) fn initial_call(&self, env: *mut ErlNifEnv, mfa: Term) -> Option<InitialCall> {
        let k = self;
        let [module, function, args] = tuple3(env, mfa)?;
        let items = list_items(env, args);
        if module != k.proc_lib || function != k.init_p || items.len() != 5 {
            return Some(InitialCall {
                module,
                function,
                arity: items.len() as u32,
                statem: false,
            });
        }
        // proc_lib:init_p(Parent, Ancestors, M, F, A).
        let (module, function, args) = (items[2], items[3], list_items(env, items[4]));
        if module != k.gen_module || function != k.init_it || args.len() < 6 {
            return Some(InitialCall {
                module,
                function,
                arity: args.len() as u32,
                statem: false,
            });
        }
        // gen:init_it(GenMod, Starter, Parent, [Name,] Mod, Args, Options).
        Some(InitialCall {
            module: args[args.len() - 3],
            function: k.init,
            arity: 1,
            statem: args[0] == k.gen_statem,
        })
    }

    /// The key of a message (see [`message_key`]): the VM's `timeout` (what it reports a
    /// `receive` that timed out as receiving) has its own, and OTP's call requests (`{'$gen_call',
    /// From, Request}`) and casts (`{'$gen_cast', Request}`) are marked, so that the reader can
    /// tell a call given up and a request that only a server's loop takes
    /// (`beam::TIMEOUT_KEY`, `beam::CALL_REQUEST_BIT`, `beam::CAST_REQUEST_BIT`).
    pub(crate) fn message_key(&self, env: *mut ErlNifEnv, message: Term) -> u64 {
        if message == self.timeout {
            return beam::TIMEOUT_KEY;
        }
        let key = message_key(message) & !(beam::CALL_REQUEST_BIT | beam::CAST_REQUEST_BIT);
        match statem::tuple(env, message) {
            Some(&[tag, _, _]) if tag == self.gen_call => key | beam::CALL_REQUEST_BIT,
            Some(&[tag, _]) if tag == self.gen_cast => key | beam::CAST_REQUEST_BIT,
            _ => key,
        }
    }

    /// The process whose exit a message tells of: a monitor's `{'DOWN', Ref, process, Pid,
    /// Reason}` or a trapped `{'EXIT', Pid, Reason}`.
    pub(crate) fn exit_told(&self, env: *mut ErlNifEnv, message: Term) -> Option<Term> {
        let k = self;
        let items = statem::tuple(env, message)?;
        let pid = match *items {
            [tag, _, kind, pid, _] if tag == k.down && kind == k.process => pid,
            [tag, pid, _] if tag == k.exit => pid,
            _ => return None,
        };
        // SAFETY: a term of this env.
        (unsafe { ffi::enif_is_pid(env, pid) } != 0).then_some(pid)
    }
}

/// A spawned process's initial call, as proc_lib's `'$initial_call'` says: `Mod:init/1` for
/// a process started by `gen` (a `gen_server`, `gen_statem`, supervisor: `Mod` is the
/// callback module, `supervisor` for a supervisor), `M:F/A` for `proc_lib:spawn*(M, F, A)`,
/// the spawned function otherwise.
pub struct InitialCall {
    pub module: Term,
    pub function: Term,
    pub arity: u32,
    /// Started by `gen_statem`: `module` is a state machine.
    pub statem: bool,
}

/// Which GenServers' state is recorded, and the atoms that recognise their callbacks.
pub struct StateOptions {
    /// The modules chosen (atom terms); None: every recorded module.
    pub modules: Option<WordSet<Term>>,
    /// (function, arity) of the callbacks whose last argument is the state before.
    pub takes_state: Vec<(Term, u32)>,
    /// (function, arity) of the callbacks whose return value holds the state after.
    pub returns_state: Vec<(Term, u32)>,
    /// `reply`: the state is a reply tuple's third element.
    pub reply: Term,
    /// `stop`: the state is a stop tuple's last element.
    pub stop: Term,
    /// `noreply` and `ok`: the state is the tuple's second element.
    pub noreply: Term,
    pub ok: Term,
}

impl StateOptions {
    pub(crate) fn chosen(&self, module: Term) -> bool {
        self.modules.as_ref().is_none_or(|m| m.contains(&module))
    }

    /// The state argument of a callback's call (its last), if `module:function` is one.
    fn before(&self, module: Term, function: Term, args: &[Term]) -> Option<Term> {
        let arity = args.len() as u32;
        (self.chosen(module) && self.takes_state.contains(&(function, arity)))
            .then(|| args.last().copied())
            .flatten()
    }

    /// The state in what a callback returned (`{reply, R, S}`, `{reply, R, S, Action}`,
    /// `{noreply, S}`, `{noreply, S, Action}`, `{ok, S}`, `{ok, S, Action}`, `{stop, Why, S}`,
    /// `{stop, Why, Reply, S}`).
    fn after(
        &self,
        env: *mut ErlNifEnv,
        module: Term,
        function: Term,
        arity: u32,
        result: Term,
    ) -> Option<Term> {
        if !self.chosen(module) || !self.returns_state.contains(&(function, arity)) {
            return None;
        }
        let items = tuple_elements(env, result)?;
        match items.as_slice() {
            [tag, _, state, ..] if *tag == self.reply => Some(*state),
            [tag, .., state] if *tag == self.stop && items.len() >= 3 => Some(*state),
            [tag, state, ..] if *tag == self.noreply || *tag == self.ok => Some(*state),
            _ => None,
        }
    }
}

pub struct Tracer {
    pub file: RecorderFile,
    pub options: Options,
    /// Serialises appends to the names log (the file's rule).
    names: Mutex<Names>,
    /// Where value and state summaries are kept: the names log (lossless) or the value area
    /// (a flight recorder's file).
    texts: TextStore,
    next_value: AtomicU32,
    pub events: EventCount,
    pub values_not_kept: AtomicU64,
    /// Modules known to be `gen_statem` callback modules (seen started by `gen_statem`, or
    /// asked for their `callback_mode/0`); `statem_generation` counts changes, so each
    /// scheduler thread refreshes its copy only then.
    statem_modules: Mutex<WordSet<Term>>,
    statem_generation: AtomicU32,
    /// The state and data a `gen_statem` callback was given, by process, until it returns.
    statem_calls: Mutex<WordMap<u64, StatemCall>>,
    /// Who each live process is (its spawn's parent and initial calls, whether it registered a
    /// name), re-written the first time it writes into a chunk; forgotten at its exit.
    identities: Mutex<WordMap<u64, Identity>>,
    /// The processes seen for the first time since the runtime last took them (with
    /// `announce`; local pids are immediate terms, valid in every env), at most [`SEEN_KEPT`].
    seen: Mutex<Vec<Term>>,
    /// Functions called too often to record call by call.
    pub(crate) hot: HotCalls,
}

/// Processes seen for the first time kept until the runtime takes them (it does every few
/// milliseconds; beyond this, a process is left unnamed rather than memory grown).
const SEEN_KEPT: usize = 65_536;

/// What the identity records of a process say (`beam::BeamKind::Parent` and after).
#[derive(Default, Clone)]
struct Identity {
    parent: u64,
    initial_call: u32,
    parent_call: u32,
    /// Its registered name, as named in the log.
    registered: Option<String>,
}

/// The most records a process's header takes: its `Process` record and its identity's four.
const HEADER_RECORDS: u32 = 5;
/// Processes named in the log are remembered up to this many: beyond it the set is emptied, and
/// a process is named again (by its registered name, if it has one) when it writes again. (Not
/// forgotten at its exit: a link event naming it afterwards would name it by its pid again.)
const NAMED_PROCESSES_KEPT: usize = 65_536;

struct StatemCall {
    code: u32,
    state: String,
    data: String,
}

#[derive(Default)]
struct Names {
    codes: WordMap<(Term, Term, u32), u32>,
    exceptions: WordMap<String, u32>,
    processes: WordSet<u64>,
}

pub static TRACER: OnceLock<Tracer> = OnceLock::new();

/// How a recorded function ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Returned,
    Raised,
    /// In a tail call of its module's function, whose span follows its own.
    TailCall,
}

/// The trace events the tracer records (`erl_tracer:trace/5`'s first argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Call,
    ReturnFrom,
    ExceptionFrom,
    Send,
    Receive,
    Spawn,
    Exit,
    Register,
    Link,
    Unlink,
    GettingLinked,
    GettingUnlinked,
    Other,
}

/// Per scheduler thread.
struct Local {
    writer: Option<ThreadWriter>,
    /// The process the last records were for (0: none yet).
    current: u64,
    codes: WordMap<(Term, Term, u32), u32>,
    /// The tracer's `statem_modules` as of `statem_generation`.
    statem: (u32, WordSet<Term>),
    /// The processes whose header the writer's chunk holds (the chunk by its first record's
    /// sequence number).
    in_chunk: (u64, WordSet<u64>),
    /// Processes this thread knows are named in the log (so a process switch, on every hop of
    /// a message, takes no lock); emptied at [`NAMED_PROCESSES_KEPT`].
    named: WordSet<u64>,
}

/// The events written, counted per thread (a counter of its own cache line each, as threads
/// take them round), so that schedulers do not share one counter's line on every event.
#[derive(Default)]
pub struct EventCount {
    slots: [PaddedCounter; EVENT_COUNT_SLOTS],
}

#[derive(Default)]
#[repr(align(128))]
struct PaddedCounter(AtomicU64);

const EVENT_COUNT_SLOTS: usize = 16;

static NEXT_EVENT_SLOT: AtomicU32 = AtomicU32::new(0);

impl EventCount {
    fn add(&self, n: u64) {
        let slot = EVENT_SLOT.with(|slot| *slot);
        self.slots[slot].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The events written so far, on every thread.
    pub fn total(&self) -> u64 {
        self.slots.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// An event's records: a call or an ending, with its value's (at most 7: an exception, its
/// value's four text records and value record, the unwind).
#[derive(Default)]
struct Records {
    metas: [u64; 8],
    len: usize,
}

impl Records {
    fn push(&mut self, meta: u64) {
        self.metas[self.len] = meta;
        self.len += 1;
    }

    fn as_slice(&self) -> &[u64] {
        &self.metas[..self.len]
    }
}

/// Value ids a thread reserves at once (see [`Tracer::next_value_id`]).
const VALUE_IDS_A_BLOCK: u32 = 256;

thread_local! {
    /// This thread's slot of [`EventCount`].
    static EVENT_SLOT: usize =
        NEXT_EVENT_SLOT.fetch_add(1, Ordering::Relaxed) as usize % EVENT_COUNT_SLOTS;
    /// This thread's reserved value ids: the next and the end of its block.
    static VALUE_IDS: std::cell::Cell<(u32, u32)> = const { std::cell::Cell::new((0, 0)) };
    static LOCAL: RefCell<Local> = RefCell::new(Local {
        writer: None,
        current: 0,
        codes: WordMap::default(),
        statem: (0, WordSet::default()),
        in_chunk: (0, WordSet::default()),
        named: WordSet::default(),
    });
}

impl Tracer {
    pub fn new(file: RecorderFile, options: Options) -> Tracer {
        let texts = TextStore::for_file(&file);
        let hot = HotCalls::new(options.hot_calls);
        Tracer {
            file,
            options,
            names: Mutex::new(Names::default()),
            texts,
            next_value: AtomicU32::new(1),
            events: EventCount::default(),
            values_not_kept: AtomicU64::new(0),
            statem_modules: Mutex::new(WordSet::default()),
            statem_generation: AtomicU32::new(0),
            statem_calls: Mutex::new(WordMap::default()),
            identities: Mutex::new(WordMap::default()),
            seen: Mutex::new(Vec::new()),
            hot,
        }
    }

    /// The processes seen for the first time since the last call (see [`Options::announce`]).
    pub fn take_seen(&self) -> Vec<Term> {
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Notes that `module` is a `gen_statem` callback module.
    fn mark_statem(&self, module: Term) {
        let mut modules = self
            .statem_modules
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if modules.insert(module) {
            self.statem_generation.fetch_add(1, Ordering::Release);
        }
    }

    /// Whether `module` is known to be a `gen_statem` callback module (one atomic load while
    /// none is).
    fn is_statem(&self, module: Term) -> bool {
        let generation = self.statem_generation.load(Ordering::Acquire);
        if generation == 0 {
            return false;
        }
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            if local.statem.0 != generation {
                let modules = self
                    .statem_modules
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                local.statem = (generation, modules.clone());
            }
            local.statem.1.contains(&module)
        })
    }

    /// Writes records for process `pid` (a local pid term) from this thread.
    fn write(&self, env: *mut ErlNifEnv, pid: Term, records: &[u64]) {
        let key = process_key(pid);
        LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let local = &mut *local;
            let w = local.writer.get_or_insert_with(|| {
                // SAFETY: gettid has no preconditions.
                self.file.writer(unsafe { libc::gettid() } as u64)
            });
            // An event's records and its process's header go into one chunk, and a chunk
            // holds the header of each process before its first record there: a window, which
            // begins at a chunk, knows whose records it holds and who they are.
            if w.room() < HEADER_RECORDS + records.len() as u32 {
                self.file.start_chunk(w);
            }
            let same_chunk = local.in_chunk.0 == w.chunk_start();
            if !same_chunk {
                local.in_chunk.0 = w.chunk_start();
                local.in_chunk.1.clear();
            }
            // One stamp for an event's records (and its process's header): they happen at once,
            // and a stamp a record cost ≈ 5 % of a recorded message-passing hop here.
            let now = w.clock().now();
            // The process of the last records, in the same chunk, has its header there.
            let header_in_chunk =
                same_chunk && local.current == key || local.in_chunk.1.contains(&key);
            let first_in_chunk = !header_in_chunk;
            if local.current != key || first_in_chunk {
                local.current = key;
                if !local.named.contains(&key) {
                    self.name_process(env, key, pid);
                    if local.named.len() >= NAMED_PROCESSES_KEPT {
                        local.named.clear();
                    }
                    local.named.insert(key);
                }
                self.file
                    .push(w, now, beam::beam_meta(BeamKind::Process, key));
                if first_in_chunk {
                    local.in_chunk.1.insert(key);
                    for meta in self.identity_records(key) {
                        self.file.push(w, now, meta);
                    }
                }
            }
            self.file.push_all(w, now, records);
        });
        self.events.add(records.len() as u64);
    }

    /// The identity records of process `key` (none for a process whose spawn was not seen).
    fn identity_records(&self, key: u64) -> Vec<u64> {
        let identities = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        let Some(id) = identities.get(&key) else {
            return Vec::new();
        };
        let mut out = vec![beam::beam_meta(BeamKind::Parent, id.parent)];
        if id.initial_call != 0 {
            out.push(beam::beam_meta(
                BeamKind::InitialCall,
                id.initial_call as u64,
            ));
        }
        if id.parent_call != 0 {
            out.push(beam::beam_meta(BeamKind::ParentCall, id.parent_call as u64));
        }
        if id.registered.is_some() {
            out.push(beam::beam_meta(BeamKind::Register, 0));
        }
        out
    }

    /// Notes who process `child` is, spawned by `parent` in `initial_call` (0: unknown).
    fn note_spawn(&self, parent: u64, child: u64, initial_call: u32) {
        let mut identities = self.identities.lock().unwrap_or_else(|e| e.into_inner());
        let parent_call = identities.get(&parent).map_or(0, |p| p.initial_call);
        identities.insert(
            child,
            Identity {
                parent,
                initial_call,
                parent_call,
                registered: None,
            },
        );
    }

    /// Forgets what the tracer kept of process `key`, which exited: every per-process table is
    /// bounded by the processes alive (the named ones' set by [`NAMED_PROCESSES_KEPT`]).
    fn forget(&self, key: u64) {
        self.identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        self.statem_calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Names a process by its pid the first time it is seen (a later registered name replaces
    /// it in the log).
    fn name_process(&self, env: *mut ErlNifEnv, key: u64, pid: Term) {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        if names.processes.len() >= NAMED_PROCESSES_KEPT {
            names.processes.clear();
        }
        if names.processes.insert(key) {
            let _ = env;
            if self.options.announce {
                let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
                if seen.len() < SEEN_KEPT {
                    seen.push(pid);
                }
            }
            let registered = self
                .identities
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .and_then(|id| id.registered.clone());
            let name = registered.unwrap_or_else(|| summary::opaque_text(pid));
            names::write_thread(&self.file, key, &name);
        }
    }

    fn set_process_name(&self, key: u64, name: &str) {
        let _names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        names::write_thread(&self.file, key, name);
    }

    /// The code id of `module:function/arity`, named in the log the first time.
    fn code(&self, env: *mut ErlNifEnv, module: Term, function: Term, arity: u32) -> u32 {
        let id = (module, function, arity);
        if let Some(code) = LOCAL.with(|l| l.borrow().codes.get(&id).copied()) {
            return code;
        }
        let code = {
            let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            let next = names.codes.len() as u32 + 1;
            *names.codes.entry(id).or_insert_with(|| {
                let module_text = summary::atom_text(env, module).unwrap_or_default();
                let function_text = summary::atom_text(env, function).unwrap_or_default();
                names::write_code(
                    &self.file,
                    next,
                    &function_names::code_info(&module_text, &function_text, arity),
                );
                next
            })
        };
        LOCAL.with(|l| l.borrow_mut().codes.insert(id, code));
        code
    }

    /// The id of an exception type (`error:badarith`, `exit:killed`), named the first time.
    fn exception_type(&self, name: &str) -> u32 {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let next = names.exceptions.len() as u32 + 1;
        *names.exceptions.entry(name.to_owned()).or_insert_with(|| {
            names::write_exception(&self.file, next, name);
            next
        })
    }

    /// A value id no other value has: taken from a block of [`VALUE_IDS_A_BLOCK`] this thread
    /// reserved, so schedulers do not share a counter's cache line on every value.
    fn next_value_id(&self) -> u32 {
        VALUE_IDS.with(|ids| {
            let (next, end) = ids.get();
            let (next, end) = if next == end || next == 0 {
                let start = self
                    .next_value
                    .fetch_add(VALUE_IDS_A_BLOCK, Ordering::Relaxed);
                (start, start.wrapping_add(VALUE_IDS_A_BLOCK))
            } else {
                (next, end)
            };
            ids.set((next.wrapping_add(1), end));
            next
        })
    }

    /// Keeps a summary's text; its value id (0 when it could not be kept).
    fn value(&self, text: &str) -> u32 {
        let id = self.next_value_id();
        if self.keep(TextKind::Value, id, text) {
            id
        } else {
            0
        }
    }

    /// Keeps `text` of `kind` under `id` where the file keeps texts (counted when not kept).
    fn keep(&self, kind: TextKind, id: u32, text: &str) -> bool {
        let kept = if self.texts.needs_names_lock() {
            let _names = self.names.lock().unwrap_or_else(|e| e.into_inner());
            self.texts.write(&self.file, kind, id, text)
        } else {
            self.texts.write(&self.file, kind, id, text)
        };
        if !kept {
            self.values_not_kept.fetch_add(1, Ordering::Relaxed);
        }
        kept
    }

    /// Keeps the summary of a GenServer's state under the id of the value it goes with.
    fn state(&self, env: *mut ErlNifEnv, anchor: u32, state: Term) {
        if anchor != 0 {
            self.state_text(anchor, &self.summarizer(env).summary(state));
        }
    }

    /// Keeps a state's summary `text` under the id of the value it goes with.
    fn state_text(&self, anchor: u32, text: &str) {
        self.keep_beside(TextKind::State, anchor, text);
    }

    /// Keeps the state name a `gen_statem` callback left, under the id of its return value.
    fn statem_state(&self, anchor: u32, text: &str) {
        self.keep_beside(TextKind::StatemState, anchor, text);
    }

    /// Keeps `text` under the id of the value it goes with, `anchor`, if that was kept.
    fn keep_beside(&self, kind: TextKind, anchor: u32, text: &str) {
        if anchor != 0 {
            self.keep(kind, anchor, text);
        }
    }

    fn summarizer(&self, env: *mut ErlNifEnv) -> Summarizer {
        Summarizer::new(env, self.options.syntax)
    }

    /// One trace event (the arguments of `erl_tracer:trace/5`, `extra` from its options).
    pub(crate) fn trace(
        &self,
        env: *mut ErlNifEnv,
        tag: Tag,
        tracee: Term,
        term: Term,
        extra: Option<Term>,
    ) {
        // SAFETY: a term of this env.
        if unsafe { ffi::enif_is_pid(env, tracee) } == 0 {
            return; // a port's events
        }
        match tag {
            Tag::Call => self.call(env, tracee, term),
            Tag::ReturnFrom => self.returned(env, tracee, term, extra, false),
            Tag::ExceptionFrom => self.returned(env, tracee, term, extra, true),
            Tag::Send => {
                crate::hot::message();
                let key = self.options.known.message_key(env, term);
                let sent = beam::message_meta(EventKind::Cause, key);
                // A call request's destination: the call's server, even if it never takes it.
                let asked = extra
                    .filter(|_| key & beam::CALL_REQUEST_BIT != 0)
                    .and_then(|to| local_pid(env, to));
                match asked {
                    Some(to) => {
                        let asked = beam::beam_meta(BeamKind::Asked, process_key(to));
                        self.write(env, tracee, &[sent, asked]);
                    }
                    None => self.write(env, tracee, &[sent]),
                }
            }
            Tag::Receive => {
                crate::hot::message();
                let record = match self.options.known.exit_told(env, term) {
                    Some(gone) => beam::beam_meta(BeamKind::ExitHeard, process_key(gone)),
                    None => {
                        let key = self.options.known.message_key(env, term);
                        beam::message_meta(EventKind::Effect, key)
                    }
                };
                self.write(env, tracee, &[record]);
            }
            Tag::Spawn => self.spawn(env, tracee, term, extra),
            Tag::Exit => self.exit(env, tracee, term),
            Tag::Register => {
                if let Some(name) = summary::atom_text(env, term) {
                    let key = process_key(tracee);
                    // Named after its first record, so the pid's name comes first in the log.
                    self.write(env, tracee, &[beam::beam_meta(BeamKind::Register, 0)]);
                    let name = summary::module_name(&name);
                    if let Some(id) = self
                        .identities
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_mut(&key)
                    {
                        id.registered = Some(name.to_owned());
                    }
                    self.set_process_name(key, name);
                }
            }
            Tag::Link => self.link(env, tracee, term, BeamKind::Link),
            Tag::Unlink => self.link(env, tracee, term, BeamKind::Unlink),
            Tag::GettingLinked => self.link(env, tracee, term, BeamKind::GettingLinked),
            Tag::GettingUnlinked => self.link(env, tracee, term, BeamKind::GettingUnlinked),
            Tag::Other => {}
        }
    }

    /// A spawn: the child, then its initial call (`extra` is the spawned `{M, F, Args}`).
    fn spawn(&self, env: *mut ErlNifEnv, tracee: Term, child: Term, mfa: Option<Term>) {
        let spawned = beam::beam_meta(BeamKind::Spawn, process_key(child));
        let known = &self.options.known;
        let Some(call) = mfa.and_then(|mfa| known.initial_call(env, mfa)) else {
            self.note_spawn(process_key(tracee), process_key(child), 0);
            self.write(env, tracee, &[spawned]);
            return;
        };
        if call.statem {
            self.mark_statem(call.module);
        }
        let code = self.code(env, call.module, call.function, call.arity);
        self.note_spawn(process_key(tracee), process_key(child), code);
        let initial = beam::beam_meta(BeamKind::SpawnCall, code as u64);
        self.write(env, tracee, &[spawned, initial]);
    }

    /// A link made or removed, by the traced process or by `other` (a port's links are not
    /// recorded). `other` is named, so the link's event can name it.
    fn link(&self, env: *mut ErlNifEnv, tracee: Term, other: Term, kind: BeamKind) {
        // SAFETY: a term of this env.
        if unsafe { ffi::enif_is_pid(env, other) } == 0 {
            return;
        }
        let key = process_key(other);
        self.name_process(env, key, other);
        self.write(env, tracee, &[beam::beam_meta(kind, key)]);
    }

    fn call(&self, env: *mut ErlNifEnv, tracee: Term, mfa: Term) {
        if let Some([module, function, args]) = tuple3(env, mfa) {
            self.called(env, tracee, (module, function), args, 0);
        }
    }

    /// A call of `module:function` with the list `args` by process `tracee` (a trace event's,
    /// aux 0, or the probe compiled into an instrumented function's, aux
    /// [`beam::PROBED_CALL`]).
    pub(crate) fn called(
        &self,
        env: *mut ErlNifEnv,
        tracee: Term,
        (module, function): (Term, Term),
        args: Term,
        aux: u32,
    ) {
        if self.options.excluded.contains(&module) {
            return;
        }
        let mut arity: std::os::raw::c_uint = 0;
        // SAFETY: a term of this env (not a proper list: 0, as a trace event's never is).
        unsafe { ffi::enif_get_list_length(env, args, &mut arity) };
        if !self.options.recorded(module, function, arity) {
            return;
        }
        let code = self.code(env, module, function, arity);
        let probed = aux == beam::PROBED_CALL;
        if probed && self.hot.is_hot(code) {
            return;
        }
        if self.hot.count(code) {
            // A traced function's pattern goes off (the runtime); a probed one's calls are
            // dropped from this one on (its return with them).
            self.hot.found(&self.file, (module, function, arity), code);
            if probed {
                return;
            }
        }
        let call = pack_meta(EventKind::Call, code, aux);
        if arity == 0 && function == self.options.known.statem.callback_mode {
            self.mark_statem(module);
        }
        let mut records = Records::default();
        records.push(call);
        if self.options.values && arity > 0 {
            let text = self.summarizer(env).arguments(args);
            let anchors = self.keeps_state(module, (function, arity), true);
            let value = self.push_value(&text, 0, anchors, &mut records);
            summary::recycle(text);
            self.state_before(env, tracee, (module, function, arity, code), args, value);
        }
        self.write(env, tracee, records.as_slice());
    }

    /// Whether a state may be kept beside the value of `function/arity` of `module`: its
    /// arguments' (`before`) or its return value's. A chosen GenServer's callbacks that take
    /// or return the state, and any function of a chosen state machine.
    fn keeps_state(&self, module: Term, (function, arity): (Term, u32), before: bool) -> bool {
        self.options.state.as_ref().is_some_and(|s| {
            let callbacks = if before {
                &s.takes_state
            } else {
                &s.returns_state
            };
            s.chosen(module) && (callbacks.contains(&(function, arity)) || self.is_statem(module))
        })
    }

    /// Pushes the records of value summary `text` in `slot` (0 arguments, 1 return value, 2
    /// exception): the text itself, when it is short and no state is kept beside it
    /// (`anchors`), else a value record naming the id it is kept under, returned (else 0).
    fn push_value(&self, text: &str, slot: u32, anchors: bool, records: &mut Records) -> u32 {
        if !anchors && inline_values::push_inline_value(slot, text, |m| records.push(m)) {
            return 0;
        }
        let id = self.value(text);
        records.push(pack_meta(EventKind::Value, id, slot));
        id
    }

    /// The state a GenServer's or a `gen_statem`'s callback was given, kept under the id of
    /// its arguments' summary `value`; a state machine's is also kept until it returns. The
    /// arguments are only listed for a call that may be such a callback: most calls are not,
    /// and listing them was 5 % of a recorded message-passing hop.
    fn state_before(
        &self,
        env: *mut ErlNifEnv,
        tracee: Term,
        (module, function, arity, code): (Term, Term, u32, u32),
        args: Term,
        value: u32,
    ) {
        let Some(state) = self.options.state.as_ref().filter(|s| s.chosen(module)) else {
            return;
        };
        if !self.is_statem(module) {
            if state.takes_state.contains(&(function, arity))
                && let Some(before) = state.before(module, function, &list_items(env, args))
            {
                self.state(env, value, before);
            }
            return;
        }
        let args = &list_items(env, args);
        let Some((given_state, data)) = self.options.known.statem.given(env, function, args) else {
            return;
        };
        let summary = |term| self.summarizer(env).summary(term);
        let (given_state, data) = (summary(given_state), summary(data));
        self.state_text(value, &statem::pair(&given_state, &data));
        let mut calls = self.statem_calls.lock().unwrap_or_else(|e| e.into_inner());
        // A function of the module called inside the callback that looks like one (its first
        // argument an event type) does not replace the callback's.
        calls.entry(process_key(tracee)).or_insert(StatemCall {
            code,
            state: given_state,
            data,
        });
    }

    /// The state and data a `gen_statem` callback's `result` left (its state name kept
    /// apart), under the id of its return value's summary `value`.
    fn statem_after(
        &self,
        env: *mut ErlNifEnv,
        tracee: Term,
        (function, arity, code): (Term, u32, u32),
        result: Option<Term>,
        value: u32,
    ) {
        let k = &self.options.known.statem;
        let is_init = function == k.init && arity == 1;
        let given = if is_init {
            None
        } else {
            let key = process_key(tracee);
            let mut calls = self.statem_calls.lock().unwrap_or_else(|e| e.into_inner());
            match calls.get(&key) {
                Some(call) if call.code == code => calls.remove(&key),
                _ => return,
            }
        };
        // An exception: the call given is forgotten, nothing was left.
        let Some(left) = result.and_then(|r| k.left(env, is_init, r)) else {
            return;
        };
        let summary = |term| self.summarizer(env).summary(term);
        let (state, data) = match (left, given) {
            (Left::Both(s, d), _) => (summary(s), summary(d)),
            (Left::Data(d), Some(given)) => (given.state, summary(d)),
            (Left::Same, Some(given)) => (given.state, given.data),
            _ => return,
        };
        self.state_text(value, &statem::pair(&state, &data));
        self.statem_state(value, &state);
    }

    fn returned(
        &self,
        env: *mut ErlNifEnv,
        tracee: Term,
        mfa: Term,
        extra: Option<Term>,
        exception: bool,
    ) {
        let Some([module, function, arity]) = tuple3(env, mfa) else {
            return;
        };
        let mut n: std::os::raw::c_ulong = 0;
        // SAFETY: an integer term of this env.
        unsafe { ffi::enif_get_ulong(env, arity, &mut n) };
        let ending = if exception {
            Ending::Raised
        } else {
            Ending::Returned
        };
        self.left(
            env,
            tracee,
            (module, function, n as u32),
            extra,
            ending,
            false,
        );
    }

    /// The end of `module:function/arity` in process `tracee` (a trace event's, or the probe
    /// compiled into an instrumented function): `extra` the value returned, or `{Class,
    /// Reason}` when it raised; none when it ended in a tail call.
    pub(crate) fn left(
        &self,
        env: *mut ErlNifEnv,
        tracee: Term,
        (module, function, arity): (Term, Term, u32),
        extra: Option<Term>,
        ending: Ending,
        probed: bool,
    ) {
        let exception = ending == Ending::Raised;
        if self.options.excluded.contains(&module)
            || !self.options.recorded(module, function, arity)
        {
            return;
        }
        let code = self.code(env, module, function, arity);
        if probed && self.hot.is_hot(code) {
            return;
        }
        let mut records = Records::default();
        if exception {
            let type_id = extra.map_or(0, |e| self.exception_type(&exception_name(env, e)));
            records.push(pack_meta(EventKind::Raise, 0, type_id));
        }
        let slot = if exception { 2 } else { 1 };
        let value = match (self.options.values, extra) {
            (true, Some(v)) => {
                let text = self.summarizer(env).summary(v);
                let anchors = self.keeps_state(module, (function, arity), false);
                let value = self.push_value(&text, slot, anchors, &mut records);
                summary::recycle(text);
                value
            }
            _ => {
                records.push(pack_meta(EventKind::Value, 0, slot));
                0
            }
        };
        if let Some(state) = self.options.state.as_ref().filter(|s| s.chosen(module)) {
            if self.is_statem(module) {
                let result = extra.filter(|_| !exception);
                self.statem_after(env, tracee, (function, arity, code), result, value);
            } else if let (false, Some(result)) = (exception, extra)
                && let Some(after) = state.after(env, module, function, arity, result)
            {
                self.state(env, value, after);
            }
        }
        let end = if exception {
            EventKind::Unwind
        } else {
            EventKind::Return
        };
        let aux = if ending == Ending::TailCall {
            RETURN_INTO_TAIL_CALL
        } else {
            0
        };
        records.push(pack_meta(end, code, aux));
        self.write(env, tracee, records.as_slice());
    }

    fn exit(&self, env: *mut ErlNifEnv, tracee: Term, reason: Term) {
        let text = self.summarizer(env).summary(reason);
        let normal = is_normal_exit(env, reason);
        let error_type =
            (!normal).then(|| self.exception_type(&exit_type(env, reason, &text)) as u16);
        let value = self.value(&text);
        self.write(
            env,
            tracee,
            &[beam::beam_meta(
                BeamKind::Exit,
                beam::exit_payload(value, error_type),
            )],
        );
        self.forget(process_key(tracee));
    }
}

/// `Class:Reason`'s type (`error:badarith`, `throw`, `error:{badmatch,…}` as `error:badmatch`,
/// a call's `exit:{{calling_self,…},{gen_server,call,…}}` as `exit:calling_self`: [`reason_head`]).
fn exception_name(env: *mut ErlNifEnv, class_and_reason: Term) -> String {
    let Some(elements) = tuple_elements(env, class_and_reason).filter(|e| e.len() == 2) else {
        return "error".to_owned();
    };
    let class = summary::atom_text(env, elements[0]).unwrap_or_else(|| "error".into());
    match (class.as_str(), reason_head(env, elements[1], REASON_DEPTH)) {
        ("throw", _) => "throw".to_owned(),
        (_, Some(head)) => format!("{class}:{}", summary::module_name(&head)),
        (_, None) => class,
    }
}

/// How deep [`reason_head`] looks into tuples' first elements.
const REASON_DEPTH: usize = 3;

/// What names a reason: an atom (`badarg`), an Elixir exception's module (a struct), else, for
/// a tuple, what names its first element — `{badmatch, V}` is `badmatch`, and a call's exit
/// `{{calling_self, …}, {gen_server, call, …}}` (OTP wraps the reason with the call) is
/// `calling_self`, `{{%RuntimeError{}, Stack}, {GenServer, :call, …}}` (the server crashed)
/// `RuntimeError` — looking `depth` tuples deep at most.
fn reason_head(env: *mut ErlNifEnv, reason: Term, depth: usize) -> Option<String> {
    summary::atom_text(env, reason)
        .or_else(|| exception_struct(env, reason))
        .or_else(|| {
            let first = *tuple_elements(env, reason)?.first()?;
            (depth > 1).then(|| reason_head(env, first, depth - 1))?
        })
}

fn exception_struct(env: *mut ErlNifEnv, term: Term) -> Option<String> {
    // SAFETY: the atom is made in this env; a term of this env.
    unsafe {
        let key = ffi::enif_make_atom(env, c"__struct__".as_ptr());
        let mut value = 0;
        (ffi::enif_get_map_value(env, term, key, &mut value) != 0)
            .then(|| summary::atom_text(env, value))
            .flatten()
    }
}

/// An abnormal exit's type: `exit:badarith`, `exit:boom`, `exit:RuntimeError` (an Elixir
/// exception's module, raised: `{%RuntimeError{}, Stacktrace}`), `exit:badmatch` (`{badmatch,
/// V}`); else the head of its summary `text`.
fn exit_type(env: *mut ErlNifEnv, reason: Term, text: &str) -> String {
    let head = summary::atom_text(env, reason)
        .or_else(|| exception_struct(env, reason))
        .or_else(|| {
            let first = *tuple_elements(env, reason)?.first()?;
            summary::atom_text(env, first).or_else(|| exception_struct(env, first))
        });
    match head {
        Some(head) => format!("exit:{}", summary::module_name(&head)),
        None => {
            let head = text.split([',', '(']).next().unwrap_or("");
            format!("exit:{}", head.trim_start_matches('{'))
        }
    }
}

fn is_normal_exit(env: *mut ErlNifEnv, reason: Term) -> bool {
    if let Some(atom) = summary::atom_text(env, reason) {
        return atom == "normal" || atom == "shutdown";
    }
    tuple_elements(env, reason)
        .filter(|e| e.len() == 2)
        .and_then(|e| summary::atom_text(env, e[0]))
        .is_some_and(|a| a == "shutdown")
}

pub(crate) fn tuple_elements(env: *mut ErlNifEnv, term: Term) -> Option<Vec<Term>> {
    let mut arity = 0;
    let mut array: *const Term = std::ptr::null();
    // SAFETY: the elements are copied out while the term lives.
    unsafe {
        if ffi::enif_get_tuple(env, term, &mut arity, &mut array) == 0 {
            return None;
        }
        Some(std::slice::from_raw_parts(array, arity as usize).to_vec())
    }
}

fn list_items(env: *mut ErlNifEnv, mut list: Term) -> Vec<Term> {
    let mut items = Vec::new();
    let (mut head, mut tail) = (0, 0);
    // SAFETY: list cells of this env.
    while unsafe { ffi::enif_get_list_cell(env, list, &mut head, &mut tail) } != 0 {
        items.push(head);
        list = tail;
    }
    items
}

fn tuple3(env: *mut ErlNifEnv, term: Term) -> Option<[Term; 3]> {
    let e = tuple_elements(env, term)?;
    (e.len() == 3).then(|| [e[0], e[1], e[2]])
}

/// A process's key: its pid's immediate bits without the tag, in the 48 bits a record holds
/// (a local pid's number and serial fit in them; the key is a process's for its life).
pub fn process_key(pid: Term) -> u64 {
    let data = (pid as u64) >> 4;
    let folded = data ^ (data >> 48);
    (folded & ((1 << 48) - 1)).max(1)
}

/// The process a message is sent to: a local pid as it is, a registered name's process.
fn local_pid(env: *mut ErlNifEnv, to: Term) -> Option<Term> {
    // SAFETY: terms of this env.
    unsafe {
        if ffi::enif_is_pid(env, to) != 0 {
            return Some(to);
        }
        let mut pid = ffi::ErlNifPid { pid: 0 };
        (ffi::enif_is_atom(env, to) != 0 && ffi::enif_whereis_pid(env, to, &mut pid) != 0)
            .then_some(pid.pid)
    }
}

/// The key of a message: a hash of its content (the receiver's copy hashes the same), so the
/// send and the receive meet. Not the receiver's: a reply sent to a process alias (OTP 24+'s
/// `gen:call`) names a reference, not a pid. Messages equal in content sent at once to two
/// processes may be matched crosswise (each receive still links to a send of that content);
/// OTP's calls and replies carry a unique reference, so theirs never are.
fn message_key(message: Term) -> u64 {
    // SAFETY: hashing a term of the calling env.
    unsafe { ffi::enif_hash(ffi::ERL_NIF_INTERNAL_HASH, message, MESSAGE_SALT) & ((1 << 48) - 1) }
}

const MESSAGE_SALT: u64 = 0x6465_7674_7261_6365;
