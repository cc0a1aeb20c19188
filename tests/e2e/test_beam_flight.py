"""The BEAM flight recorder end to end (docs/beam.md, "Two modes"): `devtrace run --record
--record-seconds 1 -- elixir flight.exs ENDING` keeps each VM's last second in a ring and writes
it into the trace when the VM ends — a normal exit, an exception that ends `elixir script.exs`,
the VM killed by SIGKILL, or stopped by SIGTERM (a 3-second window there) — and `devtrace recover` writes the window of a file a killed VM left
when no `devtrace run` was there to read it, or when the `devtrace run` was killed before it
read it (in the run's own directory, removed after). `--record-seconds 0` keeps everything.

The program (tests/e2e/beam_app/flight.exs) starts a supervised GenServer, `Flight.Counter`,
then calls `early_tick/1` for 1.5 s and `late_tick/1` every 10 ms for 1.5 s, and prints its
ground truth before it ends: how many calls of each phase it made and how long before its end
each late call began. The window must hold every late call of the last second and none older,
each with its wait for the reply linked to the server's callback, no early call, and the
server named — registered name, initial call, supervisor — although its spawn and registration
were long before the window (in one test, overwritten in a 2 MiB ring).

A flight recorder keeps its value summaries in the file's value slots, a ring of the last ones
(docs/beam.md, "What a window may lack"): tests/e2e/beam_app/flight_values.exs posts entries to
a GenServer as fast as it can for 1.5 s — summaries enough to fill the names log's share many
times over — then 10 every 5 ms for a second, more than the ring of values holds, then a
refund that crashes the server's callback and ends the script. Recorded by `devtrace run` and recovered by `devtrace recover`,
its window's last calls have their arguments, return values and the server's state before and
after; the crashing callback its arguments, exception and the state before the crash; the
window's older calls, whose values were overwritten, have none; and every value shown is its
own call's (each call's entry number, in its arguments, its reply
and the state it leaves, must agree).
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import time
from pathlib import Path

from harness import CliResult, Store, clean_env
from test_beam import APP_DIR, NOTE_RE, need, runtime  # noqa: F401 (the fixture)

PROGRAM = APP_DIR / "flight.exs"
WINDOW = "devtrace.flight_window"
TICKS = ("Flight.Counter.late_tick/1", "Flight.Counter.early_tick/1")
BEFORE_WINDOW = "devtrace.recorder.started_before_window"
# A late call beginning this long after the window's start is surely in it, and one beginning
# this long before it surely not (its reply comes within milliseconds).
MARGIN_IN_NS = 50_000_000
MARGIN_OUT_NS = 100_000_000


def flight_run(store: Store, ending: str, *options: str, early_pause_ms: str = "1", cwd: Path) -> tuple[CliResult, dict, dict]:
    """`devtrace run --record OPTIONS -- elixir flight.exs ENDING 1500 PAUSE`: the run, the
    program's ground truth and the trace."""
    elixir = need("elixir")
    argv = ["--data", str(store.data_dir), "run", "--record", *options, "--", elixir, str(PROGRAM), ending, "1500", early_pause_ms]
    proc = subprocess.run([str(store.bin), *argv], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    printed = [l for l in result.stdout.splitlines() if l.startswith("{")]
    assert printed, f"the program's ground truth: {result.describe()}"
    truth = json.loads(printed[0])
    [run] = store.ls()
    return result, truth, store.show(run["trace_id"])


def spans_named(trace: dict, name: str) -> list[dict]:
    return [s for s in trace["spans"] if s["name"] == name]


def the_window(trace: dict) -> dict:
    [window] = spans_named(trace, WINDOW)
    return window


def argument(span: dict) -> int:
    return int(span["attributes"]["devtrace.call.arguments"])


def assert_only_the_last_second(trace: dict, truth: dict) -> None:
    """The window is a second long and holds nothing older: no early call, no span starting
    before it unless marked as begun before it."""
    window = the_window(trace)
    assert 0.95 <= window["attributes"]["devtrace.flight.window_seconds"] <= 1.0, window["attributes"]
    assert window["attributes"]["devtrace.flight.seconds_asked"] == 1.0
    assert truth["early"] > 100, truth
    assert spans_named(trace, "Flight.Counter.early_tick/1") == [], "the early phase ended > 1 s before the end"
    older = [
        s["name"]
        for s in trace["spans"]
        if "thread.name" in s["attributes"]
        and s["start_unix_nano"] < window["start_unix_nano"]
        and not s["attributes"].get(BEFORE_WINDOW)
    ]
    assert older == [], older


def assert_the_server_is_named(trace: dict) -> None:
    """The GenServer spawned and registered long before the window is named as in a whole
    recording: its registered name, initial call and supervisor."""
    [server] = spans_named(trace, "process Flight.Counter")
    attributes = server["attributes"]
    assert attributes["thread.name"] == "Flight.Counter"
    assert attributes["devtrace.beam.initial_call"] == "Flight.Counter.init/1"
    assert attributes["devtrace.beam.supervisor"] == "Flight.Sup"
    assert attributes[BEFORE_WINDOW] is True
    handled = spans_named(trace, "Flight.Counter.handle_call/3")
    assert handled and {s["attributes"]["thread.name"] for s in handled} == {"Flight.Counter"}


def assert_the_last_seconds_calls_and_messages(trace: dict, truth: dict, some_older: bool = True) -> None:
    """Every late call of the last second is there, none older, each waiting for the reply the
    server sent (a message link), each request's arrival linked to its call."""
    befores = {int(n): us for n, us in truth["late_us_before_end"].items()}
    calls = spans_named(trace, "Flight.Counter.late_tick/1")
    # A call that began before the window (its return inside it) has no arguments: they were in
    # its start's record. Only such a call lacks them.
    straddling = [s for s in calls if "devtrace.call.arguments" not in s["attributes"]]
    assert all(s["attributes"].get(BEFORE_WINDOW) for s in straddling), straddling
    assert len(straddling) <= 1, straddling
    by_argument = {argument(s): s for s in calls if s not in straddling}
    assert 1 in by_argument, "the last call is in the window"
    # When each call began on the trace's clock: the program says how long before its end each
    # began, and the last one's span says when that was.
    end = by_argument[1]["start_unix_nano"] + befores[1] * 1000
    began = {n: end - us * 1000 for n, us in befores.items()}
    window = the_window(trace)
    assert window["end_unix_nano"] >= end, "the window ends after the program's end"
    surely_in = {n for n, t in began.items() if t >= window["start_unix_nano"] + MARGIN_IN_NS}
    surely_out = {n for n, t in began.items() if t < window["start_unix_nano"] - MARGIN_OUT_NS}
    assert len(surely_in) > 50 and (len(surely_out) > 25 or not some_older), (len(surely_in), len(surely_out))
    recorded = set(by_argument)
    assert surely_in <= recorded, sorted(surely_in - recorded)
    assert not recorded & surely_out, sorted(recorded & surely_out)
    assert recorded == set(range(1, max(recorded) + 1)), "the last calls, without a gap"
    by_id = {s["span_id"]: s for s in trace["spans"]}
    # The reply is sent by OTP's gen_server after the callback returned: its cause is the
    # server's `process` span (docs/beam.md).
    server = {s["span_id"] for s in trace["spans"] if s["attributes"].get("thread.name") == "Flight.Counter"}
    for call in calls:
        if call["attributes"].get(BEFORE_WINDOW):
            continue
        waits = [s for s in trace["spans"] if s["name"] == "receive" and s["parent_span_id"] == call["span_id"]]
        linked = [l["span_id"] for w in waits for l in w["links"] if l["attributes"]["devtrace.link.kind"] == "message"]
        assert linked and set(linked) <= server, (call["attributes"], waits)
    arrivals = [s for s in spans_named(trace, "receive") if s["attributes"]["thread.name"] == "Flight.Counter" and s["links"]]
    assert len(arrivals) >= len(surely_in)
    for arrival in arrivals:
        [cause] = [l for l in arrival["links"] if l["attributes"]["devtrace.link.kind"] == "message"]
        # (The early calls are in no 1-second window: assert_only_the_last_second.)
        assert by_id[cause["span_id"]]["name"] in TICKS, by_id[cause["span_id"]]["name"]


def test_a_normal_exit_writes_the_last_second(store: Store, runtime: Path, tmp_path: Path):
    result, truth, trace = flight_run(store, "exit", "--record-seconds", "1", cwd=tmp_path)
    assert result.returncode == 0, result.describe()
    note = NOTE_RE.search(result.stderr)
    assert note and "its last 1.00 s (flight recorder" in result.stderr, result.describe()
    assert_only_the_last_second(trace, truth)
    assert_the_last_seconds_calls_and_messages(trace, truth)
    assert_the_server_is_named(trace)
    # The window is the recorder's container: never the run's slowest span or a finding's subject;
    # nor is a process's life (its whole time, mostly waiting in its loop).
    summary = result.stderr[result.stderr.index("devtrace: `"):]
    assert "devtrace.flight_window" not in summary, summary
    [slowest] = [l for l in summary.splitlines() if l.strip().startswith("slowest:")]
    assert "process " not in slowest, slowest


def test_processes_whose_spawn_was_overwritten_are_still_named(store: Store, runtime: Path, tmp_path: Path):
    # A 2 MiB ring and an early phase without pauses: the ring is overwritten many times over,
    # so the server's spawn and registration are long gone when the VM ends.
    result, truth, trace = flight_run(store, "exit", "--record-seconds", "1", "--record-mib", "2", early_pause_ms="0", cwd=tmp_path)
    assert result.returncode == 0, result.describe()
    note = NOTE_RE.search(result.stderr)
    assert note, result.describe()
    overwritten = int(note.group(3))
    assert overwritten > 100_000, f"the ring was overwritten: {result.stderr}"
    assert the_window(trace)["attributes"]["devtrace.flight.lost_events"] == overwritten
    assert_only_the_last_second(trace, truth)
    assert_the_server_is_named(trace)
    # The late calls of the last second are there, the last one with its value though the
    # early phase wrote more summaries than the ring keeps (the value slots keep the last).
    # The last call's span is the latest; the others began when the program says before it.
    calls = spans_named(trace, "Flight.Counter.late_tick/1")
    assert 1 in {argument(s) for s in calls if "devtrace.call.arguments" in s["attributes"]}
    last = max(s["start_unix_nano"] for s in calls)
    befores = truth["late_us_before_end"]
    began = [last - (us - befores["1"]) * 1000 for us in befores.values()]
    start = the_window(trace)["start_unix_nano"]
    assert len(calls) >= sum(1 for t in began if t >= start + MARGIN_IN_NS) > 50


def test_an_exception_ending_the_script_writes_the_window_with_it(store: Store, runtime: Path, tmp_path: Path):
    result, truth, trace = flight_run(store, "raise", "--record-seconds", "1", cwd=tmp_path)
    assert result.returncode == 1, result.describe()
    assert "flight boom" in result.stderr
    assert_only_the_last_second(trace, truth)
    assert_the_last_seconds_calls_and_messages(trace, truth)
    assert_the_server_is_named(trace)
    [finish] = spans_named(trace, "Flight.Main.finish/1")
    assert finish["status"]["code"] == "error" and finish["status"]["message"] == "error:RuntimeError"
    assert 'message: "flight boom"' in finish["attributes"]["devtrace.call.exception"]
    [main] = [s for s in trace["spans"] if s["name"].startswith("process ") and s["attributes"].get("devtrace.beam.exit_reason", "").startswith("{%RuntimeError")]
    assert 'message: "flight boom"' in main["attributes"]["devtrace.beam.exit_reason"]
    assert main["status"]["message"] == "exit:RuntimeError"


def test_a_vm_killed_by_sigkill_leaves_its_window(store: Store, runtime: Path, tmp_path: Path):
    result, truth, trace = flight_run(store, "kill", "--record-seconds", "1", cwd=tmp_path)
    assert result.returncode == 128 + 9, result.describe()
    assert NOTE_RE.search(result.stderr), result.describe()
    assert_only_the_last_second(trace, truth)
    assert_the_last_seconds_calls_and_messages(trace, truth)
    assert_the_server_is_named(trace)
    # Killed: the processes never exited; their lives end open at the window's end.
    [server] = spans_named(trace, "process Flight.Counter")
    assert server["attributes"]["devtrace.recorder.open"] is True


def test_sigterm_writes_the_window_of_the_vms_stop(store: Store, runtime: Path, tmp_path: Path):
    # SIGTERM stops the VM as `init:stop/0` does — its applications, then its processes killed —
    # which takes about a second here: a 3-second window holds the late calls before it.
    result, truth, trace = flight_run(store, "term", "--record-seconds", "3", cwd=tmp_path)
    assert result.returncode == 0, result.describe()
    assert NOTE_RE.search(result.stderr), result.describe()
    assert 2.9 <= the_window(trace)["attributes"]["devtrace.flight.window_seconds"] <= 3.0
    assert_the_last_seconds_calls_and_messages(trace, truth, some_older=False)
    assert_the_server_is_named(trace)
    [server] = spans_named(trace, "process Flight.Counter")
    # The VM's stop ended it: killed (by init, or through a link to a process init killed) —
    # running when the VM stopped, not failed: open, with no exit reason — or shut down by its
    # supervisor when init killed the supervisor's parent first. init kills the processes left
    # in an order of its own, so either can come; neither is an error.
    assert server["status"]["code"] != "error", server
    reason = server["attributes"].get("devtrace.beam.exit_reason")
    if reason is None:
        assert server["attributes"]["devtrace.recorder.open"] is True, server["attributes"]
    else:
        assert reason == ":shutdown", server["attributes"]
        assert "devtrace.recorder.open" not in server["attributes"], "its life ended in the window"


def test_record_seconds_0_keeps_everything(store: Store, runtime: Path, tmp_path: Path):
    result, truth, trace = flight_run(store, "exit", "--record-seconds", "0", cwd=tmp_path)
    assert result.returncode == 0, result.describe()
    note = NOTE_RE.search(result.stderr)
    assert note and note.group(3) == "0", result.describe()
    assert "flight recorder" not in result.stderr
    assert spans_named(trace, WINDOW) == []
    assert len(spans_named(trace, "Flight.Counter.early_tick/1")) == truth["early"]
    assert {argument(s) for s in spans_named(trace, "Flight.Counter.late_tick/1")} == set(range(1, truth["late"] + 1))
    [server] = spans_named(trace, "process Flight.Counter")
    assert BEFORE_WINDOW not in server["attributes"]


def flight_without_run(runtime: Path, rings: Path, **extra: str) -> dict[str, str]:
    """The environment that records a VM with a one-second flight recorder into `rings`, the
    runtime started by the VM's own flags (as a Mix project's config or a hand-set environment
    would), with no `devtrace run` to read the file when the VM ends."""
    return clean_env(
        ERL_LIBS=str(runtime),
        ERL_AFLAGS="-s devtrace_beam start",
        DEVTRACE_BEAM_DIR=str(rings),
        DEVTRACE_BEAM_LOSSLESS="0",
        DEVTRACE_BEAM_SECONDS="1",
        **extra,
    )


def test_recover_says_which_functions_a_vm_stopped_recording_call_by_call(store: Store, runtime: Path, tmp_path: Path):
    """A file left by a VM that found a function hot (tests/e2e/beam_findings/pricing_loop.exs:
    a fold's function called millions of times) says so when recovered, as `devtrace run`
    does, and the server's life carries it."""
    rings = tmp_path / "rings"
    rings.mkdir()
    program = Path(__file__).parent / "beam_findings" / "pricing_loop.exs"
    proc = subprocess.run([need("elixir"), str(program)], cwd=tmp_path, env=flight_without_run(runtime, rings),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    recovered = store.cli("recover", "--dir", str(rings))
    fold = "anonymous fn#0 in Pricing.Server.price/1"
    # Fitted to the terminal's width: compared word by word.
    said = " ".join(recovered.stdout.split())
    assert (f'devtrace show {recovered.stdout.split("devtrace show ")[1][:12]} later calls of "{fold}" not traced '
            "one by one, after 10000 calls within 100 ms (tracing a call that short costs more than the call): their "
            "time is in their callers' spans; DEVTRACE_BEAM_HOT_CALLS=0 traces every call") in said, recovered.describe()
    trace = store.show(re.search(r"into trace ([0-9a-f]{32})", recovered.stdout).group(1))
    [server] = [s for s in trace["spans"] if "devtrace.beam.hot_functions" in s["attributes"]]
    assert server["attributes"]["thread.name"] == "Pricing.Server"


def test_recover_writes_the_window_a_killed_vm_left(store: Store, runtime: Path, tmp_path: Path):
    elixir = need("elixir")
    rings = tmp_path / "rings"
    rings.mkdir()
    env = flight_without_run(runtime, rings)
    proc = subprocess.run([elixir, str(PROGRAM), "kill", "1500", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (-9, 128 + 9), proc.stderr
    truth = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("{")))
    [left] = list(rings.iterdir())
    assert re.fullmatch(r"devtrace-beam-\d+\.ring", left.name), left.name

    recovered = store.cli("recover", "--dir", str(rings))
    # (The line is fitted to the terminal's width: the path may go to a line of its own.)
    match = re.search(r"recovered BEAM VM (\d+)'s last 1\.00 s \((\d+) process(?:es)? of the program, (\d+) spans, (\d+) events\) from\s+(\S+)\s+into trace ([0-9a-f]{32}): devtrace show [0-9a-f]{12}", recovered.stdout)
    assert match, recovered.describe()
    assert match.group(5) == str(left) and left.name == f"devtrace-beam-{match.group(1)}.ring"
    assert not left.exists(), "a recovered file is removed"
    trace = store.show(match.group(6))
    window = the_window(trace)
    assert window["attributes"]["devtrace.flight.recovered"] is True
    assert window["parent_span_id"] in ("", None), "the window is the recovered trace's root"
    assert_only_the_last_second(trace, truth)
    assert_the_last_seconds_calls_and_messages(trace, truth)
    assert_the_server_is_named(trace)

    assert "nothing to recover" in store.cli("recover", "--dir", str(rings)).stdout


def test_recover_finds_the_window_of_a_devtrace_run_killed_before_it_read_it(store: Store, runtime: Path, tmp_path: Path):
    """`devtrace run --record` keeps its VMs' files in a directory of its own (in /dev/shm) and
    reads them when the program ends. Killed first (a CI job's timeout), it leaves the
    directory; `devtrace recover` with no argument finds the window in it, and removes it."""
    elixir = need("elixir")
    # Files other programs on the machine left, which this `recover` also looks at.
    strangers = {str(path) for place in ("/dev/shm", tempfile.gettempdir()) for path in Path(place).glob("devtrace-*")}
    argv = ["--data", str(store.data_dir), "run", "--record", "--record-seconds", "1", "--", elixir, str(PROGRAM), "exit", "1500", "1"]
    run = subprocess.Popen([str(store.bin), *argv], cwd=tmp_path, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # the VM is in its early phase
    [run_dir] = Path("/dev/shm").glob(f"devtrace-beam-{run.pid}-*")
    [left] = list(run_dir.iterdir())
    vm = int(re.fullmatch(r"devtrace-beam-(\d+)\.ring", left.name).group(1))
    run.kill()
    run.wait()
    # The VM goes on without the run (its output, which went through the run, is lost) and
    # ends after its late phase.
    deadline = time.monotonic() + 120
    while Path(f"/proc/{vm}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{vm}").exists(), "the VM ended"

    recovered = store.cli("recover", check=False)
    # It fails only for what it could not recover, which is none of this test's making (a
    # Python's file whose interpreter is gone, say).
    not_recovered = re.findall(r"not recovered\s+(\S+):", recovered.stdout)
    assert recovered.returncode == (1 if not_recovered else 0), recovered.describe()
    assert set(not_recovered) <= strangers, recovered.describe()
    pattern = rf"recovered BEAM VM (\d+)'s last 1\.00 s \(\d+ process(?:es)? of the program, \d+ spans, \d+ events\) from\s+{re.escape(str(left))}\s+into trace ([0-9a-f]{{32}})"
    match = re.search(pattern, recovered.stdout)
    assert match, recovered.describe()
    assert re.search(rf"removed\s+{re.escape(str(run_dir))}: the `devtrace\s+run` that made it is gone", recovered.stdout), recovered.describe()
    assert not run_dir.exists(), "the directory goes with its last file"
    assert int(match.group(1)) == vm
    trace = store.show(match.group(2))
    window = the_window(trace)
    assert window["attributes"]["devtrace.flight.recovered"] is True
    assert 0.95 <= window["attributes"]["devtrace.flight.window_seconds"] <= 1.0, window["attributes"]
    # The late phase's calls, one every 10 ms, fill the window's second.
    assert len(spans_named(trace, "Flight.Counter.late_tick/1")) > 50
    assert spans_named(trace, "Flight.Counter.early_tick/1") == []
    assert_the_server_is_named(trace)


VALUES_PROGRAM = APP_DIR / "flight_values.exs"
HANDLE_CALL = "Ledger.Server.handle_call/3"
POST_ARGS = re.compile(r"\{:post, (\d+)\}, \{#PID<[\d.]+>, .*\}, %\{count: (\d+), last: (\d+)\}")


def ledger_state(count: int) -> str:
    return f"%{{count: {count}, last: {count}}}"


def assert_the_windows_last_calls_keep_their_values(trace: dict, posted: int) -> tuple[int, int]:
    """The crash and the last calls before it have their values, every value shown is its own
    call's, and the calls that lost theirs are the window's oldest. Returns (the window's
    `handle_call/3` spans, how many kept their arguments)."""
    # The crashing callback: its arguments, its exception, the state it was given.
    [refund] = [s for s in spans_named(trace, HANDLE_CALL) if "{:refund" in s["attributes"].get("devtrace.call.arguments", "")]
    attributes = refund["attributes"]
    assert refund["status"] == {"code": "error", "message": "error:badarith"}, refund["status"]
    assert attributes["devtrace.call.arguments"].startswith(f"{{:refund, {posted}, 0}}, "), attributes
    assert attributes["devtrace.call.arguments"].endswith(ledger_state(posted)), attributes
    assert attributes["devtrace.beam.state.before"] == ledger_state(posted), "the state before the crash"
    assert attributes["devtrace.call.exception"] == "{:error, :badarith}"
    [client] = spans_named(trace, "Ledger.Server.refund/2")
    assert client["attributes"]["devtrace.call.arguments"] == f"{posted}, 0"
    crashed = [s for s in spans_named(trace, "process Ledger.Server") if s["status"]["code"] == "error"]
    assert [s["attributes"]["devtrace.beam.exit_reason"].startswith("{:badarith, ") for s in crashed] == [True]

    # Every value shown is its call's: a post's number agrees across its arguments, the state
    # it was given, its reply and the state it left (each a summary of its own).
    handled = sorted((s for s in spans_named(trace, HANDLE_CALL) if s is not refund), key=lambda s: s["start_unix_nano"])
    numbers = []
    for span in handled:
        attributes = span["attributes"]
        if "devtrace.call.arguments" in attributes:
            match = POST_ARGS.fullmatch(attributes["devtrace.call.arguments"])
            assert match, attributes
            n = int(match.group(1))
            assert (int(match.group(2)), int(match.group(3))) == (n - 1, n - 1), attributes
            numbers.append(n)
            if "devtrace.beam.state.before" in attributes:
                assert attributes["devtrace.beam.state.before"] == ledger_state(n - 1), attributes
            if "devtrace.call.return" in attributes:
                assert attributes["devtrace.call.return"] == f"{{:reply, {{:posted, {n}}}, {ledger_state(n)}}}", attributes
        if "devtrace.beam.state.before" in attributes and "devtrace.beam.state.after" in attributes:
            before = int(re.fullmatch(r"%\{count: (\d+), last: \1\}", attributes["devtrace.beam.state.before"]).group(1))
            assert attributes["devtrace.beam.state.after"] == ledger_state(before + 1), attributes
    for span in spans_named(trace, "Ledger.Server.post/1"):
        attributes = span["attributes"]
        if "devtrace.call.arguments" in attributes and "devtrace.call.return" in attributes:
            assert attributes["devtrace.call.return"] == f"{{:posted, {attributes['devtrace.call.arguments']}}}", attributes
    # The value area holds the last summaries: the calls that kept their arguments are the
    # window's last ones, in order, up to the last post.
    kept = len(numbers)
    assert numbers == list(range(posted - kept + 1, posted + 1)), numbers
    assert all("devtrace.call.arguments" in s["attributes"] for s in handled[len(handled) - kept:])
    last = handled[-1]["attributes"]
    assert last["devtrace.call.return"] == f"{{:reply, {{:posted, {posted}}}, {ledger_state(posted)}}}"
    assert (last["devtrace.beam.state.before"], last["devtrace.beam.state.after"]) == (ledger_state(posted - 1), ledger_state(posted))
    return len(handled), kept


def assert_a_long_busy_run(truth: dict, trace: dict) -> None:
    """The busy phase made more summaries than the values' share of a 2 MiB file's names log
    holds (128 KiB: some 2,600, about 400 posts' worth), and the window is its last second."""
    assert truth["posted"] > 2000, truth
    assert 0.95 <= the_window(trace)["attributes"]["devtrace.flight.window_seconds"] <= 1.0


def test_a_long_busy_runs_window_keeps_its_last_calls_values(store: Store, runtime: Path, tmp_path: Path):
    elixir = need("elixir")
    argv = ["--data", str(store.data_dir), "run", "--record", "--record-seconds", "1", "--record-mib", "2", "--", elixir, str(VALUES_PROGRAM), "1500", "1000", "5"]
    proc = subprocess.run([str(store.bin), *argv], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 1 and "(ArithmeticError)" in result.stderr, result.describe()
    truth = json.loads(next(l for l in result.stdout.splitlines() if l.startswith("{")))
    [run] = store.ls()
    trace = store.show(run["trace_id"])
    assert_a_long_busy_run(truth, trace)
    in_window, kept = assert_the_windows_last_calls_keep_their_values(trace, truth["posted"])
    # 3,840 cells (1/8 of 2 MiB) and some 7 summaries a post kept there (the server's: its
    # state goes with them): the last 500 or so posts keep theirs, the window's older ones
    # (some 1,000 more here) lost them to later ones.
    print(f"the window's posts: {in_window}, with their values: {kept}")
    assert 200 <= kept < in_window, (in_window, kept)


def test_recover_keeps_the_last_calls_values_of_a_file_a_vm_left(store: Store, runtime: Path, tmp_path: Path):
    elixir = need("elixir")
    rings = tmp_path / "rings"
    rings.mkdir()
    env = flight_without_run(runtime, rings, DEVTRACE_BEAM_MIB="2")
    proc = subprocess.run([elixir, str(VALUES_PROGRAM), "1500", "1000", "5"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "(ArithmeticError)" in proc.stderr, proc.stderr
    truth = json.loads(next(l for l in proc.stdout.splitlines() if l.startswith("{")))
    recovered = store.cli("recover", "--dir", str(rings))
    match = re.search(r"into trace ([0-9a-f]{32})", recovered.stdout)
    assert match, recovered.describe()
    trace = store.show(match.group(1))
    assert the_window(trace)["attributes"]["devtrace.flight.recovered"] is True
    assert_a_long_busy_run(truth, trace)
    in_window, kept = assert_the_windows_last_calls_keep_their_values(trace, truth["posted"])
    assert 200 <= kept < in_window, (in_window, kept)
