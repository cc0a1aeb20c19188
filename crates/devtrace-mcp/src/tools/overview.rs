//! `overview`: what the store holds, the first call an assistant makes.

use super::{ToolDef, ToolResult, fit, since, tool};
use crate::budget;
use crate::render::{LEGEND, session_rows, summary_rows};
use devtrace_query::overview::{OverviewLimits, overview};
use devtrace_query::text::quote;
use devtrace_query::timefmt::{format_duration, format_timestamp};
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `overview`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only traces since: "2h" or RFC 3339
    since: Option<String>,
    /// Max tokens, 300 to 20000 (default 4000)
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    tool(
        "overview",
        "Start here: services, time range, top operations by total time, recent errors, runs and coding-agent sessions.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let since = since(params.since.as_deref())?;
    let seen = overview(
        store,
        since,
        OverviewLimits {
            operations: 10,
            errors: 5,
            runs: 5,
            sessions: 5,
        },
    )?;
    let mut out = format!(
        "{LEGEND}\nstore: {} traces, {} spans, {} logs",
        seen.stats.traces, seen.stats.spans, seen.stats.logs
    );
    match seen.time_range {
        Some((first, last)) => out.push_str(&format!(
            "; {} to {} UTC\n",
            format_timestamp(first),
            format_timestamp(last)
        )),
        None => {
            out.push_str("\nno traces yet");
            if since.is_some() {
                out.push_str(" in that window");
            }
            out.push_str(": run a program with OTEL_EXPORTER_OTLP_ENDPOINT pointing at devtrace serve, or `devtrace run -- <command>`\n");
            return Ok(out);
        }
    }
    out.push_str("\nservices (traces, with errors)\n");
    for service in &seen.services {
        out.push_str(&format!(
            "  {} {} ({})\n",
            quote(&service.service),
            service.traces,
            service.error_traces
        ));
    }
    out.push_str(&format!(
        "\ntop operations by total time (last {} traces): runs, total, mean, p95, errors\n",
        seen.ranked_traces
    ));
    for op in &seen.top_operations {
        out.push_str(&format!(
            "  {} {} {} {} {} {}\n",
            quote(&op.operation),
            op.runs,
            format_duration(op.total_nanos),
            format_duration(op.duration.mean as u64),
            format_duration(op.duration.p95 as u64),
            op.errors
        ));
    }
    if !seen.recent_errors.is_empty() {
        out.push_str("\nrecent traces with errors\n");
        out.push_str(&summary_rows(&seen.recent_errors));
    }
    if !seen.recent_runs.is_empty() {
        out.push_str("\nrecent runs (devtrace run)\n");
        out.push_str(&summary_rows(&seen.recent_runs));
    }
    if !seen.recent_sessions.is_empty() {
        out.push_str(
            "\nrecent development sessions (id, start, duration, agent, project, title; numbers)\n",
        );
        for session in &seen.recent_sessions {
            out.push_str(&session_rows(
                &session.facts,
                &session.trace_id.to_hex(),
                None,
            ));
        }
    }
    out.push_str(
        "\nnext: analyze_operation(operation) for why one is slow; errors for failures; find_issues for ranked findings; search_traces then get_trace to drill into one run; session_overview(session_id) and check_insights(repo) for sessions\n",
    );
    Ok(fit(out, budget, "narrow with since"))
}
