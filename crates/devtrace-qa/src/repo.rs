//! Repositories: a cache of bare mirrors (one per repository URL or path, fetched only when a
//! commit is missing) and throwaway checkouts made from them at a commit.
//!
//! Mirrors live under the cache directory (`DATA/qa/repos`), named by a hash of the
//! repository; a file lock per mirror keeps two workers from fetching it at once. Checkouts
//! are `git clone --shared` (objects borrowed from the mirror, nothing copied), detached at
//! the commit.

use crate::result::InfraClass;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A repository step that failed, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RepoError {
    pub class: InfraClass,
    pub message: String,
}

impl RepoError {
    fn new(class: InfraClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
        }
    }
}

/// Runs git with prompts off; the error names the command and what git said.
pub fn git(dir: Option<&Path>, args: &[&str]) -> Result<Output, String> {
    let mut command = Command::new("git");
    if let Some(dir) = dir {
        command.arg("-C").arg(dir);
    }
    command
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    let output = command
        .output()
        .map_err(|e| format!("cannot run git ({e}): install git"))?;
    Ok(output)
}

/// git's stderr (or stdout), trimmed, for an error message.
pub fn said(output: &Output) -> String {
    let text = if output.stderr.is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    let text = String::from_utf8_lossy(text);
    let text = text.trim();
    let mut lines: Vec<&str> = text.lines().rev().take(6).collect();
    lines.reverse();
    lines.join("\n")
}

fn git_ok(dir: Option<&Path>, args: &[&str]) -> Result<Output, String> {
    let output = git(dir, args)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "'git {}' failed: {}",
            args.join(" "),
            said(&output)
        ))
    }
}

/// The cache of mirrors.
#[derive(Clone, Debug)]
pub struct CloneCache {
    dir: PathBuf,
}

/// A mirror ready to check out from, with the commit resolved to its full id.
#[derive(Clone, Debug)]
pub struct Mirror {
    pub path: PathBuf,
    pub commit: String,
    /// The repository was cloned or fetched for this job (not served from the cache).
    pub fetched: bool,
}

impl CloneCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn mirror_path(&self, repository: &str) -> PathBuf {
        let hash = blake3::hash(repository.as_bytes()).to_hex();
        let tail: String = repository
            .trim_end_matches('/')
            .trim_end_matches(".git")
            .rsplit(['/', ':'])
            .next()
            .unwrap_or("repo")
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(40)
            .collect();
        self.dir.join(format!("{}-{}.git", tail, &hash[..16]))
    }

    /// A mirror of `repository` (a URL or an absolute path) holding `commit`: cloned on first
    /// use, fetched when the commit is not there yet.
    pub fn mirror(&self, repository: &str, commit: &str) -> Result<Mirror, RepoError> {
        if repository.trim().is_empty() {
            return Err(RepoError::new(
                InfraClass::CloneFailed,
                "the session's task names no repository (task.repository)",
            ));
        }
        let local = Path::new(repository);
        if !repository.contains("://") && !repository.contains('@') && local.is_relative() {
            return Err(RepoError::new(
                InfraClass::CloneFailed,
                format!(
                    "task.repository {repository:?} is a relative path: give a URL or an absolute path"
                ),
            ));
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            RepoError::new(
                InfraClass::RunnerError,
                format!("cannot create the clone cache {}: {e}", self.dir.display()),
            )
        })?;
        let path = self.mirror_path(repository);
        let lock_path = path.with_extension("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                RepoError::new(
                    InfraClass::RunnerError,
                    format!("cannot open {}: {e}", lock_path.display()),
                )
            })?;
        lock.lock().map_err(|e| {
            RepoError::new(
                InfraClass::RunnerError,
                format!("cannot lock {}: {e}", lock_path.display()),
            )
        })?;
        let mut fetched = false;
        if !path.join("HEAD").is_file() {
            let temp = path.with_extension(format!("partial-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&temp);
            let temp_text = temp.to_string_lossy().into_owned();
            git_ok(
                None,
                &["clone", "--mirror", "--quiet", repository, &temp_text],
            )
            .map_err(|e| {
                let _ = std::fs::remove_dir_all(&temp);
                RepoError::new(
                    InfraClass::CloneFailed,
                    format!("cannot clone {repository}: {e}"),
                )
            })?;
            std::fs::rename(&temp, &path).map_err(|e| {
                RepoError::new(
                    InfraClass::RunnerError,
                    format!("cannot move the clone into {}: {e}", path.display()),
                )
            })?;
            fetched = true;
        }
        let resolved = match resolve(&path, commit) {
            Some(full) => full,
            None if fetched => return Err(missing(repository, commit)),
            None => {
                git_ok(
                    Some(&path),
                    &["-c", "gc.auto=0", "fetch", "--quiet", "--prune", "origin"],
                )
                .map_err(|e| {
                    RepoError::new(
                        InfraClass::CloneFailed,
                        format!("cannot fetch {repository}: {e}"),
                    )
                })?;
                fetched = true;
                resolve(&path, commit).ok_or_else(|| missing(repository, commit))?
            }
        };
        drop(lock);
        Ok(Mirror {
            path,
            commit: resolved,
            fetched,
        })
    }

    /// A fresh checkout of `mirror` at its commit in `into` (which must not exist).
    pub fn checkout(&self, mirror: &Mirror, into: &Path) -> Result<(), RepoError> {
        let mirror_text = mirror.path.to_string_lossy().into_owned();
        let into_text = into.to_string_lossy().into_owned();
        git_ok(
            None,
            &[
                "clone",
                "--shared",
                "--no-checkout",
                "--quiet",
                &mirror_text,
                &into_text,
            ],
        )
        .and_then(|_| {
            git_ok(
                Some(into),
                &["checkout", "--quiet", "--detach", &mirror.commit],
            )
        })
        .map(|_| ())
        .map_err(|e| {
            RepoError::new(
                InfraClass::RunnerError,
                format!("cannot check out {}: {e}", mirror.commit),
            )
        })
    }
}

fn missing(repository: &str, commit: &str) -> RepoError {
    RepoError::new(
        InfraClass::CommitMissing,
        format!("{repository} has no commit {commit:?} (task.commit)"),
    )
}

/// The full id of `commit` in the repository at `path`.
fn resolve(path: &Path, commit: &str) -> Option<String> {
    if commit.is_empty() || commit.starts_with('-') {
        return None;
    }
    let spec = format!("{commit}^{{commit}}");
    let output = git(Some(path), &["rev-parse", "--verify", "--quiet", &spec]).ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The changes in a checkout against its `HEAD`, new files included, as a unified diff.
pub fn diff_against_head(checkout: &Path) -> Result<String, String> {
    git_ok(Some(checkout), &["add", "-A"])?;
    let output = git_ok(
        Some(checkout),
        &["diff", "--cached", "--binary", "--no-color", "HEAD"],
    )?;
    git_ok(Some(checkout), &["reset", "--quiet"])?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Files a unified diff changes (the `b/` side, or `a/` for deletions).
pub fn files_in_diff(diff: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    for line in diff.lines() {
        let path = if let Some(rest) = line.strip_prefix("+++ ") {
            rest
        } else if let Some(rest) = line.strip_prefix("--- ") {
            rest
        } else {
            continue;
        };
        let path = path.split('\t').next().unwrap_or("").trim();
        if path == "/dev/null" {
            continue;
        }
        let path = path
            .strip_prefix("a/")
            .or_else(|| path.strip_prefix("b/"))
            .unwrap_or(path)
            .to_owned();
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files
}
