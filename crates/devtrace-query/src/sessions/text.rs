//! The pieces of one session's text: the header (what, where, when, its numbers), each
//! timeline entry with its error, linked runs and findings, and a finding as a block. The
//! paged renderer (`page`) arranges them.

use super::overview::{SessionOverview, TimelineEntry};
use super::recorded::recorded_text;
use super::words::{count, format_offset, tokens, usage_line};
use crate::text::{SavingWording, TextOptions, escape, finding_text_worded, quote, truncate};
use crate::timefmt::{format_duration, format_timestamp_zoned};
use devtrace_analyze::Finding;
use std::collections::BTreeMap;

/// What the session was, where and when, and its numbers. Quoted: the recorded text (agent,
/// title, project, ids, branch) quoted and the token counts exact.
pub fn overview_header(overview: &SessionOverview, options: &TextOptions) -> String {
    let s = &overview.session;
    let title = if options.quote_data {
        quote(&truncate(&s.title, 200))
    } else if s.title.is_empty() {
        "(untitled)".to_owned()
    } else {
        escape(&s.title)
    };
    let amount = |n: u64| {
        if options.quote_data {
            n.to_string()
        } else {
            tokens(n)
        }
    };
    let mut out = format!(
        "{}  {}  {}\nsession {}  trace {}  started {}  {}\n",
        options.data(&s.agent),
        title,
        options.data(&s.project),
        options.data(&s.session_id),
        s.trace_id,
        format_timestamp_zoned(s.start_unix_nano),
        format_duration(s.duration_ns),
    );
    match &overview.recorded {
        // A person's recorded session: what they did, not an agent's turns and tokens.
        Some(recorded) => out.push_str(&recorded_text(recorded, options)),
        None => out.push_str(&format!(
            "{}, {}, {}, {}; tokens {} in ({} from cache), {} out\n",
            count(s.turns, "turn"),
            count(s.tool_calls, "tool call"),
            count(s.subagents, "sub-agent"),
            count(s.errors, "error"),
            amount(s.input_tokens),
            amount(s.cache_read_tokens),
            amount(s.output_tokens),
        )),
    }
    if let Some(usage) = &s.usage {
        out.push_str(&format!("agent-reported: {}\n", usage_line(usage)));
    }
    if !overview.lacks.is_empty() {
        let fill = match s.agent.as_str() {
            "claude-code" => "; `devtrace import claude-code` fills them in",
            "codex" => "; `devtrace import codex` fills them in",
            _ => "",
        };
        out.push_str(&format!(
            "from the agent's own telemetry, which leaves out {}{fill}\n",
            overview.lacks.join(", ")
        ));
    }
    if options.quote_data {
        let facts: Vec<String> = [
            ("git branch", &overview.git_branch),
            ("repository", &overview.repository),
            ("agent version", &overview.agent_version),
        ]
        .iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| format!("{name} {}", quote(v))))
        .collect();
        if !facts.is_empty() {
            out.push_str(&facts.join(", "));
            out.push('\n');
        }
    }
    out
}

/// The time timeline offsets count from: the session's start, or its first entry if earlier.
pub fn timeline_origin(overview: &SessionOverview) -> u64 {
    overview
        .timeline
        .first()
        .map_or(overview.session.start_unix_nano, |e| e.start_unix_nano)
        .min(overview.session.start_unix_nano)
}

/// The timeline as the text views show it: what was done, without the agent's replies
/// (`message` entries, which the web UI shows).
pub fn text_timeline(overview: &SessionOverview) -> impl Iterator<Item = &TimelineEntry> {
    overview.timeline.iter().filter(|e| e.kind != "message")
}

/// One timeline entry: its line, then its error, the runs it started and the findings that
/// became evident on it. Quoted: recorded text (prompts, tool names, commands, paths, errors)
/// quoted, span id prefixes on tool calls (for `get_spans`), findings named by number.
pub fn timeline_entry_text(
    overview: &SessionOverview,
    entry: &TimelineEntry,
    origin: u64,
    options: &TextOptions,
) -> String {
    let offset = format!(
        "+{}",
        format_offset(entry.start_unix_nano.saturating_sub(origin))
    );
    let indent = "  ".repeat(entry.depth + usize::from(entry.kind != "turn"));
    let line = match entry.kind {
        "turn" => format!(
            "▶ {}  ({} in, {} out)",
            options.data(&truncate(&entry.label, 100)),
            tokens(entry.input_tokens.unwrap_or(0)),
            tokens(entry.output_tokens.unwrap_or(0))
        ),
        "agent" => format!("◆ sub-agent: {}", options.data(&truncate(&entry.label, 90))),
        _ => {
            let mark = if entry.outcome == Some("failed") {
                "✗"
            } else {
                "✓"
            };
            let what = match (&entry.command, &entry.path) {
                (Some(command), _) => {
                    let first = truncate(command.lines().next().unwrap_or(""), 90);
                    if options.quote_data {
                        quote(&first)
                    } else {
                        // Escaped, a backtick in the command cannot close the code span.
                        format!("`{}`", escape(&first))
                    }
                }
                (None, Some(path)) => options.data(path),
                // A note (a `thought` event): its first line.
                (None, None) => match (&entry.action, &entry.text) {
                    (Some(action), Some(text)) if action == "note" => {
                        options.data(&truncate(text.lines().next().unwrap_or(""), 90))
                    }
                    _ => String::new(),
                },
            };
            let exit = entry
                .exit_code
                .filter(|c| *c != 0)
                .map(|c| format!(" exit {c}"))
                .unwrap_or_default();
            if options.quote_data {
                let what = if what.is_empty() {
                    what
                } else {
                    format!(" {what}")
                };
                format!(
                    "{mark} {}{what}{exit}  {} [{}]",
                    quote(&entry.label),
                    format_duration(entry.duration_ns),
                    &entry.span_id[..8]
                )
            } else {
                format!(
                    "{mark} {} {what}{exit}  {}",
                    escape(&entry.label),
                    format_duration(entry.duration_ns)
                )
            }
        }
    };
    let mut out = format!("{offset:>9}  {indent}{line}\n");
    if let Some(error) = &entry.error {
        out.push_str(&format!(
            "{:>9}  {indent}    {}\n",
            "",
            options.data(&truncate(error, 110))
        ));
    }
    for run in &entry.linked_runs {
        out.push_str(&format!(
            "{:>9}  {indent}    ↳ run trace {run} ({})\n",
            "",
            if options.quote_data {
                format!("get_trace(trace_id=\"{}\")", &run[..8])
            } else {
                format!("devtrace show {}", &run[..8])
            }
        ));
    }
    for finding in &entry.findings {
        if let Some(f) = overview.findings.get(*finding) {
            let what = if options.quote_data {
                format!("finding {} ({})", finding + 1, f.kind.as_str())
            } else {
                options.words(&f.title)
            };
            out.push_str(&format!("{:>9}  {indent}    ⚑ {what}\n", ""));
        }
    }
    out
}

/// A session finding as a few lines: its title (recorded text inside it already quoted), the
/// recommendation (devtrace's own) and its saving, read as time lost in the session, not per run.
pub fn session_finding_text(finding: &Finding, index: usize, options: &TextOptions) -> String {
    // Titles already quote the recorded text they carry (`devtrace_model::recorded`); quoting the
    // whole title again would escape those quotes and bury the recorded parts.
    finding_text_worded(finding, index, options, SavingWording::TimeLost)
}

/// Counts of findings per kind, for summaries.
pub fn finding_kinds(findings: &[Finding]) -> BTreeMap<&'static str, usize> {
    let mut counts = BTreeMap::new();
    for finding in findings {
        *counts.entry(finding.kind.as_str()).or_default() += 1;
    }
    counts
}
