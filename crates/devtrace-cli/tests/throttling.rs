//! Throttling over real sockets: a running `devtrace serve` with a small in-flight byte budget,
//! many concurrent large OTLP/HTTP (ureq, keep-alive) and OTLP/gRPC (tonic) requests. Every
//! request must get the success or the retryable answer (200 or 503 with `Retry-After`; gRPC
//! `OK` or `UNAVAILABLE`), never a reset or dropped connection, and every acknowledged span
//! must be in the store afterwards — counted exactly.

mod common;

use common::start_server_with;
use devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest;
use devtrace_ingest::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use devtrace_ingest::otlp::common::v1::{AnyValue, KeyValue, any_value::Value};
use devtrace_ingest::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use devtrace_model::{SpanId, TraceId};
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// In-flight byte budget of the server under test: four of the requests below.
const BUDGET: usize = 4 * REQUEST_BYTES;
/// Roughly the size of each request body.
const REQUEST_BYTES: usize = 1024 * 1024;
const SPANS_PER_REQUEST: usize = 16;
const HTTP_CLIENTS: u8 = 16;
const GRPC_CLIENTS: u8 = 6;
const REQUESTS_PER_CLIENT: u32 = 6;

/// What each client saw, by answer ("200", "503 Retry-After: 1", "gRPC Ok", or the failure).
#[derive(Default)]
struct Tally {
    answers: BTreeMap<String, u64>,
    acknowledged: Vec<(TraceId, SpanId)>,
}

impl Tally {
    fn count(&mut self, answer: impl Into<String>) {
        *self.answers.entry(answer.into()).or_default() += 1;
    }
}

#[test]
fn concurrent_large_requests_get_success_or_the_retryable_answer_and_nothing_acknowledged_is_lost()
{
    let data = tempfile::tempdir().unwrap();
    let budget = BUDGET.to_string();
    let server = start_server_with(data.path(), &["--max-in-flight-bytes", &budget], &[]);
    let tally = Arc::new(Mutex::new(Tally::default()));

    let mut clients = Vec::new();
    for client in 0..HTTP_CLIENTS {
        let (tally, url) = (
            Arc::clone(&tally),
            format!("http://{}/v1/traces", server.http),
        );
        clients.push(std::thread::spawn(move || {
            http_client(client, &url, &tally)
        }));
    }
    for client in 0..GRPC_CLIENTS {
        let (tally, addr) = (Arc::clone(&tally), server.grpc);
        clients.push(std::thread::spawn(move || {
            grpc_client(100 + client, addr, &tally)
        }));
    }
    for client in clients {
        client.join().unwrap();
    }
    server.stop();

    let tally = tally.lock().unwrap();
    let requests = u64::from(HTTP_CLIENTS + GRPC_CLIENTS) * u64::from(REQUESTS_PER_CLIENT);
    let answered: u64 = tally.answers.values().sum();
    assert_eq!(answered, requests);
    let expected = ["200", "503 Retry-After: 1", "gRPC Ok", "gRPC Unavailable"];
    let unexpected: Vec<_> = tally
        .answers
        .iter()
        .filter(|(answer, _)| !expected.contains(&answer.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "answers other than success or the retryable throttle: {:?} (all: {:?})",
        unexpected,
        tally.answers
    );
    let throttled = tally
        .answers
        .get("503 Retry-After: 1")
        .copied()
        .unwrap_or(0)
        + tally.answers.get("gRPC Unavailable").copied().unwrap_or(0);
    assert!(
        throttled > 0,
        "a budget of four requests and {} clients at once throttled none: {:?}",
        HTTP_CLIENTS + GRPC_CLIENTS,
        tally.answers
    );
    let successes = tally.answers.get("200").copied().unwrap_or(0)
        + tally.answers.get("gRPC Ok").copied().unwrap_or(0);
    assert_eq!(
        tally.acknowledged.len() as u64,
        successes * SPANS_PER_REQUEST as u64
    );
    eprintln!("answers: {:?}", tally.answers);

    // Exactly the acknowledged spans are stored: none lost, none from a refused request.
    let store = SqliteStore::open(data.path()).unwrap();
    let missing = tally
        .acknowledged
        .iter()
        .filter(|(trace, span)| {
            !store
                .get_trace(*trace)
                .unwrap()
                .is_some_and(|t| t.spans.spans.iter().any(|s| s.span_id == *span))
        })
        .count();
    assert_eq!(missing, 0, "acknowledged spans missing from the store");
    assert_eq!(
        store.stats().unwrap().spans,
        tally.acknowledged.len() as u64
    );
}

/// One keep-alive connection (ureq's agent, as an OTLP/HTTP exporter holds one), requests sent
/// one after another; a transport error is a dropped connection.
fn http_client(client: u8, url: &str, tally: &Mutex<Tally>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .http_status_as_error(false)
        .build()
        .into();
    for sequence in 0..REQUESTS_PER_CLIENT {
        let (request, ids) = large_request(client, sequence);
        let answer = match agent
            .post(url)
            .header("content-type", "application/x-protobuf")
            .send(&request.encode_to_vec()[..])
        {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = response.body_mut().read_to_vec();
                match (status, retry_after, body) {
                    (200, None, Ok(_)) => {
                        tally.lock().unwrap().acknowledged.extend(ids);
                        "200".to_owned()
                    }
                    (503, Some(after), Ok(_)) => format!("503 Retry-After: {after}"),
                    (status, after, body) => format!(
                        "{status} Retry-After: {after:?}, body {:?}",
                        body.map(|b| String::from_utf8_lossy(&b).into_owned())
                    ),
                }
            }
            Err(error) => format!("HTTP transport error: {error}"),
        };
        tally.lock().unwrap().count(answer);
    }
}

/// One tonic channel (HTTP/2, as the gRPC exporter holds one), requests one after another.
fn grpc_client(client: u8, addr: std::net::SocketAddr, tally: &Mutex<Tally>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut grpc = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap()
            .max_decoding_message_size(64 * 1024 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024);
        for sequence in 0..REQUESTS_PER_CLIENT {
            let (request, ids) = large_request(client, sequence);
            let answer = match grpc.export(request).await {
                Ok(_) => {
                    tally.lock().unwrap().acknowledged.extend(ids);
                    "gRPC Ok".to_owned()
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    // The throttle's own UNAVAILABLE carries its message; a broken transport
                    // is also UNAVAILABLE in tonic, so tell them apart.
                    if status.message().starts_with("devtrace is busy") {
                        "gRPC Unavailable".to_owned()
                    } else {
                        format!("gRPC Unavailable, not the throttle: {status:?}")
                    }
                }
                Err(status) => format!("gRPC {:?}: {}", status.code(), status.message()),
            };
            tally.lock().unwrap().count(answer);
        }
    });
}

/// About [`REQUEST_BYTES`] of spans (one trace), ids unique to `(client, sequence)`; the bulk
/// is an attribute just under the server's 64 KiB value limit, so nothing is truncated.
fn large_request(client: u8, sequence: u32) -> (ExportTraceServiceRequest, Vec<(TraceId, SpanId)>) {
    let mut trace = [0u8; 16];
    trace[0] = client;
    trace[1..5].copy_from_slice(&sequence.to_be_bytes());
    trace[15] = 1;
    let filler_bytes = REQUEST_BYTES / SPANS_PER_REQUEST - 256;
    let mut spans = Vec::new();
    let mut ids = Vec::new();
    for s in 0..SPANS_PER_REQUEST as u8 {
        let span_id = [client, s + 1, 0, 0, 0, 0, 0, 1];
        ids.push((TraceId(trace), SpanId(span_id)));
        let text: String = (0..)
            .map(|word: u32| format!("w{} ", word.wrapping_mul(2_654_435_761) % 100_000))
            .scan(0, |len, word| {
                *len += word.len();
                (*len <= filler_bytes).then_some(word)
            })
            .collect();
        spans.push(Span {
            trace_id: trace.to_vec(),
            span_id: span_id.to_vec(),
            name: format!("bulk-{s}"),
            start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(s),
            end_time_unix_nano: 1_700_000_000_000_000_100,
            attributes: vec![KeyValue {
                key: "bulk.text".into(),
                value: Some(AnyValue {
                    value: Some(Value::StringValue(text)),
                }),
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    (request, ids)
}
