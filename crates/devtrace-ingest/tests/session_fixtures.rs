//! The session importers against transcripts of our own, in the real formats: the synthetic
//! Claude Code sample project of the repository's tests/fixtures/claude-code (written, and its
//! numbers counted, by generate.py there) and tests/fixtures/sessions here; and, as the extra
//! conformance set, against the real third-party transcripts (Claude Code 1.0.98 and 1.0.108, a
//! Codex 0.77 rollout) in the directory `DEVTRACE_EXTERNAL_FIXTURES` names — those tests are
//! ignored unless asked for (`cargo test -p devtrace-ingest --test session_fixtures --
//! --ignored`; scripts/test does that when the variable is set).
//!
//! Expected numbers were counted independently from the files (message ids, tool_use blocks,
//! is_error results), not taken from the importer's output.

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::claude_code::{ClaudeCodeImporter, ClaudeCodeState, hook_event};
use devtrace_ingest::sessions::codex::CodexImporter;
use devtrace_ingest::sessions::{
    ImportCursorState, Importer, ReadSummary, SessionOutput, read_lines,
};
use devtrace_model::session::{SessionFacts, merge_batches, session_span_id};
use devtrace_model::{AnyValue, Span, SpanBatch, SpanId, StatusCode, TraceId, semconv};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FE5E: &str = "fe5e1c6753e7486281aed0e013e3270b";
const C5C0: &str = "5c0375b457a54f26b12dd022ee4e51b7";
const A1AF: &str = "1af7fc5e845544149ccd011d40f70b2a";

/// The synthetic sample project's sessions (tests/fixtures/claude-code/generate.py).
const ORCH: &str = "3f2a9b1c5d7e4f809a1b2c3d4e5f6a7b";
const UPDATE: &str = "7c4d1e2f3a5b4c6d8e7f0a1b2c3d4e5f";
const INIT: &str = "9e8f7a6b5c4d4e3f9a2b1c0d9e8f7a6b";
const ORCH_FILE: &str = "3f2a9b1c-5d7e-4f80-9a1b-2c3d4e5f6a7b.jsonl";

/// The third-party fixtures (with their licences), outside the repository.
fn fixtures() -> PathBuf {
    let dir = std::env::var_os("DEVTRACE_EXTERNAL_FIXTURES").unwrap_or_else(|| {
        panic!("set DEVTRACE_EXTERNAL_FIXTURES to the third-party fixtures directory")
    });
    PathBuf::from(dir)
}

/// The synthetic Claude Code sample project of the repository.
fn own_sample_project_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/claude-code/sample-project")
}

fn own_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sessions")
        .join(name)
}

fn redactor() -> Arc<Redactor> {
    Arc::new(Redactor::builtin())
}

/// What the store would hold: every output merged per trace, as the store merges.
#[derive(Default)]
struct Stored(BTreeMap<TraceId, SpanBatch>);

impl Stored {
    fn add(&mut self, output: SessionOutput) {
        let mut by_trace: BTreeMap<TraceId, SpanBatch> = BTreeMap::new();
        for span in &output.spans.spans {
            by_trace
                .entry(span.trace_id)
                .or_insert_with(|| SpanBatch {
                    resources: output.spans.resources.clone(),
                    scopes: output.spans.scopes.clone(),
                    spans: Vec::new(),
                })
                .spans
                .push(span.clone());
        }
        for (trace, batch) in by_trace {
            merge_batches(self.0.entry(trace).or_default(), batch);
        }
    }

    fn trace(&self, trace: &str) -> &SpanBatch {
        &self.0[&trace.parse::<TraceId>().unwrap()]
    }

    fn facts(&self, trace: &str) -> SessionFacts {
        SessionFacts::from_spans(self.trace(trace)).unwrap()
    }
}

fn role(span: &Span) -> Option<&str> {
    span.attr(semconv::SESSION_SPAN).and_then(AnyValue::as_str)
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(AnyValue::as_str)
}

fn import_claude(stored: &mut Stored, file: &Path) -> ReadSummary {
    let mut importer = ClaudeCodeImporter::new(redactor());
    let reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    let summary = read_lines(reader, 0, &mut importer, &mut |_| {}).unwrap();
    stored.add(importer.drain());
    summary
}

fn sample_project() -> Stored {
    import_project(&fixtures().join("claude-code/sample-project"))
}

fn own_sample_project() -> Stored {
    import_project(&own_sample_project_dir())
}

fn import_project(dir: &Path) -> Stored {
    let mut stored = Stored::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for file in &files {
        let summary = import_claude(&mut stored, file);
        assert!(
            summary.notes.is_empty(),
            "{}: {:?}",
            file.display(),
            summary.notes
        );
        assert!(!summary.incomplete_tail);
    }
    stored
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_claude_code_sample_project_imports_with_its_real_numbers() {
    let stored = sample_project();
    assert_eq!(
        stored.0.len(),
        3,
        "three sessions (the agent-* files belong to 5c0375b4)"
    );

    let orchestrator = stored.facts(FE5E);
    assert_eq!(orchestrator.agent, "claude-code");
    assert_eq!(orchestrator.project, "/path/to/Demo");
    assert_eq!(
        orchestrator.title,
        "/orchestrator create TODO app by Next.js"
    );
    assert_eq!(orchestrator.turns, 2);
    assert_eq!(orchestrator.tool_calls, 167);
    assert_eq!(orchestrator.subagents, 5);
    assert_eq!(orchestrator.errors, 23);
    // Deduplicated by message id (the largest usage of each of the 170 responses):
    // input 818 + cache creation 137,976 + cache read 3,647,854; output 51,933.
    assert_eq!(orchestrator.input_tokens, 3_786_648);
    assert_eq!(orchestrator.cache_read_tokens, 3_647_854);
    assert_eq!(orchestrator.output_tokens, 51_933);
    let chats = stored
        .trace(FE5E)
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_CHAT))
        .count();
    assert_eq!(chats, 170);

    let update = stored.facts(C5C0);
    assert_eq!((update.turns, update.tool_calls, update.errors), (1, 21, 3));
    // Two Task calls with a prompt (one more failed without one), and two sub-agent files
    // whose prompts match no Task call.
    assert_eq!(update.subagents, 4);
    assert_eq!(update.input_tokens, 329 + 47_747 + 324_259);
    assert_eq!(update.output_tokens, 3_649);

    let init = stored.facts(A1AF);
    assert_eq!(
        (init.turns, init.tool_calls, init.errors, init.subagents),
        (1, 12, 1, 0)
    );
    assert_eq!(
        (init.input_tokens, init.output_tokens),
        (93 + 12_698 + 103_219, 953)
    );
    assert_eq!(init.title, "/init");
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn sub_agents_hang_under_the_task_call_that_started_them() {
    let stored = sample_project();
    let trace = stored.trace(FE5E);
    let by_id: HashMap<SpanId, &Span> = trace.spans.iter().map(|s| (s.span_id, s)).collect();
    let agents: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_AGENT))
        .collect();
    assert_eq!(agents.len(), 5);
    for agent in &agents {
        let parent = by_id[&agent.parent_span_id.unwrap()];
        assert_eq!(parent.name, "execute_tool Task");
        assert_eq!(agent.name, "invoke_agent general-purpose");
        // The sub-agent's span covers its own lines, which run after the Task call starts.
        assert!(agent.end_unix_nano > agent.start_unix_nano);
    }
    // The first of the four failing `npm run build`s of the types sub-agent: tool → sub-agent → Task → turn → session.
    let build = trace
        .spans
        .iter()
        .find(|s| text(s, semconv::GEN_AI_TOOL_CALL_ID) == Some("toolu_01CSi16ZXnnQne2EuM8ZxNB4"))
        .unwrap();
    let mut chain = Vec::new();
    let mut cursor = build;
    while let Some(parent) = cursor.parent_span_id {
        cursor = by_id[&parent];
        chain.push(role(cursor).unwrap());
    }
    assert_eq!(chain, ["agent", "tool", "turn", "session"]);
    assert_eq!(text(build, semconv::SESSION_COMMAND), Some("npm run build"));
    assert_eq!(
        text(build, semconv::SESSION_CWD),
        Some("/path/to/Demo/todo-app")
    );
    assert_eq!(build.status.code, StatusCode::Error);
    assert_eq!(
        build.status.message,
        "[TypeError: generate is not a function]"
    );

    // Sub-agents known only from their own files hang under the session.
    let update = stored.trace(C5C0);
    let root = session_span_id(C5C0.parse().unwrap());
    let orphans = update
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_AGENT) && s.parent_span_id == Some(root))
        .count();
    assert_eq!(orphans, 2);
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn edits_reads_and_commands_carry_what_the_detectors_need() {
    let stored = sample_project();
    let trace = stored.trace(FE5E);
    let rejected = trace
        .spans
        .iter()
        .filter(|s| s.status.message.starts_with("File has not been read yet"))
        .count();
    assert_eq!(rejected, 13, "the tool rejected 13 blind edits");
    // A successful Edit knows the file's content hash before and after.
    let edit = trace
        .spans
        .iter()
        .find(|s| {
            text(s, semconv::GEN_AI_TOOL_NAME) == Some("Edit") && s.status.code != StatusCode::Error
        })
        .unwrap();
    let before = text(edit, semconv::SESSION_FILE_HASH_BEFORE).unwrap();
    let after = text(edit, semconv::SESSION_FILE_HASH_AFTER).unwrap();
    assert_ne!(before, after);
    assert_eq!(text(edit, semconv::SESSION_ACTION), Some("edit"));
    // The Read just before it saw the same content the edit started from.
    let read = trace
        .spans
        .iter()
        .filter(|s| {
            text(s, semconv::GEN_AI_TOOL_NAME) == Some("Read")
                && s.end_unix_nano <= edit.start_unix_nano
                && text(s, semconv::SESSION_FILE_PATH) == text(edit, semconv::SESSION_FILE_PATH)
        })
        .max_by_key(|s| s.end_unix_nano)
        .unwrap();
    assert_eq!(text(read, semconv::SESSION_FILE_HASH), Some(before));
    // Outputs: their size, the head inline, all of it in a blob when long.
    let long = trace
        .spans
        .iter()
        .filter_map(|s| {
            s.attr(semconv::SESSION_OUTPUT_BYTES)
                .and_then(AnyValue::as_i64)
        })
        .max()
        .unwrap();
    assert!(
        long > 4096,
        "some output is longer than what is kept inline ({long})"
    );
    let with_blob = trace
        .spans
        .iter()
        .filter(|s| s.attr(semconv::SESSION_OUTPUT_REF).is_some())
        .count();
    assert!(with_blob > 0);
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_edge_cases_import_without_error_and_report_the_broken_lines() {
    let mut stored = Stored::default();
    let dir = fixtures().join("claude-code/edge-cases");
    let mut notes = BTreeMap::new();
    for name in [
        "edge_cases.jsonl",
        "representative_messages.jsonl",
        "session_b.jsonl",
        "todowrite_examples.jsonl",
    ] {
        let summary = import_claude(&mut stored, &dir.join(name));
        notes.insert(
            name,
            summary.notes.iter().map(|n| n.line).collect::<Vec<_>>(),
        );
    }
    // edge_cases.jsonl: a line with "timesstamp" (and a message that is a string), and four
    // lines that are not transcript objects ("massive error", {"silly": "this"}, 42, [1]).
    assert_eq!(notes["edge_cases.jsonl"], [11, 13, 14, 15, 16]);
    assert!(notes["representative_messages.jsonl"].is_empty());
    assert!(notes["session_b.jsonl"].is_empty());
    assert!(notes["todowrite_examples.jsonl"].is_empty());
    let turns: BTreeMap<String, u64> = stored
        .0
        .values()
        .map(|batch| {
            let facts = SessionFacts::from_spans(batch).unwrap();
            (facts.session_id, facts.turns)
        })
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("edge_cases", 4),
        ("test_session", 4),
        ("session_b", 2),
        ("todowrite_session", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(turns, expected);
}

fn import_codex(stored: &mut Stored, file: &Path) -> ReadSummary {
    let mut importer = CodexImporter::new(redactor());
    let reader = std::io::BufReader::new(std::fs::File::open(file).unwrap());
    let summary = read_lines(reader, 0, &mut importer, &mut |_| {}).unwrap();
    stored.add(importer.drain());
    summary
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_codex_sample_imports() {
    let mut stored = Stored::default();
    let summary = import_codex(
        &mut stored,
        &fixtures().join("codex/sample_codex_session.jsonl"),
    );
    assert!(summary.notes.is_empty(), "{:?}", summary.notes);
    let facts = stored.facts("019b64e557fa7463b644fba7e456f905");
    assert_eq!(facts.agent, "codex");
    assert_eq!(facts.project, "/Users/macmini/Code/homelab-migration");
    assert_eq!(
        facts.turns, 1,
        "the prompt is both a message item and an event: one turn"
    );
    assert!(facts.title.starts_with("can you analyse the MD files"));
    assert_eq!(facts.tool_calls, 0);
}

#[test]
fn a_codex_rollout_with_tool_calls_maps_commands_patches_and_tokens() {
    let mut stored = Stored::default();
    let summary = import_codex(&mut stored, &own_fixture("codex_tools.jsonl"));
    assert!(summary.notes.is_empty(), "{:?}", summary.notes);
    let trace_id = "0199a1b2c3d47e5f8a9b0c1d2e3f4a5b";
    let facts = stored.facts(trace_id);
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 3, 1));
    // Three model calls (one token_count was repeated): 9,000 + 10,500 + 11,000 in.
    assert_eq!(facts.input_tokens, 30_500);
    assert_eq!(facts.output_tokens, 340);
    assert_eq!(facts.cache_read_tokens, 25_000);
    let trace = stored.trace(trace_id);
    let tools: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_TOOL))
        .collect();
    let summary: Vec<(&str, Option<&str>, Option<i64>)> = tools
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                text(s, semconv::SESSION_COMMAND),
                s.attr(semconv::SESSION_EXIT_CODE)
                    .and_then(AnyValue::as_i64),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("execute_tool shell_command", Some("npm test"), Some(1)),
            ("execute_tool apply_patch", None, Some(0)),
            ("execute_tool shell", Some("npm test"), Some(0)),
        ]
    );
    assert_eq!(tools[0].status.message, "error: 'expected 30, got 0'");
    assert_eq!(tools[0].duration_nanos(), 3_400_000_000);
    let edit = trace
        .spans
        .iter()
        .find(|s| text(s, semconv::SESSION_ACTION) == Some("edit"))
        .unwrap();
    assert_eq!(text(edit, semconv::SESSION_FILE_PATH), Some("src/cart.js"));
    assert_eq!(edit.parent_span_id, Some(tools[1].span_id));
    assert!(text(edit, semconv::SESSION_FILE_HASH_BEFORE).is_some());
    let root = trace
        .spans
        .iter()
        .find(|s| role(s) == Some("session"))
        .unwrap();
    assert_eq!(text(root, semconv::SESSION_GIT_COMMIT), Some("4f2a9c1"));
    assert_eq!(
        text(root, semconv::SESSION_REPOSITORY),
        Some("git@github.com:acme/shop.git")
    );
}

/// Imports `file` in two pieces: the first `split` bytes, then (resuming from the saved state)
/// the rest. Returns what the store would hold and the lines each piece read.
fn import_claude_in_two(file: &Path, split_after_lines: usize) -> (Stored, u64, u64) {
    let bytes = std::fs::read(file).unwrap();
    let split = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(split_after_lines - 1)
        .unwrap()
        .0
        + 1;
    let mut stored = Stored::default();
    let mut first = ClaudeCodeImporter::new(redactor());
    let one = read_lines(&bytes[..split], 0, &mut first, &mut |_| {}).unwrap();
    stored.add(first.drain());
    let saved = ImportCursorState {
        lines: one.lines,
        state: first.state().clone(),
    }
    .to_bytes();
    let resumed = ImportCursorState::<ClaudeCodeState>::from_bytes(&saved).unwrap();
    let mut second = ClaudeCodeImporter::resume(redactor(), resumed.state);
    let two = read_lines(&bytes[split..], resumed.lines, &mut second, &mut |_| {}).unwrap();
    stored.add(second.drain());
    (stored, one.lines, two.lines)
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn a_transcript_imported_in_pieces_equals_one_imported_whole() {
    let file =
        fixtures().join("claude-code/sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl");
    let mut whole = Stored::default();
    import_claude(&mut whole, &file);
    // Split inside a sub-agent's run, between a tool call and its result.
    for split in [40, 200, 401] {
        let (pieces, first, second) = import_claude_in_two(&file, split);
        assert_eq!((first, second), (split as u64, 438 - split as u64));
        let mut a = whole.trace(FE5E).spans.clone();
        let mut b = pieces.trace(FE5E).spans.clone();
        a.sort_by_key(|s| s.span_id);
        b.sort_by_key(|s| s.span_id);
        assert_eq!(a.len(), b.len(), "split after {split}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "split after {split}: {}", x.name);
        }
    }
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn hook_events_and_the_transcript_land_on_the_same_spans() {
    let file =
        fixtures().join("claude-code/sample-project/fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl");
    // The build command as the hook saw it start, a little before the transcript's own
    // timestamp for it.
    let t0 = devtrace_model::time::parse_rfc3339("2025-09-03T01:00:25.000Z").unwrap();
    hooks_and_transcript_share_spans(&HookCase {
        file: &file,
        trace_hex: FE5E,
        t0,
        prompt: serde_json::json!({"session_id": "fe5e1c67-53e7-4862-81ae-d0e013e3270b",
            "cwd": "/path/to/Demo", "hook_event_name": "UserPromptSubmit",
            "prompt": "create TODO app by Next.js"}),
        pre_tool_use: serde_json::json!({"session_id": "fe5e1c67-53e7-4862-81ae-d0e013e3270b",
            "cwd": "/path/to/Demo/todo-app", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_use_id": "toolu_01CSi16ZXnnQne2EuM8ZxNB4",
            "tool_input": {"command": "npm run build", "description": "Build the TODO app from todo-app directory"}}),
        tool_use_id: "toolu_01CSi16ZXnnQne2EuM8ZxNB4",
        imported: (167, 2, 5),
    });
    // Bad hook input is refused with a reason.
    let error = hook_event("{\"hook_event_name\": \"Stop\"}", t0, redactor()).unwrap_err();
    assert!(error.contains("session_id"), "{error}");
}

// The same behaviours on the repository's own synthetic sample project (always run). Its
// numbers are those generate.py prints, counted while it writes the lines.

#[test]
fn the_own_sample_project_imports_with_its_numbers() {
    let stored = own_sample_project();
    assert_eq!(
        stored.0.len(),
        3,
        "three sessions (the agent-* files belong to 7c4d1e2f)"
    );

    let orchestrator = stored.facts(ORCH);
    assert_eq!(orchestrator.agent, "claude-code");
    assert_eq!(orchestrator.project, "/home/dev/shop");
    assert_eq!(orchestrator.title, "/orchestrator add a shopping cart");
    assert_eq!(orchestrator.turns, 2, "the isMeta line is not a turn");
    assert_eq!(orchestrator.tool_calls, 17);
    assert_eq!(orchestrator.subagents, 2);
    assert_eq!(orchestrator.errors, 5);
    // Deduplicated by message id (the largest usage of each of the 21 responses, whose lines
    // repeat it with growing output): input 100 + cache creation 8,615 + cache read 367,500.
    assert_eq!(orchestrator.input_tokens, 376_215);
    assert_eq!(orchestrator.cache_read_tokens, 367_500);
    assert_eq!(orchestrator.output_tokens, 1_320);
    let chats = stored
        .trace(ORCH)
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_CHAT))
        .count();
    assert_eq!(chats, 21);

    let update = stored.facts(UPDATE);
    assert_eq!(update.title, "/orchestrator update CLAUDE.md");
    assert_eq!((update.turns, update.tool_calls, update.errors), (1, 9, 3));
    // Two Task calls with a prompt (a third failed without one), and two sub-agent files
    // whose prompts match no Task call.
    assert_eq!(update.subagents, 4);
    assert_eq!(update.input_tokens, 799_640);
    assert_eq!(update.output_tokens, 560);

    let init = stored.facts(INIT);
    assert_eq!(
        (init.turns, init.tool_calls, init.errors, init.subagents),
        (1, 4, 1, 0)
    );
    assert_eq!((init.input_tokens, init.output_tokens), (579_174, 185));
    assert_eq!(init.title, "/init");
}

#[test]
fn own_sub_agents_hang_under_the_task_call_that_started_them() {
    let stored = own_sample_project();
    let trace = stored.trace(ORCH);
    let by_id: HashMap<SpanId, &Span> = trace.spans.iter().map(|s| (s.span_id, s)).collect();
    let agents: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_AGENT))
        .collect();
    assert_eq!(agents.len(), 2);
    for agent in &agents {
        let parent = by_id[&agent.parent_span_id.unwrap()];
        assert_eq!(parent.name, "execute_tool Task");
        assert_eq!(agent.name, "invoke_agent general-purpose");
        assert!(agent.end_unix_nano > agent.start_unix_nano);
    }
    // The first of the two failing `npm run build`s of the first sub-agent: tool → sub-agent
    // → Task → turn → session.
    let build = trace
        .spans
        .iter()
        .find(|s| text(s, semconv::GEN_AI_TOOL_CALL_ID) == Some("toolu_3f2a9b1c0007"))
        .unwrap();
    let mut chain = Vec::new();
    let mut cursor = build;
    while let Some(parent) = cursor.parent_span_id {
        cursor = by_id[&parent];
        chain.push(role(cursor).unwrap());
    }
    assert_eq!(chain, ["agent", "tool", "turn", "session"]);
    assert_eq!(text(build, semconv::SESSION_COMMAND), Some("npm run build"));
    assert_eq!(text(build, semconv::SESSION_CWD), Some("/home/dev/shop"));
    assert_eq!(build.status.code, StatusCode::Error);
    assert_eq!(
        build.status.message,
        "src/cart.ts(14,5): error TS2322: Type 'string' is not assignable to type 'number'."
    );
    assert_eq!(build.duration_nanos(), 4_000_000_000);

    // Sub-agents known only from their own files hang under the session.
    let update = stored.trace(UPDATE);
    let root = session_span_id(UPDATE.parse().unwrap());
    let orphans = update
        .spans
        .iter()
        .filter(|s| role(s) == Some(semconv::SESSION_SPAN_AGENT) && s.parent_span_id == Some(root))
        .count();
    assert_eq!(orphans, 2);
}

#[test]
fn own_edits_reads_and_commands_carry_what_the_detectors_need() {
    let stored = own_sample_project();
    let trace = stored.trace(ORCH);
    let rejected = trace
        .spans
        .iter()
        .filter(|s| s.status.message.starts_with("File has not been read yet"))
        .count();
    assert_eq!(rejected, 2, "the tool rejected 2 blind edits");
    // Every successful Edit knows the file's content hash before and after, and the Read just
    // before it saw the content it started from.
    let edits: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| {
            text(s, semconv::GEN_AI_TOOL_NAME) == Some("Edit") && s.status.code != StatusCode::Error
        })
        .collect();
    assert_eq!(edits.len(), 3);
    let mut edits = edits;
    edits.sort_by_key(|s| s.start_unix_nano);
    let first = edits[0];
    // src/cart.ts goes v1 → v2 → v3 and back to v2 (generate.py's CART_V1..3).
    let hashes: Vec<(&str, &str)> = edits
        .iter()
        .map(|e| {
            (
                text(e, semconv::SESSION_FILE_HASH_BEFORE).unwrap(),
                text(e, semconv::SESSION_FILE_HASH_AFTER).unwrap(),
            )
        })
        .collect();
    assert_eq!(hashes[0].1, hashes[1].0);
    assert_eq!(hashes[1].1, hashes[2].0);
    assert_eq!(hashes[2].1, hashes[0].1, "the last edit restores v2");
    for edit in &edits {
        let before = text(edit, semconv::SESSION_FILE_HASH_BEFORE).unwrap();
        let after = text(edit, semconv::SESSION_FILE_HASH_AFTER).unwrap();
        assert_ne!(before, after);
        assert_eq!(text(edit, semconv::SESSION_ACTION), Some("edit"));
    }
    let read = trace
        .spans
        .iter()
        .filter(|s| {
            text(s, semconv::GEN_AI_TOOL_NAME) == Some("Read")
                && s.end_unix_nano <= first.start_unix_nano
                && text(s, semconv::SESSION_FILE_PATH) == text(first, semconv::SESSION_FILE_PATH)
        })
        .max_by_key(|s| s.end_unix_nano)
        .unwrap();
    assert_eq!(
        text(read, semconv::SESSION_FILE_HASH),
        text(first, semconv::SESSION_FILE_HASH_BEFORE)
    );
    // Outputs: their size, the head inline, all of it in a blob when long (`npm test` prints
    // 180 result lines).
    let test = trace
        .spans
        .iter()
        .find(|s| text(s, semconv::SESSION_COMMAND) == Some("npm test"))
        .unwrap();
    let report: String = (1..=180)
        .map(|i| format!("ok {i} - cart case {i}: total of {i} items\n"))
        .collect::<String>()
        + "# pass 180\n# fail 0\n";
    assert!(report.len() > 4096);
    assert_eq!(
        test.attr(semconv::SESSION_OUTPUT_BYTES)
            .and_then(AnyValue::as_i64),
        Some(report.len() as i64)
    );
    assert!(test.attr(semconv::SESSION_OUTPUT_REF).is_some());
}

#[test]
fn own_edge_cases_import_without_error_and_report_the_broken_lines() {
    let mut stored = Stored::default();
    let summary = import_claude(&mut stored, &own_fixture("claude_edge_cases.jsonl"));
    // Line 7 has "timesstamp" (and a message that is a string); lines 8 to 11 are not
    // transcript objects ("massive error", {"silly": "this"}, 42, [1]).
    let lines: Vec<u64> = summary.notes.iter().map(|n| n.line).collect();
    assert_eq!(lines, [7, 8, 9, 10, 11]);
    let sessions: BTreeMap<String, (u64, u64, String)> = stored
        .0
        .values()
        .map(|batch| {
            let facts = SessionFacts::from_spans(batch).unwrap();
            (
                facts.session_id,
                (facts.turns, facts.tool_calls, facts.title),
            )
        })
        .collect();
    let expected: BTreeMap<String, (u64, u64, String)> = [
        // Two prompts (one with an image beside its text), a TodoWrite call; a summary line
        // whose leaf is in this session titles it.
        ("edge-a", (2, 1, "Tidy the README")),
        ("edge-b", (1, 0, "second session")),
    ]
    .into_iter()
    .map(|(k, (turns, tools, title))| (k.to_owned(), (turns, tools, title.to_owned())))
    .collect();
    assert_eq!(sessions, expected);
}

#[test]
fn an_own_transcript_imported_in_pieces_equals_one_imported_whole() {
    let file = own_sample_project_dir().join(ORCH_FILE);
    let mut whole = Stored::default();
    import_claude(&mut whole, &file);
    // Split inside the first sub-agent's run between a tool call and its result, between the
    // two sub-agents, and inside the second turn.
    for split in [16, 24, 40] {
        let (pieces, first, second) = import_claude_in_two(&file, split);
        assert_eq!((first, second), (split as u64, 45 - split as u64));
        let mut a = whole.trace(ORCH).spans.clone();
        let mut b = pieces.trace(ORCH).spans.clone();
        a.sort_by_key(|s| s.span_id);
        b.sort_by_key(|s| s.span_id);
        assert_eq!(a.len(), b.len(), "split after {split}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "split after {split}: {}", x.name);
        }
    }
}

#[test]
fn own_hook_events_and_the_transcript_land_on_the_same_spans() {
    let file = own_sample_project_dir().join(ORCH_FILE);
    // The transcript's own timestamp for the build is 09:00:16.150; the hook saw it earlier.
    let t0 = devtrace_model::time::parse_rfc3339("2026-02-10T09:00:15.000Z").unwrap();
    hooks_and_transcript_share_spans(&HookCase {
        file: &file,
        trace_hex: ORCH,
        t0,
        prompt: serde_json::json!({"session_id": "3f2a9b1c-5d7e-4f80-9a1b-2c3d4e5f6a7b",
            "cwd": "/home/dev/shop", "hook_event_name": "UserPromptSubmit",
            "prompt": "/orchestrator add a shopping cart"}),
        pre_tool_use: serde_json::json!({"session_id": "3f2a9b1c-5d7e-4f80-9a1b-2c3d4e5f6a7b",
            "cwd": "/home/dev/shop", "hook_event_name": "PreToolUse", "tool_name": "Bash",
            "tool_use_id": "toolu_3f2a9b1c0007",
            "tool_input": {"command": "npm run build", "description": "Build the shop"}}),
        tool_use_id: "toolu_3f2a9b1c0007",
        imported: (17, 2, 2),
    });
}

/// A session seen live through hooks (its prompt, then a tool call as it starts), then
/// imported from its transcript.
struct HookCase<'a> {
    file: &'a Path,
    trace_hex: &'a str,
    /// When the hook saw the tool call start; the prompt came 1 ns before.
    t0: u64,
    /// The hook inputs, without `transcript_path` (added here).
    prompt: serde_json::Value,
    pre_tool_use: serde_json::Value,
    tool_use_id: &'a str,
    /// (tool calls, turns, sub-agents) once the transcript is imported.
    imported: (u64, u64, u64),
}

/// Hook events and the transcript land on the same spans: the live tool call is counted at
/// once, the import adds nothing twice, the hook's start time stays, the transcript brings the
/// outcome, and the prompt notification is kept on the session span.
fn hooks_and_transcript_share_spans(case: &HookCase) {
    let mut stored = Stored::default();
    for (event, at) in [(&case.prompt, case.t0 - 1), (&case.pre_tool_use, case.t0)] {
        let mut event = event.clone();
        event["transcript_path"] = serde_json::json!(case.file);
        let (output, info) = hook_event(&event.to_string(), at, redactor()).unwrap();
        assert_eq!(info.trace_id.to_hex(), case.trace_hex);
        stored.add(output);
    }
    let live = stored.facts(case.trace_hex);
    assert_eq!(
        (live.tool_calls, live.turns),
        (1, 0),
        "recorded at once, before any import"
    );
    import_claude(&mut stored, case.file);
    let facts = stored.facts(case.trace_hex);
    assert_eq!(
        (facts.tool_calls, facts.turns, facts.subagents),
        case.imported,
        "nothing twice"
    );
    let trace = stored.trace(case.trace_hex);
    let build = trace
        .spans
        .iter()
        .find(|s| text(s, semconv::GEN_AI_TOOL_CALL_ID) == Some(case.tool_use_id))
        .unwrap();
    assert_eq!(
        build.start_unix_nano, case.t0,
        "the hook saw it start first"
    );
    assert_eq!(
        build.status.code,
        StatusCode::Error,
        "the transcript brought the outcome"
    );
    assert_eq!(
        role(
            trace
                .spans
                .iter()
                .find(|s| Some(s.span_id) == build.parent_span_id)
                .unwrap()
        ),
        Some("agent")
    );
    let root = trace
        .spans
        .iter()
        .find(|s| role(s) == Some("session"))
        .unwrap();
    assert_eq!(root.events.len(), 1, "the prompt notification is kept");
    assert_eq!(root.events[0].name, semconv::SESSION_HOOK_EVENT);
}

/// A transcript naming more sessions than one file may hold
/// (`MAX_SESSIONS_PER_TRANSCRIPT`): the first 1,000 are imported, each line of another one is
/// skipped with a note saying why, so a hostile file cannot make the importer hold a state per
/// session without end. Claude Code names a session on every line, Codex in `session_meta`.
#[test]
fn a_transcript_holds_at_most_a_thousand_sessions() {
    use devtrace_ingest::sessions::MAX_SESSIONS_PER_TRANSCRIPT;
    let sessions = MAX_SESSIONS_PER_TRANSCRIPT + 2;
    let expected_note = format!(
        "a session beyond the {MAX_SESSIONS_PER_TRANSCRIPT} this transcript already holds: skipped (one file holds at most {MAX_SESSIONS_PER_TRANSCRIPT})"
    );
    let claude: String = (0..sessions)
        .map(|n| {
            format!(
                "{{\"type\":\"user\",\"sessionId\":\"s-{n}\",\"uuid\":\"u-{n}\",\"timestamp\":\"2026-11-23T10:00:00Z\",\"cwd\":\"/w\",\"message\":{{\"role\":\"user\",\"content\":\"hello\"}}}}\n"
            )
        })
        .collect();
    let codex: String = (0..sessions)
        .map(|n| {
            format!(
                "{{\"type\":\"session_meta\",\"timestamp\":\"2026-11-23T10:00:00Z\",\"payload\":{{\"id\":\"c-{n}\",\"cwd\":\"/w\"}}}}\n"
            )
        })
        .collect();
    let mut claude_importer = ClaudeCodeImporter::new(redactor());
    let mut codex_importer = CodexImporter::new(redactor());
    for (importer, text) in [
        (&mut claude_importer as &mut dyn Importer, claude),
        (&mut codex_importer as &mut dyn Importer, codex),
    ] {
        let summary = read_lines(text.as_bytes(), 0, importer, &mut |_| {}).unwrap();
        let skipped: Vec<(u64, &str)> = summary
            .notes
            .iter()
            .map(|n| (n.line, n.message.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                (sessions as u64 - 1, expected_note.as_str()),
                (sessions as u64, expected_note.as_str())
            ]
        );
        let mut stored = Stored::default();
        stored.add(importer.drain());
        assert_eq!(stored.0.len(), MAX_SESSIONS_PER_TRANSCRIPT);
    }
}
