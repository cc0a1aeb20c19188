//! Test data shared by the budget tests and the tool-latency benchmark: spans, errors, a
//! store of "checkout" runs (an N+1 of 20 queries, two sequential HTTP calls, every 10th run
//! failing in the payment call with a large cart), and Claude Code transcripts imported the way
//! `devtrace import claude-code` imports them (the real sample project among them).

#![allow(dead_code)]

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::claude_code::ClaudeCodeImporter;
use devtrace_ingest::sessions::read_lines;
use devtrace_model::{
    AnyValue, Event, KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, Status,
    StatusCode, TraceId, semconv,
};
use devtrace_store::sqlite::SqliteWriter;
use devtrace_store::{StoreWriter, prepare_session, prepare_spans};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const MS: u64 = 1_000_000;

/// Span ids that look like real (random) ones.
pub fn span_id(n: u64) -> SpanId {
    SpanId(n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes())
}

pub fn span(
    trace: TraceId,
    id: u64,
    parent: Option<u64>,
    name: &str,
    start: u64,
    end: u64,
) -> Span {
    Span::new(trace, span_id(id), parent.map(span_id), name, start, end)
}

pub fn fail(span: &mut Span, message: &str) {
    span.status = Status {
        code: StatusCode::Error,
        message: message.into(),
    };
    span.events.push(Event {
        time_unix_nano: span.end_unix_nano,
        name: semconv::EXCEPTION_EVENT.into(),
        attributes: vec![
            KeyValue::new(semconv::EXCEPTION_TYPE, "ValueError"),
            KeyValue::new(semconv::EXCEPTION_MESSAGE, message),
        ],
        dropped_attributes_count: 0,
    });
}

pub fn batch(spans: Vec<Span>) -> SpanBatch {
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "importer")],
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        spans,
    }
}

/// A store of `traces` × 50 spans: "checkout" runs with an N+1 of 20 queries, two sequential
/// HTTP calls, and every 10th run failing in the payment call.
pub fn fill_store(dir: &std::path::Path, traces: u64) {
    let mut writer = SqliteWriter::open(dir).unwrap();
    let base = 1_700_000_000_000_000_000u64;
    let mut pending = Vec::new();
    for t in 0..traces {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(t + 1).to_be_bytes());
        id[8] = 0xab;
        let trace = TraceId(id);
        let start = base + t * 100 * MS;
        let mut spans = vec![span(trace, 1, None, "checkout", start, start + 60 * MS)];
        spans[0].kind = SpanKind::Server;
        spans[0]
            .attributes
            .push(KeyValue::new("http.route", "/checkout"));
        spans.push(span(trace, 2, Some(1), "auth", start, start + 2 * MS));
        for q in 0..20u64 {
            let s = start + 2 * MS + q * MS;
            let mut query = span(trace, 10 + q, Some(1), "SELECT item", s, s + MS);
            query
                .attributes
                .push(KeyValue::new("db.system.name", "postgresql"));
            query.attributes.push(KeyValue::new(
                "db.query.text",
                format!("SELECT * FROM items WHERE id = {}", q + t),
            ));
            spans.push(query);
        }
        let mut pay = span(
            trace,
            3,
            Some(1),
            "payment.charge",
            start + 22 * MS,
            start + 40 * MS,
        );
        pay.kind = SpanKind::Client;
        pay.attributes
            .push(KeyValue::new("http.request.method", "POST"));
        pay.attributes
            .push(KeyValue::new("url.full", "https://pay.example/charge"));
        pay.attributes.push(KeyValue::new(
            "cart.size",
            AnyValue::Int(if t % 10 == 0 { 90 } else { 3 }),
        ));
        if t % 10 == 0 {
            fail(&mut pay, "payment gateway timeout");
        }
        spans.push(pay);
        let mut ship = span(
            trace,
            4,
            Some(1),
            "shipping.quote",
            start + 40 * MS,
            start + 58 * MS,
        );
        ship.kind = SpanKind::Client;
        ship.attributes
            .push(KeyValue::new("http.request.method", "GET"));
        ship.attributes
            .push(KeyValue::new("url.full", "https://ship.example/quote"));
        spans.push(ship);
        for r in 0..26u64 {
            let s = start + 58 * MS + r * 50_000;
            spans.push(span(
                trace,
                40 + r,
                Some(1),
                "render.fragment",
                s,
                s + 40_000,
            ));
        }
        assert_eq!(spans.len(), 50);
        pending.push(prepare_spans(batch(spans)));
        if pending.len() == 500 {
            writer.write(&pending).unwrap();
            pending.clear();
        }
    }
    writer.write(&pending).unwrap();
}

/// The repository's synthetic Claude Code sample project (tests/fixtures/claude-code, see
/// generate.py there): a `/orchestrator` session (3f2a9b1c) with 2 turns, 2 sub-agents, 17 tool
/// calls and 5 errors, and two smaller sessions, all in `/home/dev/shop`.
pub fn sample_project() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/claude-code/sample-project")
}

/// Imports Claude Code transcripts (`*.jsonl` in `path`, or the one file `path`) into the
/// store in `dir` as `devtrace import claude-code` does: one importer per file, redacted,
/// written merged with the session's facts.
pub fn import_claude_code(dir: &Path, path: &Path) {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
            .collect()
    } else {
        vec![path.to_owned()]
    };
    files.sort();
    assert!(!files.is_empty(), "no transcripts in {}", path.display());
    let redactor = Arc::new(Redactor::builtin());
    let mut writer = SqliteWriter::open(dir).unwrap();
    for file in files {
        let mut importer = ClaudeCodeImporter::new(Arc::clone(&redactor));
        let reader = std::io::BufReader::new(std::fs::File::open(&file).unwrap());
        let read = read_lines(reader, 0, &mut importer, &mut |_| {}).unwrap();
        assert!(
            read.notes.is_empty(),
            "{}: {:?}",
            file.display(),
            read.notes
        );
        let output = importer.drain();
        writer
            .write(&[prepare_session(output.spans, output.blobs)])
            .unwrap();
    }
}

/// One line of a Claude Code transcript, as the agent writes it.
fn line(
    session: &str,
    uuid: &str,
    cwd: &str,
    unix_seconds: u64,
    rest: serde_json::Value,
) -> String {
    let mut line = serde_json::json!({
        "sessionId": session, "uuid": uuid, "isSidechain": false, "cwd": cwd,
        "timestamp": devtrace_model::time::format_rfc3339(unix_seconds * 1_000_000_000),
    });
    for (key, value) in rest.as_object().unwrap() {
        line[key] = value.clone();
    }
    line.to_string() + "\n"
}

/// A Claude Code transcript in `cwd`: the user's `prompt`, then each command run with Bash
/// at one-minute intervals, failing with `error` when it is `Some`.
pub fn transcript(
    session: &str,
    cwd: &str,
    start_unix_seconds: u64,
    prompt: &str,
    commands: &[(&str, Option<&str>)],
) -> String {
    let mut out = line(
        session,
        &format!("{session}-u0"),
        cwd,
        start_unix_seconds,
        serde_json::json!({"type": "user", "parentUuid": null,
            "message": {"role": "user", "content": prompt}}),
    );
    for (i, (command, error)) in commands.iter().enumerate() {
        let at = start_unix_seconds + 60 * (i as u64 + 1);
        let tool = format!("toolu_{}_{i}", &session[..8]);
        out.push_str(&line(
            session,
            &format!("{session}-a{i}"),
            cwd,
            at,
            serde_json::json!({"type": "assistant", "message": {
                "id": format!("msg_{}_{i}", &session[..8]), "role": "assistant", "model": "claude-sonnet-4",
                "usage": {"input_tokens": 100, "output_tokens": 20},
                "content": [{"type": "tool_use", "id": tool, "name": "Bash", "input": {"command": command}}]}}),
        ));
        let mut result = serde_json::json!({"type": "tool_result", "tool_use_id": tool,
            "content": error.unwrap_or("ok")});
        if error.is_some() {
            result["is_error"] = serde_json::json!(true);
        }
        out.push_str(&line(
            session,
            &format!("{session}-r{i}"),
            cwd,
            at + 2,
            serde_json::json!({"type": "user", "message": {"role": "user", "content": [result]}}),
        ));
    }
    out
}

/// The sample project's `/orchestrator` session (3f2a9b1c), as if run again `n` times, a day
/// apart, in the same directory: the same transcript under new session ids (`…0001`, `…0002`,
/// …), its times moved `1..=n` days later. Written as transcripts into `out`.
pub fn orchestrator_reruns(out: &Path, n: u64) {
    const ORIGINAL: &str = "3f2a9b1c-5d7e-4f80-9a1b-2c3d4e5f6a7b";
    let text = std::fs::read_to_string(sample_project().join(format!("{ORIGINAL}.jsonl"))).unwrap();
    for day in 1..=n {
        let session = format!("7e1d2c3b-4a59-4687-9a0b-{day:012}");
        let moved: String = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let mut value: serde_json::Value = serde_json::from_str(l).unwrap();
                shift(&mut value, ORIGINAL, &session, day * 86_400_000_000_000);
                value.to_string() + "\n"
            })
            .collect();
        std::fs::write(out.join(format!("{session}.jsonl")), moved).unwrap();
    }
}

fn shift(value: &mut serde_json::Value, from: &str, to: &str, nanos: u64) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v.as_str()) {
                    ("sessionId", Some(id)) if id == from => *v = to.into(),
                    ("timestamp", Some(t)) => {
                        let at = devtrace_model::time::parse_rfc3339(t).unwrap();
                        *v = devtrace_model::time::format_rfc3339(at + nanos).into();
                    }
                    _ => shift(v, from, to, nanos),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| shift(v, from, to, nanos)),
        _ => {}
    }
}

/// An MCP server over a store in `dir` holding `spans` (one batch, written and committed).
pub fn server_over(
    dir: tempfile::TempDir,
    spans: Vec<Span>,
) -> (tempfile::TempDir, devtrace_mcp::DevtraceMcp) {
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    writer.write(&[prepare_spans(batch(spans))]).unwrap();
    drop(writer);
    let store = Arc::new(devtrace_store::sqlite::SqliteStore::open(dir.path()).unwrap());
    (
        dir,
        devtrace_mcp::DevtraceMcp::new(store, devtrace_mcp::selftrace::Transport::Stdio),
    )
}
