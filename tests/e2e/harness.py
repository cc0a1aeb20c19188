"""Helpers shared by the end-to-end tests: running devtrace and clients, HTTP, and checks
of the CLI's JSON contract (`devtrace ls --json`, `devtrace show --json`) and of OTLP/JSON."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The third-party conformance set (real samples under their own licences, kept outside the
# repository): the directory DEVTRACE_EXTERNAL_FIXTURES names; tests that read it are marked
# `external` and skipped without it (scripts/test says so in one line).
EXTERNAL_FIXTURES = Path(os.environ["DEVTRACE_EXTERNAL_FIXTURES"]) if os.environ.get("DEVTRACE_EXTERNAL_FIXTURES") else None
external = pytest.mark.skipif(
    EXTERNAL_FIXTURES is None, reason="third-party fixtures: set DEVTRACE_EXTERNAL_FIXTURES to run them"
)
OTLP_FIXTURES_REL = (EXTERNAL_FIXTURES or Path("DEVTRACE_EXTERNAL_FIXTURES-not-set")) / "otlp"
SENDERS = Path(__file__).resolve().parent / "senders"

SERVE_READY_TIMEOUT_S = 30
SERVE_STOP_TIMEOUT_S = 10
CLI_TIMEOUT_S = 60
CLIENT_TIMEOUT_S = 90

TRACE_ID_RE = re.compile(r"^[0-9a-f]{32}$")
LISTEN_RE = re.compile(r"^127\.0\.0\.1:([0-9]{1,5})$")


def _binary(env_var: str, default: Path, how_to_build: str) -> Path:
    path = Path(os.environ[env_var]) if os.environ.get(env_var) else default
    if not path.is_file() or not os.access(path, os.X_OK):
        pytest.fail(f"{path} not found or not executable: {how_to_build} (or set {env_var})")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without OTEL_* / DEVTRACE_* variables, with a 120-column
    terminal and times in UTC (what the CLI prints depends on both; docs/cli.md), plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_") and not k.startswith("DEVTRACE_")
    }
    env.update(COLUMNS="120", TZ="UTC")
    env.update(extra)
    return env


@dataclass
class CliResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"`devtrace {' '.join(self.args)}` exited {self.returncode}\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


@dataclass
class Store:
    """A devtrace data directory and a way to run store commands against it."""

    bin: Path
    data_dir: Path
    # For a PostgreSQL store: ("--store", URL, "--project", NAME), added to every command.
    store_args: tuple[str, ...] = ()

    def cli(self, *args: str, check: bool = True, cwd: Path = REPO_ROOT) -> CliResult:
        """Runs `devtrace <args> --data <data_dir>` (and the store's --store/--project)."""
        argv = [str(a) for a in args] + ["--data", str(self.data_dir), *self.store_args]
        proc = subprocess.run(
            [str(self.bin), *argv],
            cwd=cwd,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
        )
        result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            pytest.fail(result.describe())
        return result

    def json(self, *args: str, cwd: Path = REPO_ROOT):
        """Runs `devtrace <args> --data <data_dir>`, expects exit 0, returns stdout parsed as JSON."""
        result = self.cli(*args, cwd=cwd)
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as e:
            pytest.fail(f"stdout is not JSON ({e})\n{result.describe()}")

    def ls(self, *args: str) -> list[dict]:
        return self.json("ls", "--json", *args)

    def show(self, trace_id: str) -> dict:
        return self.json("show", trace_id, "--json")


@dataclass
class Server(Store):
    proc: subprocess.Popen = None
    log_path: Path = None
    serve_json: dict = field(default_factory=dict)
    # The API token clients send, when the server requires one.
    token: str | None = None

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def otlp_env(self) -> dict[str, str]:
        """What an OpenTelemetry SDK needs to send here besides the endpoint: the token as
        OTEL_EXPORTER_OTLP_HEADERS (the value percent-encoded, as the specification says)."""
        return {"OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{self.token}"} if self.token else {}

    @property
    def grpc(self) -> str:
        return self.serve_json["grpc"]

    @property
    def http(self) -> str:
        return self.serve_json["http"]

    @property
    def api(self) -> str:
        return self.serve_json["api"]

    @property
    def grpc_endpoint(self) -> str:
        return f"http://{self.grpc}"

    @property
    def http_endpoint(self) -> str:
        return f"http://{self.http}"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no server log)"

    def api_get(self, path: str):
        """GET http://<api><path>; returns (status, parsed JSON body)."""
        status, headers, body = http_request("GET", f"http://{self.api}{path}", headers=self.auth_headers())
        try:
            return status, json.loads(body)
        except json.JSONDecodeError:
            pytest.fail(f"GET {path}: {status} with a non-JSON body {body[:500]!r}")

    def post(self, path: str, body: bytes, headers: dict[str, str]):
        """POST http://<http><path>; returns (status, headers, body bytes)."""
        return http_request("POST", f"http://{self.http}{path}", body, headers)


def http_request(method: str, url: str, body: bytes | None = None, headers=None):
    """Returns (status, headers (case-insensitive .get), body bytes); HTTP errors are returned too."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def _read_serve_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def server_url_from(variable: str, starter: str) -> str:
    """The URL of a test server from `variable` (scripts/test starts them); the test is skipped
    without it, except under CI, where a missing server is a failure."""
    url = os.environ.get(variable, "").strip()
    if not url:
        message = f"{variable} is not set: start one with {starter}"
        if os.environ.get("CI", "") not in ("", "false"):
            pytest.fail(message)
        pytest.skip(message)
    return url


def postgres_url() -> str:
    """The test PostgreSQL server."""
    return server_url_from("DEVTRACE_TEST_POSTGRES", "scripts/postgres-test-server")


def fresh_postgres_store(name: str) -> str:
    """A new, empty schema on the test server, as a --store URL."""
    url = postgres_url()
    schema = re.sub(r"[^a-z0-9_]", "_", f"e2e_{name}_{os.getpid()}_{time.time_ns()}".lower())
    proc = subprocess.run(
        ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE SCHEMA {schema}"],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, f"psql could not create a schema: {proc.stderr}"
    return f"{url}?options=-csearch_path%3D{schema}"


def clickhouse_url() -> str:
    """The test ClickHouse engine behind its front."""
    return server_url_from("DEVTRACE_TEST_CLICKHOUSE", "scripts/clickhouse-test-server")


def fresh_clickhouse_store(name: str) -> str:
    """A --store URL naming a new database on the test engine (devtrace creates it)."""
    url = clickhouse_url()
    database = re.sub(r"[^a-z0-9_]", "_", f"e2e_{name}_{os.getpid()}_{time.time_ns()}".lower())
    return url.rsplit("/", 1)[0] + "/" + database


def make_token(bin: Path, store_url: str, project: str, scopes: str, name: str) -> str:
    """`devtrace token create` with direct store access; returns the token."""
    proc = subprocess.run(
        [str(bin), "token", "create", "--store", store_url, "--project", project,
         "--scope", scopes, "--name", name, "--json"],
        cwd=REPO_ROOT, env=clean_env(), capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip
    assert proc.returncode == 0, f"token create failed: {proc.stderr}"
    return json.loads(proc.stdout)["token"]


def start_team_server(
    bin: Path, data_dir: Path, log_path: Path, name: str, extra_args: tuple[str, ...] = (), store_url: str | None = None
) -> Server:
    """`devtrace serve` on a fresh PostgreSQL schema, or on `store_url` (authentication on, as
    it is by default with a shared store), with an ingest+read token of project "e2e" for its
    clients."""
    store_url = store_url or fresh_postgres_store(name)
    token = make_token(bin, store_url, "e2e", "ingest,read", f"e2e-{name}")
    srv = start_server(bin, data_dir, log_path, ("--store", store_url, *extra_args))
    srv.store_args = ("--store", store_url, "--project", "e2e")
    srv.token = token
    return srv


def start_server(
    bin: Path, data_dir: Path, log_path: Path, extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Server:
    """Starts `devtrace serve` on ephemeral loopback ports and waits for <data>/serve.json;
    `env` replaces clean_env() (a test's own HOME, say)."""
    serve_json_path = data_dir / "serve.json"
    argv = [
        str(bin),
        "serve",
        "--data", str(data_dir),
        "--grpc-listen", "127.0.0.1:0",
        "--http-listen", "127.0.0.1:0",
        "--api-listen", "127.0.0.1:0",
        *extra_args,
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env or clean_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
    srv = Server(bin=bin, data_dir=data_dir, proc=proc, log_path=log_path)
    try:
        deadline = time.monotonic() + SERVE_READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"`devtrace serve` exited {proc.returncode} before writing serve.json\n"
                    f"{srv.log_tail()}"
                )
            info = _read_serve_json(serve_json_path)
            # A serve.json left by a killed server names another pid: wait for ours.
            if isinstance(info, dict) and info.get("pid") == proc.pid:
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{serve_json_path} with this server's pid {proc.pid} did not appear within "
                    f"{SERVE_READY_TIMEOUT_S}s (last read: {info!r})\n{srv.log_tail()}"
                )
            time.sleep(0.05)
        srv.serve_json = info
        check_serve_json(info, proc.pid)
    except BaseException:
        _stop(proc)
        raise
    return srv


def stop_server(srv: Server, sig: int = signal.SIGTERM) -> None:
    """Stops the server with `sig`; it must exit 0 within 10 s and remove serve.json."""
    proc = srv.proc
    if proc.poll() is not None:
        pytest.fail(f"`devtrace serve` died early (exit {proc.returncode})\n{srv.log_tail()}")
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=SERVE_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _stop(proc)
        pytest.fail(
            f"`devtrace serve` did not exit within {SERVE_STOP_TIMEOUT_S}s of signal {sig}\n{srv.log_tail()}"
        )
    assert rc == 0, f"`devtrace serve` exited {rc} after signal {sig} (expected 0)\n{srv.log_tail()}"
    assert not (srv.data_dir / "serve.json").exists(), "serve.json was not removed at shutdown"


def check_serve_json(info, pid: int) -> None:
    assert isinstance(info, dict), f"serve.json is not an object: {info!r}"
    for key in ("pid", "grpc", "http", "api", "version"):
        assert key in info, f"serve.json lacks {key!r}: {info!r}"
    assert info["pid"] == pid, f"serve.json pid {info['pid']!r} != server pid {pid}"
    ports = set()
    for key in ("grpc", "http", "api"):
        m = LISTEN_RE.match(str(info[key]))
        assert m, f"serve.json {key}={info[key]!r} is not 127.0.0.1:PORT"
        port = int(m.group(1))
        assert 0 < port < 65536, f"serve.json {key} has port {port}: an actual bound port is expected"
        ports.add(port)
    assert len(ports) == 3, f"serve.json lists the same port twice: {info!r}"
    assert isinstance(info["version"], str) and info["version"], info


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def run_client(argv: list[str], env: dict[str, str]) -> str:
    """Runs an instrumented client; expects exit 0 and a trace id as the only stdout line."""
    proc = subprocess.run(
        argv,
        cwd=REPO_ROOT,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"client {argv} exited {proc.returncode}\n--- stdout ---\n{proc.stdout}\n"
        f"--- stderr ---\n{proc.stderr[-4000:]}"
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and TRACE_ID_RE.match(lines[0]), f"unexpected client stdout {proc.stdout!r}"
    return lines[0]


def run_python_sender(env: dict[str, str]) -> str:
    return run_client([sys.executable, str(SENDERS / "python_sender.py")], env)


# --- type-strict comparison -------------------------------------------------------------------


def typed(value):
    """A representation in which 1, 1.0 and True differ, for type-strict comparisons."""
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list):
        return ("list", [typed(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: typed(v) for k, v in value.items()})
    raise TypeError(f"not a JSON value: {value!r}")


def assert_strict(actual, expected, what: str) -> None:
    """Asserts equality where JSON types matter (an int is not a float is not a bool)."""
    if typed(actual) != typed(expected):
        detail = ""
        if isinstance(actual, dict) and isinstance(expected, dict):
            missing = sorted(set(expected) - set(actual))
            extra = sorted(set(actual) - set(expected))
            differ = sorted(
                k for k in set(actual) & set(expected) if typed(actual[k]) != typed(expected[k])
            )
            detail = f"\n  missing keys: {missing}\n  unexpected keys: {extra}\n  differing: " + ", ".join(
                f"{k}: got {actual[k]!r} ({type(actual[k]).__name__}), "
                f"want {expected[k]!r} ({type(expected[k]).__name__})"
                for k in differ
            )
        raise AssertionError(f"{what}:\n  got  {actual!r}\n  want {expected!r}{detail}")


def assert_subset(actual, expected: dict, what: str) -> None:
    """The contract's keys with exactly these values (type-strict); extra keys are allowed."""
    assert isinstance(actual, dict), f"{what}: not an object: {actual!r}"
    assert_strict({k: actual[k] for k in expected if k in actual}, expected, what)


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --- the CLI's JSON contract -----------------------------------------------------------------

LS_KEYS = {"trace_id", "start_unix_nano", "root_name", "service", "duration_ns", "span_count", "error_count"}
SHOW_KEYS = LS_KEYS | {"spans", "logs"}
SPAN_KEYS = {
    "span_id", "parent_span_id", "depth", "name", "kind", "service", "scope", "start_unix_nano",
    "end_unix_nano", "duration_ns", "status", "attributes", "dropped_attributes_count", "events",
    "links", "resource",
}
EVENT_KEYS = {"time_unix_nano", "name", "attributes"}
LINK_KEYS = {"trace_id", "span_id", "trace_state", "attributes"}
LOG_KEYS = {
    "time_unix_nano", "severity_number", "severity_text", "body", "attributes", "span_id",
    "event_name", "service",
}
KINDS = {"server", "client", "internal", "producer", "consumer", "unspecified"}
STATUS_CODES = {"unset", "ok", "error"}
SPAN_ID_RE = re.compile(r"^[0-9a-f]{16}$")


def _keys(obj, required: set[str], what: str) -> None:
    assert isinstance(obj, dict), f"{what} is not an object: {obj!r}"
    missing = required - set(obj)
    assert not missing, f"{what} lacks {sorted(missing)}: {json.dumps(obj)[:800]}"


def check_ls_entry(entry) -> None:
    _keys(entry, LS_KEYS, "ls entry")
    assert TRACE_ID_RE.match(entry["trace_id"]), entry
    for k in ("start_unix_nano", "duration_ns", "span_count", "error_count"):
        assert is_int(entry[k]), f"ls entry {k} is not an integer: {entry!r}"


def check_show(doc) -> dict:
    """Checks `devtrace show --json` output against the contract and its own invariants."""
    _keys(doc, SHOW_KEYS, "show")
    assert TRACE_ID_RE.match(doc["trace_id"]), f"trace_id {doc['trace_id']!r}"
    for k in ("start_unix_nano", "duration_ns", "span_count", "error_count"):
        assert is_int(doc[k]), f"show {k} is not an integer: {doc[k]!r}"
    spans = doc["spans"]
    assert isinstance(spans, list) and spans, "show has no spans"
    ids = set()
    for s in spans:
        what = f"span {s.get('name')!r}"
        _keys(s, SPAN_KEYS, what)
        assert SPAN_ID_RE.match(s["span_id"]), f"{what} span_id {s['span_id']!r}"
        assert s["span_id"] not in ids, f"span id {s['span_id']} listed twice"
        ids.add(s["span_id"])
        assert s["parent_span_id"] is None or SPAN_ID_RE.match(s["parent_span_id"]), (
            f"{what} parent_span_id {s['parent_span_id']!r}"
        )
        assert s["kind"] in KINDS, f"{what} kind {s['kind']!r}"
        for k in ("start_unix_nano", "end_unix_nano", "duration_ns", "depth", "dropped_attributes_count"):
            assert is_int(s[k]), f"{what} {k} is not an integer: {s[k]!r}"
        assert s["end_unix_nano"] >= s["start_unix_nano"], what
        assert s["duration_ns"] == s["end_unix_nano"] - s["start_unix_nano"], what
        _keys(s["status"], {"code", "message"}, f"{what} status")
        assert s["status"]["code"] in STATUS_CODES, f"{what} status {s['status']!r}"
        _keys(s["scope"], {"name", "version"}, f"{what} scope")
        assert isinstance(s["attributes"], dict), f"{what} attributes"
        assert isinstance(s["resource"], dict), f"{what} resource"
        for e in s["events"]:
            _keys(e, EVENT_KEYS, f"{what} event")
            assert is_int(e["time_unix_nano"]), f"{what} event time {e['time_unix_nano']!r}"
            assert isinstance(e["attributes"], dict), f"{what} event attributes"
        for link in s["links"]:
            _keys(link, LINK_KEYS, f"{what} link")
            assert TRACE_ID_RE.match(link["trace_id"]), f"{what} link trace_id {link['trace_id']!r}"
            assert SPAN_ID_RE.match(link["span_id"]), f"{what} link span_id {link['span_id']!r}"
            assert isinstance(link["attributes"], dict), f"{what} link attributes"
    _check_depth_first(spans, ids)
    assert doc["span_count"] == len(spans), f"span_count {doc['span_count']} but {len(spans)} spans"
    errors = sum(1 for s in spans if s["status"]["code"] == "error")
    assert doc["error_count"] == errors, f"error_count {doc['error_count']} but {errors} error spans"
    start = min(s["start_unix_nano"] for s in spans)
    end = max(s["end_unix_nano"] for s in spans)
    assert doc["start_unix_nano"] == start, f"trace start {doc['start_unix_nano']} != earliest span start {start}"
    assert doc["duration_ns"] == end - start, f"trace duration {doc['duration_ns']} != {end - start}"
    assert doc["root_name"] == spans[0]["name"], f"root_name {doc['root_name']!r} vs first span {spans[0]['name']!r}"
    assert doc["service"] == spans[0]["service"], f"service {doc['service']!r} vs root's {spans[0]['service']!r}"

    logs = doc["logs"]
    assert isinstance(logs, list), "show logs is not a list"
    for rec in logs:
        _keys(rec, LOG_KEYS, "log")
        assert is_int(rec["time_unix_nano"]), f"log time {rec['time_unix_nano']!r}"
        assert is_int(rec["severity_number"]), f"log severity_number {rec['severity_number']!r}"
        assert rec["span_id"] is None or SPAN_ID_RE.match(rec["span_id"]), f"log span_id {rec['span_id']!r}"
        assert isinstance(rec["attributes"], dict), "log attributes"
    times = [rec["time_unix_nano"] for rec in logs]
    assert times == sorted(times), f"logs are not ordered by time: {times}"
    return doc


def _check_depth_first(spans: list[dict], ids: set[str]) -> None:
    """Spans must be in depth-first (pre-)order with consistent depths. A span whose parent is not
    in the trace counts as a root."""
    index = {s["span_id"]: i for i, s in enumerate(spans)}
    for i, s in enumerate(spans):
        parent = s["parent_span_id"]
        if parent is None or parent not in ids:
            assert s["depth"] == 0, f"root span {s['name']!r} has depth {s['depth']}"
            continue
        p = index[parent]
        assert p < i, f"span {s['name']!r} is listed before its parent {spans[p]['name']!r}"
        assert s["depth"] == spans[p]["depth"] + 1, (
            f"span {s['name']!r} depth {s['depth']}, parent depth {spans[p]['depth']}"
        )
        between = spans[p + 1 : i]
        assert all(b["depth"] > spans[p]["depth"] for b in between), (
            f"span {s['name']!r} is not inside its parent's subtree in depth-first order: "
            f"{[(b['name'], b['depth']) for b in spans]}"
        )


def tree(doc) -> list:
    """The trace as nested [name, [children...]] with siblings sorted, for comparisons."""
    spans = doc["spans"]
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict]] = {}
    for s in spans:
        parent = s["parent_span_id"] if s["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(s)

    def node(s):
        return [s["name"], sorted((node(c) for c in children.get(s["span_id"], [])), key=repr)]

    return sorted((node(s) for s in children.get(None, [])), key=repr)


def by_name(doc, name: str) -> list[dict]:
    return [s for s in doc["spans"] if s["name"] == name]


def one(doc, name: str) -> dict:
    found = by_name(doc, name)
    assert len(found) == 1, f"expected one span named {name!r}, found {len(found)}"
    return found[0]


def empty_or_none(v) -> bool:
    return v is None or v == ""


# --- OTLP/JSON -------------------------------------------------------------------------------

_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}
_INT64_FIELDS = {
    "startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "observedTimeUnixNano", "intValue",
}
_ANY_VALUE_KEYS = {
    "stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue", "bytesValue",
}


def _is_zero(v) -> bool:
    return v is None or v == "" or v == [] or v == {} or (not isinstance(v, bool) and v == 0) or v is False


def normalise_otlp(value, key: str | None = None):
    """Normalises an OTLP/JSON document for semantic comparison: hex ids lower-case, 64-bit
    integers as ints whether written as strings or numbers, attribute lists as maps, and fields
    holding an empty or zero value removed (so omitted == empty == zero). Key order is irrelevant
    once parsed. Values inside an AnyValue keep their variant even when zero."""
    if key in _ID_FIELDS and isinstance(value, str):
        return value.lower()
    if key in _INT64_FIELDS and isinstance(value, (str, int)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and set(v) <= {"key", "value"} and "key" in v for v in value):
            return {v["key"]: normalise_otlp(v.get("value", {}), "value") for v in value}
        return [normalise_otlp(v) for v in value]
    if isinstance(value, dict):
        is_any_value = key == "value" or (set(value) and set(value) <= _ANY_VALUE_KEYS)
        out = {}
        for k, v in value.items():
            n = normalise_otlp(v, k)
            if is_any_value and k in _ANY_VALUE_KEYS and k not in ("arrayValue", "kvlistValue"):
                out[k] = n
            elif not _is_zero(n):
                out[k] = n
        return out
    return value


def sort_tree(nodes: list) -> list:
    """Puts a hand-written [name, [children]] tree in the order `tree()` produces."""
    return sorted(([name, sort_tree(children)] for name, children in nodes), key=repr)


class Tmux:
    """One tmux server on a private socket, one session running a command."""

    def __init__(self, socket: str):
        self.socket = socket

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True, timeout=10
        ).stdout

    def capture(self) -> str:
        return self.run("capture-pane", "-p", "-t", "watch")

    def display(self, fmt: str) -> str:
        return self.run("display-message", "-p", "-t", "watch", fmt).strip()

    def wait_for(self, *texts: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.capture()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts} not all on screen within {timeout} s; the screen:\n{screen}")
