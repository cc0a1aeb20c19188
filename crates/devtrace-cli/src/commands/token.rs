//! `devtrace token`: API tokens, managed with direct access to the store (so the first admin
//! token needs no running server, and there is no default password).

use crate::cli::TokenCommand;
use crate::config::StoreChoice;
use crate::output::{print_json, print_stdout, terminal_width};
use anyhow::{Context, Result, bail};
use devtrace_query::text::fit::{Align, Column, Fit, Table};
use devtrace_query::timefmt::{format_timestamp, format_timestamp_zoned, now_nanos, zone_name};
use devtrace_server::auth::{Scope, token};
use devtrace_store::{Accounts, TokenRecord};
use std::process::ExitCode;

pub fn run(choice: &StoreChoice, command: &TokenCommand) -> Result<ExitCode> {
    let backend = choice.backend()?;
    let accounts = &*backend.accounts;
    match command {
        TokenCommand::Create {
            scopes,
            name,
            expires,
            json,
        } => create(
            accounts,
            choice.project.as_deref(),
            scopes,
            name,
            *expires,
            *json,
        ),
        TokenCommand::List { json } => list(accounts, *json),
        TokenCommand::Revoke { token, json } => revoke(accounts, token, *json),
    }
}

fn create(
    accounts: &dyn Accounts,
    project: Option<&str>,
    scopes: &[Scope],
    name: &str,
    expires: Option<u64>,
    json: bool,
) -> Result<ExitCode> {
    let project = accounts.ensure_project(project.unwrap_or("default"))?;
    let now = now_nanos();
    let minted = token::mint(
        project.id,
        name,
        scopes,
        now,
        expires.map(|d| now.saturating_add(d)),
    )
    .context("cannot draw random bytes for the token")?;
    accounts.add_token(&minted.stored)?;
    let stored = &minted.stored;
    if json {
        print_json(&serde_json::json!({
            "token": minted.token,
            "id": stored.public_id,
            "name": stored.name,
            "project": project.name,
            "scopes": stored.scopes,
            "expires": stored.expires_unix_nano.map(devtrace_model::time::format_rfc3339),
        }))?;
    } else {
        print_stdout(&format!("{}\n", minted.token))?;
        crate::output::eprintln_safe!(
            "token {} ({}) for project {}, scopes {}{}; shown only now: keep it secret",
            stored.public_id,
            devtrace_model::recorded::quote(&stored.name),
            devtrace_model::recorded::quote(&project.name),
            stored.scopes.join(", "),
            stored
                .expires_unix_nano
                .map(|t| format!(", expires {}", format_timestamp_zoned(t)))
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn list(accounts: &dyn Accounts, json: bool) -> Result<ExitCode> {
    let tokens = accounts.tokens()?;
    let now = now_nanos();
    if json {
        let rows: Vec<serde_json::Value> = tokens
            .iter()
            .map(|t| {
                let time = |v: Option<u64>| v.map(devtrace_model::time::format_rfc3339);
                serde_json::json!({
                    "id": t.token.public_id,
                    "name": t.token.name,
                    "project": t.project_name,
                    "scopes": t.token.scopes,
                    "created": devtrace_model::time::format_rfc3339(t.token.created_unix_nano),
                    "last_used": time(t.last_used_unix_nano),
                    "expires": time(t.token.expires_unix_nano),
                    "revoked": time(t.revoked_unix_nano),
                    "state": state(t, now),
                })
            })
            .collect();
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    if tokens.is_empty() {
        crate::output::eprintln_safe!(
            "no tokens: make one with `devtrace token create --project NAME --scope read --name NAME`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let zone = zone_name();
    let mut table = Table::new(vec![
        Column::new("ID", Align::Left, Fit::Keep),
        Column::new("NAME", Align::Left, Fit::Shrink { min: 10 }),
        Column::new("PROJECT", Align::Left, Fit::Optional(3)),
        Column::new("SCOPES", Align::Left, Fit::Optional(4)),
        Column::new(format!("CREATED ({zone})"), Align::Left, Fit::Optional(0)),
        Column::new(format!("LAST USED ({zone})"), Align::Left, Fit::Optional(1)),
        Column::new(format!("EXPIRES ({zone})"), Align::Left, Fit::Optional(2)),
        Column::new("STATE", Align::Left, Fit::Optional(5)),
    ]);
    let when = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), format_timestamp);
    for t in &tokens {
        table.row(vec![
            t.token.public_id.clone().into(),
            devtrace_model::recorded::escape(&t.token.name).into(),
            devtrace_model::recorded::escape(&t.project_name).into(),
            t.token.scopes.join(",").into(),
            format_timestamp(t.token.created_unix_nano).into(),
            when(t.last_used_unix_nano).into(),
            t.token
                .expires_unix_nano
                .map_or_else(|| "never".to_owned(), format_timestamp)
                .into(),
            state(t, now).into(),
        ]);
    }
    let text = table.render(terminal_width(), &|_, text| text.to_owned());
    crate::output::print_fitted(&text)?;
    Ok(ExitCode::SUCCESS)
}

fn state(token: &TokenRecord, now: u64) -> &'static str {
    if token.revoked_unix_nano.is_some() {
        "revoked"
    } else if token.token.expires_unix_nano.is_some_and(|t| t <= now) {
        "expired"
    } else {
        "active"
    }
}

fn revoke(accounts: &dyn Accounts, given: &str, json: bool) -> Result<ExitCode> {
    let given = given.trim();
    // The whole token, its id, or the name of one active token.
    let id = match token::parse(given) {
        Ok(presented) => presented.public_id,
        Err(_) if given.starts_with(token::PREFIX) => given.to_owned(),
        Err(_) => {
            let now = now_nanos();
            let named: Vec<TokenRecord> = accounts
                .tokens()?
                .into_iter()
                .filter(|t| t.token.name == given && state(t, now) == "active")
                .collect();
            match named.as_slice() {
                [one] => one.token.public_id.clone(),
                [] => bail!(
                    "no active token is named {}: give its id (dtk_…) as `devtrace token list` shows it",
                    devtrace_model::recorded::quote(given)
                ),
                many => bail!(
                    "{} active tokens are named {} ({}): give the id of the one to revoke",
                    many.len(),
                    devtrace_model::recorded::quote(given),
                    many.iter()
                        .map(|t| t.token.public_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
    };
    let Some(found) = accounts.token(&id)? else {
        bail!("there is no token {id}: `devtrace token list` shows the ids");
    };
    let revoked_now = accounts.revoke_token(&id, now_nanos())?;
    if json {
        print_json(&serde_json::json!({
            "id": id,
            "name": found.token.name,
            "project": found.project_name,
            "revoked_before": !revoked_now,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    if !revoked_now {
        crate::output::eprintln_safe!(
            "token {id} ({}) was already revoked",
            devtrace_model::recorded::quote(&found.token.name)
        );
        return Ok(ExitCode::SUCCESS);
    }
    crate::output::eprintln_safe!(
        "revoked token {id} ({}, project {}): every node refuses it from its next request",
        devtrace_model::recorded::quote(&found.token.name),
        devtrace_model::recorded::quote(&found.project_name)
    );
    Ok(ExitCode::SUCCESS)
}
