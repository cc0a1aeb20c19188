"""A person's recorded session read through MCP with the official Python SDK (`devtrace mcp`
over stdio), as an assistant reads it.

The session is produced by a real `devtrace record` run in a temporary git repository (the
helpers of test_record.py): `record start` with a task and a test command, a failing pytest
run three times under `devtrace record exec`, the fix saved to the file (the watcher makes it
an edit), a note, the tests passing, `record stop` (final patch, test results, into the
store). Then `list_sessions` shows who recorded it and what they did — not an agent's zero
turns and tokens —, `session_overview` its task, start commit, final patch, tests, timeline
and findings (the three identical failing runs are a retry loop), all matching the stored
document; `overview` lists it among the recent sessions the same way."""

from __future__ import annotations

import json
import re
import sys

from mcp.client.stdio import StdioServerParameters

from harness import clean_env
from test_mcp import SESSION_LEGEND, session, text_of
from test_record import FIXED, git, project, recording  # noqa: F401 - fixtures

TASK = "an empty cart must total 0"
NOTE = "an empty list divided by zero; guarded it"


def test_a_recorded_session_through_mcp(recording, project, tmp_path):  # noqa: F811 - fixtures
    start_commit = git(project, "rev-parse", "HEAD").strip()
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    test_command = " ".join(pytest_cmd)
    recording.run("record", "start", "--task", TASK, "--test-command", test_command)
    for n in range(1, 4):
        failed = recording.run("record", "exec", "--", *pytest_cmd, check=False)
        assert failed.returncode == 1, failed.stderr
        recording.counts(commands=n)
    (project / "cart.py").write_text(FIXED)
    recording.counts(edits=1)
    recording.run("note", NOTE, "--tag", "debugging")
    recording.counts(notes=1)
    passed = recording.run("record", "exec", "--", *pytest_cmd)
    assert passed.returncode == 0
    recording.counts(commands=4)
    out = tmp_path / "session.json"
    recording.run("record", "stop", "--output", str(out))
    document = json.loads(out.read_text())
    trace_id = document["trace_id"].replace("-", "")
    developer = document["developer"]["name"]
    assert re.fullmatch(r"developer-[0-9a-f]{12}", developer), developer
    assert document["artifacts"]["test_results"]["passed"] == 2
    stored = json.loads(recording.run("session", "show", trace_id[:8], "--json").stdout)
    kinds = sorted({f["kind"] for f in stored["findings"]})
    assert "retry_loop" in kinds, stored["findings"]

    server = StdioServerParameters(
        command=str(recording.bin), args=["--data", str(recording.data), "mcp"], env=clean_env()
    )

    async def body(client):
        listed = await text_of(client, "list_sessions")
        overview = await text_of(client, "session_overview", {"session_id": trace_id[:8]})
        store = await text_of(client, "overview")
        return listed, overview, store

    listed, overview, store = session(server, body)

    # The listing: the person's numbers, not an agent's.
    assert listed.startswith(SESSION_LEGEND), listed
    lines = listed.splitlines()
    (first,) = [i for i, line in enumerate(lines) if line.startswith(f"  {trace_id} ")]
    assert f'"developer" "{project}" "{TASK}"' in lines[first], lines[first]
    assert lines[first + 1] == (
        f'    recorded by "{developer}": 4 commands (3 failed), 1 edit in 1 file, 1 note; '
        f"final patch 1 file (+1 −1); "
        f'tests 2 passed, 0 failed, 0 skipped ("pytest", exit code 0), {len(stored["findings"])} finding(s)'
    ), listed
    assert "turn(s)" not in listed and "tokens" not in listed, listed
    # The store's overview lists it among the recent sessions the same way (without findings).
    lines = store.splitlines()
    (first,) = [i for i, line in enumerate(lines) if line.startswith(f"  {trace_id} ")]
    assert lines[first + 1].startswith(f'    recorded by "{developer}": 4 commands (3 failed), 1 edit in 1 file'), store
    assert "turn(s)" not in store, store
    assert "Grace" not in listed and "grace@example.com" not in listed

    # The overview: the task, where it started, the patch, the tests, then the timeline.
    assert overview.startswith(SESSION_LEGEND), overview
    for line in [
        "4 commands (3 failed), 1 edit in 1 file, 1 note",
        f'task "{TASK}"',
        f'start commit "{start_commit}", test command "{test_command}", developer "{developer}"',
        'final patch: 1 file (+1 −1): "cart.py"',
        'tests: 2 passed, 0 failed, 0 skipped ("pytest", exit code 0)',
    ]:
        assert f"\n{line}\n" in overview, f"{line!r} not in:\n{overview}"
    assert f"{len(stored['findings'])} finding(s), ranked by impact" in overview, overview
    for kind in kinds:
        assert re.search(rf"\[{kind} [0-9a-f]+", overview), f"{kind} not in:\n{overview}"
    timeline = overview[overview.index("\ntimeline from entry 0") :]
    # The commands in order with their outcomes, the edit of cart.py and the note, quoted.
    outcomes = re.findall(r"([✓✗]) .*pytest -q", timeline)
    assert outcomes == ["✗", "✗", "✗", "✓"], timeline
    assert '"cart.py"' in timeline, timeline
    assert f'"{NOTE}"' in timeline, timeline
    assert "Grace" not in overview and "grace@example.com" not in overview
