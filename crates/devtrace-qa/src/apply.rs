//! Applying a unified diff to a checkout by a fallback chain: `git apply`, then
//! `git apply --3way` (a merge against the blobs the patch names), then `patch --fuzz=3`
//! (context matched loosely). The first that works is recorded; a patch whose changes are all
//! in the checkout already is recognised as applied (a reverse apply succeeds where a forward
//! one does not). When nothing works the checkout is restored and the hunks `patch` rejected
//! are returned, as text a person can read.
//!
//! Several patches applied one after another (a session's edit events) each go through the
//! chain; after each one the checkout is committed locally, so a failed attempt is undone
//! with `git reset --hard` without losing the pieces before it.

use crate::repo::{git, said};
use crate::result::{ApplyMethod, RejectedHunk};
use std::path::Path;
use std::process::{Command, Stdio};

/// Fuzz `patch` may use: context lines it may ignore at each end of a hunk.
pub const FUZZ: u32 = 3;

/// How a patch applied, and how sure that is.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub method: ApplyMethod,
    /// 1.0 exact; 0.9 merged or offset; 0.6 fuzzy.
    pub confidence: f64,
}

/// The patch did not apply; the checkout is as it was.
#[derive(Clone, Debug, PartialEq)]
pub struct NotApplied {
    pub rejected: Vec<RejectedHunk>,
    /// What the last method said (for the job's error).
    pub message: String,
}

/// The `-p` level of a diff: 1 when its paths carry `a/` and `b/`, else 0.
fn strip_level(patch: &str) -> u32 {
    let mut any = false;
    for line in patch.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            any = true;
            let path = path.split('\t').next().unwrap_or("").trim();
            if path != "/dev/null" && !path.starts_with("b/") {
                return 0;
            }
        }
    }
    u32::from(any || patch.starts_with("diff --git "))
}

/// Commits the checkout's state, so a later failed attempt can be undone without losing it.
pub fn checkpoint(checkout: &Path, message: &str) -> Result<(), String> {
    for args in [
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=devtrace qa",
            "-c",
            "user.email=qa@devtrace.invalid",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "--quiet",
            "--allow-empty",
            "--no-verify",
            "-m",
            message,
        ][..],
    ] {
        let output = git(Some(checkout), args)?;
        if !output.status.success() {
            return Err(format!(
                "'git {}' failed: {}",
                args.join(" "),
                said(&output)
            ));
        }
    }
    Ok(())
}

/// Undoes everything since the last checkpoint.
pub fn restore(checkout: &Path) {
    let _ = git(Some(checkout), &["reset", "--hard", "--quiet"]);
    let _ = git(Some(checkout), &["clean", "-fdq"]);
}

/// Applies `patch` (a unified diff) to `checkout` by the fallback chain. `scratch` is a
/// directory outside the checkout for temporary files; `event` names the session event the
/// patch came from, for rejected hunks.
pub fn apply(
    checkout: &Path,
    scratch: &Path,
    patch: &str,
    event: Option<&str>,
) -> Result<Applied, NotApplied> {
    let file = scratch.join("piece.patch");
    let mut text = patch.to_owned();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    if let Err(e) = std::fs::write(&file, &text) {
        return Err(NotApplied {
            rejected: Vec::new(),
            message: format!("cannot write {}: {e}", file.display()),
        });
    }
    let file_text = file.to_string_lossy().into_owned();
    let level = format!("-p{}", strip_level(&text));
    let git_apply = |extra: &[&str]| -> Result<(), String> {
        let mut args = vec!["apply", "--whitespace=nowarn", level.as_str()];
        args.extend_from_slice(extra);
        args.push(&file_text);
        let output = git(Some(checkout), &args)?;
        if output.status.success() {
            Ok(())
        } else {
            Err(said(&output))
        }
    };
    let forward = git_apply(&["--check"]);
    if forward.is_err() && git_apply(&["--check", "--reverse"]).is_ok() {
        return Ok(Applied {
            method: ApplyMethod::AlreadyApplied,
            confidence: 1.0,
        });
    }
    if forward.is_ok() && git_apply(&[]).is_ok() {
        return Ok(Applied {
            method: ApplyMethod::GitApply,
            confidence: 1.0,
        });
    }
    restore(checkout);
    let forward_said = forward.err().unwrap_or_default();
    let three_way_said = match git_apply(&["--3way"]) {
        Ok(()) if !has_conflicts(checkout) => {
            return Ok(Applied {
                method: ApplyMethod::GitApply3way,
                confidence: 0.9,
            });
        }
        Ok(()) => "it left conflicts".to_owned(),
        Err(said) => said,
    };
    let message = format!("git apply: {forward_said}; git apply --3way: {three_way_said}");
    restore(checkout);
    let rejects = scratch.join("piece.rej");
    let _ = std::fs::remove_file(&rejects);
    let output = Command::new("patch")
        .current_dir(checkout)
        .args([
            level.as_str(),
            &format!("--fuzz={FUZZ}"),
            "--forward",
            "--batch",
            "--no-backup-if-mismatch",
            "--reject-file",
        ])
        .arg(&rejects)
        .arg("-i")
        .arg(&file)
        .stdin(Stdio::null())
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let said_text = String::from_utf8_lossy(&output.stdout);
            let confidence = if said_text.contains("with fuzz") {
                0.6
            } else if said_text.contains(" offset ") {
                0.9
            } else {
                1.0
            };
            Ok(Applied {
                method: ApplyMethod::PatchFuzz,
                confidence,
            })
        }
        Ok(output) => {
            let said_text = String::from_utf8_lossy(&output.stdout).into_owned();
            restore(checkout);
            let mut rejected = std::fs::read_to_string(&rejects)
                .map(|text| parse_rejects(&text, event))
                .unwrap_or_default();
            if rejected.is_empty() {
                // Nothing to show hunk by hunk (a malformed patch, a missing file): say what
                // the tools said.
                rejected.push(RejectedHunk {
                    file: crate::repo::files_in_diff(&text)
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "(the patch)".to_owned()),
                    hunk: format!("{}\n{}", message.trim(), said_text.trim())
                        .trim()
                        .to_owned(),
                    event: event.map(str::to_owned),
                });
            }
            Err(NotApplied {
                rejected,
                message: if message.is_empty() {
                    said_text.trim().to_owned()
                } else {
                    message
                },
            })
        }
        Err(e) => {
            restore(checkout);
            Err(NotApplied {
                rejected: Vec::new(),
                message: format!("{message}; cannot run patch ({e}): install the patch package"),
            })
        }
    }
}

fn has_conflicts(checkout: &Path) -> bool {
    git(Some(checkout), &["diff", "--name-only", "--diff-filter=U"])
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(true)
}

/// The hunks of a reject file, each with its file.
fn parse_rejects(text: &str, event: Option<&str>) -> Vec<RejectedHunk> {
    let mut hunks = Vec::new();
    let mut file = String::new();
    let mut current: Option<String> = None;
    let flush = |current: &mut Option<String>, hunks: &mut Vec<RejectedHunk>, file: &str| {
        if let Some(hunk) = current.take() {
            hunks.push(RejectedHunk {
                file: file.to_owned(),
                hunk: hunk.trim_end().to_owned(),
                event: event.map(str::to_owned),
            });
        }
    };
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("+++ ") {
            flush(&mut current, &mut hunks, &file);
            let path = path.split('\t').next().unwrap_or("").trim();
            file = path.strip_prefix("b/").unwrap_or(path).to_owned();
        } else if line.starts_with("--- ") && current.is_none() {
            continue;
        } else if line.starts_with("@@") {
            flush(&mut current, &mut hunks, &file);
            current = Some(format!("{line}\n"));
        } else if let Some(hunk) = current.as_mut() {
            hunk.push_str(line);
            hunk.push('\n');
        }
    }
    flush(&mut current, &mut hunks, &file);
    hunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_levels_follow_the_paths() {
        assert_eq!(
            strip_level("diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n"),
            1
        );
        assert_eq!(strip_level("--- x.py\n+++ x.py\n@@ -1 +1 @@\n-a\n+b\n"), 0);
        assert_eq!(
            strip_level("--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+b\n"),
            1
        );
    }

    #[test]
    fn reject_files_split_into_hunks_by_file() {
        let text =
            "--- calc.js\n+++ calc.js\n@@ -1,3 +1,3 @@\n a\n-b\n+c\n@@ -10,2 +10,2 @@\n-x\n+y\n";
        let hunks = parse_rejects(text, Some("00ff"));
        assert_eq!(hunks.len(), 2);
        assert_eq!(hunks[0].file, "calc.js");
        assert_eq!(hunks[0].hunk, "@@ -1,3 +1,3 @@\n a\n-b\n+c");
        assert_eq!(hunks[1].hunk, "@@ -10,2 +10,2 @@\n-x\n+y");
        assert_eq!(hunks[1].event.as_deref(), Some("00ff"));
    }
}
