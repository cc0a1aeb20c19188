//! Helpers shared by the CLI's integration tests: a real `devtrace serve` process and a tiny
//! blocking HTTP client.

#![allow(dead_code)]

use devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest;
use devtrace_ingest::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use devtrace_ingest::otlp::{
    common::v1::{AnyValue, KeyValue, any_value::Value},
    resource::v1::Resource,
};
use devtrace_model::{SpanId, TraceId};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_devtrace");

/// A `devtrace serve` child process on free ports.
pub struct Server {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
}

impl Server {
    pub fn start(data: &Path) -> Self {
        start_server_with(data, &[], &[])
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Whether the process is still running (it has not exited or crashed).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "devtrace serve exited with {exit}");
    }
}

/// A server left running by a failing test is killed, not leaked.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn unbound() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Runs `devtrace --data DATA ARGS…` with NO_COLOR=1, a 100-column terminal and times in UTC
/// (TZ=UTC), whatever the machine's zone.
pub fn devtrace(data: &Path, args: &[&str]) -> Output {
    devtrace_at_width(data, 100, args)
}

/// [`devtrace`] in a 200-column terminal: what a command says, with its wide tables whole and
/// its sentences on one line (fitting to the width is tested in cli_contract.rs).
pub fn devtrace_wide(data: &Path, args: &[&str]) -> Output {
    devtrace_at_width(data, 200, args)
}

/// [`devtrace`] in a terminal `columns` wide (a wide table shown whole).
pub fn devtrace_at_width(data: &Path, columns: usize, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", columns.to_string())
        .env("TZ", "UTC")
        .output()
        .expect("running devtrace")
}

/// `devtrace --data DATA ARGS…` as (exit code, stdout, stderr), for tests that check all three
/// whole (so in a terminal wide enough not to break a line).
pub fn devtrace_parts(data: &Path, args: &[&str]) -> (i32, String, String) {
    let output = devtrace_wide(data, args);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The subcommands a `--help` text lists under "Commands:" (without `help`): how the tests
/// that cover every command find them.
pub fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect()
}

/// Runs `command` with `input` on its stdin; its output.
pub fn output_with_stdin(mut command: Command, input: &[u8]) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running devtrace");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// The stdout of a command that must have succeeded (its stderr in the message when not).
pub fn ok(output: Output) -> String {
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

/// Writes `text` (OTLP/JSON, one document a line) to `DATA/NAME` and imports it.
pub fn import_text(data: &Path, name: &str, text: &str) {
    let file = data.join(name);
    std::fs::write(&file, text).unwrap();
    ok(devtrace(data, &["import", file.to_str().unwrap()]));
}

/// The findings of `kind` that `devtrace insights` gives over every trace of `lines` (OTLP/JSON
/// exports, one a line) imported into a fresh store.
pub fn imported_findings(lines: &[String], kind: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    import_text(dir.path(), "runs.jsonl", &lines.join("\n"));
    let insights: serde_json::Value = serde_json::from_str(&ok(devtrace(
        dir.path(),
        &["insights", "--json", "--since", "1000d"],
    )))
    .unwrap();
    insights["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .cloned()
        .collect()
}

/// POSTs a protobuf body; returns the HTTP status code.
pub fn post_protobuf(addr: SocketAddr, path: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let code = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
    Ok(code)
}

/// Five traces of ten spans each, ids unique to `(client, sequence)`.
pub fn span_batch(
    client: u8,
    sequence: u32,
) -> (ExportTraceServiceRequest, Vec<(TraceId, SpanId)>) {
    let mut spans = Vec::new();
    let mut ids = Vec::new();
    for t in 0..5u8 {
        let mut trace = [0u8; 16];
        trace[0] = client;
        trace[1..5].copy_from_slice(&sequence.to_be_bytes());
        trace[5] = t;
        trace[15] = 1;
        for s in 0..10u8 {
            let span_id = [client, t, s + 1, 0, 0, 0, 0, 1];
            ids.push((TraceId(trace), SpanId(span_id)));
            spans.push(Span {
                trace_id: trace.to_vec(),
                span_id: span_id.to_vec(),
                parent_span_id: if s == 0 {
                    vec![]
                } else {
                    vec![client, t, 1, 0, 0, 0, 0, 1]
                },
                name: format!("step-{s}"),
                start_time_unix_nano: 1_700_000_000_000_000_000
                    + u64::from(sequence) * 1_000
                    + u64::from(s),
                end_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(sequence) * 1_000 + 100,
                attributes: vec![KeyValue {
                    key: "db.query.text".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(format!(
                            "SELECT * FROM t WHERE id = {sequence}"
                        ))),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
    }
    (export_request("crash-test", spans), ids)
}

/// An OTLP export request of `spans` from one resource named `service`.
pub fn export_request(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A `devtrace serve` with extra arguments and environment (QA workers, leases).
pub fn start_server_with(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    start_server_on(data, ["127.0.0.1:0"; 3], args, env)
}

/// A `devtrace serve` whose stderr goes to `stderr` (a file the test reads afterwards).
pub fn start_server_logging(
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stderr: Stdio,
) -> Server {
    start_server_full(data, ["127.0.0.1:0"; 3], args, env, stderr)
}

/// A `devtrace serve` listening on `listen` (gRPC, OTLP/HTTP, API).
pub fn start_server_on(
    data: &Path,
    listen: [&str; 3],
    args: &[&str],
    env: &[(&str, &str)],
) -> Server {
    start_server_full(data, listen, args, env, Stdio::null())
}

/// `devtrace serve --data DATA` with all three listeners on free loopback ports, not started:
/// for tests that expect serve to refuse or fail and read its output.
pub fn serve_command(data: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--api-listen", "127.0.0.1:0", "--data"])
        .arg(data);
    command
}

fn start_server_full(
    data: &Path,
    listen: [&str; 3],
    args: &[&str],
    env: &[(&str, &str)],
    stderr: Stdio,
) -> Server {
    let serve_file = data.join("serve.json");
    let _ = std::fs::remove_file(&serve_file);
    let child = Command::new(BIN)
        .args([
            "serve",
            "--grpc-listen",
            listen[0],
            "--http-listen",
            listen[1],
            "--api-listen",
            listen[2],
        ])
        .args(args)
        .arg("--data")
        .arg(data)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("starting devtrace serve");
    let mut server = Server {
        child,
        grpc: unbound(),
        http: unbound(),
        api: unbound(),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = std::fs::read_to_string(&serve_file)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
        if let Some(info) = info
            && info["pid"].as_u64() == Some(u64::from(server.child.id()))
        {
            let addr = |key: &str| info[key].as_str().unwrap().parse().unwrap();
            (server.grpc, server.http, server.api) = (addr("grpc"), addr("http"), addr("api"));
            return server;
        }
        assert!(
            Instant::now() < deadline,
            "devtrace serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `git -C dir args…` with a fixed author; its trimmed stdout. Panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
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

/// QA's test repository: a `sum` whose test fails at its commit; the commit and a patch that
/// fixes it.
pub fn failing_sum_repository(dir: &Path) -> (String, String) {
    std::fs::create_dir_all(dir.join("test")).unwrap();
    git(dir, &["init", "--quiet"]);
    std::fs::write(dir.join("sum.js"), "module.exports = (a, b) => a - b;\n").unwrap();
    std::fs::write(
        dir.join("test/sum.test.js"),
        "const test = require('node:test');\nconst assert = require('node:assert');\nconst sum = require('../sum.js');\ntest('adds', () => assert.strictEqual(sum(2, 3), 5));\ntest('adds zero', () => assert.strictEqual(sum(2, 0), 2));\n",
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

/// A `trace-1.0.0` session on [`failing_sum_repository`]: a failing test run, the file read
/// and edited, a passing run, and `patch` as its final patch.
pub fn sum_session_document(
    id: &str,
    repository: &Path,
    commit: &str,
    command: &str,
    patch: &str,
) -> serde_json::Value {
    serde_json::json!({
        "trace_id": id,
        "version": "trace-1.0.0",
        "task": {"description": "Make sum add", "repository": repository, "commit": commit, "test_command": command},
        "events": [
            {"t": "2026-01-05T10:00:00Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 1},
            {"t": "2026-01-05T10:00:10Z", "type": "file_opened", "file_path": "sum.js"},
            {"t": "2026-01-05T10:00:20Z", "type": "edit", "file_path": "sum.js"},
            {"t": "2026-01-05T10:00:30Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 0}
        ],
        "artifacts": {"final_patch": patch}
    })
}

/// Opens a connection and sends one HTTP/1.1 request (`Connection: close`, the body's
/// `Content-Length`, then `headers`); returns the connection, for the caller to read the answer.
pub fn send_http1(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    stream
}

/// `GET path` on a running server's API port `addr`: the JSON body of a 200 answer (the head
/// and body in the message of anything else).
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let mut stream = send_http1(addr, "GET", path, &[("Accept", "application/json")], b"");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{body}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// A small tmpfs mounted for one test, unmounted when dropped. `None` when this process may
/// not mount (not root, or no CAP_SYS_ADMIN in a container): the test says so and returns,
/// unless `DEVTRACE_REQUIRE_MOUNT=1` or `CI` (`.ci/run` runs as root) makes that a failure.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::piped())
            .output();
        match status {
            Ok(out) if out.status.success() => Some(Self { dir }),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
                assert!(
                    std::env::var_os("DEVTRACE_REQUIRE_MOUNT").is_none() && !ci,
                    "cannot mount a tmpfs: {why}"
                );
                eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {why}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn remount(&self, option: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{option}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {option}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
