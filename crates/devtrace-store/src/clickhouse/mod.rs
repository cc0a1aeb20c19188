//! The scale-out backend: a ClickHouse database shared by every `devtrace serve` node of a team,
//! spoken to over ClickHouse's HTTP interface.
//!
//! - [`http`]: the HTTP client (`ureq`, TLS with rustls for `clickhouses://`), errors that say
//!   what to fix.
//! - [`rowbinary`]: the `RowBinary` format inserts send and selects read.
//! - [`body`]: a span row's columns and body, each part of the span stored once.
//! - [`schema`]: the tables (single node and the cluster variant), created when missing, and
//!   the server version devtrace needs.
//! - [`write`]: the group-commit writer's backend.
//! - [`read`]: the [`Store`](crate::Store) queries.
//! - [`sql`]: the read-only SQL tool: its views, the allow-list checked on the engine's parse,
//!   and the bounded, project-scoped run.
//! - [`accounts`]: projects and tokens.
//! - [`feed`]: the `commits` table every write appends to and every node polls, so each
//!   node's live views hear of every node's writes.
//!
//! Sessions, projects and tokens are ClickHouse tables too (`ReplacingMergeTree`, read with
//! `FINAL`): a project's id is derived from its name, so nodes creating the same project at
//! once agree without a lock. The QA job queue needs atomic claims, which ClickHouse does not
//! give: it lives in a PostgreSQL database named beside the store ([`ChStore::open_with_queue`],
//! `--queue-store`), and without one this backend has none ([`Store::qa`](crate::Store::qa) is
//! `None`); see docs/team.md.

mod accounts;
mod body;
pub(crate) mod feed;
pub(crate) mod http;
mod read;
pub(crate) mod rowbinary;
pub mod schema;
mod sql;
mod write;

pub use sql::SCHEMA;
pub use write::ChWriter;

use crate::postgres::PgStore;
use crate::{ProjectId, Result, SpanBatch};
use devtrace_model::{SpanId, TraceId};
use http::Server;
use rowbinary::Reader;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) use crate::postgres::url_without_password;

/// The read side, scoped to one project; cloning is cheap.
#[derive(Clone)]
pub struct ChStore {
    db: Arc<ClickHouse>,
    project: ProjectId,
    /// The QA job queue: a PostgreSQL store beside this one, scoped to the same project.
    queue: Option<PgStore>,
}

impl ChStore {
    /// Connects to `url`, creating devtrace's database and tables when missing.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with_queue(url, None)
    }

    /// Connects to `url` and, when `queue` names one, to the PostgreSQL database that keeps the
    /// QA job queue (migrated like any PostgreSQL store; only its queue tables are used).
    pub fn open_with_queue(url: &str, queue: Option<&str>) -> Result<Self> {
        let db = Arc::new(ClickHouse::open(url)?);
        made_with_tables(&db)?;
        Ok(Self {
            db,
            project: ProjectId::DEFAULT,
            queue: queue.map(PgStore::open).transpose()?,
        })
    }

    /// The same store, reading `project`.
    pub fn scoped(&self, project: ProjectId) -> Self {
        Self {
            db: Arc::clone(&self.db),
            project,
            queue: self.queue.as_ref().map(|queue| queue.scoped(project)),
        }
    }

    pub(crate) fn queue(&self) -> Option<&dyn crate::qa::QaQueue> {
        self.queue
            .as_ref()
            .map(|queue| queue as &dyn crate::qa::QaQueue)
    }
}

/// What a new database gets with its tables, whichever side opened it first: the default
/// project's row. Its id is fixed, so reads need no lookup, and a command on an existing store
/// pays one request to open it, not two.
fn made_with_tables(db: &Arc<ClickHouse>) -> Result<()> {
    if db.created_tables {
        let store = ChStore {
            db: Arc::clone(db),
            project: ProjectId::DEFAULT,
            queue: None,
        };
        crate::Accounts::ensure_project(&store, "default")?;
    }
    Ok(())
}

/// The server and the statements both sides share.
pub(crate) struct ClickHouse {
    pub(crate) server: Server,
    /// Whether the SQL tool's views were made by this process (`sql`).
    pub(crate) sql_views: std::sync::Mutex<bool>,
    /// Whether opening it created tables (a new database, or tables a newer devtrace added).
    pub(crate) created_tables: bool,
}

/// Trace ids as a `{name:Array(String)}` parameter of hexadecimal ids, and the SQL that turns
/// it back into `FixedString(16)` values for a primary-key `IN`.
pub(crate) fn id_list(ids: impl Iterator<Item = impl AsRef<[u8]>>) -> String {
    let quoted: Vec<String> = ids.map(|id| format!("'{}'", hex(id.as_ref()))).collect();
    format!("[{}]", quoted.join(","))
}

/// `name` as a set of `FixedString(16)` trace ids, for `trace_id IN …`.
pub(crate) fn ids_in(name: &str) -> String {
    format!("(SELECT toFixedString(unhex(arrayJoin({{{name}:Array(String)}})), 16))")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ClickHouse {
    pub(crate) fn open(url: &str) -> Result<Self> {
        let server = Server::parse(url)?;
        let created_tables = schema::prepare(&server)?;
        Ok(Self {
            server,
            sql_views: std::sync::Mutex::new(false),
            created_tables,
        })
    }

    /// The span ids stored for each of `traces` (by primary key).
    pub(crate) fn stored_span_ids(
        &self,
        project: i64,
        traces: &[TraceId],
    ) -> Result<HashMap<TraceId, HashSet<SpanId>>> {
        let mut found: HashMap<TraceId, HashSet<SpanId>> = HashMap::new();
        for group in traces.chunks(1000) {
            let sql = format!(
                "SELECT trace_id, span_id FROM spans WHERE project = {{p:Int64}} AND trace_id IN {} FORMAT RowBinary",
                ids_in("ids")
            );
            let answer = self.server.query(
                &sql,
                &[
                    ("p", project.to_string()),
                    ("ids", id_list(group.iter().map(|t| t.0))),
                ],
            )?;
            let mut rows = Reader::new(&answer);
            while !rows.done() {
                let trace = TraceId(rows.fixed()?);
                let span = SpanId(rows.fixed()?);
                found.entry(trace).or_default().insert(span);
            }
        }
        Ok(found)
    }

    /// A stored trace's spans (each once: its highest version) and that highest version;
    /// `None` when nothing is stored.
    pub(crate) fn stored_spans(
        &self,
        project: i64,
        trace: TraceId,
    ) -> Result<(SpanBatch, Option<u64>)> {
        let answer = self.server.query(
            "SELECT span_id, parent_span_id, start_ns, duration_ns, name, kind, attributes,
                    body, version FROM spans
             WHERE project = {p:Int64} AND trace_id = toFixedString(unhex({t:String}), 16)
             ORDER BY span_id, version DESC LIMIT 1 BY span_id FORMAT RowBinary",
            &[("p", project.to_string()), ("t", trace.to_hex())],
        )?;
        let mut rows = Reader::new(&answer);
        let mut found: Vec<(u64, SpanBatch)> = Vec::new();
        while !rows.done() {
            let columns = body::Columns {
                span_id: SpanId(rows.fixed()?),
                parent_span_id: rows.fixed()?,
                start_ns: rows.u64()?,
                duration_ns: rows.u64()?,
                name: rows.string()?,
                kind: rows.u8()?,
                attributes: rows.array(|r| Ok((r.string()?, r.string()?)))?,
            };
            let single = body::join(trace, columns, rows.bytes()?)?;
            found.push((rows.u64()?, single));
        }
        // Highest version first: the order the spans arrived in (see write.rs).
        found.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        let highest = found.first().map(|(version, _)| *version);
        let mut batch = SpanBatch::default();
        for (_, single) in found {
            batch.extend(single);
        }
        Ok((batch, highest))
    }

    /// Removes traces with everything stored for them, and log records before a time.
    pub(crate) fn delete(
        &self,
        project: i64,
        traces: &[TraceId],
        logs_before: Option<u64>,
    ) -> Result<()> {
        if !traces.is_empty() {
            let ids = id_list(traces.iter().map(|t| t.0));
            for table in ["spans", "trace_parts", "trace_list", "sessions", "logs"] {
                self.server.query(
                    &format!(
                        "DELETE FROM {} WHERE project = {{p:Int64}} AND trace_id IN {}",
                        self.local(table),
                        ids_in("ids")
                    ),
                    &[("p", project.to_string()), ("ids", ids.clone())],
                )?;
            }
        }
        if let Some(before) = logs_before {
            self.server.query(
                &format!(
                    "DELETE FROM {} WHERE project = {{p:Int64}} AND first_ns < {{t:UInt64}}",
                    self.local("logs")
                ),
                &[("p", project.to_string()), ("t", before.to_string())],
            )?;
        }
        Ok(())
    }
}

impl ClickHouse {
    /// Where a `DELETE` or `OPTIMIZE` goes: the table, or on a cluster its local tables on every node (a
    /// `Distributed` table takes no `DELETE`).
    pub(crate) fn local(&self, table: &str) -> String {
        match &self.server.cluster {
            None => table.to_owned(),
            Some(cluster) => format!("{table}_local ON CLUSTER {cluster}"),
        }
    }
}

pub(crate) fn unix_now_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh, empty devtrace database on the server named by `DEVTRACE_TEST_CLICKHOUSE`.

    pub const ENV: &str = "DEVTRACE_TEST_CLICKHOUSE";

    /// The test server's URL, or `None` (after saying so) when the variable is unset. Under CI
    /// the ClickHouse tests must run: a missing server fails instead.
    pub fn server() -> Option<String> {
        crate::conformance::test_server(
            ENV,
            "scripts/clickhouse-test-server starts the engine behind its front",
        )
    }

    /// The URL with a database name of its own (created by the store when it opens), so tests
    /// never see each other's rows.
    pub fn fresh_database(url: &str) -> String {
        let name = crate::conformance::unique_name();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let (server, _) = base.rsplit_once('/').expect("a database in the URL");
        if query.is_empty() {
            format!("{server}/{name}")
        } else {
            format!("{server}/{name}?{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    fn open_fresh(url: &str) -> (ChWriter, ChStore) {
        let url = testing::fresh_database(url);
        (ChWriter::open(&url).unwrap(), ChStore::open(&url).unwrap())
    }

    #[test]
    fn clickhouse_passes_the_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_all(&|| {
            let (writer, store) = open_fresh(&url);
            (Box::new(writer), Box::new(store))
        });
    }

    /// Tables made by an earlier devtrace, whose Map keys and summary name arrays were
    /// `LowCardinality(String)` (a row's binary form is the same), are written and read alike.
    #[test]
    fn tables_of_the_earlier_column_types_pass_the_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_all(&|| {
            let url = testing::fresh_database(&url);
            let made = ChStore::open(&url).unwrap();
            let server = &made.db.server;
            for name in ["spans", "trace_parts"] {
                let table = schema::DDL.iter().find(|t| t.name == name).unwrap();
                let earlier = table
                    .body
                    .replace("{engine}", "ReplacingMergeTree(version)")
                    .replace(
                        "Map(String, String) CODEC(ZSTD(3))",
                        "Map(LowCardinality(String), String) CODEC(ZSTD(6))",
                    )
                    .replace(
                        "Array(String) CODEC(ZSTD(3))",
                        "Array(LowCardinality(String))",
                    );
                let lows = |body: &str| body.matches("LowCardinality").count();
                assert!(lows(&earlier) > lows(table.body), "{earlier}");
                server.query(&format!("DROP TABLE {name}"), &[]).unwrap();
                server
                    .query(&format!("CREATE TABLE {name} {earlier}"), &[])
                    .unwrap();
            }
            (
                Box::new(ChWriter::open(&url).unwrap()),
                Box::new(ChStore::open(&url).unwrap()),
            )
        });
    }

    /// The pipeline hands this writer uncompressed chunks (it decodes them into rows), and
    /// traces written from them read back as sent.
    #[test]
    fn chunks_handed_over_uncompressed_are_stored_whole() {
        use crate::conformance::{batch, span};
        use crate::writer::{Writer, WriterConfig};
        use crate::{ProjectWriter, Store, StoreLocation, StoreWriter};
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_database(&url);
        // What the receivers ask: serve's writer thread over the store its URL names, and an
        // importer's writer for one project.
        let location = StoreLocation::parse(&url);
        let serving = Writer::start(location.open_writer().unwrap(), WriterConfig::default());
        assert_eq!(serving.handle().chunk_use(), crate::ChunkUse::InFlight);
        serving.shutdown();
        let importing = ProjectWriter::new(location.open_writer().unwrap(), ProjectId::DEFAULT);
        assert_eq!(importing.chunk_use(), crate::ChunkUse::InFlight);
        let embedded = tempfile::tempdir().unwrap();
        let local = StoreLocation::parse(embedded.path().to_str().unwrap());
        assert_eq!(
            local.open_writer().unwrap().chunk_use(),
            crate::ChunkUse::Stored
        );
        let (mut writer, store) = (ChWriter::open(&url).unwrap(), ChStore::open(&url).unwrap());
        let mut spans = vec![
            span(3, 1, None, "GET /cart", 100, 400),
            span(3, 2, Some(1), "SELECT cart", 150, 300),
        ];
        spans[1]
            .attributes
            .push(devtrace_model::KeyValue::new("db.system", "postgresql"));
        let sent = batch("cart", spans);
        let prepared = crate::prepare_spans_for(sent.clone(), crate::ChunkUse::InFlight);
        assert_eq!(prepared.traces[0].data[0], 3, "format 3: uncompressed");
        writer.write(&[prepared]).unwrap();
        let stored = store
            .get_trace(devtrace_model::TraceId([3; 16]))
            .unwrap()
            .unwrap();
        let mut names: Vec<_> = stored.spans.spans.iter().map(|s| s.name.clone()).collect();
        names.sort();
        assert_eq!(names, ["GET /cart", "SELECT cart"]);
        let select = stored.spans.spans.iter().find(|s| s.name == "SELECT cart");
        assert_eq!(select.unwrap().attributes, sent.spans[1].attributes);
        assert_eq!(stored.summary.span_count, 2);
    }

    #[test]
    fn clickhouse_passes_the_team_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_team(&|| {
            let (writer, store) = open_fresh(&url);
            (Box::new(writer), Box::new(store.clone()), Box::new(store))
        });
    }

    /// The QA queue needs atomic claims, which ClickHouse does not give: without a PostgreSQL
    /// queue store the backend says it has none rather than offer one that could hand a job
    /// to two workers.
    #[test]
    fn clickhouse_keeps_no_qa_queue_of_its_own() {
        let Some(url) = testing::server() else { return };
        let (_, store) = open_fresh(&url);
        assert!(crate::Store::qa(&store).is_none());
    }

    /// A ClickHouse store and a fresh PostgreSQL schema for its QA queue, both from the test
    /// servers; `None` when either is not running.
    fn with_queue() -> Option<(String, String)> {
        let clickhouse = testing::server()?;
        let postgres = crate::postgres::testing::server()?;
        Some((
            testing::fresh_database(&clickhouse),
            crate::postgres::testing::fresh_schema(&postgres),
        ))
    }

    /// With a PostgreSQL queue store beside it, the ClickHouse store passes the QA queue
    /// conformance suite (concurrent workers never claiming one job among it): sessions in
    /// ClickHouse, jobs in PostgreSQL.
    #[test]
    fn clickhouse_with_a_postgres_queue_passes_the_qa_queue_conformance_suite() {
        if with_queue().is_none() {
            return;
        }
        crate::conformance::run_qa(&|| {
            let (clickhouse, postgres) = with_queue().expect("the servers were running");
            let writer = ChWriter::open(&clickhouse).unwrap();
            let store = ChStore::open_with_queue(&clickhouse, Some(&postgres)).unwrap();
            (Box::new(writer), Box::new(store))
        });
    }

    /// A write of several megabytes (one request of 3,000 spans with large attributes) is
    /// stored whole and reads back span for span.
    #[test]
    fn a_large_write_is_stored_whole() {
        use crate::conformance::{batch, span};
        use crate::{Store, StoreWriter};
        use devtrace_model::KeyValue;
        let Some(url) = testing::server() else { return };
        let (mut writer, store) = open_fresh(&url);
        let spans = (0..3000u32)
            .map(|i| {
                let mut s = span(5, 0, Some(1), &format!("op {i}"), 100 + u64::from(i), 5000);
                s.span_id = SpanId((u64::from(i) + 2).to_be_bytes());
                s.attributes
                    .push(KeyValue::new("payload", format!("{i:08}").repeat(200)));
                s
            })
            .collect();
        writer
            .write(&[crate::prepare_spans(batch("api", spans))])
            .unwrap();
        let trace = store.get_trace(TraceId([5; 16])).unwrap().unwrap();
        assert_eq!(trace.spans.spans.len(), 3000);
        assert_eq!(trace.summary.span_count, 3000);
        let last = &trace.spans.spans[2999];
        assert_eq!(last.name, "op 2999");
        assert_eq!(
            last.attributes[1].value.as_str(),
            Some("00002999".repeat(200).as_str())
        );
    }

    /// The trace list reads a window of `trace_list` and widens it when the filters leave
    /// fewer than a page: old traces behind many newer ones are found, a trace whose earlier
    /// part arrived later is placed by its earliest start, and a service filter lists only
    /// the traces holding that service, newest first, page after page.
    #[test]
    fn the_trace_list_widens_its_window_until_the_page_is_full() {
        use crate::conformance::{batch, span};
        use crate::{Store, StoreWriter, TraceCursor, TraceQuery};
        use devtrace_model::StatusCode;
        let Some(url) = testing::server() else { return };
        let (mut writer, store) = open_fresh(&url);
        let failed = |trace: u8, start: u64| {
            let mut s = span(trace, 1, None, "old failure", start, start + 10);
            s.status.code = StatusCode::Error;
            s
        };
        // Two old failures, then 150 newer traces without one: far more than the first window.
        let mut writes = vec![crate::prepare_spans(batch(
            "db",
            vec![failed(1, 1_000), failed(2, 2_000)],
        ))];
        for i in 0..150u64 {
            let trace = 10 + i as u8;
            writes.push(crate::prepare_spans(batch(
                if i % 50 == 0 { "db" } else { "api" },
                vec![span(
                    trace,
                    1,
                    None,
                    "GET /",
                    1_000_000 + i * 1_000,
                    1_000_000 + i * 1_000 + 5,
                )],
            )));
        }
        writer.write(&writes).unwrap();
        // Trace 1 gets a part that starts before every other trace, after the others arrived.
        writer
            .write(&[crate::prepare_spans(batch(
                "db",
                vec![span(1, 2, Some(1), "early", 500, 600)],
            ))])
            .unwrap();
        let errors = store
            .list_traces(&TraceQuery {
                errors_only: true,
                limit: 2,
                ..Default::default()
            })
            .unwrap();
        let ids: Vec<TraceId> = errors.iter().map(|t| t.trace_id).collect();
        assert_eq!(ids, [TraceId([2; 16]), TraceId([1; 16])]);
        assert_eq!(
            errors[1].start_unix_nano, 500,
            "placed by its earliest part"
        );
        assert_eq!(errors[1].span_count, 2);
        // The service filter, paged two at a time: the three newer db traces, then the old two.
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .list_traces(&TraceQuery {
                    service: Some("db".into()),
                    after,
                    limit: 2,
                    ..Default::default()
                })
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(TraceCursor {
                start_unix_nano: last.start_unix_nano,
                trace_id: last.trace_id,
            });
            pages.push(page.iter().map(|t| t.trace_id.0[0]).collect::<Vec<_>>());
        }
        assert_eq!(pages, [vec![110, 60], vec![10, 2], vec![1]]);
        let all = store
            .list_traces(&TraceQuery {
                limit: 1000,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(all.len(), 152);
        assert!(
            all.windows(2)
                .all(|w| w[0].start_unix_nano >= w[1].start_unix_nano)
        );
    }

    /// `ttl_days` in the URL puts a TTL on every telemetry table when created, changes it when
    /// the URL changes it, removes it when the URL drops it; and ClickHouse drops the rows past
    /// it.
    #[test]
    fn ttl_days_is_each_telemetry_table_s_ttl() {
        use crate::conformance::{batch, span};
        use crate::{Store, StoreWriter};
        let Some(url) = testing::server() else { return };
        let base = testing::fresh_database(&url);
        let with_ttl = |days: &str| {
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}ttl_days={days}")
        };
        let ttls = |store: &ChStore| -> Vec<(String, String)> {
            let answer = store
                .db
                .server
                .query(
                    "SELECT name, replaceRegexpOne(extract(create_table_query, 'TTL .*'), ' SETTINGS .*', '')
                     FROM system.tables
                     WHERE database = currentDatabase() ORDER BY name FORMAT RowBinary",
                    &[],
                )
                .unwrap();
            let mut rows = Reader::new(&answer);
            let mut out = Vec::new();
            while !rows.done() {
                out.push((rows.string().unwrap(), rows.string().unwrap()));
            }
            out
        };
        let expected = |days: Option<u32>| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = schema::DDL
                .iter()
                .map(|table| {
                    let ttl = match (table.ttl_from, days) {
                        (Some(column), Some(days)) => format!(
                            "TTL toDateTime(intDiv({column}, 1000000000)) + toIntervalDay({days})"
                        ),
                        // The commit feed keeps its own day, whatever ttl_days says.
                        _ if table.name == "commits" => {
                            "TTL toDateTime(intDiv(at_ns, 1000000000)) + toIntervalDay(1)".into()
                        }
                        _ => String::new(),
                    };
                    (table.name.to_owned(), ttl)
                })
                .collect();
            out.sort();
            out
        };
        let store = ChStore::open(&with_ttl("30")).unwrap();
        let found = ttls(&store);
        assert_eq!(found, expected(Some(30)), "created with the TTL");
        assert!(
            found
                .iter()
                .any(|(name, ttl)| name == "spans" && !ttl.is_empty())
        );
        let store = ChStore::open(&with_ttl("7")).unwrap();
        assert_eq!(
            ttls(&store),
            expected(Some(7)),
            "changed when the URL changes"
        );
        let store = ChStore::open(&base).unwrap();
        assert_eq!(
            ttls(&store),
            expected(None),
            "removed when the URL drops it"
        );
        // Past the TTL: a span of 40 days ago goes at the next merge, today's stays.
        let mut writer = ChWriter::open(&with_ttl("30")).unwrap();
        let store = ChStore::open(&with_ttl("30")).unwrap();
        let now = unix_now_nanos();
        let day = 86_400 * 1_000_000_000u64;
        writer
            .write(&[crate::prepare_spans(batch(
                "api",
                vec![
                    span(1, 1, None, "old", now - 40 * day, now - 40 * day + 10),
                    span(2, 1, None, "new", now - day, now - day + 10),
                ],
            ))])
            .unwrap();
        writer.reclaim().unwrap();
        assert!(store.get_trace(TraceId([1; 16])).unwrap().is_none());
        assert_eq!(
            store
                .get_trace(TraceId([2; 16]))
                .unwrap()
                .unwrap()
                .spans
                .spans
                .len(),
            1
        );
    }

    /// Text with a password in it, assembled so that this file holds none.
    fn with_password(url: &str, password: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (_, host) = rest.split_once('@').unwrap();
        format!("{scheme}://devtrace:{password}@{host}")
    }

    #[test]
    fn a_wrong_password_is_named_as_such_without_the_password() {
        let Some(url) = testing::server() else { return };
        let wrong = ["not", "-the-", "password"].concat();
        let error = ChStore::open(&with_password(&url, &wrong)).err().unwrap();
        let text = error.to_string();
        assert!(matches!(error, StoreError::Unreachable { .. }), "{text}");
        assert!(
            text.contains("ClickHouse refused user devtrace (wrong password, or no such user): give the user and password in the URL"),
            "{text}"
        );
        assert!(!text.contains(&wrong), "{text}");
    }

    #[test]
    fn an_unreachable_server_is_named_without_its_password() {
        let secret = ["s3", "cret"].concat();
        let error =
            ChStore::open(&["clickhouse://dev:", &secret, "@127.0.0.1:9/devtrace"].concat())
                .err()
                .unwrap();
        let text = error.to_string();
        assert!(
            text.starts_with("cannot reach the store at clickhouse://dev@127.0.0.1:9/devtrace: "),
            "{text}"
        );
        assert!(!text.contains(&secret), "{text}");
    }

    /// The database is created when missing, and opening again finds the tables made.
    #[test]
    fn a_missing_database_is_created_and_reopened() {
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_database(&url);
        let store = ChStore::open(&url).unwrap();
        let database = store.db.server.database.clone();
        let answer = store
            .db
            .server
            .query_raw(
                &format!("SELECT count() FROM system.tables WHERE database = '{database}' FORMAT RowBinary"),
                None,
            )
            .unwrap();
        assert_eq!(
            Reader::new(&answer).u64().unwrap(),
            schema::DDL.len() as u64
        );
        ChStore::open(&url).unwrap();
        assert_eq!(crate::Store::stats(&store).unwrap().spans, 0);
    }
}
