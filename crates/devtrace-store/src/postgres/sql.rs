//! The read-only SQL tool (`query_sql`, `devtrace query`) on PostgreSQL.
//!
//! The statement runs in PostgreSQL, as a role that can read nothing but two views, in a
//! read-only transaction with a `statement_timeout`:
//!
//! - **One login role per project** (`devtrace_sql_<store>_p<project>`), created by devtrace on
//!   first use with a random password kept in `sql_readers` (which only devtrace's own role
//!   can read). The role owns nothing and is a member of nothing, so it cannot `SET ROLE` its
//!   way out; it has `USAGE` on one schema (`<schema>_sql`) and `SELECT` on its views.
//! - **The views** `traces`, `operations` and `trace_services` (the SQLite tool's columns) are
//!   `security_barrier` views owned by devtrace's role: they read the tables with its
//!   rights, but only the rows of the project whose reader role is `current_user`, and a
//!   function in the caller's `WHERE` clause cannot see rows before that filter applies.
//! - **Limits**: `SET LOCAL statement_timeout` (the role's default is the ceiling), a
//!   `READ ONLY` transaction, and the rows fetched capped by a `LIMIT` around the statement.
//!   Memory: `work_mem` for each sort and hash (past it they spill to temporary files) and
//!   `temp_file_limit` on what one statement may spill, both set on the reader role. A reader
//!   can raise `work_mem` for itself (`set_config`), which only moves spilling later; it cannot
//!   raise `temp_file_limit` (superuser only), which is therefore the ceiling. PostgreSQL caps a
//!   single value at 1 GB on its own.
//!
//! Span and log rows are not offered here: on both backends they live only inside compressed
//! per-trace chunks, which PostgreSQL cannot decode, and a row per span would cost the ingest
//! rate the team store exists for. Per-span questions go through the typed tools, which read
//! the chunks (`get_trace`, `search_traces`, `analyze_operation`). `docs/team-server.md` says so.
//!
//! Creating roles needs `CREATEROLE` for devtrace's database user; without it the tool says
//! which statement a superuser must run.

use super::{Conn, Database, PgStore};
use crate::sql::{SqlError, SqlLimits, SqlRows, SqlValue, first_keyword};
use crate::{ProjectId, StoreError};
use std::collections::HashMap;
use std::sync::Mutex;

/// The views `query_sql` offers on PostgreSQL.
pub const SCHEMA: &str = "\
traces(trace_id, start_ns, end_ns, duration_ns, span_count, error_count, root_name, service, is_run)
  one row per trace; ids are 32 lower-case hex; times are Unix nanoseconds; is_run: 1 for `devtrace run`
operations(name, service, kind, trace_id, start_ns)
  which traces contain a span of each operation, an operation being (name, service, kind) (an index: fast)
trace_services(trace_id, service, spans, errors)
  which services have spans in each trace, how many and how many failed (an index: fast)
PostgreSQL syntax; read-only. Spans and logs are not SQL views on the PostgreSQL store: use
get_trace, search_traces or analyze_operation for per-span questions.
Examples:
  SELECT root_name, count(*), avg(duration_ns)/1e9 AS s FROM traces WHERE error_count > 0 GROUP BY 1
  SELECT o.name, count(*) FROM operations o JOIN traces t USING (trace_id) WHERE t.start_ns > 0 GROUP BY 1 ORDER BY 2 DESC";

/// The ceiling on any statement of a reader role, whatever a query sets for itself.
const ROLE_STATEMENT_TIMEOUT: &str = "60s";

/// Memory each sort or hash of a reader's statement uses before spilling to disk.
const READER_WORK_MEM: &str = "16MB";

/// Temporary disk space one statement of a reader role may use; past it PostgreSQL stops the
/// statement. Setting it needs a superuser (or, from PostgreSQL 15, `GRANT SET ON PARAMETER`).
pub const READER_TEMP_FILE_LIMIT: &str = "256MB";

/// The reader roles' connections, per project; made on first use.
#[derive(Default)]
pub(crate) struct SqlReader {
    databases: Mutex<HashMap<ProjectId, Database>>,
    idle: Mutex<HashMap<ProjectId, Vec<Conn>>>,
}

pub(crate) fn query(store: &PgStore, sql: &str, limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let keyword = first_keyword(sql);
    if !["SELECT", "WITH", "VALUES", "TABLE"].contains(&keyword.as_str()) {
        return Err(SqlError::RefusedOnPostgres(if keyword.is_empty() {
            "an empty statement".into()
        } else {
            format!("{keyword} statements")
        }));
    }
    let reader = &store.shared.sql;
    let project = store.project;
    let pooled = reader
        .idle
        .lock()
        .expect("sql pool poisoned")
        .get_mut(&project)
        .and_then(Vec::pop);
    let mut conn = match pooled {
        Some(conn) if !conn.client.is_closed() => conn,
        _ => reader.database(store)?.connect()?,
    };
    let result = run(&mut conn, sql, limits);
    if !conn.client.is_closed() {
        reader
            .idle
            .lock()
            .expect("sql pool poisoned")
            .entry(project)
            .or_default()
            .push(conn);
    }
    result
}

fn run(conn: &mut Conn, sql: &str, limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let statement = sql.trim().trim_end_matches(';').trim_end();
    let mut tx = conn
        .client
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(StoreError::from)?;
    let millis = limits.timeout.as_millis().clamp(1, i32::MAX as u128);
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {millis}; SET LOCAL work_mem = '{READER_WORK_MEM}'"
    ))
    .map_err(StoreError::from)?;
    // The statement's own columns (names, order, duplicates) come from preparing it; its rows
    // come back as JSON so that every type (numeric, timestamps, arrays) has one decoding.
    let prepared = tx.prepare(statement).map_err(|e| classify(&e, limits))?;
    let columns: Vec<String> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    // Rows come back until their JSON passes the byte cap: the first row past it comes back
    // empty, saying there were more.
    let wrapped = format!(
        "SELECT CASE WHEN total <= $2 THEN j END, n FROM (
             SELECT j, sum(octet_length(j)) OVER (ROWS UNBOUNDED PRECEDING) AS total,
                    count(*) OVER () AS n
             FROM (SELECT row_to_json(q)::text AS j FROM ({statement}\n) AS q LIMIT $1) AS r
         ) AS s WHERE total - octet_length(j) <= $2"
    );
    let fetch = (limits.max_rows as i64).saturating_add(1);
    let cap = i64::try_from(limits.max_result_bytes).unwrap_or(i64::MAX);
    let rows = tx
        .query(wrapped.as_str(), &[&fetch, &cap])
        .map_err(|e| classify(&e, limits))?;
    tx.rollback().map_err(StoreError::from)?;
    let fetched: i64 = rows.first().map_or(0, |r| r.get(1));
    let mut more = usize::try_from(fetched).unwrap_or(usize::MAX) > limits.max_rows;
    let mut byte_limit_reached = false;
    let mut out = Vec::with_capacity(rows.len().min(limits.max_rows));
    for row in rows.iter().take(limits.max_rows) {
        let Some(text) = row.get::<_, Option<&str>>(0) else {
            more = true;
            byte_limit_reached = true;
            break;
        };
        let values: OrderedRow = serde_json::from_str(text)
            .map_err(|e| SqlError::Invalid(format!("unexpected row encoding: {e}")))?;
        out.push(values.0.into_iter().map(sql_value).collect());
    }
    Ok(SqlRows {
        columns,
        rows: out,
        more,
        byte_limit_reached,
    })
}

/// A row as `row_to_json` writes it: an object whose keys are the columns in order (names may
/// repeat), read as its values in order.
struct OrderedRow(Vec<serde_json::Value>);

impl<'de> serde::Deserialize<'de> for OrderedRow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> serde::de::Visitor<'de> for Values {
            type Value = OrderedRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedRow, A::Error> {
                let mut values = Vec::new();
                while let Some((_, value)) = map.next_entry::<serde::de::IgnoredAny, _>()? {
                    values.push(value);
                }
                Ok(OrderedRow(values))
            }
        }
        deserializer.deserialize_map(Values)
    }
}

fn sql_value(value: serde_json::Value) -> SqlValue {
    use serde_json::Value;
    match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => match s.strip_prefix("\\x") {
            // bytea, as PostgreSQL's JSON writes it: report its size, as SQLite's tool does.
            Some(hex) if hex.len() % 2 == 0 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                SqlValue::Blob {
                    blob_bytes: hex.len() / 2,
                }
            }
            _ => SqlValue::Text(s),
        },
        other => SqlValue::Text(other.to_string()),
    }
}

/// The largest value PostgreSQL builds (`MaxAllocSize`, 1 GB less a byte).
const POSTGRES_MAX_VALUE_BYTES: usize = (1 << 30) - 1;

fn classify(error: &postgres::Error, limits: SqlLimits) -> SqlError {
    use postgres::error::SqlState;
    let Some(db) = error.as_db_error() else {
        return SqlError::Store(StoreError::from_ref(error));
    };
    let code = db.code();
    if *code == SqlState::QUERY_CANCELED {
        SqlError::TimeLimit(limits.timeout)
    } else if *code == SqlState::CONFIGURATION_LIMIT_EXCEEDED
        && db.message().contains("temp_file_limit")
    {
        SqlError::TempFileLimit(READER_TEMP_FILE_LIMIT)
    } else if *code == SqlState::PROGRAM_LIMIT_EXCEEDED || *code == SqlState::OUT_OF_MEMORY {
        // PostgreSQL's own bound on a value (1 GB) or the server's memory.
        SqlError::ValueTooLarge(POSTGRES_MAX_VALUE_BYTES)
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        SqlError::RefusedOnPostgres("the statement would change the store".into())
    } else if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        SqlError::RefusedOnPostgres(db.message().to_owned())
    } else if db.message().contains("multiple commands") {
        SqlError::RefusedOnPostgres(
            "several statements were given; send one statement per call".into(),
        )
    } else {
        let position = match db.position() {
            Some(postgres::error::ErrorPosition::Original(at)) => format!(" at character {at}"),
            _ => String::new(),
        };
        SqlError::Invalid(format!(
            "SQL error: {}{position}. The views are traces, operations and trace_services (see the schema)",
            db.message()
        ))
    }
}

impl StoreError {
    fn from_ref(error: &postgres::Error) -> Self {
        StoreError::Database(super::describe(error))
    }
}

impl SqlReader {
    /// How to connect as `store`'s project's reader role, creating the role and the views
    /// the first time.
    fn database(&self, store: &PgStore) -> Result<Database, SqlError> {
        let mut databases = self.databases.lock().expect("sql roles poisoned");
        if let Some(database) = databases.get(&store.project) {
            return Ok(database.clone());
        }
        let database =
            store.with_conn(|conn| prepare_reader(conn, &store.shared.database, store.project))?;
        databases.insert(store.project, database.clone());
        Ok(database)
    }
}

/// Creates (once per store and project) the views and the project's reader role.
fn prepare_reader(
    conn: &mut Conn,
    database: &Database,
    project: ProjectId,
) -> crate::Result<Database> {
    let mut tx = conn.client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('devtrace sql ' || current_schema()))",
        &[],
    )?;
    let row = tx.query_one(
        "SELECT current_schema(), current_user,
                substr(md5(current_database() || '.' || current_schema()), 1, 10)",
        &[],
    )?;
    let (schema, owner, tag): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let views = format!("{schema}_sql");
    let q = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS sql_readers (
             project_id  bigint PRIMARY KEY,
             role        text NOT NULL UNIQUE,
             password    text NOT NULL
         );
         REVOKE ALL ON sql_readers FROM PUBLIC;
         CREATE SCHEMA IF NOT EXISTS {views};
         REVOKE ALL ON SCHEMA {views} FROM PUBLIC;
         CREATE OR REPLACE VIEW {views}.traces WITH (security_barrier) AS
             SELECT encode(t.trace_id, 'hex') AS trace_id, t.start_ns, t.end_ns,
                    coalesce(t.root_end_ns, t.end_ns) - coalesce(t.root_start_ns, t.start_ns) AS duration_ns, t.span_count, t.error_count,
                    t.root_name, t.root_service AS service, t.is_run::int AS is_run
             FROM {schema}.traces t
             WHERE t.project_id = (SELECT r.project_id FROM {schema}.sql_readers r
                                   WHERE r.role = current_user);
         CREATE OR REPLACE VIEW {views}.operations WITH (security_barrier) AS
             SELECT o.name, s.name AS service,
                    CASE o.kind WHEN 1 THEN 'internal' WHEN 2 THEN 'server' WHEN 3 THEN 'client'
                        WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' ELSE 'unspecified' END
                        AS kind,
                    encode(t.trace_id, 'hex') AS trace_id, t.start_ns
             FROM {schema}.trace_operations x
             JOIN {schema}.operations o ON o.id = x.operation
             JOIN {schema}.services s ON s.id = o.service
             JOIN {schema}.traces t ON t.id = x.trace
             WHERE o.project_id = (SELECT r.project_id FROM {schema}.sql_readers r
                                   WHERE r.role = current_user);
         CREATE OR REPLACE VIEW {views}.trace_services WITH (security_barrier) AS
             SELECT encode(t.trace_id, 'hex') AS trace_id, s.name AS service, x.spans, x.errors
             FROM {schema}.trace_services x
             JOIN {schema}.services s ON s.id = x.service
             JOIN {schema}.traces t ON t.id = x.trace
             WHERE s.project_id = (SELECT r.project_id FROM {schema}.sql_readers r
                                   WHERE r.role = current_user);",
        views = q(&views),
        schema = q(&schema),
    ))?;
    let existing = tx.query_opt(
        "SELECT role, password FROM sql_readers WHERE project_id = $1",
        &[&project.0],
    )?;
    let (role, password) = match existing {
        Some(row) => (row.get::<_, String>(0), row.get::<_, String>(1)),
        None => {
            let role = format!("devtrace_sql_{tag}_p{}", project.0);
            let password = random_password()?;
            let exists = tx
                .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])?
                .is_some();
            let verb = if exists { "ALTER" } else { "CREATE" };
            // Savepoint: a refusal must leave the transaction usable for the message.
            let mut attempt = tx.transaction()?;
            let made = attempt.batch_execute(&format!(
                "{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
                     NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 16 PASSWORD '{password}';
                 ALTER ROLE {role} SET statement_timeout = '{ROLE_STATEMENT_TIMEOUT}';
                 ALTER ROLE {role} SET default_transaction_read_only = on;",
                role = q(&role),
            ));
            if let Err(error) = made {
                let insufficient =
                    error.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE);
                drop(attempt);
                if insufficient {
                    return Err(StoreError::Unsupported(format!(
                        "the SQL tool reads PostgreSQL as a role that can only read devtrace's views, and the database user {owner:?} may not create it; as a superuser run once: ALTER ROLE {} CREATEROLE",
                        q(&owner)
                    )));
                }
                return Err(error.into());
            }
            attempt.commit()?;
            tx.execute(
                "INSERT INTO sql_readers (project_id, role, password) VALUES ($1, $2, $3)",
                &[&project.0, &role, &password],
            )?;
            (role, password)
        }
    };
    limit_reader_memory(&mut tx, &role, &owner)?;
    tx.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA {views} TO {role};
         GRANT SELECT ON {views}.traces, {views}.operations, {views}.trace_services TO {role};",
        views = q(&views),
        role = q(&role),
    ))?;
    tx.commit()?;
    let mut reader = database.as_user(&role, &password);
    reader.set_search_path(&views);
    Ok(reader)
}

/// Sets the reader role's `work_mem` and `temp_file_limit` (every time, so that roles made
/// before these limits get them too). `temp_file_limit` needs a superuser or, from PostgreSQL
/// 15, `GRANT SET ON PARAMETER temp_file_limit` to devtrace's user: without it the role keeps
/// the server's default (no limit unless the administrator set one) and the log says which
/// statement an administrator can run.
fn limit_reader_memory(
    tx: &mut postgres::Transaction<'_>,
    role: &str,
    owner: &str,
) -> crate::Result<()> {
    let q = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    tx.batch_execute(&format!(
        "ALTER ROLE {} SET work_mem = '{READER_WORK_MEM}'",
        q(role)
    ))?;
    // Savepoint: a refusal must leave the transaction usable.
    let mut attempt = tx.transaction()?;
    match attempt.batch_execute(&format!(
        "ALTER ROLE {} SET temp_file_limit = '{READER_TEMP_FILE_LIMIT}'",
        q(role)
    )) {
        Ok(()) => attempt.commit()?,
        Err(error) if error.code() == Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) => {
            drop(attempt);
            tracing::warn!(
                role,
                "the SQL tool's temporary disk space per statement is not limited: the database user {owner:?} may not set temp_file_limit; as a superuser run once: GRANT SET ON PARAMETER temp_file_limit TO {} (PostgreSQL 15 and later; then restart devtrace), or ALTER ROLE {} SET temp_file_limit = '{READER_TEMP_FILE_LIMIT}'",
                q(owner),
                q(role)
            );
        }
        Err(error) => return Err(error.into()),
    }
    Ok(())
}

/// 32 random hexadecimal characters.
fn random_password() -> crate::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io {
        context: "drawing a random password".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::super::{PgWriter, testing};
    use super::*;
    use crate::conformance::{batch, span};
    use crate::{Store, StoreWriter, prepare_spans};
    use devtrace_model::StatusCode;

    fn stores() -> Option<(PgStore, PgStore)> {
        let url = testing::server()?;
        let url = testing::fresh_schema(&url);
        let mut writer = PgWriter::open(&url).unwrap();
        let mut failing = span(2, 2, Some(1), "SELECT", 20, 70);
        failing.status.code = StatusCode::Error;
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
                prepare_spans(batch("other", vec![span(3, 1, None, "secret", 5, 6)]))
                    .in_project(ProjectId(2)),
            ])
            .unwrap();
        let store = PgStore::open(&url).unwrap();
        let other = store.scoped(ProjectId(2));
        Some((store, other))
    }

    fn rows(store: &PgStore, sql: &str) -> SqlRows {
        store
            .query_sql(sql, SqlLimits::default())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn the_views_read_the_projects_traces_and_operations() {
        let Some((store, other)) = stores() else {
            return;
        };
        let traces = rows(
            &store,
            "SELECT trace_id, duration_ns, error_count, service, is_run, duration_ns / 2.0 AS half \
             FROM traces ORDER BY start_ns",
        );
        assert_eq!(
            traces.columns,
            [
                "trace_id",
                "duration_ns",
                "error_count",
                "service",
                "is_run",
                "half"
            ]
        );
        assert_eq!(traces.rows.len(), 2, "only the default project's traces");
        assert_eq!(traces.rows[0][0], SqlValue::Text("01".repeat(16)));
        assert_eq!(traces.rows[1][1], SqlValue::Integer(190));
        assert_eq!(traces.rows[1][2], SqlValue::Integer(1));
        assert_eq!(traces.rows[1][4], SqlValue::Integer(0));
        assert_eq!(traces.rows[1][5], SqlValue::Real(95.0));
        let ops = rows(
            &store,
            "SELECT name, count(*) FROM operations GROUP BY name ORDER BY name",
        );
        assert_eq!(
            ops.rows,
            [
                vec![SqlValue::Text("GET /a".into()), SqlValue::Integer(1)],
                vec![SqlValue::Text("GET /b".into()), SqlValue::Integer(1)],
                vec![SqlValue::Text("SELECT".into()), SqlValue::Integer(2)],
            ]
        );
        let identities = rows(
            &store,
            "SELECT DISTINCT name, service, kind FROM operations ORDER BY name",
        );
        assert_eq!(
            identities.rows[2],
            [
                SqlValue::Text("SELECT".into()),
                SqlValue::Text("api".into()),
                SqlValue::Text("server".into())
            ]
        );
        let services = rows(
            &store,
            "SELECT service, sum(spans), sum(errors), count(*) FROM trace_services GROUP BY 1",
        );
        assert_eq!(
            services.rows,
            [[
                SqlValue::Text("api".into()),
                SqlValue::Integer(4),
                SqlValue::Integer(1),
                SqlValue::Integer(2)
            ]],
            "only the default project's services"
        );
        let theirs = rows(&other, "SELECT root_name FROM traces");
        assert_eq!(theirs.rows, [vec![SqlValue::Text("secret".into())]]);
        let theirs = rows(&other, "SELECT service FROM trace_services");
        assert_eq!(theirs.rows, [vec![SqlValue::Text("other".into())]]);
        let limited = store
            .query_sql(
                "SELECT * FROM traces;",
                SqlLimits {
                    max_rows: 1,
                    ..SqlLimits::default()
                },
            )
            .unwrap();
        assert_eq!((limited.rows.len(), limited.more), (1, true));
    }

    #[test]
    fn nothing_but_the_views_can_be_read_and_nothing_written() {
        let Some((store, _)) = stores() else { return };
        let schema: String = store
            .with_conn(|conn| {
                Ok(conn
                    .client
                    .query_one("SELECT current_schema()", &[])?
                    .get(0))
            })
            .unwrap();
        let tables = |name: &str| format!("SELECT * FROM {schema}.{name}");
        for (sql, expected) in [
            ("DELETE FROM traces", "refused: DELETE statements"),
            (
                "SELECT * FROM tokens",
                "SQL error: relation \"tokens\" does not exist",
            ),
            (
                tables("tokens").as_str(),
                "refused: permission denied for schema",
            ),
            (
                tables("sql_readers").as_str(),
                "refused: permission denied for schema",
            ),
            (
                "WITH x AS (DELETE FROM traces RETURNING 1) SELECT * FROM x",
                "SQL error: WITH clause containing a data-modifying statement",
            ),
            ("SELECT 1; SELECT 2", "refused: several statements"),
            (
                "SELECT nope FROM traces",
                "SQL error: column \"nope\" does not exist",
            ),
        ] {
            let error = store.query_sql(sql, SqlLimits::default()).unwrap_err();
            assert!(error.to_string().starts_with(expected), "{sql}: {error}");
        }
        // Escapes through the role or the project filter find nothing.
        for sql in [
            "SELECT set_config('role', 'devtrace', false)",
            "SELECT * FROM public.traces",
        ] {
            assert!(store.query_sql(sql, SqlLimits::default()).is_err(), "{sql}");
        }
        let leaked = rows(
            &store,
            "SELECT count(*) FROM traces WHERE root_name = 'secret'",
        );
        assert_eq!(leaked.rows, [vec![SqlValue::Integer(0)]]);
        assert_eq!(store.stats().unwrap().spans, 4, "the store is unchanged");
    }

    #[test]
    fn results_stop_at_the_row_and_byte_caps() {
        let Some((store, _)) = stores() else { return };
        let limits = |max_rows, max_result_bytes| SqlLimits {
            max_rows,
            max_result_bytes,
            ..SqlLimits::default()
        };
        let many = store
            .query_sql(
                "SELECT g FROM generate_series(1, 1000) AS g",
                limits(10, 1 << 20),
            )
            .unwrap();
        assert_eq!(many.rows.len(), 10);
        assert!(many.more && !many.byte_limit_reached);
        assert_eq!(many.rows[9], vec![SqlValue::Integer(10)]);
        // 40 rows of 1 MB against a 16 MB cap: the rows that fit, and the flag that says why.
        let big = store
            .query_sql(
                "SELECT repeat('x', 1000000) AS x FROM generate_series(1, 40)",
                limits(100, crate::sql::MAX_RESULT_BYTES),
            )
            .unwrap();
        assert!(big.more && big.byte_limit_reached);
        // Each row is 1,000,008 bytes of JSON ({"x":"…"}): 16 fit in 16 MiB, the 17th does not.
        assert_eq!(big.rows.len(), 16);
        // Within both caps: everything, and no flag.
        let all = store
            .query_sql(
                "SELECT g FROM generate_series(1, 5) AS g",
                limits(10, 1 << 20),
            )
            .unwrap();
        assert_eq!(all.rows.len(), 5);
        assert!(!all.more && !all.byte_limit_reached);
    }

    #[test]
    fn a_query_spilling_past_the_temporary_file_limit_is_stopped_naming_it() {
        let Some((store, _)) = stores() else { return };
        let long = SqlLimits {
            timeout: std::time::Duration::from_secs(120),
            ..SqlLimits::default()
        };
        // The reader role carries both settings (it cannot raise temp_file_limit itself).
        let settings = store
            .query_sql(
                "SELECT current_setting('work_mem'), current_setting('temp_file_limit')",
                long,
            )
            .unwrap();
        assert_eq!(
            settings.rows,
            [vec![
                SqlValue::Text("16MB".into()),
                SqlValue::Text("256MB".into())
            ]]
        );
        let raised = store
            .query_sql("SELECT set_config('temp_file_limit', '-1', true)", long)
            .unwrap_err();
        assert!(raised.to_string().contains("temp_file_limit"), "{raised}");
        // A set-returning function is materialised past work_mem into a temporary file: 100 M
        // rows are several times the limit.
        let error = store
            .query_sql(
                "SELECT count(*) FROM generate_series(1, 100000000) AS g",
                long,
            )
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "the query needed more temporary disk space than its limit of 256MB (PostgreSQL's \
             temp_file_limit for the SQL tool) and was stopped: filter by trace_id, name or \
             start_ns, aggregate less, or add a LIMIT"
        );
        // The connection goes on serving.
        assert_eq!(rows(&store, "SELECT 1").rows, [vec![SqlValue::Integer(1)]]);
    }

    #[test]
    fn a_slow_query_stops_at_its_time_limit() {
        let Some((store, _)) = stores() else { return };
        let error = store
            .query_sql(
                "SELECT pg_sleep(5)",
                SqlLimits {
                    max_rows: 10,
                    timeout: std::time::Duration::from_millis(200),
                    ..SqlLimits::default()
                },
            )
            .unwrap_err();
        assert!(matches!(error, SqlError::TimeLimit(_)), "{error}");
        // The connection is still usable afterwards.
        assert_eq!(
            rows(&store, "SELECT 1 AS one").rows,
            [vec![SqlValue::Integer(1)]]
        );
    }
}
