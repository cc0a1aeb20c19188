//! `session_overview`: one development session as a timeline (turns, sub-agents, every tool
//! call with its outcome, the runs it started) with its findings, paged by timeline entry.

use super::{SESSION_ID_HINT, ToolDef, ToolError, ToolResult, WebUi, linked_tool};
use crate::budget;
use crate::render::{SESSION_LEGEND, take_within};
use devtrace_query::QueryError;
use devtrace_query::sessions::{
    SessionOverview, TimelineEntry, overview_header, session_finding_text, session_overview,
    text_timeline, timeline_entry_text, timeline_origin,
};
use devtrace_query::text::{TextOptions, quote};
use devtrace_store::{Store, StoreError};
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

/// Share of the budget the findings may take on the first page; the timeline gets the rest.
const FINDINGS_SHARE: usize = 2;
/// Tokens the first page keeps for the timeline whatever the findings.
const TIMELINE_ROOM: usize = 200;

/// The footer naming the next page.
fn footer(offset: usize, last: usize, total: usize, budget: usize, short_id: &str) -> String {
    format!(
        "[entries {offset}–{last} of {total} shown to fit {budget} tokens; the rest: session_overview(session_id=\"{short_id}\", offset={})]\n",
        last + 1
    )
}

fn run(store: &dyn Store, params: Params, web_ui: Option<&WebUi>) -> ToolResult {
    let id = params.session_id.trim();
    let overview = session_overview(store, id).map_err(|e| session_error(store, id, e))?;
    let budget = budget::resolve(params.budget);
    let (link, link_cost) = WebUi::link_line(
        web_ui,
        &devtrace_query::links::session(&overview.session.trace_id, None),
        budget,
    );
    let budget = budget - link_cost;
    let entries: Vec<&TimelineEntry> = text_timeline(&overview).collect();
    let total = entries.len();
    let offset = params.offset.unwrap_or(0);
    if offset > 0 && offset >= total {
        return Err(ToolError::new(format!(
            "offset {offset} is past the end: the timeline of this session has {total} entries (0 to {})",
            total.saturating_sub(1)
        )));
    }
    let options = TextOptions::quoted(100, "get_spans has them all");
    let trace_id = &overview.session.trace_id;
    let mut out = format!("{SESSION_LEGEND}\n");
    if offset == 0 {
        out.push_str(&overview_header(&overview, &options));
        if let Some(tokens) = &overview.session.tokens {
            // Tokens by kind and cost; the sparklines only when the budget has room for them.
            let lines = devtrace_query::sessions::tokens::render_tokens(tokens, &overview.requests);
            let first = lines.lines().next().unwrap_or("").to_owned() + "\n";
            let room = budget.saturating_sub(budget::count(&out) + TIMELINE_ROOM * 2);
            if budget::count(&lines) <= room / 4 {
                out.push_str(&lines);
            } else if budget::count(&first) <= room / 4 {
                out.push_str(&first);
            }
        }
        out.push_str(&qa(store, trace_id));
        let room = (budget / FINDINGS_SHARE)
            .min(budget.saturating_sub(budget::count(&out) + TIMELINE_ROOM));
        out.push_str(&findings(&overview, &options, room));
    } else {
        out.push_str(&format!(
            "session {trace_id}, continued (its numbers and findings: offset 0)\n"
        ));
    }
    out.push_str(&format!(
        "\ntimeline from entry {offset} of {total}: +time from the start, ✓/✗ outcome, [span id prefix] for get_spans(trace_id, span_ids)\n"
    ));
    let origin = timeline_origin(&overview);
    // Room for the longest footer this page could end with.
    let footer_room = budget::count(&footer(total, total, total, budget, &trace_id[..8]));
    let mut used = budget::count(&out) + footer_room;
    let mut end = offset;
    for entry in &entries[offset..] {
        let text = timeline_entry_text(&overview, entry, origin, &options);
        let cost = budget::count(&text);
        if used + cost <= budget {
            used += cost;
            out.push_str(&text);
        } else if end == offset {
            // An entry too large for a page of its own is cut, so that paging always advances.
            out.push_str(&budget::fit(&text, budget.saturating_sub(used), |_, _| {
                "      [entry cut to fit the budget; get_spans has all of it]\n".into()
            }));
        } else {
            break;
        }
        end += 1;
    }
    if end < total {
        out.push_str(&footer(offset, end - 1, total, budget, &trace_id[..8]));
    } else if !overview.linked_runs.is_empty() {
        out.push_str("next: get_trace on a linked run (↳) for what the command did inside\n");
    }
    out.push_str(&link);
    Ok(out)
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

/// The findings as numbered blocks, as many as fit in `room` tokens.
fn findings(overview: &SessionOverview, options: &TextOptions, room: usize) -> String {
    let findings = &overview.findings;
    if findings.is_empty() {
        return "\nno findings: no session detector fired\n".into();
    }
    let mut out = format!("\n{} finding(s), ranked by impact\n", findings.len());
    if budget::count(&out) + 20 >= room {
        // Not one fits: a single line, so that the timeline keeps its room.
        return format!(
            "\n{} finding(s), not shown to fit the budget: ask again with a larger budget\n",
            findings.len()
        );
    }
    let (blocks, shown) = take_within(
        findings
            .iter()
            .enumerate()
            .map(|(i, finding)| session_finding_text(finding, i + 1, options)),
        room.saturating_sub(budget::count(&out) + 20),
    );
    out.push_str(&blocks);
    if shown < findings.len() {
        out.push_str(&format!(
            "… {} more finding(s) not shown: ask again with a larger budget\n",
            findings.len() - shown
        ));
    }
    out
}

/// An unknown session id, or a trace that is not a session, as a message that says what ids
/// look like and where to find them.
pub fn session_error(store: &dyn Store, id: &str, error: QueryError) -> ToolError {
    match error {
        QueryError::Store(StoreError::TraceNotFound(_)) => {
            if store.resolve_trace_id(id).is_ok() {
                ToolError::new(format!(
                    "{} is a trace, but not a development session: get_trace shows it; list_sessions lists the sessions",
                    quote(id)
                ))
            } else {
                ToolError::new(format!(
                    "no session matches {}: {SESSION_ID_HINT}",
                    quote(id)
                ))
            }
        }
        other => ToolError::from_query(store, other, None),
    }
}
