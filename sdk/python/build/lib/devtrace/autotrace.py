"""Auto-tracing: spans for a package's function calls, without code changes, keeping only the
calls that last at least a threshold so the trace stays readable.

``autotrace("mypackage")`` watches every function whose module is ``mypackage`` or below it.
Each call is timed; a call shorter than the threshold (default 1 ms) leaves no span, and the
calls it made that did reach the threshold are attached to its caller instead. Spans are
created when the outermost watched call returns, with their real start and end times:
``<module>.<qualified name>`` with ``code.function.name``, ``code.file.path``,
``code.line.number`` and ``devtrace.autotrace = true``. A watched call made inside a span of
your own (``llm_call``, a manual span) becomes its child; a span of your own started inside a
watched call is a child of the enclosing *real* span, since the watched call's span does not
exist yet when it starts.

How: on Python 3.12+ with ``sys.monitoring``, code outside the packages is switched off after
its first call, so it runs at full speed; before 3.12 with ``sys.setprofile`` (every call
pays a small cost; threads started afterwards are traced too). Generators and coroutines are
timed per resumption. See docs/PERFORMANCE.md for the measured overhead.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from opentelemetry import trace

from devtrace import _names as names
from devtrace._config import parent_context, tracer

__all__ = ["autotrace", "stop_autotrace", "DEFAULT_THRESHOLD_MS", "MAX_SPANS_PER_CALL"]

#: Calls shorter than this leave no span (override with DEVTRACE_AUTOTRACE_THRESHOLD_MS).
DEFAULT_THRESHOLD_MS = 1.0
#: Spans kept under one outermost watched call; the rest are counted on its span.
MAX_SPANS_PER_CALL = 5000


class _Call:
    """A watched call in progress."""

    __slots__ = ("code", "start", "current", "children")

    def __init__(self, code: Any, start: int, current: Any) -> None:
        self.code = code
        self.start = start
        self.current = current
        self.children: List["_Record"] = []


class _Record:
    """A finished call that reached the threshold."""

    __slots__ = ("code", "start", "end", "current", "children")

    def __init__(self, call: _Call, end: int) -> None:
        self.code = call.code
        self.start = call.start
        self.end = end
        self.current = call.current
        self.children = call.children


class _Tracer:
    def __init__(self, packages: Sequence[str], threshold_ns: int, max_spans: int) -> None:
        self.packages = tuple(packages)
        self.threshold_ns = threshold_ns
        self.max_spans = max_spans
        self.watched: Dict[Any, bool] = {}
        self.names: Dict[Any, Tuple[str, Dict[str, Any]]] = {}
        self.local = threading.local()
        self.kept = 0
        self.dropped = 0

    # -- which code is watched -------------------------------------------------------------

    def is_watched_module(self, module: Optional[str]) -> bool:
        if not module:
            return False
        return any(module == p or module.startswith(p + ".") for p in self.packages)

    def describe(self, code: Any, module: str) -> Tuple[str, Dict[str, Any]]:
        described = self.names.get(code)
        if described is None:
            qualname = getattr(code, "co_qualname", code.co_name)
            described = (
                f"{module}.{qualname}",
                {
                    names.CODE_FUNCTION: qualname,
                    names.CODE_FILE: code.co_filename,
                    names.CODE_LINE: code.co_firstlineno,
                    names.AUTOTRACE: True,
                },
            )
            self.names[code] = described
        return described

    # -- the call stack of this thread -----------------------------------------------------

    def stack(self) -> List[_Call]:
        try:
            return self.local.stack
        except AttributeError:
            self.local.stack = []
            return self.local.stack

    def enter(self, code: Any) -> None:
        self.stack().append(_Call(code, time.time_ns(), trace.get_current_span()))

    def leave(self, code: Any) -> None:
        stack = self.stack()
        if not stack or stack[-1].code is not code:
            # An exit we did not see enter (hooks installed mid-call): forget it.
            while stack and stack[-1].code is not code:
                stack.pop()
            if not stack:
                return
        call = stack.pop()
        end = time.time_ns()
        if end - call.start >= self.threshold_ns:
            kept: List[_Record] = [_Record(call, end)]
        else:
            kept = call.children
        if stack:
            stack[-1].children.extend(kept)
        elif kept:
            self.emit(kept)

    # -- spans -----------------------------------------------------------------------------

    def emit(self, records: List[_Record]) -> None:
        self.kept = 0
        self.dropped = 0
        for record in records:
            current = record.current
            context = (
                trace.set_span_in_context(current)
                if current.get_span_context().is_valid
                else parent_context()
            )
            self.emit_one(record, context)

    def emit_one(self, record: _Record, context: Any, top: bool = True) -> None:
        if self.kept >= self.max_spans:
            self.dropped += 1 + _count(record.children)
            return
        self.kept += 1
        name, attributes = self.names.get(record.code) or (record.code.co_name, {})
        span = tracer().start_span(name, context=context, start_time=record.start, attributes=attributes)
        inside = trace.set_span_in_context(span)
        for child in record.children:
            # A child called under a span of the user's, started inside this call, belongs to it.
            child_context = inside if child.current is record.current else trace.set_span_in_context(child.current)
            self.emit_one(child, child_context, top=False)
        if top and self.dropped:
            span.set_attribute("devtrace.autotrace.dropped_spans", self.dropped)
        span.end(end_time=record.end)


def _module_name(globals_: Dict[str, Any]) -> Optional[str]:
    """The module's name; for the script run as ``__main__``, its real name (``python -m
    pkg.cli`` → ``pkg.cli``; ``python app.py`` → ``app``)."""
    name = globals_.get("__name__")
    if name != "__main__":
        return name
    spec = globals_.get("__spec__")
    if spec is not None and getattr(spec, "name", None):
        return spec.name
    path = globals_.get("__file__")
    if path:
        return os.path.splitext(os.path.basename(path))[0]
    return name


def _count(records: List[_Record]) -> int:
    return sum(1 + _count(r.children) for r in records)


_active: Optional[_Tracer] = None
_backend: Optional[str] = None
_TOOL_NAME = "devtrace.autotrace"


def _install_setprofile(state: _Tracer) -> None:
    watched = state.watched

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            hit = watched.get(code)
            if hit is None:
                module = _module_name(frame.f_globals)
                hit = watched[code] = state.is_watched_module(module)
                if hit:
                    state.describe(code, module)
            if hit:
                state.enter(code)
        elif event == "return":
            code = frame.f_code
            if watched.get(code):
                state.leave(code)

    threading.setprofile(profile)
    sys.setprofile(profile)


def _install_monitoring(state: _Tracer) -> None:
    monitoring = sys.monitoring  # type: ignore[attr-defined]
    tool = None
    for candidate in (monitoring.PROFILER_ID, 3, 4, 5):
        if monitoring.get_tool(candidate) is None:
            tool = candidate
            break
    if tool is None:
        raise RuntimeError("devtrace.autotrace: every sys.monitoring tool id is in use")
    monitoring.use_tool_id(tool, _TOOL_NAME)
    disable = monitoring.DISABLE
    watched = state.watched

    def check(code: Any) -> bool:
        hit = watched.get(code)
        if hit is None:
            # The module of a code object: the first frame running it tells.
            frame = sys._getframe(2)
            module = _module_name(frame.f_globals) if frame.f_code is code else None
            hit = watched[code] = state.is_watched_module(module)
            if hit:
                state.describe(code, module)
        return hit

    def on_start(code: Any, offset: int) -> Any:
        if not check(code):
            return disable
        state.enter(code)
        return None

    def on_exit(code: Any, offset: int, value: Any) -> Any:
        if not watched.get(code):
            return disable
        state.leave(code)
        return None

    def on_unwind(code: Any, offset: int, exception: BaseException) -> None:
        if watched.get(code):
            state.leave(code)

    events = monitoring.events
    monitoring.register_callback(tool, events.PY_START, on_start)
    monitoring.register_callback(tool, events.PY_RESUME, on_start)
    monitoring.register_callback(tool, events.PY_RETURN, on_exit)
    monitoring.register_callback(tool, events.PY_YIELD, on_exit)
    monitoring.register_callback(tool, events.PY_UNWIND, on_unwind)
    monitoring.set_events(
        tool, events.PY_START | events.PY_RESUME | events.PY_RETURN | events.PY_YIELD | events.PY_UNWIND
    )
    state.tool = tool  # type: ignore[attr-defined]


def autotrace(
    *packages: str,
    threshold_ms: Optional[float] = None,
    max_spans: int = MAX_SPANS_PER_CALL,
    backend: Optional[str] = None,
) -> None:
    """Traces calls of functions in ``packages`` (module names; sub-modules included) that last
    at least ``threshold_ms`` (default 1 ms, or ``DEVTRACE_AUTOTRACE_THRESHOLD_MS``). Calling it
    again replaces the previous set-up. ``backend`` (``"monitoring"`` or ``"setprofile"``)
    forces one mechanism; by default ``sys.monitoring`` where Python has it."""
    global _active, _backend
    if not packages:
        raise ValueError('autotrace() needs at least one package name, e.g. autotrace("myapp")')
    for package in packages:
        if not package or not all(part.isidentifier() for part in package.split(".")):
            raise ValueError(f"autotrace(): {package!r} is not a module name (e.g. 'myapp' or 'myapp.core')")
    if threshold_ms is None:
        raw = os.environ.get("DEVTRACE_AUTOTRACE_THRESHOLD_MS", "")
        try:
            threshold_ms = float(raw) if raw.strip() else DEFAULT_THRESHOLD_MS
        except ValueError:
            raise ValueError(f"DEVTRACE_AUTOTRACE_THRESHOLD_MS={raw!r} is not a number of milliseconds") from None
    if threshold_ms < 0:
        raise ValueError(f"autotrace(): threshold_ms must be ≥ 0, not {threshold_ms}")
    stop_autotrace()
    state = _Tracer(packages, int(threshold_ms * 1_000_000), max_spans)
    chosen = backend or ("monitoring" if hasattr(sys, "monitoring") else "setprofile")
    if chosen == "monitoring":
        _install_monitoring(state)
    elif chosen == "setprofile":
        _install_setprofile(state)
    else:
        raise ValueError(f"autotrace(): unknown backend {backend!r} (monitoring or setprofile)")
    _active, _backend = state, chosen


def stop_autotrace() -> None:
    """Stops auto-tracing (calls in progress leave no span)."""
    global _active, _backend
    state, backend = _active, _backend
    _active, _backend = None, None
    if state is None:
        return
    if backend == "setprofile":
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)
    elif backend == "monitoring":
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        tool = state.tool  # type: ignore[attr-defined]
        monitoring.set_events(tool, 0)
        for event in (monitoring.events.PY_START, monitoring.events.PY_RESUME, monitoring.events.PY_RETURN, monitoring.events.PY_YIELD, monitoring.events.PY_UNWIND):
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)
        # DISABLE'd code locations stay off for this tool id until events are restarted.
        monitoring.restart_events()
