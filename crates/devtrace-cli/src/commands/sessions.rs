//! `devtrace sessions` and `devtrace session show`: development sessions from the store,
//! through the read side every face shares (`devtrace_query::sessions`).

use crate::cli::{SessionCommand, SessionsArgs};
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::Result;
use devtrace_query::QueryError;
use devtrace_query::sessions::compare::{compare_sessions, render_comparison};
use devtrace_query::sessions::tokens::render_request_table;
use devtrace_query::sessions::{
    SessionFilter, list_sessions, render_list, render_overview_with, render_usage_days,
    repository_argument, session_overview, usage_per_day,
};
use devtrace_query::timefmt::now_nanos;
use devtrace_store::{Store, StoreError};
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

/// A session that is not there, in a session's words (a trace id prefix or the agent's own
/// session id names one; `devtrace sessions` lists them); other errors as they are.
pub(crate) fn no_such_session(error: QueryError) -> anyhow::Error {
    match error {
        QueryError::Store(StoreError::TraceNotFound(id)) => anyhow::anyhow!(
            "no session matches {}: give its trace id (or a unique prefix of 8 or more) or the agent's own session id; `devtrace sessions` lists them",
            devtrace_model::recorded::quote(&id)
        ),
        other => other.into(),
    }
}

pub fn session(
    store: &dyn Store,
    command: &SessionCommand,
    data: Option<&std::path::Path>,
) -> Result<ExitCode> {
    match command {
        SessionCommand::Show { id, requests, json } => {
            let overview = session_overview(store, id).map_err(no_such_session)?;
            if *json {
                print_json(&overview)?;
            } else {
                let options = devtrace_query::text::TextOptions::plain(terminal_width());
                let mut out = render_overview_with(&overview, &options);
                if *requests {
                    out.push_str("\nrequests:\n");
                    out.push_str(&render_request_table(&overview.requests, &options));
                }
                out.push_str(&super::serve::web_link_line(
                    data,
                    &devtrace_query::links::session(&overview.session.trace_id, None),
                ));
                print_fitted(&out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SessionCommand::Compare { a, b, json } => {
            let comparison = compare_sessions(store, a, b).map_err(no_such_session)?;
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
