//! The span tree of one trace.

use devtrace_model::{SpanBatch, SpanId};
use std::collections::HashMap;

/// Parent/child structure over a batch's spans (indices into `batch.spans`).
///
/// Spans whose parent is absent (not yet received, or outside the trace) become roots, as do
/// spans caught in a parent cycle, so every span appears exactly once in [`TraceTree::walk`].
#[derive(Debug, Clone)]
pub struct TraceTree {
    pub roots: Vec<usize>,
    /// Children of each span, ordered by start time.
    pub children: Vec<Vec<usize>>,
    /// Duration minus the time covered by children (clipped to the span).
    pub self_time: Vec<u64>,
    /// The parent of each span in the tree (`None` for a root).
    pub parent: Vec<Option<usize>>,
}

impl TraceTree {
    pub fn build(batch: &SpanBatch) -> Self {
        let spans = &batch.spans;
        let mut index: HashMap<SpanId, usize> = HashMap::with_capacity(spans.len());
        for (i, span) in spans.iter().enumerate() {
            index.entry(span.span_id).or_insert(i);
        }
        let mut children = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        for (i, span) in spans.iter().enumerate() {
            match span.parent_span_id.and_then(|p| index.get(&p)).copied() {
                Some(parent) if parent != i => children[parent].push(i),
                _ => roots.push(i),
            }
        }
        let by_start = |a: &usize, b: &usize| {
            (spans[*a].start_unix_nano, *a).cmp(&(spans[*b].start_unix_nano, *b))
        };
        roots.sort_by(by_start);
        for list in &mut children {
            list.sort_by(by_start);
        }
        let mut tree = Self {
            roots,
            children,
            self_time: vec![0; spans.len()],
            parent: vec![None; spans.len()],
        };
        // Spans in a parent cycle are unreachable from any root: promote one per cycle.
        let mut seen = vec![false; spans.len()];
        tree.walk().for_each(|(i, _)| seen[i] = true);
        while let Some(orphan) = seen.iter().position(|s| !s) {
            tree.roots.push(orphan);
            for (child, _) in tree.walk_from(orphan) {
                seen[child] = true;
            }
            // The promoted span keeps its child edge from the cycle; drop it to stay a tree.
            for list in &mut tree.children {
                list.retain(|c| *c != orphan);
            }
        }
        for (p, list) in tree.children.iter().enumerate() {
            for &c in list {
                tree.parent[c] = Some(p);
            }
        }
        tree.self_time = (0..spans.len())
            .map(|i| {
                let span = &spans[i];
                let covered = covered_time(
                    span.start_unix_nano,
                    span.end_unix_nano,
                    tree.children[i]
                        .iter()
                        .map(|c| (spans[*c].start_unix_nano, spans[*c].end_unix_nano)),
                );
                span.duration_nanos().saturating_sub(covered)
            })
            .collect();
        tree
    }

    /// Every span once, depth-first, children in start order: `(span index, depth)`.
    pub fn walk(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|r| (*r, 0)).collect();
        std::iter::from_fn(move || {
            let (node, depth) = stack.pop()?;
            stack.extend(self.children[node].iter().rev().map(|c| (*c, depth + 1)));
            Some((node, depth))
        })
    }

    fn walk_from(&self, start: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut stack = vec![(start, 0)];
        let mut visited = std::collections::HashSet::new();
        while let Some((node, depth)) = stack.pop() {
            if !visited.insert(node) {
                continue;
            }
            out.push((node, depth));
            stack.extend(self.children[node].iter().map(|c| (*c, depth + 1)));
        }
        out
    }

    /// Depth of each span in [`TraceTree::walk`] order.
    pub fn depths(&self, span_count: usize) -> Vec<usize> {
        let mut depths = vec![0; span_count];
        for (i, depth) in self.walk() {
            depths[i] = depth;
        }
        depths
    }
}

/// Length of the union of `intervals` clipped to `[start, end)`.
fn covered_time(start: u64, end: u64, intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut clipped: Vec<(u64, u64)> = intervals
        .map(|(s, e)| (s.max(start), e.min(end)))
        .filter(|(s, e)| s < e)
        .collect();
    clipped.sort_unstable();
    let mut total = 0;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in clipped {
        match current {
            Some((cs, ce)) if s <= ce => current = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                current = Some((s, e));
            }
            None => current = Some((s, e)),
        }
    }
    total + current.map_or(0, |(s, e)| e - s)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use devtrace_model::*;

    pub fn span(id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
        Span {
            flags: 0,
            ..Span::new(
                TraceId([1; 16]),
                SpanId([id; 8]),
                parent.map(|p| SpanId([p; 8])),
                name,
                start,
                end,
            )
        }
    }

    pub fn batch(spans: Vec<Span>) -> SpanBatch {
        SpanBatch {
            resources: vec![Resource::default()],
            scopes: vec![Scope::default()],
            spans,
        }
    }

    #[test]
    fn walks_depth_first_in_start_order_with_orphans_as_roots() {
        let b = batch(vec![
            span(3, Some(1), "late-child", 50, 60),
            span(1, None, "root", 0, 100),
            span(2, Some(1), "early-child", 10, 40),
            span(4, Some(2), "grandchild", 15, 20),
            span(5, Some(99), "orphan", 5, 6),
        ]);
        let tree = TraceTree::build(&b);
        let order: Vec<(&str, usize)> = tree
            .walk()
            .map(|(i, d)| (b.spans[i].name.as_str(), d))
            .collect();
        assert_eq!(
            order,
            [
                ("root", 0),
                ("early-child", 1),
                ("grandchild", 2),
                ("late-child", 1),
                ("orphan", 0)
            ]
        );
    }

    #[test]
    fn self_time_subtracts_the_union_of_children() {
        let b = batch(vec![
            span(1, None, "root", 0, 100),
            span(2, Some(1), "a", 10, 40),
            span(3, Some(1), "b", 30, 50), // overlaps a: union is 10..50
            span(4, Some(1), "c", 90, 130), // clipped at the parent's end
        ]);
        let tree = TraceTree::build(&b);
        assert_eq!(tree.self_time[0], 100 - 40 - 10);
        assert_eq!(tree.self_time[1], 30);
    }

    #[test]
    fn a_parent_cycle_still_shows_every_span_once() {
        let b = batch(vec![
            span(1, Some(2), "a", 0, 10),
            span(2, Some(1), "b", 0, 10),
        ]);
        let tree = TraceTree::build(&b);
        let mut seen: Vec<usize> = tree.walk().map(|(i, _)| i).collect();
        seen.sort();
        assert_eq!(seen, [0, 1]);
    }
}
