"""`devtrace run -- <command>` with real programs: a Python program using the OpenTelemetry SDK
configured only from the environment, a Rust program using opentelemetry-otlp, and shell
commands that emit nothing; with and without a running `devtrace serve`."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from harness import REPO_ROOT, SENDERS, Store, clean_env

CHILD = [sys.executable, str(SENDERS / "run_child.py")]


def devtrace_run(store: Store, command: list[str], *options: str, env: dict | None = None, tmp: Path | None = None):
    """Runs `devtrace --data D run [options] -- command`; returns (process, summary JSON)."""
    summary_path = (tmp or store.data_dir.parent) / "summary.json"
    if summary_path.exists():
        summary_path.unlink()
    argv = [str(store.bin), "--data", str(store.data_dir), "run", "--json", str(summary_path), *options, "--", *command]
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=clean_env(**(env or {})), capture_output=True, text=True, timeout=120)
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    return proc, summary


def run_span(doc: dict) -> dict:
    runs = [s for s in doc["spans"] if "devtrace.run.id" in s["attributes"]]
    assert runs, f"no run span in {doc['spans']}"
    return runs[0]


def test_a_python_child_that_follows_traceparent_is_a_child_of_the_run(store: Store):
    proc, summary = devtrace_run(store, CHILD, env={"FOLLOW_TRACEPARENT": "1"})
    assert proc.returncode == 0, proc.stderr
    # stdout is the child's, unchanged; devtrace's summary goes to stderr.
    assert proc.stdout == "child says hello\n"
    assert proc.stderr.startswith("child complains\n")
    assert "exited 0" in proc.stderr and "3 spans" in proc.stderr, proc.stderr
    assert summary["exit_code"] == 0 and summary["spans"] == 3

    doc = store.show(summary["trace_id"])
    run = run_span(doc)
    assert run["parent_span_id"] is None and run["depth"] == 0
    attrs = run["attributes"]
    assert attrs["devtrace.run.exit_code"] == 0
    assert attrs["devtrace.run.argv"] == CHILD
    assert attrs["devtrace.run.stdout.head"] == "child says hello\n"
    assert attrs["devtrace.run.stderr.head"] == "child complains\n"
    assert attrs["devtrace.run.cwd"] == str(REPO_ROOT)
    work = next(s for s in doc["spans"] if s["name"] == "work")
    assert work["parent_span_id"] == run["span_id"]
    assert work["service"] == Path(sys.executable).name, "OTEL_SERVICE_NAME defaults to the program name"
    assert work["resource"]["devtrace.run.id"] == summary["run_id"]
    assert sorted(s["name"] for s in doc["spans"]) == sorted([run["name"], "work", "step.load", "step.compute"])


def test_spans_of_an_sdk_that_ignores_traceparent_are_attached_by_resource(store: Store):
    proc, summary = devtrace_run(store, CHILD)
    assert proc.returncode == 0, proc.stderr
    run = run_span(store.show(summary["trace_id"]))
    attached = run["attributes"]["devtrace.run.attached_traces"]
    assert len(attached) == 1
    child_trace = store.show(attached[0])
    assert [s["name"] for s in child_trace["spans"]] == ["work", "step.load", "step.compute"]
    assert child_trace["spans"][0]["resource"]["devtrace.run.id"] == summary["run_id"]
    assert [link["trace_id"] for link in run["links"]] == attached
    # The summary counts the program's spans where they landed, and says where to look.
    assert summary["spans"] == 3 and summary["attached_traces"] == attached, summary
    # `runs` counts the same spans and errors as the summary (issue 20: "35 spans · 1 error"
    # in the summary, 1 span and no errors in `runs`).
    [listed] = store.json("runs", "--json")
    assert (listed["span_count"], listed["error_count"]) == (summary["spans"], summary["errors"]), listed
    assert "· 3 spans ·" in proc.stderr and f"  devtrace show {attached[0]}\n" in proc.stderr, proc.stderr
    shown = store.cli("show", summary["trace_id"]).stdout
    assert (
        f"the program's spans are in a trace of their own (its SDK did not continue TRACEPARENT): devtrace show {attached[0][:8]}\n"
        in shown
    ), shown


def test_a_rust_opentelemetry_otlp_program_exports_to_the_runs_endpoint(store: Store, rust_client_bin: Path):
    # The Rust client uses the gRPC exporter: the run's single endpoint answers gRPC too.
    proc, summary = devtrace_run(store, [str(rust_client_bin)])
    assert proc.returncode == 0, proc.stderr
    client_trace = proc.stdout.strip()
    run = run_span(store.show(summary["trace_id"]))
    assert run["attributes"]["devtrace.run.attached_traces"] == [client_trace]
    assert len(store.show(client_trace)["spans"]) == 6
    assert summary["spans"] == 6 and summary["attached_traces"] == [client_trace], summary


def test_a_shell_command_keeps_its_output_and_exit_code(store: Store):
    proc, summary = devtrace_run(store, ["sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2; exit 3"])
    assert proc.returncode == 3
    assert proc.stdout == "out\n"
    assert proc.stderr.startswith("err\n")
    assert summary["exit_code"] == 3 and summary["spans"] == 0
    # The failed run span is not one of the program's spans, in `runs` as in the summary.
    [listed] = store.json("runs", "--json")
    assert (listed["span_count"], listed["error_count"]) == (0, 0) == (summary["spans"], summary["errors"]), listed
    run = run_span(store.show(summary["trace_id"]))
    assert run["status"] == {"code": "error", "message": "exited with code 3"}
    assert run["attributes"]["devtrace.run.exit_code"] == 3


def test_a_signal_gives_128_plus_its_number(store: Store):
    proc, summary = devtrace_run(store, ["sh", "-c", "kill -TERM $$"])
    assert proc.returncode == 128 + 15
    run = run_span(store.show(summary["trace_id"]))
    assert run["attributes"]["devtrace.run.signal"] == 15
    assert run["status"]["message"] == "killed by signal 15"


def test_a_missing_command_fails_like_a_shell_and_is_recorded(store: Store):
    proc, summary = devtrace_run(store, ["definitely-not-a-command-xyz", "--flag"])
    assert proc.returncode == 127
    assert "devtrace: definitely-not-a-command-xyz: command not found" in proc.stderr
    runs = store.json("runs", "--json")
    assert len(runs) == 1 and runs[0]["exit_code"] == 127
    assert runs[0]["command"] == "definitely-not-a-command-xyz --flag"


def test_with_a_running_server_the_run_goes_to_it(server):
    proc, summary = devtrace_run(server, CHILD, env={"FOLLOW_TRACEPARENT": "1"})
    assert proc.returncode == 0, proc.stderr
    status, stats = server.api_get("/api/v1/stats")
    assert status == 200 and stats["spans"] == 4, stats
    # The counter a run reads before and after its command to know whether anything arrived.
    status, health = server.api_get("/api/v1/health")
    assert status == 200 and health["committed_spans"] == 4, health
    assert server.ls()[0]["trace_id"] == summary["trace_id"]


def test_the_summary_compares_with_the_previous_run_of_the_same_command(store: Store):
    slow, _ = devtrace_run(store, CHILD, env={"FOLLOW_TRACEPARENT": "1", "SLOW": "0.3"})
    assert slow.returncode == 0, slow.stderr
    fast, summary = devtrace_run(store, CHILD, env={"FOLLOW_TRACEPARENT": "1"})
    assert "vs the previous run:" in fast.stderr, fast.stderr
    rows = {row["operation"]: row for row in summary["comparison"]["comparison"]["operations"]}
    compute = rows["step.compute"]
    assert compute["a"]["mean_nanos"] > 300_000_000 and compute["b"]["mean_nanos"] < 200_000_000
    assert compute["delta_nanos"] < -250_000_000
    assert "step.compute:" in fast.stderr


def test_a_run_inside_a_run_nests(store: Store):
    inner = [str(store.bin), "--data", str(store.data_dir), "run", "--quiet", "--", "sh", "-c", "true"]
    proc, summary = devtrace_run(store, inner)
    assert proc.returncode == 0, proc.stderr
    doc = store.show(summary["trace_id"])
    runs = [s for s in doc["spans"] if "devtrace.run.id" in s["attributes"]]
    assert len(runs) == 2
    outer, nested = sorted(runs, key=lambda s: s["depth"])
    assert nested["parent_span_id"] == outer["span_id"]
    assert nested["name"] == "sh -c true"


def test_run_ranks_findings_as_insights_does_with_the_configured_prices(store: Store, tmp_path: Path):
    """`devtrace run`'s summary and `devtrace insights` rank one trace's findings alike, priced
    with the config file's `[prices]`: built in, gpt-4o's input costs 16× gpt-4o-mini's, so
    `summarise` (gpt-4o) would outrank `classify` (gpt-4o-mini); the configuration makes
    gpt-4o-mini 4× dearer than gpt-4o, which turns the order round."""
    config = tmp_path / "config.toml"
    config.write_text('[prices."gpt-4o-mini"]\ninput = 10\noutput = 40\n')
    env = {"DEVTRACE_CONFIG": str(config)}
    proc, summary = devtrace_run(store, [sys.executable, str(SENDERS / "llm_calls.py")], env=env, tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr
    insights = subprocess.run(
        [str(store.bin), "--data", str(store.data_dir), "insights", "--all", "--json"],
        env=clean_env(**env), capture_output=True, text=True, timeout=120,
    )
    assert insights.returncode == 0, insights.stderr
    ranked = json.loads(insights.stdout)["findings"]

    def token_operations(findings: list[dict]) -> list[str]:
        return [f["operation"] for f in findings if f["kind"] == "token_waste"]

    assert token_operations(summary["findings"]) == ["classify", "summarise"], summary["findings"]
    assert token_operations(ranked) == ["classify", "summarise"], ranked
    # The whole ranking, not only the two token findings: the summary's top findings are
    # insights' top findings, in the same order, with the same impact.
    assert [f["fingerprint"] for f in summary["findings"]] == [f["fingerprint"] for f in ranked[: len(summary["findings"])]]
    assert [f["impact"]["score"] for f in summary["findings"]] == [f["impact"]["score"] for f in ranked[: len(summary["findings"])]]
    assert {f["impact"]["prices"] for f in summary["findings"] if f["kind"] == "token_waste"} == {
        "built-in prices of 2025-11-24 + configuration"
    }
    # The text summary words the same ranking: `classify`'s token finding first.
    token_lines = [line for line in proc.stderr.splitlines() if "sends 50,000 input tokens" in line]
    assert len(token_lines) == 2 and "classify" in token_lines[0] and "summarise" in token_lines[1], proc.stderr


def test_runs_lists_runs_and_show_accepts_a_run_id(store: Store):
    devtrace_run(store, ["sh", "-c", "exit 0"], "--label", "first")
    devtrace_run(store, ["sh", "-c", "exit 2"])
    runs = store.json("runs", "--json")
    assert [r["exit_code"] for r in runs] == [2, 0]
    assert runs[1]["label"] == "first"
    assert store.json("runs", "--json", "--label", "first")[0]["exit_code"] == 0
    text = store.cli("runs").stdout
    assert "sh -c 'exit 2'" in text and "first" in text
    assert store.show(runs[0]["run_id"])["trace_id"] == runs[0]["trace_id"]


def test_pytest_results_are_recognised(store: Store, tmp_path: Path):
    tests = tmp_path / "test_sample.py"
    tests.write_text(
        "import pytest\n"
        "def test_ok(): assert True\n"
        "def test_also_ok(): assert 1 + 1 == 2\n"
        "def test_broken(): assert 1 == 2\n"
        "@pytest.mark.skip(reason='later')\n"
        "def test_later(): pass\n"
    )
    proc, summary = devtrace_run(store, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], tmp=tmp_path)
    assert proc.returncode == 1
    assert summary["tests"]["passed"] == 2 and summary["tests"]["failed"] == 1 and summary["tests"]["skipped"] == 1
    assert any("test_broken" in name for name in summary["tests"]["failing"])
    assert "pytest: 2 passed, 1 failed, 1 skipped" in proc.stderr
    runs = store.json("runs", "--json")
    assert runs[0]["tests"] == {"runner": "pytest", "passed": 2, "failed": 1, "skipped": 1}

    # The failing test says what failed, everywhere the run's failure is shown.
    node_id = next(name for name in summary["tests"]["failing"] if "test_broken" in name)
    assert summary["tests"]["failures"] == [{"name": node_id, "message": "assert 1 == 2"}]
    assert f"failed: test {node_id}: assert 1 == 2" in proc.stderr, proc.stderr
    run = run_span(store.show(summary["trace_id"]))
    assert run["status"]["message"] == f"exited with code 1: test {node_id}: assert 1 == 2"
    assert run["attributes"]["devtrace.test.failing"] == [node_id]
    assert run["attributes"]["devtrace.test.failing_messages"] == ["assert 1 == 2"]
    assert "assert 1 == 2" in store.cli("show", summary["trace_id"]).stdout
    groups = store.json("errors", "--since", "1h", "--json")["groups"]
    assert [g["example_message"] for g in groups] == [run["status"]["message"]], groups

    async def get_trace():
        params = StdioServerParameters(command=str(store.bin), args=["--data", str(store.data_dir), "mcp"], env=clean_env())
        async with Client(params, read_timeout_seconds=60) as client:
            result = await client.call_tool("get_trace", {"trace_id": summary["trace_id"]})
            return "".join(c.text for c in result.content if c.type == "text")

    text = asyncio.run(get_trace())
    assert f'test {node_id}: assert 1 == 2' in text, text


@pytest.fixture(params=["embedded", "served"])
def destination(request, devtrace_bin: Path, tmp_path: Path):
    """Either a bare data directory (the run starts its own receivers) or a running serve."""
    if request.param == "embedded":
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        yield Store(bin=devtrace_bin, data_dir=data_dir)
    else:
        yield request.getfixturevalue("server")


def test_shell_and_rust_runs_work_with_and_without_a_server(destination, rust_client_bin: Path):
    proc, summary = devtrace_run(destination, ["sh", "-c", "echo quiet"])
    assert (proc.returncode, proc.stdout, summary["spans"]) == (0, "quiet\n", 0)
    proc, summary = devtrace_run(destination, [str(rust_client_bin)])
    assert proc.returncode == 0, proc.stderr
    run = run_span(destination.show(summary["trace_id"]))
    assert run["attributes"]["devtrace.run.attached_traces"] == [proc.stdout.strip()]
    assert len(destination.json("runs", "--json")) == 2


def test_a_secret_on_the_command_line_is_redacted_before_the_run_is_stored(destination):
    """Alone on its store, `run` hands its span to the receivers' pipeline in-process; with a
    serve it posts it. Either way the store never sees the token given on the command line."""
    token = "ghp_" + "Zq3x" * 9
    proc, summary = devtrace_run(destination, ["sh", "-c", "exit 0", "deploy", f"--token={token}"])
    assert proc.returncode == 0, proc.stderr
    run = run_span(destination.show(summary["trace_id"]))
    argv = run["attributes"]["devtrace.run.argv"]
    assert argv[-1] == "--token=[REDACTED:github_token]", argv
    assert token not in json.dumps(run) and token not in proc.stderr
    # Nor any file of the store: the database and its write-ahead log (where a run's commit is).
    for path in destination.data_dir.iterdir():
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_an_unusable_store_still_runs_the_command_and_says_so(devtrace_bin: Path, tmp_path: Path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be")
    proc = subprocess.run(
        [str(devtrace_bin), "--data", str(blocker / "data"), "run", "--", "sh", "-c", "echo ran; exit 4"],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 4 and proc.stdout == "ran\n"
    assert "devtrace: not recording this run: cannot open the store" in proc.stderr, proc.stderr


def test_node_test_runner_results_become_test_spans(store: Store, tmp_path: Path):
    node = shutil.which("node")
    assert node, "node is needed for this test (it is on the project's machines; apt-get install nodejs)"
    suite = tmp_path / "sample.test.mjs"
    suite.write_text(
        "import test from 'node:test';\n"
        "import assert from 'node:assert';\n"
        "test('adds', () => { assert.strictEqual(1 + 1, 2); });\n"
        "test('waits', async () => { await new Promise(r => setTimeout(r, 30)); });\n"
        "test('breaks', () => { assert.strictEqual(1, 2); });\n"
    )
    proc, summary = devtrace_run(store, [node, "--test", "--test-reporter=spec", str(suite)], tmp=tmp_path)
    assert proc.returncode == 1
    assert (summary["tests"]["passed"], summary["tests"]["failed"]) == (2, 1), summary["tests"]
    doc = store.show(summary["trace_id"])
    tests = {s["name"]: s for s in doc["spans"] if s["name"].startswith("test ")}
    assert set(tests) == {"test adds", "test waits", "test breaks"}, tests.keys()
    # The span takes the runner's own figure for the 30 ms wait (node measured 29.96 ms once: its
    # timers may fire a hair early by its clock), not the few microseconds of the other tests.
    assert tests["test waits"]["duration_ns"] >= 25_000_000
    assert tests["test breaks"]["status"]["code"] == "error"
    # The failing test's span says what failed: the assertion's first line.
    assert tests["test breaks"]["status"]["message"].startswith("AssertionError [ERR_ASSERTION]: "), tests["test breaks"]["status"]
    assert tests["test adds"]["attributes"]["devtrace.test.outcome"] == "passed"


def test_on_a_terminal_the_child_still_sees_a_terminal_and_its_bytes_pass_unchanged(store: Store):
    """devtrace's stdout and stderr are a terminal here: the child must see terminals too (so it
    keeps its colours and progress bars), and what it writes must arrive byte for byte."""
    import os
    import pty

    script = "[ -t 1 ] && echo 'out: tty'; [ -t 2 ] && echo 'err: tty' >&2; printf '\\033[31mred\\033[0m\\n'; exit 6"
    argv = [str(store.bin), "--data", str(store.data_dir), "run", "--quiet", "--", "sh", "-c", script]
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, clean_env())
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 6
    # The outer terminal turns \n into \r\n; everything else is the child's own bytes.
    text = seen.replace(b"\r\n", b"\n").decode()
    assert "out: tty\n" in text and "err: tty\n" in text, text
    assert "\x1b[31mred\x1b[0m\n" in text, repr(text)
    run = store.json("runs", "--json")[0]
    head = run_span(store.show(run["trace_id"]))["attributes"]["devtrace.run.stdout.head"]
    assert head == "out: tty\n\x1b[31mred\x1b[0m\n", repr(head)


def _started(store: Store, script: str) -> subprocess.Popen:
    """devtrace run in its own session (as a shell job would be), once the child is up."""
    marker = store.data_dir.parent / "child-started"
    argv = [str(store.bin), "--data", str(store.data_dir), "run", "--quiet", "--", "sh", "-c", f"{script}"]
    proc = subprocess.Popen(argv, env=clean_env(MARKER=str(marker)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(200):
        if marker.exists():
            return proc
        time.sleep(0.02)
    proc.kill()
    pytest.fail("the child never started")


def test_ctrl_c_reaches_the_child_and_devtrace_reports_its_exit(store: Store):
    proc = _started(store, "trap 'echo interrupted; exit 9' INT; touch \"$MARKER\"; while :; do sleep 0.05; done")
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
    stdout, _ = proc.communicate(timeout=20)
    assert proc.returncode == 9 and stdout == "interrupted\n"
    assert store.json("runs", "--json")[0]["exit_code"] == 9


def test_sigterm_to_devtrace_is_passed_to_the_child(store: Store):
    proc = _started(store, "trap 'echo terminated; exit 7' TERM; touch \"$MARKER\"; while :; do sleep 0.05; done")
    proc.send_signal(signal.SIGTERM)  # devtrace alone
    stdout, _ = proc.communicate(timeout=20)
    assert proc.returncode == 7 and stdout == "terminated\n"
