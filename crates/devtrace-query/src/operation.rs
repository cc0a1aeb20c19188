//! Which operation a question names.
//!
//! A face receives a span name and, perhaps, a service and a span kind. An operation is the
//! three together ([`Operation`]): a gRPC client span and the server span it calls share a
//! name, and must never be profiled as one. [`choose`] finds the operations the question
//! matches; when one is left it is the answer, when several are, it takes the one with the
//! most spans in the runs read (server-side first on a tie) and lists the others, so the face
//! can say which it profiled and how to ask for another. [`service_entry_points`] ranks the
//! operations one service handles.

use crate::scope::{QueryError, Scope, recent, unknown_operation};
use devtrace_analyze::AnalyzedTrace;
use devtrace_analyze::perf::{
    OperationTotal, RootRun, operation_identities, rank_operations, spans_of,
};
use devtrace_model::{Operation, OperationFilter};
use devtrace_store::{Store, TraceQuery};
use serde::Serialize;

/// Another operation of the same name, left out of an answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OtherIdentity {
    #[serde(flatten)]
    pub operation: Operation,
    /// Its spans in the runs that were read (0 when it has none there).
    pub spans: usize,
}

/// The operation a question was taken to mean, and the runs read for it.
pub struct Chosen {
    pub operation: Operation,
    /// The other operations of that name that the question also matched.
    pub others: Vec<OtherIdentity>,
    /// Recent traces containing a span of `operation`, oldest first.
    pub traces: Vec<AnalyzedTrace>,
}

/// Finds the operation `filter` means and reads its recent runs (see the module documentation).
pub fn choose(
    store: &dyn Store,
    filter: &OperationFilter,
    scope: Scope,
    default_last: usize,
) -> Result<Chosen, QueryError> {
    let stored: Vec<Operation> = store
        .operations()?
        .into_iter()
        .filter(|o| o.name == filter.name)
        .collect();
    let matching: Vec<Operation> = stored
        .iter()
        .filter(|o| filter.matches(o))
        .cloned()
        .collect();
    if matching.is_empty() {
        return Err(if stored.is_empty() {
            QueryError::UnknownOperation(unknown_operation(store, &filter.name)?)
        } else {
            QueryError::OperationElsewhere(not_there(filter, &stored))
        });
    }
    if let [only] = matching.as_slice() {
        let traces = recent(
            store,
            scope,
            Some(&OperationFilter::exactly(only)),
            default_last,
        )?;
        return Ok(Chosen {
            operation: only.clone(),
            others: Vec::new(),
            traces,
        });
    }
    let traces = recent(store, scope, Some(filter), default_last)?;
    let mut found: Vec<(Operation, usize)> = operation_identities(&traces, &filter.name)
        .into_iter()
        .filter(|(o, _)| filter.matches(o))
        .collect();
    for operation in &matching {
        if !found.iter().any(|(o, _)| o == operation) {
            found.push((operation.clone(), 0));
        }
    }
    let operation = found.remove(0).0;
    let others = found
        .into_iter()
        .map(|(operation, spans)| OtherIdentity { operation, spans })
        .collect();
    // The runs read were those of any matching operation; keep the chosen one's (read again
    // when some did not have it, so the answer still covers its last runs).
    let every_run_has_it = traces
        .iter()
        .all(|t| spans_of(t, &operation).next().is_some());
    let traces = if every_run_has_it {
        traces
    } else {
        recent(
            store,
            scope,
            Some(&OperationFilter::exactly(&operation)),
            default_last,
        )?
    };
    Ok(Chosen {
        operation,
        others,
        traces,
    })
}

/// "no span named X is a server span of checkout; X is a client span of frontend and …".
fn not_there(filter: &OperationFilter, stored: &[Operation]) -> String {
    let asked = match (&filter.service, filter.kind) {
        (Some(service), Some(kind)) => format!("a {} span of {service:?}", kind.as_str()),
        (Some(service), None) => format!("a span of {service:?}"),
        (None, Some(kind)) => format!("a {} span", kind.as_str()),
        (None, None) => "stored".to_owned(),
    };
    format!(
        "no span named {:?} is {asked}; it is {}",
        filter.name,
        describe(stored)
    )
}

/// "a client span of \"frontend\" and a server span of \"checkout\"".
pub fn describe(operations: &[Operation]) -> String {
    let parts: Vec<String> = operations
        .iter()
        .map(|o| format!("a {} span of {:?}", o.kind.as_str(), o.service))
        .collect();
    match parts.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The operations `service` handles, ranked by total time: its spans whose parent is not one
/// of its own (requests it received, jobs it took, roots), over the most recent traces it has
/// spans in. Also the number of traces read.
pub fn service_entry_points(
    store: &dyn Store,
    service: &str,
    scope: Scope,
    default_last: usize,
) -> Result<(Vec<OperationTotal>, usize), QueryError> {
    let summaries = store.list_traces(&TraceQuery {
        service: Some(service.to_owned()),
        runtime_only: true,
        since_unix_nano: scope.since_unix_nano,
        limit: scope.limit(default_last),
        ..Default::default()
    })?;
    if summaries.is_empty() && scope.since_unix_nano.is_none() {
        let known: Vec<String> = store
            .services(None)?
            .into_iter()
            .map(|s| format!("{:?}", s.service))
            .collect();
        return Err(QueryError::Invalid(if known.is_empty() {
            format!("no spans of service {service:?} are stored (nothing is stored yet)")
        } else {
            format!(
                "no spans of service {service:?} are stored; the services are {}",
                known.join(", ")
            )
        }));
    }
    let traces = crate::scope::load(store, &summaries)?;
    let mut runs = Vec::new();
    for trace in &traces {
        let index: std::collections::HashMap<devtrace_model::SpanId, usize> = trace
            .spans
            .spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        for (i, span) in trace.spans.spans.iter().enumerate() {
            if trace.service(i) != service {
                continue;
            }
            let parent = span.parent_span_id.and_then(|p| index.get(&p).copied());
            if parent.is_none_or(|p| trace.service(p) != service) {
                runs.push(RootRun {
                    name: span.name.clone(),
                    service: service.to_owned(),
                    duration_nanos: span.duration_nanos(),
                    failed: span.is_error(),
                });
            }
        }
    }
    Ok((rank_operations(runs), traces.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::store_of;
    use devtrace_model::{SpanKind, StatusCode};

    const CALL: &str = "/shop.Checkout/PlaceOrder";

    /// `n` requests: frontend's GET /checkout calls checkout's PlaceOrder over gRPC (a client
    /// span and a server span of one name), which charges through payment.
    fn requests(n: u8) -> (tempfile::TempDir, devtrace_store::sqlite::SqliteStore) {
        let spans = (1..=n)
            .flat_map(|t| {
                let at = u64::from(t) * 1_000;
                let mut failed =
                    crate::testing::span_in(t, 4, Some(3), "charge", at + 30, at + 60, "payment");
                if t == 1 {
                    failed.1.status.code = StatusCode::Error;
                }
                [
                    crate::testing::span_in(t, 1, None, "GET /checkout", at, at + 100, "frontend"),
                    crate::testing::kinded(
                        crate::testing::span_in(t, 2, Some(1), CALL, at + 10, at + 90, "frontend"),
                        SpanKind::Client,
                    ),
                    crate::testing::kinded(
                        crate::testing::span_in(t, 3, Some(2), CALL, at + 20, at + 80, "checkout"),
                        SpanKind::Server,
                    ),
                    failed,
                ]
            })
            .collect();
        store_of(spans)
    }

    #[test]
    fn a_name_with_two_identities_is_answered_for_one_and_names_the_other() {
        let (_dir, store) = requests(3);
        let chosen = choose(&store, &OperationFilter::named(CALL), Scope::default(), 20).unwrap();
        assert_eq!(
            chosen.operation,
            Operation::new(CALL, "checkout", SpanKind::Server)
        );
        assert_eq!(
            chosen.others,
            [OtherIdentity {
                operation: Operation::new(CALL, "frontend", SpanKind::Client),
                spans: 3
            }]
        );
        assert_eq!(chosen.traces.len(), 3);
        let client = choose(
            &store,
            &OperationFilter {
                service: Some("frontend".into()),
                ..OperationFilter::named(CALL)
            },
            Scope::default(),
            20,
        )
        .unwrap();
        assert_eq!(client.operation.kind, SpanKind::Client);
        assert!(client.others.is_empty());

        let error = choose(
            &store,
            &OperationFilter {
                kind: Some(SpanKind::Consumer),
                ..OperationFilter::named(CALL)
            },
            Scope::default(),
            20,
        )
        .err()
        .unwrap();
        assert_eq!(
            error.to_string(),
            format!(
                "no span named {CALL:?} is a consumer span; it is a server span of \"checkout\" and a client span of \"frontend\""
            )
        );
        assert!(matches!(
            choose(
                &store,
                &OperationFilter::named("PlaceOrder"),
                Scope::default(),
                20
            ),
            Err(QueryError::UnknownOperation(_))
        ));
    }

    #[test]
    fn a_service_ranks_the_operations_it_handles() {
        let (_dir, store) = requests(3);
        let (ranked, traces) =
            service_entry_points(&store, "checkout", Scope::default(), 20).unwrap();
        assert_eq!(traces, 3);
        let rows: Vec<(&str, usize, u64)> = ranked
            .iter()
            .map(|r| (r.operation.as_str(), r.runs, r.total_nanos))
            .collect();
        assert_eq!(rows, [(CALL, 3, 180)], "its server span, not its children");
        let (payment, _) = service_entry_points(&store, "payment", Scope::default(), 20).unwrap();
        assert_eq!(
            (payment[0].operation.as_str(), payment[0].errors),
            ("charge", 1)
        );
        let error = service_entry_points(&store, "billing", Scope::default(), 20)
            .err()
            .unwrap();
        assert_eq!(
            error.to_string(),
            "no spans of service \"billing\" are stored; the services are \"checkout\", \"frontend\", \"payment\""
        );
    }
}
