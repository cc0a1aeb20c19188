#!/usr/bin/env python3
"""Soak: `devtrace serve` under a steady offered load for a long time, sampling the server's
resident memory, open file descriptors and threads; RSS should stay flat and the descriptor
and thread counts should not grow.

Usage: bench/soak.py [--minutes 10] [--rate 100000] [--interval 5] [--json]
Needs release binaries (cargo build --release -p devtrace-cli -p devtrace-loadgen) in
$CARGO_TARGET_DIR/release (default target/release).
The load is devtrace-loadgen, open loop at --rate spans/s (the rated sustained ingest of
docs/PERFORMANCE.md is 100,000 spans/s) over gRPC and HTTP, 2 connections each. The verdict
compares the median of the last quarter of the samples with the median of the second quarter
(the first quarter is warm-up): RSS within 20 %, descriptors and threads within 10 of it.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import serve_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVTRACE = serve_process.DEVTRACE
LOADGEN = os.path.join(serve_process.TARGET, "release/devtrace-loadgen")


def sample(pid):
    rss = threads = None
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mib": rss, "fds": fds, "threads": threads}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=100_000)
    parser.add_argument("--interval", type=float, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for binary in (DEVTRACE, LOADGEN):
        if not os.access(binary, os.X_OK):
            sys.exit(f"soak: {binary} is missing; run: cargo build --release -p devtrace-cli -p devtrace-loadgen")

    data = tempfile.mkdtemp(prefix="devtrace-soak.")
    server, info = serve_process.start(data, who="soak")
    try:
        seconds = int(args.minutes * 60)
        load = subprocess.Popen(
            [LOADGEN, "--grpc", info["grpc"], "--http", info["http"], "--connections", "2",
             "--rate", str(args.rate), "--duration", str(seconds), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        samples = []
        start = time.monotonic()
        while load.poll() is None:
            if server.poll() is not None:
                sys.exit(f"soak: devtrace serve exited with {server.returncode}")
            point = sample(server.pid)
            point["t"] = round(time.monotonic() - start, 1)
            samples.append(point)
            if not args.json:
                print(f"{point['t']:7.1f}s  rss {point['rss_mib']:5d} MiB  fds {point['fds']:4d}  threads {point['threads']:3d}", flush=True)
            time.sleep(args.interval)
        report = json.loads(load.stdout.read() or "{}")
    finally:
        serve_process.stop(server)
        shutil.rmtree(data, ignore_errors=True)

    quarter = max(1, len(samples) // 4)
    early, late = samples[quarter:2 * quarter] or samples[:1], samples[-quarter:]
    med = lambda points, key: statistics.median(p[key] for p in points)
    verdict = {
        "rss_mib": [med(early, "rss_mib"), med(late, "rss_mib")],
        "fds": [med(early, "fds"), med(late, "fds")],
        "threads": [med(early, "threads"), med(late, "threads")],
    }
    flat = (verdict["rss_mib"][1] <= verdict["rss_mib"][0] * 1.2
            and verdict["fds"][1] <= verdict["fds"][0] + 10
            and verdict["threads"][1] <= verdict["threads"][0] + 10)
    result = {"minutes": args.minutes, "rate": args.rate, "load_average": os.getloadavg(),
              "samples": samples, "early_vs_late_median": verdict, "flat": flat,
              "loadgen": report}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"early vs late medians: {verdict}; peak RSS {max(p['rss_mib'] for p in samples)} MiB; "
              f"load average {os.getloadavg()[0]:.2f}; loadgen accepted {report.get('accepted_spans', '?')} spans")
        print("FLAT" if flat else "GROWING")
    sys.exit(0 if flat else 1)


if __name__ == "__main__":
    main()
