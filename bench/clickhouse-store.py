#!/usr/bin/env python3
"""The ClickHouse store beside PostgreSQL in one run (issue 32).

Starts the ClickHouse engine behind the test front (scripts/clickhouse-test-server) and a
PostgreSQL test server (scripts/postgres-test-server), one `devtrace serve` on each, and drives
both in turn with devtrace-loadgen (the same spans). Then, on the ClickHouse store: bytes per
span from system.parts (after OPTIMIZE … FINAL, per table), one 1,000-span trace added, and
`devtrace ls --limit 100` and `devtrace show ID` timed as whole processes, with the engine's own
time taken from the front's account (GET /front-stats) so the front's cost is set apart.

    bench/clickhouse-store.py [--spans N] [--bin-dir target/release] [--repeat 10]

Prints one JSON object. Needs the binaries devtrace and devtrace-loadgen in --bin-dir.
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(devtrace: Path, store: str, work: Path, name: str):
    ports = {k: free_port() for k in ("grpc", "http", "api")}
    data = work / f"serve-{name}"
    data.mkdir()
    log_path = work / f"serve-{name}.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(devtrace), "serve", "--data", str(data), "--store", store, "--insecure-no-auth",
         "--grpc-listen", f"127.0.0.1:{ports['grpc']}", "--http-listen", f"127.0.0.1:{ports['http']}",
         "--api-listen", f"127.0.0.1:{ports['api']}"],
        stdout=log, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (data / "serve.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"devtrace serve on {name} did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, ports


def loadgen(bin_dir: Path, ports: dict, pid: int, args: list[str]) -> dict:
    out = subprocess.run(
        [str(bin_dir / "devtrace-loadgen"), "--grpc", f"127.0.0.1:{ports['grpc']}",
         "--http", f"127.0.0.1:{ports['http']}", "--api", f"127.0.0.1:{ports['api']}",
         "--server-pid", str(pid), "--json", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


class Front:
    """The test front's HTTP interface, for the measurements devtrace does not make."""

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        credentials, rest = rest.split("@", 1)
        self.base = "http://" + rest.split("/", 1)[0]
        self.auth = "Basic " + base64.b64encode(credentials.encode()).decode()

    def query(self, sql: str) -> str:
        request = urllib.request.Request(self.base + "/", data=sql.encode(), headers={"Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=600) as answer:
            return answer.read().decode()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base + "/front-stats", timeout=60) as answer:
            return json.loads(answer.read())


def timed(argv: list[str], front: Front, repeat: int) -> dict:
    """Median wall time of a whole devtrace process, and of the engine's part of it."""
    walls, engines = [], []
    for _ in range(repeat):
        before = front.stats()["engine_seconds"]
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        engines.append(front.stats()["engine_seconds"] - before)
    return {"wall_ms": round(statistics.median(walls) * 1000, 1), "engine_ms": round(statistics.median(engines) * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release")
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    devtrace = args.bin_dir / "devtrace"
    work = Path(tempfile.mkdtemp(prefix="devtrace-ch-bench."))
    # PostgreSQL's own user (as root) must reach its directory.
    work.chmod(0o755)
    ch_dir, pg_dir = work / "clickhouse", work / "postgres"
    ch_url = subprocess.run([str(REPO / "scripts/clickhouse-test-server"), "start", str(ch_dir)],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    try:
        pg_url = subprocess.run([str(REPO / "scripts/postgres-test-server"), "start", str(pg_dir)],
                                capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except subprocess.CalledProcessError:
        subprocess.run([str(REPO / "scripts/clickhouse-test-server"), "stop", str(ch_dir)], check=False)
        raise
    ch_store = ch_url.rsplit("/", 1)[0] + "/bench"
    front = Front(ch_url)
    report: dict = {"spans": args.spans, "bin_dir": str(args.bin_dir)}
    procs = []
    try:
        for name, store in (("clickhouse", ch_store), ("postgres", pg_url)):
            proc, ports = serve(devtrace, store, work, name)
            procs.append(proc)
            before = front.stats()
            run = loadgen(args.bin_dir, ports, proc.pid, ["--total-spans", str(args.spans), "--in-flight", "4"])
            after = front.stats()
            report[name] = {k: run.get(k) for k in ("spans_per_sec_queryable", "spans_per_sec_accepted", "accepted_spans",
                                                     "failed_batches", "throttled_batches", "elapsed_secs", "peak_rss_bytes")}
            report[name]["raw"] = run
            if name == "clickhouse":
                report[name]["engine_seconds"] = round(after["engine_seconds"] - before["engine_seconds"], 3)
                report[name]["front_requests"] = after["requests"] - before["requests"]
                big = loadgen(args.bin_dir, ports, proc.pid, ["--one-big-trace", "1000"])
                report["big_trace"] = big.get("trace_id") or big.get("one_big_trace_id")
                report["big_raw"] = big
        for table in ("spans", "trace_parts"):
            front.query(f"OPTIMIZE TABLE bench.{table} FINAL")
        spans = int(front.query("SELECT count() FROM bench.spans FINAL").strip())
        parts = front.query(
            "SELECT table, sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
            "WHERE database = 'bench' AND active GROUP BY table ORDER BY table FORMAT JSONEachRow"
        )
        tables = [json.loads(line) for line in parts.splitlines() if line]
        on_disk = sum(int(t["sum(bytes_on_disk)"]) for t in tables)
        columns = front.query(
            "SELECT column, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns "
            "WHERE database = 'bench' AND table = 'spans' AND active GROUP BY column ORDER BY bytes DESC FORMAT JSONEachRow"
        )
        report["bytes"] = {
            "spans_stored": spans,
            "tables": tables,
            "bytes_per_span": round(on_disk / max(spans, 1), 1),
            "spans_table_columns_per_span": {
                json.loads(c)["column"]: round(int(json.loads(c)["bytes"]) / max(spans, 1), 1) for c in columns.splitlines() if c
            },
        }
        store_args = ["--store", ch_store]
        report["ls"] = timed([str(devtrace), *store_args, "ls", "--limit", "100"], front, args.repeat)
        if report.get("big_trace"):
            report["show"] = timed([str(devtrace), *store_args, "show", report["big_trace"]], front, args.repeat)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
        subprocess.run([str(REPO / "scripts/clickhouse-test-server"), "stop", str(ch_dir)], check=False)
        subprocess.run([str(REPO / "scripts/postgres-test-server"), "stop", str(pg_dir)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
