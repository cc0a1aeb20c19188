//! End-to-end tests on loopback: the senders against an in-process tonic
//! OTLP/gRPC receiver and a minimal OTLP/HTTP receiver, both of which
//! throttle their first requests, so retries, partial success, pacing and
//! the stats poll are exercised without a devtrace server.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

use crate::api::StatsApi;
use crate::batch::Pool;
use crate::grpc::tests::retry_details;
use crate::run::{self, LoadPlan};

const BASE: u64 = 1_767_225_600_000_000_000;

/// What a mock receiver saw.
#[derive(Default)]
struct Seen {
    calls: AtomicU64,
    spans: AtomicU64,
    trace_ids: Mutex<HashSet<Vec<u8>>>,
}

impl Seen {
    /// Records an accepted request; returns its span count.
    fn record(&self, req: &ExportTraceServiceRequest) -> u64 {
        let mut ids = self.trace_ids.lock().expect("lock");
        let mut n = 0;
        for s in req
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            ids.insert(s.trace_id.clone());
            n += 1;
        }
        self.spans.fetch_add(n, Ordering::SeqCst);
        n
    }
}

/// Throttles its first `throttle` calls (with RetryInfo), fails every call
/// with INVALID_ARGUMENT if `reject_all`, and reports one rejected span in
/// its first successful reply.
struct MockGrpc {
    seen: Arc<Seen>,
    throttle: u64,
    reject_all: bool,
}

#[tonic::async_trait]
impl TraceService for MockGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let call = self.seen.calls.fetch_add(1, Ordering::SeqCst);
        if self.reject_all {
            return Err(Status::invalid_argument("no thanks"));
        }
        if call < self.throttle {
            return Err(Status::with_details(
                Code::ResourceExhausted,
                "queue full",
                retry_details(Duration::from_millis(5)),
            ));
        }
        self.seen.record(request.get_ref());
        let partial = (call == self.throttle).then(|| ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "one span too old".into(),
        });
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: partial,
        }))
    }
}

async fn start_grpc(throttle: u64, reject_all: bool) -> (SocketAddr, Arc<Seen>) {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = incoming.local_addr().expect("local addr");
    let seen = Arc::new(Seen::default());
    let service = TraceServiceServer::new(MockGrpc {
        seen: Arc::clone(&seen),
        throttle,
        reject_all,
    });
    tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .serve_with_incoming(service, incoming)
            .await;
    });
    (addr, seen)
}

/// A minimal keep-alive HTTP/1.1 server: `handle(path, body)` gives the
/// status line, extra headers and body of each reply.
async fn start_http<F>(handle: F) -> SocketAddr
where
    F: Fn(&str, &[u8]) -> (&'static str, String, Vec<u8>) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handle = Arc::clone(&handle);
            tokio::spawn(async move {
                let _ = serve_http(stream, handle.as_ref()).await;
            });
        }
    });
    addr
}

async fn serve_http<F>(mut stream: TcpStream, handle: &F) -> std::io::Result<()>
where
    F: Fn(&str, &[u8]) -> (&'static str, String, Vec<u8>),
{
    let mut buf = Vec::new();
    loop {
        // Read the head.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body: Vec<u8> = buf[head_end..head_end + length].to_vec();
        buf.drain(..head_end + length);
        let (status, headers, reply) = handle(&path, &body);
        let out = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\n{headers}\r\n",
            reply.len()
        );
        stream.write_all(out.as_bytes()).await?;
        stream.write_all(&reply).await?;
    }
}

/// An OTLP/HTTP receiver that answers 429 (Retry-After: 0) to its first
/// `throttle` posts.
async fn start_otlp_http(throttle: u64) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let s = Arc::clone(&seen);
    let addr = start_http(move |path, body| {
        assert_eq!(path, "/v1/traces");
        let call = s.calls.fetch_add(1, Ordering::SeqCst);
        if call < throttle {
            return (
                "429 Too Many Requests",
                "retry-after: 0\r\n".into(),
                Vec::new(),
            );
        }
        let req = ExportTraceServiceRequest::decode(body).expect("valid request");
        s.record(&req);
        (
            "200 OK",
            "content-type: application/x-protobuf\r\n".into(),
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
    })
    .await;
    (addr, seen)
}

fn plan(requests: Option<u64>, spans_per_request: u64) -> LoadPlan {
    LoadPlan {
        requests,
        duration: None,
        rate: None,
        spans_per_request,
        queue: 4,
        max_retries: 2,
        send_timeout: Duration::from_secs(30),
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_transports_deliver_every_span_once_despite_throttling() {
    let (grpc_addr, grpc_seen) = start_grpc(2, false).await;
    let (http_addr, http_seen) = start_otlp_http(2).await;
    // 10 full requests of 52 spans from a pool of 3, then a tail of 13.
    let pool = Arc::new(Pool::generate(3, BASE, 52, 3, Some((10, 13))).expect("pool"));
    let senders = run::connect(
        Some(&grpc_addr.to_string()),
        Some(&http_addr.to_string()),
        2,
        1,
    )
    .await
    .expect("connect");
    let result = run::run(pool, senders, &plan(Some(11), 52))
        .await
        .expect("run");
    let total = result.total();
    assert_eq!(total.requests, 11);
    assert_eq!(total.requests_ok, 11);
    assert_eq!(total.requests_failed, 0);
    assert_eq!(total.spans_sent, 533);
    assert_eq!(total.throttled, 4, "two throttled replies per receiver");
    let received = grpc_seen.spans.load(Ordering::SeqCst) + http_seen.spans.load(Ordering::SeqCst);
    assert_eq!(received, 533, "every span arrived exactly once");
    // The gRPC mock rejects one span in its first successful reply, if it
    // got any work at all.
    let grpc_ok = grpc_seen.calls.load(Ordering::SeqCst) > 2;
    assert_eq!(total.spans_rejected, u64::from(grpc_ok));
    assert_eq!(total.spans_accepted, 533 - total.spans_rejected);
    assert_eq!(total.latencies_us.len(), 11);
    // Re-sent pool entries carry fresh trace ids: no id seen twice.
    let ids_grpc = grpc_seen.trace_ids.lock().expect("lock").clone();
    let ids_http = http_seen.trace_ids.lock().expect("lock").clone();
    assert!(ids_grpc.is_disjoint(&ids_http));
    let traces = ids_grpc.len() + ids_http.len();
    assert!((35..=60).contains(&traces), "{traces} distinct traces");
    assert!(!result.timed_out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_paces_and_permanent_errors_drop_batches() {
    let (addr, seen) = start_grpc(0, true).await;
    let pool = Arc::new(Pool::generate(4, BASE, 26, 2, None).expect("pool"));
    let senders = run::connect(Some(&addr.to_string()), None, 1, 1)
        .await
        .expect("connect");
    let mut p = plan(Some(6), 26);
    // One request every 40 ms.
    p.rate = Some(26.0 / 0.040);
    let started = Instant::now();
    let result = run::run(pool, senders, &p).await.expect("run");
    assert!(started.elapsed() >= Duration::from_millis(190), "pacing");
    assert_eq!(result.offered_requests, 6);
    assert_eq!(result.offered_spans, 156);
    assert_eq!(result.dropped_requests, 0);
    let total = result.total();
    assert_eq!(total.requests_failed, 6);
    assert_eq!(total.spans_failed, 156);
    assert_eq!(total.spans_accepted, 0);
    assert_eq!(
        seen.calls.load(Ordering::SeqCst),
        6,
        "no retry of a permanent error"
    );
    assert!(total.errors.iter().any(|e| e.contains("no thanks")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_mode_stops_on_time() {
    let (addr, seen) = start_otlp_http(0).await;
    let pool = Arc::new(Pool::generate(5, BASE, 13, 4, None).expect("pool"));
    let senders = run::connect(None, Some(&addr.to_string()), 1, 2)
        .await
        .expect("connect");
    let mut p = plan(None, 13);
    p.duration = Some(Duration::from_millis(300));
    let result = run::run(pool, senders, &p).await.expect("run");
    assert!(result.wall >= Duration::from_millis(300));
    assert!(result.wall < Duration::from_secs(5));
    let total = result.total();
    assert!(total.requests > 4, "only {} requests", total.requests);
    assert_eq!(total.spans_accepted, seen.spans.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_poll_waits_for_the_count() {
    let polls = Arc::new(AtomicU64::new(0));
    let p = Arc::clone(&polls);
    let addr = start_http(move |path, _| {
        assert_eq!(path, "/api/v1/stats");
        let n = p.fetch_add(1, Ordering::SeqCst);
        let body = format!("{{\"spans\": {}, \"traces\": 1}}", 100 * n);
        (
            "200 OK",
            "content-type: application/json\r\n".into(),
            body.into_bytes(),
        )
    })
    .await;
    let api = StatsApi::new(&addr.to_string()).expect("api");
    assert_eq!(api.spans().await.expect("first poll"), 0);
    let wait = api
        .wait_for(300, Duration::from_secs(5))
        .await
        .expect("wait");
    assert!(wait.reached);
    assert_eq!(wait.spans, 300);
    let never = api
        .wait_for(1 << 40, Duration::from_millis(250))
        .await
        .expect("wait");
    assert!(!never.reached);
}
