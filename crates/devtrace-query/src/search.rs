//! Trace search: the store's indexed filters plus filters on attribute values, which need the
//! spans themselves and so are checked here on a bounded number of candidate traces.
//!
//! The store answers everything its summary row and operation index can (service, root or any
//! operation, duration, errors, time range, runs, paging). Attribute filters (`key = value`,
//! `key contains text`, on any span or on the resource) read candidates newest first and stop
//! after [`MAX_SCANNED`] of them, saying so, so a search never turns into a scan of the store.

use devtrace_model::{AnyValue, KeyValue, SpanBatch, semconv};
use devtrace_store::{Store, StoreError, TraceCursor, TraceQuery, TraceSummary};
use serde::Serialize;

/// Candidate traces read for attribute filters before a search stops and reports it.
pub const MAX_SCANNED: usize = 2_000;
/// Candidates fetched from the store at a time while scanning.
const CANDIDATE_PAGE: usize = 200;

/// How an attribute's value must match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueMatch {
    /// The value, rendered as text, equals this exactly.
    Equals(String),
    /// The value, rendered as text, contains this (case-sensitively).
    Contains(String),
}

/// One attribute condition; a trace matches when any of its spans (or a span's resource)
/// carries `key` with a matching value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeFilter {
    pub key: String,
    pub value: ValueMatch,
}

impl AttributeFilter {
    /// Parses `key=value` (equals) or `key~text` (contains), as the CLI, REST and MCP take them.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (at, equals) = match (text.find('='), text.find('~')) {
            (Some(e), Some(c)) if c < e => (c, false),
            (Some(e), _) => (e, true),
            (None, Some(c)) => (c, false),
            (None, None) => {
                return Err(format!(
                    "{} is not an attribute filter: write key=value (equals) or key~text (contains), \
                     e.g. http.route=/users or db.statement~SELECT",
                    crate::text::quote(text)
                ));
            }
        };
        let key = text[..at].trim();
        if key.is_empty() {
            return Err(format!(
                "{} has no attribute key before the operator",
                crate::text::quote(text)
            ));
        }
        let value = text[at + 1..].to_owned();
        Ok(Self {
            key: key.to_owned(),
            value: if equals {
                ValueMatch::Equals(value)
            } else {
                ValueMatch::Contains(value)
            },
        })
    }

    fn matches_value(&self, value: &AnyValue) -> bool {
        let text = value.to_display_string();
        match &self.value {
            ValueMatch::Equals(expected) => text == *expected,
            ValueMatch::Contains(part) => text.contains(part.as_str()),
        }
    }

    fn matches_attributes(&self, attributes: &[KeyValue]) -> bool {
        attributes
            .iter()
            .any(|kv| kv.key == self.key && self.matches_value(&kv.value))
    }

    /// Whether any span of the batch, or any resource in it, satisfies this filter.
    pub fn matches(&self, batch: &SpanBatch) -> bool {
        batch
            .resources
            .iter()
            .any(|r| self.matches_attributes(&r.attributes))
            || batch
                .spans
                .iter()
                .any(|s| self.matches_attributes(&s.attributes))
    }
}

/// A search: the store's filters, attribute filters, and the `devtrace run` shortcuts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceSearch {
    pub query: TraceQuery,
    pub attributes: Vec<AttributeFilter>,
    /// Traces of one `devtrace run`: the run itself and the traces attached to it.
    pub run_id: Option<String>,
    /// Runs recorded with `devtrace run --label LABEL`.
    pub label: Option<String>,
}

impl TraceSearch {
    /// Every attribute condition, the run shortcuts included.
    fn attribute_filters(&self) -> Vec<AttributeFilter> {
        let mut filters = self.attributes.clone();
        if let Some(run) = &self.run_id {
            filters.push(AttributeFilter {
                key: semconv::RUN_ID.into(),
                value: ValueMatch::Equals(run.to_ascii_lowercase()),
            });
        }
        if let Some(label) = &self.label {
            filters.push(AttributeFilter {
                key: semconv::RUN_LABEL.into(),
                value: ValueMatch::Equals(label.clone()),
            });
        }
        filters
    }
}

/// One page of search results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchPage {
    pub traces: Vec<TraceSummary>,
    /// Where the next page starts, when there may be more.
    pub next: Option<TraceCursor>,
    /// Candidate traces whose spans were read for attribute filters (0 without them).
    pub scanned: usize,
    /// True when the scan bound stopped the search before the page was full: older matches
    /// may exist; continue from `next`.
    pub scan_limited: bool,
}

/// Runs a search. Without attribute filters this is one indexed store query.
pub fn search(store: &dyn Store, search: &TraceSearch) -> Result<SearchPage, StoreError> {
    let limit = search.query.limit.max(1);
    let filters = search.attribute_filters();
    let mut query = search.query.clone();
    query.runs_only |= search.label.is_some();
    if filters.is_empty() {
        query.limit = limit;
        let traces = store.list_traces(&query)?;
        let next = (traces.len() == limit)
            .then(|| traces.last().map(TraceCursor::of))
            .flatten();
        return Ok(SearchPage {
            traces,
            next,
            scanned: 0,
            scan_limited: false,
        });
    }
    let mut found = Vec::new();
    let mut scanned = 0;
    loop {
        query.limit = CANDIDATE_PAGE.min(MAX_SCANNED - scanned);
        let candidates = store.list_traces(&query)?;
        let exhausted = candidates.len() < query.limit;
        for candidate in candidates {
            scanned += 1;
            query.after = Some(TraceCursor::of(&candidate));
            let Some(stored) = store.get_trace(candidate.trace_id)? else {
                continue;
            };
            if filters.iter().all(|f| f.matches(&stored.spans)) {
                found.push(candidate);
                if found.len() == limit {
                    return Ok(SearchPage {
                        traces: found,
                        next: query.after,
                        scanned,
                        scan_limited: false,
                    });
                }
            }
        }
        if exhausted {
            return Ok(SearchPage {
                traces: found,
                next: None,
                scanned,
                scan_limited: false,
            });
        }
        if scanned >= MAX_SCANNED {
            return Ok(SearchPage {
                traces: found,
                next: query.after,
                scanned,
                scan_limited: true,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{store_with, trace};

    fn numbers(page: &SearchPage) -> Vec<u32> {
        page.traces
            .iter()
            .map(|t| u32::from_be_bytes(t.trace_id.0[12..].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn filters_parse_with_equals_or_contains_and_explain_mistakes() {
        assert_eq!(
            AttributeFilter::parse("http.route=/a=b").unwrap(),
            AttributeFilter {
                key: "http.route".into(),
                value: ValueMatch::Equals("/a=b".into())
            }
        );
        assert_eq!(
            AttributeFilter::parse("db.statement~x=1").unwrap().value,
            ValueMatch::Contains("x=1".into())
        );
        assert!(
            AttributeFilter::parse("nokey")
                .unwrap_err()
                .contains("key=value")
        );
        assert!(
            AttributeFilter::parse("=v")
                .unwrap_err()
                .contains("no attribute key")
        );
    }

    #[test]
    fn attribute_filters_match_span_or_resource_values_and_page() {
        let route = |r: &str| vec![KeyValue::new("http.route", r)];
        let (_dir, store) = store_with(vec![
            trace(1, route("/users/1"), vec![]),
            trace(2, route("/orders"), vec![]),
            trace(3, route("/users/2"), vec![]),
            trace(4, vec![], vec![KeyValue::new("deployment", "canary")]),
            trace(5, route("/users/3"), vec![]),
        ]);
        let query = |filters: &[&str], limit: usize| TraceSearch {
            query: TraceQuery {
                limit,
                ..Default::default()
            },
            attributes: filters
                .iter()
                .map(|f| AttributeFilter::parse(f).unwrap())
                .collect(),
            ..Default::default()
        };
        let users = search(&store, &query(&["http.route~/users"], 10)).unwrap();
        assert_eq!(numbers(&users), [5, 3, 1]);
        assert_eq!(
            (users.scanned, users.next, users.scan_limited),
            (5, None, false)
        );
        let exact = search(&store, &query(&["http.route=/orders"], 10)).unwrap();
        assert_eq!(numbers(&exact), [2]);
        let resource = search(&store, &query(&["deployment=canary"], 10)).unwrap();
        assert_eq!(numbers(&resource), [4]);
        let both = search(
            &store,
            &query(&["http.route~/users", "deployment=canary"], 10),
        )
        .unwrap();
        assert!(both.traces.is_empty());

        let first = search(&store, &query(&["http.route~/users"], 2)).unwrap();
        assert_eq!(numbers(&first), [5, 3]);
        let mut next = query(&["http.route~/users"], 2);
        next.query.after = first.next;
        assert_eq!(numbers(&search(&store, &next).unwrap()), [1]);
    }

    #[test]
    fn run_and_label_shortcuts_find_a_runs_traces() {
        let run_id = "0123456789abcdef0123456789abcdef";
        let mut run_root = trace(
            1,
            vec![
                KeyValue::new(semconv::RUN_ID, run_id),
                KeyValue::new(semconv::RUN_LABEL, "before"),
            ],
            vec![],
        );
        run_root.spans[0].name = "cargo test".into();
        let attached = trace(2, vec![], vec![KeyValue::new(semconv::RUN_ID, run_id)]);
        let (_dir, store) = store_with(vec![run_root, attached, trace(3, vec![], vec![])]);
        let by_run = search(
            &store,
            &TraceSearch {
                query: TraceQuery {
                    limit: 10,
                    ..Default::default()
                },
                run_id: Some(run_id.to_ascii_uppercase()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(numbers(&by_run), [2, 1]);
        let by_label = search(
            &store,
            &TraceSearch {
                query: TraceQuery {
                    limit: 10,
                    ..Default::default()
                },
                label: Some("before".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(numbers(&by_label), [1]);
    }

    #[test]
    fn attribute_search_stops_at_the_scan_bound_and_says_where_to_continue() {
        let mut batches: Vec<SpanBatch> = (1..=MAX_SCANNED as u32 + 100)
            .map(|n| trace(n, vec![], vec![]))
            .collect();
        batches[0].spans[0]
            .attributes
            .push(KeyValue::new("needle", "yes"));
        let (_dir, store) = store_with(batches);
        let mut wanted = TraceSearch {
            query: TraceQuery {
                limit: 10,
                ..Default::default()
            },
            attributes: vec![AttributeFilter::parse("needle=yes").unwrap()],
            ..Default::default()
        };
        let page = search(&store, &wanted).unwrap();
        assert!(page.traces.is_empty());
        assert_eq!((page.scanned, page.scan_limited), (MAX_SCANNED, true));
        let next = page.next.expect("a cursor to continue from");
        assert_eq!(
            next.start_unix_nano,
            101 * 1_000,
            "the oldest trace scanned"
        );
        wanted.query.after = Some(next);
        let rest = search(&store, &wanted).unwrap();
        assert_eq!(numbers(&rest), [1]);
        assert_eq!((rest.scanned, rest.scan_limited), (100, false));
    }
}
