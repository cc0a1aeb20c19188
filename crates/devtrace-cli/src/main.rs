//! The `devtrace` binary: command-line parsing and dispatch.
//!
//! Each command lives in its own module under `commands/` and only formats what the store and
//! the analysis crates return. Exit codes (docs/cli.md): 0 success, 1 a runtime failure (the
//! message is on stderr), 2 a usage error (clap's, or a command's [`usage::UsageError`]); `run`
//! passes its command's code through. Data goes to stdout, everything else to stderr.

// Everything goes out through `output` (its safety net escapes what a command forgot to).
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod commands;
mod config;
mod output;
mod progress;
mod remote;
mod usage;

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any SQLite connection: the SQL tool's per-query heap cap needs its allocator.
    devtrace_store::sql::memory::install();
    let clap_exit = |error: clap::Error| {
        let code = output::print_clap(error);
        ExitCode::from(u8::try_from(code).unwrap_or(2))
    };
    let parsed = cli::Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((cli::Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return clap_exit(error),
    };
    if matches!(cli.command, cli::Command::Run(_) | cli::Command::Hook(_)) {
        one_malloc_arena();
    }
    match commands::run(cli) {
        Ok(code) => code,
        Err(error) => match error.downcast_ref::<usage::UsageError>() {
            Some(usage) => clap_exit(usage::clap_error(usage, &usage::subcommand_path(&matches))),
            None => {
                output::print_error(&error);
                ExitCode::from(1)
            }
        },
    }
}

/// One malloc arena for the process. glibc gives each new thread an arena of its own, whose
/// first pages are faulted in fresh; a command that lives for milliseconds (`run` around a
/// short command, the agent's `hook`) and starts a few threads pays for that in page faults
/// (about a quarter of `run`'s own CPU). Called before any thread starts; never for `serve`,
/// whose threads allocate at once and are better with arenas of their own.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc tunable; no thread but this one exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
