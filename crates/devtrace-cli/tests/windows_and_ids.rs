//! One default window and 64-bit ids: an imported trace from long ago still gets its findings
//! from `insights`, `errors` and the `perf` ranking (the hour before the newest trace, and the
//! answer says so), and a Jaeger/Zipkin 64-bit trace id (16 hex digits) finds the trace that
//! OpenTelemetry carried zero-padded.

mod common;

use common::{devtrace, import_text, ok, stderr};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const JAEGER_ID: &str = "4bf92f3577b34da6";
const NOTE: &str = "note: no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:00:00 UTC\n";

/// A report that queries its rows one at a time (an N+1 the detectors report), under a 64-bit
/// trace id as a Jaeger client would have made it.
fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let trace = format!("{:0>32}", JAEGER_ID);
    let at = |ms: u64| (T0 + ms * 1_000_000).to_string();
    let mut spans = vec![json!({
        "traceId": trace, "spanId": "0000000000000001", "name": "GET /report", "kind": 2,
        "startTimeUnixNano": at(0), "endTimeUnixNano": at(100)})];
    for q in 0..8u64 {
        spans.push(json!({
            "traceId": trace, "spanId": format!("{:016x}", 10 + q), "parentSpanId": "0000000000000001",
            "name": "SELECT row", "kind": 3,
            "startTimeUnixNano": at(10 + q * 10), "endTimeUnixNano": at(19 + q * 10),
            "attributes": [
                {"key": "db.system.name", "value": {"stringValue": "postgresql"}},
                {"key": "db.query.text", "value": {"stringValue": format!("SELECT * FROM rows WHERE id = {q}")}}]}));
    }
    let document = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reports"}}]},
        "scopeSpans": [{"spans": spans}]}]});
    import_text(dir.path(), "old.json", &document.to_string());
    dir
}

#[test]
fn an_old_store_is_analysed_in_the_hour_before_its_newest_trace_and_says_so() {
    let dir = store();
    let text = ok(devtrace(dir.path(), &["insights"]));
    assert!(text.starts_with(NOTE), "{text}");
    let heading = text.lines().nth(1).unwrap();
    assert!(
        heading.contains("across 1 trace (the hour before the newest trace), ranked by impact"),
        "{heading}"
    );
    let json: Value =
        serde_json::from_str(&ok(devtrace(dir.path(), &["insights", "--json"]))).unwrap();
    assert!(json["total_findings"].as_u64().unwrap() >= 1, "{json}");
    assert_eq!(json["traces_analysed"], 1);
    assert_eq!(json["window"]["newest_unix_nano"], T0);
    assert_eq!(json["window"]["note"], NOTE["note: ".len()..].trim_end());

    // An explicit window is the caller's: the last hour holds nothing.
    let recent: Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["insights", "--since", "1h", "--json"],
    )))
    .unwrap();
    assert_eq!(
        (recent["traces_analysed"].as_u64(), &recent["window"]),
        (Some(0), &Value::Null)
    );
    // A count is the caller's too: the last N traces, whenever they ran.
    let counted: Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["insights", "--last", "5", "--json"],
    )))
    .unwrap();
    assert_eq!(counted["traces_analysed"], 1);
    assert_eq!(counted["window"], Value::Null);

    let ranking = ok(devtrace(dir.path(), &["perf"]));
    assert!(
        ranking.starts_with(&format!(
            "{NOTE}root operations by total time over 1 trace (the hour before the newest trace)\n"
        )),
        "{ranking}"
    );
}

#[test]
fn a_64_bit_trace_id_finds_its_trace_everywhere_an_id_is_taken() {
    let dir = store();
    let padded = format!("{:0>32}", JAEGER_ID);
    for id in [JAEGER_ID, "4BF92F3577B34DA6", padded.as_str(), "4bf92f35"] {
        let shown: Value =
            serde_json::from_str(&ok(devtrace(dir.path(), &["show", id, "--json"]))).unwrap();
        assert_eq!(shown["trace_id"], padded, "show {id}");
    }
    let exported = ok(devtrace(dir.path(), &["export", JAEGER_ID]));
    assert!(exported.contains(&padded), "{exported}");
    let profile: Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["perf", "--trace", JAEGER_ID, "--json"],
    )))
    .unwrap();
    assert_eq!(profile["profile"]["operation"], "GET /report");
    let missing = devtrace(dir.path(), &["show", "4bf92f3577b34da7"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no trace matches \"4bf92f3577b34da7\""),
        "{}",
        stderr(&missing)
    );
}
