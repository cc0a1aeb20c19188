//! `devtrace insights`: the findings across recent traces, ranked by impact.

use super::analysis::{finding_text, scope_description, scope_or_default_window, window_note};
use crate::cli::InsightsArgs;
use crate::output::{print_fitted, print_json};
use anyhow::Result;
use devtrace_analyze::finding::{FIRST_PAGE, first_page};
use devtrace_store::Store;
use std::process::ExitCode;

/// Traces analysed at most unless `--last` says otherwise (within the default window, see
/// `devtrace_query::window`, when `--since` and `--last` are both absent).
const DEFAULT_LAST: usize = 500;

pub fn run(store: &dyn Store, args: &InsightsArgs) -> Result<ExitCode> {
    if args.sessions {
        return sessions(store, args);
    }
    let operation = args.operation.as_deref();
    let (scope, window) = scope_or_default_window(store, &args.scope, operation)?;
    let filter = operation.map(devtrace_model::OperationFilter::named);
    let traces = devtrace_query::scope::recent(store, scope, filter.as_ref(), DEFAULT_LAST)?;
    let findings = devtrace_query::analytics::trace_findings(&traces);
    let shown: Vec<_> = match (args.all, args.limit) {
        (true, _) => findings.iter().collect(),
        (false, Some(limit)) => findings.iter().take(limit).collect(),
        (false, None) => first_page(&findings, FIRST_PAGE)
            .into_iter()
            .map(|i| &findings[i])
            .collect(),
    };
    if args.json {
        print_json(
            &serde_json::json!({"traces_analysed": traces.len(), "window": window, "findings": shown, "total_findings": findings.len()}),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = window_note(window.as_ref());
    out.push_str(&format!(
        "{} finding{} across {} trace{} ({}), ranked by impact (the share of an operation's time, tokens or runs a fix recovers × how often it runs)\n\n",
        findings.len(),
        if findings.len() == 1 { "" } else { "s" },
        traces.len(),
        if traces.len() == 1 { "" } else { "s" },
        scope_description(&args.scope, window.as_ref()),
    ));
    if findings.is_empty() {
        out.push_str("nothing to report: no detector fired on these traces\n");
    }
    if traces.is_empty() && args.operation.is_none() {
        out.push_str(
            "(program traces only: development sessions have their own detectors, see `devtrace insights --sessions`)\n",
        );
    }
    for (n, finding) in shown.iter().enumerate() {
        out.push_str(&finding_text(finding, n + 1));
        out.push('\n');
    }
    if findings.len() > shown.len() {
        out.push_str(&format!(
            "… {} more (--all, or --limit N for the top N by impact)\n",
            findings.len() - shown.len(),
        ));
    }
    print_fitted(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// Sessions analysed for cross-session insights unless `--last` says otherwise.
const DEFAULT_SESSIONS: usize = 20;

/// `--sessions`: observations recurring across development sessions, as quoted data.
fn sessions(store: &dyn Store, args: &InsightsArgs) -> Result<ExitCode> {
    let repository = args
        .repo
        .as_deref()
        .map(devtrace_query::sessions::repository_argument);
    let answer = devtrace_query::sessions::session_insights(
        store,
        repository.as_deref(),
        args.scope.last.unwrap_or(DEFAULT_SESSIONS),
        args.task.as_deref(),
        if args.all {
            usize::MAX
        } else {
            args.limit.unwrap_or(FIRST_PAGE)
        },
    )?;
    if args.json {
        print_json(&answer)?;
    } else {
        print_fitted(&devtrace_query::sessions::render_insights(&answer))?;
    }
    Ok(ExitCode::SUCCESS)
}
