//! Read-only SQL over documented views of the store: the escape hatch for questions the
//! typed queries do not answer (MCP `query_sql`).
//!
//! Every query runs on a fresh connection that cannot write, three times over: the file is
//! opened `SQLITE_OPEN_READ_ONLY`, `PRAGMA query_only` is on, and an authorizer refuses at
//! prepare time anything but reading (no INSERT/UPDATE/DELETE, DDL, ATTACH, PRAGMA or
//! transactions), naming what it refused. A progress handler stops a query at its time limit
//! and rows beyond the row limit are not read.
//!
//! The views ([`SCHEMA`]) hide the storage layout: `traces` and `operations` are plain views
//! over the summary and operation-index tables; `spans` is a virtual table that decodes the
//! compressed span chunks on demand, newest traces first, reading only the traces a
//! `trace_id = …` or `name = …` constraint selects when the query has one.

use crate::StoreError;
use crate::chunk;
use devtrace_model::{AnyValue, KeyValue, SpanBatch};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::types::ValueRef;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConfig, VTabConnection,
    VTabCursor,
};
use rusqlite::{Connection, OpenFlags, params};
use serde::Serialize;
use std::borrow::Cow;
use std::ffi::{CStr, c_int};
use std::path::Path;
use std::sync::{Arc, Mutex};
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
operations(name, trace_id, start_ns)
  which traces contain a span of each name (an index: fast)
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
    /// Wall-clock time the query may run.
    pub timeout: Duration,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_rows: 100,
            timeout: Duration::from_secs(5),
        }
    }
}

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
    /// True when the query had more rows than [`SqlLimits::max_rows`].
    pub more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    #[error(
        "refused: {0}. query_sql is read-only: write one SELECT (or WITH … SELECT) over the views traces, spans and operations"
    )]
    Refused(String),
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the query ran past its time limit of {0:?} and was stopped: filter spans by trace_id = '…' or name = '…', or add a LIMIT"
    )]
    TimeLimit(Duration),
    #[error("this store does not support SQL queries")]
    Unsupported,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs one read-only statement against the database file `db`.
pub(crate) fn query(db: &Path, sql: &str, limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let keyword = first_keyword(sql);
    if !["SELECT", "WITH", "VALUES"].contains(&keyword.as_str()) {
        return Err(SqlError::Refused(if keyword.is_empty() {
            "an empty statement".into()
        } else {
            format!("{keyword} statements")
        }));
    }
    let mut conn = open(db)?;
    let refusal: Arc<Mutex<Option<String>>> = Arc::default();
    let seen = Arc::clone(&refusal);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match allowed(&ctx) {
        Ok(()) => Authorization::Allow,
        Err(reason) => {
            let mut slot = seen.lock().expect("refusal slot poisoned");
            slot.get_or_insert(reason);
            Authorization::Deny
        }
    }))
    .map_err(StoreError::from)?;
    let deadline = Instant::now() + limits.timeout;
    conn.progress_handler(10_000, Some(move || Instant::now() >= deadline))
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
            "SQL error: {message}. The views are traces, spans and operations (see the schema)"
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
    })
}

/// The statement's first word, upper-cased, after whitespace and comments.
fn first_keyword(sql: &str) -> String {
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

/// What the authorizer lets through: reading, functions, recursive CTEs.
fn allowed(ctx: &AuthContext<'_>) -> Result<(), String> {
    match ctx.action {
        AuthAction::Select
        | AuthAction::Read { .. }
        | AuthAction::Function { .. }
        | AuthAction::Recursive => Ok(()),
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
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(db, flags).map_err(StoreError::from)?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(StoreError::from)?;
    conn.create_module(c"spans", &SPANS_MODULE, None::<()>)
        .map_err(StoreError::from)?;
    conn.execute_batch(
        "CREATE TEMP VIEW traces AS
             SELECT lower(hex(trace_id)) AS trace_id, start_ns, end_ns, end_ns - start_ns AS duration_ns,
                    span_count, error_count, root_name, root_service AS service, is_run
             FROM main.traces;
         CREATE TEMP VIEW operations AS
             SELECT n.name AS name, lower(hex(t.trace_id)) AS trace_id, t.start_ns AS start_ns
             FROM main.trace_operations o
             JOIN main.span_names n ON n.id = o.name
             JOIN main.traces t ON t.id = o.trace;
         PRAGMA query_only = ON;",
    )
    .map_err(StoreError::from)?;
    Ok(conn)
}

// --- the `spans` virtual table ----------------------------------------------------------------

const SPANS_MODULE: Module<'static, SpansTable> = Module::eponymous_only_module();

const COLUMNS: &[&str] = &[
    "trace_id",
    "span_id",
    "parent_span_id",
    "name",
    "service",
    "kind",
    "start_ns",
    "end_ns",
    "duration_ns",
    "status",
    "status_message",
    "attributes",
    "events",
    "resource",
];
const COL_TRACE_ID: c_int = 0;
const COL_NAME: c_int = 3;

/// Query plans: which constraint the cursor uses to pick traces.
const PLAN_SCAN: c_int = 0;
const PLAN_TRACE: c_int = 1;
const PLAN_NAME: c_int = 2;

/// Traces read from the summary table at a time while scanning.
const TRACE_PAGE: i64 = 256;

#[repr(C)]
struct SpansTable {
    base: rusqlite::vtab::sqlite3_vtab,
    /// A non-owning handle on the connection the table belongs to, for reading chunks in the
    /// same snapshot (and under the same interrupt and time limit) as the outer query.
    conn: Connection,
}

unsafe impl<'vtab> VTab<'vtab> for SpansTable {
    type Aux = ();
    type Cursor = SpansCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        _aux: Option<&()>,
        _module: &[u8],
        _database: &[u8],
        _table: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        db.config(VTabConfig::DirectOnly)?;
        // SAFETY: the handle outlives the virtual table (SQLite disconnects tables before
        // closing), and `from_handle` does not close it on drop.
        let conn = unsafe { Connection::from_handle(db.handle())? };
        let schema = format!("CREATE TABLE x({})", COLUMNS.join(", "));
        let schema = std::ffi::CString::new(schema).expect("no NUL in column names");
        Ok((
            Cow::Owned(schema),
            Self {
                base: Default::default(),
                conn,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let mut by_trace = None;
        let mut by_name = None;
        for (i, constraint) in info.constraints().enumerate() {
            if !constraint.is_usable()
                || constraint.operator() != IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
            {
                continue;
            }
            match constraint.column() {
                COL_TRACE_ID => by_trace = Some(i),
                COL_NAME => by_name = Some(i),
                _ => {}
            }
        }
        let (plan, constraint, cost) = match (by_trace, by_name) {
            (Some(i), _) => (PLAN_TRACE, Some(i), 10.0),
            (None, Some(i)) => (PLAN_NAME, Some(i), 1_000.0),
            (None, None) => (PLAN_SCAN, None, 1e9),
        };
        if let Some(i) = constraint {
            // SQLite still checks the constraint on every row: the plan only narrows the traces.
            info.constraint_usage(i).set_argv_index(1);
        }
        info.set_idx_num(plan);
        info.set_estimated_cost(cost);
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<SpansCursor<'vtab>> {
        Ok(SpansCursor {
            base: Default::default(),
            table: self,
            traces: Vec::new(),
            next_trace: 0,
            page_after: None,
            paging: false,
            current: None,
            span: 0,
            row: 0,
        })
    }
}

/// The spans of one decoded trace.
struct LoadedTrace {
    trace_id: String,
    batch: SpanBatch,
}

#[repr(C)]
struct SpansCursor<'vtab> {
    base: rusqlite::vtab::sqlite3_vtab_cursor,
    table: &'vtab SpansTable,
    /// Trace keys (row id, trace id) still to read, in order.
    traces: Vec<(i64, Vec<u8>)>,
    next_trace: usize,
    /// The last (start, key) read while scanning the summary table page by page.
    page_after: Option<(i64, i64)>,
    paging: bool,
    current: Option<LoadedTrace>,
    span: usize,
    row: i64,
}

impl SpansCursor<'_> {
    /// Moves to the next trace that has spans; `current` is `None` at the end.
    fn load_next_trace(&mut self) -> rusqlite::Result<()> {
        loop {
            if self.next_trace == self.traces.len() && (!self.paging || !self.next_page()?) {
                self.current = None;
                return Ok(());
            }
            let (key, id) = self.traces[self.next_trace].clone();
            self.next_trace += 1;
            let mut statement = self.table.conn.prepare_cached(
                "SELECT data FROM main.span_chunks WHERE trace = ?1 ORDER BY rowid",
            )?;
            let mut rows = statement.query(params![key])?;
            let mut batch = SpanBatch::default();
            while let Some(row) = rows.next()? {
                let decoded = chunk::decode_spans(row.get_ref(0)?.as_blob()?)
                    .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))?;
                batch.extend(decoded);
            }
            if !batch.spans.is_empty() {
                self.current = Some(LoadedTrace {
                    trace_id: hex(&id),
                    batch,
                });
                self.span = 0;
                return Ok(());
            }
        }
    }

    /// Reads the next page of the summary table, newest first; false at the end.
    fn next_page(&mut self) -> rusqlite::Result<bool> {
        let (start, key) = self.page_after.unwrap_or((i64::MAX, i64::MAX));
        let mut statement = self.table.conn.prepare_cached(
            "SELECT id, trace_id, start_ns FROM main.traces
             WHERE (start_ns, id) < (?1, ?2) ORDER BY start_ns DESC, id DESC LIMIT ?3",
        )?;
        let page: Vec<(i64, Vec<u8>, i64)> = statement
            .query_map(params![start, key, TRACE_PAGE], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        if let Some((key, _, start)) = page.last() {
            self.page_after = Some((*start, *key));
        }
        self.traces = page.into_iter().map(|(key, id, _)| (key, id)).collect();
        self.next_trace = 0;
        Ok(!self.traces.is_empty())
    }
}

unsafe impl VTabCursor for SpansCursor<'_> {
    fn filter(&mut self, plan: c_int, _: Option<&str>, args: &Filters<'_>) -> rusqlite::Result<()> {
        self.traces.clear();
        self.next_trace = 0;
        self.page_after = None;
        self.paging = false;
        self.row = 0;
        let conn = &self.table.conn;
        match plan {
            PLAN_TRACE => {
                let wanted: Option<String> = args.get(0).ok();
                if let Some(bytes) = wanted.as_deref().and_then(parse_hex_id) {
                    let found = conn
                        .prepare_cached("SELECT id, trace_id FROM main.traces WHERE trace_id = ?1")?
                        .query_map(params![bytes], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    self.traces = found;
                }
            }
            PLAN_NAME => {
                let name: Option<String> = args.get(0).ok();
                if let Some(name) = name {
                    self.traces = conn
                        .prepare_cached(
                            "SELECT t.id, t.trace_id FROM main.trace_operations o
                             JOIN main.traces t ON t.id = o.trace
                             WHERE o.name = (SELECT id FROM main.span_names WHERE name = ?1)
                             ORDER BY t.start_ns DESC, t.id DESC",
                        )?
                        .query_map(params![name], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                }
            }
            _ => self.paging = true,
        }
        self.load_next_trace()?;
        self.skip_to_row()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        self.span += 1;
        self.row += 1;
        self.skip_to_row()
    }

    fn eof(&self) -> bool {
        self.current.is_none()
    }

    fn column(&self, ctx: &mut Context, column: c_int) -> rusqlite::Result<()> {
        let Some(trace) = &self.current else {
            return ctx.set_result(rusqlite::types::Null);
        };
        let batch = &trace.batch;
        let span = &batch.spans[self.span];
        let clamp = |v: u64| v.min(i64::MAX as u64) as i64;
        match column {
            0 => ctx.set_result(&trace.trace_id),
            1 => ctx.set_result(span.span_id.to_hex()),
            2 => ctx.set_result(span.parent_span_id.map(|p| p.to_hex())),
            3 => ctx.set_result(&span.name),
            4 => ctx.set_result(batch.resource_of(span).service_name()),
            5 => ctx.set_result(span.kind.as_str()),
            6 => ctx.set_result(clamp(span.start_unix_nano)),
            7 => ctx.set_result(clamp(span.end_unix_nano)),
            8 => ctx.set_result(clamp(span.duration_nanos())),
            9 => ctx.set_result(span.status.code.as_str()),
            10 => ctx.set_result(&span.status.message),
            11 => ctx.set_result(attributes_json(&span.attributes).to_string()),
            12 => {
                let events: Vec<serde_json::Value> = span
                    .events
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "time_ns": e.time_unix_nano,
                            "name": e.name,
                            "attributes": attributes_json(&e.attributes),
                        })
                    })
                    .collect();
                ctx.set_result(serde_json::Value::Array(events).to_string())
            }
            13 => ctx.set_result(attributes_json(&batch.resource_of(span).attributes).to_string()),
            _ => ctx.set_result(rusqlite::types::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.row)
    }
}

impl SpansCursor<'_> {
    /// Advances past exhausted traces so the cursor points at a span or at the end.
    fn skip_to_row(&mut self) -> rusqlite::Result<()> {
        while let Some(trace) = &self.current {
            if self.span < trace.batch.spans.len() {
                return Ok(());
            }
            self.load_next_trace()?;
        }
        Ok(())
    }
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
    use crate::{Store, StoreWriter, prepare_spans};
    use devtrace_model::StatusCode;

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
            "SELECT name, count(*) FROM operations GROUP BY name ORDER BY name",
        );
        assert_eq!(ops.rows.len(), 3);
        assert_eq!(
            ops.rows[2],
            [SqlValue::Text("SELECT".into()), SqlValue::Integer(2)]
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
                && error.to_string().contains("traces, spans and operations"),
            "{error}"
        );
    }
}
