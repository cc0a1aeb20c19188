"""What a causality event costs the program under record_calls (docs/PERFORMANCE.md).

A causality event is a record the recorder writes at a causality point (docs/python.md,
"Causality"): a queue put (one Cause), a get (an Effect; and a WaitBegin before it when it has to
wait: `queue-wait`, two threads handing items to each other), an event set (one Cause), a lock release (one Cause; `with lock:` on a lock `threading.Lock()` made while
recording), an asyncio queue's put_nowait + get_nowait (`aqueue`, two records), a `threading.Semaphore` taken and released (`semaphore`: the acquire's Effect and the
release's Cause); asyncio's event set and condition notify (one Cause each), an asyncio lock taken
without waiting (`alock`: no record, the cost of its points' dispatch) and handed over between
two tasks (four records), and what a process pool adds to a job in the worker (`pool-job`) and
to a submit in the parent (`pool-submit`). Each workload runs N operations on one thread inside one recorded function, with and
without the recorder, in fresh interpreters (this script re-run with --one); the cost per event
is (recorded − plain) / events. It is everything the program pays: CPython's sys.monitoring
dispatch of the point's events (and of the points nested in it), reading its arguments, the
records, and for `lock`/`rlock` the native lock (devtrace._native.Lock/RLock) `threading.Lock()`
makes in a recorded module. `idle-lock` is that lock used with no recorder running, against
threading's own (per operation: what a lock made while recording costs after it).

With --callgrind the same difference is counted in instructions under valgrind's callgrind
(the program and the drainer thread; each variant run with N and with 0 operations, so start-up
cancels out): a figure the machine's load does not move.

With --baseline recorder the recorded run is compared with the same run recorded with
causality=False instead of unrecorded: what the causality points alone cost, without what the
recorder costs any program (on CPython 3.12, the exception events of every generator closed
early: asyncio's Lock.acquire closes one on every contended acquire).

Usage: python causality.py [--n 200000] [--rounds 5] [--callgrind] [--flight]
[--baseline plain|recorder] [--only WORKLOAD ...] (in a venv with devtrace built natively).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

# --baseline: what a recorded run is compared with ("plain": unrecorded; "recorder": recorded with
# causality=False, so the difference is the causality points' alone).
BASELINE = "plain"

# --flight: under the flight recorder (`devtrace.record(packages=["__main__"])`), not record_calls.
# Since stop 40 "__main__" names this script for the recorder too, so the flight recorder also
# records the workloads' own calls (one a run; an asyncio workload's task steps).
FLIGHT = "--flight" in sys.argv

# Causality records per operation of each workload ("idle-lock": none, it is the cost of a
# recorded lock used when no recorder runs, against threading's; None: as many as the recorder
# counted in the run, per operation — whether a get has to wait depends on the threads' turns).
EVENTS = {
    "queue": 2,
    "queue-wait": None,
    "event": 1,
    "lock": 1,
    "rlock": 1,
    "semaphore": 2,
    "idle-lock": 0,
    "aevent": 1,
    "aqueue": 2,
    "alock": 0,
    "alock-handoff": 4,
    "acondition": 1,
    "pool-job": 1,
    "pool-submit": 0,
}


def semaphore_work(n):
    """`with sem: pass` on a `threading.Semaphore`, never waiting: the acquire's Effect (which
    links to nothing, not having waited) and the release's Cause, written by its notify."""
    import threading

    sem = threading.Semaphore(1)
    for _ in range(n):
        with sem:
            pass


def queue_work(n):
    import queue

    q = queue.Queue()
    put, get = q.put, q.get
    for i in range(n):
        put(i)
        get()


def queue_wait_work(n):
    """Two threads handing items back and forth through two queues: each `get` mostly finds its
    queue empty and waits for the other thread's `put` (its WaitBegin, then its Effect)."""
    import queue
    import threading

    there, back = queue.Queue(), queue.Queue()

    def echo():
        for _ in range(n):
            back.put(there.get())

    other = threading.Thread(target=echo)
    other.start()
    for i in range(n):
        there.put(i)
        back.get()
    other.join()


def event_work(n):
    import threading

    e = threading.Event()
    for _ in range(n):
        e.set()


def lock_work(n):
    import threading

    lock = threading.Lock()
    for _ in range(n):
        with lock:
            pass


def rlock_work(n):
    import threading

    lock = threading.RLock()
    for _ in range(n):
        with lock:
            pass


def idle_lock_work(n, recorded):
    """`with lock: pass` on a recorded lock (devtrace._native.Lock, what `threading.Lock()` makes
    in a recorded module) with no recorder running; plain: threading's."""
    import threading

    from devtrace import _native

    lock = _native.Lock() if recorded else threading.Lock()
    for _ in range(n):
        with lock:
            pass


def aevent_work(n):
    import asyncio

    async def main():
        e = asyncio.Event()
        for _ in range(n):
            e.set()

    asyncio.run(main())


def aqueue_work(n):
    """`q.put_nowait(i); q.get_nowait()` on an `asyncio.Queue`: the put's Cause and the get's
    Effect, keyed on the queue and the item."""
    import asyncio

    async def main():
        q = asyncio.Queue()
        put, get = q.put_nowait, q.get_nowait
        for i in range(n):
            put(i)
            get()

    asyncio.run(main())


def alock_work(n):
    """`async with lock: pass`, never contended: no record, the points' dispatch alone."""
    import asyncio

    async def main():
        lock = asyncio.Lock()
        for _ in range(n):
            async with lock:
                pass

    asyncio.run(main())


def alock_handoff_work(n):
    """Two tasks taking turns on one lock: every acquisition waits (a suspension's WaitBegin, the
    release's Cause, the recall and the Effect)."""
    import asyncio

    async def main():
        lock = asyncio.Lock()

        async def taker(k):
            for _ in range(k):
                async with lock:
                    await asyncio.sleep(0)

        await asyncio.gather(taker(n // 2), taker(n - n // 2))

    asyncio.run(main())


def acondition_work(n):
    import asyncio

    async def main():
        cond = asyncio.Condition()
        for _ in range(n):
            async with cond:
                cond.notify()

    asyncio.run(main())


def job():
    return None


def pool_job_work(n):
    """What a process pool's worker adds to each job (in one process, no pool): the job wrapper,
    the job's start (a remote cause and an Effect) and its end (the worker's rings read, the job's
    kept call named); the job itself is one recorded call, kept as a span."""
    import time

    from devtrace._pool import PoolJob

    wrapped = PoolJob(job, 0, 1, 2, "bench.submit", time.monotonic_ns())
    for _ in range(n):
        wrapped()


def pool_submit_work(n):
    """What submitting to a process pool adds in the parent (no pool: the work item factory
    devtrace installs, called as `submit` calls it): the submitting call's ids (its span kept)
    and the job's wrapper."""
    from devtrace import _pool

    work_item = _pool._wrapping(lambda future, fn, args, kwargs: fn)
    for _ in range(n):
        work_item(None, job, (), {})


WORK = {
    "queue": queue_work,
    "queue-wait": queue_wait_work,
    "event": event_work,
    "lock": lock_work,
    "rlock": rlock_work,
    "semaphore": semaphore_work,
    "idle-lock": idle_lock_work,
    "aevent": aevent_work,
    "aqueue": aqueue_work,
    "alock": alock_work,
    "alock-handoff": alock_handoff_work,
    "acondition": acondition_work,
    "pool-job": pool_job_work,
    "pool-submit": pool_submit_work,
}


def one(workload, recorded, n, runs=3, causality=True):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    import devtrace

    idle = workload == "idle-lock"
    handle = None
    if recorded and not idle:
        if FLIGHT:
            handle = devtrace.record(10, 16, packages=["__main__"], signals=(), on_unhandled=False, causality=causality)
        else:
            # Only the causality points record: a plan naming one function no workload calls,
            # so none of this script's calls is recorded (the difference is the records' cost)
            # while the locks it makes are the recorder's (the plan's module is the script).
            handle = devtrace.record_calls(plan=[("__main__", "never_called")], threshold_ms=1, causality=causality)
    work = WORK[workload]
    if idle:
        work = lambda n, work=work: work(n, recorded)  # noqa: E731
    work(1000)  # warm up (and, recorded, every point's first call decided)
    best = float("inf")
    for _ in range(runs):
        t = time.perf_counter()
        work(n)
        best = min(best, time.perf_counter() - t)
    stats = handle.stop() if handle else {}
    events = stats.get("causality_events", 0)
    print(json.dumps({"seconds": best, "causality_events": events, "events_per_op": events / (1000 + runs * n)}))


def variant(recorded):
    """The command-line flags of a run: recorded (True), the baseline (False: not recorded, or
    with --baseline recorder recorded with causality off)."""
    if recorded:
        return ["--recorded"]
    return ["--recorded", "--no-causality"] if BASELINE == "recorder" else ["--plain"]


def instructions(workload, recorded, n):
    """Instructions callgrind counts for one run of `workload` with n operations, and the
    causality records per operation the recorder counted."""
    import re
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", sys.executable, __file__,
             "--one", workload, *variant(recorded), "--n", str(n), "--runs", "1"]
            + (["--flight"] if FLIGHT else []),
            capture_output=True,
            text=True,
            check=True,
        )
    return int(re.search(r"Collected : (\d+)", out.stderr).group(1)), json.loads(out.stdout)["events_per_op"]


def callgrind(n):
    print(f"CPython {sys.version.split()[0]} under callgrind, n = {n:,} operations")
    print(f"{'workload':<14} {BASELINE + ' instr/op':>17} {'recorded instr/op':>18} {'events/op':>10} {'instr/event':>12}")
    for workload in WORK:
        plain = (instructions(workload, False, n)[0] - instructions(workload, False, 0)[0]) / n
        recorded, seen = instructions(workload, True, n)
        recorded = (recorded - instructions(workload, True, 0)[0]) / n
        per_op = EVENTS[workload] if EVENTS[workload] is not None else round(seen, 2)
        per_event = (recorded - plain) / max(per_op, 1)
        print(f"{workload:<14} {plain:>17.0f} {recorded:>18.0f} {per_op:>10} {per_event:>12.0f}   (+{recorded - plain:,.0f}/op)")


def run(workload, recorded, n):
    out = subprocess.run(
        [sys.executable, __file__, "--one", workload, *variant(recorded), "--n", str(n)]
        + (["--flight"] if FLIGHT else []),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--one")
    p.add_argument("--recorded", action="store_true")
    p.add_argument("--plain", action="store_true")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--callgrind", action="store_true")
    p.add_argument("--flight", action="store_true", help="under the flight recorder instead of record_calls")
    p.add_argument("--no-causality", action="store_true", help="with --one --recorded: the recorder with causality=False")
    p.add_argument(
        "--baseline",
        choices=["plain", "recorder"],
        default="plain",
        help="what the recorded run is compared with: the workload unrecorded (plain), or recorded with causality=False"
        " (recorder: what the causality points alone cost, without what the recorder costs any program)",
    )
    p.add_argument("--only", nargs="*", help="these workloads only")
    args = p.parse_args()
    global BASELINE
    BASELINE = args.baseline
    if BASELINE == "recorder":
        WORK.pop("idle-lock", None)  # a lock used with no recorder: it has no recorder baseline
    if args.only:
        for name in [w for w in WORK if w not in args.only]:
            del WORK[name]
    if args.one:
        one(args.one, args.recorded, args.n, args.runs, causality=not args.no_causality)
        return
    if args.callgrind:
        callgrind(args.n)
        return
    print(f"CPython {sys.version.split()[0]}, n = {args.n:,} operations, median of {args.rounds} rounds")
    print(f"{'workload':<14} {BASELINE + ' ns/op':>14} {'recorded ns/op':>15} {'events/op':>10} {'ns/event':>9} {'paired':>7}")
    for workload in WORK:
        plain, recorded, seen, rates = [], [], 0, []
        for _ in range(args.rounds):
            plain.append(run(workload, False, args.n)["seconds"] / args.n * 1e9)
            r = run(workload, True, args.n)
            recorded.append(r["seconds"] / args.n * 1e9)
            seen = r["causality_events"]
            rates.append(r["events_per_op"])
        per_op = EVENTS[workload] if EVENTS[workload] is not None else round(statistics.median(rates), 2)
        a, b = statistics.median(plain), statistics.median(recorded)
        # Each round's recorded run against its own baseline run: steadier than the medians'
        # difference on a host whose speed drifts between rounds.
        paired = statistics.median(r - p for p, r in zip(plain, recorded)) / max(per_op, 1)
        print(
            f"{workload:<14} {a:>14.0f} {b:>15.0f} {per_op:>10} {(b - a) / max(per_op, 1):>9.0f} {paired:>7.0f}"
            f"   ({seen:,} causality records in the last run)"
        )


if __name__ == "__main__":
    main()
