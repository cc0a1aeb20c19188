"""python -m app.endings MODE ENDING N: fib(N) under OpenTelemetry set up as its documentation
does (TracerProvider + BatchSpanProcessor(OTLPSpanExporter()) + set_tracer_provider), ending as
ENDING says. MODE: `autotrace` or `record_calls` (the program starts the recorder itself), or
`none` (`devtrace run --plan`/`--record` records it).

ENDING:
- shutdown: `provider.shutdown()`, as every OpenTelemetry example ends;
- global_shutdown: `trace.get_tracer_provider().shutdown()` (under `devtrace run`, the global
  provider is devtrace's: the program's own was refused);
- flush: `provider.force_flush()`, then `os._exit(0)` (a serverless handler or a worker that is
  frozen or killed once it flushed);
- global_flush: `trace.get_tracer_provider().force_flush()`, then `os._exit(0)`;
- atexit: nothing; the SDK's own exit handler shuts the provider down;
- recording_first: as atexit, but the program starts devtrace before it sets up OpenTelemetry:
  the SDK's exit handler is registered after devtrace's, and runs first;
- sys_exit: `sys.exit(3)`;
- exception: the last call raises, unhandled (the provider is shut down in a `finally`);
- exception_global: the same, with `trace.get_tracer_provider().shutdown()` in the `finally`;
- sigterm: SIGTERM, default disposition;
- sigterm_handler: SIGTERM, handled by the program (shutdown, then `sys.exit(143)`);
- threads: a non-daemon thread still computing when the main thread ends, and a daemon thread
  still running (blocked) at exit; the SDK's exit handler shuts the provider down.

Prints how many fib calls it made: `calls N`.
"""

import os
import signal
import sys
import threading
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from app.fibonacci import fib_calls


def start_recording(mode):
    """The program starts the recorder itself (MODE `autotrace` or `record_calls`)."""
    if mode in ("autotrace", "record_calls"):
        import devtrace

        getattr(devtrace, mode)("app")


# ENDING recording_first: devtrace starts before OpenTelemetry is set up (so the SDK's exit
# handler, registered by TracerProvider(), comes after devtrace's and runs before it).
if sys.argv[2:3] == ["recording_first"]:
    start_recording(sys.argv[1])

provider = TracerProvider(resource=Resource.create({"service.name": "endings"}))
processor = BatchSpanProcessor(OTLPSpanExporter())
provider.add_span_processor(processor)
trace.set_tracer_provider(provider)
tracer = trace.get_tracer(__name__)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def check(value):
    raise ValueError(f"fib result {value} refused")


def daemon_work(n, done):
    fib(n)
    done.set()
    threading.Event().wait()  # still running at exit


def main():
    mode, ending, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if ending != "recording_first":
        start_recording(mode)
    if ending == "sigterm_handler":

        def on_sigterm(signum, frame):
            provider.shutdown()
            sys.exit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
    threads = 3 if ending == "threads" else 1
    print(f"calls {threads * fib_calls(n)}", flush=True)
    if ending == "threads":
        done = threading.Event()
        threading.Thread(target=daemon_work, args=(n, done), daemon=True).start()
        threading.Thread(target=fib, args=(n,)).start()
        with tracer.start_as_current_span("compute"):
            fib(n)
        done.wait()
        return  # the non-daemon thread may still be computing
    if ending == "exception":
        try:
            with tracer.start_as_current_span("compute"):
                check(fib(n))
        finally:
            provider.shutdown()
    if ending == "exception_global":
        try:
            with tracer.start_as_current_span("compute"):
                check(fib(n))
        finally:
            trace.get_tracer_provider().shutdown()
    with tracer.start_as_current_span("compute"):
        fib(n)
    if ending == "shutdown":
        provider.shutdown()
    elif ending == "global_shutdown":
        trace.get_tracer_provider().shutdown()
    elif ending == "flush":
        provider.force_flush()
        os._exit(0)
    elif ending == "global_flush":
        trace.get_tracer_provider().force_flush()
        os._exit(0)
    elif ending == "sys_exit":
        sys.exit(3)
    elif ending in ("sigterm", "sigterm_handler"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)


if __name__ == "__main__":
    main()
