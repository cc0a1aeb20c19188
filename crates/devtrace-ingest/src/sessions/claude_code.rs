//! Claude Code: transcripts (`~/.claude/projects/<project>/<session>.jsonl`, sub-agents as
//! sidechain lines or `agent-*.jsonl` files) and live hook events.
//!
//! Facts of the format this relies on (the synthetic sample project of tests/fixtures/claude-code
//! shows each; the third-party conformance set checks them on real transcripts):
//! - one API response is split over several `assistant` lines (one per content block)
//!   sharing `message.id` and `requestId`, each repeating `usage` (output tokens grow as it
//!   streams): a response is one `chat` span, counted once per (message id, request id) with
//!   the usage of its last line; the `tool_use` blocks of its lines are the calls it made;
//! - `system` lines with `subtype: "compact_boundary"` (and the `isCompactSummary` user line
//!   after them) mark a compaction: an event on the turn, so the read side knows the context
//!   shrank on purpose;
//! - `is_error` on a `tool_result` appears only when true; `toolUseResult` beside it holds the
//!   tool's structured result (file contents before an edit, what was read, …);
//! - `isSidechain` lines belong to sub-agents; their `parentUuid` chain leads to a first line
//!   whose text is the `prompt` of the `Task` tool call that started them;
//! - the project folder name is a lossy encoding of the working directory: the real one is
//!   each line's `cwd`.
//!
//! Ids: the trace is the session id; a turn is its prompt line's `uuid`; a response its
//! `message.id`; a tool call its `tool_use_id` (which hooks carry too); a sub-agent the hash
//! of its prompt (which the `Task` call and the sub-agent's own first line share, even across
//! files).

use super::LineSource;
use super::common::{
    Builder, ChatCall, SessionOutput, SessionRoot, chat_span_id_for_request, content_hash,
    derive_span_id, derive_trace_id, error_message, title_from_prompt, turn_span_id_for_prompt,
};
use crate::redact::Redactor;
use devtrace_model::session::{SUBAGENT_PLACEHOLDER_NAME, session_span_id};
use devtrace_model::time::parse_rfc3339;
use devtrace_model::{Event, KeyValue, SpanId, Status, StatusCode, TraceId, semconv};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

pub const AGENT: &str = "claude-code";

/// Responses remembered per session (their usage so far), for lines of one response that
/// arrive in a later import. A response's lines are consecutive, so a few are plenty.
const REMEMBERED_MESSAGES: usize = 64;

/// Imports Claude Code transcript lines (see [`LineSource`]); resumable from its [`state`].
///
/// [`state`]: ClaudeCodeImporter::state
pub struct ClaudeCodeImporter {
    builder: Builder,
    state: ClaudeCodeState,
}

/// Everything the importer remembers between lines (serialisable for incremental imports).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClaudeCodeState {
    sessions: BTreeMap<String, SessionState>,
    /// Summary lines whose leaf message has not been seen yet: leaf uuid → summary.
    pending_titles: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct SessionState {
    trace_id: TraceId,
    first_ns: u64,
    last_ns: u64,
    cwd: String,
    version: String,
    branch: String,
    title: String,
    title_from_summary: bool,
    last_uuid: String,
    turns: u32,
    turn: Option<Turn>,
    /// Last main-chain line, for when a response's request was sent.
    main_last_ns: u64,
    /// Sidechain line uuid → the sub-agent span its chain belongs to.
    sidechains: HashMap<String, SpanId>,
    /// Sub-agent span → (its first line's time, its last line's time).
    agents: HashMap<SpanId, (u64, u64)>,
    open_tools: HashMap<String, OpenTool>,
    /// Responses by (message id, request id).
    messages: VecDeque<((String, Option<String>), Response)>,
    /// The last compaction marked (its time), so the boundary and its summary are one.
    #[serde(default)]
    last_compaction_ns: u64,
    dirty: bool,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Turn {
    span_id: SpanId,
    start: u64,
    end: u64,
    index: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OpenTool {
    span_id: SpanId,
    name: String,
    start: u64,
    parent: SpanId,
    /// The sub-agent a `Task` call started.
    agent: Option<SpanId>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Response {
    span_id: SpanId,
    start: u64,
    /// input, output, cache read, cache creation, of which 1-hour cache: from the last line
    /// that carried a usage.
    #[serde(default)]
    usage: [u64; 5],
    has_text: bool,
    /// The `tool_use` ids of its content blocks, in order.
    #[serde(default)]
    tool_calls: Vec<String>,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    uuid: Option<String>,
    #[serde(rename = "parentUuid")]
    parent_uuid: Option<String>,
    #[serde(rename = "isSidechain")]
    is_sidechain: Option<bool>,
    #[serde(rename = "isMeta")]
    is_meta: Option<bool>,
    #[serde(rename = "isCompactSummary")]
    is_compact_summary: Option<bool>,
    timestamp: Option<String>,
    subtype: Option<String>,
    cwd: Option<String>,
    version: Option<String>,
    #[serde(rename = "gitBranch")]
    git_branch: Option<String>,
    #[serde(borrow)]
    message: Option<&'a RawValue>,
    #[serde(rename = "toolUseResult", borrow)]
    tool_use_result: Option<&'a RawValue>,
    summary: Option<String>,
    #[serde(rename = "leafUuid")]
    leaf_uuid: Option<String>,
    /// Claude Code 2.x: the id of the prompt a line belongs to (its telemetry's `prompt.id`).
    #[serde(rename = "promptId")]
    prompt_id: Option<String>,
    /// The API request a response line came from (its telemetry's `request_id`).
    #[serde(rename = "requestId")]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct Message<'a> {
    id: Option<String>,
    model: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    usage: Option<Usage>,
}

#[derive(Deserialize, Default)]
struct Usage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_creation: Option<CacheCreation>,
}

#[derive(Deserialize, Default)]
struct CacheCreation {
    ephemeral_1h_input_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    id: Option<String>,
    name: Option<String>,
    #[serde(borrow)]
    input: Option<&'a RawValue>,
    tool_use_id: Option<String>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    is_error: Option<bool>,
}

/// The content of a message: its text and its blocks.
#[derive(Default)]
struct Content<'a> {
    text: Vec<String>,
    blocks: Vec<Block<'a>>,
}

fn parse_content<'a>(raw: Option<&'a RawValue>) -> Content<'a> {
    let mut content = Content::default();
    let Some(raw) = raw else {
        return content;
    };
    let text = raw.get().trim_start();
    if text.starts_with('"') {
        if let Ok(s) = serde_json::from_str::<String>(raw.get()) {
            content.text.push(s);
        }
        return content;
    }
    // Blocks one by one: an odd element (a bare string, an unknown shape) is skipped alone.
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
        return content;
    };
    for item in items {
        if let Ok(block) = serde_json::from_str::<Block>(item.get()) {
            if block.kind == "text"
                && let Some(text) = &block.text
            {
                content.text.push(text.clone());
            }
            content.blocks.push(block);
        }
    }
    content
}

/// The text of a tool result's `content` (a string, or blocks of text).
fn result_text(raw: Option<&RawValue>) -> String {
    let Some(raw) = raw else {
        return String::new();
    };
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::String(s)) => s,
        Ok(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Lines Claude Code writes around local slash commands (their output, a caveat): not
/// prompts.
fn is_local_command_echo(text: &str) -> bool {
    let text = text.trim_start();
    text.starts_with("<local-command-stdout>")
        || text.starts_with("<local-command-stderr>")
        || text.starts_with(
            "Caveat: The messages below were generated by the user while running local commands",
        )
}

impl ClaudeCodeImporter {
    pub fn new(redactor: Arc<Redactor>) -> Self {
        Self::resume(redactor, ClaudeCodeState::default())
    }

    /// Continues an import that stopped with `state`.
    pub fn resume(redactor: Arc<Redactor>, state: ClaudeCodeState) -> Self {
        Self {
            builder: Builder::new(redactor),
            state,
        }
    }

    pub fn state(&self) -> &ClaudeCodeState {
        &self.state
    }

    /// Spans held since the last [`drain`](Self::drain).
    pub fn pending_spans(&self) -> usize {
        self.builder.pending()
    }

    /// What the lines so far produced (the sessions' own spans brought up to date), emptied.
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
        }
        self.builder.take()
    }

    fn session(&mut self, session_id: &str) -> &mut SessionState {
        self.state
            .sessions
            .entry(session_id.to_owned())
            .or_insert_with(|| SessionState {
                trace_id: derive_trace_id(AGENT, session_id),
                first_ns: u64::MAX,
                ..Default::default()
            })
    }

    fn summary(&mut self, line: &Line) {
        let (Some(summary), Some(leaf)) = (&line.summary, &line.leaf_uuid) else {
            return;
        };
        let owner = self
            .state
            .sessions
            .values_mut()
            .find(|s| s.last_uuid == *leaf);
        match owner {
            Some(session) => {
                session.title = summary.clone();
                session.title_from_summary = true;
                session.dirty = true;
            }
            // A title for a message not read yet; bounded like the sessions, past which a
            // title is lost rather than memory.
            None if self.state.pending_titles.len() < super::MAX_SESSIONS_PER_TRANSCRIPT => {
                self.state
                    .pending_titles
                    .insert(leaf.clone(), summary.clone());
            }
            None => {}
        }
    }

    fn handle(&mut self, line: Line) -> Result<(), String> {
        match line.kind.as_deref() {
            Some("summary") => {
                self.summary(&line);
                return Ok(());
            }
            Some("user" | "assistant") => {}
            Some("system") if line.subtype.as_deref() == Some("compact_boundary") => {
                return self.compaction(&line);
            }
            // system notes, file snapshots, queue operations: not part of the session model.
            Some(_) => return Ok(()),
            None => return Err("no \"type\": not a Claude Code transcript line".into()),
        }
        let session_id = line
            .session_id
            .clone()
            .ok_or("no \"sessionId\": not a Claude Code transcript line")?;
        super::check_session_room(&self.state.sessions, &session_id)?;
        let ts = line
            .timestamp
            .as_deref()
            .and_then(parse_rfc3339)
            .ok_or("no valid \"timestamp\" (RFC 3339)")?;
        let message: Message = match line.message {
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| format!("\"message\" is not a message object: {e}"))?,
            None => return Err("no \"message\"".into()),
        };
        let title = line
            .uuid
            .as_ref()
            .and_then(|u| self.state.pending_titles.remove(u));
        let session = self.session(&session_id);
        session.dirty = true;
        session.first_ns = session.first_ns.min(ts);
        session.last_ns = session.last_ns.max(ts);
        if let Some(cwd) = &line.cwd
            && session.cwd.is_empty()
        {
            session.cwd = cwd.clone();
        }
        if let Some(version) = &line.version {
            session.version = version.clone();
        }
        if let Some(branch) = &line.git_branch
            && !branch.is_empty()
        {
            session.branch = branch.clone();
        }
        if let Some(uuid) = &line.uuid {
            session.last_uuid = uuid.clone();
        }
        if let Some(title) = title {
            session.title = title;
            session.title_from_summary = true;
        }
        let content = parse_content(message.content);
        let sidechain = line.is_sidechain.unwrap_or(false);
        if line.is_compact_summary.unwrap_or(false) && !sidechain {
            self.mark_compaction(&session_id, ts);
        }
        if line.kind.as_deref() == Some("user") {
            self.user(&session_id, &line, content, sidechain, ts);
        } else {
            self.assistant(&session_id, &line, &message, content, sidechain, ts);
        }
        Ok(())
    }

    /// A `compact_boundary` system line: the context was compacted.
    fn compaction(&mut self, line: &Line) -> Result<(), String> {
        let (Some(session_id), Some(ts)) = (
            line.session_id.clone(),
            line.timestamp.as_deref().and_then(parse_rfc3339),
        ) else {
            return Ok(());
        };
        if line.is_sidechain.unwrap_or(false) {
            return Ok(());
        }
        let session = self.session(&session_id);
        session.dirty = true;
        session.first_ns = session.first_ns.min(ts);
        session.last_ns = session.last_ns.max(ts);
        self.mark_compaction(&session_id, ts);
        Ok(())
    }

    /// Marks a compaction at `ts` on the current turn (or the session): once, though the
    /// boundary line and the summary after it both say so (within a minute of each other).
    fn mark_compaction(&mut self, session_id: &str, ts: u64) {
        let session = self.session(session_id);
        if session.last_compaction_ns != 0
            && ts.abs_diff(session.last_compaction_ns) < 60_000_000_000
        {
            return;
        }
        session.last_compaction_ns = ts;
        let trace_id = session.trace_id;
        let version = session.version.clone();
        let (span_id, resource) = match session.turn {
            Some(turn) => (turn.span_id, self.builder.resource(AGENT, "")),
            None => (
                session_span_id(trace_id),
                self.builder.resource(AGENT, &version),
            ),
        };
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
        span.events.push(Event {
            time_unix_nano: ts,
            name: semconv::SESSION_COMPACTED_EVENT.into(),
            ..Default::default()
        });
        self.builder.emit(span);
    }

    /// The span a line's work hangs under: its sub-agent, or the current turn, or the session.
    fn context(&mut self, session_id: &str, line: &Line, sidechain: bool) -> Option<SpanId> {
        let session = self.session(session_id);
        if !sidechain {
            return Some(
                session
                    .turn
                    .map_or_else(|| session_span_id(session.trace_id), |t| t.span_id),
            );
        }
        let agent = line
            .parent_uuid
            .as_ref()
            .and_then(|p| session.sidechains.get(p).copied())?;
        if let Some(uuid) = &line.uuid {
            session.sidechains.insert(uuid.clone(), agent);
        }
        Some(agent)
    }

    fn user(&mut self, session_id: &str, line: &Line, content: Content, sidechain: bool, ts: u64) {
        let prompt = content.text.join("\n");
        let results: Vec<&Block> = content
            .blocks
            .iter()
            .filter(|b| b.kind == "tool_result")
            .collect();
        let starts_agent = sidechain && line.parent_uuid.is_none();
        let parent = if starts_agent {
            // The first line of a sub-agent: its prompt names it.
            self.start_agent(session_id, line, &prompt, ts);
            return;
        } else {
            match self.context(session_id, line, sidechain) {
                Some(parent) => parent,
                // A sidechain whose first line was never seen: hang it under the session.
                None => session_span_id(self.session(session_id).trace_id),
            }
        };
        for block in &results {
            self.tool_result(session_id, line, block, results.len() == 1, parent, ts);
        }
        if sidechain {
            self.touch_agent(session_id, parent, ts);
            return;
        }
        let session = self.session(session_id);
        session.main_last_ns = ts;
        let is_prompt = results.is_empty()
            && !prompt.trim().is_empty()
            && !line.is_meta.unwrap_or(false)
            && !line.is_compact_summary.unwrap_or(false)
            && !is_local_command_echo(&prompt);
        if !is_prompt {
            self.extend_turn(session_id, ts);
            return;
        }
        if prompt.starts_with("[Request interrupted by user") {
            // Not a new prompt: the user stopped the current one.
            self.extend_turn(session_id, ts);
            if let Some(turn) = self.session(session_id).turn {
                let trace_id = self.session(session_id).trace_id;
                let resource = self.builder.resource(AGENT, "");
                let mut span = self.builder.span(
                    trace_id,
                    turn.span_id,
                    None,
                    String::new(),
                    ts,
                    ts,
                    resource,
                    vec![],
                );
                span.events.push(Event {
                    time_unix_nano: ts,
                    name: "devtrace.session.interrupted".into(),
                    ..Default::default()
                });
                self.builder.emit(span);
            }
            return;
        }
        let Some(uuid) = &line.uuid else {
            return;
        };
        let session = self.session(session_id);
        session.turns += 1;
        let index = session.turns;
        let trace_id = session.trace_id;
        // The prompt's own id when the transcript has it (2.x), so the turn its telemetry
        // describes is this one; the line's uuid before that.
        let span_id = match &line.prompt_id {
            Some(prompt_id) => turn_span_id_for_prompt(trace_id, prompt_id),
            None => derive_span_id(trace_id, &["turn", uuid]),
        };
        session.turn = Some(Turn {
            span_id,
            start: ts,
            end: ts,
            index,
        });
        if session.title.is_empty() {
            session.title = title_from_prompt(&prompt);
        }
        self.builder
            .turn(trace_id, span_id, AGENT, index, &prompt, ts);
    }

    fn start_agent(&mut self, session_id: &str, line: &Line, prompt: &str, ts: u64) {
        let trace_id = self.session(session_id).trace_id;
        let agent = derive_span_id(trace_id, &["agent", &content_hash(prompt)]);
        let session = self.session(session_id);
        if let Some(uuid) = &line.uuid {
            session.sidechains.insert(uuid.clone(), agent);
        }
        session.agents.insert(agent, (ts, ts));
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_AGENT),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_INVOKE_AGENT,
            ),
        ];
        self.builder.text_attr(
            &mut attributes,
            semconv::SESSION_PROMPT,
            semconv::SESSION_INPUT_REF,
            None,
            prompt,
        );
        let resource = self.builder.resource(AGENT, "");
        let span = self.builder.span(
            trace_id,
            agent,
            Some(session_span_id(trace_id)),
            SUBAGENT_PLACEHOLDER_NAME.into(),
            ts,
            ts,
            resource,
            attributes,
        );
        self.builder.emit(span);
    }

    /// Widens the current turn to `ts`.
    fn extend_turn(&mut self, session_id: &str, ts: u64) {
        let session = self.session(session_id);
        let trace_id = session.trace_id;
        let Some(turn) = &mut session.turn else {
            return;
        };
        if ts <= turn.end {
            return;
        }
        turn.end = ts;
        let (span_id, start) = (turn.span_id, turn.start);
        self.builder.widen(trace_id, span_id, AGENT, start, ts);
    }

    /// Widens a sub-agent's span to `ts`.
    fn touch_agent(&mut self, session_id: &str, agent: SpanId, ts: u64) {
        let session = self.session(session_id);
        let trace_id = session.trace_id;
        let times = session.agents.entry(agent).or_insert((ts, ts));
        times.1 = times.1.max(ts);
        let start = times.0;
        self.builder
            .widen(trace_id, agent, AGENT, start.min(ts), ts);
    }

    fn assistant(
        &mut self,
        session_id: &str,
        line: &Line,
        message: &Message,
        content: Content,
        sidechain: bool,
        ts: u64,
    ) {
        let parent = match self.context(session_id, line, sidechain) {
            Some(parent) => parent,
            // A sidechain line whose chain start was never seen: hang it under the session.
            None => session_span_id(self.session(session_id).trace_id),
        };
        let trace_id = self.session(session_id).trace_id;
        // When the request was sent: the previous line of the same chain.
        let previous = {
            let session = self.session(session_id);
            if sidechain {
                session.agents.get(&parent).map_or(ts, |(_, last)| *last)
            } else {
                session.main_last_ns.max(session.first_ns)
            }
        };
        if let Some(message_id) = &message.id {
            let seen = message.usage.as_ref().map(|u| {
                [
                    u.input_tokens.unwrap_or(0),
                    u.output_tokens.unwrap_or(0),
                    u.cache_read_input_tokens.unwrap_or(0),
                    u.cache_creation_input_tokens.unwrap_or(0),
                    u.cache_creation
                        .as_ref()
                        .and_then(|c| c.ephemeral_1h_input_tokens)
                        .unwrap_or(0),
                ]
            });
            let first_text = content.text.iter().find(|t| !t.trim().is_empty()).cloned();
            let calls: Vec<String> = content
                .blocks
                .iter()
                .filter(|b| b.kind == "tool_use")
                .filter_map(|b| b.id.clone())
                .collect();
            let key = (message_id.clone(), line.request_id.clone());
            let session = self.session(session_id);
            let position = session.messages.iter().position(|(k, _)| *k == key);
            let response = match position {
                Some(i) => &mut session.messages[i].1,
                None => {
                    if session.messages.len() >= REMEMBERED_MESSAGES {
                        session.messages.pop_front();
                    }
                    session.messages.push_back((
                        key,
                        Response {
                            // The request id when there is one, as in Claude Code's telemetry.
                            span_id: match &line.request_id {
                                Some(request) => chat_span_id_for_request(trace_id, request),
                                None => derive_span_id(trace_id, &["chat", message_id]),
                            },
                            start: previous.min(ts),
                            ..Default::default()
                        },
                    ));
                    &mut session.messages.back_mut().expect("just pushed").1
                }
            };
            // Each line repeats the message's usage; the last one carries the final counts.
            if let Some(seen) = seen {
                response.usage = seen;
            }
            for call in calls {
                if !response.tool_calls.contains(&call) {
                    response.tool_calls.push(call);
                }
            }
            let add_text = first_text.filter(|_| !response.has_text);
            response.has_text |= add_text.is_some();
            let (span_id, start, usage) = (response.span_id, response.start, response.usage);
            let tool_calls = response.tool_calls.clone();
            self.builder.chat(ChatCall {
                trace_id,
                span_id,
                parent,
                agent: AGENT,
                provider: "anthropic",
                model: message.model.as_deref().unwrap_or(""),
                response_id: Some(message_id),
                input_tokens: usage[0] + usage[2] + usage[3],
                output_tokens: usage[1],
                cache_read_tokens: usage[2],
                cache_creation_tokens: Some(usage[3]),
                cache_creation_1h_tokens: Some(usage[4]),
                tool_calls: &tool_calls,
                response: add_text.as_deref(),
                start,
                end: ts,
                from_telemetry: false,
            });
        }
        for block in content.blocks.iter().filter(|b| b.kind == "tool_use") {
            self.tool_use(session_id, line, block, parent, ts);
        }
        if sidechain {
            self.touch_agent(session_id, parent, ts);
        } else {
            self.session(session_id).main_last_ns = ts;
            self.extend_turn(session_id, ts);
        }
    }

    fn tool_use(&mut self, session_id: &str, line: &Line, block: &Block, parent: SpanId, ts: u64) {
        let Some(tool_use_id) = &block.id else {
            return;
        };
        let name = block.name.clone().unwrap_or_else(|| "unknown".into());
        let input: Value = block
            .input
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or(Value::Null);
        let trace_id = self.session(session_id).trace_id;
        let cwd = line.cwd.clone().unwrap_or_default();
        let resource = self.builder.resource(AGENT, "");
        let (tool_span, agent) = emit_tool_call(
            &mut self.builder,
            ToolCall {
                trace_id,
                resource,
                tool_use_id,
                name: &name,
                input: &input,
                cwd: &cwd,
                parent,
                ts,
            },
        );
        self.session(session_id).open_tools.insert(
            tool_use_id.clone(),
            OpenTool {
                span_id: tool_span,
                name,
                start: ts,
                parent,
                agent,
            },
        );
    }

    fn tool_result(
        &mut self,
        session_id: &str,
        line: &Line,
        block: &Block,
        structured: bool,
        parent: SpanId,
        ts: u64,
    ) {
        let Some(tool_use_id) = &block.tool_use_id else {
            return;
        };
        let trace_id = self.session(session_id).trace_id;
        let open = self.session(session_id).open_tools.remove(tool_use_id);
        let (span_id, name, start, parent, agent) = match open {
            Some(open) => (open.span_id, open.name, open.start, open.parent, open.agent),
            None => (
                derive_span_id(trace_id, &["tool", tool_use_id]),
                String::new(),
                ts,
                parent,
                None,
            ),
        };
        let result: Option<Value> = line
            .tool_use_result
            .filter(|_| structured)
            .and_then(|raw| serde_json::from_str(raw.get()).ok());
        let output = result_text(block.content);
        let resource = self.builder.resource(AGENT, "");
        emit_tool_result(
            &mut self.builder,
            ToolResult {
                trace_id,
                resource,
                span_id,
                parent: Some(parent),
                name: &name,
                start,
                end: ts,
                output: &output,
                is_error: block.is_error.unwrap_or(false),
                result: result.as_ref(),
            },
        );
        if let Some(agent) = agent {
            let span = self.builder.span(
                trace_id,
                agent,
                None,
                String::new(),
                start,
                ts,
                resource,
                vec![],
            );
            self.builder.emit(span);
        }
    }
}

impl LineSource for ClaudeCodeImporter {
    fn line(&mut self, _number: u64, text: &str) -> Result<(), String> {
        let line: Line = serde_json::from_str(text).map_err(|e| {
            if text.trim_start().starts_with('{') {
                format!("not a Claude Code transcript line: {e}")
            } else {
                "not a JSON object".to_owned()
            }
        })?;
        self.handle(line)
    }
}

/// A tool call as the transcript's `tool_use` block or a `PreToolUse` hook describes it.
pub(crate) struct ToolCall<'a> {
    pub trace_id: TraceId,
    pub resource: u32,
    pub tool_use_id: &'a str,
    pub name: &'a str,
    pub input: &'a Value,
    pub cwd: &'a str,
    pub parent: SpanId,
    pub ts: u64,
}

/// What a Claude Code tool does, from its name.
pub fn action_of(tool: &str) -> &'static str {
    match tool {
        "Read" | "NotebookRead" => "read",
        "Edit" | "MultiEdit" | "NotebookEdit" => "edit",
        "Write" => "write",
        "Bash" => "command",
        "Glob" | "Grep" | "LS" => "search",
        "Task" | "Agent" => "task",
        "TodoWrite" | "TodoRead" | "ExitPlanMode" => "plan",
        "WebFetch" | "WebSearch" => "web",
        _ => "other",
    }
}

/// Emits a tool call's span (and, for `Task`, its sub-agent's placeholder); returns their ids.
pub(crate) fn emit_tool_call(builder: &mut Builder, call: ToolCall) -> (SpanId, Option<SpanId>) {
    let span_id = derive_span_id(call.trace_id, &["tool", call.tool_use_id]);
    let action = action_of(call.name);
    let mut attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            semconv::GEN_AI_OPERATION_EXECUTE_TOOL,
        ),
        KeyValue::new(semconv::GEN_AI_TOOL_NAME, call.name),
        KeyValue::new(semconv::GEN_AI_TOOL_CALL_ID, call.tool_use_id),
        KeyValue::new(semconv::SESSION_ACTION, action),
    ];
    let field = |key: &str| call.input.get(key).and_then(Value::as_str);
    if let Some(path) = field("file_path").or_else(|| field("notebook_path")) {
        let path = builder.redact(path).into_owned();
        attributes.push(KeyValue::new(semconv::SESSION_FILE_PATH, path));
    }
    if let Some(command) = field("command") {
        let command = builder.redact(command).into_owned();
        attributes.push(KeyValue::new(semconv::SESSION_COMMAND, command));
    }
    if !call.cwd.is_empty() {
        attributes.push(KeyValue::new(semconv::SESSION_CWD, call.cwd));
    }
    if !call.input.is_null() {
        let mut input = call.input.clone();
        builder.redact_json(&mut input);
        builder.text_attr(
            &mut attributes,
            semconv::SESSION_INPUT,
            semconv::SESSION_INPUT_REF,
            None,
            &input.to_string(),
        );
    }
    let span = builder.span(
        call.trace_id,
        span_id,
        Some(call.parent),
        format!("execute_tool {}", call.name),
        call.ts,
        call.ts,
        call.resource,
        attributes,
    );
    builder.emit(span);
    let mut agent = None;
    if action == "task"
        && let Some(prompt) = field("prompt")
    {
        let agent_id = derive_span_id(call.trace_id, &["agent", &content_hash(prompt)]);
        let kind = field("subagent_type").unwrap_or("general-purpose");
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_AGENT),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_INVOKE_AGENT,
            ),
            KeyValue::new(semconv::GEN_AI_AGENT_NAME, kind),
            KeyValue::new(semconv::SESSION_SUBAGENT_TYPE, kind),
        ];
        if let Some(description) = field("description") {
            let description = builder.redact(description).into_owned();
            attributes.push(KeyValue::new(semconv::SESSION_TITLE, description));
        }
        let span = builder.span(
            call.trace_id,
            agent_id,
            Some(span_id),
            format!("invoke_agent {kind}"),
            call.ts,
            call.ts,
            call.resource,
            attributes,
        );
        builder.emit(span);
        agent = Some(agent_id);
    }
    (span_id, agent)
}

/// A tool call's outcome as the transcript's `tool_result` (with `toolUseResult`) or a
/// `PostToolUse` hook (with `tool_response`) describes it.
pub(crate) struct ToolResult<'a> {
    pub trace_id: TraceId,
    pub resource: u32,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    /// Empty when the call itself was not seen.
    pub name: &'a str,
    pub start: u64,
    pub end: u64,
    pub output: &'a str,
    pub is_error: bool,
    /// The tool's structured result, when there is one.
    pub result: Option<&'a Value>,
}

/// Replaces `old` by `new` in `text`: all occurrences, or the first.
fn apply_edit(text: &str, old: &str, new: &str, all: bool) -> String {
    if old.is_empty() {
        return if text.is_empty() {
            new.to_owned()
        } else {
            text.to_owned()
        };
    }
    if all {
        text.replace(old, new)
    } else {
        text.replacen(old, new, 1)
    }
}

/// Content hashes an edit, write or read reveals: (before, after, read, created).
fn file_hashes(
    name: &str,
    result: &Value,
) -> (Option<String>, Option<String>, Option<String>, bool) {
    let text = |key: &str| result.get(key).and_then(Value::as_str);
    match name {
        "Edit" => {
            let Some(original) = text("originalFile") else {
                return (None, None, None, false);
            };
            let after = apply_edit(
                original,
                text("oldString").unwrap_or(""),
                text("newString").unwrap_or(""),
                result
                    .get("replaceAll")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            );
            (
                Some(content_hash(original)),
                Some(content_hash(&after)),
                None,
                false,
            )
        }
        "MultiEdit" => {
            let Some(original) = text("originalFileContents").or_else(|| text("originalFile"))
            else {
                return (None, None, None, false);
            };
            let mut after = original.to_owned();
            for edit in result
                .get("edits")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let field = |k: &str| edit.get(k).and_then(Value::as_str).unwrap_or("");
                let all = edit
                    .get("replace_all")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                after = apply_edit(&after, field("old_string"), field("new_string"), all);
            }
            (
                Some(content_hash(original)),
                Some(content_hash(&after)),
                None,
                false,
            )
        }
        "Write" => {
            let created = text("type") == Some("create");
            let before = text("originalFile").map(content_hash);
            (before, text("content").map(content_hash), None, created)
        }
        "Read" => {
            let file = result.get("file");
            let content = file.and_then(|f| f.get("content")).and_then(Value::as_str);
            let number = |k: &str| file.and_then(|f| f.get(k)).and_then(Value::as_u64);
            let whole =
                number("startLine").unwrap_or(1) <= 1 && number("numLines") == number("totalLines");
            (
                None,
                None,
                content.filter(|_| whole).map(content_hash),
                false,
            )
        }
        _ => (None, None, None, false),
    }
}

/// "Exit code 2" as Claude Code prefixes failed commands' output.
fn exit_code_in(output: &str) -> Option<i64> {
    let start = output.find("Exit code ")? + "Exit code ".len();
    let digits: String = output[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

pub(crate) fn emit_tool_result(builder: &mut Builder, result: ToolResult) {
    let mut attributes = vec![KeyValue::new(
        semconv::SESSION_SPAN,
        semconv::SESSION_SPAN_TOOL,
    )];
    builder.text_attr(
        &mut attributes,
        semconv::SESSION_OUTPUT,
        semconv::SESSION_OUTPUT_REF,
        Some(semconv::SESSION_OUTPUT_BYTES),
        result.output,
    );
    let mut status = Status::default();
    if result.is_error {
        status = Status {
            code: StatusCode::Error,
            message: builder.redact(&error_message(result.output)).into_owned(),
        };
    }
    if let Some(structured) = result.result {
        let (before, after, read, created) = file_hashes(result.name, structured);
        for (key, value) in [
            (semconv::SESSION_FILE_HASH_BEFORE, before),
            (semconv::SESSION_FILE_HASH_AFTER, after),
            (semconv::SESSION_FILE_HASH, read),
        ] {
            if let Some(value) = value {
                attributes.push(KeyValue::new(key, value));
            }
        }
        if created {
            attributes.push(KeyValue::new(semconv::SESSION_FILE_CREATED, true));
        }
        if result.name == "Bash" && !result.is_error {
            let background = structured
                .get("backgroundTaskId")
                .is_some_and(|v| !v.is_null());
            if !background {
                attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, 0i64));
            }
        }
    }
    if result.is_error
        && result.name == "Bash"
        && let Some(code) = exit_code_in(result.output)
    {
        attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
    }
    let mut span = builder.span(
        result.trace_id,
        result.span_id,
        result.parent,
        if result.name.is_empty() {
            String::new()
        } else {
            format!("execute_tool {}", result.name)
        },
        result.start,
        result.end,
        result.resource,
        attributes,
    );
    span.status = status;
    builder.emit(span);
}

/// What a hook event was about, for the caller (which may then import the transcript).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HookEvent {
    pub event: String,
    pub session_id: String,
    pub transcript_path: String,
    pub trace_id: TraceId,
}

/// Maps one Claude Code hook event (the JSON a hook command gets on stdin) to spans, recorded
/// at `now`: tool calls from `PreToolUse`/`PostToolUse`(`Failure`) with the same ids the
/// transcript gives them; everything else as an event on the session span. The transcript,
/// imported later, fills in turns, responses and tokens.
pub fn hook_event(
    json: &str,
    now: u64,
    redactor: Arc<Redactor>,
) -> Result<(SessionOutput, HookEvent), String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("the hook input is not JSON: {e}"))?;
    let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or("");
    let session_id = text("session_id");
    if session_id.is_empty() {
        return Err(
            "the hook input has no \"session_id\": is this a Claude Code hook event?".into(),
        );
    }
    let event = text("hook_event_name");
    if event.is_empty() {
        return Err("the hook input has no \"hook_event_name\"".into());
    }
    let trace_id = derive_trace_id(AGENT, session_id);
    let mut builder = Builder::new(redactor);
    let resource = builder.resource(AGENT, "");
    let root = session_span_id(trace_id);
    let cwd = text("cwd");
    let prompt = text("prompt");
    SessionRoot {
        trace_id,
        agent: AGENT,
        agent_version: "",
        session_id,
        project: cwd,
        // A later prompt must not retitle the session: titles come from the transcript.
        title: "",
        git_branch: "",
        source: "",
        start: now,
        end: now,
    }
    .emit(&mut builder);
    let tool_use_id = text("tool_use_id");
    let tool_name = text("tool_name");
    let null = Value::Null;
    let is_tool_event = matches!(event, "PreToolUse" | "PostToolUse" | "PostToolUseFailure");
    if is_tool_event && !tool_use_id.is_empty() {
        emit_tool_call(
            &mut builder,
            ToolCall {
                trace_id,
                resource,
                tool_use_id,
                name: tool_name,
                input: value.get("tool_input").unwrap_or(&null),
                cwd,
                parent: root,
                ts: now,
            },
        );
    }
    match event {
        "PreToolUse" if !tool_use_id.is_empty() => {}
        "PostToolUse" | "PostToolUseFailure" if !tool_use_id.is_empty() => {
            let response = value.get("tool_response");
            let failed = event == "PostToolUseFailure"
                || response
                    .and_then(|r| r.get("is_error"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            let output = match response {
                Some(Value::String(s)) => s.clone(),
                Some(r) => ["stdout", "stderr", "content", "error"]
                    .iter()
                    .filter_map(|k| r.get(*k).and_then(Value::as_str))
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => text("error").to_owned(),
            };
            emit_tool_result(
                &mut builder,
                ToolResult {
                    trace_id,
                    resource,
                    span_id: derive_span_id(trace_id, &["tool", tool_use_id]),
                    parent: Some(root),
                    name: tool_name,
                    start: now,
                    end: now,
                    output: &output,
                    is_error: failed,
                    result: response,
                },
            );
        }
        _ => {
            let mut attributes = vec![KeyValue::new(semconv::SESSION_HOOK_NAME, event)];
            if !prompt.is_empty() {
                builder.text_attr(
                    &mut attributes,
                    semconv::SESSION_PROMPT,
                    semconv::SESSION_INPUT_REF,
                    None,
                    prompt,
                );
            }
            let mut span = builder.span(
                trace_id,
                root,
                None,
                String::new(),
                now,
                now,
                resource,
                vec![],
            );
            span.events.push(Event {
                time_unix_nano: now,
                name: semconv::SESSION_HOOK_EVENT.into(),
                attributes,
                dropped_attributes_count: 0,
            });
            builder.emit(span);
        }
    }
    Ok((
        builder.take(),
        HookEvent {
            event: event.to_owned(),
            session_id: session_id.to_owned(),
            transcript_path: text("transcript_path").to_owned(),
            trace_id,
        },
    ))
}
