//! A trace ready for analysis: its spans and their tree, built once.

use crate::TraceTree;
use devtrace_model::{AnyValue, Span, SpanBatch, TraceId};

/// One trace with its tree. Detectors take slices of these.
#[derive(Debug, Clone)]
pub struct AnalyzedTrace {
    pub trace_id: TraceId,
    pub spans: SpanBatch,
    pub tree: TraceTree,
}

impl AnalyzedTrace {
    pub fn new(trace_id: TraceId, spans: SpanBatch) -> Self {
        let tree = TraceTree::build(&spans);
        Self {
            trace_id,
            spans,
            tree,
        }
    }

    pub fn span(&self, index: usize) -> &Span {
        &self.spans.spans[index]
    }

    /// The first root (earliest-starting span without a parent in the trace).
    pub fn root(&self) -> Option<usize> {
        self.tree.roots.first().copied()
    }

    /// Indices of the spans named `name`, in tree order.
    pub fn spans_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = usize> + 'a {
        self.tree
            .walk()
            .map(|(i, _)| i)
            .filter(move |i| self.spans.spans[*i].name == name)
    }

    /// All descendants of `index` (not including it), depth-first.
    pub fn descendants(&self, index: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack: Vec<usize> = self.tree.children[index].iter().rev().copied().collect();
        while let Some(node) = stack.pop() {
            out.push(node);
            stack.extend(self.tree.children[node].iter().rev());
        }
        out
    }

    /// A span attribute, falling back to its resource's attribute of the same name.
    pub fn attr(&self, index: usize, key: &str) -> Option<&AnyValue> {
        let span = self.span(index);
        span.attr(key)
            .or_else(|| devtrace_model::find_attr(&self.spans.resource_of(span).attributes, key))
    }

    pub fn service(&self, index: usize) -> &str {
        self.spans.resource_of(self.span(index)).service_name()
    }
}
