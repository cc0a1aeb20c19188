//! One duration per operation: a server span that outlives its client's (the client timed
//! out, the server went on) leaves the trace's duration its root's own, the same number in
//! `ls`, `show`, the overview, `perf` and the findings, with the last span's end shown beside
//! it.

mod common;

use common::{Server, devtrace_wide as devtrace, get_json, import_text, ok};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const MS: u64 = 1_000_000;

/// Request `n`: frontend's `GET /checkout` (521 ms) calls payments' `POST /charge` and then
/// renders. In request 0 the client gives up after 503 ms while the server works on until
/// 1,020 ms after the root's start; in the others the call takes 124 ms.
fn request(n: u64) -> Value {
    let trace = format!("{:032x}", 0xd000 + n);
    let at = n * 2_000;
    let span = |id: u8, parent: Option<u8>, name: &str, kind: u8, start: u64, end: u64| {
        let mut span = json!({
            "traceId": trace, "spanId": format!("{id:016x}"), "name": name, "kind": kind,
            "startTimeUnixNano": (T0 + (at + start) * MS).to_string(),
            "endTimeUnixNano": (T0 + (at + end) * MS).to_string(),
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    };
    let timeout = n == 0;
    let call_end = if timeout { 513 } else { 134 };
    let mut client = span(2, Some(1), "POST /charge", 3, 10, call_end);
    if timeout {
        client["status"] = json!({"code": 2, "message": "timed out"});
    }
    let service = |name: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
               "scopeSpans": [{"spans": spans}]})
    };
    json!({"resourceSpans": [
        service("frontend", vec![
            span(1, None, "GET /checkout", 2, 0, 521),
            client,
            span(3, Some(1), "render", 1, call_end, 521),
        ]),
        service("payments", vec![
            span(4, Some(2), "POST /charge", 2, 12, if timeout { 1_020 } else { 130 }),
        ]),
    ]})
}

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..3).map(|n| request(n).to_string()).collect();
    import_text(dir.path(), "requests.jsonl", &lines.join("\n"));
    dir
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn a_server_outliving_its_client_leaves_every_view_the_roots_duration() {
    let dir = store();
    let data = dir.path();
    let root = (521 * MS) as f64;

    let rows = json_of(&ok(devtrace(data, &["ls", "--json"])));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_eq!(row["duration_ns"], json!(521 * MS), "{row}");
        let outlived = row["trace_id"].as_str().unwrap().ends_with("d000");
        let last = if outlived {
            json!(1_020 * MS)
        } else {
            Value::Null
        };
        assert_eq!(row["last_span_end_ns"], last, "{row}");
    }
    let text = ok(devtrace(data, &["ls"]));
    assert!(text.contains(" 521.0 ms (1.02 s) "), "{text}");
    assert_eq!(text.matches(" 521.0 ms ").count(), 3, "{text}");
    assert_eq!(text.matches("(1.02 s)").count(), 1, "{text}");
    assert!(
        text.contains("a span went on after the root ended"),
        "{text}"
    );
    let shown = ok(devtrace(data, &["show", &format!("{:032x}", 0xd000)]));
    assert!(
        shown.contains("root 521.0 ms; the last span ends at 1.02 s"),
        "{shown}"
    );

    let ranked = json_of(&ok(devtrace(data, &["perf", "--json"])));
    assert_eq!(ranked[0]["operation"], "GET /checkout");
    assert_eq!(ranked[0]["duration"]["mean"], json!(root));
    assert_eq!(ranked[0]["errors"], 0, "the root span never failed");
    let profile = json_of(&ok(devtrace(data, &["perf", "GET /checkout", "--json"])));
    assert_eq!(
        profile["profile"]["duration"]["mean"],
        json!(root),
        "{profile}"
    );
    let findings = json_of(&ok(devtrace(data, &["insights", "--json"])));
    let dominant = findings["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "dominant_cost")
        .expect("a dominant cost finding");
    assert_eq!(dominant["numbers"]["mean_duration_nanos"], json!(root));

    let server = Server::start(data);
    let overview = get_json(server.api, "/api/v1/overview");
    let top = &overview["top_operations"][0];
    assert_eq!(top["operation"], "GET /checkout", "{overview}");
    assert_eq!(top["duration"]["mean"], json!(root), "{overview}");
    let list = get_json(server.api, "/api/v1/traces");
    let listed = &list["traces"].as_array().unwrap()[2];
    assert_eq!(
        (&listed["duration_ns"], &listed["last_span_end_ns"]),
        (&json!(521 * MS), &json!(1_020 * MS)),
        "{listed}"
    );
    server.stop();
}

/// The client's `POST /charge` took 124 ms twice and timed out at 503 ms once: perf says so,
/// in text and JSON, never "250.3 ms mean".
#[test]
fn a_call_that_sometimes_times_out_is_timed_by_outcome() {
    let dir = store();
    let args = ["perf", "POST /charge", "--kind", "client"];
    let text = ok(devtrace(dir.path(), &args));
    assert!(
        text.contains("124.0 ms when it succeeds, 503.0 ms when it fails (1 of 3), over 3 runs"),
        "{text}"
    );
    assert!(!text.contains("250.3 ms"), "{text}");
    let json = json_of(&ok(devtrace(
        dir.path(),
        &[&args[..], &["--json"]].concat(),
    )));
    let by = &json["profile"]["by_outcome"];
    assert_eq!(
        (&by["ok"]["mean"], &by["ok"]["count"]),
        (&json!((124 * MS) as f64), &json!(2)),
        "{json}"
    );
    assert_eq!(
        (&by["failed"]["mean"], &by["failed"]["count"]),
        (&json!((503 * MS) as f64), &json!(1)),
        "{json}"
    );
    // No run of the root failed: one mean says it all.
    let ranked = json_of(&ok(devtrace(dir.path(), &["perf", "--json"])));
    assert_eq!(ranked[0]["by_outcome"], Value::Null, "{ranked}");
}
