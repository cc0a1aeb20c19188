"""Bounded, redacted text for arbitrary values: reprs of local variables and JSON of states,
prompts and responses.

Strings are redacted *before* they are shortened, so a secret cut in half cannot slip past a
rule that needs the whole of it; the final text is cut to a maximum length with a marker saying
how much was left out.
"""

from __future__ import annotations

import json
import reprlib
from typing import Any, Tuple

from devtrace.redact import SECRET_NAME_MARKER, is_secret_name, redact

#: Default bound of one repr, in characters.
MAX_REPR_CHARS = 200
#: Default bound of a JSON document (state, prompt, response), in characters.
MAX_TEXT_CHARS = 4096


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with how much is missing."""
    if limit <= 0 or len(text) <= limit:
        return text
    keep = limit
    for _ in range(3):  # the note's length depends on the number it shows
        note = f"… (+{len(text) - keep} chars)"
        keep = max(limit - len(note), 1)
    return text[:keep] + f"… (+{len(text) - keep} chars)"


class _RedactingRepr(reprlib.Repr):
    """reprlib with every string redacted before it is shortened, and failing reprs survived."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.maxstring = max(limit, 16)
        self.maxother = max(limit, 16)
        self.maxlong = 60
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 12
        self.maxdict = 12
        self.maxlevel = 4

    def repr_str(self, x: str, level: int) -> str:
        return super().repr_str(redact(x), level)

    def repr_bytes(self, x: bytes, level: int) -> str:
        text = redact(repr(x[: self.maxstring * 2]))
        return text if len(x) <= self.maxstring * 2 else text + "…"

    def repr_dict(self, x: dict, level: int) -> str:
        if not any(isinstance(k, str) and is_secret_name(k) for k in x):
            return super().repr_dict(x, level)
        masked = {k: SECRET_NAME_MARKER if isinstance(k, str) and is_secret_name(k) and isinstance(v, (str, bytes)) else v for k, v in x.items()}
        return super().repr_dict(masked, level)

    def repr_instance(self, x: Any, level: int) -> str:
        try:
            text = repr(x)
        except Exception as error:  # a broken __repr__ must not break error capture
            return f"<{type(x).__qualname__} (repr failed: {type(error).__name__})>"
        return shorten(redact(text), self.maxother)


def type_name(value: Any) -> str:
    """``int``, ``dict``, ``pathlib.PosixPath``: the qualified name, without ``builtins``."""
    kind = type(value)
    module = getattr(kind, "__module__", "builtins")
    name = getattr(kind, "__qualname__", kind.__name__)
    return name if module in ("builtins", None) else f"{module}.{name}"


def bounded_repr(value: Any, limit: int = MAX_REPR_CHARS, name: str | None = None) -> Tuple[str, str]:
    """(type name, repr) of ``value``: redacted, at most ``limit`` characters. A string or bytes
    value bound to a secret-looking ``name`` is replaced whole."""
    kind = type_name(value)
    if name is not None and isinstance(value, (str, bytes)) and is_secret_name(name):
        return kind, SECRET_NAME_MARKER
    try:
        text = _RedactingRepr(limit).repr(value)
    except Exception as error:
        text = f"<{kind} (repr failed: {type(error).__name__})>"
    return kind, shorten(text, limit)


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > 32:
        return "…"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, dict):
        return {
            str(k): (SECRET_NAME_MARKER if is_secret_name(str(k)) and isinstance(v, (str, bytes)) else _jsonable(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            try:
                items = sorted(items)
            except TypeError:
                pass
        return [_jsonable(v, depth + 1) for v in items]
    if hasattr(value, "__dataclass_fields__"):
        return {f: _jsonable(getattr(value, f), depth + 1) for f in value.__dataclass_fields__}
    if hasattr(value, "model_dump"):  # pydantic models
        try:
            return _jsonable(value.model_dump(), depth + 1)
        except Exception:
            pass
    return bounded_repr(value)[1]


def to_plain(value: Any) -> Any:
    """A JSON-compatible copy of ``value`` (dicts, lists, dataclasses and pydantic models become
    JSON; anything else its bounded repr), with values under secret-looking keys masked."""
    return _jsonable(value)


def bounded_json(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    """``value`` as compact, key-sorted JSON: redacted, at most ``limit`` characters."""
    try:
        text = json.dumps(to_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = bounded_repr(value, limit)[1]
    return shorten(redact(text), limit)


def bounded_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """Redacted, then cut to ``limit`` characters."""
    return shorten(redact(text), limit)
