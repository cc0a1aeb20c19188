"""A simulated clock for scenario services: spans with explicit start and end times, emitted
through the real OpenTelemetry SDK (TracerProvider, BatchSpanProcessor, the OTLP/HTTP
exporter configured from OTEL_EXPORTER_OTLP_ENDPOINT), so a run that would take seconds in
production takes milliseconds here and the ground truth is exact.

A scenario builds each run as a tree of `Step`s: `with run.span("name", ...) as s:` opens a
span at the clock's current time; `s.work(ms)` advances the clock; closing the block ends the
span at the current time. `run.at(t)` moves the clock (to start concurrent work)."""

from __future__ import annotations

import json
import random
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

MS = 1_000_000


class Services:
    """One TracerProvider per service (each its own `service.name`), all exporting OTLP/HTTP."""

    def __init__(self, *names: str) -> None:
        self.providers: dict[str, TracerProvider] = {}
        for name in names:
            provider = TracerProvider(resource=Resource.create({"service.name": name}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            self.providers[name] = provider

    def tracer(self, name: str):
        return self.providers[name].get_tracer("devtrace-scenario")

    def shutdown(self) -> None:
        for provider in self.providers.values():
            provider.force_flush()
            provider.shutdown()


@dataclass
class Run:
    """One run on a simulated clock, in nanoseconds since the epoch."""

    services: Services
    now: int
    stack: list = field(default_factory=list)

    def at(self, t: int) -> None:
        self.now = t

    def work(self, ms: float) -> None:
        self.now += int(ms * MS)

    @contextmanager
    def span(
        self,
        name: str,
        service: str,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: dict | None = None,
        start: int | None = None,
    ):
        parent = self.stack[-1] if self.stack else None
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.services.tracer(service).start_span(
            name,
            context=context,
            kind=kind,
            attributes=attributes or {},
            start_time=self.now if start is None else start,
        )
        self.stack.append(span)
        try:
            yield span
        finally:
            self.stack.pop()
            span.end(end_time=self.now)

    def call(self, name: str, service: str, ms: float, kind=SpanKind.CLIENT, **attributes) -> int:
        """A leaf call of `ms` milliseconds starting now; returns its end."""
        with self.span(name, service, kind=kind, attributes=attributes):
            self.work(ms)
        return self.now

    def call_at(self, start: int, name: str, service: str, ms: float, kind=SpanKind.CLIENT, **attributes) -> int:
        """A leaf call starting at `start` (for concurrent work); the clock is left alone."""
        saved = self.now
        self.now = start
        end = self.call(name, service, ms, kind=kind, **attributes)
        self.now = saved
        return end


def fail(span, exception_type: str, message: str, at: int, escaped: bool = True) -> None:
    """Records an exception event on `span` (and, when it escaped, the error status)."""
    span.add_event(
        "exception",
        {
            "exception.type": exception_type,
            "exception.message": message,
            "exception.escaped": escaped,
        },
        timestamp=at,
    )
    if escaped:
        span.set_status(Status(StatusCode.ERROR, message))


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def start_of_runs(runs: int, spacing_s: float = 20.0) -> int:
    """A start time for the first run so that the last one ends a few minutes ago."""
    return time.time_ns() - int((runs * spacing_s + 300) * 1e9)


def jitter(rng: random.Random, ms: float, spread: float = 0.08) -> float:
    return ms * (1 + rng.uniform(-spread, spread))


def emit_truth(truth: dict) -> None:
    """Prints the ground truth as the program's only stdout line."""
    sys.stdout.write(json.dumps(truth) + "\n")
    sys.stdout.flush()
