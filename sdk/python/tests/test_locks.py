"""Lock wrappers under contention: one span per use, the devtrace.lock.* convention, and the
second waiter's wait equal to the first holder's hold."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import pytest
from opentelemetry.trace import StatusCode

import devtrace

HOLD_S = 0.2


def lock_spans(finished, name):
    return sorted((s for s in finished if s.name == f"lock {name}"), key=lambda s: s.start_time)


def check_convention(span, kind):
    a = span.attributes
    assert a["devtrace.lock.kind"] == kind
    events = {e.name: e.timestamp for e in span.events}
    assert list(events) == ["devtrace.lock.requested", "devtrace.lock.acquired", "devtrace.lock.released"]
    assert events["devtrace.lock.requested"] == span.start_time
    assert events["devtrace.lock.released"] == span.end_time
    # The attributes (monotonic clock) agree with the events (wall clock) to within 2 ms.
    wait = events["devtrace.lock.acquired"] - events["devtrace.lock.requested"]
    hold = events["devtrace.lock.released"] - events["devtrace.lock.acquired"]
    assert abs(a["devtrace.lock.wait_ns"] - wait) < 2_000_000
    assert abs(a["devtrace.lock.hold_ns"] - hold) < 2_000_000


def contend(lock, holder_work):
    """Two threads ask for `lock` at the same moment; each holds it for HOLD_S."""
    barrier = threading.Barrier(2)

    def worker():
        barrier.wait()
        with lock:
            holder_work()

    threads = [threading.Thread(target=worker, name=f"worker-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize("make", [lambda: devtrace.Lock("jobs"), lambda: devtrace.RLock("jobs")], ids=["Lock", "RLock"])
def test_the_second_waiter_waits_as_long_as_the_first_holds(spans, make):
    lock = make()
    contend(lock, lambda: time.sleep(HOLD_S))
    first, second = lock_spans(spans(), "jobs")
    for span in (first, second):
        check_convention(span, lock.kind)
    assert {first.attributes["devtrace.lock.holder"], second.attributes["devtrace.lock.holder"]} == {"worker-0", "worker-1"}
    assert first.attributes["devtrace.lock.wait_ns"] < 5_000_000
    assert abs(first.attributes["devtrace.lock.hold_ns"] - HOLD_S * 1e9) < 20_000_000
    assert_second_waited_for_the_first(first, second)


def event_time(span, name):
    return next(e.timestamp for e in span.events if e.name == name)


def assert_second_waited_for_the_first(first, second):
    # The second got the lock when the first released it...
    handover = event_time(second, "devtrace.lock.acquired") - event_time(first, "devtrace.lock.released")
    assert 0 <= handover < 20_000_000, handover  # a waiting thread's wake-up, on a busy machine
    # ...and, having asked at (nearly) the same moment, waited about as long as the first held.
    assert abs(second.attributes["devtrace.lock.wait_ns"] - first.attributes["devtrace.lock.hold_ns"]) < 20_000_000


def test_work_under_the_lock_nests_inside_its_span(spans):
    outer, inner = devtrace.Lock("a"), devtrace.Lock("b")
    with outer:
        with inner:
            with devtrace.tracer().start_as_current_span("write"):
                pass
    finished = spans()
    a, b = lock_spans(finished, "a")[0], lock_spans(finished, "b")[0]
    write = next(s for s in finished if s.name == "write")
    assert b.parent.span_id == a.context.span_id
    assert write.parent.span_id == b.context.span_id


def test_rlock_reentry_records_one_use(spans):
    lock = devtrace.RLock("tree")
    with lock:
        with lock:
            assert lock.locked()
    assert not lock.locked()
    assert len(lock_spans(spans(), "tree")) == 1


def test_a_timed_out_request_is_an_error_without_acquisition(spans):
    lock = devtrace.Lock("busy")
    lock.acquire()
    result = []
    thread = threading.Thread(target=lambda: result.append(lock.acquire(timeout=0.05)))
    thread.start()
    thread.join()
    lock.release()
    assert result == [False]
    failed = [s for s in lock_spans(spans(), "busy") if s.status.status_code == StatusCode.ERROR][0]
    assert [e.name for e in failed.events] == ["devtrace.lock.requested"]
    assert failed.attributes["devtrace.lock.hold_ns"] == 0
    assert failed.attributes["devtrace.lock.wait_ns"] >= 50_000_000
    assert failed.status.description == "not acquired (timeout)"


def test_asyncio_lock_holders_are_tasks(spans):
    lock = devtrace.AsyncLock("cache")

    async def use():
        async with lock:
            await asyncio.sleep(HOLD_S)

    async def main():
        await asyncio.gather(asyncio.create_task(use(), name="fill-1"), asyncio.create_task(use(), name="fill-2"))

    asyncio.run(main())
    first, second = lock_spans(spans(), "cache")
    check_convention(first, "asyncio.Lock")
    check_convention(second, "asyncio.Lock")
    assert [first.attributes["devtrace.lock.holder"], second.attributes["devtrace.lock.holder"]] == ["fill-1", "fill-2"]
    assert_second_waited_for_the_first(first, second)


def test_file_lock_between_processes(spans, tmp_path):
    path = tmp_path / "state.lock"
    ready = tmp_path / "ready"
    # Another process holds the file lock for HOLD_S; this one asks while it is held.
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            f"open({str(ready)!r}, 'w').close()\n"
            f"time.sleep({HOLD_S})\n"
        )]
    )
    while not ready.exists():
        time.sleep(0.001)
    started = time.monotonic()
    with devtrace.file_lock(path, name="state.json"):
        waited = time.monotonic() - started
    assert holder.wait(timeout=10) == 0
    (span,) = lock_spans(spans(), "state.json")
    check_convention(span, "file")
    assert span.attributes["devtrace.lock.holder"] == f"pid {os.getpid()}"
    assert abs(span.attributes["devtrace.lock.wait_ns"] - waited * 1e9) < 5_000_000
    assert span.attributes["devtrace.lock.wait_ns"] > 100_000_000


def test_file_lock_timeout_says_what_happened(spans, tmp_path):
    path = tmp_path / "held.lock"
    with devtrace.file_lock(path):
        other = devtrace.FileLock(path, timeout=0.05)
        with pytest.raises(TimeoutError, match="could not lock .*held.lock within 0.05s"):
            other.acquire()
    failed = [s for s in lock_spans(spans(), "held.lock") if s.status.status_code == StatusCode.ERROR]
    assert len(failed) == 1


def test_traced_lock_wraps_any_lock(spans):
    import multiprocessing

    lock = devtrace.traced_lock(multiprocessing.Lock(), "jobs")
    with lock:
        pass
    (span,) = lock_spans(spans(), "jobs")
    check_convention(span, "multiprocessing.synchronize.Lock")
