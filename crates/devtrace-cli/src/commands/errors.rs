//! `devtrace errors`: errors grouped by fingerprint, with what distinguishes the failing runs
//! from the passing ones; `devtrace errors show`: the causal chain of one error. Loading and
//! rendering live in `devtrace-query` (errors, text::errors), shared with the MCP server.

use super::analysis::{MAX_TRACES, scope_description, scope_or_default_window, window_note};
use crate::cli::{ErrorsArgs, ErrorsCommand};
use crate::output::{print_fitted, print_json, terminal_width};
use anyhow::{Result, bail};
use devtrace_analyze::AnalyzedTrace;
use devtrace_model::recorded::{quote, shell_word};
use devtrace_query::errors::{DEFAULT_LAST, ExplainError, explain, report};
use devtrace_query::text::TextOptions;
use devtrace_query::text::errors::{render_chain, render_report};
use devtrace_query::window::Window;
use devtrace_store::Store;
use serde_json::json;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &ErrorsArgs) -> Result<ExitCode> {
    match &args.command {
        None => list(store, args),
        Some(ErrorsCommand::Show { target }) => show(store, args, target),
    }
}

/// The traces in scope (the default window when neither `--since` nor `--last` is given).
fn load_scope(
    store: &dyn Store,
    args: &ErrorsArgs,
) -> Result<(Vec<AnalyzedTrace>, Option<Window>)> {
    let operation = args.operation.as_deref();
    let (scope, window) = scope_or_default_window(store, &args.scope, operation)?;
    let traces = devtrace_query::errors::load(store, scope, operation)?;
    Ok((traces, window))
}

/// What limited the traces looked at: "traces containing X", "since 2h", "the last hour".
fn scope_parts(args: &ErrorsArgs, window: Option<&Window>) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(operation) = &args.operation {
        parts.push(format!(
            "traces containing {}",
            devtrace_model::recorded::name(operation)
        ));
    }
    if window.is_some() || args.scope.since.is_some() {
        parts.push(scope_description(&args.scope, window));
    }
    parts
}

fn list(store: &dyn Store, args: &ErrorsArgs) -> Result<ExitCode> {
    let (traces, window) = load_scope(store, args)?;
    let report = report(&traces);
    if args.json {
        print_json(&json!({
            "scope": {
                "operation": args.operation,
                "since": args.scope.since,
                "last": args.scope.last.unwrap_or(DEFAULT_LAST).clamp(1, MAX_TRACES),
                "window": window,
            },
            "traces_analysed": report.traces_analysed,
            "failing_traces": report.failing_traces,
            "errors": report.errors,
            "groups": report.groups,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = window_note(window.as_ref());
    out.push_str(&render_report(
        &report,
        &scope_parts(args, window.as_ref()),
        &TextOptions::plain(terminal_width()),
    ));
    if !report.groups.is_empty() {
        out.push_str("\n`devtrace errors show <fingerprint>` gives the causal chain of one\n");
    }
    print_fitted(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn show(store: &dyn Store, args: &ErrorsArgs, target: &str) -> Result<ExitCode> {
    let (traces, _) = load_scope(store, args)?;
    let groups = devtrace_analyze::errors::group_errors(&traces);
    let view = match explain(store, &traces, &groups, target) {
        Ok(view) => view,
        Err(ExplainError::NoMatch { target, looked_at }) => bail!(
            "no error fingerprint or trace id starts with {} (looked at {looked_at} trace{}); run `devtrace errors` to list the fingerprints, or widen the search with `devtrace errors --since 30d show {}`",
            quote(&target),
            if looked_at == 1 { "" } else { "s" },
            shell_word(&target)
        ),
        Err(ExplainError::NoErrors { trace_id }) => {
            bail!("trace {trace_id} has no errors; `devtrace show {trace_id}` draws it")
        }
        Err(ExplainError::Ambiguous {
            target,
            fingerprints,
        }) => bail!(
            "{} matches several error fingerprints ({}); give more characters",
            quote(&target),
            fingerprints.join(", ")
        ),
        Err(ExplainError::ExampleGone {
            fingerprint,
            trace_id,
        }) => bail!(
            "the example trace {trace_id} of error {fingerprint} is no longer stored; run `devtrace errors` again"
        ),
        Err(ExplainError::Store(error)) => return Err(error.into()),
    };
    if args.json {
        print_json(
            &json!({"group": view.group, "chain": view.chain, "correlated_value": view.correlated_value}),
        )?;
    } else {
        print_fitted(&render_chain(
            view.group.as_ref(),
            &view.chain,
            view.correlated_value.as_deref(),
            &TextOptions::plain(terminal_width()),
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}
