//! Kinds of work, from OpenTelemetry semantic conventions (old and new spellings).

use crate::AnalyzedTrace;
use devtrace_model::SpanKind;
use serde::Serialize;

/// What a span spends its own time on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    Llm,
    Database,
    Http,
    FileIo,
    LockWait,
    Other,
}

impl WorkKind {
    pub const ALL: [WorkKind; 6] = [
        Self::Llm,
        Self::Database,
        Self::Http,
        Self::FileIo,
        Self::LockWait,
        Self::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Database => "database",
            Self::Http => "http",
            Self::FileIo => "file_io",
            Self::LockWait => "lock_wait",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Llm => "LLM",
            Self::Database => "database",
            Self::Http => "HTTP",
            Self::FileIo => "file I/O",
            Self::LockWait => "lock wait",
            Self::Other => "other",
        }
    }
}

const LLM_KEYS: &[&str] = &[
    "gen_ai.system",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.operation.name",
    "llm.request.model",
    "llm.model_name",
];
const DATABASE_KEYS: &[&str] = &[
    "db.system",
    "db.system.name",
    "db.statement",
    "db.query.text",
    "db.operation.name",
];
const HTTP_KEYS: &[&str] = &["http.request.method", "http.method", "url.full", "http.url"];
const FILE_KEYS: &[&str] = &["file.path", "file.name", "devtrace.io.path"];

/// Classifies a span by its attributes; HTTP counts as HTTP work only for outgoing calls
/// (a server span's own time is the handler's work).
pub fn classify(trace: &AnalyzedTrace, index: usize) -> WorkKind {
    let span = trace.span(index);
    let has = |keys: &[&str]| keys.iter().any(|k| span.attr(k).is_some());
    let name = span.name.as_str();
    if span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("devtrace.lock."))
        || name.starts_with("lock.wait")
    {
        WorkKind::LockWait
    } else if has(LLM_KEYS) {
        WorkKind::Llm
    } else if has(DATABASE_KEYS) {
        WorkKind::Database
    } else if has(HTTP_KEYS) && span.kind != SpanKind::Server {
        WorkKind::Http
    } else if has(FILE_KEYS) || name.starts_with("file.") || name.starts_with("fs.") {
        WorkKind::FileIo
    } else {
        WorkKind::Other
    }
}

/// Input and output token counts of an LLM span, reading the current `gen_ai.usage.*` names
/// and the older `prompt`/`completion` spellings.
pub fn tokens(trace: &AnalyzedTrace, index: usize) -> Option<(u64, u64)> {
    let read = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| trace.span(index).attr(k).and_then(|v| v.as_i64()))
            .map(|n| n.max(0) as u64)
    };
    let input = read(&[
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.prompt_tokens",
        "llm.usage.prompt_tokens",
    ]);
    let output = read(&[
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.completion_tokens",
        "llm.usage.completion_tokens",
    ]);
    if input.is_none() && output.is_none() {
        None
    } else {
        Some((input.unwrap_or(0), output.unwrap_or(0)))
    }
}
