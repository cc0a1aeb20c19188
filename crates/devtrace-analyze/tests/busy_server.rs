//! A connection process answering twenty thousand calls one after another — a load test's
//! recording, a long lossless one — as Redix-like clients do: it takes each request, sends it
//! on a socket and answers from the callback the reply's data begins. Every detector runs over
//! it; the loop is an N+1 whose time was the server's wait outside the recording, and the
//! callback that took each request is part of serving that caller, not work the caller queued
//! behind (which, a microsecond a call, added up past the threshold of a server that keeps its
//! callers waiting). The rules look a server's callbacks up rather than walk them for each call:
//! how long this takes before and after is in docs/PERFORMANCE.md.
use devtrace_analyze::{AnalyzedTrace, FindingKind, detectors};
use devtrace_model::semconv::causal;
use devtrace_model::{KeyValue, Link, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, TraceId};

const CALLS: u64 = 20_000;
const TRACE: TraceId = TraceId([9; 16]);

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
    let mut s = span(id, Some(1), &format!("process {name}"), 0, end);
    s.attributes.extend([
        KeyValue::new("thread.name", name),
        KeyValue::new("devtrace.beam.process", name),
        KeyValue::new("devtrace.beam.exit_reason", ":normal"),
        KeyValue::new("devtrace.beam.initial_call", initial_call),
    ]);
    s
}

/// `waiter` ended by the message span `cause` sent at `at`.
fn received(mut waiter: Span, cause: u64, at: u64) -> Span {
    waiter.links.push(Link {
        trace_id: TRACE,
        span_id: SpanId(cause.to_be_bytes()),
        trace_state: String::new(),
        attributes: vec![
            KeyValue::new(causal::LINK_KIND, "message"),
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
    const US: u64 = 1_000;
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
