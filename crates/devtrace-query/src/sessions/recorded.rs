//! A person's recorded session (`devtrace record`, a `trace-1.0.0` document): its task, final
//! patch and tests read back from the stored document, its activity counted from the
//! timeline, and the words listings and overviews say them in.

use super::analysis::{load, text};
use super::words::count;
use crate::text::{TextOptions, truncate};
use devtrace_analyze::session::{ActionKind, SessionView};
use devtrace_model::{Span, TraceId, semconv};
use devtrace_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// What a person's recorded session did, for listings: who (as stored: a pseudonym unless
/// recorded with `--identify`), their commands, edits and notes, the final patch's size and
/// the tests at the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedSummary {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub developer: Option<String>,
    pub activity: RecordedActivity,
    /// Files the final patch changes, and its added and removed lines.
    pub patch_files: usize,
    pub lines_added: usize,
    pub lines_removed: usize,
    /// `artifacts.test_results`; `None` when no test command ran at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<RecordedTests>,
}

impl RecordedSummary {
    pub(super) fn of(facts: &RecordedFacts) -> Self {
        Self {
            developer: facts.developer.clone(),
            activity: facts.activity.clone(),
            patch_files: facts.patch_files.len(),
            lines_added: facts.lines_added,
            lines_removed: facts.lines_removed,
            tests: facts.test_results.clone(),
        }
    }
}

/// What a person's recorded session did (`devtrace record`, a `trace-1.0.0` document), for a
/// listing that has only the store's session facts; `None` for any other session.
pub fn recorded_summary(
    store: &dyn Store,
    trace_id: TraceId,
) -> Result<Option<RecordedSummary>, StoreError> {
    let Some(trace) = load(store, trace_id)? else {
        return Ok(None);
    };
    let view = SessionView::new(&trace);
    Ok(recorded_facts(store, &trace.spans.spans, &view)?
        .as_ref()
        .map(RecordedSummary::of))
}

/// The task and outcome of a session sent as a `trace-1.0.0` document (`devtrace record`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedFacts {
    /// `task.description`, `task.commit` (where the session started), `task.test_command`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_command: Option<String>,
    /// `developer.name` as stored (redacted or hashed unless recorded with `--identify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub developer: Option<String>,
    /// The commands, edits and notes among its events.
    pub activity: RecordedActivity,
    /// `artifacts.final_patch`: the diff from the start commit to the working tree at the
    /// end, whole up to [`FINAL_PATCH_SHOWN`] bytes (cut at a line end past that; `devtrace
    /// export --format trace-1.0.0` has all of it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_patch: Option<String>,
    /// The whole patch's size in bytes, and whether `final_patch` is cut.
    pub final_patch_bytes: usize,
    pub final_patch_cut: bool,
    /// The files the patch changes (`diff --git` headers) and its added and removed lines.
    pub patch_files: Vec<String>,
    pub lines_added: usize,
    pub lines_removed: usize,
    /// `artifacts.test_results`: the test command's run when the recording stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_results: Option<RecordedTests>,
}

/// `artifacts.test_results` of a `trace-1.0.0` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedTests {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// The runner whose summary was read (`pytest`, `cargo-test`, …); `None` when none was
    /// recognised (then only the exit code tells) or none is named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    /// The counts are the document's own, with no runner named: a `trace-1.0.0` document
    /// written by another tool gives `{"passed": 5, "failed": 0}` and nothing else, where
    /// `devtrace record` names the runner (empty when it recognised no summary).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub counted_without_runner: bool,
    pub duration_ms: Option<u64>,
}

/// The most of a final patch an overview carries.
pub const FINAL_PATCH_SHOWN: usize = 256 * 1024;

/// The recorded facts of a session sent as a `trace-1.0.0` document (its stored copy, a blob
/// the session span refers to); `None` for other sessions or when the blob is gone.
pub(super) fn recorded_facts(
    store: &dyn Store,
    spans: &[Span],
    view: &SessionView,
) -> Result<Option<RecordedFacts>, StoreError> {
    let Some(hash) = spans.iter().find_map(|s| {
        text(s, semconv::SESSION_DOCUMENT_REF).and_then(|r| crate::blobs::parse_hash(&r))
    }) else {
        return Ok(None);
    };
    let Some(bytes) = store.blob(&hash)? else {
        return Ok(None);
    };
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    let string = |value: &serde_json::Value, key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let task = &doc["task"];
    let artifacts = &doc["artifacts"];
    let patch = artifacts
        .get("final_patch")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let patch_files = patch
        .lines()
        .filter_map(|l| l.strip_prefix("diff --git "))
        .map(|rest| {
            // "a/X b/X": the new name, without its prefix.
            let new = rest.rsplit_once(" b/").map_or(rest, |(_, b)| b);
            new.to_owned()
        })
        .collect();
    let count = |sign: char, header: &str| {
        patch
            .lines()
            .filter(|l| l.starts_with(sign) && !l.starts_with(header))
            .count()
    };
    let final_patch_cut = patch.len() > FINAL_PATCH_SHOWN;
    let shown = if final_patch_cut {
        let mut end = FINAL_PATCH_SHOWN;
        while !patch.is_char_boundary(end) {
            end -= 1;
        }
        &patch[..patch[..end].rfind('\n').map_or(end, |i| i + 1)]
    } else {
        patch
    };
    let test_results = artifacts
        .get("test_results")
        .filter(|r| r.is_object())
        .map(|r| {
            let number = |key: &str| r.get(key).and_then(serde_json::Value::as_u64);
            RecordedTests {
                command: string(r, "command"),
                exit_code: r.get("exit_code").and_then(serde_json::Value::as_i64),
                passed: number("passed").unwrap_or(0),
                failed: number("failed").unwrap_or(0),
                skipped: number("skipped").unwrap_or(0),
                runner: string(r, "runner"),
                counted_without_runner: r.get("runner").is_none()
                    && ["passed", "failed"].iter().any(|key| number(key).is_some()),
                duration_ms: number("duration_ms"),
            }
        });
    Ok(Some(RecordedFacts {
        task: string(task, "description"),
        commit: string(task, "commit"),
        test_command: string(task, "test_command"),
        developer: string(&doc["developer"], "name"),
        activity: recorded_activity(view),
        final_patch: (!patch.is_empty()).then(|| shown.to_owned()),
        final_patch_bytes: patch.len(),
        final_patch_cut,
        patch_files,
        lines_added: count('+', "+++ "),
        lines_removed: count('-', "--- "),
        test_results,
    }))
}

/// What a person's activity in a recorded session adds up to (commands, edits, notes), from
/// its actions (the timeline's entries of those kinds).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordedActivity {
    pub commands: usize,
    pub failed_commands: usize,
    pub edits: usize,
    /// Distinct files among the edits.
    pub files_edited: usize,
    pub notes: usize,
}

pub(super) fn recorded_activity(view: &SessionView) -> RecordedActivity {
    let of = |kind: ActionKind| view.actions.iter().filter(move |a| a.kind == kind);
    let files: std::collections::BTreeSet<&str> = of(ActionKind::Edit)
        .filter_map(|a| a.path.as_deref())
        .collect();
    RecordedActivity {
        commands: of(ActionKind::Command).count(),
        failed_commands: of(ActionKind::Command).filter(|a| a.failed).count(),
        edits: of(ActionKind::Edit).count(),
        files_edited: files.len(),
        notes: of(ActionKind::Note).count(),
    }
}

/// The header lines of a recorded session: its activity, task, final patch and tests.
pub(super) fn recorded_text(recorded: &RecordedFacts, options: &TextOptions) -> String {
    let mut out = activity_words(&recorded.activity);
    out.push('\n');
    if let Some(task) = &recorded.task {
        out.push_str(&format!("task {}\n", options.data(&truncate(task, 200))));
    }
    let mut facts = Vec::new();
    if let Some(commit) = &recorded.commit {
        facts.push(format!("start commit {}", options.data(commit)));
    }
    if let Some(command) = &recorded.test_command {
        facts.push(format!("test command {}", options.data(command)));
    }
    if let Some(developer) = &recorded.developer {
        facts.push(format!("developer {}", options.data(developer)));
    }
    if !facts.is_empty() {
        out.push_str(&facts.join(", "));
        out.push('\n');
    }
    if recorded.final_patch.is_some() {
        let files: Vec<String> = recorded
            .patch_files
            .iter()
            .map(|f| options.data(f))
            .collect();
        out.push_str(&format!(
            "final patch: {}{}{}\n",
            patch_size_words(
                recorded.patch_files.len(),
                recorded.lines_added,
                recorded.lines_removed
            ),
            if files.is_empty() { "" } else { ": " },
            files.join(", ")
        ));
    } else {
        out.push_str("final patch: none recorded\n");
    }
    out.push_str(&format!(
        "tests: {}\n",
        tests_words(recorded.test_results.as_ref(), options)
    ));
    out
}

/// `5 commands (3 failed), 1 edit in 1 file, 1 note`.
pub(super) fn activity_words(activity: &RecordedActivity) -> String {
    format!(
        "{} ({} failed), {} in {}, {}",
        count(activity.commands as u64, "command"),
        activity.failed_commands,
        count(activity.edits as u64, "edit"),
        count(activity.files_edited as u64, "file"),
        count(activity.notes as u64, "note"),
    )
}

/// `1 file (+1 −1)`.
pub(super) fn patch_size_words(files: usize, added: usize, removed: usize) -> String {
    format!("{} (+{added} −{removed})", count(files as u64, "file"))
}

/// `2 passed, 0 failed, 0 skipped ("pytest", exit code 0)`; the counts alone (with the exit
/// code when given) when the document gives them without a runner; the exit code alone when
/// the recorder recognised no summary; or that no test ran.
pub(super) fn tests_words(tests: Option<&RecordedTests>, options: &TextOptions) -> String {
    let Some(tests) = tests else {
        return "not run when the recording stopped".to_owned();
    };
    let exit = tests
        .exit_code
        .map_or_else(|| "?".to_owned(), |c| c.to_string());
    let counts = format!(
        "{} passed, {} failed, {} skipped",
        tests.passed, tests.failed, tests.skipped
    );
    match &tests.runner {
        Some(runner) => format!("{counts} ({}, exit code {exit})", options.data(runner)),
        None if tests.counted_without_runner => match tests.exit_code {
            Some(code) => format!("{counts} (exit code {code})"),
            None => counts,
        },
        None => format!("exit code {exit} (no test summary recognised)"),
    }
}

/// A recorded session in a listing, in a line (after its first): who recorded it and what
/// they did, the final patch and the tests: `recorded by "developer-1a2b…": 5 commands (3
/// failed), 1 edit in 1 file, 1 note; final patch 1 file (+1 −1); tests 2 passed, …`.
pub fn recorded_summary_line(recorded: &RecordedSummary, options: &TextOptions) -> String {
    let who = recorded
        .developer
        .as_deref()
        .map(|d| format!(" by {}", options.data(d)))
        .unwrap_or_default();
    let patch = if recorded.patch_files == 0 {
        "no final patch".to_owned()
    } else {
        format!(
            "final patch {}",
            patch_size_words(
                recorded.patch_files,
                recorded.lines_added,
                recorded.lines_removed
            )
        )
    };
    format!(
        "recorded{who}: {}; {patch}; tests {}",
        activity_words(&recorded.activity),
        tests_words(recorded.tests.as_ref(), options)
    )
}
