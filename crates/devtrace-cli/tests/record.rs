//! `devtrace record` end to end with the real binary, a real git repository and the real
//! recorder process: a whole recording into the store, a recorder killed with SIGKILL, orphans
//! resumed and closed, and the errors a user meets. (The shells under tmux and Neovim with a
//! language server are driven from tests/e2e/test_record.py.)

mod common;

use common::BIN;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A git repository with a small Python project and a test script printing a pytest-style
/// summary; its own data directory.
struct Project {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    data: PathBuf,
}

const CART: &str = "def total(prices):\n    return sum(prices) / len(prices)\n";
const CHECK: &str = "import sys\nfrom cart import total\ntry:\n    ok = total([]) == 0\nexcept ZeroDivisionError:\n    ok = False\nprint(('1 passed' if ok else '1 failed') + ' in 0.01s')\nsys.exit(0 if ok else 1)\n";

impl Project {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("shop");
        std::fs::create_dir(&repo).unwrap();
        let data = dir.path().join("data");
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .current_dir(&repo)
                .args(args)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["config", "user.name", "Ada Lovelace"]);
        git(&["config", "user.email", "ada@example.com"]);
        std::fs::write(repo.join("cart.py"), CART).unwrap();
        std::fs::write(repo.join("check.py"), CHECK).unwrap();
        std::fs::write(repo.join(".gitignore"), "__pycache__/\n*.log\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "the cart"]);
        let repo = std::fs::canonicalize(repo).unwrap();
        Self {
            _dir: dir,
            repo,
            data,
        }
    }

    fn devtrace(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .current_dir(&self.repo)
            .env("DEVTRACE_DATA", &self.data)
            // Wide enough for every table and sentence on one line.
            .env("COLUMNS", "200")
            .env_remove("DEVTRACE_CONFIG")
            .env_remove("DEVTRACE_SERVER")
            .env_remove("DEVTRACE_TOKEN")
            .env_remove("DEVTRACE_NO_REDACT")
            .env_remove("VISUAL")
            .env_remove("EDITOR")
            .args(args)
            .stdin(Stdio::null());
        command
    }

    fn ok(&self, args: &[&str]) -> Output {
        let output = self.devtrace(args);
        assert!(
            output.status.success(),
            "devtrace {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_slice(&self.ok(args).stdout).unwrap()
    }

    fn status(&self) -> Value {
        self.json(&["record", "status", "--json"])
    }

    /// Waits until the recorder has journaled `edits` edits.
    fn wait_for_edits(&self, edits: u64) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let status = self.status();
            if status["status"]["edits"].as_u64() == Some(edits) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "edits never reached {edits}: {status}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn write(&self, path: &str, text: &str) {
        std::fs::write(self.repo.join(path), text).unwrap();
    }
}

impl Drop for Project {
    /// A failed test must not leave a recorder running.
    fn drop(&mut self) {
        if let Ok(output) = Command::new(BIN)
            .env("DEVTRACE_DATA", &self.data)
            .args(["record", "status", "--json"])
            .output()
            && let Ok(status) = serde_json::from_slice::<Value>(&output.stdout)
            && let Some(pid) = status["status"]["pid"].as_u64()
        {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The exit code and the passed and failed counts of a shown session's recorded test results.
fn assert_test_results(shown: &Value, exit_code: i64, passed: u64, failed: u64) {
    let tests = &shown["recorded"]["test_results"];
    assert_eq!(
        (
            tests["exit_code"].as_i64(),
            tests["passed"].as_u64(),
            tests["failed"].as_u64()
        ),
        (Some(exit_code), Some(passed), Some(failed)),
        "{}",
        shown["recorded"]
    );
}

fn events_of<'a>(document: &'a Value, kind: &str) -> Vec<&'a Value> {
    document["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// Applies `patch` to a fresh checkout of `commit` and returns the checkout.
fn apply_to(repo: &Path, commit: &str, patch: &str, into: &Path) {
    let status = Command::new("git")
        .args(["clone", "-q"])
        .arg(repo)
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("git")
        .current_dir(into)
        .args(["checkout", "-q", commit])
        .status()
        .unwrap();
    assert!(status.success());
    let patch_file = into.join("../final.patch");
    std::fs::write(&patch_file, patch).unwrap();
    let output = Command::new("git")
        .current_dir(into)
        .args(["apply", "--binary"])
        .arg(&patch_file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the final patch does not apply: {}\n{patch}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_recording_from_start_to_stop_is_a_stored_session_with_its_patch_and_tests() {
    let project = Project::new();
    let head = String::from_utf8(
        Command::new("git")
            .current_dir(&project.repo)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    let started = project.ok(&[
        "record",
        "start",
        "--task",
        "fix the total of an empty cart",
        "--test-command",
        "python3 check.py",
    ]);
    let text = stderr(&started);
    let id = project.status()["status"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let expected_head = format!(
        "devtrace: recording session {} in {}\n  task:          \"fix the total of an empty cart\"\n  repository:    {} (branch main at {})\n  tests:         python3 check.py, run at `devtrace record stop` for the results\n",
        &id[..8],
        project.repo.display(),
        project.repo.display(),
        &head[..10]
    );
    assert!(text.starts_with(&expected_head), "{text}");
    for line in [
        "  captured:      commands typed in shells with the integration (line, directory, exit code, duration)\n",
        "                 saved files as diffs (1 directory watched; .gitignore respected)\n",
        "  not captured:  command output (unless run as `devtrace record exec -- COMMAND`), ignored files\n",
        "  privacy:       redaction on (keys, tokens, passwords, e-mail addresses); you appear as developer-",
        &format!(
            "  goes to:       the local store in {} at `devtrace record stop`\n",
            std::fs::canonicalize(&project.data).unwrap().display()
        ),
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }

    // A failing test run, captured with its output.
    let failed = project.devtrace(&["record", "exec", "--", "python3", "check.py"]);
    assert_eq!(
        failed.status.code(),
        Some(1),
        "exec keeps the command's exit code"
    );
    assert_eq!(
        String::from_utf8_lossy(&failed.stdout),
        "1 failed in 0.01s\n"
    );
    project.ok(&[
        "note",
        "an empty cart divides by zero; token ghp_abcdefghijklmnopqrstuvwxyz0123456789",
        "--tag",
        "debugging",
    ]);
    // The fix, and a new file.
    project.write(
        "cart.py",
        "def total(prices):\n    if not prices:\n        return 0\n    return sum(prices) / len(prices)\n",
    );
    project.wait_for_edits(1);
    project.write("NOTES.md", "empty carts total 0\n");
    project.write("debug.log", "ignored by .gitignore\n");
    project.wait_for_edits(2);
    let passed = project.devtrace(&["record", "exec", "--", "python3", "check.py"]);
    assert_eq!(passed.status.code(), Some(0));

    // Paused: commands and saves are not recorded; notes are.
    let paused = project.json(&["record", "pause", "--json"]);
    assert_eq!(paused["paused"], true);
    assert_eq!(paused["session"], id, "{paused}");
    assert_eq!(project.status()["state"], "paused");
    let paused = project.devtrace(&["record", "exec", "--", "true"]);
    assert_eq!(
        stderr(&paused),
        "devtrace: recording is paused: the command was not recorded\n"
    );
    project.write(
        "NOTES.md",
        "empty carts total 0\nprivate thought while paused\n",
    );
    std::thread::sleep(Duration::from_millis(600));
    let resumed = project.ok(&["record", "resume"]);
    assert_eq!(stderr(&resumed), "devtrace: recording again\n");
    project.write(
        "NOTES.md",
        "empty carts total 0\nprivate thought while paused\nback\n",
    );
    project.wait_for_edits(3);

    let output = project.ok(&["record", "stop", "--json", "--output", "../session.json"]);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        summary["commands"], 2,
        "the paused one is not recorded: {summary}"
    );
    assert_eq!(summary["edits"], 3);
    assert_eq!(summary["notes"], 1);
    assert_eq!(summary["test_results"]["passed"], 1);
    assert_eq!(summary["test_results"]["failed"], 0);
    assert_eq!(summary["test_results"]["runner"], "pytest");
    assert_eq!(summary["final_patch"]["files"], 2);
    let text = stderr(&output);
    assert!(
        text.contains(&format!("  see it: devtrace session show {}\n", &id[..8])),
        "{text}"
    );

    let document: Value =
        serde_json::from_slice(&std::fs::read(project.repo.join("../session.json")).unwrap())
            .unwrap();
    assert_eq!(document["version"], "trace-1.0.0");
    assert_eq!(document["trace_id"], id.as_str());
    assert_eq!(document["task"]["commit"], head.as_str());
    assert_eq!(document["task"]["branch"], "main");
    assert_eq!(document["task"]["test_command"], "python3 check.py");
    let developer = document["developer"]["name"].as_str().unwrap();
    assert!(developer.starts_with("developer-"), "hashed: {developer}");
    assert!(!document.to_string().contains("ada@example.com"));
    assert!(!document.to_string().contains("Ada Lovelace"));
    let commands = events_of(&document, "terminal_command");
    assert_eq!(commands[0]["exit_code"], 1);
    assert_eq!(commands[0]["stdout"], "1 failed in 0.01s\n");
    assert_eq!(commands[1]["exit_code"], 0);
    let notes = events_of(&document, "thought");
    assert_eq!(
        notes[0]["raw"],
        "an empty cart divides by zero; token [REDACTED:github_token]"
    );
    assert_eq!(notes[0]["tags"], serde_json::json!(["debugging"]));
    let edits = events_of(&document, "edit");
    let paths: Vec<&str> = edits
        .iter()
        .map(|e| e["file_path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["cart.py", "NOTES.md", "NOTES.md"]);
    assert_eq!(edits[0]["op"], "replace");
    assert_eq!(edits[0]["language"], "python");
    assert!(
        edits[0]["patch_unified"]
            .as_str()
            .unwrap()
            .contains("+    if not prices:\n+        return 0\n"),
        "{}",
        edits[0]
    );
    assert_eq!(edits[1]["op"], "create");
    // The edit after the pause diffs against the file as it was on resume.
    assert_eq!(
        edits[2]["patch_unified"].as_str().unwrap(),
        "diff --git a/NOTES.md b/NOTES.md\n--- a/NOTES.md\n+++ b/NOTES.md\n@@ -1,2 +1,3 @@\n empty carts total 0\n private thought while paused\n+back\n"
    );
    let kinds: Vec<&str> = document["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .filter(|k| k.starts_with("recording_"))
        .collect();
    assert_eq!(kinds, ["recording_paused", "recording_resumed"]);

    // The final patch takes the start commit to the working tree, new files included.
    let checkout = project.repo.join("../checkout");
    apply_to(
        &project.repo,
        &head,
        document["artifacts"]["final_patch"].as_str().unwrap(),
        &checkout,
    );
    for file in ["cart.py", "NOTES.md", "check.py"] {
        assert_eq!(
            std::fs::read(checkout.join(file)).unwrap(),
            std::fs::read(project.repo.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(
        !checkout.join("debug.log").exists(),
        "ignored files stay out"
    );

    // In the store like any session.
    let sessions = project.json(&["sessions", "--json"]);
    let listed = &sessions.as_array().unwrap()[0];
    assert_eq!(listed["agent"], "developer");
    assert_eq!(listed["title"], "fix the total of an empty cart");
    assert_eq!(listed["errors"], 1, "the failing test run");
    // What the person did, in place of an agent's numbers (all zero for a person).
    assert_eq!(
        listed["recorded"],
        serde_json::json!({
            "developer": developer,
            "activity": {"commands": 2, "failed_commands": 1, "edits": 3, "files_edited": 2, "notes": 1},
            "patch_files": 2,
            "lines_added": 5,
            "lines_removed": 0,
            "tests": {"command": "python3 check.py", "exit_code": 0, "passed": 1, "failed": 0, "skipped": 0, "runner": "pytest", "duration_ms": listed["recorded"]["tests"]["duration_ms"]},
        })
    );
    let text = String::from_utf8(project.ok(&["sessions"]).stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    let cells: Vec<&str> = lines[1]
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let findings = listed["findings"].to_string();
    assert_eq!(
        (cells[1], &cells[4..]),
        (
            "developer",
            &[
                "-",
                "-",
                "-",
                "-",
                "1",
                &findings,
                &id[..8],
                "fix the total of an empty cart"
            ][..]
        ),
        "no turns, tool calls, tokens or cost for a person: {text}"
    );
    assert_eq!(
        lines[2],
        format!(
            "  ↳ recorded by {developer}: 2 commands (1 failed), 3 edits in 2 files, 1 note; final patch 2 files (+5 −0); tests 1 passed, 0 failed, 0 skipped (pytest, exit code 0)"
        ),
        "{text}"
    );
    let shown = project.json(&["session", "show", &id[..8], "--json"]);
    let timeline = shown["timeline"].as_array().unwrap();
    let command = timeline.iter().find(|e| e["action"] == "command").unwrap();
    assert_eq!(command["exit_code"], 1);
    assert_eq!(command["command"], "python3 check.py");
    assert!(
        timeline.iter().any(|e| e["action"] == "edit"
            && e["diff"]
                .as_str()
                .is_some_and(|d| d.contains("+        return 0"))),
        "{shown}"
    );
    assert!(
        shown["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["title"].as_str().unwrap_or("").contains("not read first")),
        "a person's saves are not blind edits: {}",
        shown["findings"]
    );
    // The recording is gone from the data directory; nothing is open.
    assert_eq!(project.status()["state"], "none");
    assert!(!project.data.join("record/active").exists());
    assert_eq!(
        std::fs::read_dir(project.data.join("record/sessions"))
            .unwrap()
            .count(),
        0
    );

    // QA takes it like any session: the final patch on the start commit, the test command
    // before and after, in the sandbox.
    let qa = project.devtrace(&["qa", "run", &id[..8], "--wait", "--no-llm"]);
    assert_eq!(qa.status.code(), Some(0), "{}", stderr(&qa));
    let text = String::from_utf8(qa.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        format!("QA of session {}", id.replace('-', "")),
        "{text}"
    );
    assert_eq!(
        lines[1],
        "verdict: resolved: the tests fail at the base commit and pass with the patch; patch from artifacts.final_patch applied by git apply",
        "{text}"
    );
    assert_eq!(
        lines[3],
        "patch: from artifacts.final_patch (1 piece), applied by git apply (confidence 1.0); files: NOTES.md, cart.py",
        "{text}"
    );
    assert_eq!(lines[4], "tests: python3 check.py with the sandbox runner");
}

#[test]
fn a_killed_recorder_loses_nothing_and_start_offers_to_resume_or_close() {
    let project = Project::new();
    project.ok(&[
        "record",
        "start",
        "--task",
        "first",
        "--test-command",
        "python3 check.py",
    ]);
    project.ok(&["note", "before the crash"]);
    project.ok(&["record", "exec", "--", "python3", "-c", "print('ran')"]);
    project.write("cart.py", "def total(prices):\n    return sum(prices)\n");
    project.wait_for_edits(1);
    let pid = project.status()["status"]["pid"].as_u64().unwrap();
    let killed = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while project.status()["state"] != "orphaned" {
        assert!(Instant::now() < deadline, "the recorder did not die");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Saved while no recorder runs: found when it resumes.
    project.write(
        "cart.py",
        "def total(prices):\n    return sum(prices) if prices else 0\n",
    );

    let text = String::from_utf8(project.ok(&["record", "status"]).stdout).unwrap();
    let id = {
        let status = project.status();
        status["id"].as_str().unwrap().to_owned()
    };
    assert_eq!(
        text,
        format!(
            "session {} was left open: its recorder is not running (3 events recorded before it stopped).\n\
             Resume it with `devtrace record start --orphan resume`, or store it with `devtrace record stop`.\n",
            &id[..8]
        )
    );
    let refused = project.devtrace(&["note", "lost?"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        stderr(&refused),
        format!(
            "error: the recorder of session {} is not running: resume it with `devtrace record start --orphan resume` (or store it with `devtrace record stop`)\n",
            &id[..8]
        )
    );
    // Without a terminal, start must be told what to do; it changes nothing.
    let undecided = project.devtrace(&["record", "start", "--task", "second"]);
    assert_eq!(undecided.status.code(), Some(1));
    let message = stderr(&undecided);
    assert!(
        message.starts_with(&format!(
            "error: a recording was left open by a recorder that is no longer running: session {} (\"first\") in {}",
            &id[..8],
            project.repo.display()
        )),
        "{message}"
    );
    assert!(message.contains("`devtrace record start --orphan resume` (go on recording it), `--orphan close` (store what was recorded, then start anew) or `--orphan discard`"), "{message}");
    assert_eq!(project.status()["state"], "orphaned");

    let resumed = project.ok(&["record", "start", "--orphan", "resume"]);
    assert!(
        stderr(&resumed).starts_with(&format!(
            "devtrace: resumed recording session {} in {} (1 command, 2 edits, 1 note so far)",
            &id[..8],
            project.repo.display()
        )),
        "{}",
        stderr(&resumed)
    );
    project.ok(&["note", "after the crash"]);

    // Killed again, then closed by the next start, which begins a new recording.
    let pid = project.status()["status"]["pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    while project.status()["state"] != "orphaned" {
        std::thread::sleep(Duration::from_millis(20));
    }
    let closed = project.ok(&[
        "record", "start", "--task", "second", "--orphan", "close", "--json",
    ]);
    let second: Value = serde_json::from_slice(&closed.stdout).unwrap();
    assert_ne!(second["session"], id.as_str());
    assert!(
        stderr(&closed).contains(&format!("devtrace: session {} stored in ", &id[..8])),
        "{}",
        stderr(&closed)
    );
    project.ok(&["record", "stop"]);

    let shown = project.json(&["session", "show", &id[..8], "--json"]);
    // Closing it ran the test command with stop's own time limit (10 min), not none.
    assert_test_results(&shown, 0, 1, 0);
    let timeline = shown["timeline"].as_array().unwrap();
    let labels: Vec<String> = timeline
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap_or(""),
                e["path"].as_str().or(e["text"].as_str()).unwrap_or("")
            )
        })
        .collect();
    let notes: Vec<&str> = timeline
        .iter()
        .filter(|e| e["action"] == "note")
        .map(|e| e["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(notes, ["before the crash", "after the crash"], "{labels:?}");
    assert_eq!(
        timeline.iter().filter(|e| e["action"] == "command").count(),
        1,
        "{labels:?}"
    );
    let edits: Vec<&Value> = timeline.iter().filter(|e| e["action"] == "edit").collect();
    assert_eq!(
        edits.len(),
        2,
        "the save before the kill and the one while dead: {labels:?}"
    );
    assert!(
        edits[1]["diff"]
            .as_str()
            .unwrap()
            .contains("-    return sum(prices)\n+    return sum(prices) if prices else 0\n"),
        "{}",
        edits[1]
    );
    let sessions = project.json(&["sessions", "--json"]);
    assert_eq!(sessions.as_array().unwrap().len(), 2);
}

#[test]
fn errors_name_the_problem_and_the_fix() {
    let project = Project::new();
    let outside = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .current_dir(outside.path())
        .env("DEVTRACE_DATA", &project.data)
        .args(["record", "start", "--task", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: {} is not inside a git working tree: run `git init` there, or start in a repository\n",
            outside.path().display()
        )
    );
    let stop = project.devtrace(&["record", "stop"]);
    assert_eq!(
        (stop.status.code(), stderr(&stop).as_str()),
        (
            Some(1),
            "error: not recording: there is nothing to stop (start with `devtrace record start`)\n"
        )
    );
    let note = project.devtrace(&["note", "hello"]);
    assert_eq!(
        stderr(&note),
        "error: not recording: start with `devtrace record start --task \"…\"`\n"
    );
    let bare = project.devtrace(&["record"]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(stderr(&bare).contains("`devtrace record start --task \"…\"`"));
    assert_eq!(
        String::from_utf8(project.ok(&["record", "status"]).stdout).unwrap(),
        "not recording (start with `devtrace record start --task \"…\"`)\n"
    );
    let exec = project.devtrace(&["record", "exec", "--", "sh", "-c", "exit 7"]);
    assert_eq!(exec.status.code(), Some(7));
    assert_eq!(
        stderr(&exec),
        "devtrace: not recording: running the command without recording it\n"
    );

    project.ok(&["record", "start", "--no-watch"]);
    let again = project.devtrace(&["record", "start"]);
    let id = project.status()["status"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        stderr(&again),
        format!(
            "error: already recording session {} in {}: see `devtrace record status`, or end it with `devtrace record stop` first\n",
            &id[..8],
            project.repo.display()
        )
    );
    assert_eq!(project.status()["status"]["watching"], false);
    let script = String::from_utf8(project.ok(&["record", "shell-init", "zsh"]).stdout).unwrap();
    let active = std::fs::canonicalize(&project.data)
        .unwrap()
        .join("record/active");
    assert!(
        script.contains(&format!("__devtrace_active='{}'", active.display())),
        "{script}"
    );
    project.ok(&["record", "stop"]);
}

#[test]
fn a_recording_can_go_to_a_server_instead_of_the_local_store() {
    let project = Project::new();
    let server_data = project.repo.join("../server-data");
    std::fs::create_dir_all(&server_data).unwrap();
    let server = common::Server::start(&server_data);
    let url = format!("http://{}", server.api);
    let started = project.ok(&["record", "start", "--task", "shared", "--server", &url]);
    assert!(
        stderr(&started).contains(&format!(
            "  goes to:       the devtrace server {url} at `devtrace record stop`\n"
        )),
        "{}",
        stderr(&started)
    );
    project.ok(&["note", "for the team"]);
    let stopped = project.ok(&["record", "stop"]);
    let id = String::from_utf8_lossy(&stopped.stderr).into_owned();
    assert!(
        id.contains(&format!("sent to {url}: 0 commands, 0 edits, 1 note")),
        "{id}"
    );
    // Nothing in the local store; the server has it.
    let local = project.devtrace(&["sessions", "--json"]);
    assert!(
        stderr(&local).starts_with("error: no devtrace store at"),
        "{}",
        stderr(&local)
    );
    let listed = common::devtrace(&server_data, &["sessions", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["title"], "shared");
    assert_eq!(listed[0]["agent"], "developer");
    server.stop();

    // A server that is not there: the document is kept, and stop can be tried again.
    project.ok(&["record", "start", "--task", "offline", "--no-watch"]);
    let failed = project.devtrace(&["record", "stop", "--server", "http://127.0.0.1:9"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stderr(&failed).starts_with(
            "error: cannot reach http://127.0.0.1:9: connection refused: is `devtrace serve` running there"
        ),
        "{}",
        stderr(&failed)
    );
    assert_eq!(
        project.status()["state"],
        "orphaned",
        "kept for another try"
    );
    let retried = project.ok(&["record", "stop"]);
    assert!(
        stderr(&retried).contains("stored in"),
        "{}",
        stderr(&retried)
    );
    let local = project.json(&["sessions", "--json"]);
    assert_eq!(local[0]["title"], "offline");
}

/// The session document goes to an https server through devtrace's own TLS client: no curl
/// is needed (the PATH here has none), and the server's self-signed certificate is trusted
/// through --ca-cert, without which the send fails saying so and the document is kept.
#[test]
fn a_recording_goes_to_an_https_server_without_curl() {
    let project = Project::new();
    let tls = project.repo.join("../tls");
    let bin = tls.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (tls.join("cert.pem"), tls.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    // The programs a recording runs, and no curl.
    let path = std::env::var("PATH").unwrap();
    for tool in ["git", "sh", "bash", "python3"] {
        if let Some(found) = path
            .split(':')
            .map(|dir| Path::new(dir).join(tool))
            .find(|p| p.is_file())
        {
            std::os::unix::fs::symlink(found, bin.join(tool)).unwrap();
        }
    }
    assert!(!bin.join("curl").exists());
    let server_data = project.repo.join("../server-data");
    std::fs::create_dir_all(&server_data).unwrap();
    let server = common::start_server_with(
        &server_data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    let url = format!("https://localhost:{}", server.api.port());
    let without_curl = |args: &[&str]| {
        project
            .command(args)
            .env("PATH", &bin)
            .env_remove("DEVTRACE_CA_CERT")
            .output()
            .unwrap()
    };
    let started = without_curl(&[
        "record",
        "start",
        "--task",
        "secure",
        "--no-watch",
        "--server",
        &url,
    ]);
    assert!(started.status.success(), "{}", stderr(&started));
    project.ok(&["note", "over tls"]);

    // Not trusted: the send fails, naming the server and the flag that fixes it.
    let untrusted = without_curl(&["record", "stop"]);
    assert_eq!(untrusted.status.code(), Some(1));
    let text = stderr(&untrusted);
    assert!(
        text.starts_with(&format!("error: cannot reach {url}: TLS failed: "))
            && text.contains("--ca-cert FILE"),
        "{text}"
    );
    assert_eq!(
        project.status()["state"],
        "orphaned",
        "kept for another try"
    );

    let stopped = without_curl(&["record", "stop", "--ca-cert", cert.to_str().unwrap()]);
    assert!(stopped.status.success(), "{}", stderr(&stopped));
    assert!(
        stderr(&stopped).contains(&format!("sent to {url}: 0 commands, 0 edits, 1 note")),
        "{}",
        stderr(&stopped)
    );
    let listed = common::devtrace(&server_data, &["sessions", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["title"], "secure");
}

#[test]
fn record_dash_dash_shell_records_that_shell_and_stops_when_it_exits() {
    let project = Project::new();
    let mut child = Command::new(BIN)
        .current_dir(&project.repo)
        .env("DEVTRACE_DATA", &project.data)
        .env_remove("DEVTRACE_CONFIG")
        .env("HOME", project.repo.join(".."))
        .args([
            "record",
            "--task",
            "one shell",
            "--no-watch",
            "--test-command",
            "python3 check.py",
            "--",
            "bash",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        // Outside the working tree too: this shell is the recording's wherever it goes.
        stdin
            .write_all(b"python3 -c 'import sys; sys.exit(5)'\ncd /\necho done\nexit 3\n")
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3), "the shell's exit code");
    let text = stderr(&output);
    assert!(
        text.contains("devtrace: running bash; the recording stops when it exits\n"),
        "{text}"
    );
    assert!(text.contains(" stored in "), "{text}");
    let sessions = project.json(&["sessions", "--json"]);
    let id = sessions[0]["trace_id"].as_str().unwrap().to_owned();
    let shown = project.json(&["session", "show", &id[..8], "--json"]);
    let commands: Vec<(String, i64)> = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "command")
        .map(|e| {
            (
                e["command"].as_str().unwrap().to_owned(),
                e["exit_code"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    // The test command ran when the shell exited, within stop's own time limit.
    assert_test_results(&shown, 1, 0, 1);
    assert_eq!(
        commands,
        [
            ("python3 -c 'import sys; sys.exit(5)'".to_owned(), 5),
            ("cd /".to_owned(), 0),
            ("echo done".to_owned(), 0)
        ]
    );
}

#[test]
fn ask_every_bumps_the_reminder_the_hooks_show() {
    let project = Project::new();
    project.ok(&["record", "start", "--no-watch", "--ask-every", "1s"]);
    let ask = project.data.join("record/active/ask");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&ask).ok().as_deref() != Some("1\n") {
        assert!(Instant::now() < deadline, "no reminder after 1 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    project.ok(&["record", "stop"]);
}
