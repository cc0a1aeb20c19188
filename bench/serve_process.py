"""Starting and stopping a release `devtrace serve` for the Python benchmarks (soak.py,
ingest-rss.py, sql-attacks.py): where the binaries are, a server on free loopback ports with
its log in the data directory, and its addresses once it is ready."""
import json
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
DEVTRACE = os.path.join(TARGET, "release/devtrace")


def start(data, extra=(), who="bench"):
    """`devtrace serve --data DATA EXTRA…` on free ports; (process, serve.json) once ready."""
    server = subprocess.Popen(
        [DEVTRACE, "serve", "--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--api-listen", "127.0.0.1:0", "--data", data, *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(data, "serve.log"), "w"))
    for _ in range(400):
        try:
            with open(os.path.join(data, "serve.json")) as f:
                info = json.load(f)
            if info.get("pid") == server.pid:
                return server, info
        except (OSError, ValueError):
            pass
        if server.poll() is not None:
            break
        time.sleep(0.05)
    server.kill()
    sys.exit(f"{who}: devtrace serve did not become ready (see {data}/serve.log)")


def memory(pid):
    """Resident memory now (VmRSS) and at its peak (VmHWM) of process `pid`, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) // 1024
    return values


def stop(server, timeout=120):
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
