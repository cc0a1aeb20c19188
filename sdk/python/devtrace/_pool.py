"""``ProcessPoolExecutor`` jobs linked across processes while ``record_calls`` records.

A job runs in a worker process, whose recorder (a forked worker's own ring, or a spawned one's
if it records) knows nothing of the call that submitted it. So the submitting call's ids travel
with the job: while a recorded call submits, ``concurrent.futures.process``'s work item gets
the callable wrapped in a :class:`PoolJob` (picklable; the user's callable inside is pickled
as before) naming that call, which is kept as a span. In the worker, the job's first recorded
call gets a ``future`` link to it (``pool_job_begin``). When the job returns, the span of the
last call it kept comes back with the result (:class:`JobDone`, unpickled in the parent as the
result itself), and ``Future.result()`` links to that span (``pool_job_done``), as a thread
pool's ``result()`` links to its worker's call. The manager thread's ``set_result`` records
nothing (``causality.rs``).

Installed when ``concurrent.futures.process`` is imported while recording (the native recorder
calls :func:`install` when the module's code returns; nothing is paid by a program that does
not use it), or at ``record_calls`` when it was imported before. No user code runs; a submit
outside any recorded call, or after ``stop()``, is untouched.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, Optional, Tuple

from devtrace import _process

_installed: Optional[Tuple[Any, Callable[..., Any]]] = None
# The native module while ``record_calls`` records (set by install, cleared by uninstall; a
# forked worker has its parent's).
_native: Any = None


def _recording() -> Any:
    """The native module while ``record_calls`` records in this process, else None."""
    native = _native
    if native is None or not native.running():
        return None
    return native


class _Carried:
    """Something carried to or from a worker with the ids of a call there: ``(trace_id,
    span_id, function, monotonic ns)``, and the parent's future's address (the way back)."""

    __slots__ = ("carried", "future", "trace_id", "span_id", "function", "time_ns")

    def __init__(self, carried: Any, future: int, trace_id: int, span_id: int, function: str, time_ns: int) -> None:
        self.carried = carried
        self.future = future
        self.trace_id = trace_id
        self.span_id = span_id
        self.function = function
        self.time_ns = time_ns

    def _fields(self) -> Tuple[Any, int, int, int, str, int]:
        return (self.carried, self.future, self.trace_id, self.span_id, self.function, self.time_ns)


class PoolJob(_Carried):
    """A job's callable, with the submitting call's ids."""

    __slots__ = ()

    def __reduce__(self) -> Tuple[Any, ...]:
        return (PoolJob, self._fields())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fn = self.carried
        native = _recording()
        if native is None:
            return fn(*args, **kwargs)
        try:
            native.pool_job_begin(id(self), self.trace_id, self.span_id, self.function, self.time_ns)
        except RuntimeError:  # the recorder stopped meanwhile
            return fn(*args, **kwargs)
        try:
            value = fn(*args, **kwargs)
        finally:
            done = _job_end(native)
        if done is None:
            return value
        return JobDone(value, self.future, *done)


def _job_end(native: Any) -> Optional[Tuple[int, int, str, int]]:
    try:
        return native.pool_job_end()  # type: ignore[no-any-return]
    except RuntimeError:
        return None


class JobDone(_Carried):
    """A job's result, with the ids of the worker's call that completed it; unpickled in the
    parent as the result itself (:func:`_job_done`)."""

    __slots__ = ()

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_job_done, self._fields())


def _job_done(value: Any, future: int, trace_id: int, span_id: int, function: str, time_ns: int) -> Any:
    """In the parent's manager thread, unpickling a job's result: the future's ``result()``
    links to the worker's call; the result is the job's own value."""
    native = _recording()
    if native is not None:
        try:
            native.pool_job_done(future, trace_id, span_id, function, time_ns)
        except RuntimeError:
            pass
    return value


def _wrapping(work_item: Callable[..., Any]) -> Callable[..., Any]:
    def _WorkItem(future: Any, fn: Callable[..., Any], args: Any, kwargs: Dict[str, Any]) -> Any:
        call = _process.spawning_call() if _recording() is not None else None
        if call is not None:
            fn = PoolJob(fn, id(future), call[0], call[1], call[2], time.monotonic_ns())
        return work_item(future, fn, args, kwargs)

    _WorkItem.__wrapped__ = work_item  # type: ignore[attr-defined]
    return _WorkItem


def install(native: Any = None) -> None:
    """Jobs submitted from recorded calls from now on carry the submitting call (when
    ``concurrent.futures.process`` is imported and ``record_calls`` records: it gives
    `native`; the recorder's hook on that module's import calls this without)."""
    global _installed, _native
    if native is not None:
        _native = native
    module: Any = sys.modules.get("concurrent.futures.process")
    if _installed is not None or module is None or _recording() is None:
        return
    work_item = module._WorkItem
    _installed = (module, work_item)
    module._WorkItem = _wrapping(work_item)


def uninstall() -> None:
    """Submitting as before (jobs submitted meanwhile keep their wrapper: it runs them as they
    are once nothing records)."""
    global _installed, _native
    _native = None
    if _installed is None:
        return
    module, work_item = _installed
    _installed = None
    module._WorkItem = work_item
