//! The MCP transports to the letter of the specification (2025-06-18 and the versions the
//! server announces), sent raw so nothing in a client library smooths them over: `devtrace
//! mcp` over stdio and `/mcp` on a real `devtrace serve`. Unreadable messages get JSON-RPC
//! errors with `id: null` (never silence, a closed connection or HTTP 415), batches are refused,
//! Content-Type and Accept are checked, and `DELETE` ends a session.

mod common;

use common::{BIN, Server};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const BATCH_REFUSED: &str = "Invalid Request: JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send each request as a message of its own";

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "protocol-test", "version": "1"}}})
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
    let mut answer = Answer {
        status,
        headers: response_headers,
        body: String::new(),
    };
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

    // A batch, in a session or not: refused as one Invalid Request.
    let answer = post(
        api,
        &[],
        json!([initialize(1), ping(2)]).to_string().as_bytes(),
    );
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_error_without_id(&answer.json(), INVALID_REQUEST);
    assert_eq!(answer.json()["error"]["message"], BATCH_REFUSED);

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
