//! `find_issues`: the ranked findings across recent traces, each with its evidence.

use super::{ToolDef, ToolError, ToolResult, tool};
use crate::budget;
use crate::render::{LEGEND, findings_text};
use devtrace_analyze::FindingKind;
use devtrace_query::analytics::trace_findings;
use devtrace_store::Store;
use serde::Deserialize;

/// Traces analysed by default.
const DEFAULT_LAST: usize = 500;

/// Parameters of `find_issues`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only traces containing this span name
    operation: Option<String>,
    /// Only findings of this kind
    #[serde(default)]
    #[schemars(schema_with = "kind_schema")]
    kind: Option<String>,
    /// "2h" or RFC 3339
    since: Option<String>,
    /// Recent traces to analyse (default 500)
    last: Option<usize>,
    /// Max tokens
    budget: Option<usize>,
}

/// `kind`'s schema: an enum of every kind of finding (`FindingKind::ALL`, the analysis crate's
/// list), so an assistant sees the closed set and a value outside it is refused naming them.
fn kind_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let kinds: Vec<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
    schemars::json_schema!({"type": "string", "enum": kinds})
}

pub fn def() -> ToolDef {
    tool(
        "find_issues",
        "Ranked findings across recent traces (slow sequences, N+1, failure causes, token waste, locks, regressions…; `kind` lists all), each with its saving, evidence span ids and a fix.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let operation = params.operation.as_deref().map(str::trim);
    let filter = operation.map(devtrace_model::OperationFilter::named);
    let asked =
        super::Asked::resolve(store, params.since.as_deref(), params.last, filter.as_ref())?;
    let super::Asked {
        scope,
        words: scope_words,
        note,
        ..
    } = asked;
    let traces = devtrace_query::scope::recent(store, scope, filter.as_ref(), DEFAULT_LAST)
        .map_err(|e| ToolError::from_query(store, e, operation))?;
    let mut findings = trace_findings(&traces);
    if let Some(kind) = params.kind.as_deref() {
        // The closed set was checked against the schema before the call.
        findings.retain(|f| f.kind.as_str() == kind);
    }
    // The best finding of every kind first (within the first page), then by impact.
    let order =
        devtrace_analyze::finding::page_order(&findings, devtrace_analyze::finding::FIRST_PAGE);
    let findings: Vec<devtrace_analyze::Finding> =
        order.into_iter().map(|i| findings[i].clone()).collect();
    let mut out = format!(
        "{LEGEND}\n{note}{} finding(s) across {} trace(s) ({scope_words}), ranked by impact (share of the operation's time, tokens or runs a fix recovers × how often it runs)\n",
        findings.len(),
        traces.len()
    );
    if findings.is_empty() {
        out.push_str("nothing to report: no detector fired on these traces\n");
        return Ok(out);
    }
    let room = budget.saturating_sub(budget::count(&out) + 40);
    out.push_str(&findings_text(
        &findings,
        room,
        "filter by kind or operation, or raise budget",
    ));
    out.push_str("next: get_trace(trace_id) / get_spans(trace_id, span_ids) on the evidence\n");
    Ok(out)
}
