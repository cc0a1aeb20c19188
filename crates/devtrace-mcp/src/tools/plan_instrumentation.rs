//! `plan_instrumentation`: the answer to a blind_spot finding. From the operation's spans
//! (`code.*` attributes, or its name as module.function, or where the source starts a span of
//! that name by hand: a decorated function or a `with` block) to its code, and from the source
//! (parsed with Python's ast, or Elixir's and Erlang's own parsers for a BEAM program; never run)
//! to the functions it calls: a plan of which functions to record on the next run. The plan is stored (DATA/plans) and explained; names and
//! source snippets in it are recorded text, quoted.

use super::{ToolDef, ToolError, ToolResult, fit, tool};
use crate::budget;
use devtrace_plan::{PlanError, PlanRequest, PlanStore, explain, make_plan};
use devtrace_store::Store;
use rmcp::model::ToolAnnotations;
use serde::Deserialize;
use std::path::PathBuf;

/// Parameters of `plan_instrumentation`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The operation (span name) of a blind_spot finding
    operation: String,
    /// Directories its package is under (default: its spans' code.file.path, else the server's)
    source: Option<Vec<String>>,
    /// Calls deep to follow (default 2)
    depth: Option<u32>,
    /// Calls at least this long become spans (default 1)
    threshold_ms: Option<f64>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    let mut def = tool(
        "plan_instrumentation",
        "For a blind_spot finding: plans which Python, Elixir or Erlang functions the next run records (`devtrace run --plan ID -- cmd`) from the source, parsed not run, and says what cannot be.",
        run,
    );
    // It writes a plan file beside the store (never the traces).
    def.definition = def
        .definition
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(false));
    def
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let operation = params.operation.trim();
    if operation.is_empty() {
        return Err(ToolError::new(
            "operation is empty: give the span name of a blind_spot finding (find_issues lists them)",
        ));
    }
    let Some(plans) = PlanStore::default_store() else {
        return Err(ToolError::new(
            "this server keeps no plans (it has no data directory); run `devtrace plan <operation>` instead",
        ));
    };
    let mut request = PlanRequest::new(operation);
    request.roots = params
        .source
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect();
    if let Some(depth) = params.depth {
        request.depth = depth.min(6);
    }
    if let Some(ms) = params.threshold_ms {
        if !(ms >= 0.0 && ms.is_finite()) {
            return Err(ToolError::new(
                "threshold_ms must be a number of milliseconds ≥ 0",
            ));
        }
        request.threshold_ms = ms;
    }
    let plan = make_plan(store, &request).map_err(|e| match e {
        PlanError::Query(q) => ToolError::from_query(store, q, Some(operation)),
        other => ToolError::new(other.to_string()),
    })?;
    plans
        .save(&plan)
        .map_err(|e| ToolError::new(e.to_string()))?;
    let mut out = explain(&plan);
    out.push_str(&format!(
        "next: the user runs `devtrace run --plan {} -- <their command>`; then analyze_operation on the operation shows the recorded calls and how much of its own time they account for (devtrace.calls.accounted_ns)\n",
        plan.id
    ));
    Ok(fit(out, budget, "raise budget"))
}
