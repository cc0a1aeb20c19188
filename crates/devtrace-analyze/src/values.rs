//! Values that travel: identifiers, keys and locations a span's attributes and events carry,
//! used as evidence that one piece of work used what another produced.
//!
//! An *identifier-like token* is a piece of an attribute value (split at anything that is not
//! a letter, digit, `_`, `-` or `.`) of at least 4 characters that contains a digit — an order
//! id `ord_9f3k2`, a row id `48213`, a UUID, a hash, a path or URL segment like `a7f3` — or a
//! string attribute value of at least 6 characters whose key names an id, key or location
//! (`*.id`, `*_id`, `*.key`, `*.path`, `*.url`, `*.location`, `*.token`). Attributes that
//! describe the call rather than its data are left out: targets (`server.*`, `net.*`,
//! `peer.*`, and every name the conventions table marks as addressing or as describing the
//! call — system, database, operation, method, status — in either generation), protocol fields
//! (methods, status codes, versions), timings and sizes, thread and process ids, code
//! locations, and devtrace's own bookkeeping.
//!
//! **Addressing is not data.** In a URL (any value with `scheme://authority`, in any attribute)
//! the scheme, host, IP literal, port and user are not tokens; only its path and query are.
//! An IPv4 literal is never a token wherever it appears. A request's URL (`url.full`,
//! `http.url`, `url.path`, `http.target`, `url.query`) is what the call *sent*: a value a call
//! only sent is its input, not its result — so two calls whose requests share a path prefix or
//! a parameter, and nothing else, do not depend on each other. [`subtree_results`] is what a
//! call can have passed on: its subtree's tokens outside request URLs, less what its own
//! request sent.
//!
//! A token found in an earlier sibling's results and again in a later sibling's subtree is
//! evidence that the later one used the earlier one's result — unless it is also in the context
//! both share (the parent's and every ancestor's attributes, and the resource's): then it is a
//! common input, not a result passed along.
//!
//! **What a trace cannot tell.** Instrumentation records no bodies: a value a later call sends
//! ([`request_tokens`]) that first appeared in an earlier sibling only as something it received
//! (its request) or its server side saw (a call that server made in turn) may have come back in
//! that sibling's answer, or not. Such a pair is neither shown dependent nor shown independent.
//! Addresses are still not values, and neither are the leading path segments both requests
//! share ([`shared_path_tokens`]: `/api/v2/users/u_40213/…` is where both went).

use crate::AnalyzedTrace;
use devtrace_model::conventions::Concept;
use devtrace_model::{AnyValue, KeyValue, Span, SpanKind};
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
        "rpc.grpc.",
        "db.user",
        "db.operation",
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
        // Durations in a unit (`devtrace.beam.waited_outside_ns`, `…timed_out_ms`).
        "_ns",
        "_ms",
    ];
    PREFIXES.iter().any(|p| k.starts_with(p))
        || WORDS.iter().any(|w| k.ends_with(w))
        || Concept::of_key(key).is_some_and(Concept::describes_the_call)
}

/// Whether the attribute is a request's URL (or part of it): what the call sent.
fn is_request_url_key(key: &str) -> bool {
    matches!(
        Concept::of_key(key),
        Some(Concept::HttpUrl | Concept::HttpTarget | Concept::UrlQuery)
    )
}

/// `text` with every URL's scheme and authority (`https://user@10.0.0.5:8080`) blanked out:
/// where a request went is not what it carried.
fn without_addresses(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let scheme_start = rest[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
        let after = &rest[at + 3..];
        let authority_end = after
            .find(|c: char| "/?#\"'<> \t\n".contains(c))
            .unwrap_or(after.len());
        out.push_str(&rest[..scheme_start]);
        out.push(' ');
        rest = &after[authority_end..];
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
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
            let text = without_addresses(text);
            let whole = text.trim();
            if is_identity_key(key) && !is_request_url_key(key) && whole.chars().count() >= 6 {
                out.insert(whole.to_owned());
            }
            for token in text.split(|c: char| !(c.is_alphanumeric() || "_-.".contains(c))) {
                let token = token.trim_matches(|c: char| c == '.' || c == '-');
                if token.chars().count() >= 4
                    && token.chars().any(|c| c.is_ascii_digit())
                    && token.parse::<std::net::Ipv4Addr>().is_err()
                {
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

/// Which of a span's attributes to read: all of them, only its request URL, or all but it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    All,
    Request,
    AllButRequest,
}

fn tokens_of(out: &mut HashSet<String>, trace: &AnalyzedTrace, index: usize, part: Part) {
    let span = trace.span(index);
    for kv in &span.attributes {
        let request = is_request_url_key(&kv.key);
        if match part {
            Part::All => true,
            Part::Request => request,
            Part::AllButRequest => !request,
        } {
            push_attribute_tokens(out, span, kv);
        }
    }
    if part != Part::Request {
        for event in &span.events {
            attributes_tokens(out, &event.attributes);
            push_tokens(out, "event", &AnyValue::String(event.name.clone()));
        }
    }
}

/// The tokens of one attribute of `span`; of a recorded call's arguments and answer, those of
/// the arguments it reads and of what its answer adds (not the results collected so far that a
/// comprehension's function is given and hands on: [`crate::call_values::arguments_read`],
/// [`crate::call_values::answer_added`]).
fn push_attribute_tokens(out: &mut HashSet<String>, span: &Span, kv: &KeyValue) {
    use crate::call_values::{answer_added, arguments_read};
    use crate::processes::{CALL_ARGUMENTS, CALL_RETURN};
    let text = |key| match span.attr(key) {
        Some(AnyValue::String(text)) => Some(text.as_str()),
        _ => None,
    };
    let (Some(given), Some(answer)) = (text(CALL_ARGUMENTS), text(CALL_RETURN)) else {
        return push_tokens(out, &kv.key, &kv.value);
    };
    let read = match kv.key.as_str() {
        CALL_ARGUMENTS => arguments_read(given, answer),
        CALL_RETURN => vec![answer_added(answer, given)],
        _ => return push_tokens(out, &kv.key, &kv.value),
    };
    for text in read {
        push_tokens(out, &kv.key, &AnyValue::String(text.to_owned()));
    }
}

/// The tokens of one span: its attributes and its events' attributes (and event names, which
/// often carry a message).
pub fn span_tokens(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    tokens_of(&mut out, trace, index, Part::All);
    out
}

/// The tokens of a span and everything under it.
pub fn subtree_tokens(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = span_tokens(trace, index);
    for &d in trace.descendants(index) {
        out.extend(span_tokens(trace, d));
    }
    out
}

/// What the call at `index` can have passed on: the tokens of its subtree outside request
/// URLs, less those its own request sent (its URL, and the URL its server span received).
pub fn subtree_results(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    tokens_of(&mut out, trace, index, Part::AllButRequest);
    for &d in trace.descendants(index) {
        tokens_of(&mut out, trace, d, Part::AllButRequest);
    }
    let mut sent = HashSet::new();
    tokens_of(&mut sent, trace, index, Part::Request);
    for &child in &trace.tree.children[index] {
        if trace.span(child).effective_kind() == SpanKind::Server {
            tokens_of(&mut sent, trace, child, Part::Request);
        }
    }
    out.retain(|t| !sent.contains(t));
    out
}

/// What the call at `index` sends in its request: the tokens of its request URL and of the URL
/// its server span received (both sides of one request).
pub fn request_tokens(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    tokens_of(&mut out, trace, index, Part::Request);
    for &child in &trace.tree.children[index] {
        if trace.span(child).effective_kind() == SpanKind::Server {
            tokens_of(&mut out, trace, child, Part::Request);
        }
    }
    out
}

/// The path segments of the request the call at `index` made: its URL's path, else its
/// `url.path` or `http.target`, else its server span's.
fn request_path(trace: &AnalyzedTrace, index: usize) -> Vec<String> {
    let path_of = |i: usize| {
        let span = trace.span(i);
        let text = span
            .concept_text(Concept::HttpUrl)
            .or_else(|| span.concept_text(Concept::HttpTarget))?;
        Some(devtrace_model::request::split_url(&text).path.to_owned())
    };
    let path = path_of(index).or_else(|| {
        trace.tree.children[index]
            .iter()
            .filter(|c| trace.span(**c).effective_kind() == SpanKind::Server)
            .find_map(|c| path_of(*c))
    });
    path.unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The tokens of the leading path segments two calls' requests share (`/api/v2/users/u_40213`
/// in `…/u_40213/profile` and `…/u_40213/orders`): where both went, not what one passed on.
pub fn shared_path_tokens(trace: &AnalyzedTrace, a: usize, b: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    for (x, y) in request_path(trace, a).iter().zip(&request_path(trace, b)) {
        if x != y {
            break;
        }
        push_tokens(&mut out, "path", &AnyValue::String(x.clone()));
    }
    out
}

/// How the request of the call at `index` names `token`: `sku=sku-77` (a query or route
/// parameter of it or of its server span, [`AnalyzedTrace::attributes`]), else the token alone.
pub fn sent_as(trace: &AnalyzedTrace, index: usize, token: &str) -> String {
    let sides = std::iter::once(index).chain(
        trace.tree.children[index]
            .iter()
            .copied()
            .filter(|c| trace.span(*c).effective_kind() == SpanKind::Server),
    );
    for side in sides {
        for kv in trace.attributes(side) {
            let name = kv
                .key
                .strip_prefix("url.query.")
                .or_else(|| kv.key.strip_prefix("url.path."));
            if let Some(name) = name
                && kv.value.to_display_string().contains(token)
            {
                return format!("{name}={token}");
            }
        }
    }
    token.to_owned()
}

/// What span `index` alone can have passed on (as [`subtree_results`], without its subtree).
pub fn span_results(trace: &AnalyzedTrace, index: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    tokens_of(&mut out, trace, index, Part::AllButRequest);
    let mut sent = HashSet::new();
    tokens_of(&mut sent, trace, index, Part::Request);
    out.retain(|t| !sent.contains(t));
    out
}

/// What a recorded call returned or left (its return value, a GenServer's state after it):
/// made of what its children answered, never their input.
const OUTPUT_KEYS: [&str; 2] = [crate::processes::CALL_RETURN, crate::processes::STATE_AFTER];

/// The tokens every child of `parent` could have had as input: the parent's and its
/// ancestors' attributes (but what they returned: [`OUTPUT_KEYS`]), and the resource's.
pub fn context_tokens(trace: &AnalyzedTrace, parent: usize) -> HashSet<String> {
    let mut out = HashSet::new();
    let mut node = Some(parent);
    let mut steps = 0;
    while let Some(n) = node {
        let span = trace.span(n);
        for kv in span.attributes.iter() {
            if !OUTPUT_KEYS.contains(&kv.key.as_str()) {
                push_tokens(&mut out, &kv.key, &kv.value);
            }
        }
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
    fn addresses_are_not_values_wherever_they_appear() {
        let mut out = HashSet::new();
        push_tokens(
            &mut out,
            "log.message",
            &AnyValue::String(
                "GET https://user@10.0.0.5:8080/v1/orders/ord_4417?x=9911 from 10.0.0.7 failed"
                    .into(),
            ),
        );
        let mut tokens: Vec<&str> = out.iter().map(String::as_str).collect();
        tokens.sort();
        assert_eq!(tokens, ["9911", "ord_4417"]);
        // A request URL is never a whole-value token (its address and path prefix are not data).
        let mut out = HashSet::new();
        push_tokens(
            &mut out,
            "url.full",
            &AnyValue::String("http://10.0.0.5:8080/v1/items".into()),
        );
        assert!(out.is_empty(), "{out:?}");
        // Old and new names of the same addressing are both left out.
        for key in [
            "http.host",
            "server.address",
            "url.scheme",
            "http.scheme",
            "client.address",
            "db.connection_string",
        ] {
            let mut out = HashSet::new();
            push_tokens(
                &mut out,
                key,
                &AnyValue::String("10.0.0.5:8080;db=orders_2024".into()),
            );
            assert!(out.is_empty(), "{key}: {out:?}");
        }
    }

    #[test]
    fn what_a_call_sent_is_not_what_it_returned() {
        let mut call = span(2, Some(1), "GET", 0, 10);
        call.attributes.push(KeyValue::new(
            "http.url",
            "http://api/v1/users/u_4021/orders",
        ));
        call.attributes.push(KeyValue::new("order.id", "ord_77120"));
        let t = AnalyzedTrace::new(
            TraceId([1; 16]),
            batch(vec![span(1, None, "p", 0, 20), call]),
        );
        assert!(subtree_tokens(&t, 1).contains("u_4021"));
        let results = subtree_results(&t, 1);
        assert!(!results.contains("u_4021"));
        assert!(results.contains("ord_77120"));
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
