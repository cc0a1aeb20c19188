//! `devtrace query`: read-only SQL over the documented views, on a server span and the log record
//! it wrote (tests/fixtures/otlp, OTLP/JSON), as a table, as JSON, and refusals.

mod common;

use common::{devtrace, stderr, stdout};
use serde_json::json;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/otlp")
        .join(name)
}

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let trace = fixture("trace.json");
    let logs = fixture("logs.json");
    let imported = devtrace(
        dir.path(),
        &["import", trace.to_str().unwrap(), logs.to_str().unwrap()],
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    dir
}

#[test]
fn a_query_prints_an_aligned_table_with_its_row_count() {
    let dir = store();
    let out = devtrace(
        dir.path(),
        &["query", "SELECT name, duration_ns, kind FROM spans"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "name              duration_ns  kind\n\
         GET /orders/{id}    250000000  server\n\
         (1 row)\n"
    );
    // Logs join their spans.
    let joined = devtrace(
        dir.path(),
        &[
            "query",
            "SELECT s.name, l.severity, l.body FROM logs l JOIN spans s USING (trace_id, span_id)",
        ],
    );
    assert!(
        stdout(&joined).contains("GET /orders/{id}  INFO      order 4711 loaded from the cache\n"),
        "{}",
        stdout(&joined)
    );
}

#[test]
fn json_has_the_columns_the_rows_and_whether_there_were_more() {
    let dir = store();
    let out = devtrace(
        dir.path(),
        &[
            "query",
            "SELECT trace_id, span_count FROM traces UNION ALL SELECT 'x', 2",
            "--max-rows",
            "1",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let value: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        value,
        json!({"columns": ["trace_id", "span_count"], "rows": [["0af7651916cd43dd8448eb211c80319c", 1]], "more": true})
    );
    let table = stdout(&devtrace(
        dir.path(),
        &["query", "SELECT 1 UNION ALL SELECT 2", "--max-rows", "1"],
    ));
    assert!(
        table.ends_with(
            "(1 row; more exist beyond --max-rows 1: raise it, aggregate, or add WHERE)\n"
        ),
        "{table}"
    );
}

#[test]
fn writes_and_mistakes_are_refused_with_a_message_and_change_nothing() {
    let dir = store();
    let refused = devtrace(dir.path(), &["query", "DELETE FROM traces"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("refused: DELETE statements. SQL here is read-only"),
        "{}",
        stderr(&refused)
    );
    let unknown = devtrace(dir.path(), &["query", "SELECT * FROM nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains(
        "no such table: nope. The views are traces, spans, operations, trace_services and logs"
    ));
    let count = devtrace(
        dir.path(),
        &["query", "SELECT count(*) AS n FROM traces", "--json"],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&stdout(&count)).unwrap()["rows"],
        json!([[1]]),
        "the store is unchanged"
    );
    let bad_timeout = devtrace(dir.path(), &["query", "SELECT 1", "--timeout", "soon"]);
    assert_eq!(bad_timeout.status.code(), Some(2), "a usage error");
}

#[test]
fn the_schema_needs_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = devtrace(&dir.path().join("none"), &["query", "--schema"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{}\n", devtrace_store::sql::SCHEMA));
}
