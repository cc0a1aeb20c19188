//! The store conformance suite: every backend must pass each of these, written once.
//!
//! A backend's test module calls [`run_all`] with a factory that yields a fresh, empty
//! store's writer and reader, [`run_team`] for projects, tokens and retention, and [`run_qa`]
//! when the backend keeps a QA job queue.

use crate::*;
use devtrace_model::*;

mod qa;

/// The URL of the test server named by `env`, or `None` (after saying so) when it is unset.
/// Under CI a backend's tests must run: a missing server fails instead. `starter` says how to
/// start one.
pub fn test_server(env: &str, starter: &str) -> Option<String> {
    match std::env::var(env) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false"),
                "CI is set but {env} is not: {starter}"
            );
            eprintln!("{env} is not set: the tests of this backend did not run ({starter})");
            None
        }
    }
}

/// A name no other test of this run uses (a schema, a database).
pub fn unique_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

pub type Factory<'a> = &'a dyn Fn() -> (Box<dyn StoreWriter>, Box<dyn Store>);

pub fn run_all(factory: Factory<'_>) {
    late_root_and_split_traces_are_summarised(factory);
    a_trace_lasts_as_long_as_its_root(factory);
    listing_filters_and_orders_newest_first(factory);
    prefixes_resolve_uniquely_or_explain(factory);
    sixty_four_bit_ids_resolve_as_jaeger_and_zipkin_write_them(factory);
    logs_come_back_with_their_trace_in_time_order(factory);
    a_failed_transaction_stores_nothing(factory);
    operations_find_the_traces_that_contain_them(factory);
    runs_are_listed_apart(factory);
    listing_searches_any_span_and_pages_without_gaps(factory);
    sessions_merge_resent_spans_and_keep_their_summary(factory);
    sessions_are_listed_by_agent_project_and_time(factory);
    cursors_blobs_and_deletes(factory);
    listing_can_end_at_a_time(factory);
    a_resent_span_is_stored_once(factory);
    traces_are_multi_service_and_operations_keep_their_identity(factory);
    the_indexes_follow_merges_and_deletes(factory);
    resent_spans_split_and_merged_differently_are_stored_once(factory);
    metrics_add_up_per_session_and_day_whatever_their_temporality(factory);
    chunks_compressed_with_a_dictionary_read_back_whole(factory);
}

/// The QA job queue's half ([`crate::qa`]), for backends that keep one ([`Store::qa`]): both
/// the embedded store and PostgreSQL.
pub fn run_qa(factory: Factory<'_>) {
    qa::run_all(factory);
}

fn metrics_add_up_per_session_and_day_whatever_their_temporality(factory: Factory<'_>) {
    use crate::metrics::{SeriesTags, UsageQuery, prepare_metrics};
    use devtrace_model::metrics::*;
    const DAY: u64 = 86_400_000_000_000;
    let (mut writer, store) = factory();
    let session = TraceId([0x51; 16]);
    let other = TraceId([0x52; 16]);
    // Cost as deltas (Claude Code's default), tokens as cumulative sums (Gemini CLI's), both
    // for `session`; a second session's cost; the second day starts at `DAY`.
    let sum = |name: &str, temporality, points: Vec<(u64, u64, f64, &str)>| Metric {
        name: name.into(),
        description: String::new(),
        unit: String::new(),
        kind: MetricKind::Sum,
        temporality,
        monotonic: true,
        points: points
            .into_iter()
            .map(|(start, time, value, who)| MetricPoint {
                attributes: vec![KeyValue::new("session.id", who)],
                start_unix_nano: start,
                time_unix_nano: time,
                flags: 0,
                value: PointValue::Double(value),
            })
            .collect(),
        resource: 0,
        scope: 0,
    };
    let batch = |metrics| MetricBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new("service.name", "agent")],
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        metrics,
    };
    let classify = move |_: &MetricBatch, metric: &Metric, point: &MetricPoint| SeriesTags {
        session: match point.attributes[0].value.as_str() {
            Some("a") => Some(session),
            Some("b") => Some(other),
            _ => None,
        },
        quantity: match metric.name.as_str() {
            "cost" => Some(UsageQuantity::CostUsd),
            "tokens" => Some(UsageQuantity::PromptTokens),
            _ => None,
        },
    };
    let first = batch(vec![
        sum(
            "cost",
            Temporality::Delta,
            vec![(0, 10, 0.25, "a"), (10, 20, 0.5, "a"), (0, 15, 2.0, "b")],
        ),
        // Cumulative: 100 then 300 (+200) on day one; a restart (new start time) at 150.
        sum(
            "tokens",
            Temporality::Cumulative,
            vec![(5, 10, 100.0, "a"), (5, DAY + 5, 300.0, "a")],
        ),
        sum("unrelated", Temporality::Delta, vec![(0, 10, 99.0, "a")]),
    ]);
    let prepared = WriteBatch {
        metrics: prepare_metrics(&first, &classify),
        ..Default::default()
    };
    assert_eq!(prepared.items(), 6);
    writer.write(std::slice::from_ref(&prepared)).unwrap();
    // The exporter retries the same request: nothing is stored twice.
    writer.write(&[prepared]).unwrap();
    assert_eq!(store.stats().unwrap().metric_points, 6);
    // A point that arrives late (between the two stored ones) and a restarted stream.
    let late = batch(vec![sum(
        "tokens",
        Temporality::Cumulative,
        vec![(5, 50, 120.0, "a"), (DAY + 6, DAY + 7, 150.0, "a")],
    )]);
    writer
        .write(&[WriteBatch {
            metrics: prepare_metrics(&late, &classify),
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(store.stats().unwrap().metric_points, 8);

    let by_session = store.usage(&UsageQuery::default(), false).unwrap();
    let usage_of = |id: TraceId| {
        by_session
            .iter()
            .find(|t| t.session == Some(id))
            .map(|t| t.usage.clone())
            .unwrap()
    };
    let a = usage_of(session);
    assert_eq!(a.cost_usd, Some(0.75));
    // 300 (the first stream's last value) + 150 (the restarted stream's).
    assert_eq!(a.input_tokens, Some(450));
    assert_eq!(usage_of(other).cost_usd, Some(2.0));
    let only_b = store
        .usage(
            &UsageQuery {
                sessions: Some(vec![other]),
                ..Default::default()
            },
            false,
        )
        .unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(only_b[0].usage.input_tokens, None);

    let by_day = store.usage(&UsageQuery::default(), true).unwrap();
    assert_eq!(
        by_day
            .iter()
            .map(|t| (
                t.day_unix_nano.unwrap(),
                t.usage.cost_usd,
                t.usage.input_tokens
            ))
            .collect::<Vec<_>>(),
        // Day one: 0.25 + 0.5 + 2.0 and tokens 120 (100, then +20); day two: +180, +150.
        [(0, Some(2.75), Some(120)), (DAY, None, Some(330))]
    );
    let since_day_two = store
        .usage(
            &UsageQuery {
                since_unix_nano: Some(DAY),
                ..Default::default()
            },
            true,
        )
        .unwrap();
    assert_eq!(since_day_two.len(), 1);
    assert_eq!(since_day_two[0].usage.input_tokens, Some(330));
}

/// A request crosses services: filters match any span's service, each service is counted by
/// its own spans, and a client span never merges with the server span of the same name.
fn traces_are_multi_service_and_operations_keep_their_identity(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let call = "/shop.Checkout/PlaceOrder";
    let kinded = |mut s: Span, kind: SpanKind| {
        s.kind = kind;
        s
    };
    let mut refused = kinded(span(1, 3, Some(2), call, 120, 180), SpanKind::Server);
    refused.status.code = StatusCode::Error;
    let mut request = batch(
        "frontend",
        vec![
            span(1, 1, None, "GET /checkout", 100, 200),
            kinded(span(1, 2, Some(1), call, 110, 190), SpanKind::Client),
        ],
    );
    request.extend(batch("checkout", vec![refused]));
    request.extend(batch(
        "payment",
        vec![span(1, 4, Some(3), "charge", 130, 150)],
    ));
    writer.write(&[prepare_spans(request)]).unwrap();
    writer
        .write(&[prepare_spans(batch(
            "frontend",
            vec![span(2, 1, None, "GET /", 300, 310)],
        ))])
        .unwrap();
    let ids = |service: &str| -> Vec<u8> {
        store
            .list_traces(&TraceQuery {
                service: Some(service.into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect()
    };
    assert_eq!(ids("checkout"), [1], "a service that never has the root");
    assert_eq!(ids("payment"), [1]);
    assert_eq!(ids("frontend"), [2, 1]);
    assert!(ids("nope").is_empty());
    let summary = store.trace_summary(TraceId([1; 16])).unwrap().unwrap();
    assert_eq!(summary.service, "frontend", "the root's service");
    assert_eq!(summary.services, ["checkout", "frontend", "payment"]);
    assert_eq!(
        store.get_trace(TraceId([1; 16])).unwrap().unwrap().summary,
        summary
    );

    let services: Vec<(String, u64, u64, u64, u64)> = store
        .services(None)
        .unwrap()
        .into_iter()
        .map(|s| (s.service, s.traces, s.root_traces, s.error_traces, s.spans))
        .collect();
    assert_eq!(
        services,
        [
            ("frontend".to_owned(), 2, 2, 0, 3),
            ("checkout".to_owned(), 1, 0, 1, 1),
            ("payment".to_owned(), 1, 0, 0, 1),
        ],
        "each service counted by its own spans, errors where they happened"
    );
    assert_eq!(store.services(Some(250)).unwrap().len(), 1);

    let identities: Vec<(String, SpanKind)> = store
        .operations()
        .unwrap()
        .into_iter()
        .filter(|o| o.name == call)
        .map(|o| (o.service, o.kind))
        .collect();
    assert_eq!(
        identities,
        [
            ("checkout".to_owned(), SpanKind::Server),
            ("frontend".to_owned(), SpanKind::Client)
        ]
    );
    let found = |filter: OperationFilter| -> Vec<u8> {
        store
            .traces_with_operation(&filter, None, 10)
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect()
    };
    assert_eq!(found(OperationFilter::named(call)), [1], "each trace once");
    let server = OperationFilter {
        name: call.into(),
        service: Some("checkout".into()),
        kind: Some(SpanKind::Server),
    };
    assert_eq!(found(server.clone()), [1]);
    assert!(
        found(OperationFilter {
            service: Some("frontend".into()),
            ..server.clone()
        })
        .is_empty()
    );
    assert!(
        found(OperationFilter {
            kind: Some(SpanKind::Consumer),
            ..server
        })
        .is_empty()
    );
    assert_eq!(
        store.operation_names().unwrap(),
        [call, "GET /", "GET /checkout", "charge"]
    );
}

/// A merged (session) trace and a deleted one leave nothing stale in the indexes.
fn the_indexes_follow_merges_and_deletes(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let root = session_root(1, "codex", "/r", 10, 90);
    writer
        .write(&[prepare_session(
            batch(
                "codex",
                vec![
                    root.clone(),
                    session_span(1, 2, Some(1), semconv::SESSION_SPAN_TOOL, 20, 30),
                ],
            ),
            vec![],
        )])
        .unwrap();
    // The tool call comes again under another name (the importer learnt what it was).
    let mut renamed = session_span(1, 2, Some(1), semconv::SESSION_SPAN_TOOL, 20, 40);
    renamed.name = "execute_tool shell".into();
    writer
        .write(&[prepare_session(batch("codex", vec![renamed]), vec![])])
        .unwrap();
    let found = |name: &str| {
        store
            .traces_with_operation(&OperationFilter::named(name), None, 10)
            .unwrap()
            .len()
    };
    assert_eq!(found("execute_tool shell"), 1);
    assert_eq!(found("tool 2"), 0, "the old name left the index");
    let services = store.services(None).unwrap();
    assert_eq!((services[0].traces, services[0].spans), (1, 2));

    writer
        .write(&[WriteBatch {
            deletes: vec![TraceId([1; 16])],
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(found("execute_tool shell"), 0);
    assert!(store.services(None).unwrap().is_empty());
    assert!(
        store
            .list_traces(&TraceQuery {
                service: Some("codex".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
}

/// An exporter retrying after a timeout sends the same request again: nothing new is stored,
/// in later transactions, within one transaction, or within one request.
fn a_resent_span_is_stored_once(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut failing = span(1, 3, Some(1), "SELECT", 120, 130);
    failing.status.code = StatusCode::Error;
    let request = batch(
        "api",
        vec![
            span(1, 1, None, "GET /", 100, 200),
            span(1, 2, Some(1), "SELECT", 110, 120),
            failing,
        ],
    );
    writer.write(&[prepare_spans(request.clone())]).unwrap();
    writer.write(&[prepare_spans(request.clone())]).unwrap();
    // Twice more in one transaction, and a request holding one span twice.
    writer
        .write(&[
            prepare_spans(request.clone()),
            prepare_spans(request.clone()),
        ])
        .unwrap();
    let mut doubled = request.clone();
    doubled.spans.push(request.spans[1].clone());
    writer.write(&[prepare_spans(doubled)]).unwrap();

    let trace = store.get_trace(TraceId([1; 16])).unwrap().unwrap();
    let mut ids: Vec<u8> = trace.spans.spans.iter().map(|s| s.span_id.0[0]).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3], "each span once");
    assert_eq!(
        (trace.summary.span_count, trace.summary.error_count),
        (3, 1)
    );
    assert_eq!(
        (trace.summary.start_unix_nano, trace.summary.end_unix_nano),
        (100, 200)
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.spans, stats.traces), (3, 1));
    assert_eq!(
        stats.resent_spans,
        3 + 6 + 3 + 1,
        "every re-sent span counted"
    );
    assert_eq!(
        store
            .traces_with_operation(&OperationFilter::named("SELECT"), None, 10)
            .unwrap()
            .len(),
        1
    );

    // A re-sent span that differs: the first stored version wins, whole.
    let mut changed = span(1, 2, Some(1), "UPDATE", 110, 190);
    changed.status.code = StatusCode::Error;
    writer
        .write(&[prepare_spans(batch("api", vec![changed]))])
        .unwrap();
    let trace = store.get_trace(TraceId([1; 16])).unwrap().unwrap();
    let kept = trace
        .spans
        .spans
        .iter()
        .find(|s| s.span_id == SpanId([2; 8]))
        .unwrap();
    assert_eq!((kept.name.as_str(), kept.end_unix_nano), ("SELECT", 120));
    assert_eq!(
        (trace.summary.span_count, trace.summary.error_count),
        (3, 1)
    );
    assert!(
        store
            .traces_with_operation(&OperationFilter::named("UPDATE"), None, 10)
            .unwrap()
            .is_empty(),
        "the dropped version's name is not indexed"
    );
}

/// A retrying exporter (or a collector in between) may cut and combine batches differently
/// the second time: new spans are stored, old ones are not, whatever the grouping.
fn resent_spans_split_and_merged_differently_are_stored_once(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    writer
        .write(&[prepare_spans(batch(
            "api",
            vec![
                span(1, 1, None, "GET /a", 100, 200),
                span(1, 2, Some(1), "q", 110, 120),
                span(1, 3, Some(1), "q", 120, 130),
                span(2, 1, None, "GET /b", 300, 400),
            ],
        ))])
        .unwrap();
    // The second attempt: part of trace 1 again with a new span, trace 2 again with a late
    // child of another service, in one request; then trace 1's root alone.
    let mut late = batch("worker", vec![span(2, 2, Some(1), "job", 310, 390)]);
    let mut again = batch(
        "api",
        vec![
            span(1, 2, Some(1), "q", 110, 120),
            span(1, 4, Some(1), "q", 130, 140),
            span(2, 1, None, "GET /b", 300, 400),
        ],
    );
    again.extend(std::mem::take(&mut late));
    writer.write(&[prepare_spans(again)]).unwrap();
    writer
        .write(&[prepare_spans(batch(
            "api",
            vec![span(1, 1, None, "GET /a", 100, 200)],
        ))])
        .unwrap();
    let count = |trace: u8| {
        let stored = store.get_trace(TraceId([trace; 16])).unwrap().unwrap();
        (stored.spans.spans.len() as u64, stored.summary.span_count)
    };
    assert_eq!(count(1), (4, 4));
    assert_eq!(count(2), (2, 2));
    let summary = store.trace_summary(TraceId([2; 16])).unwrap().unwrap();
    assert_eq!(
        (summary.root_name.as_str(), summary.service.as_str()),
        ("GET /b", "api")
    );
    let stats = store.stats().unwrap();
    assert_eq!((stats.spans, stats.traces, stats.resent_spans), (6, 2, 3));
}

fn session_span(trace: u8, id: u8, parent: Option<u8>, role: &str, start: u64, end: u64) -> Span {
    let mut s = span(trace, id, parent, &format!("{role} {id}"), start, end);
    s.attributes = vec![KeyValue::new(semconv::SESSION_SPAN, role)];
    s
}

fn session_root(trace: u8, agent: &str, project: &str, start: u64, end: u64) -> Span {
    let mut root = session_span(trace, 1, None, semconv::SESSION_SPAN_SESSION, start, end);
    root.attributes.extend([
        KeyValue::new(semconv::SESSION_AGENT, agent),
        KeyValue::new(semconv::SESSION_PROJECT, project),
        KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, format!("s{trace}")),
    ]);
    root
}

fn sessions_merge_resent_spans_and_keep_their_summary(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    // A live hook records a tool call as it starts...
    let mut started = session_span(1, 3, Some(1), semconv::SESSION_SPAN_TOOL, 120, 120);
    started
        .attributes
        .push(KeyValue::new(semconv::SESSION_CWD, "/repo"));
    writer
        .write(&[prepare_session(
            batch(
                "claude-code",
                vec![session_root(1, "claude-code", "/repo", 100, 120), started],
            ),
            vec![],
        )])
        .unwrap();
    // ...then the transcript brings the whole session, the same tool call finished and failed.
    let mut finished = session_span(1, 3, Some(2), semconv::SESSION_SPAN_TOOL, 118, 180);
    finished.status.code = StatusCode::Error;
    let mut chat = session_span(1, 4, Some(2), semconv::SESSION_SPAN_CHAT, 105, 115);
    chat.attributes.extend([
        KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, 1200i64),
        KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, 80i64),
    ]);
    let full = batch(
        "claude-code",
        vec![
            session_root(1, "claude-code", "/repo", 100, 200),
            session_span(1, 2, Some(1), semconv::SESSION_SPAN_TURN, 101, 200),
            chat,
            finished,
        ],
    );
    writer
        .write(&[prepare_session(full.clone(), vec![])])
        .unwrap();
    // Importing the same again changes nothing.
    writer.write(&[prepare_session(full, vec![])]).unwrap();

    let trace = store.get_trace(TraceId([1; 16])).unwrap().unwrap();
    assert_eq!(trace.spans.spans.len(), 4, "every span once");
    assert_eq!(
        (trace.summary.span_count, trace.summary.error_count),
        (4, 1)
    );
    let tool = trace
        .spans
        .spans
        .iter()
        .find(|s| s.span_id == SpanId([3; 8]))
        .unwrap();
    assert_eq!(tool.parent_span_id, Some(SpanId([2; 8])));
    assert_eq!((tool.start_unix_nano, tool.end_unix_nano), (118, 180));
    assert_eq!(
        tool.attr(semconv::SESSION_CWD).and_then(AnyValue::as_str),
        Some("/repo"),
        "what only the hook knew is kept"
    );
    assert_eq!(store.stats().unwrap().spans, 4);
    assert_eq!(store.stats().unwrap().traces, 1);

    let session = store.session(TraceId([1; 16])).unwrap().unwrap();
    assert_eq!(session.facts.agent, "claude-code");
    assert_eq!(
        (
            session.facts.turns,
            session.facts.tool_calls,
            session.facts.errors
        ),
        (1, 1, 1)
    );
    assert_eq!(
        (session.facts.input_tokens, session.facts.output_tokens),
        (1200, 80)
    );
    assert_eq!(
        (session.facts.start_unix_nano, session.facts.end_unix_nano),
        (100, 200)
    );
    // The operation index follows the merged names.
    assert_eq!(
        store
            .traces_with_operation(&OperationFilter::named("turn 2"), None, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(store.session(TraceId([2; 16])).unwrap().is_none());
}

fn sessions_are_listed_by_agent_project_and_time(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    for (trace, agent, project, start) in [
        (1u8, "claude-code", "/work/app", 100u64),
        (2, "codex", "/work/app/sub", 200),
        (3, "claude-code", "/work/application", 300),
        (4, "claude-code", "/work/app", 400),
    ] {
        writer
            .write(&[prepare_session(
                batch(
                    agent,
                    vec![session_root(trace, agent, project, start, start + 50)],
                ),
                vec![],
            )])
            .unwrap();
    }
    // An ordinary trace is not a session.
    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![span(9, 1, None, "GET /", 500, 600)],
        ))])
        .unwrap();
    let runtime: Vec<u8> = store
        .list_traces(&TraceQuery {
            runtime_only: true,
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .iter()
        .map(|t| t.trace_id.0[0])
        .collect();
    assert_eq!(runtime, [9], "runtime_only leaves the sessions out");
    assert_eq!(
        store
            .list_traces(&TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len(),
        5,
        "sessions are traces in ordinary listings"
    );
    let ids = |query: SessionQuery| -> Vec<u8> {
        store
            .list_sessions(&SessionQuery { limit: 10, ..query })
            .unwrap()
            .iter()
            .map(|s| s.trace_id.0[0])
            .collect()
    };
    assert_eq!(ids(SessionQuery::default()), [4, 3, 2, 1], "newest first");
    assert_eq!(
        ids(SessionQuery {
            agent: Some("codex".into()),
            ..Default::default()
        }),
        [2]
    );
    assert_eq!(
        ids(SessionQuery {
            project: Some("/work/app/".into()),
            ..Default::default()
        }),
        [4, 2, 1],
        "the directory and inside it, not a sibling sharing its prefix"
    );
    assert_eq!(
        ids(SessionQuery {
            since_unix_nano: Some(250),
            ..Default::default()
        }),
        [4, 3]
    );
    // Sessions run over [100, 150], [200, 250], [300, 350] and [400, 450].
    for (from, to, active) in [
        (240, 310, vec![3, 2]),
        (150, 150, vec![1]),
        (360, 390, vec![]),
        (0, 1_000, vec![4, 3, 2, 1]),
    ] {
        assert_eq!(
            ids(SessionQuery {
                active_between: Some((from, to)),
                ..Default::default()
            }),
            active,
            "sessions active between {from} and {to}"
        );
    }
    assert_eq!(
        store
            .list_sessions(&SessionQuery {
                limit: 1,
                ..Default::default()
            })
            .unwrap()[0]
            .facts
            .session_id,
        "s4"
    );
}

fn cursors_blobs_and_deletes(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    assert!(store.import_cursor("/t/a.jsonl").unwrap().is_none());
    let cursor = ImportCursor {
        source: "/t/a.jsonl".into(),
        offset: 4096,
        fingerprint: [7; 32],
        state: b"state".to_vec(),
    };
    let output = b"error: linker `cc` not found\n".repeat(100);
    let hash = *blake3::hash(&output).as_bytes();
    let mut first = prepare_session(
        batch("codex", vec![session_root(1, "codex", "/r", 10, 20)]),
        vec![(hash, output.clone())],
    );
    first.cursors.push(cursor.clone());
    writer.write(&[first]).unwrap();
    assert_eq!(store.import_cursor("/t/a.jsonl").unwrap(), Some(cursor));
    assert_eq!(store.blob(&hash).unwrap(), Some(output));
    assert!(store.blob(&[0; 32]).unwrap().is_none());
    // A later cursor replaces the earlier one; the same blob again is stored once.
    let later = ImportCursor {
        offset: 8192,
        ..store.import_cursor("/t/a.jsonl").unwrap().unwrap()
    };
    writer
        .write(&[WriteBatch {
            cursors: vec![later],
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(
        store.import_cursor("/t/a.jsonl").unwrap().unwrap().offset,
        8192
    );

    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![span(2, 1, None, "GET /", 30, 40)],
        ))])
        .unwrap();
    writer
        .write(&[WriteBatch {
            deletes: vec![TraceId([1; 16]), TraceId([5; 16])],
            ..Default::default()
        }])
        .unwrap();
    assert!(store.get_trace(TraceId([1; 16])).unwrap().is_none());
    assert!(store.session(TraceId([1; 16])).unwrap().is_none());
    assert!(
        store
            .list_sessions(&SessionQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
    let stats = store.stats().unwrap();
    assert_eq!(
        (stats.traces, stats.spans),
        (1, 1),
        "only the other trace is left"
    );
    assert!(matches!(
        store.resolve_trace_id("0101"),
        Err(StoreError::TraceNotFound(_))
    ));
}

fn listing_can_end_at_a_time(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    for (trace, start) in [(1u8, 100u64), (2, 200), (3, 300)] {
        writer
            .write(&[prepare_spans(batch(
                "s",
                vec![span(trace, 1, None, "op", start, start + 10)],
            ))])
            .unwrap();
    }
    let found: Vec<u8> = store
        .list_traces(&TraceQuery {
            since_unix_nano: Some(150),
            until_unix_nano: Some(250),
            limit: 10,
            ..Default::default()
        })
        .unwrap()
        .iter()
        .map(|t| t.trace_id.0[0])
        .collect();
    assert_eq!(found, [2]);
}

fn runs_are_listed_apart(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut run = span(1, 1, None, "cargo test", 100, 200);
    run.attributes.push(KeyValue::new(
        semconv::RUN_ID,
        "01010101010101010101010101010101",
    ));
    // A run's child arrives first; the flag comes with the root.
    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![span(1, 2, Some(1), "test a", 110, 120)],
        ))])
        .unwrap();
    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![run, span(2, 1, None, "GET /", 300, 400)],
        ))])
        .unwrap();
    let runs = store
        .list_traces(&TraceQuery {
            runs_only: true,
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].root_name.as_str(), runs[0].span_count),
        ("cargo test", 2)
    );
    assert_eq!(
        store
            .list_traces(&TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len(),
        2
    );
}

fn operations_find_the_traces_that_contain_them(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    writer
        .write(&[
            prepare_spans(batch(
                "s",
                vec![
                    span(1, 1, None, "journal", 100, 200),
                    span(1, 2, Some(1), "summary", 110, 150),
                ],
            )),
            prepare_spans(batch("s", vec![span(2, 1, None, "journal", 300, 400)])),
        ])
        .unwrap();
    // A later chunk of trace 1 repeats a name: the index holds each (name, trace) once.
    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![span(1, 3, Some(1), "summary", 160, 190)],
        ))])
        .unwrap();
    writer
        .write(&[prepare_spans(batch(
            "s",
            vec![span(3, 1, None, "other", 500, 600)],
        ))])
        .unwrap();
    let ids = |name: &str, since: Option<u64>, limit: usize| -> Vec<u8> {
        store
            .traces_with_operation(&OperationFilter::named(name), since, limit)
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect()
    };
    assert_eq!(ids("journal", None, 10), [2, 1], "newest first");
    assert_eq!(ids("journal", None, 1), [2]);
    assert_eq!(ids("summary", None, 10), [1]);
    assert_eq!(ids("journal", Some(250), 10), [2]);
    assert!(ids("missing", None, 10).is_empty());
    assert_eq!(
        store.operation_names().unwrap(),
        ["journal", "other", "summary"]
    );
}

/// A trace as an instrumented HTTP service sends it: a server span, a database call and an
/// outgoing call, with semantic-convention attributes, for compression tests.
fn realistic_trace(trace: u32) -> SpanBatch {
    let id = |n: u8| {
        let mut bytes = [n; 8];
        bytes[..4].copy_from_slice(&trace.to_le_bytes());
        SpanId(bytes)
    };
    let mut trace_id = [7u8; 16];
    trace_id[..4].copy_from_slice(&trace.to_le_bytes());
    let start = 1_700_000_000_000_000_000 + u64::from(trace) * 1_000_000;
    let span = |n: u8, parent: Option<u8>, name: &str, attributes: Vec<KeyValue>| Span {
        attributes,
        kind: if parent.is_none() {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        ..Span::new(
            TraceId(trace_id),
            id(n),
            parent.map(id),
            name,
            start + u64::from(n) * 1_000,
            start + 900_000 - u64::from(n) * 1_000,
        )
    };
    let user = trace % 97;
    let mut batch = batch(
        "checkout",
        vec![
            span(
                1,
                None,
                "GET /cart/{id}",
                vec![
                    KeyValue::new("http.request.method", "GET"),
                    KeyValue::new("url.path", format!("/cart/{user}")),
                    KeyValue::new("http.response.status_code", AnyValue::Int(200)),
                    KeyValue::new("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
                ],
            ),
            span(
                2,
                Some(1),
                "SELECT shop.items",
                vec![
                    KeyValue::new("db.system", "postgresql"),
                    KeyValue::new(
                        "db.query.text",
                        format!("SELECT * FROM items WHERE cart = {user}"),
                    ),
                ],
            ),
            span(
                3,
                Some(1),
                "POST /price",
                vec![
                    KeyValue::new("http.request.method", "POST"),
                    KeyValue::new("server.address", "pricing.internal"),
                ],
            ),
        ],
    );
    batch.resources[0]
        .attributes
        .push(KeyValue::new("host.name", format!("web-{}", trace % 5)));
    batch
}

/// Once the process has a chunk dictionary, chunks are written with it (naming it) and every
/// path that reads a stored chunk back (a trace, a re-sent span, a session merge) decodes them.
fn chunks_compressed_with_a_dictionary_read_back_whole(factory: Factory<'_>) {
    let samples: Vec<Vec<u8>> = (0..600)
        .map(|t| postcard::to_stdvec(&realistic_trace(t)).unwrap())
        .collect();
    // Trained here unless the process already has one (then it is used).
    let _ = crate::chunk::dictionary::train(&samples);
    let key = crate::chunk::dictionary::for_encoding()
        .expect("a dictionary trained on 600 traces")
        .key;
    let (mut writer, store) = factory();
    let traces: Vec<SpanBatch> = (1000..1040).map(realistic_trace).collect();
    let prepared: Vec<WriteBatch> = traces.iter().cloned().map(prepare_spans).collect();
    for chunk in prepared.iter().flat_map(|b| &b.traces) {
        assert_eq!(crate::chunk::dictionary_key(&chunk.data), Some(key));
    }
    writer.write(&prepared).unwrap();
    // A re-sent span (read back to be recognised) and a new one, as one request.
    let mut resent = traces[0].clone();
    resent.spans.truncate(1);
    let mut late = realistic_trace(1000);
    late.spans.truncate(1);
    late.spans[0].span_id = SpanId([9; 8]);
    late.spans[0].parent_span_id = Some(traces[0].spans[0].span_id);
    resent.spans.push(late.spans[0].clone());
    writer.write(&[prepare_spans(resent)]).unwrap();
    for (n, sent) in traces.iter().enumerate() {
        let stored = store.get_trace(sent.spans[0].trace_id).unwrap().unwrap();
        let mut expected = sent.spans.clone();
        if n == 0 {
            expected.push(late.spans[0].clone());
        }
        assert_eq!(stored.spans.spans, expected, "trace {n}");
        assert_eq!(stored.spans.resources, sent.resources, "trace {n}");
    }
    assert_eq!(store.stats().unwrap().spans, 121);

    // Merge mode (sessions): the stored chunk is decoded, merged with the new one, re-encoded.
    let first = realistic_trace(2000);
    writer
        .write(&[prepare_session(first.clone(), vec![])])
        .unwrap();
    let mut longer = first.clone();
    longer.spans[2].end_unix_nano += 5_000;
    writer
        .write(&[prepare_session(longer.clone(), vec![])])
        .unwrap();
    let merged = store.get_trace(first.spans[0].trace_id).unwrap().unwrap();
    assert_eq!(
        merged.spans.spans, longer.spans,
        "the newer version of each span, once"
    );
    assert_eq!(store.stats().unwrap().spans, 124);
}

pub fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
    Span {
        flags: 0,
        kind: SpanKind::Server,
        attributes: vec![KeyValue::new("n", AnyValue::Int(id as i64))],
        ..Span::new(
            TraceId([trace; 16]),
            SpanId([id; 8]),
            parent.map(|p| SpanId([p; 8])),
            name,
            start,
            end,
        )
    }
}

pub fn batch(service: &str, spans: Vec<Span>) -> SpanBatch {
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, service)],
            ..Default::default()
        }],
        scopes: vec![Scope {
            name: "test".into(),
            ..Default::default()
        }],
        spans,
    }
}

fn late_root_and_split_traces_are_summarised(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut child = span(1, 2, Some(1), "child", 150, 400);
    child.status.code = StatusCode::Error;
    writer
        .write(&[prepare_spans(batch("back", vec![child]))])
        .unwrap();
    let early = store
        .list_traces(&TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        early[0].root_name, "child",
        "a stand-in names the trace until the root arrives"
    );

    writer
        .write(&[prepare_spans(batch(
            "front",
            vec![span(1, 1, None, "root", 100, 500)],
        ))])
        .unwrap();
    let summary = &store
        .list_traces(&TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap()[0];
    assert_eq!(
        (summary.root_name.as_str(), summary.service.as_str()),
        ("root", "front")
    );
    assert_eq!((summary.span_count, summary.error_count), (2, 1));
    assert_eq!(
        (summary.start_unix_nano, summary.duration_nanos()),
        (100, 400)
    );

    let trace = store.get_trace(TraceId([1; 16])).unwrap().unwrap();
    assert_eq!(trace.spans.spans.len(), 2);
    assert_eq!(
        store.trace_summary(TraceId([1; 16])).unwrap().as_ref(),
        Some(summary),
        "the summary row alone matches the listing"
    );
    assert_eq!(trace.summary, *summary);
    assert!(store.trace_summary(TraceId([9; 16])).unwrap().is_none());
    let services: Vec<&str> = trace
        .spans
        .spans
        .iter()
        .map(|s| trace.spans.resource_of(s).service_name())
        .collect();
    assert_eq!(services, ["back", "front"]);
    assert!(store.get_trace(TraceId([9; 16])).unwrap().is_none());
    let stats = store.stats().unwrap();
    assert_eq!((stats.spans, stats.traces), (2, 1));
    assert!(stats.bytes_on_disk > 0);
}

/// A server span that outlives its client root (the client gave up, the server went on): the
/// trace's duration is the root's own, the last span's end is kept beside it, and the root's
/// failure is the root's, whichever order the spans arrive in.
fn a_trace_lasts_as_long_as_its_root(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut root = span(3, 1, None, "GET /checkout", 100, 600);
    root.status.code = StatusCode::Error;
    let server = |trace: u8| span(trace, 2, Some(1), "charge", 150, 1_100);
    writer
        .write(&[prepare_spans(batch("payments", vec![server(3)]))])
        .unwrap();
    let early = store.trace_summary(TraceId([3; 16])).unwrap().unwrap();
    assert_eq!(
        (early.duration_nanos(), early.root_failed),
        (950, false),
        "the stand-in's own duration and outcome until the root arrives"
    );
    writer
        .write(&[prepare_spans(batch("front", vec![root.clone()]))])
        .unwrap();
    // Both halves in one write: the summary is combined the same way.
    root.trace_id = TraceId([4; 16]);
    writer
        .write(&[
            prepare_spans(batch("payments", vec![server(4)])),
            prepare_spans(batch("front", vec![root])),
        ])
        .unwrap();
    for id in [3, 4] {
        let summary = store.trace_summary(TraceId([id; 16])).unwrap().unwrap();
        assert_eq!(summary.root_name, "GET /checkout");
        assert_eq!(
            (
                summary.duration_nanos(),
                summary.extent_nanos(),
                summary.last_span_end_nanos(),
                summary.root_failed
            ),
            (500, 1_000, Some(1_000), true),
            "trace {id}"
        );
    }
    let longer = |min: u64| {
        store
            .list_traces(&TraceQuery {
                min_duration_nanos: Some(min),
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len()
    };
    assert_eq!(
        (longer(500), longer(501)),
        (2, 0),
        "the duration filter reads the root's"
    );
}

fn listing_filters_and_orders_newest_first(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut failing = span(3, 1, None, "checkout", 3_000, 3_900);
    failing.status.code = StatusCode::Error;
    writer
        .write(&[
            prepare_spans(batch(
                "api",
                vec![span(1, 1, None, "GET /users", 1_000, 1_010)],
            )),
            prepare_spans(batch("worker", vec![span(2, 1, None, "job", 2_000, 2_500)])),
            prepare_spans(batch("api", vec![failing])),
        ])
        .unwrap();
    let ids = |query: TraceQuery| -> Vec<u8> {
        store
            .list_traces(&TraceQuery {
                limit: query.limit.max(1),
                ..query
            })
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect()
    };
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            ..Default::default()
        }),
        [3, 2, 1]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 2,
            ..Default::default()
        }),
        [3, 2]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            service: Some("api".into()),
            ..Default::default()
        }),
        [3, 1]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            name_contains: Some("user".into()),
            ..Default::default()
        }),
        [1]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            min_duration_nanos: Some(500),
            ..Default::default()
        }),
        [3, 2]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            errors_only: true,
            ..Default::default()
        }),
        [3]
    );
    assert_eq!(
        ids(TraceQuery {
            limit: 10,
            since_unix_nano: Some(2_000),
            ..Default::default()
        }),
        [3, 2]
    );
}

fn listing_searches_any_span_and_pages_without_gaps(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut failing = span(3, 2, Some(1), "SELECT users", 3_100, 3_200);
    failing.status.code = StatusCode::Error;
    // Traces 4 and 5 start at the same instant: paging must order them by id and lose neither.
    writer
        .write(&[prepare_spans(batch(
            "api",
            vec![
                span(1, 1, None, "GET /a", 1_000, 1_100),
                span(1, 2, Some(1), "SELECT users", 1_010, 1_020),
                span(2, 1, None, "GET /b", 2_000, 2_900),
                span(3, 1, None, "GET /c", 3_000, 3_300),
                failing,
                span(4, 1, None, "GET /d", 4_000, 4_050),
                span(5, 1, None, "GET /e", 4_000, 4_060),
            ],
        ))])
        .unwrap();
    let ids = |query: TraceQuery| -> Vec<u8> {
        store
            .list_traces(&TraceQuery {
                limit: query.limit.max(1),
                ..query
            })
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect()
    };
    let all = TraceQuery {
        limit: 10,
        ..Default::default()
    };
    assert_eq!(ids(all.clone()), [5, 4, 3, 2, 1]);
    assert_eq!(
        ids(TraceQuery {
            operation: Some("SELECT users".into()),
            ..all.clone()
        }),
        [3, 1],
        "a child span's name finds its trace"
    );
    assert_eq!(
        ids(TraceQuery {
            operation: Some("SELECT".into()),
            ..all.clone()
        }),
        Vec::<u8>::new(),
        "operation matches whole names"
    );
    assert_eq!(
        ids(TraceQuery {
            max_duration_nanos: Some(100),
            ..all.clone()
        }),
        [5, 4, 1]
    );
    assert_eq!(
        ids(TraceQuery {
            without_errors: true,
            ..all.clone()
        }),
        [5, 4, 2, 1]
    );
    assert_eq!(
        ids(TraceQuery {
            since_unix_nano: Some(2_000),
            until_unix_nano: Some(4_000),
            ..all.clone()
        }),
        [3, 2]
    );
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_traces(&TraceQuery {
                limit: 2,
                after,
                ..Default::default()
            })
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(TraceCursor::of(last));
        pages.push(page.iter().map(|t| t.trace_id.0[0]).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec![5, 4], vec![3, 2], vec![1]]);
    let services = store.services(None).unwrap();
    assert_eq!(
        services,
        [ServiceSummary {
            service: "api".into(),
            traces: 5,
            root_traces: 5,
            error_traces: 1,
            spans: 7,
            first_start_unix_nano: 1_000,
            last_end_unix_nano: 4_060,
        }]
    );
    assert_eq!(store.services(Some(3_000)).unwrap()[0].traces, 3);
    assert!(store.services(Some(5_000)).unwrap().is_empty());
    let cursor = TraceCursor::of(&store.list_traces(&all).unwrap()[1]);
    assert_eq!(TraceCursor::decode(&cursor.encode()), Some(cursor));
    assert_eq!(TraceCursor::decode("12-nothex"), None);
}

fn prefixes_resolve_uniquely_or_explain(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let mut a = span(0, 1, None, "a", 1, 2);
    a.trace_id = "ab120000000000000000000000000001".parse().unwrap();
    let mut b = span(0, 1, None, "b", 1, 2);
    b.trace_id = "ab340000000000000000000000000002".parse().unwrap();
    writer
        .write(&[prepare_spans(batch("s", vec![a.clone(), b]))])
        .unwrap();
    assert_eq!(store.resolve_trace_id("AB12").unwrap(), a.trace_id);
    assert_eq!(store.resolve_trace_id("ab1").unwrap(), a.trace_id);
    assert_eq!(
        store.resolve_trace_id(&a.trace_id.to_hex()).unwrap(),
        a.trace_id
    );
    assert!(
        matches!(store.resolve_trace_id("ab"), Err(StoreError::AmbiguousPrefix { candidates, .. }) if candidates.len() == 2)
    );
    assert!(matches!(
        store.resolve_trace_id("cd"),
        Err(StoreError::TraceNotFound(_))
    ));
    assert!(matches!(
        store.resolve_trace_id("xyz"),
        Err(StoreError::InvalidTraceId(_))
    ));
    assert!(matches!(
        store.resolve_trace_id(""),
        Err(StoreError::InvalidTraceId(_))
    ));
}

/// Jaeger and Zipkin write 64-bit trace ids as 16 hex digits; OpenTelemetry carries them
/// zero-padded to 16 bytes. Either form (or a prefix of the short one) finds the trace.
fn sixty_four_bit_ids_resolve_as_jaeger_and_zipkin_write_them(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let jaeger: TraceId = "00000000000000004bf92f3577b34da6".parse().unwrap();
    let mut a = span(0, 1, None, "a", 1, 2);
    a.trace_id = jaeger;
    let mut b = span(0, 1, None, "b", 1, 2);
    b.trace_id = "7a1c0000000000000000000000000001".parse().unwrap();
    writer
        .write(&[prepare_spans(batch("s", vec![a, b]))])
        .unwrap();
    for text in [
        "4bf92f3577b34da6",
        "4BF92F3577B34DA6",
        " 4bf92f3577b34da6\n",
        "00000000000000004bf92f3577b34da6",
        "4bf92f35",
    ] {
        assert_eq!(store.resolve_trace_id(text).unwrap(), jaeger, "{text:?}");
    }
    assert!(matches!(
        store.resolve_trace_id("4bf92f3577b34da7"),
        Err(StoreError::TraceNotFound(_))
    ));
    // A 128-bit id that starts with the same 16 digits makes them ambiguous: both are named.
    let mut c = span(0, 1, None, "c", 1, 2);
    c.trace_id = "4bf92f3577b34da6aaaaaaaaaaaaaaaa".parse().unwrap();
    writer
        .write(&[prepare_spans(batch("s", vec![c.clone()]))])
        .unwrap();
    match store.resolve_trace_id("4bf92f3577b34da6") {
        Err(StoreError::AmbiguousPrefix { candidates, .. }) => assert_eq!(
            candidates,
            [c.trace_id.to_hex(), jaeger.to_hex()],
            "the 128-bit match, then the 64-bit one"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .resolve_trace_id("00000000000000004bf92f3577b34da6")
            .unwrap(),
        jaeger,
        "the padded form is exact"
    );
    let error = store.resolve_trace_id("4bf92f3577b34da6x").unwrap_err();
    assert_eq!(
        error.to_string(),
        "\"4bf92f3577b34da6x\" is not a trace id or prefix: trace ids are 32 hexadecimal characters (16 for a 64-bit id, as Jaeger and Zipkin write them)"
    );
}

fn logs_come_back_with_their_trace_in_time_order(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let log = |time: u64, trace: Option<u8>, body: &str| LogRecord {
        time_unix_nano: time,
        body: AnyValue::from(body),
        trace_id: trace.map(|t| TraceId([t; 16])),
        span_id: trace.map(|_| SpanId([1; 8])),
        ..Default::default()
    };
    let logs = |records| LogBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        logs: records,
    };
    writer
        .write(&[
            prepare_logs(logs(vec![
                log(30, Some(1), "third"),
                log(10, Some(1), "first"),
                log(5, None, "other"),
            ])),
            prepare_logs(logs(vec![
                log(20, Some(1), "second"),
                log(1, Some(2), "elsewhere"),
            ])),
        ])
        .unwrap();
    let found = store.logs_for_trace(TraceId([1; 16])).unwrap();
    let bodies: Vec<String> = found
        .logs
        .iter()
        .map(|l| l.body.to_display_string())
        .collect();
    assert_eq!(bodies, ["first", "second", "third"]);
    assert_eq!(store.stats().unwrap().logs, 5);
}

fn a_failed_transaction_stores_nothing(factory: Factory<'_>) {
    let (mut writer, store) = factory();
    let good = prepare_spans(batch("s", vec![span(1, 1, None, "ok", 1, 2)]));
    let mut corrupt = prepare_spans(batch("s", vec![span(2, 2, None, "bad", 1, 2)]));
    // An impossible count violates the schema's checks, so the second statement fails.
    corrupt.traces[0].span_count = u64::MAX;
    corrupt.traces[0].trace_id = TraceId([1; 16]);
    assert!(writer.write(&[good, corrupt]).is_err());
    assert!(
        store
            .list_traces(&TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stats().unwrap().spans, 0);
}

/// A fresh, empty store's writer, reader and accounts.
pub type TeamFactory<'a> =
    &'a dyn Fn() -> (Box<dyn StoreWriter>, Box<dyn Store>, Box<dyn Accounts>);

/// The suite's second half: projects, tokens, retention. Backends holding one project (the
/// embedded store) must refuse other projects clearly; the others must keep them apart.
pub fn run_team(factory: TeamFactory<'_>) {
    projects_keep_their_data_apart(factory);
    tokens_are_stored_listed_used_and_revoked(factory);
    projects_are_made_once_and_keep_a_retention(factory);
    old_logs_are_deleted_by_time(factory);
}

fn projects_keep_their_data_apart(factory: TeamFactory<'_>) {
    let (mut writer, store, _) = factory();
    let other = ProjectId(2);
    let Ok(theirs) = store.in_project(other) else {
        let error = store.in_project(other).err().unwrap();
        assert!(
            matches!(error, StoreError::Unsupported(_)) && error.to_string().contains("PostgreSQL"),
            "{error}"
        );
        let refused = writer
            .write(
                &[prepare_spans(batch("s", vec![span(1, 1, None, "x", 1, 2)])).in_project(other)],
            )
            .unwrap_err();
        assert!(matches!(refused, StoreError::Unsupported(_)), "{refused}");
        assert!(
            store
                .list_traces(&TraceQuery {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .is_empty()
        );
        return;
    };
    assert_eq!(theirs.project(), other);
    let output = b"cargo: command not found".to_vec();
    let hash = *blake3::hash(&output).as_bytes();
    // The same trace id in both projects: two traces, not one.
    let ours = prepare_spans(batch(
        "api",
        vec![
            span(1, 1, None, "GET /ours", 100, 200),
            span(1, 2, Some(1), "SELECT ours", 110, 120),
        ],
    ));
    let mut session = prepare_session(
        batch("codex", vec![session_root(3, "codex", "/secret", 300, 400)]),
        vec![(hash, output.clone())],
    );
    session.documents.push([9; 32]);
    session.cursors.push(ImportCursor {
        source: "/t/x.jsonl".into(),
        offset: 10,
        fingerprint: [1; 32],
        state: vec![],
    });
    let log = LogRecord {
        time_unix_nano: 150,
        body: AnyValue::from("their log"),
        trace_id: Some(TraceId([1; 16])),
        span_id: Some(SpanId([1; 8])),
        ..Default::default()
    };
    let logs = prepare_logs(LogBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        logs: vec![log],
    });
    writer
        .write(&[
            ours,
            prepare_spans(batch(
                "web",
                vec![span(1, 1, None, "GET /theirs", 500, 900)],
            ))
            .in_project(other),
            session.in_project(other),
            logs.in_project(other),
        ])
        .unwrap();
    let all = TraceQuery {
        limit: 10,
        ..Default::default()
    };
    let names = |s: &dyn Store| -> Vec<String> {
        s.list_traces(&all)
            .unwrap()
            .into_iter()
            .map(|t| t.root_name)
            .collect()
    };
    assert_eq!(names(&*store), ["GET /ours"]);
    assert_eq!(names(&*theirs), ["GET /theirs", "session 1"]);
    let mine = store.get_trace(TraceId([1; 16])).unwrap().unwrap();
    assert_eq!(mine.spans.spans.len(), 2);
    assert_eq!(
        theirs
            .get_trace(TraceId([1; 16]))
            .unwrap()
            .unwrap()
            .spans
            .spans
            .len(),
        1
    );
    assert!(store.get_trace(TraceId([3; 16])).unwrap().is_none());
    assert!(matches!(
        store.resolve_trace_id("0303"),
        Err(StoreError::TraceNotFound(_))
    ));
    assert_eq!(theirs.resolve_trace_id("0303").unwrap(), TraceId([3; 16]));
    assert!(
        store
            .logs_for_trace(TraceId([1; 16]))
            .unwrap()
            .logs
            .is_empty()
    );
    assert_eq!(
        theirs.logs_for_trace(TraceId([1; 16])).unwrap().logs.len(),
        1
    );
    assert_eq!(
        store.operation_names().unwrap(),
        ["GET /ours", "SELECT ours"]
    );
    assert!(
        store
            .traces_with_operation(&OperationFilter::named("GET /theirs"), None, 10)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        theirs
            .traces_with_operation(&OperationFilter::named("GET /theirs"), None, 10)
            .unwrap()
            .len(),
        1
    );
    assert!(store.session(TraceId([3; 16])).unwrap().is_none());
    assert!(
        store
            .list_sessions(&SessionQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        theirs
            .list_sessions(&SessionQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .len(),
        1
    );
    assert!(
        store.blob(&hash).unwrap().is_none(),
        "a blob belongs to its project"
    );
    assert_eq!(theirs.blob(&hash).unwrap(), Some(output));
    assert!(!store.is_imported(&[9; 32]).unwrap());
    assert!(theirs.is_imported(&[9; 32]).unwrap());
    assert!(store.import_cursor("/t/x.jsonl").unwrap().is_none());
    assert!(theirs.import_cursor("/t/x.jsonl").unwrap().is_some());
    assert_eq!(store.services(None).unwrap().len(), 1);
    let (s1, s2) = (store.stats().unwrap(), theirs.stats().unwrap());
    assert_eq!((s1.spans, s1.traces, s1.logs), (2, 1, 0));
    assert_eq!((s2.spans, s2.traces, s2.logs), (2, 2, 1));
    // Deleting their trace 1 leaves ours.
    writer
        .write(&[WriteBatch {
            deletes: vec![TraceId([1; 16])],
            ..Default::default()
        }
        .in_project(other)])
        .unwrap();
    assert!(theirs.get_trace(TraceId([1; 16])).unwrap().is_none());
    assert_eq!(
        store
            .get_trace(TraceId([1; 16]))
            .unwrap()
            .unwrap()
            .spans
            .spans
            .len(),
        2
    );
    assert_eq!(theirs.stats().unwrap().logs, 0);
    assert!(
        theirs
            .traces_with_operation(&OperationFilter::named("GET /theirs"), None, 10)
            .unwrap()
            .is_empty(),
        "the operation index forgets a deleted trace"
    );
    assert_eq!(
        store
            .traces_with_operation(&OperationFilter::named("GET /ours"), None, 10)
            .unwrap()
            .len(),
        1
    );
}

fn tokens_are_stored_listed_used_and_revoked(factory: TeamFactory<'_>) {
    let (_writer, _store, accounts) = factory();
    let token = NewToken {
        public_id: "dtk_abc123".into(),
        project: ProjectId::DEFAULT,
        name: "ci".into(),
        scopes: vec!["ingest".into(), "read".into()],
        salt: [3; 16],
        hash: [4; 32],
        created_unix_nano: 1_000,
        expires_unix_nano: Some(9_000),
    };
    accounts.add_token(&token).unwrap();
    assert!(accounts.add_token(&token).is_err(), "public ids are unique");
    let found = accounts.token("dtk_abc123").unwrap().unwrap();
    assert_eq!(found.token, token);
    assert_eq!(found.project_name, "default");
    assert_eq!(
        (found.last_used_unix_nano, found.revoked_unix_nano),
        (None, None)
    );
    assert!(accounts.token("dtk_nope").unwrap().is_none());
    accounts.token_used("dtk_abc123", 5_000).unwrap();
    accounts.token_used("dtk_abc123", 4_000).unwrap();
    assert_eq!(
        accounts
            .token("dtk_abc123")
            .unwrap()
            .unwrap()
            .last_used_unix_nano,
        Some(5_000)
    );
    assert!(accounts.revoke_token("dtk_abc123", 6_000).unwrap());
    assert!(
        !accounts.revoke_token("dtk_abc123", 7_000).unwrap(),
        "revoked once"
    );
    assert!(!accounts.revoke_token("dtk_nope", 7_000).unwrap());
    let listed = accounts.tokens().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_unix_nano, Some(6_000));
}

fn projects_are_made_once_and_keep_a_retention(factory: TeamFactory<'_>) {
    let (_writer, _store, accounts) = factory();
    let default = accounts.project_named("default").unwrap().unwrap();
    assert_eq!(
        (default.id, default.retention_nanos),
        (ProjectId::DEFAULT, None)
    );
    accounts
        .set_retention(ProjectId::DEFAULT, Some(86_400_000_000_000))
        .unwrap();
    assert_eq!(
        accounts.projects().unwrap()[0].retention_nanos,
        Some(86_400_000_000_000)
    );
    accounts.set_retention(ProjectId::DEFAULT, None).unwrap();
    assert_eq!(
        accounts.ensure_project("default").unwrap().retention_nanos,
        None
    );
    match accounts.ensure_project("mobile") {
        Ok(made) => {
            assert_ne!(made.id, ProjectId::DEFAULT);
            assert_eq!(
                accounts.ensure_project("mobile").unwrap().id,
                made.id,
                "made once"
            );
            let names: Vec<String> = accounts
                .projects()
                .unwrap()
                .into_iter()
                .map(|p| p.name)
                .collect();
            assert_eq!(names, ["default", "mobile"]);
        }
        Err(error) => {
            assert!(matches!(error, StoreError::Unsupported(_)), "{error}");
            assert!(accounts.project_named("mobile").unwrap().is_none());
        }
    }
}

fn old_logs_are_deleted_by_time(factory: TeamFactory<'_>) {
    let (mut writer, store, _) = factory();
    let log = |time: u64, trace: Option<u8>| LogRecord {
        time_unix_nano: time,
        body: AnyValue::from("x"),
        trace_id: trace.map(|t| TraceId([t; 16])),
        ..Default::default()
    };
    let logs = |records| {
        prepare_logs(LogBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope::default()],
            logs: records,
        })
    };
    writer
        .write(&[
            logs(vec![log(10, None), log(20, Some(1))]),
            logs(vec![log(500, Some(1))]),
        ])
        .unwrap();
    writer
        .write(&[WriteBatch {
            delete_logs_before: Some(100),
            ..Default::default()
        }])
        .unwrap();
    assert_eq!(store.stats().unwrap().logs, 1);
    let left = store.logs_for_trace(TraceId([1; 16])).unwrap();
    assert_eq!(left.logs.len(), 1);
    assert_eq!(left.logs[0].time_unix_nano, 500);
}
