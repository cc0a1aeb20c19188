//! A session read for QA: its task (repository, commit, test command, image) and its patch.
//!
//! The patch comes from, in order of preference:
//! 1. `artifacts.final_patch` of a `trace-1.0.0` document;
//! 2. the `patch_unified` of the document's `edit` events, applied one after another;
//! 3. an agent session's edits: Claude Code `Edit`, `MultiEdit` and `Write` calls and Codex
//!    `apply_patch` calls that did not fail, in time order, replayed on the checkout
//!    (`replay`). Paths are made relative to the repository (the task's local path
//!    or the session's project directory); edits outside it are skipped and noted.
//!
//! Everything read here was redacted when it was stored: an edit whose text held a secret
//! holds the redaction marker instead, and will not match.

use crate::options::QaOptions;
use crate::result::PatchSource;
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::session::{Action, ActionKind, SessionView};
use devtrace_ingest::sessions::derive_span_id;
use devtrace_model::{AnyValue, Span, StatusCode, TraceId, semconv};
use devtrace_query::blobs::parse_hash;
use devtrace_store::Store;
use serde_json::Value;
use std::path::Path;

/// What the session asks to be checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    pub repository: Option<String>,
    pub commit: Option<String>,
    pub test_command: Option<String>,
    pub test_image: Option<String>,
}

/// One unified diff to apply, from a session event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchPiece {
    pub text: String,
    /// The span id of the event it came from.
    pub event: Option<String>,
}

/// One agent edit to replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentEdit {
    /// The tool call's span id.
    pub event: String,
    pub tool: String,
    /// Relative to the repository's root (for a Codex patch: the directory its paths are
    /// relative to, itself relative to the root, possibly empty).
    pub path: String,
    pub change: EditChange,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditChange {
    /// `old` → `new`, the first occurrence or all; an empty `old` writes `new` as the file.
    Replace {
        old: String,
        new: String,
        all: bool,
    },
    Several(Vec<(String, String, bool)>),
    Write {
        content: String,
    },
    /// A Codex patch (`*** Begin Patch` … `*** End Patch`).
    CodexPatch {
        text: String,
    },
}

/// How to make the session's changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchPlan {
    Unified {
        source: PatchSource,
        pieces: Vec<PatchPiece>,
    },
    Replay {
        edits: Vec<AgentEdit>,
        notes: Vec<String>,
    },
    /// Nothing to apply, and why.
    Missing(String),
}

/// A session loaded for QA.
pub struct LoadedSession {
    pub trace: AnalyzedTrace,
    pub document: Option<Value>,
    pub task: Task,
    pub plan: PatchPlan,
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attr(key)
        .and_then(AnyValue::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A text attribute whole: from its blob when it was cut when stored.
fn whole(store: &dyn Store, span: &Span, key: &str, ref_key: &str) -> Option<String> {
    if let Some(hash) = attr(span, ref_key).as_deref().and_then(parse_hash)
        && let Ok(Some(bytes)) = store.blob(&hash)
    {
        return Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    attr(span, key)
}

/// The stored `trace-1.0.0` document of a session, if it has one.
pub fn document(store: &dyn Store, trace: &AnalyzedTrace) -> Option<Value> {
    let hash = trace.spans.spans.iter().find_map(|s| {
        attr(s, semconv::SESSION_DOCUMENT_REF)
            .as_deref()
            .and_then(parse_hash)
    })?;
    let bytes = store.blob(&hash).ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// Loads the session `trace_id` and works out its task and patch (options override the task).
pub fn load(
    store: &dyn Store,
    trace_id: TraceId,
    options: &QaOptions,
) -> Result<LoadedSession, String> {
    let stored = store
        .get_trace(trace_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no session {} in the store", trace_id.to_hex()))?;
    let trace = AnalyzedTrace::new(trace_id, stored.spans);
    let document = document(store, &trace);
    let view = SessionView::new(&trace);
    if !view.is_session() {
        return Err(format!(
            "trace {} is not a development session",
            trace_id.to_hex()
        ));
    }
    let root = &trace.spans.spans[view.root.expect("a session has a root")];
    let mut task = Task::default();
    if let Some(doc_task) = document.as_ref().and_then(|d| d.get("task")) {
        task.repository = text(doc_task, "repository").map(str::to_owned);
        task.commit = text(doc_task, "commit").map(str::to_owned);
        task.test_command = text(doc_task, "test_command").map(str::to_owned);
        task.test_image = text(doc_task, "test_image").map(str::to_owned);
    } else {
        task.repository = attr(root, semconv::SESSION_REPOSITORY)
            .or_else(|| attr(root, semconv::SESSION_PROJECT));
        task.commit = attr(root, semconv::SESSION_GIT_COMMIT);
        task.test_command = attr(root, semconv::SESSION_TASK_TEST_COMMAND);
    }
    if let Some(repository) = &options.repository {
        task.repository = Some(repository.clone());
    }
    if let Some(commit) = &options.commit {
        task.commit = Some(commit.clone());
    }
    if let Some(command) = &options.test_command {
        task.test_command = Some(command.clone());
    }
    let plan = match &document {
        Some(doc) => document_plan(doc, trace_id),
        None => PatchPlan::Missing(String::new()),
    };
    let plan = match plan {
        PatchPlan::Missing(_) => agent_plan(store, &trace, &view, &task),
        found => found,
    };
    Ok(LoadedSession {
        trace,
        document,
        task,
        plan,
    })
}

/// The patch of a `trace-1.0.0` document: its final patch, else its edit events' diffs.
pub fn document_plan(doc: &Value, trace_id: TraceId) -> PatchPlan {
    if let Some(patch) = doc.get("artifacts").and_then(|a| text(a, "final_patch")) {
        return PatchPlan::Unified {
            source: PatchSource::FinalPatch,
            pieces: vec![PatchPiece {
                text: patch.to_owned(),
                event: None,
            }],
        };
    }
    let pieces: Vec<PatchPiece> = doc
        .get("events")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, e)| text(e, "type") == Some("edit"))
        .filter_map(|(i, e)| {
            text(e, "patch_unified").map(|patch| PatchPiece {
                text: patch.to_owned(),
                event: Some(derive_span_id(trace_id, &["event", &i.to_string()]).to_hex()),
            })
        })
        .collect();
    if pieces.is_empty() {
        PatchPlan::Missing(
            "the document has no artifacts.final_patch and no edit event with patch_unified"
                .to_owned(),
        )
    } else {
        PatchPlan::Unified {
            source: PatchSource::EditEvents,
            pieces,
        }
    }
}

/// `path` relative to `root` (both absolute), when it is inside it.
fn inside(path: &str, root: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return None;
    }
    path.strip_prefix(root)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(str::to_owned)
}

/// Where an agent's edits are: paths are made relative to `root`, the repository when it is
/// a local directory (the project may be a directory inside it), else the project.
struct Roots {
    project: String,
    root: String,
}

impl Roots {
    /// A path an edit names, relative to the root; `None` outside it.
    fn relative(&self, path: &str, cwd: Option<&str>) -> Option<String> {
        if Path::new(path).is_absolute() {
            return inside(path, &self.root);
        }
        let base = cwd.filter(|c| !c.is_empty()).unwrap_or(&self.project);
        let absolute = format!("{}/{path}", base.trim_end_matches('/'));
        inside(&absolute, &self.root).or_else(|| (base == self.root).then(|| path.to_owned()))
    }
}

fn agent_plan(
    store: &dyn Store,
    trace: &AnalyzedTrace,
    view: &SessionView<'_>,
    task: &Task,
) -> PatchPlan {
    let project = view.root_text(semconv::SESSION_PROJECT).unwrap_or_default();
    let root = task
        .repository
        .as_deref()
        .filter(|r| Path::new(r).is_absolute() && !r.contains("://"))
        .map(|r| r.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| project.clone());
    let roots = Roots { project, root };
    let mut edits = Vec::new();
    let mut notes = Vec::new();
    for action in view.actions.iter().filter(|a| a.kind.changes_files()) {
        let span = trace.span(action.span);
        // An edit event of a Codex patch repeats what its patch call does.
        if attr(span, semconv::SESSION_SPAN).as_deref() == Some(semconv::SESSION_SPAN_EVENT) {
            continue;
        }
        match agent_edit(store, span, action, &roots) {
            Ok(edit) => edits.push(edit),
            Err(why) => notes.push(format!(
                "skipped {} call {}: {why}",
                action.tool,
                action.span_id.to_hex()
            )),
        }
    }
    if edits.is_empty() {
        let mut why = "the session has no final patch, no edit events with a diff and no agent edits to replay".to_owned();
        if !notes.is_empty() {
            why.push_str(&format!(" ({})", notes.join("; ")));
        }
        return PatchPlan::Missing(why);
    }
    PatchPlan::Replay { edits, notes }
}

/// The edit one tool call made, or why it cannot be replayed.
fn agent_edit(
    store: &dyn Store,
    span: &Span,
    action: &Action,
    roots: &Roots,
) -> Result<AgentEdit, String> {
    if span.status.code == StatusCode::Error {
        let message = devtrace_model::recorded::quote_short(&span.status.message, 120);
        return Err(format!("it failed ({message})"));
    }
    let input = whole(
        store,
        span,
        semconv::SESSION_INPUT,
        semconv::SESSION_INPUT_REF,
    )
    .ok_or("its input was not recorded")?;
    let event = action.span_id.to_hex();
    if action.kind == ActionKind::Patch {
        return codex_patch(action, &input, roots).map(|(path, text)| AgentEdit {
            event,
            tool: action.tool.clone(),
            path,
            change: EditChange::CodexPatch { text },
        });
    }
    let change = tool_change(&input)?;
    let path = action.path.clone().ok_or("it names no file")?;
    let path = roots
        .relative(&path, action.cwd.as_deref())
        .ok_or_else(|| {
            format!(
                "{} is outside the repository {:?}",
                devtrace_model::recorded::quote_short(&path, 200),
                roots.root
            )
        })?;
    Ok(AgentEdit {
        event,
        tool: action.tool.clone(),
        path,
        change,
    })
}

/// A Codex patch call's patch text and the directory (relative to the root) it ran in.
fn codex_patch(action: &Action, input: &str, roots: &Roots) -> Result<(String, String), String> {
    let value: Value = serde_json::from_str(input).unwrap_or(Value::String(input.to_owned()));
    let patch = match &value {
        Value::String(s) => Some(s.clone()),
        other => text(other, "input")
            .or_else(|| text(other, "patch"))
            .map(str::to_owned),
    };
    let patch = patch
        .filter(|p| p.contains("*** Begin Patch"))
        .ok_or("no patch in its input")?;
    let cwd = action.cwd.clone().unwrap_or_else(|| roots.project.clone());
    let dir = if cwd.trim_end_matches('/') == roots.root {
        Some(String::new())
    } else {
        inside(&cwd, &roots.root)
    };
    let dir =
        dir.ok_or_else(|| format!("it ran in {cwd:?}, outside the repository {:?}", roots.root))?;
    Ok((dir, patch))
}

/// The change an edit or write tool's JSON input describes (Claude Code's Edit, MultiEdit and
/// Write shapes).
fn tool_change(input: &str) -> Result<EditChange, String> {
    let value = serde_json::from_str::<Value>(input).map_err(|_| "its input is not JSON")?;
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let all = |v: &Value| {
        v.get("replace_all")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    if let Some(content) = field(&value, "content") {
        return Ok(EditChange::Write { content });
    }
    if let Some(list) = value.get("edits").and_then(Value::as_array) {
        let edits = list
            .iter()
            .map(|e| {
                (
                    field(e, "old_string").unwrap_or_default(),
                    field(e, "new_string").unwrap_or_default(),
                    all(e),
                )
            })
            .collect();
        return Ok(EditChange::Several(edits));
    }
    match (field(&value, "old_string"), field(&value, "new_string")) {
        (Some(old), Some(new)) => Ok(EditChange::Replace {
            old,
            new,
            all: all(&value),
        }),
        _ => Err("its input has no old_string/new_string, edits or content".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_final_patch_wins_over_edit_events() {
        let id = TraceId([1; 16]);
        let doc = json!({
            "artifacts": {"final_patch": "diff --git a/a b/a\n"},
            "events": [{"t": "x", "type": "edit", "file_path": "a", "patch_unified": "--- a/a\n"}]
        });
        let PatchPlan::Unified { source, pieces } = document_plan(&doc, id) else {
            panic!()
        };
        assert_eq!(source, PatchSource::FinalPatch);
        assert_eq!(pieces[0].event, None);

        let doc = json!({
            "events": [
                {"t": "x", "type": "file_opened", "file_path": "a"},
                {"t": "x", "type": "edit", "file_path": "a", "patch_unified": "one"},
                {"t": "x", "type": "edit", "file_path": "b"},
                {"t": "x", "type": "edit", "file_path": "a", "patch_unified": "two"}
            ]
        });
        let PatchPlan::Unified { source, pieces } = document_plan(&doc, id) else {
            panic!()
        };
        assert_eq!(source, PatchSource::EditEvents);
        let texts: Vec<&str> = pieces.iter().map(|p| p.text.as_str()).collect();
        assert_eq!(texts, ["one", "two"]);
        assert_eq!(
            pieces[1].event.as_deref(),
            Some(derive_span_id(id, &["event", "3"]).to_hex().as_str()),
            "the event's span id, as the timeline shows it"
        );
        assert!(matches!(
            document_plan(&json!({}), id),
            PatchPlan::Missing(_)
        ));
    }

    #[test]
    fn paths_inside_the_root_become_relative() {
        assert_eq!(
            inside("/repo/src/a.js", "/repo").as_deref(),
            Some("src/a.js")
        );
        assert_eq!(
            inside("/repo/src/a.js", "/repo/").as_deref(),
            Some("src/a.js")
        );
        assert_eq!(inside("/repository/a.js", "/repo"), None);
        assert_eq!(inside("/etc/passwd", "/repo"), None);
    }
}
