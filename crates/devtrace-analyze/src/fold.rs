//! Folding runs of repeated siblings ("× 40 SELECT … 3.1 ms avg").

use devtrace_model::SpanBatch;

/// Runs shorter than this stay expanded.
pub const DEFAULT_MIN_RUN: usize = 5;

/// One line of a rendered child list: a span, or a run of same-named siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FoldedChild {
    Span(usize),
    Run {
        name: String,
        spans: Vec<usize>,
        total_nanos: u64,
        errors: usize,
    },
}

/// Folds consecutive siblings (in the given order) that share a name, when there are at least
/// `min_run` of them.
pub fn fold_children(batch: &SpanBatch, children: &[usize], min_run: usize) -> Vec<FoldedChild> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < children.len() {
        let name = &batch.spans[children[i]].name;
        let run_end = children[i..]
            .iter()
            .position(|c| &batch.spans[*c].name != name)
            .map_or(children.len(), |offset| i + offset);
        let run = &children[i..run_end];
        if run.len() >= min_run.max(2) {
            out.push(FoldedChild::Run {
                name: name.clone(),
                spans: run.to_vec(),
                total_nanos: run.iter().map(|c| batch.spans[*c].duration_nanos()).sum(),
                errors: run.iter().filter(|c| batch.spans[**c].is_error()).count(),
            });
        } else {
            out.extend(run.iter().map(|c| FoldedChild::Span(*c)));
        }
        i = run_end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};

    #[test]
    fn folds_long_runs_and_keeps_short_ones() {
        let mut spans = vec![span(1, None, "root", 0, 1000)];
        for i in 0..6 {
            spans.push(span(
                10 + i,
                Some(1),
                "SELECT",
                100 + u64::from(i) * 10,
                105 + u64::from(i) * 10,
            ));
        }
        spans.push(span(30, Some(1), "render", 900, 950));
        spans.push(span(31, Some(1), "SELECT", 960, 970));
        let b = batch(spans);
        let children: Vec<usize> = (1..b.spans.len()).collect();
        let folded = fold_children(&b, &children, DEFAULT_MIN_RUN);
        assert_eq!(folded.len(), 3);
        match &folded[0] {
            FoldedChild::Run {
                name,
                spans,
                total_nanos,
                errors,
            } => {
                assert_eq!(
                    (name.as_str(), spans.len(), *total_nanos, *errors),
                    ("SELECT", 6, 30, 0)
                );
            }
            other => panic!("expected a run, got {other:?}"),
        }
        assert_eq!(folded[1], FoldedChild::Span(7));
        assert_eq!(folded[2], FoldedChild::Span(8));
        assert_eq!(
            fold_children(&b, &children, 7).len(),
            8,
            "a run below the minimum stays expanded"
        );
    }
}
