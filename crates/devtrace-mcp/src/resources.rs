//! Resources: a trace by id (`devtrace://trace/{trace_id}`, the `get_trace` view at the default
//! budget) and the SQL schema `query_sql` reads (`devtrace://schema/sql`).

use crate::budget::DEFAULT_BUDGET;
use crate::trace_view::{View, draw};
use devtrace_store::Store;
use devtrace_store::sql::SCHEMA;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

pub const SCHEMA_URI: &str = "devtrace://schema/sql";
pub const TRACE_PREFIX: &str = "devtrace://trace/";

pub fn list() -> Vec<Resource> {
    vec![
        Resource::new(SCHEMA_URI, "sql-schema")
            .with_title("SQL views for query_sql")
            .with_description(format!(
                "The views query_sql reads ({}), their columns, and example queries",
                sql_views().join(", ")
            ))
            .with_mime_type("text/plain"),
    ]
}

/// The views of the SQL schema, as it names them (a line `name(columns…)` each), so the
/// resource's description cannot leave one out.
pub fn sql_views() -> Vec<&'static str> {
    SCHEMA
        .lines()
        .filter_map(|line| {
            let (name, _) = line.split_once('(')?;
            (!name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .then_some(name)
        })
        .collect()
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{TRACE_PREFIX}{{trace_id}}"), "trace")
            .with_title("One trace")
            .with_description("A trace as a span tree within 4,000 tokens: critical path, errors, folded repeats (as get_trace)")
            .with_mime_type("text/plain"),
    ]
}

pub fn read(store: &dyn Store, uri: &str) -> Result<ReadResourceResult, String> {
    devtrace_query::limits::check("uri", uri, devtrace_query::limits::MAX_ARGUMENT_BYTES)
        .map_err(|e| format!("resources/read: {e}"))?;
    let text = if uri == SCHEMA_URI && store.sql_schema() != SCHEMA {
        format!(
            "query_sql: one read-only PostgreSQL statement (SELECT or WITH … SELECT) over these\n\
             views, run as a role that can read nothing else. Row limit 50 by default (max_rows up\n\
             to 500), 5 s time limit; writes are refused. Durations and times are integer\n\
             nanoseconds (Unix epoch); to_timestamp(start_ns / 1e9) gives a time.\n\n{}\n",
            store.sql_schema()
        )
    } else if uri == SCHEMA_URI {
        format!(
            "query_sql: one read-only SQLite statement (SELECT or WITH … SELECT) over these views.\n\
             Row limit 50 by default (max_rows up to 500), 5 s time limit; writes, ATTACH, PRAGMA and\n\
             transactions are refused. Durations and times are integer nanoseconds (Unix epoch);\n\
             datetime(start_ns / 1e9, 'unixepoch') gives a UTC time.\n\n{SCHEMA}\n"
        )
    } else if let Some(id) = uri.strip_prefix(TRACE_PREFIX) {
        let trace = devtrace_query::scope::one(store, id)
            .map_err(|e| crate::tools::ToolError::from(e).message)?;
        draw(&View {
            trace: &trace,
            focus: None,
            budget: DEFAULT_BUDGET,
        })
        .text
    } else {
        return Err(format!(
            "no resource {}: the resources are {SCHEMA_URI} and {TRACE_PREFIX}{{trace_id}}",
            devtrace_model::recorded::quote(uri)
        ));
    };
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        crate::outgoing(text),
        uri,
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_resource_lists_every_view() {
        assert_eq!(
            sql_views(),
            ["traces", "spans", "operations", "trace_services", "logs"]
        );
        let listed = list();
        let description = listed[0].description.as_deref().unwrap();
        for view in sql_views() {
            assert!(description.contains(view), "{view}: {description}");
        }
    }
}
