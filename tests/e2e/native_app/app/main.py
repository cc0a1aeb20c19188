"""python -m app.main [N] [--crash|--fail]: processes batches; --crash kills itself with SIGKILL
in the middle of the work, --fail raises an unhandled exception."""

import os
import signal
import sys

import devtrace

from app import jobs


def fail_deep(n):
    return check(n)


def check(n):
    if n > 0:
        raise ValueError(f"batch of {n} items refused")
    return n


def last_steps_before_crash():
    jobs.parse(1000)
    os.kill(os.getpid(), signal.SIGKILL)


def main():
    devtrace.configure(service_name="native-app")
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 60000
    for _ in range(2):
        jobs.process(n)
    if "--crash" in sys.argv:
        last_steps_before_crash()
    if "--fail" in sys.argv:
        fail_deep(n)


if __name__ == "__main__":
    main()
