//! `list_sessions`: recorded development sessions (Claude Code, Codex, developer telemetry),
//! newest first, with their numbers and how many findings each has.

use super::{ToolDef, ToolError, ToolResult, since, tool};
use crate::budget;
use crate::render::{SESSION_LEGEND, recorded_session_rows, session_rows, take_within};
use devtrace_query::sessions::{
    MAX_LIST_LIMIT, SessionFilter, SessionItem, list_sessions, repository_argument, usage_line,
    usage_per_day,
};

const DAY: u64 = 86_400_000_000_000;
use devtrace_store::{SessionFacts, Store};
use serde::Deserialize;

/// Parameters of `list_sessions`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// "claude-code", "codex", …
    agent: Option<String>,
    /// Directory (sessions in it or below) or repository URL
    repo: Option<String>,
    /// "7d" or RFC 3339
    since: Option<String>,
    /// Default 20
    limit: Option<usize>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    tool(
        "list_sessions",
        "Development sessions of agents and people, newest first: id, start, duration, agent, project, title, turns, tool calls, errors, findings, tokens, cost; for a person: commands, edits, patch, tests.",
        run,
    )
}

fn facts(item: &SessionItem) -> SessionFacts {
    SessionFacts {
        session_id: item.session_id.clone(),
        agent: item.agent.clone(),
        project: item.project.clone(),
        title: item.title.clone(),
        start_unix_nano: item.start_unix_nano,
        end_unix_nano: item.start_unix_nano + item.duration_ns,
        turns: item.turns,
        tool_calls: item.tool_calls,
        subagents: item.subagents,
        input_tokens: item.input_tokens,
        output_tokens: item.output_tokens,
        cache_read_tokens: item.cache_read_tokens,
        errors: item.errors,
    }
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    if params.limit.is_some_and(|l| l > MAX_LIST_LIMIT) {
        return Err(ToolError::new(format!(
            "limit is at most {MAX_LIST_LIMIT}; narrow with agent, repo or since instead"
        )));
    }
    let filtered = params.agent.is_some() || params.repo.is_some() || params.since.is_some();
    let items = list_sessions(
        store,
        &SessionFilter {
            agent: params.agent.as_deref().map(|a| a.trim().to_owned()),
            project: params.repo.as_deref().map(repository_argument),
            since_unix_nano: since(params.since.as_deref())?,
            active_between: None,
            limit: params.limit,
        },
    )
    .map_err(|e| ToolError::from_query(store, e, None))?;
    if items.is_empty() {
        return Ok(if filtered {
            "no sessions match these filters; list_sessions() without filters lists every project and agent recorded\n".into()
        } else {
            "no sessions recorded: import transcripts with `devtrace import claude-code` or `devtrace import codex`, or record them live with `devtrace hook claude-code` (docs/sessions.md)\n".into()
        });
    }
    let mut out = format!(
        "{SESSION_LEGEND}\n{} session(s), newest first: id, start (UTC), duration, agent, project, title; then numbers\n",
        items.len()
    );
    let footer_room = 80;
    let room = budget.saturating_sub(budget::count(&out) + footer_room);
    let (rows, shown) = take_within(
        items.iter().map(|item| {
            let mut rows = match &item.recorded {
                Some(recorded) => recorded_session_rows(
                    &facts(item),
                    &item.trace_id,
                    recorded,
                    Some(item.findings),
                ),
                None => session_rows(&facts(item), &item.trace_id, Some(item.findings)),
            };
            if let Some(usage) = &item.usage {
                rows.push_str(&format!("    agent-reported: {}\n", usage_line(usage)));
            }
            rows
        }),
        room,
    );
    out.push_str(&rows);
    // The agents' own numbers per day, for the days these sessions cover (most recent last).
    if items.iter().any(|i| i.usage.is_some()) {
        let first = items.iter().map(|i| i.start_unix_nano).min().unwrap_or(0);
        let days = usage_per_day(store, params.agent.as_deref(), Some(first - first % DAY))
            .map_err(|e| ToolError::from_query(store, e, None))?;
        let mut line = String::from("agent-reported per UTC day:");
        for day in days.iter().rev().take(7).rev() {
            line.push_str(&format!(" {} {};", day.day, usage_line(&day.usage)));
        }
        line.push('\n');
        if budget::count(&out) + budget::count(&line) + footer_room <= budget {
            out.push_str(&line);
        }
    }
    if shown < items.len() {
        out.push_str(&format!(
            "[{shown} of {} sessions shown to fit {budget} tokens: raise budget, or narrow with agent, repo or since]\n",
            items.len(),
        ));
    }
    out.push_str("next: session_overview(session_id) for a session's timeline and findings; check_insights(repo) for what recurs in a repository\n");
    Ok(out)
}
