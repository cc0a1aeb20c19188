"""The native recorder end to end, with the real OpenTelemetry SDK, on every CPython 3.12+ that
scripts/test built the devtrace package for (DEVTRACE_NATIVE_PYTHONS, `:`-separated):

- a program whose span is a blind spot → the blind_spot finding → `devtrace plan` → a run with
  `--plan` → the blind spot's time is accounted for (by recorded calls) within 10 %;
- `devtrace run --record` on a program killed by SIGKILL: its last calls are recovered from
  the ring file into the run's trace;
- `devtrace run --record` with TMPDIR on a small filesystem: no room for the ring, a message
  naming `--record-mib`, the program run unrecorded; with a smaller ring, recorded;
- `devtrace run --record` on a program dying of an unhandled exception: the window is in its
  trace, linked to the failure, with the exception's context, and the calls completed before
  it with what they got and gave (the automatic values), in `show --attrs`, the step-through
  (REST `…/steps`) and MCP (analyze_operation(calls=true));
- two asyncio tasks interleaving on one thread (`python -m app.tasks`): each call nests under
  its own task's span;
- the values of chosen calls (`python -m app.payments`, record_calls(values=...)): an assistant
  asks through the official MCP SDK which argument made a call fail
  (analyze_operation(calls=true));
- a parent that starts a Python child with subprocess.run (`python -m app.spawner`), under
  `devtrace run --plan`: the child's calls are in the run's trace under the parent's spawning
  call, linked to it (kind process);
- a parent that runs jobs in a `ProcessPoolExecutor` (`python -m app.pooler`), under `devtrace
  run --plan`: each job's call in the worker process links to the call that submitted it, and
  each `result()` to that job (kind future); with `--no-causality`, the same calls and no
  link of a wait;
- one recording of a two-thread program (`python -m app.pipeline`): an assistant asks through
  the official MCP SDK which argument made a call fail, and what the main thread's wait on the
  queue was waiting for (get_spans: the producer thread's call whose put ended it);
- the same recording in `devtrace watch`, in a real terminal (tmux): the waiting call's row is
  marked `⇠`, its detail says what it waited for in `show`'s words, `c` selects the cause (whose
  detail then names the wait `r` returns to), and `r` selects the wait again.

The program is tests/e2e/native_app (python -m app.main, app.tasks, app.spawner, …).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from harness import REPO_ROOT, CliResult, Tmux, clean_env, start_server, stop_server

APP_DIR = REPO_ROOT / "tests" / "e2e" / "native_app"


def native_pythons() -> list[str]:
    found = [p for p in os.environ.get("DEVTRACE_NATIVE_PYTHONS", "").split(":") if p]
    if not found:
        message = "DEVTRACE_NATIVE_PYTHONS names no CPython 3.12+ with the devtrace package built (scripts/test sets it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(params=[p for p in os.environ.get("DEVTRACE_NATIVE_PYTHONS", "").split(":") if p] or ["none"])
def python(request) -> str:
    if request.param == "none":
        native_pythons()
    return request.param


def run(store, python: str, *args: str, flags: tuple[str, ...] = ()) -> CliResult:
    """`devtrace --data DIR run FLAGS -- PYTHON -m app.main ARGS` in the app's directory."""
    argv = ["--data", str(store.data_dir), "run", *flags, "--", python, "-m", "app.main", *args]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


def spans_of(store, trace_id: str) -> list[dict]:
    return store.show(trace_id)["spans"]


def latest_trace(store) -> str:
    return store.ls()[0]["trace_id"]


def by_name(spans, name):
    return [s for s in spans if s["name"] == name]


def run_with_plan(
    store, python: str, plan_id: str, operation: str, functions: list[dict], main: str, flags: tuple[str, ...] = ()
) -> CliResult:
    """`devtrace run --plan` of `python -m main` with a plan written by hand: `functions` (module,
    qualname, file, line, depth) recorded, `operation` its subject."""
    plan = {
        "id": plan_id, "created_unix_nano": 1, "operation": operation, "threshold_ms": 1.0,
        "depth": max(f["depth"] for f in functions) + 1, "roots": [str(APP_DIR)],
        "blind_spot": {"runs": 1, "own_share": 1.0, "own_ms_per_run": 1.0, "duration_ms_per_run": 1.0},
        "functions": [{"via": "", "recursive": False, **f} for f in functions], "notes": [],
    }
    (store.data_dir / "plans").mkdir(parents=True, exist_ok=True)
    (store.data_dir / "plans" / f"{plan_id}.json").write_text(json.dumps(plan))
    argv = ["--data", str(store.data_dir), "run", "--plan", plan_id, *flags, "--", python, "-m", main]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)


def amount_of(span) -> str:
    """The `amount` argument of a recorded `charge` call, as its summary wrote it."""
    return span["attributes"]["devtrace.call.arguments"].split("amount=")[1].split(",")[0]


def test_blind_spot_finding_plan_and_planned_run_account_for_the_time(store, python):
    # 200,000 items: each batch's own time stays well above the detector's 10 ms floor on a fast,
    # idle machine too (40,000 took 9 ms there and no blind spot fired).
    for _ in range(2):
        result = run(store, python, "200000")
        assert result.returncode == 0, result.describe()
    insights = store.json("insights", "--json")
    findings = insights["findings"] if isinstance(insights, dict) else insights
    blind = [f for f in findings if f["kind"] == "blind_spot" and f["operation"] == "process_batch"]
    assert len(blind) == 1, findings
    assert blind[0]["numbers"]["own_share"] > 0.95 and blind[0]["numbers"]["runs"] == 4

    plan = store.json("plan", "process_batch", "--json", cwd=APP_DIR)
    recorded = {(f["module"], f["qualname"]) for f in plan["functions"]}
    assert recorded == {("app.jobs", "process"), ("app.jobs", "parse"), ("app.jobs", "crunch"), ("app.jobs", "summarize")}
    assert any(n["call"] == "range" and n["kind"] == "c" for n in plan["notes"])
    listed = store.cli("plan", "list").stdout
    assert plan["id"] in listed and '"process_batch"' in listed
    shown = store.cli("plan", "show", plan["id"][:6]).stdout
    assert shown.startswith(f'plan {plan["id"]} for "process_batch"')
    assert "    app.jobs.crunch  jobs.py:18  \"app.jobs.process calls crunch() at line 39\"\n" in shown

    result = run(store, python, "200000", flags=("--plan", plan["id"]))
    assert result.returncode == 0, result.describe()
    spans = spans_of(store, latest_trace(store))
    batches = by_name(spans, "process_batch")
    assert len(batches) == 2
    for batch in batches:
        children = [s for s in spans if s["parent_span_id"] == batch["span_id"]]
        assert {c["name"] for c in children} == {"app.jobs.parse", "app.jobs.crunch", "app.jobs.summarize"}
        assert all(c["attributes"]["devtrace.plan.id"] == plan["id"] for c in children)
        # The blind spot's time is now in recorded calls: what stays its own is within 10 %.
        own = batch["self_time_ns"] - batch["attributes"].get("devtrace.calls.accounted_ns", 0)
        assert own <= 0.10 * batch["duration_ns"], (own, batch["duration_ns"])
        # And the recorded function holds the span, as it ran.
        parent = [s for s in spans if s["span_id"] == batch["parent_span_id"]][0]
        assert parent["name"] == "app.jobs.process"
    # Nothing outside the plan was recorded.
    assert {s["name"] for s in spans if s["attributes"].get("devtrace.recorder")} == {
        "app.jobs.process", "app.jobs.parse", "app.jobs.crunch", "app.jobs.summarize"
    }
    # In the planned run alone (two process_batch spans: enough runs for the detector), the
    # time is accounted for: no blind spot.
    after = store.json("insights", "--json", "--last", "1")
    after = after["findings"] if isinstance(after, dict) else after
    assert not [f for f in after if f["kind"] == "blind_spot" and f["operation"] == "process_batch"], after


def test_a_sigkilled_process_leaves_its_last_calls_for_recovery(store, python):
    result = run(store, python, "3000", "--crash", flags=("--record",))
    assert result.returncode == 137, result.describe()
    assert "ended without writing its window; recovered its last" in result.stderr, result.stderr
    spans = spans_of(store, latest_trace(store))
    windows = by_name(spans, "devtrace.flight_window")
    assert len(windows) == 1
    window = windows[0]
    assert window["attributes"]["devtrace.flight.recovered"] is True
    root = [s for s in spans if s["parent_span_id"] is None][0]
    assert window["parent_span_id"] == root["span_id"], "the window hangs under the run's span"
    # The last calls before the kill: still open, with the parse they had just made.
    last = by_name(spans, "app.main.last_steps_before_crash")
    assert len(last) == 1 and last[0]["attributes"]["devtrace.recorder.open"] is True
    parse = [s for s in by_name(spans, "app.jobs.parse") if s["parent_span_id"] == last[0]["span_id"]]
    assert len(parse) == 1 and "devtrace.recorder.open" not in parse[0]["attributes"]


def test_a_ring_with_no_room_names_the_option_of_devtrace_run_that_sizes_it(store, python, tmp_path):
    """TMPDIR (where `devtrace run --record` makes the rings) on an 8 MiB filesystem of its own
    (bubblewrap's tmpfs): a 64 MiB window has no room, and the message names --record-mib; the
    program runs on unrecorded. With --record-mib 4, it is recorded."""
    import shutil

    bwrap = shutil.which("bwrap")
    assert bwrap, "bubblewrap (bwrap) runs this test: apt-get install bubblewrap"
    small = tmp_path / "small"
    small.mkdir()

    def run_in_small_tmp(*flags: str) -> CliResult:
        argv = ["--data", str(store.data_dir), "run", *flags, "--", python, "-m", "app.main", "300"]
        sandbox = [bwrap, "--dev-bind", "/", "/", "--size", str(8 << 20), "--tmpfs", str(small)]
        env = dict(clean_env(), TMPDIR=str(small))
        proc = subprocess.run([*sandbox, str(store.bin), *argv], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300)
        return CliResult(argv, proc.returncode, proc.stdout, proc.stderr)

    result = run_in_small_tmp("--record")
    assert result.returncode == 0, result.describe()
    assert f"devtrace: --record: could not start recording in {python}: recorder file " in result.stderr
    assert "no room for its 64 MiB on that filesystem" in result.stderr, result.stderr
    assert "Give a smaller window (--record-mib N), or TMPDIR on a filesystem with room. The program runs without recording." in result.stderr
    assert "max_mib" not in result.stderr, "the Python option is not what the user typed"

    result = run_in_small_tmp("--record", "--record-mib", "4")
    assert result.returncode == 0, result.describe()
    assert "could not start recording" not in result.stderr, result.stderr


def test_an_unhandled_exception_writes_the_window_into_its_trace(store, python):
    result = run(store, python, "3000", "--fail", flags=("--record",))
    assert result.returncode == 1, result.describe()
    assert "ValueError: batch of 3000 items refused" in result.stderr
    spans = spans_of(store, latest_trace(store))
    windows = by_name(spans, "devtrace.flight_window")
    assert len(windows) == 1
    window = windows[0]
    assert window["attributes"]["devtrace.flight.reason"] == "unhandled exception"
    assert window["status"]["code"] == "error" and "batch of 3000 items refused" in window["status"]["message"]
    event = [e for e in window["events"] if e["name"] == "exception"][0]
    assert event["attributes"]["exception.type"] == "ValueError"
    assert event["attributes"]["exception.locals.n"] == "3000", "the error context: the failing frame's locals"
    check = by_name(spans, "app.main.check")
    assert len(check) == 1 and check[0]["status"]["code"] == "error" and check[0]["status"]["message"] == "ValueError"
    fail_deep = [s for s in spans if s["span_id"] == check[0]["parent_span_id"]][0]
    assert fail_deep["name"] == "app.main.fail_deep"
    # The batches before the failure are in the window too, under their own spans, with what
    # each call got and gave, captured as it ran (the flight recorder's automatic values).
    batches = by_name(spans, "app.jobs.process")
    assert len(batches) == 2
    for batch in batches:
        assert batch["attributes"]["devtrace.call.arguments"] == "n=3000"
        assert batch["attributes"]["devtrace.call.return"].startswith("(18009, [")
    summaries = by_name(spans, "app.jobs.summarize")
    assert [s["attributes"]["devtrace.call.return"] for s in summaries] == ["[(0, 300), (1, 300), (2, 300), …] (len 10)"] * 2
    # `devtrace show --attrs` shows them on the calls.
    shown = store.cli("show", latest_trace(store), "--attrs").stdout
    assert "app.jobs.summarize" in shown
    assert "devtrace.call.return = [(0, 300), (1, 300), (2, 300), …] (len 10)" in shown
    assert "devtrace.call.arguments = n=3000" in shown
    # The step-through of the main thread (the web UI's player) has them on its steps...
    trace_id = latest_trace(store)
    server = start_server(store.bin, store.data_dir, store.data_dir / "serve.log")
    try:
        status, stepped = server.api_get(f"/api/v1/traces/{trace_id}/spans/{check[0]['span_id']}/steps")
    finally:
        stop_server(server)
    assert status == 200, stepped
    steps = [s for s in stepped["steps"] if s["name"] == "app.jobs.summarize"]
    assert [(s["arguments"], s["returned"]) for s in steps] == [("items=[0, 919, 838, …] (len 3000)", "[(0, 300), (1, 300), (2, 300), …] (len 10)")] * 2, stepped
    # ... and so do MCP's answers: the calls of an operation with what each got and gave.
    calls = ask_mcp(store, "analyze_operation", {"operation": "app.jobs.process", "calls": True})
    assert calls.splitlines()[0].startswith('calls of "app.jobs.process": 2 in 1 traces, 0 failed, 2 with arguments'), calls
    assert calls.count('  arguments: "n=3000"') == 2, calls
    assert calls.count('  returned: "(18009, [') == 2, calls


def ask_mcp(store, tool: str, arguments: dict) -> str:
    """`devtrace mcp`'s answer (its text) to one call of `tool`; fails on an error result."""

    async def ask():
        server = StdioServerParameters(command=str(store.bin), args=["--data", str(store.data_dir), "mcp"], env=clean_env())
        async with Client(server, read_timeout_seconds=60) as client:
            result = await client.call_tool(tool, arguments)
            return result.is_error, "".join(c.text for c in result.content if c.type == "text")

    is_error, text = asyncio.run(ask())
    assert not is_error, text
    return text


def test_devtrace_recover_writes_the_window_a_killed_process_left(store, python, tmp_path):
    """A program recording with `devtrace.record()` (no `devtrace run`) killed by SIGKILL leaves
    its ring file; `devtrace recover FILE` writes the window into the trace it ran under."""
    ring = tmp_path / "devtrace-flight-test.ring"
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    script = (
        "import devtrace\n"
        "devtrace.configure(service_name='native-app')\n"
        "devtrace.record(seconds=10, max_mib=16)\n"
        "from app import jobs, main\n"
        "jobs.process(3000)\n"
        "main.last_steps_before_crash()\n"
    )
    env = clean_env(DEVTRACE_RECORD_FILE=str(ring), TRACEPARENT=f"00-{trace_id}-{parent}-01")
    proc = subprocess.run([python, "-c", script], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr
    assert ring.is_file(), "a killed process leaves its ring file"

    result = store.json("recover", "--json", str(ring))
    assert result["failed"] == [] and result["skipped"] == [], result
    [recovered] = result["recovered"]
    assert recovered["trace_id"] == trace_id and recovered["pid"] > 0 and recovered["python"]
    assert recovered["spans"] > 0 and recovered["events"] > 0 and recovered["seconds"] > 0
    assert not ring.exists(), "a recovered file is removed"

    spans = spans_of(store, trace_id)
    [window] = by_name(spans, "devtrace.flight_window")
    assert window["span_id"] == recovered["span_id"]
    assert window["parent_span_id"] == parent, "under the span the process ran in"
    assert window["attributes"]["devtrace.flight.recovered"] is True
    last = by_name(spans, "app.main.last_steps_before_crash")
    assert len(last) == 1 and last[0]["attributes"]["devtrace.recorder.open"] is True
    assert by_name(spans, "app.jobs.process"), "the calls before the kill"

    # Nothing left to recover: said in words, and as JSON.
    # (A line wider than the terminal breaks at a space: the words are compared, not the breaks,
    # since the temporary path's length varies.)
    again = store.cli("recover", "--dir", str(tmp_path))
    said = " ".join(again.stdout.split())
    assert said == f"nothing to recover: no recorder file left by a dead process in {tmp_path}", again.describe()


def test_a_spawned_python_childs_calls_are_in_the_runs_trace_under_the_spawning_call(store, python):
    """`devtrace run --plan` on a parent whose recorded start_child runs a Python child with
    subprocess.run: both interpreters record the plan; `devtrace show` of the run's trace has
    the child's calls under start_child, the child's outermost call linked to it."""
    # A plan as `devtrace plan` stores it (DATA/plans/ID.json), naming app.children's functions.
    functions = [
        {"module": "app.children", "qualname": name, "file": str(APP_DIR / "app" / "children.py"), "line": line, "depth": depth}
        for name, line, depth in (("start_child", 19, 0), ("child_main", 15, 0), ("child_step", 10, 1))
    ]
    result = run_with_plan(store, python, "5a0e1c2d3b4f", "start_child", functions, "app.spawner")
    assert result.returncode == 0, result.describe()
    trace_id = latest_trace(store)
    spans = spans_of(store, trace_id)
    [start] = by_name(spans, "app.children.start_child")
    [child] = by_name(spans, "app.children.child_main")
    steps = by_name(spans, "app.children.child_step")
    assert child["parent_span_id"] == start["span_id"]
    assert len(steps) == 3 and {s["parent_span_id"] for s in steps} == {child["span_id"]}
    [link] = child["links"]
    assert link["span_id"] == start["span_id"]
    assert link["attributes"]["devtrace.link.kind"] == "process"
    assert link["attributes"]["devtrace.link.object"] == "subprocess.Popen"
    # And the text view shows the child under the spawning call.
    shown = store.cli("show", trace_id).stdout
    lines = shown.splitlines()
    at_start = next(i for i, l in enumerate(lines) if "app.children.start_child" in l)
    at_child = next(i for i, l in enumerate(lines) if "app.children.child_main" in l)
    indent = lambda line: len(line) - len(line.lstrip(" │├└─"))
    assert at_child > at_start and indent(lines[at_child]) > indent(lines[at_start]), shown
    under_child = " ".join(line.strip() for line in lines[at_child + 1 : at_child + 3])
    assert under_child.startswith('⇠ follows "app.children.start_child" (process start, thread "MainThread"'), shown


def test_a_process_pools_jobs_link_to_their_submit_and_their_results_to_the_jobs(store, python):
    """`devtrace run --plan` on a parent whose recorded submit_all submits two jobs to a process
    pool: the worker's calls of the job (`square`) are in the run's trace, each linked to
    submit_all (kind future), and each recorded wait_for's result() to its job's call."""
    source = (APP_DIR / "app" / "poolwork.py").read_text().splitlines()
    line_of = lambda name: next(i for i, l in enumerate(source, 1) if l.startswith(f"def {name}("))
    functions = [
        {"module": "app.poolwork", "qualname": name, "file": str(APP_DIR / "app" / "poolwork.py"), "line": line_of(name), "depth": 0}
        for name in ("main", "submit_all", "square", "wait_for")
    ]
    result = run_with_plan(store, python, "6b1f2d3e4c5a", "main", functions, "app.pooler")
    assert result.returncode == 0 and "[4, 9]" in result.stdout, result.describe()
    trace_id = latest_trace(store)
    spans = spans_of(store, trace_id)
    [submit] = by_name(spans, "app.poolwork.submit_all")
    jobs = by_name(spans, "app.poolwork.square")
    assert len(jobs) == 2, [s["name"] for s in spans]
    for job in jobs:
        assert job["attributes"]["thread.id"] != submit["attributes"]["thread.id"]  # another process
        [link] = [l for l in job["links"] if l["attributes"]["devtrace.link.kind"] == "future"]
        assert link["span_id"] == submit["span_id"]
        assert link["attributes"]["devtrace.link.object"] == "concurrent.futures.Future"
        assert link["attributes"]["devtrace.link.cause.function"] == "app.poolwork.submit_all"
    # Each result() links to its job: on wait_for's span, or on main's when that wait_for was
    # too short to be kept (the second job may be done by then).
    results = [l for s in spans if s["name"] in ("app.poolwork.wait_for", "app.poolwork.main") for l in s["links"]]
    assert sorted(l["span_id"] for l in results) == sorted(j["span_id"] for j in jobs), results
    assert {l["attributes"]["devtrace.link.cause.function"] for l in results} == {"app.poolwork.square"}
    assert by_name(spans, "app.poolwork.wait_for")[0]["links"]  # the first waited for the worker
    # The text view names the cause of each wait: the job in the worker.
    shown = store.cli("show", trace_id).stdout
    assert shown.count('⇠ waited') >= 1 and '"app.poolwork.square" (future result' in shown, shown


def test_with_no_causality_the_planned_calls_are_recorded_and_no_wait_is_linked(store, python):
    """The same planned run of the process pool with `--no-causality`: the parent's planned calls
    are recorded as before, and no span carries a link of a wait (no `future` link from a job to
    its submit, none from a result() to its job)."""
    source = (APP_DIR / "app" / "poolwork.py").read_text().splitlines()
    line_of = lambda name: next(i for i, l in enumerate(source, 1) if l.startswith(f"def {name}("))
    functions = [
        {"module": "app.poolwork", "qualname": name, "file": str(APP_DIR / "app" / "poolwork.py"), "line": line_of(name), "depth": 0}
        for name in ("main", "submit_all", "square", "wait_for")
    ]
    result = run_with_plan(store, python, "6b1f2d3e4c5b", "main", functions, "app.pooler", flags=("--no-causality",))
    assert result.returncode == 0 and "[4, 9]" in result.stdout, result.describe()
    spans = spans_of(store, latest_trace(store))
    assert by_name(spans, "app.poolwork.main") and by_name(spans, "app.poolwork.submit_all"), [s["name"] for s in spans]
    kinds = [l["attributes"].get("devtrace.link.kind") for s in spans for l in s["links"]]
    assert not [k for k in kinds if k != "process"], kinds


def test_asyncio_tasks_interleaving_on_one_thread_nest_under_their_own_spans(store, python):
    """Two tasks (tests/e2e/native_app/app/tasks.py) switch at their awaits: each one's calls
    nest under its own span, and each task's coroutine under the span it was created in."""
    argv = ["--data", str(store.data_dir), "run", "--python-autotrace", "app", "--python-autotrace-threshold", "1",
            "--", python, "-m", "app.tasks"]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, CliResult(argv, proc.returncode, proc.stdout, proc.stderr).describe()
    spans = spans_of(store, latest_trace(store))
    by_id = {s["span_id"]: s for s in spans}
    [both] = by_name(spans, "both")
    [task_a], [task_b] = by_name(spans, "task.a"), by_name(spans, "task.b")
    # Each task's coroutine, every step of it, runs under the span it was created in.
    workers = by_name(spans, "app.tasks.worker")
    assert len(workers) == 4 and {w["parent_span_id"] for w in workers} == {both["span_id"]}
    assert sorted(bool(w["attributes"].get("devtrace.recorder.resumed")) for w in workers) == [False, False, True, True]
    # The span a task starts is the child of that task's first step.
    for task in (task_a, task_b):
        parent = by_id[task["parent_span_id"]]
        assert parent["name"] == "app.tasks.worker" and not parent["attributes"].get("devtrace.recorder.resumed")
    assert task_a["parent_span_id"] != task_b["parent_span_id"]
    # busy() nests under its own task's span, before and after the switch.
    busy = by_name(spans, "app.tasks.busy")
    under = {task["span_id"]: sorted(s["duration_ns"] for s in busy if s["parent_span_id"] == task["span_id"]) for task in (task_a, task_b)}
    assert len(busy) == 4 and [len(v) for v in under.values()] == [2, 2], [(s["parent_span_id"], s["duration_ns"]) for s in busy]
    assert under[task_a["span_id"]][1] >= 12_000_000 and under[task_b["span_id"]][1] < 12_000_000
    # One thread: the coroutines' steps never overlap (a step ends at its await).
    steps = sorted((w["start_unix_nano"], w["end_unix_nano"]) for w in workers)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(steps, steps[1:])), steps


def test_an_assistant_finds_the_argument_that_made_a_call_fail(store, python):
    argv = ["--data", str(store.data_dir), "run", "--", python, "-m", "app.payments"]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, CliResult(argv, proc.returncode, proc.stdout, proc.stderr).describe()

    async def ask():
        server = StdioServerParameters(command=str(store.bin), args=["--data", str(store.data_dir), "mcp"], env=clean_env())
        async with Client(server, read_timeout_seconds=60) as client:
            result = await client.call_tool("analyze_operation", {"operation": "app.payments.charge", "calls": True})
            return result.is_error, "".join(c.text for c in result.content if c.type == "text")

    is_error, text = asyncio.run(ask())
    assert not is_error, text
    lines = text.splitlines()
    assert lines[0].startswith('calls of "app.payments.charge": 4 in 1 traces, 1 failed, 4 with arguments'), text
    # The failing call comes first, with the argument that made it fail and what it raised; the
    # secret-named argument is redacted; no __repr__ of the Order ran (its fields are shown).
    assert lines[1].startswith("FAILED "), text
    assert lines[2] == '  arguments: "order=Order(ident=3, customer=\\"customer-3\\"), amount=4312, api_key=[REDACTED:secret_name]"', text
    assert lines[3] == '  raised: "ValueError(\\"amount over the limit\\")"', text
    assert "sk-test-0000" not in text
    # Then the others (each lasting well over the 1 ms threshold), slowest first as recorded (they
    # sleep 30, 16 and 2.25 ms; under load a sleep can overrun, so the order is the recorded one),
    # each with what it returned.
    assert [line.startswith("ok ") for line in lines[4::3]] == [True] * 3, text
    charges = [s for s in by_name(spans_of(store, latest_trace(store)), "app.payments.charge") if s["status"]["code"] != "error"]
    recorded = [amount_of(s) for s in sorted(charges, key=lambda s: -s["duration_ns"])]
    assert sorted(recorded) == ["120", "64", "9"], recorded
    assert [line.split("amount=")[1].split(",")[0] for line in lines[5::3]] == recorded, text
    returned = dict(zip([line.split("amount=")[1].split(",")[0] for line in lines[5::3]], lines[6::3]))
    assert returned["120"] == '  returned: "{\\"order\\": 1, \\"charged\\": 120}"', text


def test_an_assistant_finds_the_failing_argument_and_what_a_wait_waited_for(store, python):
    """One recording of two threads (tests/e2e/native_app/app/pipeline.py): the producer thread
    puts lines on a queue slowly; the main thread waits for each, then parses it; one line is
    not a number."""
    argv = ["--data", str(store.data_dir), "run", "--", python, "-m", "app.pipeline"]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, CliResult(argv, proc.returncode, proc.stdout, proc.stderr).describe()
    trace_id = latest_trace(store)
    spans = spans_of(store, trace_id)
    # The main thread's waits, each linked to the producer's call whose put ended it.
    waits = [s for s in by_name(spans, "app.pipeline.consume") if s["links"]]
    produced = {s["span_id"] for s in by_name(spans, "app.pipeline.produce")}
    assert waits and all(link["span_id"] in produced for w in waits for link in w["links"]), [w["links"] for w in waits]
    wait = max(waits, key=lambda w: w["duration_ns"])

    async def ask():
        server = StdioServerParameters(command=str(store.bin), args=["--data", str(store.data_dir), "mcp"], env=clean_env())
        async with Client(server, read_timeout_seconds=60) as client:
            answers = []
            for tool, arguments in [
                ("analyze_operation", {"operation": "app.pipeline.parse", "calls": True}),
                ("get_spans", {"trace_id": trace_id, "span_ids": [wait["span_id"]]}),
            ]:
                result = await client.call_tool(tool, arguments)
                answers.append((result.is_error, "".join(c.text for c in result.content if c.type == "text")))
            return answers

    (calls_error, calls), (wait_error, detail) = asyncio.run(ask())
    assert not calls_error and not wait_error, (calls, detail)
    # Which argument made parse fail: the failing call first, with its argument and exception.
    lines = calls.splitlines()
    assert lines[0].startswith('calls of "app.pipeline.parse": 4 in 1 traces, 1 failed, 4 with arguments'), calls
    assert lines[1].startswith("FAILED "), calls
    assert lines[2] == '  arguments: "text=\\"4x2\\""', calls
    assert lines[3].startswith('  raised: "ValueError(\\"invalid literal for int() with base 10'), calls
    # What the wait was waiting for: the producer thread's produce, by its put on the queue.
    [said] = [line for line in detail.splitlines() if "waited " in line]
    assert ' for "app.pipeline.produce" (queue put, thread "producer", at +' in said, detail
    assert said.endswith(f"span {wait['links'][0]['span_id']}"), detail
    waited_ms = float(said.split("waited ")[1].split(" ms")[0])
    assert waited_ms >= 10, f"the consumer waited for the producer's 40 ms sleep: {said}"


def selected_detail(screen: str) -> list[str]:
    """The lines about the selected row under `devtrace watch`'s waterfall (below its rule,
    above the status line)."""
    lines = screen.rstrip("\n").splitlines()
    rule = max(i for i, line in enumerate(lines) if line.startswith("────"))
    return lines[rule + 1:-1]


def test_watch_marks_a_wait_says_what_it_waited_for_goes_to_its_cause_and_back(store, python, tmux: Tmux):
    """app.pipeline recorded, then watched: the main thread's `consume` calls waited on the
    queue for the producer thread's `produce`."""
    argv = ["--data", str(store.data_dir), "run", "--", python, "-m", "app.pipeline"]
    proc = subprocess.run([str(store.bin), *argv], cwd=APP_DIR, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, CliResult(argv, proc.returncode, proc.stdout, proc.stderr).describe()
    trace_id = latest_trace(store)
    tmux.run("new-session", "-d", "-s", "watch", "-x", "160", "-y", "50",
             f"env -u NO_COLOR TERM=xterm-256color {store.bin} --data {store.data_dir} watch;"
             " echo watch-exited-$?; exec sleep 600")
    # The recorded trace listed (the first frame can come before the store's first read: an
    # Enter on "Traces (0)" opens nothing).
    tmux.wait_for("Traces (1)")
    tmux.run("send-keys", "-t", "watch", "Enter")
    screen = tmux.wait_for(trace_id, "⇠ waited for another thread (c: its cause)")
    assert "⇠ app.pipeline.consume" in screen, screen
    # Only the consume calls, then down to one that waited: its detail is show's line.
    tmux.run("send-keys", "-t", "watch", "/", *"consume", "Enter")
    for _ in range(8):
        screen = tmux.capture()
        if "c: go to its cause" in screen:
            break
        tmux.run("send-keys", "-t", "watch", "j")
        time.sleep(0.3)
    detail = selected_detail(screen)
    assert detail[0].startswith("app.pipeline.consume  "), screen
    [said] = [line.strip() for line in detail if line.strip().startswith("⇠ waited ")]
    assert ' for "app.pipeline.produce" (queue put, thread "producer", at +' in said, screen
    # c: the producer's call is selected (its detail under the waterfall), the filter cleared.
    tmux.run("send-keys", "-t", "watch", "c")
    screen = tmux.wait_for("\napp.pipeline.produce  ")
    assert selected_detail(screen)[0].startswith("app.pipeline.produce  "), screen
    assert "filter \"" not in screen.splitlines()[-1], screen
    # The detail names the wait r returns to; before c it had no such line.
    assert not [line for line in detail if "r: return" in line], screen
    assert selected_detail(screen)[-1].strip() == 'r: return to the wait in "app.pipeline.consume"', screen
    # r: back on the consume call that waited (the same call: its duration and start), and its wait.
    tmux.run("send-keys", "-t", "watch", "r")
    screen = tmux.wait_for(f"\n{detail[0]}")
    assert selected_detail(screen)[0] == detail[0], screen
    assert said in [line.strip() for line in selected_detail(screen)], screen
    assert not [line for line in selected_detail(screen) if "r: return" in line], screen
    tmux.run("send-keys", "-t", "watch", "q")
    tmux.wait_for("watch-exited-0", timeout=10)
