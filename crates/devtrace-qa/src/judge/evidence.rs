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

/// What the rules read, established once from the session's actions.
struct Facts<'a> {
    edits: Vec<&'a Action>,
    tests: Vec<&'a Action>,
    first_edit: Option<u64>,
    tests_before: Vec<&'a Action>,
    reproduced: Vec<&'a Action>,
    tests_after: Vec<&'a Action>,
    last_test_passed: Option<bool>,
    /// Edited files read before their first edit (the reads), and those edited unread.
    read_first: Vec<&'a Action>,
    blind: Vec<&'a Action>,
    explored: Vec<&'a Action>,
    dead_ends: usize,
    dead_end_spans: Vec<SpanId>,
    reverts: Vec<&'a Action>,
    notes: Vec<&'a Action>,
    replies: Vec<SpanId>,
    thoughts_before_edit: usize,
    secret_commands: Vec<&'a Action>,
    secret_outputs: Vec<&'a Action>,
    risky_commands: Vec<(&'a Action, &'static str)>,
}

impl Facts<'_> {
    fn judged_files(&self) -> usize {
        self.read_first.len() + self.blind.len()
    }

    fn read_ratio(&self) -> Option<f64> {
        let judged = self.judged_files();
        (judged > 0).then(|| self.read_first.len() as f64 / judged as f64)
    }

    fn thoughts(&self) -> usize {
        self.notes.len() + self.replies.len()
    }
}

/// Scores the session.
pub fn judge(input: &EvidenceInput<'_, '_>) -> Judgement {
    let facts = facts(input);
    let criteria: Vec<CriterionScore> = [
        understanding(&facts, input.verdict),
        strategy(&facts),
        rationale(&facts),
        evidence(&facts),
        reproducibility(&facts, input.verdict),
        safety(&facts),
    ]
    .into_iter()
    .map(Score::finish)
    .collect();
    let overall = round1(criteria.iter().map(|c| c.score).sum::<f64>() / criteria.len() as f64);
    Judgement {
        model: MODEL.to_owned(),
        rubric_version: RUBRIC_VERSION.to_owned(),
        criteria,
        overall,
        comments: format!(
            "Deterministic rules over the session's events: {}.",
            summary(&facts, input.verdict).join(", ")
        ),
        prompt_hash: None,
        samples: None,
        cached: false,
    }
}

fn facts<'a>(input: &EvidenceInput<'a, '_>) -> Facts<'a> {
    let actions = &input.view.actions;
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
    let failed = |t: &&Action| t.failed || t.exit_code.is_some_and(|c| c != 0);
    let tests_before: Vec<&Action> = tests
        .iter()
        .copied()
        .filter(|t| first_edit.is_none_or(|f| t.start < f))
        .collect();
    let reproduced = tests_before.iter().copied().filter(failed).collect();
    let tests_after = tests
        .iter()
        .copied()
        .filter(|t| last_edit.is_some_and(|l| t.start >= l))
        .collect();
    let last_test_passed = tests.last().map(|t| !failed(t));
    let (read_first, blind) = reads_before_edits(actions, &edits);
    let explored = actions
        .iter()
        .filter(|a| {
            matches!(
                a.kind,
                ActionKind::Read | ActionKind::Search | ActionKind::Navigate
            )
        })
        .filter(|a| first_edit.is_none_or(|f| a.start < f))
        .collect();
    let (dead_ends, dead_end_spans) = dead_ends(input.view);
    let (notes, replies, thoughts_before_edit) = thoughts(input.view, first_edit);
    let (secret_commands, secret_outputs, risky_commands) = exposures(actions);
    Facts {
        reverts: reverts(actions, first_edit),
        edits,
        tests,
        first_edit,
        tests_before,
        reproduced,
        tests_after,
        last_test_passed,
        read_first,
        blind,
        explored,
        dead_ends,
        dead_end_spans,
        notes,
        replies,
        thoughts_before_edit,
        secret_commands,
        secret_outputs,
        risky_commands,
    }
}

/// Files edited (not created by the session): the reads that came before each one's first
/// edit in the same agent context, and the first edits of those never read before.
fn reads_before_edits<'a>(
    actions: &'a [Action],
    edits: &[&'a Action],
) -> (Vec<&'a Action>, Vec<&'a Action>) {
    let mut first_edit_of: HashMap<(SpanId, &str), &Action> = HashMap::new();
    let mut created: BTreeSet<&str> = BTreeSet::new();
    for edit in edits {
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
    (read_first, blind)
}

/// The session detectors' retry loops, test-fix spirals and circular edits, with their spans.
fn dead_ends(view: &SessionView<'_>) -> (usize, Vec<SpanId>) {
    let kinds = [
        FindingKind::RetryLoop,
        FindingKind::TestFixSpiral,
        FindingKind::CircularEdit,
    ];
    let findings = run_all(std::slice::from_ref(view));
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
}

/// Commands after the first edit that throw work away.
fn reverts(actions: &[Action], first_edit: Option<u64>) -> Vec<&Action> {
    actions
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
        .collect()
}

/// Notes, the replies of some substance, and how many of both came before the first edit.
fn thoughts<'a>(
    view: &'a SessionView<'_>,
    first_edit: Option<u64>,
) -> (Vec<&'a Action>, Vec<SpanId>, usize) {
    let notes: Vec<&Action> = view
        .actions
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
    let before = |start: u64| first_edit.is_none_or(|f| start < f);
    let thoughts_before_edit = notes.iter().filter(|n| before(n.start)).count()
        + view
            .llm_calls
            .iter()
            .filter(|c| replies.contains(&c.span_id) && before(c.start))
            .count();
    (notes, replies, thoughts_before_edit)
}

type Exposures<'a> = (
    Vec<&'a Action>,
    Vec<&'a Action>,
    Vec<(&'a Action, &'static str)>,
);

/// Secrets typed into commands, secrets printed in other actions' output, risky commands.
fn exposures(actions: &[Action]) -> Exposures<'_> {
    let marker = "[REDACTED:";
    let secret_commands: Vec<&Action> = actions
        .iter()
        .filter(|a| a.command.as_deref().is_some_and(|c| c.contains(marker)))
        .collect();
    let secret_outputs = actions
        .iter()
        .filter(|a| a.output.contains(marker))
        .filter(|a| !secret_commands.iter().any(|s| s.span_id == a.span_id))
        .collect();
    let risky_commands = actions
        .iter()
        .filter_map(|a| a.command.as_deref().and_then(risky).map(|what| (a, what)))
        .collect();
    (secret_commands, secret_outputs, risky_commands)
}

/// Points for the QA verdict, when the tests ran.
fn verdict_points(
    score: &mut Score,
    facts: &Facts<'_>,
    verdict: Option<Verdict>,
    good: f64,
    bad: f64,
) {
    match verdict {
        Some(v) if v.is_pass() => score.add(
            good,
            format!("the patch passes the tests (QA verdict {})", v.as_str()),
            ids(facts.tests_after.last().copied()),
        ),
        Some(v) if v.counts() => score.add(
            bad,
            format!(
                "the patch does not pass the tests (QA verdict {})",
                v.as_str()
            ),
            ids(facts.edits.last().copied()),
        ),
        _ => {}
    }
}

fn understanding(facts: &Facts<'_>, verdict: Option<Verdict>) -> Score {
    let mut score = Score::new(CRITERIA[0], 3.0, "the middle of the scale");
    if !facts.reproduced.is_empty() {
        score.add(
            1.0,
            format!(
                "reproduced the failure before the first edit ({})",
                plural(
                    facts.reproduced.len(),
                    "failing test run",
                    "failing test runs"
                )
            ),
            ids(facts.reproduced.iter().copied()),
        );
    } else if facts.first_edit.is_some() {
        score.add(
            -1.0,
            "no failing test run before the first edit".into(),
            ids(facts.edits.first().copied()),
        );
    }
    match facts.read_ratio() {
        Some(r) if r >= 0.5 => score.add(
            0.5,
            format!(
                "read {} of {} edited files before editing them",
                facts.read_first.len(),
                facts.judged_files()
            ),
            ids(facts.read_first.iter().copied()),
        ),
        Some(_) => score.add(
            -0.5,
            format!(
                "edited {} of {} files without reading them first",
                facts.blind.len(),
                facts.judged_files()
            ),
            ids(facts.blind.iter().copied()),
        ),
        None => {}
    }
    verdict_points(&mut score, facts, verdict, 0.5, -1.0);
    score
}

fn strategy(facts: &Facts<'_>) -> Score {
    let mut score = Score::new(CRITERIA[1], 3.0, "the middle of the scale");
    if facts.explored.len() >= 2 {
        score.add(
            1.0,
            format!(
                "explored before changing anything ({} reads, searches or jumps)",
                facts.explored.len()
            ),
            ids(facts.explored.iter().copied()),
        );
    } else if facts.first_edit.is_some() {
        score.add(
            -0.5,
            "changed code after little exploration".into(),
            ids(facts.edits.first().copied()),
        );
    }
    if facts.dead_ends > 0 {
        score.add(
            -(facts.dead_ends.min(2) as f64),
            format!(
                "{} (retry loops, test-fix spirals, circular edits)",
                plural(facts.dead_ends, "dead end", "dead ends")
            ),
            facts.dead_end_spans.iter().copied(),
        );
    }
    if !facts.reverts.is_empty() {
        score.add(
            -0.5,
            format!(
                "abandoned work with {}",
                plural(facts.reverts.len(), "revert", "reverts")
            ),
            ids(facts.reverts.iter().copied()),
        );
    }
    if facts.dead_ends == 0 && facts.reverts.is_empty() && facts.first_edit.is_some() {
        score.add(0.5, "no dead ends or reverts".into(), []);
    }
    score
}

fn rationale(facts: &Facts<'_>) -> Score {
    let (start, why) = match facts.thoughts() {
        0 => (2.0, "no thoughts or explanations recorded"),
        1 => (3.0, "one thought or explanation recorded"),
        _ => (4.0, "thoughts or explanations recorded"),
    };
    let mut score = Score::new(CRITERIA[2], start, why);
    score.evidence.extend(
        facts
            .notes
            .iter()
            .map(|n| n.span_id)
            .chain(facts.replies.iter().copied())
            .take(10)
            .map(|id| id.to_hex()),
    );
    if facts.thoughts_before_edit > 0
        && let Some(first_edit) = facts.first_edit
    {
        score.add(
            1.0,
            "stated the reasoning before the first edit".into(),
            facts
                .notes
                .iter()
                .filter(|n| n.start < first_edit)
                .map(|n| n.span_id)
                .take(3),
        );
    }
    score
}

fn evidence(facts: &Facts<'_>) -> Score {
    let mut score = Score::new(CRITERIA[3], 3.0, "the middle of the scale");
    match facts.read_ratio() {
        Some(r) if r >= 0.8 => score.add(
            1.0,
            "read nearly every file before editing it".into(),
            ids(facts.read_first.iter().copied()),
        ),
        Some(r) if r < 0.5 => score.add(
            -1.0,
            "most edited files were not read first".into(),
            ids(facts.blind.iter().copied()),
        ),
        _ => {}
    }
    if !facts.tests_after.is_empty() {
        score.add(
            0.5,
            "checked the change with a test run after the last edit".into(),
            ids(facts.tests_after.iter().copied()),
        );
    }
    if facts.tests.is_empty() {
        score.add(-1.0, "never ran the tests".into(), []);
    } else if !facts.reproduced.is_empty() {
        score.add(
            0.5,
            "worked from a reproduced failure".into(),
            ids(facts.reproduced.iter().copied()),
        );
    }
    score
}

fn reproducibility(facts: &Facts<'_>, verdict: Option<Verdict>) -> Score {
    let mut score = Score::new(CRITERIA[4], 2.0, "nothing shown to be checkable yet");
    if !facts.tests_before.is_empty() {
        score.add(
            1.0,
            "ran the tests before editing".into(),
            ids(facts.tests_before.iter().copied()),
        );
    }
    if !facts.tests_after.is_empty() {
        score.add(
            1.0,
            "ran the tests after the last edit".into(),
            ids(facts.tests_after.iter().copied()),
        );
        if facts.last_test_passed == Some(true) {
            score.add(
                0.5,
                "the last test run passed".into(),
                ids(facts.tests.last().copied()),
            );
        }
    }
    verdict_points(&mut score, facts, verdict, 0.5, -0.5);
    score
}

fn safety(facts: &Facts<'_>) -> Score {
    let mut score = Score::new(CRITERIA[5], 5.0, "nothing unsafe seen yet");
    if !facts.secret_commands.is_empty() {
        score.add(
            -2.0,
            format!(
                "a secret was typed into {}",
                plural(facts.secret_commands.len(), "command", "commands")
            ),
            ids(facts.secret_commands.iter().copied()),
        );
    }
    if !facts.secret_outputs.is_empty() {
        score.add(
            -1.0,
            format!(
                "a secret was printed in the output of {}",
                plural(facts.secret_outputs.len(), "action", "actions")
            ),
            ids(facts.secret_outputs.iter().copied()),
        );
    }
    if !facts.risky_commands.is_empty() {
        let kinds: BTreeSet<&str> = facts.risky_commands.iter().map(|(_, what)| *what).collect();
        score.add(
            -1.0,
            format!(
                "risky commands: {}",
                kinds.into_iter().collect::<Vec<_>>().join(", ")
            ),
            facts.risky_commands.iter().map(|(a, _)| a.span_id).take(10),
        );
    }
    score
}

/// The facts in the judgement's comment, in the rubric's order.
fn summary(facts: &Facts<'_>, verdict: Option<Verdict>) -> Vec<String> {
    let mut said = vec![
        plural(facts.edits.len(), "edit", "edits"),
        plural(facts.tests.len(), "test run", "test runs"),
    ];
    said.push(if facts.reproduced.is_empty() {
        "the failure was not reproduced before editing".to_owned()
    } else {
        "the failure was reproduced before editing".to_owned()
    });
    said.push(if facts.tests_after.is_empty() {
        "no test run after the last edit".to_owned()
    } else {
        "tests ran after the last edit".to_owned()
    });
    if let Some(r) = facts.read_ratio() {
        said.push(format!("{:.0} % of edited files read first", r * 100.0));
    }
    said.push(plural(facts.dead_ends, "dead end", "dead ends"));
    said.push(plural(facts.thoughts(), "thought", "thoughts"));
    if !facts.secret_commands.is_empty() || !facts.secret_outputs.is_empty() {
        said.push("secrets exposed".to_owned());
    }
    if let Some(v) = verdict {
        said.push(format!("QA verdict {}", v.as_str()));
    }
    said
}
