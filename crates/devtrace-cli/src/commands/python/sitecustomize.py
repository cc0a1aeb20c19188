"""devtrace run --python-autotrace: loaded by every Python interpreter the command starts.

`devtrace run` writes this file into a temporary directory that it puts first on PYTHONPATH,
with DEVTRACE_PYTHON_AUTOTRACE naming the packages to trace. It sets up the devtrace helpers
(`devtrace.configure()` then `devtrace.autotrace(...)`), then runs the sitecustomize this one
hides, if there is one. When the devtrace package is not installed for this interpreter, it
says so on stderr and the program runs untraced. One line per interpreter goes to the report
file devtrace run reads afterwards.
"""

import os
import sys


def _report(line):
    path = os.environ.get("DEVTRACE_PYTHON_AUTOTRACE_REPORT")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as report:
            report.write(line + "\n")
    except OSError:
        pass


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


def _start():
    packages = [p.strip() for p in os.environ.get("DEVTRACE_PYTHON_AUTOTRACE", "").split(",") if p.strip()]
    if not packages:
        return
    try:
        import devtrace
    except ImportError as error:
        sys.stderr.write(
            "devtrace: --python-autotrace: the devtrace Python package is not importable by "
            f"{sys.executable} ({error}).\n"
            f"  Install it for this interpreter: {sys.executable} -m pip install <devtrace checkout>/sdk/python\n"
            "  The program runs without auto-tracing.\n"
        )
        _report(f"missing {os.getpid()} {sys.executable}")
        return
    try:
        devtrace.configure()
        devtrace.autotrace(*packages)
    except Exception as error:
        sys.stderr.write(f"devtrace: --python-autotrace: could not start auto-tracing: {error}\n")
        _report(f"failed {os.getpid()} {sys.executable}")
        return
    _report(f"ok {os.getpid()} {sys.executable}")


_chain_hidden_sitecustomize()
_start()
