//! `devtrace plan`: instrumentation plans for blind spots (devtrace-plan makes, keeps and
//! explains them; this only formats).

use crate::cli::{PlanArgs, PlanCommand};
use crate::output::{print_fitted, print_json};
use crate::usage::usage;
use anyhow::Result;
use devtrace_plan::{PlanRequest, PlanStore, explain, make_plan};
use devtrace_store::Store;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Plans are kept in the data directory `dir`; `open_store` opens what they are made from (the
/// store, or a server's through --server).
pub fn run(
    dir: &Path,
    open_store: impl FnOnce() -> Result<Arc<dyn Store>>,
    args: &PlanArgs,
) -> Result<ExitCode> {
    let plans = PlanStore::new(dir);
    match &args.command {
        Some(PlanCommand::List { json }) => {
            let list = plans.list()?;
            if *json {
                print_json(&list)?;
            } else if list.is_empty() {
                print_fitted(&format!(
                    "no plans yet in {}; make one with `devtrace plan <operation>`\n",
                    crate::output::path(plans.dir())
                ))?;
            } else {
                let mut text = String::new();
                for p in &list {
                    text.push_str(&format!(
                        "{}  {}  {} functions  {}\n",
                        p.id,
                        devtrace_query::timefmt::format_timestamp_zoned(p.created_unix_nano),
                        p.functions.len(),
                        devtrace_model::recorded::name(&p.operation)
                    ));
                }
                print_fitted(&text)?;
            }
        }
        Some(PlanCommand::Show { id, json }) => {
            let plan = plans.load(id)?;
            if *json {
                print_json(&plan)?;
            } else {
                print_fitted(&explain(&plan))?;
            }
        }
        None => {
            let Some(operation) = &args.operation else {
                usage!(
                    "devtrace plan needs an operation (a span name), e.g. `devtrace plan app.jobs.process`; `devtrace plan list` shows the stored plans"
                );
            };
            if !(args.threshold_ms >= 0.0 && args.threshold_ms.is_finite()) {
                usage!(
                    "--threshold-ms {}: give a number of milliseconds ≥ 0",
                    args.threshold_ms
                );
            }
            let store = open_store()?;
            let mut request = PlanRequest::new(operation);
            request.roots = args.source.clone();
            request.depth = args.depth;
            request.threshold_ms = args.threshold_ms;
            request.last = args.last;
            let plan = make_plan(&*store, &request)?;
            plans.save(&plan)?;
            if args.json {
                print_json(&plan)?;
            } else {
                print_fitted(&explain(&plan))?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
