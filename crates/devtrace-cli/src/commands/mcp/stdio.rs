//! stdin and stdout for `devtrace mcp`, with every incoming line checked by
//! [`devtrace_mcp::incoming::read`] before rmcp reads it: a line that is not JSON, a refused
//! batch or JSON that is no JSON-RPC message is answered here with its JSON-RPC error (rmcp
//! would ignore the first silently, so a client waiting for an answer would hang), before and
//! after `initialize` alike, and the session goes on.
//!
//! JSON-RPC batches: the server's answer to `initialize` names the protocol version, seen here
//! as it passes to stdout. In a 2025-03-26 session a batch is split and each of its messages
//! handed to rmcp as a line of its own; the answers to its requests are held back as rmcp
//! writes them and written as one JSON array once the last has come (its messages that are no
//! messages answered in the same array; a batch of notifications and responses only, nothing).
//! Before that answer has passed, and in any other version, a batch is refused whole
//! ([`devtrace_mcp::batch`] says why).
//!
//! rmcp talks to two in-memory pipes. A thread of its own reads stdin (a blocked read on
//! tokio's stdin would hold up the runtime's shutdown); one task copies rmcp's output to
//! stdout line by line. Both write whole lines under one lock, so answers never interleave.

use devtrace_mcp::batch::{self, Answers};
use devtrace_mcp::incoming::{self, Incoming};
use devtrace_mcp::jsonrpc::{Batches, Refusal};
use serde_json::Value;
use std::io::BufRead;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// The longest message read from stdin (rmcp's own stdio limit); a longer line is refused
/// without being held in memory.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Room in each in-memory pipe.
const PIPE_BYTES: usize = 64 * 1024;

/// What the stdin reader and the copier of rmcp's output know of the session.
struct Session {
    /// The id of the `initialize` request handed to rmcp, until its answer passes.
    initialize: Option<Value>,
    /// What the negotiated protocol version says about batches.
    batches: Batches,
    /// Batches whose answers are still to come, oldest first.
    waiting: Vec<Answers>,
}

type Shared = Arc<std::sync::Mutex<Session>>;

fn lock(session: &Shared) -> std::sync::MutexGuard<'_, Session> {
    session.lock().expect("mcp stdio session poisoned")
}

/// The transport for rmcp's `serve`, and the task copying its output to stdout: await it
/// after the session ends, so the last answers reach the client before the process exits.
pub fn checked() -> ((DuplexStream, DuplexStream), JoinHandle<()>) {
    let (mut to_server, server_input) = tokio::io::duplex(PIPE_BYTES);
    let (server_output, from_server) = tokio::io::duplex(PIPE_BYTES);
    let stdout = Arc::new(Mutex::new(tokio::io::stdout()));
    let session: Shared = Arc::new(std::sync::Mutex::new(Session {
        initialize: None,
        batches: Batches::BeforeInitialize,
        waiting: Vec::new(),
    }));

    let out = Arc::clone(&stdout);
    let seen = Arc::clone(&session);
    let copy_answers = tokio::spawn(async move {
        let mut from_server = tokio::io::BufReader::new(from_server);
        let mut line = Vec::new();
        loop {
            line.clear();
            match from_server.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let written = match route(&seen, &line) {
                        Out::Line => write_line(&out, &line).await,
                        Out::Held => Ok(()),
                        Out::Batch(answer) => write_value(&out, &answer).await,
                    };
                    if written.is_err() {
                        return;
                    }
                }
            }
        }
        // rmcp is done: a batch still waiting gets its answer, with an error for each request
        // rmcp did not answer.
        let unanswered = std::mem::take(&mut lock(&seen).waiting);
        for answers in unanswered {
            if let Some(answer) = answers.finish()
                && write_value(&out, &answer).await.is_err()
            {
                return;
            }
        }
    });

    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        let mut line = Vec::new();
        loop {
            let refusal = match next_line(&mut input, &mut line) {
                Ok(Line::End) | Err(_) => break,
                Ok(Line::TooLong) => Refusal::too_long(MAX_MESSAGE_BYTES),
                Ok(Line::Message) => {
                    let message = line.strip_suffix(b"\r").unwrap_or(&line);
                    if message.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let batches = lock(&session).batches;
                    match incoming::read(message, batches) {
                        Ok(Incoming::Message { initialize }) => {
                            if initialize.is_some() {
                                lock(&session).initialize = initialize;
                            }
                            line.push(b'\n');
                            if runtime.block_on(to_server.write_all(&line)).is_err() {
                                break;
                            }
                            continue;
                        }
                        Ok(Incoming::Batch(batch)) => {
                            let answers = batch.answers();
                            if answers.waiting() {
                                // Before rmcp can answer: the copier holds the answers back.
                                lock(&session).waiting.push(answers);
                            } else if let Some(answer) = answers.finish()
                                && runtime.block_on(write_value(&stdout, &answer)).is_err()
                            {
                                break;
                            }
                            let handed = runtime.block_on(async {
                                for message in batch.messages() {
                                    to_server.write_all(message.as_bytes()).await?;
                                    to_server.write_all(b"\n").await?;
                                }
                                std::io::Result::Ok(())
                            });
                            if handed.is_err() {
                                break;
                            }
                            continue;
                        }
                        Err(refusal) => refusal,
                    }
                }
            };
            tracing::debug!(code = refusal.code, "answered an unreadable MCP message");
            if runtime
                .block_on(write_value(&stdout, &refusal.answer))
                .is_err()
            {
                break;
            }
        }
        // Dropping `to_server` here is the end of input rmcp reads: the session ends.
    });

    ((server_input, server_output), copy_answers)
}

/// What becomes of a line rmcp wrote.
enum Out {
    /// Written as it is.
    Line,
    /// An answer to a batch whose other answers are still to come: held.
    Held,
    /// The last answer a batch waited for: the batch's whole answer is written.
    Batch(Value),
}

/// Watches rmcp's output for the answer to `initialize` (the session's protocol version) and
/// for the answers to batches.
fn route(session: &Shared, line: &[u8]) -> Out {
    let mut session = lock(session);
    if session.initialize.is_none() && session.waiting.is_empty() {
        return Out::Line;
    }
    let Ok(mut message) = serde_json::from_slice::<Value>(line) else {
        return Out::Line;
    };
    if let Some(id) = &session.initialize
        && batch::answers(&message, id)
    {
        session.batches = batch::protocol_version(&message)
            .map_or(Batches::BeforeInitialize, Batches::of_version);
        session.initialize = None;
        return Out::Line;
    }
    for at in 0..session.waiting.len() {
        match session.waiting[at].offer(message) {
            Ok(()) if session.waiting[at].waiting() => return Out::Held,
            Ok(()) => {
                return match session.waiting.remove(at).finish() {
                    Some(answer) => Out::Batch(answer),
                    None => Out::Held,
                };
            }
            Err(back) => message = back,
        }
    }
    Out::Line
}

async fn write_value(stdout: &Mutex<tokio::io::Stdout>, value: &Value) -> std::io::Result<()> {
    let mut line = value.to_string().into_bytes();
    line.push(b'\n');
    write_line(stdout, &line).await
}

async fn write_line(stdout: &Mutex<tokio::io::Stdout>, line: &[u8]) -> std::io::Result<()> {
    let mut stdout = stdout.lock().await;
    stdout.write_all(line).await?;
    stdout.flush().await
}

enum Line {
    /// `line` holds a message (without its newline).
    Message,
    /// The line was longer than [`MAX_MESSAGE_BYTES`] and was skipped.
    TooLong,
    End,
}

/// Reads the next newline-ended line into `line`, holding at most [`MAX_MESSAGE_BYTES`] of it.
/// A last line without a newline counts as a line.
fn next_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<Line> {
    line.clear();
    let mut too_long = false;
    let mut read_any = false;
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return Ok(match (read_any, too_long) {
                (false, _) => Line::End,
                (true, true) => Line::TooLong,
                (true, false) => Line::Message,
            });
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long {
            if line.len() + chunk.len() > MAX_MESSAGE_BYTES {
                too_long = true;
                *line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let used = chunk.len() + usize::from(newline.is_some());
        input.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Message
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], read_size: usize) -> Vec<String> {
        let mut input = std::io::BufReader::with_capacity(read_size, input);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        loop {
            match next_line(&mut input, &mut line).unwrap() {
                Line::End => return seen,
                Line::TooLong => seen.push("<too long>".to_owned()),
                Line::Message => seen.push(String::from_utf8(line.clone()).unwrap()),
            }
        }
    }

    #[test]
    fn lines_are_split_at_newlines_across_reads() {
        assert_eq!(
            lines(b"{\"a\":1}\n\n{\"b\":22}\nlast", 7),
            ["{\"a\":1}", "", "{\"b\":22}", "last"]
        );
        assert!(lines(b"", 7).is_empty());
    }

    #[test]
    fn a_line_past_the_limit_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; MAX_MESSAGE_BYTES + 1];
        input.extend_from_slice(b"\n{}\n");
        assert_eq!(lines(&input, 64 * 1024), ["<too long>", "{}"]);
    }
}
