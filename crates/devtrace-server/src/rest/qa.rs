//! QA of sessions over REST:
//!
//! | method | path | |
//! |---|---|---|
//! | `POST` | `/api/v1/sessions/{id}/qa` | queue QA of a session (an optional JSON body overrides settings); 202 |
//! | `GET` | `/api/v1/sessions/{id}/qa` | the session's QA jobs and latest result |
//! | `GET` | `/api/v1/qa/jobs` | jobs newest first, with counts by state (`state`, `limit`) |
//! | `GET` | `/api/v1/qa/jobs/{job}` | one job and its result |
//! | `POST` | `/api/v1/qa/jobs/{job}/cancel` | cancel a queued job, or stop a running one |
//! | `POST` | `/api/v1/qa/jobs/{job}/retry` | queue the job again (a new job); 202 |
//! | `GET` | `/api/v1/qa/summary` | QA over a repository's sessions (`repo`, `limit`) |
//!
//! The queue lives in the store: jobs queued here run on this server's workers
//! (`serve --qa-workers`), or on any process with workers over the same store.

use super::params::{Params, bounded_json};
use super::session_io::{json_body, session_error};
use super::traces::NoParams;
use super::{ApiError, ApiErrorBody, ApiResult, blocking};
use crate::json::Json;
use crate::state::ApiState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use devtrace_qa::options::QaOverrides;
use devtrace_qa::result::QaResult;
use devtrace_qa::summary::RepositoryQa;
use devtrace_qa::view::{JobView, SessionQa, job_view, session_qa};
use devtrace_qa::{QaError, QaOptions};
use devtrace_query::limits;
use devtrace_query::sessions::{repository_argument, resolve_session};
use devtrace_store::qa::{QaJobQuery, QaJobState};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(queue_session, session))
        .routes(routes!(jobs))
        .routes(routes!(job))
        .routes(routes!(cancel))
        .routes(routes!(retry))
        .routes(routes!(summary))
}

impl From<QaError> for ApiError {
    fn from(error: QaError) -> Self {
        match error {
            QaError::NoQueue => ApiError::new(StatusCode::NOT_IMPLEMENTED, error.to_string()),
            QaError::NotASession(_) | QaError::NoSuchJob(_) => {
                ApiError::new(StatusCode::NOT_FOUND, error.to_string())
            }
            QaError::Store(store) => store.into(),
        }
    }
}

fn session_id(
    store: &dyn devtrace_store::Store,
    id: &str,
) -> Result<devtrace_model::TraceId, ApiError> {
    resolve_session(store, id).map_err(|e| session_error(store, e))
}

/// A job queued (or the session's job already queued or running).
#[derive(Serialize, ToSchema)]
pub struct JobQueued {
    pub job: JobView,
    /// False when the session already had a queued or running job, which is returned.
    pub created: bool,
    /// Workers in this server that will run it (0: it waits for a process with workers).
    pub workers: usize,
}

fn queued(state: &ApiState, job: &devtrace_store::qa::QaJob, created: bool) -> Response {
    if let Some(qa) = &state.qa {
        qa.notify();
    }
    (
        StatusCode::ACCEPTED,
        Json(JobQueued {
            job: job_view(job),
            created,
            workers: state.qa.as_ref().map_or(0, |q| q.workers),
        }),
    )
        .into_response()
}

/// Queues QA of a session: its patch applied at its task's commit, its test command run at
/// the base commit and with the patch in an isolated runner, its work judged. A JSON body
/// (optional) overrides settings.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{id}/qa",
    tag = "qa",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or its own id")),
    request_body(content = QaOverrides, content_type = "application/json", description = "Optional settings"),
    responses(
        (status = 202, description = "Queued (or already queued or running)", body = JobQueued),
        (status = 400, description = "A bad setting", body = ApiErrorBody),
        (status = 404, description = "No such session", body = ApiErrorBody),
    )
)]
pub async fn queue_session(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let overrides = match &body {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => QaOverrides::default(),
        _ => {
            let body = json_body(&headers, body)?;
            let not_settings = |e: serde_json::Error| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not QA settings: {e}"),
                )
            };
            let value = bounded_json(&body, limits::SETTINGS_BODY, not_settings)?;
            serde_json::from_value(value).map_err(not_settings)?
        }
    };
    let defaults = state
        .qa
        .as_ref()
        .map(|q| q.defaults.clone())
        .unwrap_or_default();
    let options = overrides
        .apply(&defaults)
        .map_err(|(name, why)| ApiError::new(StatusCode::BAD_REQUEST, format!("{name}: {why}")))?;
    let store = Arc::clone(&state.store);
    let (job, created) = blocking(move || {
        let trace_id = session_id(store.as_ref(), &id)?;
        Ok(devtrace_qa::enqueue(
            store.as_ref(),
            trace_id,
            &options,
            None,
        )?)
    })
    .await?;
    Ok(queued(&state, &job, created))
}

/// A session's QA: its jobs, newest first, and the latest result (or, for a session imported
/// with QA done elsewhere, what it carries).
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}/qa",
    tag = "qa",
    params(("id" = String, Path, description = "The session: trace id, unique prefix, or its own id")),
    responses(
        (status = 200, description = "The session's QA", body = SessionQa),
        (status = 404, description = "No such session", body = ApiErrorBody),
    )
)]
pub async fn session(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<SessionQa> {
    Params::parse::<NoParams>(raw.as_deref())?;
    let store = Arc::clone(&state.store);
    Ok(Json(
        blocking(move || {
            let trace_id = session_id(store.as_ref(), &id)?;
            Ok(session_qa(store.as_ref(), trace_id)?)
        })
        .await?,
    ))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct JobListParams {
    /// Only jobs in these states (repeatable): queued, running, done, failed, cancelled.
    state: Option<Vec<String>>,
    /// How many jobs, 1 to 500 (default 50).
    limit: Option<usize>,
}

/// Jobs and counts.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    /// Jobs by state, over the whole queue.
    pub counts: BTreeMap<String, u64>,
    pub jobs: Vec<JobView>,
}

/// QA jobs, newest first, with counts by state (`devtrace qa status`).
#[utoipa::path(
    get,
    path = "/api/v1/qa/jobs",
    tag = "qa",
    params(JobListParams),
    responses(
        (status = 200, description = "Jobs and counts", body = JobList),
        (status = 400, description = "A parameter is malformed", body = ApiErrorBody),
    )
)]
pub async fn jobs(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<JobList> {
    let p = Params::parse::<JobListParams>(raw.as_deref())?;
    let mut states = Vec::new();
    for text in p.all("state") {
        states.push(QaJobState::parse(&text).ok_or_else(|| {
            ApiError::bad_parameter(
                "state",
                format!(
                    "{} is not a state; use queued, running, done, failed or cancelled",
                    devtrace_model::recorded::quote(&text)
                ),
            )
        })?);
    }
    let limit = p.number("limit", 50, 1..=500)?;
    let store = Arc::clone(&state.store);
    Ok(Json(
        blocking(move || {
            let queue = store.qa().ok_or(QaError::NoQueue)?;
            let counts = queue
                .job_counts()?
                .into_iter()
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect();
            let jobs = queue.jobs(&QaJobQuery {
                states,
                limit,
                ..Default::default()
            })?;
            Ok(JobList {
                counts,
                jobs: jobs.iter().map(job_view).collect(),
            })
        })
        .await?,
    ))
}

/// One job and its result.
#[derive(Serialize, ToSchema)]
pub struct JobDetail {
    pub job: JobView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<QaResult>,
}

fn job_detail(job: &devtrace_store::qa::QaJob) -> JobDetail {
    JobDetail {
        job: job_view(job),
        result: job
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
    }
}

fn job_number(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| {
        ApiError::bad_parameter(
            "job",
            format!(
                "{} is not a job number",
                devtrace_model::recorded::quote(text)
            ),
        )
    })
}

/// Runs `work` on the queue and job `id` (the path's `{job}`, checked) on a blocking thread.
async fn on_job<T: Send + 'static>(
    state: &ApiState,
    id: &str,
    raw: Option<&str>,
    work: impl FnOnce(&dyn devtrace_store::Store, i64) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    Params::parse::<NoParams>(raw)?;
    let id = job_number(id)?;
    let store = Arc::clone(&state.store);
    blocking(move || work(store.as_ref(), id)).await
}

fn queue_of(
    store: &dyn devtrace_store::Store,
) -> Result<&dyn devtrace_store::qa::QaQueue, ApiError> {
    Ok(store.qa().ok_or(QaError::NoQueue)?)
}

/// One QA job with its result.
#[utoipa::path(
    get,
    path = "/api/v1/qa/jobs/{job}",
    tag = "qa",
    params(("job" = i64, Path, description = "The job's number")),
    responses(
        (status = 200, description = "The job", body = JobDetail),
        (status = 404, description = "No such job", body = ApiErrorBody),
    )
)]
pub async fn job(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<JobDetail> {
    Ok(Json(
        on_job(&state, &id, raw.as_deref(), |store, id| {
            let job = queue_of(store)?.job(id)?.ok_or(QaError::NoSuchJob(id))?;
            Ok(job_detail(&job))
        })
        .await?,
    ))
}

/// Cancels a job: a queued one at once; a running one stops at its next heartbeat (within a
/// third of its lease) and ends cancelled. A finished job is returned as it is.
#[utoipa::path(
    post,
    path = "/api/v1/qa/jobs/{job}/cancel",
    tag = "qa",
    params(("job" = i64, Path, description = "The job's number")),
    responses(
        (status = 200, description = "The job now", body = JobView),
        (status = 404, description = "No such job", body = ApiErrorBody),
    )
)]
pub async fn cancel(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<JobView> {
    Ok(Json(
        on_job(&state, &id, raw.as_deref(), |store, id| {
            let job = queue_of(store)?.cancel(id)?.ok_or(QaError::NoSuchJob(id))?;
            Ok(job_view(&job))
        })
        .await?,
    ))
}

/// Queues a job again with the settings it had: a new job whose `retry_of` is this one. A
/// result that differs from the earlier one is marked flaky.
#[utoipa::path(
    post,
    path = "/api/v1/qa/jobs/{job}/retry",
    tag = "qa",
    params(("job" = i64, Path, description = "The job's number")),
    responses(
        (status = 202, description = "Queued (or the session's active job)", body = JobQueued),
        (status = 404, description = "No such job", body = ApiErrorBody),
    )
)]
pub async fn retry(
    state: ApiState,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (job, created) = on_job(&state, &id, raw.as_deref(), |store, id| {
        Ok(devtrace_qa::retry(store, id)?)
    })
    .await?;
    Ok(queued(&state, &job, created))
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; values are read through `Params`
pub struct SummaryParams {
    /// The repository: a directory (its sessions and those below it) or a repository URL.
    repo: String,
    /// Sessions looked at, the most recent, 1 to 500 (default 100).
    limit: Option<usize>,
}

/// QA across a repository's sessions: pass rate, mean scores per judge, common failure
/// reasons (infrastructure failures counted apart).
#[utoipa::path(
    get,
    path = "/api/v1/qa/summary",
    tag = "qa",
    params(SummaryParams),
    responses(
        (status = 200, description = "The repository's QA", body = RepositoryQa),
        (status = 400, description = "A parameter is missing or malformed", body = ApiErrorBody),
    )
)]
pub async fn summary(state: ApiState, RawQuery(raw): RawQuery) -> ApiResult<RepositoryQa> {
    let p = Params::parse::<SummaryParams>(raw.as_deref())?;
    let repo = p.text("repo").ok_or_else(|| {
        ApiError::bad_parameter("repo", "required: a directory or repository URL")
    })?;
    let limit = p.number("limit", 100, 1..=500)?;
    let store = Arc::clone(&state.store);
    Ok(Json(
        blocking(move || {
            Ok(devtrace_qa::summary::repository(
                store.as_ref(),
                &repository_argument(&repo),
                limit,
            )?)
        })
        .await?,
    ))
}

/// Queues QA of a session just stored, when the server checks sessions on upload and the
/// session has a task with a test command.
pub async fn on_upload(
    state: &ApiState,
    trace_id: devtrace_model::TraceId,
    document: &serde_json::Value,
) {
    let Some(qa) = state.qa.clone().filter(|q| q.on_upload) else {
        return;
    };
    if document["task"]["test_command"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return;
    }
    let store = Arc::clone(&state.store);
    let options: QaOptions = qa.defaults.clone();
    let queued = tokio::task::spawn_blocking(move || {
        devtrace_qa::enqueue(store.as_ref(), trace_id, &options, None)
    })
    .await;
    match queued {
        Ok(Ok(_)) => qa.notify(),
        Ok(Err(error)) => tracing::warn!(%error, "could not queue QA of an uploaded session"),
        Err(error) => tracing::warn!(%error, "could not queue QA of an uploaded session"),
    }
}
