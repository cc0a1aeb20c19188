//! The CLI's side of loading what an analysis looks at: `--since`/`--last` into a
//! [`devtrace_query::Scope`]; the loading itself lives in `devtrace-query`.

use crate::cli::ScopeArgs;
use anyhow::Result;
use devtrace_analyze::AnalyzedTrace;
use devtrace_query::Scope;
use devtrace_query::timefmt::now_nanos;
use devtrace_query::window::Window;
use devtrace_store::Store;

pub use devtrace_query::scope::{DEFAULT_LAST, MAX_TRACES};
pub use devtrace_query::text::finding_text;

/// `--since` as nanoseconds since the epoch.
pub fn since(scope: &ScopeArgs) -> Option<u64> {
    scope.since.as_ref().map(|w| w.unix_nanos(now_nanos()))
}

/// `--since`/`--last` as a scope, with the default window (`devtrace_query::window`) when
/// neither is given; the window comes back so the answer can say which time it covers.
pub fn scope_or_default_window(
    store: &dyn Store,
    args: &ScopeArgs,
    operation: Option<&str>,
) -> Result<(Scope, Option<Window>)> {
    let scope = Scope {
        last: args.last,
        since_unix_nano: since(args),
    };
    let filter = operation.map(devtrace_model::OperationFilter::named);
    Ok(devtrace_query::window::with_default(
        store,
        scope,
        now_nanos(),
        filter.as_ref(),
    )?)
}

/// What a scope covered, for a heading: "since 2h", "the last hour", "the hour before the
/// newest trace", or "the most recent".
pub fn scope_description(args: &ScopeArgs, window: Option<&Window>) -> String {
    match (window, &args.since) {
        (Some(window), _) => window.description.clone(),
        (None, Some(since)) => format!("since {since}"),
        (None, None) => "the most recent".into(),
    }
}

/// "note: no traces in the last hour; …" when the default window is not the last hour.
pub fn window_note(window: Option<&Window>) -> String {
    window
        .and_then(|w| w.note.as_ref())
        .map(|note| format!("note: {note}\n"))
        .unwrap_or_default()
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
        since_unix_nano: since(scope),
    };
    let operation = operation.map(devtrace_model::OperationFilter::named);
    Ok(devtrace_query::scope::recent(
        store,
        scope,
        operation.as_ref(),
        default_last,
    )?)
}

/// One trace by id or unique prefix.
pub fn one(store: &dyn Store, id: &str) -> Result<AnalyzedTrace> {
    Ok(devtrace_query::scope::one(store, id)?)
}
