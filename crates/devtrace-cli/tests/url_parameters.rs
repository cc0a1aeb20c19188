//! A failure caused by a request parameter that lives only in the URL, as auto-instrumentation
//! records it: `devtrace errors` names the query parameter or the route's path segment as what
//! separates the failing runs, the same under the old HTTP conventions (`http.url`,
//! `http.target`) and the stable ones (`url.full`, `url.path`, `url.query`).

mod common;

use common::{devtrace_wide as devtrace, ok, stderr};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const FAILING: [u64; 4] = [3, 6, 10, 13];

fn attr(key: &str, value: impl Into<Value>) -> Value {
    match value.into() {
        Value::Number(n) => json!({"key": key, "value": {"intValue": n.to_string()}}),
        other => json!({"key": key, "value": {"stringValue": other}}),
    }
}

/// One export of run `run`: web's `GET /report` (server) calls reports' `GET
/// /reports/{days}` (a client span in web, the server span in reports), which times out when
/// the report spans a year. Services are addressed by IP literal and port.
fn run(run: u64, stable: bool) -> Value {
    let failing = FAILING.contains(&run);
    let days = if failing {
        360 + run
    } else {
        7 * (1 + run % 4)
    };
    let trace = format!("{:032x}", 0x0a11_0000 + run);
    let base = T0 + run * 60_000_000_000;
    let span = |id: u64, parent: Option<u64>, name: &str, kind: u8, attributes: Vec<Value>| {
        let (start, end) = (id * 5, 900 - id * 5);
        let mut span = json!({
            "traceId": trace, "spanId": format!("{id:016x}"), "name": name, "kind": kind,
            "startTimeUnixNano": (base + start * 1_000_000).to_string(),
            "endTimeUnixNano": (base + end * 1_000_000).to_string(),
            "attributes": attributes,
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        if failing {
            span["status"] = json!({"code": 2, "message": "report timed out"});
        }
        span
    };
    let url = format!("http://10.0.0.7:8081/reports/{days}?format=csv&page=1");
    let (method, client_url, target) = if stable {
        ("http.request.method", "url.full", "url.path")
    } else {
        ("http.method", "http.url", "http.target")
    };
    let mut server = vec![attr(method, "GET"), attr("http.route", "/reports/{days}")];
    if stable {
        server.extend([
            attr(target, format!("/reports/{days}")),
            attr("url.query", "format=csv&page=1"),
            attr("server.address", "10.0.0.7"),
            attr("server.port", 8081),
        ]);
    } else {
        server.extend([
            attr(target, format!("/reports/{days}?format=csv&page=1")),
            attr("http.host", "10.0.0.7:8081"),
        ]);
    }
    let service = |name: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [attr("service.name", name)]},
               "scopeSpans": [{"spans": spans}]})
    };
    json!({"resourceSpans": [
        service("web", vec![
            span(1, None, "GET /report", 2, vec![attr(method, "GET"), attr("http.route", "/report")]),
            span(2, Some(1), "GET", 3, vec![attr(method, "GET"), attr(client_url, url)]),
        ]),
        service("reports", vec![span(3, Some(2), "GET /reports/{days}", 2, server)]),
    ]})
}

fn store(stable: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..16).map(|n| run(n, stable).to_string()).collect();
    let path = dir.path().join("runs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    let output = devtrace(dir.path(), &["import", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

#[test]
fn a_route_parameter_separates_the_failing_runs_under_both_conventions() {
    for stable in [false, true] {
        let dir = store(stable);
        let report: Value =
            serde_json::from_str(&ok(devtrace(dir.path(), &["errors", "--json"]))).unwrap();
        let group = &report["groups"][0];
        let c = &group["correlation"];
        assert_eq!(
            c["feature"], "GET /reports/{days}.url.path.days",
            "stable: {stable}"
        );
        assert_eq!(c["attribute"], "url.path.days");
        assert_eq!(
            (&c["operator"], &c["failing_edge"], &c["passing_edge"]),
            (&json!("gt"), &json!(363.0), &json!(28.0)),
            "stable: {stable}"
        );
        assert_eq!(
            (&c["failing_with"], &c["passing_with"], &c["passing_total"]),
            (&json!(4), &json!(0), &json!(12))
        );
        let text = ok(devtrace(dir.path(), &["errors"]));
        assert!(
            text.contains(
                "had \"GET /reports/{days}.url.path.days\" > 300; 0 of 12 successes did \
                 (observed: failing runs ≥ 363, passing runs ≤ 28)"
            ),
            "stable: {stable}\n{text}"
        );
        // The chain of one failure sets this run's value next to the rule.
        let fingerprint = group["fingerprint"].as_str().unwrap();
        let chain = ok(devtrace(dir.path(), &["errors", "show", fingerprint]));
        assert!(chain.contains("url.path.days"), "{chain}");
    }
}

#[test]
fn compare_names_the_request_parameters_two_runs_differ_in_under_both_conventions() {
    for stable in [false, true] {
        let dir = store(stable);
        let (passing, failing) = (
            format!("{:032x}", 0x0a11_0000 + 1),
            format!("{:032x}", 0x0a11_0000 + 3),
        );
        let json: Value = serde_json::from_str(&ok(devtrace(
            dir.path(),
            &["compare", &passing, &failing, "--json"],
        )))
        .unwrap();
        assert_eq!(
            json["comparison"]["parameters"],
            json!([{"name": "GET /reports/{days}.url.path.days", "a": "14", "b": "363"}]),
            "stable: {stable}"
        );
        let text = ok(devtrace(dir.path(), &["compare", &passing, &failing]));
        assert!(
            text.contains(
                "request parameters that differ (A → B):\n  GET /reports/{days}.url.path.days: \"14\" → \"363\"\n"
            ),
            "stable: {stable}\n{text}"
        );
    }
}
