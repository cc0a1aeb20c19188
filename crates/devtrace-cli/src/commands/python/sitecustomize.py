"""devtrace run --python-autotrace / --record / --plan: loaded by every Python interpreter the
command starts.

`devtrace run` writes this file into a temporary directory that it puts first on PYTHONPATH,
beside `devtrace_run_hook.py`, which does the work (see its doc). This file runs the
sitecustomize it hides, if there is one, then the hook — except in `opentelemetry-instrument`'s
own interpreter, which only sets up the program's and replaces itself with it: there the
program's interpreter imports OpenTelemetry's sitecustomize, which hides this one, and starts
the hook through its `opentelemetry_pre_instrument` entry point (declared in the
`devtrace_run_hook-0.dist-info` beside this file).
"""

import os
import sys


def _chain_hidden_sitecustomize():
    here = os.path.dirname(os.path.abspath(__file__))
    saved_path = list(sys.path)
    ours = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        try:
            import sitecustomize  # noqa: F401  (the next one on the path, if any)
        except ImportError:
            pass
    finally:
        sys.path[:] = saved_path
        if ours is not None:
            sys.modules["sitecustomize"] = ours


def _launches_the_program():
    """Whether this interpreter runs `opentelemetry-instrument`, which execs the program."""
    return bool(sys.argv) and os.path.basename(sys.argv[0] or "") == "opentelemetry-instrument"


_chain_hidden_sitecustomize()
if not _launches_the_program():
    import devtrace_run_hook

    devtrace_run_hook.start()
