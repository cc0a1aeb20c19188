#!/usr/bin/env python3
"""Latency of `devtrace hook claude-code`, the command Claude Code runs on every tool call.

Feeds a fresh store alternating PreToolUse / PostToolUse events of one growing session (a
Bash call with 150 bytes of output each), one process per event as the agent runs it, and
prints the whole-process time per event by how large the session already is.

Usage: bench/hook-latency.py [EVENTS] [--bin target/release/devtrace]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time

SESSION = "11111111-2222-4333-8444-555555555555"


def event(i: int) -> dict:
    call = i // 2
    e = {
        "session_id": SESSION, "transcript_path": "/nonexistent.jsonl", "cwd": "/w/app",
        "hook_event_name": "PreToolUse" if i % 2 == 0 else "PostToolUse",
        "tool_name": "Bash", "tool_use_id": f"toolu_{call:06d}",
        "tool_input": {"command": f"npm test -- --grep case{call}"},
    }  # fmt: skip
    if i % 2:
        e["tool_response"] = {"stdout": "ok\n" * 50, "stderr": "", "interrupted": False}
    return e


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("events", nargs="?", type=int, default=2000)
    parser.add_argument("--bin", default="target/release/devtrace")
    parser.add_argument("--bucket", type=int, default=500, help="events per reported row")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        rows: dict[int, list[float]] = {}
        for i in range(args.events):
            started = time.perf_counter()
            done = subprocess.run(
                [args.bin, "--data", data, "hook", "claude-code"],
                input=json.dumps(event(i)).encode(), capture_output=True,
            )  # fmt: skip
            elapsed_ms = (time.perf_counter() - started) * 1000
            if done.returncode != 0:
                raise SystemExit(f"event {i}: {done.stderr.decode()}")
            rows.setdefault(i // args.bucket, []).append(elapsed_ms)
        print("events            tool calls before  median ms  p95 ms  max ms")
        for k, times in sorted(rows.items()):
            times.sort()
            first = k * args.bucket
            print(
                f"{first:>5}–{first + len(times) - 1:<5}  {first // 2:>17}  {statistics.median(times):>9.1f}"
                f"  {times[int(len(times) * 0.95)]:>6.1f}  {times[-1]:>6.1f}"
            )


if __name__ == "__main__":
    main()
