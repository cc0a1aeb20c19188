//! What a span does, as the detectors need to know it: the kind of work, whether it leaves the
//! process, whether it reads or writes, whom it talks to, and its template (the call with its
//! literals and ids folded). Read through the conventions table
//! ([`devtrace_model::conventions`]), so old and new instrumentation are read alike.
//!
//! **Direction**, by documented rules (docs/analysis.md): SQL by its verb (`SELECT`, `SHOW`,
//! `EXPLAIN`, a `WITH` without a writing verb → read; `INSERT`, `UPDATE`, `DELETE`, `MERGE`,
//! DDL, `SELECT … FOR UPDATE`, transaction control → write); other databases by the operation
//! name (`get`, `find`, `mget`, `scan`… → read; `set`, `insert`, `del`, `incr`… → write); HTTP by
//! method (`GET`, `HEAD`, `OPTIONS` → read; any other → write); RPC by the method's leading
//! verb (`Get…`, `List…`, `Search…` → read; `Create…`, `Charge…`, `Send…` → write; otherwise,
//! for a call to a BEAM process, what its server's callback did to its state,
//! [`crate::served`]; else unknown); messaging by operation (`receive`/`process` → read; `publish`/`send` → write); an
//! LLM call reads (it changes nothing outside, but see the dependency rules of
//! sequential work); anything else is unknown.

use crate::AnalyzedTrace;
use crate::classify::{WorkKind, classify};
use crate::fingerprint::{normalize_sql, normalize_url};
use devtrace_model::SpanKind;
use devtrace_model::conventions::Concept;

/// Whether a call changes anything outside the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Read,
    Write,
    Unknown,
}

/// What a call does, normalised so that calls differing only in literals or ids are equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Template {
    /// A SQL statement (or other database query text) with its literals folded.
    Sql(String),
    /// An HTTP call: the method (when known) and the URL template.
    Http(String),
    /// An RPC: service and method.
    Rpc(String),
    /// A message: operation and destination.
    Messaging(String),
    /// Nothing more specific: the span name is all there is.
    Name,
}

impl Template {
    /// The template as text for fingerprints ("" for [`Template::Name`]).
    pub fn key(&self) -> &str {
        match self {
            Self::Sql(text) | Self::Http(text) | Self::Rpc(text) | Self::Messaging(text) => text,
            Self::Name => "",
        }
    }

    /// How to name the call in a title, quoted as recorded text: the statement, the method and
    /// URL without its scheme, or the span name; long statements are shortened.
    pub fn display(&self, name: &str) -> String {
        use devtrace_model::recorded::quote_short;
        match self {
            Self::Sql(sql) => quote_short(sql, 100),
            Self::Http(call) => quote_short(&strip_scheme(call), 100),
            Self::Rpc(text) | Self::Messaging(text) => quote_short(text, 100),
            Self::Name => quote_short(name, 100),
        }
    }
}

/// "POST https://host/p" → "POST host/p"; "https://host/p" → "host/p".
fn strip_scheme(call: &str) -> String {
    match call.split_once("://") {
        Some((before, rest)) => match before.rsplit_once(' ') {
            Some((method, _scheme)) => format!("{method} {rest}"),
            None => rest.to_owned(),
        },
        None => call.to_owned(),
    }
}

/// One span seen as a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub kind: WorkKind,
    /// The work leaves the process: a client or producer span, or one carrying database, HTTP
    /// client, RPC, messaging or LLM attributes (server and consumer spans never do).
    pub outbound: bool,
    pub direction: Direction,
    /// Whom it talks to: `peer.service`, else the server address (and port), else the database
    /// namespace, the RPC service, the destination or the model.
    pub target: Option<String>,
    pub template: Template,
}

impl Call {
    /// Target and template together: two calls with the same identity do the same thing to
    /// the same place (differing at most in literals and ids).
    pub fn identity(&self, name: &str) -> String {
        format!(
            "{}|{}|{}",
            self.target.as_deref().unwrap_or(""),
            self.template.key(),
            if matches!(self.template, Template::Name) {
                name
            } else {
                ""
            }
        )
    }
}

/// Describes span `index` of `trace` as a call.
pub fn describe(trace: &AnalyzedTrace, index: usize) -> Call {
    let span = trace.span(index);
    let kind = classify(trace, index);
    let span_kind = span.effective_kind();
    let remote_kind = matches!(
        kind,
        WorkKind::Llm | WorkKind::Database | WorkKind::Http | WorkKind::Rpc | WorkKind::Messaging
    );
    // Waiting for a pooled connection is a wait in this process, not a call to the database
    // (waits.rs reads it as one): never grouped as N+1, sequential work or a pool of calls.
    let outbound = !crate::pools::is_pool_acquisition(trace, index)
        && match span_kind {
            SpanKind::Client | SpanKind::Producer => true,
            SpanKind::Server | SpanKind::Consumer => false,
            SpanKind::Internal | SpanKind::Unspecified => remote_kind,
        };
    let template = call_template(trace, index);
    let direction = direction(trace, index, kind, &template);
    Call {
        kind,
        outbound,
        direction,
        target: target(trace, index, kind),
        template,
    }
}

/// Per span of `trace` (by index): the span is an inner layer of a call an enclosing span
/// already records, so the analysis counts the call once, as the outer span (which carries the
/// library's view: the ORM's operation, the model, the client's name).
///
/// **Rule** (docs/analysis.md, "One call, two layers"). Two instrumentation libraries may each
/// record the same call: SQLAlchemy's and psycopg2's spans of one statement, an HTTP client
/// library's span around undici's or httpx's, openai's `chat MODEL` around httpx's `POST`. Span
/// B is an inner layer of span A when both are outbound calls of one service, made by
/// different instrumentation scopes, B lies within A's time (to the clocks' resolution,
/// `clock`), and either
/// - A and B are siblings and the same call (same kind, target and template; a bare span name
///   is not enough): of the siblings of that call, the nearest one started before B; or
/// - B is A's only outbound child: A's library made its call through B (an outer span with
///   several outbound children made several calls, retries or a fan-out, and keeps them all).
pub fn inner_layers(trace: &AnalyzedTrace) -> Vec<bool> {
    let n = trace.spans.spans.len();
    let calls: Vec<Option<Call>> = (0..n)
        .map(|i| Some(describe(trace, i)).filter(|c| c.outbound))
        .collect();
    let mut inner = vec![false; n];
    let layered = |outer: usize, inner: usize| {
        let (a, b) = (trace.span(outer), trace.span(inner));
        let tolerance = trace.overlap_tolerance(&[outer, inner]);
        trace.spans.scope_of(a).name != trace.spans.scope_of(b).name
            && trace.service(outer) == trace.service(inner)
            && a.start_unix_nano <= b.start_unix_nano
            && b.end_unix_nano <= a.end_unix_nano.saturating_add(tolerance)
    };
    for parent in 0..n {
        let children = &trace.tree.children[parent];
        // Siblings that are the same call, in start order (children are in start order).
        let mut last_of: std::collections::HashMap<(WorkKind, String), usize> =
            std::collections::HashMap::new();
        for &b in children {
            let Some(call) = &calls[b] else { continue };
            if matches!(call.template, Template::Name) {
                continue;
            }
            let key = (call.kind, call.identity(&trace.span(b).name));
            if let Some(&a) = last_of.get(&key)
                && layered(a, b)
            {
                inner[b] = true;
                continue;
            }
            last_of.insert(key, b);
        }
        // The only outbound child of an outbound span.
        if calls[parent].is_some() {
            let mut outbound = children.iter().filter(|c| calls[**c].is_some());
            if let (Some(&b), None) = (outbound.next(), outbound.next())
                && layered(parent, b)
            {
                inner[b] = true;
            }
        }
    }
    inner
}

/// How deep wrappers are looked through (a helper calling a helper calling the client).
const MAX_WRAPPER_DEPTH: usize = 3;
/// A wrapper's own time (its duration less its one call's) is at most this share of it.
const WRAPPER_OWN_SHARE: f64 = 0.1;

/// The spans `siblings` (children of one parent) stand for: each itself when it is a call,
/// else the call a thin wrapper makes — a span that is not a call, whose only child (with a
/// duration) is the call or wraps it, and whose own time is at most [`WRAPPER_OWN_SHARE`] of
/// it (a helper around a request, the anonymous function `Enum.map`/`for` calls, a lambda
/// passed to `map`). Else the sibling itself.
///
/// Whether a function is a thin wrapper is decided over its namesakes among `siblings`, not
/// one span at a time: a wall clock also counts the time the process was descheduled, so one
/// of twenty-five calls of the same lambda can show more own time than the other twenty-four
/// for reasons the code does not have (its thread preempted between the call's return and
/// its own). A wrapper over the share still stands for its call when most of its namesakes
/// are thin.
pub fn wrapped_calls(trace: &AnalyzedTrace, siblings: &[usize], inner: &[bool]) -> Vec<usize> {
    let chains: Vec<Option<(usize, f64)>> = siblings
        .iter()
        .map(|&s| wrapper_chain(trace, s, inner))
        .collect();
    // Per name: (thin wrappers, spans that wrap a call at all).
    let mut thin: std::collections::HashMap<&str, (usize, usize)> = Default::default();
    for (&s, chain) in siblings.iter().zip(&chains) {
        if let Some((_, share)) = chain {
            let counts = thin.entry(trace.span(s).name.as_str()).or_default();
            counts.0 += usize::from(*share <= WRAPPER_OWN_SHARE);
            counts.1 += 1;
        }
    }
    siblings
        .iter()
        .zip(chains)
        .map(|(&s, chain)| match chain {
            Some((call, share)) => {
                let (thin, all) = thin[trace.span(s).name.as_str()];
                if share <= WRAPPER_OWN_SHARE || 2 * thin > all {
                    call
                } else {
                    s
                }
            }
            None => s,
        })
        .collect()
}

/// The outbound call span `index` is or wraps — through at most [`MAX_WRAPPER_DEPTH`] spans
/// that are not calls and have one child with a duration each — and the largest share of its
/// own time any of those wrappers had (0 for a call itself). None when it wraps no call.
fn wrapper_chain(trace: &AnalyzedTrace, index: usize, inner: &[bool]) -> Option<(usize, f64)> {
    let mut at = index;
    let mut largest_share = 0.0f64;
    for _ in 0..=MAX_WRAPPER_DEPTH {
        if describe(trace, at).outbound {
            return Some((at, largest_share));
        }
        let duration = trace.span(at).duration_nanos();
        let mut with_time = trace.tree.children[at]
            .iter()
            .copied()
            .filter(|&c| trace.span(c).duration_nanos() > 0 && !inner[c]);
        let (Some(only), None) = (with_time.next(), with_time.next()) else {
            return None;
        };
        let own = duration.saturating_sub(trace.span(only).duration_nanos());
        largest_share = largest_share.max(own as f64 / duration.max(1) as f64);
        at = only;
    }
    None
}

/// The function a BEAM call out of the recording stands for
/// ([`crate::classify::CALL_OUT_FUNCTION`]).
fn call_out_function(trace: &AnalyzedTrace, index: usize) -> Option<String> {
    let span = trace.span(index);
    span.attr(crate::classify::CALL_OUT_FUNCTION)
        .filter(|_| span.attr(crate::classify::WAITED_OUTSIDE_NS).is_some())
        .map(devtrace_model::AnyValue::to_display_string)
}

/// The template of span `index`: its statement, else its HTTP method and URL, else its RPC
/// service and method, else its messaging operation and destination, else its name.
pub fn call_template(trace: &AnalyzedTrace, index: usize) -> Template {
    let span = trace.span(index);
    if let Some(sql) = span.concept_text(Concept::DbStatement) {
        return Template::Sql(normalize_sql(&sql));
    }
    let url = span
        .concept_text(Concept::HttpUrl)
        .or_else(|| span.concept_text(Concept::HttpRoute))
        .or_else(|| span.concept_text(Concept::HttpTarget));
    if let Some(url) = url {
        let url = normalize_url(&url);
        return Template::Http(match span.concept_text(Concept::HttpMethod) {
            Some(method) => format!("{} {url}", method.to_uppercase()),
            None => url,
        });
    }
    if let Some(function) = call_out_function(trace, index) {
        return Template::Rpc(function);
    }
    if let Some(method) = span.concept_text(Concept::RpcMethod) {
        return Template::Rpc(match span.concept_text(Concept::RpcService) {
            Some(service) => format!("{service}/{method}"),
            None => method,
        });
    }
    if let Some(destination) = span.concept_text(Concept::MessagingDestination) {
        return Template::Messaging(match span.concept_text(Concept::MessagingOperation) {
            Some(operation) => format!("{operation} {}", normalize_url(&destination)),
            None => normalize_url(&destination),
        });
    }
    Template::Name
}

fn target(trace: &AnalyzedTrace, index: usize, kind: WorkKind) -> Option<String> {
    let span = trace.span(index);
    if let Some(peer) = span.concept_text(Concept::PeerService) {
        return Some(peer);
    }
    if kind == WorkKind::Llm {
        return crate::classify::MODEL_KEYS
            .iter()
            .find_map(|k| span.attr(k))
            .map(|v| v.to_display_string());
    }
    if let Some(address) = span.concept_text(Concept::ServerAddress) {
        return Some(match span.concept_text(Concept::ServerPort) {
            Some(port) => format!("{address}:{port}"),
            None => address,
        });
    }
    if let Some(url) = span.concept_text(Concept::HttpUrl)
        && let Some(host) = url_host(&url)
    {
        return Some(host.to_owned());
    }
    match kind {
        WorkKind::Database => span
            .concept_text(Concept::DbNamespace)
            .or_else(|| span.concept_text(Concept::DbSystem)),
        WorkKind::Rpc => span.concept_text(Concept::RpcService),
        WorkKind::Messaging => span.concept_text(Concept::MessagingDestination),
        _ => None,
    }
}

/// "https://user@host:8080/p?q" → "host:8080".
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?;
    (!host.is_empty()).then_some(host)
}

fn direction(
    trace: &AnalyzedTrace,
    index: usize,
    kind: WorkKind,
    template: &Template,
) -> Direction {
    let span = trace.span(index);
    match kind {
        WorkKind::Llm => Direction::Read,
        WorkKind::Database => match template {
            Template::Sql(_) => span
                .concept_text(Concept::DbStatement)
                .map_or(Direction::Unknown, |s| statement_direction(&s)),
            _ => span
                .concept_text(Concept::DbOperation)
                .map_or(Direction::Unknown, |op| operation_direction(&op)),
        },
        WorkKind::Http => match span.concept_text(Concept::HttpMethod) {
            Some(method) => match method.to_ascii_uppercase().as_str() {
                "GET" | "HEAD" | "OPTIONS" => Direction::Read,
                _ => Direction::Write,
            },
            None => Direction::Unknown,
        },
        WorkKind::Rpc => match span
            .concept_text(Concept::RpcMethod)
            // A BEAM call out of the recording is named by its function (`Profiles.fetch/2`).
            .or_else(|| call_out_function(trace, index))
            .map_or(Direction::Unknown, |m| verb_direction(&m))
        {
            // A call to a BEAM process named by what it asks for: what its server did.
            Direction::Unknown => match crate::served::changed_state(trace, index) {
                Some(false) => Direction::Read,
                Some(true) => Direction::Write,
                None => Direction::Unknown,
            },
            known => known,
        },
        WorkKind::Messaging => {
            if span.effective_kind() == SpanKind::Producer {
                return Direction::Write;
            }
            match span
                .concept_text(Concept::MessagingOperation)
                .map(|op| op.to_ascii_lowercase())
                .as_deref()
            {
                Some("receive" | "process" | "deliver" | "consume" | "poll") => Direction::Read,
                Some("publish" | "send" | "create" | "produce" | "settle") => Direction::Write,
                _ => Direction::Unknown,
            }
        }
        WorkKind::FileIo => verb_direction(&span.name),
        _ => Direction::Unknown,
    }
}

/// A SQL statement's direction from its verb.
pub fn statement_direction(statement: &str) -> Direction {
    let words: Vec<String> = sql_words(statement).take(4096).collect();
    let Some(first) = words.first() else {
        return Direction::Unknown;
    };
    let writes = |w: &str| {
        matches!(
            w,
            "INSERT"
                | "UPDATE"
                | "DELETE"
                | "MERGE"
                | "UPSERT"
                | "REPLACE"
                | "CREATE"
                | "ALTER"
                | "DROP"
                | "TRUNCATE"
                | "GRANT"
                | "REVOKE"
                | "COPY"
                | "LOCK"
                | "VACUUM"
        )
    };
    match first.as_str() {
        "SELECT" | "WITH" | "VALUES" | "TABLE" => {
            let locking = words
                .windows(2)
                .any(|w| w[0] == "FOR" && matches!(w[1].as_str(), "UPDATE" | "SHARE"));
            if locking || words.iter().skip(1).any(|w| writes(w) && w != "REPLACE") {
                Direction::Write
            } else {
                Direction::Read
            }
        }
        "SHOW" | "EXPLAIN" | "DESCRIBE" | "DESC" => Direction::Read,
        w if writes(w) => Direction::Write,
        "BEGIN" | "COMMIT" | "ROLLBACK" | "START" | "SAVEPOINT" | "RELEASE" | "SET" | "CALL"
        | "EXEC" | "EXECUTE" => Direction::Write,
        // Redis and other command-style "statements": GET key, HGETALL h, SET k v.
        other => operation_direction(other),
    }
}

/// Upper-cased words of a statement, skipping comments, quoted literals and punctuation.
fn sql_words(statement: &str) -> impl Iterator<Item = String> + '_ {
    let mut rest = statement;
    std::iter::from_fn(move || {
        loop {
            rest = rest.trim_start_matches(|c: char| !c.is_alphanumeric() && !"-/'\"_".contains(c));
            if rest.is_empty() {
                return None;
            }
            if let Some(after) = rest.strip_prefix("--") {
                rest = after.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(after) = rest.strip_prefix("/*") {
                rest = after.split_once("*/").map_or("", |(_, r)| r);
            } else if rest.starts_with(['\'', '"']) {
                let quote = rest.chars().next().unwrap_or('\'');
                rest = rest[1..].split_once(quote).map_or("", |(_, r)| r);
            } else if rest.starts_with(['-', '/']) {
                rest = &rest[1..];
            } else {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let word = rest[..end].to_ascii_uppercase();
                rest = &rest[end..];
                return Some(word);
            }
        }
    })
}

/// A database operation name's direction (`find`, `HGETALL` → read; `insertOne`, `SET` →
/// write).
pub fn operation_direction(operation: &str) -> Direction {
    let op = operation.trim().to_ascii_lowercase();
    const READS: &[&str] = &[
        "select",
        "find",
        "get",
        "mget",
        "hget",
        "hgetall",
        "hmget",
        "lrange",
        "smembers",
        "zrange",
        "exists",
        "count",
        "aggregate",
        "query",
        "scan",
        "read",
        "search",
        "ttl",
        "keys",
        "fetch",
        "list",
        "describe",
        "lookup",
        "batchget",
        "getitem",
        "load",
    ];
    const WRITES: &[&str] = &[
        "insert",
        "update",
        "delete",
        "set",
        "hset",
        "hmset",
        "del",
        "incr",
        "incrby",
        "decr",
        "put",
        "upsert",
        "replace",
        "write",
        "lpush",
        "rpush",
        "sadd",
        "zadd",
        "expire",
        "publish",
        "create",
        "drop",
        "remove",
        "putitem",
        "updateitem",
        "deleteitem",
        "batchwrite",
        "save",
        "store",
        "append",
        "setex",
        "mset",
        "findandmodify",
        "findoneandupdate",
        "bulkwrite",
    ];
    let starts = |words: &[&str]| words.iter().any(|w| op == *w || op.starts_with(w));
    // Longest meaning first: "findoneandupdate" starts with "find" but writes.
    if WRITES.contains(&op.as_str()) || (!READS.contains(&op.as_str()) && starts(WRITES)) {
        Direction::Write
    } else if starts(READS) {
        Direction::Read
    } else {
        Direction::Unknown
    }
}

/// An RPC method's or a function's direction from its leading verb (`GetUser`, `list_items`,
/// `ChargeCard`, `file.write`).
pub fn verb_direction(name: &str) -> Direction {
    // A function with its arity (`Prices.fetch/1`, what a task ran) is read by its name.
    let name = match name.rsplit_once('/') {
        Some((function, arity))
            if !arity.is_empty() && arity.bytes().all(|b| b.is_ascii_digit()) =>
        {
            function
        }
        _ => name,
    };
    let last = name.rsplit(['/', '.', ':']).next().unwrap_or(name);
    let verb: String = last
        .chars()
        .enumerate()
        .take_while(|(i, c)| *i == 0 || !(c.is_uppercase() || *c == '_' || *c == '-'))
        .map(|(_, c)| c.to_ascii_lowercase())
        .collect();
    match verb.as_str() {
        "get" | "list" | "search" | "find" | "fetch" | "read" | "query" | "lookup" | "check"
        | "describe" | "count" | "load" | "open" | "stat" | "exists" | "watch" | "estimate"
        | "quote" | "validate" | "verify" | "resolve" | "scan" => Direction::Read,
        "create" | "update" | "delete" | "set" | "put" | "add" | "remove" | "charge" | "send"
        | "submit" | "place" | "cancel" | "write" | "insert" | "upsert" | "reserve" | "commit"
        | "publish" | "pay" | "refund" | "capture" | "authorize" | "save" | "store" | "append"
        | "rename" | "mkdir" | "move" | "copy" | "register" | "notify" | "enqueue" | "post"
        | "patch" | "emit" | "record" | "release" | "acquire" | "lock" | "unlock" => {
            Direction::Write
        }
        _ => Direction::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, TraceId};

    fn call_of(kind: SpanKind, attributes: Vec<KeyValue>) -> Call {
        let mut s = span(1, None, "op", 0, 10);
        s.kind = kind;
        s.attributes = attributes;
        describe(&AnalyzedTrace::new(TraceId([1; 16]), batch(vec![s])), 0)
    }

    #[test]
    fn waiting_for_a_pooled_connection_is_not_a_call() {
        let mut pool = span(1, None, "pg-pool.connect", 0, 10);
        pool.kind = SpanKind::Client;
        pool.attributes = vec![KeyValue::new("db.system.name", "postgresql")];
        let mut query = pool.clone();
        query.span_id = devtrace_model::SpanId([2; 8]);
        query.name = "pg.query:SELECT shop".into();
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(vec![pool, query]));
        assert!(!describe(&trace, 0).outbound, "the pool's acquisition");
        assert!(describe(&trace, 1).outbound, "the query");
    }

    fn scoped(spans: Vec<(devtrace_model::Span, u32)>, scopes: &[&str]) -> AnalyzedTrace {
        let mut b = batch(
            spans
                .into_iter()
                .map(|(mut s, scope)| {
                    s.scope = scope;
                    s
                })
                .collect(),
        );
        b.scopes = scopes
            .iter()
            .map(|name| devtrace_model::Scope {
                name: (*name).to_owned(),
                ..Default::default()
            })
            .collect();
        AnalyzedTrace::new(TraceId([1; 16]), b)
    }

    fn client(
        id: u8,
        parent: u8,
        name: &str,
        start: u64,
        end: u64,
        attrs: &[(&str, &str)],
    ) -> devtrace_model::Span {
        let mut s = span(id, Some(parent), name, start, end);
        s.kind = SpanKind::Client;
        s.attributes = attrs.iter().map(|(k, v)| KeyValue::new(*k, *v)).collect();
        s
    }

    #[test]
    fn a_call_recorded_by_two_libraries_is_one_call() {
        // openai-v2's `chat MODEL` span around httpx's POST to the provider.
        let post = [
            ("http.method", "POST"),
            ("http.url", "http://model:8080/v1/chat/completions"),
        ];
        let chat = [
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "m1"),
        ];
        let trace = scoped(
            vec![
                (span(1, None, "POST /ask", 0, 100), 0),
                (client(2, 1, "chat m1", 10, 60, &chat), 1),
                (client(3, 2, "POST", 12, 58, &post), 2),
            ],
            &[
                "flask",
                "opentelemetry.instrumentation.openai_v2",
                "opentelemetry.instrumentation.httpx",
            ],
        );
        assert_eq!(inner_layers(&trace), [false, false, true]);
        // Several outbound children are several calls (retries, a fan-out): all are kept.
        let retries = scoped(
            vec![
                (span(1, None, "POST /ask", 0, 100), 0),
                (client(2, 1, "chat m1", 10, 90, &chat), 1),
                (client(3, 2, "POST", 12, 40, &post), 2),
                (client(4, 2, "POST", 45, 88, &post), 2),
            ],
            &[
                "flask",
                "opentelemetry.instrumentation.openai_v2",
                "opentelemetry.instrumentation.httpx",
            ],
        );
        assert_eq!(inner_layers(&retries), [false; 4]);
    }

    #[test]
    fn sequential_or_same_library_calls_stay_two_calls() {
        let q = [
            ("db.system", "postgresql"),
            ("db.statement", "SELECT 1 FROM t WHERE id = 4"),
        ];
        let scopes = [
            "flask",
            "opentelemetry.instrumentation.sqlalchemy",
            "opentelemetry.instrumentation.psycopg2",
        ];
        // Siblings of one statement from two libraries, the second inside the first: one call.
        let layered = scoped(
            vec![
                (span(1, None, "GET /", 0, 100), 0),
                (client(2, 1, "SELECT shop", 10, 40, &q), 1),
                (client(3, 1, "SELECT", 11, 39, &q), 2),
            ],
            &scopes,
        );
        assert_eq!(inner_layers(&layered), [false, false, true]);
        // One after the other: two calls, whichever library made them.
        let sequential = scoped(
            vec![
                (span(1, None, "GET /", 0, 100), 0),
                (client(2, 1, "SELECT shop", 10, 40, &q), 1),
                (client(3, 1, "SELECT", 40, 70, &q), 2),
            ],
            &scopes,
        );
        assert_eq!(inner_layers(&sequential), [false; 3]);
        // Nested in time but made by one library (concurrent queries): two calls.
        let concurrent = scoped(
            vec![
                (span(1, None, "GET /", 0, 100), 0),
                (client(2, 1, "SELECT", 10, 40, &q), 2),
                (client(3, 1, "SELECT", 11, 39, &q), 2),
            ],
            &scopes,
        );
        assert_eq!(inner_layers(&concurrent), [false; 3]);
        // Different statements are different calls.
        let other = [
            ("db.system", "postgresql"),
            ("db.statement", "SELECT 2 FROM u"),
        ];
        let different = scoped(
            vec![
                (span(1, None, "GET /", 0, 100), 0),
                (client(2, 1, "SELECT shop", 10, 40, &q), 1),
                (client(3, 1, "SELECT", 11, 39, &other), 2),
            ],
            &scopes,
        );
        assert_eq!(inner_layers(&different), [false; 3]);
    }

    #[test]
    fn sql_direction_follows_the_verb() {
        assert_eq!(
            statement_direction("SELECT * FROM t WHERE id = 1"),
            Direction::Read
        );
        assert_eq!(statement_direction("/* app */ select 1"), Direction::Read);
        assert_eq!(
            statement_direction("WITH x AS (SELECT 1) SELECT * FROM x"),
            Direction::Read
        );
        assert_eq!(
            statement_direction("WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"),
            Direction::Write
        );
        assert_eq!(
            statement_direction("SELECT * FROM accounts WHERE id = 3 FOR UPDATE"),
            Direction::Write
        );
        assert_eq!(
            statement_direction("update t set a = 'SELECT'"),
            Direction::Write
        );
        assert_eq!(statement_direction("HGETALL cart:42"), Direction::Read);
        assert_eq!(statement_direction("SET session:1 x"), Direction::Write);
        assert_eq!(
            statement_direction("-- note\nINSERT INTO t VALUES (1)"),
            Direction::Write
        );
    }

    #[test]
    fn operation_and_verb_directions() {
        assert_eq!(operation_direction("findOneAndUpdate"), Direction::Write);
        assert_eq!(operation_direction("find"), Direction::Read);
        assert_eq!(operation_direction("MGET"), Direction::Read);
        assert_eq!(
            verb_direction("inventory.v1.Stock/GetLevels"),
            Direction::Read
        );
        assert_eq!(verb_direction("ChargeCard"), Direction::Write);
        assert_eq!(verb_direction("list_items"), Direction::Read);
        assert_eq!(verb_direction("Frobnicate"), Direction::Unknown);
        // What a BEAM task ran, with its arity.
        assert_eq!(verb_direction("Prices.fetch/1"), Direction::Read);
        assert_eq!(verb_direction("orders:place/2"), Direction::Write);
    }

    #[test]
    fn old_and_new_conventions_describe_the_same_call() {
        let new = call_of(
            SpanKind::Client,
            vec![
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", "SELECT a FROM t WHERE id = 7"),
                KeyValue::new("server.address", "db1"),
            ],
        );
        let old = call_of(
            SpanKind::Internal,
            vec![
                KeyValue::new("db.type", "sql"),
                KeyValue::new("sql.query", "SELECT a FROM t WHERE id = 9"),
                KeyValue::new("peer.hostname", "db1"),
                KeyValue::new("span.kind", "client"),
            ],
        );
        assert_eq!(new.kind, WorkKind::Database);
        assert_eq!(old.kind, WorkKind::Database);
        assert_eq!((new.outbound, old.outbound), (true, true));
        assert_eq!(new.template, old.template);
        assert_eq!(new.direction, Direction::Read);
        assert_eq!(old.target.as_deref(), Some("db1"));
        let http = call_of(
            SpanKind::Client,
            vec![
                KeyValue::new("http.method", "POST"),
                KeyValue::new("http.url", "https://pay.example/v1/charges/ch_123"),
            ],
        );
        assert_eq!(http.kind, WorkKind::Http);
        assert_eq!(http.direction, Direction::Write);
        assert_eq!(http.target.as_deref(), Some("pay.example"));
    }

    #[test]
    fn internal_work_does_not_leave_the_process_and_servers_never_do() {
        assert!(!call_of(SpanKind::Internal, vec![]).outbound);
        let server = call_of(
            SpanKind::Server,
            vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", "/x"),
            ],
        );
        assert!(!server.outbound);
    }
}
