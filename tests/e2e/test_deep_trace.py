"""A trace whose spans nest 100,000 deep (non-tail recursion recorded call by call, or a
hostile sender) is shown, analysed and served without overflowing a stack: the CLI answers,
and `devtrace serve` answers the web UI's routes and stays up."""

import json
from pathlib import Path

DEPTH = 100_000
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def write_deep_trace(path: Path) -> None:
    """Span k (1-based) calls span k + 1; each has 1 µs of its own on each side of its child."""
    spans = []
    for k in range(1, DEPTH + 1):
        spans.append(
            {
                "traceId": TRACE_ID,
                "spanId": f"{k:016x}",
                "parentSpanId": f"{k - 1:016x}" if k > 1 else "",
                "name": f"f{k % 7}",
                "kind": 1,
                "startTimeUnixNano": str(1_700_000_000_000_000_000 + k * 1000),
                "endTimeUnixNano": str(1_700_000_000_000_000_000 + (2 * DEPTH + 1 - k) * 1000),
            }
        )
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "deep"}}]},
                "scopeSpans": [{"scope": {"name": "recursion"}, "spans": spans}],
            }
        ]
    }
    path.write_text(json.dumps(doc))


def test_a_100000_deep_trace_is_shown_analysed_and_served(server, tmp_path: Path):
    source = tmp_path / "deep.json"
    write_deep_trace(source)
    summary = server.json("import", "--json", str(source))
    assert summary["spans"] == DEPTH, summary

    shown = server.cli("show", TRACE_ID).stdout
    assert "nested deeper than 24 levels" in shown
    assert f"↳{DEPTH - 1} └─ f{DEPTH % 7}" in shown
    assert shown.count("\n") >= DEPTH

    insights = server.cli("insights").stdout
    # Each call's time is all in the next: the top call's is where the time goes.
    assert '100.0 % of the time of "f1" is in "f2"' in insights, insights

    perf = server.cli("perf").stdout
    assert "f1" in perf and "1 trace" in perf, perf

    # An imported trace is not a recorded run (the note goes to stderr).
    runs = server.cli("runs")
    assert runs.stdout == "" and "no runs recorded" in runs.stderr, runs.describe()

    status, trace = server.api_get(f"/api/v1/traces/{TRACE_ID}")
    assert status == 200, trace
    assert trace["span_count"] == DEPTH
    status, waterfall = server.api_get(f"/api/v1/traces/{TRACE_ID}/waterfall")
    assert status == 200
    assert len(waterfall["name"]) == DEPTH
    assert max(waterfall["depth"]) == DEPTH - 1
    status, findings = server.api_get(f"/api/v1/traces/{TRACE_ID}/findings")
    assert status == 200, findings

    status, health = server.api_get("/api/v1/health")
    assert status == 200, server.log_tail()
    assert server.proc.poll() is None, server.log_tail()
