//! Two sessions side by side for every face ([`compare_sessions`], [`render_comparison`]):
//! requests, tool calls, tokens by kind, cost, time, findings and the first request where
//! they differ. Above [`super::resolve`], [`super::list`] and
//! [`super::tokens`] (a session's totals and requests), which know nothing of it.

use super::list::session_item;
use super::resolve::resolve_session;
use super::tokens::{TokenTotals, settings};
use crate::scope::QueryError;
use crate::text::{TextOptions, escape};
use crate::timefmt::format_duration;
use devtrace_analyze::detectors::session::TokenAnalysis;
use devtrace_analyze::finding::thousands;
use devtrace_analyze::pricing::format_dollars;
use devtrace_analyze::session::SessionView;
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_model::TraceId;
use devtrace_store::{Store, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

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
    let summary = store
        .session(trace_id)?
        // A trace that is not a session: `resolve::no_session` tells the two apart.
        .ok_or_else(|| QueryError::Store(StoreError::TraceNotFound(id.trim().to_owned())))?;
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
    let (findings_a, analysis_a) = super::analysis::analyse(store, &view_a, &settings);
    let (findings_b, analysis_b) = super::analysis::analyse(store, &view_b, &settings);
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
                    .map(|o| format!(" (+{})", super::words::format_offset(o)))
                    .unwrap_or_default(),
                calls(&d.a_calls),
                d.b_offset_ns
                    .map(|o| format!(" (+{})", super::words::format_offset(o)))
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
