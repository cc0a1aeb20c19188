"""Whether record_calls keeps every call when no core is free for its drainer.

Each run is a fresh interpreter (this script re-run with --one) recording fib(N) whole
(``record_calls("__main__", "loss")``, spans for calls ≥ 1 ms, the rest counted on their parent). It
prints the events the recorder read, the events it lost, the calls fib really made, the calls
the exported spans account for (kept spans plus the counts aggregated on them and on the
recorder's top level), and the wall time of fib against the same process's unrecorded run.

With ``--load N``, N processes spinning (``while True: pass``) run meanwhile, one per core
from the last core down when ``--pin`` is given (taskset), so the drainer competes with them.
``--drainer-core C`` pins the drainer thread to core C and fib's thread to the other cores: with
``--load 1 --pin`` on a 2-core machine the drainer shares its core with the spinner while fib
has a core of its own (the case where a drainer slower than the writer falls behind).

Usage: python loss.py [--n 30] [--runs 3] [--load 1] [--pin] [--drainer-core 1] [--lossy]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.setrecursionlimit(10_000)


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def calls_of_fib(n):
    # fib(n) makes 2·F(n+1) - 1 calls.
    a, b = 0, 1
    for _ in range(n + 1):
        a, b = b, a + b
    return 2 * a - 1


def drainer_tid():
    # The drainer names itself when it starts, which may be just after record_calls returns.
    deadline = time.monotonic() + 2
    while True:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() == "devtrace-draine":
                    return int(tid)
        if time.monotonic() > deadline:
            raise SystemExit("loss.py: no devtrace-drainer thread in this process")
        time.sleep(0.001)


def cpu_ns(tid):
    """The CPU time of thread ``tid`` so far (schedstat: nanoseconds on a CPU)."""
    with open(f"/proc/self/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def pin_drainer(core):
    """Pins the recorder's drainer thread to ``core`` and this thread to the others."""
    os.sched_setaffinity(drainer_tid(), {core})
    others = set(range(os.cpu_count() or 1)) - {core}
    if others:
        os.sched_setaffinity(0, others)


def one(n, lossy, drainer_core):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    import devtrace
    from devtrace import recorder

    me = threading.get_native_id()
    t, cpu = time.perf_counter(), cpu_ns(me)
    fib(n)
    bare, bare_cpu = time.perf_counter() - t, cpu_ns(me) - cpu
    kwargs = {"lossless": False} if lossy else {}
    handle = devtrace.record_calls("__main__", "loss", threshold_ms=1, **kwargs)
    if drainer_core is not None:
        pin_drainer(drainer_core)
    drainer = drainer_tid()
    drainer_before = cpu_ns(drainer)
    t, cpu = time.perf_counter(), cpu_ns(me)
    fib(n)
    recorded, recorded_cpu = time.perf_counter() - t, cpu_ns(me) - cpu
    time.sleep(0.2)  # the drainer catches up
    drainer_cpu = cpu_ns(drainer) - drainer_before
    stats = handle.stop()
    accounted = 0
    for span in exporter.get_finished_spans():
        attrs = span.attributes
        if attrs.get("code.function.name") == "fib":
            accounted += 1
        for name, count in zip(attrs.get(recorder.CALLS_FUNCTION, ()), attrs.get(recorder.CALLS_COUNT, ())):
            if name.endswith("fib"):
                accounted += count
    print(
        json.dumps(
            {
                "n": n,
                "calls": calls_of_fib(n),
                "accounted": accounted,
                "events": stats.get("events", 0),
                "lost": stats.get("lost", 0),
                "waits": stats.get("writer_waits", 0),
                "bare_s": bare,
                "recorded_s": recorded,
                "ratio": recorded / bare,
                # CPU nanoseconds an event: fib's thread over its unrecorded run (the writer),
                # and the drainer's thread during the run and the 0.2 s after it.
                "writer_ns": (recorded_cpu - bare_cpu) / max(stats.get("events", 1), 1),
                "drainer_ns": drainer_cpu / max(stats.get("events", 1), 1),
            }
        )
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", action="store_true")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="spinning processes meanwhile")
    parser.add_argument("--pin", action="store_true", help="pin the spinners to the last cores")
    parser.add_argument("--drainer-core", type=int, help="pin the drainer to this core, fib to the others")
    parser.add_argument("--lossy", action="store_true", help="record_calls(lossless=False)")
    args = parser.parse_args()
    if args.one:
        one(args.n, args.lossy, args.drainer_core)
        return
    spinners = []
    cores = os.cpu_count() or 1
    for i in range(args.load):
        command = [sys.executable, "-c", "while True: pass"]
        if args.pin:
            command = ["taskset", "-c", str(cores - 1 - i % cores)] + command
        spinners.append(subprocess.Popen(command))
    try:
        time.sleep(0.2 if spinners else 0)
        for _ in range(args.runs):
            command = [sys.executable, os.path.abspath(__file__), "--one", "--n", str(args.n)]
            if args.lossy:
                command.append("--lossy")
            if args.drainer_core is not None:
                command += ["--drainer-core", str(args.drainer_core)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(out.stderr)
            print(out.stdout.strip().splitlines()[-1], flush=True)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
