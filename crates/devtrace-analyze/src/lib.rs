//! Pure analysis over traces.
//!
//! Builds the span tree of a trace ([`tree`]), computes self time, and folds long runs of
//! repeated siblings ([`fold`]) so a trace with a loop of 400 queries reads as one line.
//! Everything here is a function of a `devtrace_model::SpanBatch`: no I/O, no SQL, no
//! formatting. The faces (CLI, API, MCP) render what it returns.

pub mod fold;
pub mod tree;

pub use fold::{FoldedChild, fold_children};
pub use tree::TraceTree;
