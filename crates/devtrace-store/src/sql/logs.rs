//! The `logs` virtual table: one row per log record, decoded from the compressed log chunks on
//! demand, newest chunks first; a `trace_id = …` constraint reads only that trace's chunks
//! (through their index). Records without a trace have a null `trace_id`.

use super::{attributes_json, parse_hex_id, value_json};
use crate::chunk;
use devtrace_model::{AnyValue, LogBatch};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{Connection, params};
use std::borrow::Cow;
use std::ffi::{CStr, c_int};

pub(super) const LOGS_MODULE: Module<'static, LogsTable> = Module::eponymous_only_module();

const COLUMNS: &[&str] = &[
    "trace_id",
    "span_id",
    "time_ns",
    "severity_number",
    "severity",
    "body",
    "attributes",
    "service",
    "resource",
];
const COL_TRACE_ID: c_int = 0;

const PLAN_SCAN: c_int = 0;
const PLAN_TRACE: c_int = 1;

/// Chunks read at a time while scanning.
const CHUNK_PAGE: i64 = 64;

#[repr(C)]
pub(super) struct LogsTable {
    base: rusqlite::vtab::sqlite3_vtab,
    /// A non-owning handle on the connection the table belongs to (`connect_virtual_table`).
    conn: Connection,
}

unsafe impl<'vtab> VTab<'vtab> for LogsTable {
    type Aux = ();
    type Cursor = LogsCursor<'vtab>;

    fn connect(
        db: &mut VTabConnection,
        _aux: Option<&()>,
        _module: &[u8],
        _database: &[u8],
        _table: &[u8],
        _args: &[&[u8]],
    ) -> rusqlite::Result<(Cow<'static, CStr>, Self)> {
        let (schema, conn) = super::connect_virtual_table(db, COLUMNS)?;
        Ok((
            schema,
            Self {
                base: Default::default(),
                conn,
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> rusqlite::Result<bool> {
        let by_trace = info.constraints().position(|c| {
            c.is_usable()
                && c.operator() == IndexConstraintOp::SQLITE_INDEX_CONSTRAINT_EQ
                && c.column() == COL_TRACE_ID
        });
        match by_trace {
            Some(i) => {
                // SQLite still checks the constraint on every row.
                info.constraint_usage(i).set_argv_index(1);
                info.set_idx_num(PLAN_TRACE);
                info.set_estimated_cost(10.0);
            }
            None => {
                info.set_idx_num(PLAN_SCAN);
                info.set_estimated_cost(1e9);
            }
        }
        Ok(true)
    }

    fn open(&'vtab mut self) -> rusqlite::Result<LogsCursor<'vtab>> {
        Ok(LogsCursor {
            base: Default::default(),
            table: self,
            plan: PLAN_SCAN,
            trace: None,
            before_rowid: i64::MAX,
            pending: Vec::new(),
            current: None,
            record: 0,
            row: 0,
        })
    }
}

/// The records of one decoded chunk.
struct LoadedChunk {
    trace_id: Option<String>,
    batch: LogBatch,
}

#[repr(C)]
pub(super) struct LogsCursor<'vtab> {
    base: rusqlite::vtab::sqlite3_vtab_cursor,
    table: &'vtab LogsTable,
    plan: c_int,
    /// The trace a `trace_id = …` plan reads (raw bytes).
    trace: Option<Vec<u8>>,
    /// Scanning goes down the chunk row ids, a page at a time.
    before_rowid: i64,
    /// Chunks fetched but not decoded yet: (row id, trace id, data), in reading order.
    pending: Vec<(i64, Option<Vec<u8>>, Vec<u8>)>,
    current: Option<LoadedChunk>,
    record: usize,
    row: i64,
}

impl LogsCursor<'_> {
    /// Fetches the next page of chunks; false at the end.
    fn fetch(&mut self) -> rusqlite::Result<bool> {
        let conn = &self.table.conn;
        let page: Vec<(i64, Option<Vec<u8>>, Vec<u8>)> = match (self.plan, &self.trace) {
            (PLAN_TRACE, Some(trace)) => conn
                .prepare_cached(
                    "SELECT rowid, trace_id, data FROM main.log_chunks
                     WHERE trace_id = ?1 AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3",
                )?
                .query_map(params![trace, self.before_rowid, CHUNK_PAGE], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?,
            (PLAN_TRACE, None) => Vec::new(),
            _ => conn
                .prepare_cached(
                    "SELECT rowid, trace_id, data FROM main.log_chunks
                     WHERE rowid < ?1 ORDER BY rowid DESC LIMIT ?2",
                )?
                .query_map(params![self.before_rowid, CHUNK_PAGE], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?,
        };
        if let Some((rowid, _, _)) = page.last() {
            self.before_rowid = *rowid;
        }
        // Popped from the end: reverse so the newest comes first.
        self.pending = page.into_iter().rev().collect();
        Ok(!self.pending.is_empty())
    }

    /// Moves to the next chunk with records; `current` is `None` at the end.
    fn load_next_chunk(&mut self) -> rusqlite::Result<()> {
        loop {
            if self.pending.is_empty() && !self.fetch()? {
                self.current = None;
                return Ok(());
            }
            let (_, trace, data) = self.pending.pop().expect("fetched a page");
            let batch = chunk::decode_logs(&data)
                .map_err(|e| rusqlite::Error::ModuleError(e.to_string()))?;
            if !batch.logs.is_empty() {
                self.current = Some(LoadedChunk {
                    trace_id: trace.map(|t| super::hex(&t)),
                    batch,
                });
                self.record = 0;
                return Ok(());
            }
        }
    }

    /// Advances past exhausted chunks so the cursor points at a record or at the end.
    fn skip_to_row(&mut self) -> rusqlite::Result<()> {
        while let Some(chunk) = &self.current {
            if self.record < chunk.batch.logs.len() {
                return Ok(());
            }
            self.load_next_chunk()?;
        }
        Ok(())
    }
}

unsafe impl VTabCursor for LogsCursor<'_> {
    fn filter(&mut self, plan: c_int, _: Option<&str>, args: &Filters<'_>) -> rusqlite::Result<()> {
        let _reading_storage = super::Internal::enter();
        self.plan = plan;
        self.trace = None;
        self.before_rowid = i64::MAX;
        self.pending.clear();
        self.row = 0;
        if plan == PLAN_TRACE {
            let wanted: Option<String> = args.get(0).ok();
            self.trace = wanted.as_deref().and_then(parse_hex_id);
        }
        self.load_next_chunk()?;
        self.skip_to_row()
    }

    fn next(&mut self) -> rusqlite::Result<()> {
        let _reading_storage = super::Internal::enter();
        self.record += 1;
        self.row += 1;
        self.skip_to_row()
    }

    fn eof(&self) -> bool {
        self.current.is_none()
    }

    fn column(&self, ctx: &mut Context, column: c_int) -> rusqlite::Result<()> {
        let Some(chunk) = &self.current else {
            return ctx.set_result(rusqlite::types::Null);
        };
        let batch = &chunk.batch;
        let log = &batch.logs[self.record];
        let resource = batch.resources.get(log.resource as usize);
        match column {
            // The record's own trace id, else the chunk's.
            0 => ctx.set_result(
                log.trace_id
                    .map(|t| t.to_hex())
                    .or_else(|| chunk.trace_id.clone()),
            ),
            1 => ctx.set_result(log.span_id.map(|s| s.to_hex())),
            2 => ctx.set_result(log.effective_time().min(i64::MAX as u64) as i64),
            3 => ctx.set_result(log.severity_number),
            4 => ctx.set_result(&log.severity_text),
            5 => match &log.body {
                AnyValue::String(text) => ctx.set_result(text),
                AnyValue::Empty => ctx.set_result(rusqlite::types::Null),
                other => ctx.set_result(value_json(other).to_string()),
            },
            6 => ctx.set_result(attributes_json(&log.attributes).to_string()),
            7 => ctx.set_result(resource.map(|r| r.service_name().to_owned())),
            8 => ctx.set_result(
                resource
                    .map(|r| attributes_json(&r.attributes).to_string())
                    .unwrap_or_else(|| "{}".into()),
            ),
            _ => ctx.set_result(rusqlite::types::Null),
        }
    }

    fn rowid(&self) -> rusqlite::Result<i64> {
        Ok(self.row)
    }
}
