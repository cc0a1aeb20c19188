//! Listings of sessions: which sessions a filter names, each with its numbers, token totals,
//! findings counted and (for a person's recorded session) what it did; agents' reported usage
//! per day; and both as tables.

use super::analysis::{analyse, load};
use super::recorded::{RecordedSummary, recorded_facts, recorded_summary_line};
use super::tokens::{TokenTotals, settings};
use super::words::{format_cost, format_lines, shorten_path, tokens};
use crate::scope::QueryError;
use crate::text::{TextOptions, cell, escape};
use crate::timefmt::{format_duration, format_timestamp, zone_name};
use devtrace_analyze::session::SessionView;
use devtrace_model::TraceId;
use devtrace_model::metrics::Usage;
use devtrace_model::time::format_rfc3339;
use devtrace_store::metrics::UsageQuery;
use devtrace_store::{SessionQuery, SessionSummary, Store, StoreError};
use serde::{Deserialize, Serialize};

/// Sessions listed when no limit is given, and the most any listing returns.
pub const DEFAULT_LIST_LIMIT: usize = 20;
pub const MAX_LIST_LIMIT: usize = 200;

/// Which sessions to list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub agent: Option<String>,
    /// A directory (sessions in it or below) or a repository URL.
    pub project: Option<String>,
    pub since_unix_nano: Option<u64>,
    /// Only sessions whose time overlaps `[from, to]` (see `SessionQuery::active_between`).
    pub active_between: Option<(u64, u64)>,
    pub limit: Option<usize>,
}

/// One session in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionItem {
    pub trace_id: String,
    pub session_id: String,
    pub agent: String,
    pub project: String,
    pub title: String,
    pub start: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub turns: u64,
    pub tool_calls: u64,
    pub subagents: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub errors: u64,
    pub findings: usize,
    /// What the agent reported through its metrics (cost, tokens, lines changed), when it
    /// sent any for this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Tokens by kind (uncached, cache write, cache read, output) counted per request, and
    /// their cost at the price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<TokenTotals>,
    /// A person's recorded session (`devtrace record`, a `trace-1.0.0` document): who recorded
    /// it and what they did, which its agent numbers (no turns, no tokens) do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedSummary>,
}

/// A listing's item for a stored session summary.
pub fn session_item(summary: &SessionSummary, findings: usize) -> SessionItem {
    item(summary, findings)
}

pub(super) fn item(summary: &SessionSummary, findings: usize) -> SessionItem {
    let facts = &summary.facts;
    SessionItem {
        trace_id: summary.trace_id.to_hex(),
        session_id: facts.session_id.clone(),
        agent: facts.agent.clone(),
        project: facts.project.clone(),
        title: facts.title.clone(),
        start: format_rfc3339(facts.start_unix_nano),
        start_unix_nano: facts.start_unix_nano,
        duration_ns: facts.end_unix_nano.saturating_sub(facts.start_unix_nano),
        turns: facts.turns,
        tool_calls: facts.tool_calls,
        subagents: facts.subagents,
        input_tokens: facts.input_tokens,
        output_tokens: facts.output_tokens,
        cache_read_tokens: facts.cache_read_tokens,
        errors: facts.errors,
        findings,
        usage: None,
        tokens: None,
        recorded: None,
    }
}

/// The metrics-reported usage of each of `items`, filled in.
pub(super) fn add_usage(store: &dyn Store, items: &mut [SessionItem]) -> Result<(), StoreError> {
    let ids: Vec<TraceId> = items
        .iter()
        .filter_map(|i| i.trace_id.parse().ok())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let totals = store.usage(
        &UsageQuery {
            sessions: Some(ids),
            ..Default::default()
        },
        false,
    )?;
    for total in totals {
        let Some(session) = total.session else {
            continue;
        };
        let hex = session.to_hex();
        if let Some(item) = items.iter_mut().find(|i| i.trace_id == hex) {
            item.usage = Some(total.usage);
        }
    }
    Ok(())
}

/// A repository argument (`--repo`, the MCP tools' `repo`): an existing directory becomes its
/// absolute path (sessions record absolute working directories); anything else (a repository
/// URL, or a path on another machine) is used as given.
pub fn repository_argument(arg: &str) -> String {
    let arg = arg.trim();
    match std::fs::canonicalize(arg) {
        Ok(path) if path.is_dir() => path.display().to_string(),
        _ => arg.to_owned(),
    }
}

/// Sessions newest first, with the number of findings each has.
pub fn list_sessions(
    store: &dyn Store,
    filter: &SessionFilter,
) -> Result<Vec<SessionItem>, QueryError> {
    let summaries = store.list_sessions(&SessionQuery {
        agent: filter.agent.clone(),
        project: filter.project.clone(),
        since_unix_nano: filter.since_unix_nano,
        active_between: filter.active_between,
        limit: filter
            .limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .clamp(1, MAX_LIST_LIMIT),
    })?;
    let settings = settings()?;
    let mut items = Vec::with_capacity(summaries.len());
    for summary in &summaries {
        let (findings, tokens, recorded) = match load(store, summary.trace_id)? {
            Some(trace) => {
                let view = SessionView::new(&trace);
                let (findings, analysis) = analyse(store, &view, &settings);
                let recorded = recorded_facts(store, &trace.spans.spans, &view)?;
                (
                    findings.len(),
                    Some(TokenTotals::of(&analysis)),
                    recorded.as_ref().map(RecordedSummary::of),
                )
            }
            None => (0, None, None),
        };
        let mut item = item(summary, findings);
        item.tokens = tokens;
        item.recorded = recorded;
        items.push(item);
    }
    add_usage(store, &mut items)?;
    Ok(items)
}

/// One UTC day of what agents reported through their metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageDay {
    /// `2026-11-23`.
    pub day: String,
    pub day_unix_nano: u64,
    /// Sessions with metrics that day.
    pub sessions: u64,
    pub usage: Usage,
}

/// Agent-reported usage per UTC day since `since` (for `agent`, when given), oldest first.
pub fn usage_per_day(
    store: &dyn Store,
    agent: Option<&str>,
    since_unix_nano: Option<u64>,
) -> Result<Vec<UsageDay>, QueryError> {
    let totals = store.usage(
        &UsageQuery {
            sessions: None,
            since_unix_nano,
            service: agent.map(str::to_owned),
        },
        true,
    )?;
    Ok(days(totals))
}

pub(super) fn days(totals: Vec<devtrace_store::metrics::UsageTotal>) -> Vec<UsageDay> {
    totals
        .into_iter()
        .filter_map(|t| {
            let day = t.day_unix_nano?;
            Some(UsageDay {
                day: format_rfc3339(day)[..10].to_owned(),
                day_unix_nano: day,
                sessions: t.sessions,
                usage: t.usage,
            })
        })
        .collect()
}

/// The listing as a table. EST. COST is the requests' cost at the built-in price table (cache
/// reads and writes priced apart); the COST and LINES columns (the agents' own metrics) appear
/// when a listed session has metrics.
pub fn render_list(items: &[SessionItem], width: usize) -> String {
    use crate::text::fit::{Align, Column, Fit, Table};
    if items.is_empty() {
        return "no sessions stored; import some with `devtrace import claude-code` or `devtrace import codex`, or point an agent's telemetry here (`devtrace agent-setup`)\n".into();
    }
    let metrics = items.iter().any(|i| i.usage.is_some());
    let mut columns = vec![
        Column::new(
            format!("START ({})", zone_name()),
            Align::Left,
            Fit::Optional(9),
        ),
        Column::new("AGENT", Align::Left, Fit::Optional(7)),
        Column::new("PROJECT", Align::Left, Fit::Optional(5)),
        Column::new("DURATION", Align::Right, Fit::Optional(8)),
        Column::new("TURNS", Align::Right, Fit::Optional(3)),
        Column::new("TOOLS", Align::Right, Fit::Optional(1)),
        Column::new("TOKENS", Align::Right, Fit::Optional(2)),
        Column::new("EST. COST", Align::Right, Fit::Optional(4)),
    ];
    if metrics {
        columns.push(Column::new("COST", Align::Right, Fit::Optional(4)));
        columns.push(Column::new("LINES", Align::Right, Fit::Optional(0)));
    }
    columns.extend([
        Column::new("ERRORS", Align::Right, Fit::Optional(6)),
        Column::new("FINDINGS", Align::Right, Fit::Optional(6)),
        Column::new("ID", Align::Left, Fit::Keep),
        Column::new("TITLE", Align::Left, Fit::Shrink { min: 16 }),
    ]);
    let mut table = Table::new(columns);
    for item in items {
        let (cost, lines) = item.usage.as_ref().map_or((None, None), |u| {
            (u.cost_usd.map(format_cost), format_lines(u))
        });
        // A person's recorded session has no turns, tool calls or tokens: dashes there, and
        // what it has on a line of its own below.
        let agent_number = |n: String| {
            if item.recorded.is_some() {
                "-".to_owned()
            } else {
                n
            }
        };
        let mut cells: Vec<crate::text::fit::Cell> = vec![
            format_timestamp(item.start_unix_nano).into(),
            cell(&item.agent, 11).into(),
            cell(&shorten_path(&item.project), 28).into(),
            format_duration(item.duration_ns).into(),
            agent_number(item.turns.to_string()).into(),
            agent_number(item.tool_calls.to_string()).into(),
            agent_number(tokens(item.input_tokens + item.output_tokens)).into(),
            item.tokens
                .as_ref()
                .and_then(|t| t.cost_usd)
                .filter(|_| item.recorded.is_none())
                .map_or("-".to_owned(), devtrace_analyze::pricing::format_dollars)
                .into(),
        ];
        if metrics {
            cells.push(cost.unwrap_or_else(|| "-".to_owned()).into());
            cells.push(lines.unwrap_or_else(|| "-".to_owned()).into());
        }
        cells.extend([
            item.errors.to_string().into(),
            item.findings.to_string().into(),
            item.trace_id[..8].to_owned().into(),
            escape(&item.title).into(),
        ]);
        table.row(cells);
    }
    let rendered = table.render(width, &|_, text| text.to_owned());
    // The header, then each session's row with, for a person's recorded session, what it has
    // on a line of its own.
    let mut lines = rendered.lines();
    let mut out = format!("{}\n", lines.next().unwrap_or_default());
    for (item, line) in items.iter().zip(lines) {
        out.push_str(line);
        out.push('\n');
        if let Some(recorded) = &item.recorded {
            out.push_str(&format!(
                "  ↳ {}\n",
                recorded_summary_line(recorded, &TextOptions::plain(width))
            ));
        }
    }
    out
}

/// Agent-reported usage per day as a table.
pub fn render_usage_days(days: &[UsageDay]) -> String {
    if days.is_empty() {
        return "no agent metrics stored: point an agent's telemetry here with `devtrace agent-setup claude-code|codex|gemini`\n".into();
    }
    let mut out = format!(
        "{:<10}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>11}\n",
        "DAY (UTC)", "SESSIONS", "COST", "TOKENS IN", "CACHED", "OUT", "LINES"
    );
    let cell = |n: Option<u64>| n.map_or("-".to_owned(), tokens);
    for day in days {
        let u = &day.usage;
        out.push_str(&format!(
            "{:<10}  {:>8}  {:>9}  {:>9}  {:>9}  {:>9}  {:>11}\n",
            day.day,
            day.sessions,
            u.cost_usd.map_or("-".to_owned(), format_cost),
            cell(u.input_tokens),
            cell(u.cache_read_tokens),
            cell(u.output_tokens),
            format_lines(u).unwrap_or_else(|| "-".to_owned()),
        ));
    }
    out
}
