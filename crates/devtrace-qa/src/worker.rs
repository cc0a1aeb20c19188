//! The worker pool: threads that claim jobs from the store's queue and run them.
//!
//! Each claimed job gets a heartbeat thread renewing its lease (every third of it). A
//! heartbeat that finds the job cancelled stops the run; one that finds the lease lost
//! (another worker took the job after this one stalled past its lease) stops it and writes
//! nothing. A finished job's result is recorded by [`QaQueue::finish`], which only the attempt
//! holding the job can do, then written into its session and marked so; a result recorded but
//! not yet written (the process died in between) is written when a pool next starts.
//!
//! Workers sleep until [`Notifier::notify`] (a job was enqueued in this process) or the poll
//! interval passes (jobs enqueued elsewhere, leases expiring).

use crate::pipeline::{self, JobOutcome};
use crate::project;
use crate::result::QaResult;
use crate::{QaContext, QaError};
use devtrace_analyze::AnalyzedTrace;
use devtrace_store::qa::{Heartbeat, QaFinish, QaJob, QaJobId, QaJobQuery, QaQueue};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the pool runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub workers: usize,
    /// How long a claim holds a job without a heartbeat.
    pub lease: Duration,
    /// How often an idle worker looks for jobs enqueued by other processes.
    pub poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 1,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
        }
    }
}

#[derive(Default)]
struct Wake {
    pending: Mutex<u64>,
    signal: Condvar,
}

/// Wakes an idle worker.
#[derive(Clone, Default)]
pub struct Notifier(Arc<Wake>);

impl Notifier {
    pub fn notify(&self) {
        *self.0.pending.lock().expect("wake lock") += 1;
        self.0.signal.notify_one();
    }

    fn wait(&self, timeout: Duration) {
        let mut pending = self.0.pending.lock().expect("wake lock");
        if *pending == 0 {
            pending = self
                .0
                .signal
                .wait_timeout(pending, timeout)
                .expect("wake lock")
                .0;
        }
        *pending = pending.saturating_sub(1);
    }
}

/// A running pool; [`Workers::shutdown`] stops it.
pub struct Workers {
    stop: Arc<AtomicBool>,
    notifier: Notifier,
    threads: Vec<JoinHandle<()>>,
    busy: Arc<AtomicUsize>,
}

/// This process's worker names: `host:pid:n`.
fn worker_name(n: usize) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let host = if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        "localhost".to_owned()
    };
    format!("{host}:{}:{n}", std::process::id())
}

impl Workers {
    /// Starts `config.workers` workers (none when 0).
    pub fn start(ctx: Arc<QaContext>, config: WorkerConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let notifier = Notifier::default();
        let busy = Arc::new(AtomicUsize::new(0));
        if config.workers > 0 {
            if let Some(queue) = ctx.store.qa() {
                release_orphans(queue);
            }
            crate::runner::sandbox::PidsCgroup::remove_stale();
            let ctx = Arc::clone(&ctx);
            std::thread::Builder::new()
                .name("qa-recover".into())
                .spawn(move || recover_unwritten(&ctx))
                .expect("spawning the QA recovery thread");
        }
        let threads = (0..config.workers)
            .map(|n| {
                let (ctx, stop, notifier, busy, config) = (
                    Arc::clone(&ctx),
                    Arc::clone(&stop),
                    notifier.clone(),
                    Arc::clone(&busy),
                    config.clone(),
                );
                std::thread::Builder::new()
                    .name(format!("qa-worker-{n}"))
                    .spawn(move || {
                        let name = worker_name(n);
                        while !stop.load(Ordering::Relaxed) {
                            let Some(queue) = ctx.store.qa() else {
                                return;
                            };
                            match queue.claim(&name, config.lease, None) {
                                Ok(Some(job)) => {
                                    busy.fetch_add(1, Ordering::Relaxed);
                                    process(&ctx, job, config.lease, &stop);
                                    busy.fetch_sub(1, Ordering::Relaxed);
                                }
                                Ok(None) => notifier.wait(config.poll),
                                Err(error) => {
                                    tracing::warn!(%error, "QA worker could not claim a job");
                                    notifier.wait(config.poll);
                                }
                            }
                        }
                    })
                    .expect("spawning a QA worker")
            })
            .collect();
        Self {
            stop,
            notifier,
            threads,
            busy,
        }
    }

    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// Jobs running now.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Stops claiming; running jobs are stopped and handed back to the queue.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in &self.threads {
            self.notifier.notify();
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Runs the job `id` in this thread (claiming it), for `qa run --wait` with no server: returns
/// the job as it ended. If another worker holds it, waits for that worker to finish it.
pub fn run_now(ctx: &QaContext, id: QaJobId, lease: Duration) -> Result<QaJob, QaError> {
    let queue = ctx.queue()?;
    let never = Arc::new(AtomicBool::new(false));
    loop {
        if let Some(job) = queue.claim(&worker_name(0), lease, Some(id))? {
            process(ctx, job, lease, &never);
        }
        let job = queue.job(id)?.ok_or(QaError::NoSuchJob(id))?;
        if !job.state.is_active() {
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs one claimed job to its end and records what happened, in the job's project.
fn process(ctx: &QaContext, job: QaJob, lease: Duration, stop: &Arc<AtomicBool>) {
    let scoped;
    let ctx = match ctx.for_project(job.project) {
        Ok(Some(other)) => {
            scoped = other;
            &scoped
        }
        Ok(None) => ctx,
        Err(error) => {
            tracing::warn!(job = job.id, %error, "QA job's project cannot be opened");
            if let Some(queue) = ctx.store.qa() {
                let _ = queue.release(job.id, job.attempts, &error.to_string());
            }
            return;
        }
    };
    let Some(queue) = ctx.store.qa() else {
        return;
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let lost = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicBool::new(false));
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let heartbeat = {
        let (cancel, lost, asked, done) = (
            Arc::clone(&cancel),
            Arc::clone(&lost),
            Arc::clone(&asked),
            Arc::clone(&done),
        );
        let (id, attempt) = (job.id, job.attempts);
        let store = Arc::clone(&ctx.store);
        std::thread::Builder::new()
            .name(format!("qa-heartbeat-{id}"))
            .spawn(move || {
                let every = (lease / 3).max(Duration::from_millis(20));
                let (finished, signal) = &*done;
                let mut finished = finished.lock().expect("heartbeat lock");
                loop {
                    finished = signal
                        .wait_timeout(finished, every)
                        .expect("heartbeat lock")
                        .0;
                    if *finished {
                        return;
                    }
                    let Some(queue) = store.qa() else { return };
                    match queue.heartbeat(id, attempt, lease) {
                        Ok(Heartbeat::Held) => {}
                        Ok(Heartbeat::CancelRequested) => {
                            asked.store(true, Ordering::Relaxed);
                            cancel.store(true, Ordering::Relaxed);
                        }
                        Ok(Heartbeat::Lost) => {
                            lost.store(true, Ordering::Relaxed);
                            cancel.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(error) => tracing::warn!(%error, job = id, "QA heartbeat failed"),
                    }
                }
            })
            .expect("spawning a QA heartbeat")
    };
    // A stopping pool cancels what runs; the job goes back to the queue below.
    let watcher = {
        let (cancel, done) = (Arc::clone(&cancel), Arc::clone(&done));
        let stop = Arc::clone(stop);
        std::thread::Builder::new()
            .name(format!("qa-stop-{}", job.id))
            .spawn(move || {
                let (finished, signal) = &*done;
                let mut finished = finished.lock().expect("watch lock");
                while !*finished {
                    if stop.load(Ordering::Relaxed) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    finished = signal
                        .wait_timeout(finished, Duration::from_millis(100))
                        .expect("watch lock")
                        .0;
                }
            })
            .expect("spawning a QA stop watcher")
    };
    let outcome = pipeline::run(ctx, &job, &cancel);
    {
        let (finished, signal) = &*done;
        *finished.lock().expect("heartbeat lock") = true;
        signal.notify_all();
    }
    let _ = heartbeat.join();
    let _ = watcher.join();
    if lost.load(Ordering::Relaxed) {
        tracing::warn!(
            job = job.id,
            "QA job lost its lease to another worker; its result is dropped"
        );
        return;
    }
    let recorded = match outcome {
        JobOutcome::Cancelled if asked.load(Ordering::Relaxed) => queue
            .finish(job.id, job.attempts, QaFinish::Cancelled)
            .map(|_| None),
        JobOutcome::Cancelled => queue
            .release(job.id, job.attempts, "the worker stopped while the job ran")
            .map(|_| None),
        JobOutcome::Retry(error) => queue.release(job.id, job.attempts, &error).map(|_| None),
        JobOutcome::Done(result) => {
            let json = serde_json::to_string(&*result).expect("results serialise");
            queue
                .finish(job.id, job.attempts, QaFinish::Done { result: json })
                .map(|held| held.then_some(result))
        }
        JobOutcome::Failed(result, error) => {
            let json = serde_json::to_string(&*result).expect("results serialise");
            queue
                .finish(
                    job.id,
                    job.attempts,
                    QaFinish::Failed {
                        error,
                        result: Some(json),
                    },
                )
                .map(|held| held.then_some(result))
        }
    };
    match recorded {
        Ok(Some(result)) => {
            if let Err(error) = write_into_session(ctx, queue, &job, &result) {
                tracing::warn!(job = job.id, %error, "QA result recorded but not yet written into its session");
            }
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(job = job.id, %error, "could not record the QA job's end"),
    }
}

/// Writes a recorded result into its session and marks the job so.
fn write_into_session(
    ctx: &QaContext,
    queue: &dyn QaQueue,
    job: &QaJob,
    result: &QaResult,
) -> Result<(), String> {
    let stored = ctx
        .store
        .get_trace(job.trace_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the session {} is gone", job.trace_id.to_hex()))?;
    let trace = AnalyzedTrace::new(job.trace_id, stored.spans);
    let span_id = project::qa_span_id(&trace, job.id);
    if !trace.spans.spans.iter().any(|s| s.span_id == span_id) {
        let document = crate::session::document(ctx.store.as_ref(), &trace);
        let batch = project::projection(&trace, document.as_ref(), result, &ctx.redactor)?;
        ctx.sink.write(batch)?;
    }
    queue.mark_projected(job.id).map_err(|e| e.to_string())
}

/// Hands back the running jobs whose worker was a process on this host that is gone (a
/// server killed mid-job), so they run again at once rather than when their lease expires.
/// A worker elsewhere, or a process id taken by another program, is left to the lease.
pub fn release_orphans(queue: &dyn QaQueue) -> usize {
    let Ok(running) = queue.jobs(&QaJobQuery {
        states: vec![devtrace_store::qa::QaJobState::Running],
        all_projects: true,
        limit: 10_000,
        ..Default::default()
    }) else {
        return 0;
    };
    let here = worker_name(0);
    let host = here.rsplitn(3, ':').nth(2).unwrap_or_default().to_owned();
    let mut released = 0;
    for job in running {
        let Some(worker) = job.worker.as_deref() else {
            continue;
        };
        let mut parts = worker.rsplitn(3, ':');
        let (_n, pid, worker_host) = (parts.next(), parts.next(), parts.next());
        let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let gone = worker_host == Some(host.as_str())
            && pid != std::process::id()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if gone
            && queue
                .release(
                    job.id,
                    job.attempts,
                    &format!("its worker ({worker}) stopped while the job ran"),
                )
                .unwrap_or(false)
        {
            tracing::info!(
                job = job.id,
                worker,
                "QA job handed back: its worker is gone"
            );
            released += 1;
        }
    }
    released
}

/// Writes the results recorded but not written into their sessions (the process stopped in
/// between).
fn recover_unwritten(ctx: &QaContext) {
    let Some(queue) = ctx.store.qa() else {
        return;
    };
    let Ok(jobs) = queue.jobs(&QaJobQuery {
        unprojected: true,
        all_projects: true,
        limit: 1000,
        ..Default::default()
    }) else {
        return;
    };
    for job in jobs {
        let scoped = match ctx.for_project(job.project) {
            Ok(scoped) => scoped,
            Err(error) => {
                tracing::warn!(job = job.id, %error, "QA job's project cannot be opened");
                continue;
            }
        };
        let ctx = scoped.as_ref().unwrap_or(ctx);
        let Some(result) = job
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str::<QaResult>(r).ok())
        else {
            continue;
        };
        if let Err(error) = write_into_session(ctx, queue, &job, &result) {
            tracing::warn!(job = job.id, %error, "could not write a recorded QA result into its session");
        }
    }
}

/// What the faces of a server hold to queue jobs: the defaults, whether sessions are checked
/// when they arrive (`serve --qa`), and a way to wake the workers.
#[derive(Clone)]
pub struct QaHandle {
    pub defaults: crate::QaOptions,
    /// Queue QA of every `trace-1.0.0` session with a task as it is stored.
    pub on_upload: bool,
    /// Workers in this process (0: jobs wait for a process that has some).
    pub workers: usize,
    notifier: Notifier,
}

impl QaHandle {
    pub fn new(defaults: crate::QaOptions, on_upload: bool, workers: &Workers) -> Self {
        Self {
            defaults,
            on_upload,
            workers: workers.threads.len(),
            notifier: workers.notifier(),
        }
    }

    /// A job was queued: wake a worker.
    pub fn notify(&self) {
        self.notifier.notify();
    }
}
