//! The write side on ClickHouse: what the group-commit writer calls.
//!
//! A write is a few `INSERT … FORMAT RowBinary` requests, one per table, each acknowledged by
//! the server only once it stored the rows: the writer returns (and the OTLP client gets its
//! answer) after every one succeeded. ClickHouse has no transaction spanning tables, so a
//! write that fails half-way may leave part of it stored; the client then retries, and every
//! row is keyed so that the retry stores nothing twice (spans by id, summaries by the ids they
//! summarise, blobs by hash, points by series and time). Batches are checked before the first
//! request, so a batch that cannot be stored stores nothing.
//!
//! A span is (trace id, span id) and is stored once, the first stored version winning: before
//! inserting, the writer reads the stored span ids of the batch's traces (by primary key) and
//! leaves those spans out, counting them as re-sent. Two nodes inserting the same new span at
//! the same moment may both insert it; the reader then keeps one (the highest `version`, which
//! is the earlier write's) and the background merges of `ReplacingMergeTree` drop the other.
//!
//! A write ends with its row in `commits` (see `feed`), once everything else was stored.
//!
//! Sessions are merged (see `TraceChunk::merge`): the stored trace is read, merged, and written
//! again with higher versions, its summary replacing the old one (summary part 0).

use super::ClickHouse;
use super::rowbinary::Rows;
use crate::chunk;
use crate::prepare::{TraceChunk, without_stored};
use crate::{Result, StoreError, StoreWriter, WriteBatch};
use devtrace_model::{SpanBatch, SpanId, TraceId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Owned by the writer thread (or an importer).
pub struct ChWriter {
    db: Arc<ClickHouse>,
}

impl ChWriter {
    /// Connects to `url`, creating devtrace's database and tables when missing.
    pub fn open(url: &str) -> Result<Self> {
        let db = Arc::new(ClickHouse::open(url)?);
        super::made_with_tables(&db)?;
        Ok(Self { db })
    }
}

/// The rows of one write, by table.
#[derive(Default)]
struct Inserts {
    spans: Rows,
    parts: Rows,
    list: Rows,
    sessions: Rows,
    logs: Rows,
    blobs: Rows,
    documents: Rows,
    cursors: Rows,
    resent: Rows,
    points: Rows,
}

const SPAN_COLUMNS: &str = "project, trace_id, span_id, parent_span_id, start_ns, duration_ns, name, service, kind, failed, attributes, body, version";
const PART_COLUMNS: &str = "project, trace_id, part, start_ns, end_ns, span_count, error_count, root_name, root_service, root_start_ns, root_end_ns, root_failed, is_root, is_run, is_session, services, service_spans, service_errors, op_names, op_services, op_kinds, version";
const SESSION_COLUMNS: &str = "project, trace_id, session_id, agent, project_dir, title, start_ns, end_ns, turns, tool_calls, subagents, input_tokens, output_tokens, cache_read_tokens, errors, version";

impl StoreWriter for ChWriter {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<()> {
        check(batches)?;
        let now = super::unix_now_nanos();
        let mut out = Inserts::default();
        // Stored span ids of every trace this write touches, read once, then kept up to date.
        let mut stored: HashMap<(i64, TraceId), HashSet<SpanId>> = HashMap::new();
        let mut wanted: HashMap<i64, Vec<TraceId>> = HashMap::new();
        for batch in batches {
            for trace in batch.traces.iter().filter(|t| !t.merge) {
                wanted
                    .entry(batch.project.0)
                    .or_default()
                    .push(trace.trace_id);
            }
        }
        for (project, traces) in wanted {
            for (trace, ids) in self.db.stored_span_ids(project, &traces)? {
                stored.insert((project, trace), ids);
            }
        }
        let mut resent: HashMap<i64, u64> = HashMap::new();
        // Spans and logs stored per project, for the commit feed (feed.rs).
        let mut committed: HashMap<i64, (u64, u64)> = HashMap::new();
        // Appended spans: lower versions than every span stored before (the first stored
        // version wins), counting down in arrival order.
        let mut versions = u64::MAX - now;
        for batch in batches {
            let project = batch.project.0;
            if !batch.deletes.is_empty() || batch.delete_logs_before.is_some() {
                // Deletions come first; what this write gathered before them is sent first.
                self.flush(&mut out)?;
                self.db
                    .delete(project, &batch.deletes, batch.delete_logs_before)?;
                for trace in &batch.deletes {
                    stored.remove(&(project, *trace));
                }
            }
            for trace in &batch.traces {
                if trace.merge {
                    // A merge reads what is stored: what this write gathered must be there.
                    self.flush(&mut out)?;
                    self.merge(project, trace, now, &mut versions)?;
                    committed.entry(project).or_default().0 += trace.span_ids.len() as u64;
                    continue;
                }
                let ids = stored.entry((project, trace.trace_id)).or_default();
                let again = trace.span_ids.iter().filter(|id| ids.contains(id)).count();
                *resent.entry(project).or_default() += again as u64 + trace.repeated;
                let kept = if again == 0 {
                    Some(std::borrow::Cow::Borrowed(trace))
                } else {
                    without_stored(trace, |id| ids.contains(id))?.map(std::borrow::Cow::Owned)
                };
                ids.extend(trace.span_ids.iter().copied());
                if let Some(kept) = kept {
                    committed.entry(project).or_default().0 += kept.span_ids.len() as u64;
                    add_trace(&mut out, project, &kept, &mut versions, false, now)?;
                }
            }
            add_others(&mut out, batch, now);
            committed.entry(project).or_default().1 +=
                batch.logs.iter().map(|l| l.count).sum::<u64>();
        }
        for (project, spans) in resent {
            if spans > 0 {
                out.resent.row().i64(project).u64(now).u64(spans);
            }
        }
        self.flush(&mut out)?;
        super::feed::record(&self.db.server, &committed)
    }

    fn checkpoint(&mut self) -> Result<()> {
        // ClickHouse keeps what it acknowledged; nothing is buffered on this side.
        Ok(())
    }

    fn chunk_use(&self) -> crate::ChunkUse {
        // Chunks are decoded into rows here (`add_trace`), never stored.
        crate::ChunkUse::InFlight
    }

    fn reclaim(&mut self) -> Result<()> {
        // Deleted rows are masked at once and dropped by merges; OPTIMIZE forces those merges.
        for table in ["spans", "trace_parts", "trace_list", "sessions", "logs"] {
            self.db.server.query(
                &format!("OPTIMIZE TABLE {} FINAL", self.db.local(table)),
                &[],
            )?;
        }
        Ok(())
    }
}

/// Refuses a write holding a row no backend could store (as PostgreSQL's checks do), before
/// anything is sent.
fn check(batches: &[WriteBatch]) -> Result<()> {
    for batch in batches {
        for trace in &batch.traces {
            if trace.span_count > i64::MAX as u64 || trace.error_count > trace.span_count {
                return Err(StoreError::Database(format!(
                    "trace {}: impossible counts ({} spans, {} errors); nothing was stored",
                    trace.trace_id.to_hex(),
                    trace.span_count,
                    trace.error_count
                )));
            }
        }
    }
    Ok(())
}

impl ChWriter {
    /// Sends the gathered rows, spans before the summaries that list them.
    fn flush(&mut self, out: &mut Inserts) -> Result<()> {
        let taken = std::mem::take(out);
        let server = &self.db.server;
        server.insert("spans", SPAN_COLUMNS, &taken.spans)?;
        server.insert("trace_parts", PART_COLUMNS, &taken.parts)?;
        server.insert(
            "trace_list",
            "project, service, start_ns, trace_id",
            &taken.list,
        )?;
        server.insert("sessions", SESSION_COLUMNS, &taken.sessions)?;
        server.insert(
            "logs",
            "project, trace_id, has_trace, first_ns, seq, count, data",
            &taken.logs,
        )?;
        server.insert("blobs", "project, hash, size, data, version", &taken.blobs)?;
        server.insert("documents", "project, digest, version", &taken.documents)?;
        server.insert(
            "import_cursors",
            "project, source, byte_offset, fingerprint, state, version",
            &taken.cursors,
        )?;
        server.insert(
            "metric_points",
            "project, series, session, quantity, kind, temporality, service, start_ns, time_ns, value, version",
            &taken.points,
        )?;
        server.insert("resent_spans", "project, at_ns, spans", &taken.resent)?;
        Ok(())
    }

    /// Merges a session chunk into its stored trace and writes the result whole.
    fn merge(
        &mut self,
        project: i64,
        trace: &TraceChunk,
        now: u64,
        versions: &mut u64,
    ) -> Result<()> {
        let (mut stored, version) = self.db.stored_spans(project, trace.trace_id)?;
        let incoming = chunk::decode_spans(&trace.data)?;
        let mut out = Inserts::default();
        let merged = match version {
            Some(version) => {
                devtrace_model::session::merge_batches(&mut stored, incoming);
                // Above every stored version, so the merged spans replace the stored ones.
                let mut above = version.saturating_add(1 + stored.spans.len() as u64);
                let merged = crate::prepare::summarise(trace.trace_id, &stored);
                add_trace(&mut out, project, &merged, &mut above, true, now)?;
                merged
            }
            None => {
                let merged = crate::prepare::summarise(trace.trace_id, &incoming);
                add_trace(&mut out, project, &merged, versions, true, now)?;
                merged
            }
        };
        if let Some(facts) = &merged.session {
            add_session(&mut out, project, trace.trace_id, facts, now);
        }
        self.flush(&mut out)
    }
}

/// A trace chunk's span rows and its summary row. Spans take versions counting down from
/// `versions`: highest first, so reading by version reads them in the order they arrived. A merged trace's
/// summary is part 0, replaced by each merge; an appended chunk's part is named by the spans it
/// holds, so a retried request replaces its own summary instead of adding one.
fn add_trace(
    out: &mut Inserts,
    project: i64,
    trace: &TraceChunk,
    versions: &mut u64,
    merged: bool,
    now: u64,
) -> Result<()> {
    let batch = chunk::decode_spans(&trace.data)?;
    for span in &batch.spans {
        add_span(out, project, &batch, span, *versions);
        *versions -= 1;
    }
    let part = if merged {
        0
    } else {
        let mut ids = trace.span_ids.clone();
        ids.sort_unstable();
        let mut hasher = blake3::Hasher::new();
        for id in &ids {
            hasher.update(&id.0);
        }
        u64::from_le_bytes(
            hasher.finalize().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        ) | 1
    };
    out.parts
        .row()
        .i64(project)
        .fixed(&trace.trace_id.0)
        .u64(part)
        .u64(trace.start_unix_nano)
        .u64(trace.end_unix_nano)
        .u64(trace.span_count)
        .u64(trace.error_count)
        .str(&trace.root_name)
        .str(&trace.root_service)
        .u64(trace.root_start_unix_nano)
        .u64(trace.root_end_unix_nano)
        .u8(u8::from(trace.root_failed))
        .u8(u8::from(trace.is_root))
        .u8(u8::from(trace.is_run))
        .u8(u8::from(trace.session.is_some()))
        .strings(trace.services.iter().map(|s| s.service.as_str()))
        .u64s(trace.services.iter().map(|s| s.spans))
        .u64s(trace.services.iter().map(|s| s.errors))
        .strings(trace.operations.iter().map(|o| o.name.as_str()))
        .strings(trace.operations.iter().map(|o| o.service.as_str()))
        .u8s(trace.operations.iter().map(|o| o.kind.to_otlp() as u8))
        .u64(now);
    // The trace list's index: the part's start under every service in it, and under "" (any
    // service).
    let services = trace.services.iter().map(|s| s.service.as_str());
    for service in std::iter::once("").chain(services) {
        out.list
            .row()
            .i64(project)
            .str(service)
            .u64(trace.start_unix_nano)
            .fixed(&trace.trace_id.0);
    }
    Ok(())
}

/// One span's row: typed columns for queries, string attributes in the Map, the rest of the
/// span in its body (see [`super::body`]).
fn add_span(
    out: &mut Inserts,
    project: i64,
    batch: &SpanBatch,
    span: &devtrace_model::Span,
    version: u64,
) {
    let (columns, body) = super::body::split(batch, span);
    out.spans
        .row()
        .i64(project)
        .fixed(&span.trace_id.0)
        .fixed(&columns.span_id.0)
        .fixed(&columns.parent_span_id)
        .u64(columns.start_ns)
        .u64(columns.duration_ns)
        .str(&columns.name)
        .str(batch.resource_of(span).service_name())
        .u8(columns.kind)
        .u8(u8::from(span.is_error()))
        .map(&columns.attributes)
        .bytes(&body)
        .u64(version);
}

fn add_session(
    out: &mut Inserts,
    project: i64,
    trace_id: TraceId,
    facts: &crate::SessionFacts,
    now: u64,
) {
    out.sessions
        .row()
        .i64(project)
        .fixed(&trace_id.0)
        .str(&facts.session_id)
        .str(&facts.agent)
        .str(&facts.project)
        .str(&facts.title)
        .u64(facts.start_unix_nano)
        .u64(facts.end_unix_nano)
        .u64(facts.turns)
        .u64(facts.tool_calls)
        .u64(facts.subagents)
        .u64(facts.input_tokens)
        .u64(facts.output_tokens)
        .u64(facts.cache_read_tokens)
        .u64(facts.errors)
        .u64(now);
}

/// Logs, blobs, imported documents, import cursors and metric points of a batch.
fn add_others(out: &mut Inserts, batch: &WriteBatch, now: u64) {
    let project = batch.project.0;
    for (seq, log) in batch.logs.iter().enumerate() {
        out.logs
            .row()
            .i64(project)
            .fixed(&log.trace_id.map_or([0; 16], |t| t.0))
            .u8(u8::from(log.trace_id.is_some()))
            .u64(log.first_unix_nano)
            .u64(now.wrapping_add(seq as u64))
            .u64(log.count)
            .bytes(&log.data);
    }
    for blob in &batch.blobs {
        // The first stored copy wins (they are equal: the hash is of the content).
        out.blobs
            .row()
            .i64(project)
            .fixed(&blob.hash)
            .u64(blob.size)
            .bytes(&blob.data)
            .u64(u64::MAX - now);
    }
    for digest in &batch.documents {
        out.documents.row().i64(project).fixed(digest).u64(now);
    }
    for cursor in &batch.cursors {
        out.cursors
            .row()
            .i64(project)
            .str(&cursor.source)
            .u64(cursor.offset)
            .fixed(&cursor.fingerprint)
            .bytes(&cursor.state)
            .u64(now);
    }
    for series in &batch.metrics {
        for point in &series.points {
            let row = out.points.row();
            row.i64(project).fixed(&series.key);
            match series.tags.session {
                Some(session) => row.u8(0).fixed(&session.0),
                None => row.u8(1),
            };
            row.str(series.tags.quantity.map_or("", |q| q.as_str()))
                .u8(series.kind.code() as u8)
                .u8(series.temporality.to_otlp() as u8)
                .str(&series.service)
                .u64(point.start_unix_nano)
                .u64(point.time_unix_nano)
                .f64(point.value)
                .u64(u64::MAX - now);
        }
    }
}
