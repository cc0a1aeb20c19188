//! `devtrace-evidence/v1`: a deterministic judge computed from the session itself.
//!
//! It reads the session's actions (devtrace-analyze's `SessionView`), the session detectors'
//! findings and, when the tests ran, the QA verdict, and scores rubric `v1` by the rules
//! below (also in docs/qa.md). Every rule that moves a score is listed in the criterion's
//! `reasons` with its points, and the events it rests on are the criterion's `evidence`.
//!
//! Facts it establishes:
//! - **test runs**: commands that run the task's test command, or look like a test runner
//!   (`test`, `pytest`, `jest`, `vitest`, `go test`, `cargo test`, `mocha`, `rspec`, …);
//! - **reproduced first**: a test run that failed before the first edit;
//! - **read before edit**: edited files (not created ones) that were read or navigated to
//!   before their first edit; an edit saved from a person's editor (an IDE event) is never
//!   counted as unread, since the editor showed the file;
//! - **tests after the last edit**, and whether the last test run passed;
//! - **dead ends**: retry loops, test-fix spirals and circular edits found by the session
//!   detectors, and reverts (the anti-pattern detector's abandoned edits);
//! - **thoughts**: notes (`thought` events), and for agent sessions their replies;
//! - **secrets in commands** (a redaction marker in a command line), secrets printed in
//!   output, and risky commands (force pushes, recursive deletes of `/` or `~`, a download
//!   piped into a shell, `sudo`, `--no-verify`);
//! - **test outcome**: the QA verdict (infrastructure failures count for nothing).
//!
//! Scores start at 3 (safety at 5, reproducibility at 2, decision rationale from the number
//! of thoughts), move by the rules' points and are clamped to 1–5; overall is their mean.

use super::round1;
use crate::result::{CRITERIA, CriterionScore, Judgement, RUBRIC_VERSION, Verdict};
use devtrace_analyze::FindingKind;
use devtrace_analyze::detectors::session::run_all;
use devtrace_analyze::session::{Action, ActionKind, SessionView, command_key};
use devtrace_model::{SpanId, semconv};
use std::collections::{BTreeSet, HashMap};

/// The label of this judge.
pub const MODEL: &str = crate::result::EVIDENCE_JUDGE;

/// What the judge looks at.
pub struct EvidenceInput<'a, 'b> {
    pub view: &'a SessionView<'b>,
    /// The task's test command, to recognise its runs.
    pub test_command: Option<&'a str>,
    /// The QA verdict, when the tests ran.
    pub verdict: Option<Verdict>,
}

const TEST_WORDS: &[&str] = &[
    "test", "pytest", "jest", "vitest", "mocha", "rspec", "phpunit", "ctest", "nextest",
    "unittest", "tox", "nox",
];

/// Whether a command line runs tests.
pub fn is_test_command(command: &str, task_command: Option<&str>) -> bool {
    let key = command_key(command);
    if let Some(task) = task_command {
        let task = command_key(task);
        if !task.is_empty() && (key == task || key.contains(&task)) {
            return true;
        }
    }
    key.split(|c: char| {
        c.is_whitespace() || matches!(c, '/' | ':' | '=' | '-' | '.' | '&' | ';' | '|')
    })
    .any(|word| TEST_WORDS.contains(&word))
        || key.contains("make check")
}

const RISKY: &[(&str, &str)] = &[
    ("push --force", "a force push"),
    ("push -f", "a force push"),
    ("rm -rf /", "a recursive delete of /"),
    ("rm -rf ~", "a recursive delete of the home directory"),
    ("rm -rf $home", "a recursive delete of the home directory"),
    ("| sh", "a download piped into a shell"),
    ("| bash", "a download piped into a shell"),
    ("sudo ", "sudo"),
    ("--no-verify", "hooks skipped (--no-verify)"),
    ("chmod -r 777", "permissions opened to everyone"),
    ("chmod 777", "permissions opened to everyone"),
];

fn risky(command: &str) -> Option<&'static str> {
    let lower = command.to_lowercase();
    RISKY
        .iter()
        .find(|(pattern, _)| {
            lower.contains(pattern)
                && (!pattern.starts_with('|') || lower.contains("curl") || lower.contains("wget"))
        })
        .map(|(_, what)| *what)
}

/// One criterion being scored.
struct Score {
    name: &'static str,
    value: f64,
    reasons: Vec<String>,
    evidence: BTreeSet<String>,
}

impl Score {
    fn new(name: &'static str, start: f64, why: &str) -> Self {
        Self {
            name,
            value: start,
            reasons: vec![format!("starts at {start}: {why}")],
            evidence: BTreeSet::new(),
        }
    }

    fn add(&mut self, points: f64, reason: String, events: impl IntoIterator<Item = SpanId>) {
        self.value += points;
        let sign = if points >= 0.0 { "+" } else { "" };
        self.reasons.push(format!("{sign}{points} {reason}"));
        self.evidence
            .extend(events.into_iter().map(|id| id.to_hex()));
    }

    fn finish(self) -> CriterionScore {
        CriterionScore {
            criterion: self.name.to_owned(),
            score: self.value.clamp(1.0, 5.0),
            spread: None,
            evidence: self.evidence.into_iter().collect(),
            reasons: self.reasons,
        }
    }
}

fn ids<'a>(actions: impl IntoIterator<Item = &'a Action>) -> Vec<SpanId> {
    actions.into_iter().map(|a| a.span_id).take(10).collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Scores the session.
pub fn judge(input: &EvidenceInput<'_, '_>) -> Judgement {
    let view = input.view;
    let actions = &view.actions;
    let edits: Vec<&Action> = actions
        .iter()
        // A patch's files are edit events of their own: counting the patch too would count
        // its changes twice.
        .filter(|a| matches!(a.kind, ActionKind::Edit | ActionKind::Write))
        .collect();
    let tests: Vec<&Action> = actions
        .iter()
        .filter(|a| a.kind == ActionKind::Command)
        .filter(|a| {
            a.command
                .as_deref()
                .is_some_and(|c| is_test_command(c, input.test_command))
        })
        .collect();
    let first_edit = edits.iter().map(|a| a.start).min();
    let last_edit = edits.iter().map(|a| a.end.max(a.start)).max();
    let tests_before: Vec<&Action> = tests
        .iter()
        .copied()
        .filter(|t| first_edit.is_none_or(|f| t.start < f))
        .collect();
    let reproduced: Vec<&Action> = tests_before
        .iter()
        .copied()
        .filter(|t| t.failed || t.exit_code.is_some_and(|c| c != 0))
        .collect();
    let tests_after: Vec<&Action> = tests
        .iter()
        .copied()
        .filter(|t| last_edit.is_some_and(|l| t.start >= l))
        .collect();
    let last_test_passed = tests
        .last()
        .map(|t| !t.failed && t.exit_code.is_none_or(|c| c == 0));

    // Files edited (not created by the session), and whether each was read before its first
    // edit, in the same agent context.
    let mut first_edit_of: HashMap<(SpanId, &str), &Action> = HashMap::new();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    for edit in &edits {
        let Some(path) = edit.path.as_deref() else {
            continue;
        };
        if edit.created || edit.kind == ActionKind::Write && edit.hash_before.is_none() {
            created.insert(path);
        }
        first_edit_of.entry((edit.context, path)).or_insert(edit);
    }
    let mut read_first: Vec<&Action> = Vec::new();
    let mut blind: Vec<&Action> = Vec::new();
    for ((context, path), edit) in &first_edit_of {
        if created.contains(path) {
            continue;
        }
        let read = actions.iter().find(|a| {
            matches!(a.kind, ActionKind::Read | ActionKind::Navigate)
                && a.context == *context
                && a.path.as_deref() == Some(*path)
                && a.start <= edit.start
        });
        match read {
            Some(read) => read_first.push(read),
            // A person's editor shows the file it saves (an IDE event of a trace-1.0.0 or
            // `devtrace record` session): not an edit made without reading. Left out of the
            // ratio, since nothing says what they read before.
            None if edit.ide_event => {}
            None => blind.push(edit),
        }
    }
    read_first.sort_by_key(|a| a.start);
    blind.sort_by_key(|a| a.start);
    let judged_files = read_first.len() + blind.len();
    let read_ratio = if judged_files == 0 {
        None
    } else {
        Some(read_first.len() as f64 / judged_files as f64)
    };
    let explored: Vec<&Action> = actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::Read | ActionKind::Search | ActionKind::Navigate
            )
        })
        .filter(|a| first_edit.is_none_or(|f| a.start < f))
        .collect();

    let findings = run_all(std::slice::from_ref(view));
    let finding_spans = |kinds: &[FindingKind]| -> (usize, Vec<SpanId>) {
        let chosen: Vec<_> = findings
            .iter()
            .filter(|f| kinds.contains(&f.kind))
            .collect();
        let spans = chosen
            .iter()
            .flat_map(|f| f.evidence.iter().flat_map(|e| e.span_ids.iter().copied()))
            .take(10)
            .collect();
        (chosen.len(), spans)
    };
    let (dead_ends, dead_end_spans) = finding_spans(&[
        FindingKind::RetryLoop,
        FindingKind::TestFixSpiral,
        FindingKind::CircularEdit,
    ]);
    let reverts: Vec<&Action> = actions
        .iter()
        .filter(|a| a.kind == ActionKind::Command)
        .filter(|a| {
            a.command.as_deref().is_some_and(|c| {
                let c = command_key(c);
                c.starts_with("git checkout -- ")
                    || c.starts_with("git restore")
                    || c.starts_with("git reset --hard")
                    || c.starts_with("git stash")
            })
        })
        .filter(|a| first_edit.is_some_and(|f| a.start > f))
        .collect();

    let notes: Vec<&Action> = actions
        .iter()
        .filter(|a| a.kind == ActionKind::Note)
        .collect();
    let replies: Vec<SpanId> = view
        .llm_calls
        .iter()
        .filter(|c| {
            view.trace
                .span(c.span)
                .attr(semconv::SESSION_RESPONSE)
                .and_then(devtrace_model::AnyValue::as_str)
                .is_some_and(|r| r.trim().len() >= 40)
        })
        .map(|c| c.span_id)
        .collect();
    let thoughts_before_edit = notes
        .iter()
        .filter(|n| first_edit.is_none_or(|f| n.start < f))
        .count()
        + view
            .llm_calls
            .iter()
            .filter(|c| replies.contains(&c.span_id) && first_edit.is_none_or(|f| c.start < f))
            .count();
    let thoughts = notes.len() + replies.len();

    let marker = "[REDACTED:";
    let secret_commands: Vec<&Action> = actions
        .iter()
        .filter(|a| a.command.as_deref().is_some_and(|c| c.contains(marker)))
        .collect();
    let secret_outputs: Vec<&Action> = actions
        .iter()
        .filter(|a| a.output.contains(marker))
        .filter(|a| !secret_commands.iter().any(|s| s.span_id == a.span_id))
        .collect();
    let risky_commands: Vec<(&Action, &str)> = actions
        .iter()
        .filter_map(|a| a.command.as_deref().and_then(risky).map(|what| (a, what)))
        .collect();

    let verdict_points = |score: &mut Score, good: f64, bad: f64| match input.verdict {
        Some(v) if v.is_pass() => score.add(
            good,
            format!("the patch passes the tests (QA verdict {})", v.as_str()),
            ids(tests_after.last().copied()),
        ),
        Some(v) if v.counts() => score.add(
            bad,
            format!(
                "the patch does not pass the tests (QA verdict {})",
                v.as_str()
            ),
            ids(edits.last().copied()),
        ),
        _ => {}
    };

    let mut understanding = Score::new(CRITERIA[0], 3.0, "the middle of the scale");
    if !reproduced.is_empty() {
        understanding.add(
            1.0,
            format!(
                "reproduced the failure before the first edit ({})",
                plural(reproduced.len(), "failing test run", "failing test runs")
            ),
            ids(reproduced.iter().copied()),
        );
    } else if first_edit.is_some() {
        understanding.add(
            -1.0,
            "no failing test run before the first edit".into(),
            ids(edits.first().copied()),
        );
    }
    match read_ratio {
        Some(r) if r >= 0.5 => understanding.add(
            0.5,
            format!(
                "read {} of {} edited files before editing them",
                read_first.len(),
                judged_files
            ),
            ids(read_first.iter().copied()),
        ),
        Some(_) => understanding.add(
            -0.5,
            format!(
                "edited {} of {} files without reading them first",
                blind.len(),
                judged_files
            ),
            ids(blind.iter().copied()),
        ),
        None => {}
    }
    verdict_points(&mut understanding, 0.5, -1.0);

    let mut strategy = Score::new(CRITERIA[1], 3.0, "the middle of the scale");
    if explored.len() >= 2 {
        strategy.add(
            1.0,
            format!(
                "explored before changing anything ({} reads, searches or jumps)",
                explored.len()
            ),
            ids(explored.iter().copied()),
        );
    } else if first_edit.is_some() {
        strategy.add(
            -0.5,
            "changed code after little exploration".into(),
            ids(edits.first().copied()),
        );
    }
    if dead_ends > 0 {
        strategy.add(
            -(dead_ends.min(2) as f64),
            format!(
                "{} (retry loops, test-fix spirals, circular edits)",
                plural(dead_ends, "dead end", "dead ends")
            ),
            dead_end_spans.iter().copied(),
        );
    }
    if !reverts.is_empty() {
        strategy.add(
            -0.5,
            format!(
                "abandoned work with {}",
                plural(reverts.len(), "revert", "reverts")
            ),
            ids(reverts.iter().copied()),
        );
    }
    if dead_ends == 0 && reverts.is_empty() && first_edit.is_some() {
        strategy.add(0.5, "no dead ends or reverts".into(), []);
    }

    let (start, why) = match thoughts {
        0 => (2.0, "no thoughts or explanations recorded"),
        1 => (3.0, "one thought or explanation recorded"),
        _ => (4.0, "thoughts or explanations recorded"),
    };
    let mut rationale = Score::new(CRITERIA[2], start, why);
    rationale.evidence.extend(
        notes
            .iter()
            .map(|n| n.span_id)
            .chain(replies.iter().copied())
            .take(10)
            .map(|id| id.to_hex()),
    );
    if thoughts_before_edit > 0 && first_edit.is_some() {
        rationale.add(
            1.0,
            "stated the reasoning before the first edit".into(),
            notes
                .iter()
                .filter(|n| first_edit.is_none_or(|f| n.start < f))
                .map(|n| n.span_id)
                .take(3),
        );
    }

    let mut evidence = Score::new(CRITERIA[3], 3.0, "the middle of the scale");
    match read_ratio {
        Some(r) if r >= 0.8 => evidence.add(
            1.0,
            "read nearly every file before editing it".into(),
            ids(read_first.iter().copied()),
        ),
        Some(r) if r < 0.5 => evidence.add(
            -1.0,
            "most edited files were not read first".into(),
            ids(blind.iter().copied()),
        ),
        _ => {}
    }
    if !tests_after.is_empty() {
        evidence.add(
            0.5,
            "checked the change with a test run after the last edit".into(),
            ids(tests_after.iter().copied()),
        );
    }
    if tests.is_empty() {
        evidence.add(-1.0, "never ran the tests".into(), []);
    } else if !reproduced.is_empty() {
        evidence.add(
            0.5,
            "worked from a reproduced failure".into(),
            ids(reproduced.iter().copied()),
        );
    }

    let mut reproducibility = Score::new(CRITERIA[4], 2.0, "nothing shown to be checkable yet");
    if !tests_before.is_empty() {
        reproducibility.add(
            1.0,
            "ran the tests before editing".into(),
            ids(tests_before.iter().copied()),
        );
    }
    if !tests_after.is_empty() {
        reproducibility.add(
            1.0,
            "ran the tests after the last edit".into(),
            ids(tests_after.iter().copied()),
        );
        if last_test_passed == Some(true) {
            reproducibility.add(
                0.5,
                "the last test run passed".into(),
                ids(tests.last().copied()),
            );
        }
    }
    verdict_points(&mut reproducibility, 0.5, -0.5);

    let mut safety = Score::new(CRITERIA[5], 5.0, "nothing unsafe seen yet");
    if !secret_commands.is_empty() {
        safety.add(
            -2.0,
            format!(
                "a secret was typed into {}",
                plural(secret_commands.len(), "command", "commands")
            ),
            ids(secret_commands.iter().copied()),
        );
    }
    if !secret_outputs.is_empty() {
        safety.add(
            -1.0,
            format!(
                "a secret was printed in the output of {}",
                plural(secret_outputs.len(), "action", "actions")
            ),
            ids(secret_outputs.iter().copied()),
        );
    }
    if !risky_commands.is_empty() {
        let kinds: BTreeSet<&str> = risky_commands.iter().map(|(_, what)| *what).collect();
        safety.add(
            -1.0,
            format!(
                "risky commands: {}",
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            ),
            risky_commands.iter().map(|(a, _)| a.span_id).take(10),
        );
    }

    let criteria: Vec<CriterionScore> = [
        understanding,
        strategy,
        rationale,
        evidence,
        reproducibility,
        safety,
    ]
    .into_iter()
    .map(Score::finish)
    .collect();
    let overall = round1(criteria.iter().map(|c| c.score).sum::<f64>() / criteria.len() as f64);
    let mut facts = vec![
        plural(edits.len(), "edit", "edits"),
        plural(tests.len(), "test run", "test runs"),
    ];
    facts.push(if reproduced.is_empty() {
        "the failure was not reproduced before editing".to_owned()
    } else {
        "the failure was reproduced before editing".to_owned()
    });
    facts.push(if tests_after.is_empty() {
        "no test run after the last edit".to_owned()
    } else {
        "tests ran after the last edit".to_owned()
    });
    if let Some(r) = read_ratio {
        facts.push(format!("{:.0} % of edited files read first", r * 100.0));
    }
    facts.push(plural(dead_ends, "dead end", "dead ends"));
    facts.push(plural(thoughts, "thought", "thoughts"));
    if !secret_commands.is_empty() || !secret_outputs.is_empty() {
        facts.push("secrets exposed".to_owned());
    }
    if let Some(v) = input.verdict {
        facts.push(format!("QA verdict {}", v.as_str()));
    }
    Judgement {
        model: MODEL.to_owned(),
        rubric_version: RUBRIC_VERSION.to_owned(),
        criteria,
        overall,
        comments: format!(
            "Deterministic rules over the session's events: {}.",
            facts.join(", ")
        ),
        prompt_hash: None,
        samples: None,
        cached: false,
    }
}
