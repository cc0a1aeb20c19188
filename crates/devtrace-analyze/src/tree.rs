//! The span tree of one trace, and its pre-order numbering: each span's subtree is one
//! contiguous run of [`TraceTree::preorder`] (an Euler interval), so a subtree's spans, its
//! size and sums over it cost no walk — analyses that look under every span of a 100,000-deep
//! chain stay linear instead of quadratic.

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
    /// Every span once, depth-first, children in start order (the order of [`Self::walk`]).
    pub preorder: Vec<usize>,
    /// Each span's position in [`Self::preorder`].
    pub position: Vec<usize>,
    /// Each span's subtree is `preorder[position[i]..subtree_end[i]]` (the span first).
    pub subtree_end: Vec<usize>,
    /// Each span's depth (0 for a root).
    depth: Vec<usize>,
    /// Span index by id (the first span of an id wins), for resolving parents and links.
    pub by_id: HashMap<SpanId, usize>,
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
            preorder: Vec::new(),
            position: vec![0; spans.len()],
            subtree_end: vec![0; spans.len()],
            depth: vec![0; spans.len()],
            by_id: index,
        };
        for (p, list) in tree.children.iter().enumerate() {
            for &c in list {
                tree.parent[c] = Some(p);
            }
        }
        // Spans in a parent cycle are unreachable from any root: promote one per cycle.
        let mut seen = vec![false; spans.len()];
        tree.depth_first().for_each(|(i, _)| seen[i] = true);
        let mut unseen_from = 0;
        while let Some(orphan) = (unseen_from..spans.len()).find(|i| !seen[*i]) {
            unseen_from = orphan + 1;
            tree.roots.push(orphan);
            for (child, _) in tree.walk_from(orphan) {
                seen[child] = true;
            }
            // The promoted span keeps its child edge from the cycle; drop it to stay a tree.
            if let Some(parent) = tree.parent[orphan].take() {
                tree.children[parent].retain(|c| *c != orphan);
            }
        }
        tree.number();
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
        self.preorder.iter().map(|&i| (i, self.depth[i]))
    }

    /// The spans under `index` (not including it), depth-first: a slice of
    /// [`Self::preorder`], so taking it costs nothing and its length is the subtree's size
    /// less one.
    pub fn descendants(&self, index: usize) -> &[usize] {
        &self.preorder[self.position[index] + 1..self.subtree_end[index]]
    }

    /// `index` and the spans under it, depth-first.
    pub fn subtree(&self, index: usize) -> &[usize] {
        &self.preorder[self.position[index]..self.subtree_end[index]]
    }

    /// The depth of span `index` (0 for a root).
    pub fn depth(&self, index: usize) -> usize {
        self.depth[index]
    }

    /// Whether `node` is `ancestor` or under it.
    pub fn is_within(&self, node: usize, ancestor: usize) -> bool {
        (self.position[ancestor]..self.subtree_end[ancestor]).contains(&self.position[node])
    }

    /// Numbers the spans in [`Self::depth_first`] order and records where each subtree ends.
    fn number(&mut self) {
        let order: Vec<(usize, usize)> = self.depth_first().collect();
        self.preorder = order.iter().map(|(i, _)| *i).collect();
        for (position, &(i, depth)) in order.iter().enumerate() {
            self.position[i] = position;
            self.depth[i] = depth;
        }
        // Children follow their parent in pre-order, so walking it backwards sees a span's
        // whole subtree before the span: its end is its last child's end.
        for position in (0..self.preorder.len()).rev() {
            let i = self.preorder[position];
            self.subtree_end[i] = self.children[i]
                .last()
                .map_or(position + 1, |last| self.subtree_end[*last]);
        }
    }

    /// The depth-first walk over `roots` and `children` (what [`Self::number`] records).
    fn depth_first(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
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
        let mut depths = self.depth.clone();
        depths.resize(span_count, 0);
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

    /// A root with two children given out of order, a grandchild, and an orphan.
    fn family() -> SpanBatch {
        batch(vec![
            span(3, Some(1), "late-child", 50, 60),
            span(1, None, "root", 0, 100),
            span(2, Some(1), "early-child", 10, 40),
            span(4, Some(2), "grandchild", 15, 20),
            span(5, Some(99), "orphan", 5, 6),
        ])
    }

    #[test]
    fn walks_depth_first_in_start_order_with_orphans_as_roots() {
        let b = family();
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
    fn a_subtree_is_a_slice_of_the_walk() {
        let b = family();
        let tree = TraceTree::build(&b);
        assert_eq!(tree.preorder, [1, 2, 3, 0, 4]);
        assert_eq!(tree.subtree(1), [1, 2, 3, 0]);
        assert_eq!(tree.descendants(2), [3]);
        assert!(tree.descendants(0).is_empty() && tree.descendants(4).is_empty());
        assert!(tree.is_within(3, 1) && tree.is_within(3, 2) && !tree.is_within(0, 2));
        assert_eq!((tree.depth(3), tree.depth(4)), (2, 0));
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
