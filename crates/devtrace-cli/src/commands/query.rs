//! `devtrace query`: read-only SQL over the store's documented views, for people and for
//! agents without MCP (the same views and safeguards as the MCP tool `query_sql`).

use crate::cli::QueryArgs;
use crate::output::{print_json, print_stdout};
use anyhow::Result;
use devtrace_query::text::cell as text_cell;
use devtrace_store::sql::{SCHEMA, SqlLimits, SqlRows, SqlValue};
use std::process::ExitCode;
use std::time::Duration;

/// Widest a text cell is drawn in the table (`--json` has every value whole).
const CELL_CHARS: usize = 60;

pub fn run(choice: &crate::config::StoreChoice, args: &QueryArgs) -> Result<ExitCode> {
    // The schema needs no store.
    let Some(sql) = args.sql.as_deref().filter(|_| !args.schema) else {
        let schema = if choice.location.is_embedded() {
            SCHEMA
        } else {
            devtrace_store::postgres::SCHEMA
        };
        print_stdout(&format!("{schema}\n"))?;
        return Ok(ExitCode::SUCCESS);
    };
    if args.max_rows == 0 {
        crate::usage::usage!("--max-rows must be at least 1");
    }
    let store = choice.open()?;
    let limits = SqlLimits {
        max_rows: args.max_rows,
        timeout: Duration::from_nanos(args.timeout),
        ..SqlLimits::default()
    };
    let rows = store.query_sql(sql, limits)?;
    if args.json {
        print_json(&rows)?;
    } else {
        crate::output::print_fitted(&table(&rows, limits.max_rows))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The rows as an aligned table, numbers right-aligned, then a count.
fn table(rows: &SqlRows, max_rows: usize) -> String {
    let cells: Vec<Vec<String>> = rows
        .rows
        .iter()
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let widths: Vec<usize> = (0..rows.columns.len())
        .map(|c| {
            cells
                .iter()
                .map(|row| row[c].chars().count())
                .chain([text_cell(&rows.columns[c], CELL_CHARS).chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let numeric: Vec<bool> = (0..rows.columns.len())
        .map(|c| {
            rows.rows.iter().all(|row| {
                matches!(
                    row[c],
                    SqlValue::Integer(_) | SqlValue::Real(_) | SqlValue::Null
                )
            })
        })
        .collect();
    let line = |values: &[String]| -> String {
        let padded: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if numeric[c] {
                    format!("{v:>width$}", width = widths[c])
                } else {
                    format!("{v:<width$}", width = widths[c])
                }
            })
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let columns: Vec<String> = rows
        .columns
        .iter()
        .map(|c| text_cell(c, CELL_CHARS))
        .collect();
    let mut out = line(&columns);
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push_str(&format!(
        "({} row{}",
        rows.rows.len(),
        if rows.rows.len() == 1 { "" } else { "s" }
    ));
    if rows.more {
        out.push_str(&format!(
            "; more exist beyond --max-rows {max_rows}: raise it, aggregate, or add WHERE"
        ));
    }
    out.push_str(")\n");
    out
}

fn cell(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => "null".into(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(r) => format!("{r}"),
        SqlValue::Text(t) => text_cell(t, CELL_CHARS),
        SqlValue::Blob { blob_bytes } => format!("<{blob_bytes} bytes>"),
    }
}
