#!/usr/bin/env python3
"""The BEAM runtime's benchmarks (docs/PERFORMANCE.md, "The BEAM runtime"): msgbench.erl's ring
of processes (a recorded call and a message per hop), unrecorded, recorded by `devtrace run
--record` (every call and message: the flight recorder, the default, keeping the last 10 s in
an overwrite-oldest ring nobody reads until the VM ends; and `--record-seconds 0`, lossless,
read live by devtrace, a full ring making the process wait), each also with `--instrument`
(devtrace's probes compiled into msgbench from its debug info instead of trace flags), under
`dbg` with a tracer process (the same flags and pattern), under `eprof` (this module's functions) and
under `fprof` (every call, traced to a file: what a BEAM developer would use instead); under
`devtrace run --plan` with two plans `devtrace plan` makes from a recording of it
(`wait_done/1`: the starter's loop, one function called ≈ 200 times, no messages; `ring/0` to
depth 2: the ring, the processes it spawns (`node_loop/2`) and `hop/2`, 4 functions, ≈ 40,000
calls a run, no messages: the sends go to pids); and the NIF's ring write alone. Each
variant runs
ROUNDS times in a fresh VM, interleaved; medians are printed, with the VM's peak resident memory
(the median of its VmHWM at the end of each run).

    scripts/build-beam && cargo build --release -p devtrace-cli
    python3 bench/beam/bench.py [--devtrace target/release/devtrace] [--rounds 5] [--ring-rounds 200]

`--ring-rounds` sets how many times the token goes round (msgbench's MSGBENCH_ROUNDS): 2000
makes each run ten times longer, so a small overhead stands out of the VM's run-to-run spread.
`--only none,wait_done` runs only the variants whose names contain one of those words (with
more rounds, to measure a small difference: the unrecorded run is always kept).
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


def make_plans(devtrace: Path, data: Path, erl: list[str]) -> dict[str, str]:
    """Plans `devtrace plan` makes from a recording of msgbench (its source in this directory)."""
    subprocess.run(
        [str(devtrace), "--data", str(data), "run", "--quiet", "--record", "--record-seconds", "0", "--", *erl, "plain"],
        capture_output=True, text=True, check=True,
    )
    plans = {}
    for operation, name in [("msgbench:wait_done/1", "wait_done/1"), ("msgbench:ring/0", "ring/0, 4 functions")]:
        made = subprocess.run(
            [str(devtrace), "--data", str(data), "plan", operation, "--source", str(HERE), "--json"],
            capture_output=True, text=True, check=True,
        )
        plans[name] = json.loads(made.stdout)["id"]
    return plans


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devtrace", default=str(REPO / "target" / "release" / "devtrace"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ring-rounds", type=int, default=200)
    parser.add_argument("--only", default="", help="comma-separated words: run only the variants naming one")
    args = parser.parse_args()
    only = [w for w in args.only.split(",") if w]
    wanted = lambda name: name == "none" or not only or any(w in name for w in only)  # noqa: E731
    os.environ["MSGBENCH_ROUNDS"] = str(args.ring_rounds)
    devtrace = Path(args.devtrace)
    runtime = devtrace.parent.parent / "beam"
    with tempfile.TemporaryDirectory() as tmp:
        # With debug info, as Mix and rebar3 compile: `--instrument` recompiles from it.
        subprocess.run(["erlc", "+debug_info", "-o", tmp, str(HERE / "msgbench.erl")], check=True)
        erl = ["erl", "-noshell", "-pa", tmp, "-pa", str(runtime / "devtrace_beam" / "ebin"), "-run", "msgbench", "main"]
        data = Path(tmp) / "data"
        plans = make_plans(devtrace, data, erl)
        flight, lossless = "devtrace --record (flight, 10 s)", "devtrace --record --record-seconds 0 (lossless)"
        # Every call and message: no function is taken for hot (DEVTRACE_BEAM_HOT_CALLS=0), so
        # each of msgbench's calls is recorded; the last line is the default, where a function
        # one scheduler calls 10,000 times within 100 ms is no longer traced (docs/beam.md).
        every_call = {**os.environ, "DEVTRACE_BEAM_HOT_CALLS": "0"}
        recordings = [
            (flight, [], every_call),
            (lossless, ["--record-seconds", "0"], every_call),
            ("devtrace --record --instrument (flight, probes)", ["--instrument"], every_call),
            ("devtrace --record --instrument --record-seconds 0 (lossless, probes)", ["--instrument", "--record-seconds", "0"], every_call),
            ("devtrace --record (flight, 10 s, hot functions untraced: the default)", [], os.environ),
        ]
        times: dict[str, list[float]] = {
            "none": [], **{name: [] for name, _, _ in recordings},
            "dbg (tracer process)": [], "eprof": [], "fprof (tracing only)": [],
            **{f"devtrace --plan ({name})": [] for name in plans},
        }
        rss: dict[str, list[int]] = {name: [] for name in times}
        notes = []
        for _ in range(args.rounds):
            plain = last_json(subprocess.run(erl + ["plain"], capture_output=True, text=True, check=True).stdout)
            times["none"].append(plain["ms"])
            rss["none"].append(plain["max_rss_kib"])
            for name, mode, env in recordings:
                if not wanted(name):
                    continue
                recorded = subprocess.run(
                    [str(devtrace), "--data", str(data), "run", "--quiet", "--record", *mode, "--", *erl, "plain"],
                    capture_output=True, text=True, check=True, env=env,
                )
                result = last_json(recorded.stdout)
                times[name].append(result["ms"])
                rss[name].append(result["max_rss_kib"])
                notes.append(next(l for l in recorded.stderr.splitlines() if "BEAM VM" in l))
            for name, mode, env in [
                ("dbg (tracer process)", "dbg", os.environ),
                ("eprof", "eprof", os.environ),
                ("fprof (tracing only)", "fprof", {**os.environ, "TMPDIR": tmp}),
            ]:
                if wanted(name):
                    run = subprocess.run(erl + [mode], capture_output=True, text=True, check=True, env=env)
                    times[name].append(last_json(run.stdout)["ms"])
            for name, plan_id in plans.items():
                if not wanted(f"devtrace --plan ({name})"):
                    continue
                planned = subprocess.run(
                    [str(devtrace), "--data", str(data), "run", "--quiet", "--plan", plan_id, "--", *erl, "plain"],
                    capture_output=True, text=True, check=True,
                )
                times[f"devtrace --plan ({name})"].append(last_json(planned.stdout)["ms"])
        nif = last_json(subprocess.run(erl + ["nif"], capture_output=True, text=True, check=True).stdout)
    base = statistics.median(times["none"])
    hops = 100 * args.ring_rounds
    print(f"| variant | median ms (of {args.rounds}) | vs none | per hop over none | VM's max RSS |")
    print("|---|---|---|---|---|")
    for name, values in times.items():
        if not values:
            continue
        median = statistics.median(values)
        extra = (median - base) * 1e6 / hops
        peak = f"{statistics.median(rss[name]) / 1024:.0f} MiB" if rss.get(name) else ""
        print(f"| {name} | {median:.1f} | ×{median / base:.2f} | {extra:.0f} ns | {peak} |")
    print(f"\nring write from the NIF: {nif['ns_per_record']} ns a record (10 M records)")
    if notes:
        print("last recordings: " + "\n                 ".join(notes[-2:]))


if __name__ == "__main__":
    main()
