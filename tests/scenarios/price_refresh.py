"""Scenario: a price refresher with a thread pool of three, on real time.

`pricer` refreshes the prices of ten SKUs from a real local HTTP server (`prices`, a
ThreadingHTTPServer with a TracerProvider of its own, answering `GET /price/{sku}` after the
SKU's own pricing time). It does so the way the Python documentation writes a fan-out: a
`concurrent.futures.ThreadPoolExecutor(max_workers=3)`, one task per SKU, each task a span of
its own (`price.fetch`, the trace context handed to the worker thread with
`opentelemetry.context.attach`) around its HTTP call (a CLIENT span, `traceparent` injected).
Before that it asks the stock of five SKUs (`stock.check`) through a pool of five: all of them
at once, all there is.

Planted problem, measured while the request ran (one run, one trace):
- concurrency_limit under `prices.refresh`: ten calls to one endpoint, never more than three
  at a time while the others wait in the pool's queue; what raising the limit could save is
  the phase (first call's start to last call's end) minus the longest call.
Built to be clean: `stock.check`'s five lookups (all at once: no limit paces them).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from sim import emit_truth

PRICE_MS = (52, 61, 47, 58, 66, 50, 55, 63, 49, 57)
STOCK_MS = 30
POOL = 3


def provider(service: str) -> TracerProvider:
    p = TracerProvider(resource=Resource.create({"service.name": service}))
    p.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=10)))
    return p


class Prices(BaseHTTPRequestHandler):
    tracer = None

    def log_message(self, *_):
        pass

    def do_GET(self):
        kind, sku = self.path.strip("/").split("/")
        carrier = {k.lower(): v for k, v in self.headers.items()}
        token = otel_context.attach(propagate.extract(carrier))
        try:
            route = f"/{kind}/{{sku}}"
            with self.tracer.start_as_current_span(
                f"GET {route}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": "GET", "http.route": route, "url.path": self.path},
            ) as span:
                time.sleep((PRICE_MS[int(sku) % len(PRICE_MS)] if kind == "price" else STOCK_MS) / 1000)
                span.set_attribute("http.response.status_code", 200)
        finally:
            otel_context.detach(token)
        body = json.dumps({"sku": sku, "cents": 1999}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    server_provider, client_provider = provider("prices"), provider("pricer")
    Prices.tracer = server_provider.get_tracer("prices")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Prices)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tracer = client_provider.get_tracer("pricer")
    calls: list[tuple[int, int]] = []

    def get(path: str) -> dict:
        url = base + path
        with tracer.start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "GET", "url.full": url, "server.address": "127.0.0.1"},
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            began = time.time_ns()
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
                answer = json.loads(r.read())
            span.set_attribute("http.response.status_code", r.status)
        if path.startswith("/price/"):
            calls.append((began, time.time_ns()))
        return answer

    def in_context(parent, work, *args):
        """Runs `work` in a worker thread as part of the request (the context handed over)."""
        token = otel_context.attach(parent)
        try:
            return work(*args)
        finally:
            otel_context.detach(token)

    def fetch(sku: int) -> dict:
        with tracer.start_as_current_span("price.fetch", attributes={"app.sku": sku}):
            return get(f"/price/{sku}")

    with tracer.start_as_current_span("prices.refresh"):
        with tracer.start_as_current_span("stock.check"):
            here = otel_context.get_current()
            with ThreadPoolExecutor(max_workers=5) as stock_pool:
                list(stock_pool.map(lambda sku: in_context(here, get, f"/stock/{sku}"), range(5)))
        here = otel_context.get_current()
        with ThreadPoolExecutor(max_workers=POOL) as pool:
            prices = list(pool.map(lambda sku: in_context(here, fetch, sku), range(len(PRICE_MS))))
    assert len(prices) == len(PRICE_MS)
    server.shutdown()
    client_provider.shutdown()
    server_provider.shutdown()
    phase = max(end for _, end in calls) - min(start for start, _ in calls)
    longest = max(end - start for start, end in calls)
    emit_truth(
        {
            "traces": 1,
            "planted": [
                {
                    "kind": "concurrency_limit",
                    "operation": "prices.refresh",
                    "saving_nanos": phase - longest,
                    "phase_nanos": phase,
                    "numbers": {"limit": POOL, "calls": len(PRICE_MS)},
                }
            ],
            "clean": [{"kind": "concurrency_limit", "operation": "stock.check"}],
        }
    )


if __name__ == "__main__":
    main()
