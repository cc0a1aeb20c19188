"""Auto-tracing keeps the calls above the threshold, attaches what it keeps to the nearest kept
caller, and leaves code outside the package alone."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import time

import pytest

import devtrace
from devtrace.autotrace import DEFAULT_THRESHOLD_MS

BACKENDS = (
    ["setprofile"]
    + (["monitoring"] if hasattr(sys, "monitoring") else [])
    + (["native"] if devtrace.native_status()[0] else [])
)

APP = '''
import time

def run():
    prepare()          # 20 ms
    for _ in range(50):
        quick()        # 0 ms each: no span
    slow(0.03)         # 30 ms
    return "done"

def prepare():
    slow(0.02)

def quick():
    return 1

def slow(seconds):
    time.sleep(seconds)

class Store:
    def save(self):
        time.sleep(0.015)

def handler(tracer):
    with tracer.start_as_current_span("manual.step"):
        pass           # quick, but a span of its own inside: the call must be kept
    return helper()

def helper():
    return 2
'''


@pytest.fixture
def app(tmp_path, monkeypatch):
    package = tmp_path / "tracedapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text(textwrap.dedent(APP))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("tracedapp")]:
        del sys.modules[name]
    module = importlib.import_module("tracedapp.core")
    yield module
    devtrace.stop_autotrace()


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_calls_above_the_threshold_are_kept(spans, app, backend):
    devtrace.autotrace("tracedapp", threshold_ms=10, backend=backend)
    with devtrace.tracer().start_as_current_span("command"):
        assert app.run() == "done"
        app.Store().save()
    devtrace.stop_autotrace()
    finished = spans()
    by_id = {s.context.span_id: s for s in finished}

    def parent_name(span):
        return by_id[span.parent.span_id].name if span.parent and span.parent.span_id in by_id else None

    names = sorted((s.name, parent_name(s)) for s in finished)
    assert names == [
        ("command", None),
        ("tracedapp.core.Store.save", "command"),
        ("tracedapp.core.prepare", "tracedapp.core.run"),
        ("tracedapp.core.run", "command"),
        ("tracedapp.core.slow", "tracedapp.core.prepare"),
        ("tracedapp.core.slow", "tracedapp.core.run"),
    ]  # and none of the 50 quick() calls
    run = next(s for s in finished if s.name == "tracedapp.core.run")
    assert run.attributes["code.function.name"] == "run"
    assert run.attributes["code.file.path"].endswith("tracedapp/core.py")
    assert run.attributes["code.line.number"] == 4
    assert run.attributes["devtrace.autotrace"] is True
    slow = sorted((s for s in finished if s.name == "tracedapp.core.slow"), key=lambda s: s.start_time)
    durations_ms = [(s.end_time - s.start_time) / 1e6 for s in slow]
    # Each lasted at least its sleep (a loaded machine may add to it).
    assert 20 <= durations_ms[0] < 220 and 30 <= durations_ms[1] < 230, durations_ms
    assert run.start_time <= slow[0].start_time and slow[1].end_time <= run.end_time


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_zero_threshold_keeps_every_call_and_stop_ends_it(spans, app, backend):
    devtrace.autotrace("tracedapp.core", threshold_ms=0, backend=backend)
    app.quick()
    devtrace.stop_autotrace()
    app.quick()
    assert [s.name for s in spans()] == ["tracedapp.core.quick"]


def test_other_packages_are_not_traced(spans, app):
    devtrace.autotrace("tracedap", threshold_ms=0)  # a prefix of the name is not the package
    app.run()
    devtrace.stop_autotrace()
    assert spans() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_spans_started_inside_a_watched_call_are_its_children(spans, app, backend):
    devtrace.autotrace("tracedapp", threshold_ms=10, backend=backend)
    assert app.handler(devtrace.tracer()) == 2
    devtrace.stop_autotrace()
    finished = spans()
    assert sorted(s.name for s in finished) == ["manual.step", "tracedapp.core.handler"]
    manual, handler = sorted(finished, key=lambda s: s.name)
    assert manual.parent.span_id == handler.context.span_id
    assert manual.context.trace_id == handler.context.trace_id
    assert handler.parent is None  # a new trace: nothing was current


def test_the_default_threshold_and_bad_arguments():
    assert DEFAULT_THRESHOLD_MS == 1.0
    with pytest.raises(ValueError, match="needs at least one package"):
        devtrace.autotrace()
    with pytest.raises(ValueError, match="'my-app' is not a module name"):
        devtrace.autotrace("my-app")
    with pytest.raises(ValueError, match="threshold_ms must be ≥ 0"):
        devtrace.autotrace("x", threshold_ms=-1)


@pytest.mark.parametrize("named", ["tool", "__main__"])
def test_the_script_run_as_main_is_traced_by_its_name_whether_given_by_it_or_as_main(tmp_path, named):
    # "__main__" used to match nothing: the script's functions are recorded under its name.
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent('''
        import time
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        exporter = InMemorySpanExporter()
        provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        import devtrace
        devtrace.autotrace(NAMED, threshold_ms=5)
        def main():
            time.sleep(0.01)
        main()
        devtrace.stop_autotrace()
        print([s.name for s in exporter.get_finished_spans()])
    ''').replace("NAMED", repr(named)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['tool.main']\n"
