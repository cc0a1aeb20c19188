//! One module per command. Commands read and write through `devtrace-store`, analyse through
//! `devtrace-analyze`, and only format here.

mod agent_setup;
mod analysis;
mod compare;
mod delete;
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
mod otlp_export;
mod perf;
mod plan;
mod project;
mod python_autotrace;
mod qa;
mod query;
mod record;
mod record_terminal;
mod recover;
mod recover_beam;
mod run;
mod run_beam;
mod runs;
mod serve;
mod sessions;
mod show;
mod token;
mod watch;

use crate::cli::{Cli, Command, ImportSource};
use anyhow::Result;
use devtrace_ingest::sessions::Agent;
use std::process::ExitCode;

pub fn run(cli: Cli) -> Result<ExitCode> {
    let data = cli.data.as_deref();
    let choice = || {
        crate::config::StoreChoice::resolve(
            data,
            cli.store.as_deref(),
            cli.queue_store.as_deref(),
            cli.project.as_deref(),
        )
    };
    // Opens the store for reading (works while `devtrace serve` writes to it), or the store of
    // the server given by --server, through its REST API.
    let open_store = || -> Result<std::sync::Arc<dyn devtrace_store::Store>> {
        match &cli.server {
            Some(url) => Ok(std::sync::Arc::new(crate::remote::store(&cli, url)?)),
            None => choice()?.open(),
        }
    };
    // The other commands need the store itself.
    if let Some(url) = &cli.server
        && !matches!(
            cli.command,
            Command::Ls(_)
                | Command::Show(_)
                | Command::Export(_)
                | Command::Perf(_)
                | Command::Errors(_)
                | Command::Locks(_)
                | Command::Compare(_)
                | Command::Insights(_)
                | Command::Runs(_)
                | Command::Sessions(_)
                | Command::Session(_)
                | Command::Plan(_)
                | Command::Watch(_)
                | Command::Record(_)
                | Command::Note(_)
                | Command::AgentSetup(_)
        )
    {
        crate::usage::usage!(
            "this command works on a store, not through a server (--server {url}): give --store URL (or --data DIR) instead; against a server, ls, show, export, perf, errors, locks, compare, insights, runs, sessions, plan and watch work, and record sends its session there"
        );
    }
    // Times print where the person is, unless --utc; the faces a server or an MCP client
    // reads (anyone, anywhere) stay in UTC.
    devtrace_query::timefmt::use_local_time(
        !cli.utc && !matches!(cli.command, Command::Serve(_) | Command::Mcp(_)),
    );
    // Costs (sessions', and token findings' in traces), in every face this process serves, use
    // the config file's `[prices]`.
    match &cli.command {
        Command::Serve(args) => devtrace_query::sessions::tokens::use_prices(
            crate::config::prices(args.config.as_deref())?,
        ),
        Command::Sessions(_)
        | Command::Session(_)
        | Command::Insights(_)
        | Command::Perf(_)
        | Command::Mcp(_)
        | Command::Watch(_)
        | Command::Run(_)
        | Command::Demo(_) => {
            devtrace_query::sessions::tokens::use_prices(crate::config::prices(None)?)
        }
        _ => {}
    }
    match &cli.command {
        Command::Serve(args) => {
            let choice = choice()?;
            devtrace_plan::PlanStore::set_default(devtrace_plan::PlanStore::new(&choice.data_dir));
            serve::run(&choice, args, cli.color)
        }
        Command::Ls(args) => ls::run(&*open_store()?, args, cli.color),
        Command::Show(args) => show::run(&*open_store()?, args, cli.color, data),
        Command::Import(args) => {
            let choice = choice()?;
            let redactor = crate::config::default_redaction()?;
            match &args.source {
                Some(ImportSource::ClaudeCode { path, follow }) => import_sessions::run(
                    &choice,
                    Agent::ClaudeCode,
                    path.as_deref(),
                    args.json,
                    redactor,
                    *follow,
                ),
                Some(ImportSource::Codex { path, follow }) => import_sessions::run(
                    &choice,
                    Agent::Codex,
                    path.as_deref(),
                    args.json,
                    redactor,
                    *follow,
                ),
                None => import::run(&choice, args, redactor),
            }
        }
        Command::Export(args) => export::run(&*open_store()?, args),
        Command::Perf(args) => perf::run(&*open_store()?, args, data),
        Command::Errors(args) => errors::run(&*open_store()?, args),
        Command::Locks(args) => locks::run(&*open_store()?, args),
        Command::Compare(args) => compare::run(open_store, args, data),
        Command::Insights(args) => insights::run(&*open_store()?, args),
        Command::Demo(args) => {
            let store = match cli.store {
                Some(_) => Some(choice()?),
                None => None,
            };
            demo::run(data, store, args, cli.color)
        }
        Command::Run(args) => run::run(&choice()?, args),
        Command::Runs(args) => runs::run(&*open_store()?, args),
        Command::Mcp(args) => {
            let choice = choice()?;
            devtrace_plan::PlanStore::set_default(devtrace_plan::PlanStore::new(&choice.data_dir));
            mcp::run(&choice, args, cli.color)
        }
        Command::Sessions(args) => sessions::list(&*open_store()?, args),
        Command::Session(args) => sessions::session(&*open_store()?, &args.command, data),
        Command::Hook(args) => hook::run(&choice()?, args),
        Command::Query(args) => query::run(&choice()?, args),
        Command::Token(args) => token::run(&choice()?, &args.command),
        Command::Project(args) => project::run(&choice()?, &args.command),
        Command::Delete(args) => delete::run(&choice()?, args),
        Command::Record(args) => record::run(
            &record::Target {
                store: choice()?,
                server: cli.server.clone(),
                token: cli.token.clone(),
                ca_cert: cli.ca_cert.clone(),
            },
            args,
        ),
        Command::Note(args) => record::note(data, args),
        Command::Qa(args) => qa::run(&choice()?, &args.command),
        Command::Plan(args) => plan::run(&choice()?.data_dir, open_store, args),
        Command::Recover(args) => recover::run(&choice()?, args),
        Command::Watch(args) => watch::run(&cli, args),
        Command::AgentSetup(args) => agent_setup::run(data, args, cli.token.as_deref()),
    }
}
