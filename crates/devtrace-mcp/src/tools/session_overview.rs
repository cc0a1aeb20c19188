//! `session_overview`: one development session as a timeline (turns, sub-agents, every tool
//! call with its outcome, the runs it started) with its findings, paged by timeline entry.

use super::{ToolDef, ToolError, ToolResult, WebUi, linked_tool};
use crate::budget;
use devtrace_query::QueryError;
use devtrace_query::sessions::{self, Face, PageRequest, render_page, session_overview};
use devtrace_query::text::TextOptions;
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `session_overview`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Id from list_sessions (8+ hex prefix), or the agent's session UUID
    session_id: String,
    /// First timeline entry to show (from a footer)
    offset: Option<usize>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    linked_tool(
        "session_overview",
        "One session: numbers, findings (retry loops, blind edits, …), QA verdict, then the timeline of turns, sub-agents and tool calls with outcomes, errors and linked runs.",
        run,
    )
}

fn run(store: &dyn Store, params: Params, web_ui: Option<&WebUi>) -> ToolResult {
    let id = params.session_id.trim();
    let overview = session_overview(store, id).map_err(|e| session_error(store, e))?;
    let budget = budget::resolve(params.budget);
    let (link, _) = WebUi::link_line(
        web_ui,
        &devtrace_query::links::session(&overview.session.trace_id, None),
        budget,
    );
    let page = render_page(
        &overview,
        &PageRequest {
            face: Face::Mcp,
            options: TextOptions::quoted(100, "get_spans has them all"),
            offset: params.offset.unwrap_or(0),
            budget: Some(budget),
            repeat_budget: params.budget.is_some(),
            measure: &budget::count,
            qa: qa(store, &overview.session.trace_id),
            trailer: link,
            requests: false,
        },
    )
    .map_err(|e| ToolError::from_query(store, e, None))?;
    Ok(page.text)
}

/// The session's QA in a few lines (quoted), when it has any.
fn qa(store: &dyn Store, trace_id: &str) -> String {
    let Ok(id) = trace_id.parse() else {
        return String::new();
    };
    devtrace_qa::view::session_qa(store, id)
        .ok()
        .and_then(|qa| devtrace_qa::view::render_brief(&qa, true))
        .unwrap_or_default()
}

/// An id that names no session, in the words every face uses
/// ([`devtrace_query::sessions::no_session`]); other errors as they are.
pub fn session_error(store: &dyn Store, error: QueryError) -> ToolError {
    ToolError::from_query(
        store,
        sessions::session_error(store, error, Face::Mcp),
        None,
    )
}
