//! The store at a glance, operations and their analytics, comparisons, findings and runs.

use super::params::Params;
use super::traces::NoParams;
use super::{ApiError, ApiErrorBody, ApiResult, blocking};
use crate::json::Json;
use crate::state::ApiState;
use axum::extract::{Path, RawQuery};
use devtrace_analyze::perf::OperationTotal;
use devtrace_model::{Operation, OperationFilter};
use devtrace_query::Scope;
use devtrace_query::analytics::findings_list;
use devtrace_query::analytics::{
    DurationSeries, OperationAnalytics, WordedFinding, duration_series, operation_analytics,
};
use devtrace_query::comparison::{LabelledComparison, Selection, compare_selection};
use devtrace_query::overview::{Overview, OverviewLimits, overview_or_default, rank_roots};
use devtrace_query::runs::{RunSummary, list_runs};
use devtrace_query::scope::MAX_TRACES;
use devtrace_query::timefmt::now_nanos;
use devtrace_query::window::Window;
use devtrace_store::TraceQuery;

use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SinceParams {
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
}

/// What the store holds: services, time range, top operations, recent errors and runs.
#[utoipa::path(
    get,
    path = "/api/v1/overview",
    tag = "analysis",
    params(SinceParams),
    responses(
        (status = 200, description = "The overview", body = Overview),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn overview(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<Overview> {
    let p = Params::parse::<SinceParams>(raw.as_deref())?;
    let since = p.time("since")?;
    let store = state.store.clone();
    let view = blocking(move || {
        Ok(overview_or_default(
            &*store,
            since,
            now_nanos(),
            OverviewLimits::default(),
        )?)
    })
    .await?;
    Ok(Json(view))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ScopeParams {
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
    /// How many recent traces to read, 1 to 5000.
    last: Option<usize>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RankingParams {
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
    /// How many recent traces to read (default 1000; 200 with `service`).
    last: Option<usize>,
    /// Rank the operations this service handles (its spans whose parent is another service's,
    /// or none) over the traces it has spans in, instead of the root operations.
    service: Option<String>,
}

/// Operations ranked by total time over the recent traces.
#[derive(Serialize, ToSchema)]
pub struct OperationRanking {
    /// Traces ranked.
    pub traces: usize,
    pub operations: Vec<OperationTotal>,
}

/// Root operations, or one service's, ranked by total time (`devtrace perf` without an
/// operation, `devtrace perf --service S`).
#[utoipa::path(
    get,
    path = "/api/v1/operations",
    tag = "analysis",
    params(RankingParams),
    responses(
        (status = 200, description = "Operations by total time", body = OperationRanking),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn operations(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<OperationRanking> {
    let p = Params::parse::<RankingParams>(raw.as_deref())?;
    let since = p.time("since")?;
    let service = p.text("service");
    let store = state.store.clone();
    if let Some(service) = service {
        let scope = Scope {
            last: p.optional_number("last", 1..=MAX_TRACES)?,
            since_unix_nano: since,
        };
        let ranking = blocking(move || {
            let (operations, traces) =
                devtrace_query::operation::service_entry_points(&*store, &service, scope, 200)?;
            Ok(OperationRanking { traces, operations })
        })
        .await?;
        return Ok(Json(ranking));
    }
    let last = p.number("last", 1_000, 1..=MAX_TRACES * 20)?;
    let ranking = blocking(move || {
        let summaries = store.list_traces(&TraceQuery {
            runtime_only: true,
            since_unix_nano: since,
            limit: last,
            ..Default::default()
        })?;
        Ok(OperationRanking {
            traces: summaries.len(),
            operations: rank_roots(&summaries),
        })
    })
    .await?;
    Ok(Json(ranking))
}

/// Every span name stored, and every operation (name, service, kind).
#[derive(Serialize, ToSchema)]
pub struct OperationNames {
    /// Sorted.
    pub names: Vec<String>,
    /// Sorted by name, service and kind: a name a client and a server share is two entries.
    pub operations: Vec<Operation>,
}

/// Every span name ever stored (for filters and autocompletion).
#[utoipa::path(
    get,
    path = "/api/v1/operation-names",
    tag = "analysis",
    responses(
        (status = 200, description = "Span names, sorted", body = OperationNames),
        (status = 400, description = "An unknown parameter", body = ApiErrorBody),
    )
)]
pub async fn operation_names(
    state: ApiState,
    RawQuery(raw): RawQuery,
) -> ApiResult<OperationNames> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = state.store.clone();
    let (names, operations) =
        blocking(move || Ok((store.operation_names()?, store.operations()?))).await?;
    Ok(Json(OperationNames { names, operations }))
}

fn scope(p: &Params) -> Result<Scope, ApiError> {
    Ok(Scope {
        last: p.optional_number("last", 1..=MAX_TRACES)?,
        since_unix_nano: p.time("since")?,
    })
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OperationParams {
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
    /// How many recent runs to read, 1 to 5000.
    last: Option<usize>,
    /// Only spans of this service: a client span and the server span it calls share a name.
    service: Option<String>,
    /// Only spans of this kind: server, client, internal, producer, consumer.
    kind: Option<String>,
}

/// One operation over its recent runs: breakdown, histogram, percentiles over time, findings.
/// When the name belongs to several operations (services or kinds) and `service`/`kind` do not
/// narrow it to one, the one with the most spans is analysed and `other_identities` lists the
/// rest.
#[utoipa::path(
    get,
    path = "/api/v1/operations/{name}",
    tag = "analysis",
    params(
        ("name" = String, Path, description = "The span name (URL-encoded)"),
        OperationParams,
    ),
    responses(
        (status = 200, description = "The operation's analytics", body = OperationAnalytics),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
        (status = 404, description = "No span has that name; the message suggests close names", body = ApiErrorBody),
    )
)]
pub async fn operation(
    state: ApiState,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<OperationAnalytics> {
    let p = Params::parse::<OperationParams>(raw.as_deref())?;
    let scope = scope(&p)?;
    let filter = operation_filter(name, &p)?;
    let store = state.store.clone();
    let analytics =
        blocking(move || Ok(operation_analytics(&*store, &filter, scope, now_nanos())?)).await?;
    Ok(Json(analytics))
}

/// The operation `name`, narrowed by the `service` and `kind` parameters.
fn operation_filter(name: String, p: &Params) -> Result<OperationFilter, ApiError> {
    let kind = match p.text("kind") {
        None => None,
        Some(text) => Some(devtrace_model::parse_span_kind(&text).ok_or_else(|| {
            ApiError::bad_parameter(
                "kind",
                format!(
                    "{text:?} is not a span kind: use server, client, internal, producer or consumer"
                ),
            )
        })?),
    };
    Ok(OperationFilter {
        name,
        service: p.text("service"),
        kind,
    })
}

/// Most traces one request of [`operation_traces`] returns.
pub const MAX_OPERATION_TRACES: usize = MAX_TRACES * 20;

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OperationTracesParams {
    /// Only spans of this service: a client span and the server span it calls share a name.
    service: Option<String>,
    /// Only spans of this kind: server, client, internal, producer, consumer.
    kind: Option<String>,
    /// Only traces started at or after: `30m` (ago), an RFC 3339 UTC time, or Unix nanoseconds.
    since: Option<String>,
    /// How many of the newest traces, 1 to 100000 (default 50).
    limit: Option<usize>,
}

/// The newest traces containing a span of one operation.
#[derive(Serialize, ToSchema)]
pub struct OperationTraces {
    /// Newest first.
    pub traces: Vec<super::traces::TraceRow>,
}

/// The newest traces with a span of this operation (span name, narrowed by `service` and
/// `kind`), answered from the store's operation index in one request: what `devtrace perf
/// --service S` and every analysis of one operation read through `--server`. `GET
/// /api/v1/traces?operation=` filters by name only.
#[utoipa::path(
    get,
    path = "/api/v1/operations/{name}/traces",
    tag = "analysis",
    params(
        ("name" = String, Path, description = "The span name (URL-encoded)"),
        OperationTracesParams,
    ),
    responses(
        (status = 200, description = "The traces, newest first (none when no span matches)", body = OperationTraces),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn operation_traces(
    state: ApiState,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<OperationTraces> {
    let p = Params::parse::<OperationTracesParams>(raw.as_deref())?;
    let filter = operation_filter(name, &p)?;
    let since = p.time("since")?;
    let limit = p.number("limit", 50, 1..=MAX_OPERATION_TRACES)?;
    let store = state.store.clone();
    let traces = blocking(move || Ok(store.traces_with_operation(&filter, since, limit)?)).await?;
    Ok(Json(OperationTraces {
        traces: traces
            .into_iter()
            .map(super::traces::TraceRow::from)
            .collect(),
    }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SparklineParams {
    /// An operation (span name), repeatable, 1 to 50 of them.
    operation: Vec<String>,
    /// Points per series, 2 to 200 (default 30).
    points: Option<usize>,
}

/// Recent durations of operations, for sparklines.
#[derive(Serialize, ToSchema)]
pub struct Sparklines {
    pub series: Vec<DurationSeries>,
}

/// The last durations of traces containing each operation, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/sparklines",
    tag = "analysis",
    params(SparklineParams),
    responses(
        (status = 200, description = "One series per operation, in the order asked", body = Sparklines),
        (status = 400, description = "No operation, too many, or bad points", body = ApiErrorBody),
    )
)]
pub async fn sparklines(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<Sparklines> {
    let p = Params::parse::<SparklineParams>(raw.as_deref())?;
    let mut operations = p.all("operation");
    operations.dedup();
    if operations.is_empty() || operations.len() > 50 {
        return Err(ApiError::bad_parameter(
            "operation",
            format!(
                "give 1 to 50 operations (repeat the parameter), not {}",
                operations.len()
            ),
        ));
    }
    let points = p.number("points", 30, 2..=200)?;
    let store = state.store.clone();
    let series = blocking(move || {
        operations
            .iter()
            .map(|o| Ok(duration_series(&*store, o, points)?))
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    Ok(Json(Sparklines { series }))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CompareParams {
    /// Trace (or `devtrace run`) A, before: id or unique prefix. Give with `b`.
    a: Option<String>,
    /// Trace (or run) B, after.
    b: Option<String>,
    /// A `devtrace run` (run id, or its trace id or prefix): compared with `run_b`, each with
    /// the traces attached to it.
    run_a: Option<String>,
    /// The other run (after).
    run_b: Option<String>,
    /// Compare runs of this operation instead, with `last` or `before`/`after`.
    operation: Option<String>,
    /// The last N runs of `operation` (2 to 5000): the older half against the newer half.
    last: Option<usize>,
    /// A = runs of `operation` that started before this instant (`30m` ago, RFC 3339, or Unix
    /// nanoseconds).
    before: Option<String>,
    /// B = runs of `operation` that started at or after this instant.
    after: Option<String>,
}

/// Two traces, two runs, or two sets of runs of an operation, operation by operation.
#[utoipa::path(
    get,
    path = "/api/v1/compare",
    tag = "analysis",
    params(CompareParams),
    responses(
        (status = 200, description = "Per-operation deltas with a verdict", body = LabelledComparison),
        (status = 400, description = "Nothing or too much to compare, or a malformed value", body = ApiErrorBody),
        (status = 404, description = "No such trace or operation", body = ApiErrorBody),
    )
)]
pub async fn compare(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<LabelledComparison> {
    let p = Params::parse::<CompareParams>(raw.as_deref())?;
    let selection = match (p.text("run_a"), p.text("run_b")) {
        (Some(a), Some(b)) => Some(Selection::Runs { a, b }),
        (Some(_), None) => {
            return Err(ApiError::bad_parameter(
                "run_b",
                "give run B too (run_a and run_b)",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::bad_parameter(
                "run_a",
                "give run A too (run_a and run_b)",
            ));
        }
        (None, None) => None,
    };
    let selection = match (p.text("a"), p.text("b"), p.text("operation")) {
        _ if selection.is_some() => selection.expect("checked"),
        (Some(a), Some(b), None) => Selection::Traces { a, b },
        (Some(_), None, _) => {
            return Err(ApiError::bad_parameter("b", "give trace B too (a and b)"));
        }
        (None, Some(_), _) => {
            return Err(ApiError::bad_parameter("a", "give trace A too (a and b)"));
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(ApiError::bad_parameter(
                "operation",
                "give either two traces (a, b) or an operation, not both",
            ));
        }
        (None, None, Some(operation)) => {
            let last = p.optional_number("last", 2..=MAX_TRACES)?;
            let (before, after) = (p.time("before")?, p.time("after")?);
            match (last, before.is_some() || after.is_some()) {
                (Some(last), false) => Selection::Last { operation, last },
                (None, true) => Selection::Window {
                    operation,
                    before,
                    after,
                },
                (Some(_), true) => {
                    return Err(ApiError::bad_parameter(
                        "last",
                        "give either last or before/after, not both",
                    ));
                }
                (None, false) => {
                    return Err(ApiError::bad_parameter(
                        "last",
                        "with operation, give last (e.g. 10) or before/after",
                    ));
                }
            }
        }
        (None, None, None) => {
            return Err(ApiError::bad_parameter(
                "a",
                "say what to compare: two traces (a, b), two runs (run_a, run_b), or operation with last or before/after",
            ));
        }
    };
    let store = state.store.clone();
    let compared = blocking(move || {
        // Resolve ids here so a bad one is reported against its own parameter.
        let resolve = |text: &str, parameter: &str| -> Result<String, ApiError> {
            match store.resolve_trace_id(text) {
                Ok(id) => Ok(id.to_hex()),
                Err(e @ devtrace_store::StoreError::TraceNotFound(_)) => Err(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    format!("{parameter}: {e}"),
                )),
                Err(
                    e @ (devtrace_store::StoreError::InvalidTraceId(_)
                    | devtrace_store::StoreError::AmbiguousPrefix { .. }),
                ) => Err(ApiError::bad_parameter(parameter, e.to_string())),
                Err(e) => Err(e.into()),
            }
        };
        let selection = match selection {
            Selection::Traces { a, b } => Selection::Traces {
                a: resolve(&a, "a")?,
                b: resolve(&b, "b")?,
            },
            Selection::Runs { a, b } => Selection::Runs {
                a: resolve(&a, "run_a")?,
                b: resolve(&b, "run_b")?,
            },
            other => other,
        };
        Ok(compare_selection(&*store, &selection)?)
    })
    .await?;
    Ok(Json(compared))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FindingParams {
    /// Only traces started at or after: `30m` ago, RFC 3339, or Unix nanoseconds. With neither
    /// `since` nor `last`, the default window: the last hour, or the hour before the newest
    /// trace when nothing is that recent (`window` says which).
    since: Option<String>,
    /// How many recent traces to analyse, 1 to 5000 (at most 500 in the default window).
    last: Option<usize>,
    /// Only traces containing this operation.
    operation: Option<String>,
    /// Findings returned at most, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Findings, ranked by estimated saving.
#[derive(Serialize, ToSchema)]
pub struct FindingList {
    pub traces_analysed: usize,
    /// The default window, when neither `since` nor `last` was given.
    pub window: Option<Window>,
    /// Findings made, before `limit`.
    pub total: usize,
    /// Each with its impact in words (`impact_text`), as `devtrace insights` prints it.
    pub findings: Vec<WordedFinding>,
}

/// Findings across recent traces, ranked by estimated total saving, with evidence.
#[utoipa::path(
    get,
    path = "/api/v1/findings",
    tag = "analysis",
    params(FindingParams),
    responses(
        (status = 200, description = "Ranked findings", body = FindingList),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
        (status = 404, description = "No span has the given operation name", body = ApiErrorBody),
    )
)]
pub async fn findings(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<FindingList> {
    let p = Params::parse::<FindingParams>(raw.as_deref())?;
    let scope = Scope {
        last: p.optional_number("last", 1..=MAX_TRACES)?,
        since_unix_nano: p.time("since")?,
    };
    let operation = p.text("operation");
    let limit = p.number("limit", 50, 1..=500)?;
    let store = state.store.clone();
    let list = blocking(move || {
        let filter = operation.map(OperationFilter::named);
        let list = findings_list(&*store, scope, now_nanos(), filter.as_ref())?;
        Ok(FindingList {
            traces_analysed: list.traces_analysed,
            window: list.window,
            total: list.findings.len(),
            findings: list
                .findings
                .into_iter()
                .take(limit)
                .map(WordedFinding::from)
                .collect(),
        })
    })
    .await?;
    Ok(Json(list))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RunParams {
    /// Only runs recorded with `devtrace run --label LABEL`.
    label: Option<String>,
    /// Runs returned at most, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Recorded runs.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
}

/// `devtrace run` executions, newest first, with exit codes and test counts.
#[utoipa::path(
    get,
    path = "/api/v1/runs",
    tag = "analysis",
    params(RunParams),
    responses(
        (status = 200, description = "Runs, newest first", body = RunList),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn runs(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<RunList> {
    let p = Params::parse::<RunParams>(raw.as_deref())?;
    let label = p.text("label");
    let limit = p.number("limit", 50, 1..=500)?;
    let store = state.store.clone();
    let runs = blocking(move || Ok(list_runs(&*store, label.as_deref(), limit)?)).await?;
    Ok(Json(RunList { runs }))
}
