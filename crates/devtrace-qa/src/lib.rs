//! QA of recorded development sessions.
//!
//! Owns what happens to a session once someone asks "did this work, and how well?": the
//! session's patch ([`session`]: the final patch, its edit events, or an agent's edits
//! [`replay`]ed), the repository at the task's commit ([`repo`]: a cache of mirrors), the
//! patch applied by a fallback chain ([`apply`]), the test command run twice in an isolated
//! [`runner`] and compared test by test ([`compare`]), the [`judge`]s, and the queue's
//! [`worker`]s that run it all as durable jobs. The [`pipeline`] strings one job together; its
//! [`result`] is written into the session ([`project`]) and read back for every face
//! ([`view`], [`summary`]).
//!
//! It sits above the store (the queue's table is behind `devtrace_store::qa::QaQueue`; this
//! crate writes no SQL) and the analysis (sessions read as actions). It runs processes (git,
//! patch, bubblewrap, a container engine) and, only when configured, calls an LLM over HTTP.
//! It must not format for a particular face beyond the plain texts in [`view`].

pub mod apply;
pub mod compare;
pub mod conventions;
pub mod judge;
pub mod options;
pub mod pipeline;
pub mod project;
pub mod replay;
pub mod repo;
pub mod result;
pub mod runner;
pub mod session;
pub mod summary;
pub mod view;
pub mod worker;

use devtrace_ingest::redact::Redactor;
use devtrace_model::TraceId;
use devtrace_store::qa::{NewQaJob, QaJob, QaJobId, QaQueue};
use devtrace_store::writer::{SubmitError, WriteHandle};
use devtrace_store::{ProjectId, Store, StoreError, StoreWriter, WriteBatch};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use options::{QaOptions, RunnerKind};
pub use result::QaResult;

/// Why a QA request failed.
#[derive(Debug, thiserror::Error)]
pub enum QaError {
    #[error(
        "this store keeps no QA job queue: QA runs on the embedded store or PostgreSQL (devtrace serve --qa)"
    )]
    NoQueue,
    #[error("{0:?} is not a development session")]
    NotASession(String),
    #[error("no QA job {0}: `devtrace qa status` lists them")]
    NoSuchJob(QaJobId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where results and their large values are written: the group-commit writer in a server,
/// the store's writer in a command.
pub trait ResultSink: Send + Sync {
    fn write(&self, batch: WriteBatch) -> Result<(), String>;
}

impl ResultSink for WriteHandle {
    fn write(&self, batch: WriteBatch) -> Result<(), String> {
        // QA writes are few and small: wait out a full queue rather than fail the job.
        let mut waited = 0;
        loop {
            match self.submit(batch.clone()) {
                Ok(ticket) => return ticket.wait().map_err(|e| e.to_string()),
                Err(SubmitError::Overloaded) if waited < 300 => {
                    waited += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

/// Writes into one project (a job's), whatever project its batches were made for.
struct ProjectSink {
    inner: Arc<dyn ResultSink>,
    project: ProjectId,
}

impl ResultSink for ProjectSink {
    fn write(&self, batch: WriteBatch) -> Result<(), String> {
        self.inner.write(batch.in_project(self.project))
    }
}

/// A sink over a store writer owned by this process (no server running).
pub struct DirectSink(pub Mutex<Box<dyn StoreWriter>>);

impl ResultSink for DirectSink {
    fn write(&self, batch: WriteBatch) -> Result<(), String> {
        self.0
            .lock()
            .map_err(|_| "the store writer is poisoned".to_owned())?
            .write(&[batch])
            .map_err(|e| e.to_string())
    }
}

/// What the workers need.
pub struct QaContext {
    pub store: Arc<dyn Store>,
    pub sink: Arc<dyn ResultSink>,
    pub clones: repo::CloneCache,
    /// Where checkouts are made (removed after each job).
    pub work_dir: PathBuf,
    /// Directories test commands must not see (the data directory).
    pub hide: Vec<PathBuf>,
    /// The LLM judge, when configured.
    pub llm: Option<judge::llm::LlmConfig>,
    pub redactor: Arc<Redactor>,
}

impl QaContext {
    /// The usual layout under a data directory: `DATA/qa/repos` (the clone cache) and
    /// `DATA/qa/work` (checkouts), the data directory hidden from test commands.
    pub fn in_data_dir(
        data: &Path,
        store: Arc<dyn Store>,
        sink: Arc<dyn ResultSink>,
        redactor: Arc<Redactor>,
        llm: Option<judge::llm::LlmConfig>,
    ) -> Self {
        let data = data.canonicalize().unwrap_or_else(|_| data.to_owned());
        Self {
            store,
            sink,
            clones: repo::CloneCache::new(data.join("qa").join("repos")),
            work_dir: data.join("qa").join("work"),
            hide: vec![data],
            llm,
            redactor,
        }
    }

    /// The same context in `project` (the store read there, results written there), or
    /// `None` when it is this context's project already. Workers serve every project.
    pub fn for_project(&self, project: ProjectId) -> Result<Option<Self>, StoreError> {
        if project == self.store.project() {
            return Ok(None);
        }
        Ok(Some(Self {
            store: self.store.in_project(project)?,
            sink: Arc::new(ProjectSink {
                inner: Arc::clone(&self.sink),
                project,
            }),
            clones: self.clones.clone(),
            work_dir: self.work_dir.clone(),
            hide: self.hide.clone(),
            llm: self.llm.clone(),
            redactor: Arc::clone(&self.redactor),
        }))
    }

    pub fn queue(&self) -> Result<&dyn QaQueue, QaError> {
        self.store.qa().ok_or(QaError::NoQueue)
    }
}

/// Attempts a job gets (a clone that failed, a worker that died).
pub const MAX_ATTEMPTS: u32 = 3;

/// Queues QA of the session `trace_id` (or returns its active job). Checks the session exists.
pub fn enqueue(
    store: &dyn Store,
    trace_id: TraceId,
    options: &QaOptions,
    retry_of: Option<QaJobId>,
) -> Result<(QaJob, bool), QaError> {
    let queue = store.qa().ok_or(QaError::NoQueue)?;
    if store.session(trace_id)?.is_none() {
        return Err(QaError::NotASession(trace_id.to_hex()));
    }
    Ok(queue.enqueue(&NewQaJob {
        trace_id,
        options: options.to_json(),
        max_attempts: MAX_ATTEMPTS,
        retry_of,
    })?)
}

/// Queues a job again with the options it had (a new job, `retry_of` the old one).
pub fn retry(store: &dyn Store, id: QaJobId) -> Result<(QaJob, bool), QaError> {
    let queue = store.qa().ok_or(QaError::NoQueue)?;
    let old = queue.job(id)?.ok_or(QaError::NoSuchJob(id))?;
    let options = QaOptions::from_json(&old.options).unwrap_or_default();
    enqueue(store, old.trace_id, &options, Some(old.id))
}

/// Now, in Unix nanoseconds.
pub fn now_unix_nano() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
