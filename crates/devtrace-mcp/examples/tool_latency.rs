//! Latency of every MCP tool on a store of one million spans (20,000 traces of 50 spans).
//!
//!     cargo run --release -p devtrace-mcp --example tool_latency [-- DATA_DIR]
//!
//! Builds the store in DATA_DIR (a temporary directory by default; an existing store there is
//! reused), then calls each tool 5 times through the same path an MCP request takes (arguments
//! decoded, store read, analysis, rendering, token counting) and prints the median and the
//! slowest time, and the tokens of the result. Figures are recorded in docs/PERFORMANCE.md.

#[path = "../tests/common/mod.rs"]
mod common;

use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::Transport;
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const TRACES: u64 = 20_000;

fn main() {
    let temp;
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir().expect("a temporary directory");
            temp.path().to_path_buf()
        }
    };
    let filled = SqliteStore::open(&dir)
        .ok()
        .and_then(|s| s.stats().ok())
        .is_some_and(|s| s.spans == TRACES * 50);
    if !filled {
        let started = Instant::now();
        common::fill_store(&dir, TRACES);
        eprintln!(
            "built a store of {} spans in {:.1?}",
            TRACES * 50,
            started.elapsed()
        );
    }
    let store = Arc::new(SqliteStore::open(&dir).expect("the store"));
    let server = DevtraceMcp::new(store, Transport::Stdio);
    devtrace_mcp::budget::warm_up();
    let last = format!("{TRACES:016x}ab00000000000000");
    let calls = [
        ("overview", json!({})),
        (
            "search_traces",
            json!({"operation": "payment.charge", "status": "error"}),
        ),
        (
            "search_traces attr",
            json!({"attributes": ["cart.size=90"]}),
        ),
        ("get_trace", json!({"trace_id": last})),
        (
            "get_spans",
            json!({"trace_id": last, "span_ids": [common::span_id(3).to_hex()]}),
        ),
        ("analyze_operation", json!({"operation": "checkout"})),
        ("find_issues", json!({})),
        ("compare", json!({"operation": "checkout", "last": 40})),
        ("errors", json!({})),
        (
            "query_sql",
            json!({"sql": format!("SELECT name, count(*) FROM spans WHERE trace_id = '{last}' GROUP BY name")}),
        ),
        (
            "query_sql by name",
            json!({"sql": "SELECT count(*) FROM spans WHERE name = 'payment.charge' AND status = 'error'"}),
        ),
    ];
    println!(
        "{:<20} {:>10} {:>10} {:>7}",
        "tool", "median", "max", "tokens"
    );
    for (label, arguments) in calls {
        let tool = label.split(' ').next().unwrap();
        let mut times = Vec::new();
        let mut tokens = 0;
        for _ in 0..5 {
            let started = Instant::now();
            let (text, is_error) = server.call(tool, arguments.clone());
            times.push(started.elapsed());
            assert!(!is_error, "{label}: {text}");
            tokens = devtrace_mcp::budget::count(&text);
        }
        times.sort();
        println!(
            "{label:<20} {:>10.1?} {:>10.1?} {tokens:>7}",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
