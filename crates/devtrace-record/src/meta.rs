//! What is known when a recording starts: the session's id, the task, who is working (hashed
//! unless they chose to be identified), the environment, and the recorder's options. Written
//! once to `meta.json`; the document's header blocks come from it.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The `task` block of trace-1.0.0 (empty strings are left out of the document).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub description: String,
    /// The `origin` remote's URL (credentials in it are redacted), else the working tree's path.
    pub repository: String,
    pub branch: String,
    /// HEAD when the recording started; empty in a repository with no commit yet.
    pub commit: String,
    #[serde(default)]
    pub test_command: String,
    #[serde(default)]
    pub test_image: String,
}

/// The `developer` block: from git config, hashed unless `--identify`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Developer {
    pub name: String,
    pub email: String,
    pub os: String,
    pub ide: String,
}

impl Developer {
    /// The developer as recorded: with `identify`, git's `user.name` and `user.email` as they
    /// are (the e-mail still meets redaction on the way into the store); otherwise a stable
    /// pseudonym derived from the e-mail (or the name), so one person's sessions group together
    /// without naming them. The hash hides the address from a reader, not from someone who
    /// can guess it.
    pub fn from_git(name: &str, email: &str, identify: bool, os: &str, ide: &str) -> Self {
        let (name, email) = if identify {
            (name.to_owned(), email.to_owned())
        } else {
            let basis = if email.trim().is_empty() {
                name.trim().to_owned()
            } else {
                email.trim().to_lowercase()
            };
            if basis.is_empty() {
                (String::new(), String::new())
            } else {
                let digest = blake3::hash(format!("devtrace-developer:{basis}").as_bytes());
                (
                    format!("developer-{}", &digest.to_hex()[..12]),
                    String::new(),
                )
            }
        };
        Self {
            name,
            email,
            os: os.to_owned(),
            ide: ide.to_owned(),
        }
    }
}

/// The `environment` block.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub os: String,
    /// The editor named by `$VISUAL` or `$EDITOR` (its program name), when set.
    pub editor: String,
    /// devtrace's version.
    pub version: String,
    /// Files git knows in the working tree (tracked and untracked, not ignored) at the start.
    pub workspace_size: u64,
}

/// How the recorder behaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Seconds between reminders to add a note; 0 for none.
    pub ask_every_secs: u64,
    /// Whether the working tree's files are watched for saved changes.
    pub watch: bool,
    /// Quiet time before a burst of saves to one file becomes one edit, in milliseconds.
    pub coalesce_ms: u64,
    /// Largest file whose contents are diffed; larger ones are summarised.
    pub max_diff_file_bytes: u64,
    /// Where the session goes at the end: a devtrace server's URL, or the local store (`None`).
    #[serde(default)]
    pub server: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ask_every_secs: 0,
            watch: true,
            coalesce_ms: 300,
            server: None,
            max_diff_file_bytes: 1024 * 1024,
        }
    }
}

/// `meta.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionMeta {
    /// The session's UUID: the document's `trace_id`.
    pub id: String,
    /// When the recording started, in nanoseconds since the epoch.
    pub started: u64,
    /// The working tree's top directory (canonical).
    pub root: PathBuf,
    pub task: Task,
    pub developer: Developer,
    pub environment: Environment,
    pub options: Options,
    /// Whether `developer` names the person (`--identify`).
    pub identified: bool,
}

impl SessionMeta {
    pub fn read(path: &std::path::Path) -> std::io::Result<Self> {
        let bytes = std::fs::read(path)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    pub fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("metadata serialises");
        crate::layout::write_atomically(path, &bytes)
    }
}

/// `linux`, `macos` or `windows`: the values trace-1.0.0 accepts.
pub fn os_name() -> &'static str {
    match std::env::consts::OS {
        "macos" => "macos",
        "windows" => "windows",
        _ => "linux",
    }
}

/// The editor from `$VISUAL`/`$EDITOR` (program name), and its trace-1.0.0 `ide` value when it
/// is one the format names.
pub fn editor_from_env() -> (String, String) {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("EDITOR").ok())
        .unwrap_or_default();
    let program = editor
        .split_whitespace()
        .next()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        .unwrap_or_default();
    (program.clone(), ide_of(&program).to_owned())
}

/// trace-1.0.0's `developer.ide` for an editor program (empty when the format has no name
/// for it).
pub fn ide_of(program: &str) -> &'static str {
    match program {
        "nvim" | "vim" | "vi" | "gvim" | "neovim" => "vim",
        "code" | "codium" | "code-insiders" => "vscode",
        "emacs" | "emacsclient" => "emacs",
        "idea" | "idea.sh" | "pycharm" | "goland" | "clion" | "rustrover" | "webstorm" => {
            "intellij"
        }
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn developers_are_pseudonymous_unless_identified() {
        let hidden = Developer::from_git("Ada L", "Ada@Example.com", false, "linux", "vim");
        assert!(hidden.name.starts_with("developer-"), "{hidden:?}");
        assert_eq!(hidden.name.len(), "developer-".len() + 12);
        assert_eq!(hidden.email, "");
        let again = Developer::from_git("Someone", "ada@example.com ", false, "linux", "");
        assert_eq!(
            hidden.name, again.name,
            "the same address, the same pseudonym"
        );
        let shown = Developer::from_git("Ada L", "ada@example.com", true, "linux", "");
        assert_eq!(
            (shown.name.as_str(), shown.email.as_str()),
            ("Ada L", "ada@example.com")
        );
        let nobody = Developer::from_git("", "", false, "linux", "");
        assert_eq!(nobody.name, "");
    }

    #[test]
    fn editors_map_to_the_formats_ide_names() {
        assert_eq!(ide_of("nvim"), "vim");
        assert_eq!(ide_of("code"), "vscode");
        assert_eq!(ide_of("nano"), "");
    }
}
