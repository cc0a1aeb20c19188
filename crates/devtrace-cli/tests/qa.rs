//! `devtrace qa` end to end: the binary, a real store, real git repositories, the bubblewrap
//! sandbox, and a real `devtrace serve` — including one killed with SIGKILL in the middle of a
//! job, after which the restarted server completes the job exactly once.

mod common;

use common::{
    devtrace_wide as devtrace, failing_sum_repository as repository, start_server_with, stderr,
    stdout, sum_session_document as document,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Setup {
    dir: tempfile::TempDir,
    data: PathBuf,
    repo: PathBuf,
    head: String,
    patch: String,
}

fn setup() -> Setup {
    assert!(
        Command::new("bwrap").arg("--version").output().is_ok(),
        "these tests need bubblewrap: apt-get install bubblewrap (scripts/test installs it)"
    );
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let data = dir.path().join("data");
    let repo = dir.path().join("repo");
    let (head, patch) = repository(&repo);
    Setup {
        dir,
        data,
        repo,
        head,
        patch,
    }
}

impl Setup {
    fn import(&self, id: &str, command: &str, patch: &str) {
        let file = self.dir.path().join(format!("{id}.json"));
        let doc = document(id, &self.repo, &self.head, command, patch);
        std::fs::write(&file, doc.to_string()).unwrap();
        let output = devtrace(&self.data, &["import", file.to_str().unwrap()]);
        assert!(output.status.success(), "{}", stderr(&output));
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = devtrace(&self.data, args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    }
}

const A: &str = "a0000000-0000-4000-8000-00000000000a";
const B: &str = "b0000000-0000-4000-8000-00000000000b";

#[test]
fn qa_run_wait_runs_the_job_here_and_every_view_reads_it() {
    let s = setup();
    s.import(A, "node --test", &s.patch);

    // Queued, with no server: says how it will run.
    let output = devtrace(&s.data, &["qa", "run", "a0000000"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "queued QA job 1 for session a000000000004000800000000000000a\n\
             no devtrace serve is running on {}: it runs when one starts, or now with `devtrace qa run a0000000 --wait`\n",
            s.data.display()
        )
    );
    let output = devtrace(&s.data, &["qa", "run", "a0000000", "--wait"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "running QA job 1 here (no devtrace serve is running)…\n"
    );
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "QA of session a000000000004000800000000000000a");
    assert_eq!(
        lines[1],
        "verdict: resolved: fixed \"adds\"; patch from artifacts.final_patch applied by git apply"
    );
    assert_eq!(
        lines[3],
        "patch: from artifacts.final_patch (1 piece), applied by git apply (confidence 1.0); files: sum.js"
    );
    assert_eq!(lines[4], "tests: node --test with the sandbox runner");
    assert!(lines[5].starts_with("  base     exit 1 in "), "{text}");
    assert!(
        lines[5].contains("node: 1 passed, 1 failed, 0 skipped"),
        "{text}"
    );
    assert!(
        lines[6].contains("node: 2 passed, 0 failed, 0 skipped"),
        "{text}"
    );
    assert_eq!(lines[7], "  fixed: adds");
    assert!(
        lines[8].starts_with("judge devtrace-evidence/v1 (rubric v1): overall "),
        "{text}"
    );

    let status = s.json(&["qa", "status", "--json"]);
    assert_eq!(status["counts"], json!({"done": 1}));
    assert_eq!(status["jobs"][0]["verdict"], "resolved");
    // The text: a table that fits 60 columns column by column (runner and tries left out).
    let table = |columns: usize| {
        stdout(&common::devtrace_at_width(
            &s.data,
            columns,
            &["qa", "status"],
        ))
    };
    let wide = table(200);
    let header: Vec<&str> = wide.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "JOB", "STATE", "SESSION", "RUNNER", "TRIES", "VERDICT", "WHEN"
        ]
    );
    let row: Vec<&str> = wide.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(
        row[..6],
        ["1", "done", "a0000000", "sandbox", "1/3", "resolved"],
        "{wide}"
    );
    let narrow = table(60);
    assert_eq!(
        narrow.lines().next(),
        Some("QA jobs: 0 queued, 0 running, 1 done, 0 failed, 0 cancelled")
    );
    let row = narrow.lines().nth(2).unwrap();
    assert!(
        row.starts_with("  1  done   a0000000  resolved  finished "),
        "{narrow}"
    );
    assert!(narrow.lines().all(|l| l.chars().count() <= 60), "{narrow}");
    let shown = s.json(&["qa", "show", "a0000000", "--json"]);
    assert_eq!(shown["result"]["comparison"]["fixed"], json!(["adds"]));
    assert_eq!(shown["result"]["tests"]["command"], "node --test");

    // trace-1.0.0 export carries the qa block, and imports elsewhere with it.
    let elsewhere = s.dir.path().join("elsewhere");
    let exported = s.dir.path().join("exported.json");
    let output = devtrace(
        &s.data,
        &[
            "export",
            "a0000000",
            "--format",
            "trace-1.0.0",
            "-o",
            exported.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert_eq!(doc["qa"]["tests"]["ok"], true);
    assert_eq!(doc["qa"]["judge"]["model"], "devtrace-evidence/v1");
    let output = devtrace(&elsewhere, &["import", exported.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let copied = serde_json::from_str::<Value>(&stdout(&devtrace(
        &elsewhere,
        &["qa", "show", "a0000000", "--json"],
    )))
    .unwrap();
    assert_eq!(copied["jobs"], json!([]));
    assert_eq!(copied["recorded"]["source"], "document");
    assert_eq!(copied["recorded"]["tests"], doc["qa"]["tests"]);

    // OTLP export carries the qa span; imported elsewhere, it is read back.
    let otlp = s.dir.path().join("otlp.json");
    let output = devtrace(
        &s.data,
        &["export", "a0000000", "-o", otlp.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let third = s.dir.path().join("third");
    let output = devtrace(&third, &["import", otlp.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let output = devtrace(&third, &["show", "a0000000", "--json"]);
    let spans: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(
        spans.to_string().contains("gen_ai.evaluation.result"),
        "the evaluation events travel with the trace"
    );
    assert!(spans.to_string().contains("devtrace.qa.tests.ok"));

    // A session that was not a document cannot be exported as one.
    let output = devtrace(&s.data, &["export", "ffffffff", "--format", "trace-1.0.0"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn exit_codes_cancel_retry_and_errors_name_what_is_wrong() {
    let s = setup();
    let broken = s.patch.replace(
        "+module.exports = (a, b) => a + b;",
        "+module.exports = (a, b) => a + b + (b === 0 ? 1 : 0);",
    );
    s.import(A, "node --test", &broken);
    let output = devtrace(&s.data, &["qa", "run", A, "--wait", "--json"]);
    assert_eq!(
        output.status.code(),
        Some(3),
        "broke a test: {}",
        stderr(&output)
    );
    let qa: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(qa["result"]["verdict"], "broke_tests");
    assert_eq!(qa["result"]["comparison"]["broken"], json!(["adds zero"]));

    s.import(B, "node --test", "diff --git a/sum.js b/sum.js\n--- a/sum.js\n+++ b/sum.js\n@@ -1 +1 @@\n-exports.nothing = 1;\n+exports.nothing = 2;\n");
    let output = devtrace(&s.data, &["qa", "run", "b0000000", "--wait"]);
    assert_eq!(output.status.code(), Some(1), "the patch does not apply");
    assert!(
        stdout(&output).contains("rejected in sum.js:\n    @@ -1 +1 @@"),
        "{}",
        stdout(&output)
    );

    // Retry by session: a new job, marked as a retry of the last.
    let output = devtrace(&s.data, &["qa", "retry", "b0000000", "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let retried: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(retried["job"]["retry_of"], 2);
    assert_eq!(retried["job"]["state"], "queued");
    let output = devtrace(&s.data, &["qa", "cancel", "b0000000"]);
    assert_eq!(stdout(&output), "cancelled QA job 3\n");
    let output = devtrace(&s.data, &["qa", "cancel", "1"]);
    assert_eq!(stdout(&output), "QA job 1 had already ended (done)\n");

    // Runtime failures exit 1, usage errors 2 (docs/cli.md).
    for (args, code, message) in [
        (
            &["qa", "run", "ffffffff"][..],
            1,
            "error: no session matches \"ffffffff\": a session is named by its trace id (32 hex characters, or a unique prefix of 8 or more, e.g. 4bf92f35) or by the agent's own session id (a UUID such as 4bf92f35-77b3-4da6-a3ce-929d0e0e4736); `devtrace sessions` lists them",
        ),
        (
            &["qa", "cancel", "99"][..],
            1,
            "error: no QA job 99: `devtrace qa status` lists them",
        ),
        (
            &["qa", "status", "--state", "sleeping"][..],
            2,
            "error: invalid value 'sleeping' for '--state <STATE>': \"sleeping\": use queued, running, done, failed or cancelled",
        ),
        (
            &["qa", "run", A, "--memory", "10"][..],
            2,
            "error: --memory: 10 MiB is too little: at least 64",
        ),
        (
            &["qa", "cancel", "a0000000"][..],
            1,
            "error: session a000000000004000800000000000000a has no queued or running QA job",
        ),
    ] {
        let output = devtrace(&s.data, args);
        assert_eq!(output.status.code(), Some(code), "{args:?}");
        assert!(
            stderr(&output).starts_with(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    let status = s.json(&["qa", "status", "--json", "--state", "failed,cancelled"]);
    let ids: Vec<i64> = status["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2]);
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn serve_checks_uploads_and_a_job_killed_with_its_server_completes_exactly_once() {
    let s = setup();
    let marker = format!("7{}", std::process::id());
    // The base run takes a while: long enough to kill the server in the middle of it.
    let command = format!("sleep 1.{marker}; node --test");
    let server = start_server_with(&s.data, &["--qa"], &[]);
    let doc = document(A, &s.repo, &s.head, &command, &s.patch);
    let url = format!("http://{}/api/v1/sessions", server.api);
    let response = ureq_post(&url, &doc);
    assert_eq!(response, 201);
    // --qa queued it on upload; the server's worker starts it.
    wait_until("the job to start", || {
        let status = s.json(&["qa", "status", "--json"]);
        status["jobs"][0]["state"] == "running"
    });
    wait_until("the base run to start", || sleeping(&marker));
    let killed = server_pid(&s.data);
    let mut server = server;
    server.kill();
    // The sandbox went down with its server: nothing of the run is left.
    wait_until("the sandbox to go", || !sleeping(&marker));
    let stuck = s.json(&["qa", "status", "--json"]);
    assert_eq!(
        stuck["jobs"][0]["state"], "running",
        "no one recorded an end"
    );

    let server = start_server_with(&s.data, &[], &[]);
    wait_until(
        "the job to finish and its result to reach the session",
        || {
            let status = s.json(&["qa", "status", "--json"]);
            status["jobs"][0]["state"] == "done" && status["jobs"][0]["written_to_session"] == true
        },
    );
    // The killed server's process-count cgroup (when it could make one) is cleaned up too.
    let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup/pids")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(&format!("devtrace-qa-{killed}-")))
        .collect();
    assert!(left.is_empty(), "cgroups left behind: {left:?}");
    let status = s.json(&["qa", "status", "--json"]);
    assert_eq!(status["counts"], json!({"done": 1}), "one job");
    let job = &status["jobs"][0];
    assert_eq!(job["attempts"], 2, "picked up again after the kill");
    assert_eq!(job["verdict"], "resolved");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("stopped while the job ran"),
        "{job}"
    );

    // Its result is in the session exactly once: one qa span, one set of evaluation events.
    let output = devtrace(&s.data, &["show", "a0000000", "--json"]);
    let shown = stdout(&output);
    assert_eq!(shown.matches("\"qa resolved\"").count(), 1, "one qa span");
    let db = rusqlite::Connection::open(s.data.join("devtrace.db")).unwrap();
    let logs: i64 = db
        .query_row("SELECT coalesce(sum(count), 0) FROM log_chunks", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(logs, 7, "six criteria and overall, written once");

    // `qa run` with a server running goes through its API and its workers.
    let output = devtrace(
        &s.data,
        &[
            "qa", "run", "a0000000", "--runner", "local", "--wait", "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let qa: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(qa["jobs"][0]["runner"], "local");
    assert!(
        qa["jobs"][0]["worker"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}:", server_pid(&s.data)))
    );
    server.stop();
}

fn sleeping(marker: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", &format!("sleep 1.{marker}")])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty())
}

fn server_pid(data: &Path) -> u64 {
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("serve.json")).unwrap()).unwrap();
    info["pid"].as_u64().unwrap()
}

/// POSTs JSON over plain HTTP/1.1; returns the status.
fn ureq_post(url: &str, body: &Value) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    agent
        .post(url)
        .header("content-type", "application/json")
        .send(body.to_string())
        .unwrap()
        .status()
        .as_u16()
}
