//! Which spans acquire a pooled resource (a database connection from a client-side pool),
//! by the instrumentations that record them. Such a span is a wait in the process that holds
//! the pool, not a call to the resource: `waits` reads it as a wait on the pool, and
//! `call` never counts it as an outbound call. Below both, so neither depends on the
//! other for it.

use crate::AnalyzedTrace;

/// Spans that acquire a pooled connection, by the instrumentations that record them: the span
/// name, and the instrumentation scope's name when the span name alone could be anything.
pub const POOL_ACQUISITIONS: &[(&str, Option<&str>)] = &[
    // @opentelemetry/instrumentation-pg: `pool.connect()`, waiting for or opening a client.
    ("pg-pool.connect", None),
    // @opentelemetry/instrumentation-generic-pool: `pool.acquire()`.
    ("generic-pool.acquire", None),
    // opentelemetry-instrumentation-sqlalchemy: `Engine.connect()`, a checkout from the
    // engine's pool.
    ("connect", Some("opentelemetry.instrumentation.sqlalchemy")),
];
/// Attributes naming the pool an acquisition is from.
pub const POOL_NAME_KEYS: &[&str] = &["db.client.connection.pool.name", "pool.name"];
/// Words of a span name that say it acquires, for a span carrying a pool name.
const ACQUIRE_WORDS: &[&str] = &["acquire", "checkout", "connect"];

/// Whether span `index` of `trace` is a pool acquisition (see the module's rule).
pub fn is_pool_acquisition(trace: &AnalyzedTrace, index: usize) -> bool {
    let span = trace.span(index);
    let scope = trace.spans.scope_of(span).name.as_str();
    let listed = POOL_ACQUISITIONS
        .iter()
        .any(|(name, by)| span.name == *name && by.is_none_or(|b| scope == b));
    let named = POOL_NAME_KEYS.iter().any(|k| span.attr(k).is_some()) && {
        let lower = span.name.to_lowercase();
        ACQUIRE_WORDS.iter().any(|w| lower.contains(w))
    };
    listed || named
}
