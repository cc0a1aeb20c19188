//! The read-only SQL guard (`Store::query_sql` on SQLite): any statement text, run against a
//! small store, must come back as rows within the limits or as an error — never a panic, a
//! write, a read of anything but the documented views, or a result past its caps. A canary
//! in a table of its own beside the store's, which no view reads, must never appear in a result.
#![no_main]
use devtrace_model::{KeyValue, Resource, Scope, Span, SpanBatch, SpanId, TraceId, semconv};
use devtrace_store::sql::{SqlLimits, SqlValue};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{Store, StoreWriter, prepare_spans};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use std::time::Duration;

const CANARY: &str = "canary-7f3a9c-outside-the-views";

static STORE: LazyLock<(tempfile::TempDir, SqliteStore)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    let spans = (1..=4u8)
        .map(|id| Span {
            attributes: vec![KeyValue::new("db.statement", "SELECT 1")],
            ..Span::new(
                TraceId([1; 16]),
                SpanId([id; 8]),
                (id > 1).then_some(SpanId([1; 8])),
                if id == 1 { "GET /a" } else { "SELECT" },
                u64::from(id) * 10,
                u64::from(id) * 10 + 5,
            )
        })
        .collect();
    writer
        .write(&[prepare_spans(SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "api")],
                ..Default::default()
            }],
            scopes: vec![Scope::default()],
            spans,
        })])
        .unwrap();
    drop(writer);
    // A table beside the store's own, which no documented view reads.
    let conn = rusqlite::Connection::open(dir.path().join("devtrace.db")).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE fuzz_canary(secret TEXT); INSERT INTO fuzz_canary VALUES ('{CANARY}');"
    ))
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
});

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let (_, store) = &*STORE;
    let limits = SqlLimits {
        max_rows: 50,
        timeout: Duration::from_secs(2),
        max_result_bytes: 64 * 1024,
    };
    let Ok(result) = store.query_sql(sql, limits) else {
        return;
    };
    assert!(
        result.rows.len() <= limits.max_rows,
        "{} rows",
        result.rows.len()
    );
    // The result's size as the guard counts it: text by its length (+2), anything else 8.
    let result_bytes: usize = result
        .rows
        .iter()
        .flatten()
        .map(|v| match v {
            SqlValue::Text(t) => t.len() + 2,
            _ => 8,
        })
        .sum();
    assert!(
        result_bytes <= limits.max_result_bytes,
        "{result_bytes} bytes returned past the cap of {}",
        limits.max_result_bytes
    );
    let secret_in_input = sql.contains(CANARY);
    for value in result.rows.iter().flatten() {
        if let SqlValue::Text(t) = value {
            assert!(
                secret_in_input || !t.contains(CANARY),
                "a table outside the views was read: {sql:?}"
            );
        }
    }
});
