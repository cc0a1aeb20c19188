"""Sends agent-style usage metrics with the OpenTelemetry Python SDK's OTLP exporter.

Reads its endpoint and protocol from the standard OTEL_* variables; the aggregation
temporality comes from OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE (the SDK's own
setting: `cumulative` or `delta`). Counts `ROUNDS` rounds of tokens and cost for one session,
exporting after each, as Claude Code's metrics look (`claude_code.token.usage` with a `type`,
`claude_code.cost.usage`, each point carrying `session.id`). Prints nothing.
"""

from __future__ import annotations

import os
import sys

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def exporter():
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    return OTLPMetricExporter()


def main() -> None:
    session = sys.argv[1]
    rounds = int(sys.argv[2])
    reader = PeriodicExportingMetricReader(exporter(), export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "claude-code"}), metric_readers=[reader]
    )
    meter = provider.get_meter("com.anthropic.claude_code", "2.1.197")
    tokens = meter.create_counter("claude_code.token.usage", unit="tokens")
    cost = meter.create_counter("claude_code.cost.usage", unit="USD")
    for _ in range(rounds):
        for kind, amount in (("input", 1200), ("output", 40), ("cacheRead", 800), ("cacheCreation", 100)):
            tokens.add(amount, {"session.id": session, "type": kind})
        cost.add(0.25, {"session.id": session})
        if not provider.force_flush(timeout_millis=10_000):
            sys.exit("the metrics were not exported")
    provider.shutdown()


if __name__ == "__main__":
    main()
