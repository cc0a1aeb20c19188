//! Whole-command transcripts of the `devtrace` binary: exit code, stdout, stderr.

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::{Value, json};
use std::path::Path;

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn span(id: &str, parent: Option<&str>, name: &str, start_ms: u64, end_ms: u64) -> Value {
    let mut span = json!({
        "traceId": TRACE, "spanId": id, "name": name, "kind": 2,
        "startTimeUnixNano": (T0 + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (T0 + end_ms * 1_000_000).to_string(),
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(parent);
    }
    span
}

/// A checkout trace: 6 repeated queries (folded), a failing payment call with an exception
/// event, and a log record correlated with it.
fn write_fixture(dir: &Path) -> std::path::PathBuf {
    let mut spans = vec![span("0000000000000001", None, "POST /checkout", 0, 100)];
    for i in 0..6u64 {
        let mut query = span(
            &format!("00000000000000{:02x}", 0x10 + i),
            Some("0000000000000001"),
            "SELECT item",
            5 + i * 5,
            9 + i * 5,
        );
        query["attributes"] = json!([{"key": "db.query.text", "value": {"stringValue": format!("SELECT * FROM items WHERE id = {i}")}}]);
        spans.push(query);
    }
    let mut charge = span(
        "0000000000000002",
        Some("0000000000000001"),
        "charge-card",
        40,
        90,
    );
    charge["status"] = json!({"code": 2, "message": "card declined"});
    charge["attributes"] = json!([{"key": "payment.amount", "value": {"doubleValue": 42.5}}]);
    charge["events"] = json!([{"name": "exception", "timeUnixNano": (T0 + 89_000_000).to_string(), "attributes": [
        {"key": "exception.type", "value": {"stringValue": "PaymentError"}},
        {"key": "exception.message", "value": {"stringValue": "card declined"}}]}]);
    spans.push(charge);
    let traces = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "shop.http"}, "spans": spans}]}]});
    let logs = json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeLogs": [{"logRecords": [{
            "timeUnixNano": (T0 + 91_000_000).to_string(), "severityNumber": 17, "severityText": "ERROR",
            "body": {"stringValue": "payment failed"}, "traceId": TRACE, "spanId": "0000000000000002"}]}]}]});
    let path = dir.join("checkout.jsonl");
    std::fs::write(&path, format!("{traces}\n{logs}\n")).unwrap();
    path
}

fn imported_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = write_fixture(dir.path());
    let output = devtrace(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

#[test]
fn show_draws_the_waterfall_with_folded_siblings_errors_and_logs() {
    let dir = imported_store();
    // The waterfall at 100 columns.
    let output = common::devtrace(dir.path(), &["show", "4bf9"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = "\
POST /checkout  shop  100.0 ms  8 spans  1 error
trace 4bf92f3577b34da6a3ce929d0e0e4736  started 2025-11-21 13:00:00 UTC

POST /checkout                                  100.0 ms  ██████████████████████████████████████████
├─ × 6 SELECT item … 4.0 ms each                 24.0 ms    ████████████
└─ charge-card                                   50.0 ms                  █████████████████████
     ✗ PaymentError: card declined

logs (1)
    +91.0 ms  ERROR  payment failed  [charge-card]
";
    assert_eq!(stdout(&output), expected);

    let unfolded = stdout(&devtrace(dir.path(), &["show", TRACE, "--no-fold"]));
    assert_eq!(unfolded.matches("SELECT item").count(), 6);

    let attrs = stdout(&devtrace(
        dir.path(),
        &["show", TRACE, "--attrs", "--no-fold"],
    ));
    assert!(attrs.contains("payment.amount = 42.5"), "{attrs}");
    assert!(
        attrs.contains("db.query.text = SELECT * FROM items WHERE id = 3"),
        "{attrs}"
    );
    assert!(attrs.contains("• +49.0 ms exception"), "{attrs}");
    assert!(attrs.contains("exception.type = PaymentError"), "{attrs}");
}

#[test]
fn ls_lists_the_summary_and_filters() {
    let dir = imported_store();
    let output = devtrace(dir.path(), &["ls"]);
    assert_eq!(
        stdout(&output),
        "\
START (UTC)          OPERATION       SERVICE  DURATION  SPANS  ERRORS  TRACE ID
2025-11-21 13:00:00  POST /checkout  shop     100.0 ms      8       1  4bf92f3577b34da6a3ce929d0e0e4736
"
    );
    let json: Value = serde_json::from_str(&stdout(&devtrace(
        dir.path(),
        &["ls", "--json", "--errors"],
    )))
    .unwrap();
    assert_eq!(
        json,
        json!([{
        "trace_id": TRACE, "start_unix_nano": T0, "root_name": "POST /checkout", "service": "shop", "services": ["shop"],
        "duration_ns": 100_000_000, "last_span_end_ns": null, "root_failed": false,
        "span_count": 8, "error_count": 1}])
    );
    let none: Value = serde_json::from_str(&stdout(&devtrace(
        dir.path(),
        &["ls", "--json", "--min-duration", "1s"],
    )))
    .unwrap();
    assert_eq!(none, json!([]));
    let count = |args: &[&str]| -> usize {
        let mut all = vec!["ls", "--json"];
        all.extend_from_slice(args);
        let output = devtrace(dir.path(), &all);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str::<Value>(&stdout(&output))
            .unwrap()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(
        count(&["--operation", "charge-card"]),
        1,
        "a child span's name"
    );
    assert_eq!(count(&["--operation", "charge"]), 0, "whole names only");
    assert_eq!(count(&["--attr", "payment.amount=42.5"]), 1);
    assert_eq!(count(&["--attr", "db.query.text~WHERE id = 5"]), 1);
    assert_eq!(count(&["--attr", "db.query.text~WHERE id = 9"]), 0);
    assert_eq!(
        count(&["--attr", "service.name=shop", "--max-duration", "100ms"]),
        1
    );
    assert_eq!(count(&["--max-duration", "99ms"]), 0);
    assert_eq!(count(&["--ok"]), 0);
    assert_eq!(count(&["--until", "2025-11-21T13:00:00Z"]), 0);
    let bad_attr = devtrace(dir.path(), &["ls", "--attr", "justakey"]);
    assert_eq!(bad_attr.status.code(), Some(2));
    assert!(
        stderr(&bad_attr).contains("key=value"),
        "{}",
        stderr(&bad_attr)
    );
    let bad = devtrace(dir.path(), &["ls", "--since", "lately"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("--since") && stderr(&bad).contains("30m"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn show_json_has_the_tree_in_order_with_logs() {
    let dir = imported_store();
    let json: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["show", TRACE, "--json"]))).unwrap();
    let names: Vec<(&str, u64)> = json["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["depth"].as_u64().unwrap()))
        .collect();
    assert_eq!(names.len(), 8);
    assert_eq!(names[0], ("POST /checkout", 0));
    assert_eq!(names[7], ("charge-card", 1));
    assert_eq!(
        json["spans"][7]["status"],
        json!({"code": "error", "message": "card declined"})
    );
    assert_eq!(
        json["spans"][7]["attributes"]["payment.amount"],
        json!(42.5)
    );
    assert_eq!(json["logs"][0]["body"], json!("payment failed"));
    assert_eq!(json["logs"][0]["span_id"], json!("0000000000000002"));
}

#[test]
fn unknown_ambiguous_and_malformed_ids_explain_themselves() {
    let dir = imported_store();
    let unknown = devtrace(dir.path(), &["show", "ffff"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stderr(&unknown), "error: no trace matches \"ffff\"\n");
    let malformed = devtrace(dir.path(), &["show", "not-an-id"]);
    assert_eq!(malformed.status.code(), Some(2));
    assert!(
        stderr(&malformed).contains("32 hexadecimal characters"),
        "{}",
        stderr(&malformed)
    );
}

#[test]
fn reading_a_missing_store_says_how_to_fill_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = devtrace(&dir.path().join("nothing-here"), &["ls"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("devtrace serve"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_malformed_file_stores_nothing_and_names_the_field() {
    let dir = imported_store();
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spanId":"0000000000000009","name":"fine"},{"traceId":"xyz"}]}]}]}"#,
    )
    .unwrap();
    let output = devtrace(dir.path(), &["import", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("bad.json") && message.contains("spans[1].traceId"),
        "{message}"
    );
    assert!(
        message.contains("nothing from this file was stored"),
        "{message}"
    );
    let listing: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["ls", "--json"]))).unwrap();
    assert_eq!(
        listing.as_array().unwrap().len(),
        1,
        "only the earlier trace is stored"
    );
}

#[test]
fn export_then_import_elsewhere_round_trips_every_field() {
    let dir = imported_store();
    let exported = devtrace(dir.path(), &["export", TRACE]);
    assert!(exported.status.success());
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("exported.json");
    std::fs::write(&file, &exported.stdout).unwrap();
    assert!(
        devtrace(other.path(), &["import", file.to_str().unwrap()])
            .status
            .success()
    );
    let again = devtrace(other.path(), &["export", TRACE]);
    assert_eq!(stdout(&again), stdout(&exported));
    let document: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let charge = &document["resourceSpans"][0]["scopeSpans"][0]["spans"][7];
    assert_eq!(
        charge["status"],
        json!({"message": "card declined", "code": 2})
    );
    assert_eq!(
        charge["startTimeUnixNano"],
        json!((T0 + 40_000_000).to_string())
    );
}

#[test]
fn counts_of_one_are_singular() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/otlp/trace.json"
    );
    let import = devtrace(dir.path(), &["import", fixture]);
    assert_eq!(
        stderr(&import),
        format!(
            "{fixture}: 1 span, 0 log records\nimported 1 span and 0 log records from 1 of 1 file\n"
        )
    );
    let show = devtrace(dir.path(), &["show", "0af7"]);
    let first_line = stdout(&show).lines().next().unwrap_or_default().to_owned();
    assert_eq!(
        first_line,
        "GET /orders/{id}  orders  250.0 ms  1 span  no errors"
    );
}
