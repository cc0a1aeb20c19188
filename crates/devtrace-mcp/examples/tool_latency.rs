//! Latency of every MCP tool on a store of one million spans (20,000 traces of 50 spans) and 22
//! coding-agent sessions.
//!
//!     cargo run --release -p devtrace-mcp --example tool_latency [-- DATA_DIR]
//!
//! Builds the store in DATA_DIR (a temporary directory by default; an existing store there is
//! reused): the spans, then the real Claude Code sample project (3 sessions in `/path/to/Demo`)
//! and 19 reruns of its 345-span orchestrator session in the same directory, so that
//! `check_insights` reads the repository's last 20 sessions. Then it calls each tool 5 times
//! through the same path an MCP request takes (arguments decoded, store read, analysis,
//! rendering, token counting) and prints the median and the slowest time, and the tokens of the
//! result. Figures are recorded in docs/PERFORMANCE.md.

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
/// The sample project's 3 sessions and 19 reruns of its orchestrator session.
const SESSIONS: u64 = 22;

fn main() {
    let temp;
    let dir = match std::env::args().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir().expect("a temporary directory");
            temp.path().to_path_buf()
        }
    };
    let traces = SqliteStore::open(&dir)
        .ok()
        .and_then(|s| s.stats().ok())
        .map_or(0, |s| s.traces);
    if traces < TRACES {
        let started = Instant::now();
        common::fill_store(&dir, TRACES);
        eprintln!(
            "built a store of {} spans in {:.1?}",
            TRACES * 50,
            started.elapsed()
        );
    }
    if traces < TRACES + SESSIONS {
        let reruns = tempfile::tempdir().expect("a temporary directory");
        common::orchestrator_reruns(reruns.path(), SESSIONS - 3);
        common::import_claude_code(&dir, &common::sample_project());
        common::import_claude_code(&dir, reruns.path());
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
        ("list_sessions", json!({})),
        ("session_overview", json!({"session_id": "fe5e1c67"})),
        (
            "session_overview page",
            json!({"session_id": "fe5e1c67", "offset": 88}),
        ),
        (
            "check_insights",
            json!({"repo": "/path/to/Demo", "task": "fix the npm build"}),
        ),
    ];
    println!(
        "{:<22} {:>10} {:>10} {:>7}",
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
            "{label:<22} {:>10.1?} {:>10.1?} {tokens:>7}",
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}
