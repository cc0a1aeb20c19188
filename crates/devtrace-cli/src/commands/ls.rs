//! `devtrace ls`: recent traces from the per-trace summaries; only attribute filters read spans
//! (a bounded number of candidates, see `devtrace_query::search`).

use crate::cli::{ColorChoice, LsArgs};
use crate::output::eprintln_safe;
use crate::output::{Style, print_fitted, terminal_width};
use anyhow::Result;
use devtrace_query::search::{TraceSearch, search};
use devtrace_query::text::fit::{Align, Cell, Column, Fit, Mark, Table};
use devtrace_query::text::{OUTLIVED_NOTE, cell, escape, trace_duration_cell};
use devtrace_query::timefmt::{format_timestamp, now_nanos, zone_name};
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
    let mut table = Table::new(vec![
        Column::new(
            format!("START ({})", zone_name()),
            Align::Left,
            Fit::Optional(3),
        ),
        Column::new("OPERATION", Align::Left, Fit::Shrink { min: 12 }),
        Column::new("SERVICE", Align::Left, Fit::Optional(1)),
        Column::new("DURATION", Align::Right, Fit::Optional(4)),
        Column::new("SPANS", Align::Right, Fit::Optional(0)),
        Column::new("ERRORS", Align::Right, Fit::Optional(2)),
        Column::new("TRACE ID", Align::Left, Fit::Keep),
    ]);
    for t in &traces {
        // The root's service, and how many others the trace crossed: "frontend +2".
        let others = t.services.iter().filter(|s| **s != t.service).count();
        let service = match others {
            0 => cell(&t.service, 24),
            n => format!("{} +{n}", cell(&t.service, 24)),
        };
        table.row(vec![
            format_timestamp(t.start_unix_nano).into(),
            escape(&t.root_name).into(),
            service.into(),
            trace_duration_cell(t).into(),
            t.span_count.to_string().into(),
            match t.error_count {
                0 => "0".into(),
                n => Cell::marked(n.to_string(), Mark::Error),
            },
            Cell::marked(t.trace_id.to_hex(), Mark::Dim),
        ]);
    }
    let mut out = table.render(terminal_width(), &|mark, text| style.mark(mark, text));
    if traces.iter().any(|t| t.last_span_end_nanos().is_some()) {
        out.push_str(&format!("\n{}\n", style.dim(OUTLIVED_NOTE)));
    }
    print_fitted(&out)?;
    Ok(ExitCode::SUCCESS)
}
