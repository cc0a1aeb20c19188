//! The two sides of a comparison: two traces, the last runs of an operation split in halves,
//! or the runs of an operation before and after a moment.

use crate::scope::{self, QueryError, unknown_operation};
use devtrace_analyze::AnalyzedTrace;
use devtrace_store::Store;

/// Runs read per side for time-window comparisons.
pub const WINDOW_RUNS: usize = 200;

/// What to compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompareSpec {
    /// Two traces, by id or unique prefix: A (before) and B (after).
    Traces { a: String, b: String },
    /// The last `last` runs of an operation: the older half (A) against the newer half (B).
    LastRuns { operation: String, last: usize },
    /// Runs of an operation started before `before` (A) against those started at or after
    /// `after` (B); either bound alone splits at that moment.
    Windows {
        operation: String,
        before: Option<u64>,
        after: Option<u64>,
    },
}

/// The two sides, oldest first within each, and a label saying what they are.
pub struct Sides {
    pub a: Vec<AnalyzedTrace>,
    pub b: Vec<AnalyzedTrace>,
    pub label: String,
}

fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::Invalid(message.into())
}

pub fn select(store: &dyn Store, spec: &CompareSpec) -> Result<Sides, QueryError> {
    // Runs that started before `boundary` are side A.
    let (operation, runs, boundary): (&str, Vec<AnalyzedTrace>, u64) = match spec {
        CompareSpec::Traces { a, b } => {
            let (ta, tb) = (scope::one(store, a)?, scope::one(store, b)?);
            let label = format!("trace {} (A) vs trace {} (B)", ta.trace_id, tb.trace_id);
            return Ok(Sides {
                a: vec![ta],
                b: vec![tb],
                label,
            });
        }
        CompareSpec::LastRuns { operation, last } => {
            if *last < 2 {
                return Err(invalid(
                    "comparing the last runs needs at least 2 runs (one per side)",
                ));
            }
            let summaries = store.traces_with_operation(operation, None, *last)?;
            let runs = scope::load(store, &summaries)?;
            if runs.len() == 1 {
                return Err(invalid(format!(
                    "only 1 run of {operation:?} is stored; need 2 to compare"
                )));
            }
            // Oldest first: the older half is A.
            let boundary = runs.get(runs.len() / 2).map_or(0, start);
            (operation, runs, boundary)
        }
        CompareSpec::Windows {
            operation,
            before,
            after,
        } => {
            if before.is_none() && after.is_none() {
                return Err(invalid(
                    "a time-window comparison needs a moment: before, after, or both",
                ));
            }
            let (before, after) = (
                before.or(*after).unwrap_or(0),
                after.or(*before).unwrap_or(0),
            );
            let summaries = store.traces_with_operation(operation, None, WINDOW_RUNS * 2)?;
            let runs = scope::load(store, &summaries)?
                .into_iter()
                .filter(|t| start(t) < before || start(t) >= after)
                .collect();
            (operation, runs, before)
        }
    };
    if runs.is_empty() {
        return Err(QueryError::UnknownOperation(unknown_operation(
            store, operation,
        )?));
    }
    let (a, b): (Vec<_>, Vec<_>) = runs.into_iter().partition(|t| start(t) < boundary);
    if a.is_empty() || b.is_empty() {
        return Err(invalid(format!(
            "one side is empty ({} run(s) before, {} after): move the boundary",
            a.len(),
            b.len()
        )));
    }
    let label = format!(
        "{operation}: {} earlier run(s) (A) vs {} later run(s) (B)",
        a.len(),
        b.len()
    );
    Ok(Sides { a, b, label })
}

/// When a trace started (its root's start).
pub fn start(trace: &AnalyzedTrace) -> u64 {
    trace.root().map_or(0, |r| trace.span(r).start_unix_nano)
}
