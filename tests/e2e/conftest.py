"""Fixtures for the end-to-end tests: the devtrace binary, a fresh store, a running server.

The binary is target/debug/devtrace under the repository root, or $DEVTRACE_BIN.
scripts/test builds it (and target/debug/otlp-rust-client) before running these tests.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import tempfile
import uuid
import warnings
from pathlib import Path

import pytest

from harness import REPO_ROOT, Store, Tmux, _binary, start_server, start_team_server, stop_server


# What recordings leave in /dev/shm or the temporary directory when their process ends without
# stopping them: `devtrace-record-PID.ring`, `devtrace-flight-PID.ring`, a BEAM VM's
# `devtrace-beam-PID.ring`, a `devtrace run`'s `devtrace-beam-PID-…` or `devtrace-autotrace-PID-…`.
LEFT_BY_A_RECORDING = re.compile(r"devtrace-(?:record|flight|beam|autotrace)-(\d+)\b")
LEFTOVER_PLACES = sorted({Path("/dev/shm"), Path(tempfile.gettempdir())})


def _recordings_left() -> dict[Path, int]:
    """The files and directories recordings left, each with the process id in its name."""
    left = {}
    for place in LEFTOVER_PLACES:
        for path in place.glob("devtrace-*") if place.is_dir() else ():
            named = LEFT_BY_A_RECORDING.match(path.name)
            if named:
                left[path] = int(named.group(1))
    return left


@pytest.fixture(autouse=True)
def no_recording_left_behind(request):
    """A file a test's programs left in /dev/shm is removed once its process is gone: a program
    that started a lossless recording itself, flushed, then `os._exit`ed leaves its ring for the
    next recording to remove (by design), or keeps it for `devtrace recover` when a call in it
    was not yet delivered. Removed, it is neither a stranger in a later test's `devtrace
    recover` nor 16 MiB of memory held after the suite; each is named in a warning, so a test
    that leaves files is seen."""
    before = set(_recordings_left())
    yield
    for path, pid in _recordings_left().items():
        if path in before or Path(f"/proc/{pid}").exists():
            continue
        warnings.warn(f"{request.node.nodeid} left {path} (process {pid} is gone); removed")
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def devtrace_bin() -> Path:
    return _binary(
        "DEVTRACE_BIN",
        REPO_ROOT / "target" / "debug" / "devtrace",
        "run `cargo build -p devtrace-cli`",
    )


@pytest.fixture(scope="session")
def rust_client_bin() -> Path:
    return _binary(
        "OTLP_RUST_CLIENT_BIN",
        REPO_ROOT / "target" / "debug" / "otlp-rust-client",
        "run `cargo build -p devtrace-e2e-rust-client`",
    )


@pytest.fixture
def store(devtrace_bin: Path, tmp_path: Path) -> Store:
    """A fresh, empty data directory (no server)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return Store(bin=devtrace_bin, data_dir=data_dir)


@pytest.fixture
def server(devtrace_bin: Path, tmp_path: Path):
    """`devtrace serve` on ephemeral loopback ports with a fresh data directory; stopped with
    SIGTERM at teardown, which must end it with exit code 0 within 10 s."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_server(devtrace_bin, data_dir, tmp_path / "serve.log")
    yield srv
    stop_server(srv, signal.SIGTERM)


@pytest.fixture
def team_server(devtrace_bin: Path, tmp_path: Path):
    """`devtrace serve` on a fresh schema of the test PostgreSQL server, tokens required; its
    clients act in project "e2e" with an ingest+read token (`server.token`)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    srv = start_team_server(devtrace_bin, data_dir, tmp_path / "serve.log", tmp_path.name)
    yield srv
    stop_server(srv, signal.SIGTERM)


@pytest.fixture(params=["embedded", "postgres"])
def any_server(request):
    """The same test on the embedded store and on the PostgreSQL team store."""
    return request.getfixturevalue("server" if request.param == "embedded" else "team_server")


@pytest.fixture
def tmux(tmp_path: Path):
    """A tmux server of its own (a private socket), killed at teardown: `devtrace watch` in a
    real terminal."""
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed: scripts/test installs it (apt-get install tmux)")
    t = Tmux(f"devtrace-e2e-{uuid.uuid4().hex[:8]}")
    yield t
    subprocess.run(["tmux", "-L", t.socket, "kill-server"], capture_output=True, timeout=10)
