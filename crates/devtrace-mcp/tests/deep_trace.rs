//! A trace whose calls nest 100,000 deep (a recursion recorded call by call, or a hostile
//! sender): `analyze_operation` profiles its recursive operation — every nested run — and
//! `get_trace` draws it, in linear time (a quadratic tool would take 10^10 steps and not
//! finish here).

mod common;

use devtrace_mcp::DevtraceMcp;
use devtrace_model::TraceId;
use serde_json::json;

const DEPTH: u64 = 100_000;

/// Call k (1-based, named `f{k mod 7}`) calls call k + 1, with 1 µs of its own on each side.
fn server() -> (tempfile::TempDir, DevtraceMcp) {
    let dir = tempfile::tempdir().unwrap();
    let trace = TraceId([9; 16]);
    let t0 = 1_767_000_000_000_000_000u64;
    let spans = (1..=DEPTH)
        .map(|k| {
            let name = format!("f{}", k % 7);
            let parent = (k > 1).then(|| k - 1);
            common::span(
                trace,
                k,
                parent,
                &name,
                t0 + k * 1_000,
                t0 + (2 * DEPTH + 1 - k) * 1_000,
            )
        })
        .collect();
    common::server_over(dir, spans)
}

#[test]
fn a_recursive_operation_100000_deep_is_analysed_and_drawn() {
    let (_dir, server) = server();
    let (text, is_error) = server.call("analyze_operation", json!({"operation": "f1"}));
    assert!(!is_error, "{text}");
    // f1 is calls 1, 8, 15, … (14,286 runs, nested), each 199,999 − 14·j µs long: 100.004 ms
    // on average; each is all f2 but its own 2 µs, and all on its critical path.
    for line in [
        "\"f1\" (internal span of \"importer\"): 100.0 ms mean over 14286 runs (p50 100.0 ms, p95 190.0 ms, max 200.0 ms)\n",
        "  \"f2\"   other  100.0 ms  100.0 ms  190.0 ms  100 %    1.0     100 %\n",
        "time by kind of work: other 100 % (100.0 ms)\n",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    let (drawn, is_error) = server.call("get_trace", json!({"trace_id": "09".repeat(16)}));
    assert!(!is_error, "{drawn}");
    assert!(drawn.contains("100000 spans, 0 error span(s)"), "{drawn}");
    assert!(drawn.contains("* critical path (100000 spans)"), "{drawn}");
    assert!(drawn.contains("↳36 * \"f2\" 199.9 ms @+36 µs"), "{drawn}");
}
