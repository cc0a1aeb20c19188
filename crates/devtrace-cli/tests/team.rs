//! The team server end to end: real `devtrace serve` processes on a real PostgreSQL (the test
//! server named by DEVTRACE_TEST_POSTGRES, each test in a schema of its own), and some on the
//! ClickHouse engine behind its test front (DEVTRACE_TEST_CLICKHOUSE, a database each).
//!
//! - the authentication matrix: every face × {no token, wrong, expired, revoked, ingest, read,
//!   admin, another project's} gets its documented answer, refusals store nothing, and no
//!   token's secret reaches the server's log;
//! - failed attempts are limited per address;
//! - two nodes on one database: what node A receives is listed by node B and reaches B's live
//!   event stream (on PostgreSQL by its notifications, on ClickHouse by the polled commit feed);
//! - SIGKILL during ingest: every acknowledged span is in PostgreSQL afterwards;
//! - retention deletes old data while serving;
//! - the web UI's login trades a token for an HttpOnly, SameSite=Strict cookie;
//! - agents' OTLP metrics land in the token's project, a retried export counts once;
//! - QA runs through the workers of any node, its queue in PostgreSQL (beside ClickHouse: named
//!   with `--queue-store`);
//! - `record stop --store … --project …` stores the session in that project.

mod common;

use common::BIN;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ENV: &str = "DEVTRACE_TEST_POSTGRES";

/// The URL of the test server named by `variable`; `None` (said once) without it, except under
/// CI, where a missing server fails.
fn test_server(variable: &str, starter: &str) -> Option<String> {
    let Ok(url) = std::env::var(variable).map(|u| u.trim().to_owned()) else {
        assert!(
            std::env::var("CI").map_or(true, |v| v.is_empty() || v == "false"),
            "CI is set but {variable} is not: start a server with {starter}"
        );
        eprintln!("{variable} is not set: the tests on that server did not run");
        return None;
    };
    Some(url)
}

/// A name no other test (or run) uses.
fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A fresh schema on the test server, as a store URL; `None` (said once) without a server.
fn postgres() -> Option<String> {
    let url = test_server(ENV, "scripts/postgres-test-server")?;
    let schema = unique_name("team");
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("the test server");
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .unwrap();
    Some(format!("{url}?options=-csearch_path%3D{schema}"))
}

/// A new database on the ClickHouse test engine (devtrace creates it), as a store URL; `None`
/// (said once) without the engine.
fn clickhouse() -> Option<String> {
    let url = test_server("DEVTRACE_TEST_CLICKHOUSE", "scripts/clickhouse-test-server")?;
    let (server, _) = url.rsplit_once('/').expect("a database in the URL");
    Some(format!("{server}/{}", unique_name("team")))
}

/// A `devtrace serve` process whose stderr goes to a file (read by the log checks).
struct Node {
    child: Child,
    grpc: SocketAddr,
    http: SocketAddr,
    api: SocketAddr,
    log: PathBuf,
}

impl Node {
    fn start(store: &str, data: &Path, extra: &[&str]) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let serve_file = data.join("serve.json");
        let _ = std::fs::remove_file(&serve_file);
        let log = data.join("serve.log");
        let child = Command::new(BIN)
            .args(["serve", "--store", store, "--data"])
            .arg(data)
            .args([
                "--grpc-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--api-listen",
                "127.0.0.1:0",
                "--log-level",
                "debug",
            ])
            .args(extra)
            .env_remove("DEVTRACE_STORE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting devtrace serve");
        // Owned at once: a failing start kills the child (Drop).
        let unbound = SocketAddr::from(([0, 0, 0, 0], 0));
        let mut node = Self {
            child,
            grpc: unbound,
            http: unbound,
            api: unbound,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let info = std::fs::read_to_string(&serve_file)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
            if let Some(info) = info
                && info["pid"].as_u64() == Some(u64::from(node.child.id()))
            {
                let addr = |key: &str| info[key].as_str().unwrap().parse().unwrap();
                (node.grpc, node.http, node.api) = (addr("grpc"), addr("http"), addr("api"));
                return node;
            }
            assert!(
                Instant::now() < deadline,
                "devtrace serve did not start: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `devtrace token create` against the store: the token and its id.
fn make_token(
    store: &str,
    project: &str,
    scopes: &str,
    name: &str,
    expires: Option<&str>,
) -> (String, String) {
    let mut args = vec![
        "token",
        "create",
        "--store",
        store,
        "--project",
        project,
        "--scope",
        scopes,
        "--name",
        name,
        "--json",
    ];
    if let Some(expires) = expires {
        args.extend(["--expires", expires]);
    }
    let output = Command::new(BIN).args(&args).output().unwrap();
    assert!(
        output.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        made["token"].as_str().unwrap().to_owned(),
        made["id"].as_str().unwrap().to_owned(),
    )
}

fn cli(store: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .args(["--store", store])
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on its own connection.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = common::send_http1(addr, method, path, headers, body);
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// An OTLP/JSON request with one trace of two spans.
fn otlp_json(trace_id: &str, name: &str, start_unix_nano: u64) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shop"}}}}]}},"scopeSpans":[{{"spans":[
        {{"traceId":"{trace_id}","spanId":"eee19b7ec3c1b174","name":"{name}","kind":2,"startTimeUnixNano":"{start}","endTimeUnixNano":"{end}"}},
        {{"traceId":"{trace_id}","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"SELECT cart","kind":3,"startTimeUnixNano":"{start}","endTimeUnixNano":"{child_end}"}}]}}]}}]}}"#,
        start = start_unix_nano,
        end = start_unix_nano + 100_000_000,
        child_end = start_unix_nano + 40_000_000,
    )
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn session_document(id: &str) -> String {
    serde_json::json!({
        "trace_id": id,
        "version": "trace-1.0.0",
        "created_at": "2026-11-20T10:00:00Z",
        "events": [{"t": "2026-11-20T10:00:01Z", "type": "terminal_command", "session_id": "s1",
                    "cmd": "go", "args": ["test"], "exit_code": 0, "duration_ms": 20}]
    })
    .to_string()
}

/// OTLP/gRPC Export with an optional `authorization` metadata entry: the status code.
fn grpc_export(addr: SocketAddr, authorization: Option<&str>) -> tonic::Code {
    use devtrace_ingest::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let (request, _) = common::span_batch(9, 1);
        let mut request = tonic::Request::new(request);
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        match client.export(request).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    })
}

const MCP_INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"matrix","version":"1"}}}"#;

#[test]
fn every_face_answers_every_kind_of_token_as_documented() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (admin, _) = make_token(&store, "default", "admin", "admin", None);
    let (ingest, _) = make_token(&store, "web", "ingest", "ci", None);
    let (read, _) = make_token(&store, "web", "read", "dashboards", None);
    let (other, _) = make_token(&store, "mobile", "read,ingest", "mobile", None);
    let (expired, _) = make_token(&store, "web", "read,ingest", "old", Some("1ms"));
    let (revoked, revoked_id) = make_token(&store, "web", "read,ingest", "leaked", None);
    let revoking = cli(&store, &["token", "revoke", &revoked_id]);
    assert!(revoking.status.success());
    // A well-formed token of another store: unknown here.
    let elsewhere = postgres().unwrap();
    let (wrong, _) = make_token(&elsewhere, "web", "read,ingest", "stranger", None);
    let node = Node::start(
        &store,
        &data.path().join("node"),
        &["--auth-failures-per-minute", "1000"],
    );

    // Data to read: one web trace and one web session.
    let trace = "5b8efff798038103d269b633813fc60c";
    let sent = http(
        node.http,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(&ingest)),
        ],
        otlp_json(trace, "GET /cart", now_nanos()).as_bytes(),
    );
    assert_eq!(sent.status, 200, "{}", sent.body);
    let session = "123e4567-e89b-12d3-a456-426614174000";

    let kinds: [(&str, Option<&str>); 8] = [
        ("none", None),
        ("wrong", Some(&wrong)),
        ("expired", Some(&expired)),
        ("revoked", Some(&revoked)),
        ("ingest", Some(&ingest)),
        ("read", Some(&read)),
        ("admin", Some(&admin)),
        ("other project", Some(&other)),
    ];
    // Expected answers, in the order of `kinds`.
    type Face = (&'static str, [u16; 8]);
    let faces: Vec<Face> = vec![
        (
            "GET /api/v1/health",
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
        ("POST /v1/traces", [401, 401, 401, 401, 200, 403, 200, 200]),
        ("gRPC Export", [16, 16, 16, 16, 0, 7, 0, 0]),
        (
            "GET /api/v1/traces",
            [401, 401, 401, 401, 403, 200, 200, 200],
        ),
        (
            "GET /api/v1/traces/{web trace}",
            [401, 401, 401, 401, 403, 200, 404, 404],
        ),
        (
            "GET /api/v1/traces/{web trace} as web",
            [401, 401, 401, 401, 403, 200, 200, 403],
        ),
        (
            "POST /api/v1/sessions",
            [401, 401, 401, 401, 201, 403, 201, 201],
        ),
        (
            "POST /mcp initialize",
            [401, 401, 401, 401, 403, 200, 200, 200],
        ),
        (
            "GET /api/v1/events",
            [401, 401, 401, 401, 403, 200, 200, 200],
        ),
        (
            "GET /traces (the web UI)",
            [303, 303, 303, 303, 403, 200, 200, 200],
        ),
        (
            "DELETE /api/v1/sessions/{id}",
            [401, 401, 401, 401, 403, 403, 204, 403],
        ),
    ];
    let mut wrong_answers = Vec::new();
    for (face, expected) in &faces {
        for (index, ((kind, token), want)) in kinds.iter().zip(expected).enumerate() {
            let auth = token.map(bearer);
            let mut headers: Vec<(&str, &str)> = Vec::new();
            if let Some(auth) = &auth {
                headers.push(("Authorization", auth));
            }
            let got = match *face {
                "GET /api/v1/health" => {
                    http(node.api, "GET", "/api/v1/health", &headers, b"").status
                }
                "POST /v1/traces" => {
                    headers.push(("Content-Type", "application/json"));
                    let id = format!("{:032x}", 0xabc0 + index);
                    http(
                        node.http,
                        "POST",
                        "/v1/traces",
                        &headers,
                        otlp_json(&id, "matrix", now_nanos()).as_bytes(),
                    )
                    .status
                }
                "gRPC Export" => grpc_export(node.grpc, auth.as_deref()) as u16,
                "GET /api/v1/traces" => {
                    http(node.api, "GET", "/api/v1/traces", &headers, b"").status
                }
                "GET /api/v1/traces/{web trace}" => {
                    http(
                        node.api,
                        "GET",
                        &format!("/api/v1/traces/{trace}"),
                        &headers,
                        b"",
                    )
                    .status
                }
                "GET /api/v1/traces/{web trace} as web" => {
                    headers.push(("Devtrace-Project", "web"));
                    http(
                        node.api,
                        "GET",
                        &format!("/api/v1/traces/{trace}"),
                        &headers,
                        b"",
                    )
                    .status
                }
                "POST /api/v1/sessions" => {
                    headers.push(("Content-Type", "application/json"));
                    http(
                        node.api,
                        "POST",
                        "/api/v1/sessions",
                        &headers,
                        session_document(session).as_bytes(),
                    )
                    .status
                }
                "POST /mcp initialize" => {
                    headers.push(("Content-Type", "application/json"));
                    headers.push(("Accept", "application/json, text/event-stream"));
                    http(
                        node.api,
                        "POST",
                        "/mcp",
                        &headers,
                        MCP_INITIALIZE.as_bytes(),
                    )
                    .status
                }
                "GET /api/v1/events" => sse_status(node.api, &headers),
                "GET /traces (the web UI)" => {
                    http(node.api, "GET", "/traces", &headers, b"").status
                }
                "DELETE /api/v1/sessions/{id}" => {
                    http(
                        node.api,
                        "DELETE",
                        &format!("/api/v1/sessions/{session}"),
                        &headers,
                        b"",
                    )
                    .status
                }
                other => unreachable!("{other}"),
            };
            if got != *want {
                wrong_answers.push(format!("{face} with {kind} token: {got}, expected {want}"));
            }
        }
    }
    assert!(wrong_answers.is_empty(), "{}", wrong_answers.join("\n"));

    // Refused requests stored nothing: web holds the first trace, two matrix traces (ingest's
    // and nothing else) and the session; default holds admin's; mobile its own.
    let count = |project: &str| -> Vec<String> {
        let out = cli(&store, &["ls", "--json", "--project", project]);
        let traces: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        traces
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["root_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let web = count("web");
    assert_eq!(web.iter().filter(|n| *n == "matrix").count(), 1, "{web:?}");
    assert!(web.contains(&"GET /cart".to_owned()));
    assert_eq!(
        count("default").iter().filter(|n| *n == "matrix").count(),
        1
    );
    assert_eq!(count("mobile").iter().filter(|n| *n == "matrix").count(), 1);

    // An admin reads and deletes in another project by naming it (the web session was
    // posted by the ingest token).
    let admin_auth = bearer(&admin);
    let deleted = http(
        node.api,
        "DELETE",
        &format!("/api/v1/sessions/{session}"),
        &[("Authorization", &admin_auth), ("Devtrace-Project", "web")],
        b"",
    );
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    // The reasons are one line each and name the token, never its secret.
    let refused = http(
        node.api,
        "GET",
        "/api/v1/traces",
        &[("Authorization", &bearer(&revoked))],
        b"",
    );
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"devtrace\"")
    );
    let body: serde_json::Value = serde_json::from_str(&refused.body).unwrap();
    assert_eq!(body["error"], format!("token {revoked_id} was revoked"));
    let log = node.log();
    for token in [&admin, &ingest, &read, &other, &expired, &revoked, &wrong] {
        assert!(
            !log.contains(&token[12..]),
            "a token's secret is in the server log"
        );
    }
    assert!(
        log.contains("authentication required reason=\"the PostgreSQL store\""),
        "{log}"
    );
}

/// The status of an event stream request (the stream itself is left open and dropped).
fn sse_status(addr: SocketAddr, headers: &[(&str, &str)]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("GET /api/v1/events HTTP/1.1\r\nHost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn an_address_that_keeps_failing_is_refused_for_a_while() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (read, _) = make_token(&store, "default", "read", "reader", None);
    let node = Node::start(&store, data.path(), &["--auth-failures-per-minute", "3"]);
    let wrong = bearer(&format!("dtk_{}", "x".repeat(46)));
    for _ in 0..3 {
        let reply = http(
            node.api,
            "GET",
            "/api/v1/traces",
            &[("Authorization", &wrong)],
            b"",
        );
        assert_eq!(reply.status, 401);
    }
    // Now even a good token from this address waits, and is told how long.
    let limited = http(
        node.api,
        "GET",
        "/api/v1/traces",
        &[("Authorization", &bearer(&read))],
        b"",
    );
    assert_eq!(limited.status, 429, "{}", limited.body);
    let wait: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(
        limited
            .body
            .contains("too many failed authentication attempts")
    );
    let otlp = http(
        node.http,
        "POST",
        "/v1/traces",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(otlp.status, 429, "the limit covers every port");
}

#[test]
fn two_nodes_on_one_database_see_each_others_data_live() {
    let Some(store) = postgres() else { return };
    two_nodes_see_each_others_data_live(&store);
}

/// On ClickHouse, which has no notifications, node B hears of A's writes by polling the
/// `commits` table every write appends to: its event stream reports them without another
/// request to B.
#[test]
fn two_nodes_on_one_clickhouse_see_each_others_data_live() {
    let Some(store) = clickhouse() else { return };
    two_nodes_see_each_others_data_live(&store);
}

fn two_nodes_see_each_others_data_live(store: &str) {
    let store = store.to_owned();
    let data = tempfile::tempdir().unwrap();
    let (token, _) = make_token(&store, "team", "ingest,read", "both", None);
    let auth = bearer(&token);
    let a = Node::start(&store, &data.path().join("a"), &[]);
    let b = Node::start(&store, &data.path().join("b"), &[]);

    // Node B's event stream is open before anything arrives.
    let mut stream = TcpStream::connect(b.api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /api/v1/events HTTP/1.1\r\nHost: {}\r\nAuthorization: {auth}\r\n\r\n",
        b.api
    )
    .unwrap();
    let mut events = BufReader::new(stream);
    let first = next_event(&mut events);
    assert_eq!(first["committed_spans"], 0, "{first}");

    let trace = "0af7651916cd43dd8448eb211c80319c";
    let sent = http(
        a.http,
        "POST",
        "/v1/traces",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        otlp_json(trace, "checkout", now_nanos()).as_bytes(),
    );
    assert_eq!(sent.status, 200);
    // B hears of A's commit through the database, with A's span count.
    let heard = next_event(&mut events);
    assert_eq!(
        (
            heard["committed_spans"].as_u64(),
            heard["new_spans"].as_u64()
        ),
        (Some(2), Some(2)),
        "{heard}"
    );
    // And B serves the trace.
    let listed = http(
        b.api,
        "GET",
        &format!("/api/v1/traces/{trace}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(listed.status, 200, "{}", listed.body);
    let summary: serde_json::Value = serde_json::from_str(&listed.body).unwrap();
    assert_eq!(summary["root_name"], "checkout", "{summary}");
    // Data sent to B is on A too.
    let other = "1af7651916cd43dd8448eb211c80319c";
    assert_eq!(
        http(
            b.http,
            "POST",
            "/v1/traces",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth)
            ],
            otlp_json(other, "pay", now_nanos()).as_bytes()
        )
        .status,
        200
    );
    let on_a = http(
        a.api,
        "GET",
        "/api/v1/traces",
        &[("Authorization", &auth)],
        b"",
    );
    let names: Vec<String> =
        serde_json::from_str::<serde_json::Value>(&on_a.body).unwrap()["traces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["root_name"].as_str().unwrap().to_owned())
            .collect();
    assert_eq!(names, ["pay", "checkout"]);
}

/// The data of the next `ingest` event on an open event stream.
fn next_event(events: &mut BufReader<TcpStream>) -> serde_json::Value {
    let mut line = String::new();
    loop {
        line.clear();
        let read = events
            .read_line(&mut line)
            .expect("an event within the time limit");
        assert!(read > 0, "the event stream ended");
        if let Some(data) = line.strip_prefix("data:") {
            return serde_json::from_str(data.trim()).unwrap();
        }
    }
}

#[test]
fn every_acknowledged_span_is_in_postgres_after_sigkill() {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (token, _) = make_token(&store, "default", "ingest", "load", None);
    let mut node = Node::start(&store, data.path(), &[]);
    type Acked = Arc<Mutex<HashMap<devtrace_model::TraceId, HashSet<devtrace_model::SpanId>>>>;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..3u8)
        .map(|client| {
            let (acked, stop, addr, token) = (
                Arc::clone(&acked),
                Arc::clone(&stop),
                node.http,
                token.clone(),
            );
            std::thread::spawn(move || {
                use prost::Message;
                let mut sequence = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    let (request, ids) = common::span_batch(client, sequence);
                    sequence += 1;
                    match post_authorized(addr, &token, &request.encode_to_vec()) {
                        Ok(200) => {
                            let mut acked = acked.lock().unwrap();
                            for (trace, span) in ids {
                                acked.entry(trace).or_default().insert(span);
                            }
                        }
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let spans = |acked: &Acked| {
        acked
            .lock()
            .unwrap()
            .values()
            .map(HashSet::len)
            .sum::<usize>()
    };
    while spans(&acked) < 10_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill();
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.join().unwrap();
    }
    let acked = Arc::try_unwrap(acked).unwrap().into_inner().unwrap();
    let expected: usize = acked.values().map(HashSet::len).sum();
    assert!(
        expected >= 10_000,
        "too little was acknowledged before the kill ({expected})"
    );

    use devtrace_store::Store;
    let stored = devtrace_store::postgres::PgStore::open(&store).unwrap();
    let mut missing = 0;
    for (trace_id, span_ids) in &acked {
        let found: HashSet<devtrace_model::SpanId> = stored
            .get_trace(*trace_id)
            .unwrap()
            .map(|t| t.spans.spans.iter().map(|s| s.span_id).collect())
            .unwrap_or_default();
        missing += span_ids.difference(&found).count();
    }
    assert_eq!(
        missing, 0,
        "{missing} of {expected} acknowledged spans are missing"
    );
    // A node started again serves the same store.
    let again = Node::start(&store, data.path(), &[]);
    let health = http(again.api, "GET", "/api/v1/health", &[], b"");
    assert_eq!(health.status, 200);
}

fn post_authorized(addr: SocketAddr, token: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut status_line = String::new();
    BufReader::new(stream).read_line(&mut status_line)?;
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))
}

#[test]
fn retention_deletes_old_data_while_serving() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (token, _) = make_token(&store, "default", "ingest,read", "ci", None);
    let auth = bearer(&token);
    let node = Node::start(&store, data.path(), &["--retention", "1d"]);
    let day = 86_400 * 1_000_000_000u64;
    for (trace, age) in [("01", 3 * day), ("02", 2 * day), ("03", 0)] {
        let id = format!("{trace:0>32}");
        let reply = http(
            node.http,
            "POST",
            "/v1/traces",
            &[
                ("Content-Type", "application/json"),
                ("Authorization", &auth),
            ],
            otlp_json(&id, &format!("job {trace}"), now_nanos() - age).as_bytes(),
        );
        assert_eq!(reply.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    // Read the store directly: no listing window can hide what is still there.
    let stored = devtrace_store::postgres::PgStore::open(&store).unwrap();
    let names = || -> Vec<String> {
        use devtrace_store::Store;
        stored
            .list_traces(&devtrace_store::TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|t| t.root_name)
            .collect()
    };
    while names().len() > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        names(),
        ["job 03"],
        "the two old traces are gone, the new one stays"
    );
    assert!(
        node.log().contains("retention: deleted data older than"),
        "{}",
        node.log()
    );
}

#[test]
fn the_login_page_trades_a_read_token_for_a_strict_http_only_cookie() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (read, _) = make_token(&store, "web", "read", "browser", None);
    let (ingest, _) = make_token(&store, "web", "ingest", "ci", None);
    let node = Node::start(&store, data.path(), &[]);
    let redirected = http(node.api, "GET", "/sessions?agent=codex", &[], b"");
    assert_eq!(redirected.status, 303);
    assert_eq!(
        redirected.header("location"),
        Some("/login?next=/sessions%3Fagent%3Dcodex")
    );
    let page = http(node.api, "GET", "/login?next=/sessions", &[], b"");
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(r#"<input type="hidden" name="next" value="/sessions">"#),
        "{}",
        page.body
    );
    // An ingest token cannot sign in to read; the page says why.
    let form = |token: &str| format!("token={token}&next=%2Fsessions");
    let refused = http(
        node.api,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form(&ingest).as_bytes(),
    );
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("may not read: its scopes are ingest"),
        "{}",
        refused.body
    );
    assert!(refused.header("set-cookie").is_none());
    let signed_in = http(
        node.api,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form(&read).as_bytes(),
    );
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.header("location"), Some("/sessions"));
    let cookie = signed_in
        .headers
        .iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("set-cookie") && v.starts_with("devtrace_token="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        cookie.contains("; HttpOnly") && cookie.contains("; SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let session_cookie = cookie.split(';').next().unwrap().to_owned();
    let page = http(
        node.api,
        "GET",
        "/sessions",
        &[("Cookie", &session_cookie)],
        b"",
    );
    assert_eq!(page.status, 200);
    let me = http(
        node.api,
        "GET",
        "/api/v1/me",
        &[("Cookie", &session_cookie)],
        b"",
    );
    let me: serde_json::Value = serde_json::from_str(&me.body).unwrap();
    assert_eq!(
        (me["project"].as_str(), me["projects"].clone()),
        (Some("web"), serde_json::json!(["web"]))
    );
    // A request from another site would carry no cookie (SameSite); one claiming to come from
    // there is refused by the Origin check before authentication.
    let foreign = http(
        node.api,
        "GET",
        "/api/v1/traces",
        &[
            ("Cookie", &session_cookie),
            ("Origin", "https://evil.example"),
        ],
        b"",
    );
    assert_eq!(foreign.status, 403);
}

#[test]
fn tls_serves_https_otlp_and_grpc_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let node = Node::start(
        dir.path().join("data").to_str().unwrap(),
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(node.log().contains("API on https://"), "{}", node.log());
    // HTTPS with Python's TLS client, trusting only this certificate.
    let python = |url: String, body: Option<&str>| -> String {
        let script = r#"
import ssl, sys, urllib.request
context = ssl.create_default_context(cafile=sys.argv[1])
data = sys.argv[3].encode() if len(sys.argv) > 3 else None
request = urllib.request.Request(sys.argv[2], data=data, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, context=context, timeout=20) as reply:
    print(reply.status, reply.read().decode())
"#;
        let mut command = Command::new("python3");
        command.args(["-c", script, cert.to_str().unwrap(), &url]);
        if let Some(body) = body {
            command.arg(body);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let health = python(
        format!("https://localhost:{}/api/v1/health", node.api.port()),
        None,
    );
    assert!(health.starts_with("200 {\"status\":\"ok\""), "{health}");
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sent = python(
        format!("https://localhost:{}/v1/traces", node.http.port()),
        Some(&otlp_json(trace, "secure", now_nanos())),
    );
    assert!(sent.starts_with("200 {}"), "{sent}");
    // Plain HTTP to a TLS port gets nowhere.
    let mut plain = TcpStream::connect(node.api).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(plain, "GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"));
    // OTLP/gRPC over TLS.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let code = runtime.block_on(async {
        use devtrace_ingest::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(
                certified.cert.pem(),
            ))
            .domain_name("localhost");
        let channel = tonic::transport::Channel::from_shared(format!(
            "https://localhost:{}",
            node.grpc.port()
        ))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
        let (request, _) = common::span_batch(7, 7);
        match TraceServiceClient::new(channel).export(request).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    });
    assert_eq!(code, tonic::Code::Ok);
    let listed = cli(dir.path().join("data").to_str().unwrap(), &["ls", "--json"]);
    let names = String::from_utf8(listed.stdout).unwrap();
    assert!(
        names.contains("\"secure\"") && names.contains("step-0"),
        "{names}"
    );
}

#[test]
fn a_key_that_does_not_fit_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let one = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let two = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (
        dir.path().join("cert.pem"),
        dir.path().join("other-key.pem"),
    );
    std::fs::write(&cert, one.cert.pem()).unwrap();
    std::fs::write(&key, two.key_pair.serialize_pem()).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(dir.path().join("data"))
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--api-listen",
            "127.0.0.1:0",
        ])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the key {} does not go with the certificate {}",
            key.display(),
            cert.display()
        )),
        "{stderr}"
    );
}

#[test]
fn the_remote_cli_prints_what_the_local_cli_prints() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/claude-code/sample-project");
    for args in [
        vec!["--project", "web", "demo", "--runs", "4"],
        vec![
            "--project",
            "web",
            "import",
            "claude-code",
            sample.to_str().unwrap(),
        ],
    ] {
        let out = cli(&store, &args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (read, _) = make_token(&store, "web", "read", "laptop", None);
    let (ingest, _) = make_token(&store, "web", "ingest", "ci", None);
    let node = Node::start(&store, &data.path().join("node"), &[]);
    let server = format!("http://{}", node.api);
    let remote = |token: &str, args: &[&str]| {
        Command::new(BIN)
            .args(["--server", &server, "--token", token])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DEVTRACE_STORE")
            .output()
            .unwrap()
    };
    let local = |args: &[&str]| {
        let mut all = vec!["--project", "web"];
        all.extend(args);
        cli(&store, &all)
    };
    let listed: serde_json::Value =
        serde_json::from_slice(&local(&["ls", "--json"]).stdout).unwrap();
    let trace = listed[0]["trace_id"].as_str().unwrap().to_owned();
    for args in [
        vec!["ls"],
        vec!["ls", "--json", "--errors"],
        vec!["show", &trace[..10]],
        vec!["show", &trace, "--json"],
        vec!["export", &trace],
        vec!["perf", "journal.generate"],
        vec!["insights"],
        vec!["errors"],
        vec!["sessions"],
        vec!["session", "show", "3f2a9b1c"],
        vec!["show", "ffff"],
    ] {
        let (here, there) = (local(&args), remote(&read, &args));
        assert_eq!(
            (
                here.status.code(),
                String::from_utf8_lossy(&here.stdout),
                String::from_utf8_lossy(&here.stderr)
            ),
            (
                there.status.code(),
                String::from_utf8_lossy(&there.stdout),
                String::from_utf8_lossy(&there.stderr)
            ),
            "devtrace {args:?}: local and remote differ"
        );
        assert!(
            here.stdout.len() > 20 || args == ["show", "ffff"],
            "{args:?} printed too little"
        );
    }
    // What a server cannot do for the CLI, and a token that may not read, say so.
    let refused = remote(&ingest, &["ls"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("may not read: its scopes are ingest"),
        "{stderr}"
    );
    let import = remote(&read, &["import", "x.json"]);
    assert!(
        String::from_utf8_lossy(&import.stderr)
            .contains("this command works on a store, not through a server"),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
}

#[test]
fn watch_reads_one_project_through_a_server_or_from_the_store() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    // An admin token of the default project reads any project: --project chooses.
    let (admin, _) = make_token(&store, "default", "admin", "lead", None);
    let (web_ingest, _) = make_token(&store, "web", "ingest", "web-ci", None);
    let (other_ingest, _) = make_token(&store, "other", "ingest", "other-ci", None);
    let node = Node::start(&store, &data.path().join("node"), &[]);
    let server = format!("http://{}", node.api);
    let watch = |args: &[&str]| {
        Command::new(BIN)
            .args(["watch", "--plain", "--exit-after", "6s"])
            .args(args)
            .env("NO_COLOR", "1")
            .env_remove("DEVTRACE_STORE")
            .env_remove("DEVTRACE_SERVER")
            .env_remove("DEVTRACE_TOKEN")
            .env_remove("DEVTRACE_PROJECT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The same global flags as every other command: --server, --token, --project.
    let remote = watch(&["--server", &server, "--token", &admin, "--project", "web"]);
    let direct = watch(&["--store", &store, "--project", "other"]);
    std::thread::sleep(Duration::from_millis(1500));
    let (web_trace, other_trace) = ("a1".repeat(16), "b2".repeat(16));
    for (token, trace, name) in [
        (&web_ingest, &web_trace, "checkout"),
        (&other_ingest, &other_trace, "billing"),
    ] {
        let reply = http(
            node.http,
            "POST",
            "/v1/traces",
            &[
                ("Authorization", &bearer(token)),
                ("Content-Type", "application/json"),
            ],
            otlp_json(trace, name, now_nanos()).as_bytes(),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let finish = |child: Child| {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let (remote, direct) = (finish(remote), finish(direct));
    assert_eq!(
        remote.lines().next(),
        Some(format!("watching server {server}").as_str()),
        "{remote}"
    );
    assert!(
        remote.contains(&format!(
            " trace {} \"checkout\" service \"shop\"",
            &web_trace[..8]
        )),
        "{remote}"
    );
    assert!(
        !remote.contains("billing"),
        "another project's trace: {remote}"
    );
    assert!(
        direct
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("watching store postgres://devtrace@")),
        "{direct}"
    );
    assert!(
        direct.contains(&format!(
            " trace {} \"billing\" service \"shop\"",
            &other_trace[..8]
        )),
        "{direct}"
    );
    assert!(
        !direct.contains("checkout"),
        "another project's trace: {direct}"
    );
}

/// A repository whose test fails, its commit, and a session document whose patch fixes it.
fn qa_session(dir: &Path, id: &str) -> serde_json::Value {
    let (head, patch) = common::failing_sum_repository(dir);
    common::sum_session_document(id, dir, &head, "node --test", &patch)
}

/// GET with a bearer token, as JSON.
fn get_json(addr: SocketAddr, path: &str, token: &str) -> (u16, serde_json::Value) {
    let reply = http(addr, "GET", path, &[("Authorization", &bearer(token))], b"");
    let value = serde_json::from_str(&reply.body).unwrap_or(serde_json::Value::Null);
    (reply.status, value)
}

/// QA on a team server: the queue is in PostgreSQL. A session uploaded to one node (`--qa`,
/// no workers) is checked by the workers of another, in the session's project; `qa run
/// --wait` on the store queues a job a node's worker runs; another project sees none of it.
#[test]
fn qa_runs_on_postgres_through_the_workers_of_any_node() {
    let Some(store) = postgres() else { return };
    qa_runs_through_the_workers_of_any_node(&store, &[]);
}

/// The same on ClickHouse, whose QA queue is a PostgreSQL database named beside it
/// (`--queue-store`): sessions in ClickHouse, jobs claimed atomically in PostgreSQL.
#[test]
fn qa_runs_on_clickhouse_with_a_postgres_queue_through_the_workers_of_any_node() {
    let (Some(store), Some(queue)) = (clickhouse(), postgres()) else {
        return;
    };
    qa_runs_through_the_workers_of_any_node(&store, &["--queue-store", &queue]);
}

/// Without a queue store, QA on ClickHouse says the store keeps no queue and names the
/// setting that adds one; a queue store beside a PostgreSQL store, or one that is not a
/// PostgreSQL URL, is refused naming what to change.
#[test]
fn qa_on_clickhouse_without_a_queue_store_names_the_setting() {
    let (Some(store), Some(postgres)) = (clickhouse(), postgres()) else {
        return;
    };
    let text = |output: std::process::Output| -> (Option<i32>, String) {
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, message) = text(cli(&store, &["qa", "status"]));
    assert_eq!(code, Some(1), "{message}");
    assert!(
        message.contains("keeps no QA job queue: the QA job queue needs a claim that hands each job to one worker, which ClickHouse cannot do atomically; name a PostgreSQL database for it with --queue-store postgres://"),
        "{message}"
    );
    let (code, message) = text(cli(
        &postgres,
        &["qa", "status", "--queue-store", &postgres],
    ));
    assert_eq!(code, Some(1), "{message}");
    assert!(
        message.contains("keeps its own QA queue: drop --queue-store"),
        "{message}"
    );
    let (code, message) = text(cli(&store, &["qa", "status", "--queue-store", &store]));
    assert_eq!(code, Some(1), "{message}");
    assert!(message.contains("is not a PostgreSQL URL"), "{message}");
}

fn qa_runs_through_the_workers_of_any_node(store: &str, queue: &[&str]) {
    let store = store.to_owned();
    let with_queue = |args: &[&str]| -> Vec<String> {
        queue.iter().chain(args).map(|a| (*a).to_owned()).collect()
    };
    let cli = |store: &str, args: &[&str]| {
        cli(
            store,
            &with_queue(args)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )
    };
    assert!(
        Command::new("bwrap").arg("--version").output().is_ok(),
        "this test needs bubblewrap: apt-get install bubblewrap (scripts/test installs it)"
    );
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let session = "d0000000-0000-4000-8000-00000000000d";
    let doc = qa_session(&dir.path().join("repo"), session);
    let (ingest, _) = make_token(&store, "web", "ingest", "ci", None);
    let (read, _) = make_token(&store, "web", "read", "dashboards", None);
    let (qa, _) = make_token(&store, "web", "qa", "checker", None);
    let (outsider, _) = make_token(&store, "other", "read,qa", "them", None);
    let front_args = with_queue(&["--qa", "--qa-workers", "0"]);
    let front_args: Vec<&str> = front_args.iter().map(String::as_str).collect();
    let front = Node::start(&store, &dir.path().join("front"), &front_args);
    let worker_args = with_queue(&["--qa-workers", "2"]);
    let worker_args: Vec<&str> = worker_args.iter().map(String::as_str).collect();
    let worker = Node::start(&store, &dir.path().join("worker"), &worker_args);
    let sent = http(
        front.api,
        "POST",
        "/api/v1/sessions",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(&ingest)),
        ],
        doc.to_string().as_bytes(),
    );
    assert_eq!(sent.status, 201, "{}", sent.body);

    // Queued on upload by the front node, run by the other node's worker.
    let page = format!("/api/v1/sessions/{session}/qa");
    let deadline = Instant::now() + Duration::from_secs(90);
    let qa_page = loop {
        let (status, value) = get_json(front.api, &page, &read);
        assert_eq!(status, 200, "{value}");
        if value["jobs"][0]["state"] == "done" && value["jobs"][0]["written_to_session"] == true {
            break value;
        }
        assert!(
            Instant::now() < deadline,
            "the job did not finish: {value}\nworker: {}",
            worker.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let job = &qa_page["jobs"][0];
    assert_eq!(job["verdict"], "resolved", "{qa_page}");
    assert!(
        job["worker"]
            .as_str()
            .unwrap()
            .contains(&format!(":{}:", worker.child.id())),
        "run by the worker node: {job}"
    );
    let (_, jobs) = get_json(worker.api, "/api/v1/qa/jobs", &read);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");

    // Another project's token sees neither the session nor its jobs, and cannot queue it.
    let (status, _) = get_json(front.api, &page, &outsider);
    assert_eq!(status, 404);
    let (_, theirs) = get_json(worker.api, "/api/v1/qa/jobs", &outsider);
    assert_eq!(theirs["jobs"], serde_json::json!([]), "{theirs}");
    let queued = http(
        front.api,
        "POST",
        &page,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(&outsider)),
        ],
        b"{}",
    );
    assert_eq!(queued.status, 404, "{}", queued.body);

    // The qa scope queues a job over REST (a retry of a checked session: a new job).
    let queued = http(
        front.api,
        "POST",
        &page,
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer(&qa)),
        ],
        b"{}",
    );
    assert_eq!(queued.status, 202, "{}", queued.body);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (_, jobs) = get_json(front.api, "/api/v1/qa/jobs", &read);
        let jobs = jobs["jobs"].as_array().cloned().unwrap_or_default();
        if jobs.len() == 2 && jobs.iter().all(|j| j["state"] == "done") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second job did not finish: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // `qa run --wait` on the store, in the project: a node's worker takes the job (or, when it
    // is still queued a few seconds later, this command runs it); the result is the same.
    let output = Command::new(BIN)
        .args([
            "qa", "run", "d0000000", "--wait", "--json", "--store", &store,
        ])
        .args(queue)
        .args(["--project", "web", "--data"])
        .arg(dir.path().join("cli"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(shown["jobs"][0]["verdict"], "resolved", "{shown}");
    let status = cli(&store, &["qa", "status", "--json", "--project", "web"]);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["counts"]["done"], 3, "{status}");
    let elsewhere = cli(&store, &["qa", "status", "--json", "--project", "other"]);
    let elsewhere: serde_json::Value = serde_json::from_slice(&elsewhere.stdout).unwrap();
    assert_eq!(elsewhere["jobs"], serde_json::json!([]), "{elsewhere}");
    // The result was written into the session, in its project, once per job.
    let shown = cli(&store, &["show", "d0000000", "--json", "--project", "web"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert_eq!(
        text.matches("\"qa resolved\"").count(),
        3,
        "one qa span a job"
    );
}

#[test]
fn a_recording_goes_to_the_chosen_postgres_store_and_project() {
    let Some(store) = postgres() else { return };
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("shop");
    std::fs::create_dir(&repo).unwrap();
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
    std::fs::write(repo.join("cart.py"), "def total(p):\n    return sum(p)\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "the cart"]);
    let data = dir.path().join("data");
    let devtrace = |args: &[&str]| {
        let output = Command::new(BIN)
            .current_dir(&repo)
            .args(args)
            .args(["--store", &store, "--project", "web", "--data"])
            .arg(&data)
            .env_remove("DEVTRACE_SERVER")
            .env_remove("DEVTRACE_TOKEN")
            .env_remove("DEVTRACE_CONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "devtrace {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let started = devtrace(&["record", "start", "--task", "team work", "--no-watch"]);
    let said = String::from_utf8_lossy(&started.stderr);
    assert!(
        said.contains("  goes to:       the store postgres://devtrace@")
            && !said.contains(":devtrace@"),
        "{said}"
    );
    std::fs::write(
        repo.join("cart.py"),
        "def total(p):\n    return sum(p, 0)\n",
    )
    .unwrap();
    let stopped = devtrace(&["record", "stop"]);
    let said = String::from_utf8_lossy(&stopped.stderr);
    assert!(said.contains("stored in postgres://devtrace@"), "{said}");

    let listed: serde_json::Value =
        serde_json::from_slice(&devtrace(&["sessions", "--json"]).stdout).unwrap();
    assert_eq!(listed[0]["title"], "team work", "{listed}");
    assert_eq!(listed[0]["agent"], "developer");
    // Only in project web.
    let other = cli(&store, &["sessions", "--json"]);
    assert!(other.status.success());
    let other: serde_json::Value = serde_json::from_slice(&other.stdout).unwrap();
    assert_eq!(other.as_array().map(Vec::len), Some(0), "{other}");
}

#[test]
fn agent_metrics_go_to_the_tokens_project_and_add_up_there() {
    let Some(store) = postgres() else { return };
    let data = tempfile::tempdir().unwrap();
    let (ingest, _) = make_token(&store, "web", "ingest", "agents", None);
    let (read, _) = make_token(&store, "web", "read", "dashboards", None);
    let (other, _) = make_token(&store, "mobile", "read", "mobile", None);
    let node = Node::start(&store, &data.path().join("node"), &[]);
    let t = now_nanos();
    let cost = |start: u64, time: u64, usd: f64| {
        serde_json::json!({"resourceMetrics": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
            "scopeMetrics": [{"metrics": [{
                "name": "claude_code.cost.usage", "unit": "USD",
                "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
                    "attributes": [{"key": "session.id", "value": {"stringValue": "s-team"}}],
                    "startTimeUnixNano": start.to_string(), "timeUnixNano": time.to_string(),
                    "asDouble": usd}]}}]}]}]})
        .to_string()
    };
    let send = |token: Option<&str>, body: &str| {
        let auth = token.map(bearer);
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        http(node.http, "POST", "/v1/metrics", &headers, body.as_bytes())
    };
    assert_eq!(send(None, &cost(t, t + 10, 0.25)).status, 401);
    assert_eq!(send(Some(&read), &cost(t, t + 10, 0.25)).status, 403);
    for body in [cost(t, t + 10, 0.25), cost(t + 10, t + 20, 0.5)] {
        let sent = send(Some(&ingest), &body);
        assert_eq!(sent.status, 200, "{}", sent.body);
        // The exporter retries: stored once.
        assert_eq!(send(Some(&ingest), &body).status, 200);
    }
    let usage = |token: &str| {
        let reply = http(
            node.api,
            "GET",
            "/api/v1/usage",
            &[("Authorization", &bearer(token))],
            b"",
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        serde_json::from_str::<serde_json::Value>(&reply.body).unwrap()
    };
    let web = usage(&read);
    let days = web["days"].as_array().unwrap();
    let total: f64 = days
        .iter()
        .map(|d| d["usage"]["cost_usd"].as_f64().unwrap_or(0.0))
        .sum();
    assert_eq!(total, 0.75, "{web}");
    let stats = http(
        node.api,
        "GET",
        "/api/v1/stats",
        &[("Authorization", &bearer(&read))],
        b"",
    );
    let stats: serde_json::Value = serde_json::from_str(&stats.body).unwrap();
    assert_eq!(stats["metric_points"], 2, "{stats}");
    // Another project's token sees none of it.
    let mobile = usage(&other);
    assert_eq!(mobile["days"].as_array().map(Vec::len), Some(0), "{mobile}");
}
