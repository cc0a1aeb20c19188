//! Kinds of work, from OpenTelemetry semantic conventions (old and new spellings).

use crate::AnalyzedTrace;
use devtrace_model::conventions::Concept;
use devtrace_model::{AnyValue, SpanKind};
use serde::Serialize;

/// A BEAM call out of the recording (docs/beam.md): its time waiting for messages no recorded
/// process sent (a port's — a socket, an OS process —, a process left out of the recording).
pub const WAITED_OUTSIDE_NS: &str = "devtrace.beam.waited_outside_ns";
/// The function a BEAM call out of the recording stands for (its own, or the one that
/// tail-called the helper making it): what the call is, as an RPC's method is.
pub const CALL_OUT_FUNCTION: &str = "devtrace.beam.call_out.function";

/// What a span spends its own time on.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    Llm,
    Database,
    Http,
    Rpc,
    Messaging,
    FileIo,
    LockWait,
    Other,
}

impl WorkKind {
    pub const ALL: [WorkKind; 8] = [
        Self::Llm,
        Self::Database,
        Self::Http,
        Self::Rpc,
        Self::Messaging,
        Self::FileIo,
        Self::LockWait,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Database => "database",
            Self::Http => "http",
            Self::Rpc => "rpc",
            Self::Messaging => "messaging",
            Self::FileIo => "file_io",
            Self::LockWait => "lock_wait",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Llm => "LLM",
            Self::Database => "database",
            Self::Http => "HTTP",
            Self::Rpc => "RPC",
            Self::Messaging => "messaging",
            Self::FileIo => "file I/O",
            Self::LockWait => "lock wait",
            Self::Other => "other",
        }
    }
}

const LLM_KEYS: &[&str] = &[
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.operation.name",
    "llm.request.model",
    "llm.model_name",
];
const FILE_KEYS: &[&str] = &["file.path", "file.name", "devtrace.io.path"];

/// Classifies a span by its attributes, read through the conventions table (old and new
/// names alike). HTTP and RPC count as such only for outgoing calls (a server span's own time
/// is the handler's work); messaging only on the producing or receiving side, not while a
/// consumer processes a message.
pub fn classify(trace: &AnalyzedTrace, index: usize) -> WorkKind {
    let span = trace.span(index);
    let has = |concepts: &[Concept]| concepts.iter().any(|c| span.concept(*c).is_some());
    let name = span.name.as_str();
    let kind = span.effective_kind();
    if span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("devtrace.lock."))
        || name.starts_with("lock.wait")
    {
        WorkKind::LockWait
    } else if LLM_KEYS.iter().any(|k| span.attr(k).is_some())
        && !span
            .attr(devtrace_model::semconv::GEN_AI_OPERATION_NAME)
            .and_then(AnyValue::as_str)
            .is_some_and(|op| op == "execute_tool" || op == "invoke_agent")
    {
        WorkKind::Llm
    } else if has(&[
        Concept::DbSystem,
        Concept::DbStatement,
        Concept::DbOperation,
    ]) && kind != SpanKind::Server
    {
        WorkKind::Database
    } else if has(&[Concept::RpcSystem, Concept::RpcService, Concept::RpcMethod])
        && kind != SpanKind::Server
    {
        WorkKind::Rpc
    } else if span.attr(WAITED_OUTSIDE_NS).is_some() && kind == SpanKind::Client {
        // A BEAM call out of the recording: a request to something outside, by its function.
        WorkKind::Rpc
    } else if has(&[Concept::HttpMethod, Concept::HttpUrl]) && kind != SpanKind::Server {
        WorkKind::Http
    } else if has(&[Concept::MessagingSystem, Concept::MessagingDestination])
        && kind != SpanKind::Consumer
        && kind != SpanKind::Server
    {
        WorkKind::Messaging
    } else if FILE_KEYS.iter().any(|k| span.attr(k).is_some())
        || name.starts_with("file.")
        || name.starts_with("fs.")
    {
        WorkKind::FileIo
    } else {
        WorkKind::Other
    }
}

/// Input and output token counts of an LLM span, reading the current `gen_ai.usage.*` names
/// and the older `prompt`/`completion` spellings.
pub fn tokens(trace: &AnalyzedTrace, index: usize) -> Option<(u64, u64)> {
    let read = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| trace.span(index).attr(k).and_then(|v| v.as_i64()))
            .map(|n| n.max(0) as u64)
    };
    let input = read(&[
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
    ]);
    let output = read(&[
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
    ]);
    if input.is_none() && output.is_none() {
        None
    } else {
        Some((input.unwrap_or(0), output.unwrap_or(0)))
    }
}

/// Model names, first present wins.
pub const MODEL_KEYS: &[&str] = &[
    "gen_ai.request.model",
    "llm.request.model",
    "gen_ai.response.model",
    "llm.model_name",
];
const PROVIDER_KEYS: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
const PROMPT_KEYS: &[&str] = &["gen_ai.prompt", "gen_ai.input.messages"];
const PROMPT_EVENT: &str = "gen_ai.content.prompt";
const RESPONSE_KEYS: &[&str] = &["gen_ai.completion", "gen_ai.output.messages"];
const RESPONSE_EVENT: &str = "gen_ai.content.completion";

/// What an LLM span recorded, for display: model, provider, token counts, and the prompt and
/// response text when the instrumentation stored them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LlmCall {
    pub model: Option<String>,
    pub provider: Option<String>,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub prompt: Option<String>,
    pub response: Option<String>,
}

/// The LLM call a span records, when it is one (see [`classify`]).
pub fn llm_call(trace: &AnalyzedTrace, index: usize) -> Option<LlmCall> {
    let span = trace.span(index);
    let is_llm = span
        .attributes
        .iter()
        .any(|kv| LLM_KEYS.contains(&kv.key.as_str()))
        || tokens(trace, index).is_some()
        || prompt_text(trace, index).is_some();
    if !is_llm {
        return None;
    }
    let first = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| span.attr(k).and_then(AnyValue::as_str))
            .map(str::to_owned)
    };
    let (input_tokens, output_tokens) = match tokens(trace, index) {
        Some((i, o)) => (Some(i), Some(o)),
        None => (None, None),
    };
    Some(LlmCall {
        model: first(MODEL_KEYS),
        provider: first(PROVIDER_KEYS),
        input_tokens,
        output_tokens,
        prompt: prompt_text(trace, index),
        response: recorded_text(
            trace,
            index,
            RESPONSE_KEYS,
            "gen_ai.completion",
            RESPONSE_EVENT,
        ),
    })
}

/// The prompt text of an LLM span, as recorded by the current or older conventions.
pub fn prompt_text(trace: &AnalyzedTrace, index: usize) -> Option<String> {
    recorded_text(trace, index, PROMPT_KEYS, "gen_ai.prompt", PROMPT_EVENT)
}

/// Text recorded under one of `keys`, else OpenLLMetry's indexed `<prefix>.<n>.content`
/// attributes joined in order, else the older event form (an event named `event` carrying a
/// `<prefix>` attribute).
fn recorded_text(
    trace: &AnalyzedTrace,
    index: usize,
    keys: &[&str],
    prefix: &str,
    event: &str,
) -> Option<String> {
    let span = trace.span(index);
    let text = |value: &AnyValue| Some(value.to_display_string()).filter(|t| !t.is_empty());
    if let Some(found) = keys.iter().find_map(|k| span.attr(k).and_then(text)) {
        return Some(found);
    }
    let mut parts: Vec<(u64, String)> = span
        .attributes
        .iter()
        .filter_map(|kv| {
            let n = kv
                .key
                .strip_prefix(prefix)?
                .strip_prefix('.')?
                .strip_suffix(".content")?
                .parse()
                .ok()?;
            Some((n, text(&kv.value)?))
        })
        .collect();
    if !parts.is_empty() {
        parts.sort();
        let joined: Vec<String> = parts.into_iter().map(|(_, t)| t).collect();
        return Some(joined.join("\n"));
    }
    span.events
        .iter()
        .filter(|e| e.name == event)
        .find_map(|e| devtrace_model::find_attr(&e.attributes, prefix).and_then(text))
}

#[cfg(test)]
mod llm_tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, TraceId};

    #[test]
    fn llm_calls_read_model_tokens_and_indexed_prompt_and_response() {
        let mut call = span(1, None, "chat", 0, 10);
        call.attributes = vec![
            KeyValue::new("gen_ai.system", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new("gen_ai.usage.input_tokens", AnyValue::Int(120)),
            KeyValue::new("gen_ai.usage.output_tokens", AnyValue::Int(30)),
            KeyValue::new("gen_ai.prompt.1.content", "second"),
            KeyValue::new("gen_ai.prompt.0.content", "first"),
            KeyValue::new("gen_ai.completion", "the answer"),
        ];
        let plain = span(2, Some(1), "plain", 1, 2);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(vec![call, plain]));
        assert_eq!(
            llm_call(&trace, 0),
            Some(LlmCall {
                model: Some("gpt-4o".into()),
                provider: Some("openai".into()),
                input_tokens: Some(120),
                output_tokens: Some(30),
                prompt: Some("first\nsecond".into()),
                response: Some("the answer".into()),
            })
        );
        assert_eq!(llm_call(&trace, 1), None);
    }
}
