//! Token accounting of a development session: every model request with its tokens by how
//! they are priced (uncached input, cache writes, cache reads, output), its model, its cost,
//! the conversation it belongs to and the tool calls its response made.
//!
//! Read from the chat spans only (`devtrace.session.span = chat`), whatever the source:
//! Claude Code transcripts (one span per message id + request id, with the usage of its last
//! line), Codex rollouts (`cached_input_tokens` is the cache read; OpenAI records no cache
//! writes), agents' own telemetry. When a session has LLM calls from a transcript and from
//! telemetry that could not be matched, the transcript's are counted (as
//! [`devtrace_model::session::SessionFacts`] does), so nothing counts twice.
//!
//! A **conversation** is the agent context a request belongs to: the main chain (the session
//! span) or one sub-agent (its span). Prompt caches are per conversation: a sub-agent's
//! requests are only ever compared with its own.

use crate::pricing::{PriceTable, TokenUse};
use crate::session::SessionView;
use devtrace_model::session::session_role;
use devtrace_model::{AnyValue, Span, SpanId, semconv};
use serde::Serialize;
use std::collections::HashMap;

/// One model request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request {
    /// Index of its chat span in the trace.
    #[serde(skip)]
    pub span: usize,
    pub span_id: SpanId,
    /// The agent context (session span or sub-agent span) it belongs to.
    pub conversation: SpanId,
    pub model: Option<String>,
    pub tokens: TokenUse,
    /// Whether the source records cache writes (Anthropic does; OpenAI caches every prompt
    /// prefix without saying so).
    pub records_cache_writes: bool,
    /// US dollars at the price table; `None` when the model has no price.
    pub cost_usd: Option<f64>,
    pub start: u64,
    pub end: u64,
    /// The tool calls its response made: indices into [`SessionView::actions`].
    #[serde(skip)]
    pub tools: Vec<usize>,
}

impl Request {
    /// The context sent: every input token, cached or not.
    pub fn context_tokens(&self) -> u64 {
        self.tokens.context()
    }

    /// The share of the context read from the cache, 0–1.
    pub fn cache_share(&self) -> f64 {
        let context = self.context_tokens();
        if context == 0 {
            0.0
        } else {
            self.tokens.cache_read as f64 / context as f64
        }
    }
}

/// A session's requests and what they add up to.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Accounting {
    /// In time order.
    pub requests: Vec<Request>,
    pub totals: TokenUse,
    /// The sum of the priced requests' costs.
    pub cost_usd: f64,
    pub priced: usize,
    /// Requests whose model has no price (left out of `cost_usd`).
    pub unpriced: usize,
    /// Which price table the costs come from.
    pub prices: String,
    /// Times the agent compacted its context on purpose, in time order.
    pub compactions: Vec<u64>,
}

fn int(span: &Span, key: &str) -> Option<u64> {
    span.attr(key)
        .and_then(AnyValue::as_i64)
        .map(|v| v.max(0) as u64)
}

fn model_of(span: &Span) -> Option<String> {
    [
        semconv::GEN_AI_RESPONSE_MODEL,
        semconv::GEN_AI_REQUEST_MODEL,
    ]
    .iter()
    .find_map(|k| span.attr(k).and_then(AnyValue::as_str))
    .filter(|m| !m.is_empty())
    .map(str::to_owned)
}

/// The tokens of one chat span by how they are priced. The recorded input includes what was
/// read from and written to the cache.
pub fn token_use(span: &Span) -> TokenUse {
    let input = int(span, semconv::GEN_AI_USAGE_INPUT_TOKENS).unwrap_or(0);
    let cache_read = int(span, semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS).unwrap_or(0);
    let cache_write = int(span, semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS).unwrap_or(0);
    TokenUse {
        input: input.saturating_sub(cache_read + cache_write),
        cache_read,
        cache_write,
        cache_write_1h: int(span, semconv::SESSION_CACHE_WRITE_1H_TOKENS)
            .unwrap_or(0)
            .min(cache_write),
        output: int(span, semconv::GEN_AI_USAGE_OUTPUT_TOKENS).unwrap_or(0),
    }
}

/// Every request of the session, priced at `prices`.
pub fn account(view: &SessionView, prices: &PriceTable) -> Accounting {
    let trace = view.trace;
    let flag = |span: &Span, key: &str| span.attr(key) == Some(&AnyValue::Bool(true));
    let from_transcript = view
        .llm_calls
        .iter()
        .any(|c| flag(trace.span(c.span), semconv::SESSION_FROM_TRANSCRIPT));
    let mut accounting = Accounting {
        prices: prices.source.clone(),
        ..Default::default()
    };
    // Tool call id → action index.
    let mut by_call_id: HashMap<&str, usize> = HashMap::new();
    for (i, action) in view.actions.iter().enumerate() {
        if let Some(id) = trace
            .span(action.span)
            .attr(semconv::GEN_AI_TOOL_CALL_ID)
            .and_then(AnyValue::as_str)
        {
            by_call_id.insert(id, i);
        }
    }
    let mut any_named_calls = false;
    for call in &view.llm_calls {
        let span = trace.span(call.span);
        if from_transcript && !flag(span, semconv::SESSION_FROM_TRANSCRIPT) {
            continue;
        }
        let tokens = token_use(span);
        let model = model_of(span);
        let cost_usd = model.as_deref().and_then(|m| prices.cost(m, tokens));
        let mut tools = Vec::new();
        if let Some(AnyValue::Array(ids)) = span.attr(semconv::SESSION_REQUEST_TOOL_CALLS) {
            any_named_calls = true;
            tools.extend(
                ids.iter()
                    .filter_map(AnyValue::as_str)
                    .filter_map(|id| by_call_id.get(id).copied()),
            );
        }
        match cost_usd {
            Some(cost) => {
                accounting.cost_usd += cost;
                accounting.priced += 1;
            }
            None => accounting.unpriced += 1,
        }
        accounting.totals = accounting.totals.plus(tokens);
        accounting.requests.push(Request {
            span: call.span,
            span_id: call.span_id,
            conversation: call.context,
            model,
            tokens,
            records_cache_writes: span
                .attr(semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
                .is_some(),
            cost_usd,
            start: span.start_unix_nano,
            end: span.end_unix_nano,
            tools,
        });
    }
    if !any_named_calls {
        assign_by_time(view, &mut accounting.requests);
    }
    for span in &trace.spans.spans {
        if matches!(
            session_role(span),
            Some(semconv::SESSION_SPAN_TURN | semconv::SESSION_SPAN_SESSION)
        ) {
            accounting.compactions.extend(
                span.events
                    .iter()
                    .filter(|e| e.name == semconv::SESSION_COMPACTED_EVENT)
                    .map(|e| e.time_unix_nano),
            );
        }
    }
    accounting.compactions.sort_unstable();
    accounting.compactions.dedup();
    accounting
}

/// Sessions stored before requests named their tool calls: a call belongs to the request of
/// its conversation whose interval holds its start, else the last one that started before it.
fn assign_by_time(view: &SessionView, requests: &mut [Request]) {
    for (i, action) in view.actions.iter().enumerate() {
        if action.ide_event {
            continue;
        }
        let mut best: Option<usize> = None;
        for (r, request) in requests.iter().enumerate() {
            if request.conversation != action.context || request.start > action.start {
                continue;
            }
            if request.end >= action.start {
                best = Some(r);
                break;
            }
            best = Some(r);
        }
        if let Some(r) = best {
            requests[r].tools.push(i);
        }
    }
}

/// The requests of each conversation, in time order (indices into `requests`), the main chain
/// first.
pub fn conversations(accounting: &Accounting, main: SpanId) -> Vec<(SpanId, Vec<usize>)> {
    let mut out: Vec<(SpanId, Vec<usize>)> = Vec::new();
    for (i, request) in accounting.requests.iter().enumerate() {
        match out.iter_mut().find(|(c, _)| *c == request.conversation) {
            Some((_, list)) => list.push(i),
            None => out.push((request.conversation, vec![i])),
        }
    }
    out.sort_by_key(|(c, _)| *c != main);
    out
}
