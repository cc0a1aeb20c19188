//! Development sessions in the one model: a session is a trace, turns and tool calls are spans.
//!
//! Two pieces of the session mapping every layer needs:
//!
//! - [`merge_span`]: how a newer version of a span (same trace and span id) fills in an older
//!   one. Sessions arrive in pieces (a live hook event first, the transcript later; a
//!   transcript that grew), and each piece re-sends the spans it knows about. Merging instead
//!   of appending is what makes "importing twice stores nothing twice" hold for sessions.
//! - [`SessionFacts`]: the summary of a session trace (agent, project, turns, tool calls,
//!   tokens, errors) kept beside the trace so listing sessions never decodes spans.
//!
//! The attribute names are in [`crate::semconv`] and documented in docs/conventions.md.

use crate::semconv;
use crate::{AnyValue, Span, SpanBatch, SpanId, StatusCode, TraceId};
use serde::{Deserialize, Serialize};

/// The name a sub-agent's span gets when only its own transcript is known, not the tool call
/// that started it (whose version names it after the agent type).
pub const SUBAGENT_PLACEHOLDER_NAME: &str = "invoke_agent subagent";

/// The agent name of sessions sent as `trace-1.0.0` documents: a person's recorded sessions
/// (`devtrace record`), which have no agent numbers (turns, tokens) but a document.
pub const DOCUMENT_AGENT: &str = "developer";

/// The id of a session's own span (the root of its trace), derived from the trace id so every
/// source of the same session (transcript, hook, API) names it the same way.
pub fn session_span_id(trace_id: TraceId) -> SpanId {
    // FNV-1a over a domain tag and the trace id.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"devtrace.session".iter().chain(trace_id.0.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    SpanId(hash.max(1).to_be_bytes())
}

/// Folds `newer` into `older` (same span): the interval widens to cover both, newer attribute
/// values win and attributes only the older one had are kept, events are united, and the
/// newer status and parent win unless they are unknown (unset status, no parent; the session
/// span as parent is a fallback that never replaces a more specific one).
pub fn merge_span(older: &mut Span, newer: Span) {
    let Span {
        name,
        kind,
        start_unix_nano,
        end_unix_nano,
        attributes,
        events,
        links,
        status,
        parent_span_id,
        trace_state,
        flags,
        dropped_attributes_count,
        dropped_events_count,
        dropped_links_count,
        resource,
        scope,
        ..
    } = newer;
    // A placeholder name (a sub-agent seen only from its own transcript) never replaces a
    // known one (from the tool call that started it).
    let placeholder = name == SUBAGENT_PLACEHOLDER_NAME && !older.name.is_empty();
    if !name.is_empty() && !placeholder {
        older.name = name;
    }
    older.kind = kind;
    if start_unix_nano != 0 {
        older.start_unix_nano = if older.start_unix_nano == 0 {
            start_unix_nano
        } else {
            older.start_unix_nano.min(start_unix_nano)
        };
    }
    older.end_unix_nano = older.end_unix_nano.max(end_unix_nano);
    for attribute in attributes {
        match older.attributes.iter_mut().find(|a| a.key == attribute.key) {
            Some(existing) => existing.value = attribute.value,
            None => older.attributes.push(attribute),
        }
    }
    for event in events {
        let duplicate = older
            .events
            .iter()
            .any(|e| e.name == event.name && e.time_unix_nano == event.time_unix_nano);
        if !duplicate {
            older.events.push(event);
        }
    }
    older.events.sort_by_key(|e| e.time_unix_nano);
    for link in links {
        let duplicate = older
            .links
            .iter()
            .any(|l| l.trace_id == link.trace_id && l.span_id == link.span_id);
        if !duplicate {
            older.links.push(link);
        }
    }
    if status.code != StatusCode::Unset {
        older.status = status;
    }
    if let Some(parent) = parent_span_id {
        // The session span is where spans hang when nothing better is known (a live hook does
        // not know the turn); it never replaces a more specific parent.
        let fallback = parent == session_span_id(older.trace_id);
        if !fallback || older.parent_span_id.is_none() {
            older.parent_span_id = Some(parent);
        }
    }
    if !trace_state.is_empty() {
        older.trace_state = trace_state;
    }
    older.flags |= flags;
    older.dropped_attributes_count = older.dropped_attributes_count.max(dropped_attributes_count);
    older.dropped_events_count = older.dropped_events_count.max(dropped_events_count);
    older.dropped_links_count = older.dropped_links_count.max(dropped_links_count);
    older.resource = resource;
    older.scope = scope;
}

/// Merges `newer` into `older`: spans with the same id are folded with [`merge_span`], new
/// ones appended. Resources and scopes are re-pointed into `older`'s tables.
pub fn merge_batches(older: &mut SpanBatch, newer: SpanBatch) {
    let start = older.spans.len();
    older.extend(newer);
    let mut index: std::collections::HashMap<(TraceId, SpanId), usize> = older.spans[..start]
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.trace_id, s.span_id), i))
        .collect();
    let appended: Vec<Span> = older.spans.drain(start..).collect();
    for span in appended {
        let key = (span.trace_id, span.span_id);
        match index.get(&key) {
            Some(&i) => merge_span(&mut older.spans[i], span),
            None => {
                index.insert(key, older.spans.len());
                older.spans.push(span);
            }
        }
    }
}

/// A one-line title for a prompt: the slash command and its arguments when it is one
/// (`/orchestrator create TODO app`), else its first non-empty line; at most 120 bytes.
pub fn prompt_title(prompt: &str) -> String {
    let between = |open: &str, close: &str| -> Option<&str> {
        let start = prompt.find(open)? + open.len();
        let end = prompt[start..].find(close)?;
        Some(&prompt[start..start + end])
    };
    let line = match between("<command-name>", "</command-name>") {
        Some(name) => {
            let args = between("<command-args>", "</command-args>").unwrap_or("");
            format!("{name} {args}").trim().to_owned()
        }
        None => prompt
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .to_owned(),
    };
    let mut end = line.len().min(120);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_owned()
}

/// What a session trace adds up to, for listings. Computed from its spans (see
/// [`SessionFacts::from_spans`]), never from the source format.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFacts {
    /// The agent's own session id (`gen_ai.conversation.id`).
    pub session_id: String,
    /// `claude-code`, `codex`, `trace-1.0.0`, …
    pub agent: String,
    /// The working directory or repository the session worked in.
    pub project: String,
    /// A one-line title: the transcript's summary, or the first prompt.
    pub title: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub turns: u64,
    pub tool_calls: u64,
    pub subagents: u64,
    /// Input tokens including cache reads and writes, summed over LLM calls.
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    /// Tool calls and events that failed.
    pub errors: u64,
}

/// The span's role in a session (`devtrace.session.span`), if it has one.
pub fn session_role(span: &Span) -> Option<&str> {
    span.attr(semconv::SESSION_SPAN).and_then(AnyValue::as_str)
}

fn text(span: &Span, key: &str) -> String {
    span.attr(key)
        .and_then(AnyValue::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn int(span: &Span, key: &str) -> u64 {
    span.attr(key)
        .and_then(AnyValue::as_i64)
        .map_or(0, |v| v.max(0) as u64)
}

impl SessionFacts {
    /// The facts of a session trace, or `None` when no span in it is a session span.
    ///
    /// A session may hold turns and LLM calls from a transcript and from the agent's telemetry
    /// that could not be matched by id (Codex without trace ids): when a transcript's are there,
    /// only those are counted, so nothing counts twice. Without a title of its own (telemetry
    /// gives none), the session is titled by its first prompt.
    pub fn from_spans(batch: &SpanBatch) -> Option<Self> {
        let root = batch
            .spans
            .iter()
            .find(|s| session_role(s) == Some(semconv::SESSION_SPAN_SESSION))?;
        let mut facts = SessionFacts {
            session_id: text(root, semconv::GEN_AI_CONVERSATION_ID),
            agent: text(root, semconv::SESSION_AGENT),
            project: text(root, semconv::SESSION_PROJECT),
            title: text(root, semconv::SESSION_TITLE),
            start_unix_nano: u64::MAX,
            end_unix_nano: 0,
            ..Default::default()
        };
        let from_transcript = |span: &Span| {
            span.attr(semconv::SESSION_FROM_TRANSCRIPT) == Some(&AnyValue::Bool(true))
        };
        let transcript_has = |role: &str| {
            batch
                .spans
                .iter()
                .any(|s| session_role(s) == Some(role) && from_transcript(s))
        };
        let (transcript_turns, transcript_chats) = (
            transcript_has(semconv::SESSION_SPAN_TURN),
            transcript_has(semconv::SESSION_SPAN_CHAT),
        );
        let mut first_prompt: Option<(u64, &str)> = None;
        for span in &batch.spans {
            if span.start_unix_nano != 0 {
                facts.start_unix_nano = facts.start_unix_nano.min(span.start_unix_nano);
            }
            facts.end_unix_nano = facts.end_unix_nano.max(span.end_unix_nano);
            match session_role(span) {
                Some(semconv::SESSION_SPAN_TURN) => {
                    if !transcript_turns || from_transcript(span) {
                        facts.turns += 1;
                    }
                    if let Some(prompt) = span
                        .attr(semconv::SESSION_PROMPT)
                        .and_then(AnyValue::as_str)
                        && first_prompt.is_none_or(|(start, _)| span.start_unix_nano < start)
                    {
                        first_prompt = Some((span.start_unix_nano, prompt));
                    }
                }
                Some(semconv::SESSION_SPAN_TOOL) => {
                    facts.tool_calls += 1;
                    facts.errors += u64::from(span.is_error());
                }
                Some(semconv::SESSION_SPAN_EVENT) => facts.errors += u64::from(span.is_error()),
                Some(semconv::SESSION_SPAN_AGENT) => facts.subagents += 1,
                Some(semconv::SESSION_SPAN_CHAT) if !transcript_chats || from_transcript(span) => {
                    facts.input_tokens += int(span, semconv::GEN_AI_USAGE_INPUT_TOKENS);
                    facts.output_tokens += int(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS);
                    facts.cache_read_tokens +=
                        int(span, semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS);
                }
                _ => {}
            }
        }
        if facts.title.is_empty()
            && let Some((_, prompt)) = first_prompt
        {
            facts.title = prompt_title(prompt);
        }
        if facts.start_unix_nano == u64::MAX {
            facts.start_unix_nano = 0;
        }
        facts.end_unix_nano = facts.end_unix_nano.max(facts.start_unix_nano);
        Some(facts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, KeyValue, SpanKind, Status};

    fn span(id: u8, start: u64, end: u64, attrs: Vec<KeyValue>) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: format!("s{id}"),
            kind: SpanKind::Internal,
            start_unix_nano: start,
            end_unix_nano: end,
            attributes: attrs,
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

    #[test]
    fn a_later_version_fills_in_without_losing_what_only_the_earlier_knew() {
        // A hook saw the tool call start (with the cwd); the transcript brings the result.
        let mut hooked = span(
            2,
            100,
            100,
            vec![
                KeyValue::new(semconv::SESSION_CWD, "/repo"),
                KeyValue::new(semconv::SESSION_COMMAND, "cargo test"),
            ],
        );
        hooked.events.push(Event {
            time_unix_nano: 100,
            name: "devtrace.session.hook".into(),
            ..Default::default()
        });
        let mut transcript = span(
            2,
            98,
            250,
            vec![
                KeyValue::new(semconv::SESSION_COMMAND, "cargo test --all"),
                KeyValue::new(semconv::SESSION_EXIT_CODE, 101i64),
            ],
        );
        transcript.parent_span_id = Some(SpanId([9; 8]));
        transcript.status = Status {
            code: StatusCode::Error,
            message: "1 test failed".into(),
        };
        merge_span(&mut hooked, transcript);
        assert_eq!((hooked.start_unix_nano, hooked.end_unix_nano), (98, 250));
        assert_eq!(hooked.parent_span_id, Some(SpanId([9; 8])));
        assert_eq!(hooked.status.code, StatusCode::Error);
        assert_eq!(
            hooked.attr(semconv::SESSION_COMMAND).unwrap().as_str(),
            Some("cargo test --all")
        );
        assert_eq!(
            hooked.attr(semconv::SESSION_CWD).unwrap().as_str(),
            Some("/repo")
        );
        assert_eq!(hooked.attributes.len(), 3);
        assert_eq!(hooked.events.len(), 1);

        // An unknown status and a missing parent do not erase what is known, nor does the
        // session span as a fallback parent.
        let bare = span(2, 0, 0, vec![]);
        merge_span(&mut hooked, bare);
        let mut late_hook = span(2, 0, 0, vec![]);
        late_hook.parent_span_id = Some(session_span_id(TraceId([1; 16])));
        merge_span(&mut hooked, late_hook);
        assert_eq!(hooked.status.code, StatusCode::Error);
        assert_eq!(hooked.parent_span_id, Some(SpanId([9; 8])));
        assert_eq!((hooked.start_unix_nano, hooked.end_unix_nano), (98, 250));
    }

    #[test]
    fn merging_batches_folds_same_ids_and_appends_new_ones() {
        let mut stored = SpanBatch {
            resources: vec![Default::default()],
            scopes: vec![Default::default()],
            spans: vec![span(1, 10, 20, vec![]), span(2, 12, 12, vec![])],
        };
        let incoming = SpanBatch {
            resources: vec![Default::default()],
            scopes: vec![Default::default()],
            spans: vec![span(2, 12, 18, vec![]), span(3, 19, 20, vec![])],
        };
        merge_batches(&mut stored, incoming);
        let ends: Vec<(u8, u64)> = stored
            .spans
            .iter()
            .map(|s| (s.span_id.0[0], s.end_unix_nano))
            .collect();
        assert_eq!(ends, [(1, 20), (2, 18), (3, 20)]);
        assert_eq!(stored.resources.len(), 1);
    }

    #[test]
    fn titles_prefer_the_slash_command() {
        assert_eq!(
            prompt_title(
                "<command-message>x</command-message>\n<command-name>/orchestrator</command-name>\n<command-args>create TODO app by Next.js</command-args>"
            ),
            "/orchestrator create TODO app by Next.js"
        );
        assert_eq!(prompt_title("\n  fix the build\nplease"), "fix the build");
        assert_eq!(prompt_title(&"é".repeat(100)).len(), 120);
    }

    #[test]
    fn facts_count_roles_tokens_and_failures() {
        let role = |r: &str| KeyValue::new(semconv::SESSION_SPAN, r);
        let mut failing = span(4, 30, 40, vec![role(semconv::SESSION_SPAN_TOOL)]);
        failing.status.code = StatusCode::Error;
        let batch = SpanBatch {
            resources: vec![],
            scopes: vec![],
            spans: vec![
                span(
                    1,
                    10,
                    90,
                    vec![
                        role(semconv::SESSION_SPAN_SESSION),
                        KeyValue::new(semconv::SESSION_AGENT, "codex"),
                        KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, "abc"),
                    ],
                ),
                span(2, 11, 80, vec![role(semconv::SESSION_SPAN_TURN)]),
                span(
                    3,
                    12,
                    20,
                    vec![
                        role(semconv::SESSION_SPAN_CHAT),
                        KeyValue::new(semconv::GEN_AI_USAGE_INPUT_TOKENS, 1000i64),
                        KeyValue::new(semconv::GEN_AI_USAGE_OUTPUT_TOKENS, 50i64),
                    ],
                ),
                failing,
                span(5, 41, 95, vec![role(semconv::SESSION_SPAN_TOOL)]),
            ],
        };
        let facts = SessionFacts::from_spans(&batch).unwrap();
        assert_eq!(
            (facts.agent.as_str(), facts.session_id.as_str()),
            ("codex", "abc")
        );
        assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 2, 1));
        assert_eq!((facts.input_tokens, facts.output_tokens), (1000, 50));
        assert_eq!((facts.start_unix_nano, facts.end_unix_nano), (10, 95));
        let no_session = SpanBatch {
            spans: vec![span(1, 1, 2, vec![])],
            ..Default::default()
        };
        assert!(SessionFacts::from_spans(&no_session).is_none());
    }
}
