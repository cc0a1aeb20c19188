//! The sessions REST API through the real router (no socket) over a real SQLite store and
//! group-commit writer; and redaction on the OTLP receivers.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use devtrace_ingest::redact::Redactor;
use devtrace_intake::otlp::Ingestor;
use devtrace_server::api::router;
use devtrace_server::guard::AllowedHosts;
use devtrace_server::state::{ApiState, IngestRate};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::writer::{Writer, WriterConfig};
use devtrace_store::{Store, TraceQuery};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Api {
    _dir: tempfile::TempDir,
    /// Dropping it would tell long-lived responses the server is stopping.
    _stop: tokio::sync::watch::Sender<bool>,
    store: Arc<SqliteStore>,
    writer: Writer,
    router: axum::Router,
}

impl Api {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(
            Box::new(SqliteWriter::open(dir.path()).unwrap()),
            WriterConfig::default(),
        );
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let (stop, stopping) = tokio::sync::watch::channel(false);
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
                qa: None,
            },
            AllowedHosts::new(([127, 0, 0, 1], 4319).into(), &[]),
        );
        Self {
            _dir: dir,
            _stop: stop,
            store,
            writer,
            router,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        self.call_with(method, path, body, "application/json", "127.0.0.1:4319")
            .await
    }

    async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        content_type: &str,
        host: &str,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host)
            .header("content-type", content_type)
            .body(Body::from(body.unwrap_or("").to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, value)
    }
}

const TRACE_ID: &str = "123e4567-e89b-12d3-a456-426614174000";

fn document() -> Value {
    json!({
        "trace_id": TRACE_ID,
        "created_at": "2025-06-14T11:00:00Z",
        "version": "trace-1.0.0",
        "developer": {"name": "Ada", "experience_level": "senior", "ide": "vscode", "os": "linux"},
        "task": {"description": "Fix the total for empty carts", "repository": "https://github.com/acme/shop",
                 "branch": "main", "commit": "abc123", "test_image": "golang:1.24", "test_command": "go test ./...", "complexity": "low"},
        "environment": {"os": "linux", "editor": "vscode", "version": "1.0.0", "plugins": ["go", "gitlens"], "workspace_size": 42},
        "events": [
            {"t": "2025-06-14T11:00:01Z", "type": "file_opened", "session_id": "session-1", "file_path": "src/main.go", "language": "go"},
            {"t": "2025-06-14T11:00:02Z", "type": "go_to_definition", "session_id": "session-1",
             "source": {"file_path": "src/main.go", "symbol": "calculateTotal", "range": {"start": {"line": 10, "col": 5}, "end": {"line": 10, "col": 20}}},
             "target": {"file_path": "src/calculator.go", "line": 25, "symbol_kind": "function"}, "latency_ms": 150},
            {"t": "2025-06-14T11:00:04Z", "type": "edit", "session_id": "session-1", "file_path": "src/calculator.go", "op": "replace",
             "range": {"start": {"line": 25, "col": 1}, "end": {"line": 30, "col": 1}},
             "patch_unified": "diff --git a/src/calculator.go b/src/calculator.go\n-\treturn 0\n+\treturn sum\n", "before_hash": "abc123", "after_hash": "def456"},
            {"t": "2025-06-14T11:00:07Z", "type": "terminal_command", "session_id": "session-1", "cmd": "go test", "args": ["-v", "./..."],
             "cwd": "/workspace", "exit_code": 0, "duration_ms": 2500, "stdout": "PASS: TestCalculator\n", "stderr": ""},
            {"t": "2025-06-14T11:00:10Z", "type": "thought", "session_id": "session-1", "raw": "I need to fix the edge case in the calculation", "tags": ["debugging", "edge-case"]}
        ],
        "artifacts": {"final_patch": "diff --git a/src/calculator.go b/src/calculator.go", "test_results": {"passed": 5, "failed": 0}},
        "qa": {"tests": {"runner": "docker", "image": "golang:1.24", "command": "go test ./...", "ok": true, "stdout": "ok", "stderr": "", "exit_code": 0, "duration_ms": 2500},
               "judge": {"model": "m", "rubric_version": "v1", "scores": {"problem_understanding": 4.0, "investigation_strategy": 4.0}, "overall": 4.0, "comments": "fine"}}
    })
}

#[tokio::test]
async fn a_document_round_trips_through_the_api() {
    let api = Api::new();
    let body = document().to_string();
    let (status, created) = api.call("POST", "/api/v1/sessions", Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["trace_id"], "123e4567e89b12d3a456426614174000");
    assert_eq!(
        (created["events"].as_u64(), created["created"].as_bool()),
        (Some(5), Some(true))
    );

    let (status, back) = api
        .call("GET", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(back, document(), "the document comes back as it was sent");

    let (status, list) = api
        .call("GET", "/api/v1/sessions?agent=developer", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["title"], "Fix the total for empty carts");
    assert_eq!(sessions[0]["project"], "https://github.com/acme/shop");
    let (_, other) = api.call("GET", "/api/v1/sessions?agent=codex", None).await;
    assert_eq!(other["sessions"], json!([]));
    let (status, waterfall) = api
        .call(
            "GET",
            "/api/v1/traces/123e4567e89b12d3a456426614174000/waterfall",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        waterfall["session"], true,
        "the trace view links to the timeline"
    );

    let (status, overview) = api
        .call("GET", "/api/v1/sessions/123e4567/overview", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let kinds: Vec<&str> = overview["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "file_opened",
            "go_to_definition",
            "edit",
            "terminal_command",
            "thought"
        ]
    );

    // The same document again: nothing stored twice.
    let (status, again) = api.call("POST", "/api/v1/sessions", Some(&body)).await;
    assert_eq!(
        (status, again["created"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    let traces = api
        .store
        .list_traces(&TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(
        traces[0].span_count, 6,
        "the session span and five events, once"
    );

    // Events added to the session.
    let batch = json!({"events": [
        {"t": "2025-06-14T11:01:00Z", "type": "terminal_command", "cmd": "go", "args": ["vet"], "exit_code": 1, "stderr": "vet: main.go:3: unreachable code"}
    ]});
    let (status, added) = api
        .call(
            "POST",
            &format!("/api/v1/sessions/{TRACE_ID}/events"),
            Some(&batch.to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    assert_eq!(
        (added["added"].as_u64(), added["events"].as_u64()),
        (Some(1), Some(6))
    );
    let (_, back) = api
        .call("GET", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(back["events"].as_array().unwrap().len(), 6);
    assert_eq!(back["events"][5]["args"], json!(["vet"]));
    let (_, list) = api.call("GET", "/api/v1/sessions", None).await;
    assert_eq!(list["sessions"][0]["errors"], 1);

    // Deleted: gone, and a second delete finds nothing.
    let (status, _) = api
        .call("DELETE", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, gone) = api
        .call("GET", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{gone}");
    assert!(gone["error"].as_str().unwrap().contains("no session"));
    let (status, _) = api
        .call("DELETE", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.store.stats().unwrap().traces, 0);
    drop(api.writer);
}

#[tokio::test]
async fn the_repo_filter_takes_a_directory_however_it_is_written() {
    let api = Api::new();
    let checkout = tempfile::tempdir().unwrap();
    std::fs::create_dir(checkout.path().join("src")).unwrap();
    let canonical = std::fs::canonicalize(checkout.path()).unwrap();
    let mut doc = document();
    doc["task"]["repository"] = json!(canonical.display().to_string());
    let (status, created) = api
        .call("POST", "/api/v1/sessions", Some(&doc.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let roundabout = format!("{}/src/..", checkout.path().display());
    let (status, list) = api
        .call("GET", &format!("/api/v1/sessions?repo={roundabout}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    let (_, elsewhere) = api
        .call("GET", "/api/v1/sessions?repo=/nowhere/else", None)
        .await;
    assert_eq!(elsewhere["sessions"], json!([]));
}

#[tokio::test]
async fn invalid_documents_get_their_field_paths_and_store_nothing() {
    let api = Api::new();
    let mut bad = document();
    bad["trace_id"] = json!("12345");
    bad["events"][3]["exit_code"] = json!("zero");
    bad["events"][0]
        .as_object_mut()
        .unwrap()
        .remove("file_path");
    let (status, answer) = api
        .call("POST", "/api/v1/sessions", Some(&bad.to_string()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        ["trace_id", "events[0].file_path", "events[3].exit_code"]
    );
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid trace-1.0.0 document: trace_id:")
    );

    let (status, answer) = api
        .call(
            "POST",
            "/api/v1/sessions",
            Some("{\"version\": \"trace-1.0.0\""),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["errors"][0]["path"], "$");
    let (status, _) = api
        .call_with(
            "POST",
            "/api/v1/sessions",
            Some(&document().to_string()),
            "text/plain",
            "localhost:4319",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, answer) = api
        .call("GET", "/api/v1/sessions?since=yesterday", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(answer["error"].as_str().unwrap().starts_with("since:"));
    // Events for a session that does not exist, or that are invalid.
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/sessions/0000aaaa/events",
            Some("{\"events\": []}"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(api.store.stats().unwrap().traces, 0, "nothing stored");
    api.call("POST", "/api/v1/sessions", Some(&document().to_string()))
        .await;
    let (status, answer) = api
        .call(
            "POST",
            &format!("/api/v1/sessions/{TRACE_ID}/events"),
            Some("{\"events\": [{\"type\": \"edit\", \"t\": \"soon\"}]}"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let paths: Vec<&str> = answer["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["events[0].t", "events[0].file_path"]);
    // A foreign Host is refused before anything runs (the API port's DNS-rebinding guard).
    let (status, _) = api
        .call_with(
            "POST",
            "/api/v1/sessions",
            Some(&document().to_string()),
            "application/json",
            "evil.example",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn secrets_in_documents_and_otlp_spans_are_redacted_before_storing() {
    let api = Api::new();
    let token = format!("ghp_{}", "a1B2c3D4e5".repeat(4));
    let mut doc = document();
    doc["events"][3]["stdout"] = json!(format!("export GITHUB_TOKEN={token}\n"));
    doc["developer"]["email"] = json!("ada@example.com");
    let (status, _) = api
        .call("POST", "/api/v1/sessions", Some(&doc.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, back) = api
        .call("GET", &format!("/api/v1/sessions/{TRACE_ID}"), None)
        .await;
    assert_eq!(
        back["events"][3]["stdout"],
        "export GITHUB_TOKEN=[REDACTED:github_token]\n"
    );
    assert_eq!(back["developer"]["email"], "[REDACTED:email]");
    let stored = format!(
        "{:?}",
        api.store
            .get_trace("123e4567e89b12d3a456426614174000".parse().unwrap())
            .unwrap()
    );
    assert!(!stored.contains(&token) && !stored.contains("ada@example.com"));

    // OTLP/JSON through the receiver's ingest pipeline.
    let ingestor = Ingestor::new(api.writer.handle(), Default::default());
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "GET /",
            "startTimeUnixNano": "1", "endTimeUnixNano": "2",
            "attributes": [{"key": "url.full", "value": {"stringValue": "https://deploy:hunter22@example.org/x"}},
                           {"key": "http.request.header.authorization", "value": {"stringValue": format!("Bearer {token}")}}]}]}]}]});
    ingestor
        .ingest(
            devtrace_intake::otlp::Signal::Traces,
            devtrace_intake::otlp::Encoding::Json,
            body.to_string().as_bytes(),
            devtrace_store::ProjectId::DEFAULT,
        )
        .await
        .unwrap();
    let trace = api
        .store
        .get_trace("5b8efff798038103d269b633813fc60c".parse().unwrap())
        .unwrap()
        .unwrap();
    let attrs: Vec<String> = trace.spans.spans[0]
        .attributes
        .iter()
        .map(|kv| kv.value.to_display_string())
        .collect();
    assert_eq!(
        attrs,
        [
            "https://deploy:[REDACTED:url_password]@example.org/x".to_owned(),
            "Bearer [REDACTED:github_token]".to_owned(),
        ]
    );
    // Opting out stores values as received.
    let plain = Ingestor::new(api.writer.handle(), Default::default())
        .with_redactor(Arc::new(Redactor::disabled()));
    let body = body
        .to_string()
        .replace("eee19b7ec3c1b174", "eee19b7ec3c1b175")
        .replace("5b8efff7", "6b8efff7");
    plain
        .ingest(
            devtrace_intake::otlp::Signal::Traces,
            devtrace_intake::otlp::Encoding::Json,
            body.as_bytes(),
            devtrace_store::ProjectId::DEFAULT,
        )
        .await
        .unwrap();
    let kept = api
        .store
        .get_trace("6b8efff798038103d269b633813fc60c".parse().unwrap())
        .unwrap()
        .unwrap();
    assert!(
        kept.spans.spans[0].attributes[0]
            .value
            .to_display_string()
            .contains("hunter22")
    );
}

#[tokio::test]
async fn the_timeline_has_diffs_outputs_and_notes_and_a_whole_output_is_read_from_its_blob() {
    let api = Api::new();
    // A command whose output is larger than what a span keeps inline (4 KiB).
    let stdout: String = (0..400)
        .map(|i| format!("test case {i:03} … ok\n"))
        .collect();
    let mut doc = document();
    doc["events"][3]["stdout"] = json!(stdout);
    doc["events"]
        .as_array_mut()
        .unwrap()
        .push(json!({"t": "2025-06-14T11:00:12Z", "type": "pairing", "partner": "bob"}));
    let (status, _) = api
        .call("POST", "/api/v1/sessions", Some(&doc.to_string()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, overview) = api
        .call("GET", "/api/v1/sessions/123e4567/overview", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{overview}");
    let timeline = overview["timeline"].as_array().unwrap();
    let edit = &timeline[2];
    assert_eq!(
        edit["diff"],
        "diff --git a/src/calculator.go b/src/calculator.go\n-\treturn 0\n+\treturn sum\n"
    );
    let thought = &timeline[4];
    assert_eq!(
        (&thought["action"], &thought["text"], &thought["tags"]),
        (
            &json!("note"),
            &json!("I need to fix the edge case in the calculation"),
            &json!(["debugging", "edge-case"])
        )
    );
    let command = &timeline[3];
    assert_eq!(command["command"], "go test -v ./...");
    assert_eq!(command["output_bytes"], stdout.len());
    let inline = command["output"].as_str().unwrap();
    assert!(inline.starts_with("test case 000 … ok\n"), "{inline}");
    assert!(inline.contains(" bytes omitted) …"), "{inline}");
    assert!(inline.ends_with("test case 399 … ok\n"), "{inline}");
    let hash = command["output_ref"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    // An event of a type devtrace does not know shows what was sent; a file read has its path
    // and no input repeated.
    assert_eq!(timeline[5]["label"], "pairing");
    assert!(
        timeline[5]["input"]
            .as_str()
            .unwrap()
            .contains("\"partner\":\"bob\"")
    );
    assert_eq!(timeline[0]["path"], "src/main.go");
    assert!(timeline[0].get("input").is_none());

    // The whole output, in one page and in pages that chain.
    let (status, page) = api
        .call("GET", &format!("/api/v1/blobs/{hash}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["text"], stdout.as_str());
    assert_eq!(
        (&page["size"], &page["offset"], &page["next_offset"]),
        (&json!(stdout.len()), &json!(0), &Value::Null)
    );
    let mut joined = String::new();
    let mut offset = 0;
    let mut pages = 0;
    loop {
        let (status, page) = api
            .call(
                "GET",
                &format!("/api/v1/blobs/{hash}?offset={offset}&limit=1000"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        joined.push_str(page["text"].as_str().unwrap());
        pages += 1;
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(joined, stdout);
    assert_eq!(pages, stdout.len().div_ceil(1000));

    // Bad parameters are 400s naming the parameter; an unknown hash is a 404.
    for (uri, parameter, says) in [
        (
            "/api/v1/blobs/abc",
            "hash",
            "expected 64 hexadecimal characters",
        ),
        (
            &format!("/api/v1/blobs/{hash}?limit=0"),
            "limit",
            "from 1 to 4194304",
        ),
        (
            &format!("/api/v1/blobs/{hash}?offset=-1"),
            "offset",
            "not a whole number of bytes",
        ),
        (
            &format!("/api/v1/blobs/{hash}?offset=99999999"),
            "offset",
            "past the end of the value",
        ),
        (
            &format!("/api/v1/blobs/{hash}?page=2"),
            "page",
            "accepted parameters: offset, limit",
        ),
    ] {
        let (status, answer) = api.call("GET", uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
        assert_eq!(answer["parameter"], parameter, "{uri}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{parameter}: ")) && message.contains(says),
            "{uri}: {message}"
        );
    }
    let (status, answer) = api
        .call("GET", &format!("/api/v1/blobs/{}", "0".repeat(64)), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("no value stored under 0000")
    );
}

#[tokio::test]
async fn session_errors_have_the_api_error_body() {
    let api = Api::new();
    // Parameters: named, with what they accept.
    for (uri, parameter, says) in [
        ("/api/v1/sessions?since=yesterday", "since", "30m"),
        ("/api/v1/sessions?limit=0", "limit", "from 1 to 200"),
        ("/api/v1/sessions?limit=many", "limit", "from 1 to 200"),
        (
            "/api/v1/sessions?project=/x",
            "project",
            "accepted parameters: agent, repo, since, active_from, active_to, limit",
        ),
        (
            "/api/v1/sessions/123e4567/overview?full=1",
            "full",
            "takes no query parameters",
        ),
    ] {
        let (status, answer) = api.call("GET", uri, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {answer}");
        assert_eq!(answer["parameter"], parameter, "{uri}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(says),
            "{uri}: {answer}"
        );
        assert!(answer.get("errors").is_none(), "{answer}");
    }
    // An invalid document: the summary, no parameter, and every problem by path.
    let mut bad = document();
    bad["events"][3]["exit_code"] = json!("zero");
    let (status, answer) = api
        .call("POST", "/api/v1/sessions", Some(&bad.to_string()))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer,
        json!({
            "error": "invalid trace-1.0.0 document: events[3].exit_code: expected an integer, found a string (\"zero\")",
            "errors": [{"path": "events[3].exit_code", "message": "expected an integer, found a string (\"zero\")"}]
        })
    );
    // Media type and size: JSON errors too, nothing stored.
    let (status, answer) = api
        .call_with(
            "POST",
            "/api/v1/sessions",
            Some("{}"),
            "text/plain",
            "127.0.0.1:4319",
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        answer,
        json!({"error": "unsupported Content-Type \"text/plain\": send application/json"})
    );
    let huge = format!(
        "{{\"version\": \"trace-1.0.0\", \"pad\": \"{}\"}}",
        "x".repeat(33 * 1024 * 1024)
    );
    let (status, answer) = api.call("POST", "/api/v1/sessions", Some(&huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is larger than 32 MiB"),
        "{answer}"
    );
    // Unknown and ambiguous sessions.
    let (status, answer) = api.call("DELETE", "/api/v1/sessions/feedbeef", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer, json!({"error": no_session("feedbeef")}));
    assert_eq!(api.store.stats().unwrap().traces, 0, "nothing stored");
}

/// The answer for an id that names no session: the words every face uses, naming the REST
/// listing.
fn no_session(id: &str) -> String {
    format!(
        "no session matches \"{id}\": a session is named by its trace id (32 hex characters, or a unique prefix of 8 or more, e.g. 4bf92f35) or by the agent's own session id (a UUID such as 4bf92f35-77b3-4da6-a3ce-929d0e0e4736); GET /api/v1/sessions lists them"
    )
}

/// The CLI's Claude Code token fixture: a 16-entry session with three findings.
const CLAUDE_SESSION: &str = "7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl";

/// Imports one of the CLI's token fixtures (transcripts we wrote in the agent's real format)
/// through the group-commit writer, as `devtrace import` does.
async fn import_fixture(api: &Api, agent: devtrace_ingest::sessions::Agent, file: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../devtrace-cli/tests/fixtures/sessions")
        .join(file);
    let (mut importer, _) =
        devtrace_ingest::sessions::importer(agent, Arc::new(Redactor::builtin()), None);
    let reader = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    let read =
        devtrace_ingest::sessions::read_lines(reader, 0, importer.as_mut(), &mut |_| {}).unwrap();
    assert!(
        read.notes.is_empty(),
        "{}: {:?}",
        path.display(),
        read.notes
    );
    let output = importer.drain();
    api.writer
        .handle()
        .submit(devtrace_store::prepare_session(output.spans, output.blobs))
        .unwrap()
        .committed()
        .await
        .unwrap();
}

#[tokio::test]
async fn two_sessions_compare_side_by_side_as_the_cli_answers() {
    use devtrace_ingest::sessions::Agent;
    let api = Api::new();
    import_fixture(&api, Agent::ClaudeCode, CLAUDE_SESSION).await;
    import_fixture(
        &api,
        Agent::Codex,
        "rollout-2026-11-20T10-00-00-019a7c3e-1111-7222-8333-944455556666.jsonl",
    )
    .await;

    let (status, answer) = api
        .call("GET", "/api/v1/sessions/7a0c2d1e/compare/019a7c3e", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    // The same numbers `session compare` prints (crates/devtrace-cli/tests/sessions_tokens.rs).
    let (a, b) = (&answer["a"], &answer["b"]);
    assert_eq!(a["agent"], "claude-code");
    assert_eq!(b["agent"], "codex");
    assert_eq!(a["requests"], 16);
    assert_eq!(a["tokens"]["uncached_input"], 52);
    assert_eq!(a["tokens"]["cache_write"], 54_050);
    assert_eq!(a["tokens"]["cache_read"], 139_200);
    assert_eq!(a["tokens"]["output"], 1_325);
    assert!(
        (a["tokens"]["cost_usd"].as_f64().unwrap() - 0.5576505).abs() < 1e-9,
        "{a}"
    );
    assert_eq!(b["tokens"]["cache_read"], 25_088);
    assert_eq!(b["tokens"]["output"], 270);
    assert_eq!(a["tool_calls"]["Read"]["ok"], 5);
    let divergence = &answer["first_divergence"];
    assert_eq!(divergence["request"], 1, "{divergence}");
    assert_eq!(divergence["a_calls"], json!(["Read lexer.rs"]));
    assert_eq!(divergence["b_calls"], json!(["shell cat README.md"]));
    let ratio = answer["cost_ratio"].as_f64().unwrap();
    assert!(
        (ratio - b["tokens"]["cost_usd"].as_f64().unwrap() / 0.5576505).abs() < 1e-9,
        "{answer}"
    );

    // A session is its own twin.
    let (status, same) = api
        .call("GET", "/api/v1/sessions/7a0c2d1e/compare/7a0c2d1e", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["first_divergence"], Value::Null);
    assert_eq!(same["cost_ratio"], 1.0);

    // Errors name the session that is missing, and the parameters it does not take.
    let (status, missing) = api
        .call("GET", "/api/v1/sessions/7a0c2d1e/compare/feedbeef", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing, json!({"error": no_session("feedbeef")}));
    let (status, extra) = api
        .call(
            "GET",
            "/api/v1/sessions/7a0c2d1e/compare/019a7c3e?full=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{extra}");
    assert_eq!(extra["parameter"], "full");

    // Declared in the OpenAPI document with its schema.
    let (_, openapi) = api.call("GET", "/api/v1/openapi.json", None).await;
    assert!(
        openapi["paths"]["/api/v1/sessions/{a}/compare/{b}"]["get"].is_object(),
        "not in the OpenAPI document"
    );
    assert!(openapi["components"]["schemas"]["SessionComparison"].is_object());
}

/// `GET /api/v1/sessions/{id}/text`: the session's text as `devtrace session show` prints it,
/// paged as MCP's `session_overview` pages it: each page within its budget of tokens, its
/// footer naming the next page's request, and following the footers shows every timeline
/// entry once.
#[tokio::test]
async fn a_sessions_text_pages_through_its_timeline() {
    use devtrace_ingest::sessions::Agent;
    let api = Api::new();
    import_fixture(&api, Agent::ClaudeCode, CLAUDE_SESSION).await;
    let (status, whole) = api
        .call("GET", "/api/v1/sessions/7a0c2d1e/text", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(
        (whole["page"].as_u64(), whole["pages"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(whole["next_offset"], Value::Null);
    let entries = whole["entries"].as_u64().unwrap();
    assert_eq!(whole["end"].as_u64(), Some(entries));
    let text = whole["text"].as_str().unwrap();
    assert!(
        text.starts_with("claude-code  Look around the parser and fix the overflow  /repo\n"),
        "{text}"
    );
    assert!(
        text.contains("\n3 finding(s), ranked by impact\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!("\ntimeline from entry 0 of {entries}: ")),
        "{text}"
    );

    let (mut offset, mut seen, mut page) = (0, 0, 0);
    let mut pages = None;
    loop {
        let (status, answer) = api
            .call(
                "GET",
                &format!("/api/v1/sessions/7a0c2d1e/text?budget=300&offset={offset}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        page += 1;
        let text = answer["text"].as_str().unwrap();
        assert!(devtrace_mcp::budget::count(text) <= 300, "{text}");
        assert_eq!(answer["page"].as_u64(), Some(page), "{answer}");
        let of = answer["pages"].as_u64().unwrap();
        assert_eq!(
            *pages.get_or_insert(of),
            of,
            "every page counts the same pages"
        );
        seen += answer["end"].as_u64().unwrap() - answer["offset"].as_u64().unwrap();
        match answer["next_offset"].as_u64() {
            Some(next) => {
                assert!(
                    text.ends_with(&format!(
                        "[page {page} of {of}; next page: GET /api/v1/sessions/7a0c2d1e/text?budget=300&offset={next}]\n"
                    )),
                    "{text}"
                );
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, entries);
    assert_eq!(Some(page), pages);
    assert!(page > 1, "300 tokens do not hold the whole session");

    for (query, message) in [
        (
            format!("offset={entries}"),
            format!(
                "offset: {entries} is past the end: the timeline of this session has {entries} entries (0 to {})",
                entries - 1
            ),
        ),
        (
            "budget=5".to_owned(),
            "budget: \"5\" is not a whole number from 300 to 20000".to_owned(),
        ),
    ] {
        let (status, answer) = api
            .call(
                "GET",
                &format!("/api/v1/sessions/7a0c2d1e/text?{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"], message, "{answer}");
    }
    let (status, answer) = api
        .call("GET", "/api/v1/sessions/feedbeef/text", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer, json!({"error": no_session("feedbeef")}));
}
