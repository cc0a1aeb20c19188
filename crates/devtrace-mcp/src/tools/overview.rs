//! `overview`: what the store holds, the first call an assistant makes.

use super::{ToolDef, ToolError, ToolResult, fit, tool};
use crate::budget;
use crate::render::{LEGEND, recorded_session_rows, session_rows, summary_rows};
use devtrace_query::overview::{OverviewLimits, overview_or_default};
use devtrace_query::sessions::recorded_summary;
use devtrace_query::text::quote;
use devtrace_query::timefmt::{format_duration, format_timestamp, format_timestamp_zoned};
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `overview`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only traces since: "2h" or RFC 3339
    since: Option<String>,
    /// Max tokens
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
    let since = super::since(params.since.as_deref())?;
    let seen = overview_or_default(
        store,
        since,
        devtrace_query::timefmt::now_nanos(),
        OverviewLimits {
            operations: 10,
            errors: 5,
            runs: 5,
            sessions: 5,
        },
    )?;
    let super::Asked {
        words: scope_words,
        note,
        ..
    } = super::Asked::new(
        devtrace_query::Scope::default(),
        seen.window.clone(),
        params.since.as_deref(),
    );
    let mut out = format!(
        "{LEGEND}\n{note}store: {} traces, {} spans, {} logs in all; below, {scope_words}",
        seen.stats.traces, seen.stats.spans, seen.stats.logs
    );
    match seen.time_range {
        Some((first, last)) => out.push_str(&format!(
            "; {} to {}\n",
            format_timestamp(first),
            format_timestamp_zoned(last)
        )),
        None => {
            out.push_str(if seen.stats.traces == 0 {
                "\nno traces yet"
            } else {
                "\nno traces in that window (widen since)"
            });
            out.push_str(": run a program with OTEL_EXPORTER_OTLP_ENDPOINT pointing at devtrace serve, or `devtrace run -- <command>`\n");
            return Ok(out);
        }
    }
    out.push_str(
        "\nservices, each counted by its own spans: traces it has spans in, of them as the root, with a failing span of it\n",
    );
    for service in &seen.services {
        out.push_str(&format!(
            "  {}: {} traces, {} as root, {} failing\n",
            quote(&service.service),
            service.traces,
            service.root_traces,
            service.error_traces
        ));
    }
    out.push_str(&format!(
        "\ntop root operations by total time (last {} traces): operation, service, runs, total, mean, p95, errors\n",
        seen.ranked_traces
    ));
    for op in &seen.top_operations {
        out.push_str(&format!(
            "  {} {} {} {} {} {} {}\n",
            quote(&op.operation),
            quote(&op.service),
            op.runs,
            format_duration(op.total_nanos),
            // Never one mean of successes and failures.
            match &op.by_outcome {
                None => format_duration(op.duration.mean as u64),
                Some(by) => format!("({})", devtrace_analyze::outcome::described(by)),
            },
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
            let trace_id = session.trace_id.to_hex();
            // A person's recorded session has no agent numbers: what it did instead.
            let recorded = if session.facts.agent == devtrace_model::session::DOCUMENT_AGENT {
                recorded_summary(store, session.trace_id)
                    .map_err(|e| ToolError::from_query(store, e.into(), None))?
            } else {
                None
            };
            out.push_str(&match recorded {
                Some(recorded) => recorded_session_rows(&session.facts, &trace_id, &recorded, None),
                None => session_rows(&session.facts, &trace_id, None),
            });
        }
    }
    out.push_str(
        "\nnext: analyze_operation(operation) for why one is slow; errors for failures; find_issues for ranked findings; search_traces then get_trace to drill into one run; session_overview(session_id) and check_insights(repo) for sessions\n",
    );
    Ok(fit(out, budget, "narrow with since"))
}
