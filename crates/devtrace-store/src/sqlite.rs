//! The embedded backend: one SQLite database file in WAL mode.
//!
//! Layout (see `docs/ARCHITECTURE.md`): `traces` holds one summary row per trace, kept current
//! by an upsert as chunks arrive, so listings never touch spans; `span_chunks` holds the
//! compressed spans of each trace, keyed by the trace's integer row id (no random 16-byte key
//! on the big table); `log_chunks` holds log records grouped by trace. Readers in other
//! processes see committed data while `serve` writes (WAL).

use crate::chunk;
use crate::prepare::{TraceChunk, without_stored};
use crate::recent::RecentSpans;
use crate::sqlite_dictionaries;
use crate::{
    BlobHash, ImportCursor, Operation, OperationFilter, ProjectId, Result, ServiceSummary,
    SessionFacts, SessionQuery, SessionSummary, Store, StoreError, StoreStats, StoreWriter,
    StoredTrace, TraceQuery, TraceSummary, WriteBatch,
};
use devtrace_model::recorded::escape;
use devtrace_model::{LogBatch, SpanBatch, SpanId, SpanKind, TraceId};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

mod checkpoints;
mod qa;

/// The database file inside a data directory.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("devtrace.db")
}

/// Numbered, forward-only migrations; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: traces, span chunks, log chunks, counters.
    "CREATE TABLE traces (
         id            INTEGER PRIMARY KEY,
         trace_id      BLOB NOT NULL UNIQUE CHECK (length(trace_id) = 16),
         start_ns      INTEGER NOT NULL,
         end_ns        INTEGER NOT NULL,
         span_count    INTEGER NOT NULL CHECK (span_count > 0),
         error_count   INTEGER NOT NULL CHECK (error_count BETWEEN 0 AND span_count),
         root_name     TEXT NOT NULL,
         root_service  TEXT NOT NULL,
         root_is_real  INTEGER NOT NULL
     );
     CREATE INDEX traces_by_start ON traces(start_ns);
     CREATE TABLE span_chunks (
         trace  INTEGER NOT NULL,
         data   BLOB NOT NULL
     );
     CREATE INDEX span_chunks_by_trace ON span_chunks(trace);
     CREATE TABLE log_chunks (
         trace_id  BLOB,
         first_ns  INTEGER NOT NULL,
         count     INTEGER NOT NULL,
         data      BLOB NOT NULL
     );
     CREATE INDEX log_chunks_by_trace ON log_chunks(trace_id) WHERE trace_id IS NOT NULL;
     CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
     INSERT INTO counters(name, value) VALUES ('spans', 0), ('traces', 0), ('logs', 0);",
    // 2: digests of imported documents, so importing a file twice stores nothing twice.
    "CREATE TABLE imported_documents (
         digest       BLOB PRIMARY KEY,
         imported_ns  INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 3: the operation index: which traces contain a span of a given name.
    "CREATE TABLE span_names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
     CREATE TABLE trace_operations (
         name   INTEGER NOT NULL,
         trace  INTEGER NOT NULL,
         PRIMARY KEY (name, trace)
     ) WITHOUT ROWID;",
    // 4: which traces are `devtrace run` executions.
    "ALTER TABLE traces ADD COLUMN is_run INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX traces_runs ON traces(start_ns) WHERE is_run = 1;",
    // 5: development sessions (a summary row beside each session trace), content-addressed
    // blobs for large values, and where incremental imports of transcripts stopped.
    "CREATE TABLE sessions (
         trace              INTEGER PRIMARY KEY,
         session_id         TEXT NOT NULL,
         agent              TEXT NOT NULL,
         project            TEXT NOT NULL,
         title              TEXT NOT NULL,
         start_ns           INTEGER NOT NULL,
         end_ns             INTEGER NOT NULL,
         turns              INTEGER NOT NULL,
         tool_calls         INTEGER NOT NULL,
         subagents          INTEGER NOT NULL,
         input_tokens       INTEGER NOT NULL,
         output_tokens      INTEGER NOT NULL,
         cache_read_tokens  INTEGER NOT NULL,
         errors             INTEGER NOT NULL
     );
     CREATE INDEX sessions_by_start ON sessions(start_ns);
     CREATE TABLE blobs (
         hash  BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
         size  INTEGER NOT NULL,
         data  BLOB NOT NULL
     );
     CREATE TABLE import_cursors (
         source       TEXT PRIMARY KEY,
         offset       INTEGER NOT NULL,
         fingerprint  BLOB NOT NULL,
         state        BLOB NOT NULL,
         updated_ns   INTEGER NOT NULL
     ) WITHOUT ROWID;",
    // 6: withdrawn (it created a covering index for the services overview; see 7). Kept as a
    // step so that version numbers keep their meaning.
    "SELECT 1;",
    // 7: drop that index. Every trace upsert rewrote its entry, which cost 20–25 % of ingest
    // throughput (bench/run-ingest.sh, 2 M spans: 137–141 k spans/s without, 105–119 k with);
    // a plain scan answers the overview in ~0.2 s on 5 M spans (see `services`).
    "DROP INDEX IF EXISTS traces_by_service;",
    // 8: the QA job queue and cached LLM judgements (sqlite/qa.rs).
    qa::MIGRATION,
    // 9: OTLP metrics: series (with the session and usage quantity they belong to) and
    // points keyed so that an exporter's retry is stored once (see metrics.rs).
    crate::metrics::MIGRATION,
    // 10: traces are multi-service. An operation is (span name, service, kind): the operation
    // index is rebuilt on that identity, and a service index says which services have spans
    // in each trace (with their span and error counts). Filled from the stored chunks, which
    // also loses any span stored twice by an older devtrace (see `after_migration`).
    "CREATE TABLE services (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
     CREATE TABLE operations (
         id       INTEGER PRIMARY KEY,
         name     TEXT NOT NULL,
         service  INTEGER NOT NULL,
         kind     INTEGER NOT NULL,
         UNIQUE (name, service, kind)
     );
     DROP TABLE trace_operations;
     DROP TABLE span_names;
     CREATE TABLE trace_operations (
         operation  INTEGER NOT NULL,
         trace      INTEGER NOT NULL,
         PRIMARY KEY (operation, trace)
     ) WITHOUT ROWID;
     CREATE TABLE trace_services (
         trace    INTEGER NOT NULL,
         service  INTEGER NOT NULL,
         spans    INTEGER NOT NULL,
         errors   INTEGER NOT NULL,
         PRIMARY KEY (trace, service)
     ) WITHOUT ROWID;
     INSERT OR IGNORE INTO counters (name, value) VALUES ('resent_spans', 0);",
    // 11: the project (one: the embedded store holds `default` only) with its retention, and
    // API tokens, for `devtrace serve --auth required` (see accounts.rs).
    "CREATE TABLE projects (
         id            INTEGER PRIMARY KEY CHECK (id = 1),
         name          TEXT NOT NULL UNIQUE,
         retention_ns  INTEGER CHECK (retention_ns > 0),
         created_ns    INTEGER NOT NULL
     );
     INSERT INTO projects (id, name, created_ns) VALUES (1, 'default', 0);
     CREATE TABLE tokens (
         public_id     TEXT PRIMARY KEY,
         project_id    INTEGER NOT NULL REFERENCES projects (id),
         name          TEXT NOT NULL,
         scopes        TEXT NOT NULL,
         salt          BLOB NOT NULL CHECK (length(salt) = 16),
         hash          BLOB NOT NULL CHECK (length(hash) = 32),
         created_ns    INTEGER NOT NULL,
         expires_ns    INTEGER,
         last_used_ns  INTEGER,
         revoked_ns    INTEGER
     ) WITHOUT ROWID;",
    // 12: the root span's own start, end and failure: a trace's duration is its root's, which
    // later spans may outlive. NULL on traces stored before (read as the trace's start and
    // end, and "some span failed").
    "ALTER TABLE traces ADD COLUMN root_start_ns INTEGER;
     ALTER TABLE traces ADD COLUMN root_end_ns INTEGER;
     ALTER TABLE traces ADD COLUMN root_failed INTEGER;",
    // 13: the compression dictionaries span chunks name (crate::chunk::dictionary), in the
    // order they were first kept.
    "CREATE TABLE chunk_dictionaries (
         id    INTEGER PRIMARY KEY,
         key   INTEGER NOT NULL UNIQUE,
         data  BLOB NOT NULL
     );",
];

/// Every service with spans in the traces started since `?1`, reading every trace row in
/// storage order and each one's service entries beside it: the plan for a window covering much
/// of the store.
const SERVICES_SCAN_SQL: &str =
    "SELECT s.name, count(*), sum(t.root_service = s.name), sum(ts.errors > 0), sum(ts.spans),
            min(t.start_ns), max(t.end_ns)
     FROM traces t NOT INDEXED CROSS JOIN trace_services ts ON ts.trace = t.id
          JOIN services s ON s.id = ts.service
     WHERE t.start_ns >= ?1
     GROUP BY ts.service ORDER BY count(*) DESC, s.name";

/// The same through the start-time index: the plan for a recent window. (Over a wide window it
/// reads rows in time order, scattered over the table: 4× slower than the scan on 5 M spans.)
const SERVICES_RECENT_SQL: &str =
    "SELECT s.name, count(*), sum(t.root_service = s.name), sum(ts.errors > 0), sum(ts.spans),
            min(t.start_ns), max(t.end_ns)
     FROM traces t INDEXED BY traces_by_start CROSS JOIN trace_services ts ON ts.trace = t.id
          JOIN services s ON s.id = ts.service
     WHERE t.start_ns >= ?1
     GROUP BY ts.service ORDER BY count(*) DESC, s.name";

/// A `since` window holding more than this share of the store's time range is scanned.
const SERVICES_SCAN_SHARE: f64 = 0.2;

/// Whether a services query from `since` should scan the table: when the window covers more
/// than [`SERVICES_SCAN_SHARE`] of the time from the first trace start to the last (arrivals
/// taken as spread evenly; both ends come from the index in two lookups).
fn services_window_is_wide(conn: &Connection, since: i64) -> rusqlite::Result<bool> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT (SELECT min(start_ns) FROM traces), (SELECT max(start_ns) FROM traces)",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(false);
    };
    if since <= first {
        return Ok(true);
    }
    let range = (last - first).max(1) as f64;
    Ok((last - since) as f64 / range > SERVICES_SCAN_SHARE)
}

/// Nanosecond times and durations as SQLite integers (saturating: u64 beyond i64 is never real).
fn clamp_i64(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

/// Work a migration needs beyond SQL: filling new indexes from existing chunks.
fn after_migration(tx: &rusqlite::Transaction<'_>, version: usize) -> Result<()> {
    // Migration 3's name index is replaced by 10's, which fills the new one from the chunks.
    if version == 10 {
        reindex_every_trace(tx)?;
    }
    Ok(())
}

/// Migration 10's backfill: reads every trace's chunks once, in trace order; a trace holding a
/// span id twice (stored by a devtrace from before re-sent spans were recognised) is rewritten
/// as one chunk without the later copies, its summary recomputed and the counters corrected;
/// then its operations and services are indexed.
fn reindex_every_trace(tx: &rusqlite::Transaction<'_>) -> Result<()> {
    let mut index = IndexCache::default();
    let mut removed_total = 0i64;
    let mut statement = tx.prepare("SELECT trace, data FROM span_chunks ORDER BY trace, rowid")?;
    let mut rows = statement.query([])?;
    let mut current: Option<(i64, SpanBatch)> = None;
    loop {
        let row = rows.next()?;
        let next_key = row.map(|r| r.get::<_, i64>(0)).transpose()?;
        if let Some((key, batch)) = current.take_if(|(key, _)| Some(*key) != next_key) {
            removed_total += reindex_trace(tx, &mut index, key, batch)?;
        }
        let (Some(row), Some(key)) = (row, next_key) else {
            break;
        };
        if index.pending.len() >= 1 << 16 {
            write_index_rows(tx, &mut index)?;
        }
        let batch = sqlite_dictionaries::decode_stored_spans(tx, row.get_ref(1)?.as_blob()?)?;
        match &mut current {
            Some((_, stored)) => stored.extend(batch),
            None => current = Some((key, batch)),
        }
    }
    write_index_rows(tx, &mut index)?;
    if removed_total > 0 {
        tx.execute(
            "UPDATE counters SET value = value - ?1 WHERE name = 'spans'",
            params![removed_total],
        )?;
        tx.execute(
            "UPDATE counters SET value = value + ?1 WHERE name = 'resent_spans'",
            params![removed_total],
        )?;
    }
    Ok(())
}

/// One trace of [`reindex_every_trace`]; returns the spans it removed.
fn reindex_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    key: i64,
    mut batch: SpanBatch,
) -> Result<i64> {
    let before = batch.spans.len();
    let mut seen = std::collections::HashSet::with_capacity(before);
    batch.spans.retain(|s| seen.insert(s.span_id));
    let removed = (before - batch.spans.len()) as i64;
    let Some(first) = batch.spans.first() else {
        return Ok(0);
    };
    let summary = crate::prepare::summarise(first.trace_id, &batch);
    if removed > 0 {
        // Migration 10 runs before the root span's columns exist (12): they stay NULL, read
        // as the trace's start and end. It runs before the dictionaries' table (13) too.
        let plain = TraceChunk {
            data: chunk::encode_spans_without_dictionary(&batch),
            ..summary.clone()
        };
        replace_trace(tx, index, key, &plain, Columns::BeforeRoot)?;
    }
    index_chunk(tx, index, key, &summary)?;
    Ok(removed)
}

/// Service name → id and operation → id, remembered across transactions by the writer.
#[derive(Default)]
struct IndexCache {
    services: foldhash::HashMap<String, i64>,
    operations: foldhash::HashMap<crate::Operation, i64>,
    /// Chunk dictionaries the store holds (see `sqlite_dictionaries::keep_for`).
    dictionaries: std::collections::HashSet<u64>,
    /// The operation index's rows (operation, trace) the open transaction adds, written
    /// together before anything reads or deletes them ([`write_index_rows`]).
    pending: Vec<(i64, i64)>,
}

impl IndexCache {
    fn service(&mut self, conn: &Connection, name: &str) -> Result<i64> {
        if let Some(id) = self.services.get(name) {
            return Ok(*id);
        }
        let id: i64 = conn
            .prepare_cached(
                "INSERT INTO services (name) VALUES (?1)
                 ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
            )?
            .query_row(params![name], |row| row.get(0))?;
        self.services.insert(name.to_owned(), id);
        Ok(id)
    }

    fn operation(&mut self, conn: &Connection, operation: &crate::Operation) -> Result<i64> {
        if let Some(id) = self.operations.get(operation) {
            return Ok(*id);
        }
        let service = self.service(conn, &operation.service)?;
        let id: i64 = conn
            .prepare_cached(
                "INSERT INTO operations (name, service, kind) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, service, kind) DO UPDATE SET name = excluded.name
                 RETURNING id",
            )?
            .query_row(
                params![operation.name, service, operation.kind.to_otlp()],
                |row| row.get(0),
            )?;
        self.operations.insert(operation.clone(), id);
        Ok(id)
    }
}

/// Adds a chunk's operations and services to the indexes of trace `key`.
fn index_chunk(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    key: i64,
    chunk: &TraceChunk,
) -> Result<()> {
    for operation in &chunk.operations {
        let id = index.operation(tx, operation)?;
        index.pending.push((id, key));
    }
    let mut index_service = tx.prepare_cached(
        "INSERT INTO trace_services (trace, service, spans, errors) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (trace, service) DO UPDATE SET spans = spans + excluded.spans,
             errors = errors + excluded.errors",
    )?;
    for service in &chunk.services {
        let id = index.service(tx, &service.service)?;
        index_service.execute(params![
            key,
            id,
            service.spans as i64,
            service.errors as i64
        ])?;
    }
    Ok(())
}

/// How many operation index rows one statement inserts ([`write_index_rows`]).
const INDEX_ROWS_A_STATEMENT: usize = 64;

/// Writes the operation index's rows the transaction added so far, in key order, many a
/// statement: each row costs SQLite a descent of the index, and one statement a row cost as
/// much again (its cursor opened, its parameters bound).
fn write_index_rows(tx: &rusqlite::Transaction<'_>, index: &mut IndexCache) -> Result<()> {
    let mut rows = std::mem::take(&mut index.pending);
    rows.sort_unstable();
    rows.dedup();
    let mut groups = rows.chunks_exact(INDEX_ROWS_A_STATEMENT);
    if groups.len() > 0 {
        let values = vec!["(?, ?)"; INDEX_ROWS_A_STATEMENT].join(", ");
        let sql =
            format!("INSERT OR IGNORE INTO trace_operations (operation, trace) VALUES {values}");
        let mut insert = tx.prepare_cached(&sql)?;
        for group in groups.by_ref() {
            let flat = group
                .iter()
                .flat_map(|&(operation, trace)| [operation, trace]);
            insert.execute(rusqlite::params_from_iter(flat))?;
        }
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO trace_operations (operation, trace) VALUES (?1, ?2)",
    )?;
    for &(operation, trace) in groups.remainder() {
        insert.execute(params![operation, trace])?;
    }
    rows.clear();
    index.pending = rows;
    Ok(())
}

/// Removes trace `key` from the indexes, given the spans stored for it.
fn unindex_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    key: i64,
    stored: &SpanBatch,
) -> Result<()> {
    write_index_rows(tx, index)?;
    // The operation index is keyed by operation first: delete exactly the trace's entries
    // rather than scanning it for the trace.
    for operation in crate::prepare::distinct_operations(stored) {
        let id = index.operation(tx, &operation)?;
        tx.prepare_cached("DELETE FROM trace_operations WHERE operation = ?1 AND trace = ?2")?
            .execute(params![id, key])?;
    }
    tx.prepare_cached("DELETE FROM trace_services WHERE trace = ?1")?
        .execute(params![key])?;
    Ok(())
}

/// Which summary columns [`replace_trace`] writes: those of the current schema, or those a
/// migration before the root span's columns (12) finds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    All,
    BeforeRoot,
}

/// Replaces everything stored for trace `key` by `whole`, one chunk summarising the whole trace:
/// its chunks and its summary row (the indexes are the caller's).
fn replace_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    key: i64,
    whole: &TraceChunk,
    columns: Columns,
) -> Result<()> {
    tx.prepare_cached("DELETE FROM span_chunks WHERE trace = ?1")?
        .execute(params![key])?;
    sqlite_dictionaries::keep_for(tx, &whole.data, &mut index.dictionaries)?;
    tx.prepare_cached("INSERT INTO span_chunks (trace, data) VALUES (?1, ?2)")?
        .execute(params![key, whole.data])?;
    tx.prepare_cached(
        "UPDATE traces SET start_ns = ?2, end_ns = ?3, span_count = ?4, error_count = ?5,
                 root_name = ?6, root_service = ?7, root_is_real = ?8, is_run = ?9
             WHERE id = ?1",
    )?
    .execute(params![
        key,
        whole.start_unix_nano as i64,
        whole.end_unix_nano as i64,
        whole.span_count as i64,
        whole.error_count as i64,
        whole.root_name,
        whole.root_service,
        whole.is_root,
        whole.is_run,
    ])?;
    if columns == Columns::All {
        tx.prepare_cached(
            "UPDATE traces SET root_start_ns = ?2, root_end_ns = ?3, root_failed = ?4
             WHERE id = ?1",
        )?
        .execute(params![
            key,
            clamp_i64(whole.root_start_unix_nano),
            clamp_i64(whole.root_end_unix_nano),
            whole.root_failed,
        ])?;
    }
    Ok(())
}

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

fn configure(conn: &Connection, cache_kib: i64) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "could not switch the store to WAL mode");
    }
    // FULL: a commit survives power loss, not only a process crash. Group commit amortises
    // the fsync over every request in the transaction.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// Brings the schema to [`SCHEMA_VERSION`], refusing stores from a newer devtrace.
fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read inside the write lock: another process may have migrated meanwhile.
    let current: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql)?;
        after_migration(&tx, index + 1)?;
        tx.pragma_update(None, "user_version", (index + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}

fn open_existing(path: &Path) -> Result<Connection> {
    if !path.is_file() {
        let dir = path.parent().unwrap_or(path);
        return Err(data_dir_problem(dir, Access::Read)
            .unwrap_or_else(|| StoreError::Missing(dir.display().to_string())));
    }
    crate::sql::memory::install();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Ok(Connection::open_with_flags(path, flags)?)
}

/// The write side: owned by the writer thread (or an importer).
/// The longest write-ahead log [`StoreWriter::keep_log_at_close`] leaves for the next opener
/// (which reads all of it): 256 KiB, a few `devtrace run`s.
const KEPT_LOG_BYTES: u64 = 256 * 1024;

pub struct SqliteWriter {
    /// Declared before `conn`, so dropped first: the last connection to close decides whether
    /// the log is kept (`keep_log_at_close`), and that must be the writer's.
    checkpoints: checkpoints::Checkpoints,
    conn: Connection,
    index: IndexCache,
    /// Span ids of recently written traces, so re-sent spans are found without a read.
    recent: RecentSpans,
    /// `PRAGMA data_version` in the last transaction: a change means another connection wrote.
    data_version: Option<i64>,
    series: crate::metrics::SeriesCache,
    /// The database file, and its (device, inode) when opened: checked before each
    /// transaction so that nothing is acknowledged into a file deleted under the server.
    path: PathBuf,
    identity: Option<(u64, u64)>,
}

/// (device, inode) of `path`, or `None` when it cannot be read.
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Creates the data directory `data_dir` (and its parents) if it is missing, with the error that
/// names it and says what to do when it cannot be (a file in the way, no permission, …).
pub fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .map_err(|error| data_dir_error(data_dir, &error, Access::Create))
}

impl SqliteWriter {
    /// Opens (creating if needed) the store in `data_dir` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Self> {
        create_data_dir(data_dir)?;
        let path = database_path(data_dir);
        crate::sql::memory::install();
        let opened = Connection::open(&path)
            .map_err(StoreError::from)
            .and_then(|mut conn| {
                configure(&conn, 64 * 1024)?;
                migrate(&mut conn, &path)?;
                sqlite_dictionaries::adopt_newest(&conn)?;
                Ok(conn)
            });
        // SQLite says "unable to open database file" (error code 14) or "readonly database":
        // the directory itself says why.
        let mut conn =
            opened.map_err(|error| data_dir_problem(data_dir, Access::Write).unwrap_or(error))?;
        let checkpoints = checkpoints::Checkpoints::install(&mut conn, &path, Default::default())?;
        Ok(Self {
            checkpoints,
            conn,
            index: IndexCache::default(),
            recent: RecentSpans::new(crate::recent::DEFAULT_CAPACITY),
            data_version: None,
            series: crate::metrics::SeriesCache::default(),
            identity: file_identity(&path),
            path,
        })
    }
}

#[cfg(test)]
impl SqliteWriter {
    fn with_recent_capacity(mut self, spans: usize) -> Self {
        self.recent = RecentSpans::new(spans);
        self
    }

    fn with_checkpoint_rule(mut self, rule: checkpoints::Rule) -> Self {
        self.checkpoints = checkpoints::Checkpoints::install(&mut self.conn, &self.path, rule)
            .expect("log hook installed");
        self
    }
}

const UPSERT_TRACE: &str = "
    INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count,
                        root_name, root_service, root_is_real, is_run,
                        root_start_ns, root_end_ns, root_failed)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (trace_id) DO UPDATE SET
        start_ns = min(start_ns, excluded.start_ns),
        end_ns = max(end_ns, excluded.end_ns),
        span_count = span_count + excluded.span_count,
        error_count = error_count + excluded.error_count,
        root_name = CASE
            WHEN root_is_real THEN root_name
            WHEN excluded.root_is_real OR excluded.start_ns < start_ns THEN excluded.root_name
            ELSE root_name END,
        root_service = CASE
            WHEN root_is_real THEN root_service
            WHEN excluded.root_is_real OR excluded.start_ns < start_ns THEN excluded.root_service
            ELSE root_service END,
        root_start_ns = CASE
            WHEN root_is_real THEN root_start_ns
            WHEN excluded.root_is_real OR excluded.start_ns < start_ns THEN excluded.root_start_ns
            ELSE root_start_ns END,
        root_end_ns = CASE
            WHEN root_is_real THEN root_end_ns
            WHEN excluded.root_is_real OR excluded.start_ns < start_ns THEN excluded.root_end_ns
            ELSE root_end_ns END,
        root_failed = CASE
            WHEN root_is_real THEN root_failed
            WHEN excluded.root_is_real OR excluded.start_ns < start_ns THEN excluded.root_failed
            ELSE root_failed END,
        root_is_real = max(root_is_real, excluded.root_is_real),
        is_run = max(is_run, excluded.is_run)
    RETURNING id";

/// What the embedded store answers to a write or a handle for another project.
pub(crate) fn one_project_only(project: ProjectId) -> StoreError {
    StoreError::Unsupported(format!(
        "the embedded store holds one project, `default` (this is project {}); projects need the PostgreSQL store (--store postgres://…)",
        project.0
    ))
}

/// Within one transaction, the merge-mode chunks of a trace (a live session that several of
/// the transaction's requests updated) become one, so the stored session is decoded, merged
/// and re-encoded once per transaction instead of once per request. Chunks are not combined
/// across a deletion of their trace. `None` when no trace has two such chunks.
fn coalesce_session_chunks(batches: &[WriteBatch]) -> Result<Option<Vec<WriteBatch>>> {
    use std::collections::HashMap;
    // (trace, segment: how many deletions of it came before) → the chunks' places.
    let mut places: HashMap<(TraceId, usize), Vec<(usize, usize)>> = HashMap::new();
    let mut deletions: HashMap<TraceId, usize> = HashMap::new();
    for (b, batch) in batches.iter().enumerate() {
        for trace_id in &batch.deletes {
            *deletions.entry(*trace_id).or_default() += 1;
        }
        for (t, trace) in batch.traces.iter().enumerate() {
            if trace.merge {
                let segment = deletions.get(&trace.trace_id).copied().unwrap_or(0);
                places
                    .entry((trace.trace_id, segment))
                    .or_default()
                    .push((b, t));
            }
        }
    }
    if places.values().all(|p| p.len() < 2) {
        return Ok(None);
    }
    let mut out: Vec<WriteBatch> = batches.to_vec();
    let mut dropped: Vec<Vec<bool>> = batches
        .iter()
        .map(|b| vec![false; b.traces.len()])
        .collect();
    for ((trace_id, _), at) in places.into_iter().filter(|(_, p)| p.len() > 1) {
        let mut combined = SpanBatch::default();
        for &(b, t) in &at {
            devtrace_model::session::merge_batches(
                &mut combined,
                chunk::decode_spans(&batches[b].traces[t].data)?,
            );
        }
        let mut merged = crate::prepare::summarise(trace_id, &combined);
        merged.merge = true;
        let &(last_b, last_t) = at.last().expect("two or more places");
        out[last_b].traces[last_t] = merged;
        for &(b, t) in &at[..at.len() - 1] {
            dropped[b][t] = true;
        }
    }
    for (batch, dropped) in out.iter_mut().zip(dropped) {
        let mut keep = dropped.into_iter().map(|d| !d);
        batch.traces.retain(|_| keep.next().unwrap_or(true));
    }
    Ok(Some(out))
}

impl StoreWriter for SqliteWriter {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<()> {
        if let Some(batch) = batches.iter().find(|b| b.project != ProjectId::DEFAULT) {
            return Err(one_project_only(batch.project));
        }
        self.check_file()?;
        let coalesced = coalesce_session_chunks(batches)?;
        let batches = coalesced.as_deref().unwrap_or(batches);
        let result = self
            .write_transaction(batches)
            .map_err(|e| explain_write_error(&self.path, e));
        if result.is_err() {
            // Names, spans and series inserted by the failed transaction were rolled back with it.
            self.index = IndexCache::default();
            self.recent.clear();
            self.data_version = None;
            self.series.clear();
        }
        result
    }

    fn checkpoint(&mut self) -> Result<()> {
        self.checkpoints.paused(|| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        })?;
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        self.conn.execute_batch("VACUUM")?;
        self.checkpoint()
    }

    fn keep_log_at_close(&mut self) {
        // A log kept this way is read whole by the next opener to rebuild its index, so it is
        // kept only while short: runs add a few pages each, and every few runs one folds it in.
        let mut log = self.path.clone().into_os_string();
        log.push("-wal");
        if std::fs::metadata(&log).is_ok_and(|m| m.len() > KEPT_LOG_BYTES) {
            if let Err(e) = self.checkpoint() {
                tracing::warn!(error = %e, "checkpoint of a long log at shutdown failed");
            }
            return;
        }
        self.checkpoints.stop();
        // Without it, closing the last connection checkpoints and deletes the log. If SQLite
        // refuses, the close checkpoints as before: slower, not less safe.
        let _ = self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        );
    }
}

/// What a command needs to do in a data directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Read an existing store.
    Read,
    /// Create the directory (and its parents).
    Create,
    /// Create and write files in it.
    Write,
}

/// Why the data directory `dir` cannot be used as `access` needs, naming it and saying what to
/// do; `None` when nothing is wrong with the directory (a missing one included: the caller
/// says so its own way).
fn data_dir_problem(dir: &Path, access: Access) -> Option<StoreError> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Some(data_dir_error(
                dir,
                &std::io::Error::from(std::io::ErrorKind::NotADirectory),
                access,
            ));
        }
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => return Some(data_dir_error(dir, &error, Access::Read)),
    }
    if let Err(error) = std::fs::read_dir(dir) {
        return Some(data_dir_error(dir, &error, Access::Read));
    }
    if access == Access::Write {
        let probe = dir.join(format!(".devtrace-write-check-{}", std::process::id()));
        // A page's worth of bytes, synced: creating an empty file works on a full disk.
        let written = std::fs::File::create_new(&probe).and_then(|mut file| {
            use std::io::Write;
            file.write_all(&[0; 4096])?;
            file.sync_all()
        });
        let _ = std::fs::remove_file(&probe);
        if let Err(error) = written {
            return Some(data_dir_error(dir, &error, Access::Write));
        }
    }
    None
}

/// `error` met doing `access` in the data directory `dir`, as a message naming the directory
/// and saying what to do.
fn data_dir_error(dir: &Path, error: &std::io::Error, access: Access) -> StoreError {
    use std::io::ErrorKind;
    let dir = escape(&dir.display().to_string());
    let another = "or choose another directory with --data";
    let message = match (error.kind(), access) {
        (ErrorKind::NotADirectory | ErrorKind::AlreadyExists, _) => format!(
            "the data directory {dir} is a file, or has a file in its path: move the file away, {another}"
        ),
        (ErrorKind::PermissionDenied, Access::Read) => format!(
            "cannot read the data directory {dir}: permission denied; give your user access to it (chmod u+rwx {dir}), {another}"
        ),
        (ErrorKind::PermissionDenied, _) => format!(
            "cannot write in the data directory {dir}: permission denied; give your user write access to it (chmod u+rwx {dir}), {another}"
        ),
        (ErrorKind::ReadOnlyFilesystem, _) => format!(
            "cannot write in the data directory {dir}: its file system is read-only; remount it read-write, {another}"
        ),
        (ErrorKind::StorageFull | ErrorKind::QuotaExceeded, _) => format!(
            "cannot write in the data directory {dir}: the disk holding it is full; free space there, {another}"
        ),
        _ => format!("cannot use the data directory {dir}: {error}; {another}"),
    };
    StoreError::DataDirectory(message)
}

/// Names the store file and says what to do when a write fails for a reason on the disk
/// (full, read-only, I/O error); other errors pass unchanged.
fn explain_write_error(path: &Path, error: StoreError) -> StoreError {
    let StoreError::Database(message) = &error else {
        return error;
    };
    let advice = if message.contains("full") {
        "the disk holding it is full: free space there; devtrace answers 503 (retry later) until then and resumes by itself"
    } else if message.contains("readonly") || message.contains("read-only") {
        "it is read-only (file system or permissions): make it writable; devtrace answers 503 (retry later) until then"
    } else if message.contains("I/O") {
        "the disk reported an I/O error: check the disk and the file system; devtrace answers 503 (retry later)"
    } else {
        return error;
    };
    StoreError::Unsupported(format!(
        "cannot write to the store {}: {advice} ({message})",
        escape(&path.display().to_string())
    ))
}

impl SqliteWriter {
    /// Refuses to write when the database file was deleted or replaced under the server:
    /// SQLite would go on writing into the unlinked file and every acknowledgement would be
    /// for data nobody can read again.
    fn check_file(&self) -> Result<()> {
        if self.identity.is_none() || file_identity(&self.path) == self.identity {
            return Ok(());
        }
        Err(StoreError::Unsupported(format!(
            "the store {} was deleted or replaced under the running server: nothing more can be stored in it; restart `devtrace serve` to create a new store there",
            escape(&self.path.display().to_string())
        )))
    }

    fn write_transaction(&mut self, batches: &[WriteBatch]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another connection (an importer beside a server) may have written since this
        // writer's last transaction: then what the cache remembers may be incomplete.
        let version: i64 = tx.pragma_query_value(None, "data_version", |r| r.get(0))?;
        if self.data_version != Some(version) {
            self.recent.clear();
        }
        let mut counts = Counts::default();
        {
            let mut insert_logs = tx.prepare_cached(
                "INSERT INTO log_chunks (trace_id, first_ns, count, data) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for batch in batches {
                for trace_id in &batch.deletes {
                    self.recent.forget(trace_id);
                    let (traces_gone, spans_gone, logs_gone) =
                        delete_trace(&tx, &mut self.index, *trace_id)?;
                    counts.traces -= traces_gone;
                    counts.spans -= spans_gone;
                    counts.logs -= logs_gone;
                }
                if let Some(before) = batch.delete_logs_before {
                    let gone: i64 = tx
                        .prepare_cached(
                            "SELECT coalesce(sum(count), 0) FROM log_chunks WHERE first_ns < ?1",
                        )?
                        .query_row(params![clamp_i64(before)], |row| row.get(0))?;
                    tx.prepare_cached("DELETE FROM log_chunks WHERE first_ns < ?1")?
                        .execute(params![clamp_i64(before)])?;
                    counts.logs -= gone;
                }
                for trace in &batch.traces {
                    if trace.merge {
                        self.recent.forget(&trace.trace_id);
                        if let Some(delta) = merge_trace(&tx, &mut self.index, trace)? {
                            counts.spans += delta;
                            continue;
                        }
                    }
                    append_trace(&tx, &mut self.index, &mut self.recent, trace, &mut counts)?;
                }
                for blob in &batch.blobs {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO blobs (hash, size, data) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![
                        &blob.hash[..],
                        blob.size as i64,
                        blob.data
                    ])?;
                }
                for cursor in &batch.cursors {
                    tx.prepare_cached(
                        "INSERT INTO import_cursors (source, offset, fingerprint, state, updated_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (source) DO UPDATE SET offset = excluded.offset,
                             fingerprint = excluded.fingerprint, state = excluded.state,
                             updated_ns = excluded.updated_ns",
                    )?
                    .execute(params![
                        cursor.source,
                        cursor.offset as i64,
                        &cursor.fingerprint[..],
                        cursor.state,
                        unix_now_nanos(),
                    ])?;
                }
                counts.points +=
                    crate::metrics::write_series(&tx, &mut self.series, &batch.metrics)?;
                for log in &batch.logs {
                    let trace_id = log.trace_id.map(|id| id.0.to_vec());
                    insert_logs.execute(params![
                        trace_id,
                        log.first_unix_nano as i64,
                        log.count as i64,
                        log.data
                    ])?;
                    counts.logs += log.count as i64;
                }
            }
            let mut remember = tx.prepare_cached(
                "INSERT OR IGNORE INTO imported_documents (digest, imported_ns) VALUES (?1, ?2)",
            )?;
            let now = unix_now_nanos();
            for batch in batches {
                for digest in &batch.documents {
                    remember.execute(params![&digest[..], now])?;
                }
            }
            let mut bump = tx.prepare_cached(
                "INSERT INTO counters (name, value) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            )?;
            bump.execute(params!["spans", counts.spans])?;
            bump.execute(params!["traces", counts.traces])?;
            bump.execute(params!["logs", counts.logs])?;
            if counts.points != 0 {
                bump.execute(params!["metric_points", counts.points])?;
            }
            if counts.resent != 0 {
                bump.execute(params!["resent_spans", counts.resent])?;
            }
        }
        write_index_rows(&tx, &mut self.index)?;
        tx.commit()?;
        self.data_version = Some(version);
        Ok(())
    }
}

/// What one transaction changes in the counters.
#[derive(Default)]
struct Counts {
    spans: i64,
    traces: i64,
    logs: i64,
    /// Spans received again and not stored.
    resent: i64,
    /// Metric data points stored.
    points: i64,
}

/// A new trace's row; `None` when the trace is stored already (nothing is changed then).
const INSERT_NEW_TRACE: &str = "
    INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count,
                        root_name, root_service, root_is_real, is_run,
                        root_start_ns, root_end_ns, root_failed)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
    ON CONFLICT (trace_id) DO NOTHING
    RETURNING id";

/// Appends a chunk to its trace, leaving out every span stored before (first version wins):
/// a new trace costs one insert; a known one is checked against the writer's cache of recent
/// traces, or, on a miss, against the span ids in its stored chunks.
fn append_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    recent: &mut RecentSpans,
    trace: &TraceChunk,
    counts: &mut Counts,
) -> Result<()> {
    counts.resent += trace.repeated as i64;
    let row = |c: &TraceChunk| {
        (
            c.trace_id.0.to_vec(),
            c.start_unix_nano as i64,
            c.end_unix_nano as i64,
            c.span_count as i64,
            c.error_count as i64,
            c.root_name.clone(),
            c.root_service.clone(),
            c.is_root,
            c.is_run,
            clamp_i64(c.root_start_unix_nano),
            clamp_i64(c.root_end_unix_nano),
            c.root_failed,
        )
    };
    let known_key = if recent.known(&trace.trace_id).is_some() {
        None
    } else {
        let inserted: Option<i64> = tx
            .prepare_cached(INSERT_NEW_TRACE)?
            .query_row(row(trace), |r| r.get(0))
            .optional()?;
        match inserted {
            Some(key) => {
                counts.traces += 1;
                store_chunk(tx, index, recent, key, trace, counts)?;
                return Ok(());
            }
            None => {
                // Stored before, but not in the cache: read what is stored.
                let (key, ids) = stored_span_ids(tx, trace.trace_id)?;
                recent.add(trace.trace_id, &ids);
                Some(key)
            }
        }
    };
    let known = recent
        .known(&trace.trace_id)
        .expect("the trace was just found or read into the cache");
    let resent = trace.span_ids.iter().filter(|id| known.holds(id)).count();
    counts.resent += resent as i64;
    let filtered;
    let chunk = if resent == 0 {
        trace
    } else if resent == trace.span_ids.len() {
        return Ok(());
    } else {
        filtered = without_stored(trace, |id| known.holds(id))?
            .expect("a span is left when not every one was stored");
        &filtered
    };
    let key: i64 = tx
        .prepare_cached(UPSERT_TRACE)?
        .query_row(row(chunk), |r| r.get(0))?;
    debug_assert!(known_key.is_none_or(|k| k == key));
    store_chunk(tx, index, recent, key, chunk, counts)
}

/// Inserts a chunk of new spans under the trace row `key` and indexes it.
fn store_chunk(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    recent: &mut RecentSpans,
    key: i64,
    chunk: &TraceChunk,
    counts: &mut Counts,
) -> Result<()> {
    sqlite_dictionaries::keep_for(tx, &chunk.data, &mut index.dictionaries)?;
    tx.prepare_cached("INSERT INTO span_chunks (trace, data) VALUES (?1, ?2)")?
        .execute(params![key, chunk.data])?;
    index_chunk(tx, index, key, chunk)?;
    if chunk.merge
        && let Some(facts) = &chunk.session
    {
        upsert_session(tx, key, facts)?;
    }
    counts.spans += chunk.span_count as i64;
    recent.add(chunk.trace_id, &chunk.span_ids);
    Ok(())
}

/// The row id of a stored trace and every span id in its chunks.
fn stored_span_ids(
    tx: &rusqlite::Transaction<'_>,
    trace_id: TraceId,
) -> Result<(i64, Vec<SpanId>)> {
    let key: i64 = tx
        .prepare_cached("SELECT id FROM traces WHERE trace_id = ?1")?
        .query_row(params![&trace_id.0[..]], |row| row.get(0))?;
    let stored = read_chunks(tx, key)?;
    Ok((key, stored.spans.iter().map(|s| s.span_id).collect()))
}

/// Merges a chunk into its stored trace (see `TraceChunk::merge`): the stored chunks and the
/// new one become one chunk, the summary and the operation index are recomputed. Returns the
/// change in span count, or `None` when the trace is new (append instead).
fn merge_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    trace: &TraceChunk,
) -> Result<Option<i64>> {
    let found: Option<(i64, i64)> = tx
        .prepare_cached("SELECT id, span_count FROM traces WHERE trace_id = ?1")?
        .query_row(params![&trace.trace_id.0[..]], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let Some((key, old_count)) = found else {
        return Ok(None);
    };
    let mut stored = read_chunks(tx, key)?;
    unindex_trace(tx, index, key, &stored)?;
    devtrace_model::session::merge_batches(&mut stored, chunk::decode_spans(&trace.data)?);
    let merged = crate::prepare::summarise(trace.trace_id, &stored);
    replace_trace(tx, index, key, &merged, Columns::All)?;
    index_chunk(tx, index, key, &merged)?;
    if let Some(facts) = &merged.session {
        upsert_session(tx, key, facts)?;
    }
    Ok(Some(merged.span_count as i64 - old_count))
}

fn unix_now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

fn upsert_session(tx: &rusqlite::Transaction<'_>, key: i64, facts: &SessionFacts) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO sessions (trace, session_id, agent, project, title, start_ns, end_ns, turns,
             tool_calls, subagents, input_tokens, output_tokens, cache_read_tokens, errors)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (trace) DO UPDATE SET session_id = excluded.session_id,
             agent = excluded.agent, project = excluded.project, title = excluded.title,
             start_ns = excluded.start_ns, end_ns = excluded.end_ns, turns = excluded.turns,
             tool_calls = excluded.tool_calls, subagents = excluded.subagents,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             cache_read_tokens = excluded.cache_read_tokens, errors = excluded.errors",
    )?
    .execute(params![
        key,
        facts.session_id,
        facts.agent,
        facts.project,
        facts.title,
        facts.start_unix_nano as i64,
        facts.end_unix_nano as i64,
        facts.turns as i64,
        facts.tool_calls as i64,
        facts.subagents as i64,
        facts.input_tokens as i64,
        facts.output_tokens as i64,
        facts.cache_read_tokens as i64,
        facts.errors as i64,
    ])?;
    Ok(())
}

/// Removes a trace and everything stored for it; returns the (traces, spans, logs) removed.
fn delete_trace(
    tx: &rusqlite::Transaction<'_>,
    index: &mut IndexCache,
    trace_id: TraceId,
) -> Result<(i64, i64, i64)> {
    let found: Option<(i64, i64)> = tx
        .prepare_cached("SELECT id, span_count FROM traces WHERE trace_id = ?1")?
        .query_row(params![&trace_id.0[..]], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let logs: i64 = tx
        .prepare_cached("SELECT coalesce(sum(count), 0) FROM log_chunks WHERE trace_id = ?1")?
        .query_row(params![&trace_id.0[..]], |row| row.get(0))?;
    tx.prepare_cached("DELETE FROM log_chunks WHERE trace_id = ?1")?
        .execute(params![&trace_id.0[..]])?;
    let Some((key, span_count)) = found else {
        return Ok((0, 0, logs));
    };
    let stored = read_chunks(tx, key)?;
    unindex_trace(tx, index, key, &stored)?;
    for sql in [
        "DELETE FROM span_chunks WHERE trace = ?1",
        "DELETE FROM sessions WHERE trace = ?1",
        "DELETE FROM traces WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute(params![key])?;
    }
    Ok((1, span_count, logs))
}

/// Every span stored for trace `key`, in the order its chunks arrived.
fn read_chunks(conn: &Connection, key: i64) -> Result<SpanBatch> {
    let mut spans = SpanBatch::default();
    let mut statement =
        conn.prepare_cached("SELECT data FROM span_chunks WHERE trace = ?1 ORDER BY rowid")?;
    let mut rows = statement.query(params![key])?;
    while let Some(row) = rows.next()? {
        spans.extend(sqlite_dictionaries::decode_stored_spans(
            conn,
            row.get_ref(0)?.as_blob()?,
        )?);
    }
    Ok(spans)
}

/// The read side: a small pool of connections, shareable across threads (and cheap to clone).
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    idle: std::sync::Arc<Mutex<Vec<Connection>>>,
}

impl SqliteStore {
    /// Opens an existing store for reading; fails with [`StoreError::Missing`] if there is none.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = database_path(data_dir);
        let mut conn = open_existing(&path)?;
        configure(&conn, 16 * 1024)?;
        migrate(&mut conn, &path)?;
        Ok(Self {
            path,
            idle: std::sync::Arc::new(Mutex::new(vec![conn])),
        })
    }

    pub(crate) fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.idle.lock().expect("pool poisoned").pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = open_existing(&self.path)?;
                configure(&conn, 16 * 1024)?;
                conn
            }
        };
        let result = f(&conn);
        self.idle.lock().expect("pool poisoned").push(conn);
        result
    }

    fn files_size(&self) -> u64 {
        ["", "-wal", "-shm"]
            .iter()
            .filter_map(|suffix| {
                let mut name = self.path.clone().into_os_string();
                name.push(suffix);
                std::fs::metadata(PathBuf::from(name)).ok()
            })
            .map(|m| m.len())
            .sum()
    }
}

fn summary_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TraceSummary> {
    summary_at(row, 0)
}

/// A [`SUMMARY_COLUMNS`] row whose first column is at `at`.
fn summary_at(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<TraceSummary> {
    let id: Vec<u8> = row.get(at)?;
    let services: Option<String> = row.get(at + 7)?;
    let mut services: Vec<String> = services
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default();
    services.sort();
    Ok(TraceSummary {
        trace_id: TraceId::from_slice(&id).unwrap_or_default(),
        start_unix_nano: row.get::<_, i64>(at + 1)? as u64,
        end_unix_nano: row.get::<_, i64>(at + 2)? as u64,
        root_name: row.get(at + 3)?,
        service: row.get(at + 4)?,
        services,
        span_count: row.get::<_, i64>(at + 5)? as u64,
        error_count: row.get::<_, i64>(at + 6)? as u64,
        root_start_unix_nano: row.get::<_, i64>(at + 8)? as u64,
        root_end_unix_nano: row.get::<_, i64>(at + 9)? as u64,
        root_failed: row.get(at + 10)?,
    })
}

const SESSION_COLUMNS: &str = "t.trace_id, s.session_id, s.agent, s.project, s.title, s.start_ns,
     s.end_ns, s.turns, s.tool_calls, s.subagents, s.input_tokens, s.output_tokens,
     s.cache_read_tokens, s.errors";

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    let id: Vec<u8> = row.get(0)?;
    let int = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(SessionSummary {
        trace_id: TraceId::from_slice(&id).unwrap_or_default(),
        facts: SessionFacts {
            session_id: row.get(1)?,
            agent: row.get(2)?,
            project: row.get(3)?,
            title: row.get(4)?,
            start_unix_nano: int(5)?,
            end_unix_nano: int(6)?,
            turns: int(7)?,
            tool_calls: int(8)?,
            subagents: int(9)?,
            input_tokens: int(10)?,
            output_tokens: int(11)?,
            cache_read_tokens: int(12)?,
            errors: int(13)?,
        },
    })
}

/// The smallest LIMIT `list_traces` asks SQLite for (see there).
const MIN_SQL_LIMIT: usize = 8;

/// The columns of a [`TraceSummary`], selected `FROM traces` (unaliased): the summary row and
/// the trace's services as a JSON array.
const SUMMARY_COLUMNS: &str =
    "trace_id, start_ns, end_ns, root_name, root_service, span_count, error_count,
     (SELECT json_group_array(s.name) FROM trace_services ts JOIN services s ON s.id = ts.service
      WHERE ts.trace = traces.id),
     coalesce(root_start_ns, start_ns), coalesce(root_end_ns, end_ns),
     coalesce(root_failed, error_count > 0)";

impl Store for SqliteStore {
    fn list_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>> {
        let mut sql = format!("SELECT {SUMMARY_COLUMNS} FROM traces WHERE 1 = 1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(service) = &query.service {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM trace_services ts WHERE ts.trace = traces.id
                              AND ts.service = (SELECT id FROM services WHERE name = ?))",
            );
            args.push(service.clone().into());
        }
        if let Some(name) = &query.name_contains {
            sql.push_str(" AND instr(root_name, ?) > 0");
            args.push(name.clone().into());
        }
        if let Some(operation) = &query.operation {
            sql.push_str(
                " AND id IN (SELECT trace FROM trace_operations
                             WHERE operation IN (SELECT id FROM operations WHERE name = ?))",
            );
            args.push(operation.clone().into());
        }
        if let Some(min) = query.min_duration_nanos {
            sql.push_str(
                " AND coalesce(root_end_ns, end_ns) - coalesce(root_start_ns, start_ns) >= ?",
            );
            args.push(clamp_i64(min).into());
        }
        if let Some(max) = query.max_duration_nanos {
            sql.push_str(
                " AND coalesce(root_end_ns, end_ns) - coalesce(root_start_ns, start_ns) <= ?",
            );
            args.push(clamp_i64(max).into());
        }
        if query.errors_only {
            sql.push_str(" AND error_count > 0");
        }
        if query.without_errors {
            sql.push_str(" AND error_count = 0");
        }
        if query.runs_only {
            sql.push_str(" AND is_run = 1");
        }
        if query.runtime_only {
            sql.push_str(" AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.trace = traces.id)");
        }
        if let Some(since) = query.since_unix_nano {
            sql.push_str(" AND start_ns >= ?");
            args.push(clamp_i64(since).into());
        }
        if let Some(until) = query.until_unix_nano {
            sql.push_str(" AND start_ns < ?");
            args.push(clamp_i64(until).into());
        }
        if let Some(after) = &query.after {
            sql.push_str(" AND (start_ns, trace_id) < (?, ?)");
            args.push(clamp_i64(after.start_unix_nano).into());
            args.push(after.trace_id.0.to_vec().into());
        }
        sql.push_str(" ORDER BY start_ns DESC, trace_id DESC LIMIT ?");
        // At least a few rows: for a LIMIT below 5 SQLite's planner gives up the start-time
        // index for a scan of every trace with a top-N sort (35 ms instead of 0.1 ms on the
        // 5 M-span store, measured with the newest-trace lookup of the default window).
        let limit = query.limit.min(i64::MAX as usize);
        args.push((limit.max(MIN_SQL_LIMIT) as i64).into());
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(args), summary_from_row)?;
            Ok(rows.take(limit).collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn trace_ids_between(&self, low: TraceId, high: TraceId, limit: usize) -> Result<Vec<TraceId>> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT trace_id FROM traces WHERE trace_id BETWEEN ?1 AND ?2
                 ORDER BY trace_id LIMIT ?3",
            )?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = statement.query_map(params![&low.0[..], &high.0[..], limit], |row| {
                let id: Vec<u8> = row.get(0)?;
                Ok(TraceId::from_slice(&id).unwrap_or_default())
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn trace_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SUMMARY_COLUMNS} FROM traces WHERE trace_id = ?1"
                ))?
                .query_row(params![&trace_id.0[..]], summary_from_row)
                .optional()?)
        })
    }

    fn get_trace(&self, trace_id: TraceId) -> Result<Option<StoredTrace>> {
        self.with_conn(|conn| {
            let found = conn
                .prepare_cached(&format!(
                    "SELECT id, {SUMMARY_COLUMNS} FROM traces WHERE trace_id = ?1"
                ))?
                .query_row(params![&trace_id.0[..]], |row| {
                    Ok((row.get::<_, i64>(0)?, summary_at(row, 1)?))
                })
                .optional()?;
            let Some((key, summary)) = found else {
                return Ok(None);
            };
            let spans = read_chunks(conn, key)?;
            Ok(Some(StoredTrace { summary, spans }))
        })
    }

    fn logs_for_trace(&self, trace_id: TraceId) -> Result<LogBatch> {
        let mut logs = self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT data FROM log_chunks WHERE trace_id = ?1 ORDER BY first_ns, rowid",
            )?;
            let mut rows = statement.query(params![&trace_id.0[..]])?;
            let mut logs = LogBatch::default();
            while let Some(row) = rows.next()? {
                logs.extend(chunk::decode_logs(row.get_ref(0)?.as_blob()?)?);
            }
            Ok(logs)
        })?;
        logs.logs.sort_by_key(|log| log.effective_time());
        Ok(logs)
    }

    fn traces_with_operation(
        &self,
        operation: &OperationFilter,
        since_unix_nano: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceSummary>> {
        let since = clamp_i64(since_unix_nano.unwrap_or(0));
        let limit = limit.min(i64::MAX as usize) as i64;
        self.with_conn(|conn| {
            let ids: Vec<i64> = conn
                .prepare_cached(
                    "SELECT o.id FROM operations o JOIN services s ON s.id = o.service
                     WHERE o.name = ?1 AND (?2 IS NULL OR s.name = ?2) AND (?3 IS NULL OR o.kind = ?3)",
                )?
                .query_map(
                    params![
                        operation.name,
                        operation.service,
                        operation.kind.map(|k| k.to_otlp())
                    ],
                    |row| row.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?;
            // The newest `limit` traces of each matching operation (the index walks them newest
            // first and stops), then the newest `limit` of their union.
            let mut keys: Vec<i64> = Vec::new();
            let mut newest = conn.prepare_cached(
                "SELECT o.trace FROM trace_operations o JOIN traces t ON t.id = o.trace
                 WHERE o.operation = ?1 AND t.start_ns >= ?2 ORDER BY o.trace DESC LIMIT ?3",
            )?;
            for id in ids {
                let rows = newest.query_map(params![id, since, limit], |row| row.get(0))?;
                keys.extend(rows.collect::<rusqlite::Result<Vec<i64>>>()?);
            }
            keys.sort_unstable_by(|a, b| b.cmp(a));
            keys.dedup();
            keys.truncate(limit as usize);
            let mut summary = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM traces WHERE id = ?1"
            ))?;
            let mut found = Vec::with_capacity(keys.len());
            for key in keys {
                if let Some(row) = summary.query_row(params![key], summary_from_row).optional()? {
                    found.push(row);
                }
            }
            found.sort_by_key(|t| std::cmp::Reverse(t.start_unix_nano));
            Ok(found)
        })
    }

    fn services(&self, since_unix_nano: Option<u64>) -> Result<Vec<ServiceSummary>> {
        self.with_conn(|conn| {
            let since = clamp_i64(since_unix_nano.unwrap_or(0));
            let sql = if services_window_is_wide(conn, since)? {
                SERVICES_SCAN_SQL
            } else {
                SERVICES_RECENT_SQL
            };
            let mut statement = conn.prepare_cached(sql)?;
            let rows = statement.query_map(params![since], |row| {
                let int =
                    |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
                Ok(ServiceSummary {
                    service: row.get(0)?,
                    traces: int(1)?,
                    root_traces: int(2)?,
                    error_traces: int(3)?,
                    spans: int(4)?,
                    first_start_unix_nano: int(5)?,
                    last_end_unix_nano: int(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT o.name, s.name, o.kind FROM operations o JOIN services s ON s.id = o.service",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Operation::new(
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    SpanKind::from_otlp(row.get(2)?),
                ))
            })?;
            let mut operations = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            operations.sort();
            Ok(operations)
        })
    }

    fn operation_names(&self) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT DISTINCT name FROM operations ORDER BY name")?;
            let rows = statement.query_map([], |row| row.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn is_imported(&self, digest: &crate::DocumentDigest) -> Result<bool> {
        self.with_conn(|conn| {
            let found = conn
                .prepare_cached("SELECT 1 FROM imported_documents WHERE digest = ?1")?
                .query_row(params![&digest[..]], |_| Ok(()))
                .optional()?;
            Ok(found.is_some())
        })
    }

    fn query_sql(
        &self,
        sql: &str,
        limits: crate::sql::SqlLimits,
    ) -> Result<crate::sql::SqlRows, crate::sql::SqlError> {
        crate::sql::query(&self.path, sql, limits)
    }

    fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<SessionSummary>> {
        let mut sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN traces t ON t.id = s.trace WHERE 1 = 1"
        );
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(agent) = &query.agent {
            sql.push_str(" AND s.agent = ?");
            args.push(agent.clone().into());
        }
        if let Some((project, prefix)) = query.project_and_prefix() {
            sql.push_str(" AND (s.project = ? OR substr(s.project, 1, ?) = ?)");
            args.push(project.to_owned().into());
            args.push((prefix.len() as i64).into());
            args.push(prefix.into());
        }
        if let Some(since) = query.since_unix_nano {
            sql.push_str(" AND s.start_ns >= ?");
            args.push(clamp_i64(since).into());
        }
        if let Some((from, to)) = query.active_between {
            sql.push_str(" AND s.start_ns <= ? AND s.end_ns >= ?");
            args.push(clamp_i64(to).into());
            args.push(clamp_i64(from).into());
        }
        sql.push_str(" ORDER BY s.start_ns DESC, s.trace DESC LIMIT ?");
        args.push((query.limit.min(i64::MAX as usize) as i64).into());
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(args), session_from_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn session(&self, trace_id: TraceId) -> Result<Option<SessionSummary>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s JOIN traces t ON t.id = s.trace
                     WHERE t.trace_id = ?1"
                ))?
                .query_row(params![&trace_id.0[..]], session_from_row)
                .optional()?)
        })
    }

    fn import_cursor(&self, source: &str) -> Result<Option<ImportCursor>> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT offset, fingerprint, state FROM import_cursors WHERE source = ?1",
                )?
                .query_row(params![source], |row| {
                    let fingerprint: Vec<u8> = row.get(1)?;
                    Ok(ImportCursor {
                        source: source.to_owned(),
                        offset: row.get::<_, i64>(0)? as u64,
                        fingerprint: fingerprint.try_into().unwrap_or([0; 32]),
                        state: row.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    fn qa(&self) -> Option<&dyn crate::qa::QaQueue> {
        Some(self)
    }

    fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let found: Option<(i64, Vec<u8>)> = self.with_conn(|conn| {
            Ok(conn
                .prepare_cached("SELECT size, data FROM blobs WHERE hash = ?1")?
                .query_row(params![&hash[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?)
        })?;
        found
            .map(|(size, data)| {
                zstd::bulk::decompress(&data, size.max(0) as usize)
                    .map_err(|e| StoreError::Corrupt(format!("blob: {e}")))
            })
            .transpose()
    }

    fn stats(&self) -> Result<StoreStats> {
        let mut stats = self.with_conn(|conn| {
            let mut statement = conn.prepare_cached("SELECT name, value FROM counters")?;
            let mut rows = statement.query([])?;
            let mut stats = StoreStats::default();
            while let Some(row) = rows.next()? {
                let value = row.get::<_, i64>(1)?.max(0) as u64;
                match row.get_ref(0)?.as_str()? {
                    "spans" => stats.spans = value,
                    "traces" => stats.traces = value,
                    "logs" => stats.logs = value,
                    "resent_spans" => stats.resent_spans = value,
                    "metric_points" => stats.metric_points = value,
                    _ => {}
                }
            }
            Ok(stats)
        })?;
        stats.bytes_on_disk = self.files_size();
        Ok(stats)
    }

    fn in_project(&self, project: ProjectId) -> Result<std::sync::Arc<dyn Store>> {
        if project != ProjectId::DEFAULT {
            return Err(one_project_only(project));
        }
        Ok(std::sync::Arc::new(self.clone()))
    }

    fn usage(
        &self,
        query: &crate::metrics::UsageQuery,
        by_day: bool,
    ) -> Result<Vec<crate::metrics::UsageTotal>> {
        self.with_conn(|conn| {
            if by_day {
                crate::metrics::usage_by_day(conn, query)
            } else {
                crate::metrics::usage_by_session(conn, query)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance;

    #[test]
    fn services_scan_a_wide_window_and_seek_a_recent_one() {
        let dir = tempfile::tempdir().unwrap();
        let _writer = SqliteWriter::open(dir.path()).unwrap();
        let conn = Connection::open(database_path(dir.path())).unwrap();
        let plan = |sql: &str| -> String {
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map([0], |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect::<Vec<_>>()
                .join("; ")
        };
        // Traces in storage order, each one's service entries found by its key.
        let scan = plan(SERVICES_SCAN_SQL);
        assert!(
            scan.starts_with("SCAN t;")
                && scan.contains("SEARCH ts USING PRIMARY KEY (trace=?)")
                && !scan.contains("INDEX"),
            "{scan}"
        );
        let recent = plan(SERVICES_RECENT_SQL);
        assert!(
            recent.contains("INDEX traces_by_start")
                && recent.contains("SEARCH ts USING PRIMARY KEY (trace=?)"),
            "{recent}"
        );
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'traces'")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            !indexes.iter().any(|i| i == "traces_by_service"),
            "migration 7 leaves no index for ingest to maintain: {indexes:?}"
        );

        // Trace starts at 0, 10, …, 100: a window from 0 (or before) or from 50 is wide, one
        // from 90 (10 % of the range) is recent; an empty store has nothing to scan.
        assert!(!services_window_is_wide(&conn, 0).unwrap());
        for (i, start) in (0..=100).step_by(10).enumerate() {
            conn.execute(
                "INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count,
                                     root_name, root_service, root_is_real)
                 VALUES (?1, ?2, ?2, 1, 0, 'op', 'svc', 1)",
                params![vec![i as u8 + 1; 16], start],
            )
            .unwrap();
        }
        assert!(services_window_is_wide(&conn, -5).unwrap());
        assert!(services_window_is_wide(&conn, 50).unwrap());
        assert!(!services_window_is_wide(&conn, 90).unwrap());
    }

    /// The span ids stored for trace `n`, sorted, and the summary's span count.
    fn stored_ids(store: &SqliteStore, n: u8) -> (Vec<u8>, u64) {
        let trace = store.get_trace(TraceId([n; 16])).unwrap().unwrap();
        let mut ids: Vec<u8> = trace.spans.spans.iter().map(|s| s.span_id.0[0]).collect();
        ids.sort();
        (ids, trace.summary.span_count)
    }

    fn spans_of(trace: u8, ids: &[u8]) -> WriteBatch {
        crate::prepare_spans(crate::conformance::batch(
            "svc",
            ids.iter()
                .map(|&id| {
                    let parent = (id != 1).then_some(1);
                    crate::conformance::span(trace, id, parent, "op", 10 * id as u64, 100)
                })
                .collect(),
        ))
    }

    #[test]
    fn index_rows_written_together_are_all_found_and_a_delete_in_the_same_transaction_sees_them() {
        use crate::conformance::{batch, span};
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SqliteWriter::open(dir.path()).unwrap();
        // 40 traces of three operations: 120 rows, more than a statement's 64.
        let spans = (1..=40u8)
            .flat_map(|t| {
                let names = ["op-a", "op-b", "op-c"];
                (1..=3u8).map(move |id| {
                    let parent = (id != 1).then_some(1);
                    span(t, id, parent, names[id as usize - 1], 10 * id as u64, 100)
                })
            })
            .collect();
        let written = crate::prepare_spans(batch("svc", spans));
        // The same transaction then deletes one of them: its rows must be gone with it.
        let delete = WriteBatch {
            deletes: vec![TraceId([5; 16])],
            ..Default::default()
        };
        writer.write(&[written, delete]).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for name in ["op-a", "op-b", "op-c"] {
            let found = store
                .traces_with_operation(&OperationFilter::named(name), None, 100)
                .unwrap();
            assert_eq!(found.len(), 39, "{name}");
        }
        let conn = Connection::open(database_path(dir.path())).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM trace_operations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 39 * 3, "no row of the deleted trace is left");
    }

    #[test]
    fn resent_spans_are_found_when_the_writer_has_not_seen_the_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store_writer = || SqliteWriter::open(dir.path()).unwrap();
        store_writer().write(&[spans_of(1, &[1, 2])]).unwrap();
        // A writer started later (a restarted server) has an empty cache: it reads the chunks.
        let mut fresh = store_writer();
        fresh.write(&[spans_of(1, &[2, 3])]).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(stored_ids(&store, 1), (vec![1, 2, 3], 3));
        // A trace evicted from a small cache is read back the same way.
        let mut small = store_writer().with_recent_capacity(2);
        small.write(&[spans_of(2, &[1, 2, 3])]).unwrap();
        small.write(&[spans_of(3, &[1, 2])]).unwrap();
        assert!(small.recent.known(&TraceId([2; 16])).is_none(), "evicted");
        small.write(&[spans_of(2, &[3, 4])]).unwrap();
        assert_eq!(stored_ids(&store, 2), (vec![1, 2, 3, 4], 4));
        let stats = store.stats().unwrap();
        assert_eq!((stats.spans, stats.resent_spans), (9, 2));
    }

    #[test]
    fn a_log_kept_at_close_is_kept_after_the_checkpointing_thread_ran() {
        let dir = tempfile::tempdir().unwrap();
        let rule = checkpoints::Rule {
            catch_up_frames: i32::MAX,
            quiet_frames: 1,
            quiet: Duration::from_millis(1),
        };
        let mut writer = SqliteWriter::open(dir.path())
            .unwrap()
            .with_checkpoint_rule(rule);
        writer.write(&[spans_of(1, &[1, 2])]).unwrap();
        let waited = std::time::Instant::now();
        while writer.checkpoints.runs() == 0 {
            assert!(waited.elapsed() < Duration::from_secs(30), "no checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        writer.write(&[spans_of(2, &[1])]).unwrap();
        writer.keep_log_at_close();
        drop(writer);
        // The thread's connection closed first: had it closed last, it would have folded the
        // log in and deleted it.
        let mut log = database_path(dir.path()).into_os_string();
        log.push("-wal");
        assert!(
            std::fs::metadata(&log).is_ok_and(|m| m.len() > 0),
            "log deleted"
        );
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(stored_ids(&store, 1), (vec![1, 2], 2));
        assert_eq!(stored_ids(&store, 2), (vec![1], 1));
    }

    #[test]
    fn a_write_by_another_connection_empties_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut server = SqliteWriter::open(dir.path()).unwrap();
        let mut importer = SqliteWriter::open(dir.path()).unwrap();
        server.write(&[spans_of(1, &[1])]).unwrap();
        // The server's cache holds trace 1 as {1}; the importer adds span 2 behind its back.
        importer.write(&[spans_of(1, &[2])]).unwrap();
        server.write(&[spans_of(1, &[2, 3])]).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(stored_ids(&store, 1), (vec![1, 2, 3], 3));
        assert_eq!(store.stats().unwrap().resent_spans, 1);
    }

    #[test]
    fn a_failed_transaction_empties_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SqliteWriter::open(dir.path()).unwrap();
        let mut broken = spans_of(2, &[1]);
        broken.traces[0].span_count = u64::MAX;
        // Trace 1's insert is rolled back with the transaction: the cache must not remember it.
        assert!(writer.write(&[spans_of(1, &[1, 2]), broken]).is_err());
        assert!(writer.recent.is_empty());
        writer.write(&[spans_of(1, &[1, 2])]).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(stored_ids(&store, 1), (vec![1, 2], 2));
    }

    #[test]
    fn a_sessions_chunks_in_one_transaction_are_merged_once_and_as_if_written_apart() {
        use devtrace_model::{KeyValue, semconv};
        let session = |id: u8, parent: Option<u8>, role: &str, start: u64, end: u64| {
            let mut span = conformance::span(4, id, parent, &format!("{role} {id}"), start, end);
            span.attributes = vec![KeyValue::new(semconv::SESSION_SPAN, role)];
            span
        };
        let mut root = session(1, None, semconv::SESSION_SPAN_SESSION, 100, 110);
        root.attributes
            .push(KeyValue::new(semconv::SESSION_AGENT, "claude-code"));
        let pieces = vec![
            conformance::batch(
                "claude-code",
                vec![
                    root.clone(),
                    session(2, Some(1), semconv::SESSION_SPAN_TOOL, 100, 105),
                ],
            ),
            // The same tool call again (finished), a new one, and a deletion of another trace.
            conformance::batch(
                "claude-code",
                vec![
                    session(2, Some(1), semconv::SESSION_SPAN_TOOL, 100, 120),
                    session(3, Some(1), semconv::SESSION_SPAN_TOOL, 121, 130),
                ],
            ),
            conformance::batch(
                "claude-code",
                vec![{
                    let mut r = root;
                    r.end_unix_nano = 130;
                    r
                }],
            ),
        ];
        let apart = tempfile::tempdir().unwrap();
        let together = tempfile::tempdir().unwrap();
        let mut writer = SqliteWriter::open(apart.path()).unwrap();
        for piece in &pieces {
            writer
                .write(&[crate::prepare_session(piece.clone(), vec![])])
                .unwrap();
        }
        let batches: Vec<WriteBatch> = pieces
            .iter()
            .map(|p| crate::prepare_session(p.clone(), vec![]))
            .collect();
        let coalesced = coalesce_session_chunks(&batches).unwrap().unwrap();
        assert_eq!(
            coalesced.iter().map(|b| b.traces.len()).sum::<usize>(),
            1,
            "one chunk for the session"
        );
        SqliteWriter::open(together.path())
            .unwrap()
            .write(&batches)
            .unwrap();
        let read = |dir: &Path| {
            let store = SqliteStore::open(dir).unwrap();
            let trace = store.get_trace(TraceId([4; 16])).unwrap().unwrap();
            let mut spans: Vec<(u8, u64, u64)> = trace
                .spans
                .spans
                .iter()
                .map(|s| (s.span_id.0[0], s.start_unix_nano, s.end_unix_nano))
                .collect();
            spans.sort();
            (
                spans,
                store.session(TraceId([4; 16])).unwrap().unwrap().facts,
                store.stats().unwrap().spans,
            )
        };
        assert_eq!(read(apart.path()), read(together.path()));
        assert_eq!(
            read(together.path()).0,
            [(1, 100, 130), (2, 100, 120), (3, 121, 130)]
        );
        // A deletion between two chunks of a trace keeps them apart.
        let mut deleting = batches.clone();
        deleting[1].deletes.push(TraceId([4; 16]));
        let kept = coalesce_session_chunks(&deleting).unwrap().unwrap();
        assert_eq!(
            kept.iter().map(|b| b.traces.len()).collect::<Vec<_>>(),
            [1, 0, 1]
        );
    }

    #[test]
    fn sqlite_passes_the_conformance_suite() {
        let dirs = std::cell::RefCell::new(Vec::new());
        conformance::run_all(&|| {
            let dir = tempfile::tempdir().unwrap();
            let writer = SqliteWriter::open(dir.path()).unwrap();
            let store = SqliteStore::open(dir.path()).unwrap();
            dirs.borrow_mut().push(dir);
            (Box::new(writer), Box::new(store))
        });
    }

    #[test]
    fn sqlite_passes_the_qa_queue_conformance_suite() {
        let dirs = std::cell::RefCell::new(Vec::new());
        conformance::run_qa(&|| {
            let dir = tempfile::tempdir().unwrap();
            let writer = SqliteWriter::open(dir.path()).unwrap();
            let store = SqliteStore::open(dir.path()).unwrap();
            dirs.borrow_mut().push(dir);
            (Box::new(writer), Box::new(store))
        });
        // Servers and commands read through a project-scoped handle: it keeps the queue.
        let dir = tempfile::tempdir().unwrap();
        SqliteWriter::open(dir.path()).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let scoped = store.in_project(ProjectId::DEFAULT).unwrap();
        assert!(scoped.qa().is_some());
    }

    #[test]
    fn sqlite_passes_the_team_conformance_suite() {
        let dirs = std::cell::RefCell::new(Vec::new());
        conformance::run_team(&|| {
            let dir = tempfile::tempdir().unwrap();
            let writer = SqliteWriter::open(dir.path()).unwrap();
            let store = SqliteStore::open(dir.path()).unwrap();
            dirs.borrow_mut().push(dir);
            (Box::new(writer), Box::new(store.clone()), Box::new(store))
        });
    }

    #[test]
    fn reading_a_missing_store_says_how_to_create_one() {
        let dir = tempfile::tempdir().unwrap();
        let error = SqliteStore::open(dir.path()).err().unwrap();
        assert!(matches!(error, StoreError::Missing(_)));
        assert!(error.to_string().contains("devtrace serve"));
    }

    #[test]
    fn a_version_1_store_upgrades_with_its_data_and_indexes_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = database_path(dir.path());
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count, root_name, root_service, root_is_real)
                 VALUES (?1, 1, 2, 1, 0, 'old', 'svc', 1)",
                params![&[7u8; 16][..]],
            )
            .unwrap();
        }
        // A chunk written by version 1: its span names must reach the operation index.
        {
            let conn = Connection::open(&path).unwrap();
            let chunk = crate::prepare_spans(crate::conformance::batch(
                "svc",
                vec![crate::conformance::span(7, 1, None, "old", 1, 2)],
            ));
            conn.execute(
                "INSERT INTO span_chunks (trace, data) VALUES (1, ?1)",
                params![chunk.traces[0].data],
            )
            .unwrap();
        }
        let mut writer = SqliteWriter::open(dir.path()).unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.resolve_trace_id("0707").unwrap(), TraceId([7; 16]));
        let found = store
            .traces_with_operation(&OperationFilter::named("old"), None, 10)
            .unwrap();
        assert_eq!(found.len(), 1, "the upgrade indexed the old chunk");
        let digest = [1u8; 32];
        assert!(!store.is_imported(&digest).unwrap());
        writer
            .write(&[WriteBatch {
                documents: vec![digest],
                ..Default::default()
            }])
            .unwrap();
        assert!(store.is_imported(&digest).unwrap());
    }

    /// A store left at each earlier version, holding what a devtrace of that version wrote: a
    /// trace across three services in two chunks, the second repeating a span (devtrace
    /// stored re-sent spans until version 9). Opening it brings it to the current version with
    /// the span once, exact counts and both indexes filled.
    #[test]
    fn a_store_of_every_earlier_version_upgrades_deduplicated_and_indexed() {
        use crate::conformance::{batch, span};
        let call = "/shop.Checkout/PlaceOrder";
        let mut client = span(5, 2, Some(1), call, 110, 190);
        client.kind = SpanKind::Client;
        let mut first = batch(
            "frontend",
            vec![span(5, 1, None, "GET /checkout", 100, 200)],
        );
        first.extend(batch("frontend", vec![client.clone()]));
        let mut server = span(5, 3, Some(2), call, 120, 180);
        server.status.code = devtrace_model::StatusCode::Error;
        let mut second = batch("frontend", vec![client]);
        second.extend(batch("checkout", vec![server]));
        let chunks: Vec<Vec<u8>> = [first, second]
            .into_iter()
            .map(|b| crate::prepare_spans(b).traces.remove(0).data)
            .collect();
        // Versions before migration 10, which dedups and indexes: from 10 on, a store never
        // holds a span twice.
        for version in 1..10 {
            let dir = tempfile::tempdir().unwrap();
            let path = database_path(dir.path());
            {
                let conn = Connection::open(&path).unwrap();
                for sql in &MIGRATIONS[..version as usize] {
                    conn.execute_batch(sql).unwrap();
                }
                conn.pragma_update(None, "user_version", version).unwrap();
                conn.execute(
                    "INSERT INTO traces (trace_id, start_ns, end_ns, span_count, error_count,
                                         root_name, root_service, root_is_real)
                     VALUES (?1, 100, 200, 4, 1, 'GET /checkout', 'frontend', 1)",
                    params![&[5u8; 16][..]],
                )
                .unwrap();
                for data in &chunks {
                    conn.execute(
                        "INSERT INTO span_chunks (trace, data) VALUES (1, ?1)",
                        params![data],
                    )
                    .unwrap();
                }
                conn.execute("UPDATE counters SET value = 4 WHERE name = 'spans'", [])
                    .unwrap();
                conn.execute("UPDATE counters SET value = 1 WHERE name = 'traces'", [])
                    .unwrap();
            }
            drop(SqliteWriter::open(dir.path()).unwrap());
            let store = SqliteStore::open(dir.path()).unwrap();
            let what = format!("from version {version}");
            let trace = store.get_trace(TraceId([5; 16])).unwrap().unwrap();
            assert_eq!(trace.spans.spans.len(), 3, "{what}");
            assert_eq!(
                (trace.summary.span_count, trace.summary.error_count),
                (3, 1),
                "{what}"
            );
            assert_eq!(trace.summary.services, ["checkout", "frontend"], "{what}");
            let stats = store.stats().unwrap();
            assert_eq!(
                (stats.spans, stats.traces, stats.resent_spans),
                (3, 1, 1),
                "{what}"
            );
            let operations: Vec<(String, String)> = store
                .operations()
                .unwrap()
                .into_iter()
                .map(|o| (o.service, o.kind.as_str().to_owned()))
                .collect();
            assert_eq!(
                operations,
                [
                    ("checkout".to_owned(), "server".to_owned()),
                    ("frontend".to_owned(), "client".to_owned()),
                    ("frontend".to_owned(), "server".to_owned()),
                ],
                "{what}"
            );
            let server_side = OperationFilter {
                name: call.into(),
                service: Some("checkout".into()),
                kind: None,
            };
            assert_eq!(
                store
                    .traces_with_operation(&server_side, None, 10)
                    .unwrap()
                    .len(),
                1,
                "{what}"
            );
            let checkout = store
                .list_traces(&TraceQuery {
                    service: Some("checkout".into()),
                    limit: 10,
                    ..Default::default()
                })
                .unwrap();
            assert_eq!(checkout.len(), 1, "{what}");
            let services = store.services(None).unwrap();
            assert_eq!(
                services
                    .iter()
                    .map(|s| (s.service.as_str(), s.spans, s.error_traces))
                    .collect::<Vec<_>>(),
                [("checkout", 1, 1), ("frontend", 2, 0)],
                "{what}"
            );
        }
    }

    #[test]
    fn migrations_run_once_and_newer_stores_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteWriter::open(dir.path()).unwrap());
        drop(SqliteWriter::open(dir.path()).unwrap());
        let conn = Connection::open(database_path(dir.path())).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(
            SqliteWriter::open(dir.path()),
            Err(StoreError::TooNew { .. })
        ));
    }
}
