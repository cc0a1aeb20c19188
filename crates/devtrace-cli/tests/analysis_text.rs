//! Golden transcripts of the analysis commands' text output (`perf`, `compare`, `insights`).

mod common;

use common::devtrace_wide as devtrace;
use serde_json::{Value, json};

use std::process::Output;

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn span(trace: &str, id: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Value {
    let mut span = json!({
        "traceId": trace, "spanId": format!("{id:016x}"), "name": name,
        "startTimeUnixNano": (T0 + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (T0 + end_ms * 1_000_000).to_string(),
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    span
}

/// A report: `fetch` then `render`, two HTTP GETs to different services one after another,
/// then 6 queries of 10 ms each. `slow` makes `render` 200 ms instead of 100 ms.
fn report(run: u64, slow: bool) -> Value {
    let trace = format!("{:032x}", 0xaa00 + run);
    let offset = run * 10_000;
    let render = if slow { 200 } else { 100 };
    let mut spans = vec![
        span(
            &trace,
            1,
            None,
            "report",
            offset,
            offset + 150 + render + 60,
        ),
        get(
            span(&trace, 2, Some(1), "fetch", offset, offset + 150),
            "https://rows.internal/v1/rows",
        ),
        get(
            span(
                &trace,
                3,
                Some(1),
                "render",
                offset + 150,
                offset + 150 + render,
            ),
            "https://templates.internal/v1/report",
        ),
    ];
    for q in 0..6u8 {
        let start = offset + 150 + render + u64::from(q) * 10;
        let mut query = span(&trace, 10 + q, Some(1), "SELECT row", start, start + 10);
        query["attributes"] = json!([{"key": "db.query.text", "value": {"stringValue": format!("SELECT * FROM rows WHERE id = {q}")}}]);
        spans.push(query);
    }
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "reports"}}]},
        "scopeSpans": [{"spans": spans}]}]})
}

/// `span` as an HTTP GET client span to `url`.
fn get(mut span: Value, url: &str) -> Value {
    span["kind"] = json!(3);
    span["attributes"] = json!([
        {"key": "http.request.method", "value": {"stringValue": "GET"}},
        {"key": "url.full", "value": {"stringValue": url}},
    ]);
    span
}

fn store_with(runs: &[(u64, bool)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = runs
        .iter()
        .map(|(run, slow)| report(*run, *slow).to_string())
        .collect();
    let file = dir.path().join("reports.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let output = devtrace(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

#[test]
fn perf_text() {
    let dir = store_with(&[(0, false), (1, false)]);
    let expected = "\
report (span of reports): 310.0 ms mean over 2 runs (p50 310.0 ms, p95 310.0 ms, max 310.0 ms)

  child       kind          mean       p50       p95  share  calls  critical
  fetch       HTTP      150.0 ms  150.0 ms  150.0 ms   48 %    1.0      48 %
  render      HTTP      100.0 ms  100.0 ms  100.0 ms   32 %    1.0      32 %
  SELECT row  database   60.0 ms   60.0 ms   60.0 ms   19 %    6.0      19 %

time by kind of work: database 19 % (60.0 ms), HTTP 81 % (250.0 ms)

findings
1. \"GET rows.internal/v1/rows\" and \"GET templates.internal/v1/report\" run one after another under \"report\" in 2 of 2 runs, 250.0 ms in all; concurrently they would take ≈ 150.0 ms
   impact: saves ≈ 100.0 ms per run in 2 of 2 runs of \"report\" (32 % of its time) · score 0.323
   → run them concurrently: nothing in the trace shows one uses another's result (no link, no shared lock, no value passed from one to the next); saving ≈ 100.0 ms per run (median of 2 runs)
   evidence: trace 0000000000000000000000000000aa00 spans 0000000000000001 0000000000000002 0000000000000003
   evidence: trace 0000000000000000000000000000aa01 spans 0000000000000001 0000000000000002 0000000000000003
   [sequential_work 5fda8c38cc8ca471]
2. \"report\" runs \"SELECT * FROM rows WHERE id = <n>\" one after another, 6 times per run (10.0 ms each, 60.0 ms in all)
   impact: saves ≈ 45.0 ms per run in 2 of 2 runs of \"report\" (15 % of its time) · score 0.145
   → batch them into one query (WHERE … IN (...) or a JOIN); saving ≈ 45.0 ms per run
   evidence: trace 0000000000000000000000000000aa00 spans 0000000000000001 000000000000000a 000000000000000b 000000000000000c 000000000000000d 000000000000000e +1
   evidence: trace 0000000000000000000000000000aa01 spans 0000000000000001 000000000000000a 000000000000000b 000000000000000c 000000000000000d 000000000000000e +1
   [repeated_calls 6ef39f86747c1471]
3. 80.6 % of the time of \"report\" is HTTP calls (2 calls per run)
   impact: says where the time goes; estimates nothing (listed, not ranked)
   → start with the outgoing HTTP calls: fewer round trips, caching, concurrency (this says where to look; it estimates no saving)
   evidence: trace 0000000000000000000000000000aa00 spans 0000000000000001 0000000000000002 0000000000000003
   evidence: trace 0000000000000000000000000000aa01 spans 0000000000000001 0000000000000002 0000000000000003
   [dominant_cost f98fd38335f979b9]
";
    assert_eq!(stdout(&devtrace(dir.path(), &["perf", "report"])), expected);
}

#[test]
fn compare_text_says_when_there_are_too_few_runs() {
    let dir = store_with(&[(0, false), (1, true)]);
    let expected = "\
trace 0000000000000000000000000000aa00 (A) vs trace 0000000000000000000000000000aa01 (B)

whole run: 310.0 ms → 410.0 ms  (+100.0 ms, +32.3 %)  1 vs 1 run(s): too few to tell a change from noise

  operation          A         B      delta    change  calls A→B  verdict
  render      100.0 ms  200.0 ms  +100.0 ms  +100.0 %    1.0→1.0  too few runs
  report      310.0 ms  410.0 ms  +100.0 ms   +32.3 %    1.0→1.0  too few runs
  SELECT row   60.0 ms   60.0 ms      +0 ns    +0.0 %    6.0→6.0  too few runs
  fetch       150.0 ms  150.0 ms      +0 ns    +0.0 %    1.0→1.0  too few runs
";
    assert_eq!(
        stdout(&devtrace(
            dir.path(),
            &[
                "compare",
                "0000000000000000000000000000aa00",
                "0000000000000000000000000000aa01"
            ]
        )),
        expected
    );
}

#[test]
fn compare_last_runs_gives_a_rank_test_verdict() {
    let runs: Vec<(u64, bool)> = (0..12).map(|run| (run, run >= 6)).collect();
    let dir = store_with(&runs);
    let text = stdout(&devtrace(
        dir.path(),
        &["compare", "--operation", "report", "--last", "12"],
    ));
    assert!(
        text.starts_with("\"report\": 6 earlier run(s) (A) vs 6 later run(s) (B)\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "whole run: 310.0 ms → 410.0 ms  (+100.0 ms, +32.3 %)  slower (p = 0.001, n = 6 vs 6)"
        ),
        "{text}"
    );
}

#[test]
fn insights_text_ranks_by_impact() {
    let dir = store_with(&[(0, false), (1, false)]);
    let text = stdout(&devtrace(dir.path(), &["insights", "--since", "1000d"]));
    assert!(
        text.starts_with(
            "3 findings across 2 traces (since 1000d), ranked by impact (the share of an \
             operation's time, tokens or runs a fix recovers × how often it runs)\n\n1. \
             \"GET rows.internal/v1/rows\" and \"GET templates.internal/v1/report\" run one \
             after another"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n2. \"report\" runs \"SELECT * FROM rows WHERE id = <n>\" one after another, 6 \
             times per run"
        ),
        "{text}"
    );
    // The observation has no score and comes last.
    assert!(
        text.contains("\n3. 80.6 % of the time of \"report\" is HTTP calls"),
        "{text}"
    );
}

#[test]
fn an_unknown_operation_suggests_close_names() {
    let dir = store_with(&[(0, false)]);
    let output = devtrace(dir.path(), &["perf", "reprot"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: no span named \"reprot\" is stored; did you mean \"report\"?\n"
    );
}
