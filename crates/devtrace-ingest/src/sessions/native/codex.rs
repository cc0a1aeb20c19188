//! Codex CLI's OpenTelemetry events (`[otel]` in `~/.codex/config.toml`), as versions 0.2x to
//! 0.16x send them: `event.name` is `codex.<event>`, every event carries `conversation.id`,
//! `app.version`, `model` and `event.timestamp`, and the record's own time is zero (the SDK's
//! observed time and `event.timestamp` say when). With a trace exporter configured, the
//! events of one turn carry that turn's trace id, which its rollout's `task_started` records
//! too.
//!
//! | event | becomes |
//! |---|---|
//! | `conversation_starts` | the session: provider, model, approval and sandbox policy |
//! | `user_prompt` | a turn, with the prompt when `log_user_prompt = true` |
//! | `api_request` | an LLM request: a failed one (status not 2xx, `error.message`) is a failed LLM call; a successful one lends its duration and turn to the tokens that follow |
//! | `sse_event` (`response.completed`, with token counts) | an LLM call with its tokens |
//! | `tool_decision` | the tool call of its `call_id`, with the decision and its source |
//! | `tool_result` | the tool call: arguments, output, duration; the exit code from the output |
//! | other `sse_event`s, `websocket_*` | not mapped (stored as logs only) |
//! | anything else | a span event on its turn (or the session), kept |
//!
//! Ids: the session id is the rollout's; a turn is its trace id (the rollout names the turn
//! the same way when its `task_started` has the trace id), else the prompt's time; a tool call
//! its `call_id`. LLM calls are named by their event (Codex's events carry no response id).

use super::{Mapper, Record, Session, failed};
use crate::sessions::codex::{
    PatchEdits, command_of, emit_patch_edits, looks_failed, output_of, parse_patch,
};
use crate::sessions::common::{ChatCall, derive_span_id, tool_span_id, turn_span_id_for_trace};
use devtrace_model::{KeyValue, SpanId, semconv};
use serde_json::Value;
use std::collections::HashMap;

/// Pairs token counts with the request before them in the same batch (Codex logs the
/// request, then the stream's events, the completion with its tokens last).
#[derive(Default)]
pub(crate) struct Pairing {
    /// Per conversation: the last successful request's turn and (start, end).
    last_request: HashMap<String, (Option<SpanId>, u64, u64)>,
}

/// Events that happen within a turn; the others (the conversation's start, start-up phases,
/// authentication) carry the trace of the session's start-up, not of a turn.
const TURN_EVENTS: &[&str] = &[
    "user_prompt",
    "api_request",
    "sse_event",
    "tool_decision",
    "tool_result",
    "turn_ttft",
    "sandbox_outcome",
    "websocket_request",
    "websocket_event",
];

fn turn_of(session: &Session, record: &Record) -> Option<SpanId> {
    if !TURN_EVENTS.contains(&record.name.as_str()) {
        return None;
    }
    record
        .agent_trace()
        .map(|trace| turn_span_id_for_trace(session.trace_id, &trace))
}

pub(crate) fn map(mapper: &mut Mapper, pairing: &mut Pairing, session: &Session, record: &Record) {
    let turn = turn_of(session, record);
    let parent = turn.unwrap_or_else(|| session.root());
    let (start, end) = record.interval("duration_ms");
    if let Some(turn) = turn {
        mapper.turn(session, record, turn, start, end);
    }
    let conversation = record.text("conversation.id").unwrap_or("").to_owned();
    match record.name.as_str() {
        "conversation_starts" => mapper.settings(
            session,
            record,
            &[
                ("model", "codex.model"),
                ("provider_name", "codex.provider"),
                ("approval_policy", "codex.approval_policy"),
                ("sandbox_policy", "codex.sandbox_policy"),
                ("reasoning_effort", "codex.reasoning_effort"),
            ],
        ),
        "user_prompt" => {
            // Without a trace id the prompt's event names the turn: its later events cannot
            // be placed in it and hang under the session.
            let turn = turn.unwrap_or_else(|| mapper.turn_of_event(session, record, end));
            if let Some(prompt) = record.text("prompt").filter(|p| *p != "[REDACTED]") {
                mapper.prompt(session, turn, prompt, end);
            }
        }
        "api_request" => {
            let status = record.count("http.response.status_code");
            let error = record.text("error.message");
            let ok = error.is_none() && status.is_none_or(|s| (200..300).contains(&s));
            if ok {
                pairing
                    .last_request
                    .insert(conversation, (turn, start, end));
                return;
            }
            let span_id = derive_span_id(session.trace_id, &["chat-event", &record.key()]);
            let mut attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
                KeyValue::new(
                    semconv::GEN_AI_OPERATION_NAME,
                    semconv::GEN_AI_OPERATION_CHAT,
                ),
                KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, session.agent.provider()),
            ];
            if let Some(model) = record.text("model") {
                attributes.push(KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, model));
            }
            if let Some(attempt) = record.count("attempt") {
                attributes.push(KeyValue::new(semconv::LLM_ATTEMPT, attempt as i64 + 1));
            }
            mapper.provenance(record, &mut attributes);
            let mut span = mapper.span(
                session,
                span_id,
                Some(parent),
                format!("chat {}", record.text("model").unwrap_or(""))
                    .trim()
                    .to_owned(),
                (start, end),
                attributes,
            );
            let message = match (error, status) {
                (Some(error), _) => error.to_owned(),
                (None, Some(status)) => format!("HTTP {status}"),
                (None, None) => "the request failed".to_owned(),
            };
            span.status = failed(&message);
            mapper.builder.emit(span);
        }
        "sse_event" => {
            let completed = record.text("event.kind") == Some("response.completed");
            if record.text("error.message").is_some() {
                // A failed stream is worth seeing on its turn.
                mapper.keep(session, parent, record);
                return;
            }
            if !completed || record.attr("input_token_count").is_none() {
                return;
            }
            let (request_turn, request_start, request_end) = pairing
                .last_request
                .remove(&conversation)
                .unwrap_or((None, end, end));
            let parent = turn.or(request_turn).unwrap_or_else(|| session.root());
            let count = |key: &str| record.count(key).unwrap_or(0);
            let span_id = derive_span_id(session.trace_id, &["chat-event", &record.key()]);
            mapper.builder.chat(ChatCall {
                trace_id: session.trace_id,
                span_id,
                parent,
                agent: session.agent.name(),
                provider: session.agent.provider(),
                model: record.text("model").unwrap_or(""),
                response_id: None,
                // OpenAI's input tokens include the cached ones.
                input_tokens: count("input_token_count"),
                output_tokens: count("output_token_count"),
                cache_read_tokens: count("cached_token_count"),
                cache_creation_tokens: record.count("cache_write_token_count"),
                cache_creation_1h_tokens: None,
                tool_calls: &[],
                response: None,
                start: request_start.min(end),
                end: end.max(request_end),
                from_telemetry: true,
            });
            let mut attributes = Vec::new();
            mapper.provenance(record, &mut attributes);
            if let Some(reasoning) = record.count("reasoning_token_count") {
                attributes.push(KeyValue::new(
                    "gen_ai.usage.reasoning.output_tokens",
                    reasoning as i64,
                ));
            }
            let span = mapper.span(
                session,
                span_id,
                None,
                String::new(),
                (end, end),
                attributes,
            );
            mapper.builder.emit(span);
        }
        "tool_decision" | "tool_result" => tool(mapper, session, record, parent, (start, end)),
        "websocket_event" | "websocket_request" | "websocket_connect" => {}
        _ => mapper.keep(session, parent, record),
    }
}

fn tool(
    mapper: &mut Mapper,
    session: &Session,
    record: &Record,
    parent: SpanId,
    (start, end): (u64, u64),
) {
    let Some(call_id) = record.text("call_id") else {
        mapper.keep(session, parent, record);
        return;
    };
    let name = record.text("tool_name").unwrap_or("unknown");
    let span_id = tool_span_id(session.trace_id, call_id);
    let mut attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            semconv::GEN_AI_OPERATION_EXECUTE_TOOL,
        ),
        KeyValue::new(semconv::GEN_AI_TOOL_NAME, name),
        KeyValue::new(semconv::GEN_AI_TOOL_CALL_ID, call_id),
    ];
    mapper.provenance(record, &mut attributes);
    if let Some(decision) = record.text("decision") {
        attributes.push(KeyValue::new(semconv::SESSION_TOOL_DECISION, decision));
    }
    if let Some(source) = record.text("source") {
        attributes.push(KeyValue::new(semconv::SESSION_TOOL_DECISION_SOURCE, source));
    }
    let mut status = devtrace_model::Status::default();
    let mut patch = Vec::new();
    if record.name == "tool_result" {
        (status, patch) = tool_result(mapper, record, name, &mut attributes);
    } else if matches!(record.text("decision"), Some("denied" | "abort")) {
        status = failed(&format!(
            "not run: {} ({})",
            record.text("decision").unwrap_or(""),
            record.text("source").unwrap_or("unknown source")
        ));
    }
    let mut span = mapper.span(
        session,
        span_id,
        Some(parent),
        format!("execute_tool {name}"),
        (start, end),
        attributes,
    );
    span.status = status.clone();
    span.links = Mapper::agent_link(record);
    mapper.builder.emit(span);
    // One edit per file a patch touched, under the call, as the rollout importer records.
    let resource = mapper.builder.resource(session.agent.name(), "");
    emit_patch_edits(
        &mut mapper.builder,
        PatchEdits {
            trace_id: session.trace_id,
            resource,
            call_id,
            call_span: span_id,
            patch: &patch,
            start,
            end,
            failed: status.code == devtrace_model::StatusCode::Error,
            extra: &[KeyValue::new(semconv::SESSION_FROM_TELEMETRY, true)],
        },
    );
}

/// A `tool_result` record's attributes (action, command, input, output, exit code, the file a
/// one-file patch touched), its status and the files its patch changed.
fn tool_result(
    mapper: &mut Mapper,
    record: &Record,
    name: &str,
    attributes: &mut Vec<KeyValue>,
) -> (devtrace_model::Status, Vec<(String, String, String)>) {
    let arguments: Value = match record.text("arguments") {
        Some(text) => serde_json::from_str(text).unwrap_or(Value::String(text.to_owned())),
        None => Value::Null,
    };
    let command = command_of(name, &arguments, &Value::Null);
    let patch_text = (name == "apply_patch")
        .then(|| {
            arguments
                .as_str()
                .or_else(|| arguments.get("input").and_then(Value::as_str))
                .or_else(|| arguments.get("patch").and_then(Value::as_str))
        })
        .flatten()
        .or_else(|| {
            command
                .as_deref()
                .and_then(|c| c.find("*** Begin Patch").map(|i| &c[i..]))
        })
        .map(str::to_owned);
    let action = if patch_text.is_some() {
        "patch"
    } else if command.is_some() {
        "command"
    } else {
        match name {
            "update_plan" => "plan",
            "view_image" | "read_file" => "read",
            "web_search" => "web",
            "grep_files" | "list_dir" => "search",
            _ => "other",
        }
    };
    attributes.push(KeyValue::new(semconv::SESSION_ACTION, action));
    if let Some(workdir) = arguments
        .get("workdir")
        .or_else(|| arguments.get("working_directory"))
        .and_then(Value::as_str)
    {
        attributes.push(KeyValue::new(semconv::SESSION_CWD, workdir));
    }
    if let Some(command) = &command
        && patch_text.is_none()
    {
        attributes.push(KeyValue::new(semconv::SESSION_COMMAND, command.as_str()));
    }
    if !arguments.is_null() {
        let text = match &arguments {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        mapper.builder.text_attr(
            attributes,
            semconv::SESSION_INPUT,
            semconv::SESSION_INPUT_REF,
            None,
            &text,
        );
    }
    let patch = patch_text.as_deref().map(parse_patch).unwrap_or_default();
    if let [(path, _, _)] = patch.as_slice() {
        attributes.push(KeyValue::new(semconv::SESSION_FILE_PATH, path.as_str()));
    }
    let output = Value::String(record.text("output").unwrap_or("").to_owned());
    let (text, exit_code) = output_of(&output);
    mapper.builder.text_attr(
        attributes,
        semconv::SESSION_OUTPUT,
        semconv::SESSION_OUTPUT_REF,
        Some(semconv::SESSION_OUTPUT_BYTES),
        &text,
    );
    if let Some(code) = exit_code {
        attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
    }
    // `success` says the tool ran; a command that ran and exited non-zero failed too.
    let ran = record.flag("success") != Some(false);
    let exited_badly = exit_code.is_some_and(|c| c != 0);
    let status = if !ran || exited_badly || (exit_code.is_none() && looks_failed(&text)) {
        failed(if text.trim().is_empty() {
            "the tool call failed"
        } else {
            &text
        })
    } else {
        devtrace_model::Status::default()
    };
    (status, patch)
}
