//! Replaying an agent's edits on a checkout: text replacements (`Edit`, `MultiEdit`), whole
//! files (`Write`) and Codex patches (`*** Begin Patch` … `*** End Patch`), in order. An edit
//! whose text is not found is a rejected hunk, reported with the call it came from.
//!
//! Paths are checked before anything is written: a path that leaves the checkout (`..`, an
//! absolute path, a symbolic link) is refused, since this runs outside any sandbox.

use crate::result::RejectedHunk;
use crate::session::{AgentEdit, EditChange};
use std::path::{Component, Path, PathBuf};

/// What a replay did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Replayed {
    /// Edits that applied.
    pub applied: usize,
    /// Edits whose text matched only with whitespace ignored (lower confidence).
    pub loose: usize,
    pub rejected: Vec<RejectedHunk>,
}

/// Replays `edits` on `checkout`.
pub fn replay(checkout: &Path, edits: &[AgentEdit]) -> Replayed {
    let mut done = Replayed::default();
    for edit in edits {
        let reject = |done: &mut Replayed, file: &str, hunk: String| {
            done.rejected.push(RejectedHunk {
                file: file.to_owned(),
                hunk,
                event: Some(edit.event.clone()),
            });
        };
        match &edit.change {
            EditChange::CodexPatch { text } => match codex_patch(checkout, &edit.path, text) {
                Ok(loose) => {
                    done.applied += 1;
                    done.loose += loose;
                }
                Err((file, hunk)) => reject(&mut done, &file, hunk),
            },
            change => {
                let target = match safe_path(checkout, &edit.path) {
                    Ok(target) => target,
                    Err(why) => {
                        reject(&mut done, &edit.path, why);
                        continue;
                    }
                };
                let current = std::fs::read_to_string(&target).ok();
                let result = match change {
                    EditChange::Write { content } => Ok(content.clone()),
                    EditChange::Replace { old, new, all } => {
                        replace(current.as_deref(), old, new, *all)
                    }
                    EditChange::Several(list) => list
                        .iter()
                        .try_fold(current.clone(), |text, (old, new, all)| {
                            replace(text.as_deref(), old, new, *all).map(Some)
                        })
                        .map(Option::unwrap_or_default),
                    EditChange::CodexPatch { .. } => unreachable!("handled above"),
                };
                match result {
                    Ok(text) => {
                        if let Some(parent) = target.parent() {
                            let _ = std::fs::create_dir_all(parent);
                        }
                        match std::fs::write(&target, text) {
                            Ok(()) => done.applied += 1,
                            Err(e) => reject(&mut done, &edit.path, format!("cannot write: {e}")),
                        }
                    }
                    Err(hunk) => reject(&mut done, &edit.path, hunk),
                }
            }
        }
    }
    done
}

/// `old` replaced by `new` in `text` (the first occurrence, or all); the error is the hunk
/// that did not match.
fn replace(text: Option<&str>, old: &str, new: &str, all: bool) -> Result<String, String> {
    let Some(text) = text else {
        if old.is_empty() {
            return Ok(new.to_owned());
        }
        return Err(format!("the file does not exist; expected to find:\n{old}"));
    };
    if old.is_empty() {
        return if text.is_empty() {
            Ok(new.to_owned())
        } else {
            Err("an edit with no old text of a file that is not empty".to_owned())
        };
    }
    if !text.contains(old) {
        return Err(format!("not found in the file:\n{old}"));
    }
    Ok(if all {
        text.replace(old, new)
    } else {
        text.replacen(old, new, 1)
    })
}

/// `relative` under `checkout`, refusing anything that could point outside it.
fn safe_path(checkout: &Path, relative: &str) -> Result<PathBuf, String> {
    let path = Path::new(relative);
    if relative.is_empty()
        || path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!(
            "refused: {relative:?} is not a path inside the repository"
        ));
    }
    let mut at = checkout.to_owned();
    for component in path.components() {
        at.push(component);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "refused: {relative:?} goes through a symbolic link"
            ));
        }
    }
    Ok(at)
}

/// Applies a Codex patch whose paths are relative to `dir` (relative to the checkout).
/// Returns how many hunks matched only loosely, or the file and hunk that did not apply.
fn codex_patch(checkout: &Path, dir: &str, text: &str) -> Result<usize, (String, String)> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.peek() {
        if line.trim() == "*** Begin Patch" {
            lines.next();
            break;
        }
        lines.next();
    }
    let join = |path: &str| -> String {
        if dir.is_empty() {
            path.trim().to_owned()
        } else {
            format!("{}/{}", dir.trim_end_matches('/'), path.trim())
        }
    };
    let mut loose = 0;
    while let Some(line) = lines.next() {
        let line = line.trim_end();
        if line == "*** End Patch" {
            break;
        }
        if let Some(path) = line.strip_prefix("*** Add File: ") {
            let file = join(path);
            let mut content = String::new();
            while let Some(next) = lines.peek() {
                if next.starts_with("*** ") {
                    break;
                }
                content.push_str(next.strip_prefix('+').unwrap_or(next));
                content.push('\n');
                lines.next();
            }
            let target = safe_path(checkout, &file).map_err(|e| (file.clone(), e))?;
            if let Some(parent) = target.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(&target, content).map_err(|e| (file, format!("cannot write: {e}")))?;
        } else if let Some(path) = line.strip_prefix("*** Delete File: ") {
            let file = join(path);
            let target = safe_path(checkout, &file).map_err(|e| (file.clone(), e))?;
            std::fs::remove_file(&target).map_err(|e| (file, format!("cannot delete: {e}")))?;
        } else if let Some(path) = line.strip_prefix("*** Update File: ") {
            let file = join(path);
            let target = safe_path(checkout, &file).map_err(|e| (file.clone(), e))?;
            let mut moved_to = None;
            if let Some(next) = lines.peek()
                && let Some(to) = next.strip_prefix("*** Move to: ")
            {
                moved_to = Some(join(to));
                lines.next();
            }
            let original = std::fs::read_to_string(&target)
                .map_err(|e| (file.clone(), format!("cannot read: {e}")))?;
            let mut body: Vec<String> = original.lines().map(str::to_owned).collect();
            let ends_with_newline = original.ends_with('\n') || original.is_empty();
            let mut cursor = 0;
            // Hunks until the next file header.
            while let Some(next) = lines.peek() {
                if next.starts_with("*** ") && !next.starts_with("*** End of File") {
                    break;
                }
                let header = lines.next().expect("peeked");
                if header.starts_with("*** End of File") {
                    continue;
                }
                let anchor = header
                    .strip_prefix("@@")
                    .map(|a| a.trim().to_owned())
                    .unwrap_or_default();
                let mut old = Vec::new();
                let mut new = Vec::new();
                let mut hunk_text = format!("{header}\n");
                if !header.starts_with("@@") {
                    // A hunk without its header line: this line is its first.
                    push_line(header, &mut old, &mut new);
                }
                while let Some(next) = lines.peek() {
                    if next.starts_with("@@") || next.starts_with("*** ") {
                        break;
                    }
                    let line = lines.next().expect("peeked");
                    hunk_text.push_str(line);
                    hunk_text.push('\n');
                    push_line(line, &mut old, &mut new);
                }
                if !anchor.is_empty()
                    && let Some(at) = body[cursor..].iter().position(|l| l.contains(&anchor))
                {
                    cursor += at;
                }
                let found = find(&body, &old, cursor);
                let Some((at, exact)) = found else {
                    return Err((file, hunk_text.trim_end().to_owned()));
                };
                if !exact {
                    loose += 1;
                }
                body.splice(at..at + old.len(), new.iter().cloned());
                cursor = at + new.len();
            }
            let mut text = body.join("\n");
            if ends_with_newline && !text.is_empty() {
                text.push('\n');
            }
            let destination = match &moved_to {
                Some(to) => {
                    let path = safe_path(checkout, to).map_err(|e| (to.clone(), e))?;
                    let _ = std::fs::remove_file(&target);
                    if let Some(parent) = path.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    path
                }
                None => target,
            };
            std::fs::write(&destination, text).map_err(|e| (file, format!("cannot write: {e}")))?;
        }
    }
    Ok(loose)
}

fn push_line(line: &str, old: &mut Vec<String>, new: &mut Vec<String>) {
    if let Some(rest) = line.strip_prefix('-') {
        old.push(rest.to_owned());
    } else if let Some(rest) = line.strip_prefix('+') {
        new.push(rest.to_owned());
    } else {
        let rest = line.strip_prefix(' ').unwrap_or(line);
        old.push(rest.to_owned());
        new.push(rest.to_owned());
    }
}

/// Where `needle` occurs in `body` at or after `from` (else anywhere): exactly, or with
/// whitespace at line ends, then around, ignored. Returns the position and whether it was exact.
fn find(body: &[String], needle: &[String], from: usize) -> Option<(usize, bool)> {
    if needle.is_empty() {
        return Some((from.min(body.len()), true));
    }
    let matches = |at: usize, normal: &dyn Fn(&str) -> String| {
        needle
            .iter()
            .enumerate()
            .all(|(i, line)| normal(&body[at + i]) == normal(line))
    };
    let last = body.len().checked_sub(needle.len())?;
    let exact = |s: &str| s.to_owned();
    let end_trimmed = |s: &str| s.trim_end().to_owned();
    let trimmed = |s: &str| s.trim().to_owned();
    let normals: [&dyn Fn(&str) -> String; 3] = [&exact, &end_trimmed, &trimmed];
    for (n, normal) in normals.iter().enumerate() {
        let starts = (from.min(last + 1)..=last).chain(0..from.min(last + 1));
        for at in starts {
            if matches(at, *normal) {
                return Some((at, n == 0));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(path: &str, change: EditChange) -> AgentEdit {
        AgentEdit {
            event: "00000000000000aa".into(),
            tool: "Edit".into(),
            path: path.into(),
            change,
        }
    }

    #[test]
    fn edits_writes_and_codex_patches_replay_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(
            root.join("src/calc.js"),
            "function total(a) {\n  return 0;\n}\nmodule.exports = total;\n",
        )
        .unwrap();
        std::fs::write(root.join("old.txt"), "gone\n").unwrap();
        let edits = [
            edit(
                "src/calc.js",
                EditChange::Replace {
                    old: "return 0;".into(),
                    new: "return a.reduce((s, x) => s + x, 0);".into(),
                    all: false,
                },
            ),
            edit("NOTES.md", EditChange::Write { content: "# notes\n".into() }),
            edit(
                "",
                EditChange::CodexPatch {
                    text: "*** Begin Patch\n*** Update File: src/calc.js\n@@ function total(a) {\n-  return a.reduce((s, x) => s + x, 0);\n+  return a.reduce((sum, x) => sum + x, 0);\n*** Add File: src/new.js\n+module.exports = 1;\n*** Delete File: old.txt\n*** End Patch".into(),
                },
            ),
        ];
        let done = replay(root, &edits);
        assert_eq!(done.rejected, []);
        assert_eq!((done.applied, done.loose), (3, 0));
        assert_eq!(
            std::fs::read_to_string(root.join("src/calc.js")).unwrap(),
            "function total(a) {\n  return a.reduce((sum, x) => sum + x, 0);\n}\nmodule.exports = total;\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("NOTES.md")).unwrap(),
            "# notes\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("src/new.js")).unwrap(),
            "module.exports = 1;\n"
        );
        assert!(!root.join("old.txt").exists());
    }

    #[test]
    fn unmatched_edits_and_escaping_paths_are_rejected_with_their_call() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.txt"), "one\n").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        let edits = [
            edit("a.txt", EditChange::Replace { old: "two".into(), new: "three".into(), all: false }),
            edit("../escape.txt", EditChange::Write { content: "x".into() }),
            edit("etc/passwd", EditChange::Write { content: "x".into() }),
            edit(
                "",
                EditChange::CodexPatch {
                    text: "*** Begin Patch\n*** Update File: a.txt\n@@\n-nothing like this\n+x\n*** End Patch".into(),
                },
            ),
        ];
        let done = replay(root, &edits);
        assert_eq!(done.applied, 0);
        let files: Vec<&str> = done.rejected.iter().map(|r| r.file.as_str()).collect();
        assert_eq!(files, ["a.txt", "../escape.txt", "etc/passwd", "a.txt"]);
        assert_eq!(done.rejected[0].hunk, "not found in the file:\ntwo");
        assert!(done.rejected[1].hunk.starts_with("refused:"));
        assert!(done.rejected[2].hunk.contains("symbolic link"));
        assert_eq!(done.rejected[3].hunk, "@@\n-nothing like this\n+x");
        assert_eq!(done.rejected[3].event.as_deref(), Some("00000000000000aa"));
        assert!(!dir.path().parent().unwrap().join("escape.txt").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("a.txt")).unwrap(),
            "one\n"
        );
    }

    #[test]
    fn codex_hunks_match_loosely_when_whitespace_differs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.py"), "def f():\n    return 1   \n").unwrap();
        let patch = "*** Begin Patch\n*** Update File: f.py\n@@ def f():\n-    return 1\n+    return 2\n*** End Patch";
        let done = replay(
            dir.path(),
            &[edit("", EditChange::CodexPatch { text: patch.into() })],
        );
        assert_eq!((done.applied, done.loose), (1, 1));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("f.py")).unwrap(),
            "def f():\n    return 2\n"
        );
    }
}
