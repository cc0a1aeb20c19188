//! Retries against a small HTTP server in the test that answers from a script and counts the
//! requests it got: an OTLP export is sent again after a 503 (after the `Retry-After` it
//! asked for), a GET after a 503, and a POST that is not safe to repeat is sent once.

use devtrace_client::{Client, ClientOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server answering the scripted responses in turn (the last one from then on), one per
/// connection; it records each request's method and path.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
    count: Arc<AtomicUsize>,
}

impl Scripted {
    fn start(script: &[String]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let script: Vec<String> = script.to_vec();
        let (seen, counted) = (Arc::clone(&requests), Arc::clone(&count));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let Some(line) = read_request(&mut stream) else {
                    continue;
                };
                let n = counted.fetch_add(1, Ordering::SeqCst);
                seen.lock().unwrap().push(line);
                let answer = &script[n.min(script.len() - 1)];
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        Self {
            url,
            requests,
            count,
        }
    }

    fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and a content-length body); its request line.
fn read_request(stream: &mut std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(first.trim_end().to_owned())
}

/// An HTTP/1.1 response that closes its connection.
fn answer(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn unavailable_retry_in_1s() -> String {
    answer(
        "503 Service Unavailable",
        "Retry-After: 1\r\nContent-Type: application/json\r\n",
        "{\"error\":\"busy, retry\"}",
    )
}

fn ok() -> String {
    answer("200 OK", "Content-Type: application/json\r\n", "{}")
}

fn client(url: &str) -> Client {
    Client::parse(url, ClientOptions::default()).unwrap()
}

#[test]
fn an_otlp_export_is_sent_again_after_a_503_once_retry_after_has_passed() {
    let server = Scripted::start(&[unavailable_retry_in_1s(), ok()]);
    let started = Instant::now();
    client(&server.url).export_traces(b"spans").unwrap();
    assert_eq!(server.count(), 2);
    assert_eq!(
        *server.requests.lock().unwrap(),
        ["POST /v1/traces HTTP/1.1", "POST /v1/traces HTTP/1.1"]
    );
    // The second try waited for what the server asked (a lower bound, not a speed claim).
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[test]
fn an_export_the_server_rejects_is_not_retried_and_one_always_unavailable_gives_up() {
    let rejected = Scripted::start(&[
        answer(
            "400 Bad Request",
            "Content-Type: application/json\r\n",
            "{\"error\":\"not protobuf\"}",
        ),
        ok(),
    ]);
    let error = client(&rejected.url).export_logs(b"x").unwrap_err();
    assert_eq!(rejected.count(), 1);
    assert_eq!(error.status(), Some(400));
    assert_eq!(
        error.to_string(),
        format!("{}/v1/logs answered 400: not protobuf", rejected.url)
    );

    let busy = Scripted::start(&[answer("503 Service Unavailable", "Retry-After: 0\r\n", "")]);
    let error = client(&busy.url).export_traces(b"x").unwrap_err();
    assert_eq!(busy.count(), 5, "every try of the export policy");
    assert_eq!(error.status(), Some(503));
}

#[test]
fn a_get_is_retried_after_a_503_and_a_post_that_is_not_safe_to_repeat_is_sent_once() {
    let server = Scripted::start(&[unavailable_retry_in_1s(), ok()]);
    let value: serde_json::Value = client(&server.url).get_json("/api/v1/health").unwrap();
    assert_eq!(value, serde_json::json!({}));
    assert_eq!(server.count(), 2);

    let server = Scripted::start(&[unavailable_retry_in_1s(), ok()]);
    let reply = client(&server.url)
        .post_json("/api/v1/sessions", b"{}")
        .unwrap();
    assert_eq!(
        reply.status, 503,
        "the 503 is the answer, not a reason to resend"
    );
    assert_eq!(server.count(), 1);
    assert_eq!(
        *server.requests.lock().unwrap(),
        ["POST /api/v1/sessions HTTP/1.1"]
    );
}
