//! Durable storage for devtrace.
//!
//! Owns the [`Store`] interface that every reader (CLI, server, analysis callers) uses, the
//! embedded SQLite backend ([`sqlite`]), the on-disk encoding of span and log chunks
//! ([`chunk`]), and the group-commit [`writer`] that turns many concurrent requests into few
//! durable transactions.
//!
//! The write path is split in two so the single writer thread does as little as possible:
//! [`prepare`] (pure, runs on the receiving thread) splits a batch by trace, computes the
//! per-trace summary and compresses the chunks; the writer only inserts rows and commits.
//!
//! [`sql`] runs read-only SQL over documented views, the escape hatch the MCP server offers.
//!
//! Only this crate knows SQL. It must not decode wire formats or compute findings.

pub mod accounts;
pub mod chunk;
pub mod clickhouse;
pub mod listener;
pub mod location;
pub mod metrics;
pub mod postgres;
pub mod prepare;
pub mod qa;
pub mod recent;
pub mod retention;
pub mod sql;
pub mod sqlite;
mod sqlite_accounts;
mod sqlite_dictionaries;
pub mod writer;

use devtrace_model::recorded::{escape, quote};
use devtrace_model::{LogBatch, SpanBatch, TraceId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use accounts::{Accounts, NewToken, Project, TokenRecord};
pub use location::{Backend, ProjectWriter, StoreLocation};
pub use writer::CommitFeed;

pub use devtrace_model::session::SessionFacts;
pub use devtrace_model::{Operation, OperationFilter};
pub use prepare::{
    BlobRow, ChunkUse, WriteBatch, compress_blob, prepare_logs, prepare_session, prepare_spans,
    prepare_spans_for,
};

/// Which project data belongs to. Every read goes through a handle scoped to one project
/// ([`Store::in_project`]) and every write names its project ([`WriteBatch::project`]); the
/// embedded store holds only [`ProjectId::DEFAULT`].
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ProjectId(pub i64);

impl ProjectId {
    /// The project named `default`, which every store has.
    pub const DEFAULT: ProjectId = ProjectId(1);
}

impl Default for ProjectId {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One row of a trace listing: everything `ls` shows, kept up to date at ingest.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// Name of the root span, or of the earliest span while the root has not arrived.
    pub root_name: String,
    /// `service.name` of that span.
    pub service: String,
    /// Every service with a span in the trace, sorted (the root's included).
    pub services: Vec<String>,
    pub span_count: u64,
    pub error_count: u64,
    /// The start and end of that span itself (the root, or its stand-in): the trace's
    /// duration is the root's own, as every operation's is its span's. Spans that outlive the
    /// root (a server still working after its client gave up) end later: `end_unix_nano`.
    /// A trace stored before devtrace kept these has the trace's start and end here.
    #[serde(default)]
    pub root_start_unix_nano: u64,
    #[serde(default)]
    pub root_end_unix_nano: u64,
    /// That span failed (error status). Before devtrace kept this: whether any span failed.
    #[serde(default)]
    pub root_failed: bool,
}

impl TraceSummary {
    /// The trace's duration: its root span's own (see `root_start_unix_nano`).
    pub fn duration_nanos(&self) -> u64 {
        self.root_end_unix_nano
            .saturating_sub(self.root_start_unix_nano)
    }

    /// From the earliest span start to the latest span end: the time a waterfall spans.
    pub fn extent_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// When some span ends after the root: how long after the root's start the last one ends
    /// (the root took `duration_nanos`, the trace's work went on until this).
    pub fn last_span_end_nanos(&self) -> Option<u64> {
        (self.end_unix_nano > self.root_end_unix_nano)
            .then(|| self.end_unix_nano.saturating_sub(self.root_start_unix_nano))
    }
}

/// Filters for a trace listing; `None` means "any". Results are newest first, ordered by
/// (start, trace id) descending, so [`TraceCursor`] pages through them without gaps or repeats.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// Only traces with a span of this `service.name` (any span, not only the root).
    pub service: Option<String>,
    /// Matches root operations containing this text.
    pub name_contains: Option<String>,
    /// Only traces containing a span named exactly this (any span, not only the root).
    pub operation: Option<String>,
    pub min_duration_nanos: Option<u64>,
    pub max_duration_nanos: Option<u64>,
    pub errors_only: bool,
    /// Only traces without any error span.
    pub without_errors: bool,
    /// Only `devtrace run` executions.
    pub runs_only: bool,
    /// Leave out development sessions: runtime analyses (findings, error groups, operation
    /// rankings) read program traces; sessions have their own listing and detectors.
    pub runtime_only: bool,
    /// Only traces that started at or after this time.
    pub since_unix_nano: Option<u64>,
    /// Only traces that started before this time.
    pub until_unix_nano: Option<u64>,
    /// Only traces after this one in listing order (the next page).
    pub after: Option<TraceCursor>,
    pub limit: usize,
}

/// A position in a trace listing: the last trace of the previous page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TraceCursor {
    pub start_unix_nano: u64,
    pub trace_id: TraceId,
}

impl TraceCursor {
    pub fn of(summary: &TraceSummary) -> Self {
        Self {
            start_unix_nano: summary.start_unix_nano,
            trace_id: summary.trace_id,
        }
    }

    /// `START-TRACEID`: opaque to clients, but readable in a URL.
    pub fn encode(&self) -> String {
        format!("{}-{}", self.start_unix_nano, self.trace_id.to_hex())
    }

    pub fn decode(text: &str) -> Option<Self> {
        let (start, id) = text.split_once('-')?;
        Some(Self {
            start_unix_nano: start.parse().ok()?,
            trace_id: id.parse().ok()?,
        })
    }
}

/// Filters for a session listing; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionQuery {
    /// `claude-code`, `codex`, `trace-1.0.0`, …
    pub agent: Option<String>,
    /// Sessions whose project is this directory or inside it (or this repository URL).
    pub project: Option<String>,
    /// Only sessions that started at or after this time.
    pub since_unix_nano: Option<u64>,
    /// Only sessions whose time overlaps `[from, to]` (both inclusive): those that could have
    /// made something that ran then.
    pub active_between: Option<(u64, u64)>,
    pub limit: usize,
}

impl SessionQuery {
    /// The `project` filter as every backend applies it: the directory itself (without a
    /// trailing slash) and the prefix of everything inside it.
    pub(crate) fn project_and_prefix(&self) -> Option<(&str, String)> {
        let project = self.project.as_deref()?;
        let project = if project.len() > 1 {
            project.trim_end_matches('/')
        } else {
            project
        };
        let prefix = if project.ends_with('/') {
            project.to_owned()
        } else {
            format!("{project}/")
        };
        Some((project, prefix))
    }
}

/// One row of a session listing, kept current as the session's spans arrive.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSummary {
    pub trace_id: TraceId,
    #[serde(flatten)]
    pub facts: SessionFacts,
}

/// Where an incremental import of one source (a transcript file) stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportCursor {
    /// What was imported: normally a file's absolute path.
    pub source: String,
    /// Bytes consumed so far.
    pub offset: u64,
    /// A digest of the consumed bytes' head, to notice a file that was replaced, not grown.
    pub fingerprint: [u8; 32],
    /// The importer's own state (serialised), to resume where it stopped.
    pub state: Vec<u8>,
}

/// Identifies a blob by its content: blake3 of its bytes.
pub type BlobHash = [u8; 32];

/// A whole trace as stored: its summary and every span received for it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredTrace {
    pub summary: TraceSummary,
    pub spans: SpanBatch,
}

/// One service's part in the traces of a window, counted by the spans of that service: a
/// trace counts for every service it has spans of.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServiceSummary {
    pub service: String,
    /// Traces with at least one span of this service.
    pub traces: u64,
    /// Of those, the traces whose root span is this service's (requests it received first).
    pub root_traces: u64,
    /// Traces in which a span of this service failed.
    pub error_traces: u64,
    /// Spans of this service in those traces.
    pub spans: u64,
    /// Start of the first and end of the last trace it has spans in.
    pub first_start_unix_nano: u64,
    pub last_end_unix_nano: u64,
}

/// What the store holds, for `/api/v1/stats` and `devtrace stats`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Spans stored, each once.
    pub spans: u64,
    pub traces: u64,
    pub logs: u64,
    /// Metric data points (each stored once, however often an exporter re-sent it).
    pub metric_points: u64,
    /// Spans received again after they were stored (an exporter retrying after a timeout) and
    /// not stored a second time. `spans + resent_spans` is every span accepted.
    pub resent_spans: u64,
    pub bytes_on_disk: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no trace matches {}", quote(.0))]
    TraceNotFound(String),
    #[error("{} matches several traces ({}); give more characters", quote(prefix), candidates.join(", "))]
    AmbiguousPrefix {
        prefix: String,
        candidates: Vec<String>,
    },
    #[error(
        "{} is not a trace id or prefix: trace ids are 32 hexadecimal characters (16 for a 64-bit id, as Jaeger and Zipkin write them)",
        quote(.0)
    )]
    InvalidTraceId(String),
    #[error("no devtrace store at {}: start `devtrace serve` or import data first", escape(.0))]
    Missing(String),
    /// The data directory of the embedded store cannot be used (a file, no permission, a
    /// read-only or full file system): the message names it and says what to do.
    #[error("{0}")]
    DataDirectory(String),
    #[error(
        "the store at {path} has schema version {found}, newer than this devtrace knows ({known}); upgrade devtrace"
    )]
    TooNew {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("corrupt chunk in the store: {0}")]
    Corrupt(String),
    #[error("the writer has stopped")]
    WriterStopped,
    /// The database refused or failed a statement (the backend's message, without secrets).
    #[error("database error: {0}")]
    Database(String),
    /// The database could not be reached. Retrying later may work.
    #[error("cannot reach the store at {target}: {message}")]
    Unreachable { target: String, message: String },
    /// An operation the backend cannot do (e.g. a second project on the embedded store).
    #[error("{0}")]
    Unsupported(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Read access to stored telemetry. Implemented by every backend; safe to share across threads.
pub trait Store: Send + Sync {
    /// Traces newest first, filtered; never reads spans.
    fn list_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>>;
    /// Stored trace ids from `low` to `high` (both included), in order, at most `limit`.
    fn trace_ids_between(&self, low: TraceId, high: TraceId, limit: usize) -> Result<Vec<TraceId>>;
    /// The full id of the one trace `text` names: a whole id, a unique prefix of one, or a
    /// 64-bit id (16 hex digits, as Jaeger and Zipkin write them; stored zero-padded on the
    /// left, as OpenTelemetry carries them) or a prefix of one. Written once, over
    /// [`Store::trace_ids_between`], so every backend resolves ids alike.
    fn resolve_trace_id(&self, text: &str) -> Result<TraceId> {
        resolve_trace_id(self, text)
    }
    fn get_trace(&self, trace_id: TraceId) -> Result<Option<StoredTrace>>;
    /// The summary row of one trace, without reading its spans.
    fn trace_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>>;
    /// Log records correlated with the trace, oldest first.
    fn logs_for_trace(&self, trace_id: TraceId) -> Result<LogBatch>;
    fn stats(&self) -> Result<StoreStats>;
    /// Traces containing a span of an operation the filter matches (newest first), the most
    /// recent `limit`, each once.
    fn traces_with_operation(
        &self,
        operation: &OperationFilter,
        since_unix_nano: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceSummary>>;
    /// Every service with spans in the traces started at or after `since`, most traces first.
    fn services(&self, since_unix_nano: Option<u64>) -> Result<Vec<ServiceSummary>>;
    /// Every operation ever stored, sorted by name, service and kind.
    fn operations(&self) -> Result<Vec<Operation>>;
    /// Every span name ever stored, sorted.
    fn operation_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.operations()?.into_iter().map(|o| o.name).collect();
        names.dedup();
        Ok(names)
    }
    /// Whether a document with this digest was imported before (see [`document_digest`]).
    fn is_imported(&self, digest: &DocumentDigest) -> Result<bool>;
    /// One read-only SQL statement over the views documented in [`sql::SCHEMA`].
    fn query_sql(
        &self,
        _sql: &str,
        _limits: sql::SqlLimits,
    ) -> Result<sql::SqlRows, sql::SqlError> {
        Err(sql::SqlError::Unsupported)
    }
    /// Sessions newest first, filtered; never reads spans.
    fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<SessionSummary>>;
    /// The session summary of one trace, if it is a session.
    fn session(&self, trace_id: TraceId) -> Result<Option<SessionSummary>>;
    /// Where the last incremental import of `source` stopped.
    fn import_cursor(&self, source: &str) -> Result<Option<ImportCursor>>;
    /// A stored blob's bytes.
    fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>>;
    /// The project this handle reads.
    fn project(&self) -> ProjectId {
        ProjectId::DEFAULT
    }
    /// A handle on the same store that reads only `project`'s data (cheap: it shares
    /// connections). Backends holding one project refuse any other.
    fn in_project(&self, project: ProjectId) -> Result<Arc<dyn Store>>;
    /// The views [`Store::query_sql`] offers on this backend, with their columns and examples.
    fn sql_schema(&self) -> &'static str {
        sql::SCHEMA
    }
    /// What agents reported through their metrics (cost, tokens, lines changed), per session
    /// of `query` with metrics, or per UTC day when `by_day` (see [`metrics`]).
    fn usage(&self, query: &metrics::UsageQuery, by_day: bool) -> Result<Vec<metrics::UsageTotal>>;
    /// The QA job queue kept in this store ([`qa`]), when the backend has one. It writes on
    /// its own (a claim is its own small transaction), not through the group-commit writer.
    fn qa(&self) -> Option<&dyn qa::QaQueue> {
        None
    }
}

/// How many candidates an ambiguous id lists.
const ID_CANDIDATES: usize = 5;

/// `text` trimmed, if it can be a trace id or a prefix of one (1 to 32 hexadecimal digits);
/// the command line checks ids with it before anything runs.
pub fn check_trace_id_prefix(text: &str) -> Result<&str> {
    let text = text.trim();
    let valid = !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(StoreError::InvalidTraceId(text.to_owned()));
    }
    Ok(text)
}

fn resolve_trace_id<S: Store + ?Sized>(store: &S, text: &str) -> Result<TraceId> {
    let text = check_trace_id_prefix(text)?.to_ascii_lowercase();
    // `prefix` padded to 32 digits with `fill`.
    let padded = |prefix: &str, fill: char| -> TraceId {
        let mut full = prefix.to_owned();
        full.extend(std::iter::repeat_n(fill, 32 - prefix.len()));
        full.parse().expect("32 hex characters")
    };
    let mut found =
        store.trace_ids_between(padded(&text, '0'), padded(&text, 'f'), ID_CANDIDATES)?;
    // A 64-bit id, or the start of one: the low half of a zero-padded 128-bit id.
    if text.len() <= 16 {
        let low_half = format!("{:0>16}{text}", "");
        for id in store.trace_ids_between(
            padded(&low_half, '0'),
            padded(&low_half, 'f'),
            ID_CANDIDATES,
        )? {
            if !found.contains(&id) {
                found.push(id);
            }
        }
    }
    match found.as_slice() {
        [] => Err(StoreError::TraceNotFound(text)),
        [one] => Ok(*one),
        many => Err(StoreError::AmbiguousPrefix {
            prefix: text,
            candidates: many
                .iter()
                .take(ID_CANDIDATES)
                .map(|id| id.to_hex())
                .collect(),
        }),
    }
}

/// Identifies an imported document by its content.
pub type DocumentDigest = [u8; 32];

/// The digest of a document's bytes, surrounding whitespace ignored.
pub fn document_digest(bytes: &[u8]) -> DocumentDigest {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    *blake3::hash(&bytes[start..end]).as_bytes()
}

/// Write access, used by exactly one thread at a time (the [`writer`]).
pub trait StoreWriter: Send {
    /// Makes every batch durable in one transaction, or none of them.
    fn write(&mut self, batches: &[WriteBatch]) -> Result<()>;
    /// Folds the write-ahead log into the main file (on shutdown, and for size measurements).
    fn checkpoint(&mut self) -> Result<()>;
    /// Gives the space of deleted data back (after `devtrace delete --vacuum`): the embedded
    /// store rewrites its file; PostgreSQL vacuums devtrace's tables.
    fn reclaim(&mut self) -> Result<()> {
        self.checkpoint()
    }
    /// Instead of [`StoreWriter::checkpoint`] at shutdown: leave the write-ahead log for the
    /// next opener to fold in, also when the connection closes (the embedded store; nothing
    /// to do elsewhere). What was committed is as durable either way; a process that wrote a
    /// span or two saves a checkpoint's writes and fsyncs.
    fn keep_log_at_close(&mut self) {}
    /// How the pipeline should encode the chunks it hands this writer: compressed for a store
    /// that keeps them; uncompressed for one that decodes them into rows (ClickHouse).
    fn chunk_use(&self) -> ChunkUse {
        ChunkUse::Stored
    }
}

impl From<rusqlite::types::FromSqlError> for StoreError {
    fn from(error: rusqlite::types::FromSqlError) -> Self {
        StoreError::Corrupt(format!("unexpected column type: {error}"))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// An error and its causes, each once, on one line (for messages from client libraries that
/// nest the useful part).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod conformance;
