#!/usr/bin/env python3
"""Whole-process latency of devtrace commands on a data directory, for machines without hyperfine.

    bench/cli-latency.py DATA_DIR [--bin target/release/devtrace] [--runs 12] -- insights -- ls --limit 1

Each command (separated by `--`) runs once to warm up, then RUNS times; prints the median and
minimum wall time and the child's user+system CPU time (getrusage), which load from other
processes inflates less than wall time.
"""

import argparse
import resource
import statistics
import subprocess
import sys
import time


def measure(argv: list[str], runs: int) -> tuple[list[float], list[float]]:
    subprocess.run(argv, capture_output=True, check=True)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--bin", default="target/release/devtrace")
    parser.add_argument("--runs", type=int, default=12)
    args, rest = parser.parse_known_args()
    commands, current = [], []
    for word in rest:
        if word == "--":
            if current:
                commands.append(current)
            current = []
        else:
            current.append(word)
    if current:
        commands.append(current)
    if not commands:
        sys.exit("give at least one command after --, e.g. -- insights")
    for command in commands:
        walls, cpus = measure([args.bin, "--data", args.data, *command], args.runs)
        print(
            f"{' '.join(command):32s} wall median {statistics.median(walls):7.1f} ms  min {min(walls):7.1f}"
            f"  |  cpu median {statistics.median(cpus):7.1f} ms  ({args.runs} runs)"
        )


if __name__ == "__main__":
    main()
