//! A connection process answering twenty thousand calls one after another — a load test's
//! recording, a long lossless one — as Redix-like clients do: it takes each request, sends it
//! on a socket and answers from the callback the reply's data begins. Every detector runs over
//! it; the loop is an N+1 whose time was the server's wait outside the recording, and the
//! callback that took each request is part of serving that caller, not work the caller queued
//! behind (which, a microsecond a call, added up past the threshold of a server that keeps its
//! callers waiting). The rules look a server's callbacks up rather than walk them for each call:
//! how long this takes before and after is in docs/PERFORMANCE.md.
//!
//! And a dynamic supervisor starting twenty thousand sessions one after another, each on a
//! call of the program's loop (`DynamicSupervisor.start_child/2`), each session's `init/1`
//! quick — a server that starts a process per connection. The rules that ask, for each
//! process, how it was started and what its start waited for, or, for each of a server's units
//! of work, where it ends, look these up rather than walk every wait or every sibling for each
//! (the supervisor's life has forty thousand children).
use devtrace_analyze::{AnalyzedTrace, FindingKind, detectors};
use devtrace_model::semconv::causal;
use devtrace_model::{KeyValue, Link, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, TraceId};

const CALLS: u64 = 20_000;
const TRACE: TraceId = TraceId([9; 16]);
const US: u64 = 1_000;

fn span(id: u64, parent: Option<u64>, name: &str, start: u64, end: u64) -> Span {
    Span::new(
        TRACE,
        SpanId(id.to_be_bytes()),
        parent.map(|p| SpanId(p.to_be_bytes())),
        name,
        start,
        end,
    )
}

/// A life of process `name` (its outermost span, as the BEAM recorder writes it).
fn life(id: u64, name: &str, initial_call: &str, end: u64) -> Span {
    life_from(id, name, initial_call, (0, end))
}

fn life_from(id: u64, name: &str, initial_call: &str, (start, end): (u64, u64)) -> Span {
    let mut s = span(id, Some(1), &format!("process {name}"), start, end);
    s.attributes.extend([
        KeyValue::new("thread.name", name),
        KeyValue::new("devtrace.beam.process", name),
        KeyValue::new("devtrace.beam.exit_reason", ":normal"),
        KeyValue::new("devtrace.beam.initial_call", initial_call),
    ]);
    s
}

/// `waiter` ended by the message span `cause` sent at `at`.
fn received(waiter: Span, cause: u64, at: u64) -> Span {
    linked(waiter, cause, "message", at)
}

/// `waiter` linked to span `cause` as `kind` (`message`, `thread.start`) at `at`.
fn linked(mut waiter: Span, cause: u64, kind: &str, at: u64) -> Span {
    waiter.links.push(Link {
        trace_id: TRACE,
        span_id: SpanId(cause.to_be_bytes()),
        trace_state: String::new(),
        attributes: vec![
            KeyValue::new(causal::LINK_KIND, kind),
            KeyValue::new(causal::LINK_CAUSE_TIME, at as i64),
            KeyValue::new(
                causal::LINK_WAIT_NS,
                (waiter.end_unix_nano - waiter.start_unix_nano) as i64,
            ),
        ],
        dropped_attributes_count: 0,
        flags: 0,
    });
    waiter
}

/// "<0.9.0>" calling "Srv" `CALLS` times one after another (10 µs each); "Srv" takes each
/// request, sends it on a socket (`handle_call/3`) and answers from the `handle_info/2` its
/// reply's data begins (a message from no recorded process), as a connection process does.
fn busy_server() -> AnalyzedTrace {
    let end = CALLS * 10 * US + 1;
    let mut spans = vec![
        span(1, None, "elixir load.exs", 0, end),
        life(2, "<0.9.0>", "erlang:apply/2", end),
        life(3, "Srv", "Srv.init/1", end),
        span(4, Some(2), "Load.run/0", 0, end),
    ];
    for k in 0..CALLS {
        let (at, id) = (k * 10 * US, 10 + 10 * k);
        let mut call = span(id, Some(4), "Srv.get/1", at, at + 9 * US);
        call.kind = SpanKind::Client;
        call.attributes.extend([
            KeyValue::new("rpc.service", "Srv"),
            KeyValue::new("rpc.method", "get"),
            KeyValue::new("devtrace.beam.peer", "Srv"),
        ]);
        spans.extend([
            call,
            received(
                span(id + 1, Some(id), "receive", at, at + 9 * US),
                id + 5,
                at + 8 * US,
            ),
            received(span(id + 2, Some(3), "receive", at, at + US), id, at),
            span(id + 3, Some(3), "Srv.handle_call/3", at + US, at + 2 * US),
            span(id + 4, Some(3), "receive", at + 2 * US, at + 7 * US),
            span(
                id + 5,
                Some(3),
                "Srv.handle_info/2",
                at + 7 * US,
                at + 8 * US,
            ),
        ]);
    }
    trace_of(spans)
}

fn trace_of(spans: Vec<Span>) -> AnalyzedTrace {
    let batch = SpanBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        spans,
    };
    AnalyzedTrace::new(TRACE, batch)
}

#[test]
fn a_connection_answering_twenty_thousand_calls_is_an_n_plus_one_and_keeps_no_one_waiting() {
    let trace = busy_server();
    let findings = detectors::run_all(std::slice::from_ref(&trace));
    // One after another, to one process: the loop is an N+1, and the calls' time was the
    // server's wait for its socket.
    let n_plus_one = findings
        .iter()
        .find(|f| f.kind == FindingKind::RepeatedCalls)
        .unwrap_or_else(|| panic!("{findings:#?}"));
    assert_eq!(n_plus_one.numbers["calls_per_run"], CALLS as f64);
    assert!(
        (n_plus_one.numbers["outside_share"] - 5.0 / 9.0).abs() < 1e-3,
        "{:?}",
        n_plus_one.numbers
    );
    assert!(
        findings
            .iter()
            .all(|f| f.kind != FindingKind::SerialisedProcess),
        "one caller at a time, each answered in turn, is no queue: {:#?}",
        findings
            .iter()
            .map(|f| (&f.title, &f.numbers))
            .collect::<Vec<_>>()
    );
}

/// One start, 100 µs apart: the loop's call to "Sup" (`Load.run/0`'s child), Sup taking the
/// request and running `Sess.start_link/1`, which waits for the session's acknowledgement
/// after its `init/1` (10 µs), then answering.
fn start(k: u64, end: u64) -> [Span; 7] {
    let (at, id) = (k * 100 * US, 10 + 10 * k);
    let name = format!("<0.{}.0>", 1000 + k);
    let mut call = span(
        id,
        Some(4),
        "DynamicSupervisor.start_child/2",
        at,
        at + 40 * US,
    );
    call.kind = SpanKind::Client;
    call.attributes.extend([
        KeyValue::new("rpc.service", "Sup"),
        KeyValue::new("devtrace.beam.peer", "Sup"),
    ]);
    // The recorder reads a start as a call to the new process (it waited for its message).
    let mut starting = span(
        id + 3,
        Some(3),
        "Sess.start_link/1",
        at + 10 * US,
        at + 38 * US,
    );
    starting.kind = SpanKind::Client;
    starting
        .attributes
        .push(KeyValue::new("devtrace.beam.peer", name.as_str()));
    let mut session = life_from(id + 5, &name, "Sess.init/1", (at + 12 * US, end));
    session
        .attributes
        .push(KeyValue::new("devtrace.beam.supervisor", "Sup"));
    [
        call,
        linked(
            span(id + 1, Some(id), "receive", at, at + 40 * US),
            id + 3,
            "message",
            at + 39 * US,
        ),
        linked(
            span(id + 2, Some(3), "receive", at, at + 10 * US),
            id,
            "message",
            at + 9 * US,
        ),
        starting,
        linked(
            span(id + 4, Some(id + 3), "receive", at + 12 * US, at + 36 * US),
            id + 5,
            "message",
            at + 35 * US,
        ),
        linked(session, id + 3, "thread.start", at + 12 * US),
        span(
            id + 6,
            Some(id + 5),
            "Sess.init/1",
            at + 14 * US,
            at + 24 * US,
        ),
    ]
}

fn many_starts() -> AnalyzedTrace {
    let end = CALLS * 100 * US + 1;
    let mut spans = vec![
        span(1, None, "elixir load.exs", 0, end),
        life(2, "<0.9.0>", "erlang:apply/2", end),
        life(3, "Sup", "DynamicSupervisor.init/1", end),
        span(4, Some(2), "Load.run/0", 0, end),
    ];
    for k in 0..CALLS {
        spans.extend(start(k, end));
    }
    trace_of(spans)
}

#[test]
fn a_supervisor_starting_twenty_thousand_quick_sessions_keeps_no_one_waiting() {
    let trace = many_starts();
    let findings = detectors::run_all(std::slice::from_ref(&trace));
    let shown = || {
        findings
            .iter()
            .map(|f| (&f.title, &f.numbers))
            .collect::<Vec<_>>()
    };
    // Quick inits, one caller at a time: no queue, and nothing worth overlapping.
    assert!(
        findings
            .iter()
            .all(|f| f.kind != FindingKind::SerialisedProcess),
        "one caller at a time is no queue: {:#?}",
        shown()
    );
    assert!(
        findings
            .iter()
            .all(|f| !f.title.contains("processes one after another")),
        "10 µs inits are nothing to overlap: {:#?}",
        shown()
    );
}
