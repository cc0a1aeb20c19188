//! The token side of sessions for every face: per-session totals and cost, the per-request
//! table (context size, cache share, cost, breaks), two sessions side by side
//! ([`compare_sessions`]), and the cross-session roll-up of prompt-cache breaks.
//!
//! The analysis itself is `devtrace_analyze::session_tokens` and the `cache_break` and
//! `batchable` detectors; this module loads, shapes and renders.

use crate::scope::QueryError;
use crate::sessions::{resolve_session, session_item};
use crate::text::{TextOptions, escape};
use crate::timefmt::{format_duration, parse_duration};
use devtrace_analyze::detectors::session::cache_break::{self, Cause};
use devtrace_analyze::detectors::session::{Settings, TokenAnalysis};
use devtrace_analyze::finding::thousands;
use devtrace_analyze::pricing::{PriceTable, format_dollars};
use devtrace_analyze::session::SessionView;
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::TraceId;
use devtrace_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The environment variable that sets the prompt cache's lifetime for break causes when the
/// record does not show it: `5m` (the default), `1h`, `300s`.
pub const CACHE_LIFETIME_ENV: &str = "DEVTRACE_CACHE_LIFETIME";

/// The environment variable that sets how many bytes of long tool outputs the session
/// detectors read per session (a whole number of bytes; `0` reads none, leaving long outputs
/// unchecked): 8 MiB by default.
pub const OUTPUT_BUDGET_ENV: &str = "DEVTRACE_SESSION_OUTPUT_BUDGET";

/// Parses a cache lifetime: a duration as every flag takes it (`5m`, `1h`, `90s`;
/// [`parse_duration`]), or a bare number of seconds (`300`).
pub fn parse_lifetime(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let nanos = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        parse_duration(&format!("{text}s"))
    } else {
        parse_duration(text)
    }
    .map_err(|e| format!("{CACHE_LIFETIME_ENV}: {e} (5m, 1h or 300s)"))?;
    if nanos == 0 {
        return Err(format!(
            "{CACHE_LIFETIME_ENV}={text:?}: must be more than 0"
        ));
    }
    Ok(nanos)
}

/// The price table session costs use in this process; `None` until [`use_prices`] is called
/// (then the built-in one).
static PRICES: std::sync::RwLock<Option<PriceTable>> = std::sync::RwLock::new(None);

/// Sets the price table every session cost of this process uses: the binary calls it once at
/// start with the built-in table and the config file's `[prices]`, so the CLI, REST, MCP and
/// `watch` price sessions alike, as the cache lifetime ([`CACHE_LIFETIME_ENV`]) is process-wide.
pub fn use_prices(table: PriceTable) {
    *PRICES.write().unwrap_or_else(|e| e.into_inner()) = Some(table);
}

/// The price table set by [`use_prices`], else the built-in one.
pub fn prices() -> PriceTable {
    PRICES
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(PriceTable::built_in)
}

/// The session analysis settings every face uses: the prices of [`prices`], the cache
/// lifetime from [`CACHE_LIFETIME_ENV`] (5 minutes when unset), the budget of long outputs
/// read from [`OUTPUT_BUDGET_ENV`] (8 MiB when unset); an invalid value is an error naming it.
pub fn settings() -> Result<Settings, QueryError> {
    let mut settings = Settings {
        prices: prices(),
        ..Default::default()
    };
    if let Ok(text) = std::env::var(CACHE_LIFETIME_ENV)
        && !text.trim().is_empty()
    {
        settings.cache.cache_lifetime_nanos = parse_lifetime(&text).map_err(QueryError::Invalid)?;
    }
    if let Ok(text) = std::env::var(OUTPUT_BUDGET_ENV)
        && !text.trim().is_empty()
    {
        settings.batchable.output_budget_bytes = text.trim().parse().map_err(|_| {
            QueryError::Invalid(format!(
                "{OUTPUT_BUDGET_ENV}={text:?}: must be a whole number of bytes (8388608, or 0 to read no long output)"
            ))
        })?;
    }
    Ok(settings)
}

/// A session's tokens by kind and what they cost.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenTotals {
    pub requests: u64,
    /// Input neither read from nor written to the cache.
    pub uncached_input: u64,
    pub cache_write: u64,
    /// Of the cache writes, those for the 1-hour lifetime.
    pub cache_write_1h: u64,
    pub cache_read: u64,
    pub output: u64,
    /// US dollars, every kind priced apart; `None` when no request has a price.
    pub cost_usd: Option<f64>,
    /// Requests whose model has no price (left out of `cost_usd`).
    pub unpriced_requests: u64,
    /// The price table used.
    pub prices: String,
}

impl TokenTotals {
    pub fn of(analysis: &TokenAnalysis) -> Self {
        let a = &analysis.accounting;
        let t = a.totals;
        Self {
            requests: a.requests.len() as u64,
            uncached_input: t.input,
            cache_write: t.cache_write,
            cache_write_1h: t.cache_write_1h,
            cache_read: t.cache_read,
            output: t.output,
            cost_usd: (a.priced > 0).then_some(a.cost_usd),
            unpriced_requests: a.unpriced as u64,
            prices: a.prices.clone(),
        }
    }

    /// Every input token.
    pub fn context(&self) -> u64 {
        self.uncached_input + self.cache_write + self.cache_read
    }
}

/// One model request in the per-request table.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestRow {
    /// 1-based, in time order.
    pub index: usize,
    pub span_id: String,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    /// A sub-agent's request (its own conversation), not the main chain's.
    pub sidechain: bool,
    pub model: Option<String>,
    pub uncached_input: u64,
    pub cache_write: u64,
    pub cache_read: u64,
    pub output: u64,
    /// Every input token: the context sent.
    pub context: u64,
    /// The share of the context read from the cache, 0–1.
    pub cache_share: f64,
    pub cost_usd: Option<f64>,
    pub tool_calls: usize,
    /// When this request broke the prompt cache: why (`idle_gap`, `model_switch`,
    /// `prefix_changed`), the tokens re-written and the money lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_break: Option<BreakCell>,
    /// The request came right after a compaction (its cache written again, as expected).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub after_compaction: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreakCell {
    pub cause: String,
    /// The cause in words (recorded model names quoted).
    pub description: String,
    pub tokens_rewritten: u64,
    pub usd_lost: Option<f64>,
}

/// The per-request table of a session.
pub fn request_rows(view: &SessionView, analysis: &TokenAnalysis) -> Vec<RequestRow> {
    let main = view
        .root
        .map(|r| view.trace.span(r).span_id)
        .unwrap_or_default();
    let a = &analysis.accounting;
    a.requests
        .iter()
        .enumerate()
        .map(|(i, r)| RequestRow {
            index: i + 1,
            span_id: r.span_id.to_hex(),
            start_unix_nano: r.start,
            duration_ns: r.end.saturating_sub(r.start),
            sidechain: r.conversation != main,
            model: r.model.clone(),
            uncached_input: r.tokens.input,
            cache_write: r.tokens.cache_write,
            cache_read: r.tokens.cache_read,
            output: r.tokens.output,
            context: r.context_tokens(),
            cache_share: r.cache_share(),
            cost_usd: r.cost_usd,
            tool_calls: r.tools.len(),
            cache_break: analysis
                .cache
                .breaks
                .iter()
                .find(|b| b.request == i)
                .map(|b| BreakCell {
                    cause: b.cause.as_str().to_owned(),
                    description: b.cause.describe(),
                    tokens_rewritten: b.tokens_rewritten,
                    usd_lost: b.usd_lost,
                }),
            after_compaction: analysis.cache.after_compaction.contains(&i),
        })
        .collect()
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// At most `width` cells: each the largest value of its bucket, scaled to `max`.
fn sparkline(values: &[f64], width: usize, max: f64, take_min: bool) -> String {
    if values.is_empty() {
        return String::new();
    }
    let buckets = values.len().min(width.max(1));
    (0..buckets)
        .map(|b| {
            let from = b * values.len() / buckets;
            let to = ((b + 1) * values.len() / buckets).max(from + 1);
            let slice = &values[from..to];
            let v = if take_min {
                slice.iter().copied().fold(f64::INFINITY, f64::min)
            } else {
                slice.iter().copied().fold(0.0, f64::max)
            };
            let level = if max <= 0.0 {
                0
            } else {
                ((v / max) * 7.0).round().clamp(0.0, 7.0) as usize
            };
            BARS[level]
        })
        .collect()
}

/// Tokens as "3.8M", "52k", "950".
pub fn short_tokens(n: u64) -> String {
    if n >= 1_000_000 {
        format!("{:.1}M", n as f64 / 1e6)
    } else if n >= 10_000 {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// The session's tokens in lines: the kinds, the cost and the price table, the sparklines of
/// context size and cache share per request (main chain), the breaks.
pub fn render_tokens(totals: &TokenTotals, rows: &[RequestRow]) -> String {
    if totals.requests == 0 {
        return "no model requests recorded\n".into();
    }
    let cost = match totals.cost_usd {
        Some(usd) => format!(
            "cost {}{} at the {}",
            format_dollars(usd),
            if totals.unpriced_requests > 0 {
                format!(
                    " ({} requests of unknown models not priced)",
                    totals.unpriced_requests
                )
            } else {
                String::new()
            },
            totals.prices
        ),
        None => "cost unknown (no model with a price)".into(),
    };
    let mut out = format!(
        "{} requests: {} uncached in, {} cache write, {} cache read, {} out; {cost}\n",
        totals.requests,
        thousands(totals.uncached_input),
        thousands(totals.cache_write),
        thousands(totals.cache_read),
        thousands(totals.output),
    );
    let main: Vec<&RequestRow> = rows.iter().filter(|r| !r.sidechain).collect();
    if main.len() > 1 {
        let context: Vec<f64> = main.iter().map(|r| r.context as f64).collect();
        let max = context.iter().copied().fold(0.0, f64::max);
        let share: Vec<f64> = main.iter().map(|r| r.cache_share).collect();
        out.push_str(&format!(
            "context per request  {}  (max {})\ncache share          {}  (min {:.0}%)\n",
            sparkline(&context, 60, max, false),
            short_tokens(max as u64),
            sparkline(&share, 60, 1.0, true),
            share.iter().copied().fold(f64::INFINITY, f64::min) * 100.0,
        ));
    }
    out
}

/// The per-request table (`session show --requests`).
pub fn render_request_table(rows: &[RequestRow], options: &TextOptions) -> String {
    let mut out = format!(
        "{:>4}  {:<4}  {:<26}  {:>9}  {:>9}  {:>9}  {:>7}  {:>6}  {:>9}  {:>5}  {}\n",
        "#",
        "CONV",
        "MODEL",
        "UNCACHED",
        "CACHE W",
        "CACHE R",
        "OUT",
        "CACHE",
        "COST",
        "TOOLS",
        "NOTE"
    );
    for r in rows {
        let note = match (&r.cache_break, r.after_compaction) {
            (Some(b), _) => format!(
                "cache break {}: {} tokens re-written{}",
                b.description,
                thousands(b.tokens_rewritten),
                b.usd_lost
                    .map(|u| format!(", {} lost", format_dollars(u)))
                    .unwrap_or_default()
            ),
            (None, true) => "after a compaction (cache written again, expected)".into(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:>4}  {:<4}  {:<26}  {:>9}  {:>9}  {:>9}  {:>7}  {:>5.0}%  {:>9}  {:>5}  {}\n",
            r.index,
            if r.sidechain { "sub" } else { "main" },
            crate::text::cell(&options.data(r.model.as_deref().unwrap_or("-")), 26),
            thousands(r.uncached_input),
            thousands(r.cache_write),
            thousands(r.cache_read),
            thousands(r.output),
            r.cache_share * 100.0,
            r.cost_usd.map_or("-".into(), format_dollars),
            r.tool_calls,
            escape(&note),
        ));
    }
    out
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompareSide {
    pub trace_id: String,
    pub session_id: String,
    pub agent: String,
    pub title: String,
    pub start_unix_nano: u64,
    pub turns: u64,
    pub requests: u64,
    /// Per tool: calls that succeeded and failed.
    pub tool_calls: BTreeMap<String, ToolOutcomes>,
    pub tokens: TokenTotals,
    pub wall_ns: u64,
    /// The union of the time requests and tool calls were running (the rest is waiting for
    /// a person).
    pub active_ns: u64,
    pub findings: Vec<FindingBrief>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolOutcomes {
    pub ok: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingBrief {
    pub kind: String,
    pub title: String,
    pub score: f64,
}

/// Where two sessions first did something different.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Divergence {
    /// The main chain's request (1-based) whose tool calls differ.
    pub request: usize,
    /// Its tool calls on each side (`Tool target`); empty when that side made none or had no
    /// such request.
    pub a_calls: Vec<String>,
    pub b_calls: Vec<String>,
    /// Offsets of that request from each session's start.
    pub a_offset_ns: Option<u64>,
    pub b_offset_ns: Option<u64>,
}

/// Two sessions side by side.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionComparison {
    pub a: CompareSide,
    pub b: CompareSide,
    /// B's cost over A's, when both are priced and A's is not 0.
    pub cost_ratio: Option<f64>,
    /// `None` when every request of the main chains made the same calls.
    pub first_divergence: Option<Divergence>,
}

struct Loaded {
    trace: AnalyzedTrace,
    summary: devtrace_store::SessionSummary,
}

fn load(store: &dyn Store, id: &str) -> Result<Loaded, QueryError> {
    let trace_id: TraceId = resolve_session(store, id)?;
    let summary = store.session(trace_id)?.ok_or_else(|| {
        QueryError::Store(StoreError::TraceNotFound(format!(
            "{id} (a trace, but not a session)"
        )))
    })?;
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| QueryError::Store(StoreError::TraceNotFound(id.to_owned())))?;
    Ok(Loaded {
        trace: AnalyzedTrace::new(trace_id, stored.spans),
        summary,
    })
}

/// A tool call as the comparison names it: the tool and what it worked on.
fn call_label(action: &devtrace_analyze::session::Action) -> String {
    let target = action
        .path
        .as_deref()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        .or_else(|| action.command.clone())
        .unwrap_or_default();
    if target.is_empty() {
        action.tool.clone()
    } else {
        format!("{} {}", action.tool, target)
    }
}

fn side(
    loaded: &Loaded,
    view: &SessionView,
    analysis: &TokenAnalysis,
    findings: &[Finding],
) -> CompareSide {
    let facts = &loaded.summary.facts;
    let mut tool_calls: BTreeMap<String, ToolOutcomes> = BTreeMap::new();
    let mut intervals: Vec<(u64, u64)> = Vec::new();
    for action in view.actions.iter().filter(|a| !a.ide_event) {
        let entry = tool_calls.entry(action.tool.clone()).or_default();
        if action.failed {
            entry.failed += 1;
        } else {
            entry.ok += 1;
        }
        intervals.push((action.start, action.end));
    }
    intervals.extend(
        analysis
            .accounting
            .requests
            .iter()
            .map(|r| (r.start, r.end)),
    );
    intervals.sort_unstable();
    let mut active = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (start, end) in intervals {
        match current {
            Some((s, e)) if start <= e => current = Some((s, e.max(end))),
            Some((s, e)) => {
                active += e - s;
                current = Some((start, end));
            }
            None => current = Some((start, end)),
        }
    }
    if let Some((s, e)) = current {
        active += e - s;
    }
    let item = session_item(&loaded.summary, findings.len());
    CompareSide {
        trace_id: item.trace_id,
        session_id: facts.session_id.clone(),
        agent: facts.agent.clone(),
        title: facts.title.clone(),
        start_unix_nano: facts.start_unix_nano,
        turns: facts.turns,
        requests: analysis.accounting.requests.len() as u64,
        tool_calls,
        tokens: TokenTotals::of(analysis),
        wall_ns: facts.end_unix_nano.saturating_sub(facts.start_unix_nano),
        active_ns: active,
        findings: findings
            .iter()
            .map(|f| FindingBrief {
                kind: f.kind.as_str().to_owned(),
                title: f.title.clone(),
                score: f.impact.score,
            })
            .collect(),
    }
}

/// The main chain's requests' calls, in order.
fn main_calls(view: &SessionView, analysis: &TokenAnalysis) -> Vec<(u64, Vec<String>)> {
    let main = view
        .root
        .map(|r| view.trace.span(r).span_id)
        .unwrap_or_default();
    analysis
        .accounting
        .requests
        .iter()
        .filter(|r| r.conversation == main)
        .map(|r| {
            (
                r.start,
                r.tools
                    .iter()
                    .map(|t| call_label(&view.actions[*t]))
                    .collect(),
            )
        })
        .collect()
}

/// Two sessions side by side: turns, requests, tool calls by tool and outcome, tokens by
/// kind, cost, wall and active time, the findings of each, and the first main-chain request
/// whose tool calls differ.
pub fn compare_sessions(
    store: &dyn Store,
    a: &str,
    b: &str,
) -> Result<SessionComparison, QueryError> {
    let settings = settings()?;
    let (left, right) = (load(store, a)?, load(store, b)?);
    let (view_a, view_b) = (
        SessionView::new(&left.trace),
        SessionView::new(&right.trace),
    );
    let (findings_a, analysis_a) = crate::sessions::analyse(store, &view_a, &settings);
    let (findings_b, analysis_b) = crate::sessions::analyse(store, &view_b, &settings);
    let side_a = side(&left, &view_a, &analysis_a, &findings_a);
    let side_b = side(&right, &view_b, &analysis_b, &findings_b);
    let (calls_a, calls_b) = (
        main_calls(&view_a, &analysis_a),
        main_calls(&view_b, &analysis_b),
    );
    let mut first_divergence = None;
    for i in 0..calls_a.len().max(calls_b.len()) {
        let (x, y) = (calls_a.get(i), calls_b.get(i));
        let same = matches!((x, y), (Some(x), Some(y)) if x.1 == y.1);
        if !same {
            first_divergence = Some(Divergence {
                request: i + 1,
                a_calls: x.map(|c| c.1.clone()).unwrap_or_default(),
                b_calls: y.map(|c| c.1.clone()).unwrap_or_default(),
                a_offset_ns: x.map(|c| c.0.saturating_sub(side_a.start_unix_nano)),
                b_offset_ns: y.map(|c| c.0.saturating_sub(side_b.start_unix_nano)),
            });
            break;
        }
    }
    let cost_ratio = match (side_a.tokens.cost_usd, side_b.tokens.cost_usd) {
        (Some(x), Some(y)) if x > 0.0 => Some(y / x),
        _ => None,
    };
    Ok(SessionComparison {
        a: side_a,
        b: side_b,
        cost_ratio,
        first_divergence,
    })
}

/// The comparison as text: two columns of numbers, then the divergence and the findings.
pub fn render_comparison(c: &SessionComparison, options: &TextOptions) -> String {
    let (a, b) = (&c.a, &c.b);
    let mut out = format!(
        "A  {} {}  {}\nB  {} {}  {}\n\n{:<22}  {:>14}  {:>14}\n",
        &a.trace_id[..8],
        options.data(&a.agent),
        options.data(&a.title),
        &b.trace_id[..8],
        options.data(&b.agent),
        options.data(&b.title),
        "",
        "A",
        "B"
    );
    let mut row = |name: &str, x: String, y: String| {
        out.push_str(&format!("{name:<22}  {x:>14}  {y:>14}\n"));
    };
    row("turns", a.turns.to_string(), b.turns.to_string());
    row("requests", a.requests.to_string(), b.requests.to_string());
    let calls = |s: &CompareSide| s.tool_calls.values().map(|o| o.ok + o.failed).sum::<u64>();
    let failed = |s: &CompareSide| s.tool_calls.values().map(|o| o.failed).sum::<u64>();
    row(
        "tool calls (failed)",
        format!("{} ({})", calls(a), failed(a)),
        format!("{} ({})", calls(b), failed(b)),
    );
    let tools: std::collections::BTreeSet<&String> =
        a.tool_calls.keys().chain(b.tool_calls.keys()).collect();
    for tool in tools {
        let cell = |s: &CompareSide| {
            s.tool_calls.get(tool).map_or("-".to_owned(), |o| {
                if o.failed > 0 {
                    format!("{} ({} failed)", o.ok + o.failed, o.failed)
                } else {
                    (o.ok).to_string()
                }
            })
        };
        row(
            &format!("  {}", crate::text::cell(tool, 20)),
            cell(a),
            cell(b),
        );
    }
    let t = |f: fn(&TokenTotals) -> u64| (thousands(f(&a.tokens)), thousands(f(&b.tokens)));
    for (name, f) in [
        (
            "uncached input",
            (|t: &TokenTotals| t.uncached_input) as fn(&TokenTotals) -> u64,
        ),
        ("cache write", |t| t.cache_write),
        ("cache read", |t| t.cache_read),
        ("output", |t| t.output),
    ] {
        let (x, y) = t(f);
        row(&format!("tokens: {name}"), x, y);
    }
    let cost = |s: &CompareSide| s.tokens.cost_usd.map_or("-".to_owned(), format_dollars);
    row("cost", cost(a), cost(b));
    row(
        "wall time",
        format_duration(a.wall_ns),
        format_duration(b.wall_ns),
    );
    row(
        "active time",
        format_duration(a.active_ns),
        format_duration(b.active_ns),
    );
    row(
        "findings",
        a.findings.len().to_string(),
        b.findings.len().to_string(),
    );
    if let Some(ratio) = c.cost_ratio {
        out.push_str(&format!("\nB cost {ratio:.2}× A\n"));
    }
    match &c.first_divergence {
        None => out.push_str("\nthe main chains made the same tool calls, request by request\n"),
        Some(d) => {
            let calls = |calls: &[String]| {
                if calls.is_empty() {
                    "(no tool call)".to_owned()
                } else {
                    calls
                        .iter()
                        .map(|c| options.data(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            out.push_str(&format!(
                "\nfirst divergence at request {}:\n  A{}: {}\n  B{}: {}\n",
                d.request,
                d.a_offset_ns
                    .map(|o| format!(" (+{})", crate::sessions::format_offset(o)))
                    .unwrap_or_default(),
                calls(&d.a_calls),
                d.b_offset_ns
                    .map(|o| format!(" (+{})", crate::sessions::format_offset(o)))
                    .unwrap_or_default(),
                calls(&d.b_calls),
            ));
        }
    }
    for (name, s) in [("A", a), ("B", b)] {
        if s.findings.is_empty() {
            continue;
        }
        out.push_str(&format!("\nfindings in {name}:\n"));
        for f in &s.findings {
            out.push_str(&format!("  [{}] {}\n", f.kind, escape(&f.title)));
        }
    }
    out
}

/// Prompt-cache breaks of one cause across sessions.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CacheBreakRollup {
    /// `idle_gap`, `model_switch` or `prefix_changed`.
    pub cause: String,
    /// The roll-up in a sentence.
    pub summary: String,
    pub breaks: u64,
    pub sessions: u64,
    pub tokens_rewritten: u64,
    pub usd_lost: f64,
    /// For idle gaps: the longest pauses (seconds), longest first, at most 3.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub longest_idle_seconds: Vec<f64>,
}

/// Cache breaks by cause over `analyses` (one per session), most money first.
pub fn rollup(analyses: &[&TokenAnalysis]) -> Vec<CacheBreakRollup> {
    let mut by: BTreeMap<&'static str, (u64, u64, u64, f64, Vec<u64>)> = BTreeMap::new();
    for analysis in analyses {
        let mut seen: Vec<&'static str> = Vec::new();
        for b in &analysis.cache.breaks {
            let cause = b.cause.as_str();
            let e = by.entry(cause).or_default();
            e.0 += 1;
            if !seen.contains(&cause) {
                seen.push(cause);
                e.1 += 1;
            }
            e.2 += b.tokens_rewritten;
            e.3 += b.usd_lost.unwrap_or(0.0);
            if let Cause::IdleGap { gap_nanos, .. } = b.cause {
                e.4.push(gap_nanos);
            }
        }
    }
    let mut out: Vec<CacheBreakRollup> = by
        .into_iter()
        .map(|(cause, (breaks, sessions, tokens, usd, mut gaps))| {
            gaps.sort_unstable_by(|x, y| y.cmp(x));
            gaps.truncate(3);
            let what = match cause {
                "idle_gap" => "breaks after idle gaps",
                "model_switch" => "breaks at model switches",
                _ => "breaks with no recorded cause",
            };
            let mut summary = format!(
                "{what} cost {} ({} tokens re-written) over {} {}",
                format_dollars(usd),
                thousands(tokens),
                sessions,
                if sessions == 1 { "session" } else { "sessions" }
            );
            if !gaps.is_empty() {
                let list: Vec<String> = gaps
                    .iter()
                    .map(|g| devtrace_analyze::finding::human_duration(*g))
                    .collect();
                summary.push_str(&format!(
                    "; the longest idle pauses were {}",
                    list.join(", ")
                ));
            }
            CacheBreakRollup {
                cause: cause.to_owned(),
                summary,
                breaks,
                sessions,
                tokens_rewritten: tokens,
                usd_lost: usd,
                longest_idle_seconds: gaps.iter().map(|g| *g as f64 / 1e9).collect(),
            }
        })
        .collect();
    out.sort_by(|x, y| y.usd_lost.total_cmp(&x.usd_lost));
    out
}

/// The cache-break lifetime used when nothing is recorded, for the docs and the tests.
pub const DEFAULT_CACHE_LIFETIME_NANOS: u64 = cache_break::FIVE_MINUTES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse_and_bad_ones_say_how() {
        assert_eq!(parse_lifetime("5m").unwrap(), 300_000_000_000);
        assert_eq!(parse_lifetime("1h").unwrap(), 3_600_000_000_000);
        assert_eq!(parse_lifetime("90").unwrap(), 90_000_000_000);
        assert!(
            parse_lifetime("soon")
                .unwrap_err()
                .contains("5m, 1h or 300s")
        );
        assert!(parse_lifetime("3w").unwrap_err().contains("unknown unit"));
        assert!(parse_lifetime("0m").unwrap_err().contains("more than 0"));
    }

    #[test]
    fn sparklines_keep_peaks_and_dips() {
        assert_eq!(sparkline(&[0.0, 50.0, 100.0], 60, 100.0, false), "▁▅█");
        let many: Vec<f64> = (0..120).map(|i| if i == 7 { 0.0 } else { 1.0 }).collect();
        let line = sparkline(&many, 60, 1.0, true);
        assert_eq!(line.chars().count(), 60);
        assert_eq!(line.chars().nth(3), Some('▁'));
    }
}
