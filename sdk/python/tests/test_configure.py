"""configure() in a fresh interpreter: the standard variables, TRACEPARENT, and an
application's own provider left alone (each case is its own process: a provider is set once)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

RECEIVED: list = []


class Collector(BaseHTTPRequestHandler):
    """A minimal OTLP/HTTP receiver: decodes what the real exporter sends."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        RECEIVED.append((self.path, request))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def collector():
    RECEIVED.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run(code: str, env: dict) -> subprocess.CompletedProcess:
    base = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_") and k not in ("TRACEPARENT", "TRACESTATE")}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out


def spans():
    found = []
    for path, request in RECEIVED:
        for rs in request.resource_spans:
            resource = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    found.append((path, resource, span))
    return found


def test_the_standard_variables_and_traceparent_are_honoured(collector):
    code = (
        "import threading, devtrace\n"
        "devtrace.configure(service_name='ignored-because-the-variable-wins')\n"
        "with devtrace.tracer().start_as_current_span('main-work'): pass\n"
        "def use():\n    with devtrace.Lock('x'): pass\nt = threading.Thread(target=use); t.start(); t.join()\n"
    )
    run(code, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector,
        "OTEL_SERVICE_NAME": "svc",
        "OTEL_RESOURCE_ATTRIBUTES": "devtrace.run.id=abc",
        "TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    })
    got = spans()
    assert sorted(s.name for _, _, s in got) == ["lock x", "main-work"]
    for path, resource, span in got:
        assert path == "/v1/traces"
        assert resource["service.name"] == "svc" and resource["devtrace.run.id"] == "abc"
        # Both continue the trace TRACEPARENT names, the thread's lock span too.
        assert span.trace_id.hex() == "0af7651916cd43dd8448eb211c80319c"
        assert span.parent_span_id.hex() == "b7ad6b7169203331"


def test_the_endpoint_argument_and_the_program_name(collector):
    run("import devtrace; devtrace.configure(endpoint=%r)\n"
        "with devtrace.tracer().start_as_current_span('s'): pass" % collector, {})
    ((path, resource, span),) = spans()
    assert resource["service.name"] == "-c"
    assert span.parent_span_id == b""


def test_an_applications_own_provider_is_kept_and_a_bad_traceparent_is_ignored():
    code = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "mine = TracerProvider(); trace.set_tracer_provider(mine)\n"
        "import devtrace; devtrace.configure(); devtrace.configure()\n"
        "print(trace.get_tracer_provider() is mine)\n"
    )
    out = run(code, {"TRACEPARENT": "garbage"})
    assert out.stdout == "True\n"
    assert out.stderr == (
        "devtrace: ignoring TRACEPARENT='garbage': not a W3C traceparent "
        "(00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)\n"
    )


def test_otel_sdk_disabled_leaves_tracing_off():
    out = run("import devtrace; from opentelemetry import trace; devtrace.configure();"
              "print(type(trace.get_tracer_provider()).__name__)", {"OTEL_SDK_DISABLED": "true"})
    assert out.stdout == "ProxyTracerProvider\n"
