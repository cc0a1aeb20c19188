"""A parent that runs jobs in a process pool from recorded functions: `submit_all` submits,
the worker runs `square`, `wait_for` takes each result. Started by `python -m app.pooler`."""

import concurrent.futures
import time


def square(n):
    time.sleep(0.003)  # over the 1 ms threshold
    return n * n


def submit_all(pool):
    return [pool.submit(square, n) for n in (2, 3)]


def wait_for(future):
    return future.result()


def main():
    # The default start method: fork on Linux with CPython 3.12 and 3.13.
    with concurrent.futures.ProcessPoolExecutor(max_workers=1) as pool:
        futures = submit_all(pool)
        print([wait_for(f) for f in futures])
