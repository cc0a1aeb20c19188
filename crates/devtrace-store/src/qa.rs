//! The QA job queue's interface: jobs that check a recorded session (apply its patch, run its
//! tests, judge it) kept durably in the store, claimed by workers under a lease.
//!
//! A job moves `queued → running → done | failed | cancelled`. A worker [`claims`] the oldest
//! claimable job: a queued one, or a running one whose lease expired (its worker died), in
//! one atomic step, so a job is never run twice at once; the claim counts an attempt and the
//! attempt number is the worker's token. While it works the worker renews the lease
//! ([`heartbeat`]); it ends the job with [`finish`], which only the current attempt can do, so
//! a result is written once, or hands it back after an infrastructure failure ([`release`]).
//! A job that used up its attempts fails. Cancelling a queued job ends it at once; a running
//! one is asked to stop at its next heartbeat.
//!
//! How backends map it: SQLite claims inside one `BEGIN IMMEDIATE` transaction (writers are
//! serialised, so select-then-update is atomic); PostgreSQL with
//! `UPDATE qa_jobs SET … WHERE id = (SELECT id FROM qa_jobs WHERE <claimable> ORDER BY id
//! FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING …`, so workers on several nodes skip each
//! other's rows. Times come from the backend's clock (on PostgreSQL the database's, shared by
//! every node). Jobs carry their project ([`QaJob::project`]).
//!
//! The queue stores a job's options and result as JSON text it does not interpret: their
//! shapes belong to `devtrace-qa`. It also caches LLM judgements by (session, rubric, model).
//!
//! [`claims`]: QaQueue::claim
//! [`heartbeat`]: QaQueue::heartbeat
//! [`finish`]: QaQueue::finish
//! [`release`]: QaQueue::release

use crate::{ProjectId, Result};
use devtrace_model::TraceId;
use serde::Serialize;
use std::time::Duration;

/// A job's row id.
pub type QaJobId = i64;

/// Where a job is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QaJobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl QaJobState {
    pub const ALL: [QaJobState; 5] = [
        Self::Queued,
        Self::Running,
        Self::Done,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Queued or running: the job may still produce a result.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }
}

/// One job as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QaJob {
    pub id: QaJobId,
    /// The project of the session (the embedded store holds the default one only). Workers
    /// claim from every project and read and write the job's session in this one.
    pub project: ProjectId,
    /// The session the job checks.
    pub trace_id: TraceId,
    pub state: QaJobState,
    /// What to run, as JSON (devtrace-qa's options).
    pub options: String,
    /// Claims so far; the current attempt's number is the worker's token.
    pub attempts: u32,
    pub max_attempts: u32,
    /// The worker holding (or that last held) the job.
    pub worker: Option<String>,
    pub lease_expires_unix_nano: Option<u64>,
    pub cancel_requested: bool,
    /// The job this one retries.
    pub retry_of: Option<QaJobId>,
    pub enqueued_unix_nano: u64,
    /// When the latest attempt was claimed.
    pub started_unix_nano: Option<u64>,
    pub finished_unix_nano: Option<u64>,
    /// Why the job failed, or why an earlier attempt was handed back (kept when a later attempt
    /// succeeds, so a job's history shows it).
    pub error: Option<String>,
    /// The result, as JSON (devtrace-qa's result), written once by the attempt that finished.
    pub result: Option<String>,
    /// The result has been written into the session too.
    pub projected: bool,
}

/// A job to add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewQaJob {
    pub trace_id: TraceId,
    pub options: String,
    /// At least 1.
    pub max_attempts: u32,
    pub retry_of: Option<QaJobId>,
}

/// What a lease renewal found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    /// The lease is renewed: carry on.
    Held,
    /// Someone asked to cancel: stop, then finish as cancelled.
    CancelRequested,
    /// The attempt no longer holds the job (its lease expired and another worker claimed it,
    /// or it ended): stop and write nothing.
    Lost,
}

/// How an attempt ends a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QaFinish {
    Done {
        result: String,
    },
    /// The job cannot succeed (the patch does not apply, the session has no task…); the result
    /// may still say what was found.
    Failed {
        error: String,
        result: Option<String>,
    },
    Cancelled,
}

impl QaFinish {
    /// What a backend stores for this ending: the job's final state, its error (kept as it was
    /// when `None`) and its result.
    pub fn into_stored(self) -> (QaJobState, Option<String>, Option<String>) {
        match self {
            QaFinish::Done { result } => (QaJobState::Done, None, Some(result)),
            QaFinish::Failed { error, result } => (QaJobState::Failed, Some(error), result),
            QaFinish::Cancelled => (
                QaJobState::Cancelled,
                Some("cancelled while running".to_owned()),
                None,
            ),
        }
    }
}

/// Filters for a job listing, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QaJobQuery {
    pub trace_id: Option<TraceId>,
    /// Any of these states (all when empty).
    pub states: Vec<QaJobState>,
    /// Only finished jobs whose result is not yet in their session.
    pub unprojected: bool,
    /// Jobs of every project, not only the handle's (for workers, which serve them all).
    pub all_projects: bool,
    pub limit: usize,
}

/// A cached LLM judgement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedJudgement {
    /// The hash of the prompt it answered: a session that changed has another.
    pub prompt_hash: String,
    pub result: String,
}

/// The QA job queue. Every backend implements it; [`crate::Store::qa`] gives access.
///
/// A queue reached through a handle scoped to a project ([`crate::Store::in_project`])
/// enqueues, lists, counts, cancels and reads that project's jobs and judgements; claims take
/// jobs of every project, and the attempt-bound steps (heartbeat, finish, release,
/// mark_projected) name a job its worker holds.
pub trait QaQueue: Send + Sync {
    /// Adds a job, unless the session already has an active one (queued or running), which is
    /// returned instead. Returns the job and whether it is new.
    fn enqueue(&self, job: &NewQaJob) -> Result<(QaJob, bool)>;
    /// Claims the oldest claimable job (or only `only`): a queued one, or a running one whose
    /// lease expired. Atomic: two workers never claim the same attempt. Running jobs whose
    /// lease expired with no attempts left become failed instead.
    fn claim(&self, worker: &str, lease: Duration, only: Option<QaJobId>) -> Result<Option<QaJob>>;
    /// Renews the lease of `attempt` of `job`.
    fn heartbeat(&self, job: QaJobId, attempt: u32, lease: Duration) -> Result<Heartbeat>;
    /// Ends `job` if `attempt` still holds it; false (and nothing written) otherwise.
    fn finish(&self, job: QaJobId, attempt: u32, finish: QaFinish) -> Result<bool>;
    /// Hands the job back after an infrastructure failure: queued again while attempts
    /// remain, failed with `error` otherwise. False if `attempt` no longer holds it.
    fn release(&self, job: QaJobId, attempt: u32, error: &str) -> Result<bool>;
    /// Cancels a queued job at once, or asks a running one to stop. Returns the job as it is
    /// now (`None` when there is no such job); a finished job is left as it was.
    fn cancel(&self, job: QaJobId) -> Result<Option<QaJob>>;
    /// Records that a finished job's result was written into its session.
    fn mark_projected(&self, job: QaJobId) -> Result<()>;
    fn job(&self, job: QaJobId) -> Result<Option<QaJob>>;
    /// Jobs newest first.
    fn jobs(&self, query: &QaJobQuery) -> Result<Vec<QaJob>>;
    /// Counts by state, for status views.
    fn job_counts(&self) -> Result<Vec<(QaJobState, u64)>>;
    fn cached_judgement(
        &self,
        trace_id: TraceId,
        rubric: &str,
        model: &str,
    ) -> Result<Option<CachedJudgement>>;
    /// Stores (or replaces) the judgement for (session, rubric, model).
    fn store_judgement(
        &self,
        trace_id: TraceId,
        rubric: &str,
        model: &str,
        judgement: &CachedJudgement,
    ) -> Result<()>;
}
