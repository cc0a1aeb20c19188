"""Locks whose waits the native recorder can see: while ``record_calls`` records,
``threading.Lock()`` and ``threading.RLock()`` called from a recorded module make
``devtrace._native.Lock`` / ``RLock`` (docs/python.md, "Causality"); called from anywhere else
(the standard library's own queues, events and conditions, other packages) they make
threading's own, at full speed.

``threading``'s locks are C objects: no ``sys.monitoring`` event says when one is released or
when an acquisition had to wait. The native locks (devtrace-pyrecorder's ``lock.rs``) wrap one
and write those records themselves, with no Python frame.

``isinstance`` keeps answering as without devtrace: on CPython 3.13+, where ``threading.Lock``
is a type, the stand-in is a class whose instances are threading's locks and the native ones;
on 3.12, where it is a function (``isinstance`` with it raises TypeError), the stand-in is a
function too. ``threading.RLock`` is a function on both.
"""

from __future__ import annotations

import _thread
import sys
import threading
from typing import Any, Optional, Sequence, Tuple

from devtrace._modules import module_name

_allocate_lock = _thread.allocate_lock
_real_rlock = threading.RLock
_LockType = _thread.LockType

_installed: Optional[Tuple[Any, Any]] = None
_modules: Tuple[str, ...] = ()
# devtrace._native's Lock and RLock (set by install: this module imports without the extension).
_NativeLock: Any = None
_NativeRLock: Any = None


def _called_from_recorded_module(depth: int) -> bool:
    """Whether the code `depth` frames up (1: the caller) is in one of the recorded modules (a
    package's sub-modules included; the script run as ``__main__`` by the name the recorder
    gives it, ``_modules.module_name``)."""
    name = module_name(sys._getframe(depth).f_globals) or ""
    return any(name == m or name.startswith(m + ".") for m in _modules)


def _make_lock(*args: Any, **kwargs: Any) -> Any:
    if not args and not kwargs and _called_from_recorded_module(2):
        return _NativeLock()
    return _allocate_lock(*args, **kwargs)


def _make_rlock(*args: Any, **kwargs: Any) -> Any:
    if _called_from_recorded_module(2):
        return _NativeRLock(*args, **kwargs)
    return _real_rlock(*args, **kwargs)


class _LockClass(type):
    """The metaclass of ``threading.Lock``'s stand-in on CPython 3.13+: calling it makes a
    lock (as ``_make_lock``), and threading's locks and the native ones are its instances."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs and _called_from_recorded_module(2):
            return _NativeLock()
        return _LockType(*args, **kwargs)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, (_LockType, _NativeLock))

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return issubclass(subclass, (_LockType, _NativeLock))


class _Lock(metaclass=_LockClass):
    """``threading.Lock`` while devtrace records (CPython 3.13+): see ``_LockClass``."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # As threading's own, which is not an acceptable base type.
        raise TypeError("type '_thread.lock' is not an acceptable base type")


def install(modules: Sequence[str], native: Any) -> None:
    """``threading.Lock()`` and ``threading.RLock()`` called from `modules` make recorded locks
    (`native`'s) from now on."""
    global _installed, _modules, _NativeLock, _NativeRLock
    _modules = tuple(modules)
    _NativeLock, _NativeRLock = native.Lock, native.RLock
    if _installed is not None:
        return
    _installed = (threading.Lock, threading.RLock)
    threading.Lock = _Lock if isinstance(threading.Lock, type) else _make_lock  # type: ignore[misc, assignment]
    threading.RLock = _make_rlock  # type: ignore[assignment]


def uninstall() -> None:
    """Back to ``threading``'s own locks (those made meanwhile stay native locks: they work the
    same, and record nothing once the recorder stops)."""
    global _installed
    if _installed is None:
        return
    lock, rlock = _installed
    _installed = None
    if threading.Lock in (_Lock, _make_lock):
        threading.Lock = lock  # type: ignore[misc]
    if threading.RLock is _make_rlock:
        threading.RLock = rlock  # type: ignore[assignment]
