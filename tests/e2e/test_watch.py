"""`devtrace watch` in a real terminal (tmux), and `devtrace import claude-code --follow`.

tmux runs `devtrace watch` against a running `devtrace serve`; the test sends a trace with the
real Python OpenTelemetry SDK (senders/python_sender.py) and appends, line by line, a Claude
Code transcript (written here in Claude Code's format) whose agent runs the same failing
command four times, while `devtrace import claude-code --follow` tails it. `tmux capture-pane`
must show the trace, the session and the retry-loop finding within a few seconds; keys open the
waterfall and go back; a resize to 80x24 keeps every pane; `q` restores the terminal.

tmux is Debian's package: scripts/test and .ci/run install it when missing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harness import REPO_ROOT, Server, Tmux, clean_env

SENDER = REPO_ROOT / "tests" / "e2e" / "senders" / "python_sender.py"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def retry_loop_transcript(session_id: str, cwd: str) -> list[str]:
    """A Claude Code transcript: a prompt, then `npm test` failing four times in a row with
    nothing changed in between (a retry loop), timestamped from now."""
    start = datetime.now(timezone.utc) - timedelta(seconds=30)
    common = {
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "1.0.108",
        "gitBranch": "main",
    }
    lines = []
    parent = None
    step = 0

    def add(record: dict) -> None:
        nonlocal parent, step
        step += 1
        record_uuid = f"00000000-0000-4000-8000-{step:012d}"
        lines.append(
            json.dumps(
                {
                    **record,
                    "parentUuid": parent,
                    **common,
                    "uuid": record_uuid,
                    "timestamp": iso(start + timedelta(seconds=2 * step)),
                }
            )
        )
        parent = record_uuid

    add({"type": "user", "message": {"role": "user", "content": "make the checkout tests pass"}})
    for attempt in range(1, 5):
        tool_id = f"toolu_watch_{attempt:04d}"
        add(
            {
                "type": "assistant",
                "requestId": f"req_{attempt}",
                "message": {
                    "id": f"msg_watch_{attempt:04d}",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-20250514",
                    "content": [
                        {"type": "tool_use", "id": tool_id, "name": "Bash",
                         "input": {"command": "npm test", "description": "run the tests"}}
                    ],
                    "usage": {"input_tokens": 12, "cache_read_input_tokens": 18000 + 400 * attempt,
                              "output_tokens": 40},
                },
            }
        )
        add(
            {
                "type": "user",
                "message": {
                    "role": "user",
                    "content": [{"tool_use_id": tool_id, "type": "tool_result",
                                 "content": 'npm ERR! Missing script: "test"\nExit code 1', "is_error": True}],
                },
                "toolUseResult": 'Error: npm ERR! Missing script: "test"\nExit code 1',
            }
        )
    return lines


def test_watch_shows_a_trace_a_live_session_and_its_retry_loop(server: Server, tmux: Tmux, tmp_path: Path):
    projects = tmp_path / "projects" / "-home-dev-checkout"
    projects.mkdir(parents=True)
    transcript = projects / f"{uuid.uuid4()}.jsonl"
    transcript.write_text("")
    follow = subprocess.Popen(
        [str(server.bin), "--data", str(server.data_dir), "import", "claude-code", "--follow", str(projects.parent)],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        # In a shell that outlives it, so the terminal it leaves behind can be inspected.
        tmux.run("new-session", "-d", "-s", "watch", "-x", "200", "-y", "60",
                 f"env -u NO_COLOR TERM=xterm-256color {server.bin} --data {server.data_dir} watch;"
                 " echo watch-exited-$?; exec sleep 600")
        tmux.wait_for("devtrace watch", "Traces (0)")

        # A trace from the real Python SDK over OTLP/gRPC.
        sent = subprocess.run(
            [sys.executable, str(SENDER)],
            env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=server.grpc_endpoint, OTEL_SERVICE_NAME="py-watch",
                          OTEL_EXPORTER_OTLP_PROTOCOL="grpc"),
            capture_output=True, text=True, timeout=60, check=True,
        )
        trace_id = sent.stdout.strip()
        assert len(trace_id) == 32
        # The transcript, a line at a time, as Claude Code writes it.
        with transcript.open("a") as out:
            for line in retry_loop_transcript(str(uuid.uuid4()), "/home/dev/checkout"):
                out.write(line + "\n")
                out.flush()
                time.sleep(0.05)

        screen = tmux.wait_for("handle-request", "py-watch", "make the checkout tests pass", "retry_loop",
                               "tools 0✓ 4✗", timeout=20)
        assert "\"npm test\" failed 4 times in a row" in screen, screen

        # Enter on the trace (the traces pane has the focus): its waterfall, then back.
        tmux.run("send-keys", "-t", "watch", "Enter")
        screen = tmux.wait_for("◆ critical path", trace_id)
        assert "load-template" in screen, screen
        tmux.run("send-keys", "-t", "watch", "Escape")
        tmux.wait_for("Traces (1)", "Sessions in progress (1)")

        # 80x24: every pane still there, nothing wider than the terminal.
        tmux.run("resize-window", "-t", "watch", "-x", "80", "-y", "24")
        screen = tmux.wait_for("Traces (1)", "Sessions in progress (1)", "Findings as they fire")
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
        assert "handle-request" in screen, screen

        tmux.run("send-keys", "-t", "watch", "q")
        screen = tmux.wait_for("watch-exited-0", timeout=10)
        assert "Traces (" not in screen, "the dashboard was left on the screen"
        assert tmux.display("#{alternate_on}") == "0", "the alternate screen was left on"
        assert tmux.display("#{mouse_any_flag}") == "0", "mouse reporting was left on"
        assert tmux.display("#{cursor_flag}") == "1", "the cursor was left hidden"
    finally:
        follow.send_signal(signal.SIGTERM)
        follow.wait(timeout=10)
    assert follow.returncode == 0, follow.stderr.read() if follow.stderr else ""


def test_import_follow_ingests_new_lines_within_a_second_and_resumes_without_duplicates(store, tmp_path: Path):
    projects = tmp_path / "projects"
    projects.mkdir()
    transcript = projects / "session.jsonl"
    lines = retry_loop_transcript(str(uuid.uuid4()), "/home/dev/checkout")
    transcript.write_text("\n".join(lines[:3]) + "\n")

    def start():
        return subprocess.Popen(
            [str(store.bin), "--data", str(store.data_dir), "import", "claude-code", "--follow", str(projects)],
            env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )

    def tool_calls() -> int:
        result = store.cli("sessions", "--json", check=False)
        if result.returncode != 0:
            return 0  # the store is not created yet
        sessions = json.loads(result.stdout)
        return sessions[0]["tool_calls"] if sessions else 0

    def wait_for_tool_calls(n: int, within: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within:
            if tool_calls() == n:
                return time.monotonic() - started
            time.sleep(0.05)
        raise AssertionError(f"not {n} tool calls within {within} s (have {tool_calls()})")

    follow = start()
    try:
        wait_for_tool_calls(1, 10)
        # New lines land (how fast is measured by bench/watch-latency.py, not asserted here);
        # a half-written one waits for its newline.
        with transcript.open("a") as out:
            out.write(lines[3] + "\n" + lines[4] + "\n")
            out.flush()
            wait_for_tool_calls(2, 10)
            out.write(lines[5][:40])
            out.flush()
            time.sleep(0.6)
            assert tool_calls() == 2
            out.write(lines[5][40:] + "\n")
            out.flush()
            wait_for_tool_calls(3, 10)
    finally:
        follow.send_signal(signal.SIGINT)
        follow.wait(timeout=10)
    assert follow.returncode == 0
    # Restart over the same transcript, grown meanwhile: only the new lines, nothing twice.
    with transcript.open("a") as out:
        out.write("\n".join(lines[6:]) + "\n")
    follow = start()
    try:
        wait_for_tool_calls(4, 10)
        time.sleep(0.5)
    finally:
        follow.send_signal(signal.SIGTERM)
        follow.wait(timeout=10)
    sessions = store.json("sessions", "--json")
    assert len(sessions) == 1
    assert sessions[0]["tool_calls"] == 4 and sessions[0]["errors"] == 4
    assert sessions[0]["findings"] >= 1


def test_watch_plain_prints_one_line_per_event_and_needs_no_terminal(store, tmp_path: Path):
    projects = tmp_path / "projects"
    projects.mkdir()
    (projects / "s.jsonl").write_text("\n".join(retry_loop_transcript("plain-session", "/home/dev/p")) + "\n")
    watch = subprocess.Popen(
        [str(store.bin), "--data", str(store.data_dir), "watch", "--plain", "--exit-after", "4s"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.8)
    store.cli("import", "claude-code", str(projects))
    out, err = watch.communicate(timeout=20)
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"watching store {store.data_dir}"
    assert any(" session " in l and '"make the checkout tests pass"' in l and "tools 0 ok 4 failed" in l for l in lines), out
    assert any(" finding retry_loop session " in l and 'on Bash "npm test" failed' in l for l in lines), out

    # --json: the same events as JSON lines.
    watch = subprocess.run(
        [str(store.bin), "--data", str(store.data_dir), "watch", "--plain", "--json", "--exit-after", "3s"],
        env=clean_env(), capture_output=True, text=True, timeout=20,
    )
    events = [json.loads(line) for line in watch.stdout.splitlines()]
    session = next(e for e in events if e["event"] == "session")
    assert (session["title"], session["tools_ok"], session["tools_failed"]) == ("make the checkout tests pass", 0, 4)
    assert session["last"] == {"tool": "Bash", "subject": "npm test", "outcome": "failed", "exit_code": 1,
                               "error": 'npm ERR! Missing script: "test"'}
    finding = next(e for e in events if e["event"] == "finding")
    assert finding["kind"] == "retry_loop" and finding["session_trace_id"] == session["trace_id"]
    assert finding["evidence"]["subject"] == "npm test"

    # Without a terminal the dashboard says how to get lines instead.
    result = store.cli("watch", check=False)
    assert result.returncode == 1
    assert result.stderr == (
        "error: devtrace watch draws a live dashboard and needs a terminal (stdout is not one); "
        "for one line per event (logs, CI) use `devtrace watch --plain`\n"
    )


def test_watch_plain_reads_a_server_through_its_api(server: Server, tmp_path: Path):
    projects = tmp_path / "projects"
    projects.mkdir()
    (projects / "s.jsonl").write_text("\n".join(retry_loop_transcript("remote-session", "/home/dev/r")) + "\n")
    watch = subprocess.Popen(
        [str(server.bin), "watch", "--plain", "--exit-after", "5s", "--server", f"http://{server.api}"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(0.5)
    server.cli("import", "claude-code", str(projects))
    sent = subprocess.run(
        [sys.executable, str(SENDER)],
        env=clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=server.http_endpoint, OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
                      OTEL_SERVICE_NAME="py-remote"),
        capture_output=True, text=True, timeout=60, check=True,
    )
    trace_id = sent.stdout.strip()
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == f"watching server http://{server.api}"
    assert any(f" trace {trace_id[:8]} \"handle-request\" service \"py-remote\"" in l for l in lines), out
    assert any(" finding retry_loop session " in l for l in lines), out

    # Not a server address: a usage error naming it, as for every --server command (docs/cli.md).
    result = server.cli("watch", "--plain", "--server", "ftp://example", check=False)
    assert result.returncode == 2
    assert result.stderr == (
        "error: --server \"ftp://example\" is not a URL: write http://HOST:PORT or https://HOST:PORT "
        "(the server's API port, 4319 by default)\n\nUsage: devtrace watch [OPTIONS]\n\n"
        "For more information, try '--help'.\n"
    )


TOKEN_FIXTURE = REPO_ROOT / "crates/devtrace-cli/tests/fixtures/sessions/7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl"


def test_watch_shows_a_live_sessions_cache_breaks_batchable_calls_and_cost(store, tmp_path: Path):
    """Issue 25's findings fire live: the token fixture (a batchable run of reads, a break after
    an idle gap, one at a model switch), its times moved so it ends 20 s ago — in progress."""
    lines = [json.loads(line) for line in TOKEN_FIXTURE.read_text().splitlines() if line.strip()]
    parse = lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    last = max(parse(line["timestamp"]) for line in lines if "timestamp" in line)
    shift = datetime.now(timezone.utc) - timedelta(seconds=20) - last
    for line in lines:
        if "timestamp" in line:
            line["timestamp"] = iso(parse(line["timestamp"]) + shift)
    projects = tmp_path / "projects"
    projects.mkdir()
    (projects / TOKEN_FIXTURE.name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    store.cli("import", "claude-code", str(projects))
    watch = subprocess.run(
        [str(store.bin), "--data", str(store.data_dir), "watch", "--plain", "--json", "--exit-after", "3s"],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )
    assert watch.returncode == 0, watch.stderr
    events = [json.loads(line) for line in watch.stdout.splitlines()]
    session = next(e for e in events if e["event"] == "session")
    assert session["title"] == "Look around the parser and fix the overflow"
    # $0.558 at the built-in prices, as `devtrace sessions` prints it (sessions_tokens.rs).
    assert abs(session["cost"]["usd"] - 0.5576505) < 1e-9, session
    assert session["cost"]["prices"] == "built-in prices of 2025-11-24"
    findings = [e for e in events if e["event"] == "finding" and e["session_trace_id"] == session["trace_id"]]
    kinds = sorted(f["kind"] for f in findings)
    assert kinds == ["batchable_calls", "cache_break", "cache_break"], findings
    batchable = next(f for f in findings if f["kind"] == "batchable_calls")
    assert batchable["title"].startswith("4 requests in a row each made one independent read-only call"), batchable
