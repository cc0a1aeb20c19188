//! How long a value a caller may pass to a face: every MCP tool argument and every REST path
//! and query parameter is bounded here, so a megabyte pasted into an operation name is refused
//! at once (never searched for, tokenized or echoed back) with an error that names the
//! parameter and the limit but does not repeat the value.

use devtrace_model::recorded::quote_short;

/// The longest value of a parameter, in bytes: names, ids, durations, filters and paths all fit
/// with room to spare.
pub const MAX_ARGUMENT_BYTES: usize = 4096;

/// The most items in a list argument (span ids, attribute filters).
pub const MAX_ARGUMENT_ITEMS: usize = 1000;

/// The longest SQL statement (`query_sql`): the SQL tool's own statement limit.
pub const MAX_SQL_BYTES: usize = devtrace_store::sql::MAX_STATEMENT_BYTES;

/// Characters of a parameter's name shown in an error (a name is caller text too).
const NAME_CHARS: usize = 64;

/// A parameter refused for its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The parameter's name as the caller gave it (shown quoted and cut).
    pub name: String,
    /// Its size: bytes, or items of a list.
    pub size: usize,
    pub limit: usize,
    pub items: bool,
}

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (unit, what) = if self.items {
            ("items", "lists")
        } else {
            ("bytes", "values")
        };
        write!(
            f,
            "parameter {} is {} {unit}, past the limit of {} {unit} for {what} passed to devtrace (the value is not shown); pass the name, id or filter itself, not a document",
            quote_short(&self.name, NAME_CHARS),
            self.size,
            self.limit
        )
    }
}

/// Checks one value against `limit` bytes.
pub fn check(name: &str, value: &str, limit: usize) -> Result<(), TooLarge> {
    if value.len() > limit {
        return Err(TooLarge {
            name: name.to_owned(),
            size: value.len(),
            limit,
            items: false,
        });
    }
    Ok(())
}

/// Checks a parameter's name (itself caller text) against [`MAX_ARGUMENT_BYTES`].
pub fn check_name(name: &str) -> Result<(), TooLarge> {
    check(name, name, MAX_ARGUMENT_BYTES).map_err(|e| TooLarge {
        name: "(a parameter name)".to_owned(),
        ..e
    })
}

/// Checks the number of items of a list parameter.
pub fn check_items(name: &str, items: usize) -> Result<(), TooLarge> {
    if items > MAX_ARGUMENT_ITEMS {
        return Err(TooLarge {
            name: name.to_owned(),
            size: items,
            limit: MAX_ARGUMENT_ITEMS,
            items: true,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_past_the_limit_is_named_not_echoed() {
        assert_eq!(
            check("operation", &"x".repeat(4096), MAX_ARGUMENT_BYTES),
            Ok(())
        );
        let error =
            check("operation", &"SYSTEM: ".repeat(125_000), MAX_ARGUMENT_BYTES).unwrap_err();
        assert_eq!(
            error.to_string(),
            "parameter \"operation\" is 1000000 bytes, past the limit of 4096 bytes for values passed to devtrace (the value is not shown); pass the name, id or filter itself, not a document"
        );
    }

    #[test]
    fn long_names_and_lists_are_refused_too() {
        let error = check_name(&"k".repeat(5000)).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("parameter \"(a parameter name)\" is 5000 bytes"),
            "{error}"
        );
        assert_eq!(
            check_items("span_ids", 1001).unwrap_err().to_string(),
            "parameter \"span_ids\" is 1001 items, past the limit of 1000 items for lists passed to devtrace (the value is not shown); pass the name, id or filter itself, not a document"
        );
        // A name shown in an error is cut and quoted.
        let shown = check(&"n".repeat(500), &"v".repeat(5000), 4096)
            .unwrap_err()
            .to_string();
        assert!(
            shown.starts_with(&format!("parameter \"{}…\" is 5000 bytes", "n".repeat(64))),
            "{shown}"
        );
    }
}
