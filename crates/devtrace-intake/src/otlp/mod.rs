//! OTLP batches into the store: decode → validate → redact → prepare → group commit, with
//! admission control (requests and bytes in flight) and the acknowledgement a receiver gives
//! only once the data is committed ([`Ingestor`]). Transport-agnostic: the gRPC and HTTP
//! receivers (devtrace-server) translate to and from it.
//!
//! Log records that are a coding agent's own events (Claude Code, Codex CLI, Gemini CLI) also
//! become session spans ([`prepare_log_batch`]), committed in the same transaction as the
//! records, so a session appears as its events arrive. Metrics are stored with the session
//! and usage quantity each series belongs to ([`prepare_metric_batch`]).

mod prepare;

pub use prepare::{prepare_log_batch, prepare_metric_batch, redact_metrics};

use crate::commit::CommitError;
use devtrace_ingest::otlp::{
    collector::{
        logs::v1::{ExportLogsPartialSuccess, ExportLogsServiceResponse},
        metrics::v1::{ExportMetricsPartialSuccess, ExportMetricsServiceResponse},
        trace::v1::{ExportTracePartialSuccess, ExportTraceServiceResponse},
    },
    logs::v1::ResourceLogs,
    metrics::v1::ResourceMetrics,
};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::{DecodeError, Limits, json, proto, wire};
use devtrace_store::writer::WriteHandle;
use devtrace_store::{ProjectId, WriteBatch, prepare_spans_for};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Which OTLP signal a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// How long throttled clients are asked to wait before retrying.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body could not be decoded; nothing from it is stored. Not retryable.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// Too much is in flight: requests or their bytes, or the write queue's items or bytes.
    /// Retryable after [`RETRY_AFTER`].
    #[error("devtrace is busy writing; retry after {}s", RETRY_AFTER.as_secs())]
    Overloaded,
    /// The data could not be committed (shutting down, disk error). Retryable.
    #[error("devtrace could not store the data: {0}")]
    Unavailable(String),
}

impl From<CommitError> for IngestError {
    fn from(error: CommitError) -> Self {
        match error {
            CommitError::Overloaded => Self::Overloaded,
            CommitError::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

/// What the reply reports: rejected items (partial success) and why.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    pub accepted: u64,
    pub rejected: u64,
    pub error_message: String,
}

impl Receipt {
    pub fn trace_response(&self) -> ExportTraceServiceResponse {
        ExportTraceServiceResponse {
            partial_success: (self.rejected > 0 || !self.error_message.is_empty()).then(|| {
                ExportTracePartialSuccess {
                    rejected_spans: self.rejected as i64,
                    error_message: self.error_message.clone(),
                }
            }),
        }
    }

    pub fn metrics_response(&self) -> ExportMetricsServiceResponse {
        ExportMetricsServiceResponse {
            partial_success: (self.rejected > 0 || !self.error_message.is_empty()).then(|| {
                ExportMetricsPartialSuccess {
                    rejected_data_points: self.rejected as i64,
                    error_message: self.error_message.clone(),
                }
            }),
        }
    }

    pub fn logs_response(&self) -> ExportLogsServiceResponse {
        ExportLogsServiceResponse {
            partial_success: (self.rejected > 0 || !self.error_message.is_empty()).then(|| {
                ExportLogsPartialSuccess {
                    rejected_log_records: self.rejected as i64,
                    error_message: self.error_message.clone(),
                }
            }),
        }
    }
}

/// Requests admitted at once by default: enough to keep two cores busy, few enough that their
/// bodies cannot add up to much memory. 48, not 64: under 2× overload the server's peak memory
/// is then no higher than before issue 46's speed-ups let more requests through at once, at a
/// higher rate still (docs/PERFORMANCE.md, "Memory under 2× overload").
pub const DEFAULT_MAX_IN_FLIGHT_REQUESTS: usize = 48;

/// Bytes of request bodies that admitted requests may hold at once by default (as received,
/// and again once decompressed), from reading the body until its data is committed: with
/// 16 MiB bodies, about eight large requests at a time, whatever their number.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 256 * 1024 * 1024;

pub struct Ingestor {
    writer: WriteHandle,
    limits: Limits,
    redactor: Arc<Redactor>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    bytes: Arc<InFlightBytes>,
    max_in_flight_bytes: usize,
}

/// The bytes charged by requests being processed, and the most ever charged at once.
#[derive(Default)]
struct InFlightBytes {
    now: AtomicUsize,
    peak: AtomicUsize,
}

/// Bytes of one request's body counted against [`DEFAULT_MAX_IN_FLIGHT_BYTES`]; given back when
/// dropped (after the reply, so after the commit).
#[must_use]
pub struct Charge {
    bytes: Arc<InFlightBytes>,
    charged: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.bytes.now.fetch_sub(self.charged, Ordering::AcqRel);
    }
}

/// A request's place among those being processed; released when dropped (after the reply).
pub struct Admission(Arc<AtomicUsize>);

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Ingestor {
    pub fn new(writer: WriteHandle, limits: Limits) -> Self {
        Self {
            writer,
            limits,
            redactor: Redactor::shared_builtin(),
            in_flight: Arc::default(),
            max_in_flight: DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            bytes: Arc::default(),
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
        }
    }

    #[must_use]
    pub fn with_max_in_flight_bytes(mut self, max: usize) -> Self {
        self.max_in_flight_bytes = max.max(1);
        self
    }

    /// Counts `bytes` of a request's body (read, or about to be read as its `Content-Length`
    /// says, or decompressed) against the in-flight byte budget, or refuses the request with
    /// the retryable throttle when they would take it past the budget. A request is never
    /// refused for its size alone while nothing else is in flight (the body limit bounds it).
    pub fn charge(&self, bytes: usize) -> Result<Charge, IngestError> {
        let before = self.bytes.now.fetch_add(bytes, Ordering::AcqRel);
        let charge = Charge {
            bytes: Arc::clone(&self.bytes),
            charged: bytes,
        };
        if before > 0 && before + bytes > self.max_in_flight_bytes {
            return Err(IngestError::Overloaded);
        }
        self.bytes.peak.fetch_max(before + bytes, Ordering::AcqRel);
        Ok(charge)
    }

    /// The most body bytes admitted requests have held at once since the start.
    pub fn peak_in_flight_bytes(&self) -> usize {
        self.bytes.peak.load(Ordering::Acquire)
    }

    /// Body bytes held by requests being processed now.
    pub fn in_flight_bytes(&self) -> usize {
        self.bytes.now.load(Ordering::Acquire)
    }

    /// Redaction applied to every span and log record before it is stored (the built-in
    /// rules unless replaced; `Redactor::disabled()` to store values as received).
    #[must_use]
    pub fn with_redactor(mut self, redactor: Arc<Redactor>) -> Self {
        self.redactor = redactor;
        self
    }

    #[must_use]
    pub fn with_max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = max.max(1);
        self
    }

    /// Admits a request before its body is read, or refuses it with the retryable throttle.
    ///
    /// The writer queue bounds what waits for the disk; this bounds what waits for the CPU.
    /// When decoding is the bottleneck (two cores, many clients) requests would otherwise pile
    /// up in memory without ever reaching the queue.
    pub fn admit(&self) -> Result<Admission, IngestError> {
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let admission = Admission(Arc::clone(&self.in_flight));
        if before >= self.max_in_flight {
            return Err(IngestError::Overloaded);
        }
        Ok(admission)
    }

    /// Decodes, stores (in `project`) and acknowledges one request body (already
    /// decompressed).
    pub async fn ingest(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: &[u8],
        project: ProjectId,
    ) -> Result<Receipt, IngestError> {
        // Refuse before decoding: under overload, decoding only to refuse wastes the CPU the
        // writer needs to catch up.
        // What the request will weigh in the queue is known only once prepared; a queue
        // already at either bound refuses now, one that fills up meanwhile at `submit`.
        if !self.writer.has_room(1, 0) {
            return Err(IngestError::Overloaded);
        }
        let (batch, receipt) = self.prepare(signal, encoding, body)?;
        self.commit(batch.in_project(project)).await?;
        Ok(receipt)
    }

    /// [`Ingestor::ingest`] for a caller outside the receivers' runtime, waiting on its own
    /// thread for the commit: `devtrace run` storing its own span beside the receivers it
    /// started, without a round trip through them.
    pub fn ingest_blocking(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: &[u8],
        project: ProjectId,
    ) -> Result<Receipt, IngestError> {
        let (batch, receipt) = self.prepare(signal, encoding, body)?;
        let batch = batch.in_project(project);
        if batch.items() > 0 {
            crate::commit::commit_blocking(&self.writer, batch)?;
        }
        Ok(receipt)
    }

    /// Decodes, validates and redacts one request body: the rows to store and the receipt
    /// that acknowledges them once they are committed.
    fn prepare(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: &[u8],
    ) -> Result<(WriteBatch, Receipt), IngestError> {
        Ok(match signal {
            Signal::Traces => {
                // Protobuf straight into the model; JSON through the OTLP structs.
                let mut accepted = match encoding {
                    Encoding::Protobuf => wire::spans_from_protobuf(body, &self.limits)?,
                    Encoding::Json => {
                        proto::spans_from_proto(json::decode_traces(body)?, &self.limits)
                    }
                };
                self.redactor.redact_spans(&mut accepted.batch);
                let receipt = Receipt {
                    accepted: accepted.batch.spans.len() as u64,
                    rejected: accepted.rejected,
                    error_message: accepted.error_message,
                };
                (
                    prepare_spans_for(accepted.batch, self.writer.chunk_use()),
                    receipt,
                )
            }
            Signal::Logs => {
                let resource_logs: Vec<ResourceLogs> = match encoding {
                    Encoding::Protobuf => proto::decode_logs_request(body)?.resource_logs,
                    Encoding::Json => json::decode_logs(body)?,
                };
                let mut accepted = proto::logs_from_proto(resource_logs, &self.limits);
                self.redactor.redact_logs(&mut accepted.batch);
                let receipt = Receipt {
                    accepted: accepted.batch.logs.len() as u64,
                    rejected: accepted.rejected,
                    error_message: accepted.error_message,
                };
                (prepare_log_batch(accepted.batch), receipt)
            }
            Signal::Metrics => {
                let resource_metrics: Vec<ResourceMetrics> = match encoding {
                    Encoding::Protobuf => proto::decode_metrics_request(body)?.resource_metrics,
                    Encoding::Json => json::decode_metrics(body)?,
                };
                let mut accepted = proto::metrics_from_proto(resource_metrics, &self.limits);
                redact_metrics(&self.redactor, &mut accepted.batch);
                let receipt = Receipt {
                    accepted: accepted.batch.point_count() as u64,
                    rejected: accepted.rejected,
                    error_message: accepted.error_message,
                };
                (prepare_metric_batch(&accepted.batch), receipt)
            }
        })
    }

    async fn commit(&self, batch: WriteBatch) -> Result<(), IngestError> {
        if batch.items() == 0 {
            return Ok(());
        }
        Ok(crate::commit::commit(&self.writer, batch).await?)
    }
}
