//! The `spans` virtual table: one row per span, decoded from the compressed chunks on demand,
//! newest traces first; a `trace_id = …` or `name = …` constraint narrows the traces read.

use super::{attributes_json, hex, parse_hex_id};
use devtrace_model::SpanBatch;
use rusqlite::Connection;
use rusqlite::params;
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, Module, VTab, VTabConnection, VTabCursor,
};
use std::borrow::Cow;
use std::ffi::{CStr, c_int};

pub(super) const SPANS_MODULE: Module<'static, SpansTable> = Module::eponymous_only_module();

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
pub(super) struct SpansTable {
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
pub(super) struct SpansCursor<'vtab> {
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
                let decoded = crate::sqlite_dictionaries::decode_stored_spans(
                    &self.table.conn,
                    row.get_ref(0)?.as_blob()?,
                )
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
        let _reading_storage = super::Internal::enter();
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
                            "SELECT t.id, t.trace_id FROM main.traces t
                             WHERE t.id IN (SELECT x.trace FROM main.trace_operations x
                                            WHERE x.operation IN
                                              (SELECT id FROM main.operations WHERE name = ?1))
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
        let _reading_storage = super::Internal::enter();
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
