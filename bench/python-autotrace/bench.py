"""Overhead of devtrace.autotrace at the default threshold, on an I/O-bound and on CPU-bound
workloads. Each measurement runs in a fresh interpreter; the workload's wall time is compared
with and without auto-tracing (the SDK and exporter are set up in both, so only auto-tracing
differs). Spans are exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (a running
`devtrace serve`).

    python bench/python-autotrace/bench.py [--repeat 7] [--backend setprofile|monitoring] [--only io]

Workloads (the package `benchapp`, written to a temporary directory):
- io: 100 requests, each: read a small JSON file, a 10 ms wait (an HTTP call or a database
  query), parse the JSON, 40 small helper calls (validation, formatting), write the result;
- cpu-calls: a recursive Fibonacci (every call is a tiny Python function in the package: the
  worst case, ≈ 1 M calls);
- cpu-library: JSON round trips and sorting (the time is in the standard library and C code,
  few calls in the package).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

APP = '''
import json, os, time

def validate(record):
    return bool(record.get("id")) and isinstance(record.get("tags"), list)

def label(record):
    return f"{record['id']}:{len(record['tags'])}"

def handle(path, out):
    with open(path) as f:
        raw = f.read()
    time.sleep(0.01)  # waiting on the network
    records = json.loads(raw)
    labels = [label(r) for r in records if validate(r)]
    with open(out, "w") as f:
        f.write("\\n".join(labels))
    return len(labels)

def serve(directory, requests):
    path = os.path.join(directory, "in.json")
    with open(path, "w") as f:
        json.dump([{"id": i + 1, "tags": ["a", "b"]} for i in range(20)], f)
    total = 0
    for i in range(requests):
        total += handle(path, os.path.join(directory, "out.txt"))
    return total

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def crunch(rounds):
    data = [{"id": i, "name": f"item-{i}", "score": (i * 7919) % 1000} for i in range(2000)]
    total = 0
    for _ in range(rounds):
        text = json.dumps(data)
        loaded = json.loads(text)
        total += sorted(loaded, key=lambda d: d["score"])[0]["score"]
    return total
'''

WORKLOADS = {
    "io": "benchapp.serve(directory, 100)",
    "cpu-calls": "benchapp.fib(27)",
    "cpu-library": "benchapp.crunch(40)",
}


def worker(workload: str, traced: bool, backend: str, directory: str) -> None:
    sys.path.insert(0, directory)
    import devtrace

    devtrace.configure(service_name="bench")
    import benchapp  # noqa: F401

    if traced:
        devtrace.autotrace("benchapp", backend=backend)
    started, cpu = time.perf_counter(), time.process_time()
    eval(WORKLOADS[workload], {"benchapp": benchapp, "directory": directory})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    devtrace.stop_autotrace()
    devtrace.shutdown()
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backend", default="monitoring" if hasattr(sys, "monitoring") else "setprofile")
    parser.add_argument("--only", choices=list(WORKLOADS), help="run one workload")
    parser.add_argument("--worker", nargs=3, metavar=("WORKLOAD", "TRACED", "DIR"))
    args = parser.parse_args()
    if args.worker:
        workload, traced, directory = args.worker
        worker(workload, traced == "1", args.backend, directory)
        return
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        sys.exit("set OTEL_EXPORTER_OTLP_ENDPOINT to a running devtrace serve (e.g. http://127.0.0.1:4318)")
    directory = tempfile.mkdtemp(prefix="devtrace-bench-")
    with open(os.path.join(directory, "benchapp.py"), "w") as f:
        f.write(textwrap.dedent(APP))
    print(f"python {sys.version.split()[0]}, backend {args.backend}, {args.repeat} runs each (median)")
    for workload in [args.only] if args.only else WORKLOADS:
        times = {False: [], True: []}
        cpu = {False: [], True: []}
        for _ in range(args.repeat):
            for traced in (False, True):  # interleaved, so drift hits both alike
                out = subprocess.run(
                    [sys.executable, __file__, "--backend", args.backend, "--worker", workload, "1" if traced else "0", directory],
                    capture_output=True, text=True, check=True,
                )
                result = json.loads(out.stdout.splitlines()[-1])
                times[traced].append(result["seconds"])
                cpu[traced].append(result["cpu_seconds"])
        base, traced = statistics.median(times[False]), statistics.median(times[True])
        base_cpu, traced_cpu = statistics.median(cpu[False]), statistics.median(cpu[True])
        print(
            f"{workload:12}  wall {base * 1000:8.1f} → {traced * 1000:8.1f} ms ({100 * (traced / base - 1):+7.1f} %)"
            f"   cpu {base_cpu * 1000:8.1f} → {traced_cpu * 1000:8.1f} ms"
        )


if __name__ == "__main__":
    main()
