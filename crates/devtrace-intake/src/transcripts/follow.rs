//! `--follow`: an import round whenever a transcript grows or appears. Each round is an
//! ordinary incremental import (cursors in the store, written with the data), so stopping
//! anywhere and starting again stores nothing twice; a line still being written waits for its
//! newline.

use super::transcripts;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// How often the transcripts' sizes are looked at.
const POLL: Duration = Duration::from_millis(200);

/// The transcripts under `root` with their sizes and modification times: when this changes,
/// something was written.
fn state(root: &Path) -> Result<Vec<(PathBuf, u64, Option<SystemTime>)>> {
    Ok(transcripts(root)?
        .into_iter()
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, meta.len(), meta.modified().ok()))
        })
        .collect())
}

/// Calls `round` (an import of what is new under `root`) at once and again whenever something
/// under `root` was written, until `stop` is set; an error of `round` ends the following.
pub fn follow(root: &Path, stop: &AtomicBool, mut round: impl FnMut() -> Result<()>) -> Result<()> {
    let mut seen = None;
    while !stop.load(Ordering::SeqCst) {
        let now = state(root)?;
        if seen.as_ref() != Some(&now) {
            round()?;
            seen = Some(now);
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}
