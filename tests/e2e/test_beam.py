"""devtrace's BEAM runtime end to end: real Erlang and Elixir programs recorded by
`devtrace run --record` with no change to them (docs/beam.md), read back from the store.

- `elixir counter.exs` (tests/e2e/beam_app): a GenServer behind three client processes, a
  process registered under a hostile name sending a hostile message, a process that crashes.
  The program prints its own ground truth (how many calls it made); the recording must have a
  span for each of them with its arguments and return value, every process as a thread, each
  client's wait for a reply linked to the server's send (and each request's arrival to the
  client's call), the crash's exit reason as an error, no event lost, and the hostile text
  inert in `devtrace show`.
- `erl -noshell -s pingpong start -s init stop` (an Erlang module compiled for the test): the
  same for an Erlang program started the way Erlang programs are.
- `erl -noshell -s relay main`: a pipeline of plain processes handing on the message they got
  unchanged: one mailbox backlog, on the slow stage, its longest wait within 15 % of what the
  stage measured (each receive linked to the send just before it on the way).
- `erl -noshell -s reports main`: a `gen_server:call/3` written inline with a 100 ms timeout,
  caught, to a server that takes 300 ms: a `call_timeout` in `reports:main/0` naming the
  server's callback, its time within 15 % of what the server measured.
- `erl -noshell -s conn_pool main`: an Erlang connection pool of two whose eight clients call
  it inline (`gen_server:call/2` in a function that does more): the clients' waits for a
  connection are the pool's limit, every call counted — the two answered at once and the six
  kept waiting until another client checked one in — with the longest wait and the hold within
  15 % of what the program measured, traced and with `--instrument`.
- `erl -noshell -s shop main`: an Erlang shop whose gen_servers' client functions name no verb
  (`price/1`, `stock/1`, `tax/1`): the three asked one after another grouped, the shipping
  for a total computed from their answers held out; a `lists:foldl/3` (and, run again, a list
  comprehension calling `price/1`, then one calling `gen_server:call/2`: `pricing/ask`) asking
  one price at a time, every call of it counted (its fun's last call returns what the fold does, and is no
  tail call of the function around it); both savings within 15 % of what the program measured.
- `elixir lifecycle.exs`: a supervisor (one_for_one) whose worker crashes twice and then
  works, a monitor, links (one process taken down by a linked one's exit, one that links and
  unlinks), a process trapping exits, and two gen_statem machines (state functions and
  handle_event). The recording must name each worker's supervisor and restart count, link each
  `'DOWN'`/`'EXIT'` received to the process that went down, carry the `link`/`unlink` events,
  and record each machine's `{State, Data}` before and after each callback.
- `mix test` of a Mix project made by `mix new`: the test's call of the project's code, with
  its arguments and results, inside the test's span; `iex -S mix` of the same project with an
  expression typed at its prompt; `mix test --trace` with a failing test: ExUnit's
  counts and failing test in the run's summary and on its span.
- without the runtime built, `--record` of `erl` says so and how to build it; the program runs.

The runtime (sdk/beam and crates/devtrace-beamrecorder) is built by scripts/build-beam into
`beam/` beside the binary's directory (target/beam), which is where devtrace looks for it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import REPO_ROOT, CliResult, Store, clean_env

APP_DIR = REPO_ROOT / "tests" / "e2e" / "beam_app"
NOTE_RE = re.compile(
    r"BEAM VM \d+ recorded: (\d+) process(?:es)? of the program, (\d+) events \((\d+) lost\), (\d+) spans"
)


def need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        message = f"{program} is not installed (apt-get install elixir erlang-dev; scripts/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def runtime(devtrace_bin: Path) -> Path:
    lib = devtrace_bin.parent.parent / "beam"
    if not (lib / "devtrace_beam" / "ebin" / "devtrace_beam.beam").is_file():
        pytest.fail(f"the BEAM runtime is not built in {lib}: run scripts/build-beam")
    return lib


def recorded_run(store: Store, *command: str, cwd: Path, **env: str) -> tuple[dict, dict, str]:
    """Runs `devtrace run --record -- command` (with `env` added to the environment); returns the
    program's ground truth (its last JSON line on stdout), the trace (`show --json`) and the
    recording's note's numbers."""
    argv = ["--data", str(store.data_dir), "run", "--record", "--", *command]
    proc = subprocess.run([str(store.bin), *argv], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    truth = ground_truth(result.stdout)
    note = NOTE_RE.search(result.stderr)
    assert note, result.describe()
    [run] = store.ls()
    return truth, store.show(run["trace_id"]), note


def ground_truth(stdout: str) -> dict:
    """A test program's ground truth: its last JSON line (the VM's logger may print a crash
    report after it)."""
    return json.loads(next(l for l in reversed(stdout.splitlines()) if l.startswith("{")))


def spans_named(trace: dict, name: str) -> list[dict]:
    return [s for s in trace["spans"] if s["name"] == name]


def by_id(trace: dict) -> dict[str, dict]:
    return {s["span_id"]: s for s in trace["spans"]}


def message_links(span: dict) -> list[dict]:
    return [l for l in span["links"] if l["attributes"]["devtrace.link.kind"] == "message"]


def test_an_elixir_program_is_recorded_with_its_calls_processes_and_messages(
    store: Store, runtime: Path, tmp_path: Path
):
    elixir = need("elixir")
    truth, trace, note = recorded_run(store, elixir, str(APP_DIR / "counter.exs"), cwd=tmp_path)
    assert note.group(3) == "0", "lossless: no event lost"
    spans = by_id(trace)

    # Every call the program made, with its arguments and result.
    adds = spans_named(trace, "Counter.Server.add/1")
    assert len(adds) == truth["adds"], [s["name"] for s in trace["spans"]]
    handled = [
        s for s in spans_named(trace, "Counter.Server.handle_call/3")
        if s["attributes"]["devtrace.call.arguments"].startswith("{:add, ")
    ]
    assert len(handled) == truth["adds"]
    for call in handled:
        arguments = call["attributes"]["devtrace.call.arguments"]
        added = int(re.match(r"\{:add, (\d+)\}", arguments).group(1))
        assert re.fullmatch(rf"\{{:reply, \{{:ok, \d+\}}, %\{{.*total: \d+.*\}}\}}", call["attributes"]["devtrace.call.return"])
        assert "hunter2" not in arguments, "the state's password is redacted"
        assert "password: [REDACTED:secret_name]" in arguments
        assert 101 <= added <= 100 * truth["clients"] + 4
    # The GenServer's state before and after each callback: each add moves the total by what
    # was added, the state after one call is the state before the next (time travel), and the
    # state's password is redacted in both.
    for call in handled:
        added = int(re.match(r"\{:add, (\d+)\}", call["attributes"]["devtrace.call.arguments"]).group(1))
        before = call["attributes"]["devtrace.beam.state.before"]
        after = call["attributes"]["devtrace.beam.state.after"]
        assert "hunter2" not in before + after and "password: [REDACTED:secret_name]" in after, after
        assert state_total(after) == state_total(before) + added, (before, after)
    ordered = sorted(handled, key=lambda s: s["start_unix_nano"])
    assert state_total(ordered[0]["attributes"]["devtrace.beam.state.before"]) == 0
    for earlier, later in zip(ordered, ordered[1:]):
        assert earlier["attributes"]["devtrace.beam.state.after"] == later["attributes"]["devtrace.beam.state.before"]
    assert state_total(ordered[-1]["attributes"]["devtrace.beam.state.after"]) == truth["total"]
    [init] = spans_named(trace, "Counter.Server.init/1")
    assert "devtrace.beam.state.before" not in init["attributes"]
    assert state_total(init["attributes"]["devtrace.beam.state.after"]) == 0
    [cast] = spans_named(trace, "Counter.Server.handle_cast/2")
    # The hostile note kept in the state is escaped text there, as in the arguments.
    assert "last_note" not in cast["attributes"]["devtrace.beam.state.before"]
    assert 'last_note: "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}<script>alert(1)</script>"' in cast["attributes"]["devtrace.beam.state.after"]
    assert not [s for s in trace["spans"] if "devtrace.beam.state.before" in s["attributes"] and not s["name"].startswith("Counter.Server.")]

    [total] = spans_named(trace, "Counter.Server.total/0")
    assert total["attributes"]["devtrace.call.return"] == str(truth["total"])

    # Processes are threads: the server by its registered name, its calls in it.
    assert {s["attributes"]["thread.name"] for s in handled} == {"Counter.Server"}
    clients = {s["attributes"]["thread.name"] for s in adds}
    assert len(clients) == truth["clients"] and all(re.fullmatch(r"<\d+\.\d+\.\d+>", c) for c in clients)

    # Each client's wait for its reply is linked to the server's send, and each request's
    # arrival at the server to the client's call that sent it.
    for add in adds:
        [wait] = [s for s in trace["spans"] if s["parent_span_id"] == add["span_id"] and s["name"] == "receive"]
        [link] = message_links(wait)
        assert spans[link["span_id"]]["attributes"]["thread.name"] == "Counter.Server"
        assert link["attributes"]["devtrace.link.wait_ns"] > 0
    request_causes = [
        spans[l["span_id"]]["name"]
        for s in trace["spans"]
        if s["attributes"].get("thread.name") == "Counter.Server"
        for l in message_links(s)
    ]
    assert request_causes.count("Counter.Server.add/1") == truth["adds"]

    # Exit reasons: the crash is an error with its reason, a normal exit is not.
    [crashed] = spans_named(trace, f"process {truth['crasher'].removeprefix('#PID')}")
    assert crashed["status"]["code"] == "error"
    assert "RuntimeError" in crashed["attributes"]["devtrace.beam.exit_reason"]
    assert "crashed: on purpose" in crashed["attributes"]["devtrace.beam.exit_reason"]
    clients_done = [s for s in trace["spans"] if s["name"] in {f"process {c}" for c in clients}]
    assert len(clients_done) == truth["clients"]
    assert all(s["status"]["code"] != "error" and s["attributes"]["devtrace.beam.exit_reason"] == ":normal" for s in clients_done)

    # The waits are worded in `show`, and hostile names and messages stay inert.
    shown = store.cli("show", trace["trace_id"]).stdout
    assert re.search(r'waited [0-9.]+ [mµ]?s for a message from "Counter.Server" \(sent at \+', shown), shown
    assert "\x1b" not in shown and "\x07" not in shown, "no terminal control reaches the terminal"
    assert '"evil\\u001b[31m\\nname"' in shown, shown
    [note_call] = spans_named(trace, "Counter.Server.note/1")
    assert note_call["attributes"]["devtrace.call.arguments"] == '"\\u{1b}[2J\\u{1b}]0;pwned\\u{7}<script>alert(1)</script>"'


def process_span(trace: dict, pid: str) -> dict:
    [span] = spans_named(trace, f"process {pid.removeprefix('#PID')}")
    return span


def exit_links(span: dict) -> list[dict]:
    """The links of kind `thread.join` to a BEAM process's end (its object `erlang.process`)."""
    return [
        l for l in span["links"]
        if l["attributes"]["devtrace.link.kind"] == "thread.join" and l["attributes"]["devtrace.link.object"] == "erlang.process"
    ]


def link_events(span: dict) -> list[tuple[str, str, str]]:
    return [
        (e["name"], e["attributes"]["devtrace.beam.link.process"], e["attributes"]["devtrace.beam.link.by"])
        for e in span["events"] if e["name"] in {"link", "unlink"}
    ]


def test_an_elixir_programs_supervisor_restarts_links_monitors_and_state_machines_are_recorded(
    store: Store, runtime: Path, tmp_path: Path
):
    elixir = need("elixir")
    truth, trace, note = recorded_run(store, elixir, str(APP_DIR / "lifecycle.exs"), cwd=tmp_path)
    assert note.group(3) == "0", "lossless: no event lost"
    spans = by_id(trace)

    # The supervision tree: every start of the worker names its supervisor, each start after a
    # crash is a restart with its count, and the crashes are errors with their reasons.
    # (Registered, each is named Lifecycle.Flaky, not by its pid: they are told apart by time.)
    workers = sorted(spans_named(trace, "process Lifecycle.Flaky"), key=lambda s: s["start_unix_nano"])
    assert len(workers) == len(truth["workers"]) == truth["attempts"] == truth["crashes"] + 1
    assert len({w["attributes"]["thread.id"] for w in workers}) == len(workers), "three processes"
    assert all(w["attributes"]["devtrace.beam.supervisor"] == truth["supervisor"] for w in workers)
    assert all(w["attributes"]["devtrace.beam.initial_call"] == "Lifecycle.Flaky.init/1" for w in workers)
    assert [w["attributes"].get("devtrace.beam.restart") for w in workers] == [None, *range(1, truth["crashes"] + 1)]
    for n, crashed in enumerate(workers[:-1], start=1):
        assert crashed["status"]["code"] == "error" and crashed["status"]["message"] == "exit:RuntimeError"
        assert f'message: "flaky start {n}"' in crashed["attributes"]["devtrace.beam.exit_reason"]
    assert workers[-1]["status"]["code"] != "error"
    assert not [s for s in trace["spans"] if "devtrace.beam.restart" in s["attributes"] and s not in workers]
    # Linked to the supervisor at its start; the supervisor hears each crash as an 'EXIT'.
    assert all(("link", truth["supervisor"], truth["supervisor"]) in link_events(w) for w in workers)
    [supervisor] = spans_named(trace, f"process {truth['supervisor']}")
    heard = [
        spans[l["span_id"]]["span_id"]
        for s in trace["spans"] if s["name"] == "receive" and s["attributes"]["thread.name"] == truth["supervisor"]
        for l in exit_links(s)
    ]
    assert all(w["span_id"] in heard for w in workers[:-1]), "each crash ended a wait of the supervisor"
    assert "devtrace.beam.supervisor" not in supervisor["attributes"]

    # A monitor: the DOWN's receive follows the end of the process that went down.
    victim = process_span(trace, truth["victim"])
    assert victim["attributes"]["devtrace.beam.exit_reason"] == ":boom"
    [spawned_by] = [l for l in victim["links"] if l["attributes"]["devtrace.link.kind"] == "thread.start"]
    main_thread = spans[spawned_by["span_id"]]["attributes"]["thread.name"]
    [down] = [
        s for s in trace["spans"]
        if s["name"] == "receive" and s["attributes"]["thread.name"] == main_thread
        and any(l["span_id"] == victim["span_id"] for l in exit_links(s))
    ]
    assert down["end_unix_nano"] >= victim["end_unix_nano"]

    # Links: `linked` was taken down by `anchor`'s exit and says so; `unlinker` linked and
    # unlinked and lived on; the events name the other process and who made the change.
    anchor_name = "anchor\x1b[31m\nname"
    [anchor] = spans_named(trace, f"process {anchor_name}")
    linked = process_span(trace, truth["linked"])
    unlinker = process_span(trace, truth["unlinker"])
    assert linked["attributes"]["devtrace.beam.killed_by"] == anchor_name
    assert [spans[l["span_id"]]["name"] for l in exit_links(linked)] == [anchor["name"]]
    assert linked["status"]["code"] == "error" and linked["attributes"]["devtrace.beam.exit_reason"] == ":cut"
    linked_name = linked["attributes"]["thread.name"]
    unlinker_name = unlinker["attributes"]["thread.name"]
    assert link_events(linked) == [("link", anchor_name, linked_name)]
    assert link_events(unlinker) == [("link", anchor_name, unlinker_name), ("unlink", anchor_name, unlinker_name)]
    assert link_events(anchor) == [
        ("link", linked_name, linked_name), ("link", unlinker_name, unlinker_name), ("unlink", unlinker_name, unlinker_name),
    ]
    assert "devtrace.beam.killed_by" not in anchor["attributes"] and "devtrace.beam.killed_by" not in unlinker["attributes"]
    assert unlinker["status"]["code"] != "error"

    # A process trapping exits hears of its linked child's exit as an 'EXIT' message.
    trapper = process_span(trace, truth["trapper"])
    child = process_span(trace, truth["trapped_child"])
    [trapped] = [
        s for s in trace["spans"]
        if s["name"] == "receive" and s["attributes"]["thread.name"] == trapper["attributes"]["thread.name"] and exit_links(s)
    ]
    assert [l["span_id"] for l in exit_links(trapped)] == [child["span_id"]]
    assert "devtrace.beam.killed_by" not in trapper["attributes"], "it trapped the exit and lived"

    # gen_statem, state functions: {State, Data} before and after each callback, the state name.
    calls = sorted(
        [s for s in trace["spans"] if s["name"] in {"Lifecycle.Door.locked/3", "Lifecycle.Door.open/3"}],
        key=lambda s: s["start_unix_nano"],
    )
    assert len(calls) == len(truth["door_replies"])
    [door_init] = spans_named(trace, "Lifecycle.Door.init/1")
    assert door_init["attributes"]["devtrace.beam.statem.state"] == ":locked"
    assert door_init["attributes"]["devtrace.beam.state.after"].startswith("{:locked, %{code: [1, 2], input: [], ")
    assert door_init["attributes"]["devtrace.beam.state.after"] == calls[0]["attributes"]["devtrace.beam.state.before"]
    for earlier, later in zip(calls, calls[1:]):
        assert earlier["attributes"]["devtrace.beam.state.after"] == later["attributes"]["devtrace.beam.state.before"]
    states = [c["attributes"]["devtrace.beam.statem.state"] for c in calls]
    assert states == [":locked", ":locked", ":locked", ":open", ":open", ":locked"], truth["door_replies"]
    for call in calls:
        # The state named by the function is the state before; the name after, the state after.
        assert call["attributes"]["devtrace.beam.state.before"].startswith("{:" + call["name"].split(".")[-1].split("/")[0] + ", ")
        assert call["attributes"]["devtrace.beam.state.after"].startswith("{" + call["attributes"]["devtrace.beam.statem.state"] + ", ")
    assert "input: [1]" in calls[0]["attributes"]["devtrace.beam.state.after"], "{:keep_state, data}"
    assert "opened: 1" in calls[3]["attributes"]["devtrace.beam.state.after"], "{:next_state, :open, data}"
    assert calls[4]["attributes"]["devtrace.beam.state.after"] == calls[4]["attributes"]["devtrace.beam.state.before"], "keep_state_and_data"
    hostile = 'label: "\\u{1b}[2J\\u{1b}]0;pwned\\u{7}<script>alert(1)</script>"'
    assert all(hostile in c["attributes"]["devtrace.beam.state.after"] for c in calls)

    # gen_statem, handle_event_function: the state is an argument.
    flips = sorted(spans_named(trace, "Lifecycle.Switch.handle_event/4"), key=lambda s: s["start_unix_nano"])
    assert [f["attributes"]["devtrace.beam.statem.state"] for f in flips] == [f":{state}" for state in truth["flips"]]
    assert [f["attributes"]["devtrace.beam.state.after"] for f in flips] == ["{:on, 1}", "{:off, 2}", "{:on, 3}"]
    assert [f["attributes"]["devtrace.beam.state.before"] for f in flips] == ["{:off, 0}", "{:on, 1}", "{:off, 2}"]
    [switch_init] = spans_named(trace, "Lifecycle.Switch.init/1")
    assert switch_init["attributes"]["devtrace.beam.state.after"] == "{:off, 0}"
    assert not [s for s in trace["spans"] if "devtrace.beam.statem.state" in s["attributes"] and "Door" not in s["name"] and "Switch" not in s["name"]]

    # `show` words the waits on exits, and hostile names and state stay inert.
    shown = store.cli("show", trace["trace_id"]).stdout
    # (The main process's many short waits are folded into one row there; the trapper's is not.)
    child_name = child["attributes"]["thread.name"]
    assert re.search(r'⇠ (follows|waited [0-9.]+ [mµ]?s for) the exit of "' + re.escape(child_name) + r'" \(at \+', shown), shown
    assert 'the exit of "anchor\\u001b[31m\\nname" (at +' in shown, shown
    assert "\x1b" not in shown and "\x07" not in shown, "no terminal control reaches the terminal"


def state_total(state: str) -> int:
    return int(re.search(r"total: (\d+)", state).group(1))


def test_a_calls_exit_is_named_by_the_reason_inside_otps_wrapping(store: Store, runtime: Path, tmp_path: Path):
    # OTP wraps a call's exit reason with the call ({Reason, {GenServer, :call, …}}): the
    # caller's failed call is named by what is inside, as the server's exit is.
    truth, trace, _ = recorded_run(store, need("elixir"), str(APP_DIR / "call_exits.exs"), cwd=tmp_path)
    assert truth == {"crashed": "{%RuntimeError{...}, ...}", "called_itself": "{:calling_self, ...}"}
    for function, reason in (("Ledger.post/1", "exit:RuntimeError"), ("Ledger.audit/0", "exit:calling_self")):
        [call] = spans_named(trace, function)
        assert call["status"] == {"code": "error", "message": reason}, call["status"]


@pytest.mark.parametrize("chosen", ["Cart.Server", "Cart.Server, Counter.Server"])
def test_only_the_chosen_genservers_state_is_recorded(store: Store, runtime: Path, tmp_path: Path, chosen: str):
    elixir = need("elixir")
    truth, trace, _ = recorded_run(store, elixir, str(APP_DIR / "counter.exs"), cwd=tmp_path, DEVTRACE_BEAM_STATE=chosen)
    handled = spans_named(trace, "Counter.Server.handle_call/3")
    assert len(handled) == truth["adds"] + 1, "every call is still recorded, with its values"
    assert all("devtrace.call.arguments" in s["attributes"] for s in handled)
    with_state = [s for s in trace["spans"] if "devtrace.beam.state.before" in s["attributes"]]
    if "Counter.Server" in chosen:
        assert {s["name"] for s in with_state} == {"Counter.Server.handle_call/3", "Counter.Server.handle_cast/2"}
        assert len(with_state) == truth["adds"] + 2
    else:
        assert with_state == []
        assert not [s for s in trace["spans"] if "devtrace.beam.state.after" in s["attributes"]]


def test_an_erlang_program_started_with_s_is_recorded(store: Store, runtime: Path, tmp_path: Path):
    erlc = need("erlc")
    erl = need("erl")
    subprocess.run([erlc, "-o", str(tmp_path), str(APP_DIR / "pingpong.erl")], check=True)
    truth, trace, note = recorded_run(
        store, erl, "-noshell", "-pa", str(tmp_path), "-s", "pingpong", "start", "-s", "init", "stop", cwd=tmp_path
    )
    assert note.group(3) == "0"
    assert truth["served"] == truth["pings"]
    doubles = spans_named(trace, "pingpong:double/1")
    assert sorted(s["attributes"]["devtrace.call.arguments"] for s in doubles) == [str(n) for n in range(1, truth["pings"] + 1)]
    assert sorted(int(s["attributes"]["devtrace.call.return"]) for s in doubles) == [2 * n for n in range(1, truth["pings"] + 1)]
    assert {s["attributes"]["thread.name"] for s in doubles} == {"pong_server"}
    [server] = spans_named(trace, "process pong_server")
    assert server["attributes"]["devtrace.beam.exit_reason"] == f"{{shutdown, {truth['served']}}}"
    assert server["status"]["code"] != "error", "a shutdown is a normal exit"
    spans = by_id(trace)
    # The starting process's waits for its pongs, each linked to the server's send.
    [start] = spans_named(trace, "pingpong:start/0")
    pong_waits = [
        s for s in trace["spans"]
        if s["name"] == "receive" and s["attributes"]["thread.name"] == start["attributes"]["thread.name"]
        and any(spans[l["span_id"]]["attributes"]["thread.name"] == "pong_server" for l in message_links(s))
    ]
    assert len(pong_waits) >= truth["pings"]


def test_a_message_handed_on_unchanged_along_a_pipeline_links_each_hop_to_the_send_before_it(
    store: Store, runtime: Path, tmp_path: Path
):
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(APP_DIR / "relay.erl")], check=True)
    truth, _, _ = recorded_run(store, need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "relay", "main", cwd=tmp_path)
    findings = store.json("insights", "--json")["findings"]
    backlogs = [f for f in findings if f["kind"] == "mailbox_backlog"]
    # Only enrich fell behind: the store's receives follow enrich's sends, not parse's or the
    # producer's sends of the same record long before. Unregistered, it is shown by the
    # function its loop's turns run beside its pid.
    enrich = f'"relay:stage/3" process "{truth["enrich"]}"'
    assert [f["title"].split(" fell behind")[0] for f in backlogs] == [enrich], [f["title"] for f in backlogs]
    assert abs(backlogs[0]["numbers"]["max_wait_ms"] - truth["enrich_max_wait_ms"]) <= 0.15 * truth["enrich_max_wait_ms"], (backlogs[0], truth)
    # An Erlang program is advised in Erlang's terms, not Elixir's.
    advice = backlogs[0]["recommendation"]
    assert "a process per item" in advice and "PartitionSupervisor" not in advice, advice


@pytest.mark.parametrize("flags", [(), ("--instrument",)], ids=["traced", "instrument"])
def test_a_pipeline_stage_whose_callbacks_hand_on_to_helpers_falls_behind_by_its_real_waits(
    store: Store, runtime: Path, tmp_path: Path, flags: tuple[str, ...]
):
    # Each message's work is two calls (the callback, then the helper it tail-calls): one unit
    # of work, so the waits are the program's own, not matched to every other call.
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(APP_DIR / "log_stages.erl")], check=True)
    command = [need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "log_stages", "main"]
    result, _ = recorded_command(store, command, tmp_path, flags=flags, DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"))
    truth = ground_truth(result.stdout)
    findings = store.json("insights", "--json")["findings"]
    [found] = [f for f in findings if f["kind"] == "mailbox_backlog"]
    assert found["title"].startswith('"geoip" fell behind its senders'), found["title"]
    assert found["operation"] == "log_stages:handle_cast/2"
    # The call asking geoip for its waits at the end is no message it fell behind on.
    assert found["numbers"]["messages"] == truth["lines"], found
    for measured, expected in [("max_wait_ms", "geoip_max_wait_ms"), ("mean_wait_ms", "geoip_mean_wait_ms")]:
        assert abs(found["numbers"][measured] - truth[expected]) <= 0.15 * truth[expected], (found, truth)
    # A message's work is the callback and its helper: the 6 ms lookup, not half of it.
    assert found["numbers"]["callback_ms_mean"] >= 6.0, found
    # Lines were handed on about every 1 ms (the reader does no work of its own).
    assert found["numbers"]["arrival_every_ms"] < 3.0, found


@pytest.mark.parametrize("flags", [(), ("--instrument",)], ids=["traced", "instrument"])
def test_a_crash_in_the_helper_a_callback_tail_called_is_a_restart_loop_in_the_callbacks_state(
    store: Store, runtime: Path, tmp_path: Path, flags: tuple[str, ...]
):
    sources = [str(APP_DIR / name) for name in ("feed_poller.erl", "feed_sup.erl")]
    subprocess.run([need("erlc"), "-o", str(tmp_path), *sources], check=True)
    command = [need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "feed_sup", "main"]
    result, _ = recorded_command(store, command, tmp_path, flags=flags, DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"))
    truth = ground_truth(result.stdout)
    assert truth["gave_up"], truth
    findings = store.json("insights", "--json")["findings"]
    [found] = [f for f in findings if f["kind"] == "restart_loop"]
    # The first life and each restart until the intensity was spent.
    assert found["numbers"]["crashes"] == truth["intensity"] + 1, found
    assert found["title"].startswith('"feed_poller" crashed'), found["title"]
    assert found["title"].endswith('"error:badarg" in "feed_poller:poll/1"'), found["title"]
    # The state is the one handle_info/2 was given: poll/1 ran in it.
    assert found["numbers"]["states_before_crash"] == 1, found
    assert 'interval => \\"soon\\"' in found["recommendation"], found["recommendation"]


@pytest.mark.parametrize("flags", [(), ("--instrument",)], ids=["traced", "instrument"])
def test_an_erlang_pools_clients_calling_inline_are_each_counted_waiting_for_its_limit(
    store: Store, runtime: Path, tmp_path: Path, flags: tuple[str, ...]
):
    # The two clients answered at once spent little of their function in the call, so their
    # `receive` is the call; the six kept waiting spent most of it there, so the function is.
    # Every call counts either way, and so does each check-in, arrived while the pool was busy.
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(APP_DIR / "conn_pool.erl")], check=True)
    command = [need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "conn_pool", "main"]
    result, _ = recorded_command(store, command, tmp_path, flags=flags, DEVTRACE_BEAM_CACHE=str(tmp_path / "cache"))
    truth = ground_truth(result.stdout)
    findings = store.json("insights", "--json")["findings"]
    [found] = [f for f in findings if f["kind"] == "concurrency_limit"]
    assert found["title"].startswith(
        f'Callers of "conn_pool" waited for what it hands out: {truth["waited"]} of {truth["calls"]} calls'
    ), found["title"]
    assert found["numbers"]["most_held"] == truth["size"], found
    assert abs(found["numbers"]["max_wait_ms"] - truth["max_wait_ms"]) <= 0.15 * truth["max_wait_ms"], (found, truth)
    assert abs(found["numbers"]["hold_ms_median"] - truth["hold_ms"]) <= 0.15 * truth["hold_ms"], (found, truth)
    assert "serialised_process" not in [f["kind"] for f in findings], [f["title"] for f in findings]


def test_an_erlang_call_written_inline_that_times_out_names_the_function_and_what_the_server_did(
    store: Store, runtime: Path, tmp_path: Path
):
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(APP_DIR / "reports.erl")], check=True)
    truth, _, _ = recorded_run(store, need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "reports", "main", cwd=tmp_path)
    assert truth["summary"] == "no_report", truth
    findings = store.json("insights", "--json")["findings"]
    [found] = [f for f in findings if f["kind"] == "call_timeout"]
    assert found["title"].startswith('A call to "reports" timed out after 100 ms in "reports:main/0" (1 time)'), found["title"]
    assert '"reports:handle_call/3"' in found["title"], found["title"]
    server_ms = float(re.search(r'"reports:handle_call/3" \(([0-9.]+) ms', found["title"]).group(1))
    assert abs(server_ms - truth["server_ms"]) <= 0.15 * truth["server_ms"], (found["title"], truth)
    assert found["numbers"]["timeout_ms"] == truth["timeout_ms"], found


# How `basket_total/1` asks the prices: (the code, the call the finding names, the function
# whose loop it is).
SHOP_BASKET_LOOPS = {
    "fold": ("lists:foldl(fun(Sku, Sum) -> Sum + price(Sku) end, 0, Skus).", "pricing/price", "shop:basket_total/1"),
    # As Erlang code often asks a list: each price asked in a turn of the loop the compiler
    # makes of a list comprehension (`-basket_total/1-lc$^0/1-0-`), which names no call...
    "comprehension": ("lists:sum([price(Sku) || Sku <- Skus]).", "pricing/price", "shop:basket_total/1"),
    # ... and when the turn is the call, what it asked (the request's tag) names it.
    "comprehension of gen_server:call": (
        "lists:sum([gen_server:call(pricing, {ask, Sku}) || Sku <- Skus]).",
        "pricing/ask",
        "shop:basket_total/1",
    ),
    # A function that is its comprehension (its last call, a tail call) is still where the loop
    # is, not its caller.
    "function returning a comprehension": (
        "lists:sum(basket_prices(Skus)).\nbasket_prices(Skus) -> [price(Sku) || Sku <- Skus].",
        "pricing/price",
        "shop:basket_prices/1",
    ),
}


@pytest.mark.parametrize("loop", SHOP_BASKET_LOOPS)
def test_an_erlang_shops_calls_named_by_what_they_answer_are_grouped_and_counted(
    store: Store, runtime: Path, tmp_path: Path, loop: str
):
    source = APP_DIR / "shop.erl"
    written, basket_call, looping = SHOP_BASKET_LOOPS[loop]
    if loop != "fold":
        fold, _, _ = SHOP_BASKET_LOOPS["fold"]
        assert fold in source.read_text()
        source = tmp_path / "src" / "shop.erl"
        source.parent.mkdir()
        source.write_text((APP_DIR / "shop.erl").read_text().replace(fold, written))
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(source)], check=True)
    truth, _, _ = recorded_run(store, need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "shop", "main", cwd=tmp_path)
    findings = store.json("insights", "--json")["findings"]
    within = lambda measured, expected: abs(measured - expected) <= 0.15 * expected  # noqa: E731
    # The price, the stock and the tax rate could overlap; the shipping needs a total computed
    # from their answers.
    [grouped] = [f for f in findings if f["kind"] == "sequential_work"]
    assert '"pricing/price", "stock/stock" and "tax/tax"' in grouped["title"], grouped["title"]
    assert '"shop:checkout/2"' in grouped["title"] and "shipping" not in grouped["title"], grouped["title"]
    assert '"shipping/shipping" may need the answers' in grouped["recommendation"], grouped["recommendation"]
    assert within(grouped["saving_nanos"] / 1e6, truth["saving_ms"]), (grouped, truth)
    # Every price the fold asked, the last one too (its fun returns what the fold does).
    [folded] = [f for f in findings if f["kind"] == "repeated_calls"]
    assert f'"{looping}" calls "{basket_call}" one after another, {truth["basket"]} times' in folded["title"], folded["title"]
    assert within(folded["saving_nanos"] / 1e6, truth["fold_saving_ms"]), (folded, truth)


def test_an_escripts_list_comprehension_of_calls_is_a_loop_of_calls(store: Store, runtime: Path, tmp_path: Path):
    # Traced, a comprehension's turns nest (the compiler's body recursion); read as the loop
    # the program wrote, its calls are one after another under one parent: an N+1.
    truth, trace, _ = recorded_run(store, need("escript"), str(APP_DIR / "report.escript"), cwd=tmp_path)
    turns = [s for s in trace["spans"] if "-lc$^" in s["name"]]
    assert len(turns) == truth["calls"] + 1, "a turn an element, and the empty list's"
    assert len({s["parent_span_id"] for s in turns}) == 1, "side by side"
    findings = store.json("insights", "--json")["findings"]
    [found] = [f for f in findings if f["kind"] == "repeated_calls"]
    assert f'{truth["calls"]} times per run' in found["title"], found["title"]
    assert '"stats/' in found["title"], found["title"]
    # One batch saves all but 1.5 calls' time: within 15 % of the measured loop's.
    expected = truth["loop_ms"] * (1 - 1.5 / truth["calls"])
    assert abs(found["saving_nanos"] / 1e6 - expected) <= 0.15 * expected, (found, truth)


def test_processes_the_vm_kills_as_it_stops_gracefully_are_running_not_failed(
    store: Store, runtime: Path, tmp_path: Path
):
    """`System.stop/0` (init:stop, what SIGTERM does) kills every process left: they were running
    when the VM stopped, as after a halt, not failing; a process killed before the stop failed."""
    truth, trace, _ = recorded_run(store, need("elixir"), str(APP_DIR / "graceful_stop.exs"), cwd=tmp_path)
    turns = spans_named(trace, "Stop.Worker.loop/1")
    assert all(s["status"]["code"] != "error" for s in turns), turns
    workers = {s["attributes"]["thread.name"] for s in turns}
    assert len(workers) == truth["workers"], turns
    # Each worker's last turn (a loop's turns follow one another) was waiting for a job.
    waiting = [max((s for s in turns if s["attributes"]["thread.name"] == w), key=lambda s: s["start_unix_nano"]) for w in workers]
    stopped = [process_span(trace, w) for w in workers] + [process_span(trace, "Stop.Cache")]
    for span in waiting + stopped:
        assert span["status"]["code"] != "error", span
        assert span["attributes"].get("devtrace.recorder.open") is True, span
    assert all("devtrace.beam.exit_reason" not in s["attributes"] for s in stopped), stopped
    doomed = process_span(trace, truth["doomed"].removeprefix("#PID"))
    assert doomed["status"]["code"] == "error", doomed
    assert doomed["attributes"]["devtrace.beam.exit_reason"] in (":killed", "killed"), doomed
    kinds = [f["kind"] for f in store.json("insights", "--json")["findings"]]
    assert "restart_loop" not in kinds and "recurring_error" not in kinds, kinds


DEEP = """-module(deep).
-export([start/0]).
start() -> io:format("~b~n", [depth(list_to_integer(os:getenv("DEPTH")), list_to_binary(lists:duplicate(40, $x)))]).
depth(0, _Label) -> 0;
depth(N, Label) -> 1 + depth(N - 1, Label).
"""


@pytest.mark.parametrize("depth", [100, 20_000])
def test_a_lossless_recording_says_how_many_values_its_names_log_could_not_keep(
    store: Store, runtime: Path, tmp_path: Path, depth: int
):
    """The names log of a 4 MiB file keeps 128 KiB of value summaries: the arguments of a
    recursion 20,000 deep (a count and a 40-byte binary) make ten times that. Its later calls
    are recorded without their arguments, and the note says how many values that is, and what
    keeps them. Their results, short, are written beside the calls and all kept. (Every call
    of the recursion is traced: 20,000 in a few milliseconds would make `deep:depth/2` hot.)"""
    (tmp_path / "deep.erl").write_text(DEEP)
    subprocess.run([need("erlc"), "-o", str(tmp_path), str(tmp_path / "deep.erl")], check=True)
    result, trace = recorded_command(
        store, [need("erl"), "-noshell", "-pa", str(tmp_path), "-s", "deep", "start", "-s", "init", "stop"], tmp_path,
        flags=("--record-seconds", "0", "--record-mib", "4"), DEPTH=str(depth), DEVTRACE_BEAM_HOT_CALLS="0",
    )
    assert result.stdout.strip() == str(depth)
    calls = spans_named(trace, "deep:depth/2")
    assert len(calls) == depth + 1
    assert sorted(int(s["attributes"]["devtrace.call.return"]) for s in calls) == list(range(depth + 1))
    without = sum("devtrace.call.arguments" not in s["attributes"] for s in calls)
    note = re.search(r"BEAM VM \d+: (\d+) value summaries not kept \(arguments, results, states\): the recording's "
                     r"names log was full, so later calls lack them; --record-mib 8 keeps twice as many", result.stderr)
    if depth == 100:
        assert without == 0 and note is None, result.stderr
    else:
        assert note, result.stderr
        # The calls' missing arguments, and the few other values (the process's exit,
        # start/0's result) of the end.
        assert without > depth // 2 and without <= int(note.group(1)) <= without + 5, (without, note.group(1))


SHOP = """defmodule Shop do
  def total(items), do: Enum.sum(Enum.map(items, &price/1))
  def price(n), do: n * 3
end
"""

SHOP_TEST = """defmodule ShopTest do
  use ExUnit.Case

  test "a total is the sum of the prices" do
    assert Shop.total([1, 2]) == 9
  end
end
"""


def shop_project(tmp_path: Path) -> Path:
    """A Mix project made by `mix new`, with SHOP as its code."""
    subprocess.run([need("mix"), "new", "shop"], cwd=tmp_path, env=clean_env(), check=True, capture_output=True, timeout=120)
    project = tmp_path / "shop"
    (project / "lib" / "shop.ex").write_text(SHOP)
    return project


def recorded_command(
    store: Store, command: list[str], cwd: Path, typed: str | None = None, flags: tuple[str, ...] = (), **env: str
) -> tuple[CliResult, dict]:
    """`devtrace run --record [flags] -- command` in `cwd` (with `typed` on its standard input and
    `env` added to the environment): the result, checked to have succeeded with no event lost,
    and the stored trace."""
    argv = ["--data", str(store.data_dir), "run", "--record", *flags, "--", *command]
    proc = subprocess.run(
        [str(store.bin), *argv], cwd=cwd, env=clean_env(**env), input=typed, capture_output=True, text=True, timeout=300
    )
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    note = NOTE_RE.search(result.stderr)
    assert note and note.group(3) == "0", result.describe()
    [run] = store.ls()
    return result, store.show(run["trace_id"])


def test_mix_test_of_a_mix_project_is_recorded(store: Store, runtime: Path, tmp_path: Path):
    project = shop_project(tmp_path)
    (project / "test" / "shop_test.exs").write_text(SHOP_TEST)
    result, trace = recorded_command(store, [need("mix"), "test"], project)
    assert "1 test, 0 failures" in result.stdout, result.describe()
    [test] = spans_named(trace, "ShopTest.test a total is the sum of the prices/1")
    [total] = spans_named(trace, "Shop.total/1")
    assert total["parent_span_id"] == test["span_id"], "the project's code runs inside the test"
    assert total["attributes"]["devtrace.call.arguments"] == "[1, 2]"
    assert total["attributes"]["devtrace.call.return"] == "9"
    prices = spans_named(trace, "Shop.price/1")
    assert sorted((p["attributes"]["devtrace.call.arguments"], p["attributes"]["devtrace.call.return"]) for p in prices) == [("1", "3"), ("2", "6")]
    assert all(p["attributes"]["thread.name"] == test["attributes"]["thread.name"] for p in prices)


SHOP_FAILING_TEST = """defmodule ShopTest do
  use ExUnit.Case

  test "a total is the sum of the prices" do
    assert Shop.total([1, 2]) == 9
  end

  test "a wrong total" do
    assert Shop.total([1]) == 4
  end

  @tag :skip
  test "later" do
    assert false
  end
end
"""


def test_mix_tests_results_are_the_runs_as_exunit_reported_them(store: Store, runtime: Path, tmp_path: Path):
    """`mix test --trace` under `devtrace run --record`: ExUnit's counts, the failing test with
    what it said (in the summary and on the run span) and a span for each test it timed."""
    project = shop_project(tmp_path)
    (project / "test" / "shop_test.exs").write_text(SHOP_FAILING_TEST)
    summary_path = tmp_path / "summary.json"
    argv = ["--data", str(store.data_dir), "run", "--record", "--json", str(summary_path), "--", need("mix"), "test", "--trace"]
    proc = subprocess.run([str(store.bin), *argv], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert proc.returncode == 2, result.describe()
    tests = json.loads(summary_path.read_text())["tests"]
    assert (tests["runner"], tests["passed"], tests["failed"], tests["skipped"]) == ("exunit", 1, 1, 1), tests
    assert tests["failures"] == [{"name": "a wrong total (ShopTest)", "message": "Assertion with == failed"}], tests
    assert "exunit: 1 passed, 1 failed, 1 skipped" in proc.stderr, result.describe()
    assert "failed: test a wrong total (ShopTest): Assertion with == failed" in proc.stderr, result.describe()
    trace = store.show(store.ls()[0]["trace_id"])
    [run] = [s for s in trace["spans"] if "devtrace.run.id" in s["attributes"]]
    assert run["status"]["message"] == "exited with code 2: test a wrong total (ShopTest): Assertion with == failed"
    timed = {s["name"]: s for s in trace["spans"] if s["attributes"].get("devtrace.test.timing") == "reported"}
    assert set(timed) == {"test a total is the sum of the prices (ShopTest)", "test a wrong total (ShopTest)"}, timed
    assert timed["test a wrong total (ShopTest)"]["status"]["code"] == "error"


STOCK = """defmodule Stock.Server do
  use GenServer
  def start_link(stock), do: GenServer.start_link(__MODULE__, stock)
  def init(stock), do: {:ok, stock}
  def in_stock?(server, item), do: GenServer.call(server, {:in_stock, item})
  def handle_call({:in_stock, item}, _from, stock) do
    Process.sleep(5)
    {:reply, Map.get(stock, item, 0) > 0, stock}
  end
end

defmodule Stock.Cart do
  def available(server, items), do: Enum.filter(items, &Stock.Server.in_stock?(server, &1))
end
"""

STOCK_TEST = """defmodule StockTest do
  use ExUnit.Case, async: true

  test "only items in stock are available" do
    server = start_supervised!({Stock.Server, %{"apple" => 3}})
    assert Stock.Cart.available(server, List.duplicate("apple", 6) ++ ["pear"]) == List.duplicate("apple", 6)
  end
end
"""


def test_calls_to_a_tests_unregistered_genserver_are_named_by_its_module_in_every_run(
    store: Store, runtime: Path, tmp_path: Path
):
    """A test's own server has a new pid every run: its calls' `rpc.service` is its module, so
    the N+1 of `mix test` run twice is one finding over both runs, not one a pid."""
    subprocess.run([need("mix"), "new", "stock"], cwd=tmp_path, env=clean_env(), check=True, capture_output=True, timeout=120)
    project = tmp_path / "stock"
    (project / "lib" / "stock.ex").write_text(STOCK)
    (project / "test" / "stock_test.exs").write_text(STOCK_TEST)
    for _ in range(2):
        argv = ["--data", str(store.data_dir), "run", "--record", "--", need("mix"), "test"]
        proc = subprocess.run([str(store.bin), *argv], cwd=project, env=clean_env(), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, CliResult(argv, proc.returncode, proc.stdout, proc.stderr).describe()
        trace = store.show(store.ls()[0]["trace_id"])
        calls = spans_named(trace, "Stock.Server.in_stock?/2")
        assert len(calls) == 7, calls
        assert {c["attributes"]["rpc.service"] for c in calls} == {"Stock.Server"}
        [peer] = {c["attributes"]["devtrace.beam.peer"] for c in calls}
        assert peer.startswith("<0."), peer
    [found] = [f for f in store.json("insights", "--json")["findings"] if f["kind"] == "repeated_calls"]
    assert '"Stock.Server/in_stock?"' in found["title"], found["title"]
    assert found["impact"]["affected_runs"] == 2, found


def test_iex_s_mix_is_recorded_with_what_the_session_typed(store: Store, runtime: Path, tmp_path: Path):
    """`iex -S mix` as a developer uses it: the project compiled and started, an expression typed
    at the prompt (here piped in), the session ended with `System.halt/1`."""
    project = shop_project(tmp_path)
    typed = 'IO.puts("total=#{Shop.total([1, 2])}")\nSystem.halt(0)\n'
    result, trace = recorded_command(store, [need("iex"), "-S", "mix"], project, typed)
    assert "total=9" in result.stdout, result.describe()
    [total] = spans_named(trace, "Shop.total/1")
    assert (total["attributes"]["devtrace.call.arguments"], total["attributes"]["devtrace.call.return"]) == ("[1, 2]", "9")
    assert len(spans_named(trace, "Shop.price/1")) == 2


def test_recording_a_beam_program_without_the_runtime_says_how_to_build_it(store: Store, tmp_path: Path):
    erl = need("erl")
    empty = tmp_path / "no-runtime"
    empty.mkdir()
    argv = ["--data", str(store.data_dir), "run", "--record", "--", erl, "-noshell", "-eval", "io:format(\"ran~n\"), init:stop()."]
    proc = subprocess.run(
        [str(store.bin), *argv], cwd=tmp_path, env=clean_env(DEVTRACE_BEAM_LIB=str(empty)),
        capture_output=True, text=True, timeout=120,
    )
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode == 0, result.describe()
    assert "ran" in result.stdout, "the program runs on, unrecorded"
    assert (
        'devtrace: --record: the BEAM runtime is not built, so "erl" is not recorded: '
        "run scripts/build-beam (or set DEVTRACE_BEAM_LIB to its directory)\n"
    ) in result.stderr, result.describe()
    assert "BEAM VM" not in result.stderr


def test_a_beam_vm_that_stops_before_it_boots_is_said_so_not_taken_for_python(store: Store, runtime: Path, tmp_path: Path):
    """A VM that never booted (a missing boot script) opened no recorder file: the note names the
    BEAM and points at the VM's own messages, not at Python."""
    erl = need("erl")
    argv = ["--data", str(store.data_dir), "run", "--record", "--", erl, "-boot", str(tmp_path / "no-such-boot"), "-noshell"]
    proc = subprocess.run([str(store.bin), *argv], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    result = CliResult(argv, proc.returncode, proc.stdout, proc.stderr)
    assert result.returncode != 0, result.describe()
    assert (
        "devtrace: --record: no BEAM VM started by the command opened its recorder file "
        "(did the VM stop before it booted? see its messages above)\n"
    ) in result.stderr, result.describe()
    assert "Python" not in result.stderr, result.describe()
