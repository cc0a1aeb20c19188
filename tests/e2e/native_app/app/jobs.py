"""process_batch: an OpenTelemetry span whose time is all its own (no child spans) — a blind
spot — spent in three Python functions the trace cannot see until they are recorded."""

import os

from opentelemetry import trace

tracer = trace.get_tracer("native-app")


def parse(n):
    items = []
    for i in range(n):
        items.append((i * 7919) % 1000)
    return items


def crunch(items):
    total = 0
    for _ in range(3):
        for x in items:
            total += x * x % 7
    return total


def summarize(items):
    buckets = {}
    for x in items:
        buckets[x % 10] = buckets.get(x % 10, 0) + 1
    return sorted(buckets.items())


def process(n):
    with tracer.start_as_current_span(
        "process_batch",
        attributes={"code.function.name": "process", "code.file.path": os.path.abspath(__file__)},
    ):
        items = parse(n)
        total = crunch(items)
        summary = summarize(items)
        return total, summary
