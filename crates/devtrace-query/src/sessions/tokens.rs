//! The token side of sessions for every face: per-session totals and cost, the per-request
//! table (context size, cache share, cost, breaks), and the cross-session roll-up of
//! prompt-cache breaks. Two sessions side by side are `compare`, above this
//! module.
//!
//! The analysis itself is `devtrace_analyze::session_tokens` and the `cache_break` and
//! `batchable` detectors; this module loads, shapes and renders.

use crate::scope::QueryError;
use crate::text::{TextOptions, escape};
use crate::timefmt::parse_duration;
use devtrace_analyze::detectors::session::cache_break::{self, Cause};
use devtrace_analyze::detectors::session::{Settings, TokenAnalysis};
use devtrace_analyze::finding::thousands;
use devtrace_analyze::pricing::{PriceTable, format_dollars};
use devtrace_analyze::session::SessionView;
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
            super::words::tokens(max as u64),
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
