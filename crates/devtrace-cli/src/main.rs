//! The `devtrace` binary: command-line parsing and dispatch.
//!
//! Each command lives in its own module under `commands/` and only formats what the store and
//! the analysis crates return. Exit codes: 0 success, 1 error (the message is on stderr),
//! 2 usage error. Data goes to stdout, everything else to stderr.

mod cli;
mod commands;
mod config;
mod output;
mod progress;
mod remote;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            output::print_error(&error);
            ExitCode::from(1)
        }
    }
}
