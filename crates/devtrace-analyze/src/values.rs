//! Values that travel: identifiers, keys and locations a span's attributes and events carry,
//! used as evidence that one piece of work used what another produced.
//!
//! An *identifier-like token* is a piece of an attribute value (split at anything that is not
//! a letter, digit, `_`, `-` or `.`) of at least 4 characters that contains a digit — an order
//! id `ord_9f3k2`, a row id `48213`, a UUID, a hash, a path or URL segment like `a7f3` — or a
//! string attribute value of at least 6 characters whose key names an id, key or location
//! (`*.id`, `*_id`, `*.key`, `*.path`, `*.url`, `*.location`, `*.token`). Attributes that
//! describe the call rather than its data are left out: targets (`server.*`, `net.*`,
//! `peer.*`, `db.system`, `db.namespace`), protocol fields (methods, status codes, versions),
//! timings and sizes, thread and process ids, code locations, and devtrace's own bookkeeping.
//!
//! A token found in an earlier sibling's subtree and again in a later sibling's is evidence
//! that the later one used the earlier one's result — unless it is also in the context both
//! share (the parent's and every ancestor's attributes, and the resource's): then it is a
//! common input, not a result passed along.

use crate::AnalyzedTrace;
use devtrace_model::{AnyValue, KeyValue};
use std::collections::HashSet;

/// Longest attribute value scanned for tokens (longer values: only their head).
const MAX_SCANNED_CHARS: usize = 4_096;

/// Whether the attribute describes the call (its target, protocol, timing, bookkeeping)
/// rather than the data it carries.
fn is_descriptive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    const PREFIXES: &[&str] = &[
        "server.",
        "client.",
        "net.",
        "network.",
        "peer.",
        "host.",
        "process.",
        "thread.",
        "code.",
        "telemetry.",
        "otel.",
        "service.",
        "os.",
        "container.",
        "k8s.",
        "devtrace.run.",
        "devtrace.test.",
        "devtrace.lock.",
        "devtrace.llm.",
        "user_agent.",
        "http.user_agent",
        "exception.",
        "error.",
        "rpc.system",
        "rpc.grpc.",
        "messaging.system",
        "db.system",
        "db.namespace",
        "db.name",
        "db.instance",
        "db.type",
        "db.user",
        "db.operation",
        "db.collection",
        "db.sql.table",
        "db.client.",
        "gen_ai.system",
        "gen_ai.provider",
        "gen_ai.request.",
        "gen_ai.response.model",
        "gen_ai.usage.",
        "gen_ai.operation",
        "llm.request.",
        "llm.usage.",
        "span.kind",
        "component",
    ];
    const WORDS: &[&str] = &[
        "method",
        "status",
        "version",
        "duration",
        "elapsed",
        "latency",
        "size",
        "bytes",
        "length",
        "count",
        "timeout",
        "status_code",
        "retry",
        "attempt",
        "resend",
        "port",
        "scheme",
        "flavor",
        "protocol",
        "timestamp",
        "time",
        "date",
    ];
    PREFIXES.iter().any(|p| k.starts_with(p)) || WORDS.iter().any(|w| k.ends_with(w))
}

/// Whether the key names an identifier, key or location.
fn is_identity_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        ".id",
        "_id",
        ".key",
        "_key",
        ".path",
        ".url",
        ".uri",
        ".location",
        ".token",
        ".ref",
    ]
    .iter()
    .any(|s| k.ends_with(s))
        || k == "id"
        || k == "key"
}

fn push_tokens(out: &mut HashSet<String>, key: &str, value: &AnyValue) {
    if is_descriptive_key(key) {
        return;
    }
    match value {
        AnyValue::String(text) => {
            let text: &str = match text.char_indices().nth(MAX_SCANNED_CHARS) {
                Some((at, _)) => &text[..at],
                None => text,
            };
            if is_identity_key(key) && text.trim().chars().count() >= 6 {
                out.insert(text.trim().to_owned());
            }
            for token in text.split(|c: char| !(c.is_alphanumeric() || "_-.".contains(c))) {
                let token = token.trim_matches(|c: char| c == '.' || c == '-');
                if token.chars().count() >= 4 && token.chars().any(|c| c.is_ascii_digit()) {
                    out.insert(token.to_owned());
                }
            }
        }
        AnyValue::Int(n) if n.unsigned_abs() >= 1000 || is_identity_key(key) => {
            out.insert(n.to_string());
        }
        AnyValue::Array(items) => {
            for item in items {
                push_tokens(out, key, item);
            }
        }
        AnyValue::KvList(list) => {
            for kv in list {
                push_tokens(out, &format!("{key}.{}", kv.key), &kv.value);
            }
        }
        _ => {}
    }
}

fn attributes_tokens(out: &mut HashSet<String>, attributes: &[KeyValue]) {
    for kv in attributes {
        push_tokens(out, &kv.key, &kv.value);
    }
}

/// The tokens of one span: its attributes and its events' attributes (and event names, which
/// often carry a message).
pub fn span_tokens(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    let span = trace.span(index);
    attributes_tokens(&mut out, &span.attributes);
    for event in &span.events {
        attributes_tokens(&mut out, &event.attributes);
        push_tokens(&mut out, "event", &AnyValue::String(event.name.clone()));
    }
    out
}

/// The tokens of a span and everything under it.
pub fn subtree_tokens(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = span_tokens(trace, index);
    for d in trace.descendants(index) {
        out.extend(span_tokens(trace, d));
    }
    out
}

/// The tokens every child of `parent` could have had as input: the parent's and its
/// ancestors' attributes, and the resource's.
pub fn context_tokens(trace: &AnalyzedTrace, parent: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut node = Some(parent);
    let mut steps = 0;
    while let Some(n) = node {
        let span = trace.span(n);
        attributes_tokens(&mut out, &span.attributes);
        attributes_tokens(&mut out, &trace.spans.resource_of(span).attributes);
        node = parent_of(trace, n);
        steps += 1;
        if steps > trace.spans.spans.len() {
            break;
        }
    }
    out
}

fn parent_of(trace: &AnalyzedTrace, index: usize) -> Option<usize> {
    let parent_id = trace.span(index).parent_span_id?;
    trace
        .spans
        .spans
        .iter()
        .position(|s| s.span_id == parent_id)
        .filter(|p| *p != index)
}

/// Tokens in both `earlier` and `later` that are not in `context`, sorted (at most `max`).
pub fn passed(
    earlier: &HashSet<String>,
    later: &HashSet<String>,
    context: &HashSet<String>,
    max: usize,
) -> Vec<String> {
    let mut shared: Vec<String> = earlier
        .intersection(later)
        .filter(|t| !context.contains(*t))
        .cloned()
        .collect();
    shared.sort();
    shared.truncate(max);
    shared
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::TraceId;

    #[test]
    fn an_id_returned_by_one_call_and_sent_by_the_next_is_passed() {
        let mut parent = span(1, None, "checkout", 0, 100);
        parent
            .attributes
            .push(KeyValue::new("cart.id", "cart-77812"));
        let mut reserve = span(2, Some(1), "reserve", 0, 40);
        reserve
            .attributes
            .push(KeyValue::new("reservation.id", "rsv_4417"));
        reserve
            .attributes
            .push(KeyValue::new("cart.id", "cart-77812"));
        let mut pay = span(3, Some(1), "pay", 40, 90);
        pay.attributes.push(KeyValue::new(
            "http.url",
            "https://pay.example/v1/charge?reservation=rsv_4417&cart=cart-77812",
        ));
        pay.attributes.push(KeyValue::new("http.status_code", 2001));
        let t = AnalyzedTrace::new(TraceId([1; 16]), batch(vec![parent, reserve, pay]));
        let shared = passed(
            &subtree_tokens(&t, 1),
            &subtree_tokens(&t, 2),
            &context_tokens(&t, 0),
            5,
        );
        // The cart id is the parent's input to both; only the reservation id was passed on.
        assert_eq!(shared, ["rsv_4417"]);
    }

    #[test]
    fn descriptive_attributes_and_short_numbers_are_not_values() {
        let mut a = span(2, Some(1), "a", 0, 10);
        a.attributes
            .push(KeyValue::new("server.address", "db-01.internal"));
        a.attributes
            .push(KeyValue::new("http.response.status_code", 2000));
        a.attributes.push(KeyValue::new("page", 2));
        let mut b = span(3, Some(1), "b", 10, 20);
        b.attributes = a.attributes.clone();
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![span(1, None, "p", 0, 20), a, b]),
        );
        assert!(
            passed(
                &subtree_tokens(&t, 1),
                &subtree_tokens(&t, 2),
                &context_tokens(&t, 0),
                5
            )
            .is_empty()
        );
    }
}
