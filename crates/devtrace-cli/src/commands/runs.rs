//! `devtrace runs`: the recorded `devtrace run` executions, newest first.

use crate::cli::RunsArgs;
use crate::output::{print_json, print_stdout};
use anyhow::Result;
use devtrace_model::{AnyValue, Span, semconv};
use devtrace_query::timefmt::{format_duration, format_timestamp};
use devtrace_store::{Store, TraceQuery};
use serde_json::json;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &RunsArgs) -> Result<ExitCode> {
    // Label filtering happens after decoding, so read more than shown when filtering.
    let read = if args.label.is_some() {
        args.limit.saturating_mul(10).max(200)
    } else {
        args.limit
    };
    let summaries = store.list_traces(&TraceQuery {
        runs_only: true,
        limit: read,
        ..Default::default()
    })?;
    let mut rows = Vec::new();
    for summary in summaries {
        let Some(trace) = store.get_trace(summary.trace_id)? else {
            continue;
        };
        let Some(run) = trace
            .spans
            .spans
            .iter()
            .find(|s| s.attr(semconv::RUN_ID).is_some() && s.parent_span_id.is_none())
        else {
            continue;
        };
        let label = text(run, semconv::RUN_LABEL);
        if args.label.is_some() && label != args.label {
            continue;
        }
        rows.push(json!({
            "run_id": text(run, semconv::RUN_ID),
            "trace_id": summary.trace_id.to_hex(),
            "command": text(run, semconv::RUN_COMMAND).unwrap_or_else(|| run.name.clone()),
            "label": label,
            "start_unix_nano": run.start_unix_nano,
            "duration_ns": run.duration_nanos(),
            "exit_code": int(run, semconv::RUN_EXIT_CODE),
            "signal": int(run, semconv::RUN_SIGNAL),
            "tests": int(run, semconv::TEST_PASSED).map(|passed| json!({
                "runner": text(run, semconv::TEST_RUNNER),
                "passed": passed,
                "failed": int(run, semconv::TEST_FAILED),
                "skipped": int(run, semconv::TEST_SKIPPED),
            })),
            "span_count": summary.span_count,
            "error_count": summary.error_count,
        }));
        if rows.len() >= args.limit {
            break;
        }
    }
    if args.json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        eprintln!("no runs recorded; record one with `devtrace run -- <command>`");
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
            row["label"].as_str().unwrap_or("-"),
            row["run_id"].as_str().unwrap_or(""),
            row["command"].as_str().unwrap_or(""),
        ));
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn text(span: &Span, key: &str) -> Option<String> {
    span.attr(key).and_then(AnyValue::as_str).map(str::to_owned)
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match span.attr(key)? {
        AnyValue::Int(i) => Some(*i),
        _ => None,
    }
}
