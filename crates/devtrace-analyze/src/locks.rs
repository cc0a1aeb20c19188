//! Lock uses, as the `devtrace.lock.*` convention records them (see docs/conventions.md), and
//! what they add up to: waits and holds per lock and per holder, the timeline of one trace, and
//! lock-order inversions (A taken while holding B somewhere, B while holding A elsewhere) that
//! can deadlock.
//!
//! A lock use is a span named `lock <name>` that lasts from the request to the release, with
//! `devtrace.lock.name`, `.kind`, `.holder`, `.wait_ns`, `.hold_ns` attributes and
//! `devtrace.lock.requested` / `.acquired` / `.released` events. Instants come from the events
//! when present, else from the span (start; start + `wait_ns` or end − `hold_ns`; end); wait
//! and hold come from the attributes when present (the instrumentation measures them on a
//! monotonic clock), else from the instants.

use crate::AnalyzedTrace;
use devtrace_model::{AnyValue, Span, SpanId, TraceId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

// The `devtrace.lock.*` convention's names (docs/conventions.md), from the model where
// devtrace's names live, so the waits read inside spans and the lock spans share them.
pub use devtrace_model::semconv::lock::*;

/// Fallbacks for the holder when `devtrace.lock.holder` is absent (OpenTelemetry's thread
/// attributes).
const HOLDER_FALLBACKS: &[&str] = &["thread.id", "thread.name"];

/// One request-acquire-release of a lock. Instants are Unix nanoseconds; `holder` is empty when
/// the span says nothing about who held the lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockUse {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub lock: String,
    pub kind: Option<String>,
    pub holder: String,
    #[serde(rename = "requested_unix_nano")]
    pub requested: u64,
    #[serde(rename = "acquired_unix_nano")]
    pub acquired: u64,
    #[serde(rename = "released_unix_nano")]
    pub released: u64,
    #[serde(rename = "wait_ns")]
    pub wait_nanos: u64,
    #[serde(rename = "hold_ns")]
    pub hold_nanos: u64,
    /// For a wait recorded as events inside an operation's span (see [`crate::waits`]): that
    /// span's name. `None` for a lock span of the devtrace convention.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waited_in: Option<String>,
    /// How many were ahead in line, when recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub behind: Option<u64>,
}

/// Counts and sums over a set of lock uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UseStats {
    pub uses: u64,
    #[serde(rename = "total_wait_ns")]
    pub total_wait_nanos: u64,
    #[serde(rename = "max_wait_ns")]
    pub max_wait_nanos: u64,
    #[serde(rename = "total_hold_ns")]
    pub total_hold_nanos: u64,
    #[serde(rename = "max_hold_ns")]
    pub max_hold_nanos: u64,
}

impl UseStats {
    fn add(&mut self, lock_use: &LockUse) {
        self.uses += 1;
        self.total_wait_nanos = self.total_wait_nanos.saturating_add(lock_use.wait_nanos);
        self.max_wait_nanos = self.max_wait_nanos.max(lock_use.wait_nanos);
        self.total_hold_nanos = self.total_hold_nanos.saturating_add(lock_use.hold_nanos);
        self.max_hold_nanos = self.max_hold_nanos.max(lock_use.hold_nanos);
    }
}

/// One lock's uses, and the holders that used it (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockStats {
    pub lock: String,
    #[serde(flatten)]
    pub stats: UseStats,
    pub holders: Vec<String>,
}

/// One holder's lock uses, and the locks it used (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderStats {
    pub holder: String,
    #[serde(flatten)]
    pub stats: UseStats,
    pub locks: Vec<String>,
}

/// `inner` was requested while `outer` was held, by `holder`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockOrder {
    pub outer: String,
    pub inner: String,
    pub holder: String,
    pub trace_id: TraceId,
    pub outer_span_id: SpanId,
    pub inner_span_id: SpanId,
    /// When the inner lock was requested.
    pub at_unix_nano: u64,
}

/// Two locks taken in both orders: `lock_a` then `lock_b` somewhere, `lock_b` then `lock_a`
/// elsewhere. Two holders doing this at the same time deadlock. `lock_a` < `lock_b`; the
/// examples come from different holders when the input has such a pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Inversion {
    pub lock_a: String,
    pub lock_b: String,
    pub a_then_b: LockOrder,
    pub b_then_a: LockOrder,
    /// How many times each order was seen.
    pub a_then_b_count: u64,
    pub b_then_a_count: u64,
    /// How many traces show either order.
    pub traces: u64,
}

/// Everything about the locks in a set of traces.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LockReport {
    /// Longest waits first (then earliest request).
    pub uses: Vec<LockUse>,
    /// Largest total wait first.
    pub per_lock: Vec<LockStats>,
    /// Largest total wait first.
    pub per_holder: Vec<HolderStats>,
    /// Ordered by lock names.
    pub inversions: Vec<Inversion>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockEventKind {
    Requested,
    Acquired,
    Released,
}

impl LockEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Acquired => "acquired",
            Self::Released => "released",
        }
    }
}

/// One instant of a lock use, for a timeline. `wait_ns` is set on acquisitions, `hold_ns` on
/// releases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TimelineEvent {
    pub at_unix_nano: u64,
    /// Since the origin the timeline was built with (the trace's start).
    #[serde(rename = "offset_ns")]
    pub offset_nanos: u64,
    pub event: LockEventKind,
    pub lock: String,
    pub holder: String,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_ns: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_ns: Option<u64>,
}

/// The lock uses recorded in one trace, in span order: lock spans of the convention, then
/// waits recorded as events inside other spans.
pub fn lock_uses(trace: &AnalyzedTrace) -> Vec<LockUse> {
    let mut uses: Vec<LockUse> = parse(trace).into_iter().map(|(_, u)| u).collect();
    uses.extend(event_waits(trace));
    uses
}

/// Waits recorded as events inside spans ([`crate::waits`]), as lock uses: the lock is what
/// the event names (a lock, pool or queue), else the kind of wait in that operation
/// (`lock in "UPDATE accounts …"`); requested and acquired are the wait's start and end, the
/// release is the span's end.
fn event_waits(trace: &AnalyzedTrace) -> Vec<LockUse> {
    crate::waits::trace_waits(trace)
        .into_iter()
        .map(|w| {
            let span = trace.span(w.span);
            let template = crate::call::call_template(trace, w.span).display(&span.name);
            let lock = match &w.resource {
                Some(resource) => format!("{} {resource}", w.kind.as_str()),
                None => format!("{} in {template}", w.kind.as_str()),
            };
            let holder = HOLDER_FALLBACKS
                .iter()
                .find_map(|k| trace.attr(w.span, k))
                .map(AnyValue::to_display_string)
                .unwrap_or_default();
            let released = span.end_unix_nano.max(w.end_unix_nano);
            LockUse {
                trace_id: trace.trace_id,
                span_id: span.span_id,
                lock,
                kind: Some(if w.acquisition {
                    ACQUISITION_KIND.to_owned()
                } else {
                    format!("{} (span events)", w.kind.as_str())
                }),
                holder,
                requested: w.start_unix_nano,
                acquired: w.end_unix_nano,
                released,
                wait_nanos: w.nanos(),
                hold_nanos: released - w.end_unix_nano,
                // An acquisition's span is the wait: the operation that waited is its parent.
                waited_in: Some(match trace.tree.parent[w.span].filter(|_| w.acquisition) {
                    Some(parent) => trace.span(parent).name.clone(),
                    None => span.name.clone(),
                }),
                behind: w.behind,
            }
        })
        .collect()
}

/// The kind of a lock use that is a pool acquisition's span (`pools::POOL_ACQUISITIONS`).
pub const ACQUISITION_KIND: &str = "pool (acquisition span)";

/// Uses, statistics and inversions over `traces`.
pub fn analyze(traces: &[AnalyzedTrace]) -> LockReport {
    let mut uses = Vec::new();
    let mut orders = Vec::new();
    for trace in traces {
        let parsed = parse(trace);
        orders.extend(nesting(trace, &parsed));
        uses.extend(parsed.into_iter().map(|(_, u)| u));
        uses.extend(event_waits(trace));
    }
    uses.sort_by(|a, b| {
        b.wait_nanos
            .cmp(&a.wait_nanos)
            .then(a.requested.cmp(&b.requested))
            .then(a.trace_id.cmp(&b.trace_id))
            .then(a.span_id.cmp(&b.span_id))
    });

    let mut by_lock: BTreeMap<&str, (UseStats, BTreeSet<&str>)> = BTreeMap::new();
    let mut by_holder: BTreeMap<&str, (UseStats, BTreeSet<&str>)> = BTreeMap::new();
    for lock_use in &uses {
        let entry = by_lock.entry(&lock_use.lock).or_default();
        entry.0.add(lock_use);
        entry.1.insert(&lock_use.holder);
        let entry = by_holder.entry(&lock_use.holder).or_default();
        entry.0.add(lock_use);
        entry.1.insert(&lock_use.lock);
    }
    let owned = |set: BTreeSet<&str>| set.into_iter().map(str::to_owned).collect::<Vec<_>>();
    let mut per_lock: Vec<LockStats> = by_lock
        .into_iter()
        .map(|(lock, (stats, holders))| LockStats {
            lock: lock.to_owned(),
            stats,
            holders: owned(holders),
        })
        .collect();
    per_lock.sort_by(|a, b| by_wait(&a.stats, &b.stats).then(a.lock.cmp(&b.lock)));
    let mut per_holder: Vec<HolderStats> = by_holder
        .into_iter()
        .map(|(holder, (stats, locks))| HolderStats {
            holder: holder.to_owned(),
            stats,
            locks: owned(locks),
        })
        .collect();
    per_holder.sort_by(|a, b| by_wait(&a.stats, &b.stats).then(a.holder.cmp(&b.holder)));

    let inversions = inversions(orders);
    LockReport {
        uses,
        per_lock,
        per_holder,
        inversions,
    }
}

fn by_wait(a: &UseStats, b: &UseStats) -> std::cmp::Ordering {
    b.total_wait_nanos
        .cmp(&a.total_wait_nanos)
        .then(b.total_hold_nanos.cmp(&a.total_hold_nanos))
}

/// The requested / acquired / released instants of `uses` in time order, offsets from `origin`.
/// At one instant a release comes first (the lock was freed, then taken), then each use's
/// events in the order of its request.
pub fn timeline(uses: &[LockUse], origin_unix_nano: u64) -> Vec<TimelineEvent> {
    let mut keyed = Vec::with_capacity(uses.len() * 3);
    for u in uses {
        let stages = [
            (u.requested, LockEventKind::Requested),
            (u.acquired, LockEventKind::Acquired),
            (u.released, LockEventKind::Released),
        ];
        for (stage, (at, event)) in stages.into_iter().enumerate() {
            let frees = event == LockEventKind::Released && u.hold_nanos > 0;
            let key = (at, !frees, u.requested, u.trace_id, u.span_id, stage);
            keyed.push((
                key,
                TimelineEvent {
                    at_unix_nano: at,
                    offset_nanos: at.saturating_sub(origin_unix_nano),
                    event,
                    lock: u.lock.clone(),
                    holder: u.holder.clone(),
                    trace_id: u.trace_id,
                    span_id: u.span_id,
                    wait_ns: (event == LockEventKind::Acquired).then_some(u.wait_nanos),
                    hold_ns: (event == LockEventKind::Released).then_some(u.hold_nanos),
                },
            ));
        }
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, e)| e).collect()
}

/// The lock spans of a trace with their span indices.
fn parse(trace: &AnalyzedTrace) -> Vec<(usize, LockUse)> {
    (0..trace.spans.spans.len())
        .filter_map(|i| parse_span(trace, i).map(|u| (i, u)))
        .collect()
}

fn parse_span(trace: &AnalyzedTrace, index: usize) -> Option<LockUse> {
    let span = trace.span(index);
    let lock = lock_name(span)?;
    let text = |key: &str| {
        span.attr(key)
            .map(AnyValue::to_display_string)
            .filter(|s| !s.is_empty())
    };
    let holder = std::iter::once(LOCK_HOLDER)
        .chain(HOLDER_FALLBACKS.iter().copied())
        .find_map(text)
        .or_else(|| {
            trace
                .attr(index, LOCK_HOLDER)
                .map(AnyValue::to_display_string)
        })
        .unwrap_or_default();
    let event_time = |name: &str| {
        span.events
            .iter()
            .filter(|e| e.name == name && e.time_unix_nano != 0)
            .map(|e| e.time_unix_nano)
            .min()
    };
    let wait_attr = span.attr(LOCK_WAIT_NS).and_then(non_negative);
    let hold_attr = span.attr(LOCK_HOLD_NS).and_then(non_negative);
    let start = span.start_unix_nano;
    let end = span.end_unix_nano.max(start);
    let requested = event_time(EVENT_REQUESTED).unwrap_or(start);
    let released = event_time(EVENT_RELEASED).unwrap_or(end).max(requested);
    let acquired = event_time(EVENT_ACQUIRED)
        .or_else(|| wait_attr.map(|w| requested.saturating_add(w)))
        .or_else(|| hold_attr.map(|h| released.saturating_sub(h)))
        .unwrap_or(requested)
        .clamp(requested, released);
    Some(LockUse {
        trace_id: trace.trace_id,
        span_id: span.span_id,
        lock,
        kind: text(LOCK_KIND),
        holder,
        requested,
        acquired,
        released,
        wait_nanos: wait_attr.unwrap_or(acquired - requested),
        hold_nanos: hold_attr.unwrap_or(released - acquired),
        waited_in: None,
        behind: None,
    })
}

/// `devtrace.lock.name`, else the `<name>` of a span named `lock <name>` that carries some
/// `devtrace.lock.*` attribute or event (so an unrelated span called "lock screen" is not one).
fn lock_name(span: &Span) -> Option<String> {
    if let Some(name) = span.attr(LOCK_NAME).map(AnyValue::to_display_string)
        && !name.is_empty()
    {
        return Some(name);
    }
    let rest = span.name.strip_prefix(SPAN_PREFIX)?.trim();
    let marked = span
        .attributes
        .iter()
        .any(|kv| kv.key.starts_with("devtrace.lock."))
        || span
            .events
            .iter()
            .any(|e| e.name.starts_with("devtrace.lock."));
    (marked && !rest.is_empty()).then(|| rest.to_owned())
}

/// A non-negative integer from an int, a double or a decimal string.
pub(crate) fn non_negative(value: &AnyValue) -> Option<u64> {
    match value {
        AnyValue::Double(d) if d.is_finite() && *d >= 0.0 => Some(*d as u64),
        other => other.as_i64().and_then(|i| u64::try_from(i).ok()),
    }
}

/// The lock orders in one trace: `inner` requested while `outer` was held, because the inner
/// lock span descends from the outer one, or because the same (known) holder requested it while
/// holding the outer one.
fn nesting(trace: &AnalyzedTrace, uses: &[(usize, LockUse)]) -> Vec<LockOrder> {
    let span_count = trace.spans.spans.len();
    let mut parent: Vec<Option<usize>> = vec![None; span_count];
    for (p, children) in trace.tree.children.iter().enumerate() {
        for &c in children {
            if let Some(slot) = parent.get_mut(c) {
                *slot = Some(p);
            }
        }
    }
    let parent = &parent;
    let ancestors = |index: usize| {
        let mut current = parent.get(index).copied().flatten();
        let mut steps = 0;
        std::iter::from_fn(move || {
            let node = current.filter(|_| steps < span_count)?;
            steps += 1;
            current = parent.get(node).copied().flatten();
            Some(node)
        })
    };
    let position: HashMap<usize, usize> = uses
        .iter()
        .enumerate()
        .map(|(pos, (index, _))| (*index, pos))
        .collect();
    let mut seen: HashSet<(usize, usize)> = HashSet::new();
    let mut orders = Vec::new();
    let mut record = |outer: usize, inner: usize, orders: &mut Vec<LockOrder>| {
        let (o, i) = (&uses[outer].1, &uses[inner].1);
        if o.lock != i.lock && seen.insert((outer, inner)) {
            orders.push(LockOrder {
                outer: o.lock.clone(),
                inner: i.lock.clone(),
                holder: if i.holder.is_empty() {
                    o.holder.clone()
                } else {
                    i.holder.clone()
                },
                trace_id: trace.trace_id,
                outer_span_id: o.span_id,
                inner_span_id: i.span_id,
                at_unix_nano: i.requested,
            });
        }
    };

    // Nested spans.
    for (inner, (index, _)) in uses.iter().enumerate() {
        for ancestor in ancestors(*index) {
            if let Some(&outer) = position.get(&ancestor) {
                record(outer, inner, &mut orders);
            }
        }
    }

    // Overlapping in time within one holder: sweep in request order, keeping the uses still
    // held at the current request.
    let mut by_holder: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (pos, (_, u)) in uses.iter().enumerate() {
        if !u.holder.is_empty() {
            by_holder.entry(&u.holder).or_default().push(pos);
        }
    }
    for mut group in by_holder.into_values() {
        group.sort_by_key(|&pos| (uses[pos].1.requested, uses[pos].1.span_id));
        let mut active: Vec<usize> = Vec::new();
        for &inner in &group {
            let i = &uses[inner].1;
            active.retain(|&outer| uses[outer].1.released > i.requested);
            for &outer in &active {
                let o = &uses[outer].1;
                let descends = ancestors(uses[outer].0).any(|a| a == uses[inner].0);
                if o.acquired <= i.requested && !descends {
                    record(outer, inner, &mut orders);
                }
            }
            active.push(inner);
        }
    }
    orders
}

/// Pairs of locks seen in both orders.
fn inversions(mut orders: Vec<LockOrder>) -> Vec<Inversion> {
    orders.sort_by(|a, b| {
        a.at_unix_nano
            .cmp(&b.at_unix_nano)
            .then(a.trace_id.cmp(&b.trace_id))
            .then(a.inner_span_id.cmp(&b.inner_span_id))
    });
    let mut by_pair: BTreeMap<(&str, &str), Vec<&LockOrder>> = BTreeMap::new();
    for order in &orders {
        by_pair
            .entry((&order.outer, &order.inner))
            .or_default()
            .push(order);
    }
    let mut out = Vec::new();
    for (&(a, b), a_then_b) in &by_pair {
        if a >= b {
            continue;
        }
        let Some(b_then_a) = by_pair.get(&(b, a)) else {
            continue;
        };
        // Prefer an example pair from two different holders: that is the deadlock.
        let (x, y) = a_then_b
            .iter()
            .find_map(|x| {
                b_then_a
                    .iter()
                    .find(|y| y.holder != x.holder)
                    .map(|y| (x, y))
            })
            .unwrap_or((&a_then_b[0], &b_then_a[0]));
        out.push(Inversion {
            lock_a: a.to_owned(),
            lock_b: b.to_owned(),
            a_then_b: (*x).clone(),
            b_then_a: (*y).clone(),
            a_then_b_count: a_then_b.len() as u64,
            b_then_a_count: b_then_a.len() as u64,
            traces: a_then_b
                .iter()
                .chain(b_then_a)
                .map(|o| o.trace_id)
                .collect::<BTreeSet<_>>()
                .len() as u64,
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{Event, KeyValue};

    /// A `lock <name>` span by `holder` with the three events and both durations.
    pub fn lock_span(
        id: u8,
        parent: Option<u8>,
        lock: &str,
        holder: &str,
        requested: u64,
        acquired: u64,
        released: u64,
    ) -> Span {
        let mut s = span(id, parent, &format!("lock {lock}"), requested, released);
        s.attributes = vec![
            KeyValue::new(LOCK_NAME, lock),
            KeyValue::new(LOCK_KIND, "threading.Lock"),
            KeyValue::new(LOCK_HOLDER, holder),
            KeyValue::new(LOCK_WAIT_NS, (acquired - requested) as i64),
            KeyValue::new(LOCK_HOLD_NS, (released - acquired) as i64),
        ];
        s.events = [
            (EVENT_REQUESTED, requested),
            (EVENT_ACQUIRED, acquired),
            (EVENT_RELEASED, released),
        ]
        .into_iter()
        .map(|(name, time)| Event {
            time_unix_nano: time,
            name: name.into(),
            ..Event::default()
        })
        .collect();
        s
    }

    pub fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn two_holders_contending_wait_for_each_other() {
        // Holder 12 holds `db` 10..50 ms; holder 13 asks at 10 ms and gets it at 50 ms.
        let t = trace(
            1,
            vec![
                span(1, None, "job", 0, 100 * MS),
                lock_span(2, Some(1), "db", "12", 10 * MS, 10 * MS, 50 * MS),
                lock_span(3, Some(1), "db", "13", 10 * MS, 50 * MS, 70 * MS),
            ],
        );
        let report = analyze(&[t]);
        assert_eq!(report.uses.len(), 2);
        let first = &report.uses[0];
        assert_eq!(
            (first.holder.as_str(), first.wait_nanos, first.hold_nanos),
            ("13", 40 * MS, 20 * MS)
        );
        assert_eq!(first.kind.as_deref(), Some("threading.Lock"));
        assert_eq!(report.uses[1].hold_nanos, first.wait_nanos);
        assert_eq!(report.per_lock.len(), 1);
        assert_eq!(
            report.per_lock[0].stats,
            UseStats {
                uses: 2,
                total_wait_nanos: 40 * MS,
                max_wait_nanos: 40 * MS,
                total_hold_nanos: 60 * MS,
                max_hold_nanos: 40 * MS,
            }
        );
        assert_eq!(report.per_lock[0].holders, ["12", "13"]);
        let holders: Vec<&str> = report
            .per_holder
            .iter()
            .map(|h| h.holder.as_str())
            .collect();
        assert_eq!(holders, ["13", "12"]);
        assert!(report.inversions.is_empty());
    }

    #[test]
    fn instants_fall_back_to_the_span_and_the_attributes() {
        // No events: requested = start, acquired = start + wait_ns, released = end.
        let mut s = span(1, None, "lock cache", 100, 400);
        s.attributes = vec![
            KeyValue::new(LOCK_WAIT_NS, 50i64),
            KeyValue::new("thread.id", 7i64),
        ];
        // Only hold_ns: acquired = end − hold (a timed-out request has hold 0: all wait).
        let mut timed_out = span(2, None, "lock cache", 100, 400);
        timed_out.attributes = vec![KeyValue::new(LOCK_HOLD_NS, 0i64)];
        // Named `lock …` but nothing marks it as a lock span: not one.
        let unrelated = span(3, None, "lock screen", 0, 10);
        let uses = lock_uses(&trace(1, vec![s, timed_out, unrelated]));
        assert_eq!(uses.len(), 2);
        let u = &uses[0];
        assert_eq!(
            (u.lock.as_str(), u.holder.as_str()),
            ("cache", "7"),
            "name from the span name, holder from thread.id"
        );
        assert_eq!((u.requested, u.acquired, u.released), (100, 150, 400));
        assert_eq!((u.wait_nanos, u.hold_nanos), (50, 250));
        let t = &uses[1];
        assert_eq!((t.acquired, t.wait_nanos, t.hold_nanos), (400, 300, 0));
        assert_eq!(t.holder, "");
    }

    #[test]
    fn odd_input_never_panics() {
        let mut backwards = span(1, None, "lock x", 500, 100);
        backwards.attributes = vec![
            KeyValue::new(LOCK_WAIT_NS, -5i64),
            KeyValue::new(LOCK_HOLD_NS, "lots"),
        ];
        backwards.events = vec![Event {
            time_unix_nano: 50,
            name: EVENT_RELEASED.into(),
            ..Event::default()
        }];
        let mut huge = span(2, Some(1), "lock y", 0, u64::MAX);
        huge.attributes = vec![KeyValue::new(LOCK_WAIT_NS, i64::MAX)];
        let report = analyze(&[trace(1, vec![backwards, huge])]);
        assert_eq!(report.uses.len(), 2);
        for u in &report.uses {
            assert!(u.requested <= u.acquired && u.acquired <= u.released);
        }
        assert!(timeline(&report.uses, 1_000).len() == 6);
    }

    #[test]
    fn nested_spans_in_both_orders_are_an_inversion() {
        // Holder 12 takes a then b (nested spans); holder 13, in another trace, b then a.
        let one = trace(
            1,
            vec![
                lock_span(1, None, "a", "12", 0, 0, 100),
                lock_span(2, Some(1), "b", "12", 10, 10, 20),
            ],
        );
        let two = trace(
            2,
            vec![
                lock_span(1, None, "b", "13", 0, 0, 100),
                lock_span(2, Some(1), "a", "13", 10, 10, 20),
            ],
        );
        let report = analyze(&[one, two]);
        assert_eq!(report.inversions.len(), 1);
        let inv = &report.inversions[0];
        assert_eq!((inv.lock_a.as_str(), inv.lock_b.as_str()), ("a", "b"));
        assert_eq!(
            (inv.a_then_b.holder.as_str(), inv.b_then_a.holder.as_str()),
            ("12", "13")
        );
        assert_eq!(inv.a_then_b.trace_id, TraceId([1; 16]));
        assert_eq!(inv.a_then_b.outer_span_id, SpanId([1; 8]));
        assert_eq!(inv.a_then_b.inner_span_id, SpanId([2; 8]));
        assert_eq!(inv.b_then_a.trace_id, TraceId([2; 16]));
        assert_eq!(
            (inv.a_then_b_count, inv.b_then_a_count, inv.traces),
            (1, 1, 2)
        );
    }

    #[test]
    fn overlap_within_one_holder_counts_but_sequence_and_other_holders_do_not() {
        // Holder 5 holds a (0..100) and asks for b at 10 as a sibling span: a → b.
        // Later holder 5 takes b (200..300) and then a (300..400) one after the other: no order.
        // Holder 6 holds b while holder 7 takes a: different holders, no order.
        let t = trace(
            1,
            vec![
                span(9, None, "root", 0, 1_000),
                lock_span(1, Some(9), "a", "5", 0, 0, 100),
                lock_span(2, Some(9), "b", "5", 10, 10, 20),
                lock_span(3, Some(9), "b", "5", 200, 200, 300),
                lock_span(4, Some(9), "a", "5", 300, 300, 400),
                lock_span(5, Some(9), "b", "6", 500, 500, 600),
                lock_span(6, Some(9), "a", "7", 510, 510, 520),
            ],
        );
        let parsed = parse(&t);
        let orders = nesting(&t, &parsed);
        let pairs: Vec<(&str, &str)> = orders
            .iter()
            .map(|o| (o.outer.as_str(), o.inner.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "b")]);
        assert!(analyze(&[t]).inversions.is_empty());
    }

    #[test]
    fn a_reentrant_lock_and_a_parent_at_the_same_instant_are_not_inversions() {
        // RLock re-entered (same name nested) and a child requested at the parent's very instant.
        let t = trace(
            1,
            vec![
                lock_span(1, None, "a", "5", 0, 0, 100),
                lock_span(2, Some(1), "a", "5", 0, 0, 50),
                lock_span(3, Some(2), "b", "5", 0, 0, 10),
            ],
        );
        let parsed = parse(&t);
        let orders = nesting(&t, &parsed);
        assert_eq!(orders.len(), 2, "{orders:?}");
        assert!(
            orders
                .iter()
                .all(|o| (o.outer.as_str(), o.inner.as_str()) == ("a", "b"))
        );
        assert!(analyze(&[t]).inversions.is_empty());
    }

    #[test]
    fn the_timeline_frees_before_it_takes_at_one_instant() {
        let t = trace(
            1,
            vec![
                lock_span(1, None, "db", "12", 10, 10, 50),
                lock_span(2, None, "db", "13", 10, 50, 70),
            ],
        );
        let events = timeline(&lock_uses(&t), 10);
        let seen: Vec<(u64, &str, &str)> = events
            .iter()
            .map(|e| (e.offset_nanos, e.holder.as_str(), e.event.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, "12", "requested"),
                (0, "12", "acquired"),
                (0, "13", "requested"),
                (40, "12", "released"),
                (40, "13", "acquired"),
                (60, "13", "released"),
            ]
        );
        assert_eq!(events[4].wait_ns, Some(40));
        assert_eq!(events[3].hold_ns, Some(40));
    }
}
