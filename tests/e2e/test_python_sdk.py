"""A real OpenTelemetry Python program (senders/python_sender.py) exports to `devtrace serve`
over OTLP/gRPC and OTLP/HTTP (protobuf, plain and gzip); the stored trace and logs must come
back exactly, through `devtrace ls --json` and `devtrace show --json`, on the embedded store
and on the PostgreSQL team store (with a token, sent as OTEL_EXPORTER_OTLP_HEADERS)."""

from __future__ import annotations

import time

import pytest

from harness import (
    Server,
    assert_strict,
    by_name,
    check_ls_entry,
    check_show,
    empty_or_none,
    one,
    run_python_sender,
    sort_tree,
    tree,
)

ROOT_ATTRIBUTES = {
    "http.request.method": "GET",
    "url.path": "/orders/42",
    "app.greeting": "héllo ✓",
    "app.empty": "",
    "app.cached": False,
    "app.retries": 2,
    "app.negative": -7,
    "app.big": 2**53 + 1,
    "app.ratio": 0.25,
    "app.whole": 3.0,
    "app.tags": ["x", "y", "z"],
    "app.flags": [True, False, True],
    "app.codes": [200, 404],
    "app.weights": [0.5, 1.5],
}
EXPECTED_TREE = sort_tree(
    [
        [
            "handle-request",
            [["parse", []], ["query", []], ["query", []], ["query", []], ["render", [["load-template", []]]]],
        ]
    ]
)
SCOPE = {"name": "e2e.sender", "version": "1.2.3"}

VARIANTS = {
    "grpc": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    "grpc-gzip": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
    "http": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    "http-gzip": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
}


def send(server: Server, variant: str) -> tuple[str, str, int, int]:
    """Runs the sender; returns (trace id, service name, time before, time after)."""
    service = f"py-e2e-{variant}"
    env = dict(VARIANTS[variant])
    endpoint = server.grpc_endpoint if env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc" else server.http_endpoint
    env.update(server.otlp_env())
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_SERVICE_NAME=service,
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=e2e",
    )
    before = time.time_ns()
    trace_id = run_python_sender(env)
    after = time.time_ns()
    return trace_id, service, before, after


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_python_sdk_trace_and_logs_round_trip(any_server: Server, variant: str):
    server = any_server
    trace_id, service, before, after = send(server, variant)

    # ls: exactly this trace, summarised.
    listing = server.ls()
    assert isinstance(listing, list) and len(listing) == 1, f"ls --json: {listing!r}"
    entry = listing[0]
    check_ls_entry(entry)
    assert entry["trace_id"] == trace_id
    assert entry["root_name"] == "handle-request"
    assert entry["service"] == service
    assert entry["span_count"] == 7
    assert entry["error_count"] == 1

    doc = check_show(server.show(trace_id))
    assert doc["trace_id"] == trace_id
    assert doc["span_count"] == 7
    assert doc["error_count"] == 1
    assert doc["root_name"] == "handle-request"
    assert doc["service"] == service
    assert entry["start_unix_nano"] == doc["start_unix_nano"]
    assert entry["duration_ns"] == doc["duration_ns"]
    assert tree(doc) == EXPECTED_TREE, f"tree: {tree(doc)}"

    for s in doc["spans"]:
        what = f"span {s['name']!r}"
        assert s["service"] == service, what
        assert_strict(s["scope"], SCOPE, f"{what} scope")
        assert s["resource"].get("service.name") == service, f"{what} resource {s['resource']!r}"
        assert s["resource"].get("deployment.environment.name") == "e2e", f"{what} resource"
        assert s["resource"].get("telemetry.sdk.language") == "python", f"{what} resource"
        assert s["dropped_attributes_count"] == 0, what
        assert before <= s["start_unix_nano"] <= s["end_unix_nano"] <= after, f"{what} times outside the run"

    root = one(doc, "handle-request")
    assert root["parent_span_id"] is None and root["depth"] == 0
    assert root["kind"] == "server"
    assert root["status"]["code"] == "unset" and empty_or_none(root["status"]["message"])
    assert_strict(root["attributes"], ROOT_ATTRIBUTES, "root attributes")
    assert [e["name"] for e in root["events"]] == ["request.received"]
    assert_strict(root["events"][0]["attributes"], {}, "request.received attributes")
    assert root["start_unix_nano"] <= root["events"][0]["time_unix_nano"] <= root["end_unix_nano"]
    assert root["links"] == []

    parse = one(doc, "parse")
    assert parse["parent_span_id"] == root["span_id"] and parse["depth"] == 1
    assert parse["kind"] == "internal"
    assert parse["status"]["code"] == "ok"
    assert_strict(parse["attributes"], {}, "parse attributes")
    assert len(parse["events"]) == 1
    event = parse["events"][0]
    assert event["name"] == "request.parsed"
    assert_strict(
        event["attributes"],
        {"fields": 3, "valid": True, "format": "json", "score": 0.75, "keys": ["id", "qty", "sku"]},
        "request.parsed attributes",
    )
    assert parse["start_unix_nano"] <= event["time_unix_nano"] <= parse["end_unix_nano"]

    queries = by_name(doc, "query")
    assert len(queries) == 3
    rows = []
    for q in queries:
        assert q["parent_span_id"] == root["span_id"] and q["depth"] == 1
        assert q["kind"] == "client"
        assert q["status"]["code"] == "unset"
        assert q["events"] == [] and q["links"] == []
        rows.append(q["attributes"].get("db.response.returned_rows"))
        assert_strict(
            q["attributes"],
            {
                "db.system.name": "postgresql",
                "db.query.text": "SELECT * FROM orders WHERE id = $1",
                "db.response.returned_rows": rows[-1],
            },
            "query attributes",
        )
    assert_strict(sorted(rows), [1, 2, 3], "db.response.returned_rows of the 3 queries")

    render = one(doc, "render")
    assert render["parent_span_id"] == root["span_id"] and render["depth"] == 1
    assert render["kind"] == "internal"
    assert_strict(render["status"], {"code": "error", "message": "template missing"}, "render status")
    assert len(render["links"]) == 1
    link = render["links"][0]
    assert link["trace_id"] == trace_id
    assert link["span_id"] == parse["span_id"]
    assert empty_or_none(link["trace_state"])
    assert_strict(link["attributes"], {"link.reason": "uses-parsed-body", "link.n": 1}, "link attributes")
    assert [e["name"] for e in render["events"]] == ["exception"]
    exc = render["events"][0]["attributes"]
    assert exc.get("exception.type") == "__main__.TemplateMissing", exc
    assert exc.get("exception.message") == "template 'order.html' not found", exc
    stack = exc.get("exception.stacktrace")
    assert isinstance(stack, str) and stack.startswith("Traceback (most recent call last):"), exc
    assert "TemplateMissing: template 'order.html' not found" in stack, stack
    assert exc.get("exception.escaped") == "False", exc

    template = one(doc, "load-template")
    assert template["parent_span_id"] == render["span_id"] and template["depth"] == 2
    assert template["kind"] == "internal"

    # Logs: both records, correlated to the spans they were emitted in, in time order.
    logs = doc["logs"]
    assert len(logs) == 2, f"logs: {logs!r}"
    info, error = logs
    assert info["body"] == "parsed 3 fields"
    assert info["severity_number"] == 9 and info["severity_text"] == "INFO"
    assert info["span_id"] == parse["span_id"]
    assert info["attributes"].get("request.id") == "r-1", info["attributes"]
    assert info["attributes"].get("code.function.name") == "emit", info["attributes"]
    assert isinstance(info["attributes"].get("code.line.number"), int), info["attributes"]
    assert error["body"] == "render failed: template missing"
    assert error["severity_number"] == 17 and error["severity_text"] == "ERROR"
    assert error["span_id"] == render["span_id"]
    for rec in logs:
        assert rec["service"] == service
        assert empty_or_none(rec["event_name"]), rec
        assert before <= rec["time_unix_nano"] <= after, f"log time outside the run: {rec!r}"

    # The API agrees.
    status, stats = server.api_get("/api/v1/stats")
    assert status == 200
    assert (stats.get("spans"), stats.get("traces"), stats.get("logs")) == (7, 1, 2), stats


def test_show_accepts_a_unique_prefix(server: Server):
    trace_id, _, _, _ = send(server, "grpc")
    full = server.show(trace_id)
    for n in (8, 12, 31):
        assert server.show(trace_id[:n]) == full, f"show {trace_id[:n]} differs from show {trace_id}"


def test_show_unknown_id_fails(server: Server):
    send(server, "grpc")
    result = server.cli("show", "0123456789abcdef0123456789abcdef", "--json", check=False)
    assert result.returncode == 1, result.describe()
    assert result.stderr.strip(), f"no error message on stderr\n{result.describe()}"


def test_two_senders_two_traces(server: Server):
    first, _, _, _ = send(server, "grpc")
    second, _, _, _ = send(server, "http")
    listing = server.ls()
    assert [e["trace_id"] for e in listing] == [second, first], "ls must list newest first"
    assert [e["trace_id"] for e in server.ls("--limit", "1")] == [second]
    assert [e["trace_id"] for e in server.ls("--service", "py-e2e-grpc")] == [first]
    status, stats = server.api_get("/api/v1/stats")
    assert (stats.get("spans"), stats.get("traces"), stats.get("logs")) == (14, 2, 4), stats
