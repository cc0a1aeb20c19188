//! What "recorded text is data" means for one output, asserted.

use super::fixture::PAYLOAD;
use devtrace_model::recorded::must_escape;
use serde_json::Value;

/// Whether an output shows recorded text (escaped or quoted): the claim every hostile string
/// makes, or its first escape (all a cell cut short may show).
pub fn shows_recorded(output: &str) -> bool {
    output.contains("SYSTEM:") || output.contains(r"\u001b[2J")
}

/// Whether `text` at `at` starts one of devtrace's own colours (SGR: `ESC [ digits;… m`).
fn sgr_at(text: &str, at: usize) -> Option<usize> {
    let rest = text[at..].strip_prefix("\u{1b}[")?;
    let body = rest.find('m')?;
    rest[..body]
        .chars()
        .all(|c| c.is_ascii_digit() || c == ';')
        .then_some(2 + body + 1)
}

/// Text for a terminal or an assistant: nothing dangerous raw (line feeds and devtrace's own
/// backticks aside; with `colour`, devtrace's own SGR sequences aside), recorded backticks
/// escaped, and no line that starts with recorded text.
pub fn text(what: &str, text: &str, colour: bool) {
    let mut at = 0;
    while at < text.len() {
        let c = text[at..].chars().next().unwrap();
        if colour
            && c == '\u{1b}'
            && let Some(len) = sgr_at(text, at)
        {
            at += len;
            continue;
        }
        assert!(
            !must_escape(c) || c == '\n' || c == '`',
            "{what}: raw {c:?} at byte {at}, in …{}…\n--- whole output ---\n{text}",
            &text[at.saturating_sub(60)..(at + 60).min(text.len())].escape_debug()
        );
        at += c.len_utf8();
    }
    assert!(
        !text.contains("`rm -rf"),
        "{what}: a recorded backtick came out raw:\n{text}"
    );
    for line in text.lines() {
        assert!(
            !line.trim_start().starts_with("SYSTEM"),
            "{what}: recorded text starts a line of its own: {line:?}\n--- whole output ---\n{text}"
        );
    }
}

/// A JSON document: it parses, nothing dangerous is raw in its bytes (not even a backtick:
/// JSON writes them all as escapes; only the pretty layout's line feeds), and what it holds is
/// returned for the caller's checks.
pub fn json(what: &str, bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).unwrap_or_else(|e| panic!("{what}: not UTF-8 ({e})"));
    for (at, c) in text.char_indices() {
        assert!(
            !must_escape(c) || c == '\n',
            "{what}: raw {c:?} at byte {at} of its JSON, in …{}…",
            &text[at.saturating_sub(60)..(at + 60).min(text.len())].escape_debug()
        );
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{text}"))
}

/// Whether some string in `value` holds the whole payload exactly: the JSON faces are lossless.
pub fn holds_payload(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains(PAYLOAD),
        Value::Array(items) => items.iter().any(holds_payload),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(PAYLOAD) || holds_payload(v)),
        _ => false,
    }
}

/// The message of a caught assertion failure.
fn panic_message(panic: Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs one check, keeping its failure (with the others) instead of stopping at it.
pub fn keep_failure(failures: &mut Vec<String>, check: impl FnOnce() + std::panic::UnwindSafe) {
    if let Err(panic) = std::panic::catch_unwind(check) {
        failures.push(panic_message(panic));
    }
}

/// Fails with every kept failure, or passes when there were none.
pub fn no_failures(failures: &[String], of: usize, what: &str) {
    assert!(
        failures.is_empty(),
        "{} of {of} {what} failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
