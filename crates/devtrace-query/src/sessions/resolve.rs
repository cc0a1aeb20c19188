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

/// The face a session answer is given in: how it names the listing of sessions, a trace's
/// view and the next page of a session's text, so that the words around them are one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// `devtrace sessions`, `devtrace session show`.
    Cli,
    /// The MCP tools (`list_sessions`, `session_overview`).
    Mcp,
    /// The REST API (`GET /api/v1/sessions`, `GET /api/v1/sessions/{id}/text`).
    Rest,
}

impl Face {
    /// Where this face lists the sessions.
    pub fn listing(self) -> &'static str {
        match self {
            Face::Cli => "`devtrace sessions`",
            Face::Mcp => "list_sessions",
            Face::Rest => "GET /api/v1/sessions",
        }
    }

    /// How this face shows the trace `id`.
    pub fn trace_view(self, id: &str) -> String {
        match self {
            Face::Cli => format!("`devtrace show {id}`"),
            Face::Mcp => format!("get_trace(trace_id=\"{id}\")"),
            Face::Rest => format!("GET /api/v1/traces/{id}"),
        }
    }

    /// How this face asks for the page of a session's text that starts at timeline entry
    /// `offset` (`session` is the id prefix, `budget` the tokens a page takes when one was
    /// asked for).
    pub fn page_call(self, session: &str, budget: Option<usize>, offset: usize) -> String {
        match (self, budget) {
            (Face::Cli, Some(b)) => {
                format!("`devtrace session show {session} --budget {b} --offset {offset}`")
            }
            (Face::Cli, None) => format!("`devtrace session show {session} --offset {offset}`"),
            (Face::Mcp, Some(b)) => {
                format!("session_overview(session_id=\"{session}\", budget={b}, offset={offset})")
            }
            (Face::Mcp, None) => {
                format!("session_overview(session_id=\"{session}\", offset={offset})")
            }
            (Face::Rest, Some(b)) => {
                format!("GET /api/v1/sessions/{session}/text?budget={b}&offset={offset}")
            }
            (Face::Rest, None) => format!("GET /api/v1/sessions/{session}/text?offset={offset}"),
        }
    }
}

/// How sessions are named, for every message about an id that names none.
pub const SESSION_ID_HINT: &str = "a session is named by its trace id (32 hex characters, or a unique prefix of 8 or more, e.g. 4bf92f35) or by the agent's own session id (a UUID such as 4bf92f35-77b3-4da6-a3ce-929d0e0e4736)";

/// The one answer, in every face, for an `id` that names no session: a trace that is not a
/// session says so and where it is shown; anything else says how sessions are named and
/// where `face` lists them. The id is quoted (it is the caller's text).
pub fn no_session(store: &dyn Store, id: &str, face: Face) -> String {
    let quoted = crate::text::quote(id.trim());
    match store.resolve_trace_id(id.trim()) {
        Ok(trace_id) => format!(
            "{quoted} is a trace, but not a development session: {} shows it; {} lists the sessions",
            face.trace_view(&trace_id.to_hex()[..8]),
            face.listing()
        ),
        Err(_) => format!(
            "no session matches {quoted}: {SESSION_ID_HINT}; {} lists them",
            face.listing()
        ),
    }
}

/// `error` in a session's words when it says that an id names no session (the id it names;
/// [`no_session`]); other errors as they are.
pub fn session_error(store: &dyn Store, error: QueryError, face: Face) -> QueryError {
    match error {
        QueryError::Store(StoreError::TraceNotFound(id)) => {
            QueryError::NoSession(no_session(store, &id, face))
        }
        other => other,
    }
}
