"""A real exporter re-sends a batch whose answer it never got; devtrace stores each span once.

Between the Python OpenTelemetry SDK's OTLP exporter and `devtrace serve` sits a TCP proxy.
On the first connection it passes the request on, waits until devtrace has stored the spans
(its `/api/v1/stats` says so), holds devtrace's answer and then drops the connection, as a
load balancer that timed out on the upstream would. The exporter sees a failed attempt (a
connection error over HTTP, `UNAVAILABLE` over gRPC), retries on a new connection that the
proxy passes through, and gets its success. (The Python SDK's own timeout bounds all
attempts together, so a first attempt that runs into it is never retried; a lost answer is
what makes this SDK send a batch twice.)

The trace must then hold each span once, with exact counts, and the store must say how many
spans came again.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

import signal
from pathlib import Path

from harness import Server, check_show, start_server, stop_server

SPANS = 6


class LosingProxy:
    """Forwards TCP connections to `upstream`; the first one's answer is never delivered."""

    def __init__(self, upstream: str, stored) -> None:
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.stored = stored  # () -> bool: has devtrace stored the first attempt?
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.connections = 0
        self.dropped = threading.Event()
        self.errors: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            first = self.connections == 1
            threading.Thread(target=self._serve, args=(client, first), daemon=True).start()

    def _serve(self, client: socket.socket, lose_answer: bool) -> None:
        upstream = socket.create_connection(self.upstream)
        if not lose_answer:
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            self._pipe(upstream, client)
            return
        sent = threading.Event()
        threading.Thread(target=self._pipe_request, args=(client, upstream, sent), daemon=True).start()
        # Pass on what devtrace says before the request is complete (HTTP/2 settings: a gRPC
        # client waits for them); from then on read its answer but keep it, and once the
        # spans are stored, cut both sides.
        upstream.settimeout(0.05)
        while not sent.is_set():
            try:
                data = upstream.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data or sent.is_set():
                break  # what came after the request may be the answer: it is kept back
            client.sendall(data)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not self.stored():
            try:
                if not upstream.recv(65536):
                    break
            except TimeoutError:
                pass
            except OSError:
                break
        if not self.stored():
            self.errors.append("devtrace never stored the first attempt")
        # shutdown() (not only close()) wakes the thread blocked reading the client.
        for sock in (client, upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            except OSError:
                pass
        self.dropped.set()

    @staticmethod
    def _pipe_request(client: socket.socket, upstream: socket.socket, sent: threading.Event) -> None:
        """Forwards the client's bytes, setting `sent` before passing on the end of a request:
        any HTTP/1.1 bytes, or an HTTP/2 DATA frame with END_STREAM (a whole gRPC call)."""
        preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        buffered = b""
        try:
            while data := client.recv(65536):
                buffered += data
                if not buffered.startswith(preface[: len(buffered)]):
                    sent.set()  # not HTTP/2: the answer comes after the request anyway
                elif len(buffered) > len(preface):
                    frames = buffered[len(preface) :]
                    while len(frames) >= 9:
                        length = int.from_bytes(frames[:3], "big")
                        kind, flags = frames[3], frames[4]
                        if kind == 0 and flags & 1 and len(frames) >= 9 + length:
                            sent.set()
                        frames = frames[9 + length :]
                upstream.sendall(data)
        except OSError:
            pass

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()


def exporter(protocol: str, endpoint: str):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=20)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=f"http://{endpoint}/v1/traces", timeout=20)


@pytest.fixture
def server(devtrace_bin: Path, tmp_path: Path):
    """`devtrace serve` behind this file's proxy: the proxy passes the exporter's Host (its own
    port) through, as a local reverse proxy does, so serve is told to answer to 127.0.0.1 on any
    port (the guard against DNS rebinding refuses it otherwise)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_server(devtrace_bin, data_dir, tmp_path / "serve.log", ("--allow-host", "127.0.0.1"))
    yield srv
    stop_server(srv, signal.SIGTERM)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_batch_sent_again_after_a_lost_answer_is_stored_once(server: Server, protocol: str):
    def stored_spans() -> int:
        status, stats = server.api_get("/api/v1/stats")
        assert status == 200, stats
        return stats["spans"]

    upstream = server.http if protocol == "http" else server.grpc
    proxy = LosingProxy(upstream, lambda: stored_spans() >= SPANS)
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": f"resend-{protocol}"}))
        provider.add_span_processor(BatchSpanProcessor(exporter(protocol, proxy.address)))
        tracer = provider.get_tracer("e2e.resend")
        with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
            trace_id = format(root.get_span_context().trace_id, "032x")
            for n in range(SPANS - 2):
                with tracer.start_as_current_span(f"SELECT items {n}", kind=SpanKind.CLIENT):
                    pass
            with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as charge:
                charge.set_status(Status(StatusCode.ERROR, "card declined"))
        assert provider.force_flush(30_000), "the exporter gave up"
        provider.shutdown()
    finally:
        proxy.close()

    assert not proxy.errors, proxy.errors
    assert proxy.dropped.is_set(), "the first answer was never lost"
    assert proxy.connections >= 2, f"the exporter did not retry ({proxy.connections} connection)"

    doc = check_show(server.show(trace_id))
    ids = [s["span_id"] for s in doc["spans"]]
    assert len(ids) == SPANS and len(set(ids)) == SPANS, f"spans {sorted(ids)}"
    assert (doc["span_count"], doc["error_count"]) == (SPANS, 1)
    [entry] = server.ls()
    assert (entry["trace_id"], entry["span_count"], entry["error_count"]) == (trace_id, SPANS, 1)
    status, stats = server.api_get("/api/v1/stats")
    assert (stats["spans"], stats["traces"], stats["resent_spans"]) == (SPANS, 1, SPANS), stats
