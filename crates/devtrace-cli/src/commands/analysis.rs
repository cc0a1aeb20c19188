//! The CLI's side of loading what an analysis looks at: `--since`/`--last` into a
//! [`devtrace_query::Scope`]; the loading itself lives in `devtrace-query`.

use crate::cli::ScopeArgs;
use anyhow::{Result, anyhow};
use devtrace_analyze::AnalyzedTrace;
use devtrace_query::Scope;
use devtrace_query::timefmt::{now_nanos, parse_since};
use devtrace_store::{Store, TraceSummary};

pub use devtrace_query::scope::{DEFAULT_LAST, MAX_TRACES};
pub use devtrace_query::text::finding_text;

/// `--since` as nanoseconds since the epoch.
pub fn since(scope: &ScopeArgs) -> Result<Option<u64>> {
    scope
        .since
        .as_deref()
        .map(|text| parse_since(text, now_nanos()).map_err(|e| anyhow!("--since: {e}")))
        .transpose()
}

/// The most recent traces in scope, optionally only those containing a span named `operation`.
pub fn recent(
    store: &dyn Store,
    scope: &ScopeArgs,
    operation: Option<&str>,
    default_last: usize,
) -> Result<Vec<AnalyzedTrace>> {
    let scope = Scope {
        last: scope.last,
        since_unix_nano: since(scope)?,
    };
    let operation = operation.map(devtrace_model::OperationFilter::named);
    Ok(devtrace_query::scope::recent(
        store,
        scope,
        operation.as_ref(),
        default_last,
    )?)
}

/// Reads and builds the trees of the given traces, oldest first.
pub fn load(store: &dyn Store, summaries: &[TraceSummary]) -> Result<Vec<AnalyzedTrace>> {
    Ok(devtrace_query::scope::load(store, summaries)?)
}

/// One trace by id or unique prefix.
pub fn one(store: &dyn Store, id: &str) -> Result<AnalyzedTrace> {
    Ok(devtrace_query::scope::one(store, id)?)
}
