//! The OTLP receivers against a real SQLite store: replies, limits, bad input, throttling.

use axum::body::Body;
use devtrace_ingest::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse, trace_service_client::TraceServiceClient,
};
use devtrace_ingest::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use devtrace_intake::otlp::Ingestor;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::writer::{Writer, WriterConfig};
use devtrace_store::{Store, StoreWriter, TraceQuery, WriteBatch};
use http_body_util::BodyExt;
use prost::Message;
use std::io::Write;
use std::sync::{Arc, Mutex, mpsc};
use tower::ServiceExt;

fn span(trace: u8, id: u8) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        name: format!("op{id}"),
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    writer: Writer,
}

impl Fixture {
    fn new(config: WriterConfig, gate: Option<mpsc::Receiver<()>>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backend = Gated {
            inner: SqliteWriter::open(dir.path()).unwrap(),
            gate: gate.map(Mutex::new),
        };
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        Self {
            _dir: dir,
            store,
            writer: Writer::start(Box::new(backend), config),
        }
    }

    fn router(&self, max_body: usize) -> axum::Router {
        let ingestor = Arc::new(Ingestor::new(self.writer.handle(), Default::default()));
        devtrace_server::otlp_http::router(ingestor, open_auth(), max_body, otlp_hosts())
    }

    fn router_admitting(&self, max_in_flight: usize) -> axum::Router {
        let ingestor = Ingestor::new(self.writer.handle(), Default::default())
            .with_max_in_flight(max_in_flight);
        devtrace_server::otlp_http::router(Arc::new(ingestor), open_auth(), 1 << 20, otlp_hosts())
    }

    fn ingestor_with_byte_budget(&self, max_in_flight_bytes: usize) -> Arc<Ingestor> {
        Arc::new(
            Ingestor::new(self.writer.handle(), Default::default())
                .with_max_in_flight_bytes(max_in_flight_bytes),
        )
    }

    fn stored_spans(&self) -> u64 {
        self.store.stats().unwrap().spans
    }
}

/// The real SQLite writer, optionally held shut until the test releases each commit.
struct Gated {
    inner: SqliteWriter,
    gate: Option<Mutex<mpsc::Receiver<()>>>,
}

impl StoreWriter for Gated {
    fn write(&mut self, batches: &[WriteBatch]) -> devtrace_store::Result<()> {
        if let Some(gate) = &self.gate {
            let _ = gate.lock().unwrap().recv();
        }
        self.inner.write(batches)
    }
    fn checkpoint(&mut self) -> devtrace_store::Result<()> {
        self.inner.checkpoint()
    }
}

/// Posts `spans` as OTLP protobuf in a task of its own and returns once the writer, held shut
/// by the fixture's gate, has `waiting` items queued: the request stays in flight until the
/// gate opens.
async fn held_in_queue(
    fixture: &Fixture,
    router: &axum::Router,
    spans: Vec<Span>,
    waiting: u64,
) -> tokio::task::JoinHandle<(u16, http::HeaderMap, Vec<u8>)> {
    let first = tokio::spawn(post(
        router.clone(),
        "application/x-protobuf",
        None,
        request(spans).encode_to_vec(),
    ));
    while fixture.writer.handle().pending_items() < waiting {
        tokio::task::yield_now().await;
    }
    first
}

async fn post(
    router: axum::Router,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut builder = http::Request::post("/v1/traces").header("content-type", content_type);
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    let response = router
        .oneshot(builder.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, headers, bytes)
}

#[tokio::test]
async fn protobuf_over_http_is_stored_before_the_reply_and_counts_rejections() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let body = request(vec![span(1, 1), span(0, 2), span(1, 3)]).encode_to_vec();
    let (status, headers, reply) = post(
        fixture.router(1 << 20),
        "application/x-protobuf",
        None,
        body,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/x-protobuf");
    let reply = ExportTraceServiceResponse::decode(&reply[..]).unwrap();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(
        partial.error_message.contains("trace_id"),
        "{}",
        partial.error_message
    );
    // The reply came after the commit: the spans are readable now.
    assert_eq!(fixture.stored_spans(), 2);
}

#[tokio::test]
async fn malformed_bodies_get_400_with_the_reason_and_store_nothing() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (status, _, reply) = post(
        fixture.router(1 << 20),
        "application/x-protobuf",
        None,
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, 400);
    let message = String::from_utf8_lossy(&reply).to_string();
    assert!(message.contains("invalid protobuf"), "{message}");

    let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0101","startTimeUnixNano":"soon"}]}]}]}"#;
    let (status, _, reply) = post(
        fixture.router(1 << 20),
        "application/json",
        None,
        json.to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply["code"], 3);
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("spans[0].startTimeUnixNano"),
        "{reply}"
    );

    let (status, _, _) = post(
        fixture.router(1 << 20),
        "text/plain",
        None,
        b"hello".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _, _) = post(
        fixture.router(1 << 20),
        "application/json",
        Some("br"),
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415);
    assert_eq!(fixture.stored_spans(), 0);
}

#[tokio::test]
async fn bodies_beyond_the_limit_get_413_compressed_or_not() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let long_name = |i: usize| Span {
        name: "render-template-".repeat(8),
        ..span(1, i as u8 + 1)
    };
    let big = request((0..200).map(long_name).collect()).encode_to_vec();
    assert!(big.len() > 4096);
    let (status, _, _) = post(
        fixture.router(4096),
        "application/x-protobuf",
        None,
        big.clone(),
    )
    .await;
    assert_eq!(status, 413);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&big).unwrap();
    let compressed = gz.finish().unwrap();
    assert!(compressed.len() < 4096, "the compressed body itself fits");
    let (status, _, _) = post(
        fixture.router(4096),
        "application/x-protobuf",
        Some("gzip"),
        compressed.clone(),
    )
    .await;
    assert_eq!(status, 413, "the limit also bounds the decompressed size");
    let (status, _, _) = post(
        fixture.router(1 << 20),
        "application/x-protobuf",
        Some("gzip"),
        compressed,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fixture.stored_spans(), 200);
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after() {
    let (open, gate) = mpsc::channel();
    let fixture = Fixture::new(
        WriterConfig {
            max_queued_items: 2,
            max_transaction_items: 100,
            ..WriterConfig::default()
        },
        Some(gate),
    );
    let router = fixture.router(1 << 20);
    // Two spans fill the queue while the writer is held shut.
    let first = held_in_queue(&fixture, &router, vec![span(1, 1), span(1, 2)], 2).await;
    let (status, headers, _) = post(
        router.clone(),
        "application/x-protobuf",
        None,
        request(vec![span(2, 1)]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    open.send(()).unwrap();
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(fixture.stored_spans(), 2);
}

#[tokio::test]
async fn a_queue_full_in_bytes_answers_503_with_retry_after_though_items_would_fit() {
    let (open, gate) = mpsc::channel();
    // Room for a million items but, once anything waits, for no more bytes.
    let fixture = Fixture::new(
        WriterConfig {
            max_queued_items: 1_000_000,
            max_queued_bytes: 1,
            ..WriterConfig::default()
        },
        Some(gate),
    );
    let router = fixture.router(1 << 20);
    // An empty queue takes a batch whatever its size; held shut, it stays there.
    let first = held_in_queue(&fixture, &router, vec![span(1, 1)], 1).await;
    assert!(fixture.writer.handle().pending_bytes() > 1);
    let (status, headers, body) = post(
        router.clone(),
        "application/json",
        None,
        br#"{"resourceSpans":[]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    let status: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["code"], 14, "UNAVAILABLE");
    assert_eq!(
        status["message"],
        "devtrace is busy writing; retry after 1s"
    );
    open.send(()).unwrap();
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(fixture.writer.handle().pending_bytes(), 0);
    open.send(()).unwrap();
    let (status, _, _) = post(
        router,
        "application/x-protobuf",
        None,
        request(vec![span(2, 1)]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fixture.stored_spans(), 2);
}

#[tokio::test]
async fn requests_beyond_the_in_flight_limit_are_refused_without_holding_their_body() {
    let (open, gate) = mpsc::channel();
    // The queue has plenty of room: only the admission limit can refuse.
    let fixture = Fixture::new(WriterConfig::default(), Some(gate));
    let router = fixture.router_admitting(1);
    let first = held_in_queue(&fixture, &router, vec![span(1, 1)], 1).await;
    let (status, headers, reply) = post(
        router.clone(),
        "application/x-protobuf",
        None,
        request(vec![span(2, 1)]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 503);
    assert_eq!(headers["retry-after"], "1");
    assert!(
        String::from_utf8_lossy(&reply).contains("retry"),
        "the status explains itself"
    );
    open.send(()).unwrap();
    assert_eq!(first.await.unwrap().0, 200);
    // The finished request gave its place back.
    open.send(()).unwrap();
    let (status, _, _) = post(
        router,
        "application/x-protobuf",
        None,
        request(vec![span(3, 1)]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(fixture.stored_spans(), 2);
}

/// One request of `spans` spans whose names make it about `bytes` long in all.
fn large_request(trace: u8, spans: u8, bytes: usize) -> Vec<u8> {
    let spans = (1..=spans)
        .map(|id| Span {
            name: "n".repeat(bytes / usize::from(spans)),
            ..span(trace, id)
        })
        .collect();
    request(spans).encode_to_vec()
}

#[tokio::test]
async fn in_flight_bodies_are_bounded_in_bytes_and_the_rest_get_the_retryable_answer() {
    let (open, gate) = mpsc::channel();
    // Plenty of room in the queue and of request places: only the byte budget can refuse.
    let fixture = Fixture::new(WriterConfig::default(), Some(gate));
    const MIB: usize = 1 << 20;
    let ingestor = fixture.ingestor_with_byte_budget(3 * MIB + MIB / 2);
    let router = devtrace_server::otlp_http::router(
        Arc::clone(&ingestor),
        open_auth(),
        16 * MIB,
        otlp_hosts(),
    );
    // Eight requests of 1 MiB (4 spans of 256 KiB names; values are kept to 64 KiB, so what
    // is stored is small: the budget is about what requests hold while in flight).
    let bodies: Vec<Vec<u8>> = (1..=8).map(|t| large_request(t, 4, MIB)).collect();
    let posted = |body: Vec<u8>| {
        let router = router.clone();
        tokio::spawn(async move {
            let builder = http::Request::post("/v1/traces")
                .header("content-type", "application/x-protobuf")
                .header("content-length", body.len());
            let response = router
                .oneshot(builder.body(Body::from(body)).unwrap())
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.headers().get("retry-after").cloned(),
            )
        })
    };
    // The writer is held shut: admitted requests keep their bytes until their commit.
    let mut waiting = Vec::new();
    for body in bodies.iter().take(3) {
        waiting.push(posted(body.clone()));
        let held = waiting.len();
        while fixture.writer.handle().pending_items() < 4 * held as u64 {
            tokio::task::yield_now().await;
        }
    }
    assert!(
        ingestor.in_flight_bytes() >= 3 * MIB,
        "{}",
        ingestor.in_flight_bytes()
    );
    // Three are in flight (3 MiB of 3.5): each further one is refused, retryably, at once.
    for body in bodies.iter().skip(3) {
        let (status, retry_after) = posted(body.clone()).await.unwrap();
        assert_eq!(status, 503);
        assert_eq!(retry_after.unwrap(), "1");
    }
    assert!(ingestor.peak_in_flight_bytes() <= 3 * MIB + MIB / 2);
    for _ in 0..3 {
        let _ = open.send(());
    }
    for request in waiting {
        assert_eq!(request.await.unwrap().0, 200);
    }
    // Their bytes were given back: the budget is whole again.
    assert_eq!(ingestor.in_flight_bytes(), 0);
    let _ = open.send(());
    let (status, _) = posted(bodies[3].clone()).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(fixture.stored_spans(), 16);
    assert!(ingestor.peak_in_flight_bytes() <= 3 * MIB + MIB / 2);
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
async fn grpc_export_stores_spans_and_reports_partial_success() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (addresses, _stop) = start_server(&fixture).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", addresses.grpc))
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let reply = client
        .export(request(vec![span(7, 1), span(7, 0)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success.unwrap().rejected_spans, 1);
    let traces = fixture
        .store
        .list_traces(&TraceQuery {
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].span_count, 1);

    let health: serde_json::Value =
        serde_json::from_str(&http_get(addresses.api, "/api/v1/health").await).unwrap();
    assert_eq!(health["status"], "ok");
    let stats: serde_json::Value =
        serde_json::from_str(&http_get(addresses.api, "/api/v1/stats").await).unwrap();
    assert_eq!(
        (stats["spans"].as_u64(), stats["traces"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn the_api_port_refuses_foreign_hosts_and_origins() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (addresses, _stop) = start_server(&fixture).await;
    let api = addresses.api;
    let (head, body) =
        http_get_with(api, "/api/v1/health", "Host: attacker.example:4319\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(body.contains("DNS-rebinding"), "{body}");
    let (head, body) = http_get_with(
        api,
        "/api/v1/health",
        &format!("Host: {api}\r\nOrigin: http://attacker.example\r\n"),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(body.contains("attacker.example"), "{body}");
    // Any other port on localhost is another origin (another program's page).
    for origin in ["http://localhost:3000", "http://127.0.0.1:8080", "null"] {
        let (head, body) = http_get_with(
            api,
            "/api/v1/health",
            &format!("Host: {api}\r\nOrigin: {origin}\r\n"),
        )
        .await;
        assert!(head.starts_with("HTTP/1.1 403"), "{origin}: {head}");
        assert!(body.contains("DNS-rebinding"), "{body}");
    }
    // The OTLP/HTTP port's own origin is not the UI's either.
    let (head, _) = http_get_with(
        api,
        "/api/v1/health",
        &format!(
            "Host: {api}\r\nOrigin: http://localhost:{}\r\n",
            addresses.http.port()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (head, _) = http_get_with(
        api,
        "/api/v1/health",
        &format!(
            "Host: localhost:{}\r\nOrigin: http://localhost:{}\r\n",
            api.port(),
            api.port()
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

/// One span as OTLP/JSON, the body a web page could send.
const JSON_SPAN: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"from a page","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

#[tokio::test]
async fn the_otlp_http_port_refuses_rebinding_hosts_foreign_origins_and_simple_requests() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (addresses, _stop) = start_server(&fixture).await;
    let http = addresses.http;
    let port = http.port();
    let json = "Content-Type: application/json\r\n";
    let refused = [
        // DNS rebinding: the attacker's name, with the port the page asked for.
        format!("Host: evil.example:4318\r\n{json}"),
        format!("Host: evil.example:{port}\r\n{json}"),
        // A loopback name with another port is not this listener.
        format!("Host: localhost:1\r\n{json}"),
        // The right Host, but a page of another site, of another localhost port, or opaque.
        format!("Host: localhost:{port}\r\nOrigin: http://evil.example\r\n{json}"),
        format!("Host: 127.0.0.1:{port}\r\nOrigin: http://localhost:3000\r\n{json}"),
        format!("Host: 127.0.0.1:{port}\r\nOrigin: null\r\n{json}"),
        // The CORS "simple request" a page can send without a preflight: text/plain.
        format!(
            "Host: localhost:{port}\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\n"
        ),
    ];
    for headers in &refused {
        let (head, body) =
            http_send(http, "POST", "/v1/traces", headers, JSON_SPAN.as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{headers:?}: {head}");
        assert!(body.contains("DNS-rebinding"), "{headers:?}: {body}");
        assert!(
            !head.to_ascii_lowercase().contains("access-control-allow"),
            "CORS stays closed: {head}"
        );
    }
    // text/plain is refused even when the page's Origin is hidden (no-referrer, a proxy).
    let (head, _) = http_send(
        http,
        "POST",
        "/v1/traces",
        &format!("Host: localhost:{port}\r\nContent-Type: text/plain\r\n"),
        JSON_SPAN.as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 415"), "{head}");
    assert_eq!(fixture.stored_spans(), 0, "nothing refused was stored");
    // What an SDK sends passes, and so does a request from the UI's own page.
    for headers in [
        format!("Host: localhost:{port}\r\n{json}"),
        format!(
            "Host: 127.0.0.1:{port}\r\nOrigin: http://localhost:{}\r\n{json}",
            addresses.api.port()
        ),
    ] {
        let (head, body) =
            http_send(http, "POST", "/v1/traces", &headers, JSON_SPAN.as_bytes()).await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "{headers:?}: {head} {body}"
        );
    }
    assert_eq!(fixture.stored_spans(), 1);
}

#[tokio::test]
async fn grpc_checks_the_authority_on_both_ports() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (addresses, _stop) = start_server(&fixture).await;
    for addr in [addresses.grpc, addresses.http] {
        for (authority, allowed) in [
            (format!("http://evil.example:{}", addr.port()), false),
            (format!("http://localhost:{}", addr.port() ^ 1), false),
            (format!("http://localhost:{}", addr.port()), true),
        ] {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .unwrap()
                .origin(authority.parse().unwrap())
                .connect()
                .await
                .unwrap();
            let result = TraceServiceClient::new(channel)
                .export(request(vec![span(7, 1)]))
                .await;
            match (allowed, result) {
                (true, Ok(_)) => {}
                (false, Err(status)) => {
                    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{authority}");
                    assert!(
                        status.message().contains("--allow-host"),
                        "{}",
                        status.message()
                    );
                }
                (_, other) => panic!("{addr} {authority}: {other:?}"),
            }
        }
    }
    assert_eq!(
        fixture.stored_spans(),
        1,
        "the same span, accepted once per port"
    );
}

#[tokio::test]
async fn allow_host_names_pass_on_every_listener() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let config = devtrace_server::ServerConfig {
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        api_listen: "127.0.0.1:0".parse().unwrap(),
        allowed_hosts: vec!["devbox.lan".into()],
        ..Default::default()
    };
    let bound = devtrace_server::bind(config).await.unwrap();
    let addresses = bound.addresses();
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store: Arc<dyn Store> = fixture.store.clone();
    tokio::spawn(bound.run(store, fixture.writer.handle(), async move {
        let _ = stopped.await;
    }));
    let (head, _) = http_send(
        addresses.http,
        "POST",
        "/v1/traces",
        "Host: devbox.lan\r\nOrigin: https://devbox.lan\r\nContent-Type: application/json\r\n",
        JSON_SPAN.as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) =
        http_get_with(addresses.api, "/api/v1/health", "Host: devbox.lan:8080\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, _) = http_get_with(addresses.api, "/api/v1/health", "Host: other.lan\r\n").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
}

#[tokio::test]
async fn the_http_port_also_answers_grpc() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let (addresses, _stop) = start_server(&fixture).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", addresses.http))
        .await
        .unwrap();
    let reply = client
        .export(request(vec![span(9, 1), span(9, 2)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.partial_success, None);
    assert_eq!(fixture.stored_spans(), 2);
}

#[tokio::test]
async fn grpc_malformed_messages_are_invalid_argument_and_overload_is_unavailable_with_retry_info()
{
    let (open, gate) = mpsc::channel();
    let fixture = Fixture::new(
        WriterConfig {
            max_queued_items: 1,
            max_transaction_items: 100,
            ..WriterConfig::default()
        },
        Some(gate),
    );
    let (addresses, _stop) = start_server(&fixture).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", addresses.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();

    let status = raw_export(channel.clone(), vec![0xff, 0xff, 0xff])
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("invalid protobuf"),
        "{}",
        status.message()
    );

    let mut client = TraceServiceClient::new(channel.clone());
    let mut blocked = client.clone();
    let first = tokio::spawn(async move { blocked.export(request(vec![span(1, 1)])).await });
    while fixture.writer.handle().pending_items() < 1 {
        tokio::task::yield_now().await;
    }
    let status = client.export(request(vec![span(2, 1)])).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    let details = RpcStatus::decode(status.details()).unwrap();
    let retry = details
        .details
        .iter()
        .find(|d| d.type_url.ends_with("google.rpc.RetryInfo"))
        .expect("RetryInfo detail");
    let delay = RetryInfo::decode(&retry.value[..])
        .unwrap()
        .retry_delay
        .unwrap();
    assert_eq!(delay.seconds, 1);
    open.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(fixture.stored_spans(), 1);
}

#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// Sends arbitrary bytes as the Export request message.
async fn raw_export(
    channel: tonic::transport::Channel,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    grpc.unary(tonic::Request::new(bytes), path, RawCodec)
        .await
        .map(|r| r.into_inner())
}

#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self {
        *self
    }
    fn decoder(&mut self) -> Self {
        *self
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
    }
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let (head, body) = http_get_with(addr, path, &format!("Host: {addr}\r\n")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body
}

/// A raw GET with the given header lines (each ending in CRLF): (status line and headers, body).
async fn http_get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\n{headers}Connection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// The OTLP/HTTP port's DNS-rebinding guard, as `serve` builds it on loopback.
fn otlp_hosts() -> devtrace_server::guard::AllowedHosts {
    devtrace_server::guard::AllowedHosts::new(([127, 0, 0, 1], 4318).into(), &[])
}

/// A raw HTTP/1.1 request with the given header lines (each ending in CRLF) and body:
/// (status line and headers, body).
async fn http_send(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

/// Authentication off, as on the embedded store on loopback.
fn open_auth() -> devtrace_server::auth::Auth {
    devtrace_server::auth::Auth::off(Arc::new(devtrace_server::auth::NoAccounts))
}

/// An exporter whose request timed out sends it again: over every transport and encoding, and
/// in batches cut differently, each span is stored once and the summary stays exact.
#[tokio::test]
async fn a_request_sent_again_is_stored_once_over_http_protobuf_json_and_grpc() {
    let fixture = Fixture::new(WriterConfig::default(), None);
    let mut failing = span(4, 3);
    failing.status = Some(devtrace_ingest::otlp::trace::v1::Status {
        code: 2,
        message: "timeout".into(),
    });
    let spans = vec![span(4, 1), span(4, 2), failing];
    let protobuf = request(spans.clone()).encode_to_vec();
    for _ in 0..2 {
        let (status, _, _) = post(
            fixture.router(1 << 20),
            "application/x-protobuf",
            None,
            protobuf.clone(),
        )
        .await;
        assert_eq!(status, 200);
    }
    // The same spans as OTLP/JSON, with a span the request holds twice.
    let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
        {"traceId":"04040404040404040404040404040404","spanId":"0202020202020202","name":"op2"},
        {"traceId":"04040404040404040404040404040404","spanId":"0505050505050505","name":"op5"},
        {"traceId":"04040404040404040404040404040404","spanId":"0505050505050505","name":"op5"}
    ]}]}]}"#;
    let (status, _, _) = post(
        fixture.router(1 << 20),
        "application/json",
        None,
        json.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let (addresses, _stop) = start_server(&fixture).await;
    let mut client = TraceServiceClient::connect(format!("http://{}", addresses.grpc))
        .await
        .unwrap();
    // Re-sent over gRPC, split in two requests, the second with a new span.
    for part in [vec![spans[2].clone()], vec![spans[0].clone(), span(4, 6)]] {
        let reply = client.export(request(part)).await.unwrap().into_inner();
        assert_eq!(
            reply.partial_success, None,
            "a re-sent span is not an error"
        );
    }
    let trace = fixture
        .store
        .trace_summary(devtrace_model::TraceId([4; 16]))
        .unwrap()
        .unwrap();
    assert_eq!((trace.span_count, trace.error_count), (5, 1));
    let stored = fixture
        .store
        .get_trace(devtrace_model::TraceId([4; 16]))
        .unwrap()
        .unwrap();
    let mut ids: Vec<u8> = stored.spans.spans.iter().map(|s| s.span_id.0[0]).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 5, 6]);
    let stats = fixture.store.stats().unwrap();
    assert_eq!((stats.spans, stats.traces), (5, 1));
    assert_eq!(stats.resent_spans, 3 + 1 + 1 + 2);
}
