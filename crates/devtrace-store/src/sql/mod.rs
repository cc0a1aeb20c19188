//! Read-only SQL over documented views of the store: the escape hatch for questions the
//! typed queries do not answer (MCP `query_sql`).
//!
//! Every query runs on a fresh connection that cannot write, three times over: the file is
//! opened `SQLITE_OPEN_READ_ONLY`, `PRAGMA query_only` is on, and an authorizer refuses at
//! prepare time anything but reading (no INSERT/UPDATE/DELETE, DDL, ATTACH, PRAGMA or
//! transactions), naming what it refused. The same authorizer lets a query read only the
//! documented views (not `sqlite_master`, the storage tables, `dbstat` or pragma functions)
//! and refuses functions that reach outside the query (`load_extension`, `fts3_tokenizer`).
//!
//! Every query is bounded ([`SqlLimits`]): a progress handler stops it at its time limit;
//! `SQLITE_LIMIT_LENGTH` caps every string or blob it makes; its heap is capped by counting
//! SQLite's allocations on its thread ([`memory`]); at most [`HEAVY_QUERIES`] run at once; and
//! the rows returned stop at a row count and a byte count. Each limit, when hit, is an error
//! (or, for rows and bytes, `more`) naming it.
//!
//! The views ([`SCHEMA`]) hide the storage layout: `traces` and `operations` are plain views
//! over the summary and operation-index tables; `spans` ([`spans`]) and `logs` ([`logs`]) are
//! virtual tables that decode the compressed chunks on demand, reading only what a
//! `trace_id = …` (or, for spans, `name = …`) constraint selects when the query has one.

mod logs;
pub mod memory;
mod spans;

use crate::StoreError;
use devtrace_model::{AnyValue, KeyValue};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::cell::Cell;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The views `query_sql` offers, with their columns and examples. Shown to assistants (tool
/// description, MCP resource) and in docs/mcp.md; a test checks it against the real columns.
pub const SCHEMA: &str = "\
traces(trace_id, start_ns, end_ns, duration_ns, span_count, error_count, root_name, service, is_run)
  one row per trace; ids are 32 lower-case hex; times are Unix nanoseconds; is_run: 1 for `devtrace run`
spans(trace_id, span_id, parent_span_id, name, service, kind, start_ns, end_ns, duration_ns, status, status_message, attributes, events, resource)
  one row per span, decoded on demand, newest traces first; status: ok|error|unset; kind: server|client|internal|producer|consumer|unspecified;
  attributes and resource are JSON objects, events a JSON array of {time_ns,name,attributes};
  filter on trace_id = '…' or name = '…' to read only the traces concerned
operations(name, service, kind, trace_id, start_ns)
  which traces contain a span of each operation, an operation being (name, service, kind) (an index: fast)
trace_services(trace_id, service, spans, errors)
  which services have spans in each trace, how many and how many failed (an index: fast)
logs(trace_id, span_id, time_ns, severity_number, severity, body, attributes, service, resource)
  one row per log record, latest stored first; trace_id null for logs outside traces; filter on trace_id = '…' to read one trace's
SQLite syntax and JSON functions; read-only.
Examples:
  SELECT name, count(*) n, avg(duration_ns)/1e6 avg_ms FROM spans WHERE trace_id = '4bf9…' GROUP BY name ORDER BY 3 DESC
  SELECT json_extract(attributes, '$.\"db.statement\"') stmt, count(*) FROM spans WHERE name = 'SELECT' GROUP BY 1
  SELECT root_name, count(*), avg(duration_ns)/1e9 s FROM traces WHERE error_count > 0 GROUP BY 1";

/// Bounds on one query.
#[derive(Clone, Copy, Debug)]
pub struct SqlLimits {
    /// Rows returned; the result says when there were more.
    pub max_rows: usize,
    /// Wall-clock time the query may run, waiting for a turn included.
    pub timeout: Duration,
    /// Bytes of text and numbers returned (blobs count by size only); rows past it are not
    /// returned and the result says there were more.
    pub max_result_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_rows: 100,
            timeout: Duration::from_secs(5),
            max_result_bytes: MAX_RESULT_BYTES,
        }
    }
}

/// The longest string or blob a query may make (`SQLITE_LIMIT_LENGTH`).
pub const MAX_VALUE_BYTES: usize = 10_000_000;
/// The heap one query's SQLite may hold ([`memory`]).
pub const MAX_QUERY_HEAP_BYTES: usize = 128 * 1024 * 1024;
/// The longest statement accepted (`SQLITE_LIMIT_SQL_LENGTH`).
pub const MAX_STATEMENT_BYTES: usize = 100_000;
/// Queries run at once in this process; more wait for a turn within their time limit.
pub const HEAVY_QUERIES: usize = 2;
/// The default cap on the bytes of a result.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;

/// One value of a result row.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Blobs are reported by size only.
    Blob {
        blob_bytes: usize,
    },
}

/// The rows a query returned.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// True when the query had more rows than [`SqlLimits::max_rows`], or than fit in
    /// [`SqlLimits::max_result_bytes`].
    pub more: bool,
    /// True when the rows stopped at [`SqlLimits::max_result_bytes`].
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub byte_limit_reached: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(
        "refused: {}. SQL here is read-only: write one SELECT (or WITH … SELECT) over the views traces, spans, operations, trace_services and logs",
        devtrace_model::recorded::escape(.0)
    )]
    Refused(String),
    /// The PostgreSQL store's refusal (its views are fewer: see `postgres::sql`).
    #[error(
        "refused: {}. SQL here is read-only: write one SELECT (or WITH … SELECT) over the views traces and operations",
        devtrace_model::recorded::escape(.0)
    )]
    RefusedOnPostgres(String),
    /// SQLite's own message, which may quote the statement: escaped.
    #[error("{}", devtrace_model::recorded::escape(.0))]
    Invalid(String),
    #[error(
        "the query ran past its time limit of {0:?} and was stopped: filter spans by trace_id = '…' or name = '…', or add a LIMIT"
    )]
    TimeLimit(Duration),
    #[error(
        "the query made a value larger than the limit of {0} bytes per string or blob and was stopped: select less (substr, length, LIMIT) or aggregate"
    )]
    ValueTooLarge(usize),
    #[error(
        "the query needed more than its memory limit of {} MB and was stopped: filter spans by trace_id = '…' or name = '…', select fewer or shorter values, or add a LIMIT",
        .0 / (1024 * 1024)
    )]
    MemoryLimit(usize),
    /// PostgreSQL: the statement spilled more to temporary files than its reader role may.
    #[error(
        "the query needed more temporary disk space than its limit of {0} (PostgreSQL's temp_file_limit for the SQL tool) and was stopped: filter by trace_id, name or start_ns, aggregate less, or add a LIMIT"
    )]
    TempFileLimit(&'static str),
    #[error(
        "{0} SQL queries are already running (the limit of queries at once) and none finished within this query's time limit: try again shortly"
    )]
    Busy(usize),
    #[error(
        "the statement is {0} bytes, past the limit of {MAX_STATEMENT_BYTES}: send a shorter statement"
    )]
    StatementTooLong(usize),
    #[error("this store does not support SQL queries")]
    Unsupported,
    /// The ClickHouse store's refusal (its views are PostgreSQL's, and no table functions).
    #[error(
        "refused: {}. SQL here is read-only: write one SELECT (or WITH … SELECT) over the views traces, operations and trace_services, without table functions, system tables or dictionaries",
        devtrace_model::recorded::escape(.0)
    )]
    RefusedOnClickHouse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one read-only statement against the database file `db`.
pub(crate) fn query(db: &Path, sql: &str, limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let started = Instant::now();
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(SqlError::StatementTooLong(sql.len()));
    }
    let keyword = first_keyword(sql);
    if !["SELECT", "WITH", "VALUES"].contains(&keyword.as_str()) {
        return Err(SqlError::Refused(if keyword.is_empty() {
            "an empty statement".into()
        } else {
            format!("{keyword} statements")
        }));
    }
    let deadline = started + limits.timeout;
    let _turn = Turn::wait(deadline)?;
    let installed = memory::install();
    if !installed {
        backstop_heap_limit();
    }
    // The heap cap covers the connection's whole life, the views and virtual tables included.
    let capped = memory::Capped::new(MAX_QUERY_HEAP_BYTES);
    let result = query_capped(db, sql, limits, deadline);
    let hit = capped.hit();
    drop(capped);
    match result {
        Err(SqlError::Invalid(_) | SqlError::Store(_)) if hit => {
            Err(SqlError::MemoryLimit(MAX_QUERY_HEAP_BYTES))
        }
        other => other,
    }
}

fn query_capped(
    db: &Path,
    sql: &str,
    limits: SqlLimits,
    deadline: Instant,
) -> Result<SqlRows, SqlError> {
    let mut conn = open(db)?;
    // The storage's names, to tell its tables from a CTE when SQLite names neither a database
    // nor a column (`count(*)`).
    let storage: Vec<String> = conn
        .prepare("SELECT lower(name) FROM main.sqlite_master")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(StoreError::from)?;
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = Arc::clone(&refusal);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        match allowed(&ctx, &storage) {
            Ok(()) => Authorization::Allow,
            Err(reason) => {
                let mut slot = seen.lock().expect("refusal slot poisoned");
                slot.get_or_insert(reason);
                Authorization::Deny
            }
        }
    }))
    .map_err(StoreError::from)?;
    // Checked every thousand virtual-machine steps: an interrupt lands within milliseconds.
    conn.progress_handler(1_000, Some(move || Instant::now() >= deadline))
        .map_err(StoreError::from)?;
    let result = run(&conn, sql, limits, deadline);
    let refused = refusal.lock().expect("refusal slot poisoned").take();
    match (result, refused) {
        (Err(_), Some(reason)) => Err(SqlError::Refused(reason)),
        (Err(error), None) => Err(classify(error, limits)),
        (Ok(rows), _) => Ok(rows),
    }
}

fn classify(error: rusqlite::Error, limits: SqlLimits) -> SqlError {
    match &error {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            SqlError::TimeLimit(limits.timeout)
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::TooBig => {
            SqlError::ValueTooLarge(MAX_VALUE_BYTES)
        }
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::OutOfMemory => {
            SqlError::MemoryLimit(MAX_QUERY_HEAP_BYTES)
        }
        rusqlite::Error::SqliteFailure(e, message)
            if e.code == rusqlite::ErrorCode::ReadOnly
                || e.code == rusqlite::ErrorCode::AuthorizationForStatementDenied =>
        {
            SqlError::Refused(message.clone().unwrap_or_else(|| e.to_string()))
        }
        rusqlite::Error::MultipleStatement => {
            SqlError::Refused("several statements were given; send one statement per call".into())
        }
        rusqlite::Error::SqliteFailure(_, Some(message)) => SqlError::Invalid(format!(
            "SQL error: {message}. The views are traces, spans, operations, trace_services and logs (see the schema)"
        )),
        // Its own text would repeat the whole statement (which the caller has): say where.
        rusqlite::Error::SqlInputError { msg, offset, .. } => SqlError::Invalid(format!(
            "SQL error: {msg}, at byte {offset} of the statement"
        )),
        other => SqlError::Invalid(format!("SQL error: {other}")),
    }
}

fn run(
    conn: &Connection,
    sql: &str,
    limits: SqlLimits,
    deadline: Instant,
) -> rusqlite::Result<SqlRows> {
    let mut statement = conn.prepare(sql)?;
    if !statement.readonly() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("the statement would change the store".into()),
        ));
    }
    let columns: Vec<String> = statement.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    let mut more = false;
    let mut bytes = 0usize;
    let mut byte_limit_reached = false;
    while let Some(row) = rows.next()? {
        if out.len() == limits.max_rows {
            more = true;
            break;
        }
        if Instant::now() >= deadline {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_INTERRUPT),
                None,
            ));
        }
        let size: usize = (0..width)
            .map(|i| match row.get_ref(i) {
                Ok(ValueRef::Text(t)) => t.len() + 2,
                _ => 8,
            })
            .sum();
        if bytes + size > limits.max_result_bytes {
            more = true;
            byte_limit_reached = true;
            break;
        }
        bytes += size;
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            values.push(match row.get_ref(i)? {
                ValueRef::Null => SqlValue::Null,
                ValueRef::Integer(v) => SqlValue::Integer(v),
                ValueRef::Real(v) => SqlValue::Real(v),
                ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => SqlValue::Blob {
                    blob_bytes: b.len(),
                },
            });
        }
        out.push(values);
    }
    Ok(SqlRows {
        columns,
        rows: out,
        more,
        byte_limit_reached,
    })
}

/// Queries running now, and the wake-up of those waiting for a turn.
static RUNNING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// One of the [`HEAVY_QUERIES`] turns, held while a query runs.
struct Turn;

impl Turn {
    fn wait(deadline: Instant) -> Result<Self, SqlError> {
        let (count, freed) = &RUNNING;
        let mut running = count.lock().unwrap_or_else(|p| p.into_inner());
        while *running >= HEAVY_QUERIES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SqlError::Busy(*running));
            }
            running = freed
                .wait_timeout(running, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *running += 1;
        Ok(Turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (count, freed) = &RUNNING;
        *count.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        freed.notify_one();
    }
}

/// When the counting allocator could not be installed (SQLite was initialised before it), a
/// process-wide hard heap limit is the cap: it bounds [`HEAVY_QUERIES`] queries at their caps
/// with room for the writer.
fn backstop_heap_limit() {
    static SET: std::sync::Once = std::sync::Once::new();
    SET.call_once(|| {
        let limit = (HEAVY_QUERIES + 2) * MAX_QUERY_HEAP_BYTES;
        // SAFETY: a plain setter; SQLite reads it at each allocation.
        unsafe { rusqlite::ffi::sqlite3_hard_heap_limit64(limit as i64) };
    });
}

thread_local! {
    /// Non-zero while a virtual table reads the storage tables for a query on this thread.
    static INTERNAL: Cell<u32> = const { Cell::new(0) };
}

/// Marks the virtual tables' own reads of the storage tables (made on the query's connection,
/// so they pass through its authorizer) while it lives.
pub(super) struct Internal;

impl Internal {
    pub(super) fn enter() -> Self {
        INTERNAL.with(|n| n.set(n.get() + 1));
        Internal
    }
}

impl Drop for Internal {
    fn drop(&mut self) {
        INTERNAL.with(|n| n.set(n.get() - 1));
    }
}

/// The views a query may name, and the table-valued functions it may call.
const READABLE: &[&str] = &[
    "traces",
    "spans",
    "operations",
    "trace_services",
    "logs",
    "json_each",
    "json_tree",
];
/// Functions that reach outside the query: refused.
const REFUSED_FUNCTIONS: &[&str] = &[
    "load_extension",
    "fts3_tokenizer",
    "readfile",
    "writefile",
    "edit",
    "sqlite_compileoption_get",
    "sqlite_compileoption_used",
];

/// The statement's first word, upper-cased, after whitespace and comments.
pub(crate) fn first_keyword(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(line) = rest.strip_prefix("--") {
            rest = line.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(block) = rest.strip_prefix("/*") {
            rest = block.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// What the authorizer lets through: reading the documented views, functions but those that
/// reach outside, recursive CTEs.
fn allowed(ctx: &AuthContext<'_>, storage: &[String]) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select | AuthAction::Recursive => Ok(()),
        AuthAction::Read {
            table_name,
            column_name,
        } => {
            let internal = INTERNAL.with(Cell::get) > 0;
            // SQLite asks once more, with no column and no view named, for a table a flattened
            // view joins but reads no column of, and names no database when a query reads no
            // column of a table (`count(*)`): only the views' own tables, and CTEs, may be so
            // read, and no value of theirs is revealed.
            let lower = table_name.to_ascii_lowercase();
            let no_column = column_name.is_empty()
                && (ctx.database_name.is_none() || ctx.database_name == Some("main"));
            let joined_by_view = no_column
                && ([
                    "traces",
                    "trace_operations",
                    "operations",
                    "services",
                    "trace_services",
                ]
                .contains(&lower.as_str())
                    || !(storage.contains(&lower)
                        || lower.starts_with("sqlite_")
                        || lower.starts_with("pragma_")
                        || lower == "dbstat"));
            // The documented views read the storage tables on the query's behalf.
            let through_view = ctx
                .accessor
                .is_some_and(|view| ["traces", "operations", "trace_services"].contains(&view))
                && ctx.database_name == Some("main");
            let view = READABLE.contains(&lower.as_str())
                && (ctx.database_name != Some("main")
                    || !["traces", "operations", "trace_services"].contains(&lower.as_str()));
            // A CTE's own rows (in no database).
            let cte = ctx.database_name.is_none() && !column_name.is_empty();
            if internal || through_view || view || joined_by_view || cte {
                Ok(())
            } else {
                Err(format!(
                    "reading {table_name} (only the documented views can be read)"
                ))
            }
        }
        AuthAction::Function { function_name } => {
            if REFUSED_FUNCTIONS.contains(&function_name.to_ascii_lowercase().as_str()) {
                Err(format!("the function {function_name}"))
            } else {
                Ok(())
            }
        }
        AuthAction::Insert { table_name } => Err(format!("INSERT into {table_name}")),
        AuthAction::Update { table_name, .. } => Err(format!("UPDATE of {table_name}")),
        AuthAction::Delete { table_name } => Err(format!("DELETE from {table_name}")),
        AuthAction::Attach { .. } => Err("ATTACH".into()),
        AuthAction::Detach { .. } => Err("DETACH".into()),
        AuthAction::Pragma { pragma_name, .. } => Err(format!("PRAGMA {pragma_name}")),
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => {
            Err("transaction control".into())
        }
        other => Err(format!("{other:?}")
            .split([' ', '{'])
            .next()
            .unwrap_or("that statement")
            .to_owned()),
    }
}

/// A read-only connection with the views and the `spans` module, before the authorizer.
fn open(db: &Path) -> Result<Connection, SqlError> {
    if !db.is_file() {
        return Err(StoreError::Missing(db.parent().unwrap_or(db).display().to_string()).into());
    }
    memory::install();
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).map_err(StoreError::from)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(StoreError::from)?;
    // SAFETY: plain setters on a connection this function owns.
    unsafe {
        use rusqlite::ffi::{SQLITE_LIMIT_LENGTH, SQLITE_LIMIT_SQL_LENGTH, sqlite3_limit};
        sqlite3_limit(conn.handle(), SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES as i32);
        sqlite3_limit(
            conn.handle(),
            SQLITE_LIMIT_SQL_LENGTH,
            MAX_STATEMENT_BYTES as i32,
        );
    }
    conn.create_module(c"spans", &spans::SPANS_MODULE, None::<()>)
        .map_err(StoreError::from)?;
    conn.create_module(c"logs", &logs::LOGS_MODULE, None::<()>)
        .map_err(StoreError::from)?;
    conn.execute_batch(
        "CREATE TEMP VIEW traces AS
             SELECT lower(hex(trace_id)) AS trace_id, start_ns, end_ns, coalesce(root_end_ns, end_ns) - coalesce(root_start_ns, start_ns) AS duration_ns,
                    span_count, error_count, root_name, root_service AS service, is_run
             FROM main.traces;
         CREATE TEMP VIEW operations AS
             SELECT o.name AS name, s.name AS service,
                    CASE o.kind WHEN 1 THEN 'internal' WHEN 2 THEN 'server' WHEN 3 THEN 'client'
                        WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' ELSE 'unspecified' END AS kind,
                    lower(hex(t.trace_id)) AS trace_id, t.start_ns AS start_ns
             FROM main.trace_operations x
             JOIN main.operations o ON o.id = x.operation
             JOIN main.services s ON s.id = o.service
             JOIN main.traces t ON t.id = x.trace;
         CREATE TEMP VIEW trace_services AS
             SELECT lower(hex(t.trace_id)) AS trace_id, s.name AS service, x.spans AS spans,
                    x.errors AS errors
             FROM main.trace_services x
             JOIN main.services s ON s.id = x.service
             JOIN main.traces t ON t.id = x.trace;
         PRAGMA query_only = ON;",
    )
    .map_err(StoreError::from)?;
    Ok(conn)
}

/// What a virtual table's `connect` makes: its declared schema (one column per name) and a
/// non-owning handle on the connection it belongs to, for reading chunks in the same snapshot
/// (and under the same interrupt and time limit) as the outer query.
fn connect_virtual_table(
    db: &mut rusqlite::vtab::VTabConnection,
    columns: &[&str],
) -> rusqlite::Result<(std::borrow::Cow<'static, std::ffi::CStr>, Connection)> {
    db.config(rusqlite::vtab::VTabConfig::DirectOnly)?;
    // SAFETY: the handle outlives the virtual table (SQLite disconnects tables before closing),
    // and `from_handle` does not close it on drop.
    let conn = unsafe { Connection::from_handle(db.handle())? };
    let schema = format!("CREATE TABLE x({})", columns.join(", "));
    let schema = std::ffi::CString::new(schema).expect("no NUL in column names");
    Ok((std::borrow::Cow::Owned(schema), conn))
}

fn parse_hex_id(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..16)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Attribute values as natural JSON, as `devtrace show --json` writes them.
fn attributes_json(attributes: &[KeyValue]) -> serde_json::Value {
    serde_json::Value::Object(
        attributes
            .iter()
            .map(|kv| (kv.key.clone(), value_json(&kv.value)))
            .collect(),
    )
}

fn value_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        AnyValue::Bytes(b) => Value::String(hex(b)),
        AnyValue::Array(items) => Value::Array(items.iter().map(value_json).collect()),
        AnyValue::KvList(kvs) => attributes_json(kvs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{batch, span};
    use crate::sqlite::{SqliteStore, SqliteWriter};
    use crate::{Store, StoreWriter, prepare_logs, prepare_spans};
    use devtrace_model::{LogBatch, LogRecord, Resource, Scope, SpanId, StatusCode, TraceId};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SqliteWriter::open(dir.path()).unwrap();
        let mut failing = span(2, 2, Some(1), "SELECT", 20, 70);
        failing.status.code = StatusCode::Error;
        failing
            .attributes
            .push(KeyValue::new("db.statement", "SELECT 1"));
        writer
            .write(&[
                prepare_spans(batch(
                    "api",
                    vec![
                        span(1, 1, None, "GET /a", 0, 100),
                        span(1, 2, Some(1), "SELECT", 10, 30),
                    ],
                )),
                prepare_spans(batch(
                    "api",
                    vec![span(2, 1, None, "GET /b", 10, 200), failing],
                )),
            ])
            .unwrap();
        let log = |time: u64, trace: Option<u8>, body: AnyValue| LogRecord {
            time_unix_nano: time,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body,
            attributes: vec![KeyValue::new("code", 7i64)],
            trace_id: trace.map(|t| TraceId([t; 16])),
            span_id: trace.map(|_| SpanId([2; 8])),
            ..Default::default()
        };
        let service = Resource {
            attributes: vec![KeyValue::new("service.name", "api")],
            ..Default::default()
        };
        writer
            .write(&[
                prepare_logs(LogBatch {
                    resources: vec![service.clone()],
                    scopes: vec![Scope::default()],
                    logs: vec![
                        log(40, Some(2), AnyValue::from("query failed")),
                        log(5, None, AnyValue::from("starting")),
                    ],
                }),
                prepare_logs(LogBatch {
                    resources: vec![service],
                    scopes: vec![Scope::default()],
                    logs: vec![log(50, Some(2), AnyValue::Int(42))],
                }),
            ])
            .unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        (dir, store)
    }

    fn rows(store: &SqliteStore, sql: &str) -> SqlRows {
        store
            .query_sql(sql, SqlLimits::default())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn text(value: &SqlValue) -> &str {
        match value {
            SqlValue::Text(t) => t,
            other => panic!("not text: {other:?}"),
        }
    }

    #[test]
    fn the_views_read_traces_spans_and_operations() {
        let (_dir, store) = store();
        let traces = rows(
            &store,
            "SELECT trace_id, duration_ns, error_count, service FROM traces ORDER BY start_ns",
        );
        assert_eq!(traces.rows.len(), 2);
        assert_eq!(text(&traces.rows[0][0]), "01".repeat(16));
        assert_eq!(traces.rows[1][1], SqlValue::Integer(190));
        assert_eq!(traces.rows[1][2], SqlValue::Integer(1));

        let one = rows(
            &store,
            &format!(
                "SELECT name, duration_ns, status FROM spans WHERE trace_id = '{}' ORDER BY start_ns",
                "02".repeat(16)
            ),
        );
        let names: Vec<&str> = one.rows.iter().map(|r| text(&r[0])).collect();
        assert_eq!(names, ["GET /b", "SELECT"]);
        assert_eq!(one.rows[1][1], SqlValue::Integer(50));
        assert_eq!(text(&one.rows[1][2]), "error");

        let by_name = rows(
            &store,
            "SELECT trace_id, json_extract(attributes, '$.\"db.statement\"') FROM spans WHERE name = 'SELECT' ORDER BY start_ns",
        );
        assert_eq!(by_name.rows.len(), 2);
        assert_eq!(by_name.rows[0][1], SqlValue::Null);
        assert_eq!(text(&by_name.rows[1][1]), "SELECT 1");

        let all = rows(&store, "SELECT count(*), sum(status = 'error') FROM spans");
        assert_eq!(all.rows[0], [SqlValue::Integer(4), SqlValue::Integer(1)]);
        let resource = rows(
            &store,
            "SELECT json_extract(resource, '$.\"service.name\"') FROM spans LIMIT 1",
        );
        assert_eq!(text(&resource.rows[0][0]), "api");

        let ops = rows(
            &store,
            "SELECT name, service, kind, count(*) FROM operations GROUP BY 1, 2, 3 ORDER BY name",
        );
        assert_eq!(ops.rows.len(), 3);
        assert_eq!(
            ops.rows[2],
            [
                SqlValue::Text("SELECT".into()),
                SqlValue::Text("api".into()),
                SqlValue::Text("server".into()),
                SqlValue::Integer(2)
            ]
        );
        let services = rows(
            &store,
            "SELECT service, sum(spans), sum(errors), count(*) FROM trace_services GROUP BY 1",
        );
        assert_eq!(
            services.rows,
            [[
                SqlValue::Text("api".into()),
                SqlValue::Integer(4),
                SqlValue::Integer(1),
                SqlValue::Integer(2)
            ]]
        );
    }

    #[test]
    fn the_logs_view_reads_log_records_with_and_without_a_trace() {
        let (_dir, store) = store();
        let trace = "02".repeat(16);
        let all = rows(
            &store,
            "SELECT trace_id, span_id, time_ns, severity, body, service, json_extract(attributes, '$.code') FROM logs",
        );
        // The latest write first (a non-text body as JSON), then the earlier one's records.
        assert_eq!(all.rows.len(), 3);
        assert_eq!(all.rows[0][4], SqlValue::Text("42".into()));
        let row = |body: &str| {
            all.rows
                .iter()
                .find(|r| r[4] == SqlValue::Text(body.into()))
                .unwrap()
        };
        let failed = row("query failed");
        assert_eq!(text(&failed[0]), trace);
        assert_eq!(text(&failed[1]), "02".repeat(8));
        assert_eq!(failed[2], SqlValue::Integer(40));
        assert_eq!(text(&failed[3]), "ERROR");
        assert_eq!(text(&failed[5]), "api");
        assert_eq!(failed[6], SqlValue::Integer(7));
        assert_eq!(
            row("starting")[0],
            SqlValue::Null,
            "a log outside any trace"
        );

        let one = rows(
            &store,
            &format!("SELECT body FROM logs WHERE trace_id = '{trace}' ORDER BY time_ns"),
        );
        assert_eq!(
            one.rows,
            [
                vec![SqlValue::Text("query failed".into())],
                vec![SqlValue::Text("42".into())]
            ]
        );
        let none = rows(
            &store,
            "SELECT count(*) FROM logs WHERE trace_id = 'nothex'",
        );
        assert_eq!(none.rows[0][0], SqlValue::Integer(0));
        // Joined with spans: the failing query's log line.
        let joined = rows(
            &store,
            &format!(
                "SELECT s.name, l.body FROM logs l JOIN spans s ON s.trace_id = l.trace_id AND s.span_id = l.span_id WHERE l.trace_id = '{trace}' AND s.trace_id = '{trace}' ORDER BY l.time_ns LIMIT 1"
            ),
        );
        assert_eq!(
            joined.rows[0],
            [
                SqlValue::Text("SELECT".into()),
                SqlValue::Text("query failed".into())
            ]
        );
    }

    #[test]
    fn the_schema_names_every_column_of_every_view() {
        let (_dir, store) = store();
        for line in SCHEMA
            .lines()
            .filter(|l| !l.starts_with(' ') && l.contains('('))
        {
            let (view, columns) = line.split_once('(').unwrap();
            let documented: Vec<&str> = columns.trim_end_matches(')').split(", ").collect();
            let actual = rows(&store, &format!("SELECT * FROM {view} LIMIT 0")).columns;
            assert_eq!(actual, documented, "view {view}");
        }
    }

    #[test]
    fn rows_beyond_the_limit_are_not_returned_and_the_result_says_so() {
        let (_dir, store) = store();
        let limited = store
            .query_sql(
                "SELECT * FROM spans",
                SqlLimits {
                    max_rows: 3,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!((limited.rows.len(), limited.more), (3, true));
    }

    #[test]
    fn writes_are_refused_with_the_reason_and_change_nothing() {
        let (dir, store) = store();
        let db = crate::sqlite::database_path(dir.path());
        let before = std::fs::read(&db).unwrap();
        for (sql, reason) in [
            ("DELETE FROM traces", "DELETE"),
            (
                "WITH x AS (SELECT 1) DELETE FROM main.traces",
                "DELETE from traces",
            ),
            (
                "/* hi */ -- there\n insert into main.traces select * from main.traces",
                "INSERT",
            ),
            ("DELETE FROM main.traces", "DELETE"),
            ("INSERT INTO main.counters VALUES ('x', 1)", "INSERT"),
            ("UPDATE main.traces SET root_name = 'x'", "UPDATE"),
            ("DROP TABLE main.span_chunks", "DROP"),
            ("CREATE TABLE t (x)", "CREATE"),
            ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
            ("PRAGMA query_only = OFF", "PRAGMA"),
            ("PRAGMA user_version = 99", "PRAGMA"),
            ("BEGIN IMMEDIATE", "BEGIN"),
            ("VACUUM", "VACUUM"),
            ("", "empty"),
            ("SELECT 1; DELETE FROM main.traces", "DELETE"),
            ("SELECT 1; SELECT 2", "one statement per call"),
        ] {
            let error = store.query_sql(sql, SqlLimits::default()).unwrap_err();
            let message = error.to_string();
            assert!(matches!(error, SqlError::Refused(_)), "{sql}: {error:?}");
            assert!(
                message.contains(reason) && message.contains("read-only"),
                "{sql}: {message}"
            );
        }
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "the database file is unchanged"
        );
        assert_eq!(
            rows(&store, "SELECT count(*) FROM traces").rows[0][0],
            SqlValue::Integer(2)
        );
    }

    #[test]
    fn a_runaway_query_stops_at_its_time_limit() {
        let (_dir, store) = store();
        let error = store
            .query_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
                SqlLimits {
                    max_rows: 10,
                    timeout: Duration::from_millis(200),
                    ..SqlLimits::default()
                },
            )
            .unwrap_err();
        assert!(matches!(error, SqlError::TimeLimit(_)), "{error:?}");
        assert!(error.to_string().contains("LIMIT"));
    }

    #[test]
    fn mistakes_name_the_views() {
        let (_dir, store) = store();
        let error = store
            .query_sql("SELECT * FROM nope", SqlLimits::default())
            .unwrap_err();
        assert!(matches!(error, SqlError::Invalid(_)), "{error:?}");
        assert!(
            error.to_string().contains("no such table: nope")
                && error
                    .to_string()
                    .contains("traces, spans, operations, trace_services and logs"),
            "{error}"
        );
    }

    /// The attack queries of issue 15: each stops at the limit it runs into, with an error
    /// naming it. The time limit is set far away so that only the size and memory limits can
    /// stop them (how fast they stop is bench/sql-attacks.py's: a loaded machine must not turn
    /// a size limit into a time limit here).
    #[test]
    fn hostile_queries_stop_at_a_named_limit() {
        let (_dir, store) = store();
        assert!(memory::install(), "the counting allocator is installed");
        let limits = SqlLimits {
            timeout: Duration::from_secs(120),
            ..SqlLimits::default()
        };
        for (sql, limit) in [
            (
                "SELECT length(replace(hex(zeroblob(240000000)),'0','00'))",
                "bytes per string or blob",
            ),
            (
                "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) SELECT length(s) FROM r ORDER BY 1 DESC LIMIT 1",
                "bytes per string or blob",
            ),
            (
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) SELECT length(group_concat(hex(randomblob(64)))) FROM n",
                "bytes per string or blob",
            ),
            (
                &format!(
                    "SELECT {}",
                    (0..30)
                        .map(|_| "randomblob(9000000)")
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "memory limit of 128 MB",
            ),
        ] {
            let error = store.query_sql(sql, limits).unwrap_err();
            assert!(
                matches!(error, SqlError::ValueTooLarge(_) | SqlError::MemoryLimit(_)),
                "{sql}: {error:?}"
            );
            assert!(error.to_string().contains(limit), "{sql}: {error}");
        }
    }

    #[test]
    fn two_hostile_queries_at_once_both_stop() {
        let (dir, _store) = store();
        let path = dir.path().to_owned();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let store = SqliteStore::open(&path).unwrap();
                    store
                        .query_sql(
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 40) SELECT randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000), randomblob(9000000) FROM n",
                            SqlLimits::default(),
                        )
                        .unwrap_err()
                })
            })
            .collect();
        for thread in threads {
            let error = thread.join().unwrap();
            assert!(
                matches!(error, SqlError::MemoryLimit(_) | SqlError::Busy(_)),
                "{error:?}"
            );
        }
    }

    #[test]
    fn only_one_query_per_turn_beyond_the_limit_waits_and_then_says_busy() {
        let (_dir, store) = store();
        let turns: Vec<Turn> = (0..HEAVY_QUERIES)
            .map(|_| Turn::wait(Instant::now() + Duration::from_secs(60)).unwrap())
            .collect();
        let error = store
            .query_sql(
                "SELECT 1",
                SqlLimits {
                    timeout: Duration::from_millis(100),
                    ..SqlLimits::default()
                },
            )
            .unwrap_err();
        assert!(matches!(error, SqlError::Busy(_)), "{error:?}");
        assert!(error.to_string().contains("queries at once"), "{error}");
        drop(turns);
        assert_eq!(rows(&store, "SELECT 1").rows[0][0], SqlValue::Integer(1));
    }

    #[test]
    fn results_stop_at_the_byte_limit_and_say_so() {
        let (_dir, store) = store();
        let limited = store
            .query_sql(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 50) SELECT hex(randomblob(500)) FROM n",
                SqlLimits {
                    max_result_bytes: 10_000,
                    ..SqlLimits::default()
                },
            )
            .unwrap();
        assert_eq!(limited.rows.len(), 9);
        assert!(limited.more && limited.byte_limit_reached);
    }

    #[test]
    fn only_the_documented_views_can_be_read() {
        let (_dir, store) = store();
        for (sql, what) in [
            ("SELECT * FROM sqlite_master", "sqlite_master"),
            ("SELECT * FROM sqlite_schema", "sqlite_master"),
            ("SELECT * FROM sqlite_temp_master", "sqlite_temp_master"),
            ("SELECT * FROM main.span_chunks", "span_chunks"),
            ("SELECT * FROM span_chunks", "span_chunks"),
            ("SELECT * FROM main.traces", "reading traces"),
            (
                "SELECT trace FROM main.trace_operations",
                "trace_operations",
            ),
            ("SELECT count(*) FROM sessions", "sessions"),
            ("SELECT count(*) FROM blobs", "blobs"),
            ("SELECT count(*) FROM sqlite_master", "sqlite_master"),
            ("SELECT count(*) FROM dbstat", "dbstat"),
            ("SELECT count(*) FROM main.span_chunks", "span_chunks"),
            ("SELECT * FROM dbstat", "dbstat"),
            (
                "SELECT * FROM pragma_table_info('traces')",
                "pragma_table_info",
            ),
            (
                "SELECT name FROM traces WHERE 0 UNION SELECT name FROM sqlite_master",
                "sqlite_master",
            ),
            (
                "WITH x AS (SELECT * FROM span_chunks) SELECT count(*) FROM x",
                "span_chunks",
            ),
            ("SELECT load_extension('/tmp/x.so')", "load_extension"),
            ("SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
        ] {
            let error = store.query_sql(sql, SqlLimits::default()).unwrap_err();
            assert!(matches!(error, SqlError::Refused(_)), "{sql}: {error:?}");
            assert!(error.to_string().contains(what), "{sql}: {error}");
        }
        // The views, joins of them, CTEs and JSON table functions still work.
        for sql in [
            "SELECT count(*) FROM traces t JOIN trace_services s USING (trace_id)",
            "SELECT count(*) FROM temp.traces",
            "WITH x AS (SELECT name FROM spans) SELECT count(*) FROM x",
            "SELECT count(*) FROM spans s, json_each(s.attributes)",
            "SELECT count(*) FROM operations o JOIN logs l ON l.trace_id = o.trace_id",
        ] {
            rows(&store, sql);
        }
    }

    #[test]
    fn a_statement_past_the_length_limit_is_refused_without_being_echoed() {
        let (_dir, store) = store();
        let sql = format!("SELECT '{}'", "x".repeat(1_000_000));
        let error = store.query_sql(&sql, SqlLimits::default()).unwrap_err();
        assert!(matches!(error, SqlError::StatementTooLong(_)), "{error:?}");
        assert!(error.to_string().len() < 200, "{error}");
    }
}
