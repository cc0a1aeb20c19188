//! `devtrace ls`: recent traces from the per-trace summaries (never reads spans).

use crate::cli::{ColorChoice, LsArgs};
use crate::output::{Style, print_stdout};
use anyhow::{Result, anyhow};
use devtrace_query::text::truncate;
use devtrace_query::timefmt::{format_duration, format_timestamp, now_nanos, parse_since};
use devtrace_store::{Store, TraceQuery};
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &LsArgs, color: ColorChoice) -> Result<ExitCode> {
    let since = match &args.since {
        Some(text) => Some(parse_since(text, now_nanos()).map_err(|e| anyhow!("--since: {e}"))?),
        None => None,
    };
    let traces = store.list_traces(&TraceQuery {
        service: args.service.clone(),
        name_contains: args.name.clone(),
        min_duration_nanos: args.min_duration,
        errors_only: args.errors,
        runs_only: false,
        since_unix_nano: since,
        until_unix_nano: None,
        limit: args.limit,
    })?;
    if args.json {
        let rows: Vec<_> = traces
            .iter()
            .map(devtrace_query::json::summary_json)
            .collect();
        crate::output::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if traces.is_empty() {
        eprintln!(
            "no traces match; send some with an OpenTelemetry SDK to `devtrace serve`, or widen the filters"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let style = Style::for_stdout(color);
    let name_width = traces
        .iter()
        .map(|t| t.root_name.chars().count())
        .max()
        .unwrap_or(9)
        .clamp(9, 48);
    let service_width = traces
        .iter()
        .map(|t| t.service.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 24);
    let mut out = format!(
        "{}\n",
        style.bold(&format!(
            "{:<19}  {:<name_width$}  {:<service_width$}  {:>10}  {:>5}  {:>6}  {}",
            "START (UTC)", "OPERATION", "SERVICE", "DURATION", "SPANS", "ERRORS", "TRACE ID"
        ))
    );
    for t in &traces {
        let errors = if t.error_count > 0 {
            style.red(&format!("{:>6}", t.error_count))
        } else {
            format!("{:>6}", 0)
        };
        out.push_str(&format!(
            "{:<19}  {:<name_width$}  {:<service_width$}  {:>10}  {:>5}  {}  {}\n",
            format_timestamp(t.start_unix_nano),
            truncate(&t.root_name, name_width),
            truncate(&t.service, service_width),
            format_duration(t.duration_nanos()),
            t.span_count,
            errors,
            style.dim(&t.trace_id.to_hex()),
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
