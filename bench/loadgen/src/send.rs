//! Sending one batch the way an OTLP exporter does: retry the same bytes
//! after throttling replies (waiting as long as the server asks, 100 ms if it
//! does not say), retry transient failures with back-off a bounded number of
//! times, drop the batch on a permanent error, and count all of it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::grpc::GrpcSender;
use crate::http::HttpSender;

/// Delay after a throttling reply that names none.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(100);
/// Longest wait honoured from a single Retry-After / RetryInfo.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver took the batch; `rejected` spans of it were refused
    /// (OTLP partial success).
    Accepted { rejected: u64, message: String },
    /// gRPC UNAVAILABLE / RESOURCE_EXHAUSTED or HTTP 429 / 503.
    Throttled { retry_after: Option<Duration> },
    /// A reply the OTLP specification calls retryable (e.g. HTTP 502).
    Retryable(String),
    /// No reply: connection refused or reset, and the like.
    Transport(String),
    /// A permanent error: the batch is dropped.
    Failed(String),
}

/// The two OTLP transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Grpc,
    Http,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

/// A connection of either transport.
#[derive(Debug, Clone)]
pub enum Sender {
    Grpc(GrpcSender),
    /// Boxed: the pooled client is much larger than a gRPC channel.
    Http(Box<HttpSender>),
}

impl Sender {
    pub fn protocol(&self) -> Protocol {
        match self {
            Sender::Grpc(_) => Protocol::Grpc,
            Sender::Http(_) => Protocol::Http,
        }
    }

    pub async fn send(&mut self, body: Bytes) -> Outcome {
        match self {
            Sender::Grpc(s) => s.send(body).await,
            Sender::Http(s) => s.send(body).await,
        }
    }
}

/// Counters of one sender (or, merged, of one transport).
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Batches taken for sending (each counted once, however often retried).
    pub requests: u64,
    /// Batches the receiver accepted.
    pub requests_ok: u64,
    /// Batches given up on (permanent error, retries exhausted, timeout).
    pub requests_failed: u64,
    pub spans_sent: u64,
    pub spans_accepted: u64,
    /// Spans refused in partial-success replies.
    pub spans_rejected: u64,
    pub spans_failed: u64,
    /// Throttling replies (each one is followed by a retry).
    pub throttled: u64,
    /// Retries after transient errors (not throttling).
    pub retries: u64,
    /// Total time spent waiting before retries.
    pub backoff: Duration,
    /// Latency of each successful attempt, in microseconds.
    pub latencies_us: Vec<u64>,
    /// The first few distinct error messages.
    pub errors: Vec<String>,
}

impl Stats {
    fn note(&mut self, message: String) {
        if self.errors.len() < 5 && !self.errors.contains(&message) {
            self.errors.push(message);
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.requests_ok += other.requests_ok;
        self.requests_failed += other.requests_failed;
        self.spans_sent += other.spans_sent;
        self.spans_accepted += other.spans_accepted;
        self.spans_rejected += other.spans_rejected;
        self.spans_failed += other.spans_failed;
        self.throttled += other.throttled;
        self.retries += other.retries;
        self.backoff += other.backoff;
        self.latencies_us.extend(other.latencies_us);
        for e in other.errors {
            self.note(e);
        }
    }
}

/// Retry limits.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after transient errors before a batch is dropped; throttling
    /// replies are retried without limit until `deadline`.
    pub max_retries: u32,
    /// No attempt starts after this instant.
    pub deadline: Instant,
}

/// Sends `body` (holding `spans` spans) until it is accepted or given up on.
pub async fn send_batch(
    sender: &mut Sender,
    body: Bytes,
    spans: u64,
    policy: RetryPolicy,
    stats: &mut Stats,
) {
    stats.requests += 1;
    stats.spans_sent += spans;
    let mut transient = 0u32;
    loop {
        if Instant::now() >= policy.deadline {
            stats.requests_failed += 1;
            stats.spans_failed += spans;
            stats.note("send timeout reached while retrying".to_string());
            return;
        }
        let started = Instant::now();
        let outcome = sender.send(body.clone()).await;
        let elapsed = started.elapsed();
        let wait = match outcome {
            Outcome::Accepted { rejected, message } => {
                let rejected = rejected.min(spans);
                stats.requests_ok += 1;
                stats.spans_accepted += spans - rejected;
                stats.spans_rejected += rejected;
                stats.latencies_us.push(elapsed.as_micros() as u64);
                if !message.is_empty() {
                    stats.note(format!("partial success: {message}"));
                }
                return;
            }
            Outcome::Throttled { retry_after } => {
                stats.throttled += 1;
                retry_after
                    .unwrap_or(DEFAULT_RETRY_DELAY)
                    .min(MAX_RETRY_DELAY)
            }
            Outcome::Retryable(message) | Outcome::Transport(message) => {
                transient += 1;
                if transient > policy.max_retries {
                    stats.requests_failed += 1;
                    stats.spans_failed += spans;
                    stats.note(format!(
                        "gave up after {} retries: {message}",
                        policy.max_retries
                    ));
                    return;
                }
                stats.retries += 1;
                stats.note(message);
                // 100 ms, doubling up to 1.6 s.
                DEFAULT_RETRY_DELAY * (1u32 << (transient - 1).min(4))
            }
            Outcome::Failed(message) => {
                stats.requests_failed += 1;
                stats.spans_failed += spans;
                stats.note(message);
                return;
            }
        };
        let wait = wait.min(policy.deadline.saturating_duration_since(Instant::now()));
        stats.backoff += wait;
        tokio::time::sleep(wait).await;
    }
}
