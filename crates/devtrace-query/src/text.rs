//! Plain-text renderings of analysis results, shared by the CLI (which prints them) and the
//! MCP tools (which return them): findings, operation breakdowns and comparisons as small
//! aligned tables that read well without colour.

pub mod errors;
pub mod fit;

use crate::timefmt::format_duration;
use devtrace_analyze::Finding;
use devtrace_analyze::compare::{Comparison, OperationDelta};
use devtrace_analyze::perf::OperationProfile;

/// How a rendering shows data recorded by traced programs and sessions (span names, messages,
/// attribute values): escaped for people at a terminal (table cells and tree lines, where the
/// column says what the text is), quoted for an AI assistant; either way nothing recorded can
/// move a cursor, start a line of its own or pass for devtrace's words
/// ([`devtrace_model::recorded`]).
#[derive(Clone, Copy, Debug)]
pub struct TextOptions {
    /// Columns available (wider tables truncate names to fit).
    pub width: usize,
    /// Quote trace data in JSON string syntax (else escape it in place).
    pub quote_data: bool,
    /// Where the attributes left out of a rendering can be read.
    pub more_attributes_hint: &'static str,
    /// Evidence items listed per finding (the rest are counted).
    pub evidence_shown: usize,
}

impl TextOptions {
    /// For people: data escaped in place.
    pub fn plain(width: usize) -> Self {
        Self {
            width,
            quote_data: false,
            more_attributes_hint: "--json has them all",
            evidence_shown: usize::MAX,
        }
    }

    /// For assistants: data quoted.
    pub fn quoted(width: usize, more_attributes_hint: &'static str) -> Self {
        Self {
            width,
            quote_data: true,
            more_attributes_hint,
            evidence_shown: 2,
        }
    }

    /// A name or short text from a trace.
    pub fn data(&self, text: &str) -> String {
        if self.quote_data {
            quote(text)
        } else {
            escape(text)
        }
    }

    /// An attribute value or message from a trace.
    pub fn value(&self, text: &str) -> String {
        self.data(text)
    }

    /// A recorded key (attribute name): escaped for people; for assistants as it is when it is
    /// a plain dotted name, quoted otherwise.
    pub fn key(&self, key: &str) -> String {
        if self.quote_data {
            devtrace_model::recorded::key(key)
        } else {
            escape(key)
        }
    }

    /// A recorded value that may span lines, placed after a label (`key =`): returned with its
    /// leading separator. Quoted: ` "one\nJSON string"`. Plain: ` one line`, escaped; a value of
    /// several lines starts on the next line, each line escaped behind a `│` gutter indented by
    /// `indent`, so no recorded line starts a line of the output.
    pub fn block(&self, text: &str, indent: usize) -> String {
        let text = text.trim_end_matches('\n');
        if self.quote_data || !text.contains('\n') {
            return format!(" {}", self.data(text));
        }
        let pad = " ".repeat(indent);
        text.lines()
            .map(|line| format!("\n{pad}│ {}", escape(line)))
            .collect()
    }

    /// A recorded line shown on a line of its own (a stack-trace line, a diff line): quoted for
    /// assistants; for people escaped behind a `│` gutter, so it never starts the output line.
    pub fn line(&self, text: &str) -> String {
        if self.quote_data {
            quote(text)
        } else {
            format!("│ {}", escape(text))
        }
    }

    /// A sentence of devtrace's own (a finding's title or recommendation) that already quotes
    /// the recorded text it cites: escaped all the same, as a safety net (escaping is
    /// idempotent on text that needs none).
    pub fn words(&self, text: &str) -> String {
        escape(text)
    }
}

pub use devtrace_model::recorded::{escape, escape_short, quote, quote_short};

/// Operation rows shown in a comparison.
pub const COMPARE_ROWS_SHOWN: usize = 15;

/// Cuts `text` to `width` characters, marking the cut with an ellipsis. Recorded text is
/// escaped before it is cut (`truncate(&options.data(name), width)`, or [`cell`]), so the width
/// counts what is shown.
/// "1 span", "3 spans": a count with its noun in the right number.
/// A trace's duration: its root span's own; when a span outlives the root (a server still
/// working after its client gave up), also when the last one ends, from the root's start:
/// "root 521 ms; the last span ends at 1.02 s".
pub fn trace_duration(summary: &devtrace_store::TraceSummary) -> String {
    with_last_end(summary, |root, last| {
        format!("root {root}; the last span ends at {last}")
    })
}

/// [`trace_duration`] for a table cell: "521 ms (1.02 s)", explained by
/// [`OUTLIVED_NOTE`] under the table.
pub fn trace_duration_cell(summary: &devtrace_store::TraceSummary) -> String {
    with_last_end(summary, |root, last| format!("{root} ({last})"))
}

/// The root's duration, or `both` of it and the last span's end when a span outlives the root.
fn with_last_end(
    summary: &devtrace_store::TraceSummary,
    both: impl Fn(String, String) -> String,
) -> String {
    let root = format_duration(summary.duration_nanos());
    match summary.last_span_end_nanos() {
        None => root,
        Some(last) => both(root, format_duration(last)),
    }
}

/// What a [`trace_duration_cell`] in parentheses means.
pub const OUTLIVED_NOTE: &str = "a duration is the root span's own; (in parentheses): a span went on after the root ended, and the last one ends that long after the root's start";

pub fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

pub fn truncate(text: &str, width: usize) -> String {
    truncate_shown(text, width)
}

/// Recorded text for a table cell or tree line: escaped, then cut to `width` characters.
pub fn cell(text: &str, width: usize) -> String {
    truncate_shown(&escape(text), width)
}

fn truncate_shown(text: &str, width: usize) -> String {
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
    finding_text_with(finding, index, &TextOptions::plain(100))
}

/// [`finding_text`] with the given options (how much evidence; the title and recommendation
/// quote their recorded text themselves and are escaped either way).
pub fn finding_text_with(finding: &Finding, index: usize, options: &TextOptions) -> String {
    finding_text_worded(finding, index, options, SavingWording::PerRun)
}

/// A finding's impact in its own units, then its normalised score: "saves ≈ 45.0 ms per run
/// in 2 of 2 runs of "report" (15 % of its time) · score 0.145".
/// How a failure's impact reads: it fails the runs it happened in, but a run that survived it
/// (a caught timeout, a supervisor's restart) did not fail — then it "occurs in" them.
fn failures_wording(affected: u64, contained: u64) -> (&'static str, String) {
    match contained {
        0 => ("fails", String::new()),
        c if c >= affected && affected == 1 => ("occurs in", "; the run survived it".to_owned()),
        c if c >= affected => ("occurs in", "; every one survived it".to_owned()),
        c => ("occurs in", format!("; {c} survived it")),
    }
}

pub fn impact_text(finding: &Finding) -> String {
    use devtrace_analyze::ImpactBasis;
    let impact = &finding.impact;
    let of = match &impact.operation {
        Some(op) => format!(" of {}", devtrace_model::recorded::name(op)),
        None => String::new(),
    };
    let runs = format!(
        "in {} of {} run{}{of}",
        impact.affected_runs,
        impact.operation_runs,
        if impact.operation_runs == 1 { "" } else { "s" }
    );
    let percent = |share: f64| format!("{:.0} %", share * 100.0);
    let score = format!(" · score {:.3}", impact.score);
    match impact.basis {
        ImpactBasis::Time => format!(
            "saves ≈ {} per run {runs} ({} of its time){score}",
            format_duration(impact.time_nanos_per_run),
            percent(impact.share)
        ),
        ImpactBasis::Tokens => {
            let cost = impact
                .cost_per_run_usd
                .map(|c| format!(", {}", devtrace_analyze::pricing::format_dollars(c)))
                .unwrap_or_default();
            let basis = if impact.cost_per_run_usd.is_some() {
                "of its LLM cost"
            } else {
                "of its tokens"
            };
            let time = if finding.saving_nanos > 0 {
                format!(" and ≈ {} per run", format_duration(finding.saving_nanos))
            } else {
                String::new()
            };
            format!(
                "≈ {} input tokens{cost} per run{time} {runs} ({} {basis}){score}",
                devtrace_analyze::finding::thousands(impact.tokens_per_run),
                percent(impact.share)
            )
        }
        ImpactBasis::Failures => {
            let contained = finding
                .numbers
                .get("contained_runs")
                .copied()
                .unwrap_or(0.0) as u64;
            let (verb, survived) = failures_wording(impact.affected_runs, contained);
            format!(
                "{verb} {} of {} run{}{of} ({}{survived}){score}",
                impact.affected_runs,
                impact.operation_runs,
                if impact.operation_runs == 1 { "" } else { "s" },
                percent(impact.failure_rate.unwrap_or(0.0))
            )
        }
        ImpactBasis::Correctness => {
            format!("a wrong result is possible {runs}: correctness outranks speed{score}")
        }
        ImpactBasis::Handled => {
            "handled, not a failure: the spans ended fine (listed, not ranked)".to_owned()
        }
        ImpactBasis::Observation => {
            "says where the time goes; estimates nothing (listed, not ranked)".to_owned()
        }
    }
}

/// How a finding's estimated saving reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavingWording {
    /// A program's finding: "saving ≈ X per run × N run(s) = total".
    PerRun,
    /// A development session's finding: "time lost ≈ total (N × X)", its occurrences being
    /// the refused edits, repeated commands… of one session, not runs.
    TimeLost,
}

/// [`finding_text_with`], with the saving worded for the kind of trace it came from.
pub fn finding_text_worded(
    finding: &Finding,
    index: usize,
    options: &TextOptions,
    wording: SavingWording,
) -> String {
    let mut out = format!("{index}. {}\n", options.words(&finding.title));
    if wording == SavingWording::PerRun {
        out.push_str(&format!(
            "   impact: {}\n",
            options.words(&impact_text(finding))
        ));
    } else if finding.saving_nanos > 0 {
        let times = finding.occurrences.max(1);
        out.push_str(&match wording {
            SavingWording::PerRun => unreachable!("handled above"),
            SavingWording::TimeLost if times > 1 => format!(
                "   time lost ≈ {} ({times} × {})\n",
                format_duration(finding.total_saving_nanos()),
                format_duration(finding.saving_nanos),
            ),
            SavingWording::TimeLost => format!(
                "   time lost ≈ {}\n",
                format_duration(finding.total_saving_nanos())
            ),
        });
    }
    out.push_str(&format!(
        "   → {}\n",
        options.words(&finding.recommendation)
    ));
    for evidence in finding.evidence.iter().take(options.evidence_shown) {
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
    if finding.evidence.len() > options.evidence_shown {
        out.push_str(&format!(
            "   evidence: +{} more trace(s)\n",
            finding.evidence.len() - options.evidence_shown
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
    render_profile_with(profile, &TextOptions::plain(100))
}

/// [`render_profile`] with names quoted when the options say so.
pub fn render_profile_with(profile: &OperationProfile, options: &TextOptions) -> String {
    let d = &profile.duration;
    let ns = |v: f64| format_duration(v.max(0.0) as u64);
    let kind = match profile.span_kind.as_str() {
        "unspecified" => String::new(),
        kind => format!("{kind} "),
    };
    // Successes and failures apart when any run failed: never one mean of both.
    let typical = match &profile.by_outcome {
        None => format!("{} mean", ns(d.mean)),
        Some(by) => format!("{},", devtrace_analyze::outcome::described(by)),
    };
    let mut out = format!(
        "{} ({kind}span of {}): {typical} over {} run{} (p50 {}, p95 {}, max {})\n\n",
        options.data(&profile.operation),
        options.data(&profile.service),
        d.count,
        if d.count == 1 { "" } else { "s" },
        ns(d.p50),
        ns(d.p95),
        ns(d.max),
    );
    out.push_str(&children_table(profile, options));
    if profile.children.iter().any(|c| c.waited_for) {
        out.push_str(
            "  ⇠ another thread's call, not a child: the critical path's time there while a \
             span under the operation waited for it\n",
        );
    }
    let kinds: Vec<String> = profile
        .by_kind
        .iter()
        .filter(|k| k.share >= 0.001)
        .map(|k| match profile.by_outcome {
            // A mean per run would blend the failed runs with the others: shares only.
            Some(_) => format!("{} {}", k.kind.label(), percent(k.share)),
            None => format!(
                "{} {} ({})",
                k.kind.label(),
                percent(k.share),
                ns(k.mean_nanos)
            ),
        })
        .collect();
    out.push_str(&format!("\ntime by kind of work: {}\n", kinds.join(", ")));
    out
}

/// The operation's children, one row each, fitted to the options' width: the name is cut
/// first, then the least needed columns are left out (calls per run, then p50, p95, kind).
fn children_table(profile: &OperationProfile, options: &TextOptions) -> String {
    use fit::{Align, Column, Fit, Table};
    let ns = |v: f64| format_duration(v.max(0.0) as u64);
    let mut table = Table::new(vec![
        Column::new("child", Align::Left, Fit::Shrink { min: 16 }),
        Column::new("kind", Align::Left, Fit::Optional(3)),
        Column::new("mean", Align::Right, Fit::Keep),
        Column::new("p50", Align::Right, Fit::Optional(1)),
        Column::new("p95", Align::Right, Fit::Optional(2)),
        Column::new("share", Align::Right, Fit::Keep),
        Column::new("calls", Align::Right, Fit::Optional(0)),
        Column::new("critical", Align::Right, Fit::Optional(4)),
    ]);
    for child in &profile.children {
        let mut label = options.data(&child.name);
        if child.waited_for {
            // Not a child: another thread the path crossed to while a span waited for it.
            label = format!("⇠ {label}");
            if let Some(thread) = &child.thread {
                label.push_str(&format!(
                    " (thread {})",
                    devtrace_model::recorded::quote(thread)
                ));
            }
        }
        if child.service != profile.service {
            label.push_str(&format!(" → {}", options.data(&child.service)));
        }
        let twin = profile.children.iter().any(|o| {
            o.name == child.name && o.service == child.service && o.span_kind != child.span_kind
        });
        if twin {
            label.push_str(&format!(" [{}]", child.span_kind));
        }
        table.row(vec![
            label.into(),
            child.kind.label().into(),
            ns(child.per_run.mean).into(),
            ns(child.per_run.p50).into(),
            ns(child.per_run.p95).into(),
            percent(child.share).into(),
            format!("{:.1}", child.calls_per_run).into(),
            percent(child.critical_share).into(),
        ]);
    }
    indented(&table, options)
}

/// A table indented by two columns under its heading, fitted to the rest of the width.
fn indented(table: &fit::Table, options: &TextOptions) -> String {
    let rendered = table.render(options.width.saturating_sub(2), &|_, text| text.to_owned());
    rendered.lines().map(|line| format!("  {line}\n")).collect()
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
    render_comparison_with(
        label,
        comparison,
        &TextOptions::plain(100),
        "--json for all",
    )
}

/// [`render_comparison`] with names quoted when the options say so; `more` says where the
/// operations left out can be seen.
pub fn render_comparison_with(
    label: &str,
    comparison: &Comparison,
    options: &TextOptions,
    more: &str,
) -> String {
    let total = &comparison.total;
    let mut out = format!(
        "{}\n\nwhole run: {} → {}  ({}, {})  {}\n",
        options.words(label),
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
    out.push('\n');
    out.push_str(&operations_table(comparison, &rows, options));
    if comparison.operations.len() > COMPARE_ROWS_SHOWN {
        out.push_str(&format!(
            "  … {} more operations ({more})\n",
            comparison.operations.len() - COMPARE_ROWS_SHOWN
        ));
    }
    render_parameter_changes(&mut out, &comparison.parameters, options);
    out
}

/// The operations that changed most, fitted to the options' width: the name is cut first,
/// then calls per run, the delta and the relative change are left out; both means and the
/// verdict always stay.
fn operations_table(
    comparison: &Comparison,
    rows: &[&OperationDelta],
    options: &TextOptions,
) -> String {
    use fit::{Align, Column, Fit, Table};
    let mut table = Table::new(vec![
        Column::new("operation", Align::Left, Fit::Shrink { min: 16 }),
        Column::new("A", Align::Right, Fit::Keep),
        Column::new("B", Align::Right, Fit::Keep),
        Column::new("delta", Align::Right, Fit::Optional(1)),
        Column::new("change", Align::Right, Fit::Optional(2)),
        Column::new("calls A→B", Align::Right, Fit::Optional(0)),
        Column::new("verdict", Align::Left, Fit::Keep),
    ]);
    for row in rows {
        // A name two operations share (a client span and its server span) says which is which.
        let shared = comparison
            .operations
            .iter()
            .filter(|o| o.operation == row.operation)
            .count()
            > 1;
        let label = if shared {
            format!(
                "{} ({}, {})",
                options.data(&row.operation),
                options.data(&row.service),
                row.span_kind
            )
        } else {
            options.data(&row.operation)
        };
        table.row(vec![
            label.into(),
            format_duration(row.a.mean_nanos as u64).into(),
            format_duration(row.b.mean_nanos as u64).into(),
            signed(row.delta_nanos).into(),
            ratio(row).into(),
            format!("{:.1}→{:.1}", row.a.calls_per_run, row.b.calls_per_run).into(),
            row.verdict.short().into(),
        ]);
    }
    indented(&table, options)
}

/// The request parameters the two runs' roots differ in, values quoted (recorded text).
fn render_parameter_changes(
    out: &mut String,
    changes: &[devtrace_analyze::compare::ParameterChange],
    options: &TextOptions,
) {
    if changes.is_empty() {
        return;
    }
    out.push_str("\nrequest parameters that differ (A → B):\n");
    let side = |value: &Option<String>| value.as_deref().map_or("(absent)".to_owned(), quote);
    for change in changes {
        out.push_str(&format!(
            "  {}: {} → {}\n",
            options.data(&change.name),
            side(&change.a),
            side(&change.b)
        ));
    }
}

#[cfg(test)]
mod failure_wording_tests {
    use super::failures_wording;

    #[test]
    fn a_run_that_survived_the_failure_is_not_said_to_fail() {
        assert_eq!(failures_wording(2, 0), ("fails", String::new()));
        let once = failures_wording(1, 1);
        assert_eq!(once, ("occurs in", "; the run survived it".to_owned()));
        let all = failures_wording(3, 3);
        assert_eq!(all, ("occurs in", "; every one survived it".to_owned()));
        assert_eq!(
            failures_wording(3, 1),
            ("occurs in", "; 1 survived it".to_owned())
        );
    }
}
