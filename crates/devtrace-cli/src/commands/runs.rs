//! `devtrace runs`: the recorded `devtrace run` executions, newest first.

use crate::cli::RunsArgs;
use crate::output::eprintln_safe;
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::Result;
use devtrace_model::recorded::escape;
use devtrace_query::runs::list_runs;
use devtrace_query::text::fit::{Align, Column, Fit, Table};
use devtrace_query::timefmt::{format_duration, format_timestamp, zone_name};
use devtrace_store::Store;
use serde_json::json;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &RunsArgs) -> Result<ExitCode> {
    let runs = list_runs(store, args.label.as_deref(), args.limit)?;
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            json!({
                "run_id": r.run_id,
                "trace_id": r.trace_id.to_hex(),
                "command": r.command,
                "label": r.label,
                "start_unix_nano": r.start_unix_nano,
                "duration_ns": r.duration_ns,
                "exit_code": r.exit_code,
                "signal": r.signal,
                "tests": r.tests,
                "span_count": r.span_count,
                "error_count": r.error_count,
            })
        })
        .collect();
    if args.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln_safe!("no runs recorded; record one with `devtrace run -- <command>`");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new(vec![
        Column::new(
            format!("START ({})", zone_name()),
            Align::Left,
            Fit::Optional(3),
        ),
        Column::new("DURATION", Align::Right, Fit::Optional(4)),
        Column::new("EXIT", Align::Right, Fit::Optional(5)),
        Column::new("TESTS (P/F/S)", Align::Left, Fit::Optional(2)),
        Column::new("SPANS", Align::Right, Fit::Optional(0)),
        Column::new("LABEL", Align::Left, Fit::Shrink { min: 12 }),
        Column::new("RUN ID", Align::Left, Fit::Keep),
        Column::new("COMMAND", Align::Left, Fit::Shrink { min: 12 }),
    ]);
    for row in &rows {
        let exit = match (row["exit_code"].as_i64(), row["signal"].as_i64()) {
            (_, Some(signal)) => format!("sig{signal}"),
            (Some(code), None) => code.to_string(),
            _ => "?".to_owned(),
        };
        let tests = row["tests"]
            .as_object()
            .map(|t| {
                format!(
                    "{}/{}/{}",
                    t["passed"],
                    t["failed"].as_i64().unwrap_or(0),
                    t["skipped"].as_i64().unwrap_or(0)
                )
            })
            .unwrap_or_else(|| "-".to_owned());
        table.row(vec![
            format_timestamp(row["start_unix_nano"].as_u64().unwrap_or(0)).into(),
            format_duration(row["duration_ns"].as_u64().unwrap_or(0)).into(),
            exit.into(),
            tests.into(),
            row["span_count"].to_string().into(),
            escape(row["label"].as_str().unwrap_or("-")).into(),
            escape(row["run_id"].as_str().unwrap_or("")).into(),
            escape(row["command"].as_str().unwrap_or("")).into(),
        ]);
    }
    let out = table.render(terminal_width(), &|_, text| text.to_owned());
    print_fitted(&out)?;
    Ok(ExitCode::SUCCESS)
}
