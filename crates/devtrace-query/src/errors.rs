//! The read side of errors: which traces an error report looks at, and which error a
//! "show me this one" request (a fingerprint prefix or a trace id) means.

use crate::scope::{self, MAX_TRACES, QueryError, Scope};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::errors::{
    CausalChain, Correlation, ErrorGroup, causal_chain, error_key, first_error, group_errors,
    render_number,
};
use devtrace_model::{AnyValue, OperationFilter, TraceId};
use devtrace_store::{Store, StoreError, TraceQuery};
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};

/// Traces with errors looked at when no count is given.
pub const DEFAULT_LAST: usize = 200;

/// The traces in scope: the most recent traces with errors plus the recent runs of their root
/// operations (so failing runs can be compared with passing ones); with `operation`, the most
/// recent traces containing it.
pub fn load(
    store: &dyn Store,
    scope: Scope,
    operation: Option<&str>,
) -> Result<Vec<AnalyzedTrace>, QueryError> {
    if let Some(operation) = operation {
        let filter = OperationFilter::named(operation);
        return scope::recent(store, scope, Some(&filter), DEFAULT_LAST);
    }
    let limit = scope.limit(DEFAULT_LAST);
    let since = scope.since_unix_nano;
    let failing = store.list_traces(&TraceQuery {
        errors_only: true,
        runtime_only: true,
        since_unix_nano: since,
        limit,
        ..Default::default()
    })?;
    let mut seen: HashSet<TraceId> = failing.iter().map(|s| s.trace_id).collect();
    // The same root operation: its name, in its service.
    let roots: BTreeSet<(String, String)> = failing
        .iter()
        .map(|s| (s.root_name.clone(), s.service.clone()))
        .collect();
    let mut summaries = failing;
    for (name, service) in roots {
        let root = OperationFilter {
            name,
            service: Some(service),
            kind: None,
        };
        for summary in store.traces_with_operation(&root, since, limit)? {
            if summaries.len() >= MAX_TRACES {
                break;
            }
            if seen.insert(summary.trace_id) {
                summaries.push(summary);
            }
        }
    }
    Ok(scope::load(store, &summaries)?)
}

/// Errors grouped by fingerprint, with the counts a report heads with.
#[derive(Clone, Debug, Serialize)]
pub struct ErrorsReport {
    pub traces_analysed: usize,
    pub failing_traces: usize,
    pub errors: usize,
    pub groups: Vec<ErrorGroup>,
}

pub fn report(traces: &[AnalyzedTrace]) -> ErrorsReport {
    let groups = group_errors(traces);
    let failing: HashSet<TraceId> = groups
        .iter()
        .flat_map(|g| g.occurrences.iter().map(|o| o.trace_id))
        .collect();
    ErrorsReport {
        traces_analysed: traces.len(),
        failing_traces: failing.len(),
        errors: groups.iter().map(|g| g.count).sum(),
        groups,
    }
}

/// One error explained: its group (when it belongs to one in scope), its causal chain, and the
/// correlated feature's value in this run.
#[derive(Clone, Debug, Serialize)]
pub struct ChainView {
    pub group: Option<ErrorGroup>,
    pub chain: CausalChain,
    pub correlated_value: Option<String>,
}

/// Why [`explain`] found nothing to show; each face words it its own way.
#[derive(Debug)]
pub enum ExplainError {
    /// Neither a fingerprint in scope nor a stored trace id starts with the target.
    NoMatch {
        target: String,
        looked_at: usize,
    },
    /// The trace has no error span.
    NoErrors {
        trace_id: TraceId,
    },
    /// The prefix matches several fingerprints.
    Ambiguous {
        target: String,
        fingerprints: Vec<String>,
    },
    /// The group's example trace was deleted meanwhile.
    ExampleGone {
        fingerprint: String,
        trace_id: TraceId,
    },
    Store(StoreError),
}

/// The error `target` names: a fingerprint (or a prefix of at least 4 characters) among the
/// groups of `traces`, else a trace id or prefix, whose first error is explained.
pub fn explain(
    store: &dyn Store,
    traces: &[AnalyzedTrace],
    groups: &[ErrorGroup],
    target: &str,
) -> Result<ChainView, ExplainError> {
    let target = target.trim();
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
                return Err(ExplainError::ExampleGone {
                    fingerprint: group.fingerprint.clone(),
                    trace_id: group.example.trace_id,
                });
            };
            (trace, failing, Some((*group).clone()))
        }
        [] => {
            let trace = match scope::one(store, target) {
                Ok(trace) => trace,
                Err(StoreError::TraceNotFound(_) | StoreError::InvalidTraceId(_)) => {
                    return Err(ExplainError::NoMatch {
                        target: target.to_owned(),
                        looked_at: traces.len(),
                    });
                }
                Err(other) => return Err(ExplainError::Store(other)),
            };
            let Some(failing) = first_error(&trace) else {
                return Err(ExplainError::NoErrors {
                    trace_id: trace.trace_id,
                });
            };
            let fingerprint = error_key(trace.span(failing)).map(|k| k.fingerprint);
            let group = groups
                .iter()
                .find(|g| Some(&g.fingerprint) == fingerprint.as_ref())
                .cloned();
            (trace, failing, group)
        }
        many => {
            return Err(ExplainError::Ambiguous {
                target: target.to_owned(),
                fingerprints: many.iter().map(|g| g.fingerprint.clone()).collect(),
            });
        }
    };
    let chain = causal_chain(&trace, failing);
    let correlated_value = group
        .as_ref()
        .and_then(|g| g.correlation.as_ref())
        .and_then(|c| correlated_value(&trace, failing, c));
    Ok(ChainView {
        group,
        chain,
        correlated_value,
    })
}

/// The correlated feature's value in this trace ("734.2 KB"), to set next to the rule.
fn correlated_value(trace: &AnalyzedTrace, failing: usize, c: &Correlation) -> Option<String> {
    let value = match &c.span_name {
        Some(name) => (0..trace.spans.spans.len())
            .filter(|i| &trace.span(*i).name == name)
            .find_map(|i| {
                trace
                    .attributes(i)
                    .find(|kv| kv.key == c.attribute)
                    .map(|kv| &kv.value)
            })?,
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
