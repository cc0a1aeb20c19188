//! Durability: SIGKILL `devtrace serve` while clients send over HTTP and gRPC, restart it, and
//! find every acknowledged span.

mod common;

use common::{Server, span_batch};
use devtrace_ingest::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use devtrace_model::{SpanId, TraceId};
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Acked = Arc<Mutex<HashMap<TraceId, HashSet<SpanId>>>>;

#[test]
fn every_acknowledged_span_survives_sigkill() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    let mut senders = Vec::new();
    for client in 0..3u8 {
        let (acked, stop, addr) = (Arc::clone(&acked), Arc::clone(&stop), server.http);
        senders.push(std::thread::spawn(move || {
            let mut sequence = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (request, ids) = span_batch(client, sequence);
                sequence += 1;
                match common::post_protobuf(addr, "/v1/traces", &request.encode_to_vec()) {
                    Ok(200) => record(&acked, ids),
                    Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }
    let grpc = {
        let (acked, stop, addr) = (Arc::clone(&acked), Arc::clone(&stop), server.grpc);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut client = TraceServiceClient::connect(format!("http://{addr}"))
                    .await
                    .unwrap();
                let mut sequence = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (request, ids) = span_batch(100, sequence);
                    sequence += 1;
                    if client.export(request).await.is_ok() {
                        record(&acked, ids);
                    }
                }
            })
        })
    };

    // Let the clients get going, then kill the server without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked_spans(&acked) < 20_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    grpc.join().unwrap();
    let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
    let expected: usize = acked.values().map(HashSet::len).sum();
    assert!(
        expected >= 20_000,
        "the clients had too little acknowledged before the kill ({expected})"
    );

    // The store opens cleanly after the crash, and a restarted server serves it.
    let conn = rusqlite::Connection::open(data.path().join("devtrace.db")).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    drop(conn);
    let restarted = Server::start(data.path());

    let store = SqliteStore::open(data.path()).unwrap();
    let mut missing = 0;
    for (trace_id, span_ids) in &acked {
        let stored: HashSet<SpanId> = store
            .get_trace(*trace_id)
            .unwrap()
            .map(|t| t.spans.spans.iter().map(|s| s.span_id).collect())
            .unwrap_or_default();
        missing += span_ids.difference(&stored).count();
    }
    assert_eq!(
        missing, 0,
        "{missing} of {expected} acknowledged spans were lost"
    );
    assert!(store.stats().unwrap().spans as usize >= expected);
    restarted.stop();
}

fn record(acked: &Acked, ids: Vec<(TraceId, SpanId)>) {
    let mut acked = acked.lock().unwrap();
    for (trace, span) in ids {
        acked.entry(trace).or_default().insert(span);
    }
}

fn acked_spans(acked: &Acked) -> usize {
    acked.lock().unwrap().values().map(HashSet::len).sum()
}
