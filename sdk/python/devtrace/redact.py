"""Redaction of secrets and personal data, by the rules the devtrace server applies.

``redaction_rules.json`` is a copy of the server's rules file (the Rust ingest path loads the
same file; a Rust test keeps the two byte-identical). Rules apply in file order to every string,
with ASCII semantics as on the server; a match becomes ``[REDACTED:<rule name>]``, or only its
``secret`` group does when the pattern has one (so ``https://user:[REDACTED:url_password]@host``
keeps the scheme and user); a match that is already a marker is left alone.

On top of the rules, values bound to names that say they are secret (``password``, ``api_key``,
``token``…) are replaced whole when the helpers record local variables: the value of such a
variable need not look like a key to be one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Pattern

__all__ = ["Rule", "redact", "rules", "add_rules", "is_secret_name", "SECRET_NAME_MARKER"]

#: What replaces the value of a variable or key whose name says it is a secret.
SECRET_NAME_MARKER = "[REDACTED:secret_name]"

_SECRET_NAME = re.compile(
    r"(?i)(?:^|_)(?:password|passwd|passphrase|secret|token|api_?key|access_?key|private_?key"
    r"|credentials?|auth|authorization|cookie|session_?id)(?:$|_)"
)


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    pattern: Pattern[str]

    def apply(self, text: str) -> str:
        marker = f"[REDACTED:{self.name}]"
        has_secret = "secret" in self.pattern.groupindex
        markers = [m.span() for m in _MARKER.finditer(text)]

        def replace(match: "re.Match[str]") -> str:
            group = "secret" if has_secret else 0
            start, end = match.span(group)
            value = match.group(0)
            # Already a marker (a token an earlier, more specific rule replaced, inside a URL or
            # an assignment): keep the more specific marker, as the server does.
            if start < 0 or start == end or _MARKER.fullmatch(match.group(group)):
                return value
            # Part of a marker, or a marker and more (`https://[REDACTED:x]@host` read as
            # user:password): redacting it would change an already redacted text again.
            if any(start < m_end and m_start < end for m_start, m_end in markers):
                return value
            whole_start = match.start(0)
            return value[: start - whole_start] + marker + value[end - whole_start :]

        return self.pattern.sub(replace, text)


#: ``[REDACTED:<name>]`` exactly, as rules write it.
_MARKER = re.compile(r"\[REDACTED:[A-Za-z0-9_.\-]+\]")


def _load(raw: str, origin: str) -> List[Rule]:
    try:
        document = json.loads(raw)
        loaded = []
        for entry in document["rules"]:
            # re.ASCII: \w, \b, \s and (?i) mean what they mean on the server (ASCII only).
            loaded.append(
                Rule(entry["name"], entry.get("description", ""), re.compile(entry["pattern"], re.ASCII))
            )
        return loaded
    except (ValueError, KeyError, TypeError, re.error) as error:
        raise ValueError(
            f"{origin}: not a valid redaction rules file ({error}); expected "
            '{"version": 1, "rules": [{"name": ..., "pattern": ...}]}'
        ) from error


# Beside this file (package data when installed), so the module also loads on its own: the
# server's test suite runs it with a bare interpreter to check both sides redact alike.
_RULES: List[Rule] = _load(
    Path(__file__).with_name("redaction_rules.json").read_text(encoding="utf-8"),
    "devtrace/redaction_rules.json",
)
_enabled = True


def rules() -> List[Rule]:
    """The rules in force, in the order they apply."""
    return list(_RULES)


def add_rules(extra: Iterable[dict] | str) -> None:
    """Adds rules after the built-in ones: a list of ``{"name", "pattern"}`` mappings, or the
    path of a JSON file in the rules file's format."""
    if isinstance(extra, str):
        with open(extra, encoding="utf-8") as f:
            _RULES.extend(_load(f.read(), extra))
    else:
        _RULES.extend(_load(json.dumps({"version": 1, "rules": list(extra)}), "add_rules()"))


def set_enabled(enabled: bool) -> None:
    """Turns redaction off (an explicit opt-out, for local debugging of non-sensitive data)."""
    global _enabled
    _enabled = enabled


def redact(text: str) -> str:
    """``text`` with every rule applied."""
    if not _enabled or not text:
        return text
    for rule in _RULES:
        text = rule.apply(text)
    return text


def is_secret_name(name: Optional[str]) -> bool:
    """Whether a variable or key name says its value is a secret (``api_key``, ``db_password``)."""
    return bool(_enabled and name and _SECRET_NAME.search(name))
