//! The `devtrace` binary: command-line parsing and dispatch.
//!
//! Each command lives in its own module under `commands/` and only formats what the store and
//! the analysis crates return. Exit codes: 0 success, 1 error (the message is on stderr),
//! 2 usage error. Data goes to stdout, everything else to stderr.

// Everything goes out through `output` (its safety net escapes what a command forgot to).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod config;
mod output;
mod progress;
mod remote;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any SQLite connection: the SQL tool's per-query heap cap needs its allocator.
    devtrace_store::sql::memory::install();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = output::print_clap(error);
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            output::print_error(&error);
            ExitCode::from(1)
        }
    }
}
