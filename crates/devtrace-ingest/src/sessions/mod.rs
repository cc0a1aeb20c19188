//! Development sessions in, model out: Claude Code transcripts and hook events, Codex
//! rollouts, and the developer-telemetry format (`trace-1.0.0`, SPEC §6).
//!
//! Every source becomes the same shape (docs/conventions.md): a session is a trace whose root
//! is the session span; turns are `invoke_agent` spans, LLM responses `chat` spans with token
//! usage, tool calls `execute_tool` spans (with what they did: `devtrace.session.action`, file
//! path and content hashes, command, exit code, output by reference), sub-agents
//! `invoke_agent` spans under the tool call that started them, IDE events spans of their own.
//!
//! Ids are derived from the source's own ids (session id → trace id, tool call id → span id,
//! …), so every source of the same session names the same span the same way: a live hook
//! event, the transcript imported later and the transcript imported again all land on the same
//! spans, which the store merges ([`devtrace_model::session::merge_span`]). Nothing is stored
//! twice, and what a later source knows fills in what an earlier one did not.
//!
//! The importers read lines from a [`std::io::BufRead`] they are given (no files, no sockets),
//! one line at a time with a bounded line length, so memory does not grow with the input.
//! Their state between lines is serialisable: an import can stop at any line and resume there
//! later ([`ImportCursorState`]), which is how a transcript that grew imports only its new
//! lines. Every string is redacted before it is kept, hashed into a blob or stored.

pub mod claude_code;
pub mod codex;
mod common;
pub mod native;
pub mod trace_v1;

pub use common::{
    ImportCursorState, LineSource, ReadSummary, SessionOutput, blob_hash_hex, derive_span_id,
    derive_trace_id, read_lines,
};

/// The longest line an importer reads; longer lines are skipped with a note (a transcript line
/// holds one message, which may embed a whole file, but not this much).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// The most sessions one transcript file may hold. An agent writes one session to a file
/// (a resumed one adds a few); each keeps state in memory until the file is read, so lines
/// of further sessions are skipped with a note, however many a hostile file names.
pub const MAX_SESSIONS_PER_TRANSCRIPT: usize = 1_000;

/// The error for a line of one session too many ([`MAX_SESSIONS_PER_TRANSCRIPT`]), or `Ok`
/// when `known` (the file's sessions so far) has `id` or room for it.
fn check_session_room<V>(
    known: &std::collections::BTreeMap<String, V>,
    id: &str,
) -> Result<(), String> {
    if known.len() >= MAX_SESSIONS_PER_TRANSCRIPT && !known.contains_key(id) {
        return Err(format!(
            "a session beyond the {MAX_SESSIONS_PER_TRANSCRIPT} this transcript already holds: skipped (one file holds at most {MAX_SESSIONS_PER_TRANSCRIPT})"
        ));
    }
    Ok(())
}

/// Text kept inline in an attribute before the rest moves to a blob.
pub const INLINE_TEXT_BYTES: usize = 4 * 1024;

/// What the transcript importers have in common, so callers can drive any of them.
pub trait Importer: LineSource {
    /// The spans and blobs produced since the last drain.
    fn drain(&mut self) -> SessionOutput;
    /// Spans held since the last drain (to flush a large import in pieces).
    fn pending_spans(&self) -> usize;
    /// Everything needed to resume after `lines` lines, serialised.
    fn checkpoint(&self, lines: u64) -> Vec<u8>;
}

impl Importer for claude_code::ClaudeCodeImporter {
    fn drain(&mut self) -> SessionOutput {
        claude_code::ClaudeCodeImporter::drain(self)
    }
    fn pending_spans(&self) -> usize {
        claude_code::ClaudeCodeImporter::pending_spans(self)
    }
    fn checkpoint(&self, lines: u64) -> Vec<u8> {
        ImportCursorState {
            lines,
            state: self.state().clone(),
        }
        .to_bytes()
    }
}

impl Importer for codex::CodexImporter {
    fn drain(&mut self) -> SessionOutput {
        codex::CodexImporter::drain(self)
    }
    fn pending_spans(&self) -> usize {
        codex::CodexImporter::pending_spans(self)
    }
    fn checkpoint(&self, lines: u64) -> Vec<u8> {
        ImportCursorState {
            lines,
            state: self.state().clone(),
        }
        .to_bytes()
    }
}

/// A fresh importer for `agent`, or one resumed from a checkpoint (with the lines it had
/// consumed). A checkpoint that cannot be read gives a fresh importer and 0 lines.
pub fn importer(
    agent: Agent,
    redactor: std::sync::Arc<crate::redact::Redactor>,
    checkpoint: Option<&[u8]>,
) -> (Box<dyn Importer + Send>, u64) {
    match agent {
        Agent::ClaudeCode => {
            match checkpoint.and_then(ImportCursorState::<claude_code::ClaudeCodeState>::from_bytes)
            {
                Some(saved) => (
                    Box::new(claude_code::ClaudeCodeImporter::resume(
                        redactor,
                        saved.state,
                    )),
                    saved.lines,
                ),
                None => (Box::new(claude_code::ClaudeCodeImporter::new(redactor)), 0),
            }
        }
        Agent::Codex => {
            match checkpoint.and_then(ImportCursorState::<codex::CodexState>::from_bytes) {
                Some(saved) => (
                    Box::new(codex::CodexImporter::resume(redactor, saved.state)),
                    saved.lines,
                ),
                None => (Box::new(codex::CodexImporter::new(redactor)), 0),
            }
        }
    }
}

/// The agents whose transcripts devtrace imports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Agent {
    ClaudeCode,
    Codex,
}

impl Agent {
    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => claude_code::AGENT,
            Self::Codex => codex::AGENT,
        }
    }
}

/// A line an importer could not use, and why. Reported, never fatal: the rest imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineNote {
    /// 1-based line number in the input.
    pub line: u64,
    pub message: String,
}
