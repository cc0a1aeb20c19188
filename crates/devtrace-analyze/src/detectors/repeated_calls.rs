//! N+1 / repeated calls: many sibling calls of the same statement or URL template under one
//! parent, which one batched call could replace.
//!
//! **Rule.** Under one parent span, children are grouped by span name and call template: the
//! SQL statement (`db.query.text`, or the older `db.statement`) with its literals folded by
//! [`normalize_sql`]; else the HTTP method and URL (`url.full`, `http.url` or `url.path`) folded
//! by [`normalize_url`]; else the span name alone. A group of at least
//! [`Thresholds::min_calls`] successful calls is reported.
//!
//! **Saving model.** One batched call (`IN (...)`, a JOIN, a batch endpoint) is assumed to cost
//! [`Thresholds::batch_cost_factor`] × the mean duration of one call. The saving is the time the
//! calls cover in the parent (their sum when they run one after another, as N+1 loops do; the
//! union of their intervals when some overlap) minus that cost. Across runs the finding is
//! aggregated per (parent operation, call name, template): `occurrences` is the number of traces
//! where it happens, `saving_nanos` the mean saving per such trace.
//!
//! **Does not fire on** a few similar calls (below [`Thresholds::min_calls`]), calls that
//! differ in statement or URL template, calls under different parents, or failed calls (a
//! call failing again and again is a retry storm, see [`super::retry_storm`], not batching
//! material).

use crate::finding::{MAX_EVIDENCE, human_duration};
use crate::fingerprint::{fingerprint, normalize_sql, normalize_url};
use crate::{AnalyzedTrace, Evidence, Finding, FindingKind};
use devtrace_model::SpanId;
use std::collections::BTreeMap;

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest number of sibling calls with the same name and template to report. Default 5:
    /// two or three similar calls are usually deliberate; five or more under one parent is the
    /// shape of a loop issuing one call per item.
    pub min_calls: usize,
    /// Cost of the one batched call replacing the group, as a multiple of one call's mean
    /// duration. Default 1.5: a batched call still pays one round trip, plus the extra rows or
    /// items it carries; 1.5 keeps the estimate conservative for small groups.
    pub batch_cost_factor: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_calls: 5,
            batch_cost_factor: 1.5,
        }
    }
}

/// What a call does, normalised so that calls differing only in literals or ids are equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Template {
    /// A SQL statement with its literals folded.
    Sql(String),
    /// An HTTP call: the method (when known) and the URL template.
    Http(String),
    /// Neither: the span name is all there is.
    Name,
}

impl Template {
    /// The template as text for fingerprints ("" for [`Template::Name`]).
    pub(crate) fn key(&self) -> &str {
        match self {
            Self::Sql(text) | Self::Http(text) => text,
            Self::Name => "",
        }
    }

    /// How to name the call in a title: the statement, the method and URL without its scheme,
    /// or the span name; long statements are shortened.
    pub(crate) fn display(&self, name: &str) -> String {
        match self {
            Self::Sql(sql) => shorten(sql, 100),
            Self::Http(call) => shorten(&strip_scheme(call), 100),
            Self::Name => name.to_owned(),
        }
    }
}

/// "POST https://host/p" → "POST host/p"; "https://host/p" → "host/p".
fn strip_scheme(call: &str) -> String {
    match call.split_once("://") {
        Some((before, rest)) => match before.rsplit_once(' ') {
            Some((method, _scheme)) => format!("{method} {rest}"),
            None => rest.to_owned(),
        },
        None => call.to_owned(),
    }
}

/// The template of span `index`: SQL, else HTTP, else the name.
pub(crate) fn call_template(trace: &AnalyzedTrace, index: usize) -> Template {
    let span = trace.span(index);
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| span.attr(k).and_then(|v| v.as_str()))
            .filter(|s| !s.trim().is_empty())
    };
    if let Some(sql) = text(&["db.query.text", "db.statement"]) {
        return Template::Sql(normalize_sql(sql));
    }
    if let Some(url) = text(&["url.full", "http.url", "url.path"]) {
        let url = normalize_url(url);
        return Template::Http(match text(&["http.request.method", "http.method"]) {
            Some(method) => format!("{} {url}", method.to_uppercase()),
            None => url,
        });
    }
    Template::Name
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

/// One group of repeated calls under one parent span.
#[derive(Debug)]
struct Occurrence {
    trace: usize,
    parent_id: SpanId,
    call_ids: Vec<SpanId>,
    total_nanos: u64,
    saving_nanos: u64,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    // (parent name, call name, template) → occurrences, in trace order.
    let mut by_subject: BTreeMap<(String, String, Template), Vec<Occurrence>> = BTreeMap::new();
    let min_calls = thresholds.min_calls.max(2);
    for (t, trace) in traces.iter().enumerate() {
        for (parent, _) in trace.tree.walk() {
            let children = &trace.tree.children[parent];
            if children.len() < min_calls {
                continue;
            }
            let mut groups: BTreeMap<(&str, Template), Vec<usize>> = BTreeMap::new();
            for &child in children {
                let span = trace.span(child);
                if !span.is_error() {
                    groups
                        .entry((span.name.as_str(), call_template(trace, child)))
                        .or_default()
                        .push(child);
                }
            }
            for ((name, template), calls) in groups {
                if calls.len() < min_calls {
                    continue;
                }
                let total: u64 = calls
                    .iter()
                    .map(|c| trace.span(*c).duration_nanos())
                    .fold(0, u64::saturating_add);
                let covered = covered_nanos(
                    calls
                        .iter()
                        .map(|c| (trace.span(*c).start_unix_nano, trace.span(*c).end_unix_nano)),
                );
                let batched =
                    total as f64 / calls.len() as f64 * thresholds.batch_cost_factor.max(0.0);
                let saving = (covered as f64 - batched).max(0.0).round() as u64;
                if saving == 0 {
                    continue;
                }
                by_subject
                    .entry((trace.span(parent).name.clone(), name.to_owned(), template))
                    .or_default()
                    .push(Occurrence {
                        trace: t,
                        parent_id: trace.span(parent).span_id,
                        call_ids: calls.iter().map(|c| trace.span(*c).span_id).collect(),
                        total_nanos: total,
                        saving_nanos: saving,
                    });
            }
        }
    }
    by_subject
        .into_iter()
        .map(|((parent, name, template), occurrences)| {
            finding(traces, &parent, &name, &template, &occurrences)
        })
        .collect()
}

fn finding(
    traces: &[AnalyzedTrace],
    parent: &str,
    name: &str,
    template: &Template,
    occurrences: &[Occurrence],
) -> Finding {
    let mut per_trace: BTreeMap<usize, (u64, u64, u64)> = BTreeMap::new(); // calls, total, saving
    for o in occurrences {
        let entry = per_trace.entry(o.trace).or_default();
        entry.0 += o.call_ids.len() as u64;
        entry.1 = entry.1.saturating_add(o.total_nanos);
        entry.2 = entry.2.saturating_add(o.saving_nanos);
    }
    let runs = per_trace.len().max(1) as f64;
    let calls: u64 = per_trace.values().map(|v| v.0).sum();
    let total: f64 = per_trace.values().map(|v| v.1 as f64).sum();
    let saving = (per_trace.values().map(|v| v.2 as f64).sum::<f64>() / runs).round() as u64;
    let calls_per_run = calls as f64 / runs;
    let mean_call = (total / calls.max(1) as f64).round() as u64;
    let total_per_run = (total / runs).round() as u64;
    let (verb, remedy) = match template {
        Template::Sql(_) => (
            "runs",
            "batch them into one query (WHERE … IN (...) or a JOIN)",
        ),
        Template::Http(_) => ("calls", "fetch them in a single request (a batch endpoint)"),
        Template::Name => ("calls", "batch them into a single call"),
    };
    let title = format!(
        "{parent} {verb} `{}` {} times per run ({} each, {} in all)",
        template.display(name),
        format_count(calls_per_run),
        human_duration(mean_call),
        human_duration(total_per_run),
    );
    let recommendation = format!("{remedy}; saving ≈ {} per run", human_duration(saving));
    let numbers = BTreeMap::from([
        ("calls_per_run".to_owned(), calls_per_run),
        ("mean_call_nanos".to_owned(), mean_call as f64),
        ("total_nanos_per_run".to_owned(), total_per_run as f64),
        ("saving_nanos".to_owned(), saving as f64),
        ("runs".to_owned(), per_trace.len() as f64),
    ]);
    Finding {
        kind: FindingKind::RepeatedCalls,
        operation: Some(parent.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::RepeatedCalls.as_str(),
            parent,
            name,
            template.key(),
        ]),
        saving_nanos: saving,
        occurrences: per_trace.len() as u64,
        numbers,
        evidence: occurrences
            .iter()
            .take(MAX_EVIDENCE)
            .map(|o| Evidence {
                trace_id: traces[o.trace].trace_id,
                span_ids: std::iter::once(o.parent_id)
                    .chain(o.call_ids.iter().copied())
                    .collect(),
            })
            .collect(),
    }
}

/// "40", or "40.5" when the mean is not whole.
fn format_count(value: f64) -> String {
    if (value - value.round()).abs() < 0.05 {
        format!("{}", value.round() as u64)
    } else {
        format!("{value:.1}")
    }
}

/// Length of the union of the intervals (ends before starts count as empty).
fn covered_nanos(intervals: impl Iterator<Item = (u64, u64)>) -> u64 {
    let mut sorted: Vec<(u64, u64)> = intervals.filter(|(s, e)| s < e).collect();
    sorted.sort_unstable();
    let mut total = 0u64;
    let mut current: Option<(u64, u64)> = None;
    for (s, e) in sorted {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total = total.saturating_add(ce - cs);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    total.saturating_add(current.map_or(0, |(s, e)| e - s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, StatusCode, TraceId};

    const MS: u64 = 1_000_000;
    const US: u64 = 1_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    /// chat_history.load: `count` sequential queries of 3.1 ms, one per message id, then render.
    fn chat_history(count: u8) -> Vec<Span> {
        let mut spans = vec![span(1, None, "chat_history.load", 0, 200 * MS)];
        for i in 0..count {
            let start = u64::from(i) * 3_100 * US;
            let mut query = span(10 + i, Some(1), "db.query", start, start + 3_100 * US);
            query.attributes.push(KeyValue::new(
                "db.query.text",
                format!("SELECT * FROM messages WHERE id = {}", 100 + u32::from(i)),
            ));
            spans.push(query);
        }
        spans.push(span(2, Some(1), "render", 190 * MS, 200 * MS));
        spans
    }

    #[test]
    fn an_n_plus_one_loop_fires_with_its_numbers() {
        let findings = detect(&[trace(1, chat_history(40))], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.kind, FindingKind::RepeatedCalls);
        assert_eq!(f.operation.as_deref(), Some("chat_history.load"));
        assert_eq!(
            f.title,
            format!(
                "chat_history.load runs `SELECT * FROM messages WHERE id = <n>` 40 times per run \
                 ({} each, {} in all)",
                human_duration(3_100 * US),
                human_duration(124 * MS)
            )
        );
        // 124 ms − 1.5 × 3.1 ms.
        assert_eq!(f.saving_nanos, 124 * MS - 4_650 * US);
        assert_eq!(f.occurrences, 1);
        assert_eq!(f.numbers["calls_per_run"], 40.0);
        assert_eq!(f.numbers["mean_call_nanos"], (3_100 * US) as f64);
        assert_eq!(f.numbers["total_nanos_per_run"], (124 * MS) as f64);
        let expected_ids: Vec<SpanId> = std::iter::once(1)
            .chain(10..50)
            .map(|n| SpanId([n; 8]))
            .collect();
        assert_eq!(f.evidence.len(), 1);
        assert_eq!(f.evidence[0].trace_id, TraceId([1; 16]));
        assert_eq!(f.evidence[0].span_ids, expected_ids);
        assert!(f.recommendation.starts_with("batch them into one query"));
    }

    #[test]
    fn runs_aggregate_per_parent_and_template() {
        let traces = [trace(1, chat_history(40)), trace(2, chat_history(20))];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.occurrences, 2);
        assert_eq!(f.numbers["calls_per_run"], 30.0);
        // Per run: 124 ms − 4.65 ms and 62 ms − 4.65 ms; the mean of the two.
        assert_eq!(f.saving_nanos, 93 * MS - 4_650 * US);
        assert_eq!(f.evidence.len(), 2);
        let alone = &detect(&traces[1..], &Thresholds::default())[0];
        assert_eq!(alone.fingerprint, f.fingerprint);
    }

    #[test]
    fn a_few_similar_calls_do_not_fire() {
        assert!(detect(&[trace(1, chat_history(2))], &Thresholds::default()).is_empty());
        assert!(detect(&[trace(1, chat_history(4))], &Thresholds::default()).is_empty());
    }

    #[test]
    fn different_templates_are_not_grouped() {
        let mut spans = chat_history(6);
        for (i, s) in spans
            .iter_mut()
            .filter(|s| s.name == "db.query")
            .enumerate()
        {
            if i % 2 == 0 {
                s.attributes[0] =
                    KeyValue::new("db.query.text", "SELECT * FROM users WHERE id = 1");
            }
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn failed_calls_are_left_to_the_retry_storm_detector() {
        let mut spans = chat_history(5);
        spans[3].status.code = StatusCode::Error;
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn concurrent_calls_save_only_the_time_they_cover() {
        // Five 10 ms calls at once cover 10 ms; one batched call would take 15 ms: no saving.
        let mut spans = vec![span(1, None, "fan_out", 0, 20 * MS)];
        for i in 0..5 {
            let mut s = span(10 + i, Some(1), "cache.get", MS, 11 * MS);
            s.attributes
                .push(KeyValue::new("url.full", "http://cache/k/1"));
            spans.push(s);
        }
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn http_calls_group_by_method_and_url_template() {
        let mut spans = vec![span(1, None, "profile.render", 0, 100 * MS)];
        for i in 0..6u8 {
            let start = u64::from(i) * 10 * MS;
            let mut s = span(10 + i, Some(1), "GET", start, start + 10 * MS);
            s.attributes.push(KeyValue::new(
                "url.full",
                format!("https://api.x.com/users/{}?fields=all", 1000 + u32::from(i)),
            ));
            s.attributes
                .push(KeyValue::new("http.request.method", "GET"));
            spans.push(s);
        }
        let findings = detect(&[trace(1, spans)], &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert!(
            f.title
                .starts_with("profile.render calls `GET api.x.com/users/{id}` 6 times per run"),
            "{}",
            f.title
        );
        assert_eq!(f.saving_nanos, 60 * MS - 15 * MS);
        assert!(
            f.recommendation
                .starts_with("fetch them in a single request")
        );
    }

    #[test]
    fn without_a_statement_or_url_the_span_name_is_the_template() {
        let mut spans = vec![span(1, None, "index", 0, 100)];
        for i in 0..5u8 {
            spans.push(span(
                10 + i,
                Some(1),
                "cache.lookup",
                u64::from(i) * 10,
                u64::from(i) * 10 + 10,
            ));
        }
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert!(
            f.title
                .starts_with("index calls `cache.lookup` 5 times per run"),
            "{}",
            f.title
        );
        assert_eq!(f.saving_nanos, 50 - 15);
    }

    #[test]
    fn odd_input_does_not_panic() {
        let mut spans = vec![span(1, None, "p", 100, 0)];
        for i in 0..6u8 {
            spans.push(span(10 + i, Some(1), "q", 50, 10)); // ends before it starts
        }
        spans.push(span(30, Some(77), "orphan", 0, 1));
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn templates_display_without_the_scheme() {
        assert_eq!(
            Template::Http("POST https://api.openai.com/v1/chat".into()).display("x"),
            "POST api.openai.com/v1/chat"
        );
        assert_eq!(Template::Http("/v1/items".into()).display("x"), "/v1/items");
        assert_eq!(Template::Name.display("span"), "span");
        assert_eq!(
            Template::Sql("x".repeat(120)).display("").chars().count(),
            101
        );
    }
}
