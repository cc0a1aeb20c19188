"""What every app of the real-instrumentation corpus shares: starting its services as separate
processes under the official auto-instrumentation (`opentelemetry-instrument` for Python,
`--require @opentelemetry/auto-instrumentations-node/register` for Node.js), each its own
`service.name`, exporting OTLP/HTTP to the devtrace server the test started; a place where the
services write what they measured while they ran; the PostgreSQL schema of one run; and
printing the ground truth.

The driver of each app (its `__main__`) is the app's users: plain, uninstrumented HTTP requests.
Nothing here makes a span."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def otel_env(service: str) -> dict[str, str]:
    """The environment of one instrumented service: the exporter settings come from the test
    (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SEMCONV_STABILITY_OPT_IN), the rest is fixed here."""
    env = dict(os.environ)
    env.update(
        OTEL_SERVICE_NAME=service,
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_METRICS_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_BSP_SCHEDULE_DELAY="200",
        OTEL_BSP_MAX_QUEUE_SIZE="65536",
    )
    return env


class Services:
    """The app's service processes: started, waited for, stopped with SIGINT (so each SDK
    flushes its spans at exit), their output kept for the error message of a failed run."""

    def __init__(self, measure_dir: Path) -> None:
        self.measure_dir = measure_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def start(self, service: str, argv: list[str], port: int, cwd: Path, env: dict | None = None) -> str:
        log = self.measure_dir / f"{service}.log"
        full_env = otel_env(service)
        full_env.update(env or {})
        full_env["REALWORLD_MEASURE"] = str(self.measure_dir / f"{service}.jsonl")
        full_env["PORT"] = str(port)
        self.logs[service] = log
        self.procs[service] = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            preexec_fn=_default_sigint,
        )
        wait_listening(port, self.procs[service], log)
        return f"http://127.0.0.1:{port}"

    def python(self, service: str, module: str, port: int, env: dict | None = None, args: list[str] = ()) -> str:
        """A Python service, `python -m MODULE ARGS` under `opentelemetry-instrument`."""
        instrument = Path(sys.executable).parent / "opentelemetry-instrument"
        argv = [str(instrument), sys.executable, "-m", module, *args]
        return self.start(service, argv, port, HERE, env)

    def node(self, service: str, app_dir: Path, script: str, port: int, env: dict | None = None) -> str:
        """A Node.js service, `node --require @opentelemetry/auto-instrumentations-node/register
        SCRIPT`, in the app's directory (its node_modules, from `npm ci`)."""
        node_env = {
            # The resource detectors that read this machine only: the cloud ones would ask
            # metadata addresses off loopback.
            "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process",
            **(env or {}),
        }
        argv = ["node", "--require", "@opentelemetry/auto-instrumentations-node/register", script]
        return self.start(service, argv, port, app_dir, node_env)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for service, proc in self.procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise SystemExit(f"{service} did not stop on SIGINT:\n{self.logs[service].read_text()[-3000:]}")

    def readings(self) -> list[dict]:
        """Every measurement the services wrote, in the order written per service."""
        out = []
        for path in sorted(self.measure_dir.glob("*.jsonl")):
            out.extend(json.loads(line) for line in path.read_text().splitlines() if line)
        return out


def _default_sigint() -> None:
    """In the service's process before it starts: SIGINT, which `Services.stop` ends services
    with as a person's Ctrl-C would, back to its default. A suite started as a background job
    of a non-interactive shell (`scripts/test &`) inherits SIGINT ignored, and a Python service
    started so never sees its KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a service exited {proc.returncode} at start:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"a service did not listen on {port} in {timeout_s} s:\n{log.read_text()[-3000:]}")


def record(**reading) -> None:
    """Appends one measurement (a JSON object) to this service's measurement file."""
    with open(os.environ["REALWORLD_MEASURE"], "a") as f:
        f.write(json.dumps(reading) + "\n")


def get(url: str, timeout: float = 30) -> int:
    """One user request; returns the HTTP status (an error status is an answer, not a crash)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


def pg_schema(app: str) -> tuple[str, str]:
    """A new schema for this run on the test server in DEVTRACE_TEST_POSTGRES: (DSN, schema).
    The DSN sets search_path, so the app's unqualified tables are this run's."""
    import psycopg2

    dsn = os.environ["DEVTRACE_TEST_POSTGRES"]
    schema = f"rw_{app}_{os.getpid()}_{time.time_ns() % 10**9}"
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    return f"{dsn}{sep}options=-csearch_path%3D{schema}", schema


def n_plus_one_saving(durations: list[float], factor: float = 1.5) -> float:
    """The saving devtrace's N+1 model claims for one loop: the calls' sum minus one batched
    call costed at `factor` × the mean call (docs/analysis.md, repeated_calls)."""
    return sum(durations) - factor * statistics.fmean(durations)


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit_truth(truth: dict) -> None:
    """The ground truth as the program's last stdout line."""
    sys.stdout.write(json.dumps(truth) + "\n")
    sys.stdout.flush()
