"""Coding agents' own OpenTelemetry as live sessions: the real Claude Code, Codex CLI and
Gemini CLI (installed from their npm packages into tests/agents by scripts/test), configured by
`devtrace agent-setup`, exporting to a running `devtrace serve`.

A real model cannot run here, so each agent talks to a local scripted model server speaking its
provider's API (tests/e2e/scripted_model.py: Anthropic Messages, OpenAI Responses, Gemini). The
script is a short task with a failing command the model asks to run three times; before it
lets the agent finish, the test requires the session to be visible in devtrace with its tool
calls, tokens and the retry-loop finding: the session appears while the agent is still running.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import REPO_ROOT, Server, clean_env
from scripted_model import Script, ScriptedModel, Usage

AGENTS_DIR = REPO_ROOT / "tests" / "agents"
BIN = AGENTS_DIR / "node_modules" / ".bin"
COMMAND = "sh -c 'echo build failed: missing config.toml >&2; exit 2'"
PROMPT = "Run the check and fix the build"
LIVE_TIMEOUT_S = 60
AGENT_TIMEOUT_S = 180


def agent_binary(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        pytest.fail(
            f"{path} is missing: scripts/test installs the agent CLIs (npm ci in {AGENTS_DIR})"
        )
    return path


def setup(server: Server, agent: str, *extra: str) -> dict:
    """`devtrace agent-setup AGENT --print --json` pointed at this server."""
    return server.json(
        "agent-setup", agent, "--print", "--json", "--endpoint", server.http_endpoint, *extra
    )


def base_env(home: Path) -> dict[str, str]:
    """A bare environment: nothing of the developer's own agent configuration leaks in."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "NO_COLOR": "1",
    }


class AgentRun:
    """An agent process running in the background, its output kept."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path):
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout = ""
        self.stderr = ""

    def finish(self) -> int:
        try:
            self.stdout, self.stderr = self.proc.communicate(timeout=AGENT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.stdout, self.stderr = self.proc.communicate()
            pytest.fail(f"the agent did not finish within {AGENT_TIMEOUT_S}s\n{self.describe()}")
        return self.proc.returncode

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def describe(self) -> str:
        return f"--- agent stdout ---\n{self.stdout[-3000:]}\n--- agent stderr ---\n{self.stderr[-3000:]}"


def wait_for_live_session(server: Server, agent: str, model: ScriptedModel, run: AgentRun) -> dict:
    """Polls devtrace until the agent's session shows three failed calls of the command and
    the retry-loop finding, while the agent waits for its last answer; returns the overview."""
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    last = None
    while time.monotonic() < deadline:
        if run.proc.poll() is not None:
            run.finish()
            pytest.fail(f"{agent} exited {run.proc.returncode} before its last answer\n{run.describe()}")
        sessions = server.json("sessions", "--agent", agent, "--json")
        if sessions:
            last = server.json("session", "show", sessions[0]["trace_id"], "--json")
            failed = [
                e for e in last["timeline"]
                if e["kind"] == "tool" and e.get("command") == COMMAND and e["outcome"] == "failed"
            ]  # fmt: skip
            retry = [f for f in last["findings"] if f["kind"] == "retry_loop"]
            if len(failed) == 3 and retry:
                assert model.held, "the session must be seen while the agent still waits"
                assert run.proc.poll() is None, "the agent is still running"
                return last
        time.sleep(0.25)
    pytest.fail(
        f"{agent}'s session did not show 3 failed `{COMMAND}` calls and a retry loop within "
        f"{LIVE_TIMEOUT_S}s; last overview: {json.dumps(last)[:3000]}\n"
        f"model requests: {[(r.path, r.answer) for r in model.calls()]}\n{server.log_tail()}"
    )


def watch_events(server: Server, *extra: str, seconds: int = 3) -> list[dict]:
    """`devtrace watch --plain --json` on the server's store for a few seconds: its events."""
    result = server.cli("watch", "--plain", "--json", "--exit-after", f"{seconds}s", *extra)
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_watch(server: Server, overview: dict, agent: str) -> None:
    """The live session as `devtrace watch --plain` shows it (the live query layer): in progress,
    its three failed calls, and the retry-loop finding on it."""
    trace_id = overview["session"]["trace_id"]
    events = watch_events(server)
    sessions = [e for e in events if e["event"] == "session" and e["trace_id"] == trace_id]
    assert sessions, f"watch --plain did not show {agent}'s session {trace_id}: {events}"
    latest = sessions[-1]
    assert latest["agent"] == agent
    assert latest["title"] == PROMPT
    assert latest["tools_failed"] == 3, latest
    assert latest["last"]["subject"] == COMMAND and latest["last"]["outcome"] == "failed", latest
    finding = next(
        e for e in events
        if e["event"] == "finding" and e["kind"] == "retry_loop" and e["session_trace_id"] == trace_id
    )  # fmt: skip
    assert finding["evidence"]["subject"] == COMMAND, finding


def check_live(overview: dict, agent: str) -> None:
    session = overview["session"]
    assert session["agent"] == agent
    assert "telemetry" in overview["sources"]
    assert session["title"] == PROMPT, "the prompt was sent (--prompts) and titles the session"
    assert session["turns"] == 1
    assert session["errors"] >= 3
    finding = next(f for f in overview["findings"] if f["kind"] == "retry_loop")
    assert finding["numbers"]["failures"] == 3, finding
    assert COMMAND in finding["title"], finding["title"]


def test_claude_code_session_appears_live_from_its_own_telemetry(server: Server, tmp_path: Path):
    claude = agent_binary("claude")
    config = setup(server, "claude-code", "--prompts")
    env_settings = {s["name"]: s["value"] for s in config["settings"]}
    assert env_settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == server.http_endpoint
    assert env_settings["OTEL_LOG_USER_PROMPTS"] == "1"
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    hold = threading.Event()
    usage = Usage(input=1200, output=40, cache_read=800, cache_write=100)
    with ScriptedModel(Script(command=COMMAND, usage=usage, hold=hold)) as model:
        env = base_env(home) | env_settings | {
            "ANTHROPIC_BASE_URL": model.url,
            "ANTHROPIC_API_KEY": "sk-ant-scripted-model-test",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            # Metrics every second, so the cost shows before the end too.
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
        }  # fmt: skip
        run = AgentRun(
            [str(claude), "-p", PROMPT, "--allowedTools", "Bash", "--output-format", "json"],
            env,
            work,
        )
        try:
            live = wait_for_live_session(server, "claude-code", model, run)
            check_live(live, "claude-code")
            check_watch(server, live, "claude-code")
            assert run.proc.poll() is None, "watch saw the session while the agent still ran"
            hold.set()
            assert run.finish() == 0, run.describe()
        finally:
            hold.set()
            run.stop()
    result = json.loads(run.stdout)
    session_id = result["session_id"]
    # After the agent's exit (it flushes its exporters), the whole session and its metrics.
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    while True:
        overview = server.json("session", "show", session_id, "--json")
        usage_now = overview["session"].get("usage") or {}
        if overview["session"]["input_tokens"] == 4 * 2100 and usage_now.get("cost_usd"):
            break
        assert time.monotonic() < deadline, json.dumps(overview)[:3000]
        time.sleep(0.25)
    session = overview["session"]
    assert session["session_id"] == session_id, "the trace is the session's own id"
    # Four model calls of 1,200 fresh + 800 cache-read + 100 cache-write in, 40 out each.
    assert (session["input_tokens"], session["output_tokens"], session["cache_read_tokens"]) == (8400, 160, 3200)
    assert usage_now["input_tokens"] == 8400 and usage_now["output_tokens"] == 160
    assert usage_now["cost_usd"] == pytest.approx(result["total_cost_usd"])
    calls = [e for e in overview["timeline"] if e["kind"] == "tool"]
    assert [c["command"] for c in calls] == [COMMAND] * 3
    reply = [e for e in overview["timeline"] if e["kind"] == "message"]
    assert reply and reply[-1]["text"] == Script(command=COMMAND).final_text
    # Every model request the agent made was answered by the scripted server.
    assert len(model.calls("tool")) == 3


def test_codex_session_appears_live_from_its_own_telemetry(server: Server, tmp_path: Path):
    codex = agent_binary("codex")
    home, work = tmp_path / "home", tmp_path / "work"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    hold = threading.Event()
    usage = Usage(input=1200, output=40, cache_read=800, cache_write=0)
    with ScriptedModel(Script(command=COMMAND, usage=usage, hold=hold)) as model:
        config = codex_home / "config.toml"
        config.write_text(
            'model = "gpt-scripted"\nmodel_provider = "scripted"\n\n'
            "[model_providers.scripted]\n"
            'name = "scripted"\n'
            f'base_url = "{model.url}/v1"\n'
            'env_key = "SCRIPTED_API_KEY"\n'
            'wire_api = "responses"\n'
        )
        # agent-setup appends its [otel] table to the Codex config, as a user would run it.
        server.cli(
            "agent-setup", "codex", "--prompts", "--yes", "--file", str(config),
            "--endpoint", server.http_endpoint,
        )  # fmt: skip
        text = config.read_text()
        assert text.startswith('model = "gpt-scripted"'), "the user's settings stay first"
        assert f'endpoint = "{server.http_endpoint}/v1/logs"' in text
        env = base_env(home) | {"CODEX_HOME": str(codex_home), "SCRIPTED_API_KEY": "sk-scripted"}
        run = AgentRun(
            [
                str(codex), "exec", "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox", PROMPT,
            ],
            env,
            work,
        )  # fmt: skip
        try:
            live = wait_for_live_session(server, "codex", model, run)
            check_live(live, "codex")
            check_watch(server, live, "codex")
            assert run.proc.poll() is None, "watch saw the session while the agent still ran"
            hold.set()
            assert run.finish() == 0, run.describe()
        finally:
            hold.set()
            run.stop()
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    while True:
        sessions = server.json("sessions", "--agent", "codex", "--json")
        if sessions and sessions[0]["input_tokens"] == 4 * 2000:
            break
        assert time.monotonic() < deadline, json.dumps(sessions)[:2000]
        time.sleep(0.25)
    session = sessions[0]
    # Four responses of 2,000 input (800 cached) and 40 output tokens.
    assert (session["output_tokens"], session["cache_read_tokens"]) == (160, 3200)
    overview = server.json("session", "show", session["trace_id"], "--json")
    calls = [e for e in overview["timeline"] if e["kind"] == "tool"]
    assert [(c["command"], c["exit_code"]) for c in calls] == [(COMMAND, 2)] * 3
    # The rollout Codex wrote, imported afterwards, lands on the same session and calls.
    imported = server.json("import", "codex", str(codex_home / "sessions"), "--json")
    assert imported["sessions"] == 1, imported
    after = server.json("session", "show", session["trace_id"], "--json")
    assert after["session"]["tool_calls"] == 3
    assert after["session"]["turns"] == 1
    assert after["session"]["input_tokens"] == 4 * 2000
    assert after["session"]["project"] == str(work)
    assert set(after["sources"]) >= {"transcript", "telemetry"}


def test_gemini_cli_session_appears_live_from_its_own_telemetry(server: Server, tmp_path: Path):
    gemini = agent_binary("gemini")
    home, work = tmp_path / "home", tmp_path / "work"
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True)
    work.mkdir()
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    # The user's own settings, which agent-setup must keep.
    settings.write_text(json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}, indent=2))
    server.cli(
        "agent-setup", "gemini", "--prompts", "--yes", "--file", str(settings),
        "--endpoint", server.http_endpoint,
    )  # fmt: skip
    written = json.loads(settings.read_text())
    assert list(written) == ["security", "telemetry"]
    assert written["telemetry"]["otlpEndpoint"] == server.http_endpoint
    hold = threading.Event()
    usage = Usage(input=1200, output=40, cache_read=800, cache_write=0)
    with ScriptedModel(Script(command=COMMAND, usage=usage, hold=hold)) as model:
        env = base_env(home) | {
            "GEMINI_API_KEY": "scripted-model-test",
            "GOOGLE_GEMINI_BASE_URL": model.url,
            "GEMINI_CLI_TRUST_WORKSPACE": "true",
        }  # fmt: skip
        run = AgentRun(
            ["node", str(AGENTS_DIR / "node_modules/@google/gemini-cli/bundle/gemini.js"),
             "-p", PROMPT, "--yolo", "--output-format", "json"],
            env,
            work,
        )  # fmt: skip
        try:
            live = wait_for_live_session(server, "gemini-cli", model, run)
            check_live(live, "gemini-cli")
            check_watch(server, live, "gemini-cli")
            assert run.proc.poll() is None, "watch saw the session while the agent still ran"
            hold.set()
            assert run.finish() == 0, run.describe()
        finally:
            hold.set()
            run.stop()
    result = json.loads(run.stdout)
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    while True:
        overview = server.json("session", "show", result["session_id"], "--json")
        usage_now = overview["session"].get("usage") or {}
        if usage_now.get("output_tokens") == sum(
            m["tokens"]["candidates"] for m in result["stats"]["models"].values()
        ):
            break
        assert time.monotonic() < deadline, json.dumps(overview)[:3000]
        time.sleep(0.25)
    session = overview["session"]
    calls = [e for e in overview["timeline"] if e["kind"] == "tool"]
    assert [(c["command"], c["exit_code"]) for c in calls] == [(COMMAND, 2)] * 3
    # Gemini CLI's own count of tokens (its JSON output) is what devtrace has.
    prompt_tokens = sum(m["tokens"]["prompt"] for m in result["stats"]["models"].values())
    assert session["input_tokens"] == prompt_tokens
    assert usage_now["input_tokens"] == prompt_tokens


FIXTURES = REPO_ROOT / "crates" / "devtrace-ingest" / "tests" / "fixtures" / "native"


def claude_code_events_now(session_id: str) -> bytes:
    """Claude Code 2.1's events as OTLP/JSON, written to match its documented schema (the mapping
    tests' fixture: a prompt, then the same command failing three times and a rejected Write),
    moved to a fresh session id and to the last seconds, so the session is in progress."""
    doc = json.loads((FIXTURES / "claude-code-2.1-events.json").read_text())
    records = [r for rl in doc["resourceLogs"] for sl in rl["scopeLogs"] for r in sl["logRecords"]]
    shift = time.time_ns() - 2_000_000_000 - min(int(r["timeUnixNano"]) for r in records)
    for record in records:
        for key in ("timeUnixNano", "observedTimeUnixNano"):
            record[key] = str(int(record[key]) + shift)
        for attr in record["attributes"]:
            if attr["key"] == "session.id":
                attr["value"] = {"stringValue": session_id}
            elif attr["key"] == "event.timestamp":
                moment = int(record["timeUnixNano"]) / 1e9
                attr["value"] = {
                    "stringValue": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment))
                    + f".{int(moment * 1000) % 1000:03d}Z"
                }
    return json.dumps(doc).encode()


def test_a_session_from_claude_codes_documented_events_shows_live_in_watch(server: Server):
    """No agent CLI: OTLP payloads matching Claude Code's documented schema, posted as its exporter
    does, show in `devtrace watch --plain` (local store and --server) with the retry loop."""
    session_id = "6f1c2a4e-0b7d-4c55-9e31-2d8f5a6b7c90"
    trace_id = session_id.replace("-", "")
    watch = subprocess.Popen(
        [str(server.bin), "--data", str(server.data_dir), "watch", "--plain", "--json", "--exit-after", "5s"],
        env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.8)
    status, _, body = server.post(
        "/v1/logs", claude_code_events_now(session_id), {"content-type": "application/json"}
    )
    assert status == 200, body
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    session = [e for e in events if e["event"] == "session" and e["trace_id"] == trace_id]
    assert session, out
    assert (session[-1]["agent"], session[-1]["title"]) == ("claude-code", "Run the check and fix the build")
    # Three failed runs of the command and a rejected Write, as in the events.
    assert (session[-1]["tools_ok"], session[-1]["tools_failed"]) == (0, 4), session[-1]
    assert (session[-1]["input_tokens"], session[-1]["output_tokens"]) == (8400, 160)
    finding = next(e for e in events if e["event"] == "finding" and e["session_trace_id"] == trace_id)
    assert finding["kind"] == "retry_loop"
    assert finding["evidence"]["subject"] == COMMAND, finding

    # The same through a server's API (the live REST feed a remote watch reads).
    remote = subprocess.run(
        [str(server.bin), "watch", "--plain", "--exit-after", "3s", "--server", f"http://{server.api}"],
        env=clean_env(), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert any(
        f" session {trace_id[:8]} " in line and '"Run the check and fix the build"' in line
        and "tools 0 ok 4 failed" in line
        for line in remote.stdout.splitlines()
    ), remote.stdout  # fmt: skip
    assert any(f" finding retry_loop session {trace_id[:8]}: " in line for line in remote.stdout.splitlines()), remote.stdout
