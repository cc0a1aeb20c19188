//! `devtrace import claude-code [PATH]` and `devtrace import codex [PATH]`: transcripts on
//! disk into the store, incrementally, through devtrace-intake's transcript pipeline
//! (cursors, a reading worker, a coalescing writer); this module says what was imported.

use crate::output::eprintln_safe;
use crate::progress::{Progress, bytes};
use anyhow::{Result, bail};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::Agent;
use devtrace_intake::transcripts::{self, ImportProgress, Report};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub fn run(
    choice: &crate::config::StoreChoice,
    agent: Agent,
    path: Option<&Path>,
    json: bool,
    redactor: Arc<Redactor>,
    follow: bool,
) -> Result<ExitCode> {
    let root = match path {
        Some(path) => path.to_path_buf(),
        None => transcripts::default_root(agent)?,
    };
    if !root.exists() {
        let hint = match (agent, path) {
            (Agent::ClaudeCode, None) => {
                "no Claude Code transcripts here (is Claude Code installed for this user?); give the directory: devtrace import claude-code DIR"
            }
            (Agent::Codex, None) => {
                "no Codex rollouts here (is Codex installed for this user?); give the directory: devtrace import codex DIR"
            }
            _ => "check the path",
        };
        bail!("{} does not exist: {hint}", crate::output::path(&root));
    }
    if follow {
        return follow_transcripts(choice, agent, &root, json, redactor);
    }
    let report = import(choice, agent, &root, redactor, !json)?;
    let totals = &report.totals;
    for warning in &report.warnings {
        eprintln_safe!("{warning}");
    }
    if json {
        let summary = serde_json::json!({
            "agent": agent.name(),
            "files": totals.files,
            "unchanged_files": totals.unchanged,
            "failed_files": totals.failed,
            "sessions": totals.sessions.len(),
            "spans": totals.spans,
            "bytes": totals.bytes,
            "skipped_lines": totals.skipped_lines,
            "seconds": (report.seconds * 1000.0).round() / 1000.0,
        });
        crate::output::print_stdout(&format!("{summary}\n"))?;
    } else {
        let mut line = format!(
            "imported {} {} from {} files ({}, {} spans) in {:.1} s",
            totals.sessions.len(),
            if totals.sessions.len() == 1 {
                "session"
            } else {
                "sessions"
            },
            totals.files,
            bytes(totals.bytes),
            totals.spans,
            report.seconds
        );
        if totals.unchanged > 0 {
            line.push_str(&format!(
                "; {} files unchanged since the last import",
                totals.unchanged
            ));
        }
        if totals.skipped_lines > 0 {
            line.push_str(&format!("; {} lines skipped", totals.skipped_lines));
        }
        eprintln_safe!("{line}");
        if !totals.sessions.is_empty() {
            eprintln_safe!("list them with `devtrace sessions`");
        }
    }
    Ok(if totals.failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

static STOP_FOLLOWING: AtomicBool = AtomicBool::new(false);

extern "C" fn stop_following(_: libc::c_int) {
    STOP_FOLLOWING.store(true, Ordering::SeqCst);
}

/// `--follow`: imports what is new whenever a transcript under `root` grows or appears, until
/// SIGINT or SIGTERM, saying what each round imported.
fn follow_transcripts(
    choice: &crate::config::StoreChoice,
    agent: Agent,
    root: &Path,
    json: bool,
    redactor: Arc<Redactor>,
) -> Result<ExitCode> {
    let handler = stop_following as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
    eprintln_safe!(
        "following {}: what is written is imported as it is written; Ctrl-C stops",
        crate::output::path(root)
    );
    let mut failed = false;
    transcripts::follow(root, &STOP_FOLLOWING, || {
        let report = import(choice, agent, root, Arc::clone(&redactor), false)?;
        failed |= report.failed_files() > 0;
        say_round(agent, &report, json)
    })?;
    eprintln_safe!("stopped following {}", crate::output::path(root));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What one `--follow` round imported: a line on stderr, or a JSON line on stdout.
fn say_round(agent: Agent, report: &Report, json: bool) -> Result<()> {
    let totals = &report.totals;
    for warning in report
        .warnings
        .iter()
        .filter(|w| !w.contains("the last line is still being written"))
    {
        eprintln_safe!("{warning}");
    }
    if totals.spans == 0 && totals.files == 0 {
        return Ok(());
    }
    if json {
        let line = serde_json::json!({
            "agent": agent.name(),
            "files": totals.files,
            "sessions": totals.sessions.iter().map(|t| t.to_hex()).collect::<Vec<_>>(),
            "spans": totals.spans,
            "bytes": totals.bytes,
            "skipped_lines": totals.skipped_lines,
        });
        crate::output::print_stdout(&format!("{line}\n"))?;
    } else {
        eprintln_safe!(
            "{} imported {} from {} ({} spans)",
            devtrace_tui::text::clock(devtrace_tui::source::now_unix_nano()),
            bytes(totals.bytes),
            match totals.sessions.len() {
                1 => format!(
                    "session {}",
                    &totals.sessions.iter().next().expect("one").to_hex()[..8]
                ),
                n => format!("{n} sessions"),
            },
            totals.spans
        );
    }
    Ok(())
}

/// A progress bar over an import, drawn once its size is known.
struct Bar {
    wanted: bool,
    bar: Option<Progress>,
}

impl ImportProgress for Bar {
    fn start(&mut self, bytes: u64, files: u64) {
        self.bar = Some(Progress::new("importing", bytes, files, self.wanted));
    }

    fn set(&mut self, bytes: u64, files: u64) {
        if let Some(bar) = &mut self.bar {
            bar.set(bytes, files);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = &mut self.bar {
            bar.finish();
        }
    }
}

/// Imports every transcript under `root` (or `root` itself) that is new or grew.
pub fn import(
    choice: &crate::config::StoreChoice,
    agent: Agent,
    root: &Path,
    redactor: Arc<Redactor>,
    show_progress: bool,
) -> Result<Report> {
    let (mut writer, store) = choice.open_writer()?;
    let mut bar = Bar {
        wanted: show_progress,
        bar: None,
    };
    transcripts::import(&mut *writer, &*store, agent, root, redactor, &mut bar)
}
