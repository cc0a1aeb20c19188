//! The MCP face of the default window and of 64-bit ids: on a store whose only trace is old,
//! `find_issues`, `errors` and `overview` read the hour before the newest trace and say so (as
//! the CLI does), and `get_trace` finds a trace by its 64-bit id (16 hex digits).

mod common;

use devtrace_mcp::DevtraceMcp;
use devtrace_model::{KeyValue, SpanKind, TraceId};
use serde_json::json;

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const NOTE: &str = "note: no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:00:00 UTC\n";

fn server() -> (tempfile::TempDir, DevtraceMcp) {
    let dir = tempfile::tempdir().unwrap();
    let trace: TraceId = "00000000000000004bf92f3577b34da6".parse().unwrap();
    let ms = |m: u64| T0 + m * common::MS;
    let mut spans = vec![common::span(trace, 1, None, "GET /report", ms(0), ms(100))];
    for q in 0..8u64 {
        let mut query = common::span(
            trace,
            10 + q,
            Some(1),
            "SELECT row",
            ms(10 + q * 10),
            ms(19 + q * 10),
        );
        query.kind = SpanKind::Client;
        query.attributes = vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new(
                "db.query.text",
                format!("SELECT * FROM rows WHERE id = {q}"),
            ),
        ];
        spans.push(query);
    }
    spans[2].status.code = devtrace_model::StatusCode::Error;
    common::server_over(dir, spans)
}

#[test]
fn an_old_store_is_read_in_the_hour_before_its_newest_trace_and_the_answer_says_so() {
    let (_dir, server) = server();
    let (issues, is_error) = server.call("find_issues", json!({}));
    assert!(!is_error, "{issues}");
    assert!(issues.contains(NOTE), "{issues}");
    assert!(
        issues.contains("across 1 trace(s) (the hour before the newest trace), ranked by impact"),
        "{issues}"
    );
    assert!(!issues.contains("nothing to report"), "{issues}");
    let (recent, _) = server.call("find_issues", json!({"since": "1h"}));
    assert!(recent.contains("across 0 trace(s) (since 1h)"), "{recent}");

    let (errors, is_error) = server.call("errors", json!({}));
    assert!(!is_error, "{errors}");
    assert!(errors.contains(NOTE), "{errors}");
    assert!(errors.contains("1 error fingerprint"), "{errors}");

    let (overview, _) = server.call("overview", json!({}));
    assert!(overview.contains(NOTE), "{overview}");
    assert!(
        overview.contains(
            "store: 1 traces, 9 spans, 0 logs in all; below, the hour before the newest trace"
        ),
        "{overview}"
    );
    assert!(
        overview.contains("\"importer\": 1 traces, 1 as root, 1 failing"),
        "{overview}"
    );
}

#[test]
fn get_trace_takes_a_64_bit_id() {
    let (_dir, server) = server();
    for id in ["4bf92f3577b34da6", "00000000000000004bf92f3577b34da6"] {
        let (text, is_error) = server.call("get_trace", json!({"trace_id": id}));
        assert!(!is_error, "{id}: {text}");
        assert!(text.contains("00000000000000004bf92f3577b34da6"), "{text}");
    }
    let (text, is_error) = server.call("get_trace", json!({"trace_id": "4bf92f3577b34da7"}));
    assert!(is_error, "{text}");
}
