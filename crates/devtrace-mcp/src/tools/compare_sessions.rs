//! `compare_sessions`: two development sessions side by side — turns, requests, tool calls by
//! tool and outcome, tokens by kind, cost, wall and active time, findings, and the first
//! request whose tool calls differ ("why did yesterday's run cost 3× today's?").

use super::session_overview::session_error;
use super::{ToolDef, ToolResult, WebUi, linked_tool};
use crate::budget;
use crate::render::SESSION_LEGEND;
use devtrace_query::sessions::compare::{compare_sessions, render_comparison};
use devtrace_query::text::TextOptions;
use devtrace_store::Store;
use serde::Deserialize;

/// Parameters of `compare_sessions`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A session id, as for session_overview
    a: String,
    /// The other session id
    b: String,
}

pub fn def() -> ToolDef {
    linked_tool(
        "compare_sessions",
        "Two sessions side by side: requests, tool calls, tokens by kind, cost, time, findings, first differing request.",
        run,
    )
}

fn run(store: &dyn Store, params: Params, _web_ui: Option<&WebUi>) -> ToolResult {
    let (a, b) = (params.a.trim(), params.b.trim());
    // The error names the side that is not a session.
    let comparison = compare_sessions(store, a, b).map_err(|e| session_error(store, e))?;
    let options = TextOptions::quoted(100, "session_overview has them all");
    let text = format!(
        "{SESSION_LEGEND}\n{}",
        render_comparison(&comparison, &options)
    );
    Ok(budget::fit(&text, budget::resolve(None), |shown, total| {
        format!("[{shown} of {total} lines shown to fit the budget; raise budget for the rest]\n")
    }))
}
