//! One session as data: its timeline (turns, the agent's replies, sub-agents, tool calls with
//! outcome, edits as diffs, commands with output, notes), its findings placed on the entry
//! where each became evident, the `devtrace run` traces its commands made, and its numbers.

use super::analysis::{analyse, load, runs_between, text};
use super::list::{SessionItem, UsageDay, add_usage, days, item};
use super::recorded::{RecordedFacts, recorded_facts};
use super::resolve::resolve_session;
use super::tokens::{RequestRow, TokenTotals, request_rows, settings};
use crate::scope::QueryError;
use crate::text::truncate;
use devtrace_analyze::Finding;
use devtrace_analyze::session::{Action, ActionKind, RunFacts, SessionView, link_runs};
use devtrace_model::session::session_role;
use devtrace_model::time::format_rfc3339;
use devtrace_model::{AnyValue, Span, SpanId, semconv};
use devtrace_store::metrics::UsageQuery;
use devtrace_store::{SessionSummary, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One line of a session's timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// `turn`, `tool`, `event` (an IDE event), `agent` (a sub-agent starting) or `message`
    /// (the agent's text reply).
    pub kind: &'static str,
    pub span_id: String,
    pub start: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    /// 0 for the main agent; one more per sub-agent level.
    pub depth: usize,
    /// The sub-agent whose step this is: the `span_id` of its `agent` entry (absent for the
    /// main agent's steps). Sub-agents running at once interleave in time order; this says
    /// whose each step is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subagent: Option<String>,
    /// The turn's prompt, the sub-agent's type, the tool (`Bash`, `Edit`, `terminal_command`),
    /// or the first line of a reply.
    pub label: String,
    /// `read`, `edit`, `write`, `command`, … (tools and events).
    pub action: Option<String>,
    pub path: Option<String>,
    pub command: Option<String>,
    pub exit_code: Option<i64>,
    /// `ok` or `failed` (tools and events).
    pub outcome: Option<&'static str>,
    pub error: Option<String>,
    /// Input and output tokens of the LLM calls in a turn.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Traces of `devtrace run` executions this command ran.
    pub linked_runs: Vec<String>,
    /// Indices into [`SessionOverview::findings`] of the findings this entry is evidence of
    /// (listed on the entry where the pattern became evident: its last piece of evidence).
    pub findings: Vec<usize>,
    /// The prompt (turn, sub-agent), the reply (message) or the note (a `thought` event), as
    /// stored: whole up to 4 KiB, else its head and tail (the whole in the blob `text_ref`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_ref: Option<String>,
    /// A note's tags.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// What an edit, write or patch changed, as unified-diff lines (`-`, `+`, ` `, `@@`),
    /// at most 256 KiB; a write's whole content is all additions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// The tool's input (JSON, as stored) when its path, command or diff does not already say
    /// what it did (searches, plans, sub-agent tasks, web requests, other tools).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The output as stored: whole up to 4 KiB, else its first 3 KiB and last 1 KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// The whole output's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// The blob holding the whole output when `output` is cut (`GET /api/v1/blobs/{hash}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_ref: Option<String>,
}

impl TimelineEntry {
    /// An entry for `span` with nothing but its times filled in.
    fn at(kind: &'static str, span: &Span, depth: usize, label: String) -> Self {
        Self {
            kind,
            span_id: span.span_id.to_hex(),
            start: format_rfc3339(span.start_unix_nano),
            start_unix_nano: span.start_unix_nano,
            duration_ns: span.duration_nanos(),
            depth,
            subagent: None,
            label,
            action: None,
            path: None,
            command: None,
            exit_code: None,
            outcome: None,
            error: None,
            input_tokens: None,
            output_tokens: None,
            linked_runs: Vec::new(),
            findings: Vec::new(),
            text: None,
            text_ref: None,
            tags: Vec::new(),
            diff: None,
            input: None,
            output: None,
            output_bytes: None,
            output_ref: None,
        }
    }
}

/// A recorded run linked to a tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkedRun {
    pub tool_span_id: String,
    pub trace_id: String,
    pub command: String,
    pub exit_code: Option<i64>,
    pub duration_ns: u64,
}

/// A session: its numbers, its timeline, its findings, the runs it did.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionOverview {
    pub session: SessionItem,
    pub git_branch: Option<String>,
    pub repository: Option<String>,
    pub agent_version: Option<String>,
    /// What the session was assembled from: `transcript`, `telemetry` (the agent's own
    /// OpenTelemetry events), `hooks`, `trace-1.0.0`.
    pub sources: Vec<String>,
    /// What a session known only from the agent's telemetry lacks next to a transcript
    /// (empty otherwise): `prompt text`, `replies`, `tool inputs`, `tool outputs`,
    /// `file contents`, `the working directory`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lacks: Vec<String>,
    /// The agent's metrics for the session per UTC day (one day for most sessions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub usage_by_day: Vec<UsageDay>,
    /// What a session sent as a `trace-1.0.0` document (a developer's recorded session) says
    /// beyond its events: the task, the final patch, the test results. `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedFacts>,
    pub timeline: Vec<TimelineEntry>,
    /// Every model request: tokens by kind, context size, cache share, cost, cache breaks.
    pub requests: Vec<RequestRow>,
    pub findings: Vec<Finding>,
    pub linked_runs: Vec<LinkedRun>,
}

/// Where a session's spans came from, and what the agent's telemetry alone leaves out.
fn sources_and_lacks(
    spans: &[Span],
    view: &SessionView,
    project: &str,
) -> (Vec<String>, Vec<String>) {
    let flag = |span: &Span, key: &str| span.attr(key) == Some(&AnyValue::Bool(true));
    let root = view.root.map(|r| &spans[r]);
    let mut sources = Vec::new();
    match root
        .and_then(|r| text(r, semconv::SESSION_SOURCE))
        .as_deref()
    {
        Some("transcript") => sources.push("transcript".to_owned()),
        Some(other) => sources.push(other.to_owned()),
        None => {}
    }
    let telemetry = spans
        .iter()
        .any(|s| flag(s, semconv::SESSION_FROM_TELEMETRY));
    if telemetry {
        sources.push("telemetry".to_owned());
    }
    if root.is_some_and(|r| {
        r.events
            .iter()
            .any(|e| e.name == semconv::SESSION_HOOK_EVENT)
    }) || spans.iter().any(|s| {
        s.events
            .iter()
            .any(|e| e.name == semconv::SESSION_HOOK_EVENT)
    }) {
        sources.push("hooks".to_owned());
    }
    if !telemetry || sources.iter().any(|s| s != "telemetry") {
        return (sources, Vec::new());
    }
    let with_role =
        |role: &'static str| spans.iter().filter(move |s| session_role(s) == Some(role));
    let mut lacks = Vec::new();
    if with_role(semconv::SESSION_SPAN_TURN).all(|t| text(t, semconv::SESSION_PROMPT).is_none()) {
        lacks.push("prompt text");
    }
    if with_role(semconv::SESSION_SPAN_CHAT).all(|c| text(c, semconv::SESSION_RESPONSE).is_none()) {
        lacks.push("replies");
    }
    let tools: Vec<&Span> = with_role(semconv::SESSION_SPAN_TOOL).collect();
    if tools
        .iter()
        .any(|t| flag(t, semconv::SESSION_INPUT_WITHHELD))
    {
        lacks.push("tool inputs");
    }
    if !tools.is_empty()
        && tools
            .iter()
            .all(|t| text(t, semconv::SESSION_OUTPUT).is_none())
    {
        lacks.push("tool outputs");
    }
    if view
        .actions
        .iter()
        .any(|a| a.kind.changes_files() && a.hash_after.is_none())
    {
        lacks.push("file contents");
    }
    if project.is_empty() {
        lacks.push("the working directory");
    }
    (sources, lacks.into_iter().map(str::to_owned).collect())
}

/// One session as a timeline with its findings inline and the runs it did.
pub fn session_overview(store: &dyn Store, id: &str) -> Result<SessionOverview, QueryError> {
    let trace_id = resolve_session(store, id)?;
    let summary = store
        .session(trace_id)?
        // A trace that is not a session: `resolve::no_session` tells the two apart.
        .ok_or_else(|| QueryError::Store(StoreError::TraceNotFound(id.trim().to_owned())))?;
    let trace = load(store, trace_id)?
        .ok_or_else(|| QueryError::Store(StoreError::TraceNotFound(id.to_owned())))?;
    let view = SessionView::new(&trace);
    let (findings, analysis) = analyse(store, &view, &settings()?);
    let requests = request_rows(&view, &analysis);
    let spans = &trace.spans.spans;
    let (runs_of, linked_runs) = linked_runs(store, &summary, &view)?;
    let timeline = timeline(store, spans, &view, &findings, runs_of)?;
    let root = view.root.map(|r| &spans[r]);
    let (sources, lacks) = sources_and_lacks(spans, &view, &summary.facts.project);
    let mut session = item(&summary, findings.len());
    session.tokens = Some(TokenTotals::of(&analysis));
    add_usage(store, std::slice::from_mut(&mut session))?;
    let usage_by_day = if session.usage.is_some() {
        days(store.usage(
            &UsageQuery {
                sessions: Some(vec![trace_id]),
                ..Default::default()
            },
            true,
        )?)
    } else {
        Vec::new()
    };
    Ok(SessionOverview {
        session,
        git_branch: root.and_then(|r| text(r, semconv::SESSION_GIT_BRANCH)),
        repository: root.and_then(|r| text(r, semconv::SESSION_REPOSITORY)),
        agent_version: root.and_then(|r| text(r, semconv::SESSION_AGENT_VERSION)),
        sources,
        lacks,
        usage_by_day,
        recorded: recorded_facts(store, spans, &view)?,
        timeline,
        requests,
        findings,
        linked_runs,
    })
}

/// The runs each tool call made (hex trace ids), by the tool call's span id.
type RunsOf = HashMap<SpanId, Vec<String>>;

/// The recorded runs the session's commands made: by the tool call that made them (hex trace
/// ids), and as a list.
fn linked_runs(
    store: &dyn Store,
    summary: &SessionSummary,
    view: &SessionView,
) -> Result<(RunsOf, Vec<LinkedRun>), StoreError> {
    let runs = runs_between(
        store,
        summary.facts.start_unix_nano,
        summary.facts.end_unix_nano,
    )?;
    let facts: Vec<RunFacts> = runs.iter().map(|(f, _)| f.clone()).collect();
    let links = link_runs(&view.actions, &facts);
    let mut runs_of = RunsOf::new();
    let mut linked_runs = Vec::new();
    for (tool, run_trace) in &links {
        runs_of.entry(*tool).or_default().push(run_trace.to_hex());
        if let Some((run, exit)) = runs.iter().find(|(r, _)| r.trace_id == *run_trace) {
            linked_runs.push(LinkedRun {
                tool_span_id: tool.to_hex(),
                trace_id: run_trace.to_hex(),
                command: run.command.clone(),
                exit_code: *exit,
                duration_ns: run.end.saturating_sub(run.start),
            });
        }
    }
    Ok((runs_of, linked_runs))
}

/// Where each span sits in the session's tree: its sub-agent depth and the turn above it.
struct Tree<'a> {
    spans: &'a [Span],
    index: HashMap<SpanId, usize>,
}

impl<'a> Tree<'a> {
    fn new(spans: &'a [Span]) -> Self {
        let index = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        Self { spans, index }
    }

    /// The spans above span `i`, nearest first (bounded, should a record hold a parent loop).
    fn ancestors(&self, mut i: usize) -> impl Iterator<Item = usize> + '_ {
        let mut guard = 0;
        std::iter::from_fn(move || {
            let parent = self.spans[i]
                .parent_span_id
                .and_then(|p| self.index.get(&p))
                .copied()?;
            guard += 1;
            if guard > self.spans.len() {
                return None;
            }
            i = parent;
            Some(parent)
        })
    }

    /// Sub-agent nesting of span `i`.
    fn depth(&self, i: usize) -> usize {
        self.ancestors(i)
            .filter(|p| session_role(&self.spans[*p]) == Some(semconv::SESSION_SPAN_AGENT))
            .count()
    }

    /// The nearest sub-agent above span `i`, as its span id.
    fn subagent(&self, i: usize) -> Option<String> {
        self.ancestors(i)
            .find(|p| session_role(&self.spans[*p]) == Some(semconv::SESSION_SPAN_AGENT))
            .map(|p| self.spans[p].span_id.to_hex())
    }

    /// The turn span `i` belongs to.
    fn turn(&self, i: usize) -> Option<usize> {
        self.ancestors(i)
            .find(|p| session_role(&self.spans[*p]) == Some(semconv::SESSION_SPAN_TURN))
    }

    /// Each finding's index, keyed by its last piece of evidence (where it is shown).
    fn findings_at(&self, findings: &[Finding]) -> HashMap<SpanId, Vec<usize>> {
        let mut findings_at: HashMap<SpanId, Vec<usize>> = HashMap::new();
        for (i, finding) in findings.iter().enumerate() {
            let last = finding
                .evidence
                .iter()
                .flat_map(|e| e.span_ids.iter())
                .filter_map(|s| {
                    self.index
                        .get(s)
                        .map(|i| (self.spans[*i].end_unix_nano, *s))
                })
                .max();
            if let Some((_, span_id)) = last {
                findings_at.entry(span_id).or_default().push(i);
            }
        }
        findings_at
    }
}

/// The timeline in time order: turns (with the tokens of the LLM calls under each), the agent's
/// replies, sub-agents and actions, each finding on its last piece of evidence.
fn timeline(
    store: &dyn Store,
    spans: &[Span],
    view: &SessionView,
    findings: &[Finding],
    mut runs_of: RunsOf,
) -> Result<Vec<TimelineEntry>, StoreError> {
    let tree = Tree::new(spans);
    let mut findings_at = tree.findings_at(findings);
    let mut tokens: HashMap<usize, (u64, u64)> = HashMap::new();
    for call in &view.llm_calls {
        if let Some(turn) = tree.turn(call.span) {
            let entry = tokens.entry(turn).or_default();
            entry.0 += call.input_tokens;
            entry.1 += call.output_tokens;
        }
    }
    let mut timeline = Vec::new();
    for &turn in &view.turns {
        let span = &spans[turn];
        let (input, output) = tokens.get(&turn).copied().unwrap_or_default();
        let prompt = text(span, semconv::SESSION_PROMPT).unwrap_or_default();
        let mut entry = TimelineEntry::at(
            "turn",
            span,
            0,
            devtrace_model::session::prompt_title(&prompt),
        );
        entry.input_tokens = Some(input);
        entry.output_tokens = Some(output);
        entry.findings = findings_at.remove(&span.span_id).unwrap_or_default();
        entry.text = (!prompt.is_empty()).then_some(prompt);
        entry.text_ref = text(span, semconv::SESSION_INPUT_REF);
        timeline.push(entry);
    }
    for (i, span) in spans.iter().enumerate() {
        if let Some(mut entry) = agent_or_reply(span, tree.depth(i)) {
            entry.subagent = tree.subagent(i);
            entry.findings = findings_at.remove(&span.span_id).unwrap_or_default();
            timeline.push(entry);
        }
    }
    for action in &view.actions {
        let span = &spans[action.span];
        let mut entry = action_entry(store, span, action, tree.depth(action.span))?;
        entry.subagent = tree.subagent(action.span);
        entry.linked_runs = runs_of.remove(&action.span_id).unwrap_or_default();
        entry.findings = findings_at.remove(&action.span_id).unwrap_or_default();
        timeline.push(entry);
    }
    // Time order; at equal times a turn before its work, a sub-agent before its tools.
    let rank = |kind: &str| match kind {
        "turn" => 0,
        "message" => 1,
        "agent" => 2,
        _ => 1,
    };
    timeline.sort_by_key(|e| (e.start_unix_nano, rank(e.kind)));
    Ok(timeline)
}

/// A sub-agent's entry, or the agent's reply (a chat span with a response); `None` for other
/// spans.
fn agent_or_reply(span: &Span, depth: usize) -> Option<TimelineEntry> {
    match session_role(span) {
        Some(semconv::SESSION_SPAN_AGENT) => {
            let label = text(span, semconv::SESSION_TITLE)
                .or_else(|| text(span, semconv::SESSION_SUBAGENT_TYPE))
                .unwrap_or_else(|| span.name.clone());
            let mut entry = TimelineEntry::at("agent", span, depth, label);
            entry.text = text(span, semconv::SESSION_PROMPT);
            entry.text_ref = text(span, semconv::SESSION_INPUT_REF);
            Some(entry)
        }
        Some(semconv::SESSION_SPAN_CHAT) => {
            let reply = text(span, semconv::SESSION_RESPONSE)?;
            let first = reply.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let mut entry = TimelineEntry::at("message", span, depth, truncate(first.trim(), 120));
            entry.text = Some(reply);
            Some(entry)
        }
        _ => None,
    }
}

/// An action's entry (a tool call, or a developer's command, edit or note): what it did, its
/// outcome and output, an edit's diff, a note's text and tags.
fn action_entry(
    store: &dyn Store,
    span: &Span,
    action: &Action,
    depth: usize,
) -> Result<TimelineEntry, StoreError> {
    let kind = if session_role(span) == Some(semconv::SESSION_SPAN_EVENT) {
        "event"
    } else {
        "tool"
    };
    let mut entry = TimelineEntry::at(kind, span, depth, action.tool.clone());
    entry.start = format_rfc3339(action.start);
    entry.start_unix_nano = action.start;
    entry.duration_ns = action.duration();
    entry.action = Some(action_name(action.kind).to_owned());
    entry.path = action.path.clone();
    entry.command = action.command.clone();
    entry.exit_code = action.exit_code;
    entry.outcome = Some(if action.failed { "failed" } else { "ok" });
    entry.error = (!action.error.is_empty()).then(|| action.error.clone());
    entry.output = text(span, semconv::SESSION_OUTPUT);
    entry.output_bytes = span
        .attr(semconv::SESSION_OUTPUT_BYTES)
        .and_then(AnyValue::as_i64)
        .map(|b| b.max(0) as u64);
    entry.output_ref = text(span, semconv::SESSION_OUTPUT_REF);
    match action.kind {
        ActionKind::Edit | ActionKind::Write | ActionKind::Patch => {
            entry.diff = edit_diff(store, span)?;
        }
        ActionKind::Note => {
            entry.text = text(span, semconv::SESSION_NOTE);
            entry.text_ref = text(span, semconv::SESSION_INPUT_REF);
            entry.tags = span
                .attr(semconv::SESSION_NOTE_TAGS)
                .map(|tags| match tags {
                    AnyValue::Array(items) => items
                        .iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect(),
                    other => vec![other.to_display_string()],
                })
                .unwrap_or_default();
        }
        ActionKind::Read | ActionKind::Command => {}
        _ => entry.input = text(span, semconv::SESSION_INPUT),
    }
    Ok(entry)
}

/// What an edit changed: its recorded patch, else the diff its tool input describes (read
/// from the input's blob when the stored input is cut).
fn edit_diff(store: &dyn Store, span: &Span) -> Result<Option<String>, StoreError> {
    let whole = |key: &str| -> Result<Option<String>, StoreError> {
        let Some(stored) = text(span, key) else {
            return Ok(None);
        };
        // A cut value keeps its head and tail around this marker; the blob holds all of it.
        if !stored.contains(" bytes omitted) …") {
            return Ok(Some(stored));
        }
        let blob = text(span, semconv::SESSION_INPUT_REF)
            .and_then(|r| crate::blobs::parse_hash(&r))
            .map(|hash| store.blob(&hash))
            .transpose()?
            .flatten();
        Ok(Some(match blob {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => stored,
        }))
    };
    if let Some(patch) = whole(semconv::SESSION_PATCH)? {
        return Ok(Some(crate::diff::from_patch(&patch)));
    }
    Ok(whole(semconv::SESSION_INPUT)?.and_then(|input| crate::diff::from_tool_input(&input)))
}

fn action_name(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Read => "read",
        ActionKind::Edit => "edit",
        ActionKind::Write => "write",
        ActionKind::Patch => "patch",
        ActionKind::Command => "command",
        ActionKind::Search => "search",
        ActionKind::Task => "task",
        ActionKind::Plan => "plan",
        ActionKind::Web => "web",
        ActionKind::Navigate => "navigate",
        ActionKind::Note => "note",
        ActionKind::Other => "other",
    }
}
