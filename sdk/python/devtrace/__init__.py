"""devtrace: debugging helpers on top of the OpenTelemetry API.

OpenTelemetry gives spans and context propagation; these helpers add what debugging needs and
record it in the conventions the devtrace analysis engine reads (docs/conventions.md):

- :func:`configure` sets up the SDK to export to the local devtrace (standard ``OTEL_*``
  variables honoured), continuing the trace named by ``TRACEPARENT``. Under ``devtrace run``
  the environment is already set; calling it there is harmless.
- :func:`error_context` / :func:`capture_errors` record an escaping exception with the local
  variables of the failing frames (names, types, bounded and redacted reprs) and an optional
  state snapshot.
- :class:`Lock`, :class:`RLock`, :class:`AsyncLock`, :class:`FileLock` / :func:`file_lock`,
  :func:`traced_lock` record requested / acquired / released with wait and hold times and the
  holder.
- :func:`llm_call` / :func:`traced_llm` record LLM calls as GenAI spans (prompt and response
  bounded and redacted); the ``openai`` and ``anthropic`` clients are captured automatically
  when the application imports them.
- :func:`state_snapshot` records the state before and after an operation, and the diff.
- :func:`autotrace` traces a package's function calls above a duration threshold (natively on
  CPython 3.12+: :mod:`devtrace.recorder`).
- :func:`record` starts the flight recorder: the last seconds of every call, written into the
  trace when the program fails; :func:`record_calls` records chosen functions natively.
- :func:`redact` applies the server's redaction rules to a string.
"""

__version__ = "0.1.0"

from devtrace._config import configure, shutdown, tracer
from devtrace.autotrace import autotrace, stop_autotrace
from devtrace.errors import capture_errors, error_context, record_exception
from devtrace.llm import LLMCall, instrument_llm_clients, llm_call, traced_llm
from devtrace.locks import AsyncLock, FileLock, Lock, RLock, file_lock, traced_lock
from devtrace.recorder import native_status, record, record_calls, stop_recording
from devtrace.redact import redact
from devtrace.state import diff as state_diff
from devtrace.state import state_snapshot

__all__ = [
    "AsyncLock",
    "FileLock",
    "LLMCall",
    "Lock",
    "RLock",
    "autotrace",
    "capture_errors",
    "configure",
    "error_context",
    "file_lock",
    "instrument_llm_clients",
    "llm_call",
    "native_status",
    "record",
    "record_calls",
    "record_exception",
    "redact",
    "shutdown",
    "state_diff",
    "state_snapshot",
    "stop_autotrace",
    "stop_recording",
    "traced_llm",
    "traced_lock",
    "tracer",
]
