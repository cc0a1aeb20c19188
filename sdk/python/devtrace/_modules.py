"""What a module is called in devtrace's recordings: its ``__name__``, except the script run as
``__main__``, named as it would be imported (the native recorder's ``module_of_globals`` follows
the same rule). So ``"__main__"``, given where a module name is asked for, means that script."""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, Optional, Sequence, Tuple


def module_name(globals_: Dict[str, Any]) -> Optional[str]:
    """The module's name; for the script run as ``__main__``, its real name (``python -m
    pkg.cli`` → ``pkg.cli``; ``python app.py`` → ``app``)."""
    name = globals_.get("__name__")
    if name != "__main__":
        return name
    spec = globals_.get("__spec__")
    if spec is not None and getattr(spec, "name", None):
        return spec.name
    path = globals_.get("__file__")
    if path:
        return os.path.splitext(os.path.basename(path))[0]
    return name


def main_named(module: str) -> str:
    """``module``, or for ``"__main__"`` the name the running script is recorded under."""
    main = sys.modules.get("__main__")
    if module != "__main__" or main is None:
        return module
    return module_name(vars(main)) or module


def mains_named(modules: Sequence[str]) -> Tuple[str, ...]:
    """:func:`main_named` of each (a list of packages to record)."""
    return tuple(main_named(m) for m in modules)
