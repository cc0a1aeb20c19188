//! Test-fix spirals: a test command fails, the agent edits, the same test command fails
//! again — over and over. Each round is a guess; after a few, the guesses are not converging.
//!
//! A run of the same test command (compared like retry loops, see
//! [`crate::session::command_key`]) counts when at least one file was changed since the
//! previous failing run of it; a retry with nothing changed is a retry loop instead.

use super::{evidence, short};
use crate::finding::{Finding, FindingKind};
use crate::fingerprint::{fingerprint, normalize_text};
use crate::session::{Action, ActionKind, SessionView, command_key};
use devtrace_model::SpanId;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Failing runs of one test command, with edits between each, for a spiral: 3.
    pub min_failures: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_failures: 3 }
    }
}

/// Test runners recognised in a command line (after `cd … &&` and `devtrace run --`).
const RUNNERS: &[&str] = &[
    "cargo test",
    "cargo nextest",
    "pytest",
    "python -m pytest",
    "python3 -m pytest",
    "py.test",
    "go test",
    "npm test",
    "npm run test",
    "npm t",
    "yarn test",
    "pnpm test",
    "pnpm run test",
    "bun test",
    "deno test",
    "npx jest",
    "jest",
    "npx vitest",
    "vitest",
    "mocha",
    "npx mocha",
    "rspec",
    "bundle exec rspec",
    "phpunit",
    "mvn test",
    "gradle test",
    "./gradlew test",
    "dotnet test",
    "make test",
    "tox",
    "ctest",
    "mix test",
    "swift test",
];

/// Whether a command line runs tests.
pub fn is_test_command(command: &str) -> bool {
    let key = command_key(command);
    RUNNERS
        .iter()
        .any(|runner| key == *runner || key.starts_with(&format!("{runner} ")))
}

struct Spiral<'a> {
    failures: Vec<&'a Action>,
    edits: usize,
    edited_since_last: bool,
    passed: bool,
}

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        let mut open: BTreeMap<(SpanId, String), Spiral> = BTreeMap::new();
        let mut closed: Vec<(String, Spiral)> = Vec::new();
        for action in &view.actions {
            if action.kind.changes_files() && !action.failed {
                for ((context, _), spiral) in open.iter_mut() {
                    if *context == action.context {
                        spiral.edited_since_last = true;
                        spiral.edits += 1;
                    }
                }
                continue;
            }
            let Some(command) = action.command.as_deref().filter(|c| is_test_command(c)) else {
                continue;
            };
            if action.kind != ActionKind::Command {
                continue;
            }
            let key = (action.context, command_key(command));
            if action.failed {
                let spiral = open.entry(key).or_insert_with(|| Spiral {
                    failures: Vec::new(),
                    edits: 0,
                    edited_since_last: false,
                    passed: false,
                });
                if spiral.failures.is_empty() || spiral.edited_since_last {
                    spiral.failures.push(action);
                }
                spiral.edited_since_last = false;
            } else if let Some(mut spiral) = open.remove(&key) {
                spiral.passed = true;
                closed.push((key.1, spiral));
            }
        }
        closed.extend(open.into_iter().map(|((_, key), spiral)| (key, spiral)));
        for (key, spiral) in closed {
            if spiral.failures.len() >= thresholds.min_failures.max(2) {
                findings.push(finding(view, &key, &spiral));
            }
        }
    }
    findings
}

fn finding(view: &SessionView, key: &str, spiral: &Spiral) -> Finding {
    let runs = spiral.failures.len();
    let first = spiral.failures[0].start;
    let last = spiral.failures[runs - 1].end;
    let outcome = if spiral.passed {
        "it passed in the end"
    } else {
        "it was still failing at the end"
    };
    let error = short(&spiral.failures[runs - 1].error, 100);
    // What a better first diagnosis would have spared: the runs after the second.
    let saving: u64 = spiral.failures[2.min(runs)..]
        .iter()
        .map(|a| a.duration())
        .sum();
    Finding {
        kind: FindingKind::TestFixSpiral,
        operation: Some(key.to_owned()),
        title: format!(
            "{} failed {runs} times with edits in between (a test-fix spiral); {outcome}{}",
            short(key, 80),
            if error.is_empty() {
                String::new()
            } else {
                format!(": {error}")
            }
        ),
        recommendation: "The fixes are guesses that do not converge: stop editing, read the failing test and its full output, reproduce the failure in isolation, then fix the cause once.".into(),
        fingerprint: fingerprint(&["test_fix_spiral", &normalize_text(key)]),
        saving_nanos: saving,
        occurrences: 1,
        numbers: [
            ("failed_runs".to_owned(), runs as f64),
            ("edits".to_owned(), spiral.edits as f64),
            ("spiral_seconds".to_owned(), last.saturating_sub(first) as f64 / 1e9),
            ("passed".to_owned(), f64::from(u8::from(spiral.passed))),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, spiral.failures.iter().map(|a| a.span_id)),
        impact: super::time_lost(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn findings(trace: &crate::AnalyzedTrace) -> Vec<Finding> {
        detect(&[SessionView::new(trace)], &Thresholds::default())
    }

    #[test]
    fn test_commands_are_recognised() {
        assert!(is_test_command("cargo test -p core"));
        assert!(is_test_command("cd app && npm test"));
        assert!(is_test_command("devtrace run -- pytest -x tests/"));
        assert!(!is_test_command("cargo build"));
        assert!(!is_test_command("jester --version"));
    }

    #[test]
    fn fail_edit_fail_edit_fail_is_a_spiral() {
        let mut s = Session::new(1);
        s.then(command("cargo test").fails("test cart::total ... FAILED"));
        s.then(edit("/repo/src/cart.rs", "A", "B"));
        s.then(command("cargo test").fails("test cart::total ... FAILED"));
        s.then(edit("/repo/src/cart.rs", "B", "C"));
        s.then(edit("/repo/src/lib.rs", "L", "M"));
        s.then(command("cargo test").fails("test cart::total ... FAILED"));
        s.then(edit("/repo/src/cart.rs", "C", "D"));
        s.then(command("cargo test"));
        let found = findings(&s.build());
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].title,
            "\"cargo test\" failed 3 times with edits in between (a test-fix spiral); it passed in the end: \"test cart::total ... FAILED\""
        );
        assert_eq!(found[0].numbers["edits"], 4.0);
        assert_eq!(found[0].numbers["passed"], 1.0);
    }

    #[test]
    fn two_rounds_or_failures_without_edits_are_not_a_spiral() {
        let mut s = Session::new(1);
        s.then(command("pytest").fails("1 failed"));
        s.then(edit("/repo/a.py", "A", "B"));
        s.then(command("pytest").fails("1 failed"));
        // A retry without an edit does not count as a round.
        s.then(command("pytest").fails("1 failed"));
        s.then(command("pytest -k other").fails("1 failed"));
        assert!(findings(&s.build()).is_empty());
    }
}
