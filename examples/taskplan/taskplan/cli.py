"""The command line: taskplan [--state FILE] add TITLE | done ID | list."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import devtrace

from taskplan import llm, planner
from taskplan.store import Store


def _wait_for_start_signal() -> None:
    """TASKPLAN_START_AFTER=FILE: wait until FILE exists before taking the lock, so demos and
    tests can start two updates at the same moment."""
    path = os.environ.get("TASKPLAN_START_AFTER")
    if not path:
        return
    Path(path + ".ready." + str(os.getpid())).touch()
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit(f"taskplan: {path} did not appear within 30 s")
        time.sleep(0.001)


def add(store: Store, title: str) -> int:
    with store.lock:
        store.load()
        with devtrace.state_snapshot("tasks", store.snapshot):
            task = store.new_task(title)
        steps = planner.plan(task, state=store.snapshot)
        with devtrace.state_snapshot("tasks", store.snapshot):
            task["steps"], task["status"] = steps, "planned"
        store.save()
    print(f"#{task['id']} {title}: {len(steps)} steps")
    return 0


def done(store: Store, task_id: int) -> int:
    with store.lock:
        store.load()
        task = store.task(task_id)
        if task is None:
            print(f"taskplan: no task #{task_id} (taskplan list shows them)", file=sys.stderr)
            return 1
        # A closing note from the model, written while the lock is held.
        note = llm.complete(f"Task #{task_id} is done: {task['title']}. Write a one-line note.", task["title"])
        with devtrace.state_snapshot("tasks", store.snapshot):
            task["status"], task["note"] = "done", note[:80]
        store.save()
    print(f"#{task_id} done")
    return 0


def list_tasks(store: Store) -> int:
    store.load()
    for task in store.data["tasks"]:
        print(f"#{task['id']} [{task['status']}] {task['title']} ({len(task['steps'])} steps)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="taskplan", description="Plan tasks with a (simulated) LLM.")
    parser.add_argument("--state", type=Path, default=Path("tasks.json"), help="the task file (default tasks.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("add", help="add a task and plan its steps").add_argument("title")
    commands.add_parser("done", help="mark a task done").add_argument("id", type=int)
    commands.add_parser("list", help="list the tasks")
    args = parser.parse_args(argv)

    devtrace.configure(service_name="taskplan")
    store = Store(args.state)
    _wait_for_start_signal()
    # The whole command is one span; an escaping error is recorded with locals and the state.
    with devtrace.error_context(f"taskplan {args.command}", state=store.snapshot):
        if args.command == "add":
            return add(store, args.title)
        if args.command == "done":
            return done(store, args.id)
        return list_tasks(store)
