//! Retention: every project's data older than its retention is deleted continuously.
//!
//! A thread wakes every [`EVERY`], reads each project's retention (its own, else the
//! server's `--retention`), and deletes what is older through the group-commit writer, a few
//! hundred traces per transaction with a pause between them, so that ingest is never held up
//! by more than one small transaction. When the writer's queue is full the deletion waits
//! and tries again: ingest goes first.
//!
//! Every node of a team server runs it; two nodes deleting the same traces is harmless (the
//! second finds nothing), and the work is small next to ingest.

use devtrace_store::retention::delete_before;
use devtrace_store::writer::{SubmitError, WriteHandle};
use devtrace_store::{Backend, StoreError};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often retention runs.
pub const EVERY: Duration = Duration::from_secs(60);
/// Traces deleted per transaction.
const BATCH: usize = 500;
/// The pause between two deleting transactions.
const PAUSE: Duration = Duration::from_millis(20);

pub struct Retention {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Retention {
    /// Starts the thread; `default` is the retention of projects without their own.
    pub fn start(backend: Backend, writer: WriteHandle, default: Option<u64>) -> Self {
        Self::start_every(backend, writer, default, EVERY)
    }

    pub fn start_every(
        backend: Backend,
        writer: WriteHandle,
        default: Option<u64>,
        every: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("devtrace-retention".into())
            .spawn(move || {
                // A first pass soon after start, then one every `every`.
                let mut next = Instant::now() + Duration::from_secs(2).min(every);
                while !flag.load(Ordering::Relaxed) {
                    if Instant::now() < next {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    if let Err(error) = run_once(&backend, &writer, default, &flag) {
                        tracing::warn!(%error, "retention pass failed; retrying later");
                    }
                    next = Instant::now() + every;
                }
            })
            .ok();
        Self { stop, thread }
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One pass over every project.
pub fn run_once(
    backend: &Backend,
    writer: &WriteHandle,
    default: Option<u64>,
    stop: &AtomicBool,
) -> Result<(), StoreError> {
    let now = devtrace_query::timefmt::now_nanos();
    for project in backend.accounts.projects()? {
        let Some(keep) = project.retention_nanos.or(default) else {
            continue;
        };
        let cutoff = now.saturating_sub(keep);
        let store = backend.store.in_project(project.id)?;
        let deleted = delete_before(&*store, cutoff, BATCH, PAUSE, &mut |batch| {
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Err(StoreError::WriterStopped);
                }
                match writer.submit(batch.clone()) {
                    Ok(ticket) => {
                        return ticket
                            .wait()
                            .map_err(|e| StoreError::Database(e.to_string()));
                    }
                    // Ingest first: wait for room.
                    Err(SubmitError::Overloaded) => std::thread::sleep(Duration::from_millis(200)),
                    Err(SubmitError::Closed) => return Err(StoreError::WriterStopped),
                }
            }
        })?;
        if deleted.traces > 0 {
            tracing::info!(
                project = %project.name,
                traces = deleted.traces,
                spans = deleted.spans,
                "retention: deleted data older than {}",
                devtrace_model::time::format_rfc3339(cutoff)
            );
        }
    }
    Ok(())
}
