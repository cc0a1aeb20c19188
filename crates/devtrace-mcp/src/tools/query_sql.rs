//! `query_sql`: read-only SQL over documented views, the escape hatch.

use super::{ToolDef, ToolError, ToolResult, tool};
use crate::budget;
use crate::render::LEGEND;
use devtrace_query::text::quote;
use devtrace_store::Store;
use devtrace_store::sql::{SCHEMA, SqlError, SqlLimits, SqlValue};
use serde::Deserialize;
use std::sync::OnceLock;
use std::time::Duration;

/// Rows returned when the call does not say.
const DEFAULT_ROWS: usize = 50;
const MAX_ROWS: usize = 500;
/// Longest text value shown in a cell.
const CELL_CHARS: usize = 300;

/// Parameters of `query_sql`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// One SELECT statement
    sql: String,
    /// Default 50, max 500
    max_rows: Option<usize>,
    /// Max tokens
    budget: Option<usize>,
}

/// The description carries the schema, so an assistant can write a query without a lookup.
fn description() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| description_for(SCHEMA))
}

/// The description for a store whose views are `schema` (`Store::sql_schema`).
pub fn description_for(schema: &str) -> String {
    let dialect = if schema == SCHEMA {
        "SQLite"
    } else if schema.contains("ClickHouse syntax") {
        "ClickHouse"
    } else {
        "PostgreSQL"
    };
    // The views' columns and the dialect's own lines; the notes under each view and the
    // examples are in the resource, read when needed (all definitions share one token budget).
    let views: Vec<&str> = schema
        .split("\nExamples:")
        .next()
        .unwrap_or(schema)
        .lines()
        .filter(|line| !line.starts_with(' '))
        .collect();
    format!(
        "Read-only SQL ({dialect}, 5 s limit) when other tools don't answer. Views:\n{}\n\
         Times are Unix ns; ids are 32 lower-case hex; filter on trace_id to read only those \
         traces. Notes and examples: resource devtrace://schema/sql",
        views.join("\n")
    )
}

pub fn def() -> ToolDef {
    tool("query_sql", description(), run)
}

fn run(store: &dyn Store, params: Params) -> ToolResult {
    let budget = budget::resolve(params.budget);
    let limits = SqlLimits {
        max_rows: params.max_rows.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS),
        timeout: Duration::from_secs(5),
        ..SqlLimits::default()
    };
    let rows = store.query_sql(&params.sql, limits).map_err(|e| match e {
        SqlError::Store(error) => error.into(),
        other => ToolError::new(other.to_string()),
    })?;
    let mut out = format!("{LEGEND}\n{}\n", rows.columns.join(" | "));
    let footer_room = 80;
    let mut used = budget::count(&out) + footer_room;
    let mut shown = 0;
    for row in &rows.rows {
        let cells: Vec<String> = row.iter().map(cell).collect();
        let line = format!("{}\n", cells.join(" | "));
        let cost = budget::count(&line);
        if used + cost > budget {
            break;
        }
        used += cost;
        out.push_str(&line);
        shown += 1;
    }
    out.push_str(&format!("{shown} row(s)"));
    if shown < rows.rows.len() || rows.more {
        out.push_str(&format!(
            "; more rows exist (limit {} rows / {budget} tokens): add WHERE, aggregate, or page with LIMIT/OFFSET",
            limits.max_rows
        ));
    }
    out.push('\n');
    Ok(out)
}

fn cell(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "null".into(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(r) => format!("{r}"),
        SqlValue::Text(t) => quote(&devtrace_query::text::truncate(t, CELL_CHARS)),
        SqlValue::Blob { blob_bytes } => format!("<{blob_bytes} bytes>"),
    }
}
