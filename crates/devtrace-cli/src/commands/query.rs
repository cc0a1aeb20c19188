//! `devtrace query`: read-only SQL over the store's documented views, for people and for
//! agents without MCP (the same views and safeguards as the MCP tool `query_sql`).

use crate::cli::QueryArgs;
use crate::output::{print_json, print_stdout, terminal_width};
use anyhow::Result;
use devtrace_query::text::cell as text_cell;
use devtrace_query::text::fit::{Align, Column, Fit, Table};
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

/// The rows as a table fitted to the terminal, then a count: numbers right-aligned and ids
/// whole; other text is cut (each column to at least 8 columns) when the row is too wide.
/// No column is left out: the query chose them.
fn table(rows: &SqlRows, max_rows: usize) -> String {
    let columns = (0..rows.columns.len())
        .map(|c| {
            let values = || rows.rows.iter().map(move |row| &row[c]);
            let numeric = values()
                .all(|v| matches!(v, SqlValue::Integer(_) | SqlValue::Real(_) | SqlValue::Null));
            let fit = if numeric || values().all(is_id) {
                Fit::Keep
            } else {
                Fit::Shrink { min: 8 }
            };
            let align = if numeric { Align::Right } else { Align::Left };
            Column::new(text_cell(&rows.columns[c], CELL_CHARS), align, fit)
        })
        .collect();
    let mut table = Table::new(columns);
    for row in &rows.rows {
        table.row(row.iter().map(|v| cell(v).into()).collect());
    }
    let mut out = table.render(terminal_width(), &|_, text| text.to_owned());
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

/// A trace or span id (16 or 32 hexadecimal digits), which people copy whole; null is allowed.
fn is_id(value: &SqlValue) -> bool {
    match value {
        SqlValue::Text(t) => matches!(t.len(), 16 | 32) && t.bytes().all(|b| b.is_ascii_hexdigit()),
        SqlValue::Null => true,
        _ => false,
    }
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
