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
pub mod trace_v1;

pub use common::{
    ImportCursorState, LineSource, ReadSummary, SessionOutput, blob_hash_hex, derive_span_id,
    derive_trace_id, read_lines,
};

/// The longest line an importer reads; longer lines are skipped with a note (a transcript line
/// holds one message, which may embed a whole file, but not this much).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Text kept inline in an attribute before the rest moves to a blob.
pub const INLINE_TEXT_BYTES: usize = 4 * 1024;

/// A line an importer could not use, and why. Reported, never fatal: the rest imports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineNote {
    /// 1-based line number in the input.
    pub line: u64,
    pub message: String,
}
