//! Agents' own OpenTelemetry → sessions: Claude Code, Codex CLI and Gemini CLI export log
//! records (events) for each prompt, model request, tool decision and tool result when their
//! telemetry is turned on. This maps them onto the session → turn → tool call model the
//! transcript importers produce, with the same ids wherever the agent's events carry the ids
//! its transcript does, so a transcript imported later enriches the session instead of
//! duplicating it (docs/sessions.md has one mapping table per agent and version).
//!
//! It works on one batch of log records at a time and keeps no state between batches: every
//! span it emits is a *version* named by ids derived from the event (session id, prompt id,
//! call id, request id), and the store merges versions (merge-mode writes), so events may
//! arrive in any order, in any grouping, and more than once. Events it does not map are kept
//! as span events on their turn or session (and the records themselves are stored as logs).
//!
//! Values are taken as received: the caller redacts the records first (the ingest pipeline
//! does, as for every source).

pub mod claude_code;
pub mod codex;
pub mod gemini;

use super::common::{Builder, SessionOutput, SessionRoot, derive_span_id, derive_trace_id};
use crate::redact::Redactor;
use devtrace_model::metrics::{Metric, MetricBatch, MetricPoint, UsageQuantity};
use devtrace_model::session::session_span_id;
use devtrace_model::{
    AnyValue, Event, KeyValue, Link, LogBatch, LogRecord, SpanId, TraceId, semconv,
};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The agents whose native telemetry devtrace maps to sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NativeAgent {
    ClaudeCode,
    Codex,
    GeminiCli,
}

impl NativeAgent {
    /// The session's agent name (the transcript importers use the same).
    pub fn name(self) -> &'static str {
        match self {
            Self::ClaudeCode => super::claude_code::AGENT,
            Self::Codex => super::codex::AGENT,
            Self::GeminiCli => gemini::AGENT,
        }
    }

    /// The model provider, for `gen_ai.provider.name`.
    fn provider(self) -> &'static str {
        match self {
            Self::ClaudeCode => "anthropic",
            Self::Codex => "openai",
            Self::GeminiCli => "gcp.gemini",
        }
    }

    /// The attribute naming the agent's session on its events and metrics.
    fn session_key(self) -> &'static str {
        match self {
            Self::ClaudeCode | Self::GeminiCli => "session.id",
            Self::Codex => "conversation.id",
        }
    }
}

/// What mapping a batch of log records produced.
#[derive(Clone, Debug, Default)]
pub struct NativeSessions {
    /// Session spans (versions to merge) and the blobs they refer to.
    pub output: SessionOutput,
    /// Records that belonged to an agent session (mapped, or kept as span events).
    pub records: usize,
    /// The sessions they belong to.
    pub sessions: Vec<TraceId>,
}

impl NativeSessions {
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

/// The agent and short event name (`tool_result`, `user_prompt`…) of a record, if it is one
/// of an agent's native events.
pub fn recognise(batch: &LogBatch, log: &LogRecord) -> Option<(NativeAgent, String)> {
    let attr = |key: &str| {
        log.attributes
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_str())
    };
    let event_name = attr("event.name")
        .filter(|n| !n.is_empty())
        .or_else(|| (!log.event_name.is_empty()).then_some(log.event_name.as_str()));
    if let Some(name) = event_name {
        if let Some(short) = name.strip_prefix("codex.") {
            return Some((NativeAgent::Codex, short.to_owned()));
        }
        if let Some(short) = name.strip_prefix("gemini_cli.") {
            return Some((NativeAgent::GeminiCli, short.to_owned()));
        }
        if let Some(short) = name.strip_prefix("claude_code.") {
            return Some((NativeAgent::ClaudeCode, short.to_owned()));
        }
    }
    let resource = batch.resources.get(log.resource as usize)?;
    let scope = batch.scopes.get(log.scope as usize)?;
    // Claude Code names its events in the body (`claude_code.tool_result`) and, since 1.0,
    // in a short `event.name`; its scope and service say it is Claude Code.
    if let AnyValue::String(body) = &log.body
        && let Some(short) = body.strip_prefix("claude_code.")
    {
        return Some((NativeAgent::ClaudeCode, short.to_owned()));
    }
    let claude = scope.name.starts_with("com.anthropic.claude_code")
        || resource.service_name() == "claude-code";
    if claude && let Some(name) = event_name {
        return Some((NativeAgent::ClaudeCode, name.to_owned()));
    }
    // Gemini CLI also logs the GenAI conventions' own events (`gen_ai.client.…`).
    if resource.service_name() == "gemini-cli"
        && let Some(name) = event_name
    {
        return Some((NativeAgent::GeminiCli, name.to_owned()));
    }
    None
}

/// Maps the agent events of `batch` (already redacted) to session span versions.
pub fn sessions_from_logs(batch: &LogBatch) -> NativeSessions {
    let mut mapper = Mapper::new();
    let mut records = 0;
    let mut pending: Vec<(NativeAgent, String, usize)> = Vec::new();
    for (index, log) in batch.logs.iter().enumerate() {
        if let Some((agent, name)) = recognise(batch, log) {
            pending.push((agent, name, index));
        }
    }
    // Per agent, in the order the records were sent (an agent's exporter sends them in the
    // order they happened), so a record can be paired with the one before it.
    let mut claude = claude_code::Pairing::default();
    let mut codex = codex::Pairing::default();
    for (agent, name, index) in pending {
        let record = Record::new(agent, name, batch, &batch.logs[index]);
        let Some(session) = mapper.session(&record) else {
            continue;
        };
        records += 1;
        match agent {
            NativeAgent::ClaudeCode => {
                claude_code::map(&mut mapper, &mut claude, &session, &record)
            }
            NativeAgent::Codex => codex::map(&mut mapper, &mut codex, &session, &record),
            NativeAgent::GeminiCli => gemini::map(&mut mapper, &session, &record),
        }
    }
    let sessions = mapper.roots.keys().copied().collect();
    NativeSessions {
        output: mapper.finish(),
        records,
        sessions,
    }
}

/// The session trace a metric data point belongs to, and the usage quantity it measures
/// (cost, tokens, lines changed…), from each agent's documented metric names.
pub fn classify_metric(
    batch: &MetricBatch,
    metric: &Metric,
    point: &MetricPoint,
) -> (Option<TraceId>, Option<UsageQuantity>) {
    let resource = batch.resource_of(metric);
    let agent = if metric.name.starts_with("claude_code.") {
        NativeAgent::ClaudeCode
    } else if metric.name.starts_with("gemini_cli.") {
        NativeAgent::GeminiCli
    } else if metric.name.starts_with("codex.") {
        NativeAgent::Codex
    } else {
        return (None, None);
    };
    let text = |key: &str| {
        point
            .attributes
            .iter()
            .chain(resource.attributes.iter())
            .find(|a| a.key == key)
            .and_then(|a| a.value.as_str())
            .filter(|v| !v.is_empty())
    };
    let session = text(agent.session_key()).map(|id| derive_trace_id(agent.name(), id));
    let quantity = match agent {
        NativeAgent::ClaudeCode => claude_code::metric_quantity(&metric.name, text("type")),
        NativeAgent::GeminiCli => gemini::metric_quantity(&metric.name, text("type")),
        NativeAgent::Codex => None,
    };
    (session, quantity)
}

/// One agent event and typed access to its attributes (the record's, then its resource's).
pub(crate) struct Record<'a> {
    pub agent: NativeAgent,
    /// The event's name without the agent prefix (`tool_result`).
    pub name: String,
    batch: &'a LogBatch,
    pub log: &'a LogRecord,
}

impl<'a> Record<'a> {
    fn new(agent: NativeAgent, name: String, batch: &'a LogBatch, log: &'a LogRecord) -> Self {
        Self {
            agent,
            name,
            batch,
            log,
        }
    }

    pub fn attr(&self, key: &str) -> Option<&'a AnyValue> {
        let resource = self.batch.resources.get(self.log.resource as usize);
        self.log
            .attributes
            .iter()
            .chain(resource.into_iter().flat_map(|r| r.attributes.iter()))
            .find(|a| a.key == key)
            .map(|a| &a.value)
            .filter(|v| !matches!(v, AnyValue::Empty))
    }

    pub fn text(&self, key: &str) -> Option<&'a str> {
        self.attr(key)
            .and_then(AnyValue::as_str)
            .filter(|s| !s.is_empty())
    }

    /// A value as text: strings as they are, numbers and booleans written out.
    pub fn display(&self, key: &str) -> Option<String> {
        match self.attr(key)? {
            AnyValue::String(s) if !s.is_empty() => Some(s.clone()),
            AnyValue::Int(i) => Some(i.to_string()),
            AnyValue::Double(d) => Some(d.to_string()),
            AnyValue::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// Numbers are sent as integers, doubles or strings, depending on the agent and version.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.attr(key)? {
            AnyValue::Int(i) => Some(*i as f64),
            AnyValue::Double(d) => Some(*d),
            AnyValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn count(&self, key: &str) -> Option<u64> {
        self.number(key).map(|n| n.max(0.0).round() as u64)
    }

    /// Booleans are sent as booleans or as `"true"`/`"false"`.
    pub fn flag(&self, key: &str) -> Option<bool> {
        match self.attr(key)? {
            AnyValue::Bool(b) => Some(*b),
            AnyValue::String(s) => match s.trim() {
                "true" | "True" | "1" => Some(true),
                "false" | "False" | "0" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// When the event happened: its own time, else its `event.timestamp`, else when the SDK
    /// observed it (Codex leaves the record's time at zero).
    pub fn time(&self) -> u64 {
        if self.log.time_unix_nano != 0 {
            return self.log.time_unix_nano;
        }
        self.text("event.timestamp")
            .and_then(devtrace_model::time::parse_rfc3339)
            .unwrap_or(self.log.observed_time_unix_nano)
    }

    /// (start, end) of something that ended at the event and lasted `duration_ms`.
    pub fn interval(&self, duration_key: &str) -> (u64, u64) {
        let end = self.time();
        let nanos = self
            .number(duration_key)
            .filter(|ms| ms.is_finite() && *ms >= 0.0)
            .map_or(0, |ms| (ms * 1e6) as u64);
        (end.saturating_sub(nanos), end)
    }

    /// The agent's own trace this event was recorded in (hex), when it carries one.
    pub fn agent_trace(&self) -> Option<String> {
        self.log.trace_id.map(|id| id.to_hex())
    }

    /// A stable key for this one event, when the agent gives it no id of its own.
    pub fn key(&self) -> String {
        match self.number("event.sequence") {
            Some(sequence) => format!("seq:{sequence}"),
            None => format!(
                "t:{}:{}",
                self.log
                    .observed_time_unix_nano
                    .max(self.log.time_unix_nano),
                self.time()
            ),
        }
    }
}

/// A session an event belongs to.
pub(crate) struct Session {
    pub trace_id: TraceId,
    pub agent: NativeAgent,
}

impl Session {
    pub fn root(&self) -> SpanId {
        session_span_id(self.trace_id)
    }
}

#[derive(Default)]
struct RootFacts {
    agent: Option<NativeAgent>,
    session_id: String,
    version: String,
    start: u64,
    end: u64,
    attributes: Vec<KeyValue>,
}

/// Span versions for the sessions of one batch.
pub(crate) struct Mapper {
    pub builder: Builder,
    roots: BTreeMap<TraceId, RootFacts>,
}

/// Attributes every agent puts on every event: identity, not what happened.
const COMMON_ATTRIBUTES: &[&str] = &[
    "event.name",
    "event.timestamp",
    "event.sequence",
    "session.id",
    "conversation.id",
    "prompt.id",
    "prompt_id",
    "user.id",
    "user.email",
    "user.account_id",
    "user.account_uuid",
    "organization.id",
    "installation.id",
    "terminal.type",
    "app.version",
    "originator",
    "auth_mode",
    "auth_type",
    "interactive",
    "slug",
];

/// Attributes kept on an event recorded as a span event.
const MAX_EVENT_ATTRIBUTES: usize = 32;

impl Mapper {
    fn new() -> Self {
        Self {
            builder: Builder::new(Arc::new(Redactor::disabled())),
            roots: BTreeMap::new(),
        }
    }

    /// The session of an event (None when it names none), noted for its root span.
    fn session(&mut self, record: &Record) -> Option<Session> {
        let session_id = record.text(record.agent.session_key())?;
        let trace_id = derive_trace_id(record.agent.name(), session_id);
        let time = record.time();
        let root = self.roots.entry(trace_id).or_insert_with(|| RootFacts {
            start: u64::MAX,
            ..Default::default()
        });
        root.agent = Some(record.agent);
        if root.session_id.is_empty() {
            root.session_id = session_id.to_owned();
        }
        if root.version.is_empty()
            && let Some(version) = record
                .text("app.version")
                .or_else(|| record.text("service.version"))
        {
            root.version = version.trim_start_matches('v').to_owned();
        }
        if time != 0 {
            root.start = root.start.min(time);
            root.end = root.end.max(time);
        }
        Some(Session {
            trace_id,
            agent: record.agent,
        })
    }

    /// A version of a span of `session` (in the agent's resource).
    pub fn span(
        &mut self,
        session: &Session,
        span_id: SpanId,
        parent: Option<SpanId>,
        name: String,
        (start, end): (u64, u64),
        attributes: Vec<KeyValue>,
    ) -> devtrace_model::Span {
        let resource = self.builder.resource(session.agent.name(), "");
        self.builder.span(
            session.trace_id,
            span_id,
            parent,
            name,
            start,
            end,
            resource,
            attributes,
        )
    }

    /// The agent's settings an event names (`(attribute, name on the session)` pairs), as
    /// attributes of the session; the event is kept too.
    pub fn settings(&mut self, session: &Session, record: &Record, names: &[(&str, &str)]) {
        let attributes = names
            .iter()
            .filter_map(|(key, name)| record.attr(key).map(|v| KeyValue::new(*name, v.clone())))
            .collect();
        self.session_attributes(session, attributes);
        self.keep(session, session.root(), record);
    }

    /// A turn of its own for a prompt the agent gives no id (the prompt's event names it):
    /// what follows it cannot be placed in it.
    pub fn turn_of_event(&mut self, session: &Session, record: &Record, time: u64) -> SpanId {
        let span_id = derive_span_id(session.trace_id, &["turn-event", &record.key()]);
        self.turn(session, record, span_id, time, time);
        span_id
    }

    /// Adds attributes to the session span (the newest value of each wins when merged).
    pub fn session_attributes(&mut self, session: &Session, attributes: Vec<KeyValue>) {
        if let Some(root) = self.roots.get_mut(&session.trace_id) {
            for attribute in attributes {
                root.attributes.retain(|a| a.key != attribute.key);
                root.attributes.push(attribute);
            }
        }
    }

    /// Attributes every span built from telemetry carries: where it came from, and the
    /// agent's own trace when the event was recorded in one.
    pub fn provenance(&self, record: &Record, attributes: &mut Vec<KeyValue>) {
        attributes.push(KeyValue::new(semconv::SESSION_FROM_TELEMETRY, true));
        if let Some(trace) = record.agent_trace() {
            attributes.push(KeyValue::new(semconv::SESSION_AGENT_TRACE, trace));
        }
    }

    /// A link to the agent's own span that recorded the event, when it names one.
    pub fn agent_link(record: &Record) -> Vec<Link> {
        match (record.log.trace_id, record.log.span_id) {
            (Some(trace_id), Some(span_id)) => vec![Link {
                trace_id,
                span_id,
                trace_state: String::new(),
                attributes: vec![KeyValue::new("devtrace.link", "agent telemetry")],
                dropped_attributes_count: 0,
                flags: 0,
            }],
            _ => Vec::new(),
        }
    }

    /// A turn (the work one prompt started): its span as far as this event tells. Every event
    /// of a turn emits this, so the turn exists whichever of its events arrives first.
    pub fn turn(
        &mut self,
        session: &Session,
        record: &Record,
        span_id: SpanId,
        start: u64,
        end: u64,
    ) {
        let agent = session.agent.name();
        let mut attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TURN),
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::GEN_AI_OPERATION_INVOKE_AGENT,
            ),
            KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent),
            KeyValue::new(semconv::SESSION_FROM_TELEMETRY, true),
        ];
        if let Some(trace) = record.agent_trace() {
            attributes.push(KeyValue::new(semconv::SESSION_AGENT_TRACE, trace));
        }
        let span = self.span(
            session,
            span_id,
            Some(session.root()),
            format!("invoke_agent {agent}"),
            (start, end),
            attributes,
        );
        self.builder.emit(span);
    }

    /// The prompt that started a turn, when the agent sent its text (an opt-in).
    pub fn prompt(&mut self, session: &Session, span_id: SpanId, prompt: &str, time: u64) {
        let mut attributes = Vec::new();
        self.builder.text_attr(
            &mut attributes,
            semconv::SESSION_PROMPT,
            semconv::SESSION_INPUT_REF,
            None,
            prompt,
        );
        let span = self.span(
            session,
            span_id,
            None,
            String::new(),
            (time, time),
            attributes,
        );
        self.builder.emit(span);
    }

    /// Keeps an event the mapping does not turn into spans: a span event on `target` (a turn
    /// or the session) with the event's own attributes.
    pub fn keep(&mut self, session: &Session, target: SpanId, record: &Record) {
        let mut attributes: Vec<KeyValue> = record
            .log
            .attributes
            .iter()
            .filter(|a| !COMMON_ATTRIBUTES.contains(&a.key.as_str()))
            .cloned()
            .collect();
        let dropped = attributes.len().saturating_sub(MAX_EVENT_ATTRIBUTES);
        attributes.truncate(MAX_EVENT_ATTRIBUTES);
        if let AnyValue::String(body) = &record.log.body
            && !body.is_empty()
            && attributes.len() < MAX_EVENT_ATTRIBUTES
        {
            attributes.push(KeyValue::new("body", body.as_str()));
        }
        let time = record.time();
        let mut span = self.span(session, target, None, String::new(), (time, time), vec![]);
        span.events.push(Event {
            time_unix_nano: time,
            name: format!("{}.{}", event_prefix(session.agent), record.name),
            attributes,
            dropped_attributes_count: dropped as u32,
        });
        self.builder.emit(span);
    }

    /// The session spans (brought up to date with what the batch told about each) and every
    /// version emitted.
    fn finish(mut self) -> SessionOutput {
        for (trace_id, root) in std::mem::take(&mut self.roots) {
            let Some(agent) = root.agent else { continue };
            let start = if root.start == u64::MAX {
                0
            } else {
                root.start
            };
            SessionRoot {
                trace_id,
                agent: agent.name(),
                agent_version: &root.version,
                session_id: &root.session_id,
                project: "",
                title: "",
                git_branch: "",
                source: "",
                start,
                end: root.end.max(start),
            }
            .emit(&mut self.builder);
            let mut attributes = root.attributes;
            attributes.push(KeyValue::new(semconv::SESSION_FROM_TELEMETRY, true));
            let resource = self.builder.resource(agent.name(), &root.version);
            let span = self.builder.span(
                trace_id,
                session_span_id(trace_id),
                None,
                String::new(),
                start,
                root.end.max(start),
                resource,
                attributes,
            );
            self.builder.emit(span);
        }
        self.builder.take()
    }
}

fn event_prefix(agent: NativeAgent) -> &'static str {
    match agent {
        NativeAgent::ClaudeCode => "claude_code",
        NativeAgent::Codex => "codex",
        NativeAgent::GeminiCli => "gemini_cli",
    }
}

/// The status of a failed LLM request: its error, with the HTTP status when there is one.
pub(crate) fn request_failed(record: &Record) -> devtrace_model::Status {
    let error = record.text("error").unwrap_or("API error");
    failed(&match record.display("status_code") {
        Some(code) => format!("{error} (HTTP {code})"),
        None => error.to_owned(),
    })
}

/// The status of a failed step, with its most telling line as message.
pub(crate) fn failed(message: &str) -> devtrace_model::Status {
    devtrace_model::Status {
        code: devtrace_model::StatusCode::Error,
        message: super::common::error_message(message),
    }
}
