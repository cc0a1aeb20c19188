//! Every REST endpoint, found in the served OpenAPI document, on the hostile store: every
//! answer (errors and the event stream included) is JSON with nothing dangerous raw, and gives
//! the recorded text back exactly.

use super::check;
use super::common::Server;
use super::fixture::{self, hostile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub use devtrace_query::links::encode;

/// One HTTP/1.0 exchange (the server closes the connection after the answer): the status, the
/// `Content-Type`, and the body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&Value>,
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = json_body.map(|b| b.to_string()).unwrap_or_default();
    let content = if json_body.is_some() {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    } else {
        String::new()
    };
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{content}\r\n{body}"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let (status, content_type) = head(&mut reader);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    (status, content_type, rest)
}

fn head(reader: &mut impl BufRead) -> (u16, String) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut content_type = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-type:") {
            content_type = value.trim().to_owned();
        }
    }
    (status, content_type)
}

/// The first event of the live stream: its raw lines up to the blank line that ends it.
fn first_event(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reader = BufReader::new(stream);
    let (status, _) = head(&mut reader);
    let mut event = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.trim().is_empty() && event.contains("data:") {
            break;
        }
        event.push_str(&line);
    }
    (status, event)
}

/// Whether the status is what the request expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// 2xx, and the answer holds recorded text exactly.
    Shows,
    /// 2xx; nothing recorded in it (counts, health).
    Quiet,
    /// 2xx, and the answer's `text` is text for a reader: recorded text in it escaped.
    Renders,
    /// 4xx: a refused parameter or an unknown id, echoed back in the error body.
    Refused,
}

struct Call {
    method: &'static str,
    path: String,
    body: Option<Value>,
    expect: Expect,
}

fn get(path: String, expect: Expect) -> Call {
    Call {
        method: "GET",
        path,
        body: None,
        expect,
    }
}

/// A blob reference (64 hex characters under a key ending in `_ref`), somewhere in `value`.
fn find_blob_hash(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(k, v)| match v.as_str() {
            Some(s) if k.ends_with("_ref") && s.len() == 64 => Some(s.to_owned()),
            _ => find_blob_hash(v),
        }),
        Value::Array(items) => items.iter().find_map(find_blob_hash),
        _ => None,
    }
}

#[test]
fn every_rest_endpoint_answers_recorded_text_as_escaped_json() {
    use Expect::*;
    let fixture = fixture::build();
    let server = Server::start(&fixture.data);
    let api = server.api;

    let (status, _, document) = request(api, "GET", "/api/v1/openapi.json", None);
    assert_eq!(status, 200);
    let document: Value = serde_json::from_slice(&document).unwrap();
    let mut operations: Vec<(String, String)> = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                operations.push((method.to_uppercase(), path.clone()));
            }
        }
    }

    let trace = fixture.traces[0].to_hex();
    let passing = fixture.traces[1].to_hex();
    let span = fixture.failing_span.to_hex();
    let op = encode(&fixture::root_name());
    let bad = encode(&hostile("parameter"));
    let (_, _, sessions) = request(api, "GET", "/api/v1/sessions", None);
    let sessions: Value = serde_json::from_slice(&sessions).unwrap();
    let session = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["agent"] == "claude-code")
        .max_by_key(|s| s["tool_calls"].as_u64())
        .expect("a Claude Code session")["trace_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, _, overview) = request(
        api,
        "GET",
        &format!("/api/v1/sessions/{session}/overview"),
        None,
    );
    let overview: Value = serde_json::from_slice(&overview).unwrap();
    let blob = find_blob_hash(&overview).unwrap_or_else(|| {
        panic!("a stored output's blob hash in the session overview: {overview}")
    });
    // A second trace-1.0.0 session, sent here, so the write endpoints have one of their own.
    let mut sent = fixture::document(1_760_000_000);
    sent["trace_id"] = "5a5a5a5a-0000-4000-8000-0000000000f0".into();
    let sent_id = "5a5a5a5a0000400080000000000000f0".to_owned();
    let (status, _, body) = request(api, "POST", "/api/v1/sessions", Some(&sent));
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let events = serde_json::json!({"events": [
        {"t": "2025-10-09T09:00:00Z", "type": "thought", "note": hostile("appended thought")}
    ]});

    let mut table: BTreeMap<&str, Vec<Call>> = BTreeMap::new();
    table.insert(
        "GET /api/v1/health",
        vec![get("/api/v1/health".into(), Quiet)],
    );
    table.insert("GET /api/v1/me", vec![get("/api/v1/me".into(), Quiet)]);
    table.insert(
        "GET /api/v1/traces/{id}/otlp",
        vec![
            get(format!("/api/v1/traces/{trace}/otlp"), Shows),
            get(format!("/api/v1/traces/{bad}/otlp"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}/logs/otlp",
        vec![
            get(format!("/api/v1/traces/{trace}/logs/otlp"), Quiet),
            get(format!("/api/v1/traces/{bad}/logs/otlp"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/stats",
        vec![get("/api/v1/stats".into(), Quiet)],
    );
    table.insert(
        "GET /api/v1/overview",
        vec![get("/api/v1/overview".into(), Shows)],
    );
    table.insert(
        "GET /api/v1/traces",
        vec![
            get("/api/v1/traces".into(), Shows),
            get(
                format!("/api/v1/traces?name={op}&attr=http.route~SYSTEM"),
                Shows,
            ),
            get(format!("/api/v1/traces?min_duration={bad}"), Refused),
            get(format!("/api/v1/traces?attr=%3D{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}",
        vec![
            get(format!("/api/v1/traces/{trace}"), Shows),
            get(format!("/api/v1/traces/{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}/waterfall",
        vec![get(format!("/api/v1/traces/{trace}/waterfall"), Shows)],
    );
    table.insert(
        "GET /api/v1/traces/{id}/spans/{span_id}",
        vec![
            get(format!("/api/v1/traces/{trace}/spans/{span}"), Shows),
            get(format!("/api/v1/traces/{trace}/spans/{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}/spans/{span_id}/steps",
        vec![
            get(format!("/api/v1/traces/{trace}/spans/{span}/steps"), Shows),
            get(format!("/api/v1/traces/{trace}/spans/{bad}/steps"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}/search",
        vec![
            get(format!("/api/v1/traces/{trace}/search?q=SYSTEM"), Quiet),
            get(format!("/api/v1/traces/{trace}/search?q={bad}"), Quiet),
        ],
    );
    table.insert(
        "GET /api/v1/traces/{id}/timeline",
        vec![get(format!("/api/v1/traces/{trace}/timeline"), Shows)],
    );
    table.insert(
        "GET /api/v1/traces/{id}/origin",
        vec![get(format!("/api/v1/traces/{trace}/origin"), Quiet)],
    );
    table.insert(
        "GET /api/v1/traces/{id}/findings",
        vec![
            get(format!("/api/v1/traces/{trace}/findings"), Quiet),
            get(format!("/api/v1/traces/{bad}/findings"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/operations",
        vec![get("/api/v1/operations".into(), Shows)],
    );
    table.insert(
        "GET /api/v1/operation-names",
        vec![get("/api/v1/operation-names".into(), Shows)],
    );
    table.insert(
        "GET /api/v1/operations/{name}",
        vec![
            get(format!("/api/v1/operations/{op}"), Shows),
            get(format!("/api/v1/operations/{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/operations/{name}/traces",
        vec![
            get(format!("/api/v1/operations/{op}/traces"), Shows),
            get(
                format!("/api/v1/operations/{op}/traces?kind={bad}"),
                Refused,
            ),
        ],
    );
    table.insert(
        "GET /api/v1/sparklines",
        vec![get(format!("/api/v1/sparklines?operation={op}"), Shows)],
    );
    table.insert(
        "GET /api/v1/compare",
        vec![
            get(format!("/api/v1/compare?a={trace}&b={passing}"), Shows),
            get(format!("/api/v1/compare?operation={op}&last=6"), Shows),
            get(format!("/api/v1/compare?operation={bad}&last=6"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/findings",
        vec![
            get("/api/v1/findings".into(), Shows),
            get(format!("/api/v1/findings?since={bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/runs",
        vec![get(format!("/api/v1/runs?label={bad}"), Quiet)],
    );
    table.insert("GET /api/v1/events", vec![]); // read as a stream below
    table.insert(
        "GET /api/v1/sessions",
        vec![
            get("/api/v1/sessions".into(), Shows),
            get(
                format!("/api/v1/sessions?repo={}", encode(&fixture.cwd)),
                Shows,
            ),
            get(format!("/api/v1/sessions?since={bad}"), Refused),
        ],
    );
    // Usage per session and day, from agents' metrics (none in this store) and sessions.
    table.insert(
        "GET /api/v1/usage",
        vec![get("/api/v1/usage".into(), Quiet)],
    );
    // Two sessions side by side: their titles, tools and findings are recorded text.
    table.insert(
        "GET /api/v1/sessions/{a}/compare/{b}",
        vec![
            get(
                format!("/api/v1/sessions/{session}/compare/{sent_id}"),
                Shows,
            ),
            get(format!("/api/v1/sessions/{session}/compare/{bad}"), Refused),
        ],
    );
    table.insert("POST /api/v1/sessions", vec![
        Call { method: "POST", path: "/api/v1/sessions".into(), body: Some(sent.clone()), expect: Quiet },
        Call { method: "POST", path: "/api/v1/sessions".into(),
               body: Some(serde_json::json!({"version": hostile("version"), "trace_id": hostile("trace_id")})), expect: Refused },
    ]);
    table.insert(
        "POST /api/v1/sessions/{id}/events",
        vec![
            Call {
                method: "POST",
                path: format!("/api/v1/sessions/{sent_id}/events"),
                body: Some(events),
                expect: Quiet,
            },
            Call {
                method: "POST",
                path: format!("/api/v1/sessions/{bad}/events"),
                body: Some(serde_json::json!({"events": []})),
                expect: Refused,
            },
        ],
    );
    table.insert(
        "GET /api/v1/sessions/{id}",
        vec![
            get(format!("/api/v1/sessions/{session}"), Shows),
            get(format!("/api/v1/sessions/{sent_id}"), Shows),
            get(format!("/api/v1/sessions/{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/sessions/{id}/overview",
        vec![
            get(format!("/api/v1/sessions/{session}/overview"), Shows),
            get(format!("/api/v1/sessions/{sent_id}/overview"), Shows),
        ],
    );
    table.insert(
        "GET /api/v1/sessions/{id}/text",
        vec![
            get(format!("/api/v1/sessions/{session}/text"), Renders),
            get(
                format!("/api/v1/sessions/{sent_id}/text?budget=300"),
                Renders,
            ),
            get(
                format!("/api/v1/sessions/{session}/text?offset={bad}"),
                Refused,
            ),
            get(format!("/api/v1/sessions/{bad}/text"), Refused),
        ],
    );
    table.insert(
        "DELETE /api/v1/sessions/{id}",
        vec![Call {
            method: "DELETE",
            path: format!("/api/v1/sessions/{bad}"),
            body: None,
            expect: Refused,
        }],
    );
    table.insert(
        "GET /api/v1/blobs/{hash}",
        vec![
            get(format!("/api/v1/blobs/{blob}"), Shows),
            get(format!("/api/v1/blobs/{bad}"), Refused),
            get(format!("/api/v1/blobs/{blob}?offset={bad}"), Refused),
        ],
    );

    table.insert(
        "GET /api/v1/live",
        vec![
            get("/api/v1/live?active_within=30d".into(), Shows),
            get(format!("/api/v1/live?active_within={bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/live/traces/{id}/findings",
        vec![
            get(format!("/api/v1/live/traces/{trace}/findings"), Shows),
            get(format!("/api/v1/live/traces/{bad}/findings"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/live/sessions/{id}",
        vec![
            get(format!("/api/v1/live/sessions/{session}"), Shows),
            get(format!("/api/v1/live/sessions/{bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/live/sessions/{id}/timeline",
        vec![
            get(format!("/api/v1/live/sessions/{session}/timeline"), Shows),
            get(format!("/api/v1/live/sessions/{bad}/timeline"), Refused),
        ],
    );

    // QA: read and refuse (queueing a real job would start a runner on the server).
    let post = |path: String| Call {
        method: "POST",
        path,
        body: None,
        expect: Refused,
    };
    table.insert(
        "GET /api/v1/sessions/{id}/qa",
        vec![
            get(format!("/api/v1/sessions/{session}/qa"), Quiet),
            get(format!("/api/v1/sessions/{bad}/qa"), Refused),
        ],
    );
    table.insert(
        "POST /api/v1/sessions/{id}/qa",
        vec![post(format!("/api/v1/sessions/{bad}/qa"))],
    );
    table.insert(
        "GET /api/v1/qa/jobs",
        vec![
            get("/api/v1/qa/jobs".into(), Quiet),
            get(format!("/api/v1/qa/jobs?state={bad}"), Refused),
        ],
    );
    table.insert(
        "GET /api/v1/qa/jobs/{job}",
        vec![get(format!("/api/v1/qa/jobs/{bad}"), Refused)],
    );
    table.insert(
        "POST /api/v1/qa/jobs/{job}/cancel",
        vec![post(format!("/api/v1/qa/jobs/{bad}/cancel"))],
    );
    table.insert(
        "POST /api/v1/qa/jobs/{job}/retry",
        vec![post(format!("/api/v1/qa/jobs/{bad}/retry"))],
    );
    table.insert(
        "GET /api/v1/qa/summary",
        vec![
            get(
                format!("/api/v1/qa/summary?repo={}", encode(&fixture.cwd)),
                Quiet,
            ),
            get(format!("/api/v1/qa/summary?limit={bad}"), Refused),
        ],
    );

    for (method, path) in &operations {
        assert!(
            table.contains_key(format!("{method} {path}").as_str()),
            "{method} {path} is in the OpenAPI document but not in this test's table"
        );
    }
    for key in table.keys() {
        assert!(
            operations.iter().any(|(m, p)| format!("{m} {p}") == *key),
            "{key} is in this test's table but not in the OpenAPI document"
        );
    }

    let mut calls = 0;
    for (key, list) in &table {
        for call in list {
            let what = format!("{} {}", call.method, call.path);
            let (status, content_type, body) =
                request(api, call.method, &call.path, call.body.as_ref());
            match call.expect {
                Refused => assert!((400..500).contains(&status), "{what}: {status}"),
                _ => assert!(
                    (200..300).contains(&status),
                    "{what}: {status} {}",
                    String::from_utf8_lossy(&body)
                ),
            }
            if status == 204 {
                continue;
            }
            assert!(
                content_type.starts_with("application/json"),
                "{what}: {content_type}"
            );
            let value = check::json(&what, &body);
            if call.expect == Shows {
                assert!(
                    check::holds_payload(&value),
                    "{what} gives recorded text back exactly: {value}"
                );
            }
            if call.expect == Renders {
                check::text(&what, value["text"].as_str().unwrap(), false);
            }
            calls += 1;
        }
        // Any GET refuses a hostile unknown parameter with an escaped error body.
        if let Some(path) = key.strip_prefix("GET ").filter(|p| !p.contains('{')) {
            let what = format!("GET {path} with a hostile parameter");
            let (status, _, body) = request(api, "GET", &format!("{path}?{bad}={bad}"), None);
            let answer = check::json(&what, &body);
            // Endpoints that take parameters refuse an unknown one, naming it; the server's
            // health and stats take none and ignore them.
            if !["/api/v1/health", "/api/v1/stats"].contains(&path) {
                assert_eq!(status, 400, "{what}: {answer}");
                assert!(
                    check::holds_payload(&answer),
                    "{what}: the error names the parameter: {answer}"
                );
            }
        }
    }
    let (status, event) = first_event(api, "/api/v1/events");
    assert_eq!(status, 200);
    check::text("the event stream", &event, false);
    assert!(event.contains("data:"), "{event}");
    for line in event.lines().filter_map(|l| l.strip_prefix("data:")) {
        check::json("an event's data", line.trim().as_bytes());
    }
    // The UI paths answer with index.html, whatever the path (a hostile one included).
    let (status, _, _) = request(api, "GET", &format!("/traces/{bad}"), None);
    assert_eq!(status, 200);
    assert!(calls > 40, "{calls} calls");
    server.stop();
}

/// Every path and query parameter of every endpoint in the served OpenAPI document, given a
/// value past the 4 KiB limit: a 400 naming the parameter and the limit, not repeating the
/// value; the same for a long unknown parameter name and for too many parameters.
#[test]
fn every_rest_parameter_is_bounded() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;
    let (_, _, document) = request(api, "GET", "/api/v1/openapi.json", None);
    let document: Value = serde_json::from_slice(&document).unwrap();
    let long = "S".repeat(5_000);
    let mut checked = 0;
    let refused = |what: &str, (status, _, body): (u16, String, Vec<u8>), parameter: &str| {
        let answer = check::json(what, &body);
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["parameter"], parameter, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains(&format!("parameter \"{parameter}\" is "))
                && error.contains("past the limit of"),
            "{what}: {error}"
        );
        assert!(
            body.len() < 2_000 && !error.contains("SSSS"),
            "{what}: {error}"
        );
    };
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let method = method.to_uppercase();
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let fill = |target: &str, value: &str| {
                let mut filled = path.clone();
                for p in &parameters {
                    if p["in"] == "path" {
                        let name = p["name"].as_str().unwrap();
                        let v = if name == target { value } else { "abc" };
                        filled = filled.replace(&format!("{{{name}}}"), v);
                    }
                }
                filled
            };
            for parameter in &parameters {
                let name = parameter["name"].as_str().unwrap();
                let url = match parameter["in"].as_str() {
                    Some("path") => fill(name, &long),
                    Some("query") => format!("{}?{name}={long}", fill("", "")),
                    _ => continue,
                };
                let what = format!("{method} {path} with {name} of 5,000 bytes");
                refused(&what, request(api, &method, &url, None), name);
                checked += 1;
            }
            let base = fill("", "");
            let what = format!("{method} {path} with a long parameter name");
            refused(
                &what,
                request(api, &method, &format!("{base}?{long}=1"), None),
                "(a parameter name)",
            );
            let many = vec!["a=1"; 1_001].join("&");
            let what = format!("{method} {path} with 1,001 parameters");
            refused(
                &what,
                request(api, &method, &format!("{base}?{many}"), None),
                "query",
            );
        }
    }
    assert!(checked >= 40, "only {checked} parameters found");
    server.stop();
}

/// Every route of the served OpenAPI document that takes a JSON body has each field bounded:
/// settings (QA) like a query parameter (4,096 bytes, 1,000 items), session documents and
/// event batches at 4 MiB per string and 100,000 items per list. Every declared property (and,
/// for a document declared as a bare object, fields of the document) given a string or a list
/// one past its route's bound, and every body given a 5,000-byte field name, is refused with
/// 400 naming the field and the limit, in under 2,000 bytes and without the value — before
/// the session is looked up.
#[test]
fn every_rest_json_body_field_is_bounded() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let api = server.api;
    let (_, _, document) = request(api, "GET", "/api/v1/openapi.json", None);
    let document: Value = serde_json::from_slice(&document).unwrap();
    let refused = |what: &str,
                   (status, _, body): (u16, String, Vec<u8>),
                   field: &str,
                   unit: &str| {
        let answer = check::json(what, &body);
        assert_eq!(status, 400, "{what}: {answer}");
        assert_eq!(answer["parameter"], field, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{field}: parameter \"{field}\" is "))
                && error.contains("past the limit of ")
                && error.ends_with(&format!("{unit} for {} passed to devtrace (the value is not shown); pass the name, id or filter itself, not a document", if unit == "items" { "lists" } else { "values" })),
            "{what}: {error}"
        );
        assert!(
            body.len() < 2_000 && !error.contains("SSSS") && !error.contains("7,7"),
            "{what}: {error}"
        );
    };
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let schema = match schema["$ref"].as_str() {
                Some(reference) => {
                    let name = reference.rsplit('/').next().unwrap();
                    &document["components"]["schemas"][name]
                }
                None => schema,
            };
            let mut fields: Vec<String> = schema["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            if fields.is_empty() {
                // A document declared as a bare object: its fields are the document's own.
                fields = vec!["trace_id".into(), "events".into()];
            }
            let url = path.replace("{id}", "abc");
            let (text_bytes, items) = if path.ends_with("/qa") {
                (4_096, 1_000)
            } else {
                (4 * 1024 * 1024, 100_000)
            };
            let long = Value::String("S".repeat(text_bytes + 1));
            let many = Value::Array(vec![Value::from(7); items + 1]);
            let method = method.to_uppercase();
            for field in &fields {
                let what = format!("{method} {path} with {field} of {} bytes", text_bytes + 1);
                let body = serde_json::json!({ field.as_str(): long.clone() });
                refused(
                    &what,
                    request(api, &method, &url, Some(&body)),
                    field,
                    "bytes",
                );
                let what = format!("{method} {path} with {field} of {} items", items + 1);
                let body = serde_json::json!({ field.as_str(): many.clone() });
                refused(
                    &what,
                    request(api, &method, &url, Some(&body)),
                    field,
                    "items",
                );
            }
            let what = format!("{method} {path} with a 5,000-byte field name");
            let body = serde_json::json!({ "S".repeat(5_000): 1 });
            refused(
                &what,
                request(api, &method, &url, Some(&body)),
                "(a field name)",
                "bytes",
            );
            routes.push(format!("{method} {path}"));
        }
    }
    assert_eq!(
        routes,
        [
            "POST /api/v1/sessions",
            "POST /api/v1/sessions/{id}/events",
            "POST /api/v1/sessions/{id}/qa"
        ],
        "the routes that take a JSON body"
    );
    server.stop();
}
