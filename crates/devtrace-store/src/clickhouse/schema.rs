//! devtrace's tables on ClickHouse, created when missing, and the server version it needs.
//!
//! Spans are rows ordered by (project, trace id, span id): a trace is read by its primary
//! key, never by a scan, and `ReplacingMergeTree` keeps one row per span whatever was re-sent
//! (the newest `version` wins; the writer gives a first-stored span the highest, so the first
//! stored version is the one kept). Each span row carries its typed columns (ids, name,
//! service, kind, times, failure), its string attributes as `Map(String, String)`, and in
//! `body` the rest of the span (see `body.rs`): each part once, and the trace
//! reads back exactly as received. `trace_parts` holds one summary row per stored piece of a
//! trace, aggregated per trace when read; `trace_list` one row per piece and service, in time
//! order, so a listing starts from the newest rows instead of aggregating every trace.
//! Everything is partitioned by day of its time where it has one; `ttl_days` in the URL adds a
//! TTL to every table of telemetry. Codecs were chosen by measurement (docs/PERFORMANCE.md).
//! `commits` is the feed of writes every node polls for live updates (see `feed`), kept a day.
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

/// One of devtrace's tables.
pub struct Table {
    pub name: &'static str,
    /// The shard key on a cluster: rows that replace each other, and a trace's rows, stay on
    /// one shard.
    pub shard_key: &'static str,
    /// `Replacing(version)`, `Replacing()` (identical rows kept once) or `Plain`.
    pub engine: &'static str,
    /// The `CREATE TABLE` body, `{engine}`-templated: `ReplacingMergeTree(…)` or `MergeTree()`
    /// on one node, their `Replicated…` variants on a cluster.
    pub body: &'static str,
    /// The nanosecond time column a TTL (`ttl_days` in the URL) counts from; `None` for the
    /// tables that hold no telemetry (accounts, blobs, cursors).
    pub ttl_from: Option<&'static str>,
}

/// The tables.
pub const DDL: &[Table] = &[
    Table {
        name: "spans",
        shard_key: "cityHash64(trace_id)",
        engine: "Replacing(version)",
        body: concat!(
            "(project Int64, trace_id FixedString(16), span_id FixedString(8),
  parent_span_id FixedString(8) CODEC(ZSTD(3)),
  start_ns UInt64 CODEC(T64, ZSTD(1)), duration_ns UInt64 CODEC(T64, ZSTD(1)),
  name LowCardinality(String), service LowCardinality(String), kind UInt8, failed UInt8,
  attributes Map(String, String) CODEC(ZSTD(3)),
  body String CODEC(ZSTD(3)), version UInt64 CODEC(Delta, ZSTD(1)))
ENGINE = {engine} PARTITION BY ",
            day!("start_ns"),
            " ORDER BY (project, trace_id, span_id)"
        ),
        ttl_from: Some("start_ns"),
    },
    Table {
        name: "trace_parts",
        shard_key: "cityHash64(trace_id)",
        engine: "Replacing(version)",
        body: concat!(
            "(project Int64, trace_id FixedString(16), part UInt64,
  start_ns UInt64, end_ns UInt64, span_count UInt64, error_count UInt64,
  root_name LowCardinality(String), root_service LowCardinality(String), root_start_ns UInt64,
  root_end_ns UInt64, root_failed UInt8, is_root UInt8, is_run UInt8, is_session UInt8,
  services Array(String) CODEC(ZSTD(3)), service_spans Array(UInt64),
  service_errors Array(UInt64), op_names Array(String) CODEC(ZSTD(3)),
  op_services Array(String) CODEC(ZSTD(3)),
  op_kinds Array(UInt8), version UInt64,
  INDEX by_start start_ns TYPE minmax GRANULARITY 1)
ENGINE = {engine} PARTITION BY ",
            day!("start_ns"),
            " ORDER BY (project, trace_id, part)"
        ),
        ttl_from: Some("start_ns"),
    },
    Table {
        name: "trace_list",
        shard_key: "cityHash64(trace_id)",
        engine: "Replacing()",
        body: "(project Int64, service LowCardinality(String), start_ns UInt64 CODEC(T64, ZSTD(1)),
  trace_id FixedString(16))
ENGINE = {engine} ORDER BY (project, service, start_ns, trace_id)",
        ttl_from: Some("start_ns"),
    },
    Table {
        name: "sessions",
        shard_key: "cityHash64(trace_id)",
        engine: "Replacing(version)",
        body: "(project Int64, trace_id FixedString(16), session_id String, agent LowCardinality(String),
  project_dir String, title String, start_ns UInt64, end_ns UInt64, turns UInt64,
  tool_calls UInt64, subagents UInt64, input_tokens UInt64, output_tokens UInt64,
  cache_read_tokens UInt64, errors UInt64, version UInt64)
ENGINE = {engine} ORDER BY (project, trace_id)",
        ttl_from: Some("start_ns"),
    },
    Table {
        name: "logs",
        shard_key: "cityHash64(trace_id)",
        engine: "Plain",
        body: concat!(
            "(project Int64, trace_id FixedString(16), has_trace UInt8, first_ns UInt64,
  seq UInt64, count UInt64, data String CODEC(ZSTD(1)))
ENGINE = {engine} PARTITION BY ",
            day!("first_ns"),
            " ORDER BY (project, trace_id, first_ns, seq)"
        ),
        ttl_from: Some("first_ns"),
    },
    Table {
        name: "blobs",
        shard_key: "cityHash64(hash)",
        engine: "Replacing(version)",
        body: "(project Int64, hash FixedString(32), size UInt64, data String, version UInt64)
ENGINE = {engine} ORDER BY (project, hash)",
        ttl_from: None,
    },
    Table {
        name: "documents",
        shard_key: "cityHash64(digest)",
        engine: "Replacing(version)",
        body: "(project Int64, digest FixedString(32), version UInt64)
ENGINE = {engine} ORDER BY (project, digest)",
        ttl_from: None,
    },
    Table {
        name: "import_cursors",
        shard_key: "cityHash64(source)",
        engine: "Replacing(version)",
        body: "(project Int64, source String, byte_offset UInt64, fingerprint FixedString(32),
  state String, version UInt64)
ENGINE = {engine} ORDER BY (project, source)",
        ttl_from: None,
    },
    Table {
        name: "resent_spans",
        shard_key: "rand()",
        engine: "Plain",
        body: "(project Int64, at_ns UInt64, spans UInt64)
ENGINE = {engine} ORDER BY (project, at_ns)",
        ttl_from: Some("at_ns"),
    },
    Table {
        name: "commits",
        shard_key: "rand()",
        engine: "Plain",
        // Its own TTL (a day: only the last seconds are ever read), whatever `ttl_days` says.
        body: "(at_ns UInt64 DEFAULT toUnixTimestamp64Nano(now64(9)), commit_id UUID DEFAULT generateUUIDv4(),
  project Int64, spans UInt64, logs UInt64)
ENGINE = {engine} ORDER BY at_ns TTL toDateTime(intDiv(at_ns, 1000000000)) + INTERVAL 1 DAY",
        ttl_from: None,
    },
    Table {
        name: "metric_points",
        shard_key: "cityHash64(series)",
        engine: "Replacing(version)",
        body: concat!(
            "(project Int64, series FixedString(16), session Nullable(FixedString(16)),
  quantity LowCardinality(String), kind UInt8, temporality UInt8, service LowCardinality(String),
  start_ns UInt64, time_ns UInt64, value Float64, version UInt64)
ENGINE = {engine} PARTITION BY ",
            day!("time_ns"),
            " ORDER BY (project, series, start_ns, time_ns)"
        ),
        ttl_from: Some("time_ns"),
    },
    Table {
        name: "projects",
        shard_key: "cityHash64(id)",
        engine: "Replacing(version)",
        body: "(id Int64, name String, retention_ns Nullable(UInt64), created_ns UInt64, version UInt64)
ENGINE = {engine} ORDER BY id",
        ttl_from: None,
    },
    Table {
        name: "tokens",
        shard_key: "cityHash64(public_id)",
        engine: "Replacing(version)",
        body: "(public_id String, project Int64, name String, scopes String, salt FixedString(16),
  hash FixedString(32), created_ns UInt64, expires_ns Nullable(UInt64),
  last_used_ns Nullable(UInt64), revoked_ns Nullable(UInt64), version UInt64)
ENGINE = {engine} ORDER BY public_id",
        ttl_from: None,
    },
];

/// The `TTL` clause of a table counting `days` from its `column` (nanoseconds).
fn ttl_clause(column: &str, days: u32) -> String {
    format!("TTL toDateTime(intDiv({column}, 1000000000)) + INTERVAL {days} DAY")
}

/// The table's body for `engine`, with its TTL when `ttl_days` is set.
fn body_of(table: &Table, engine: &str, ttl_days: Option<u32>) -> String {
    let mut body = table.body.replace("{engine}", engine);
    if let (Some(column), Some(days)) = (table.ttl_from, ttl_days) {
        body.push(' ');
        body.push_str(&ttl_clause(column, days));
    }
    body
}

/// The single-node statement of one table.
fn create(table: &Table, ttl_days: Option<u32>) -> String {
    let engine = match table.engine {
        "Replacing(version)" => "ReplacingMergeTree(version)",
        "Replacing()" => "ReplacingMergeTree()",
        _ => "MergeTree()",
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {} {}",
        table.name,
        body_of(table, engine, ttl_days)
    )
}

/// The cluster variant: each table replicated on every node of `cluster` (as `{table}_local`),
/// a `Distributed` table of the devtrace name in front of it, sharded so a trace's rows (and
/// rows that replace each other) stay on one shard. Run when the URL names a cluster
/// (`?cluster=NAME`); not run in the tests here (no cluster on the test machines).
pub fn cluster_ddl(database: &str, cluster: &str, ttl_days: Option<u32>) -> Vec<String> {
    let mut out = vec![format!(
        "CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"
    )];
    for table in DDL {
        let name = table.name;
        let path = format!("'/clickhouse/tables/{{shard}}/{database}/{name}', '{{replica}}'");
        let replicated = match table.engine {
            "Replacing(version)" => format!("ReplicatedReplacingMergeTree({path}, version)"),
            "Replacing()" => format!("ReplicatedReplacingMergeTree({path})"),
            _ => format!("ReplicatedMergeTree({path})"),
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{name}_local ON CLUSTER {cluster} {}",
            body_of(table, &replicated, ttl_days)
        ));
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} AS {database}.{name}_local
ENGINE = Distributed({cluster}, {database}, {name}_local, {})",
            table.shard_key
        ));
    }
    out
}

/// Checks the server's version, creates the database and every missing table, and brings
/// each table's TTL to the configured one. Says whether it had to create tables.
pub(crate) fn prepare(server: &Server) -> Result<bool> {
    // One request when everything exists (every command opens the store): the version, the
    // tables devtrace finds and the TTL (in days) of each, read outside the database, which
    // may not exist yet.
    let answer = server
        .query_raw(
            &format!(
                "SELECT version(),
                   (SELECT count() FROM system.tables WHERE database = '{0}'),
                   (SELECT arrayStringConcat(groupArray(concat(name, '=',
                      extract(engine_full, 'toIntervalDay[(]([0-9]+)[)]'))), ',')
                    FROM system.tables WHERE database = '{0}')
                 FORMAT TSV",
                server.database
            ),
            None,
        )
        .map_err(|e| server.error(e))?;
    let answer = String::from_utf8_lossy(&answer);
    let mut fields = answer.trim_end_matches('\n').split('\t');
    let version = fields.next().unwrap_or_default();
    check_version(&server.target, version)?;
    let tables = fields.next().unwrap_or("0");
    let ttls = fields.next().unwrap_or_default();
    let expected = match &server.cluster {
        None => DDL.len(),
        Some(_) => 2 * DDL.len(),
    };
    let created = tables.parse::<usize>().ok() != Some(expected);
    if created {
        create_all(server)?;
    }
    apply_ttl(server, ttls)?;
    Ok(created)
}

/// Changes the TTL of every existing table whose TTL (`found`: `name=DAYS` pairs, DAYS empty
/// for none) is not the configured one. ClickHouse then drops the rows past it in the
/// background.
fn apply_ttl(server: &Server, found: &str) -> Result<()> {
    let local = |name: &str| match &server.cluster {
        None => (name.to_owned(), String::new()),
        Some(cluster) => (format!("{name}_local"), format!(" ON CLUSTER {cluster}")),
    };
    let found: std::collections::HashMap<&str, &str> =
        found.split(',').filter_map(|p| p.split_once('=')).collect();
    for table in DDL {
        let Some(column) = table.ttl_from else {
            continue;
        };
        let (name, on_cluster) = local(table.name);
        let Some(days) = found.get(name.as_str()) else {
            continue; // created just now, with the configured TTL
        };
        let wanted = server.ttl_days.map(|d| d.to_string()).unwrap_or_default();
        if *days == wanted {
            continue;
        }
        let change = match server.ttl_days {
            Some(days) => format!("MODIFY {}", ttl_clause(column, days)),
            None => "REMOVE TTL".to_owned(),
        };
        server.query(&format!("ALTER TABLE {name}{on_cluster} {change}"), &[])?;
    }
    Ok(())
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
            for table in DDL {
                server.query(&create(table, server.ttl_days), &[])?;
            }
        }
        Some(cluster) => {
            for statement in cluster_ddl(&server.database, cluster, server.ttl_days) {
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
        let ddl = cluster_ddl("devtrace", "traces", None);
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
            .map(|table| format!("{};", create(table, None)))
            .collect();
        let cluster: Vec<String> = cluster_ddl("devtrace", "CLUSTER_NAME", None)
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
