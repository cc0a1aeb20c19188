//! `devtrace compare`: two traces, the last runs of an operation, or two time windows.

use super::analysis::{load, one, unknown_operation};
use crate::cli::CompareArgs;
use crate::output::{print_json, print_stdout};
use anyhow::{Result, anyhow, bail};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::compare::compare;
use devtrace_query::timefmt::{now_nanos, parse_since};
use devtrace_store::Store;
use std::process::ExitCode;

/// Runs read per side for time-window comparisons.
const WINDOW_RUNS: usize = 200;

pub fn run(store: &dyn Store, args: &CompareArgs) -> Result<ExitCode> {
    let (a, b, label) = select(store, args)?;
    let comparison = compare(&a, &b);
    if args.json {
        print_json(&serde_json::json!({"what": label, "comparison": comparison}))?;
    } else {
        print_stdout(&devtrace_query::text::render_comparison(
            &label,
            &comparison,
        ))?;
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
