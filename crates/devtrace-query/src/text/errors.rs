//! Errors as text: the grouped report and the causal chain of one error, for the CLI (plain)
//! and the MCP server (trace data quoted, see [`TextOptions::quote_data`]).

use super::{TextOptions, truncate};
use crate::errors::ErrorsReport;
use crate::timefmt::{format_duration, format_timestamp, format_timestamp_zoned, zone_name};
use devtrace_analyze::errors::{
    Attribute, CausalChain, ChainSpan, ConsumedReason, ErrorGroup, ExceptionInfo, FrameInfo,
    exception_frames,
};
use devtrace_model::{KeyValue, semconv};

/// Attributes of the failing span shown (JSON has them all).
const ATTRIBUTES_SHOWN: usize = 20;

fn plural(n: usize, one: &str, many: &str) -> String {
    super::counted(n as u64, one, many)
}

/// "TimeoutError: LLM call timed out after 30s".
pub fn headline(group: &ErrorGroup) -> String {
    let message = group.example_message.lines().next().unwrap_or("");
    match (&group.exception_type, message.is_empty()) {
        (Some(t), false) => format!("{t}: {message}"),
        (Some(t), true) => t.clone(),
        (None, false) => message.to_owned(),
        (None, true) => "error (no message)".to_owned(),
    }
}

/// The grouped report: a header line, then one block per fingerprint. `scope` lists what
/// limited the traces looked at ("traces containing X", "since 2h").
pub fn render_report(report: &ErrorsReport, scope: &[String], options: &TextOptions) -> String {
    let groups = &report.groups;
    if groups.is_empty() {
        let scope = if scope.is_empty() {
            String::new()
        } else {
            format!(" ({})", scope.join(", "))
        };
        return if report.traces_analysed == 0 {
            format!("no traces with errors{scope}\n")
        } else {
            format!(
                "no errors in {}{scope}\n",
                plural(report.traces_analysed, "trace", "traces")
            )
        };
    }
    let scope: String = scope.iter().map(|p| format!(", {p}")).collect();
    let width = options.width;
    let mut out = format!(
        "{}: {} in {} ({} analysed{scope})\n\n",
        plural(groups.len(), "error fingerprint", "error fingerprints"),
        plural(report.errors, "error", "errors"),
        plural(report.failing_traces, "failing trace", "failing traces"),
        plural(report.traces_analysed, "trace", "traces"),
    );
    use super::fit::{Align, Column, Fit, Table};
    let zone = zone_name();
    let mut table = Table::new(vec![
        Column::new("FINGERPRINT", Align::Left, Fit::Keep),
        Column::new("COUNT", Align::Right, Fit::Optional(3)),
        Column::new("TRACES", Align::Right, Fit::Optional(1)),
        Column::new(
            format!("FIRST SEEN ({zone})"),
            Align::Left,
            Fit::Optional(0),
        ),
        Column::new(format!("LAST SEEN ({zone})"), Align::Left, Fit::Optional(2)),
        // Quoted for an assistant, a name is kept whole: a cut would drop its closing quote.
        Column::new(
            "OPERATION",
            Align::Left,
            if options.quote_data {
                Fit::Keep
            } else {
                Fit::Shrink { min: 16 }
            },
        ),
    ]);
    for group in groups {
        table.row(vec![
            group.fingerprint.clone().into(),
            group.count.to_string().into(),
            group.traces.to_string().into(),
            format_timestamp(group.first_seen_unix_nano).into(),
            format_timestamp(group.last_seen_unix_nano).into(),
            options.data(&group.operation).into(),
        ]);
    }
    let rendered = table.render(width, &|_, text| text.to_owned());
    // The heading, then each group's row with its headline and what distinguishes it.
    let mut lines = rendered.lines();
    out.push_str(lines.next().unwrap_or_default());
    out.push('\n');
    for (group, row) in groups.iter().zip(lines) {
        out.push_str(row);
        out.push('\n');
        out.push_str(&format!(
            "  {}\n",
            options.data(&truncate(&headline(group), width.saturating_sub(2)))
        ));
        match (&group.correlation, &group.no_correlation_reason) {
            (Some(c), _) => out.push_str(&format!("  → {}\n", options.words(&c.text))),
            (None, Some(reason)) => out.push_str(&format!("  · {}\n", options.words(reason))),
            (None, None) => {}
        }
    }
    out
}

fn attribute_lines(
    out: &mut String,
    attributes: &[Attribute],
    indent: usize,
    options: &TextOptions,
) {
    for a in attributes {
        out.push_str(&format!(
            "{}{} ={}\n",
            " ".repeat(indent),
            options.key(&a.key),
            options.block(&a.value, indent + 2)
        ));
    }
}

/// Lines of pretty JSON (or the text as it is) shown for a state snapshot.
const STATE_LINES_SHOWN: usize = 40;

/// Whether an exception attribute is rendered as part of a frame or the state block.
fn rendered_elsewhere(key: &str) -> bool {
    key == semconv::STATE_SNAPSHOT || !exception_frames(&[KeyValue::new(key, "")]).is_empty()
}

/// "locals of parse_plan (taskplan/planner.py:19)", or "locals" when the frame is unnamed.
fn frame_heading(frame: &FrameInfo, options: &TextOptions) -> String {
    let function = frame.function.as_deref().map(|f| options.data(f));
    let file = frame.file.as_deref().map(|f| options.data(f));
    match (function, file, frame.line) {
        (Some(function), Some(file), Some(line)) => format!("locals of {function} ({file}:{line})"),
        (Some(function), Some(file), None) => format!("locals of {function} ({file})"),
        (Some(function), None, _) => format!("locals of {function}"),
        _ => "locals".to_owned(),
    }
}

/// Each recorded frame's locals (`name: type = repr`), innermost frame first.
fn render_frames(out: &mut String, frames: &[FrameInfo], options: &TextOptions) {
    for frame in frames {
        if frame.locals.is_empty() && frame.omitted_locals == 0 {
            continue;
        }
        out.push_str(&format!("  {}\n", frame_heading(frame, options)));
        for local in &frame.locals {
            let name = match &local.type_name {
                Some(kind) => format!("{}: {}", options.data(&local.name), options.data(kind)),
                None => options.data(&local.name),
            };
            out.push_str(&format!("    {name} ={}\n", options.block(&local.value, 6)));
        }
        if frame.omitted_locals > 0 {
            let n = frame.omitted_locals;
            out.push_str(&format!(
                "    … {n} more {} not recorded\n",
                if n == 1 { "local" } else { "locals" }
            ));
        }
    }
}

/// A state snapshot as indented JSON, bounded in lines.
pub fn render_state(
    out: &mut String,
    heading: &str,
    state: &str,
    indent: usize,
    options: &TextOptions,
) {
    // Pretty JSON lines start with JSON syntax and keep every string in quotes; a state that
    // is not JSON is recorded lines, shown as such.
    let pretty = serde_json::from_str::<serde_json::Value>(state)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    let pad = " ".repeat(indent);
    out.push_str(&format!("{pad}{heading}\n"));
    let lines: Vec<&str> = pretty.as_deref().unwrap_or(state).lines().collect();
    for line in lines.iter().take(STATE_LINES_SHOWN) {
        let shown = match pretty {
            Some(_) => options.value(line),
            None => options.line(line),
        };
        out.push_str(&format!("{pad}  {shown}\n"));
    }
    if lines.len() > STATE_LINES_SHOWN {
        out.push_str(&format!(
            "{pad}  … {} more lines ({})\n",
            lines.len() - STATE_LINES_SHOWN,
            options.more_attributes_hint,
        ));
    }
}

/// A consumed span's details; a state diff is drawn as its lines.
fn consumed_details(out: &mut String, details: &[Attribute], options: &TextOptions) {
    let find = |key: &str| details.iter().find(|a| a.key == key);
    let Some(diff) = find(semconv::STATE_DIFF) else {
        attribute_lines(out, details, 6, options);
        return;
    };
    let name = find(semconv::STATE_NAME).map_or("state".to_owned(), |a| options.data(&a.value));
    let changes = find(semconv::STATE_CHANGES)
        .and_then(|a| a.value.parse::<usize>().ok())
        .unwrap_or_else(|| diff.value.lines().count());
    out.push_str(&format!(
        "      {name} changed ({}):\n",
        plural(changes, "change", "changes")
    ));
    for line in diff.value.lines() {
        out.push_str(&format!("        {}\n", options.line(line)));
    }
    let rest: Vec<Attribute> = details
        .iter()
        .filter(|a| {
            ![
                semconv::STATE_DIFF,
                semconv::STATE_NAME,
                semconv::STATE_CHANGES,
            ]
            .contains(&a.key.as_str())
        })
        .cloned()
        .collect();
    attribute_lines(out, &rest, 6, options);
}

fn span_line(
    span: &ChainSpan,
    depth: usize,
    width: usize,
    note: &str,
    options: &TextOptions,
) -> String {
    let label = format!("{}{}", "  ".repeat(depth), options.data(&span.name));
    let mark = if span.error { "✗" } else { "" };
    let line = format!(
        "  {:<width$}  {:>8}  {mark}{note}",
        truncate(&label, width),
        format_duration(span.duration_nanos)
    );
    format!("{}\n", line.trim_end())
}

fn reason_label(reason: ConsumedReason) -> &'static str {
    match reason {
        ConsumedReason::Llm => "LLM call",
        ConsumedReason::StateChange => "state change",
        ConsumedReason::Link => "linked",
        ConsumedReason::SameLock => "same lock",
        ConsumedReason::SharedValue => "a value passed on",
        ConsumedReason::StateNamesIt => "its state change names it",
    }
}

/// The causal chain of one error: what failed, its group and correlation, where it failed,
/// what it consumed, the exceptions with stack traces and locals, events and links.
pub fn render_chain(
    group: Option<&ErrorGroup>,
    chain: &CausalChain,
    here: Option<&str>,
    options: &TextOptions,
) -> String {
    let mut out = String::new();
    render_heading(&mut out, group, chain, here, options);
    render_where(&mut out, chain, options);
    render_before(&mut out, chain, options);
    for exception in &chain.exceptions {
        render_exception(&mut out, exception, chain.failing.start_unix_nano, options);
    }
    render_events_and_links(&mut out, chain, options);
    out
}

/// What failed and where, its fingerprint and the correlation its group found.
fn render_heading(
    out: &mut String,
    group: Option<&ErrorGroup>,
    chain: &CausalChain,
    here: Option<&str>,
    options: &TextOptions,
) {
    let (what, message) = match &chain.error {
        Some(key) => (
            key.exception_type
                .clone()
                .unwrap_or_else(|| "error".to_owned()),
            key.message.clone(),
        ),
        None => ("error".to_owned(), String::new()),
    };
    out.push_str(&format!(
        "{} in {}",
        options.data(&what),
        options.data(&chain.failing.name)
    ));
    if !message.is_empty() {
        out.push_str(&format!(":{}", options.block(&message, 2)));
    }
    out.push('\n');
    match group {
        Some(g) => {
            out.push_str(&format!(
                "fingerprint {}: {} in {}, first {}, last {}\n",
                g.fingerprint,
                plural(g.count, "time", "times"),
                plural(g.traces, "trace", "traces"),
                format_timestamp(g.first_seen_unix_nano),
                format_timestamp_zoned(g.last_seen_unix_nano),
            ));
            match (&g.correlation, &g.no_correlation_reason) {
                (Some(c), _) => {
                    out.push_str(&format!("→ {}", options.words(&c.text)));
                    if let Some(value) = here {
                        out.push_str(&format!(" (this run: {value})"));
                    }
                    out.push('\n');
                }
                (None, Some(reason)) => out.push_str(&format!("· {}\n", options.words(reason))),
                (None, None) => {}
            }
        }
        None => {
            if let Some(key) = &chain.error {
                out.push_str(&format!("fingerprint {}\n", key.fingerprint));
            }
        }
    }
    out.push_str(&format!(
        "trace {}  span {}  at {}\n",
        chain.trace_id,
        chain.failing.span_id,
        format_timestamp_zoned(chain.failing.start_unix_nano)
    ));
}

/// The failing span under its ancestors, with its attributes.
fn render_where(out: &mut String, chain: &CausalChain, options: &TextOptions) {
    let depth = chain.ancestors.len();
    let width = chain
        .ancestors
        .iter()
        .chain(std::iter::once(&chain.failing))
        .enumerate()
        .map(|(d, s)| 2 * d + options.data(&s.name).chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 60);
    out.push_str("\nwhere it failed\n");
    for (d, ancestor) in chain.ancestors.iter().enumerate() {
        out.push_str(&span_line(ancestor, d, width, "", options));
    }
    out.push_str(&span_line(
        &chain.failing,
        depth,
        width,
        " failed here",
        options,
    ));
    let attribute_indent = 2 * depth + 6;
    attribute_lines(
        out,
        &chain.attributes[..chain.attributes.len().min(ATTRIBUTES_SHOWN)],
        attribute_indent,
        options,
    );
    if chain.attributes.len() > ATTRIBUTES_SHOWN {
        out.push_str(&format!(
            "{}… {} more attributes ({})\n",
            " ".repeat(attribute_indent),
            chain.attributes.len() - ATTRIBUTES_SHOWN,
            options.more_attributes_hint,
        ));
    }
}

/// What came before it: used (the trace shows it) or merely earlier.
fn render_before(out: &mut String, chain: &CausalChain, options: &TextOptions) {
    if chain.consumed.is_empty() {
        out.push_str(
            "\nwhat came before: no LLM call, state change or span sharing a link, lock or value \
             with it ended before it started\n",
        );
    } else {
        out.push_str(
            "\nwhat came before (ended before it started, most recent first; \"used\" only where \
             the trace shows it)\n",
        );
        for consumed in &chain.consumed {
            let reasons: Vec<&str> = consumed.reasons.iter().map(|r| reason_label(*r)).collect();
            let relation = if consumed.used {
                let values: Vec<String> = consumed
                    .shared_values
                    .iter()
                    .map(|v| devtrace_model::recorded::quote_short(v, 60))
                    .collect();
                if values.is_empty() {
                    "its output was used".to_owned()
                } else {
                    format!("its output was used ({})", values.join(", "))
                }
            } else {
                format!(
                    "preceded it by {} (nothing in the trace shows it was used)",
                    format_duration(consumed.ended_before_nanos)
                )
            };
            out.push_str(&format!(
                "  {}  {}  {}, {relation}{}\n",
                options.data(&consumed.span.name),
                reasons.join(", "),
                format_duration(consumed.span.duration_nanos),
                if consumed.span.error { "  ✗" } else { "" }
            ));
            consumed_details(out, &consumed.details, options);
        }
    }
}

/// One exception: its stack trace verbatim, then locals and any other attribute.
fn render_exception(
    out: &mut String,
    exception: &ExceptionInfo,
    failed_at: u64,
    options: &TextOptions,
) {
    let offset = exception.time_unix_nano.saturating_sub(failed_at);
    // Several lines of message follow the heading as a block of their own (plain text).
    let multiline_block = !options.quote_data && exception.message.contains('\n');
    out.push_str(&format!(
        "\nexception {}{} at +{}{}\n",
        options.data(exception.exception_type.as_deref().unwrap_or("(no type)")),
        if exception.message.is_empty() || multiline_block {
            String::new()
        } else {
            format!(": {}", options.value(&exception.message))
        },
        format_duration(offset),
        exception
            .recorded_on
            .as_ref()
            .map_or(String::new(), |span| {
                format!(", as {} recorded it on the way up", options.data(span))
            })
    ));
    if multiline_block {
        out.push_str(&format!(
            "  message:{}\n",
            options.block(&exception.message, 4)
        ));
    }
    for line in &exception.stacktrace {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("  {}\n", options.line(line)));
        }
    }
    render_frames(out, &exception.frames, options);
    if let Some(state) = &exception.state_snapshot {
        render_state(out, "state when it failed", state, 2, options);
    }
    let others: Vec<Attribute> = exception
        .attributes
        .iter()
        .filter(|a| !rendered_elsewhere(&a.key))
        .cloned()
        .collect();
    attribute_lines(out, &others, 2, options);
}

/// The failing span's other events, and its links to spans in other traces.
fn render_events_and_links(out: &mut String, chain: &CausalChain, options: &TextOptions) {
    if !chain.events.is_empty() {
        out.push_str("\nevents\n");
        for event in &chain.events {
            let attrs: Vec<String> = event
                .attributes
                .iter()
                .map(|a| format!("{}={}", options.key(&a.key), options.value(&a.value)))
                .collect();
            let line = format!(
                "  +{}  {}  {}",
                format_duration(
                    event
                        .time_unix_nano
                        .saturating_sub(chain.failing.start_unix_nano)
                ),
                options.data(&event.name),
                attrs.join(" ")
            );
            out.push_str(&format!("{}\n", line.trim_end()));
        }
    }

    if !chain.external_links.is_empty() {
        out.push_str("\nlinked spans in other traces\n");
        for link in &chain.external_links {
            let attrs: Vec<String> = link
                .attributes
                .iter()
                .map(|a| format!("{}={}", options.key(&a.key), options.value(&a.value)))
                .collect();
            let line = format!(
                "  trace {} span {}  {}",
                link.trace_id,
                link.span_id,
                attrs.join(" ")
            );
            out.push_str(&format!("{}\n", line.trim_end()));
        }
    }
}
