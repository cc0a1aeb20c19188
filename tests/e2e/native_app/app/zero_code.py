"""python -m app.zero_code ENDING N, run as OpenTelemetry's zero-code instrumentation runs a
program: `opentelemetry-instrument python -m app.zero_code …`, the SDK set up by the
instrumentation's distro and configurator, the program using the API only (a tracer, a span).
Computes fib(N) in a span "compute"; ENDING `ok` returns, `exception` raises unhandled after
it. Prints how many fib calls it made: `calls N`.
"""

import sys

from opentelemetry import trace

from app.fibonacci import fib_calls

tracer = trace.get_tracer(__name__)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main():
    ending, n = sys.argv[1], int(sys.argv[2])
    print(f"calls {fib_calls(n)}", flush=True)
    with tracer.start_as_current_span("compute"):
        result = fib(n)
    if ending == "exception":
        raise ValueError(f"fib result {result} refused")


if __name__ == "__main__":
    main()
