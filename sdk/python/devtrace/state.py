"""State snapshots: the state before and after an operation, and what changed, on one span.

``state_snapshot(name, capture)`` calls ``capture()`` before and after the block (also when the
block raises: a half-applied change is what one needs to see) and records on a span named
``state.<name>``:

- ``devtrace.state.name``: ``name``;
- ``devtrace.state.before`` / ``devtrace.state.after``: the two states as key-sorted JSON,
  bounded and redacted;
- ``devtrace.state.diff``: one change per line, ``path: old → new``, ``+ path = value``,
  ``- path = value`` (lists of objects with an ``id`` are matched by id: ``tasks[id=3]``);
- ``devtrace.state.changes``: how many changes there were.

``diff(before, after)`` is the comparison on its own.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional

from opentelemetry.trace import Span

from devtrace import _names as names
from devtrace._config import parent_context, tracer
from devtrace._repr import MAX_TEXT_CHARS, bounded_json, shorten, to_plain
from devtrace.errors import record_exception
from devtrace.redact import redact

__all__ = ["state_snapshot", "diff", "MAX_CHANGES"]

#: Changes listed in ``devtrace.state.diff`` (the count says how many there were in all).
MAX_CHANGES = 50
#: Characters of each value shown in a diff line.
MAX_VALUE_CHARS = 120


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return shorten(redact(text), MAX_VALUE_CHARS)


def _by_id(items: List[Any]) -> Optional[dict]:
    if not items or not all(isinstance(i, dict) and "id" in i for i in items):
        return None
    keyed = {json.dumps(i["id"], default=str): i for i in items}
    return keyed if len(keyed) == len(items) else None


def _walk(path: str, a: Any, b: Any, out: List[str]) -> None:
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            child = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append(f"- {child} = {_show(a[key])}")
            elif key not in a:
                out.append(f"+ {child} = {_show(b[key])}")
            else:
                _walk(child, a[key], b[key], out)
        return
    if isinstance(a, list) and isinstance(b, list):
        keyed_a, keyed_b = _by_id(a), _by_id(b)
        # An empty list matches either way: tasks [] → [{"id": 1}] is "+ tasks[id=1]".
        if keyed_a is None and not a and keyed_b is not None:
            keyed_a = {}
        if keyed_b is None and not b and keyed_a is not None:
            keyed_b = {}
        if keyed_a is not None and keyed_b is not None:
            for key in list(keyed_a) + [k for k in keyed_b if k not in keyed_a]:
                child = f"{path}[id={key}]"
                if key not in keyed_b:
                    out.append(f"- {child} = {_show(keyed_a[key])}")
                elif key not in keyed_a:
                    out.append(f"+ {child} = {_show(keyed_b[key])}")
                else:
                    _walk(child, keyed_a[key], keyed_b[key], out)
            return
        for i in range(max(len(a), len(b))):
            child = f"{path}[{i}]"
            if i >= len(b):
                out.append(f"- {child} = {_show(a[i])}")
            elif i >= len(a):
                out.append(f"+ {child} = {_show(b[i])}")
            else:
                _walk(child, a[i], b[i], out)
        return
    out.append(f"{path or '(root)'}: {_show(a)} → {_show(b)}")


def diff(before: Any, after: Any) -> List[str]:
    """The changes from ``before`` to ``after`` (JSON-like values), one line each."""
    out: List[str] = []
    _walk("", to_plain(before), to_plain(after), out)
    return out


@contextmanager
def state_snapshot(
    name: str,
    capture: Callable[[], Any],
    *,
    span_name: Optional[str] = None,
    max_chars: int = MAX_TEXT_CHARS,
) -> Iterator[Span]:
    """Records the state before and after the block, and the diff, on a span
    (``state.<name>`` unless ``span_name`` is given)::

        with devtrace.state_snapshot("tasks", lambda: store.data):
            store.data["tasks"].append(task)
    """
    with tracer().start_as_current_span(
        span_name or f"state.{name}",
        context=parent_context(),
        attributes={names.STATE_NAME: name},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        before = to_plain(_capture(capture))
        span.set_attribute(names.STATE_BEFORE, bounded_json(before, max_chars))
        try:
            yield span
        except BaseException as error:
            if not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                record_exception(span, error)
            raise
        finally:
            after = to_plain(_capture(capture))
            changes = diff(before, after)
            span.set_attribute(names.STATE_AFTER, bounded_json(after, max_chars))
            shown = changes[:MAX_CHANGES]
            if len(changes) > MAX_CHANGES:
                shown.append(f"… {len(changes) - MAX_CHANGES} more changes")
            span.set_attribute(names.STATE_DIFF, "\n".join(shown))
            span.set_attribute(names.STATE_CHANGES, len(changes))


def _capture(capture: Callable[[], Any]) -> Any:
    try:
        return capture()
    except Exception as error:
        return f"<state capture failed: {type(error).__name__}: {error}>"
