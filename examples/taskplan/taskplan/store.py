"""The task store: a JSON file, read and written under a file lock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional

import devtrace
from opentelemetry import trace

EMPTY: Dict[str, Any] = {"version": 1, "next_id": 1, "tasks": []}


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = devtrace.FileLock(str(path) + ".lock", name=path.name)
        self.data: Dict[str, Any] = json.loads(json.dumps(EMPTY))

    def snapshot(self) -> Dict[str, Any]:
        """The state as it is now (for error context and state diffs)."""
        return self.data

    def load(self) -> None:
        tracer = devtrace.tracer()
        with tracer.start_as_current_span("tasks.load", attributes={"file.path": str(self.path)}) as span:
            raw = self.path.read_text(encoding="utf-8") if self.path.exists() else ""
            span.set_attribute("file.size", len(raw))
        with tracer.start_as_current_span("tasks.parse", attributes={"tasks.bytes": len(raw)}):
            self.data = json.loads(raw) if raw else json.loads(json.dumps(EMPTY))

    def save(self) -> None:
        text = json.dumps(self.data, indent=2, sort_keys=True) + "\n"
        with devtrace.tracer().start_as_current_span("tasks.save", attributes={"file.path": str(self.path), "file.size": len(text)}):
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)

    def task(self, task_id: int) -> Optional[Dict[str, Any]]:
        return next((t for t in self.data["tasks"] if t["id"] == task_id), None)

    def new_task(self, title: str) -> Dict[str, Any]:
        task = {"id": self.data["next_id"], "title": title, "status": "new", "steps": []}
        self.data["next_id"] += 1
        self.data["tasks"].append(task)
        trace.get_current_span().set_attribute("task.id", task["id"])
        return task
