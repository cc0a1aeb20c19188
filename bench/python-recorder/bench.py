"""The native recorder's overhead, against CPython's cProfile and VizTracer in the same run.

Each measurement is a fresh interpreter (this script re-run with --one), best of --repeat runs
of the workload inside it, wall time via perf_counter; the table prints medians over --rounds.
Workloads:

- fib: fib(27), ~630,000 Python calls (1.27 M call/return events), all in the recorded module.
  Variants: none; floor (an empty native callback on the same events: CPython's own dispatch
  cost); recorder (every call recorded, spans for calls ≥ 1 ms, the rest counted); flight (the
  flight recorder, 10 s, 64 MiB, with its automatic values); flight_plain (the same without
  them, auto_values=False); cProfile; VizTracer (C tracer, no output file written).
- planned: the same fib with a plan recording one unrelated function (code outside the plan).
- raises: 50,000 exceptions, each raised 4 calls deep and caught (5 frames), in code not
  recorded, with a plan recording one unrelated function: what the recorder adds to a raise
  where nothing is recorded (the exception events CPython cannot stop dispatching).
- io: 100 "requests", each a 10 ms sleep, a small file write and read and a JSON round trip,
  recorded whole (every function of the module).

Usage: python bench.py [--repeat 5] [--rounds 3] [--only fib] (in a venv with devtrace and viztracer).
Each ratio is the median over rounds of the variant against the none of the same round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS = {
    "fib": ["none", "floor", "recorder", "flight", "flight_plain", "cprofile", "viztracer"],
    "planned": ["none", "planned"],
    "raises": ["none", "planned"],
    "io": ["none", "recorder"],
}


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def unrelated():
    return 0


def deep(n):
    if n == 0:
        raise ValueError(n)
    return deep(n - 1)


def raises_work():
    for _ in range(50_000):
        try:
            deep(3)
        except ValueError:
            pass


def io_request(path, i):
    time.sleep(0.01)
    with open(path, "w") as f:
        json.dump({"i": i, "items": list(range(50))}, f)
    with open(path) as f:
        return json.load(f)["i"]


def io_work():
    path = os.path.join(tempfile.gettempdir(), f"bench-io-{os.getpid()}.json")
    for i in range(100):
        io_request(path, i)
    os.remove(path)


def setup(variant):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    import devtrace
    from devtrace import _native

    if variant == "floor":
        _native.bench_floor(True)
        return None
    if variant == "recorder":
        return devtrace.record_calls("__main__", "bench", threshold_ms=1)
    if variant == "flight":
        return devtrace.record(10, 64, signals=(), on_unhandled=False)
    if variant == "flight_plain":
        return devtrace.record(10, 64, signals=(), on_unhandled=False, auto_values=False)
    if variant == "planned":
        return devtrace.record_calls(plan=[("bench", "unrelated")], threshold_ms=1)
    if variant == "cprofile":
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
        return profile
    if variant == "viztracer":
        from viztracer import VizTracer

        tracer = VizTracer(tracer_entries=2_000_000, verbose=0)
        tracer.start()
        return tracer
    return None


def one(workload, variant, repeat):
    handle = setup(variant) if variant != "none" else None
    run = (lambda: fib(27)) if workload in ("fib", "planned") else raises_work if workload == "raises" else io_work
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    extra = {}
    if variant in ("recorder", "planned", "flight", "flight_plain") and handle is not None:
        import resource

        path = handle.path
        size = os.path.getsize(path) if os.path.exists(path) else 0
        stats = handle.stop()
        extra = {"ring_mib": size / 2**20, "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "events": stats.get("events", 0), "lost": stats.get("lost", 0)}
    elif variant == "viztracer":
        handle.stop()
    elif variant == "cprofile":
        handle.disable()
    print(json.dumps({"seconds": best, **extra}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=sorted(VARIANTS), action="append", help="run only these workloads")
    args = parser.parse_args()
    if args.one:
        one(args.one[0], args.one[1], args.repeat)
        return
    here = os.path.dirname(os.path.abspath(__file__))
    results = {}
    workloads = {w: v for w, v in VARIANTS.items() if not args.only or w in args.only}
    for _ in range(args.rounds):
        for workload, variants in workloads.items():
            for variant in variants:
                out = subprocess.run(
                    [sys.executable, "bench.py", "--one", workload, variant, "--repeat", str(args.repeat)],
                    cwd=here, capture_output=True, text=True, check=True,
                )
                results.setdefault((workload, variant), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    events = 2 * 635_621  # fib(27): 635,621 calls, a start and a return each
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds × best of {args.repeat}")
    # Ratios are taken within a round (every variant of a round runs within seconds of its
    # none), then the median over rounds: on a shared machine whose speed drifts, a ratio of
    # medians taken minutes apart mixes the drift into the ratio.
    for workload, variants in workloads.items():
        bases = [r["seconds"] for r in results[(workload, "none")]]
        for variant in variants:
            rs = results[(workload, variant)]
            s = statistics.median(r["seconds"] for r in rs)
            ratio = statistics.median(r["seconds"] / b for r, b in zip(rs, bases))
            line = f"{workload:8} {variant:10} {s * 1000:9.1f} ms  ×{ratio:5.2f}  {(ratio - 1) * 100:+6.1f} %"
            if workload == "fib" and variant != "none":
                over = statistics.median((r["seconds"] - b) / events * 1e9 for r, b in zip(rs, bases))
                line += f"  {over:6.1f} ns/event over none"
            if workload == "raises" and variant != "none":
                over = statistics.median((r["seconds"] - b) / 50_000 * 1e9 for r, b in zip(rs, bases))
                line += f"  {over:6.0f} ns/exception over none"
            if "ring_mib" in rs[0]:
                line += f"  ring {rs[0]['ring_mib']:.0f} MiB, max RSS {statistics.median(r['maxrss_mib'] for r in rs):.0f} MiB"
            print(line)


if __name__ == "__main__":
    main()
