//! The journal: one JSON line per entry, appended and synced to disk before anything is
//! acknowledged, so a recorder killed at any moment loses nothing it said it had.
//!
//! A line cut short by a crash (no newline at the end) was never acknowledged: opening the
//! journal for appending drops it, and reading skips it. A damaged line in the middle (a disk
//! error, a hand edit) is skipped and counted, never fatal.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    /// A trace-1.0.0 event (already redacted). `spool` is the shell spool's offset after the
    /// line this event came from, so a restarted recorder resumes reading there.
    Event {
        event: Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spool: Option<u64>,
    },
    /// The content a path's next edit is diffed against changed without an edit event: the
    /// state at the start, or after a pause (what happened while paused is not recorded).
    /// `hash: None` means the file does not exist.
    Known {
        path: String,
        hash: Option<String>,
    },
    /// A command's output from capture mode, for the `terminal_command` whose `shell_pid` and
    /// `seq` match (the two arrive separately, in either order).
    Output {
        pid: u32,
        seq: u64,
        output: String,
        bytes: u64,
    },
    /// A recorder process started (the first, or one resuming an orphaned recording).
    Started {
        t: u64,
        pid: u32,
    },
    Paused {
        t: u64,
    },
    Resumed {
        t: u64,
    },
}

/// The journal, open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (or creates) the journal for appending; a torn last line is cut off first.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let length = file.metadata()?.len();
        if length > 0 {
            // Find the last newline (reading backwards in blocks).
            let mut end = length;
            let mut keep = 0;
            let mut block = vec![0u8; 64 * 1024];
            'search: while end > 0 {
                let start = end.saturating_sub(block.len() as u64);
                let size = (end - start) as usize;
                file.seek(SeekFrom::Start(start))?;
                file.read_exact(&mut block[..size])?;
                if let Some(i) = block[..size].iter().rposition(|b| *b == b'\n') {
                    keep = start + i as u64 + 1;
                    break 'search;
                }
                end = start;
            }
            if keep < length {
                file.set_len(keep)?;
                file.sync_all()?;
            }
        }
        file.seek(SeekFrom::End(0))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends entries and syncs them to disk; when this returns `Ok` they survive a crash.
    pub fn append(&mut self, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut bytes = Vec::new();
        for entry in entries {
            serde_json::to_writer(&mut bytes, entry).expect("entries serialise");
            bytes.push(b'\n');
        }
        self.file.write_all(&bytes)?;
        self.file.sync_data()
    }
}

/// What a journal holds, read back.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// Lines that were not entries (damaged), skipped.
    pub damaged: usize,
    /// Whether the last line was cut short (a crash while writing it).
    pub torn_tail: bool,
}

impl Contents {
    /// The trace-1.0.0 events, in the order they were recorded.
    pub fn events(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Event { event, .. } => Some(event),
            _ => None,
        })
    }

    /// Where the shell spool was read up to.
    pub fn spool_offset(&self) -> u64 {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Event { spool, .. } => *spool,
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Whether the recording was paused when the journal ends (a recorder resuming an
    /// orphaned recording keeps it paused).
    pub fn paused(&self) -> bool {
        let mut paused = false;
        for entry in &self.entries {
            match entry {
                Entry::Paused { .. } => paused = true,
                Entry::Resumed { .. } => paused = false,
                _ => {}
            }
        }
        paused
    }

    /// Each path's last known content hash (`None`: the file did not exist), from the
    /// `known` entries and the edit events.
    pub fn known_files(&self) -> std::collections::HashMap<String, Option<String>> {
        let mut known = std::collections::HashMap::new();
        for entry in &self.entries {
            match entry {
                Entry::Known { path, hash } => {
                    known.insert(path.clone(), hash.clone());
                }
                Entry::Event { event, .. }
                    if event.get("type").and_then(Value::as_str) == Some("edit") =>
                {
                    let Some(path) = event.get("file_path").and_then(Value::as_str) else {
                        continue;
                    };
                    // A deleted file has no hash after.
                    let hash = event
                        .get("after_hash")
                        .and_then(Value::as_str)
                        .filter(|h| !h.is_empty())
                        .map(str::to_owned);
                    known.insert(path.to_owned(), hash);
                }
                _ => {}
            }
        }
        known
    }
}

/// Reads a journal (a missing one is empty).
pub fn read(path: &Path) -> io::Result<Contents> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Contents::default()),
        Err(e) => return Err(e),
    };
    let mut contents = Contents::default();
    let mut lines = bytes.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let last = lines.peek().is_none();
        if last {
            // After the final newline: empty, or a line whose writing never finished.
            contents.torn_tail = !line.is_empty();
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => contents.entries.push(entry),
            Err(_) => contents.damaged += 1,
        }
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(n: u64) -> Entry {
        Entry::Event {
            event: json!({"t": "2026-01-01T00:00:00Z", "type": "thought", "raw": format!("note {n}")}),
            spool: Some(n * 10),
        }
    }

    #[test]
    fn appended_entries_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[event(1), event(2)]).unwrap();
        journal.append(&[Entry::Paused { t: 5 }]).unwrap();
        let contents = read(&path).unwrap();
        assert_eq!(contents.entries.len(), 3);
        assert_eq!(contents.events().count(), 2);
        assert_eq!(contents.spool_offset(), 20);
        assert!(contents.paused());
        assert!(!contents.torn_tail);
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        Journal::open(&path).unwrap().append(&[event(1)]).unwrap();
        // A crash in the middle of the next write.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"entry\":\"event\",\"ev").unwrap();
        drop(file);
        let contents = read(&path).unwrap();
        assert_eq!((contents.entries.len(), contents.torn_tail), (1, true));
        let mut journal = Journal::open(&path).unwrap();
        journal.append(&[event(2)]).unwrap();
        let contents = read(&path).unwrap();
        assert_eq!(contents.entries, vec![event(1), event(2)]);
        assert_eq!((contents.damaged, contents.torn_tail), (0, false));
    }

    #[test]
    fn damaged_lines_are_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        std::fs::write(&path, "not json\n{\"entry\":\"paused\",\"t\":1}\n").unwrap();
        let contents = read(&path).unwrap();
        assert_eq!(contents.entries, vec![Entry::Paused { t: 1 }]);
        assert_eq!(contents.damaged, 1);
        assert_eq!(
            read(&dir.path().join("missing")).unwrap(),
            Contents::default()
        );
    }

    #[test]
    fn known_files_follow_edits_and_baselines() {
        let contents = Contents {
            entries: vec![
                Entry::Known {
                    path: "a.py".into(),
                    hash: Some("h0".into()),
                },
                Entry::Event {
                    event: json!({"type": "edit", "file_path": "a.py", "before_hash": "h0", "after_hash": "h1"}),
                    spool: None,
                },
                Entry::Event {
                    event: json!({"type": "edit", "file_path": "b.py", "before_hash": "h2", "after_hash": ""}),
                    spool: None,
                },
            ],
            ..Contents::default()
        };
        let known = contents.known_files();
        assert_eq!(known["a.py"].as_deref(), Some("h1"));
        assert_eq!(known["b.py"], None);
    }
}
