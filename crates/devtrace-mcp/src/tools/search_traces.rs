//! `search_traces`: trace summaries matching filters, newest first, paged by cursor.

use super::{ToolDef, ToolError, ToolResult, duration, since, tool};
use crate::budget;
use crate::render::{LEGEND, summary_row};
use devtrace_query::search::{AttributeFilter, TraceSearch, search};
use devtrace_store::{Store, TraceCursor, TraceQuery};
use serde::Deserialize;

/// Parameters of `search_traces`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A service.name of any span (not only the root's)
    service: Option<String>,
    /// Traces containing a span with exactly this name
    operation: Option<String>,
    /// e.g. "250ms"
    min_duration: Option<String>,
    /// e.g. "2s"
    max_duration: Option<String>,
    /// With (error) or without (ok) an error span
    status: Option<Status>,
    /// "key=value" or "key~contains" on any span or resource; all must match
    attributes: Option<Vec<String>>,
    /// "2h" or RFC 3339
    since: Option<String>,
    /// Started before: "1h" (ago) or RFC 3339
    until: Option<String>,
    /// Traces of one `devtrace run`
    run_id: Option<String>,
    /// Runs recorded with `devtrace run --label`
    label: Option<String>,
    /// Default 20
    limit: Option<usize>,
    /// From a previous result's footer
    cursor: Option<String>,
    /// Max tokens
    budget: Option<usize>,
}

#[derive(Deserialize, schemars::JsonSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Status {
    Error,
    Ok,
}

pub fn def() -> ToolDef {
    tool(
        "search_traces",
        "Find traces by filters: one line each (id, start, root, services, duration, spans, errors), newest first.",
        run,
    )
}

const MAX_LIMIT: usize = 200;

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let attributes = params
        .attributes
        .unwrap_or_default()
        .iter()
        .map(|a| AttributeFilter::parse(a).map_err(ToolError::new))
        .collect::<Result<Vec<_>, _>>()?;
    let after = params
        .cursor
        .as_deref()
        .map(|c| {
            TraceCursor::decode(c).ok_or_else(|| {
                ToolError::new(format!("cursor {c_q} is not one this tool gave; copy it from a result's footer, or leave it out", c_q = devtrace_model::recorded::quote(c)))
            })
        })
        .transpose()?;
    let limit = params.limit.unwrap_or(20).clamp(1, MAX_LIMIT);
    let wanted = TraceSearch {
        query: TraceQuery {
            service: params.service,
            name_contains: None,
            operation: params.operation.clone(),
            min_duration_nanos: duration("min_duration", params.min_duration.as_deref())?,
            max_duration_nanos: duration("max_duration", params.max_duration.as_deref())?,
            errors_only: matches!(params.status, Some(Status::Error)),
            without_errors: matches!(params.status, Some(Status::Ok)),
            runs_only: false,
            runtime_only: false,
            since_unix_nano: since(params.since.as_deref())?,
            until_unix_nano: since(params.until.as_deref())?,
            after,
            limit,
        },
        attributes,
        run_id: params.run_id,
        label: params.label,
    };
    let page = search(store, &wanted)?;
    if page.traces.is_empty() && page.next.is_none() {
        if let Some(operation) = &params.operation
            && store
                .traces_with_operation(
                    &devtrace_model::OperationFilter::named(operation.as_str()),
                    None,
                    1,
                )?
                .is_empty()
        {
            return Err(super::unknown_operation(store, operation));
        }
        return Ok("no traces match these filters; widen them (since, status, attributes), or call overview\n".into());
    }
    let header =
        format!("{LEGEND}\ntrace_id start(UTC) root service(+others) duration spans errors\n");
    let footer_room = 120;
    let mut out = header;
    let mut used = budget::count(&out) + footer_room;
    let mut shown = 0;
    let mut last = None;
    for trace in &page.traces {
        let line = summary_row(trace);
        let cost = budget::count(&line);
        if used + cost > budget {
            break;
        }
        used += cost;
        out.push_str(&line);
        shown += 1;
        last = Some(trace);
    }
    let cut_by_budget = shown < page.traces.len();
    let next = if cut_by_budget {
        last.map(TraceCursor::of)
    } else {
        page.next
    };
    out.push_str(&format!("{shown} trace(s)"));
    if page.scanned > 0 {
        out.push_str(&format!(
            ", {} candidates scanned for attribute filters",
            page.scanned
        ));
    }
    match next {
        Some(cursor) => out.push_str(&format!(
            "; more: search_traces with the same filters and cursor=\"{}\"{}\n",
            cursor.encode(),
            if page.scan_limited && !cut_by_budget {
                " (the scan bound stopped this page early)"
            } else {
                ""
            }
        )),
        None => out.push_str("; no more\n"),
    }
    out.push_str("next: get_trace(trace_id) for one trace\n");
    Ok(out)
}
