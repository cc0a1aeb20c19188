//! `get_trace`: one trace as a budgeted tree (see [`crate::trace_view`]).

use super::{ToolDef, ToolError, ToolResult, WebUi, linked_tool};
use crate::budget;
use crate::trace_view::{View, draw};
use devtrace_analyze::AnalyzedTrace;
use devtrace_query::sessions::run_origin;
use devtrace_query::text::quote;
use devtrace_store::Store;
use serde::Deserialize;

/// A run's attached traces named in full; the rest are counted.
const ATTACHED_SHOWN: usize = 5;

/// Parameters of `get_trace`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// 32 hex chars, or a unique prefix (8+)
    trace_id: String,
    /// Draw only the subtree under this span (id or prefix)
    span_id: Option<String>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    linked_tool(
        "get_trace",
        "One trace as a span tree within the budget: critical path (*) and errors (✗) kept, big self time next, repeated siblings folded; the footer says what is hidden.",
        run,
    )
}

fn run(store: &dyn Store, params: Params, web_ui: Option<&WebUi>) -> ToolResult {
    let trace = devtrace_query::scope::one(store, &params.trace_id)?;
    let focus = params
        .span_id
        .as_deref()
        .map(|id| find_span(&trace, id))
        .transpose()?;
    let focus_id = focus.map(|i| trace.span(i).span_id.to_hex());
    let budget = budget::resolve(params.budget);
    // A run an agent's command made leads back to that session.
    let origin = run_origin(store, trace.trace_id, &trace.spans.spans)?
        .map(|o| {
            format!(
                "made in development session {} (agent {}) by its tool call [{}]: session_overview(session_id=\"{}\")\n",
                quote(&o.title),
                quote(&o.agent),
                &o.tool_span_id[..8],
                &o.session_trace_id[..8]
            )
        })
        .unwrap_or_default();
    // A run whose program sent its own traces: that is where its spans are.
    let attached = devtrace_query::runs::attached_traces(&trace.spans.spans);
    let origin = if attached.is_empty() {
        origin
    } else {
        let mut calls: Vec<String> = attached
            .iter()
            .take(ATTACHED_SHOWN)
            .map(|id| format!("get_trace(trace_id=\"{id}\")"))
            .collect();
        if attached.len() > ATTACHED_SHOWN {
            calls.push(format!("{} more", attached.len() - ATTACHED_SHOWN));
        }
        format!(
            "{origin}the program's spans are in its own trace(s) (its SDK did not continue TRACEPARENT): {}\n",
            calls.join(", ")
        )
    };
    let budget = budget.saturating_sub(budget::count(&origin));
    let (link, link_cost) = WebUi::link_line(
        web_ui,
        &devtrace_query::links::trace(&trace.trace_id.to_hex(), focus_id.as_deref()),
        budget,
    );
    let mut text = draw(&View {
        trace: &trace,
        focus,
        budget: budget - link_cost,
    })
    .text;
    text.push_str(&origin);
    text.push_str(&link);
    Ok(text)
}

/// A span of `trace` by id or unique prefix.
pub fn find_span(trace: &AnalyzedTrace, id: &str) -> Result<usize, ToolError> {
    let wanted = id.trim().to_ascii_lowercase();
    if wanted.is_empty() || wanted.len() > 16 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ToolError::new(format!(
            "{id_q} is not a span id: span ids are 16 hex characters (a unique prefix works), as get_trace shows them in [brackets]",
            id_q = devtrace_model::recorded::quote(id)
        )));
    }
    let matches: Vec<usize> = trace
        .spans
        .spans
        .iter()
        .enumerate()
        .filter(|(_, s)| s.span_id.to_hex().starts_with(&wanted))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(ToolError::new(format!(
            "no span of trace {} has an id starting with {wanted_q}; get_trace lists them in [brackets]",
            trace.trace_id,
            wanted_q = devtrace_model::recorded::quote(&wanted)
        ))),
        many => Err(ToolError::new(format!(
            "{wanted_q} matches {} spans of trace {}; give more characters",
            many.len(),
            trace.trace_id,
            wanted_q = devtrace_model::recorded::quote(&wanted)
        ))),
    }
}
