//! `find_issues`: the ranked findings across recent traces, each with its evidence.

use super::{ToolDef, ToolError, ToolResult, since, tool};
use crate::budget;
use crate::render::{LEGEND, findings_text};
use devtrace_analyze::FindingKind;
use devtrace_analyze::detectors::run_all;
use devtrace_query::Scope;
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
    kind: Option<Kind>,
    /// "2h" or RFC 3339
    since: Option<String>,
    /// Recent traces to analyse (default 500)
    last: Option<usize>,
    /// Max tokens, 300 to 20000 (default 4000)
    budget: Option<usize>,
}

/// The kinds of finding this tool reports: the runtime detectors' (a session's findings are
/// `session_overview`'s).
#[derive(Deserialize, schemars::JsonSchema, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum Kind {
    SequentialWork,
    RepeatedCalls,
    DominantCost,
    FailureCorrelation,
    RecurringError,
    TokenWaste,
    CacheProblem,
    LockContention,
    LockOrderInversion,
    RetryStorm,
    Regression,
}

/// Which [`Kind`] a finding is, or None for a session finding. Exhaustive on purpose: a new
/// kind of finding does not compile until it is placed here (and in [`Kind`] if this tool
/// reports it), so the parameter's closed set cannot fall behind the detectors.
fn reported_kind(kind: FindingKind) -> Option<Kind> {
    use FindingKind as F;
    Some(match kind {
        F::SequentialWork => Kind::SequentialWork,
        F::RepeatedCalls => Kind::RepeatedCalls,
        F::DominantCost => Kind::DominantCost,
        F::FailureCorrelation => Kind::FailureCorrelation,
        F::RecurringError => Kind::RecurringError,
        F::TokenWaste => Kind::TokenWaste,
        F::CacheProblem => Kind::CacheProblem,
        F::LockContention => Kind::LockContention,
        F::LockOrderInversion => Kind::LockOrderInversion,
        F::RetryStorm => Kind::RetryStorm,
        F::Regression => Kind::Regression,
        F::RetryLoop
        | F::CircularEdit
        | F::TestFixSpiral
        | F::EnvironmentError
        | F::AntiPattern => {
            return None;
        }
    })
}

pub fn def() -> ToolDef {
    tool(
        "find_issues",
        "Ranked findings across recent traces: sequential work, N+1/repeated calls, dominant cost, failure correlation, recurring errors, token waste, cache problems, lock contention, retry storms, regressions; each with saving, evidence span ids and a fix.",
        run,
    )
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let scope = Scope {
        last: params.last,
        since_unix_nano: since(params.since.as_deref())?,
    };
    let operation = params.operation.as_deref().map(str::trim);
    let traces = devtrace_query::scope::recent(store, scope, operation, DEFAULT_LAST)
        .map_err(|e| ToolError::from_query(store, e, operation))?;
    let mut findings = run_all(&traces);
    if let Some(kind) = params.kind {
        findings.retain(|f| reported_kind(f.kind) == Some(kind));
    }
    let mut out = format!(
        "{LEGEND}\n{} finding(s) across {} trace(s), ranked by estimated total saving\n",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closed_set_names_each_kind_as_findings_do() {
        for kind in [
            FindingKind::SequentialWork,
            FindingKind::RepeatedCalls,
            FindingKind::LockOrderInversion,
            FindingKind::Regression,
        ] {
            let reported = reported_kind(kind).unwrap();
            let as_argument: Kind =
                serde_json::from_value(serde_json::json!(kind.as_str())).unwrap();
            assert_eq!(as_argument, reported, "{}", kind.as_str());
        }
        assert_eq!(reported_kind(FindingKind::RetryLoop), None);
    }
}
