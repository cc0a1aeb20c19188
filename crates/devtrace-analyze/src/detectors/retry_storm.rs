//! Retry storms: the same call failing and being retried again and again.
//!
//! **Rule.** Siblings are the same call when they share a span name and call template (SQL
//! statement, else method and URL, else the name; see [`call_template`]) and, when recorded,
//! the same arguments. A storm is a run of at least [`Thresholds::min_attempts`] consecutive
//! siblings of the same call, one after another (no attempt starts before the previous one
//! ended), where every attempt but possibly the last failed: status Error, or a recorded
//! return value that is an error tuple (`{:error, reason}`, Erlang's `{error, Reason}`: how
//! BEAM code fails without raising). A retry written as a recursive loop — `get(id, attempt)`
//! calling the server, sleeping, then `get(id, attempt + 1)` — has its attempts one a turn:
//! the first call of each of consecutive turns of one function is a sibling run too, and a
//! failed attempt's time is its whole turn (the attempt and the back-off after it). A span reporting `http.request.resend_count` of at
//! least [`Thresholds::min_resend_count`] is a storm too (OpenTelemetry HTTP clients emit one
//! span per physical attempt and number the resends), unless its attempts already form a run
//! above; its earlier attempts are the closest preceding siblings of the same call.
//!
//! **Saving model.** The time of the failed attempts: with backoff, a cap and the cause fixed,
//! that time is not spent. For a resend-count storm, earlier attempts missing from the trace
//! are estimated at the mean duration of the attempts present. Across runs the finding is
//! aggregated per call (name and template): `occurrences` is the number of traces with a storm,
//! `saving_nanos` the mean time lost per such trace. The most common error of the failed
//! attempts (exception type and message, else `error.type` and the status message) is named in
//! the title.
//!
//! **Does not fire on** a single retry or two attempts in a row, failures interleaved with
//! other work (not a loop), concurrent failures (a fan-out, not a retry), a resend count of
//! 1, or the crashed lives of a process, nor their first calls (a restart loop of a child
//! failing in its `init/1`: `restart_loop`).
//!
//! [`call_template`]: super::repeated_calls

use crate::call::{Template, call_template};
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::{fingerprint, normalize_text};
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::recorded::quote_short;
use devtrace_model::{SpanId, semconv};
use std::collections::BTreeMap;

const RESEND_COUNT: &str = "http.request.resend_count";

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest number of consecutive attempts of one call (all failed but possibly the last)
    /// that makes a storm. Default 3: the original call and two retries. One retry after a
    /// failure is normal resilience; a third attempt in a row means the loop keeps hitting the
    /// same failure.
    pub min_attempts: usize,
    /// Smallest `http.request.resend_count` on one span that makes a storm. Default 2: the
    /// same threshold as above, counted by the HTTP client (the third attempt).
    pub min_resend_count: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_attempts: 3,
            min_resend_count: 2,
        }
    }
}

/// One storm: consecutive attempts of one call under one parent.
#[derive(Debug)]
struct Storm {
    trace: usize,
    parent_id: Option<SpanId>,
    /// Attempts in start order.
    attempt_ids: Vec<SpanId>,
    retries: u64,
    failed: u64,
    lost_nanos: u64,
    /// Error descriptions of the failed attempts.
    errors: Vec<String>,
    /// Found by `http.request.resend_count` only (the attempts may not have failed).
    resent_only: bool,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_call: BTreeMap<(String, Template), Vec<Storm>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let parents = (0..trace.tree.children.len()).map(|p| (Some(p), &trace.tree.children[p]));
        for (parent, siblings) in std::iter::once((None, &trace.tree.roots)).chain(parents) {
            if siblings.is_empty() {
                continue;
            }
            let mut found = storms_among(trace, t, parent, (siblings, siblings), thresholds);
            for (turns, attempts) in attempts_in_turns(trace, siblings, thresholds) {
                found.extend(storms_among(
                    trace,
                    t,
                    parent,
                    (&attempts, &turns),
                    thresholds,
                ));
            }
            for (key, storm) in found {
                by_call.entry(key).or_default().push(storm);
            }
        }
    }
    by_call
        .into_iter()
        .map(|((name, template), storms)| finding(traces, &name, &template, &storms))
        .collect()
}

/// The attempts of retry loops written as recursion: of each run of at least `min_attempts`
/// consecutive siblings of one function (a loop's turns, side by side), the first call each
/// turn made, when every turn made one of the same name — (the turns, their attempts).
fn attempts_in_turns(
    trace: &AnalyzedTrace,
    siblings: &[usize],
    thresholds: &Thresholds,
) -> Vec<(Vec<usize>, Vec<usize>)> {
    let first_call = |turn: usize| {
        trace.tree.children[turn]
            .iter()
            .copied()
            .find(|&c| trace.span(c).name != "receive")
    };
    let mut out = Vec::new();
    for run in siblings.chunk_by(|&a, &b| trace.span(a).name == trace.span(b).name) {
        // A process's lives started one after another, each failing in its `init/1`, are a
        // restart loop, not a loop's turns (restart_loop.rs).
        let lives = run
            .iter()
            .any(|&turn| crate::processes::is_life(trace, turn));
        if lives || run.len() < thresholds.min_attempts.max(2) {
            continue;
        }
        let attempts: Option<Vec<usize>> = run.iter().map(|&turn| first_call(turn)).collect();
        if let Some(attempts) = attempts.filter(|a| {
            a.iter()
                .all(|&c| trace.span(c).name == trace.span(a[0]).name)
        }) {
            out.push((run.to_vec(), attempts));
        }
    }
    out
}

/// Whether a call failed: its status, or a recorded return value that is an error tuple.
fn failed(trace: &AnalyzedTrace, index: usize) -> bool {
    trace.span(index).is_error() || returned_error(trace, index).is_some()
}

/// The error tuple a call returned (`{:error, :unavailable}`, Erlang's `{error, Reason}`), or
/// the bare `:error`, when it did.
fn returned_error(trace: &AnalyzedTrace, index: usize) -> Option<String> {
    let value = crate::processes::text(trace, index, crate::processes::CALL_RETURN)?;
    // A tuple of two or more items tagged `error`, or the atom alone.
    let tuple = crate::call_values::tuple_items(&value);
    let is_error =
        crate::call_values::tag(&value) == "error" && tuple.is_none_or(|items| items.len() >= 2);
    is_error.then(|| value.clone())
}

/// Storms among `attempts` (siblings, or the first calls of a loop's turns), each attempt's
/// time that of its counterpart in `time_of` (itself, or its turn).
fn storms_among(
    trace: &AnalyzedTrace,
    trace_index: usize,
    parent: Option<usize>,
    (siblings, time_of): (&[usize], &[usize]),
    thresholds: &Thresholds,
) -> Vec<((String, Template), Storm)> {
    let keys: Vec<(&str, Template)> = siblings
        .iter()
        .map(|s| (trace.span(*s).name.as_str(), call_template(trace, *s)))
        .collect();
    let parent_id = parent.map(|p| trace.span(p).span_id);
    // A process's lives that crash one after another are a restart loop (restart_loop.rs).
    let is_error =
        |i: usize| failed(trace, siblings[i]) && !crate::processes::is_life(trace, siblings[i]);
    let arguments =
        |i: usize| crate::processes::text(trace, siblings[i], crate::processes::CALL_ARGUMENTS);
    // Sibling i continues the run of sibling i − 1: the same call (with the same arguments,
    // when recorded: a loop over items is no retry), started after it ended.
    let continues = |i: usize| {
        i > 0
            && keys[i] == keys[i - 1]
            && trace.span(siblings[i]).start_unix_nano >= trace.span(siblings[i - 1]).end_unix_nano
            && match (arguments(i - 1), arguments(i)) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    };
    let mut out = Vec::new();
    let mut consumed = vec![false; siblings.len()];
    let mut i = 0;
    while i < siblings.len() {
        if !is_error(i) {
            i += 1;
            continue;
        }
        // Failures in a row, then possibly one more attempt of the same call (the last).
        let start = i;
        let mut end = i + 1;
        while end < siblings.len() && continues(end) && is_error(end) {
            end += 1;
        }
        let failed_end = end;
        if end < siblings.len() && continues(end) {
            end += 1;
        }
        if end - start >= thresholds.min_attempts.max(2) {
            consumed[start..end].iter_mut().for_each(|c| *c = true);
            let attempts = &siblings[start..end];
            let failed = &siblings[start..failed_end];
            out.push((
                (keys[start].0.to_owned(), keys[start].1.clone()),
                Storm {
                    trace: trace_index,
                    parent_id,
                    attempt_ids: attempts.iter().map(|s| trace.span(*s).span_id).collect(),
                    retries: (attempts.len() - 1) as u64,
                    failed: failed.len() as u64,
                    lost_nanos: time_of[start..failed_end]
                        .iter()
                        .map(|s| trace.span(*s).duration_nanos())
                        .fold(0, u64::saturating_add),
                    errors: failed.iter().filter_map(|s| error_of(trace, *s)).collect(),
                    resent_only: false,
                },
            ));
        }
        i = failed_end.max(start + 1);
    }
    // Resend counts, latest first so that a chain is counted once, at its last attempt.
    for i in (0..siblings.len()).rev() {
        if consumed[i] {
            continue;
        }
        let resends = trace
            .span(siblings[i])
            .attr(RESEND_COUNT)
            .and_then(|v| v.as_i64())
            .unwrap_or(0);
        if resends < thresholds.min_resend_count.max(1) {
            continue;
        }
        consumed[i] = true;
        let mut earlier: Vec<usize> = (0..i)
            .rev()
            .filter(|j| !consumed[*j] && keys[*j] == keys[i])
            .take(usize::try_from(resends).unwrap_or(usize::MAX))
            .collect();
        earlier.reverse();
        earlier.iter().for_each(|j| consumed[*j] = true);
        let durations: Vec<u64> = earlier
            .iter()
            .chain(std::iter::once(&i))
            .map(|j| trace.span(siblings[*j]).duration_nanos())
            .collect();
        let mean = durations.iter().map(|d| *d as f64).sum::<f64>() / durations.len() as f64;
        let missing = (resends as u64).saturating_sub(earlier.len() as u64);
        let present: u64 = durations[..earlier.len()]
            .iter()
            .copied()
            .fold(0, u64::saturating_add);
        let lost = present.saturating_add((mean * missing as f64).round() as u64);
        let mut errors: Vec<String> = earlier
            .iter()
            .filter_map(|j| error_of(trace, siblings[*j]))
            .collect();
        if errors.is_empty() {
            errors.extend(error_of(trace, siblings[i]));
        }
        out.push((
            (keys[i].0.to_owned(), keys[i].1.clone()),
            Storm {
                trace: trace_index,
                parent_id,
                attempt_ids: earlier
                    .iter()
                    .chain(std::iter::once(&i))
                    .map(|j| trace.span(siblings[*j]).span_id)
                    .collect(),
                retries: resends as u64,
                failed: resends as u64,
                lost_nanos: lost,
                errors,
                resent_only: true,
            },
        ));
    }
    out
}

/// What went wrong in a span: its exception type and message, else `error.type` and the
/// status message; `None` when the span says nothing.
fn error_of(trace: &AnalyzedTrace, index: usize) -> Option<String> {
    if let Some(returned) = returned_error(trace, index).filter(|_| !trace.span(index).is_error()) {
        return Some(shorten(&returned, 120));
    }
    let span = trace.span(index);
    let exception = span
        .events
        .iter()
        .find(|e| e.name == semconv::EXCEPTION_EVENT);
    let from_event = |key: &str| {
        exception
            .and_then(|e| devtrace_model::find_attr(&e.attributes, key))
            .map(|v| v.to_display_string())
            .filter(|s| !s.is_empty())
    };
    let kind = from_event(semconv::EXCEPTION_TYPE).or_else(|| {
        span.attr("error.type")
            .map(|v| v.to_display_string())
            .filter(|s| !s.is_empty())
    });
    let message = from_event(semconv::EXCEPTION_MESSAGE)
        .or_else(|| Some(span.status.message.clone()).filter(|s| !s.is_empty()));
    let text = match (kind, message) {
        (Some(kind), Some(message)) if message.starts_with(&kind) => message,
        (Some(kind), Some(message)) => format!("{kind}: {message}"),
        (Some(only), None) | (None, Some(only)) => only,
        (None, None) => return None,
    };
    Some(shorten(text.lines().next().unwrap_or_default(), 120))
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(max_chars).collect();
        short.push('…');
        short
    }
}

/// The most common error (by normalised text), shown as its first occurrence.
fn most_common_error(storms: &[Storm]) -> Option<&str> {
    let mut counts: BTreeMap<String, (usize, usize, &str)> = BTreeMap::new(); // count, first seen
    for (order, error) in storms.iter().flat_map(|s| &s.errors).enumerate() {
        let entry = counts
            .entry(normalize_text(error))
            .or_insert((0, order, error.as_str()));
        entry.0 += 1;
    }
    counts
        .into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, _, text)| text)
}

fn finding(traces: &[AnalyzedTrace], name: &str, template: &Template, storms: &[Storm]) -> Finding {
    let mut per_trace: BTreeMap<usize, (u64, u64)> = BTreeMap::new(); // lost, failed attempts
    for storm in storms {
        let entry = per_trace.entry(storm.trace).or_default();
        entry.0 = entry.0.saturating_add(storm.lost_nanos);
        entry.1 += storm.failed;
    }
    let runs = per_trace.len() as u64;
    let lost =
        (per_trace.values().map(|v| v.0 as f64).sum::<f64>() / runs.max(1) as f64).round() as u64;
    let failed_per_run = per_trace.values().map(|v| v.1 as f64).sum::<f64>() / runs.max(1) as f64;
    let max_retries = storms.iter().map(|s| s.retries).max().unwrap_or(0);
    let min_retries = storms.iter().map(|s| s.retries).min().unwrap_or(0);
    let times = if min_retries == max_retries {
        format!("{max_retries} times")
    } else {
        format!("up to {max_retries} times")
    };
    let error = most_common_error(storms).map(|e| quote_short(e, 120));
    let subject = template.display(name);
    let what = if storms.iter().all(|s| s.resent_only) {
        match &error {
            Some(error) => format!("was resent {times} in a row ({error})"),
            None => format!("was resent {times} in a row"),
        }
    } else {
        match &error {
            Some(error) => format!("failed with {error} and was retried {times} in a row"),
            None => format!("failed and was retried {times} in a row"),
        }
    };
    let lost_text = if runs > 1 {
        format!("{} lost per run, in {runs} runs", human_duration(lost))
    } else {
        format!("{} lost", human_duration(lost))
    };
    let title = format!("{subject} {what} ({lost_text})");
    let cause = match &error {
        Some(error) => format!("fix the cause ({error})"),
        None => "fix the cause of the failures".to_owned(),
    };
    let recommendation = format!(
        "back off between attempts (exponential, with jitter), cap the retries, and {cause}; \
         saving ≈ {} per run",
        human_duration(lost)
    );
    let numbers = BTreeMap::from([
        ("retries".to_owned(), max_retries as f64),
        ("storms".to_owned(), storms.len() as f64),
        ("failed_attempts_per_run".to_owned(), failed_per_run),
        ("lost_nanos".to_owned(), lost as f64),
        ("runs".to_owned(), runs as f64),
    ]);
    Finding {
        kind: FindingKind::RetryStorm,
        operation: Some(name.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::RetryStorm.as_str(), name, template.key()]),
        saving_nanos: lost,
        occurrences: runs,
        numbers,
        evidence: storms
            .iter()
            .take(MAX_EVIDENCE)
            .map(|s| Evidence {
                trace_id: traces[s.trace].trace_id,
                span_ids: s
                    .parent_id
                    .into_iter()
                    .chain(s.attempt_ids.iter().copied())
                    .collect(),
            })
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{Event, KeyValue, Span, StatusCode, TraceId};

    const MS: u64 = 1_000_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    fn id(n: u8) -> SpanId {
        SpanId([n; 8])
    }

    /// A POST to the chat API from `start` lasting `ms`, failed with a timeout when `failed`.
    fn post(id: u8, start: u64, ms: u64, failed: bool) -> Span {
        let mut s = span(id, Some(1), "POST", start, start + ms * MS);
        s.attributes
            .push(KeyValue::new("url.full", "https://api.openai.com/v1/chat"));
        s.attributes
            .push(KeyValue::new("http.request.method", "POST"));
        if failed {
            s.status.code = StatusCode::Error;
            s.status.message = "Request timed out after 600 ms".into();
            s.events.push(Event {
                time_unix_nano: s.end_unix_nano,
                name: "exception".into(),
                attributes: vec![KeyValue::new("exception.type", "TimeoutError")],
                dropped_attributes_count: 0,
            });
        }
        s
    }

    /// `outcomes` attempts one after another under `chat.reply`, each 500 ms plus its index in
    /// ms (so that durations differ), then a render step.
    fn storm(outcomes: &[bool]) -> Vec<Span> {
        let mut spans = vec![span(1, None, "chat.reply", 0, 10_000 * MS)];
        let mut at = 0;
        for (i, failed) in outcomes.iter().enumerate() {
            let ms = 500 + i as u64;
            spans.push(post(10 + i as u8, at, ms, *failed));
            at += ms * MS;
        }
        spans.push(span(2, Some(1), "render", at, at + MS));
        spans
    }

    #[test]
    fn four_failures_then_a_success_is_a_storm() {
        let findings = detect(
            &[trace(1, storm(&[true, true, true, true, false]))],
            &Thresholds::default(),
        );
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::RetryStorm);
        let lost = (500 + 501 + 502 + 503) * MS;
        assert_eq!(f.saving_nanos, lost);
        assert_eq!(f.occurrences, 1);
        assert_eq!(f.numbers["retries"], 4.0);
        assert_eq!(f.numbers["failed_attempts_per_run"], 4.0);
        assert_eq!(
            f.title,
            format!(
                "\"POST api.openai.com/v1/chat\" failed with \"TimeoutError: Request timed out \
                 after 600 ms\" and was retried 4 times in a row ({} lost)",
                human_duration(lost)
            )
        );
        assert!(f.recommendation.starts_with("back off between attempts"));
        assert!(f.recommendation.contains("TimeoutError"));
        assert_eq!(
            f.evidence[0].span_ids,
            [id(1), id(10), id(11), id(12), id(13), id(14)]
        );
    }

    #[test]
    fn lives_started_again_and_failing_in_init_are_no_storm() {
        use crate::processes::tests::life;
        let mut spans = vec![span(1, None, "elixir listener.exs", 0, 100 * MS)];
        for n in 0..5u8 {
            let (id, at) = (10 + 2 * n, 10 * MS * n as u64);
            let mut lived = life(id, "Listener", at, at + 6 * MS);
            lived.status.code = StatusCode::Error;
            let mut init = span(id + 1, Some(id), "Listener.init/1", at, at + 5 * MS);
            init.status.code = StatusCode::Error;
            init.status.message = "error:RuntimeError".into();
            spans.extend([lived, init]);
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn two_attempts_do_not_fire() {
        for outcomes in [&[true, false][..], &[true, true], &[true], &[false; 6]] {
            let findings = detect(&[trace(1, storm(outcomes))], &Thresholds::default());
            assert!(findings.is_empty(), "{outcomes:?}: {findings:#?}");
        }
    }

    #[test]
    fn three_failures_in_a_row_fire_and_all_count_as_lost() {
        let f = &detect(
            &[trace(1, storm(&[true, true, true]))],
            &Thresholds::default(),
        )[0];
        assert_eq!(f.numbers["retries"], 2.0);
        assert_eq!(f.saving_nanos, (500 + 501 + 502) * MS);
    }

    #[test]
    fn only_the_failing_stretch_counts() {
        // ok, fail, fail, ok, ok: the storm is fail, fail, ok (attempts 11..=13).
        let f = &detect(
            &[trace(1, storm(&[false, true, true, false, false]))],
            &Thresholds::default(),
        )[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(11), id(12), id(13)]);
        assert_eq!(f.saving_nanos, (501 + 502) * MS);
    }

    #[test]
    fn failures_interleaved_with_other_work_do_not_fire() {
        let mut spans = vec![span(1, None, "sync", 0, 10_000 * MS)];
        for i in 0..4u8 {
            let at = u64::from(i) * 1_000 * MS;
            spans.push(post(10 + i, at, 500, true));
            spans.push(span(
                20 + i,
                Some(1),
                "process",
                at + 500 * MS,
                at + 900 * MS,
            ));
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn concurrent_failures_are_not_retries() {
        let spans = vec![
            span(1, None, "fan_out", 0, 1_000 * MS),
            post(10, 0, 500, true),
            post(11, 0, 500, true),
            post(12, 0, 500, true),
        ];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn storms_aggregate_across_runs() {
        let traces = [
            trace(1, storm(&[true, true, true, false])),
            trace(2, storm(&[true, true, true, true, true, false])),
            trace(3, storm(&[false])),
        ];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.occurrences, 2);
        let lost_1 = (500 + 501 + 502) * MS;
        let lost_2 = (500 + 501 + 502 + 503 + 504) * MS;
        assert_eq!(f.saving_nanos, (lost_1 + lost_2) / 2);
        assert!(
            f.title.contains("retried up to 5 times in a row"),
            "{}",
            f.title
        );
        assert!(f.title.contains("lost per run, in 2 runs"), "{}", f.title);
        assert_eq!(f.evidence.len(), 2);
        assert_eq!(
            f.fingerprint,
            detect(&traces[..1], &Thresholds::default())[0].fingerprint
        );
    }

    #[test]
    fn a_resend_count_of_two_or_more_is_a_storm() {
        // Only the last attempt is in the trace: the two earlier ones are estimated at its
        // duration.
        let mut last = post(10, 0, 400, false);
        last.attributes.push(KeyValue::new(RESEND_COUNT, 2i64));
        let spans = vec![span(1, None, "chat.reply", 0, 1_000 * MS), last];
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.saving_nanos, 800 * MS);
        assert_eq!(f.numbers["retries"], 2.0);
        assert!(
            f.title
                .starts_with("\"POST api.openai.com/v1/chat\" was resent 2 times in a row ("),
            "{}",
            f.title
        );
        assert_eq!(f.evidence[0].span_ids, [id(1), id(10)]);

        // A resend count of 1 is a single retry.
        let mut once = post(10, 0, 400, false);
        once.attributes.push(KeyValue::new(RESEND_COUNT, 1i64));
        let spans = vec![span(1, None, "chat.reply", 0, 1_000 * MS), once];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn resend_counts_on_an_already_detected_run_are_not_counted_twice() {
        let mut spans = storm(&[true, true, false]);
        for (n, s) in spans.iter_mut().filter(|s| s.name == "POST").enumerate() {
            s.attributes.push(KeyValue::new(RESEND_COUNT, n as i64));
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].numbers["storms"], 1.0);
        assert_eq!(findings[0].saving_nanos, (500 + 501) * MS);
        assert!(findings[0].title.contains("failed with"));
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut spans = vec![span(1, None, "p", 100, 0)];
        for i in 0..4u8 {
            let mut s = span(10 + i, Some(1), "q", 50, 10);
            s.status.code = StatusCode::Error;
            s.attributes.push(KeyValue::new(RESEND_COUNT, i64::MAX));
            spans.push(s);
        }
        let mut orphan = span(30, Some(77), "orphan", 0, 1);
        orphan.attributes.push(KeyValue::new(RESEND_COUNT, "many"));
        spans.push(orphan);
        let _ = detect(&[trace(1, spans)], &Thresholds::default());
        assert!(detect(&[], &Thresholds::default()).is_empty());
    }

    /// `Client.get/2` retrying as a recursive loop: four turns side by side under the script
    /// (span 1), each calling `Upstream.fetch/1` with `arguments[n]` (5 ms), then sleeping (the
    /// turn lasts 20 ms); every call but the last returned `{:error, :unavailable}`.
    fn retried_in_turns(arguments: [&str; 4]) -> AnalyzedTrace {
        const MS: u64 = 1_000_000;
        let mut spans = vec![span(1, None, "elixir retry.exs", 0, 100 * MS)];
        for (n, argument) in arguments.iter().enumerate() {
            let (turn, start) = (10 + 2 * n as u8, 20 * MS * n as u64);
            spans.push(span(turn, Some(1), "Client.get/2", start, start + 20 * MS));
            let mut fetch = span(
                turn + 1,
                Some(turn),
                "Upstream.fetch/1",
                start,
                start + 5 * MS,
            );
            let returned = if n < 3 {
                "{:error, :unavailable}"
            } else {
                "{:ok, \"item 1\"}"
            };
            fetch.attributes.extend([
                KeyValue::new(crate::processes::CALL_ARGUMENTS, *argument),
                KeyValue::new(crate::processes::CALL_RETURN, returned),
            ]);
            spans.push(fetch);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_call_returning_an_error_tuple_retried_by_a_recursive_loop_is_a_storm() {
        let [found] = detect(&[retried_in_turns(["1"; 4])], &Thresholds::default())
            .try_into()
            .expect("one storm");
        assert!(
            found
                .title
                .starts_with("\"Upstream.fetch/1\" failed with \"{:error, :unavailable}\" and was retried 3 times in a row"),
            "{}",
            found.title
        );
        // Its time is the failed turns': the attempts and the back-off after each.
        assert_eq!(found.saving_nanos, 60_000_000);
        // A loop over items, each failing once, is no retry.
        assert!(
            detect(
                &[retried_in_turns(["1", "2", "3", "4"])],
                &Thresholds::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn an_error_is_a_tuple_tagged_error_or_the_atom_alone() {
        let returned = |value: &str| {
            let mut call = span(2, Some(1), "Upstream.fetch/1", 0, 1);
            call.attributes
                .push(KeyValue::new(crate::processes::CALL_RETURN, value));
            let spans = vec![span(1, None, "run", 0, 2), call];
            returned_error(&AnalyzedTrace::new(TraceId([1; 16]), batch(spans)), 1)
        };
        for error in ["{:error, :closed}", "{error, closed}", ":error", "error"] {
            assert!(returned(error).is_some(), "{error}");
        }
        for fine in [
            "{:ok, :error}",
            "{:error}",
            ":errors",
            "%{error: 1}",
            "[:error]",
        ] {
            assert!(returned(fine).is_none(), "{fine}");
        }
    }
}
