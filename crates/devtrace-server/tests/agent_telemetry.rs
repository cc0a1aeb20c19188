//! OTLP metrics and coding agents' own events through the receivers, into a real SQLite store:
//! HTTP (protobuf, JSON, gzip) and gRPC on both ports; delta and cumulative temporality;
//! exporters' retries stored once; an agent's events visible as a session as soon as the
//! export is answered.

use axum::body::Body;
use devtrace_ingest::otlp::collector::logs::v1::{
    ExportLogsServiceRequest, logs_service_client::LogsServiceClient,
};
use devtrace_ingest::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    metrics_service_client::MetricsServiceClient,
};
use devtrace_ingest::otlp::common::v1::{AnyValue, KeyValue, any_value};
use devtrace_ingest::otlp::metrics::v1::{
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use devtrace_ingest::otlp::resource::v1::Resource;
use devtrace_intake::otlp::Ingestor;
use devtrace_model::TraceId;
use devtrace_store::metrics::UsageQuery;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::writer::{Writer, WriterConfig};
use devtrace_store::{SessionQuery, Store};
use http_body_util::BodyExt;
use prost::Message;
use std::io::Write;
use std::sync::Arc;
use tower::ServiceExt;

const SESSION: &str = "215fdfde-3cba-4c2e-b232-4aecc8d1814f";
const DAY: u64 = 86_400_000_000_000;
/// 2026-11-23T00:00:00Z.
const DAY_START: u64 = 20_780 * DAY;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    writer: Writer,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(
            Box::new(SqliteWriter::open(dir.path()).unwrap()),
            WriterConfig::default(),
        );
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        Self {
            _dir: dir,
            store,
            writer,
        }
    }

    fn router(&self) -> axum::Router {
        let ingestor = Arc::new(Ingestor::new(self.writer.handle(), Default::default()));
        devtrace_server::otlp_http::router(
            ingestor,
            devtrace_server::auth::Auth::off(Arc::new(devtrace_server::auth::NoAccounts)),
            1 << 22,
            devtrace_server::guard::AllowedHosts::new(([127, 0, 0, 1], 4318).into(), &[]),
        )
    }

    fn session_usage(&self) -> devtrace_model::metrics::Usage {
        let id: TraceId = SESSION.replace('-', "").parse().unwrap();
        let totals = self
            .store
            .usage(
                &UsageQuery {
                    sessions: Some(vec![id]),
                    ..Default::default()
                },
                false,
            )
            .unwrap();
        totals
            .into_iter()
            .next()
            .map(|t| t.usage)
            .unwrap_or_default()
    }
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Claude Code's metrics as it sends them: sums with `session.id` and `type` on each point.
fn claude_metrics(
    temporality: i32,
    points: &[(&str, Option<&str>, u64, u64, f64)],
) -> ExportMetricsServiceRequest {
    let metrics = points
        .iter()
        .map(|(name, kind, start, time, value)| {
            let mut attributes = vec![text("session.id", SESSION), text("user.id", "u1")];
            if let Some(kind) = kind {
                attributes.push(text("type", kind));
            }
            Metric {
                name: (*name).into(),
                unit: if name.ends_with("cost.usage") {
                    "USD".into()
                } else {
                    "tokens".into()
                },
                data: Some(metric::Data::Sum(Sum {
                    data_points: vec![NumberDataPoint {
                        attributes,
                        start_time_unix_nano: *start,
                        time_unix_nano: *time,
                        value: Some(number_data_point::Value::AsDouble(*value)),
                        ..Default::default()
                    }],
                    aggregation_temporality: temporality,
                    is_monotonic: true,
                })),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![text("service.name", "claude-code")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

async fn post(
    router: axum::Router,
    path: &str,
    content_type: &str,
    gzip: bool,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut request = http::Request::post(path).header("content-type", content_type);
    let body = if gzip {
        request = request.header("content-encoding", "gzip");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&body).unwrap();
        encoder.finish().unwrap()
    } else {
        body
    };
    let response = router
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, bytes.to_vec())
}

#[tokio::test]
async fn delta_metrics_over_http_add_up_and_a_retry_is_stored_once() {
    let fixture = Fixture::new();
    let t = DAY_START + 3_600_000_000_000;
    let first = claude_metrics(
        1,
        &[
            ("claude_code.cost.usage", None, t, t + 10, 0.25),
            ("claude_code.token.usage", Some("input"), t, t + 10, 1200.0),
            (
                "claude_code.token.usage",
                Some("cacheRead"),
                t,
                t + 10,
                800.0,
            ),
            ("claude_code.token.usage", Some("output"), t, t + 10, 40.0),
        ],
    )
    .encode_to_vec();
    for attempt in 0..2 {
        // The exporter did not hear the first answer and sends the same request again.
        let (status, reply) = post(
            fixture.router(),
            "/v1/metrics",
            "application/x-protobuf",
            attempt == 1,
            first.clone(),
        )
        .await;
        assert_eq!(status, 200);
        let reply = ExportMetricsServiceResponse::decode(&reply[..]).unwrap();
        assert_eq!(reply.partial_success, None);
    }
    assert_eq!(fixture.store.stats().unwrap().metric_points, 4);
    // The next interval's deltas, as OTLP/JSON.
    let second = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": "claude_code.cost.usage", "unit": "USD",
            "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
                "attributes": [{"key": "session.id", "value": {"stringValue": SESSION}},
                               {"key": "user.id", "value": {"stringValue": "u1"}}],
                "startTimeUnixNano": (t + 10).to_string(), "timeUnixNano": (t + 20).to_string(),
                "asDouble": 0.5}]}}]}]}]});
    let (status, reply) = post(
        fixture.router(),
        "/v1/metrics",
        "application/json",
        false,
        second.to_string().into_bytes(),
    )
    .await;
    assert_eq!((status, &reply[..]), (200, &b"{}"[..]));
    let usage = fixture.session_usage();
    assert_eq!(usage.cost_usd, Some(0.75));
    assert_eq!(
        usage.input_tokens,
        Some(2000),
        "fresh input plus cache reads"
    );
    assert_eq!(usage.cache_read_tokens, Some(800));
    assert_eq!(usage.output_tokens, Some(40));
    let days = fixture.store.usage(&UsageQuery::default(), true).unwrap();
    assert_eq!(days.len(), 1);
    assert_eq!(days[0].day_unix_nano, Some(DAY_START));
    assert_eq!(days[0].usage.cost_usd, Some(0.75));
}

#[tokio::test]
async fn cumulative_metrics_over_grpc_on_both_ports_add_their_increases() {
    let fixture = Fixture::new();
    let (addresses, _stop) = start_server(&fixture).await;
    let start = DAY_START + 60_000_000_000;
    // The same cumulative series reported three times (the last twice, by a retry): 100,
    // 250, 250; the gRPC port and the HTTP port answer alike.
    for (address, time, value) in [
        (addresses.grpc, start + 1_000, 100.0),
        (addresses.http, start + 2_000, 250.0),
        (addresses.grpc, start + 2_000, 250.0),
    ] {
        let mut client = MetricsServiceClient::connect(format!("http://{address}"))
            .await
            .unwrap()
            .send_compressed(tonic::codec::CompressionEncoding::Gzip);
        let reply = client
            .export(claude_metrics(
                2,
                &[(
                    "claude_code.token.usage",
                    Some("output"),
                    start,
                    time,
                    value,
                )],
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.partial_success, None);
    }
    assert_eq!(fixture.store.stats().unwrap().metric_points, 2);
    assert_eq!(fixture.session_usage().output_tokens, Some(250));
    // A point without a time is refused alone, and the reply says which.
    let mut client = MetricsServiceClient::connect(format!("http://{}", addresses.grpc))
        .await
        .unwrap();
    let reply = client
        .export(claude_metrics(
            2,
            &[
                ("claude_code.token.usage", Some("output"), start, 0, 1.0),
                (
                    "claude_code.token.usage",
                    Some("output"),
                    start,
                    start + 3_000,
                    300.0,
                ),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial
            .error_message
            .contains("with no time_unix_nano (first at resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[0])"),
        "{}",
        partial.error_message
    );
    assert_eq!(fixture.session_usage().output_tokens, Some(300));
}

#[tokio::test]
async fn malformed_metrics_get_400_with_the_reason_and_store_nothing() {
    let fixture = Fixture::new();
    let (status, reply) = post(
        fixture.router(),
        "/v1/metrics",
        "application/json",
        false,
        br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"x","sum":{"dataPoints":[{"asInt":"many"}]}}]}]}]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("metrics[0].sum.dataPoints[0].asInt"),
        "{reply}"
    );
    assert_eq!(fixture.store.stats().unwrap().metric_points, 0);
}

fn native_fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../devtrace-ingest/tests/fixtures/native")
            .join(name),
    )
    .unwrap()
}

#[tokio::test]
async fn an_agents_events_are_a_session_as_soon_as_the_export_is_answered() {
    let fixture = Fixture::new();
    let (status, _) = post(
        fixture.router(),
        "/v1/logs",
        "application/json",
        true,
        native_fixture("claude-code-2.1-events.json"),
    )
    .await;
    assert_eq!(status, 200);
    let sessions = fixture
        .store
        .list_sessions(&SessionQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(sessions.len(), 1);
    let facts = &sessions[0].facts;
    assert_eq!(
        (facts.agent.as_str(), facts.session_id.as_str()),
        ("claude-code", SESSION)
    );
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 4, 4));
    // The records themselves are stored as log records too.
    assert_eq!(fixture.store.stats().unwrap().logs, 16);

    // Gemini CLI's events over gRPC (its own exporter's choice) on the HTTP port.
    let (addresses, _stop) = start_server(&fixture).await;
    let body = native_fixture("gemini-cli-0.61-events.json");
    let request = ExportLogsServiceRequest {
        resource_logs: devtrace_ingest::json::decode_logs(&body).unwrap(),
    };
    let mut client = LogsServiceClient::connect(format!("http://{}", addresses.http))
        .await
        .unwrap();
    client.export(request.clone()).await.unwrap();
    // A retry of the whole request changes nothing.
    client.export(request).await.unwrap();
    let gemini = fixture
        .store
        .list_sessions(&SessionQuery {
            agent: Some("gemini-cli".into()),
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(gemini.len(), 1);
    assert_eq!(
        (gemini[0].facts.tool_calls, gemini[0].facts.input_tokens),
        (4, 6000)
    );
}

async fn start_server(
    fixture: &Fixture,
) -> (devtrace_server::Addresses, tokio::sync::oneshot::Sender<()>) {
    let config = devtrace_server::ServerConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let bound = devtrace_server::bind(config).await.unwrap();
    let addresses = bound.addresses();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store: Arc<dyn Store> = fixture.store.clone();
    tokio::spawn(bound.run(store, fixture.writer.handle(), async move {
        let _ = stopped.await;
    }));
    (addresses, stop)
}

#[tokio::test]
async fn secrets_in_an_agents_events_are_redacted_before_the_session_is_built() {
    let fixture = Fixture::new();
    let key = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfGhIj";
    let command = format!("curl -H 'x-api-key: {key}' https://api.example.com");
    let body = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [{
            "timeUnixNano": "1795406177000000000", "body": {"stringValue": "claude_code.tool_result"},
            "attributes": [
                {"key": "session.id", "value": {"stringValue": SESSION}},
                {"key": "event.name", "value": {"stringValue": "tool_result"}},
                {"key": "tool_name", "value": {"stringValue": "Bash"}},
                {"key": "tool_use_id", "value": {"stringValue": "toolu_secret"}},
                {"key": "success", "value": {"stringValue": "true"}},
                {"key": "tool_input", "value": {"stringValue": serde_json::json!({"command": command}).to_string()}},
                {"key": "user.email", "value": {"stringValue": "ada@example.com"}}]}]}]}]});
    let (status, _) = post(
        fixture.router(),
        "/v1/logs",
        "application/json",
        false,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 200);
    let id: TraceId = SESSION.replace('-', "").parse().unwrap();
    let trace = fixture.store.get_trace(id).unwrap().unwrap();
    let tool = trace
        .spans
        .spans
        .iter()
        .find(|s| s.name == "execute_tool Bash")
        .unwrap();
    let stored = tool
        .attr(devtrace_model::semconv::SESSION_COMMAND)
        .and_then(|v| v.as_str())
        .unwrap();
    assert!(!stored.contains(key), "{stored}");
    assert!(stored.contains("[REDACTED:"), "{stored}");
    // The log records as stored (the logs view over every chunk) hold neither.
    let rows = fixture
        .store
        .query_sql("SELECT attributes FROM logs", Default::default())
        .unwrap();
    assert_eq!(rows.rows.len(), 1);
    let everything = format!("{:?}{:?}", trace.spans, rows.rows);
    assert!(!everything.contains(key), "{everything}");
    assert!(!everything.contains("ada@example.com"), "{everything}");
    assert!(everything.contains("[REDACTED:email]"), "{everything}");
}
