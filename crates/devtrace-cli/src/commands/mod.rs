//! One module per command. Commands read and write through `devtrace-store`, analyse through
//! `devtrace-analyze`, and only format here.

mod analysis;
mod compare;
mod demo;
mod errors;
mod export;
mod hook;
mod import;
mod import_sessions;
mod insights;
mod locks;
mod ls;
mod mcp;
mod perf;
mod plan;
mod python_autotrace;
mod qa;
mod query;
mod record;
mod record_terminal;
mod run;
mod runs;
mod serve;
mod sessions;
mod show;
mod watch;

use crate::cli::{Cli, Command, ImportSource};
use anyhow::Result;
use devtrace_ingest::sessions::Agent;
use devtrace_store::sqlite::SqliteStore;
use std::path::Path;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let data = cli.data.as_deref();
    match &cli.command {
        Command::Serve(args) => {
            devtrace_plan::PlanStore::set_default(devtrace_plan::PlanStore::new(
                &crate::config::data_dir(data)?,
            ));
            serve::run(data, args)
        }
        Command::Ls(args) => ls::run(&open_store(data)?, args, cli.color),
        Command::Show(args) => show::run(&open_store(data)?, args, cli.color, data),
        Command::Import(args) => {
            let dir = crate::config::data_dir(data)?;
            let redactor = crate::config::default_redaction()?;
            match &args.source {
                Some(ImportSource::ClaudeCode { path, follow }) => import_sessions::run(
                    &dir,
                    Agent::ClaudeCode,
                    path.as_deref(),
                    args.json,
                    redactor,
                    *follow,
                ),
                Some(ImportSource::Codex { path, follow }) => import_sessions::run(
                    &dir,
                    Agent::Codex,
                    path.as_deref(),
                    args.json,
                    redactor,
                    *follow,
                ),
                None => import::run(&dir, args, redactor),
            }
        }
        Command::Export(args) => export::run(&open_store(data)?, args),
        Command::Perf(args) => perf::run(&open_store(data)?, args, data),
        Command::Errors(args) => errors::run(&open_store(data)?, args),
        Command::Locks(args) => locks::run(&open_store(data)?, args),
        Command::Compare(args) => compare::run(&open_store(data)?, args, data),
        Command::Insights(args) => insights::run(&open_store(data)?, args),
        Command::Demo(args) => demo::run(data, args, cli.color),
        Command::Run(args) => run::run(data, args),
        Command::Runs(args) => runs::run(&open_store(data)?, args),
        Command::Mcp(args) => {
            devtrace_plan::PlanStore::set_default(devtrace_plan::PlanStore::new(
                &crate::config::data_dir(data)?,
            ));
            mcp::run(data, args)
        }
        Command::Sessions(args) => sessions::list(&open_store(data)?, args),
        Command::Session(args) => sessions::session(&open_store(data)?, &args.command, data),
        Command::Hook(args) => hook::run(&crate::config::data_dir(data)?, args),
        Command::Query(args) => query::run(data, args),
        Command::Record(args) => record::run(data, args),
        Command::Note(args) => record::note(data, args),
        Command::Qa(args) => qa::run(data, &args.command),
        Command::Plan(args) => plan::run(data, args),
        Command::Watch(args) => watch::run(data, args, cli.color),
    }
}

/// Opens the store for reading; works while `devtrace serve` writes to it.
fn open_store(data: Option<&Path>) -> Result<SqliteStore> {
    let dir = crate::config::data_dir(data)?;
    Ok(SqliteStore::open(&dir)?)
}
