"""Setting up the OpenTelemetry SDK for devtrace, and the tracer every helper uses.

``configure()`` is one call: a ``TracerProvider`` whose resource comes from the standard
variables (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), a batch processor and an OTLP
exporter that reads ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``..._TRACES_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_PROTOCOL`` (defaulting to the local devtrace at 127.0.0.1:4318), and the
trace given by ``TRACEPARENT`` continued. Under ``devtrace run`` every one of those variables is
already set, so calling it (or not: the sitecustomize of ``--python-autotrace`` does) changes
nothing but where spans go by default.

When the application has installed its own ``TracerProvider``, ``configure()`` leaves it alone
and only continues ``TRACEPARENT``.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["configure", "tracer", "shutdown", "DEFAULT_ENDPOINT"]

#: Where spans go when no OTEL_EXPORTER_OTLP_*ENDPOINT variable says otherwise: a local
#: ``devtrace serve`` (or ``devtrace run``, which sets the variable anyway).
DEFAULT_ENDPOINT = "http://127.0.0.1:4318"
INSTRUMENTATION_NAME = "devtrace"

_lock = threading.Lock()
_configured = False
_provider = None
# The context TRACEPARENT names, for spans started where no span is current (other threads).
_root_context: Optional[otel_context.Context] = None


def _exporter(protocol: str, endpoint: Optional[str]):
    """The span exporter; ``endpoint`` is set only when no OTEL_* variable names one."""
    if protocol == "grpc":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
        except ImportError as error:
            raise RuntimeError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter: "
                "pip install opentelemetry-exporter-otlp-proto-grpc (or unset the variable to use "
                "OTLP/HTTP, which devtrace also answers)"
            ) from error
        return GrpcExporter(endpoint=endpoint) if endpoint else GrpcExporter()
    if protocol not in ("http/protobuf", ""):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported by devtrace.configure(); "
            "use http/protobuf (the default) or grpc"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if endpoint:
        return HttpExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    return HttpExporter()


def configure(
    service_name: Optional[str] = None,
    *,
    endpoint: Optional[str] = None,
    continue_traceparent: bool = True,
    llm_clients: bool = True,
) -> None:
    """Sets up tracing to devtrace; safe to call more than once (later calls do nothing).

    - ``service_name``: used when ``OTEL_SERVICE_NAME`` is not set (the variable wins, as the
      OpenTelemetry specification says).
    - ``endpoint``: the OTLP endpoint when no ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
      ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set; default ``http://127.0.0.1:4318``.
    - ``continue_traceparent``: make the trace named by ``TRACEPARENT`` (set by ``devtrace
      run``, CI systems, or a parent process) the parent of this process's spans.
    - ``llm_clients``: record calls of the ``openai`` and ``anthropic`` clients (patched when
      they are imported; never imported by devtrace itself).

    Spans are flushed at exit; call :func:`shutdown` to flush earlier. ``OTEL_SDK_DISABLED=true``
    leaves tracing off.
    """
    global _configured, _provider
    with _lock:
        if _configured:
            return
        _configured = True
        if continue_traceparent:
            _continue_traceparent()
        if llm_clients:
            from devtrace.llm import instrument_llm_clients

            instrument_llm_clients()

        existing = trace.get_tracer_provider()
        if not isinstance(existing, trace.ProxyTracerProvider):
            return  # the application configured OpenTelemetry itself: keep its choice

        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return  # the standard switch: no SDK, the API's no-op tracer stays
        chosen_endpoint = None
        if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
        ):
            chosen_endpoint = endpoint or DEFAULT_ENDPOINT
        attributes = {}
        if service_name and not os.environ.get("OTEL_SERVICE_NAME"):
            attributes[SERVICE_NAME] = service_name
        elif not os.environ.get("OTEL_SERVICE_NAME"):
            attributes[SERVICE_NAME] = _program_name()
        provider = TracerProvider(resource=Resource.create(attributes))
        protocol = os.environ.get(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
        ).strip()
        provider.add_span_processor(BatchSpanProcessor(_exporter(protocol, chosen_endpoint)))
        trace.set_tracer_provider(provider)
        _provider = provider
        atexit.register(shutdown)


def _program_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    name = os.path.basename(argv0)
    return name[:-3] if name.endswith(".py") else name


def _continue_traceparent() -> None:
    global _root_context
    traceparent = os.environ.get("TRACEPARENT", "").strip()
    if not traceparent:
        return
    carrier = {"traceparent": traceparent}
    if os.environ.get("TRACESTATE"):
        carrier["tracestate"] = os.environ["TRACESTATE"]
    extracted = TraceContextTextMapPropagator().extract(carrier)
    if not trace.get_current_span(extracted).get_span_context().is_valid:
        print(
            f"devtrace: ignoring TRACEPARENT={traceparent!r}: not a W3C traceparent "
            "(00-<32 hex trace id>-<16 hex span id>-<2 hex flags>)",
            file=sys.stderr,
        )
        return
    _root_context = extracted
    # The main thread's context: spans started anywhere below continue the trace.
    otel_context.attach(extracted)


def parent_context() -> Optional[otel_context.Context]:
    """The context to start a helper's span in: the current one when a span is current, else
    the one ``TRACEPARENT`` named (threads do not inherit the main thread's context)."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    return _root_context


def tracer() -> trace.Tracer:
    """The tracer the helpers use (instrumentation scope ``devtrace``)."""
    from devtrace import __version__

    return trace.get_tracer(INSTRUMENTATION_NAME, __version__)


def shutdown() -> None:
    """Flushes and stops the exporter set up by :func:`configure` (also run at exit)."""
    global _provider
    provider, _provider = _provider, None
    if provider is not None:
        provider.shutdown()


def _reset_for_tests() -> None:
    global _configured, _root_context, _provider
    _configured = False
    _root_context = None
    _provider = None
