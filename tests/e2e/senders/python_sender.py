"""A real OpenTelemetry Python program, used by the end-to-end tests as a client.

Configured only through the standard environment variables:

- OTEL_EXPORTER_OTLP_ENDPOINT   e.g. http://127.0.0.1:4317 (grpc) or http://127.0.0.1:4318 (http)
- OTEL_EXPORTER_OTLP_PROTOCOL   grpc | http/protobuf   (default grpc, as in the specification)
- OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_COMPRESSION, ... (read by the SDK)

It sends one trace of a known shape plus two correlated log records, shuts the providers down
(flushing them), and prints the trace id (32 lower-case hex characters) as the only line on
stdout. It exits 1 if any export failed, so a test can tell "not received" from "not stored".

Shape (asserted by test_python_sdk.py):

    handle-request        SERVER    attributes of every type; event "request.received" (no attrs)
    ├── parse             INTERNAL  event "request.parsed" (attrs); status OK; log INFO
    ├── query             CLIENT    db.* attributes, db.response.returned_rows = 1
    ├── query             CLIENT    ... = 2
    ├── query             CLIENT    ... = 3
    └── render            INTERNAL  link to parse; exception event; status ERROR; log ERROR
        └── load-template INTERNAL
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

# Values asserted by the tests (kept here too so the script documents itself).
ROOT_ATTRIBUTES = {
    "http.request.method": "GET",
    "url.path": "/orders/42",
    "app.greeting": "héllo ✓",
    "app.empty": "",
    "app.cached": False,
    "app.retries": 2,
    "app.negative": -7,
    "app.big": 2**53 + 1,  # not representable as a double: must stay an exact int
    "app.ratio": 0.25,
    "app.whole": 3.0,  # a float with an integral value must stay a float
    "app.tags": ["x", "y", "z"],
    "app.flags": [True, False, True],
    "app.codes": [200, 404],
    "app.weights": [0.5, 1.5],
}
DB_QUERY = "SELECT * FROM orders WHERE id = $1"


class RecordingSpanExporter(SpanExporter):
    """Forwards to the real exporter and remembers whether every export succeeded."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.failures = 0

    def export(self, spans):
        result = self.inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class RecordingLogExporter(LogRecordExporter):
    def __init__(self, inner: LogRecordExporter) -> None:
        self.inner = inner
        self.failures = 0

    def export(self, batch):
        result = self.inner.export(batch)
        if result is not LogRecordExportResult.SUCCESS:
            self.failures += 1
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def make_exporters():
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        raise SystemExit(f"python_sender: unsupported OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}")
    # No arguments: endpoint, compression, headers and timeout come from the environment.
    return OTLPSpanExporter(), OTLPLogExporter()


class TemplateMissing(Exception):
    pass


def emit(tracer: trace.Tracer, log: logging.Logger) -> str:
    pause = lambda: time.sleep(0.002)  # noqa: E731 - distinct, ordered timestamps

    with tracer.start_as_current_span(
        "handle-request", kind=SpanKind.SERVER, attributes=ROOT_ATTRIBUTES
    ) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        root.add_event("request.received")
        pause()

        with tracer.start_as_current_span("parse", kind=SpanKind.INTERNAL) as parse:
            parse.add_event(
                "request.parsed",
                attributes={
                    "fields": 3,
                    "valid": True,
                    "format": "json",
                    "score": 0.75,
                    "keys": ["id", "qty", "sku"],
                },
            )
            log.info("parsed %d fields", 3, extra={"request.id": "r-1"})
            parse.set_status(Status(StatusCode.OK))
            parse_context = parse.get_span_context()
            pause()

        for rows in (1, 2, 3):
            with tracer.start_as_current_span(
                "query",
                kind=SpanKind.CLIENT,
                attributes={
                    "db.system.name": "postgresql",
                    "db.query.text": DB_QUERY,
                    "db.response.returned_rows": rows,
                },
            ):
                pause()

        with tracer.start_as_current_span(
            "render",
            kind=SpanKind.INTERNAL,
            links=[Link(parse_context, attributes={"link.reason": "uses-parsed-body", "link.n": 1})],
            record_exception=False,
            set_status_on_exception=False,
        ) as render:
            with tracer.start_as_current_span("load-template", kind=SpanKind.INTERNAL):
                pause()
            try:
                raise TemplateMissing("template 'order.html' not found")
            except TemplateMissing as exc:
                render.record_exception(exc)
                render.set_status(Status(StatusCode.ERROR, "template missing"))
                log.error("render failed: %s", "template missing")
            pause()
        pause()
    return trace_id


def main() -> int:
    span_exporter, log_exporter = make_exporters()
    span_exporter = RecordingSpanExporter(span_exporter)
    log_exporter = RecordingLogExporter(log_exporter)

    resource = Resource.create()  # service.name etc. from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))

    log = logging.getLogger("e2e.sender")
    log.setLevel(logging.INFO)
    log.propagate = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # LoggingHandler is deprecated
        log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))

    tracer = tracer_provider.get_tracer("e2e.sender", "1.2.3")
    trace_id = emit(tracer, log)

    tracer_provider.shutdown()
    logger_provider.shutdown()
    if span_exporter.failures or log_exporter.failures:
        print(
            f"python_sender: {span_exporter.failures} span export(s) and "
            f"{log_exporter.failures} log export(s) failed",
            file=sys.stderr,
        )
        return 1
    print(trace_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
