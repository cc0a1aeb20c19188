"""What capturing values costs a call: the same function called N times under record_calls,
with its values captured (``values=``) and without, each in a fresh interpreter, best of
--repeat; the difference over N is the cost a call of the capture (arguments at the start,
the return value at the end: two summaries, plus the records naming them). The per-second
budget is lifted for the measurement (with it, most of these calls would not be captured).

Usage: python values.py [--calls 200000] [--repeat 5] [--rounds 3] [--flight]

With --flight the same under the flight recorder (``devtrace.record(packages=["values"],
values=...)``): the captures go into the thread's value slots in the ring file instead of the
live recorder's store.

In instructions (load-independent), each variant alone under callgrind, with a threshold no
call reaches under valgrind (which runs the program ~50x slower and switches threads rarely, so
a call it pauses would otherwise become a span made and redacted in Python):

    valgrind --tool=callgrind python values.py --one with --calls N --repeat 1 --threshold-ms 1000

for N = 10,000 and 30,000, with and without: ((with(30k) - with(10k)) - (without(30k) -
without(10k))) / 20,000 is the instructions a call of the capture.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


class Order:
    def __init__(self, ident, lines):
        self.ident = ident
        self.lines = lines


def charge(order, amount, currency, options):
    return {"charged": amount, "order": order.ident}


def one(calls, values, repeat, threshold_ms, flight=False):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    import functools

    import devtrace
    from devtrace import recorder

    # No per-second budget: every call's values are captured (what is measured).
    recorder._native.start = functools.partial(recorder._native.start, value_bytes_per_second=1 << 62)
    wanted = ["values:charge"] if values else []
    if flight:
        handle = devtrace.record(10, 64, packages=["values"], signals=(), on_unhandled=False, values=wanted)
    else:
        handle = devtrace.record_calls("values", threshold_ms=threshold_ms, values=wanted)
    order = Order(7, ["ab", "cd", "ef"])
    options = {"retry": True, "note": "first"}
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(calls):
            charge(order, 12, "EUR", options)
        best = min(best, time.perf_counter() - t)
    stats = handle.stop()
    print(json.dumps({"seconds": best, **{k: stats.get(k, 0) for k in ("values_skipped", "lost", "writer_waits", "writer_waited_ns")}}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", choices=["with", "without"])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threshold-ms", type=float, default=1.0)
    parser.add_argument("--flight", action="store_true", help="under the flight recorder, not record_calls")
    args = parser.parse_args()
    if args.one:
        one(args.calls, args.one == "with", args.repeat, args.threshold_ms, args.flight)
        return
    per_call = []
    skipped = 0
    for _ in range(args.rounds):
        got = {}
        for variant in ("without", "with"):
            out = subprocess.run(
                [sys.executable, __file__, "--one", variant, "--calls", str(args.calls), "--repeat", str(args.repeat)] + (["--flight"] if args.flight else []),
                capture_output=True, text=True, check=True,
            )
            got[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        skipped += got["with"]["values_skipped"]
        per_call.append((got["with"]["seconds"] - got["without"]["seconds"]) / args.calls * 1e9)
        print(f"without {got['without']['seconds'] * 1e3:.1f} ms, with {got['with']['seconds'] * 1e3:.1f} ms: {per_call[-1]:.0f} ns a call")
    mode = "the flight recorder" if args.flight else "record_calls"
    print(f"median {statistics.median(per_call):.0f} ns a call with values under {mode} ({args.calls:,} calls, best of {args.repeat}; {skipped:,} captures skipped by the budget)")


if __name__ == "__main__":
    main()
