"""Scenario: a small shop of three real services talking HTTP, on real time.

Three HTTP servers (each its own OpenTelemetry TracerProvider and `service.name`), trace
context propagated in `traceparent` headers, OTLP/HTTP exporters with their default retries:

- `shop-frontend` serves `POST /checkout`: reserves the cart with `inventory` (a POST that
  returns a reservation id), fetches the price of three items from a pricing endpoint one after
  another (reads, each needing only the sku the request carries), then charges with `payments`
  (a POST sending the reservation id: it depends on the reservation).
- `inventory` serves `POST /reserve`: an `UPDATE stock` that waits for a row lock another
  transaction holds; the wait is recorded as events on the query span ("Waiting for lock behind
  1 transactions", "Acquired lock").
- `payments` serves `POST /charge`: six fraud checks through a worker pool of two.

Planted problems (measured while the requests ran, printed as the ground truth):
- sequential_work under `POST /checkout`: the three price reads; saving = median of sum − max.
- concurrency_limit under `POST /charge`: six checks, at most two at a time; saving = the
  phase minus the longest check.
- lock_contention on the stock update; time lost = the mean measured wait.
Built to be clean: reserve → charge (a value passed from one to the next, and both write).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind

from sim import emit_truth, median

PRICE_MS = (60, 45, 75)
CHECK_MS = (40, 55, 35, 50, 45, 60)
LOCK_HOLD_S = 0.15

providers: dict[str, TracerProvider] = {}
measured: dict[str, list[float]] = {"prices": [], "pool": [], "wait": []}
lock = threading.Lock()


def tracer(service: str):
    if service not in providers:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=10)))
        providers[service] = provider
    return providers[service].get_tracer("shop")


def call(service: str, method: str, url: str, body: dict | None = None) -> dict:
    """An HTTP call as a CLIENT span, with the trace context in its headers."""
    with tracer(service).start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": url},
    ) as span:
        headers = {"content-type": "application/json"}
        propagate.inject(headers)
        data = json.dumps(body or {}).encode() if method != "GET" else None
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            span.set_attribute("http.response.status_code", response.status)
            return json.loads(response.read() or b"{}")


class Service(BaseHTTPRequestHandler):
    service = ""
    routes: dict = {}

    def log_message(self, *_):
        pass

    def handle_route(self, method: str) -> None:
        path = self.path.split("?")[0]
        handler = self.routes.get((method, path))
        if handler is None:
            self.send_error(404)
            return
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        if "?" in self.path:
            from urllib.parse import parse_qsl

            body.update(parse_qsl(self.path.split("?", 1)[1]))
        carrier = {k.lower(): v for k, v in self.headers.items()}
        token = otel_context.attach(propagate.extract(carrier))
        try:
            with tracer(self.service).start_as_current_span(
                f"{method} {path}",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": path},
            ) as span:
                answer = handler(self, body)
                span.set_attribute("http.response.status_code", 200)
        finally:
            otel_context.detach(token)
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self.handle_route("GET")

    def do_POST(self):
        self.handle_route("POST")


def serve(name: str, routes: dict) -> ThreadingHTTPServer:
    handler = type(name, (Service,), {"service": name, "routes": routes})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}{path}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6)
    args = parser.parse_args()
    servers: dict[str, ThreadingHTTPServer] = {}

    def price(_, body):
        time.sleep(PRICE_MS[int(body.get("i", 0))] / 1000)
        return {"sku": body.get("sku"), "cents": 1999}

    def reserve(_, body):
        t = tracer("inventory")
        # Another transaction holds the row lock when the update arrives.
        holder_ready = threading.Event()

        def other_transaction():
            with lock:
                holder_ready.set()
                time.sleep(LOCK_HOLD_S)

        threading.Thread(target=other_transaction).start()
        holder_ready.wait()
        with t.start_as_current_span(
            "UPDATE stock",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2",
            },
        ) as span:
            begin = time.monotonic()
            span.add_event("Waiting for lock behind 1 transactions")
            with lock:
                span.add_event("Acquired lock")
                measured["wait"].append((time.monotonic() - begin) * 1e9)
                time.sleep(0.005)
        return {"reservation": f"rsv_{int(time.time() * 1000) % 1_000_000}"}

    def charge(_, body):
        t = tracer("payments")
        parent = otel_context.get_current()

        def check(i: int) -> None:
            token = otel_context.attach(parent)
            try:
                with t.start_as_current_span(
                    "POST",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "http.request.method": "POST",
                        "url.full": f"https://fraud.internal/v2/checks/{i}",
                        "server.address": "fraud.internal",
                    },
                ):
                    time.sleep(CHECK_MS[i] / 1000)
            finally:
                otel_context.detach(token)

        begin = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(check, range(len(CHECK_MS))))
        measured["pool"].append((time.monotonic() - begin) * 1e9 - max(CHECK_MS) * 1e6)
        return {"charged": body.get("reservation")}

    servers["inventory"] = serve("inventory", {("POST", "/reserve"): reserve})
    servers["payments"] = serve("payments", {("POST", "/charge"): charge})
    servers["pricing"] = serve("pricing", {("GET", "/price"): price})

    def checkout(_, body):
        reservation = call("shop-frontend", "POST", url(servers["inventory"], "/reserve"), body)
        durations = []
        for i, sku in enumerate(("sku-1001", "sku-1002", "sku-1003")):
            begin = time.monotonic()
            call_price(i, sku)
            durations.append((time.monotonic() - begin) * 1e9)
        measured["prices"].append(sum(durations) - max(durations))
        call(
            "shop-frontend",
            "POST",
            url(servers["payments"], "/charge"),
            {"reservation": reservation["reservation"]},
        )
        return {"ok": True}

    def call_price(i: int, sku: str) -> None:
        with tracer("shop-frontend").start_as_current_span(
            "GET",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET",
                "url.full": f"https://pricing.internal/v1/prices/{sku}",
                "server.address": "pricing.internal",
            },
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            request = urllib.request.Request(
                url(servers["pricing"], f"/price?i={i}&sku={sku}"), headers=headers
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()

    servers["frontend"] = serve("shop-frontend", {("POST", "/checkout"): checkout})
    for _ in range(args.requests):
        request = urllib.request.Request(
            url(servers["frontend"], "/checkout"),
            data=b"{}",
            headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    for server in servers.values():
        server.shutdown()
    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    emit_truth(
        {
            "traces": args.requests,
            "planted": [
                {
                    "kind": "sequential_work",
                    "operation": "POST /checkout",
                    "saving_nanos": median(measured["prices"]),
                    "group_size": 3,
                },
                {
                    "kind": "concurrency_limit",
                    "operation": "POST /charge",
                    "saving_nanos": median(measured["pool"]),
                },
                {
                    "kind": "lock_contention",
                    "operation": None,
                    "title_contains": "UPDATE stock",
                    "saving_nanos": sum(measured["wait"]) / len(measured["wait"]),
                },
            ],
            "clean": [{"kind": "repeated_calls", "operation": "POST /checkout"}],
            "services": ["shop-frontend", "inventory", "payments", "pricing"],
        }
    )


if __name__ == "__main__":
    main()
