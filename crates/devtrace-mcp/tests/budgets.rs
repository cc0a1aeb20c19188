//! Token budgets on large data: a 5,000-span trace through `get_trace` keeps its critical path
//! and every error inside the default budget, a 21-entry session pages through
//! `session_overview` at every budget, and every tool stays inside its budget on a store of one
//! million spans (with real coding-agent sessions beside them).

use devtrace_analyze::AnalyzedTrace;
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::budget::{DEFAULT_BUDGET, MAX_BUDGET, count};
use devtrace_mcp::selftrace::Transport;
use devtrace_mcp::tools::WebUi;
use devtrace_mcp::trace_view::{View, draw};
mod common;

use common::{MS, batch, fail, fill_store, span, span_id};
use devtrace_model::TraceId;
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use serde_json::json;
use std::sync::Arc;

/// 5,000 spans: a root, 10 sequential stages (the critical path), each with a run of 100
/// same-named queries (they fold) and 3 workers whose main loop is on the path while 131
/// differently named parse steps (they do not fold) run beside it; 7 errors at various depths.
/// Where the web UI would answer.
const UI: &str = "http://127.0.0.1:4319";

fn big_trace() -> (AnalyzedTrace, Vec<usize>) {
    let trace = TraceId([9; 16]);
    let mut spans = vec![span(trace, 1, None, "batch.import", 0, 10_000 * MS)];
    let mut next = 2u64;
    for stage in 0..10u64 {
        let start = stage * 1_000 * MS;
        let stage_id = next;
        next += 1;
        spans.push(span(
            trace,
            stage_id,
            Some(1),
            "stage.run",
            start,
            start + 1_000 * MS,
        ));
        for q in 0..100u64 {
            let s = start + q * 2 * MS;
            spans.push(span(trace, next, Some(stage_id), "SELECT rows", s, s + MS));
            next += 1;
        }
        for w in 0..3u64 {
            let worker = next;
            next += 1;
            let ws = start + 200 * MS + w * MS;
            spans.push(span(
                trace,
                worker,
                Some(stage_id),
                &format!("worker {w}"),
                ws,
                ws + 790 * MS,
            ));
            // The worker's main loop determines when it ends; its parse steps run beside it.
            spans.push(span(
                trace,
                next,
                Some(worker),
                "worker.main",
                ws,
                ws + 790 * MS,
            ));
            next += 1;
            for p in 0..131u64 {
                let s = ws + p * 5 * MS;
                spans.push(span(
                    trace,
                    next,
                    Some(worker),
                    &format!("parse record {p}"),
                    s,
                    s + 4 * MS,
                ));
                next += 1;
            }
        }
    }
    spans.truncate(5_000);
    while spans.len() < 5_000 {
        let s = 9_000 * MS;
        spans.push(span(trace, next, Some(1), "flush", s, s + MS));
        next += 1;
    }
    for i in [5, 120, 777, 1_500, 2_222, 3_333, 4_999] {
        fail(&mut spans[i], &format!("bad record {i}"));
    }
    let analyzed = AnalyzedTrace::new(trace, batch(spans));
    let errors = (0..analyzed.spans.spans.len())
        .filter(|i| analyzed.span(*i).is_error())
        .collect();
    (analyzed, errors)
}

#[test]
fn a_5000_span_trace_fits_the_default_budget_with_its_critical_path_and_every_error() {
    let (trace, errors) = big_trace();
    assert_eq!(trace.spans.spans.len(), 5_000);
    assert_eq!(errors.len(), 7);
    let drawn = draw(&View {
        trace: &trace,
        focus: None,
        budget: DEFAULT_BUDGET,
    });
    let tokens = count(&drawn.text);
    assert!(tokens <= DEFAULT_BUDGET, "{tokens} tokens");
    assert!(
        tokens > DEFAULT_BUDGET / 2,
        "the budget is used, not wasted: {tokens}"
    );
    let root = trace.root().unwrap();
    let credits = devtrace_analyze::critical_path::critical_credits(&trace, root);
    let critical: Vec<usize> = (0..5_000).filter(|i| credits[*i] > 0).collect();
    assert!(critical.len() >= 11, "{}", critical.len());
    for i in &critical {
        assert!(
            drawn.visible[*i],
            "critical span {} is not shown",
            trace.span(*i).name
        );
    }
    for i in &errors {
        let id = &trace.span(*i).span_id.to_hex()[..8];
        assert!(drawn.visible[*i], "error span {i} is not shown");
        assert!(
            drawn.text.contains(&format!("[{id}]")),
            "error span {id} has no line of its own"
        );
        assert!(
            drawn.text.contains(&format!("\"bad record {i}\"")),
            "the message of {i} is shown"
        );
    }
    assert!(
        drawn.text.contains("× 100 \"SELECT rows\""),
        "repeated siblings fold"
    );
    assert!(
        drawn
            .text
            .contains(&format!("shows {} of 5000 spans", drawn.shown))
    );
    assert!(drawn.shown < 5_000);
    assert!(drawn.text.contains("get_spans(trace_id, span_ids=[…])"));
    // A hidden subtree can be expanded with a budget of its own.
    let hidden = drawn
        .text
        .lines()
        .find(|l| l.contains("more span(s)"))
        .expect("a hidden-children line");
    assert!(hidden.contains("get_trace(span_id=\""), "{hidden}");
}

#[test]
fn a_small_budget_keeps_the_errors_before_the_rest() {
    let (trace, errors) = big_trace();
    let drawn = draw(&View {
        trace: &trace,
        focus: None,
        budget: 1_200,
    });
    assert!(count(&drawn.text) <= 1_200);
    for i in &errors {
        assert!(
            drawn.visible[*i],
            "error span {i} is not shown at 1,200 tokens"
        );
    }
}

#[test]
fn every_tool_stays_inside_its_budget_on_a_million_spans() {
    let dir = tempfile::tempdir().unwrap();
    fill_store(dir.path(), 20_000);
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    assert_eq!(store.stats().unwrap().spans, 1_000_000);
    // The sample project's sessions, and its orchestrator session run once more, beside them.
    let reruns = tempfile::tempdir().unwrap();
    common::orchestrator_reruns(reruns.path(), 1);
    common::import_claude_code(dir.path(), &common::sample_project());
    common::import_claude_code(dir.path(), reruns.path());
    assert_eq!(store.stats().unwrap().traces, 20_004);
    // As under `devtrace serve`: answers about one view end with a link, inside the budget.
    let server = DevtraceMcp::new(store, Transport::Stdio).with_web_ui(WebUi::at(UI.into()));
    let trace_id = "0000000000004e20ab00000000000000"; // the last trace (20,000)
    let calls = [
        ("overview", json!({})),
        (
            "search_traces",
            json!({"operation": "payment.charge", "status": "error", "limit": 200}),
        ),
        (
            "search_traces",
            json!({"attributes": ["cart.size=90"], "limit": 50}),
        ),
        ("get_trace", json!({"trace_id": trace_id})),
        (
            "get_spans",
            json!({"trace_id": trace_id, "span_ids": [span_id(3).to_hex(), span_id(10).to_hex()]}),
        ),
        (
            "analyze_operation",
            json!({"operation": "checkout", "last": 100}),
        ),
        ("find_issues", json!({})),
        ("compare", json!({"operation": "checkout", "last": 40})),
        ("errors", json!({})),
        (
            "query_sql",
            json!({"sql": "SELECT name, count(*), avg(duration_ns) FROM spans WHERE trace_id = '0000000000004e20ab00000000000000' GROUP BY name"}),
        ),
        (
            "query_sql",
            json!({"sql": "SELECT trace_id, root_name, duration_ns FROM traces", "max_rows": 500}),
        ),
        ("list_sessions", json!({"limit": 200})),
        ("session_overview", json!({"session_id": "3f2a9b1c"})),
        (
            "check_insights",
            json!({"repo": "/home/dev/shop", "task": "fix the build"}),
        ),
        ("qa_summary", json!({"repo": "/home/dev/shop"})),
    ];
    for (tool, arguments) in calls {
        for budget in [None, Some(1_000), Some(MAX_BUDGET * 10)] {
            let mut arguments = arguments.clone();
            if let Some(b) = budget {
                arguments["budget"] = json!(b);
            }
            let (text, is_error) = server.call(tool, arguments.clone());
            assert!(!is_error, "{tool} {arguments}: {text}");
            let limit = budget.unwrap_or(DEFAULT_BUDGET).clamp(300, MAX_BUDGET);
            let tokens = count(&text);
            assert!(
                tokens <= limit,
                "{tool} {arguments}: {tokens} tokens > {limit}"
            );
        }
    }
    let link = format!("web UI view for the user: {UI}/traces/{trace_id}\n");
    let (trace, _) = server.call("get_trace", json!({"trace_id": trace_id}));
    assert!(trace.ends_with(&link), "{trace}");
    let (small, _) = server.call("get_trace", json!({"trace_id": trace_id, "budget": 300}));
    assert!(
        !small.contains("web UI"),
        "a small budget is kept for data: {small}"
    );
    // The findings of this data, as the tools report them.
    let (issues, _) = server.call("find_issues", json!({}));
    assert!(issues.contains("20 times per run"), "the N+1: {issues}");
    let (errors, _) = server.call("errors", json!({}));
    assert!(
        errors.contains("cart.size"),
        "the failing runs share cart.size: {errors}"
    );
    let (overview, _) = server.call("overview", json!({}));
    assert!(
        overview.contains("recent development sessions")
            && overview.contains("\"/orchestrator add a shopping cart\""),
        "{overview}"
    );
    let (insights, _) = server.call("check_insights", json!({"repo": "/home/dev/shop"}));
    assert!(
        insights.contains("in 2 of 4 sessions"),
        "the rerun's failures recur: {insights}"
    );
    let (not_a_session, is_error) =
        server.call("session_overview", json!({"session_id": trace_id}));
    assert!(is_error);
    assert!(
        not_a_session.contains("is a trace, but not a development session"),
        "{not_a_session}"
    );
}

/// Timeline entries on a `session_overview` page: their lines start with the time since the
/// session started (`+1:17`).
fn timeline_entries(page: &str) -> usize {
    page.lines()
        .filter(|l| {
            l.trim_start()
                .strip_prefix('+')
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

/// The `offset` a page's footer names for the next page, if there is one.
fn next_offset(page: &str) -> Option<usize> {
    let (_, after) = page.rsplit_once(", offset=")?;
    Some(after[..after.find(')')?].parse().unwrap())
}

/// The sample project's 21-entry orchestrator session (2 turns, 2 sub-agents, 17 tool calls):
/// at every budget each page fits, the first holds the header and as many findings as its share allows,
/// and following the footers shows every entry exactly once; the other session tools fit too.
#[test]
fn the_session_tools_fit_every_budget_and_page_through_a_whole_session() {
    let dir = tempfile::tempdir().unwrap();
    common::import_claude_code(dir.path(), &common::sample_project());
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let server = DevtraceMcp::new(store, Transport::Stdio).with_web_ui(WebUi::at(UI.into()));
    for budget in [300, 1_000, DEFAULT_BUDGET, MAX_BUDGET] {
        for (tool, arguments) in [
            ("list_sessions", json!({"budget": budget})),
            (
                "check_insights",
                json!({"repo": "/home/dev/shop", "budget": budget}),
            ),
        ] {
            let (text, is_error) = server.call(tool, arguments);
            assert!(!is_error, "{tool}: {text}");
            assert!(count(&text) <= budget, "{tool} at {budget}: {text}");
        }
        let (mut offset, mut seen, mut pages) = (0, 0, 0);
        loop {
            let (page, is_error) = server.call(
                "session_overview",
                json!({"session_id": "3f2a9b1c", "offset": offset, "budget": budget}),
            );
            assert!(!is_error, "{page}");
            let tokens = count(&page);
            assert!(
                tokens <= budget,
                "{tokens} > {budget} at offset {offset}:\n{page}"
            );
            let shown = timeline_entries(&page);
            assert!(shown > 0, "every page advances:\n{page}");
            assert!(!page.contains("entry cut"), "{page}");
            seen += shown;
            pages += 1;
            match next_offset(&page) {
                Some(next) => {
                    assert_eq!(next, offset + shown, "the footer names the next entry");
                    offset = next;
                }
                None => break,
            }
        }
        assert_eq!(seen, 21, "at {budget} tokens");
        if budget >= DEFAULT_BUDGET {
            assert_eq!(pages, 1, "the whole session fits in {budget} tokens");
        } else {
            assert!(pages > 1, "at {budget} tokens");
        }
    }
    let (first, _) = server.call("session_overview", json!({"session_id": "3f2a9b1c"}));
    assert!(
        first.contains("\n2 finding(s), ranked by impact\n"),
        "{first}"
    );
    assert!(
        !first.contains("more finding(s) not shown"),
        "the default budget shows every finding:\n{first}"
    );
    let (past, is_error) = server.call(
        "session_overview",
        json!({"session_id": "3f2a9b1c", "offset": 21}),
    );
    assert!(is_error);
    assert_eq!(
        past,
        "offset 21 is past the end: the timeline of this session has 21 entries (0 to 20)"
    );
}
