//! Errors as text: the grouped report and the causal chain of one error, for the CLI (plain)
//! and the MCP server (trace data quoted, see [`TextOptions::quote_data`]).

use super::{TextOptions, truncate};
use crate::errors::ErrorsReport;
use crate::timefmt::{format_duration, format_timestamp};
use devtrace_analyze::errors::{Attribute, CausalChain, ChainSpan, ConsumedReason, ErrorGroup};

/// Attributes of the failing span shown (JSON has them all).
const ATTRIBUTES_SHOWN: usize = 20;

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
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
    let operation_width = width.saturating_sub(79).max(16);
    out.push_str(&format!(
        "{:<16}  {:>5}  {:>6}  {:<19}  {:<19}  OPERATION\n",
        "FINGERPRINT", "COUNT", "TRACES", "FIRST SEEN (UTC)", "LAST SEEN (UTC)"
    ));
    for group in groups {
        out.push_str(&format!(
            "{:<16}  {:>5}  {:>6}  {:<19}  {:<19}  {}\n",
            group.fingerprint,
            group.count,
            group.traces,
            format_timestamp(group.first_seen_unix_nano),
            format_timestamp(group.last_seen_unix_nano),
            options.data(&truncate(&group.operation, operation_width)),
        ));
        out.push_str(&format!(
            "  {}\n",
            options.data(&truncate(&headline(group), width.saturating_sub(2)))
        ));
        match (&group.correlation, &group.no_correlation_reason) {
            (Some(c), _) => out.push_str(&format!(
                "  → {}\n",
                options.words(&c.text, &[&group.operation, &group.root_operation])
            )),
            (None, Some(reason)) => out.push_str(&format!(
                "  · {}\n",
                options.words(reason, &[&group.operation, &group.root_operation])
            )),
            (None, None) => {}
        }
    }
    out
}

fn indent_value(value: &str, indent: usize) -> String {
    value.replace('\n', &format!("\n{}", " ".repeat(indent)))
}

fn attribute_lines(
    out: &mut String,
    attributes: &[Attribute],
    indent: usize,
    options: &TextOptions,
) {
    for a in attributes {
        out.push_str(&format!(
            "{}{} = {}\n",
            " ".repeat(indent),
            a.key,
            options.value(&indent_value(&a.value, indent + 2))
        ));
    }
}

/// A local variable's name, when the attribute records one.
fn local_name(key: &str) -> Option<&str> {
    key.strip_prefix("exception.locals.")
        .or_else(|| key.strip_prefix("exception.local."))
        .or_else(|| key.strip_prefix("locals."))
        .or_else(|| key.split_once(".locals.").map(|(_, name)| name))
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
        out.push_str(&format!(": {}", options.value(&indent_value(&message, 2))));
    }
    out.push('\n');
    match group {
        Some(g) => {
            out.push_str(&format!(
                "fingerprint {}: {} in {}, first {}, last {} UTC\n",
                g.fingerprint,
                plural(g.count, "time", "times"),
                plural(g.traces, "trace", "traces"),
                format_timestamp(g.first_seen_unix_nano),
                format_timestamp(g.last_seen_unix_nano),
            ));
            match (&g.correlation, &g.no_correlation_reason) {
                (Some(c), _) => {
                    out.push_str(&format!(
                        "→ {}",
                        options.words(&c.text, &[&g.operation, &g.root_operation])
                    ));
                    if let Some(value) = here {
                        out.push_str(&format!(" (this run: {value})"));
                    }
                    out.push('\n');
                }
                (None, Some(reason)) => out.push_str(&format!(
                    "· {}\n",
                    options.words(reason, &[&g.operation, &g.root_operation])
                )),
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
        "trace {}  span {}  at {} UTC\n",
        chain.trace_id,
        chain.failing.span_id,
        format_timestamp(chain.failing.start_unix_nano)
    ));

    // The failing span under its ancestors.
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
        &mut out,
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

    // What it consumed.
    if chain.consumed.is_empty() {
        out.push_str(
            "\nwhat it consumed: no LLM call, state change or linked span ended before it started\n",
        );
    } else {
        out.push_str("\nwhat it consumed (ended before it started, most recent first)\n");
        for consumed in &chain.consumed {
            let reasons: Vec<&str> = consumed.reasons.iter().map(|r| reason_label(*r)).collect();
            out.push_str(&format!(
                "  {}  {}  {}, ended {} before{}\n",
                options.data(&consumed.span.name),
                reasons.join(", "),
                format_duration(consumed.span.duration_nanos),
                format_duration(consumed.ended_before_nanos),
                if consumed.span.error { "  ✗" } else { "" }
            ));
            attribute_lines(&mut out, &consumed.details, 6, options);
        }
    }

    // Exceptions: stack trace verbatim, then locals and any other attribute.
    for exception in &chain.exceptions {
        let offset = exception
            .time_unix_nano
            .saturating_sub(chain.failing.start_unix_nano);
        out.push_str(&format!(
            "\nexception {}{} at +{}\n",
            options.data(exception.exception_type.as_deref().unwrap_or("(no type)")),
            if exception.message.is_empty() {
                String::new()
            } else {
                format!(": {}", options.value(&indent_value(&exception.message, 2)))
            },
            format_duration(offset)
        ));
        for line in &exception.stacktrace {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("  {}\n", options.value(line)));
            }
        }
        let (locals, others): (Vec<&Attribute>, Vec<&Attribute>) = exception
            .attributes
            .iter()
            .partition(|a| local_name(&a.key).is_some());
        if !locals.is_empty() {
            out.push_str("  locals\n");
            for local in locals {
                out.push_str(&format!(
                    "    {} = {}\n",
                    local_name(&local.key).unwrap_or(&local.key),
                    options.value(&indent_value(&local.value, 6))
                ));
            }
        }
        let others: Vec<Attribute> = others.into_iter().cloned().collect();
        attribute_lines(&mut out, &others, 2, options);
    }

    if !chain.events.is_empty() {
        out.push_str("\nevents\n");
        for event in &chain.events {
            let attrs: Vec<String> = event
                .attributes
                .iter()
                .map(|a| format!("{}={}", a.key, options.value(&a.value)))
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
                .map(|a| format!("{}={}", a.key, options.value(&a.value)))
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
    out
}
