//! A bounded pool as real clients run it: the api's sixteen lookups go through a pool of four,
//! each started 0.3–3 ms after a slot frees or up to 2.5 ms before the previous client span is
//! closed, each served by the geo service (old HTTP conventions), which asks its cache service.
//! `devtrace insights` reports the limit of four.

mod common;

use common::imported_findings;
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const MS: i64 = 1_000_000;
const US: i64 = 1_000;

fn attr(key: &str, value: &str) -> Value {
    json!({"key": key, "value": {"stringValue": value}})
}

/// Sixteen calls of 45–67 ms through `slots` slots: each starts when the earliest slot frees,
/// shifted by its jitter (negative: opened before the previous span was closed).
fn pool_schedule(slots: usize) -> Vec<(i64, i64)> {
    let jitter_us = [
        0i64, 300, 1_700, 900, -2_500, 3_000, 800, -1_200, 2_200, 400, -600, 1_500, 2_900, 350,
        -1_800, 1_100,
    ];
    let mut free_at = vec![0i64; slots];
    jitter_us
        .iter()
        .enumerate()
        .map(|(i, jitter)| {
            let duration = (45 + (i as i64 * 7) % 24) * MS;
            let earliest = free_at.iter().copied().min().unwrap();
            let slot = free_at.iter().position(|t| *t == earliest).unwrap();
            let start = (earliest + jitter * US).max(0);
            free_at[slot] = start + duration;
            (start, start + duration)
        })
        .collect()
}

fn batch(run: u64) -> Value {
    let trace = format!("{:032x}", 0x9001_0000 + run);
    let base = (T0 + run * 60_000_000_000) as i64;
    let span = |id: u64, parent: Option<u64>, name: &str, kind: u8, start: i64, end: i64| {
        let mut span = json!({
            "traceId": trace, "spanId": format!("{id:016x}"), "name": name, "kind": kind,
            "startTimeUnixNano": (base + start).to_string(),
            "endTimeUnixNano": (base + end).to_string(),
        });
        if let Some(parent) = parent {
            span["parentSpanId"] = json!(format!("{parent:016x}"));
        }
        span
    };
    let (mut api, mut geo, mut cache) = (vec![], vec![], vec![]);
    let schedule = pool_schedule(4);
    for (i, &(start, end)) in schedule.iter().enumerate() {
        let id = 10 + 3 * i as u64;
        let mut client = span(id, Some(1), "GET", 3, start, end);
        client["attributes"] = json!([
            attr("http.request.method", "GET"),
            attr(
                "url.full",
                &format!("http://10.0.0.9:8080/v1/lookup/{}", 4000 + i)
            ),
        ]);
        api.push(client);
        // The geo service is a Flask app on the old HTTP conventions.
        let (received, answered) = (start + 250 * US, end - 150 * US);
        let mut server = span(
            id + 1,
            Some(id),
            "/v1/lookup/<int:id>",
            2,
            received,
            answered,
        );
        server["attributes"] = json!([
            attr("http.method", "GET"),
            attr("http.route", "/v1/lookup/<int:id>"),
            attr("http.target", &format!("/v1/lookup/{}", 4000 + i)),
        ]);
        geo.push(server);
        let mut get = span(id + 2, Some(id + 1), "GET", 3, start + MS, end - MS);
        get["attributes"] = json!([
            attr("db.system.name", "redis"),
            attr("db.operation.name", "GET"),
            attr("db.query.text", "GET place:?"),
        ]);
        cache.push(get);
    }
    let end = schedule.iter().map(|c| c.1).max().unwrap() + 2 * MS;
    api.insert(0, span(1, None, "geocode.batch", 1, 0, end));
    let service = |name: &str, spans: Vec<Value>| {
        json!({"resource": {"attributes": [attr("service.name", name)]},
               "scopeSpans": [{"spans": spans}]})
    };
    json!({"resourceSpans": [service("api", api), service("geo", geo), service("geo-cache", cache)]})
}

#[test]
fn a_pool_whose_calls_start_staggered_is_found_across_services() {
    let lines: Vec<String> = (0..3).map(|n| batch(n).to_string()).collect();
    let pools = imported_findings(&lines, "concurrency_limit");
    assert_eq!(pools.len(), 1, "{pools:#?}");
    let pool = &pools[0];
    assert_eq!(pool["operation"], "geocode.batch");
    assert_eq!(pool["numbers"]["limit"], 4.0);
    assert_eq!(pool["numbers"]["calls"], 16.0);
    assert_eq!(pool["numbers"]["runs"], 3.0);
    // One slot per call: the longest call.
    assert_eq!(pool["numbers"]["unbounded_nanos"], 67e6);
    // The pool's calls are not also an N+1 loop.
    assert!(imported_findings(&lines, "repeated_calls").is_empty());
}
