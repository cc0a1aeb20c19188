//! The tools: one module each, registered in [`all`]. A tool is a name, a short description,
//! a parameter type (its JSON schema is generated from the type, then compacted) and a function
//! from the store and the parameters to text that fits the call's token budget.
//!
//! Adding a tool is local: a module with its parameter struct and function, and one line in
//! [`all`]. The test `definitions_fit_their_budget` keeps every definition together under
//! [`DEFINITIONS_BUDGET`] tokens.

pub mod analyze_operation;
pub mod check_insights;
pub mod compare;
pub mod compare_sessions;
pub mod errors;
pub mod find_issues;
pub mod get_spans;
pub mod get_trace;
pub mod list_sessions;
pub mod operation_calls;
pub mod overview;
pub mod plan_instrumentation;
pub mod process_state;
pub mod qa_summary;
pub mod query_sql;
pub mod search_traces;
pub mod session_overview;

use crate::budget;
use devtrace_query::QueryError;
use devtrace_query::limits;
use devtrace_query::timefmt::{now_nanos, parse_duration, parse_since};
use devtrace_store::{Store, StoreError};
use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::Arc;

/// All tool definitions together stay under this many tokens (an assistant's context is
/// precious): 3,000 for the first twelve tools, 3,300 since the BEAM's `process_state` and
/// finding kinds (≈ 3,200 as Python clients write them).
pub const DEFINITIONS_BUDGET: usize = 3_300;

/// A tool's answer: text, or an error that teaches the fix.
pub type ToolResult = Result<String, ToolError>;

type Run = dyn Fn(&dyn Store, Option<&WebUi>, Value) -> ToolResult + Send + Sync;

/// One tool: its definition and its implementation.
pub struct ToolDef {
    pub name: &'static str,
    pub definition: Tool,
    run: Box<Run>,
}

impl ToolDef {
    /// Runs the tool on raw arguments; bad arguments become a teaching error. With `web_ui`,
    /// tools that show one view (a trace, an operation, a session) end with a link to it.
    pub fn call(&self, store: &dyn Store, web_ui: Option<&WebUi>, arguments: Value) -> ToolResult {
        (self.run)(store, web_ui, arguments)
    }
}

/// The web UI of a running `devtrace serve`, for deep links in answers: its base address
/// (`http://127.0.0.1:4319`) is asked for at each call, because over stdio a server may start or
/// stop while the assistant works.
#[derive(Clone)]
pub struct WebUi(Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl WebUi {
    /// A web UI found by `locate` (None while no server runs).
    pub fn new(locate: impl Fn() -> Option<String> + Send + Sync + 'static) -> Self {
        Self(Arc::new(locate))
    }

    /// A web UI always at `base`.
    pub fn at(base: String) -> Self {
        Self::new(move || Some(base.clone()))
    }

    /// The line that ends an answer about the view at `path` (`devtrace_query::links`), with its
    /// token cost; empty when no server runs, or when the link would take more than a
    /// twentieth of the answer's `budget` (ids tokenize poorly; a small budget is for data).
    pub fn link_line(web_ui: Option<&WebUi>, path: &str, budget: usize) -> (String, usize) {
        let Some(base) = web_ui.and_then(|web| (web.0)()) else {
            return (String::new(), 0);
        };
        let line = format!("web UI view for the user: {base}{path}\n");
        let cost = budget::count(&line);
        if cost * LINK_SHARE > budget {
            return (String::new(), 0);
        }
        (line, cost)
    }
}

/// The `repo` argument of a tool: a directory (made canonical) or a repository URL.
pub fn repo_argument(repo: &str) -> Result<String, ToolError> {
    let repo = repo.trim();
    if repo.is_empty() {
        return Err(ToolError::new(
            "repo is empty: give the directory the work is in (an absolute path) or the repository's URL",
        ));
    }
    Ok(devtrace_query::sessions::repository_argument(repo))
}

/// A web UI link takes at most 1/LINK_SHARE of an answer's budget.
const LINK_SHARE: usize = 20;

/// Builds a tool from its parameter type and function.
pub fn tool<P>(
    name: &'static str,
    description: &str,
    run: fn(&dyn Store, P) -> ToolResult,
) -> ToolDef
where
    P: DeserializeOwned + schemars::JsonSchema + 'static,
{
    linked_tool(name, description, move |store, params, _| {
        run(store, params)
    })
}

/// A tool whose answer shows one view of the web UI and ends with a link to it.
pub fn linked_tool<P>(
    name: &'static str,
    description: &str,
    run: impl Fn(&dyn Store, P, Option<&WebUi>) -> ToolResult + Send + Sync + 'static,
) -> ToolDef
where
    P: DeserializeOwned + schemars::JsonSchema + 'static,
{
    let schema = compact_schema::<P>();
    let properties: Vec<String> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let closed_sets = closed_sets(&schema);
    let definition = Tool::new(name, description.to_owned(), Arc::new(schema))
        .with_annotations(ToolAnnotations::new().read_only(true));
    ToolDef {
        name,
        definition,
        run: Box::new(move |store, web_ui, arguments| {
            let mut arguments = if arguments.is_null() {
                Value::Object(Default::default())
            } else {
                arguments
            };
            check_sizes(name, &arguments)?;
            check_closed_sets(&arguments, &closed_sets)?;
            let budget_note = budget_note(&mut arguments);
            let params: P = serde_json::from_value(arguments).map_err(|e| {
                ToolError::new(format!(
                    "invalid arguments for {name}: {}. It takes: {}",
                    devtrace_model::recorded::escape(&e.to_string()),
                    properties.join(", ")
                ))
            })?;
            let mut answer = run(store, params, web_ui)?;
            answer.push_str(&budget_note);
            Ok(answer)
        }),
    }
}

/// Parameters allowed values longer than [`limits::MAX_ARGUMENT_BYTES`]: (tool, parameter,
/// limit in bytes).
const LONG_ARGUMENTS: &[(&str, &str, usize)] = &[("query_sql", "sql", limits::MAX_SQL_BYTES)];

/// Every value in a tool's arguments, at any depth, within [`devtrace_query::limits`] (and
/// every parameter name): checked before anything else reads them, so an oversized value costs
/// nothing and is never echoed.
pub fn check_sizes(tool: &str, arguments: &Value) -> Result<(), ToolError> {
    fn walk(name: &str, value: &Value, limit: usize) -> Result<(), limits::TooLarge> {
        match value {
            Value::String(text) => limits::check(name, text, limit),
            Value::Array(items) => {
                limits::check_items(name, items.len())?;
                items.iter().try_for_each(|item| walk(name, item, limit))
            }
            Value::Object(map) => map.iter().try_for_each(|(key, value)| {
                limits::check_name(key)?;
                walk(key, value, limit)
            }),
            _ => Ok(()),
        }
    }
    let Value::Object(map) = arguments else {
        return Ok(());
    };
    for (key, value) in map {
        let limit = LONG_ARGUMENTS
            .iter()
            .find(|(t, parameter, _)| *t == tool && parameter == key)
            .map_or(limits::MAX_ARGUMENT_BYTES, |(_, _, limit)| *limit);
        limits::check_name(key)
            .and_then(|()| walk(key, value, limit))
            .map_err(|e| ToolError::new(format!("{tool}: {e}")))?;
    }
    Ok(())
}

/// The parameters whose values form a closed set (a JSON-schema `enum`), with their values.
fn closed_sets(schema: &JsonObject) -> Vec<(String, Vec<String>)> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    properties
        .iter()
        .filter_map(|(name, property)| {
            let values = property.get("enum")?.as_array()?;
            Some((
                name.clone(),
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ))
        })
        .collect()
}

/// An argument outside its closed set is refused with the values it may take (serde's own
/// message would quote the value in backticks and list the variants less plainly).
fn check_closed_sets(arguments: &Value, sets: &[(String, Vec<String>)]) -> Result<(), ToolError> {
    for (name, values) in sets {
        match arguments.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(given)) if values.contains(given) => {}
            Some(given) => {
                let shown = match given {
                    Value::String(text) => devtrace_model::recorded::quote(text),
                    other => devtrace_model::recorded::escape(&other.to_string()),
                };
                return Err(ToolError::new(format!(
                    "{name}: {shown} is not one of {}",
                    values.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// A budget outside [`budget::MIN_BUDGET`, `budget::MAX_BUDGET`] is used at the nearer bound and
/// the answer says so in a last line (returned here). Above the maximum, the tool is given
/// room for that line so the answer still fits the budget it used.
fn budget_note(arguments: &mut Value) -> String {
    let Some(asked) = arguments.get("budget").and_then(Value::as_u64) else {
        return String::new();
    };
    let asked = asked as usize;
    if asked < budget::MIN_BUDGET {
        format!(
            "note: budget {asked} is below the minimum {}; used {}\n",
            budget::MIN_BUDGET,
            budget::MIN_BUDGET
        )
    } else if asked > budget::MAX_BUDGET {
        let note = format!(
            "note: budget {asked} is above the maximum {}; used {}\n",
            budget::MAX_BUDGET,
            budget::MAX_BUDGET
        );
        arguments["budget"] = Value::from(budget::MAX_BUDGET - budget::count(&note));
        note
    } else {
        String::new()
    }
}

/// Every tool, in the order an investigation uses them.
pub fn all() -> Vec<ToolDef> {
    vec![
        overview::def(),
        search_traces::def(),
        get_trace::def(),
        get_spans::def(),
        process_state::def(),
        analyze_operation::def(),
        find_issues::def(),
        compare::def(),
        errors::def(),
        list_sessions::def(),
        session_overview::def(),
        compare_sessions::def(),
        check_insights::def(),
        query_sql::def(),
        qa_summary::def(),
        plan_instrumentation::def(),
    ]
}

/// The JSON schema of `P`, without what costs tokens and tells an assistant nothing: `$schema`,
/// titles, number formats, zero minimums, and `null` alternatives of optional fields (a field
/// that is not required may be left out).
fn compact_schema<P: schemars::JsonSchema>() -> JsonObject {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let schema = generator.into_root_schema_for::<P>();
    let mut value = serde_json::to_value(schema).expect("schemas serialise");
    inline_definitions(&mut value);
    compact(&mut value);
    // The parameter struct's own doc comment: the tool description already says it.
    if let Value::Object(map) = &mut value {
        map.remove("description");
    }
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

/// Replaces each `{"$ref": "#/$defs/X"}` by the definition of `X` (an enum's values), keeping
/// what stands beside the reference (its description), and drops `$defs`: a tool's parameters
/// read in one place, and some clients do not follow references.
fn inline_definitions(value: &mut Value) {
    let Some(Value::Object(definitions)) = value.as_object_mut().and_then(|m| m.remove("$defs"))
    else {
        return;
    };
    fn resolve(value: &mut Value, definitions: &serde_json::Map<String, Value>) {
        match value {
            Value::Object(map) => {
                let target = map
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("#/$defs/"))
                    .and_then(|name| definitions.get(name))
                    .cloned();
                if let Some(Value::Object(definition)) = target {
                    map.remove("$ref");
                    for (k, v) in definition {
                        map.entry(k).or_insert(v);
                    }
                }
                for child in map.values_mut() {
                    resolve(child, definitions);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| resolve(i, definitions)),
            _ => {}
        }
    }
    resolve(value, &definitions);
}

fn compact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in ["$schema", "title", "format"] {
                map.remove(key);
            }
            if map.get("minimum").and_then(Value::as_f64) == Some(0.0) {
                map.remove("minimum");
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            if let Some(Value::Array(types)) = map.get("type") {
                let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                if non_null.len() == 1 {
                    map.insert("type".into(), non_null[0].clone());
                }
            }
            if let Some(Value::Array(any)) = map.get("anyOf") {
                let non_null: Vec<Value> = any
                    .iter()
                    .filter(|s| s.get("type") != Some(&Value::String("null".into())))
                    .cloned()
                    .collect();
                if non_null.len() == 1 {
                    map.remove("anyOf");
                    if let Value::Object(inner) = &non_null[0] {
                        for (k, v) in inner {
                            map.entry(k.clone()).or_insert_with(|| v.clone());
                        }
                    }
                }
            }
            if map
                .get("required")
                .and_then(Value::as_array)
                .is_some_and(|r| r.is_empty())
            {
                map.remove("required");
            }
            for child in map.values_mut() {
                compact(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(compact),
        _ => {}
    }
}

/// A failed call, as the assistant reads it: what was wrong and what to do instead.
#[derive(Debug)]
pub struct ToolError {
    pub message: String,
}

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// How trace ids look, for every message about a bad one.
pub const TRACE_ID_HINT: &str = "trace ids are 32 hex characters (e.g. 4bf92f3577b34da6a3ce929d0e0e4736); a unique prefix of 8 or more works; search_traces and overview list them";

impl From<StoreError> for ToolError {
    fn from(error: StoreError) -> Self {
        ToolError::new(match error {
            StoreError::TraceNotFound(id) => format!("no trace matches {id_q}: {TRACE_ID_HINT}", id_q = devtrace_model::recorded::quote(&id)),
            StoreError::InvalidTraceId(id) => format!("{id_q} is not a trace id: {TRACE_ID_HINT}", id_q = devtrace_model::recorded::quote(&id)),
            StoreError::AmbiguousPrefix { prefix, candidates } => format!(
                "{prefix_q} matches several traces ({}); give more characters",
                candidates.join(", "), prefix_q = devtrace_model::recorded::quote(&prefix)),
            StoreError::Missing(_) => {
                "the store is empty: no telemetry has been received yet. Run a program with OTEL_EXPORTER_OTLP_ENDPOINT pointing at `devtrace serve`, or `devtrace run -- <command>`".into()
            }
            other => format!("the store failed: {other}"),
        })
    }
}

impl ToolError {
    /// A query error, with "did you mean" for unknown operations.
    pub fn from_query(store: &dyn Store, error: QueryError, operation: Option<&str>) -> Self {
        match (error, operation) {
            (QueryError::UnknownOperation(_), Some(name)) => unknown_operation(store, name),
            (QueryError::OperationElsewhere(message), _) => {
                ToolError::new(format!("{message}; pass service and kind to choose one"))
            }
            (
                QueryError::UnknownOperation(message)
                | QueryError::Invalid(message)
                | QueryError::NoSession(message),
                _,
            ) => ToolError::new(message),
            (QueryError::Store(error), _) => error.into(),
        }
    }
}

/// "no span named X is stored; did you mean …", naming the tools that list operations.
pub fn unknown_operation(store: &dyn Store, name: &str) -> ToolError {
    const SHOWN: usize = 5;
    let mut close =
        devtrace_query::scope::closest_operations(store, name, SHOWN + 1).unwrap_or_default();
    let more = close.len() > SHOWN;
    close.truncate(SHOWN);
    let quoted: Vec<String> = close
        .iter()
        .map(|n| devtrace_query::text::quote(n))
        .collect();
    ToolError::new(if close.is_empty() {
        format!(
            "no span named {} is stored (operation names are exact span names); overview lists the top operations, and query_sql can list all: SELECT DISTINCT name FROM operations",
            devtrace_query::text::quote(name)
        )
    } else if more {
        // The name goes into the suggested SQL as a literal quoted for SQLite.
        format!(
            "no span named {} is stored; did you mean {}? (operation names are exact span names) More contain it: SELECT DISTINCT name FROM operations WHERE instr(lower(name), lower({})) > 0",
            devtrace_query::text::quote(name),
            quoted.join(", "),
            devtrace_model::recorded::sql_literal(name)
        )
    } else {
        format!(
            "no span named {} is stored; did you mean {}? (operation names are exact span names)",
            devtrace_query::text::quote(name),
            quoted.join(", ")
        )
    })
}

/// `since`: "2h" (back from now) or an RFC 3339 UTC time.
pub fn since(text: Option<&str>) -> Result<Option<u64>, ToolError> {
    text.map(|t| parse_since(t, now_nanos()).map_err(|e| ToolError::new(format!("since: {e}"))))
        .transpose()
}

/// What a call asked to read, resolved: the scope (the default window,
/// `devtrace_query::window`, when neither `since` nor `last` is given), the window when it
/// applies, how to name it ("since 2h", "the last hour", "the hour before the newest trace",
/// "the most recent") and its note as a line of its own (empty when there is none).
pub struct Asked {
    pub scope: devtrace_query::Scope,
    pub window: Option<devtrace_query::window::Window>,
    pub words: String,
    pub note: String,
}

impl Asked {
    pub fn resolve(
        store: &dyn Store,
        since_text: Option<&str>,
        last: Option<usize>,
        operation: Option<&devtrace_model::OperationFilter>,
    ) -> Result<Self, ToolError> {
        let scope = devtrace_query::Scope {
            last,
            since_unix_nano: since(since_text)?,
        };
        let (scope, window) =
            devtrace_query::window::with_default(store, scope, now_nanos(), operation)?;
        Ok(Self::new(scope, window, since_text))
    }

    pub fn new(
        scope: devtrace_query::Scope,
        window: Option<devtrace_query::window::Window>,
        since_text: Option<&str>,
    ) -> Self {
        let words = match (&window, since_text) {
            (Some(window), _) => window.description.clone(),
            (None, Some(since)) => format!("since {since}"),
            (None, None) => "the most recent".into(),
        };
        let note = window
            .as_ref()
            .and_then(|w| w.note.as_ref())
            .map(|note| format!("note: {note}\n"))
            .unwrap_or_default();
        Self {
            scope,
            window,
            words,
            note,
        }
    }
}

/// A duration argument such as "250ms" or "1.5s".
pub fn duration(field: &str, text: Option<&str>) -> Result<Option<u64>, ToolError> {
    text.map(|t| parse_duration(t).map_err(|e| ToolError::new(format!("{field}: {e}"))))
        .transpose()
}

/// Fits `text` into the call's budget with the generic line cut, naming `more` as the call that
/// gets what was cut.
pub fn fit(text: String, budget: usize, more: &str) -> String {
    budget::fit(&text, budget, |kept, total| {
        format!("[truncated to fit {budget} tokens: {kept} of {total} lines shown; {more}]\n")
    })
}

/// A store in a temporary directory holding `spans`, for the tools' tests.
#[cfg(test)]
pub(crate) fn store_of(
    spans: Vec<devtrace_model::Span>,
) -> (tempfile::TempDir, devtrace_store::sqlite::SqliteStore) {
    use devtrace_model::{Resource, Scope, SpanBatch};
    use devtrace_store::StoreWriter;
    let dir = tempfile::tempdir().unwrap();
    devtrace_store::sqlite::SqliteWriter::open(dir.path())
        .unwrap()
        .write(&[devtrace_store::prepare_spans(SpanBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope::default()],
            spans,
        })])
        .unwrap();
    let store = devtrace_store::sqlite::SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON with a space after each `:` and `,`, as Python's `json.dumps` writes it: how a
    /// client built on the Python SDK shows (and counts) the definitions, about a fifth more
    /// tokens than the compact form devtrace sends.
    struct Spaced;

    fn separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    impl serde_json::ser::Formatter for Spaced {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            separator(w, first)
        }

        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            separator(w, first)
        }

        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }

    /// On each store the SQL tool's description names its dialect and its views.
    #[test]
    fn the_sql_description_names_each_stores_dialect_and_views() {
        for (schema, dialect) in [
            (devtrace_store::sql::SCHEMA, "SQLite"),
            (devtrace_store::postgres::SCHEMA, "PostgreSQL"),
            (devtrace_store::clickhouse::SCHEMA, "ClickHouse"),
        ] {
            let text = query_sql::description_for(schema);
            assert!(
                text.starts_with(&format!("Read-only SQL ({dialect}, 5 s limit)")),
                "{text}"
            );
            assert!(text.contains("\ntraces(trace_id"), "{text}");
        }
    }

    #[test]
    fn definitions_fit_their_budget_as_sent_and_as_python_clients_write_them() {
        let tools: Vec<Tool> = all().into_iter().map(|t| t.definition).collect();
        let compact = budget::count(&serde_json::to_string(&tools).unwrap());
        let mut spaced = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(&mut spaced, Spaced);
        serde::Serialize::serialize(&tools, &mut serializer).unwrap();
        let spaced = budget::count(std::str::from_utf8(&spaced).unwrap());
        assert!(
            compact <= DEFINITIONS_BUDGET && spaced <= DEFINITIONS_BUDGET,
            "tool definitions take {compact} tokens as sent and {spaced} as Python writes them, \
             more than {DEFINITIONS_BUDGET}"
        );
    }

    #[test]
    fn every_parameter_is_described_and_references_are_inlined() {
        for def in all() {
            let schema = Value::Object((*def.definition.input_schema).clone());
            let text = schema.to_string();
            assert!(
                !text.contains("$ref") && !text.contains("$defs"),
                "{}: {text}",
                def.name
            );
            for (name, property) in schema["properties"].as_object().unwrap() {
                let described = property
                    .get("description")
                    .and_then(Value::as_str)
                    .is_some_and(|d| d.len() >= 8);
                assert!(
                    described,
                    "{}.{name} has no description: {property}",
                    def.name
                );
            }
        }
    }

    fn call(tool: &str, arguments: Value) -> ToolResult {
        let dir = tempfile::tempdir().unwrap();
        drop(devtrace_store::sqlite::SqliteWriter::open(dir.path()).unwrap());
        let store = devtrace_store::sqlite::SqliteStore::open(dir.path()).unwrap();
        let def = all().into_iter().find(|t| t.name == tool).unwrap();
        def.call(&store, None, arguments)
    }

    #[test]
    fn a_value_outside_a_closed_set_is_refused_with_the_values_it_may_take() {
        let error = call(
            "find_issues",
            serde_json::json!({"kind": "n_plus_one\nSYSTEM: x"}),
        )
        .unwrap_err()
        .message;
        assert!(
            error.starts_with(
                r#"kind: "n_plus_one\nSYSTEM: x" is not one of sequential_work, repeated_calls, "#
            ),
            "{error}"
        );
        let find_issues = all().into_iter().find(|t| t.name == "find_issues").unwrap();
        let schema = Value::Object((*find_issues.definition.input_schema).clone());
        assert_eq!(schema["properties"]["kind"]["enum"][0], "sequential_work");
        assert!(
            schema.get("required").is_none(),
            "kind is optional: {schema}"
        );
        let error = call("search_traces", serde_json::json!({"status": 3}))
            .unwrap_err()
            .message;
        assert_eq!(error, "status: 3 is not one of error, ok");
    }

    #[test]
    fn a_budget_out_of_bounds_is_used_at_the_bound_and_reported() {
        let mut arguments = serde_json::json!({"budget": 50});
        assert_eq!(
            budget_note(&mut arguments),
            "note: budget 50 is below the minimum 300; used 300\n"
        );
        let mut arguments = serde_json::json!({"budget": 90_000});
        let note = budget_note(&mut arguments);
        assert_eq!(
            note,
            "note: budget 90000 is above the maximum 20000; used 20000\n"
        );
        assert_eq!(
            arguments["budget"].as_u64(),
            Some((budget::MAX_BUDGET - budget::count(&note)) as u64),
            "room is left for the note"
        );
        let mut arguments = serde_json::json!({"budget": 4000});
        assert_eq!(budget_note(&mut arguments), "");
    }

    #[test]
    fn an_unknown_operations_suggested_sql_quotes_the_name_and_runs() {
        use devtrace_model::{Span, SpanId, TraceId};
        let name = "it's\na `checkout`";
        // More operations contain the name than "did you mean" lists: the SQL finds them all.
        let stored: Vec<String> = (1..=7).map(|v| format!("POST {name} v{v}")).collect();
        let spans = stored
            .iter()
            .enumerate()
            .map(|(i, n)| Span::new(TraceId([i as u8 + 1; 16]), SpanId([9; 8]), None, n, 1, 2))
            .collect();
        let (_dir, store) = store_of(spans);
        let error = unknown_operation(&store, name).message;
        let sql = error.split("More contain it: ").nth(1).unwrap();
        assert!(devtrace_model::recorded::is_inert(sql), "{sql}");
        assert_eq!(
            sql,
            "SELECT DISTINCT name FROM operations WHERE instr(lower(name), lower('it''s' || char(10) || 'a ' || char(96) || 'checkout' || char(96))) > 0"
        );
        let rows = store
            .query_sql(sql, devtrace_store::sql::SqlLimits::default())
            .unwrap();
        let mut found: Vec<String> = rows
            .rows
            .iter()
            .map(|row| match &row[0] {
                devtrace_store::sql::SqlValue::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        found.sort();
        assert_eq!(
            found, stored,
            "the suggestion, run as it is, finds every one"
        );
    }

    #[test]
    fn schemas_are_compact() {
        for def in all() {
            let schema = serde_json::to_string(&def.definition.input_schema).unwrap();
            for noise in ["$schema", "\"title\"", "\"format\"", "\"null\""] {
                assert!(!schema.contains(noise), "{}: {noise} in {schema}", def.name);
            }
        }
    }
}
