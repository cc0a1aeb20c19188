//! Cache problems, from the `devtrace.cache.*` and `devtrace.input.hash` attributes (see
//! docs/conventions.md): the same work computed again and again with the same inputs, and a
//! cache key that maps different inputs to one entry.
//!
//! Repeated work is an operation (span name) with one `devtrace.input.hash` computed — not
//! served from a cache (`devtrace.cache.hit` true) — in several traces; the saving is the time of
//! every computation but the first. A key collision is one `devtrace.cache.key` of an operation
//! seen with different input hashes: a correctness problem (callers may get a result computed
//! for other inputs), so it carries no time saving.

use crate::AnalyzedTrace;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use devtrace_model::recorded::{name as q, quote_short};
use devtrace_model::{AnyValue, SpanId, TraceId};
use std::collections::{BTreeMap, BTreeSet};

/// The cache key the operation's result is stored under (string).
pub const CACHE_KEY: &str = "devtrace.cache.key";
/// Whether the result came from the cache (bool).
pub const CACHE_HIT: &str = "devtrace.cache.hit";
/// A hash of the operation's real inputs (string).
pub const INPUT_HASH: &str = "devtrace.input.hash";

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Repeated work: an operation computed with the same input hash, without a cache hit, in at
    /// least this many traces (3).
    pub min_repeat_traces: usize,
    /// Key collision: at least this many distinct input hashes under one cache key (2).
    pub min_colliding_inputs: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_repeat_traces: 3,
            min_colliding_inputs: 2,
        }
    }
}

/// A span that declares its inputs.
struct Work<'a> {
    operation: &'a str,
    trace_id: TraceId,
    span_id: SpanId,
    start: u64,
    duration: u64,
    input_hash: String,
    key: Option<String>,
    /// `devtrace.cache.hit`, when recorded.
    hit: Option<bool>,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut work: Vec<Work> = Vec::new();
    for trace in traces {
        for (index, _) in trace.tree.walk() {
            let span = trace.span(index);
            let Some(input_hash) = span
                .attr(INPUT_HASH)
                .map(AnyValue::to_display_string)
                .filter(|h| !h.is_empty())
            else {
                continue;
            };
            work.push(Work {
                operation: &span.name,
                trace_id: trace.trace_id,
                span_id: span.span_id,
                start: span.start_unix_nano,
                duration: span.duration_nanos(),
                input_hash,
                key: span
                    .attr(CACHE_KEY)
                    .map(AnyValue::to_display_string)
                    .filter(|k| !k.is_empty()),
                hit: span.attr(CACHE_HIT).and_then(truthy),
            });
        }
    }
    work.sort_by_key(|w| (w.start, w.trace_id, w.span_id));
    let mut by_operation: BTreeMap<&str, Vec<&Work>> = BTreeMap::new();
    for w in &work {
        by_operation.entry(w.operation).or_default().push(w);
    }
    let mut findings = Vec::new();
    for (operation, items) in by_operation {
        findings.extend(repeated(operation, &items, thresholds));
        findings.extend(collision(operation, &items, thresholds));
    }
    findings
}

fn truthy(value: &AnyValue) -> Option<bool> {
    match value {
        AnyValue::Bool(b) => Some(*b),
        AnyValue::Int(i) => Some(*i != 0),
        AnyValue::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "hit" => Some(true),
            "false" | "0" | "no" | "miss" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// (a) The same inputs computed in several traces.
fn repeated(operation: &str, items: &[&Work], thresholds: &Thresholds) -> Option<Finding> {
    // Per input hash, the computations (not cache hits), in time order.
    let mut by_input: BTreeMap<&str, Vec<&Work>> = BTreeMap::new();
    for w in items.iter().filter(|w| w.hit != Some(true)) {
        by_input.entry(&w.input_hash).or_default().push(w);
    }
    let mut groups: Vec<(&str, Vec<&Work>)> = by_input
        .into_iter()
        .filter(|(_, g)| distinct_traces(g) >= thresholds.min_repeat_traces.max(2))
        .collect();
    if groups.is_empty() {
        return None;
    }
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let repeats: Vec<&Work> = groups
        .iter()
        .flat_map(|(_, g)| g[1..].iter().copied())
        .collect();
    let total: u64 = repeats.iter().fold(0, |s, w| s.saturating_add(w.duration));
    let affected: BTreeSet<TraceId> = repeats.iter().map(|w| w.trace_id).collect();
    let occurrences = affected.len().max(1) as u64;
    let (hash, top) = &groups[0];
    let computed = top.len();
    let traces = distinct_traces(top);
    let misses = top.iter().filter(|w| w.hit == Some(false)).count();
    let keyed_miss = top
        .iter()
        .find(|w| w.hit == Some(false) && w.key.is_some())
        .and_then(|w| w.key.as_deref());
    let others = if groups.len() > 1 {
        format!(
            "; {} other input set{} repeated too",
            groups.len() - 1,
            if groups.len() == 2 { " is" } else { "s are" }
        )
    } else {
        String::new()
    };
    let how = if misses == computed {
        "its cache missed every time"
    } else {
        "never from a cache"
    };
    let title = format!(
        "{} computed {computed} times with the same inputs (input hash {}) in {traces} traces, {how}{others}: ≈ {} spent redoing it",
        q(operation),
        quote_short(hash, 12),
        human_duration(total),
    );
    let recommendation = match keyed_miss {
        Some(key) => format!(
            "Its cache (key {}) missed every time: the key probably includes something that changes between runs (a time, a random id) or entries expire too soon — key it by the input hash",
            quote_short(key, 60)
        ),
        None => format!(
            "Cache the result of {} keyed by its input hash (or memoise it): every repeat could be a lookup",
            q(operation)
        ),
    };
    let mut shown: Vec<&Work> = top.clone();
    shown.extend(groups[1..].iter().flat_map(|(_, g)| g.iter().copied()));
    Some(Finding {
        kind: FindingKind::CacheProblem,
        operation: Some(operation.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::CacheProblem.as_str(),
            operation,
            "repeated_work",
        ]),
        saving_nanos: total / occurrences,
        occurrences,
        numbers: BTreeMap::from([
            ("computations".to_owned(), computed as f64),
            ("traces".to_owned(), traces as f64),
            ("cache_misses".to_owned(), misses as f64),
            ("repeated_input_sets".to_owned(), groups.len() as f64),
            ("repeated_computations".to_owned(), repeats.len() as f64),
            ("total_saving_ns".to_owned(), total as f64),
            (
                "mean_duration_ns".to_owned(),
                top.iter().map(|w| w.duration as f64).sum::<f64>() / computed.max(1) as f64,
            ),
        ]),
        evidence: evidence(&shown),
        impact: Impact::of(ImpactBasis::Time),
    })
}

/// (b) One cache key, different inputs.
fn collision(operation: &str, items: &[&Work], thresholds: &Thresholds) -> Option<Finding> {
    let mut by_key: BTreeMap<&str, Vec<&Work>> = BTreeMap::new();
    for w in items {
        if let Some(key) = &w.key {
            by_key.entry(key).or_default().push(w);
        }
    }
    let mut colliding: Vec<(&str, Vec<&Work>, usize)> = by_key
        .into_iter()
        .map(|(k, g)| {
            let n = g
                .iter()
                .map(|w| w.input_hash.as_str())
                .collect::<BTreeSet<_>>()
                .len();
            (k, g, n)
        })
        .filter(|(_, _, n)| *n >= thresholds.min_colliding_inputs.max(2))
        .collect();
    if colliding.is_empty() {
        return None;
    }
    colliding.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(b.0)));
    let (key, uses, distinct) = &colliding[0];
    let hits = uses.iter().filter(|w| w.hit == Some(true)).count();
    let others = if colliding.len() > 1 {
        format!(" ({} other keys collide too)", colliding.len() - 1)
    } else {
        String::new()
    };
    // One span per distinct input, first seen first.
    let mut seen = BTreeSet::new();
    let shown: Vec<&Work> = uses
        .iter()
        .copied()
        .filter(|w| seen.insert(w.input_hash.as_str()))
        .collect();
    let all: Vec<&Work> = colliding
        .iter()
        .flat_map(|(_, g, _)| g.iter().copied())
        .collect();
    Some(Finding {
        kind: FindingKind::CacheProblem,
        operation: Some(operation.to_owned()),
        title: format!(
            "the cache key collides: {distinct} different inputs hit the same entry ({}, key {}){others}",
            q(operation),
            quote_short(key, 60)
        ),
        recommendation: "This is a correctness problem, not a speed one: callers can get a result computed for other inputs. Put everything the result depends on into the key (e.g. the input hash)".to_owned(),
        fingerprint: fingerprint(&[FindingKind::CacheProblem.as_str(), operation, "key_collision"]),
        saving_nanos: 0,
        occurrences: distinct_traces(&all) as u64,
        numbers: BTreeMap::from([
            ("distinct_inputs".to_owned(), *distinct as f64),
            ("uses".to_owned(), uses.len() as f64),
            ("hits".to_owned(), hits as f64),
            ("colliding_keys".to_owned(), colliding.len() as f64),
        ]),
        evidence: evidence(&shown),
        impact: Impact::of(ImpactBasis::Correctness),
    })
}

fn distinct_traces(items: &[&Work]) -> usize {
    items
        .iter()
        .map(|w| w.trace_id)
        .collect::<BTreeSet<_>>()
        .len()
}

/// Spans grouped by trace, at most [`MAX_EVIDENCE`] traces.
fn evidence(items: &[&Work]) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for w in items {
        if let Some(e) = out.iter_mut().find(|e| e.trace_id == w.trace_id) {
            e.span_ids.push(w.span_id);
        } else if out.len() < MAX_EVIDENCE {
            out.push(Evidence {
                trace_id: w.trace_id,
                span_ids: vec![w.span_id],
            });
        }
    }
    out
}

/// At most `max` characters, with "…" when cut.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::KeyValue;

    const MS: u64 = 1_000_000;

    /// Trace `n` whose root runs `render` for `ms` with the given attributes.
    fn run(n: u8, ms: u64, attributes: Vec<KeyValue>) -> AnalyzedTrace {
        let start = u64::from(n) * 1_000 * MS;
        let mut work = span(2, Some(1), "render", start, start + ms * MS);
        work.attributes = attributes;
        AnalyzedTrace::new(
            TraceId([n; 16]),
            batch(vec![span(1, None, "job", start, start + 1_000 * MS), work]),
        )
    }

    fn input(hash: &str) -> KeyValue {
        KeyValue::new(INPUT_HASH, hash)
    }

    #[test]
    fn the_same_inputs_computed_in_five_traces_is_repeated_work() {
        let traces: Vec<AnalyzedTrace> = (1..=5)
            .map(|n| run(n, 100 * u64::from(n), vec![input("3fa2c9d1e0b4a7f6")]))
            .collect();
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::CacheProblem);
        assert_eq!(
            f.title,
            "\"render\" computed 5 times with the same inputs (input hash \"3fa2c9d1e0b4…\") in 5 traces, never from a cache: ≈ 1.40 s spent redoing it"
        );
        // All but the first (200 + 300 + 400 + 500 ms), over the 4 runs that redid it.
        assert_eq!(f.numbers["total_saving_ns"], 1.4e9);
        assert_eq!((f.saving_nanos, f.occurrences), (350 * MS, 4));
        assert_eq!(f.evidence.len(), MAX_EVIDENCE);
        assert!(
            f.recommendation
                .starts_with("Cache the result of \"render\"")
        );
    }

    #[test]
    fn a_cache_that_always_misses_is_named_and_hits_do_not_count() {
        let miss = |n| {
            run(
                n,
                100,
                vec![
                    input("h"),
                    KeyValue::new(CACHE_KEY, format!("render:{n}")),
                    KeyValue::new(CACHE_HIT, false),
                ],
            )
        };
        let hit = run(4, 1, vec![input("h"), KeyValue::new(CACHE_HIT, true)]);
        let findings = detect(&[miss(1), miss(2), miss(3), hit], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0].title.contains("computed 3 times")
                && findings[0].title.contains("its cache missed every time"),
            "{}",
            findings[0].title
        );
        assert!(findings[0].recommendation.contains("key \"render:1\""));
        assert_eq!(findings[0].numbers["cache_misses"], 3.0);
    }

    #[test]
    fn two_identical_traces_are_not_enough() {
        let traces = [run(1, 100, vec![input("h")]), run(2, 100, vec![input("h")])];
        assert!(detect(&traces, &Thresholds::default()).is_empty());
        // Three traces, but one was a cache hit.
        let with_hit = [
            run(1, 100, vec![input("h")]),
            run(2, 100, vec![input("h")]),
            run(3, 1, vec![input("h"), KeyValue::new(CACHE_HIT, "true")]),
        ];
        assert!(detect(&with_hit, &Thresholds::default()).is_empty());
    }

    #[test]
    fn one_key_for_three_inputs_collides() {
        let keyed = |n: u8, hash: &str, hit: bool| {
            run(
                n,
                10,
                vec![
                    input(hash),
                    KeyValue::new(CACHE_KEY, "journal:2025-11-21"),
                    KeyValue::new(CACHE_HIT, hit),
                ],
            )
        };
        let traces = [
            keyed(1, "c1", false),
            keyed(2, "c2", true),
            keyed(3, "c3", true),
            keyed(4, "c2", true),
        ];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            f.title,
            "the cache key collides: 3 different inputs hit the same entry (\"render\", key \"journal:2025-11-21\")"
        );
        assert!(
            f.recommendation
                .starts_with("This is a correctness problem")
        );
        assert_eq!((f.saving_nanos, f.occurrences), (0, 4));
        assert_eq!(f.numbers["hits"], 3.0);
        // One span per distinct input.
        let traces_shown: Vec<TraceId> = f.evidence.iter().map(|e| e.trace_id).collect();
        assert_eq!(
            traces_shown,
            [TraceId([1; 16]), TraceId([2; 16]), TraceId([3; 16])]
        );
    }

    #[test]
    fn one_input_per_key_is_no_collision() {
        let keyed = |n: u8, key: &str, hash: &str| {
            run(
                n,
                10,
                vec![
                    input(hash),
                    KeyValue::new(CACHE_KEY, key),
                    KeyValue::new(CACHE_HIT, true),
                ],
            )
        };
        let traces = [
            keyed(1, "k1", "h1"),
            keyed(2, "k1", "h1"),
            keyed(3, "k2", "h2"),
        ];
        assert!(detect(&traces, &Thresholds::default()).is_empty());
    }
}
