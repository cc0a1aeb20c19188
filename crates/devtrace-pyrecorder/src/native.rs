//! The recorder proper (CPython 3.12+, GIL builds only).
//!
//! Threading: every callback and every `#[pyfunction]` here runs with the GIL held, so the
//! `Active` state they share is only touched under the GIL. The drainer thread never takes the
//! GIL: it shares only `Shared` (the mapped file, and the builder behind a mutex) with them.

use std::cell::UnsafeCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, c_void};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::causality::{self, Action};
use crate::values;
use devtrace_recorder::builder::OTHER_CODE;
use devtrace_recorder::clock::{Clock, ClockPair, monotonic_ns};
use devtrace_recorder::names::{self, CodeInfo, Names};
use devtrace_recorder::ring::{
    self, CAUSALITY_KEY_MASK, Cursor, EventKind, Layout, LinkKind, RecorderFile, ThreadWriter,
    WAIT_FORGET, WAIT_RECALL, causality_meta, pack_meta,
};
use devtrace_recorder::values::ValueWriter;
use devtrace_recorder::{Builder, BuilderOptions, OutSpan, SdkSpanCalls};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// devtrace's `sys.monitoring` tool id (3 and 4 are unassigned by CPython; 2, the profiler's,
/// is left to cProfile and other profilers so they can run beside it).
const TOOL_ID: u8 = 4;
const TOOL_NAME: &str = "devtrace.recorder";
/// The flight recorder's blocks of value slots for each kind of capture (the functions asked
/// for; the automatic ones): one a thread, more threads share them; 64 × 32 slots × 640 bytes,
/// 1.25 MiB of the file a kind (taken from the rings' share of its size).
const FLIGHT_VALUE_BLOCKS: u32 = 64;
/// The flight recorder's automatic values (`auto_values`): a function called more often than
/// this in one second is no longer captured, for the rest of the recording (its calls take the
/// plain path again). The last calls of everything else keep their values.
const AUTO_VALUE_CALLS_PER_SECOND: u32 = 1000;

// -- state -----------------------------------------------------------------------------------

/// What the drainer thread and the Python threads share.
struct Shared {
    file: Arc<RecorderFile>,
    /// Value summaries of calls (see `ValueStore`).
    values: Mutex<ValueStore>,
    drain: Mutex<DrainState>,
    ready: Condvar,
    wake: Condvar,
    stop: AtomicBool,
    flight: bool,
}

struct DrainState {
    cursor: Cursor,
    /// The records of the last pass (their buffers reused by the next).
    streams: Vec<ring::StreamEvents>,
    builder: Builder,
    names: Names,
    out: Vec<OutSpan>,
    /// How many spans were ever put in `out` (a flush waits until that many were exported).
    produced: u64,
    sdk_calls: Vec<SdkSpanCalls>,
    stopped: bool,
}

impl DrainState {
    fn push_out(&mut self, spans: Vec<OutSpan>) {
        self.produced += spans.len() as u64;
        self.out.extend(spans);
    }
}

impl Shared {
    /// Reads what is new (of one stream, or all) into the builder and delivers the spans it
    /// finished; returns how many records.
    fn drain(&self, st: &mut DrainState, only: Option<u64>) -> usize {
        let Some(read) = self.read(st, only) else {
            return 0;
        };
        let spans = st.builder.take_spans();
        self.deliver(st, spans);
        read
    }

    /// A flush's drain: reads everything new, then settles every link still waiting (see
    /// `Builder::take_spans_settled`), so the spans held for them are delivered too.
    fn drain_settled(&self, st: &mut DrainState) {
        self.read(st, None);
        let spans = st.builder.take_spans_settled();
        self.deliver(st, spans);
    }

    /// Feeds what is new into the builder: how many records, or None when no stream had any.
    fn read(&self, st: &mut DrainState, only: Option<u64>) -> Option<usize> {
        // The pass's buffers are the last pass's, reused (see `Cursor::read_into`).
        let mut streams = std::mem::take(&mut st.streams);
        st.cursor.read_into(&self.file, only, &mut streams);
        let read = streams.iter().map(|s| s.events.len()).sum();
        let file = &self.file;
        for s in &streams {
            st.builder.feed(s, &|key| file.span(key));
        }
        let nothing = streams.is_empty();
        st.streams = streams;
        (!nothing).then_some(read)
    }

    /// Hands finished spans out and says in the file what is still undelivered: counted after
    /// the spans were taken, since taking them can release held ones.
    fn deliver(&self, st: &mut DrainState, spans: Vec<OutSpan>) {
        st.push_out(spans);
        // What a kill now would lose unless the file is read again (devtrace_recorder::leftovers).
        self.file.set_read_undelivered(st.builder.undelivered());
        let released = st.builder.take_released_values();
        if !released.is_empty() {
            let mut store = self.values.lock().unwrap();
            for id in released {
                store.release(id);
            }
        }
        let calls = st.builder.take_sdk_calls();
        st.sdk_calls.extend(calls);
        // Aggregates of spans nobody claimed (ended without our hook seeing it) stay bounded.
        if st.sdk_calls.len() > 4096 {
            st.sdk_calls.drain(..2048);
        }
    }
}

/// The recorder while it runs (GIL-protected).
struct Active {
    shared: Arc<Shared>,
    epoch: u64,
    packages: Vec<String>,
    plan: Option<HashSet<(String, String)>>,
    exclude: Vec<String>,
    next_code: u32,
    exception_ids: HashMap<usize, u32>,
    exception_types: Vec<Py<PyAny>>,
    trigger_types: Option<Py<PyTuple>>,
    on_trigger: Option<Py<PyAny>>,
    triggering: bool,
    span_keys: HashMap<u64, u32>,
    _callbacks: Vec<Py<PyAny>>,
    drainer: Option<JoinHandle<()>>,
    remove_on_stop: bool,
    threading: Py<PyAny>,
    /// What a forked child needs to start its own recorder like this one.
    options: StartOptions,
    /// The OpenTelemetry SDK's context variable and the key of the current span in its
    /// contexts: where an asyncio task's first step finds the span it was created under.
    span_context: Option<(Py<PyAny>, Py<PyAny>)>,
    /// The functions whose calls' values are captured: (module, qualname).
    values: HashSet<(String, String)>,
    /// The flight recorder: whether every recorded function's calls are captured (but those
    /// called too often, [`AUTO_VALUE_CALLS_PER_SECOND`]) besides `values`.
    auto_values: bool,
    /// The functions captured automatically, by code id: (the second, calls in it).
    auto_rates: HashMap<u32, (u64, u32)>,
    /// Where the interpreter's own and installed libraries are (the standard library,
    /// site-packages): with no packages named, the automatic captures are of the program's
    /// own code only, not of the libraries it calls (nor of a dump's own calls into them).
    library_paths: Vec<String>,
    /// Their parameters' names, by code id.
    arg_names: HashMap<u32, Vec<(Py<pyo3::types::PyString>, String)>>,
    value_budget: values::Budget,
    /// Code ids named for functions of other processes (a process pool's submitting calls and
    /// jobs), by `module.qualname`.
    remote_codes: HashMap<String, u32>,
    /// The flight recorder's buffer for one summary (reused: no allocation per capture).
    value_text: String,
}

/// The options a recorder started with, kept to start the same one again in a forked child.
#[derive(Clone, Copy)]
struct StartOptions {
    layout: Layout,
    flight: bool,
    threshold_ns: u64,
    root: Option<(u128, u64)>,
    drain_period: Duration,
    /// Whether a pass that read much starts the next at once (off only to show what a drainer
    /// that cannot keep up leaves: the overrun and what stop says of it).
    drain_when_busy: bool,
    /// Whether a writer that finds the ring full of unread records waits for the drainer
    /// (record mode: nothing lost) rather than overwrite them (the flight recorder).
    wait_for_drainer: bool,
    /// Whether the causality points are recorded (off: no code is a point, so no wait is
    /// linked to its cause; the recorder's own events are the same).
    causality: bool,
}

static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(std::ptr::null_mut());
/// In a forked child, the parent's recorder until `after_fork_child` gives it a file of its
/// own (see `forget_parent_in_child`).
static FORKED: AtomicPtr<Active> = AtomicPtr::new(std::ptr::null_mut());
static FORK_HANDLER: std::sync::Once = std::sync::Once::new();
static EPOCH: AtomicU64 = AtomicU64::new(0);
static EXTRA_INDEX: AtomicIsize = AtomicIsize::new(-1);
static DISABLE: AtomicPtr<ffi::PyObject> = AtomicPtr::new(std::ptr::null_mut());

/// This thread's writer (created at its first event under a recorder).
struct Local {
    epoch: u64,
    file: Option<Arc<RecorderFile>>,
    writer: Option<ThreadWriter>,
    /// How many causality points this thread is inside (only the outermost records), under
    /// the recorder of `causal_epoch`.
    causal_depth: u32,
    causal_epoch: u64,
    /// The `self` of the outermost causality point running (read at its start).
    causal_object: usize,
    /// The frame of the point (a `Queue.get`) whose wait an inner `Condition.wait` began (see
    /// `causality::waits_in_condition`), until that point ends; 0: none.
    wait_frame: usize,
    /// Where this thread's current thread state is kept: the address of CPython's own
    /// thread-local variable in this thread ([`THREAD_STATE_UNKNOWN`]: not looked for yet,
    /// [`THREAD_STATE_NOT_FOUND`]: ask `PyThreadState_Get`). See [`find_thread_state_slot`].
    thread_state: usize,
}

const THREAD_STATE_UNKNOWN: usize = 0;
const THREAD_STATE_NOT_FOUND: usize = 1;

impl Drop for Local {
    fn drop(&mut self) {
        // The thread ends (this runs without the GIL): a thread started later at the same
        // thread pointer must not find this Local in the cache.
        if std::ptr::eq(CACHED_LOCAL.load(Ordering::Relaxed), self) {
            CACHED_THREAD.store(0, Ordering::Relaxed);
        }
        if let (Some(file), Some(w)) = (&self.file, &mut self.writer) {
            file.release(w);
        }
    }
}

/// The thread that recorded last and its `Local`: a cache in front of the thread-local lookup,
/// which in a shared library is a call to `__tls_get_addr` on every event. Written only by
/// the thread holding the GIL (the `Local` first, then the thread), so a thread that finds
/// itself in `CACHED_THREAD` finds its own `Local` in `CACHED_LOCAL`; a dying thread's
/// `Drop` only clears `CACHED_THREAD`, which makes the next event look its `Local` up again.
static CACHED_THREAD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static CACHED_LOCAL: AtomicPtr<Local> = AtomicPtr::new(std::ptr::null_mut());

/// An identity of the running thread, read in one instruction where the ABI allows: the
/// thread pointer (x86-64: `%fs:0` holds the thread control block's own address; AArch64:
/// `tpidr_el0`), else `pthread_self()`. Unique among live threads.
#[inline(always)]
fn thread_pointer() -> usize {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        let p: usize;
        // SAFETY: reads the TCB self-pointer glibc and musl keep at %fs:0; no side effects.
        unsafe {
            std::arch::asm!("mov {}, fs:0", out(reg) p, options(nostack, readonly, preserves_flags))
        };
        p
    }
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    {
        let p: usize;
        // SAFETY: reads the thread pointer register; no side effects.
        unsafe {
            std::arch::asm!("mrs {}, tpidr_el0", out(reg) p, options(nomem, nostack, preserves_flags))
        };
        p
    }
    #[cfg(not(any(
        all(target_arch = "x86_64", target_os = "linux"),
        all(target_arch = "aarch64", target_os = "linux")
    )))]
    {
        // SAFETY: no preconditions.
        unsafe { libc::pthread_self() as usize }
    }
}

/// This thread's `Local` (the GIL is held).
#[inline(always)]
fn this_thread_local() -> *mut Local {
    let me = thread_pointer();
    if CACHED_THREAD.load(Ordering::Relaxed) == me {
        return CACHED_LOCAL.load(Ordering::Relaxed);
    }
    this_thread_local_slow(me)
}

#[cold]
#[inline(never)]
fn this_thread_local_slow(me: usize) -> *mut Local {
    let local = LOCAL.with(|l| l.get());
    CACHED_LOCAL.store(local, Ordering::Relaxed);
    CACHED_THREAD.store(me, Ordering::Relaxed);
    local
}

thread_local! {
    static LOCAL: UnsafeCell<Local> = const {
        UnsafeCell::new(Local {
            epoch: 0,
            file: None,
            writer: None,
            causal_depth: 0,
            causal_epoch: 0,
            causal_object: 0,
            wait_frame: 0,
            thread_state: THREAD_STATE_UNKNOWN,
        })
    };
}

// -- the hot path ----------------------------------------------------------------------------

/// `None`, as a new reference. It is immortal (PEP 683; this module is built for 3.12 and
/// later only): CPython never changes its count, so a reference needs no increment, and
/// leaving it out keeps three instructions and a test off every event.
#[inline(always)]
unsafe fn none() -> *mut ffi::PyObject {
    unsafe { ffi::Py_None() }
}

#[inline(always)]
unsafe fn disable() -> *mut ffi::PyObject {
    let d = DISABLE.load(Ordering::Relaxed);
    unsafe { ffi::Py_INCREF(d) };
    d
}

/// The id of a recorded plain call's code (no flag set) when the code cache holds it for this
/// recorder: the callbacks' common case; None for anything else.
#[inline(always)]
unsafe fn cached_plain_id(active: &Active, code: *mut ffi::PyObject) -> Option<u32> {
    // SAFETY: the GIL is held; the slot is inside the cache.
    let (cached_code, cached) = unsafe { *code_cache_slot(code) };
    let id = cached as u32;
    (cached_code == code as usize && cached >> 32 == active.epoch && id != 0 && id & FLAGS == 0)
        .then_some(id)
}

/// Writes one record for this thread, stamped with the counter, when that needs no call: the
/// thread's Local cached and started under this recorder, its writer's chunk with room. False,
/// with nothing written, otherwise (then [`record_meta`]).
#[inline(always)]
unsafe fn push_if_room(active: &Active, meta: u64) -> bool {
    if CACHED_THREAD.load(Ordering::Relaxed) != thread_pointer() {
        return false;
    }
    // SAFETY: the cached Local is this thread's (checked above), alive while it runs; no other
    // reference to it is live (callbacks do not nest).
    let local = unsafe { &mut *CACHED_LOCAL.load(Ordering::Relaxed) };
    match &mut local.writer {
        Some(w) if local.epoch == active.epoch => w.push_if_room(meta),
        _ => false,
    }
}

/// Writes one record for this thread.
#[inline(always)]
unsafe fn record(active: &Active, kind: EventKind, code: u32, aux: u32) {
    unsafe { record_meta(active, pack_meta(kind, code, aux)) }
}

/// Writes one record (its meta word made) for this thread.
#[inline(always)]
unsafe fn record_meta(active: &Active, meta: u64) {
    // SAFETY: this thread's Local, alive while the thread runs; no other reference to it is
    // live (callbacks do not nest: CPython calls none while one runs).
    let local = unsafe { &mut *this_thread_local() };
    if local.epoch != active.epoch {
        unsafe { start_thread(active, local) };
    }
    if let (Some(file), Some(w)) = (&local.file, &mut local.writer) {
        file.push(w, w.clock().now(), meta);
    }
}

/// The first event of a thread under this recorder: its writer, and its name in the log.
#[cold]
#[inline(never)]
unsafe fn start_thread(active: &Active, local: &mut Local) {
    if let (Some(file), Some(w)) = (&local.file, &mut local.writer) {
        file.release(w);
    }
    let file = active.shared.file.clone();
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u64;
    let writer = file.writer(tid);
    // SAFETY: called from a callback or function holding the GIL.
    let py = unsafe { Python::assume_attached() };
    // The thread's Thread object if threading knows it yet. Not current_thread(): in a thread
    // starting (its first event is Thread._bootstrap's) that would make and register a
    // _DummyThread, changing the program's threading state and naming the thread "Dummy-N".
    // A thread not known yet is named later, by the Python side, from threading.enumerate().
    let threading = active.threading.bind(py);
    let name = threading
        .call_method0("get_ident")
        .and_then(|ident| threading.getattr("_active")?.call_method1("get", (ident,)))
        .and_then(|thread| {
            if thread.is_none() {
                Ok(None)
            } else {
                thread.getattr("name")?.extract::<String>().map(Some)
            }
        });
    if let Ok(Some(name)) = name {
        names::write_thread(&file, writer.stream, &name);
    }
    local.writer = Some(writer);
    local.file = Some(file);
    local.epoch = active.epoch;
}

/// Set in a code id (as `code_id` returns it) when the code is a coroutine's: its starts and
/// resumptions may be an asyncio task's step. Never in a recorded id.
const COROUTINE: u32 = 1 << 31;
/// Set in a code id when its calls' values are captured (arguments, return, exception).
const VALUES: u32 = 1 << 30;
/// Set in a code id when the code is a causality point (see [`causality`]): the rest is its
/// index in [`causality::POINTS`] ([`POINT_INDEX`]) and where its frame keeps its result
/// ([`RESULT_LOCAL`]). Such code is not recorded as calls.
const CAUSAL: u32 = 1 << 29;
/// A causality point's code id: its index in [`causality::POINTS`].
const POINT_INDEX: u32 = 0xFFFF;
/// A causality point's code id: 1 + the index of the fast local holding its result, for a
/// point whose notify writes its Effect (`causality::effect_at_notify`); 0: none, or the local
/// was not found in its code (then its return writes its Effect).
const RESULT_LOCAL: u32 = 0xFF << 16;
/// The flags a code id may carry; never in a recorded id.
const FLAGS: u32 = COROUTINE | VALUES | CAUSAL;
/// `co_flags` of a coroutine function's code (CPython's CO_COROUTINE).
const CO_COROUTINE: u32 = 0x80;

const CODE_CACHE_SIZE: usize = 256;

/// Code ids by code object address, direct-mapped: in front of `PyUnstable_Code_GetExtra`, a
/// call into libpython on every event. Only touched under the GIL. Only code objects carrying
/// our extra are cached, and CPython calls `free_extra` when it frees such an object (or
/// replaces the extra), which clears the whole cache: an entry never outlives its object, so
/// a reused address cannot find another object's id. Code objects are rarely freed.
struct CodeCache(UnsafeCell<[(usize, u64); CODE_CACHE_SIZE]>);

// SAFETY: only used under the GIL (callbacks, and free_extra from code objects' deallocation).
unsafe impl Sync for CodeCache {}

static CODE_CACHE: CodeCache = CodeCache(UnsafeCell::new([(0, 0); CODE_CACHE_SIZE]));
/// Whether the cache holds an entry: clearing an empty cache is skipped, so the many code
/// objects freed at interpreter exit cost one test each.
static CODE_CACHE_USED: AtomicBool = AtomicBool::new(false);

/// Remembers `code`'s id (the slow path only).
#[inline(always)]
unsafe fn cache_code_id(code: *mut ffi::PyObject, v: u64) {
    CODE_CACHE_USED.store(true, Ordering::Relaxed);
    // SAFETY: the GIL is held; the slot is inside the cache.
    unsafe { *code_cache_slot(code) = (code as usize, v) };
}

#[inline(always)]
fn code_cache_slot(code: *mut ffi::PyObject) -> *mut (usize, u64) {
    let i = (code as usize >> 4) & (CODE_CACHE_SIZE - 1);
    // SAFETY: i < CODE_CACHE_SIZE.
    unsafe { (CODE_CACHE.0.get() as *mut (usize, u64)).add(i) }
}

/// The code id of `code` under this recorder, deciding once per code object (0: not recorded),
/// with [`COROUTINE`] set for a coroutine's code.
#[inline(always)]
unsafe fn code_id(active: &mut Active, code: *mut ffi::PyObject) -> u32 {
    // SAFETY: the GIL is held; the slot is read and written here only.
    let (cached_code, cached) = unsafe { *code_cache_slot(code) };
    if cached_code == code as usize && cached >> 32 == active.epoch {
        return cached as u32;
    }
    unsafe { code_id_uncached(active, code) }
}

/// [`code_id`] for a code object not in the cache: from its extra slot, or decided now. Out of
/// line, so the callbacks' path for a cached code object stays short.
#[cold]
#[inline(never)]
unsafe fn code_id_uncached(active: &mut Active, code: *mut ffi::PyObject) -> u32 {
    let index = EXTRA_INDEX.load(Ordering::Relaxed);
    let mut extra: *mut c_void = std::ptr::null_mut();
    // SAFETY: code is the code object CPython passed; index was requested at start.
    if unsafe { PyUnstable_Code_GetExtra(code, index, &mut extra) } == 0 {
        let v = extra as u64;
        if v >> 32 == active.epoch {
            unsafe { cache_code_id(code, v) };
            return v as u32;
        }
    } else {
        unsafe { ffi::PyErr_Clear() };
    }
    let id = unsafe { decide(active, code) };
    unsafe { store_code_id(active, code, id) };
    id
}

/// Makes `id` `code`'s id under this recorder: in its extra slot and the caches.
unsafe fn store_code_id(active: &Active, code: *mut ffi::PyObject, id: u32) {
    let index = EXTRA_INDEX.load(Ordering::Relaxed);
    let v = (active.epoch << 32) | id as u64;
    // SAFETY: code is a code object CPython passed; index was requested at start.
    if unsafe { PyUnstable_Code_SetExtra(code, index, v as usize as *mut c_void) } != 0 {
        unsafe { ffi::PyErr_Clear() };
    } else {
        // After SetExtra, whose free_extra of the replaced value cleared the cache.
        unsafe { cache_code_id(code, v) };
        unsafe { walked_code_decided(code, id) };
    }
}

/// At the start of a call of a function captured automatically (`auto_values`): counts it in
/// its second, and past [`AUTO_VALUE_CALLS_PER_SECOND`] stops capturing it (its id loses
/// [`VALUES`], so its events take the plain path again). Returns whether it was stopped.
#[cold]
#[inline(never)]
unsafe fn auto_capture_stopped(
    active: &mut Active,
    id: u32,
    args: *const *mut ffi::PyObject,
) -> bool {
    let plain = id & !FLAGS;
    let Some((second, calls)) = active.auto_rates.get_mut(&plain) else {
        return false;
    };
    let now = monotonic_ns() / 1_000_000_000;
    if *second != now {
        (*second, *calls) = (now, 0);
    }
    *calls += 1;
    if *calls <= AUTO_VALUE_CALLS_PER_SECOND {
        return false;
    }
    active.auto_rates.remove(&plain);
    // SAFETY: a callback's first argument is the code object.
    unsafe { store_code_id(active, *args, id & !VALUES) };
    true
}

/// The module of the code running now (its frame's globals): `__name__`, or for the script
/// run as `__main__` its real name (`python -m pkg.cli` → `pkg.cli`, `python app.py` → `app`).
unsafe fn current_module(py: Python<'_>) -> String {
    // SAFETY: borrowed reference to the running frame's globals (the callback runs in it).
    let globals = unsafe { ffi::PyEval_GetGlobals() };
    if globals.is_null() {
        return String::new();
    }
    module_of_globals(unsafe { Bound::from_borrowed_ptr(py, globals) })
}

/// The module whose globals these are (see [`current_module`]).
fn module_of_globals(globals: Bound<'_, PyAny>) -> String {
    let Ok(globals) = globals.cast_into::<PyDict>() else {
        return String::new();
    };
    let get = |key: &str| globals.get_item(key).ok().flatten();
    let name: String = get("__name__")
        .and_then(|n| n.extract().ok())
        .unwrap_or_default();
    if name != "__main__" {
        return name;
    }
    if let Some(spec_name) = get("__spec__")
        .filter(|s| !s.is_none())
        .and_then(|s| s.getattr("name").ok())
        .and_then(|n| n.extract::<String>().ok())
    {
        return spec_name;
    }
    if let Some(file) = get("__file__").and_then(|f| f.extract::<String>().ok()) {
        let base = file.rsplit('/').next().unwrap_or(&file);
        return base.strip_suffix(".py").unwrap_or(base).to_string();
    }
    name
}

fn in_packages(module: &str, packages: &[String]) -> bool {
    packages.iter().any(|p| {
        module == p
            || (module.starts_with(p.as_str()) && module.as_bytes().get(p.len()) == Some(&b'.'))
    })
}

#[cold]
unsafe fn decide(active: &mut Active, code: *mut ffi::PyObject) -> u32 {
    // SAFETY: the GIL is held (we are in a callback).
    let py = unsafe { Python::assume_attached() };
    let module = unsafe { current_module(py) };
    let code = unsafe { Bound::from_borrowed_ptr(py, code) };
    let qualname: String = code
        .getattr("co_qualname")
        .and_then(|q| q.extract())
        .unwrap_or_else(|_| String::from("?"));
    if let Some(point) = causality::point_index(&module, &qualname)
        && active.options.causality
    {
        let result_local = causality::POINTS[point as usize].2.result_local;
        return CAUSAL | point | local_index(&code, result_local) << RESULT_LOCAL.trailing_zeros();
    }
    let watched = if in_packages(&module, &active.exclude) {
        false
    } else if let Some(plan) = &active.plan {
        plan.contains(&(module.clone(), qualname.clone()))
    } else {
        active.packages.is_empty() || in_packages(&module, &active.packages)
    };
    if !watched {
        return 0;
    }
    let file: String = code
        .getattr("co_filename")
        .and_then(|f| f.extract())
        .unwrap_or_default();
    let line: u32 = code
        .getattr("co_firstlineno")
        .and_then(|l| l.extract())
        .unwrap_or(0);
    let id = active.next_code;
    if id >= CAUSAL {
        return 0;
    }
    let flags: u32 = code
        .getattr("co_flags")
        .and_then(|f| f.extract())
        .unwrap_or(0);
    active.next_code += 1;
    let mut id = id;
    if active.values.contains(&(module.clone(), qualname.clone())) {
        active.arg_names.insert(id, argument_names(&code));
        id |= VALUES;
    } else if active.auto_values
        && (!active.packages.is_empty() || is_programs_own(&file, &active.library_paths))
    {
        active.arg_names.insert(id, argument_names(&code));
        active.auto_rates.insert(id, (0, 0));
        id |= VALUES;
    }
    names::write_code(
        &active.shared.file,
        id & !VALUES,
        &CodeInfo {
            qualname,
            module,
            file,
            line,
        },
    );
    if flags & CO_COROUTINE != 0 {
        id | COROUTINE
    } else {
        id
    }
}

/// Whether code of `file` is the program's own: not frozen or generated (`<frozen …>`,
/// `<string>`), and under none of `library_paths`.
fn is_programs_own(file: &str, library_paths: &[String]) -> bool {
    !file.starts_with('<')
        && !library_paths
            .iter()
            .any(|p| file.starts_with(p.as_str()) && file.as_bytes().get(p.len()) == Some(&b'/'))
}

/// 1 + the index of `code`'s fast local `name` (a plain local: not a cell, not among the first
/// 255), or 0.
fn local_index(code: &Bound<'_, PyAny>, name: &str) -> u32 {
    if name.is_empty() {
        return 0;
    }
    let names = |attr: &str| -> Vec<String> {
        code.getattr(attr)
            .and_then(|n| n.extract())
            .unwrap_or_default()
    };
    if names("co_cellvars").iter().any(|n| n == name) {
        return 0;
    }
    match names("co_varnames").iter().position(|n| n == name) {
        Some(i) if i < 255 => i as u32 + 1,
        _ => 0,
    }
}

/// The names of a code object's parameters, in order (positional, `*args`, keyword-only,
/// `**kwargs`): the frame's first local variables.
fn argument_names(code: &Bound<'_, PyAny>) -> Vec<(Py<pyo3::types::PyString>, String)> {
    const CO_VARARGS: u32 = 0x04;
    const CO_VARKEYWORDS: u32 = 0x08;
    let int = |name: &str| -> usize { code.getattr(name).and_then(|v| v.extract()).unwrap_or(0) };
    let flags = int("co_flags") as u32;
    let count = int("co_argcount")
        + int("co_kwonlyargcount")
        + (flags & CO_VARARGS != 0) as usize
        + (flags & CO_VARKEYWORDS != 0) as usize;
    let Ok(names) = code.getattr("co_varnames") else {
        return Vec::new();
    };
    (0..count)
        .filter_map(|i| names.get_item(i).ok())
        .filter_map(|n| n.cast_into::<pyo3::types::PyString>().ok())
        .map(|n| {
            let text = n.to_string_lossy().replace(['\x1e', '\x1f'], "?");
            (n.unbind(), text)
        })
        .collect()
}

/// The id of `exc`'s type in this recording (named in the file when first seen).
unsafe fn exception_id(active: &mut Active, exc: *mut ffi::PyObject) -> u32 {
    // SAFETY: exc is a live exception object; its type outlives it (we keep a reference).
    let ty = unsafe { ffi::Py_TYPE(exc) } as *mut ffi::PyObject;
    match active.exception_ids.get(&(ty as usize)) {
        Some(id) => *id,
        None => unsafe { new_exception_type(active, ty) },
    }
}

#[cold]
unsafe fn new_exception_type(active: &mut Active, ty: *mut ffi::PyObject) -> u32 {
    let py = unsafe { Python::assume_attached() };
    let ty = unsafe { Bound::from_borrowed_ptr(py, ty) };
    let module: String = ty
        .getattr("__module__")
        .and_then(|m| m.extract())
        .unwrap_or_default();
    let qualname: String = ty
        .getattr("__qualname__")
        .and_then(|m| m.extract())
        .unwrap_or_default();
    let name = if module.is_empty() || module == "builtins" {
        qualname
    } else {
        format!("{module}.{qualname}")
    };
    let id = active.exception_types.len() as u32 + 1;
    names::write_exception(&active.shared.file, id, &name);
    active.exception_ids.insert(ty.as_ptr() as usize, id);
    active.exception_types.push(ty.unbind());
    id
}

/// Whether records of `kind` carry the type of the exception in flight (PY_UNWIND's and
/// EXCEPTION_HANDLED's third argument) as their aux: so the recorder needs no RAISE callback to
/// know it. RAISE cannot be switched off where code is not recorded, and asyncio raises and
/// throws into generators on every contended lock and every closed generator expression.
const fn carries_exception(kind: EventKind) -> bool {
    matches!(kind, EventKind::Unwind | EventKind::Handled)
}

/// The aux of a record of `kind` at this event: the exception's type id where
/// [`carries_exception`], else 0.
#[inline(always)]
unsafe fn exception_of_event(
    active: &mut Active,
    kind: EventKind,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) -> u32 {
    if !carries_exception(kind) || nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET < 3 {
        return 0;
    }
    // SAFETY: the event's third argument is the exception, alive for the callback.
    unsafe { exception_id(active, *args.add(2)) }
}

/// The running recorder, or returns `None` from the callback when none runs or CPython's
/// arguments are not there.
macro_rules! active_or_return {
    ($nargsf:expr, $min_args:expr) => {{
        let a = ACTIVE.load(Ordering::Relaxed);
        // Fewer arguments than the event has: a plain call of the callback, not CPython's.
        if a.is_null() || $nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET < $min_args {
            return unsafe { none() };
        }
        // SAFETY: ACTIVE is set and cleared under the GIL, which this callback holds.
        unsafe { &mut *a }
    }};
}

/// A callback recording `$kind` for the code object in `args[0]`. Location events (PY_START,
/// PY_RESUME, PY_RETURN, PY_YIELD) return `DISABLE` for code not recorded, so CPython stops
/// calling for it; the others (PY_THROW, PY_UNWIND, EXCEPTION_HANDLED) cannot be disabled.
///
/// `$name` is the common case alone: a recorded plain call's event, its code id cached, this
/// thread's writer ready, the counter its clock, room in its chunk. It calls nothing (every
/// other case goes on to its `general`, a tail call), so it saves no registers and sets up no
/// stack: at ~60 instructions an event, those were a sixth of devtrace's part.
macro_rules! callback {
    ($name:ident, $kind:expr, $disable_outside:expr, $may_step:expr) => {
        unsafe extern "C" fn $name(
            callable: *mut ffi::PyObject,
            args: *const *mut ffi::PyObject,
            nargsf: usize,
            kwnames: *mut ffi::PyObject,
        ) -> *mut ffi::PyObject {
            /// Every case but the common one.
            #[inline(never)]
            unsafe extern "C" fn general(
                _callable: *mut ffi::PyObject,
                args: *const *mut ffi::PyObject,
                nargsf: usize,
                _kwnames: *mut ffi::PyObject,
            ) -> *mut ffi::PyObject {
                let active = active_or_return!(nargsf, 1);
                let id = unsafe { code_id(active, *args) };
                if id == 0 {
                    return if $disable_outside {
                        unsafe { disable() }
                    } else {
                        unsafe { none() }
                    };
                }
                // One test for every flag: a plain call pays no more.
                if id & FLAGS != 0 {
                    let done_here =
                        unsafe { flagged_event(active, $kind, $may_step, id, args, nargsf) };
                    if $disable_outside && done_here {
                        return unsafe { disable() };
                    }
                } else {
                    let aux = unsafe { exception_of_event(active, $kind, args, nargsf) };
                    unsafe { record(active, $kind, id, aux) };
                }
                unsafe { none() }
            }

            let a = ACTIVE.load(Ordering::Relaxed);
            if !carries_exception($kind)
                && !a.is_null()
                && nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET >= 1
            {
                // SAFETY: ACTIVE is set and cleared under the GIL, which this callback holds;
                // args holds at least one argument.
                let active = unsafe { &*a };
                if let Some(id) = unsafe { cached_plain_id(active, *args) }
                    && unsafe { push_if_room(active, pack_meta($kind, id, 0)) }
                {
                    return unsafe { none() };
                }
            }
            unsafe { general(callable, args, nargsf, kwnames) }
        }
    };
}

/// An event of code whose id carries a flag: a causality point's, a coroutine's (maybe an
/// asyncio task's step), or a call whose values are captured. Out of line (see `callback!`).
/// Returns whether this event at this place needs no callback any more (location events:
/// the callback returns `DISABLE`).
#[cold]
#[inline(never)]
unsafe fn flagged_event(
    active: &mut Active,
    kind: EventKind,
    may_step: bool,
    id: u32,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) -> bool {
    if id & CAUSAL != 0 {
        return unsafe { causal_event(active, kind, id, args, nargsf) };
    }
    if may_step && id & COROUTINE != 0 {
        unsafe { mark_task_step(active, kind) };
    }
    let plain = id & !FLAGS;
    let mut id = id;
    if id & VALUES != 0
        && kind == EventKind::Call
        && unsafe { auto_capture_stopped(active, id, args) }
    {
        id &= !VALUES;
    }
    // A return value or an exception goes before the end (its frame still open in the
    // builder), the arguments after the start.
    if id & VALUES != 0 && kind != EventKind::Call {
        unsafe { capture_values(active, kind, plain, args, nargsf) };
    }
    let aux = unsafe { exception_of_event(active, kind, args, nargsf) };
    unsafe { record(active, kind, plain, aux) };
    if id & VALUES != 0 && kind == EventKind::Call {
        unsafe { capture_values(active, kind, plain, args, nargsf) };
    }
    false
}

/// A causality point started, returned or unwound (see [`causality`]): the record its point
/// makes there, unless it runs inside another point on this thread. Returns whether CPython
/// may stop sending this event at this place (a point whose start needs no callback; at its
/// return, a point that records only at its start).
#[inline(never)]
unsafe fn causal_event(
    active: &Active,
    kind: EventKind,
    id: u32,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) -> bool {
    let Some((_, _, point)) = causality::POINTS.get((id & POINT_INDEX) as usize) else {
        return false;
    };
    // Where frames can be read, a point inside another is found by looking down the stack;
    // elsewhere by counting starts and returns (which needs every outer point's start).
    let walk = FRAME_LAYOUT_OK.load(Ordering::Relaxed);
    match kind {
        // Its notify writes its Cause, its inner wait its WaitBegin, or it has nothing to do
        // there; nor has any point at a resumption (an asyncio wait resuming).
        EventKind::Call if point.start_skipped(walk) => return true,
        EventKind::Resume => return true,
        // Nothing at its return, or its notify wrote its Effect.
        EventKind::Return if walk && (point.records_only_at_start() || id & RESULT_LOCAL != 0) => {
            return true;
        }
        EventKind::Unwind if walk && point.records_only_at_start() => return false,
        _ => {}
    }
    let local = unsafe { causal_local(active) };
    // SAFETY: the GIL is held; the running frame is the point's own.
    unsafe {
        if kind == EventKind::Return
            && walk
            && point.unbound_returns_never_link
            && second_local_unbound(thread_frame(local), *args)
        {
            return true; // this return links nothing, ever: switched off
        }
        match kind {
            EventKind::Call => point_started(active, local, point, walk, *args),
            EventKind::Return | EventKind::Unwind => {
                point_ended(active, local, point, walk, kind, args, nargsf)
            }
            EventKind::Yield if point.at_start == Action::WaitAtSuspension => {
                suspended_wait(active, local, point.link, *args, 0)
            }
            _ => {}
        }
    }
    false
}

/// The start of point `point` (running `code`) where it has a callback: its record, unless
/// it runs inside another point. A `Condition.wait` inside a point whose wait it opens writes
/// that point's WaitBegin instead (see [`open_outer_wait`]).
unsafe fn point_started(
    active: &Active,
    local: &mut Local,
    point: &causality::Point,
    walk: bool,
    code: *mut ffi::PyObject,
) {
    // SAFETY (the block): the GIL is held; frames are read only where their layout was
    // checked (`walk`).
    unsafe {
        let own = if walk {
            thread_frame(local)
        } else {
            std::ptr::null()
        };
        if walk && point.records_only_at_start() {
            if local.causal_depth == 0 {
                start_only_point(active, local, point, own, code);
            }
            return;
        }
        if point.outer {
            local.causal_depth += 1;
            if local.causal_depth > 1 {
                return;
            }
            if let Some(outer) = enclosing_point(active, caller_frame(own)) {
                if point.opens_wait {
                    open_outer_wait(active, local, outer);
                }
                return;
            }
        }
        let (record_kind, key) = match point.at_start {
            Action::WaitBegin => {
                local.causal_object = arguments_in(local, own, code).0;
                record_meta(active, causality_meta(EventKind::WaitBegin, point.link, 0));
                return;
            }
            Action::Cause(key) => (EventKind::Cause, key),
            Action::Effect(key) => (EventKind::Effect, key),
            _ => return,
        };
        let (object, argument) = arguments_in(local, own, code);
        if let Some(key) = causality::key_of(key, object, argument, 0) {
            record_meta(active, causality_meta(record_kind, point.link, key));
        }
        if !point.outer && point.link == LinkKind::ThreadStart {
            // A thread's run starting, the thread's first event: threading does not know it
            // yet (`start_thread` found no name), its Thread object does.
            name_starting_thread(local, object);
        }
    }
}

/// The return or unwinding of point `point` (`args`: the event's): its record at its return,
/// unless it runs inside another point; and when the wait it began ends with no Effect, a
/// record saying so (see [`wait_ended_without_effect`]).
unsafe fn point_ended(
    active: &Active,
    local: &mut Local,
    point: &causality::Point,
    walk: bool,
    kind: EventKind,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) {
    // SAFETY (the block): as in `point_started`; `args` holds the event's arguments.
    unsafe {
        let code = *args;
        let mut own = std::ptr::null();
        if point.outer {
            if !point.start_skipped(walk) {
                local.causal_depth = local.causal_depth.saturating_sub(1);
            }
            if local.causal_depth > 0 {
                return;
            }
            if walk {
                own = thread_frame(local);
                if enclosing_point(active, caller_frame(own)).is_some() {
                    return;
                }
            }
        }
        // Whether this call began a wait (at its start, or in its inner wait: once per call)
        // that an Effect of this thread would take as its own.
        let began_wait = if point.start_skipped(walk) {
            let opened =
                point.wait_levels > 0 && !own.is_null() && local.wait_frame == own as usize;
            if opened {
                local.wait_frame = 0;
            }
            opened
        } else {
            point.at_start == Action::WaitBegin
        };
        let effect = if kind == EventKind::Unwind {
            if point.at_start == Action::WaitAtSuspension {
                // A wait cancelled (or failed): its start is forgotten, its frame's address
                // free for another coroutine's.
                suspended_wait(active, local, point.link, code, WAIT_FORGET);
            }
            false
        } else {
            record_at_return(active, local, point, own, args, nargsf)
        };
        if began_wait && !effect {
            wait_ended_without_effect(active, point.link);
        }
    }
}

/// What point `point` records at its return (`own`: its frame when already read, else null);
/// whether that was an Effect.
unsafe fn record_at_return(
    active: &Active,
    local: &mut Local,
    point: &causality::Point,
    own: *const u8,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) -> bool {
    let (record_kind, key, only_true) = match point.at_return {
        Action::Install(module) => {
            install_hook(module);
            return false;
        }
        Action::Cause(key) => (EventKind::Cause, key, false),
        Action::Effect(key) => (EventKind::Effect, key, false),
        Action::EffectIfTrue(key) => (EventKind::Effect, key, true),
        Action::Nothing | Action::WaitBegin | Action::WaitAtSuspension => return false,
    };
    let link = causality::link_at_return(point);
    // SAFETY: the GIL is held; `args` holds PY_RETURN's arguments: (code, offset, value).
    unsafe {
        let code = *args;
        let result = if nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET >= 3 {
            *args.add(2)
        } else {
            std::ptr::null_mut()
        };
        if only_true && result != ffi::Py_True() {
            return false;
        }
        let (object, argument) = if key == causality::Key::ObjectAtStart {
            (local.causal_object, 0)
        } else {
            arguments_in(local, own, code)
        };
        let Some(key) = causality::key_of(key, object, argument, result as usize) else {
            return false;
        };
        if point.at_start == Action::WaitAtSuspension {
            // The effect's wait began at the coroutine's first suspension (if any).
            suspended_wait(active, local, link, code, WAIT_RECALL);
        }
        record_meta(active, causality_meta(record_kind, link, key));
    }
    record_kind == EventKind::Effect
}

/// A `Condition.wait` starts inside `outer` (the point's frame, its distance and the point),
/// which silences it: when `outer` is a point whose WaitBegin the wait at that distance writes
/// (`causality::waits_in_condition`) and no other point encloses `outer`, that WaitBegin —
/// once per call of `outer` (a `get` woken with the queue still empty waits again: its wait
/// began at the first).
unsafe fn open_outer_wait(active: &Active, local: &mut Local, outer: Enclosing) {
    if outer.point.wait_levels != outer.levels || local.wait_frame == outer.frame as usize {
        return;
    }
    // SAFETY: the GIL is held; `frame` is a live frame of this thread (found by the walk).
    if unsafe { enclosing_point(active, caller_frame(outer.frame)) }.is_some() {
        return;
    }
    local.wait_frame = outer.frame as usize;
    unsafe {
        record_meta(
            active,
            causality_meta(EventKind::WaitBegin, outer.point.link, 0),
        )
    };
}

/// A wait this thread began ended with no Effect (it timed out, failed or was interrupted):
/// a WaitBegin that says so ([`WAIT_FORGET`] alone), so that the next Effect of this thread —
/// a `get` that did not wait, which begins none — does not take that wait's start as its own.
#[cold]
unsafe fn wait_ended_without_effect(active: &Active, link: LinkKind) {
    unsafe {
        record_meta(
            active,
            causality_meta(EventKind::WaitBegin, link, WAIT_FORGET),
        )
    };
}

/// This thread's `Local`, its causality state reset when it was counted under another
/// recorder.
#[inline(always)]
unsafe fn causal_local(active: &Active) -> &'static mut Local {
    // SAFETY: this thread's Local (see `record`); not referenced elsewhere while we run.
    let local = unsafe { &mut *this_thread_local() };
    if local.causal_epoch != active.epoch {
        local.causal_epoch = active.epoch;
        local.causal_depth = 0;
        local.wait_frame = 0;
    }
    local
}

/// A native lock's acquisition has to wait: its WaitBegin, unless no recorder runs or a
/// causality point runs on this thread. Returns what [`lock_wait_ended`] needs (0: nothing
/// recorded). Called with the GIL, before the wait.
pub(crate) unsafe fn lock_wait_began(link: LinkKind) -> u64 {
    let a = ACTIVE.load(Ordering::Relaxed);
    if a.is_null() {
        return 0;
    }
    // SAFETY: ACTIVE is set and cleared under the GIL, which the caller holds.
    let active = unsafe { &*a };
    let local = unsafe { causal_local(active) };
    if local.causal_depth > 0 || unsafe { inside_point(active, local) } {
        return 0;
    }
    // Points a signal handler runs during the wait record nothing (as inside any point).
    local.causal_depth = 1;
    unsafe { record_meta(active, causality_meta(EventKind::WaitBegin, link, 0)) };
    active.epoch
}

/// The wait [`lock_wait_began`] recorded (`epoch`) ended: an Effect keyed on the lock when it
/// was acquired, under the same recorder (it may have stopped meanwhile); else the wait's end.
pub(crate) unsafe fn lock_wait_ended(epoch: u64, link: LinkKind, lock: usize, acquired: bool) {
    let a = ACTIVE.load(Ordering::Relaxed);
    // SAFETY: as in `lock_wait_began`.
    if epoch == 0 || a.is_null() || unsafe { (*a).epoch } != epoch {
        return;
    }
    let active = unsafe { &*a };
    let local = unsafe { causal_local(active) };
    local.causal_depth = local.causal_depth.saturating_sub(1);
    match causality::key_of(causality::Key::Object, lock, 0, 0) {
        Some(key) if acquired => unsafe {
            record_meta(active, causality_meta(EventKind::Effect, link, key))
        },
        _ => unsafe { wait_ended_without_effect(active, link) },
    }
}

/// A native lock was released: its Cause, unless no recorder runs or a causality point runs
/// on this thread.
pub(crate) unsafe fn lock_released(link: LinkKind, lock: usize) {
    let a = ACTIVE.load(Ordering::Relaxed);
    if a.is_null() {
        return;
    }
    // SAFETY: as in `lock_wait_began`.
    let active = unsafe { &*a };
    let local = unsafe { causal_local(active) };
    if local.causal_depth > 0 || unsafe { inside_point(active, local) } {
        return;
    }
    if let Some(key) = causality::key_of(causality::Key::Object, lock, 0, 0) {
        unsafe { record_meta(active, causality_meta(EventKind::Cause, link, key)) };
    }
}

/// Writes the name of the thread starting (its `Thread` object, `self` of its
/// `_bootstrap_inner`) into the names log, read as a plain attribute (`_name`, which
/// `Thread.__init__` sets): no property or `__getattr__` of a subclass runs.
#[cold]
unsafe fn name_starting_thread(local: &Local, thread: usize) {
    let (Some(file), Some(writer)) = (&local.file, &local.writer) else {
        return;
    };
    if thread == 0 {
        return;
    }
    // SAFETY: the GIL is held; `thread` is the frame's live `self`.
    let py = unsafe { Python::assume_attached() };
    let attr = pyo3::types::PyString::intern(py, "_name");
    let name = unsafe { ffi::PyObject_GenericGetAttr(thread as *mut ffi::PyObject, attr.as_ptr()) };
    if name.is_null() {
        unsafe { ffi::PyErr_Clear() };
        return;
    }
    // SAFETY: a new reference.
    let name = unsafe { Bound::from_owned_ptr(py, name) };
    if let Ok(name) = name.extract::<String>() {
        names::write_thread(file, writer.stream, &name);
    }
}

/// How many calls down the stack a causality point (or a native lock) looks for another
/// point it runs inside: `Event.set` calls `notify` through `notify_all`.
const NESTING_LEVELS: usize = 3;

/// An interpreter frame's caller's frame (null at the bottom).
#[inline(always)]
unsafe fn previous_frame(frame: *const u8) -> *const u8 {
    // SAFETY: `previous` is an interpreter frame's second word (3.12, 3.13; checked at start).
    unsafe { *(frame as *const *const u8).add(1) }
}

/// The caller's frame of `frame`, null when `frame` is (frames not read).
#[inline(always)]
unsafe fn caller_frame(frame: *const u8) -> *const u8 {
    if frame.is_null() {
        frame
    } else {
        // SAFETY: a live interpreter frame of this thread (the callers').
        unsafe { previous_frame(frame) }
    }
}

/// A causality point found running by a look down the stack (see [`enclosing_point`]).
#[derive(Clone, Copy)]
struct Enclosing {
    frame: *const u8,
    /// How many calls below the callee of the frame the look started from (1: that frame).
    levels: u8,
    point: &'static causality::Point,
    /// Its code id's [`RESULT_LOCAL`] part.
    result_local: u32,
}

/// The innermost causality point that silences those inside it, among `frame` and the
/// frames below it ([`NESTING_LEVELS`] in all). None where frames cannot be read.
unsafe fn enclosing_point(active: &Active, mut frame: *const u8) -> Option<Enclosing> {
    if !FRAME_LAYOUT_OK.load(Ordering::Relaxed) {
        return None;
    }
    for levels in 1..=NESTING_LEVELS as u8 {
        if frame.is_null() {
            return None;
        }
        // SAFETY: the layout was checked at start (an interpreter frame's first word is its
        // code object); the GIL is held, so the frames stay alive.
        let id = unsafe { known_code_id(active, *(frame as *const *mut ffi::PyObject)) };
        if id & CAUSAL != 0
            && let Some((_, _, point)) = causality::POINTS.get((id & POINT_INDEX) as usize)
            && point.outer
        {
            return Some(Enclosing {
                frame,
                levels,
                point,
                result_local: (id & RESULT_LOCAL) >> RESULT_LOCAL.trailing_zeros(),
            });
        }
        frame = unsafe { previous_frame(frame) };
    }
    None
}

/// Whether a causality point that silences those inside it runs in one of the
/// [`NESTING_LEVELS`] frames below (and including) the running one: a native lock (which has
/// no frame of its own) inside a point. False where frames cannot be read.
unsafe fn inside_point(active: &Active, local: &mut Local) -> bool {
    if !FRAME_LAYOUT_OK.load(Ordering::Relaxed) {
        return false;
    }
    // SAFETY: the layout was checked; the running frame is this thread's.
    unsafe { enclosing_point(active, thread_frame(local)).is_some() }
}

/// The start of a point that records only at its start (`own`: its frame), where frames can
/// be read: its own Cause when no point encloses it; for a `Condition.notify` that a point
/// caused by its notify (`causality::caused_by_notify`) encloses at that point's distance,
/// that point's Cause, keyed from its frame, and for one a point whose Effect it writes
/// (`causality::effect_at_notify`) encloses, that point's Effect; else nothing (it runs inside
/// another point).
unsafe fn start_only_point(
    active: &Active,
    local: &mut Local,
    point: &causality::Point,
    own: *const u8,
    code: *mut ffi::PyObject,
) {
    // SAFETY: the GIL is held; the layout was checked (the caller's `walk`); an enclosing
    // point's frame is alive below ours, its first locals (and its result's) inside it.
    unsafe {
        let Some(outer) = enclosing_point(active, caller_frame(own)) else {
            let Action::Cause(key) = point.at_start else {
                return;
            };
            let (object, argument) = arguments_in(local, own, code);
            if let Some(key) = causality::key_of(key, object, argument, 0) {
                record_meta(active, causality_meta(EventKind::Cause, point.link, key));
            }
            return;
        };
        let by_notify = point.notifier && outer.point.notify_levels == outer.levels;
        let effect = point.notifier && outer.result_local != 0 && outer.levels == 1;
        if !(by_notify || effect) || enclosing_point(active, caller_frame(outer.frame)).is_some() {
            return;
        }
        let locals = outer.frame.add(LOCALSPLUS) as *const usize;
        let (kind, link, key, result) = match (outer.point.at_start, outer.point.at_return) {
            (Action::Cause(key), _) if by_notify => (EventKind::Cause, outer.point.link, key, 0),
            (_, Action::Effect(key)) if effect => {
                // Its wait, if it began one, ends in this effect.
                if local.wait_frame == outer.frame as usize {
                    local.wait_frame = 0;
                }
                let result = *locals.add(outer.result_local as usize - 1);
                (
                    EventKind::Effect,
                    causality::link_at_return(outer.point),
                    key,
                    result,
                )
            }
            _ => return,
        };
        if let Some(key) = causality::key_of(key, *locals, *locals.add(1), result) {
            record_meta(active, causality_meta(kind, link, key));
        }
    }
}

const WALK_SETS: usize = 64;

/// Code ids of the code objects of the frames the looks down the stack cross
/// ([`enclosing_point`]), by address, under the running recorder (cleared when one starts):
/// two ways a set, in front of `PyUnstable_Code_GetExtra`. Apart from [`CODE_CACHE`], which
/// the callbacks fill, and two-way: the few code objects of a stack must not evict each other
/// (an `Event.set` and the `notify_all` above it sharing a slot of the direct-mapped cache cost
/// every `set` two lookups of extras: measured). Code with no id yet (a function already
/// running when the recorder started, such as a script's `main`, whose frame every look
/// crosses) and objects that are not code (an entry frame's) are kept as 0, like code not
/// recorded: deciding a code object rewrites its entry ([`walked_code_decided`]), so an entry
/// of a live object is never stale. Cleared with [`CODE_CACHE`] when a code object carrying
/// our extra is freed (`free_extra`); an entry of another object may outlive it, which is
/// harmless: a later code object at that address is decided at its first start, before any
/// frame of it can be on a stack.
struct WalkCache(UnsafeCell<[[(usize, u32); 2]; WALK_SETS]>);

// SAFETY: only used under the GIL (callbacks, start, and free_extra from code objects'
// deallocation).
unsafe impl Sync for WalkCache {}

static WALK_CACHE: WalkCache = WalkCache(UnsafeCell::new([[(0, 0); 2]; WALK_SETS]));

/// Empties [`WALK_CACHE`] (the GIL is held).
fn clear_walk_cache() {
    // SAFETY: the GIL is held; nothing else references the cache meanwhile.
    unsafe { *WALK_CACHE.0.get() = [[(0, 0); 2]; WALK_SETS] };
}

/// The set of [`WALK_CACHE`] `code` belongs in.
#[inline(always)]
fn walk_set(code: *mut ffi::PyObject) -> *mut [(usize, u32); 2] {
    let a = code as usize;
    let i = (a >> 4 ^ a >> 10) & (WALK_SETS - 1);
    // SAFETY: i < WALK_SETS.
    unsafe { (WALK_CACHE.0.get() as *mut [(usize, u32); 2]).add(i) }
}

/// The code id decided for `code` under this recorder, without deciding (0: none, not yet,
/// or not a code object).
#[inline(always)]
unsafe fn known_code_id(active: &Active, code: *mut ffi::PyObject) -> u32 {
    // SAFETY: the GIL is held; the set is inside the cache.
    let [first, second] = unsafe { *walk_set(code) };
    if first.0 == code as usize {
        return first.1;
    }
    if second.0 == code as usize {
        return second.1;
    }
    unsafe { known_code_id_uncached(active, code) }
}

/// `code` was just decided (its id `id`): its [`WALK_CACHE`] entry, if any, says so.
#[cold]
unsafe fn walked_code_decided(code: *mut ffi::PyObject, id: u32) {
    // SAFETY: the GIL is held; the set is inside the cache.
    for entry in unsafe { &mut *walk_set(code) } {
        if entry.0 == code as usize {
            entry.1 = id;
        }
    }
}

/// [`known_code_id`] for a code object not in [`WALK_CACHE`]: its id from its extra slot,
/// remembered (the set's older entry dropped).
#[cold]
#[inline(never)]
unsafe fn known_code_id_uncached(active: &Active, code: *mut ffi::PyObject) -> u32 {
    let id = if code.is_null() || unsafe { ffi::Py_TYPE(code) } != &raw mut ffi::PyCode_Type {
        0
    } else {
        unsafe { cached_code_id(active, code) }
    };
    CODE_CACHE_USED.store(true, Ordering::Relaxed);
    // SAFETY: the GIL is held; the set is inside the cache.
    unsafe {
        let set = &mut *walk_set(code);
        set[1] = set[0];
        set[0] = (code as usize, id);
    }
    id
}

/// The addresses of the running frame's first two fast locals (a method's `self` and first
/// argument; 0 when unbound or unknown), read without touching the objects.
#[inline(always)]
unsafe fn first_two_arguments(local: &mut Local, code: *mut ffi::PyObject) -> (usize, usize) {
    // SAFETY: the GIL is held; the running frame is the causality point's own.
    unsafe {
        match running_locals(local, code) {
            Some(locals) => (*locals as usize, *locals.add(1) as usize),
            None => (0, 0),
        }
    }
}

/// The running frame's fast locals (its frame is `code`'s), where the layout is known.
#[inline(always)]
unsafe fn running_locals(
    local: &mut Local,
    code: *mut ffi::PyObject,
) -> Option<*const *mut ffi::PyObject> {
    // SAFETY: the GIL is held; the running frame is the causality point's own.
    unsafe {
        if FRAME_LAYOUT_OK.load(Ordering::Relaxed) {
            // The running frame read directly: PyEval_GetFrame would find the same one.
            return locals_if_running(thread_frame(local), code);
        }
        let frame = ffi::PyEval_GetFrame();
        if frame.is_null() {
            None
        } else {
            fast_locals(frame, code)
        }
    }
}

/// An asyncio wait's coroutine suspends (`recall` 0: a WaitBegin keyed on its frame, which a
/// coroutine keeps inside itself while it lives), returns (`recall` [`WAIT_RECALL`]: that
/// wait's start is the next effect's) or unwinds ([`WAIT_FORGET`]: it has none).
unsafe fn suspended_wait(
    active: &Active,
    local: &mut Local,
    link: LinkKind,
    code: *mut ffi::PyObject,
    recall: u64,
) {
    let Some(locals) = (unsafe { running_locals(local, code) }) else {
        return;
    };
    let key =
        (causality::identity(locals as usize) & CAUSALITY_KEY_MASK & !(WAIT_RECALL | WAIT_FORGET))
            | recall;
    unsafe { record_meta(active, causality_meta(EventKind::WaitBegin, link, key)) };
}

/// Runs `module.install()`: a standard-library module devtrace hooks only once a program
/// imports it (its `<module>` code returned). Errors are the hook's own: printed, not raised
/// into the import.
#[cold]
fn install_hook(module: &str) {
    // SAFETY: called from a callback, which holds the GIL.
    let py = unsafe { Python::assume_attached() };
    if let Err(error) = py
        .import(module)
        .and_then(|m| m.call_method0("install").map(|_| ()))
    {
        error.print(py);
    }
}

/// Before a coroutine's start, resumption or throw: when it is the outermost recorded
/// coroutine of what runs (no recorded coroutine awaits it: the event loop resumed it for its
/// task), a TaskStep record names the task (its outermost coroutine), and a first step a
/// TaskParent record with the OpenTelemetry span current in the task. Only coroutines pay
/// for this: a walk up the frames awaiting this one.
#[cold]
unsafe fn mark_task_step(active: &mut Active, kind: EventKind) {
    let Some(task) = (unsafe { task_of_step(active) }) else {
        return;
    };
    let parent = if kind == EventKind::Call {
        unsafe { current_span_key(active) }
    } else {
        None
    };
    unsafe { record(active, EventKind::TaskStep, task, 0) };
    if let Some(key) = parent {
        unsafe { record(active, EventKind::TaskParent, key, 0) };
    }
}

/// The key of the task whose step the running coroutine is, or None when a recorded
/// coroutine awaits it (its start or resumption is inside that one's).
unsafe fn task_of_step(active: &mut Active) -> Option<u32> {
    // SAFETY: the GIL is held; every new reference taken here is released here.
    unsafe {
        let frame = ffi::PyEval_GetFrame();
        if frame.is_null() {
            return None;
        }
        let mut outermost = ffi::PyFrame_GetGenerator(frame);
        if outermost.is_null() {
            return None;
        }
        let mut back = ffi::PyFrame_GetBack(frame);
        let mut depth = 0;
        while !back.is_null() && depth < 256 {
            let generator = ffi::PyFrame_GetGenerator(back);
            if generator.is_null() {
                break;
            }
            if ffi::Py_TYPE(generator) != std::ptr::addr_of_mut!(ffi::PyCoro_Type) {
                ffi::Py_DECREF(generator);
                break;
            }
            let code = ffi::PyFrame_GetCode(back) as *mut ffi::PyObject;
            let awaited_by_recorded = cached_code_id(active, code) != 0;
            ffi::Py_DECREF(code);
            if awaited_by_recorded {
                ffi::Py_DECREF(generator);
                ffi::Py_DECREF(back as *mut ffi::PyObject);
                ffi::Py_DECREF(outermost);
                return None;
            }
            ffi::Py_DECREF(outermost);
            outermost = generator;
            let next = ffi::PyFrame_GetBack(back);
            ffi::Py_DECREF(back as *mut ffi::PyObject);
            back = next;
            depth += 1;
        }
        if !back.is_null() {
            ffi::Py_DECREF(back as *mut ffi::PyObject);
        }
        // Objects are 16-byte aligned: the address's next 32 bits tell live coroutines apart.
        let key = ((outermost as usize) >> 4) as u32;
        ffi::Py_DECREF(outermost);
        Some(key)
    }
}

/// Captures a summary of the values of a call of `code` (whose values are captured): at its
/// start the arguments, at its return the value, at an exit by exception the exception. Kept as
/// one text (arguments as `name US summary RS …`, the ASCII unit and record separators, which
/// summaries never hold: strings are escaped) in the value store (record mode) or in this
/// thread's value slots in the file (the flight recorder); a Value record names it. Skipped
/// when the second's budget is spent.
#[cold]
#[inline(never)]
unsafe fn capture_values(
    active: &mut Active,
    kind: EventKind,
    code: u32,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
) {
    let nargs = nargsf & !ffi::PY_VECTORCALL_ARGUMENTS_OFFSET;
    let (slot, what) = match kind {
        EventKind::Call => (0, None),
        EventKind::Return if nargs >= 3 => (1, Some(unsafe { *args.add(2) })),
        EventKind::Unwind if nargs >= 3 => (2, Some(unsafe { *args.add(2) })),
        _ => return,
    };
    // Automatic captures leave half of each second's budget to the functions asked for.
    let automatic = active.auto_rates.contains_key(&code);
    if !active.value_budget.allow(monotonic_ns(), automatic) {
        return;
    }
    let names = match what {
        None => match active.arg_names.get(&code) {
            Some(names) => Some(names),
            None => return,
        },
        Some(_) => None,
    };
    let summarize = |text: &mut String| match (what, names) {
        (Some(obj), _) => unsafe { values::summarize(obj, text, values::CALL_BYTES) },
        // SAFETY: the GIL is held; at PY_START the running frame is the call's own.
        (None, Some(names)) => unsafe { summarize_arguments(*args, names, text) },
        (None, None) => {}
    };
    let (id, bytes) = if active.shared.flight {
        // Into this thread's value slots in the file (a SIGKILL'd process's window has them).
        let mut text = std::mem::take(&mut active.value_text);
        text.clear();
        summarize(&mut text);
        let id = unsafe { write_flight_value(active, &text, automatic) };
        let bytes = text.len();
        active.value_text = text;
        (id, bytes)
    } else {
        // Written in place into a slot of the store, whose buffer the slot keeps: no
        // allocation once the slots' buffers have grown.
        let mut store = active.shared.values.lock().unwrap();
        let (id, text) = store.slot();
        summarize(text);
        (id, text.len())
    };
    active.value_budget.spend(bytes);
    if id != 0 {
        unsafe { record(active, EventKind::Value, id, slot) };
    }
}

/// Writes a flight recorder's capture into this thread's block of value slots (its block for
/// automatic captures when `automatic`, so they never push out the functions asked for); its
/// value id (0 when the file has none).
unsafe fn write_flight_value(active: &Active, text: &str, automatic: bool) -> u32 {
    // SAFETY: this thread's Local (see `record`); not referenced elsewhere while we run.
    let local = unsafe { &mut *this_thread_local() };
    if local.epoch != active.epoch {
        unsafe { start_thread(active, local) };
    }
    let (Some(file), Some(writer)) = (&local.file, &local.writer) else {
        return 0;
    };
    let writers = if automatic {
        &AUTO_VALUE_WRITER
    } else {
        &VALUE_WRITER
    };
    writers.with(|cell| {
        let mut values = cell.get();
        if values.is_none_or(|(epoch, _)| epoch != active.epoch) {
            values = file.value_writer().map(|w| (active.epoch, w));
        }
        let id = match &mut values {
            Some((_, w)) => file.write_value(w, writer.stream, text),
            None => 0,
        };
        cell.set(values);
        id
    })
}

thread_local! {
    /// The flight recorder: this thread's block of value slots (taken at its first capture
    /// under the recorder of that epoch). Apart from `Local`, whose layout every event's path
    /// reads: only captured calls come here.
    static VALUE_WRITER: std::cell::Cell<Option<(u64, ValueWriter)>> = const { std::cell::Cell::new(None) };
    /// The same, for the automatic captures (`auto_values`).
    static AUTO_VALUE_WRITER: std::cell::Cell<Option<(u64, ValueWriter)>> = const { std::cell::Cell::new(None) };
}

/// Summarises the running frame's arguments (`names`, in order) into `out`.
///
/// The arguments are the frame's first fast locals. They are read from the interpreter frame
/// directly where its layout is known (CPython 3.12 and 3.13: `localsplus` after eight words and
/// two small fields, checked on every call by the frame's first field being `code`): going
/// through `PyFrame_GetVar` would build the frame's locals dictionary on every call.
unsafe fn summarize_arguments(
    code: *mut ffi::PyObject,
    names: &[(Py<pyo3::types::PyString>, String)],
    out: &mut String,
) {
    // SAFETY (whole function): the GIL is held; the frame is alive while the callback runs.
    unsafe {
        // Without a frame object where the thread state's layout is known (making one costs
        // an allocation, a copy of the frame's data when the call returns, and collections).
        if let Some(locals) = current_fast_locals(code) {
            for (i, (_, text_name)) in names.iter().enumerate() {
                if out.len() >= values::CALL_BYTES {
                    break;
                }
                let v = *locals.add(i);
                if !v.is_null() {
                    ffi::Py_INCREF(v);
                    argument(v, text_name, out);
                }
            }
            return;
        }
        let frame = ffi::PyEval_GetFrame();
        if frame.is_null() {
            return;
        }
        frame_arguments_into(frame, code, names, out);
    }
}

/// Summarises the arguments (`names`, in order) of the call `frame` (of `code`) runs into
/// `out`: as they are now (a parameter the function has rebound shows its new value).
///
/// # Safety
/// The GIL is held; `frame` is a live frame object of `code`.
unsafe fn frame_arguments_into(
    frame: *mut ffi::PyFrameObject,
    code: *mut ffi::PyObject,
    names: &[(Py<pyo3::types::PyString>, String)],
    out: &mut String,
) {
    // SAFETY (whole function): as the caller promises.
    unsafe {
        let locals = fast_locals(frame, code);
        for (i, (name, text_name)) in names.iter().enumerate() {
            if out.len() >= values::CALL_BYTES {
                break;
            }
            let value = match locals {
                Some(locals) => {
                    let v = *locals.add(i);
                    if v.is_null() {
                        continue;
                    }
                    ffi::Py_INCREF(v);
                    v
                }
                None => {
                    let v = PyFrame_GetVar(frame, name.as_ptr());
                    if v.is_null() {
                        ffi::PyErr_Clear();
                        continue;
                    }
                    v
                }
            };
            argument(value, text_name, out);
        }
    }
}

/// Appends `name US summary` (after an RS when not the first) for one argument; takes the
/// reference to `value`.
///
/// # Safety
/// The GIL is held; `value` is a new reference to a live object.
unsafe fn argument(value: *mut ffi::PyObject, name: &str, out: &mut String) {
    // SAFETY: as the caller promises; every reference taken is released.
    unsafe {
        // An argument a closure captures is held in a cell by the time PY_START fires.
        let value = if ffi::Py_TYPE(value) == &raw mut PyCell_Type {
            let inside = PyCell_Get(value);
            ffi::Py_DECREF(value);
            inside
        } else {
            value
        };
        if !out.is_empty() {
            out.push('\x1e');
        }
        out.push_str(name);
        out.push('\x1f');
        if value.is_null() {
            ffi::PyErr_Clear(); // an empty cell
            return;
        }
        values::summarize(value, out, values::CALL_BYTES);
        ffi::Py_DECREF(value);
    }
}

/// Where this CPython keeps the running interpreter frame in its thread state: the offset of
/// the pointer, and whether it points at the frame (3.13: `current_frame`) or at a `_PyCFrame`
/// whose first field does (3.12: `cframe`). Private layouts, read only for the exact minor
/// version this module is built for, and checked once at start against `PyEval_GetFrame`
/// (`check_frame_layout`) and on every use against the code object CPython passed.
#[cfg(all(Py_3_12, not(Py_3_13)))]
const CURRENT_FRAME: (usize, bool) = (56, true);
#[cfg(all(Py_3_13, not(Py_3_14)))]
const CURRENT_FRAME: (usize, bool) = (72, false);
#[cfg(Py_3_14)]
const CURRENT_FRAME: (usize, bool) = (0, false);
/// The minor version the layouts above are for.
#[cfg(all(Py_3_12, not(Py_3_13)))]
const LAYOUT_MINOR: u64 = 12;
#[cfg(all(Py_3_13, not(Py_3_14)))]
const LAYOUT_MINOR: u64 = 13;
#[cfg(Py_3_14)]
const LAYOUT_MINOR: u64 = 0;

/// Whether `current_fast_locals` may read the thread state (set at start by
/// `check_frame_layout`).
static FRAME_LAYOUT_OK: AtomicBool = AtomicBool::new(false);

/// The running interpreter frame (the GIL is held), without making a frame object.
unsafe fn current_interpreter_frame() -> *const u8 {
    // SAFETY: checked by the callers (FRAME_LAYOUT_OK); the thread state is this thread's.
    unsafe { running_frame_of(ffi::PyThreadState_Get() as *const u8) }
}

/// The running interpreter frame of thread state `tstate` (the layout checked).
#[inline(always)]
unsafe fn running_frame_of(tstate: *const u8) -> *const u8 {
    let (offset, through_cframe) = CURRENT_FRAME;
    // SAFETY: the callers' (a live thread state, FRAME_LAYOUT_OK).
    unsafe {
        let mut frame = *(tstate.add(offset) as *const *const u8);
        if through_cframe && !frame.is_null() {
            frame = *(frame as *const *const u8);
        }
        frame
    }
}

/// [`current_interpreter_frame`] for the causality callbacks, which hold this thread's
/// `Local`: the thread state read where CPython keeps it for this thread (one load; see
/// [`find_thread_state_slot`]) rather than through `PyThreadState_Get`, a call into
/// libpython that looks its thread-local variable up through `__tls_get_addr` each time.
#[inline(always)]
unsafe fn thread_frame(local: &mut Local) -> *const u8 {
    // SAFETY: FRAME_LAYOUT_OK (the callers'); the slot is this thread's, alive while it runs.
    unsafe {
        let tstate = if local.thread_state > THREAD_STATE_NOT_FOUND {
            *(local.thread_state as *const *const u8)
        } else {
            thread_state_slow(local)
        };
        running_frame_of(tstate)
    }
}

/// This thread's thread state through `PyThreadState_Get`, looking for its slot first if
/// this thread has not yet (once per thread).
#[cold]
#[inline(never)]
unsafe fn thread_state_slow(local: &mut Local) -> *const u8 {
    // SAFETY: the GIL is held, so this thread has a thread state.
    let tstate = unsafe { ffi::PyThreadState_Get() } as *const u8;
    if local.thread_state == THREAD_STATE_UNKNOWN {
        local.thread_state =
            unsafe { find_thread_state_slot(tstate as usize) }.unwrap_or(THREAD_STATE_NOT_FOUND);
    }
    tstate
}

/// The address of this thread's copy of the thread-local variable in which CPython keeps the
/// current thread state (`_Py_tss_tstate`, 3.12 and 3.13: what `PyThreadState_Get` reads),
/// `tstate` being its value now. That variable is not exported, so it is found in this
/// thread's block of the thread-local storage of the object that defines `PyThreadState_Get`
/// (libpython, or the executable of a static build) as the one word there equal to `tstate`;
/// None when not exactly one is. It is CPython's own variable: a thread state made anew or
/// swapped in for this thread later is read there too. Its address is this thread's for the
/// thread's life, and a forked child's thread has the same.
#[cold]
unsafe fn find_thread_state_slot(tstate: usize) -> Option<usize> {
    struct Search {
        function: usize,
        tstate: usize,
        found: Option<usize>,
        matches: u32,
    }
    unsafe extern "C" fn visit(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info for a loaded object, and our `Search`.
        let (info, search) = unsafe { (&*info, &mut *(data as *mut Search)) };
        let headers =
            unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum as usize) };
        let defines_function = headers.iter().any(|h| {
            let start = info.dlpi_addr as usize + h.p_vaddr as usize;
            h.p_type == libc::PT_LOAD
                && (start..start + h.p_memsz as usize).contains(&search.function)
        });
        if !defines_function {
            return 0;
        }
        let block = info.dlpi_tls_data as *const usize;
        if let Some(tls) = headers.iter().find(|h| h.p_type == libc::PT_TLS)
            && !block.is_null()
            && block.is_aligned()
        {
            let words = tls.p_memsz as usize / std::mem::size_of::<usize>();
            // SAFETY: this thread's instance of the object's TLS segment, `p_memsz` bytes.
            for (i, word) in unsafe { std::slice::from_raw_parts(block, words) }
                .iter()
                .enumerate()
            {
                if *word == search.tstate {
                    search.matches += 1;
                    search.found = Some(block as usize + i * std::mem::size_of::<usize>());
                }
            }
        }
        1
    }
    let mut search = Search {
        function: ffi::PyThreadState_Get as *const () as usize,
        tstate,
        found: None,
        matches: 0,
    };
    if tstate == 0 {
        return None;
    }
    // SAFETY: `visit` only reads what the loader hands it.
    unsafe { libc::dl_iterate_phdr(Some(visit), &mut search as *mut Search as *mut c_void) };
    search.found.filter(|_| search.matches == 1)
}

/// The first two fast locals of `frame` when it is `code`'s running frame (already read),
/// else of the running frame found again ([`first_two_arguments`]).
#[inline(always)]
unsafe fn arguments_in(
    local: &mut Local,
    frame: *const u8,
    code: *mut ffi::PyObject,
) -> (usize, usize) {
    // SAFETY: the GIL is held; `frame`, when not null, is this thread's running frame.
    unsafe {
        if let Some(locals) = locals_if_running(frame, code) {
            return (*locals as usize, *locals.add(1) as usize);
        }
        first_two_arguments(local, code)
    }
}

/// Whether `frame` (this thread's running frame, or null) is `code`'s and its second local
/// is unbound.
unsafe fn second_local_unbound(frame: *const u8, code: *mut ffi::PyObject) -> bool {
    // SAFETY: the GIL is held; `frame`, when not null, is this thread's running frame, whose
    // locals follow its header when it is `code`'s (the layout checked at start).
    unsafe {
        !frame.is_null()
            && *(frame as *const *mut ffi::PyObject) == code
            && (*(frame.add(LOCALSPLUS) as *const usize).add(1)) == 0
    }
}

/// The fast locals of the running call of `code`, read from the thread state's interpreter
/// frame; None where that layout is not known or the frame is not `code`'s.
#[inline]
unsafe fn current_fast_locals(code: *mut ffi::PyObject) -> Option<*const *mut ffi::PyObject> {
    if !FRAME_LAYOUT_OK.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: the layout was checked at start.
    unsafe { locals_if_running(current_interpreter_frame(), code) }
}

/// The fast locals of `frame` (this thread's running interpreter frame, or null) when it is
/// `code`'s.
#[inline(always)]
unsafe fn locals_if_running(
    frame: *const u8,
    code: *mut ffi::PyObject,
) -> Option<*const *mut ffi::PyObject> {
    // SAFETY: the layout was checked (the callers'); a frame's first word is its code object.
    unsafe {
        if frame.is_null() || *(frame as *const *mut ffi::PyObject) != code {
            return None;
        }
        Some(frame.add(LOCALSPLUS) as *const *mut ffi::PyObject)
    }
}

/// Decides whether the thread state's layout is the one `CURRENT_FRAME` describes: the exact
/// minor version, and the frame found there is the one `PyEval_GetFrame`'s object wraps.
/// Called at start, with the GIL, from Python code (so a frame is running).
fn check_frame_layout() {
    // SAFETY: the GIL is held; Py_Version is a constant; the frame object is borrowed.
    let ok = unsafe {
        // c_ulong: u64 here, u32 on other platforms.
        #[allow(clippy::useless_conversion)]
        let version = u64::from(ffi::Py_Version);
        let (major, minor) = (version >> 24, (version >> 16) & 0xff);
        if major != 3 || minor != LAYOUT_MINOR || LAYOUT_MINOR == 0 {
            false
        } else {
            let frame = ffi::PyEval_GetFrame();
            !frame.is_null() && {
                let wrapped = *((frame as *const u8).add(F_FRAME) as *const *const u8);
                !wrapped.is_null() && wrapped == current_interpreter_frame()
            }
        }
    };
    FRAME_LAYOUT_OK.store(ok, Ordering::Relaxed);
}

/// PyFrameObject: the object header (2 words), f_back, then f_frame.
const F_FRAME: usize = 3 * std::mem::size_of::<usize>();
/// _PyInterpreterFrame (3.12, 3.13): f_code/f_executable, previous, f_funcobj, f_globals,
/// f_builtins, f_locals, frame_obj, prev_instr/instr_ptr (8 words), stacktop (int),
/// return_offset (u16), owner (char), then localsplus.
const LOCALSPLUS: usize = 8 * std::mem::size_of::<usize>() + 8;

/// The fast locals of `frame`'s interpreter frame when its layout is the one known here (its
/// first field is `code`), else None.
#[cfg(not(Py_3_14))]
unsafe fn fast_locals(
    frame: *mut ffi::PyFrameObject,
    code: *mut ffi::PyObject,
) -> Option<*const *mut ffi::PyObject> {
    // SAFETY: a live frame object; the fields read are inside these structures in 3.12/3.13.
    unsafe {
        let interpreter = *((frame as *const u8).add(F_FRAME) as *const *const u8);
        if interpreter.is_null() || *(interpreter as *const *mut ffi::PyObject) != code {
            return None;
        }
        Some(interpreter.add(LOCALSPLUS) as *const *mut ffi::PyObject)
    }
}

#[cfg(Py_3_14)]
unsafe fn fast_locals(
    _frame: *mut ffi::PyFrameObject,
    _code: *mut ffi::PyObject,
) -> Option<*const *mut ffi::PyObject> {
    None
}

unsafe extern "C" {
    /// CPython 3.12+: a frame's variable by name (a new reference; NULL and NameError when
    /// unbound), through the frame's locals dictionary.
    fn PyFrame_GetVar(
        frame: *mut ffi::PyFrameObject,
        name: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    static mut PyCell_Type: ffi::PyTypeObject;
    /// A cell's contents (a new reference; NULL when empty).
    fn PyCell_Get(cell: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// Value summaries waiting for their call's span: written by the program's threads, taken
/// by the drainer when the call is kept (or forgotten when it is not). A ring of slots by id:
/// a summary still waiting when its slot comes round again (its call open through 65,536
/// later captures) is replaced, and its call shows none.
#[derive(Default)]
pub(crate) struct ValueStore {
    next: u32,
    /// (id, summary) by id modulo the capacity; id 0: free.
    slots: Vec<(u32, String)>,
}

impl ValueStore {
    const CAPACITY: u32 = 65_536;

    /// A new id and its slot's buffer, emptied, to write the summary into.
    fn slot(&mut self) -> (u32, &mut String) {
        // Ids fit the record's 32-bit code; 0 is "none".
        self.next = self.next.wrapping_add(1).max(1);
        let at = (self.next % Self::CAPACITY) as usize;
        if self.slots.len() <= at {
            self.slots.resize_with(at + 1, Default::default);
        }
        let slot = &mut self.slots[at];
        slot.0 = self.next;
        slot.1.clear();
        // A first use: one allocation for a typical summary, not a growth in small steps.
        slot.1.reserve(128);
        (self.next, &mut slot.1)
    }

    /// The summary `id` names, if still kept (taken out).
    fn take(&mut self, id: u32) -> Option<String> {
        let slot = self.slots.get_mut((id % Self::CAPACITY) as usize)?;
        if id == 0 || slot.0 != id {
            return None;
        }
        slot.0 = 0;
        Some(std::mem::take(&mut slot.1))
    }

    /// Forgets the summary `id` names (its buffer stays for the next).
    fn release(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut((id % Self::CAPACITY) as usize)
            && slot.0 == id
        {
            slot.0 = 0;
        }
    }
}

/// The code id cached on `code` for this recorder, without deciding (0: none).
unsafe fn cached_code_id(active: &Active, code: *mut ffi::PyObject) -> u32 {
    let index = EXTRA_INDEX.load(Ordering::Relaxed);
    let mut extra: *mut c_void = std::ptr::null_mut();
    // SAFETY: code is a live code object; the GIL is held.
    if unsafe { PyUnstable_Code_GetExtra(code, index, &mut extra) } != 0 {
        unsafe { ffi::PyErr_Clear() };
        return 0;
    }
    let v = extra as u64;
    if v >> 32 == active.epoch { v as u32 } else { 0 }
}

/// The span key of the OpenTelemetry span current in the running context (a task's own,
/// copied when it was created), read without running Python code: the SDK's context
/// variable, the span under its key, the span context's ids.
unsafe fn current_span_key(active: &Active) -> Option<u32> {
    let (var, span_key) = active.span_context.as_ref()?;
    // SAFETY: the GIL is held.
    let py = unsafe { Python::assume_attached() };
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    if unsafe { ffi::PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut value) } != 0 {
        unsafe { ffi::PyErr_Clear() };
        return None;
    }
    if value.is_null() {
        return None;
    }
    // SAFETY: PyContextVar_Get returned a new reference.
    let context = unsafe { Bound::from_owned_ptr(py, value) };
    let ids = context
        .get_item(span_key.bind(py))
        .and_then(|span| span.getattr("_context"))
        .and_then(|ctx| {
            Ok((
                ctx.get_item(0)?.extract::<u128>()?,
                ctx.get_item(1)?.extract::<u64>()?,
            ))
        });
    match ids {
        Ok((trace_id, span_id)) if trace_id != 0 && span_id != 0 => {
            Some(active.shared.file.add_span(trace_id, span_id))
        }
        _ => None,
    }
}

callback!(on_start, EventKind::Call, true, true);
callback!(on_resume, EventKind::Resume, true, true);
callback!(on_return, EventKind::Return, true, false);
callback!(on_yield, EventKind::Yield, true, false);
callback!(on_throw, EventKind::Throw, false, true);
callback!(on_unwind, EventKind::Unwind, false, false);
callback!(on_handled, EventKind::Handled, false, false);

/// RAISE: `(code, offset, exception)`, the flight recorder's exception trigger, registered
/// only when it has trigger types (see [`carries_exception`]).
unsafe extern "C" fn on_raise(
    _callable: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargsf: usize,
    _kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let active = active_or_return!(nargsf, 3);
    let exc = unsafe { *args.add(2) };
    if let Some(types) = &active.trigger_types
        && !active.triggering
        && unsafe { ffi::PyErr_GivenExceptionMatches(exc, types.as_ptr()) } != 0
    {
        unsafe { trigger(active, exc) };
    }
    unsafe { none() }
}

#[cold]
unsafe fn trigger(active: &mut Active, exc: *mut ffi::PyObject) {
    let Some(callback) = &active.on_trigger else {
        return;
    };
    let py = unsafe { Python::assume_attached() };
    unsafe { record(active, EventKind::Trigger, 0, 1) };
    active.triggering = true;
    let callback = callback.clone_ref(py);
    let exc = unsafe { Bound::from_borrowed_ptr(py, exc) };
    // The callback writes the window out; its failure must not change the program's own
    // exception, so it is reported as unraisable instead of raised.
    if let Err(e) = callback.call1(py, ("exception", exc)) {
        e.write_unraisable(py, None);
    }
    let a = ACTIVE.load(Ordering::Relaxed);
    if !a.is_null() {
        // SAFETY: still under the GIL.
        unsafe { (*a).triggering = false };
    }
}

// CPython 3.12 renamed the code-extra functions (the old underscore names are macros now).
unsafe extern "C" {
    fn PyUnstable_Eval_RequestCodeExtraIndex(
        free: unsafe extern "C" fn(*mut c_void),
    ) -> ffi::Py_ssize_t;
    fn PyUnstable_Code_GetExtra(
        code: *mut ffi::PyObject,
        index: ffi::Py_ssize_t,
        extra: *mut *mut c_void,
    ) -> std::ffi::c_int;
    fn PyUnstable_Code_SetExtra(
        code: *mut ffi::PyObject,
        index: ffi::Py_ssize_t,
        extra: *mut c_void,
    ) -> std::ffi::c_int;
}

/// Our code-object extras are integers: nothing to free. But a code object with our extra is
/// being freed (or its extra replaced): the code id cache may hold its address, so it is
/// cleared (see [`CodeCache`]).
unsafe extern "C" fn free_extra(_: *mut c_void) {
    if CODE_CACHE_USED.swap(false, Ordering::Relaxed) {
        // SAFETY: called by CPython under the GIL.
        unsafe { *CODE_CACHE.0.get() = [(0, 0); CODE_CACHE_SIZE] };
        clear_walk_cache();
    }
}

/// A callable CPython calls straight through its vectorcall slot: an object of our own type
/// holding `f`, so an event goes from CPython's dispatch to `f` with no built-in function's
/// wrapper between (which would look the thread state up, in a shared-library CPython through
/// `__tls_get_addr`, and count a recursion level, on every event).
#[repr(C)]
struct NativeCallback {
    ob_base: ffi::PyObject,
    vectorcall: Option<ffi::vectorcallfunc>,
}

/// `devtrace._native.Callback`, made once (under the GIL) and kept for the process.
static CALLBACK_TYPE: AtomicPtr<ffi::PyTypeObject> = AtomicPtr::new(std::ptr::null_mut());

/// A type's members list holding one read-only `Py_ssize_t` member, `name` at `offset` (how a
/// heap type names its vectorcall or weak-reference slot), leaked: a type's spec must outlive
/// it, and types are made once per process.
pub(crate) fn offset_member(
    name: &'static CStr,
    offset: usize,
) -> &'static mut [ffi::PyMemberDef; 2] {
    Box::leak(Box::new([
        ffi::PyMemberDef {
            name: name.as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            offset: offset as ffi::Py_ssize_t,
            flags: ffi::Py_READONLY,
            doc: std::ptr::null(),
        },
        ffi::PyMemberDef::default(),
    ]))
}

fn callback_type(py: Python<'_>) -> PyResult<*mut ffi::PyTypeObject> {
    let made = CALLBACK_TYPE.load(Ordering::Relaxed);
    if !made.is_null() {
        return Ok(made);
    }
    // The spec, its slots and members must outlive the type: leaked, once per process.
    let members = offset_member(
        c"__vectorcalloffset__",
        std::mem::offset_of!(NativeCallback, vectorcall),
    );
    let slots = Box::leak(Box::new([
        ffi::PyType_Slot {
            slot: ffi::Py_tp_call,
            pfunc: ffi::PyVectorcall_Call as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_members,
            pfunc: members.as_mut_ptr() as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: std::ptr::null_mut(),
        },
    ]));
    let spec = Box::leak(Box::new(ffi::PyType_Spec {
        name: c"devtrace._native.Callback".as_ptr(),
        basicsize: std::mem::size_of::<NativeCallback>() as std::ffi::c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_VECTORCALL) as std::ffi::c_uint,
        slots: slots.as_mut_ptr(),
    }));
    // SAFETY: a complete spec; the GIL is held.
    let made = unsafe { ffi::PyType_FromSpec(spec) };
    if made.is_null() {
        return Err(PyErr::fetch(py));
    }
    CALLBACK_TYPE.store(made as *mut ffi::PyTypeObject, Ordering::Relaxed);
    Ok(made as *mut ffi::PyTypeObject)
}

/// A callable calling `f` with the vectorcall convention (see [`NativeCallback`]).
fn native_callback(py: Python<'_>, f: ffi::vectorcallfunc) -> PyResult<Py<PyAny>> {
    let tp = callback_type(py)?;
    // SAFETY: tp is our type, made above; GenericAlloc zeroes the object and sets its type.
    let obj = unsafe { ffi::PyType_GenericAlloc(tp, 0) };
    if obj.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: obj is a NativeCallback (basicsize above).
    unsafe { (*(obj as *mut NativeCallback)).vectorcall = Some(f) };
    // SAFETY: a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, obj) }.unbind())
}

/// A ring file that could not be made, as Python's `OSError`; with `ENOSPC` when its
/// filesystem has no room, so the caller can make it elsewhere.
fn ring_file_error(e: ring::RingError) -> PyErr {
    match e {
        ring::RingError::NoRoom { .. } => PyOSError::new_err((libc::ENOSPC, e.to_string())),
        e => PyOSError::new_err(e.to_string()),
    }
}

// -- the drainer -----------------------------------------------------------------------------

fn drainer(shared: Arc<Shared>, period: Duration, when_busy: bool) {
    // The rings' pages are made present here, off the writers' path: a record written to a
    // page not touched yet would otherwise pay a page fault (one per 256 records).
    shared.file.populate();
    // A pass that read this much means the program writes faster than one pass a period
    // keeps up with: the next pass starts at once (the lock released and taken again, so
    // callers waiting for it get their turn), before the rings come round to what is unread.
    let capacity = shared.file.layout().record_capacity();
    let busy = (capacity / 64).max(1) as usize;
    let mut st = shared.drain.lock().unwrap();
    let mut last_pass = std::time::Instant::now();
    loop {
        shared.file.heartbeat(monotonic_ns());
        shared.file.calibrate();
        let mut read = 0;
        if !shared.flight {
            read = shared.drain(&mut st, None);
            if !st.out.is_empty() {
                shared.ready.notify_all();
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let since = std::mem::replace(&mut last_pass, std::time::Instant::now()).elapsed();
        if when_busy && (read >= busy || shared.file.writers_waiting() > 0) {
            drop(st);
            st = shared.drain.lock().unwrap();
            continue;
        }
        st = shared
            .wake
            .wait_timeout(
                st,
                if when_busy {
                    pause(period, capacity, read, since)
                } else {
                    period
                },
            )
            .unwrap()
            .0;
        if shared.stop.load(Ordering::Acquire) && shared.flight {
            break;
        }
    }
}

/// How long the drainer sleeps after a pass that read `read` records `since` the one before:
/// at the rate observed, the rings fill to at most an eighth before the next pass (and never
/// longer than `period`, nor shorter than 50 µs).
fn pause(period: Duration, capacity: u64, read: usize, since: Duration) -> Duration {
    if read == 0 {
        return period;
    }
    let per_record = since.as_nanos() as u64 / read as u64;
    let fill_eighth = Duration::from_nanos(per_record.saturating_mul(capacity / 8));
    fill_eighth.clamp(Duration::from_micros(50), period)
}

// -- what Python receives --------------------------------------------------------------------

/// A counted function, named: (qualname, module, count, total_ns, self_ns, errors).
type ResolvedCall = (String, String, u64, u64, u64, u64);

/// A kept call with its names resolved, ready for Python.
struct Resolved {
    span: OutSpan,
    code: CodeInfo,
    error: Option<String>,
    handled: Vec<(u64, String)>,
    calls: Vec<ResolvedCall>,
    thread: Option<String>,
    values: CallValues,
    links: Vec<ResolvedLink>,
}

/// A happens-before link as Python takes it: (kind, object type, (trace id, span id), the
/// causing function's qualified name, the cause's time, the wait before it).
type ResolvedLink = (&'static str, &'static str, (u128, u64), String, u64, u64);

/// The qualified name (`module.qualname`) of a recorded function, by code id.
fn function_name(names: &Names, code: u32) -> String {
    match names.codes.get(&code) {
        Some(info) if info.module.is_empty() => info.qualname.clone(),
        Some(info) => format!("{}.{}", info.module, info.qualname),
        None if code == OTHER_CODE => String::new(),
        None => format!("code#{code}"),
    }
}

fn resolve_calls(names: &Names, calls: &[devtrace_recorder::CallAggregate]) -> Vec<ResolvedCall> {
    calls
        .iter()
        .map(|c| {
            let (q, m) = if c.code == OTHER_CODE {
                ("(other functions)".to_string(), String::new())
            } else {
                names
                    .codes
                    .get(&c.code)
                    .map(|i| (i.qualname.clone(), i.module.clone()))
                    .unwrap_or_else(|| (format!("code#{}", c.code), String::new()))
            };
            (q, m, c.count, c.total_ns, c.self_ns, c.errors)
        })
        .collect()
}

/// A kept call's value summaries: the arguments (name, summary), the return value, the
/// exception.
type CallValues = (
    Option<Vec<(String, String)>>,
    Option<String>,
    Option<String>,
);

/// Arguments as the store keeps them (`name US summary RS …`) back to (name, summary) pairs.
fn split_arguments(text: String) -> Vec<(String, String)> {
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\x1e')
        .map(|pair| {
            let (name, summary) = pair.split_once('\x1f').unwrap_or((pair, ""));
            (name.to_string(), summary.to_string())
        })
        .collect()
}

/// Where a kept call's value summaries are: the live recorder's store (taken out of it), or
/// the flight recorder's slots in the file.
enum ValuesFrom<'a> {
    Store(&'a Mutex<ValueStore>),
    File(&'a RecorderFile),
}

fn resolve(
    file: &RecorderFile,
    names: &mut Names,
    spans: Vec<OutSpan>,
    values_from: ValuesFrom<'_>,
) -> Vec<Resolved> {
    // A name written since the log was last read (a code, an exception type, or a thread that
    // started after it: its spans would go out unnamed once the thread is gone).
    let missing = spans.iter().any(|s| {
        !names.codes.contains_key(&s.code)
            || !names.threads.contains_key(&s.stream)
            || s.links
                .iter()
                .any(|l| l.cause_code != OTHER_CODE && !names.codes.contains_key(&l.cause_code))
            || s.error.is_some_and(|e| !names.exceptions.contains_key(&e))
    });
    if missing {
        *names = Names::read(file);
        // A thread's name is written at its start, before its calls: one read finds it. A
        // stream still unnamed (a thread threading never knew) is not read for again at each
        // batch: "" (the Python side then asks threading).
        for s in &spans {
            names.threads.entry(s.stream).or_default();
        }
    }
    let exception = |names: &Names, id: u32| {
        names
            .exceptions
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "exception".into())
    };
    let mut store = match values_from {
        ValuesFrom::Store(s) => Some(s.lock().unwrap()),
        ValuesFrom::File(_) => None,
    };
    let mut take = |stream: u64, id: u32| match (&mut store, &values_from) {
        (_, _) if id == 0 => None,
        (Some(store), _) => store.take(id),
        (None, ValuesFrom::File(file)) => file.read_value(stream, id),
        (None, ValuesFrom::Store(_)) => None,
    };
    spans
        .into_iter()
        .map(|span| Resolved {
            values: (
                take(span.stream, span.values[0]).map(split_arguments),
                take(span.stream, span.values[1]),
                take(span.stream, span.values[2]),
            ),
            code: names
                .codes
                .get(&span.code)
                .cloned()
                .unwrap_or_else(|| CodeInfo {
                    qualname: format!("code#{}", span.code),
                    ..Default::default()
                }),
            error: span.error.map(|e| exception(names, e)),
            handled: span
                .handled
                .iter()
                .map(|&(ts, e)| (ts, exception(names, e)))
                .collect(),
            calls: resolve_calls(names, &span.calls),
            thread: names.threads.get(&span.stream).cloned(),
            links: span
                .links
                .iter()
                .map(|l| {
                    (
                        l.kind.name(),
                        l.kind.object(),
                        (l.trace_id, l.span_id),
                        function_name(names, l.cause_code),
                        l.cause_ts,
                        l.wait_ns,
                    )
                })
                .collect(),
            span,
        })
        .collect()
}

fn to_python<'py>(
    py: Python<'py>,
    clock: ClockPair,
    items: Vec<Resolved>,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in items {
        let s = &r.span;
        let handled: Vec<(u64, String)> = r
            .handled
            .iter()
            .map(|(ts, n)| (clock.to_unix(*ts), n.clone()))
            .collect();
        let tuple = (
            (r.code.qualname, r.code.module, r.code.file, r.code.line),
            (s.trace_id, s.span_id, s.parent_span_id),
            (clock.to_unix(s.start), clock.to_unix(s.end)),
            r.error,
            handled,
            r.calls,
            (s.resumed, s.open, s.started_before_window),
            (s.tid, r.thread),
            r.values,
            r.links
                .into_iter()
                .map(|(kind, object, ids, function, ts, wait)| {
                    (kind, object, ids, function, clock.to_unix(ts), wait)
                })
                .collect::<Vec<_>>(),
        );
        list.append(tuple.into_pyobject(py)?)?;
    }
    Ok(list)
}

// -- the Python functions --------------------------------------------------------------------

fn active<'a>(_py: Python<'_>) -> PyResult<&'a mut Active> {
    let a = ACTIVE.load(Ordering::Relaxed);
    if a.is_null() {
        return Err(PyRuntimeError::new_err(
            "the devtrace recorder is not running (call devtrace.recorder.start first)",
        ));
    }
    // SAFETY: set and cleared under the GIL, which `_py` proves we hold.
    Ok(unsafe { &mut *a })
}

/// The state shared with a new drainer, over a newly created recorder file.
fn new_shared(file: RecorderFile, options: &StartOptions) -> Arc<Shared> {
    let shared = Arc::new(Shared {
        file: Arc::new(file),
        drain: Mutex::new(DrainState {
            cursor: Cursor::new(),
            streams: Vec::new(),
            builder: Builder::new(BuilderOptions {
                threshold_ns: options.threshold_ns,
                root: options.root,
                seed: monotonic_ns() ^ ((std::process::id() as u64) << 32),
                ..Default::default()
            }),
            names: Names::default(),
            out: Vec::new(),
            produced: 0,
            sdk_calls: Vec::new(),
            stopped: false,
        }),
        ready: Condvar::new(),
        wake: Condvar::new(),
        stop: AtomicBool::new(false),
        flight: options.flight,
        values: Mutex::new(ValueStore::default()),
    });
    if options.wait_for_drainer && !options.flight {
        // Weak: the file (inside `shared`) must not keep `shared` alive.
        let drainer = Arc::downgrade(&shared);
        shared.file.set_wait_for_reader(Box::new(move || {
            if let Some(shared) = drainer.upgrade() {
                shared.wake.notify_all();
            }
        }));
    }
    shared
}

fn spawn_drainer(shared: &Arc<Shared>, options: &StartOptions) -> PyResult<JoinHandle<()>> {
    let drainer_shared = shared.clone();
    let (period, when_busy) = (options.drain_period, options.drain_when_busy);
    std::thread::Builder::new()
        .name("devtrace-drainer".into())
        .spawn(move || drainer(drainer_shared, period, when_busy))
        .map_err(|e| {
            PyRuntimeError::new_err(format!(
                "could not start the recorder's drainer thread: {e}"
            ))
        })
}

/// Starts recording. See devtrace/recorder.py for the meaning of each argument.
#[pyfunction]
#[pyo3(signature = (path, size_mib, flight, packages, plan, exclude, threshold_ns, root, meta, trigger_types=None, on_trigger=None, drain_ms=10, span_context=None, drain_when_busy=true, wait_for_drainer=false, values=None, value_bytes_per_second=values::BYTES_PER_SECOND, causality=true, auto_values=false, library_paths=Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn start(
    py: Python<'_>,
    path: PathBuf,
    size_mib: u64,
    flight: bool,
    packages: Vec<String>,
    plan: Option<Vec<(String, String)>>,
    exclude: Vec<String>,
    threshold_ns: u64,
    root: Option<(u128, u64)>,
    meta: String,
    trigger_types: Option<Bound<'_, PyTuple>>,
    on_trigger: Option<Py<PyAny>>,
    drain_ms: u64,
    span_context: Option<(Py<PyAny>, Py<PyAny>)>,
    drain_when_busy: bool,
    wait_for_drainer: bool,
    values: Option<Vec<(String, String)>>,
    value_bytes_per_second: u64,
    causality: bool,
    auto_values: bool,
    library_paths: Vec<String>,
) -> PyResult<u8> {
    if !ACTIVE.load(Ordering::Relaxed).is_null() {
        return Err(PyRuntimeError::new_err(
            "the devtrace recorder is already running in this process (stop it first)",
        ));
    }
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let holder = monitoring.call_method1("get_tool", (TOOL_ID,))?;
    if !holder.is_none() {
        return Err(PyRuntimeError::new_err(format!(
            "sys.monitoring tool id {TOOL_ID}, which devtrace's recorder uses, is held by {}: stop that tool first (sys.monitoring.free_tool_id({TOOL_ID}))",
            holder.repr()?
        )));
    }
    let auto_values = flight && auto_values;
    let chosen = flight && values.as_ref().is_some_and(|v| !v.is_empty());
    let layout = flight_layout(size_mib << 20, auto_values as u32 + chosen as u32)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let file = RecorderFile::create_with_clock(
        &path,
        layout,
        std::process::id(),
        flight as u32,
        &meta,
        Clock::best(),
    )
    .map_err(ring_file_error)?;
    if EXTRA_INDEX.load(Ordering::Relaxed) < 0 {
        // SAFETY: the GIL is held; our extras are integers, nothing to free.
        let index = unsafe { PyUnstable_Eval_RequestCodeExtraIndex(free_extra) };
        if index < 0 {
            return Err(PyRuntimeError::new_err(
                "no code-object extra slot left (CPython allows 255 per process)",
            ));
        }
        EXTRA_INDEX.store(index as isize, Ordering::Relaxed);
    }
    DISABLE.store(monitoring.getattr("DISABLE")?.into_ptr(), Ordering::Relaxed);
    check_frame_layout();
    let options = StartOptions {
        layout,
        flight,
        threshold_ns,
        root,
        drain_period: Duration::from_millis(drain_ms.max(1)),
        drain_when_busy,
        wait_for_drainer,
        causality,
    };
    let shared = new_shared(file, &options);
    let epoch = EPOCH.fetch_add(1, Ordering::Relaxed) + 1;
    clear_walk_cache();
    let events = monitoring.getattr("events")?;
    let ev = |name: &str| -> PyResult<u32> { events.getattr(name)?.extract() };
    let callbacks: [(&str, ffi::vectorcallfunc); 8] = [
        ("PY_START", on_start),
        ("PY_RESUME", on_resume),
        ("PY_RETURN", on_return),
        ("PY_YIELD", on_yield),
        ("PY_THROW", on_throw),
        ("PY_UNWIND", on_unwind),
        ("RAISE", on_raise),
        ("EXCEPTION_HANDLED", on_handled),
    ];
    monitoring.call_method1("use_tool_id", (TOOL_ID, TOOL_NAME))?;
    let mut funcs = Vec::new();
    let mut mask = 0u32;
    let triggers = trigger_types.as_ref().is_some_and(|t| !t.is_empty());
    for (event, f) in callbacks {
        if event == "RAISE" && !triggers {
            continue; // dispatched for every raise, never switched off: only for triggers
        }
        let func = native_callback(py, f)?;
        let bit = ev(event)?;
        monitoring.call_method1("register_callback", (TOOL_ID, bit, func.clone_ref(py)))?;
        mask |= bit;
        funcs.push(func);
    }
    let drainer = spawn_drainer(&shared, &options)?;
    let active = Box::new(Active {
        shared,
        epoch,
        packages,
        plan: plan.map(|p| p.into_iter().collect()),
        exclude,
        next_code: 1,
        exception_ids: HashMap::new(),
        exception_types: Vec::new(),
        trigger_types: trigger_types.filter(|t| !t.is_empty()).map(Bound::unbind),
        on_trigger,
        triggering: false,
        span_keys: HashMap::new(),
        _callbacks: funcs,
        drainer: Some(drainer),
        remove_on_stop: false,
        threading: py.import("threading")?.into_any().unbind(),
        options,
        span_context,
        values: values.unwrap_or_default().into_iter().collect(),
        auto_values,
        auto_rates: HashMap::new(),
        library_paths: library_paths
            .into_iter()
            .map(|p| p.trim_end_matches('/').to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        arg_names: HashMap::new(),
        value_budget: values::Budget::new(monotonic_ns(), value_bytes_per_second),
        remote_codes: HashMap::new(),
        value_text: String::with_capacity(values::CALL_BYTES + 16),
    });
    *LAST.lock().unwrap() = None;
    FORK_HANDLER.call_once(|| {
        // SAFETY: registers a handler that only swaps two atomics.
        unsafe { libc::pthread_atfork(None, None, Some(forget_parent_in_child)) };
    });
    ACTIVE.store(Box::into_raw(active), Ordering::Release);
    // Code switched off by an earlier recorder (or another tool) is switched on again.
    monitoring.call_method0("restart_events")?;
    monitoring.call_method1("set_events", (TOOL_ID, mask))?;
    Ok(TOOL_ID)
}

/// The layout of a file of `bytes`, with [`FLIGHT_VALUE_BLOCKS`] blocks of value slots for
/// each of `kinds` (the functions asked for, the automatic captures), inside the same size:
/// the rings get the rest.
fn flight_layout(bytes: u64, kinds: u32) -> Result<Layout, ring::RingError> {
    let blocks = FLIGHT_VALUE_BLOCKS * kinds;
    let slots = blocks as u64 * ring::VALUE_SLOTS_PER_BLOCK as u64;
    let value_bytes = slots * ring::VALUE_SLOT_SIZE as u64;
    Ok(Layout::for_size(bytes.saturating_sub(value_bytes))?.with_value_blocks(blocks))
}

/// Stops recording: no event is recorded after it. In record mode the rest of the rings is
/// turned into spans (calls still running end now, marked open) for `take_spans`.
/// Returns statistics.
#[pyfunction]
#[pyo3(signature = (remove_file=false))]
fn stop(py: Python<'_>, remove_file: bool) -> PyResult<Py<PyDict>> {
    let a = ACTIVE.load(Ordering::Relaxed);
    if a.is_null() {
        return Err(PyRuntimeError::new_err(
            "the devtrace recorder is not running",
        ));
    }
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    monitoring.call_method1("set_events", (TOOL_ID, 0))?;
    let events = monitoring.getattr("events")?;
    for event in [
        "PY_START",
        "PY_RESUME",
        "PY_RETURN",
        "PY_YIELD",
        "PY_THROW",
        "PY_UNWIND",
        "RAISE",
        "EXCEPTION_HANDLED",
    ] {
        monitoring.call_method1(
            "register_callback",
            (TOOL_ID, events.getattr(event)?, py.None()),
        )?;
    }
    monitoring.call_method1("free_tool_id", (TOOL_ID,))?;
    ACTIVE.store(std::ptr::null_mut(), Ordering::Release);
    // SAFETY: we took it out of ACTIVE under the GIL; no callback can see it any more.
    let mut active = unsafe { Box::from_raw(a) };
    let _ = active.remove_on_stop;
    let shared = active.shared.clone();
    *LAST.lock().unwrap() = Some(shared.clone());
    shared.stop.store(true, Ordering::Release);
    shared.wake.notify_all();
    if let Some(d) = active.drainer.take() {
        py.detach(|| d.join()).ok();
    }
    let stats = PyDict::new(py);
    let file = shared.file.clone();
    let (events_seen, lost, causality_events, produced) = py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        if !shared.flight {
            shared.drain(&mut st, None);
            st.builder.finish_open();
            let spans = st.builder.take_spans();
            st.push_out(spans);
        }
        st.stopped = true;
        shared.ready.notify_all();
        (
            st.builder.events,
            st.builder.lost,
            st.builder.causality_events,
            st.produced,
        )
    });
    file.set_state(ring::STATE_CLOSED);
    // Calls' events; the causality records (puts, gets, waits…) are counted apart.
    stats.set_item("events", events_seen - causality_events)?;
    stats.set_item("causality_events", causality_events)?;
    stats.set_item("lost", lost)?;
    // Every span made, for `take_spans` to hand over (what was not is undelivered).
    stats.set_item("spans_made", produced)?;
    let waits = file.wait_stats();
    stats.set_item("writer_waits", waits.waits)?;
    stats.set_item("writer_waited_ns", waits.waited_ns)?;
    stats.set_item("writer_waits_given_up", waits.given_up)?;
    stats.set_item("values_skipped", active.value_budget.skipped)?;
    stats.set_item("path", file.path().to_string_lossy().into_owned())?;
    stats.set_item("functions", active.next_code - 1)?;
    stats.set_item(
        "clock",
        match file.clock() {
            Clock::Tsc => "tsc",
            Clock::Monotonic => "monotonic",
        },
    )?;
    if remove_file {
        std::fs::remove_file(file.path()).ok();
    }
    drop(active);
    Ok(stats.unbind())
}

/// Reads what the rings hold now (a tracer provider's `force_flush`): the calls finished so far
/// become spans for `take_spans` at once, without waiting for the drainer's next pass. Returns
/// how many spans the recorder has made since it started (those made by this read included),
/// or None when it is not running (or is the flight recorder, which builds nothing until a
/// dump).
#[pyfunction]
fn drain_now(py: Python<'_>) -> Option<u64> {
    let a = ACTIVE.load(Ordering::Relaxed);
    if a.is_null() {
        return None;
    }
    // SAFETY: ACTIVE is set and cleared under the GIL, which `py` proves we hold.
    let shared = unsafe { (*a).shared.clone() };
    if shared.flight {
        return None;
    }
    py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        shared.drain_settled(&mut st);
        if !st.out.is_empty() {
            shared.ready.notify_all();
        }
        Some(st.produced)
    })
}

/// At most this many spans wait for the end of a gathering (see [`take_spans`]).
const GATHER_MAX: usize = 4096;

/// Finished spans: waits up to `timeout` seconds for some, then gathers those that follow for
/// up to `gather` seconds more (or [`GATHER_MAX`] spans). Each hand-over takes the GIL from the
/// program's threads, which pay for the switch: spans go over a few times a second, not after
/// each drainer pass. Stopping ends a gathering at once. Returns None once the recorder has
/// stopped and everything was taken.
#[pyfunction]
#[pyo3(signature = (timeout, gather=0.0))]
fn take_spans(py: Python<'_>, timeout: f64, gather: f64) -> PyResult<Option<Py<PyList>>> {
    let shared = match ACTIVE.load(Ordering::Relaxed) {
        a if !a.is_null() => unsafe { (*a).shared.clone() },
        _ => match LAST.lock().unwrap().clone() {
            Some(s) => s,
            None => return Ok(None),
        },
    };
    let clock = shared.file.info().created;
    let (items, done) = py.detach(|| {
        let mut st = wait_for_spans(&shared, timeout, gather);
        let spans = std::mem::take(&mut st.out);
        let done = st.stopped && spans.is_empty();
        let DrainState { names, .. } = &mut *st;
        (
            resolve(
                &shared.file,
                names,
                spans,
                ValuesFrom::Store(&shared.values),
            ),
            done,
        )
    });
    if done {
        return Ok(None);
    }
    Ok(Some(to_python(py, clock, items)?.unbind()))
}

/// The drainer's state once spans are there (or `timeout` passed), and the gathering after
/// them is over (see [`take_spans`]).
fn wait_for_spans(shared: &Shared, timeout: f64, gather: f64) -> MutexGuard<'_, DrainState> {
    let mut st = shared.drain.lock().unwrap();
    if st.out.is_empty() && !st.stopped && timeout > 0.0 {
        st = shared
            .ready
            .wait_timeout(st, Duration::from_secs_f64(timeout))
            .unwrap()
            .0;
    }
    if st.out.is_empty() || gather <= 0.0 {
        return st;
    }
    let until = std::time::Instant::now() + Duration::from_secs_f64(gather);
    while !st.stopped && st.out.len() < GATHER_MAX {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        st = shared.ready.wait_timeout(st, left).unwrap().0;
    }
    st
}

static LAST: Mutex<Option<Arc<Shared>>> = Mutex::new(None);

/// Marks an OpenTelemetry span started in this thread. In record mode, when it started inside
/// a recorded call, returns that call's `(trace_id, span_id)`: the span's parent.
#[pyfunction]
fn span_start(py: Python<'_>, trace_id: u128, span_id: u64) -> PyResult<Option<(u128, u64)>> {
    let active = active(py)?;
    let file = &active.shared.file;
    let key = file.add_span(trace_id, span_id);
    active.span_keys.insert(span_id, key);
    unsafe { record(active, EventKind::SpanStart, key, 0) };
    if active.shared.flight {
        return Ok(None);
    }
    let stream = current_stream();
    let shared = active.shared.clone();
    Ok(py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        shared.drain(&mut st, stream);
        stream.and_then(|s| st.builder.parent_for_span(s, key, trace_id))
    }))
}

/// Marks an OpenTelemetry span ended in this thread. In record mode, returns the short calls
/// aggregated on it: `[(qualname, module, count, total_ns, self_ns, errors)]`.
#[pyfunction]
fn span_end(py: Python<'_>, span_id: u64) -> PyResult<Vec<ResolvedCall>> {
    let active = active(py)?;
    let Some(key) = active.span_keys.remove(&span_id) else {
        return Ok(Vec::new());
    };
    unsafe { record(active, EventKind::SpanEnd, key, 0) };
    if active.shared.flight {
        return Ok(Vec::new());
    }
    let stream = current_stream();
    let shared = active.shared.clone();
    Ok(py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        shared.drain(&mut st, stream);
        let Some(i) = st.sdk_calls.iter().position(|c| c.span_id == span_id) else {
            return Vec::new();
        };
        let calls = st.sdk_calls.swap_remove(i);
        if calls
            .calls
            .iter()
            .any(|c| c.code != OTHER_CODE && !st.names.codes.contains_key(&c.code))
        {
            st.names = Names::read(&shared.file);
        }
        resolve_calls(&st.names, &calls.calls)
    }))
}

/// The recorded call this thread is in, kept as a span: `(trace_id, span_id, function)`, for
/// a process started from it to continue the trace under it (record mode; None in the flight
/// recorder, whose calls get their ids at the dump: see [`open_call`], or outside any
/// recorded call).
#[pyfunction]
fn spawning_call(py: Python<'_>) -> PyResult<Option<(u128, u64, String)>> {
    on_this_stream(py, |shared, st, stream| {
        let (trace_id, span_id, code) = st.builder.open_call(stream, 0)?;
        let function = code.map_or_else(String::new, |code| code_name(shared, st, code));
        Some((trace_id, span_id, function))
    })
}

/// The code id naming `function` (`module.qualname`) of another process, written into the
/// names log once (0 when the ids ran out).
fn remote_code(active: &mut Active, function: &str) -> u32 {
    if let Some(&code) = active.remote_codes.get(function) {
        return code;
    }
    let code = active.next_code;
    if code >= CAUSAL {
        return 0;
    }
    active.next_code += 1;
    let info = CodeInfo {
        qualname: function.to_string(),
        ..Default::default()
    };
    names::write_code(&active.shared.file, code, &info);
    active.remote_codes.insert(function.to_string(), code);
    code
}

/// A cause in another process (a process pool's): the consumer here keyed on `object`'s
/// identity links to span `(trace_id, span_id)`, in `function`, at `cause_ns` (monotonic, the
/// machine's clock). `pool_job`: the consumer is a job starting in this worker (kind future,
/// its first recorded call), else a `Future.result()` here. Record mode only.
fn remote_cause(
    py: Python<'_>,
    link: LinkKind,
    object: usize,
    span: (u128, u64),
    function: &str,
    cause_ns: u64,
) -> PyResult<Option<u64>> {
    let active = active(py)?;
    if active.shared.flight {
        return Ok(None);
    }
    let Some(key) = causality::key_of(causality::Key::Object, object, 0, 0) else {
        return Ok(None);
    };
    let code = remote_code(active, function);
    let shared = active.shared.clone();
    py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        st.builder.remote_cause(link, key, cause_ns, code, span);
    });
    Ok(Some(key))
}

/// In the parent, a process pool's job came back (its result unpickled): the `result()` of
/// the future at `future` (its address) links to the job's span in the worker.
#[pyfunction]
fn pool_job_done(
    py: Python<'_>,
    future: usize,
    trace_id: u128,
    span_id: u64,
    function: String,
    cause_ns: u64,
) -> PyResult<()> {
    remote_cause(
        py,
        LinkKind::Future,
        future,
        (trace_id, span_id),
        &function,
        cause_ns,
    )?;
    Ok(())
}

/// In a process pool's worker, a job (the object at `job`) starts: its first recorded call
/// links to the submitting call `(trace_id, span_id)` in the parent.
#[pyfunction]
fn pool_job_begin(
    py: Python<'_>,
    job: usize,
    trace_id: u128,
    span_id: u64,
    function: String,
    cause_ns: u64,
) -> PyResult<()> {
    let link = LinkKind::ProcessFuture;
    if let Some(key) = remote_cause(py, link, job, (trace_id, span_id), &function, cause_ns)? {
        let active = active(py)?;
        unsafe { record_meta(active, causality_meta(EventKind::Effect, link, key)) };
    }
    Ok(())
}

/// In a process pool's worker, the job begun last ended: `(trace_id, span_id, function, now)`
/// of the last call it kept at the bottom of the stack (what completed it, for the parent's
/// `result()`), or None.
#[pyfunction]
fn pool_job_end(py: Python<'_>) -> PyResult<Option<(u128, u64, String, u64)>> {
    on_this_stream(py, |shared, st, stream| {
        let (trace_id, span_id, code) = st.builder.end_job(stream)?;
        let function = code_name(shared, st, code);
        Some((trace_id, span_id, function, monotonic_ns()))
    })
}

/// `f` on the builder once this thread's records are read (record mode, in a thread that
/// recorded), without the GIL; None in the flight recorder or a thread that did not record.
fn on_this_stream<T: Send>(
    py: Python<'_>,
    f: impl FnOnce(&Shared, &mut DrainState, u64) -> Option<T> + Send,
) -> PyResult<Option<T>> {
    let active = active(py)?;
    if active.shared.flight {
        return Ok(None);
    }
    let Some(stream) = current_stream() else {
        return Ok(None);
    };
    let shared = active.shared.clone();
    Ok(py.detach(|| {
        let mut st = shared.drain.lock().unwrap();
        shared.drain(&mut st, Some(stream));
        f(&shared, &mut st, stream)
    }))
}

/// The `module.qualname` of code id `code`, the names log read again when it is new.
fn code_name(shared: &Shared, st: &mut DrainState, code: u32) -> String {
    if !st.names.codes.contains_key(&code) {
        st.names = Names::read(&shared.file);
    }
    function_name(&st.names, code)
}

/// The flight recorder's [`spawning_call`], first half: the recorded call open innermost in
/// this thread (the first frame out from here whose code is recorded): its frame and function
/// (`module.qualname`); None outside any recorded call.
#[pyfunction]
fn open_call(py: Python<'_>) -> PyResult<Option<(Py<PyAny>, String)>> {
    let active = active(py)?;
    // SAFETY: the GIL is held; every new reference taken here is released here or returned.
    let (frame, code) = unsafe {
        let mut frame = ffi::PyEval_GetFrame();
        if !frame.is_null() {
            ffi::Py_INCREF(frame as *mut ffi::PyObject);
        }
        let mut found = 0;
        while !frame.is_null() {
            let code = ffi::PyFrame_GetCode(frame) as *mut ffi::PyObject;
            let id = cached_code_id(active, code);
            ffi::Py_DECREF(code);
            if id != 0 && id & CAUSAL == 0 {
                found = id & !FLAGS;
                break;
            }
            let back = ffi::PyFrame_GetBack(frame);
            ffi::Py_DECREF(frame as *mut ffi::PyObject);
            frame = back;
        }
        if frame.is_null() {
            return Ok(None);
        }
        (
            Bound::from_owned_ptr(py, frame as *mut ffi::PyObject),
            found,
        )
    };
    // Named as `decide` named it (not from the names log, which would be read whole).
    // SAFETY: a live frame object; both calls return new references, owned by the Bounds.
    let (globals, code_object) = unsafe {
        let frame_ptr = frame.as_ptr() as *mut ffi::PyFrameObject;
        (
            Bound::from_owned_ptr(py, ffi::PyFrame_GetGlobals(frame_ptr)),
            Bound::from_owned_ptr(py, ffi::PyFrame_GetCode(frame_ptr) as *mut ffi::PyObject),
        )
    };
    let qualname: String = code_object
        .getattr("co_qualname")
        .and_then(|q| q.extract())
        .unwrap_or_else(|_| format!("code#{code}"));
    let module = module_of_globals(globals);
    let function = if module.is_empty() {
        qualname
    } else {
        format!("{module}.{qualname}")
    };
    Ok(Some((frame.unbind(), function)))
}

/// The second half: the recorded call open innermost in this thread (as [`open_call`] found
/// it) gets the span ids `(trace_id, span_id)` the caller chose, by a record the dump's builder
/// follows (see `EventKind::CallIds`): a process started from it names them as its parent.
#[pyfunction]
fn name_open_call(py: Python<'_>, trace_id: u128, span_id: u64) -> PyResult<()> {
    let active = active(py)?;
    let key = active.shared.file.add_span(trace_id, span_id);
    unsafe { record(active, EventKind::CallIds, key, 0) };
    Ok(())
}

fn current_stream() -> Option<u64> {
    LOCAL.with(|l| unsafe { &*l.get() }.writer.as_ref().map(|w| w.stream))
}

/// The flight recorder's window, as spans: everything still in the rings (the last seconds),
/// built in window mode. Returns a dict: spans (as take_spans), top_calls per thread,
/// start/end (Unix ns), events, lost, threads.
#[pyfunction]
#[pyo3(signature = (threshold_ns, detail_last_events, root, window_ns=0))]
fn dump_window(
    py: Python<'_>,
    threshold_ns: u64,
    detail_last_events: usize,
    root: Option<(u128, u64)>,
    window_ns: u64,
) -> PyResult<Py<PyDict>> {
    let active = active(py)?;
    unsafe { record(active, EventKind::Trigger, 0, 0) };
    let file = active.shared.file.clone();
    window_to_python(py, &file, threshold_ns, detail_last_events, root, window_ns)
}

/// The arguments of the call a frame object runs (a thread's open call, or one an exception
/// passed through, from its traceback), summarised as the recorded calls' are: natively, no
/// code of the program run. For the flight recorder's dump, which captures values while
/// recording only for the functions it was asked to (its promise is not to slow the program).
/// None for an object not a frame.
#[pyfunction]
fn frame_arguments(
    py: Python<'_>,
    frame: &Bound<'_, PyAny>,
) -> PyResult<Option<Vec<(String, String)>>> {
    // SAFETY: the GIL is held (`py`); a frame object checked by type; every reference taken
    // is owned by a Bound and released.
    unsafe {
        if ffi::PyFrame_Check(frame.as_ptr()) == 0 {
            return Ok(None);
        }
        let frame_ptr = frame.as_ptr() as *mut ffi::PyFrameObject;
        let code = Bound::from_owned_ptr(py, ffi::PyFrame_GetCode(frame_ptr) as *mut ffi::PyObject);
        let names = argument_names(&code);
        let mut out = String::new();
        frame_arguments_into(frame_ptr, code.as_ptr(), &names, &mut out);
        Ok(Some(split_arguments(out)))
    }
}

/// A safe summary of one value (an exception at dump time), as a recorded call's return value
/// or exception is summarised.
#[pyfunction]
fn summarize_value(value: &Bound<'_, PyAny>) -> String {
    let mut out = String::new();
    // SAFETY: the GIL is held (a bound reference); the object is alive.
    unsafe { values::summarize(value.as_ptr(), &mut out, values::CALL_BYTES) };
    out
}

/// An exception's message without running any of its code (no `__str__`, `__repr__` or
/// `args` property): from the arguments its C structure holds (see
/// [`values::exception_message`]). For the flight recorder's dump.
#[pyfunction]
fn exception_message(error: &Bound<'_, PyAny>) -> String {
    let mut out = String::new();
    // SAFETY: the GIL is held (a bound reference); the object is alive.
    unsafe { values::exception_message(error.as_ptr(), &mut out, values::MESSAGE_BYTES) };
    out
}

/// Whether the recorder reads a recorded call's arguments from the thread state's running
/// interpreter frame (the layout of this CPython known and checked), not through a frame
/// object it would have to make.
#[pyfunction]
fn reads_frames_directly() -> bool {
    FRAME_LAYOUT_OK.load(Ordering::Relaxed)
}

/// Whether this thread's causality callbacks read its thread state where CPython keeps it
/// (`thread_frame`), and what is there is this thread's current thread state.
#[pyfunction]
fn reads_thread_state_directly() -> bool {
    // SAFETY: called from Python (the GIL is held); this thread's Local.
    unsafe {
        let local = &mut *this_thread_local();
        let current = thread_state_slow(local);
        local.thread_state > THREAD_STATE_NOT_FOUND
            && *(local.thread_state as *const *const u8) == current
    }
}

/// The same for a recorder file left by another (dead) process.
#[pyfunction]
#[pyo3(signature = (path, threshold_ns, detail_last_events, root, window_ns=0))]
fn recover_window(
    py: Python<'_>,
    path: PathBuf,
    threshold_ns: u64,
    detail_last_events: usize,
    root: Option<(u128, u64)>,
    window_ns: u64,
) -> PyResult<Py<PyDict>> {
    let file = RecorderFile::open(&path).map_err(|e| PyOSError::new_err(e.to_string()))?;
    window_to_python(py, &file, threshold_ns, detail_last_events, root, window_ns)
}

fn window_to_python(
    py: Python<'_>,
    file: &RecorderFile,
    threshold_ns: u64,
    detail_last_events: usize,
    root: Option<(u128, u64)>,
    window_ns: u64,
) -> PyResult<Py<PyDict>> {
    let clock = file.info().created;
    let (items, top, times, events, lost, names) = py.detach(|| {
        let mut streams = ring::read_window(file);
        if window_ns > 0 {
            // Keep the last window_ns of each thread, up to the latest record of all.
            let latest = streams
                .iter()
                .filter_map(|s| s.events.last().map(|e| e.ts))
                .max()
                .unwrap_or(0);
            let from = latest.saturating_sub(window_ns);
            for s in &mut streams {
                let cut = s.events.partition_point(|e| e.ts < from);
                if cut > 0 {
                    s.events.drain(..cut);
                }
            }
            streams.retain(|s| !s.events.is_empty());
        }
        let mut builder = Builder::new(BuilderOptions {
            threshold_ns,
            root,
            window: true,
            detail_last_events,
            seed: monotonic_ns(),
            ..Default::default()
        });
        // Window mode wants each stream whole: segments split by an overrun are fed apart.
        for s in &streams {
            builder.feed(s, &|key| file.span(key));
        }
        // A call still running when the window is taken, or when the process was killed, ran
        // at least until the recorder's last heartbeat (its thread may have written nothing
        // since the call began).
        builder.finish_open_alive_until(file.info().heartbeat_ns);
        let mut names = Names::read(file);
        let spans = builder.take_spans();
        let top = builder.take_top_calls();
        let times = builder.stream_times();
        let items = resolve(file, &mut names, spans, ValuesFrom::File(file));
        (items, top, times, builder.events, builder.lost, names)
    });
    let out = PyDict::new(py);
    out.set_item("spans", to_python(py, clock, items)?)?;
    let top_calls = PyList::empty(py);
    for (stream, tid, calls) in top {
        top_calls.append((
            tid,
            names.threads.get(&stream).cloned(),
            resolve_calls(&names, &calls),
        ))?;
    }
    out.set_item("top_calls", top_calls)?;
    let threads = PyList::empty(py);
    for (stream, tid, first, last) in &times {
        threads.append((
            *tid,
            names.threads.get(stream).cloned(),
            clock.to_unix(*first),
            clock.to_unix(*last),
        ))?;
    }
    out.set_item("threads", threads)?;
    let start = times.iter().map(|t| t.2).min().unwrap_or(0);
    let end = times.iter().map(|t| t.3).max().unwrap_or(0);
    out.set_item("start", clock.to_unix(start))?;
    out.set_item("end", clock.to_unix(end))?;
    out.set_item("events", events)?;
    out.set_item("lost", lost)?;
    let info = file.info();
    out.set_item("meta", info.meta)?;
    out.set_item("pid", info.pid)?;
    Ok(out.unbind())
}

/// In a child just forked from a recording process (called from `os.register_at_fork`'s
/// `after_in_child`): the child records into a ring file of its own at `path`, with its own
/// drainer, its calls made outside any span of its own nesting under `root` (the span current
/// when it forked). The parent's file is never written again from here: the child's copy of
/// the parent's state (its drainer's lock, possibly held at fork time; the forking thread's
/// chunk) is abandoned, not released. Returns false when no recorder was running. When the
/// file cannot be made (`OSError`), the child can try again with another path.
#[pyfunction]
fn after_fork_child(
    _py: Python<'_>,
    path: PathBuf,
    meta: String,
    root: Option<(u128, u64)>,
) -> PyResult<bool> {
    let a = FORKED.load(Ordering::Relaxed);
    if a.is_null() {
        return Ok(false);
    }
    // SAFETY: held in FORKED (taken out below, once the file is made), under the GIL, which
    // `_py` proves we hold.
    let active = unsafe { &mut *a };
    LOCAL.with(|local| {
        // SAFETY: this thread's; no other reference to it is live.
        let local = unsafe { &mut *local.get() };
        // Dropped without `release`: releasing would mark the parent's chunk free while the
        // parent writes it. (The file stays mapped: the abandoned state below holds it.)
        local.writer = None;
        local.file = None;
        local.epoch = 0;
    });
    // The drainer thread did not survive the fork: its handle is not joined or detached, and
    // the state it shared (its mutex may be locked for ever here) is left alone.
    std::mem::forget(active.drainer.take());
    let options = StartOptions {
        root: root.or(active.options.root),
        ..active.options
    };
    let file = RecorderFile::create_with_clock(
        &path,
        options.layout,
        std::process::id(),
        options.flight as u32,
        &meta,
        Clock::best(),
    )
    .map_err(ring_file_error)?;
    FORKED.store(std::ptr::null_mut(), Ordering::Relaxed);
    let shared = new_shared(file, &options);
    std::mem::forget(std::mem::replace(&mut active.shared, shared.clone()));
    active.options = options;
    // A new epoch: every code object is decided again, its name written into the new file.
    active.epoch = EPOCH.fetch_add(1, Ordering::Relaxed) + 1;
    clear_walk_cache();
    active.next_code = 1;
    active.exception_ids.clear();
    active.exception_types.clear();
    active.span_keys.clear();
    active.arg_names.clear();
    active.remote_codes.clear();
    active.triggering = false;
    active.drainer = Some(spawn_drainer(&shared, &options)?);
    ACTIVE.store(a, Ordering::Release);
    Ok(true)
}

/// `pthread_atfork`'s child handler: runs in the child right after `fork()`, before any Python
/// code (CPython's own `os.register_at_fork` hooks included, which may start threads). The
/// recorder is set aside, so nothing the child runs is written into the parent's file, until
/// `after_fork_child` (devtrace's at-fork hook, in Python) gives the child a file of its own.
/// Only an atomic swap: a forked child of a threaded process may only do async-signal-safe work.
extern "C" fn forget_parent_in_child() {
    let a = ACTIVE.swap(std::ptr::null_mut(), Ordering::Relaxed);
    FORKED.store(a, Ordering::Relaxed);
    // The cached Local may be another parent thread's, which does not exist here; a thread
    // the child starts may get its thread pointer and would find that Local (and its writer
    // into the parent's file).
    CACHED_THREAD.store(0, Ordering::Relaxed);
}

/// Removes the files recordings that ended without stopping left in `directory` and that
/// hold nothing undelivered (see `devtrace_recorder::leftovers`); the paths removed.
#[pyfunction]
fn remove_spent(py: Python<'_>, directory: std::path::PathBuf) -> Vec<String> {
    py.detach(|| devtrace_recorder::leftovers::remove_spent(&directory))
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect()
}

/// The recorder file's path while recording.
#[pyfunction]
fn path(py: Python<'_>) -> PyResult<String> {
    Ok(active(py)?
        .shared
        .file
        .path()
        .to_string_lossy()
        .into_owned())
}

/// Whether a recorder runs in this process.
#[pyfunction]
fn running() -> bool {
    !ACTIVE.load(Ordering::Relaxed).is_null()
}

unsafe extern "C" fn empty_callback(
    _callable: *mut ffi::PyObject,
    _args: *const *mut ffi::PyObject,
    _nargsf: usize,
    _kwnames: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    unsafe { none() }
}

/// The benchmark's floor: registers (or, with `on=False`, removes) a native callback that does
/// nothing, on the recorder's events, so the cost of CPython's dispatch alone can be measured.
#[pyfunction]
fn bench_floor(py: Python<'_>, on: bool) -> PyResult<()> {
    let monitoring = py.import("sys")?.getattr("monitoring")?;
    let events = monitoring.getattr("events")?;
    let names = [
        "PY_START",
        "PY_RESUME",
        "PY_RETURN",
        "PY_YIELD",
        "PY_THROW",
        "PY_UNWIND",
        "RAISE",
        "EXCEPTION_HANDLED",
    ];
    if !on {
        monitoring.call_method1("set_events", (TOOL_ID, 0))?;
        for event in names {
            monitoring.call_method1(
                "register_callback",
                (TOOL_ID, events.getattr(event)?, py.None()),
            )?;
        }
        monitoring.call_method1("free_tool_id", (TOOL_ID,))?;
        return Ok(());
    }
    monitoring.call_method1("use_tool_id", (TOOL_ID, "devtrace.bench_floor"))?;
    let func = native_callback(py, empty_callback)?;
    let mut mask = 0u32;
    for event in names {
        let bit: u32 = events.getattr(event)?.extract()?;
        monitoring.call_method1("register_callback", (TOOL_ID, bit, func.clone_ref(py)))?;
        mask |= bit;
    }
    monitoring.call_method1("set_events", (TOOL_ID, mask))?;
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(bench_floor, m)?)?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(stop, m)?)?;
    m.add_function(wrap_pyfunction!(take_spans, m)?)?;
    m.add_function(wrap_pyfunction!(drain_now, m)?)?;
    m.add_function(wrap_pyfunction!(span_start, m)?)?;
    m.add_function(wrap_pyfunction!(span_end, m)?)?;
    m.add_function(wrap_pyfunction!(dump_window, m)?)?;
    m.add_function(wrap_pyfunction!(recover_window, m)?)?;
    m.add_function(wrap_pyfunction!(frame_arguments, m)?)?;
    m.add_function(wrap_pyfunction!(summarize_value, m)?)?;
    m.add_function(wrap_pyfunction!(exception_message, m)?)?;
    m.add_function(wrap_pyfunction!(reads_frames_directly, m)?)?;
    m.add_function(wrap_pyfunction!(reads_thread_state_directly, m)?)?;
    m.add_function(wrap_pyfunction!(path, m)?)?;
    m.add_function(wrap_pyfunction!(remove_spent, m)?)?;
    m.add_function(wrap_pyfunction!(running, m)?)?;
    m.add_function(wrap_pyfunction!(after_fork_child, m)?)?;
    m.add_function(wrap_pyfunction!(spawning_call, m)?)?;
    m.add_function(wrap_pyfunction!(pool_job_begin, m)?)?;
    m.add_function(wrap_pyfunction!(pool_job_end, m)?)?;
    m.add_function(wrap_pyfunction!(pool_job_done, m)?)?;
    m.add_function(wrap_pyfunction!(open_call, m)?)?;
    m.add_function(wrap_pyfunction!(name_open_call, m)?)?;
    Ok(())
}
