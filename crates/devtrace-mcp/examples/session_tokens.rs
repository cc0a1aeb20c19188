//! Token accounting and the session detectors over 1,000 sessions of 500 model requests each,
//! and `session compare` on two of them (issue 25's performance targets: < 2 s and < 100 ms).
//!
//!     cargo run --release -p devtrace-mcp --example session_tokens [-- SESSIONS REQUESTS]
//!
//! Generates Claude Code transcripts in the real format (each response split over two lines
//! that repeat its usage; cache writes and reads; an idle gap past the cache lifetime every
//! 97 requests and a model switch every 211, so there are breaks to find; runs of independent
//! reads, edits, shell commands), imports them with the real importer (not timed), then times:
//! the session views, accounting + cache breaks + batchable runs (`token_analysis`), and every
//! session detector (`run_all_analysed`), over all sessions. Then writes two sessions to a
//! SQLite store and times `compare_sessions` (store read, analysis of both, the comparison) 9
//! times. Figures are recorded in docs/PERFORMANCE.md.

use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::detectors::session::{run_all_analysed, token_analysis};
use devtrace_analyze::session::SessionView;
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::claude_code::ClaudeCodeImporter;
use devtrace_ingest::sessions::{derive_trace_id, read_lines};
use devtrace_query::sessions::compare::compare_sessions;
use devtrace_query::sessions::tokens::settings;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{StoreWriter, prepare_session};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn line(session: &str, uuid: &str, at: u64, rest: serde_json::Value) -> String {
    let mut line = json!({
        "sessionId": session, "uuid": uuid, "isSidechain": false, "cwd": "/work/shop",
        "timestamp": devtrace_model::time::format_rfc3339(at * 1_000_000_000),
    });
    for (key, value) in rest.as_object().unwrap() {
        line[key] = value.clone();
    }
    line.to_string() + "\n"
}

/// One session of `requests` model requests, each making one tool call.
fn transcript(session: &str, requests: usize) -> String {
    let mut at = 1_763_600_000u64;
    let mut out = line(
        session,
        &format!("{session}-u"),
        at,
        json!({"type": "user", "parentUuid": null,
               "message": {"role": "user", "content": "make the cart total right for empty carts"}}),
    );
    let mut context = 12_000u64;
    for i in 0..requests {
        at += if i % 97 == 96 { 900 } else { 20 };
        let model = if (i / 211) % 2 == 0 {
            "claude-sonnet-4-5-20250929"
        } else {
            "claude-opus-4-1-20250805"
        };
        let (name, input) = match i % 5 {
            0 | 1 => (
                "Read",
                json!({"file_path": format!("/work/shop/src/m{}.rs", i % 37)}),
            ),
            2 => ("Grep", json!({"pattern": format!("fn total_{i}")})),
            3 => (
                "Edit",
                json!({"file_path": format!("/work/shop/src/m{}.rs", i % 37),
                                 "old_string": "return 0", "new_string": "return sum"}),
            ),
            _ => ("Bash", json!({"command": "cargo test -q"})),
        };
        let fresh = 400 + (i as u64 % 7) * 50;
        // After the idle gap and at the model switch the cache is gone: all of it re-written.
        let broken = i % 97 == 96 || (i > 0 && i % 211 == 0);
        let (write, read) = if broken {
            (context + fresh, 0)
        } else {
            (fresh, context)
        };
        let usage = json!({"input_tokens": 3, "cache_creation_input_tokens": write,
                           "cache_read_input_tokens": read, "output_tokens": 120});
        let (message, request, tool) = (
            format!("msg_{session}_{i}"),
            format!("req_{session}_{i}"),
            format!("toolu_{session}_{i}"),
        );
        for (part, content) in [
            json!({"type": "text", "text": format!("step {i}")}),
            json!({"type": "tool_use", "id": tool, "name": name, "input": input}),
        ]
        .into_iter()
        .enumerate()
        {
            out.push_str(&line(
                session,
                &format!("{session}-a{i}-{part}"),
                at,
                json!({"type": "assistant", "requestId": request, "message": {
                    "id": message, "role": "assistant", "model": model,
                    "usage": usage, "content": [content]}}),
            ));
        }
        out.push_str(&line(
            session,
            &format!("{session}-r{i}"),
            at + 1,
            json!({"type": "user", "message": {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": tool, "content": format!("result {i}")}]}}),
        ));
        context += fresh;
    }
    out
}

fn session_id(n: usize) -> String {
    format!("{n:08x}-5b3f-4c8a-9d6e-1f2a3b4c5d6e")
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let sessions: usize = args.next().map_or(1_000, |a| a.parse().unwrap());
    let requests: usize = args.next().map_or(500, |a| a.parse().unwrap());
    let redactor = Arc::new(Redactor::builtin());
    let settings = settings().unwrap();

    let started = Instant::now();
    let mut traces = Vec::with_capacity(sessions);
    let mut outputs = Vec::new();
    for n in 0..sessions {
        let id = session_id(n);
        let text = transcript(&id, requests);
        let mut importer = ClaudeCodeImporter::new(Arc::clone(&redactor));
        let read = read_lines(text.as_bytes(), 0, &mut importer, &mut |_| {}).unwrap();
        assert!(read.notes.is_empty(), "{:?}", read.notes);
        let output = importer.drain();
        if n < 2 {
            outputs.push(importer_copy(&output));
        }
        traces.push(AnalyzedTrace::new(
            derive_trace_id("claude-code", &id),
            output.spans,
        ));
    }
    let spans: usize = traces.iter().map(|t| t.spans.spans.len()).sum();
    eprintln!(
        "generated and imported {sessions} sessions x {requests} requests ({spans} spans) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut runs = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let views: Vec<SessionView> = traces.iter().map(SessionView::new).collect();
        let t1 = Instant::now();
        let analyses: Vec<_> = views.iter().map(|v| token_analysis(v, &settings)).collect();
        let t2 = Instant::now();
        let mut findings = 0;
        for (view, analysis) in views.iter().zip(&analyses) {
            findings += run_all_analysed(
                std::slice::from_ref(view),
                std::slice::from_ref(analysis),
                &settings,
            )
            .len();
        }
        let t3 = Instant::now();
        let counted: usize = analyses.iter().map(|a| a.accounting.requests.len()).sum();
        let breaks: usize = analyses.iter().map(|a| a.cache.breaks.len()).sum();
        assert_eq!(counted, sessions * requests, "every request counted once");
        runs.push((t1 - t0, t2 - t1, t3 - t2, t3 - t1, findings, breaks));
    }
    runs.sort_by_key(|r| r.3);
    let (view, accounting, detectors, total, findings, breaks) = runs[1];
    println!(
        "accounting + detectors, {sessions} sessions x {requests} requests (median of 3): \
         {:.0} ms (accounting, cache breaks, batchable runs {:.0} ms; detectors {:.0} ms); \
         session views {:.0} ms besides; {breaks} cache breaks, {findings} findings",
        total.as_secs_f64() * 1e3,
        accounting.as_secs_f64() * 1e3,
        detectors.as_secs_f64() * 1e3,
        view.as_secs_f64() * 1e3,
    );
    drop(traces);

    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    for output in outputs {
        writer
            .write(&[prepare_session(output.spans, output.blobs)])
            .unwrap();
    }
    drop(writer);
    let store = SqliteStore::open(dir.path()).unwrap();
    let (a, b) = (session_id(0), session_id(1));
    let mut times = Vec::new();
    for _ in 0..9 {
        let t = Instant::now();
        let comparison = compare_sessions(&store, &a[..8], &b[..8]).unwrap();
        times.push(t.elapsed());
        assert_eq!(comparison.a.requests, requests as u64);
    }
    println!(
        "session compare, two sessions of {requests} requests (store read included): median {:.1} ms, max {:.1} ms",
        median(times.clone()).as_secs_f64() * 1e3,
        times.iter().max().unwrap().as_secs_f64() * 1e3,
    );
}

fn importer_copy(
    output: &devtrace_ingest::sessions::SessionOutput,
) -> devtrace_ingest::sessions::SessionOutput {
    devtrace_ingest::sessions::SessionOutput {
        spans: output.spans.clone(),
        blobs: output.blobs.clone(),
    }
}
