"""Trials of a BEAM service stopped the way releases are: SIGTERM (docs/RELIABILITY.md, "Faults").

Each trial runs `devtrace run --record -- elixir service.exs` — a job queue GenServer under a
supervisor and worker loops calling it, running until stopped — and sends `devtrace run`
SIGTERM a random 0.3–2.0 s after the service says it is serving. The VM stops as `init:stop`
does (its applications, then every process left killed). Nothing failed, so the recording must
hold no error span and no `restart_loop` finding, and the workers' last calls must be open (they
were running when the VM stopped). Prints one JSON line: the trials, the runs with errors or a
restart loop, and the runs whose workers were recorded open.

    python bench/beam/graceful_stop.py --devtrace target/debug/devtrace --trials 20 --seed 62
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SERVICE = """
defmodule Jobs do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, :queue.new(), name: __MODULE__)
  def init(q), do: (:timer.send_interval(10, :tick); {:ok, q})
  def handle_info(:tick, q), do: {:noreply, :queue.in(System.unique_integer(), q)}
  def take, do: GenServer.call(__MODULE__, :take)
  def handle_call(:take, _from, q) do
    case :queue.out(q) do
      {{:value, job}, q} -> {:reply, job, q}
      {:empty, q} -> {:reply, nil, q}
    end
  end
end

defmodule Worker do
  def run, do: (Jobs.take(); Process.sleep(5); run())
end

{:ok, _} = Supervisor.start_link([Jobs], strategy: :one_for_one)
for _ <- 1..2, do: spawn(&Worker.run/0)
IO.puts("serving")
Process.sleep(:infinity)
"""


def trial(devtrace: str, work: Path, n: int, delay: float) -> dict:
    data = work / f"data-{n}"
    proc = subprocess.Popen(
        [devtrace, "--data", str(data), "run", "--record", "--", "elixir", str(work / "service.exs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "serving"
    time.sleep(delay)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    runs = json.loads(subprocess.run([devtrace, "--data", str(data), "ls", "--json"], capture_output=True, text=True, check=True).stdout)
    runs = runs["traces"] if isinstance(runs, dict) else runs
    trace = json.loads(subprocess.run([devtrace, "--data", str(data), "show", runs[0]["trace_id"], "--json"], capture_output=True, text=True, check=True).stdout)
    findings = json.loads(subprocess.run([devtrace, "--data", str(data), "insights", "--json"], capture_output=True, text=True, check=True).stdout)["findings"]
    errors = [s["name"] for s in trace["spans"] if s["status"]["code"] == "error"]
    workers = {s["attributes"]["thread.name"] for s in trace["spans"] if s["name"] == "Worker.run/0"}
    open_workers = {
        s["attributes"]["thread.name"] for s in trace["spans"]
        if s["name"].startswith("process ") and s["attributes"].get("thread.name") in workers
        and s["attributes"].get("devtrace.recorder.open") is True
    }
    return {
        "errors": errors,
        "restart_loop": any(f["kind"] == "restart_loop" for f in findings),
        "workers": len(workers),
        "workers_open": len(open_workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devtrace", required=True)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=62)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "service.exs").write_text(SERVICE)
        results = [trial(args.devtrace, work, n, rng.uniform(0.3, 2.0)) for n in range(args.trials)]
    print(json.dumps({
        "trials": len(results),
        "runs_with_errors": sum(bool(r["errors"]) for r in results),
        "runs_with_a_restart_loop": sum(r["restart_loop"] for r in results),
        "runs_with_both_workers_open": sum(r["workers"] == 2 and r["workers_open"] == 2 for r in results),
        "error_spans": sorted({e for r in results for e in r["errors"]}),
    }))


if __name__ == "__main__":
    main()
