//! What every session importer shares: ids, the span builder (merging re-emitted spans,
//! redacting text, moving long text to blobs), and the bounded line reader.

use super::{INLINE_TEXT_BYTES, LineNote, MAX_LINE_BYTES};
use crate::redact::Redactor;
use devtrace_model::session::session_span_id;
use devtrace_model::{
    KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, Status, TraceId, semconv,
};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::sync::Arc;

/// What an importer produced since it was last drained: span versions (one per span id, later
/// versions merged into earlier ones) and the blobs their attributes refer to.
#[derive(Clone, Debug, Default)]
pub struct SessionOutput {
    pub spans: SpanBatch,
    /// (blake3 of the bytes, the bytes), each once.
    pub blobs: Vec<([u8; 32], Vec<u8>)>,
}

impl SessionOutput {
    pub fn is_empty(&self) -> bool {
        self.spans.spans.is_empty() && self.blobs.is_empty()
    }
}

/// A session's trace id: its own id when that is a UUID (so `devtrace show <session id>`
/// works), else a hash of the agent and the id.
pub fn derive_trace_id(agent: &str, session_id: &str) -> TraceId {
    let hex: String = session_id.chars().filter(|c| *c != '-').collect();
    if session_id.len() == 36
        && session_id.matches('-').count() == 4
        && let Ok(id) = hex.parse::<TraceId>()
        && !id.is_zero()
    {
        return id;
    }
    let hash = blake3::hash(format!("{agent}\u{0}{session_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    TraceId(bytes)
}

/// A span id derived from the trace and a source's own identifiers (tool call id, message id,
/// line uuid, …): the same inputs give the same id from every source.
pub fn derive_span_id(trace_id: TraceId, parts: &[&str]) -> SpanId {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&trace_id.0);
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    if bytes == [0; 8] {
        bytes[7] = 1;
    }
    SpanId(bytes)
}

/// A turn's span id from the id the agent gives its prompt (Claude Code's `promptId` in the
/// transcript and `prompt.id` in its telemetry; Gemini CLI's `prompt_id`).
pub fn turn_span_id_for_prompt(trace_id: TraceId, prompt_id: &str) -> SpanId {
    derive_span_id(trace_id, &["turn-prompt", prompt_id])
}

/// A turn's span id from the agent's own trace of it (Codex: the turn's trace id, which its
/// rollout's `task_started` and its telemetry events both carry).
pub fn turn_span_id_for_trace(trace_id: TraceId, agent_trace: &str) -> SpanId {
    derive_span_id(trace_id, &["turn-trace", agent_trace])
}

/// An LLM call's span id from the provider's request id (Claude Code's `requestId` in the
/// transcript and `request_id` in its telemetry).
pub fn chat_span_id_for_request(trace_id: TraceId, request_id: &str) -> SpanId {
    derive_span_id(trace_id, &["chat-request", request_id])
}

/// A tool call's span id from its call id (every source: transcripts, hooks, telemetry).
pub fn tool_span_id(trace_id: TraceId, call_id: &str) -> SpanId {
    derive_span_id(trace_id, &["tool", call_id])
}

/// How attributes name a blob: the hex of its blake3 hash.
pub fn blob_hash_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The content hash devtrace records for file contents (`devtrace.session.file.hash*`).
pub(crate) fn content_hash(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..32].to_owned()
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
pub(crate) fn head(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The longest suffix of at most `max` bytes that starts on a character boundary.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The most telling line of a failure's output: a line naming an error, else the first line.
fn error_line(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let named = lines.iter().find(|l| {
        l.contains("Error:") || l.contains("error:") || l.contains("error[E") || l.contains("ERR!")
    });
    let marked = || {
        lines.iter().find(|l| {
            let lower = l.to_ascii_lowercase();
            !lower.starts_with("npm warn")
                && !lower.starts_with("warning")
                && [
                    "error",
                    "failed",
                    "not found",
                    "no such file",
                    "denied",
                    "cannot",
                    "refused",
                    "panicked",
                    "exception",
                    "in use",
                ]
                .iter()
                .any(|m| lower.contains(m))
        })
    };
    named
        .or_else(marked)
        .or(lines.first())
        .map_or_else(String::new, |l| (*l).to_owned())
}

/// What a failure says, for a status message: its most telling line, without the wrapping
/// Claude Code puts around tool errors.
pub(crate) fn error_message(output: &str) -> String {
    let cleaned = output
        .replace("<tool_use_error>", "")
        .replace("</tool_use_error>", "");
    let line = error_line(&cleaned);
    let line = line.strip_prefix("Error: ").unwrap_or(&line);
    head(line, 300).to_owned()
}

/// Collects span versions and blobs for session traces.
pub(crate) struct Builder {
    redactor: Arc<Redactor>,
    batch: SpanBatch,
    index: HashMap<(TraceId, SpanId), usize>,
    blob_hashes: HashSet<[u8; 32]>,
    blobs: Vec<([u8; 32], Vec<u8>)>,
}

impl Builder {
    pub(crate) fn new(redactor: Arc<Redactor>) -> Self {
        Self {
            redactor,
            batch: SpanBatch::default(),
            index: HashMap::new(),
            blob_hashes: HashSet::new(),
            blobs: Vec::new(),
        }
    }

    pub(crate) fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        self.redactor.redact(text)
    }

    pub(crate) fn redact_json(&self, value: &mut serde_json::Value) {
        self.redactor.redact_json(value);
    }

    /// The resource (index) for an agent: `service.name` is the agent, so `devtrace ls` shows
    /// sessions by agent.
    pub(crate) fn resource(&mut self, agent: &str, version: &str) -> u32 {
        let mut attributes = vec![KeyValue::new(semconv::SERVICE_NAME, agent)];
        if !version.is_empty() {
            attributes.push(KeyValue::new("service.version", version));
        }
        let resource = Resource {
            attributes,
            ..Default::default()
        };
        match self.batch.resources.iter().position(|r| *r == resource) {
            Some(i) => i as u32,
            None => {
                self.batch.resources.push(resource);
                if self.batch.scopes.is_empty() {
                    self.batch.scopes.push(Scope {
                        name: "devtrace.sessions".into(),
                        version: env!("CARGO_PKG_VERSION").into(),
                        ..Default::default()
                    });
                }
                (self.batch.resources.len() - 1) as u32
            }
        }
    }

    /// A fresh span (kind internal, no status) in `resource`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn span(
        &self,
        trace_id: TraceId,
        span_id: SpanId,
        parent: Option<SpanId>,
        name: String,
        start: u64,
        end: u64,
        resource: u32,
        attributes: Vec<KeyValue>,
    ) -> Span {
        Span {
            trace_id,
            span_id,
            parent_span_id: parent,
            trace_state: String::new(),
            flags: 0,
            name,
            kind: SpanKind::Internal,
            start_unix_nano: start,
            end_unix_nano: end.max(start),
            attributes,
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::default(),
            resource,
            scope: 0,
        }
    }

    /// Adds a span version; a version of a span already emitted is merged into it.
    pub(crate) fn emit(&mut self, span: Span) {
        let key = (span.trace_id, span.span_id);
        match self.index.get(&key) {
            Some(&i) => devtrace_model::session::merge_span(&mut self.batch.spans[i], span),
            None => {
                self.index.insert(key, self.batch.spans.len());
                self.batch.spans.push(span);
            }
        }
    }

    /// Redacts `text` and records it under `key`: whole when short, else its head and tail
    /// with the whole in a blob named by `ref_key`. `bytes_key` gets the full length.
    pub(crate) fn text_attr(
        &mut self,
        attributes: &mut Vec<KeyValue>,
        key: &str,
        ref_key: &str,
        bytes_key: Option<&str>,
        text: &str,
    ) {
        let text = self.redactor.redact(text);
        if let Some(bytes_key) = bytes_key {
            attributes.push(KeyValue::new(bytes_key, text.len() as i64));
        }
        if text.len() <= INLINE_TEXT_BYTES {
            if !text.is_empty() {
                attributes.push(KeyValue::new(key, text.into_owned()));
            }
            return;
        }
        let hash = *blake3::hash(text.as_bytes()).as_bytes();
        let head_part = head(&text, INLINE_TEXT_BYTES * 3 / 4);
        let tail_part = tail(&text, INLINE_TEXT_BYTES / 4);
        let omitted = text.len() - head_part.len() - tail_part.len();
        attributes.push(KeyValue::new(
            key,
            format!("{head_part}\n… ({omitted} bytes omitted) …\n{tail_part}"),
        ));
        attributes.push(KeyValue::new(ref_key, blob_hash_hex(&hash)));
        if self.blob_hashes.insert(hash) {
            self.blobs.push((hash, text.into_owned().into_bytes()));
        }
    }

    /// Stores `bytes` (already redacted) as a blob; returns its hash's hex.
    pub(crate) fn blob(&mut self, bytes: Vec<u8>) -> String {
        let hash = *blake3::hash(&bytes).as_bytes();
        if self.blob_hashes.insert(hash) {
            self.blobs.push((hash, bytes));
        }
        blob_hash_hex(&hash)
    }

    /// A version of a span that only widens its interval: merged, it changes nothing else.
    pub(crate) fn widen(
        &mut self,
        trace_id: TraceId,
        span_id: SpanId,
        agent: &str,
        start: u64,
        end: u64,
    ) {
        let resource = self.resource(agent, "");
        let span = self.span(
            trace_id,
            span_id,
            None,
            String::new(),
            start,
            end,
            resource,
            vec![],
        );
        self.emit(span);
    }

    /// A turn: the `index`th prompt of the session and the work it started.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn turn(
        &mut self,
        trace_id: TraceId,
        span_id: SpanId,
        agent: &str,
        index: u32,
        prompt: &str,
        ts: u64,
    ) {
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TURN),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_INVOKE_AGENT,
            ),
            KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent),
            KeyValue::new(semconv::SESSION_TURN_INDEX, i64::from(index)),
            KeyValue::new(semconv::SESSION_FROM_TRANSCRIPT, true),
        ];
        self.text_attr(
            &mut attributes,
            semconv::SESSION_PROMPT,
            semconv::SESSION_INPUT_REF,
            None,
            prompt,
        );
        let resource = self.resource(agent, "");
        let span = self.span(
            trace_id,
            span_id,
            Some(session_span_id(trace_id)),
            format!("invoke_agent {agent}"),
            ts,
            ts,
            resource,
            attributes,
        );
        self.emit(span);
    }

    /// An LLM call with its token usage.
    pub(crate) fn chat(&mut self, call: ChatCall) {
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_CHAT,
            ),
            KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, call.provider),
            KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, call.input_tokens as i64),
            KeyValue::new(
                semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
                call.output_tokens as i64,
            ),
            KeyValue::new(
                semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                call.cache_read_tokens as i64,
            ),
        ];
        attributes.push(KeyValue::new(
            if call.from_telemetry {
                semconv::SESSION_FROM_TELEMETRY
            } else {
                semconv::SESSION_FROM_TRANSCRIPT
            },
            true,
        ));
        if let Some(tokens) = call.cache_creation_tokens {
            attributes.push(KeyValue::new(
                semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
                tokens as i64,
            ));
        }
        if let Some(tokens) = call.cache_creation_1h_tokens.filter(|t| *t > 0) {
            attributes.push(KeyValue::new(
                semconv::SESSION_CACHE_WRITE_1H_TOKENS,
                tokens as i64,
            ));
        }
        if !call.tool_calls.is_empty() {
            attributes.push(KeyValue::new(
                semconv::SESSION_REQUEST_TOOL_CALLS,
                devtrace_model::AnyValue::Array(
                    call.tool_calls
                        .iter()
                        .map(|id| devtrace_model::AnyValue::String(id.clone()))
                        .collect(),
                ),
            ));
        }
        if let Some(id) = call.response_id {
            attributes.push(KeyValue::new(semconv::GEN_AI_RESPONSE_ID, id));
        }
        if !call.model.is_empty() {
            attributes.push(KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, call.model));
        }
        if let Some(text) = call.response.filter(|t| !t.trim().is_empty()) {
            let text = self.redact(head(text, INLINE_TEXT_BYTES)).into_owned();
            attributes.push(KeyValue::new(semconv::SESSION_RESPONSE, text));
        }
        let resource = self.resource(call.agent, "");
        let name = if call.model.is_empty() {
            "chat".to_owned()
        } else {
            format!("chat {}", call.model)
        };
        let span = self.span(
            call.trace_id,
            call.span_id,
            Some(call.parent),
            name,
            call.start,
            call.end,
            resource,
            attributes,
        );
        self.emit(span);
    }

    /// Spans held, for flushing large imports in pieces.
    pub(crate) fn pending(&self) -> usize {
        self.batch.spans.len()
    }

    pub(crate) fn take(&mut self) -> SessionOutput {
        self.index.clear();
        self.blob_hashes.clear();
        let resources = self.batch.resources.clone();
        let scopes = self.batch.scopes.clone();
        let spans = std::mem::take(&mut self.batch.spans);
        SessionOutput {
            spans: SpanBatch {
                resources,
                scopes,
                spans,
            },
            blobs: std::mem::take(&mut self.blobs),
        }
    }
}

/// An LLM call as the importers know it.
pub(crate) struct ChatCall<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: SpanId,
    pub agent: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub response_id: Option<&'a str>,
    /// Including cache reads and writes.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: Option<u64>,
    /// Of the cache writes, those made for the 1-hour cache lifetime (Anthropic's
    /// `cache_creation.ephemeral_1h_input_tokens`), when the record says.
    pub cache_creation_1h_tokens: Option<u64>,
    /// The ids of the tool calls this response made (in order), when the source says which.
    pub tool_calls: &'a [String],
    /// The start of the response's text, when there is one.
    pub response: Option<&'a str>,
    pub start: u64,
    pub end: u64,
    /// Built from the agent's telemetry rather than read from a transcript.
    pub from_telemetry: bool,
}

/// The root span of a session: role, agent, ids, project.
pub(crate) struct SessionRoot<'a> {
    pub trace_id: TraceId,
    pub agent: &'a str,
    pub agent_version: &'a str,
    pub session_id: &'a str,
    pub project: &'a str,
    pub title: &'a str,
    pub git_branch: &'a str,
    pub source: &'a str,
    pub start: u64,
    pub end: u64,
}

impl SessionRoot<'_> {
    pub(crate) fn emit(&self, builder: &mut Builder) {
        let resource = builder.resource(self.agent, self.agent_version);
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
            KeyValue::new(semconv::SESSION_AGENT, self.agent),
            KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, self.session_id),
        ];
        for (key, value) in [
            (semconv::SESSION_SOURCE, self.source),
            (semconv::SESSION_AGENT_VERSION, self.agent_version),
            (semconv::SESSION_PROJECT, self.project),
            (semconv::SESSION_GIT_BRANCH, self.git_branch),
        ] {
            if !value.is_empty() {
                attributes.push(KeyValue::new(key, value));
            }
        }
        if !self.title.is_empty() {
            let title = builder.redact(self.title).into_owned();
            attributes.push(KeyValue::new(semconv::SESSION_TITLE, title));
        }
        let span = builder.span(
            self.trace_id,
            session_span_id(self.trace_id),
            None,
            format!("session {}", self.agent),
            self.start,
            self.end,
            resource,
            attributes,
        );
        builder.emit(span);
    }
}

pub(crate) use devtrace_model::session::prompt_title as title_from_prompt;

/// Where an import of one source stopped: the importer's state and the lines consumed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ImportCursorState<S> {
    pub lines: u64,
    pub state: S,
}

impl<S: Serialize + for<'de> Deserialize<'de> + Default> ImportCursorState<S> {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("importer state serialises")
    }

    /// The stored state, or a fresh one when it cannot be read (a devtrace upgrade changed
    /// its shape): the source is then read again from its start, which merging makes safe.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// A consumer of lines: one of the importers.
pub trait LineSource {
    /// Takes one line (without its newline). An error skips the line with a note.
    fn line(&mut self, number: u64, text: &str) -> Result<(), String>;
}

/// What reading a source did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Bytes consumed (whole lines only): where the next import starts.
    pub bytes: u64,
    pub lines: u64,
    pub notes: Vec<LineNote>,
    /// The source ended inside a line that is not yet complete JSON (a transcript being
    /// written): left for the next import.
    pub incomplete_tail: bool,
}

/// Feeds `reader`'s lines to `source`, numbering them from `first_line`. Lines longer than
/// [`super::MAX_LINE_BYTES`] are skipped; a last line without a newline is taken only when it
/// is complete JSON. `progress` is called with the bytes consumed so far, now and then.
pub fn read_lines<R: BufRead>(
    mut reader: R,
    first_line: u64,
    source: &mut dyn LineSource,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<ReadSummary> {
    let mut summary = ReadSummary::default();
    let mut line: Vec<u8> = Vec::new();
    // The line's length as read, kept even when its bytes are dropped for being too long.
    let mut line_len = 0usize;
    let mut too_long = false;
    let mut number = first_line;
    let mut reported = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        let (chunk, complete) = match memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        line_len += chunk.len();
        if !too_long {
            if line.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = complete.unwrap_or(available.len());
        reader.consume(consumed);
        let Some(_) = complete else {
            continue;
        };
        number += 1;
        summary.lines += 1;
        summary.bytes += (line_len + 1) as u64;
        if too_long {
            summary.notes.push(LineNote {
                line: number,
                message: format!("longer than {} MiB: skipped", MAX_LINE_BYTES >> 20),
            });
            // The skipped bytes still count: they are consumed.
            too_long = false;
        } else {
            take_line(source, number, &line, &mut summary);
        }
        line.clear();
        line_len = 0;
        if summary.bytes - reported >= 1 << 20 {
            reported = summary.bytes;
            progress(summary.bytes);
        }
    }
    if too_long {
        summary.incomplete_tail = true;
    } else if !line.is_empty() {
        // No newline at the end: complete JSON is a finished last line; anything else is a
        // line still being written.
        if serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok() {
            number += 1;
            summary.lines += 1;
            summary.bytes += line.len() as u64;
            take_line(source, number, &line, &mut summary);
        } else if line.iter().any(|b| !b.is_ascii_whitespace()) {
            summary.incomplete_tail = true;
        } else {
            summary.bytes += line.len() as u64;
        }
    }
    progress(summary.bytes);
    Ok(summary)
}

fn take_line(source: &mut dyn LineSource, number: u64, line: &[u8], summary: &mut ReadSummary) {
    let trimmed = line.trim_ascii();
    if trimmed.is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(trimmed);
    if let Err(message) = source.line(number, &text) {
        summary.notes.push(LineNote {
            line: number,
            message,
        });
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(u64, String)>);

    impl LineSource for Collect {
        fn line(&mut self, number: u64, text: &str) -> Result<(), String> {
            if text == "bad" {
                return Err("not JSON".into());
            }
            self.0.push((number, text.to_owned()));
            Ok(())
        }
    }

    #[test]
    fn lines_are_numbered_and_an_unfinished_last_line_is_left_for_later() {
        let input = b"{\"a\":1}\n\nbad\n{\"b\":2}\n{\"c\":";
        let mut lines = Collect(Vec::new());
        let summary = read_lines(&input[..], 10, &mut lines, &mut |_| {}).unwrap();
        assert_eq!(
            lines.0,
            [(11, "{\"a\":1}".to_owned()), (14, "{\"b\":2}".to_owned())]
        );
        assert_eq!(summary.notes.len(), 1);
        assert_eq!(summary.notes[0].line, 13);
        assert!(summary.incomplete_tail);
        assert_eq!(summary.bytes as usize, input.len() - b"{\"c\":".len());
        // A complete last line without a newline is taken.
        let mut lines = Collect(Vec::new());
        let summary = read_lines(&b"{\"a\":1}"[..], 0, &mut lines, &mut |_| {}).unwrap();
        assert_eq!(
            (lines.0.len(), summary.bytes, summary.incomplete_tail),
            (1, 7, false)
        );
    }

    #[test]
    fn uuid_session_ids_are_trace_ids_and_others_are_hashed() {
        assert_eq!(
            derive_trace_id("claude-code", "fe5e1c67-53e7-4862-81ae-d0e013e3270b").to_hex(),
            "fe5e1c6753e7486281aed0e013e3270b"
        );
        let hashed = derive_trace_id("claude-code", "edge_cases");
        assert_eq!(hashed, derive_trace_id("claude-code", "edge_cases"));
        assert_ne!(hashed, derive_trace_id("codex", "edge_cases"));
        let a = derive_span_id(hashed, &["tool", "toolu_1"]);
        assert_eq!(a, derive_span_id(hashed, &["tool", "toolu_1"]));
        assert_ne!(a, derive_span_id(hashed, &["tool", "toolu_2"]));
        assert_ne!(
            derive_span_id(hashed, &["ab", "c"]),
            derive_span_id(hashed, &["a", "bc"])
        );
    }

    #[test]
    fn the_telling_error_line_beats_warnings() {
        let npm = "npm warn Unknown env config \"store-dir\".\n\n> Build error occurred\n[TypeError: generate is not a function]\n";
        assert_eq!(
            error_message(npm),
            "[TypeError: generate is not a function]"
        );
        assert_eq!(
            error_line("ls: cannot access 'x': No such file"),
            "ls: cannot access 'x': No such file"
        );
        assert_eq!(error_line("\n\nsomething odd\n"), "something odd");
    }
}
