//! `devtrace sessions` and `devtrace session show`: development sessions from the store,
//! through the read side every face shares (`devtrace_query::sessions`).

use crate::cli::{SessionCommand, SessionsArgs};
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::Result;
use devtrace_query::QueryError;
use devtrace_query::sessions::compare::{compare_sessions, render_comparison};
use devtrace_query::sessions::{
    Face, PageRequest, SessionFilter, list_sessions, render_list, render_page, render_usage_days,
    repository_argument, session_error, session_overview, usage_per_day,
};
use devtrace_query::text::TextOptions;
use devtrace_query::timefmt::now_nanos;
use devtrace_store::Store;
use std::process::ExitCode;

pub fn list(store: &dyn Store, args: &SessionsArgs) -> Result<ExitCode> {
    let since = args.since.as_ref().map(|w| w.unix_nanos(now_nanos()));
    if args.daily {
        let days = usage_per_day(store, args.agent.as_deref(), since)?;
        if args.json {
            print_json(&days)?;
        } else {
            print_fitted(&render_usage_days(&days))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let items = list_sessions(
        store,
        &SessionFilter {
            agent: args.agent.clone(),
            project: args.repo.as_deref().map(repository_argument),
            since_unix_nano: since,
            active_between: None,
            limit: Some(args.limit),
        },
    )?;
    if args.json {
        print_json(&items)?;
    } else {
        print_fitted(&render_list(&items, crate::output::terminal_width()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// An id that names no session, in the words every face uses
/// ([`devtrace_query::sessions::no_session`]); other errors as they are.
pub(crate) fn no_such_session(store: &dyn Store, error: QueryError) -> anyhow::Error {
    session_error(store, error, Face::Cli).into()
}

pub fn session(
    store: &dyn Store,
    command: &SessionCommand,
    data: Option<&std::path::Path>,
) -> Result<ExitCode> {
    match command {
        SessionCommand::Show {
            id,
            requests,
            budget,
            offset,
            json,
        } => {
            let overview = session_overview(store, id).map_err(|e| no_such_session(store, e))?;
            if *json {
                print_json(&overview)?;
                return Ok(ExitCode::SUCCESS);
            }
            let page = render_page(
                &overview,
                &PageRequest {
                    face: Face::Cli,
                    options: TextOptions::plain(terminal_width()),
                    offset: *offset,
                    budget: *budget,
                    repeat_budget: true,
                    measure: &devtrace_mcp::budget::count,
                    qa: String::new(),
                    trailer: super::serve::web_link_line(
                        data,
                        &devtrace_query::links::session(&overview.session.trace_id, None),
                    ),
                    requests: *requests,
                },
            )?;
            print_fitted(&page.text)?;
            Ok(ExitCode::SUCCESS)
        }
        SessionCommand::Compare { a, b, json } => {
            let comparison =
                compare_sessions(store, a, b).map_err(|e| no_such_session(store, e))?;
            if *json {
                print_json(&comparison)?;
            } else {
                print_fitted(&render_comparison(
                    &comparison,
                    &devtrace_query::text::TextOptions::plain(terminal_width()),
                ))?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
