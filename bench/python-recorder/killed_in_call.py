"""Trials of a Python process SIGKILLed inside a call (docs/RELIABILITY.md, "Faults").

Each trial runs a `record_calls` program that makes 10, 1,000 or 20,000 short calls, then
enters `handle_request`, which sleeps; it is SIGKILLed a random 0.05–1.5 s later. Its ring
file must be kept (the call was read by the live reader and never delivered) and `devtrace
recover` must write `handle_request` open, lasting until about the kill (the recorder's last
heartbeat). Prints one JSON line: the trials, how many files were kept and recovered, how many
held the call open, and how far short of the time to the kill its duration fell.

    python killed_in_call.py --python .venv-native-3.12/bin/python \\
        --devtrace target/debug/devtrace --trials 30 --seed 61
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import tempfile
import time
from pathlib import Path

PROGRAM = """
import sys, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
import devtrace.recorder as recorder

def step(n):
    return n + 1

def handle_request(seconds):
    time.sleep(seconds)

trace.set_tracer_provider(TracerProvider())
recorder.record_calls("__main__", threshold_ms=0)
for n in range(int(sys.argv[1])):
    step(n)
print("in call", flush=True)
handle_request(60)
"""


def trial(python: str, devtrace: str, work: Path, steps: int, delay: float) -> dict:
    """One kill: whether its file was recovered, and the call as recovered."""
    proc = subprocess.Popen([python, "-c", PROGRAM, str(steps)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "in call\n"
    time.sleep(delay)
    proc.kill()
    proc.wait()
    ring = f"/dev/shm/devtrace-record-{proc.pid}.ring"
    data = work / f"data-{proc.pid}"
    out = subprocess.run([devtrace, "--data", str(data), "recover", ring], capture_output=True, text=True).stdout
    found = re.search(r"into trace ([0-9a-f]{32})", out)
    if not found:
        return {"recovered": False, "said": out.strip()}
    shown = subprocess.run([devtrace, "--data", str(data), "show", found.group(1), "--json"], capture_output=True, text=True)
    calls = [s for s in json.loads(shown.stdout)["spans"] if s["name"].endswith(".handle_request")]
    return {"recovered": True, "call": calls[0] if calls else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", required=True, help="a CPython 3.12+ with the devtrace package built")
    parser.add_argument("--devtrace", required=True, help="the devtrace binary")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--seed", type=int, default=61)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    recovered, open_calls, shortfalls = 0, 0, []
    with tempfile.TemporaryDirectory() as work:
        for _ in range(args.trials):
            delay = rng.uniform(0.05, 1.5)
            result = trial(args.python, args.devtrace, Path(work), rng.choice([10, 1000, 20000]), delay)
            recovered += result["recovered"]
            call = result.get("call")
            if call and call["attributes"].get("devtrace.recorder.open"):
                open_calls += 1
                shortfalls.append(delay * 1e3 - call["duration_ns"] / 1e6)
    shortfalls.sort()
    print(json.dumps({
        "seed": args.seed,
        "trials": args.trials,
        "kept_and_recovered": recovered,
        "call_open": open_calls,
        "shortfall_ms_median": round(shortfalls[len(shortfalls) // 2], 1) if shortfalls else None,
        "shortfall_ms_max": round(shortfalls[-1], 1) if shortfalls else None,
    }))


if __name__ == "__main__":
    main()
