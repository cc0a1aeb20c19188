//! `devtrace locks` transcripts: lock spans written as OTLP/JSON per docs/conventions.md,
//! imported, then read back as waits, holds, a timeline and a lock-order inversion.

mod common;

use common::{devtrace_wide as devtrace, stdout};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const MS: u64 = 1_000_000;
/// Two workers contending for `db`.
const CONTENTION: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// Two workers taking `accounts` and `ledger` in opposite orders.
const INVERSION: &str = "a3ce929d0e0e47364bf92f3577b34da6";

fn nanos(ms: u64) -> String {
    (T0 + ms * MS).to_string()
}

fn span(trace: &str, id: &str, parent: Option<&str>, name: &str, start: u64, end: u64) -> Value {
    let mut span = json!({
        "traceId": trace, "spanId": id, "name": name, "kind": 1,
        "startTimeUnixNano": nanos(start), "endTimeUnixNano": nanos(end),
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(parent);
    }
    span
}

/// A lock use as the convention records it: a `lock <name>` span from request to release,
/// with the name, kind, holder, wait and hold, and the three events.
#[allow(clippy::too_many_arguments)]
fn lock(
    trace: &str,
    id: &str,
    parent: &str,
    name: &str,
    holder: &str,
    requested: u64,
    acquired: u64,
    released: u64,
) -> Value {
    let mut span = span(
        trace,
        id,
        Some(parent),
        &format!("lock {name}"),
        requested,
        released,
    );
    span["attributes"] = json!([
        {"key": "devtrace.lock.name", "value": {"stringValue": name}},
        {"key": "devtrace.lock.kind", "value": {"stringValue": "threading.Lock"}},
        {"key": "devtrace.lock.holder", "value": {"stringValue": holder}},
        {"key": "devtrace.lock.wait_ns", "value": {"intValue": ((acquired - requested) * MS).to_string()}},
        {"key": "devtrace.lock.hold_ns", "value": {"intValue": ((released - acquired) * MS).to_string()}},
    ]);
    span["events"] = json!([
        {"name": "devtrace.lock.requested", "timeUnixNano": nanos(requested)},
        {"name": "devtrace.lock.acquired", "timeUnixNano": nanos(acquired)},
        {"name": "devtrace.lock.released", "timeUnixNano": nanos(released)},
    ]);
    span
}

fn imported_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let c = CONTENTION;
    let contention = vec![
        span(c, "0000000000000001", None, "sync.run", 0, 100),
        // Worker 12 holds db 10..50 ms; worker 13 asks at 10 ms and waits those 40 ms.
        lock(
            c,
            "0000000000000002",
            "0000000000000001",
            "db",
            "12",
            10,
            10,
            50,
        ),
        lock(
            c,
            "0000000000000003",
            "0000000000000001",
            "db",
            "13",
            10,
            50,
            70,
        ),
    ];
    let i = INVERSION;
    let inversion = vec![
        span(i, "0000000000000011", None, "transfer.batch", 1_000, 1_100),
        // Worker 12: accounts, then ledger inside it; worker 13: ledger, then accounts.
        lock(
            i,
            "0000000000000012",
            "0000000000000011",
            "accounts",
            "12",
            1_000,
            1_000,
            1_030,
        ),
        lock(
            i,
            "0000000000000013",
            "0000000000000012",
            "ledger",
            "12",
            1_010,
            1_010,
            1_020,
        ),
        lock(
            i,
            "0000000000000014",
            "0000000000000011",
            "ledger",
            "13",
            1_040,
            1_040,
            1_070,
        ),
        lock(
            i,
            "0000000000000015",
            "0000000000000014",
            "accounts",
            "13",
            1_050,
            1_050,
            1_060,
        ),
    ];
    let spans: Vec<Value> = contention.into_iter().chain(inversion).collect();
    let traces = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bank"}}]},
        "scopeSpans": [{"scope": {"name": "devtrace.locks"}, "spans": spans}]}]});
    let file = dir.path().join("locks.json");
    std::fs::write(&file, traces.to_string()).unwrap();
    let output = devtrace(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir
}

#[test]
fn one_trace_shows_the_wait_the_holder_caused_and_its_timeline() {
    let dir = imported_store();
    let text = stdout(&devtrace(dir.path(), &["locks", "--trace", "4bf9"]));
    // Worker 13's wait is exactly worker 12's hold.
    assert_eq!(
        text,
        "\
2 lock uses of 1 lock by 2 holders in 1 trace

longest waits
LOCK  HOLDER     WAIT     HOLD  TRACE     SPAN
db    13      40.0 ms  20.0 ms  4bf92f35  0000000000000003
db    12         0 ns  40.0 ms  4bf92f35  0000000000000002

per lock
LOCK  USES  TOTAL WAIT  MAX WAIT  TOTAL HOLD  MAX HOLD  HOLDERS
db       2     40.0 ms   40.0 ms     60.0 ms   40.0 ms  12, 13

per holder
HOLDER  USES  TOTAL WAIT  MAX WAIT  TOTAL HOLD  MAX HOLD  LOCKS
13         1     40.0 ms   40.0 ms     20.0 ms   20.0 ms  db
12         1        0 ns      0 ns     40.0 ms   40.0 ms  db

no lock-order inversions

timeline (from the trace start)
      AT  HOLDER  EVENT      LOCK  FOR
+10.0 ms  12      requested  db
+10.0 ms  12      acquired   db    waited 0 ns
+10.0 ms  13      requested  db
+50.0 ms  12      released   db    held 40.0 ms
+50.0 ms  13      acquired   db    waited 40.0 ms
+70.0 ms  13      released   db    held 20.0 ms
"
    );

    let json: Value = serde_json::from_str(&stdout(&devtrace(
        dir.path(),
        &["locks", "--trace", CONTENTION, "--json"],
    )))
    .unwrap();
    assert_eq!(json["traces"], json!(1));
    assert_eq!(
        json["uses"][0],
        json!({
            "trace_id": CONTENTION, "span_id": "0000000000000003", "lock": "db",
            "kind": "threading.Lock", "holder": "13",
            "requested_unix_nano": T0 + 10 * MS, "acquired_unix_nano": T0 + 50 * MS,
            "released_unix_nano": T0 + 70 * MS, "wait_ns": 40 * MS, "hold_ns": 20 * MS})
    );
    assert_eq!(json["uses"][1]["hold_ns"], json["uses"][0]["wait_ns"]);
    assert_eq!(
        json["per_lock"],
        json!([{"lock": "db", "uses": 2, "total_wait_ns": 40 * MS, "max_wait_ns": 40 * MS,
                "total_hold_ns": 60 * MS, "max_hold_ns": 40 * MS, "holders": ["12", "13"]}])
    );
    assert_eq!(json["per_holder"][0]["holder"], json!("13"));
    assert_eq!(json["inversions"], json!([]));
    let timeline = json["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 6);
    assert_eq!(
        timeline[4],
        json!({"at_unix_nano": T0 + 50 * MS, "offset_ns": 50 * MS, "event": "acquired",
               "lock": "db", "holder": "13", "trace_id": CONTENTION,
               "span_id": "0000000000000003", "wait_ns": 40 * MS})
    );
}

#[test]
fn all_traces_show_every_lock_and_the_inversion_that_can_deadlock() {
    let dir = imported_store();
    let text = stdout(&devtrace(dir.path(), &["locks"]));
    assert_eq!(
        text,
        "\
6 lock uses of 3 locks by 2 holders in 2 traces

longest waits
LOCK      HOLDER     WAIT     HOLD  TRACE     SPAN
db        13      40.0 ms  20.0 ms  4bf92f35  0000000000000003
db        12         0 ns  40.0 ms  4bf92f35  0000000000000002
accounts  12         0 ns  30.0 ms  a3ce929d  0000000000000012
ledger    12         0 ns  10.0 ms  a3ce929d  0000000000000013
ledger    13         0 ns  30.0 ms  a3ce929d  0000000000000014
accounts  13         0 ns  10.0 ms  a3ce929d  0000000000000015

per lock
LOCK      USES  TOTAL WAIT  MAX WAIT  TOTAL HOLD  MAX HOLD  HOLDERS
db           2     40.0 ms   40.0 ms     60.0 ms   40.0 ms  12, 13
accounts     2        0 ns      0 ns     40.0 ms   30.0 ms  12, 13
ledger       2        0 ns      0 ns     40.0 ms   30.0 ms  12, 13

per holder
HOLDER  USES  TOTAL WAIT  MAX WAIT  TOTAL HOLD  MAX HOLD  LOCKS
13         3     40.0 ms   40.0 ms     60.0 ms   30.0 ms  accounts, db, ledger
12         3        0 ns      0 ns     80.0 ms   40.0 ms  accounts, db, ledger

⚠ lock-order inversion: \"accounts\"→\"ledger\" in holder \"12\", \"ledger\"→\"accounts\" in holder \"13\" — can deadlock
   \"accounts\"→\"ledger\" (1×): trace a3ce929d, span 0000000000000012 then span 0000000000000013
   \"ledger\"→\"accounts\" (1×): trace a3ce929d, span 0000000000000014 then span 0000000000000015
   → take \"accounts\" and \"ledger\" in one order everywhere, or merge them into one lock
"
    );

    let json: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["locks", "--json"]))).unwrap();
    assert_eq!(json["traces"], json!(2));
    assert_eq!(json["uses"].as_array().unwrap().len(), 6);
    assert!(json.get("timeline").is_none());
    assert_eq!(
        json["inversions"],
        json!([{
            "lock_a": "accounts", "lock_b": "ledger",
            "a_then_b": {"outer": "accounts", "inner": "ledger", "holder": "12",
                "trace_id": INVERSION, "outer_span_id": "0000000000000012",
                "inner_span_id": "0000000000000013", "at_unix_nano": T0 + 1_010 * MS},
            "b_then_a": {"outer": "ledger", "inner": "accounts", "holder": "13",
                "trace_id": INVERSION, "outer_span_id": "0000000000000014",
                "inner_span_id": "0000000000000015", "at_unix_nano": T0 + 1_050 * MS},
            "a_then_b_count": 1, "b_then_a_count": 1, "traces": 1}])
    );

    // --last 1 reads only the newest trace: the inversion, no contention.
    let last: Value = serde_json::from_str(&stdout(&devtrace(
        dir.path(),
        &["locks", "--last", "1", "--json"],
    )))
    .unwrap();
    assert_eq!(last["traces"], json!(1));
    assert_eq!(last["per_lock"].as_array().unwrap().len(), 2);
}

/// At 60 columns each table row stays one line: names are cut and the maxima left out, never a
/// row broken onto a second line; the span ids stay whole.
#[test]
fn tables_fit_a_narrow_terminal_column_by_column() {
    let dir = imported_store();
    for args in [&["locks"][..], &["locks", "--trace", "4bf9"]] {
        let text = stdout(&common::devtrace_at_width(dir.path(), 60, args));
        for line in text
            .lines()
            .filter(|l| l.contains("ms") || l.contains(" ns"))
        {
            assert!(
                !line.starts_with(' ') || line.trim_start().starts_with('+'),
                "a row broken onto a continuation line: {line:?}\n{text}"
            );
            assert!(
                unicode_width::UnicodeWidthStr::width(line) <= 60,
                "{line:?}\n{text}"
            );
        }
        assert!(
            !text.contains("MAX HOLD"),
            "the maxima are left out first:\n{text}"
        );
    }
    let text = stdout(&common::devtrace_at_width(
        dir.path(),
        60,
        &["locks", "--trace", "4bf9"],
    ));
    assert!(
        text.contains("0000000000000003"),
        "span ids stay whole:\n{text}"
    );
}

#[test]
fn traces_without_lock_spans_say_how_to_record_them() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.json");
    let spans = vec![span(
        CONTENTION,
        "0000000000000001",
        None,
        "lock screen",
        0,
        10,
    )];
    let traces = json!({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]});
    std::fs::write(&file, traces.to_string()).unwrap();
    stdout(&devtrace(dir.path(), &["import", file.to_str().unwrap()]));
    assert_eq!(
        stdout(&devtrace(dir.path(), &["locks"])),
        "no lock spans or waits in the 1 trace analysed; record locks as docs/conventions.md describes (a span `lock <name>` with devtrace.lock.* attributes and events), or waits as span events (\"Waiting for\n  lock\" … \"Acquired lock\")\n",
        "a sentence wider than the terminal (200 columns) continues on an indented line"
    );
    let json: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["locks", "--json"]))).unwrap();
    assert_eq!(
        json,
        json!({"traces": 1, "uses": [], "per_lock": [], "per_holder": [], "inversions": []})
    );
}
