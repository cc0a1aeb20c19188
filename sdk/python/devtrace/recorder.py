"""The native recorder: every Python call captured for tens of nanoseconds, turned into spans;
and the flight recorder, which keeps the last seconds of every call and writes them into the
trace when something fails.

Two ways to use it:

- :func:`record_calls` (and :func:`devtrace.autotrace`, which uses it on CPython 3.12+) records
  the calls of chosen packages, or exactly the functions of an instrumentation plan. Calls
  lasting at least the threshold become spans nested where they ran (under the OpenTelemetry
  span that was current, with spans started inside them as their children); shorter ones are
  counted on their parent as per-function aggregates (``devtrace.calls.*``).
- :func:`record` starts the flight recorder: every call (of every module but devtrace's own)
  goes into a bounded shared-memory ring (default 64 MiB, the last 10 s at most). On an
  unhandled exception, a failing test, a chosen exception type, a signal, or
  :meth:`FlightRecorder.dump`, the window is written into the trace as a
  ``devtrace.flight_window`` span linked to the failure, with the exception's context. If the
  process is killed, ``devtrace`` recovers the window from the ring file afterwards
  (``devtrace recover``; ``devtrace run --record`` does it by itself).

The engine is the ``devtrace._native`` extension (crates/devtrace-pyrecorder): callbacks on
``sys.monitoring`` written natively, per-thread rings in shared memory, and a drainer thread in
Rust that builds the spans without the GIL. On Python 3.11 and older, and on free-threaded
builds, it is not available: :func:`native_status` says why, and ``autotrace`` falls back to
its pure-Python implementation (saying so once). docs/python.md describes the spans and
attributes; docs/PERFORMANCE.md the measured cost.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from devtrace import _causal, _endings, _pool, _process
from devtrace import _names as names
from devtrace._modules import main_named, mains_named

__all__ = [
    "FlightRecorder",
    "NoRoomForRing",
    "Recorder",
    "native_status",
    "record",
    "record_calls",
    "recover",
    "stop_recording",
    "DEFAULT_WINDOW_SECONDS",
    "DEFAULT_FLIGHT_MIB",
]

DEFAULT_WINDOW_SECONDS = 10.0
DEFAULT_FLIGHT_MIB = 64
DEFAULT_RECORD_MIB = 16
#: The flight recorder keeps the values of each thread's last this many captured calls (its
#: block of 32 value slots in the ring file: the arguments and the result of each;
#: FLIGHT_VALUE_BLOCKS and VALUE_SLOTS_PER_BLOCK in the native code).
FLIGHT_VALUE_CALLS = 16
#: The flight recorder stops capturing a function's values once it is called more often than
#: this in one second (AUTO_VALUE_CALLS_PER_SECOND in the native code).
AUTO_VALUE_CALLS_PER_SECOND = 1000
#: Calls of the window's last records kept whole in a dump, whatever their duration.
DEFAULT_DETAIL_CALLS = 2000
#: In a dump, calls shorter than this (and not among the last ones) are aggregated.
DEFAULT_FLIGHT_THRESHOLD_MS = 1.0

# Attribute names (docs/conventions.md).
CALLS_FUNCTION = "devtrace.calls.function"
CALLS_COUNT = "devtrace.calls.count"
CALLS_TOTAL_NS = "devtrace.calls.total_ns"
CALLS_SELF_NS = "devtrace.calls.self_ns"
CALLS_ERRORS = "devtrace.calls.errors"
CALLS_ACCOUNTED_NS = "devtrace.calls.accounted_ns"
RECORDER = "devtrace.recorder"
RESUMED = "devtrace.recorder.resumed"
OPEN = "devtrace.recorder.open"
BEFORE_WINDOW = "devtrace.recorder.started_before_window"
THREAD_ID = "thread.id"
THREAD_NAME = "thread.name"
PLAN_ID = "devtrace.plan.id"
FLIGHT_WINDOW = "devtrace.flight_window"
FLIGHT_REASON = "devtrace.flight.reason"
FLIGHT_EVENTS = "devtrace.flight.events"
FLIGHT_LOST = "devtrace.flight.lost_events"
FLIGHT_SECONDS = "devtrace.flight.window_seconds"
FLIGHT_THREADS = "devtrace.flight.threads"
FLIGHT_RECOVERED = "devtrace.flight.recovered"
FLIGHT_PID = "devtrace.flight.pid"
CALL_ARGUMENTS = "devtrace.call.arguments"
CALL_RETURN = "devtrace.call.return"
CALL_EXCEPTION = "devtrace.call.exception"

_EXCLUDED = ["devtrace"]

try:
    from devtrace import _native  # type: ignore[attr-defined]

    _SUPPORTED, _WHY_NOT = _native.supported()
except ImportError as error:  # a pure-Python install (no compiled module)
    _native = None
    _SUPPORTED, _WHY_NOT = False, f"the devtrace._native extension is not installed ({error})"


def native_status() -> Tuple[bool, str]:
    """``(True, "")`` when the native recorder can run here, else ``(False, reason)``."""
    return bool(_SUPPORTED), str(_WHY_NOT)


def _require_native() -> Any:
    if not _SUPPORTED:
        raise RuntimeError(f"devtrace's native recorder is not available: {_WHY_NOT}")
    return _native


def _ring_path(path: Optional[str], kind: str) -> Tuple[str, bool]:
    """The ring file to record into, and whether it was chosen (``path``, else
    ``DEVTRACE_RECORD_FILE``) rather than the default one in ``/dev/shm`` (or the temporary
    directory where there is none)."""
    chosen = path or os.environ.get("DEVTRACE_RECORD_FILE")
    if chosen:
        return chosen, True
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()
    return os.path.join(base, f"devtrace-{kind}-{os.getpid()}.ring"), False


def _remove_spent_rings(path: str, chosen: bool) -> None:
    """Removes, where a default ring file goes, the files other recordings left when their
    process ended without stopping them (a flush then ``os._exit``) and that hold nothing
    undelivered: in ``/dev/shm`` each holds its size of memory until removed. A chosen path's
    directory is the program's own, and left alone."""
    if chosen or not _SUPPORTED:
        return
    for place in _ring_places(path, chosen):
        try:
            _native.remove_spent(os.path.dirname(place))
        except OSError:
            pass


def _ring_places(path: str, chosen: bool) -> List[str]:
    """Where a ring file may be made: a chosen path only; the default one, then the same name in
    the temporary directory, for when the default one's filesystem has no room for it (a
    container's ``/dev/shm`` is often 64 MiB)."""
    elsewhere = os.path.join(tempfile.gettempdir(), os.path.basename(path))
    return [path] if chosen or elsewhere == path else [path, elsewhere]


def _library_paths() -> List[str]:
    """Where the standard library and installed packages are (as written and resolved): with
    no packages named, the flight recorder's automatic values are of the program's own code."""
    import site
    import sysconfig

    found = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    found.update(getattr(site, "getsitepackages", lambda: [])())
    found.add(getattr(site, "getusersitepackages", lambda: None)())
    paths = {p for p in found if p}
    return sorted(paths | {os.path.realpath(p) for p in paths})


def _root_ids() -> Optional[Tuple[int, int]]:
    """The root context (``TRACEPARENT``) as ``(trace_id, span_id)``."""
    from opentelemetry import trace

    from devtrace._config import _root_context

    if _root_context is None:
        return None
    ctx = trace.get_current_span(_root_context).get_span_context()
    return (ctx.trace_id, ctx.span_id) if ctx.is_valid else None


def _span_context() -> Optional[Tuple[Any, Any]]:
    """The OpenTelemetry SDK's context variable and the current span's key in its contexts,
    for the native side to find the span an asyncio task was created under (None when the
    runtime context is not the contextvars one)."""
    import contextvars

    from opentelemetry import context
    from opentelemetry.trace.propagation import _SPAN_KEY

    variable = getattr(getattr(context, "_RUNTIME_CONTEXT", None), "_current_context", None)
    return (variable, _SPAN_KEY) if isinstance(variable, contextvars.ContextVar) else None


def _provider() -> Any:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):
        from devtrace._config import configure

        configure()
        provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor") or not hasattr(provider, "_active_span_processor"):
        raise RuntimeError(
            "devtrace's recorder needs the OpenTelemetry SDK's TracerProvider "
            f"(the global provider is {type(provider).__name__}); call devtrace.configure() first"
        )
    return provider


def _aggregate_attributes(calls: Sequence[Tuple[str, str, int, int, int, int]]) -> Dict[str, Any]:
    if not calls:
        return {}
    return {
        CALLS_FUNCTION: [f"{m}.{q}" if m else q for q, m, *_ in calls],
        CALLS_COUNT: [c[2] for c in calls],
        CALLS_TOTAL_NS: [c[3] for c in calls],
        CALLS_SELF_NS: [c[4] for c in calls],
        CALLS_ERRORS: [c[5] for c in calls],
        CALLS_ACCOUNTED_NS: sum(c[4] for c in calls),
    }


def _value_attributes(values: Any) -> Dict[str, str]:
    """A call's value summaries (made natively, without running the program's code) as
    attributes, redacted: an argument whose name says it is a secret is replaced whole, every
    summary goes through the redaction rules."""
    from devtrace.redact import SECRET_NAME_MARKER, is_secret_name, redact

    arguments, returned, exception = values
    out: Dict[str, str] = {}
    if arguments is not None:
        out[CALL_ARGUMENTS] = ", ".join(
            f"{name}={SECRET_NAME_MARKER if is_secret_name(name) else redact(summary)}" for name, summary in arguments
        )
    if returned is not None:
        out[CALL_RETURN] = redact(returned)
    if exception is not None:
        out[CALL_EXCEPTION] = redact(exception)
    return out


def _links(items: Sequence[Tuple[str, str, Tuple[int, int], str, int, int]]) -> List[Any]:
    """The happens-before links of a kept call (what ended its waits), as span links to the
    causing call's span (docs/python.md, "Causality")."""
    from opentelemetry.trace import Link, SpanContext, TraceFlags

    out = []
    for kind, obj, (trace_id, span_id), function, cause_time, wait_ns in items:
        attributes: Dict[str, Any] = {
            names.LINK_KIND: kind,
            names.LINK_OBJECT: obj,
            names.LINK_CAUSE_TIME: cause_time,
            names.LINK_WAIT_NS: wait_ns,
        }
        if function:
            attributes[names.LINK_CAUSE_FUNCTION] = function
        context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
        out.append(Link(context, attributes))
    return out


# Spans are handed to the SDK at most this often (the first of a batch waits this long for
# the rest). Each hand-over takes the GIL from the program's threads: after every drainer pass
# (every few milliseconds on a call-heavy program) that switch cost fib(27) 0.05-0.07 of its
# time on CPython 3.13 (docs/PERFORMANCE.md). Stopping hands the last ones over at once.
_HAND_OVER_EVERY_S = 0.05
#: How long a flush, or the end of recording, waits for the last spans to be handed over.
_FLUSH_TIMEOUT_S = 10.0


class _SpanMaker:
    """Turns the native side's span tuples into the SDK's ReadableSpans."""

    def __init__(self, provider: Any, extra: Optional[Dict[str, Any]] = None) -> None:
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from devtrace import __version__

        self.provider = provider
        self.scope = InstrumentationScope("devtrace.recorder", __version__)
        self.extra = extra or {}
        self.thread_names: Dict[int, str] = {}
        # In a child process started from a recorded call: that call's span id, and the
        # `process` link its top-level spans carry to it.
        self.process_cause: Optional[Tuple[int, Any]] = None

    def thread_name(self, tid: int) -> Optional[str]:
        """The name of a thread the recorder saw before threading knew it (its first event was
        in its start-up), from the threads running now."""
        if tid not in self.thread_names:
            self.thread_names.update({t.native_id: t.name for t in threading.enumerate() if t.native_id is not None})
            self.thread_names.setdefault(tid, "")  # gone already: looked up once
        return self.thread_names[tid] or None

    def make(self, item: Any) -> Any:
        from opentelemetry.sdk.trace import Event, ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        (qualname, module, file, line), (trace_id, span_id, parent_id), (start, end), error, handled, calls, flags, thread, values, links = item
        resumed, still_open, before_window = flags
        tid, thread_name = thread
        thread_name = thread_name or self.thread_name(tid)
        attributes: Dict[str, Any] = {
            names.CODE_FUNCTION: qualname,
            names.CODE_FILE: file,
            names.CODE_LINE: line,
            names.AUTOTRACE: True,
            RECORDER: True,
            THREAD_ID: tid,
        }
        if thread_name:
            attributes[THREAD_NAME] = thread_name
        if resumed:
            attributes[RESUMED] = True
        if still_open:
            attributes[OPEN] = True
        if before_window:
            attributes[BEFORE_WINDOW] = True
        attributes.update(_aggregate_attributes(calls))
        attributes.update(_value_attributes(values))
        attributes.update(self.extra)
        events = [
            Event(names.EXCEPTION_EVENT, {names.EXCEPTION_TYPE: kind, "devtrace.exception.handled": True}, timestamp=ts)
            for ts, kind in handled
        ]
        status = Status(StatusCode.UNSET)
        if error is not None:
            events.append(Event(names.EXCEPTION_EVENT, {names.EXCEPTION_TYPE: error, names.EXCEPTION_ESCAPED: True}, timestamp=end))
            status = Status(StatusCode.ERROR, error)
        sampled = TraceFlags(TraceFlags.SAMPLED)
        parent = SpanContext(trace_id, parent_id, is_remote=False, trace_flags=sampled) if parent_id else None
        span_links = _links(links)
        if self.process_cause is not None and parent_id == self.process_cause[0]:
            span_links.append(self.process_cause[1])
        return ReadableSpan(
            f"{module}.{qualname}" if module else qualname,
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=sampled),
            parent=parent,
            resource=self.provider.resource,
            attributes=attributes,
            events=events,
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=self.scope,
            links=span_links,
        )

    def export(self, items: Iterable[Any]) -> int:
        processor = self.provider._active_span_processor
        n = 0
        for item in items:
            processor.on_end(self.make(item))
            n += 1
        return n


class _Marks:
    """A span processor: marks the SDK's span starts and ends in the ring of the thread, so
    recorded calls nest under the span that was current; in record mode a span started inside
    a recorded call is re-parented to it, and the short calls counted on a span are set on it
    before it is exported."""

    def __init__(self) -> None:
        self.enabled = True

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if not self.enabled or _native is None or not _native.running():
            return
        ctx = span.get_span_context()
        parent = _native.span_start(ctx.trace_id, ctx.span_id)
        if parent is not None and parent[0] == ctx.trace_id and hasattr(span, "_parent"):
            from opentelemetry.trace import SpanContext, TraceFlags

            span._parent = SpanContext(parent[0], parent[1], is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))

    def _on_ending(self, span: Any) -> None:
        if not self.enabled or _native is None or not _native.running():
            return
        calls = _native.span_end(span.get_span_context().span_id)
        if calls:
            attributes = getattr(span, "_attributes", None)
            if attributes is not None and hasattr(attributes, "_immutable"):
                # The SDK froze the attributes a moment ago in end(); this runs before any
                # exporter sees the span.
                attributes._immutable = False
                try:
                    for key, value in _aggregate_attributes(calls).items():
                        attributes[key] = value
                finally:
                    attributes._immutable = True

    def on_end(self, span: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_marks_by_provider: Dict[int, _Marks] = {}


def _install_marks(provider: Any) -> _Marks:
    marks = _marks_by_provider.get(id(provider))
    if marks is None:
        marks = _Marks()
        provider.add_span_processor(marks)
        _marks_by_provider[id(provider)] = marks
    marks.enabled = True
    return marks


_current: Optional["_Base"] = None
_lock = threading.Lock()


class NoRoomForRing(OSError):
    """No place the recorder could use had room for its ring (``errno.ENOSPC``). ``reason``
    says which file and how much was free; ``size_mib`` is the ring's size."""

    def __init__(self, reason: str, option: str, size_mib: int) -> None:
        advice = f"give a smaller ring ({option}={size_mib}), or a path on a filesystem with room"
        super().__init__(errno.ENOSPC, f"{reason}: {advice}")
        self.reason = reason
        self.size_mib = size_mib


class _Base:
    flight = False
    # The option that sizes the ring, named where there is no room for it.
    size_option = "size_mib"

    def __init__(self, path: str, size_mib: int, threshold_ns: int, meta: Dict[str, Any], path_chosen: bool = True) -> None:
        self.path = path
        self.path_chosen = path_chosen
        self.size_mib = size_mib
        self.threshold_ns = threshold_ns
        self.meta = meta
        self.provider = _provider()
        self.stats: Dict[str, Any] = {}
        self.stopped = False

    def _meta_json(self, root: Optional[Tuple[int, int]] = None) -> str:
        meta = dict(self.meta)
        meta.setdefault("pid", os.getpid())
        meta.setdefault("python", sys.executable)
        meta.setdefault("argv", sys.argv[:8])
        root = root or _root_ids()
        if root is not None:
            meta["trace_id"] = f"{root[0]:032x}"
            meta["span_id"] = f"{root[1]:016x}"
        resource = getattr(self.provider, "resource", None)
        if resource is not None:
            meta["service.name"] = str(resource.attributes.get("service.name", ""))
        return json.dumps(meta)[:3800]

    def _start_in_room(self, start: Callable[[str], Any]) -> Any:
        """``start(path)`` on the first of :func:`_ring_places` whose filesystem has room for
        the ring (``self.path`` becomes it); what ``start`` returned. Without room anywhere,
        :class:`NoRoomForRing` (an ``OSError``, ``ENOSPC``) says what to change."""
        for place in _ring_places(self.path, self.path_chosen):
            try:
                started = start(place)
            except OSError as error:
                if error.errno != errno.ENOSPC:
                    raise
                why = error.strerror or str(error)
                continue
            self.path = place
            return started
        raise NoRoomForRing(why, self.size_option, self.size_mib)

    def _continue_in_child(self, parent_pid: int) -> None:
        """In a child just forked: record into a ring file of its own (named by its pid), with
        its own drainer, its calls nesting under the span current when it forked."""
        root = self._child_root()
        self.path = _child_path(self.path, parent_pid, os.getpid())
        self.meta = {**self.meta, "forked_from": parent_pid}
        meta = self._meta_json(root)
        if not self._start_in_room(lambda path: _native.after_fork_child(path, meta, root)):
            self.stopped = True  # the native side was not recording when the process forked
            return
        self._restart_threads()
        _stop_at_multiprocessing_exit()

    def _child_root(self) -> Optional[Tuple[int, int]]:
        """What a forked child's calls nest under: the span current when it forked."""
        from opentelemetry import trace

        current = trace.get_current_span().get_span_context()
        return (current.trace_id, current.span_id) if current.is_valid else _root_ids()

    def _restart_threads(self) -> None:
        pass


def _child_path(path: str, parent_pid: int, child_pid: int) -> str:
    """A forked child's ring file: the parent's, its pid replaced by the child's when the name
    ends with it (``devtrace-flight-PID.ring``, ``run --record``'s ``PID.ring``), else the
    child's pid added before the extension."""
    directory, name = os.path.split(path)
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    suffix = f".{extension}" if dot else ""
    if stem == str(parent_pid):
        stem = str(child_pid)
    elif stem.endswith(f"-{parent_pid}"):
        stem = f"{stem[: -len(str(parent_pid))]}{child_pid}"
    else:
        stem = f"{stem}-{child_pid}"
    return os.path.join(directory, stem + suffix)


# Held by record_calls' export thread while it hands spans to the program's exporters, and
# taken by a fork before it forks: a child forked while that thread held a lock of an exporter's
# (a buffered file's, a socket's) would wait on it for ever, that thread not being in the child
# (CPython gh-84579), and the program, having no thread of its own, could not have met this
# without the recorder. Re-entrant: an exporter may itself start a process.
_export_lock = threading.RLock()


def _before_fork() -> None:
    # os.register_at_fork's before: in the parent, in the thread that forks.
    _export_lock.acquire()
    recorder = _current
    if recorder is not None and not recorder.stopped:
        _process.before_fork(time.time_ns())


def _after_fork_in_parent() -> None:
    _export_lock.release()
    _process.after_fork_in_parent()


def _after_fork_in_child() -> None:
    # os.register_at_fork's after_in_child: runs in the child, in the thread that forked.
    global _lock, _export_lock
    _export_lock = threading.RLock()
    # Another thread of the parent may have held the lock when it forked; it never releases it
    # here (the child has one thread), so the child gets a lock of its own.
    _lock = threading.Lock()
    recorder = _current
    if recorder is None or recorder.stopped or _native is None:
        return
    parent_pid = _recording_pid
    try:
        recorder._continue_in_child(parent_pid)
    except Exception as error:  # the child must go on; it just records nothing
        sys.stderr.write(f"devtrace: the forked child {os.getpid()} records nothing: {error}\n")
        recorder.stopped = True
    _remember_pid()


_recording_pid = os.getpid()
_fork_hook_installed = False


def _remember_pid() -> None:
    global _recording_pid
    _recording_pid = os.getpid()


def _install_fork_hook() -> None:
    global _fork_hook_installed
    _remember_pid()
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(
            before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
        )
        _fork_hook_installed = True


def _stop_at_multiprocessing_exit() -> None:
    """A multiprocessing child ends with os._exit (no atexit): its recorder is stopped by a
    multiprocessing finalizer instead, registered after multiprocessing cleared the parent's."""
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    util.register_after_fork(_at_exit, lambda _: util.Finalize(None, _at_multiprocessing_exit, exitpriority=10))


def _stop_in_multiprocessing_child() -> None:
    """A recorder started in a multiprocessing child that was not forked while recording: a
    spawn or forkserver child importing the main module (as ``__mp_main__``, before
    multiprocessing's start-up clears the finalizers: its process is ``_inheriting`` then), or
    the child's target. A forkserver's child ends with os._exit too, and would lose what the
    drainer had not exported yet."""
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return
    import multiprocessing

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        _stop_at_multiprocessing_exit()
    elif multiprocessing.parent_process() is not None:
        util.Finalize(None, _at_multiprocessing_exit, exitpriority=10)


def _at_multiprocessing_exit() -> None:
    # The SDK's own atexit shutdown does not run either: what the recorder exported is flushed.
    recorder = _current
    _at_exit()
    if recorder is not None:
        force_flush = getattr(recorder.provider, "force_flush", None)
        if force_flush is not None:
            force_flush()


class Recorder(_Base):
    """Records the calls of chosen packages (or of a plan) as spans. See :func:`record_calls`."""

    def __init__(
        self,
        packages: Sequence[str],
        plan: Optional[Sequence[Tuple[str, str]]],
        threshold_ms: float,
        path: str,
        size_mib: int,
        plan_id: Optional[str] = None,
        lossless: bool = True,
        values: Sequence[Tuple[str, str]] = (),
        path_chosen: bool = True,
        causality: bool = True,
    ) -> None:
        super().__init__(path, size_mib, int(threshold_ms * 1_000_000), {"mode": "record", "plan": plan_id}, path_chosen)
        self.lossless = lossless
        self._sigterm: Optional[Callable[[int, Any], None]] = None
        native = _require_native()
        self.maker = _SpanMaker(self.provider, {PLAN_ID: plan_id} if plan_id else None)
        _install_marks(self.provider)
        self._start_in_room(lambda path: native.start(
            path,
            size_mib,
            False,
            list(packages),
            [tuple(p) for p in plan] if plan is not None else None,
            _EXCLUDED,
            self.threshold_ns,
            _root_ids(),
            self._meta_json(),
            span_context=_span_context(),
            wait_for_drainer=lossless,
            values=[tuple(v) for v in values] + [tuple(p) for p in (plan or ())],
            causality=causality,
        ))
        if causality:
            # threading's locks are C: locks the recorded modules make from now on are ones
            # whose waits are seen.
            _causal.install(list(packages) + [module for module, _ in (plan or ())], native)
        # Children spawned from recorded calls continue the trace under them; a child spawned
        # so links its top-level spans to the call that spawned it.
        _process.install(native.spawning_call)
        if causality:
            # Jobs a process pool runs link to the calls that submitted them (from the pool's
            # import on, if it is not imported yet).
            _pool.install(native)
        spawned_by, root = _process.spawned_by(), _root_ids()
        if spawned_by is not None and root is not None:
            self.maker.process_cause = (root[1], _process.process_link(root[0], root[1], spawned_by))
        self._restart_threads()
        _stop_in_multiprocessing_child()
        _endings.hook_pipelines(_before_pipeline_ends)
        self._sigterm = _endings.deliver_at_sigterm(_deliver_before_dying)

    def _restart_threads(self) -> None:
        self.exported = 0  # of the spans this process's native recorder made
        self.thread = threading.Thread(target=self._export_loop, name="devtrace-recorder-export", daemon=True)
        self.thread.start()

    def _child_root(self) -> Optional[Tuple[int, int]]:
        """A forked child's calls nest under the recorded call that forked (the span current
        then when none), its top-level spans linked to it."""
        cause = _process.fork_cause
        if cause is None:
            return super()._child_root()
        trace_id, span_id, function, time_ns, obj = cause
        self.maker.process_cause = (span_id, _process.process_link(trace_id, span_id, obj, function, time_ns))
        return (trace_id, span_id)

    def _export_loop(self) -> None:
        native = _native
        while True:
            batch = native.take_spans(0.05, _HAND_OVER_EVERY_S)
            if batch is None:
                return
            if batch:
                with _export_lock:  # a fork waits for the hand-over (see _export_lock)
                    self.exported += self.maker.export(batch)

    def flush(self, timeout_s: float = _FLUSH_TIMEOUT_S) -> None:
        """Hands the calls finished so far to the provider's span processors now, without
        waiting for the next hand-over (a tracer provider's ``force_flush``)."""
        if self.stopped:
            return
        made = _native.drain_now()
        if made is None:
            return
        deadline = time.monotonic() + timeout_s
        while self.exported < made:
            with _export_lock:
                batch = _native.take_spans(0.0)
                if batch:
                    self.exported += self.maker.export(batch)
                    continue
            if time.monotonic() >= deadline:
                _endings.say_undelivered(
                    _spans(made - self.exported), f"the export thread did not hand them over within {timeout_s:.0f} s of a flush"
                )
                return
            time.sleep(0.001)  # the export thread holds the last batch: it hands it over

    def stop(self) -> Dict[str, Any]:
        """Stops recording; calls still running end now (marked open). Returns statistics."""
        if self.stopped:
            return self.stats
        self.stopped = True
        _causal.uninstall()
        _pool.uninstall()
        _process.uninstall()
        _endings.release_sigterm(self._sigterm)
        self.stats = dict(_native.stop(True))
        self.thread.join(timeout=_FLUSH_TIMEOUT_S)
        self.stats["spans"] = self.exported
        if self.exported < self.stats.get("spans_made", 0):
            _endings.say_undelivered(
                _spans(self.stats["spans_made"] - self.exported),
                f"handing them over took more than {_FLUSH_TIMEOUT_S:.0f} s when recording stopped",
            )
        if self.stats.get("lost") and self.lossless:
            # Writers wait for the drainer; they gave up only on a drainer that read nothing
            # for seconds (READER_WAIT_LIMIT in crates/devtrace-recorder/src/ring.rs).
            sys.stderr.write(
                f"devtrace: the recorder lost {self.stats['lost']:,} of {self.stats['lost'] + self.stats.get('events', 0):,}"
                " events: its drainer read nothing for 5 s while the program waited for it (the machine is"
                " overloaded, or the drainer is stuck); the calls of those events are missing\n"
            )
        elif self.stats.get("lost"):
            # The rings came round to records the drainer had not read yet: the calls they
            # held are missing (the open ones were ended at the gap).
            sys.stderr.write(
                f"devtrace: the recorder lost {self.stats['lost']:,} of {self.stats['lost'] + self.stats.get('events', 0):,}"
                " events: the program made calls faster than they were turned into spans (no core was free for"
                " the recorder's drainer, or the ring is small for this program); record fewer packages, or"
                f" give a larger ring (size_mib, now {self.size_mib}), or leave lossless on\n"
            )
        return self.stats


class FlightRecorder(_Base):
    """The flight recorder. See :func:`record`."""

    flight = True
    size_option = "max_mib"

    def __init__(
        self,
        seconds: float,
        max_mib: int,
        packages: Sequence[str],
        exceptions: Sequence[type],
        signals: Sequence[int],
        on_unhandled: bool,
        threshold_ms: float,
        detail_calls: int,
        path: str,
        values: Sequence[Tuple[str, str]] = (),
        path_chosen: bool = True,
        causality: bool = True,
        auto_values: bool = True,
    ) -> None:
        super().__init__(path, max_mib, int(threshold_ms * 1_000_000), {"mode": "flight", "seconds": seconds}, path_chosen)
        native = _require_native()
        self.seconds = seconds
        self.detail_calls = detail_calls
        self.dumps = 0
        self.last_dump = 0.0
        # A dump after the provider was shut down cannot reach the trace: the ring file is kept
        # for recovery instead (_before_pipeline_ends, _keep_for_recovery).
        self.provider_closed = False
        self.keep_file = False
        self.maker = _SpanMaker(self.provider)
        self.marks = _install_marks(self.provider)
        self._saved_hooks: List[Tuple[str, Any]] = []
        self._saved_signals: Dict[int, Any] = {}
        self._start_in_room(lambda path: native.start(
            path,
            max_mib,
            True,
            list(packages),
            None,
            _EXCLUDED,
            self.threshold_ns,
            _root_ids(),
            self._meta_json(),
            tuple(exceptions) or None,
            self._on_exception if exceptions else None,
            span_context=_span_context(),
            values=[tuple(v) for v in values],
            causality=causality,
            auto_values=auto_values,
            library_paths=_library_paths(),
        ))
        if causality:
            # The locks `packages` make are native ones too: used without waiting they cost no
            # more than threading's; each release writes a record (docs/PERFORMANCE.md).
            _causal.install(list(packages), native)
        # The trace of a window written with no span current and no root (TRACEPARENT): chosen
        # now, so a process started from a recorded call knows the trace that call will be in.
        root = _root_ids()
        self.window_trace = root[0] if root is not None else random.getrandbits(128) or 1
        # What started this process, when it was started from a recorded call (spawned with
        # TRACEPARENT naming it, or forked from it): the window's parent and its process link.
        self.started_by: Optional[Tuple[Tuple[int, int], List[Any]]] = None
        self.fork_span = 0
        self._named = threading.local()
        spawned_by = _process.spawned_by()
        if spawned_by is not None and root is not None:
            self.started_by = (root, [_process.process_link(root[0], root[1], spawned_by)])
        # Children started from recorded calls continue the trace under them: at a process
        # start (never at a call) the call gets its span ids (_name_open_call).
        _process.install(self._name_open_call)
        if on_unhandled:
            self._hook_unhandled()
        for sig in signals:
            self._hook_signal(sig)
        _endings.hook_pipelines(_before_pipeline_ends)

    # -- triggers ------------------------------------------------------------------------

    def _hook_unhandled(self) -> None:
        previous = sys.excepthook

        def excepthook(kind: Any, value: Any, tb: Any) -> None:
            try:
                self.dump("unhandled exception", value)
            except Exception as error:  # never hide the program's own error
                sys.stderr.write(f"devtrace: the flight recorder could not write its window: {error}\n")
            previous(kind, value, tb)

        sys.excepthook = excepthook
        self._saved_hooks.append(("excepthook", previous))
        previous_thread = threading.excepthook

        def thread_hook(args: Any) -> None:
            if args.exc_type is not SystemExit:
                try:
                    self.dump(f"unhandled exception in thread {getattr(args.thread, 'name', '?')}", args.exc_value)
                except Exception as error:
                    sys.stderr.write(f"devtrace: the flight recorder could not write its window: {error}\n")
            previous_thread(args)

        threading.excepthook = thread_hook
        self._saved_hooks.append(("threading.excepthook", previous_thread))

    def _hook_signal(self, sig: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(sig)
        self._saved_signals[sig] = previous

        def handler(signum: int, frame: Any) -> None:
            name = signal.Signals(signum).name
            self.dump(f"signal {name}", None)
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL and signum not in (signal.SIGUSR1, signal.SIGUSR2):
                # Die as the signal would have killed us, now that the window is written.
                self.stop()
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        signal.signal(sig, handler)

    def _on_exception(self, reason: str, exc: BaseException) -> None:
        self.dump(f"exception {type(exc).__qualname__} raised", exc)

    # -- processes -----------------------------------------------------------------------

    def _name_open_call(self) -> Optional[Tuple[int, int, str]]:
        """The recorded call this thread is in, for a process starting from it: it gets span
        ids now (in the trace it will be in: the current span's, else the window's), which a
        dump gives its span; a call starting several processes (multiprocessing starts its
        resource tracker too) keeps its first. ``(trace_id, span_id, function)``; None outside
        recorded calls."""
        from opentelemetry import trace

        found = _native.open_call()
        if found is None:
            return None
        frame, function = found
        named = getattr(self._named, "call", None)
        if named is not None and named[0] is frame:
            return named[1]  # type: ignore[no-any-return]
        current = trace.get_current_span().get_span_context()
        ids = (current.trace_id if current.is_valid else self.window_trace, random.getrandbits(64) or 1, function)
        _native.name_open_call(ids[0], ids[1])
        # The frame (alive while its call runs) tells the same call apart; one a thread, let go
        # at the thread's next process start or its end.
        self._named.call = (frame, ids)
        return ids

    def _child_root(self) -> Optional[Tuple[int, int]]:
        """A forked child's window goes under the recorded call that forked (the span current
        then when none), linked to it; its recovery after a SIGKILL too (the file's meta)."""
        from opentelemetry import trace

        cause = _process.fork_cause
        # What started the parent (its spawn, its own fork) did not start this child.
        self.started_by, self.fork_span = None, 0
        self.meta = {k: v for k, v in self.meta.items() if k != "started_by"}
        if cause is None:
            return super()._child_root()
        trace_id, span_id, function, time_ns, obj = cause
        self.fork_span = trace.get_current_span().get_span_context().span_id
        self.window_trace = trace_id
        self.started_by = ((trace_id, span_id), [_process.process_link(trace_id, span_id, obj, function, time_ns)])
        self.meta = {**self.meta, "started_by": {"object": obj, "function": function, "time_unix_nano": time_ns}}
        return (trace_id, span_id)

    def _placement(self) -> Tuple[Optional[Tuple[int, int]], List[Any]]:
        """The window's parent and extra links: under the call that started this process (with
        its process link) unless a span of this process's own is current."""
        from opentelemetry import trace

        current = trace.get_current_span().get_span_context()
        if self.started_by is None:
            return None, []
        # The span current at the fork, or the spawning call (TRACEPARENT, which configure()
        # makes current), is not one of this process's.
        if current.is_valid and current.span_id not in (self.fork_span, self.started_by[0][1]):
            return None, []
        return self.started_by

    # -- the window ----------------------------------------------------------------------

    def dump(self, reason: str = "requested", error: Optional[BaseException] = None) -> Optional[Dict[str, Any]]:
        """Writes the window (the last ``seconds`` of every call) into the trace now, as a
        ``devtrace.flight_window`` span linked to the failure. Returns what was written, or
        None when a dump was made less than a second ago (a burst of failures writes one)."""
        if self.stopped:
            return None
        if self.provider_closed:
            self._keep_for_recovery(reason)
            return None
        now = time.monotonic()
        if self.dumps and now - self.last_dump < 1.0:
            return None
        self.last_dump = now
        self.dumps += 1
        self.marks.enabled = False  # the dump's own spans are not program spans
        try:
            # Before the window is built: building it lets other threads run (and move on).
            try:
                values: Optional[_DumpValues] = _DumpValues(error)
            except Exception as problem:  # the window matters more than its values
                sys.stderr.write(f"devtrace: the flight recorder could not summarise the calls' arguments: {problem}\n")
                values = None
            parent_ids, links = self._placement()
            window = _write_window(
                self.maker,
                lambda root: _native.dump_window(self.threshold_ns, self.detail_calls, root, int(self.seconds * 1e9)),
                reason,
                error,
                parent_ids=parent_ids,
                values=values,
                links=links,
                trace_id=self.window_trace,
            )
        finally:
            self.marks.enabled = True
        force_flush = getattr(self.provider, "force_flush", None)
        if force_flush is not None:
            force_flush()
        return window

    def _keep_for_recovery(self, reason: str) -> None:
        if not self.keep_file:
            self.keep_file = True
            _endings.say_undelivered(
                f"the flight recorder's window ({reason})",
                f"the program had shut the tracer provider down; its ring file {self.path} is kept at exit for"
                " `devtrace recover` to write it into the trace (`devtrace run --record` does it by itself)",
            )

    def stop(self) -> Dict[str, Any]:
        """Stops the flight recorder (the window is discarded, its file removed, unless a dump
        could not be written: see :meth:`dump`)."""
        if self.stopped:
            return self.stats
        self.stopped = True
        _causal.uninstall()
        _process.uninstall()
        for name, previous in self._saved_hooks:
            if name == "excepthook":
                sys.excepthook = previous
            else:
                threading.excepthook = previous
        for sig, previous in self._saved_signals.items():
            try:
                signal.signal(sig, previous)
            except (ValueError, TypeError):
                pass
        self.stats = dict(_native.stop(not self.keep_file))
        return self.stats


#: Frames of each thread (the innermost) whose calls' arguments a dump summarises.
DUMP_FRAMES = 64

_CodeKey = Tuple[str, str, int]
_Summaries = List[Tuple[_CodeKey, Optional[List[Tuple[str, str]]]]]


class _DumpValues:
    """What a flight dump knows of values, summarised (natively, running none of the program's
    code) at the moment of the dump, before its window is built: the arguments of the calls
    open on each thread's stack, and of the calls the failure's exception passed through (its
    traceback's frames), with the exception. Only the functions of ``values=`` are captured
    while recording (its promise is not to slow the program); for the other calls these are the
    values as they are at the dump (a parameter a function has rebound shows its new value), and
    what was captured as a call happened wins over them (:meth:`attach`)."""

    def __init__(self, error: Optional[BaseException]) -> None:
        # threading's own table, copied without its lock (enumerate() takes it: a dump from a
        # signal handler that interrupted a thread holding it would wait for ever).
        native_ids = {ident: t.native_id for ident, t in list(getattr(threading, "_active", {}).items())}
        self.stacks: Dict[int, _Summaries] = {}
        for ident, frame in sys._current_frames().items():
            tid = native_ids.get(ident)
            if tid is not None:
                self.stacks[tid] = self._summarised(self._outward(frame))
        self.thread = threading.get_native_id()
        self.failed: _Summaries = []
        self.exception: Optional[str] = None
        if error is not None:
            from devtrace.errors import exception_field

            frames = []
            tb = exception_field(error, "__traceback__")
            while tb is not None:
                frames.append(tb.tb_frame)
                tb = tb.tb_next
            self.failed = self._summarised(frames)
            self.exception = _native.summarize_value(error)

    @staticmethod
    def _outward(frame: Any) -> List[Any]:
        """A thread's frames, outermost first."""
        frames = []
        while frame is not None:
            frames.append(frame)
            frame = frame.f_back
        frames.reverse()
        return frames

    @staticmethod
    def _summarised(frames: List[Any]) -> _Summaries:
        return [
            ((f.f_code.co_qualname, f.f_code.co_filename, f.f_code.co_firstlineno), _native.frame_arguments(f))
            for f in frames[-DUMP_FRAMES:]
        ]

    def attach(self, spans: List[Any]) -> List[Any]:
        """The window's spans with these values set on the calls they belong to: an open span
        gets the arguments of the frame of its thread running the same code at the same depth
        (the open spans and the stack's frames are matched in order, outermost first); a span
        the exception ended on the failing thread gets its traceback frame's arguments and the
        exception (matched outermost first: the outer a call, the later it ended)."""
        open_spans: Dict[int, List[Tuple[int, int, _CodeKey]]] = {}
        failed: List[Tuple[int, int, _CodeKey]] = []
        for i, item in enumerate(spans):
            (qualname, _module, file, line), _ids, (start, end), error, _h, _c, flags, (tid, _n) = item[:8]
            key = (qualname, file, line)
            if flags[1]:
                open_spans.setdefault(tid, []).append((start, i, key))
            elif error is not None and tid == self.thread:
                failed.append((end, i, key))
        found: Dict[int, Tuple[Any, Optional[str]]] = {}
        for tid, opened in open_spans.items():
            stack = self.stacks.get(tid, [])
            at = 0
            for _start, i, key in sorted(opened):
                for j in range(at, len(stack)):
                    if stack[j][0] == key:
                        found[i] = (stack[j][1], None)
                        at = j + 1
                        break
        failed.sort(reverse=True)
        latest = None
        for key, arguments in self.failed:
            for end, i, span_key in failed:
                if span_key == key and i not in found and (latest is None or end <= latest):
                    found[i] = (arguments, self.exception)
                    latest = end
                    break
        out = list(spans)
        for i, (arguments, exception) in found.items():
            item = out[i]
            # What was captured as the call happened wins over what the frame holds now.
            captured_arguments, returned, captured_exception = item[8]
            merged = (
                captured_arguments if captured_arguments is not None else arguments,
                returned,
                captured_exception if captured_exception is not None else exception,
            )
            out[i] = (*item[:8], merged, *item[9:])
        return out


def _safe_local(value: Any, limit: int, name: Optional[str] = None) -> Tuple[str, str]:
    """(type name, text) of a local variable in a dump's exception event: the native summary
    (no ``__repr__`` of the program runs: the flight recorder writes its window from inside
    failures, where such code may be what failed), redacted, at most ``limit`` characters."""
    from devtrace._repr import shorten
    from devtrace.redact import SECRET_NAME_MARKER, is_secret_name, redact

    kind = type(value)
    module = kind.__dict__.get("__module__", "builtins")
    kind_name = kind.__qualname__ if module in ("builtins", None) else f"{module}.{kind.__qualname__}"
    if name is not None and issubclass(kind, (str, bytes)) and is_secret_name(name):
        return kind_name, SECRET_NAME_MARKER
    return kind_name, shorten(redact(_native.summarize_value(value)), limit)


def _failure_parent() -> Tuple[Optional[Any], Optional[Any]]:
    """The span to hang a window under: the current span if one is recording, else the root
    context (TRACEPARENT); and the span to link to."""
    from opentelemetry import trace

    current = trace.get_current_span().get_span_context()
    if current.is_valid:
        return current, current
    from devtrace._config import _root_context

    if _root_context is not None:
        root = trace.get_current_span(_root_context).get_span_context()
        if root.is_valid:
            return root, None
    return None, None


def _write_window(
    maker: _SpanMaker,
    build: Callable[[Optional[Tuple[int, int]]], Dict[str, Any]],
    reason: str,
    error: Optional[BaseException],
    recovered: bool = False,
    parent_ids: Optional[Tuple[int, int]] = None,
    values: Optional[_DumpValues] = None,
    links: Sequence[Any] = (),
    trace_id: Optional[int] = None,
) -> Dict[str, Any]:
    """Builds the window (``build``) and exports it: its calls, then the
    ``devtrace.flight_window`` span, under ``parent_ids`` when given, else under the span
    current now (linked to it, the failure) or the run's root; ``links`` are added to it; with
    no parent at all it starts a trace (``trace_id``, else a new one)."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

    if parent_ids is not None:
        parent, link = SpanContext(parent_ids[0], parent_ids[1], is_remote=True), None
    elif recovered:
        parent, link = None, None
    else:
        parent, link = _failure_parent()
    trace_id = parent.trace_id if parent is not None else trace_id or random.getrandbits(128) or 1
    window_id = random.getrandbits(64) or 1
    window = build((trace_id, window_id))
    spans = window["spans"]
    if values is not None:
        spans = values.attach(spans)
    maker.export(spans)
    attributes: Dict[str, Any] = {
        FLIGHT_REASON: reason,
        FLIGHT_EVENTS: window["events"],
        FLIGHT_LOST: window["lost"],
        FLIGHT_SECONDS: round((window["end"] - window["start"]) / 1e9, 6),
        FLIGHT_THREADS: [f"{name or maker.thread_name(tid) or 'thread'} ({tid})" for tid, name, _, _ in window["threads"]],
        FLIGHT_PID: window["pid"],
        RECORDER: True,
    }
    if recovered:
        attributes[FLIGHT_RECOVERED] = True
    top: List[Tuple[str, str, int, int, int, int]] = []
    for _tid, _name, calls in window["top_calls"]:
        top.extend(calls)
    attributes.update(_aggregate_attributes(top))
    events = []
    status = Status(StatusCode.UNSET)
    if error is not None:
        from devtrace.errors import exception_attributes
        from devtrace.redact import redact

        # No code of the program runs in a dump (it writes from inside failures): the message
        # is read from the exception's arguments, never through its __str__.
        message_of = _native.exception_message
        events.append(Event(names.EXCEPTION_EVENT, exception_attributes(error, describe=_safe_local, message_of=message_of), timestamp=window["end"]))
        status = Status(StatusCode.ERROR, redact(f"{type(error).__qualname__}: {message_of(error)}")[:500])
    sampled = TraceFlags(TraceFlags.SAMPLED)
    start = window["start"] or time.time_ns()
    end = max(window["end"], start)
    maker.provider._active_span_processor.on_end(
        ReadableSpan(
            FLIGHT_WINDOW,
            context=SpanContext(trace_id, window_id, is_remote=False, trace_flags=sampled),
            parent=SpanContext(parent.trace_id, parent.span_id, is_remote=False, trace_flags=sampled) if parent is not None else None,
            resource=maker.provider.resource,
            attributes=attributes,
            events=events,
            links=([Link(link, {"devtrace.link": "failure"})] if link is not None else []) + list(links),
            kind=SpanKind.INTERNAL,
            status=status,
            start_time=start,
            end_time=end,
            instrumentation_scope=maker.scope,
        )
    )
    return {"trace_id": f"{trace_id:032x}", "span_id": f"{window_id:016x}", "spans": len(spans), **{k: window[k] for k in ("events", "lost", "start", "end")}}


def record_calls(
    *packages: str,
    threshold_ms: Optional[float] = None,
    plan: Optional[Sequence[Tuple[str, str]]] = None,
    plan_id: Optional[str] = None,
    size_mib: int = DEFAULT_RECORD_MIB,
    path: Optional[str] = None,
    lossless: bool = True,
    values: Sequence[Any] = (),
    causality: bool = True,
) -> Recorder:
    """Records calls natively: of functions in ``packages`` (module names, sub-modules
    included), or exactly the ``(module, qualname)`` pairs of ``plan``; everything else is
    switched off after its first call and runs at full speed. Calls lasting at least
    ``threshold_ms`` (default 1 ms, or ``DEVTRACE_AUTOTRACE_THRESHOLD_MS``) become spans; the
    others are counted on their parent. Nothing is lost: when the program makes calls faster than
    the drainer turns them into spans and the ring is full of unread records, the program waits
    for it (``lossless=False``: it overwrites them instead, and :meth:`Recorder.stop` says how
    many were lost).

    The values of the plan's functions' calls and of those in ``values`` (``(module,
    qualname)`` pairs or ``"module:qualname"``) are captured: the arguments, the return value or
    the exception, as short summaries made without running any of the program's code (no
    ``__repr__``: built-in values by value, containers by length and first items, other objects
    by type and a few plain attributes), redacted, at most 512 bytes a call and 256 KiB a
    second. They are set on the call's span (``devtrace.call.arguments``, ``.return``,
    ``.exception``); such a call that fails is kept as a span whatever its duration.

    Waits between threads are linked: a queue get to the put of its item, a lock's contended
    acquire to its release, an event or condition wait to its set or notify, a thread's run to
    its ``start()`` and its ``join()`` to its end, a future's job to its submit and ``result()``
    to the job: span links (``devtrace.link.kind`` …) on the waiting call's span to the causing
    call's span, made from object identities without running the program's code. While it
    records, ``threading.Lock()``/``RLock()`` called from the recorded modules make locks whose
    waits are seen (docs/python.md, "Causality"). ``causality=False`` links nothing and leaves
    ``threading.Lock`` as it is (the calls are recorded the same). Raises RuntimeError where the
    native recorder cannot run (:func:`native_status`)."""
    global _current
    if not packages and plan is None:
        raise ValueError('record_calls() needs a package name or a plan, e.g. record_calls("myapp")')
    for package in packages:
        if not package or not all(part.isidentifier() for part in package.split(".")):
            raise ValueError(f"record_calls(): {package!r} is not a module name (e.g. 'myapp' or 'myapp.core')")
    threshold = _threshold(threshold_ms)
    wanted = [_function_name(v, "record_calls") for v in values]
    packages = mains_named(packages)
    if plan is not None:
        plan = [(main_named(module), qualname) for module, qualname in plan]
    with _lock:
        _stop_current()
        _install_exit_hook()
        _install_fork_hook()
        ring, chosen = _ring_path(path, "record")
        _remove_spent_rings(ring, chosen)
        _current = Recorder(
            packages, plan, threshold, ring, size_mib, plan_id, lossless, wanted, path_chosen=chosen, causality=causality
        )
        return _current  # type: ignore[return-value]


def _function_name(value: Any, caller: str) -> Tuple[str, str]:
    """``(module, qualname)`` from a pair or a ``"module:qualname"`` string (``caller``, the
    function given it, is named in the error)."""
    if isinstance(value, str) and value.count(":") == 1 and all(value.split(":")):
        module, qualname = value.split(":")
        return main_named(module), qualname
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return main_named(value[0]), value[1]
    raise ValueError(
        f"{caller}(values=...): {value!r} is not a function name; give (module, qualname) or "
        '"module:qualname", e.g. "myapp.store:Store.save"'
    )


def _threshold(threshold_ms: Optional[float]) -> float:
    if threshold_ms is None:
        raw = os.environ.get("DEVTRACE_AUTOTRACE_THRESHOLD_MS", "")
        try:
            threshold_ms = float(raw) if raw.strip() else 1.0
        except ValueError:
            raise ValueError(f"DEVTRACE_AUTOTRACE_THRESHOLD_MS={raw!r} is not a number of milliseconds") from None
    if threshold_ms < 0:
        raise ValueError(f"threshold_ms must be ≥ 0, not {threshold_ms}")
    return threshold_ms


def record(
    seconds: float = DEFAULT_WINDOW_SECONDS,
    max_mib: int = DEFAULT_FLIGHT_MIB,
    *,
    packages: Sequence[str] = (),
    exceptions: Sequence[type] = (),
    signals: Sequence[int] = (signal.SIGTERM, signal.SIGUSR2),
    on_unhandled: bool = True,
    threshold_ms: float = DEFAULT_FLIGHT_THRESHOLD_MS,
    detail_calls: int = DEFAULT_DETAIL_CALLS,
    path: Optional[str] = None,
    values: Sequence[Any] = (),
    causality: bool = True,
    auto_values: bool = True,
) -> FlightRecorder:
    """Starts the flight recorder: the last ``seconds`` of every call (of ``packages`` only,
    when given) are kept in a ring of at most ``max_mib`` MiB (when calls come faster than it
    holds, the window is shorter: the dump says how long it was). The window is written into
    the trace on an unhandled exception (``on_unhandled``), a failing pytest test (the devtrace
    pytest plugin), an exception of one of ``exceptions`` being raised, one of ``signals``
    (SIGTERM: written, then the process ends as it would have; SIGUSR2: written, and the
    program goes on), or :meth:`FlightRecorder.dump`. Calls shorter than ``threshold_ms`` are
    counted on their parent, except the last ``detail_calls`` records of each thread, kept
    whole.

    The calls of every recorded function have their arguments and their return value or
    exception captured as they happen (``auto_values``), into a small store per thread in the
    ring file (its last :data:`FLIGHT_VALUE_CALLS` captured calls): a dump (or a recovery after
    the process was killed) sets them on those calls' spans, so the calls that completed just
    before a failure show what they got and gave. A function called more than
    :data:`AUTO_VALUE_CALLS_PER_SECOND` times in a second is no longer captured (its calls cost
    what they cost without values), and automatic captures use at most half of the second's
    value budget. The functions in ``values`` (as :func:`record_calls`' ``values``) are always
    captured. ``auto_values=False`` captures only those.

    As :func:`record_calls`, the window links waits to their causes (``causality=False``: it
    links nothing and leaves ``threading.Lock`` as it is)."""
    global _current
    if seconds <= 0:
        raise ValueError(f"record(): seconds must be > 0, not {seconds}")
    wanted = [_function_name(v, "record") for v in values]
    packages = mains_named(packages)
    with _lock:
        _stop_current()
        _install_exit_hook()
        _install_fork_hook()
        ring, chosen = _ring_path(path, "flight")
        _remove_spent_rings(ring, chosen)
        _current = FlightRecorder(
            seconds,
            max_mib,
            packages,
            exceptions,
            signals,
            on_unhandled,
            threshold_ms,
            detail_calls,
            ring,
            wanted,
            path_chosen=chosen,
            causality=causality,
            auto_values=auto_values,
        )
        return _current  # type: ignore[return-value]


def current() -> Optional[_Base]:
    """The recorder running in this process, if any."""
    return _current


def _stop_current() -> None:
    global _current
    if _current is not None and not _current.stopped:
        _current.stop()  # type: ignore[attr-defined]
    _current = None
    for marks in _marks_by_provider.values():
        marks.enabled = False


def stop_recording() -> Optional[Dict[str, Any]]:
    """Stops the recorder or flight recorder running in this process; returns its statistics."""
    with _lock:
        recorder = _current
        _stop_current()
        return recorder.stats if recorder is not None else None


def file_meta(path: str) -> Dict[str, Any]:
    """The metadata a recorder file carries (pid, python, argv, the root trace context, mode).
    Raises ValueError when ``path`` is not a devtrace recorder file."""
    with open(path, "rb") as f:
        header = f.read(4096)
    if len(header) < 4096 or header[:8] != b"DTREC\0v1":
        raise ValueError(f"{path} is not a devtrace recorder file")
    length = int.from_bytes(header[144:148], sys.byteorder)
    try:
        meta = json.loads(header[256 : 256 + min(length, 3840)].decode("utf-8", "replace"))
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def recover(path: str, *, threshold_ms: float = DEFAULT_FLIGHT_THRESHOLD_MS, detail_calls: int = DEFAULT_DETAIL_CALLS, seconds: float = 0.0) -> Dict[str, Any]:
    """Writes the window a dead process left in its ring file into its trace (the root context
    its metadata names, else ``TRACEPARENT``), then removes the file. Used by ``devtrace
    recover`` and ``devtrace run --record``."""
    native = _require_native()
    provider = _provider()
    maker = _SpanMaker(provider)

    def build(root: Optional[Tuple[int, int]]) -> Dict[str, Any]:
        return native.recover_window(path, int(threshold_ms * 1e6), detail_calls, root, int(seconds * 1e9))

    meta = file_meta(path)
    parent_ids, links = None, []
    if meta.get("trace_id") and meta.get("span_id"):
        parent_ids = (int(meta["trace_id"], 16), int(meta["span_id"], 16))
        started_by = meta.get("started_by")
        if isinstance(started_by, dict):  # forked from a recorded call: the window's parent
            links.append(
                _process.process_link(*parent_ids, str(started_by.get("object", "")), str(started_by.get("function", "")), int(started_by.get("time_unix_nano", 0)))
            )
    result = _write_window(maker, build, "process died (recovered from its ring file)", None, recovered=True, parent_ids=parent_ids, links=links)
    force_flush = getattr(provider, "force_flush", None)
    if force_flush is not None:
        force_flush()
    try:
        os.remove(path)
    except OSError:
        pass
    return result


_exit_hook_installed = False


def _install_exit_hook() -> None:
    # Registered when a recorder starts, after configure() registered the SDK's shutdown, so
    # it runs before it (atexit runs the last registered first).
    global _exit_hook_installed
    if not _exit_hook_installed:
        atexit.register(_at_exit)
        _exit_hook_installed = True


def _spans(count: int) -> str:
    return f"{count:,} spans of recorded calls (and the shorter calls counted on them)"


def _before_pipeline_ends(pipeline: Any, closing: bool) -> None:
    """Before a tracer provider's span processors flush or shut down (_endings.hook_pipelines):
    the recorder's provider shutting down stops recording, every span handed over first; any
    other flush (or another provider's shutdown: under ``devtrace run`` the program's own
    provider is not the one in use) hands over the calls finished so far, and flushes the
    recorder's provider too. The flight recorder hands nothing over (it builds nothing until a
    dump); its provider shutting down means a later dump cannot be delivered (see
    :meth:`FlightRecorder.dump`)."""
    recorder = _current
    if recorder is None or recorder.stopped:
        return
    ours = getattr(recorder.provider, "_active_span_processor", None) is pipeline
    if recorder.flight:  # it builds nothing until a dump; one after this cannot be delivered
        recorder.provider_closed = recorder.provider_closed or (ours and closing)  # type: ignore[attr-defined]
        return
    if ours and closing:
        stop_recording()
        return
    recorder.flush()  # type: ignore[attr-defined]
    if not ours:
        recorder.provider.force_flush()


def _deliver_before_dying() -> None:
    """SIGTERM with its default disposition: everything recorded, and the program's own spans,
    reach the exporters before the signal ends the process."""
    recorder = _current
    stop_recording()
    if recorder is not None:
        recorder.provider.force_flush()


def _at_exit() -> None:
    # A clean exit: the spans still in the rings are exported and the ring file removed (only
    # a process that dies leaves one for recovery).
    try:
        stop_recording()
    except Exception:
        pass
