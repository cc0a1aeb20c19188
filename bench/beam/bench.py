#!/usr/bin/env python3
"""The BEAM runtime's benchmarks (docs/PERFORMANCE.md, "The BEAM runtime"): msgbench.erl's ring
of processes (a recorded call and a message per hop), unrecorded, recorded by `devtrace run
--record` (every call and message, lossless, read live by devtrace), and under `dbg` with a
tracer process (the same flags and pattern), under `eprof` (this module's functions) and
under `fprof` (every call, traced to a file: what a BEAM developer would use instead); and the
NIF's ring write alone. Each variant runs
ROUNDS times in a fresh VM, interleaved; medians are printed.

    scripts/build-beam && cargo build --release -p devtrace-cli
    python3 bench/beam/bench.py [--devtrace target/release/devtrace] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def last_json(text: str) -> dict:
    return json.loads(next(l for l in reversed(text.splitlines()) if l.startswith("{")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devtrace", default=str(REPO / "target" / "release" / "devtrace"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    devtrace = Path(args.devtrace)
    runtime = devtrace.parent.parent / "beam"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["erlc", "-o", tmp, str(HERE / "msgbench.erl")], check=True)
        erl = ["erl", "-noshell", "-pa", tmp, "-pa", str(runtime / "devtrace_beam" / "ebin"), "-run", "msgbench", "main"]
        data = Path(tmp) / "data"
        times: dict[str, list[float]] = {
            "none": [], "devtrace --record": [], "dbg (tracer process)": [], "eprof": [], "fprof (tracing only)": []
        }
        notes = []
        for _ in range(args.rounds):
            times["none"].append(last_json(subprocess.run(erl + ["plain"], capture_output=True, text=True, check=True).stdout)["ms"])
            recorded = subprocess.run(
                [str(devtrace), "--data", str(data), "run", "--quiet", "--record", "--", *erl, "plain"],
                capture_output=True, text=True, check=True,
            )
            times["devtrace --record"].append(last_json(recorded.stdout)["ms"])
            notes.append(next(l for l in recorded.stderr.splitlines() if "BEAM VM" in l))
            times["dbg (tracer process)"].append(last_json(subprocess.run(erl + ["dbg"], capture_output=True, text=True, check=True).stdout)["ms"])
            times["eprof"].append(last_json(subprocess.run(erl + ["eprof"], capture_output=True, text=True, check=True).stdout)["ms"])
            fprof = subprocess.run(erl + ["fprof"], capture_output=True, text=True, check=True, env={**os.environ, "TMPDIR": tmp})
            times["fprof (tracing only)"].append(last_json(fprof.stdout)["ms"])
        nif = last_json(subprocess.run(erl + ["nif"], capture_output=True, text=True, check=True).stdout)
    base = statistics.median(times["none"])
    hops = 20000
    print(f"| variant | median ms (of {args.rounds}) | vs none | per hop over none |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        extra = (median - base) * 1e6 / hops
        print(f"| {name} | {median:.1f} | ×{median / base:.2f} | {extra:.0f} ns |")
    print(f"\nring write from the NIF: {nif['ns_per_record']} ns a record (10 M records)")
    print(f"last recording: {notes[-1]}")


if __name__ == "__main__":
    main()
