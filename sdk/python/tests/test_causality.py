"""Happens-before links the native recorder makes between threads (docs/python.md,
"Causality"): for each primitive, a two-thread program recorded with record_calls; the exported
spans (the SDK's in-memory exporter) carry the link on the waiting call's span, pointing at the
causing call's span, with its kind, object type, causing function and wait. On CPython 3.12+
(scripts/test runs this file in .venv-native-3.12 and -3.13)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import importlib
import pickle
import queue
import signal
import sys
import textwrap
import threading
import time
import weakref

import pytest

import devtrace
from devtrace import recorder

from conftest import named

NATIVE, WHY_NOT = devtrace.native_status()
pytestmark = pytest.mark.skipif(not NATIVE, reason=f"native recorder not available here: {WHY_NOT}")

APP = '''
import asyncio
import json
import os
import queue
import subprocess
import concurrent.futures
import threading
import time

PAUSE = 0.03


class Touchy:
    """An item whose __repr__, __eq__ and __hash__ fail: the recorder must never call them."""

    def __repr__(self):
        raise AssertionError("__repr__ ran")

    def __eq__(self, other):
        raise AssertionError("__eq__ ran")

    def __hash__(self):
        raise AssertionError("__hash__ ran")


def in_thread(target, *args):
    t = threading.Thread(target=target, args=args, name="other")
    t.start()
    return t


def produce(q, item):
    time.sleep(PAUSE)
    q.put(item)


def consume(q):
    return q.get()


def queue_pair(q, item, producer=produce):
    t = in_thread(producer, q, item)
    got = consume(q)
    t.join()
    return got


def set_later(event):
    time.sleep(PAUSE)
    event.set()


def produce_then_hold(q, item, release):
    time.sleep(PAUSE)
    q.put(item)
    release.wait(5)


def wait_for(event):
    return event.wait(5)


def event_pair(event):
    t = in_thread(set_later, event)
    wait_for(event)
    t.join()


def release_later(sem):
    time.sleep(PAUSE)
    sem.release()


def acquire_from(sem):
    return sem.acquire(timeout=5)


def semaphore_pair(sem):
    t = in_thread(release_later, sem)
    acquire_from(sem)
    t.join()


def notify_later(cond, box):
    time.sleep(PAUSE)
    with cond:
        box.append(1)
        cond.notify()


def wait_notified(cond, box):
    with cond:
        while not box:
            cond.wait(5)


def condition_pair(cond):
    box = []
    t = in_thread(notify_later, cond, box)
    wait_notified(cond, box)
    t.join()


def child_work():
    time.sleep(PAUSE)


def spawn_and_join():
    t = threading.Thread(target=child_work, name="child")
    t.start()
    t.join()


def job():
    time.sleep(PAUSE)
    return 7


def submit_job(pool):
    time.sleep(0.002)
    return pool.submit(job)


def await_result(future):
    return future.result()


def futures_pair():
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = submit_job(pool)
        return await_result(future)


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def to_thread_handler():
    return await asyncio.to_thread(job)


async def busy_steps():
    for _ in range(30):
        spin(0.002)
        await asyncio.sleep(0)


def make_item(n):
    time.sleep(0.002)
    return ("item", n)


def handle_item(item):
    time.sleep(0.002)
    return item[1]


async def kept_step():
    spin(0.005)


async def get_what_another_put(feeder):
    """A kept step first; then this task gathers a get with `feeder`, a coroutine of code that
    is not recorded, which puts the item."""
    q = asyncio.Queue()
    await kept_step()
    got, _ = await asyncio.gather(aconsume(q), feeder(q))
    return got


async def to_thread_beside_busy_steps():
    got, _ = await asyncio.gather(to_thread_handler(), busy_steps())
    return got


async def aproduce(q, item):
    await asyncio.sleep(PAUSE)
    time.sleep(0.002)
    await q.put(item)


async def aconsume(q):
    return await q.get()


async def asyncio_pair(item):
    q = asyncio.Queue()
    producer = asyncio.ensure_future(aproduce(q, item))
    got = await aconsume(q)
    await producer
    return got


def barrier_party(b, delay):
    time.sleep(delay)
    b.wait(5)


def barrier_pair():
    b = threading.Barrier(2)
    t = in_thread(barrier_party, b, PAUSE)
    barrier_party(b, 0)
    t.join()


async def abarrier_party(b, delay):
    await asyncio.sleep(delay)
    await b.wait()


async def abarrier_pair():
    b = asyncio.Barrier(2)
    await asyncio.gather(abarrier_party(b, 0), abarrier_party(b, PAUSE))


async def afetch(sem, i):
    async with sem:
        await asyncio.sleep(0.001 * (i % 3))
        return i


async def aworker(q, out):
    while True:
        out.append(await q.get())


async def aservice(n):
    """A service of short steps only (none near the 1 ms threshold): n fetches, at most 2 at a
    time, their results handed to a worker through a queue."""
    sem, q, out = asyncio.Semaphore(2), asyncio.Queue(), []
    worker = asyncio.ensure_future(aworker(q, out))
    for result in await asyncio.gather(*(afetch(sem, i) for i in range(n))):
        await q.put(result)
        await asyncio.sleep(0)
    while len(out) < n:
        await asyncio.sleep(0)
    worker.cancel()
    return out


def hold(lock, held):
    with lock:
        held.set()
        time.sleep(PAUSE)


def take(lock):
    with lock:
        pass


def lock_pair(lock):
    held = threading.Event()
    t = in_thread(hold, lock, held)
    held.wait(5)
    take(lock)
    t.join()


def take_free(lock):
    with lock:
        time.sleep(0.002)


def new_locks():
    return threading.Lock(), threading.RLock()


def rlock_pair():
    lock = threading.RLock()
    held = threading.Event()
    t = in_thread(hold, lock, held)
    held.wait(5)
    take(lock)
    t.join()


def take_with_timeout(lock, timeout):
    return lock.acquire(True, timeout)


def hold_until(lock, held, done):
    with lock:
        held.set()
        done.wait(5)


def timed_out_pair(lock):
    held, done = threading.Event(), threading.Event()
    t = in_thread(hold_until, lock, held, done)
    held.wait(5)
    got = take_with_timeout(lock, 0.02)
    done.set()
    t.join()
    return got


def set_events(event, n):
    for _ in range(n):
        event.set()


def acquire_and_release(sem, n):
    for _ in range(n):
        with sem:
            pass


def wait_set_events(event, n):
    event.set()
    for _ in range(n):
        event.wait()


def produce_later(q, item):
    time.sleep(PAUSE / 2)
    q.put(item)


def take_ready(q):
    time.sleep(0.002)
    return q.get()


def timed_out_event_wait():
    return threading.Event().wait(0.01)


def timed_out_get():
    try:
        return queue.Queue().get(timeout=0.01)
    except queue.Empty:
        return None


def timed_out_condition_wait():
    cond = threading.Condition()
    with cond:
        return cond.wait(0.01)


def get_ready_after_a_timed_out_wait(q, item, timed_out_wait):
    """A wait that timed out (no effect), then, after the other thread put the item, a get that
    does not wait."""
    producer = in_thread(produce_later, q, item)
    timed_out_wait()
    time.sleep(PAUSE)
    got = take_ready(q)
    producer.join()
    return got


def wake_then_put(q, item):
    """Wakes the waiting get with the queue still empty (it waits again), then puts."""
    time.sleep(PAUSE)
    with q.not_empty:
        q.not_empty.notify()
    time.sleep(PAUSE)
    q.put(item)


def set_now(event):
    time.sleep(0.002)
    event.set()


def wait_ready(event):
    time.sleep(0.002)
    return event.wait(5)


def wait_for_set_event(event):
    in_thread(set_now, event).join()
    return wait_ready(event)


def put_and_get(q, n):
    for i in range(n):
        q.put(i)
        q.get()


def lock_and_release(lock, n):
    for _ in range(n):
        with lock:
            pass


def condition_over_rlock():
    """A Condition over a recorded RLock: a waiter notified by another thread."""
    cond = threading.Condition(threading.RLock())
    box = []
    t = in_thread(notify_later, cond, box)
    with cond:
        while not box:
            assert cond.wait(5)
    t.join()
    return box


# asyncio's locks: the cause runs in a step of its own (after a sleep, kept by its 2 ms).
async def ahold(lock, held):
    async with lock:
        held.set()
        await asyncio.sleep(PAUSE)
        time.sleep(0.002)


async def atake(lock):
    async with lock:
        pass


async def ahold_briefly(lock, held):
    async with lock:
        held.set()
        await asyncio.sleep(PAUSE)  # released in a step of a few µs, under the threshold


async def abrief_pair_of(lock):
    await alock_pair_of(lock, hold=ahold_briefly)


async def abrief_lock_pair():
    await abrief_pair_of(asyncio.Lock())


async def abrief_semaphore_pair():
    await abrief_pair_of(asyncio.Semaphore(1))


async def alock_pair_of(lock, hold=ahold):
    held = asyncio.Event()
    holder = asyncio.ensure_future(hold(lock, held))
    while not held.is_set():
        await asyncio.sleep(0)
    await atake(lock)
    await holder


async def acancelled_pair_of(lock):
    held = asyncio.Event()
    holder = asyncio.ensure_future(ahold(lock, held))
    while not held.is_set():
        await asyncio.sleep(0)
    quitter = asyncio.ensure_future(atake(lock))
    await asyncio.sleep(0.005)
    quitter.cancel()
    try:
        await quitter
    except asyncio.CancelledError:
        pass
    await atake(lock)
    await holder


async def alock_pair():
    await alock_pair_of(asyncio.Lock())


async def afree_then_pair():
    """Uncontended acquisitions and releases first, whose returns the recorder switches off
    (they never link), then a wait: its returns, other instructions, still link."""
    lock = asyncio.Lock()
    for _ in range(3):
        async with lock:
            pass
    await alock_pair()


async def acancelled_pair():
    """A waiter cancelled while the lock is held, then another that gets it."""
    await acancelled_pair_of(asyncio.Lock())


async def atake_free(make="Lock"):
    lock = getattr(asyncio, make)()
    await atake(lock)
    async with lock:
        time.sleep(0.002)


async def aset_later(event):
    await asyncio.sleep(PAUSE)
    time.sleep(0.002)
    event.set()


async def await_event(event):
    return await event.wait()


async def aevent_pair():
    event = asyncio.Event()
    setter = asyncio.ensure_future(aset_later(event))
    await await_event(event)
    await setter


async def anotify_later(cond, box):
    await asyncio.sleep(PAUSE)
    time.sleep(0.002)
    async with cond:
        box.append(1)
        cond.notify()


async def await_notified(cond, box):
    async with cond:
        while not box:
            await cond.wait()


def make_work_item(process, future):
    return process._WorkItem(future, len, ((),), {})


async def acondition_pair():
    cond = asyncio.Condition()
    box = []
    notifier = asyncio.ensure_future(anotify_later(cond, box))
    await await_notified(cond, box)
    await notifier


async def asemaphore_pair():
    await alock_pair_of(asyncio.Semaphore(1))


async def abounded_semaphore_pair():
    await alock_pair_of(asyncio.BoundedSemaphore(1))


async def asemaphore_cancelled_pair():
    await acancelled_pair_of(asyncio.Semaphore(1))


async def arelease_twice(sem, box):
    await asyncio.sleep(PAUSE)
    time.sleep(0.002)
    sem.release()  # wakes the waiter
    box.append(time.time_ns())
    time.sleep(0.002)
    sem.release()  # before the waiter ran: finds its future done, wakes no one


async def asemaphore_released_twice(box):
    sem = asyncio.Semaphore(2)
    await sem.acquire()
    await sem.acquire()
    releaser = asyncio.ensure_future(arelease_twice(sem, box))
    await atake(sem)
    await releaser
'''


@pytest.fixture
def app(tmp_path, monkeypatch):
    package = tmp_path / "causeapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "core.py").write_text(textwrap.dedent(APP))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("causeapp")]:
        del sys.modules[name]
    yield importlib.import_module("causeapp.core")
    recorder.stop_recording()


def record():
    return recorder.record_calls("causeapp", path=None, threshold_ms=1)


def links_of(span, kind=None):
    return [link for link in span.links if kind is None or link.attributes["devtrace.link.kind"] == kind]


def one_link(span, kind):
    found = links_of(span, kind)
    assert len(found) == 1, f"{span.name}: expected one {kind!r} link, got {[dict(link.attributes) for link in span.links]}"
    return found[0]


def assert_points_at(link, cause, function, obj, waited_ns=None, after_end=False):
    """`after_end`: the cause is the causing call's end (a thread's run or a future's job
    finished), so it comes after that call's span ends."""
    assert link.context.span_id == cause.context.span_id, f"the link points at {link.context.span_id:x}, not {cause.name}"
    assert link.context.trace_id == cause.context.trace_id
    attrs = link.attributes
    assert attrs["devtrace.link.cause.function"] == function
    assert attrs["devtrace.link.object"] == obj
    when = attrs["devtrace.link.cause.time_unix_nano"]
    if after_end:
        assert cause.end_time <= when
    else:
        assert cause.start_time <= when <= cause.end_time
    if waited_ns is not None:
        assert attrs["devtrace.link.wait_ns"] >= waited_ns


@pytest.mark.parametrize("make", [queue.Queue, queue.LifoQueue, queue.PriorityQueue])
def test_a_queue_get_links_to_the_put_of_its_item(spans, app, make):
    item = (1, "x") if make is queue.PriorityQueue else app.Touchy()
    record()
    got = app.queue_pair(make(), item)
    recorder.stop_recording()
    assert got is item
    all_spans = spans()
    consume, produce = named(all_spans, "causeapp.core.consume"), named(all_spans, "causeapp.core.produce")
    # The consumer waited for the producer's 30 ms sleep.
    assert_points_at(one_link(consume, "queue"), produce, "causeapp.core.produce", "queue.Queue", waited_ns=10_000_000)


def waited_for(consumer, link):
    """How long `consumer` (a span) ran before the cause of `link` came, nanoseconds: what its
    link's wait is when it waited from its start."""
    return link.attributes["devtrace.link.cause.time_unix_nano"] - consumer.start_time


@pytest.mark.parametrize("producer", ["produce", "wake_then_put"])
def test_a_queue_get_that_blocked_reports_its_whole_wait(spans, app, producer):
    # produce: the get waits through the producer's 30 ms sleep; wake_then_put: woken once
    # after 30 ms with the queue still empty, it waits again, the item put 30 ms later: its
    # wait began at its first (about 60 ms, not 30).
    record()
    item = app.Touchy()
    assert app.queue_pair(queue.Queue(), item, getattr(app, producer)) is item
    recorder.stop_recording()
    all_spans = spans()
    consume = named(all_spans, "causeapp.core.consume")
    link = one_link(consume, "queue")
    wait_ns, most = link.attributes["devtrace.link.wait_ns"], waited_for(consume, link)
    # The get's wait began when it found the queue empty, right after consume started.
    assert most - 10_000_000 <= wait_ns <= most, (wait_ns, most)
    assert wait_ns >= (50_000_000 if producer == "wake_then_put" else 20_000_000)


def assert_follows_without_a_wait(all_spans, consumer, cause, kind, obj):
    """The one `kind` link of function `consumer`'s span points at `cause`'s, with no wait."""
    link = one_link(named(all_spans, f"causeapp.core.{consumer}"), kind)
    assert_points_at(link, named(all_spans, f"causeapp.core.{cause}"), f"causeapp.core.{cause}", obj)
    assert link.attributes["devtrace.link.wait_ns"] == 0


@pytest.mark.parametrize("timed_out_wait", ["timed_out_event_wait", "timed_out_get", "timed_out_condition_wait"])
def test_a_queue_get_that_did_not_block_reports_no_wait_even_after_a_wait_that_timed_out(spans, app, timed_out_wait):
    # A get begins a wait only when it has to (in its Condition.wait); a wait that ended without
    # its effect before it (timed out) must not lend it its start.
    record()
    item = app.Touchy()
    assert app.get_ready_after_a_timed_out_wait(queue.Queue(), item, getattr(app, timed_out_wait)) is item
    recorder.stop_recording()
    assert_follows_without_a_wait(spans(), "take_ready", "produce_later", "queue", "queue.Queue")


def test_an_event_wait_that_found_the_event_set_links_to_the_set_without_a_wait(spans, app):
    record()
    assert app.wait_for_set_event(threading.Event()) is True
    recorder.stop_recording()
    assert_follows_without_a_wait(spans(), "wait_ready", "set_now", "event", "threading.Event")


def test_nothing_of_a_queued_objects_repr_eq_or_hash_runs(spans, app):
    record()
    items = [app.Touchy() for _ in range(3)]
    q = queue.Queue()
    for item in items:
        q.put(item)
    got = [app.consume(q) for _ in items]
    recorder.stop_recording()
    assert all(a is b for a, b in zip(got, items))


def test_an_event_wait_links_to_the_set(spans, app):
    record()
    app.event_pair(threading.Event())
    recorder.stop_recording()
    all_spans = spans()
    waiter, setter = named(all_spans, "causeapp.core.wait_for"), named(all_spans, "causeapp.core.set_later")
    assert_points_at(one_link(waiter, "event"), setter, "causeapp.core.set_later", "threading.Event", waited_ns=10_000_000)


@pytest.mark.parametrize("make", [lambda: threading.Semaphore(0), lambda: threading.BoundedSemaphore(1)])
def test_a_semaphore_acquire_that_waited_links_to_the_release_not_to_the_condition_inside(spans, app, make):
    sem = make()
    if isinstance(sem, threading.BoundedSemaphore):
        sem.acquire()  # taken before recording: the acquire below has to wait
    record()
    app.semaphore_pair(sem)
    recorder.stop_recording()
    all_spans = spans()
    waiter, releaser = named(all_spans, "causeapp.core.acquire_from"), named(all_spans, "causeapp.core.release_later")
    assert [dict(link.attributes)["devtrace.link.kind"] for link in waiter.links] == ["semaphore"]
    link = one_link(waiter, "semaphore")
    assert_points_at(link, releaser, "causeapp.core.release_later", "threading.Semaphore", waited_ns=10_000_000)


def test_a_semaphore_taken_without_waiting_gets_no_link(spans, app):
    record()
    sem = threading.Semaphore(1)
    app.take_free(sem)
    app.take_free(sem)  # after the first one's release, which it did not wait for
    recorder.stop_recording()
    assert len([s for s in spans() if s.name == "causeapp.core.take_free"]) == 2
    for span in spans():
        assert not links_of(span, "semaphore"), (span.name, [dict(link.attributes) for link in span.links])


def test_a_condition_wait_links_to_the_notify(spans, app):
    record()
    app.condition_pair(threading.Condition())
    recorder.stop_recording()
    all_spans = spans()
    waiter, notifier = named(all_spans, "causeapp.core.wait_notified"), named(all_spans, "causeapp.core.notify_later")
    assert_points_at(one_link(waiter, "condition"), notifier, "causeapp.core.notify_later", "threading.Condition", waited_ns=10_000_000)


def test_a_threads_run_links_to_its_start_and_the_join_to_its_end(spans, app):
    record()
    app.spawn_and_join()
    recorder.stop_recording()
    all_spans = spans()
    parent, child = named(all_spans, "causeapp.core.spawn_and_join"), named(all_spans, "causeapp.core.child_work")
    assert_points_at(one_link(child, "thread.start"), parent, "causeapp.core.spawn_and_join", "threading.Thread")
    assert_points_at(one_link(parent, "thread.join"), child, "causeapp.core.child_work", "threading.Thread", waited_ns=10_000_000, after_end=True)


def test_a_future_runs_after_its_submit_and_its_result_links_to_the_run(spans, app):
    record()
    assert app.futures_pair() == 7
    recorder.stop_recording()
    all_spans = spans()
    submit, job, waiter = (named(all_spans, f"causeapp.core.{n}") for n in ("submit_job", "job", "await_result"))
    assert_points_at(one_link(job, "future"), submit, "causeapp.core.submit_job", "concurrent.futures.Future")
    assert_points_at(one_link(waiter, "future"), job, "causeapp.core.job", "concurrent.futures.Future", waited_ns=10_000_000, after_end=True)


def test_a_job_a_task_hands_to_a_thread_links_to_the_step_and_no_other_step_takes_its_result(spans, app):
    record()
    assert asyncio.run(app.to_thread_beside_busy_steps()) == 7
    recorder.stop_recording()
    all_spans = spans()
    job = named(all_spans, "causeapp.core.job")
    # The step that submitted is short; it is kept, as the job's cause.
    handler = [s for s in all_spans if s.name == "causeapp.core.to_thread_handler"]
    link = one_link(job, "future")
    assert link.context.span_id in {s.context.span_id for s in handler}, [s.name for s in all_spans]
    assert link.attributes["devtrace.link.cause.function"] == "causeapp.core.to_thread_handler"
    # asyncio copies the job's result into the task's future in its own callback, in no
    # recorded call: the busy task's next step did not wait for the job.
    takers = [s.name for s in all_spans if links_of(s, "future") and s is not job]
    assert takers == [], takers


def test_loops_that_are_not_recorded_link_the_handler_to_the_call_that_made_the_item(spans, app):
    """Threads whose loops are a library's (not recorded): one makes an item with a recorded
    call, then puts it; the other gets it, then hands it to a recorded call. The put is the
    maker's (the thread's last kept call), the get goes on the handler (its next one)."""
    q = queue.Queue()

    def produce_loop():
        for n in range(3):
            q.put(app.make_item(n))

    record()
    t = app.in_thread(produce_loop)
    handled = [app.handle_item(q.get()) for _ in range(3)]
    t.join()
    recorder.stop_recording()
    assert handled == [0, 1, 2]
    all_spans = spans()
    makers = {s.context.span_id for s in all_spans if s.name == "causeapp.core.make_item"}
    handlers = [s for s in all_spans if s.name == "causeapp.core.handle_item"]
    assert len(makers) == 3 and len(handlers) == 3
    for handler in handlers:
        link = one_link(handler, "queue")
        assert link.context.span_id in makers
        assert link.attributes["devtrace.link.cause.function"] == "causeapp.core.make_item"


async def unrecorded_feeder(q):
    await asyncio.sleep(0.03)
    q.put_nowait("item")


def test_a_put_by_code_that_is_not_recorded_links_to_no_step(spans, app):
    record()
    assert asyncio.run(app.get_what_another_put(unrecorded_feeder)) == "item"
    recorder.stop_recording()
    all_spans = spans()
    # The consumer's step is there; no recorded call put the item, so it links to none (the
    # last step kept on the loop's thread, the gathering one's, did not put it).
    assert [s for s in all_spans if s.name == "causeapp.core.aconsume"]
    linked = [(s.name, dict(l.attributes)) for s in all_spans for l in links_of(s, "asyncio.queue")]
    assert linked == [], linked


def test_an_asyncio_queue_get_links_to_the_put(spans, app):
    record()
    item = app.Touchy()
    assert asyncio.run(app.asyncio_pair(item)) is item
    recorder.stop_recording()
    all_spans = spans()
    consumer = [s for s in all_spans if s.name == "causeapp.core.aconsume"]
    producers = [s for s in all_spans if s.name == "causeapp.core.aproduce"]
    links = [link for s in consumer for link in links_of(s, "asyncio.queue")]
    assert len(links) == 1, [dict(link.attributes) for s in consumer for link in s.links]
    cause = [p for p in producers if p.context.span_id == links[0].context.span_id]
    assert len(cause) == 1
    assert_points_at(links[0], cause[0], "causeapp.core.aproduce", "asyncio.Queue")


@pytest.mark.parametrize(
    ("pair", "party", "obj"),
    [("barrier_pair", "barrier_party", "threading.Condition"), ("abarrier_pair", "abarrier_party", "asyncio.Condition")],
)
def test_a_barriers_first_party_links_through_its_condition_to_the_last_partys_wait(spans, app, pair, party, obj):
    record()
    result = getattr(app, pair)()
    if asyncio.iscoroutine(result):
        asyncio.run(result)
    recorder.stop_recording()
    all_spans = spans()
    links = [(s, link) for s in all_spans for link in s.links if link.attributes["devtrace.link.kind"] == "condition"]
    assert len(links) == 1, [(s.name, dict(link.attributes)) for s, link in links]
    span, link = links[0]
    assert span.name == f"causeapp.core.{party}"
    cause = [s for s in all_spans if s.context.span_id == link.context.span_id]
    assert len(cause) == 1 and cause[0] is not span
    assert_points_at(link, cause[0], f"causeapp.core.{party}", obj, waited_ns=10_000_000)


def test_a_service_of_short_steps_links_every_wait_to_the_step_that_ended_it(spans, app):
    record()
    assert asyncio.run(app.aservice(12)) == list(range(12))
    recorder.stop_recording()
    all_spans = spans()
    by_id = {s.context.span_id: s.name for s in all_spans}
    kinds = {}
    for span in all_spans:
        for link in span.links:
            kind = link.attributes["devtrace.link.kind"]
            kinds.setdefault(kind, []).append((span.name, by_id.get(link.context.span_id)))
    # Ten fetches waited for the semaphore (two took it free), each for a fetch's release.
    assert kinds["semaphore"] == [("causeapp.core.afetch", "causeapp.core.afetch")] * 10, kinds
    # Each item the worker got links to the step of the service that put it.
    assert kinds["asyncio.queue"] == [("causeapp.core.aworker", "causeapp.core.aservice")] * 12, kinds


def the_cause(all_spans, link, name):
    """The span (a step of coroutine `name`) a link points at."""
    found = [s for s in all_spans if s.name == name and s.context.span_id == link.context.span_id]
    assert len(found) == 1, f"the link points at none of {name}'s spans: {dict(link.attributes)}"
    return found[0]


@pytest.mark.parametrize(
    ("pair", "waiter", "causer", "kind", "obj"),
    [
        ("alock_pair", "atake", "ahold", "lock", "asyncio.Lock"),
        ("afree_then_pair", "atake", "ahold", "lock", "asyncio.Lock"),
        # The cancelled waiter gets no link; the next one does, its wait its own.
        ("acancelled_pair", "atake", "ahold", "lock", "asyncio.Lock"),
        ("aevent_pair", "await_event", "aset_later", "event", "asyncio.Event"),
        ("acondition_pair", "await_notified", "anotify_later", "condition", "asyncio.Condition"),
        ("asemaphore_pair", "atake", "ahold", "semaphore", "asyncio.Semaphore"),
        ("abounded_semaphore_pair", "atake", "ahold", "semaphore", "asyncio.Semaphore"),
        ("asemaphore_cancelled_pair", "atake", "ahold", "semaphore", "asyncio.Semaphore"),
        # The releasing step is short (kept all the same, as the step it woke).
        ("abrief_lock_pair", "atake", "ahold_briefly", "lock", "asyncio.Lock"),
        ("abrief_semaphore_pair", "atake", "ahold_briefly", "semaphore", "asyncio.Semaphore"),
    ],
)
def test_an_asyncio_wait_links_to_the_release_set_or_notify_that_ended_it(spans, app, pair, waiter, causer, kind, obj):
    record()
    asyncio.run(getattr(app, pair)())
    recorder.stop_recording()
    all_spans = spans()
    links = [(s, link) for s in all_spans for link in s.links if link.attributes["devtrace.link.kind"] == kind]
    # One: the wait that the other task ended, on the waiting coroutine's resumed step (kept
    # however short); asyncio.Event.wait in alock_pair's loop is not used (is_set polls).
    assert len(links) == 1, [(s.name, dict(link.attributes)) for s, link in links]
    span, link = links[0]
    assert span.name == f"causeapp.core.{waiter}"
    assert span.attributes.get("devtrace.recorder.resumed") is True
    cause = the_cause(all_spans, link, f"causeapp.core.{causer}")
    # The task waited through the other's 30 ms sleep: the wait began at its suspension.
    assert_points_at(link, cause, f"causeapp.core.{causer}", obj, waited_ns=10_000_000)
    assert link.attributes["devtrace.link.wait_ns"] < 5_000_000_000


def test_a_semaphore_waiter_links_to_the_release_that_woke_it_not_a_later_one(spans, app):
    record()
    box = []
    asyncio.run(app.asemaphore_released_twice(box))
    recorder.stop_recording()
    all_spans = spans()
    links = [(s, link) for s in all_spans for link in s.links if link.attributes["devtrace.link.kind"] == "semaphore"]
    assert len(links) == 1, [(s.name, dict(link.attributes)) for s, link in links]
    span, link = links[0]
    assert span.name == "causeapp.core.atake"
    cause = the_cause(all_spans, link, "causeapp.core.arelease_twice")
    assert_points_at(link, cause, "causeapp.core.arelease_twice", "asyncio.Semaphore", waited_ns=10_000_000)
    # The first release (before the mark), not the second, 2 ms after it, which woke no one.
    assert link.attributes["devtrace.link.cause.time_unix_nano"] < box[0] + 1_000_000


@pytest.mark.parametrize("make", ["Lock", "Semaphore", "BoundedSemaphore"])
def test_an_asyncio_lock_or_semaphore_taken_without_waiting_gets_no_link(spans, app, make):
    record()
    asyncio.run(app.atake_free(make))
    recorder.stop_recording()
    all_spans = spans()
    assert [s for s in all_spans if s.name == "causeapp.core.atake_free"]
    for span in all_spans:
        assert not span.links, (span.name, [dict(link.attributes) for link in span.links])


@pytest.mark.parametrize("named", ["tool", "__main__"])
def test_the_script_run_as_main_makes_locks_whose_waits_are_seen_whichever_way_it_is_named(tmp_path, named):
    # The recorder names the script by its file ("tool"); the locks' module test read its
    # __name__ ("__main__"): with record_calls("tool") its locks were threading's own.
    script = tmp_path / "tool.py"
    script.write_text(textwrap.dedent('''
        import threading
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
        from devtrace import _native, recorder
        recorder.record_calls(NAMED)
        made = threading.Lock(), threading.RLock()
        recorder.stop_recording()
        print([type(lock).__module__ + "." + type(lock).__name__ for lock in made])
    ''').replace("NAMED", repr(named)))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "['devtrace._native.Lock', 'devtrace._native.RLock']\n"


@pytest.mark.parametrize("which", ["Lock", "RLock"])
def test_a_lock_acquired_after_waiting_links_to_the_release(spans, app, which):
    record()
    lock, rlock = app.new_locks()
    app.lock_pair(lock if which == "Lock" else rlock)
    recorder.stop_recording()
    all_spans = spans()
    taker, holder = named(all_spans, "causeapp.core.take"), named(all_spans, "causeapp.core.hold")
    assert_points_at(one_link(taker, "lock"), holder, "causeapp.core.hold", f"threading.{which}", waited_ns=10_000_000)


def test_a_lock_taken_without_waiting_gets_no_link(spans, app):
    record()
    for lock in app.new_locks():
        app.take_free(lock)
    recorder.stop_recording()
    for span in spans():
        assert not links_of(span, "lock"), (span.name, [dict(link.attributes) for link in span.links])


def link_facts(all_spans):
    """Each causality link as ((consumer, kind, object, cause function, whether it waited 10
    ms or more), the name of the span it points at)."""
    by_id = {s.context.span_id: s.name for s in all_spans}
    facts = []
    for span in all_spans:
        for link in links_of(span):
            attrs = link.attributes
            if "devtrace.link.kind" in attrs:
                fact = (span.name, attrs["devtrace.link.kind"], attrs["devtrace.link.object"], attrs.get("devtrace.link.cause.function"), attrs["devtrace.link.wait_ns"] >= 10_000_000)
                facts.append((fact, by_id.get(link.context.span_id)))
    return sorted(facts)


SCENARIOS = {
    "queue": lambda app: app.queue_pair(queue.Queue(), app.Touchy()),
    "event": lambda app: app.event_pair(threading.Event()),
    "condition": lambda app: app.condition_pair(threading.Condition()),
    "thread": lambda app: app.spawn_and_join(),
    "future": lambda app: app.futures_pair(),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_flight_dump_carries_the_links_record_calls_makes(spans, app, tmp_path, scenario):
    from conftest import EXPORTER

    record()
    SCENARIOS[scenario](app)
    recorder.stop_recording()
    recorded = link_facts(spans())
    assert any(fact[-1] for fact, _ in recorded), recorded
    EXPORTER.clear()
    flight = recorder.record(5, 8, packages=("causeapp",), signals=(), on_unhandled=False, path=str(tmp_path / "f.ring"))
    SCENARIOS[scenario](app)
    flight.dump("requested")
    recorder.stop_recording()
    dumped = spans()
    assert named(dumped, recorder.FLIGHT_WINDOW)
    flown = link_facts(dumped)
    assert [fact for fact, _ in flown] == [fact for fact, _ in recorded]
    # The same target, or the causing call's own span: the dump keeps the window's last calls
    # whole, short ones too, where record_calls points at the short call's caller.
    for (fact, target), (_, target_recorded) in zip(flown, recorded):
        assert target in (target_recorded, fact[3]), (fact, target, target_recorded)


@pytest.mark.parametrize("mode", ["record_calls", "flight"])
def test_with_causality_off_the_calls_are_recorded_and_nothing_is_linked(spans, app, tmp_path, mode):
    plain_lock = type(threading.Lock())
    if mode == "record_calls":
        recorder.record_calls("causeapp", path=None, threshold_ms=1, causality=False)
    else:
        flight = recorder.record(5, 8, packages=("causeapp",), signals=(), on_unhandled=False, path=str(tmp_path / "f.ring"), causality=False)
    lock = app.new_locks()[0]
    for scenario in sorted(SCENARIOS):
        SCENARIOS[scenario](app)
    app.lock_pair(lock)
    if mode == "flight":
        flight.dump("requested")
    stats = recorder.stop_recording()
    # The recorded module's locks were threading's own, and no point wrote a record.
    assert type(lock) is plain_lock
    assert stats["causality_events"] == 0
    got = spans()
    assert named(got, "causeapp.core.consume") and named(got, "causeapp.core.produce")
    assert link_facts(got) == []


def test_a_dump_links_a_wait_to_a_cause_whose_call_is_still_open(spans, app, tmp_path):
    flight = recorder.record(5, 8, packages=("causeapp",), signals=(), on_unhandled=False, path=str(tmp_path / "f.ring"))
    q, release, item = queue.Queue(), threading.Event(), app.Touchy()
    producer_thread = app.in_thread(app.produce_then_hold, q, item, release)
    assert app.consume(q) is item
    flight.dump("requested")  # the producer is still in produce_then_hold
    release.set()
    producer_thread.join()
    recorder.stop_recording()
    got = spans()
    consume, producer = named(got, "causeapp.core.consume"), named(got, "causeapp.core.produce_then_hold")
    assert producer.attributes[recorder.OPEN] is True
    assert_points_at(one_link(consume, "queue"), producer, "causeapp.core.produce_then_hold", "queue.Queue")


def test_locks_made_outside_the_recorded_modules_are_threadings_own(app):
    plain_lock, plain_rlock = type(threading.Lock()), type(threading.RLock())
    record()
    try:
        # Made here (a test module, not recorded) and by the standard library: threading's own.
        assert type(threading.Lock()) is plain_lock and type(threading.RLock()) is plain_rlock
        assert type(queue.Queue().mutex) is plain_lock
        recorded_lock, recorded_rlock = app.new_locks()
        assert type(recorded_lock) is not plain_lock and type(recorded_rlock) is not plain_rlock
        # A recorded lock behaves as threading's: a Condition over it, non-blocking tries.
        cond = threading.Condition(recorded_rlock)
        with cond:
            assert not cond.wait(0.001)
        assert recorded_lock.acquire(False) and not recorded_lock.acquire(False) and recorded_lock.locked()
        recorded_lock.release()
    finally:
        recorder.stop_recording()
    assert threading.Lock is not None and type(threading.Lock()) is plain_lock


# The records each primitive writes: one per put, get, set, wait or release, whatever it calls
# inside (Event.set notifies a Condition, Queue.put too); a get or an event wait that does not
# have to wait writes its Effect only (its WaitBegin is its inner Condition.wait's, which it
# does not reach): counted by the recorder's statistics over two runs of a recorded loop, so
# the records of the recorder's own start cancel out.
@pytest.mark.parametrize(
    ("work", "make", "per_op"),
    [
        ("set_events", threading.Event, 1),
        ("wait_set_events", threading.Event, 1),
        ("put_and_get", queue.Queue, 2),
        ("lock_and_release", None, 1),
        # A release's Cause (its notify's) and an acquire's Effect, whether it waited or not.
        ("acquire_and_release", threading.Semaphore, 2),
        ("acquire_and_release", threading.BoundedSemaphore, 2),
    ],
)
def test_each_primitive_writes_its_records_once_whatever_it_calls_inside(app, work, make, per_op):
    counts = []
    for n in (10, 110):
        record()
        obj = make() if make is not None else app.new_locks()[0]
        getattr(app, work)(obj, n)
        counts.append(recorder.stop_recording()["causality_events"])
    assert counts[1] - counts[0] == 100 * per_op, counts


def test_a_put_that_raises_full_records_nothing(app):
    q = queue.Queue(maxsize=1)
    q.put(0)
    counts = []
    for n in (0, 20):
        record()
        for _ in range(n):
            with pytest.raises(queue.Full):
                q.put_nowait(1)
        counts.append(recorder.stop_recording()["causality_events"])
    assert counts[0] == counts[1], counts


def test_a_threads_inner_event_and_condition_waits_record_no_links_of_their_own(spans, app):
    record()
    app.spawn_and_join()
    recorder.stop_recording()
    parent = named(spans(), "causeapp.core.spawn_and_join")
    assert sorted(link.attributes["devtrace.link.kind"] for link in parent.links) == ["thread.join"]


def test_a_lock_wait_that_timed_out_gets_no_link(spans, app):
    record()
    lock, _ = app.new_locks()
    assert app.timed_out_pair(lock) is False
    recorder.stop_recording()
    taker = named(spans(), "causeapp.core.take_with_timeout")
    assert links_of(taker, "lock") == []


def test_a_condition_over_a_recorded_rlock_works_across_threads(spans, app):
    record()
    assert app.condition_over_rlock() == [1]
    recorder.stop_recording()
    all_spans = spans()
    waiter, notifier = named(all_spans, "causeapp.core.condition_over_rlock"), named(all_spans, "causeapp.core.notify_later")
    assert_points_at(one_link(waiter, "condition"), notifier, "causeapp.core.notify_later", "threading.Condition")


def plain_isinstance(obj, cls):
    """What isinstance(obj, cls) does: its answer, or the error it raises."""
    try:
        return isinstance(obj, cls)
    except TypeError as error:
        return TypeError, str(error)


def test_isinstance_with_threadings_locks_answers_as_without_devtrace(app):
    """On 3.13 threading.Lock is a type: a lock made before recording, one threading makes
    while recording and one the recorded module makes are its instances. On 3.12 it is a
    function (isinstance raises TypeError), and threading.RLock is one on both: unchanged."""
    before, before_r = threading.Lock(), threading.RLock()
    expected = plain_isinstance(before, threading.Lock)
    expected_r = plain_isinstance(before_r, threading.RLock)
    lock_is_a_type = isinstance(threading.Lock, type)
    assert lock_is_a_type == (sys.version_info >= (3, 13))
    record()
    try:
        recorded_lock, recorded_rlock = app.new_locks()
        assert type(recorded_lock) is not type(before) and type(recorded_rlock) is not type(before_r)
        for lock in (before, threading.Lock(), recorded_lock):
            assert plain_isinstance(lock, threading.Lock) == expected
        for rlock in (before_r, threading.RLock(), recorded_rlock):
            assert plain_isinstance(rlock, threading.RLock) == expected_r
        if lock_is_a_type:
            assert expected is True
            assert issubclass(type(recorded_lock), threading.Lock) and issubclass(type(before), threading.Lock)
            assert not isinstance(recorded_rlock, threading.Lock) and not isinstance(object(), threading.Lock)
            with pytest.raises(TypeError, match="not an acceptable base type"):
                type("Sub", (threading.Lock,), {})
            with pytest.raises(TypeError):
                threading.Lock(1)
        else:
            assert expected[0] is TypeError
    finally:
        recorder.stop_recording()
    # threading's own objects are back.
    if lock_is_a_type:
        assert threading.Lock is type(before)
    else:
        assert threading.Lock is threading._allocate_lock
    assert plain_isinstance(threading.Lock(), threading.Lock) == expected


def raised(call):
    """The (type, message) of what `call()` raises, or ("returned", its value)."""
    try:
        return "returned", call()
    except Exception as error:
        return type(error), str(error)


def test_a_recorded_lock_behaves_as_threadings_lock(app):
    record()
    try:
        lock, rlock = app.new_locks()
    finally:
        recorder.stop_recording()
    plain, plain_r = threading.Lock(), threading.RLock()
    # Taking it: free, held (non-blocking, timeout), as threading's.
    for a in (lock, plain):
        assert a.acquire() is True and a.locked() and a.locked_lock()
        assert a.acquire(False) is False and a.acquire(blocking=False) is False
        started = time.monotonic()
        assert a.acquire(True, 0.05) is False and a.acquire(timeout=0) is False
        assert time.monotonic() - started >= 0.05
        a.release_lock()
        assert not a.locked()
        assert a.acquire_lock(True, 1) is True
        a.__exit__(None, None, None)
        assert not a.locked()
    # Its errors are threading's own, and change nothing.
    for call in (
        lambda a: a.release(),
        lambda a: a.acquire(False, 1),
        lambda a: a.acquire(True, -2),
        lambda a: a.acquire(timeout="1"),
        lambda a: a.acquire(1, 2, 3),
        lambda a: a.acquire(wait=True),
        lambda a: a.acquire(True, blocking=True),
    ):
        assert raised(lambda: call(lock)) == raised(lambda: call(plain))
        assert not lock.locked()
    # Released by another thread than the one that took it (a Lock allows it).
    lock.acquire()
    t = threading.Thread(target=lock.release)
    t.start()
    t.join()
    assert not lock.locked()
    # After a fork, the child makes it new and free.
    lock.acquire()
    lock._at_fork_reinit()
    assert not lock.locked() and lock.acquire(False)
    lock.release()
    # An RLock: re-entry, what Condition uses of it, its errors.
    for r in (rlock, plain_r):
        with r:
            with r:
                assert r._is_owned() and r._recursion_count() == 2
            state = r._release_save()
            assert not r._is_owned()
            r._acquire_restore(state)
            assert r._recursion_count() == 1
        assert not r._is_owned() and r._recursion_count() == 0
    for call in (lambda r: r.release(), lambda r: r._acquire_restore(5), lambda r: r.acquire(False, 1)):
        assert raised(lambda: call(rlock)) == raised(lambda: call(plain_r))
    assert weakref.ref(lock)() is lock and weakref.ref(rlock)() is rlock
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(lock)


def test_a_signal_during_a_recorded_locks_wait_runs_its_handler_and_its_error_propagates(app):
    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted

    record()
    try:
        lock, _ = app.new_locks()
        lock.acquire()
        previous = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        started = time.monotonic()
        try:
            with pytest.raises(Interrupted):
                lock.acquire(True, 10)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert time.monotonic() - started < 5
        assert lock.locked()
        lock.release()
    finally:
        recorder.stop_recording()


def test_the_flight_recorder_makes_the_recorded_packages_locks_native_too(app):
    plain_lock, plain_rlock = type(threading.Lock()), type(threading.RLock())
    recorder.record(packages=["causeapp"], signals=(), on_unhandled=False)
    try:
        lock, rlock = app.new_locks()
        assert type(lock) is not plain_lock and type(rlock) is not plain_rlock
        assert type(threading.Lock()) is plain_lock and type(queue.Queue().mutex) is plain_lock
        app.lock_pair(lock)
    finally:
        recorder.stop_recording()
    assert tuple(map(type, app.new_locks())) == (plain_lock, plain_rlock)


# Processes: the child's trace under the parent's recorded call that started it. Each process
# writes its spans (with their links) as JSON lines into one file; the parent's recorded
# functions start the children. main.py (not recorded) records `procapp` when it is imported,
# so a multiprocessing child started by spawn (which imports it as __mp_main__) records too.
PROCAPP = '''
import concurrent.futures
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import devtrace
from devtrace import recorder


def child_step(n):
    return n * 2


def child_main():
    steps = [child_step(n) for n in range(3)]
    flight = recorder.current()
    if flight is not None and flight.flight:  # the flight recorder writes the child's window
        flight.dump("the child's window")
    return steps


def start_fork():
    pid = os.fork()
    if pid == 0:
        child_main()
        devtrace.stop_recording()
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def start_fork_and_kill():
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        [child_step(n) for n in range(3)]
        os.write(writer, recorder.current().path.encode())
        time.sleep(60)
    ring = os.read(reader, 4096).decode()
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return ring


def start_multiprocessing(method):
    child = multiprocessing.get_context(method).Process(target=child_main)
    child.start()
    child.join()
    return child.pid


def start_subprocess(env=None):
    return subprocess.run([sys.executable, "main.py", "child"], env=env, check=True).returncode


def pool_job(n):
    time.sleep(0.02)
    if n < 0:
        raise ValueError("negative")
    return n * 2


def submit_jobs(pool, numbers):
    return [pool.submit(pool_job, n) for n in numbers]


def await_job(future):
    try:
        return future.result()
    except ValueError:
        return None


def use_pool(method):
    # Not imported before: concurrent.futures.process is imported here, while recording.
    context = multiprocessing.get_context(method) if method else None
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        futures = submit_jobs(pool, [1, 2, -1])
        return [await_job(f) for f in futures]
'''

PROCESS_MAIN = '''
import json
import os
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import devtrace
from devtrace import recorder

import procapp

OUT = os.environ["PROCAPP_OUT"]


def as_line(span):
    """A span as one JSON line: its process, name, ids, parent and links."""
    parent = span.parent.span_id if span.parent else None
    links = [{"trace_id": l.context.trace_id, "span_id": l.context.span_id, "attributes": dict(l.attributes)} for l in span.links]
    context = span.context
    return json.dumps(dict(pid=os.getpid(), name=span.name, trace_id=context.trace_id, span_id=context.span_id, parent=parent, links=links, start=span.start_time)) + "\\n"


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=open(OUT, "a"), formatter=as_line)))
trace.set_tracer_provider(provider)
devtrace.configure()  # continues TRACEPARENT; keeps the provider above
POOL_IMPORTED_BEFORE = "concurrent.futures.process" in sys.modules
FLIGHT = os.environ.get("PROCAPP_RECORDER") == "flight"
if FLIGHT:
    recorder.record(5, 8, packages=("procapp",), signals=(), on_unhandled=False, threshold_ms=0)
else:
    recorder.record_calls("procapp", threshold_ms=0)

if __name__ == "__main__":
    mode = sys.argv[1]
    report = {"pid": os.getpid(), "traceparent": os.environ.get("TRACEPARENT"), "tracestate": os.environ.get("TRACESTATE"), "marker": os.environ.get("PROCAPP_MARKER")}
    if mode == "child":
        procapp.child_main()
    elif mode == "fork":
        procapp.start_fork()
    elif mode in ("fork-context", "spawn", "forkserver"):
        procapp.start_multiprocessing(mode.replace("-context", ""))
    elif mode == "subprocess":
        procapp.start_subprocess()
    elif mode.startswith("pool"):
        report["results"] = procapp.use_pool(mode.partition("-")[2] or None)
        report["pool_imported_before"] = POOL_IMPORTED_BEFORE
    elif mode == "explicit-env":
        env = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "TRACESTATE")}
        procapp.start_subprocess({**env, "PROCAPP_MARKER": "kept"})
    elif mode == "own-traceparent":
        procapp.start_subprocess({**os.environ, "TRACEPARENT": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    elif mode == "fork-kill":
        ring = procapp.start_fork_and_kill()
    if FLIGHT and mode != "child":
        recorder.current().dump("the parent's window")
    devtrace.stop_recording()
    if mode == "fork-kill":
        recorder.recover(ring)
    with open(OUT + ".reports", "a") as reports:
        reports.write(json.dumps(report) + "\\n")
'''


def run_process_app(tmp_path, mode, flight=False):
    (tmp_path / "procapp").mkdir()
    (tmp_path / "procapp" / "__init__.py").write_text(PROCAPP)
    (tmp_path / "main.py").write_text(PROCESS_MAIN)
    out = tmp_path / "spans.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("TRACEPARENT", "TRACESTATE")}
    env.update(PROCAPP_OUT=str(out), PYTHONPATH=str(tmp_path), PROCAPP_RECORDER="flight" if flight else "calls")
    # CPython 3.12+ warns about fork() in a process with threads (the recorder's drainer is one).
    done = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "main.py", mode], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    spans = [json.loads(line) for line in out.read_text().splitlines()]
    reports = [json.loads(line) for line in (tmp_path / "spans.jsonl.reports").read_text().splitlines()]
    return spans, reports


def the_one(spans, name):
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, f"expected one span {name!r}, got {[s['name'] for s in spans]}"
    return found[0]


def assert_started_by(spans, starter, obj, with_time):
    """The child's calls nest under the parent's starting call, in its trace, and the child's
    outermost call links to it (kind process)."""
    start = the_one(spans, starter)
    main = the_one(spans, "procapp.child_main")
    assert main["pid"] != start["pid"]
    assert (main["trace_id"], main["parent"]) == (start["trace_id"], start["span_id"])
    works = [s for s in spans if s["name"] == "procapp.child_step"]
    assert len(works) == 3 and {s["parent"] for s in works} == {main["span_id"]}
    assert all(s["links"] == [] for s in works)
    [link] = main["links"]
    assert (link["trace_id"], link["span_id"]) == (start["trace_id"], start["span_id"])
    attributes = link["attributes"]
    assert attributes["devtrace.link.kind"] == "process"
    assert attributes["devtrace.link.object"] == obj
    assert attributes["devtrace.link.wait_ns"] == 0
    if with_time:  # a fork: the parent said when and from where
        assert attributes["devtrace.link.cause.function"] == starter
        assert 0 < attributes["devtrace.link.cause.time_unix_nano"] <= time.time_ns()
    return start, main


@pytest.mark.parametrize(("mode", "obj"), [("fork", "os.fork"), ("fork-context", "multiprocessing.Process")])
def test_a_forked_childs_calls_nest_under_the_call_that_forked_with_a_process_link(tmp_path, mode, obj):
    spans, _ = run_process_app(tmp_path, mode)
    starter = "procapp.start_fork" if mode == "fork" else "procapp.start_multiprocessing"
    assert_started_by(spans, starter, obj, with_time=True)


@pytest.mark.parametrize(("mode", "obj"), [("subprocess", "subprocess.Popen"), ("spawn", "multiprocessing.Process")])
def test_a_spawned_python_childs_calls_nest_under_the_spawning_call_with_a_process_link(tmp_path, mode, obj):
    spans, reports = run_process_app(tmp_path, mode)
    starter = "procapp.start_subprocess" if mode == "subprocess" else "procapp.start_multiprocessing"
    start, main = assert_started_by(spans, starter, obj, with_time=False)
    # The parent itself got no TRACEPARENT: only the child, naming the spawning call.
    if mode == "subprocess":
        parent, child = sorted(reports, key=lambda r: r["pid"] != start["pid"])
        assert parent["traceparent"] is None
        assert child["traceparent"] == f"00-{start['trace_id']:032x}-{start['span_id']:016x}-01"
        assert child["tracestate"] == "devtrace=spawn.subprocess"


@pytest.mark.parametrize(
    ("mode", "obj"),
    [("fork", "os.fork"), ("fork-context", "multiprocessing.Process"), ("subprocess", "subprocess.Popen"), ("spawn", "multiprocessing.Process")],
)
def test_under_the_flight_recorder_a_childs_window_nests_under_the_call_that_started_it(tmp_path, mode, obj):
    spans, _ = run_process_app(tmp_path, mode, flight=True)
    starter = {"fork": "procapp.start_fork", "subprocess": "procapp.start_subprocess"}.get(mode, "procapp.start_multiprocessing")
    # The parent's window has the starting call, with the ids the child was given at the start.
    start = the_one(spans, starter)
    windows = {s["pid"]: s for s in spans if s["name"] == "devtrace.flight_window"}
    assert set(windows) == {start["pid"], the_one(spans, "procapp.child_main")["pid"]}
    parent_window = windows.pop(start["pid"])
    assert (start["trace_id"], start["parent"]) == (parent_window["trace_id"], parent_window["span_id"])
    [(child_pid, window)] = windows.items()
    assert child_pid != start["pid"]
    # The child's window: under the starting call, in its trace, linked to it (kind process).
    assert (window["trace_id"], window["parent"]) == (start["trace_id"], start["span_id"])
    [link] = window["links"]
    assert (link["trace_id"], link["span_id"]) == (start["trace_id"], start["span_id"])
    assert link["attributes"]["devtrace.link.kind"] == "process"
    assert link["attributes"]["devtrace.link.object"] == obj
    if mode.startswith("fork"):  # the parent said when and from where
        assert link["attributes"]["devtrace.link.cause.function"] == starter
    main = the_one(spans, "procapp.child_main")
    assert (main["trace_id"], main["parent"]) == (start["trace_id"], window["span_id"])
    works = [s for s in spans if s["name"] == "procapp.child_step"]
    assert len(works) == 3 and {s["parent"] for s in works} == {main["span_id"]}


def test_a_forked_child_killed_under_the_flight_recorder_is_recovered_under_the_call_that_forked(tmp_path):
    spans, _ = run_process_app(tmp_path, "fork-kill", flight=True)
    start = the_one(spans, "procapp.start_fork_and_kill")
    windows = [s for s in spans if s["name"] == "devtrace.flight_window" and s["pid"] == start["pid"]]
    recovered = [w for w in windows if w["parent"] == start["span_id"]]
    assert len(windows) == 2 and len(recovered) == 1, windows
    [link] = recovered[0]["links"]
    assert (link["trace_id"], link["span_id"]) == (start["trace_id"], start["span_id"])
    assert link["attributes"]["devtrace.link.kind"] == "process"
    assert link["attributes"]["devtrace.link.object"] == "os.fork"
    assert link["attributes"]["devtrace.link.cause.function"] == "procapp.start_fork_and_kill"
    steps = [s for s in spans if s["name"] == "procapp.child_step"]
    assert len(steps) == 3 and {s["parent"] for s in steps} == {recovered[0]["span_id"]}


def test_an_environment_the_caller_passed_only_gets_the_trace_added(tmp_path):
    spans, reports = run_process_app(tmp_path, "explicit-env")
    start, _ = assert_started_by(spans, "procapp.start_subprocess", "subprocess.Popen", with_time=False)
    child = next(r for r in reports if r["pid"] != start["pid"])
    assert child["marker"] == "kept"
    assert child["traceparent"] == f"00-{start['trace_id']:032x}-{start['span_id']:016x}-01"


def test_a_traceparent_the_caller_set_is_left_alone(tmp_path):
    spans, reports = run_process_app(tmp_path, "own-traceparent")
    start = the_one(spans, "procapp.start_subprocess")
    main = the_one(spans, "procapp.child_main")
    child = next(r for r in reports if r["pid"] != start["pid"])
    assert child["traceparent"] == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert child["tracestate"] is None
    assert (main["trace_id"], main["parent"]) == (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    assert main["links"] == []


@pytest.mark.parametrize("mode", ["pool", "pool-spawn", "pool-forkserver"])
def test_a_process_pools_job_links_to_its_submit_and_its_result_to_the_job(tmp_path, mode):
    """ProcessPoolExecutor (the default start method, fork here; spawn; forkserver): each job's
    call in the worker links to the submitting call in the parent (kind future), and each
    result() to the worker's job span carried back with the result; a failing job's result()
    raises, with no link, as a thread pool's."""
    spans, reports = run_process_app(tmp_path, mode)
    [parent_report] = [r for r in reports if "results" in r]
    assert parent_report["results"] == [2, 4, None]
    # The pool's module was imported while recording: the hook on its import installed it.
    assert parent_report["pool_imported_before"] is False
    submit = the_one(spans, "procapp.submit_jobs")
    assert submit["pid"] == parent_report["pid"]
    jobs = sorted((s for s in spans if s["name"] == "procapp.pool_job"), key=lambda s: s["start"])
    awaits = sorted((s for s in spans if s["name"] == "procapp.await_job"), key=lambda s: s["start"])
    assert len(jobs) == 3 and len(awaits) == 3
    for job in jobs:
        assert job["pid"] != submit["pid"]
        [link] = [link for link in job["links"] if link["attributes"]["devtrace.link.kind"] == "future"]
        assert (link["trace_id"], link["span_id"]) == (submit["trace_id"], submit["span_id"])
        attributes = link["attributes"]
        assert attributes["devtrace.link.object"] == "concurrent.futures.Future"
        assert attributes["devtrace.link.cause.function"] == "procapp.submit_jobs"
        assert attributes["devtrace.link.wait_ns"] == 0
        assert submit["start"] <= attributes["devtrace.link.cause.time_unix_nano"] <= job["start"]
    for job, waiter in zip(jobs[:2], awaits[:2]):
        [link] = waiter["links"]
        assert (link["trace_id"], link["span_id"]) == (job["trace_id"], job["span_id"])
        attributes = link["attributes"]
        assert attributes["devtrace.link.kind"] == "future"
        assert attributes["devtrace.link.object"] == "concurrent.futures.Future"
        assert attributes["devtrace.link.cause.function"] == "procapp.pool_job"
        assert attributes["devtrace.link.cause.time_unix_nano"] >= job["start"]
    assert awaits[2]["links"] == []


def test_the_pool_hook_is_installed_only_while_recording_and_wraps_only_recorded_submits(app):
    """concurrent.futures.process's work item is devtrace's only while record_calls records; a
    submit outside any recorded call keeps its callable as it is; stop() puts the original back."""
    import concurrent.futures.process as process

    from devtrace import _pool

    original = process._WorkItem
    record()
    try:
        assert process._WorkItem is not original and process._WorkItem.__wrapped__ is original
        future = concurrent.futures.Future()
        # Here (a test function, not recorded): no recorded call submits, nothing is wrapped.
        assert process._WorkItem(future, len, ((),), {}).fn is len
        # From a recorded call: the submitting call's ids ride along, the callable inside.
        wrapped = app.make_work_item(process, future)
        assert isinstance(wrapped.fn, _pool.PoolJob) and wrapped.fn.carried is len
        assert wrapped.fn.function == "causeapp.core.make_work_item" and wrapped.fn.future == id(future)
        # It pickles as the callable it carries does, and runs it as it is when nothing records.
        again = pickle.loads(pickle.dumps(wrapped.fn))
        assert again.carried is len and again.span_id == wrapped.fn.span_id
    finally:
        recorder.stop_recording()
    assert process._WorkItem is original
    assert again((1, 2)) == 2
