"""Locks whose waits the native recorder can see: while ``record_calls`` records,
``threading.Lock()`` and ``threading.RLock()`` called from a recorded module make these
(docs/python.md, "Causality"); called from anywhere else (the standard library's own queues,
events and conditions, other packages) they make threading's own, at full speed.

``threading``'s locks are C objects: no ``sys.monitoring`` event says when one is released or
when an acquisition had to wait. These wrap one and add two Python functions the recorder
watches (by module and qualified name, see devtrace-pyrecorder's ``causality.rs``): ``_wait``,
called only when the lock was taken (its start is the wait's start, its return the
acquisition), and ``release``. A lock taken free never calls ``_wait``: no link, no record.
Everything else goes straight to the real lock.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Optional, Sequence, Tuple

_allocate_lock = threading._allocate_lock  # type: ignore[attr-defined]
_real_rlock: Callable[[], Any] = threading.RLock


class _Causal:
    """What both locks share: the fast path and everything that goes to the real lock. The
    watched functions (``_wait``, ``release``, ``__exit__``) are each class's own, so the
    recorder tells a ``Lock`` from an ``RLock``."""

    __slots__ = ("_lock", "__weakref__")
    _lock: Any

    def _wait(self, timeout: float) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        return self._wait(timeout)

    def __enter__(self) -> bool:
        if self._lock.acquire(False):
            return True
        return self._wait(-1)

    def _at_fork_reinit(self) -> None:
        self._lock._at_fork_reinit()

    def __repr__(self) -> str:
        return f"<devtrace causal lock around {self._lock!r}>"


class CausalLock(_Causal):
    """A ``threading.Lock`` (the real one inside) whose waits and releases are recorded."""

    __slots__ = ()

    def __init__(self) -> None:
        self._lock = _allocate_lock()

    def _wait(self, timeout: float) -> bool:
        return bool(self._lock.acquire(True, timeout))

    def release(self) -> None:
        self._lock.release()

    def __exit__(self, *exc: Any) -> None:
        # A release of its own (not a call of release()): one Python call less per `with`.
        self._lock.release()

    def locked(self) -> bool:
        return bool(self._lock.locked())

    def acquire_lock(self, blocking: bool = True, timeout: float = -1) -> bool:
        return self.acquire(blocking, timeout)

    def release_lock(self) -> None:
        self.release()

    def locked_lock(self) -> bool:
        return self.locked()


class CausalRLock(_Causal):
    """A ``threading.RLock`` (the real one inside) whose waits and releases are recorded; what
    ``threading.Condition`` uses of it goes to the real one."""

    __slots__ = ()

    def __init__(self) -> None:
        self._lock = _real_rlock()

    def _wait(self, timeout: float) -> bool:
        return bool(self._lock.acquire(True, timeout))

    def release(self) -> None:
        self._lock.release()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def _release_save(self) -> Any:
        return self._lock._release_save()

    def _acquire_restore(self, state: Any) -> None:
        self._lock._acquire_restore(state)

    def _is_owned(self) -> bool:
        return bool(self._lock._is_owned())

    def _recursion_count(self) -> int:
        return int(self._lock._recursion_count())


_installed: Optional[Tuple[Any, Any]] = None
_modules: Tuple[str, ...] = ()


def _called_from_recorded_module() -> bool:
    """Whether the code that called ``threading.Lock()`` / ``RLock()`` (two frames up) is in
    one of the recorded modules (a package's sub-modules included)."""
    name = sys._getframe(2).f_globals.get("__name__", "")
    return any(name == m or name.startswith(m + ".") for m in _modules)


def _make_lock() -> Any:
    if _called_from_recorded_module():
        return CausalLock()
    return _allocate_lock()


def _make_rlock(*args: Any, **kwargs: Any) -> Any:
    if _called_from_recorded_module():
        return CausalRLock()
    return _real_rlock(*args, **kwargs)


def install(modules: Sequence[str]) -> None:
    """``threading.Lock()`` and ``threading.RLock()`` called from `modules` make recorded locks
    from now on."""
    global _installed, _modules
    _modules = tuple(modules)
    if _installed is not None:
        return
    _installed = (threading.Lock, threading.RLock)
    threading.Lock = _make_lock  # type: ignore[misc, assignment]
    threading.RLock = _make_rlock  # type: ignore[assignment]


def uninstall() -> None:
    """Back to ``threading``'s own locks (those made meanwhile stay recorded locks: they work
    the same, and record nothing once the recorder stops)."""
    global _installed
    if _installed is None:
        return
    lock, rlock = _installed
    _installed = None
    if threading.Lock is _make_lock:
        threading.Lock = lock  # type: ignore[misc]
    if threading.RLock is _make_rlock:
        threading.RLock = rlock  # type: ignore[assignment]
