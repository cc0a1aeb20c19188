//! Agents' transcripts on disk into the store, incrementally (`devtrace import claude-code`,
//! `devtrace import codex`, the Claude Code hook, `--follow`).
//!
//! Each transcript file has a cursor in the store (bytes consumed, a digest of its head, the
//! importer's state), written in the same transaction as the data it read. A file that has not
//! grown is skipped; a file that grew is read from its cursor; a file that was replaced (its
//! head changed) is read again from the start, which merging makes harmless. Re-importing
//! therefore stores nothing twice and reads only what is new.
//!
//! Files are read on a worker thread (decode, redact, compress: [`worker`]) while the calling
//! thread writes, coalescing what waits into one transaction ([`writer`]); pieces are bounded
//! (a long transcript is flushed every 20,000 spans), so memory stays flat whatever the size
//! of the import. [`follow`] repeats the import whenever a transcript grows or appears.

mod follow;
mod worker;
mod writer;

pub use follow::follow;

use anyhow::{Context, Result};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::Agent;
use devtrace_model::TraceId;
use devtrace_model::recorded::escape;
use devtrace_store::{Store, StoreWriter};
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::sync_channel;
use std::time::Instant;

/// Bytes of a file's head digested to recognise it later.
const FINGERPRINT_BYTES: u64 = 64 * 1024;

/// The default place an agent keeps its transcripts.
pub fn default_root(agent: Agent) -> Result<PathBuf> {
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

/// A path as it is shown in warnings and errors (recorded text, escaped).
fn shown(path: &Path) -> String {
    escape(&path.to_string_lossy())
}

/// Every `*.jsonl` under `root` (or `root` itself when it is a file), sorted.
fn transcripts(root: &Path) -> Result<Vec<PathBuf>> {
    if root.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", shown(&dir)))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot list {}", shown(&dir)))?;
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

/// What an import stored.
#[derive(Default, Debug)]
pub struct Totals {
    /// Files read (all of them, or what they gained).
    pub files: u64,
    /// Files that had not changed since the last import.
    pub unchanged: u64,
    pub failed: u64,
    /// Bytes imported (whole lines consumed).
    pub bytes: u64,
    pub spans: u64,
    pub skipped_lines: u64,
    pub sessions: BTreeSet<TraceId>,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Report {
    pub totals: Totals,
    /// Skipped lines, unreadable files, lines left for later: for stderr.
    pub warnings: Vec<String>,
    pub seconds: f64,
}

impl Report {
    pub fn failed_files(&self) -> u64 {
        self.totals.failed
    }
}

/// Told how an import advances (a progress bar); every method does nothing by default.
pub trait ImportProgress {
    /// The import will read `bytes` in `files`.
    fn start(&mut self, _bytes: u64, _files: u64) {}
    /// `bytes` are read and `files` done so far.
    fn set(&mut self, _bytes: u64, _files: u64) {}
    /// Everything read is stored.
    fn finish(&mut self) {}
}

/// Progress nobody watches.
pub struct Unwatched;

impl ImportProgress for Unwatched {}

/// Imports every transcript under `root` (or `root` itself) that is new or grew, writing
/// through `writer` with the cursors of `store`.
pub fn import(
    writer: &mut dyn StoreWriter,
    store: &dyn Store,
    agent: Agent,
    root: &Path,
    redactor: Arc<Redactor>,
    progress: &mut dyn ImportProgress,
) -> Result<Report> {
    let files = transcripts(root)?;
    let started = Instant::now();
    let mut totals = Totals::default();
    let plans = plan(store, files, &mut totals)?;
    let total_bytes: u64 = plans.iter().map(|p| p.size - p.start).sum();
    progress.start(total_bytes, plans.len() as u64);
    let read_bytes = Arc::new(AtomicU64::new(0));
    let (sender, receiver) = sync_channel(4);
    let worker = {
        let read_bytes = Arc::clone(&read_bytes);
        std::thread::Builder::new()
            .name("devtrace-import".into())
            .spawn(move || worker::read_all(agent, plans, redactor, sender, read_bytes))
            .context("cannot start the import thread")?
    };
    let mut warnings = Vec::new();
    let written = writer::write_all(
        writer,
        &receiver,
        &mut totals,
        &mut warnings,
        progress,
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

/// Where to read each of `files`: from its cursor when it grew, from the start when it is
/// new, shrunk or replaced; files that have not changed are counted in `totals` and left out.
fn plan(store: &dyn Store, files: Vec<PathBuf>, totals: &mut Totals) -> Result<Vec<Plan>> {
    let mut plans = Vec::new();
    for path in files {
        let size = std::fs::metadata(&path)
            .with_context(|| format!("cannot read {}", shown(&path)))?
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
    Ok(plans)
}
