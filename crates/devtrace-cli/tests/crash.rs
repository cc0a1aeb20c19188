//! Faults survived: SIGKILL `devtrace serve` at random moments while clients send over HTTP and
//! gRPC (20 trials, every acknowledged span found after each restart), a full disk, and the data
//! directory made read-only or deleted under a running server.

mod common;

use common::{Server, Tmpfs, span_batch};
use devtrace_ingest::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use devtrace_model::{SpanId, TraceId};
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use prost::Message;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Acked = Arc<Mutex<HashMap<TraceId, HashSet<SpanId>>>>;

const TRIALS: usize = 20;

/// 20 trials on one data directory: start the server, let three HTTP clients and one gRPC
/// client send for a random 50–1,500 ms, SIGKILL it, check the file's integrity, restart it and
/// find every span acknowledged so far. The seed is printed; `DEVTRACE_CRASH_SEED` replays it.
#[test]
fn every_acknowledged_span_survives_sigkill_at_random_moments() {
    let seed = std::env::var("DEVTRACE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("DEVTRACE_CRASH_SEED={seed}");
    let mut random = XorShift(seed);
    let data = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    // Batch numbers keep growing across trials so every trial sends new ids.
    let sequence = Arc::new(AtomicU32::new(0));
    let mut kills = Vec::new();
    for trial in 0..TRIALS {
        let mut server = Server::start(data.path());
        let before = acked_spans(&acked);
        let (stop, clients) = send_until_stopped(&server, &acked, &sequence);
        let delay = Duration::from_millis(50 + random.next() % 1_450);
        std::thread::sleep(delay);
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().unwrap();
        }
        kills.push((delay, acked_spans(&acked) - before));

        let conn = rusqlite::Connection::open(data.path().join("devtrace.db")).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            integrity, "ok",
            "trial {trial}: integrity check after SIGKILL"
        );
        drop(conn);
        let started = Instant::now();
        let restarted = Server::start(data.path());
        let restart = started.elapsed();
        let (missing, expected) = missing_spans(data.path(), &acked);
        assert_eq!(
            missing, 0,
            "trial {trial} (seed {seed}): {missing} of {expected} acknowledged spans were lost"
        );
        assert!(
            restart < Duration::from_secs(10),
            "restart took {restart:?}"
        );
        restarted.stop();
    }
    let total = acked_spans(&acked);
    eprintln!("{TRIALS} kills (delay, spans acknowledged in the trial): {kills:?}; {total} spans");
    assert!(
        total >= 10_000,
        "the clients had too little acknowledged over {TRIALS} trials ({total})"
    );
}

/// Three HTTP clients and one gRPC client sending new batches until the flag is set; every
/// acknowledged batch is recorded.
fn send_until_stopped(
    server: &Server,
    acked: &Acked,
    sequence: &Arc<AtomicU32>,
) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<()>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..3u8 {
        let (acked, stop, sequence, addr) = (
            Arc::clone(acked),
            Arc::clone(&stop),
            Arc::clone(sequence),
            server.http,
        );
        clients.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (request, ids) = span_batch(client, sequence.fetch_add(1, Ordering::Relaxed));
                match common::post_protobuf(addr, "/v1/traces", &request.encode_to_vec()) {
                    Ok(200) => record(&acked, ids),
                    Ok(_) | Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }
    let (acked2, stop2, sequence, addr) = (
        Arc::clone(acked),
        Arc::clone(&stop),
        Arc::clone(sequence),
        server.grpc,
    );
    clients.push(std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let Ok(mut client) = TraceServiceClient::connect(format!("http://{addr}")).await else {
                return;
            };
            while !stop2.load(Ordering::Relaxed) {
                let (request, ids) = span_batch(100, sequence.fetch_add(1, Ordering::Relaxed));
                match client.export(request).await {
                    Ok(_) => record(&acked2, ids),
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        })
    }));
    (stop, clients)
}

/// (acknowledged spans not in the store, acknowledged spans).
fn missing_spans(data: &Path, acked: &Acked) -> (usize, usize) {
    let acked = acked.lock().unwrap();
    let store = SqliteStore::open(data).unwrap();
    let mut missing = 0;
    for (trace_id, span_ids) in acked.iter() {
        let stored: HashSet<SpanId> = store
            .get_trace(*trace_id)
            .unwrap()
            .map(|t| t.spans.spans.iter().map(|s| s.span_id).collect())
            .unwrap_or_default();
        missing += span_ids.difference(&stored).count();
    }
    (missing, acked.values().map(HashSet::len).sum())
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

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// POSTs one new batch over HTTP: (status or 0 for a dropped connection, response body).
fn post_batch(server: &Server, sequence: u32, acked: &Acked) -> (u16, String) {
    let (request, ids) = span_batch(7, sequence);
    let (code, body) = post_with_body(server.http, &request.encode_to_vec());
    if code == 200 {
        record(acked, ids);
    }
    (code, body)
}

fn post_with_body(addr: std::net::SocketAddr, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(body).is_err() {
        return (0, String::new());
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn grpc_export(server: &Server, sequence: u32, acked: &Acked) -> Result<(), tonic::Status> {
    let addr = server.grpc;
    let (request, ids) = span_batch(8, sequence);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        client.export(request).await.map(|_| ())
    })?;
    record(acked, ids);
    Ok(())
}

fn log_file(dir: &Path) -> (std::path::PathBuf, std::process::Stdio) {
    let path = dir.join("serve.log");
    let file = std::fs::File::create(&path).unwrap();
    (path, file.into())
}

/// Sends until the answer is not a success (at most `tries`); every answer must be 200 or a
/// retryable 503/429. The first refusal's status and body.
fn send_until_refused(
    server: &Server,
    sequence: &mut u32,
    acked: &Acked,
    tries: u32,
) -> (u16, String) {
    for _ in 0..tries {
        *sequence += 1;
        let (code, body) = post_batch(server, *sequence, acked);
        match code {
            200 => continue,
            503 | 429 => return (code, body),
            other => panic!("expected 200 or a retryable 503/429, got {other}: {body}"),
        }
    }
    panic!("the server kept accepting after {tries} batches");
}

/// Sends until a batch is accepted again, within `within`.
fn send_until_accepted(server: &Server, sequence: &mut u32, acked: &Acked, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        *sequence += 1;
        let (code, body) = post_batch(server, *sequence, acked);
        match code {
            200 => return,
            503 | 429 => {}
            other => panic!("expected 200 or a retryable 503/429, got {other}: {body}"),
        }
        assert!(Instant::now() < deadline, "ingest did not resume: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_disk_is_a_retryable_error_and_ingest_resumes_when_space_returns() {
    let Some(fs) = Tmpfs::mount(24) else { return };
    let logs = tempfile::tempdir().unwrap();
    let (log, stderr) = log_file(logs.path());
    let data = fs.path().join("data");
    let mut server = common::start_server_logging(&data, &[], &[], stderr);
    let acked: Acked = Arc::default();
    let mut sequence = 0;
    for _ in 0..20 {
        sequence += 1;
        assert_eq!(post_batch(&server, sequence, &acked).0, 200);
    }

    // Fill the file system with a file the test can delete again.
    let filler = fs.path().join("filler");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
    }
    let (code, body) = send_until_refused(&server, &mut sequence, &acked, 2_000);
    assert!(
        body.contains(data.to_str().unwrap()) && body.contains("full"),
        "the refusal ({code}) should say the disk holding the store is full: {body}"
    );
    let grpc = grpc_export(&server, 1, &acked).expect_err("gRPC accepted on a full disk");
    assert_eq!(grpc.code(), tonic::Code::Unavailable, "{grpc:?}");
    assert!(server.is_running(), "devtrace serve died on a full disk");

    std::fs::remove_file(&filler).unwrap();
    send_until_accepted(&server, &mut sequence, &acked, Duration::from_secs(10));
    grpc_export(&server, 2, &acked).expect("gRPC after space returned");
    server.stop();

    let (missing, expected) = missing_spans(&data, &acked);
    assert_eq!(
        missing, 0,
        "{missing} of {expected} acknowledged spans were lost"
    );
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("full"),
        "the server log should say the disk is full: {log}"
    );
}

/// A file system cannot be remounted read-only while the server holds its files open for
/// writing (`mount` answers "busy", and permissions do not bind root nor already-open files), so
/// the read-only case is a server started on a read-only data directory: it refuses to start
/// with a clear error naming the directory, at once, and starts normally once it is writable.
#[test]
fn a_read_only_data_directory_is_a_clear_error_at_start() {
    let Some(fs) = Tmpfs::mount(64) else { return };
    let data = fs.path().join("data");
    let server = common::start_server_logging(&data, &[], &[], std::process::Stdio::null());
    let acked: Acked = Arc::default();
    let mut sequence = 0;
    for _ in 0..10 {
        sequence += 1;
        assert_eq!(post_batch(&server, sequence, &acked).0, 200);
    }
    server.stop();

    fs.remount("ro");
    let started = Instant::now();
    let output = common::serve_command(&data)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "serve started on a read-only store"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "serve took {:?} to give up",
        started.elapsed()
    );
    assert!(
        stderr.contains(data.to_str().unwrap()) && stderr.to_lowercase().contains("read-only"),
        "the error should name the read-only data directory: {stderr}"
    );

    fs.remount("rw");
    let server = Server::start(&data);
    sequence += 1;
    assert_eq!(post_batch(&server, sequence, &acked).0, 200);
    server.stop();
    let (missing, expected) = missing_spans(&data, &acked);
    assert_eq!(
        missing, 0,
        "{missing} of {expected} acknowledged spans were lost"
    );
}

#[test]
fn a_deleted_data_directory_is_a_clear_error_not_a_silent_loss() {
    let root = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let (log, stderr) = log_file(logs.path());
    let data = root.path().join("data");
    let mut server = common::start_server_logging(&data, &[], &[], stderr);
    let acked: Acked = Arc::default();
    let mut sequence = 0;
    for _ in 0..10 {
        sequence += 1;
        assert_eq!(post_batch(&server, sequence, &acked).0, 200);
    }

    std::fs::remove_dir_all(&data).unwrap();
    // Nothing sent now may be acknowledged: it would be written into a deleted file.
    let (_, body) = send_until_refused(&server, &mut sequence, &acked, 1);
    assert!(
        body.contains(data.to_str().unwrap()) && body.contains("deleted"),
        "the refusal should say the store was deleted: {body}"
    );
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        sequence += 1;
        let (code, body) = post_batch(&server, sequence, &acked);
        assert!(code == 503 || code == 429, "{code}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        server.is_running(),
        "devtrace serve died after its data directory was deleted"
    );
    drop(server);
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains(data.to_str().unwrap()) && log.contains("deleted"),
        "the server log should say the store was deleted: {log}"
    );
    let lines = log.lines().filter(|l| l.contains("deleted")).count();
    assert!(
        lines <= 20,
        "{lines} log lines about the deleted store: a log flood"
    );
}
