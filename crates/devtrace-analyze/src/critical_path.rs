//! The critical path: the one chain of work that determined when a span finished.
//!
//! Walking back from the end of a span, the critical child is the one that finished last
//! *before the cursor* (a child that outlives its parent is clipped to the parent's end); the
//! time between it and the cursor is the parent's own time on the path; then the cursor moves
//! to that child's start, and the walk continues into the child the same way. A child still
//! running when the cursor reaches it (it ends after the cursor) overlaps the chain and is off
//! the path, like every concurrent sibling that is not the last to finish: making it faster
//! would not make the parent finish sooner. The result is exactly one chain: no two credited
//! siblings overlap, and the credits of a span's subtree sum to its duration.

//!
//! Threads cross over through causal links ([`crate::causality`]): while a span waits for a
//! call on another thread (a queue get for the put that fed it, a join for the thread's end),
//! that time is the other thread's, so the walk continues there — into the cause's thread's
//! outermost call, within the wait — and the waiting span gets only the rest. The credits
//! still sum to the top span's duration; the crossed thread's spans are on the path of `top`
//! though they are not its descendants.

use crate::AnalyzedTrace;
use crate::causality::{CausalSpans, cause_branch, is_causal, waits_of};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Nanoseconds each span itself spends on the critical path of `top` (children's time on the
/// path is credited to them). The credits sum to `top`'s duration.
pub fn critical_credits(trace: &AnalyzedTrace, top: usize) -> Vec<u64> {
    let mut credits = vec![0u64; trace.spans.spans.len()];
    for (node, credit) in path_credits(trace, top) {
        credits[node] = credit;
    }
    credits
}

/// [`critical_credits`] for the spans the walk reached only, by index: its cost follows the
/// path, not the trace (one walk per root of a trace of 100,000 roots stays linear).
pub fn path_credits(trace: &AnalyzedTrace, top: usize) -> BTreeMap<usize, u64> {
    let mut walker = Walker::new(trace);
    let (start, end) = window_of(trace, top);
    walker.walk(top, start, end);
    walker.credits
}

/// One step back along the chain: a child, or the other thread a wait crossed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Child(usize),
    Cross(usize),
}

struct Walker<'a> {
    trace: &'a AnalyzedTrace,
    credits: BTreeMap<usize, u64>,
    /// Waiters already crossed from: each crosses once, so links that point back and forth
    /// cannot loop.
    crossed: HashSet<usize>,
}

/// A span on the walk: its steps still to consider and the cursor walking back from its end.
struct Frame {
    node: usize,
    start: u64,
    cursor: u64,
    /// The span's own time on the path so far.
    own: u64,
    by_end: std::vec::IntoIter<(u64, u64, Step)>,
}

impl Frame {
    /// The next step on the path (credits this span's own time after it and moves the cursor
    /// to its start), or `None` when the walk back reached the span's start.
    fn next_on_path(&mut self) -> Option<(Step, u64, u64)> {
        if self.cursor <= self.start {
            return None;
        }
        for (child_end, child_start, step) in self.by_end.by_ref() {
            if child_end > self.cursor {
                continue;
            }
            self.own += self.cursor - child_end;
            self.cursor = child_start;
            return Some((step, child_start, child_end));
        }
        None
    }

    /// The span's whole own time on the path, once no step is left.
    fn finish(&self) -> u64 {
        self.own + self.cursor.saturating_sub(self.start)
    }
}

/// A span's own window: its start and end (an end before the start read as the start).
fn window_of(trace: &AnalyzedTrace, span: usize) -> (u64, u64) {
    let start = trace.span(span).start_unix_nano;
    (start, trace.span(span).end_unix_nano.max(start))
}

impl<'a> Walker<'a> {
    fn new(trace: &'a AnalyzedTrace) -> Self {
        Walker {
            trace,
            credits: BTreeMap::new(),
            crossed: HashSet::new(),
        }
    }
}

impl Walker<'_> {
    /// Credits `top`'s time within `[window_start, window_end]` (its parent's time on the
    /// path, so a child that starts before or ends after its parent — clock skew, async work
    /// — is clipped and the credits still sum to the top span's duration), and its chain's.
    /// Depth-first with an explicit stack, so a 100,000-deep chain of calls costs heap, not
    /// the thread's stack.
    fn walk(&mut self, top: usize, window_start: u64, window_end: u64) {
        let mut stack = vec![self.enter(top, window_start, window_end)];
        while let Some(frame) = stack.last_mut() {
            let Some(next) = frame.next_on_path() else {
                let done = stack.pop().expect("a frame is on the stack");
                *self.credits.entry(done.node).or_default() += done.finish();
                continue;
            };
            let (Step::Child(child) | Step::Cross(child), child_start, child_end) = next;
            let frame = self.enter(child, child_start, child_end);
            stack.push(frame);
        }
    }

    /// The frame of `node` clipped to `[window_start, window_end]`: its steps by clipped
    /// end, latest first (ties: the later start, then the later index). The cursor only
    /// moves back, so one pass over this order finds every chosen child: a child ending after
    /// the cursor overlaps what is already on the path and is skipped for good. A span with k
    /// children costs O(k log k).
    fn enter(&mut self, node: usize, window_start: u64, window_end: u64) -> Frame {
        let trace = self.trace;
        let span = trace.span(node);
        let start = span.start_unix_nano.clamp(window_start, window_end);
        let end = window_end.min(span.end_unix_nano).max(start);
        let mut by_end: Vec<(u64, u64, Step)> = trace.tree.children[node]
            .iter()
            .map(|&c| {
                let child = trace.span(c);
                let child_start = child.start_unix_nano.max(start);
                (child.end_unix_nano.min(end), child_start, Step::Child(c))
            })
            .collect();
        by_end.extend(self.crossings(node, start, end));
        by_end.retain(|(child_end, child_start, _)| child_start < child_end);
        by_end.sort_unstable_by(|a, b| b.cmp(a));
        Frame {
            node,
            start,
            cursor: end,
            own: 0,
            by_end: by_end.into_iter(),
        }
    }

    /// The other threads `node` waited for within `[start, end]`: each wait's cause's
    /// outermost call, over the part of the wait that call covers.
    fn crossings(&mut self, node: usize, start: u64, end: u64) -> Vec<(u64, u64, Step)> {
        let trace = self.trace;
        if !trace.span(node).links.iter().any(is_causal) || self.crossed.contains(&node) {
            return Vec::new();
        }
        let crossings: Vec<(u64, u64, Step)> = waits_of(trace, &trace.tree.by_id, node)
            .iter()
            .filter_map(|wait| {
                let branch = cause_branch(trace, wait)?;
                let other = trace.span(branch);
                let from = wait.wait_start(trace).max(other.start_unix_nano).max(start);
                let to = wait.wait_end(trace).min(other.end_unix_nano).min(end);
                Some((to, from, Step::Cross(branch)))
            })
            .collect();
        if !crossings.is_empty() {
            self.crossed.insert(node);
        }
        crossings
    }
}

/// The spans on the critical path of `top`, in time order (the other threads it waited for
/// included).
pub fn critical_path(trace: &AnalyzedTrace, top: usize) -> Vec<usize> {
    let credits = critical_credits(trace, top);
    // Every credited span: `top`'s subtree and the other threads it waited for.
    let mut on_path: Vec<usize> = (0..credits.len()).filter(|i| credits[*i] > 0).collect();
    on_path.sort_by_key(|i| (trace.span(*i).start_unix_nano, *i));
    on_path
}

/// Time on the critical path within the subtree of `node` (its own credit and its descendants').
pub fn subtree_credit(trace: &AnalyzedTrace, credits: &[u64], node: usize) -> u64 {
    trace.subtree(node).iter().map(|d| credits[*d]).sum()
}

/// `top`'s own time on its critical path and that of each child's subtree (in
/// `trace.tree.children[top]` order): [`critical_credits`] summed per child, without walking
/// below the children — for a span under which no span waits for another thread (`causal`
/// says, [`crate::causality::CausalSpans`]); `None` for one under which some span does.
///
/// Without crossings to other threads, the walk never leaves a child's window on the path and
/// the credits of the child's subtree sum to that window's length (the module's rule), so
/// only `top`'s frame is walked: O(k log k) for k children, however deep the tree below.
pub fn credits_by_child(
    trace: &AnalyzedTrace,
    causal: &CausalSpans,
    top: usize,
) -> Option<(u64, Vec<u64>)> {
    if causal.any_within(trace, top) {
        return None;
    }
    let mut walker = Walker::new(trace);
    let (start, end) = window_of(trace, top);
    let mut frame = walker.enter(top, start, end);
    let children = &trace.tree.children[top];
    let slot: HashMap<usize, usize> = children.iter().enumerate().map(|(k, c)| (*c, k)).collect();
    let mut by_child = vec![0; children.len()];
    while let Some((step, child_start, child_end)) = frame.next_on_path() {
        let Step::Child(child) = step else {
            unreachable!("no span under {top} waits for another thread");
        };
        by_child[slot[&child]] += child_end - child_start;
    }
    Some((frame.finish(), by_child))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::TraceId;

    fn trace(spans: Vec<devtrace_model::Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn sequential_children_are_all_on_the_path_and_credits_sum_to_the_duration() {
        let t = trace(vec![
            span(1, None, "root", 0, 100),
            span(2, Some(1), "a", 10, 40),
            span(3, Some(1), "b", 40, 90),
        ]);
        let credits = critical_credits(&t, 0);
        assert_eq!(credits, vec![20, 30, 50]);
        assert_eq!(credits.iter().sum::<u64>(), 100);
        assert_eq!(critical_path(&t, 0), vec![0, 1, 2]);
    }

    #[test]
    fn an_overlapped_shorter_child_is_off_the_path() {
        let t = trace(vec![
            span(1, None, "root", 0, 100),
            span(2, Some(1), "long", 0, 90),
            span(3, Some(1), "short", 10, 30),
        ]);
        let credits = critical_credits(&t, 0);
        assert_eq!(credits[2], 0, "short overlaps long and finishes first");
        assert_eq!(credits[1], 90);
        assert_eq!(credits[0], 10);
    }

    #[test]
    fn a_child_that_outlives_its_parent_is_clipped() {
        let t = trace(vec![
            span(1, None, "root", 0, 50),
            span(2, Some(1), "async", 20, 80),
        ]);
        let credits = critical_credits(&t, 0);
        assert_eq!(credits, vec![20, 30]);
    }

    #[test]
    fn a_wait_crosses_to_the_thread_whose_call_ended_it() {
        // consume's get waited from 20 until worker-1's produce put at 60: that time is
        // produce's; the get keeps 60..80, after the put.
        let t = crate::causality::tests::two_threads();
        let credits = critical_credits(&t, 0);
        assert_eq!(credits, vec![40, 20, 0, 40]);
        assert_eq!(credits.iter().sum::<u64>(), 100);
        assert_eq!(
            critical_path(&t, 0),
            vec![0, 3, 1],
            "produce is on the path"
        );
    }

    #[test]
    fn links_that_point_back_and_forth_do_not_loop() {
        use crate::causality::tests::linked;
        let t = trace(vec![
            span(1, None, "a", 0, 100),
            linked(span(2, Some(1), "a.wait", 10, 90), 4, "lock", 80, 70),
            span(3, None, "b", 0, 100),
            linked(span(4, Some(3), "b.wait", 5, 95), 2, "lock", 85, 80),
        ]);
        let credits = critical_credits(&t, 0);
        assert_eq!(credits.iter().sum::<u64>(), 100);
        // a's wait crosses to b, whose wait points back at a: the walk returns to a's wait
        // (already crossed from, so it keeps the time) and stops there.
        assert_eq!(credits, vec![20, 80, 0, 0]);
    }

    /// The rule, by brute force: among the children that end at or before the cursor (ends
    /// clipped to the window), the one that ends last (then the later start).
    fn brute_force(
        t: &AnalyzedTrace,
        node: usize,
        window_start: u64,
        window_end: u64,
        credits: &mut [u64],
    ) {
        let span = t.span(node);
        let start = span.start_unix_nano.clamp(window_start, window_end);
        let end = window_end.min(span.end_unix_nano).max(start);
        let mut cursor = end;
        loop {
            let next = t.tree.children[node]
                .iter()
                .copied()
                .map(|c| {
                    let s = t.span(c).start_unix_nano.max(start);
                    (t.span(c).end_unix_nano.min(end), s, c)
                })
                .filter(|(e, s, _)| s < e && *e <= cursor)
                .max();
            let Some((child_end, child_start, child)) = next else {
                break;
            };
            if cursor <= start {
                break;
            }
            credits[node] += cursor - child_end;
            brute_force(t, child, child_start, child_end, credits);
            cursor = child_start;
        }
        credits[node] += cursor.saturating_sub(start);
    }

    #[test]
    fn overlapping_siblings_match_the_brute_force_rule() {
        // Pseudo-random overlapping siblings and grandchildren (distinct starts and ends, so
        // there are no ties to break differently).
        let mut spans = vec![span(1, None, "root", 0, 100_000)];
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for id in 2..120u8 {
            let parent = if id > 60 { Some(id - 50) } else { Some(1) };
            let start = next() % 90_000 * 10 + u64::from(id);
            let end = start + next() % 20_000 * 10 + 1;
            spans.push(span(id, parent, "work", start, end));
        }
        let t = trace(spans);
        let mut expected = vec![0u64; t.spans.spans.len()];
        brute_force(&t, 0, 0, t.span(0).end_unix_nano, &mut expected);
        assert_eq!(critical_credits(&t, 0), expected);
        assert_eq!(expected.iter().sum::<u64>(), 100_000);
    }
}
