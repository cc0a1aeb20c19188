#!/usr/bin/env python3
"""QA queue benchmark: the queue's overhead per job and a backlog of 100 sessions.

    bench/qa-queue.py [--devtrace target/release/devtrace] [--sessions 100] [--workers 2]
                      [--runner sandbox] [--idle-jobs 20] [--test-image IMAGE]

1. Makes a small git repository (a node project: three tests, one failing at the base commit)
   and starts `devtrace serve --qa-workers N` on a fresh data directory.
2. Queue overhead: with the workers idle, queues one job at a time through the REST API
   (POST /api/v1/sessions/{id}/qa) and waits for it; enqueue → start is the job's
   started_unix_nano − enqueued_unix_nano (both stamped by the store in the same process).
3. Backlog: posts N sessions of that repository, queues them all at once, and times until the
   last is done; then averages each step's time over the jobs (fetch, checkout, apply, base
   run, patched run, judges) to say what dominates.

Prints a Markdown summary for docs/PERFORMANCE.md. Standard library only.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

CART = """function total(items) {
  return items.reduce((sum, item) => sum + item.price, 1);
}
function count(items) { return items.length; }
function empty(items) { return items.length === 0; }
module.exports = { total, count, empty };
"""
TESTS = """const test = require('node:test');
const assert = require('node:assert');
const { total, count, empty } = require('../cart.js');
test('total sums prices', () => assert.strictEqual(total([{ price: 2 }, { price: 3 }]), 5));
test('count counts items', () => assert.strictEqual(count([{ price: 2 }]), 1));
test('empty is empty', () => assert.strictEqual(empty([]), true));
"""


def git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@example.invalid",
               GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.invalid")
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def make_repository(repo):
    (repo / "test").mkdir(parents=True)
    (repo / "cart.js").write_text(CART)
    (repo / "test" / "cart.test.js").write_text(TESTS)
    git(repo, "init", "--quiet")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "cart")
    commit = git(repo, "rev-parse", "HEAD")
    (repo / "cart.js").write_text(CART.replace("item.price, 1)", "item.price, 0)"))
    patch = git(repo, "diff") + "\n"
    git(repo, "checkout", "--quiet", "--", ".")
    return commit, patch


def call(base, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def session(repo, commit, patch, test_image=None):
    ident = str(uuid.uuid4())
    task = {"description": "Fix the cart total", "repository": str(repo), "commit": commit,
            "test_command": "node --test"}
    if test_image:
        task["test_image"] = test_image
    return ident, {
        "trace_id": ident, "version": "trace-1.0.0",
        "task": task,
        "events": [
            {"t": "2026-01-05T10:00:00Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 1},
            {"t": "2026-01-05T10:00:05Z", "type": "file_opened", "file_path": "cart.js"},
            {"t": "2026-01-05T10:00:09Z", "type": "edit", "file_path": "cart.js"},
            {"t": "2026-01-05T10:00:15Z", "type": "terminal_command", "cmd": "node --test", "exit_code": 0},
        ],
        "artifacts": {"final_patch": patch},
    }


def wait_done(base, job_ids, timeout):
    deadline = time.time() + timeout
    pending = set(job_ids)
    jobs = {}
    while pending:
        if time.time() > deadline:
            sys.exit(f"timed out with {len(pending)} jobs unfinished")
        listing = call(base, "GET", "/api/v1/qa/jobs?limit=500")
        for job in listing["jobs"]:
            if job["id"] in pending and job["state"] not in ("queued", "running"):
                pending.discard(job["id"])
                jobs[job["id"]] = job
        if pending:
            time.sleep(0.05)
    return jobs


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devtrace", default=str(REPO_ROOT / "target/release/devtrace"))
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runner", default="sandbox")
    parser.add_argument("--idle-jobs", type=int, default=20)
    parser.add_argument("--test-image", help="task.test_image of every session (the docker and podman runners need one)")
    args = parser.parse_args()
    if not Path(args.devtrace).exists():
        sys.exit(f"{args.devtrace} is missing: cargo build --release -p devtrace-cli")

    work = Path(tempfile.mkdtemp(prefix="devtrace-qa-bench-", dir=os.environ.get("BENCH_TMP")))
    data, repo = work / "data", work / "repo"
    commit, patch = make_repository(repo)
    server = subprocess.Popen(
        [args.devtrace, "--data", str(data), "serve", "--grpc-listen", "127.0.0.1:0",
         "--http-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
         "--qa-workers", str(args.workers), "--qa-runner", args.runner],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(400):
            try:
                info = json.loads((data / "serve.json").read_text())
                if info["pid"] == server.pid:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.05)
        else:
            sys.exit("devtrace serve did not start")
        base = f"http://{info['api']}"

        # 1. Queue overhead with idle workers (the first job also fills the clone cache).
        overhead = []
        for i in range(args.idle_jobs + 1):
            ident, doc = session(repo, commit, patch, args.test_image)
            call(base, "POST", "/api/v1/sessions", doc)
            queued = call(base, "POST", f"/api/v1/sessions/{ident}/qa", {})
            job = wait_done(base, [queued["job"]["id"]], 120)[queued["job"]["id"]]
            if i > 0:
                overhead.append((job["started_unix_nano"] - job["enqueued_unix_nano"]) / 1e6)

        # 2. The backlog.
        idents = []
        for _ in range(args.sessions):
            ident, doc = session(repo, commit, patch, args.test_image)
            call(base, "POST", "/api/v1/sessions", doc)
            idents.append(ident)
        started = time.time()
        job_ids = [call(base, "POST", f"/api/v1/sessions/{ident}/qa", {})["job"]["id"] for ident in idents]
        enqueue_s = time.time() - started
        jobs = wait_done(base, job_ids, 3600)
        wall = time.time() - started
        results = [call(base, "GET", f"/api/v1/qa/jobs/{i}")["result"] for i in job_ids]
    finally:
        server.terminate()
        server.wait(timeout=30)

    verdicts = {}
    for r in results:
        verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
    steps = ["fetch_ms", "checkout_ms", "apply_ms", "base_run_ms", "patched_run_ms", "judge_ms", "load_ms"]
    means = {s: statistics.mean(r["timings"][s] for r in results) for s in steps}
    total = statistics.mean(r["timings"]["total_ms"] for r in results)
    attempts = sum(j["attempts"] for j in jobs.values())
    image = f" (image {args.test_image})" if args.test_image else ""
    print(f"runner {args.runner}{image}, {args.workers} workers, devtrace {args.devtrace}")
    print(f"queue overhead (enqueue → start, idle workers, {len(overhead)} jobs): "
          f"median {statistics.median(overhead):.1f} ms, p95 {percentile(overhead, 95):.1f} ms, max {max(overhead):.1f} ms")
    print(f"backlog: {args.sessions} sessions queued in {enqueue_s:.2f} s, all done in {wall:.1f} s "
          f"({wall / args.sessions:.2f} s per job of wall time, {args.sessions / wall * 60:.0f} jobs/min); "
          f"verdicts {verdicts}; attempts {attempts}")
    print(f"per job (mean of {len(results)}): total {total:.0f} ms")
    print("| step | mean ms | share |")
    print("|---|---:|---:|")
    for s in sorted(steps, key=lambda s: -means[s]):
        print(f"| {s.removesuffix('_ms')} | {means[s]:.0f} | {means[s] / total * 100:.0f} % |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
