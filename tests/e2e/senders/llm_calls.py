"""A program run under `devtrace run` in the tests: two LLM calls recorded with the
OpenTelemetry SDK (configured only from the environment), continuing TRACEPARENT.

`summarise` asks gpt-4o and `classify` asks gpt-4o-mini, each with 50,000 input tokens for 100
output tokens: both are token-waste findings, whose cost, and so their rank, depends on the
price table (built in: gpt-4o costs more; a configuration can say otherwise).
"""

import os

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("llm-calls")
parent = TraceContextTextMapPropagator().extract({"traceparent": os.environ["TRACEPARENT"]})

for name, model in [("summarise", "gpt-4o"), ("classify", "gpt-4o-mini")]:
    with tracer.start_as_current_span(name, context=parent) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.system", "openai")
        span.set_attribute("gen_ai.request.model", model)
        span.set_attribute("gen_ai.usage.input_tokens", 50_000)
        span.set_attribute("gen_ai.usage.output_tokens", 100)

provider.shutdown()
