//! A development session read back as a sequence of actions, the form the session detectors
//! and the timeline view work on.
//!
//! It relies only on the session conventions (docs/conventions.md): the span's role
//! (`devtrace.session.span`), what it did (`devtrace.session.action`), file path and content
//! hashes, command, exit code, output; so a Claude Code, Codex or `trace-1.0.0` session reads
//! the same way.

use crate::AnalyzedTrace;
use devtrace_model::session::session_role;
use devtrace_model::{AnyValue, Span, SpanId, semconv};

/// What an action did, from `devtrace.session.action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Read,
    Edit,
    Write,
    /// Applied a patch (its edits are actions of their own).
    Patch,
    Command,
    Search,
    Task,
    Plan,
    Web,
    Navigate,
    Note,
    Other,
}

impl ActionKind {
    pub fn parse(text: &str) -> Self {
        match text {
            "read" => Self::Read,
            "edit" => Self::Edit,
            "write" => Self::Write,
            "patch" => Self::Patch,
            "command" => Self::Command,
            "search" => Self::Search,
            "task" => Self::Task,
            "plan" => Self::Plan,
            "web" => Self::Web,
            "navigate" => Self::Navigate,
            "note" => Self::Note,
            _ => Self::Other,
        }
    }

    /// Changes files: an edit, a write, a patch.
    pub fn changes_files(self) -> bool {
        matches!(self, Self::Edit | Self::Write | Self::Patch)
    }
}

/// One tool call or IDE event.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// Index of the span in the trace.
    pub span: usize,
    pub span_id: SpanId,
    pub kind: ActionKind,
    /// The tool (`Bash`, `Edit`, `shell`, …) or the event type (`terminal_command`, …).
    pub tool: String,
    /// The agent the action belongs to: the sub-agent span, or the session span. Agents do not
    /// share what they have read.
    pub context: SpanId,
    pub path: Option<String>,
    pub command: Option<String>,
    /// The tool's input as recorded (JSON, its head).
    pub input: Option<String>,
    pub cwd: Option<String>,
    pub exit_code: Option<i64>,
    pub failed: bool,
    /// The status message of a failure.
    pub error: String,
    /// The head of the output (inline part): the whole output when it is at most the inline
    /// limit, else its head and tail.
    pub output: String,
    pub output_bytes: u64,
    /// The hash (hex) of the blob holding the whole output, when the span keeps only part of it
    /// (`devtrace.session.output.ref`).
    pub output_ref: Option<String>,
    pub hash_before: Option<String>,
    pub hash_after: Option<String>,
    /// The content hash a read saw (whole-file reads only).
    pub hash_read: Option<String>,
    pub created: bool,
    /// An IDE event (a person's editor or terminal, trace-1.0.0), not an agent's tool call: an
    /// edit saved from an editor was made with the file open in front of them.
    pub ide_event: bool,
    pub start: u64,
    pub end: u64,
}

impl Action {
    pub fn duration(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
}

/// An LLM call of the session: its context and token counts.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmCall {
    pub span: usize,
    pub span_id: SpanId,
    pub context: SpanId,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub start: u64,
}

/// A session trace as actions in time order.
#[derive(Clone, Debug)]
pub struct SessionView<'a> {
    pub trace: &'a AnalyzedTrace,
    /// The session span, when the trace has one.
    pub root: Option<usize>,
    pub actions: Vec<Action>,
    pub llm_calls: Vec<LlmCall>,
    /// Indices of the turn spans, in time order.
    pub turns: Vec<usize>,
}

fn text(span: &Span, key: &str) -> Option<String> {
    span.attr(key)
        .and_then(AnyValue::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn int(span: &Span, key: &str) -> Option<i64> {
    span.attr(key).and_then(AnyValue::as_i64)
}

impl<'a> SessionView<'a> {
    /// The session view of a trace (empty when the trace is not a session).
    pub fn new(trace: &'a AnalyzedTrace) -> Self {
        let spans = &trace.spans.spans;
        let root = spans
            .iter()
            .position(|s| session_role(s) == Some(semconv::SESSION_SPAN_SESSION));
        let root_id = root.map(|r| spans[r].span_id).unwrap_or_default();
        let mut parents: Vec<Option<usize>> = vec![None; spans.len()];
        for (parent, children) in trace.tree.children.iter().enumerate() {
            for child in children {
                parents[*child] = Some(parent);
            }
        }
        // The agent context of a span: its nearest sub-agent ancestor, else the session.
        let context_of = |index: usize| -> SpanId {
            let mut cursor = parents[index];
            while let Some(parent) = cursor {
                if session_role(&spans[parent]) == Some(semconv::SESSION_SPAN_AGENT) {
                    return spans[parent].span_id;
                }
                cursor = parents[parent];
            }
            root_id
        };
        let mut actions = Vec::new();
        let mut llm_calls = Vec::new();
        let mut turns = Vec::new();
        for (index, span) in spans.iter().enumerate() {
            match session_role(span) {
                Some(semconv::SESSION_SPAN_TOOL | semconv::SESSION_SPAN_EVENT) => {
                    let kind = text(span, semconv::SESSION_ACTION)
                        .map_or(ActionKind::Other, |a| ActionKind::parse(&a));
                    let tool = text(span, semconv::GEN_AI_TOOL_NAME)
                        .or_else(|| text(span, semconv::SESSION_EVENT_TYPE))
                        .unwrap_or_else(|| span.name.clone());
                    actions.push(Action {
                        span: index,
                        span_id: span.span_id,
                        kind,
                        tool,
                        context: context_of(index),
                        path: text(span, semconv::SESSION_FILE_PATH),
                        command: text(span, semconv::SESSION_COMMAND),
                        input: text(span, semconv::SESSION_INPUT),
                        cwd: text(span, semconv::SESSION_CWD),
                        exit_code: int(span, semconv::SESSION_EXIT_CODE),
                        failed: span.is_error(),
                        error: span.status.message.clone(),
                        output: text(span, semconv::SESSION_OUTPUT).unwrap_or_default(),
                        output_bytes: int(span, semconv::SESSION_OUTPUT_BYTES)
                            .map_or(0, |b| b.max(0) as u64),
                        output_ref: text(span, semconv::SESSION_OUTPUT_REF),
                        hash_before: text(span, semconv::SESSION_FILE_HASH_BEFORE),
                        hash_after: text(span, semconv::SESSION_FILE_HASH_AFTER),
                        hash_read: text(span, semconv::SESSION_FILE_HASH),
                        created: span
                            .attr(semconv::SESSION_FILE_CREATED)
                            .is_some_and(|v| *v == AnyValue::Bool(true)),
                        ide_event: session_role(span) == Some(semconv::SESSION_SPAN_EVENT),
                        start: span.start_unix_nano,
                        end: span.end_unix_nano,
                    });
                }
                Some(semconv::SESSION_SPAN_CHAT) => llm_calls.push(LlmCall {
                    span: index,
                    span_id: span.span_id,
                    context: context_of(index),
                    input_tokens: int(span, semconv::GEN_AI_USAGE_INPUT_TOKENS)
                        .map_or(0, |t| t.max(0) as u64),
                    output_tokens: int(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS)
                        .map_or(0, |t| t.max(0) as u64),
                    start: span.start_unix_nano,
                }),
                Some(semconv::SESSION_SPAN_TURN) => turns.push(index),
                _ => {}
            }
        }
        // Time order; ties keep the order the spans were stored in (a patch before its edits).
        actions.sort_by_key(|a| a.start);
        llm_calls.sort_by_key(|c| c.start);
        turns.sort_by_key(|t| spans[*t].start_unix_nano);
        Self {
            trace,
            root,
            actions,
            llm_calls,
            turns,
        }
    }

    pub fn is_session(&self) -> bool {
        self.root.is_some()
    }

    /// A root attribute (project, title, agent, …).
    pub fn root_text(&self, key: &str) -> Option<String> {
        self.root.and_then(|r| text(self.trace.span(r), key))
    }
}

/// A recorded `devtrace run`, as far as linking it to a session needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFacts {
    pub trace_id: devtrace_model::TraceId,
    /// `devtrace.run.command`.
    pub command: String,
    /// `devtrace.run.cwd`.
    pub cwd: Option<String>,
    pub start: u64,
    pub end: u64,
}

/// Clock slack when matching a run's time to a tool call's: 2 s (the transcript's times are
/// when lines were written, not when the command started and ended).
pub const LINK_SLACK_NANOS: u64 = 2_000_000_000;

/// Which recorded run each command of a session ran: the same command line (after
/// [`command_key`], so `cd app && devtrace run -- cargo test` runs `cargo test`), the same
/// working directory or one inside it (when both are known), and overlapping time (with
/// [`LINK_SLACK_NANOS`]). When several runs qualify, the one starting closest to the call.
/// Returns (tool call span, run trace) pairs; a run is linked to at most one call.
pub fn link_runs(actions: &[Action], runs: &[RunFacts]) -> Vec<(SpanId, devtrace_model::TraceId)> {
    let mut links = Vec::new();
    let mut taken = std::collections::HashSet::new();
    for action in actions.iter().filter(|a| a.kind == ActionKind::Command) {
        let Some(command) = action.command.as_deref() else {
            continue;
        };
        let key = command_key(command);
        let best = runs
            .iter()
            .filter(|run| !taken.contains(&run.trace_id))
            .filter(|run| {
                let run_key = command_key(&run.command);
                !run_key.is_empty()
                    && (key == run_key
                        || key.ends_with(&format!(" {run_key}"))
                            && command.contains("devtrace run"))
            })
            .filter(|run| match (&action.cwd, &run.cwd) {
                (Some(tool), Some(run)) => {
                    run == tool || run.starts_with(&format!("{}/", tool.trim_end_matches('/')))
                }
                _ => true,
            })
            .filter(|run| {
                run.start <= action.end.saturating_add(LINK_SLACK_NANOS)
                    && run.end.saturating_add(LINK_SLACK_NANOS) >= action.start
            })
            .min_by_key(|run| run.start.abs_diff(action.start));
        if let Some(run) = best {
            taken.insert(run.trace_id);
            links.push((action.span_id, run.trace_id));
        }
    }
    links
}

/// A command line as one would compare it: `cd DIR && ` and `devtrace run … --` prefixes
/// dropped, whitespace collapsed.
pub fn command_key(command: &str) -> String {
    let mut rest = command.trim();
    loop {
        if let Some(after_cd) = rest.strip_prefix("cd ")
            && let Some(i) = after_cd.find("&&")
        {
            rest = after_cd[i + 2..].trim_start();
            continue;
        }
        if let Some(after) = rest.strip_prefix("devtrace run ")
            && let Some(i) = after.find("-- ")
        {
            rest = after[i + 3..].trim_start();
            continue;
        }
        break;
    }
    rest.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command_action(id: u8, command: &str, cwd: &str, start: u64, end: u64) -> Action {
        Action {
            span: 0,
            span_id: SpanId([id; 8]),
            kind: ActionKind::Command,
            tool: "Bash".into(),
            context: SpanId([0; 8]),
            path: None,
            command: Some(command.into()),
            input: None,
            cwd: Some(cwd.into()),
            exit_code: None,
            failed: false,
            error: String::new(),
            output: String::new(),
            output_bytes: 0,
            output_ref: None,
            hash_before: None,
            hash_after: None,
            hash_read: None,
            created: false,
            ide_event: false,
            start,
            end,
        }
    }

    #[test]
    fn runs_link_to_the_command_that_ran_them() {
        const S: u64 = 1_000_000_000;
        let run = |id: u8, command: &str, cwd: &str, start: u64, end: u64| RunFacts {
            trace_id: devtrace_model::TraceId([id; 16]),
            command: command.into(),
            cwd: Some(cwd.into()),
            start,
            end,
        };
        let actions = [
            command_action(
                1,
                "cd app && devtrace run -- cargo test -p core",
                "/repo",
                100 * S,
                130 * S,
            ),
            command_action(2, "cargo test -p core", "/repo/app", 200 * S, 230 * S),
            command_action(3, "cargo test -p core", "/repo/app", 300 * S, 310 * S),
        ];
        let runs = [
            // The run the first call started: cwd inside the call's, time inside.
            run(10, "cargo test -p core", "/repo/app", 101 * S, 129 * S),
            // A run of the same command elsewhere at the same time: another checkout.
            run(11, "cargo test -p core", "/other", 201 * S, 229 * S),
            // Same command and directory, but an hour later.
            run(12, "cargo test -p core", "/repo/app", 3_600 * S, 3_630 * S),
            // The third call's run, recorded by a wrapper: the same command line.
            run(13, "cargo test -p core", "/repo/app", 301 * S, 309 * S),
        ];
        let links = link_runs(&actions, &runs);
        let pairs: Vec<(u8, u8)> = links.iter().map(|(s, t)| (s.0[0], t.0[0])).collect();
        assert_eq!(pairs, [(1, 10), (3, 13)]);
    }

    #[test]
    fn command_keys_drop_the_noise_around_the_command() {
        assert_eq!(command_key("  npm   run build "), "npm run build");
        assert_eq!(
            command_key("cd /repo/app && npm run build"),
            "npm run build"
        );
        assert_eq!(
            command_key("devtrace run --label x -- cargo test -p core"),
            "cargo test -p core"
        );
        assert_eq!(command_key("cd a && cd b && make"), "make");
    }
}
