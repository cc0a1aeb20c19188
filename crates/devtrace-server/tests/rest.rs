//! The REST API and the UI routes, driven through the router (no socket) against a real SQLite
//! store holding traces of a known shape: every endpoint the web UI uses, with exact numbers,
//! and the 400s (with the parameter named) for bad input.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use devtrace_model::{
    AnyValue, Event, KeyValue, LogBatch, LogRecord, Resource, Scope, Span, SpanBatch, SpanId,
    SpanKind, Status, StatusCode as SpanStatus, TraceId, semconv,
};
use devtrace_server::api::router;
use devtrace_server::guard::AllowedHosts;
use devtrace_server::state::{ApiState, IngestRate};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::writer::Writer;
use devtrace_store::{prepare_logs, prepare_spans};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;

const MS: u64 = 1_000_000;

fn now() -> u64 {
    devtrace_query::timefmt::now_nanos()
}

fn id(n: u8) -> TraceId {
    TraceId([n; 16])
}

fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
    Span {
        flags: 0,
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

fn batch(service: &str, spans: Vec<Span>) -> SpanBatch {
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, service)],
            ..Default::default()
        }],
        scopes: vec![Scope {
            name: "shop.instrumentation".into(),
            version: "1.0".into(),
            ..Default::default()
        }],
        spans,
    }
}

/// `checkout` (trace n, starting at `t0`): six sequential `SELECT item` queries (0..60 ms), a
/// `charge` call (60..90 ms, failing with an exception when `fail`), an LLM call (90..100 ms).
fn checkout(n: u8, t0: u64, fail: bool) -> SpanBatch {
    let mut spans = vec![span(n, 1, None, "checkout", t0, t0 + 100 * MS)];
    spans[0].kind = SpanKind::Server;
    spans[0]
        .attributes
        .push(KeyValue::new("http.route", format!("/checkout/{n}")));
    for k in 0..6u8 {
        let start = t0 + u64::from(k) * 10 * MS;
        let mut query = span(n, 10 + k, Some(1), "SELECT item", start, start + 10 * MS);
        query.kind = SpanKind::Client;
        query.attributes = vec![
            KeyValue::new("db.system", "sqlite"),
            KeyValue::new("db.statement", "SELECT * FROM items WHERE id = ?"),
        ];
        spans.push(query);
    }
    let mut charge = span(n, 2, Some(1), "charge", t0 + 60 * MS, t0 + 90 * MS);
    charge.kind = SpanKind::Client;
    charge.attributes = vec![
        KeyValue::new("http.request.method", "POST"),
        KeyValue::new("url.full", "https://pay.example/charge"),
    ];
    if fail {
        charge.status = Status {
            code: SpanStatus::Error,
            message: "card declined".into(),
        };
        charge.events.push(Event {
            time_unix_nano: t0 + 89 * MS,
            name: semconv::EXCEPTION_EVENT.into(),
            attributes: vec![
                KeyValue::new(semconv::EXCEPTION_TYPE, "PaymentError"),
                KeyValue::new(semconv::EXCEPTION_MESSAGE, "card declined"),
                KeyValue::new(
                    semconv::EXCEPTION_STACKTRACE,
                    "Traceback:\n  charge()\n  pay()",
                ),
            ],
            dropped_attributes_count: 0,
        });
    }
    spans.push(charge);
    let mut llm = span(n, 3, Some(1), "llm.summarize", t0 + 90 * MS, t0 + 100 * MS);
    llm.attributes = vec![
        KeyValue::new("gen_ai.system", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o"),
        KeyValue::new("gen_ai.usage.input_tokens", AnyValue::Int(1200)),
        KeyValue::new("gen_ai.usage.output_tokens", AnyValue::Int(80)),
        KeyValue::new("gen_ai.prompt", "Summarise the order"),
        KeyValue::new("gen_ai.completion", "Three items, paid."),
    ];
    spans.push(llm);
    batch("shop", spans)
}

/// A `devtrace run` of `cargo test`, labelled, with test counts.
fn run_trace(n: u8, t0: u64, label: &str) -> SpanBatch {
    let mut root = span(n, 1, None, "cargo test", t0, t0 + 2_000 * MS);
    root.attributes = vec![
        KeyValue::new(semconv::RUN_ID, TraceId([n; 16]).to_hex()),
        KeyValue::new(semconv::RUN_COMMAND, "cargo test"),
        KeyValue::new(semconv::RUN_LABEL, label),
        KeyValue::new(semconv::RUN_EXIT_CODE, AnyValue::Int(0)),
        KeyValue::new(semconv::TEST_RUNNER, "cargo"),
        KeyValue::new(semconv::TEST_PASSED, AnyValue::Int(41)),
        KeyValue::new(semconv::TEST_FAILED, AnyValue::Int(0)),
        KeyValue::new(semconv::TEST_SKIPPED, AnyValue::Int(1)),
    ];
    batch("devtrace", vec![root])
}

struct Api {
    _dir: tempfile::TempDir,
    router: axum::Router,
    state: ApiState,
    _stop: tokio::sync::watch::Sender<bool>,
    t0: u64,
    _writer: Writer,
}

async fn api() -> Api {
    let t0 = now() - 600_000 * MS; // ten minutes ago
    let mut batches = vec![
        prepare_spans(checkout(1, t0, false)),
        prepare_spans(checkout(2, t0 + 10_000 * MS, true)),
        prepare_spans(checkout(3, t0 + 20_000 * MS, false)),
        prepare_spans(run_trace(4, t0 + 30_000 * MS, "before")),
        prepare_spans(run_trace(5, t0 + 40_000 * MS, "after")),
    ];
    let logs = LogBatch {
        resources: vec![Resource::default()],
        scopes: vec![Scope::default()],
        logs: vec![LogRecord {
            time_unix_nano: t0 + 10_000 * MS + 70 * MS,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: AnyValue::from("payment provider said no"),
            trace_id: Some(id(2)),
            span_id: Some(SpanId([2; 8])),
            ..Default::default()
        }],
    };
    batches.push(prepare_logs(logs));
    api_with(t0, batches).await
}

/// An API over a store holding `batches`; `t0` is when their data starts.
async fn api_with(t0: u64, batches: Vec<devtrace_store::WriteBatch>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let writer = Writer::start(
        Box::new(SqliteWriter::open(dir.path()).unwrap()),
        Default::default(),
    );
    let handle = writer.handle();
    for prepared in batches {
        handle.submit(prepared).unwrap().committed().await.unwrap();
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let store: Arc<dyn devtrace_store::Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let state = ApiState {
        mcp: devtrace_server::mcp_http::McpHttp::new(
            Arc::clone(&store),
            None,
            "127.0.0.1:4319".parse().unwrap(),
        ),
        store,
        writer: handle.clone(),
        rate: IngestRate::start(handle.clone()),
        traces: Default::default(),
        stopping,
        redactor: Arc::new(devtrace_ingest::redact::Redactor::builtin()),
        auth: devtrace_server::auth::Auth::off(Arc::new(devtrace_server::auth::NoAccounts)),
        feed: Arc::new(handle),
        secure_cookies: false,
        principal: None,
        qa: None,
    };
    Api {
        router: router(
            state.clone(),
            AllowedHosts::new(([127, 0, 0, 1], 4319).into(), &[]),
        ),
        state,
        _dir: dir,
        _stop: stop,
        t0,
        _writer: writer,
    }
}

impl Api {
    async fn raw(&self, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let response = self
            .router
            .clone()
            .oneshot(
                Request::get(uri)
                    .header(header::HOST, "127.0.0.1:4319")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body.to_vec())
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (status, _, body) = self.raw(uri).await;
        let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
            panic!("{uri}: not JSON ({e}): {}", String::from_utf8_lossy(&body))
        });
        (status, value)
    }

    async fn ok(&self, uri: &str) -> Value {
        let (status, value) = self.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {value}");
        value
    }

    /// Asserts a 400 naming `parameter`, whose message contains `says`.
    async fn bad(&self, uri: &str, parameter: &str, says: &str) {
        let (status, value) = self.get(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {value}");
        let message = value["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{parameter}: ")) && message.contains(says),
            "{uri}: {message:?} should name {parameter} and say {says:?}"
        );
        assert_eq!(value["parameter"], parameter, "{uri}");
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap()[..2].to_owned())
        .collect()
}

/// The `/api/` paths a router serves (axum lists them in its Debug output), less the
/// document itself and the catch-all that answers unknown API paths with a JSON 404.
fn routed_api_paths(router: &axum::Router) -> BTreeSet<String> {
    format!("{router:?}")
        .split('"')
        .filter(|part| part.starts_with("/api/"))
        .filter(|part| *part != devtrace_server::rest::OPENAPI_PATH && *part != "/api/{*rest}")
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let api = api().await;
    let document = api.ok("/api/v1/openapi.json").await;
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    // The API port's whole router as served (REST, sessions, MCP, the UI): every /api/ path it
    // routes is in the document.
    let routed = routed_api_paths(&api.router);
    assert!(routed.len() >= 22, "routes found: {routed:?}");
    assert_eq!(routed, documented);
    // So a route mounted beside the REST router instead of through it fails the comparison.
    let extended = router(
        api.state.clone(),
        AllowedHosts::new(([127, 0, 0, 1], 4319).into(), &[]),
    )
    .route(
        "/api/v1/undocumented",
        axum::routing::get(|| async { "hidden" }),
    );
    let undocumented: Vec<String> = routed_api_paths(&extended)
        .difference(&documented)
        .cloned()
        .collect();
    assert_eq!(undocumented, ["/api/v1/undocumented"]);

    // Every documented operation has a success response, and the router serves it with that
    // method: never 405, never the 404 of an unknown endpoint. (Ids are placeholders; bodies
    // are empty documents, refused without storing anything.)
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|status| status.starts_with('2')),
                "{method} {path}: {responses:?}"
            );
            let uri: String = path
                .split('/')
                .map(|part| if part.starts_with('{') { "0" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            let response = api
                .router
                .clone()
                .oneshot(
                    Request::builder()
                        .method(method.to_uppercase().as_str())
                        .uri(&uri)
                        .header(header::HOST, "127.0.0.1:4319")
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from("{}"))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            if status == StatusCode::NOT_FOUND {
                let body = response.into_body().collect().await.unwrap().to_bytes();
                let text = String::from_utf8_lossy(&body);
                assert!(!text.contains("no such endpoint"), "{method} {uri}: {text}");
            }
            operations += 1;
        }
    }
    assert!(operations >= 24, "{operations} operations");
    for schema in [
        "TracePage",
        "Waterfall",
        "SpanDetail",
        "OperationAnalytics",
        "Finding",
        "SessionList",
        "SessionOverview",
        "TimelineEntry",
        "BlobPage",
        "ApiErrorBody",
        "FieldErrorBody",
    ] {
        assert!(
            document["components"]["schemas"][schema].is_object(),
            "{schema} is described"
        );
    }
}

#[tokio::test]
async fn the_traces_list_filters_pages_and_refuses_bad_parameters() {
    let api = api().await;
    let all = api.ok("/api/v1/traces").await;
    assert_eq!(ids(&all), ["05", "04", "03", "02", "01"]);
    let first = &all["traces"][2];
    assert_eq!(first["root_name"], "checkout");
    assert_eq!(first["service"], "shop");
    assert_eq!(first["duration_ns"], 100 * MS);
    assert_eq!(first["span_count"], 9);
    assert_eq!(all["next_cursor"], Value::Null);

    assert_eq!(
        ids(&api.ok("/api/v1/traces?service=shop").await),
        ["03", "02", "01"]
    );
    assert_eq!(ids(&api.ok("/api/v1/traces?status=error").await), ["02"]);
    assert_eq!(
        ids(&api.ok("/api/v1/traces?status=ok&service=shop").await),
        ["03", "01"]
    );
    assert_eq!(
        ids(&api.ok("/api/v1/traces?operation=SELECT%20item").await),
        ["03", "02", "01"]
    );
    assert_eq!(
        ids(&api.ok("/api/v1/traces?min_duration=1s").await),
        ["05", "04"]
    );
    assert_eq!(
        ids(&api.ok("/api/v1/traces?max_duration=100ms").await),
        ["03", "02", "01"]
    );
    assert_eq!(
        ids(&api.ok("/api/v1/traces?name=cargo").await),
        ["05", "04"]
    );
    assert_eq!(
        ids(&api
            .ok("/api/v1/traces?attr=http.route%3D%2Fcheckout%2F2")
            .await),
        ["02"]
    );
    assert_eq!(
        ids(&api.ok("/api/v1/traces?attr=gen_ai.request.model~gpt").await),
        ["03", "02", "01"]
    );
    assert_eq!(ids(&api.ok("/api/v1/traces?label=before").await), ["04"]);
    let run = TraceId([5; 16]).to_hex();
    assert_eq!(
        ids(&api.ok(&format!("/api/v1/traces?run={run}")).await),
        ["05"]
    );
    let since = api.t0 + 15_000 * MS;
    assert_eq!(
        ids(&api
            .ok(&format!(
                "/api/v1/traces?since={since}&until={}",
                api.t0 + 35_000 * MS
            ))
            .await),
        ["04", "03"]
    );

    let page = api.ok("/api/v1/traces?limit=2").await;
    assert_eq!(ids(&page), ["05", "04"]);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let next = api
        .ok(&format!("/api/v1/traces?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(ids(&next), ["03", "02"]);

    api.bad(
        "/api/v1/traces?limit=0",
        "limit",
        "not a whole number from 1 to 1000",
    )
    .await;
    api.bad("/api/v1/traces?limit=many", "limit", "from 1 to 1000")
        .await;
    api.bad("/api/v1/traces?min_duration=fast", "min_duration", "250ms")
        .await;
    api.bad(
        "/api/v1/traces?status=broken",
        "status",
        "use one of: error, ok",
    )
    .await;
    api.bad("/api/v1/traces?attr=nokey", "attr", "key=value")
        .await;
    api.bad("/api/v1/traces?cursor=abc", "cursor", "next_cursor")
        .await;
    api.bad("/api/v1/traces?since=yesterday", "since", "nor a time like")
        .await;
    api.bad(
        "/api/v1/traces?serivce=shop",
        "serivce",
        "accepted parameters: service",
    )
    .await;
}

#[tokio::test]
async fn the_waterfall_is_columnar_with_folds_the_critical_path_and_errors() {
    let api = api().await;
    let trace = TraceId([2; 16]).to_hex();
    let view = api.ok(&format!("/api/v1/traces/{trace}/waterfall")).await;
    assert_eq!(view["span_count"], 9);
    assert_eq!(view["error_count"], 1);
    assert_eq!(view["session"], false, "a program trace");
    assert_eq!(view["attached_traces"], serde_json::json!([]), "not a run");
    let origin = api.ok(&format!("/api/v1/traces/{trace}/origin")).await;
    assert_eq!(origin, serde_json::json!({"session": null}), "not a run");
    assert_eq!(view["duration_ns"], 100 * MS);
    let strings = view["strings"].as_array().unwrap();
    let names: Vec<&str> = view["name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| strings[n.as_u64().unwrap() as usize].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "checkout",
            "SELECT item",
            "SELECT item",
            "SELECT item",
            "SELECT item",
            "SELECT item",
            "SELECT item",
            "charge",
            "llm.summarize"
        ]
    );
    assert_eq!(view["status"][7], 2, "charge failed");
    assert_eq!(view["log_count"][7], 1);
    assert_eq!(view["start"][7], 60 * MS);
    assert_eq!(view["subtree_end"][0], 9);
    assert_eq!(view["folds"][0]["count"], 6);
    assert_eq!(view["folds"][0]["first_row"], 1);
    assert_eq!(view["folds"][0]["last_row"], 6);
    assert_eq!(view["folds"][0]["total_ns"], 60 * MS);
    // One after another: every child is on the critical path, summing to the duration.
    let critical: Vec<u64> = view["critical"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    assert_eq!(critical.iter().sum::<u64>(), 100 * MS);
    assert_eq!(critical[7], 30 * MS);
    assert_eq!(critical[0], 0, "the root has no time of its own");
    assert_eq!(view["on_critical_path"][0], true, "but leads to the path");
    assert_eq!(strings[view["work"][8].as_u64().unwrap() as usize], "llm");
    assert_eq!(
        strings[view["work"][1].as_u64().unwrap() as usize],
        "database"
    );

    // A unique prefix is enough; unknown and malformed ids are told apart.
    let by_prefix = api.ok("/api/v1/traces/0202/waterfall").await;
    assert_eq!(by_prefix["trace_id"], trace);
    let (status, missing) = api.get("/api/v1/traces/0909/waterfall").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    api.bad("/api/v1/traces/xyz/waterfall", "id", "32 hexadecimal")
        .await;
    api.bad("/api/v1/traces/xyz/origin", "id", "32 hexadecimal")
        .await;
    let (status, missing) = api.get("/api/v1/traces/0909/origin").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let summary = api.ok(&format!("/api/v1/traces/{trace}")).await;
    assert_eq!(
        (
            summary["root_name"].as_str(),
            summary["error_count"].as_u64()
        ),
        (Some("checkout"), Some(1))
    );
}

#[tokio::test]
async fn a_span_has_its_attributes_exception_logs_and_llm_call() {
    let api = api().await;
    let trace = TraceId([2; 16]).to_hex();
    let charge = api
        .ok(&format!(
            "/api/v1/traces/{trace}/spans/{}",
            SpanId([2; 8]).to_hex()
        ))
        .await;
    assert_eq!(charge["name"], "charge");
    assert_eq!(charge["kind"], "client");
    assert_eq!(charge["status"], "error");
    assert_eq!(charge["status_message"], "card declined");
    assert_eq!(charge["work"], "http");
    assert_eq!(charge["service"], "shop");
    assert_eq!(charge["scope_name"], "shop.instrumentation");
    assert_eq!(charge["attributes"][0]["key"], "http.request.method");
    assert_eq!(charge["attributes"][0]["value"], "POST");
    assert_eq!(charge["exception"]["type"], "PaymentError");
    assert_eq!(
        charge["exception"]["stacktrace"],
        "Traceback:\n  charge()\n  pay()"
    );
    assert_eq!(charge["events"][0]["offset_ns"], 29 * MS);
    assert_eq!(charge["logs"][0]["body"], "payment provider said no");
    assert_eq!(charge["logs"][0]["severity_text"], "ERROR");
    assert_eq!(charge["resource"][0]["value"], "shop");

    let llm = api
        .ok(&format!(
            "/api/v1/traces/{trace}/spans/{}",
            SpanId([3; 8]).to_hex()
        ))
        .await;
    assert_eq!(llm["llm"]["model"], "gpt-4o");
    assert_eq!(llm["llm"]["provider"], "openai");
    assert_eq!(llm["llm"]["input_tokens"], 1200);
    assert_eq!(llm["llm"]["output_tokens"], 80);
    assert_eq!(llm["llm"]["prompt"], "Summarise the order");
    assert_eq!(llm["llm"]["response"], "Three items, paid.");
    assert_eq!(llm["attributes"][2]["type"], "int");

    api.bad(
        &format!("/api/v1/traces/{trace}/spans/nothex"),
        "span_id",
        "16 hexadecimal",
    )
    .await;
    let (status, missing) = api
        .get(&format!(
            "/api/v1/traces/{trace}/spans/{}",
            SpanId([99; 8]).to_hex()
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["error"].as_str().unwrap().contains("has no span"));
}

#[tokio::test]
async fn search_within_a_trace_and_its_timeline() {
    let api = api().await;
    let trace = TraceId([2; 16]).to_hex();
    let found = api
        .ok(&format!("/api/v1/traces/{trace}/search?q=declined"))
        .await;
    assert_eq!(
        found["span_ids"],
        serde_json::json!([SpanId([2; 8]).to_hex()])
    );
    let queries = api
        .ok(&format!("/api/v1/traces/{trace}/search?q=FROM+items"))
        .await;
    assert_eq!(queries["span_ids"].as_array().unwrap().len(), 6);
    api.bad(
        &format!("/api/v1/traces/{trace}/search"),
        "q",
        "text to search",
    )
    .await;

    let timeline = api.ok(&format!("/api/v1/traces/{trace}/timeline")).await;
    assert_eq!(timeline["events"].as_array().unwrap().len(), 1);
    assert_eq!(timeline["events"][0]["offset_ns"], 89 * MS);
    assert_eq!(timeline["events"][0]["summary"], "card declined");
}

#[tokio::test]
async fn overview_operations_analytics_and_sparklines() {
    let api = api().await;
    let overview = api.ok("/api/v1/overview").await;
    assert_eq!(overview["stats"]["traces"], 5);
    assert_eq!(overview["services"][0]["service"], "shop");
    assert_eq!(
        overview["recent_errors"][0]["trace_id"],
        TraceId([2; 16]).to_hex()
    );
    assert_eq!(overview["recent_runs"].as_array().unwrap().len(), 2);

    let ranking = api.ok("/api/v1/operations").await;
    assert_eq!(ranking["traces"], 5);
    assert_eq!(ranking["operations"][0]["operation"], "cargo test");
    assert_eq!(ranking["operations"][1]["operation"], "checkout");
    assert_eq!(ranking["operations"][1]["runs"], 3);
    // A run's outcome is its root span's: the declined charge failed, `checkout` did not.
    assert_eq!(ranking["operations"][1]["errors"], 0);

    let names = api.ok("/api/v1/operation-names").await;
    assert_eq!(
        names["names"],
        serde_json::json!([
            "SELECT item",
            "cargo test",
            "charge",
            "checkout",
            "llm.summarize"
        ])
    );

    let analytics = api.ok("/api/v1/operations/checkout").await;
    assert_eq!(analytics["traces_analysed"], 3);
    assert_eq!(analytics["profile"]["duration"]["count"], 3);
    assert_eq!(analytics["profile"]["children"][0]["name"], "SELECT item");
    assert_eq!(analytics["profile"]["children"][0]["calls_per_run"], 6.0);
    let histogram_total: u64 = analytics["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(histogram_total, 3);
    let over_time: u64 = analytics["over_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(over_time, 3);
    assert!(
        analytics["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "repeated_calls" && f["operation"] == "checkout"),
        "{}",
        analytics["findings"]
    );
    let spaced = api.ok("/api/v1/operations/SELECT%20item?last=2").await;
    assert_eq!(spaced["traces_analysed"], 2);
    let (status, unknown) = api.get("/api/v1/operations/chekout").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        unknown["error"]
            .as_str()
            .unwrap()
            .contains("did you mean \"checkout\""),
        "{unknown}"
    );
    api.bad(
        "/api/v1/operations/checkout?last=0",
        "last",
        "from 1 to 5000",
    )
    .await;

    let lines = api
        .ok("/api/v1/sparklines?operation=checkout&operation=cargo%20test&points=2")
        .await;
    assert_eq!(lines["series"][0]["operation"], "checkout");
    assert_eq!(
        lines["series"][0]["durations_ns"],
        serde_json::json!([100 * MS, 100 * MS])
    );
    assert_eq!(
        lines["series"][1]["durations_ns"],
        serde_json::json!([2_000 * MS, 2_000 * MS])
    );
    api.bad("/api/v1/sparklines", "operation", "give 1 to 50 operations")
        .await;
    api.bad(
        "/api/v1/sparklines?operation=x&points=1",
        "points",
        "from 2 to 200",
    )
    .await;
}

#[tokio::test]
async fn compare_findings_and_runs() {
    let api = api().await;
    let (a, b) = (TraceId([1; 16]).to_hex(), TraceId([2; 16]).to_hex());
    let compared = api
        .ok(&format!("/api/v1/compare?a={a}&b={}", &b[..8]))
        .await;
    assert_eq!(compared["a_traces"], serde_json::json!([a]));
    assert_eq!(compared["b_traces"], serde_json::json!([b]));
    let charge = compared["comparison"]["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["operation"] == "charge")
        .unwrap();
    assert_eq!(charge["a"]["errors"], 0);
    assert_eq!(charge["b"]["errors"], 1);
    assert_eq!(
        compared["comparison"]["total"]["verdict"]["verdict"],
        "too_few_runs"
    );
    let last = api.ok("/api/v1/compare?operation=checkout&last=3").await;
    assert_eq!(
        last["what"],
        "\"checkout\": 1 earlier run(s) (A) vs 2 later run(s) (B)"
    );

    api.bad(&format!("/api/v1/compare?a={a}"), "b", "give trace B too")
        .await;
    api.bad("/api/v1/compare", "a", "say what to compare").await;
    api.bad("/api/v1/compare?operation=checkout", "last", "give last")
        .await;
    api.bad(
        "/api/v1/compare?operation=checkout&last=1",
        "last",
        "from 2 to 5000",
    )
    .await;
    let (status, missing) = api.get("/api/v1/compare?a=0909&b=0101").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    assert!(
        missing["error"]
            .as_str()
            .unwrap()
            .starts_with("a: no trace matches"),
        "{missing}"
    );
    api.bad(
        &format!("/api/v1/compare?a={a}&b=nothex"),
        "b",
        "32 hexadecimal",
    )
    .await;
    api.bad("/api/v1/compare?a=0&b=01", "a", "matches several traces")
        .await;

    // Two runs: each side is the run's trace with its attached traces.
    let (r4, r5) = (TraceId([4; 16]).to_hex(), TraceId([5; 16]).to_hex());
    let runs = api
        .ok(&format!("/api/v1/compare?run_a={r4}&run_b={}", &r5[..6]))
        .await;
    assert_eq!(runs["what"], format!("run {r4} (A) vs run {r5} (B)"));
    assert_eq!(
        runs["comparison"]["total"]["a"]["mean_nanos"],
        2_000.0 * MS as f64
    );
    api.bad(
        &format!("/api/v1/compare?run_a={r4}"),
        "run_b",
        "give run B too",
    )
    .await;
    let (status, not_run) = api
        .get(&format!("/api/v1/compare?run_a={a}&run_b={r5}"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        not_run["error"]
            .as_str()
            .unwrap()
            .contains("is not a `devtrace run`"),
        "{not_run}"
    );

    let findings = api.ok("/api/v1/findings").await;
    assert_eq!(findings["traces_analysed"], 5);
    let repeated = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "repeated_calls")
        .expect("the six queries are an N+1");
    assert_eq!(repeated["occurrences"], 3);
    // The parent and its six queries.
    assert_eq!(
        repeated["evidence"][0]["span_ids"]
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(repeated["operation"], "checkout");
    // The impact in the words `devtrace insights` and MCP use, from the impact's own numbers.
    let impact = &repeated["impact"];
    assert_eq!(
        repeated["impact_text"],
        format!(
            "saves ≈ {} per run in {} of {} runs of \"checkout\" ({:.0} % of its time) · score {:.3}",
            devtrace_query::timefmt::format_duration(
                impact["time_nanos_per_run"].as_u64().unwrap()
            ),
            impact["affected_runs"],
            impact["operation_runs"],
            impact["share"].as_f64().unwrap() * 100.0,
            impact["score"].as_f64().unwrap()
        )
    );
    api.bad("/api/v1/findings?limit=0", "limit", "from 1 to 500")
        .await;

    let runs = api.ok("/api/v1/runs").await;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["label"], "after");
    assert_eq!(runs[0]["tests"]["passed"], 41);
    assert_eq!(runs[0]["tests"]["skipped"], 1);
    assert_eq!(runs[0]["exit_code"], 0);
    assert_eq!(runs[0]["command"], "cargo test");
    let before = api.ok("/api/v1/runs?label=before").await;
    assert_eq!(before["runs"][0]["trace_id"], TraceId([4; 16]).to_hex());
    api.bad("/api/v1/runs?limit=x", "limit", "from 1 to 500")
        .await;
}

#[tokio::test]
async fn the_event_stream_opens_with_the_committed_count() {
    let api = api().await;
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get("/api/v1/events")
                .header(header::HOST, "localhost:4319")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    let text = String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap();
    assert!(text.starts_with("event: ingest\ndata: "), "{text:?}");
    let data: Value =
        serde_json::from_str(text.trim_start_matches("event: ingest\ndata: ").trim()).unwrap();
    // 5 traces of 9, 9, 9, 1 and 1 spans.
    assert_eq!(data["committed_spans"], 29);
    assert_eq!(data["new_spans"], 0);
}

#[tokio::test]
async fn the_live_view_lists_runtime_traces_and_analyses_a_completed_one() {
    let api = api().await;
    let live = api
        .ok("/api/v1/live?traces=3&sessions=5&active_within=30m")
        .await;
    assert_eq!(
        live["stats"]["spans"],
        api.ok("/api/v1/stats").await["spans"]
    );
    // Newest first, at most 3.
    let listed: Vec<String> = live["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap()[..2].to_owned())
        .collect();
    assert_eq!(listed, ["05", "04", "03"]);
    assert_eq!(live["sessions"], serde_json::json!([]));
    api.bad("/api/v1/live?traces=0", "traces", "1").await;
    api.bad("/api/v1/live?active_within=soon", "active_within", "soon")
        .await;

    // Checkout 3, beside the two earlier checkouts: its six sequential queries are found, and
    // every finding it gets is one it is evidence of.
    let found = api
        .ok(&format!("/api/v1/live/traces/{}/findings", id(3).to_hex()))
        .await;
    assert_eq!(found["complete"], true);
    assert_eq!(found["traces_analysed"], 3);
    let findings = found["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "repeated_calls"),
        "{found}"
    );
    for finding in findings {
        assert!(
            finding["evidence"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["trace_id"] == id(3).to_hex()),
            "{finding}"
        );
    }
    let (status, body) = api
        .get(&format!("/api/v1/live/traces/{}/findings", "ff".repeat(16)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = api.get("/api/v1/live/sessions/latest").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["error"],
        "no sessions stored yet: import some with `devtrace import claude-code` (add --follow to keep importing) or record them with the hooks"
    );
}

#[tokio::test]
async fn the_ui_is_served_at_every_view_path_and_the_guard_applies() {
    let api = api().await;
    for path in [
        "/",
        "/traces",
        "/traces/0101",
        "/operations/checkout",
        "/compare?a=1&b=2",
        "/sessions?agent=codex",
        "/sessions/fe5e1c67?entry=c9f60754a8447ac9",
    ] {
        let (status, headers, body) = api.raw(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert!(
            headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("/assets/js/app.js"), "{path}: {html}");
    }
    let (status, headers, body) = api.raw("/assets/js/app.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(!body.is_empty());
    // Revalidation: the same ETag gets a 304 without a body.
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    let revalidated = api
        .router
        .clone()
        .oneshot(
            Request::get("/assets/js/app.js")
                .header(header::HOST, "127.0.0.1:4319")
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    let (status, _, _) = api.raw("/assets/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, missing) = api.get("/api/v1/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing["error"].as_str().unwrap().contains("openapi.json"));

    let refused = api
        .router
        .clone()
        .oneshot(
            Request::get("/api/v1/traces")
                .header(header::HOST, "evil.example:4319")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused_ui = api
        .router
        .clone()
        .oneshot(
            Request::get("/")
                .header(header::HOST, "127.0.0.1:4319")
                .header(header::ORIGIN, "http://evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(refused_ui.status(), StatusCode::FORBIDDEN);
}

/// A request across three services: the frontend's client span and the checkout service's
/// server span share the gRPC method's name.
fn across_services(n: u8, t0: u64) -> SpanBatch {
    let call = "/shop.Checkout/PlaceOrder";
    let mut client = span(n, 2, Some(1), call, t0 + 10 * MS, t0 + 90 * MS);
    client.kind = SpanKind::Client;
    let mut server = span(n, 3, Some(2), call, t0 + 20 * MS, t0 + 80 * MS);
    server.kind = SpanKind::Server;
    let mut charge = span(n, 4, Some(3), "charge", t0 + 30 * MS, t0 + 50 * MS);
    if n == 1 {
        charge.status.code = SpanStatus::Error;
    }
    let mut request = batch(
        "frontend",
        vec![span(n, 1, None, "GET /checkout", t0, t0 + 100 * MS), client],
    );
    request.extend(batch("checkout", vec![server]));
    request.extend(batch("payment", vec![charge]));
    request
}

#[tokio::test]
async fn services_filters_and_operations_see_every_span_of_a_multi_service_trace() {
    let t0 = now() - 600_000 * MS;
    let api = api_with(
        t0,
        (1..=3)
            .map(|n| prepare_spans(across_services(n, t0 + u64::from(n) * 1_000 * MS)))
            .collect(),
    )
    .await;
    let found = api.ok("/api/v1/traces?service=payment").await;
    assert_eq!(
        ids(&found),
        ["03", "02", "01"],
        "a service without the root"
    );
    assert_eq!(
        found["traces"][0]["services"],
        serde_json::json!(["checkout", "frontend", "payment"])
    );
    let overview = api.ok("/api/v1/overview").await;
    let services: Vec<(String, u64, u64, u64)> = overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_owned(),
                s["traces"].as_u64().unwrap(),
                s["root_traces"].as_u64().unwrap(),
                s["error_traces"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            ("checkout".to_owned(), 3, 0, 0),
            ("frontend".to_owned(), 3, 3, 0),
            ("payment".to_owned(), 3, 0, 1)
        ],
        "every service, its errors where they happened"
    );
    let call = "%2Fshop.Checkout%2FPlaceOrder";
    let server = api.ok(&format!("/api/v1/operations/{call}")).await;
    assert_eq!(
        (
            &server["profile"]["service"],
            &server["profile"]["span_kind"],
            &server["profile"]["duration"]["mean"]
        ),
        (
            &serde_json::json!("checkout"),
            &serde_json::json!("server"),
            &serde_json::json!(60_000_000.0)
        )
    );
    assert_eq!(
        server["other_identities"],
        serde_json::json!([{"name": "/shop.Checkout/PlaceOrder", "service": "frontend", "kind": "client", "spans": 3}])
    );
    let client = api
        .ok(&format!(
            "/api/v1/operations/{call}?service=frontend&kind=client"
        ))
        .await;
    assert_eq!(client["profile"]["duration"]["mean"], 80_000_000.0);
    assert_eq!(client["profile"]["children"][0]["service"], "checkout");
    let (status, none) = api
        .get(&format!("/api/v1/operations/{call}?kind=consumer"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        none["error"],
        "no span named \"/shop.Checkout/PlaceOrder\" is a consumer span; it is a server span of \"checkout\" and a client span of \"frontend\"; choose one with the service and kind parameters"
    );
    api.bad(
        &format!("/api/v1/operations/{call}?kind=rpc"),
        "kind",
        "not a span kind",
    )
    .await;
    let ranked = api.ok("/api/v1/operations?service=checkout").await;
    assert_eq!(ranked["traces"], 3);
    assert_eq!(
        ranked["operations"][0]["operation"],
        "/shop.Checkout/PlaceOrder"
    );
    assert_eq!(ranked["operations"][0]["runs"], 3);
    let names = api.ok("/api/v1/operation-names").await;
    let identities: Vec<String> = names["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| format!("{} {} {}", o["name"], o["service"], o["kind"]))
        .collect();
    assert_eq!(
        identities,
        [
            r#""/shop.Checkout/PlaceOrder" "checkout" "server""#,
            r#""/shop.Checkout/PlaceOrder" "frontend" "client""#,
            r#""GET /checkout" "frontend" "internal""#,
            r#""charge" "payment" "internal""#,
        ]
    );
}

/// The REST face of the default window and of 64-bit ids: on a store whose only trace is old,
/// the findings and the overview read the hour before the newest trace and say so; a 64-bit
/// trace id (16 hex digits) finds the trace.
#[tokio::test]
async fn an_old_store_gets_the_default_window_and_64_bit_ids_resolve() {
    let t0 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
    let mut root = span(9, 1, None, "GET /report", t0, t0 + 100 * MS);
    root.trace_id = "00000000000000004bf92f3577b34da6".parse().unwrap();
    let mut spans = vec![root];
    for q in 0..8u8 {
        let start = t0 + (10 + u64::from(q) * 10) * MS;
        let mut query = span(9, 10 + q, Some(1), "SELECT row", start, start + 9 * MS);
        query.trace_id = spans[0].trace_id;
        query.kind = SpanKind::Client;
        query.attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new(
                "db.query.text",
                format!("SELECT * FROM rows WHERE id = {q}"),
            ),
        ];
        spans.push(query);
    }
    let api = api_with(t0, vec![prepare_spans(batch("reports", spans))]).await;
    let note = "no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:00:00 UTC";
    let findings = api.ok("/api/v1/findings").await;
    assert_eq!(findings["window"]["note"], note);
    assert_eq!(findings["window"]["newest_unix_nano"], t0);
    assert_eq!(findings["traces_analysed"], 1);
    assert!(findings["total"].as_u64().unwrap() >= 1, "{findings}");
    let recent = api.ok("/api/v1/findings?since=1h").await;
    assert_eq!(
        (&recent["traces_analysed"], &recent["window"]),
        (&serde_json::json!(0), &Value::Null)
    );
    let overview = api.ok("/api/v1/overview").await;
    assert_eq!(overview["window"]["note"], note);
    assert_eq!(overview["services"][0]["service"], "reports");
    for id in ["4bf92f3577b34da6", "00000000000000004bf92f3577b34da6"] {
        let trace = api.ok(&format!("/api/v1/traces/{id}")).await;
        assert_eq!(
            trace["trace_id"], "00000000000000004bf92f3577b34da6",
            "{id}"
        );
    }
    let (status, _) = api.get("/api/v1/traces/4bf92f3577b34da7").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Two threads: the main thread's `queue.Queue.get` (20..150 ms) waited 120 ms for worker-1's
/// `pipeline.produce` (a causal link, put at 140 ms); then `pipeline.parse` failed on its
/// argument.
fn two_threads(n: u8, t0: u64) -> SpanBatch {
    let on = |mut s: Span, thread: &str| {
        s.attributes.push(KeyValue::new("thread.name", thread));
        s
    };
    let mut get = on(
        span(
            n,
            2,
            Some(1),
            "queue.Queue.get",
            t0 + 20 * MS,
            t0 + 150 * MS,
        ),
        "MainThread",
    );
    get.links.push(devtrace_model::Link {
        trace_id: id(n),
        span_id: SpanId([4; 8]),
        trace_state: String::new(),
        attributes: vec![
            KeyValue::new(semconv::causal::LINK_KIND, "queue"),
            KeyValue::new(semconv::causal::LINK_CAUSE_FUNCTION, "pipeline.produce"),
            KeyValue::new(semconv::causal::LINK_CAUSE_TIME, (t0 + 140 * MS) as i64),
            KeyValue::new(semconv::causal::LINK_WAIT_NS, (120 * MS) as i64),
        ],
        dropped_attributes_count: 0,
        flags: 0,
    });
    let mut parse = on(
        span(
            n,
            5,
            Some(1),
            "pipeline.parse",
            t0 + 150 * MS,
            t0 + 160 * MS,
        ),
        "MainThread",
    );
    parse.attributes.extend([
        KeyValue::new("devtrace.call.arguments", "text='4x2'"),
        KeyValue::new("devtrace.call.exception", "ValueError('4x2')"),
    ]);
    parse.status.code = SpanStatus::Error;
    batch(
        "pipeline",
        vec![
            on(
                span(n, 1, None, "pipeline.main", t0, t0 + 200 * MS),
                "MainThread",
            ),
            get,
            on(
                span(
                    n,
                    3,
                    Some(1),
                    "threading.Thread.run",
                    t0 + 5 * MS,
                    t0 + 180 * MS,
                ),
                "worker-1",
            ),
            span(
                n,
                4,
                Some(3),
                "pipeline.produce",
                t0 + 15 * MS,
                t0 + 145 * MS,
            ),
            parse,
        ],
    )
}

#[tokio::test]
async fn a_wait_names_its_cause_and_a_thread_steps_through_its_calls() {
    let t0 = now() - 60_000 * MS;
    let api = api_with(t0, vec![prepare_spans(two_threads(9, t0))]).await;
    let trace = id(9).to_hex();
    let view = api.ok(&format!("/api/v1/traces/{trace}/waterfall")).await;
    assert_eq!(
        view["causal_arrows"],
        serde_json::json!([{
            "cause": SpanId([4; 8]).to_hex(),
            "waiter": SpanId([2; 8]).to_hex(),
            "kind": "queue",
            "at_ns": 140 * MS,
            "waited_ns": 120 * MS,
        }])
    );
    let get = api
        .ok(&format!(
            "/api/v1/traces/{trace}/spans/{}",
            SpanId([2; 8]).to_hex()
        ))
        .await;
    assert_eq!(
        get["waited_for"][0]["text"],
        "waited 120.0 ms for \"pipeline.produce\" (queue put, thread \"worker-1\", at +140.0 ms)"
    );
    assert_eq!(
        get["waited_for"][0]["cause_span_id"],
        SpanId([4; 8]).to_hex()
    );
    // The main thread's calls in order, the failing one with its argument.
    let steps = api
        .ok(&format!(
            "/api/v1/traces/{trace}/spans/{}/steps",
            SpanId([5; 8]).to_hex()
        ))
        .await;
    assert_eq!(steps["thread"], "MainThread");
    assert_eq!(steps["current"], 2);
    let names: Vec<&str> = steps["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["pipeline.main", "queue.Queue.get", "pipeline.parse"]
    );
    assert_eq!(steps["steps"][2]["arguments"], "text='4x2'");
    assert_eq!(steps["steps"][2]["raised"], "ValueError('4x2')");
    assert_eq!(steps["steps"][2]["failed"], true);
    assert_eq!(
        steps["steps"][1]["waited_for"][0]["cause_span_id"],
        SpanId([4; 8]).to_hex()
    );
    api.bad(
        &format!("/api/v1/traces/{trace}/spans/xyz/steps"),
        "span_id",
        "16 hexadecimal",
    )
    .await;
    let (status, _) = api
        .get(&format!(
            "/api/v1/traces/{trace}/spans/0909090909090909/steps"
        ))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
