//! The writing side of a transcript import: coalesces the pieces waiting from the worker into
//! one transaction each time, and turns finished files into totals and warnings.

use super::worker::Piece;
use super::{ImportProgress, Totals, shown};
use anyhow::{Context, Result};
use devtrace_store::StoreWriter;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// Pieces written in one transaction at most.
const MAX_COALESCED: usize = 64;

/// Writes until the worker has sent everything; an error stops at the first failed write.
pub(super) fn write_all(
    writer: &mut dyn StoreWriter,
    receiver: &Receiver<Piece>,
    totals: &mut Totals,
    warnings: &mut Vec<String>,
    progress: &mut dyn ImportProgress,
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
            if pieces.len() >= MAX_COALESCED {
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
            account(piece, totals, warnings);
        }
        progress.set(read_bytes.load(Ordering::Relaxed), totals.files);
    }
}

/// A finished (or failed) file in the totals, and what the person should hear about it. Only
/// called once the file's data (and cursor) is written.
fn account(piece: Piece, totals: &mut Totals, warnings: &mut Vec<String>) {
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
                    shown(&path),
                    note.line,
                    note.message
                ));
            }
            if notes.len() > 5 {
                warnings.push(format!(
                    "warning: {}: {} more lines skipped",
                    shown(&path),
                    notes.len() - 5
                ));
            }
            if incomplete_tail {
                warnings.push(format!(
                    "note: {}: the last line is still being written; it will be imported next time",
                    shown(&path)
                ));
            }
        }
        Piece::FileFailed { path, error } => {
            totals.failed += 1;
            warnings.push(format!("error: {}: {error}", shown(&path)));
        }
        Piece::Data { .. } => unreachable!("data pieces are written, not accounted"),
    }
}
