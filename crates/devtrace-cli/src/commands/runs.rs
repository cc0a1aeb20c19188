//! `devtrace runs`: the recorded `devtrace run` executions, newest first.

use crate::cli::RunsArgs;
use crate::output::eprintln_safe;
use crate::output::{print_json, print_stdout};
use anyhow::Result;
use devtrace_model::recorded::escape;
use devtrace_query::runs::list_runs;
use devtrace_query::timefmt::{format_duration, format_timestamp};
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
    let mut out = format!(
        "{:<19}  {:>9}  {:>5}  {:<18}  {:>5}  {:<12}  {:<32}  {}\n",
        "START (UTC)", "DURATION", "EXIT", "TESTS (P/F/S)", "SPANS", "LABEL", "RUN ID", "COMMAND"
    );
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
        out.push_str(&format!(
            "{:<19}  {:>9}  {:>5}  {:<18}  {:>5}  {:<12}  {:<32}  {}\n",
            format_timestamp(row["start_unix_nano"].as_u64().unwrap_or(0)),
            format_duration(row["duration_ns"].as_u64().unwrap_or(0)),
            exit,
            tests,
            row["span_count"],
            escape(row["label"].as_str().unwrap_or("-")),
            escape(row["run_id"].as_str().unwrap_or("")),
            escape(row["command"].as_str().unwrap_or("")),
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
