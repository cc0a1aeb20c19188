//! `devtrace locks`: lock waits and holds (longest waits first), per lock and per holder, the
//! lock-order inversions that can deadlock, and for one trace the timeline of lock events.
//! Lock spans follow docs/conventions.md (`devtrace.lock.*`).

use super::analysis::{one, recent};
use crate::cli::LocksArgs;
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::Result;
use devtrace_analyze::locks::{self, Inversion, LockOrder, LockReport, TimelineEvent, UseStats};
use devtrace_model::recorded::{escape, name};
use devtrace_query::text::fit::{Align, Cell, Column, Fit, Table};
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
        (Some(_), Some(trace)) => Some(locks::timeline(&report.uses, trace.earliest_start())),
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
    let columns = terminal_width();
    out.push_str("\nlongest waits\n");
    out.push_str(&waits_table(report).render(columns, &|_, text| text.to_owned()));
    if report.uses.len() > USES_SHOWN {
        out.push_str(&format!(
            "… {} more (--json lists them all)\n",
            report.uses.len() - USES_SHOWN
        ));
    }
    out.push_str("\nper lock\n");
    let mut per_lock = stats_table("LOCK", "HOLDERS");
    for l in &report.per_lock {
        let holders: Vec<String> = l.holders.iter().map(|h| escape(holder(h))).collect();
        per_lock.row(stats_row(escape(&l.lock), &l.stats, holders.join(", ")));
    }
    out.push_str(&per_lock.render(columns, &|_, text| text.to_owned()));
    out.push_str("\nper holder\n");
    let mut per_holder = stats_table("HOLDER", "LOCKS");
    for h in &report.per_holder {
        let locks: Vec<String> = h.locks.iter().map(|l| escape(l)).collect();
        per_holder.row(stats_row(
            escape(holder(&h.holder)),
            &h.stats,
            locks.join(", "),
        ));
    }
    out.push_str(&per_holder.render(columns, &|_, text| text.to_owned()));

    out.push('\n');
    if report.inversions.is_empty() {
        out.push_str("no lock-order inversions\n");
    }
    for inversion in &report.inversions {
        out.push_str(&inversion_text(inversion));
    }

    if let Some(events) = timeline {
        out.push_str("\ntimeline (from the trace start)\n");
        out.push_str(&timeline_table(events).render(columns, &|_, text| text.to_owned()));
    }
    out
}

/// Every lock event of one trace in time order.
fn timeline_table(events: &[TimelineEvent]) -> Table {
    let mut table = Table::new(vec![
        Column::new("AT", Align::Right, Fit::Keep),
        Column::new("HOLDER", Align::Left, Fit::Shrink { min: 6 }),
        Column::new("EVENT", Align::Left, Fit::Keep),
        Column::new("LOCK", Align::Left, Fit::Shrink { min: 8 }),
        Column::new("FOR", Align::Left, Fit::Optional(0)),
    ]);
    for e in events {
        let detail = match (e.wait_ns, e.hold_ns) {
            (Some(wait), _) => format!("waited {}", format_duration(wait)),
            (_, Some(hold)) => format!("held {}", format_duration(hold)),
            _ => String::new(),
        };
        table.row(vec![
            format!("+{}", format_duration(e.offset_nanos)).into(),
            escape(holder(&e.holder)).into(),
            e.event.as_str().into(),
            escape(&e.lock).into(),
            detail.into(),
        ]);
    }
    table
}

/// The longest waits, one row per lock use: names are cut before an id is, and how long it
/// held is left out first. BEHIND (how many waited before it) is there when anyone queued.
fn waits_table(report: &LockReport) -> Table {
    let uses: Vec<_> = report.uses.iter().take(USES_SHOWN).collect();
    let queued = uses.iter().any(|u| u.behind.is_some());
    let mut columns = vec![
        Column::new("LOCK", Align::Left, Fit::Shrink { min: 8 }),
        Column::new("HOLDER", Align::Left, Fit::Shrink { min: 6 }),
        Column::new("WAIT", Align::Right, Fit::Keep),
        Column::new("HOLD", Align::Right, Fit::Optional(1)),
        Column::new("TRACE", Align::Left, Fit::Keep),
        Column::new("SPAN", Align::Left, Fit::Keep),
    ];
    if queued {
        columns.push(Column::new("BEHIND", Align::Right, Fit::Optional(0)));
    }
    let mut table = Table::new(columns);
    for u in uses {
        let mut row: Vec<Cell> = vec![
            escape(&u.lock).into(),
            escape(holder(&u.holder)).into(),
            format_duration(u.wait_nanos).into(),
            format_duration(u.hold_nanos).into(),
            u.trace_id.to_hex()[..8].to_owned().into(),
            u.span_id.to_string().into(),
        ];
        if queued {
            row.push(u.behind.map(|n| n.to_string()).unwrap_or_default().into());
        }
        table.row(row);
    }
    table
}

/// Totals per lock or per holder; the maxima are left out first when the terminal is narrow.
fn stats_table(first: &str, last: &str) -> Table {
    Table::new(vec![
        Column::new(first, Align::Left, Fit::Shrink { min: 8 }),
        Column::new("USES", Align::Right, Fit::Keep),
        Column::new("TOTAL WAIT", Align::Right, Fit::Keep),
        Column::new("MAX WAIT", Align::Right, Fit::Optional(1)),
        Column::new("TOTAL HOLD", Align::Right, Fit::Optional(2)),
        Column::new("MAX HOLD", Align::Right, Fit::Optional(0)),
        Column::new(last, Align::Left, Fit::Shrink { min: 8 }),
    ])
}

fn stats_row(first: String, stats: &UseStats, last: String) -> Vec<Cell> {
    vec![
        first.into(),
        stats.uses.to_string().into(),
        format_duration(stats.total_wait_nanos).into(),
        format_duration(stats.max_wait_nanos).into(),
        format_duration(stats.total_hold_nanos).into(),
        format_duration(stats.max_hold_nanos).into(),
        last.into(),
    ]
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

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
