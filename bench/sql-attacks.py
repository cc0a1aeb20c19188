#!/usr/bin/env python3
"""The issue-15 attack queries against a release build: RSS and wall time of each.

Usage: bench/sql-attacks.py [--json] [--big-requests 20]

Server: starts `devtrace serve` on a fresh data directory and sends each query to MCP
`query_sql` at /mcp (5 s limit), alone and then two at once; before each, the server's peak RSS
(VmHWM) is reset (`/proc/PID/clear_refs`, needs the process to be ours), so each row reports
the peak that query caused. CLI: `devtrace query --timeout 1s SQL` under /usr/bin/time (wall
time and peak RSS of the process). Binaries: $CARGO_TARGET_DIR/release (default
target/release).

Before the queries, --big-requests requests of 15 MB of incompressible 60 KB values (240 spans
each) are stored over OTLP/HTTP, for `ORDER BY random()` over big values: the spans view
decodes chunks inside the virtual table, between the VM steps the time limit is checked on.
"""
import importlib.util
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import serve_process

DEVTRACE = serve_process.DEVTRACE

ATTACKS = {
    "zeroblob/replace": "SELECT length(replace(hex(zeroblob(240000000)),'0','00'))",
    "string-doubling CTE": "WITH RECURSIVE r(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM r) "
                           "SELECT length(s) FROM r ORDER BY 1 DESC LIMIT 1",
    "group_concat": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) "
                    "SELECT length(group_concat(hex(randomblob(64)))) FROM n",
    "endless CTE": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
                   "SELECT count(*) FROM n",
    "ORDER BY random() over big values": "SELECT length(attributes) FROM spans ORDER BY random() LIMIT 3",
    "ORDER BY random(), values themselves": "SELECT attributes FROM spans ORDER BY random() LIMIT 3",
}


def store_big_values(address, requests):
    """Sends `requests` requests of 15 MB of incompressible values; returns the 200s."""
    spec = importlib.util.spec_from_file_location(
        "ingest_rss", os.path.join(os.path.dirname(os.path.abspath(__file__)), "ingest-rss.py"))
    ingest_rss = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ingest_rss)
    host, port = address.rsplit(":", 1)
    stored = 0
    for sequence in range(requests):
        body = ingest_rss.request(9, sequence, 15_000_000, incompressible=True)
        connection = http.client.HTTPConnection(host, int(port), timeout=600)
        connection.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
        response = connection.getresponse()
        response.read()
        connection.close()
        stored += response.status == 200
    return stored


def reset_peak(pid):
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


class Mcp:
    """A minimal streamable-HTTP MCP client: initialize once, then tools/call."""

    def __init__(self, address):
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.session = None
        self.next_id = 1
        answer = self.post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "sql-attacks", "version": "1"}}})
        assert "result" in answer, answer
        self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def post(self, message):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        headers = {"Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream",
                   "Host": f"127.0.0.1:{self.port}"}
        if self.session:
            headers["Mcp-Session-Id"] = self.session
            headers["MCP-Protocol-Version"] = "2025-06-18"
        connection.request("POST", "/mcp", json.dumps(message), headers)
        response = connection.getresponse()
        body = response.read().decode()
        self.session = self.session or response.getheader("Mcp-Session-Id")
        connection.close()
        for line in body.splitlines():
            if line.startswith("data:") and line[5:].strip():
                return json.loads(line[5:])
        return json.loads(body) if body.strip() else None

    def query(self, sql):
        self.next_id += 1
        answer = self.post({"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                            "params": {"name": "query_sql", "arguments": {"sql": sql}}})
        result = answer["result"]
        text = result["content"][0]["text"]
        return ("error: " if result.get("isError") else "") + text[:160]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--big-requests", type=int, default=20)
    args = parser.parse_args()
    if not os.access(DEVTRACE, os.X_OK):
        sys.exit(f"sql-attacks: {DEVTRACE} is missing; run: cargo build --release -p devtrace-cli")
    data = tempfile.mkdtemp(prefix="devtrace-sql.")
    server, info = serve_process.start(data, who="sql-attacks")
    rows = []
    try:
        stored = store_big_values(info["http"], args.big_requests)
        mcp = Mcp(info["api"])
        idle = serve_process.memory(server.pid)["VmRSS"]
        for name, sql in ATTACKS.items():
            reset_peak(server.pid)
            started = time.monotonic()
            answer = mcp.query(sql)
            rows.append({"where": "serve (MCP query_sql, 5 s)", "query": name,
                         "wall_s": round(time.monotonic() - started, 2),
                         "peak_rss_mib": serve_process.memory(server.pid)["VmHWM"], "answer": answer})
        for first, second in [("zeroblob/replace", "string-doubling CTE")]:
            reset_peak(server.pid)
            answers = {}
            started = time.monotonic()
            threads = [threading.Thread(target=lambda n=n: answers.__setitem__(n, mcp.query(ATTACKS[n])))
                       for n in (first, second)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            rows.append({"where": "serve (MCP query_sql, 5 s)", "query": f"{first} + {second} at once",
                         "wall_s": round(time.monotonic() - started, 2),
                         "peak_rss_mib": serve_process.memory(server.pid)["VmHWM"],
                         "answer": " | ".join(answers[n] for n in (first, second))})
        after = serve_process.memory(server.pid)["VmRSS"]
    finally:
        serve_process.stop(server)
    try:
        for name, sql in ATTACKS.items():
            timed = subprocess.run(
                ["/usr/bin/time", "-f", "%e %M", DEVTRACE, "--data", data, "query", "--timeout", "1s", sql],
                capture_output=True, text=True)
            wall, kib = timed.stderr.strip().splitlines()[-1].split()
            message = (timed.stdout + timed.stderr).strip().splitlines()
            rows.append({"where": "CLI (query --timeout 1s)", "query": name, "wall_s": float(wall),
                         "peak_rss_mib": int(kib) // 1024,
                         "answer": (message[0] if message else "")[:160]})
    finally:
        shutil.rmtree(data, ignore_errors=True)
    report = {"big_requests_stored": stored, "serve_idle_rss_mib": idle, "serve_rss_after_mib": after, "rows": rows,
              "load_average": os.getloadavg()}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{stored} requests of 15 MB stored; serve RSS before the queries {idle} MiB, after {after} MiB; "
          f"load average {report['load_average']}")
    for row in rows:
        print(f"{row['where']:28} {row['query']:45} {row['wall_s']:6.2f} s {row['peak_rss_mib']:6} MiB  {row['answer']}")


if __name__ == "__main__":
    main()
