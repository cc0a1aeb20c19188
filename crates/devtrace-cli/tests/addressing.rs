//! Addressing is not data: a dashboard that calls three services one after another, all on one
//! host (an IP literal, a port each) and all under the user's path, gets the same
//! sequential-work finding whether its spans carry the old HTTP conventions or the stable ones
//! (`OTEL_SEMCONV_STABILITY_OPT_IN=http`); an id the first call returned and the others sent in
//! their URLs still keeps the first out of the group.

mod common;

use common::imported_findings;
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const MS: u64 = 1_000_000;

fn attr(key: &str, value: impl Into<Value>) -> Value {
    match value.into() {
        Value::Number(n) => json!({"key": key, "value": {"intValue": n.to_string()}}),
        Value::Array(items) => json!({"key": key, "value": {"arrayValue": {"values":
            items.iter().map(|i| json!({"stringValue": i})).collect::<Vec<_>>()}}}),
        other => json!({"key": key, "value": {"stringValue": other}}),
    }
}

/// Run `run` of `GET /dashboard` in the web service: profile, orders and prefs, 100 ms each,
/// back to back, on 10.0.0.11:8081–8083. With `returned`, profile answers with the user's
/// location and the others send its id; otherwise every path already names the user.
fn dashboard(run: u64, stable: bool, returned: bool) -> Value {
    let trace = format!("{:032x}", 0xda5b_0000 + run);
    let base = T0 + run * 60_000_000_000;
    let (method, url, host, port) = if stable {
        (
            "http.request.method",
            "url.full",
            "server.address",
            "server.port",
        )
    } else {
        ("http.method", "http.url", "net.peer.name", "net.peer.port")
    };
    let span = |id: u64, parent: Option<u64>, name: &str, kind: u8, start: u64, end: u64| {
        let mut span = json!({
            "traceId": trace, "spanId": format!("{id:016x}"), "name": name, "kind": kind,
            "startTimeUnixNano": (base + start * MS).to_string(),
            "endTimeUnixNano": (base + end * MS).to_string(),
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    };
    let mut root = span(1, None, "GET /dashboard", 2, 0, 310);
    root["attributes"] = json!([attr(method, "GET"), attr("http.route", "/dashboard")]);
    let mut spans = vec![root];
    let first = if returned { "current" } else { "u_40213" };
    for (i, page) in ["profile", "orders", "prefs"].iter().enumerate() {
        let user = if i == 0 { first } else { "u_40213" };
        let start = 5 + 100 * i as u64;
        let mut call = span(2 + i as u64, Some(1), "GET", 3, start, start + 100);
        let mut attributes = vec![
            attr(method, "GET"),
            attr(
                url,
                format!("http://10.0.0.11:{}/api/v2/users/{user}/{page}", 8081 + i),
            ),
            attr(host, "10.0.0.11"),
            attr(port, 8081 + i as u64),
        ];
        if returned && i == 0 {
            attributes.push(attr(
                "http.response.header.location",
                json!(["/api/v2/users/u_40213"]),
            ));
        }
        call["attributes"] = json!(attributes);
        spans.push(call);
    }
    json!({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "web")]},
        "scopeSpans": [{"spans": spans}]}]})
}

/// The sequential-work finding on `GET /dashboard` over five runs: its calls and its saving.
fn sequential(stable: bool, returned: bool) -> (Vec<String>, f64) {
    let lines: Vec<String> = (0..5)
        .map(|n| dashboard(n, stable, returned).to_string())
        .collect();
    let found = imported_findings(&lines, "sequential_work");
    assert_eq!(found.len(), 1, "stable: {stable}: {found:#?}");
    let spans = found[0]["evidence"][0]["span_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().trim_start_matches('0').to_owned())
        .collect();
    (spans, found[0]["saving_nanos"].as_f64().unwrap())
}

#[test]
fn calls_to_one_host_under_one_path_are_independent_in_both_generations() {
    for stable in [false, true] {
        assert_eq!(
            sequential(stable, false),
            (vec!["1".into(), "2".into(), "3".into(), "4".into()], 200e6),
            "stable: {stable}"
        );
    }
}

#[test]
fn an_id_returned_by_one_call_and_sent_in_the_next_urls_is_a_dependency() {
    for stable in [false, true] {
        assert_eq!(
            sequential(stable, true),
            (vec!["1".into(), "3".into(), "4".into()], 100e6),
            "stable: {stable}"
        );
    }
}
