//! The developer-telemetry format `trace-1.0.0` (SPEC §6): validation with errors that name
//! the field, and the mapping to a session trace.
//!
//! A document is one developer session: who (`developer`), what (`task`), where
//! (`environment`), what happened (`events`: files opened, navigation, edits with their
//! hashes and diffs, terminal commands with exit codes and output, notes), and what came of it
//! (`artifacts`, `qa`). Unknown event types are kept and shown as generic events; failed
//! attempts are kept like any other event.
//!
//! The document itself (redacted) is stored as a blob the session span refers to, so the REST
//! API can return it as it was sent; the spans make it searchable and analysable like any
//! other session.

use super::common::{Builder, SessionOutput, SessionRoot, derive_span_id, error_message, head};
use crate::redact::Redactor;
use devtrace_model::session::session_span_id;
use devtrace_model::time::parse_rfc3339;
use devtrace_model::{AnyValue, KeyValue, Status, StatusCode, TraceId, semconv};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

pub const VERSION: &str = "trace-1.0.0";
/// The agent name sessions from this format are listed under.
pub const AGENT: &str = devtrace_model::session::DOCUMENT_AGENT;
/// Errors reported at most, so a broken document gets a readable answer.
const MAX_ERRORS: usize = 20;

/// One thing wrong with a document, at a field path (`events[3].exit_code`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Why a document was refused. Nothing from it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentError {
    pub errors: Vec<FieldError>,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {VERSION} document: ")?;
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", error.path, error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for DocumentError {}

/// Whether a JSON value claims to be a `trace-1.0.0` document.
pub fn is_trace_document(value: &Value) -> bool {
    value.get("version").and_then(Value::as_str) == Some(VERSION)
}

/// A validated document: its trace id and its (redacted) JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceDocument {
    pub trace_id: TraceId,
    /// The `trace_id` field as sent (a UUID).
    pub id: String,
    pub document: Value,
}

struct Checker {
    errors: Vec<FieldError>,
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Checker {
    fn error(&mut self, path: &str, message: impl Into<String>) {
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(FieldError {
                path: path.to_owned(),
                message: message.into(),
            });
        }
    }

    fn wrong_type(&mut self, path: &str, expected: &str, found: &Value) {
        let shown = match found {
            Value::String(s) => format!(" ({:?})", head(s, 40)),
            Value::Number(n) => format!(" ({n})"),
            _ => String::new(),
        };
        self.error(
            path,
            format!("expected {expected}, found {}{shown}", kind_of(found)),
        );
    }

    fn object<'a>(
        &mut self,
        parent: &'a Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'a Map<String, Value>> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(map)) => Some(map),
            Some(other) => {
                self.wrong_type(&join(path, key), "an object", other);
                None
            }
        }
    }

    fn string(&mut self, parent: &Map<String, Value>, path: &str, key: &str) -> Option<String> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.wrong_type(&join(path, key), "a string", other);
                None
            }
        }
    }

    fn one_of(&mut self, parent: &Map<String, Value>, path: &str, key: &str, allowed: &[&str]) {
        if let Some(value) = self.string(parent, path, key)
            && !allowed.contains(&value.as_str())
        {
            self.error(
                &join(path, key),
                format!("{value:?} is not one of {}", allowed.join(", ")),
            );
        }
    }

    fn time(&mut self, parent: &Map<String, Value>, path: &str, key: &str) -> Option<u64> {
        let text = self.string(parent, path, key)?;
        let parsed = parse_rfc3339(&text);
        if parsed.is_none() {
            self.error(
                &join(path, key),
                format!("{text:?} is not an RFC 3339 time (e.g. 2025-06-14T11:03:00Z)"),
            );
        }
        parsed
    }

    fn integer(
        &mut self,
        parent: &Map<String, Value>,
        path: &str,
        key: &str,
        min: i64,
    ) -> Option<i64> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(value @ Value::Number(n)) => match n.as_i64() {
                Some(i) if i >= min => Some(i),
                Some(i) => {
                    self.error(
                        &join(path, key),
                        format!("must be at least {min}, found {i}"),
                    );
                    None
                }
                None => {
                    self.wrong_type(&join(path, key), "an integer", value);
                    None
                }
            },
            Some(other) => {
                self.wrong_type(&join(path, key), "an integer", other);
                None
            }
        }
    }

    fn number(&mut self, parent: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
        match parent.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => {
                let value = n.as_f64().unwrap_or(0.0);
                if value < 0.0 {
                    self.error(
                        &join(path, key),
                        format!("must not be negative, found {value}"),
                    );
                    return None;
                }
                Some(value)
            }
            Some(other) => {
                self.wrong_type(&join(path, key), "a number", other);
                None
            }
        }
    }

    fn boolean(&mut self, parent: &Map<String, Value>, path: &str, key: &str) {
        match parent.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(_)) => {}
            Some(other) => self.wrong_type(&join(path, key), "true or false", other),
        }
    }

    fn strings(&mut self, parent: &Map<String, Value>, path: &str, key: &str) {
        match parent.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        self.wrong_type(&format!("{}[{i}]", join(path, key)), "a string", item);
                    }
                }
            }
            Some(other) => self.wrong_type(&join(path, key), "an array of strings", other),
        }
    }

    fn position(&mut self, parent: &Map<String, Value>, path: &str, key: &str) {
        if let Some(range) = self.object(parent, path, key) {
            let range_path = join(path, key);
            for end in ["start", "end"] {
                if let Some(point) = self.object(range, &range_path, end) {
                    let point_path = join(&range_path, end);
                    self.integer(point, &point_path, "line", 0);
                    self.integer(point, &point_path, "col", 0);
                }
            }
        }
    }

    fn event(&mut self, event: &Value, path: &str) {
        let Value::Object(event) = event else {
            self.wrong_type(path, "an event object", event);
            return;
        };
        if !event.contains_key("t") {
            self.error(&join(path, "t"), "required: the event's time (RFC 3339)");
        } else {
            self.time(event, path, "t");
        }
        let kind = match event.get("type") {
            Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
            Some(Value::String(_)) | None => {
                self.error(&join(path, "type"), "required: file_opened, go_to_definition, edit, terminal_command, thought, or a type of your own");
                return;
            }
            Some(other) => {
                self.wrong_type(&join(path, "type"), "a string", other);
                return;
            }
        };
        self.string(event, path, "session_id");
        match kind.as_str() {
            "file_opened" => {
                self.required_string(event, path, "file_path");
                self.string(event, path, "language");
            }
            "go_to_definition" => {
                if let Some(source) = self.object(event, path, "source") {
                    let source_path = join(path, "source");
                    self.string(source, &source_path, "file_path");
                    self.string(source, &source_path, "symbol");
                    self.position(source, &source_path, "range");
                }
                if let Some(target) = self.object(event, path, "target") {
                    let target_path = join(path, "target");
                    self.string(target, &target_path, "file_path");
                    self.integer(target, &target_path, "line", 0);
                    self.string(target, &target_path, "symbol_kind");
                }
                self.number(event, path, "latency_ms");
            }
            "find_references" => {
                if let Some(source) = self.object(event, path, "source") {
                    let source_path = join(path, "source");
                    self.string(source, &source_path, "file_path");
                    self.string(source, &source_path, "symbol");
                    self.position(source, &source_path, "range");
                }
                self.integer(event, path, "count", 0);
                self.number(event, path, "latency_ms");
                match event.get("references") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(references)) => {
                        for (i, reference) in references.iter().enumerate() {
                            let reference_path = format!("{}[{i}]", join(path, "references"));
                            let Value::Object(reference) = reference else {
                                self.wrong_type(&reference_path, "an object", reference);
                                continue;
                            };
                            self.string(reference, &reference_path, "file_path");
                            self.integer(reference, &reference_path, "line", 0);
                        }
                    }
                    Some(other) => {
                        self.wrong_type(&join(path, "references"), "an array of locations", other)
                    }
                }
            }
            "edit" => {
                self.required_string(event, path, "file_path");
                self.string(event, path, "op");
                self.position(event, path, "range");
                for key in ["patch_unified", "before_hash", "after_hash"] {
                    self.string(event, path, key);
                }
            }
            "terminal_command" => {
                self.required_string(event, path, "cmd");
                self.strings(event, path, "args");
                self.string(event, path, "cwd");
                self.integer(event, path, "exit_code", i64::MIN);
                self.number(event, path, "duration_ms");
                self.string(event, path, "stdout");
                self.string(event, path, "stderr");
            }
            "thought" => {
                self.string(event, path, "raw");
                self.strings(event, path, "tags");
            }
            _ => {}
        }
    }

    fn required_string(&mut self, parent: &Map<String, Value>, path: &str, key: &str) {
        if !parent.contains_key(key) {
            self.error(&join(path, key), "required");
        } else {
            self.string(parent, path, key);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// "123e4567-e89b-12d3-a456-426614174000" → its 16 bytes.
fn uuid(text: &str) -> Option<TraceId> {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lengths != [8, 4, 4, 4, 12] {
        return None;
    }
    let id: TraceId = groups.concat().parse().ok()?;
    (!id.is_zero()).then_some(id)
}

/// Validates a document; returns every problem found (up to 20), each at its field path.
pub fn validate(value: &Value) -> Result<TraceId, DocumentError> {
    let mut check = Checker { errors: Vec::new() };
    let Value::Object(root) = value else {
        check.wrong_type("$", &format!("a {VERSION} document (a JSON object)"), value);
        return Err(DocumentError {
            errors: check.errors,
        });
    };
    match root.get("version") {
        Some(Value::String(v)) if v == VERSION => {}
        Some(Value::String(v)) => check.error(
            "version",
            format!("{v:?} is not supported: expected {VERSION:?}"),
        ),
        Some(other) => check.wrong_type("version", &format!("{VERSION:?}"), other),
        None => check.error("version", format!("required: {VERSION:?}")),
    }
    let trace_id = match root.get("trace_id") {
        Some(Value::String(text)) => {
            let id = uuid(text);
            if id.is_none() {
                check.error(
                    "trace_id",
                    format!(
                        "{:?} is not a UUID (like 123e4567-e89b-12d3-a456-426614174000)",
                        head(text, 60)
                    ),
                );
            }
            id
        }
        Some(other) => {
            check.wrong_type("trace_id", "a UUID string", other);
            None
        }
        None => {
            check.error("trace_id", "required: the session's UUID");
            None
        }
    };
    check.time(root, "", "created_at");
    if let Some(developer) = check.object(root, "", "developer") {
        check.string(developer, "developer", "name");
        check.string(developer, "developer", "email");
        check.one_of(
            developer,
            "developer",
            "experience_level",
            &["junior", "mid", "senior"],
        );
        check.one_of(
            developer,
            "developer",
            "ide",
            &["vscode", "intellij", "vim", "emacs"],
        );
        check.one_of(developer, "developer", "os", &["windows", "macos", "linux"]);
    }
    if let Some(task) = check.object(root, "", "task") {
        for key in [
            "description",
            "repository",
            "branch",
            "commit",
            "test_image",
            "test_command",
        ] {
            check.string(task, "task", key);
        }
        check.one_of(task, "task", "complexity", &["low", "medium", "high"]);
    }
    if let Some(environment) = check.object(root, "", "environment") {
        for key in ["os", "editor", "version"] {
            check.string(environment, "environment", key);
        }
        check.strings(environment, "environment", "plugins");
        check.integer(environment, "environment", "workspace_size", 0);
    }
    match root.get("events") {
        None | Some(Value::Null) => {}
        Some(Value::Array(events)) => {
            for (i, event) in events.iter().enumerate() {
                check.event(event, &format!("events[{i}]"));
            }
        }
        Some(other) => check.wrong_type("events", "an array of events", other),
    }
    if let Some(artifacts) = check.object(root, "", "artifacts") {
        check.string(artifacts, "artifacts", "final_patch");
        if let Some(results) = check.object(artifacts, "artifacts", "test_results") {
            check.integer(results, "artifacts.test_results", "passed", 0);
            check.integer(results, "artifacts.test_results", "failed", 0);
        }
    }
    if let Some(qa) = check.object(root, "", "qa") {
        if let Some(tests) = check.object(qa, "qa", "tests") {
            for key in ["runner", "image", "command", "stdout", "stderr"] {
                check.string(tests, "qa.tests", key);
            }
            check.boolean(tests, "qa.tests", "ok");
            check.integer(tests, "qa.tests", "exit_code", i64::MIN);
            check.number(tests, "qa.tests", "duration_ms");
        }
        if let Some(judge) = check.object(qa, "qa", "judge") {
            for key in ["model", "rubric_version", "comments"] {
                check.string(judge, "qa.judge", key);
            }
            if let Some(scores) = check.object(judge, "qa.judge", "scores") {
                for key in scores.keys() {
                    check.number(scores, "qa.judge.scores", key);
                }
            }
            check.number(judge, "qa.judge", "overall");
        }
    }
    match (trace_id, check.errors.is_empty()) {
        (Some(id), true) => Ok(id),
        _ => Err(DocumentError {
            errors: check.errors,
        }),
    }
}

/// Parses and validates a document, then redacts every string in it.
pub fn parse(bytes: &[u8], redactor: &Redactor) -> Result<TraceDocument, DocumentError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| DocumentError {
        errors: vec![FieldError {
            path: "$".into(),
            message: format!("not JSON: {e}"),
        }],
    })?;
    from_value(value, redactor)
}

/// Validates and redacts an already parsed document.
pub fn from_value(mut value: Value, redactor: &Redactor) -> Result<TraceDocument, DocumentError> {
    let trace_id = validate(&value)?;
    let id = value["trace_id"].as_str().unwrap_or_default().to_owned();
    redactor.redact_json(&mut value);
    Ok(TraceDocument {
        trace_id,
        id,
        document: value,
    })
}

/// Appends a batch of events (`{"events": [...]}`) to a stored document, validating them
/// (paths name the batch: `events[0].t`). Returns how many were added.
pub fn append_events(
    document: &mut TraceDocument,
    batch: &Value,
    redactor: &Redactor,
) -> Result<usize, DocumentError> {
    let mut check = Checker { errors: Vec::new() };
    let events = match batch.get("events") {
        Some(Value::Array(events)) if !events.is_empty() => events.clone(),
        Some(Value::Array(_)) => {
            check.error("events", "empty: send at least one event");
            Vec::new()
        }
        Some(other) => {
            check.wrong_type("events", "an array of events", other);
            Vec::new()
        }
        None if batch.is_object() => {
            check.error("events", "required: the events to add");
            Vec::new()
        }
        None => {
            check.wrong_type("$", "an object with \"events\"", batch);
            Vec::new()
        }
    };
    for (i, event) in events.iter().enumerate() {
        check.event(event, &format!("events[{i}]"));
    }
    if !check.errors.is_empty() {
        return Err(DocumentError {
            errors: check.errors,
        });
    }
    let added = events.len();
    let mut events = Value::Array(events);
    redactor.redact_json(&mut events);
    let list = document
        .document
        .as_object_mut()
        .expect("validated documents are objects")
        .entry("events")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !list.is_array() {
        *list = Value::Array(Vec::new());
    }
    list.as_array_mut()
        .expect("just made an array")
        .extend(events.as_array().expect("an array").iter().cloned());
    Ok(added)
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The session trace of a (validated, redacted) document, with the document as a blob.
pub fn to_spans(document: &TraceDocument, redactor: Arc<Redactor>) -> SessionOutput {
    let doc = &document.document;
    let trace_id = document.trace_id;
    let mut builder = Builder::new(redactor);
    let environment = doc.get("environment").cloned().unwrap_or(Value::Null);
    let task = doc.get("task").cloned().unwrap_or(Value::Null);
    let version = text(&environment, "version");
    let resource = builder.resource(AGENT, version);
    let root = session_span_id(trace_id);
    let events = doc
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let created = doc
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    let mut start = created.unwrap_or(u64::MAX);
    let mut end = created.unwrap_or(0);
    for (index, event) in events.iter().enumerate() {
        let Some(t) = event
            .get("t")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
        else {
            continue;
        };
        let duration_ms = event
            .get("duration_ms")
            .or_else(|| event.get("latency_ms"))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let finish = t + (duration_ms * 1e6) as u64;
        start = start.min(t);
        end = end.max(finish);
        emit_event(
            &mut builder,
            trace_id,
            root,
            resource,
            index,
            event,
            t,
            finish,
        );
    }
    if start == u64::MAX {
        start = 0;
    }
    let project = text(&task, "repository");
    SessionRoot {
        trace_id,
        agent: AGENT,
        agent_version: version,
        session_id: &document.id,
        project,
        title: &super::common::title_from_prompt(text(&task, "description")),
        git_branch: text(&task, "branch"),
        source: VERSION,
        start,
        end: end.max(start),
    }
    .emit(&mut builder);
    let mut attributes = Vec::new();
    for (key, value) in [
        (semconv::SESSION_REPOSITORY, text(&task, "repository")),
        (semconv::SESSION_GIT_COMMIT, text(&task, "commit")),
        (
            semconv::SESSION_TASK_TEST_COMMAND,
            text(&task, "test_command"),
        ),
    ] {
        if !value.is_empty() {
            attributes.push(KeyValue::new(key, value));
        }
    }
    let bytes = serde_json::to_vec(doc).expect("JSON values serialise");
    let reference = builder.blob(bytes);
    attributes.push(KeyValue::new(semconv::SESSION_DOCUMENT_REF, reference));
    let span = builder.span(
        trace_id,
        root,
        None,
        String::new(),
        0,
        0,
        resource,
        attributes,
    );
    builder.emit(span);
    builder.take()
}

#[allow(clippy::too_many_arguments)]
fn emit_event(
    builder: &mut Builder,
    trace_id: TraceId,
    root: devtrace_model::SpanId,
    resource: u32,
    index: usize,
    event: &Value,
    start: u64,
    end: u64,
) {
    let kind = text(event, "type");
    let mut attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_EVENT),
        KeyValue::new(semconv::SESSION_EVENT_TYPE, kind),
    ];
    let segment = text(event, "session_id");
    if !segment.is_empty() {
        attributes.push(KeyValue::new(semconv::SESSION_SEGMENT, segment));
    }
    let mut status = Status::default();
    let name = match kind {
        "file_opened" => {
            attributes.push(KeyValue::new(semconv::SESSION_ACTION, "read"));
            attributes.push(KeyValue::new(
                semconv::SESSION_FILE_PATH,
                text(event, "file_path"),
            ));
            format!("file_opened {}", text(event, "file_path"))
        }
        "go_to_definition" => {
            attributes.push(KeyValue::new(semconv::SESSION_ACTION, "navigate"));
            let target = event.get("target").cloned().unwrap_or(Value::Null);
            if !text(&target, "file_path").is_empty() {
                attributes.push(KeyValue::new(
                    semconv::SESSION_FILE_PATH,
                    text(&target, "file_path"),
                ));
            }
            let symbol = event
                .get("source")
                .map(|s| text(s, "symbol"))
                .unwrap_or_default();
            format!("go_to_definition {symbol}").trim_end().to_owned()
        }
        "find_references" => {
            attributes.push(KeyValue::new(semconv::SESSION_ACTION, "navigate"));
            let source = event.get("source").cloned().unwrap_or(Value::Null);
            if !text(&source, "file_path").is_empty() {
                attributes.push(KeyValue::new(
                    semconv::SESSION_FILE_PATH,
                    text(&source, "file_path"),
                ));
            }
            format!("find_references {}", text(&source, "symbol"))
                .trim_end()
                .to_owned()
        }
        "edit" => edit_event(builder, event, &mut attributes),
        "terminal_command" => {
            let (name, failed) = terminal_event(builder, event, &mut attributes);
            status = failed;
            name
        }
        "thought" => thought_event(builder, event, &mut attributes),
        other => {
            attributes.push(KeyValue::new(semconv::SESSION_ACTION, "other"));
            builder.text_attr(
                &mut attributes,
                semconv::SESSION_INPUT,
                semconv::SESSION_INPUT_REF,
                None,
                &event.to_string(),
            );
            format!("event {other}")
        }
    };
    for key in ["latency_ms", "duration_ms"] {
        if let Some(ms) = event.get(key).and_then(Value::as_f64) {
            attributes.push(KeyValue::new(semconv::SESSION_DURATION_MS, ms));
        }
    }
    let mut span = builder.span(
        trace_id,
        derive_span_id(trace_id, &["event", &index.to_string()]),
        Some(root),
        name,
        start,
        end,
        resource,
        attributes,
    );
    span.status = status;
    builder.emit(span);
}

/// An `edit` event: the file, whether it was created, its hashes and its patch.
fn edit_event(builder: &mut Builder, event: &Value, attributes: &mut Vec<KeyValue>) -> String {
    attributes.push(KeyValue::new(semconv::SESSION_ACTION, "edit"));
    if text(event, "op") == "create" {
        attributes.push(KeyValue::new(semconv::SESSION_FILE_CREATED, true));
    }
    attributes.push(KeyValue::new(
        semconv::SESSION_FILE_PATH,
        text(event, "file_path"),
    ));
    for (key, field) in [
        (semconv::SESSION_FILE_HASH_BEFORE, "before_hash"),
        (semconv::SESSION_FILE_HASH_AFTER, "after_hash"),
    ] {
        if !text(event, field).is_empty() {
            attributes.push(KeyValue::new(key, text(event, field)));
        }
    }
    let patch = text(event, "patch_unified");
    if !patch.is_empty() {
        builder.text_attr(
            attributes,
            semconv::SESSION_PATCH,
            semconv::SESSION_INPUT_REF,
            None,
            patch,
        );
    }
    format!("edit {}", text(event, "file_path"))
}

/// A `terminal_command` event: the command line, where it ran, its output and exit code; the
/// span's status when it failed.
fn terminal_event(
    builder: &mut Builder,
    event: &Value,
    attributes: &mut Vec<KeyValue>,
) -> (String, Status) {
    let mut status = Status::default();
    let command = command_line(event);
    attributes.push(KeyValue::new(semconv::SESSION_ACTION, "command"));
    attributes.push(KeyValue::new(semconv::SESSION_COMMAND, command.as_str()));
    if !text(event, "cwd").is_empty() {
        attributes.push(KeyValue::new(semconv::SESSION_CWD, text(event, "cwd")));
    }
    let stdout = text(event, "stdout");
    let stderr = text(event, "stderr");
    let output = match (stdout.is_empty(), stderr.is_empty()) {
        (false, false) => format!("{stdout}\n{stderr}"),
        (false, true) => stdout.to_owned(),
        _ => stderr.to_owned(),
    };
    builder.text_attr(
        attributes,
        semconv::SESSION_OUTPUT,
        semconv::SESSION_OUTPUT_REF,
        Some(semconv::SESSION_OUTPUT_BYTES),
        &output,
    );
    if let Some(code) = event.get("exit_code").and_then(Value::as_i64) {
        attributes.push(KeyValue::new(semconv::SESSION_EXIT_CODE, code));
        if code != 0 {
            let source = if stderr.is_empty() { stdout } else { stderr };
            status = Status {
                code: StatusCode::Error,
                message: format!("exit code {code}: {}", error_message(source)),
            };
        }
    }
    (format!("terminal_command {}", head(&command, 120)), status)
}

/// The command line as it ran: `cmd` and its `args`, each quoted when a shell would read it
/// otherwise (spaces, quotes, expansions, operators, globs).
fn command_line(event: &Value) -> String {
    let mut command = text(event, "cmd").to_owned();
    for arg in event
        .get("args")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let arg = arg.as_str().unwrap_or_default();
        command.push(' ');
        if arg.is_empty()
            || arg
                .chars()
                .any(|c| c.is_whitespace() || "\"'$`\\()|&;<>*?[]{}!#~".contains(c))
        {
            command.push_str(&format!("'{}'", arg.replace('\'', "'\\''")));
        } else {
            command.push_str(arg);
        }
    }
    command
}

/// A `thought` event: the note and its tags.
fn thought_event(builder: &mut Builder, event: &Value, attributes: &mut Vec<KeyValue>) -> String {
    attributes.push(KeyValue::new(semconv::SESSION_ACTION, "note"));
    builder.text_attr(
        attributes,
        semconv::SESSION_NOTE,
        semconv::SESSION_INPUT_REF,
        None,
        text(event, "raw"),
    );
    let tags: Vec<AnyValue> = event
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(AnyValue::from))
        .collect();
    if !tags.is_empty() {
        attributes.push(KeyValue::new(
            semconv::SESSION_NOTE_TAGS,
            AnyValue::Array(tags),
        ));
    }
    "thought".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example() -> Value {
        json!({
            "trace_id": "123e4567-e89b-12d3-a456-426614174000",
            "created_at": "2025-06-14T11:00:00Z",
            "version": "trace-1.0.0",
            "developer": {"name": "Ada", "email": "ada@example.com", "experience_level": "senior", "ide": "vscode", "os": "linux"},
            "task": {"description": "Fix the total for empty carts", "repository": "https://github.com/acme/shop", "branch": "main", "commit": "abc123", "test_command": "go test ./...", "complexity": "low"},
            "environment": {"os": "linux", "editor": "vscode", "version": "1.0.0", "plugins": ["go"], "workspace_size": 42},
            "events": [
                {"t": "2025-06-14T11:00:01Z", "type": "file_opened", "session_id": "session-1", "file_path": "src/main.go", "language": "go"},
                {"t": "2025-06-14T11:00:05Z", "type": "terminal_command", "session_id": "session-1", "cmd": "go", "args": ["test", "./..."], "exit_code": 1, "duration_ms": 2500, "stdout": "FAIL: TestTotal\n", "stderr": ""},
                {"t": "2025-06-14T11:00:09Z", "type": "pair_programming", "partner": "bob"}
            ],
            "artifacts": {"final_patch": "diff --git a/x b/x", "test_results": {"passed": 5, "failed": 0}}
        })
    }

    #[test]
    fn a_valid_document_maps_to_a_session_and_keeps_unknown_events() {
        let redactor = Arc::new(Redactor::builtin());
        let document = from_value(example(), &redactor).unwrap();
        assert_eq!(
            document.trace_id.to_hex(),
            "123e4567e89b12d3a456426614174000"
        );
        assert_eq!(document.document["developer"]["email"], "[REDACTED:email]");
        let output = to_spans(&document, redactor);
        let names: Vec<&str> = output.spans.spans.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "file_opened src/main.go",
                "terminal_command go test ./...",
                "event pair_programming",
                "session developer"
            ]
        );
        let command = &output.spans.spans[1];
        assert_eq!(command.status.code, StatusCode::Error);
        assert_eq!(command.status.message, "exit code 1: FAIL: TestTotal");
        assert_eq!(command.duration_nanos(), 2_500_000_000);
        let facts = devtrace_model::session::SessionFacts::from_spans(&output.spans).unwrap();
        assert_eq!((facts.agent.as_str(), facts.errors), ("developer", 1));
        assert_eq!(facts.project, "https://github.com/acme/shop");
        assert_eq!(facts.title, "Fix the total for empty carts");
        assert_eq!(output.blobs.len(), 1, "the document itself");
        let stored: Value = serde_json::from_slice(&output.blobs[0].1).unwrap();
        assert_eq!(stored, document.document);
    }

    #[test]
    fn references_are_navigation_and_created_files_are_marked() {
        let redactor = Arc::new(Redactor::builtin());
        let mut doc = example();
        doc["events"] = json!([
            {"t": "2025-06-14T11:00:01Z", "type": "find_references", "source": {"file_path": "cart.py", "symbol": "total", "range": {"start": {"line": 3, "col": 5}, "end": {"line": 3, "col": 10}}}, "count": 4, "references": [{"file_path": "cart.py", "line": 1, "col": 5}], "latency_ms": 12.5},
            {"t": "2025-06-14T11:00:02Z", "type": "edit", "file_path": "new.py", "op": "create", "after_hash": "h1"}
        ]);
        let document = from_value(doc.clone(), &redactor).unwrap();
        let output = to_spans(&document, redactor);
        let references = &output.spans.spans[0];
        assert_eq!(references.name, "find_references total");
        assert_eq!(
            references.attr(semconv::SESSION_ACTION),
            Some(&AnyValue::from("navigate"))
        );
        assert_eq!(
            references.attr(semconv::SESSION_FILE_PATH),
            Some(&AnyValue::from("cart.py"))
        );
        assert_eq!(references.duration_nanos(), 12_500_000);
        assert_eq!(
            output.spans.spans[1].attr(semconv::SESSION_FILE_CREATED),
            Some(&AnyValue::Bool(true))
        );
        doc["events"][0]["references"] = json!([{"file_path": 3}]);
        doc["events"][0]["count"] = json!(-1);
        let error = validate(&doc).unwrap_err();
        let paths: Vec<&str> = error.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["events[0].count", "events[0].references[0].file_path"]
        );
    }

    #[test]
    fn errors_name_every_bad_field() {
        let mut doc = example();
        doc["version"] = json!("trace-0.9");
        doc["trace_id"] = json!("not-a-uuid");
        doc["developer"]["ide"] = json!("notepad");
        doc["events"][1]["exit_code"] = json!("one");
        doc["events"][0].as_object_mut().unwrap().remove("t");
        doc["environment"]["workspace_size"] = json!(-3);
        let error = validate(&doc).unwrap_err();
        let paths: Vec<&str> = error.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "version",
                "trace_id",
                "developer.ide",
                "environment.workspace_size",
                "events[0].t",
                "events[1].exit_code"
            ]
        );
        let text = error.to_string();
        assert!(
            text.contains("events[1].exit_code: expected an integer, found a string (\"one\")"),
            "{text}"
        );
        assert!(
            text.contains("developer.ide: \"notepad\" is not one of vscode, intellij, vim, emacs"),
            "{text}"
        );
        let not_json = parse(b"{\"version\": ", &Redactor::builtin()).unwrap_err();
        assert_eq!(not_json.errors[0].path, "$");
        assert!(!is_trace_document(&json!({"resourceSpans": []})));
    }

    #[test]
    fn appended_events_are_validated_and_extend_the_document() {
        let redactor = Redactor::builtin();
        let mut document = from_value(example(), &redactor).unwrap();
        let bad = append_events(
            &mut document,
            &json!({"events": [{"type": "edit"}]}),
            &redactor,
        )
        .unwrap_err();
        let paths: Vec<&str> = bad.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["events[0].t", "events[0].file_path"]);
        assert_eq!(
            document.document["events"].as_array().unwrap().len(),
            3,
            "nothing added"
        );
        let added = append_events(
            &mut document,
            &json!({"events": [{"t": "2025-06-14T11:01:00Z", "type": "thought", "raw": "mail me at x@example.org"}]}),
            &redactor,
        )
        .unwrap();
        assert_eq!(added, 1);
        assert_eq!(
            document.document["events"][3]["raw"],
            "mail me at [REDACTED:email]"
        );
    }
}
