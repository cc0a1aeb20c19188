#!/usr/bin/env python3
"""Agents' own telemetry at load: how fast an event becomes visible, and what rate holds.

Starts `devtrace serve` (target/release/devtrace, or $DEVTRACE_BIN) on a fresh data
directory and sends Claude Code events over OTLP/HTTP (protobuf, as `devtrace agent-setup
claude-code` configures it) the way its exporter does: batches of the records of each
session's recent tool calls (`tool_decision`, `tool_result`, `api_request`), one request per
session per batch interval. Meanwhile:

- a watcher reads each live session's overview (`GET /api/v1/sessions/{id}/overview`, which
  runs the six session detectors over the session) in a loop: the detectors keep running on
  the growing sessions for the whole run;
- a probe session gets one tool call at a time: the time from the export's reply to the call
  being in the session's overview is the latency a user sees (`session show`, the web UI).

Prints the sustained event rate (events acknowledged per second, throttled replies, the
writer queue), the probe latency (p50, p95, max), the detector pass time on the largest
session, and the server's CPU and RSS. Exit 0 when every event was acknowledged and the target
rate was held, 1 otherwise.

    bench/agent-events.py                        # 1,000 events/s for 30 s over 4 sessions
    bench/agent-events.py --rate 2000 --sessions 1 --duration 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402

COMMANDS = ["cargo test", "cargo build", "npm run build", "pytest -x", "make lint"]


def kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


class Session:
    """One Claude Code session's event stream: its calls, in order."""

    def __init__(self, prompt_id: str | None = None):
        self.id = str(uuid.uuid4())
        self.prompt = prompt_id or str(uuid.uuid4())
        self.sequence = 0
        self.calls = 0

    def record(self, name: str, attrs: dict, now_ns: int) -> LogRecord:
        base = {
            "session.id": self.id,
            "event.name": name,
            "event.timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ns / 1e9)) + "Z",
            "event.sequence": self.sequence,
            "prompt.id": self.prompt,
            "terminal.type": "bench",
        }
        self.sequence += 1
        base.update(attrs)
        return LogRecord(
            time_unix_nano=now_ns,
            observed_time_unix_nano=now_ns,
            body=AnyValue(string_value=f"claude_code.{name}"),
            attributes=[kv(k, v) for k, v in base.items()],
        )

    def tool_call(self, now_ns: int) -> list[LogRecord]:
        """The three events one tool call makes: its request, the decision, the result."""
        self.calls += 1
        call = f"toolu_{self.calls:06d}"
        command = COMMANDS[self.calls % len(COMMANDS)]
        params = json.dumps({"bash_command": command.split()[0], "full_command": command})
        failed = self.calls % 7 == 0
        return [
            self.record("api_request", {
                "model": "claude-opus-4-8", "input_tokens": 1200, "output_tokens": 40,
                "cache_read_tokens": 800, "cache_creation_tokens": 100, "cost_usd": 0.008,
                "duration_ms": 900, "request_id": f"req_{self.id[:8]}_{self.calls}",
            }, now_ns),
            self.record("tool_decision", {
                "decision": "accept", "source": "config", "tool_name": "Bash",
                "tool_use_id": call, "tool_parameters": params,
            }, now_ns),
            self.record("tool_result", {
                "tool_name": "Bash", "tool_use_id": call, "success": "false" if failed else "true",
                "duration_ms": "25", "tool_parameters": params,
                **({"error": "Shell command failed"} if failed else {}),
            }, now_ns),
        ]  # fmt: skip


def request(records: list[LogRecord]) -> bytes:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=[kv("service.name", "claude-code"), kv("service.version", "2.1.197")]),
                scope_logs=[ScopeLogs(scope=InstrumentationScope(name="com.anthropic.claude_code.events"), log_records=records)],
            )
        ]
    ).SerializeToString()


def post(url: str, body: bytes) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=60) as resp:
        return json.loads(resp.read())


def proc_stats(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MiB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return cpu, rss


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000, help="agent events per second (default 1000)")
    parser.add_argument("--sessions", type=int, default=4, help="concurrent sessions sharing the rate")
    parser.add_argument("--duration", type=float, default=30, help="seconds of load")
    parser.add_argument("--interval-ms", type=int, default=250, help="each session's export interval")
    parser.add_argument("--probes", type=int, default=40, help="latency probes during the load")
    args = parser.parse_args()

    binary = Path(os.environ.get("DEVTRACE_BIN", ROOT / "target" / "release" / "devtrace"))
    if not binary.exists():
        print(f"{binary} not found: cargo build --release -p devtrace-cli (or set DEVTRACE_BIN)", file=sys.stderr)
        return 2
    data = Path(tempfile.mkdtemp(prefix="devtrace-agent-bench-"))
    log = open(data / "serve.log", "w")
    serve = subprocess.Popen(
        [str(binary), "serve", "--data", str(data), "--grpc-listen", "127.0.0.1:0",
         "--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (data / "serve.json").exists():
            if time.monotonic() > deadline or serve.poll() is not None:
                print("devtrace serve did not start", file=sys.stderr)
                return 2
            time.sleep(0.05)
        info = json.loads((data / "serve.json").read_text())
        logs_url = f"http://{info['http']}/v1/logs"
        api = f"http://{info['api']}"

        sessions = [Session() for _ in range(args.sessions)]
        calls_per_batch = max(1, round(args.rate * args.interval_ms / 1000 / 3 / args.sessions))
        stop = threading.Event()
        lock = threading.Lock()
        totals = {"events": 0, "requests": 0, "throttled": 0, "failed": 0}
        behind = {"late_batches": 0}

        def sender(session: Session):
            next_at = time.monotonic()
            while not stop.is_set():
                now = time.time_ns()
                records = [r for _ in range(calls_per_batch) for r in session.tool_call(now)]
                status = post(logs_url, request(records))
                with lock:
                    totals["requests"] += 1
                    if status == 200:
                        totals["events"] += len(records)
                    elif status == 503:
                        totals["throttled"] += 1
                    else:
                        totals["failed"] += 1
                next_at += args.interval_ms / 1000
                pause = next_at - time.monotonic()
                if pause > 0:
                    stop.wait(pause)
                else:
                    behind["late_batches"] += 1

        detector_passes: list[float] = []

        def watcher():
            # Reads every live session's overview in turn: the detectors run over each.
            while not stop.is_set():
                for session in sessions:
                    started = time.monotonic()
                    try:
                        get_json(f"{api}/api/v1/sessions/{session.id}/overview")
                    except urllib.error.HTTPError:
                        continue
                    detector_passes.append(time.monotonic() - started)
                    if stop.is_set():
                        return

        probe = Session()
        latencies: list[float] = []

        def prober():
            gap = args.duration / (args.probes + 1)
            stop.wait(gap)
            while not stop.is_set() and len(latencies) < args.probes:
                records = probe.tool_call(time.time_ns())
                call = f"toolu_{probe.calls:06d}"
                status = post(logs_url, request(records))
                acknowledged = time.monotonic()
                if status != 200:
                    continue
                while True:
                    try:
                        overview = get_json(f"{api}/api/v1/sessions/{probe.id}/overview")
                    except urllib.error.HTTPError:
                        overview = None
                    tools = [e for e in (overview or {}).get("timeline", []) if e["kind"] == "tool"]
                    if len(tools) == probe.calls:
                        latencies.append(time.monotonic() - acknowledged)
                        break
                    if time.monotonic() - acknowledged > 10:
                        latencies.append(float("inf"))
                        break
                    time.sleep(0.002)
                stop.wait(gap)

        cpu0, _ = proc_stats(serve.pid)
        started = time.monotonic()
        threads = [threading.Thread(target=sender, args=(s,)) for s in sessions]
        threads += [threading.Thread(target=watcher), threading.Thread(target=prober)]
        for t in threads:
            t.start()
        max_rss = 0.0
        queue_max = 0
        while time.monotonic() - started < args.duration:
            time.sleep(1)
            _, rss = proc_stats(serve.pid)
            max_rss = max(max_rss, rss)
            queue_max = max(queue_max, get_json(f"{api}/api/v1/stats")["queued_items"])
        stop.set()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        cpu1, rss_end = proc_stats(serve.pid)
        stats = get_json(f"{api}/api/v1/stats")
        biggest = max(get_json(f"{api}/api/v1/sessions?limit=200")["sessions"], key=lambda s: s["tool_calls"])
        t0 = time.monotonic()
        overview = get_json(f"{api}/api/v1/sessions/{biggest['trace_id']}/overview")
        last_pass = time.monotonic() - t0

        rate = totals["events"] / elapsed
        print(f"devtrace agent events: {args.sessions} Claude Code sessions, {calls_per_batch * 3} events per export "
              f"every {args.interval_ms} ms each, {elapsed:.1f} s, server {binary}")
        print(f"  acknowledged      {totals['events']} events in {totals['requests']} requests: {rate:.0f} events/s "
              f"(target {args.rate}); {totals['throttled']} throttled, {totals['failed']} failed, "
              f"{behind['late_batches']} late batches; writer queue max {queue_max} items")
        print(f"  stored            {stats['spans']} spans, {stats['logs']} log records, "
              f"{stats['bytes_on_disk'] / 1e6:.1f} MB on disk")
        finite = [x for x in latencies if x != float("inf")]
        if finite:
            print(f"  ack → visible     {len(latencies)} probes: p50 {percentile(finite, 50) * 1000:.1f} ms, "
                  f"p95 {percentile(finite, 95) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
        if detector_passes:
            print(f"  detectors         {len(detector_passes)} overview reads during the load: p50 "
                  f"{statistics.median(detector_passes) * 1000:.1f} ms, max {max(detector_passes) * 1000:.1f} ms; "
                  f"largest session ({biggest['tool_calls']} tool calls, {len(overview['findings'])} findings) "
                  f"{last_pass * 1000:.1f} ms")
        print(f"  server            CPU {cpu1 - cpu0:.1f} s over {elapsed:.1f} s ({(cpu1 - cpu0) / elapsed * 100:.0f} % of a core), "
              f"RSS max {max_rss:.0f} MiB, end {rss_end:.0f} MiB")
        ok = (
            totals["failed"] == 0
            and totals["throttled"] == 0
            and rate >= 0.95 * args.rate
            and len(finite) == len(latencies)
        )
        return 0 if ok else 1
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=30)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()
        if os.environ.get("KEEP_DATA") != "1":
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
