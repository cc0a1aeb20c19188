#!/usr/bin/env python3
"""Benchmarks of `devtrace record` (the figures in docs/PERFORMANCE.md).

1. prompt: what the bash integration adds per command. An interactive bash on a
   pseudo-terminal runs N `:` commands, typed all at once, (a) without the integration,
   (b) with it while nothing is recorded, (c) with it while recording; the difference in wall
   time per command is the overhead. Target: < 5 ms per command.
2. idle: the recorder's CPU while nothing happens, on a generated repository of 50,000 files
   in 2,500 directories (committed): its CPU time (utime + stime from /proc) over a quiet
   interval, as a share of one core. Target: < 0.5 %. Also how long `record start` took.
3. stop: from `devtrace record stop` to the session listed by `devtrace sessions --json`,
   on the same repository with a few hundred recorded events and some edits. Target: < 1 s.

Usage: bench/record.py [--bin target/release/devtrace] [--commands 500] [--idle-seconds 60]
       [--files 50000] [--only prompt|idle|stop|repository]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(argv, **kwargs):
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def git_repo(path: Path, files: int, per_dir: int = 20) -> None:
    path.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], cwd=path)
    run(["git", "config", "user.name", "Bench"], cwd=path)
    run(["git", "config", "user.email", "bench@example.com"], cwd=path)
    for i in range(files):
        d = path / f"pkg{i // (per_dir * 50):03d}" / f"mod{(i // per_dir) % 50:02d}"
        if i % per_dir == 0:
            d.mkdir(parents=True, exist_ok=True)
        (d / f"file{i % per_dir:02d}.py").write_text(f"VALUE_{i} = {i}\n\ndef f_{i}():\n    return VALUE_{i}\n")
    (path / ".gitignore").write_text("__pycache__/\n")
    run(["git", "add", "-A"], cwd=path)
    run(["git", "commit", "-q", "-m", "generated"], cwd=path)


def devtrace(bin: Path, data: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, DEVTRACE_DATA=str(data))
    return subprocess.run([str(bin), *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)


def bash_run(rc: Path, commands: int, env: dict) -> float:
    """Seconds for an interactive bash to run `commands` commands typed at once."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("bash", ["bash", "--rcfile", str(rc), "-i"], env)
    def read_until(marker: bytes, timeout: float) -> None:
        buffer = b""
        deadline = time.monotonic() + timeout
        while marker not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"bash did not print {marker!r}: {buffer[-500:]!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                try:
                    buffer += os.read(fd, 65536)
                except OSError:
                    break
            buffer = buffer[-4096:]
    os.write(fd, b"echo READY$((1+1))\n")
    read_until(b"READY2", 20)
    script = b": a command\n" * commands + b"echo DONE$((2+2))\n"
    began = time.perf_counter()
    # Write in pieces: the terminal's input queue is bounded.
    view = memoryview(script)
    while view:
        written = os.write(fd, view[:1024])
        view = view[written:]
        ready, _, _ = select.select([fd], [], [], 0)
        if ready:
            try:
                os.read(fd, 65536)
            except OSError:
                pass
    read_until(b"DONE4", 600)
    elapsed = time.perf_counter() - began
    os.write(fd, b"exit\n")
    os.waitpid(pid, 0)
    return elapsed


def prompt(bin: Path, commands: int, rounds: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="devtrace-bench-prompt-"))
    try:
        repo = work / "repo"
        git_repo(repo, 10)
        data = work / "data"
        init = devtrace(bin, data, "record", "shell-init", "bash", cwd=repo).stdout
        plain = work / "plain.rc"
        plain.write_text(f"cd {repo}\nHISTFILE=/dev/null\n")
        hooked = work / "hooked.rc"
        hooked.write_text(f"cd {repo}\nHISTFILE=/dev/null\n{init}")
        env = dict(os.environ, DEVTRACE_DATA=str(data), PS1="$ ", TERM="dumb")
        results: dict[str, list[float]] = {"plain": [], "hooks, not recording": [], "hooks, recording": []}
        for _ in range(rounds):
            results["plain"].append(bash_run(plain, commands, env))
            results["hooks, not recording"].append(bash_run(hooked, commands, env))
        devtrace(bin, data, "record", "start", "--task", "bench", "--no-watch", cwd=repo)
        try:
            for _ in range(rounds):
                results["hooks, recording"].append(bash_run(hooked, commands, env))
            status = json.loads(devtrace(bin, data, "record", "status", "--json", cwd=repo).stdout)
        finally:
            devtrace(bin, data, "record", "stop", cwd=repo)
        base = statistics.median(results["plain"]) / commands * 1000
        report = {"commands": commands, "rounds": rounds, "recorded_commands": status["status"]["commands"]}
        for name, times in results.items():
            per = statistics.median(times) / commands * 1000
            report[name] = {"ms_per_command": round(per, 3), "overhead_ms": round(per - base, 3)}
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def idle_and_stop(bin: Path, files: int, idle_seconds: int, only: str | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix="devtrace-bench-idle-"))
    report: dict = {"files": files}
    try:
        repo = work / "repo"
        began = time.perf_counter()
        git_repo(repo, files)
        report["generate_s"] = round(time.perf_counter() - began, 1)
        data = work / "data"
        began = time.perf_counter()
        devtrace(bin, data, "record", "start", "--task", "bench", cwd=repo)
        report["record_start_s"] = round(time.perf_counter() - began, 3)
        status = json.loads(devtrace(bin, data, "record", "status", "--json", cwd=repo).stdout)["status"]
        report["watched_directories"] = status["watched_directories"]
        pid = status["pid"]
        if only in (None, "idle", "repository"):
            time.sleep(2)  # let start-up work settle
            before = cpu_seconds(pid)
            time.sleep(idle_seconds)
            used = cpu_seconds(pid) - before
            report["idle_seconds"] = idle_seconds
            report["idle_cpu_seconds"] = round(used, 4)
            report["idle_cpu_percent_of_a_core"] = round(100 * used / idle_seconds, 4)
        if only in (None, "stop", "repository"):
            # A session's worth of events: notes and commands through the socket, and edits.
            for i in range(200):
                devtrace(bin, data, "record", "exec", "--", "true", cwd=repo)
                if i % 20 == 0:
                    devtrace(bin, data, "note", f"step {i}", cwd=repo)
            for i in range(20):
                target = repo / f"pkg000/mod{i:02d}/file00.py"
                target.write_text(target.read_text() + f"# edited {i}\n")
            deadline = time.monotonic() + 30
            while json.loads(devtrace(bin, data, "record", "status", "--json", cwd=repo).stdout)["status"]["edits"] < 20:
                if time.monotonic() > deadline:
                    raise RuntimeError("edits were not recorded")
                time.sleep(0.1)
            began = time.perf_counter()
            devtrace(bin, data, "record", "stop", cwd=repo)
            stopped = time.perf_counter() - began
            listed = json.loads(devtrace(bin, data, "sessions", "--json", cwd=repo).stdout)
            visible = time.perf_counter() - began
            assert listed and listed[0]["title"] == "bench", listed
            report["stop_s"] = round(stopped, 3)
            report["stop_to_listed_s"] = round(visible, 3)
        else:
            devtrace(bin, data, "record", "stop", cwd=repo)
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", type=Path, default=ROOT / "target" / "release" / "devtrace")
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=int, default=60)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--only", choices=["prompt", "idle", "stop", "repository"],
                        help="one benchmark (repository: idle and stop on one generated repository)")
    args = parser.parse_args()
    args.bin = args.bin.resolve()
    if not args.bin.exists():
        print(f"{args.bin} not found: cargo build --release -p devtrace-cli (or --bin)", file=sys.stderr)
        return 2
    report = {"machine": os.uname().nodename, "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    if args.only in (None, "prompt"):
        report["prompt"] = prompt(args.bin, args.commands, args.rounds)
    if args.only in (None, "idle", "stop", "repository"):
        report["repository"] = idle_and_stop(args.bin, args.files, args.idle_seconds, args.only)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
