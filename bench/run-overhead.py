#!/usr/bin/env python3
"""The time and CPU `devtrace run` adds to a command that emits nothing.

Paired runs: each round runs `true` and `devtrace --data D run --quiet -- true` back to back
(order alternating), so load changes hit both alike. Wall time by time.perf_counter(), CPU
(user + system of the process and everything it waited for) by
resource.getrusage(RUSAGE_CHILDREN) before and after each. Prints the median of the paired
differences. Targets: < 50 ms wall, < 15 ms CPU.

With --served, a `devtrace serve` runs on the same data directory first, so `run` sends to it
instead of starting receivers of its own.

Usage: bench/run-overhead.py [--devtrace PATH] [--runs N] [--cwd DIR] [--served] [--json]
  (default PATH target/release/devtrace; build it with cargo build --release -p devtrace-cli)
"""
import argparse, json, os, resource, statistics, subprocess, sys, tempfile, time

def measure(argv, cwd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall * 1000, cpu * 1000

def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser()
    p.add_argument("--devtrace", default=os.path.join(root, "target/release/devtrace"))
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--cwd", default=None, help="where the command runs (default: a temporary directory, not a git repository)")
    p.add_argument("--served", action="store_true", help="measure with a running devtrace serve on the data directory")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    a.devtrace = os.path.abspath(a.devtrace)
    if not os.access(a.devtrace, os.X_OK):
        sys.exit(f"run-overhead: {a.devtrace} not found; build it: cargo build --release -p devtrace-cli")
    if a.runs < 20:
        sys.exit("run-overhead: --runs must be at least 20")
    with tempfile.TemporaryDirectory(prefix="devtrace-overhead.") as work:
        cwd = a.cwd or work
        data = os.path.join(work, "data")
        server = start_serve(a.devtrace, data) if a.served else None
        try:
            walls, cpus = paired(a, cwd, data)
        finally:
            if server:
                server.terminate()
                server.wait(timeout=10)
    result = {
        "runs": a.runs,
        "served": a.served,
        "median_added_wall_ms": round(statistics.median(walls), 2),
        "median_added_cpu_ms": round(statistics.median(cpus), 2),
        "loadavg_1m": os.getloadavg()[0],
        "cwd_is_git": subprocess.run(["git", "-C", cwd, "rev-parse"], capture_output=True).returncode == 0,
    }
    if a.json:
        print(json.dumps(result))
    else:
        where = "with a running serve" if a.served else "receivers of its own"
        print(f"devtrace run --quiet -- true vs true ({where}), {a.runs} paired runs: median added "
              f"{result['median_added_wall_ms']} ms wall, {result['median_added_cpu_ms']} ms CPU "
              f"(load {result['loadavg_1m']:.2f}, cwd {'a git repository' if result['cwd_is_git'] else 'not a git repository'})")
    ok = result["median_added_wall_ms"] < 50 and result["median_added_cpu_ms"] < 15
    sys.exit(0 if ok else 1)

def start_serve(devtrace, data):
    """`devtrace serve` on free loopback ports over `data`, once its serve.json says it is up."""
    server = subprocess.Popen([devtrace, "serve", "--data", data, "--grpc-listen", "127.0.0.1:0",
                               "--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not os.path.exists(os.path.join(data, "serve.json")):
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            sys.exit("run-overhead: devtrace serve did not start")
        time.sleep(0.05)
    return server

def paired(a, cwd, data):
    """The paired differences (wall, CPU) over a.runs rounds after a.warmup."""
    base = ["true"]
    traced = [a.devtrace, "--data", data, "run", "--quiet", "--", "true"]
    for _ in range(a.warmup):
        measure(base, cwd); measure(traced, cwd)
    walls, cpus = [], []
    for i in range(a.runs):
        if i % 2:
            t = measure(traced, cwd); b = measure(base, cwd)
        else:
            b = measure(base, cwd); t = measure(traced, cwd)
        walls.append(t[0] - b[0]); cpus.append(t[1] - b[1])
    return walls, cpus

main()
