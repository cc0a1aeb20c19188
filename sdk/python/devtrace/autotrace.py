"""Auto-tracing: spans for a package's function calls, without code changes, keeping only the
calls that last at least a threshold so the trace stays readable.

``autotrace("mypackage")`` watches every function whose module is ``mypackage`` or below it
(the script run as ``__main__`` counts under its file's name). Each watched call gets a span id
when it starts and is the current span while it runs, so spans started inside it (an
``llm_call``, a lock, a span of your own, a deeper watched call) are its children. When it
returns, it becomes a span ``<module>.<qualified name>`` (with ``code.function.name``,
``code.file.path``, ``code.line.number`` and ``devtrace.autotrace = true``) if it lasted at
least the threshold (default 1 ms) or if some span was started inside it; otherwise it leaves
nothing.

How: on Python 3.12+ ``sys.monitoring``, where code outside the packages is switched off after
its first call and then runs at full speed; before 3.12 ``sys.setprofile`` (every call pays a
small cost; threads started afterwards are traced too). Generators and coroutines are timed
per resumption. docs/PERFORMANCE.md has the measured overhead.

It needs the OpenTelemetry SDK's ``TracerProvider`` (the one :func:`devtrace.configure` sets
up, which ``autotrace`` calls when nothing is configured yet).
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from devtrace import _names as names
from devtrace._modules import mains_named, module_name
from devtrace._config import INSTRUMENTATION_NAME, parent_context

__all__ = ["autotrace", "stop_autotrace", "DEFAULT_THRESHOLD_MS"]

#: Calls shorter than this leave no span (override with DEVTRACE_AUTOTRACE_THRESHOLD_MS).
DEFAULT_THRESHOLD_MS = 1.0

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class _Call:
    """A watched call in progress. Its span ids are allocated only when needed: when a span is
    started inside it, or when it turns out long enough to keep."""

    __slots__ = ("code", "start", "trace_id", "span_id", "parent", "keep")

    def __init__(self, code: Any, start: int) -> None:
        self.code = code
        self.start = start
        self.trace_id = 0
        self.span_id = 0
        # The parent's SpanContext once allocated; None for the root of a new trace.
        self.parent: Optional[SpanContext] = None
        self.keep = False

    def context(self) -> SpanContext:
        return SpanContext(self.trace_id, self.span_id, is_remote=False, trace_flags=_SAMPLED)


class _ForcedIds:
    """Wraps the SDK's id generator so the next span of this thread gets the ids allocated for
    its call (the SDK has no other way to choose a span's id)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.local = threading.local()

    def force(self, trace_id: Optional[int], span_id: int) -> None:
        self.local.trace_id = trace_id
        self.local.span_id = span_id

    def generate_span_id(self) -> int:
        forced = getattr(self.local, "span_id", None)
        if forced is not None:
            self.local.span_id = None
            return forced
        return self.inner.generate_span_id()

    def generate_trace_id(self) -> int:
        forced = getattr(self.local, "trace_id", None)
        if forced is not None:
            self.local.trace_id = None
            return forced
        return self.inner.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return bool(getattr(self.inner, "is_trace_id_random", lambda: True)())


class _ChildWatcher(SpanProcessor):
    """A span processor: a span started inside a watched call becomes that call's child (the
    call is then kept), and the start times of open spans are remembered to tell which spans
    were opened before which call."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        state = _active
        if state is not None:
            state.span_started(span)

    def on_end(self, span: Any) -> None:
        state = _active
        if state is not None:
            state.started_at.pop(span.context.span_id, None)



_hooked_providers: Dict[int, _ForcedIds] = {}


def _hook_provider() -> Tuple[Any, _ForcedIds]:
    provider = trace.get_tracer_provider()
    if not hasattr(provider, "id_generator") or not hasattr(provider, "add_span_processor"):
        from devtrace._config import configure

        configure()
        provider = trace.get_tracer_provider()
    if not hasattr(provider, "id_generator") or not hasattr(provider, "add_span_processor"):
        raise RuntimeError(
            "devtrace.autotrace needs the OpenTelemetry SDK's TracerProvider "
            f"(the global provider is {type(provider).__name__}); call devtrace.configure() first"
        )
    ids = _hooked_providers.get(id(provider))
    if ids is None:
        ids = _ForcedIds(provider.id_generator)
        provider.id_generator = ids
        provider.add_span_processor(_ChildWatcher())
        _hooked_providers[id(provider)] = ids
    return provider, ids


class _Tracer:
    def __init__(self, packages: Sequence[str], threshold_ns: int, provider: Any, ids: _ForcedIds) -> None:
        from devtrace import __version__

        self.packages = tuple(packages)
        self.threshold_ns = threshold_ns
        self.ids = ids
        self.tracer = provider.get_tracer(INSTRUMENTATION_NAME, __version__)
        self.watched: Dict[Any, bool] = {}
        self.names: Dict[Any, Tuple[str, Dict[str, Any]]] = {}
        # span id → start time of the spans open now (for "was it opened before this call?").
        self.started_at: Dict[int, int] = {}
        self.local = threading.local()

    # -- which code is watched -------------------------------------------------------------

    def is_watched_module(self, module: Optional[str]) -> bool:
        if not module:
            return False
        return any(module == p or module.startswith(p + ".") for p in self.packages)

    def describe(self, code: Any, module: str) -> None:
        qualname = getattr(code, "co_qualname", code.co_name)
        self.names[code] = (
            f"{module}.{qualname}",
            {
                names.CODE_FUNCTION: qualname,
                names.CODE_FILE: code.co_filename,
                names.CODE_LINE: code.co_firstlineno,
                names.AUTOTRACE: True,
            },
        )

    # -- the call stack of this thread -----------------------------------------------------

    def stack(self) -> List[_Call]:
        try:
            return self.local.stack
        except AttributeError:
            self.local.stack = []
            self.local.emitting = False
            return self.local.stack

    def enter(self, code: Any) -> None:
        # The hot path: nothing but a clock read and an append.
        self.stack().append(_Call(code, time.time_ns()))

    def leave(self, code: Any) -> None:
        stack = self.stack()
        if not stack or stack[-1].code is not code:
            # An exit whose entry we did not see (hooks installed mid-call): ignore it, or
            # unwind to the matching entry.
            if not any(c.code is code for c in stack):
                return
            while stack[-1].code is not code:
                self.finish(stack, stack.pop(), time.time_ns())
        self.finish(stack, stack.pop(), time.time_ns())

    def allocate(self, stack: List[_Call], upto: int, parent: Optional[SpanContext], trace_id: int = 0) -> None:
        """Gives ids to the watched calls stack[k..upto] that started after ``parent`` (the
        span current when they were entered), chaining each to the one before."""
        opened = self.started_at.get(parent.span_id, 0) if parent is not None and parent.is_valid else 0
        k = upto
        while k > 0 and stack[k - 1].start >= opened and not stack[k - 1].span_id:
            k -= 1
        if k > 0 and stack[k - 1].span_id and stack[k - 1].start >= opened:
            parent = stack[k - 1].context()
            stack[k - 1].keep = True
        if parent is None or not parent.is_valid:
            root = parent_context()  # TRACEPARENT's context, if any
            parent = trace.get_current_span(root).get_span_context() if root is not None else None
            if parent is not None and not parent.is_valid:
                parent = None
        trace_id = parent.trace_id if parent is not None else (trace_id or random.getrandbits(128) or 1)
        for call in stack[k : upto + 1]:
            if not call.span_id:
                call.trace_id, call.span_id, call.parent = trace_id, random.getrandbits(64) or 1, parent
            call.keep = True
            parent = call.context()

    def span_started(self, span: Any) -> None:
        self.started_at[span.context.span_id] = span.start_time or 0
        stack = self.stack()
        if not stack or self.local.emitting:
            return
        parent = span.parent
        opened = self.started_at.get(parent.span_id, 0) if parent is not None else 0
        if stack[-1].start < opened or not hasattr(span, "_parent"):
            return  # its parent was opened inside the innermost watched call already
        self.allocate(stack, len(stack) - 1, parent, span.context.trace_id)
        if stack[-1].trace_id == span.context.trace_id:
            span._parent = stack[-1].context()

    def finish(self, stack: List[_Call], call: _Call, end: int) -> None:
        if not call.keep and end - call.start < self.threshold_ns:
            return
        if not call.span_id:
            stack.append(call)  # allocate() works on the stack as it was during the call
            self.allocate(stack, len(stack) - 1, trace.get_current_span().get_span_context())
            stack.pop()
        name, attributes = self.names[call.code]
        parent = otel_context.Context() if call.parent is None else trace.set_span_in_context(NonRecordingSpan(call.parent))
        self.ids.force(call.trace_id if call.parent is None else None, call.span_id)
        self.local.emitting = True
        try:
            span = self.tracer.start_span(name, context=parent, start_time=call.start, attributes=attributes)
            span.end(end_time=end)
        finally:
            self.local.emitting = False


_active: Optional[_Tracer] = None
_backend: Optional[str] = None
_TOOL_NAME = "devtrace.autotrace"


def _fast_paths(state: _Tracer) -> Tuple[Any, Any]:
    """enter(code) and leave(code) with the common case inlined: a call too short to keep,
    with nothing started inside, costs a clock read, an append and a pop."""
    local, time_ns, threshold, Call = state.local, time.time_ns, state.threshold_ns, _Call

    def enter(code: Any) -> None:
        try:
            stack = local.stack
        except AttributeError:
            stack = state.stack()
        stack.append(Call(code, time_ns()))

    def leave(code: Any) -> None:
        try:
            stack = local.stack
        except AttributeError:
            return
        if stack:
            call = stack[-1]
            if call.code is code and not call.keep and time_ns() - call.start < threshold:
                stack.pop()
                return
        state.leave(code)

    return enter, leave


def _install_setprofile(state: _Tracer) -> None:
    watched = state.watched
    enter, leave = _fast_paths(state)

    def profile(frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            hit = watched.get(code)
            if hit is None:
                module = module_name(frame.f_globals)
                hit = watched[code] = state.is_watched_module(module)
                if hit:
                    state.describe(code, module)  # type: ignore[arg-type]
            if hit:
                enter(code)
        elif event == "return":
            code = frame.f_code
            if watched.get(code):
                leave(code)

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
    enter, leave = _fast_paths(state)

    def on_start(code: Any, offset: int) -> Any:
        hit = watched.get(code)
        if hit is None:
            # The module of a code object: the frame running it tells.
            frame = sys._getframe(1)
            module = module_name(frame.f_globals) if frame.f_code is code else None
            hit = watched[code] = state.is_watched_module(module)
            if hit:
                state.describe(code, module)  # type: ignore[arg-type]
        if not hit:
            return disable
        enter(code)
        return None

    def on_exit(code: Any, offset: int, value: Any) -> Any:
        if not watched.get(code):
            return disable
        leave(code)
        return None

    def on_unwind(code: Any, offset: int, exception: BaseException) -> None:
        if watched.get(code):
            leave(code)

    events = monitoring.events
    monitoring.register_callback(tool, events.PY_START, on_start)
    monitoring.register_callback(tool, events.PY_RESUME, on_start)
    monitoring.register_callback(tool, events.PY_RETURN, on_exit)
    monitoring.register_callback(tool, events.PY_YIELD, on_exit)
    monitoring.register_callback(tool, events.PY_UNWIND, on_unwind)
    monitoring.set_events(tool, events.PY_START | events.PY_RESUME | events.PY_RETURN | events.PY_YIELD | events.PY_UNWIND)
    state.tool = tool  # type: ignore[attr-defined]


def autotrace(*packages: str, threshold_ms: Optional[float] = None, backend: Optional[str] = None) -> None:
    """Traces calls of functions in ``packages`` (module names; sub-modules included) that last
    at least ``threshold_ms`` (default 1 ms, or ``DEVTRACE_AUTOTRACE_THRESHOLD_MS``). Calling it
    again replaces the previous set-up. ``backend`` forces one mechanism: ``"native"`` (the
    native recorder, devtrace.recorder: CPython 3.12+, the default where it runs),
    ``"monitoring"`` (pure Python on ``sys.monitoring``) or ``"setprofile"``."""
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
    chosen = backend or _default_backend()
    if chosen not in ("native", "monitoring", "setprofile"):
        raise ValueError(f"autotrace(): unknown backend {backend!r} (native, monitoring or setprofile)")
    stop_autotrace()
    if chosen == "native":
        from devtrace.recorder import record_calls

        record_calls(*packages, threshold_ms=threshold_ms)
        _backend = "native"
        return
    provider, ids = _hook_provider()
    state = _Tracer(mains_named(packages), int(threshold_ms * 1_000_000), provider, ids)
    if chosen == "monitoring":
        _install_monitoring(state)
    else:
        _install_setprofile(state)
    _active, _backend = state, chosen


_fallback_said = False


def _default_backend() -> str:
    """The native recorder where it can run; otherwise this module's pure-Python tracer, and a
    one-time note saying why (it is ~40× slower on call-heavy code)."""
    global _fallback_said
    from devtrace.recorder import native_status

    ok, why = native_status()
    if ok:
        return "native"
    if not _fallback_said:
        _fallback_said = True
        sys.stderr.write(f"devtrace: native recorder unavailable ({why}); auto-tracing with the pure-Python tracer\n")
    return "monitoring" if hasattr(sys, "monitoring") else "setprofile"


def stop_autotrace() -> None:
    """Stops auto-tracing (calls still running end now; on the pure-Python backends they leave
    no span)."""
    global _active, _backend
    state, backend = _active, _backend
    _active, _backend = None, None
    if backend == "native":
        from devtrace.recorder import stop_recording

        stop_recording()
        return
    if state is None:
        return
    if backend == "setprofile":
        threading.setprofile(None)  # type: ignore[arg-type]
        sys.setprofile(None)
    elif backend == "monitoring":
        monitoring = sys.monitoring  # type: ignore[attr-defined]
        tool = state.tool  # type: ignore[attr-defined]
        monitoring.set_events(tool, 0)
        for event in (
            monitoring.events.PY_START,
            monitoring.events.PY_RESUME,
            monitoring.events.PY_RETURN,
            monitoring.events.PY_YIELD,
            monitoring.events.PY_UNWIND,
        ):
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)
        # Code switched off for this tool id is switched on again for the next user.
        monitoring.restart_events()
