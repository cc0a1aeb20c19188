"""A real OpenTelemetry Rust program (tests/clients/rust-otlp, opentelemetry-otlp 0.33 over
gRPC, logs through opentelemetry-appender-tracing) exports to `devtrace serve`; the stored trace
and its log must come back exactly."""

from __future__ import annotations

import time
from pathlib import Path

from harness import (
    Server,
    assert_strict,
    by_name,
    check_ls_entry,
    check_show,
    empty_or_none,
    one,
    run_client,
    sort_tree,
    tree,
)

ROOT_ATTRIBUTES = {
    "app.user": "alice",
    "app.vip": True,
    "app.items": 3,
    "app.total": 42.5,
    "app.tags": ["a", "b"],
    "app.sizes": [1, 2, 3],
    "app.flags": [True, False],
    "app.prices": [1.5, 2.25],
}
EXPECTED_TREE = sort_tree(
    [["checkout", [["load-cart", [["SELECT cart_items", []]] * 3], ["charge-card", []]]]]
)
SCOPE = {"name": "devtrace-e2e-rust-client", "version": "0.1.0"}


def send(server: Server, rust_client_bin: Path, **env: str) -> tuple[str, int, int]:
    before = time.time_ns()
    trace_id = run_client([str(rust_client_bin)], {"OTEL_EXPORTER_OTLP_ENDPOINT": server.grpc_endpoint, **env})
    return trace_id, before, time.time_ns()


def test_rust_client_trace_and_log_round_trip(server: Server, rust_client_bin: Path):
    trace_id, before, after = send(server, rust_client_bin)

    listing = server.ls()
    assert isinstance(listing, list) and len(listing) == 1, f"ls --json: {listing!r}"
    entry = listing[0]
    check_ls_entry(entry)
    assert entry["trace_id"] == trace_id
    assert entry["root_name"] == "checkout"
    assert entry["service"] == "rust-e2e"
    assert entry["span_count"] == 6
    assert entry["error_count"] == 1

    doc = check_show(server.show(trace_id))
    assert (doc["trace_id"], doc["root_name"], doc["service"]) == (trace_id, "checkout", "rust-e2e")
    assert (doc["span_count"], doc["error_count"]) == (6, 1)
    assert (entry["start_unix_nano"], entry["duration_ns"]) == (doc["start_unix_nano"], doc["duration_ns"])
    assert tree(doc) == EXPECTED_TREE, f"tree: {tree(doc)}"

    for s in doc["spans"]:
        what = f"span {s['name']!r}"
        assert s["service"] == "rust-e2e", what
        assert_strict(s["scope"], SCOPE, f"{what} scope")
        assert s["resource"].get("service.name") == "rust-e2e", f"{what} resource {s['resource']!r}"
        assert s["resource"].get("telemetry.sdk.language") == "rust", f"{what} resource"
        assert s["dropped_attributes_count"] == 0, what
        assert before <= s["start_unix_nano"] <= s["end_unix_nano"] <= after, f"{what} times outside the run"

    root = one(doc, "checkout")
    assert root["parent_span_id"] is None and root["depth"] == 0
    assert root["kind"] == "server"
    assert root["status"]["code"] == "unset" and empty_or_none(root["status"]["message"])
    assert_strict(root["attributes"], ROOT_ATTRIBUTES, "root attributes")
    assert root["events"] == [] and root["links"] == []

    load = one(doc, "load-cart")
    assert load["parent_span_id"] == root["span_id"] and load["depth"] == 1
    assert load["kind"] == "internal"
    assert_strict(load["attributes"], {}, "load-cart attributes")
    assert [e["name"] for e in load["events"]] == ["cart.loaded"]
    assert_strict(load["events"][0]["attributes"], {"count": 3}, "cart.loaded attributes")
    assert load["start_unix_nano"] <= load["events"][0]["time_unix_nano"] <= load["end_unix_nano"]

    queries = by_name(doc, "SELECT cart_items")
    assert len(queries) == 3
    for q in queries:
        assert q["parent_span_id"] == load["span_id"] and q["depth"] == 2
        assert q["kind"] == "client"
        assert_strict(
            q["attributes"],
            {"db.system.name": "postgresql", "db.query.text": "SELECT * FROM cart_items WHERE id = ?"},
            "query attributes",
        )

    charge = one(doc, "charge-card")
    assert charge["parent_span_id"] == root["span_id"] and charge["depth"] == 1
    assert charge["kind"] == "client"
    assert_strict(charge["status"], {"code": "error", "message": "card declined"}, "charge-card status")
    assert len(charge["links"]) == 1
    link = charge["links"][0]
    assert (link["trace_id"], link["span_id"]) == (trace_id, load["span_id"])
    assert empty_or_none(link["trace_state"])
    assert_strict(link["attributes"], {"link.kind": "follows"}, "link attributes")
    assert [e["name"] for e in charge["events"]] == ["exception"]
    assert_strict(
        charge["events"][0]["attributes"],
        {"exception.type": "PaymentError", "exception.message": "card declined"},
        "exception event attributes",
    )

    assert len(doc["logs"]) == 1, f"logs: {doc['logs']!r}"
    log = doc["logs"][0]
    assert log["body"] == "payment failed for alice"
    assert log["severity_number"] == 17 and log["severity_text"] == "ERROR"
    assert log["span_id"] == charge["span_id"]
    assert log["event_name"] == "payment.failed"
    assert log["attributes"].get("user") == "alice", log["attributes"]
    assert log["service"] == "rust-e2e"
    # The Rust bridge sets only observedTimeUnixNano; the data model says to use it then.
    assert before <= log["time_unix_nano"] <= after, f"log time outside the run: {log!r}"


def test_otel_service_name_overrides_and_ls_filters(server: Server, rust_client_bin: Path):
    plain, _, _ = send(server, rust_client_bin)
    renamed, _, _ = send(server, rust_client_bin, OTEL_SERVICE_NAME="rust-renamed")
    assert [e["trace_id"] for e in server.ls()] == [renamed, plain], "ls must list newest first"
    assert [e["trace_id"] for e in server.ls("--service", "rust-renamed")] == [renamed]
    assert [e["trace_id"] for e in server.ls("--service", "rust-e2e")] == [plain]
    assert [e["trace_id"] for e in server.ls("--errors")] == [renamed, plain]
    assert [e["trace_id"] for e in server.ls("--name", "checkout")] == [renamed, plain]
    assert server.ls("--name", "no-such-operation") == []
    assert [e["trace_id"] for e in server.ls("--since", "1h")] == [renamed, plain]
    assert server.ls("--min-duration", "1h") == []
    assert server.show(renamed)["service"] == "rust-renamed"
