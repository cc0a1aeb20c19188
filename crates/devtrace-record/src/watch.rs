//! The working tree's file watcher: inotify (through `notify`) on every directory git does not
//! ignore, one watch per directory, so ignored trees (`target/`, `node_modules/`, `.venv/`)
//! cost nothing and wake nothing. Idle, it is a thread blocked in `read(2)`.
//!
//! Paths reported are checked against the `.gitignore` files (nested ones, `.git/info/exclude`
//! and the global excludes file, as git reads them), `.git/` itself, editors' swap and backup
//! files, and the excluded directories (devtrace's own data directory when it is inside the
//! tree). New directories are watched as they appear; a changed `.gitignore` is read again.

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What the watcher reports (from its own thread).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    /// Something under this path changed (a file written, created, removed or renamed).
    Changed(PathBuf),
    /// A directory appeared.
    DirectoryCreated(PathBuf),
    /// The watcher lost events (its queue overflowed): the tree should be checked again.
    Overflow,
    Error(String),
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {message}")]
    Watch { path: String, message: String },
}

/// Editors' temporary files: never edits of the project.
fn is_editor_temporary(name: &str) -> bool {
    name == "4913"
        || name.ends_with('~')
        || name.starts_with(".#")
        || (name.starts_with('#') && name.ends_with('#'))
        || [
            ".swp",
            ".swo",
            ".swx",
            ".swn",
            ".kate-swp",
            "___jb_tmp___",
            "___jb_old___",
        ]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// The ignore rules of one working tree, as git applies them.
#[derive(Debug, Default)]
struct IgnoreRules {
    /// Directory → the rules of its `.gitignore`.
    by_directory: HashMap<PathBuf, Gitignore>,
    /// `.git/info/exclude` and the global excludes file.
    repository: Option<Gitignore>,
    global: Option<Gitignore>,
}

impl IgnoreRules {
    fn load(root: &Path) -> Self {
        let mut builder = GitignoreBuilder::new(root);
        builder.add(root.join(".git/info/exclude"));
        let repository = builder.build().ok();
        let (global, _) = Gitignore::global();
        Self {
            by_directory: HashMap::new(),
            repository,
            global: Some(global),
        }
    }

    fn read_gitignore(&mut self, file: &Path) {
        let Some(directory) = file.parent() else {
            return;
        };
        if file.is_file() {
            let mut builder = GitignoreBuilder::new(directory);
            builder.add(file);
            if let Ok(rules) = builder.build() {
                self.by_directory.insert(directory.to_path_buf(), rules);
                return;
            }
        }
        self.by_directory.remove(directory);
    }

    /// Whether git ignores `path` (deeper `.gitignore` files first, as git decides).
    fn is_ignored(&self, root: &Path, path: &Path, is_dir: bool) -> bool {
        let mut directory = path.parent();
        while let Some(dir) = directory {
            if let Some(rules) = self.by_directory.get(dir) {
                let matched = rules.matched_path_or_any_parents(path, is_dir);
                if matched.is_ignore() {
                    return true;
                }
                if matched.is_whitelist() {
                    return false;
                }
            }
            if dir == root {
                break;
            }
            directory = dir.parent();
        }
        for rules in [&self.repository, &self.global].into_iter().flatten() {
            let matched = rules.matched_path_or_any_parents(path, is_dir);
            if matched.is_ignore() {
                return true;
            }
            if matched.is_whitelist() {
                return false;
            }
        }
        false
    }
}

/// Watches a working tree.
pub struct TreeWatcher {
    root: PathBuf,
    watcher: notify::RecommendedWatcher,
    directories: HashSet<PathBuf>,
    rules: IgnoreRules,
    exclude: Vec<PathBuf>,
    /// Set when a watch could not be added (the inotify limit): what the user should know.
    pub warnings: Vec<String>,
}

impl TreeWatcher {
    /// Starts watching `root` (every directory git does not ignore); `report` is called from
    /// the watcher's thread. Paths under `exclude` are never reported.
    pub fn start(
        root: &Path,
        exclude: Vec<PathBuf>,
        report: impl Fn(Raw) + Send + 'static,
    ) -> Result<Self, WatchError> {
        let handler = move |result: notify::Result<notify::Event>| match result {
            Ok(event) => {
                if event.need_rescan() {
                    report(Raw::Overflow);
                    return;
                }
                match event.kind {
                    EventKind::Access(_)
                    | EventKind::Modify(notify::event::ModifyKind::Metadata(_)) => {}
                    EventKind::Create(notify::event::CreateKind::Folder) => {
                        for path in event.paths {
                            report(Raw::DirectoryCreated(path));
                        }
                    }
                    _ => {
                        for path in event.paths {
                            report(Raw::Changed(path));
                        }
                    }
                }
            }
            Err(error) => report(Raw::Error(error.to_string())),
        };
        let watcher = notify::recommended_watcher(handler).map_err(|e| WatchError::Watch {
            path: root.display().to_string(),
            message: e.to_string(),
        })?;
        let mut tree = Self {
            root: root.to_path_buf(),
            watcher,
            directories: HashSet::new(),
            rules: IgnoreRules::load(root),
            exclude,
            warnings: Vec::new(),
        };
        tree.add_directory(root);
        if tree.directories.is_empty() {
            return Err(WatchError::Watch {
                path: root.display().to_string(),
                message: tree.warnings.join("; "),
            });
        }
        Ok(tree)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How many directories are watched.
    pub fn watched(&self) -> usize {
        self.directories.len()
    }

    /// Watches `directory` and every directory below it that git does not ignore; returns the
    /// files found in it (they may have been written before the watch was in place).
    pub fn add_directory(&mut self, directory: &Path) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if self.is_excluded(directory) || (directory != self.root && self.ignored(directory, true))
        {
            return files;
        }
        let walk = ignore::WalkBuilder::new(directory)
            .hidden(false)
            .parents(true)
            .git_ignore(true)
            .git_exclude(true)
            .git_global(true)
            .require_git(false)
            .follow_links(false)
            .filter_entry(|entry| entry.file_name() != ".git")
            .build();
        for entry in walk.flatten() {
            let path = entry.path();
            let Some(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if self.is_excluded(path) || self.directories.contains(path) {
                    continue;
                }
                match self.watcher.watch(path, RecursiveMode::NonRecursive) {
                    Ok(()) => {
                        self.directories.insert(path.to_path_buf());
                    }
                    Err(error) => {
                        if self.warnings.len() < 5 {
                            self.warnings.push(watch_failure(path, &error));
                        }
                    }
                }
            } else if kind.is_file() {
                if entry.file_name() == ".gitignore" {
                    self.rules.read_gitignore(path);
                }
                if directory != self.root {
                    files.push(path.to_path_buf());
                }
            }
        }
        files
    }

    fn is_excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|e| path.starts_with(e))
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        self.rules.is_ignored(&self.root, path, is_dir)
    }

    /// The path relative to the root, if a change there is an edit of the project: inside the
    /// tree, not in `.git`, not ignored, not an editor's temporary file, not excluded.
    pub fn relevant(&mut self, path: &Path) -> Option<String> {
        let relative = path.strip_prefix(&self.root).ok()?;
        if relative.as_os_str().is_empty() || self.is_excluded(path) {
            return None;
        }
        if relative.components().next()?.as_os_str() == ".git" {
            return None;
        }
        let name = path.file_name()?.to_string_lossy();
        if name == ".gitignore" {
            self.rules.read_gitignore(path);
        }
        if is_editor_temporary(&name) {
            return None;
        }
        let is_dir = path.is_dir();
        if is_dir || self.ignored(path, false) {
            return None;
        }
        Some(relative.to_string_lossy().into_owned())
    }
}

fn watch_failure(path: &Path, error: &notify::Error) -> String {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    match error.kind {
        notify::ErrorKind::MaxFilesWatch => format!(
            "cannot watch {}: the inotify watch limit is reached (fs.inotify.max_user_watches = {limit}); \
             saves there are not recorded (the final patch still has them). Raise it with: sudo sysctl fs.inotify.max_user_watches=524288",
            path.display()
        ),
        _ => format!("cannot watch {}: {error}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn saves_in_the_tree_are_reported_and_ignored_trees_are_not_watched() {
        let (dir, _repo) = crate::git::tests::repo();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join(".gitignore"), "*.log\ntarget/\n").unwrap();
        std::fs::create_dir_all(root.join("target/debug")).unwrap();
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        let (sender, receiver) = mpsc::channel();
        let mut watcher = TreeWatcher::start(&root, Vec::new(), move |raw| {
            let _ = sender.send(raw);
        })
        .unwrap();
        assert_eq!(
            watcher.watched(),
            3,
            "root, src, src/deep; not target or .git"
        );
        std::fs::write(root.join("src/deep/x.py"), "x = 1\n").unwrap();
        std::fs::write(root.join("app.log"), "noise\n").unwrap();
        std::fs::write(root.join("target/debug/out"), "noise\n").unwrap();
        std::fs::write(root.join(".x.py.swp"), "swap\n").unwrap();
        let mut seen = HashSet::new();
        while let Ok(raw) = receiver.recv_timeout(Duration::from_millis(300)) {
            if let Raw::Changed(path) = raw
                && let Some(relative) = watcher.relevant(&path)
            {
                seen.insert(relative);
            }
        }
        assert_eq!(seen, HashSet::from(["src/deep/x.py".to_owned()]));
        // A new directory is watched once reported, and its files found.
        std::fs::create_dir(root.join("pkg")).unwrap();
        std::fs::write(root.join("pkg/early.py"), "").unwrap();
        let mut created = None;
        while let Ok(raw) = receiver.recv_timeout(Duration::from_millis(300)) {
            if let Raw::DirectoryCreated(path) = raw {
                created = Some(path);
            }
        }
        let files = watcher.add_directory(&created.unwrap());
        assert_eq!(files, vec![root.join("pkg/early.py")]);
        assert_eq!(watcher.watched(), 4);
    }

    #[test]
    fn nested_gitignores_and_negations_decide_like_git() {
        let (dir, repo) = crate::git::tests::repo();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join(".gitignore"), "*.tmp\n").unwrap();
        std::fs::write(root.join("a/.gitignore"), "!keep.tmp\nbuild/\n").unwrap();
        let mut watcher = TreeWatcher::start(&root, Vec::new(), |_| {}).unwrap();
        for (path, expected) in [
            ("x.tmp", None),
            ("a/keep.tmp", Some("a/keep.tmp")),
            ("a/b/other.tmp", None),
            ("a/b/code.rs", Some("a/b/code.rs")),
            (".git/index", None),
            ("4913", None),
        ] {
            let full = root.join(path);
            assert_eq!(watcher.relevant(&full).as_deref(), expected, "{path}");
            assert_eq!(
                expected.is_none(),
                path.starts_with(".git") || repo.is_ignored(path) || path == "4913",
                "git agrees on {path}"
            );
        }
    }
}
