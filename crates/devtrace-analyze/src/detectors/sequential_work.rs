//! Sequential independent work: siblings that run one after another although nothing in the
//! trace says one needs the other.
//!
//! **Rule.** Under one parent span, take the children that each last at least
//! [`Thresholds::min_child_share`] of the parent. Those that overlap another such child are
//! dropped (that part of the parent already runs concurrently). From the rest, a group is formed
//! greedily, longest first, of siblings with no data dependency visible in the trace: no span
//! link between their subtrees (in either direction, in [`Span::links`]) and no lock in common
//! (a `devtrace.lock.name` attribute of the same value anywhere in both subtrees). A group of at
//! least [`Thresholds::min_group_size`] is reported when its saving is at least
//! [`Thresholds::min_saving_share`] of the parent.
//!
//! **Saving model.** Run concurrently, the group takes as long as its slowest member, so the
//! saving is `sum − max` of the members' durations. Across runs the finding is aggregated per
//! (parent operation, set of child names): `occurrences` is the number of traces where the group
//! appears, `saving_nanos` the mean saving per such trace (summed over the parent's instances in
//! it).
//!
//! **Does not fire on** siblings that already overlap, siblings linked by a span link or sharing
//! a lock, short siblings (below the share threshold; reordering them is not worth it), or groups
//! whose saving is a negligible part of the parent. It cannot see data that flows outside the
//! trace (a file written by one and read by the next); the recommendation says "in the trace"
//! for that reason.
//!
//! [`Span::links`]: devtrace_model::Span::links

use crate::finding::{MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::{SpanId, TraceId};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The attribute naming a lock a span holds or waits on.
const LOCK_NAME: &str = "devtrace.lock.name";

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest duration, as a share of the parent's, for a child to be part of a group.
    /// Default 0.05 (5 %): shorter children are not worth restructuring code for, and
    /// including them would only add noise to the title.
    pub min_child_share: f64,
    /// Smallest saving (`sum − max` of the group), as a share of the parent's duration, worth
    /// reporting. Default 0.05 (5 %): below that the change is within run-to-run noise.
    pub min_saving_share: f64,
    /// Smallest number of siblings in a group. Default 2: two independent calls in a row are
    /// already a candidate for running concurrently.
    pub min_group_size: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_child_share: 0.05,
            min_saving_share: 0.05,
            min_group_size: 2,
        }
    }
}

/// One group of sequential independent siblings under one parent span.
#[derive(Debug)]
struct Group {
    trace: usize,
    parent_id: SpanId,
    /// Members in start order.
    span_ids: Vec<SpanId>,
    names: Vec<String>,
    parent_nanos: u64,
    sum_nanos: u64,
    max_nanos: u64,
}

impl Group {
    fn saving(&self) -> u64 {
        self.sum_nanos.saturating_sub(self.max_nanos)
    }
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    // (parent name, set of child names) → groups, in trace order.
    let mut by_subject: BTreeMap<(String, BTreeSet<String>), Vec<Group>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for (parent, _) in trace.tree.walk() {
            if let Some(group) = group_under(trace, t, parent, thresholds) {
                let names: BTreeSet<String> = group.names.iter().cloned().collect();
                by_subject
                    .entry((trace.span(parent).name.clone(), names))
                    .or_default()
                    .push(group);
            }
        }
    }
    by_subject
        .into_iter()
        .map(|((parent, names), groups)| finding(traces, &parent, &names, &groups))
        .collect()
}

/// The group of sequential independent children of `parent`, if there is one worth reporting.
fn group_under(
    trace: &AnalyzedTrace,
    trace_index: usize,
    parent: usize,
    thresholds: &Thresholds,
) -> Option<Group> {
    let parent_nanos = trace.span(parent).duration_nanos();
    let children = &trace.tree.children[parent];
    if parent_nanos == 0 || children.len() < thresholds.min_group_size.max(2) {
        return None;
    }
    let min_child = thresholds.min_child_share * parent_nanos as f64;
    let significant: Vec<usize> = children
        .iter()
        .copied()
        .filter(|c| {
            let d = trace.span(*c).duration_nanos();
            d > 0 && d as f64 >= min_child
        })
        .collect();
    let overlaps = |a: usize, b: usize| {
        let (a, b) = (trace.span(a), trace.span(b));
        a.start_unix_nano < b.end_unix_nano && b.start_unix_nano < a.end_unix_nano
    };
    let mut candidates: Vec<usize> = significant
        .iter()
        .copied()
        .filter(|a| !significant.iter().any(|b| b != a && overlaps(*a, *b)))
        .collect();
    if candidates.len() < thresholds.min_group_size.max(2) {
        return None;
    }
    // Longest first, so the greedy choice keeps the members that matter most.
    candidates.sort_by_key(|c| (std::cmp::Reverse(trace.span(*c).duration_nanos()), *c));
    let footprints: Vec<Footprint> = candidates
        .iter()
        .map(|c| Footprint::of(trace, *c))
        .collect();
    let mut chosen: Vec<usize> = Vec::new();
    for i in 0..candidates.len() {
        if chosen
            .iter()
            .all(|j| footprints[i].independent_of(&footprints[*j]))
        {
            chosen.push(i);
        }
    }
    if chosen.len() < thresholds.min_group_size.max(2) {
        return None;
    }
    let mut members: Vec<usize> = chosen.iter().map(|i| candidates[*i]).collect();
    members.sort_by_key(|c| (trace.span(*c).start_unix_nano, *c));
    let durations = members.iter().map(|c| trace.span(*c).duration_nanos());
    let group = Group {
        trace: trace_index,
        parent_id: trace.span(parent).span_id,
        span_ids: members.iter().map(|c| trace.span(*c).span_id).collect(),
        names: members
            .iter()
            .map(|c| trace.span(*c).name.clone())
            .collect(),
        parent_nanos,
        sum_nanos: durations.clone().fold(0u64, u64::saturating_add),
        max_nanos: durations.max().unwrap_or(0),
    };
    (group.saving() as f64 >= thresholds.min_saving_share * parent_nanos as f64
        && group.saving() > 0)
        .then_some(group)
}

/// What a child's subtree exposes of its data flow: its spans, the spans it links to, its locks.
struct Footprint {
    spans: HashSet<(TraceId, SpanId)>,
    links: HashSet<(TraceId, SpanId)>,
    locks: HashSet<String>,
}

impl Footprint {
    fn of(trace: &AnalyzedTrace, child: usize) -> Self {
        let mut footprint = Self {
            spans: HashSet::new(),
            links: HashSet::new(),
            locks: HashSet::new(),
        };
        for node in std::iter::once(child).chain(trace.descendants(child)) {
            let span = trace.span(node);
            footprint.spans.insert((span.trace_id, span.span_id));
            footprint
                .links
                .extend(span.links.iter().map(|l| (l.trace_id, l.span_id)));
            let lock = span.attr(LOCK_NAME).map(|v| v.to_display_string());
            footprint.locks.extend(lock.filter(|l| !l.is_empty()));
        }
        footprint
    }

    fn independent_of(&self, other: &Self) -> bool {
        self.links.is_disjoint(&other.spans)
            && other.links.is_disjoint(&self.spans)
            && self.locks.is_disjoint(&other.locks)
    }
}

fn finding(
    traces: &[AnalyzedTrace],
    parent: &str,
    names: &BTreeSet<String>,
    groups: &[Group],
) -> Finding {
    // Saving per affected trace: the sum over the parent's instances in it.
    let mut per_trace: BTreeMap<usize, u64> = BTreeMap::new();
    for group in groups {
        let entry = per_trace.entry(group.trace).or_default();
        *entry = entry.saturating_add(group.saving());
    }
    let runs = per_trace.len() as u64;
    let saving = mean_u64(per_trace.values().copied());
    let count = groups.len().max(1) as f64;
    let mean_of = |f: fn(&Group) -> u64| {
        (groups.iter().map(|g| f(g) as f64).sum::<f64>() / count).round() as u64
    };
    let (parent_nanos, sum_nanos, max_nanos) = (
        mean_of(|g| g.parent_nanos),
        mean_of(|g| g.sum_nanos),
        mean_of(|g| g.max_nanos),
    );
    let listed = groups
        .first()
        .map(|g| list_names(&g.names))
        .unwrap_or_default();
    let title = format!(
        "{listed} run one after another under {parent}, {} in all; concurrently they would take ≈ {}",
        human_duration(sum_nanos),
        human_duration(max_nanos),
    );
    let recommendation = format!(
        "run them concurrently (no data flows between them in the trace); saving ≈ {} per run",
        human_duration(saving)
    );
    let mut parts: Vec<&str> = vec![FindingKind::SequentialWork.as_str(), parent];
    parts.extend(names.iter().map(String::as_str));
    let group_size = groups.first().map_or(0, |g| g.span_ids.len());
    let numbers = BTreeMap::from([
        ("parent_nanos".to_owned(), parent_nanos as f64),
        ("sequential_nanos".to_owned(), sum_nanos as f64),
        ("concurrent_nanos".to_owned(), max_nanos as f64),
        ("saving_nanos".to_owned(), saving as f64),
        ("group_size".to_owned(), group_size as f64),
        ("runs".to_owned(), runs as f64),
        ("instances".to_owned(), groups.len() as f64),
        (
            "saving_share_of_parent".to_owned(),
            if parent_nanos == 0 {
                0.0
            } else {
                sum_nanos.saturating_sub(max_nanos) as f64 / parent_nanos as f64
            },
        ),
    ]);
    Finding {
        kind: FindingKind::SequentialWork,
        operation: Some(parent.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&parts),
        saving_nanos: saving,
        occurrences: runs,
        numbers,
        evidence: groups
            .iter()
            .take(MAX_EVIDENCE)
            .map(|g| Evidence {
                trace_id: traces[g.trace].trace_id,
                span_ids: std::iter::once(g.parent_id)
                    .chain(g.span_ids.iter().copied())
                    .collect(),
            })
            .collect(),
    }
}

fn mean_u64(values: impl Iterator<Item = u64>) -> u64 {
    let (sum, n) = values.fold((0u128, 0u128), |(s, n), v| (s + u128::from(v), n + 1));
    (sum + n / 2).checked_div(n).map_or(0, |mean| mean as u64)
}

/// "a, b and c" in the given order; repeated names once, with their count ("llm.call ×3").
fn list_names(names: &[String]) -> String {
    let mut unique: Vec<(&str, usize)> = Vec::new();
    for name in names {
        match unique.iter_mut().find(|(n, _)| *n == name.as_str()) {
            Some((_, count)) => *count += 1,
            None => unique.push((name.as_str(), 1)),
        }
    }
    let items: Vec<String> = unique
        .iter()
        .map(|(name, count)| {
            if *count > 1 {
                format!("{name} ×{count}")
            } else {
                (*name).to_owned()
            }
        })
        .collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Link, Span};

    const S: u64 = 1_000_000_000;
    const MS: u64 = 1_000_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    fn id(n: u8) -> SpanId {
        SpanId([n; 8])
    }

    /// journal.generate: context.gather (0.3 s), then summary (9.04 s), dialogue (4.89 s) and
    /// technical decisions (1.67 s), one after another. The three LLM calls sum to 15.6 s; with
    /// context.gather before them the parent lasts 15.9 s.
    fn journal(n: u8, offset: u64) -> AnalyzedTrace {
        journal_scaled(n, offset, 1)
    }

    /// The journal run with every duration multiplied by `scale`.
    fn journal_scaled(n: u8, offset: u64, scale: u64) -> AnalyzedTrace {
        let at = |ms: u64| offset + ms * MS * scale;
        trace(
            n,
            vec![
                span(1, None, "journal.generate", at(0), at(15_900)),
                span(2, Some(1), "context.gather", at(0), at(300)),
                span(3, Some(1), "summary.generate", at(300), at(9_340)),
                span(4, Some(1), "dialogue.generate", at(9_340), at(14_230)),
                span(
                    5,
                    Some(1),
                    "technical_decisions.generate",
                    at(14_230),
                    at(15_900),
                ),
            ],
        )
    }

    #[test]
    fn the_journal_story_groups_the_three_llm_calls() {
        let findings = detect(&[journal(1, 0)], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::SequentialWork);
        assert_eq!(f.operation.as_deref(), Some("journal.generate"));
        assert_eq!(f.saving_nanos, 6_560 * MS);
        assert_eq!(f.occurrences, 1);
        assert_eq!(f.numbers["sequential_nanos"], (15_600 * MS) as f64);
        assert_eq!(f.numbers["concurrent_nanos"], (9_040 * MS) as f64);
        assert_eq!(f.numbers["group_size"], 3.0);
        assert_eq!(
            f.evidence,
            [Evidence {
                trace_id: TraceId([1; 16]),
                span_ids: vec![id(1), id(3), id(4), id(5)],
            }]
        );
        assert!(
            f.title.starts_with(
                "summary.generate, dialogue.generate and technical_decisions.generate run one \
                 after another under journal.generate, 15.60 s in all; concurrently they would \
                 take ≈ 9.04 s"
            ),
            "{}",
            f.title
        );
        assert!(
            f.title.contains(&human_duration(15_600 * MS)),
            "{}",
            f.title
        );
        assert!(f.title.contains(&human_duration(9_040 * MS)), "{}", f.title);
        assert!(
            f.recommendation.contains(&human_duration(6_560 * MS)),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn runs_aggregate_into_one_finding_with_a_stable_fingerprint() {
        let traces: Vec<AnalyzedTrace> = (1..=7)
            .map(|n| journal(n, u64::from(n) * 100 * S))
            .collect();
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.occurrences, 7);
        assert_eq!(f.saving_nanos, 6_560 * MS);
        assert_eq!(f.evidence.len(), MAX_EVIDENCE);
        assert_eq!(f.evidence[4].trace_id, TraceId([5; 16]));
        let single = &detect(&traces[6..], &Thresholds::default())[0];
        assert_eq!(single.fingerprint, f.fingerprint);
    }

    #[test]
    fn saving_is_the_mean_over_affected_runs() {
        // Run 2: the same calls, each twice as long (parent too).
        let slow = journal_scaled(2, 0, 2);
        let f = &detect(&[journal(1, 0), slow], &Thresholds::default())[0];
        assert_eq!(f.occurrences, 2);
        assert_eq!(f.saving_nanos, (6_560 + 13_120) / 2 * MS);
    }

    #[test]
    fn overlapping_siblings_do_not_fire() {
        let t = trace(
            1,
            vec![
                span(1, None, "p", 0, 10 * S),
                span(2, Some(1), "a", 0, 6 * S),
                span(3, Some(1), "b", 5 * S, 10 * S),
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // Fully concurrent too.
        let t = trace(
            1,
            vec![
                span(1, None, "p", 0, 10 * S),
                span(2, Some(1), "a", 0, 10 * S),
                span(3, Some(1), "b", 0, 9 * S),
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
    }

    #[test]
    fn siblings_linked_by_a_span_link_do_not_fire() {
        let mut spans = vec![
            span(1, None, "p", 0, 10 * S),
            span(2, Some(1), "produce", 0, 5 * S),
            span(3, Some(1), "consume", 5 * S, 10 * S),
            span(4, Some(3), "consume.read", 5 * S, 6 * S),
        ];
        // The link sits on a grandchild and points at the other sibling: still a dependency.
        spans[3].links.push(Link {
            trace_id: TraceId([1; 16]),
            span_id: id(2),
            trace_state: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
            flags: 0,
        });
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn siblings_sharing_a_lock_do_not_fire() {
        let mut spans = vec![
            span(1, None, "p", 0, 10 * S),
            span(2, Some(1), "a", 0, 5 * S),
            span(3, Some(1), "b", 5 * S, 10 * S),
            span(4, Some(2), "lock.wait", 0, MS),
            span(5, Some(3), "lock.wait", 5 * S, 5 * S + MS),
        ];
        spans[3].attributes.push(KeyValue::new(LOCK_NAME, "db"));
        spans[4].attributes.push(KeyValue::new(LOCK_NAME, "db"));
        assert!(detect(&[trace(1, spans.clone())], &Thresholds::default()).is_empty());
        // Different locks: independent.
        spans[4].attributes[0] = KeyValue::new(LOCK_NAME, "cache");
        assert_eq!(detect(&[trace(1, spans)], &Thresholds::default()).len(), 1);
    }

    #[test]
    fn a_dependent_sibling_is_left_out_of_the_group() {
        // c links to a; b is independent of both. Longest first: a (5 s), b (3 s); c (2 s)
        // depends on a, so the group is {a, b}: saving 3 s.
        let mut spans = vec![
            span(1, None, "p", 0, 10 * S),
            span(2, Some(1), "a", 0, 5 * S),
            span(3, Some(1), "b", 5 * S, 8 * S),
            span(4, Some(1), "c", 8 * S, 10 * S),
        ];
        spans[3].links.push(Link {
            trace_id: TraceId([1; 16]),
            span_id: id(2),
            trace_state: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
            flags: 0,
        });
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].saving_nanos, 3 * S);
        assert_eq!(findings[0].evidence[0].span_ids, [id(1), id(2), id(3)]);
    }

    #[test]
    fn a_small_saving_does_not_fire() {
        // 9.6 s + 0.4 s: b is 4 % of the parent, below the 5 % child share.
        let t = trace(
            1,
            vec![
                span(1, None, "p", 0, 10 * S),
                span(2, Some(1), "a", 0, 9_600 * MS),
                span(3, Some(1), "b", 9_600 * MS, 10 * S),
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        // With a lower child share, the saving (0.4 s = 4 %) is still below 5 %.
        let lenient = Thresholds {
            min_child_share: 0.01,
            ..Thresholds::default()
        };
        let t = trace(
            1,
            vec![
                span(1, None, "p", 0, 10 * S),
                span(2, Some(1), "a", 0, 9_600 * MS),
                span(3, Some(1), "b", 9_600 * MS, 10 * S),
            ],
        );
        assert!(detect(&[t], &lenient).is_empty());
    }

    #[test]
    fn odd_input_does_not_panic() {
        let t = trace(
            1,
            vec![
                span(1, None, "p", 10, 0), // ends before it starts
                span(2, Some(1), "a", 0, 5),
                span(3, Some(1), "b", 5, 10),
                span(4, Some(9), "orphan", 0, 5), // missing parent
                span(5, Some(4), "x", 3, 1),
                span(6, Some(4), "y", 1, 2),
            ],
        );
        assert!(detect(&[t], &Thresholds::default()).is_empty());
        assert!(detect(&[], &Thresholds::default()).is_empty());
    }

    #[test]
    fn repeated_names_are_counted_in_the_title() {
        assert_eq!(
            list_names(&["a".into(), "b".into(), "a".into()]),
            "a ×2 and b"
        );
        assert_eq!(list_names(&["a".into()]), "a");
    }
}
