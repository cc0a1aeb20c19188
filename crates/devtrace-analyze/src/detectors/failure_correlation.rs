//! Failure correlation: an attribute value or numeric range that separates the failing runs of
//! an operation from its passing runs ("all 5 timeouts of summary.generate had
//! journal.generate.diff.size_bytes > 500 KB; 0 of 45 successes did").
//!
//! For each error group ([`crate::errors::group_errors`]) the runs compared are the traces whose
//! root span has the name of the failing traces' root: failing runs contain the error, passing
//! runs contain no error at all. Every attribute of every span of a run is a feature
//! (`"<span name>.<key>"`, resource attributes as `"resource.<key>"`), a request's query and
//! route parameters included (`url.query.NAME`, `url.path.NAME`, derived once by
//! [`AnalyzedTrace`] from either HTTP generation); in failing runs, spans
//! that start after the failure are left out (they are its consequences). Attributes that
//! describe the failure itself (`exception.*`, `error.*`, `otel.status_*`, exit codes) are not
//! features; numbers named like ids or times are compared by value or not at all.

use crate::errors::{ErrorGroup, group_errors_with};
use crate::finding::{Impact, MAX_EVIDENCE};
use crate::fingerprint::fingerprint;
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use std::collections::BTreeMap;

/// The correlation's thresholds live with the grouping that applies them.
pub use crate::errors::Thresholds;

/// One finding per error group with a correlation. The saving is 0: knowing what the failing
/// runs share does not say how much time fixing it saves.
pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    group_errors_with(traces, thresholds)
        .iter()
        .filter_map(|group| finding(traces, group))
        .collect()
}

fn finding(traces: &[AnalyzedTrace], group: &ErrorGroup) -> Option<Finding> {
    let c = group.correlation.as_ref()?;
    let mut numbers = BTreeMap::new();
    numbers.insert("failing_with".to_owned(), c.failing_with as f64);
    numbers.insert("failing_total".to_owned(), c.failing_total as f64);
    numbers.insert("passing_with".to_owned(), c.passing_with as f64);
    numbers.insert("passing_total".to_owned(), c.passing_total as f64);
    if let Some(threshold) = c.threshold {
        numbers.insert("threshold".to_owned(), threshold);
    }
    if let Some(edge) = c.failing_edge {
        numbers.insert("failing_edge".to_owned(), edge);
    }
    if let Some(edge) = c.passing_edge {
        numbers.insert("passing_edge".to_owned(), edge);
    }
    numbers.insert("narrow_gap".to_owned(), f64::from(u8::from(c.narrow_gap)));
    numbers.insert("contained_runs".to_owned(), group.contained_traces as f64);

    // Evidence: the most recent failing runs, with the failing span and the spans carrying the
    // feature's value in them.
    let mut evidence: Vec<Evidence> = Vec::new();
    for occurrence in group.occurrences.iter().rev() {
        if let Some(existing) = evidence
            .iter_mut()
            .find(|e| e.trace_id == occurrence.trace_id)
        {
            existing.span_ids.push(occurrence.span_id);
            continue;
        }
        if evidence.len() >= MAX_EVIDENCE {
            continue;
        }
        let mut span_ids = vec![occurrence.span_id];
        if let (Some(trace), Some(span_name)) = (
            traces.iter().find(|t| t.trace_id == occurrence.trace_id),
            c.span_name.as_deref(),
        ) {
            span_ids.extend(
                (0..trace.spans.spans.len())
                    .filter(|i| trace.span(*i).name == span_name)
                    .filter(|i| {
                        trace
                            .attributes(*i)
                            .any(|kv| kv.key == c.attribute && c.matches(&kv.value))
                    })
                    .map(|i| trace.span(i).span_id)
                    .filter(|id| *id != occurrence.span_id),
            );
        }
        evidence.push(Evidence {
            trace_id: occurrence.trace_id,
            span_ids,
        });
    }

    Some(Finding {
        kind: FindingKind::FailureCorrelation,
        operation: Some(group.operation.clone()),
        title: c.text.clone(),
        recommendation: format!(
            "Reproduce {} with {} {} and handle that case in {} (bound, split or reject such input early, or raise the limit it hits); compare with a passing run",
            devtrace_model::recorded::name(&group.root_operation),
            devtrace_model::recorded::name(&c.feature),
            c.condition,
            devtrace_model::recorded::name(&group.operation)
        ),
        fingerprint: fingerprint(&[
            "failure_correlation",
            &group.fingerprint,
            &c.feature,
            c.operator.symbol(),
        ]),
        saving_nanos: 0,
        occurrences: c.failing_with as u64,
        numbers,
        evidence,
        // It explains failures: it ranks with them, by the failing runs it accounts for.
        impact: Impact::failures(c.failing_with as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::tests::run;

    /// Where a report's day count travels: a plain attribute, the query of the client's URL, or
    /// a path segment of the server's, under either generation of the HTTP conventions.
    #[derive(Clone, Copy, Debug)]
    enum Carrier {
        Attribute,
        OldQuery,
        StableQuery,
        OldPath,
        StablePath,
    }

    /// A report run: root → client `GET` → server `GET /reports/{days}`, which times out (and
    /// the root with it) when `failing`. The services are addressed by IP literal and port.
    fn report_run(n: u8, days: i64, failing: bool, carrier: Carrier) -> AnalyzedTrace {
        use crate::errors::tests::{fail, trace, with};
        use crate::tree::tests::span;
        use devtrace_model::SpanKind;
        let t = |ms: u64| u64::from(n) * 10_000_000_000 + ms * 1_000_000;
        let base = "http://10.0.0.5:8080/reports";
        let mut root = span(1, None, "report.build", t(0), t(900));
        let mut client = span(2, Some(1), "GET", t(10), t(800));
        client.kind = SpanKind::Client;
        let mut server = span(3, Some(2), "GET /reports/{days}", t(20), t(790));
        server.kind = SpanKind::Server;
        let stable = matches!(carrier, Carrier::StableQuery | Carrier::StablePath);
        let (url, target, route) = if stable {
            ("url.full", "url.path", "/reports/{days}")
        } else {
            ("http.url", "http.target", "/reports/<int:days>")
        };
        match carrier {
            Carrier::Attribute => {
                client = with(with(client, "http.url", base), "report.days", days);
            }
            Carrier::OldQuery | Carrier::StableQuery => {
                client = with(client, url, format!("{base}?days={days}&r=req-{n}"));
            }
            Carrier::OldPath | Carrier::StablePath => {
                client = with(client, url, format!("{base}/{days}"));
                server = with(server, target, format!("/reports/{days}"));
                server = with(server, "http.route", route);
            }
        }
        if failing {
            server = fail(server, "TimeoutError", "report timed out");
            root = fail(root, "TimeoutError", "report timed out");
        }
        trace(n, vec![root, client, server])
    }

    #[test]
    fn a_cause_in_the_url_is_found_as_if_it_were_an_attribute() {
        let runs = |carrier: Carrier| -> Vec<AnalyzedTrace> {
            (1..=16u8)
                .map(|n| {
                    let failing = n.is_multiple_of(4);
                    let days = if failing {
                        300 + i64::from(n) * 5
                    } else {
                        7 + i64::from(n % 5) * 6
                    };
                    report_run(n, days, failing, carrier)
                })
                .collect()
        };
        let top = |carrier: Carrier| -> Finding {
            let findings = crate::detectors::run_all(&runs(carrier));
            let first = findings.first().expect("findings").clone();
            assert_eq!(
                first.kind,
                FindingKind::FailureCorrelation,
                "{carrier:?}: {findings:#?}"
            );
            first
        };
        let plain = top(Carrier::Attribute);
        assert_eq!(plain.numbers["failing_edge"], 320.0);
        assert_eq!(plain.numbers["passing_edge"], 31.0);
        assert_eq!(
            (plain.numbers["failing_with"], plain.numbers["passing_with"]),
            (4.0, 0.0)
        );
        for (carrier, feature) in [
            (Carrier::OldQuery, "GET.url.query.days"),
            (Carrier::StableQuery, "GET.url.query.days"),
            (Carrier::OldPath, "GET /reports/{days}.url.path.days"),
            (Carrier::StablePath, "GET /reports/{days}.url.path.days"),
        ] {
            let f = top(carrier);
            assert_eq!(f.numbers, plain.numbers, "{carrier:?}: {}", f.title);
            assert_eq!(
                f.title,
                plain.title.replace("GET.report.days", feature),
                "{carrier:?}"
            );
            // The evidence: the failing span, and the span carrying the value when that is
            // another (the client's URL; a path segment is the failing server span's own).
            let carried_by_another = matches!(carrier, Carrier::OldQuery | Carrier::StableQuery);
            for e in &f.evidence {
                assert_eq!(e.span_ids.len(), 1 + usize::from(carried_by_another));
            }
        }
    }

    #[test]
    fn emits_a_finding_naming_the_attribute() {
        let traces: Vec<AnalyzedTrace> = (1..=12u8)
            .map(|n| {
                let fails = n.is_multiple_of(3);
                let size = if fails { 900_000 } else { 20_000 };
                run(n, u64::from(n) * 1_000_000_000, size, fails)
            })
            .collect();
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::FailureCorrelation);
        assert_eq!(
            f.title,
            "all 4 timeouts of \"summary.generate\" had \"diff.collect.diff.size_bytes\" > 800 KB; 0 of 8 successes did (observed: failing runs ≥ 900 KB, passing runs ≤ 20 KB)"
        );
        assert!(f.recommendation.contains("diff.collect.diff.size_bytes"));
        assert_eq!(f.operation.as_deref(), Some("summary.generate"));
        assert_eq!(f.occurrences, 4);
        assert_eq!(f.numbers["passing_total"], 8.0);
        assert_eq!(f.evidence.len(), 4);
        // The failing span, then the span carrying the size.
        assert_eq!(f.evidence[0].span_ids.len(), 2);
        assert!(f.evidence.len() <= MAX_EVIDENCE);

        let strict = Thresholds {
            min_passing_runs: 9,
            ..Thresholds::default()
        };
        assert!(detect(&traces, &strict).is_empty());
    }
}
