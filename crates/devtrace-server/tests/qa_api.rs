//! The QA REST endpoints through the real router over a real store, group-commit writer and
//! worker pool: a session posted to a server checking sessions on upload is tested (with the
//! local runner, on a git repository made here) and its result read back every way; cancel,
//! retry, the summary, and errors naming what was wrong.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use devtrace_ingest::redact::Redactor;
use devtrace_qa::worker::{QaHandle, WorkerConfig, Workers};
use devtrace_qa::{QaContext, QaOptions, RunnerKind};
use devtrace_server::api::router;
use devtrace_server::guard::AllowedHosts;
use devtrace_server::state::{ApiState, IngestRate};
use devtrace_store::Store;
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::writer::{Writer, WriterConfig};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

struct Api {
    dir: tempfile::TempDir,
    _stop: tokio::sync::watch::Sender<bool>,
    _writer: Writer,
    workers: Option<Workers>,
    router: axum::Router,
}

impl Api {
    /// A server with `workers` QA workers (0: none, and no QA handle) checking uploads.
    fn new(workers: usize) -> Self {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let data = dir.path().join("data");
        let writer = Writer::start(
            Box::new(SqliteWriter::open(&data).unwrap()),
            WriterConfig::default(),
        );
        let store = Arc::new(SqliteStore::open(&data).unwrap());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let (pool, handle) = if workers > 0 {
            let ctx = QaContext::in_data_dir(
                &data,
                store.clone() as Arc<dyn Store>,
                Arc::new(writer.handle()),
                Arc::new(Redactor::builtin()),
                None,
            );
            let pool = Workers::start(
                Arc::new(ctx),
                WorkerConfig {
                    workers,
                    ..Default::default()
                },
            );
            let defaults = QaOptions {
                runner: RunnerKind::Local,
                timeout_secs: 60,
                ..Default::default()
            };
            let handle = QaHandle::new(defaults, true, &pool);
            (Some(pool), Some(handle))
        } else {
            (None, None)
        };
        let router = router(
            ApiState {
                mcp: devtrace_server::mcp_http::McpHttp::new(
                    store.clone(),
                    None,
                    "127.0.0.1:4319".parse().unwrap(),
                ),
                store: store.clone(),
                writer: writer.handle(),
                rate: IngestRate::start(writer.handle()),
                traces: Default::default(),
                stopping,
                redactor: Arc::new(Redactor::builtin()),
                auth: devtrace_server::auth::Auth::off(Arc::new(devtrace_server::auth::NoAccounts)),
                feed: Arc::new(writer.handle()),
                secure_cookies: false,
                principal: None,
                qa: handle,
            },
            AllowedHosts::new(([127, 0, 0, 1], 4319).into(), &[]),
        );
        Self {
            dir,
            _stop: stop,
            _writer: writer,
            workers: pool,
            router,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:4319")
            .header("content-type", "application/json")
            .body(Body::from(body.unwrap_or("").to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, value)
    }

    /// Polls the session's QA until its newest job has finished and its result is in the
    /// session.
    async fn finished(&self, session: &str) -> Value {
        for _ in 0..600 {
            let (status, qa) = self
                .call("GET", &format!("/api/v1/sessions/{session}/qa"), None)
                .await;
            assert_eq!(status, StatusCode::OK, "{qa}");
            if qa["jobs"][0]["written_to_session"] == true {
                return qa;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the job did not finish");
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(workers) = self.workers.take() {
            workers.shutdown();
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "T")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A repository whose one test fails, and the patch that fixes it.
fn repository(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir.join("test")).unwrap();
    git(dir, &["init", "--quiet"]);
    std::fs::write(dir.join("sum.js"), "module.exports = (a, b) => a - b;\n").unwrap();
    std::fs::write(
        dir.join("test/sum.test.js"),
        "const test = require('node:test');\nconst assert = require('node:assert');\nconst sum = require('../sum.js');\ntest('adds', () => assert.strictEqual(sum(2, 3), 5));\n",
    )
    .unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "sum"]);
    let head = git(dir, &["rev-parse", "HEAD"]);
    std::fs::write(dir.join("sum.js"), "module.exports = (a, b) => a + b;\n").unwrap();
    let patch = git(dir, &["diff"]);
    git(dir, &["checkout", "--quiet", "--", "."]);
    (head, format!("{patch}\n"))
}

fn document(id: &str, repository: &Path, commit: &str, patch: &str) -> Value {
    json!({
        "trace_id": id,
        "version": "trace-1.0.0",
        "task": {"description": "Make sum add", "repository": repository, "commit": commit, "test_command": "node --test"},
        "events": [
            {"t": "2026-01-05T10:00:00Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 1},
            {"t": "2026-01-05T10:00:10Z", "type": "file_opened", "file_path": "sum.js"},
            {"t": "2026-01-05T10:00:20Z", "type": "edit", "file_path": "sum.js"},
            {"t": "2026-01-05T10:00:30Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 0}
        ],
        "artifacts": {"final_patch": patch}
    })
}

const SESSION: &str = "a0000000-0000-4000-8000-000000000001";
const TRACE: &str = "a0000000000040008000000000000001";

#[tokio::test(flavor = "multi_thread")]
async fn a_session_posted_to_a_server_checking_uploads_is_tested_and_read_back() {
    let api = Api::new(1);
    let repo = api.dir.path().join("repo");
    let (head, patch) = repository(&repo);
    let doc = document(SESSION, &repo, &head, &patch);
    let (status, stored) = api
        .call("POST", "/api/v1/sessions", Some(&doc.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let qa = api.finished(SESSION).await;
    assert_eq!(qa["trace_id"], TRACE);
    let job = &qa["jobs"][0];
    assert_eq!(job["state"], "done", "{qa}");
    assert_eq!(job["runner"], "local");
    assert_eq!(job["verdict"], "resolved");
    assert!(job["queued_ms"].as_f64().unwrap() >= 0.0);
    let result = &qa["result"];
    assert_eq!(result["verdict"], "resolved");
    assert_eq!(result["comparison"]["fixed"], json!(["adds"]));
    assert_eq!(result["tests"]["ok"], true);
    assert_eq!(result["judges"][0]["model"], "devtrace-evidence/v1");

    // The job by number, and in the listing with the counts.
    let id = job["id"].as_i64().unwrap();
    let (status, detail) = api
        .call("GET", &format!("/api/v1/qa/jobs/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["result"]["verdict"], "resolved");
    let (status, list) = api.call("GET", "/api/v1/qa/jobs?state=done", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["counts"], json!({"done": 1}));
    assert_eq!(list["jobs"][0]["id"], id);

    // The session's document carries its qa block now.
    let (_, document) = api
        .call("GET", &format!("/api/v1/sessions/{SESSION}"), None)
        .await;
    assert_eq!(document["qa"]["tests"]["ok"], true);
    assert_eq!(document["qa"]["tests"]["runner"], "local");
    assert_eq!(document["qa"]["judge"]["model"], "devtrace-evidence/v1");

    // Retry: a new job, run again by the workers.
    let (status, retried) = api
        .call("POST", &format!("/api/v1/qa/jobs/{id}/retry"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{retried}");
    assert_eq!(retried["created"], true);
    assert_eq!(retried["workers"], 1);
    assert_eq!(retried["job"]["retry_of"], id);
    let qa = api.finished(SESSION).await;
    assert_eq!(qa["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(qa["jobs"][0]["state"], "done");
    assert_eq!(qa["result"]["flaky"], Value::Null, "the same outcome twice");

    // Across the repository.
    let path = repo.to_str().unwrap();
    let (status, summary) = api
        .call("GET", &format!("/api/v1/qa/summary?repo={path}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!(summary["checked"], 1);
    assert_eq!(summary["pass_rate"], 1.0);
    assert_eq!(summary["verdicts"], json!({"resolved": 1}));
    assert!(
        summary["mean_scores"]["devtrace-evidence/v1"]["overall"]
            .as_f64()
            .unwrap()
            > 3.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn jobs_wait_without_workers_cancel_and_bad_requests_say_what_is_wrong() {
    let api = Api::new(0);
    let repo = api.dir.path().join("repo");
    let (head, patch) = repository(&repo);
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some(&document(SESSION, &repo, &head, &patch).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, qa) = api
        .call("GET", &format!("/api/v1/sessions/{SESSION}/qa"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        qa["jobs"],
        json!([]),
        "no server --qa: nothing queued on upload"
    );

    let body = json!({"runner": "local", "timeout_secs": 30, "test_command": "node --test test/"});
    let (status, queued) = api
        .call(
            "POST",
            &format!("/api/v1/sessions/{}/qa", &TRACE[..8]),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["created"], true);
    assert_eq!(queued["workers"], 0);
    assert_eq!(queued["job"]["state"], "queued");
    assert_eq!(queued["job"]["runner"], "local");
    let id = queued["job"]["id"].as_i64().unwrap();
    let (status, again) = api
        .call("POST", &format!("/api/v1/sessions/{SESSION}/qa"), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        (again["created"].clone(), again["job"]["id"].as_i64()),
        (json!(false), Some(id))
    );

    let (status, cancelled) = api
        .call("POST", &format!("/api/v1/qa/jobs/{id}/cancel"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cancelled["state"], "cancelled");

    for (method, path, body, expected, message) in [
        (
            "POST",
            "/api/v1/sessions/ffffffff/qa",
            None,
            StatusCode::NOT_FOUND,
            "no session matches \"ffffffff\": a session is named by its trace id (32 hex characters, or a unique prefix of 8 or more, e.g. 4bf92f35) or by the agent's own session id (a UUID such as 4bf92f35-77b3-4da6-a3ce-929d0e0e4736); GET /api/v1/sessions lists them",
        ),
        (
            "POST",
            &format!("/api/v1/sessions/{SESSION}/qa") as &str,
            Some("{\"timeout_secs\": 0}"),
            StatusCode::BAD_REQUEST,
            "timeout_secs: 0 is not between 1 and 86400 seconds",
        ),
        (
            "POST",
            &format!("/api/v1/sessions/{SESSION}/qa"),
            Some("{\"runner\": \"vm\"}"),
            StatusCode::BAD_REQUEST,
            "the body is not QA settings: unknown variant `vm`",
        ),
        (
            "GET",
            "/api/v1/qa/jobs?state=sleeping",
            None,
            StatusCode::BAD_REQUEST,
            "state: \"sleeping\" is not a state; use queued, running, done, failed or cancelled",
        ),
        (
            "GET",
            "/api/v1/qa/jobs/abc",
            None,
            StatusCode::BAD_REQUEST,
            "job: \"abc\" is not a job number",
        ),
        (
            "GET",
            "/api/v1/qa/jobs/999",
            None,
            StatusCode::NOT_FOUND,
            "no QA job 999: `devtrace qa status` lists them",
        ),
        (
            "POST",
            "/api/v1/qa/jobs/999/cancel",
            None,
            StatusCode::NOT_FOUND,
            "no QA job 999",
        ),
        (
            "GET",
            "/api/v1/qa/summary",
            None,
            StatusCode::BAD_REQUEST,
            "repo: required: a directory or repository URL",
        ),
    ] {
        let (status, answer) = api.call(method, path, body).await;
        assert_eq!(status, expected, "{method} {path}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with(message), "{method} {path}: {error}");
    }
}
