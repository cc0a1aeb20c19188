//! The read side every face shares.
//!
//! The CLI, the REST API, the web UI and the MCP server all answer questions of the same shape:
//! "load the recent runs of this operation and analyse them", "this trace as JSON", "this
//! breakdown as a small table". This crate owns those answers once:
//!
//! - [`scope`]: which traces an analysis reads (the last N runs of an operation, a time window,
//!   one trace by id or prefix), loaded from a [`devtrace_store::Store`] and built into
//!   [`devtrace_analyze::AnalyzedTrace`]s, with "did you mean" for unknown operations;
//! - [`json`]: stable JSON shapes of stored data (traces, spans, attributes, logs);
//! - [`text`]: plain-text renderings of analysis results (findings, breakdowns, comparisons)
//!   that the CLI prints and the MCP tools return;
//! - [`sessions`]: development sessions: listings, one session's timeline with findings and
//!   linked runs, and cross-session insights (`check_insights`);
//! - [`timefmt`]: durations and UTC timestamps, parsed and printed one way everywhere.
//!
//! It reads through the `Store` trait and computes through `devtrace-analyze`; it writes no SQL,
//! computes no findings of its own and does no terminal or network I/O.

pub mod json;
pub mod scope;
pub mod sessions;
pub mod text;
pub mod timefmt;

pub use scope::{QueryError, Scope};
