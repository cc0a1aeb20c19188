//! devtrace's tables on ClickHouse, created when missing, and the server version it needs.
//!
//! Spans are rows ordered by (project, trace id, span id): a trace is read by its primary
//! key, never by a scan, and `ReplacingMergeTree` keeps one row per span whatever was re-sent
//! (the newest `version` wins; the writer gives a first-stored span the highest, so the first
//! stored version is the one kept). Each span row carries its typed columns (name, service,
//! kind, times, failure), its attributes as `Map(LowCardinality(String), String)`, and the span
//! itself in devtrace's chunk encoding (`body`), so a trace reads back exactly as received.
//! Lists read `trace_parts`: one summary row per stored piece of a trace, aggregated when read.
//! Everything is partitioned by day of its time where it has one. `commits` is the feed of
//! writes every node polls for live updates (see `feed`), kept a day.
//!
//! [`DDL`] is the single-node schema; [`cluster_ddl`] the same for a cluster (`ON CLUSTER`,
//! `ReplicatedMergeTree` tables and a `Distributed` table in front of each).

use super::http::{Server, UNKNOWN_DATABASE};
use crate::{Result, StoreError};

/// The oldest ClickHouse devtrace runs on: lightweight `DELETE` (23.3), `Map` keys of
/// `LowCardinality(String)` and `param_*` arrays.
pub(crate) const MIN_VERSION: (u32, u32) = (23, 8);

/// The day partition of a nanosecond time column.
macro_rules! day {
    ($column:literal) => {
        concat!(
            "toYYYYMMDD(fromUnixTimestamp64Nano(toInt64(",
            $column,
            ")))"
        )
    };
}

/// The tables: name, the shard key on a cluster (rows that replace each other, and a trace's
/// rows, stay on one shard), engine kind, and the `CREATE TABLE` body, `{engine}`-templated:
/// `ReplacingMergeTree(version)` or `MergeTree()` on one node, their `Replicated…` variants on
/// a cluster.
pub const DDL: &[(&str, &str, &str, &str)] = &[
    (
        "spans",
        "cityHash64(trace_id)",
        "Replacing(version)",
        concat!(
            "(project Int64, trace_id FixedString(16), span_id FixedString(8),
  parent_span_id FixedString(8),
  start_ns UInt64 CODEC(Delta, ZSTD(1)), duration_ns UInt64 CODEC(T64, ZSTD(1)),
  name LowCardinality(String), service LowCardinality(String), kind UInt8, failed UInt8,
  attributes Map(LowCardinality(String), String) CODEC(ZSTD(3)),
  body String CODEC(ZSTD(3)), version UInt64 CODEC(Delta, ZSTD(1)))
ENGINE = {engine} PARTITION BY ",
            day!("start_ns"),
            " ORDER BY (project, trace_id, span_id)"
        ),
    ),
    (
        "trace_parts",
        "cityHash64(trace_id)",
        "Replacing(version)",
        concat!(
            "(project Int64, trace_id FixedString(16), part UInt64,
  start_ns UInt64, end_ns UInt64, span_count UInt64, error_count UInt64,
  root_name String, root_service LowCardinality(String), root_start_ns UInt64,
  root_end_ns UInt64, root_failed UInt8, is_root UInt8, is_run UInt8, is_session UInt8,
  services Array(LowCardinality(String)), service_spans Array(UInt64),
  service_errors Array(UInt64), op_names Array(String), op_services Array(LowCardinality(String)),
  op_kinds Array(UInt8), version UInt64,
  INDEX by_start start_ns TYPE minmax GRANULARITY 1)
ENGINE = {engine} PARTITION BY ",
            day!("start_ns"),
            " ORDER BY (project, trace_id, part)"
        ),
    ),
    (
        "sessions",
        "cityHash64(trace_id)",
        "Replacing(version)",
        "(project Int64, trace_id FixedString(16), session_id String, agent LowCardinality(String),
  project_dir String, title String, start_ns UInt64, end_ns UInt64, turns UInt64,
  tool_calls UInt64, subagents UInt64, input_tokens UInt64, output_tokens UInt64,
  cache_read_tokens UInt64, errors UInt64, version UInt64)
ENGINE = {engine} ORDER BY (project, trace_id)",
    ),
    (
        "logs",
        "cityHash64(trace_id)",
        "Plain",
        concat!(
            "(project Int64, trace_id FixedString(16), has_trace UInt8, first_ns UInt64,
  seq UInt64, count UInt64, data String CODEC(ZSTD(1)))
ENGINE = {engine} PARTITION BY ",
            day!("first_ns"),
            " ORDER BY (project, trace_id, first_ns, seq)"
        ),
    ),
    (
        "blobs",
        "cityHash64(hash)",
        "Replacing(version)",
        "(project Int64, hash FixedString(32), size UInt64, data String, version UInt64)
ENGINE = {engine} ORDER BY (project, hash)",
    ),
    (
        "documents",
        "cityHash64(digest)",
        "Replacing(version)",
        "(project Int64, digest FixedString(32), version UInt64)
ENGINE = {engine} ORDER BY (project, digest)",
    ),
    (
        "import_cursors",
        "cityHash64(source)",
        "Replacing(version)",
        "(project Int64, source String, byte_offset UInt64, fingerprint FixedString(32),
  state String, version UInt64)
ENGINE = {engine} ORDER BY (project, source)",
    ),
    (
        "resent_spans",
        "rand()",
        "Plain",
        "(project Int64, at_ns UInt64, spans UInt64)
ENGINE = {engine} ORDER BY (project, at_ns)",
    ),
    (
        "commits",
        "rand()",
        "Plain",
        "(at_ns UInt64 DEFAULT toUnixTimestamp64Nano(now64(9)), commit_id UUID DEFAULT generateUUIDv4(),
  project Int64, spans UInt64, logs UInt64)
ENGINE = {engine} ORDER BY at_ns TTL toDateTime(intDiv(at_ns, 1000000000)) + INTERVAL 1 DAY",
    ),
    (
        "metric_points",
        "cityHash64(series)",
        "Replacing(version)",
        concat!(
            "(project Int64, series FixedString(16), session Nullable(FixedString(16)),
  quantity LowCardinality(String), kind UInt8, temporality UInt8, service LowCardinality(String),
  start_ns UInt64, time_ns UInt64, value Float64, version UInt64)
ENGINE = {engine} PARTITION BY ",
            day!("time_ns"),
            " ORDER BY (project, series, start_ns, time_ns)"
        ),
    ),
    (
        "projects",
        "cityHash64(id)",
        "Replacing(version)",
        "(id Int64, name String, retention_ns Nullable(UInt64), created_ns UInt64, version UInt64)
ENGINE = {engine} ORDER BY id",
    ),
    (
        "tokens",
        "cityHash64(public_id)",
        "Replacing(version)",
        "(public_id String, project Int64, name String, scopes String, salt FixedString(16),
  hash FixedString(32), created_ns UInt64, expires_ns Nullable(UInt64),
  last_used_ns Nullable(UInt64), revoked_ns Nullable(UInt64), version UInt64)
ENGINE = {engine} ORDER BY public_id",
    ),
];

/// The single-node statement of one table.
fn create(table: &str, engine: &str, body: &str) -> String {
    let engine = match engine {
        "Replacing(version)" => "ReplacingMergeTree(version)",
        _ => "MergeTree()",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {table} {}",
        body.replace("{engine}", engine)
    )
}

/// The cluster variant: each table replicated on every node of `cluster` (as `{table}_local`),
/// a `Distributed` table of the devtrace name in front of it, sharded so a trace's rows (and
/// rows that replace each other) stay on one shard. Run when the URL names a cluster
/// (`?cluster=NAME`); not run in the tests here (no cluster on the test machines).
pub fn cluster_ddl(database: &str, cluster: &str) -> Vec<String> {
    let mut out = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"
    )];
    for (table, shard_key, engine, body) in DDL {
        let replicated = match *engine {
            "Replacing(version)" => format!(
                "ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}', version)"
            ),
            _ => format!(
                "ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{table}', '{{replica}}')"
            ),
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{table}_local ON CLUSTER {cluster} {}",
            body.replace("{engine}", &replicated)
        ));
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} AS {database}.{table}_local
ENGINE = Distributed({cluster}, {database}, {table}_local, {shard_key})"
        ));
    }
    out
}

/// Checks the server's version, creates the database and every missing table.
pub(crate) fn prepare(server: &Server) -> Result<()> {
    // One request when everything exists (every command opens the store): the version and
    // the tables devtrace finds, read outside the database, which may not exist yet.
    let answer = server
        .query_raw(
            &format!(
                "SELECT version(), (SELECT count() FROM system.tables WHERE database = '{}') FORMAT TSV",
                server.database
            ),
            None,
        )
        .map_err(|e| server.error(e))?;
    let answer = String::from_utf8_lossy(&answer);
    let (version, tables) = answer
        .trim()
        .split_once('\t')
        .unwrap_or((answer.trim(), "0"));
    check_version(&server.target, version)?;
    let expected = match &server.cluster {
        None => DDL.len(),
        Some(_) => 2 * DDL.len(),
    };
    if tables.parse::<usize>().ok() == Some(expected) {
        return Ok(());
    }
    create_all(server)
}

/// Creates the database and every missing table.
fn create_all(server: &Server) -> Result<()> {
    let exists = server.query_raw("SELECT 1", Some(&server.database));
    if let Err(error) = exists {
        if error.code != UNKNOWN_DATABASE {
            return Err(server.error(error));
        }
        server
            .query_raw(
                &match &server.cluster {
                    None => format!("CREATE DATABASE IF NOT EXISTS {}", server.database),
                    Some(cluster) => format!(
                        "CREATE DATABASE IF NOT EXISTS {} ON CLUSTER {cluster}",
                        server.database
                    ),
                },
                None,
            )
            .map_err(|e| server.error(e))?;
    }
    match &server.cluster {
        None => {
            for (table, _, engine, body) in DDL {
                server.query(&create(table, engine, body), &[])?;
            }
        }
        Some(cluster) => {
            for statement in cluster_ddl(&server.database, cluster) {
                server.query(&statement, &[])?;
            }
        }
    }
    Ok(())
}

/// Refuses a server older than [`MIN_VERSION`], naming both versions.
pub(crate) fn check_version(target: &str, version: &str) -> Result<()> {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let found = (parts.next().flatten(), parts.next().flatten());
    let (Some(major), Some(minor)) = found else {
        return Err(StoreError::Database(format!(
            "{target} answered version {version:?}, which is not a ClickHouse version"
        )));
    };
    if (major, minor) < MIN_VERSION {
        return Err(StoreError::Unsupported(format!(
            "the ClickHouse server at {target} is version {version}; devtrace needs {}.{} or newer (lightweight DELETE, Map columns): upgrade the server",
            MIN_VERSION.0, MIN_VERSION.1
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_servers_are_refused_with_the_version_needed() {
        let error = check_version("clickhouse://u@h:8123/d", "18.16.1").unwrap_err();
        assert_eq!(
            error.to_string(),
            "the ClickHouse server at clickhouse://u@h:8123/d is version 18.16.1; devtrace needs 23.8 or newer (lightweight DELETE, Map columns): upgrade the server"
        );
        assert!(check_version("x", "23.8.2.7").is_ok());
        assert!(check_version("x", "26.9.2.1").is_ok());
        assert!(check_version("x", "23.3.1").is_err());
        assert!(check_version("x", "garbage").is_err());
    }

    #[test]
    fn the_cluster_variant_replicates_and_distributes_every_table() {
        let ddl = cluster_ddl("devtrace", "traces");
        assert_eq!(ddl.len(), 1 + 2 * DDL.len());
        assert!(
            ddl[1].starts_with("CREATE TABLE IF NOT EXISTS devtrace.spans_local ON CLUSTER traces")
        );
        assert!(ddl[1].contains("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/devtrace/spans', '{replica}', version)"));
        assert!(
            ddl[2].contains("Distributed(traces, devtrace, spans_local, cityHash64(trace_id))")
        );
    }
}

#[cfg(test)]
mod documented {
    use super::*;

    /// docs/team.md shows the DDL devtrace runs, and the cluster variant, exactly.
    #[test]
    fn docs_team_md_shows_the_ddl_run() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/team.md"))
                .expect("docs/team.md");
        let single: Vec<String> = DDL
            .iter()
            .map(|(t, _, e, b)| format!("{};", create(t, e, b)))
            .collect();
        let cluster: Vec<String> = cluster_ddl("devtrace", "CLUSTER_NAME")
            .into_iter()
            .map(|s| format!("{s};"))
            .collect();
        let wanted = format!(
            "```sql\n{}\n```\n\nOn a cluster (`?cluster=CLUSTER_NAME` in the URL):\n\n```sql\n{}\n```",
            single.join("\n\n"),
            cluster.join("\n\n")
        );
        assert!(doc.contains(&wanted), "docs/team.md should hold:\n{wanted}");
    }
}
