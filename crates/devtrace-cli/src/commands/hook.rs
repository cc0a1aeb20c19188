//! `devtrace hook claude-code`: a live Claude Code hook event into the store.
//!
//! Hooks run inside the agent's loop, so this must be quick and must never get in the way:
//! nothing on stdout (Claude Code reads a hook's stdout for some events), exit 0 when the event
//! is recorded, 1 with a message on stderr when it cannot be (never 2, which would block the
//! tool call). On the events that end a reply (Stop, SubagentStop, PreCompact, SessionEnd) the
//! session's transcript is imported incrementally, so turns and tokens follow each reply. The
//! pipeline is devtrace-intake's (hooks, transcripts); this module reads stdin and reports.

use super::import_sessions;
use crate::cli::{HookAgent, HookArgs};
use crate::output::eprintln_safe;
use anyhow::{Context, Result, bail};
use devtrace_ingest::sessions::Agent;
use std::io::Read;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// The largest hook event read (tool inputs and responses can be large).
const MAX_EVENT_BYTES: u64 = 32 * 1024 * 1024;

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
    let hook =
        devtrace_intake::hooks::claude_code_hook(&input, now, std::sync::Arc::clone(&redactor))?;
    let (mut writer, _) = choice.open_writer()?;
    writer
        .write(&[hook.batch])
        .context("cannot record the hook event")?;
    drop(writer);
    if let Some(transcript) = hook.transcript_to_import {
        let report =
            import_sessions::import(choice, Agent::ClaudeCode, &transcript, redactor, false)?;
        if report.failed_files() > 0 {
            for warning in &report.warnings {
                eprintln_safe!("devtrace hook: {warning}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
