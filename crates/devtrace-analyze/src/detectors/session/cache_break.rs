//! Prompt-cache breaks: a request that read much less from the provider's prompt cache than
//! the previous request of the same conversation had cached, while its context did not
//! shrink. Each break has a cause named from what the record shows, the tokens it re-wrote
//! and the money lost (those tokens paid at the cache-write price instead of the read price).
//!
//! - **What the previous request cached**: with Anthropic (cache writes recorded), what it read
//!   plus what it wrote; with OpenAI (every prompt prefix cached, nothing recorded), its whole
//!   input.
//! - **A break**: the request reads less than `read_share` (½) of that, the context is at least
//!   what was cached (it did not shrink), and at least `min_tokens` (1,024, the smallest
//!   cacheable prompt) were re-written.
//! - **Causes**, first that applies: a model switch (caches are per model); an idle gap longer
//!   than the cache lifetime (5 minutes by default, configurable; 1 hour when the
//!   conversation's record shows 1-hour cache writes); else the prompt's prefix changed
//!   (system prompt, tool list or earlier messages — transcripts do not record these, so this
//!   is said as "not recorded") or the provider evicted it.
//! - **Not a break**: the first request of a conversation; a request after a pause inside the
//!   lifetime that still read its cache; a context that shrank; the request after a compaction
//!   (said once, in a note of its own). Sub-agents (sidechains) are conversations of their own.

use super::evidence;
use crate::finding::{Finding, FindingKind, Impact, ImpactBasis, human_duration, thousands};
use crate::fingerprint::fingerprint;
use crate::pricing::{PriceTable, format_dollars};
use crate::session::SessionView;
use crate::session_tokens::{Accounting, Request, conversations};
use serde::Serialize;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// The provider's cache lifetime when the record does not show a longer one: 5 minutes
    /// (Anthropic's default; set 1 hour for sessions that use the 1-hour cache).
    pub cache_lifetime_nanos: u64,
    /// A request reading under this share of what the previous one cached: 0.5.
    pub read_share: f64,
    /// Tokens re-written for a break to count: 1,024.
    pub min_tokens: u64,
}

pub const FIVE_MINUTES: u64 = 300_000_000_000;
pub const ONE_HOUR: u64 = 3_600_000_000_000;

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cache_lifetime_nanos: FIVE_MINUTES,
            read_share: 0.5,
            min_tokens: 1_024,
        }
    }
}

/// Why the cache was not read.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// The request came after an idle gap longer than the cache lifetime.
    IdleGap { gap_nanos: u64, lifetime_nanos: u64 },
    /// The request went to another model than the previous one.
    ModelSwitch { from: String, to: String },
    /// Nothing recorded explains it: the prompt's prefix changed (system prompt, tool list,
    /// earlier messages) or the provider evicted the cache.
    PrefixChanged,
}

impl Cause {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::IdleGap { .. } => "idle_gap",
            Self::ModelSwitch { .. } => "model_switch",
            Self::PrefixChanged => "prefix_changed",
        }
    }

    /// Says the cause in words (model names quoted: they are recorded text).
    pub fn describe(&self) -> String {
        match self {
            Self::IdleGap {
                gap_nanos,
                lifetime_nanos,
            } => format!(
                "after {} idle (cache lifetime {})",
                human_duration(*gap_nanos),
                human_duration(*lifetime_nanos)
            ),
            Self::ModelSwitch { from, to } => format!(
                "at a model switch from {} to {}",
                devtrace_model::recorded::quote_short(from, 60),
                devtrace_model::recorded::quote_short(to, 60)
            ),
            Self::PrefixChanged => "with no recorded cause (the prompt's prefix changed — system prompt, tools or earlier messages, which the record does not show — or the cache was evicted)".to_owned(),
        }
    }
}

/// One break.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Break {
    /// The request that re-wrote the cache (index into the accounting's requests).
    pub request: usize,
    /// The previous request of its conversation.
    pub previous: usize,
    pub cause: Cause,
    /// Tokens the previous request had cached.
    pub cached_before: u64,
    /// Tokens that had to be written again (or sent uncached) instead of read.
    pub tokens_rewritten: u64,
    /// What those tokens cost above reading them from the cache; `None` without a price.
    pub usd_lost: Option<f64>,
}

/// A session's breaks, and the requests after a compaction (not breaks).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub breaks: Vec<Break>,
    /// Requests that re-wrote the cache because the context was compacted just before.
    pub after_compaction: Vec<usize>,
    /// Tokens written to the cache by those requests.
    pub compaction_tokens: u64,
}

/// What `previous` left in the cache.
fn cached_by(previous: &Request) -> u64 {
    if previous.records_cache_writes {
        previous.tokens.cache_read + previous.tokens.cache_write
    } else {
        previous.context_tokens()
    }
}

/// The breaks of one session.
pub fn breaks(
    view: &SessionView,
    accounting: &Accounting,
    prices: &PriceTable,
    thresholds: &Thresholds,
) -> Report {
    let main = view
        .root
        .map(|r| view.trace.span(r).span_id)
        .unwrap_or_default();
    let mut report = Report::default();
    for (conversation, requests) in conversations(accounting, main) {
        let mut one_hour = false;
        for pair in requests.windows(2) {
            let (p, c) = (pair[0], pair[1]);
            let (previous, current) = (&accounting.requests[p], &accounting.requests[c]);
            one_hour |= previous.tokens.cache_write_1h > 0;
            let cached = cached_by(previous);
            if cached < thresholds.min_tokens
                || current.tokens.cache_read as f64 >= thresholds.read_share * cached as f64
            {
                continue;
            }
            let compacted = conversation == main
                && accounting
                    .compactions
                    .iter()
                    .any(|t| *t > previous.start && *t <= current.end);
            if compacted {
                report.after_compaction.push(c);
                report.compaction_tokens += current.tokens.cache_write + current.tokens.input;
                continue;
            }
            if current.context_tokens() < cached {
                // The context shrank (cleared or compacted without a record): not a break.
                continue;
            }
            let rewritten = (cached - current.tokens.cache_read)
                .min(current.tokens.cache_write + current.tokens.input);
            if rewritten < thresholds.min_tokens {
                continue;
            }
            let lifetime = if one_hour {
                ONE_HOUR.max(thresholds.cache_lifetime_nanos)
            } else {
                thresholds.cache_lifetime_nanos
            };
            let gap = current.start.saturating_sub(previous.end);
            let cause = match (&previous.model, &current.model) {
                (Some(from), Some(to)) if from != to => Cause::ModelSwitch {
                    from: from.clone(),
                    to: to.clone(),
                },
                _ if gap > lifetime => Cause::IdleGap {
                    gap_nanos: gap,
                    lifetime_nanos: lifetime,
                },
                _ => Cause::PrefixChanged,
            };
            let usd_lost = current
                .model
                .as_deref()
                .and_then(|m| prices.price(m))
                .map(|price| {
                    let write = if current.records_cache_writes {
                        price.cache_write
                    } else {
                        price.input
                    };
                    rewritten as f64 * (write - price.cache_read).max(0.0) / 1e6
                });
            report.breaks.push(Break {
                request: c,
                previous: p,
                cause,
                cached_before: cached,
                tokens_rewritten: rewritten,
                usd_lost,
            });
        }
    }
    report
        .breaks
        .sort_by_key(|b| accounting.requests[b.request].start);
    report
}

/// The session's cache breaks as one finding, and compactions as one note.
pub fn detect(
    view: &SessionView,
    accounting: &Accounting,
    report: &Report,
    prices: &PriceTable,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    if !report.breaks.is_empty() {
        findings.push(break_finding(view, accounting, report, prices));
    }
    if !report.after_compaction.is_empty() {
        let n = report.after_compaction.len();
        let mut impact = Impact::of(ImpactBasis::Observation);
        impact.prices = Some(prices.source.clone());
        findings.push(Finding {
            kind: FindingKind::CacheBreak,
            operation: Some("compaction".into()),
            title: format!(
                "the context was compacted {} on purpose; the prompt cache was written again after {} ({} tokens) — expected, not counted as cache breaks",
                if n == 1 { "once".to_owned() } else { format!("{n} times") },
                if n == 1 { "it" } else { "each" },
                thousands(report.compaction_tokens),
            ),
            recommendation: "Nothing to fix: a compaction replaces the context, so its cache starts again.".into(),
            fingerprint: fingerprint(&["cache_break", "compaction"]),
            saving_nanos: 0,
            occurrences: n as u64,
            numbers: [
                ("compactions".to_owned(), n as f64),
                ("tokens_written".to_owned(), report.compaction_tokens as f64),
            ]
            .into_iter()
            .collect(),
            evidence: evidence(
                view,
                report
                    .after_compaction
                    .iter()
                    .map(|r| accounting.requests[*r].span_id),
            ),
            impact,
        });
    }
    findings
}

fn break_finding(
    view: &SessionView,
    accounting: &Accounting,
    report: &Report,
    prices: &PriceTable,
) -> Finding {
    let breaks = &report.breaks;
    let tokens: u64 = breaks.iter().map(|b| b.tokens_rewritten).sum();
    let usd: f64 = breaks.iter().filter_map(|b| b.usd_lost).sum();
    let priced = breaks.iter().any(|b| b.usd_lost.is_some());
    let count = |kind: &str| breaks.iter().filter(|b| b.cause.as_str() == kind).count();
    let (idle, switch, other) = (
        count("idle_gap"),
        count("model_switch"),
        count("prefix_changed"),
    );
    let longest_idle = breaks
        .iter()
        .filter_map(|b| match b.cause {
            Cause::IdleGap { gap_nanos, .. } => Some(gap_nanos),
            _ => None,
        })
        .max();
    let mut causes = Vec::new();
    if idle > 0 {
        causes.push(format!(
            "{idle} after idle gaps longer than the cache lifetime (longest {})",
            human_duration(longest_idle.unwrap_or(0))
        ));
    }
    if switch > 0 {
        let first = breaks
            .iter()
            .find(|b| b.cause.as_str() == "model_switch")
            .expect("counted");
        causes.push(format!("{switch} {}", first.cause.describe()));
    }
    if other > 0 {
        causes.push(format!(
            "{other} with no recorded cause (prefix changed or cache evicted)"
        ));
    }
    let model = breaks
        .iter()
        .find_map(|b| accounting.requests[b.request].model.clone());
    let mut impact = Impact::tokens(tokens, model);
    impact.affected_runs = 1;
    if priced {
        impact.cost_per_run_usd = Some(usd);
        impact.prices = Some(prices.source.clone());
    }
    let money = if priced {
        format!(", {} lost", format_dollars(usd))
    } else {
        String::new()
    };
    Finding {
        kind: FindingKind::CacheBreak,
        operation: Some("prompt cache".into()),
        title: format!(
            "{} prompt-cache {} re-wrote {} tokens{money}: {}",
            breaks.len(),
            if breaks.len() == 1 { "break" } else { "breaks" },
            thousands(tokens),
            causes.join("; ")
        ),
        recommendation: if idle > 0 {
            "Resume within the cache lifetime or use the 1-hour cache for sessions with long pauses; keep one model per conversation; keep the system prompt and tool list fixed.".into()
        } else {
            "Keep one model per conversation and the system prompt and tool list fixed: any change to the prompt's prefix writes the whole cache again.".into()
        },
        fingerprint: fingerprint(&["cache_break", "breaks"]),
        saving_nanos: 0,
        occurrences: breaks.len() as u64,
        numbers: [
            ("breaks".to_owned(), breaks.len() as f64),
            ("idle_gap_breaks".to_owned(), idle as f64),
            ("model_switch_breaks".to_owned(), switch as f64),
            ("unexplained_breaks".to_owned(), other as f64),
            ("tokens_rewritten".to_owned(), tokens as f64),
            ("usd_lost".to_owned(), usd),
            (
                "longest_idle_seconds".to_owned(),
                longest_idle.unwrap_or(0) as f64 / 1e9,
            ),
        ]
        .into_iter()
        .collect(),
        evidence: evidence(
            view,
            breaks
                .iter()
                .map(|b| accounting.requests[b.request].span_id),
        ),
        impact,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::{Session, read};
    use super::*;
    use crate::session_tokens::account;

    const SONNET: &str = "claude-sonnet-4-5-20250929";

    fn report(session: &mut Session) -> (Report, Vec<Finding>) {
        let trace = session.build();
        let view = SessionView::new(&trace);
        let prices = PriceTable::built_in();
        let accounting = account(&view, &prices);
        let report = breaks(&view, &accounting, &prices, &Thresholds::default());
        let findings = detect(&view, &accounting, &report, &prices);
        (report, findings)
    }

    #[test]
    fn an_idle_gap_past_the_lifetime_and_a_model_switch_are_breaks_with_their_cost() {
        let mut s = Session::new(1);
        // First request: writes 20,000 (not a break: nothing before it).
        s.request(SONNET, [0, 20_000, 10, 100], vec![read("/repo/a.rs", "h1")])
            // Inside the lifetime: reads it all back, writes 1,000 more.
            .idle(120)
            .request(SONNET, [20_000, 1_000, 10, 100], vec![])
            // 20 minutes later: nothing read, 21,000 written again.
            .idle(1_200)
            .request(SONNET, [0, 21_500, 10, 100], vec![])
            // Another model: its cache is empty.
            .request("claude-opus-4-1", [0, 22_000, 10, 100], vec![]);
        let (report, findings) = report(&mut s);
        assert_eq!(report.breaks.len(), 2, "{report:?}");
        let idle = &report.breaks[0];
        assert!(
            matches!(idle.cause, Cause::IdleGap { gap_nanos, .. } if gap_nanos > 1_200_000_000_000)
        );
        assert_eq!(idle.cached_before, 21_000);
        assert_eq!(idle.tokens_rewritten, 21_000);
        // 21,000 × ($3.75 − $0.30) per million.
        assert!((idle.usd_lost.unwrap() - 21_000.0 * 3.45 / 1e6).abs() < 1e-12);
        let switch = &report.breaks[1];
        assert_eq!(
            switch.cause,
            Cause::ModelSwitch {
                from: SONNET.into(),
                to: "claude-opus-4-1".into()
            }
        );
        assert_eq!(switch.tokens_rewritten, 21_500);
        assert!((switch.usd_lost.unwrap() - 21_500.0 * (18.75 - 1.50) / 1e6).abs() < 1e-12);
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::CacheBreak);
        assert_eq!(f.numbers["breaks"], 2.0);
        assert_eq!(f.numbers["tokens_rewritten"], 42_500.0);
        assert!(f.title.starts_with("2 prompt-cache breaks re-wrote 42,500 tokens, $0.443 lost: 1 after idle gaps longer than the cache lifetime (longest 20.0 min); 1 at a model switch from \"claude-sonnet-4-5-20250929\" to \"claude-opus-4-1\""), "{}", f.title);
    }

    #[test]
    fn a_first_request_a_pause_inside_the_lifetime_and_a_compaction_are_not_breaks() {
        let mut s = Session::new(2);
        s.request(SONNET, [0, 30_000, 10, 100], vec![])
            .idle(240)
            .request(SONNET, [30_000, 500, 10, 100], vec![])
            .compaction()
            .request(SONNET, [0, 5_000, 10, 100], vec![]);
        let (report, findings) = report(&mut s);
        assert!(report.breaks.is_empty(), "{report:?}");
        assert_eq!(report.after_compaction.len(), 1);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].impact.basis, ImpactBasis::Observation);
        assert!(
            findings[0]
                .title
                .starts_with("the context was compacted once on purpose")
        );
    }

    #[test]
    fn a_sidechain_is_compared_only_with_its_own_requests() {
        let mut s = Session::new(3);
        s.request(SONNET, [0, 40_000, 10, 100], vec![]);
        // A sub-agent starts its own conversation: reading nothing is its first request.
        s.subagent()
            .request(SONNET, [0, 8_000, 10, 100], vec![])
            .request(SONNET, [8_000, 300, 10, 100], vec![]);
        let (report, findings) = report(&mut s);
        assert!(report.breaks.is_empty(), "{report:?}");
        assert!(findings.is_empty());
    }

    #[test]
    fn a_one_hour_cache_is_not_broken_by_a_twenty_minute_pause() {
        let mut s = Session::new(4);
        s.request(SONNET, [0, 20_000, 10, 100], vec![]);
        let one_hour = s.last_chat();
        one_hour.push(devtrace_model::KeyValue::new(
            devtrace_model::semconv::SESSION_CACHE_WRITE_1H_TOKENS,
            20_000i64,
        ));
        s.idle(1_200).request(SONNET, [0, 20_500, 10, 100], vec![]);
        let (report, _) = report(&mut s);
        assert_eq!(report.breaks.len(), 1);
        assert_eq!(report.breaks[0].cause, Cause::PrefixChanged);
    }
}
