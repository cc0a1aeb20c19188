//! `devtrace ls`: recent traces from the per-trace summaries; only attribute filters read spans
//! (a bounded number of candidates, see `devtrace_query::search`).

use crate::cli::{ColorChoice, LsArgs};
use crate::output::eprintln_safe;
use crate::output::{Style, print_stdout};
use anyhow::Result;
use devtrace_query::search::{TraceSearch, search};
use devtrace_query::text::cell;
use devtrace_query::timefmt::{format_duration, format_timestamp, now_nanos};
use devtrace_store::{Store, TraceQuery};
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &LsArgs, color: ColorChoice) -> Result<ExitCode> {
    let now = now_nanos();
    let page = search(
        store,
        &TraceSearch {
            query: TraceQuery {
                service: args.service.clone(),
                name_contains: args.name.clone(),
                operation: args.operation.clone(),
                min_duration_nanos: args.min_duration,
                max_duration_nanos: args.max_duration,
                errors_only: args.errors,
                without_errors: args.ok,
                since_unix_nano: args.since.as_ref().map(|w| w.unix_nanos(now)),
                until_unix_nano: args.until.as_ref().map(|w| w.unix_nanos(now)),
                limit: args.limit,
                ..Default::default()
            },
            attributes: args.attributes.clone(),
            run_id: args.run.clone(),
            label: args.label.clone(),
        },
    )?;
    if page.scan_limited {
        eprintln_safe!(
            "note: stopped after reading {} candidate traces for --attr/--run/--label; narrow the search \
             (--since, --operation, --service) to look further back",
            page.scanned
        );
    }
    let traces = page.traces;
    if args.json {
        let rows: Vec<_> = traces
            .iter()
            .map(devtrace_query::json::summary_json)
            .collect();
        crate::output::print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if traces.is_empty() {
        eprintln_safe!(
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
    // The root's service, and how many others the trace crossed: "frontend +2".
    let services: Vec<String> = traces
        .iter()
        .map(|t| {
            let others = t.services.iter().filter(|s| **s != t.service).count();
            let root = devtrace_query::text::truncate(&t.service, 24);
            if others == 0 {
                root
            } else {
                format!("{root} +{others}")
            }
        })
        .collect();
    let service_width = services
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(7)
        .clamp(7, 30);
    let mut out = format!(
        "{}\n",
        style.bold(&format!(
            "{:<19}  {:<name_width$}  {:<service_width$}  {:>10}  {:>5}  {:>6}  {}",
            "START (UTC)", "OPERATION", "SERVICE", "DURATION", "SPANS", "ERRORS", "TRACE ID"
        ))
    );
    for (t, service) in traces.iter().zip(&services) {
        let errors = if t.error_count > 0 {
            style.red(&format!("{:>6}", t.error_count))
        } else {
            format!("{:>6}", 0)
        };
        out.push_str(&format!(
            "{:<19}  {:<name_width$}  {:<service_width$}  {:>10}  {:>5}  {}  {}\n",
            format_timestamp(t.start_unix_nano),
            cell(&t.root_name, name_width),
            cell(service, service_width),
            format_duration(t.duration_nanos()),
            t.span_count,
            errors,
            style.dim(&t.trace_id.to_hex()),
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
