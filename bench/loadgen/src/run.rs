//! The timed send phase: connections, workers, and how they get their work.
//!
//! Every connection has `--in-flight` workers (default 1, like an exporter
//! with one export in flight), each sending one batch at a time. Workers of both transports draw
//! request numbers from one source, so request `k` (and its trace ids) is
//! sent exactly once whichever transport takes it:
//!
//! * closed loop (default): a shared counter — each worker sends its next
//!   batch as soon as the previous one is done, as fast as the receiver allows;
//! * open loop (`--rate`): a pacer emits request numbers on a fixed schedule
//!   into a bounded queue, like an application feeding a batch span
//!   processor; when the queue is full the batch is dropped on the client and
//!   counted, so the offered load stays at the given rate however slow the
//!   receiver gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::{Mutex, mpsc};

use crate::batch::Pool;
use crate::grpc::GrpcSender;
use crate::http::HttpSender;
use crate::send::{Protocol, RetryPolicy, Sender, Stats, send_batch};

/// What to send, and how fast.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Requests to send in all; `None` sends until `duration` has passed.
    pub requests: Option<u64>,
    pub duration: Option<Duration>,
    /// Offered load in spans per second (open loop); `None` is closed loop.
    pub rate: Option<f64>,
    pub spans_per_request: u64,
    /// Capacity, in batches, of the open-loop queue.
    pub queue: usize,
    pub max_retries: u32,
    /// Hard limit of the send phase, retries included.
    pub send_timeout: Duration,
    /// Print a progress line to stderr every few seconds.
    pub progress: bool,
}

/// What the send phase did.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub grpc: Option<Stats>,
    pub http: Option<Stats>,
    /// From the first request until the last reply.
    pub wall: Duration,
    /// Batches (and their spans) the open-loop pacer offered.
    pub offered_requests: u64,
    pub offered_spans: u64,
    /// Batches dropped on the client because the queue was full.
    pub dropped_requests: u64,
    pub dropped_spans: u64,
    /// The send timeout cut the run short.
    pub timed_out: bool,
}

impl LoadResult {
    /// Both transports' counters merged.
    pub fn total(&self) -> Stats {
        let mut all = Stats::default();
        for s in [&self.grpc, &self.http].into_iter().flatten() {
            all.merge(s.clone());
        }
        all
    }
}

/// Opens `connections` connections per configured transport and returns
/// `in_flight` senders per connection: gRPC senders share their HTTP/2
/// connection (one stream each); HTTP/1.1 has no multiplexing, so there each
/// sender ends up with a keep-alive connection of its own.
pub async fn connect(
    grpc: Option<&str>,
    http: Option<&str>,
    connections: usize,
    in_flight: usize,
) -> Result<Vec<Sender>> {
    if connections == 0 || in_flight == 0 {
        bail!("--connections and --in-flight must be at least 1");
    }
    let mut senders = Vec::new();
    if let Some(addr) = grpc {
        for i in 0..connections {
            let s = GrpcSender::connect(addr)
                .await
                .with_context(|| format!("gRPC connection {} of {connections}", i + 1))?;
            senders.extend((0..in_flight).map(|_| Sender::Grpc(s.clone())));
        }
    }
    if let Some(addr) = http {
        let total = connections * in_flight;
        let s = HttpSender::connect(addr, total).await?;
        senders.extend((0..total).map(|_| Sender::Http(Box::new(s.clone()))));
    }
    if senders.is_empty() {
        bail!("nothing to send to: give --grpc ADDR and/or --http ADDR");
    }
    Ok(senders)
}

/// Where workers get request numbers from.
enum Jobs {
    Closed {
        next: AtomicU64,
        limit: u64,
        stop_at: Instant,
    },
    Open {
        rx: Mutex<mpsc::Receiver<u64>>,
    },
}

impl Jobs {
    async fn next(&self, deadline: Instant) -> Option<u64> {
        if Instant::now() >= deadline {
            return None;
        }
        match self {
            Jobs::Closed {
                next,
                limit,
                stop_at,
            } => {
                if Instant::now() >= *stop_at {
                    return None;
                }
                let job = next.fetch_add(1, Ordering::Relaxed);
                (job < *limit).then_some(job)
            }
            Jobs::Open { rx } => {
                let mut rx = rx.lock().await;
                tokio::time::timeout_at(deadline.into(), rx.recv())
                    .await
                    .ok()
                    .flatten()
            }
        }
    }
}

#[derive(Default)]
struct Progress {
    accepted: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
}

/// Runs the send phase with the given connections.
pub async fn run(pool: Arc<Pool>, senders: Vec<Sender>, plan: &LoadPlan) -> Result<LoadResult> {
    if pool.len() == 0 {
        bail!("the request pool is empty");
    }
    let start = Instant::now();
    let deadline = start + plan.send_timeout;
    let stop_at = plan
        .duration
        .map_or(deadline, |d| (start + d).min(deadline));
    let limit = plan.requests.unwrap_or(u64::MAX);
    let policy = RetryPolicy {
        max_retries: plan.max_retries,
        deadline,
    };
    let progress = Arc::new(Progress::default());

    let mut pacer = None;
    let jobs = match plan.rate {
        None => Arc::new(Jobs::Closed {
            next: AtomicU64::new(0),
            limit,
            stop_at,
        }),
        Some(rate) => {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("--rate must be a positive number of spans per second");
            }
            let (tx, rx) = mpsc::channel(plan.queue.max(1));
            let interval = plan.spans_per_request as f64 / rate;
            let pool = Arc::clone(&pool);
            pacer = Some(tokio::spawn(pace(
                tx, pool, start, interval, limit, stop_at,
            )));
            Arc::new(Jobs::Open { rx: Mutex::new(rx) })
        }
    };

    let ticker = plan.progress.then(|| {
        let progress = Arc::clone(&progress);
        tokio::spawn(report_progress(progress, start))
    });

    let mut workers = Vec::with_capacity(senders.len());
    for sender in senders {
        let jobs = Arc::clone(&jobs);
        let pool = Arc::clone(&pool);
        let progress = Arc::clone(&progress);
        workers.push(tokio::spawn(worker(sender, pool, jobs, policy, progress)));
    }
    let mut result = LoadResult::default();
    for w in workers {
        let (protocol, stats) = w.await.context("a sender task panicked")?;
        let slot = match protocol {
            Protocol::Grpc => &mut result.grpc,
            Protocol::Http => &mut result.http,
        };
        slot.get_or_insert_with(Stats::default).merge(stats);
    }
    result.wall = start.elapsed();
    if let Some(t) = ticker {
        t.abort();
    }

    if let Some(p) = pacer {
        let paced = p.await.context("the pacer task panicked")?;
        result.offered_requests = paced.offered_requests;
        result.offered_spans = paced.offered_spans;
        result.dropped_requests = paced.dropped_requests;
        result.dropped_spans = paced.dropped_spans;
        // Batches still queued when the send timeout struck were never sent.
        if let Jobs::Open { rx } = &*jobs {
            let mut rx = rx.lock().await;
            while let Ok(job) = rx.try_recv() {
                result.dropped_requests += 1;
                result.dropped_spans += pool.spans_of(job);
            }
        }
    }
    result.timed_out = Instant::now() >= deadline;
    Ok(result)
}

async fn worker(
    mut sender: Sender,
    pool: Arc<Pool>,
    jobs: Arc<Jobs>,
    policy: RetryPolicy,
    progress: Arc<Progress>,
) -> (Protocol, Stats) {
    let mut stats = Stats::default();
    while let Some(job) = jobs.next(policy.deadline).await {
        let (body, spans) = pool.request(job);
        let before = (stats.spans_accepted, stats.throttled, stats.requests_failed);
        send_batch(&mut sender, body, spans, policy, &mut stats).await;
        progress
            .accepted
            .fetch_add(stats.spans_accepted - before.0, Ordering::Relaxed);
        progress
            .throttled
            .fetch_add(stats.throttled - before.1, Ordering::Relaxed);
        progress
            .failed
            .fetch_add(stats.requests_failed - before.2, Ordering::Relaxed);
    }
    (sender.protocol(), stats)
}

#[derive(Debug, Default)]
struct Paced {
    offered_requests: u64,
    offered_spans: u64,
    dropped_requests: u64,
    dropped_spans: u64,
}

/// Emits request numbers every `interval` seconds until `limit` or `stop_at`.
async fn pace(
    tx: mpsc::Sender<u64>,
    pool: Arc<Pool>,
    start: Instant,
    interval: f64,
    limit: u64,
    stop_at: Instant,
) -> Paced {
    let mut paced = Paced::default();
    let mut job = 0u64;
    while job < limit {
        let due = start + Duration::from_secs_f64(interval * job as f64);
        if due >= stop_at {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let spans = pool.spans_of(job);
        paced.offered_requests += 1;
        paced.offered_spans += spans;
        match tx.try_send(job) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                paced.dropped_requests += 1;
                paced.dropped_spans += spans;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => break,
        }
        job += 1;
    }
    paced
}

async fn report_progress(progress: Arc<Progress>, start: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.tick().await;
    let mut last = 0u64;
    loop {
        tick.tick().await;
        let accepted = progress.accepted.load(Ordering::Relaxed);
        eprintln!(
            "[{:6.1}s] accepted {accepted} spans ({:.0} spans/s over the last 5 s), {} throttled replies, {} failed requests",
            start.elapsed().as_secs_f64(),
            (accepted - last) as f64 / 5.0,
            progress.throttled.load(Ordering::Relaxed),
            progress.failed.load(Ordering::Relaxed),
        );
        last = accepted;
    }
}
