//! Waiting inside a span: the span's own events that mark a wait and its end.
//!
//! Many instrumentations never make a span for a wait: a database client records "Waiting for
//! lock" and "Acquired lock" as events on its query span, a connection pool "pool.wait" and
//! "connection acquired", a retrying client "backoff" and "retrying". Those instants split the
//! span's time into waiting and working, and a wait is often the real cause of a slow request.
//!
//! **Rule.** An event whose name (or `message`/`event` attribute) says a wait began — it
//! contains *wait*, *waiting*, *blocked*, *queued*, *backoff*/*backing off*, *throttled*,
//! *retry-after* or *retry after*, or is `devtrace.lock.requested` — opens a wait; the next
//! event of the same span that says it ended — *acquired*, *granted*, *obtained*, *dequeued*,
//! *resumed*, *unblocked*, *proceeding*, *retrying*, *done waiting*, *wait ended*, or
//! `devtrace.lock.acquired` — closes it. A wait with no end is not counted (nothing says how
//! long it lasted). What was waited for is named by the event's `devtrace.lock.name`,
//! `lock.name`, `db.lock`, `pool.name` or `queue.name` attribute, else by the word in the event
//! (lock, queue, pool, backoff). "Behind N" (how many were ahead) comes from a `waiters`,
//! `queue.depth`, `queue.position` or `devtrace.wait.behind` attribute, or from "behind N" in
//! the text. Lock spans of the `devtrace.lock.*` convention are read by `locks`; their
//! own requested/acquired events are not counted twice here.
//!
//! **Pool acquisitions.** Real instrumentations record the wait for a pooled connection as a
//! span of its own, not as events: the span lasts from asking the pool to getting a connection
//! (opening one when the pool has room, waiting for one to be returned when it has not). A span
//! is such an acquisition when [`crate::pools::POOL_ACQUISITIONS`] names it (by span name, and the
//! instrumentation scope when the name alone is too common), or when it carries a pool name
//! (`db.client.connection.pool.name`, `pool.name`) and its name says it acquires (*acquire*,
//! *checkout*, *connect*). While another call to the same database (kind and target) was in
//! flight — the pool was busy (overlapping the wait by more than the clocks' resolution,
//! [`crate::clock`]); waiting for a pool nobody was using is opening a connection, a
//! cold start — its own time (less its children: opening a new connection, as pg's
//! `pg.connect` inside `pg-pool.connect`, is connecting, not waiting) is a wait of kind pool,
//! by the span's parent (the operation that waited), on the pool its attribute names, else on
//! the database it connects to (`postgresql 10.0.0.5:5432`: system and target, per
//! [`crate::call`]).

use crate::AnalyzedTrace;
use devtrace_model::{AnyValue, Event, Span};
use serde::Serialize;

/// What a wait was for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitKind {
    Lock,
    Queue,
    Pool,
    Backoff,
    Other,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Queue => "queue",
            Self::Pool => "pool",
            Self::Backoff => "backoff",
            Self::Other => "wait",
        }
    }
}

/// One wait inside a span.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Wait {
    /// The span that waited (an index into its trace).
    #[serde(skip)]
    pub span: usize,
    pub kind: WaitKind,
    /// What was waited for, when the event names it (a lock, pool or queue name).
    pub resource: Option<String>,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    /// How many were ahead, when recorded.
    pub behind: Option<u64>,
    /// The event that opened the wait, as recorded.
    pub started_by: String,
    /// The event that closed it.
    pub ended_by: String,
    /// The wait is a pool acquisition's span ([`crate::pools::POOL_ACQUISITIONS`]): the span is the wait, and
    /// the operation that waited is its parent.
    #[serde(skip)]
    pub acquisition: bool,
}

impl Wait {
    pub fn nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }
}

const START_WORDS: &[&str] = &[
    "waiting",
    "wait",
    "blocked",
    "queued",
    "backoff",
    "backing off",
    "throttled",
    "retry-after",
    "retry after",
];
const END_WORDS: &[&str] = &[
    "acquired",
    "granted",
    "obtained",
    "dequeued",
    "resumed",
    "unblocked",
    "proceeding",
    "retrying",
    "done waiting",
    "wait ended",
    "wait finished",
    "lock taken",
];
const RESOURCE_KEYS: &[&str] = &[
    "devtrace.lock.name",
    "lock.name",
    "db.lock",
    "pool.name",
    "db.client.connection.pool.name",
    "queue.name",
];
const BEHIND_KEYS: &[&str] = &[
    "devtrace.wait.behind",
    "waiters",
    "queue.depth",
    "queue.position",
];

/// The text an event says: its name, and a `message`/`event`/`log.message` attribute.
fn event_text(event: &Event) -> String {
    let mut text = event.name.clone();
    for key in ["message", "event", "log.message", "body"] {
        if let Some(value) = devtrace_model::find_attr(&event.attributes, key) {
            text.push(' ');
            text.push_str(&value.to_display_string());
        }
    }
    text.to_lowercase()
}

/// Whether `word` occurs in `text` as a whole word (or phrase).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

fn opens(event: &Event, text: &str) -> bool {
    event.name == devtrace_model::semconv::lock::EVENT_REQUESTED
        || (START_WORDS.iter().any(|w| has_word(text, w)) && !closes(event, text))
}

fn closes(event: &Event, text: &str) -> bool {
    event.name == devtrace_model::semconv::lock::EVENT_ACQUIRED
        || END_WORDS.iter().any(|w| has_word(text, w))
        || text.contains("done waiting")
}

fn kind_of(text: &str) -> WaitKind {
    if text.contains("lock") {
        WaitKind::Lock
    } else if text.contains("pool") || text.contains("connection") {
        WaitKind::Pool
    } else if text.contains("queue") || text.contains("queued") {
        WaitKind::Queue
    } else if text.contains("backoff")
        || text.contains("backing off")
        || text.contains("retry")
        || text.contains("throttl")
    {
        WaitKind::Backoff
    } else {
        WaitKind::Other
    }
}

fn attr_text(event: &Event, keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| devtrace_model::find_attr(&event.attributes, k))
        .map(AnyValue::to_display_string)
        .filter(|s| !s.is_empty())
}

/// "behind 4 transactions" → 4.
fn behind_in_text(text: &str) -> Option<u64> {
    let at = text.find("behind ")?;
    text[at + 7..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
}

/// The waits recorded as events of `span` (index `index` in its trace), in time order.
pub fn span_waits(span: &Span, index: usize) -> Vec<Wait> {
    // A lock span of the devtrace convention is read by `locks`; don't count it twice.
    if span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("devtrace.lock."))
    {
        return Vec::new();
    }
    let mut events: Vec<&Event> = span.events.iter().collect();
    events.sort_by_key(|e| e.time_unix_nano);
    let mut waits = Vec::new();
    let mut open: Option<(&Event, String)> = None;
    for event in events {
        let text = event_text(event);
        match &open {
            None if opens(event, &text) => open = Some((event, text)),
            Some((start, start_text)) if closes(event, &text) => {
                let at = event.time_unix_nano.max(start.time_unix_nano);
                let clip = |t: u64| {
                    t.clamp(
                        span.start_unix_nano,
                        span.end_unix_nano.max(span.start_unix_nano),
                    )
                };
                let (s, e) = (clip(start.time_unix_nano), clip(at));
                if e > s {
                    let both = format!("{start_text} {text}");
                    waits.push(Wait {
                        span: index,
                        kind: kind_of(&both),
                        resource: attr_text(start, RESOURCE_KEYS)
                            .or_else(|| attr_text(event, RESOURCE_KEYS)),
                        start_unix_nano: s,
                        end_unix_nano: e,
                        behind: BEHIND_KEYS
                            .iter()
                            .find_map(|k| devtrace_model::find_attr(&start.attributes, k))
                            .and_then(|v| match v {
                                AnyValue::String(t) => t.trim().parse().ok(),
                                other => other.as_i64().map(|n| n.max(0) as u64),
                            })
                            .or_else(|| behind_in_text(start_text)),
                        started_by: start.name.clone(),
                        ended_by: event.name.clone(),
                        acquisition: false,
                    });
                }
                open = None;
            }
            _ => {}
        }
    }
    waits
}

/// The wait that pool acquisition `index` of `trace` is.
fn acquisition_wait(trace: &AnalyzedTrace, index: usize) -> Wait {
    let span = trace.span(index);
    let pool = crate::pools::POOL_NAME_KEYS
        .iter()
        .find_map(|k| span.attr(k))
        .map(AnyValue::to_display_string)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            let call = crate::call::describe(trace, index);
            let system = span
                .concept_text(devtrace_model::conventions::Concept::DbSystem)
                .unwrap_or_default();
            let target = call.target.unwrap_or_default();
            let both = format!("{system} {target}").trim().to_owned();
            (!both.is_empty()).then_some(both)
        });
    // Time in child spans is opening a connection (pg's `pg.connect`), not waiting for one.
    let waiting = trace.tree.self_time.get(index).copied().unwrap_or(0);
    Wait {
        span: index,
        kind: WaitKind::Pool,
        resource: pool,
        start_unix_nano: span.start_unix_nano,
        end_unix_nano: span.start_unix_nano.saturating_add(waiting),
        behind: None,
        started_by: span.name.clone(),
        ended_by: span.name.clone(),
        acquisition: true,
    }
}

/// Whether the pool of acquisition `index` was busy while it waited over `[start, end)`:
/// another call to the same database (same kind and target, [`crate::call`]) was in flight,
/// outside the acquisition's own subtree, overlapping the wait by more than the spans' clocks
/// can account for ([`crate::clock`]: the query a Node.js handler makes with the connection it
/// got starts at a whole millisecond, up to 1 ms before the acquisition's end). Waiting for a
/// pool nobody else was using is opening a connection (a cold start), not contention.
fn pool_busy(trace: &AnalyzedTrace, index: usize, (start, end): (u64, u64)) -> bool {
    let this = crate::call::describe(trace, index);
    (0..trace.spans.spans.len()).any(|j| {
        let span = trace.span(j);
        let tolerance = trace.overlap_tolerance(&[index, j]);
        let in_flight = (span.start_unix_nano, span.end_unix_nano);
        if trace.tree.is_within(j, index)
            || crate::pools::is_pool_acquisition(trace, j)
            || !crate::clock::concurrent((start, end), in_flight, tolerance)
        {
            return false;
        }
        let call = crate::call::describe(trace, j);
        call.outbound && call.kind == this.kind && call.target == this.target
    })
}

/// Every wait recorded inside the spans of `trace`, and the wait of every pool acquisition's
/// span while its pool was busy.
pub fn trace_waits(trace: &AnalyzedTrace) -> Vec<Wait> {
    trace
        .spans
        .spans
        .iter()
        .enumerate()
        .flat_map(|(i, span)| {
            let mut waits = span_waits(span, i);
            if crate::pools::is_pool_acquisition(trace, i) {
                let wait = acquisition_wait(trace, i);
                if wait.nanos() > 0
                    && pool_busy(trace, i, (wait.start_unix_nano, wait.end_unix_nano))
                {
                    waits.push(wait);
                }
            }
            waits
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::{KeyValue, SpanId, TraceId};

    fn event(name: &str, at: u64, attributes: Vec<KeyValue>) -> Event {
        Event {
            time_unix_nano: at,
            name: name.to_owned(),
            attributes,
            dropped_attributes_count: 0,
        }
    }

    fn span_with(events: Vec<Event>) -> Span {
        let mut span = Span::new(TraceId([1; 16]), SpanId([1; 8]), None, "UPDATE", 0, 1_300);
        span.events = events;
        span
    }

    #[test]
    fn a_lock_wait_between_two_events_is_found_with_how_many_were_ahead() {
        let span = span_with(vec![
            event("Waiting for lock behind 4 transactions", 100, vec![]),
            event("Acquired lock", 1_068, vec![]),
            event("query done", 1_290, vec![]),
        ]);
        let waits = span_waits(&span, 0);
        assert_eq!(waits.len(), 1);
        let w = &waits[0];
        assert_eq!(
            (w.start_unix_nano, w.end_unix_nano, w.nanos()),
            (100, 1_068, 968)
        );
        assert_eq!(w.kind, WaitKind::Lock);
        assert_eq!(w.behind, Some(4));
    }

    #[test]
    fn pool_and_backoff_waits_and_named_resources() {
        let span = span_with(vec![
            event(
                "pool.wait",
                10,
                vec![
                    KeyValue::new("pool.name", "primary"),
                    KeyValue::new("waiters", 3),
                ],
            ),
            event("connection acquired", 60, vec![]),
            event("backoff", 100, vec![]),
            event("retrying", 400, vec![]),
        ]);
        let waits = span_waits(&span, 0);
        assert_eq!(waits.len(), 2);
        assert_eq!(waits[0].kind, WaitKind::Pool);
        assert_eq!(waits[0].resource.as_deref(), Some("primary"));
        assert_eq!(waits[0].behind, Some(3));
        assert_eq!(waits[1].kind, WaitKind::Backoff);
        assert_eq!(waits[1].nanos(), 300);
    }

    #[test]
    fn near_misses_are_not_waits() {
        // No end: not counted. Words inside other words ("awaited", "waitress") do not open.
        let span = span_with(vec![
            event("waiting for lock", 10, vec![]),
            event("cache miss", 20, vec![]),
        ]);
        assert!(span_waits(&span, 0).is_empty());
        let span = span_with(vec![
            event("awaited the waitress", 10, vec![]),
            event("acquired lock", 20, vec![]),
        ]);
        assert!(span_waits(&span, 0).is_empty());
        // A devtrace lock span is read by `locks`, not here.
        let mut lock = span_with(vec![
            event("devtrace.lock.requested", 0, vec![]),
            event("devtrace.lock.acquired", 50, vec![]),
        ]);
        lock.attributes
            .push(KeyValue::new("devtrace.lock.name", "db"));
        assert!(span_waits(&lock, 0).is_empty());
    }
}
