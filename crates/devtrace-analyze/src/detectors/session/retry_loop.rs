//! Retry loops: the same command (or the same tool call with the same input) failing again
//! and again with nothing changed in between — no file edited, no other command that could
//! change the outcome. Retrying unchanged repeats the failure; the time is lost.
//!
//! "The same": commands compare by their command line with `cd DIR &&` and `devtrace run --`
//! prefixes dropped and whitespace collapsed (see [`crate::session::command_key`]); other tools
//! by name and recorded input. Per agent (a sub-agent's retries are its own).

use super::{evidence, short};
use crate::finding::{Finding, FindingKind, human_duration};
use crate::fingerprint::{fingerprint, normalize_text};
use crate::session::{Action, ActionKind, SessionView, command_key};
use devtrace_model::SpanId;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Failures in a row, nothing changed between them, for a loop: 3.
    pub min_failures: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_failures: 3 }
    }
}

/// Commands that only look: running them between two attempts changes nothing.
const READ_ONLY: &[&str] = &[
    "ls",
    "cat",
    "pwd",
    "echo",
    "head",
    "tail",
    "wc",
    "grep",
    "rg",
    "find",
    "which",
    "tree",
    "file",
    "stat",
    "less",
    "more",
    "env",
    "printenv",
    "whoami",
    "date",
    "git status",
    "git diff",
    "git log",
    "git show",
    "git branch",
];

pub(crate) fn is_read_only(key: &str) -> bool {
    READ_ONLY
        .iter()
        .any(|c| key == *c || key.starts_with(&format!("{c} ")))
}

/// What identifies "the same call" for an action, if it is a call that can be retried.
fn retry_key(action: &Action) -> Option<String> {
    match (&action.command, action.kind) {
        (Some(command), _) => Some(format!("command {}", command_key(command))),
        (None, ActionKind::Note | ActionKind::Plan) => None,
        // Nothing says what the call was (an agent's telemetry that withholds tool inputs):
        // two such failures cannot be told to be the same call.
        (None, _) if action.input.is_none() => None,
        (None, _) => Some(format!(
            "tool {} {}",
            action.tool,
            action.input.as_deref().unwrap_or("")
        )),
    }
}

pub fn detect(views: &[SessionView], thresholds: &Thresholds) -> Vec<Finding> {
    let mut findings = Vec::new();
    for view in views {
        // Open runs of failures: (context, key) → the failing actions.
        let mut runs: BTreeMap<(SpanId, String), Vec<&Action>> = BTreeMap::new();
        let mut closed: Vec<Vec<&Action>> = Vec::new();
        for action in &view.actions {
            let key = retry_key(action);
            if action.failed {
                if let Some(key) = key {
                    runs.entry((action.context, key)).or_default().push(action);
                }
                continue;
            }
            let changes = action.kind.changes_files()
                || key
                    .as_deref()
                    .and_then(|k| k.strip_prefix("command "))
                    .is_some_and(|k| !is_read_only(k));
            let keys: Vec<(SpanId, String)> = runs
                .keys()
                .filter(|(context, k)| {
                    *context == action.context && (changes || Some(k) == key.as_ref())
                })
                .cloned()
                .collect();
            for k in keys {
                closed.extend(runs.remove(&k));
            }
        }
        closed.extend(runs.into_values());
        for run in closed {
            if run.len() >= thresholds.min_failures.max(2) {
                findings.push(finding(view, &run));
            }
        }
    }
    findings
}

fn finding(view: &SessionView, run: &[&Action]) -> Finding {
    let first = run[0];
    let last = run[run.len() - 1];
    let what = match &first.command {
        Some(command) => short(&command_key(command), 80),
        None => format!(
            "{} with the same input",
            devtrace_model::recorded::name(&first.tool)
        ),
    };
    let error = short(&last.error, 100);
    let retried: u64 = run[1..].iter().map(|a| a.duration()).sum();
    let title = format!(
        "{what} failed {} times in a row with no change in between{}",
        run.len(),
        if error.is_empty() {
            String::new()
        } else {
            format!(": {error}")
        }
    );
    let subject = first
        .command
        .as_deref()
        .map_or_else(|| first.tool.clone(), command_key);
    Finding {
        kind: FindingKind::RetryLoop,
        operation: Some(subject.clone()),
        title,
        recommendation: format!(
            "Each attempt failed the same way; read the error and change something (the code, the command, the environment) before running it again. The {} retries took {}.",
            run.len() - 1,
            human_duration(retried)
        ),
        fingerprint: fingerprint(&[
            "retry_loop",
            &normalize_text(&subject),
            &normalize_text(&last.error),
        ]),
        saving_nanos: retried,
        occurrences: 1,
        numbers: [
            ("failures".to_owned(), run.len() as f64),
            ("retry_seconds".to_owned(), retried as f64 / 1e9),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(view, run.iter().map(|a| a.span_id)),
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
    fn the_same_failing_command_four_times_is_a_loop() {
        let mut s = Session::new(1);
        s.then(command("npm run build").fails("[TypeError: generate is not a function]"));
        s.then(read("/repo/package.json", "h1"));
        s.then(
            command("cd /repo/app && npm  run build")
                .fails("[TypeError: generate is not a function]"),
        );
        s.then(command("ls -la").taking(0));
        s.then(command("npm run build").fails("[TypeError: generate is not a function]"));
        s.then(command("npm run build").fails("[TypeError: generate is not a function]"));
        let trace = s.build();
        let found = findings(&trace);
        assert_eq!(found.len(), 1);
        let f = &found[0];
        assert_eq!(f.kind, FindingKind::RetryLoop);
        assert_eq!(
            f.title,
            "\"npm run build\" failed 4 times in a row with no change in between: \"[TypeError: generate is not a function]\""
        );
        assert_eq!(f.numbers["failures"], 4.0);
        assert_eq!(f.saving_nanos, 3 * SECOND, "the three retries");
        assert_eq!(f.evidence[0].span_ids.len(), 4);
    }

    #[test]
    fn an_edit_or_a_changing_command_between_attempts_breaks_the_loop() {
        let mut s = Session::new(1);
        s.then(command("cargo build").fails("error[E0425]"));
        s.then(command("cargo build").fails("error[E0425]"));
        s.then(edit("/repo/src/lib.rs", "a", "b"));
        s.then(command("cargo build").fails("error[E0425]"));
        s.then(command("cargo add serde"));
        s.then(command("cargo build").fails("error[E0425]"));
        assert!(findings(&s.build()).is_empty());
    }

    #[test]
    fn two_failures_are_not_a_loop_and_a_success_ends_one() {
        let mut s = Session::new(1);
        s.then(command("pytest").fails("1 failed"));
        s.then(command("pytest").fails("1 failed"));
        s.then(command("pytest"));
        s.then(command("pytest").fails("1 failed"));
        assert!(findings(&s.build()).is_empty());
    }

    #[test]
    fn sub_agents_retry_on_their_own_and_tools_compare_by_input() {
        let mut s = Session::new(1);
        s.then(command("make").fails("make: *** [all] Error 1"));
        s.subagent();
        s.then(command("make").fails("make: *** [all] Error 1"));
        s.then(command("make").fails("make: *** [all] Error 1"));
        assert!(findings(&s.build()).is_empty(), "2 + 1 in different agents");
        let mut t = Session::new(2);
        for _ in 0..3 {
            t.then(
                read("/repo/src", "")
                    .attr(
                        devtrace_model::semconv::SESSION_INPUT,
                        "{\"file_path\":\"/repo/src\"}",
                    )
                    .fails("EISDIR: illegal operation on a directory, read"),
            );
        }
        let found = findings(&t.build());
        assert_eq!(found.len(), 1);
        assert!(
            found[0]
                .title
                .starts_with("\"Read\" with the same input failed 3 times"),
            "{}",
            found[0].title
        );
    }

    #[test]
    fn calls_whose_input_was_withheld_are_not_compared() {
        // An agent's telemetry without tool details names the tool but not the command: three
        // failing Bash calls may be three different commands.
        let mut s = Session::new(1);
        for _ in 0..3 {
            s.then(
                Step::new("command", "Bash")
                    .attr(devtrace_model::semconv::SESSION_INPUT_WITHHELD, true)
                    .fails("Shell command failed"),
            );
        }
        assert!(findings(&s.build()).is_empty());
    }
}
