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
//! - [`anti_pattern`]: editing files never read, polling with sleep, abandoning edits by revert;
//! - [`cache_break`]: a request re-writing the prompt cache the previous one had written, with
//!   its cause (idle gap, model switch, unrecorded prefix change) and the money lost;
//! - [`batchable`]: consecutive requests each making one independent read-only call, which one
//!   request with parallel calls could have made (it reads whole outputs through
//!   [`outputs::WholeOutputs`]).
//!
//! Findings are ranked by issue 14's normalised impact with the session as the operation
//! ([`score`]): money recovered over the session's cost, time recovered over its wall time.
//!
//! Each has its thresholds on a `Thresholds` type (documented in docs/analysis.md) and tests
//! for a case that fires and a near miss that does not.

pub mod anti_pattern;
pub mod batchable;
pub mod cache_break;
pub mod circular_edit;
pub mod environment_error;
pub mod outputs;
pub mod retry_loop;
pub mod test_fix_spiral;
pub mod token_waste;

use crate::finding::{Evidence, Finding, Impact, ImpactBasis, rank};
use crate::pricing::PriceTable;
use crate::session::SessionView;
use crate::session_tokens::{Accounting, account};
use devtrace_model::SpanId;
use outputs::WholeOutputs;

/// What the session analysis is told: prices and the detectors' thresholds.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub prices: PriceTable,
    pub cache: cache_break::Thresholds,
    pub batchable: batchable::Thresholds,
}

/// Every session detector with its default thresholds and the built-in prices, ranked.
pub fn run_all(views: &[SessionView]) -> Vec<Finding> {
    run_all_with(views, &Settings::default())
}

/// The token side of one session: its accounting, cache breaks and batchable runs.
#[derive(Clone, Debug, Default)]
pub struct TokenAnalysis {
    pub accounting: Accounting,
    pub cache: cache_break::Report,
    pub runs: Vec<batchable::Run>,
}

/// Accounting, cache breaks and batchable runs of one session, from what its spans keep
/// (outputs longer than the inline limit are not read: [`token_analysis_with`] reads them).
pub fn token_analysis(view: &SessionView, settings: &Settings) -> TokenAnalysis {
    token_analysis_with(view, settings, &mut WholeOutputs::inline_only())
}

/// [`token_analysis`] reading long outputs whole through `outputs`.
pub fn token_analysis_with(
    view: &SessionView,
    settings: &Settings,
    outputs: &mut WholeOutputs,
) -> TokenAnalysis {
    let accounting = account(view, &settings.prices);
    let cache = cache_break::breaks(view, &accounting, &settings.prices, &settings.cache);
    let runs = batchable::runs(
        view,
        &accounting,
        &settings.prices,
        &settings.batchable,
        outputs,
    );
    TokenAnalysis {
        accounting,
        cache,
        runs,
    }
}

/// Every session detector, ranked by [`score`].
pub fn run_all_with(views: &[SessionView], settings: &Settings) -> Vec<Finding> {
    let analyses: Vec<TokenAnalysis> = views.iter().map(|v| token_analysis(v, settings)).collect();
    run_all_analysed(views, &analyses, settings)
}

/// [`run_all_with`] when the token analyses are already made (one per view, in order).
pub fn run_all_analysed(
    views: &[SessionView],
    analyses: &[TokenAnalysis],
    settings: &Settings,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    findings.extend(retry_loop::detect(views, &Default::default()));
    findings.extend(circular_edit::detect(views, &Default::default()));
    findings.extend(test_fix_spiral::detect(views, &Default::default()));
    findings.extend(environment_error::detect(views, &Default::default()));
    findings.extend(token_waste::detect(views, &Default::default()));
    findings.extend(anti_pattern::detect(views, &Default::default()));
    for (view, analysis) in views.iter().zip(analyses) {
        findings.extend(cache_break::detect(
            view,
            &analysis.accounting,
            &analysis.cache,
            &settings.prices,
        ));
        findings.extend(batchable::detect(
            view,
            &analysis.accounting,
            &analysis.runs,
            &settings.prices,
        ));
    }
    score(&mut findings, views, analyses);
    rank(&mut findings);
    findings
}

/// Issue 14's impact with the session as the operation (frequency 1): for money, the cost a
/// fix recovers over the session's LLM cost (tokens over its tokens when unpriced); for time,
/// the time recovered over the session's wall time. Observations score 0.
pub fn score(findings: &mut [Finding], views: &[SessionView], analyses: &[TokenAnalysis]) {
    for finding in findings.iter_mut() {
        let Some(i) = views.iter().position(|v| {
            finding
                .evidence
                .iter()
                .any(|e| e.trace_id == v.trace.trace_id)
        }) else {
            continue;
        };
        let (view, analysis) = (&views[i], analyses.get(i));
        let (saving, total_saving) = (finding.saving_nanos, finding.total_saving_nanos());
        let impact = &mut finding.impact;
        impact.frequency = 1.0;
        impact.operation_runs = 1;
        impact.affected_runs = 1;
        impact.share = match impact.basis {
            ImpactBasis::Tokens => {
                let accounting = analysis.map(|a| &a.accounting);
                let cost = accounting.map_or(0.0, |a| a.cost_usd);
                let tokens = accounting.map_or(0, |a| a.totals.context() + a.totals.output);
                match impact.cost_per_run_usd {
                    Some(usd) if cost > 0.0 => usd / cost,
                    _ if tokens > 0 => impact.tokens_per_run as f64 / tokens as f64,
                    _ => 0.0,
                }
            }
            ImpactBasis::Time => {
                let wall = view.root.map_or(0, |r| view.trace.span(r).duration_nanos());
                impact.time_nanos_per_run = saving;
                if wall == 0 {
                    0.0
                } else {
                    total_saving as f64 / wall as f64
                }
            }
            ImpactBasis::Correctness => 1.0,
            ImpactBasis::Failures | ImpactBasis::Handled | ImpactBasis::Observation => 0.0,
        }
        .clamp(0.0, 1.0);
        impact.score = impact.share * impact.frequency;
    }
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

        /// A model request (cache read, cache write, uncached input, output) whose response
        /// made `tools` (as parallel calls when several), one second each.
        pub fn request(&mut self, model: &str, tokens: [i64; 4], tools: Vec<Step>) -> &mut Self {
            let id = self.id();
            let mut chat = span(self.trace, id, Some(self.context), "chat");
            chat.start_unix_nano = self.clock;
            chat.end_unix_nano = self.clock + SECOND;
            self.clock += 2 * SECOND;
            let [read, write, fresh, output] = tokens;
            chat.attributes = vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_CHAT),
                KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, model),
                KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, read + write + fresh),
                KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, output),
                KeyValue::new(semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, read),
                KeyValue::new(semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, write),
            ];
            let mut ids = Vec::new();
            let start = self.clock;
            for step in tools {
                let call_id = format!("call-{}", self.next_id + 1);
                ids.push(devtrace_model::AnyValue::String(call_id.clone()));
                self.clock = start;
                self.then(step.attr(semconv::GEN_AI_TOOL_CALL_ID, call_id));
            }
            if !ids.is_empty() {
                chat.attributes.push(KeyValue::new(
                    semconv::SESSION_REQUEST_TOOL_CALLS,
                    devtrace_model::AnyValue::Array(ids),
                ));
            }
            self.spans.push(chat);
            self
        }

        /// The attributes of the last request added.
        pub fn last_chat(&mut self) -> &mut Vec<KeyValue> {
            let chat = self
                .spans
                .iter_mut()
                .rev()
                .find(|s| s.name == "chat")
                .expect("a request");
            &mut chat.attributes
        }

        /// Nobody does anything for `seconds`.
        pub fn idle(&mut self, seconds: u64) -> &mut Self {
            self.clock += seconds * SECOND;
            self
        }

        /// The agent compacts its context now.
        pub fn compaction(&mut self) -> &mut Self {
            let at = self.clock;
            self.spans[0].events.push(devtrace_model::Event {
                time_unix_nano: at,
                name: semconv::SESSION_COMPACTED_EVENT.into(),
                ..Default::default()
            });
            self.clock += SECOND;
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
