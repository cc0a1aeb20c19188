//! Development sessions end to end through the `devtrace` binary: importing the real Claude
//! Code and Codex fixtures (and our own), incremental re-imports, trace-1.0.0 files, live hook
//! events, the views, the findings, run linking and cross-session insights.
//!
//! The tests on third-party transcripts are the extra conformance set: ignored unless asked for
//! (`cargo test -p devtrace-cli --test sessions -- --ignored` with `DEVTRACE_EXTERNAL_FIXTURES`
//! naming the fixtures directory; scripts/test does that when the variable is set).

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The third-party fixtures (Claude Code and Codex transcripts, with their licences), outside
/// the repository.
fn fixtures() -> PathBuf {
    let dir = std::env::var_os("DEVTRACE_EXTERNAL_FIXTURES").unwrap_or_else(|| {
        panic!("set DEVTRACE_EXTERNAL_FIXTURES to the third-party fixtures directory")
    });
    PathBuf::from(dir)
}

fn sample_project() -> PathBuf {
    fixtures().join("claude-code/sample-project")
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

fn import_sample(data: &Path) -> Value {
    json_of(&devtrace(
        data,
        &[
            "import",
            "claude-code",
            sample_project().to_str().unwrap(),
            "--json",
        ],
    ))
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_sample_project_imports_once_and_lists_with_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let first = import_sample(dir.path());
    assert_eq!(first["files"], 5);
    assert_eq!(first["sessions"], 3);
    assert_eq!(first["skipped_lines"], 0);
    let again = import_sample(dir.path());
    assert_eq!(
        (again["files"].as_u64(), again["unchanged_files"].as_u64()),
        (Some(0), Some(5))
    );
    assert_eq!(again["spans"], 0, "nothing read, nothing stored");

    let sessions = json_of(&devtrace(dir.path(), &["sessions", "--json"]));
    let rows: Vec<(String, u64, u64, u64, u64, u64, u64)> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["trace_id"].as_str().unwrap()[..8].to_owned(),
                s["turns"].as_u64().unwrap(),
                s["tool_calls"].as_u64().unwrap(),
                s["subagents"].as_u64().unwrap(),
                s["errors"].as_u64().unwrap(),
                s["input_tokens"].as_u64().unwrap(),
                s["output_tokens"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("fe5e1c67".into(), 2, 167, 5, 23, 3_786_648, 51_933),
            ("5c0375b4".into(), 1, 21, 4, 3, 372_335, 3_649),
            ("1af7fc5e".into(), 1, 12, 0, 1, 116_010, 953),
        ]
    );
    let orchestrator = &sessions[0];
    // Counted per request (message id + request id) with its last usage.
    assert_eq!(orchestrator["tokens"]["output"], 51_933);
    assert_eq!(orchestrator["agent"], "claude-code");
    assert_eq!(orchestrator["project"], "/path/to/Demo");
    assert_eq!(
        orchestrator["session_id"],
        "fe5e1c67-53e7-4862-81ae-d0e013e3270b"
    );
    // The generic views work on sessions too: a session is a trace.
    let ls = stdout(&devtrace(dir.path(), &["ls"]));
    assert!(ls.contains("session claude-code"), "{ls}");
    let show = devtrace(dir.path(), &["show", "fe5e1c67"]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(stdout(&show).contains("execute_tool Task"));
    // Filters.
    let codex = json_of(&devtrace(
        dir.path(),
        &["sessions", "--agent", "codex", "--json"],
    ));
    assert_eq!(codex, json!([]));
    let table = stdout(&devtrace(dir.path(), &["sessions", "--limit", "1"]));
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap()
            .contains("/orchestrator create TODO app by Next.js")
    );
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn the_orchestrator_session_shows_the_blind_edits_and_the_repeated_build() {
    let dir = tempfile::tempdir().unwrap();
    import_sample(dir.path());
    let overview = json_of(&devtrace(
        dir.path(),
        &["session", "show", "fe5e1c67", "--json"],
    ));
    let findings = overview["findings"].as_array().unwrap();
    let blind = findings
        .iter()
        .find(|f| f["kind"] == "anti_pattern" && f["operation"] == "blind edit")
        .expect("a blind-edit finding");
    assert_eq!(blind["numbers"]["blind_edits"], 13.0);
    assert_eq!(blind["numbers"]["refused"], 13.0);
    let build = findings
        .iter()
        .find(|f| f["kind"] == "retry_loop")
        .expect("a retry-loop finding");
    assert_eq!(build["operation"], "npm run build");
    assert_eq!(build["numbers"]["failures"], 4.0);
    assert_eq!(
        build["title"],
        "\"npm run build\" failed 4 times in a row with no change in between: \"[TypeError: generate is not a function]\""
    );
    // The timeline: turns, the five sub-agents, every tool call with its outcome.
    let timeline = overview["timeline"].as_array().unwrap();
    let count = |kind: &str| timeline.iter().filter(|e| e["kind"] == kind).count();
    assert_eq!((count("turn"), count("agent"), count("tool")), (2, 5, 167));
    let failed = timeline.iter().filter(|e| e["outcome"] == "failed").count();
    assert_eq!(failed, 23);
    // Findings are inline, on the entry where they became evident: the fourth build.
    let fourth_build = timeline
        .iter()
        .filter(|e| e["command"] == "npm run build")
        .nth(3)
        .unwrap();
    assert_eq!(fourth_build["depth"], 1, "inside a sub-agent");
    let index = findings
        .iter()
        .position(|f| f["kind"] == "retry_loop")
        .unwrap();
    assert_eq!(fourth_build["findings"], json!([index]));

    // The agent's replies: one per API response that said something, counted from the file.
    let transcript = std::fs::read_to_string(
        sample_project().join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"),
    )
    .unwrap();
    let mut replies = std::collections::BTreeSet::new();
    for line in transcript.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let says = line["message"]["content"].as_array().is_some_and(|blocks| {
            blocks.iter().any(|b| {
                b["type"] == "text" && b["text"].as_str().is_some_and(|t| !t.trim().is_empty())
            })
        });
        if line["type"] == "assistant" && says {
            replies.insert(line["message"]["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(count("message"), replies.len());
    assert_eq!(replies.len(), 95);
    // Every edit and write shows as a diff: a write's lines are all additions, an edit's
    // removed and added lines are its old and new text.
    let changes: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["action"] == "edit" || e["action"] == "write")
        .collect();
    assert_eq!(changes.len(), 44);
    assert!(changes.iter().all(|e| e["diff"].is_string()), "{changes:?}");
    let write = changes.iter().find(|e| e["label"] == "Write").unwrap();
    assert!(
        write["diff"]
            .as_str()
            .unwrap()
            .lines()
            .all(|l| l.starts_with('+'))
    );
    let edit = changes
        .iter()
        .find(|e| e["label"] == "Edit" && e["outcome"] == "ok")
        .unwrap();
    let diff = edit["diff"].as_str().unwrap();
    assert!(
        diff.starts_with(
            "-import Image from \"next/image\";\n-\n export default function Home() {\n   return (\n"
        ),
        "{diff}"
    );

    let text = stdout(&devtrace(
        dir.path(),
        &["session", "show", "fe5e1c67-53e7-4862-81ae-d0e013e3270b"],
    ));
    assert!(
        text.starts_with("claude-code  /orchestrator create TODO app by Next.js  /path/to/Demo\n"),
        "{text}"
    );
    assert!(text.contains("2 turns, 167 tool calls, 5 sub-agents, 23 errors; tokens 3.8M in (3.6M from cache), 51k out"));
    assert!(text.contains("✗ Bash `npm run build`"));
    assert!(text.contains("⚑ \"npm run build\" failed 4 times in a row"));
    assert!(text.contains("◆ sub-agent: Setup Next.js project"));

    let missing = devtrace(dir.path(), &["session", "show", "deadbeef"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("deadbeef"),
        "{}",
        stderr(&missing)
    );
}

/// The runtime detectors would read an agent's one-at-a-time replies and tool calls as work to
/// batch or parallelise; program-trace views leave sessions to their own detectors.
#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn runtime_analyses_leave_sessions_to_the_session_detectors() {
    let dir = tempfile::tempdir().unwrap();
    import_sample(dir.path());
    let insights = json_of(&devtrace(
        dir.path(),
        &["insights", "--since", "3000d", "--json"],
    ));
    assert_eq!(insights["traces_analysed"], 0, "{insights}");
    assert_eq!(insights["total_findings"], 0, "{insights}");
    let text = stdout(&devtrace(dir.path(), &["insights", "--since", "3000d"]));
    assert!(text.contains("devtrace insights --sessions"), "{text}");
    let errors = stdout(&devtrace(dir.path(), &["errors", "--since", "3000d"]));
    assert!(errors.starts_with("no traces with errors"), "{errors}");
    // The sessions are still traces: listed, and analysed by their own detectors.
    let listed = json_of(&devtrace(dir.path(), &["ls", "--json", "--since", "3000d"]));
    assert_eq!(listed.as_array().unwrap().len(), 3);
    let sessions = json_of(&devtrace(dir.path(), &["sessions", "--json"]));
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["findings"].as_u64().unwrap_or(0) > 0),
        "{sessions}"
    );
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn a_grown_transcript_imports_only_its_new_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let project = dir.path().join("project");
    std::fs::create_dir(&project).unwrap();
    let original =
        std::fs::read(sample_project().join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl")).unwrap();
    let cut = original
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(199)
        .unwrap()
        .0
        + 1;
    let transcript = project.join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl");
    // The first 200 lines and half of the 201st (the agent is still writing it).
    let partial = cut + 40;
    std::fs::write(&transcript, &original[..partial]).unwrap();
    let first = json_of(&devtrace(
        &data,
        &["import", "claude-code", project.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        first["bytes"].as_u64(),
        Some(cut as u64),
        "the unfinished line is left for later"
    );
    let partway = json_of(&devtrace(&data, &["sessions", "--json"]));
    let tools_then = partway[0]["tool_calls"].as_u64().unwrap();
    assert!(tools_then > 0 && tools_then < 167, "{tools_then}");

    std::fs::OpenOptions::new()
        .append(true)
        .open(&transcript)
        .unwrap()
        .write_all(&original[partial..])
        .unwrap();
    let second = json_of(&devtrace(
        &data,
        &["import", "claude-code", project.to_str().unwrap(), "--json"],
    ));
    assert_eq!(
        second["bytes"].as_u64(),
        Some((original.len() - cut) as u64),
        "only the new lines are read"
    );
    let whole = json_of(&devtrace(&data, &["sessions", "--json"]));
    assert_eq!(whole[0]["tool_calls"], 167);
    assert_eq!(whole[0]["turns"], 2);
    assert_eq!(whole[0]["input_tokens"], 3_786_648);
    let trace = json_of(&devtrace(&data, &["ls", "--json"]));
    assert_eq!(trace[0]["span_count"], 345, "every span once");

    // A transcript replaced by another one (its head changed) is read again from the start.
    std::fs::write(&transcript, &original[..cut]).unwrap();
    let replaced = json_of(&devtrace(
        &data,
        &["import", "claude-code", project.to_str().unwrap(), "--json"],
    ));
    assert_eq!(replaced["bytes"].as_u64(), Some(cut as u64));
    assert_eq!(
        json_of(&devtrace(&data, &["ls", "--json"]))[0]["span_count"],
        345
    );
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn codex_rollouts_and_the_edge_cases_import() {
    let dir = tempfile::tempdir().unwrap();
    let codex = json_of(&devtrace(
        dir.path(),
        &[
            "import",
            "codex",
            fixtures().join("codex").to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        (codex["sessions"].as_u64(), codex["skipped_lines"].as_u64()),
        (Some(1), Some(0))
    );
    let own = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../devtrace-ingest/tests/fixtures/sessions/codex_tools.jsonl");
    json_of(&devtrace(
        dir.path(),
        &["import", "codex", own.to_str().unwrap(), "--json"],
    ));
    let sessions = json_of(&devtrace(
        dir.path(),
        &["sessions", "--agent", "codex", "--json"],
    ));
    assert_eq!(sessions.as_array().unwrap().len(), 2);
    let tools = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["title"] == "fix the failing cart total test")
        .unwrap();
    assert_eq!(
        (tools["tool_calls"].as_u64(), tools["errors"].as_u64()),
        (Some(3), Some(1))
    );

    let edge = devtrace(
        dir.path(),
        &[
            "import",
            "claude-code",
            fixtures().join("claude-code/edge-cases").to_str().unwrap(),
            "--json",
        ],
    );
    let summary = json_of(&edge);
    assert_eq!(
        (
            summary["sessions"].as_u64(),
            summary["skipped_lines"].as_u64()
        ),
        (Some(4), Some(5))
    );
    assert!(stderr(&edge).contains("edge_cases.jsonl:13: not a JSON object (line skipped)"));

    let nowhere = devtrace(dir.path(), &["import", "codex", "/nonexistent/rollouts"]);
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(stderr(&nowhere).contains("/nonexistent/rollouts does not exist"));
}

fn trace_document() -> Value {
    json!({
        "trace_id": "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
        "version": "trace-1.0.0",
        "task": {"description": "Make checkout faster", "repository": "https://github.com/acme/shop"},
        "events": [
            {"t": "2025-06-14T11:00:01Z", "type": "file_opened", "file_path": "src/checkout.go"},
            {"t": "2025-06-14T11:00:05Z", "type": "terminal_command", "cmd": "go", "args": ["test", "./..."],
             "exit_code": 1, "stderr": "--- FAIL: TestCheckout (0.01s)\n", "duration_ms": 900}
        ]
    })
}

#[test]
fn trace_documents_import_validate_and_stay_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&trace_document()).unwrap()).unwrap();
    let imported = json_of(&devtrace(
        dir.path(),
        &["import", "--json", file.to_str().unwrap()],
    ));
    assert_eq!(
        (imported["sessions"].as_u64(), imported["spans"].as_u64()),
        (Some(1), Some(3))
    );
    let again = json_of(&devtrace(
        dir.path(),
        &["import", "--json", file.to_str().unwrap()],
    ));
    assert_eq!(
        (
            again["sessions"].as_u64(),
            again["already_imported"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let sessions = json_of(&devtrace(dir.path(), &["sessions", "--json"]));
    assert_eq!(sessions[0]["agent"], "developer");
    assert_eq!(sessions[0]["errors"], 1);

    let mut bad = trace_document();
    bad["events"][1]["exit_code"] = json!("1");
    bad["trace_id"] = json!("a0000000-0000-4000-8000-000000000001");
    let bad_file = dir.path().join("bad.json");
    std::fs::write(&bad_file, bad.to_string()).unwrap();
    let refused = devtrace(dir.path(), &["import", bad_file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused)
            .contains("events[1].exit_code: expected an integer, found a string (\"1\")"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("nothing from this file was stored"));
    assert_eq!(
        json_of(&devtrace(dir.path(), &["sessions", "--json"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A person's recorded session (`devtrace record`'s document) shows what they did — commands,
/// edits, notes — the task, the final patch and the test results, not an agent's turns and
/// tokens; the recorded text is escaped (text) or quoted (`--quote`-style faces such as MCP).
#[test]
fn a_recorded_session_shows_its_commands_task_patch_and_tests() {
    let dir = tempfile::tempdir().unwrap();
    let mut doc = trace_document();
    doc["task"]["commit"] = json!("4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    doc["task"]["test_command"] = json!("go test ./...");
    doc["developer"] = json!({"name": "dev-5f1c2a"});
    let events = doc["events"].as_array_mut().unwrap();
    events.push(json!({"t": "2025-06-14T11:00:09Z", "type": "edit", "file_path": "src/checkout.go",
        "patch_unified": "--- a/src/checkout.go\n+++ b/src/checkout.go\n@@ -1 +1 @@\n-slow()\n+fast()\n"}));
    events.push(
        json!({"t": "2025-06-14T11:00:12Z", "type": "thought", "raw": "cache the \u{202e}rates"}),
    );
    events.push(json!({"t": "2025-06-14T11:00:20Z", "type": "terminal_command", "cmd": "go", "args": ["test", "./..."],
        "exit_code": 0, "duration_ms": 700}));
    doc["artifacts"] = json!({
        "final_patch": "diff --git a/src/checkout.go b/src/checkout.go\n--- a/src/checkout.go\n+++ b/src/checkout.go\n@@ -1 +1 @@\n-slow()\n+fast()\n",
        "test_results": {"command": "go test ./...", "exit_code": 0, "passed": 3, "failed": 0, "skipped": 1, "runner": "go-test", "duration_ms": 700}
    });
    let file = dir.path().join("recorded.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let imported = devtrace(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));

    let text = stdout(&devtrace(dir.path(), &["session", "show", "9f1c2d3e"]));
    let header: Vec<&str> = text.lines().take(7).collect();
    assert_eq!(
        header,
        [
            "developer  Make checkout faster  https://github.com/acme/shop",
            "session 9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f  trace 9f1c2d3e4b5a4c6d8e7f0a1b2c3d4e5f  started 2025-06-14 11:00:01 UTC  19.70 s",
            "2 commands (1 failed), 1 edit in 1 file, 1 note",
            "task Make checkout faster",
            "start commit 4b825dc642cb6eb9a060e54bf8d69288fbee4904, test command go test ./..., developer dev-5f1c2a",
            "final patch: 1 file (+1 −1): src/checkout.go",
            "tests: 3 passed, 0 failed, 1 skipped (go-test, exit code 0)",
        ],
        "{text}"
    );
    assert!(!text.contains("turns"), "{text}");
    // The note's text, its right-to-left override shown as an escape.
    assert!(text.contains("✓ thought cache the \\u202erates"), "{text}");
    assert!(!text.contains('\u{202e}'), "{text}");

    let overview = json_of(&devtrace(
        dir.path(),
        &["session", "show", "9f1c2d3e", "--json"],
    ));
    let recorded = &overview["recorded"];
    assert_eq!(recorded["task"], "Make checkout faster");
    assert_eq!(recorded["test_command"], "go test ./...");
    assert_eq!(recorded["patch_files"], json!(["src/checkout.go"]));
    assert_eq!(
        (
            recorded["lines_added"].as_u64(),
            recorded["lines_removed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(recorded["final_patch"], doc["artifacts"]["final_patch"]);
    assert_eq!(recorded["final_patch_cut"], false);
    assert_eq!(recorded["test_results"]["passed"], 3);
    assert_eq!(recorded["test_results"]["runner"], "go-test");
}

#[test]
fn otlp_imports_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.json");
    let token = format!("glpat-{}", "xY9".repeat(8));
    std::fs::write(
        &file,
        json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "deploy",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": [{"key": "cmd", "value": {"stringValue": format!("git push https://oauth2:{token}@gitlab.com/x.git")}}]}]}]}]})
        .to_string(),
    )
    .unwrap();
    json_of(&devtrace(
        dir.path(),
        &["import", "--json", file.to_str().unwrap()],
    ));
    let shown = json_of(&devtrace(dir.path(), &["show", "0af76519", "--json"]));
    let text = shown.to_string();
    assert!(!text.contains(&token));
    assert!(
        text.contains("https://oauth2:[REDACTED:gitlab_token]@gitlab.com/x.git"),
        "{text}"
    );
}

fn hook(data: &Path, event: &Value) -> std::process::Output {
    let mut child = Command::new(common::BIN)
        .args(["--data", data.to_str().unwrap(), "hook", "claude-code"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.to_string().as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
#[ignore = "third-party transcripts: set DEVTRACE_EXTERNAL_FIXTURES and pass --ignored"]
fn hook_events_are_recorded_at_once_and_the_transcript_fills_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let transcript = sample_project().join("fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl");
    let session = "fe5e1c67-53e7-4862-81ae-d0e013e3270b";
    let pre = json!({"session_id": session, "transcript_path": transcript, "cwd": "/path/to/Demo/todo-app",
        "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_use_id": "toolu_01CSi16ZXnnQne2EuM8ZxNB4",
        "tool_input": {"command": "npm run build"}});
    let output = hook(&data, &pre);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stdout.is_empty(), "hooks print nothing on stdout");
    let live = json_of(&devtrace(&data, &["sessions", "--json"]));
    assert_eq!(
        (live[0]["tool_calls"].as_u64(), live[0]["turns"].as_u64()),
        (Some(1), Some(0))
    );

    // A reply finished: the transcript is imported, and the hooked call is not doubled.
    let stop = json!({"session_id": session, "transcript_path": transcript, "cwd": "/path/to/Demo", "hook_event_name": "Stop"});
    assert!(hook(&data, &stop).status.success());
    let filled = json_of(&devtrace(&data, &["sessions", "--json"]));
    assert_eq!(
        (
            filled[0]["tool_calls"].as_u64(),
            filled[0]["turns"].as_u64()
        ),
        (Some(167), Some(2))
    );
    // A later import has nothing left to read.
    let again = json_of(&devtrace(
        &data,
        &[
            "import",
            "claude-code",
            sample_project().to_str().unwrap(),
            "--json",
        ],
    ));
    assert_eq!(
        again["sessions"], 2,
        "only the two other sessions of the directory are new"
    );

    let broken = hook(&data, &json!({"hook_event_name": "Stop"}));
    assert_eq!(
        broken.status.code(),
        Some(1),
        "an error, but never 2 (which would block the agent)"
    );
    assert!(stderr(&broken).contains("session_id"));
    let help = stdout(&devtrace(&data, &["hook", "claude-code", "--help"]));
    assert!(help.contains("\"PreToolUse\"") && help.contains("devtrace hook claude-code"));
}

/// A Claude Code transcript of one session that runs `commands` in `cwd`, each taking the
/// given (start, end) times.
fn transcript(session: &str, cwd: &str, commands: &[(&str, u64, u64, bool)]) -> String {
    let ts = |nanos: u64| devtrace_model::time::format_rfc3339(nanos - nanos % 1_000_000);
    let first = commands[0].1 - 2_000_000_000;
    let mut lines = vec![
        json!({"type": "user", "sessionId": session, "uuid": format!("{session}-u0"), "parentUuid": null,
        "isSidechain": false, "cwd": cwd, "timestamp": ts(first), "message": {"role": "user", "content": "run the tests"}}),
    ];
    for (i, (command, start, end, failed)) in commands.iter().enumerate() {
        lines.push(json!({"type": "assistant", "sessionId": session, "uuid": format!("{session}-a{i}"), "isSidechain": false,
            "cwd": cwd, "timestamp": ts(*start),
            "message": {"id": format!("msg_{session}_{i}"), "role": "assistant", "model": "claude-sonnet-4",
                "usage": {"input_tokens": 10, "output_tokens": 5},
                "content": [{"type": "tool_use", "id": format!("toolu_{session}_{i}"), "name": "Bash", "input": {"command": command}}]}}));
        let mut result = json!({"type": "tool_result", "tool_use_id": format!("toolu_{session}_{i}"),
            "content": if *failed { "npm warn config\n> Build error occurred\n[TypeError: generate is not a function]" } else { "ok" }});
        if *failed {
            result["is_error"] = json!(true);
        }
        lines.push(json!({"type": "user", "sessionId": session, "uuid": format!("{session}-r{i}"), "isSidechain": false,
            "cwd": cwd, "timestamp": ts(*end), "message": {"role": "user", "content": [result]}}));
    }
    lines.iter().map(|l| l.to_string() + "\n").collect()
}

#[test]
fn a_command_that_ran_devtrace_run_links_to_the_run_trace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let ran = Command::new(common::BIN)
        .args([
            "--data",
            data.to_str().unwrap(),
            "run",
            "--quiet",
            "--",
            "sh",
            "-c",
            "echo building; exit 3",
        ])
        .current_dir(&work)
        .env("NO_COLOR", "1")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .env_remove("TRACEPARENT")
        .output()
        .unwrap();
    assert_eq!(ran.status.code(), Some(3), "{}", stderr(&ran));
    let runs = json_of(&devtrace(&data, &["runs", "--json"]));
    let run = &runs[0];
    let (start, duration) = (
        run["start_unix_nano"].as_u64().unwrap(),
        run["duration_ns"].as_u64().unwrap(),
    );
    let cwd = std::fs::canonicalize(&work).unwrap().display().to_string();
    // The agent ran it as `devtrace run -- …` in that directory, around that time; a second,
    // unrelated command in another directory links to nothing.
    let session = "7d3f8a1e-0c4b-4e5d-9a6f-2b1c0d9e8f7a";
    let text = transcript(
        session,
        &cwd,
        &[
            (
                "devtrace run -- sh -c 'echo building; exit 3'",
                start - 300_000_000,
                start + duration + 300_000_000,
                true,
            ),
            (
                "ls",
                start + duration + 5_000_000_000,
                start + duration + 5_100_000_000,
                false,
            ),
        ],
    );
    let file = dir.path().join(format!("{session}.jsonl"));
    std::fs::write(&file, text).unwrap();
    json_of(&devtrace(
        &data,
        &["import", "claude-code", file.to_str().unwrap(), "--json"],
    ));
    let overview = json_of(&devtrace(&data, &["session", "show", session, "--json"]));
    let linked = overview["linked_runs"].as_array().unwrap();
    assert_eq!(linked.len(), 1, "{overview}");
    assert_eq!(linked[0]["trace_id"], run["trace_id"]);
    assert_eq!(linked[0]["exit_code"], 3);
    let entry = overview["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["command"]
                .as_str()
                .is_some_and(|c| c.starts_with("devtrace run"))
        })
        .unwrap();
    assert_eq!(entry["linked_runs"], json!([run["trace_id"]]));
    let text = stdout(&devtrace(&data, &["session", "show", session]));
    let short = &run["trace_id"].as_str().unwrap()[..8];
    assert!(
        text.contains(&format!(
            "↳ run trace {} (devtrace show {short})",
            run["trace_id"].as_str().unwrap()
        )),
        "{text}"
    );
    // And back: the run's trace names the session and the entry of the command that made it.
    let shown = stdout(&devtrace(
        &data,
        &["show", run["trace_id"].as_str().unwrap()],
    ));
    let session_trace = overview["session"]["trace_id"].as_str().unwrap();
    let tool = entry["span_id"].as_str().unwrap();
    assert!(
        shown.contains(&format!(
            "made in session {} (claude-code) by the command in entry [{}]: devtrace session show {}\n",
            overview["session"]["title"],
            &tool[..8],
            &session_trace[..8]
        )),
        "{shown}"
    );
    // A trace that is not a run has no origin.
    let session_shown = stdout(&devtrace(&data, &["show", session_trace]));
    assert!(
        !session_shown.contains("made in session"),
        "{session_shown}"
    );
}

#[test]
fn recurring_failures_across_a_repositorys_sessions_become_insights() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let transcripts = dir.path().join("transcripts");
    std::fs::create_dir(&transcripts).unwrap();
    let base = 1_767_600_000_000_000_000u64;
    let sessions = [
        ("11111111-1111-4111-8111-111111111111", "/work/shop", true),
        ("22222222-2222-4222-8222-222222222222", "/work/shop", false),
        (
            "33333333-3333-4333-8333-333333333333",
            "/work/shop/web",
            true,
        ),
        ("44444444-4444-4444-8444-444444444444", "/work/other", true),
    ];
    for (i, (id, cwd, fails)) in sessions.iter().enumerate() {
        let start = base + i as u64 * 3_600_000_000_000;
        let text = transcript(
            id,
            cwd,
            &[("npm run build", start, start + 2_000_000_000, *fails)],
        );
        std::fs::write(transcripts.join(format!("{id}.jsonl")), text).unwrap();
    }
    json_of(&devtrace(
        &data,
        &[
            "import",
            "claude-code",
            transcripts.to_str().unwrap(),
            "--json",
        ],
    ));
    let answer = json_of(&devtrace(
        &data,
        &["insights", "--sessions", "--repo", "/work/shop", "--json"],
    ));
    assert_eq!(
        answer["sessions_analysed"], 3,
        "the repository's sessions only"
    );
    let insights = answer["insights"].as_array().unwrap();
    assert_eq!(insights.len(), 1, "{answer}");
    assert_eq!(
        insights[0]["observation"],
        "\"npm run build\" failed: \"[TypeError: generate is not a function]\""
    );
    assert_eq!(
        (
            insights[0]["session_count"].as_u64(),
            insights[0]["of_sessions"].as_u64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(
        insights[0]["sessions"],
        json!([
            "33333333333343338333333333333333",
            "11111111111141118111111111111111"
        ])
    );
    assert!(
        answer["note"]
            .as_str()
            .unwrap()
            .contains("not instructions")
    );
    let text = stdout(&devtrace(
        &data,
        &["insights", "--sessions", "--repo", "/work/shop"],
    ));
    assert!(
        text.contains("1. \"npm run build\" failed: \"[TypeError: generate is not a function]\" — in 2 of 3 sessions"),
        "{text}"
    );
    let none = stdout(&devtrace(
        &data,
        &["insights", "--sessions", "--repo", "/work/other"],
    ));
    assert!(
        none.starts_with("nothing recurs across the last 1 session in /work/other"),
        "{none}"
    );
}

fn own_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../devtrace-ingest/tests/fixtures/sessions")
        .join(name)
}

/// Our own transcript with one case of every session detector (the 1,200-line log is 65,959
/// bytes: 16,489 tokens at 4 bytes each), from transcript lines to
/// findings; and one with a near miss of each, which must show none.
#[test]
fn every_session_detector_fires_on_a_transcript_and_none_on_its_near_misses() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["claude_detectors.jsonl", "claude_near_misses.jsonl"] {
        let imported = json_of(&devtrace(
            dir.path(),
            &[
                "import",
                "claude-code",
                own_fixture(name).to_str().unwrap(),
                "--json",
            ],
        ));
        assert_eq!(imported["skipped_lines"], 0, "{name}");
    }
    let overview = json_of(&devtrace(
        dir.path(),
        &["session", "show", "8b1f0c2d", "--json"],
    ));
    let mut titles: Vec<String> = overview["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}: {}",
                f["kind"].as_str().unwrap(),
                f["title"].as_str().unwrap()
            )
        })
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "anti_pattern: 2 edits of files not read first, 2 refused by the tool (\"src/cart.js\")",
            "anti_pattern: edits abandoned by revert 1 time (\"git checkout -- src/cart.js\")",
            "anti_pattern: polled with sleep: 3 commands waited 15 s in all (e.g. \"sleep 5 && curl -sf localhost:3000/health\")",
            // The cart.js read and the three package.json reads: four requests, one read each,
            // none using what the one before returned.
            "batchable_calls: 4 requests in a row each made one independent read-only call (\"Read\"): one request with parallel calls would have saved 3 round-trips and 63,936 context tokens re-read ($0.019)",
            "circular_edit: \"src/cart.js\" went back to an earlier version: 2 edits ended where they started",
            "environment_error: environment: command not found \"pnpm\", 1 failed action (e.g. \"pnpm install\")",
            "retry_loop: \"npm run lint\" failed 3 times in a row with no change in between: \"1:1  error  'items' is defined but never used  no-unused-vars\"",
            "retry_loop: \"sleep 5 && curl -sf localhost:3000/health\" failed 3 times in a row with no change in between: \"curl: (7) Failed to connect to localhost port 3000\"",
            "test_fix_spiral: \"npm test\" failed 4 times with edits in between (a test-fix spiral); it passed in the end: \"error: 'expected 30, got 15'\"",
            "token_waste: 1 tool output over 40 kB (65 kB in all, ≈ 16,489 tokens; largest: \"cat logs/server.log\")",
            "token_waste: 2 re-reads of unchanged files (\"package.json\" ×2; 0 kB)",
        ]
    );
    let near = json_of(&devtrace(
        dir.path(),
        &["session", "show", "9c2e1d3f", "--json"],
    ));
    assert_eq!(near["findings"], json!([]), "near misses fire nothing");
    let exit_codes: Vec<Value> = near["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["command"]
                .as_str()
                .is_some_and(|c| c.starts_with("python -m build"))
        })
        .map(|e| e["exit_code"].clone())
        .collect();
    assert_eq!(exit_codes, [json!(1), json!(1), json!(0)]);
}

/// A `trace-1.0.0` document from another tool gives its tests as the format does
/// (`"test_results": {"passed": 5, "failed": 0}`: counts, no runner, no exit code): the
/// listing and the session say those counts, not "no test summary recognised" (which is for
/// `devtrace record`'s documents whose test output had no summary it knows).
#[test]
fn a_trace_document_s_own_test_counts_are_its_test_summary() {
    let dir = tempfile::tempdir().unwrap();
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sessions/trace-1.0.0-test-results.json");
    let imported = devtrace(dir.path(), &["import", file.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", stderr(&imported));

    let listed = stdout(&devtrace(dir.path(), &["sessions"]));
    let recorded = listed
        .lines()
        .find(|l| l.trim_start().starts_with("↳ recorded"))
        .unwrap_or_else(|| panic!("no recorded line:\n{listed}"));
    assert!(
        recorded.ends_with("; final patch 1 file (+1 −1); tests 5 passed, 0 failed, 0 skipped"),
        "{listed}"
    );
    let shown = stdout(&devtrace(dir.path(), &["session", "show", "3c9e1f70"]));
    assert!(
        shown.contains("\ntests: 5 passed, 0 failed, 0 skipped\n"),
        "{shown}"
    );
    assert!(!shown.contains("no test summary recognised"), "{shown}");
    let json = json_of(&devtrace(dir.path(), &["sessions", "--json"]));
    assert_eq!(
        json[0]["recorded"]["tests"],
        json!({"passed": 5, "failed": 0, "skipped": 0, "exit_code": null, "duration_ms": null, "counted_without_runner": true})
    );
}
