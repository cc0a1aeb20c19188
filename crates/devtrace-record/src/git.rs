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
    /// developer's staging area is untouched and unchanged files are not read again. This
    /// stats every file of the tree; a recorder that watched the tree keeps a staged index
    /// up to date instead ([`Repo::stage_tree`], [`Repo::stage_paths`], [`Repo::staged_patch`]).
    pub fn final_patch(&self, start: Option<&str>, scratch: &Path) -> Result<String, GitError> {
        let index = scratch.join(format!("final-patch.index.{}", std::process::id()));
        let result = self
            .stage_tree(&index)
            .and_then(|()| self.staged_patch(start, &index));
        let _ = std::fs::remove_file(&index);
        result
    }

    /// Stages the whole working tree (tracked files as they are, new files git does not
    /// ignore, deletions) into `index`, an index file of devtrace's own that starts as a copy
    /// of the repository's (for its stat cache: unchanged files are not read).
    pub fn stage_tree(&self, index: &Path) -> Result<(), GitError> {
        let _ = std::fs::remove_file(index);
        if let Some(real) = self.text(&["rev-parse", "--git-path", "index"]) {
            let real = self.root.join(real);
            if real.is_file() {
                std::fs::copy(&real, index)?;
            }
        }
        self.run_with_index(index, &["add", "-A", "--", "."], None)
            .map(drop)
            .map_err(|error| match error {
                GitError::Failed { stderr, .. } => GitError::Failed {
                    command: "add -A (into a scratch index)".into(),
                    stderr,
                },
                other => other,
            })
    }

    /// Brings `index` (staged by [`Repo::stage_tree`] earlier) up to date for `paths`
    /// (relative to the root: files or directories, changed, new, renamed or gone), as
    /// `git add -A` of the whole tree would, but reading only those paths: the tracked files
    /// under them and the new ones git does not ignore are staged, the vanished ones removed.
    /// Correct only if nothing outside `paths` changed since the index was staged, and the
    /// ignore rules did not change.
    pub fn stage_paths(&self, index: &Path, paths: &[String]) -> Result<(), GitError> {
        if paths.is_empty() {
            return Ok(());
        }
        // Which files those paths hold now: tracked ones (present or not) and new ones that
        // are not ignored. Paths matching nothing are no error here.
        let mut args = vec![
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
        ];
        args.extend(paths.iter().map(String::as_str));
        let listed = self.run_with_index(index, &args, None)?;
        let mut files: Vec<&[u8]> = listed
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .collect();
        files.sort_unstable();
        files.dedup();
        if files.is_empty() {
            return Ok(());
        }
        let mut input = Vec::new();
        for file in files {
            input.extend_from_slice(file);
            input.push(0);
        }
        // --add: new files; --remove: files gone from the working tree.
        self.run_with_index(
            index,
            &["update-index", "--add", "--remove", "-z", "--stdin"],
            Some(input),
        )
        .map(drop)
    }

    /// The diff from `start` (`None`: the empty tree) to what `index` holds.
    pub fn staged_patch(&self, start: Option<&str>, index: &Path) -> Result<String, GitError> {
        let base = match start {
            Some(commit) => commit.to_owned(),
            None => self.empty_tree()?,
        };
        let diff = self.run_with_index(
            index,
            &[
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
            ],
            None,
        )?;
        Ok(String::from_utf8_lossy(&diff).into_owned())
    }

    /// What decides which files git ignores besides the `.gitignore` files in the tree (the
    /// repository's `info/exclude`, `core.excludesFile` or the default global file), as one
    /// comparable value: a staged index is only kept up to date by paths while it holds.
    pub fn exclude_fingerprint(&self) -> String {
        let mut files = Vec::new();
        if let Some(exclude) = self.text(&["rev-parse", "--git-path", "info/exclude"]) {
            files.push(self.root.join(exclude));
        }
        match self.config("core.excludesFile") {
            Some(path) => files.push(expand_home(&path)),
            None => {
                let config = std::env::var_os("XDG_CONFIG_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")));
                if let Some(config) = config {
                    files.push(config.join("git/ignore"));
                }
            }
        }
        let mut fingerprint = String::new();
        for file in files {
            let content = std::fs::read(&file).unwrap_or_default();
            fingerprint.push_str(&format!(
                "{}:{}\n",
                file.display(),
                blake3::hash(&content).to_hex()
            ));
        }
        fingerprint
    }

    /// Runs git with `GIT_INDEX_FILE=index` and literal pathspecs, `input` on its stdin.
    fn run_with_index(
        &self,
        index: &Path,
        args: &[&str],
        input: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, GitError> {
        use std::io::Write as _;
        let mut command = self.command();
        command
            .env("GIT_INDEX_FILE", index)
            .env("GIT_LITERAL_PATHSPECS", "1")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if input.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command.spawn().map_err(GitError::Missing)?;
        if let Some(bytes) = input
            && let Some(mut stdin) = child.stdin.take()
        {
            // A writer thread: git may fill its stdout before reading all of stdin.
            let writer = std::thread::spawn(move || stdin.write_all(&bytes));
            let output = child.wait_with_output()?;
            let _ = writer.join();
            return checked(args, output);
        }
        let output = child.wait_with_output()?;
        checked(args, output)
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

fn checked(args: &[&str], output: std::process::Output) -> Result<Vec<u8>, GitError> {
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(GitError::Failed {
            command: args
                .iter()
                .take_while(|a| **a != "--")
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// `~/x` as git reads it in a configuration value.
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
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

    /// Every kind of change: modified, new, new in a new directory, deleted, renamed, a
    /// directory renamed and one removed, ignored files, an empty new directory, a path that
    /// came and went, and a change made before the index was staged.
    #[test]
    fn staging_only_the_changed_paths_gives_the_whole_trees_patch() {
        let (dir, repo) = repo();
        let root = dir.path();
        let write = |path: &str, text: &str| {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        };
        write("lib/one.py", "one\n");
        write("lib/two.py", "two\n");
        write("old/x.txt", "x\n");
        write("gone/y.txt", "y\n");
        write("b.txt", "b\n");
        let git = |args: &[&str]| {
            assert!(
                Command::new("git")
                    .current_dir(root)
                    .args(args)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success()
            );
        };
        git(&["add", "."]);
        git(&["commit", "-q", "-m", "more"]);
        let start = repo.head().unwrap();
        write("before.txt", "changed before the recording\n");
        let scratch = tempfile::tempdir().unwrap();
        let index = scratch.path().join("tree.index");
        repo.stage_tree(&index).unwrap();

        write("a.txt", "one\n2\nthree\n");
        write("new.txt", "new\n");
        write("fresh/deep/n.py", "n\n");
        std::fs::remove_file(root.join("b.txt")).unwrap();
        std::fs::rename(root.join("lib/one.py"), root.join("lib/uno.py")).unwrap();
        std::fs::rename(root.join("old"), root.join("new-dir")).unwrap();
        std::fs::remove_dir_all(root.join("gone")).unwrap();
        write("trace.log", "ignored\n");
        write("fresh/also.log", "ignored\n");
        std::fs::create_dir(root.join("empty")).unwrap();
        write("tmp.txt", "came and went\n");
        std::fs::remove_file(root.join("tmp.txt")).unwrap();
        let paths: Vec<String> = [
            "a.txt",
            "new.txt",
            "fresh",
            "fresh/deep",
            "fresh/deep/n.py",
            "b.txt",
            "lib/one.py",
            "lib/uno.py",
            "old",
            "new-dir",
            "gone",
            "trace.log",
            "fresh/also.log",
            "empty",
            "tmp.txt",
        ]
        .map(String::from)
        .to_vec();
        repo.stage_paths(&index, &paths).unwrap();
        let incremental = repo.staged_patch(Some(&start), &index).unwrap();
        let whole = repo.final_patch(Some(&start), scratch.path()).unwrap();
        assert_eq!(incremental, whole);
        for expected in [
            "b/before.txt",
            "b/a.txt",
            "b/new.txt",
            "b/fresh/deep/n.py",
            "a/b.txt",
            "b/lib/uno.py",
            "a/lib/one.py",
            "b/new-dir/x.txt",
            "a/old/x.txt",
            "a/gone/y.txt",
        ] {
            assert!(incremental.contains(expected), "{expected}: {incremental}");
        }
        assert!(!incremental.contains(".log"), "{incremental}");
        assert!(!incremental.contains("tmp.txt"), "{incremental}");
        let (ok, output) = apply_check(&repo, &incremental, &start);
        assert!(ok, "{output}");
        // Nothing to stage is no error.
        repo.stage_paths(&index, &[]).unwrap();
        repo.stage_paths(&index, &["nowhere/at/all".to_owned()])
            .unwrap();
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
