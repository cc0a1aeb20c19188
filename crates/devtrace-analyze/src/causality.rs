//! Causality between threads and processes: which call ended a wait.
//!
//! A recorder that sees a queue put and the get it fed, a lock released and then acquired, a
//! thread started and joined, puts a span link on the *waiting* span (the `get`, `acquire`,
//! `join`, or the innermost recorded span open on that thread) pointing at the span of the
//! call that ended the wait, with `devtrace.link.*` attributes (docs/conventions.md: what
//! kind of hand-over, the causing function, when it came, how long the waiter had waited).
//! This module reads those links back as [`CausalWait`]s: the wait, its cause (a span of the
//! same trace, when the trace has it) and the cause's thread. The critical path module
//! crosses to the cause's thread through them, and the findings
//! name the cause rather than the wait.

use crate::AnalyzedTrace;
use devtrace_model::semconv::causal;
use devtrace_model::{AnyValue, Link, SpanId, TraceId, find_attr};
use std::collections::HashMap;

/// One wait that a recorded call on another thread (or process) ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CausalWait {
    /// The span that waited (index into the trace's spans).
    pub waiter: usize,
    /// The span of the causing call, when it is in this trace.
    pub cause: Option<usize>,
    pub cause_trace_id: TraceId,
    pub cause_span_id: SpanId,
    /// `queue`, `lock`, `thread.join`, … ([`causal::KINDS`]), as recorded.
    pub kind: String,
    /// The qualified name of the causing function (else the cause span's name, when known).
    pub cause_function: Option<String>,
    /// When the cause came (the put, the release, the thread's end), Unix nanoseconds.
    pub cause_time_unix_nano: Option<u64>,
    /// How long the waiter had waited when the cause came, nanoseconds.
    pub waited_nanos: Option<u64>,
    /// The type of the object waited on (`queue.Queue`).
    pub object: Option<String>,
    /// The thread the cause ran on (`thread.name`, else `thread.id`), when the trace says.
    pub cause_thread: Option<String>,
}

impl CausalWait {
    /// When the waiter began waiting for this cause: the cause's time less the wait, clipped
    /// to the waiting span (the waiter's start when the link does not say).
    pub fn wait_start(&self, trace: &AnalyzedTrace) -> u64 {
        let span = trace.span(self.waiter);
        match (self.cause_time_unix_nano, self.waited_nanos) {
            (Some(at), Some(waited)) => at
                .saturating_sub(waited)
                .clamp(span.start_unix_nano, span.end_unix_nano),
            _ => span.start_unix_nano,
        }
    }

    /// When the wait ended: the cause's time, clipped to the waiting span (its end when the
    /// link does not say).
    pub fn wait_end(&self, trace: &AnalyzedTrace) -> u64 {
        let span = trace.span(self.waiter);
        self.cause_time_unix_nano
            .unwrap_or(span.end_unix_nano)
            .clamp(span.start_unix_nano, span.end_unix_nano)
    }
}

/// Whether `link` is a causal link (it names one of the known kinds).
pub fn is_causal(link: &Link) -> bool {
    link_kind(link).is_some()
}

fn link_kind(link: &Link) -> Option<&str> {
    let kind = find_attr(&link.attributes, causal::LINK_KIND)?.as_str()?;
    causal::KINDS.contains(&kind).then_some(kind)
}

/// Whether any span of `trace` carries a causal link (so callers skip the work when none does).
pub fn has_causal_links(trace: &AnalyzedTrace) -> bool {
    trace
        .spans
        .spans
        .iter()
        .any(|s| s.links.iter().any(is_causal))
}

/// Which subtrees hold a span with causal links: a count over the tree's pre-order, so asking
/// costs O(1) per subtree however deep it is.
pub struct CausalSpans {
    /// Per pre-order position: how many spans before it have causal links.
    before: Vec<usize>,
}

impl CausalSpans {
    pub fn of(trace: &AnalyzedTrace) -> Self {
        let mut before = Vec::with_capacity(trace.tree.preorder.len() + 1);
        let mut count = 0;
        for &node in &trace.tree.preorder {
            before.push(count);
            count += usize::from(trace.span(node).links.iter().any(is_causal));
        }
        before.push(count);
        Self { before }
    }

    /// Whether `top` or a span under it has causal links.
    pub fn any_within(&self, trace: &AnalyzedTrace, top: usize) -> bool {
        self.before[trace.tree.subtree_end[top]] != self.before[trace.tree.position[top]]
    }
}

/// Span index by span id, for resolving links within one trace.
pub fn span_index(trace: &AnalyzedTrace) -> HashMap<SpanId, usize> {
    let mut index = HashMap::with_capacity(trace.spans.spans.len());
    for (i, span) in trace.spans.spans.iter().enumerate() {
        index.entry(span.span_id).or_insert(i);
    }
    index
}

/// The causal waits recorded on span `waiter`, in link order.
pub fn waits_of(
    trace: &AnalyzedTrace,
    index: &HashMap<SpanId, usize>,
    waiter: usize,
) -> Vec<CausalWait> {
    trace
        .span(waiter)
        .links
        .iter()
        .filter_map(|link| {
            let kind = link_kind(link)?;
            let text = |key| {
                find_attr(&link.attributes, key)
                    .map(AnyValue::to_display_string)
                    .filter(|t| !t.is_empty())
            };
            let number = |key| {
                find_attr(&link.attributes, key).and_then(|v| u64::try_from(v.as_i64()?).ok())
            };
            let cause = (link.trace_id == trace.trace_id)
                .then(|| index.get(&link.span_id).copied())
                .flatten()
                .filter(|c| *c != waiter);
            Some(CausalWait {
                waiter,
                cause,
                cause_trace_id: link.trace_id,
                cause_span_id: link.span_id,
                kind: kind.to_owned(),
                cause_function: text(causal::LINK_CAUSE_FUNCTION)
                    .or_else(|| cause.map(|c| trace.span(c).name.clone())),
                cause_time_unix_nano: number(causal::LINK_CAUSE_TIME),
                waited_nanos: number(causal::LINK_WAIT_NS),
                object: text(causal::LINK_OBJECT),
                cause_thread: cause.and_then(|c| thread_of(trace, c)),
            })
        })
        .collect()
}

/// Every causal wait of `trace`, in tree order.
pub fn causal_waits(trace: &AnalyzedTrace) -> Vec<CausalWait> {
    if !has_causal_links(trace) {
        return Vec::new();
    }
    let index = span_index(trace);
    trace
        .tree
        .walk()
        .flat_map(|(i, _)| waits_of(trace, &index, i))
        .collect()
}

/// The thread span `i` ran on: its `thread.name`, else `thread.id`, else its nearest
/// ancestor's (a recorder may stamp only the thread's outermost call).
pub fn thread_of(trace: &AnalyzedTrace, i: usize) -> Option<String> {
    let mut node = Some(i);
    while let Some(n) = node {
        let span = trace.span(n);
        if let Some(name) = span.attr("thread.name").map(AnyValue::to_display_string) {
            return Some(name);
        }
        if let Some(id) = span.attr("thread.id").map(AnyValue::to_display_string) {
            return Some(id);
        }
        node = trace.tree.parent[n];
    }
    None
}

/// How the hand-over that ended a wait of `kind` reads: "queue put", "lock release".
pub fn hand_over(kind: &str) -> &'static str {
    match kind {
        "queue" => "queue put",
        "asyncio.queue" => "asyncio queue put",
        "lock" => "lock release",
        "semaphore" => "semaphore release",
        "condition" => "condition notify",
        "event" => "event set",
        "thread.start" => "thread start",
        "thread.join" => "thread end",
        "future" => "future result",
        "process" => "process start",
        "message" => "message send",
        _ => "hand-over",
    }
}

/// The part of the cause's thread that ran while `wait` waited: the cause's highest ancestor
/// that is not also the waiter's (the cause's thread's outermost call, under whatever the
/// two threads share). `None` when the cause is the waiter's ancestor or descendant (no other
/// thread to cross to) or outside the trace.
pub fn cause_branch(trace: &AnalyzedTrace, wait: &CausalWait) -> Option<usize> {
    let cause = wait.cause?;
    let ancestors = |mut n: usize| {
        let mut out = vec![n];
        while let Some(p) = trace.tree.parent[n] {
            out.push(p);
            n = p;
        }
        out
    };
    let waiter_line = ancestors(wait.waiter);
    let cause_line = ancestors(cause);
    if waiter_line.contains(&cause) || cause_line.contains(&wait.waiter) {
        return None;
    }
    cause_line
        .into_iter()
        .take_while(|n| !waiter_line.contains(n))
        .last()
}

/// What a set of waits waited for: one causing function (on one thread, by one kind of
/// hand-over), with the waiting time it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitedFor {
    pub function: String,
    pub kind: String,
    pub thread: Option<String>,
    /// Time the waiters spent waiting for it (from each wait's start to the cause), summed.
    pub nanos: u64,
    pub waits: u64,
}

/// What the causal waits recorded on `spans` and under them waited for, most waiting first
/// (then by function). Waits whose cause names no function are left out.
pub fn waited_for(trace: &AnalyzedTrace, spans: &[usize]) -> Vec<WaitedFor> {
    if spans.is_empty() || !has_causal_links(trace) {
        return Vec::new();
    }
    let index = span_index(trace);
    let mut seen = vec![false; trace.spans.spans.len()];
    let mut out: Vec<WaitedFor> = Vec::new();
    for &top in spans {
        // A span already seen was under an earlier top, and so was its whole subtree: skip
        // it in one step, so nested tops cost each span once.
        let mut at = trace.tree.position[top];
        while at < trace.tree.subtree_end[top] {
            let node = trace.tree.preorder[at];
            if std::mem::replace(&mut seen[node], true) {
                at = trace.tree.subtree_end[node];
                continue;
            }
            at += 1;
            for wait in waits_of(trace, &index, node) {
                let Some(function) = wait.cause_function.clone() else {
                    continue;
                };
                let nanos = wait.wait_end(trace) - wait.wait_start(trace);
                add_waited_for(
                    &mut out,
                    WaitedFor {
                        function,
                        kind: wait.kind.clone(),
                        thread: wait.cause_thread.clone(),
                        nanos,
                        waits: 1,
                    },
                );
            }
        }
    }
    sort_waited_for(&mut out);
    out
}

/// Adds `found` to `list`, summed into the entry of the same function, kind and thread.
pub fn add_waited_for(list: &mut Vec<WaitedFor>, found: WaitedFor) {
    match list.iter_mut().find(|w| {
        (&w.function, &w.kind, &w.thread) == (&found.function, &found.kind, &found.thread)
    }) {
        Some(entry) => {
            entry.nanos += found.nanos;
            entry.waits += found.waits;
        }
        None => list.push(found),
    }
}

/// Most waiting first, then by function.
pub fn sort_waited_for(list: &mut [WaitedFor]) {
    list.sort_by(|a, b| b.nanos.cmp(&a.nanos).then(a.function.cmp(&b.function)));
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span};

    /// Links span `waiter` to span `cause` (ids as in [`span`]) as a causal link of `kind`.
    pub fn linked(mut waiter: Span, cause: u8, kind: &str, at: u64, waited: u64) -> Span {
        waiter.links.push(Link {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([cause; 8]),
            trace_state: String::new(),
            attributes: vec![
                KeyValue::new(causal::LINK_KIND, kind),
                KeyValue::new(causal::LINK_CAUSE_FUNCTION, "app.produce"),
                KeyValue::new(causal::LINK_CAUSE_TIME, at as i64),
                KeyValue::new(causal::LINK_WAIT_NS, waited as i64),
                KeyValue::new(causal::LINK_OBJECT, "queue.Queue"),
            ],
            dropped_attributes_count: 0,
            flags: 0,
        });
        waiter
    }

    pub fn on_thread(mut s: Span, name: &str) -> Span {
        s.attributes.push(KeyValue::new("thread.name", name));
        s
    }

    /// main (0..100) runs consumer (thread main) and, as a separate root, worker-1's produce
    /// (10..70); consumer's get (20..80) waited from 20 until the put at 60.
    pub fn two_threads() -> AnalyzedTrace {
        AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![
                on_thread(span(1, None, "consume", 0, 100), "MainThread"),
                linked(span(2, Some(1), "queue.get", 20, 80), 4, "queue", 60, 40),
                on_thread(span(3, None, "worker", 5, 90), "worker-1"),
                span(4, Some(3), "app.produce", 10, 70),
            ]),
        )
    }

    #[test]
    fn a_link_reads_as_the_wait_its_cause_ended() {
        let t = two_threads();
        let waits = causal_waits(&t);
        assert_eq!(waits.len(), 1);
        let wait = &waits[0];
        assert_eq!((wait.waiter, wait.cause), (1, Some(3)));
        assert_eq!(wait.kind, "queue");
        assert_eq!(wait.cause_function.as_deref(), Some("app.produce"));
        assert_eq!(wait.cause_thread.as_deref(), Some("worker-1"));
        assert_eq!(wait.object.as_deref(), Some("queue.Queue"));
        assert_eq!((wait.wait_start(&t), wait.wait_end(&t)), (20, 60));
        assert_eq!(
            cause_branch(&t, wait),
            Some(2),
            "the worker's outermost call"
        );
    }

    #[test]
    fn links_of_other_kinds_and_unknown_causes_are_read_as_such() {
        let mut plain = span(2, Some(1), "child", 10, 20);
        plain.links.push(Link {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            trace_state: String::new(),
            attributes: vec![KeyValue::new("devtrace.link", "failure")],
            dropped_attributes_count: 0,
            flags: 0,
        });
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![
                span(1, None, "root", 0, 100),
                plain,
                linked(span(3, Some(1), "join", 30, 90), 99, "thread.join", 80, 50),
            ]),
        );
        let waits = causal_waits(&t);
        assert_eq!(waits.len(), 1, "the failure link is no causal link");
        assert_eq!(waits[0].cause, None, "span 99 is not in the trace");
        assert_eq!(waits[0].cause_function.as_deref(), Some("app.produce"));
        assert_eq!(cause_branch(&t, &waits[0]), None);
        assert_eq!(hand_over(&waits[0].kind), "thread end");
    }

    #[test]
    fn every_recorded_kind_says_what_handed_over() {
        for kind in causal::KINDS {
            assert_ne!(hand_over(kind), "hand-over", "{kind}");
        }
        assert_eq!(hand_over("semaphore"), "semaphore release");
    }

    #[test]
    fn waits_are_summed_by_what_they_waited_for() {
        let t = two_threads();
        let found = waited_for(&t, &[0]);
        assert_eq!(
            found,
            vec![WaitedFor {
                function: "app.produce".into(),
                kind: "queue".into(),
                thread: Some("worker-1".into()),
                nanos: 40,
                waits: 1,
            }]
        );
        assert!(
            waited_for(&t, &[2]).is_empty(),
            "the worker waited for nothing"
        );
    }

    #[test]
    fn a_cause_inside_the_waiters_own_line_is_no_other_thread() {
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![
                linked(span(1, None, "root", 0, 100), 2, "lock", 50, 40),
                span(2, Some(1), "child", 10, 50),
            ]),
        );
        let waits = causal_waits(&t);
        assert_eq!(cause_branch(&t, &waits[0]), None);
    }
}
