//! One BEAM process of a recorded trace, told as a story (docs/beam.md): its lives (start, end,
//! exit reason, crash, who started it), whom it waited for in `receive` (each wait a message
//! from another process ended, longest first, and the total per sender), its GenServer state
//! callback by callback, and its state at a moment — at a time, or when another process
//! crashed. The MCP tool `process_state` renders it; [`state_at`] is also the web span panel's
//! "state when this span started" (lanes.rs's `process_state`).
//!
//! The facts are devtrace-analyze's ([`devtrace_analyze::processes`]: lives, message waits);
//! this module selects one process's and puts times as offsets from the trace's start.

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::causality::{self, thread_of};
use devtrace_analyze::processes::{self as facts, CALL_EXCEPTION, EXIT_REASON, SUPERVISOR};
use devtrace_model::{SpanId, StatusCode};
use serde::Serialize;
use std::collections::HashMap;

use crate::causal::{STATE_AFTER, STATE_BEFORE};

/// Waits in `receive` shorter than this are counted, not listed, unless the caller says.
pub const DEFAULT_MIN_WAIT_NS: u64 = 1_000_000;
/// The restart count a supervisor's child carries (docs/beam.md, the supervision tree).
pub const RESTART: &str = "devtrace.beam.restart";
/// The process whose exit took this one down through a link.
pub const KILLED_BY: &str = "devtrace.beam.killed_by";
/// A process still alive when the recording ended (devtrace-analyze's, where the detectors
/// read it too).
pub use devtrace_analyze::processes::OPEN;

/// One life of a process (a restarted process has several), times from the trace's start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Life {
    pub span_id: SpanId,
    pub start_ns: u64,
    pub end_ns: u64,
    /// `devtrace.beam.exit_reason` as recorded (`:normal`, `RuntimeError`); `None` while alive.
    pub exit_reason: Option<String>,
    /// Its exit was an error (not `normal`, `shutdown`), and the error's short form
    /// (`exit:RuntimeError`, the span's status message).
    pub crashed: bool,
    pub error: Option<String>,
    /// Still alive when the recording ended.
    pub open: bool,
    /// The process that spawned it and the span it spawned it from, when recorded.
    pub started_by: Option<String>,
    pub started_in: Option<String>,
    pub supervisor: Option<String>,
    pub restart: Option<String>,
    pub killed_by: Option<String>,
}

/// A wait in `receive` that a message from another process ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// The process whose message ended the wait, and the span that sent it.
    pub sender: String,
    pub sent_by: Option<String>,
    /// The call the wait was in (`None`: at the process's top level).
    pub waiting_in: Option<String>,
    /// When the wait began and when the message came, from the trace's start.
    pub start_ns: u64,
    pub sent_ns: u64,
    pub waited_ns: u64,
}

/// All of one process's listed waits for one sender.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SenderTotal {
    pub sender: String,
    pub waits: usize,
    pub total_ns: u64,
}

/// A callback that recorded GenServer (or `gen_statem`) state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Callback {
    pub span_id: SpanId,
    pub name: String,
    pub start_ns: u64,
    pub end_ns: u64,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The exception it ended with (then it has no `after`).
    pub exception: Option<String>,
}

/// One process's story.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessStory {
    pub process: String,
    pub lives: Vec<Life>,
    /// Waits of at least the threshold, longest first.
    pub waits: Vec<Wait>,
    /// The waits under the threshold: how many, how long in all.
    pub short_waits: usize,
    pub short_wait_ns: u64,
    /// The listed waits' total per sender, largest first.
    pub senders: Vec<SenderTotal>,
    /// Its state timeline, in start order.
    pub callbacks: Vec<Callback>,
}

/// The state a process was in at a moment, and the callback that left it so.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateAt {
    pub state: String,
    pub callback_span_id: SpanId,
    pub callback: String,
    /// When that callback ended, from the trace's earliest start, nanoseconds.
    pub ended_ns: u64,
}

/// A moment to ask a process's state at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Nanoseconds from the trace's start.
    At(u64),
    /// When the named process crashed (its first crashed life's end; a process that never
    /// crashed: when its last ended life ended).
    Crash(String),
}

/// A process's state at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateAtMoment {
    /// The moment, from the trace's start.
    pub at_ns: u64,
    /// For [`Moment::Crash`]: the life whose end is the moment, and how many of that
    /// process's lives crashed.
    pub ended: Option<Life>,
    pub crashes: usize,
    /// The `after` of the last callback that had ended by then with a state.
    pub state: Option<StateAt>,
    /// A callback running at that moment (then the state is its `before`, being changed).
    pub inside: Option<Callback>,
    /// The last callback that raised by then, after the state's callback ended (the process
    /// died in it: its `before` was the state it crashed with).
    pub raised: Option<Callback>,
}

/// Why a question about a process has no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessError {
    /// The trace records no process at all.
    NoProcesses,
    /// No process of the trace has this name; `known` are the trace's processes.
    Unknown { name: String, known: Vec<String> },
    /// The process never ended in the recording.
    NeverEnded { name: String },
}

/// The trace's processes (their thread names), in order of first start.
pub fn names(trace: &AnalyzedTrace) -> Vec<String> {
    let mut lives: Vec<usize> = facts::lives(trace).collect();
    lives.sort_by_key(|&i| (trace.span(i).start_unix_nano, i));
    let mut out: Vec<String> = Vec::new();
    for name in lives
        .into_iter()
        .filter_map(|i| facts::thread_name(trace, i))
    {
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The life spans of `process`, in start order, or why there are none.
fn life_spans(trace: &AnalyzedTrace, process: &str) -> Result<Vec<usize>, ProcessError> {
    let mut lives: Vec<usize> = facts::lives(trace)
        .filter(|&i| facts::thread_name(trace, i).as_deref() == Some(process))
        .collect();
    if lives.is_empty() {
        let known = names(trace);
        return Err(if known.is_empty() {
            ProcessError::NoProcesses
        } else {
            ProcessError::Unknown {
                name: process.to_owned(),
                known,
            }
        });
    }
    lives.sort_by_key(|&i| (trace.span(i).start_unix_nano, i));
    Ok(lives)
}

/// The story of `process` in `trace`, listing its waits of at least `min_wait_ns`.
pub fn story(
    trace: &AnalyzedTrace,
    process: &str,
    min_wait_ns: u64,
) -> Result<ProcessStory, ProcessError> {
    let index = causality::span_index(trace);
    let lives = life_spans(trace, process)?
        .into_iter()
        .map(|i| life(trace, &index, i))
        .collect();
    let all = waits(trace, process);
    let (mut waits, short): (Vec<Wait>, Vec<Wait>) =
        all.into_iter().partition(|w| w.waited_ns >= min_wait_ns);
    waits.sort_by(|a, b| {
        b.waited_ns
            .cmp(&a.waited_ns)
            .then(a.start_ns.cmp(&b.start_ns))
    });
    Ok(ProcessStory {
        process: process.to_owned(),
        lives,
        senders: totals(&waits),
        short_waits: short.len(),
        short_wait_ns: short.iter().map(|w| w.waited_ns).sum(),
        waits,
        callbacks: callbacks(trace, process),
    })
}

fn life(trace: &AnalyzedTrace, index: &HashMap<SpanId, usize>, i: usize) -> Life {
    let span = trace.span(i);
    let origin = trace.earliest_start();
    let spawn = causality::waits_of(trace, index, i)
        .into_iter()
        .find(|w| w.kind == "thread.start");
    let exit_reason = facts::text(trace, i, EXIT_REASON);
    Life {
        span_id: span.span_id,
        start_ns: span.start_unix_nano.saturating_sub(origin),
        end_ns: span.end_unix_nano.saturating_sub(origin),
        crashed: span.status.code == StatusCode::Error,
        error: (span.status.code == StatusCode::Error && !span.status.message.is_empty())
            .then(|| span.status.message.clone()),
        open: span
            .attr(OPEN)
            .is_some_and(|v| !matches!(v, devtrace_model::AnyValue::Bool(false))),
        exit_reason,
        started_by: spawn.as_ref().and_then(|w| w.cause_thread.clone()),
        started_in: spawn.and_then(|w| w.cause.map(|c| trace.span(c).name.clone())),
        supervisor: facts::text(trace, i, SUPERVISOR),
        restart: facts::text(trace, i, RESTART),
        killed_by: facts::text(trace, i, KILLED_BY),
    }
}

/// Every wait of `process` a message from another process ended, in tree order.
fn waits(trace: &AnalyzedTrace, process: &str) -> Vec<Wait> {
    let origin = trace.earliest_start();
    facts::message_waits(trace)
        .into_iter()
        .filter(|w| w.waiter == process)
        .map(|w| {
            let waiting_in = trace.tree.parent[w.wait.waiter]
                .filter(|&p| !facts::is_life(trace, p))
                .map(|p| trace.span(p).name.clone());
            Wait {
                sent_by: w.wait.cause.map(|c| trace.span(c).name.clone()),
                waiting_in,
                start_ns: w.start_unix_nano.saturating_sub(origin),
                sent_ns: w.end_unix_nano.saturating_sub(origin),
                waited_ns: w.nanos(),
                sender: w.sender,
            }
        })
        .collect()
}

fn totals(waits: &[Wait]) -> Vec<SenderTotal> {
    let mut out: Vec<SenderTotal> = Vec::new();
    for wait in waits {
        match out.iter_mut().find(|t| t.sender == wait.sender) {
            Some(total) => {
                total.waits += 1;
                total.total_ns += wait.waited_ns;
            }
            None => out.push(SenderTotal {
                sender: wait.sender.clone(),
                waits: 1,
                total_ns: wait.waited_ns,
            }),
        }
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.total_ns));
    out
}

/// The spans of `process` that recorded state (its callbacks), in start order.
fn callback_spans(trace: &AnalyzedTrace, process: &str) -> Vec<usize> {
    let mut out: Vec<usize> = (0..trace.spans.spans.len())
        .filter(|&c| {
            let span = trace.span(c);
            span.attr(STATE_AFTER).is_some() || span.attr(STATE_BEFORE).is_some()
        })
        .filter(|&c| thread_of(trace, c).as_deref() == Some(process))
        .collect();
    out.sort_by_key(|&c| (trace.span(c).start_unix_nano, c));
    out
}

fn callback(trace: &AnalyzedTrace, c: usize) -> Callback {
    let span = trace.span(c);
    let origin = trace.earliest_start();
    Callback {
        span_id: span.span_id,
        name: span.name.clone(),
        start_ns: span.start_unix_nano.saturating_sub(origin),
        end_ns: span.end_unix_nano.saturating_sub(origin),
        before: facts::text(trace, c, STATE_BEFORE),
        after: facts::text(trace, c, STATE_AFTER),
        exception: facts::text(trace, c, CALL_EXCEPTION),
    }
}

fn callbacks(trace: &AnalyzedTrace, process: &str) -> Vec<Callback> {
    callback_spans(trace, process)
        .into_iter()
        .map(|c| callback(trace, c))
        .collect()
}

/// The state of `process` at `at` (Unix nanoseconds): the `after` of its last callback that
/// had ended by then and begun before it, leaving out span `skip` (the span whose start `at`
/// is). `None` when no callback had.
pub fn state_at(
    trace: &AnalyzedTrace,
    process: &str,
    at: u64,
    skip: Option<usize>,
) -> Option<StateAt> {
    last_ended(trace, process, at, skip).map(|c| StateAt {
        state: facts::text(trace, c, STATE_AFTER).unwrap_or_default(),
        callback_span_id: trace.span(c).span_id,
        callback: trace.span(c).name.clone(),
        ended_ns: trace
            .span(c)
            .end_unix_nano
            .saturating_sub(trace.earliest_start()),
    })
}

/// The last callback of `process` with an `after` state ended by `at` and begun before it
/// (other than `skip`), the latest end first.
fn last_ended(trace: &AnalyzedTrace, process: &str, at: u64, skip: Option<usize>) -> Option<usize> {
    (0..trace.spans.spans.len())
        .filter(|&c| {
            let span = trace.span(c);
            Some(c) != skip
                && span.end_unix_nano <= at
                && span.start_unix_nano < at
                && span.attr(STATE_AFTER).is_some()
        })
        .filter(|&c| thread_of(trace, c).as_deref() == Some(process))
        .max_by_key(|&c| latest(trace, c))
}

/// The order of "last ended": by end, then start, then index.
fn latest(trace: &AnalyzedTrace, c: usize) -> (u64, u64, usize) {
    let span = trace.span(c);
    (span.end_unix_nano, span.start_unix_nano, c)
}

/// The state of `process` at `moment`.
pub fn state_at_moment(
    trace: &AnalyzedTrace,
    process: &str,
    moment: &Moment,
) -> Result<StateAtMoment, ProcessError> {
    life_spans(trace, process)?;
    let origin = trace.earliest_start();
    let (at, ended, crashes) = match moment {
        Moment::At(offset) => (origin.saturating_add(*offset), None, 0),
        Moment::Crash(other) => {
            let index = causality::span_index(trace);
            let lives: Vec<Life> = life_spans(trace, other)?
                .into_iter()
                .map(|i| life(trace, &index, i))
                .collect();
            let crashes = lives.iter().filter(|l| l.crashed).count();
            let end = lives
                .iter()
                .find(|l| l.crashed)
                .or_else(|| lives.iter().rev().find(|l| !l.open))
                .cloned()
                .ok_or_else(|| ProcessError::NeverEnded {
                    name: other.clone(),
                })?;
            (origin + end.end_ns, Some(end), crashes)
        }
    };
    let state = state_at(trace, process, at, None);
    let left_state = state.as_ref().map_or(0, |s| origin + s.ended_ns);
    let spans = callback_spans(trace, process);
    let raised = spans
        .iter()
        .copied()
        .filter(|&c| {
            let span = trace.span(c);
            span.attr(CALL_EXCEPTION).is_some()
                && span.start_unix_nano < at
                && span.end_unix_nano <= at
                && span.end_unix_nano >= left_state
        })
        .max_by_key(|&c| latest(trace, c))
        .map(|c| callback(trace, c));
    let inside = spans
        .into_iter()
        .rfind(|&c| {
            let span = trace.span(c);
            span.start_unix_nano < at && at < span.end_unix_nano
        })
        .map(|c| callback(trace, c));
    Ok(StateAtMoment {
        at_ns: at - origin,
        ended,
        crashes,
        state,
        inside,
        raised,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::span;
    use devtrace_model::{KeyValue, Link, Resource, Scope, Span, SpanBatch, TraceId, semconv};

    const MS: u64 = 1_000_000;

    fn on(mut s: Span, process: &str) -> Span {
        s.attributes.push(KeyValue::new("thread.name", process));
        s.attributes
            .push(KeyValue::new("devtrace.beam.process", process));
        s
    }

    fn life(id: u8, name: &str, start: u64, end: u64, reason: &str) -> Span {
        let mut s = on(
            span(9, id, Some(1), &format!("process {name}"), start, end),
            name,
        );
        s.attributes.push(KeyValue::new(EXIT_REASON, reason));
        if reason != ":normal" {
            s.status.code = StatusCode::Error;
            s.status.message = format!("exit:{reason}");
        }
        s
    }

    fn state(mut s: Span, before: &str, after: Option<&str>) -> Span {
        s.attributes.push(KeyValue::new(STATE_BEFORE, before));
        match after {
            Some(after) => s.attributes.push(KeyValue::new(STATE_AFTER, after)),
            None => s.attributes.push(KeyValue::new(
                CALL_EXCEPTION,
                "%RuntimeError{message: \"x\"}",
            )),
        }
        s
    }

    fn with(mut s: Span, key: &str, value: &str) -> Span {
        s.attributes.push(KeyValue::new(key, value));
        s
    }

    fn linked(mut s: Span, cause: u8, kind: &str, at: u64, waited: u64) -> Span {
        s.links.push(Link {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([cause; 8]),
            trace_state: String::new(),
            attributes: vec![
                KeyValue::new(semconv::causal::LINK_KIND, kind),
                KeyValue::new(semconv::causal::LINK_CAUSE_TIME, at as i64),
                KeyValue::new(semconv::causal::LINK_WAIT_NS, waited as i64),
            ],
            dropped_attributes_count: 0,
            flags: 0,
        });
        s
    }

    /// `elixir shop.exs` (0–200 ms): Cart.Server (10–190) with init, then handle_call at 40–60
    /// (items 0 → 1) and 120–150 (1 → 3); Shopper (20–160), spawned by the run's span 1, waits
    /// 18 ms in Shop.buy/1 for the first reply (sent by the server's life at 60 ms), 0.5 ms for
    /// a second message from Cart.Server, 35 ms in Shop.buy/1 for the second reply (at 150 ms);
    /// Pay.Worker (30–100) crashes at 100 ms, while the server is between calls; Feed.Worker
    /// crashes in its own handle_info at 170 ms (its terminate/2 runs after it).
    fn shop() -> AnalyzedTrace {
        let spans = vec![
            span(9, 1, None, "elixir shop.exs", 0, 200 * MS),
            life(2, "Cart.Server", 10 * MS, 190 * MS, ":normal"),
            state(
                span(9, 3, Some(2), "Cart.Server.init/1", 10 * MS, 11 * MS),
                "%{items: 0}",
                Some("%{items: 0}"),
            ),
            state(
                span(9, 4, Some(2), "Cart.Server.handle_call/3", 40 * MS, 60 * MS),
                "%{items: 0}",
                Some("%{items: 1}"),
            ),
            state(
                span(
                    9,
                    5,
                    Some(2),
                    "Cart.Server.handle_call/3",
                    120 * MS,
                    150 * MS,
                ),
                "%{items: 1}",
                Some("%{items: 3}"),
            ),
            linked(
                life(10, "Shopper", 20 * MS, 160 * MS, ":normal"),
                1,
                "thread.start",
                20 * MS,
                0,
            ),
            span(9, 11, Some(10), "Shop.buy/1", 40 * MS, 155 * MS),
            linked(
                span(9, 12, Some(11), "receive", 42 * MS, 60 * MS),
                2,
                "message",
                60 * MS,
                18 * MS,
            ),
            linked(
                span(9, 13, Some(10), "receive", 70 * MS, 70 * MS + MS / 2),
                4,
                "message",
                70 * MS + MS / 2,
                MS / 2,
            ),
            linked(
                span(9, 14, Some(11), "receive", 115 * MS, 150 * MS),
                2,
                "message",
                150 * MS,
                35 * MS,
            ),
            life(20, "Pay.Worker", 30 * MS, 100 * MS, "RuntimeError"),
            life(30, "Feed.Worker", 100 * MS, 170 * MS, "RuntimeError"),
            state(
                span(9, 31, Some(30), "Feed.Worker.init/1", 100 * MS, 101 * MS),
                "nil",
                Some("%{polls: 0}"),
            ),
            state(
                span(
                    9,
                    32,
                    Some(30),
                    "Feed.Worker.handle_info/2",
                    165 * MS,
                    169 * MS,
                ),
                "%{polls: 0}",
                None,
            ),
            // terminate/2 is given the state and returns none: it is no crash.
            with(
                span(
                    9,
                    33,
                    Some(30),
                    "Feed.Worker.terminate/2",
                    169 * MS,
                    169 * MS,
                ),
                STATE_BEFORE,
                "%{polls: 0}",
            ),
        ];
        AnalyzedTrace::new(
            TraceId([9; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans,
            },
        )
    }

    #[test]
    fn a_process_waits_are_listed_longest_first_with_their_sender_and_totals() {
        let trace = shop();
        let story = story(&trace, "Shopper", DEFAULT_MIN_WAIT_NS).unwrap();
        let waited: Vec<u64> = story.waits.iter().map(|w| w.waited_ns).collect();
        assert_eq!(
            waited,
            [35 * MS, 18 * MS],
            "longest first, the short one left out"
        );
        let first = &story.waits[0];
        assert_eq!(first.sender, "Cart.Server");
        assert_eq!(first.sent_by.as_deref(), Some("process Cart.Server"));
        assert_eq!(first.waiting_in.as_deref(), Some("Shop.buy/1"));
        assert_eq!((first.start_ns, first.sent_ns), (115 * MS, 150 * MS));
        assert_eq!((story.short_waits, story.short_wait_ns), (1, MS / 2));
        assert_eq!(
            story.senders,
            [SenderTotal {
                sender: "Cart.Server".into(),
                waits: 2,
                total_ns: 53 * MS
            }]
        );
        let all = super::story(&trace, "Shopper", 0).unwrap();
        assert_eq!(all.waits.len(), 3);
        assert_eq!(all.waits[2].waiting_in, None, "a wait at top level");
        assert_eq!(
            all.waits[2].sent_by.as_deref(),
            Some("Cart.Server.handle_call/3")
        );
    }

    #[test]
    fn a_process_lives_say_how_they_ended_and_who_started_them() {
        let trace = shop();
        let shopper = story(&trace, "Shopper", DEFAULT_MIN_WAIT_NS).unwrap();
        let [life] = shopper.lives.as_slice() else {
            panic!("{:?}", shopper.lives)
        };
        assert_eq!((life.start_ns, life.end_ns), (20 * MS, 160 * MS));
        assert_eq!(life.exit_reason.as_deref(), Some(":normal"));
        assert!(!life.crashed && !life.open);
        assert_eq!(life.started_in.as_deref(), Some("elixir shop.exs"));
        let pay = story(&trace, "Pay.Worker", DEFAULT_MIN_WAIT_NS).unwrap();
        assert!(pay.lives[0].crashed);
        assert_eq!(pay.lives[0].exit_reason.as_deref(), Some("RuntimeError"));
        assert_eq!(pay.lives[0].error.as_deref(), Some("exit:RuntimeError"));
        assert_eq!(life.error, None);
        assert!(pay.waits.is_empty() && pay.callbacks.is_empty());
    }

    #[test]
    fn the_state_timeline_is_each_callback_with_its_before_and_after() {
        let trace = shop();
        let story = story(&trace, "Cart.Server", DEFAULT_MIN_WAIT_NS).unwrap();
        let timeline: Vec<(&str, u64, Option<&str>, Option<&str>)> = story
            .callbacks
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.start_ns,
                    c.before.as_deref(),
                    c.after.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            timeline,
            [
                (
                    "Cart.Server.init/1",
                    10 * MS,
                    Some("%{items: 0}"),
                    Some("%{items: 0}")
                ),
                (
                    "Cart.Server.handle_call/3",
                    40 * MS,
                    Some("%{items: 0}"),
                    Some("%{items: 1}")
                ),
                (
                    "Cart.Server.handle_call/3",
                    120 * MS,
                    Some("%{items: 1}"),
                    Some("%{items: 3}")
                ),
            ]
        );
    }

    #[test]
    fn the_state_when_another_process_crashed_is_the_last_callbacks_after() {
        let trace = shop();
        let moment =
            state_at_moment(&trace, "Cart.Server", &Moment::Crash("Pay.Worker".into())).unwrap();
        assert_eq!(moment.at_ns, 100 * MS);
        assert_eq!(moment.crashes, 1);
        assert_eq!(
            moment.ended.unwrap().exit_reason.as_deref(),
            Some("RuntimeError")
        );
        let state = moment.state.unwrap();
        assert_eq!(state.state, "%{items: 1}");
        assert_eq!(
            (state.callback.as_str(), state.ended_ns),
            ("Cart.Server.handle_call/3", 60 * MS)
        );
        assert_eq!((moment.inside, moment.raised), (None, None));
    }

    #[test]
    fn inside_a_callback_the_state_is_being_changed_from_its_before() {
        let trace = shop();
        let moment = state_at_moment(&trace, "Cart.Server", &Moment::At(130 * MS)).unwrap();
        assert_eq!(moment.state.unwrap().state, "%{items: 1}");
        let inside = moment.inside.unwrap();
        assert_eq!(
            (inside.start_ns, inside.before.as_deref()),
            (120 * MS, Some("%{items: 1}"))
        );
        // Before any callback ended there is no state.
        let early = state_at_moment(&trace, "Cart.Server", &Moment::At(5 * MS)).unwrap();
        assert_eq!((early.state, early.inside), (None, None));
    }

    #[test]
    fn a_process_that_crashed_in_its_own_callback_says_the_state_it_crashed_with() {
        let trace = shop();
        let moment =
            state_at_moment(&trace, "Feed.Worker", &Moment::Crash("Feed.Worker".into())).unwrap();
        assert_eq!(moment.at_ns, 170 * MS);
        assert_eq!(moment.state.unwrap().state, "%{polls: 0}", "init's after");
        let raised = moment.raised.unwrap();
        assert_eq!(raised.name, "Feed.Worker.handle_info/2");
        assert_eq!(raised.before.as_deref(), Some("%{polls: 0}"));
        assert!(raised.exception.unwrap().contains("RuntimeError"));
    }

    #[test]
    fn an_unknown_process_is_refused_with_the_traces_processes() {
        let trace = shop();
        let unknown = story(&trace, "Cart.Servr", DEFAULT_MIN_WAIT_NS).unwrap_err();
        assert_eq!(
            unknown,
            ProcessError::Unknown {
                name: "Cart.Servr".into(),
                known: vec![
                    "Cart.Server".into(),
                    "Shopper".into(),
                    "Pay.Worker".into(),
                    "Feed.Worker".into()
                ],
            }
        );
        let crash = state_at_moment(&trace, "Cart.Server", &Moment::Crash("Nobody".into()));
        assert!(matches!(crash, Err(ProcessError::Unknown { name, .. }) if name == "Nobody"));
        let empty = AnalyzedTrace::new(
            TraceId([9; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans: vec![span(9, 1, None, "python app.py", 0, MS)],
            },
        );
        assert_eq!(
            story(&empty, "Cart.Server", 0).unwrap_err(),
            ProcessError::NoProcesses
        );
    }

    #[test]
    fn a_process_that_never_ended_gives_no_crash_moment() {
        let trace = shop();
        let mut spans = trace.spans.clone();
        let life = spans
            .spans
            .iter_mut()
            .find(|s| s.name == "process Pay.Worker")
            .unwrap();
        life.status.code = StatusCode::Unset;
        life.attributes.retain(|kv| kv.key != EXIT_REASON);
        life.attributes.push(KeyValue::new(OPEN, true));
        let trace = AnalyzedTrace::new(TraceId([9; 16]), spans);
        assert_eq!(
            state_at_moment(&trace, "Cart.Server", &Moment::Crash("Pay.Worker".into())),
            Err(ProcessError::NeverEnded {
                name: "Pay.Worker".into()
            })
        );
    }
}
