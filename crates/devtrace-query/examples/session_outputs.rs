//! What reading long tool outputs whole costs the session analysis: every session of a store
//! analysed (accounting, cache breaks, batchable runs) once with only what the spans keep
//! inline and once reading long outputs from their blobs (the default budget), timed apart.
//!
//!     cargo run --release -p devtrace-query --example session_outputs -- DATA_DIR [PASSES]
//!
//! DATA_DIR is a store sessions were imported into (bench/run-session-outputs.sh makes one from
//! bench/gen-transcripts.py). Loading the traces and building the views is not timed. Prints
//! the median of PASSES (3) for each way, the blob bytes and blobs read, and the batchable runs
//! each way found. Figures are recorded in docs/PERFORMANCE.md.

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::detectors::session::outputs::WholeOutputs;
use devtrace_analyze::detectors::session::{Settings, token_analysis_with};
use devtrace_analyze::session::SessionView;
use devtrace_query::blobs::whole_outputs;
use devtrace_store::sqlite::SqliteStore;
use devtrace_store::{SessionQuery, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Pass {
    elapsed: Duration,
    runs: usize,
    bytes: u64,
}

fn pass(store: &dyn Store, traces: &[AnalyzedTrace], settings: &Settings, blobs: bool) -> Pass {
    let views: Vec<SessionView> = traces.iter().map(SessionView::new).collect();
    let budget = settings.batchable.output_budget_bytes;
    let start = Instant::now();
    let (mut runs, mut bytes) = (0, 0);
    for view in &views {
        let mut outputs = if blobs {
            whole_outputs(store, budget)
        } else {
            WholeOutputs::inline_only()
        };
        runs += token_analysis_with(view, settings, &mut outputs).runs.len();
        bytes += outputs.bytes_read();
    }
    Pass {
        elapsed: start.elapsed(),
        runs,
        bytes,
    }
}

fn median(mut passes: Vec<Pass>) -> Pass {
    passes.sort_by_key(|p| p.elapsed);
    passes.swap_remove(passes.len() / 2)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(
        args.next()
            .expect("usage: session_outputs DATA_DIR [PASSES]"),
    );
    let passes: usize = args
        .next()
        .map_or(3, |p| p.parse().expect("PASSES: a number"));
    let store = SqliteStore::open(&data).expect("opening the store");
    let summaries = store
        .list_sessions(&SessionQuery {
            limit: 1_000_000,
            ..Default::default()
        })
        .expect("listing sessions");
    let load = Instant::now();
    let traces: Vec<AnalyzedTrace> = summaries
        .iter()
        .filter_map(|s| {
            let stored = store.get_trace(s.trace_id).expect("reading a session")?;
            Some(AnalyzedTrace::new(s.trace_id, stored.spans))
        })
        .collect();
    let spans: usize = traces.iter().map(|t| t.spans.spans.len()).sum();
    println!(
        "{} sessions, {spans} spans, loaded in {:.2} s (not timed below)",
        traces.len(),
        load.elapsed().as_secs_f64()
    );
    let settings = Settings::default();
    for (label, blobs) in [("inline only", false), ("whole outputs", true)] {
        let best = median(
            (0..passes.max(1))
                .map(|_| pass(&store, &traces, &settings, blobs))
                .collect(),
        );
        println!(
            "{label:>14}: {:8.1} ms (median of {passes}), {} batchable runs, {:.1} MB of blobs read",
            best.elapsed.as_secs_f64() * 1e3,
            best.runs,
            best.bytes as f64 / 1e6,
        );
    }
}
