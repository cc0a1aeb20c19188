"""The CLI fits its output to a real terminal's width, asked of the terminal itself (the
TIOCGWINSZ ioctl), not only to $COLUMNS: `devtrace ls` in tmux panes 60 and 200 columns wide,
with no COLUMNS in the environment (docs/cli.md, "Width")."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from harness import REPO_ROOT

FIXTURE = REPO_ROOT / "crates" / "devtrace-cli" / "tests" / "fixtures" / "otlp" / "trace.json"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def ls_in_a_pane(devtrace_bin: Path, data: Path, columns: int) -> list[str]:
    """What `devtrace ls` shows in a detached tmux pane `columns` wide (the lines it printed)."""
    name = f"devtrace-width-{uuid.uuid4().hex[:8]}"
    done = data.parent / f"{name}.done"
    script = f"'{devtrace_bin}' --data '{data}' ls; touch '{done}'; sleep 30"
    # env -i: no COLUMNS or LINES, so the width can only come from the terminal; TZ for the
    # heading's zone.
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", str(columns), "-y", "20",
         "env", "-i", "TZ=UTC", "NO_COLOR=1", "sh", "-c", script],
        check=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", name],
            check=True, capture_output=True, text=True,
        ).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    return [line.rstrip() for line in screen.splitlines() if line.strip()]


def test_ls_fits_the_terminal_it_runs_in(devtrace_bin: Path, tmp_path: Path):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (scripts/test installs it: apt-get install tmux)")
    data = tmp_path / "data"
    subprocess.run([devtrace_bin, "--data", data, "import", FIXTURE], check=True,
                   capture_output=True)
    # Piped with no COLUMNS it would be 80 columns, with the START column: 60 came from the
    # terminal.
    narrow = ls_in_a_pane(devtrace_bin, data, 60)
    assert narrow == [
        "OPERATION         DURATION  TRACE ID",
        f"GET /orders/{{id}}  250.0 ms  {TRACE_ID}",
    ], narrow
    wide = ls_in_a_pane(devtrace_bin, data, 200)
    assert wide == [
        "START (UTC)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID",
        f"2023-11-14 22:13:20  GET /orders/{{id}}  orders   250.0 ms      1       0  {TRACE_ID}",
    ], wide
