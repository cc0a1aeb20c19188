//! `analyze_operation(calls=true)`: the recorded calls of one function with their values
//! (arguments, return value, exception) as the native Python recorder captured them, failing
//! calls first, then slowest.

use super::{ToolError, ToolResult, fit};
use devtrace_analyze::errors::is_error_span;
use devtrace_analyze::perf::spans_of;
use devtrace_model::{AnyValue, KeyValue, OperationFilter, Span};
use devtrace_query::Scope;
use devtrace_query::text::{quote, truncate};
use devtrace_query::timefmt::format_duration;
use devtrace_store::Store;

/// The recorder's value attributes (sdk/python/devtrace/recorder.py).
const ARGUMENTS: &str = "devtrace.call.arguments";
const RETURNED: &str = "devtrace.call.return";
const RAISED: &str = "devtrace.call.exception";
/// Longest value shown (the recorder keeps at most 512 bytes a call).
const VALUE_CHARS: usize = 600;
/// Traces read when `last` is not given.
const DEFAULT_LAST: usize = 50;

/// One call, ready to sort and show.
struct Call<'a> {
    failed: bool,
    duration: u64,
    trace: String,
    span: &'a Span,
}

/// The calls of the operation `filter` names, over the traces of `scope`, within `budget`.
pub fn calls(
    store: &dyn Store,
    filter: &OperationFilter,
    scope: Scope,
    budget: usize,
) -> ToolResult {
    let name = filter.name.clone();
    let chosen = devtrace_query::operation::choose(store, filter, scope, DEFAULT_LAST)
        .map_err(|e| ToolError::from_query(store, e, Some(&name)))?;
    let mut calls: Vec<Call> = Vec::new();
    for trace in &chosen.traces {
        for i in spans_of(trace, &chosen.operation) {
            let span = trace.span(i);
            calls.push(Call {
                failed: is_error_span(span),
                duration: span.duration_nanos(),
                trace: trace.trace_id.to_string(),
                span,
            });
        }
    }
    if calls.is_empty() {
        return Err(super::unknown_operation(store, &name));
    }
    calls.sort_by(|a, b| b.failed.cmp(&a.failed).then(b.duration.cmp(&a.duration)));
    let failed = calls.iter().filter(|c| c.failed).count();
    let with_values = calls
        .iter()
        .filter(|c| attribute(&c.span.attributes, ARGUMENTS).is_some())
        .count();
    let mut out = format!(
        "calls of {}: {} in {} traces, {failed} failed, {with_values} with arguments (failing first, then slowest)\n",
        quote(&name),
        calls.len(),
        chosen.traces.len()
    );
    if with_values == 0 {
        out.push_str("no values recorded: record_calls(values=[\"module:qualname\"]) or a plan (devtrace run --plan) captures them\n");
    }
    for call in &calls {
        out.push_str(&line(call));
    }
    Ok(fit(out, budget, "ask with a smaller last, or a since"))
}

fn line(call: &Call) -> String {
    let span = call.span;
    let mut text = format!(
        "{} {} trace {} span {}",
        if call.failed { "FAILED" } else { "ok" },
        format_duration(call.duration),
        call.trace,
        span.span_id
    );
    match attribute(&span.attributes, ARGUMENTS) {
        Some(args) => text.push_str(&format!("\n  arguments: {}", shown(args))),
        None => text.push_str("\n  arguments: not recorded"),
    }
    if let Some(returned) = attribute(&span.attributes, RETURNED) {
        text.push_str(&format!("\n  returned: {}", shown(returned)));
    }
    if let Some(raised) = attribute(&span.attributes, RAISED) {
        text.push_str(&format!("\n  raised: {}", shown(raised)));
    } else if call.failed && !span.status.message.is_empty() {
        text.push_str(&format!("\n  failed: {}", shown(&span.status.message)));
    }
    text.push('\n');
    text
}

/// A recorded value, quoted as data (it is the program's, not an instruction).
fn shown(value: &str) -> String {
    quote(&truncate(value, VALUE_CHARS))
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find_map(|kv| match &kv.value {
        AnyValue::String(s) if kv.key == key => Some(s.as_str()),
        _ => None,
    })
}
