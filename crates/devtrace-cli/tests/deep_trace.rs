//! A 100,000-deep chain of calls (non-tail recursion recorded span by span, or a hostile
//! sender): `show` draws it without overflowing the stack, its guide capped at a stated depth.

mod common;

use common::{devtrace_at_width, import_text, ok};

const DEPTH: u64 = 100_000;
const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// Span k (1-based) calls span k + 1, 1 µs of its own on each side of it.
fn deep_trace() -> String {
    let spans: Vec<serde_json::Value> = (1..=DEPTH)
        .map(|k| {
            serde_json::json!({
                "traceId": TRACE_ID,
                "spanId": format!("{k:016x}"),
                "parentSpanId": if k > 1 { format!("{:016x}", k - 1) } else { String::new() },
                "name": format!("f{}", k % 7),
                "kind": 1,
                "startTimeUnixNano": (1_700_000_000_000_000_000u64 + k * 1000).to_string(),
                "endTimeUnixNano": (1_700_000_000_000_000_000u64 + (2 * DEPTH + 1 - k) * 1000).to_string(),
            })
        })
        .collect();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "deep"}}]},
        "scopeSpans": [{"scope": {"name": "recursion"}, "spans": spans}],
    }]})
    .to_string()
}

#[test]
fn show_draws_a_100000_deep_chain_with_its_guide_capped() {
    let dir = tempfile::tempdir().unwrap();
    import_text(dir.path(), "deep.json", &deep_trace());
    let shown = ok(devtrace_at_width(dir.path(), 200, &["show", TRACE_ID]));
    let lines: Vec<&str> = shown.lines().collect();
    let note = lines
        .iter()
        .position(|l| l.contains("nested deeper than 24 levels"))
        .expect("the cap is stated");
    // The 24th level is the first shown by its depth; the innermost call is the last.
    assert!(lines[note + 1].contains("↳24 └─ f4"), "{}", lines[note + 1]);
    assert!(
        shown.contains(&format!("↳{} └─ f{} ", DEPTH - 1, DEPTH % 7)),
        "the innermost call is drawn"
    );
    // One line with a bar per span.
    let span_lines = lines.iter().filter(|l| l.contains('█')).count();
    assert_eq!(span_lines, DEPTH as usize);
    // Lines stay bounded: no guide grows past the cap.
    assert!(lines.iter().all(|l| l.chars().count() < 400));
}
