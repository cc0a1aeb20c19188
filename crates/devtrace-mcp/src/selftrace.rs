//! devtrace tracing its own MCP server (`--self-trace`): one SERVER span per request, named and
//! attributed as the OpenTelemetry MCP semantic conventions say (`tools/call get_trace`,
//! `mcp.method.name`, `gen_ai.tool.name`, `jsonrpc.request.id`, …), parented to the caller's
//! `traceparent` from `params._meta` when it sends one.
//!
//! Spans are built here as model values and handed to a [`SpanSink`] that writes them straight
//! into the store: no OpenTelemetry exporter, no network, nothing that could itself be traced,
//! so recording a call can never produce another call (no feedback loop).

use devtrace_model::{
    KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, Status, StatusCode, TraceId,
    semconv,
};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where self-trace spans go (the store's writer).
pub trait SpanSink: Send + Sync + 'static {
    fn record(&self, batch: SpanBatch);
    /// Records in a project other than the default one (a team server's MCP request records
    /// its span in the requester's project).
    fn record_in(&self, batch: SpanBatch, _project: devtrace_store::ProjectId) {
        self.record(batch);
    }
}

/// How the client reaches this server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    StreamableHttp,
}

/// One request being served.
pub struct Call {
    pub method: &'static str,
    /// The tool or prompt name, for the span name.
    pub target: Option<String>,
    pub resource_uri: Option<String>,
    pub request_id: String,
    pub protocol_version: Option<String>,
    pub session_id: Option<String>,
    pub traceparent: Option<String>,
    pub start_unix_nano: u64,
}

/// How the request ended.
pub enum Outcome {
    Ok {
        result_tokens: Option<usize>,
        budget: Option<usize>,
    },
    /// A tool result with `isError: true`.
    ToolError { message: String },
    /// A JSON-RPC error.
    RpcError { code: i32, message: String },
}

pub fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use std::hash::{BuildHasher, Hasher};
    let mut out = [0u8; N];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(now_unix_nano());
        hasher.write_usize(i);
        let bytes = hasher.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    if out.iter().all(|b| *b == 0) {
        out[0] = 1;
    }
    out
}

/// `00-<trace id>-<parent id>-<flags>` → (trace id, parent span id).
fn parse_traceparent(text: &str) -> Option<(TraceId, SpanId)> {
    let mut parts = text.trim().split('-');
    let (version, trace, parent) = (parts.next()?, parts.next()?, parts.next()?);
    if version.len() != 2 || trace.len() != 32 || parent.len() != 16 {
        return None;
    }
    let trace: TraceId = trace.parse().ok()?;
    let parent: SpanId = parent.parse().ok()?;
    (trace.0 != [0; 16] && parent.0 != [0; 8]).then_some((trace, parent))
}

/// The span for one served request.
pub fn span(call: &Call, outcome: &Outcome, transport: Transport, end_unix_nano: u64) -> SpanBatch {
    let (trace_id, parent) = match call.traceparent.as_deref().and_then(parse_traceparent) {
        Some((trace, parent)) => (trace, Some(parent)),
        None => (TraceId(random_bytes()), None),
    };
    let name = match &call.target {
        Some(target) => format!("{} {target}", call.method),
        None => call.method.to_owned(),
    };
    let mut attributes = vec![
        KeyValue::new(semconv::MCP_METHOD_NAME, call.method),
        KeyValue::new(semconv::JSONRPC_REQUEST_ID, call.request_id.as_str()),
    ];
    match call.method {
        "tools/call" => {
            attributes.push(KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                "execute_tool",
            ));
            if let Some(tool) = &call.target {
                attributes.push(KeyValue::new(semconv::GEN_AI_TOOL_NAME, tool.as_str()));
            }
        }
        "prompts/get" => {
            if let Some(prompt) = &call.target {
                attributes.push(KeyValue::new(semconv::GEN_AI_PROMPT_NAME, prompt.as_str()));
            }
        }
        _ => {}
    }
    if let Some(uri) = &call.resource_uri {
        attributes.push(KeyValue::new(semconv::MCP_RESOURCE_URI, uri.as_str()));
    }
    if let Some(version) = &call.protocol_version {
        attributes.push(KeyValue::new(
            semconv::MCP_PROTOCOL_VERSION,
            version.as_str(),
        ));
    }
    if let Some(session) = &call.session_id {
        attributes.push(KeyValue::new(semconv::MCP_SESSION_ID, session.as_str()));
    }
    match transport {
        Transport::Stdio => attributes.push(KeyValue::new(semconv::NETWORK_TRANSPORT, "pipe")),
        Transport::StreamableHttp => {
            attributes.push(KeyValue::new(semconv::NETWORK_TRANSPORT, "tcp"));
            attributes.push(KeyValue::new(semconv::NETWORK_PROTOCOL_NAME, "http"));
        }
    }
    let status = match outcome {
        Outcome::Ok {
            result_tokens,
            budget,
        } => {
            if let Some(tokens) = result_tokens {
                attributes.push(KeyValue::new(semconv::MCP_RESULT_TOKENS, *tokens as i64));
            }
            if let Some(budget) = budget {
                attributes.push(KeyValue::new(semconv::MCP_BUDGET, *budget as i64));
            }
            Status::default()
        }
        Outcome::ToolError { message } => {
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, "tool_error"));
            Status {
                code: StatusCode::Error,
                message: message.chars().take(500).collect(),
            }
        }
        Outcome::RpcError { code, message } => {
            attributes.push(KeyValue::new(semconv::ERROR_TYPE, code.to_string()));
            attributes.push(KeyValue::new(
                semconv::RPC_RESPONSE_STATUS_CODE,
                code.to_string(),
            ));
            Status {
                code: StatusCode::Error,
                message: message.clone(),
            }
        }
    };
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![
                KeyValue::new(semconv::SERVICE_NAME, "devtrace"),
                KeyValue::new(semconv::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
            ],
            ..Default::default()
        }],
        scopes: vec![Scope {
            name: "devtrace.mcp".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }],
        spans: vec![Span {
            trace_id,
            span_id: SpanId(random_bytes()),
            parent_span_id: parent,
            trace_state: String::new(),
            flags: 1,
            name,
            kind: SpanKind::Server,
            start_unix_nano: call.start_unix_nano,
            end_unix_nano: end_unix_nano.max(call.start_unix_nano),
            attributes,
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status,
            resource: 0,
            scope: 0,
        }],
    }
}

/// The group-commit writer as a sink: spans are queued and committed with everything else;
/// when the queue is full the span is dropped (self-tracing never slows the server down).
impl SpanSink for devtrace_store::writer::WriteHandle {
    fn record(&self, batch: SpanBatch) {
        self.record_in(batch, devtrace_store::ProjectId::DEFAULT);
    }

    fn record_in(&self, batch: SpanBatch, project: devtrace_store::ProjectId) {
        if let Err(error) = self.submit(devtrace_store::prepare_spans(batch).in_project(project)) {
            tracing::debug!(%error, "self-trace span not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_span_follows_the_mcp_conventions_and_its_caller() {
        let call = Call {
            method: "tools/call",
            target: Some("get_trace".into()),
            resource_uri: None,
            request_id: "7".into(),
            protocol_version: Some("2025-06-18".into()),
            session_id: None,
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            start_unix_nano: 10,
        };
        let batch = span(
            &call,
            &Outcome::ToolError {
                message: "no trace".into(),
            },
            Transport::Stdio,
            25,
        );
        let span = &batch.spans[0];
        assert_eq!(span.name, "tools/call get_trace");
        assert_eq!(span.kind, SpanKind::Server);
        assert_eq!(span.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(span.parent_span_id.unwrap().to_hex(), "00f067aa0ba902b7");
        assert_eq!(span.duration_nanos(), 15);
        let get = |k: &str| span.attr(k).map(|v| v.to_display_string());
        assert_eq!(get(semconv::MCP_METHOD_NAME).as_deref(), Some("tools/call"));
        assert_eq!(get(semconv::GEN_AI_TOOL_NAME).as_deref(), Some("get_trace"));
        assert_eq!(
            get(semconv::GEN_AI_OPERATION_NAME).as_deref(),
            Some("execute_tool")
        );
        assert_eq!(get(semconv::JSONRPC_REQUEST_ID).as_deref(), Some("7"));
        assert_eq!(get(semconv::NETWORK_TRANSPORT).as_deref(), Some("pipe"));
        assert_eq!(get(semconv::ERROR_TYPE).as_deref(), Some("tool_error"));
        assert_eq!(span.status.code, StatusCode::Error);
        assert_eq!(batch.resources[0].service_name(), "devtrace");
    }

    #[test]
    fn without_a_caller_the_span_starts_its_own_trace() {
        assert_eq!(
            parse_traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            None
        );
        assert_eq!(parse_traceparent("garbage"), None);
    }
}
