"""Error context: when an exception escapes, record it with the local variables of the frames
it came through (names, types, bounded and redacted reprs) and, optionally, a snapshot of the
application's state.

The exception becomes an ``exception`` event on the span (OpenTelemetry's
``exception.type`` / ``.message`` / ``.stacktrace`` / ``.escaped``), extended with:

- ``exception.locals.<name>`` and ``exception.locals.<name>.type``: the innermost frame;
- ``exception.frame.<n>.locals.<name>`` (+ ``.type``): its callers, ``n`` = 1, 2, …;
- ``exception.frame.<n>.function`` / ``.file`` / ``.line`` for every recorded frame
  (``n`` = 0 is the innermost), and ``.omitted_locals`` when a bound was hit;
- ``devtrace.state.snapshot``: the state callback's result as JSON (bounded, redacted).

Frames in the standard library, in installed packages and in devtrace itself are skipped when
the traceback has frames of the application's own code. An exception passing through several
decorated functions is recorded once, by the innermost; the outer spans only get the error
status.
"""

from __future__ import annotations

import functools
import inspect
import linecache
import os
import sys
import sysconfig
import traceback
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Callable, Iterator, List, Optional, Tuple, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from devtrace import _names as names
from devtrace._config import parent_context, tracer
from devtrace._repr import MAX_REPR_CHARS, MAX_TEXT_CHARS, bounded_json, bounded_repr, bounded_text

__all__ = ["capture_errors", "error_context", "record_exception", "MAX_FRAMES", "MAX_LOCALS"]

#: Frames whose locals are recorded, innermost first.
MAX_FRAMES = 3
#: Locals recorded per frame (the event stays under OpenTelemetry's default limit of 128
#: attributes per event: 3 frames × 16 locals × 2 attributes + frame info).
MAX_LOCALS = 16
#: Characters of stack trace kept (the innermost frames are at the end and are kept).
MAX_STACKTRACE_CHARS = 8192

F = TypeVar("F", bound=Callable[..., Any])
StateCallback = Callable[[], Any]

_RECORDED = "__devtrace_recorded__"
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _library_dirs() -> Tuple[str, ...]:
    dirs = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            dirs.add(os.path.abspath(path))
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            dirs.add(os.path.abspath(path))
    return tuple(sorted(dirs))


_LIBRARY_DIRS = _library_dirs()


def _is_application(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR + os.sep):
        return False
    return not any(path.startswith(d + os.sep) for d in _LIBRARY_DIRS)


def _frames(tb: Optional[TracebackType]) -> List[Tuple[Any, int]]:
    """(frame, line) of each traceback entry, outermost first, devtrace's own frames left out."""
    out = []
    while tb is not None:
        if not os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
            out.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    return out


def exception_attributes(
    error: BaseException,
    *,
    state: Any = None,
    has_state: bool = False,
    max_frames: int = MAX_FRAMES,
    max_locals: int = MAX_LOCALS,
    repr_chars: int = MAX_REPR_CHARS,
    describe: Callable[..., Tuple[str, str]] = bounded_repr,
    message_of: Optional[Callable[[BaseException], str]] = None,
) -> dict:
    """The attributes of the ``exception`` event for ``error`` (see the module's docs). A
    local is shown by ``describe(value, repr_chars, name=name)`` → (type name, text): its
    bounded, redacted repr by default; the flight recorder passes a summary that runs none of
    the program's code. Its ``message_of`` (an exception's message made without calling its
    ``__str__``) replaces ``str()``, in the message and in the stack trace, which is then
    formatted from the traceback objects alone."""
    qualified = _type_name(error)
    if message_of is None:
        message, formatted = str(error), _format_traceback(error)
    else:
        message, formatted = message_of(error), _format_traceback_safely(error, message_of)
    stack = bounded_text(formatted, 0)
    if len(stack) > MAX_STACKTRACE_CHARS:
        stack = "…\n" + stack[-MAX_STACKTRACE_CHARS:]
    attributes: dict = {
        names.EXCEPTION_TYPE: qualified,
        names.EXCEPTION_MESSAGE: bounded_text(message, MAX_TEXT_CHARS),
        names.EXCEPTION_STACKTRACE: stack,
        names.EXCEPTION_ESCAPED: True,
    }
    frames = _frames(exception_field(error, "__traceback__"))
    chosen = [f for f in frames if _is_application(f[0].f_code.co_filename)] or frames
    for n, (frame, line) in enumerate(reversed(chosen[-max_frames:] if max_frames > 0 else [])):
        prefix = f"{names.EXCEPTION_FRAME_PREFIX}{n}."
        attributes[prefix + "function"] = frame.f_code.co_name
        attributes[prefix + "file"] = _display_path(frame.f_code.co_filename)
        attributes[prefix + "line"] = line
        local_prefix = names.EXCEPTION_LOCALS_PREFIX if n == 0 else prefix + "locals."
        variables = [(k, v) for k, v in frame.f_locals.items() if not (k.startswith("__") and k.endswith("__"))]
        for name, value in variables[:max_locals]:
            kind_name, text = describe(value, repr_chars, name=name)
            attributes[local_prefix + name] = text
            attributes[local_prefix + name + names.TYPE_SUFFIX] = kind_name
        if len(variables) > max_locals:
            attributes[prefix + "omitted_locals"] = len(variables) - max_locals
    if has_state:
        attributes[names.STATE_SNAPSHOT] = bounded_json(state, MAX_TEXT_CHARS)
    return attributes


def _type_name(error: BaseException) -> str:
    kind = type(error)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"


def exception_field(error: BaseException, name: str) -> Any:
    """``error.<name>`` (``__traceback__``, ``__cause__``, ``__context__``,
    ``__suppress_context__``) read through BaseException's own descriptor: from the C
    structure, never through a property or ``__getattribute__`` a subclass defines."""
    return BaseException.__dict__[name].__get__(error, BaseException)


#: Exceptions of a chain shown (the failure and what caused it, oldest first).
MAX_CHAIN = 8


def _format_traceback_safely(error: BaseException, message_of: Callable[[BaseException], str]) -> str:
    """The usual traceback text (chained causes first, devtrace's own frames left out), made
    from the traceback objects and ``message_of`` alone: no ``__str__``, ``__repr__``,
    ``__notes__`` or other attribute of the exception's class runs."""
    chain: List[Tuple[BaseException, str]] = []
    seen = set()
    current: Optional[BaseException] = error
    note = ""
    while current is not None and id(current) not in seen and len(chain) < MAX_CHAIN:
        seen.add(id(current))
        chain.append((current, note))
        cause = exception_field(current, "__cause__")
        context = exception_field(current, "__context__")
        if cause is not None:
            current, note = cause, "\nThe above exception was the direct cause of the following exception:\n\n"
        elif context is not None and not exception_field(current, "__suppress_context__"):
            current, note = context, "\nDuring handling of the above exception, another exception occurred:\n\n"
        else:
            current = None
    out = []
    own = _PACKAGE_DIR + os.sep
    for exception, note in reversed(chain):
        tb = exception_field(exception, "__traceback__")
        if tb is not None:
            out.append("Traceback (most recent call last):\n")
        while tb is not None:
            code, line = tb.tb_frame.f_code, tb.tb_lineno
            if not os.path.abspath(code.co_filename).startswith(own):
                out.append(f'  File "{code.co_filename}", line {line}, in {code.co_name}\n')
                source = linecache.getline(code.co_filename, line).strip()
                if source:
                    out.append(f"    {source}\n")
            tb = tb.tb_next
        message = message_of(exception)
        out.append(f"{_type_name(exception)}: {message}\n" if message else f"{_type_name(exception)}\n")
        out.append(note)
    return "".join(out)


def _format_traceback(error: BaseException) -> str:
    """The usual traceback text, without devtrace's own frames (the helper that caught it)."""
    try:
        formatted = traceback.TracebackException(type(error), error, error.__traceback__, compact=True)
    except TypeError:  # Python < 3.10 has no compact=
        formatted = traceback.TracebackException(type(error), error, error.__traceback__)
    own = _PACKAGE_DIR + os.sep
    formatted.stack = traceback.StackSummary.from_list(
        [f for f in formatted.stack if not os.path.abspath(f.filename).startswith(own)]
    )
    return "".join(formatted.format())


def _display_path(filename: str) -> str:
    try:
        relative = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if relative.startswith("..") else relative


def _take_state(state: Optional[StateCallback]) -> Tuple[Any, bool]:
    if state is None:
        return None, False
    try:
        return state(), True
    except Exception as error:  # the snapshot must never replace the real error
        return f"<state callback failed: {type(error).__name__}: {error}>", True


def record_exception(
    span: Span,
    error: BaseException,
    *,
    state: Optional[StateCallback] = None,
    max_frames: int = MAX_FRAMES,
    max_locals: int = MAX_LOCALS,
) -> None:
    """Records ``error`` on ``span`` with the locals of its frames (and ``state()`` when given),
    and sets the span's status to error. An exception already recorded by an inner helper only
    sets the status."""
    if not span.is_recording():
        return
    message = bounded_text(str(error), 512) or type(error).__name__
    span.set_status(Status(StatusCode.ERROR, message))
    if getattr(error, _RECORDED, False):
        return
    value, has_state = _take_state(state)
    span.add_event(
        names.EXCEPTION_EVENT,
        exception_attributes(error, state=value, has_state=has_state, max_frames=max_frames, max_locals=max_locals),
    )
    try:
        setattr(error, _RECORDED, True)
    except (AttributeError, TypeError):
        pass


@contextmanager
def error_context(
    name: Optional[str] = None,
    *,
    state: Optional[StateCallback] = None,
    attributes: Optional[dict] = None,
    max_frames: int = MAX_FRAMES,
    max_locals: int = MAX_LOCALS,
) -> Iterator[Span]:
    """Records an exception escaping the block, with locals and ``state()``, then re-raises it.

    With ``name``, the block is a span of that name; without, the exception is recorded on the
    current span (note that a span opened with the SDK's ``start_as_current_span`` also records
    the exception itself, without locals, unless opened with ``record_exception=False``).

    ``state`` is called only when an exception escapes; its result (any JSON-like value,
    dataclass or pydantic model) is stored as JSON, bounded and redacted.

    Example::

        with devtrace.error_context("plan.parse", state=lambda: store.snapshot()):
            plan = json.loads(reply)
    """
    if name is None:
        span = trace.get_current_span()
        try:
            yield span
        except BaseException as error:
            if not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                record_exception(span, error, state=state, max_frames=max_frames, max_locals=max_locals)
            raise
        return
    with tracer().start_as_current_span(
        name,
        context=parent_context(),
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as error:
            if not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                record_exception(span, error, state=state, max_frames=max_frames, max_locals=max_locals)
            raise


def capture_errors(
    func: Optional[F] = None,
    *,
    name: Optional[str] = None,
    state: Optional[StateCallback] = None,
    max_frames: int = MAX_FRAMES,
    max_locals: int = MAX_LOCALS,
) -> Any:
    """Decorator: the function is a span (named ``name``, default its qualified name) and an
    exception escaping it is recorded with locals and ``state()``. Works on plain and ``async``
    functions, with or without arguments::

        @devtrace.capture_errors
        def load(path): ...

        @devtrace.capture_errors(name="tasks.add", state=lambda: STORE.snapshot())
        async def add(title): ...
    """

    def decorate(fn: F) -> F:
        span_name = name or fn.__qualname__

        def context() -> Any:
            return error_context(span_name, state=state, max_frames=max_frames, max_locals=max_locals)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with context():
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with context():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
