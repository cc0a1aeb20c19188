//! `devtrace compare`: two traces, the last runs of an operation, or two time windows.

use super::analysis::{load, one, unknown_operation};
use crate::cli::CompareArgs;
use crate::output::{print_json, print_stdout};
use crate::timefmt::{format_duration, now_nanos, parse_since};
use anyhow::{Result, anyhow, bail};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::compare::{Comparison, OperationDelta, compare};
use devtrace_store::Store;
use std::process::ExitCode;

/// Runs read per side for time-window comparisons.
const WINDOW_RUNS: usize = 200;
/// Operation rows shown in text.
const ROWS_SHOWN: usize = 15;

pub fn run(store: &dyn Store, args: &CompareArgs) -> Result<ExitCode> {
    let (a, b, label) = select(store, args)?;
    let comparison = compare(&a, &b);
    if args.json {
        print_json(&serde_json::json!({"what": label, "comparison": comparison}))?;
    } else {
        print_stdout(&render(&label, &comparison))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn select(
    store: &dyn Store,
    args: &CompareArgs,
) -> Result<(Vec<AnalyzedTrace>, Vec<AnalyzedTrace>, String)> {
    if let (Some(a), Some(b)) = (&args.a, &args.b) {
        let (ta, tb) = (one(store, a)?, one(store, b)?);
        let label = format!("trace {} (A) vs trace {} (B)", ta.trace_id, tb.trace_id);
        return Ok((vec![ta], vec![tb], label));
    }
    if args.a.is_some() {
        bail!("give two trace ids (A and B), or --operation with --last N or --before/--after");
    }
    let Some(operation) = &args.operation else {
        bail!(
            "say what to compare: two trace ids, or --operation NAME with --last N or --before/--after"
        );
    };
    let when =
        |text: &str, flag: &str| parse_since(text, now_nanos()).map_err(|e| anyhow!("{flag}: {e}"));
    let (runs, split): (Vec<AnalyzedTrace>, Box<dyn Fn(u64) -> bool>) =
        match (args.last, &args.before, &args.after) {
            (Some(n), None, None) => {
                if n < 2 {
                    bail!("--last needs at least 2 runs (one per side)");
                }
                let summaries = store.traces_with_operation(operation, None, n)?;
                let runs = load(store, &summaries)?;
                if runs.len() < 2 {
                    bail!(
                        "only {} run(s) of {operation:?} are stored; need 2 to compare",
                        runs.len()
                    );
                }
                // Oldest first: the older half is A.
                let cut = runs.len() / 2;
                let boundary = start(&runs[cut]);
                (runs, Box::new(move |s| s < boundary))
            }
            (None, before, after) if before.is_some() || after.is_some() => {
                let before = before.as_deref().map(|t| when(t, "--before")).transpose()?;
                let after = after.as_deref().map(|t| when(t, "--after")).transpose()?;
                let (before, after) =
                    (before.or(after).unwrap_or(0), after.or(before).unwrap_or(0));
                let summaries = store.traces_with_operation(operation, None, WINDOW_RUNS * 2)?;
                let runs = load(store, &summaries)?;
                let keep_after = after;
                (
                    runs.into_iter()
                        .filter(|t| start(t) < before || start(t) >= keep_after)
                        .collect(),
                    Box::new(move |s| s < before),
                )
            }
            _ => bail!("with --operation, give either --last N or --before/--after (not both)"),
        };
    if runs.is_empty() {
        bail!("{}", unknown_operation(store, operation)?);
    }
    let (a, b): (Vec<_>, Vec<_>) = runs.into_iter().partition(|t| split(start(t)));
    if a.is_empty() || b.is_empty() {
        bail!(
            "one side is empty ({} run(s) before, {} after): move the boundary",
            a.len(),
            b.len()
        );
    }
    let label = format!(
        "{operation}: {} earlier run(s) (A) vs {} later run(s) (B)",
        a.len(),
        b.len()
    );
    Ok((a, b, label))
}

fn start(trace: &AnalyzedTrace) -> u64 {
    trace.root().map_or(0, |r| trace.span(r).start_unix_nano)
}

fn signed(nanos: f64) -> String {
    let sign = if nanos < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format_duration(nanos.abs() as u64))
}

fn ratio(delta: &OperationDelta) -> String {
    delta
        .delta_ratio
        .map(|r| format!("{:+.1} %", r * 100.0).replace('-', "−"))
        .unwrap_or_else(|| "new".into())
}

pub fn render(label: &str, comparison: &Comparison) -> String {
    let total = &comparison.total;
    let mut out = format!(
        "{label}\n\nwhole run: {} → {}  ({}, {})  {}\n",
        format_duration(total.a.mean_nanos as u64),
        format_duration(total.b.mean_nanos as u64),
        signed(total.delta_nanos),
        ratio(total),
        total.verdict.describe(),
    );
    if total.a.tokens_per_run > 0.0 || total.b.tokens_per_run > 0.0 {
        out.push_str(&format!(
            "tokens per run: {:.0} → {:.0}\n",
            total.a.tokens_per_run, total.b.tokens_per_run
        ));
    }
    if total.a.errors > 0 || total.b.errors > 0 {
        out.push_str(&format!(
            "error spans: {} → {}\n",
            total.a.errors, total.b.errors
        ));
    }
    let rows: Vec<&OperationDelta> = comparison.operations.iter().take(ROWS_SHOWN).collect();
    let width = rows
        .iter()
        .map(|r| r.operation.chars().count())
        .max()
        .unwrap_or(9)
        .clamp(9, 40);
    out.push_str(&format!(
        "\n  {:<width$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>11}  {}\n",
        "operation", "A", "B", "delta", "change", "calls A→B", "verdict"
    ));
    for row in rows {
        out.push_str(&format!(
            "  {:<width$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>11}  {}\n",
            super::ls::truncate(&row.operation, width),
            format_duration(row.a.mean_nanos as u64),
            format_duration(row.b.mean_nanos as u64),
            signed(row.delta_nanos),
            ratio(row),
            format!("{:.1}→{:.1}", row.a.calls_per_run, row.b.calls_per_run),
            row.verdict.describe(),
        ));
    }
    if comparison.operations.len() > ROWS_SHOWN {
        out.push_str(&format!(
            "  … {} more operations (--json for all)\n",
            comparison.operations.len() - ROWS_SHOWN
        ));
    }
    out
}
