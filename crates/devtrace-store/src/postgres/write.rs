//! The write side of the PostgreSQL store: what the group-commit writer calls.
//!
//! One transaction per group of requests, built to need few round trips whatever its size:
//! appended chunks are gathered per trace, their summaries upserted in one `INSERT … SELECT
//! FROM unnest(…) ON CONFLICT` (sorted by trace, so two nodes writing the same traces take
//! their row locks in the same order and cannot deadlock), the chunks themselves streamed
//! with `COPY … (FORMAT binary)`, the operation index filled with one more `unnest`. Merges
//! (sessions) and deletions go trace by trace, in order. The transaction ends with a
//! `pg_notify`, delivered to every node's listener when (and only if) it commits.

use super::{Conn, Database, int, is_transient, schema, unix_now_nanos};
use crate::chunk;
use crate::prepare::TraceChunk;
use crate::{Result, SessionFacts, StoreError, StoreWriter, WriteBatch};
use devtrace_model::{SpanBatch, TraceId};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use std::collections::HashMap;

/// Owned by the writer thread (or an importer).
pub struct PgWriter {
    conn: Conn,
    database: Database,
    /// This writer's row in `counters` (one per process and project).
    writer_id: i64,
    /// (project, span name) → id, remembered across transactions.
    names: HashMap<(i64, String), i64>,
    /// (project, metric series key) → id, remembered across transactions.
    series: HashMap<(i64, [u8; 16]), i64>,
    /// The `NOTIFY` channel of this schema (see [`super::listen`]).
    channel: String,
}

/// Attempts of one transaction when PostgreSQL reports a deadlock or serialisation failure.
const ATTEMPTS: usize = 3;

impl PgWriter {
    /// Connects to `url`, creating or migrating devtrace's schema.
    pub fn open(url: &str) -> Result<Self> {
        let database = Database::parse(url)?;
        let mut conn = database.connect()?;
        schema::migrate(&mut conn, &database)?;
        let writer_id: i64 = conn
            .client
            .query_one("SELECT nextval('writers')", &[])?
            .get(0);
        let channel = super::listen::channel(&mut conn)?;
        Ok(Self {
            conn,
            database,
            writer_id,
            names: HashMap::new(),
            series: HashMap::new(),
            channel,
        })
    }

    fn reconnect_if_closed(&mut self) -> Result<()> {
        if self.conn.client.is_closed() {
            tracing::warn!(store = %self.database.target, "the connection to PostgreSQL closed; reconnecting");
            self.conn = self.database.connect()?;
            schema::check_not_newer(&mut self.conn, &self.database)?;
        }
        Ok(())
    }
}

impl StoreWriter for PgWriter {
    fn write(&mut self, batches: &[WriteBatch]) -> Result<()> {
        let mut attempt = 0;
        loop {
            self.reconnect_if_closed()?;
            attempt += 1;
            let outcome = Transact {
                tx: self.conn.client.transaction()?,
                writer_id: self.writer_id,
                names: &mut self.names,
                series: &mut self.series,
                channel: &self.channel,
                totals: HashMap::new(),
            }
            .run(batches);
            match outcome {
                Ok(()) => return Ok(()),
                Err(failure) => {
                    // Names and series inserted by the failed transaction were rolled back
                    // with it.
                    self.names.clear();
                    self.series.clear();
                    match failure {
                        Failure::Postgres(e) if is_transient(&e) && attempt < ATTEMPTS => {
                            tracing::debug!(error = %e, attempt, "retrying a transaction");
                        }
                        Failure::Postgres(e) => return Err(e.into()),
                        Failure::Store(e) => return Err(e),
                    }
                }
            }
        }
    }

    fn checkpoint(&mut self) -> Result<()> {
        // PostgreSQL checkpoints by itself; nothing is buffered on this side.
        Ok(())
    }

    fn reclaim(&mut self) -> Result<()> {
        // Plain VACUUM: the space becomes reusable without locking out ingest. (Only VACUUM
        // FULL gives it back to the file system, holding an exclusive lock meanwhile.)
        self.reconnect_if_closed()?;
        self.conn.client.batch_execute(
            "VACUUM (ANALYZE) traces, span_chunks, log_chunks, trace_operations, sessions, blobs,
                 metric_series, metric_points",
        )?;
        Ok(())
    }
}

/// What went wrong in a transaction, keeping PostgreSQL's error to decide on a retry.
enum Failure {
    Postgres(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(error: postgres::Error) -> Self {
        Self::Postgres(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

type Step<T = ()> = std::result::Result<T, Failure>;

/// Changes to the counters of one project in this transaction.
#[derive(Default)]
struct Totals {
    spans: i64,
    traces: i64,
    logs: i64,
    metric_points: i64,
}

struct Transact<'a> {
    tx: Transaction<'a>,
    writer_id: i64,
    names: &'a mut HashMap<(i64, String), i64>,
    series: &'a mut HashMap<(i64, [u8; 16]), i64>,
    channel: &'a str,
    totals: HashMap<i64, Totals>,
}

/// Appended chunks of one trace gathered in this transaction.
struct Group<'b> {
    project: i64,
    trace_id: TraceId,
    chunks: Vec<&'b TraceChunk>,
}

impl<'a> Transact<'a> {
    fn run(mut self, batches: &[WriteBatch]) -> Step {
        let mut pending: Vec<(i64, &TraceChunk)> = Vec::new();
        let mut logs = Vec::new();
        for batch in batches {
            let project = batch.project.0;
            if !batch.deletes.is_empty() || batch.delete_logs_before.is_some() {
                self.append(std::mem::take(&mut pending))?;
                for trace_id in &batch.deletes {
                    self.delete_trace(project, *trace_id)?;
                }
                if let Some(before) = batch.delete_logs_before {
                    self.delete_logs_before(project, before)?;
                }
            }
            for trace in &batch.traces {
                if trace.merge {
                    // A merge reads what is stored: what this transaction appended so far
                    // must be there first.
                    self.append(std::mem::take(&mut pending))?;
                    if self.merge_trace(project, trace)? {
                        continue;
                    }
                }
                pending.push((project, trace));
            }
            for blob in &batch.blobs {
                self.tx.execute(
                    "INSERT INTO blobs (project_id, hash, size, data) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                    &[&project, &&blob.hash[..], &int(blob.size), &blob.data],
                )?;
            }
            for cursor in &batch.cursors {
                self.tx.execute(
                    "INSERT INTO import_cursors
                         (project_id, source, byte_offset, fingerprint, state, updated_ns)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (project_id, source) DO UPDATE SET
                         byte_offset = excluded.byte_offset, fingerprint = excluded.fingerprint,
                         state = excluded.state, updated_ns = excluded.updated_ns",
                    &[
                        &project,
                        &cursor.source,
                        &int(cursor.offset),
                        &&cursor.fingerprint[..],
                        &cursor.state,
                        &unix_now_nanos(),
                    ],
                )?;
            }
            for digest in &batch.documents {
                self.tx.execute(
                    "INSERT INTO imported_documents (project_id, digest, imported_ns)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    &[&project, &&digest[..], &unix_now_nanos()],
                )?;
            }
            for log in &batch.logs {
                self.totals.entry(project).or_default().logs += log.count as i64;
                logs.push((project, log));
            }
            if !batch.metrics.is_empty() {
                let added = self.write_metrics(project, &batch.metrics)?;
                self.totals.entry(project).or_default().metric_points += added;
            }
        }
        self.append(pending)?;
        if !logs.is_empty() {
            let sink = self.tx.copy_in(
                "COPY log_chunks (project_id, trace_id, first_ns, count, data)
                 FROM STDIN (FORMAT binary)",
            )?;
            let mut copy = BinaryCopyInWriter::new(
                sink,
                &[Type::INT8, Type::BYTEA, Type::INT8, Type::INT8, Type::BYTEA],
            );
            for (project, log) in logs {
                let trace_id = log.trace_id.map(|id| id.0.to_vec());
                copy.write(&[
                    &project,
                    &trace_id,
                    &int(log.first_unix_nano),
                    &(log.count as i64),
                    &log.data,
                ])?;
            }
            copy.finish()?;
        }
        self.finish()
    }

    /// Counters, the notification, the commit.
    fn finish(mut self) -> Step {
        let mut projects: Vec<_> = self.totals.drain().collect();
        projects.sort_by_key(|(project, _)| *project);
        let mut payload = Vec::new();
        for (project, totals) in &projects {
            if (
                totals.spans,
                totals.traces,
                totals.logs,
                totals.metric_points,
            ) == (0, 0, 0, 0)
            {
                continue;
            }
            self.tx.execute(
                "INSERT INTO counters AS c (writer, project_id, spans, traces, logs, metric_points)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (writer, project_id) DO UPDATE SET
                     spans = c.spans + excluded.spans, traces = c.traces + excluded.traces,
                     logs = c.logs + excluded.logs,
                     metric_points = c.metric_points + excluded.metric_points",
                &[
                    &self.writer_id,
                    project,
                    &totals.spans,
                    &totals.traces,
                    &totals.logs,
                    &totals.metric_points,
                ],
            )?;
            if (totals.spans, totals.logs) == (0, 0) {
                continue;
            }
            payload.push(format!("{project}:{}:{}", totals.spans, totals.logs));
        }
        if !payload.is_empty() {
            self.tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&self.channel, &payload.join(",")],
            )?;
        }
        self.tx.commit()?;
        Ok(())
    }

    /// A batch's metric series (each made once per project) and their points, in one insert
    /// that leaves points already stored as they are; returns how many were new.
    fn write_metrics(&mut self, project: i64, series: &[crate::metrics::SeriesRows]) -> Step<i64> {
        let (mut ids, mut times, mut starts, mut values) = (vec![], vec![], vec![], vec![]);
        let (mut counts, mut data): (Vec<Option<i64>>, Vec<Option<Vec<u8>>>) = (vec![], vec![]);
        for rows in series {
            let id = match self.series.get(&(project, rows.key)) {
                Some(id) => *id,
                None => {
                    let id = self.series_id(project, rows)?;
                    self.series.insert((project, rows.key), id);
                    id
                }
            };
            for point in &rows.points {
                ids.push(id);
                times.push(int(point.time_unix_nano));
                starts.push(int(point.start_unix_nano));
                values.push(point.value);
                counts.push(point.count.map(int));
                data.push(point.data.clone());
            }
        }
        let added = self.tx.execute(
            "INSERT INTO metric_points (series, time_ns, start_ns, value, count, data)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],
                                  $4::double precision[], $5::bigint[], $6::bytea[])
             ON CONFLICT DO NOTHING",
            &[&ids, &times, &starts, &values, &counts, &data],
        )?;
        Ok(added as i64)
    }

    /// The id of a series, made if it is new (another node may be making it at once: the
    /// unique key makes one of them wait and then find it).
    fn series_id(&mut self, project: i64, rows: &crate::metrics::SeriesRows) -> Step<i64> {
        let made = self.tx.query_opt(
            "INSERT INTO metric_series (project_id, key, name, unit, kind, temporality,
                 monotonic, service, session, quantity, attributes)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (project_id, key) DO NOTHING RETURNING id",
            &[
                &project,
                &&rows.key[..],
                &rows.name,
                &rows.unit,
                &(rows.kind.code() as i32),
                &rows.temporality.to_otlp(),
                &rows.monotonic,
                &rows.service,
                &rows.tags.session.map(|id| id.0.to_vec()),
                &rows
                    .tags
                    .quantity
                    .map(devtrace_model::metrics::UsageQuantity::as_str),
                &rows.attributes,
            ],
        )?;
        Ok(match made {
            Some(row) => row.get(0),
            None => self
                .tx
                .query_one(
                    "SELECT id FROM metric_series WHERE project_id = $1 AND key = $2",
                    &[&project, &&rows.key[..]],
                )?
                .get(0),
        })
    }

    /// Appends chunks: one upsert of the summaries, one COPY of the chunks, the index.
    fn append(&mut self, pending: Vec<(i64, &TraceChunk)>) -> Step {
        if pending.is_empty() {
            return Ok(());
        }
        let mut groups: Vec<Group<'_>> = Vec::new();
        let mut slot: HashMap<(i64, TraceId), usize> = HashMap::new();
        for (project, chunk) in &pending {
            let index = *slot.entry((*project, chunk.trace_id)).or_insert_with(|| {
                groups.push(Group {
                    project: *project,
                    trace_id: chunk.trace_id,
                    chunks: Vec::new(),
                });
                groups.len() - 1
            });
            groups[index].chunks.push(chunk);
        }
        let mut order: Vec<usize> = (0..groups.len()).collect();
        order.sort_by(|&a, &b| {
            (groups[a].project, groups[a].trace_id.0)
                .cmp(&(groups[b].project, groups[b].trace_id.0))
        });

        let mut columns = SummaryColumns::default();
        for &index in &order {
            columns.push(&groups[index]);
        }
        let upsert = self.tx.prepare_typed(UPSERT_TRACES, &[])?;
        let rows = self.tx.query(
            &upsert,
            &[
                &columns.project,
                &columns.trace_id,
                &columns.start,
                &columns.end,
                &columns.spans,
                &columns.errors,
                &columns.root_name,
                &columns.root_service,
                &columns.root_is_real,
                &columns.is_run,
            ],
        )?;
        let mut keys: HashMap<(i64, TraceId), i64> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let key: i64 = row.get(0);
            let project: i64 = row.get(1);
            let trace_id = TraceId::from_slice(row.get::<_, &[u8]>(2)).unwrap_or_default();
            let total: i64 = row.get(3);
            let group = &groups[slot[&(project, trace_id)]];
            let added: i64 = group
                .chunks
                .iter()
                .fold(0i64, |n, c| n.wrapping_add(c.span_count as i64));
            let totals = self.totals.entry(project).or_default();
            totals.spans += added;
            // The upsert adds to an existing row, so a total equal to what was added is new.
            totals.traces += i64::from(total == added);
            keys.insert((project, trace_id), key);
        }

        let sink = self
            .tx
            .copy_in("COPY span_chunks (trace, data) FROM STDIN (FORMAT binary)")?;
        let mut copy = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::BYTEA]);
        for (project, chunk) in &pending {
            copy.write(&[&keys[&(*project, chunk.trace_id)], &chunk.data])?;
        }
        copy.finish()?;

        let mut operations: Vec<(i64, i64)> = Vec::new();
        let wanted: Vec<(i64, &str)> = pending
            .iter()
            .flat_map(|(project, chunk)| chunk.operations.iter().map(|n| (*project, n.as_str())))
            .collect();
        self.name_ids(&wanted)?;
        for (project, chunk) in &pending {
            let key = keys[&(*project, chunk.trace_id)];
            for name in &chunk.operations {
                operations.push((self.names[&(*project, name.clone())], key));
            }
        }
        self.index_operations(operations)?;

        for (project, chunk) in &pending {
            if chunk.merge
                && let Some(facts) = &chunk.session
            {
                let key = keys[&(*project, chunk.trace_id)];
                upsert_session(&mut self.tx, *project, key, facts)?;
            }
        }
        Ok(())
    }

    /// Makes sure every (project, name) has an id in `self.names`.
    fn name_ids(&mut self, wanted: &[(i64, &str)]) -> Step {
        let mut missing: Vec<(i64, &str)> = wanted
            .iter()
            .filter(|(project, name)| !self.names.contains_key(&(*project, (*name).to_owned())))
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let (projects, names): (Vec<i64>, Vec<&str>) = missing.into_iter().unzip();
        // Insert what is new (sorted: concurrent writers lock in the same order), then read
        // every id, including those another node inserted meanwhile.
        self.tx.execute(
            "INSERT INTO span_names (project_id, name)
             SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&projects, &names],
        )?;
        let rows = self.tx.query(
            "SELECT n.id, n.project_id, n.name FROM span_names n
             JOIN unnest($1::bigint[], $2::text[]) AS w (project_id, name)
               ON n.project_id = w.project_id AND n.name = w.name",
            &[&projects, &names],
        )?;
        for row in rows {
            self.names.insert((row.get(1), row.get(2)), row.get(0));
        }
        Ok(())
    }

    fn index_operations(&mut self, mut operations: Vec<(i64, i64)>) -> Step {
        if operations.is_empty() {
            return Ok(());
        }
        operations.sort_unstable();
        operations.dedup();
        let (names, traces): (Vec<i64>, Vec<i64>) = operations.into_iter().unzip();
        self.tx.execute(
            "INSERT INTO trace_operations (name, trace)
             SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
            &[&names, &traces],
        )?;
        Ok(())
    }

    /// Merges a chunk into its stored trace (see `TraceChunk::merge`); false when the trace
    /// is new (append it instead).
    fn merge_trace(&mut self, project: i64, trace: &TraceChunk) -> Step<bool> {
        // FOR UPDATE: a node merging the same session waits for this one and then reads what
        // it committed, so neither version is lost.
        let found = self.tx.query_opt(
            "SELECT id, span_count FROM traces WHERE project_id = $1 AND trace_id = $2 FOR UPDATE",
            &[&project, &&trace.trace_id.0[..]],
        )?;
        let Some(row) = found else {
            return Ok(false);
        };
        let (key, old_count): (i64, i64) = (row.get(0), row.get(1));
        let mut stored = SpanBatch::default();
        for row in self.tx.query(
            "SELECT data FROM span_chunks WHERE trace = $1 ORDER BY seq",
            &[&key],
        )? {
            stored.extend(chunk::decode_spans(row.get(0))?);
        }
        devtrace_model::session::merge_batches(&mut stored, chunk::decode_spans(&trace.data)?);
        let merged = crate::prepare::summarise(trace.trace_id, &stored);
        self.tx
            .execute("DELETE FROM span_chunks WHERE trace = $1", &[&key])?;
        self.tx.execute(
            "INSERT INTO span_chunks (trace, data) VALUES ($1, $2)",
            &[&key, &merged.data],
        )?;
        self.tx.execute(
            "UPDATE traces SET start_ns = $2, end_ns = $3, span_count = $4, error_count = $5,
                 root_name = $6, root_service = $7, root_is_real = $8, is_run = $9
             WHERE id = $1",
            &[
                &key,
                &int(merged.start_unix_nano),
                &int(merged.end_unix_nano),
                &(merged.span_count as i64),
                &(merged.error_count as i64),
                &merged.root_name,
                &merged.root_service,
                &merged.is_root,
                &merged.is_run,
            ],
        )?;
        self.tx
            .execute("DELETE FROM trace_operations WHERE trace = $1", &[&key])?;
        let wanted: Vec<(i64, &str)> = merged
            .operations
            .iter()
            .map(|n| (project, n.as_str()))
            .collect();
        self.name_ids(&wanted)?;
        let operations = merged
            .operations
            .iter()
            .map(|name| (self.names[&(project, name.clone())], key))
            .collect();
        self.index_operations(operations)?;
        if let Some(facts) = &merged.session {
            upsert_session(&mut self.tx, project, key, facts)?;
        }
        self.totals.entry(project).or_default().spans += merged.span_count as i64 - old_count;
        Ok(true)
    }

    /// Removes a trace and everything stored for it.
    fn delete_trace(&mut self, project: i64, trace_id: TraceId) -> Step {
        let id = &trace_id.0[..];
        let logs: i64 = self
            .tx
            .query_one(
                "WITH gone AS (DELETE FROM log_chunks WHERE project_id = $1 AND trace_id = $2
                               RETURNING count)
                 SELECT coalesce(sum(count), 0)::bigint FROM gone",
                &[&project, &id],
            )?
            .get(0);
        let found = self.tx.query_opt(
            "DELETE FROM traces WHERE project_id = $1 AND trace_id = $2 RETURNING id, span_count",
            &[&project, &id],
        )?;
        let totals = self.totals.entry(project).or_default();
        totals.logs -= logs;
        let Some(row) = found else {
            return Ok(());
        };
        let (key, spans): (i64, i64) = (row.get(0), row.get(1));
        totals.spans -= spans;
        totals.traces -= 1;
        for sql in [
            "DELETE FROM span_chunks WHERE trace = $1",
            "DELETE FROM trace_operations WHERE trace = $1",
            "DELETE FROM sessions WHERE trace = $1",
        ] {
            self.tx.execute(sql, &[&key])?;
        }
        Ok(())
    }

    fn delete_logs_before(&mut self, project: i64, before: u64) -> Step {
        let logs: i64 = self
            .tx
            .query_one(
                "WITH gone AS (DELETE FROM log_chunks WHERE project_id = $1 AND first_ns < $2
                               RETURNING count)
                 SELECT coalesce(sum(count), 0)::bigint FROM gone",
                &[&project, &int(before)],
            )?
            .get(0);
        self.totals.entry(project).or_default().logs -= logs;
        Ok(())
    }
}

const UPSERT_TRACES: &str = "
    INSERT INTO traces AS t (project_id, trace_id, start_ns, end_ns, span_count, error_count,
                             root_name, root_service, root_is_real, is_run)
    SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::text[], $9::boolean[], $10::boolean[])
    ON CONFLICT (project_id, trace_id) DO UPDATE SET
        start_ns = least(t.start_ns, excluded.start_ns),
        end_ns = greatest(t.end_ns, excluded.end_ns),
        span_count = t.span_count + excluded.span_count,
        error_count = t.error_count + excluded.error_count,
        root_name = CASE
            WHEN t.root_is_real THEN t.root_name
            WHEN excluded.root_is_real OR excluded.start_ns < t.start_ns THEN excluded.root_name
            ELSE t.root_name END,
        root_service = CASE
            WHEN t.root_is_real THEN t.root_service
            WHEN excluded.root_is_real OR excluded.start_ns < t.start_ns THEN excluded.root_service
            ELSE t.root_service END,
        root_is_real = t.root_is_real OR excluded.root_is_real,
        is_run = t.is_run OR excluded.is_run
    RETURNING id, project_id, trace_id, span_count";

/// The upsert's arrays: one element per trace.
#[derive(Default)]
struct SummaryColumns<'b> {
    project: Vec<i64>,
    trace_id: Vec<&'b [u8]>,
    start: Vec<i64>,
    end: Vec<i64>,
    spans: Vec<i64>,
    errors: Vec<i64>,
    root_name: Vec<&'b str>,
    root_service: Vec<&'b str>,
    root_is_real: Vec<bool>,
    is_run: Vec<bool>,
}

impl<'b> SummaryColumns<'b> {
    /// Adds one trace's summary: the chunks' summaries combined as the upsert would combine
    /// them one after another (the root names the trace; until it arrives, the earliest span).
    fn push(&mut self, group: &Group<'b>) {
        let chunks = &group.chunks;
        let named = chunks.iter().find(|c| c.is_root).unwrap_or_else(|| {
            chunks
                .iter()
                .min_by_key(|c| c.start_unix_nano)
                .expect("a group has a chunk")
        });
        self.project.push(group.project);
        self.trace_id.push(&chunks[0].trace_id.0);
        self.start.push(int(chunks
            .iter()
            .map(|c| c.start_unix_nano)
            .min()
            .unwrap_or(0)));
        self.end.push(int(chunks
            .iter()
            .map(|c| c.end_unix_nano)
            .max()
            .unwrap_or(0)));
        // Wrapping like the stored integers: an impossible count fails the table's checks.
        self.spans.push(
            chunks
                .iter()
                .fold(0i64, |n, c| n.wrapping_add(c.span_count as i64)),
        );
        self.errors.push(
            chunks
                .iter()
                .fold(0i64, |n, c| n.wrapping_add(c.error_count as i64)),
        );
        self.root_name.push(&named.root_name);
        self.root_service.push(&named.root_service);
        self.root_is_real.push(named.is_root);
        self.is_run.push(chunks.iter().any(|c| c.is_run));
    }
}

fn upsert_session(tx: &mut Transaction<'_>, project: i64, key: i64, facts: &SessionFacts) -> Step {
    tx.execute(
        "INSERT INTO sessions (trace, project_id, session_id, agent, project, title, start_ns,
             end_ns, turns, tool_calls, subagents, input_tokens, output_tokens,
             cache_read_tokens, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
         ON CONFLICT (trace) DO UPDATE SET session_id = excluded.session_id,
             agent = excluded.agent, project = excluded.project, title = excluded.title,
             start_ns = excluded.start_ns, end_ns = excluded.end_ns, turns = excluded.turns,
             tool_calls = excluded.tool_calls, subagents = excluded.subagents,
             input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
             cache_read_tokens = excluded.cache_read_tokens, errors = excluded.errors",
        &[
            &key,
            &project,
            &facts.session_id,
            &facts.agent,
            &facts.project,
            &facts.title,
            &int(facts.start_unix_nano),
            &int(facts.end_unix_nano),
            &int(facts.turns),
            &int(facts.tool_calls),
            &int(facts.subagents),
            &int(facts.input_tokens),
            &int(facts.output_tokens),
            &int(facts.cache_read_tokens),
            &int(facts.errors),
        ],
    )?;
    Ok(())
}
