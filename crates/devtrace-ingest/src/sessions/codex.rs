//! Codex CLI rollouts (`~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`).
//!
//! Each line is `{"timestamp", "type", "payload"}`: `session_meta` (id, cwd, git), a
//! `turn_context` per turn (model), `response_item`s (messages, reasoning, tool calls and their
//! outputs, matched by `call_id`) and `event_msg`s (the user's prompt, token counts). Tool
//! calls: `shell` (argv), `shell_command` and `exec_command` (a command line), `local_shell_call`,
//! and `apply_patch` (a patch: one edit span per file it touches, with hashes of the region
//! before and after so an undone change is recognisable). Token usage comes from `token_count`
//! events, one LLM call each, counted once even when Codex repeats the event.

use super::LineSource;
use super::common::{
    Builder, ChatCall, SessionOutput, SessionRoot, content_hash, derive_span_id, derive_trace_id,
    error_message, head, title_from_prompt, turn_span_id_for_trace,
};
use crate::redact::Redactor;
use devtrace_model::session::session_span_id;
use devtrace_model::time::parse_rfc3339;
use devtrace_model::{KeyValue, SpanId, Status, StatusCode, TraceId, semconv};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub const AGENT: &str = "codex";

/// Imports Codex rollout lines; resumable from its [`state`](CodexImporter::state).
pub struct CodexImporter {
    builder: Builder,
    state: CodexState,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CodexState {
    /// Sessions by id (a rollout normally holds one).
    sessions: BTreeMap<String, SessionState>,
    /// The session the following lines belong to (set by `session_meta`).
    current: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SessionState {
    trace_id: TraceId,
    first_ns: u64,
    last_ns: u64,
    cwd: String,
    version: String,
    branch: String,
    commit: String,
    repository: String,
    title: String,
    model: String,
    turns: u32,
    turn: Option<(SpanId, u64)>,
    last_activity_ns: u64,
    /// The last `total_token_usage.total_tokens` seen: a repeated `token_count` is not a new call.
    last_total_tokens: u64,
    pending_response: String,
    /// Tool calls made since the last `token_count`: the calls of the response it counts.
    #[serde(default)]
    pending_calls: Vec<String>,
    open_calls: HashMap<String, OpenCall>,
    dirty: bool,
    /// The current task's trace id (0.1xx rollouts' `task_started`): its telemetry events
    /// carry the same, so the turn is named after it.
    #[serde(default)]
    turn_trace: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OpenCall {
    span_id: SpanId,
    name: String,
    start: u64,
    parent: SpanId,
    /// Files an `apply_patch` call touches: (path, region before, region after).
    patch: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
struct Line {
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    payload: Option<Value>,
}

impl CodexImporter {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self::resume(redactor, CodexState::default())
    }

    pub fn resume(redactor: Arc<Redactor>, state: CodexState) -> Self {
        Self {
            builder: Builder::new(redactor),
            state,
        }
    }

    pub fn state(&self) -> &CodexState {
        &self.state
    }

    pub fn pending_spans(&self) -> usize {
        self.builder.pending()
    }

    pub fn drain(&mut self) -> SessionOutput {
        for (session_id, session) in &mut self.state.sessions {
            if !session.dirty {
                continue;
            }
            session.dirty = false;
            SessionRoot {
                trace_id: session.trace_id,
                agent: AGENT,
                agent_version: &session.version,
                session_id,
                project: &session.cwd,
                title: &session.title,
                git_branch: &session.branch,
                source: "transcript",
                start: session.first_ns,
                end: session.last_ns,
            }
            .emit(&mut self.builder);
            let (repository, commit, trace_id) = (
                session.repository.clone(),
                session.commit.clone(),
                session.trace_id,
            );
            if !repository.is_empty() || !commit.is_empty() {
                let mut attributes = Vec::new();
                if !repository.is_empty() {
                    attributes.push(KeyValue::new(semconv::SESSION_REPOSITORY, repository));
                }
                if !commit.is_empty() {
                    attributes.push(KeyValue::new(semconv::SESSION_GIT_COMMIT, commit));
                }
                let resource = self.builder.resource(AGENT, "");
                let span = self.builder.span(
                    trace_id,
                    session_span_id(trace_id),
                    None,
                    String::new(),
                    0,
                    0,
                    resource,
                    attributes,
                );
                self.builder.emit(span);
            }
        }
        self.builder.take()
    }

    fn handle(&mut self, line: Line) -> Result<(), String> {
        let kind = line.kind.ok_or("no \"type\": not a Codex rollout line")?;
        let payload = line.payload.unwrap_or(Value::Null);
        let ts = line
            .timestamp
            .as_deref()
            .and_then(parse_rfc3339)
            .ok_or("no valid \"timestamp\" (RFC 3339)")?;
        let text = |key: &str| payload.get(key).and_then(Value::as_str).unwrap_or("");
        if kind == "session_meta" {
            let id = text("id");
            if id.is_empty() {
                return Err("session_meta without an \"id\"".into());
            }
            super::check_session_room(&self.state.sessions, id)?;
            let session = self.session(id, ts);
            session.cwd = payload["cwd"].as_str().unwrap_or("").to_owned();
            session.version = payload["cli_version"].as_str().unwrap_or("").to_owned();
            if let Some(git) = payload.get("git") {
                let field = |k: &str| git.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                session.branch = field("branch");
                session.commit = field("commit_hash");
                session.repository = field("repository_url");
            }
            self.state.current = Some(id.to_owned());
            return Ok(());
        }
        let Some(session_id) = self.state.current.clone() else {
            return Err("a line before the session_meta line: no session to put it in".into());
        };
        self.session(&session_id, ts);
        match kind.as_str() {
            "turn_context" => {
                let session = self.session(&session_id, ts);
                if let Some(model) = payload.get("model").and_then(Value::as_str) {
                    session.model = model.to_owned();
                }
                if session.cwd.is_empty()
                    && let Some(cwd) = payload.get("cwd").and_then(Value::as_str)
                {
                    session.cwd = cwd.to_owned();
                }
            }
            "event_msg" => self.event(&session_id, &payload, ts),
            "response_item" => self.item(&session_id, &payload, ts),
            "compacted" => self.compacted(&session_id, ts),
            // anything newer: not part of the session model.
            _ => {}
        }
        self.session(&session_id, ts).last_activity_ns = ts;
        Ok(())
    }

    /// A `compacted` line: the history was compacted (an event on the turn or session).
    fn compacted(&mut self, session_id: &str, ts: u64) {
        let session = self.session(session_id, ts);
        let trace_id = session.trace_id;
        let span_id = session
            .turn
            .map_or_else(|| session_span_id(trace_id), |(id, _)| id);
        let version = if session.turn.is_some() {
            String::new()
        } else {
            session.version.clone()
        };
        let resource = self.builder.resource(AGENT, &version);
        let mut span = self.builder.span(
            trace_id,
            span_id,
            None,
            String::new(),
            ts,
            ts,
            resource,
            vec![],
        );
        span.events.push(devtrace_model::Event {
            time_unix_nano: ts,
            name: semconv::SESSION_COMPACTED_EVENT.into(),
            ..Default::default()
        });
        self.builder.emit(span);
    }

    fn session(&mut self, id: &str, ts: u64) -> &mut SessionState {
        let session = self
            .state
            .sessions
            .entry(id.to_owned())
            .or_insert_with(|| SessionState {
                trace_id: derive_trace_id(AGENT, id),
                first_ns: ts,
                last_ns: ts,
                last_activity_ns: ts,
                ..Default::default()
            });
        session.first_ns = session.first_ns.min(ts);
        session.last_ns = session.last_ns.max(ts);
        session.dirty = true;
        session
    }

    fn parent(&mut self, session_id: &str, ts: u64) -> SpanId {
        let session = self.session(session_id, ts);
        session
            .turn
            .map_or_else(|| session_span_id(session.trace_id), |(id, _)| id)
    }

    /// A user prompt starts a turn; the same prompt seen twice (as a message item and as a
    /// `user_message` event, same time) is one turn.
    fn prompt(&mut self, session_id: &str, prompt: &str, ts: u64) {
        let session = self.session(session_id, ts);
        let trace_id = session.trace_id;
        let span_id = if session.turn_trace.is_empty() {
            derive_span_id(trace_id, &["turn", &ts.to_string(), &content_hash(prompt)])
        } else {
            turn_span_id_for_trace(trace_id, &session.turn_trace)
        };
        let session = self.session(session_id, ts);
        if session.turn.map(|(id, _)| id) == Some(span_id) {
            return;
        }
        session.turns += 1;
        session.turn = Some((span_id, ts));
        if session.title.is_empty() {
            session.title = title_from_prompt(prompt);
        }
        let index = session.turns;
        self.builder
            .turn(trace_id, span_id, AGENT, index, prompt, ts);
    }

    /// Widens the current turn to `ts`.
    fn extend_turn(&mut self, session_id: &str, ts: u64) {
        let session = self.session(session_id, ts);
        let trace_id = session.trace_id;
        if let Some((span_id, start)) = session.turn {
            self.builder.widen(trace_id, span_id, AGENT, start, ts);
        }
    }

    fn event(&mut self, session_id: &str, payload: &Value, ts: u64) {
        match payload.get("type").and_then(Value::as_str) {
            Some("user_message") => {
                let message = payload.get("message").and_then(Value::as_str).unwrap_or("");
                if !message.trim().is_empty() {
                    self.prompt(session_id, message, ts);
                }
            }
            Some("token_count") => self.token_count(session_id, payload, ts),
            Some("task_started") => {
                let trace = payload
                    .get("trace_id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.session(session_id, ts).turn_trace = trace.to_owned();
                self.extend_turn(session_id, ts);
            }
            Some("agent_message") => {
                let message = payload.get("message").and_then(Value::as_str).unwrap_or("");
                let session = self.session(session_id, ts);
                if session.pending_response.is_empty() {
                    session.pending_response = head(message, 4096).to_owned();
                }
                self.extend_turn(session_id, ts);
            }
            _ => self.extend_turn(session_id, ts),
        }
    }

    fn token_count(&mut self, session_id: &str, payload: &Value, ts: u64) {
        let Some(info) = payload.get("info").filter(|i| !i.is_null()) else {
            return;
        };
        let number = |usage: &Value, key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
        let total = info
            .get("total_token_usage")
            .map_or(0, |u| number(u, "total_tokens"));
        let Some(last) = info.get("last_token_usage") else {
            return;
        };
        let session = self.session(session_id, ts);
        if total != 0 && total == session.last_total_tokens {
            return;
        }
        session.last_total_tokens = total;
        let (trace_id, model, start) = (
            session.trace_id,
            session.model.clone(),
            session.last_activity_ns.min(ts),
        );
        let response = std::mem::take(&mut session.pending_response);
        let calls = std::mem::take(&mut session.pending_calls);
        let parent = self.parent(session_id, ts);
        let span_id = derive_span_id(trace_id, &["chat", &ts.to_string(), &total.to_string()]);
        self.builder.chat(ChatCall {
            trace_id,
            span_id,
            parent,
            agent: AGENT,
            provider: "openai",
            model: &model,
            response_id: None,
            // OpenAI's input tokens include the cached ones.
            input_tokens: number(last, "input_tokens"),
            output_tokens: number(last, "output_tokens"),
            cache_read_tokens: number(last, "cached_input_tokens"),
            cache_creation_tokens: None,
            cache_creation_1h_tokens: None,
            tool_calls: &calls,
            response: (!response.is_empty()).then_some(response.as_str()),
            start,
            end: ts,
            from_telemetry: false,
        });
        self.extend_turn(session_id, ts);
    }

    fn item(&mut self, session_id: &str, payload: &Value, ts: u64) {
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "message" => {
                let role = payload.get("role").and_then(Value::as_str).unwrap_or("");
                let text: Vec<&str> = payload
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c.get("text").and_then(Value::as_str))
                    .collect();
                let text = text.join("\n");
                if role == "user" && !is_injected_context(&text) && !text.trim().is_empty() {
                    self.prompt(session_id, &text, ts);
                } else if role == "assistant" {
                    let session = self.session(session_id, ts);
                    if session.pending_response.is_empty() {
                        session.pending_response = head(&text, 4096).to_owned();
                    }
                }
            }
            "function_call" | "custom_tool_call" | "local_shell_call" => {
                self.call(session_id, payload, ts)
            }
            "function_call_output" | "custom_tool_call_output" => {
                self.output(session_id, payload, ts)
            }
            _ => {}
        }
        self.extend_turn(session_id, ts);
    }

    fn call(&mut self, session_id: &str, payload: &Value, ts: u64) {
        let Some(call_id) = payload
            .get("call_id")
            .or_else(|| payload.get("id"))
            .and_then(Value::as_str)
        else {
            return;
        };
        let trace_id = self.session(session_id, ts).trace_id;
        self.session(session_id, ts)
            .pending_calls
            .push(call_id.to_owned());
        let parent = self.parent(session_id, ts);
        let cwd = self.session(session_id, ts).cwd.clone();
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or("");
        let name = if kind == "local_shell_call" {
            "local_shell".to_owned()
        } else {
            payload
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned()
        };
        // Arguments: a JSON string (function calls), free text (custom tools), or an action.
        let arguments: Value = match payload.get("arguments").and_then(Value::as_str) {
            Some(text) => serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
            None => payload
                .get("input")
                .or_else(|| payload.get("action"))
                .cloned()
                .unwrap_or(Value::Null),
        };
        let command = command_of(&name, &arguments, payload);
        let patch_text = if name == "apply_patch" {
            arguments
                .as_str()
                .or_else(|| arguments.get("input").and_then(Value::as_str))
                .or_else(|| arguments.get("patch").and_then(Value::as_str))
                .map(str::to_owned)
        } else {
            command
                .as_deref()
                .and_then(|c| c.find("*** Begin Patch").map(|i| c[i..].to_owned()))
        };
        let action = if patch_text.is_some() {
            "patch"
        } else if command.is_some() {
            "command"
        } else {
            match name.as_str() {
                "update_plan" => "plan",
                "view_image" => "read",
                "web_search" => "web",
                _ => "other",
            }
        };
        let span_id = derive_span_id(trace_id, &["tool", call_id]);
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_EXECUTE_TOOL,
            ),
            KeyValue::new(semconv::GEN_AI_TOOL_NAME, name.as_str()),
            KeyValue::new(semconv::GEN_AI_TOOL_CALL_ID, call_id),
            KeyValue::new(semconv::SESSION_ACTION, action),
        ];
        let workdir = arguments
            .get("workdir")
            .or_else(|| arguments.get("working_directory"))
            .and_then(Value::as_str)
            .unwrap_or(&cwd);
        if !workdir.is_empty() {
            attributes.push(KeyValue::new(semconv::SESSION_CWD, workdir));
        }
        if let Some(command) = &command
            && patch_text.is_none()
        {
            let command = self.builder.redact(command).into_owned();
            attributes.push(KeyValue::new(semconv::SESSION_COMMAND, command));
        }
        let mut input = arguments.clone();
        self.builder.redact_json(&mut input);
        let input_text = match &input {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        self.builder.text_attr(
            &mut attributes,
            semconv::SESSION_INPUT,
            semconv::SESSION_INPUT_REF,
            None,
            &input_text,
        );
        let patch = patch_text.as_deref().map(parse_patch).unwrap_or_default();
        if let [(path, _, _)] = patch.as_slice() {
            let path = self.builder.redact(path).into_owned();
            attributes.push(KeyValue::new(semconv::SESSION_FILE_PATH, path));
        }
        let resource = self.builder.resource(AGENT, "");
        let span = self.builder.span(
            trace_id,
            span_id,
            Some(parent),
            format!("execute_tool {name}"),
            ts,
            ts,
            resource,
            attributes,
        );
        self.builder.emit(span);
        self.session(session_id, ts).open_calls.insert(
            call_id.to_owned(),
            OpenCall {
                span_id,
                name,
                start: ts,
                parent,
                patch,
            },
        );
    }

    fn output(&mut self, session_id: &str, payload: &Value, ts: u64) {
        let Some(call_id) = payload.get("call_id").and_then(Value::as_str) else {
            return;
        };
        let trace_id = self.session(session_id, ts).trace_id;
        let open = self.session(session_id, ts).open_calls.remove(call_id);
        let parent = self.parent(session_id, ts);
        let open = open.unwrap_or_else(|| OpenCall {
            span_id: derive_span_id(trace_id, &["tool", call_id]),
            name: String::new(),
            start: ts,
            parent,
            patch: Vec::new(),
        });
        let (text, exit_code) = output_of(payload.get("output").unwrap_or(&Value::Null));
        let failed =
            exit_code.is_some_and(|c| c != 0) || (exit_code.is_none() && looks_failed(&text));
        let mut attributes = vec![KeyValue::new(
            semconv::SESSION_SPAN,
            semconv::SESSION_SPAN_TOOL,
        )];
        self.builder.text_attr(
            &mut attributes,
            semconv::SESSION_OUTPUT,
            semconv::SESSION_OUTPUT_REF,
            Some(semconv::SESSION_OUTPUT_BYTES),
            &text,
        );
        if let Some(code) = exit_code {
            attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
        }
        let resource = self.builder.resource(AGENT, "");
        let mut span = self.builder.span(
            trace_id,
            open.span_id,
            Some(open.parent),
            if open.name.is_empty() {
                String::new()
            } else {
                format!("execute_tool {}", open.name)
            },
            open.start,
            ts,
            resource,
            attributes,
        );
        if failed {
            span.status = Status {
                code: StatusCode::Error,
                message: self.builder.redact(&error_message(&text)).into_owned(),
            };
        }
        self.builder.emit(span);
        // One edit per file a patch touched, under the call that applied it.
        emit_patch_edits(
            &mut self.builder,
            PatchEdits {
                trace_id,
                resource,
                call_id,
                call_span: open.span_id,
                patch: &open.patch,
                start: open.start,
                end: ts,
                failed,
                extra: &[],
            },
        );
    }
}

impl LineSource for CodexImporter {
    fn line(&mut self, _number: u64, text: &str) -> Result<(), String> {
        let line: Line =
            serde_json::from_str(text).map_err(|e| format!("not a Codex rollout line: {e}"))?;
        self.handle(line)
    }
}

/// The edits a patch made, for [`emit_patch_edits`].
pub(crate) struct PatchEdits<'a> {
    pub trace_id: TraceId,
    pub resource: u32,
    pub call_id: &'a str,
    /// The tool call that applied the patch: the edits' parent.
    pub call_span: SpanId,
    /// (path, region before, region after) per file, from [`parse_patch`].
    pub patch: &'a [(String, String, String)],
    pub start: u64,
    pub end: u64,
    pub failed: bool,
    /// More attributes for each edit.
    pub extra: &'a [KeyValue],
}

/// One edit span per file a patch touched, with hashes of the region before and after (so an
/// undone change is recognisable), as rollouts and Codex's telemetry both describe patches.
pub(crate) fn emit_patch_edits(builder: &mut Builder, edits: PatchEdits) {
    for (path, before, after) in edits.patch {
        let edit_id = derive_span_id(edits.trace_id, &["edit", edits.call_id, path]);
        let path = builder.redact(path).into_owned();
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_EVENT),
            KeyValue::new(semconv::SESSION_EVENT_TYPE, "edit"),
            KeyValue::new(
                semconv::SESSION_ACTION,
                if before.is_empty() { "write" } else { "edit" },
            ),
            KeyValue::new(semconv::SESSION_FILE_PATH, path.as_str()),
            KeyValue::new(semconv::SESSION_FILE_HASH_AFTER, content_hash(after)),
        ];
        if before.is_empty() {
            attributes.push(KeyValue::new(semconv::SESSION_FILE_CREATED, true));
        } else {
            attributes.push(KeyValue::new(
                semconv::SESSION_FILE_HASH_BEFORE,
                content_hash(before),
            ));
        }
        attributes.extend_from_slice(edits.extra);
        let mut edit = builder.span(
            edits.trace_id,
            edit_id,
            Some(edits.call_span),
            format!("edit {path}"),
            edits.start,
            edits.end,
            edits.resource,
            attributes,
        );
        if edits.failed {
            edit.status.code = StatusCode::Error;
        }
        builder.emit(edit);
    }
}

/// Messages Codex adds to the conversation itself (instructions, environment), not prompts.
pub(crate) fn is_injected_context(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("<environment_context>")
        || text.starts_with("<user_instructions>")
        || text.starts_with("# AGENTS.md instructions")
        || text.starts_with("<INSTRUCTIONS>")
}

/// The command line a shell-like call runs: `bash -lc "cargo test"` is `cargo test`.
pub(crate) fn command_of(name: &str, arguments: &Value, payload: &Value) -> Option<String> {
    let argv = |value: &Value| -> Option<String> {
        let parts: Vec<&str> = value.as_array()?.iter().filter_map(Value::as_str).collect();
        match parts.as_slice() {
            [shell, flag, script]
                if shell.ends_with("sh") && flag.starts_with('-') && flag.contains('c') =>
            {
                Some((*script).to_owned())
            }
            _ => Some(
                parts
                    .iter()
                    .map(|p| {
                        if p.is_empty() || p.contains([' ', '"', '\'', '$', '&', '|', ';']) {
                            format!("'{}'", p.replace('\'', "'\\''"))
                        } else {
                            (*p).to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
        }
    };
    if let Some(command) = payload
        .get("action")
        .and_then(|a| a.get("command"))
        .and_then(argv)
    {
        return Some(command);
    }
    match name {
        "shell" | "container.exec" | "local_shell" => arguments.get("command").and_then(argv),
        "shell_command" => arguments
            .get("command")
            .and_then(Value::as_str)
            .map(str::to_owned),
        "exec_command" => arguments
            .get("cmd")
            .or_else(|| arguments.get("command"))
            .and_then(|c| c.as_str().map(str::to_owned).or_else(|| argv(c))),
        _ => None,
    }
}

/// A tool output's text and exit code, from the JSON (`{"output", "metadata": {"exit_code"}}`)
/// or text (`Exit code: 1`, `Process exited with code 1`) forms Codex writes.
pub(crate) fn output_of(output: &Value) -> (String, Option<i64>) {
    let raw = match output {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other
            .get("content")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), str::to_owned),
    };
    if let Ok(structured) = serde_json::from_str::<Value>(&raw)
        && let Some(text) = structured.get("output").and_then(Value::as_str)
    {
        let code = structured
            .get("metadata")
            .and_then(|m| m.get("exit_code"))
            .and_then(Value::as_i64);
        return (text.to_owned(), code);
    }
    let code = ["Exit code: ", "Process exited with code "]
        .iter()
        .find_map(|marker| {
            let start = raw.find(marker)? + marker.len();
            raw[start..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect::<String>()
                .parse()
                .ok()
        });
    // The text form puts the command's output after an "Output:" line.
    let text = match raw.find("\nOutput:\n") {
        Some(i) if code.is_some() => raw[i + "\nOutput:\n".len()..].to_owned(),
        _ => raw,
    };
    (text, code)
}

pub(crate) fn looks_failed(text: &str) -> bool {
    let start = head(text, 200).to_ascii_lowercase();
    start.starts_with("error")
        || start.starts_with("failed")
        || start.contains("verification failed")
}

/// The files a patch (`*** Begin Patch` format) touches, with the text of the changed region
/// before and after (context lines in both).
pub(crate) fn parse_patch(patch: &str) -> Vec<(String, String, String)> {
    let mut files: Vec<(String, String, String)> = Vec::new();
    for line in patch.lines() {
        if let Some(path) = line
            .strip_prefix("*** Update File: ")
            .or_else(|| line.strip_prefix("*** Delete File: "))
        {
            files.push((path.trim().to_owned(), String::new(), String::new()));
            // A deletion has a before but no after; mark the before as non-empty.
            if line.starts_with("*** Delete") {
                files
                    .last_mut()
                    .expect("just pushed")
                    .1
                    .push_str("<deleted>");
            }
        } else if let Some(path) = line.strip_prefix("*** Add File: ") {
            files.push((path.trim().to_owned(), String::new(), String::new()));
        } else if line.starts_with("*** ") || line.starts_with("@@") {
            continue;
        } else if let Some((_, before, after)) = files.last_mut() {
            if let Some(rest) = line.strip_prefix('-') {
                before.push_str(rest);
                before.push('\n');
            } else if let Some(rest) = line.strip_prefix('+') {
                after.push_str(rest);
                after.push('\n');
            } else {
                let rest = line.strip_prefix(' ').unwrap_or(line);
                before.push_str(rest);
                before.push('\n');
                after.push_str(rest);
                after.push('\n');
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_come_out_of_every_call_shape() {
        let none = Value::Null;
        let bash = serde_json::json!({"command": ["bash", "-lc", "cargo test --all"]});
        assert_eq!(
            command_of("shell", &bash, &none).as_deref(),
            Some("cargo test --all")
        );
        let argv = serde_json::json!({"command": ["rg", "-n", "fn main", "src"]});
        assert_eq!(
            command_of("shell", &argv, &none).as_deref(),
            Some("rg -n 'fn main' src")
        );
        let line = serde_json::json!({"command": "npm run build", "workdir": "/w"});
        assert_eq!(
            command_of("shell_command", &line, &none).as_deref(),
            Some("npm run build")
        );
        let exec = serde_json::json!({"cmd": "pytest -x"});
        assert_eq!(
            command_of("exec_command", &exec, &none).as_deref(),
            Some("pytest -x")
        );
        let local = serde_json::json!({"action": {"type": "exec", "command": ["ls", "-la"]}});
        assert_eq!(
            command_of("local_shell", &none, &local).as_deref(),
            Some("ls -la")
        );
        assert_eq!(command_of("update_plan", &line, &none), None);
    }

    #[test]
    fn outputs_give_their_exit_codes() {
        let json = Value::String(
            r#"{"output":"ok\n","metadata":{"exit_code":0,"duration_seconds":0.1}}"#.into(),
        );
        assert_eq!(output_of(&json), ("ok\n".to_owned(), Some(0)));
        let text = Value::String(
            "Exit code: 101\nWall time: 2.5 seconds\nOutput:\nerror[E0425]: x".into(),
        );
        assert_eq!(output_of(&text), ("error[E0425]: x".to_owned(), Some(101)));
        let exec = Value::String("Chunk ID: 9\nWall time: 0.1 seconds\nProcess exited with code 127\nOutput:\nbash: foo: command not found".into());
        assert_eq!(output_of(&exec).1, Some(127));
        assert_eq!(
            output_of(&Value::String("plain".into())),
            ("plain".to_owned(), None)
        );
    }

    #[test]
    fn patches_name_their_files_and_regions() {
        let patch = "*** Begin Patch\n*** Update File: src/a.rs\n@@ fn main\n fn main() {\n-    old();\n+    new();\n }\n*** Add File: src/b.rs\n+pub fn b() {}\n*** End Patch\n";
        let files = parse_patch(patch);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].0, "src/a.rs");
        assert_eq!(files[0].1, "fn main() {\n    old();\n}\n");
        assert_eq!(files[0].2, "fn main() {\n    new();\n}\n");
        assert_eq!((files[1].0.as_str(), files[1].1.as_str()), ("src/b.rs", ""));
    }
}
