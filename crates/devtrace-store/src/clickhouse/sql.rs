//! The allow-list for the read-only SQL tool on ClickHouse, checked on the engine's own parse
//! (issue 32). Not wired into `query_sql` yet: the store still refuses the tool
//! (`SqlError::NotOnClickHouse`) until the views, the bounded run and the tests through the
//! front prove the whole promise (docs/team.md).
//!
//! A statement is checked on `EXPLAIN AST <statement>`, which only parses: nothing is read.
//! (`EXPLAIN QUERY TREE` is not safe as the first check: its analysis runs scalar subqueries,
//! so `SELECT toUInt8((SELECT any(x) FROM merge(…)))` read another project's value while being
//! explained, measured on the engine here.) The dump is one node a line, indented by depth;
//! [`check_ast`] accepts it only when every node is of a kind it knows, every table named is
//! one of the offered views (unqualified, or qualified by the SQL database), no table function
//! appears at all, and no function reads data outside the query. Anything else is refused,
//! naming what (fail closed).

/// The views the tool offers, in the SQL database beside devtrace's own.
pub(crate) const OFFERED: &[&str] = &["traces", "operations", "trace_services"];

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
    match nodes.first() {
        Some(root) if root.kind == "SelectWithUnionQuery" => {}
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

    #[test]
    fn the_allow_list_refuses_every_way_around_the_project_and_accepts_the_views() {
        let Some(url) = testing::server() else { return };
        let url = testing::fresh_database(&url);
        let _writer = ChWriter::open(&url).unwrap();
        let store = ChStore::open(&url).unwrap();
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
