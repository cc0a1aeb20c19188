//! Which session an id names (a trace id, a unique prefix of one, or the agent's own session
//! id), and the one message every face gives when none does.

use crate::scope::QueryError;
use devtrace_model::TraceId;
use devtrace_store::{SessionQuery, Store, StoreError};

/// Finds a session by trace id (or unique prefix) or by the agent's own session id.
pub fn resolve_session(store: &dyn Store, id: &str) -> Result<TraceId, QueryError> {
    let id = id.trim();
    if id.len() == 36 && id.matches('-').count() == 4 {
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        if let Ok(trace_id) = hex.parse::<TraceId>()
            && store.session(trace_id)?.is_some()
        {
            return Ok(trace_id);
        }
    }
    match store.resolve_trace_id(id) {
        Ok(trace_id) => Ok(trace_id),
        Err(StoreError::InvalidTraceId(_) | StoreError::TraceNotFound(_)) => {
            let found = store
                .list_sessions(&SessionQuery {
                    limit: 10_000,
                    ..Default::default()
                })?
                .into_iter()
                .find(|s| s.facts.session_id == id);
            found
                .map(|s| s.trace_id)
                .ok_or_else(|| QueryError::Store(StoreError::TraceNotFound(id.to_owned())))
        }
        Err(other) => Err(other.into()),
    }
}
