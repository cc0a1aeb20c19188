//! The write side of the PostgreSQL store: what the group-commit writer calls.
//!
//! One transaction per group of requests, built to need few round trips whatever its size:
//! appended chunks are gathered per trace, their summaries upserted in one `INSERT … SELECT
//! FROM unnest(…) ON CONFLICT` (sorted by trace, so two nodes writing the same traces take
//! their row locks in the same order and cannot deadlock), the chunks themselves streamed
//! with `COPY … (FORMAT binary)`, the operation and service indexes filled with more `unnest`s.
//! Merges (sessions) and deletions go trace by trace, in order. The transaction ends with a
//! `pg_notify`, delivered to every node's listener when (and only if) it commits.
//!
//! A span is (trace id, span id) and is stored once, the first stored version winning, also
//! when several nodes receive it: a new trace's row is inserted (`ON CONFLICT DO NOTHING`); a
//! trace stored before is locked (`FOR UPDATE`, in trace order) and its stored span ids are
//! read under that lock, so a node appending to the same trace waits and then sees them. The
//! ids come from the writer's cache of recent traces ([`crate::recent`], keyed by the trace
//! row, trusted only while the row's span count still equals the ids it holds) or, on a miss,
//! from the stored chunks.

use super::{Conn, Database, int, is_transient, schema, unix_now_nanos};
use crate::chunk;
use crate::prepare::{TraceChunk, without_stored};
use crate::recent::RecentSpans;
use crate::{Operation, Result, SessionFacts, StoreError, StoreWriter, WriteBatch};
use devtrace_model::{SpanBatch, SpanId, TraceId};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use postgres::Transaction;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use std::borrow::Cow;

/// Owned by the writer thread (or an importer).
pub struct PgWriter {
    conn: Conn,
    database: Database,
    /// This writer's row in `counters` (one per process and project).
    writer_id: i64,
    /// Service and operation ids, remembered across transactions.
    index: Index,
    /// The stored span ids of recently written traces, keyed by [`row_key`].
    recent: RecentSpans,
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
        schema::migrate(&mut conn, &database, after_migration)?;
        super::dictionaries::adopt_newest(&mut conn.client)?;
        let writer_id: i64 = conn
            .client
            .query_one("SELECT nextval('writers')", &[])?
            .get(0);
        let channel = super::listen::channel(&mut conn)?;
        Ok(Self {
            conn,
            database,
            writer_id,
            index: Index::default(),
            recent: RecentSpans::new(crate::recent::DEFAULT_CAPACITY),
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
                index: &mut self.index,
                recent: &mut self.recent,
                series: &mut self.series,
                channel: &self.channel,
                totals: HashMap::new(),
            }
            .run(batches);
            match outcome {
                Ok(()) => return Ok(()),
                Err(failure) => {
                    // Ids inserted by the failed transaction were rolled back with it, and
                    // what it appended is not stored.
                    self.index.clear();
                    self.series.clear();
                    self.recent.clear();
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
            "VACUUM (ANALYZE) traces, span_chunks, log_chunks, trace_operations, trace_services,
                 sessions, blobs, metric_series, metric_points",
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

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Postgres(error) => error.into(),
            Failure::Store(error) => error,
        }
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
    /// Spans received again and not stored.
    resent: i64,
}

struct Transact<'a> {
    tx: Transaction<'a>,
    writer_id: i64,
    index: &'a mut Index,
    recent: &'a mut RecentSpans,
    series: &'a mut HashMap<(i64, [u8; 16]), i64>,
    channel: &'a str,
    totals: HashMap<i64, Totals>,
}

/// Appended chunks of one trace gathered in this transaction, each holding only spans that no
/// earlier chunk of the group holds.
struct Group<'b> {
    project: i64,
    trace_id: TraceId,
    chunks: Vec<Cow<'b, TraceChunk>>,
}

/// The key under which [`RecentSpans`] holds a stored trace's span ids: its row id, which no
/// other project or later trace of the same id ever has.
fn row_key(key: i64) -> TraceId {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&key.to_be_bytes());
    TraceId(id)
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
                totals.resent,
            ) == (0, 0, 0, 0, 0)
            {
                continue;
            }
            self.tx.execute(
                "INSERT INTO counters AS c
                     (writer, project_id, spans, traces, logs, metric_points, resent_spans)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (writer, project_id) DO UPDATE SET
                     spans = c.spans + excluded.spans, traces = c.traces + excluded.traces,
                     logs = c.logs + excluded.logs,
                     metric_points = c.metric_points + excluded.metric_points,
                     resent_spans = c.resent_spans + excluded.resent_spans",
                &[
                    &self.writer_id,
                    project,
                    &totals.spans,
                    &totals.traces,
                    &totals.logs,
                    &totals.metric_points,
                    &totals.resent,
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

    /// Appends chunks, each span once (see the module documentation): new traces' rows in
    /// one insert, stored traces locked and their stored span ids looked up, what is left
    /// upserted, copied and indexed.
    fn append(&mut self, pending: Vec<(i64, &TraceChunk)>) -> Step {
        if pending.is_empty() {
            return Ok(());
        }
        let mut groups = self.gather(&pending)?;
        groups.sort_by_key(|g| (g.project, g.trace_id.0));

        let (new_keys, stored) = self.trace_rows(&groups)?;
        let read = self.stored_span_ids(&stored)?;
        // What is left to store, by trace row.
        let mut kept: Vec<(i64, i64, Cow<'_, TraceChunk>)> = Vec::new();
        let mut updates: Vec<usize> = Vec::new();
        for (i, group) in groups.iter_mut().enumerate() {
            let project = group.project;
            if let Some(&key) = new_keys.get(&i) {
                self.totals.entry(project).or_default().traces += 1;
                kept.extend(group.chunks.drain(..).map(|c| (project, key, c)));
                continue;
            }
            let (key, _) = stored[&i];
            let holds = |id: &SpanId| match read.get(&key) {
                Some(ids) => ids.contains(id),
                None => self
                    .recent
                    .known(&row_key(key))
                    .is_some_and(|known| known.holds(id)),
            };
            let mut left = Vec::new();
            let mut resent = 0i64;
            for chunk in group.chunks.drain(..) {
                let again = chunk.span_ids.iter().filter(|id| holds(id)).count();
                resent += again as i64;
                if again == 0 {
                    left.push(chunk);
                } else if again < chunk.span_ids.len() {
                    left.extend(without_stored(&chunk, holds)?.map(Cow::Owned));
                }
            }
            self.totals.entry(project).or_default().resent += resent;
            if !left.is_empty() {
                group.chunks = left;
                updates.push(i);
            }
        }
        if !updates.is_empty() {
            let mut columns = SummaryColumns::default();
            for &i in &updates {
                columns.push(&groups[i]);
            }
            let upsert = self.tx.prepare_typed(UPSERT_TRACES, &[])?;
            self.tx.execute(&upsert, &columns.params())?;
            for i in updates {
                let (key, _) = stored[&i];
                let project = groups[i].project;
                kept.extend(groups[i].chunks.drain(..).map(|c| (project, key, c)));
            }
        }
        if kept.is_empty() {
            return Ok(());
        }

        // Trace rows this transaction made have no index rows yet.
        let made: HashSet<i64> = new_keys.values().copied().collect();
        self.copy_and_index(kept, read, made)
    }

    /// Each trace's row: inserted (new, its key), or found and locked (stored before, its key
    /// and span count). A row deleted by another node between the two is inserted on the next
    /// round.
    #[allow(clippy::type_complexity)]
    fn trace_rows(
        &mut self,
        groups: &[Group<'_>],
    ) -> Step<(HashMap<usize, i64>, HashMap<usize, (i64, i64)>)> {
        let mut new_keys: HashMap<usize, i64> = HashMap::new();
        let mut stored: HashMap<usize, (i64, i64)> = HashMap::new();
        let mut rounds = 0;
        loop {
            let open: Vec<usize> = (0..groups.len())
                .filter(|i| !new_keys.contains_key(i) && !stored.contains_key(i))
                .collect();
            if open.is_empty() {
                return Ok((new_keys, stored));
            }
            rounds += 1;
            if rounds > ATTEMPTS {
                return Err(StoreError::Unsupported(
                    "traces kept being deleted while spans were appended to them".into(),
                )
                .into());
            }
            let slot: HashMap<(i64, TraceId), usize> = open
                .iter()
                .map(|&i| ((groups[i].project, groups[i].trace_id), i))
                .collect();
            let mut columns = SummaryColumns::default();
            for &i in &open {
                columns.push(&groups[i]);
            }
            let insert = self.tx.prepare_typed(INSERT_NEW_TRACES, &[])?;
            for row in self.tx.query(&insert, &columns.params())? {
                let trace_id = TraceId::from_slice(row.get::<_, &[u8]>(2)).unwrap_or_default();
                new_keys.insert(slot[&(row.get(1), trace_id)], row.get(0));
            }
            let (projects, ids): (Vec<i64>, Vec<&[u8]>) = open
                .iter()
                .filter(|i| !new_keys.contains_key(i))
                .map(|&i| (groups[i].project, &groups[i].trace_id.0[..]))
                .unzip();
            if projects.is_empty() {
                continue;
            }
            for row in self.tx.query(LOCK_STORED_TRACES, &[&projects, &ids])? {
                let trace_id = TraceId::from_slice(row.get::<_, &[u8]>(2)).unwrap_or_default();
                stored.insert(slot[&(row.get(1), trace_id)], (row.get(0), row.get(3)));
            }
        }
    }

    /// The stored span ids of the stored traces the cache does not know (in full).
    fn stored_span_ids(
        &mut self,
        stored: &HashMap<usize, (i64, i64)>,
    ) -> Step<HashMap<i64, HashSet<SpanId>>> {
        let missing: Vec<i64> = stored
            .values()
            .filter(|(key, count)| {
                self.recent
                    .known(&row_key(*key))
                    .is_none_or(|known| known.len() as i64 != *count)
            })
            .map(|(key, _)| *key)
            .collect();
        let mut read: HashMap<i64, HashSet<SpanId>> = HashMap::new();
        if !missing.is_empty() {
            for row in self.tx.query(
                "SELECT trace, data FROM span_chunks WHERE trace = ANY($1) ORDER BY trace, seq",
                &[&missing],
            )? {
                let ids = read.entry(row.get(0)).or_default();
                ids.extend(
                    super::dictionaries::decode_stored_spans(&mut self.tx, row.get(1))?
                        .spans
                        .iter()
                        .map(|s| s.span_id),
                );
            }
            for key in &missing {
                self.recent.forget(&row_key(*key));
                read.entry(*key).or_default();
            }
        }
        Ok(read)
    }

    /// Copies what is left into span_chunks, indexes it (`made`: the trace rows this
    /// transaction inserted), and tells the cache and the totals.
    fn copy_and_index(
        &mut self,
        kept: Vec<(i64, i64, Cow<'_, TraceChunk>)>,
        read: HashMap<i64, HashSet<SpanId>>,
        made: HashSet<i64>,
    ) -> Step {
        super::dictionaries::keep_for(&mut self.tx, kept.iter().map(|(_, _, c)| &c.data[..]))?;
        let sink = self
            .tx
            .copy_in("COPY span_chunks (trace, data) FROM STDIN (FORMAT binary)")?;
        let mut copy = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::BYTEA]);
        for (_, key, chunk) in &kept {
            copy.write(&[key, &chunk.data])?;
        }
        copy.finish()?;
        let entries: Vec<(i64, i64, &TraceChunk)> =
            kept.iter().map(|(p, k, c)| (*p, *k, c.as_ref())).collect();
        self.index
            .add(&mut self.tx, &entries, |row| made.contains(&row))?;

        for (key, ids) in read {
            let ids: Vec<SpanId> = ids.into_iter().collect();
            self.recent.add(row_key(key), &ids);
        }
        for (project, key, chunk) in &kept {
            self.totals.entry(*project).or_default().spans += chunk.span_count as i64;
            self.recent.add(row_key(*key), &chunk.span_ids);
            if chunk.merge
                && let Some(facts) = &chunk.session
            {
                upsert_session(&mut self.tx, *project, *key, facts)?;
            }
        }
        Ok(())
    }

    /// The pending chunks by trace, a span id that an earlier chunk of the same trace holds
    /// left out of the later one (first version wins; counted as re-sent).
    fn gather<'b>(&mut self, pending: &[(i64, &'b TraceChunk)]) -> Step<Vec<Group<'b>>> {
        let mut groups: Vec<Group<'b>> = Vec::new();
        let mut seen: Vec<HashSet<SpanId>> = Vec::new();
        let mut slot: HashMap<(i64, TraceId), usize> = HashMap::new();
        for &(project, chunk) in pending {
            self.totals.entry(project).or_default().resent += chunk.repeated as i64;
            let index = *slot.entry((project, chunk.trace_id)).or_insert_with(|| {
                groups.push(Group {
                    project,
                    trace_id: chunk.trace_id,
                    chunks: Vec::new(),
                });
                seen.push(HashSet::new());
                groups.len() - 1
            });
            let ids = &mut seen[index];
            let again = chunk.span_ids.iter().filter(|id| ids.contains(id)).count();
            self.totals.entry(project).or_default().resent += again as i64;
            if again == 0 {
                groups[index].chunks.push(Cow::Borrowed(chunk));
            } else if again < chunk.span_ids.len()
                && let Some(left) = without_stored(chunk, |id| ids.contains(id))?
            {
                groups[index].chunks.push(Cow::Owned(left));
            }
            ids.extend(chunk.span_ids.iter().copied());
        }
        Ok(groups)
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
        let mut stored = self.spans_of(
            "SELECT data FROM span_chunks WHERE trace = $1 ORDER BY seq",
            key,
        )?;
        self.unindex_trace(project, key, &stored)?;
        devtrace_model::session::merge_batches(&mut stored, chunk::decode_spans(&trace.data)?);
        let merged = crate::prepare::summarise(trace.trace_id, &stored);
        replace_trace(&mut self.tx, key, &merged, Columns::All)?;
        self.index
            .add(&mut self.tx, &[(project, key, &merged)], |_| false)?;
        self.recent.forget(&row_key(key));
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
        let stored = self.spans_of(
            "DELETE FROM span_chunks WHERE trace = $1 RETURNING data",
            key,
        )?;
        self.tx
            .execute("DELETE FROM sessions WHERE trace = $1", &[&key])?;
        self.unindex_trace(project, key, &stored)?;
        self.recent.forget(&row_key(key));
        Ok(())
    }

    /// The spans of the chunks `sql` returns (`data`) for trace row `key`.
    fn spans_of(&mut self, sql: &str, key: i64) -> Step<SpanBatch> {
        let mut spans = SpanBatch::default();
        for row in self.tx.query(sql, &[&key])? {
            spans.extend(super::dictionaries::decode_stored_spans(
                &mut self.tx,
                row.get(0),
            )?);
        }
        Ok(spans)
    }

    /// Removes trace row `key`, whose stored spans are `stored`, from the operation and
    /// service indexes. The operation index has no index by trace (it would cost every
    /// insert a second B-tree entry): its rows are found by key, (operation, trace), from the
    /// operations of the spans. A row this misses (an operation named differently by an older
    /// devtrace) names a trace row id that is never used again, so no read ever sees it.
    fn unindex_trace(&mut self, project: i64, key: i64, stored: &SpanBatch) -> Step {
        let operations = crate::prepare::distinct_operations(stored);
        let ids = self.index.ids_of(&mut self.tx, project, &operations)?;
        self.tx.execute(
            "DELETE FROM trace_operations WHERE operation = ANY($1) AND trace = $2",
            &[&ids, &key],
        )?;
        self.tx
            .execute("DELETE FROM trace_services WHERE trace = $1", &[&key])?;
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
                             root_name, root_service, root_is_real, is_run,
                             root_start_ns, root_end_ns, root_failed)
    SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::text[], $9::boolean[], $10::boolean[],
                         $11::bigint[], $12::bigint[], $13::boolean[])
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
        root_start_ns = CASE
            WHEN t.root_is_real THEN t.root_start_ns
            WHEN excluded.root_is_real OR excluded.start_ns < t.start_ns THEN excluded.root_start_ns
            ELSE t.root_start_ns END,
        root_end_ns = CASE
            WHEN t.root_is_real THEN t.root_end_ns
            WHEN excluded.root_is_real OR excluded.start_ns < t.start_ns THEN excluded.root_end_ns
            ELSE t.root_end_ns END,
        root_failed = CASE
            WHEN t.root_is_real THEN t.root_failed
            WHEN excluded.root_is_real OR excluded.start_ns < t.start_ns THEN excluded.root_failed
            ELSE t.root_failed END,
        root_is_real = t.root_is_real OR excluded.root_is_real,
        is_run = t.is_run OR excluded.is_run
    RETURNING id";

/// New traces' rows; returns those inserted (a trace stored before is left as it is).
const INSERT_NEW_TRACES: &str = "
    INSERT INTO traces (project_id, trace_id, start_ns, end_ns, span_count, error_count,
                        root_name, root_service, root_is_real, is_run,
                        root_start_ns, root_end_ns, root_failed)
    SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::text[], $9::boolean[], $10::boolean[],
                         $11::bigint[], $12::bigint[], $13::boolean[])
    ON CONFLICT (project_id, trace_id) DO NOTHING
    RETURNING id, project_id, trace_id";

/// Stored traces' rows, locked in trace order (the sort runs before the lock) until the
/// transaction ends: another node appending to one of them waits, then sees these spans.
const LOCK_STORED_TRACES: &str = "
    SELECT t.id, t.project_id, t.trace_id, t.span_count
    FROM traces t JOIN unnest($1::bigint[], $2::bytea[]) AS w (project_id, trace_id)
         ON t.project_id = w.project_id AND t.trace_id = w.trace_id
    ORDER BY t.project_id, t.trace_id
    FOR UPDATE OF t";

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
    root_start: Vec<i64>,
    root_end: Vec<i64>,
    root_failed: Vec<bool>,
}

impl<'b> SummaryColumns<'b> {
    /// Adds one trace's summary: the chunks' summaries combined as the upsert would combine
    /// them one after another (the root names the trace; until it arrives, the earliest span).
    fn push(&mut self, group: &'b Group<'_>) {
        let chunks = &group.chunks;
        let named = chunks.iter().find(|c| c.is_root).unwrap_or_else(|| {
            chunks
                .iter()
                .min_by_key(|c| c.start_unix_nano)
                .expect("a group has a chunk")
        });
        self.project.push(group.project);
        self.trace_id.push(&group.trace_id.0);
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
        self.root_start.push(int(named.root_start_unix_nano));
        self.root_end.push(int(named.root_end_unix_nano));
        self.root_failed.push(named.root_failed);
    }

    /// The arrays as the statements' parameters `$1` to `$13`.
    fn params(&self) -> [&(dyn postgres::types::ToSql + Sync); 13] {
        [
            &self.project,
            &self.trace_id,
            &self.start,
            &self.end,
            &self.spans,
            &self.errors,
            &self.root_name,
            &self.root_service,
            &self.root_is_real,
            &self.is_run,
            &self.root_start,
            &self.root_end,
            &self.root_failed,
        ]
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

/// Which summary columns [`replace_trace`] writes: those of the current schema, or those a
/// migration before the root span's columns (5) finds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Columns {
    All,
    BeforeRoot,
}

/// Replaces everything stored for trace `key` by `whole`, one chunk summarising the whole
/// trace: its chunks and its summary row (the indexes are the caller's).
fn replace_trace(tx: &mut Transaction<'_>, key: i64, whole: &TraceChunk, columns: Columns) -> Step {
    tx.execute("DELETE FROM span_chunks WHERE trace = $1", &[&key])?;
    if columns == Columns::All {
        // Before migration 6 there is no table to keep a dictionary in: the caller encodes
        // without one.
        super::dictionaries::keep_for(tx, [&whole.data[..]])?;
    }
    tx.execute(
        "INSERT INTO span_chunks (trace, data) VALUES ($1, $2)",
        &[&key, &whole.data],
    )?;
    tx.execute(
        "UPDATE traces SET start_ns = $2, end_ns = $3, span_count = $4, error_count = $5,
             root_name = $6, root_service = $7, root_is_real = $8, is_run = $9
         WHERE id = $1",
        &[
            &key,
            &int(whole.start_unix_nano),
            &int(whole.end_unix_nano),
            &(whole.span_count as i64),
            &(whole.error_count as i64),
            &whole.root_name,
            &whole.root_service,
            &whole.is_root,
            &whole.is_run,
        ],
    )?;
    if columns == Columns::All {
        tx.execute(
            "UPDATE traces SET root_start_ns = $2, root_end_ns = $3, root_failed = $4
             WHERE id = $1",
            &[
                &key,
                &int(whole.root_start_unix_nano),
                &int(whole.root_end_unix_nano),
                &whole.root_failed,
            ],
        )?;
    }
    Ok(())
}

/// Inserts (operation, trace row) pairs; `fresh`: their traces have no index rows yet, so no
/// row can conflict and none is checked.
fn insert_operations(tx: &mut Transaction<'_>, pairs: Vec<(i64, i64)>, fresh: bool) -> Step {
    if pairs.is_empty() {
        return Ok(());
    }
    let (operations, traces): (Vec<i64>, Vec<i64>) = pairs.into_iter().unzip();
    let sql = if fresh {
        "INSERT INTO trace_operations (operation, trace)
         SELECT * FROM unnest($1::bigint[], $2::bigint[])"
    } else {
        "INSERT INTO trace_operations (operation, trace)
         SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING"
    };
    tx.execute(sql, &[&operations, &traces])?;
    Ok(())
}

/// Inserts ((trace row, service), (spans, errors)), added to a trace's stored counts unless
/// `fresh` (its trace has no index rows yet: nothing to add to, nothing checked).
fn insert_services(
    tx: &mut Transaction<'_>,
    counts: Vec<((i64, i64), (i64, i64))>,
    fresh: bool,
) -> Step {
    if counts.is_empty() {
        return Ok(());
    }
    let (mut traces, mut services, mut spans, mut errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((trace, service), (n, failed)) in counts {
        traces.push(trace);
        services.push(service);
        spans.push(n);
        errors.push(failed);
    }
    let sql = if fresh {
        "INSERT INTO trace_services (trace, service, spans, errors)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])"
    } else {
        "INSERT INTO trace_services AS ts (trace, service, spans, errors)
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
         ON CONFLICT (trace, service) DO UPDATE SET spans = ts.spans + excluded.spans,
             errors = ts.errors + excluded.errors"
    };
    tx.execute(sql, &[&traces, &services, &spans, &errors])?;
    Ok(())
}

/// (project, service name) → id and (project, operation) → id, remembered across
/// transactions by a writer; and what fills the indexes.
#[derive(Default)]
struct Index {
    services: HashMap<(i64, String), i64>,
    operations: HashMap<(i64, Operation), i64>,
}

impl Index {
    fn clear(&mut self) {
        self.services.clear();
        self.operations.clear();
    }

    /// Adds chunks' operations and services to the indexes of their traces: (project, trace
    /// row, chunk). `unindexed(row)` says that a trace row has no index rows yet (this
    /// transaction made it): its rows are inserted without a conflict check, which costs
    /// PostgreSQL about 40 % less than `INSERT … ON CONFLICT` a row.
    fn add(
        &mut self,
        tx: &mut Transaction<'_>,
        entries: &[(i64, i64, &TraceChunk)],
        unindexed: impl Fn(i64) -> bool,
    ) -> Step {
        let services: Vec<(i64, &str)> = entries
            .iter()
            .flat_map(|(project, _, chunk)| {
                let named = chunk.services.iter().map(|s| s.service.as_str());
                let operated = chunk.operations.iter().map(|o| o.service.as_str());
                named.chain(operated).map(|name| (*project, name))
            })
            .collect();
        self.service_ids(tx, &services)?;
        let operations: Vec<(i64, &Operation)> = entries
            .iter()
            .flat_map(|(project, _, chunk)| chunk.operations.iter().map(|o| (*project, o)))
            .collect();
        self.operation_ids(tx, &operations)?;

        let mut pairs: Vec<(i64, i64)> = Vec::new();
        let mut counts: std::collections::BTreeMap<(i64, i64), (i64, i64)> = Default::default();
        for (project, key, chunk) in entries {
            for operation in &chunk.operations {
                pairs.push((self.operations[&(*project, operation.clone())], *key));
            }
            for service in &chunk.services {
                let id = self.services[&(*project, service.service.clone())];
                let entry = counts.entry((*key, id)).or_default();
                entry.0 += service.spans as i64;
                entry.1 += service.errors as i64;
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let (fresh, known): (Vec<_>, Vec<_>) = pairs.into_iter().partition(|p| unindexed(p.1));
        insert_operations(tx, fresh, true)?;
        insert_operations(tx, known, false)?;
        let (fresh, known): (Vec<_>, Vec<_>) = counts.into_iter().partition(|c| unindexed(c.0.0));
        insert_services(tx, fresh, true)?;
        insert_services(tx, known, false)?;
        Ok(())
    }

    /// The ids of a project's operations (made when missing).
    fn ids_of(
        &mut self,
        tx: &mut Transaction<'_>,
        project: i64,
        operations: &[Operation],
    ) -> Step<Vec<i64>> {
        let services: Vec<(i64, &str)> = operations
            .iter()
            .map(|o| (project, o.service.as_str()))
            .collect();
        self.service_ids(tx, &services)?;
        let wanted: Vec<(i64, &Operation)> = operations.iter().map(|o| (project, o)).collect();
        self.operation_ids(tx, &wanted)?;
        Ok(operations
            .iter()
            .map(|o| self.operations[&(project, o.clone())])
            .collect())
    }

    /// Makes sure every (project, service) has an id in `self.services`.
    fn service_ids(&mut self, tx: &mut Transaction<'_>, wanted: &[(i64, &str)]) -> Step {
        let mut missing: Vec<(i64, &str)> = wanted
            .iter()
            .filter(|(project, name)| !self.services.contains_key(&(*project, (*name).to_owned())))
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
        tx.execute(
            "INSERT INTO services (project_id, name)
             SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING",
            &[&projects, &names],
        )?;
        for row in tx.query(
            "SELECT s.id, s.project_id, s.name FROM services s
             JOIN unnest($1::bigint[], $2::text[]) AS w (project_id, name)
               ON s.project_id = w.project_id AND s.name = w.name",
            &[&projects, &names],
        )? {
            self.services.insert((row.get(1), row.get(2)), row.get(0));
        }
        Ok(())
    }

    /// Makes sure every (project, operation) has an id in `self.operations` (their services
    /// have theirs already).
    fn operation_ids(&mut self, tx: &mut Transaction<'_>, wanted: &[(i64, &Operation)]) -> Step {
        let mut missing: Vec<(i64, &Operation)> = wanted
            .iter()
            .filter(|(project, operation)| {
                !self
                    .operations
                    .contains_key(&(*project, (*operation).clone()))
            })
            .copied()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let (mut projects, mut names, mut services, mut kinds) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (project, operation) in &missing {
            projects.push(*project);
            names.push(operation.name.as_str());
            services.push(self.services[&(*project, operation.service.clone())]);
            kinds.push(operation.kind.to_otlp());
        }
        tx.execute(
            "INSERT INTO operations (project_id, name, service, kind)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::integer[])
             ON CONFLICT DO NOTHING",
            &[&projects, &names, &services, &kinds],
        )?;
        let by_id: HashMap<(i64, &str, i64, i32), &Operation> = missing
            .iter()
            .zip(&services)
            .map(|((project, operation), service)| {
                (
                    (
                        *project,
                        operation.name.as_str(),
                        *service,
                        operation.kind.to_otlp(),
                    ),
                    *operation,
                )
            })
            .collect();
        for row in tx.query(
            "SELECT o.id, o.project_id, o.name, o.service, o.kind FROM operations o
             JOIN unnest($1::bigint[], $2::text[], $3::bigint[], $4::integer[])
                  AS w (project_id, name, service, kind)
               ON o.project_id = w.project_id AND o.name = w.name AND o.service = w.service
                  AND o.kind = w.kind",
            &[&projects, &names, &services, &kinds],
        )? {
            let name: &str = row.get(2);
            let found = (row.get::<_, i64>(1), name, row.get::<_, i64>(3), row.get(4));
            if let Some(operation) = by_id.get(&found) {
                self.operations
                    .insert((found.0, (*operation).clone()), row.get(0));
            }
        }
        Ok(())
    }
}

/// Work a migration needs beyond SQL. Migration 3 fills the operation and service indexes from
/// the stored chunks, one trace at a time; a trace holding a span id twice (stored before
/// re-sent spans were recognised) is rewritten as one chunk without the later copies, its
/// summary recomputed and the counters corrected.
pub(crate) fn after_migration(tx: &mut Transaction<'_>, version: usize) -> Result<()> {
    if version != 3 {
        return Ok(());
    }
    let mut index = Index::default();
    let mut removed: HashMap<i64, i64> = HashMap::new();
    let traces: Vec<(i64, i64)> = tx
        .query("SELECT id, project_id FROM traces ORDER BY id", &[])?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    for (key, project) in traces {
        let mut batch = SpanBatch::default();
        for row in tx.query(
            "SELECT data FROM span_chunks WHERE trace = $1 ORDER BY seq",
            &[&key],
        )? {
            batch.extend(chunk::decode_spans(row.get(0))?);
        }
        let before = batch.spans.len();
        let mut seen = HashSet::with_capacity(before);
        batch.spans.retain(|s| seen.insert(s.span_id));
        let Some(first) = batch.spans.first() else {
            continue;
        };
        let summary = crate::prepare::summarise(first.trace_id, &batch);
        let gone = (before - batch.spans.len()) as i64;
        if gone > 0 {
            // Migration 3 runs before the root span's columns exist (5): they stay NULL, read
            // as the trace's start and end. It runs before the dictionaries' table (6) too.
            let plain = TraceChunk {
                data: chunk::encode_spans_without_dictionary(&batch),
                ..summary.clone()
            };
            replace_trace(tx, key, &plain, Columns::BeforeRoot)?;
            *removed.entry(project).or_default() += gone;
        }
        index.add(tx, &[(project, key, &summary)], |_| false)?;
    }
    if !removed.is_empty() {
        let writer: i64 = tx.query_one("SELECT nextval('writers')", &[])?.get(0);
        for (project, gone) in removed {
            tx.execute(
                "INSERT INTO counters (writer, project_id, spans, resent_spans)
                 VALUES ($1, $2, $3, $4)",
                &[&writer, &project, &-gone, &gone],
            )?;
        }
    }
    Ok(())
}
