//! `devtrace import claude-code [PATH]` and `devtrace import codex [PATH]`: transcripts on
//! disk into the store, incrementally.
//!
//! Each transcript file has a cursor in the store (bytes consumed, a digest of its head, the
//! importer's state), written in the same transaction as the data it read. A file that has not
//! grown is skipped; a file that grew is read from its cursor; a file that was replaced (its
//! head changed) is read again from the start, which merging makes harmless. Re-importing
//! therefore stores nothing twice and reads only what is new.
//!
//! Files are read on a worker thread (decode, redact, compress) while this thread writes;
//! pieces are bounded (a long transcript is flushed every 20,000 spans), so memory stays flat
//! whatever the size of the import.

use crate::output::eprintln_safe;
use crate::progress::{Progress, bytes};
use anyhow::{Context, Result, bail};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::{Agent, Importer, LineNote, LineSource, importer, read_lines};
use devtrace_model::TraceId;
use devtrace_store::{ImportCursor, StoreWriter, WriteBatch, prepare_session};
use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// Spans held before a piece of a long transcript is sent to the writer.
const FLUSH_SPANS: usize = 20_000;
/// Bytes of a file's head digested to recognise it later.
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// The default place an agent keeps its transcripts.
fn default_root(agent: Agent) -> Result<PathBuf> {
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .context("HOME is unset: give the transcripts' directory")
    };
    Ok(match agent {
        Agent::ClaudeCode => {
            match std::env::var_os("CLAUDE_CONFIG_DIR").filter(|v| !v.is_empty()) {
                Some(dir) => PathBuf::from(dir).join("projects"),
                None => home()?.join(".claude/projects"),
            }
        }
        Agent::Codex => match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir).join("sessions"),
            None => home()?.join(".codex/sessions"),
        },
    })
}

/// Every `*.jsonl` under `root` (or `root` itself when it is a file), sorted.
fn transcripts(root: &Path) -> Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list {}", crate::output::path(&dir)))?;
        for entry in entries {
            let entry =
                entry.with_context(|| format!("cannot list {}", crate::output::path(&dir)))?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// One file to read: where to start and with what state.
struct Plan {
    path: PathBuf,
    source: String,
    size: u64,
    start: u64,
    checkpoint: Option<Vec<u8>>,
}

fn fingerprint(path: &Path, upto: u64) -> std::io::Result<[u8; 32]> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(upto.min(FINGERPRINT_BYTES))
        .read_to_end(&mut head)?;
    Ok(*blake3::hash(&head).as_bytes())
}

/// What the worker sends: pieces of data (the last one of a file with its cursor) and notes.
enum Piece {
    Data {
        batch: WriteBatch,
        sessions: Vec<TraceId>,
        spans: u64,
    },
    FileDone {
        path: PathBuf,
        /// Bytes consumed (whole lines).
        bytes: u64,
        notes: Vec<LineNote>,
        incomplete_tail: bool,
    },
    FileFailed {
        path: PathBuf,
        error: String,
    },
}

#[derive(Default, Debug)]
struct Totals {
    files: u64,
    unchanged: u64,
    failed: u64,
    /// Bytes imported (whole lines consumed).
    bytes: u64,
    spans: u64,
    skipped_lines: u64,
    sessions: BTreeSet<TraceId>,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    totals: Totals,
    /// Skipped lines, unreadable files, lines left for later: for stderr.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn failed_files(&self) -> u64 {
        self.totals.failed
    }
}

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
        None => default_root(agent)?,
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

/// How often `--follow` looks at the transcripts' sizes.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

static STOP_FOLLOWING: AtomicBool = AtomicBool::new(false);

extern "C" fn stop_following(_: libc::c_int) {
    STOP_FOLLOWING.store(true, Ordering::SeqCst);
}

/// The transcripts under `root` with their sizes and modification times: when this changes,
/// something was written.
fn transcripts_state(root: &Path) -> Result<Vec<(PathBuf, u64, Option<std::time::SystemTime>)>> {
    Ok(transcripts(root)?
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, meta.len(), meta.modified().ok()))
        })
        .collect())
}

/// `--follow`: imports what is new whenever a transcript under `root` grows or appears, until
/// SIGINT or SIGTERM. Each round is an ordinary incremental import (cursors in the store,
/// written with the data), so stopping anywhere and starting again stores nothing twice; a
/// line still being written waits for its newline.
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
    let mut seen = None;
    let mut failed = false;
    while !STOP_FOLLOWING.load(Ordering::SeqCst) {
        let state = transcripts_state(root)?;
        if seen.as_ref() != Some(&state) {
            let report = import(choice, agent, root, Arc::clone(&redactor), false)?;
            let totals = &report.totals;
            for warning in report
                .warnings
                .iter()
                .filter(|w| !w.contains("the last line is still being written"))
            {
                eprintln_safe!("{warning}");
            }
            failed |= totals.failed > 0;
            if totals.spans > 0 || totals.files > 0 {
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
            }
            seen = Some(state);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    eprintln_safe!("stopped following {}", crate::output::path(root));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Imports every transcript under `root` (or `root` itself) that is new or grew.
pub fn import(
    choice: &crate::config::StoreChoice,
    agent: Agent,
    root: &Path,
    redactor: Arc<Redactor>,
    show_progress: bool,
) -> Result<Report> {
    let files = transcripts(root)?;
    let (mut writer, store) = choice.open_writer()?;
    let started = Instant::now();
    let mut totals = Totals::default();
    let mut plans = Vec::new();
    for path in files {
        let size = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", crate::output::path(&path)))?
            .len();
        let source = std::fs::canonicalize(&path)
            .unwrap_or_else(|_| path.clone())
            .display()
            .to_string();
        let (start, checkpoint) = match store.import_cursor(&source)? {
            Some(cursor)
                if cursor.offset <= size
                    && fingerprint(&path, cursor.offset).ok() == Some(cursor.fingerprint) =>
            {
                (cursor.offset, Some(cursor.state))
            }
            // New, shrunk or replaced: from the start.
            _ => (0, None),
        };
        if start == size {
            totals.unchanged += 1;
            continue;
        }
        plans.push(Plan {
            path,
            source,
            size,
            start,
            checkpoint,
        });
    }
    let total_bytes: u64 = plans.iter().map(|p| p.size - p.start).sum();
    let total_files = plans.len() as u64;
    let mut progress = Progress::new("importing", total_bytes, total_files, show_progress);
    let read_bytes = Arc::new(AtomicU64::new(0));
    let (sender, receiver) = sync_channel::<Piece>(4);
    let worker = {
        let read_bytes = Arc::clone(&read_bytes);
        std::thread::Builder::new()
            .name("devtrace-import".into())
            .spawn(move || read_all(agent, plans, redactor, sender, read_bytes))
            .context("cannot start the import thread")?
    };
    let mut warnings = Vec::new();
    let written = write_all(
        &mut *writer,
        &receiver,
        &mut totals,
        &mut warnings,
        &mut progress,
        &read_bytes,
    );
    // Stop the worker (if the writer failed) before waiting for it.
    drop(receiver);
    worker.join().expect("the import thread does not panic");
    written?;
    progress.finish();
    Ok(Report {
        totals,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The writer's side: coalesces waiting pieces into one transaction each time.
fn write_all(
    writer: &mut dyn StoreWriter,
    receiver: &Receiver<Piece>,
    totals: &mut Totals,
    warnings: &mut Vec<String>,
    progress: &mut Progress,
    read_bytes: &AtomicU64,
) -> Result<()> {
    loop {
        let first = match receiver.recv_timeout(Duration::from_millis(100)) {
            Ok(piece) => piece,
            Err(RecvTimeoutError::Timeout) => {
                progress.set(read_bytes.load(Ordering::Relaxed), totals.files);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let mut batches = Vec::new();
        let mut pieces = vec![first];
        while let Ok(more) = receiver.try_recv() {
            pieces.push(more);
            if pieces.len() >= 64 {
                break;
            }
        }
        let mut done = Vec::new();
        for piece in pieces {
            match piece {
                Piece::Data {
                    batch,
                    sessions,
                    spans,
                } => {
                    totals.sessions.extend(sessions);
                    totals.spans += spans;
                    batches.push(batch);
                }
                other => done.push(other),
            }
        }
        if !batches.is_empty() {
            writer
                .write(&batches)
                .context("cannot store the sessions")?;
        }
        for piece in done {
            match piece {
                Piece::FileDone {
                    path,
                    bytes,
                    notes,
                    incomplete_tail,
                } => {
                    totals.files += 1;
                    totals.bytes += bytes;
                    totals.skipped_lines += notes.len() as u64;
                    for note in notes.iter().take(5) {
                        warnings.push(format!(
                            "warning: {}:{}: {} (line skipped)",
                            crate::output::path(&path),
                            note.line,
                            note.message
                        ));
                    }
                    if notes.len() > 5 {
                        warnings.push(format!(
                            "warning: {}: {} more lines skipped",
                            crate::output::path(&path),
                            notes.len() - 5
                        ));
                    }
                    if incomplete_tail {
                        warnings.push(format!(
                            "note: {}: the last line is still being written; it will be imported next time",
                            crate::output::path(&path)
                        ));
                    }
                }
                Piece::FileFailed { path, error } => {
                    totals.failed += 1;
                    warnings.push(format!("error: {}: {error}", crate::output::path(&path)));
                }
                Piece::Data { .. } => unreachable!("data pieces were taken above"),
            }
        }
        progress.set(read_bytes.load(Ordering::Relaxed), totals.files);
    }
}

/// Sends a piece for everything the importer holds (with a cursor when the file is done).
struct Flushing<'a> {
    importer: &'a mut (dyn Importer + Send),
    sender: &'a SyncSender<Piece>,
}

impl Flushing<'_> {
    fn send(&mut self, cursor: Option<ImportCursor>) -> bool {
        let output = self.importer.drain();
        let sessions: BTreeSet<TraceId> = output.spans.spans.iter().map(|s| s.trace_id).collect();
        let spans = output.spans.spans.len() as u64;
        let mut batch = prepare_session(output.spans, output.blobs);
        batch.cursors.extend(cursor);
        self.sender
            .send(Piece::Data {
                batch,
                sessions: sessions.into_iter().collect(),
                spans,
            })
            .is_ok()
    }
}

impl LineSource for Flushing<'_> {
    fn line(&mut self, number: u64, text: &str) -> Result<(), String> {
        let result = self.importer.line(number, text);
        if self.importer.pending_spans() >= FLUSH_SPANS {
            self.send(None);
        }
        result
    }
}

/// The worker's side: reads every planned file in turn.
fn read_all(
    agent: Agent,
    plans: Vec<Plan>,
    redactor: Arc<Redactor>,
    sender: SyncSender<Piece>,
    read_bytes: Arc<AtomicU64>,
) {
    for plan in plans {
        let base = read_bytes.load(Ordering::Relaxed);
        let result = read_one(agent, &plan, &redactor, &sender, &read_bytes, base);
        let piece = match result {
            Ok((bytes, notes, incomplete_tail)) => Piece::FileDone {
                path: plan.path.clone(),
                bytes,
                notes,
                incomplete_tail,
            },
            Err(error) => Piece::FileFailed {
                path: plan.path.clone(),
                error: format!("{error:#}"),
            },
        };
        read_bytes.store(base + (plan.size - plan.start), Ordering::Relaxed);
        if sender.send(piece).is_err() {
            return;
        }
    }
}

fn read_one(
    agent: Agent,
    plan: &Plan,
    redactor: &Arc<Redactor>,
    sender: &SyncSender<Piece>,
    read_bytes: &AtomicU64,
    base: u64,
) -> Result<(u64, Vec<LineNote>, bool)> {
    let (mut importer, lines) = importer(agent, Arc::clone(redactor), plan.checkpoint.as_deref());
    let mut file = std::fs::File::open(&plan.path).context("cannot open")?;
    file.seek(SeekFrom::Start(plan.start))
        .context("cannot seek")?;
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut flushing = Flushing {
        importer: importer.as_mut(),
        sender,
    };
    let summary = read_lines(reader, lines, &mut flushing, &mut |done| {
        read_bytes.store(base + done, Ordering::Relaxed);
    })
    .context("cannot read")?;
    let offset = plan.start + summary.bytes;
    let cursor = ImportCursor {
        source: plan.source.clone(),
        offset,
        fingerprint: fingerprint(&plan.path, offset).context("cannot read")?,
        state: flushing.importer.checkpoint(lines + summary.lines),
    };
    flushing.send(Some(cursor));
    Ok((summary.bytes, summary.notes, summary.incomplete_tail))
}
