//! Environment errors: failures that no code change will fix because the environment lacks
//! something — a command that is not installed, a missing module, a permission, a port already
//! taken, credentials that are not configured. Recognised in a failed action's error and
//! output; the thing missing (the command, the module, the port) is named when it can be
//! read, so the same problem is recognised across sessions.

use super::{evidence, short};
use crate::finding::{Finding, FindingKind};
use crate::fingerprint::fingerprint;
use crate::session::{Action, SessionView};
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Failures of one kind (and subject) for a finding: 1 (one is enough: a retry will not
    /// succeed).
    pub min_occurrences: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_occurrences: 1 }
    }
}

/// The kinds of environment error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    CommandNotFound,
    MissingModule,
    PermissionDenied,
    AddressInUse,
    MissingCredentials,
    MissingVariable,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommandNotFound => "command not found",
            Self::MissingModule => "missing module",
            Self::PermissionDenied => "permission denied",
            Self::AddressInUse => "address in use",
            Self::MissingCredentials => "missing credentials",
            Self::MissingVariable => "missing environment variable",
        }
    }

    fn advice(self) -> &'static str {
        match self {
            Self::CommandNotFound => {
                "Install it, or use a command that exists here (check with `command -v` first); retrying will not make it appear."
            }
            Self::MissingModule => {
                "Install the dependency or activate the environment that has it (virtualenv, node_modules, feature flags) before running again."
            }
            Self::PermissionDenied => {
                "Check the path and its permissions; running it again with the same rights fails the same way."
            }
            Self::AddressInUse => {
                "Something already listens on that port: stop it (or reuse it), or pick another port."
            }
            Self::MissingCredentials => {
                "Configure the credentials (environment variable, login, key file) before retrying; the environment does not have them."
            }
            Self::MissingVariable => {
                "Set the variable (export it, or put it in the .env file the tool reads) before running again; the code expects the environment to have it."
            }
        }
    }
}

/// The text after `marker`, up to a delimiter: what the message names.
fn after(text: &str, marker: &str) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let rest = text[start..].trim_start_matches([' ', '\'', '"', '`', ':']);
    let name: String = rest
        .chars()
        .take_while(|c| !matches!(c, '\'' | '"' | '`' | ' ' | '\n' | ')' | ',' | ';'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The word before `marker` (`bash: tree: command not found` → `tree`).
fn before(text: &str, marker: &str) -> Option<String> {
    let end = text.find(marker)?;
    let head = text[..end].trim_end_matches([':', ' ']);
    let word = head
        .rsplit([':', ' ', '\n'])
        .next()
        .unwrap_or("")
        .trim_matches(['\'', '"', '`']);
    (!word.is_empty()).then(|| word.to_owned())
}

/// Shells that print `NAME: [LINE: ]THING: not found` for a missing command (POSIX `sh`,
/// dash, ash, ksh) or `…: No such file or directory` for a missing executable.
const SHELLS: &[&str] = &["sh", "dash", "ash", "bash", "zsh", "ksh", "mksh", "busybox"];

/// `sh: 1: tsc: not found`, `/bin/sh: tsc: not found`, `bash: ./run.sh: No such file or
/// directory` → the thing the shell could not run.
fn shell_could_not_run(text: &str, tail: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.trim();
        let rest = line.strip_suffix(tail)?;
        let mut parts = rest.split(": ");
        let shell = parts.next()?.rsplit('/').next()?;
        if !SHELLS.contains(&shell) {
            return None;
        }
        let mut thing = parts.next()?;
        if thing.chars().all(|c| c.is_ascii_digit()) || thing.starts_with("line ") {
            thing = parts.next()?; // the line number dash and bash print
        }
        let thing = thing.trim_matches(['\'', '"', '`']);
        (!thing.is_empty() && parts.next().is_none()).then(|| thing.to_owned())
    })
}

/// The category of an environment failure and what it names, if the text shows one.
pub fn classify(text: &str) -> Option<(Category, String)> {
    let lower = text.to_ascii_lowercase();
    // A shell that could not find or run a command (sh/dash/ksh "not found", any shell's
    // "No such file or directory" for the program itself), and the other runtimes' ways of
    // saying the executable does not exist.
    if let Some(thing) = shell_could_not_run(text, ": not found")
        .or_else(|| shell_could_not_run(text, ": No such file or directory"))
    {
        return Some((Category::CommandNotFound, thing));
    }
    let fish = after(text, "fish: Unknown command:");
    let powershell = after(text, "The term")
        .filter(|_| lower.contains("is not recognized as the name of a cmdlet"));
    let go = after(text, "exec:").filter(|_| lower.contains("executable file not found"));
    // Node: `spawn tsc ENOENT`.
    let node = text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l
            .strip_prefix("Error: spawn ")
            .or_else(|| l.strip_prefix("spawn "))?;
        rest.strip_suffix(" ENOENT").map(str::to_owned)
    });
    if let Some(thing) = fish.or(powershell).or(go).or(node) {
        return Some((Category::CommandNotFound, thing));
    }
    if lower.contains("unbound variable") {
        // bash `set -u`: `bash: DATABASE_URL: unbound variable`.
        return Some((
            Category::MissingVariable,
            before(text, ": unbound variable").unwrap_or_default(),
        ));
    }
    for marker in [
        "missing required environment variable",
        "environment variable not found",
        "environment variable not set",
        "environment variable is not set",
        "env var not set",
    ] {
        if lower.contains(marker) {
            let at = lower.find(marker).unwrap_or(0);
            let named = after(&text[at..], ":")
                .filter(|n| {
                    n.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                })
                .unwrap_or_default();
            return Some((Category::MissingVariable, named));
        }
    }
    // Python's os.environ["X"]: `KeyError: 'DATABASE_URL'` with an environ frame, or a
    // message naming an upper-case variable that "is not set".
    if text.contains("KeyError") && (text.contains("os.environ") || text.contains("environ[")) {
        return Some((
            Category::MissingVariable,
            after(text, "KeyError:").unwrap_or_default(),
        ));
    }
    if lower.contains("command not found")
        || lower.contains("is not recognized as an internal or external command")
    {
        let subject = after(text, "command not found:")
            .or_else(|| before(text, "command not found"))
            .or_else(|| before(text, " is not recognized"))
            .unwrap_or_default();
        return Some((Category::CommandNotFound, subject));
    }
    for marker in [
        "No module named",
        "Cannot find module",
        "Cannot find package",
        "Module not found: Error: Can't resolve",
        "cannot find package",
        "error while loading shared libraries:",
    ] {
        if text.contains(marker) {
            return Some((
                Category::MissingModule,
                after(text, marker).unwrap_or_default(),
            ));
        }
    }
    if lower.contains("modulenotfounderror") {
        return Some((Category::MissingModule, String::new()));
    }
    if lower.contains("eaddrinuse")
        || lower.contains("address already in use")
        || lower.contains("port is already in use")
        || lower.contains("port already in use")
    {
        let port = text
            .split(|c: char| !c.is_ascii_digit())
            .rfind(|n| (2..=5).contains(&n.len()))
            .map(str::to_owned)
            .unwrap_or_default();
        return Some((Category::AddressInUse, port));
    }
    if lower.contains("permission denied")
        || lower.contains("eacces")
        || lower.contains("operation not permitted")
    {
        return Some((Category::PermissionDenied, String::new()));
    }
    for marker in [
        "unable to locate credentials",
        "nocredentialserror",
        "could not read username",
        "authentication required",
        "authentication failed",
        "401 unauthorized",
        "invalid api key",
        "incorrect api key",
        "missing api key",
        "api key not found",
        "not logged in",
        "no credentials",
        "missing credentials",
        "credentials not found",
    ] {
        if lower.contains(marker) {
            return Some((Category::MissingCredentials, String::new()));
        }
    }
    None
}

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        let mut groups: BTreeMap<(Category, String), Vec<&Action>> = BTreeMap::new();
        for action in view
            .actions
            .iter()
            .filter(|a| a.failed || a.exit_code.is_some_and(|c| c != 0))
        {
            let text = format!("{}\n{}", action.error, action.output);
            if let Some((category, mut subject)) = classify(&text) {
                if category == Category::CommandNotFound && subject.is_empty() {
                    subject = action
                        .command
                        .as_deref()
                        .and_then(|c| c.split_whitespace().next())
                        .unwrap_or_default()
                        .to_owned();
                }
                groups.entry((category, subject)).or_default().push(action);
            }
        }
        for ((category, subject), actions) in groups {
            if actions.len() >= thresholds.min_occurrences.max(1) {
                findings.push(finding(view, category, &subject, &actions));
            }
        }
    }
    findings
}

fn finding(view: &SessionView, category: Category, subject: &str, actions: &[&Action]) -> Finding {
    let lost: u64 = actions.iter().map(|a| a.duration()).sum();
    let what = if subject.is_empty() {
        String::new()
    } else {
        format!(" {}", short(subject, 60))
    };
    let example = actions[0]
        .command
        .as_deref()
        .map(|c| format!(" (e.g. {})", short(c, 60)))
        .unwrap_or_default();
    Finding {
        kind: FindingKind::EnvironmentError,
        operation: (!subject.is_empty()).then(|| subject.to_owned()),
        title: format!(
            "environment: {}{what}, {} failed {}{example}",
            category.as_str(),
            actions.len(),
            if actions.len() == 1 {
                "action"
            } else {
                "actions"
            }
        ),
        recommendation: category.advice().into(),
        fingerprint: fingerprint(&["environment_error", category.as_str(), subject]),
        saving_nanos: lost,
        occurrences: actions.len() as u64,
        numbers: [("failures".to_owned(), actions.len() as f64)]
            .into_iter()
            .collect(),
        evidence: evidence(view, actions.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn each_kind_is_recognised_with_its_subject() {
        let cases = [
            (
                "bash: pnpm: command not found",
                Category::CommandNotFound,
                "pnpm",
            ),
            ("sh: 1: tsc: not found", Category::CommandNotFound, "tsc"),
            ("/bin/sh: tsc: not found", Category::CommandNotFound, "tsc"),
            (
                "/bin/sh: 1: tsc: not found",
                Category::CommandNotFound,
                "tsc",
            ),
            (
                "bash: ./scripts/dev.sh: No such file or directory",
                Category::CommandNotFound,
                "./scripts/dev.sh",
            ),
            ("fish: Unknown command: rg", Category::CommandNotFound, "rg"),
            (
                "'tsc' is not recognized as an internal or external command,",
                Category::CommandNotFound,
                "tsc",
            ),
            (
                "The term 'pnpm' is not recognized as the name of a cmdlet, function, script file, or operable program.",
                Category::CommandNotFound,
                "pnpm",
            ),
            (
                "exec: \"protoc\": executable file not found in $PATH",
                Category::CommandNotFound,
                "protoc",
            ),
            ("Error: spawn tsc ENOENT", Category::CommandNotFound, "tsc"),
            (
                "bash: DATABASE_URL: unbound variable",
                Category::MissingVariable,
                "DATABASE_URL",
            ),
            (
                "Error: Missing required environment variable: STRIPE_KEY",
                Category::MissingVariable,
                "STRIPE_KEY",
            ),
            (
                "thread 'main' panicked at src/main.rs:4:44:\nDATABASE_URL: environment variable not found",
                Category::MissingVariable,
                "",
            ),
            (
                "  File \"app.py\", line 3, in <module>\n    url = os.environ[\"DATABASE_URL\"]\nKeyError: 'DATABASE_URL'",
                Category::MissingVariable,
                "DATABASE_URL",
            ),
            (
                "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'zod' imported from /app/x.js",
                Category::MissingModule,
                "zod",
            ),
            (
                "zsh: command not found: tree",
                Category::CommandNotFound,
                "tree",
            ),
            (
                "ModuleNotFoundError: No module named 'requests'",
                Category::MissingModule,
                "requests",
            ),
            (
                "Error: Cannot find module 'express'",
                Category::MissingModule,
                "express",
            ),
            (
                "Error: listen EADDRINUSE: address already in use :::3000",
                Category::AddressInUse,
                "3000",
            ),
            (
                "mkdir: cannot create directory '/opt/x': Permission denied",
                Category::PermissionDenied,
                "",
            ),
            (
                "botocore.exceptions.NoCredentialsError: Unable to locate credentials",
                Category::MissingCredentials,
                "",
            ),
            (
                "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
                Category::MissingCredentials,
                "",
            ),
        ];
        for (text, category, subject) in cases {
            assert_eq!(
                classify(text),
                Some((category, subject.to_owned())),
                "{text}"
            );
        }
        for ordinary in [
            "ls: cannot access 'types/': No such file or directory",
            "test cart::total ... FAILED",
            "[TypeError: generate is not a function]",
        ] {
            assert_eq!(classify(ordinary), None, "{ordinary}");
        }
    }

    #[test]
    fn failures_group_by_kind_and_subject() {
        let mut s = Session::new(1);
        s.then(
            command("pnpm install")
                .fails("bash: pnpm: command not found")
                .exit(127),
        );
        s.then(
            command("pnpm test")
                .fails("bash: pnpm: command not found")
                .exit(127),
        );
        s.then(
            command("tree")
                .fails("zsh: command not found: tree")
                .exit(127),
        );
        s.then(
            command("python app.py")
                .exit(1)
                .output("ModuleNotFoundError: No module named 'flask'", 45),
        );
        // A succeeding command that prints the words is no failure.
        s.then(
            command("grep -r 'command not found' docs")
                .output("docs/faq.md: command not found", 30),
        );
        let trace = s.build();
        let found = detect(&[SessionView::new(&trace)], &Thresholds::default());
        let titles: Vec<&str> = found.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "environment: command not found \"pnpm\", 2 failed actions (e.g. \"pnpm install\")",
                "environment: command not found \"tree\", 1 failed action (e.g. \"tree\")",
                "environment: missing module \"flask\", 1 failed action (e.g. \"python app.py\")",
            ]
        );
    }
}
