//! `devtrace hook claude-code`: a live Claude Code hook event into the store.
//!
//! Hooks run inside the agent's loop, so this must be quick and must never get in the way:
//! nothing on stdout (Claude Code reads a hook's stdout for some events), exit 0 when the event
//! is recorded, 1 with a message on stderr when it cannot be (never 2, which would block the
//! tool call). On the events that end a reply (Stop, SubagentStop, PreCompact, SessionEnd) the
//! session's transcript is imported incrementally, so turns and tokens follow each reply.

use super::import_sessions;
use crate::cli::{HookAgent, HookArgs};
use crate::output::eprintln_safe;
use anyhow::{Context, Result, bail};
use devtrace_ingest::sessions::Agent;
use devtrace_ingest::sessions::claude_code::hook_event;
use devtrace_store::prepare_session;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest hook event read (tool inputs and responses can be large).
const MAX_EVENT_BYTES: u64 = 32 * 1024 * 1024;

/// Hook events after which the transcript holds a finished reply.
const IMPORT_AFTER: &[&str] = &["Stop", "SubagentStop", "PreCompact", "SessionEnd"];

pub fn run(choice: &crate::config::StoreChoice, args: &HookArgs) -> Result<ExitCode> {
    match args.agent {
        HookAgent::ClaudeCode => claude_code(choice),
    }
}

fn claude_code(choice: &crate::config::StoreChoice) -> Result<ExitCode> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_EVENT_BYTES + 1)
        .read_to_string(&mut input)
        .context("cannot read the hook event from stdin")?;
    if input.len() as u64 > MAX_EVENT_BYTES {
        bail!(
            "the hook event is larger than {} MiB",
            MAX_EVENT_BYTES >> 20
        );
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let redactor = crate::config::default_redaction()?;
    let (output, event) =
        hook_event(&input, now, std::sync::Arc::clone(&redactor)).map_err(anyhow::Error::msg)?;
    let (mut writer, _) = choice.open_writer()?;
    writer
        .write(&[prepare_session(output.spans, output.blobs)])
        .context("cannot record the hook event")?;
    drop(writer);
    if IMPORT_AFTER.contains(&event.event.as_str()) && !event.transcript_path.is_empty() {
        let transcript = Path::new(&event.transcript_path);
        if transcript.is_file() {
            let report =
                import_sessions::import(choice, Agent::ClaudeCode, transcript, redactor, false)?;
            if report.failed_files() > 0 {
                for warning in &report.warnings {
                    eprintln_safe!("devtrace hook: {warning}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
