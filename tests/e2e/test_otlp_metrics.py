"""OTLP metrics from the real OpenTelemetry Python SDK (senders/metrics_sender.py) into a
running `devtrace serve`: gRPC and HTTP, cumulative and delta temporality. Whatever the
temporality, three rounds of the same counts must add up to three times the counts, per
session (`devtrace sessions --daily`, the REST usage endpoint) and nothing twice."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from harness import SENDERS, Server, clean_env

VARIANTS = {
    "grpc-cumulative": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative"},
    "grpc-delta": {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"},
    "http-cumulative": {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "cumulative"},
    "http-delta-gzip": {
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
    },
}
ROUNDS = 3


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_sdk_metrics_add_up_whatever_the_transport_and_temporality(server: Server, variant: str):
    settings = VARIANTS[variant]
    endpoint = server.grpc_endpoint if settings["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc" else server.http_endpoint
    session = str(uuid.uuid4())
    proc = subprocess.run(
        [sys.executable, str(SENDERS / "metrics_sender.py"), session, str(ROUNDS)],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, **settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    days = server.json("sessions", "--daily", "--json")
    assert len(days) == 1, days
    usage = days[0]["usage"]
    assert days[0]["sessions"] == 1
    # Fresh input plus cache reads and writes, as the transcripts count it.
    assert usage["input_tokens"] == ROUNDS * (1200 + 800 + 100), usage
    assert usage["output_tokens"] == ROUNDS * 40
    assert usage["cache_read_tokens"] == ROUNDS * 800
    assert usage["cost_usd"] == pytest.approx(ROUNDS * 0.25)
    status, body = server.api_get("/api/v1/usage")
    assert status == 200
    assert body["days"][0]["usage"] == usage
    status, stats = server.api_get("/api/v1/stats")
    assert status == 200
    # Five series, a point each per export: one per round, and one more when the SDK exports
    # again at shutdown (a cumulative stream repeats its totals; they add nothing).
    assert 5 * ROUNDS <= stats["metric_points"] <= 5 * (ROUNDS + 1), stats
