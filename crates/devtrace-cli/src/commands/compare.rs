//! `devtrace compare`: two traces, the last runs of an operation, or two time windows.

use crate::cli::CompareArgs;
use crate::output::{print_fitted, print_json};
use crate::usage::usage;
use anyhow::Result;
use devtrace_query::comparison::{Selection, compare_selection};
use devtrace_query::links;
use devtrace_query::timefmt::now_nanos;
use devtrace_store::Store;
use std::process::ExitCode;
use std::sync::Arc;

/// The selection is checked before `open_store` is called: a usage mistake opens nothing.
pub fn run(
    open_store: impl FnOnce() -> Result<Arc<dyn Store>>,
    args: &CompareArgs,
    data: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let selection = selection(args)?;
    let compared = compare_selection(&*open_store()?, &selection)?;
    if args.json {
        print_json(&serde_json::json!({"what": compared.what, "comparison": compared.comparison}))?;
    } else {
        let mut out = devtrace_query::text::render_comparison_with(
            &compared.what,
            &compared.comparison,
            &devtrace_query::text::TextOptions::plain(crate::output::terminal_width()),
            "--json for all",
        );
        out.push_str(&super::serve::web_link_line(data, &web_path(&selection)));
        print_fitted(&out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The web UI's view of the same comparison.
fn web_path(selection: &Selection) -> String {
    match selection {
        Selection::Traces { a, b } => links::compare_traces(a, b),
        Selection::Runs { a, b } => links::compare_runs(a, b),
        Selection::Last { operation, last } => links::compare_last(operation, *last),
        Selection::Window {
            operation,
            before,
            after,
        } => links::compare_window(operation, *before, *after),
    }
}

fn selection(args: &CompareArgs) -> Result<Selection> {
    if let (Some(a), Some(b)) = (&args.a, &args.b) {
        return Ok(Selection::Traces {
            a: a.clone(),
            b: b.clone(),
        });
    }
    if args.a.is_some() {
        usage!("give two trace ids (A and B), or --operation with --last N or --before/--after");
    }
    let Some(operation) = args.operation.clone() else {
        usage!(
            "say what to compare: two trace ids, or --operation NAME with --last N or --before/--after"
        );
    };
    let now = now_nanos();
    match (args.last, &args.before, &args.after) {
        (Some(n), None, None) => {
            if n < 2 {
                usage!("--last needs at least 2 runs (one per side)");
            }
            Ok(Selection::Last { operation, last: n })
        }
        (None, before, after) if before.is_some() || after.is_some() => Ok(Selection::Window {
            operation,
            before: before.as_ref().map(|w| w.unix_nanos(now)),
            after: after.as_ref().map(|w| w.unix_nanos(now)),
        }),
        _ => usage!("with --operation, give either --last N or --before/--after (not both)"),
    }
}
