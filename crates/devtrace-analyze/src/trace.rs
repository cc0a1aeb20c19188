//! A trace ready for analysis: its spans, their tree, and the attributes derived from what
//! the conventions carry packed into one value (a request's query parameters and route
//! parameters, [`devtrace_model::request`]), built once — every detector reads this view.
//!
//! The spans stay as received (an export gives back what came in); derived attributes are kept
//! beside them and read through [`AnalyzedTrace::attributes`] and [`AnalyzedTrace::attr`].

use crate::TraceTree;
use devtrace_model::{AnyValue, KeyValue, Span, SpanBatch, TraceId};

/// One trace with its tree. Detectors take slices of these.
#[derive(Debug, Clone)]
pub struct AnalyzedTrace {
    pub trace_id: TraceId,
    pub spans: SpanBatch,
    pub tree: TraceTree,
    /// Per span (by index), the attributes derived from its own (`url.query.*`, `url.path.*`).
    derived: Vec<Vec<KeyValue>>,
    /// Per span, the resolution of the clock that stamped its start ([`crate::clock`]).
    start_resolution: Vec<u64>,
    /// The calls to other BEAM processes whose handling callback the trace shows, by span, with
    /// whether it changed the server's state (`None`: the trace cannot tell): worked out once,
    /// when first asked (`served.rs`).
    pub(crate) served_calls: std::sync::OnceLock<std::collections::HashMap<usize, Option<bool>>>,
    /// How long each such call's server worked on its request, when the trace shows it:
    /// worked out once, when first asked (`served.rs`).
    pub(crate) server_times: std::sync::OnceLock<ServerTimes>,
}

/// By call to another process: how long its server worked on the request, then waited for a
/// message from outside the recording, and, of its work, how long it waited for each other
/// process it called meanwhile (`served.rs`).
pub(crate) type ServerTimes =
    std::collections::HashMap<usize, (u64, u64, std::collections::HashMap<String, u64>)>;

impl AnalyzedTrace {
    pub fn new(trace_id: TraceId, spans: SpanBatch) -> Self {
        let tree = TraceTree::build(&spans);
        let derived = spans
            .spans
            .iter()
            .map(devtrace_model::request::request_parameters)
            .collect();
        let start_resolution = crate::clock::start_resolutions(&spans);
        Self {
            trace_id,
            spans,
            tree,
            derived,
            start_resolution,
            served_calls: std::sync::OnceLock::new(),
            server_times: std::sync::OnceLock::new(),
        }
    }

    /// A span's attributes as received, then those derived from them (a request's
    /// parameters as `url.query.NAME` and `url.path.NAME`).
    pub fn attributes(&self, index: usize) -> impl Iterator<Item = &KeyValue> {
        self.span(index)
            .attributes
            .iter()
            .chain(self.derived.get(index).into_iter().flatten())
    }

    /// How much of an overlap between these spans their clocks can account for (the coarsest
    /// start resolution among them, [`crate::clock`]): only an overlap longer than this is
    /// concurrency.
    pub fn overlap_tolerance(&self, indices: &[usize]) -> u64 {
        indices
            .iter()
            .filter_map(|i| self.start_resolution.get(*i))
            .copied()
            .max()
            .unwrap_or(0)
    }

    /// The earliest span start (0 for no spans): where a trace's offsets count from.
    pub fn earliest_start(&self) -> u64 {
        self.spans
            .spans
            .iter()
            .map(|s| s.start_unix_nano)
            .min()
            .unwrap_or(0)
    }

    pub fn span(&self, index: usize) -> &Span {
        &self.spans.spans[index]
    }

    /// Evidence of a finding in this trace: the spans at `indices`.
    pub fn evidence(&self, indices: impl IntoIterator<Item = usize>) -> crate::Evidence {
        crate::Evidence {
            trace_id: self.trace_id,
            span_ids: indices.into_iter().map(|i| self.span(i).span_id).collect(),
        }
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

    /// All descendants of `index` (not including it), depth-first: a slice of the tree's
    /// pre-order ([`TraceTree::descendants`]), so it costs no walk.
    pub fn descendants(&self, index: usize) -> &[usize] {
        self.tree.descendants(index)
    }

    /// `index` and all its descendants, depth-first ([`TraceTree::subtree`]).
    pub fn subtree(&self, index: usize) -> &[usize] {
        self.tree.subtree(index)
    }

    /// A span attribute (received or derived, see [`Self::attributes`]), falling back to its
    /// resource's attribute of the same name.
    pub fn attr(&self, index: usize, key: &str) -> Option<&AnyValue> {
        let span = self.span(index);
        span.attr(key)
            .or_else(|| {
                let derived = self.derived.get(index)?;
                devtrace_model::find_attr(derived, key)
            })
            .or_else(|| devtrace_model::find_attr(&self.spans.resource_of(span).attributes, key))
    }

    pub fn service(&self, index: usize) -> &str {
        self.spans.resource_of(self.span(index)).service_name()
    }
}
