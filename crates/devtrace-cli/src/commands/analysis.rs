//! Loading the traces an analysis command looks at, and text shared by those commands.

use crate::cli::ScopeArgs;
use crate::timefmt::{format_duration, now_nanos, parse_since};
use anyhow::{Result, anyhow, bail};
use devtrace_analyze::{AnalyzedTrace, Finding};
use devtrace_store::{Store, StoreError, TraceQuery, TraceSummary};

/// Traces analysed when `--last` is not given.
pub const DEFAULT_LAST: usize = 20;
/// Upper bound on traces any one analysis reads, whatever `--last` says.
pub const MAX_TRACES: usize = 5_000;

/// `--since` as nanoseconds since the epoch.
pub fn since(scope: &ScopeArgs) -> Result<Option<u64>> {
    scope
        .since
        .as_deref()
        .map(|text| parse_since(text, now_nanos()).map_err(|e| anyhow!("--since: {e}")))
        .transpose()
}

/// Reads and builds the trees of the given traces (skipping any deleted meanwhile).
pub fn load(store: &dyn Store, summaries: &[TraceSummary]) -> Result<Vec<AnalyzedTrace>> {
    let mut traces = Vec::with_capacity(summaries.len());
    for summary in summaries {
        if let Some(stored) = store.get_trace(summary.trace_id)? {
            traces.push(AnalyzedTrace::new(summary.trace_id, stored.spans));
        }
    }
    // Oldest first: detectors that look at history (regressions, recurrences) expect time order.
    traces.sort_by_key(|t| t.root().map_or(0, |r| t.span(r).start_unix_nano));
    Ok(traces)
}

/// The most recent traces in scope, optionally only those containing `operation`.
pub fn recent(
    store: &dyn Store,
    scope: &ScopeArgs,
    operation: Option<&str>,
    default_last: usize,
) -> Result<Vec<AnalyzedTrace>> {
    let limit = scope.last.unwrap_or(default_last).clamp(1, MAX_TRACES);
    let since = since(scope)?;
    let summaries = match operation {
        Some(name) => {
            let found = store.traces_with_operation(name, since, limit)?;
            if found.is_empty() {
                bail!("{}", unknown_operation(store, name)?);
            }
            found
        }
        None => store.list_traces(&TraceQuery {
            since_unix_nano: since,
            limit,
            ..Default::default()
        })?,
    };
    load(store, &summaries)
}

/// One trace by id or prefix.
pub fn one(store: &dyn Store, id: &str) -> Result<AnalyzedTrace> {
    let trace_id = store.resolve_trace_id(id)?;
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(id.to_owned()))?;
    Ok(AnalyzedTrace::new(trace_id, stored.spans))
}

/// "no operation X; did you mean …" with the closest stored names.
pub fn unknown_operation(store: &dyn Store, name: &str) -> Result<String> {
    let names = store.operation_names()?;
    let lower = name.to_lowercase();
    let mut close: Vec<&String> = names
        .iter()
        .filter(|n| {
            let candidate = n.to_lowercase();
            candidate.contains(&lower)
                || lower.contains(&candidate)
                || edit_distance(&candidate, &lower) <= 3
        })
        .take(5)
        .collect();
    close.sort();
    Ok(if close.is_empty() {
        format!("no span named {name:?} is stored; `devtrace perf` lists the operations there are")
    } else {
        let list: Vec<String> = close.iter().map(|n| format!("{n:?}")).collect();
        format!(
            "no span named {name:?} is stored; did you mean {}?",
            list.join(", ")
        )
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            current.push(
                (previous[j] + cost)
                    .min(previous[j + 1] + 1)
                    .min(current[j] + 1),
            );
        }
        previous = current;
    }
    previous[b.len()]
}

/// A finding as a few lines of text: title, saving, recommendation, evidence.
pub fn finding_text(finding: &Finding, index: usize) -> String {
    let mut out = format!("{index}. {}\n", finding.title);
    if finding.saving_nanos > 0 {
        out.push_str(&format!(
            "   saving ≈ {} per run × {} run(s) = {}\n",
            format_duration(finding.saving_nanos),
            finding.occurrences.max(1),
            format_duration(finding.total_saving_nanos())
        ));
    }
    out.push_str(&format!("   → {}\n", finding.recommendation));
    for evidence in &finding.evidence {
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
    out.push_str(&format!(
        "   [{} {}]\n",
        finding.kind.as_str(),
        finding.fingerprint
    ));
    out
}
