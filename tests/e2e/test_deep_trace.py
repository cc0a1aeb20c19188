"""A trace whose spans nest 100,000 deep (non-tail recursion recorded call by call, or a
hostile sender) is shown, analysed and served without overflowing a stack: the CLI answers,
and `devtrace serve` answers the web UI's routes and stays up. Its recursive operation (f1,
every 7th call: 14,286 nested runs) is profiled run by run in linear time by `perf`, the REST
API and MCP's `analyze_operation` — quadratic, they ran for more than 20 minutes."""

import asyncio
import json
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from harness import clean_env

DEPTH = 100_000
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
# f1 is call k = 1, 8, 15, …: 14,286 runs, each (2·DEPTH + 1 − 2k) µs long — 100.004 ms on
# average — and all f2's but its own 2 µs.
F1_RUNS = len(range(1, DEPTH + 1, 7))
F1_MEAN_NS = sum((2 * DEPTH + 1 - 2 * k) * 1000 for k in range(1, DEPTH + 1, 7)) / F1_RUNS


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


def test_the_recursive_operation_of_a_100000_deep_trace_is_profiled_run_by_run(server, tmp_path: Path):
    source = tmp_path / "deep.json"
    write_deep_trace(source)
    server.json("import", "--json", str(source))

    perf = server.cli("perf", "f1").stdout
    assert perf.startswith(f"f1 (internal span of deep): 100.0 ms mean over {F1_RUNS} runs"), perf
    assert "  f2     other  100.0 ms  100.0 ms  190.0 ms  100 %    1.0     100 %\n" in perf, perf
    assert "time by kind of work: other 100 % (100.0 ms)\n" in perf, perf

    status, analytics = server.api_get("/api/v1/operations/f1")
    assert status == 200, analytics
    profile = analytics["profile"]
    assert len(profile["runs"]) == F1_RUNS
    assert profile["duration"]["mean"] == F1_MEAN_NS
    [f2] = profile["children"]
    assert (f2["name"], f2["calls_per_run"]) == ("f2", 1.0), f2
    assert f2["per_run"]["mean"] == F1_MEAN_NS - 2000
    # Every run is on its own critical path: f2's part and f1's own 2 µs sum to the whole.
    assert abs(f2["critical_share"] + profile["self_critical_share"] - 1.0) < 1e-9, profile
    assert [k["kind"] for k in profile["by_kind"]] == ["other"], profile["by_kind"]

    async def analyze_operation() -> str:
        params = StdioServerParameters(
            command=str(server.bin), args=["--data", str(server.data_dir), "mcp"], env=clean_env()
        )
        async with Client(params, read_timeout_seconds=600) as client:
            result = await client.call_tool("analyze_operation", {"operation": "f1"})
            text = "".join(c.text for c in result.content if c.type == "text")
            assert not result.is_error, text
            return text

    text = asyncio.run(analyze_operation())
    assert f'"f1" (internal span of "deep"): 100.0 ms mean over {F1_RUNS} runs' in text, text
    assert '  "f2"   other  100.0 ms  100.0 ms  190.0 ms  100 %    1.0     100 %\n' in text, text

    status, health = server.api_get("/api/v1/health")
    assert status == 200, server.log_tail()
    assert server.proc.poll() is None, server.log_tail()
