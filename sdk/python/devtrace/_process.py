"""Processes started while ``record_calls`` or the flight recorder records: the child's trace
under the parent's call.

A forked child (``os.fork``, ``multiprocessing``'s fork start method) records into a ring of
its own (``recorder.py``); here is what it nests under: the recorded call that forked, kept as
a span (:func:`spawning_call`), its first spans linked to it (kind ``process``). Under the
flight recorder the call gets its span ids now, and keeps them when a dump writes it.

A spawned Python child (``subprocess.Popen`` and so ``subprocess.run``; ``multiprocessing``'s
spawn and forkserver start methods, which start ``python -c …`` through
``_posixsubprocess.fork_exec``) gets ``TRACEPARENT`` naming the spawning call, and a
``TRACESTATE`` entry ``devtrace=spawn.<how>`` saying it was spawned; a child that records
(under ``devtrace run --plan/--record``, or calling devtrace itself) continues that trace, and
its top-level spans carry the ``process`` link (:func:`spawned_by`). An environment the caller
passed gets only these two variables added, and none when it names a ``TRACEPARENT`` of its
own. No user code runs: the wrappers read the environment and the recorder's own state.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Dict, Optional, Tuple

from devtrace import _names as names

# How a child was started: the TRACESTATE entry's value, and the link's devtrace.link.object.
SPAWNED_BY = {
    "spawn.subprocess": "subprocess.Popen",
    "spawn.multiprocessing": "multiprocessing.Process",
    "spawn.fork_exec": "_posixsubprocess.fork_exec",
}
_STATE_KEY = "devtrace"

# The recorded call that forked: (trace_id, span_id, function, time, object), set in the
# parent just before the fork, read by the child (its copy of this module).
fork_cause: Optional[Tuple[int, int, str, int, str]] = None

# The running recorder's way to name the call this thread is in (see install()).
_open_call: Optional[Callable[[], Optional[Tuple[int, int, str]]]] = None
_installed: Optional[Tuple[Any, Any]] = None


def spawning_call() -> Optional[Tuple[int, int, str]]:
    """The recorded call this thread is in, kept as a span: ``(trace_id, span_id, function)``;
    None when no recorder is recording calls here."""
    if _open_call is None:
        return None
    try:
        return _open_call()
    except RuntimeError:  # the recorder stopped meanwhile
        return None


def _forked_by() -> str:
    """``multiprocessing.Process`` when multiprocessing is forking (its modules on the stack),
    else ``os.fork``."""
    frame = sys._getframe(2)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("multiprocessing."):
            return "multiprocessing.Process"
        frame = frame.f_back  # type: ignore[assignment]
    return "os.fork"


def before_fork(time_ns: int) -> None:
    """``os.register_at_fork``'s before hook (the parent, the forking thread): remembers the
    recorded call that forks."""
    global fork_cause
    call = spawning_call()
    fork_cause = (call[0], call[1], call[2], time_ns, _forked_by()) if call is not None else None


def after_fork_in_parent() -> None:
    global fork_cause
    fork_cause = None


def process_link(trace_id: int, span_id: int, obj: str, function: str = "", time_ns: int = 0) -> Any:
    """The ``process`` link from a child's top-level span to the call that started the child."""
    from opentelemetry.trace import Link, SpanContext, TraceFlags

    # wait_ns 0: the child did not wait for the call, it follows it ("follows …" in show).
    attributes: Dict[str, Any] = {names.LINK_KIND: "process", names.LINK_OBJECT: obj, names.LINK_WAIT_NS: 0}
    if function:
        attributes[names.LINK_CAUSE_FUNCTION] = function
    if time_ns:
        attributes[names.LINK_CAUSE_TIME] = time_ns
    context = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return Link(context, attributes)


def spawned_by() -> Optional[str]:
    """How this process was spawned by a recording parent (``subprocess.Popen`` …), from its
    ``TRACESTATE``; None when it was not."""
    for entry in os.environ.get("TRACESTATE", "").split(","):
        key, _, value = entry.strip().partition("=")
        if key == _STATE_KEY and value in SPAWNED_BY:
            return SPAWNED_BY[value]
    return None


def _trace_headers(how: str, inherited_state: str) -> Optional[Tuple[str, str]]:
    """``(TRACEPARENT, TRACESTATE)`` for a child spawned now from the recorded call this
    thread is in (None outside one): the inherited state's other vendors' entries kept."""
    call = spawning_call()
    if call is None:
        return None
    trace_id, span_id, _ = call
    others = [e.strip() for e in inherited_state.split(",") if e.strip() and not e.strip().startswith(_STATE_KEY + "=")]
    return f"00-{trace_id:032x}-{span_id:016x}-01", ",".join([f"{_STATE_KEY}={how}"] + others)


def _popen_environment(env: Any) -> Any:
    """The environment for a child ``Popen`` starts: the caller's (or, when none was given,
    this process's) with TRACEPARENT and TRACESTATE naming the spawning call."""
    if env is None:
        headers = _trace_headers("spawn.subprocess", os.environ.get("TRACESTATE", ""))
        if headers is None:
            return None
        return {**os.environ, "TRACEPARENT": headers[0], "TRACESTATE": headers[1]}
    keys = {k.decode() if isinstance(k, bytes) else k for k in env}
    if "TRACEPARENT" in keys:
        return env  # the caller chose the trace
    headers = _trace_headers("spawn.subprocess", "")
    if headers is None:
        return env
    bytes_keys = bool(env) and all(isinstance(k, bytes) for k in env)
    added: Dict[Any, Any] = {"TRACEPARENT": headers[0]}
    if "TRACESTATE" not in keys:
        added["TRACESTATE"] = headers[1]
    if bytes_keys:
        added = {k.encode(): v.encode() for k, v in added.items()}
    return {**env, **added}


def _fork_exec_environment(env_list: Any, how: str) -> Any:
    """The same for ``_posixsubprocess.fork_exec``'s list of ``b"KEY=VALUE"`` (None: this
    process's environment)."""
    if env_list is None:
        headers = _trace_headers(how, os.environ.get("TRACESTATE", ""))
        if headers is None:
            return None
        inherited = [k + b"=" + v for k, v in os.environb.items() if k not in (b"TRACEPARENT", b"TRACESTATE")]
        return inherited + [b"TRACEPARENT=" + headers[0].encode(), b"TRACESTATE=" + headers[1].encode()]
    keys = {bytes(e).partition(b"=")[0] for e in env_list}
    if b"TRACEPARENT" in keys:
        return env_list
    headers = _trace_headers(how, "")
    if headers is None:
        return env_list
    added = [b"TRACEPARENT=" + headers[0].encode()]
    if b"TRACESTATE" not in keys:
        added.append(b"TRACESTATE=" + headers[1].encode())
    return list(env_list) + added


def _wrap_execute_child(execute_child: Callable[..., Any]) -> Callable[..., Any]:
    def _execute_child(self: Any, args: Any, executable: Any, preexec_fn: Any, close_fds: Any, pass_fds: Any, cwd: Any, env: Any, *rest: Any) -> Any:
        return execute_child(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, _popen_environment(env), *rest)

    _execute_child.__wrapped__ = execute_child  # type: ignore[attr-defined]
    return _execute_child


def _wrap_fork_exec(fork_exec: Callable[..., Any]) -> Callable[..., Any]:
    def fork_exec_with_trace(*args: Any) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        how = "spawn.multiprocessing" if str(caller).startswith("multiprocessing") else "spawn.fork_exec"
        if len(args) > 5:
            args = args[:5] + (_fork_exec_environment(args[5], how),) + args[6:]
        return fork_exec(*args)

    return fork_exec_with_trace


def install(open_call: Callable[[], Optional[Tuple[int, int, str]]]) -> None:
    """Children spawned (and forked) from recorded calls from now on continue the trace under
    them; ``open_call`` names the call this thread is in (:func:`spawning_call`)."""
    global _open_call, _installed
    _open_call = open_call
    if _installed is not None:
        return
    import subprocess

    try:
        import _posixsubprocess
    except ImportError:  # not POSIX: Popen only
        _posixsubprocess = None  # type: ignore[assignment]
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
    fork_exec = getattr(_posixsubprocess, "fork_exec", None)
    _installed = (execute_child, fork_exec)
    subprocess.Popen._execute_child = _wrap_execute_child(execute_child)  # type: ignore[attr-defined]
    if fork_exec is not None:
        _posixsubprocess.fork_exec = _wrap_fork_exec(fork_exec)


def uninstall() -> None:
    """Spawning as before (children spawned meanwhile keep their trace)."""
    global _installed, _open_call
    _open_call = None
    if _installed is None:
        return
    import subprocess

    execute_child, fork_exec = _installed
    _installed = None
    subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]
    if fork_exec is not None:
        import _posixsubprocess

        _posixsubprocess.fork_exec = fork_exec
