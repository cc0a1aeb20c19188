//! The MCP transports to the letter of the specification (2025-06-18 and the versions the
//! server announces), sent raw so nothing in a client library smooths them over: `devtrace
//! mcp` over stdio and `/mcp` on a real `devtrace serve`. Unreadable messages get JSON-RPC
//! errors with `id: null` (never silence, a closed connection or HTTP 415), JSON-RPC batches are
//! answered in 2025-03-26 sessions and refused in the others, Content-Type and Accept are
//! checked, and `DELETE` ends a session.

mod common;

use common::{BIN, Server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const BATCH_REFUSED: &str = "Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send each request as a message of its own";
const BATCH_BEFORE_INITIALIZE: &str = "Invalid Request: no JSON-RPC batch before initialize (a session initialized at MCP 2025-03-26 receives them; 2025-06-18 removed them); send initialize and each request as a message of its own";
const BATCH_IN_2024_11_05: &str = "Invalid Request: JSON-RPC batches are not part of MCP 2024-11-05, this session's version (2025-03-26 added them); send each request as a message of its own";

fn initialize(id: u64) -> Value {
    initialize_at(id, "2025-06-18")
}

fn initialize_at(id: u64, version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {},
        "clientInfo": {"name": "protocol-test", "version": "1"}}})
}

fn initialized() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
}

/// A notification devtrace takes and ignores.
fn roots_changed() -> Value {
    json!({"jsonrpc": "2.0", "method": "notifications/roots/list_changed"})
}

fn ping(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
}

/// Asserts `answer` is the JSON-RPC error `code` with `id: null`.
fn assert_error_without_id(answer: &Value, code: i64) {
    assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert!(answer.as_object().unwrap().contains_key("id"), "{answer}");
    assert_eq!(answer["error"]["code"], code, "{answer}");
}

/// `devtrace mcp` with its stdin and stdout.
struct Stdio_ {
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
}

impl Stdio_ {
    fn start(data: &std::path::Path) -> Self {
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
        }
    }

    fn send_raw(&mut self, line: &[u8]) {
        let input = self.input.as_mut().expect("stdin is open");
        input.write_all(line).unwrap();
        input.write_all(b"\n").unwrap();
        input.flush().unwrap();
    }

    fn send(&mut self, message: &Value) {
        self.send_raw(message.to_string().as_bytes());
    }

    /// The next message on stdout.
    fn answer(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.output.read_line(&mut line).unwrap() > 0,
            "devtrace mcp closed stdout instead of answering"
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
    }
}

impl Drop for Stdio_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn stdio_answers_unreadable_lines_with_json_rpc_errors_before_and_after_initialize() {
    let data = tempfile::tempdir().unwrap();
    let mut mcp = Stdio_::start(data.path());

    // Before initialize: answered, and the connection stays open for the handshake.
    mcp.send_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    let answer = mcp.answer();
    assert_error_without_id(&answer, PARSE_ERROR);
    assert_eq!(
        answer["error"]["message"],
        "Parse error: the message is not valid JSON (line 1, column 38); send one JSON-RPC 2.0 object per message"
    );
    mcp.send_raw(b"[]");
    assert_error_without_id(&mcp.answer(), INVALID_REQUEST);

    mcp.send(&initialize(2));
    let init = mcp.answer();
    assert_eq!(init["id"], 2, "{init}");
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18", "{init}");
    mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));

    // After initialize: each unreadable line gets its error, the session goes on.
    mcp.send_raw(b"not json at all \x01\xff");
    assert_error_without_id(&mcp.answer(), PARSE_ERROR);
    // A batch in a 2025-06-18 session: refused whole.
    mcp.send(&json!([ping(3), ping(4)]));
    let answer = mcp.answer();
    assert_error_without_id(&answer, INVALID_REQUEST);
    assert_eq!(answer["error"]["message"], BATCH_REFUSED);
    mcp.send(&json!({"foo": "bar"}));
    assert_error_without_id(&mcp.answer(), INVALID_REQUEST);
    // A usable id is kept.
    mcp.send(&json!({"jsonrpc": "2.0", "id": 5}));
    let answer = mcp.answer();
    assert_eq!(answer["id"], 5, "{answer}");
    assert_eq!(answer["error"]["code"], INVALID_REQUEST, "{answer}");
    // Blank lines are no messages; a notification nobody knows is never answered.
    mcp.send_raw(b"");
    mcp.send_raw(b"  \r");
    mcp.send(&json!({"jsonrpc": "2.0", "method": "notifications/no_such_thing"}));
    // A line past the 16 MiB limit is refused unread.
    let mut long = vec![b' '; 16 * 1024 * 1024];
    long.extend_from_slice(ping(6).to_string().as_bytes());
    mcp.send_raw(&long);
    let answer = mcp.answer();
    assert_error_without_id(&answer, INVALID_REQUEST);
    assert_eq!(
        answer["error"]["message"],
        "Invalid Request: the message is longer than the 16777216-byte limit; send smaller messages"
    );

    mcp.send(&ping(7));
    assert_eq!(
        mcp.answer(),
        json!({"jsonrpc": "2.0", "id": 7, "result": {}})
    );
    mcp.send(&json!({"jsonrpc": "2.0", "id": 8, "method": "no/such/method"}));
    let answer = mcp.answer();
    assert_eq!(answer["id"], 8, "{answer}");
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    mcp.send(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}));
    let tools = mcp.answer();
    assert!(
        tools["result"]["tools"].as_array().unwrap().len() > 10,
        "{tools}"
    );

    // The end of input ends the session cleanly, the last answer delivered first.
    mcp.send(&ping(10));
    drop(mcp.input.take());
    assert_eq!(
        mcp.answer(),
        json!({"jsonrpc": "2.0", "id": 10, "result": {}})
    );
    let status = mcp.child.wait().unwrap();
    assert!(status.success(), "devtrace mcp exited with {status}");
}

/// One HTTP/1.1 exchange: status, headers (lower-case names) and body. The body is read until
/// the server closes or, for an event stream, until an event answering a request arrived.
fn exchange(addr: SocketAddr, method: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let (mut answer, mut reader) = send(addr, method, headers, body);
    if answer.header("content-type") == Some("text/event-stream") {
        // The stream may stay open: read events until one answers a request.
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            if let Some(data) = line.strip_prefix("data:")
                && data.trim().starts_with('{')
            {
                answer.body = data.trim().to_owned();
                break;
            }
        }
    } else {
        let mut raw = Vec::new();
        reader.read_to_end(&mut raw).unwrap();
        answer.body = decode_body(&answer, raw);
    }
    answer
}

/// A POST whose answer is read to its end, an event stream too (a batch's stream ends once it
/// carried the batch's answer).
fn post_to_end(addr: SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut headers = vec![ACCEPT_BOTH, JSON];
    headers.extend_from_slice(extra);
    let (mut answer, mut reader) = send(addr, "POST", &headers, body);
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw).unwrap();
    answer.body = decode_body(&answer, raw);
    answer
}

/// Sends a request; the answer's status and headers, and the reader at its body.
fn send(
    addr: SocketAddr,
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (Answer, BufReader<std::net::TcpStream>) {
    let stream = common::send_http1(addr, method, "/mcp", headers, body);
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut response_headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap();
        response_headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let answer = Answer {
        status,
        headers: response_headers,
        body: String::new(),
    };
    (answer, reader)
}

/// The body, chunked or not.
fn decode_body(answer: &Answer, raw: Vec<u8>) -> String {
    if answer.header("transfer-encoding") != Some("chunked") {
        return String::from_utf8(raw).unwrap();
    }
    let mut body = Vec::new();
    let mut rest = &raw[..];
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..end]).unwrap(), 16).unwrap();
        if size == 0 {
            return String::from_utf8(body).unwrap();
        }
        body.extend_from_slice(&rest[end + 2..end + 2 + size]);
        rest = &rest[end + 4 + size..];
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The JSON-RPC messages of an event stream's `data` lines (priming events carry none).
    fn events(&self) -> Vec<Value> {
        assert_eq!(self.header("content-type"), Some("text/event-stream"));
        self.body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .filter(|data| !data.is_empty())
            .map(|data| {
                serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {data:?}"))
            })
            .collect()
    }
}

const ACCEPT_BOTH: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

fn post(addr: SocketAddr, extra: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut headers = vec![ACCEPT_BOTH, JSON];
    headers.extend_from_slice(extra);
    exchange(addr, "POST", &headers, body)
}

#[test]
fn http_answers_unreadable_bodies_with_json_rpc_errors_and_checks_content_type_and_accept() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;

    // Not JSON: a parse error (not rmcp's 415), as JSON.
    let answer = post(api, &[], b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_error_without_id(&answer.json(), PARSE_ERROR);

    // A batch outside a session: refused as one Invalid Request.
    let answer = post(
        api,
        &[],
        json!([initialize(1), ping(2)]).to_string().as_bytes(),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), INVALID_REQUEST);
    assert_eq!(answer.json()["error"]["message"], BATCH_BEFORE_INITIALIZE);

    // JSON that is no JSON-RPC message.
    let answer = post(api, &[], b"{\"foo\": \"bar\"}");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), INVALID_REQUEST);
    let answer = post(api, &[], b"42");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), INVALID_REQUEST);

    // Content-Type other than JSON: 415; an Accept without both types: 406.
    let init = initialize(1).to_string();
    let answer = exchange(
        api,
        "POST",
        &[ACCEPT_BOTH, ("Content-Type", "text/plain")],
        init.as_bytes(),
    );
    assert_eq!(answer.status, 415, "{}", answer.body);
    for accept in ["application/json", "text/event-stream", "*/*"] {
        let answer = exchange(api, "POST", &[("Accept", accept), JSON], init.as_bytes());
        assert_eq!(answer.status, 406, "Accept: {accept}: {}", answer.body);
    }
    let answer = exchange(api, "PUT", &[ACCEPT_BOTH, JSON], init.as_bytes());
    assert_eq!(answer.status, 405, "{}", answer.body);

    // A body past the limit: 413, unread.
    let mut big = vec![b' '; 4 * 1024 * 1024];
    big.extend_from_slice(init.as_bytes());
    let answer = post(api, &[], &big);
    assert_eq!(answer.status, 413, "{}", answer.body);

    // With a charset parameter, and after all that, the server still works.
    let answer = exchange(
        api,
        "POST",
        &[
            ACCEPT_BOTH,
            ("Content-Type", "application/json; charset=utf-8"),
        ],
        init.as_bytes(),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["result"]["protocolVersion"], "2025-06-18");
    server.stop();
}

#[test]
fn http_delete_ends_the_session_and_an_ended_session_is_not_found() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;

    let answer = post(api, &[], initialize(1).to_string().as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let session = answer
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let in_session = [
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let answer = post(api, &in_session, initialized.to_string().as_bytes());
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body, "");
    let answer = post(api, &in_session, ping(2).to_string().as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.json(),
        json!({"jsonrpc": "2.0", "id": 2, "result": {}})
    );

    // A protocol version header the server does not speak: 400.
    let answer = post(
        api,
        &[
            ("Mcp-Session-Id", session.as_str()),
            ("MCP-Protocol-Version", "1999-01-01"),
        ],
        ping(3).to_string().as_bytes(),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);

    // An unreadable message inside the session is answered the same way.
    let answer = post(api, &in_session, b"{not json");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), PARSE_ERROR);
    let answer = post(api, &in_session, json!([ping(3)]).to_string().as_bytes());
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), INVALID_REQUEST);
    assert_eq!(answer.json()["error"]["message"], BATCH_REFUSED);

    // DELETE ends it: 204, and from then on the session is unknown (404), DELETE included.
    let answer = exchange(api, "DELETE", &in_session, b"");
    assert_eq!(answer.status, 204, "{}", answer.body);
    let answer = post(api, &in_session, ping(4).to_string().as_bytes());
    assert_eq!(answer.status, 404, "{}", answer.body);
    let answer = exchange(api, "DELETE", &in_session, b"");
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(
        answer.body,
        "Not Found: no open MCP session has this Mcp-Session-Id (it ended or never existed); initialize a new session"
    );
    // DELETE without a session id names what is missing.
    let answer = exchange(
        api,
        "DELETE",
        &[("MCP-Protocol-Version", "2025-06-18")],
        b"",
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    server.stop();
}

/// The batch every transport is sent: a `tools/list` request, a ping and a notification.
fn tools_ping_and_notification() -> Vec<u8> {
    json!([
        {"jsonrpc": "2.0", "id": "list", "method": "tools/list"},
        ping(2),
        roots_changed(),
    ])
    .to_string()
    .into_bytes()
}

/// The answers in a batch's answer, which must be an array of `count`.
fn answers_in(answer: &Value, count: usize) -> &[Value] {
    let answers = answer
        .as_array()
        .unwrap_or_else(|| panic!("no array: {answer}"));
    assert_eq!(answers.len(), count, "{answer}");
    answers
}

/// Asserts `answer` answers [`tools_ping_and_notification`]: one array of exactly the two
/// requests' answers, the tools being devtrace's own.
fn assert_tools_and_ping_answered(answer: &Value) {
    let answers = answers_in(answer, 2);
    let tools = answers
        .iter()
        .find(|a| a["id"] == "list")
        .expect("tools/list answered");
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {tools}"))
        .iter()
        .map(|tool| tool["name"].as_str().unwrap())
        .collect();
    assert!(names.len() > 10, "{names:?}");
    for name in ["overview", "get_trace", "list_sessions"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    let pong = answers
        .iter()
        .find(|a| a["id"] == 2)
        .expect("ping answered");
    assert_eq!(pong, &json!({"jsonrpc": "2.0", "id": 2, "result": {}}));
}

/// A batch with two messages that are no messages beside a ping.
fn with_invalid_messages() -> Vec<u8> {
    json!([ping(3), {"foo": "bar"}, {"jsonrpc": "2.0", "id": 4}])
        .to_string()
        .into_bytes()
}

fn assert_invalid_messages_answered(answer: &Value) {
    let answers = answers_in(answer, 3);
    assert_eq!(answers[0], json!({"jsonrpc": "2.0", "id": 3, "result": {}}));
    assert_error_without_id(&answers[1], INVALID_REQUEST);
    assert_eq!(answers[2]["id"], 4, "{answer}");
    assert_eq!(answers[2]["error"]["code"], INVALID_REQUEST, "{answer}");
    assert!(
        answers[1]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid Request: not a JSON-RPC 2.0 request"),
        "{answer}"
    );
}

/// 101 pings, one past the limit.
fn oversized() -> Vec<u8> {
    Value::Array((100..=200).map(ping).collect())
        .to_string()
        .into_bytes()
}

const EMPTY_BATCH: &str =
    "Invalid Request: an empty JSON-RPC batch; a batch holds at least one message";
const OVERSIZED_BATCH: &str = "Invalid Request: a JSON-RPC batch holds at most 100 messages and this one holds 101; send smaller batches";

#[test]
fn stdio_answers_a_json_rpc_batch_in_a_2025_03_26_session() {
    let data = tempfile::tempdir().unwrap();
    let mut mcp = Stdio_::start(data.path());

    // No version is negotiated before initialize is answered: refused whole.
    mcp.send_raw(&tools_ping_and_notification());
    let answer = mcp.answer();
    assert_error_without_id(&answer, INVALID_REQUEST);
    assert_eq!(answer["error"]["message"], BATCH_BEFORE_INITIALIZE);

    mcp.send(&initialize_at(1, "2025-03-26"));
    let init = mcp.answer();
    assert_eq!(init["result"]["protocolVersion"], "2025-03-26", "{init}");
    mcp.send(&initialized());

    mcp.send_raw(&tools_ping_and_notification());
    assert_tools_and_ping_answered(&mcp.answer());
    mcp.send_raw(&with_invalid_messages());
    assert_invalid_messages_answered(&mcp.answer());
    // Nothing in it a message: the errors, as one array.
    mcp.send(&json!([1, {"foo": "bar"}]));
    let answer = mcp.answer();
    for error in answers_in(&answer, 2) {
        assert_error_without_id(error, INVALID_REQUEST);
    }
    // Notifications only: no answer at all, so the next line answers the next request.
    mcp.send(&json!([roots_changed(), roots_changed()]));
    mcp.send(&ping(5));
    assert_eq!(
        mcp.answer(),
        json!({"jsonrpc": "2.0", "id": 5, "result": {}})
    );

    mcp.send_raw(b"[]");
    let answer = mcp.answer();
    assert_error_without_id(&answer, INVALID_REQUEST);
    assert_eq!(answer["error"]["message"], EMPTY_BATCH);
    mcp.send_raw(&oversized());
    let answer = mcp.answer();
    assert_error_without_id(&answer, INVALID_REQUEST);
    assert_eq!(answer["error"]["message"], OVERSIZED_BATCH);

    // A batch waiting for its answers holds none back from the session's other requests.
    mcp.send_raw(&tools_ping_and_notification());
    mcp.send(&ping(6));
    let first = mcp.answer();
    let second = mcp.answer();
    let (batch, pong) = if first.is_array() {
        (first, second)
    } else {
        (second, first)
    };
    assert_tools_and_ping_answered(&batch);
    assert_eq!(pong, json!({"jsonrpc": "2.0", "id": 6, "result": {}}));
}

#[test]
fn stdio_refuses_batches_in_2024_11_05_and_2025_06_18_sessions() {
    for (version, refusal) in [
        ("2024-11-05", BATCH_IN_2024_11_05),
        ("2025-06-18", BATCH_REFUSED),
    ] {
        let data = tempfile::tempdir().unwrap();
        let mut mcp = Stdio_::start(data.path());
        mcp.send(&initialize_at(1, version));
        let init = mcp.answer();
        assert_eq!(init["result"]["protocolVersion"], version, "{init}");
        mcp.send(&initialized());
        mcp.send_raw(&tools_ping_and_notification());
        let answer = mcp.answer();
        assert_error_without_id(&answer, INVALID_REQUEST);
        assert_eq!(answer["error"]["message"], refusal, "{version}");
        mcp.send(&ping(2));
        assert_eq!(
            mcp.answer(),
            json!({"jsonrpc": "2.0", "id": 2, "result": {}})
        );
    }
}

/// Opens an HTTP session at `version`: its `Mcp-Session-Id`.
fn open_session(api: SocketAddr, version: &str, headers: &[(&str, &str)]) -> String {
    let answer = post(api, &[], initialize_at(1, version).to_string().as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["result"]["protocolVersion"], version);
    let session = answer
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let mut in_session = vec![("Mcp-Session-Id", session.as_str())];
    in_session.extend_from_slice(headers);
    let answer = post(api, &in_session, initialized().to_string().as_bytes());
    assert_eq!(answer.status, 202, "{}", answer.body);
    session
}

#[test]
fn http_answers_a_json_rpc_batch_in_a_2025_03_26_session() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;
    let session = open_session(api, "2025-03-26", &[]);
    let in_session = [("Mcp-Session-Id", session.as_str())];

    // The answers batched into one event, and the stream ends.
    let answer = post_to_end(api, &in_session, &tools_ping_and_notification());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = answer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_tools_and_ping_answered(&events[0]);
    let answer = post_to_end(api, &in_session, &with_invalid_messages());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let events = answer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_invalid_messages_answered(&events[0]);

    // Notifications only: 202 with no body.
    let notifications = json!([roots_changed(), roots_changed()]).to_string();
    let answer = post_to_end(api, &in_session, notifications.as_bytes());
    assert_eq!(answer.status, 202, "{}", answer.body);
    assert_eq!(answer.body, "");
    // Nothing in it a message: 400, the errors as one array.
    let answer = post_to_end(api, &in_session, b"[1, {\"foo\": \"bar\"}]");
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    for error in answers_in(&answer.json(), 2) {
        assert_error_without_id(error, INVALID_REQUEST);
    }

    for (batch, refusal) in [
        (b"[]".to_vec(), EMPTY_BATCH),
        (oversized(), OVERSIZED_BATCH),
    ] {
        let answer = post(api, &in_session, &batch);
        assert_eq!(answer.status, 400, "{}", answer.body);
        assert_error_without_id(&answer.json(), INVALID_REQUEST);
        assert_eq!(answer.json()["error"]["message"], refusal);
    }

    // Without both types in Accept: 406, as for a single message.
    let mut headers = vec![("Accept", "application/json"), JSON];
    headers.extend_from_slice(&in_session);
    let answer = exchange(api, "POST", &headers, &tools_ping_and_notification());
    assert_eq!(answer.status, 406, "{}", answer.body);

    // Once the session ended, a batch naming it is not found (its version forgotten, so
    // answered here rather than split and refused by rmcp).
    let answer = exchange(api, "DELETE", &in_session, b"");
    assert_eq!(answer.status, 204, "{}", answer.body);
    let answer = post(api, &in_session, &tools_ping_and_notification());
    assert_eq!(answer.status, 404, "{}", answer.body);
    assert_eq!(
        answer.body,
        "Not Found: no open MCP session has this Mcp-Session-Id (it ended or never existed); initialize a new session"
    );
    server.stop();
}

#[test]
fn http_refuses_batches_in_2024_11_05_and_2025_06_18_sessions() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;
    for (version, header, refusal) in [
        ("2024-11-05", None, BATCH_IN_2024_11_05),
        (
            "2025-06-18",
            Some(("MCP-Protocol-Version", "2025-06-18")),
            BATCH_REFUSED,
        ),
    ] {
        let extra: Vec<(&str, &str)> = header.into_iter().collect();
        let session = open_session(api, version, &extra);
        let mut in_session = vec![("Mcp-Session-Id", session.as_str())];
        in_session.extend_from_slice(&extra);
        let answer = post(api, &in_session, &tools_ping_and_notification());
        assert_eq!(answer.status, 400, "{version}: {}", answer.body);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        assert_error_without_id(&answer.json(), INVALID_REQUEST);
        assert_eq!(answer.json()["error"]["message"], refusal, "{version}");
        let answer = post(api, &in_session, ping(2).to_string().as_bytes());
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            answer.json(),
            json!({"jsonrpc": "2.0", "id": 2, "result": {}})
        );
    }
    server.stop();
}
