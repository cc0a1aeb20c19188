//! Traces across services: `ls --service` finds a service that never has the root, `perf`
//! keeps a gRPC client span and the server span it calls apart (and says which it profiled),
//! `perf --service` ranks what one service handles, and spans imported again are stored once.

mod common;

use common::{devtrace_wide as devtrace, import_text, ok, stderr};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const CALL: &str = "/shop.Checkout/PlaceOrder";

/// One request: frontend's `GET /checkout` (server) calls checkout's PlaceOrder over gRPC (a
/// client span in frontend, a server span in checkout), which charges through payment.
fn request(n: u64) -> Value {
    let trace = format!("{:032x}", 0xc0de00 + n);
    let at = n * 1_000;
    let span = |id: u8, parent: Option<u8>, name: &str, kind: u8, start: u64, end: u64| {
        let mut span = json!({
            "traceId": trace, "spanId": format!("{id:016x}"), "name": name, "kind": kind,
            "startTimeUnixNano": (T0 + (at + start) * 1_000_000).to_string(),
            "endTimeUnixNano": (T0 + (at + end) * 1_000_000).to_string(),
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    };
    let mut charge = span(4, Some(3), "charge", 2, 30, 50);
    if n == 0 {
        charge["status"] = json!({"code": 2, "message": "card declined"});
    }
    let service = |name: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
               "scopeSpans": [{"spans": spans}]})
    };
    json!({"resourceSpans": [
        service("frontend", vec![
            span(1, None, "GET /checkout", 2, 0, 100),
            span(2, Some(1), CALL, 3, 10, 90),
        ]),
        service("checkout", vec![span(3, Some(2), CALL, 2, 20, 80)]),
        service("payment", vec![charge]),
    ]})
}

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..3).map(|n| request(n).to_string()).collect();
    import_text(dir.path(), "requests.jsonl", &lines.join("\n"));
    dir
}

#[test]
fn any_span_of_a_service_finds_its_traces() {
    let dir = store();
    let ids = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        let rows: Value = serde_json::from_str(&ok(devtrace(dir.path(), &all))).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .map(|r| r["trace_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&["--service", "checkout"]).len(), 3);
    assert_eq!(ids(&["--service", "payment"]).len(), 3);
    assert!(ids(&["--service", "billing"]).is_empty());
    let rows: Value = serde_json::from_str(&ok(devtrace(dir.path(), &["ls", "--json"]))).unwrap();
    assert_eq!(rows[0]["service"], "frontend");
    assert_eq!(
        rows[0]["services"],
        json!(["checkout", "frontend", "payment"])
    );
    let text = ok(devtrace(dir.path(), &["ls", "--service", "payment"]));
    assert_eq!(
        text,
        "\
START (UTC)          OPERATION      SERVICE      DURATION  SPANS  ERRORS  TRACE ID
2025-11-21 13:00:02  GET /checkout  frontend +2  100.0 ms      4       0  00000000000000000000000000c0de02
2025-11-21 13:00:01  GET /checkout  frontend +2  100.0 ms      4       0  00000000000000000000000000c0de01
2025-11-21 13:00:00  GET /checkout  frontend +2  100.0 ms      4       1  00000000000000000000000000c0de00
"
    );
}

#[test]
fn perf_keeps_a_client_span_and_its_server_span_apart() {
    let dir = store();
    let server = ok(devtrace(dir.path(), &["perf", CALL]));
    assert_eq!(
        server,
        format!(
            "\
{CALL} (server span of checkout): 60.0 ms mean over 3 runs (p50 60.0 ms, p95 60.0 ms, max 60.0 ms)

  child             kind      mean      p50      p95  share  calls  critical
  charge → payment  other  20.0 ms  20.0 ms  20.0 ms   33 %    1.0      33 %

time by kind of work: other 100 % (60.0 ms)

\"{CALL}\" also names 1 other operation (not in these numbers):
  client span of frontend (3 spans in these runs): devtrace perf {CALL} --service frontend --kind client

findings
1. \"{CALL}\": 67 % of its time (40.0 ms a run, over 3 runs) is its own, in no child span: a blind spot
   impact: says where the time goes; estimates nothing (listed, not ranked)
   → Record the functions it calls: run devtrace plan \"{CALL}\" (MCP plan_instrumentation), then devtrace run --plan ID -- …, and look at the new trace
   evidence: trace 00000000000000000000000000c0de00 spans 0000000000000003
   evidence: trace 00000000000000000000000000c0de01 spans 0000000000000003
   evidence: trace 00000000000000000000000000c0de02 spans 0000000000000003
   [blind_spot 7dada22a6ff25642]
"
        )
    );
    let client = ok(devtrace(
        dir.path(),
        &["perf", CALL, "--service", "frontend", "--kind", "client"],
    ));
    assert!(
        client.starts_with(&format!(
            "{CALL} (client span of frontend): 80.0 ms mean over 3 runs"
        )),
        "{client}"
    );
    assert!(
        client.contains(&format!("  {CALL} → checkout  ")),
        "the server span is the client span's child: {client}"
    );
    assert!(!client.contains("also names"), "{client}");

    let json: Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["perf", CALL, "--kind", "server", "--json"],
    )))
    .unwrap();
    assert_eq!(
        (
            &json["profile"]["service"],
            &json["profile"]["span_kind"],
            json["profile"]["runs"].as_array().unwrap().len()
        ),
        (&json!("checkout"), &json!("server"), 3)
    );
    assert_eq!(json["other_identities"], json!([]));

    let refused = devtrace(dir.path(), &["perf", CALL, "--kind", "consumer"]);
    assert!(!refused.status.success());
    assert_eq!(
        stderr(&refused),
        format!(
            "error: no span named \"{CALL}\" is a consumer span; it is a server span of \"checkout\" and a client span of \"frontend\"; choose one with --service and --kind\n"
        )
    );
}

#[test]
fn perf_ranks_what_one_service_handles() {
    let dir = store();
    assert_eq!(
        ok(devtrace(dir.path(), &["perf", "--service", "checkout"])),
        format!(
            "\
operations \"checkout\" handles, by total time over the last 3 traces with its spans

  operation                  service   runs     total     mean      p95  errors
  {CALL}  checkout     3  180.0 ms  60.0 ms  60.0 ms       0

break one down with: devtrace perf <operation> --service checkout
"
        )
    );
    // A run's outcome is its root span's own, as `perf --service` counts them: the declined
    // card failed a payment span, never `GET /checkout`.
    let ranking = ok(devtrace(dir.path(), &["perf"]));
    assert!(
        ranking.contains("  GET /checkout  frontend     3  300.0 ms  100.0 ms  100.0 ms       0\n"),
        "{ranking}"
    );
    let unknown = devtrace(dir.path(), &["perf", "--service", "billing"]);
    assert_eq!(
        stderr(&unknown),
        "error: no spans of service \"billing\" are stored; the services are \"checkout\", \"frontend\", \"payment\"\n"
    );
}

#[test]
fn spans_imported_again_are_stored_once() {
    let dir = store();
    // The same spans in another file (another document): the second copy adds nothing.
    import_text(dir.path(), "again.json", &request(0).to_string());
    let shown: Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["show", "00000000000000000000000000c0de00", "--json"],
    )))
    .unwrap();
    assert_eq!(
        (
            shown["span_count"].as_u64(),
            shown["error_count"].as_u64(),
            shown["spans"].as_array().unwrap().len()
        ),
        (Some(4), Some(1), 4)
    );
}

/// A loopback proxy in front of `upstream` that keeps the request line of every request (the
/// CLI's REST client opens one connection per request).
fn counting_proxy(
    upstream: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && client.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&head);
            log.lock()
                .unwrap()
                .push(text.lines().next().unwrap_or_default().to_owned());
            let mut server = std::net::TcpStream::connect(upstream).unwrap();
            server.write_all(&head).unwrap();
            let _ = std::io::copy(&mut server, &mut client);
        }
    });
    (addr, seen)
}

#[test]
fn a_servers_perf_of_one_service_and_kind_is_the_local_one_in_one_request() {
    let dir = store();
    let args = ["perf", CALL, "--service", "frontend", "--kind", "client"];
    let here = ok(devtrace(dir.path(), &args));
    // The proxy passes the client's Host (its own port) through, as a reverse proxy does: the
    // server is told to answer to that name.
    let server = common::start_server_with(dir.path(), &["--allow-host", "127.0.0.1"], &[]);
    let (proxy, requests) = counting_proxy(server.api);
    let there = std::process::Command::new(common::BIN)
        .args(["--server", &format!("http://{proxy}")])
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "200")
        .env_remove("DEVTRACE_STORE")
        .output()
        .unwrap();
    assert_eq!(ok(there), here);
    let requests = requests.lock().unwrap().clone();
    let asked: Vec<&String> = requests
        .iter()
        .filter(|r| r.contains("/traces?") || r.contains("/otlp"))
        .collect();
    // One request finds the operation's traces; each of the 3 runs is then read once, to
    // analyse it (no candidate is fetched to check its spans' service and kind).
    assert_eq!(
        asked
            .iter()
            .filter(|r| r
                .starts_with("GET /api/v1/operations/%2Fshop.Checkout%2FPlaceOrder/traces?limit=")
                && r.contains("&service=frontend&kind=client"))
            .count(),
        1,
        "{requests:#?}"
    );
    assert_eq!(
        asked.iter().filter(|r| r.contains("/otlp")).count(),
        3,
        "{requests:#?}"
    );
    assert_eq!(asked.len(), 4, "{requests:#?}");
}
