"""Planning: ask the model for a task's steps and parse its reply."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import devtrace

from taskplan import llm


def prompt_for(task: Dict[str, Any]) -> str:
    return f"Task #{task['id']}: {task['title']}\nPlan the steps."


def parse_plan(reply: str, task: Dict[str, Any]) -> List[str]:
    """The steps in the model's reply (JSON with a "steps" list of strings)."""
    document = json.loads(reply)
    steps = document["steps"]
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        raise ValueError(f"the plan for task {task['id']} is not a list of steps: {steps!r}")
    return steps


def plan(task: Dict[str, Any], state: Any) -> List[str]:
    reply = llm.complete(prompt_for(task), task["title"])
    with devtrace.error_context("plan.parse", state=state, attributes={"plan.reply_chars": len(reply)}):
        return parse_plan(reply, task)
