//! A JSON-RPC batch POSTed in a 2025-03-26 session, answered as that version's transport says:
//! each of its messages is handed to rmcp as a POST of its own (the batch's headers and
//! extensions, so the same session and project), in the batch's order.
//!
//! - Something to answer (the batch holds requests, or messages that are no messages): 200 and
//!   `text/event-stream`. Requests and notifications the server sends about the batch's
//!   requests pass on as they come; the answers to the batch's requests are batched, as the
//!   specification allows ("These responses MAY be batched"), into one event holding the
//!   JSON array of every answer, and the stream ends. (The `application/json` alternative
//!   is "one JSON object", which a batch's answer is not.)
//! - Only notifications and responses: 202 with no body.
//! - Nothing in it a message: 400 with the array of their errors as `application/json`, as a
//!   single unreadable message is answered.
//! - rmcp refusing the first message handed over with an HTTP error (the session is gone: 404;
//!   `Accept` without both types: 406; a protocol header it does not speak: 400): that answer,
//!   for the whole batch, as it would be for a single message.

use super::{MAX_BODY_BYTES, McpService, has_content_type};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{self, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use devtrace_mcp::batch::{Answers, Batch, Element};
use futures_util::StreamExt;
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use tower::Service;

/// The longest an answer's event stream stays silent: a comment line then (rmcp's interval).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

const EVENT_STREAM: &str = "text/event-stream";

/// Hands the batch's messages to rmcp and answers the batch.
pub(super) async fn answer(
    mut service: McpService,
    parts: http::request::Parts,
    batch: Batch,
) -> Response {
    let mut answers = batch.answers();
    if !batch.passes_any() {
        let errors = answers.finish().unwrap_or_default();
        return (
            StatusCode::BAD_REQUEST,
            [(http::header::CONTENT_TYPE, "application/json")],
            errors.to_string(),
        )
            .into_response();
    }
    let mut streams = Vec::new();
    let mut handed_any = false;
    for element in &batch.elements {
        let Element::Pass { message, request } = element else {
            continue;
        };
        let response = match service.call(element_request(&parts, message)).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        match handed(response).await {
            Handed::Stream(body) => streams.push(body),
            Handed::Nothing => {}
            Handed::Answer(mut answer) => {
                if let Some(id) = request
                    && answer.get("id") == Some(&Value::Null)
                {
                    answer["id"] = id.clone();
                }
                if answers.offer(answer).is_err() {
                    tracing::debug!("an answer to a batch's message matched none of its requests");
                }
            }
            Handed::Refused(response) if !handed_any => return response,
            Handed::Refused(response) => tracing::warn!(
                status = %response.status(),
                "rmcp refused a message of a JSON-RPC batch after taking the ones before it"
            ),
        }
        handed_any = true;
    }
    let (events, body) = mpsc::unbounded_channel();
    if streams.is_empty() {
        let Some(array) = answers.finish() else {
            return StatusCode::ACCEPTED.into_response();
        };
        let _ = events.send(event(&array));
    } else {
        tokio::spawn(gather(streams, answers, events));
    }
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, EVENT_STREAM)
        .header(http::header::CACHE_CONTROL, "no-cache")
        .header("X-Accel-Buffering", "no")
        .body(Body::from_stream(received(body)))
        .expect("a valid response")
}

/// Hands `response` on unchanged, showing each JSON-RPC message of its event stream to `seen`
/// until `seen` says it has what it wanted. A message is shown before its bytes go on, so what
/// `seen` records is there before the client can act on it.
pub(super) fn watch(
    response: Response,
    mut seen: impl FnMut(&Value) -> bool + Send + 'static,
) -> Response {
    if !has_content_type(response.headers(), EVENT_STREAM) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let mut events = Events::default();
    let mut done = false;
    let body = body.into_data_stream().inspect(move |chunk| {
        if let Ok(bytes) = chunk
            && !done
        {
            done = events.feed(bytes).iter().any(&mut seen);
        }
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// What rmcp made of one message of the batch.
enum Handed {
    /// The event stream carrying a request's answer.
    Stream(Body),
    /// A JSON-RPC answer given at once.
    Answer(Value),
    /// Taken, nothing to answer (a notification or a response).
    Nothing,
    /// Refused with an HTTP error.
    Refused(Response),
}

async fn handed(response: Response) -> Handed {
    if response.status() == StatusCode::ACCEPTED {
        return Handed::Nothing;
    }
    if response.status().is_success() && has_content_type(response.headers(), EVENT_STREAM) {
        return Handed::Stream(response.into_body());
    }
    if !has_content_type(response.headers(), "application/json") {
        return Handed::Refused(response);
    }
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .unwrap_or_default();
    match serde_json::from_slice::<Value>(&body) {
        Ok(answer) if answer.is_object() => Handed::Answer(answer),
        _ => Handed::Refused(Response::from_parts(parts, Body::from(body))),
    }
}

/// One message of the batch as a POST of its own.
fn element_request(parts: &http::request::Parts, message: &str) -> Request {
    let mut request = Request::new(Body::from(message.to_owned()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    request.headers_mut().remove(http::header::CONTENT_LENGTH);
    request
        .headers_mut()
        .remove(http::header::TRANSFER_ENCODING);
    *request.extensions_mut() = parts.extensions.clone();
    request
}

/// Reads the requests' event streams until every request of the batch has its answer, passing
/// on what else the server sends, then sends the batch's answer and ends.
async fn gather(streams: Vec<Body>, mut answers: Answers, events: mpsc::UnboundedSender<Bytes>) {
    // A client that went away is no reason to stop: the requests run to their end either way.
    let mut parsers: Vec<Events> = streams.iter().map(|_| Events::default()).collect();
    let mut chunks = futures_util::stream::select_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(at, body)| body.into_data_stream().map(move |chunk| (at, chunk))),
    );
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    while answers.waiting() {
        let next = tokio::select! {
            next = chunks.next() => next,
            _ = keep_alive.tick() => {
                let _ = events.send(Bytes::from_static(b":\n\n"));
                continue;
            }
        };
        let Some((at, chunk)) = next else {
            // Every stream ended: what is still waiting gets an internal error.
            break;
        };
        let Ok(bytes) = chunk else { continue };
        for message in parsers[at].feed(&bytes) {
            if let Err(other) = answers.offer(message) {
                let _ = events.send(event(&other));
            }
        }
    }
    if let Some(array) = answers.finish() {
        let _ = events.send(event(&array));
    }
}

/// One event carrying `message`.
fn event(message: &Value) -> Bytes {
    Bytes::from(format!("data: {message}\n\n"))
}

/// What a channel receives, as a body's stream.
fn received(
    receiver: mpsc::UnboundedReceiver<Bytes>,
) -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok(bytes), receiver))
    })
}

/// The longest event read from rmcp's streams; a longer one is skipped (its request then gets
/// an internal error).
const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The JSON-RPC messages of an event stream, read from its bytes as they come: the `data` of
/// each event (lines ended by LF or CRLF; comments, ids and retries are passed over; events
/// whose data is no JSON, as rmcp's priming events, carry none).
#[derive(Default)]
struct Events {
    /// The line being read, at most [`MAX_EVENT_BYTES`] + 1 bytes of it.
    line: Vec<u8>,
    /// The event's data so far.
    data: Vec<u8>,
    /// The event is past the limit: skipped when it ends.
    too_long: bool,
}

impl Events {
    fn feed(&mut self, mut bytes: &[u8]) -> Vec<Value> {
        let mut messages = Vec::new();
        while !bytes.is_empty() {
            let end = bytes.iter().position(|&b| b == b'\n');
            let (part, rest) = bytes.split_at(end.map_or(bytes.len(), |end| end + 1));
            bytes = rest;
            let room = (MAX_EVENT_BYTES + 1).saturating_sub(self.line.len());
            self.line.extend_from_slice(&part[..part.len().min(room)]);
            if end.is_none() {
                break;
            }
            let line = std::mem::take(&mut self.line);
            if line.len() > MAX_EVENT_BYTES {
                self.too_long = true;
                continue;
            }
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                // The end of an event.
                if !std::mem::take(&mut self.too_long)
                    && let Ok(message) = serde_json::from_slice(&self.data)
                {
                    messages.push(message);
                }
                self.data.clear();
            } else if let Some(data) = line.strip_prefix(b"data:") {
                let data = data.strip_prefix(b" ").unwrap_or(data);
                if self.data.len() + data.len() >= MAX_EVENT_BYTES {
                    self.too_long = true;
                    self.data = Vec::new();
                } else if !self.too_long {
                    if !self.data.is_empty() {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(data);
                }
            }
        }
        messages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_are_read_across_chunks() {
        let stream = "id: 0\nretry: 3000\ndata:\n\n: keep-alive\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\r\n\r\ndata: {\"a\":\ndata: 2}\n\ndata: [1]\n\n";
        for size in [1, 3, 7, stream.len()] {
            let mut events = Events::default();
            let messages: Vec<Value> = stream
                .as_bytes()
                .chunks(size)
                .flat_map(|chunk| events.feed(chunk))
                .collect();
            assert_eq!(
                messages,
                [
                    json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
                    json!({"a": 2}),
                    json!([1])
                ],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn an_event_past_the_limit_is_skipped() {
        let half = "7".repeat(MAX_EVENT_BYTES / 2);
        for stream in [
            // One line past the limit, and the digits it would keep a number still.
            format!("data: {half}{half}7\n\ndata: 1\n\n"),
            // Lines within it adding up past it.
            format!("data: [{half}\ndata: ,{half}]\n\ndata: 1\n\n"),
        ] {
            let mut events = Events::default();
            let messages: Vec<Value> = stream
                .as_bytes()
                .chunks(64 * 1024)
                .flat_map(|chunk| events.feed(chunk))
                .collect();
            assert_eq!(messages, [json!(1)]);
            assert!(events.line.capacity() <= 2 * MAX_EVENT_BYTES);
        }
    }
}
