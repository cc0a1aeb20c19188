//! `analyze_operation`: why is X slow? The breakdown of one operation over its recent runs and
//! the findings about it.

use super::{ToolDef, ToolError, ToolResult, WebUi, fit, linked_tool, since};
use crate::budget;
use crate::render::{LEGEND, findings_text};
use devtrace_analyze::errors::is_error_span;
use devtrace_analyze::perf::{profile_operation, spans_of};
use devtrace_model::OperationFilter;
use devtrace_query::Scope;
use devtrace_query::analytics::trace_findings;
use devtrace_query::scope::DEFAULT_LAST;
use devtrace_query::text::{TextOptions, quote, render_profile_with};
use devtrace_store::Store;
use serde::Deserialize;
use std::collections::HashSet;

/// Parameters of `analyze_operation`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Exact span name, e.g. "journal.generate"
    operation: String,
    /// Only spans of this service
    service: Option<String>,
    /// server, client, internal, producer or consumer
    kind: Option<String>,
    /// Recent runs to analyse (default 20)
    last: Option<usize>,
    /// Instead: its calls' arguments, results
    calls: Option<bool>,
    /// "2h" or RFC 3339
    since: Option<String>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    linked_tool(
        "analyze_operation",
        "Why is an operation slow: time per child (mean, p50, p95, share, calls, critical path), by kind of work, findings with savings.",
        run,
    )
}

fn run(store: &dyn Store, params: Params, web_ui: Option<&WebUi>) -> ToolResult {
    let name = params.operation.trim().to_owned();
    let kind = match params.kind.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => Some(devtrace_model::parse_span_kind(text).ok_or_else(|| {
            ToolError::new(format!(
                "kind {} is not a span kind: use server, client, internal, producer or consumer",
                quote(text)
            ))
        })?),
    };
    let filter = OperationFilter {
        name: name.clone(),
        service: params
            .service
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        kind,
    };
    let scope = Scope {
        last: params.last,
        since_unix_nano: since(params.since.as_deref())?,
    };
    if params.calls == Some(true) {
        let budget = budget::resolve(params.budget);
        return super::operation_calls::calls(store, &filter, scope, budget);
    }
    let chosen = devtrace_query::operation::choose(store, &filter, scope, DEFAULT_LAST)
        .map_err(|e| ToolError::from_query(store, e, Some(&name)))?;
    let (traces, operation) = (chosen.traces, chosen.operation);
    let Some(profile) = profile_operation(&traces, &operation) else {
        return Err(super::unknown_operation(store, &name));
    };
    let budget = budget::resolve(params.budget);
    let (link, link_cost) =
        WebUi::link_line(web_ui, &devtrace_query::links::operation(&name), budget);
    let budget = budget - link_cost;
    let options = TextOptions::quoted(100, "get_spans has them all");
    let mut out = format!("{LEGEND}\n{}", render_profile_with(&profile, &options));
    if !chosen.others.is_empty() {
        let others: Vec<String> = chosen
            .others
            .iter()
            .map(|o| {
                format!(
                    "{} span of {} ({} spans in these runs)",
                    o.operation.kind.as_str(),
                    quote(&o.operation.service),
                    o.spans
                )
            })
            .collect();
        out.push_str(&format!(
            "the name also belongs to: {} (not in these numbers): analyze_operation(operation, service, kind) for one\n",
            others.join("; ")
        ));
    }
    // Only the operation's own failed spans count: an error elsewhere in the trace is not this
    // operation failing.
    let failed = traces
        .iter()
        .filter(|t| spans_of(t, &operation).any(|i| is_error_span(t.span(i))))
        .count();
    if failed > 0 {
        out.push_str(&format!(
            "{failed} of {} runs failed in this operation: errors(operation={}) groups them with what the failing runs share\n",
            traces.len(),
            quote(&name)
        ));
    }
    // Findings about the operation or anything it calls, at any depth.
    let mut within: HashSet<&str> = HashSet::from([name.as_str()]);
    for trace in &traces {
        // Runs come in tree order: one nested in a run already taken adds nothing (and a
        // recursive operation would otherwise cost depth² spans).
        let mut taken_until = 0;
        for run in spans_of(trace, &operation) {
            if trace.tree.position[run] < taken_until {
                continue;
            }
            taken_until = trace.tree.subtree_end[run];
            for &d in trace.descendants(run) {
                within.insert(trace.span(d).name.as_str());
            }
        }
    }
    let findings: Vec<_> = trace_findings(&traces)
        .into_iter()
        .filter(|f| f.operation.as_deref().is_none_or(|o| within.contains(o)))
        .collect();
    if findings.is_empty() {
        out.push_str("\nno findings: no detector fired on these runs\n");
    } else {
        out.push_str("\nfindings, ranked by impact (share of the operation's time, tokens or runs a fix recovers × how often it runs)\n");
        let room = budget.saturating_sub(budget::count(&out) + 60);
        out.push_str(&findings_text(
            &findings,
            room,
            "find_issues(operation) lists them with a larger budget",
        ));
    }
    out.push_str("next: get_trace(trace_id) on a run (evidence lists trace ids); compare to verify a change\n");
    let mut out = fit(out, budget, "ask again with a larger budget");
    out.push_str(&link);
    Ok(out)
}
