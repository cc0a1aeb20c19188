//! `errors`: errors grouped by fingerprint, what the failing runs share, and the causal chain
//! of one error.

use super::{TRACE_ID_HINT, ToolDef, ToolError, ToolResult, fit, tool};
use crate::budget;
use crate::render::LEGEND;
use devtrace_query::errors::{ExplainError, explain, load, report};
use devtrace_query::text::TextOptions;
use devtrace_query::text::errors::{render_chain, render_report};
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `errors`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only traces containing this span name
    operation: Option<String>,
    /// "2h" or RFC 3339
    since: Option<String>,
    /// Traces with errors to read (default 200)
    last: Option<usize>,
    /// Fingerprint (4+ char prefix) or trace id to explain
    show: Option<String>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    tool(
        "errors",
        "Errors grouped by fingerprint, what separates failing from passing runs (an input size, a parameter), and the causal chain of the top error (or of `show`): ancestors, inputs, exception, locals.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let operation = params.operation.as_deref().map(str::trim);
    let filter = operation.map(devtrace_model::OperationFilter::named);
    let asked =
        super::Asked::resolve(store, params.since.as_deref(), params.last, filter.as_ref())?;
    let super::Asked {
        scope,
        window,
        words: scope_words,
        note,
    } = asked;
    let traces =
        load(store, scope, operation).map_err(|e| ToolError::from_query(store, e, operation))?;
    let report = report(&traces);
    let options = TextOptions::quoted(120, "get_spans(trace_id, span_ids) has them all");
    let mut parts = Vec::new();
    if let Some(operation) = operation {
        parts.push(format!(
            "traces containing {}",
            devtrace_query::text::quote(operation)
        ));
    }
    if window.is_some() || params.since.is_some() {
        parts.push(scope_words);
    }
    let mut out = format!("{LEGEND}\n{note}");
    let target = match params.show.as_deref() {
        Some(target) => Some(target.to_owned()),
        None => {
            out.push_str(&render_report(&report, &parts, &options));
            report.groups.first().map(|g| g.fingerprint.clone())
        }
    };
    if let Some(target) = target {
        let view = explain(store, &traces, &report.groups, &target).map_err(|e| match e {
            ExplainError::NoMatch { target, looked_at } => ToolError::new(format!(
                "no error fingerprint or trace id starts with {target_q} (looked at {looked_at} traces); call errors without show to list fingerprints, or widen with since; {TRACE_ID_HINT}", target_q = devtrace_model::recorded::quote(&target))),
            ExplainError::NoErrors { trace_id } => ToolError::new(format!(
                "trace {trace_id} has no errors; get_trace shows it"
            )),
            ExplainError::Ambiguous { target, fingerprints } => ToolError::new(format!(
                "{target_q} matches several error fingerprints ({}); give more characters",
                fingerprints.join(", "), target_q = devtrace_model::recorded::quote(&target))),
            ExplainError::ExampleGone { fingerprint, trace_id } => ToolError::new(format!(
                "the example trace {trace_id} of error {fingerprint} is no longer stored; call errors again"
            )),
            ExplainError::Store(error) => error.into(),
        })?;
        if params.show.is_none() {
            out.push_str("\ncausal chain of the top error\n");
        }
        out.push_str(&render_chain(
            view.group.as_ref(),
            &view.chain,
            view.correlated_value.as_deref(),
            &options,
        ));
        if params.show.is_none() && report.groups.len() > 1 {
            out.push_str("\nexplain another: errors(show=<fingerprint>)\n");
        }
    }
    Ok(fit(
        out,
        budget,
        "errors(show=<fingerprint>) explains one group; narrow with operation or since",
    ))
}
