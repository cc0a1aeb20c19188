//! `devtrace project`: the projects of a team store and their retention.

use crate::cli::ProjectCommand;
use crate::config::StoreChoice;
use crate::output::{print_fitted, print_json};
use crate::usage::usage;
use anyhow::{Result, bail};
use devtrace_query::text::fit::{Align, Column, Fit, Table};
use devtrace_query::timefmt::format_duration;
use std::process::ExitCode;

pub fn run(choice: &StoreChoice, command: &ProjectCommand) -> Result<ExitCode> {
    let backend = choice.backend()?;
    let accounts = &*backend.accounts;
    match command {
        ProjectCommand::List { json } => {
            let projects = accounts.projects()?;
            if *json {
                print_json(&projects)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut table = Table::new(vec![
                Column::new("PROJECT", Align::Left, Fit::Shrink { min: 16 }),
                Column::new("RETENTION", Align::Left, Fit::Keep),
            ]);
            for project in &projects {
                table.row(vec![
                    devtrace_model::recorded::escape(&project.name).into(),
                    project
                        .retention_nanos
                        .map_or_else(|| "keep everything".to_owned(), format_duration)
                        .into(),
                ]);
            }
            let text = table.render(crate::output::terminal_width(), &|_, text| text.to_owned());
            print_fitted(&text)?;
        }
        ProjectCommand::Create { name, json } => {
            let name = name.trim();
            if name.is_empty() {
                usage!("a project needs a name");
            }
            let existed = accounts.project_named(name)?.is_some();
            let project = accounts.ensure_project(name)?;
            if *json {
                print_json(&serde_json::json!({"project": project, "existed": existed}))?;
                return Ok(ExitCode::SUCCESS);
            }
            crate::output::eprintln_safe!(
                "project {} {}",
                devtrace_model::recorded::quote(&project.name),
                if existed { "already exists" } else { "created" }
            );
        }
        ProjectCommand::Set {
            name,
            retention,
            json,
        } => {
            let keep = retention.0;
            let Some(project) = accounts.project_named(name)? else {
                bail!(
                    "there is no project {}; `devtrace project list` shows them",
                    devtrace_model::recorded::quote(name)
                );
            };
            accounts.set_retention(project.id, keep)?;
            if *json {
                let now = accounts.project_named(&project.name)?.unwrap_or(project);
                print_json(&now)?;
                return Ok(ExitCode::SUCCESS);
            }
            match keep {
                Some(nanos) => crate::output::eprintln_safe!(
                    "project {} keeps {}: older data is deleted while `devtrace serve` runs",
                    devtrace_model::recorded::quote(&project.name),
                    format_duration(nanos)
                ),
                None => {
                    crate::output::eprintln_safe!(
                        "project {} keeps everything",
                        devtrace_model::recorded::quote(&project.name)
                    )
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
