//! `get_spans`: every attribute, event and link of a few spans, and what a span that waited
//! for another thread waited for (its causal links in words, [`devtrace_query::causal`]).

use super::get_trace::find_span;
use super::{ToolDef, ToolError, ToolResult, fit, tool};
use crate::budget;
use crate::render::LEGEND;
use devtrace_model::{AnyValue, KeyValue};
use devtrace_query::text::{quote, truncate};
use devtrace_query::timefmt::format_duration;
use devtrace_store::Store;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Most spans one call returns.
const MAX_SPANS: usize = 20;
/// Longest attribute value shown.
const VALUE_CHARS: usize = 2_000;

/// Parameters of `get_spans`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The trace (32 hex chars or a unique prefix)
    trace_id: String,
    /// Up to 20 span ids or unique prefixes
    span_ids: Vec<String>,
    /// Max tokens
    budget: Option<usize>,
}

pub fn def() -> ToolDef {
    tool(
        "get_spans",
        "Details of up to 20 spans of a trace: attributes, events (exceptions, stack traces), links (a wait's cause), status, resource.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    if params.span_ids.is_empty() {
        return Err(ToolError::new(
            "give span_ids: the [bracketed] ids get_trace shows",
        ));
    }
    if params.span_ids.len() > MAX_SPANS {
        return Err(ToolError::new(format!(
            "{} span ids given; at most {MAX_SPANS} per call",
            params.span_ids.len()
        )));
    }
    let trace = devtrace_query::scope::one(store, &params.trace_id)?;
    let indices = params
        .span_ids
        .iter()
        .map(|id| find_span(&trace, id))
        .collect::<Result<Vec<_>, _>>()?;
    let start = trace.root().map_or(0, |r| trace.span(r).start_unix_nano);
    let mut out = format!("{LEGEND}\ntrace {}\n", trace.trace_id);
    let mut resources = BTreeSet::new();
    for i in indices {
        let span = trace.span(i);
        resources.insert(span.resource);
        out.push_str(&format!(
            "\nspan {} {} kind {} parent {} service {}\n  {} @+{} self {} status {}{}\n",
            span.span_id,
            quote(&span.name),
            span.kind.as_str(),
            span.parent_span_id.map_or("none".into(), |p| p.to_hex()),
            quote(trace.service(i)),
            format_duration(span.duration_nanos()),
            format_duration(span.start_unix_nano.saturating_sub(start)),
            format_duration(trace.tree.self_time[i]),
            span.status.code.as_str(),
            if span.status.message.is_empty() {
                String::new()
            } else {
                format!(" {}", quote(&span.status.message))
            },
        ));
        attributes(&mut out, "  ", &span.attributes);
        for event in &span.events {
            out.push_str(&format!(
                "  event {} @+{}\n",
                quote(&event.name),
                format_duration(event.time_unix_nano.saturating_sub(span.start_unix_nano))
            ));
            attributes(&mut out, "    ", &event.attributes);
        }
        // What it waited for on another thread, worded, before the links it comes from.
        for wait in devtrace_query::causal::waits_of_span(&trace, i) {
            out.push_str(&format!(
                "  {}: span {}{}\n",
                wait.text,
                wait.cause_span_id,
                if wait.cause_in_trace {
                    ""
                } else {
                    " (not in this trace)"
                }
            ));
        }
        for link in &span.links {
            out.push_str(&format!(
                "  link trace {} span {}\n",
                link.trace_id, link.span_id
            ));
            attributes(&mut out, "    ", &link.attributes);
        }
        if span.dropped_attributes_count + span.dropped_events_count + span.dropped_links_count > 0
        {
            out.push_str(&format!(
                "  dropped at ingest: {} attributes, {} events, {} links\n",
                span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count
            ));
        }
    }
    for r in resources {
        if let Some(resource) = trace.spans.resources.get(r as usize) {
            out.push_str(&format!(
                "\nresource of {}\n",
                quote(resource.service_name())
            ));
            attributes(&mut out, "  ", &resource.attributes);
        }
    }
    Ok(fit(out, budget, "ask for fewer span_ids per call"))
}

fn attributes(out: &mut String, indent: &str, attributes: &[KeyValue]) {
    for kv in attributes {
        out.push_str(&format!(
            "{indent}{} = {}\n",
            devtrace_model::recorded::key(&kv.key),
            value(&kv.value)
        ));
    }
}

fn value(value: &AnyValue) -> String {
    match value {
        AnyValue::String(s) => quote(&truncate(s, VALUE_CHARS)),
        AnyValue::Int(_) | AnyValue::Double(_) | AnyValue::Bool(_) => value.to_display_string(),
        AnyValue::Empty => "null".into(),
        other => quote(&truncate(&other.to_display_string(), VALUE_CHARS)),
    }
}
