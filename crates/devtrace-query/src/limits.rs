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

/// How long a string and how long a list may be anywhere in a REST request's JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JsonBounds {
    pub text_bytes: usize,
    pub items: usize,
}

/// Settings (`POST /api/v1/sessions/{id}/qa`): every field is a name, a command or a number,
/// bounded like a query parameter.
pub const SETTINGS_BODY: JsonBounds = JsonBounds {
    text_bytes: MAX_ARGUMENT_BYTES,
    items: MAX_ARGUMENT_ITEMS,
};

/// Session documents and event batches (`POST /api/v1/sessions`, `…/events`) carry content —
/// diffs, terminal output, notes — within the API's 32 MiB body limit: any one string up to
/// 4 MiB, any one list (events, artifacts) up to 100,000 items.
pub const DOCUMENT_BODY: JsonBounds = JsonBounds {
    text_bytes: 4 * 1024 * 1024,
    items: 100_000,
};

/// Longest field path shown in an error (`events[3].output`); a path is built of caller text.
const PATH_BYTES: usize = 200;

/// Checks every string, list and object key of a JSON body against `bounds` (keys against
/// [`MAX_ARGUMENT_BYTES`]) before anything reads it as settings or a document. The error names
/// the field by its path (`events[12].output`; `(a field name)` for a key) and never holds a
/// value.
pub fn check_json(body: &serde_json::Value, bounds: JsonBounds) -> Result<(), TooLarge> {
    use serde_json::Value;
    fn path(parts: &[String]) -> String {
        let mut path = String::new();
        for part in parts {
            if !part.starts_with('[') && !path.is_empty() {
                path.push('.');
            }
            path.push_str(part);
        }
        if path.is_empty() {
            return "(the body)".to_owned();
        }
        if path.len() > PATH_BYTES {
            let mut cut = PATH_BYTES;
            while !path.is_char_boundary(cut) {
                cut -= 1;
            }
            path.truncate(cut);
            path.push('…');
        }
        path
    }
    fn walk(value: &Value, parts: &mut Vec<String>, bounds: JsonBounds) -> Result<(), TooLarge> {
        match value {
            Value::String(text) => check(&path(parts), text, bounds.text_bytes),
            Value::Array(items) => {
                if items.len() > bounds.items {
                    return Err(TooLarge {
                        name: path(parts),
                        size: items.len(),
                        limit: bounds.items,
                        items: true,
                    });
                }
                for (at, item) in items.iter().enumerate() {
                    parts.push(format!("[{at}]"));
                    walk(item, parts, bounds)?;
                    parts.pop();
                }
                Ok(())
            }
            Value::Object(fields) => {
                for (key, field) in fields {
                    check(key, key, MAX_ARGUMENT_BYTES).map_err(|e| TooLarge {
                        name: "(a field name)".to_owned(),
                        ..e
                    })?;
                    parts.push(key.clone());
                    walk(field, parts, bounds)?;
                    parts.pop();
                }
                Ok(())
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
        }
    }
    walk(body, &mut Vec::new(), bounds)
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
    fn json_bodies_are_bounded_field_by_field_and_named_by_path() {
        let bounds = JsonBounds {
            text_bytes: 10,
            items: 3,
        };
        let ok = serde_json::json!({"a": "0123456789", "b": [1, 2, 3], "c": {"d": null}});
        assert_eq!(check_json(&ok, bounds), Ok(()));
        let long = serde_json::json!({"events": [{"t": 1}, {"output": "SECRET-VALUE"}]});
        let error = check_json(&long, bounds).unwrap_err();
        assert_eq!(
            error.to_string(),
            "parameter \"events[1].output\" is 12 bytes, past the limit of 10 bytes for values passed to devtrace (the value is not shown); pass the name, id or filter itself, not a document"
        );
        let many = serde_json::json!({"a": {"list": [1, 2, 3, 4]}});
        let error = check_json(&many, bounds).unwrap_err();
        assert_eq!(
            (error.name.as_str(), error.size, error.items),
            ("a.list", 4, true)
        );
        let key = serde_json::json!({"k".repeat(5000): 1});
        assert_eq!(check_json(&key, bounds).unwrap_err().name, "(a field name)");
        let root = serde_json::json!("SECRET-VALUE");
        assert_eq!(check_json(&root, bounds).unwrap_err().name, "(the body)");
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
