#!/usr/bin/env python3
"""Benchmark of `devtrace watch`: latency to the screen, CPU idle and under load, memory.

Starts `devtrace serve` on a fresh data directory and `devtrace watch` in a real terminal
(tmux, 200x60), then measures:

1. latency: a one-span trace is POSTed over OTLP/HTTP (JSON); from the moment the server
   acknowledges it (HTTP 200, which devtrace answers only once the span is committed) until
   `tmux capture-pane` shows its name. Polling capture-pane costs a few ms per look, so the
   figure is an upper bound.
2. idle CPU: watch's user+system time over --idle-seconds with nothing arriving.
3. CPU under load: the same while bench/loadgen offers --rate spans/s (open loop) to serve.
4. memory: watch's resident set every 10 s for --memory-minutes while loadgen offers
   --memory-rate spans/s and a Claude Code transcript grows under `import --follow`.

Needs release binaries (`cargo build --release -p devtrace-cli -p devtrace-loadgen`) and tmux.
Prints one line per figure and a JSON summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(["tmux", "-L", socket, *args], check=True, capture_output=True, text=True).stdout


def post_span(http: str, name: str) -> None:
    now = time.time_ns()
    body = {
        "resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "bench-watch"}}]},
            "scopeSpans": [{"scope": {"name": "bench"}, "spans": [{
                "traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": name, "kind": 2,
                "startTimeUnixNano": str(now - 1_000_000), "endTimeUnixNano": str(now),
            }]}],
        }]
    }
    request = urllib.request.Request(f"http://{http}/v1/traces", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200, response.status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=str(ROOT / "target/release/devtrace"))
    parser.add_argument("--loadgen", default=str(ROOT / "target/release/devtrace-loadgen"))
    parser.add_argument("--samples", type=int, default=30, help="latency samples")
    parser.add_argument("--idle-seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20_000, help="spans/s offered during the load phase")
    parser.add_argument("--load-seconds", type=float, default=30)
    parser.add_argument("--memory-minutes", type=float, default=10)
    parser.add_argument("--memory-rate", type=float, default=5_000)
    parser.add_argument("--phases", default="latency,idle,load,memory", help="which of latency, idle, memory to run (the load phase always runs)")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is missing (apt-get install tmux)", file=sys.stderr)
        return 2
    for binary in (args.bin, args.loadgen):
        if not os.access(binary, os.X_OK):
            print(f"{binary} is missing: cargo build --release -p devtrace-cli -p devtrace-loadgen", file=sys.stderr)
            return 2

    work = Path(tempfile.mkdtemp(prefix="devtrace-bench-watch-"))
    data = work / "data"
    socket = f"bench-watch-{os.getpid()}"
    serve = subprocess.Popen(
        [args.bin, "serve", "--data", str(data), "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--api-listen", "127.0.0.1:0", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=open(work / "serve.log", "w"))
    follow = None
    summary: dict = {}
    try:
        deadline = time.monotonic() + 30
        while not (data / "serve.json").exists():
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.05)
        time.sleep(0.2)
        addresses = json.loads((data / "serve.json").read_text())
        http, grpc, api = addresses["http"], addresses["grpc"], addresses["api"]
        env = " ".join(f"{k}={v}" for k, v in {"TERM": "xterm-256color"}.items())
        tmux(socket, "new-session", "-d", "-s", "w", "-x", "200", "-y", "60",
             f"env {env} {args.bin} --data {data} watch")
        pid = int(tmux(socket, "display-message", "-p", "-t", "w", "#{pane_pid}").strip())
        time.sleep(2)

        phases = set(args.phases.split(","))

        def stored_spans() -> int:
            return json.load(urllib.request.urlopen(f"http://{api}/api/v1/stats"))["spans"]

        def wait_for_load(before: int) -> None:
            # The load generator encodes its requests before it starts sending.
            deadline = time.monotonic() + 300
            while stored_spans() == before:
                assert time.monotonic() < deadline, "the load generator sent nothing within 300 s"
                time.sleep(0.2)
            time.sleep(1)

        # 1. Latency.
        latencies = []
        for i in range(args.samples if "latency" in phases else 0):
            name = f"bench-{i:03d}-{secrets.token_hex(3)}"
            post_span(http, name)
            acknowledged = time.monotonic()
            while name not in tmux(socket, "capture-pane", "-p", "-t", "w"):
                if time.monotonic() - acknowledged > 10:
                    raise SystemExit(f"{name} not on screen within 10 s")
                time.sleep(0.005)
            latencies.append((time.monotonic() - acknowledged) * 1000)
            time.sleep(0.3)
        latencies.sort()
        if latencies:
          summary["latency_ms"] = {
            "median": round(statistics.median(latencies), 1),
            "p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
            "max": round(latencies[-1], 1),
            "samples": len(latencies),
        }
          print(f"acknowledged span -> on screen: median {summary['latency_ms']['median']} ms, "
                f"p95 {summary['latency_ms']['p95']} ms, max {summary['latency_ms']['max']} ms "
                f"({len(latencies)} samples)")

        # 2. Idle.
        time.sleep(3)
        if "idle" not in phases:
            args.idle_seconds = 0.1
        c0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        idle = (cpu_seconds(pid) - c0) / (time.monotonic() - t0) * 100
        summary["idle_cpu_percent"] = round(idle, 2)
        print(f"idle: {idle:.2f} % of a core over {args.idle_seconds:.0f} s")

        # 3. Under load.
        report = work / "load.json"
        load = subprocess.Popen(
            [args.loadgen, "--http", http, "--rate", str(args.rate), "--duration", str(args.load_seconds),
             "--api", api, "--json-out", str(report)],
            stdout=subprocess.DEVNULL, stderr=open(work / "loadgen.log", "w"))
        wait_for_load(stored_spans())
        c0, s0, t0 = cpu_seconds(pid), cpu_seconds(serve.pid), time.monotonic()
        stored0 = stored_spans()
        time.sleep(max(1.0, args.load_seconds - 4))
        elapsed = time.monotonic() - t0
        watch_load = (cpu_seconds(pid) - c0) / elapsed * 100
        serve_load = (cpu_seconds(serve.pid) - s0) / elapsed * 100
        stored = stored_spans() - stored0
        load.wait(timeout=args.load_seconds + 120)
        summary["load"] = {
            "offered_spans_per_second": args.rate,
            "stored_spans_per_second": round(stored / elapsed),
            "watch_cpu_percent": round(watch_load, 2),
            "serve_cpu_percent": round(serve_load, 1),
        }
        print(f"under load: serve stored {stored / elapsed:,.0f} spans/s (offered {args.rate:,.0f}); "
              f"watch {watch_load:.2f} % of a core, serve {serve_load:.0f} %")

        # 4. Memory over time, with a transcript growing under import --follow.
        projects = work / "projects"
        projects.mkdir()
        transcript = projects / "bench.jsonl"
        transcript.write_text("")
        follow = subprocess.Popen([args.bin, "--data", str(data), "import", "claude-code", "--follow", str(projects)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = args.memory_minutes * 60 if "memory" in phases else 0
        load = subprocess.Popen(
            [args.loadgen, "--http", http, "--rate", str(args.memory_rate), "--duration", str(max(seconds, 1))],
            stdout=subprocess.DEVNULL, stderr=open(work / "loadgen-memory.log", "w"))
        if seconds:
            wait_for_load(stored_spans())
        samples = []
        session = secrets.token_hex(4)
        started = time.monotonic()
        line = 0
        while time.monotonic() - started < seconds:
            line += 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
            with transcript.open("a") as out:
                out.write(json.dumps({
                    "type": "user", "message": {"role": "user", "content": f"step {line}"},
                    "parentUuid": None, "isSidechain": False, "userType": "external", "cwd": "/bench",
                    "sessionId": f"bench-{session}", "version": "1.0.108", "uuid": f"u-{line}", "timestamp": stamp,
                }) + "\n")
            if line % 10 == 1:
                samples.append((round(time.monotonic() - started), round(rss_mib(pid), 1)))
            time.sleep(1)
        load.wait(timeout=120)
        rss = [s[1] for s in samples] or [rss_mib(pid)]
        summary["memory_mib"] = {"first": rss[0], "last": rss[-1], "min": min(rss), "max": max(rss),
                                 "minutes": args.memory_minutes, "rate": args.memory_rate, "samples": samples}
        print(f"memory over {args.memory_minutes:g} min at {args.memory_rate:,.0f} spans/s: RSS "
              f"{rss[0]} MiB first, {rss[-1]} MiB last, {min(rss)}–{max(rss)} MiB")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)
        if follow:
            follow.send_signal(signal.SIGTERM)
            follow.wait(timeout=10)
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
