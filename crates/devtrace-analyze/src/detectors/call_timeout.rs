//! A call to another process that timed out, and what that process was doing meanwhile.
//!
//! **Rule.** A span whose recorded exception is OTP's call timeout — `{:timeout, {GenServer,
//! :call, [server, request, timeout]}}` in Elixir's syntax, `{timeout,{gen_server,call,[…]}}`
//! in Erlang's (also `gen_statem`, `gen`) — and none of whose children carries the same
//! exception (the call itself, not the callers it propagated through) is a call timeout. The
//! server is the list's first element (a registered name, or a pid matched to the thread
//! `<0.1.0>`); what it was doing is its top-level span (a callback) that overlapped the call
//! the longest. The time lost per run is the wait itself.

use crate::AnalyzedTrace;
use crate::errors::runs_and_survivors;
use crate::finding::{Evidence, Finding, FindingKind, Impact, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::processes::{self, CALL_EXCEPTION};
use devtrace_model::recorded::name as q;
use std::collections::BTreeMap;

/// One timed-out call.
struct Timeout {
    trace: usize,
    call: usize,
    server: String,
    /// The caller's timeout as recorded, milliseconds (None: not a number).
    timeout_ms: Option<f64>,
    /// The server's callback that overlapped the call the longest.
    busy: Option<usize>,
}

pub fn detect(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    let mut by_subject: BTreeMap<(String, String), Vec<Timeout>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for call in 0..trace.spans.spans.len() {
            let Some(found) = timeout_of(t, trace, call) else {
                continue;
            };
            let subject = (trace.span(call).name.clone(), found.server.clone());
            by_subject.entry(subject).or_default().push(found);
        }
    }
    by_subject
        .into_iter()
        .map(|((call, server), found)| finding(traces, &call, &server, &found))
        .collect()
}

fn timeout_of(t: usize, trace: &AnalyzedTrace, call: usize) -> Option<Timeout> {
    let exception = processes::text(trace, call, CALL_EXCEPTION)?;
    let (server, timeout_ms) = parse_call_timeout(&exception)?;
    let propagated = trace.tree.children[call]
        .iter()
        .any(|&c| processes::text(trace, c, CALL_EXCEPTION).as_deref() == Some(&exception));
    if propagated {
        return None;
    }
    let busy = busy_callback(trace, &server, call);
    Some(Timeout {
        trace: t,
        call,
        server,
        timeout_ms,
        busy,
    })
}

/// The server and the timeout of an OTP call-timeout exit, from its summary in either syntax.
pub fn parse_call_timeout(summary: &str) -> Option<(String, Option<f64>)> {
    let compact: String = summary.chars().filter(|c| !c.is_whitespace()).collect();
    let start = compact
        .find("{:timeout,{")
        .or_else(|| compact.find("{timeout,{"))?;
    let rest = &compact[start..];
    let call_at = [
        "GenServer,:call,[",
        "gen_server,call,[",
        ":gen_statem,:call,[",
        "gen_statem,call,[",
        "gen,call,[",
    ]
    .iter()
    .filter_map(|marker| rest.find(marker).map(|at| at + marker.len()))
    .min()?;
    let list = &rest[call_at..];
    let items = top_level_items(list);
    let server = items.first()?.trim_start_matches("#PID").to_owned();
    let timeout_ms = items.get(2).and_then(|t| t.parse::<f64>().ok());
    Some((server, timeout_ms))
}

/// The comma-separated items of a list's text up to its closing bracket, nesting respected.
fn top_level_items(list: &str) -> Vec<String> {
    let (mut items, mut item, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in list.chars() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' if depth == 0 => break,
            ']' | '}' | ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items.push(item);
    items
}

/// The server's top-level span that overlapped the call the longest.
fn busy_callback(trace: &AnalyzedTrace, server: &str, call: usize) -> Option<usize> {
    let span = trace.span(call);
    let (from, to) = (span.start_unix_nano, span.end_unix_nano);
    let life = processes::life_at(trace, server, to)
        .or_else(|| processes::life_at(trace, server, from))?;
    processes::top_level_work(trace, life)
        .into_iter()
        .map(|c| {
            let s = trace.span(c);
            let overlap = s
                .end_unix_nano
                .min(to)
                .saturating_sub(s.start_unix_nano.max(from));
            (c, overlap)
        })
        .filter(|&(_, overlap)| overlap > 0)
        .max_by_key(|&(_, overlap)| overlap)
        .map(|(c, _)| c)
}

fn finding(traces: &[AnalyzedTrace], call: &str, server: &str, found: &[Timeout]) -> Finding {
    let example = &found[0];
    let trace = &traces[example.trace];
    let waited = trace.span(example.call).duration_nanos();
    let saving = found
        .iter()
        .map(|f| traces[f.trace].span(f.call).duration_nanos())
        .sum::<u64>()
        / found.len() as u64;
    let timeout = example
        .timeout_ms
        .map_or("its timeout".to_owned(), |ms| format!("{ms} ms"));
    let meanwhile = example.busy.map(|b| meanwhile(trace, b, example.call));
    let title = format!(
        "A call to {} timed out after {timeout} in {} ({} time{}){}",
        q(server),
        q(call),
        found.len(),
        if found.len() == 1 { "" } else { "s" },
        meanwhile.as_deref().unwrap_or(""),
    );
    let recommendation = match example.busy {
        Some(b) => format!(
            "Make {} answer within the caller's {timeout} (it took {}), or reply later from a Task (GenServer.reply/2) so the server is free, and give the call a timeout that fits the work",
            q(&trace.span(b).name),
            human_duration(trace.span(b).duration_nanos()),
        ),
        None => format!(
            "Find what kept {} from answering within {timeout}: its work is not recorded (record its module)",
            q(server)
        ),
    };
    // Timeouts are counted per call, failures per run: one run may time out many times, and
    // a caller that caught the exit ran on.
    let (runs, survived) = runs_and_survivors(traces, found.iter().map(|f| f.trace));
    let mut numbers = BTreeMap::new();
    numbers.insert("contained_runs".into(), survived as f64);
    numbers.insert("timeouts".into(), found.len() as f64);
    numbers.insert("waited_ms".into(), processes::millis(waited));
    if let Some(t) = example.timeout_ms {
        numbers.insert("timeout_ms".into(), t);
    }
    if let Some(b) = example.busy {
        numbers.insert(
            "server_busy_ms".into(),
            processes::millis(trace.span(b).duration_nanos()),
        );
    }
    Finding {
        kind: FindingKind::CallTimeout,
        operation: Some(call.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::CallTimeout.as_str(), call, server]),
        saving_nanos: saving,
        occurrences: found.len() as u64,
        numbers,
        evidence: found
            .iter()
            .take(MAX_EVIDENCE)
            .map(|f| evidence(traces, f))
            .collect(),
        impact: Impact::failures(runs),
    }
}

/// ": meanwhile "S" was running "S.handle_call/3" (304.7 ms, from 0.1 ms before the call)".
fn meanwhile(trace: &AnalyzedTrace, busy: usize, call: usize) -> String {
    let (b, c) = (trace.span(busy), trace.span(call));
    let when = if b.start_unix_nano <= c.start_unix_nano {
        format!(
            "from {} before the call",
            human_duration(c.start_unix_nano - b.start_unix_nano)
        )
    } else {
        format!(
            "from {} into the call",
            human_duration(b.start_unix_nano - c.start_unix_nano)
        )
    };
    format!(
        ": meanwhile the server was running {} ({}, {when})",
        q(&b.name),
        human_duration(b.duration_nanos())
    )
}

fn evidence(traces: &[AnalyzedTrace], found: &Timeout) -> Evidence {
    let trace = &traces[found.trace];
    Evidence {
        trace_id: trace.trace_id,
        span_ids: std::iter::once(found.call)
            .chain(found.busy)
            .map(|i| trace.span(i).span_id)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, StatusCode, TraceId};

    /// A run (`failed`: whose root span failed) with `calls` calls that timed out.
    fn run_with_timeouts(calls: u8, failed: bool) -> AnalyzedTrace {
        let mut root = span(1, None, "elixir inventory.exs", 0, 1000);
        if failed {
            root.status.code = StatusCode::Error;
        }
        let mut spans = vec![root];
        for n in 0..calls {
            let id = 10 + n;
            let mut call = span(
                id,
                Some(1),
                "Warehouse.stock/1",
                100 * n as u64,
                100 * n as u64 + 50,
            );
            call.status.code = StatusCode::Error;
            call.attributes.push(KeyValue::new(
                CALL_EXCEPTION,
                "{:exit, {:timeout, {GenServer, :call, [Warehouse, {:stock, 1}, 50]}}}",
            ));
            spans.push(call);
        }
        AnalyzedTrace::new(TraceId([1 + failed as u8; 16]), batch(spans))
    }

    #[test]
    fn timeouts_are_counted_per_call_and_failures_per_run() {
        let traces = [run_with_timeouts(5, false), run_with_timeouts(2, true)];
        let [found] = detect(&traces).try_into().expect("one finding");
        assert_eq!(found.numbers["timeouts"], 7.0);
        assert_eq!(found.impact.affected_runs, 2, "two runs, not seven");
        assert_eq!(found.numbers["contained_runs"], 1.0, "the first run ran on");
    }

    #[test]
    fn both_syntaxes_name_the_server_and_the_timeout() {
        let elixir = "{:exit, {:timeout, {GenServer, :call, [Report.Server, :build, 100]}}}";
        assert_eq!(
            parse_call_timeout(elixir),
            Some(("Report.Server".into(), Some(100.0)))
        );
        let erlang = "{exit,{timeout,{gen_server,call,[report_server,{build,[1,2]},5000]}}}";
        assert_eq!(
            parse_call_timeout(erlang),
            Some(("report_server".into(), Some(5000.0)))
        );
        let pid = "{:exit, {:timeout, {GenServer, :call, [#PID<0.108.0>, :build, :infinity]}}}";
        assert_eq!(parse_call_timeout(pid), Some(("<0.108.0>".into(), None)));
    }

    #[test]
    fn other_exits_are_not_call_timeouts() {
        assert_eq!(parse_call_timeout("{:exit, :timeout}"), None);
        assert_eq!(
            parse_call_timeout("{:error, %RuntimeError{message: \"timeout\"}}"),
            None
        );
    }
}
