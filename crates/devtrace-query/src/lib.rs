//! The read side every face shares.
//!
//! The CLI, the REST API, the web UI and the MCP server all answer questions of the same shape:
//! "load the recent runs of this operation and analyse them", "this trace as JSON", "this
//! breakdown as a small table". This crate owns those answers once:
//!
//! - [`scope`]: which traces an analysis reads (the last N runs of an operation, a time window,
//!   one trace by id or prefix), loaded from a [`devtrace_store::Store`] and built into
//!   [`devtrace_analyze::AnalyzedTrace`]s, with "did you mean" for unknown operations;
//! - [`trace_view`]: one trace for a viewer: a columnar waterfall (critical path, folds), one
//!   span's detail, search within the trace, the event timeline for playback;
//! - [`causal`]: waits attributed to the call that ended them (in words, as waterfall arrows)
//!   and one thread's recorded calls with their values, for stepping through a run;
//! - [`lanes`]: a trace's threads and BEAM processes as lanes of a waterfall, and a
//!   GenServer's state at a moment;
//! - [`processes`]: one BEAM process's story: its lives, whom it waited for, its state
//!   callback by callback and at a moment (when another process crashed);
//! - [`analytics`]: one operation's breakdown, histogram, percentiles over time and findings,
//!   and duration series for sparklines;
//! - [`comparison`]: which traces a comparison reads (two traces, the last runs, a window);
//! - [`operation`]: which operation (service, span name, kind) a question names, and the
//!   operations one service handles;
//! - [`runs`]: the recorded `devtrace run` executions;
//! - [`run_report`]: one run read back for its summary (spans, slowest, findings priced as
//!   every face prices them, the comparison with its baseline);
//! - [`limits`]: how long a value a caller may pass (MCP tool arguments, REST parameters);
//! - [`links`]: deep links into the web UI's views, for answers to print;
//! - [`live`]: what is happening now, for the live dashboard (`devtrace watch`);
//! - [`overview`]: what the store holds at a glance (services, time range, top operations,
//!   recent errors and runs);
//! - [`search`]: trace search, the store's indexed filters plus bounded attribute filters;
//! - [`errors`]: which traces an error report reads, and which error a fingerprint or trace id
//!   names;
//! - [`compare`]: the two sides of a comparison (two traces, the last runs of an operation,
//!   two time windows);
//! - [`json`]: stable JSON shapes of stored data (traces, spans, attributes, logs);
//! - [`text`]: plain-text renderings of analysis results (findings, breakdowns, comparisons)
//!   that the CLI prints and the MCP tools return;
//! - [`sessions`]: development sessions: listings, one session's timeline with findings and
//!   linked runs, and cross-session insights (`check_insights`);
//! - [`diff`]: edits as unified diffs (from a recorded patch or an edit tool's input);
//! - [`blobs`]: large recorded values (whole outputs, long prompts) read back a page at a time;
//! - [`timefmt`]: durations and UTC timestamps, parsed and printed one way everywhere;
//! - [`window`]: the one default time window of every face (the last hour, or the hour before
//!   the newest trace when nothing is recent, and the note that says so).
//!
//! It reads through the `Store` trait and computes through `devtrace-analyze`; it writes no SQL,
//! computes no findings of its own and does no terminal or network I/O.

pub mod analytics;
pub mod blobs;
pub mod causal;
pub mod comparison;
pub mod demo;
pub mod diff;
pub mod errors;
pub mod json;
pub mod lanes;
pub mod limits;
pub mod links;
pub mod live;
pub mod operation;
pub mod overview;
pub mod processes;
pub mod run_report;
pub mod runs;
pub mod safe_json;
pub mod scope;
pub mod search;
pub mod sessions;
pub mod text;
pub mod timefmt;
pub mod trace_view;
pub mod window;

#[cfg(test)]
mod testing;

pub use scope::{QueryError, Scope};
