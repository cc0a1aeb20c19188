"""`devtrace serve` lifecycle: graceful stop on SIGINT, data kept across restarts, and
acknowledged data surviving a SIGKILL (SPEC: "Acknowledged data is durable")."""

from __future__ import annotations

import signal
from pathlib import Path

from harness import Store, check_show, run_client, run_python_sender, start_server, stop_server


def test_sigint_stops_cleanly_and_data_survives_restart(devtrace_bin: Path, tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "serve.log"
    srv = start_server(devtrace_bin, data_dir, log)
    try:
        trace_id = run_python_sender(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": srv.grpc_endpoint, "OTEL_SERVICE_NAME": "restart-e2e"}
        )
    finally:
        stop_server(srv, signal.SIGINT)

    # Readable without a server.
    offline = Store(bin=devtrace_bin, data_dir=data_dir)
    doc = check_show(offline.show(trace_id))
    assert (doc["span_count"], len(doc["logs"])) == (7, 2)

    srv = start_server(devtrace_bin, data_dir, log)
    try:
        assert [e["trace_id"] for e in srv.ls()] == [trace_id]
        assert srv.show(trace_id) == doc
        status, stats = srv.api_get("/api/v1/stats")
        assert (stats["spans"], stats["traces"], stats["logs"]) == (7, 1, 2), stats
    finally:
        stop_server(srv, signal.SIGTERM)


def test_acknowledged_data_survives_sigkill(devtrace_bin: Path, rust_client_bin: Path, tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_server(devtrace_bin, data_dir, tmp_path / "serve.log")
    try:
        trace_id = run_client([str(rust_client_bin)], {"OTEL_EXPORTER_OTLP_ENDPOINT": srv.grpc_endpoint})
    finally:
        srv.proc.kill()
        srv.proc.wait(timeout=10)
    doc = check_show(Store(bin=devtrace_bin, data_dir=data_dir).show(trace_id))
    assert (doc["span_count"], len(doc["logs"])) == (6, 1)
