//! The development-session detectors: how a coding agent (or a person) worked, from the
//! actions of a session ([`crate::session::SessionView`]).
//!
//! - [`retry_loop`]: the same command or tool call failing again and again, nothing changed;
//! - [`circular_edit`]: a file going back to an earlier content (A → B → A);
//! - [`test_fix_spiral`]: a test fails, an edit, the same test fails again, N times;
//! - [`environment_error`]: command not found, missing module, permission denied, address in
//!   use, missing credentials;
//! - [`token_waste`]: very large tool outputs, re-reading files that did not change, context
//!   growth;
//! - [`anti_pattern`]: editing files never read, polling with sleep, abandoning edits by revert.
//!
//! Each has its thresholds on a `Thresholds` type (documented in docs/analysis.md) and tests
//! for a case that fires and a near miss that does not.

pub mod anti_pattern;
pub mod circular_edit;
pub mod environment_error;
pub mod retry_loop;
pub mod test_fix_spiral;
pub mod token_waste;

use crate::finding::{Evidence, Finding, Impact, ImpactBasis, rank};
use crate::session::SessionView;
use devtrace_model::SpanId;

/// Every session detector with its default thresholds, ranked.
pub fn run_all(views: &[SessionView]) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(retry_loop::detect(views, &Default::default()));
    findings.extend(circular_edit::detect(views, &Default::default()));
    findings.extend(test_fix_spiral::detect(views, &Default::default()));
    findings.extend(environment_error::detect(views, &Default::default()));
    findings.extend(token_waste::detect(views, &Default::default()));
    findings.extend(anti_pattern::detect(views, &Default::default()));
    rank(&mut findings);
    findings
}

/// Span ids shown as evidence for one finding, at most this many.
const MAX_EVIDENCE_SPANS: usize = 20;

pub(crate) fn evidence(
    view: &SessionView,
    spans: impl IntoIterator<Item = SpanId>,
) -> Vec<Evidence> {
    vec![Evidence {
        trace_id: view.trace.trace_id,
        span_ids: spans.into_iter().take(MAX_EVIDENCE_SPANS).collect(),
    }]
}

/// Recorded text for a title: its first line, quoted, at most `max` characters.
pub(crate) fn short(text: &str, max: usize) -> String {
    let line = text.lines().next().unwrap_or("").trim();
    devtrace_model::recorded::quote_short(line, max)
}

/// The impact of a session finding: time lost (ranked within its session).
pub(crate) fn time_lost() -> Impact {
    Impact::of(ImpactBasis::Time)
}

/// A path relative to the session's project when inside it (so fingerprints match across
/// checkouts).
pub(crate) fn relative(path: &str, project: Option<&str>) -> String {
    match project {
        Some(project) if !project.is_empty() => path
            .strip_prefix(project)
            .map(|rest| rest.trim_start_matches('/'))
            .filter(|rest| !rest.is_empty())
            .unwrap_or(path)
            .to_owned(),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
pub(crate) mod testkit {
    //! Hand-built session traces for the detector tests.

    use crate::AnalyzedTrace;
    use devtrace_model::session::session_span_id;
    use devtrace_model::{
        KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind, Status, StatusCode, TraceId,
        semconv,
    };

    pub const T0: u64 = 1_767_600_000_000_000_000;
    pub const SECOND: u64 = 1_000_000_000;

    /// Builds one session: actions one second apart, in order.
    pub struct Session {
        trace: TraceId,
        spans: Vec<Span>,
        clock: u64,
        next_id: u8,
        context: SpanId,
    }

    pub struct Step {
        pub kind: &'static str,
        pub tool: &'static str,
        pub attrs: Vec<KeyValue>,
        pub error: Option<String>,
        pub seconds: u64,
    }

    impl Step {
        pub fn new(kind: &'static str, tool: &'static str) -> Self {
            Self {
                kind,
                tool,
                attrs: Vec::new(),
                error: None,
                seconds: 1,
            }
        }

        pub fn fails(mut self, message: &str) -> Self {
            self.error = Some(message.to_owned());
            self
        }

        pub fn exit(mut self, code: i64) -> Self {
            self.attrs
                .push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
            self
        }

        pub fn output(mut self, text: &str, bytes: i64) -> Self {
            self.attrs
                .push(KeyValue::new(semconv::SESSION_OUTPUT, text));
            self.attrs
                .push(KeyValue::new(semconv::SESSION_OUTPUT_BYTES, bytes));
            self
        }

        pub fn taking(mut self, seconds: u64) -> Self {
            self.seconds = seconds;
            self
        }

        pub fn attr(
            mut self,
            key: &'static str,
            value: impl Into<devtrace_model::AnyValue>,
        ) -> Self {
            self.attrs.push(KeyValue::new(key, value));
            self
        }
    }

    pub fn command(command: &str) -> Step {
        Step::new("command", "Bash").attr(semconv::SESSION_COMMAND, command)
    }

    pub fn read(path: &str, hash: &str) -> Step {
        Step::new("read", "Read")
            .attr(semconv::SESSION_FILE_PATH, path)
            .attr(semconv::SESSION_FILE_HASH, hash)
    }

    pub fn edit(path: &str, before: &str, after: &str) -> Step {
        Step::new("edit", "Edit")
            .attr(semconv::SESSION_FILE_PATH, path)
            .attr(semconv::SESSION_FILE_HASH_BEFORE, before)
            .attr(semconv::SESSION_FILE_HASH_AFTER, after)
    }

    pub fn write(path: &str, after: &str, created: bool) -> Step {
        Step::new("write", "Write")
            .attr(semconv::SESSION_FILE_PATH, path)
            .attr(semconv::SESSION_FILE_HASH_AFTER, after)
            .attr(semconv::SESSION_FILE_CREATED, created)
    }

    impl Session {
        pub fn new(id: u8) -> Self {
            let trace = TraceId([id; 16]);
            let mut root = span(trace, session_span_id(trace), None, "session claude-code");
            root.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
                KeyValue::new(semconv::SESSION_AGENT, "claude-code"),
                KeyValue::new(semconv::SESSION_PROJECT, "/repo"),
                KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, format!("session-{id}")),
            ];
            Self {
                trace,
                context: root.span_id,
                spans: vec![root],
                clock: T0,
                next_id: 1,
            }
        }

        /// Later steps belong to a new sub-agent.
        pub fn subagent(&mut self) -> &mut Self {
            let id = self.id();
            let mut agent = span(
                self.trace,
                id,
                Some(self.spans[0].span_id),
                "invoke_agent general-purpose",
            );
            agent.attributes.push(KeyValue::new(
                semconv::SESSION_SPAN,
                semconv::SESSION_SPAN_AGENT,
            ));
            agent.start_unix_nano = self.clock;
            agent.end_unix_nano = self.clock;
            self.context = id;
            self.spans.push(agent);
            self
        }

        fn id(&mut self) -> SpanId {
            self.next_id += 1;
            SpanId([self.next_id; 8])
        }

        pub fn then(&mut self, step: Step) -> &mut Self {
            let id = self.id();
            let mut s = span(
                self.trace,
                id,
                Some(self.context),
                &format!("execute_tool {}", step.tool),
            );
            s.start_unix_nano = self.clock;
            s.end_unix_nano = self.clock + step.seconds * SECOND;
            self.clock += (step.seconds + 1) * SECOND;
            s.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
                KeyValue::new(semconv::SESSION_ACTION, step.kind),
                KeyValue::new(semconv::GEN_AI_TOOL_NAME, step.tool),
            ];
            s.attributes.extend(step.attrs);
            if let Some(message) = step.error {
                s.status = Status {
                    code: StatusCode::Error,
                    message,
                };
            }
            self.spans.push(s);
            self
        }

        pub fn llm(&mut self, input_tokens: i64) -> &mut Self {
            let id = self.id();
            let mut s = span(self.trace, id, Some(self.context), "chat claude");
            s.start_unix_nano = self.clock;
            s.end_unix_nano = self.clock + SECOND;
            self.clock += 2 * SECOND;
            s.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
                KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
                KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, 100i64),
            ];
            self.spans.push(s);
            self
        }

        pub fn build(&mut self) -> AnalyzedTrace {
            let mut spans = self.spans.clone();
            spans[0].start_unix_nano = T0;
            spans[0].end_unix_nano = self.clock;
            AnalyzedTrace::new(
                self.trace,
                SpanBatch {
                    resources: vec![Resource::default()],
                    scopes: vec![Scope::default()],
                    spans,
                },
            )
        }
    }

    fn span(trace: TraceId, id: SpanId, parent: Option<SpanId>, name: &str) -> Span {
        Span {
            trace_id: trace,
            span_id: id,
            parent_span_id: parent,
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nano: T0,
            end_unix_nano: T0,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status: Status::default(),
            resource: 0,
            scope: 0,
        }
    }
}
