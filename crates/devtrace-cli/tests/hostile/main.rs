//! Recorded text is data, in every face: one store whose every recorded field carries hostile
//! text (a line claiming to be the system, backticks, a screen clear, a window-title change, an
//! 8-bit CSI, line and paragraph separators, bidi overrides, zero-width characters, quotes and
//! backslashes), and, for every CLI command (from clap's command tree), every REST endpoint
//! (from the served OpenAPI document) and every MCP tool (from the server's `tools/list`), the
//! assertion that nothing dangerous comes out raw and no output line starts with recorded text.
//! The lists come from those sources of truth, so a new command, endpoint or tool that this
//! test does not run fails it.

#[path = "../common/mod.rs"]
mod common;

/// The CLI's grammar itself, for its command tree.
#[allow(dead_code)]
#[path = "../../src/cli.rs"]
mod cli_grammar;

mod check;
mod cli;
mod fixture;
mod mcp;
mod rest;
