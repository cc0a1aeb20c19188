//! The [`Store`] queries on ClickHouse, each limited to the handle's project.
//!
//! A trace's summary is the aggregate of its `trace_parts` rows (read with `FINAL`, so a
//! replaced row counts once); a listing finds its candidates in `trace_list` first (newest
//! rows, bounded); a trace's spans are its `spans` rows by primary key, each span once (its
//! highest version). Every statement is parameterised (`{name:Type}`), never built
//! from values.

use super::rowbinary::Reader;
use super::{ChStore, hex, id_list};
use crate::chunk;
use crate::{
    BlobHash, DocumentDigest, ImportCursor, Operation, OperationFilter, ProjectId, Result,
    ServiceSummary, SessionFacts, SessionQuery, SessionSummary, Store, StoreError, StoreStats,
    StoredTrace, TraceQuery, TraceSummary,
};
use devtrace_model::{LogBatch, SpanKind, TraceId};
use std::sync::Arc;

/// The summary columns of a `GROUP BY trace_id` over `trace_parts`, with the aliases the
/// filters use.
const SUMMARY: &str = "trace_id, min(start_ns) AS start, max(end_ns) AS end,
    argMin(tuple(root_name, root_service, root_start_ns, root_end_ns, root_failed),
           tuple(1 - is_root, root_start_ns)) AS root,
    sum(span_count) AS spans, sum(error_count) AS errors,
    arraySort(groupUniqArrayArray(services)) AS all_services";

fn summary_from(rows: &mut Reader<'_>) -> Result<TraceSummary> {
    Ok(TraceSummary {
        trace_id: TraceId(rows.fixed()?),
        start_unix_nano: rows.u64()?,
        end_unix_nano: rows.u64()?,
        root_name: rows.string()?,
        service: rows.string()?,
        root_start_unix_nano: rows.u64()?,
        root_end_unix_nano: rows.u64()?,
        root_failed: rows.u8()? != 0,
        span_count: rows.u64()?,
        error_count: rows.u64()?,
        services: rows.array(Reader::string)?,
    })
}

/// A statement's parameters, named `a0`, `a1`, … as pushed.
#[derive(Default)]
struct Params(Vec<(String, String)>);

impl Params {
    /// Adds a value; the placeholder to write in the statement.
    fn add(&mut self, kind: &str, value: impl ToString) -> String {
        let name = format!("a{}", self.0.len());
        self.0.push((name.clone(), value.to_string()));
        format!("{{{name}:{kind}}}")
    }

    fn list(&self) -> Vec<(&str, String)> {
        self.0
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect()
    }
}

impl ChStore {
    fn run(&self, sql: &str, params: &Params) -> Result<Vec<u8>> {
        self.db.server.query(sql, &params.list())
    }

    /// Summaries of the project's traces matching `filter` (a `WHERE` on parts) and
    /// `having` (on the aggregates), in `order`.
    fn summaries(
        &self,
        with: &str,
        filter: &str,
        having: &str,
        order: &str,
        params: &mut Params,
    ) -> Result<Vec<TraceSummary>> {
        let project = params.add("Int64", self.project.0);
        let sql = format!(
            "{with} SELECT {SUMMARY} FROM trace_parts FINAL WHERE project = {project}{filter}
             GROUP BY trace_id HAVING 1{having} {order} FORMAT RowBinary"
        );
        let answer = self.run(&sql, params)?;
        let mut rows = Reader::new(&answer);
        let mut out = Vec::new();
        while !rows.done() {
            out.push(summary_from(&mut rows)?);
        }
        Ok(out)
    }

    fn one_trace(&self, trace_id: TraceId) -> Result<Option<TraceSummary>> {
        let mut params = Params::default();
        let id = params.add("String", trace_id.to_hex());
        let filter = format!(" AND trace_id = toFixedString(unhex({id}), 16)");
        Ok(self.summaries("", &filter, "", "", &mut params)?.pop())
    }

    fn one_u64(&self, sql: &str, params: &Params) -> Result<u64> {
        let answer = self.run(sql, params)?;
        Reader::new(&answer).u64()
    }
}

/// The conditions of a trace list: on `trace_list` rows (each a part's start, so only bounds
/// every part of a matching trace meets) and on the aggregated summaries.
fn list_conditions(query: &TraceQuery, p: &mut Params) -> (String, String) {
    let mut rows = String::new();
    let mut having = String::new();
    if let Some(since) = query.since_unix_nano {
        let since = p.add("UInt64", since);
        rows.push_str(&format!(" AND start_ns >= {since}"));
        having.push_str(&format!(" AND start >= {since}"));
    }
    if let Some(until) = query.until_unix_nano {
        let until = p.add("UInt64", until);
        rows.push_str(&format!(" AND start_ns < {until}"));
        having.push_str(&format!(" AND start < {until}"));
    }
    if let Some(service) = &query.service {
        having.push_str(&format!(
            " AND has(all_services, {})",
            p.add("String", service)
        ));
    }
    if let Some(name) = &query.name_contains {
        having.push_str(&format!(
            " AND position(root.1, {}) > 0",
            p.add("String", name)
        ));
    }
    if let Some(operation) = &query.operation {
        having.push_str(&format!(
            " AND has(groupUniqArrayArray(op_names), {})",
            p.add("String", operation)
        ));
    }
    if let Some(min) = query.min_duration_nanos {
        having.push_str(&format!(" AND root.4 - root.3 >= {}", p.add("UInt64", min)));
    }
    if let Some(max) = query.max_duration_nanos {
        having.push_str(&format!(" AND root.4 - root.3 <= {}", p.add("UInt64", max)));
    }
    if query.errors_only {
        having.push_str(" AND errors > 0");
    }
    if query.without_errors {
        having.push_str(" AND errors = 0");
    }
    if query.runs_only {
        having.push_str(" AND max(is_run) = 1");
    }
    if query.runtime_only {
        having.push_str(" AND max(is_session) = 0");
    }
    if let Some(after) = &query.after {
        let start = p.add("UInt64", after.start_unix_nano);
        let id = p.add("String", after.trace_id.to_hex());
        rows.push_str(&format!(" AND start_ns <= {start}"));
        having.push_str(&format!(
            " AND (start, trace_id) < ({start}, toFixedString(unhex({id}), 16))"
        ));
    }
    (rows, having)
}

fn project_param(params: &mut Params, project: ProjectId) -> String {
    params.add("Int64", project.0)
}

impl Store for ChStore {
    /// The newest traces matching `query`, read through `trace_list` with bounded work: the
    /// newest `window` rows of the list (for the service filtered on, or for any) name the
    /// candidates, whose summaries are aggregated from their `trace_parts` by primary key.
    /// Every trace starting after the window's oldest row has its earliest part in the window
    /// (a part starts no earlier than its trace), so the traces found starting after it are
    /// exactly the newest ones; when they are fewer than the page, the window widens.
    fn list_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>> {
        let mut window = query.limit.saturating_mul(4).saturating_add(64);
        loop {
            let mut p = Params::default();
            let (rows, having) = list_conditions(query, &mut p);
            let project = project_param(&mut p, self.project);
            let service = p.add("String", query.service.as_deref().unwrap_or(""));
            let size = p.add("UInt64", window);
            let with = format!(
                "WITH newest AS (SELECT trace_id, start_ns FROM trace_list
                   WHERE project = {project} AND service = {service}{rows}
                   ORDER BY start_ns DESC LIMIT {size}),
                 (SELECT (count(), min(start_ns)) FROM newest) AS bound"
            );
            let filter = " AND trace_id IN (SELECT trace_id FROM newest)";
            // The window's row count and oldest start, in one pass over it.
            let having = format!("{having} AND (bound.1 < {size} OR start > bound.2)");
            let limit = p.add("UInt64", query.limit);
            let order = format!("ORDER BY start DESC, trace_id DESC LIMIT {limit}");
            let found = self.summaries(&with, filter, &having, &order, &mut p)?;
            if found.len() >= query.limit {
                return Ok(found);
            }
            // Fewer than a page: done when the window held every row the filters allow.
            let mut p = Params::default();
            let (rows, _) = list_conditions(query, &mut p);
            let project = project_param(&mut p, self.project);
            let service = p.add("String", query.service.as_deref().unwrap_or(""));
            let sql = format!(
                "SELECT count() FROM (SELECT 1 FROM trace_list
                   WHERE project = {project} AND service = {service}{rows} LIMIT {})
                 FORMAT RowBinary",
                p.add("UInt64", window)
            );
            if self.one_u64(&sql, &p)? < window as u64 {
                return Ok(found);
            }
            window = window.saturating_mul(8);
        }
    }

    fn trace_ids_between(&self, low: TraceId, high: TraceId, limit: usize) -> Result<Vec<TraceId>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT DISTINCT trace_id FROM trace_parts WHERE project = {project}
               AND trace_id BETWEEN toFixedString(unhex({}), 16) AND toFixedString(unhex({}), 16)
             ORDER BY trace_id LIMIT {} FORMAT RowBinary",
            p.add("String", low.to_hex()),
            p.add("String", high.to_hex()),
            p.add("UInt64", limit)
        );
        let answer = self.run(&sql, &p)?;
        let mut rows = Reader::new(&answer);
        let mut out = Vec::new();
        while !rows.done() {
            out.push(TraceId(rows.fixed()?));
        }
        Ok(out)
    }

    fn trace_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>> {
        self.one_trace(trace_id)
    }

    fn get_trace(&self, trace_id: TraceId) -> Result<Option<StoredTrace>> {
        let Some(summary) = self.one_trace(trace_id)? else {
            return Ok(None);
        };
        let (spans, _) = self.db.stored_spans(self.project.0, trace_id)?;
        Ok(Some(StoredTrace { summary, spans }))
    }

    fn logs_for_trace(&self, trace_id: TraceId) -> Result<LogBatch> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT data FROM logs WHERE project = {project} AND has_trace = 1
               AND trace_id = toFixedString(unhex({}), 16)
             ORDER BY first_ns, seq FORMAT RowBinary",
            p.add("String", trace_id.to_hex())
        );
        let answer = self.run(&sql, &p)?;
        let mut rows = Reader::new(&answer);
        let mut logs = LogBatch::default();
        while !rows.done() {
            logs.extend(chunk::decode_logs(rows.bytes()?)?);
        }
        logs.logs.sort_by_key(|log| log.effective_time());
        Ok(logs)
    }

    fn stats(&self) -> Result<StoreStats> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT
               toUInt64(ifNull((SELECT sum(span_count) FROM trace_parts FINAL
                                WHERE project = {project}), 0)),
               toUInt64(ifNull((SELECT uniqExact(trace_id) FROM trace_parts
                                WHERE project = {project}), 0)),
               toUInt64(ifNull((SELECT sum(count) FROM logs WHERE project = {project}), 0)),
               toUInt64(ifNull((SELECT count() FROM metric_points FINAL
                                WHERE project = {project}), 0)),
               toUInt64(ifNull((SELECT sum(spans) FROM resent_spans
                                WHERE project = {project}), 0)),
               toUInt64(ifNull((SELECT sum(bytes_on_disk) FROM system.parts
                                WHERE database = currentDatabase() AND active), 0))
             FORMAT RowBinary"
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        Ok(StoreStats {
            spans: r.u64()?,
            traces: r.u64()?,
            logs: r.u64()?,
            metric_points: r.u64()?,
            resent_spans: r.u64()?,
            bytes_on_disk: r.u64()?,
        })
    }

    fn traces_with_operation(
        &self,
        operation: &OperationFilter,
        since_unix_nano: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceSummary>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let mut matching = format!("n = {}", p.add("String", &operation.name));
        if let Some(service) = &operation.service {
            matching.push_str(&format!(" AND s = {}", p.add("String", service)));
        }
        if let Some(kind) = operation.kind {
            matching.push_str(&format!(" AND k = {}", p.add("UInt8", kind.to_otlp())));
        }
        let filter = format!(
            " AND trace_id IN (SELECT trace_id FROM trace_parts FINAL
                 ARRAY JOIN op_names AS n, op_services AS s, op_kinds AS k
                 WHERE project = {project} AND {matching})"
        );
        let having = format!(
            " AND start >= {}",
            p.add("UInt64", since_unix_nano.unwrap_or(0))
        );
        let order = format!(
            "ORDER BY start DESC, trace_id DESC LIMIT {}",
            p.add("UInt64", limit)
        );
        self.summaries("", &filter, &having, &order, &mut p)
    }

    fn services(&self, since_unix_nano: Option<u64>) -> Result<Vec<ServiceSummary>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let since = p.add("UInt64", since_unix_nano.unwrap_or(0));
        let sql = format!(
            "WITH t AS (SELECT trace_id, min(start_ns) AS start, max(end_ns) AS end,
                          argMin(root_service, tuple(1 - is_root, root_start_ns)) AS root_service
                        FROM trace_parts FINAL WHERE project = {project}
                        GROUP BY trace_id HAVING start >= {since}),
                  s AS (SELECT trace_id, service, sum(n) AS spans, sum(e) AS errors
                        FROM trace_parts FINAL
                        ARRAY JOIN services AS service, service_spans AS n, service_errors AS e
                        WHERE project = {project} GROUP BY trace_id, service)
             SELECT s.service, count(), countIf(t.root_service = s.service),
                    countIf(s.errors > 0), sum(s.spans), min(t.start), max(t.end)
             FROM s INNER JOIN t ON s.trace_id = t.trace_id
             GROUP BY s.service ORDER BY count() DESC, s.service FORMAT RowBinary"
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        let mut out = Vec::new();
        while !r.done() {
            out.push(ServiceSummary {
                service: r.string()?,
                traces: r.u64()?,
                root_traces: r.u64()?,
                error_traces: r.u64()?,
                spans: r.u64()?,
                first_start_unix_nano: r.u64()?,
                last_end_unix_nano: r.u64()?,
            });
        }
        Ok(out)
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT DISTINCT n, s, k FROM trace_parts FINAL
               ARRAY JOIN op_names AS n, op_services AS s, op_kinds AS k
             WHERE project = {project} FORMAT RowBinary"
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        let mut out = Vec::new();
        while !r.done() {
            let name = r.string()?;
            let service = r.string()?;
            let kind = SpanKind::from_otlp(i32::from(r.u8()?));
            out.push(Operation::new(name, service, kind));
        }
        out.sort();
        Ok(out)
    }

    fn is_imported(&self, digest: &DocumentDigest) -> Result<bool> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT count() FROM documents WHERE project = {project}
               AND digest = toFixedString(unhex({}), 32) FORMAT RowBinary",
            p.add("String", hex(digest))
        );
        Ok(self.one_u64(&sql, &p)? > 0)
    }

    fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<SessionSummary>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let mut filter = String::new();
        if let Some(agent) = &query.agent {
            filter.push_str(&format!(" AND agent = {}", p.add("String", agent)));
        }
        if let Some((dir, prefix)) = query.project_and_prefix() {
            filter.push_str(&format!(
                " AND (project_dir = {} OR startsWith(project_dir, {}))",
                p.add("String", dir),
                p.add("String", prefix)
            ));
        }
        if let Some(since) = query.since_unix_nano {
            filter.push_str(&format!(" AND start_ns >= {}", p.add("UInt64", since)));
        }
        if let Some((from, to)) = query.active_between {
            filter.push_str(&format!(
                " AND start_ns <= {} AND end_ns >= {}",
                p.add("UInt64", to),
                p.add("UInt64", from)
            ));
        }
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions FINAL WHERE project = {project}{filter}
             ORDER BY start_ns DESC, trace_id DESC LIMIT {} FORMAT RowBinary",
            p.add("UInt64", query.limit)
        );
        sessions_from(&self.run(&sql, &p)?)
    }

    fn session(&self, trace_id: TraceId) -> Result<Option<SessionSummary>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions FINAL WHERE project = {project}
               AND trace_id = toFixedString(unhex({}), 16) FORMAT RowBinary",
            p.add("String", trace_id.to_hex())
        );
        Ok(sessions_from(&self.run(&sql, &p)?)?.pop())
    }

    fn import_cursor(&self, source: &str) -> Result<Option<ImportCursor>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT byte_offset, fingerprint, state FROM import_cursors FINAL
             WHERE project = {project} AND source = {} FORMAT RowBinary",
            p.add("String", source)
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        if r.done() {
            return Ok(None);
        }
        Ok(Some(ImportCursor {
            source: source.to_owned(),
            offset: r.u64()?,
            fingerprint: r.fixed()?,
            state: r.bytes()?.to_vec(),
        }))
    }

    fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let sql = format!(
            "SELECT size, data FROM blobs FINAL WHERE project = {project}
               AND hash = toFixedString(unhex({}), 32) FORMAT RowBinary",
            p.add("String", hex(hash))
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        if r.done() {
            return Ok(None);
        }
        let size = r.u64()?;
        let data = r.bytes()?;
        zstd::bulk::decompress(data, size as usize)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("blob: {e}")))
    }

    fn project(&self) -> ProjectId {
        self.project
    }

    fn in_project(&self, project: ProjectId) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(self.scoped(project)))
    }

    /// Checked against the allow-list on the engine's parse, then run scoped and bounded:
    /// see `sql`.
    fn query_sql(
        &self,
        sql: &str,
        limits: crate::sql::SqlLimits,
    ) -> std::result::Result<crate::sql::SqlRows, crate::sql::SqlError> {
        super::sql::query(self, sql, limits)
    }

    fn sql_schema(&self) -> &'static str {
        super::sql::SCHEMA
    }

    /// The PostgreSQL queue named beside the store, if any (ClickHouse cannot claim atomically).
    fn qa(&self) -> Option<&dyn crate::qa::QaQueue> {
        self.queue()
    }

    fn usage(
        &self,
        query: &crate::metrics::UsageQuery,
        by_day: bool,
    ) -> Result<Vec<crate::metrics::UsageTotal>> {
        let mut p = Params::default();
        let project = project_param(&mut p, self.project);
        let mut filter = String::new();
        if let Some(service) = &query.service {
            filter.push_str(&format!(" AND service = {}", p.add("String", service)));
        }
        if let Some(sessions) = &query.sessions {
            if sessions.is_empty() {
                return Ok(Vec::new());
            }
            let ids = p.add("Array(String)", id_list(sessions.iter().map(|s| s.0)));
            filter.push_str(&format!(
                " AND session IN (SELECT toFixedString(unhex(arrayJoin({ids})), 16))"
            ));
        }
        // Points in series order; what each adds is resolved here (see metrics.rs).
        let sql = format!(
            "SELECT series, start_ns, session, quantity, temporality, time_ns, value
             FROM metric_points FINAL
             WHERE project = {project} AND quantity != '' AND kind = 2{filter}
             ORDER BY series, start_ns, time_ns FORMAT RowBinary"
        );
        let answer = self.run(&sql, &p)?;
        let mut r = Reader::new(&answer);
        let since = query.since_unix_nano.unwrap_or(0);
        let mut increases = Vec::new();
        let mut previous: Option<([u8; 16], u64, f64)> = None;
        while !r.done() {
            let series: [u8; 16] = r.fixed()?;
            let start = r.u64()?;
            let session = r.nullable(|r| r.fixed::<16>())?;
            let quantity = r.string()?;
            let cumulative = r.u8()? == 2;
            let time = r.u64()?;
            let value = r.f64()?;
            let before = match previous {
                Some((s, t, v)) if s == series && t == start => v,
                _ => 0.0,
            };
            previous = Some((series, start, value));
            let added = if cumulative { value - before } else { value };
            increases.extend(crate::metrics::increase_of(
                session.map(|s| s.to_vec()),
                &quantity,
                time.min(i64::MAX as u64) as i64,
                added,
                since,
            ));
        }
        Ok(if by_day {
            crate::metrics::totals_by_day(increases)
        } else {
            crate::metrics::totals_by_session(increases)
        })
    }
}

const SESSION_COLUMNS: &str = "trace_id, session_id, agent, project_dir, title, start_ns, end_ns,
    turns, tool_calls, subagents, input_tokens, output_tokens, cache_read_tokens, errors";

fn sessions_from(answer: &[u8]) -> Result<Vec<SessionSummary>> {
    let mut r = Reader::new(answer);
    let mut out = Vec::new();
    while !r.done() {
        out.push(SessionSummary {
            trace_id: TraceId(r.fixed()?),
            facts: SessionFacts {
                session_id: r.string()?,
                agent: r.string()?,
                project: r.string()?,
                title: r.string()?,
                start_unix_nano: r.u64()?,
                end_unix_nano: r.u64()?,
                turns: r.u64()?,
                tool_calls: r.u64()?,
                subagents: r.u64()?,
                input_tokens: r.u64()?,
                output_tokens: r.u64()?,
                cache_read_tokens: r.u64()?,
                errors: r.u64()?,
            },
        });
    }
    Ok(out)
}
