//! The reading side of a transcript import, on its own thread: each planned file read from its
//! cursor through the agent's importer, sent to the writer in bounded pieces, the last one of a
//! file with its new cursor.

use super::{Plan, fingerprint};
use anyhow::{Context, Result};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::{Agent, Importer, LineNote, LineSource, importer, read_lines};
use devtrace_model::TraceId;
use devtrace_store::{ImportCursor, WriteBatch, prepare_session};
use std::collections::BTreeSet;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;

/// Spans held before a piece of a long transcript is sent to the writer.
const FLUSH_SPANS: usize = 20_000;

/// What the worker sends: pieces of data (the last one of a file with its cursor) and notes.
pub(super) enum Piece {
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

/// Reads every planned file in turn; stops when the writer has gone.
pub(super) fn read_all(
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
