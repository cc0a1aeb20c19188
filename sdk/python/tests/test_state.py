"""State snapshots: before, after and the diff on one span."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

import devtrace
from conftest import named


def test_the_diff_names_each_change():
    before = {"tasks": [{"id": 1, "status": "todo", "title": "a"}, {"id": 2, "status": "todo"}], "next_id": 3}
    after = {"tasks": [{"id": 2, "status": "done"}, {"id": 3, "status": "todo"}], "next_id": 4, "owner": "ana"}
    assert devtrace.state_diff(before, after) == [
        "next_id: 3 → 4",
        '+ owner = "ana"',
        '- tasks[id=1] = {"id":1,"status":"todo","title":"a"}',
        'tasks[id=2].status: "todo" → "done"',
        '+ tasks[id=3] = {"id":3,"status":"todo"}',
    ]
    assert devtrace.state_diff([1, 2], [1, 3, 4]) == ["[1]: 2 → 3", "+ [2] = 4"]
    assert devtrace.state_diff("a", "a") == []
    assert devtrace.state_diff({"tasks": []}, {"tasks": [{"id": 1}]}) == ['+ tasks[id=1] = {"id":1}']


def test_snapshot_records_before_after_and_diff(spans):
    store = {"tasks": [{"id": 1, "status": "todo"}], "token": "t0ps3cret"}
    with devtrace.state_snapshot("tasks", lambda: store):
        store["tasks"][0]["status"] = "done"  # mutated in place: the before copy must not change
    a = named(spans(), "state.tasks").attributes
    assert a["devtrace.state.name"] == "tasks"
    assert json.loads(a["devtrace.state.before"]) == {"tasks": [{"id": 1, "status": "todo"}], "token": "[REDACTED:secret_name]"}
    assert json.loads(a["devtrace.state.after"])["tasks"] == [{"id": 1, "status": "done"}]
    assert a["devtrace.state.diff"] == 'tasks[id=1].status: "todo" → "done"'
    assert a["devtrace.state.changes"] == 1


def test_snapshot_of_a_failing_operation_keeps_the_partial_change(spans):
    @dataclass
    class Board:
        columns: list

    board = Board(columns=["todo"])
    with pytest.raises(RuntimeError):
        with devtrace.state_snapshot("board", lambda: board, span_name="board.update"):
            board.columns.append("doing")
            raise RuntimeError("disk full")
    span = named(spans(), "board.update")
    assert span.attributes["devtrace.state.diff"] == '+ columns[1] = "doing"'
    assert span.events[0].attributes["exception.message"] == "disk full"


def test_long_diffs_are_bounded(spans):
    state = {"n": list(range(80))}
    with devtrace.state_snapshot("numbers", lambda: state):
        state["n"] = [i + 1 for i in range(80)]
    a = named(spans(), "state.numbers").attributes
    lines = a["devtrace.state.diff"].splitlines()
    assert len(lines) == 51 and lines[-1] == "… 30 more changes"
    assert a["devtrace.state.changes"] == 80
