"""Error context: the exception event with the locals of the failing frames, bounded and
redacted, the state snapshot, and one record per exception."""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry.trace import StatusCode

import devtrace
from conftest import named


def parse_plan(reply):
    lines = reply.splitlines()
    step_count = len(lines)
    return json.loads(reply)


@devtrace.capture_errors(name="plan.apply", state=lambda: {"tasks": [{"id": 1, "status": "todo"}], "api_token": "abc"})
def apply_plan(task_id, reply):
    db_password = "hunter2"
    note = "contact ops@example.com with key ghp_" + "A" * 36
    plan = parse_plan(reply)
    return plan


def exception_event(span):
    events = [e for e in span.events if e.name == "exception"]
    assert len(events) == 1, [e.name for e in span.events]
    return dict(events[0].attributes)


def test_the_exception_is_recorded_with_the_locals_of_the_failing_frames(spans):
    with pytest.raises(json.JSONDecodeError):
        apply_plan(7, "not json\nat all")
    span = named(spans(), "plan.apply")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "Expecting value: line 1 column 1 (char 0)"
    attrs = exception_event(span)
    assert attrs["exception.type"] == "json.decoder.JSONDecodeError"
    assert attrs["exception.message"] == "Expecting value: line 1 column 1 (char 0)"
    assert attrs["exception.escaped"] is True
    assert attrs["exception.stacktrace"].startswith("Traceback (most recent call last):\n")
    assert "in parse_plan" in attrs["exception.stacktrace"]

    # Frame 0 is the innermost frame of this file (json's own frames are library code).
    assert attrs["exception.frame.0.function"] == "parse_plan"
    assert attrs["exception.frame.0.file"].endswith("tests/test_errors.py")
    assert attrs["exception.frame.0.line"] == 19
    assert attrs["exception.locals.reply"] == "'not json\\nat all'"
    assert attrs["exception.locals.reply.type"] == "str"
    assert attrs["exception.locals.lines"] == "['not json', 'at all']"
    assert attrs["exception.locals.lines.type"] == "list"
    assert attrs["exception.locals.step_count"] == "2"
    assert attrs["exception.locals.step_count.type"] == "int"

    # Frame 1: the decorated function, with its secrets redacted.
    assert attrs["exception.frame.1.function"] == "apply_plan"
    assert attrs["exception.frame.1.locals.task_id"] == "7"
    assert attrs["exception.frame.1.locals.db_password"] == "[REDACTED:secret_name]"
    assert attrs["exception.frame.1.locals.note"] == (
        "'contact [REDACTED:email] with key [REDACTED:github_token]'"
    )
    # The traceback starts where the helper caught it: the caller of apply_plan is not in it.
    assert not any(k.startswith("exception.frame.2.") for k in attrs)

    # The state callback's result, as redacted JSON.
    assert json.loads(attrs["devtrace.state.snapshot"]) == {
        "api_token": "[REDACTED:secret_name]",
        "tasks": [{"id": 1, "status": "todo"}],
    }


def test_an_exception_through_nested_helpers_is_recorded_once(spans):
    @devtrace.capture_errors
    def inner():
        raise ValueError("bad plan")

    @devtrace.capture_errors
    def outer():
        inner()

    with pytest.raises(ValueError):
        outer()
    finished = spans()
    inner_span = next(s for s in finished if s.name.endswith("inner"))
    outer_span = next(s for s in finished if s.name.endswith("outer"))
    assert inner_span.parent.span_id == outer_span.context.span_id
    assert len([e for e in inner_span.events if e.name == "exception"]) == 1
    # The outer span carries the error status only: devtrace sees a propagation.
    assert outer_span.status.status_code == StatusCode.ERROR
    assert outer_span.status.description == "bad plan"
    assert [e.name for e in outer_span.events] == []


def test_error_context_records_on_the_current_span_or_its_own(spans):
    tracer = devtrace.tracer()
    with tracer.start_as_current_span("outer", record_exception=False) as outer:
        with pytest.raises(KeyError):
            with devtrace.error_context(state=lambda: ["snapshot"]):
                mapping = {"a": 1}
                mapping["b"]
    attrs = exception_event(named(spans(), "outer"))
    assert attrs["exception.type"] == "KeyError"
    assert attrs["exception.locals.mapping"] == "{'a': 1}"
    assert attrs["devtrace.state.snapshot"] == '["snapshot"]'

    with pytest.raises(ZeroDivisionError):
        with devtrace.error_context("divide"):
            numerator = 3
            numerator / 0
    span = named(spans(), "divide")
    assert exception_event(span)["exception.locals.numerator"] == "3"


def test_a_failing_state_callback_does_not_replace_the_error(spans):
    def broken_state():
        raise RuntimeError("state unavailable")

    with pytest.raises(ValueError, match="real error"):
        with devtrace.error_context("op", state=broken_state):
            raise ValueError("real error")
    attrs = exception_event(named(spans(), "op"))
    assert attrs["exception.message"] == "real error"
    assert attrs["devtrace.state.snapshot"] == '"<state callback failed: RuntimeError: state unavailable>"'


def test_async_functions_are_wrapped_too(spans):
    @devtrace.capture_errors(name="fetch")
    async def fetch(url):
        await asyncio.sleep(0)
        raise ConnectionError(f"cannot reach {url}")

    with pytest.raises(ConnectionError):
        asyncio.run(fetch("https://user:pw12345@example.com/"))
    attrs = exception_event(named(spans(), "fetch"))
    assert attrs["exception.message"] == "cannot reach https://user:[REDACTED:url_password]@example.com/"
    assert attrs["exception.locals.url"] == "'https://user:[REDACTED:url_password]@example.com/'"


def test_locals_are_bounded_in_number(spans):
    @devtrace.capture_errors(name="many", max_locals=3)
    def many():
        a, b, c, d, e = 1, 2, 3, 4, 5
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        many()
    attrs = exception_event(named(spans(), "many"))
    assert [k for k in attrs if k.startswith("exception.locals.") and not k.endswith(".type")] == [
        "exception.locals.a",
        "exception.locals.b",
        "exception.locals.c",
    ]
    assert attrs["exception.frame.0.omitted_locals"] == 2
