//! `devtrace locks`: lock waits and holds (longest waits first), per lock and per holder, the
//! lock-order inversions that can deadlock, and for one trace the timeline of lock events.
//! Lock spans follow docs/conventions.md (`devtrace.lock.*`).

use super::analysis::{one, recent};
use crate::cli::LocksArgs;
use crate::output::{print_fitted, print_json};
use anyhow::Result;
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::locks::{self, Inversion, LockOrder, LockReport, TimelineEvent, UseStats};
use devtrace_model::recorded::{escape, name};
use devtrace_query::text::cell;
use devtrace_query::timefmt::format_duration;
use devtrace_store::Store;
use serde::Serialize;
use std::process::ExitCode;

/// Traces analysed when `--last` is not given.
const DEFAULT_LAST: usize = 200;
/// Rows of the longest-waits table in text (JSON has them all).
const USES_SHOWN: usize = 20;

#[derive(Serialize)]
struct LocksJson<'a> {
    traces: usize,
    #[serde(flatten)]
    report: &'a LockReport,
    /// With `--trace`: every lock event of the trace in time order.
    #[serde(skip_serializing_if = "Option::is_none")]
    timeline: Option<Vec<TimelineEvent>>,
}

pub fn run(store: &dyn Store, args: &LocksArgs) -> Result<ExitCode> {
    let traces = match &args.trace {
        Some(id) => vec![one(store, id)?],
        None => recent(store, &args.scope, None, DEFAULT_LAST)?,
    };
    let report = locks::analyze(&traces);
    let timeline = match (&args.trace, traces.first()) {
        (Some(_), Some(trace)) => Some(locks::timeline(&report.uses, trace_start(trace))),
        _ => None,
    };
    if args.json {
        print_json(&LocksJson {
            traces: traces.len(),
            report: &report,
            timeline,
        })?;
    } else {
        print_fitted(&render(&report, traces.len(), timeline.as_deref()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn trace_start(trace: &AnalyzedTrace) -> u64 {
    trace
        .spans
        .spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or(0)
}

fn render(report: &LockReport, traces: usize, timeline: Option<&[TimelineEvent]>) -> String {
    if report.uses.is_empty() {
        return format!(
            "no lock spans or waits in the {traces} trace{} analysed; record locks as docs/conventions.md describes (a span `lock <name>` with devtrace.lock.* attributes and events), or waits as span events (\"Waiting for lock\" … \"Acquired lock\")\n",
            plural(traces as u64)
        );
    }
    let mut out = format!(
        "{} lock use{} of {} lock{} by {} holder{} in {traces} trace{}\n",
        report.uses.len(),
        plural(report.uses.len() as u64),
        report.per_lock.len(),
        plural(report.per_lock.len() as u64),
        report.per_holder.len(),
        plural(report.per_holder.len() as u64),
        plural(traces as u64),
    );
    let lock_width = width(report.per_lock.iter().map(|l| l.lock.as_str()), 4, 32);
    let holder_width = width(report.per_holder.iter().map(|h| holder(&h.holder)), 6, 24);

    out.push_str("\nlongest waits\n");
    out.push_str(&format!(
        "{:<lock_width$}  {:<holder_width$}  {:>10}  {:>10}  {:<8}  SPAN\n",
        "LOCK", "HOLDER", "WAIT", "HOLD", "TRACE"
    ));
    for u in report.uses.iter().take(USES_SHOWN) {
        out.push_str(&format!(
            "{:<lock_width$}  {:<holder_width$}  {:>10}  {:>10}  {:<8}  {}\n",
            cell(&u.lock, lock_width),
            cell(holder(&u.holder), holder_width),
            format_duration(u.wait_nanos),
            format_duration(u.hold_nanos),
            &u.trace_id.to_hex()[..8],
            match u.behind {
                Some(n) => format!("{}  (behind {n})", u.span_id),
                None => u.span_id.to_string(),
            },
        ));
    }
    if report.uses.len() > USES_SHOWN {
        out.push_str(&format!(
            "… {} more (--json lists them all)\n",
            report.uses.len() - USES_SHOWN
        ));
    }

    out.push_str("\nper lock\n");
    out.push_str(&stats_header("LOCK", lock_width, "HOLDERS"));
    for l in &report.per_lock {
        let holders: Vec<String> = l.holders.iter().map(|h| escape(holder(h))).collect();
        out.push_str(&stats_row(
            &cell(&l.lock, lock_width),
            lock_width,
            &l.stats,
            &holders.join(", "),
        ));
    }
    out.push_str("\nper holder\n");
    out.push_str(&stats_header("HOLDER", holder_width, "LOCKS"));
    for h in &report.per_holder {
        out.push_str(&stats_row(
            &cell(holder(&h.holder), holder_width),
            holder_width,
            &h.stats,
            &h.locks
                .iter()
                .map(|l| escape(l))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }

    out.push('\n');
    if report.inversions.is_empty() {
        out.push_str("no lock-order inversions\n");
    }
    for inversion in &report.inversions {
        out.push_str(&inversion_text(inversion));
    }

    if let Some(events) = timeline {
        out.push_str("\ntimeline (from the trace start)\n");
        let event_holder_width = width(events.iter().map(|e| holder(&e.holder)), 6, 24);
        let event_lock_width = width(events.iter().map(|e| e.lock.as_str()), 4, 32);
        for e in events {
            let detail = match (e.wait_ns, e.hold_ns) {
                (Some(wait), _) => format!("  waited {}", format_duration(wait)),
                (_, Some(hold)) => format!("  held {}", format_duration(hold)),
                _ => String::new(),
            };
            let line = format!(
                "{:>12}  {:<event_holder_width$}  {:<9}  {:<event_lock_width$}{detail}",
                format!("+{}", format_duration(e.offset_nanos)),
                cell(holder(&e.holder), event_holder_width),
                e.event.as_str(),
                cell(&e.lock, event_lock_width),
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

fn stats_header(first: &str, first_width: usize, last: &str) -> String {
    format!(
        "{first:<first_width$}  {:>4}  {:>10}  {:>10}  {:>10}  {:>10}  {last}\n",
        "USES", "TOTAL WAIT", "MAX WAIT", "TOTAL HOLD", "MAX HOLD"
    )
}

fn stats_row(first: &str, first_width: usize, stats: &UseStats, last: &str) -> String {
    format!(
        "{first:<first_width$}  {:>4}  {:>10}  {:>10}  {:>10}  {:>10}  {last}\n",
        stats.uses,
        format_duration(stats.total_wait_nanos),
        format_duration(stats.max_wait_nanos),
        format_duration(stats.total_hold_nanos),
        format_duration(stats.max_hold_nanos),
    )
}

fn inversion_text(inversion: &Inversion) -> String {
    let (a, b) = (name(&inversion.lock_a), name(&inversion.lock_b));
    let in_holder = |order: &LockOrder| match order.holder.as_str() {
        "" => String::new(),
        h => format!(" in holder {}", name(h)),
    };
    let example = |order: &LockOrder, count: u64| {
        format!(
            "   {}→{} ({count}×): trace {}, span {} then span {}\n",
            name(&order.outer),
            name(&order.inner),
            &order.trace_id.to_hex()[..8],
            order.outer_span_id,
            order.inner_span_id,
        )
    };
    format!(
        "⚠ lock-order inversion: {a}→{b}{}, {b}→{a}{} — can deadlock\n{}{}   → take {a} and {b} in one order everywhere, or merge them into one lock\n",
        in_holder(&inversion.a_then_b),
        in_holder(&inversion.b_then_a),
        example(&inversion.a_then_b, inversion.a_then_b_count),
        example(&inversion.b_then_a, inversion.b_then_a_count),
    )
}

fn holder(holder: &str) -> &str {
    if holder.is_empty() { "?" } else { holder }
}

fn width<'a>(items: impl Iterator<Item = &'a str>, min: usize, max: usize) -> usize {
    items
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(min)
        .clamp(min, max)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
