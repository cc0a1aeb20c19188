//! The [`Store`] queries on PostgreSQL, each limited to the handle's project.

use super::{PgStore, int};
use crate::chunk;
use crate::{
    BlobHash, DocumentDigest, ImportCursor, Operation, OperationFilter, ProjectId, Result,
    ServiceSummary, SessionFacts, SessionQuery, SessionSummary, Store, StoreError, StoreStats,
    StoredTrace, TraceQuery, TraceSummary,
};
use devtrace_model::{LogBatch, SpanBatch, SpanKind, TraceId};
use postgres::Row;
use postgres::types::ToSql;
use std::sync::Arc;

/// The columns of a [`TraceSummary`] from `traces t`: the summary row and the trace's services.
macro_rules! summary_columns {
    () => {
        "t.trace_id, t.start_ns, t.end_ns, t.root_name, t.root_service, t.span_count, t.error_count,
     ARRAY(SELECT s.name FROM trace_services ts JOIN services s ON s.id = ts.service
           WHERE ts.trace = t.id ORDER BY s.name COLLATE \"C\"),
     coalesce(t.root_start_ns, t.start_ns), coalesce(t.root_end_ns, t.end_ns),
     coalesce(t.root_failed, t.error_count > 0)"
    };
}
const SUMMARY_COLUMNS: &str = summary_columns!();

fn summary_from_row(row: &Row) -> TraceSummary {
    let mut services: Vec<String> = row.get(7);
    services.sort();
    TraceSummary {
        services,
        trace_id: TraceId::from_slice(row.get::<_, &[u8]>(0)).unwrap_or_default(),
        start_unix_nano: row.get::<_, i64>(1).max(0) as u64,
        end_unix_nano: row.get::<_, i64>(2).max(0) as u64,
        root_name: row.get(3),
        service: row.get(4),
        span_count: row.get::<_, i64>(5).max(0) as u64,
        error_count: row.get::<_, i64>(6).max(0) as u64,
        root_start_unix_nano: row.get::<_, i64>(8).max(0) as u64,
        root_end_unix_nano: row.get::<_, i64>(9).max(0) as u64,
        root_failed: row.get(10),
    }
}

const SESSION_COLUMNS: &str = "t.trace_id, s.session_id, s.agent, s.project, s.title, s.start_ns,
     s.end_ns, s.turns, s.tool_calls, s.subagents, s.input_tokens, s.output_tokens,
     s.cache_read_tokens, s.errors";

fn session_from_row(row: &Row) -> SessionSummary {
    let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
    SessionSummary {
        trace_id: TraceId::from_slice(row.get::<_, &[u8]>(0)).unwrap_or_default(),
        facts: SessionFacts {
            session_id: row.get(1),
            agent: row.get(2),
            project: row.get(3),
            title: row.get(4),
            start_unix_nano: count(5),
            end_unix_nano: count(6),
            turns: count(7),
            tool_calls: count(8),
            subagents: count(9),
            input_tokens: count(10),
            output_tokens: count(11),
            cache_read_tokens: count(12),
            errors: count(13),
        },
    }
}

/// A statement's text and arguments, built up filter by filter (`$n` numbered as pushed).
struct Query {
    sql: String,
    args: Vec<Box<dyn ToSql + Sync>>,
}

impl Query {
    fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Appends `fragment`, with each `?` replaced by the next argument's placeholder.
    fn push(&mut self, fragment: &str, args: Vec<Box<dyn ToSql + Sync>>) {
        let mut pieces = fragment.split('?');
        self.sql.push_str(pieces.next().unwrap_or(""));
        for (piece, arg) in pieces.zip(args) {
            self.args.push(arg);
            self.sql.push_str(&format!("${}", self.args.len()));
            self.sql.push_str(piece);
        }
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.args.iter().map(|a| a.as_ref()).collect()
    }
}

impl Store for PgStore {
    fn list_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>> {
        let mut q = Query::new(format!("SELECT {SUMMARY_COLUMNS} FROM traces t WHERE"));
        q.push(" t.project_id = ?", vec![Box::new(self.project.0)]);
        if let Some(service) = &query.service {
            q.push(
                " AND EXISTS (SELECT 1 FROM trace_services ts WHERE ts.trace = t.id
                   AND ts.service = (SELECT s.id FROM services s
                                     WHERE s.project_id = ? AND s.name = ?))",
                vec![Box::new(self.project.0), Box::new(service.clone())],
            );
        }
        if let Some(name) = &query.name_contains {
            q.push(
                " AND strpos(t.root_name, ?) > 0",
                vec![Box::new(name.clone())],
            );
        }
        if let Some(operation) = &query.operation {
            q.push(
                " AND t.id IN (SELECT x.trace FROM trace_operations x
                    WHERE x.operation IN (SELECT o.id FROM operations o
                                          WHERE o.project_id = ? AND o.name = ?))",
                vec![Box::new(self.project.0), Box::new(operation.clone())],
            );
        }
        if let Some(min) = query.min_duration_nanos {
            q.push(" AND coalesce(t.root_end_ns, t.end_ns) - coalesce(t.root_start_ns, t.start_ns) >= ?", vec![Box::new(int(min))]);
        }
        if let Some(max) = query.max_duration_nanos {
            q.push(" AND coalesce(t.root_end_ns, t.end_ns) - coalesce(t.root_start_ns, t.start_ns) <= ?", vec![Box::new(int(max))]);
        }
        if query.errors_only {
            q.push(" AND t.error_count > 0", vec![]);
        }
        if query.without_errors {
            q.push(" AND t.error_count = 0", vec![]);
        }
        if query.runs_only {
            q.push(" AND t.is_run", vec![]);
        }
        if query.runtime_only {
            q.push(
                " AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.trace = t.id)",
                vec![],
            );
        }
        if let Some(since) = query.since_unix_nano {
            q.push(" AND t.start_ns >= ?", vec![Box::new(int(since))]);
        }
        if let Some(until) = query.until_unix_nano {
            q.push(" AND t.start_ns < ?", vec![Box::new(int(until))]);
        }
        if let Some(after) = &query.after {
            q.push(
                " AND (t.start_ns, t.trace_id) < (?, ?)",
                vec![
                    Box::new(int(after.start_unix_nano)),
                    Box::new(after.trace_id.0.to_vec()),
                ],
            );
        }
        q.push(
            " ORDER BY t.start_ns DESC, t.trace_id DESC LIMIT ?",
            vec![Box::new(query.limit.min(i64::MAX as usize) as i64)],
        );
        self.with_conn(|conn| {
            let rows = conn.client.query(&q.sql, &q.params())?;
            Ok(rows.iter().map(summary_from_row).collect())
        })
    }

    fn trace_ids_between(&self, low: TraceId, high: TraceId, limit: usize) -> Result<Vec<TraceId>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT trace_id FROM traces
                 WHERE project_id = $1 AND trace_id BETWEEN $2 AND $3
                 ORDER BY trace_id LIMIT $4",
            )?;
            let limit = limit.min(i64::MAX as usize) as i64;
            let rows = conn.client.query(
                &statement,
                &[&self.project.0, &&low.0[..], &&high.0[..], &limit],
            )?;
            Ok(rows
                .iter()
                .map(|row| TraceId::from_slice(row.get::<_, &[u8]>(0)).unwrap_or_default())
                .collect())
        })
    }

    fn trace_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM traces t WHERE t.project_id = $1 AND t.trace_id = $2"
            ))?;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &&trace_id.0[..]])?
                .as_ref()
                .map(summary_from_row))
        })
    }

    fn get_trace(&self, trace_id: TraceId) -> Result<Option<StoredTrace>> {
        self.with_conn(|conn| {
            // One round trip: the summary columns repeat on each chunk's row.
            let statement = conn.prepared(concat!(
                "SELECT ",
                summary_columns!(),
                ", c.data
                 FROM traces t LEFT JOIN span_chunks c ON c.trace = t.id
                 WHERE t.project_id = $1 AND t.trace_id = $2
                 ORDER BY c.seq"
            ))?;
            let rows = conn
                .client
                .query(&statement, &[&self.project.0, &&trace_id.0[..]])?;
            let Some(first) = rows.first() else {
                return Ok(None);
            };
            let summary = summary_from_row(first);
            let mut spans = SpanBatch::default();
            for row in &rows {
                if let Some(data) = row.get::<_, Option<&[u8]>>(11) {
                    spans.extend(super::dictionaries::decode_stored_spans(
                        &mut conn.client,
                        data,
                    )?);
                }
            }
            Ok(Some(StoredTrace { summary, spans }))
        })
    }

    fn logs_for_trace(&self, trace_id: TraceId) -> Result<LogBatch> {
        let mut logs = self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT data FROM log_chunks WHERE project_id = $1 AND trace_id = $2
                 ORDER BY first_ns, seq",
            )?;
            let mut logs = LogBatch::default();
            for row in conn
                .client
                .query(&statement, &[&self.project.0, &&trace_id.0[..]])?
            {
                logs.extend(chunk::decode_logs(row.get(0))?);
            }
            Ok(logs)
        })?;
        logs.logs.sort_by_key(|log| log.effective_time());
        Ok(logs)
    }

    fn usage(
        &self,
        query: &crate::metrics::UsageQuery,
        by_day: bool,
    ) -> Result<Vec<crate::metrics::UsageTotal>> {
        let sessions: Option<Vec<Vec<u8>>> = match &query.sessions {
            Some(ids) if ids.is_empty() => return Ok(Vec::new()),
            Some(ids) => Some(ids.iter().map(|id| id.0.to_vec()).collect()),
            None => None,
        };
        let since = query.since_unix_nano.unwrap_or(0);
        let increases = self.with_conn(|conn| {
            // What each point adds (see metrics.rs: resolved when read, in any arrival order).
            let statement = conn.prepared(
                "SELECT s.session, s.quantity, p.time_ns,
                     CASE WHEN s.temporality = 2
                          THEN p.value - coalesce(lag(p.value) OVER (
                                   PARTITION BY p.series, p.start_ns ORDER BY p.time_ns), 0)
                          ELSE p.value END
                 FROM metric_series s JOIN metric_points p ON p.series = s.id
                 WHERE s.project_id = $1 AND s.quantity IS NOT NULL AND s.kind = 2
                   AND ($2::text IS NULL OR s.service = $2)
                   AND ($3::bytea[] IS NULL OR s.session = ANY($3))",
            )?;
            let rows = conn
                .client
                .query(&statement, &[&self.project.0, &query.service, &sessions])?;
            Ok(rows
                .iter()
                .filter_map(|row| {
                    crate::metrics::increase_of(
                        row.get(0),
                        row.get(1),
                        row.get(2),
                        row.get(3),
                        since,
                    )
                })
                .collect::<Vec<_>>())
        })?;
        Ok(if by_day {
            crate::metrics::totals_by_day(increases)
        } else {
            crate::metrics::totals_by_session(increases)
        })
    }

    fn stats(&self) -> Result<StoreStats> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT coalesce(sum(spans), 0)::bigint, coalesce(sum(traces), 0)::bigint,
                        coalesce(sum(logs), 0)::bigint,
                        coalesce(sum(metric_points), 0)::bigint,
                        coalesce(sum(resent_spans), 0)::bigint,
                        (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
                         FROM pg_class c
                         WHERE c.relnamespace = current_schema()::regnamespace
                           AND c.relkind IN ('r', 'm'))
                 FROM counters WHERE project_id = $1",
            )?;
            let row = conn.client.query_one(&statement, &[&self.project.0])?;
            let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
            Ok(StoreStats {
                spans: count(0),
                traces: count(1),
                logs: count(2),
                metric_points: count(3),
                resent_spans: count(4),
                bytes_on_disk: count(5),
            })
        })
    }

    fn traces_with_operation(
        &self,
        operation: &OperationFilter,
        since_unix_nano: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceSummary>> {
        self.with_conn(|conn| {
            // The newest `limit` traces of each matching operation (the index walks each one's
            // traces newest first and stops), then the newest `limit` of their union.
            let statement = conn.prepared(concat!(
                "SELECT ",
                summary_columns!(),
                " FROM traces t WHERE t.id IN (
                     SELECT n.trace FROM operations o
                     JOIN services s ON s.id = o.service
                     CROSS JOIN LATERAL (
                         SELECT x.trace FROM trace_operations x JOIN traces u ON u.id = x.trace
                         WHERE x.operation = o.id AND u.start_ns >= $5
                         ORDER BY x.trace DESC LIMIT $6) n
                     WHERE o.project_id = $1 AND o.name = $2
                       AND ($3::text IS NULL OR s.name = $3)
                       AND ($4::integer IS NULL OR o.kind = $4))
                 ORDER BY t.id DESC LIMIT $6"
            ))?;
            let since = int(since_unix_nano.unwrap_or(0));
            let limit = limit.min(i64::MAX as usize) as i64;
            let kind = operation.kind.map(|k| k.to_otlp());
            let rows = conn.client.query(
                &statement,
                &[
                    &self.project.0,
                    &operation.name,
                    &operation.service,
                    &kind,
                    &since,
                    &limit,
                ],
            )?;
            let mut found: Vec<TraceSummary> = rows.iter().map(summary_from_row).collect();
            found.sort_by_key(|t| std::cmp::Reverse(t.start_unix_nano));
            Ok(found)
        })
    }

    fn services(&self, since_unix_nano: Option<u64>) -> Result<Vec<ServiceSummary>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT s.name, count(*), count(*) FILTER (WHERE t.root_service = s.name),
                        count(*) FILTER (WHERE ts.errors > 0), sum(ts.spans)::bigint,
                        min(t.start_ns), max(t.end_ns)
                 FROM traces t JOIN trace_services ts ON ts.trace = t.id
                      JOIN services s ON s.id = ts.service
                 WHERE t.project_id = $1 AND t.start_ns >= $2
                 GROUP BY s.name ORDER BY count(*) DESC, s.name COLLATE \"C\"",
            )?;
            let since = int(since_unix_nano.unwrap_or(0));
            let rows = conn.client.query(&statement, &[&self.project.0, &since])?;
            Ok(rows
                .iter()
                .map(|row| {
                    let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
                    ServiceSummary {
                        service: row.get(0),
                        traces: count(1),
                        root_traces: count(2),
                        error_traces: count(3),
                        spans: count(4),
                        first_start_unix_nano: count(5),
                        last_end_unix_nano: count(6),
                    }
                })
                .collect())
        })
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT o.name, s.name, o.kind FROM operations o JOIN services s ON s.id = o.service
                 WHERE o.project_id = $1",
            )?;
            let rows = conn.client.query(&statement, &[&self.project.0])?;
            let mut operations: Vec<Operation> = rows
                .iter()
                .map(|row| {
                    Operation::new(
                        row.get::<_, String>(0),
                        row.get::<_, String>(1),
                        SpanKind::from_otlp(row.get(2)),
                    )
                })
                .collect();
            operations.sort();
            Ok(operations)
        })
    }

    fn operation_names(&self) -> Result<Vec<String>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT DISTINCT name COLLATE \"C\" FROM operations WHERE project_id = $1
                 ORDER BY 1",
            )?;
            let rows = conn.client.query(&statement, &[&self.project.0])?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
    }

    fn is_imported(&self, digest: &DocumentDigest) -> Result<bool> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT 1 FROM imported_documents WHERE project_id = $1 AND digest = $2",
            )?;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &&digest[..]])?
                .is_some())
        })
    }

    fn query_sql(
        &self,
        sql: &str,
        limits: crate::sql::SqlLimits,
    ) -> Result<crate::sql::SqlRows, crate::sql::SqlError> {
        super::sql::query(self, sql, limits)
    }

    fn sql_schema(&self) -> &'static str {
        super::sql::SCHEMA
    }

    fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<SessionSummary>> {
        let mut q = Query::new(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s JOIN traces t ON t.id = s.trace WHERE"
        ));
        q.push(" s.project_id = ?", vec![Box::new(self.project.0)]);
        if let Some(agent) = &query.agent {
            q.push(" AND s.agent = ?", vec![Box::new(agent.clone())]);
        }
        if let Some((project, prefix)) = query.project_and_prefix() {
            q.push(
                " AND (s.project = ? OR starts_with(s.project, ?))",
                vec![Box::new(project.to_owned()), Box::new(prefix)],
            );
        }
        if let Some(since) = query.since_unix_nano {
            q.push(" AND s.start_ns >= ?", vec![Box::new(int(since))]);
        }
        if let Some((from, to)) = query.active_between {
            q.push(
                " AND s.start_ns <= ? AND s.end_ns >= ?",
                vec![Box::new(int(to)), Box::new(int(from))],
            );
        }
        q.push(
            " ORDER BY s.start_ns DESC, s.trace DESC LIMIT ?",
            vec![Box::new(query.limit.min(i64::MAX as usize) as i64)],
        );
        self.with_conn(|conn| {
            let rows = conn.client.query(&q.sql, &q.params())?;
            Ok(rows.iter().map(session_from_row).collect())
        })
    }

    fn session(&self, trace_id: TraceId) -> Result<Option<SessionSummary>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT t.trace_id, s.session_id, s.agent, s.project, s.title, s.start_ns,
                        s.end_ns, s.turns, s.tool_calls, s.subagents, s.input_tokens,
                        s.output_tokens, s.cache_read_tokens, s.errors
                 FROM sessions s JOIN traces t ON t.id = s.trace
                 WHERE t.project_id = $1 AND t.trace_id = $2",
            )?;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &&trace_id.0[..]])?
                .as_ref()
                .map(session_from_row))
        })
    }

    fn import_cursor(&self, source: &str) -> Result<Option<ImportCursor>> {
        self.with_conn(|conn| {
            let statement = conn.prepared(
                "SELECT byte_offset, fingerprint, state FROM import_cursors
                 WHERE project_id = $1 AND source = $2",
            )?;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &source])?
                .map(|row| ImportCursor {
                    source: source.to_owned(),
                    offset: row.get::<_, i64>(0).max(0) as u64,
                    fingerprint: row.get::<_, &[u8]>(1).try_into().unwrap_or([0; 32]),
                    state: row.get(2),
                }))
        })
    }

    fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let found: Option<(i64, Vec<u8>)> = self.with_conn(|conn| {
            let statement =
                conn.prepared("SELECT size, data FROM blobs WHERE project_id = $1 AND hash = $2")?;
            Ok(conn
                .client
                .query_opt(&statement, &[&self.project.0, &&hash[..]])?
                .map(|row| (row.get(0), row.get(1))))
        })?;
        found
            .map(|(size, data)| {
                zstd::bulk::decompress(&data, size.max(0) as usize)
                    .map_err(|e| StoreError::Corrupt(format!("blob: {e}")))
            })
            .transpose()
    }

    fn project(&self) -> ProjectId {
        self.project
    }

    fn in_project(&self, project: ProjectId) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(self.scoped(project)))
    }

    fn qa(&self) -> Option<&dyn crate::qa::QaQueue> {
        Some(self)
    }
}
