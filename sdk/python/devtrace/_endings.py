"""Recordings that survive how programs end: the hooks that let the native recorder hand its
spans to a tracer provider's span processors before they flush or close — the program's own
``provider.shutdown()`` or ``force_flush()``, the SDK's exit handler (registered before or after
devtrace's), ``sys.exit``, an unhandled exception, SIGTERM — and the one line on stderr when
some still could not be delivered. What to do at each ending is the recorder's (recorder.py);
this module only owns when it runs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any, Callable, Optional

#: Called with (the pipeline, closing) before a pipeline's span processors flush or shut down.
_before: Optional[Callable[[Any, bool], None]] = None
# Set while `_before` runs in a thread: a flush it makes of another provider goes straight on.
_running = threading.local()
_said = False


def hook_pipelines(before: Callable[[Any, bool], None]) -> None:
    """Makes every tracer provider's span pipeline (the SDK's multi span processors: each
    provider's ``_active_span_processor``, made before or after this call) run
    ``before(pipeline, closing)`` before its span processors flush (``closing`` False) or shut
    down (True). The pipeline, not the provider: the SDK's exit handler is the provider's own
    ``shutdown`` bound when the provider was made, and it reaches its processors through it."""
    global _before
    _before = before
    from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, SynchronousMultiSpanProcessor

    for kind in (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor):
        if "_devtrace_unhooked" not in vars(kind):
            _hook(kind)


def _hook(kind: Any) -> None:
    shutdown, force_flush = kind.shutdown, kind.force_flush

    def hooked_shutdown(self: Any) -> None:
        _run_before(self, True)
        shutdown(self)

    def hooked_force_flush(self: Any, timeout_millis: int = 30000) -> bool:
        _run_before(self, False)
        return bool(force_flush(self, timeout_millis))

    kind.shutdown, kind.force_flush = hooked_shutdown, hooked_force_flush
    kind._devtrace_unhooked = (shutdown, force_flush)


def _run_before(pipeline: Any, closing: bool) -> None:
    if _before is None or getattr(_running, "now", False):
        return
    _running.now = True
    try:
        _before(pipeline, closing)
    except Exception as error:  # the program's own shutdown goes on whatever happened here
        say_undelivered("the recorded calls not handed over yet", f"handing them over failed: {error}")
    finally:
        _running.now = False


def deliver_at_sigterm(deliver: Callable[[], None]) -> Optional[Callable[[int, Any], None]]:
    """When SIGTERM would kill the process outright (its default disposition) and this is the
    main thread: a handler that runs ``deliver()``, then lets the signal end the process as it
    would have (killed by SIGTERM). Returns the handler (None when not installed: the program
    handles SIGTERM itself, and its handler's ``sys.exit`` or ``provider.shutdown()`` delivers)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return None

    def handler(signum: int, frame: Any) -> None:
        try:
            deliver()
        finally:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, handler)
    return handler


def release_sigterm(handler: Optional[Callable[[int, Any], None]]) -> None:
    """Puts SIGTERM back to its default disposition if ``handler`` is still the one installed."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is handler:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def say_undelivered(what: str, why: str) -> None:
    """Says once per process, on stderr, what of the recording could not be delivered and why."""
    global _said
    if _said:
        return
    _said = True
    sys.stderr.write(f"devtrace: {what} could not be delivered to the tracer provider: {why}\n")
