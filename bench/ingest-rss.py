#!/usr/bin/env python3
"""Peak RSS of `devtrace serve` under many concurrent large OTLP/HTTP requests.

Usage: bench/ingest-rss.py [--clients 64] [--request-mb 15] [--rounds 3] [--json]
                           [-- extra serve flags, e.g. --max-in-flight-bytes 17179869184]

Starts a release `devtrace serve` on a fresh data directory, then --clients threads each send
--rounds protobuf trace requests of about --request-mb MB (one keep-alive connection each,
ids unique per request) all at once; a 503 is counted, not retried. Reports the server's peak
resident memory (VmHWM from /proc, so nothing between samples is missed), its RSS before the
load, the answers by status, and any dropped connection. Run it twice to compare budgets: with
the default in-flight byte budget (256 MiB) and with a budget so large that only the request
count (64) limits what is held, which is how the server behaved before the byte budget.
Binaries: $CARGO_TARGET_DIR/release (default target/release); build with
cargo build --release -p devtrace-cli.
"""
import argparse
import http.client
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

import serve_process

DEVTRACE = serve_process.DEVTRACE


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def fixed64(number, value):
    return varint(number << 3 | 1) + struct.pack("<Q", value)


def request(client, sequence, size, incompressible=False):
    """An ExportTraceServiceRequest of about `size` bytes: one trace of spans whose bulk is an
    attribute just under the server's 64 KiB value limit (random hex when `incompressible`, so
    that stored chunks stay large)."""
    value_bytes = 60_000
    spans = []
    trace_id = struct.pack(">HI", client, sequence) + bytes(9) + b"\x01"
    filler = (b"lorem ipsum dolor sit amet %d " % sequence) * (value_bytes // 30)
    filler = filler[:value_bytes]
    for n in range(max(1, size // (value_bytes + 100))):
        if incompressible:
            filler = os.urandom(value_bytes // 2).hex().encode()
        attribute = field(1, b"bulk.text") + field(2, field(1, filler))
        span = (field(1, trace_id) + field(2, struct.pack(">HHI", client, n, 1))
                + field(5, b"bulk") + fixed64(7, 1_700_000_000_000_000_000 + n)
                + fixed64(8, 1_700_000_000_000_001_000 + n) + field(9, attribute))
        spans.append(field(2, span))
    scope_spans = b"".join(spans)
    return field(1, field(2, scope_spans))


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1:]
        argv = argv[:argv.index("--")]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--request-mb", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not os.access(DEVTRACE, os.X_OK):
        sys.exit(f"ingest-rss: {DEVTRACE} is missing; run: cargo build --release -p devtrace-cli")

    data = tempfile.mkdtemp(prefix="devtrace-rss.")
    server, info = serve_process.start(data, extra, who="ingest-rss")
    try:
        host, port = info["http"].rsplit(":", 1)
        size = int(args.request_mb * 1_000_000)
        bodies = {}
        answers = {}
        lock = threading.Lock()
        start_gate = threading.Barrier(args.clients)

        def client(number):
            connection = http.client.HTTPConnection(host, int(port), timeout=600)
            start_gate.wait()
            for sequence in range(args.rounds):
                body = request(number, sequence, size)
                bodies[number] = len(body)
                try:
                    connection.request("POST", "/v1/traces", body,
                                       {"Content-Type": "application/x-protobuf"})
                    response = connection.getresponse()
                    response.read()
                    answer = str(response.status)
                    if response.status == 503:
                        answer += " Retry-After: %s" % response.getheader("Retry-After")
                except (OSError, http.client.HTTPException) as error:
                    answer = "dropped: %s" % type(error).__name__
                    connection.close()
                    connection = http.client.HTTPConnection(host, int(port), timeout=600)
                with lock:
                    answers[answer] = answers.get(answer, 0) + 1
            connection.close()

        before = serve_process.memory(server.pid)
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
        after = serve_process.memory(server.pid)
        report = {
            "serve_flags": extra,
            "clients": args.clients,
            "rounds": args.rounds,
            "request_bytes": max(bodies.values()),
            "rss_before_mib": before["VmRSS"],
            "peak_rss_mib": after["VmHWM"],
            "rss_after_mib": after["VmRSS"],
            "answers": answers,
            "seconds": round(seconds, 1),
            "load_average": os.getloadavg(),
        }
        if args.json:
            print(json.dumps(report))
        else:
            for key, value in report.items():
                print(f"{key}: {value}")
    finally:
        serve_process.stop(server)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
