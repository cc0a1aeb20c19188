//! Pure analysis over traces: from spans to findings with evidence.
//!
//! Builds the span tree of a trace ([`tree`]), its critical path ([`critical_path`]), the
//! breakdown of an operation across runs ([`perf`]), comparisons with an honest verdict
//! ([`compare`]), and the findings ([`detectors`]), each carrying the trace and span ids and
//! the numbers behind it ([`finding`]). Kinds of work come from the OpenTelemetry semantic
//! conventions ([`classify`]); error messages, SQL and URLs are normalised into fingerprints
//! ([`fingerprint`]).
//!
//! Everything here is a function of `devtrace_model` values: no I/O, no SQL, no formatting.
//! The faces (CLI, API, MCP) fetch traces from the store and render what this crate returns.

pub mod call;
pub mod call_values;
pub mod causality;
pub mod classify;
pub mod clock;
pub mod compare;
pub mod critical_path;
pub mod detectors;
pub mod dialect;
pub mod errors;
pub mod finding;
pub mod fingerprint;
pub mod fold;
pub mod impact;
pub mod kinds;
pub mod locks;
pub mod outcome;
pub mod perf;
pub mod pools;
pub mod pricing;
pub mod processes;
pub mod served;
pub mod session;
pub mod session_insights;
pub mod session_tokens;
pub mod stats;
pub mod trace;
pub mod tree;
pub mod values;
pub mod waits;

pub use classify::WorkKind;
pub use finding::{Evidence, Finding, FindingKind, Impact, ImpactBasis};
pub use fold::{FoldedChild, fold_children};
pub use trace::AnalyzedTrace;
pub use tree::TraceTree;
