"""Recordings survive how programs end (docs/python.md, "How a recording ends"): a program set
up as the OpenTelemetry documentation writes it (tests/e2e/native_app/app/endings.py:
TracerProvider + BatchSpanProcessor(OTLPSpanExporter()) + set_tracer_provider) computes fib(22)
and ends in each way programs end — its own `provider.shutdown()` or
`trace.get_tracer_provider().shutdown()`, `force_flush()` then `os._exit`, the SDK's exit
handler (registered before devtrace's, or after it when the program starts devtrace first),
`sys.exit(3)`, an unhandled exception (the provider shut down in a `finally`), SIGTERM (default
disposition, and the program's own handler), threads still running at exit — recorded by `autotrace`, `record_calls` (started by the program),
`devtrace run --plan` and `devtrace run --record`, on every CPython 3.12+ scripts/test built
(DEVTRACE_NATIVE_PYTHONS), with the other core busy. Every fib call the program made is
counted in the run's trace: a span of its own, or counted on its caller
(`devtrace.calls.count`). `autotrace` and `record_calls` are also run as programs usually are,
without `devtrace run`: the program's own provider exports to `devtrace serve`.

The flight recorder (`--record`) writes its window when the program fails (an unhandled
exception, SIGTERM with its default disposition) and, for a process that ended without its exit
handlers (`os._exit`) or had shut the window's provider down before failing, `devtrace run
--record` recovers it from the ring file; at the endings the
program chose (its own exit, its own SIGTERM handler) it writes nothing, as documented.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT, CliResult, clean_env

APP_DIR = REPO_ROOT / "tests" / "e2e" / "native_app"

N = 22
ENDINGS = [
    "shutdown", "global_shutdown", "flush", "global_flush", "atexit", "recording_first", "sys_exit",
    "exception", "exception_global", "sigterm", "sigterm_handler", "threads",
]
# `devtrace run` exits with the program's code, 128 + N for a program killed by signal N.
EXIT_CODES = {"sys_exit": 3, "exception": 1, "exception_global": 1, "sigterm": 143, "sigterm_handler": 143}
# The endings at which the flight recorder delivers its window (the others are clean exits)...
FLIGHT_DELIVERS = {"flush", "global_flush", "exception", "exception_global", "sigterm"}
# ... and those at which `devtrace run --record` recovers it from the ring file the process left:
# it ended with os._exit, or it had shut down the provider the window goes through (devtrace's,
# under `devtrace run`) before it failed, which the recorder says on stderr.
FLIGHT_RECOVERED = {"flush", "global_flush", "exception_global"}
ENDINGS_APP = APP_DIR / "app" / "endings.py"
FIB_LINE = next(i for i, line in enumerate(ENDINGS_APP.read_text().splitlines(), 1) if line.startswith("def fib("))
# A plan as `devtrace plan` stores it (DATA/plans/ID.json), naming the recursive fib.
PLAN = {
    "id": "fibplan", "created_unix_nano": 1, "operation": "compute", "threshold_ms": 1.0, "depth": 1,
    "roots": [str(APP_DIR)],
    "blind_spot": {"runs": 1, "own_share": 1.0, "own_ms_per_run": 1.0, "duration_ms_per_run": 1.0},
    "functions": [{"via": "", "recursive": True, "module": "app.endings", "qualname": "fib", "file": str(ENDINGS_APP), "line": FIB_LINE, "depth": 0}],
    "notes": [],
}


@pytest.fixture(params=[p for p in os.environ.get("DEVTRACE_NATIVE_PYTHONS", "").split(":") if p] or ["none"])
def python(request) -> str:
    """Each CPython 3.12+ scripts/test built the devtrace package for."""
    if request.param == "none":
        message = "DEVTRACE_NATIVE_PYTHONS names no CPython 3.12+ with the devtrace package built (scripts/test sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return request.param


@pytest.fixture(scope="module", autouse=True)
def other_core_busy():
    """The machine's other core kept busy: the recorder's drainer gets no core of its own."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    yield
    busy.kill()
    busy.wait()


def run_ending(store, python: str, mode: str, ending: str) -> CliResult:
    flags: list[str] = []
    if mode == "run --plan":
        (store.data_dir / "plans").mkdir(parents=True, exist_ok=True)
        (store.data_dir / "plans" / "fibplan.json").write_text(json.dumps(PLAN))
        flags = ["--plan", "fibplan"]
    elif mode == "run --record":
        flags = ["--record"]
    started = mode if mode in ("autotrace", "record_calls") else "none"
    argv = ["--data", str(store.data_dir), "run", *flags, "--", python, "-m", "app.endings", started, ending, str(N)]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


def fib_calls_kept(store, fib: str = "app.endings.fib") -> tuple[int, int]:
    """(calls of `fib` in the store's traces, flight windows written)."""
    calls = windows = 0
    for listed in store.ls():
        for span in store.show(listed["trace_id"])["spans"]:
            attributes = span["attributes"]
            windows += span["name"] == "devtrace.flight_window"
            calls += span["name"] == fib
            counted = zip(attributes.get("devtrace.calls.function") or [], attributes.get("devtrace.calls.count") or [])
            calls += sum(int(count) for function, count in counted if function == fib)
    return calls, windows


def calls_made(result: CliResult, ending: str, under_devtrace_run: bool = True) -> int:
    """How many fib calls the program made, once its exit was checked to be the ending's."""
    # SIGTERM with its default disposition still kills the process (after delivering).
    if under_devtrace_run:
        assert result.returncode == EXIT_CODES.get(ending, 0), result.describe()
        assert ("was killed by signal 15" in result.stderr) == (ending == "sigterm"), result.describe()
    else:
        assert result.returncode == (-15 if ending == "sigterm" else EXIT_CODES.get(ending, 0)), result.describe()
    lines = [line for line in result.stdout.splitlines() if line.startswith("calls ")]
    assert lines, result.describe()
    return int(lines[0].split()[1])


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("mode", ["autotrace", "record_calls", "run --plan"])
def test_every_recorded_call_reaches_the_trace_however_the_program_ends(store, python, mode, ending):
    rings_before = record_rings()
    result = run_ending(store, python, mode, ending)
    made = calls_made(result, ending)
    assert made == (3 if ending == "threads" else 1) * (2 * 28657 - 1)  # fib(22) makes 2·F(23) − 1 calls
    kept, _ = fib_calls_kept(store)
    assert kept == made, result.describe()
    assert "could not be delivered" not in result.stderr, result.describe()
    if mode == "run --plan":
        # The run removes the ring file a program that flushed then `os._exit`ed left, or,
        # when a call in it was not yet delivered, keeps it and says so.
        named = re.findall(r"--plan: process \d+ .* its file is kept: `devtrace recover (\S+)`", result.stderr)
        assert record_rings() - rings_before == set(named), result.describe()


def record_rings() -> set[str]:
    """The lossless recordings' ring files where a default one goes."""
    places = {"/dev/shm", tempfile.gettempdir()}
    return {str(path) for place in places for path in Path(place).glob("devtrace-record-*.ring")}


@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("mode", ["autotrace", "record_calls"])
def test_a_program_run_as_is_exporting_to_devtrace_serve_loses_no_recorded_call(server, python, mode, ending):
    """Without `devtrace run`: the program's own provider is the one the recorder hands its
    spans to, exporting over OTLP/HTTP to `devtrace serve` (OTEL_EXPORTER_OTLP_ENDPOINT)."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=server.http_endpoint, **server.otlp_env())
    argv = [python, "-m", "app.endings", mode, ending, str(N)]
    proc = subprocess.run(argv, cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    made = calls_made(result, ending, under_devtrace_run=False)
    kept, _ = fib_calls_kept(server)
    assert kept == made, result.describe()
    assert "could not be delivered" not in result.stderr, result.describe()


@pytest.mark.parametrize("ending", ENDINGS)
def test_the_flight_recorder_delivers_its_window_when_the_program_fails_and_nothing_at_a_chosen_exit(store, python, ending):
    result = run_ending(store, python, "run --record", ending)
    made = calls_made(result, ending)
    kept, windows = fib_calls_kept(store)
    if ending in FLIGHT_DELIVERS:
        assert (windows, kept) == (1, made), result.describe()
        recovered = "ended without writing its window; recovered its last" in result.stderr
        assert recovered == (ending in FLIGHT_RECOVERED), result.describe()
    else:
        assert (windows, kept) == (0, 0), result.describe()
    undelivered = [line for line in result.stderr.splitlines() if "could not be delivered" in line]
    if ending == "exception_global":
        assert len(undelivered) == 1, result.describe()
        assert undelivered[0].startswith(
            "devtrace: the flight recorder's window (unhandled exception) could not be delivered to the tracer provider:"
            " the program had shut the tracer provider down; its ring file "
        ), result.describe()
    else:
        assert undelivered == [], result.describe()


@pytest.mark.parametrize("ending", ["ok", "exception"])
def test_a_program_run_by_opentelemetry_instrument_is_the_one_recorded(store, python, ending):
    """Zero-code instrumentation (`opentelemetry-instrument python …`): its sitecustomize hides
    devtrace's, and its launcher execs the program. The program's spans continue the run's
    trace, and the flight recorder records the program — started by the instrumentation's
    pre-instrument entry point — not the launcher, whose ring would be left at the exec."""
    instrument = Path(python).parent / "opentelemetry-instrument"
    assert instrument.exists(), f"{instrument}: sdk/python/requirements-native.txt installs it"
    rings_before = record_rings()
    argv = ["--data", str(store.data_dir), "run", "--record", "--", str(instrument), "--traces_exporter", "otlp",
            "--metrics_exporter", "none", "--logs_exporter", "none", python, "-m", "app.zero_code", ending, str(N)]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    made = calls_made(result, "exception" if ending == "exception" else "shutdown")
    assert "of their own" not in result.stderr and "ended without writing its window" not in result.stderr, result.describe()
    [listed] = store.ls()
    names = [span["name"] for span in store.show(listed["trace_id"])["spans"]]
    assert "compute" in names, result.describe()
    kept, windows = fib_calls_kept(store, "app.zero_code.fib")
    assert (windows, kept) == ((1, made) if ending == "exception" else (0, 0)), result.describe()
    assert not [name for name in names if name.startswith("opentelemetry-instrument.")], names[:20]
    assert record_rings() == rings_before, result.describe()


KILLED_MID_RECORDING = """
import os, sys, time
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
import devtrace.recorder as recorder

def step(n):
    return n + 1

def serve_forever():
    while True:
        time.sleep(0.05)

trace.set_tracer_provider(TracerProvider())
recorder.record_calls("__main__", threshold_ms=0)
for n in range(1000):
    step(n)
time.sleep(0.3)  # the live reader reads (and delivers) every step: only the server is left
print("recording", flush=True)
serve_forever()
"""


FLUSH_IN_HANDLER = """
import os
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
import devtrace.recorder as recorder

def step(n):
    return n + 1

def handler():
    for n in range(100):
        step(n)
    trace.get_tracer_provider().force_flush()
    os._exit(0)

trace.set_tracer_provider(TracerProvider())
recorder.record_calls("__main__", threshold_ms=0)
handler()
"""


def test_a_recorded_handler_that_flushes_and_exits_itself_is_kept_open(python, tmp_path, devtrace_bin):
    """A serverless-style handler, itself recorded, flushes then calls `os._exit`: the handler
    never returned, so its call was never delivered. Its file is kept (the next recording's
    sweep leaves it), and `devtrace recover` writes the handler open, with its hundred steps."""
    proc = subprocess.Popen([python, "-c", FLUSH_IN_HANDLER], env=clean_env(), stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    ring = f"/dev/shm/devtrace-record-{proc.pid}.ring"
    try:
        assert os.path.exists(ring), "a call never delivered keeps its file"
        data = tmp_path / "recovered"
        recover = subprocess.run([str(devtrace_bin), "--data", str(data), "recover", ring], env=clean_env(), capture_output=True, text=True, timeout=120)
        trace_id = re.search(r"into trace ([0-9a-f]{32})", recover.stdout)
        assert recover.returncode == 0 and trace_id, recover.stdout + recover.stderr
        shown = subprocess.run([str(devtrace_bin), "--data", str(data), "show", trace_id.group(1), "--json"], env=clean_env(), capture_output=True, text=True, timeout=120)
        spans = json.loads(shown.stdout)["spans"]
        [handler] = [s for s in spans if s["name"] == "__main__.handler"]
        assert handler["attributes"]["devtrace.recorder.open"] is True, handler
        assert len([s for s in spans if s["name"] == "__main__.step"]) == 100
    finally:
        if os.path.exists(ring):
            os.remove(ring)


def test_a_ring_file_left_with_nothing_undelivered_is_removed_by_the_next_recording(server, python, tmp_path):
    """A program that flushes then `os._exit`s never stops its recording, so its ring file
    stays in /dev/shm, holding its size of memory. Every call in it was delivered, so the next
    recording removes it; the file of a process SIGKILLed inside a call — its start read by the
    live reader long before, its end never written — holds a call nobody delivered, and is left
    for `devtrace recover`, which writes it, open at the kill."""
    env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=server.http_endpoint, **server.otlp_env())

    def flush_and_exit() -> str:
        proc = subprocess.Popen([python, "-m", "app.endings", "record_calls", "flush", "15"], cwd=APP_DIR, env=env, stderr=subprocess.PIPE, text=True)
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        return f"/dev/shm/devtrace-record-{proc.pid}.ring"

    killed = subprocess.Popen([python, "-c", KILLED_MID_RECORDING], env=env, stdout=subprocess.PIPE, text=True)
    killed_ring = f"/dev/shm/devtrace-record-{killed.pid}.ring"
    second = ""
    try:
        assert killed.stdout.readline() == "recording\n"
        time.sleep(0.5)  # serving, as far as anyone can tell, for half a second
        killed.kill()
        killed.wait()
        first = flush_and_exit()
        assert os.path.exists(first), "the program ended without stopping its recording: its file stays"
        second = flush_and_exit()
        assert not os.path.exists(first), "the next recording removes a file with nothing undelivered"
        assert os.path.exists(second)
        assert os.path.exists(killed_ring), "a file with undelivered calls is kept for `devtrace recover`"
        data = tmp_path / "recovered"
        recover = subprocess.run([str(server.bin), "--data", str(data), "recover", killed_ring], env=clean_env(), capture_output=True, text=True, timeout=120)
        trace_id = re.search(r"into trace ([0-9a-f]{32})", recover.stdout)
        assert recover.returncode == 0 and trace_id, recover.stdout + recover.stderr
        shown = subprocess.run([str(server.bin), "--data", str(data), "show", trace_id.group(1), "--json"], env=clean_env(), capture_output=True, text=True, timeout=120)
        [serving] = [s for s in json.loads(shown.stdout)["spans"] if s["name"] == "__main__.serve_forever"]
        assert serving["attributes"]["devtrace.recorder.open"] is True, serving
        # It ran until the kill: at least until the recorder's last heartbeat, not its start.
        assert serving["duration_ns"] >= 400_000_000, serving
    finally:
        for ring in (killed_ring, second):
            if ring and os.path.exists(ring):
                os.remove(ring)
