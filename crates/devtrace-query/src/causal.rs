//! Waits attributed to the call that ended them, as every face shows them: the wait in words
//! ("waited 40.0 ms for "app.produce" (queue put, thread "worker-1", at +60.0 ms)"), the
//! arrows a waterfall draws from the cause to the waiting span, and one thread's recorded
//! calls in order with their values, for stepping through a run.
//!
//! The analysis ([`devtrace_analyze::causality`]) reads the causal links; this module words
//! and shapes them. Recorded names are quoted here (they are data); a face shows the text as
//! it is.

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::causality::{CausalWait, causal_waits, hand_over, span_index, thread_of};
use devtrace_analyze::errors::is_error_span;
use devtrace_model::{AnyValue, SpanId, TraceId, semconv};
use serde::Serialize;

use crate::text::quote;
use crate::timefmt::format_duration;

/// The recorder's value attributes (docs/conventions.md, "Recorded calls").
pub const CALL_ARGUMENTS: &str = "devtrace.call.arguments";
pub const CALL_RETURN: &str = "devtrace.call.return";
pub const CALL_EXCEPTION: &str = "devtrace.call.exception";
/// The state a BEAM GenServer callback was given, and the state in what it returned
/// (docs/beam.md, "GenServer state").
pub const STATE_BEFORE: &str = "devtrace.beam.state.before";
pub const STATE_AFTER: &str = "devtrace.beam.state.after";

/// One wait and what ended it, for a span panel or an answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct WaitView {
    /// `queue`, `lock`, `thread.join`, … as recorded.
    pub kind: String,
    /// How the hand-over reads: `queue put`, `lock release`, `thread end`.
    pub hand_over: String,
    pub cause_trace_id: TraceId,
    pub cause_span_id: SpanId,
    /// Whether the cause's span is in this trace (a viewer can go to it).
    pub cause_in_trace: bool,
    pub cause_function: Option<String>,
    pub cause_thread: Option<String>,
    /// How long the span waited for it, nanoseconds (from the link, else the span's time up
    /// to the cause).
    pub waited_ns: u64,
    /// When the cause came, from the trace's earliest start, nanoseconds.
    pub cause_offset_ns: Option<u64>,
    /// The type of the object waited on (`queue.Queue`).
    pub object: Option<String>,
    /// The whole wait in words, recorded names quoted.
    pub text: String,
}

/// `wait` as a face shows it.
pub fn wait_view(trace: &AnalyzedTrace, wait: &CausalWait, origin: u64) -> WaitView {
    let waited = wait
        .waited_nanos
        .unwrap_or_else(|| wait.wait_end(trace) - wait.wait_start(trace));
    let offset = wait
        .cause_time_unix_nano
        .map(|at| at.saturating_sub(origin));
    WaitView {
        kind: wait.kind.clone(),
        hand_over: hand_over(&wait.kind).to_owned(),
        cause_trace_id: wait.cause_trace_id,
        cause_span_id: wait.cause_span_id,
        cause_in_trace: wait.cause.is_some(),
        cause_function: wait.cause_function.clone(),
        cause_thread: wait.cause_thread.clone(),
        waited_ns: waited,
        cause_offset_ns: offset,
        object: wait.object.clone(),
        text: wait_text(wait, waited, offset),
    }
}

/// "waited 40.0 ms for "app.produce" (queue put, thread "worker-1", at +60.0 ms)"; a link
/// that did not wait (a thread's run after its start, a future's job after its submit):
/// "follows "app.submit" (future submit, …)".
fn wait_text(wait: &CausalWait, waited: u64, offset: Option<u64>) -> String {
    if let Some(text) = process_wait_text(wait, waited, offset) {
        return text;
    }
    let how = match (wait.kind.as_str(), waited) {
        ("future", 0) => "future submit",
        (kind, _) => hand_over(kind),
    };
    let mut detail = vec![how.to_owned()];
    if let Some(thread) = &wait.cause_thread {
        detail.push(format!("thread {}", quote(thread)));
    }
    if let Some(offset) = offset {
        detail.push(format!("at +{}", format_duration(offset)));
    }
    let cause = match &wait.cause_function {
        Some(function) => quote(function),
        None => format!("span {}", wait.cause_span_id),
    };
    match waited {
        0 => format!("follows {cause} ({})", detail.join(", ")),
        _ => format!(
            "waited {} for {cause} ({})",
            format_duration(waited),
            detail.join(", ")
        ),
    }
}

/// A BEAM process's wait, in the words of processes: "waited 120.0 ms for a message from
/// "Cart.Server" (sent at +140.0 ms)", "… (sent by "Cart.Server.add/1" at +81.0 ms)" when
/// the sender's function is recorded, "follows the exit of "Feed.Worker" (at +12.0 ms)" for a
/// monitor's `'DOWN'` or a trapped `'EXIT'`. `None` for other waits, or when the cause's
/// process is not known.
fn process_wait_text(wait: &CausalWait, waited: u64, offset: Option<u64>) -> Option<String> {
    let process = quote(wait.cause_thread.as_deref()?);
    let at = offset.map(|o| format!("at +{}", format_duration(o)));
    let what = match (wait.kind.as_str(), wait.object.as_deref()) {
        ("message", _) => {
            let by = wait
                .cause_function
                .as_deref()
                .filter(|f| !f.starts_with("process "))
                .map(|f| format!("by {}", quote(f)));
            let sent: Vec<String> = by.into_iter().chain(at).collect();
            match sent.is_empty() {
                true => format!("a message from {process}"),
                false => format!("a message from {process} (sent {})", sent.join(" ")),
            }
        }
        ("thread.join", Some("erlang.process")) => match at {
            Some(at) => format!("the exit of {process} ({at})"),
            None => format!("the exit of {process}"),
        },
        _ => return None,
    };
    Some(match waited {
        0 => format!("follows {what}"),
        _ => format!("waited {} for {what}", format_duration(waited)),
    })
}

/// The causal waits recorded on span `index`, as a face shows them.
pub fn waits_of_span(trace: &AnalyzedTrace, index: usize) -> Vec<WaitView> {
    if trace.span(index).links.is_empty() {
        return Vec::new();
    }
    let origin = trace.earliest_start();
    devtrace_analyze::causality::waits_of(trace, &span_index(trace), index)
        .iter()
        .map(|w| wait_view(trace, w, origin))
        .collect()
}

/// Every causal wait of `trace` by waiting span index, for rendering a tree.
pub fn waits_by_span(trace: &AnalyzedTrace) -> Vec<Vec<WaitView>> {
    let mut out = vec![Vec::new(); trace.spans.spans.len()];
    let origin = trace.earliest_start();
    for wait in causal_waits(trace) {
        out[wait.waiter].push(wait_view(trace, &wait, origin));
    }
    out
}

/// The waits of one waterfall row, for a viewer that shows them beside the row (the terminal
/// dashboard) without asking for the span's detail.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct RowWaits {
    /// The waiting span's row in the waterfall.
    pub row: u32,
    pub waits: Vec<WaitView>,
}

/// The rows of `trace` that waited, with their waits; `row_of` maps a span index to its row.
pub fn row_waits(trace: &AnalyzedTrace, row_of: &[u32]) -> Vec<RowWaits> {
    let mut out: Vec<RowWaits> = waits_by_span(trace)
        .into_iter()
        .enumerate()
        .filter(|(_, waits)| !waits.is_empty())
        .map(|(i, waits)| RowWaits {
            row: row_of[i],
            waits,
        })
        .collect();
    out.sort_by_key(|r| r.row);
    out
}

/// One arrow of a waterfall: from the cause's span to the span that waited for it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CausalArrow {
    pub cause: SpanId,
    pub waiter: SpanId,
    pub kind: String,
    /// When the cause came (where the arrow starts), from the trace's earliest start.
    pub at_ns: u64,
    /// How long the waiter had waited, nanoseconds.
    pub waited_ns: u64,
}

/// The arrows of every causal wait whose cause is in `trace`.
pub fn arrows(trace: &AnalyzedTrace) -> Vec<CausalArrow> {
    let origin = trace.earliest_start();
    causal_waits(trace)
        .into_iter()
        .filter_map(|wait| {
            let cause = wait.cause?;
            let end = wait.wait_end(trace);
            Some(CausalArrow {
                cause: trace.span(cause).span_id,
                waiter: trace.span(wait.waiter).span_id,
                kind: wait.kind.clone(),
                at_ns: end.saturating_sub(origin),
                waited_ns: end - wait.wait_start(trace),
            })
        })
        .collect()
}

/// One thread's recorded calls in start order, for stepping through them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadSteps {
    /// The thread (`thread.name`, else `thread.id`); `None` when the spans do not say, and
    /// the steps are the calls under the span's outermost one.
    pub thread: Option<String>,
    /// The step of the span asked about.
    pub current: usize,
    pub steps: Vec<Step>,
    /// Calls left out beyond [`MAX_STEPS`].
    pub omitted: usize,
}

/// One call of a step-through.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub span_id: SpanId,
    pub name: String,
    /// Nesting below the thread's outermost call.
    pub depth: u32,
    /// From the trace's earliest start, nanoseconds.
    pub offset_ns: u64,
    pub duration_ns: u64,
    pub failed: bool,
    /// The values the recorder kept (`devtrace.call.*`), as recorded.
    pub arguments: Option<String>,
    pub returned: Option<String>,
    /// The exception it ended by: the recorded summary, else the exception event's type and
    /// message.
    pub raised: Option<String>,
    /// What the call waited for, when it waited for another thread.
    pub waited_for: Vec<WaitView>,
    /// A GenServer callback's state before and after it, as recorded.
    pub state_before: Option<String>,
    pub state_after: Option<String>,
}

/// Most calls one step-through holds (those nearest the span asked about).
pub const MAX_STEPS: usize = 2_000;

/// The recorded calls of the thread span `index` ran on, in start order, around `index`.
pub fn thread_steps(trace: &AnalyzedTrace, index: usize) -> ThreadSteps {
    let thread = thread_of(trace, index);
    let mut top = index;
    while let Some(parent) = trace.tree.parent[top] {
        top = parent;
    }
    let mut calls: Vec<(usize, usize)> = match &thread {
        Some(name) => trace
            .tree
            .walk()
            .filter(|(i, _)| thread_of(trace, *i).as_ref() == Some(name))
            .collect(),
        None => trace
            .subtree(top)
            .iter()
            .map(|&i| (i, trace.tree.depth(i)))
            .collect(),
    };
    calls.sort_by_key(|(i, _)| (trace.span(*i).start_unix_nano, *i));
    let base = calls.iter().map(|(_, d)| *d).min().unwrap_or(0);
    let at = calls.iter().position(|(i, _)| *i == index).unwrap_or(0);
    let from = at.saturating_sub(MAX_STEPS / 2);
    let to = (from + MAX_STEPS).min(calls.len());
    let from = to.saturating_sub(MAX_STEPS);
    let origin = trace.earliest_start();
    let index_map = span_index(trace);
    let steps = calls[from..to]
        .iter()
        .map(|&(i, depth)| {
            let span = trace.span(i);
            let text = |key: &str| span.attr(key).map(AnyValue::to_display_string);
            let exception = span
                .events
                .iter()
                .find(|e| e.name == semconv::EXCEPTION_EVENT)
                .map(|e| {
                    let get = |key| {
                        devtrace_model::find_attr(&e.attributes, key)
                            .map(AnyValue::to_display_string)
                    };
                    match (
                        get(semconv::EXCEPTION_TYPE),
                        get(semconv::EXCEPTION_MESSAGE),
                    ) {
                        (Some(t), Some(m)) => format!("{t}: {m}"),
                        (t, m) => t.or(m).unwrap_or_default(),
                    }
                });
            Step {
                span_id: span.span_id,
                name: span.name.clone(),
                depth: (depth - base) as u32,
                offset_ns: span.start_unix_nano.saturating_sub(origin),
                duration_ns: span.duration_nanos(),
                failed: is_error_span(span),
                arguments: text(CALL_ARGUMENTS),
                returned: text(CALL_RETURN),
                raised: text(CALL_EXCEPTION).or(exception),
                waited_for: devtrace_analyze::causality::waits_of(trace, &index_map, i)
                    .iter()
                    .map(|w| wait_view(trace, w, origin))
                    .collect(),
                state_before: text(STATE_BEFORE),
                state_after: text(STATE_AFTER),
            }
        })
        .collect();
    ThreadSteps {
        thread,
        current: at - from,
        steps,
        omitted: calls.len() - (to - from),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::span;
    use devtrace_model::{Event, KeyValue, Link, Resource, Scope, Span, SpanBatch, semconv};

    fn thread(mut s: Span, name: &str) -> Span {
        s.attributes.push(KeyValue::new("thread.name", name));
        s
    }

    /// main: consume (0..100 ms) → get (20..80 ms) waited 40 ms for worker-1's produce, whose
    /// put came at 60 ms; then parse (80..90 ms) failed on its argument.
    pub fn two_threads() -> AnalyzedTrace {
        const MS: u64 = 1_000_000;
        let mut get = span(7, 2, Some(1), "queue.get", 20 * MS, 80 * MS);
        get.links.push(Link {
            trace_id: TraceId([7; 16]),
            span_id: SpanId([4; 8]),
            trace_state: String::new(),
            attributes: vec![
                KeyValue::new(semconv::causal::LINK_KIND, "queue"),
                KeyValue::new(semconv::causal::LINK_CAUSE_FUNCTION, "app.produce"),
                KeyValue::new(semconv::causal::LINK_CAUSE_TIME, (60 * MS) as i64),
                KeyValue::new(semconv::causal::LINK_WAIT_NS, (40 * MS) as i64),
                KeyValue::new(semconv::causal::LINK_OBJECT, "queue.Queue"),
            ],
            dropped_attributes_count: 0,
            flags: 0,
        });
        let mut parse = span(7, 5, Some(1), "app.parse", 80 * MS, 90 * MS);
        parse.attributes.extend([
            KeyValue::new(CALL_ARGUMENTS, "text='4\u{1b}2'"),
            KeyValue::new(CALL_EXCEPTION, "ValueError('bad')"),
        ]);
        parse.status.code = devtrace_model::StatusCode::Error;
        parse.events.push(Event {
            time_unix_nano: 89 * MS,
            name: semconv::EXCEPTION_EVENT.into(),
            attributes: vec![KeyValue::new(semconv::EXCEPTION_TYPE, "ValueError")],
            dropped_attributes_count: 0,
        });
        AnalyzedTrace::new(
            TraceId([7; 16]),
            SpanBatch {
                resources: vec![Resource::default()],
                scopes: vec![Scope::default()],
                spans: vec![
                    thread(span(7, 1, None, "consume", 0, 100 * MS), "MainThread"),
                    get,
                    thread(span(7, 3, None, "worker", 5 * MS, 90 * MS), "worker-1"),
                    span(7, 4, Some(3), "app.produce", 10 * MS, 70 * MS),
                    parse,
                ],
            },
        )
    }

    #[test]
    fn a_wait_reads_as_the_call_that_ended_it() {
        let t = two_threads();
        let waits = waits_of_span(&t, 1);
        assert_eq!(waits.len(), 1);
        assert_eq!(
            waits[0].text,
            "waited 40.0 ms for \"app.produce\" (queue put, thread \"worker-1\", at +60.0 ms)"
        );
        assert_eq!(waits[0].cause_span_id, SpanId([4; 8]));
        assert!(waits[0].cause_in_trace);
        assert!(waits_of_span(&t, 0).is_empty());
        assert_eq!(waits_by_span(&t)[1], waits);
    }

    #[test]
    fn a_process_wait_reads_as_a_message_from_the_process_that_sent_it() {
        let mut wait = causal_waits(&two_threads()).remove(0);
        wait.kind = "message".into();
        wait.cause_thread = Some("Cart.Server".into());
        wait.cause_function = Some("process Cart.Server".into());
        let ms = 1_000_000;
        assert_eq!(
            wait_text(&wait, 120 * ms, Some(140 * ms)),
            "waited 120.0 ms for a message from \"Cart.Server\" (sent at +140.0 ms)"
        );
        wait.cause_function = Some("Cart.Server.add/1".into());
        assert_eq!(
            wait_text(&wait, 0, None),
            "follows a message from \"Cart.Server\" (sent by \"Cart.Server.add/1\")"
        );
        wait.kind = "thread.join".into();
        wait.object = Some("erlang.process".into());
        assert_eq!(
            wait_text(&wait, 0, Some(12 * ms)),
            "follows the exit of \"Cart.Server\" (at +12.0 ms)"
        );
    }

    #[test]
    fn a_waterfall_row_carries_the_waits_of_its_span_in_the_same_words() {
        let t = two_threads();
        let mut row_of = vec![0u32; t.spans.spans.len()];
        for (row, (i, _)) in t.tree.walk().enumerate() {
            row_of[i] = row as u32;
        }
        let rows = row_waits(&t, &row_of);
        assert_eq!(rows.len(), 1, "only the get waited");
        assert_eq!(rows[0].row, row_of[1]);
        assert_eq!(rows[0].waits, waits_of_span(&t, 1));
    }

    #[test]
    fn a_link_that_did_not_wait_reads_as_what_the_span_follows() {
        let mut t = two_threads();
        let link = &mut t.spans.spans[1].links[0];
        link.attributes
            .retain(|kv| kv.key != semconv::causal::LINK_WAIT_NS);
        link.attributes
            .push(KeyValue::new(semconv::causal::LINK_WAIT_NS, 0i64));
        for kv in &mut link.attributes {
            if kv.key == semconv::causal::LINK_KIND {
                kv.value = "future".into();
            }
        }
        assert_eq!(
            waits_of_span(&t, 1)[0].text,
            "follows \"app.produce\" (future submit, thread \"worker-1\", at +60.0 ms)"
        );
    }

    #[test]
    fn an_arrow_goes_from_the_cause_to_the_waiting_span_at_the_hand_over() {
        let arrows = arrows(&two_threads());
        assert_eq!(
            arrows,
            vec![CausalArrow {
                cause: SpanId([4; 8]),
                waiter: SpanId([2; 8]),
                kind: "queue".into(),
                at_ns: 60_000_000,
                waited_ns: 40_000_000,
            }]
        );
    }

    #[test]
    fn a_threads_steps_are_its_calls_in_order_with_their_values() {
        let t = two_threads();
        let steps = thread_steps(&t, 4);
        assert_eq!(steps.thread.as_deref(), Some("MainThread"));
        let names: Vec<&str> = steps.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["consume", "queue.get", "app.parse"]);
        assert_eq!(steps.current, 2);
        let parse = &steps.steps[2];
        assert_eq!(parse.arguments.as_deref(), Some("text='4\u{1b}2'"));
        assert_eq!(parse.raised.as_deref(), Some("ValueError('bad')"));
        assert!(parse.failed);
        assert_eq!(parse.depth, 1);
        assert_eq!(steps.steps[1].waited_for.len(), 1, "the get's wait");
        let worker = thread_steps(&t, 3);
        assert_eq!(worker.thread.as_deref(), Some("worker-1"));
        assert_eq!(worker.steps.len(), 2);
        assert_eq!(worker.current, 1);
    }
}
