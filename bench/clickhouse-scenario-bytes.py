#!/usr/bin/env python3
"""Bytes per span on the ClickHouse engine for the scenario suite's spans (issue 32's target).

Starts the engine behind the test front (scripts/clickhouse-test-server) and one `devtrace
serve --store clickhouse://…`, runs every scenario of tests/scenarios (real OpenTelemetry SDK
programs on a simulated clock) --rounds times against it, then reads bytes per span from
system.parts after OPTIMIZE … FINAL, as bench/clickhouse-store.py does for loadgen's spans.

    bench/clickhouse-scenario-bytes.py [--rounds 10] [--bin-dir target/debug]

Needs the OpenTelemetry SDK in the Python that runs it (the e2e virtualenv, .venv). Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "tests" / "scenarios"


def load_store_bench():
    """bench/clickhouse-store.py (its name is not a module name): serve, Front, bytes_per_span."""
    spec = importlib.util.spec_from_file_location("clickhouse_store", REPO / "bench" / "clickhouse-store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_scenario(name: str, ports: dict) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{ports['http']}",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_MAX_QUEUE_SIZE="65536",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="4096",
    )
    subprocess.run([sys.executable, str(SCENARIOS / f"{name}.py")], cwd=SCENARIOS, env=env,
                   capture_output=True, text=True, check=True, timeout=600)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "debug")
    args = parser.parse_args()
    bench = load_store_bench()
    work = Path(tempfile.mkdtemp(prefix="devtrace-ch-scenarios."))
    ch_dir = work / "clickhouse"
    ch_url = subprocess.run([str(REPO / "scripts/clickhouse-test-server"), "start", str(ch_dir)],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    names = sorted(p.stem for p in SCENARIOS.glob("*.py") if p.stem != "sim")
    proc = None
    try:
        proc, ports = bench.serve(args.bin_dir / "devtrace", ch_url.rsplit("/", 1)[0] + "/scenarios", work, "scenarios")
        for _ in range(args.rounds):
            for name in names:
                run_scenario(name, ports)
        report = {"scenarios": names, "rounds": args.rounds, "bytes": bench.bytes_per_span(bench.Front(ch_url), "scenarios")}
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)
        subprocess.run([str(REPO / "scripts/clickhouse-test-server"), "stop", str(ch_dir)], check=False)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
