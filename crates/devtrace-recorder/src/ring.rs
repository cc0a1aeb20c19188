//! The recorder file: per-thread, lock-free, overwrite-oldest rings of fixed-size records in
//! shared memory (a file mapped `MAP_SHARED`, under `/dev/shm` or the data directory), so a
//! reader in the same process can drain them while they are written and a reader in another
//! process can recover the last window after the writer died.
//!
//! # Format, version 2 (native endianness and alignment; a reader checks the magic)
//!
//! ```text
//! header   4096 B   magic "DTREC\0v1", sizes and offsets, creation clock pair, counters,
//!                   state (running / closed), the records' clock and its calibration, the
//!                   boot it was written in, the root trace context, a JSON metadata string
//! names    N B      append-only log of names (code objects, exception types, threads)
//! spans    S × 32 B table of OpenTelemetry spans marked in the rings (key, trace id, span id)
//! chunks   C × (64 B header + R × 16 B records)
//! values   V × 32 × 640 B value slots (only in files that asked for them; see `values`)
//! ```
//!
//! A thread writes into a *chunk* it owns; when the chunk is full it takes the chunk allocated
//! longest ago that no thread is writing (overwrite-oldest across all threads, so one busy
//! thread can use the whole file and a quiet thread's last calls stay until they are the
//! oldest). A chunk header names its *stream* (one per writing thread, never reused, unlike OS
//! thread ids), the OS thread id, the stream sequence number of its first record, and how many
//! records are committed. Each record is 16 bytes: a stamp of the file's clock and a word holding
//! the code id (32 bits), the kind (8 bits) and an auxiliary value (24 bits: an exception type
//! id). The clock is `CLOCK_MONOTONIC` nanoseconds or the CPU's time-stamp counter
//! ([`Clock::best`]); for the counter the header keeps a (counter, monotonic) pair taken at
//! creation and a later one the writer refreshes, and readers give out monotonic nanoseconds
//! (a reader in the same boot takes its own later pair). Version 1 files (monotonic stamps,
//! those fields zero) read as before.
//!
//! Causality records (kinds 15–17, [`EventKind::Cause`], [`EventKind::WaitBegin`],
//! [`EventKind::Effect`]) carry a 48-bit key instead of a code id: its low 32 bits in the code
//! field, its high 16 bits in aux bits 8–23, and the [`LinkKind`] in aux bits 0–7. The key is
//! made from object identities (addresses), never from user code ([`causality_meta`]). They
//! were added without a version bump: a reader that does not know a kind skips its records,
//! so older readers read these files as before, without the links.
//!
//! A chunk header also keeps how far the live reader (the same process's drainer) has read it,
//! tagged with the chunk's generation. A writer that may wait for that reader (record mode:
//! nothing is to be lost) does not take a chunk the reader has not read to its end: it waits
//! until it has (see [`RecorderFile::set_wait_for_reader`]). The flight recorder never waits: its
//! writers overwrite the oldest chunk, read or not.
//!
//! Concurrency: a chunk's header is guarded by a generation counter used as a seqlock (odd
//! while the header is being rewritten for a new owner, even after; readers check it before and
//! after reading and drop what they read if it changed). Records are published by storing the
//! committed count with release ordering after writing them. A reader that falls behind sees a
//! gap between the sequence number it expected and the first one still present: that many
//! records were overwritten (an overrun), and it says so rather than guessing.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use crate::clock::{Calibration, Clock, ClockPair, TickPair, boot_id};

pub const MAGIC: [u8; 8] = *b"DTREC\0v1";
pub const HEADER_SIZE: usize = 4096;
pub const CHUNK_HEADER_SIZE: usize = 64;
pub const RECORD_SIZE: usize = 16;
pub const SPAN_SLOT_SIZE: usize = 32;
const META_OFFSET: usize = 256;
pub const META_CAPACITY: usize = HEADER_SIZE - META_OFFSET;

// Header field offsets.
const H_VERSION: usize = 8;
const H_CHUNK_RECORDS: usize = 12;
const H_CHUNK_COUNT: usize = 16;
const H_SPAN_SLOTS: usize = 20;
const H_NAMES_OFFSET: usize = 24;
const H_NAMES_CAPACITY: usize = 32;
const H_SPANS_OFFSET: usize = 40;
const H_CHUNKS_OFFSET: usize = 48;
const H_PID: usize = 56;
const H_FLAGS: usize = 60;
const H_CREATED_UNIX: usize = 64;
const H_CREATED_MONO: usize = 72;
const H_NEXT_CHUNK: usize = 96;
const H_NAMES_LEN: usize = 104;
const H_NEXT_SPAN: usize = 112;
const H_STATE: usize = 120;
const H_NEXT_STREAM: usize = 128;
const H_HEARTBEAT: usize = 136;
const H_META_LEN: usize = 144;
const H_CLOCK: usize = 148;
const H_CAL_BASE_TICKS: usize = 152;
const H_CAL_BASE_NS: usize = 160;
const H_CAL_LATER_TICKS: usize = 168;
const H_CAL_LATER_NS: usize = 176;
const H_BOOT_ID: usize = 184; // 16 bytes
/// The value slots' region (see the `values` module): how many blocks, where, and the counter
/// handing blocks to threads. Zero in files without one (and in files of writers before it,
/// which readers read as before: the region is after the chunks).
const H_VALUE_BLOCKS: usize = 200;
const H_VALUES_OFFSET: usize = 208;
pub(crate) const H_NEXT_VALUE_BLOCK: usize = 216;
/// Texts a writer could not keep for want of room in the names log (0 in files of writers
/// before this field): counted in the file so that its reader can say what the recording lacks.
const H_TEXTS_NOT_KEPT: usize = 224;
/// What the live reader read but has not delivered, after its last pass: calls it read the
/// start of and not yet the end, spans held for their links (0 in files of writers before this
/// field, which are then judged by their unread records alone: see leftovers.rs).
const H_READ_UNDELIVERED: usize = 232;
/// When the program began to stop, monotonic ns, as its runtime said (the BEAM's `init:stop`:
/// the processes it kills after are stopped, not failed); 0: it never said.
const H_STOPPING: usize = 240;
/// The newest format this code writes; it reads it and version 1.
const VERSION: u32 = 2;

// Chunk header field offsets.
const C_GENERATION: usize = 0;
const C_STREAM: usize = 8;
const C_TID: usize = 16;
const C_FIRST_SEQ: usize = 24;
const C_COMMITTED: usize = 32;
const C_ACTIVE: usize = 36;
/// How far the live reader has read the chunk: the low 32 bits of the generation it read,
/// then the count of records read (0 in files of writers before this field: never read).
const C_READ: usize = 40;

/// How long a writer waits for the reader to read the chunk it needs before it overwrites it
/// anyway (the records counted as lost by the reader): a reader that made no progress for this
/// long has stopped, and the program must not hang on it.
const READER_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// `state` in the header.
pub const STATE_RUNNING: u32 = 1;
pub const STATE_CLOSED: u32 = 2;
/// A reader recovered the file after its writer died.
pub const STATE_RECOVERED: u32 = 3;

/// A `Return`'s aux for a function that ended in a tail call of another (the BEAM's probes):
/// the call after it on its thread is the one it made, the rest of its work.
pub const RETURN_INTO_TAIL_CALL: u32 = 1;

/// What a record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EventKind {
    /// A Python function started (`PY_START`).
    Call = 1,
    /// A generator or coroutine resumed (`PY_RESUME`).
    Resume = 2,
    /// A function returned (`PY_RETURN`); aux [`RETURN_INTO_TAIL_CALL`] when it ended in a
    /// tail call instead (a BEAM function's last call, its span following this one's).
    Return = 3,
    /// A generator or coroutine yielded or awaited (`PY_YIELD`).
    Yield = 4,
    /// A frame exited by an exception (`PY_UNWIND`).
    Unwind = 5,
    /// An exception was raised (or re-raised) in a frame; aux is the exception type id.
    Raise = 6,
    /// An exception was caught in a frame (`EXCEPTION_HANDLED`).
    Handled = 7,
    /// An OpenTelemetry span started in this thread; code is the span key (span table).
    SpanStart = 8,
    /// An OpenTelemetry span ended; code is the span key.
    SpanEnd = 9,
    /// A generator resumed by `throw()` (`PY_THROW`).
    Throw = 10,
    /// The flight recorder was triggered here (aux: the trigger).
    Trigger = 11,
    /// The next start, resumption or throw is the first coroutine of an asyncio task's step
    /// (what the event loop resumed); code is the task's key (its outermost coroutine's
    /// address, shifted). Marks a task switch: the builder keeps a stack per task.
    TaskStep = 12,
    /// Follows a TaskStep of a task's first step: code is the span key of the OpenTelemetry
    /// span current in the task (its context, copied when the task was created).
    TaskParent = 13,
    /// A summary of the values of the open call (functions whose values are captured): code
    /// is its id in the recording process's value store (record mode), or the value id of its
    /// slot in this file (the flight recorder, see the `values` module); aux says which
    /// (0: the arguments, after the call's start; 1: the return value and 2: the exception,
    /// before its end).
    Value = 14,
    /// A causality event's causing side (a queue put, an event set, a thread started or
    /// ending, a condition notified, a future submitted or completed): code and the high 16
    /// bits of aux are a 48-bit key (object identities, see [`causality_meta`]), the low 8 bits
    /// of aux the [`LinkKind`].
    Cause = 15,
    /// A call that may wait (a queue get, an event or condition wait, a join, a future's
    /// result) started waiting: the wait's start (aux: the [`LinkKind`], code 0); with a key,
    /// an asyncio coroutine's wait, or the end of a wait that had no effect (see
    /// [`WAIT_RECALL`], [`WAIT_FORGET`]).
    WaitBegin = 16,
    /// A causality event's consuming side (the get returned its item, the wait returned, the
    /// thread's run started): keyed as its [`EventKind::Cause`]; the builder links it to the
    /// matching cause (see `builder`'s module doc).
    Effect = 17,
    /// The flight recorder: a process was started from the innermost call open in this
    /// thread, which the child's spans name as their parent: code is the span key (span table)
    /// of the ids that call's span must have. The builder gives them to it (and keeps it).
    CallIds = 18,
    /// A BEAM runtime's record (see the `beam` module): its BEAM kind in aux bits 0–7, a 48-bit
    /// payload in the code and aux bits 8–23, like a causality record's key. The BEAM reader
    /// turns these into the records above before the builder sees them.
    Beam = 19,
}

/// What kind of happens-before link a causality record belongs to (8 bits of its aux).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LinkKind {
    Queue = 1,
    AsyncioQueue = 2,
    Lock = 3,
    Condition = 4,
    Event = 5,
    ThreadStart = 6,
    ThreadJoin = 7,
    Future = 8,
    Process = 9,
    /// A `threading.RLock`: link kind `lock`, its own object type.
    RLock = 10,
    /// asyncio's `Lock`, `Event` and `Condition`: kinds `lock`, `event`, `condition`, their own
    /// object types; a task resumed by one is kept as a span.
    AsyncioLock = 11,
    AsyncioEvent = 12,
    AsyncioCondition = 13,
    /// A `ProcessPoolExecutor` job starting in its worker process: kind `future`, caused by the
    /// submitting call in the parent (a span named by ids the job carries); the job's first
    /// recorded call is kept as a span.
    ProcessFuture = 14,
    /// asyncio's `Semaphore` (and `BoundedSemaphore`): kind `semaphore`, like its lock.
    AsyncioSemaphore = 15,
    /// `threading.Semaphore` (and `BoundedSemaphore`): kind `semaphore`, its own object type
    /// rather than the `Condition` inside it.
    Semaphore = 16,
    /// A `ThreadPoolExecutor` job starting in its worker thread: kind `future`, caused by the
    /// submit; apart from [`LinkKind::Future`] (a job's end and `result()`) because its
    /// consumer is the job's first recorded call, which comes after it ([`Self::begins_a_run`]).
    FutureJob = 17,
    /// A BEAM message: sent by one process, received into another's mailbox (kind `message`);
    /// each send ends one receive.
    Message = 18,
    /// A BEAM process's exit, as a process monitoring it (its `'DOWN'` message) or linked to it
    /// and trapping exits (its `'EXIT'` message) learns of it, or as a linked process it took
    /// down: kind `thread.join` (a thread's end, every consumer after it), its own object type.
    ProcessExit = 19,
}

impl LinkKind {
    pub fn from_u8(v: u8) -> Option<LinkKind> {
        use LinkKind::*;
        Some(match v {
            1 => Queue,
            2 => AsyncioQueue,
            3 => Lock,
            4 => Condition,
            5 => Event,
            6 => ThreadStart,
            7 => ThreadJoin,
            8 => Future,
            9 => Process,
            10 => RLock,
            11 => AsyncioLock,
            12 => AsyncioEvent,
            13 => AsyncioCondition,
            14 => ProcessFuture,
            15 => AsyncioSemaphore,
            16 => Semaphore,
            17 => FutureJob,
            18 => Message,
            19 => ProcessExit,
            _ => return None,
        })
    }

    /// The `devtrace.link.kind` attribute's value.
    pub fn name(self) -> &'static str {
        match self {
            LinkKind::Queue => "queue",
            LinkKind::AsyncioQueue => "asyncio.queue",
            LinkKind::Lock | LinkKind::RLock | LinkKind::AsyncioLock => "lock",
            LinkKind::Condition | LinkKind::AsyncioCondition => "condition",
            LinkKind::Event | LinkKind::AsyncioEvent => "event",
            LinkKind::ThreadStart => "thread.start",
            LinkKind::ThreadJoin | LinkKind::ProcessExit => "thread.join",
            LinkKind::Future | LinkKind::FutureJob | LinkKind::ProcessFuture => "future",
            LinkKind::Process => "process",
            LinkKind::AsyncioSemaphore | LinkKind::Semaphore => "semaphore",
            LinkKind::Message => "message",
        }
    }

    /// The `devtrace.link.object` attribute's value: the type of the object linked through.
    pub fn object(self) -> &'static str {
        match self {
            LinkKind::Queue => "queue.Queue",
            LinkKind::AsyncioQueue => "asyncio.Queue",
            LinkKind::Lock => "threading.Lock",
            LinkKind::RLock => "threading.RLock",
            LinkKind::Condition => "threading.Condition",
            LinkKind::Event => "threading.Event",
            LinkKind::ThreadStart | LinkKind::ThreadJoin => "threading.Thread",
            LinkKind::AsyncioLock => "asyncio.Lock",
            LinkKind::AsyncioEvent => "asyncio.Event",
            LinkKind::AsyncioCondition => "asyncio.Condition",
            LinkKind::Future | LinkKind::FutureJob | LinkKind::ProcessFuture => {
                "concurrent.futures.Future"
            }
            LinkKind::Process => "subprocess.Popen",
            LinkKind::AsyncioSemaphore => "asyncio.Semaphore",
            LinkKind::Semaphore => "threading.Semaphore",
            LinkKind::Message => "erlang.message",
            LinkKind::ProcessExit => "erlang.process",
        }
    }

    /// Whether one cause releases at most one consumer (a queue item is got once); otherwise
    /// every consumer after it links to the latest cause (an event set wakes all waiters).
    pub fn consumed_once(self) -> bool {
        matches!(
            self,
            LinkKind::Queue | LinkKind::AsyncioQueue | LinkKind::Message
        )
    }

    /// Whether a consumer that did not wait gets no link (a lock taken free, a condition wait
    /// that returned on its timeout before any notify).
    pub fn only_when_waited(self) -> bool {
        matches!(
            self,
            LinkKind::Lock
                | LinkKind::RLock
                | LinkKind::Semaphore
                | LinkKind::Condition
                | LinkKind::AsyncioLock
                | LinkKind::AsyncioCondition
                | LinkKind::AsyncioSemaphore
        )
    }

    /// Whether its consumer waits on a future of its own that is completed once (an asyncio
    /// lock's or semaphore's waiter): the first cause while it waited is the one. A later
    /// cause keyed on it is a wake that found it done already (a release, or a cancelled
    /// waiter passing the turn on, before the woken task ran), which woke no one.
    pub fn completed_once(self) -> bool {
        matches!(self, LinkKind::AsyncioLock | LinkKind::AsyncioSemaphore)
    }

    /// Whether its consumer is the start of a run — a thread's, a pool's job's — whose first
    /// recorded call comes after it: an effect of these in no recorded call waits for the
    /// thread's next one, on any thread (see the builder's `ran_tasks` for the others).
    pub fn begins_a_run(self) -> bool {
        matches!(
            self,
            LinkKind::ThreadStart | LinkKind::FutureJob | LinkKind::ProcessFuture
        )
    }

    /// Whether it is one of asyncio's (its consumer is a task resumed by the cause).
    pub fn asyncio(self) -> bool {
        matches!(
            self,
            LinkKind::AsyncioQueue
                | LinkKind::AsyncioLock
                | LinkKind::AsyncioEvent
                | LinkKind::AsyncioCondition
                | LinkKind::AsyncioSemaphore
        )
    }
}

/// The 48 bits of a causality key kept in a record.
pub const CAUSALITY_KEY_MASK: u64 = (1 << 48) - 1;
/// In a [`EventKind::WaitBegin`]'s key: the wait that began under the rest of the key (an asyncio
/// coroutine's suspension, keyed on its frame) is the one the next effect ends. A WaitBegin with
/// a key and without this bit says that coroutine is suspended (the first such record is its
/// wait's start). Keys are object addresses without their alignment bits, below this bit.
pub const WAIT_RECALL: u64 = 1 << 47;
/// In a [`EventKind::WaitBegin`]'s key: the coroutine's wait ended with no effect (cancelled, or
/// failed): its start is forgotten. Alone (no coroutine's key): the thread's wait ended with no
/// effect (timed out, failed), its start forgotten — the next effect, which may not have waited
/// (a queue's `get` begins a wait only when it has to), must not take it as its own.
pub const WAIT_FORGET: u64 = 1 << 46;

/// The meta word of a [`EventKind::Cause`] or [`EventKind::Effect`] record: the key's low 32
/// bits as the code, its high 16 bits and the link kind as the aux.
#[inline(always)]
pub fn causality_meta(kind: EventKind, link: LinkKind, key: u64) -> u64 {
    let high = ((key >> 32) & 0xFFFF) as u32;
    pack_meta(kind, key as u32, link as u32 | high << 8)
}

/// A causality record's (link kind, 48-bit key), or None for a record of another kind.
#[inline(always)]
pub fn causality_of(e: &Event) -> Option<(LinkKind, u64)> {
    if !matches!(
        e.kind,
        EventKind::Cause | EventKind::Effect | EventKind::WaitBegin
    ) {
        return None;
    }
    let link = LinkKind::from_u8(e.aux as u8)?;
    Some((link, (e.aux as u64 >> 8) << 32 | e.code as u64))
}

impl EventKind {
    #[inline(always)]
    pub fn from_u8(v: u8) -> Option<EventKind> {
        use EventKind::*;
        Some(match v {
            1 => Call,
            2 => Resume,
            3 => Return,
            4 => Yield,
            5 => Unwind,
            6 => Raise,
            7 => Handled,
            8 => SpanStart,
            9 => SpanEnd,
            10 => Throw,
            11 => Trigger,
            12 => TaskStep,
            13 => TaskParent,
            14 => Value,
            15 => Cause,
            16 => WaitBegin,
            17 => Effect,
            18 => CallIds,
            19 => Beam,
            _ => return None,
        })
    }
}

/// One decoded record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub ts: u64,
    pub kind: EventKind,
    pub code: u32,
    pub aux: u32,
}

#[inline(always)]
pub fn pack_meta(kind: EventKind, code: u32, aux: u32) -> u64 {
    code as u64 | (kind as u64) << 32 | ((aux as u64 & 0xFF_FFFF) << 40)
}

#[inline(always)]
pub fn unpack(ts: u64, meta: u64) -> Option<Event> {
    Some(Event {
        ts,
        kind: EventKind::from_u8((meta >> 32) as u8)?,
        code: meta as u32,
        aux: (meta >> 40) as u32,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RingError {
    #[error("recorder file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "recorder file {path} is not a devtrace recorder file (bad magic or version); it may be from another program or a newer devtrace"
    )]
    NotARecorderFile { path: PathBuf },
    #[error("recorder file {path} is truncated: {len} bytes, its header describes {expected}")]
    Truncated {
        path: PathBuf,
        len: u64,
        expected: u64,
    },
    #[error(
        "recorder size {mib} MiB is too small: at least {min} MiB are needed for the header, names, span table and one chunk per thread"
    )]
    TooSmall { mib: u64, min: u64 },
    #[error(
        "recorder file {path}: no room for its {need_mib} MiB on that filesystem ({free_mib} MiB free)"
    )]
    NoRoom {
        path: PathBuf,
        need_mib: u64,
        free_mib: u64,
    },
}

/// The sizes of a recorder file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub chunk_records: u32,
    pub chunk_count: u32,
    pub span_slots: u32,
    pub names_capacity: u64,
    /// Blocks of value slots (one a thread, [`VALUE_SLOTS_PER_BLOCK`] each); 0: none.
    pub value_blocks: u32,
}

/// Value slots a block holds: a thread's last captures (arguments, then the return value or
/// the exception: two a call, so the last 16 calls).
pub const VALUE_SLOTS_PER_BLOCK: u32 = 32;
/// Bytes of one value slot: a tag, a length, the summary's text.
pub const VALUE_SLOT_SIZE: usize = 640;
/// At most this many blocks (a value id keeps the block in 8 bits).
pub const MAX_VALUE_BLOCKS: u32 = 256;

impl Layout {
    /// A layout for a file of about `total_bytes`: 1/16 for names (at least 256 KiB), a span
    /// table of 16,384 slots, the rest in chunks of 16,384 records (256 KiB).
    pub fn for_size(total_bytes: u64) -> Result<Layout, RingError> {
        Layout::for_size_with_span_slots(total_bytes, 16 * 1024)
    }

    /// [`Layout::for_size`] for a recorder that never calls [`RecorderFile::add_span`] (the
    /// BEAM's): the span table's room goes to the chunks, which in a small file is a quarter.
    pub fn for_size_without_spans(total_bytes: u64) -> Result<Layout, RingError> {
        Layout::for_size_with_span_slots(total_bytes, 1)
    }

    fn for_size_with_span_slots(total_bytes: u64, span_slots: u32) -> Result<Layout, RingError> {
        let chunk_records: u32 = 16 * 1024;
        let names_capacity = (total_bytes / 16).max(256 * 1024);
        let fixed = HEADER_SIZE as u64 + names_capacity + span_slots as u64 * SPAN_SLOT_SIZE as u64;
        let chunk_bytes = CHUNK_HEADER_SIZE as u64 + chunk_records as u64 * RECORD_SIZE as u64;
        let chunk_count = total_bytes.saturating_sub(fixed) / chunk_bytes;
        if chunk_count < 4 {
            let min = (fixed + 4 * chunk_bytes).div_ceil(1 << 20);
            return Err(RingError::TooSmall {
                mib: total_bytes >> 20,
                min,
            });
        }
        Ok(Layout {
            chunk_records,
            chunk_count: chunk_count as u32,
            span_slots,
            names_capacity,
            value_blocks: 0,
        })
    }

    /// This layout with `blocks` blocks of value slots (at most [`MAX_VALUE_BLOCKS`]) after
    /// the chunks: the file grows by their size.
    pub fn with_value_blocks(self, blocks: u32) -> Layout {
        Layout {
            value_blocks: blocks.min(MAX_VALUE_BLOCKS),
            ..self
        }
    }

    /// A layout with explicit sizes (tests, and callers that know better).
    pub fn new(
        chunk_records: u32,
        chunk_count: u32,
        span_slots: u32,
        names_capacity: u64,
    ) -> Layout {
        Layout {
            chunk_records: chunk_records.max(1),
            chunk_count: chunk_count.max(2),
            span_slots: span_slots.max(1),
            names_capacity: names_capacity.max(64).next_multiple_of(8),
            value_blocks: 0,
        }
    }

    fn names_offset(&self) -> usize {
        HEADER_SIZE
    }
    fn spans_offset(&self) -> usize {
        HEADER_SIZE + self.names_capacity as usize
    }
    fn chunks_offset(&self) -> usize {
        self.spans_offset() + self.span_slots as usize * SPAN_SLOT_SIZE
    }
    fn chunk_bytes(&self) -> usize {
        CHUNK_HEADER_SIZE + self.chunk_records as usize * RECORD_SIZE
    }
    pub(crate) fn values_offset(&self) -> usize {
        self.chunks_offset() + self.chunk_count as usize * self.chunk_bytes()
    }
    pub fn file_len(&self) -> usize {
        self.values_offset()
            + self.value_blocks as usize * VALUE_SLOTS_PER_BLOCK as usize * VALUE_SLOT_SIZE
    }
    /// How many records the file holds in all.
    pub fn record_capacity(&self) -> u64 {
        self.chunk_count as u64 * self.chunk_records as u64
    }
}

/// A mapped recorder file, for writing (the recording process) or reading (the same process's
/// drainer, or another process after a crash).
pub struct RecorderFile {
    base: *mut u8,
    len: usize,
    layout: Layout,
    /// What the records are stamped with (from the header).
    clock: Clock,
    path: PathBuf,
    _file: File,
    /// Not in the file: this process's writers' wait for its reader (see the module doc).
    waiting: WaitForReader,
}

/// How the writers of this process wait for its live reader (record mode).
#[derive(Default)]
struct WaitForReader {
    /// Whether writers created from now on wait for the reader instead of overwriting.
    enabled: AtomicBool,
    /// Called (from a waiting writer's thread) to make the reader read now.
    wake_reader: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Writers waiting now.
    writers: AtomicU32,
    /// How many times a writer waited, and for how long in all (nanoseconds).
    waits: AtomicU64,
    waited_ns: AtomicU64,
    /// Waits given up after [`READER_WAIT_LIMIT`] (the chunk overwritten unread).
    given_up: AtomicU64,
}

/// What the writers' waits for the reader cost so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WaitStats {
    pub waits: u64,
    pub waited_ns: u64,
    pub given_up: u64,
}

// SAFETY: all shared state in the mapping is accessed through atomics; the mapping lives as
// long as the RecorderFile.
unsafe impl Send for RecorderFile {}
unsafe impl Sync for RecorderFile {}

impl Drop for RecorderFile {
    fn drop(&mut self) {
        // SAFETY: base/len came from a successful mmap.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

fn io_error(path: &Path, source: std::io::Error) -> RingError {
    RingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reserves the file's `len` bytes on its filesystem now. A write through a shared mapping to a
/// page its filesystem has no room for kills the process with SIGBUS (a small `/dev/shm`, as in
/// a container, fills up): reserved at creation, the recording either has every page it will
/// write or does not start.
fn reserve(file: &File, len: usize, path: &Path) -> Result<(), RingError> {
    match allocate(file, len) {
        0 => Ok(()),
        libc::ENOSPC | libc::EFBIG => Err(RingError::NoRoom {
            path: path.to_path_buf(),
            need_mib: (len as u64).div_ceil(1 << 20),
            free_mib: free_bytes(file) >> 20,
        }),
        e => Err(io_error(path, std::io::Error::from_raw_os_error(e))),
    }
}

/// `posix_fallocate` of the file's first `len` bytes: 0 or an errno.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn allocate(file: &File, len: usize) -> libc::c_int {
    loop {
        // SAFETY: a file descriptor we own, open for writing.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
        if rc != libc::EINTR {
            return rc;
        }
    }
}

/// Where there is no `posix_fallocate` (macOS): the free space checked instead, which another
/// process may still take before the rings fill.
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn allocate(file: &File, len: usize) -> libc::c_int {
    if free_bytes(file) < len as u64 {
        libc::ENOSPC
    } else {
        0
    }
}

/// Bytes an unprivileged writer may still take in directory `dir` (0 when unknown).
pub fn free_bytes_in(dir: &Path) -> u64 {
    File::open(dir).map_or(0, |f| free_bytes(&f))
}

#[cfg(target_os = "linux")]
fn in_memory(file: &File) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: a file descriptor we own; `st` is written by the call.
    if unsafe { libc::fstatfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: filled in by the successful call above.
    #[allow(clippy::unnecessary_cast)] // its width differs between targets
    let kind = unsafe { st.assume_init() }.f_type as i64;
    kind == TMPFS_MAGIC
}

#[cfg(not(target_os = "linux"))]
fn in_memory(_file: &File) -> bool {
    false
}

/// Bytes an unprivileged writer may still take on `file`'s filesystem (0 when unknown).
fn free_bytes(file: &File) -> u64 {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: an open descriptor and a buffer of the right type; read only on success.
    if unsafe { libc::fstatvfs(file.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: filled in by the successful call above.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // both are narrower on 32-bit targets
    (st.f_bavail as u64).saturating_mul(st.f_frsize as u64)
}

fn map(file: &File, len: usize, path: &Path) -> Result<*mut u8, RingError> {
    // SAFETY: a shared read-write mapping of a file we opened read-write, of its full length.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io_error(path, std::io::Error::last_os_error()));
    }
    Ok(base as *mut u8)
}

/// The metadata a recorder file carries for whoever reads it back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub pid: u32,
    pub flags: u32,
    pub state: u32,
    pub created: ClockPair,
    /// The last time the recording process said it was alive (monotonic ns).
    pub heartbeat_ns: u64,
    /// When the recording process began to stop (monotonic ns; 0: it never said).
    pub stopping_ns: u64,
    /// A JSON object written at creation (service, command, root trace context, options).
    pub meta: String,
}

impl RecorderFile {
    /// Creates (or truncates) the file at `path` with `layout` and maps it, its records stamped
    /// in monotonic nanoseconds. `meta` (at most 3,840 bytes, cut beyond) is kept in the header
    /// for readers.
    pub fn create(
        path: &Path,
        layout: Layout,
        pid: u32,
        flags: u32,
        meta: &str,
    ) -> Result<RecorderFile, RingError> {
        Self::create_with_clock(path, layout, pid, flags, meta, Clock::Monotonic)
    }

    /// [`RecorderFile::create`] for records stamped with `clock` (writers stamp with
    /// [`RecorderFile::clock`]).
    pub fn create_with_clock(
        path: &Path,
        layout: Layout,
        pid: u32,
        flags: u32,
        meta: &str,
        clock: Clock,
    ) -> Result<RecorderFile, RingError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let len = layout.file_len();
        let sized = file
            .set_len(len as u64)
            .map_err(|e| io_error(path, e))
            .and_then(|()| reserve(&file, len, path));
        if let Err(e) = sized {
            // Nothing half-made is left behind (a reservation that failed freed its blocks).
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        let base = map(&file, len, path)?;
        let rf = RecorderFile {
            base,
            len,
            layout,
            clock,
            path: path.to_path_buf(),
            _file: file,
            waiting: WaitForReader::default(),
        };
        // SAFETY: the header is inside the mapping; nobody else has it yet.
        unsafe {
            std::ptr::copy_nonoverlapping(MAGIC.as_ptr(), base, 8);
        }
        rf.u32_at(H_VERSION).store(VERSION, Ordering::Relaxed);
        rf.u32_at(H_CHUNK_RECORDS)
            .store(layout.chunk_records, Ordering::Relaxed);
        rf.u32_at(H_CHUNK_COUNT)
            .store(layout.chunk_count, Ordering::Relaxed);
        rf.u32_at(H_SPAN_SLOTS)
            .store(layout.span_slots, Ordering::Relaxed);
        rf.u64_at(H_NAMES_OFFSET)
            .store(layout.names_offset() as u64, Ordering::Relaxed);
        rf.u64_at(H_NAMES_CAPACITY)
            .store(layout.names_capacity, Ordering::Relaxed);
        rf.u64_at(H_SPANS_OFFSET)
            .store(layout.spans_offset() as u64, Ordering::Relaxed);
        rf.u64_at(H_CHUNKS_OFFSET)
            .store(layout.chunks_offset() as u64, Ordering::Relaxed);
        rf.u32_at(H_VALUE_BLOCKS)
            .store(layout.value_blocks, Ordering::Relaxed);
        rf.u64_at(H_VALUES_OFFSET)
            .store(layout.values_offset() as u64, Ordering::Relaxed);
        rf.u32_at(H_PID).store(pid, Ordering::Relaxed);
        rf.u32_at(H_FLAGS).store(flags, Ordering::Relaxed);
        let clock = ClockPair::now();
        rf.u64_at(H_CREATED_UNIX)
            .store(clock.unix_ns, Ordering::Relaxed);
        rf.u64_at(H_CREATED_MONO)
            .store(clock.monotonic_ns, Ordering::Relaxed);
        rf.u64_at(H_HEARTBEAT)
            .store(clock.monotonic_ns, Ordering::Relaxed);
        rf.u32_at(H_CLOCK).store(rf.clock as u32, Ordering::Relaxed);
        let first = TickPair::now(rf.clock);
        rf.u64_at(H_CAL_BASE_TICKS)
            .store(first.ticks, Ordering::Relaxed);
        rf.u64_at(H_CAL_BASE_NS).store(first.ns, Ordering::Relaxed);
        rf.calibrate();
        let boot = boot_id();
        rf.u64_at(H_BOOT_ID).store(boot as u64, Ordering::Relaxed);
        rf.u64_at(H_BOOT_ID + 8)
            .store((boot >> 64) as u64, Ordering::Relaxed);
        let meta = truncate_utf8(meta, META_CAPACITY);
        // SAFETY: META_OFFSET + meta.len() ≤ HEADER_SIZE.
        unsafe {
            std::ptr::copy_nonoverlapping(meta.as_ptr(), base.add(META_OFFSET), meta.len());
        }
        rf.u32_at(H_META_LEN)
            .store(meta.len() as u32, Ordering::Relaxed);
        rf.u32_at(H_STATE).store(STATE_RUNNING, Ordering::Release);
        Ok(rf)
    }

    /// Opens an existing recorder file (another process's, possibly dead) for reading.
    pub fn open(path: &Path) -> Result<RecorderFile, RingError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let flen = file.metadata().map_err(|e| io_error(path, e))?.len();
        if flen < HEADER_SIZE as u64 {
            return Err(RingError::NotARecorderFile { path: path.into() });
        }
        let mut header = [0u8; 256];
        std::io::Read::read_exact(&mut &file, &mut header).map_err(|e| io_error(path, e))?;
        let version = u32::from_ne_bytes(header[8..12].try_into().unwrap());
        if header[..8] != MAGIC || !(1..=VERSION).contains(&version) {
            return Err(RingError::NotARecorderFile { path: path.into() });
        }
        let field32 = |o: usize| u32::from_ne_bytes(header[o..o + 4].try_into().unwrap());
        let field64 = |o: usize| u64::from_ne_bytes(header[o..o + 8].try_into().unwrap());
        let mut layout = Layout {
            chunk_records: field32(H_CHUNK_RECORDS),
            chunk_count: field32(H_CHUNK_COUNT),
            span_slots: field32(H_SPAN_SLOTS),
            names_capacity: field64(H_NAMES_CAPACITY),
            value_blocks: field32(H_VALUE_BLOCKS),
        };
        if layout.value_blocks > MAX_VALUE_BLOCKS
            || (layout.value_blocks > 0
                && field64(H_VALUES_OFFSET) != layout.values_offset() as u64)
        {
            layout.value_blocks = 0; // not a region this code wrote: read without values
        }
        let expected = layout.file_len() as u64;
        if layout.chunk_records == 0
            || flen < expected
            || field64(H_CHUNKS_OFFSET) != layout.chunks_offset() as u64
        {
            return Err(RingError::Truncated {
                path: path.into(),
                len: flen,
                expected,
            });
        }
        let len = expected as usize;
        let base = map(&file, len, path)?;
        let mut rf = RecorderFile {
            base,
            len,
            layout,
            clock: Clock::Monotonic,
            path: path.to_path_buf(),
            _file: file,
            waiting: WaitForReader::default(),
        };
        // Version 1 left the field zero: monotonic.
        rf.clock = Clock::from_u32(rf.u32_at(H_CLOCK).load(Ordering::Relaxed))
            .ok_or_else(|| RingError::NotARecorderFile { path: path.into() })?;
        Ok(rf)
    }

    /// What the records are stamped with: writers stamp with `self.clock().now()`.
    #[inline(always)]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Refreshes the header's later calibration pair (the writing process, now and then): what
    /// a reader in another boot converts counter stamps with.
    pub fn calibrate(&self) {
        if self.clock == Clock::Monotonic {
            return;
        }
        let later = TickPair::now(self.clock);
        // Only a reader in another boot reads these, when the writer is long gone: no reader
        // sees a pair half written.
        self.u64_at(H_CAL_LATER_TICKS)
            .store(later.ticks, Ordering::Relaxed);
        self.u64_at(H_CAL_LATER_NS)
            .store(later.ns, Ordering::Relaxed);
    }

    /// How to convert this file's stamps to monotonic nanoseconds: in the boot that wrote it,
    /// the line from the creation pair to a pair taken now; in another, to the last pair the
    /// writer left (or, when it left none usable, one tick a nanosecond from the creation pair).
    pub fn calibration(&self) -> Calibration {
        if self.clock == Clock::Monotonic {
            return Calibration::identity();
        }
        let pair = |ticks: usize, ns: usize| TickPair {
            ticks: self.u64_at(ticks).load(Ordering::Relaxed),
            ns: self.u64_at(ns).load(Ordering::Relaxed),
        };
        let base = pair(H_CAL_BASE_TICKS, H_CAL_BASE_NS);
        let written_in = self.u64_at(H_BOOT_ID).load(Ordering::Relaxed) as u128
            | (self.u64_at(H_BOOT_ID + 8).load(Ordering::Relaxed) as u128) << 64;
        let later = if written_in != 0 && written_in == boot_id() {
            TickPair::now(self.clock)
        } else {
            pair(H_CAL_LATER_TICKS, H_CAL_LATER_NS)
        };
        Calibration::between(self.clock, base, later).unwrap_or_else(|| {
            let one_to_one = TickPair {
                ticks: base.ticks.saturating_add(1),
                ns: base.ns.saturating_add(1),
            };
            Calibration::between(self.clock, base, one_to_one).unwrap_or(Calibration::identity())
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes every page of the mapping present and writable now (`MADV_POPULATE_WRITE`, Linux
    /// 5.14+), so writers do not take a page fault at their first record in each page. The
    /// contents are not changed (safe while writers write); the file's blocks were reserved
    /// when it was made, so this only maps them. Without kernel support it does nothing.
    pub fn populate(&self) {
        const MADV_POPULATE_WRITE: libc::c_int = 23;
        // SAFETY: base/len are our mapping; the advice only faults pages in.
        unsafe {
            libc::madvise(
                self.base as *mut libc::c_void,
                self.len,
                MADV_POPULATE_WRITE,
            )
        };
    }

    /// Whether the file is in memory (tmpfs, as `/dev/shm` is), where [`Self::populate`] costs
    /// no I/O: on a disk it would dirty every page of the file for writeback.
    pub fn in_memory(&self) -> bool {
        in_memory(&self._file)
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// `n` words of the mapping from `offset` (8-aligned, inside it), shared through atomics.
    pub(crate) fn words(&self, offset: usize, n: usize) -> &[AtomicU64] {
        assert!(offset.is_multiple_of(8) && offset + 8 * n <= self.len);
        // SAFETY: in bounds and aligned (checked above; the mapping is page-aligned).
        unsafe { std::slice::from_raw_parts(self.base.add(offset) as *const AtomicU64, n) }
    }

    pub(crate) fn u64_at(&self, offset: usize) -> &AtomicU64 {
        debug_assert!(offset.is_multiple_of(8) && offset + 8 <= self.len);
        // SAFETY: in bounds, 8-aligned (the mapping is page-aligned), shared through atomics.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    fn u32_at(&self, offset: usize) -> &AtomicU32 {
        debug_assert!(offset.is_multiple_of(4) && offset + 4 <= self.len);
        // SAFETY: as above, 4-aligned.
        unsafe { &*(self.base.add(offset) as *const AtomicU32) }
    }

    pub fn info(&self) -> FileInfo {
        let meta_len =
            (self.u32_at(H_META_LEN).load(Ordering::Acquire) as usize).min(META_CAPACITY);
        // SAFETY: inside the header.
        let meta = unsafe { std::slice::from_raw_parts(self.base.add(META_OFFSET), meta_len) };
        FileInfo {
            pid: self.u32_at(H_PID).load(Ordering::Relaxed),
            flags: self.u32_at(H_FLAGS).load(Ordering::Relaxed),
            state: self.u32_at(H_STATE).load(Ordering::Acquire),
            created: ClockPair {
                unix_ns: self.u64_at(H_CREATED_UNIX).load(Ordering::Relaxed),
                monotonic_ns: self.u64_at(H_CREATED_MONO).load(Ordering::Relaxed),
            },
            heartbeat_ns: self.u64_at(H_HEARTBEAT).load(Ordering::Relaxed),
            stopping_ns: self.u64_at(H_STOPPING).load(Ordering::Acquire),
            meta: String::from_utf8_lossy(meta).into_owned(),
        }
    }

    pub fn set_state(&self, state: u32) {
        self.u32_at(H_STATE).store(state, Ordering::Release);
    }

    pub fn heartbeat(&self, monotonic_ns: u64) {
        self.u64_at(H_HEARTBEAT)
            .store(monotonic_ns, Ordering::Relaxed);
    }

    // -- names -------------------------------------------------------------------------------

    /// Appends one entry to the names log; false when the log is full. Entries must be
    /// appended by one writer at a time (the caller serialises: the GIL, or a lock).
    pub(crate) fn append_name(&self, entry: &[u8]) -> bool {
        let len_at = self.u64_at(H_NAMES_LEN);
        let used = len_at.load(Ordering::Relaxed) as usize;
        let need = 4 + entry.len();
        if used + need > self.layout.names_capacity as usize {
            return false;
        }
        // SAFETY: [names_offset + used, + need) is inside the names region and not yet
        // published, so no reader looks at it.
        unsafe {
            let at = self.base.add(self.layout.names_offset() + used);
            std::ptr::copy_nonoverlapping((entry.len() as u32).to_ne_bytes().as_ptr(), at, 4);
            std::ptr::copy_nonoverlapping(entry.as_ptr(), at.add(4), entry.len());
        }
        len_at.store((used + need) as u64, Ordering::Release);
        true
    }

    /// How much of the names log is used, and its capacity, in bytes.
    pub fn names_usage(&self) -> (u64, u64) {
        let used = self.u64_at(H_NAMES_LEN).load(Ordering::Relaxed);
        (used, self.layout.names_capacity)
    }

    /// Counts a text (a value's summary) the writer could not keep: the names log was full.
    pub fn count_text_not_kept(&self) {
        self.u64_at(H_TEXTS_NOT_KEPT)
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Says the recording process began to stop now (`monotonic_ns`); the first say stands.
    pub fn mark_stopping(&self, monotonic_ns: u64) {
        let _ = self.u64_at(H_STOPPING).compare_exchange(
            0,
            monotonic_ns,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    /// How many texts writers could not keep for want of room in the names log.
    pub fn texts_not_kept(&self) -> u64 {
        self.u64_at(H_TEXTS_NOT_KEPT).load(Ordering::Relaxed)
    }

    /// Says what the live reader read but has not delivered (see [`H_READ_UNDELIVERED`]).
    pub fn set_read_undelivered(&self, count: u64) {
        self.u64_at(H_READ_UNDELIVERED)
            .store(count, Ordering::Release);
    }

    /// What the live reader had read but not delivered after its last pass.
    pub fn read_undelivered(&self) -> u64 {
        self.u64_at(H_READ_UNDELIVERED).load(Ordering::Acquire)
    }

    /// The published part of the names log.
    pub(crate) fn names_bytes(&self) -> &[u8] {
        let used = (self.u64_at(H_NAMES_LEN).load(Ordering::Acquire) as usize)
            .min(self.layout.names_capacity as usize);
        // SAFETY: the published prefix of the names region is never written again.
        unsafe { std::slice::from_raw_parts(self.base.add(self.layout.names_offset()), used) }
    }

    // -- the span table ----------------------------------------------------------------------

    /// Records an OpenTelemetry span (its trace and span ids) and returns its key, to be put
    /// in a SpanStart/SpanEnd record.
    pub fn add_span(&self, trace_id: u128, span_id: u64) -> u32 {
        let key = self.u64_at(H_NEXT_SPAN).fetch_add(1, Ordering::Relaxed) as u32;
        let slot =
            self.layout.spans_offset() + (key % self.layout.span_slots) as usize * SPAN_SLOT_SIZE;
        let tag = self.u64_at(slot);
        tag.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        self.u64_at(slot + 8)
            .store((trace_id >> 64) as u64, Ordering::Relaxed);
        self.u64_at(slot + 16)
            .store(trace_id as u64, Ordering::Relaxed);
        self.u64_at(slot + 24).store(span_id, Ordering::Relaxed);
        tag.store(key as u64 + 1, Ordering::Release);
        key
    }

    /// The span recorded under `key`, if its slot has not been reused since.
    pub fn span(&self, key: u32) -> Option<(u128, u64)> {
        let slot =
            self.layout.spans_offset() + (key % self.layout.span_slots) as usize * SPAN_SLOT_SIZE;
        let tag = self.u64_at(slot);
        let t1 = tag.load(Ordering::Acquire);
        let hi = self.u64_at(slot + 8).load(Ordering::Relaxed);
        let lo = self.u64_at(slot + 16).load(Ordering::Relaxed);
        let span = self.u64_at(slot + 24).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        let t2 = tag.load(Ordering::Relaxed);
        (t1 == key as u64 + 1 && t1 == t2).then_some(((hi as u128) << 64 | lo as u128, span))
    }

    // -- chunks ------------------------------------------------------------------------------

    fn chunk_offset(&self, index: u32) -> usize {
        self.layout.chunks_offset() + index as usize * self.layout.chunk_bytes()
    }

    /// A writer for a new stream (one per thread).
    pub fn writer(&self, os_tid: u64) -> ThreadWriter {
        let stream = self.u64_at(H_NEXT_STREAM).fetch_add(1, Ordering::Relaxed) + 1;
        ThreadWriter {
            stream,
            os_tid,
            clock: self.clock,
            chunk_seq: 0,
            chunk: None,
            records: std::ptr::null_mut(),
            committed: std::ptr::null(),
            index: 0,
            capacity: 0,
            dropped: 0,
            wait_for_reader: self.waiting.enabled.load(Ordering::Relaxed),
        }
    }

    /// Makes the writers created from now on wait for this process's live reader when the
    /// chunk they need next holds records it has not read (instead of overwriting them), and
    /// calls `wake_reader` while they wait. For a recording that must lose nothing; the reader
    /// must read (with a [`Cursor`]) for as long as writers write.
    pub fn set_wait_for_reader(&self, wake_reader: Box<dyn Fn() + Send + Sync>) {
        let _ = self.waiting.wake_reader.set(wake_reader);
        self.waiting.enabled.store(true, Ordering::Relaxed);
    }

    /// How many writers are waiting for the reader now (the reader reads again at once).
    pub fn writers_waiting(&self) -> u32 {
        self.waiting.writers.load(Ordering::Acquire)
    }

    /// What the writers' waits cost so far.
    pub fn wait_stats(&self) -> WaitStats {
        WaitStats {
            waits: self.waiting.waits.load(Ordering::Relaxed),
            waited_ns: self.waiting.waited_ns.load(Ordering::Relaxed),
            given_up: self.waiting.given_up.load(Ordering::Relaxed),
        }
    }

    /// The records no live reader has read, in no particular order, stamps unconverted (left
    /// as they are: nothing is marked read). What a recording left after its last read.
    pub fn unread_records(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for head in self.chunk_heads() {
            let read = self
                .u64_at(self.chunk_offset(head.index) + C_READ)
                .load(Ordering::Acquire);
            let from = if read >> 32 == head.generation as u32 as u64 {
                read as u32
            } else {
                0
            };
            self.copy_chunk(&head, from, &Calibration::identity(), &mut out);
        }
        out
    }

    /// Whether the live reader has read every record of the chunk at `at` (or it never held any).
    fn chunk_read(&self, at: usize) -> bool {
        let generation = self.u64_at(at + C_GENERATION).load(Ordering::Acquire);
        if generation == 0 {
            return true;
        }
        let committed = self.u32_at(at + C_COMMITTED).load(Ordering::Acquire) as u64;
        let read = self.u64_at(at + C_READ).load(Ordering::Acquire);
        read == (generation as u32 as u64) << 32 | committed
    }

    /// Waits until the live reader has read the chunk at `at` (which this writer holds, so no
    /// other writer adds to it): spinning a little, then yielding, then sleeping, waking the
    /// reader now and then. False when it gave up (see [`READER_WAIT_LIMIT`]).
    #[cold]
    #[inline(never)]
    fn wait_for_reader(&self, at: usize) -> bool {
        let waiting = &self.waiting;
        waiting.writers.fetch_add(1, Ordering::AcqRel);
        let started = Instant::now();
        let mut rounds = 0u64;
        let read = loop {
            if self.chunk_read(at) {
                break true;
            }
            if rounds.is_multiple_of(64)
                && let Some(wake) = waiting.wake_reader.get()
            {
                wake();
            }
            rounds += 1;
            let waited = started.elapsed();
            if waited > READER_WAIT_LIMIT {
                waiting.given_up.fetch_add(1, Ordering::Relaxed);
                break false;
            }
            if waited < Duration::from_micros(20) {
                std::hint::spin_loop();
            } else if waited < Duration::from_millis(2) {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_micros(100));
            }
        };
        waiting.writers.fetch_sub(1, Ordering::AcqRel);
        waiting.waits.fetch_add(1, Ordering::Relaxed);
        waiting
            .waited_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        read
    }

    /// Takes the chunk allocated longest ago that no thread is writing, for `w`. Out of line:
    /// once every chunk's worth of records, and the writer's path stays short without it.
    #[cold]
    #[inline(never)]
    fn claim_chunk(&self, w: &mut ThreadWriter) -> bool {
        // The records of the chunk left count in the stream's sequence from here on.
        w.chunk_seq += w.index as u64;
        w.index = 0;
        w.capacity = 0;
        if let Some(old) = w.chunk.take() {
            self.u32_at(self.chunk_offset(old) + C_ACTIVE)
                .store(0, Ordering::Release);
        }
        let count = self.layout.chunk_count as u64;
        for _ in 0..count {
            let n = self.u64_at(H_NEXT_CHUNK).fetch_add(1, Ordering::Relaxed);
            let index = (n % count) as u32;
            let at = self.chunk_offset(index);
            if self
                .u32_at(at + C_ACTIVE)
                .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue; // another thread is writing it
            }
            if w.wait_for_reader && !self.chunk_read(at) {
                self.wait_for_reader(at);
            }
            let generation = self.u64_at(at + C_GENERATION);
            generation.store(2 * n + 1, Ordering::Relaxed);
            fence(Ordering::Release);
            self.u64_at(at + C_STREAM)
                .store(w.stream, Ordering::Relaxed);
            self.u64_at(at + C_TID).store(w.os_tid, Ordering::Relaxed);
            self.u64_at(at + C_FIRST_SEQ)
                .store(w.chunk_seq, Ordering::Relaxed);
            self.u32_at(at + C_COMMITTED).store(0, Ordering::Relaxed);
            self.u64_at(at + C_READ)
                .store(((2 * n + 2) as u32 as u64) << 32, Ordering::Relaxed);
            generation.store(2 * n + 2, Ordering::Release);
            w.chunk = Some(index);
            // SAFETY: the records of chunk `index`, inside the mapping.
            w.records = unsafe { self.base.add(at + CHUNK_HEADER_SIZE) } as *mut AtomicU64;
            w.committed = self.u32_at(at + C_COMMITTED);
            w.index = 0;
            w.capacity = self.layout.chunk_records;
            return true;
        }
        w.records = std::ptr::null_mut();
        w.capacity = 0;
        false
    }

    /// Moves `w` to a new chunk now, leaving the rest of its chunk unused (the stream's
    /// sequence numbers stay contiguous: no record is lost). A writer that must begin a chunk
    /// with records of its own (the BEAM tracer's process header, so a window starting at this
    /// chunk knows whose records follow) calls it when fewer than that many fit. False when
    /// every chunk is being written by another thread.
    pub fn start_chunk(&self, w: &mut ThreadWriter) -> bool {
        self.claim_chunk(w)
    }

    /// Gives up `w`'s chunk (the thread ended); its records stay until overwritten.
    pub fn release(&self, w: &mut ThreadWriter) {
        if let Some(old) = w.chunk.take() {
            self.u32_at(self.chunk_offset(old) + C_ACTIVE)
                .store(0, Ordering::Release);
        }
        w.records = std::ptr::null_mut();
        w.chunk_seq += w.index as u64;
        w.capacity = 0;
        w.index = 0;
    }

    /// Writes one record for `w`.
    #[inline(always)]
    pub fn push(&self, w: &mut ThreadWriter, ts: u64, meta: u64) {
        if w.index == w.capacity && !self.claim_chunk(w) {
            w.dropped += 1;
            w.chunk_seq += 1;
            return;
        }
        w.append(ts, meta);
    }

    /// Writes an event's records for `w`, stamped `ts`: committed at once when the chunk has
    /// room for them all (a reader sees all or none of them), else one at a time.
    #[inline(always)]
    pub fn push_all(&self, w: &mut ThreadWriter, ts: u64, metas: &[u64]) {
        if w.room() as usize >= metas.len() {
            w.append_all(ts, metas);
        } else {
            metas.iter().for_each(|&meta| self.push(w, ts, meta));
        }
    }

    /// A snapshot of every chunk's header that holds records, oldest first per stream.
    fn chunk_heads(&self) -> Vec<ChunkHead> {
        let mut heads = Vec::new();
        for index in 0..self.layout.chunk_count {
            let at = self.chunk_offset(index);
            let generation = self.u64_at(at + C_GENERATION).load(Ordering::Acquire);
            if generation == 0 || !generation.is_multiple_of(2) {
                continue;
            }
            let head = ChunkHead {
                index,
                generation,
                stream: self.u64_at(at + C_STREAM).load(Ordering::Relaxed),
                tid: self.u64_at(at + C_TID).load(Ordering::Relaxed),
                first_seq: self.u64_at(at + C_FIRST_SEQ).load(Ordering::Relaxed),
            };
            fence(Ordering::Acquire);
            if self.u64_at(at + C_GENERATION).load(Ordering::Relaxed) == generation {
                heads.push(head);
            }
        }
        heads.sort_by_key(|h| (h.stream, h.first_seq));
        heads
    }

    /// Reads the records of `head` from record `from` on, appending them to `out`, and marks
    /// them read; false when the chunk was taken by another writer meanwhile (what was read is
    /// removed again).
    fn read_chunk(
        &self,
        head: &ChunkHead,
        from: u32,
        calibration: &Calibration,
        out: &mut Vec<Event>,
    ) -> bool {
        let Some(committed) = self.copy_chunk(head, from, calibration, out) else {
            return false;
        };
        // Read up to `committed`: a writer waiting for this chunk may take it now. (A mark
        // stored after the chunk was taken names the old generation, so it frees nothing.)
        self.u64_at(self.chunk_offset(head.index) + C_READ).store(
            (head.generation as u32 as u64) << 32 | committed as u64,
            Ordering::Release,
        );
        true
    }

    /// [`Self::read_chunk`] without marking anything read: the records copied end at the
    /// chunk's committed count, returned (None when the chunk was taken meanwhile).
    fn copy_chunk(
        &self,
        head: &ChunkHead,
        from: u32,
        calibration: &Calibration,
        out: &mut Vec<Event>,
    ) -> Option<u32> {
        let at = self.chunk_offset(head.index);
        let generation = self.u64_at(at + C_GENERATION);
        if generation.load(Ordering::Acquire) != head.generation {
            return None;
        }
        let committed = self
            .u32_at(at + C_COMMITTED)
            .load(Ordering::Acquire)
            .min(self.layout.chunk_records);
        let before = out.len();
        let from = from.min(committed);
        out.reserve((committed - from) as usize);
        let records = at + CHUNK_HEADER_SIZE + from as usize * RECORD_SIZE;
        let count = (committed - from) as usize;
        // SAFETY: records from..committed of this chunk, inside the mapping, 8-aligned; read
        // as atomics (the writer may be writing the chunk's later records meanwhile).
        let words = unsafe {
            std::slice::from_raw_parts(self.base.add(records) as *const AtomicU64, 2 * count)
        };
        // One loop per clock, so the monotonic one does no conversion at all.
        if calibration.is_identity() {
            decode_records(words, |stamp| stamp, out);
        } else {
            decode_records(words, |stamp| calibration.to_ns(stamp), out);
        }
        fence(Ordering::Acquire);
        if generation.load(Ordering::Relaxed) != head.generation {
            out.truncate(before);
            return None;
        }
        Some(committed)
    }
}

/// Decodes `words` (stamp, meta pairs) into `out`, stamps converted by `convert`.
#[inline(always)]
fn decode_records(words: &[AtomicU64], convert: impl Fn(u64) -> u64, out: &mut Vec<Event>) {
    for pair in words.chunks_exact(2) {
        let stamp = pair[0].load(Ordering::Relaxed);
        if let Some(event) = unpack(convert(stamp), pair[1].load(Ordering::Relaxed)) {
            out.push(event);
        }
    }
}

pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[derive(Debug, Clone, Copy)]
struct ChunkHead {
    index: u32,
    generation: u64,
    stream: u64,
    tid: u64,
    first_seq: u64,
}

/// One thread's writing position. Not shared: each thread owns its writer.
pub struct ThreadWriter {
    pub stream: u64,
    pub os_tid: u64,
    /// The file's clock, kept here so a record's stamp needs no look into the file.
    clock: Clock,
    /// The sequence number of the current chunk's first record (the stream's count of records
    /// before it, dropped ones included); a record's own is this plus its index.
    chunk_seq: u64,
    chunk: Option<u32>,
    records: *mut AtomicU64,
    committed: *const AtomicU32,
    index: u32,
    capacity: u32,
    /// Records dropped because every chunk was being written by another thread.
    pub dropped: u64,
    /// Whether this writer waits for the reader rather than overwrite unread records.
    wait_for_reader: bool,
}

// SAFETY: a ThreadWriter is moved to the thread that owns it; its pointers point into a
// mapping that outlives it (the caller keeps the RecorderFile alive).
unsafe impl Send for ThreadWriter {}

impl ThreadWriter {
    /// How many records this stream has written (its next sequence number).
    pub fn seq(&self) -> u64 {
        self.chunk_seq + self.index as u64
    }

    /// How many more records fit in the current chunk (0: the next push starts a new one).
    #[inline(always)]
    pub fn room(&self) -> u32 {
        self.capacity - self.index
    }

    /// The sequence number of the current chunk's first record: it changes when the writer
    /// moves to a new chunk.
    #[inline(always)]
    pub fn chunk_start(&self) -> u64 {
        self.chunk_seq
    }

    /// What this writer's records are stamped with: stamp with `w.clock().now()`.
    #[inline(always)]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Writes one record stamped now when the clock is the counter and the chunk has room: a
    /// writer's common case, with no call, so a caller's path stays a leaf. False, with nothing
    /// written, otherwise: then [`RecorderFile::push`] (which claims a chunk).
    #[inline(always)]
    pub fn push_if_room(&mut self, meta: u64) -> bool {
        if self.clock != Clock::Tsc || self.index == self.capacity {
            return false;
        }
        self.append(crate::clock::tsc(), meta);
        true
    }

    /// Appends records to the current chunk, which has room for them, and commits them once.
    #[inline(always)]
    fn append_all(&mut self, ts: u64, metas: &[u64]) {
        let index = self.index;
        // SAFETY: index + metas.len() <= capacity (the caller's check), records points at this
        // writer's chunk.
        unsafe {
            let mut rec = self.records.add(index as usize * 2);
            for &meta in metas {
                (*rec).store(ts, Ordering::Relaxed);
                (*rec.add(1)).store(meta, Ordering::Relaxed);
                rec = rec.add(2);
            }
            (*self.committed).store(index + metas.len() as u32, Ordering::Release);
        }
        self.index = index + metas.len() as u32;
    }

    /// Appends a record to the current chunk, which has room (`index < capacity`).
    #[inline(always)]
    fn append(&mut self, ts: u64, meta: u64) {
        // SAFETY: index < capacity (the callers' check), records points at this writer's
        // chunk.
        // The index is read once: the stores through `records` could alias it, for all the
        // compiler knows, and would make it read again.
        let index = self.index;
        unsafe {
            let rec = self.records.add(index as usize * 2);
            (*rec).store(ts, Ordering::Relaxed);
            (*rec.add(1)).store(meta, Ordering::Relaxed);
            (*self.committed).store(index + 1, Ordering::Release);
        }
        self.index = index + 1;
    }
}

/// Records of one stream read in one pass, in order: `lost` records were overwritten just
/// before `events[0]` (a stream with a gap in the middle comes as two segments).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamEvents {
    pub stream: u64,
    pub tid: u64,
    /// The sequence number of `events[0]`.
    pub first_seq: u64,
    pub events: Vec<Event>,
    /// Records that were overwritten before this reader got to them.
    pub lost: u64,
}

/// A reader that follows every stream, returning what is new at each call and counting what
/// it missed. Used by the live drainer; `read_window` is the one-shot form.
#[derive(Debug, Default)]
pub struct Cursor {
    next_seq: std::collections::HashMap<u64, u64>,
    /// How stamps become nanoseconds for this reader: replaced only by one made over at least
    /// twice the time, so conversions stay steady between reads (a call that began in one
    /// read and ended in the next is measured with one rate) and grow more exact as the
    /// recording goes on.
    calibration: Option<Calibration>,
}

impl Cursor {
    pub fn new() -> Cursor {
        Cursor::default()
    }

    /// The records written since the last call, per stream (streams with nothing new left out).
    /// Records of a stream in `only` (when given) are the only ones read.
    pub fn read(&mut self, file: &RecorderFile, only: Option<u64>) -> Vec<StreamEvents> {
        let mut out = Vec::new();
        self.read_into(file, only, &mut out);
        out
    }

    /// [`Cursor::read`] into `out`, whose buffers (from the last pass) are reused: a reader
    /// that passes the same `out` each time allocates nothing once they are large enough (a
    /// pass's buffers are large: fresh ones would be fresh pages, faulted in on every pass).
    pub fn read_into(
        &mut self,
        file: &RecorderFile,
        only: Option<u64>,
        out: &mut Vec<StreamEvents>,
    ) {
        let mut spare: Vec<Vec<Event>> = out
            .drain(..)
            .map(|mut s| {
                s.events.clear();
                s.events
            })
            .collect();
        let fresh = file.calibration();
        let calibration = *self.calibration.insert(match self.calibration {
            Some(held) if fresh.span_ns() < held.span_ns().saturating_mul(2) => held,
            _ => fresh,
        });
        let heads = file.chunk_heads();
        for head in heads {
            if only.is_some_and(|s| s != head.stream) {
                continue;
            }
            let next = self.next_seq.entry(head.stream).or_insert(0);
            let chunk_end = head.first_seq + file.layout.chunk_records as u64;
            if chunk_end <= *next {
                continue; // read already
            }
            // A gap splits the stream: the records after it start a new segment, so a reader
            // knows where the calls it missed were.
            let gap = head.first_seq.saturating_sub(*next);
            let segment_open = out
                .last()
                .is_some_and(|s| s.stream == head.stream && (gap == 0 || s.events.is_empty()));
            if !segment_open {
                out.push(StreamEvents {
                    stream: head.stream,
                    tid: head.tid,
                    first_seq: (*next).max(head.first_seq),
                    events: spare.pop().unwrap_or_default(),
                    lost: 0,
                });
            }
            let current = out.last_mut().unwrap();
            if gap > 0 {
                current.lost += gap;
                current.first_seq = head.first_seq;
                *next = head.first_seq;
            }
            let from = (*next - head.first_seq) as u32;
            let before = current.events.len();
            if file.read_chunk(&head, from, &calibration, &mut current.events) {
                *next += (current.events.len() - before) as u64;
            }
            // A chunk taken over while read: its records are gone; the gap shows as lost at
            // the next chunk of this stream.
        }
        out.retain(|s| !s.events.is_empty() || s.lost > 0);
    }
}

/// Everything still in the file, per stream (the flight recorder's window, or what a crashed
/// process left).
pub fn read_window(file: &RecorderFile) -> Vec<StreamEvents> {
    Cursor::new().read(file, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(dir: &Path, name: &str) -> RecorderFile {
        RecorderFile::create(&dir.join(name), Layout::new(16, 4, 8, 4096), 1, 0, "{}").unwrap()
    }

    fn write(file: &RecorderFile, w: &mut ThreadWriter, n: u64) {
        for _ in 0..n {
            let seq = w.seq();
            file.push(w, 1000 + seq, pack_meta(EventKind::Call, seq as u32, 0));
        }
    }

    fn seqs(events: &[Event]) -> Vec<u64> {
        events.iter().map(|e| e.ts - 1000).collect()
    }

    #[test]
    fn records_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(42);
        file.push(&mut w, 5, pack_meta(EventKind::Raise, 7, 0xAB_CDEF));
        file.push(&mut w, 6, pack_meta(EventKind::Unwind, 7, 0));
        let window = read_window(&file);
        assert_eq!(window.len(), 1);
        assert_eq!(
            (window[0].stream, window[0].tid, window[0].lost),
            (w.stream, 42, 0)
        );
        assert_eq!(
            window[0].events,
            vec![
                Event {
                    ts: 5,
                    kind: EventKind::Raise,
                    code: 7,
                    aux: 0xAB_CDEF
                },
                Event {
                    ts: 6,
                    kind: EventKind::Unwind,
                    code: 7,
                    aux: 0
                },
            ]
        );
    }

    #[test]
    fn wrap_around_keeps_the_newest_records_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(1);
        // 4 chunks of 16: after 197 records the chunks hold 144..160, 160..176, 176..192 and
        // the active one 192..197; everything before was overwritten.
        write(&file, &mut w, 197);
        let window = read_window(&file);
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].lost, 144);
        assert_eq!(window[0].first_seq, 144);
        assert_eq!(seqs(&window[0].events), (144..197).collect::<Vec<_>>());
    }

    #[test]
    fn a_reader_that_falls_behind_sees_the_overrun_by_sequence_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(1);
        let mut cursor = Cursor::new();
        write(&file, &mut w, 10);
        let first = cursor.read(&file, None);
        assert_eq!(
            (first[0].lost, seqs(&first[0].events)),
            (0, (0..10).collect())
        );
        // 100 more: 110 in all, the file holds 48..110, so 10..48 were overwritten unread.
        write(&file, &mut w, 100);
        let second = cursor.read(&file, None);
        assert_eq!(second[0].lost, 38);
        assert_eq!(second[0].first_seq, 48);
        assert_eq!(seqs(&second[0].events), (48..110).collect::<Vec<_>>());
        // Nothing new: nothing returned.
        assert!(cursor.read(&file, None).is_empty());
        write(&file, &mut w, 3);
        let third = cursor.read(&file, None);
        assert_eq!(
            (third[0].lost, seqs(&third[0].events)),
            (0, vec![110, 111, 112])
        );
    }

    #[test]
    fn a_chunk_started_early_keeps_the_sequence_whole_and_the_window_starts_at_a_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(1);
        write(&file, &mut w, 5);
        assert_eq!(w.room(), 11);
        let first = w.chunk_start();
        assert!(file.start_chunk(&mut w));
        assert_eq!((w.room(), w.seq()), (16, 5));
        assert_ne!(w.chunk_start(), first);
        write(&file, &mut w, 3);
        let window = read_window(&file);
        assert_eq!(window.len(), 1, "no gap: one segment");
        assert_eq!(
            (window[0].lost, seqs(&window[0].events)),
            (0, (0..8).collect())
        );
        // Overwritten: the window begins at the first record of a chunk, which a writer that
        // starts its chunks with a header of its own can rely on.
        for _ in 0..3 {
            assert!(file.start_chunk(&mut w));
            write(&file, &mut w, 2);
        }
        let window = read_window(&file);
        assert_eq!(window[0].first_seq, w.seq() - 6 - 3);
    }

    #[test]
    fn threads_have_their_own_streams_and_share_the_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut a = file.writer(10);
        let mut b = file.writer(11);
        write(&file, &mut a, 20);
        write(&file, &mut b, 5);
        write(&file, &mut a, 3);
        let window = read_window(&file);
        assert_eq!(window.len(), 2);
        assert_eq!(
            (window[0].tid, seqs(&window[0].events)),
            (10, (0..23).collect())
        );
        assert_eq!(
            (window[1].tid, seqs(&window[1].events)),
            (11, (0..5).collect())
        );
        // The quiet thread's records stay until they are the oldest: a writes 40 more (the
        // file has 4 chunks: a's two, b's one, one free), taking the free chunk and then its
        // own oldest ones, never b's active chunk.
        write(&file, &mut a, 40);
        let window = read_window(&file);
        assert_eq!(seqs(&window[1].events), (0..5).collect::<Vec<_>>());
        assert_eq!(window[0].events.last().map(|e| e.ts - 1000), Some(62));
    }

    #[test]
    fn span_table_and_names_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let k1 = file.add_span(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, 0xfeed);
        assert_eq!(
            file.span(k1),
            Some((0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10, 0xfeed))
        );
        // 8 slots: the 9th span reuses the first slot, and the old key no longer resolves.
        for i in 0..8 {
            file.add_span(i, i as u64 + 1);
        }
        assert_eq!(file.span(k1), None);
        let info = crate::names::CodeInfo {
            qualname: "Store.save".into(),
            module: "app.store".into(),
            file: "/src/app/store.py".into(),
            line: 12,
        };
        assert!(crate::names::write_code(&file, 3, &info));
        assert!(crate::names::write_exception(
            &file,
            1,
            "builtins.ValueError"
        ));
        assert!(crate::names::write_thread(&file, 2, "worker-1"));
        assert!(crate::names::write_hot_function(&file, 3, 10_000, 100));
        let names = crate::names::Names::read(&file);
        assert_eq!(names.codes[&3], info);
        assert_eq!(names.exceptions[&1], "builtins.ValueError");
        assert_eq!(names.threads[&2], "worker-1");
        let hot = crate::names::HotFunction {
            calls: 10_000,
            window_ms: 100,
        };
        assert_eq!(names.hot_functions[&3], hot);
    }

    #[test]
    fn a_reader_concurrent_with_the_writer_never_sees_a_torn_or_misordered_record() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::sync::Arc::new(
            RecorderFile::create(
                &dir.path().join("r"),
                Layout::new(64, 8, 8, 4096),
                1,
                0,
                "{}",
            )
            .unwrap(),
        );
        let total = 400_000u64;
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut w = file.writer(1);
                for seq in 0..total {
                    // The code id repeats the low bits of the timestamp: a torn record breaks it.
                    file.push(
                        &mut w,
                        seq,
                        pack_meta(EventKind::Call, seq as u32, (seq & 0xFFFF) as u32),
                    );
                }
            })
        };
        let mut cursor = Cursor::new();
        let (mut seen, mut lost, mut next) = (0u64, 0u64, 0u64);
        loop {
            let done = writer.is_finished();
            for s in cursor.read(&file, None) {
                lost += s.lost;
                next += s.lost;
                for e in s.events {
                    assert_eq!(e.ts, next, "records in order, none torn");
                    assert_eq!(
                        (e.code as u64, e.aux as u64),
                        (e.ts & 0xFFFF_FFFF, e.ts & 0xFFFF)
                    );
                    next += 1;
                    seen += 1;
                }
            }
            if done {
                break;
            }
        }
        writer.join().unwrap();
        for s in cursor.read(&file, None) {
            lost += s.lost;
            seen += s.events.len() as u64;
        }
        assert_eq!(seen + lost, total);
    }

    #[test]
    fn a_writer_that_waits_for_the_reader_loses_nothing_however_slow_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::sync::Arc::new(
            RecorderFile::create(
                &dir.path().join("r"),
                Layout::new(64, 4, 8, 4096),
                1,
                0,
                "{}",
            )
            .unwrap(),
        );
        let wakes = std::sync::Arc::new(AtomicU64::new(0));
        let counter = wakes.clone();
        file.set_wait_for_reader(Box::new(move || {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        // 256 records fit; 50,000 are written while the reader sleeps between reads.
        let total = 50_000u64;
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut w = file.writer(1);
                for seq in 0..total {
                    file.push(&mut w, seq, pack_meta(EventKind::Call, seq as u32, 0));
                }
                file.release(&mut w);
            })
        };
        let mut cursor = Cursor::new();
        let (mut next, mut lost) = (0u64, 0u64);
        loop {
            let done = writer.is_finished();
            for s in cursor.read(&file, None) {
                lost += s.lost;
                for e in s.events {
                    assert_eq!(e.ts, next, "every record, in order");
                    next += 1;
                }
            }
            if done && next + lost >= total {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        writer.join().unwrap();
        assert_eq!((next, lost), (total, 0));
        let stats = file.wait_stats();
        assert!(stats.waits > 0, "the writer had to wait: {stats:?}");
        assert_eq!(stats.given_up, 0);
        assert!(wakes.load(Ordering::Relaxed) > 0, "and woke the reader");
        // A file without waiting (the flight recorder) still overwrites: covered by
        // a_reader_that_falls_behind_sees_the_overrun_by_sequence_numbers.
    }

    #[test]
    fn a_reader_recovers_the_window_after_the_writer_process_died() {
        if let Ok(path) = std::env::var("DEVTRACE_RING_TEST_CHILD") {
            // The child: write, then die without any clean-up.
            let file = RecorderFile::create(
                Path::new(&path),
                Layout::new(16, 4, 8, 4096),
                std::process::id(),
                0,
                r#"{"who":"child"}"#,
            )
            .unwrap();
            crate::names::write_code(
                &file,
                1,
                &crate::names::CodeInfo {
                    qualname: "work".into(),
                    module: "m".into(),
                    file: "m.py".into(),
                    line: 1,
                },
            );
            let mut w = file.writer(77);
            write(&file, &mut w, 70);
            std::process::abort();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("child.ring");
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ring::tests::a_reader_recovers_the_window_after_the_writer_process_died",
                "--nocapture",
            ])
            .env("DEVTRACE_RING_TEST_CHILD", &path)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child aborted");
        let file = RecorderFile::open(&path).unwrap();
        let info = file.info();
        assert_eq!(
            (info.state, info.meta.as_str()),
            (STATE_RUNNING, r#"{"who":"child"}"#)
        );
        assert_ne!(info.pid, std::process::id());
        let window = read_window(&file);
        assert_eq!(window.len(), 1);
        assert_eq!(window[0].tid, 77);
        // 70 records in 4 chunks of 16: 16..70 survive (the first chunk was reused).
        assert_eq!(seqs(&window[0].events), (16..70).collect::<Vec<_>>());
        assert_eq!(window[0].lost, 16);
        assert_eq!(crate::names::Names::read(&file).codes[&1].qualname, "work");
    }

    #[test]
    fn files_that_are_not_recorder_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        let err = RecorderFile::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("junk") && err.contains("not a devtrace recorder file"),
            "{err}"
        );
        assert!(Layout::for_size(64 << 20).unwrap().record_capacity() > 3_500_000);
        assert_eq!(
            Layout::for_size(1 << 20).unwrap_err().to_string(),
            "recorder size 1 MiB is too small: at least 2 MiB are needed for the header, names, span table and one chunk per thread"
        );
    }

    /// A file stamped with the time-stamp counter, whatever this machine's kernel keeps time
    /// with (what is tested is the conversion, which needs only a counter of constant rate for
    /// the test's few milliseconds).
    fn counter_file(dir: &Path) -> RecorderFile {
        RecorderFile::create_with_clock(
            &dir.join("tsc"),
            Layout::new(16, 4, 8, 4096),
            1,
            0,
            "{}",
            Clock::Tsc,
        )
        .unwrap()
    }

    #[test]
    fn a_writer_appends_on_its_own_until_its_chunk_is_full_then_push_claims_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let file = counter_file(dir.path());
        let mut w = file.writer(7);
        // No chunk yet: nothing appended until push claims one.
        assert!(!w.push_if_room(pack_meta(EventKind::Call, 1000, 0)));
        file.push(&mut w, Clock::Tsc.now(), pack_meta(EventKind::Call, 0, 0));
        let mut appended = 0;
        while w.push_if_room(pack_meta(EventKind::Call, appended + 1, 0)) {
            appended += 1;
        }
        assert_eq!(appended, 15, "a chunk holds 16 records, the first pushed");
        file.push(
            &mut w,
            Clock::Tsc.now(),
            pack_meta(EventKind::Return, 99, 0),
        );
        assert!(w.push_if_room(pack_meta(EventKind::Return, 100, 0)));
        let window = read_window(&file);
        let events = &window[0].events;
        let codes: Vec<u32> = events.iter().map(|e| e.code).collect();
        assert_eq!(codes, (0..16).chain([99, 100]).collect::<Vec<u32>>());
        assert!(
            events.windows(2).all(|p| p[0].ts <= p[1].ts),
            "stamped in order"
        );
        assert_eq!((window[0].lost, w.dropped), (0, 0));
    }

    #[test]
    fn an_events_records_go_in_together_and_across_a_chunk_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(3);
        let records = |codes: std::ops::Range<u32>| -> Vec<u64> {
            codes.map(|c| pack_meta(EventKind::Call, c, 0)).collect()
        };
        // No chunk yet: pushed one by one, the first claiming a chunk of 16.
        file.push_all(&mut w, 10, &records(0..3));
        assert_eq!(w.room(), 13);
        // Room for them all: appended together.
        file.push_all(&mut w, 20, &records(3..14));
        assert_eq!(w.room(), 2);
        // Room for two of four: the other two go into the next chunk, none is lost.
        file.push_all(&mut w, 30, &records(14..18));
        assert_eq!(w.room(), 14);
        let window = read_window(&file);
        let events = &window[0].events;
        let codes: Vec<u32> = events.iter().map(|e| e.code).collect();
        assert_eq!(codes, (0..18).collect::<Vec<u32>>());
        let stamps: Vec<u64> = events.iter().map(|e| e.ts).collect();
        assert_eq!(stamps, [[10; 3].as_slice(), &[20; 11], &[30; 4]].concat());
        assert_eq!((window[0].lost, w.dropped), (0, 0));
    }

    #[test]
    fn a_writer_whose_clock_is_not_the_counter_never_appends_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "r");
        let mut w = file.writer(1);
        file.push(&mut w, 5, pack_meta(EventKind::Call, 1, 0));
        assert!(!w.push_if_room(pack_meta(EventKind::Call, 2, 0)));
        let codes: Vec<u32> = read_window(&file)[0]
            .events
            .iter()
            .map(|e| e.code)
            .collect();
        assert_eq!(codes, vec![1]);
    }

    #[test]
    fn counter_stamps_read_back_as_monotonic_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let file = counter_file(dir.path());
        let mut w = file.writer(1);
        let before = crate::clock::monotonic_ns();
        file.push(&mut w, file.clock().now(), pack_meta(EventKind::Call, 1, 0));
        std::thread::sleep(std::time::Duration::from_millis(30));
        file.push(
            &mut w,
            file.clock().now(),
            pack_meta(EventKind::Return, 1, 0),
        );
        let after = crate::clock::monotonic_ns();
        let events = &read_window(&file)[0].events;
        let (start, end) = (events[0].ts, events[1].ts);
        // Within the monotonic readings around them (a few µs of slack for the pairing), and
        // 30 ms apart (a sleep may last a little longer, never shorter).
        assert!(
            start + 5_000 >= before && end <= after + 5_000,
            "{before} {start} {end} {after}"
        );
        let slept = end - start;
        assert!((30_000_000..60_000_000).contains(&slept), "{slept} ns");
        // A second open of the same file (another reader, the same boot) agrees to the µs.
        let again = RecorderFile::open(file.path()).unwrap();
        assert_eq!(again.clock(), file.clock());
        let events_again = &read_window(&again)[0].events;
        assert!(events_again[0].ts.abs_diff(start) < 1_000);
    }

    #[test]
    fn a_file_from_another_boot_converts_with_the_pair_its_writer_left() {
        let dir = tempfile::tempdir().unwrap();
        let file = counter_file(dir.path());
        // As if written in another boot, with a rate of exactly 3 ticks a nanosecond.
        let base = TickPair {
            ticks: 3_000_000,
            ns: 1_000_000,
        };
        file.u64_at(H_CAL_BASE_TICKS)
            .store(base.ticks, Ordering::Relaxed);
        file.u64_at(H_CAL_BASE_NS).store(base.ns, Ordering::Relaxed);
        file.u64_at(H_CAL_LATER_TICKS)
            .store(base.ticks + 3_000_000_000, Ordering::Relaxed);
        file.u64_at(H_CAL_LATER_NS)
            .store(base.ns + 1_000_000_000, Ordering::Relaxed);
        file.u64_at(H_BOOT_ID)
            .store(boot_id() as u64 ^ 1, Ordering::Relaxed);
        let mut w = file.writer(1);
        file.push(&mut w, base.ticks + 3_000, pack_meta(EventKind::Call, 1, 0));
        file.push(
            &mut w,
            base.ticks + 6_000_000_000,
            pack_meta(EventKind::Return, 1, 0),
        );
        let events = &read_window(&file)[0].events;
        assert_eq!(
            (events[0].ts, events[1].ts),
            (base.ns + 1_000, base.ns + 2_000_000_000)
        );
        // No later pair left (the writer died before its first refresh): one tick a ns.
        file.u64_at(H_CAL_LATER_TICKS).store(0, Ordering::Relaxed);
        let events = &read_window(&file)[0].events;
        assert_eq!(events[0].ts, base.ns + 3_000);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_file_in_dev_shm_is_in_memory_and_one_in_the_checkout_is_not() {
        let shm = tempfile::tempdir_in("/dev/shm").unwrap();
        let file = small(shm.path(), "in-memory");
        assert!(file.in_memory());
        assert!(free_bytes_in(shm.path()) > 0);
        // The checkout is on a disk (CI clones it there).
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        assert!(!small(disk.path(), "on-disk").in_memory());
        assert_eq!(free_bytes_in(&disk.path().join("missing")), 0);
    }

    #[test]
    fn a_version_1_file_reads_as_monotonic_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let file = small(dir.path(), "v1");
        // Version 1 had no clock fields: zeros, and the version 1.
        file.u32_at(H_VERSION).store(1, Ordering::Relaxed);
        let mut w = file.writer(1);
        file.push(&mut w, 42, pack_meta(EventKind::Call, 1, 0));
        let reopened = RecorderFile::open(file.path()).unwrap();
        assert_eq!(reopened.clock(), Clock::Monotonic);
        assert_eq!(read_window(&reopened)[0].events[0].ts, 42);
        // A clock this code does not know is refused, not misread.
        file.u32_at(H_CLOCK).store(9, Ordering::Relaxed);
        assert!(RecorderFile::open(file.path()).is_err());
    }

    #[test]
    fn a_cursor_keeps_its_rate_until_one_made_over_twice_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let file = counter_file(dir.path());
        let mut cursor = Cursor::new();
        // 20 ms after creation, then at once again: the second is made over less than twice
        // the time of the first (unless this thread stalls for 20 ms between the two reads).
        std::thread::sleep(std::time::Duration::from_millis(20));
        cursor.read(&file, None);
        let first = cursor.calibration.unwrap();
        cursor.read(&file, None);
        assert_eq!(
            cursor.calibration.unwrap(),
            first,
            "kept: not twice the time yet"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
        cursor.read(&file, None);
        let later = cursor.calibration.unwrap();
        assert_ne!(
            later, first,
            "replaced by one made over more than twice the time"
        );
        assert!(later.span_ns() >= 2 * first.span_ns());
    }
}
