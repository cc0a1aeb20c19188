//! Gemini CLI's OpenTelemetry events (`"telemetry"` in `~/.gemini/settings.json`), as versions
//! 0.1 to 0.6x send them: `event.name` is `gemini_cli.<event>`, the body a sentence, and every
//! event (and its resource) carries `session.id`; prompt-scoped events carry `prompt_id`.
//! Gemini CLI also exports traces (`llm_call`, `schedule_tool_calls`, `tool_call` spans): they
//! are stored as they are, and the session's LLM and tool calls point at them
//! (`devtrace.session.agent_trace`, and a link when the event names the span).
//!
//! | event | becomes |
//! |---|---|
//! | `config` | the session: model, approval mode, sandbox |
//! | `user_prompt` | the turn of its `prompt_id`, with the prompt when `logPrompts` is on |
//! | `api_response` | an LLM call: tokens (input includes the cached part), duration, the reply's text when `logPrompts` is on |
//! | `api_error` | a failed LLM call |
//! | `tool_call` | a tool call: function, arguments, success, duration, decision, exit code (`metadata.exitCode`) |
//! | `api_request`, `gen_ai.client.inference.operation.details` | not mapped (the response carries what they say; stored as logs only) |
//! | anything else (`file_operation`, `model_routing`, `loop_detected`, …) | a span event on its turn (or the session), kept |
//!
//! Ids: Gemini CLI writes no transcript devtrace imports; the turn is its `prompt_id`; a tool
//! call its call id when the event has one, else its trace, function and arguments.

use super::{Mapper, Record, Session, failed, request_failed};
use crate::sessions::common::{
    ChatCall, content_hash, derive_span_id, head, tool_span_id, turn_span_id_for_prompt,
};
use devtrace_model::metrics::UsageQuantity;
use devtrace_model::{KeyValue, SpanId, semconv};
use serde_json::Value;

pub const AGENT: &str = "gemini-cli";

/// The usage quantity of a Gemini CLI metric data point.
pub(crate) fn metric_quantity(name: &str, kind: Option<&str>) -> Option<UsageQuantity> {
    Some(match (name, kind) {
        // Gemini's input count is the whole prompt, cached part included.
        ("gemini_cli.token.usage", Some("input")) => UsageQuantity::PromptTokens,
        ("gemini_cli.token.usage", Some("output")) => UsageQuantity::OutputTokens,
        ("gemini_cli.token.usage", Some("cache")) => UsageQuantity::CacheReadTokens,
        ("gemini_cli.token.usage", Some("thought")) => UsageQuantity::ReasoningTokens,
        ("gemini_cli.lines.changed", Some("added")) => UsageQuantity::LinesAdded,
        ("gemini_cli.lines.changed", Some("removed")) => UsageQuantity::LinesRemoved,
        _ => return None,
    })
}

pub(crate) fn map(mapper: &mut Mapper, session: &Session, record: &Record) {
    let turn = record
        .text("prompt_id")
        .map(|id| turn_span_id_for_prompt(session.trace_id, id));
    let parent = turn.unwrap_or_else(|| session.root());
    let (start, end) = record.interval("duration_ms");
    if let Some(turn) = turn {
        mapper.turn(session, record, turn, start, end);
    }
    match record.name.as_str() {
        "config" => mapper.settings(
            session,
            record,
            &[
                ("model", "gemini_cli.model"),
                ("approval_mode", "gemini_cli.approval_mode"),
                ("sandbox_enabled", "gemini_cli.sandbox_enabled"),
            ],
        ),
        "user_prompt" => {
            if let (Some(turn), Some(prompt)) = (turn, record.text("prompt")) {
                mapper.prompt(session, turn, prompt, end);
            } else if turn.is_none() {
                mapper.keep(session, parent, record);
            }
        }
        "api_response" | "api_error" => llm_call(mapper, session, record, parent, (start, end)),
        "tool_call" => tool(mapper, session, record, parent, (start, end)),
        "api_request" | "client.inference.operation.details" => {}
        name if name.starts_with("gen_ai.") => {}
        _ => mapper.keep(session, parent, record),
    }
}

/// The text of a logged response: the `text` parts of its candidates (`response_text` is the
/// response as JSON, one object or an array of stream chunks).
fn response_text(raw: &str) -> Option<String> {
    let value: Value = serde_json::from_str(raw).ok()?;
    let chunks = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    let text: String = chunks
        .iter()
        .flat_map(|chunk| chunk.get("candidates").and_then(Value::as_array))
        .flatten()
        .flat_map(|c| c.pointer("/content/parts").and_then(Value::as_array))
        .flatten()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    (!text.trim().is_empty()).then_some(text)
}

fn llm_call(
    mapper: &mut Mapper,
    session: &Session,
    record: &Record,
    parent: SpanId,
    (start, end): (u64, u64),
) {
    let span_id = derive_span_id(
        session.trace_id,
        &[
            "chat-event",
            record.text("prompt_id").unwrap_or(""),
            &record.key(),
        ],
    );
    let count = |key: &str| record.count(key).unwrap_or(0);
    let response = record.text("response_text").and_then(response_text);
    mapper.builder.chat(ChatCall {
        trace_id: session.trace_id,
        span_id,
        parent,
        agent: session.agent.name(),
        provider: session.agent.provider(),
        model: record.text("model").unwrap_or(""),
        response_id: None,
        input_tokens: count("input_token_count"),
        output_tokens: count("output_token_count"),
        cache_read_tokens: count("cached_content_token_count"),
        cache_creation_tokens: None,
        cache_creation_1h_tokens: None,
        tool_calls: &[],
        response: response
            .as_deref()
            .map(|t| head(t, crate::sessions::INLINE_TEXT_BYTES)),
        start,
        end,
        from_telemetry: true,
    });
    let mut attributes = Vec::new();
    mapper.provenance(record, &mut attributes);
    if let Some(thoughts) = record.count("thoughts_token_count") {
        attributes.push(KeyValue::new(
            "gen_ai.usage.reasoning.output_tokens",
            thoughts as i64,
        ));
    }
    if let Some(role) = record.text("role") {
        attributes.push(KeyValue::new("gemini_cli.role", role));
    }
    let mut span = mapper.span(
        session,
        span_id,
        None,
        String::new(),
        (start, end),
        attributes,
    );
    span.links = Mapper::agent_link(record);
    if record.name == "api_error" {
        span.status = request_failed(record);
    }
    mapper.builder.emit(span);
}

/// What a Gemini CLI tool does, from its name.
pub fn action_of(tool: &str) -> &'static str {
    match tool {
        "read_file" | "read_many_files" => "read",
        "replace" | "edit" => "edit",
        "write_file" => "write",
        "run_shell_command" => "command",
        "glob" | "search_file_content" | "grep" | "list_directory" | "ls" => "search",
        "web_fetch" | "google_web_search" => "web",
        "write_todos" => "plan",
        "save_memory" => "note",
        _ => "other",
    }
}

fn tool(
    mapper: &mut Mapper,
    session: &Session,
    record: &Record,
    parent: SpanId,
    (start, end): (u64, u64),
) {
    let name = record.text("function_name").unwrap_or("unknown");
    let arguments: Value = record
        .text("function_args")
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(Value::Null);
    let span_id = match record
        .text("call_id")
        .or_else(|| record.text("tool_call_id"))
    {
        Some(call_id) => tool_span_id(session.trace_id, call_id),
        None => derive_span_id(
            session.trace_id,
            &[
                "tool-event",
                &record.agent_trace().unwrap_or_else(|| record.key()),
                name,
                &content_hash(&arguments.to_string()),
            ],
        ),
    };
    let action = action_of(name);
    let mut attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            semconv::GEN_AI_OPERATION_EXECUTE_TOOL,
        ),
        KeyValue::new(semconv::GEN_AI_TOOL_NAME, name),
        KeyValue::new(semconv::SESSION_ACTION, action),
    ];
    mapper.provenance(record, &mut attributes);
    let field = |key: &str| arguments.get(key).and_then(Value::as_str);
    if let Some(path) = field("file_path")
        .or_else(|| field("absolute_path"))
        .or_else(|| field("path"))
    {
        attributes.push(KeyValue::new(semconv::SESSION_FILE_PATH, path));
    }
    if let Some(command) = field("command").filter(|_| action == "command") {
        attributes.push(KeyValue::new(semconv::SESSION_COMMAND, command));
    }
    if let Some(directory) = field("dir_path").or_else(|| field("directory")) {
        attributes.push(KeyValue::new(semconv::SESSION_CWD, directory));
    }
    match (
        name,
        field("old_string"),
        field("new_string"),
        field("content"),
    ) {
        ("replace" | "edit", Some(old), Some(new), _) => {
            attributes.push(KeyValue::new(
                semconv::SESSION_FILE_HASH_BEFORE,
                content_hash(old),
            ));
            attributes.push(KeyValue::new(
                semconv::SESSION_FILE_HASH_AFTER,
                content_hash(new),
            ));
        }
        ("write_file", _, _, Some(content)) => {
            attributes.push(KeyValue::new(
                semconv::SESSION_FILE_HASH_AFTER,
                content_hash(content),
            ));
        }
        _ => {}
    }
    if !arguments.is_null() {
        mapper.builder.text_attr(
            &mut attributes,
            semconv::SESSION_INPUT,
            semconv::SESSION_INPUT_REF,
            None,
            &arguments.to_string(),
        );
    }
    if let Some(decision) = record.text("decision") {
        attributes.push(KeyValue::new(semconv::SESSION_TOOL_DECISION, decision));
    }
    let metadata: Value = record
        .text("metadata")
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or(Value::Null);
    let exit_code = metadata.get("exitCode").and_then(Value::as_i64);
    if let Some(code) = exit_code {
        attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
    }
    if let Some(bytes) = record.count("content_length") {
        attributes.push(KeyValue::new(semconv::SESSION_OUTPUT_BYTES, bytes as i64));
    }
    let mut span = mapper.span(
        session,
        span_id,
        Some(parent),
        format!("execute_tool {name}"),
        (start, end),
        attributes,
    );
    span.links = Mapper::agent_link(record);
    // `success` says the tool ran; a shell command that exited non-zero failed too.
    let is_error = metadata.get("isError").and_then(Value::as_bool) == Some(true);
    if record.flag("success") == Some(false) || is_error || exit_code.is_some_and(|c| c != 0) {
        let message = record
            .text("error")
            .map(str::to_owned)
            .or_else(|| exit_code.map(|c| format!("exited with code {c}")))
            .unwrap_or_else(|| "the tool call failed".to_owned());
        span.status = failed(&message);
    }
    if matches!(record.text("decision"), Some("reject")) {
        span.status = failed("not run: rejected");
    }
    mapper.builder.emit(span);
}
