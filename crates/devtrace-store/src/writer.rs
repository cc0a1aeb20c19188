//! The group-commit writer: one thread, many requests per transaction.
//!
//! Receivers [`WriteHandle::submit`] a prepared batch and await its [`Ticket`]; the ticket
//! resolves only after the transaction holding the batch has committed, so a success reply is
//! never sent for data that is not durable. While one transaction commits, new batches queue
//! up and go into the next one together: the busier the server, the larger the transactions.
//!
//! The queue is bounded by items (spans + log records) and by bytes ([`WriteBatch::byte_size`]):
//! a few requests of huge values stay under the item bound yet could fill memory. A submission
//! that does not fit either bound is refused at once with [`SubmitError::Overloaded`], which
//! receivers turn into the protocol's retryable "slow down" reply; memory stays flat under
//! overload.

use crate::{ProjectId, StoreError, StoreWriter, WriteBatch};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterConfig {
    /// Spans + log records that may wait for the writer before submissions are refused.
    pub max_queued_items: u64,
    /// Bytes of prepared rows ([`WriteBatch::byte_size`]) that may wait for the writer before
    /// submissions are refused.
    pub max_queued_bytes: u64,
    /// Most items committed in one transaction.
    pub max_transaction_items: u64,
    /// Fold the write-ahead log into the database file when the writer stops (`serve`,
    /// imports). `devtrace run` commits a span or a few and leaves them in the log for the next
    /// opener ([`StoreWriter::keep_log_at_close`]): as durable, without a checkpoint's fsyncs.
    pub checkpoint_at_shutdown: bool,
}

/// Bytes of prepared rows that may wait for the writer by default. Rows are compressed, so
/// this is several times the request bodies they came from; the item bound is usually hit
/// first and this one holds when values are huge.
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 128 * 1024 * 1024;

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            max_queued_items: 200_000,
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            max_transaction_items: 50_000,
            checkpoint_at_shutdown: true,
        }
    }
}

/// Why a batch was not accepted for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("the write queue is full; retry shortly")]
    Overloaded,
    #[error("the writer is shutting down")]
    Closed,
}

/// The transaction holding a batch failed; the batch is not stored.
#[derive(Debug, Clone, thiserror::Error)]
#[error("commit failed: {0}")]
pub struct CommitFailed(pub Arc<StoreError>);

type Outcome = Result<(), CommitFailed>;

/// Resolves when the batch is durable (or its transaction failed).
pub struct Ticket(oneshot::Receiver<Outcome>);

impl Ticket {
    pub async fn committed(self) -> Outcome {
        self.0
            .await
            .unwrap_or_else(|_| Err(CommitFailed(Arc::new(StoreError::WriterStopped))))
    }

    /// For callers outside an async runtime (the importer).
    pub fn wait(self) -> Outcome {
        self.0
            .blocking_recv()
            .unwrap_or_else(|_| Err(CommitFailed(Arc::new(StoreError::WriterStopped))))
    }
}

struct Job {
    batch: WriteBatch,
    items: u64,
    bytes: u64,
    spans: u64,
    done: oneshot::Sender<Outcome>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Items queued or inside the transaction being committed.
    pending_items: u64,
    /// Bytes ([`WriteBatch::byte_size`]) queued or inside the transaction being committed.
    pending_bytes: u64,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    config: WriterConfig,
    /// What the backend wants the pipeline's chunks encoded for.
    chunk_use: crate::ChunkUse,
    committed_spans: AtomicU64,
    committed_transactions: AtomicU64,
}

/// Owns the writer thread. Dropping it without [`Writer::shutdown`] also drains and stops.
pub struct Writer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A cheap, cloneable way to submit batches.
#[derive(Clone)]
pub struct WriteHandle {
    shared: Arc<Shared>,
}

impl Writer {
    pub fn start(backend: Box<dyn StoreWriter>, config: WriterConfig) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            config,
            chunk_use: backend.chunk_use(),
            committed_spans: AtomicU64::new(0),
            committed_transactions: AtomicU64::new(0),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("devtrace-writer".into())
            .spawn(move || run(thread_shared, backend))
            .expect("spawning the writer thread");
        Self {
            shared,
            thread: Some(thread),
        }
    }

    pub fn handle(&self) -> WriteHandle {
        WriteHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Commits everything already queued, checkpoints, and stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared
            .queue
            .lock()
            .expect("writer queue poisoned")
            .closed = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl WriteHandle {
    /// How to encode the chunks of batches submitted here ([`StoreWriter::chunk_use`]).
    pub fn chunk_use(&self) -> crate::ChunkUse {
        self.shared.chunk_use
    }

    /// True when a batch of `items` items and `bytes` bytes would be accepted now. Lets
    /// receivers refuse an overloaded request before spending CPU on decoding it.
    pub fn has_room(&self, items: u64, bytes: u64) -> bool {
        let queue = self.shared.queue.lock().expect("writer queue poisoned");
        fits(&queue, items, bytes, &self.shared.config)
    }

    pub fn submit(&self, batch: WriteBatch) -> Result<Ticket, SubmitError> {
        let items = batch.items();
        let bytes = batch.byte_size();
        let spans = batch.span_count();
        let (done, ticket) = oneshot::channel();
        {
            let mut queue = self.shared.queue.lock().expect("writer queue poisoned");
            if queue.closed {
                return Err(SubmitError::Closed);
            }
            if !fits(&queue, items, bytes, &self.shared.config) {
                return Err(SubmitError::Overloaded);
            }
            queue.pending_items += items;
            queue.pending_bytes += bytes;
            queue.jobs.push_back(Job {
                batch,
                items,
                bytes,
                spans,
                done,
            });
        }
        self.shared.wake.notify_one();
        Ok(Ticket(ticket))
    }

    /// Spans committed by this writer since it started.
    pub fn committed_spans(&self) -> u64 {
        self.shared.committed_spans.load(Ordering::Relaxed)
    }

    pub fn committed_transactions(&self) -> u64 {
        self.shared.committed_transactions.load(Ordering::Relaxed)
    }

    /// Spans and log records waiting or being committed.
    pub fn pending_items(&self) -> u64 {
        self.shared
            .queue
            .lock()
            .expect("writer queue poisoned")
            .pending_items
    }

    /// Bytes of prepared rows waiting or being committed.
    pub fn pending_bytes(&self) -> u64 {
        self.shared
            .queue
            .lock()
            .expect("writer queue poisoned")
            .pending_bytes
    }
}

/// An empty queue takes any batch, so one oversized request cannot be refused forever.
fn fits(queue: &Queue, items: u64, bytes: u64, config: &WriterConfig) -> bool {
    queue.pending_items == 0 && queue.pending_bytes == 0
        || queue.pending_items + items <= config.max_queued_items
            && queue.pending_bytes + bytes <= config.max_queued_bytes
}

/// A failing commit is logged when its message changes, and otherwise at most once a minute,
/// so a full or read-only disk under retrying clients does not flood the log.
const REPEAT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

// A thread's whole loop: kept a frame of its own, so profiles can name the writer's share
// (bench/ingest-profile.sh).
#[inline(never)]
fn run(shared: Arc<Shared>, mut backend: Box<dyn StoreWriter>) {
    let mut last_logged: Option<(String, std::time::Instant)> = None;
    let mut repeats = 0u64;
    loop {
        let jobs = {
            let mut queue = shared.queue.lock().expect("writer queue poisoned");
            while queue.jobs.is_empty() && !queue.closed {
                queue = shared.wake.wait(queue).expect("writer queue poisoned");
            }
            if queue.jobs.is_empty() {
                break;
            }
            let mut taken = Vec::new();
            let mut items = 0;
            while let Some(job) = queue.jobs.front() {
                if !taken.is_empty() && items + job.items > shared.config.max_transaction_items {
                    break;
                }
                items += job.items;
                taken.push(queue.jobs.pop_front().expect("front exists"));
            }
            taken
        };
        let (batches, waiters): (Vec<WriteBatch>, Vec<_>) = jobs
            .into_iter()
            .map(|j| (j.batch, (j.items, j.bytes, j.spans, j.done)))
            .unzip();
        let outcome = backend.write(&batches).map_err(|e| {
            let message = e.to_string();
            let repeated = last_logged
                .as_ref()
                .is_some_and(|(last, at)| *last == message && at.elapsed() < REPEAT_LOG_EVERY);
            if repeated {
                repeats += 1;
            } else {
                tracing::error!(error = %e, repeats, "commit failed");
                last_logged = Some((message, std::time::Instant::now()));
                repeats = 0;
            }
            CommitFailed(Arc::new(e))
        });
        if outcome.is_ok() && last_logged.take().is_some() {
            tracing::info!(failed_since_logged = repeats, "commits succeed again");
            repeats = 0;
        }
        let (items, bytes, spans) = waiters
            .iter()
            .fold((0, 0, 0), |(i, b, s), w| (i + w.0, b + w.1, s + w.2));
        if outcome.is_ok() {
            shared.committed_spans.fetch_add(spans, Ordering::Relaxed);
            shared
                .committed_transactions
                .fetch_add(1, Ordering::Relaxed);
        }
        {
            let mut queue = shared.queue.lock().expect("writer queue poisoned");
            queue.pending_items -= items;
            queue.pending_bytes -= bytes;
        }
        for (_, _, _, done) in waiters {
            let _ = done.send(outcome.clone());
        }
    }
    if !shared.config.checkpoint_at_shutdown {
        backend.keep_log_at_close();
    } else if let Err(e) = backend.checkpoint() {
        tracing::warn!(error = %e, "checkpoint at shutdown failed");
    }
}

/// Spans committed per project, as far as this process has heard: the count live updates
/// (the web UI's event stream) compare to know that something arrived.
pub trait CommitFeed: Send + Sync {
    /// Spans committed to `project` since this process started listening.
    fn committed_spans(&self, project: ProjectId) -> u64;
}

impl CommitFeed for WriteHandle {
    /// The local writer sees every commit of a store only it writes to (one project).
    fn committed_spans(&self, _project: ProjectId) -> u64 {
        WriteHandle::committed_spans(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{batch, span};
    use crate::{Result, prepare_spans};
    use std::sync::mpsc;

    /// A backend that records transaction sizes and can be held shut by the test.
    struct Recording {
        sizes: Arc<Mutex<Vec<usize>>>,
        gate: Option<mpsc::Receiver<()>>,
    }

    impl StoreWriter for Recording {
        fn write(&mut self, batches: &[WriteBatch]) -> Result<()> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            self.sizes.lock().unwrap().push(batches.len());
            Ok(())
        }
        fn checkpoint(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn one_span_batch(n: u8) -> WriteBatch {
        prepare_spans(batch("s", vec![span(n, 1, None, "op", 1, 2)]))
    }

    #[test]
    fn queued_requests_share_a_transaction_and_all_are_acknowledged() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (open, gate) = mpsc::channel();
        let writer = Writer::start(
            Box::new(Recording {
                sizes: Arc::clone(&sizes),
                gate: Some(gate),
            }),
            WriterConfig::default(),
        );
        let handle = writer.handle();
        let tickets: Vec<Ticket> = (1..=10)
            .map(|n| handle.submit(one_span_batch(n)).unwrap())
            .collect();
        // The first transaction may hold only the first request; the rest queue behind it.
        open.send(()).unwrap();
        open.send(()).unwrap();
        for ticket in tickets {
            ticket.wait().unwrap();
        }
        let sizes = sizes.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 10);
        assert!(
            sizes.len() <= 2,
            "10 queued requests took {} transactions",
            sizes.len()
        );
        assert_eq!(handle.committed_spans(), 10);
        writer.shutdown();
    }

    #[test]
    fn a_full_queue_refuses_instead_of_growing() {
        let (open, gate) = mpsc::channel();
        let writer = Writer::start(
            Box::new(Recording {
                sizes: Arc::default(),
                gate: Some(gate),
            }),
            WriterConfig {
                max_queued_items: 3,
                max_transaction_items: 100,
                ..WriterConfig::default()
            },
        );
        let handle = writer.handle();
        let first: Vec<Ticket> = (1..=3)
            .map(|n| handle.submit(one_span_batch(n)).unwrap())
            .collect();
        assert!(!handle.has_room(1, 0));
        assert_eq!(
            handle.submit(one_span_batch(4)).err(),
            Some(SubmitError::Overloaded)
        );
        for _ in 0..3 {
            open.send(()).unwrap();
        }
        for ticket in first {
            ticket.wait().unwrap();
        }
        assert!(handle.has_room(1, 0));
        drop(open);
        writer.shutdown();
        assert_eq!(
            handle.submit(one_span_batch(5)).err(),
            Some(SubmitError::Closed)
        );
    }

    /// Whether SQLite's write-ahead log beside the store in `dir` holds anything.
    fn log_has_frames(dir: &std::path::Path) -> bool {
        std::fs::metadata(dir.join("devtrace.db-wal")).is_ok_and(|m| m.len() > 0)
    }

    fn write_one_span_and_stop(dir: &std::path::Path, checkpoint_at_shutdown: bool) {
        write_spans_and_stop(dir, 7..=7, checkpoint_at_shutdown);
    }

    /// One transaction per span of `ids`, then a stop.
    fn write_spans_and_stop(
        dir: &std::path::Path,
        ids: std::ops::RangeInclusive<u8>,
        checkpoint_at_shutdown: bool,
    ) {
        let writer = Writer::start(
            Box::new(crate::sqlite::SqliteWriter::open(dir).unwrap()),
            WriterConfig {
                checkpoint_at_shutdown,
                ..Default::default()
            },
        );
        for n in ids {
            writer
                .handle()
                .submit(one_span_batch(n))
                .unwrap()
                .wait()
                .unwrap();
        }
        writer.shutdown();
    }

    /// The log left for the next opener stays short, since that opener reads all of it: a
    /// writer that would leave more than 256 KiB folds it in at shutdown after all.
    #[test]
    fn a_long_log_is_folded_in_at_shutdown_even_when_it_would_be_kept() {
        let dir = tempfile::tempdir().unwrap();
        // Each transaction adds a few pages to the log: 100 are well past 256 KiB.
        write_spans_and_stop(dir.path(), 1..=100, false);
        assert!(!log_has_frames(dir.path()));
    }

    #[test]
    fn without_a_checkpoint_at_shutdown_what_was_acknowledged_is_read_from_the_log() {
        use crate::Store;
        let kept = tempfile::tempdir().unwrap();
        write_one_span_and_stop(kept.path(), false);
        // The connection closed without folding the log into the database file...
        assert!(log_has_frames(kept.path()));
        // ...and the next opener reads the acknowledged span from it.
        let store = crate::sqlite::SqliteStore::open(kept.path()).unwrap();
        let traces = store
            .list_traces(&crate::TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].span_count, 1);

        // With the checkpoint (the default), nothing is left in the log.
        let folded = tempfile::tempdir().unwrap();
        write_one_span_and_stop(folded.path(), true);
        assert!(!log_has_frames(folded.path()));
    }

    #[test]
    fn a_queue_full_in_bytes_refuses_though_items_would_fit() {
        let (open, gate) = mpsc::channel();
        // Compressed, the batches may differ by a byte or two.
        let sizes: Vec<u64> = (1..=3).map(|n| one_span_batch(n).byte_size()).collect();
        let two = sizes[0] + sizes[1];
        let writer = Writer::start(
            Box::new(Recording {
                sizes: Arc::default(),
                gate: Some(gate),
            }),
            WriterConfig {
                max_queued_items: 1_000,
                max_queued_bytes: two,
                max_transaction_items: 100,
                ..WriterConfig::default()
            },
        );
        let handle = writer.handle();
        let first: Vec<Ticket> = (1..=2)
            .map(|n| handle.submit(one_span_batch(n)).unwrap())
            .collect();
        assert_eq!(handle.pending_items(), 2);
        assert_eq!(handle.pending_bytes(), two);
        assert!(!handle.has_room(1, sizes[2]));
        assert!(handle.has_room(1, 0), "the item bound alone has room");
        assert_eq!(
            handle.submit(one_span_batch(3)).err(),
            Some(SubmitError::Overloaded)
        );
        for _ in 0..2 {
            open.send(()).unwrap();
        }
        for ticket in first {
            ticket.wait().unwrap();
        }
        assert_eq!(handle.pending_bytes(), 0);
        assert!(handle.submit(one_span_batch(3)).is_ok());
        open.send(()).unwrap();
        drop(open);
        writer.shutdown();
    }

    #[test]
    fn an_empty_queue_takes_a_batch_larger_than_the_byte_bound() {
        let writer = Writer::start(
            Box::new(Recording {
                sizes: Arc::default(),
                gate: None,
            }),
            WriterConfig {
                max_queued_bytes: 1,
                ..WriterConfig::default()
            },
        );
        writer
            .handle()
            .submit(one_span_batch(1))
            .unwrap()
            .wait()
            .unwrap();
        writer.shutdown();
    }

    #[test]
    fn a_failing_commit_is_reported_to_every_waiter() {
        struct Failing;
        impl StoreWriter for Failing {
            fn write(&mut self, _: &[WriteBatch]) -> Result<()> {
                Err(StoreError::Corrupt("disk on fire".into()))
            }
            fn checkpoint(&mut self) -> Result<()> {
                Ok(())
            }
        }
        let writer = Writer::start(Box::new(Failing), WriterConfig::default());
        let error = writer
            .handle()
            .submit(one_span_batch(1))
            .unwrap()
            .wait()
            .unwrap_err();
        assert!(error.to_string().contains("disk on fire"));
        assert_eq!(writer.handle().committed_spans(), 0);
    }
}
