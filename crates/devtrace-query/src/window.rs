//! The one default time window: what every face analyses when the caller names no time and no
//! count (CLI `insights`, `errors` and the `perf` ranking; MCP `find_issues`, `errors` and
//! `overview`; the REST findings and overview, and the web UI through them).
//!
//! It is the last hour, up to now, when the store has program traces from the last hour.
//! Otherwise it is the hour before the newest trace, so an imported or older store still gets
//! an answer, and the answer says so ([`Window::note`]): a window that silently showed nothing
//! would read as "no problems".

use crate::scope::Scope;
use crate::timefmt::format_timestamp_zoned;
use devtrace_model::OperationFilter;
use devtrace_store::{Store, StoreError, TraceQuery};
use serde::Serialize;

/// How long the default window is.
pub const DEFAULT_WINDOW_NANOS: u64 = 3_600 * 1_000_000_000;

/// The time an analysis covered when its caller did not say.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    /// Traces started at or after this (Unix nanoseconds).
    pub since_unix_nano: u64,
    /// Set when nothing started in the last hour: the start of the newest trace in scope,
    /// which the window ends at.
    pub newest_unix_nano: Option<u64>,
    /// How the answer names the window: "the last hour", "the hour before the newest trace".
    pub description: String,
    /// Said first when the window is not the last hour.
    pub note: Option<String>,
}

impl Window {
    fn last_hour(now: u64) -> Self {
        Self {
            since_unix_nano: now.saturating_sub(DEFAULT_WINDOW_NANOS),
            newest_unix_nano: None,
            description: "the last hour".into(),
            note: None,
        }
    }

    fn before(newest: u64) -> Self {
        let at = format_timestamp_zoned(newest);
        Self {
            since_unix_nano: newest.saturating_sub(DEFAULT_WINDOW_NANOS),
            newest_unix_nano: Some(newest),
            description: "the hour before the newest trace".into(),
            note: Some(format!(
                "no traces in the last hour; showing the hour before the newest trace, {at}"
            )),
        }
    }
}

/// Which traces a window follows the newest of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor<'a> {
    /// Program traces (what the runtime analyses read).
    Programs,
    /// Traces containing a span of an operation.
    Operation(&'a OperationFilter),
    /// Every trace, development sessions included (what the overview lists).
    Everything,
}

/// The default window at `now`, following the newest trace of `anchor`.
pub fn default_window(
    store: &dyn Store,
    now: u64,
    anchor: Anchor<'_>,
) -> Result<Window, StoreError> {
    let newest = match anchor {
        Anchor::Operation(filter) => store.traces_with_operation(filter, None, 1)?,
        Anchor::Programs | Anchor::Everything => store.list_traces(&TraceQuery {
            runtime_only: anchor == Anchor::Programs,
            limit: 1,
            ..Default::default()
        })?,
    }
    .first()
    .map(|t| t.start_unix_nano);
    let last_hour = Window::last_hour(now);
    Ok(match newest {
        Some(newest) if newest < last_hour.since_unix_nano => Window::before(newest),
        _ => last_hour,
    })
}

/// The scope a caller asked for, with the default window filled in when it named neither a
/// time (`since`) nor a count (`last`); the window is returned so the answer can say which.
pub fn with_default(
    store: &dyn Store,
    scope: Scope,
    now: u64,
    operation: Option<&OperationFilter>,
) -> Result<(Scope, Option<Window>), StoreError> {
    if scope.since_unix_nano.is_some() || scope.last.is_some() {
        return Ok((scope, None));
    }
    let anchor = operation.map_or(Anchor::Programs, Anchor::Operation);
    let window = default_window(store, now, anchor)?;
    Ok((
        Scope {
            since_unix_nano: Some(window.since_unix_nano),
            ..scope
        },
        Some(window),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{store_with, trace};

    const HOUR: u64 = DEFAULT_WINDOW_NANOS;

    #[test]
    fn the_last_hour_when_there_is_recent_data_else_the_hour_before_the_newest_trace() {
        // Traces start at 1 µs, 2 µs and 3 µs.
        let (_dir, store) = store_with((1..=3).map(|n| trace(n, vec![], vec![])).collect());
        let recent = default_window(&store, HOUR + 2_500, Anchor::Programs).unwrap();
        assert_eq!(recent, Window::last_hour(HOUR + 2_500));
        assert_eq!(recent.note, None);

        // A day later nothing is recent: the hour before the newest trace.
        let later = default_window(&store, 24 * HOUR, Anchor::Programs).unwrap();
        assert_eq!(
            (later.since_unix_nano, later.newest_unix_nano),
            (0, Some(3_000))
        );
        assert_eq!(
            later.note.as_deref(),
            Some(
                "no traces in the last hour; showing the hour before the newest trace, 1970-01-01 00:00:00 UTC"
            )
        );
        // An operation's window follows its own newest run.
        let op1 = OperationFilter::named("op 1");
        let op1 = default_window(&store, 24 * HOUR, Anchor::Operation(&op1)).unwrap();
        assert_eq!(op1.newest_unix_nano, Some(1_000));

        // A scope that names a time or a count is left as it is.
        let asked = Scope {
            last: Some(2),
            since_unix_nano: None,
        };
        assert_eq!(
            with_default(&store, asked, 24 * HOUR, None).unwrap(),
            (asked, None)
        );
        let (filled, window) = with_default(&store, Scope::default(), 24 * HOUR, None).unwrap();
        assert_eq!(filled.since_unix_nano, Some(0));
        assert_eq!(window, Some(later));
    }

    #[test]
    fn the_overview_follows_sessions_too() {
        use devtrace_model::{KeyValue, semconv};
        let (dir, store) = store_with(vec![trace(1, vec![], vec![])]);
        let session = trace(
            9,
            vec![
                KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
                KeyValue::new(semconv::SESSION_AGENT, "codex"),
            ],
            vec![],
        );
        crate::testing::add_sessions(&dir, vec![session]);
        let now = 24 * HOUR;
        let programs = default_window(&store, now, Anchor::Programs).unwrap();
        let everything = default_window(&store, now, Anchor::Everything).unwrap();
        assert_eq!(
            (programs.newest_unix_nano, everything.newest_unix_nano),
            (Some(1_000), Some(9_000))
        );
    }

    #[test]
    fn an_empty_store_gets_the_last_hour() {
        let (_dir, store) = store_with(vec![]);
        assert_eq!(
            default_window(&store, 5 * HOUR, Anchor::Programs).unwrap(),
            Window::last_hour(5 * HOUR)
        );
    }
}
