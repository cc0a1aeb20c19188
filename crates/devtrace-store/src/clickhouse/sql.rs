//! The read-only SQL tool (`query_sql`, `devtrace query`, MCP's `sql`) on ClickHouse: views,
//! an allow-list checked on the engine's own parse, and a bounded, project-scoped run.
//!
//! **The views** ([`SCHEMA`]) live in a database of their own beside devtrace's
//! (`<database>_sql`, created on first use), which holds nothing else; every query runs with it
//! as its current database. They have the SQLite tool's names and columns (ids as lower-case
//! hex) for `traces`, `operations` and `trace_services`; spans and logs are not offered (as on
//! PostgreSQL).
//!
//! **The check**, before anything runs. A statement is checked on `EXPLAIN AST <statement>`, which only parses: nothing is read.
//! (`EXPLAIN QUERY TREE` is not safe as the first check: its analysis runs scalar subqueries,
//! so `SELECT toUInt8((SELECT any(x) FROM merge(…)))` read another project's value while being
//! explained, measured on the engine here.) The dump is one node a line, indented by depth;
//! [`check_ast`] accepts it only when every node is of a kind it knows, every table named is
//! one of the offered views (unqualified, or qualified by the SQL database), no table function
//! appears at all, and no function reads data outside the query. Anything else is refused,
//! naming what (fail closed). Then the engine's resolution (`EXPLAIN QUERY TREE`, run under the
//! same bounds and filters as the query, now that only the views can be read) is checked too
//! ([`check_tree`]): every table it resolved is an offered view of the SQL database (or
//! `system.one`, what a SELECT without FROM reads), and no table function or refused function
//! appears.
//!
//! **The run**: `readonly=1` (no write, no change of settings, no DDL), `additional_table_filters`
//! pinning `project = N` on every devtrace table that has a project (the views read them with
//! the filter applied), `max_execution_time` (what is left of the query's time limit),
//! `max_memory_usage` ([`MAX_QUERY_HEAP_BYTES`]), and the rows stopped at the row and byte
//! limits (`result_overflow_mode = 'break'`, then cut here, saying there were more).

use super::ChStore;
use super::http::ServerError;
use crate::StoreError;
use crate::sql::{
    MAX_QUERY_HEAP_BYTES, MAX_STATEMENT_BYTES, SqlError, SqlLimits, SqlRows, SqlValue,
    first_keyword,
};
use std::time::{Duration, Instant};

/// The views the tool offers, in the SQL database beside devtrace's own.
pub(crate) const OFFERED: &[&str] = &["traces", "operations", "trace_services"];

/// The views `query_sql` offers on ClickHouse (the tool's description there).
pub const SCHEMA: &str = "\
traces(trace_id, start_ns, end_ns, duration_ns, span_count, error_count, root_name, service, is_run)
  one row per trace; ids are 32 lower-case hex; times are Unix nanoseconds; is_run: 1 for `devtrace run`
operations(name, service, kind, trace_id, start_ns)
  which traces contain a span of each operation, an operation being (name, service, kind)
trace_services(trace_id, service, spans, errors)
  which services have spans in each trace, how many and how many failed
ClickHouse syntax; read-only; no table functions (numbers(), merge(), url() …), no system tables,
no dictionaries. Spans and logs are not SQL views on the ClickHouse store: use get_trace,
search_traces or analyze_operation for per-span questions.
Examples:
  SELECT root_name, count(), avg(duration_ns)/1e9 AS s FROM traces WHERE error_count > 0 GROUP BY 1
  SELECT o.name, count() FROM operations o JOIN traces t USING (trace_id) WHERE t.start_ns > 0 GROUP BY 1 ORDER BY 2 DESC";

/// The views' statements; `{db}` is devtrace's database, `{sql}` the views' own. Each reads
/// `trace_parts` (one row per stored piece of a trace) and aggregates it per trace, as the
/// store's own listing does.
const VIEWS: &[&str] = &[
    "CREATE VIEW IF NOT EXISTS {sql}.traces AS
     SELECT lower(hex(t)) AS trace_id, s AS start_ns, e AS end_ns,
            toUInt64(r.4 - r.3) AS duration_ns, n AS span_count, f AS error_count,
            r.1 AS root_name, r.2 AS service, run AS is_run
     FROM (SELECT trace_id AS t, min(start_ns) AS s, max(end_ns) AS e, sum(span_count) AS n,
                  sum(error_count) AS f, max(is_run) AS run,
                  argMin(tuple(root_name, root_service, root_start_ns, root_end_ns),
                         tuple(1 - is_root, root_start_ns)) AS r
           FROM {db}.trace_parts FINAL GROUP BY project, trace_id)",
    "CREATE VIEW IF NOT EXISTS {sql}.operations AS
     SELECT op.1 AS name, op.2 AS service,
            multiIf(op.3 = 1, 'internal', op.3 = 2, 'server', op.3 = 3, 'client',
                    op.3 = 4, 'producer', op.3 = 5, 'consumer', 'unspecified') AS kind,
            lower(hex(t)) AS trace_id, s AS start_ns
     FROM (SELECT trace_id AS t, min(start_ns) AS s,
                  arrayDistinct(groupArrayArray(arrayZip(op_names, op_services, op_kinds))) AS ops
           FROM {db}.trace_parts FINAL GROUP BY project, trace_id)
     ARRAY JOIN ops AS op",
    "CREATE VIEW IF NOT EXISTS {sql}.trace_services AS
     SELECT lower(hex(t)) AS trace_id, sv.1 AS service, sum(sv.2) AS spans, sum(sv.3) AS errors
     FROM (SELECT trace_id AS t, arrayZip(services, service_spans, service_errors) AS z
           FROM {db}.trace_parts FINAL)
     ARRAY JOIN z AS sv GROUP BY t, sv.1",
];

/// The database the views live in, beside devtrace's `database`.
pub(crate) fn sql_database(database: &str) -> String {
    format!("{database}_sql")
}

/// Runs one read-only statement of the store's project: checked, then run bounded.
pub(crate) fn query(store: &ChStore, sql: &str, limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let deadline = Instant::now() + limits.timeout;
    if sql.len() > MAX_STATEMENT_BYTES {
        return Err(SqlError::StatementTooLong(sql.len()));
    }
    let statement = sql.trim().trim_end_matches(';').trim_end();
    // One statement: a server refuses several in one request, but an engine that ran them
    // would print the second's rows into the first's EXPLAIN, where they could pose as nodes.
    // Refused wherever the `;` stands (in a string too: write char(59) there).
    if statement.contains(';') {
        return Err(SqlError::RefusedOnClickHouse(
            "a ';' inside the statement (send one statement per call; in a string, write char(59))"
                .into(),
        ));
    }
    let keyword = first_keyword(statement);
    if !["SELECT", "WITH"].contains(&keyword.as_str()) {
        return Err(SqlError::RefusedOnClickHouse(if keyword.is_empty() {
            "an empty statement".into()
        } else {
            format!("{keyword} statements")
        }));
    }
    let server = &store.db.server;
    let sql_db = sql_database(&server.database);
    ensure_views(store)?;
    let bounds =
        |extra: &[(&'static str, String)]| -> Result<Vec<(&'static str, String)>, SqlError> {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SqlError::TimeLimit(limits.timeout));
            }
            let mut settings = vec![
                ("max_execution_time", format!("{:.3}", left.as_secs_f64())),
                ("max_memory_usage", MAX_QUERY_HEAP_BYTES.to_string()),
                (
                    "additional_table_filters",
                    project_filters(&server.database, store.project.0),
                ),
            ];
            settings.extend(extra.iter().cloned());
            // Last, as a server checks a request's settings before applying any of them.
            settings.push(("readonly", "1".into()));
            Ok(settings)
        };
    let classify = |e: ServerError| classify(e, limits.timeout);
    // The parse, which reads nothing.
    // TabSeparated escapes tabs and newlines in names: one node a line, whatever the names.
    let dump = [("default_format", "TabSeparated".to_owned())];
    let ast = server
        .query_with_settings(
            &format!("EXPLAIN AST {statement}"),
            &sql_db,
            &bounds(&dump)?,
        )
        .map_err(classify)?;
    check_ast(&String::from_utf8_lossy(&ast), &sql_db).map_err(SqlError::RefusedOnClickHouse)?;
    // The engine's resolution; the scalar subqueries its analysis runs read only the views.
    let tree = server
        .query_with_settings(
            &format!("EXPLAIN QUERY TREE {statement}"),
            &sql_db,
            &bounds(&dump)?,
        )
        .map_err(classify)?;
    check_tree(&String::from_utf8_lossy(&tree), &sql_db).map_err(SqlError::RefusedOnClickHouse)?;
    let rows = server
        .query_with_settings(
            statement,
            &sql_db,
            &bounds(&[
                ("default_format", "JSONCompactEachRowWithNames".into()),
                ("output_format_json_quote_64bit_integers", "0".into()),
                ("max_result_rows", (limits.max_rows + 1).to_string()),
                ("max_result_bytes", limits.max_result_bytes.to_string()),
                ("result_overflow_mode", "break".into()),
            ])?,
        )
        .map_err(classify)?;
    read_rows(&rows, limits)
}

/// `{'db.table': 'project = N', …}` for every devtrace table with a project column.
fn project_filters(database: &str, project: i64) -> String {
    let filters: Vec<String> = super::schema::DDL
        .iter()
        .filter(|t| t.body.starts_with("(project ") || t.body.contains(" project Int64"))
        .map(|t| format!("'{database}.{}': 'project = {project}'", t.name))
        .collect();
    format!("{{{}}}", filters.join(", "))
}

/// Creates the views' database and views when missing (once per process and store).
fn ensure_views(store: &ChStore) -> Result<(), SqlError> {
    let mut made = store.db.sql_views.lock().expect("views flag poisoned");
    if *made {
        return Ok(());
    }
    let server = &store.db.server;
    let sql_db = sql_database(&server.database);
    let on_cluster = server
        .cluster
        .as_ref()
        .map(|c| format!(" ON CLUSTER {c}"))
        .unwrap_or_default();
    let mut statements = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {sql_db}{on_cluster}"
    )];
    for view in VIEWS {
        let view = view
            .replace("{sql}", &sql_db)
            .replace("{db}", &server.database);
        statements.push(view.replacen(" AS\n", &format!("{on_cluster} AS\n"), 1));
    }
    for statement in statements {
        server
            .query_raw(&statement, None)
            .map_err(|e| SqlError::Store(server.error(e)))?;
    }
    // Unqualified names resolve there: it must hold the views and nothing else.
    let held = server
        .query_raw(
            &format!("SELECT name FROM system.tables WHERE database = '{sql_db}' FORMAT TSV"),
            None,
        )
        .map_err(|e| SqlError::Store(server.error(e)))?;
    let held = String::from_utf8_lossy(&held);
    if let Some(other) = held.lines().find(|name| !OFFERED.contains(name)) {
        return Err(SqlError::Store(StoreError::Database(format!(
            "the SQL tool's database {sql_db} holds a table {other} besides its views, so a query there could read it: drop it, or keep devtrace's database apart from one named {sql_db}"
        ))));
    }
    *made = true;
    Ok(())
}

/// The server's error as the tool's: its limits by name, a write refused, a mistake with the
/// server's words (escaped when shown) and the views named.
fn classify(error: ServerError, timeout: Duration) -> SqlError {
    const TIMEOUT_EXCEEDED: u32 = 159;
    const MEMORY_LIMIT_EXCEEDED: u32 = 241;
    const READONLY: u32 = 164;
    const QUERY_WAS_CANCELLED: u32 = 394;
    match error.code {
        0 => SqlError::Store(StoreError::Database(format!(
            "ClickHouse: {}",
            error.message
        ))),
        TIMEOUT_EXCEEDED | QUERY_WAS_CANCELLED => SqlError::TimeLimit(timeout),
        MEMORY_LIMIT_EXCEEDED => SqlError::MemoryLimit(MAX_QUERY_HEAP_BYTES),
        READONLY => SqlError::RefusedOnClickHouse(
            "the statement would change the store or its settings".into(),
        ),
        _ => {
            let message = error
                .message
                .split_once(": ")
                .map_or(error.message.as_str(), |(_, m)| m);
            SqlError::Invalid(format!(
                "SQL error: {message}. The views are traces, operations and trace_services (see the schema)"
            ))
        }
    }
}

/// The rows of a `JSONCompactEachRowWithNames` answer, cut at the limits.
fn read_rows(answer: &[u8], limits: SqlLimits) -> Result<SqlRows, SqlError> {
    let unexpected =
        |e: serde_json::Error| SqlError::Invalid(format!("unexpected answer from ClickHouse: {e}"));
    let mut lines = answer.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let columns: Vec<String> = match lines.next() {
        Some(line) => serde_json::from_slice(line).map_err(unexpected)?,
        None => Vec::new(),
    };
    let mut rows = Vec::new();
    let (mut more, mut byte_limit_reached, mut bytes) = (false, false, 0usize);
    for line in lines {
        if rows.len() == limits.max_rows {
            more = true;
            break;
        }
        let values: Vec<serde_json::Value> = serde_json::from_slice(line).map_err(unexpected)?;
        let row: Vec<SqlValue> = values.into_iter().map(sql_value).collect();
        let size: usize = row
            .iter()
            .map(|v| match v {
                SqlValue::Text(t) => t.len() + 2,
                _ => 8,
            })
            .sum();
        if bytes + size > limits.max_result_bytes {
            more = true;
            byte_limit_reached = true;
            break;
        }
        bytes += size;
        rows.push(row);
    }
    Ok(SqlRows {
        columns,
        rows,
        more,
        byte_limit_reached,
    })
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
        Value::String(s) => SqlValue::Text(s),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Checks the dump of `EXPLAIN QUERY TREE <statement>`: every resolved table an offered view
/// of `sql_database` (or `system.one`), no table function, no refused function.
pub(crate) fn check_tree(dump: &str, sql_database: &str) -> Result<(), String> {
    for line in dump.lines().map(str::trim_start) {
        let field = |name: &str| {
            line.split(", ")
                .find_map(|part| part.strip_prefix(name))
                .map(str::trim)
        };
        if line.starts_with("TABLE_FUNCTION id:") {
            let name = field("table_function_name: ").unwrap_or("?");
            return Err(format!(
                "the table function {name}() (no table function is allowed)"
            ));
        }
        if line.starts_with("TABLE id:") {
            let name = field("table_name: ").unwrap_or("?");
            let offered = name
                .strip_prefix(sql_database)
                .and_then(|v| v.strip_prefix('.'))
                .is_some_and(|v| OFFERED.contains(&v));
            if !offered && name != "system.one" {
                return Err(format!("reading the table {name}"));
            }
        }
        if line.starts_with("FUNCTION id:") {
            check_function(field("function_name: ").unwrap_or("?"))?;
        }
    }
    Ok(())
}

/// AST node kinds a read-only SELECT is made of; any other kind is refused.
const KNOWN_NODES: &[&str] = &[
    "SelectWithUnionQuery",
    "SelectIntersectExceptQuery",
    "SelectQuery",
    "ExpressionList",
    "WithElement",
    "Subquery",
    "Identifier",
    "TableIdentifier",
    "TablesInSelectQuery",
    "TablesInSelectQueryElement",
    "TableExpression",
    "TableJoin",
    "ArrayJoin",
    "Function",
    "Literal",
    "Asterisk",
    "QualifiedAsterisk",
    "ColumnsRegexpMatcher",
    "ColumnsListMatcher",
    "QualifiedColumnsRegexpMatcher",
    "QualifiedColumnsListMatcher",
    "ColumnsTransformerList",
    "ColumnsExceptTransformer",
    "ColumnsReplaceTransformer",
    "ColumnsApplyTransformer",
    "OrderByElement",
    "WindowListElement",
    "WindowDefinition",
    "Interpolate",
    "InterpolateElement",
    "LambdaFunction",
];

/// Ordinary functions that read data outside the query or the server's state, refused by
/// (lower-case) name prefix: dictionaries, Join tables, files, models, Keeper, server settings
/// and macros, introspection, and the engine's internal `__` functions.
const REFUSED_FUNCTION_PREFIXES: &[&str] = &[
    "dict",
    "joinget",
    "catboost",
    "naivebayes",
    "modelevaluate",
    "evalmlmethod",
    "generateserialid",
    "hascolumnintable",
    "getserversetting",
    "getmergetreesetting",
    "getmacro",
    "getsetting",
    "getclienthttpheader",
    "filesystem",
    "showcertificate",
    "addressto",
    "demangle",
    "zookeeper",
    "__",
];

/// Ordinary functions refused by exact (lower-case) name: they share a name with a table
/// function or read a file.
const REFUSED_FUNCTIONS: &[&str] = &["file", "url", "s3", "input", "remote", "cluster"];

/// The membership functions whose right side may name a table (`x IN db.table`).
const IN_FUNCTIONS: &[&str] = &[
    "in",
    "notin",
    "globalin",
    "globalnotin",
    "nullin",
    "notnullin",
    "globalnullin",
    "globalnotnullin",
];

/// Checks the dump of `EXPLAIN AST <statement>`; `Err` names what was refused.
pub(crate) fn check_ast(dump: &str, sql_database: &str) -> Result<(), String> {
    let nodes: Vec<Node<'_>> = dump.lines().filter_map(Node::parse).collect();
    if nodes.iter().filter(|n| n.depth == 0).count() > 1 {
        return Err("more than one statement".into());
    }
    match nodes.first() {
        Some(root) if root.kind == "SelectWithUnionQuery" => {
            // FORMAT, INTO OUTFILE and the like are further children of the root.
            if nodes.iter().filter(|n| n.depth == 1).count() != 1 {
                return Err("a FORMAT, INTO OUTFILE or other clause after the SELECT".into());
            }
        }
        Some(root) => return Err(format!("a statement of kind {}", root.kind)),
        None => return Err("an empty statement".into()),
    }
    for (at, node) in nodes.iter().enumerate() {
        if !KNOWN_NODES.contains(&node.kind) {
            return Err(format!("a {} clause (not a plain SELECT)", node.kind));
        }
        let parent = parent_of(&nodes, at);
        match node.kind {
            "TableIdentifier" => check_table(node.name, sql_database)?,
            "Function" if parent.is_some_and(|p| p.kind == "TableExpression") => {
                return Err(format!(
                    "the table function {}() (no table function is allowed)",
                    node.name
                ));
            }
            "Function" => check_function(node.name)?,
            // `x IN db.table`: an identifier as the right side of IN names a table.
            "Identifier" if is_in_right_side(&nodes, at) => check_table(node.name, sql_database)?,
            _ => {}
        }
    }
    Ok(())
}

fn check_table(name: &str, sql_database: &str) -> Result<(), String> {
    let plain =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let view = match name.split_once('.') {
        None if plain(name) => return Ok(()), // an offered view or a CTE of the statement
        Some((database, view)) if database == sql_database && plain(view) => view,
        _ => "",
    };
    if OFFERED.contains(&view) {
        Ok(())
    } else {
        Err(format!("reading the table {name}"))
    }
}

fn check_function(name: &str) -> Result<(), String> {
    let lower = name.to_ascii_lowercase();
    if REFUSED_FUNCTIONS.contains(&lower.as_str())
        || REFUSED_FUNCTION_PREFIXES
            .iter()
            .any(|p| lower.starts_with(p))
    {
        Err(format!(
            "the function {name}() (it reads data outside the query)"
        ))
    } else {
        Ok(())
    }
}

/// True when node `at` is the second argument of an IN-family function.
fn is_in_right_side(nodes: &[Node<'_>], at: usize) -> bool {
    let Some(list_at) = parent_index(nodes, at) else {
        return false;
    };
    let Some(function) = parent_of(nodes, list_at) else {
        return false;
    };
    let first_argument = nodes[list_at + 1..at]
        .iter()
        .all(|n| n.depth > nodes[at].depth);
    function.kind == "Function"
        && IN_FUNCTIONS.contains(&function.name.to_ascii_lowercase().as_str())
        && !first_argument
}

fn parent_index(nodes: &[Node<'_>], at: usize) -> Option<usize> {
    let depth = nodes[at].depth;
    nodes[..at].iter().rposition(|n| n.depth < depth)
}

fn parent_of<'a>(nodes: &'a [Node<'a>], at: usize) -> Option<&'a Node<'a>> {
    parent_index(nodes, at).map(|i| &nodes[i])
}

/// One line of the dump: `<depth spaces>Kind name (alias a) (children n)`.
struct Node<'a> {
    depth: usize,
    kind: &'a str,
    name: &'a str,
}

impl<'a> Node<'a> {
    fn parse(line: &'a str) -> Option<Self> {
        let text = line.trim_start_matches(' ');
        if text.is_empty() {
            return None;
        }
        let depth = line.len() - text.len();
        let text = text
            .rsplit_once(" (children ")
            .map_or(text, |(before, _)| before)
            .trim_end();
        let text = text
            .rsplit_once(" (alias ")
            .map_or(text, |(before, _)| before);
        let (kind, name) = text.split_once(' ').unwrap_or((text, ""));
        Some(Node {
            depth,
            kind,
            name: name.trim(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clickhouse::{ChStore, ChWriter, testing};
    use crate::conformance::{batch, span};
    use crate::{ProjectId, Store, StoreWriter};

    /// The engine's own `EXPLAIN AST` of `sql`, or its error.
    fn explain(store: &ChStore, sql: &str) -> Result<String, String> {
        store
            .db
            .server
            .query_raw(
                &format!("EXPLAIN AST {sql}"),
                Some(&store.db.server.database),
            )
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|e| e.message)
    }

    /// A fresh store with `traces` traces of service `api` in project 1 and one trace of
    /// service `secret` (operation `secret op`) in project 2; the store scoped to project 1.
    fn two_projects(traces: u8) -> Option<ChStore> {
        let url = testing::fresh_database(&testing::server()?);
        let mut writer = ChWriter::open(&url).unwrap();
        let store = ChStore::open(&url).unwrap().scoped(ProjectId(1));
        let ours = (1..=traces)
            .map(|t| {
                span(
                    t,
                    1,
                    None,
                    "GET /",
                    1_000 * u64::from(t),
                    1_000 * u64::from(t) + 500,
                )
            })
            .collect();
        let mut mine = crate::prepare_spans(batch("api", ours));
        mine.project = ProjectId(1);
        let mut theirs =
            crate::prepare_spans(batch("secret", vec![span(200, 1, None, "secret op", 5, 9)]));
        theirs.project = ProjectId(2);
        writer.write(&[mine, theirs]).unwrap();
        Some(store)
    }

    /// Limits with room for the front, which serves one request at a time to every test
    /// running at once.
    fn roomy() -> SqlLimits {
        SqlLimits {
            timeout: Duration::from_secs(120),
            ..SqlLimits::default()
        }
    }

    fn rows(store: &ChStore, sql: &str) -> SqlRows {
        store
            .query_sql(sql, roomy())
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    #[test]
    fn a_query_reads_the_projects_rows_in_the_sqlite_tools_columns() {
        let Some(store) = two_projects(2) else { return };
        let traces = rows(&store, "SELECT * FROM traces ORDER BY start_ns");
        assert_eq!(
            traces.columns,
            [
                "trace_id",
                "start_ns",
                "end_ns",
                "duration_ns",
                "span_count",
                "error_count",
                "root_name",
                "service",
                "is_run"
            ]
        );
        assert_eq!(traces.rows.len(), 2, "{traces:?}");
        assert_eq!(
            traces.rows[0],
            [
                SqlValue::Text("01".repeat(16)),
                SqlValue::Integer(1_000),
                SqlValue::Integer(1_500),
                SqlValue::Integer(500),
                SqlValue::Integer(1),
                SqlValue::Integer(0),
                SqlValue::Text("GET /".into()),
                SqlValue::Text("api".into()),
                SqlValue::Integer(0),
            ]
        );
        let ops = rows(&store, "SELECT * FROM operations ORDER BY trace_id");
        assert_eq!(
            ops.columns,
            ["name", "service", "kind", "trace_id", "start_ns"]
        );
        assert_eq!(
            ops.rows[1],
            [
                SqlValue::Text("GET /".into()),
                SqlValue::Text("api".into()),
                SqlValue::Text("server".into()),
                SqlValue::Text("02".repeat(16)),
                SqlValue::Integer(2_000),
            ]
        );
        let services = rows(&store, "SELECT * FROM trace_services ORDER BY trace_id");
        assert_eq!(services.columns, ["trace_id", "service", "spans", "errors"]);
        assert_eq!(services.rows.len(), 2);
        assert_eq!(services.rows[0][2], SqlValue::Integer(1));
        // The other project sees its own trace only.
        let theirs = rows(
            &store.scoped(ProjectId(2)),
            "SELECT root_name, service FROM traces",
        );
        assert_eq!(
            theirs.rows,
            [[
                SqlValue::Text("secret op".into()),
                SqlValue::Text("secret".into())
            ]]
        );
        // Joins, CTEs, unions, IN and scalar subqueries over the views work.
        for sql in [
            "SELECT count() FROM traces AS t JOIN trace_services AS s USING (trace_id)",
            "WITH x AS (SELECT trace_id FROM traces) SELECT count() FROM x",
            "SELECT count() FROM (SELECT trace_id FROM traces UNION DISTINCT SELECT trace_id FROM operations)",
            "SELECT count() FROM operations WHERE trace_id IN (SELECT trace_id FROM traces)",
            "SELECT (SELECT count() FROM traces) * 1",
        ] {
            assert_eq!(rows(&store, sql).rows[0][0], SqlValue::Integer(2), "{sql}");
        }
    }

    #[test]
    fn the_schema_names_every_column_of_every_view() {
        let Some(store) = two_projects(1) else { return };
        for line in SCHEMA
            .lines()
            .filter(|l| !l.starts_with(' ') && l.contains('(') && l.ends_with(')'))
        {
            let (view, columns) = line.split_once('(').unwrap();
            let documented: Vec<&str> = columns.trim_end_matches(')').split(", ").collect();
            let actual = rows(&store, &format!("SELECT * FROM {view} LIMIT 0")).columns;
            assert_eq!(actual, documented, "view {view}");
        }
    }

    /// Every way around the project filter the issue names is refused, naming what; none
    /// reads project 2's trace.
    #[test]
    fn another_projects_rows_cannot_be_read_by_any_way_around() {
        let Some(store) = two_projects(1) else { return };
        let own = store.db.server.database.clone();
        for sql in [
            "SELECT count() FROM traces WHERE service = 'secret'".to_owned(),
            "SELECT count() FROM operations WHERE name = 'secret op'".into(),
            "SELECT count() FROM trace_services WHERE service = 'secret'".into(),
        ] {
            assert_eq!(rows(&store, &sql).rows, [[SqlValue::Integer(0)]], "{sql}");
        }
        for (sql, refused) in [
            (
                format!("SELECT * FROM merge('{own}', '^spans$')"),
                "table function merge()",
            ),
            (
                format!("SELECT * FROM remote('127.0.0.1', '{own}', 'spans')"),
                "table function remote()",
            ),
            (format!("SELECT * FROM {own}.spans"), "reading the table"),
            (
                format!("SELECT * FROM {own}.trace_parts"),
                "reading the table",
            ),
            (
                format!(
                    "SELECT * FROM traces WHERE trace_id IN (SELECT lower(hex(trace_id)) FROM {own}.spans)"
                ),
                "reading the table",
            ),
            (
                format!("SELECT (SELECT any(name) FROM merge('{own}', 'spans'))"),
                "table function merge()",
            ),
            (
                format!("SELECT toUInt8((SELECT any(name) FROM merge('{own}', 'spans')))"),
                "table function merge()",
            ),
            (
                format!("SELECT * FROM (SELECT * FROM {own}.trace_parts)"),
                "reading the table",
            ),
            (
                format!("WITH x AS (SELECT * FROM {own}.trace_parts) SELECT * FROM x"),
                "reading the table",
            ),
            (
                format!(
                    "WITH traces AS (SELECT * FROM merge('{own}', 'trace_parts')) SELECT * FROM traces"
                ),
                "merge()",
            ),
            (
                format!(
                    "SELECT trace_id FROM traces UNION ALL SELECT lower(hex(trace_id)) FROM {own}.spans"
                ),
                "reading the table",
            ),
            (
                format!("SELECT * FROM traces AS t JOIN {own}.trace_parts AS p ON 1"),
                "reading the table",
            ),
            (
                format!("SELECT * FROM traces WHERE trace_id IN {own}.spans"),
                "reading the table",
            ),
            (
                format!(
                    "SELECT * FROM traces WHERE trace_id IN (SELECT trace_id FROM merge('{own}', 'spans'))"
                ),
                "merge()",
            ),
            (
                "SELECT query FROM system.processes".into(),
                "system.processes",
            ),
            ("SELECT * FROM system.tables".into(), "system.tables"),
            ("SELECT * FROM system.query_log".into(), "system.query_log"),
            ("SELECT dictGet('d', 'a', toUInt64(1))".into(), "dictGet()"),
            ("SELECT joinGet('j', 'a', 1)".into(), "joinGet()"),
            ("SELECT file('x')".into(), "file()"),
            (
                "SELECT getSetting('additional_table_filters')".into(),
                "getSetting()",
            ),
            (
                "SELECT * FROM view(SELECT 1)".into(),
                "table function view()",
            ),
            (
                "SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')".into(),
                "table function url()",
            ),
            (
                "SELECT 1 INTO OUTFILE '/tmp/devtrace-outfile'".into(),
                "INTO OUTFILE",
            ),
            ("SELECT 1 FORMAT JSON".into(), "FORMAT"),
            (
                format!("SELECT 1; SELECT name FROM merge('{own}', 'spans')"),
                "';'",
            ),
            // Rows that would pose as nodes of the first statement's EXPLAIN.
            (
                format!(
                    "SELECT 1; SELECT concat('    Literal ', name) FROM merge('{own}', 'spans')"
                ),
                "';'",
            ),
        ] {
            let error = store.query_sql(&sql, roomy()).unwrap_err();
            let message = error.to_string();
            assert!(
                matches!(error, SqlError::RefusedOnClickHouse(_)),
                "{sql}: {error:?}"
            );
            assert!(
                message.contains(refused)
                    && message.contains("traces, operations and trace_services"),
                "{sql}: {message}"
            );
        }
    }

    #[test]
    fn writes_and_settings_are_refused_and_change_nothing() {
        let Some(store) = two_projects(1) else { return };
        let own = store.db.server.database.clone();
        for (sql, refused) in [
            (
                format!("INSERT INTO {own}.trace_parts SELECT * FROM {own}.trace_parts"),
                "INSERT statements",
            ),
            (
                format!("ALTER TABLE {own}.spans DELETE WHERE 1"),
                "ALTER statements",
            ),
            (format!("DROP TABLE {own}.spans"), "DROP statements"),
            ("SET readonly = 0".into(), "SET statements"),
            (
                format!("WITH 1 AS x INSERT INTO {own}.spans SELECT * FROM {own}.spans"),
                "InsertQuery",
            ),
            ("SELECT 1 SETTINGS readonly = 0".into(), "settings"),
            ("".into(), "an empty statement"),
        ] {
            let error = store.query_sql(&sql, roomy()).unwrap_err();
            assert!(
                matches!(error, SqlError::RefusedOnClickHouse(_)),
                "{sql}: {error:?}"
            );
            assert!(error.to_string().contains(refused), "{sql}: {error}");
        }
        let several = store
            .query_sql(&format!("SELECT 1; DROP TABLE {own}.spans"), roomy())
            .unwrap_err();
        // A server refuses several statements in one request; the front's engine ran the second
        // under readonly=1, which refused it.
        assert!(
            matches!(
                several,
                SqlError::Invalid(_) | SqlError::RefusedOnClickHouse(_)
            ),
            "{several:?}"
        );
        assert_eq!(store.stats().unwrap().spans, 1, "the spans are still there");
    }

    /// A runaway query stops at its bound with an error naming it; rows stop at the row and
    /// byte limits, saying there were more.
    #[test]
    fn runaway_queries_stop_at_their_bounds() {
        let Some(store) = two_projects(200) else {
            return;
        };
        let error = store
            .query_sql("SELECT count() FROM numbers(1e12)", roomy())
            .unwrap_err();
        assert!(
            error.to_string().contains("table function numbers()"),
            "{error}"
        );
        let error = store
            .query_sql(
                "SELECT count() FROM traces a, traces b, traces c, traces d, traces e",
                SqlLimits {
                    timeout: Duration::from_secs(1),
                    ..roomy()
                },
            )
            .unwrap_err();
        assert!(matches!(error, SqlError::TimeLimit(_)), "{error:?}");
        let error = store
            .query_sql(
                "SELECT groupArray(repeat(a.root_name, 100000)) FROM traces a, traces b",
                roomy(),
            )
            .unwrap_err();
        assert!(matches!(error, SqlError::MemoryLimit(_)), "{error:?}");
        assert!(
            error.to_string().contains("memory limit of 128 MB"),
            "{error}"
        );
        let limited = store
            .query_sql(
                "SELECT * FROM traces",
                SqlLimits {
                    max_rows: 3,
                    ..roomy()
                },
            )
            .unwrap();
        assert_eq!((limited.rows.len(), limited.more), (3, true));
        let limited = store
            .query_sql(
                "SELECT trace_id FROM traces",
                SqlLimits {
                    max_result_bytes: 340,
                    ..roomy()
                },
            )
            .unwrap();
        assert_eq!(limited.rows.len(), 10, "34 bytes a row");
        assert!(limited.more && limited.byte_limit_reached);
    }

    #[test]
    fn the_allow_list_refuses_every_way_around_the_project_and_accepts_the_views() {
        let Some(store) = two_projects(1) else { return };
        let sql_db = format!("{}_sql", store.db.server.database);
        let check = |sql: &str| -> Result<(), String> {
            match explain(&store, sql) {
                Ok(dump) => check_ast(&dump, &sql_db),
                Err(engine) => Err(format!("engine: {engine}")),
            }
        };
        for sql in [
            String::from("SELECT * FROM traces"),
            "SELECT count() FROM traces AS t JOIN trace_services AS s USING (trace_id)".into(),
            format!(
                "SELECT * FROM {sql_db}.operations WHERE trace_id IN (SELECT trace_id FROM traces)"
            ),
            "WITH x AS (SELECT trace_id FROM traces) SELECT count() FROM x".into(),
            "SELECT root_name FROM traces UNION ALL SELECT name FROM operations".into(),
            "SELECT 1, (SELECT count() FROM traces), upper('a'), arrayMap(x -> x + 1, [1])".into(),
            "SELECT trace_id FROM traces WHERE trace_id IN ('a', 'b')".into(),
        ] {
            assert_eq!(check(&sql), Ok(()), "{sql}");
        }
        let own = store.db.server.database.clone();
        for (sql, refused) in [
            (format!("SELECT * FROM {own}.spans"), "table"),
            (
                format!("SELECT * FROM merge('{own}', '^spans$')"),
                "table function merge",
            ),
            (
                "SELECT * FROM remote('127.0.0.1', system.one)".into(),
                "table function remote",
            ),
            (
                "SELECT count() FROM numbers(1e12)".into(),
                "table function numbers",
            ),
            (
                "SELECT * FROM url('http://x', CSV)".into(),
                "table function url",
            ),
            (
                format!(
                    "SELECT * FROM traces WHERE trace_id IN (SELECT hex(trace_id) FROM {own}.spans)"
                ),
                "table",
            ),
            (
                format!("SELECT (SELECT any(name) FROM merge('{own}', 'spans'))"),
                "table function merge",
            ),
            (
                format!("WITH x AS (SELECT * FROM {own}.trace_parts) SELECT * FROM x"),
                "table",
            ),
            (
                format!(
                    "SELECT trace_id FROM traces UNION ALL SELECT hex(trace_id) FROM {own}.spans"
                ),
                "table",
            ),
            (
                format!("SELECT * FROM traces JOIN {own}.trace_parts AS p ON 1"),
                "table",
            ),
            (
                format!("SELECT * FROM traces WHERE trace_id IN {own}.spans"),
                "table",
            ),
            (
                "SELECT query FROM system.processes".into(),
                "system.processes",
            ),
            ("SELECT * FROM system.tables".into(), "system.tables"),
            ("SELECT dictGet('d', 'a', 1)".into(), "dictGet"),
            ("SELECT joinGet('j', 'a', 1)".into(), "joinGet"),
            ("SELECT file('x')".into(), "file"),
            (
                "SELECT * FROM traces, view(SELECT 1)".into(),
                "table function view",
            ),
            (
                format!("INSERT INTO {own}.spans SELECT * FROM {own}.spans"),
                "InsertQuery",
            ),
            (format!("ALTER TABLE {own}.spans DELETE WHERE 1"), "kind"),
            (format!("DROP TABLE {own}.spans"), "kind"),
            ("SET readonly = 0".into(), "kind"),
            ("SELECT 1 SETTINGS readonly = 0".into(), ""),
        ] {
            let error = check(&sql).expect_err(&sql);
            assert!(error.contains(refused), "{sql}: {error}");
        }
    }
}
