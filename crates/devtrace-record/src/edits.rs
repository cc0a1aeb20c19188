//! Saved changes as `edit` events.
//!
//! The [`Tracker`] knows, for every path it has seen, the hash of the content the next edit is
//! diffed against, and keeps that content in a content-addressed snapshot directory. A path it
//! has not seen is taken as it was in the start commit (files already changed at the start are
//! snapshotted then, see [`Tracker::baseline`]). Observing a path compares its content now with
//! what is known: nothing when equal (a save without changes, a touch), otherwise one event
//! with a unified diff git can apply, the content hashes before and after (so circular edits
//! are found), the changed line range and the language.
//!
//! Binary files and files over the size limit are summarised (sizes, hashes), never stored.

use crate::git::Repo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

/// The hash recorded as `before_hash`/`after_hash`: BLAKE3, 128 bits in hex (as devtrace's
/// importers hash file contents).
pub fn content_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..32].to_owned()
}

/// Largest diff kept in an event; a larger one is summarised.
pub const MAX_PATCH_BYTES: usize = 256 * 1024;

/// Whether content is binary: a NUL byte in its first 8,000 bytes (git's test), or not UTF-8.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(8000)].contains(&0) || std::str::from_utf8(bytes).is_err()
}

/// File contents kept by hash under `snapshots/`.
#[derive(Clone, Debug)]
pub struct Snapshots {
    dir: PathBuf,
}

impl Snapshots {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Keeps `bytes`; returns their hash.
    pub fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let hash = content_hash(bytes);
        let path = self.dir.join(&hash);
        if !path.exists() {
            crate::layout::write_atomically(&path, bytes)?;
        }
        Ok(hash)
    }

    pub fn get(&self, hash: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join(hash)).ok()
    }
}

/// One side of a change.
#[derive(Clone, Debug)]
enum Side {
    Absent,
    /// The content, with its hash.
    Kept(String, Vec<u8>),
    /// Known only by hash and size (over the size limit, or its snapshot is gone).
    Summary(String, u64),
}

impl Side {
    fn hash(&self) -> Option<&str> {
        match self {
            Side::Absent => None,
            Side::Kept(hash, _) | Side::Summary(hash, _) => Some(hash),
        }
    }
}

/// Follows the files of one working tree.
#[derive(Debug)]
pub struct Tracker {
    repo: Repo,
    start_commit: Option<String>,
    snapshots: Snapshots,
    /// path → hash of the content the next edit is diffed against (`None`: absent).
    known: HashMap<String, Option<String>>,
    max_file_bytes: u64,
}

impl Tracker {
    pub fn new(
        repo: Repo,
        start_commit: Option<String>,
        snapshots: Snapshots,
        known: HashMap<String, Option<String>>,
        max_file_bytes: u64,
    ) -> Self {
        Self {
            repo,
            start_commit,
            snapshots,
            known,
            max_file_bytes,
        }
    }

    pub fn root(&self) -> &Path {
        &self.repo.root
    }

    /// Takes `path`'s content now as what its next edit is diffed against, without an event;
    /// returns the hash (`None` when the file does not exist).
    pub fn baseline(&mut self, path: &str) -> io::Result<Option<String>> {
        let side = self.read_now(path)?;
        let hash = side.hash().map(str::to_owned);
        self.known.insert(path.to_owned(), hash.clone());
        Ok(hash)
    }

    /// The `edit` event for `path` (relative to the root) if its content differs from what is
    /// known, stamped `t`; the new content becomes what is known.
    pub fn observe(&mut self, path: &str, t: u64) -> io::Result<Option<Value>> {
        let after = self.read_now(path)?;
        let before = self.before(path);
        if before.hash() == after.hash() {
            return Ok(None);
        }
        self.known
            .insert(path.to_owned(), after.hash().map(str::to_owned));
        Ok(Some(edit_event(path, &before, &after, t)))
    }

    /// What `path` was: the known snapshot, else its content in the start commit.
    fn before(&mut self, path: &str) -> Side {
        let hash = match self.known.get(path) {
            Some(None) => return Side::Absent,
            Some(Some(hash)) => hash.clone(),
            None => {
                let at_start = self
                    .start_commit
                    .as_deref()
                    .and_then(|commit| self.repo.file_at(commit, path));
                let Some(bytes) = at_start else {
                    return Side::Absent;
                };
                let hash = content_hash(&bytes);
                if (bytes.len() as u64) <= self.max_file_bytes {
                    let _ = self.snapshots.put(&bytes);
                    return Side::Kept(hash, bytes);
                }
                return Side::Summary(hash, bytes.len() as u64);
            }
        };
        match self.snapshots.get(&hash) {
            Some(bytes) => Side::Kept(hash, bytes),
            None => Side::Summary(hash, 0),
        }
    }

    fn read_now(&self, path: &str) -> io::Result<Side> {
        let full = self.repo.root.join(path);
        let metadata = match std::fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Side::Absent),
            Err(e) => return Err(e),
        };
        if !metadata.is_file() {
            return Ok(Side::Absent);
        }
        if metadata.len() > self.max_file_bytes {
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(std::fs::File::open(&full)?)?;
            let hash = hasher.finalize().to_hex()[..32].to_owned();
            return Ok(Side::Summary(hash, metadata.len()));
        }
        let bytes = match std::fs::read(&full) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Side::Absent),
            Err(e) => return Err(e),
        };
        let hash = self.snapshots.put(&bytes)?;
        Ok(Side::Kept(hash, bytes))
    }
}

fn size_text(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
    }
}

/// The `edit` event between two sides of a file.
fn edit_event(path: &str, before: &Side, after: &Side, t: u64) -> Value {
    let op = match (before, after) {
        (Side::Absent, _) => "create",
        (_, Side::Absent) => "delete",
        _ => "replace",
    };
    let mut event = json!({
        "t": crate::timestamp(t),
        "type": "edit",
        "file_path": path,
        "op": op,
    });
    let language = crate::language::of_path(path);
    if !language.is_empty() {
        event["language"] = json!(language);
    }
    if let Some(hash) = before.hash() {
        event["before_hash"] = json!(hash);
    }
    if let Some(hash) = after.hash() {
        event["after_hash"] = json!(hash);
    }
    let empty: &[u8] = &[];
    let content = |side: &Side| -> Option<Vec<u8>> {
        match side {
            Side::Absent => Some(empty.to_vec()),
            Side::Kept(_, bytes) => Some(bytes.clone()),
            Side::Summary(..) => None,
        }
    };
    let size = |side: &Side| -> u64 {
        match side {
            Side::Absent => 0,
            Side::Kept(_, bytes) => bytes.len() as u64,
            Side::Summary(_, size) => *size,
        }
    };
    match (content(before), content(after)) {
        (Some(old), Some(new)) if !is_binary(&old) && !is_binary(&new) => {
            let old = String::from_utf8(old).expect("checked UTF-8");
            let new = String::from_utf8(new).expect("checked UTF-8");
            let diff = unified_diff(path, op, &old, &new);
            event["lines_added"] = json!(diff.added);
            event["lines_removed"] = json!(diff.removed);
            if let Some((start, end)) = diff.range {
                event["range"] =
                    json!({"start": {"line": start, "col": 1}, "end": {"line": end, "col": 1}});
            }
            if diff.text.len() <= MAX_PATCH_BYTES {
                event["patch_unified"] = json!(diff.text);
            } else {
                event["summary"] = json!(format!(
                    "diff not kept: {} (over {})",
                    size_text(diff.text.len() as u64),
                    size_text(MAX_PATCH_BYTES as u64)
                ));
            }
        }
        (Some(old), Some(new)) => {
            let _ = (old, new);
            event["summary"] = json!(format!(
                "binary file: {} → {}",
                size_text(size(before)),
                size_text(size(after))
            ));
        }
        _ => {
            event["summary"] = json!(format!(
                "large file, contents not kept: {} → {}",
                size_text(size(before)),
                size_text(size(after))
            ));
        }
    }
    event
}

/// A diff's text and what it touched.
struct Diff {
    text: String,
    added: u64,
    removed: u64,
    /// First and last line (1-based, in the new content) of the changed region.
    range: Option<(u64, u64)>,
}

/// A git-style unified diff (three lines of context) of one file.
fn unified_diff(path: &str, op: &str, old: &str, new: &str) -> Diff {
    use similar::{ChangeTag, DiffTag, TextDiff};
    let diff = TextDiff::configure()
        .algorithm(similar::Algorithm::Myers)
        .timeout(std::time::Duration::from_secs(2))
        .diff_lines(old, new);
    let mut text = format!("diff --git a/{path} b/{path}\n");
    match op {
        "create" => text.push_str(&format!(
            "new file mode 100644\n--- /dev/null\n+++ b/{path}\n"
        )),
        "delete" => text.push_str(&format!(
            "deleted file mode 100644\n--- a/{path}\n+++ /dev/null\n"
        )),
        _ => text.push_str(&format!("--- a/{path}\n+++ b/{path}\n")),
    }
    let mut unified = diff.unified_diff();
    unified.context_radius(3).missing_newline_hint(true);
    for hunk in unified.iter_hunks() {
        text.push_str(&hunk.to_string());
    }
    let (mut added, mut removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    let mut range: Option<(u64, u64)> = None;
    for op in diff.ops() {
        if op.tag() == DiffTag::Equal {
            continue;
        }
        let lines = op.new_range();
        let first = lines.start as u64 + 1;
        let last = (lines.end as u64).max(first);
        range = Some(match range {
            None => (first, last),
            Some((a, b)) => (a.min(first), b.max(last)),
        });
    }
    Diff {
        text,
        added,
        removed,
        range,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::tests::repo;
    use std::process::Command;

    fn tracker(repo: &Repo, snapshots: &Path) -> Tracker {
        Tracker::new(
            repo.clone(),
            repo.head(),
            Snapshots::new(snapshots.to_path_buf()),
            HashMap::new(),
            1024 * 1024,
        )
    }

    /// Applies `patch` with `git apply` to `before` and returns the result.
    fn git_apply(path: &str, before: Option<&str>, patch: &str) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        if let Some(before) = before {
            std::fs::write(&full, before).unwrap();
        }
        std::fs::write(dir.path().join("p.diff"), patch).unwrap();
        let status = Command::new("git")
            .current_dir(dir.path())
            .args(["apply", "p.diff"])
            .status()
            .unwrap();
        assert!(status.success(), "git apply refused:\n{patch}");
        std::fs::read_to_string(&full).ok()
    }

    #[test]
    fn a_change_becomes_one_edit_with_a_diff_git_applies() {
        let (dir, repo) = repo();
        let snapshots = tempfile::tempdir().unwrap();
        let mut tracker = tracker(&repo, snapshots.path());
        let t = 1_767_225_600_000_000_000;
        assert_eq!(tracker.observe("a.txt", t).unwrap(), None, "unchanged");
        std::fs::write(dir.path().join("a.txt"), "one\nTWO\nthree\nfour").unwrap();
        let event = tracker.observe("a.txt", t).unwrap().unwrap();
        assert_eq!(event["type"], "edit");
        assert_eq!(event["op"], "replace");
        assert_eq!(event["t"], "2026-01-01T00:00:00Z");
        assert_eq!(event["before_hash"], content_hash(b"one\ntwo\nthree\n"));
        assert_eq!(event["after_hash"], content_hash(b"one\nTWO\nthree\nfour"));
        assert_eq!(event["language"], "plaintext");
        assert_eq!(
            (
                event["lines_added"].as_u64(),
                event["lines_removed"].as_u64()
            ),
            (Some(2), Some(1))
        );
        assert_eq!(event["range"]["start"]["line"], 2);
        assert_eq!(event["range"]["end"]["line"], 4);
        let patch = event["patch_unified"].as_str().unwrap();
        assert!(
            patch.starts_with("diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ "),
            "{patch}"
        );
        assert_eq!(
            git_apply("a.txt", Some("one\ntwo\nthree\n"), patch).as_deref(),
            Some("one\nTWO\nthree\nfour")
        );
        assert_eq!(
            tracker.observe("a.txt", t).unwrap(),
            None,
            "saved again unchanged"
        );
        // Back to the original: a second edit whose after_hash is the first one's before_hash.
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        let back = tracker.observe("a.txt", t).unwrap().unwrap();
        assert_eq!(back["after_hash"], event["before_hash"]);
        assert_eq!(back["before_hash"], event["after_hash"]);
    }

    #[test]
    fn created_and_deleted_files() {
        let (dir, repo) = repo();
        let snapshots = tempfile::tempdir().unwrap();
        let mut tracker = tracker(&repo, snapshots.path());
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/new.py"), "print('hi')\n").unwrap();
        let created = tracker.observe("src/new.py", 0).unwrap().unwrap();
        assert_eq!(
            (created["op"].as_str(), created["language"].as_str()),
            (Some("create"), Some("python"))
        );
        assert!(created.get("before_hash").is_none());
        let patch = created["patch_unified"].as_str().unwrap();
        assert_eq!(
            git_apply("src/new.py", None, patch).as_deref(),
            Some("print('hi')\n")
        );
        std::fs::remove_file(dir.path().join("a.txt")).unwrap();
        let deleted = tracker.observe("a.txt", 0).unwrap().unwrap();
        assert_eq!(deleted["op"], "delete");
        assert!(deleted.get("after_hash").is_none());
        assert_eq!(
            git_apply(
                "a.txt",
                Some("one\ntwo\nthree\n"),
                deleted["patch_unified"].as_str().unwrap()
            ),
            None
        );
        assert_eq!(tracker.observe("a.txt", 0).unwrap(), None, "still gone");
    }

    #[test]
    fn binary_and_huge_files_are_summarised() {
        let (dir, repo) = repo();
        let snapshots = tempfile::tempdir().unwrap();
        let mut tracker = Tracker::new(
            repo.clone(),
            repo.head(),
            Snapshots::new(snapshots.path().to_path_buf()),
            HashMap::new(),
            1000,
        );
        std::fs::write(
            dir.path().join("image.png"),
            [0x89u8, b'P', b'N', b'G', 0, 0, 1],
        )
        .unwrap();
        let binary = tracker.observe("image.png", 0).unwrap().unwrap();
        assert_eq!(binary["summary"], "binary file: 0 B → 7 B");
        assert!(binary.get("patch_unified").is_none());
        std::fs::write(dir.path().join("big.txt"), "x\n".repeat(1000)).unwrap();
        let big = tracker.observe("big.txt", 0).unwrap().unwrap();
        assert_eq!(
            big["summary"],
            "large file, contents not kept: 0 B → 2.0 KiB"
        );
        assert_eq!(
            big["after_hash"],
            content_hash("x\n".repeat(1000).as_bytes())
        );
        assert!(
            std::fs::read_dir(snapshots.path())
                .unwrap()
                .all(|e| { std::fs::metadata(e.unwrap().path()).unwrap().len() <= 1000 }),
            "huge contents are never kept"
        );
    }

    #[test]
    fn a_baseline_is_what_the_next_edit_diffs_against() {
        let (dir, repo) = repo();
        let snapshots = tempfile::tempdir().unwrap();
        let mut tracker = tracker(&repo, snapshots.path());
        // Changed before the recording started.
        std::fs::write(dir.path().join("a.txt"), "dirty\n").unwrap();
        tracker.baseline("a.txt").unwrap();
        std::fs::write(dir.path().join("a.txt"), "dirty\nmore\n").unwrap();
        let event = tracker.observe("a.txt", 0).unwrap().unwrap();
        let patch = event["patch_unified"].as_str().unwrap();
        assert!(patch.contains(" dirty\n+more\n"), "{patch}");
        assert!(!patch.contains("-one"), "{patch}");
    }
}
