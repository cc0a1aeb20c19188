//! `devtrace watch`: the live terminal dashboard, a face beside the CLI, MCP and the web UI.
//!
//! It owns the terminal side of watching: where to read ([`source`]: the local store while
//! `serve`, hooks and imports write to it, or a server's REST API and event stream), what to
//! ask when ([`watcher`]: a cheap snapshot when something was written, then bounded analysis
//! of what changed), what is on screen ([`state`]: bounded windows of recent traces, sessions
//! and findings), how it is drawn ([`view`], ratatui) and the terminal itself ([`app`]: raw
//! mode, keys, mouse, restoring the terminal on every way out), plus `--plain`, one line per
//! event ([`plain`]).
//!
//! It must not compute findings or query the store itself: every answer comes from
//! `devtrace_query::live` and `trace_view` (which call the detectors of `devtrace-analyze`),
//! the same functions the REST API serves. Recorded text is escaped wherever it is shown
//! ([`text::data`]).

pub mod app;
pub mod plain;
pub mod source;
pub mod state;
pub mod text;
pub mod view;
pub mod watcher;
