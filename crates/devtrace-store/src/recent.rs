//! The span ids of recently written traces, kept by the writer so that a re-sent span is
//! recognised without reading the store.
//!
//! A span is identified by (trace id, span id); receiving it again must store nothing new.
//! Most spans of a firehose belong to traces the writer has never seen, and those pay nothing
//! here but one map probe. A trace that already exists needs its stored span ids: the writer
//! looks here first and, on a miss, reads them from the stored chunks and adds them. Every
//! entry holds *all* the span ids stored for its trace, or is absent: entries are made from a
//! new trace or from a full read, grow with each append, and are dropped whole (evicted, or
//! when anything else may have changed the trace: a merge, a delete, another writer, a failed
//! transaction).
//!
//! The cache is bounded by the number of span ids it holds ([`RecentSpans::new`]); the least
//! recently written traces are evicted first. It must not touch the database.

use devtrace_model::{SpanId, TraceId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

/// Span ids kept by default: ~8 MB of ids, several seconds of a 100k spans/s firehose and
/// hours of a developer's machine.
pub const DEFAULT_CAPACITY: usize = 1_000_000;

/// Span ids as integers, hashed by splitmix64's finaliser: ids are usually random already, but
/// some SDKs count, and the set is probed once per received span.
type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn key(id: &SpanId) -> u64 {
    u64::from_ne_bytes(id.0)
}

/// The stored span ids of one trace.
pub struct KnownSpans<'a>(&'a IdSet);

impl KnownSpans<'_> {
    pub fn holds(&self, id: &SpanId) -> bool {
        self.0.contains(&key(id))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct Entry {
    ids: IdSet,
    /// When the trace was last written, in [`RecentSpans::clock`] ticks.
    touched: u64,
}

/// The stored span ids of recently written traces (see the module documentation).
pub struct RecentSpans {
    capacity: usize,
    held: usize,
    clock: u64,
    entries: HashMap<TraceId, Entry>,
    /// Traces in the order they were touched; an item whose tick is older than its entry's
    /// `touched` is stale and skipped.
    order: VecDeque<(TraceId, u64)>,
}

impl RecentSpans {
    /// A cache holding at most `capacity` span ids (a single larger trace is still kept, alone).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            held: 0,
            clock: 0,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The stored span ids of `trace`, if the cache knows them.
    pub fn known(&self, trace: &TraceId) -> Option<KnownSpans<'_>> {
        self.entries.get(trace).map(|e| KnownSpans(&e.ids))
    }

    /// Records that `ids` are now stored for `trace`. For a trace not in the cache, `ids` must
    /// be every span id stored for it (a new trace, or one just read in full).
    pub fn add(&mut self, trace: TraceId, ids: &[SpanId]) {
        self.clock += 1;
        let touched = self.clock;
        let entry = self.entries.entry(trace).or_insert_with(|| Entry {
            ids: IdSet::default(),
            touched,
        });
        let before = entry.ids.len();
        entry.ids.extend(ids.iter().map(key));
        entry.touched = touched;
        self.held += entry.ids.len() - before;
        self.order.push_back((trace, touched));
        self.evict();
        if self.order.len() > 2 * self.entries.len() + 1024 {
            self.compact_order();
        }
    }

    /// Forgets one trace (it was merged, rewritten or deleted).
    pub fn forget(&mut self, trace: &TraceId) {
        if let Some(entry) = self.entries.remove(trace) {
            self.held -= entry.ids.len();
        }
    }

    /// Forgets everything (a transaction failed, or another writer changed the store).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.held = 0;
    }

    /// Span ids held.
    pub fn len(&self) -> usize {
        self.held
    }

    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    fn evict(&mut self) {
        while self.held > self.capacity && self.entries.len() > 1 {
            let Some((trace, tick)) = self.order.pop_front() else {
                break;
            };
            let current = self.entries.get(&trace).is_some_and(|e| e.touched == tick);
            if current {
                self.forget(&trace);
            }
        }
    }

    /// Drops stale items from the touch order, so it stays proportional to the entries.
    fn compact_order(&mut self) {
        let entries = &self.entries;
        self.order
            .retain(|(trace, tick)| entries.get(trace).is_some_and(|e| e.touched == *tick));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u8]) -> Vec<SpanId> {
        list.iter().map(|n| SpanId([*n; 8])).collect()
    }

    #[test]
    fn appends_unite() {
        let mut cache = RecentSpans::new(100);
        let trace = TraceId([1; 16]);
        assert!(cache.known(&trace).is_none());
        cache.add(trace, &ids(&[5, 2, 2]));
        cache.add(trace, &ids(&[3, 5, 9]));
        let known = cache.known(&trace).unwrap();
        assert_eq!(known.len(), 4);
        assert!(known.holds(&SpanId([9; 8])) && known.holds(&SpanId([2; 8])));
        assert!(!known.holds(&SpanId([4; 8])));
        assert_eq!(cache.len(), 4);
    }

    #[test]
    fn the_least_recently_written_trace_goes_first() {
        let mut cache = RecentSpans::new(4);
        let (a, b, c) = (TraceId([1; 16]), TraceId([2; 16]), TraceId([3; 16]));
        cache.add(a, &ids(&[1, 2]));
        cache.add(b, &ids(&[1, 2]));
        // Writing to `a` again makes `b` the oldest.
        cache.add(a, &ids(&[3]));
        assert!(cache.known(&b).is_none(), "b was evicted to make room");
        assert_eq!(cache.len(), 3);
        cache.add(c, &ids(&[1]));
        assert!(cache.known(&a).is_some() && cache.known(&c).is_some());
        assert_eq!(cache.len(), 4);
        // One trace larger than the whole capacity is kept, alone.
        let big: Vec<u8> = (0..10).collect();
        cache.add(TraceId([4; 16]), &ids(&big));
        assert_eq!(cache.len(), 10);
        assert!(cache.known(&a).is_none() && cache.known(&c).is_none());
    }

    #[test]
    fn forgetting_and_clearing_release_their_ids() {
        let mut cache = RecentSpans::new(100);
        cache.add(TraceId([1; 16]), &ids(&[1, 2, 3]));
        cache.add(TraceId([2; 16]), &ids(&[1]));
        cache.forget(&TraceId([1; 16]));
        assert_eq!(cache.len(), 1);
        cache.clear();
        assert!(cache.is_empty() && cache.known(&TraceId([2; 16])).is_none());
    }

    #[test]
    fn the_touch_order_stays_bounded_by_the_entries() {
        let mut cache = RecentSpans::new(1_000_000);
        let trace = TraceId([1; 16]);
        for n in 0..100_000u32 {
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&n.to_be_bytes());
            cache.add(trace, &[SpanId(id)]);
        }
        assert_eq!(cache.len(), 100_000);
        assert!(cache.order.len() <= 2 * cache.entries.len() + 1024);
    }
}
