//! `devtrace perf`: where an operation's time goes across its recent runs.

use super::analysis::{DEFAULT_LAST, MAX_TRACES, finding_text, one, recent, since};
use crate::cli::PerfArgs;
use crate::output::eprintln_safe;
use crate::output::{print_json, print_stdout};
use anyhow::Result;
use devtrace_analyze::perf::{profile_operation, rank_operations};
use devtrace_query::analytics::findings_for_operation;
use devtrace_query::timefmt::format_duration;
use devtrace_store::{Store, TraceQuery};
use serde_json::json;
use std::process::ExitCode;

/// Findings shown under a breakdown.
const FINDINGS_SHOWN: usize = 3;

pub fn run(store: &dyn Store, args: &PerfArgs, data: Option<&std::path::Path>) -> Result<ExitCode> {
    let (traces, operation) = match (&args.trace, &args.operation) {
        (Some(id), _) => {
            let trace = one(store, id)?;
            let root = trace
                .root()
                .map(|r| trace.span(r).name.clone())
                .unwrap_or_default();
            (vec![trace], root)
        }
        (None, Some(operation)) => (
            recent(store, &args.scope, Some(operation), DEFAULT_LAST)?,
            operation.clone(),
        ),
        (None, None) => return rank(store, args),
    };
    let Some(profile) = profile_operation(&traces, &operation) else {
        anyhow::bail!(
            "no span named {} in the selected traces",
            devtrace_query::text::quote(&operation)
        );
    };
    let findings = findings_for_operation(&traces, &profile);
    if args.json {
        print_json(&json!({"profile": profile, "findings": findings}))?;
    } else {
        let mut out = devtrace_query::text::render_profile(&profile);
        if !findings.is_empty() {
            out.push_str("\nfindings\n");
            for (n, finding) in findings.iter().take(FINDINGS_SHOWN).enumerate() {
                out.push_str(&finding_text(finding, n + 1));
            }
            if findings.len() > FINDINGS_SHOWN {
                out.push_str(&format!(
                    "   … {} more: devtrace insights --operation {}\n",
                    findings.len() - FINDINGS_SHOWN,
                    devtrace_model::recorded::shell_word(&operation)
                ));
            }
        }
        out.push_str(&super::serve::web_link_line(
            data,
            &devtrace_query::links::operation(&operation),
        ));
        print_stdout(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `devtrace perf` with no operation: root operations ranked by total time.
fn rank(store: &dyn Store, args: &PerfArgs) -> Result<ExitCode> {
    let limit = args.scope.last.unwrap_or(1_000).clamp(1, MAX_TRACES * 20);
    let summaries = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano: since(&args.scope)?,
        limit,
        ..Default::default()
    })?;
    let ranked = rank_operations(
        summaries
            .iter()
            .map(|s| (s.root_name.clone(), s.duration_nanos(), s.error_count > 0)),
    );
    if args.json {
        print_json(&ranked)?;
        return Ok(ExitCode::SUCCESS);
    }
    if ranked.is_empty() {
        eprintln_safe!(
            "no program traces in scope; send some to `devtrace serve` first (development sessions are listed by `devtrace sessions`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let width = ranked
        .iter()
        .map(|r| r.operation.chars().count())
        .max()
        .unwrap_or(9)
        .clamp(9, 48);
    let mut out = format!(
        "operations by total time over the last {} traces\n\n  {:<width$}  {:>5}  {:>10}  {:>9}  {:>9}  {:>6}\n",
        summaries.len(),
        "operation",
        "runs",
        "total",
        "mean",
        "p95",
        "errors"
    );
    for row in &ranked {
        out.push_str(&format!(
            "  {:<width$}  {:>5}  {:>10}  {:>9}  {:>9}  {:>6}\n",
            devtrace_query::text::cell(&row.operation, width),
            row.runs,
            format_duration(row.total_nanos),
            format_duration(row.duration.mean as u64),
            format_duration(row.duration.p95 as u64),
            row.errors,
        ));
    }
    out.push_str("\nbreak one down with: devtrace perf <operation>\n");
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}
