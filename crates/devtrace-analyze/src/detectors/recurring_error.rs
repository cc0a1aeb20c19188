//! Recurring errors: the same error fingerprint (exception type + normalised message +
//! operation) in several traces ("TimeoutError in summary.generate: 5th occurrence (first
//! 2026-11-23 09:12 UTC, latest 2026-11-25 06:02 UTC)"). Times are UTC clock times, never
//! "5 min ago": the analysis has no clock, and a time relative to the traces read would differ
//! between two pages that read different traces, and be wrong when the page is read later.

use crate::errors::{ErrorGroup, failure_noun, group_errors, group_handled};
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::recorded::{name as q, quote_short};
use devtrace_model::time::format_rfc3339;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Fewest distinct traces with the same fingerprint for it to count as recurring: 3.
    pub min_traces: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_traces: 3 }
    }
}

/// One finding per fingerprint seen in at least `min_traces` traces, ranked by the runs it
/// fails ([`ImpactBasis::Failures`]: failure rate and runs affected, a failure the run
/// survived counting half), never by a time "saving" (`saving_nanos` is 0; the mean duration
/// of the failing runs is in `numbers`). Exceptions that were caught and handled are reported
/// as handled ([`ImpactBasis::Handled`]) and never rank as failures.
pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    group_errors(traces)
        .iter()
        .chain(group_handled(traces).iter())
        .filter(|g| g.traces >= thresholds.min_traces.max(1))
        .map(|g| finding(traces, g))
        .collect()
}

fn finding(traces: &[AnalyzedTrace], group: &ErrorGroup) -> Finding {
    let mut root_durations: BTreeMap<_, u64> = BTreeMap::new();
    for occurrence in &group.occurrences {
        if let Some(trace) = traces.iter().find(|t| t.trace_id == occurrence.trace_id) {
            let duration = trace.root().map_or(0, |r| trace.span(r).duration_nanos());
            root_durations.insert(occurrence.trace_id, duration);
        }
    }
    let mean_failed_run = if root_durations.is_empty() {
        0
    } else {
        root_durations.values().sum::<u64>() / root_durations.len() as u64
    };

    let what = group
        .exception_type
        .as_deref()
        .map_or_else(|| "error".to_owned(), q);
    let in_traces = if group.count == group.traces {
        String::new()
    } else {
        format!(" in {} traces", group.traces)
    };
    let message = if group.message.is_empty() {
        String::new()
    } else {
        format!(": {}", quote_short(&group.message, 80))
    };
    let handled = if group.handled {
        " raised and handled (the spans ended fine)"
    } else {
        ""
    };
    let title = format!(
        "{what}{handled} in {}: {} occurrence{in_traces} ({}){message}",
        q(&group.operation),
        ordinal(group.count),
        seen(group.first_seen_unix_nano, group.last_seen_unix_nano),
    );
    let mut recommendation = if group.handled {
        format!(
            "Not a failure: the code caught it and went on. If it is expected (a cache miss, an \
             optional file), nothing to do; if it costs time or hides a bug, look at {} \
             (error {})",
            q(&group.operation),
            group.fingerprint
        )
    } else {
        format!(
            "The same {} keeps coming back: fix its cause rather than re-running; the causal chain of error {} shows what {} used",
            failure_noun(group.exception_type.as_deref())
                .trim_end_matches('s')
                .trim_end_matches(" failure"),
            group.fingerprint,
            q(&group.operation)
        )
    };
    if let Some(c) = &group.correlation {
        recommendation.push_str(&format!(
            "; failing runs had {} {}",
            q(&c.feature),
            c.condition
        ));
    }

    let mut evidence: Vec<Evidence> = Vec::new();
    for occurrence in group.occurrences.iter().rev() {
        if let Some(existing) = evidence
            .iter_mut()
            .find(|e| e.trace_id == occurrence.trace_id)
        {
            existing.span_ids.push(occurrence.span_id);
        } else if evidence.len() < MAX_EVIDENCE {
            evidence.push(Evidence {
                trace_id: occurrence.trace_id,
                span_ids: vec![occurrence.span_id],
            });
        }
    }

    let mut numbers = BTreeMap::new();
    numbers.insert("count".to_owned(), group.count as f64);
    numbers.insert("traces".to_owned(), group.traces as f64);
    numbers.insert(
        "first_seen_unix_nano".to_owned(),
        group.first_seen_unix_nano as f64,
    );
    numbers.insert(
        "last_seen_unix_nano".to_owned(),
        group.last_seen_unix_nano as f64,
    );
    numbers.insert("mean_failed_run_nanos".to_owned(), mean_failed_run as f64);
    numbers.insert("contained_runs".to_owned(), group.contained_traces as f64);

    Finding {
        kind: FindingKind::RecurringError,
        operation: Some(group.operation.clone()),
        title,
        recommendation,
        fingerprint: fingerprint(&["recurring_error", &group.fingerprint]),
        saving_nanos: 0,
        occurrences: group.count as u64,
        numbers,
        evidence,
        impact: if group.handled {
            Impact::of(ImpactBasis::Handled)
        } else {
            Impact::failures(group.traces as u64)
        },
    }
}

/// 1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, 101st.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// When a group was first and last seen, to the minute in UTC: "first 2026-11-23 09:12 UTC,
/// latest 11:40 UTC" (the latest's date only when it differs).
pub fn seen(first: u64, last: u64) -> String {
    const MINUTE: u64 = 60_000_000_000;
    let minute = |n: u64| format_rfc3339(n / MINUTE * MINUTE)[..16].replace('T', " ");
    let (first, last) = (minute(first), minute(last));
    let latest = if first[..10] == last[..10] {
        &last[11..]
    } else {
        &last[..]
    };
    format!("first {first} UTC, latest {latest} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::tests::run;

    const HOUR: u64 = 3_600_000_000_000;

    #[test]
    fn fires_at_three_traces_and_not_at_two() {
        // Failing runs 2 days, 5 h and 1 h before the last span end (a passing run).
        let mut traces = vec![
            run(1, 0, 10, true),
            run(2, 43 * HOUR, 10, true),
            run(4, 48 * HOUR + 10_000_000_000, 10, false),
        ];
        assert!(detect(&traces, &Thresholds::default()).is_empty());
        traces.insert(2, run(3, 47 * HOUR, 10, true));
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::RecurringError);
        assert_eq!(
            f.title,
            "\"TimeoutError\" in \"summary.generate\": 3rd occurrence (first 1970-01-01 00:00 UTC, latest 1970-01-02 23:00 UTC): \"LLM call timed out after <n>s\""
        );
        assert_eq!(f.occurrences, 3);
        // Ranked by the runs it fails, not by a time "saving".
        assert_eq!(f.saving_nanos, 0);
        assert_eq!(f.impact.basis, crate::ImpactBasis::Failures);
        assert_eq!(f.impact.affected_runs, 3);
        assert_eq!(
            f.numbers["mean_failed_run_nanos"], 1e9,
            "each failed run lost its 1 s"
        );
        assert_eq!(f.evidence.len(), 3);
        assert_eq!(f.evidence[0].trace_id, traces[2].trace_id, "newest first");
        assert!(f.recommendation.contains("same timeout keeps coming back"));
        assert!(
            detect(&traces, &Thresholds { min_traces: 4 }).is_empty(),
            "the threshold is respected"
        );
    }

    /// Express 5 failing a request: the exception recorded on every layer span it passed
    /// through (status unset), the handler span failed with it, the server span failed with
    /// a 500 and no exception of its own; `caught` adds a layer that ended `Ok` (a handler
    /// that caught the exception and answered) between the failure and the layers.
    fn express_failure(n: u8, caught: bool) -> AnalyzedTrace {
        use crate::tree::tests::{batch, span};
        use devtrace_model::{Event, KeyValue, SpanKind, Status, StatusCode, TraceId};
        let exception = |at: u64| Event {
            time_unix_nano: at,
            name: "exception".to_owned(),
            attributes: vec![
                KeyValue::new("exception.type", "42P01"),
                KeyValue::new(
                    "exception.message",
                    "relation \"sales_2027\" does not exist",
                ),
            ],
            dropped_attributes_count: 0,
        };
        let failed = Status {
            code: StatusCode::Error,
            message: String::new(),
        };
        let mut server = span(1, None, "GET /reports/:year", 0, 130);
        server.kind = SpanKind::Server;
        server.status = failed.clone();
        server.attributes = vec![KeyValue::new("http.response.status_code", 500i64)];
        let mut middleware = span(2, Some(1), "middleware - patched", 0, 122);
        middleware.events.push(exception(120));
        if caught {
            middleware.status.code = StatusCode::Ok;
        }
        let mut handler = span(3, Some(2), "request handler", 0, 121);
        handler.events.push(exception(119));
        handler.status = failed.clone();
        let mut layer = span(4, Some(3), "request handler - /reports/:year", 0, 120);
        layer.events.push(exception(118));
        // A different exception, caught: the request went on.
        let mut under = span(5, Some(2), "cache lookup", 0, 10);
        under.events.push(Event {
            time_unix_nano: 5,
            name: "exception".to_owned(),
            attributes: vec![
                KeyValue::new("exception.type", "KeyError"),
                KeyValue::new("exception.message", "cart:9"),
            ],
            dropped_attributes_count: 0,
        });
        let mut spans = vec![server, middleware, handler, layer, under];
        if caught {
            spans.truncate(2);
            spans[0].status = Status::default();
            spans[0].attributes.clear();
        }
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    #[test]
    fn an_exception_that_propagated_into_a_failure_was_not_handled() {
        let traces: Vec<AnalyzedTrace> = (1..=3).map(|n| express_failure(n, false)).collect();
        let findings = detect(&traces, &Thresholds::default());
        // One failing error, where it was raised; the layers it passed through and the server
        // span's 500 are that error, not others; the one exception handled is the other one.
        let titles: Vec<&str> = findings.iter().map(|f| f.title.as_str()).collect();
        assert_eq!(findings.len(), 2, "{titles:#?}");
        let failing: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.impact.basis == crate::ImpactBasis::Failures)
            .collect();
        assert_eq!(failing.len(), 1, "{titles:#?}");
        assert!(
            failing[0]
                .title
                .starts_with("\"42P01\" in \"request handler\": 3rd occurrence"),
            "{titles:#?}"
        );
        assert_eq!(failing[0].impact.affected_runs, 3);
        let handled: Vec<&str> = findings
            .iter()
            .filter(|f| f.impact.basis == crate::ImpactBasis::Handled)
            .map(|f| f.title.as_str())
            .collect();
        assert_eq!(handled.len(), 1, "{titles:#?}");
        assert!(handled[0].contains("\"cache lookup\""), "{titles:#?}");
        // Caught by the middleware, which ended `Ok`: the exception was handled.
        let traces: Vec<AnalyzedTrace> = (1..=3).map(|n| express_failure(n, true)).collect();
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert_eq!(findings[0].impact.basis, crate::ImpactBasis::Handled);
    }

    #[test]
    fn ordinals_and_ages_read_naturally() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101]
            .iter()
            .map(|n| ordinal(*n))
            .collect();
        assert_eq!(
            got,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"
            ]
        );
        assert_eq!(
            seen(HOUR, HOUR + 90_000_000_000),
            "first 1970-01-01 01:00 UTC, latest 01:01 UTC"
        );
        assert_eq!(
            seen(0, 49 * HOUR),
            "first 1970-01-01 00:00 UTC, latest 1970-01-03 01:00 UTC"
        );
    }
}
