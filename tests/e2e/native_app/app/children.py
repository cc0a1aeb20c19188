"""A parent that starts a Python child with subprocess.run from a recorded function
(`start_child`); the child does its work in recorded functions (`child_main`, `child_step`).
Started by `python -m app.spawner`; the child is `python -m app.spawner child`."""

import subprocess
import sys
import time


def child_step(n):
    time.sleep(0.003)  # over the 1 ms threshold: every call is recorded
    return n + 1


def child_main():
    return [child_step(n) for n in range(3)]


def start_child():
    subprocess.run([sys.executable, "-m", "app.spawner", "child"], check=True)


def main(argv):
    if argv == ["child"]:
        child_main()
    else:
        start_child()
