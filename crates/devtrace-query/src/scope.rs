//! Which traces an analysis reads, loaded and built into trees.

use devtrace_analyze::AnalyzedTrace;
use devtrace_model::OperationFilter;
use devtrace_model::recorded::quote;
use devtrace_store::{Store, StoreError, TraceQuery, TraceSummary};

/// Traces analysed when no count is given.
pub const DEFAULT_LAST: usize = 20;
/// Upper bound on traces any one analysis reads, whatever the caller asks for.
pub const MAX_TRACES: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The message names the closest stored operations.
    #[error("{0}")]
    UnknownOperation(String),
    /// Spans of that name exist, but not of the service or kind asked for; the message says
    /// which there are.
    #[error("{0}")]
    OperationElsewhere(String),
    /// The question cannot be answered as asked (the message says why and what to change).
    #[error("{0}")]
    Invalid(String),
    /// No session has the id asked for; the message (`sessions::resolve::no_session`)
    /// says how sessions are named and where the face lists them.
    #[error("{0}")]
    NoSession(String),
}

/// How far back an analysis looks: the most recent `last` traces, started at or after `since`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub last: Option<usize>,
    pub since_unix_nano: Option<u64>,
}

impl Scope {
    /// The number of traces to read: `last`, or `default_last`, within `1..=MAX_TRACES`.
    pub fn limit(&self, default_last: usize) -> usize {
        self.last.unwrap_or(default_last).clamp(1, MAX_TRACES)
    }
}

/// Reads and builds the trees of the given traces (skipping any deleted meanwhile), oldest
/// first: detectors that look at history (regressions, recurrences) expect time order.
pub fn load(
    store: &dyn Store,
    summaries: &[TraceSummary],
) -> Result<Vec<AnalyzedTrace>, StoreError> {
    let mut traces = Vec::with_capacity(summaries.len());
    for summary in summaries {
        if let Some(stored) = store.get_trace(summary.trace_id)? {
            traces.push(AnalyzedTrace::new(summary.trace_id, stored.spans));
        }
    }
    traces.sort_by_key(|t| t.root().map_or(0, |r| t.span(r).start_unix_nano));
    Ok(traces)
}

/// The most recent traces in scope, optionally only those containing a span of an operation
/// the filter matches.
pub fn recent(
    store: &dyn Store,
    scope: Scope,
    operation: Option<&OperationFilter>,
    default_last: usize,
) -> Result<Vec<AnalyzedTrace>, QueryError> {
    let limit = scope.limit(default_last);
    let summaries = match operation {
        Some(filter) => {
            let found = store.traces_with_operation(filter, scope.since_unix_nano, limit)?;
            if found.is_empty() {
                return Err(QueryError::UnknownOperation(unknown_operation(
                    store,
                    &filter.name,
                )?));
            }
            found
        }
        None => store.list_traces(&TraceQuery {
            runtime_only: true,
            since_unix_nano: scope.since_unix_nano,
            limit,
            ..Default::default()
        })?,
    };
    Ok(load(store, &summaries)?)
}

/// One trace by id or unique prefix.
pub fn one(store: &dyn Store, id: &str) -> Result<AnalyzedTrace, StoreError> {
    let trace_id = store.resolve_trace_id(id)?;
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(id.to_owned()))?;
    Ok(AnalyzedTrace::new(trace_id, stored.spans))
}

/// Stored operation names close to `name` (containment or a small edit distance), sorted.
pub fn closest_operations(
    store: &dyn Store,
    name: &str,
    max: usize,
) -> Result<Vec<String>, StoreError> {
    let names = store.operation_names()?;
    let lower = name.to_lowercase();
    let mut close: Vec<String> = names
        .into_iter()
        .filter(|n| {
            let candidate = n.to_lowercase();
            candidate.contains(&lower)
                || lower.contains(&candidate)
                || edit_distance(&candidate, &lower) <= 3
        })
        .take(max)
        .collect();
    close.sort();
    Ok(close)
}

/// "no span named X is stored; did you mean …" with the closest stored names.
pub fn unknown_operation(store: &dyn Store, name: &str) -> Result<String, StoreError> {
    let close = closest_operations(store, name, 5)?;
    Ok(if close.is_empty() {
        format!(
            "no span named {} is stored; `devtrace perf` lists the operations there are",
            quote(name)
        )
    } else {
        let list: Vec<String> = close.iter().map(|n| quote(n)).collect();
        format!(
            "no span named {} is stored; did you mean {}?",
            quote(name),
            list.join(", ")
        )
    })
}

/// Levenshtein distance over characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("journal", "journal"), 0);
    }

    #[test]
    fn scope_limit_is_bounded() {
        assert_eq!(Scope::default().limit(20), 20);
        let huge = Scope {
            last: Some(1_000_000),
            since_unix_nano: None,
        };
        assert_eq!(huge.limit(20), MAX_TRACES);
        let zero = Scope {
            last: Some(0),
            since_unix_nano: None,
        };
        assert_eq!(zero.limit(20), 1);
    }
}
