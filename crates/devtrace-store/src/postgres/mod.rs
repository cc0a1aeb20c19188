//! The team backend: a PostgreSQL database shared by every `devtrace serve` node of a team.
//!
//! The layout follows the embedded store's (see `docs/ARCHITECTURE.md`): `traces` holds one
//! summary row per trace, upserted as chunks arrive; `span_chunks` and `log_chunks` hold the
//! same compressed chunks as SQLite (the chunk codec is shared), `trace_operations` is the
//! operation index. Every row belongs to a project (`project_id`), and every read of a
//! [`PgStore`] is scoped to its project.
//!
//! - [`schema`]: numbered migrations, run under an advisory lock so nodes starting together
//!   migrate once; a database from a newer devtrace is refused.
//! - [`write`]: the group-commit writer's backend: one transaction per group, summaries
//!   upserted in one statement, chunks streamed with `COPY … (FORMAT binary)`.
//! - [`read`]: the [`Store`](crate::Store) queries.
//! - [`accounts`]: projects and tokens.
//! - [`listen`]: `LISTEN/NOTIFY`, so every node hears of every node's commits.
//! - [`sql`]: the read-only SQL tool, run as a role that can read only the documented views.
//!
//! The client is the synchronous `postgres` crate (it runs its own small runtime per
//! connection): the [`Store`](crate::Store) trait is synchronous and its async callers already
//! use `spawn_blocking`. Never call it on an async worker thread.

mod accounts;
mod dictionaries;
pub(crate) mod listen;
mod qa;
mod read;
mod schema;
mod sql;
mod write;

pub use sql::SCHEMA;
pub use write::PgWriter;

use crate::{ProjectId, Result, StoreError};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The read side: a pool of connections scoped to one project; cloning is cheap.
#[derive(Clone)]
pub struct PgStore {
    shared: Arc<Shared>,
    project: ProjectId,
}

struct Shared {
    database: Database,
    idle: Mutex<Vec<Conn>>,
    /// The role and connections of the SQL tool, made on first use.
    sql: sql::SqlReader,
}

/// Connections kept idle by a [`PgStore`]; more are opened when needed and closed after.
const MAX_IDLE: usize = 8;

impl PgStore {
    /// Connects to `url`, creates or migrates devtrace's schema, and reads the default project.
    pub fn open(url: &str) -> Result<Self> {
        let database = Database::parse(url)?;
        let mut conn = database.connect()?;
        schema::migrate(&mut conn, &database, write::after_migration)?;
        Ok(Self {
            shared: Arc::new(Shared {
                database,
                idle: Mutex::new(vec![conn]),
                sql: sql::SqlReader::default(),
            }),
            project: ProjectId::DEFAULT,
        })
    }

    /// The same store, reading `project`.
    pub fn scoped(&self, project: ProjectId) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            project,
        }
    }

    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
        let pooled = self.shared.idle.lock().expect("pool poisoned").pop();
        let mut conn = match pooled {
            Some(conn) if !conn.client.is_closed() => conn,
            _ => self.shared.database.connect()?,
        };
        let result = f(&mut conn);
        if !conn.client.is_closed() {
            let mut idle = self.shared.idle.lock().expect("pool poisoned");
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
        result
    }
}

/// Where the database is: its connection settings, and how to name it without secrets.
#[derive(Clone)]
pub(crate) struct Database {
    config: postgres::Config,
    /// The URL without its password, for messages.
    target: String,
}

impl Database {
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let target = url_without_password(url);
        let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::Unreachable {
            target: target.clone(),
            message: format!(
                "not a valid PostgreSQL URL ({e}); write postgres://USER@HOST:PORT/DATABASE, with :PASSWORD after USER if the server asks for one"
            ),
        })?;
        if config.get_application_name().is_none() {
            config.application_name("devtrace");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        Ok(Self { config, target })
    }

    pub(crate) fn connect(&self) -> Result<Conn> {
        let client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::Unreachable {
                target: self.target.clone(),
                message: describe(&e),
            })?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    /// Connections start with `schema` as their whole search path.
    pub(crate) fn set_search_path(&mut self, schema: &str) {
        self.config.options(&format!("-c search_path={schema}"));
    }

    /// The same database as another role (the SQL tool's).
    pub(crate) fn as_user(&self, user: &str, password: &str) -> Self {
        let mut config = self.config.clone();
        config.user(user).password(password);
        Self {
            config,
            target: self.target.clone(),
        }
    }
}

/// One connection and the statements it has prepared (the hot paths run the same few).
pub(crate) struct Conn {
    pub(crate) client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl Conn {
    pub(crate) fn prepared(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// The URL without its password (after the user name, or a `password` parameter), for
/// messages and logs: `postgres://user@host/db`.
pub fn url_without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        // Keep the options but drop a password given as a parameter.
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.to_ascii_lowercase().starts_with("password="))
                .collect();
            if kept.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{}", kept.join("&"))
            }
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// A PostgreSQL error as one line: the server's message, detail and SQLSTATE when it sent
/// them, the client's otherwise.
fn describe(error: &postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        text.push_str(&format!(" (SQLSTATE {})", db.code().code()));
        return text;
    }
    crate::error_chain(error)
}

impl From<postgres::Error> for StoreError {
    fn from(error: postgres::Error) -> Self {
        StoreError::Database(describe(&error))
    }
}

/// Whether retrying the same transaction may succeed: a deadlock between nodes, a
/// serialisation failure.
fn is_transient(error: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    error.code().is_some_and(|code| {
        *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Nanosecond times and counts as PostgreSQL bigints (saturating; u64 beyond i64 is never real).
fn int(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn unix_now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fresh, empty devtrace schema in the test server named by `DEVTRACE_TEST_POSTGRES`.

    pub const ENV: &str = "DEVTRACE_TEST_POSTGRES";

    /// The test server's URL, or `None` (after saying so once) when the variable is unset.
    /// Under CI the PostgreSQL tests must run: a missing server fails instead.
    pub fn server() -> Option<String> {
        crate::conformance::test_server(ENV, "scripts/postgres-test-server starts a server")
    }

    /// A URL whose search path is a new schema of its own, so tests never see each other's
    /// rows (and can run in parallel).
    pub fn fresh_schema(url: &str) -> String {
        let schema = crate::conformance::unique_name();
        let mut client = postgres::Client::connect(url, postgres::NoTls).expect("test server");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .expect("creating a test schema");
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options=-csearch_path%3D{schema}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text with a password in it, assembled so that this file holds none (the redaction
    /// corpus checks the sources).
    fn secret_url(before: &str, after: &str) -> String {
        [before, "s3", "cret", after].concat()
    }

    #[test]
    fn urls_lose_their_password_in_messages() {
        for (url, shown) in [
            (
                secret_url("postgres://dev:", "@db:5432/devtrace"),
                "postgres://dev@db:5432/devtrace",
            ),
            (
                "postgresql://db/devtrace".to_owned(),
                "postgresql://db/devtrace",
            ),
            (
                secret_url("postgres://dev@db/devtrace?pass", "&sslmode=disable")
                    .replace("?passs3", "?password=s3"),
                "postgres://dev@db/devtrace?sslmode=disable",
            ),
            (secret_url("postgres://a:b:", "@h"), "postgres://a@h"),
        ] {
            assert_eq!(url_without_password(&url), shown, "{url}");
        }
    }

    #[test]
    fn an_unreachable_server_is_named_without_its_password() {
        // Port 9 on loopback: nothing listens there.
        let error = PgStore::open(&secret_url("postgres://dev:", "@127.0.0.1:9/devtrace"))
            .err()
            .unwrap();
        let text = error.to_string();
        assert!(matches!(error, StoreError::Unreachable { .. }), "{text}");
        assert!(
            text.starts_with("cannot reach the store at postgres://dev@127.0.0.1:9/devtrace: "),
            "{text}"
        );
        assert!(!text.contains(&secret_url("", "")), "{text}");
        let error = PgStore::open("postgres://dev@host:notaport/x")
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("not a valid PostgreSQL URL"),
            "{error}"
        );
    }

    #[test]
    fn postgres_passes_the_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_all(&|| {
            let url = testing::fresh_schema(&url);
            let writer = PgWriter::open(&url).unwrap();
            let store = PgStore::open(&url).unwrap();
            (Box::new(writer), Box::new(store))
        });
    }

    #[test]
    fn postgres_passes_the_qa_queue_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_qa(&|| {
            let url = testing::fresh_schema(&url);
            let writer = PgWriter::open(&url).unwrap();
            let store = PgStore::open(&url).unwrap();
            (Box::new(writer), Box::new(store))
        });
    }

    /// Jobs belong to the project they were queued in: another project's handle neither
    /// lists, reads, counts nor cancels them, and its judgements are its own; workers claim
    /// from every project and learn the job's. Several nodes (each its own pool of
    /// connections) claiming at once never take the same job.
    #[test]
    fn qa_jobs_keep_their_project_and_nodes_never_claim_one_twice() {
        use crate::Accounts;
        use crate::qa::*;
        use devtrace_model::TraceId;
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_schema(&url);
        let store = PgStore::open(&url).unwrap();
        let other = store.ensure_project("other").unwrap().id;
        let (a, b) = (store.scoped(ProjectId::DEFAULT), store.scoped(other));
        let lease = Duration::from_secs(60);
        let new = |trace: u8| NewQaJob {
            trace_id: TraceId([trace; 16]),
            options: "{}".into(),
            max_attempts: 2,
            retry_of: None,
        };
        // The same session id in two projects: two jobs.
        let (in_a, created_a) = a.enqueue(&new(3)).unwrap();
        let (in_b, created_b) = b.enqueue(&new(3)).unwrap();
        assert!(created_a && created_b && in_a.id != in_b.id);
        assert_eq!((in_a.project, in_b.project), (ProjectId::DEFAULT, other));
        let ids = |queue: &PgStore| -> Vec<QaJobId> {
            queue
                .jobs(&QaJobQuery {
                    limit: 10,
                    ..Default::default()
                })
                .unwrap()
                .iter()
                .map(|j| j.id)
                .collect()
        };
        assert_eq!(ids(&a), [in_a.id]);
        assert_eq!(ids(&b), [in_b.id]);
        let everyone = a
            .jobs(&QaJobQuery {
                all_projects: true,
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(everyone.len(), 2);
        assert_eq!(b.job(in_a.id).unwrap(), None, "another project's job");
        assert_eq!(b.cancel(in_a.id).unwrap(), None);
        assert_eq!(a.job(in_a.id).unwrap().unwrap().state, QaJobState::Queued);
        assert_eq!(b.job_counts().unwrap(), [(QaJobState::Queued, 1)]);
        // Claiming one job by id stays in the handle's project.
        assert_eq!(b.claim("w", lease, Some(in_a.id)).unwrap(), None);
        // A worker takes both, oldest first, each with its project.
        let first = b.claim("w", lease, None).unwrap().unwrap();
        let second = b.claim("w", lease, None).unwrap().unwrap();
        assert_eq!((first.id, first.project), (in_a.id, ProjectId::DEFAULT));
        assert_eq!((second.id, second.project), (in_b.id, other));
        let judged = CachedJudgement {
            prompt_hash: "h".into(),
            result: "{}".into(),
        };
        a.store_judgement(TraceId([3; 16]), "v1", "m", &judged)
            .unwrap();
        assert_eq!(
            b.cached_judgement(TraceId([3; 16]), "v1", "m").unwrap(),
            None
        );

        // Three nodes with two workers each, 60 jobs.
        for trace in 10..70u8 {
            a.enqueue(&new(trace)).unwrap();
        }
        let claimed: Vec<QaJobId> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..3)
                .flat_map(|node| {
                    let store = PgStore::open(&url).unwrap();
                    (0..2).map(move |w| (node, w, store.clone()))
                })
                .map(|(node, w, store)| {
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        while let Some(job) =
                            store.claim(&format!("n{node}:{w}"), lease, None).unwrap()
                        {
                            let done = QaFinish::Done {
                                result: "{}".into(),
                            };
                            assert!(store.finish(job.id, job.attempts, done).unwrap());
                            mine.push(job.id);
                        }
                        mine
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let mut unique = claimed.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(claimed.len(), 60, "every job claimed");
        assert_eq!(unique.len(), 60, "and none twice");
    }

    /// Two nodes appending to one trace: each sees what the other stored (its cache of recent
    /// traces is not trusted once another node added spans), so every span is stored once.
    #[test]
    fn nodes_appending_to_one_trace_store_each_span_once() {
        use crate::conformance::{batch, span};
        use crate::{Store, StoreWriter};
        use devtrace_model::TraceId;
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_schema(&url);
        let (mut a, mut b) = (PgWriter::open(&url).unwrap(), PgWriter::open(&url).unwrap());
        let store = PgStore::open(&url).unwrap();
        let spans = |ids: &[u8]| {
            let spans = ids
                .iter()
                .map(|&id| span(7, id, (id > 1).then_some(1), "op", 100 + u64::from(id), 300))
                .collect();
            crate::prepare_spans(batch("api", spans))
        };
        a.write(&[spans(&[1, 2])]).unwrap();
        b.write(&[spans(&[2, 3])]).unwrap();
        // A knows 1 and 2 from its own write; 3 came through B.
        a.write(&[spans(&[3, 4])]).unwrap();
        b.write(&[spans(&[1, 4, 5])]).unwrap();
        let trace = store.get_trace(TraceId([7; 16])).unwrap().unwrap();
        let mut ids: Vec<u8> = trace.spans.spans.iter().map(|s| s.span_id.0[0]).collect();
        ids.sort();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        assert_eq!(trace.summary.span_count, 5);
        let stats = store.stats().unwrap();
        assert_eq!((stats.spans, stats.traces, stats.resent_spans), (5, 1, 4));

        // Four nodes sending the same requests at once, new traces and stored ones alike.
        let requests: Vec<crate::WriteBatch> = (0..4u8)
            .map(|round| {
                let spans = (0..20u8)
                    .flat_map(|trace| {
                        (1..=3u8).map(move |id| {
                            span(0x40 + trace, id + 3 * (round % 2), None, "op", 100, 200)
                        })
                    })
                    .collect();
                crate::prepare_spans(batch("api", spans))
            })
            .collect();
        let nodes: Vec<_> = (0..4)
            .map(|_| {
                let url = url.clone();
                let requests = requests.clone();
                std::thread::spawn(move || {
                    let mut writer = PgWriter::open(&url).unwrap();
                    for request in requests {
                        writer.write(&[request]).unwrap();
                    }
                })
            })
            .collect();
        for node in nodes {
            node.join().unwrap();
        }
        for trace in 0..20u8 {
            let stored = store
                .get_trace(TraceId([0x40 + trace; 16]))
                .unwrap()
                .unwrap();
            let mut ids: Vec<u8> = stored.spans.spans.iter().map(|s| s.span_id.0[0]).collect();
            ids.sort();
            assert_eq!(ids, [1, 2, 3, 4, 5, 6], "trace {trace}");
            assert_eq!(stored.summary.span_count, 6);
        }
        let stats = store.stats().unwrap();
        assert_eq!((stats.spans, stats.traces), (5 + 20 * 6, 21));
        // Every node sent 4 × 60 spans: 120 distinct ones are stored.
        assert_eq!(stats.resent_spans, 4 + 4 * 4 * 60 - 120);
    }

    /// The operation index has no index by trace: a merged or deleted trace's rows are found
    /// by their key, from the operations of its stored spans, and none is left behind.
    #[test]
    fn merges_and_deletes_leave_no_index_rows_behind() {
        use crate::conformance::{batch, span};
        use crate::{StoreWriter, WriteBatch, prepare_session, prepare_spans};
        use devtrace_model::TraceId;
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_schema(&url);
        let mut writer = PgWriter::open(&url).unwrap();
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let mut rows = |trace: u8| -> (i64, i64) {
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM trace_operations x WHERE x.trace = t.id),
                            (SELECT count(*) FROM trace_services x WHERE x.trace = t.id)
                     FROM traces t WHERE t.trace_id = $1",
                    &[&&[trace; 16][..]],
                )
                .unwrap();
            (row.get(0), row.get(1))
        };
        writer
            .write(&[prepare_spans(batch(
                "api",
                vec![
                    span(1, 1, None, "GET /a", 100, 200),
                    span(1, 2, Some(1), "SELECT", 110, 150),
                ],
            ))])
            .unwrap();
        writer
            .write(&[prepare_session(
                batch("codex", vec![span(2, 1, None, "plan", 100, 200)]),
                vec![],
            )])
            .unwrap();
        assert_eq!(rows(1), (2, 1));
        assert_eq!(rows(2), (1, 1));
        // The session's span again under another name: the old name leaves the index.
        writer
            .write(&[prepare_session(
                batch("codex", vec![span(2, 1, None, "edit", 100, 200)]),
                vec![],
            )])
            .unwrap();
        assert_eq!(rows(2), (1, 1));
        writer
            .write(&[WriteBatch {
                deletes: vec![TraceId([1; 16])],
                ..Default::default()
            }])
            .unwrap();
        let left: (i64, i64, bool) = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .query_one(
                "SELECT (SELECT count(*) FROM trace_operations), (SELECT count(*) FROM trace_services),
                        to_regclass('trace_operations_by_trace') IS NULL",
                &[],
            )
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .unwrap();
        assert_eq!(
            left,
            (1, 1, true),
            "only the session's one operation and service"
        );
    }

    #[test]
    fn postgres_passes_the_team_conformance_suite() {
        let Some(url) = testing::server() else { return };
        crate::conformance::run_team(&|| {
            let url = testing::fresh_schema(&url);
            let writer = PgWriter::open(&url).unwrap();
            let store = PgStore::open(&url).unwrap();
            (Box::new(writer), Box::new(store.clone()), Box::new(store))
        });
    }
}
