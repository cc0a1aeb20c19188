//! From calls to spans: replays one thread's records (calls, returns, yields, exceptions and the
//! OpenTelemetry spans marked among them) as a stack, and keeps what a reader of the trace needs.
//!
//! - A call that lasts at least the threshold becomes a span, child of the call or the
//!   OpenTelemetry span it ran in (the stream's root context when there is neither).
//! - A shorter call leaves no span: it is counted on its parent (the kept call or the
//!   OpenTelemetry span) as a per-function aggregate: calls, total and self time. What a
//!   dropped call had aggregated itself is merged up, so self times add up to the time the
//!   listed functions account for.
//! - Span ids are allocated only when needed: when a call is kept, and for its open ancestors
//!   (a kept call's parent lasts longer, so it is kept too), or when an OpenTelemetry span
//!   starts inside a call and must name that call as its parent.
//! - Each resumption of a generator or coroutine is timed on its own (`resumed`); a frame that
//!   exits by an exception (`PY_UNWIND`) ends with that exception's type; exceptions raised and
//!   caught inside a kept call are listed on it.
//! - In window mode (a flight-recorder dump, a crash recovery) the first records may close
//!   frames opened before the window: those frames are rebuilt from their ends (marked
//!   `started_before_window`), calls still open at the end are kept (marked `open`), and the
//!   last `detail_last_events` records of each thread are kept whole, whatever their duration.
//! - asyncio tasks interleave on one thread: a `TaskStep` record marks the coroutine the event
//!   loop resumed (a task's step). Each task has a stack of its own: when its outermost
//!   coroutine suspends, the frames the task still has open (OpenTelemetry spans started in it,
//!   the span it was created under) are set aside, and put back when the task resumes, so its
//!   calls nest under its own spans and not under whatever the task before it left open. A
//!   task's first step nests under the span current in the task when it was created
//!   (`TaskParent`). A coroutine's span covers one resumption: time suspended is in no span.

use std::collections::HashMap;

use crate::links::{Links, OutLink, Settled, Target};
use crate::ring::{
    Event, EventKind, LinkKind, RETURN_INTO_TAIL_CALL, StreamEvents, WAIT_FORGET, WAIT_RECALL,
    causality_of,
};

/// The code id of a function not named (an aggregate's "other functions").
pub const OTHER_CODE: u32 = u32::MAX;
const UNKNOWN_CODE: u32 = u32::MAX - 1;
const MAX_HANDLED: usize = 8;
/// Happens-before links kept on one call's span (a long-running consumer's loop gets the
/// first ones; the OpenTelemetry SDK keeps 128 links a span by default).
const MAX_LINKS: usize = 64;

#[derive(Debug, Clone)]
pub struct BuilderOptions {
    pub threshold_ns: u64,
    /// The parent of calls made outside any OpenTelemetry span: `(trace id, span id)` of the
    /// process's root context (`TRACEPARENT`), or none (each such call starts a trace).
    pub root: Option<(u128, u64)>,
    /// Window mode (see the module doc).
    pub window: bool,
    /// In window mode, the last records of each thread kept whole.
    pub detail_last_events: usize,
    /// Distinct functions kept in one aggregate; the rest are summed as "other functions".
    pub max_aggregates: usize,
    /// Seed of the span id generator.
    pub seed: u64,
}

impl Default for BuilderOptions {
    fn default() -> Self {
        BuilderOptions {
            threshold_ns: 1_000_000,
            root: None,
            window: false,
            detail_last_events: 0,
            max_aggregates: 24,
            seed: 0x9E37_79B9_7F4A_7C15,
        }
    }
}

/// Calls of one function aggregated on a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallAggregate {
    pub code: u32,
    pub count: u64,
    pub total_ns: u64,
    pub self_ns: u64,
    /// How many of these calls ended by an exception.
    pub errors: u64,
}

/// A kept call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutSpan {
    pub trace_id: u128,
    pub span_id: u64,
    /// 0: a root span.
    pub parent_span_id: u64,
    pub code: u32,
    pub stream: u64,
    pub tid: u64,
    /// Monotonic nanoseconds.
    pub start: u64,
    pub end: u64,
    /// A generator or coroutine resumption rather than the first start.
    pub resumed: bool,
    /// The type id of the exception it exited with.
    pub error: Option<u32>,
    /// Exceptions raised and caught inside it: (time, type id).
    pub handled: Vec<(u64, u32)>,
    /// The shorter calls under it.
    pub calls: Vec<CallAggregate>,
    /// Still running when the window ended (window mode).
    pub open: bool,
    /// Started before the window began; `start` is the window's start.
    pub started_before_window: bool,
    /// Value summaries of the call, by their ids in the recording process's store (0: none):
    /// the arguments, the return value, the exception.
    pub values: [u32; 3],
    /// Happens-before links: what ended this call's waits (see [`crate::links`]).
    pub links: Vec<OutLink>,
    /// It ended in a tail call (a BEAM function's last call): the next span of its stream
    /// under the same parent is the call it made, the rest of its work.
    pub tail_call: bool,
}

/// Short calls aggregated on an OpenTelemetry span (reported when the span ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdkSpanCalls {
    pub trace_id: u128,
    pub span_id: u64,
    pub calls: Vec<CallAggregate>,
}

#[derive(Debug, Clone)]
struct Frame {
    /// The code id, or the span key of an OpenTelemetry span.
    code: u32,
    sdk: bool,
    start: u64,
    child_ns: u64,
    trace_id: u128,
    span_id: u64,
    parent_span_id: u64,
    keep: bool,
    resumed: bool,
    synthetic: bool,
    /// The outermost coroutine of the running asyncio task step.
    task_outer: bool,
    /// See [`OutSpan::tail_call`].
    tail_call: bool,
    handled: Vec<(u64, u32)>,
    calls: Vec<CallAggregate>,
    /// See [`OutSpan::values`].
    values: [u32; 3],
    /// The target (in [`Links`]) of the causes that happened in this call, or in short calls
    /// folded into it: this call's span if it is kept ([`NONE`]: none). Ids, not lists, so
    /// a frame stays as small as before links (it is moved on every call).
    target: u32,
    /// Effects (waits ended) in this call or folded into it: a list in
    /// `Builder::draft_lists` of draft link ids ([`NONE`]: none).
    drafts: u32,
}

/// No target, no draft list.
const NONE: u32 = u32::MAX;

impl Frame {
    fn call(code: u32, start: u64, resumed: bool) -> Frame {
        Frame {
            code,
            sdk: false,
            start,
            child_ns: 0,
            trace_id: 0,
            span_id: 0,
            parent_span_id: 0,
            keep: false,
            resumed,
            synthetic: false,
            task_outer: false,
            tail_call: false,
            handled: Vec::new(),
            calls: Vec::new(),
            values: [0; 3],
            target: NONE,
            drafts: NONE,
        }
    }

    fn has_values(&self) -> bool {
        self.values != [0; 3]
    }

    fn has_links(&self) -> bool {
        self.target != NONE || self.drafts != NONE
    }
}

#[derive(Debug, Default)]
struct StreamState {
    tid: u64,
    stack: Vec<Frame>,
    last_exception: Option<u32>,
    last_ts: u64,
    first_ts: Option<u64>,
    /// Short calls made outside any span or kept call (window mode reports them).
    top_calls: Vec<CallAggregate>,
    /// The asyncio task whose step runs now.
    task: Option<TaskRun>,
    /// Suspended asyncio tasks' open frames, by task key.
    suspended: HashMap<u32, SuspendedTask>,
    /// A TaskStep (and TaskParent) just read: the next start/resume/throw begins that step.
    pending_task: Option<(u32, Option<u32>)>,
    /// Emptied aggregate lists of dropped calls, reused by the next calls (a call with calls
    /// under it would otherwise allocate its list, and free it when it is dropped).
    spare_calls: Vec<Vec<CallAggregate>>,
    /// When the wait that the next effect ends began (a WaitBegin record; 0: none).
    wait_start: u64,
    /// Effects read while no recorded call was open (a thread's run starting; a `get` by a
    /// loop that is not recorded, before the recorded call handling the item): they go on the
    /// next call.
    first_drafts: Vec<u32>,
    /// The last call kept at the bottom of the stack: (trace id, span id, code), where a
    /// cause outside any call (a thread's end; a put after the recorded call that made the
    /// item) happened after.
    last_top: Option<(u128, u64, u32)>,
    /// Whether asyncio task steps ran on this thread. Its event loop's own code runs between
    /// steps of interleaving tasks, so what happens there in no recorded call is neither the
    /// last step's (a cause) nor the next one's (an effect, unless a run's start): asyncio
    /// copying a job's result into a task's future, a library's coroutine putting an item.
    ran_tasks: bool,
    /// Whether the next call, which takes `first_drafts`, is kept (a process pool's job).
    first_keep: bool,
    /// When each suspended asyncio wait began, by its coroutine's key (see `ring::WAIT_RECALL`):
    /// tasks interleave on one thread, so one `wait_start` cannot say it.
    suspended_waits: HashMap<u64, u64>,
}

/// Suspended asyncio waits remembered per thread (a wait cancelled never recalls its start).
const MAX_SUSPENDED_WAITS: usize = 4096;

impl StreamState {
    fn push_call(&mut self, code: u32, ts: u64, resumed: bool) {
        let mut f = Frame::call(code, ts, resumed);
        if let Some(calls) = self.spare_calls.pop() {
            f.calls = calls;
        }
        self.stack.push(f);
    }

    fn recycle(&mut self, calls: Vec<CallAggregate>) {
        if calls.capacity() > 0 && self.spare_calls.len() < 64 {
            self.spare_calls.push(calls);
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct TaskRun {
    key: u32,
    /// Where the task's frames start on the stack (the frames below are the thread's).
    base: usize,
}

#[derive(Debug, Default)]
struct SuspendedTask {
    /// The task's frames without its outermost coroutine, bottom first.
    frames: Vec<Frame>,
    /// Where the outermost coroutine goes back among them when the task resumes.
    outer_at: usize,
}

/// The span builder. Feed it streams' records in order; take the spans it produced.
pub struct Builder {
    opts: BuilderOptions,
    streams: HashMap<u64, StreamState>,
    spans: Vec<OutSpan>,
    sdk_calls: Vec<SdkSpanCalls>,
    rng: u64,
    /// Records the rings overwrote before they were read, over all streams.
    pub lost: u64,
    /// Records fed, over all streams.
    pub events: u64,
    /// Of those, causality records (Cause, WaitBegin, Effect).
    pub causality_events: u64,
    /// Value summaries of calls that were not kept: their store entries can go.
    released_values: Vec<u32>,
    links: Links,
    /// Kept calls whose links wait for their cause (or its span) to be known.
    held: Vec<(OutSpan, Vec<u32>)>,
    /// Frames' lists of draft links (see `Frame::drafts`), and the free ones.
    draft_lists: Vec<Vec<u32>>,
    free_lists: Vec<u32>,
    /// Set by [`Builder::finish_open`]: links still waiting are settled without.
    last: bool,
}

impl Builder {
    pub fn new(opts: BuilderOptions) -> Builder {
        let rng = opts.seed | 1;
        Builder {
            opts,
            streams: HashMap::new(),
            spans: Vec::new(),
            sdk_calls: Vec::new(),
            rng,
            lost: 0,
            events: 0,
            causality_events: 0,
            released_values: Vec::new(),
            links: Links::default(),
            held: Vec::new(),
            draft_lists: Vec::new(),
            free_lists: Vec::new(),
            last: false,
        }
    }

    /// The value ids of calls not kept since the last call (their summaries are not wanted).
    pub fn take_released_values(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.released_values)
    }

    pub fn options(&self) -> &BuilderOptions {
        &self.opts
    }

    fn next_id(&mut self) -> u64 {
        // xorshift64*: ids need to be unique and non-zero, not unpredictable.
        loop {
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let id = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D);
            if id != 0 {
                return id;
            }
        }
    }

    /// Feeds the next records of one stream. `span` looks up an OpenTelemetry span's
    /// `(trace id, span id)` by its key. In window mode, feed each stream once, whole.
    pub fn feed(&mut self, records: &StreamEvents, span: &dyn Fn(u32) -> Option<(u128, u64)>) {
        self.lost += records.lost;
        self.events += records.events.len() as u64;
        let mut state = self.streams.remove(&records.stream).unwrap_or_default();
        state.tid = records.tid;
        if records.lost > 0 && !state.stack.is_empty() {
            // Records were overwritten unread: the open calls' ends are lost with them.
            self.close_stream(records.stream, &mut state);
        }
        if let Some(first) = records.events.first() {
            state.first_ts.get_or_insert(first.ts);
        }
        let mut detail_from = u64::MAX;
        if self.opts.window {
            self.open_before_window(&mut state, &records.events, span);
            let n = records.events.len();
            if self.opts.detail_last_events > 0 && n > 0 {
                detail_from = records.events[n.saturating_sub(self.opts.detail_last_events)].ts;
            }
        }
        let events = &records.events;
        let mut i = 0;
        while i < events.len() {
            if let Some(next) = events.get(i + 1)
                && self.count_leaf(&mut state, &events[i], next, detail_from)
            {
                i += 2;
                continue;
            }
            self.apply(records.stream, &mut state, &events[i], span, detail_from);
            i += 1;
        }
        self.streams.insert(records.stream, state);
    }

    /// A call that returned right after it started (calling no recorded function) and lasted
    /// less than the threshold: counted on its parent at once, without the frame a call gets
    /// (half the calls of a recursive program are such leaves). False, changing nothing, when
    /// `call` and `ret` are not such a pair (the general path then handles them).
    #[inline(always)]
    fn count_leaf(
        &mut self,
        state: &mut StreamState,
        call: &Event,
        ret: &Event,
        detail_from: u64,
    ) -> bool {
        if call.kind != EventKind::Call
            || ret.kind != EventKind::Return
            || ret.code != call.code
            || state.pending_task.is_some()
            || ret.ts >= detail_from
            // The first call after a thread's run or a pool's job began takes its links.
            || !state.first_drafts.is_empty()
        {
            return false;
        }
        let dur = ret.ts.saturating_sub(call.ts);
        if dur >= self.opts.threshold_ns {
            return false;
        }
        state.last_ts = ret.ts;
        let own = CallAggregate {
            code: call.code,
            count: 1,
            total_ns: dur,
            self_ns: dur,
            errors: 0,
        };
        let into = match state.stack.last_mut() {
            Some(parent) => {
                parent.child_ns += dur;
                &mut parent.calls
            }
            None => &mut state.top_calls,
        };
        add_aggregate(into, own, self.opts.max_aggregates);
        true
    }

    /// Window mode: the frames the window's first records close without having opened them,
    /// rebuilt at the bottom of the stack (innermost last).
    fn open_before_window(
        &mut self,
        state: &mut StreamState,
        events: &[Event],
        span: &dyn Fn(u32) -> Option<(u128, u64)>,
    ) {
        if !state.stack.is_empty() {
            return;
        }
        let start = events.first().map_or(0, |e| e.ts);
        let mut depth: Vec<bool> = Vec::new(); // true: an OpenTelemetry span
        let mut unmatched: Vec<Frame> = Vec::new();
        for e in events {
            match e.kind {
                EventKind::Call | EventKind::Resume | EventKind::Throw => depth.push(false),
                EventKind::SpanStart => depth.push(true),
                EventKind::Return | EventKind::Yield | EventKind::Unwind => {
                    if let Some(pos) = depth.iter().rposition(|sdk| !sdk) {
                        depth.remove(pos);
                    } else {
                        let mut f = Frame::call(UNKNOWN_CODE, start, false);
                        f.synthetic = true;
                        unmatched.push(f);
                    }
                }
                EventKind::SpanEnd => {
                    if let Some(pos) = depth.iter().rposition(|sdk| *sdk) {
                        depth.remove(pos);
                    } else if let Some((trace_id, span_id)) = span(e.code) {
                        let mut f = Frame::call(e.code, start, false);
                        f.sdk = true;
                        f.synthetic = true;
                        f.trace_id = trace_id;
                        f.span_id = span_id;
                        unmatched.push(f);
                    }
                }
                _ => {}
            }
        }
        unmatched.reverse();
        state.stack = unmatched;
    }

    fn apply(
        &mut self,
        stream: u64,
        state: &mut StreamState,
        e: &Event,
        span: &dyn Fn(u32) -> Option<(u128, u64)>,
        detail_from: u64,
    ) {
        state.last_ts = e.ts;
        if matches!(
            e.kind,
            EventKind::Call | EventKind::Resume | EventKind::Throw
        ) && let Some((key, parent)) = state.pending_task.take()
            && state.task.is_none()
        {
            self.start_task_step(state, key, parent, e, span);
            return;
        }
        match e.kind {
            EventKind::TaskStep => state.pending_task = Some((e.code, None)),
            EventKind::TaskParent => {
                if let Some((_, parent)) = &mut state.pending_task {
                    *parent = Some(e.code);
                }
            }
            EventKind::Call | EventKind::Resume | EventKind::Throw => {
                state.push_call(e.code, e.ts, e.kind != EventKind::Call);
                if !state.first_drafts.is_empty() {
                    // A thread's run (or a pool's job) started before this, its first
                    // recorded call.
                    let drafts = std::mem::take(&mut state.first_drafts);
                    let top = state.stack.len() - 1;
                    state.stack[top].keep |= std::mem::take(&mut state.first_keep);
                    self.add_drafts(&mut state.stack[top].drafts, drafts);
                }
            }
            EventKind::Return | EventKind::Yield | EventKind::Unwind => {
                let error = if e.kind == EventKind::Unwind {
                    Some(exception_of(state, e))
                } else {
                    None
                };
                self.pop_call(stream, state, e, error, detail_from);
            }
            EventKind::Raise => state.last_exception = Some(e.aux),
            EventKind::Handled => {
                let exception = exception_of(state, e);
                if let Some(f) = state.stack.iter_mut().rev().find(|f| !f.sdk)
                    && f.handled.len() < MAX_HANDLED
                {
                    f.handled.push((e.ts, exception));
                }
            }
            EventKind::SpanStart => {
                let mut f = Frame::call(e.code, e.ts, false);
                f.sdk = true;
                if let Some((trace_id, span_id)) = span(e.code) {
                    f.trace_id = trace_id;
                    f.span_id = span_id;
                }
                state.stack.push(f);
            }
            EventKind::SpanEnd => {
                if let Some(i) = state.stack.iter().rposition(|f| f.sdk && f.code == e.code) {
                    self.finish(stream, state, i, e.ts, None, detail_from);
                }
            }
            EventKind::Value => {
                if let Some(f) = state.stack.iter_mut().rev().find(|f| !f.sdk) {
                    let slot = (e.aux as usize).min(2);
                    if f.values[slot] != 0 {
                        self.released_values.push(f.values[slot]);
                    }
                    f.values[slot] = e.code;
                } else {
                    self.released_values.push(e.code);
                }
            }
            EventKind::WaitBegin => {
                self.causality_events += 1;
                wait_begins(state, e);
            }
            EventKind::Cause => {
                self.causality_events += 1;
                self.cause(stream, state, e);
            }
            EventKind::Effect => {
                self.causality_events += 1;
                if let Some((kind, key)) = causality_of(e) {
                    let wait_start = std::mem::take(&mut state.wait_start);
                    let id = self.links.effect(kind, key, e.ts, wait_start);
                    // The call that waited is kept: a wait as long as the threshold, or an
                    // asyncio task's resumption by what it awaited (short by nature).
                    let waited = wait_start != 0
                        && e.ts.saturating_sub(wait_start) >= self.opts.threshold_ns;
                    // A task resumed by what it awaited (asyncio's queue: always; its
                    // locks, events and conditions: when it was suspended); a pool's job.
                    let keep = waited
                        || kind == LinkKind::AsyncioQueue
                        || (kind.asyncio() && wait_start != 0)
                        || kind == LinkKind::ProcessFuture;
                    match state.stack.iter_mut().rev().find(|f| !f.sdk) {
                        Some(f) => {
                            f.keep |= keep;
                            self.add_drafts(&mut f.drafts, vec![id]);
                        }
                        None if (kind.begins_a_run() || !state.ran_tasks)
                            && state.first_drafts.len() < MAX_LINKS =>
                        {
                            if kind == LinkKind::ProcessFuture {
                                // A job starts: the calls kept before it are not its.
                                state.last_top = None;
                            }
                            state.first_keep |= keep;
                            state.first_drafts.push(id);
                        }
                        None => self.links.drop_draft(id),
                    }
                }
            }
            EventKind::CallIds => {
                if let Some((trace_id, span_id)) = span(e.code) {
                    self.fix_ids(state, trace_id, span_id);
                }
            }
            // BEAM records are translated by the `beam` module before they get here.
            EventKind::Trigger | EventKind::Beam => {}
        }
    }

    /// A cause in another process, in the span `(trace_id, span_id)` named there (a process
    /// pool's submitting call, or its job's span carried back with the result), in function
    /// `code`, at `ts`: consumers of `(kind, key)` here link to it.
    pub fn remote_cause(
        &mut self,
        kind: LinkKind,
        key: u64,
        ts: u64,
        code: u32,
        span: (u128, u64),
    ) {
        let target = self.links.target(Target::Span {
            trace_id: span.0,
            span_id: span.1,
        });
        self.links.cause(kind, key, ts, code, target);
    }

    /// A process pool's job ended on `stream` (its records read): a link no recorded call
    /// took is dropped; returns the last call the job kept at the bottom of the stack,
    /// `(trace id, span id, code)`, what completed it.
    pub fn end_job(&mut self, stream: u64) -> Option<(u128, u64, u32)> {
        let state = self.streams.get_mut(&stream)?;
        state.first_keep = false;
        for d in std::mem::take(&mut state.first_drafts) {
            self.links.drop_draft(d);
        }
        state.last_top
    }

    /// A cause: its target is the innermost open frame's span, pending while that frame may
    /// still be dropped; outside any frame, the last call kept at the bottom of the stack,
    /// except on an event loop's thread (see `ran_tasks`): none.
    fn cause(&mut self, stream: u64, state: &mut StreamState, e: &Event) {
        let Some((kind, key)) = causality_of(e) else {
            return;
        };
        let last_top = state.last_top.filter(|_| !state.ran_tasks);
        let code = state
            .stack
            .iter()
            .rev()
            .find(|f| !f.sdk)
            .map(|f| f.code)
            .or(last_top.filter(|_| state.stack.is_empty()).map(|t| t.2))
            .unwrap_or(OTHER_CODE);
        if kind.asyncio()
            && let Some(f) = state.stack.last_mut().filter(|f| !f.sdk)
        {
            // The step of a task that woke another is kept, as the step it woke is: asyncio's
            // steps are short by nature, and one dropped at the bottom of the stack would
            // leave the link nothing to point at.
            f.keep = true;
        }
        if kind.begins_a_run()
            && let Some(bottom) = state.stack.first_mut().filter(|f| !f.sdk)
        {
            // Work handed to another thread (a job submitted, a thread started): the job or
            // the thread links to the call that handed it over, or to a caller of that call
            // when it is short; the bottom call has no caller to take the link, so it is kept
            // (an asyncio task's step submitting to a pool: short by nature).
            bottom.keep = true;
        }
        let target = match state.stack.last_mut() {
            Some(f) if f.span_id != 0 => self.links.target(Target::Span {
                trace_id: f.trace_id,
                span_id: f.span_id,
            }),
            Some(f) if f.sdk => self.links.target(Target::Nowhere),
            // The call's pending target, shared by all the causes in it.
            Some(f) if f.target != NONE => {
                self.links.retain(f.target);
                f.target
            }
            Some(f) => {
                let id = self.links.target(Target::Pending { stream });
                // One reference for the frame, one for the cause.
                self.links.retain(id);
                f.target = id;
                id
            }
            None => self.links.target(match last_top {
                Some((trace_id, span_id, _)) => Target::Span { trace_id, span_id },
                None => Target::Nowhere,
            }),
        };
        self.links.cause(kind, key, e.ts, code, target);
    }

    /// A frame ends: its pending targets are its span when kept, else they go down to the
    /// frame below (an OpenTelemetry span: its span), and its drafts to the call below.
    fn pass_links_down(
        &mut self,
        state: &mut StreamState,
        below: Option<usize>,
        target: u32,
        drafts: Vec<u32>,
        kept: Option<(u128, u64)>,
    ) {
        if target != NONE {
            let id = target;
            match (kept, below.map(|b| &mut state.stack[b])) {
                (Some((trace_id, span_id)), _) => {
                    self.links.resolve(id, Target::Span { trace_id, span_id });
                    self.links.release(id);
                }
                (None, Some(f)) if f.span_id != 0 => {
                    let (trace_id, span_id) = (f.trace_id, f.span_id);
                    self.links.resolve(id, Target::Span { trace_id, span_id });
                    self.links.release(id);
                }
                // The caller has a pending target already: this one goes where it goes.
                (None, Some(f)) if !f.sdk && f.target != NONE => {
                    let own = f.target;
                    self.links.retain(own);
                    self.links.resolve(id, Target::Same(own));
                    self.links.release(id);
                }
                (None, Some(f)) if !f.sdk => f.target = id,
                (None, _) => {
                    self.links.resolve(id, Target::Nowhere);
                    self.links.release(id);
                }
            }
        }
        if drafts.is_empty() {
            return;
        }
        let call_below = below.and_then(|b| state.stack[..=b].iter().rposition(|f| !f.sdk));
        match call_below {
            Some(c) => self.add_drafts(&mut state.stack[c].drafts, drafts),
            None => drafts.into_iter().for_each(|d| self.links.drop_draft(d)),
        }
    }

    /// Adds draft links to a frame's list (made when it has none), up to [`MAX_LINKS`]; the
    /// rest are dropped.
    fn add_drafts(&mut self, list: &mut u32, drafts: Vec<u32>) {
        if *list == NONE {
            *list = match self.free_lists.pop() {
                Some(free) => free,
                None => {
                    self.draft_lists.push(Vec::new());
                    (self.draft_lists.len() - 1) as u32
                }
            };
        }
        for d in drafts {
            let into = &mut self.draft_lists[*list as usize];
            if into.len() < MAX_LINKS {
                into.push(d);
            } else {
                self.links.drop_draft(d);
            }
        }
    }

    /// A frame's draft links, its list freed.
    fn take_drafts(&mut self, list: &mut u32) -> Vec<u32> {
        if *list == NONE {
            return Vec::new();
        }
        let drafts = std::mem::take(&mut self.draft_lists[*list as usize]);
        self.free_lists.push(*list);
        *list = NONE;
        drafts
    }

    fn pop_call(
        &mut self,
        stream: u64,
        state: &mut StreamState,
        e: &Event,
        error: Option<u32>,
        detail_from: u64,
    ) {
        let (code, ts) = (e.code, e.ts);
        if self.drop_short_top(state, code, ts, error, detail_from) {
            return;
        }
        let Some(top) = state.stack.iter().rposition(|f| !f.sdk) else {
            return; // a return whose call was before the recorder started
        };
        let target = if state.stack[top].code == code {
            Some(top)
        } else if state.stack[top].code == UNKNOWN_CODE {
            state.stack[top].code = code;
            Some(top)
        } else {
            state.stack.iter().rposition(|f| !f.sdk && f.code == code)
        };
        let Some(i) = target else { return };
        if state.task.is_some_and(|run| i < run.base) {
            // A frame below the task's ends: the step ended unseen; its frames close as calls.
            state.task = None;
        }
        // Calls above it whose ends were not seen (the recorder started or stopped meanwhile).
        while let Some(j) = state.stack.iter().rposition(|f| !f.sdk).filter(|&j| j > i) {
            self.finish(stream, state, j, ts, None, detail_from);
        }
        let task_outer = state.stack[i].task_outer;
        state.stack[i].tail_call = e.kind == EventKind::Return && e.aux == RETURN_INTO_TAIL_CALL;
        let dur = ts.saturating_sub(state.stack[i].start);
        self.finish(stream, state, i, ts, error, detail_from);
        if task_outer && let Some(run) = state.task.take() {
            self.end_task_step(state, run, i, dur, e.kind == EventKind::Yield);
        }
    }

    /// The common end of a call: the top frame is the call ending, shorter than the threshold,
    /// with nothing that keeps it (no span id, no task step, not rebuilt, not in the detailed
    /// tail). It is counted on its parent with what it counted, as [`Builder::finish`] would;
    /// false, changing nothing, when the end is not that simple.
    #[inline(always)]
    fn drop_short_top(
        &mut self,
        state: &mut StreamState,
        code: u32,
        ts: u64,
        error: Option<u32>,
        detail_from: u64,
    ) -> bool {
        let Some(f) = state.stack.last() else {
            return false;
        };
        let dur = ts.saturating_sub(f.start);
        if f.code != code
            || f.sdk
            || f.has_values()
            || f.has_links()
            || f.keep
            || f.synthetic
            || f.task_outer
            || f.span_id != 0
            || dur >= self.opts.threshold_ns
            || ts >= detail_from
        {
            return false;
        }
        let mut f = state.stack.pop().expect("the top frame, looked at above");
        let own = CallAggregate {
            code,
            count: 1,
            total_ns: dur,
            self_ns: dur.saturating_sub(f.child_ns),
            errors: error.is_some() as u64,
        };
        let max = self.opts.max_aggregates;
        let into = match state.stack.last_mut() {
            Some(parent) => {
                parent.child_ns += dur;
                &mut parent.calls
            }
            None => &mut state.top_calls,
        };
        if into.is_empty() && into.capacity() == 0 {
            // The parent counted nothing yet: it takes the list as it is (no merge).
            std::mem::swap(into, &mut f.calls);
            add_aggregate(into, own, max);
        } else {
            add_aggregate(into, own, max);
            for a in f.calls.drain(..) {
                add_aggregate(into, a, max);
            }
        }
        state.recycle(std::mem::take(&mut f.calls));
        true
    }

    /// The event loop resumed (or started) task `key`: its frames go back on the stack, the
    /// resumed coroutine among them; a first step starts under the span it was created in.
    fn start_task_step(
        &mut self,
        state: &mut StreamState,
        key: u32,
        parent: Option<u32>,
        e: &Event,
        span: &dyn Fn(u32) -> Option<(u128, u64)>,
    ) {
        let base = state.stack.len();
        let mut outer = Frame::call(e.code, e.ts, e.kind != EventKind::Call);
        outer.task_outer = true;
        if let Some(mut saved) = state.suspended.remove(&key) {
            saved
                .frames
                .insert(saved.outer_at.min(saved.frames.len()), outer);
            state.stack.append(&mut saved.frames);
        } else {
            if let Some(parent) = parent
                && let Some((trace_id, span_id)) = span(parent)
            {
                let mut f = Frame::call(parent, e.ts, false);
                f.sdk = true;
                f.synthetic = true;
                f.trace_id = trace_id;
                f.span_id = span_id;
                state.stack.push(f);
            }
            state.stack.push(outer);
        }
        state.task = Some(TaskRun { key, base });
        state.ran_tasks = true;
    }

    /// The task's outermost coroutine (at `outer_at` on the stack) ended its step: suspended,
    /// its open frames are set aside for its next step; finished, they are dropped.
    fn end_task_step(
        &mut self,
        state: &mut StreamState,
        run: TaskRun,
        outer_at: usize,
        dur: u64,
        suspended: bool,
    ) {
        let base = run.base.min(state.stack.len());
        let frames = state.stack.split_off(base);
        if outer_at > base
            && let Some(below) = state.stack.last_mut()
        {
            // The step ran in the thread's frame below; `finish` credited the task's own.
            below.child_ns += dur;
        }
        if suspended {
            state.suspended.insert(
                run.key,
                SuspendedTask {
                    frames,
                    outer_at: outer_at.saturating_sub(base),
                },
            );
            return;
        }
        // The task is done: what it counted on the span it was created under stays counted.
        let max = self.opts.max_aggregates;
        for mut f in frames {
            let target = std::mem::replace(&mut f.target, NONE);
            let drafts = self.take_drafts(&mut f.drafts);
            self.pass_links_down(state, None, target, drafts, None);
            self.released_values
                .extend(f.values.iter().copied().filter(|&v| v != 0));
            for a in f.calls {
                add_aggregate(&mut state.top_calls, a, max);
            }
        }
    }

    /// Gives ids to the frames up to `upto` that have none, each the child of the one before
    /// (the first the child of the nearest frame with ids, or the root context).
    fn ensure_ids(&mut self, stack: &mut [Frame], upto: usize, trace_hint: u128) {
        let mut j = upto as isize;
        while j >= 0 && stack[j as usize].span_id == 0 {
            j -= 1;
        }
        let (mut trace_id, mut parent) = if j >= 0 {
            let f = &mut stack[j as usize];
            f.keep = true;
            (f.trace_id, f.span_id)
        } else if let Some(root) = self.opts.root {
            root
        } else if trace_hint != 0 {
            (trace_hint, 0)
        } else {
            ((self.next_id() as u128) << 64 | self.next_id() as u128, 0)
        };
        for f in stack[(j + 1) as usize..=upto].iter_mut() {
            if f.sdk {
                continue; // an OpenTelemetry span whose ids were not found
            }
            f.trace_id = trace_id;
            f.parent_span_id = parent;
            f.span_id = self.next_id();
            f.keep = true;
            parent = f.span_id;
            trace_id = f.trace_id;
        }
    }

    /// Gives the innermost open call the ids `(trace_id, span_id)` chosen when a process was
    /// started from it (the child names it as its parent), its callers ids of their own; it is
    /// kept. A call with ids already keeps them.
    fn fix_ids(&mut self, state: &mut StreamState, trace_id: u128, span_id: u64) {
        let Some(i) = state.stack.iter().rposition(|f| !f.sdk) else {
            return;
        };
        if state.stack[i].span_id != 0 {
            return;
        }
        let mut stack = std::mem::take(&mut state.stack);
        if i > 0 {
            self.ensure_ids(&mut stack, i - 1, trace_id);
        }
        let parent = stack[..i]
            .iter()
            .rev()
            .find(|f| f.span_id != 0)
            .map(|f| f.span_id)
            .or(self.opts.root.map(|(_, span)| span))
            .unwrap_or(0);
        let f = &mut stack[i];
        (f.trace_id, f.span_id, f.parent_span_id, f.keep) = (trace_id, span_id, parent, true);
        state.stack = stack;
    }

    fn finish(
        &mut self,
        stream: u64,
        state: &mut StreamState,
        i: usize,
        end: u64,
        error: Option<u32>,
        detail_from: u64,
    ) {
        let top = state.stack.len() - 1;
        if i < top {
            // Frames above it stay open; bind them to it now, before it leaves the stack.
            let mut stack = std::mem::take(&mut state.stack);
            self.ensure_ids(&mut stack, top, 0);
            state.stack = stack;
        }
        let f = &state.stack[i];
        let dur = end.saturating_sub(f.start);
        // A call whose values were captured and that failed is kept whatever its duration: its
        // arguments are what a reader of the failure wants.
        let keep_call = !f.sdk
            && f.code != UNKNOWN_CODE
            && (f.keep
                || dur >= self.opts.threshold_ns
                || end >= detail_from
                || f.synthetic
                || (error.is_some() && f.has_values()));
        if keep_call && f.span_id == 0 {
            let mut stack = std::mem::take(&mut state.stack);
            self.ensure_ids(&mut stack, i, 0);
            state.stack = stack;
        }
        let mut f = state.stack.remove(i);
        let parent_index = i.checked_sub(1);
        let mut drafts_kept = Vec::new();
        if f.has_links() {
            let target = std::mem::replace(&mut f.target, NONE);
            let drafts = self.take_drafts(&mut f.drafts);
            let kept = keep_call.then_some((f.trace_id, f.span_id));
            if keep_call {
                // The drafts stay with the span (held below until settled).
                self.pass_links_down(state, parent_index, target, Vec::new(), kept);
                drafts_kept = drafts;
            } else {
                self.pass_links_down(state, parent_index, target, drafts, kept);
            }
        }
        if f.sdk {
            if !f.calls.is_empty() && f.span_id != 0 {
                self.sdk_calls.push(SdkSpanCalls {
                    trace_id: f.trace_id,
                    span_id: f.span_id,
                    calls: f.calls,
                });
            }
            if let Some(p) = parent_index {
                state.stack[p].child_ns += dur;
            }
            return;
        }
        if f.code == UNKNOWN_CODE {
            return;
        }
        if let Some(p) = parent_index {
            state.stack[p].child_ns += dur;
        }
        if keep_call {
            if parent_index.is_none() {
                state.last_top = Some((f.trace_id, f.span_id, f.code));
            }
            let span = OutSpan {
                trace_id: f.trace_id,
                span_id: f.span_id,
                parent_span_id: f.parent_span_id,
                code: f.code,
                stream,
                tid: state.tid,
                start: f.start,
                end,
                resumed: f.resumed,
                error,
                handled: f.handled,
                calls: sorted(f.calls),
                open: false,
                started_before_window: f.synthetic,
                values: f.values,
                links: Vec::new(),
                tail_call: f.tail_call,
            };
            if drafts_kept.is_empty() {
                self.spans.push(span);
            } else {
                self.held.push((span, drafts_kept));
            }
            return;
        }
        self.released_values
            .extend(f.values.iter().copied().filter(|&v| v != 0));
        let max = self.opts.max_aggregates;
        let own = CallAggregate {
            code: f.code,
            count: 1,
            total_ns: dur,
            self_ns: dur.saturating_sub(f.child_ns),
            errors: error.is_some() as u64,
        };
        let into = match parent_index {
            Some(p) => &mut state.stack[p].calls,
            None => &mut state.top_calls,
        };
        add_aggregate(into, own, max);
        let mut calls = f.calls;
        for a in calls.drain(..) {
            add_aggregate(into, a, max);
        }
        state.recycle(calls);
    }

    /// Called right after a SpanStart record of `stream` was fed: if the OpenTelemetry span
    /// started inside a recorded call, that call (with ids allocated now, and kept) is the
    /// span's parent. Returns its `(trace id, span id)`.
    pub fn parent_for_span(
        &mut self,
        stream: u64,
        key: u32,
        trace_hint: u128,
    ) -> Option<(u128, u64)> {
        let mut state = self.streams.remove(&stream)?;
        let at = state.stack.iter().rposition(|f| f.sdk && f.code == key);
        let mut result = None;
        if let Some(at) = at.filter(|&a| a > 0 && !state.stack[a - 1].sdk) {
            let mut stack = std::mem::take(&mut state.stack);
            self.ensure_ids(&mut stack, at - 1, trace_hint);
            let parent = &stack[at - 1];
            result = Some((parent.trace_id, parent.span_id));
            state.stack = stack;
        }
        self.streams.insert(stream, state);
        result
    }

    /// The innermost call (or OpenTelemetry span) open on `stream`, kept as a span from now
    /// on: its `(trace_id, span_id, code)` (no code for an OpenTelemetry span). A process
    /// started from it (a fork, a spawned interpreter) continues the trace under it.
    pub fn open_call(&mut self, stream: u64, trace_hint: u128) -> Option<(u128, u64, Option<u32>)> {
        let mut state = self.streams.remove(&stream)?;
        let mut result = None;
        if let Some(top) = state.stack.len().checked_sub(1) {
            let mut stack = std::mem::take(&mut state.stack);
            self.ensure_ids(&mut stack, top, trace_hint);
            let f = &mut stack[top];
            if f.span_id != 0 {
                f.keep = true;
                result = Some((f.trace_id, f.span_id, (!f.sdk).then_some(f.code)));
            }
            state.stack = stack;
        }
        self.streams.insert(stream, state);
        result
    }

    /// Ends the calls still open (window mode: at the last record of their thread, marked
    /// open; a recorder stopping: the same). Short calls made outside any span are reported
    /// by [`Builder::take_top_calls`].
    pub fn finish_open(&mut self) {
        self.finish_open_alive_until(0);
    }

    /// The stamp of the last record fed, over every stream (0: none).
    pub fn last_record(&self) -> u64 {
        self.streams.values().map(|s| s.last_ts).max().unwrap_or(0)
    }

    /// [`Builder::finish_open`] for a process known to have run until `alive` (its recorder's
    /// last heartbeat before it was killed): a call still running ends there, if that is later
    /// than its thread's last record — it ran until then, its end never written.
    pub fn finish_open_alive_until(&mut self, alive: u64) {
        self.last = true;
        let streams: Vec<u64> = self.streams.keys().copied().collect();
        for stream in streams {
            let mut state = self.streams.remove(&stream).unwrap();
            if !state.stack.is_empty() {
                state.last_ts = state.last_ts.max(alive);
            }
            self.close_stream(stream, &mut state);
            self.streams.insert(stream, state);
        }
    }

    fn close_stream(&mut self, stream: u64, state: &mut StreamState) {
        let end = state.last_ts;
        // The calls ended here are new spans, or held spans when they have links to settle.
        let (first_open, first_held) = (self.spans.len(), self.held.len());
        while let Some(top) = state.stack.len().checked_sub(1) {
            let f = &mut state.stack[top];
            if !f.sdk && f.code != UNKNOWN_CODE {
                f.keep = true;
            }
            self.finish(stream, state, top, end, None, u64::MAX);
        }
        for s in &mut self.spans[first_open..] {
            s.open = true;
        }
        for (s, _) in &mut self.held[first_held..] {
            s.open = true;
        }
    }

    /// What was read and not yet handed out: the calls begun and not ended (on a thread's
    /// stack, or in a suspended asyncio task's), and spans held for their links. A process
    /// killed now would lose them unless its file is read again.
    pub fn undelivered(&self) -> u64 {
        let frames: usize = self
            .streams
            .values()
            .map(|s| {
                s.stack.len()
                    + s.suspended
                        .values()
                        .map(|t| t.frames.len() + 1)
                        .sum::<usize>()
            })
            .sum();
        (frames + self.held.len()) as u64
    }

    /// The short calls made outside any span or kept call, per stream (with its OS thread id).
    pub fn take_top_calls(&mut self) -> Vec<(u64, u64, Vec<CallAggregate>)> {
        let mut out: Vec<_> = self
            .streams
            .iter_mut()
            .filter(|(_, s)| !s.top_calls.is_empty())
            .map(|(k, s)| (*k, s.tid, sorted(std::mem::take(&mut s.top_calls))))
            .collect();
        out.sort_by_key(|(k, _, _)| *k);
        out
    }

    /// The first and last record times seen per stream.
    pub fn stream_times(&self) -> Vec<(u64, u64, u64, u64)> {
        let mut out: Vec<_> = self
            .streams
            .iter()
            .map(|(k, s)| (*k, s.tid, s.first_ts.unwrap_or(s.last_ts), s.last_ts))
            .collect();
        out.sort_by_key(|t| t.0);
        out
    }

    /// The spans made so far, with the links settled since (a span whose links wait for their
    /// cause is held back until they are settled).
    pub fn take_spans(&mut self) -> Vec<OutSpan> {
        if !self.held.is_empty() || self.last {
            self.settle_links();
        }
        std::mem::take(&mut self.spans)
    }

    /// A flush (the tracer provider's `force_flush`), once everything recorded until now was
    /// fed: a cause comes before its effect, so every link still waiting is settled now (its
    /// cause's call forced kept, or without a cause), and the spans held for them are released.
    /// Returns the finished spans, as [`Builder::take_spans`].
    pub fn take_spans_settled(&mut self) -> Vec<OutSpan> {
        self.settle_links_now(true);
        std::mem::take(&mut self.spans)
    }

    fn settle_links(&mut self) {
        self.settle_links_now(false);
    }

    /// Matches waiting links and releases the held spans whose links are all settled. A link
    /// whose cause's call is still open after [`crate::links::HOLD_NS`] (or at the end, or at a
    /// flush: `all_read`) makes that call kept, so it has a span to point at.
    fn settle_links_now(&mut self, all_read: bool) {
        let last = self.last || all_read;
        if self.last {
            for state in self.streams.values_mut() {
                for d in std::mem::take(&mut state.first_drafts) {
                    self.links.drop_draft(d);
                }
            }
        }
        self.links.settle_waiting(last);
        let now = self.links.now;
        for (mut span, drafts) in std::mem::take(&mut self.held) {
            let mut waiting = Vec::new();
            for id in drafts {
                match self.links.settle(id) {
                    Settled::Linked(link) => span.links.push(link),
                    Settled::Unlinked => {}
                    Settled::Waiting { pending_on } => {
                        let overdue = last || now.saturating_sub(span.end) > crate::links::HOLD_NS;
                        if let (true, Some((stream, target))) = (overdue, pending_on) {
                            self.force_target(stream, target);
                            if let Settled::Linked(link) = self.links.settle(id) {
                                span.links.push(link);
                            }
                            continue;
                        }
                        waiting.push(id);
                    }
                }
            }
            if waiting.is_empty() {
                self.spans.push(span);
            } else {
                self.held.push((span, waiting));
            }
        }
    }

    /// Gives the open frame holding `target` its ids (so it is kept) and resolves the target.
    fn force_target(&mut self, stream: u64, target: u32) {
        let Some(mut state) = self.streams.remove(&stream) else {
            self.links.resolve(target, Target::Nowhere);
            return;
        };
        match state.stack.iter().rposition(|f| f.target == target) {
            Some(at) => {
                let mut stack = std::mem::take(&mut state.stack);
                self.ensure_ids(&mut stack, at, 0);
                let (trace_id, span_id) = (stack[at].trace_id, stack[at].span_id);
                stack[at].target = NONE;
                state.stack = stack;
                self.links
                    .resolve(target, Target::Span { trace_id, span_id });
                self.links.release(target);
            }
            None => self.links.resolve(target, Target::Nowhere),
        }
        self.streams.insert(stream, state);
    }

    pub fn take_sdk_calls(&mut self) -> Vec<SdkSpanCalls> {
        std::mem::take(&mut self.sdk_calls)
    }

    /// Forgets a stream (its thread ended and everything of it was fed and finished).
    pub fn drop_stream(&mut self, stream: u64) {
        self.streams.remove(&stream);
    }
}

fn sorted(mut calls: Vec<CallAggregate>) -> Vec<CallAggregate> {
    calls.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.code.cmp(&b.code)));
    calls
}

#[inline(always)]
fn add_aggregate(into: &mut Vec<CallAggregate>, a: CallAggregate, max: usize) {
    if let Some(x) = into.iter_mut().rev().find(|x| x.code == a.code) {
        x.count += a.count;
        x.total_ns += a.total_ns;
        x.self_ns += a.self_ns;
        x.errors += a.errors;
        return;
    }
    if into.len() + 1 < max || (into.len() < max && a.code == OTHER_CODE) {
        into.push(a);
        return;
    }
    let other = match into.iter_mut().find(|x| x.code == OTHER_CODE) {
        Some(o) => o,
        None => {
            into.push(CallAggregate {
                code: OTHER_CODE,
                count: 0,
                total_ns: 0,
                self_ns: 0,
                errors: 0,
            });
            into.last_mut().unwrap()
        }
    };
    other.count += a.count;
    other.total_ns += a.total_ns;
    other.self_ns += a.self_ns;
    other.errors += a.errors;
}

/// A WaitBegin record: a thread's wait starts (no key), or ended with no effect
/// ([`WAIT_FORGET`] alone: timed out, failed; the next effect, which may have begun no wait of
/// its own, must not take its start); an asyncio coroutine suspends (keyed on it: its first
/// suspension is its wait's start); that coroutine's wait ends now ([`WAIT_RECALL`]): its start
/// is what the effect right after it takes; or it ended with no effect ([`WAIT_FORGET`]:
/// cancelled), its start forgotten (another coroutine may come to live at its address).
/// The exception type id of an Unwind or Handled record: its own aux (where the recorder wrote
/// it: the native recorder does, with no RAISE callback), else the thread's last Raise record's.
fn exception_of(state: &StreamState, e: &Event) -> u32 {
    if e.aux != 0 {
        e.aux
    } else {
        state.last_exception.unwrap_or(0)
    }
}

fn wait_begins(state: &mut StreamState, e: &Event) {
    let key = causality_of(e).map_or(0, |(_, key)| key);
    if key == 0 {
        state.wait_start = e.ts;
    } else if key == WAIT_FORGET {
        state.wait_start = 0;
    } else if key & WAIT_RECALL != 0 {
        state.wait_start = state
            .suspended_waits
            .remove(&(key & !WAIT_RECALL))
            .unwrap_or(0);
    } else if key & WAIT_FORGET != 0 {
        state.suspended_waits.remove(&(key & !WAIT_FORGET));
    } else {
        if state.suspended_waits.len() >= MAX_SUSPENDED_WAITS {
            state.suspended_waits.clear();
        }
        state.suspended_waits.entry(key).or_insert(e.ts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EventKind::*;

    const MS: u64 = 1_000_000;
    const TRACE: u128 = 0xAAAA;
    const SDK_SPAN: u64 = 0x5D4;

    fn stream(id: u64, events: &[(u64, EventKind, u32)]) -> StreamEvents {
        StreamEvents {
            stream: id,
            tid: 100 + id,
            first_seq: 0,
            events: events
                .iter()
                .map(|&(ts, kind, code)| Event {
                    ts,
                    kind,
                    code,
                    aux: 0,
                })
                .collect(),
            lost: 0,
        }
    }

    fn spans_table(key: u32) -> Option<(u128, u64)> {
        match key {
            1 => Some((TRACE, SDK_SPAN)),
            2 => Some((TRACE, 0x5D5)),
            3 => Some((TRACE, 0x5D6)),
            _ => None,
        }
    }

    fn builder(threshold_ms: u64) -> Builder {
        Builder::new(BuilderOptions {
            threshold_ns: threshold_ms * MS,
            ..Default::default()
        })
    }

    fn agg(code: u32, count: u64, total_ms: u64, self_ms: u64) -> CallAggregate {
        CallAggregate {
            code,
            count,
            total_ns: total_ms * MS,
            self_ns: self_ms * MS,
            errors: 0,
        }
    }

    #[test]
    fn what_was_read_and_not_handed_out_is_the_calls_still_running() {
        let mut b = builder(0);
        b.feed(
            &stream(1, &[(0, EventKind::Call, 10), (MS, EventKind::Call, 11)]),
            &spans_table,
        );
        assert_eq!(b.undelivered(), 2, "two calls begun, none ended");
        b.feed(&stream(1, &[(2 * MS, EventKind::Return, 11)]), &spans_table);
        assert_eq!(b.undelivered(), 1);
        b.feed(&stream(1, &[(3 * MS, EventKind::Return, 10)]), &spans_table);
        assert_eq!(b.undelivered(), 0);
        assert_eq!(b.take_spans().len(), 2);
    }

    #[test]
    fn a_call_ended_in_a_tail_call_says_so() {
        let mut b = builder(0);
        let mut events = stream(
            1,
            &[
                (0, EventKind::Call, 10),
                (MS, EventKind::Return, 10),
                (MS, EventKind::Call, 11),
                (2 * MS, EventKind::Return, 11),
            ],
        );
        events.events[1].aux = RETURN_INTO_TAIL_CALL;
        b.feed(&events, &spans_table);
        let spans = b.take_spans();
        let tail_call = |code: u32| spans.iter().find(|s| s.code == code).map(|s| s.tail_call);
        assert_eq!(tail_call(10), Some(true), "10 ended in its call of 11");
        assert_eq!(tail_call(11), Some(false), "11 returned");
    }

    #[test]
    fn a_call_running_when_its_process_was_killed_ends_at_the_last_sign_of_life() {
        let mut b = builder(0);
        b.feed(
            &stream(1, &[(0, EventKind::Call, 10), (MS, EventKind::Call, 11)]),
            &spans_table,
        );
        // Another thread, its call over: its time stays its own.
        b.feed(
            &stream(2, &[(0, EventKind::Call, 12), (MS, EventKind::Return, 12)]),
            &spans_table,
        );
        b.finish_open_alive_until(900 * MS);
        let spans = b.take_spans();
        let end = |code: u32| {
            spans
                .iter()
                .find(|s| s.code == code)
                .map(|s| (s.end, s.open))
        };
        assert_eq!(end(11), Some((900 * MS, true)));
        assert_eq!(end(10), Some((900 * MS, true)));
        assert_eq!(end(12), Some((MS, false)));
    }

    #[test]
    fn calls_nest_under_the_opentelemetry_span_that_was_current_and_short_ones_are_counted() {
        let mut b = builder(5);
        // span 1 ⊃ a (20 ms) ⊃ { b (2 ms) ⊃ c (1 ms), b (3 ms) }, then d (1 ms) directly in span 1.
        b.feed(
            &stream(
                1,
                &[
                    (0, SpanStart, 1),
                    (MS, Call, 10),
                    (2 * MS, Call, 11),
                    (2 * MS, Call, 12),
                    (3 * MS, Return, 12),
                    (4 * MS, Return, 11),
                    (5 * MS, Call, 11),
                    (8 * MS, Return, 11),
                    (21 * MS, Return, 10),
                    (22 * MS, Call, 13),
                    (23 * MS, Return, 13),
                    (30 * MS, SpanEnd, 1),
                ],
            ),
            &spans_table,
        );
        let spans = b.take_spans();
        assert_eq!(spans.len(), 1);
        let a = &spans[0];
        assert_eq!(
            (a.code, a.trace_id, a.parent_span_id, a.start, a.end),
            (10, TRACE, SDK_SPAN, MS, 21 * MS)
        );
        assert_ne!(a.span_id, 0);
        // b: 2 calls, 5 ms, self 4 ms (c's 1 ms is c's); c merged up from the dropped b.
        assert_eq!(a.calls, vec![agg(11, 2, 5, 4), agg(12, 1, 1, 1)]);
        assert_eq!(
            b.take_sdk_calls(),
            vec![SdkSpanCalls {
                trace_id: TRACE,
                span_id: SDK_SPAN,
                calls: vec![agg(13, 1, 1, 1)]
            }]
        );
    }

    /// fib(n)'s records, a call and a return each, 100 µs apart (each fib(n) with n ≥ 4 lasts ≥ 1 ms).
    fn fib_events(n: u32, ts: &mut u64, out: &mut Vec<(u64, EventKind, u32)>) {
        *ts += MS / 10;
        out.push((*ts, Call, 7));
        if n >= 2 {
            fib_events(n - 1, ts, out);
            fib_events(n - 2, ts, out);
        }
        *ts += MS / 10;
        out.push((*ts, Return, 7));
    }

    #[test]
    fn a_recursive_programs_calls_are_all_counted_wherever_the_passes_cut_its_records() {
        let mut events = Vec::new();
        fib_events(12, &mut 0, &mut events);
        let build = |piece: usize| {
            let mut b = builder(1);
            for part in events.chunks(piece) {
                b.feed(&stream(1, part), &spans_table);
            }
            b.finish_open();
            let mut spans = b.take_spans();
            spans.sort_by_key(|s| (s.start, s.end));
            let spans: Vec<_> = spans
                .into_iter()
                .map(|s| (s.start, s.end, s.calls))
                .collect();
            (spans, b.take_top_calls())
        };
        let (whole, top) = build(events.len());
        // fib(12) makes 465 calls: the kept ones (≥ 1 ms: fib(n ≥ 4) lasts ≥ 1.4 ms) plus those
        // counted on them; nothing at the top level (the outermost call is kept).
        let kept = whole.len() as u64;
        let counted: u64 = whole
            .iter()
            .flat_map(|(_, _, calls)| calls.iter().map(|c| c.count))
            .sum();
        assert_eq!((kept + counted, top.len()), (465, 0));
        // Fed in passes of any size, the same spans with the same aggregates (the fast paths for
        // leaves and short calls need both records of a pair in one pass, else the general one).
        for piece in [1, 2, 3, 7, 64] {
            assert_eq!(
                build(piece),
                (whole.clone(), top.clone()),
                "passes of {piece}"
            );
        }
    }

    #[test]
    fn the_threshold_is_inclusive_and_kept_calls_chain_their_parents() {
        let mut b = builder(5);
        // outer (12 ms) ⊃ mid (6 ms) ⊃ inner (5 ms): all three kept, chained; a 4.9 ms sibling is not.
        b.feed(
            &stream(
                1,
                &[
                    (0, Call, 1),
                    (MS, Call, 2),
                    (MS, Call, 3),
                    (6 * MS, Return, 3),
                    (7 * MS, Return, 2),
                    (7 * MS, Call, 4),
                    (7 * MS + 4_900_000, Return, 4),
                    (12 * MS, Return, 1),
                ],
            ),
            &spans_table,
        );
        let spans = b.take_spans();
        let by_code = |c: u32| spans.iter().find(|s| s.code == c).unwrap();
        assert_eq!(spans.len(), 3);
        let (outer, mid, inner) = (by_code(1), by_code(2), by_code(3));
        assert_eq!(inner.parent_span_id, mid.span_id);
        assert_eq!(mid.parent_span_id, outer.span_id);
        assert_eq!(
            outer.parent_span_id, 0,
            "no root context: a trace of its own"
        );
        assert!(
            outer.trace_id == mid.trace_id && mid.trace_id == inner.trace_id && outer.trace_id != 0
        );
        assert_eq!(
            outer.calls,
            vec![CallAggregate {
                code: 4,
                count: 1,
                total_ns: 4_900_000,
                self_ns: 4_900_000,
                errors: 0
            }]
        );
    }

    #[test]
    fn generators_are_timed_per_resumption() {
        let mut b = builder(2);
        // gen 7 runs 3 ms, yields; the caller works; gen resumes 1 ms, yields; resumes 4 ms, returns.
        b.feed(
            &stream(
                1,
                &[
                    (0, SpanStart, 1),
                    (0, Call, 7),
                    (3 * MS, Yield, 7),
                    (10 * MS, Resume, 7),
                    (11 * MS, Yield, 7),
                    (20 * MS, Resume, 7),
                    (24 * MS, Return, 7),
                    (25 * MS, SpanEnd, 1),
                ],
            ),
            &spans_table,
        );
        let spans = b.take_spans();
        assert_eq!(
            spans
                .iter()
                .map(|s| (s.start / MS, s.end / MS, s.resumed))
                .collect::<Vec<_>>(),
            vec![(0, 3, false), (20, 24, true)]
        );
        assert_eq!(b.take_sdk_calls()[0].calls, vec![agg(7, 1, 1, 1)]);
    }

    #[test]
    fn unwind_and_handled_records_name_their_own_exception() {
        let mut b = builder(1);
        let s = events(&[
            (0, Call, 1, 0),
            (MS, Raise, 1, 4), // an older ring's Raise: its type is not the unwind's
            (2 * MS, Handled, 1, 4),
            (3 * MS, Call, 2, 0),
            (4 * MS, Unwind, 2, 9), // g exits by type 9, no Raise record for it...
            (5 * MS, Handled, 1, 9), // ...caught in f
            (9 * MS, Return, 1, 0),
        ]);
        b.feed(&s, &spans_table);
        let spans = b.take_spans();
        let f = spans.iter().find(|s| s.code == 1).unwrap();
        let g = spans.iter().find(|s| s.code == 2).unwrap();
        assert_eq!(g.error, Some(9));
        assert_eq!(f.handled, vec![(2 * MS, 4), (5 * MS, 9)]);
    }

    #[test]
    fn exceptions_raised_caught_and_unwound() {
        let mut b = builder(1);
        let s = events(&[
            (0, Call, 1, 0),
            (MS, Call, 2, 0),
            (2 * MS, Raise, 2, 9),
            (3 * MS, Unwind, 2, 0), // g exits by ValueError (type 9)...
            (3 * MS, Raise, 1, 9),
            (4 * MS, Handled, 1, 0), // ...caught in f
            (5 * MS, Call, 3, 0),
            (5 * MS + 10, Raise, 3, 4),
            (5 * MS + 20, Unwind, 3, 0), // a short call failing: counted with its error
            (6 * MS, Handled, 1, 0),
            (9 * MS, Return, 1, 0),
        ]);
        b.feed(&s, &spans_table);
        let spans = b.take_spans();
        let f = spans.iter().find(|s| s.code == 1).unwrap();
        let g = spans.iter().find(|s| s.code == 2).unwrap();
        assert_eq!((g.error, g.parent_span_id), (Some(9), f.span_id));
        assert_eq!(f.error, None);
        assert_eq!(f.handled, vec![(4 * MS, 9), (6 * MS, 4)]);
        assert_eq!(
            f.calls,
            vec![CallAggregate {
                code: 3,
                count: 1,
                total_ns: 20,
                self_ns: 20,
                errors: 1
            }]
        );
    }

    #[test]
    fn a_frame_stays_small_enough_to_be_moved_inline() {
        // Frames are moved on every call the builder replays; past 128 bytes each move is a
        // call of memcpy (record mode's fib went from ~1,370 to ~1,500 instructions an event).
        assert!(
            std::mem::size_of::<Frame>() <= 128,
            "{}",
            std::mem::size_of::<Frame>()
        );
    }

    #[test]
    fn threads_build_their_own_stacks() {
        let mut b = builder(1);
        b.feed(&stream(1, &[(0, SpanStart, 1), (0, Call, 5)]), &spans_table);
        b.feed(
            &stream(2, &[(0, SpanStart, 2), (MS, Call, 6)]),
            &spans_table,
        );
        b.feed(
            &stream(1, &[(2 * MS, Return, 5), (3 * MS, SpanEnd, 1)]),
            &spans_table,
        );
        b.feed(
            &stream(2, &[(4 * MS, Return, 6), (5 * MS, SpanEnd, 2)]),
            &spans_table,
        );
        let spans = b.take_spans();
        assert_eq!(
            spans
                .iter()
                .map(|s| (s.code, s.parent_span_id, s.tid))
                .collect::<Vec<_>>(),
            vec![(5, SDK_SPAN, 101), (6, 0x5D5, 102)]
        );
    }

    #[test]
    fn a_span_started_inside_a_recorded_call_gets_that_call_as_parent() {
        let mut b = builder(50);
        b.feed(
            &stream(
                1,
                &[
                    (0, SpanStart, 1),
                    (1, Call, 5),
                    (2, Call, 6),
                    (3, SpanStart, 2),
                ],
            ),
            &spans_table,
        );
        let (trace, parent) = b.parent_for_span(1, 2, 0).unwrap();
        b.feed(
            &stream(
                1,
                &[
                    (4, SpanEnd, 2),
                    (5, Return, 6),
                    (6, Return, 5),
                    (7, SpanEnd, 1),
                ],
            ),
            &spans_table,
        );
        let spans = b.take_spans();
        // Both calls are kept though short: the span's parent chain must exist.
        let inner = spans.iter().find(|s| s.code == 6).unwrap();
        let outer = spans.iter().find(|s| s.code == 5).unwrap();
        assert_eq!((trace, parent), (TRACE, inner.span_id));
        assert_eq!(
            (inner.parent_span_id, outer.parent_span_id),
            (outer.span_id, SDK_SPAN)
        );
        // A span started directly in a span (no recorded call between) keeps its parent.
        let mut b = builder(50);
        b.feed(
            &stream(1, &[(0, SpanStart, 1), (1, SpanStart, 2)]),
            &spans_table,
        );
        assert_eq!(b.parent_for_span(1, 2, 0), None);
    }

    #[test]
    fn the_call_a_process_starts_from_is_kept_and_named_by_its_ids() {
        let mut b = builder(50);
        b.feed(
            &stream(1, &[(0, SpanStart, 1), (1, Call, 5), (2, Call, 6)]),
            &spans_table,
        );
        let (trace, span, code) = b.open_call(1, 0).unwrap();
        b.feed(
            &stream(1, &[(3, Return, 6), (4, Return, 5), (5, SpanEnd, 1)]),
            &spans_table,
        );
        let spans = b.take_spans();
        // Both calls are kept though short: the child's parent chain must exist.
        let inner = spans.iter().find(|s| s.code == 6).unwrap();
        let outer = spans.iter().find(|s| s.code == 5).unwrap();
        assert_eq!((trace, span, code), (TRACE, inner.span_id, Some(6)));
        assert_eq!(
            (inner.parent_span_id, outer.parent_span_id),
            (outer.span_id, SDK_SPAN)
        );
        // Directly in an OpenTelemetry span: that span, no code; on no open call: nothing.
        let mut b = builder(50);
        b.feed(&stream(1, &[(0, SpanStart, 1)]), &spans_table);
        assert_eq!(b.open_call(1, 0), Some((TRACE, SDK_SPAN, None)));
        assert_eq!(b.open_call(2, 0), None);
    }

    /// A builder of a dump's window (10 ms threshold), the last `detail` records kept whole.
    fn window_builder(detail: usize) -> Builder {
        Builder::new(BuilderOptions {
            threshold_ns: 10 * MS,
            window: true,
            detail_last_events: detail,
            root: Some((TRACE, 0x77)),
            ..Default::default()
        })
    }

    #[test]
    fn a_window_rebuilds_the_frames_open_before_it_and_keeps_those_open_after_it() {
        let mut b = window_builder(2);
        // The window starts inside main (9) inside span 1, inside step (8): step returns, main
        // calls tiny (3) twice and then crash (4), which never returns.
        b.feed(
            &stream(
                1,
                &[
                    (100, Call, 2),
                    (200, Return, 2),
                    (300, Return, 8),
                    (400, Call, 3),
                    (500, Return, 3),
                    (600, Call, 3),
                    (700, Return, 3),
                    (800, Call, 4),
                    (900, SpanEnd, 1),
                ],
            ),
            &spans_table,
        );
        b.finish_open();
        let spans = b.take_spans();
        let desc: Vec<_> = spans
            .iter()
            .map(|s| (s.code, s.start, s.end, s.open, s.started_before_window))
            .collect();
        // step: rebuilt from its return, started before the window; the last two records
        // (crash's call, the span end) are detail, so crash is kept; the span end closes the
        // span rebuilt under the calls, and with it crash (still open).
        assert!(desc.contains(&(8, 100, 300, false, true)), "{desc:?}");
        assert!(desc.contains(&(4, 800, 900, true, false)), "{desc:?}");
        let step = spans.iter().find(|s| s.code == 8).unwrap();
        assert_eq!(
            step.parent_span_id, SDK_SPAN,
            "the span ended in the window was open at its start"
        );
        assert_eq!(
            step.calls,
            vec![CallAggregate {
                code: 2,
                count: 1,
                total_ns: 100,
                self_ns: 100,
                errors: 0
            }]
        );
    }

    #[test]
    fn a_window_keeps_a_call_still_open_with_links_marked_open_and_linked() {
        let mut b = window_builder(100);
        let queue = LinkKind::Queue as u32;
        // Thread 1 got the item thread 2 put; both are still in their calls at the end.
        let mut consumer = events(&[
            (100, Call, 5, 0),
            (110, WaitBegin, 0, queue),
            (300, Effect, 42, queue),
        ]);
        consumer.stream = 1;
        let mut producer = events(&[(150, Call, 6, 0), (200, Cause, 42, queue)]);
        producer.stream = 2;
        b.feed(&consumer, &spans_table);
        b.feed(&producer, &spans_table);
        b.finish_open();
        let spans = b.take_spans();
        let (get, put) = (span_at(&spans, 5, 100), span_at(&spans, 6, 150));
        assert!(get.open && put.open, "{spans:?}");
        assert_eq!(get.links.len(), 1);
        let link = &get.links[0];
        assert_eq!((link.span_id, link.cause_code), (put.span_id, 6));
        assert_eq!(link.wait_ns, 90);
    }

    #[test]
    fn a_flush_releases_a_call_whose_link_waits_for_a_cause_still_running() {
        let mut b = builder(0);
        let queue = LinkKind::Queue as u32;
        // Thread 2 put the item thread 1 got, and is still in the call that put it.
        let mut producer = events(&[(100, Call, 6, 0), (150, Cause, 42, queue)]);
        producer.stream = 2;
        let mut consumer = events(&[
            (110, Call, 5, 0),
            (120, WaitBegin, 0, queue),
            (200, Effect, 42, queue),
            (210, Return, 5, 0),
        ]);
        consumer.stream = 1;
        b.feed(&producer, &spans_table);
        b.feed(&consumer, &spans_table);
        let before = b.take_spans();
        assert!(
            before.is_empty(),
            "held until its cause's call has a span: {before:?}"
        );
        // Everything recorded until now was read: the link is settled now, the cause's call
        // forced kept (it gets its span when it ends), and the call is handed over.
        let spans = b.take_spans_settled();
        let get = span_at(&spans, 5, 110);
        assert_eq!(get.links.len(), 1, "{spans:?}");
        assert_eq!(get.links[0].cause_code, 6);
        let mut rest = events(&[(300, Return, 6, 0)]);
        rest.stream = 2;
        b.feed(&rest, &spans_table);
        let put = span_at(&b.take_spans(), 6, 100).span_id;
        assert_eq!(get.links[0].span_id, put);
    }

    #[test]
    fn an_effect_after_a_wait_that_ended_without_one_does_not_take_that_waits_start() {
        let mut b = window_builder(100);
        let (queue, event) = (LinkKind::Queue as u32, LinkKind::Event as u32);
        // Thread 1 waited on an event that timed out (its wait's end says so), then got an item
        // without waiting (no WaitBegin of its own): its link did not wait.
        let forget = (WAIT_FORGET >> 32) as u32;
        let mut consumer = events(&[
            (100, Call, 5, 0),
            (110, WaitBegin, 0, event),
            (150, WaitBegin, 0, event | forget << 8),
            (300, Effect, 42, queue),
        ]);
        consumer.stream = 1;
        let mut producer = events(&[(160, Call, 6, 0), (200, Cause, 42, queue)]);
        producer.stream = 2;
        b.feed(&consumer, &spans_table);
        b.feed(&producer, &spans_table);
        b.finish_open();
        let spans = b.take_spans();
        let get = span_at(&spans, 5, 100);
        assert_eq!(get.links.len(), 1, "{spans:?}");
        assert_eq!(get.links[0].wait_ns, 0);
    }

    #[test]
    fn the_call_a_flight_recorded_process_started_from_gets_the_ids_chosen_then() {
        let mut b = window_builder(0);
        // main (5) calls start (6), which forks: the ids of span key 3 are start's; both
        // are short, both kept (start for the child's sake, main as its parent).
        b.feed(
            &events(&[
                (100, Call, 5, 0),
                (110, Call, 6, 0),
                (120, CallIds, 3, 0),
                (130, Return, 6, 0),
                (140, Return, 5, 0),
            ]),
            &spans_table,
        );
        b.finish_open();
        let spans = b.take_spans();
        let (main, start) = (span_at(&spans, 5, 100), span_at(&spans, 6, 110));
        assert_eq!((start.trace_id, start.span_id), (TRACE, 0x5D6));
        assert_eq!(start.parent_span_id, main.span_id);
        assert_eq!((main.trace_id, main.parent_span_id), (TRACE, 0x77));
    }

    #[test]
    fn an_overrun_ends_the_open_calls_instead_of_mismatching_returns() {
        let mut b = builder(0);
        b.feed(&stream(1, &[(0, Call, 1), (10, Call, 2)]), &spans_table);
        let mut after_gap = stream(1, &[(50, Return, 9), (60, Call, 3), (70, Return, 3)]);
        after_gap.lost = 40;
        b.feed(&after_gap, &spans_table);
        let spans = b.take_spans();
        let desc: Vec<_> = spans
            .iter()
            .map(|s| (s.code, s.start, s.end, s.open))
            .collect();
        assert_eq!(
            desc,
            vec![(2, 10, 10, true), (1, 0, 10, true), (3, 60, 70, false)]
        );
        assert_eq!(b.lost, 40);
    }
    fn events(list: &[(u64, EventKind, u32, u32)]) -> StreamEvents {
        let mut s = stream(1, &[]);
        s.events = list
            .iter()
            .map(|&(ts, kind, code, aux)| Event {
                ts,
                kind,
                code,
                aux,
            })
            .collect();
        s
    }

    fn after_awaiting(rest: &[(u64, EventKind, u32, u32)]) -> StreamEvents {
        events(&[&AWAITING[..], rest].concat())
    }

    fn span_at(spans: &[OutSpan], code: u32, start: u64) -> &OutSpan {
        spans
            .iter()
            .find(|s| s.code == code && s.start == start)
            .unwrap()
    }

    /// Tasks (keys 100 and 200) created under span 1; code 20 and 21 their coroutines, 22 a
    /// slow function, 23 a coroutine awaited by 20.
    const TASK_A: u32 = 100;
    const TASK_B: u32 = 200;
    /// Task A's first step: coroutine 20 awaits coroutine 23, which suspends.
    const AWAITING: [(u64, EventKind, u32, u32); 5] = [
        (0, TaskStep, TASK_A, 0),
        (0, Call, 20, 0),
        (10, Call, 23, 0),
        (20, Yield, 23, 0),
        (30, Yield, 20, 0),
    ];

    #[test]
    fn interleaved_asyncio_tasks_keep_stacks_of_their_own() {
        let mut b = builder(1);
        b.feed(
            &events(&[
                // A's first step: opens span 2 ("a") and awaits.
                (0, TaskStep, TASK_A, 0),
                (0, TaskParent, 1, 0),
                (0, Call, 20, 0),
                (MS / 2, SpanStart, 2, 0),
                (MS, Yield, 20, 0),
                // B's first step: opens span 3 ("b"), a slow call in it, awaits.
                (2 * MS, TaskStep, TASK_B, 0),
                (2 * MS, TaskParent, 1, 0),
                (2 * MS, Call, 21, 0),
                (2 * MS, SpanStart, 3, 0),
                (2 * MS, Call, 22, 0),
                (5 * MS, Return, 22, 0),
                (5 * MS, Yield, 21, 0),
                // A resumes: its slow call is in its own span "a", not in B's "b".
                (6 * MS, TaskStep, TASK_A, 0),
                (6 * MS, Resume, 20, 0),
                (6 * MS, Call, 22, 0),
                (9 * MS, Return, 22, 0),
                (9 * MS, SpanEnd, 2, 0),
                (10 * MS, Return, 20, 0),
                // B resumes and ends.
                (11 * MS, TaskStep, TASK_B, 0),
                (11 * MS, Resume, 21, 0),
                (11 * MS, SpanEnd, 3, 0),
                (12 * MS, Return, 21, 0),
            ]),
            &spans_table,
        );
        let spans = b.take_spans();
        let desc: Vec<_> = spans
            .iter()
            .map(|s| {
                (
                    s.code,
                    s.start / MS,
                    s.end / MS,
                    s.resumed,
                    s.parent_span_id,
                )
            })
            .collect();
        assert_eq!(
            desc,
            vec![
                (20, 0, 1, false, SDK_SPAN),
                (22, 2, 5, false, 0x5D6),
                (21, 2, 5, false, SDK_SPAN),
                (22, 6, 9, false, 0x5D5),
                (20, 6, 10, true, SDK_SPAN),
                (21, 11, 12, true, SDK_SPAN),
            ]
        );
        assert!(spans.iter().all(|s| s.trace_id == TRACE));
    }

    #[test]
    fn an_asyncio_task_cancelled_mid_await_ends_with_the_error_and_leaves_nothing_open() {
        let mut b = builder(0);
        const CANCELLED: u32 = 5;
        b.feed(
            &after_awaiting(&[
                // Cancelled: CancelledError thrown in at the await, through both coroutines.
                (100, TaskStep, TASK_A, 0),
                (100, Throw, 20, 0),
                (110, Throw, 23, 0),
                (120, Raise, 23, CANCELLED),
                (130, Unwind, 23, 0),
                (140, Raise, 20, CANCELLED),
                (150, Unwind, 20, 0),
                // The next task starts on a clean stack.
                (200, TaskStep, TASK_B, 0),
                (200, Call, 21, 0),
                (210, Return, 21, 0),
            ]),
            &spans_table,
        );
        let spans = b.take_spans();
        let desc: Vec<_> = spans
            .iter()
            .map(|s| (s.code, s.start, s.end, s.resumed, s.error))
            .collect();
        assert_eq!(
            desc,
            vec![
                (23, 10, 20, false, None),
                (20, 0, 30, false, None),
                (23, 110, 130, true, Some(CANCELLED)),
                (20, 100, 150, true, Some(CANCELLED)),
                (21, 200, 210, false, None),
            ]
        );
        let by = |code: u32, start: u64| span_at(&spans, code, start);
        assert_eq!(by(23, 110).parent_span_id, by(20, 100).span_id);
        assert_eq!(by(21, 200).parent_span_id, 0, "nothing of A left under B");
    }

    #[test]
    fn an_exception_through_an_await_fails_the_inner_coroutine_and_is_caught_in_the_outer() {
        let mut b = builder(0);
        const VALUE_ERROR: u32 = 9;
        b.feed(
            &after_awaiting(&[
                (100, TaskStep, TASK_A, 0),
                (100, Resume, 20, 0),
                (110, Resume, 23, 0),
                (120, Raise, 23, VALUE_ERROR),
                (130, Unwind, 23, 0),
                (140, Raise, 20, VALUE_ERROR),
                (150, Handled, 20, 0),
                (160, Return, 20, 0),
            ]),
            &spans_table,
        );
        let spans = b.take_spans();
        let by = |code: u32, start: u64| span_at(&spans, code, start);
        let (inner, outer) = (by(23, 110), by(20, 100));
        assert_eq!(
            (inner.error, inner.parent_span_id, inner.resumed),
            (Some(VALUE_ERROR), outer.span_id, true)
        );
        assert_eq!(
            (outer.error, outer.handled.clone(), outer.parent_span_id),
            (None, vec![(150, VALUE_ERROR)], 0)
        );
    }
}
