"""Fixtures for the end-to-end tests: the devtrace binary, a fresh store, a running server.

The binary is target/debug/devtrace under the repository root, or $DEVTRACE_BIN.
scripts/test builds it (and target/debug/otlp-rust-client) before running these tests.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from harness import REPO_ROOT, Store, Tmux, _binary, start_server, start_team_server, stop_server


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
