//! The recorded `devtrace run` executions: command, label, outcome and test counts, read from
//! each run's root span.

use devtrace_model::{AnyValue, Span, StatusCode, TraceId, semconv};
use devtrace_store::{Store, StoreError, TraceQuery};
use serde::Serialize;

/// The traces a run's program sent on its own (an SDK that did not continue `TRACEPARENT`), as
/// the run span records them in `devtrace.run.attached_traces`: where the program's spans are.
pub fn attached_traces(spans: &[Span]) -> Vec<String> {
    spans
        .iter()
        .filter_map(|s| s.attr(semconv::RUN_ATTACHED_TRACES))
        .filter_map(|v| match v {
            AnyValue::Array(ids) => Some(ids.iter().filter_map(AnyValue::as_str)),
            _ => None,
        })
        .flatten()
        // Recorded values: only well-formed trace ids are used (they are shown and sliced).
        .filter_map(|id| id.parse::<TraceId>().ok())
        .map(|id| id.to_hex())
        .collect()
}

/// One `devtrace run` execution.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub run_id: Option<String>,
    pub trace_id: TraceId,
    pub command: String,
    pub label: Option<String>,
    pub start_unix_nano: u64,
    pub duration_ns: u64,
    pub exit_code: Option<i64>,
    pub signal: Option<i64>,
    /// Present when a test runner's results were recognised in the output.
    pub tests: Option<TestCounts>,
    /// The program's spans: those of the run's trace other than the run span, and those of
    /// the traces it sent on its own ([`attached_traces`]) — what `devtrace run` reports.
    pub span_count: u64,
    /// Errors among those spans.
    pub error_count: u64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestCounts {
    pub runner: Option<String>,
    pub passed: i64,
    pub failed: Option<i64>,
    pub skipped: Option<i64>,
}

/// The most recent `limit` runs, newest first, optionally only those labelled `label`.
pub fn list_runs(
    store: &dyn Store,
    label: Option<&str>,
    limit: usize,
) -> Result<Vec<RunSummary>, StoreError> {
    // Labels are read from the spans, so read more than shown when filtering by one.
    let read = if label.is_some() {
        limit.saturating_mul(10).max(200)
    } else {
        limit
    };
    let summaries = store.list_traces(&TraceQuery {
        runs_only: true,
        limit: read,
        ..Default::default()
    })?;
    let mut rows = Vec::new();
    for summary in summaries {
        let Some(trace) = store.get_trace(summary.trace_id)? else {
            continue;
        };
        let Some(run) = trace
            .spans
            .spans
            .iter()
            .find(|s| s.attr(semconv::RUN_ID).is_some() && s.parent_span_id.is_none())
        else {
            continue;
        };
        let run_label = text(run, semconv::RUN_LABEL);
        if label.is_some() && run_label.as_deref() != label {
            continue;
        }
        // The program's spans, as the run's own summary counts them: not the run span, and
        // with the traces the program sent without continuing TRACEPARENT.
        let mut span_count = summary.span_count.saturating_sub(1);
        let mut error_count = summary
            .error_count
            .saturating_sub(u64::from(run.status.code == StatusCode::Error));
        for id in attached_traces(std::slice::from_ref(run)) {
            let Ok(id) = id.parse::<TraceId>() else {
                continue;
            };
            if let Some(attached) = store.get_trace(id)? {
                span_count += attached.summary.span_count;
                error_count += attached.summary.error_count;
            }
        }
        rows.push(RunSummary {
            run_id: text(run, semconv::RUN_ID),
            trace_id: summary.trace_id,
            command: text(run, semconv::RUN_COMMAND).unwrap_or_else(|| run.name.clone()),
            label: run_label,
            start_unix_nano: run.start_unix_nano,
            duration_ns: run.duration_nanos(),
            exit_code: int(run, semconv::RUN_EXIT_CODE),
            signal: int(run, semconv::RUN_SIGNAL),
            tests: int(run, semconv::TEST_PASSED).map(|passed| TestCounts {
                runner: text(run, semconv::TEST_RUNNER),
                passed,
                failed: int(run, semconv::TEST_FAILED),
                skipped: int(run, semconv::TEST_SKIPPED),
            }),
            span_count,
            error_count,
        });
        if rows.len() >= limit {
            break;
        }
    }
    Ok(rows)
}

fn text(span: &Span, key: &str) -> Option<String> {
    span.attr(key).and_then(AnyValue::as_str).map(str::to_owned)
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match span.attr(key)? {
        AnyValue::Int(i) => Some(*i),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{store_with, trace};
    use devtrace_model::KeyValue;

    #[test]
    fn runs_carry_command_label_exit_code_and_test_counts() {
        let run = |n: u32, label: &str| {
            trace(
                n,
                vec![
                    KeyValue::new(semconv::RUN_ID, format!("{n:032x}")),
                    KeyValue::new(semconv::RUN_COMMAND, "cargo test"),
                    KeyValue::new(semconv::RUN_LABEL, label),
                    KeyValue::new(semconv::RUN_EXIT_CODE, AnyValue::Int(1)),
                    KeyValue::new(semconv::TEST_RUNNER, "cargo"),
                    KeyValue::new(semconv::TEST_PASSED, AnyValue::Int(12)),
                    KeyValue::new(semconv::TEST_FAILED, AnyValue::Int(2)),
                ],
                vec![],
            )
        };
        let (_dir, store) = store_with(vec![
            run(1, "before"),
            run(2, "after"),
            trace(3, vec![], vec![]),
        ]);
        let all = list_runs(&store, None, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].label.as_deref(), Some("after"));
        assert_eq!(
            all[0].tests,
            Some(TestCounts {
                runner: Some("cargo".into()),
                passed: 12,
                failed: Some(2),
                skipped: None
            })
        );
        assert_eq!(
            (all[0].command.as_str(), all[0].exit_code),
            ("cargo test", Some(1))
        );
        let before = list_runs(&store, Some("before"), 10).unwrap();
        assert_eq!(before.len(), 1);
        assert_eq!(before[0].start_unix_nano, 1_000);
        // The run span alone: the program sent nothing.
        assert_eq!((all[0].span_count, all[0].error_count), (0, 0));
    }

    /// A program whose SDK did not continue TRACEPARENT sends its own trace, attached to the
    /// run span: `runs` counts its spans and errors, as `devtrace run`'s summary does (the
    /// run span itself, failed with the command, is not one of the program's spans).
    #[test]
    fn runs_count_the_programs_spans_in_attached_traces() {
        use crate::testing::span;
        use devtrace_model::{Status, StatusCode};
        let mut run = trace(
            1,
            vec![
                KeyValue::new(semconv::RUN_ID, "run-1"),
                KeyValue::new(semconv::RUN_COMMAND, "python app.py"),
                KeyValue::new(semconv::RUN_EXIT_CODE, AnyValue::Int(1)),
                KeyValue::new(
                    semconv::RUN_ATTACHED_TRACES,
                    AnyValue::Array(vec![AnyValue::String(TraceId([7; 16]).to_hex())]),
                ),
            ],
            vec![],
        );
        run.spans[0].status = Status {
            code: StatusCode::Error,
            message: "exited 1".into(),
        };
        let mut program = trace(2, vec![], vec![]);
        program.spans = vec![
            span(7, 1, None, "main", 1_000, 9_000),
            span(7, 2, Some(1), "load", 1_100, 2_000),
            Span {
                status: Status {
                    code: StatusCode::Error,
                    message: "boom".into(),
                },
                ..span(7, 3, Some(1), "save", 2_100, 3_000)
            },
        ];
        let (_dir, store) = store_with(vec![run, program]);
        let runs = list_runs(&store, None, 10).unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].span_count, runs[0].error_count), (3, 1));
    }
}
