#!/usr/bin/env python3
"""The ClickHouse store beside PostgreSQL in one run (issue 32).

Starts the ClickHouse engine behind the test front (scripts/clickhouse-test-server) and a
PostgreSQL test server (scripts/postgres-test-server), one `devtrace serve` on each, and drives
both in turn with devtrace-loadgen (the same spans). Then, on the ClickHouse store: bytes per
span from system.parts (after OPTIMIZE … FINAL, per table), one 1,000-span trace added, and
with --scale-spans N that many synthetic spans more, generated in the engine by
`INSERT … SELECT … FROM numbers()` (traces of 100 spans, ten of 50 services each, one trace
every 6 s; each span row's Map and body copied from one of the loadgen spans, so `show` reads
them back). Then `devtrace ls` (the default first page), `devtrace ls --service svc-7` and
`devtrace show ID` of the 1,000-span trace, timed as whole processes, with the engine's own
time taken from the front's account (GET /front-stats) so the front's cost is set apart (and,
for one more run of each, every request's engine time); the
front also counts insert bodies as received (zstd) and decoded.

    bench/clickhouse-store.py [--spans N] [--scale-spans N] [--bin-dir target/release] [--repeat 10]

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

    def query(self, sql: str, database: str = "default") -> str:
        request = urllib.request.Request(f"{self.base}/?database={database}", data=sql.encode(),
                                         headers={"Authorization": self.auth})
        with urllib.request.urlopen(request, timeout=600) as answer:
            return answer.read().decode()

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base + "/front-stats", timeout=60) as answer:
            return json.loads(answer.read())


def synthetic_statements(traces: int, per_trace: int, services: int, start_ns: int, step_ns: int) -> list[str]:
    """Spans, trace_parts and trace_list rows of `traces` traces of `per_trace` spans over
    `services` services (ten per trace), the span rows' Map and body copied from the 50
    templates among the spans already stored, so `show` reads them back."""
    spans = traces * per_trace
    trace = f"intDiv(number, {per_trace})"
    index = f"(number % {per_trace})"
    tid = f"MD5(concat('t', toString({trace})))"
    sid = lambda n: f"toFixedString(substring(MD5(concat('s', toString({n}))), 1, 8), 8)"
    service = f"concat('svc-', toString(({trace} + intDiv({index}, {max(per_trace // 10, 1)})) % {services}))"
    templates = "(SELECT groupArray(name) AS n, groupArray(attributes) AS a, groupArray(body) AS b, any(project) AS p FROM (SELECT name, attributes, body, project FROM spans LIMIT 50))"
    pick = f"(cityHash64({index}) % length(t.n)) + 1"
    span_sql = f"""INSERT INTO spans (project, trace_id, span_id, parent_span_id, start_ns, duration_ns, name, service, kind, failed, attributes, body, version)
SELECT t.p, {tid}, {sid('number')},
  if({index} = 0, toFixedString(unhex('0000000000000000'), 8), {sid(f'{trace} * {per_trace} + intDiv({index} - 1, 3)')}),
  {start_ns} + {trace} * {step_ns} + {index} * 1000000, ({per_trace} - {index}) * 1000000,
  t.n[{pick}], {service}, 2, ({index} = 7 AND {trace} % 20 = 0),
  t.a[{pick}], t.b[{pick}], 18446744073709551615 - 1000000000000 - number
FROM numbers({spans}) AS g CROSS JOIN {templates} AS t"""
    svc_list = f"arrayMap(k -> concat('svc-', toString((number + k) % {services})), range(10))"
    parts_sql = f"""INSERT INTO trace_parts (project, trace_id, part, start_ns, end_ns, span_count, error_count, root_name, root_service, root_start_ns, root_end_ns, root_failed, is_root, is_run, is_session, services, service_spans, service_errors, op_names, op_services, op_kinds, version)
SELECT t.p, MD5(concat('t', toString(number))), 1, {start_ns} + number * {step_ns}, {start_ns} + number * {step_ns} + {per_trace} * 1000000,
  {per_trace}, if(number % 20 = 0, 1, 0), t.n[1], concat('svc-', toString(number % {services})),
  {start_ns} + number * {step_ns}, {start_ns} + number * {step_ns} + {per_trace} * 1000000, 0, 1, 0, 0,
  {svc_list}, arrayMap(k -> {max(per_trace // 10, 1)}, range(10)), arrayMap(k -> toUInt64(k = 0 AND number % 20 = 0), range(10)),
  arraySlice(t.n, 1, 10), arrayMap(k -> concat('svc-', toString((number + k) % {services})), range(length(arraySlice(t.n, 1, 10)))),
  arrayMap(k -> 2, range(length(arraySlice(t.n, 1, 10)))), 1
FROM numbers({traces}) AS g CROSS JOIN {templates} AS t"""
    list_sql = f"""INSERT INTO trace_list (project, service, start_ns, trace_id)
SELECT t.p, s, {start_ns} + number * {step_ns}, MD5(concat('t', toString(number)))
FROM numbers({traces}) AS g CROSS JOIN {templates} AS t ARRAY JOIN arrayConcat([''], {svc_list}) AS s"""
    return [span_sql, parts_sql, list_sql]


def timed(argv: list[str], front: Front, repeat: int) -> dict:
    """Median wall time of a whole devtrace process, and of the engine's part of it."""
    walls, engines = [], []
    for _ in range(repeat):
        before = front.stats()["engine_seconds"]
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        engines.append(front.stats()["engine_seconds"] - before)
    before = front.stats()["requests"]
    subprocess.run(argv, capture_output=True, check=True)
    stats = front.stats()
    last_run = stats["recent"][len(stats["recent"]) - (stats["requests"] - before):]
    return {"wall_ms": round(statistics.median(walls) * 1000, 1), "engine_ms": round(statistics.median(engines) * 1000, 1),
            "one_run_requests_engine_ms": last_run}


def bytes_per_span(front: Front, database: str) -> dict:
    """Bytes on the engine per stored span, from system.parts after OPTIMIZE … FINAL (every
    table of the database; the spans table's columns apart)."""
    for table in ("spans", "trace_parts"):
        front.query(f"OPTIMIZE TABLE {database}.{table} FINAL")
    spans = int(front.query(f"SELECT count() FROM {database}.spans FINAL").strip())
    parts = front.query(
        "SELECT table, sum(bytes_on_disk), sum(data_uncompressed_bytes) FROM system.parts "
        f"WHERE database = '{database}' AND active GROUP BY table ORDER BY table FORMAT JSONEachRow"
    )
    tables = [json.loads(line) for line in parts.splitlines() if line]
    on_disk = sum(int(t["sum(bytes_on_disk)"]) for t in tables)
    columns = front.query(
        "SELECT column, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns "
        f"WHERE database = '{database}' AND table = 'spans' AND active GROUP BY column ORDER BY bytes DESC FORMAT JSONEachRow"
    )
    return {
        "spans_stored": spans,
        "tables": tables,
        "bytes_per_span": round(on_disk / max(spans, 1), 1),
        "spans_table_columns_per_span": {
            json.loads(c)["column"]: round(int(json.loads(c)["bytes"]) / max(spans, 1), 1) for c in columns.splitlines() if c
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--bin-dir", type=Path, default=REPO / "target" / "release")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--scale-spans", type=int, default=0, help="synthetic spans added before ls/show")
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
            report[name] = {
                "spans_per_sec_queryable": run["queryable"]["spans_per_s"],
                "spans_per_sec_sent": run["send_spans_per_s"],
                "spans_accepted": run["spans_accepted"],
                "spans_failed": run["spans_failed"],
                "wall_s": run["queryable"]["wall_s"],
                "latency_ms_p50": run["latency_ms"]["p50"],
                "server_cpu_s": run["server"]["cpu_until_queryable_s"],
                "server_max_rss_bytes": run["server"]["max_rss_bytes"],
            }
            if name == "clickhouse":
                report[name]["engine_seconds"] = round(after["engine_seconds"] - before["engine_seconds"], 3)
                report[name]["front_requests"] = after["requests"] - before["requests"]
                report[name]["insert_bodies"] = {
                    encoding: {k: v - before["bodies"].get(encoding, {}).get(k, 0) for k, v in counts.items()}
                    for encoding, counts in after["bodies"].items()
                }
                big = loadgen(args.bin_dir, ports, proc.pid, ["--one-big-trace", "1000"])
                report["big_trace"] = big.get("trace_id") or big.get("one_big_trace_id")
        report["bytes"] = bytes_per_span(front, "bench")
        if args.scale_spans:
            started = time.perf_counter()
            step = 6_000_000_000
            traces = args.scale_spans // 100
            first = time.time_ns() - traces * step - 3_600_000_000_000
            for statement in synthetic_statements(traces, 100, 50, first, step):
                front.query(statement, database="bench")
            report["scale"] = {
                "synthetic_spans": traces * 100,
                "generate_s": round(time.perf_counter() - started, 1),
                "spans_stored": int(front.query("SELECT count() FROM bench.spans").strip()),
                "traces_stored": int(front.query("SELECT count() FROM bench.trace_parts").strip()),
            }
        store_args = ["--store", ch_store]
        report["ls"] = timed([str(devtrace), *store_args, "ls"], front, args.repeat)
        report["ls_service"] = timed([str(devtrace), *store_args, "ls", "--service", "svc-7"], front, args.repeat)
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
