//! devtrace's BEAM tracer: the `devtrace_beam_tracer` NIF module, an `erl_tracer` (OTP's
//! interface for a tracer written as a NIF: `enabled/3` and `trace/5`, called by the VM on the
//! scheduler thread of the traced process, in place of a message to a tracer process whose
//! mailbox could grow without bound). Each event becomes 16-byte records in
//! devtrace-recorder's shared-memory rings (one writer per scheduler thread), in the BEAM
//! vocabulary of `devtrace_recorder::beam`; `devtrace run` reads the file after the VM ended
//! (or was killed) — in lossless mode also while it runs — and turns it into spans.
//!
//! Owns: the NIF entry and its functions (`open/4`, `enabled/3`, `trace/5`, `stats/0`,
//! `summary/2`, `bench_write/1`, `initial_call/1`, `exit_told/1`, `seen/0`, `name/2`, and the
//! probes an instrumented module calls: [`probes`]), the tracer's per-thread state ([`tracer`]), the bounded,
//! redacted term summaries ([`summary`]) and the recognition of `gen_statem` callbacks
//! ([`statem`]). Must not: run Erlang code (no callbacks into the VM's code, no messages),
//! allocate per event beyond a summary's text, or block a scheduler except in lossless mode
//! when the rings are full (the writer waits for `devtrace run` to read).
//!
//! The binding to `erl_nif.h` is written by hand ([`ffi`]) rather than taken from rustler: the
//! tracer needs ~30 functions of the C API and the raw terms (atoms compared as words, pids as
//! keys) and none of rustler's encoders; it depends on devtrace-recorder and libc only.

pub mod ffi;
mod hot;
pub mod probes;
pub mod statem;
pub mod summary;
pub mod tracer;
pub mod word_hash;

use std::os::raw::{c_int, c_void};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use word_hash::WordSet;

use devtrace_recorder::clock::Clock;
use devtrace_recorder::ring::RecorderFile;

use ffi::{ErlNifEntry, ErlNifEnv, ErlNifFunc, Term};
use summary::Syntax;
use tracer::{Known, Options, StateOptions, TRACER, Tag, Tracer};

/// Atoms made once at load (atoms are words valid in every env).
struct Atoms {
    ok: Term,
    error: Term,
    trace: Term,
    discard: Term,
    remove: Term,
    trace_status: Term,
    extra: Term,
    elixir: Term,
    values: Term,
    lossless: Term,
    state: Term,
    announce: Term,
    tags: [(Term, Tag); 12],
}

static ATOMS: OnceLock<Atoms> = OnceLock::new();

fn atom(env: *mut ErlNifEnv, name: &std::ffi::CStr) -> Term {
    // SAFETY: a NUL-terminated name.
    unsafe { ffi::enif_make_atom(env, name.as_ptr()) }
}

unsafe extern "C" fn load(env: *mut ErlNifEnv, _priv: *mut *mut c_void, _info: Term) -> c_int {
    let _ = ATOMS.set(Atoms {
        ok: atom(env, c"ok"),
        error: atom(env, c"error"),
        trace: atom(env, c"trace"),
        discard: atom(env, c"discard"),
        remove: atom(env, c"remove"),
        trace_status: atom(env, c"trace_status"),
        extra: atom(env, c"extra"),
        elixir: atom(env, c"elixir"),
        values: atom(env, c"values"),
        lossless: atom(env, c"lossless"),
        state: atom(env, c"state"),
        announce: atom(env, c"announce"),
        tags: [
            (atom(env, c"call"), Tag::Call),
            (atom(env, c"return_from"), Tag::ReturnFrom),
            (atom(env, c"exception_from"), Tag::ExceptionFrom),
            (atom(env, c"send"), Tag::Send),
            (atom(env, c"receive"), Tag::Receive),
            (atom(env, c"spawn"), Tag::Spawn),
            (atom(env, c"exit"), Tag::Exit),
            (atom(env, c"register"), Tag::Register),
            (atom(env, c"link"), Tag::Link),
            (atom(env, c"unlink"), Tag::Unlink),
            (atom(env, c"getting_linked"), Tag::GettingLinked),
            (atom(env, c"getting_unlinked"), Tag::GettingUnlinked),
        ],
    });
    0
}

unsafe extern "C" fn upgrade(
    _env: *mut ErlNifEnv,
    _priv: *mut *mut c_void,
    _old: *mut *mut c_void,
    _info: Term,
) -> c_int {
    0
}

fn atoms() -> &'static Atoms {
    ATOMS.get().expect("loaded")
}

/// `enabled(Tag, State, Tracee)`: record everything while a file is open (the modules are
/// chosen by trace patterns and the excluded set, the processes by `erlang:trace/3`).
unsafe extern "C" fn enabled(_env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let a = atoms();
    // SAFETY: the VM passes 3 arguments.
    let tag = unsafe { *argv };
    match (TRACER.get().is_some(), tag == a.trace_status) {
        (true, _) => a.trace,
        (false, true) => a.remove,
        (false, false) => a.discard,
    }
}

/// `trace(Tag, State, Tracee, TraceTerm, Opts)`.
unsafe extern "C" fn trace(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let a = atoms();
    let Some(t) = TRACER.get() else {
        return a.ok;
    };
    // SAFETY: the VM passes 5 arguments.
    let args = unsafe { std::slice::from_raw_parts(argv, 5) };
    let tag = a
        .tags
        .iter()
        .find(|(atom, _)| *atom == args[0])
        .map_or(Tag::Other, |(_, tag)| *tag);
    if tag == Tag::Other {
        return a.ok;
    }
    let mut extra = 0;
    // SAFETY: Opts is a map of this env.
    let has_extra = unsafe { ffi::enif_get_map_value(env, args[4], a.extra, &mut extra) } != 0;
    t.trace(env, tag, args[2], args[3], has_extra.then_some(extra));
    a.ok
}

fn binary_text(env: *mut ErlNifEnv, term: Term) -> Option<String> {
    let mut bin = ffi::ErlNifBinary::empty();
    // SAFETY: inspecting a term of this env; its bytes read while it lives.
    unsafe {
        if ffi::enif_inspect_binary(env, term, &mut bin) == 0 {
            return None;
        }
        let bytes = std::slice::from_raw_parts(bin.data, bin.size);
        String::from_utf8(bytes.to_vec()).ok()
    }
}

fn list(env: *mut ErlNifEnv, mut term: Term) -> Vec<Term> {
    let mut out = Vec::new();
    let (mut head, mut tail) = (0, 0);
    // SAFETY: list cells of this env.
    while unsafe { ffi::enif_get_list_cell(env, term, &mut head, &mut tail) } != 0 {
        out.push(head);
        term = tail;
    }
    out
}

fn error(env: *mut ErlNifEnv, text: &str) -> Term {
    let a = atoms();
    let reason = std::ffi::CString::new(text.replace('\0', " ")).unwrap_or_default();
    // SAFETY: terms of this env.
    unsafe {
        let items = [a.error, ffi::enif_make_atom(env, reason.as_ptr())];
        ffi::enif_make_tuple_from_array(env, items.as_ptr(), 2)
    }
}

/// `open(Path, SizeMiB, ExcludedModules, Flags)`: creates the recorder file and starts
/// recording; `Flags` holds `elixir` (Elixir's syntax in summaries), `values` (summaries of
/// arguments and results), `lossless` (a full ring makes the traced process wait for the
/// reader), `{seconds, N}` (the flight recorder's window, said in the file's metadata),
/// `state` or `{state, Modules}` (the state of every recorded GenServer, or of those
/// modules', before and after each callback; with `values`), `announce` (keep the processes
/// seen for the first time for `seen/0`), `{hot, N}` (a function one scheduler calls N times
/// within 100 ms is hot: `hot/0` gives it to the runtime, which stops tracing it). Once per
/// VM: a second open is `{error, already_open}`.
unsafe extern "C" fn open(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let a = atoms();
    // SAFETY: the VM passes 4 arguments.
    let args = unsafe { std::slice::from_raw_parts(argv, 4) };
    let Some(path) = binary_text(env, args[0]) else {
        // SAFETY: making the badarg exception in this env.
        return unsafe { ffi::enif_make_badarg(env) };
    };
    let mut mib: std::os::raw::c_ulong = 0;
    // SAFETY: an integer term of this env.
    if unsafe { ffi::enif_get_ulong(env, args[1], &mut mib) } == 0 || mib == 0 {
        // SAFETY: as above.
        return unsafe { ffi::enif_make_badarg(env) };
    }
    let excluded: WordSet<Term> = list(env, args[2]).into_iter().collect();
    let flags = list(env, args[3]);
    if TRACER.get().is_some() {
        return error(env, "already_open");
    }
    // A flight recorder's file keeps its value summaries in its value area, a ring of the
    // last ones, so its window keeps its calls' values; a lossless one, read whole, in its names log.
    let lossless = flags.contains(&a.lossless);
    let layout = match devtrace_recorder::beam::file_layout(mib << 20, lossless) {
        Ok(layout) => layout,
        Err(e) => return error(env, &e.to_string()),
    };
    // A file nobody follows (a flight recorder's) says what its window is to whoever reads
    // it after the VM ended (`devtrace run`, `devtrace recover`).
    let meta = format!(
        "{{\"runtime\":\"beam\",\"otp_pid\":{},\"lossless\":{},\"seconds\":{}}}",
        std::process::id(),
        lossless,
        window_seconds(env, &flags)
    );
    let file = match RecorderFile::create_with_clock(
        Path::new(&path),
        layout,
        std::process::id(),
        0,
        &meta,
        Clock::best(),
    ) {
        Ok(file) => file,
        Err(e) => return error(env, &e.to_string()),
    };
    if flags.contains(&a.lossless) {
        file.set_wait_for_reader(Box::new(|| {}));
    }
    let options = Options {
        syntax: if flags.contains(&a.elixir) {
            Syntax::Elixir
        } else {
            Syntax::Erlang
        },
        excluded,
        values: flags.contains(&a.values),
        state: state_options(env, &flags),
        known: Known::new(env),
        plan: plan_functions(env, &flags),
        announce: flags.contains(&a.announce),
        hot_calls: flag_number(env, &flags, c"hot").unwrap_or(0) as u32,
    };
    let in_memory = file.in_memory();
    if TRACER.set(Tracer::new(file, options)).is_ok() {
        let _ = std::thread::Builder::new()
            .name("devtrace-heartbeat".into())
            .spawn(move || keep_alive(in_memory));
    }
    a.ok
}

/// How often the VM says it is still running.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// The file's side thread. A file in memory has its pages made present here, off the
/// schedulers, as the Python recorder's drainer does: a record written to a page not touched
/// yet pays a page fault, the kernel zeroing the page (15 % of a recorded scheduler's samples
/// in a profile). Then it beats until the VM ends: a process blocked in a call when the VM
/// halted (or was killed) writes nothing more, and the reader ends its open calls at the last
/// beat rather than at its last record.
fn keep_alive(in_memory: bool) {
    let Some(t) = TRACER.get() else { return };
    if in_memory {
        t.file.populate();
    }
    loop {
        t.file.heartbeat(devtrace_recorder::clock::monotonic_ns());
        hot::tick();
        std::thread::sleep(HEARTBEAT_EVERY);
    }
}

/// The `{seconds, N}` flag: the flight recorder's window in seconds (0: keep everything).
fn window_seconds(env: *mut ErlNifEnv, flags: &[Term]) -> u64 {
    flag_number(env, flags, c"seconds").unwrap_or(0)
}

/// The number of flag `{Name, N}`, if there is one.
fn flag_number(env: *mut ErlNifEnv, flags: &[Term], name: &std::ffi::CStr) -> Option<u64> {
    let name = atom(env, name);
    flags.iter().find_map(|&flag| {
        let items = tracer::tuple_elements(env, flag).filter(|i| i.len() == 2)?;
        let mut n: std::os::raw::c_ulong = 0;
        // SAFETY: an integer term of this env.
        (items[0] == name && unsafe { ffi::enif_get_ulong(env, items[1], &mut n) } != 0)
            .then_some(n)
    })
}

/// The `state` flag's choice: every module (`state`), some (`{state, Modules}`), or none.
fn state_options(env: *mut ErlNifEnv, flags: &[Term]) -> Option<StateOptions> {
    let a = atoms();
    let modules = flags.iter().find_map(|&flag| {
        if flag == a.state {
            return Some(None);
        }
        let mut arity = 0;
        let mut items: *const Term = std::ptr::null();
        // SAFETY: a term of this env; the tuple's two elements read while it lives.
        unsafe {
            (ffi::enif_get_tuple(env, flag, &mut arity, &mut items) != 0
                && arity == 2
                && *items == a.state)
                .then(|| Some(list(env, *items.add(1)).into_iter().collect()))
        }
    })?;
    let callback = |name: &std::ffi::CStr, arity: u32| (atom(env, name), arity);
    Some(StateOptions {
        modules,
        takes_state: vec![
            callback(c"handle_call", 3),
            callback(c"handle_cast", 2),
            callback(c"handle_info", 2),
            callback(c"handle_continue", 2),
            callback(c"terminate", 2),
        ],
        returns_state: vec![
            callback(c"init", 1),
            callback(c"handle_call", 3),
            callback(c"handle_cast", 2),
            callback(c"handle_info", 2),
            callback(c"handle_continue", 2),
        ],
        reply: atom(env, c"reply"),
        stop: atom(env, c"stop"),
        noreply: atom(env, c"noreply"),
        ok: atom(env, c"ok"),
    })
}

/// The `{plan, [{Module, Function, Arity}]}` flag's functions: the only ones recorded.
fn plan_functions(env: *mut ErlNifEnv, flags: &[Term]) -> Option<WordSet<(Term, Term, u32)>> {
    let plan = atom(env, c"plan");
    let functions = flags
        .iter()
        .find_map(|&flag| match tracer::tuple_elements(env, flag) {
            Some(items) if items.len() == 2 && items[0] == plan => Some(list(env, items[1])),
            _ => None,
        })?;
    Some(
        functions
            .into_iter()
            .filter_map(|mfa| {
                let items = tracer::tuple_elements(env, mfa).filter(|i| i.len() == 3)?;
                let mut arity: std::os::raw::c_ulong = 0;
                // SAFETY: an integer term of this env.
                (unsafe { ffi::enif_get_ulong(env, items[2], &mut arity) } != 0).then_some((
                    items[0],
                    items[1],
                    arity as u32,
                ))
            })
            .collect(),
    )
}

/// `seen()`: the processes the tracer saw for the first time since the last call (with the
/// `announce` flag; `[]` otherwise or before `open`).
unsafe extern "C" fn seen(env: *mut ErlNifEnv, _argc: c_int, _argv: *const Term) -> Term {
    let pids = TRACER.get().map(Tracer::take_seen).unwrap_or_default();
    // SAFETY: local pids are immediate terms, valid in this env.
    unsafe { ffi::enif_make_list_from_array(env, pids.as_ptr(), pids.len() as _) }
}

/// `hot()`: the functions found hot since the last call, `[{Module, Function, Arity}]` (the
/// runtime turns their trace patterns off; [`hot`]).
unsafe extern "C" fn hot_functions(env: *mut ErlNifEnv, _argc: c_int, _argv: *const Term) -> Term {
    let found = TRACER.get().map(|t| t.hot.take()).unwrap_or_default();
    let items: Vec<Term> = found
        .into_iter()
        .map(|(module, function, arity)| {
            // SAFETY: atoms are valid in every env; the tuple is made in this one.
            unsafe {
                let fields = [module, function, ffi::enif_make_ulong(env, arity.into())];
                ffi::enif_make_tuple_from_array(env, fields.as_ptr(), 3)
            }
        })
        .collect();
    // SAFETY: terms of this env.
    unsafe { ffi::enif_make_list_from_array(env, items.as_ptr(), items.len() as _) }
}

/// `vm_stopping()`: the VM has begun to stop; the file says when, so its reader takes the
/// processes killed from then on as stopped with it, not failed (`beam::vm_stop`).
unsafe extern "C" fn vm_stopping(_env: *mut ErlNifEnv, _argc: c_int, _argv: *const Term) -> Term {
    if let Some(t) = TRACER.get() {
        t.file
            .mark_stopping(devtrace_recorder::clock::monotonic_ns());
    }
    atoms().ok
}

/// `name(Pid, Name)`: records that process `Pid` has the registered name `Name` (an atom), as
/// its `register` trace event would have (for a process registered before it was traced).
unsafe extern "C" fn name(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let a = atoms();
    // SAFETY: the VM passes 2 arguments.
    let args = unsafe { std::slice::from_raw_parts(argv, 2) };
    // SAFETY: terms of this env.
    let (is_pid, is_atom) = unsafe {
        (
            ffi::enif_is_pid(env, args[0]),
            ffi::enif_is_atom(env, args[1]),
        )
    };
    if is_pid == 0 || is_atom == 0 {
        // SAFETY: making the badarg exception in this env.
        return unsafe { ffi::enif_make_badarg(env) };
    }
    if let Some(t) = TRACER.get() {
        t.trace(env, Tag::Register, args[0], args[1], None);
    }
    a.ok
}

/// `stats()`: `{Events, ValuesNotKept, WriterWaits, WaitsGivenUp}` (0s before `open`).
unsafe extern "C" fn stats(env: *mut ErlNifEnv, _argc: c_int, _argv: *const Term) -> Term {
    let (events, values, waits, given_up) = TRACER.get().map_or((0, 0, 0, 0), |t| {
        let w = t.file.wait_stats();
        (
            t.events.total(),
            t.values_not_kept.load(Ordering::Relaxed),
            w.waits,
            w.given_up,
        )
    });
    // SAFETY: terms of this env.
    unsafe {
        let items = [
            ffi::enif_make_ulong(env, events),
            ffi::enif_make_ulong(env, values),
            ffi::enif_make_ulong(env, waits),
            ffi::enif_make_ulong(env, given_up),
        ];
        ffi::enif_make_tuple_from_array(env, items.as_ptr(), 4)
    }
}

/// `bench_write(N)`: nanoseconds per record of N ring writes from the calling scheduler, into a
/// throwaway file of its own (the cost of a record, without the VM's part of tracing).
unsafe extern "C" fn bench_write(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let mut n: std::os::raw::c_ulong = 0;
    // SAFETY: an integer term of this env.
    if unsafe { ffi::enif_get_ulong(env, *argv, &mut n) } == 0 || n == 0 {
        // SAFETY: making the badarg exception in this env.
        return unsafe { ffi::enif_make_badarg(env) };
    }
    let ns = bench::ring_write_ns(n);
    // SAFETY: a term of this env.
    unsafe { ffi::enif_make_ulong(env, ns.round() as u64) }
}

pub mod bench {
    //! The ring-write benchmark (also run without a VM by the crate's tests).
    use devtrace_recorder::beam::{BeamKind, beam_meta};
    use devtrace_recorder::clock::Clock;
    use devtrace_recorder::ring::{EventKind, Layout, RecorderFile, pack_meta};

    /// Nanoseconds per record of `n` stamped writes (a call record, every 8th a process
    /// switch, as the tracer writes them) into a 64 MiB file under the temporary directory.
    pub fn ring_write_ns(n: u64) -> f64 {
        let path = std::env::temp_dir().join(format!("devtrace-beam-bench-{}", std::process::id()));
        let Ok(file) = RecorderFile::create_with_clock(
            &path,
            Layout::for_size(64 << 20).expect("64 MiB is enough"),
            std::process::id(),
            0,
            "{}",
            Clock::best(),
        ) else {
            return f64::NAN;
        };
        let _ = std::fs::remove_file(&path);
        let mut w = file.writer(0);
        let started = std::time::Instant::now();
        for i in 0..n {
            let meta = if i % 8 == 0 {
                beam_meta(BeamKind::Process, i)
            } else {
                pack_meta(EventKind::Call, i as u32, 0)
            };
            let now = w.clock().now();
            file.push(&mut w, now, meta);
        }
        started.elapsed().as_nanos() as f64 / n as f64
    }
}

/// `summary(Term, Syntax)`: the summary the tracer would record for `Term` (`Syntax`: `elixir`
/// or `erlang`), as a binary — for the runtime's tests and for checking a value by hand.
unsafe extern "C" fn summary_nif(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    // SAFETY: the VM passes 2 arguments.
    let args = unsafe { std::slice::from_raw_parts(argv, 2) };
    let syntax = if args[1] == atoms().elixir {
        Syntax::Elixir
    } else {
        Syntax::Erlang
    };
    let text = summary::Summarizer::new(env, syntax).summary(args[0]);
    make_binary(env, text.as_bytes())
}

/// `initial_call({M, F, Args})`: the initial call the tracer records for a process spawned to
/// run `{M, F, Args}` (a spawn event's term), `{Module, Function, Arity, Kind}` with `Kind`
/// `gen_statem` when `gen_statem` started it (else `other`), or `none` — for the runtime's
/// tests (OTP's `proc_lib`/`gen` wrappers are read by their layout).
unsafe extern "C" fn initial_call(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    let known = Known::new(env);
    // SAFETY: the VM passes 1 argument.
    let Some(call) = known.initial_call(env, unsafe { *argv }) else {
        return atom(env, c"none");
    };
    let kind = atom(env, if call.statem { c"gen_statem" } else { c"other" });
    // SAFETY: terms of this env.
    unsafe {
        let items = [
            call.module,
            call.function,
            ffi::enif_make_ulong(env, call.arity as std::os::raw::c_ulong),
            kind,
        ];
        ffi::enif_make_tuple_from_array(env, items.as_ptr(), 4)
    }
}

/// `exit_told(Message)`: the pid whose exit `Message` tells of (a monitor's `'DOWN'`, a
/// trapped `'EXIT'`), which the tracer records in place of the message, or `none` — for the
/// runtime's tests.
unsafe extern "C" fn exit_told(env: *mut ErlNifEnv, _argc: c_int, argv: *const Term) -> Term {
    // SAFETY: the VM passes 1 argument.
    let message = unsafe { *argv };
    Known::new(env)
        .exit_told(env, message)
        .unwrap_or_else(|| atom(env, c"none"))
}

fn make_binary(env: *mut ErlNifEnv, bytes: &[u8]) -> Term {
    let mut term: Term = 0;
    // SAFETY: a fresh binary of `bytes.len()` bytes, filled before the term is returned.
    unsafe {
        let data = ffi::enif_make_new_binary(env, bytes.len(), &mut term);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), data, bytes.len());
    }
    term
}

static FUNCS: [ErlNifFunc; 19] = [
    ErlNifFunc {
        name: c"enabled".as_ptr(),
        arity: 3,
        fptr: enabled,
        flags: 0,
    },
    ErlNifFunc {
        name: c"trace".as_ptr(),
        arity: 5,
        fptr: trace,
        flags: 0,
    },
    ErlNifFunc {
        name: c"open".as_ptr(),
        arity: 4,
        fptr: open,
        flags: 0,
    },
    ErlNifFunc {
        name: c"stats".as_ptr(),
        arity: 0,
        fptr: stats,
        flags: 0,
    },
    ErlNifFunc {
        name: c"summary".as_ptr(),
        arity: 2,
        fptr: summary_nif,
        flags: 0,
    },
    ErlNifFunc {
        name: c"bench_write".as_ptr(),
        arity: 1,
        fptr: bench_write,
        flags: 0,
    },
    ErlNifFunc {
        name: c"initial_call".as_ptr(),
        arity: 1,
        fptr: initial_call,
        flags: 0,
    },
    ErlNifFunc {
        name: c"exit_told".as_ptr(),
        arity: 1,
        fptr: exit_told,
        flags: 0,
    },
    ErlNifFunc {
        name: c"seen".as_ptr(),
        arity: 0,
        fptr: seen,
        flags: 0,
    },
    ErlNifFunc {
        name: c"name".as_ptr(),
        arity: 2,
        fptr: name,
        flags: 0,
    },
    ErlNifFunc {
        name: c"hot".as_ptr(),
        arity: 0,
        fptr: hot_functions,
        flags: 0,
    },
    ErlNifFunc {
        name: c"vm_stopping".as_ptr(),
        arity: 0,
        fptr: vm_stopping,
        flags: 0,
    },
    ErlNifFunc {
        name: c"enter".as_ptr(),
        arity: 3,
        fptr: probes::enter,
        flags: 0,
    },
    ErlNifFunc {
        name: c"leave".as_ptr(),
        arity: 4,
        fptr: probes::leave,
        flags: 0,
    },
    ErlNifFunc {
        name: c"raised".as_ptr(),
        arity: 5,
        fptr: probes::raised,
        flags: 0,
    },
    ErlNifFunc {
        name: c"tail".as_ptr(),
        arity: 3,
        fptr: probes::tail,
        flags: 0,
    },
    ErlNifFunc {
        name: c"sent".as_ptr(),
        arity: 1,
        fptr: probes::sent,
        flags: 0,
    },
    ErlNifFunc {
        name: c"sent".as_ptr(),
        arity: 2,
        fptr: probes::sent_to,
        flags: 0,
    },
    ErlNifFunc {
        name: c"received".as_ptr(),
        arity: 1,
        fptr: probes::received,
        flags: 0,
    },
];

/// `sizeof(ErlNifResourceTypeInit)` in NIF API 2.16 (five words); no resource types are made.
const SIZEOF_RESOURCE_TYPE_INIT: usize = 5 * 8;

static ENTRY: ErlNifEntry = ErlNifEntry {
    major: 2,
    minor: 16,
    name: c"devtrace_beam_tracer".as_ptr(),
    num_of_funcs: FUNCS.len() as c_int,
    funcs: FUNCS.as_ptr(),
    load: Some(load),
    reload: std::ptr::null(),
    upgrade: Some(upgrade),
    unload: std::ptr::null(),
    vm_variant: c"beam.vanilla".as_ptr(),
    options: 1,
    sizeof_erl_nif_resource_type_init: SIZEOF_RESOURCE_TYPE_INIT,
    min_erts: c"erts-12.0".as_ptr(),
};

/// The VM's entry point into the library.
#[unsafe(no_mangle)]
pub extern "C" fn nif_init() -> *const ErlNifEntry {
    &ENTRY
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ring_write_benchmark_writes() {
        assert!(super::bench::ring_write_ns(10_000).is_finite());
    }
}
