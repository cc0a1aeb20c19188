//! Claude Code's OpenTelemetry events (`CLAUDE_CODE_ENABLE_TELEMETRY=1`,
//! `OTEL_LOGS_EXPORTER=otlp`), as versions 1.0 to 2.1 send them: the body is
//! `claude_code.<event>`, `event.name` the short name, and every event carries `session.id`,
//! `event.timestamp`, `event.sequence` and (since 1.0.x) `prompt.id`. Numbers and booleans are
//! often sent as strings (`"duration_ms": "75"`, `"success": "false"`).
//!
//! | event | becomes |
//! |---|---|
//! | `user_prompt` | the turn of its `prompt.id`, with the prompt when `OTEL_LOG_USER_PROMPTS=1` |
//! | `api_request` | an LLM call (`chat <model>`) named by `request_id`: tokens, cost, duration |
//! | `api_error` | a failed LLM call: `error`, `status_code`, `attempt` |
//! | `assistant_response` | the reply's text on the LLM call before it (opt-in) |
//! | `tool_decision` | the tool call of its `tool_use_id`, with the decision and who made it |
//! | `tool_result` | the tool call: success, duration, error; the command and input when `OTEL_LOG_TOOL_DETAILS=1` |
//! | anything else | a span event on its turn (or the session), kept |
//!
//! Ids: the session id is the transcript's; a turn is its `prompt.id` (the transcript's
//! `promptId`); an LLM call its `request_id` (the transcript's `requestId`); a tool call its
//! `tool_use_id`. So `devtrace import claude-code` of the same session merges into these spans.

use super::{Mapper, Record, Session, failed, request_failed};
use crate::sessions::claude_code::{ToolCall, emit_tool_call};
use crate::sessions::common::{
    ChatCall, chat_span_id_for_request, derive_span_id, head, tool_span_id, turn_span_id_for_prompt,
};
use devtrace_model::metrics::UsageQuantity;
use devtrace_model::{KeyValue, SpanId, semconv};
use serde_json::Value;
use std::collections::HashMap;

/// What one batch remembers to pair an event with an earlier one of the same batch: the last
/// LLM call of each prompt (a reply's text follows its request).
#[derive(Default)]
pub(crate) struct Pairing {
    last_chat: HashMap<String, SpanId>,
}

/// The usage quantity of a Claude Code metric data point.
pub(crate) fn metric_quantity(name: &str, kind: Option<&str>) -> Option<UsageQuantity> {
    Some(match (name, kind) {
        ("claude_code.cost.usage", _) => UsageQuantity::CostUsd,
        ("claude_code.token.usage", Some("input")) => UsageQuantity::InputTokens,
        ("claude_code.token.usage", Some("output")) => UsageQuantity::OutputTokens,
        ("claude_code.token.usage", Some("cacheRead")) => UsageQuantity::CacheReadTokens,
        ("claude_code.token.usage", Some("cacheCreation")) => UsageQuantity::CacheWriteTokens,
        ("claude_code.lines_of_code.count", Some("added")) => UsageQuantity::LinesAdded,
        ("claude_code.lines_of_code.count", Some("removed")) => UsageQuantity::LinesRemoved,
        ("claude_code.commit.count", _) => UsageQuantity::Commits,
        ("claude_code.pull_request.count", _) => UsageQuantity::PullRequests,
        ("claude_code.active_time.total", _) => UsageQuantity::ActiveSeconds,
        _ => return None,
    })
}

pub(crate) fn map(mapper: &mut Mapper, pairing: &mut Pairing, session: &Session, record: &Record) {
    let turn = record
        .text("prompt.id")
        .map(|id| turn_span_id_for_prompt(session.trace_id, id));
    let parent = turn.unwrap_or_else(|| session.root());
    let (start, end) = record.interval("duration_ms");
    if let Some(turn) = turn {
        mapper.turn(session, record, turn, start, end);
    }
    match record.name.as_str() {
        "user_prompt" => {
            // Before prompt ids (1.0) a prompt is a turn of its own: what followed it cannot
            // be placed in it and hangs under the session.
            let turn = turn.unwrap_or_else(|| mapper.turn_of_event(session, record, end));
            // Without OTEL_LOG_USER_PROMPTS the prompt is `<REDACTED>` (only its length).
            if let Some(prompt) = record.text("prompt").filter(|p| *p != "<REDACTED>") {
                mapper.prompt(session, turn, prompt, end);
            }
        }
        "api_request" | "api_error" => {
            let request = record.text("request_id");
            let span_id = match request {
                Some(request) if record.name == "api_request" => {
                    chat_span_id_for_request(session.trace_id, request)
                }
                _ => derive_span_id(
                    session.trace_id,
                    &["chat-event", &record.name, &record.key()],
                ),
            };
            llm_call(mapper, session, record, span_id, parent, (start, end));
            if record.name == "api_request"
                && let Some(prompt) = record.text("prompt.id")
            {
                pairing.last_chat.insert(prompt.to_owned(), span_id);
            }
        }
        "assistant_response" => {
            let Some(text) = record.text("response") else {
                mapper.keep(session, parent, record);
                return;
            };
            let span_id = record
                .text("prompt.id")
                .and_then(|p| pairing.last_chat.get(p).copied())
                .unwrap_or_else(|| {
                    derive_span_id(session.trace_id, &["chat-event", "reply", &record.key()])
                });
            let mut attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
                KeyValue::new(
                    semconv::SESSION_RESPONSE,
                    head(text, crate::sessions::INLINE_TEXT_BYTES),
                ),
            ];
            mapper.provenance(record, &mut attributes);
            let model = record.text("model").unwrap_or("");
            let name = if model.is_empty() {
                "chat".to_owned()
            } else {
                format!("chat {model}")
            };
            let span = mapper.span(session, span_id, Some(parent), name, (end, end), attributes);
            mapper.builder.emit(span);
        }
        "tool_decision" | "tool_result" => tool(mapper, session, record, parent, (start, end)),
        _ => mapper.keep(session, parent, record),
    }
}

fn llm_call(
    mapper: &mut Mapper,
    session: &Session,
    record: &Record,
    span_id: SpanId,
    parent: SpanId,
    (start, end): (u64, u64),
) {
    let count = |key: &str| record.count(key).unwrap_or(0);
    let (fresh, cache_read, cache_write) = (
        count("input_tokens"),
        count("cache_read_tokens"),
        count("cache_creation_tokens"),
    );
    mapper.builder.chat(ChatCall {
        trace_id: session.trace_id,
        span_id,
        parent,
        agent: session.agent.name(),
        provider: session.agent.provider(),
        model: record.text("model").unwrap_or(""),
        response_id: record.text("request_id"),
        input_tokens: fresh + cache_read + cache_write,
        output_tokens: count("output_tokens"),
        cache_read_tokens: cache_read,
        cache_creation_tokens: Some(cache_write),
        cache_creation_1h_tokens: None,
        tool_calls: &[],
        response: None,
        start,
        end,
        from_telemetry: true,
    });
    let mut attributes = Vec::new();
    mapper.provenance(record, &mut attributes);
    if let Some(cost) = record.number("cost_usd") {
        attributes.push(KeyValue::new(semconv::LLM_COST_USD, cost));
    }
    if let Some(attempt) = record.count("attempt") {
        attributes.push(KeyValue::new(semconv::LLM_ATTEMPT, attempt as i64));
    }
    for key in ["query_source", "speed", "effort"] {
        if let Some(value) = record.text(key) {
            attributes.push(KeyValue::new(format!("claude_code.{key}"), value));
        }
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

/// The tool's input as far as the event tells: `tool_input` (the whole input, with
/// `OTEL_LOG_TOOL_DETAILS=1`), else the command from `tool_parameters`.
fn tool_input(record: &Record) -> Option<Value> {
    if let Some(input) = record.text("tool_input")
        && let Ok(value) = serde_json::from_str::<Value>(input)
        && !value.is_null()
    {
        return Some(value);
    }
    let parameters: Value = serde_json::from_str(record.text("tool_parameters")?).ok()?;
    let command = parameters.get("full_command").and_then(Value::as_str)?;
    let mut input = serde_json::json!({ "command": command });
    if let Some(description) = parameters.get("description") {
        input["description"] = description.clone();
    }
    Some(input)
}

fn tool(
    mapper: &mut Mapper,
    session: &Session,
    record: &Record,
    parent: SpanId,
    (start, end): (u64, u64),
) {
    // Before 2.0 the events carried no `tool_use_id`: a result is then a call of its own (its
    // decision, which cannot be matched with it, is kept as an event).
    let key;
    let call_id = match record.text("tool_use_id") {
        Some(id) => id,
        None if record.name == "tool_result" => {
            key = format!("event-{}", record.key());
            &key
        }
        None => {
            mapper.keep(session, parent, record);
            return;
        }
    };
    let name = record.text("tool_name").unwrap_or("unknown");
    let input = tool_input(record);
    let resource = mapper.builder.resource(session.agent.name(), "");
    // The call itself, as the transcript's `tool_use` block names it: action, path, command.
    emit_tool_call(
        &mut mapper.builder,
        ToolCall {
            trace_id: session.trace_id,
            resource,
            tool_use_id: call_id,
            name,
            input: input.as_ref().unwrap_or(&Value::Null),
            cwd: "",
            parent,
            ts: start,
        },
    );
    let mut attributes = vec![KeyValue::new(
        semconv::SESSION_SPAN,
        semconv::SESSION_SPAN_TOOL,
    )];
    mapper.provenance(record, &mut attributes);
    if input.is_none() {
        attributes.push(KeyValue::new(semconv::SESSION_INPUT_WITHHELD, true));
    }
    let decision = record
        .text("decision")
        .or_else(|| record.text("decision_type"));
    let decision_source = record
        .text("source")
        .or_else(|| record.text("decision_source"));
    if let Some(decision) = decision {
        attributes.push(KeyValue::new(semconv::SESSION_TOOL_DECISION, decision));
    }
    if let Some(source) = decision_source {
        attributes.push(KeyValue::new(semconv::SESSION_TOOL_DECISION_SOURCE, source));
    }
    if let Some(bytes) = record.count("tool_result_size_bytes") {
        attributes.push(KeyValue::new(semconv::SESSION_OUTPUT_BYTES, bytes as i64));
    }
    let mut span = mapper.span(
        session,
        tool_span_id(session.trace_id, call_id),
        Some(parent),
        format!("execute_tool {name}"),
        (start, end),
        attributes,
    );
    span.links = Mapper::agent_link(record);
    if record.name == "tool_result" && record.flag("success") == Some(false) {
        let error = record
            .text("error")
            .or_else(|| record.text("error_type"))
            .unwrap_or("the tool call failed");
        span.status = failed(error);
    } else if record.name == "tool_decision" && decision == Some("reject") {
        span.status = failed(&format!(
            "not run: rejected ({})",
            decision_source.unwrap_or("unknown source")
        ));
    }
    mapper.builder.emit(span);
}
