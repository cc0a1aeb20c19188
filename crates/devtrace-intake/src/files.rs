//! Files into the store, as `devtrace import FILE…` and `devtrace record` take them: OTLP
//! files (traces, logs, metrics; OTLP/JSON, one document or one per line, or protobuf as
//! `devtrace export --format otlp-proto` writes it) and developer-telemetry documents
//! (`trace-1.0.0`). Log records that are a coding agent's own events become its session too,
//! as when the server receives them.
//!
//! Each file is decoded completely before anything from it is written, and its batches are
//! written in one transaction: a file with an error stores nothing. Everything is redacted
//! before it is stored. Importing is idempotent: a document (a whole file, or one line of a
//! JSON-lines file) whose digest the store has seen is skipped, and spans already stored (same
//! trace and span id) are never stored again, whichever document brings them.

use crate::otlp::{prepare_log_batch, prepare_metric_batch, redact_metrics};
use anyhow::{Context, Result, anyhow};
use devtrace_ingest::json::{self, Signal};
use devtrace_ingest::proto::AnyRequest;
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::native;
use devtrace_ingest::sessions::trace_v1::{self, TraceDocument};
use devtrace_ingest::{Limits, proto};
use devtrace_model::recorded::escape;
use devtrace_model::{SpanBatch, SpanId, TraceId};
use devtrace_store::{
    Store, StoreWriter, WriteBatch, document_digest, prepare_session, prepare_spans,
};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

/// One `trace-1.0.0` document (its bytes) into the store exactly as a file of it is imported:
/// validated, redacted, mapped, merged, remembered by digest. Returns the spans written (0
/// when the document was already imported).
pub fn store_trace_document(
    writer: &mut dyn StoreWriter,
    store: &dyn Store,
    text: &[u8],
    redactor: Arc<Redactor>,
) -> Result<u64> {
    let mut importer = FileImporter::new(store, redactor);
    let value: serde_json::Value =
        serde_json::from_slice(text).context("the document is not JSON")?;
    let mut file = FileImport::default();
    importer.import_trace_document(text, value, &mut file)?;
    writer
        .write(&file.batches)
        .context("cannot store the session")?;
    Ok(file.spans)
}

/// A validated trace-1.0.0 document as the batch that merges it into its session (the
/// document itself kept as a blob), and the spans it maps to.
pub fn session_batch(document: &TraceDocument, redactor: Arc<Redactor>) -> (WriteBatch, usize) {
    let output = trace_v1::to_spans(document, redactor);
    let spans = output.spans.spans.len();
    (prepare_session(output.spans, output.blobs), spans)
}

/// What one file (or document) brings: the batches to write in one transaction, and counts.
#[derive(Default)]
pub struct FileImport {
    /// Everything to write, in one transaction (nothing of the file is written otherwise).
    pub batches: Vec<WriteBatch>,
    /// trace-1.0.0 sessions.
    pub sessions: u64,
    /// Agent sessions whose events (log records) the file held.
    pub agent_sessions: u64,
    pub spans: u64,
    pub logs: u64,
    pub metric_points: u64,
    pub rejected: u64,
    pub duplicate_spans: u64,
    pub already_imported: u64,
    pub skipped: u64,
    /// What was skipped or rejected, for the person importing.
    pub notes: Vec<String>,
}

/// Imports files into batches, remembering what this run took so nothing is taken twice.
pub struct FileImporter<'a> {
    store: &'a dyn Store,
    limits: Limits,
    redactor: Arc<Redactor>,
    /// Documents and spans taken in this run (the store only knows committed ones).
    seen_documents: HashSet<devtrace_store::DocumentDigest>,
    seen_spans: HashSet<(TraceId, SpanId)>,
}

impl<'a> FileImporter<'a> {
    pub fn new(store: &'a dyn Store, redactor: Arc<Redactor>) -> Self {
        Self {
            store,
            limits: Limits::default(),
            redactor,
            seen_documents: HashSet::new(),
            seen_spans: HashSet::new(),
        }
    }

    /// One file: a trace-1.0.0 document, OTLP protobuf, or OTLP/JSON (one document, or one per
    /// line). An error means nothing of the file is in the returned batches.
    pub fn import_file(&mut self, path: &Path) -> Result<FileImport> {
        let text = std::fs::read(path)
            .with_context(|| format!("cannot read {}", escape(&path.to_string_lossy())))?;
        let mut file = FileImport::default();
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text)
            && trace_v1::is_trace_document(&value)
        {
            self.import_trace_document(&text, value, &mut file)?;
            return Ok(file);
        }
        if text.trim_ascii().is_empty() {
            return Err(anyhow!("the file is empty"));
        }
        if is_protobuf(path, &text) {
            self.import_protobuf(&text, &mut file)?;
            return Ok(file);
        }
        // One document per file, or one per line (the OpenTelemetry file exporter's format).
        let documents: Vec<(usize, &[u8])> =
            match serde_json::from_slice::<serde::de::IgnoredAny>(&text) {
                Ok(_) => vec![(0, &text[..])],
                Err(_) => text
                    .split(|b| *b == b'\n')
                    .enumerate()
                    .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
                    .map(|(n, line)| (n + 1, line))
                    .collect(),
            };
        if documents.is_empty() {
            return Err(anyhow!("the file is empty"));
        }
        for (line, document) in documents {
            let place = if line == 0 {
                String::new()
            } else {
                format!("line {line}: ")
            };
            let digest = document_digest(document);
            if self.seen_documents.contains(&digest) || self.store.is_imported(&digest)? {
                file.already_imported += 1;
                continue;
            }
            match decode_json_document(document, &place)? {
                Some(decoded) => self.take(decoded, digest, &place, &mut file)?,
                None => {
                    file.skipped += 1;
                    file.notes.push(format!(
                        "{place}skipped a profiles document: devtrace stores traces, logs and metrics"
                    ));
                }
            }
        }
        // Only now is the whole file known to be good: remember what it brings.
        self.seen_documents.extend(
            file.batches
                .iter()
                .flat_map(|b| b.documents.iter().copied()),
        );
        Ok(file)
    }

    /// A file of OTLP protobuf: one request, stored once by its digest.
    fn import_protobuf(&mut self, text: &[u8], file: &mut FileImport) -> Result<()> {
        let digest = document_digest(text);
        if self.seen_documents.contains(&digest) || self.store.is_imported(&digest)? {
            file.already_imported += 1;
            return Ok(());
        }
        let decoded = proto::decode_any_request(text).map_err(|e| {
            anyhow!(
                "neither OTLP/JSON (which starts with `{{`) nor OTLP protobuf ({e}): give a file \
                 `devtrace export --format otlp-json` or `--format otlp-proto` wrote, or an \
                 OpenTelemetry file exporter's output"
            )
        })?;
        self.take(decoded, digest, "", file)?;
        self.seen_documents.insert(digest);
        Ok(())
    }

    /// One decoded OTLP document (from JSON or protobuf): validated against the limits,
    /// redacted, and added to the file's batches, remembered by `digest`.
    fn take(
        &mut self,
        decoded: AnyRequest,
        digest: devtrace_store::DocumentDigest,
        place: &str,
        file: &mut FileImport,
    ) -> Result<()> {
        let limits = &self.limits;
        let (mut batch, rejected, message) = match decoded {
            AnyRequest::Traces(resource_spans) => {
                let mut accepted = proto::spans_from_proto(resource_spans, limits);
                self.redactor.redact_spans(&mut accepted.batch);
                file.duplicate_spans += self.drop_stored_spans(&mut accepted.batch)?;
                file.spans += accepted.batch.spans.len() as u64;
                let batch = prepare_spans(accepted.batch);
                (batch, accepted.rejected, accepted.error_message)
            }
            AnyRequest::Logs(resource_logs) => {
                let mut accepted = proto::logs_from_proto(resource_logs, limits);
                self.redactor.redact_logs(&mut accepted.batch);
                file.logs += accepted.batch.logs.len() as u64;
                file.agent_sessions +=
                    native::sessions_from_logs(&accepted.batch).sessions.len() as u64;
                let batch = prepare_log_batch(accepted.batch);
                (batch, accepted.rejected, accepted.error_message)
            }
            AnyRequest::Metrics(resource_metrics) => {
                let mut accepted = proto::metrics_from_proto(resource_metrics, limits);
                redact_metrics(&self.redactor, &mut accepted.batch);
                file.metric_points += accepted.batch.point_count() as u64;
                let batch = prepare_metric_batch(&accepted.batch);
                (batch, accepted.rejected, accepted.error_message)
            }
        };
        file.rejected += rejected;
        if rejected > 0 {
            file.notes.push(format!("{place}{message}"));
        }
        batch.documents.push(digest);
        file.batches.push(batch);
        Ok(())
    }

    /// A developer-telemetry document: validated (errors name the field), redacted, mapped to a
    /// session and merged into what is stored, so importing it again changes nothing.
    pub fn import_trace_document(
        &mut self,
        text: &[u8],
        value: serde_json::Value,
        file: &mut FileImport,
    ) -> Result<()> {
        let digest = document_digest(text);
        if self.seen_documents.contains(&digest) || self.store.is_imported(&digest)? {
            file.already_imported += 1;
            return Ok(());
        }
        let document = trace_v1::from_value(value, &self.redactor)?;
        let (mut batch, spans) = session_batch(&document, Arc::clone(&self.redactor));
        file.sessions += 1;
        file.spans += spans as u64;
        batch.documents.push(digest);
        file.batches.push(batch);
        self.seen_documents.insert(digest);
        Ok(())
    }

    /// Removes spans whose trace and span id are already stored (or taken earlier in this run);
    /// returns how many.
    fn drop_stored_spans(&mut self, batch: &mut SpanBatch) -> Result<u64> {
        let traces: HashSet<TraceId> = batch.spans.iter().map(|s| s.trace_id).collect();
        for trace_id in traces {
            if let Some(stored) = self.store.get_trace(trace_id)? {
                self.seen_spans
                    .extend(stored.spans.spans.iter().map(|s| (s.trace_id, s.span_id)));
            }
        }
        let before = batch.spans.len();
        let mut taken = HashSet::new();
        batch.spans.retain(|s| {
            let key = (s.trace_id, s.span_id);
            !self.seen_spans.contains(&key) && taken.insert(key)
        });
        self.seen_spans.extend(taken);
        Ok((before - batch.spans.len()) as u64)
    }
}

/// Whether a file is OTLP protobuf rather than OTLP/JSON: named so (`.pb`, `.binpb`), or not
/// starting with `{` as every JSON document and JSON-lines file here does.
/// One OTLP/JSON document decoded by its signal; `None` for a profiles document (not stored).
/// `place` ("line N: " or empty) starts every error.
fn decode_json_document(document: &[u8], place: &str) -> Result<Option<AnyRequest>> {
    let value: serde_json::Value =
        serde_json::from_slice(document).map_err(|e| anyhow!("{place}not JSON: {e}"))?;
    let decoded = match json::detect_signal(&value) {
        Some(Signal::Traces) => json::decode_traces(document).map(AnyRequest::Traces),
        Some(Signal::Logs) => json::decode_logs(document).map(AnyRequest::Logs),
        Some(Signal::Metrics) => json::decode_metrics(document).map(AnyRequest::Metrics),
        Some(Signal::Profiles) => return Ok(None),
        None => {
            return Err(anyhow!(
                "{place}not an OTLP/JSON document: expected a top-level \"resourceSpans\", \"resourceLogs\" or \"resourceMetrics\""
            ));
        }
    };
    decoded.map(Some).map_err(|e| anyhow!("{place}{e}"))
}

fn is_protobuf(path: &Path, bytes: &[u8]) -> bool {
    let named = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pb") || e.eq_ignore_ascii_case("binpb"));
    named || !bytes.trim_ascii_start().starts_with(b"{")
}
