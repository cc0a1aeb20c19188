"""What starting a child process costs under record_calls (docs/PERFORMANCE.md, "Child
processes"): the one `spawning_call()` each fork or spawn makes (drain the thread's ring, keep
its innermost recorded call as the child's parent), timed N times inside a recorded function,
next to one `subprocess.run(["/bin/true"])` without recording for scale.

With --flight, the same under the flight recorder: what its process start pays instead (the
innermost recorded call found on the stack, its function named from the names log, span ids
given to it by a record), the cache that gives a call starting several processes its first ids
cleared each time.

Usage: python process_start.py [--n 20000] [--flight] (in a venv with devtrace built natively).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time

APP = textwrap.dedent(
    """
    import time

    from devtrace import _native


    def spawning_calls(n):
        start = time.perf_counter_ns()
        for _ in range(n):
            _native.spawning_call()
        return (time.perf_counter_ns() - start) / n


    def flight_spawning_calls(flight, n):
        start = time.perf_counter_ns()
        for _ in range(n):
            flight._named.call = None
            flight._name_open_call()
        return (time.perf_counter_ns() - start) / n
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--flight", action="store_true", help="under the flight recorder")
    args = parser.parse_args()
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    import devtrace

    trace.set_tracer_provider(TracerProvider())
    start = time.perf_counter_ns()
    for _ in range(200):
        subprocess.run(["/bin/true"], check=True)
    popen_ns = (time.perf_counter_ns() - start) / 200
    with tempfile.TemporaryDirectory() as directory:
        os.makedirs(os.path.join(directory, "processbench"))
        with open(os.path.join(directory, "processbench", "__init__.py"), "w") as f:
            f.write(APP)
        sys.path.insert(0, directory)
        import processbench  # type: ignore[import-not-found]

        if args.flight:
            flight = devtrace.record(packages=["processbench"], signals=(), on_unhandled=False)
            per_call = processbench.flight_spawning_calls(flight, args.n)
        else:
            devtrace.record_calls("processbench", threshold_ms=0)
            per_call = processbench.spawning_calls(args.n)
        devtrace.stop_recording()
    what = "the flight recorder's spawning_call" if args.flight else "spawning_call"
    print(f"CPython {sys.version.split()[0]}: {what} {per_call / 1000:.2f} µs; subprocess.run(/bin/true) {popen_ns / 1000:.0f} µs")


if __name__ == "__main__":
    main()
