//! `devtrace compare`: two traces, the last runs of an operation, or two time windows.

use crate::cli::CompareArgs;
use crate::output::{print_json, print_stdout};
use anyhow::{Result, anyhow, bail};
use devtrace_analyze::compare::compare;
use devtrace_query::compare::{CompareSpec, Sides};
use devtrace_query::timefmt::{now_nanos, parse_since};
use devtrace_store::Store;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &CompareArgs) -> Result<ExitCode> {
    let Sides { a, b, label } = select(store, args)?;
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

fn select(store: &dyn Store, args: &CompareArgs) -> Result<Sides> {
    let spec = match (&args.a, &args.b, &args.operation) {
        (Some(a), Some(b), _) => CompareSpec::Traces {
            a: a.clone(),
            b: b.clone(),
        },
        (Some(_), None, _) => {
            bail!("give two trace ids (A and B), or --operation with --last N or --before/--after")
        }
        (None, _, None) => bail!(
            "say what to compare: two trace ids, or --operation NAME with --last N or --before/--after"
        ),
        (None, _, Some(operation)) => {
            let when = |text: &str, flag: &str| {
                parse_since(text, now_nanos()).map_err(|e| anyhow!("{flag}: {e}"))
            };
            match (args.last, &args.before, &args.after) {
                (Some(n), None, None) => {
                    if n < 2 {
                        bail!("--last needs at least 2 runs (one per side)");
                    }
                    CompareSpec::LastRuns {
                        operation: operation.clone(),
                        last: n,
                    }
                }
                (None, before, after) if before.is_some() || after.is_some() => {
                    CompareSpec::Windows {
                        operation: operation.clone(),
                        before: before.as_deref().map(|t| when(t, "--before")).transpose()?,
                        after: after.as_deref().map(|t| when(t, "--after")).transpose()?,
                    }
                }
                _ => bail!("with --operation, give either --last N or --before/--after (not both)"),
            }
        }
    };
    Ok(devtrace_query::compare::select(store, &spec)?)
}
