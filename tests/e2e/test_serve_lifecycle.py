"""`devtrace serve` lifecycle: graceful stop on SIGINT, data kept across restarts, and
acknowledged data surviving a SIGKILL (SPEC: "Acknowledged data is durable")."""

from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import quote

from harness import Store, check_show, http_request, run_client, run_python_sender, start_server, stop_server


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


def test_text_answers_link_to_the_web_ui_while_a_server_runs(devtrace_bin: Path, tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_server(devtrace_bin, data_dir, tmp_path / "serve.log")
    try:
        trace_id = run_python_sender(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": srv.grpc_endpoint, "OTEL_SERVICE_NAME": "links-e2e"}
        )
        other = run_python_sender(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": srv.grpc_endpoint, "OTEL_SERVICE_NAME": "links-e2e"}
        )
        root = next(s["name"] for s in srv.show(trace_id)["spans"] if not s.get("parent_span_id"))
        answers = {
            f"/traces/{trace_id}": srv.cli("show", trace_id).stdout,
            f"/operations/{quote(root, safe='')}": srv.cli("perf", root).stdout,
            f"/compare?a={trace_id}&b={other}": srv.cli("compare", trace_id, other).stdout,
            f"/compare?operation={quote(root, safe='')}&last=2": srv.cli("compare", "--operation", root, "--last", "2").stdout,
        }
        for path, text in answers.items():
            url = f"http://{srv.api}{path}"
            assert f"open in the web UI: {url}\n" in text, text
            status, headers, body = http_request("GET", url)
            assert status == 200 and headers.get("Content-Type", "").startswith("text/html"), (status, body[:200])
        # Scripts get the data alone: no link in JSON.
        assert "open in the web UI" not in srv.cli("show", trace_id, "--json").stdout
    finally:
        stop_server(srv, signal.SIGTERM)
    # With the server stopped there is nothing to open, so no link.
    offline = Store(bin=devtrace_bin, data_dir=data_dir).cli("show", trace_id).stdout
    assert trace_id[:8] in offline and "open in the web UI" not in offline, offline
