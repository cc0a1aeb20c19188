"""devtrace run --python-autotrace / --record / --plan: what every Python interpreter the
command starts does, started by devtrace's sitecustomize or, under `opentelemetry-instrument`
(whose sitecustomize hides devtrace's), by OpenTelemetry's `opentelemetry_pre_instrument`
entry point once the program's tracer provider is set up.

With DEVTRACE_PYTHON_AUTOTRACE naming the packages to trace, it sets up the devtrace helpers
(`devtrace.configure()` then `devtrace.autotrace(...)`). When the devtrace package is not
installed for this interpreter, it says so on stderr and the program runs untraced. One line
per interpreter goes to the report file devtrace run reads afterwards.

With DEVTRACE_RECORD=flight it starts the flight recorder (devtrace.record(), its ring file in
DEVTRACE_RECORD_DIR named by the process id); with DEVTRACE_RECORD_PLAN, the native recorder
on exactly the functions of that plan file. It starts once an interpreter, however it is
reached.
"""

import os
import sys

_started = False


def _report(line):
    path = os.environ.get("DEVTRACE_PYTHON_AUTOTRACE_REPORT")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as report:
            report.write(line + "\n")
    except OSError:
        pass


def start():
    """Starts what the run asked for, once an interpreter."""
    global _started
    if _started:
        return
    _started = True
    packages = [p.strip() for p in os.environ.get("DEVTRACE_PYTHON_AUTOTRACE", "").split(",") if p.strip()]
    flight = os.environ.get("DEVTRACE_RECORD") == "flight"
    plan_path = os.environ.get("DEVTRACE_RECORD_PLAN")
    causality = os.environ.get("DEVTRACE_RECORD_CAUSALITY") != "0"
    if not packages and not flight and not plan_path:
        return
    flag = "--plan" if plan_path else "--record" if flight else "--python-autotrace"
    try:
        import devtrace
    except ImportError as error:
        without = "auto-tracing" if flag == "--python-autotrace" else "recording"
        sys.stderr.write(
            f"devtrace: {flag}: the devtrace Python package is not importable by "
            f"{sys.executable} ({error}).\n"
            f"  Install it for this interpreter: {sys.executable} -m pip install <devtrace checkout>/sdk/python\n"
            f"  The program runs without {without}.\n"
        )
        _report(f"missing {os.getpid()} {sys.executable}")
        return
    try:
        devtrace.configure()
        if plan_path:
            import json

            with open(plan_path, encoding="utf-8") as f:
                plan = json.load(f)
            devtrace.record_calls(
                plan=[tuple(entry) for entry in plan["functions"]],
                threshold_ms=float(plan.get("threshold_ms", 1.0)),
                plan_id=plan.get("id"),
                causality=causality,
            )
        elif packages:
            devtrace.autotrace(*packages)
        if flight and not plan_path:
            ok, why = devtrace.native_status()
            if not ok:
                sys.stderr.write(f"devtrace: --record: no flight recorder in {sys.executable}: {why}\n")
                _report(f"failed {os.getpid()} {sys.executable}")
                return
            if not packages:
                directory = os.environ.get("DEVTRACE_RECORD_DIR") or None
                devtrace.record(
                    seconds=float(os.environ.get("DEVTRACE_RECORD_SECONDS", "10")),
                    max_mib=int(os.environ.get("DEVTRACE_RECORD_MIB", "64")),
                    path=os.path.join(directory, f"{os.getpid()}.ring") if directory else None,
                    causality=causality,
                )
    except Exception as error:
        sys.stderr.write(_not_started(error, flag))
        _report(f"failed {os.getpid()} {sys.executable}")
        return
    _report(f"ok {os.getpid()} {sys.executable}")


def _not_started(error, flag):
    """What to tell the user when recording could not start: for a ring with no room
    (devtrace.recorder.NoRoomForRing), the option of `devtrace run` that sizes it."""
    reason = getattr(error, "reason", None)
    if not (isinstance(error, OSError) and reason):
        return f"devtrace: could not start recording in {sys.executable}: {error}\n"
    smaller = "a smaller window (--record-mib N), or " if flag == "--record" else ""
    return (
        f"devtrace: {flag}: could not start recording in {sys.executable}: {reason}.\n"
        f"  Give {smaller}TMPDIR on a filesystem with room. The program runs without recording.\n"
    )

