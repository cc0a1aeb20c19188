//! `devtrace perf`: where an operation's time goes across its recent runs.

use super::analysis::{
    DEFAULT_LAST, MAX_TRACES, finding_text, one, scope_description, scope_or_default_window, since,
    window_note,
};
use crate::cli::PerfArgs;
use crate::output::eprintln_safe;
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::Result;
use devtrace_analyze::outcome::ByOutcome;
use devtrace_analyze::perf::{OperationTotal, profile_operation};
use devtrace_model::recorded::shell_word;
use devtrace_model::{Operation, OperationFilter};
use devtrace_query::Scope;
use devtrace_query::analytics::findings_for_operation;
use devtrace_query::operation::{OtherIdentity, choose, service_entry_points};
use devtrace_query::overview::rank_roots;
use devtrace_query::timefmt::format_duration;
use devtrace_store::{Store, TraceQuery};
use serde_json::json;
use std::process::ExitCode;

/// Findings shown under a breakdown.
const FINDINGS_SHOWN: usize = 3;

/// Traces a service's operations are ranked over unless `--last` says otherwise.
const SERVICE_TRACES: usize = 200;

pub fn run(store: &dyn Store, args: &PerfArgs, data: Option<&std::path::Path>) -> Result<ExitCode> {
    let scope = Scope {
        last: args.scope.last,
        since_unix_nano: since(&args.scope),
    };
    let (traces, operation, others) = match (&args.trace, &args.operation) {
        (Some(id), _) => {
            let trace = one(store, id)?;
            let Some(root) = trace.root() else {
                anyhow::bail!("trace {id} has no spans");
            };
            let operation = Operation::of(&trace.spans, trace.span(root));
            (vec![trace], operation, Vec::new())
        }
        (None, Some(name)) => {
            let filter = OperationFilter {
                name: name.clone(),
                service: args.service.clone(),
                kind: args.kind,
            };
            let chosen = choose(store, &filter, scope, DEFAULT_LAST).map_err(|e| match e {
                devtrace_query::QueryError::OperationElsewhere(message) => {
                    anyhow::anyhow!("{message}; choose one with --service and --kind")
                }
                other => other.into(),
            })?;
            (chosen.traces, chosen.operation, chosen.others)
        }
        (None, None) => {
            return match &args.service {
                Some(service) => rank_service(store, args, service, scope),
                None => rank(store, args),
            };
        }
    };
    let Some(profile) = profile_operation(&traces, &operation) else {
        anyhow::bail!(
            "no span of {} in the selected traces",
            devtrace_query::text::quote(&operation.label())
        );
    };
    let findings = findings_for_operation(&traces, &profile);
    if args.json {
        print_json(&json!({"profile": profile, "other_identities": others, "findings": findings}))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = devtrace_query::text::render_profile_with(
        &profile,
        &devtrace_query::text::TextOptions::plain(terminal_width()),
    );
    out.push_str(&other_identities_text(&operation, &others));
    if !findings.is_empty() {
        out.push_str("\nfindings\n");
        for (n, finding) in findings.iter().take(FINDINGS_SHOWN).enumerate() {
            out.push_str(&finding_text(finding, n + 1));
        }
        if findings.len() > FINDINGS_SHOWN {
            out.push_str(&format!(
                "   … {} more: devtrace insights --operation {}\n",
                findings.len() - FINDINGS_SHOWN,
                shell_word(&operation.name)
            ));
        }
    }
    out.push_str(&super::serve::web_link_line(
        data,
        &devtrace_query::links::operation(&operation.name),
    ));
    print_fitted(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// "also named X: a client span of frontend (12 spans): devtrace perf X --service … --kind …".
fn other_identities_text(operation: &Operation, others: &[OtherIdentity]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "\n{} also names {} other operation{} (not in these numbers):\n",
        devtrace_query::text::quote(&operation.name),
        others.len(),
        if others.len() == 1 { "" } else { "s" }
    );
    for other in others {
        let o = &other.operation;
        out.push_str(&format!(
            "  {} span of {} ({} span{} in these runs): devtrace perf {} --service {} --kind {}\n",
            o.kind.as_str(),
            devtrace_model::recorded::escape(&o.service),
            other.spans,
            if other.spans == 1 { "" } else { "s" },
            shell_word(&o.name),
            shell_word(&o.service),
            o.kind.as_str()
        ));
    }
    out
}

/// `devtrace perf` with no operation: root operations ranked by total time, over the default
/// window unless `--since` or `--last` says otherwise.
fn rank(store: &dyn Store, args: &PerfArgs) -> Result<ExitCode> {
    let (scope, window) = scope_or_default_window(store, &args.scope, None)?;
    let limit = scope.last.unwrap_or(1_000).clamp(1, MAX_TRACES * 20);
    let summaries = store.list_traces(&TraceQuery {
        runtime_only: true,
        since_unix_nano: scope.since_unix_nano,
        limit,
        ..Default::default()
    })?;
    let ranked = rank_roots(&summaries);
    if args.json {
        print_json(&ranked)?;
        return Ok(ExitCode::SUCCESS);
    }
    if ranked.is_empty() {
        eprintln_safe!(
            "no program traces in {}; send some to `devtrace serve` first, or widen --since (development sessions are listed by `devtrace sessions`)",
            scope_description(&args.scope, window.as_ref())
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut heading = window_note(window.as_ref());
    heading.push_str(&format!(
        "root operations by total time over {} trace{} ({})",
        summaries.len(),
        if summaries.len() == 1 { "" } else { "s" },
        scope_description(&args.scope, window.as_ref())
    ));
    print_fitted(&ranking_table(
        &heading,
        &ranked,
        "devtrace perf <operation>",
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// `devtrace perf --service S`: the operations S handles, ranked by total time.
fn rank_service(
    store: &dyn Store,
    args: &PerfArgs,
    service: &str,
    scope: Scope,
) -> Result<ExitCode> {
    let (ranked, traces) = service_entry_points(store, service, scope, SERVICE_TRACES)?;
    if args.json {
        print_json(&ranked)?;
        return Ok(ExitCode::SUCCESS);
    }
    if ranked.is_empty() {
        eprintln_safe!(
            "no traces with spans of {} in scope; widen --since",
            devtrace_query::text::quote(service)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let heading = format!(
        "operations {} handles, by total time over the last {traces} traces with its spans",
        devtrace_query::text::quote(service)
    );
    let next = format!(
        "devtrace perf <operation> --service {}",
        shell_word(service)
    );
    print_fitted(&ranking_table(&heading, &ranked, &next))?;
    Ok(ExitCode::SUCCESS)
}

fn ranking_table(heading: &str, ranked: &[OperationTotal], next: &str) -> String {
    use devtrace_query::text::fit::{Align, Column, Fit, Table};
    let mut table = Table::new(vec![
        Column::new("operation", Align::Left, Fit::Shrink { min: 16 }),
        Column::new("service", Align::Left, Fit::Optional(2)),
        Column::new("runs", Align::Right, Fit::Optional(1)),
        Column::new("total", Align::Right, Fit::Keep),
        Column::new("mean", Align::Right, Fit::Optional(4)),
        Column::new("p95", Align::Right, Fit::Optional(3)),
        Column::new("errors", Align::Right, Fit::Optional(0)),
    ]);
    for row in ranked {
        table.row(vec![
            devtrace_query::text::escape(&row.operation).into(),
            devtrace_query::text::cell(&row.service, 24).into(),
            row.runs.to_string().into(),
            format_duration(row.total_nanos).into(),
            // Never one mean of successes and failures: said apart under the table.
            match row.by_outcome {
                None => format_duration(row.duration.mean as u64).into(),
                Some(_) => "below".into(),
            },
            format_duration(row.duration.p95 as u64).into(),
            row.errors.to_string().into(),
        ]);
    }
    // Indented under the heading: two columns fewer for the table.
    let rendered = table.render(terminal_width().saturating_sub(2), &|_, text| {
        text.to_owned()
    });
    let mut out = format!("{heading}\n\n");
    for line in rendered.lines() {
        out.push_str(&format!("  {line}\n"));
    }
    let split: Vec<(&OperationTotal, &ByOutcome)> = ranked
        .iter()
        .filter_map(|r| Some((r, r.by_outcome.as_ref()?)))
        .collect();
    if !split.is_empty() {
        out.push_str("\nmean by outcome:\n");
    }
    for (row, by) in split {
        out.push_str(&format!(
            "  {} ({}): {}\n",
            devtrace_query::text::escape(&row.operation),
            devtrace_query::text::escape(&row.service),
            devtrace_analyze::outcome::described(by)
        ));
    }
    out.push_str(&format!("\nbreak one down with: {next}\n"));
    out
}
