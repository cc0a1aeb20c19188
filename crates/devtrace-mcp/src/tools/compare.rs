//! `compare`: two traces, the last runs of an operation, or before/after a moment, with an
//! honest verdict per operation.

use super::{ToolDef, ToolError, ToolResult, fit, since, tool};
use crate::budget;
use crate::render::LEGEND;
use devtrace_analyze::compare::compare;
use devtrace_query::comparison::{Selection, select};
use devtrace_query::text::{TextOptions, render_comparison_with};
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `compare`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Before (with trace_b)
    trace_a: Option<String>,
    /// After (with trace_a)
    trace_b: Option<String>,
    /// Compare runs of this operation, with last or before/after
    operation: Option<String>,
    /// Last N runs: older half (A) vs newer half (B)
    last: Option<usize>,
    /// A = runs before this ("30m" ago or RFC 3339)
    before: Option<String>,
    /// B = runs from this on
    after: Option<String>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    tool(
        "compare",
        "Verify a change: two traces, or an operation's runs (last N in halves, or before/after a time), compared per operation with a rank-test verdict.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let spec = match (params.trace_a, params.trace_b, params.operation) {
        (Some(a), Some(b), _) => Selection::Traces { a, b },
        (Some(_), None, _) | (None, Some(_), _) => {
            return Err(ToolError::new(
                "give both trace_a and trace_b, or operation with last or before/after",
            ));
        }
        (None, None, None) => {
            return Err(ToolError::new(
                "say what to compare: trace_a and trace_b, or operation with last (e.g. 20) or before/after",
            ));
        }
        (None, None, Some(operation)) => match (params.last, &params.before, &params.after) {
            (Some(last), None, None) => Selection::Last { operation, last },
            (None, None, None) => Selection::Last {
                operation,
                last: 20,
            },
            (None, before, after) => Selection::Window {
                operation,
                before: since(before.as_deref())?,
                after: since(after.as_deref())?,
            },
            _ => return Err(ToolError::new("give either last or before/after, not both")),
        },
    };
    let operation = match &spec {
        Selection::Last { operation, .. } | Selection::Window { operation, .. } => {
            Some(operation.clone())
        }
        Selection::Traces { .. } | Selection::Runs { .. } => None,
    };
    let sides =
        select(store, &spec).map_err(|e| ToolError::from_query(store, e, operation.as_deref()))?;
    let comparison = compare(&sides.a, &sides.b);
    let options = TextOptions::quoted(100, "get_spans has them all");
    let text = render_comparison_with(
        &sides.label,
        &comparison,
        &options,
        "query_sql can aggregate any operation",
    );
    Ok(fit(
        format!("{LEGEND}\n{text}"),
        budget,
        "ask again with a larger budget",
    ))
}
