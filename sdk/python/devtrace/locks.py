"""Lock tracing: every use of a lock is a span ``lock <name>`` from the request to the release,
with ``devtrace.lock.requested`` / ``.acquired`` / ``.released`` events, the wait and hold times
(measured on a monotonic clock) and the holder, as ``devtrace locks`` reads them
(docs/conventions.md). While the lock is held, its span is the current span, so the work done
under the lock nests inside it; a lock taken while holding another nests too, which is how
devtrace finds lock-order inversions.

- :class:`Lock` / :class:`RLock`: drop-in ``threading`` locks (``with``, ``acquire(blocking,
  timeout)``, ``release``, ``locked``). An ``RLock`` records its outermost acquisition only.
- :class:`AsyncLock`: an ``asyncio.Lock`` (``async with``).
- :class:`FileLock` / :func:`file_lock`: an advisory lock on a file (``flock``), shared between
  processes: the holder is ``pid <n>``.
- :func:`traced_lock`: wraps any object with ``acquire()`` / ``release()`` (a
  ``multiprocessing.Lock``, a third-party file lock…).

A request that fails (timeout, non-blocking, cancelled) ends its span with an error status,
no ``acquired`` event and a hold time of 0.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Tuple, Union

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from devtrace import _names as names
from devtrace._config import parent_context, tracer

__all__ = ["Lock", "RLock", "AsyncLock", "FileLock", "file_lock", "traced_lock"]

PathLike = Union[str, "os.PathLike[str]"]


def _thread_holder() -> str:
    return threading.current_thread().name


class _Use:
    """One request → acquisition → release of a lock, as a span."""

    __slots__ = ("span", "requested", "acquired_at", "token", "thread")

    def __init__(self, name: str, kind: str, holder: str) -> None:
        now = time.time_ns()
        self.requested = time.monotonic_ns()
        self.span = tracer().start_span(
            f"lock {name}",
            context=parent_context(),
            start_time=now,
            attributes={names.LOCK_NAME: name, names.LOCK_KIND: kind, names.LOCK_HOLDER: holder},
        )
        self.span.add_event(names.LOCK_REQUESTED, timestamp=now)
        self.acquired_at = 0
        self.token: Optional[object] = None
        self.thread = threading.get_ident()

    def acquired(self) -> None:
        self.acquired_at = time.monotonic_ns()
        self.span.set_attribute(names.LOCK_WAIT_NS, self.acquired_at - self.requested)
        self.span.add_event(names.LOCK_ACQUIRED, timestamp=time.time_ns())
        # Work done while holding the lock nests under its span.
        self.token = otel_context.attach(trace.set_span_in_context(self.span))

    def failed(self, reason: str) -> None:
        self.span.set_attribute(names.LOCK_WAIT_NS, time.monotonic_ns() - self.requested)
        self.span.set_attribute(names.LOCK_HOLD_NS, 0)
        self.span.set_status(Status(StatusCode.ERROR, reason))
        self.span.end()

    @staticmethod
    def stamp() -> Tuple[int, int]:
        """Taken just before the lock is really released, so a waiter's acquisition is never
        recorded before this release."""
        return time.monotonic_ns(), time.time_ns()

    def released(self, stamp: Tuple[int, int]) -> None:
        monotonic, now = stamp
        self.span.set_attribute(names.LOCK_HOLD_NS, monotonic - self.acquired_at)
        self.span.add_event(names.LOCK_RELEASED, timestamp=now)
        self._detach()
        self.span.end(end_time=now)

    def _detach(self) -> None:
        token, self.token = self.token, None
        # A lock released by another thread (allowed for threading.Lock) cannot restore the
        # acquiring thread's context from here; that thread's context is left as it was.
        if token is not None and threading.get_ident() == self.thread:
            try:
                otel_context.detach(token)  # type: ignore[arg-type]
            except Exception:
                pass


class _Releasing:
    """release() and locked() of the in-process locks: the release is stamped just before the
    underlying lock lets a waiter in."""

    _lock: Any
    _use: Optional[_Use]

    def release(self) -> None:
        use, self._use = self._use, None
        stamp = _Use.stamp()
        self._lock.release()
        if use is not None:
            use.released(stamp)

    def locked(self) -> bool:
        return bool(self._lock.locked())


class Lock(_Releasing):
    """A ``threading.Lock`` whose uses are traced as ``lock <name>`` spans."""

    kind = "threading.Lock"

    def __init__(self, name: str, lock: Any = None) -> None:
        self.name = name
        self._lock = lock if lock is not None else self._new_lock()
        self._use: Optional[_Use] = None

    @staticmethod
    def _new_lock() -> Any:
        return threading.Lock()

    def _holder(self) -> str:
        return _thread_holder()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        failure = "not acquired (timeout)" if blocking else "not acquired (non-blocking, held)"
        return self._traced_acquire(failure, blocking, timeout)

    def _traced_acquire(self, failure: str, *args: Any, **kwargs: Any) -> bool:
        use = _Use(self.name, self.kind, self._holder())
        try:
            ok = self._lock.acquire(*args, **kwargs)
        except BaseException as error:
            use.failed(f"not acquired: {type(error).__name__}")
            raise
        if ok is False:
            use.failed(failure)
            return False
        use.acquired()
        self._use = use
        return True

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<devtrace.{type(self).__name__} {self.name!r} {'locked' if self.locked() else 'unlocked'}>"


class RLock(Lock):
    """A ``threading.RLock``; re-entering it in the holding thread records nothing new."""

    kind = "threading.RLock"

    def __init__(self, name: str) -> None:
        super().__init__(name, threading.RLock())
        self._depth = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._depth and self._owned():
            self._lock.acquire()
            self._depth += 1
            return True
        if not super().acquire(blocking, timeout):
            return False
        self._depth = 1
        return True

    def _owned(self) -> bool:
        return bool(self._lock._is_owned())  # type: ignore[attr-defined]

    def release(self) -> None:
        if self._depth > 1:
            self._depth -= 1
            self._lock.release()
            return
        self._depth = 0
        super().release()

    def locked(self) -> bool:
        return self._depth > 0


class AsyncLock(_Releasing):
    """An ``asyncio.Lock`` traced per use; the holder is the task's name."""

    kind = "asyncio.Lock"

    def __init__(self, name: str) -> None:
        self.name = name
        # Created on first use: before Python 3.10 an asyncio.Lock binds to the event loop
        # current when it is made, and there may be none yet.
        self._async_lock: Optional[asyncio.Lock] = None
        self._use: Optional[_Use] = None

    @property
    def _lock(self) -> asyncio.Lock:
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        return self._async_lock

    async def acquire(self) -> bool:
        task = asyncio.current_task()
        use = _Use(self.name, self.kind, task.get_name() if task else _thread_holder())
        try:
            await self._lock.acquire()
        except BaseException as error:
            use.failed(f"not acquired: {type(error).__name__}")
            raise
        use.acquired()
        self._use = use
        return True

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: Any) -> None:
        self.release()


class FileLock:
    """An exclusive advisory lock on ``path`` (created if missing), shared between processes.

    ``timeout`` (seconds) bounds the wait; ``None`` waits as long as it takes. The lock's name
    defaults to the file's name; the holder is ``pid <n>`` (plus the thread when it is not the
    main thread).
    """

    kind = "file"

    def __init__(self, path: PathLike, name: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.path = os.fspath(path)
        self.name = name or os.path.basename(self.path)
        self.timeout = timeout
        self._fd: Optional[int] = None
        self._use: Optional[_Use] = None

    def _holder(self) -> str:
        thread = threading.current_thread()
        base = f"pid {os.getpid()}"
        return base if thread is threading.main_thread() else f"{base} {thread.name}"

    def acquire(self) -> bool:
        import fcntl

        use = _Use(self.name, self.kind, self._holder())
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        try:
            if deadline is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                delay = 0.001
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            os.close(fd)
                            use.failed(f"not acquired within {self.timeout}s")
                            raise TimeoutError(
                                f"could not lock {self.path} within {self.timeout}s: another process holds it"
                            ) from None
                        time.sleep(delay)
                        delay = min(delay * 2, 0.05)
        except BaseException as error:
            if not isinstance(error, TimeoutError):
                os.close(fd)
                use.failed(f"not acquired: {type(error).__name__}")
            raise
        use.acquired()
        self._fd, self._use = fd, use
        return True

    def release(self) -> None:
        import fcntl

        fd, use = self._fd, self._use
        self._fd, self._use = None, None
        if fd is None:
            raise RuntimeError(f"release of {self.path}: the lock is not held")
        stamp = _Use.stamp()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        if use is not None:
            use.released(stamp)

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextmanager
def file_lock(path: PathLike, name: Optional[str] = None, timeout: Optional[float] = None) -> Iterator[FileLock]:
    """``with file_lock("tasks.json.lock"):`` — a traced :class:`FileLock` for one block."""
    lock = FileLock(path, name, timeout)
    with lock:
        yield lock


class _TracedLock(Lock):
    def __init__(self, lock: Any, name: str, kind: str) -> None:
        super().__init__(name, lock)
        self.kind = kind

    def acquire(self, *args: Any, **kwargs: Any) -> bool:  # type: ignore[override]
        return self._traced_acquire("not acquired", *args, **kwargs)

    def _holder(self) -> str:
        holder = _thread_holder()
        return f"pid {os.getpid()}" if holder == "MainThread" else f"pid {os.getpid()} {holder}"

    def locked(self) -> bool:
        probe = getattr(self._lock, "locked", None)
        return bool(probe()) if callable(probe) else self._use is not None


def traced_lock(lock: Any, name: str, kind: Optional[str] = None) -> Lock:
    """Wraps any lock with ``acquire()``/``release()`` so its uses are traced::

        jobs_lock = devtrace.traced_lock(multiprocessing.Lock(), "jobs")
    """
    kind_name = kind or f"{type(lock).__module__}.{type(lock).__qualname__}"
    return _TracedLock(lock, name, kind_name)
