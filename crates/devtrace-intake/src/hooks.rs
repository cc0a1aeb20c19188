//! A live agent hook event into the store (`devtrace hook claude-code`): mapped to the session
//! spans the transcript will later fill in (same ids), redacted, written in merge mode; and,
//! on the events that end a reply, which transcript to import now so turns and tokens follow
//! each reply.

use anyhow::Result;
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::claude_code::hook_event;
use devtrace_store::{WriteBatch, prepare_session};
use std::path::PathBuf;
use std::sync::Arc;

/// Hook events after which the transcript holds a finished reply.
const IMPORT_AFTER: &[&str] = &["Stop", "SubagentStop", "PreCompact", "SessionEnd"];

/// One hook event as the store takes it.
pub struct HookBatch {
    /// The session spans the event gives, prepared in merge mode.
    pub batch: WriteBatch,
    /// The session's transcript, when the event ended a reply and the transcript is there to
    /// import (after `batch` is written).
    pub transcript_to_import: Option<PathBuf>,
}

/// One Claude Code hook event (its JSON), received at `now_unix_nano`, as the batch to write;
/// an event that is not valid is an error and brings nothing.
pub fn claude_code_hook(
    input: &str,
    now_unix_nano: u64,
    redactor: Arc<Redactor>,
) -> Result<HookBatch> {
    let (output, event) = hook_event(input, now_unix_nano, redactor).map_err(anyhow::Error::msg)?;
    let transcript = PathBuf::from(&event.transcript_path);
    let ends_reply = IMPORT_AFTER.contains(&event.event.as_str());
    Ok(HookBatch {
        batch: prepare_session(output.spans, output.blobs),
        transcript_to_import: (ends_reply
            && !event.transcript_path.is_empty()
            && transcript.is_file())
        .then_some(transcript),
    })
}
