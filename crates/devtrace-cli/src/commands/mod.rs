//! One module per command. Commands read and write through `devtrace-store`, analyse through
//! `devtrace-analyze`, and only format here.

mod analysis;
mod compare;
mod demo;
mod errors;
mod export;
mod import;
mod insights;
mod locks;
mod ls;
mod mcp;
mod perf;
mod python_autotrace;
mod run;
mod runs;
mod serve;
mod show;

use crate::cli::{Cli, Command};
use anyhow::Result;
use devtrace_store::sqlite::SqliteStore;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let data = cli.data.as_deref();
    match &cli.command {
        Command::Serve(args) => serve::run(data, args),
        Command::Ls(args) => ls::run(&open_store(data)?, args, cli.color),
        Command::Show(args) => show::run(&open_store(data)?, args, cli.color),
        Command::Import(args) => import::run(&crate::config::data_dir(data)?, args),
        Command::Export(args) => export::run(&open_store(data)?, args),
        Command::Perf(args) => perf::run(&open_store(data)?, args),
        Command::Errors(args) => errors::run(&open_store(data)?, args),
        Command::Locks(args) => locks::run(&open_store(data)?, args),
        Command::Compare(args) => compare::run(&open_store(data)?, args),
        Command::Insights(args) => insights::run(&open_store(data)?, args),
        Command::Demo(args) => demo::run(data, args, cli.color),
        Command::Run(args) => run::run(data, args),
        Command::Runs(args) => runs::run(&open_store(data)?, args),
        Command::Mcp(args) => mcp::run(data, args),
    }
}

/// Opens the store for reading; works while `devtrace serve` writes to it.
fn open_store(data: Option<&Path>) -> Result<SqliteStore> {
    let dir = crate::config::data_dir(data)?;
    Ok(SqliteStore::open(&dir)?)
}
