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
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CommandNotFound => "command not found",
            Self::MissingModule => "missing module",
            Self::PermissionDenied => "permission denied",
            Self::AddressInUse => "address in use",
            Self::MissingCredentials => "missing credentials",
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

/// The category of an environment failure and what it names, if the text shows one.
pub fn classify(text: &str) -> Option<(Category, String)> {
    let lower = text.to_ascii_lowercase();
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
