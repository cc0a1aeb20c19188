//! Plain-text renderings of analysis results, shared by the CLI (which prints them) and the
//! MCP tools (which return them): findings, operation breakdowns and comparisons as small
//! aligned tables that read well without colour.

use crate::timefmt::format_duration;
use devtrace_analyze::Finding;
use devtrace_analyze::compare::{Comparison, OperationDelta};
use devtrace_analyze::perf::OperationProfile;

/// Operation rows shown in a comparison.
pub const COMPARE_ROWS_SHOWN: usize = 15;

/// Cuts `text` to `width` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A finding as a few lines of text: title, saving, recommendation, evidence.
pub fn finding_text(finding: &Finding, index: usize) -> String {
    let mut out = format!("{index}. {}\n", finding.title);
    if finding.saving_nanos > 0 {
        out.push_str(&format!(
            "   saving ≈ {} per run × {} run(s) = {}\n",
            format_duration(finding.saving_nanos),
            finding.occurrences.max(1),
            format_duration(finding.total_saving_nanos())
        ));
    }
    out.push_str(&format!("   → {}\n", finding.recommendation));
    for evidence in &finding.evidence {
        let spans: Vec<String> = evidence
            .span_ids
            .iter()
            .take(6)
            .map(|s| s.to_hex())
            .collect();
        let more = evidence.span_ids.len().saturating_sub(6);
        let more = if more > 0 {
            format!(" +{more}")
        } else {
            String::new()
        };
        out.push_str(&format!(
            "   evidence: trace {} spans {}{more}\n",
            evidence.trace_id,
            spans.join(" ")
        ));
    }
    out.push_str(&format!(
        "   [{} {}]\n",
        finding.kind.as_str(),
        finding.fingerprint
    ));
    out
}

pub fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// An operation's breakdown: duration statistics, one row per child, time by kind of work.
pub fn render_profile(profile: &OperationProfile) -> String {
    let d = &profile.duration;
    let ns = |v: f64| format_duration(v.max(0.0) as u64);
    let mut out = format!(
        "{}: {} mean over {} run{} (p50 {}, p95 {}, max {})\n\n",
        profile.operation,
        ns(d.mean),
        d.count,
        if d.count == 1 { "" } else { "s" },
        ns(d.p50),
        ns(d.p95),
        ns(d.max),
    );
    let width = profile
        .children
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(5, 40);
    out.push_str(&format!(
        "  {:<width$}  {:<9}  {:>9}  {:>9}  {:>9}  {:>5}  {:>6}  {:>8}\n",
        "child", "kind", "mean", "p50", "p95", "share", "calls", "critical"
    ));
    for child in &profile.children {
        out.push_str(&format!(
            "  {:<width$}  {:<9}  {:>9}  {:>9}  {:>9}  {:>5}  {:>6.1}  {:>8}\n",
            truncate(&child.name, width),
            child.kind.label(),
            ns(child.per_run.mean),
            ns(child.per_run.p50),
            ns(child.per_run.p95),
            percent(child.share),
            child.calls_per_run,
            percent(child.critical_share),
        ));
    }
    let kinds: Vec<String> = profile
        .by_kind
        .iter()
        .filter(|k| k.share >= 0.001)
        .map(|k| {
            format!(
                "{} {} ({})",
                k.kind.label(),
                percent(k.share),
                ns(k.mean_nanos)
            )
        })
        .collect();
    out.push_str(&format!("\ntime by kind of work: {}\n", kinds.join(", ")));
    out
}

fn signed(nanos: f64) -> String {
    let sign = if nanos < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format_duration(nanos.abs() as u64))
}

fn ratio(delta: &OperationDelta) -> String {
    delta
        .delta_ratio
        .map(|r| format!("{:+.1} %", r * 100.0).replace('-', "−"))
        .unwrap_or_else(|| "new".into())
}

/// A comparison: the whole-run verdict, then the operations that changed most.
pub fn render_comparison(label: &str, comparison: &Comparison) -> String {
    let total = &comparison.total;
    let mut out = format!(
        "{label}\n\nwhole run: {} → {}  ({}, {})  {}\n",
        format_duration(total.a.mean_nanos as u64),
        format_duration(total.b.mean_nanos as u64),
        signed(total.delta_nanos),
        ratio(total),
        total.verdict.describe(),
    );
    if total.a.tokens_per_run > 0.0 || total.b.tokens_per_run > 0.0 {
        out.push_str(&format!(
            "tokens per run: {:.0} → {:.0}\n",
            total.a.tokens_per_run, total.b.tokens_per_run
        ));
    }
    if total.a.errors > 0 || total.b.errors > 0 {
        out.push_str(&format!(
            "error spans: {} → {}\n",
            total.a.errors, total.b.errors
        ));
    }
    let rows: Vec<&OperationDelta> = comparison
        .operations
        .iter()
        .take(COMPARE_ROWS_SHOWN)
        .collect();
    let width = rows
        .iter()
        .map(|r| r.operation.chars().count())
        .max()
        .unwrap_or(9)
        .clamp(9, 40);
    out.push_str(&format!(
        "\n  {:<width$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>11}  {}\n",
        "operation", "A", "B", "delta", "change", "calls A→B", "verdict"
    ));
    for row in rows {
        out.push_str(&format!(
            "  {:<width$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>11}  {}\n",
            truncate(&row.operation, width),
            format_duration(row.a.mean_nanos as u64),
            format_duration(row.b.mean_nanos as u64),
            signed(row.delta_nanos),
            ratio(row),
            format!("{:.1}→{:.1}", row.a.calls_per_run, row.b.calls_per_run),
            row.verdict.describe(),
        ));
    }
    if comparison.operations.len() > COMPARE_ROWS_SHOWN {
        out.push_str(&format!(
            "  … {} more operations (--json for all)\n",
            comparison.operations.len() - COMPARE_ROWS_SHOWN
        ));
    }
    out
}
