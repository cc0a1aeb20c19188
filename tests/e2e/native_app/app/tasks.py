"""python -m app.tasks: two asyncio tasks interleaving on one thread, each working in a span of
its own; run under `devtrace run --python-autotrace app` (the native recorder).

Task a works 3 ms, awaits (task b runs: 3 ms, awaits), then works 12 ms; task b then works 2 ms.
Each busy() call must nest under its own task's span, whichever task ran before it."""

import asyncio
import time

import devtrace
from opentelemetry import trace


def busy(ms):
    time.sleep(ms / 1000)


async def pause():
    await asyncio.sleep(0.005)


async def worker(name, first_ms, then_ms):
    with trace.get_tracer("app.tasks").start_as_current_span(f"task.{name}"):
        busy(first_ms)
        await pause()
        busy(then_ms)


async def run_both():
    with trace.get_tracer("app.tasks").start_as_current_span("both"):
        await asyncio.gather(worker("a", 3, 12), worker("b", 3, 2))


def main():
    devtrace.configure(service_name="native-app")
    asyncio.run(run_both())


if __name__ == "__main__":
    main()
