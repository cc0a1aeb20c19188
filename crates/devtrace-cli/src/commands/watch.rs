//! `devtrace watch`: the live dashboard (devtrace-tui) on the terminal, or `--plain`.

use crate::cli::{Cli, WatchArgs};
use anyhow::{Result, bail};
use devtrace_query::live::LiveQuery;
use devtrace_store::StoreLocation;
use devtrace_tui::source::{LocalSource, RemoteSource, Source, StoreSource, now_unix_nano};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Reads the server given by the global `--server` (with `--token` and `--project`), else the
/// store: the embedded one in its directory (followed by its files), or a PostgreSQL store
/// (`--store URL`, asked once a second).
pub fn run(cli: &Cli, args: &WatchArgs) -> Result<ExitCode> {
    if let Some(url) = &cli.server {
        // A usage error, checked before anything else as every other `--server` command does.
        crate::remote::server_url(url)?;
    }
    let color = cli.color;
    let terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !args.plain && !terminal {
        bail!(
            "devtrace watch draws a live dashboard and needs a terminal ({} not one); for one line per event (logs, CI) use `devtrace watch --plain`",
            if std::io::stdout().is_terminal() {
                "stdin is"
            } else {
                "stdout is"
            }
        );
    }
    let source: Box<dyn Source> = match &cli.server {
        Some(url) => {
            let mut options = crate::remote::options(
                cli.token.as_deref(),
                cli.project.as_deref(),
                cli.ca_cert.as_deref(),
            );
            // A dashboard waits for no slow answer: the next tick asks again.
            options.read_timeout = Duration::from_secs(10);
            let url = crate::remote::server_url(url)?;
            Box::new(RemoteSource::connect(devtrace_client::Client::new(
                url, options,
            )?)?)
        }
        None => {
            let choice = crate::config::StoreChoice::resolve(
                cli.data.as_deref(),
                cli.store.as_deref(),
                cli.queue_store.as_deref(),
                cli.project.as_deref(),
            )?;
            match &choice.location {
                StoreLocation::Embedded(dir) => Box::new(LocalSource::open(dir)?),
                StoreLocation::Postgres(_) | StoreLocation::ClickHouse { .. } => {
                    Box::new(StoreSource::new(choice.open()?, choice.location.describe()))
                }
            }
        }
    };
    let mut query = LiveQuery::at(now_unix_nano());
    query.active_within_nanos = args.active_within;
    // Enough summary rows per snapshot to see every trace at a few thousand per second.
    query.traces = 200;
    if args.plain {
        // Through the terminal safety net, like every command's output.
        let mut out = crate::output::SafeStdout;
        devtrace_tui::plain::run(
            source,
            query,
            args.session.clone(),
            args.exit_after.map(Duration::from_nanos),
            args.json,
            &mut out,
        )?;
    } else {
        // The dashboard takes over the terminal it runs in: `auto` is NO_COLOR alone.
        let colors = crate::output::colour_wanted(color, true);
        devtrace_tui::app::run(
            source,
            devtrace_tui::app::Options {
                colors,
                session: args.session.clone(),
                query,
            },
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
