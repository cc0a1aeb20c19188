"""A program run under `devtrace run` in the tests: the OpenTelemetry SDK configured only from
the environment (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES...).

FOLLOW_TRACEPARENT=1 continues the trace given by TRACEPARENT (as devtrace's helpers will);
otherwise the spans start their own trace. SLOW adds seconds to `step.compute`. EXIT_CODE sets
the exit code. It prints one line to stdout and one to stderr.
"""

import os
import sys
import time

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("run-child")

parent = None
if os.environ.get("FOLLOW_TRACEPARENT") == "1":
    parent = TraceContextTextMapPropagator().extract({"traceparent": os.environ["TRACEPARENT"]})

slow = float(os.environ.get("SLOW", "0"))
with tracer.start_as_current_span("work", context=parent):
    with tracer.start_as_current_span("step.load"):
        time.sleep(0.02)
    with tracer.start_as_current_span("step.compute"):
        time.sleep(0.02 + slow)

print("child says hello", flush=True)
print("child complains", file=sys.stderr, flush=True)
provider.shutdown()
sys.exit(int(os.environ.get("EXIT_CODE", "0")))
