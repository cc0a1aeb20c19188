//! The repository, asked through the real `git`: where the working tree is, its remote, branch
//! and HEAD, the developer's configured name, file contents at the start commit, and the final
//! patch.
//!
//! Every call sets the options that would change git's output for a program (prefixes, colour,
//! external diff drivers) and takes no optional locks, so a recording never gets in the way of
//! the developer's own git commands.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{} is not inside a git working tree: run `git init` there, or start in a repository", .0.display())]
    NotARepository(PathBuf),
    #[error("cannot run git: {0} (is git installed and on PATH?)")]
    Missing(std::io::Error),
    #[error("`git {command}` failed: {stderr}")]
    Failed { command: String, stderr: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A git working tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    /// The top directory of the working tree (canonical).
    pub root: PathBuf,
}

impl Repo {
    /// The working tree containing `dir`.
    pub fn discover(dir: &Path) -> Result<Self, GitError> {
        let output = git_command(dir)
            .args(["rev-parse", "--show-toplevel"])
            .output()
            .map_err(GitError::Missing)?;
        if !output.status.success() {
            return Err(GitError::NotARepository(dir.to_path_buf()));
        }
        let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let root = std::fs::canonicalize(&text).unwrap_or_else(|_| PathBuf::from(text));
        Ok(Self { root })
    }

    fn command(&self) -> Command {
        git_command(&self.root)
    }

    /// Runs git and returns its stdout, or the failure with git's message.
    fn run<I, S>(&self, args: I) -> Result<Vec<u8>, GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let output = self
            .command()
            .args(&args)
            .output()
            .map_err(GitError::Missing)?;
        if output.status.success() {
            Ok(output.stdout)
        } else {
            Err(GitError::Failed {
                command: args
                    .iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    fn text(&self, args: &[&str]) -> Option<String> {
        let out = self.run(args).ok()?;
        let text = String::from_utf8_lossy(&out).trim().to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// HEAD's commit id, or `None` in a repository with no commit yet.
    pub fn head(&self) -> Option<String> {
        self.text(&["rev-parse", "--verify", "-q", "HEAD^{commit}"])
    }

    /// The checked-out branch (`None` when HEAD is detached).
    pub fn branch(&self) -> Option<String> {
        self.text(&["symbolic-ref", "--short", "-q", "HEAD"])
    }

    /// The `origin` remote's URL, else the first remote's.
    pub fn remote_url(&self) -> Option<String> {
        self.config("remote.origin.url").or_else(|| {
            let remotes = self.text(&["remote"])?;
            let first = remotes.lines().next()?.trim().to_owned();
            self.config(&format!("remote.{first}.url"))
        })
    }

    /// A git config value (user.name, user.email, …).
    pub fn config(&self, key: &str) -> Option<String> {
        self.text(&["config", "--get", key])
    }

    /// Files git sees in the working tree: tracked ones and untracked ones that are not ignored.
    pub fn file_count(&self) -> Result<u64, GitError> {
        let out = self.run([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])?;
        Ok(out.split(|b| *b == 0).filter(|p| !p.is_empty()).count() as u64)
    }

    /// Paths (relative to the root) that differ from HEAD or are untracked and not ignored.
    pub fn changed_files(&self) -> Result<Vec<String>, GitError> {
        let out = self.run(["status", "--porcelain=v1", "-z", "--untracked-files=all"])?;
        let mut paths = Vec::new();
        let mut fields = out.split(|b| *b == 0).filter(|f| !f.is_empty());
        while let Some(field) = fields.next() {
            if field.len() < 4 {
                continue;
            }
            let status = &field[..2];
            paths.push(String::from_utf8_lossy(&field[3..]).into_owned());
            // A rename or copy is followed by its original path.
            if (status[0] == b'R' || status[0] == b'C')
                && let Some(original) = fields.next()
            {
                paths.push(String::from_utf8_lossy(original).into_owned());
            }
        }
        Ok(paths)
    }

    /// The content of `path` at `commit`, or `None` when it did not exist there.
    pub fn file_at(&self, commit: &str, path: &str) -> Option<Vec<u8>> {
        let output = self
            .command()
            .args(["cat-file", "blob", &format!("{commit}:{path}")])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output.status.success().then_some(output.stdout)
    }

    /// Whether git would ignore `path` (relative to the root).
    pub fn is_ignored(&self, path: &str) -> bool {
        self.command()
            .args(["check-ignore", "-q", "--no-index", "--", path])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The final patch: every change from `start` (a commit; `None` for a repository that had
    /// no commit) to the working tree as it is now, new files that are not ignored included,
    /// as a binary-safe git diff that `git apply` applies to `start`.
    ///
    /// The working tree is staged into a copy of the index (never the real one), so the
    /// developer's staging area is untouched and unchanged files are not read again.
    pub fn final_patch(&self, start: Option<&str>, scratch: &Path) -> Result<String, GitError> {
        let index = scratch.join(format!("final-patch.index.{}", std::process::id()));
        let real_index = self.text(&["rev-parse", "--git-path", "index"]);
        let _ = std::fs::remove_file(&index);
        if let Some(real) = real_index {
            let real = self.root.join(real);
            if real.is_file() {
                std::fs::copy(&real, &index)?;
            }
        }
        let base = match start {
            Some(commit) => commit.to_owned(),
            None => self.empty_tree()?,
        };
        let result = (|| {
            let staged = self
                .command()
                .env("GIT_INDEX_FILE", &index)
                .args(["add", "-A", "--", "."])
                .stdout(Stdio::null())
                .output()
                .map_err(GitError::Missing)?;
            if !staged.status.success() {
                return Err(GitError::Failed {
                    command: "add -A (into a scratch index)".into(),
                    stderr: String::from_utf8_lossy(&staged.stderr).trim().to_owned(),
                });
            }
            let diff = self
                .command()
                .env("GIT_INDEX_FILE", &index)
                .args([
                    "diff",
                    "--cached",
                    "--binary",
                    "--full-index",
                    "--no-renames",
                    "--no-ext-diff",
                    "--no-textconv",
                    "--ignore-submodules",
                    &base,
                    "--",
                ])
                .output()
                .map_err(GitError::Missing)?;
            if !diff.status.success() {
                return Err(GitError::Failed {
                    command: format!("diff --cached {base}"),
                    stderr: String::from_utf8_lossy(&diff.stderr).trim().to_owned(),
                });
            }
            Ok(String::from_utf8_lossy(&diff.stdout).into_owned())
        })();
        let _ = std::fs::remove_file(&index);
        result
    }

    /// The id of the empty tree in this repository's hash format.
    fn empty_tree(&self) -> Result<String, GitError> {
        let mut child = self
            .command()
            .args(["hash-object", "-t", "tree", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(GitError::Missing)?;
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// git in `dir`, with output a program can rely on.
fn git_command(dir: &Path) -> Command {
    let mut command = Command::new("git");
    command
        .current_dir(dir)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .args([
            "-c",
            "color.ui=never",
            "-c",
            "diff.noprefix=false",
            "-c",
            "diff.mnemonicprefix=false",
            "-c",
            "diff.relative=false",
            "-c",
            "core.quotepath=on",
        ])
        .stdin(Stdio::null());
    command
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A repository with one commit (`a.txt`, `.gitignore` ignoring `*.log`).
    pub(crate) fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let status = Command::new("git")
                .current_dir(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "git {args:?}");
        };
        git(&["init", "-q", "-b", "main"]);
        git(&["config", "user.name", "Test Person"]);
        git(&["config", "user.email", "test@example.com"]);
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\nthree\n").unwrap();
        std::fs::write(dir.path().join(".gitignore"), "*.log\n").unwrap();
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "start"]);
        let repo = Repo::discover(dir.path()).unwrap();
        (dir, repo)
    }

    pub(crate) fn apply_check(repo: &Repo, patch: &str, at: &str) -> (bool, String) {
        // A fresh worktree of the start commit, the patch applied to it.
        let other = tempfile::tempdir().unwrap();
        let target = other.path().join("tree");
        let status = Command::new("git")
            .current_dir(&repo.root)
            .args(["worktree", "add", "-q", "--detach"])
            .arg(&target)
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success());
        let patch_file = other.path().join("p.diff");
        std::fs::write(&patch_file, patch).unwrap();
        let out = Command::new("git")
            .current_dir(&target)
            .args(["apply", "--binary"])
            .arg(&patch_file)
            .output()
            .unwrap();
        let ok = out.status.success();
        let listing = Command::new("git")
            .current_dir(&target)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        let _ = Command::new("git")
            .current_dir(&repo.root)
            .args(["worktree", "remove", "--force"])
            .arg(&target)
            .status();
        (
            ok,
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&listing.stdout),
        )
    }

    #[test]
    fn facts_of_a_repository() {
        let (dir, repo) = repo();
        assert_eq!(repo.root, std::fs::canonicalize(dir.path()).unwrap());
        assert_eq!(repo.branch().as_deref(), Some("main"));
        assert_eq!(repo.head().unwrap().len(), 40);
        assert_eq!(repo.config("user.name").as_deref(), Some("Test Person"));
        assert_eq!(repo.remote_url(), None);
        std::fs::write(dir.path().join("new.txt"), "x").unwrap();
        std::fs::write(dir.path().join("debug.log"), "x").unwrap();
        assert_eq!(repo.file_count().unwrap(), 3, "a.txt, .gitignore, new.txt");
        assert_eq!(repo.changed_files().unwrap(), ["new.txt"]);
        assert!(repo.is_ignored("debug.log"));
        assert!(!repo.is_ignored("new.txt"));
        let head = repo.head().unwrap();
        assert_eq!(repo.file_at(&head, "a.txt").unwrap(), b"one\ntwo\nthree\n");
        assert_eq!(repo.file_at(&head, "new.txt"), None);
        let outside = tempfile::tempdir().unwrap();
        let error = Repo::discover(outside.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is not inside a git working tree")
        );
    }

    #[test]
    fn the_final_patch_takes_new_files_and_applies_to_the_start_commit() {
        let (dir, repo) = repo();
        let start = repo.head().unwrap();
        std::fs::write(dir.path().join("a.txt"), "one\n2\nthree\n").unwrap();
        std::fs::write(dir.path().join("new.txt"), "brand new\n").unwrap();
        std::fs::write(dir.path().join("blob.bin"), [0u8, 1, 2, 255, 0]).unwrap();
        std::fs::write(dir.path().join("noise.log"), "ignored\n").unwrap();
        // A commit during the session is still part of the change since the start.
        std::fs::write(dir.path().join("committed.txt"), "c\n").unwrap();
        Command::new("git")
            .current_dir(dir.path())
            .args(["add", "committed.txt"])
            .status()
            .unwrap();
        Command::new("git")
            .current_dir(dir.path())
            .args(["commit", "-q", "-m", "mid"])
            .status()
            .unwrap();
        let index_before = std::fs::read(dir.path().join(".git/index")).unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let patch = repo.final_patch(Some(&start), scratch.path()).unwrap();
        assert!(patch.contains("+++ b/new.txt"), "{patch}");
        assert!(patch.contains("-two\n+2\n"), "{patch}");
        assert!(patch.contains("GIT binary patch"), "{patch}");
        assert!(patch.contains("committed.txt"));
        assert!(!patch.contains("noise.log"), "ignored files stay out");
        assert_eq!(
            std::fs::read(dir.path().join(".git/index")).unwrap(),
            index_before,
            "the developer's index is untouched"
        );
        let (ok, output) = apply_check(&repo, &patch, &start);
        assert!(ok, "{output}");
        assert_eq!(
            output.lines().count(),
            4,
            "a.txt, new.txt, blob.bin, committed.txt changed: {output}"
        );
    }

    #[test]
    fn a_repository_without_commits_diffs_against_the_empty_tree() {
        let dir = tempfile::tempdir().unwrap();
        Command::new("git")
            .current_dir(dir.path())
            .args(["init", "-q"])
            .status()
            .unwrap();
        std::fs::write(dir.path().join("first.txt"), "hello\n").unwrap();
        let repo = Repo::discover(dir.path()).unwrap();
        assert_eq!(repo.head(), None);
        let scratch = tempfile::tempdir().unwrap();
        let patch = repo.final_patch(None, scratch.path()).unwrap();
        assert!(patch.contains("new file mode"), "{patch}");
        assert!(patch.contains("+hello"), "{patch}");
    }
}
