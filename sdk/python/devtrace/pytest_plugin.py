"""The devtrace pytest plugin (registered through the ``pytest11`` entry point): when the flight
recorder runs (:func:`devtrace.record`, ``devtrace run --record``), a failing test writes the
window of its last calls into the trace, with the test's id and exception. It does nothing
otherwise, and imports nothing until a test fails."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not report.failed or call.excinfo is None:
        return
    from devtrace import recorder

    flight = recorder.current()
    if isinstance(flight, recorder.FlightRecorder) and not flight.stopped:
        flight.dump(f"test failed: {item.nodeid} ({report.when})", call.excinfo.value)
