//! `devtrace errors`: errors grouped by fingerprint, with what distinguishes the failing runs
//! from the passing ones; `devtrace errors show`: the causal chain of one error.

use super::analysis::{MAX_TRACES, load, one, recent, since};
use crate::cli::{ErrorsArgs, ErrorsCommand};
use crate::output::{print_json, print_stdout, terminal_width};
use anyhow::{Result, bail};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::errors::{
    Attribute, CausalChain, ChainSpan, ConsumedReason, Correlation, ErrorGroup, FrameInfo,
    causal_chain, error_key, exception_frames, first_error, group_errors, render_number,
};
use devtrace_model::{AnyValue, TraceId, semconv};
use devtrace_query::text::truncate;
use devtrace_query::timefmt::{format_duration, format_timestamp};
use devtrace_store::{Store, StoreError, TraceQuery};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};
use std::process::ExitCode;

/// Traces with errors looked at when `--last` is not given.
pub const DEFAULT_LAST: usize = 200;
/// Attributes of the failing span shown in text (JSON has them all).
const ATTRIBUTES_SHOWN: usize = 20;

pub fn run(store: &dyn Store, args: &ErrorsArgs) -> Result<ExitCode> {
    match &args.command {
        None => list(store, args),
        Some(ErrorsCommand::Show { target }) => show(store, args, target),
    }
}

/// The traces in scope: the most recent traces with errors plus the recent runs of their root
/// operations (so failing runs can be compared with passing ones); with `--operation`, the
/// most recent traces containing it.
fn load_scope(store: &dyn Store, args: &ErrorsArgs) -> Result<Vec<AnalyzedTrace>> {
    if let Some(operation) = &args.operation {
        return recent(store, &args.scope, Some(operation), DEFAULT_LAST);
    }
    let limit = args.scope.last.unwrap_or(DEFAULT_LAST).clamp(1, MAX_TRACES);
    let since = since(&args.scope)?;
    let failing = store.list_traces(&TraceQuery {
        errors_only: true,
        since_unix_nano: since,
        limit,
        ..Default::default()
    })?;
    let mut seen: HashSet<TraceId> = failing.iter().map(|s| s.trace_id).collect();
    let roots: BTreeSet<String> = failing.iter().map(|s| s.root_name.clone()).collect();
    let mut summaries = failing;
    for root in roots {
        for summary in store.traces_with_operation(&root, since, limit)? {
            if summaries.len() >= MAX_TRACES {
                break;
            }
            if seen.insert(summary.trace_id) {
                summaries.push(summary);
            }
        }
    }
    load(store, &summaries)
}

/// What limited the traces looked at: "traces containing X", "since 2h".
fn scope_parts(args: &ErrorsArgs) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(operation) = &args.operation {
        parts.push(format!("traces containing {operation}"));
    }
    if let Some(since) = &args.scope.since {
        parts.push(format!("since {since}"));
    }
    parts
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn list(store: &dyn Store, args: &ErrorsArgs) -> Result<ExitCode> {
    let traces = load_scope(store, args)?;
    let groups = group_errors(&traces);
    let failing: HashSet<TraceId> = groups
        .iter()
        .flat_map(|g| g.occurrences.iter().map(|o| o.trace_id))
        .collect();
    let errors: usize = groups.iter().map(|g| g.count).sum();
    if args.json {
        print_json(&json!({
            "scope": {
                "operation": args.operation,
                "since": args.scope.since,
                "last": args.scope.last.unwrap_or(DEFAULT_LAST).clamp(1, MAX_TRACES),
            },
            "traces_analysed": traces.len(),
            "failing_traces": failing.len(),
            "errors": errors,
            "groups": groups,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let parts = scope_parts(args);
    if groups.is_empty() {
        let scope = if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        };
        print_stdout(&if traces.is_empty() {
            format!("no traces with errors{scope}\n")
        } else {
            format!(
                "no errors in {}{scope}\n",
                plural(traces.len(), "trace", "traces")
            )
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let scope: String = parts.iter().map(|p| format!(", {p}")).collect();
    let width = terminal_width();
    let mut out = format!(
        "{}: {} in {} ({} analysed{scope})\n\n",
        plural(groups.len(), "error fingerprint", "error fingerprints"),
        plural(errors, "error", "errors"),
        plural(failing.len(), "failing trace", "failing traces"),
        plural(traces.len(), "trace", "traces"),
    );
    let operation_width = width.saturating_sub(79).max(16);
    out.push_str(&format!(
        "{:<16}  {:>5}  {:>6}  {:<19}  {:<19}  OPERATION\n",
        "FINGERPRINT", "COUNT", "TRACES", "FIRST SEEN (UTC)", "LAST SEEN (UTC)"
    ));
    for group in &groups {
        out.push_str(&format!(
            "{:<16}  {:>5}  {:>6}  {:<19}  {:<19}  {}\n",
            group.fingerprint,
            group.count,
            group.traces,
            format_timestamp(group.first_seen_unix_nano),
            format_timestamp(group.last_seen_unix_nano),
            truncate(&group.operation, operation_width),
        ));
        out.push_str(&format!(
            "  {}\n",
            truncate(&headline(group), width.saturating_sub(2))
        ));
        match (&group.correlation, &group.no_correlation_reason) {
            (Some(c), _) => out.push_str(&format!("  → {}\n", c.text)),
            (None, Some(reason)) => out.push_str(&format!("  · {reason}\n")),
            (None, None) => {}
        }
    }
    out.push_str("\n`devtrace errors show <fingerprint>` gives the causal chain of one\n");
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// "TimeoutError: LLM call timed out after 30s".
fn headline(group: &ErrorGroup) -> String {
    let message = group.example_message.lines().next().unwrap_or("");
    match (&group.exception_type, message.is_empty()) {
        (Some(t), false) => format!("{t}: {message}"),
        (Some(t), true) => t.clone(),
        (None, false) => message.to_owned(),
        (None, true) => "error (no message)".to_owned(),
    }
}

fn show(store: &dyn Store, args: &ErrorsArgs, target: &str) -> Result<ExitCode> {
    let target = target.trim();
    let traces = load_scope(store, args)?;
    let groups = group_errors(&traces);
    let lower = target.to_ascii_lowercase();
    let matching: Vec<&ErrorGroup> = if lower.len() >= 4 {
        groups
            .iter()
            .filter(|g| g.fingerprint.starts_with(&lower))
            .collect()
    } else {
        Vec::new()
    };
    let (trace, failing, group) = match matching.as_slice() {
        [group] => {
            let found = traces
                .iter()
                .find(|t| t.trace_id == group.example.trace_id)
                .and_then(|t| {
                    t.spans
                        .spans
                        .iter()
                        .position(|s| s.span_id == group.example.span_id)
                        .map(|i| (t.clone(), i))
                });
            let Some((trace, failing)) = found else {
                bail!(
                    "the example trace {} of error {} is no longer stored; run `devtrace errors` again",
                    group.example.trace_id,
                    group.fingerprint
                );
            };
            (trace, failing, Some(*group))
        }
        [] => {
            let trace = match one(store, target) {
                Ok(trace) => trace,
                Err(error) => match error.downcast_ref::<StoreError>() {
                    Some(StoreError::TraceNotFound(_) | StoreError::InvalidTraceId(_)) => bail!(
                        "no error fingerprint or trace id starts with {target:?} (looked at {}); run `devtrace errors` to list the fingerprints, or widen the search with `devtrace errors --since 30d show {target}`",
                        plural(traces.len(), "trace", "traces")
                    ),
                    _ => return Err(error),
                },
            };
            let Some(failing) = first_error(&trace) else {
                bail!(
                    "trace {} has no errors; `devtrace show {}` draws it",
                    trace.trace_id,
                    trace.trace_id
                );
            };
            let fingerprint = error_key(trace.span(failing)).map(|k| k.fingerprint);
            let group = groups
                .iter()
                .find(|g| Some(&g.fingerprint) == fingerprint.as_ref());
            (trace, failing, group)
        }
        many => {
            let list: Vec<&str> = many.iter().map(|g| g.fingerprint.as_str()).collect();
            bail!(
                "{target:?} matches several error fingerprints ({}); give more characters",
                list.join(", ")
            );
        }
    };
    let chain = causal_chain(&trace, failing);
    let here = group
        .and_then(|g| g.correlation.as_ref())
        .and_then(|c| correlated_value(&trace, failing, c));
    if args.json {
        print_json(&json!({"group": group, "chain": chain, "correlated_value": here}))?;
    } else {
        print_stdout(&render_chain(group, &chain, here.as_deref()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The correlated feature's value in this trace ("734.2 KB"), to set next to the rule.
fn correlated_value(trace: &AnalyzedTrace, failing: usize, c: &Correlation) -> Option<String> {
    let value = match &c.span_name {
        Some(name) => trace
            .spans
            .spans
            .iter()
            .filter(|s| &s.name == name)
            .find_map(|s| s.attr(&c.attribute))?,
        None => {
            let span = trace.spans.spans.get(failing)?;
            let resource = trace.spans.resources.get(span.resource as usize)?;
            devtrace_model::find_attr(&resource.attributes, &c.attribute)?
        }
    };
    Some(match value {
        AnyValue::Int(i) if c.threshold.is_some() => render_number(&c.attribute, *i as f64),
        AnyValue::Double(d) if c.threshold.is_some() => render_number(&c.attribute, *d),
        other => other.to_display_string(),
    })
}

fn indent_value(value: &str, indent: usize) -> String {
    value.replace('\n', &format!("\n{}", " ".repeat(indent)))
}

fn attribute_lines(out: &mut String, attributes: &[Attribute], indent: usize) {
    for a in attributes {
        out.push_str(&format!(
            "{}{} = {}\n",
            " ".repeat(indent),
            a.key,
            indent_value(&a.value, indent + 2)
        ));
    }
}

/// Lines of pretty JSON (or the text as it is) shown for a state snapshot.
const STATE_LINES_SHOWN: usize = 40;

/// Whether an exception attribute is rendered as part of a frame or the state block.
fn rendered_elsewhere(key: &str) -> bool {
    key == semconv::STATE_SNAPSHOT
        || !exception_frames(&[devtrace_model::KeyValue::new(key, "")]).is_empty()
}

/// "locals of parse_plan (taskplan/planner.py:19)", or "locals" when the frame is unnamed.
fn frame_heading(frame: &FrameInfo) -> String {
    match (&frame.function, &frame.file, frame.line) {
        (Some(function), Some(file), Some(line)) => format!("locals of {function} ({file}:{line})"),
        (Some(function), Some(file), None) => format!("locals of {function} ({file})"),
        (Some(function), None, _) => format!("locals of {function}"),
        _ => "locals".to_owned(),
    }
}

fn render_frames(out: &mut String, frames: &[FrameInfo]) {
    for frame in frames {
        if frame.locals.is_empty() && frame.omitted_locals == 0 {
            continue;
        }
        out.push_str(&format!("  {}\n", frame_heading(frame)));
        for local in &frame.locals {
            let name = match &local.type_name {
                Some(kind) => format!("{}: {kind}", local.name),
                None => local.name.clone(),
            };
            out.push_str(&format!("    {name} = {}\n", indent_value(&local.value, 6)));
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

/// The state snapshot as indented JSON, bounded in lines.
pub fn render_state(out: &mut String, heading: &str, state: &str, indent: usize) {
    let pretty = serde_json::from_str::<serde_json::Value>(state)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| state.to_owned());
    let pad = " ".repeat(indent);
    out.push_str(&format!("{pad}{heading}\n"));
    let lines: Vec<&str> = pretty.lines().collect();
    for line in lines.iter().take(STATE_LINES_SHOWN) {
        out.push_str(&format!("{pad}  {line}\n"));
    }
    if lines.len() > STATE_LINES_SHOWN {
        out.push_str(&format!(
            "{pad}  … {} more lines (--json has the whole snapshot)\n",
            lines.len() - STATE_LINES_SHOWN
        ));
    }
}

/// A consumed span's details; a state diff is drawn as its lines.
fn consumed_details(out: &mut String, details: &[Attribute]) {
    let find = |key: &str| details.iter().find(|a| a.key == key);
    let Some(diff) = find(semconv::STATE_DIFF) else {
        attribute_lines(out, details, 6);
        return;
    };
    let name = find(semconv::STATE_NAME).map_or("state", |a| a.value.as_str());
    let changes = find(semconv::STATE_CHANGES)
        .and_then(|a| a.value.parse::<usize>().ok())
        .unwrap_or_else(|| diff.value.lines().count());
    out.push_str(&format!(
        "      {name} changed ({}):\n",
        plural(changes, "change", "changes")
    ));
    for line in diff.value.lines() {
        out.push_str(&format!("        {line}\n"));
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
    attribute_lines(out, &rest, 6);
}

fn span_line(span: &ChainSpan, depth: usize, width: usize, note: &str) -> String {
    let label = format!("{}{}", "  ".repeat(depth), span.name);
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

pub fn render_chain(group: Option<&ErrorGroup>, chain: &CausalChain, here: Option<&str>) -> String {
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
    out.push_str(&format!("{what} in {}", chain.failing.name));
    if !message.is_empty() {
        out.push_str(&format!(": {}", indent_value(&message, 2)));
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
                    out.push_str(&format!("→ {}", c.text));
                    if let Some(value) = here {
                        out.push_str(&format!(" (this run: {value})"));
                    }
                    out.push('\n');
                }
                (None, Some(reason)) => out.push_str(&format!("· {reason}\n")),
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
        .map(|(d, s)| 2 * d + s.name.chars().count())
        .max()
        .unwrap_or(10)
        .clamp(10, 60);
    out.push_str("\nwhere it failed\n");
    for (d, ancestor) in chain.ancestors.iter().enumerate() {
        out.push_str(&span_line(ancestor, d, width, ""));
    }
    out.push_str(&span_line(&chain.failing, depth, width, " failed here"));
    let attribute_indent = 2 * depth + 6;
    attribute_lines(
        &mut out,
        &chain.attributes[..chain.attributes.len().min(ATTRIBUTES_SHOWN)],
        attribute_indent,
    );
    if chain.attributes.len() > ATTRIBUTES_SHOWN {
        out.push_str(&format!(
            "{}… {} more attributes (--json has them all)\n",
            " ".repeat(attribute_indent),
            chain.attributes.len() - ATTRIBUTES_SHOWN
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
                consumed.span.name,
                reasons.join(", "),
                format_duration(consumed.span.duration_nanos),
                format_duration(consumed.ended_before_nanos),
                if consumed.span.error { "  ✗" } else { "" }
            ));
            consumed_details(&mut out, &consumed.details);
        }
    }

    // Exceptions: stack trace verbatim, then locals and any other attribute.
    for exception in &chain.exceptions {
        let offset = exception
            .time_unix_nano
            .saturating_sub(chain.failing.start_unix_nano);
        out.push_str(&format!(
            "\nexception {}{} at +{}\n",
            exception.exception_type.as_deref().unwrap_or("(no type)"),
            if exception.message.is_empty() {
                String::new()
            } else {
                format!(": {}", indent_value(&exception.message, 2))
            },
            format_duration(offset)
        ));
        for line in &exception.stacktrace {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str(&format!("  {line}\n"));
            }
        }
        render_frames(&mut out, &exception.frames);
        if let Some(state) = &exception.state_snapshot {
            render_state(&mut out, "state when it failed", state, 2);
        }
        let others: Vec<Attribute> = exception
            .attributes
            .iter()
            .filter(|a| !rendered_elsewhere(&a.key))
            .cloned()
            .collect();
        attribute_lines(&mut out, &others, 2);
    }

    if !chain.events.is_empty() {
        out.push_str("\nevents\n");
        for event in &chain.events {
            let attrs: Vec<String> = event
                .attributes
                .iter()
                .map(|a| format!("{}={}", a.key, a.value))
                .collect();
            let line = format!(
                "  +{}  {}  {}",
                format_duration(
                    event
                        .time_unix_nano
                        .saturating_sub(chain.failing.start_unix_nano)
                ),
                event.name,
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
                .map(|a| format!("{}={}", a.key, a.value))
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
