"""Trials of a BEAM program that hangs in a call, stopped the ways people stop one (docs/RELIABILITY.md, "Faults").

Each trial runs `devtrace run --record --record-seconds 2 -- elixir checkout.exs` — a checkout
calling a gateway with `:infinity`, the gateway keeping the caller's `from` for an answer that
never comes — and stops it a random 1.5–6 s after it says it is charging: SIGKILL of the VM,
or SIGTERM of devtrace (sent on to the VM). The 2-second window is shorter than most of those
hangs, so the flight window must reach back for the call (docs/beam.md). The recording must
hold the call and the finding that it was never answered, its wait within 15 % of the time
the program hung (until the signal: a VM stopped by SIGTERM first stops its applications, and
the call waits until the VM kills its process). Prints one JSON line: trials, by how they were
stopped, with the finding, and the worst error of the wait.

    python bench/beam/hung_stop.py --devtrace target/release/devtrace --trials 10 --seed 71
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

PROGRAM = """
defmodule Gateway do
  use GenServer
  def start_link(_), do: GenServer.start_link(__MODULE__, [], name: __MODULE__)
  def init(pending), do: {:ok, pending}
  def charge(order), do: GenServer.call(__MODULE__, {:charge, order}, :infinity)
  def handle_call({:charge, order}, from, pending), do: {:noreply, [{from, order} | pending]}
end

{:ok, _} = Gateway.start_link([])
IO.puts("charging")
Gateway.charge("order-42")
"""


def trial(devtrace: str, work: Path, n: int, delay: float, how: str) -> dict:
    data = work / f"data-{n}"
    proc = subprocess.Popen(
        [devtrace, "--data", str(data), "run", "--record", "--record-seconds", "2", "--", "elixir", str(work / "checkout.exs")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # "charging"
    began = time.monotonic()
    time.sleep(delay)
    if how == "SIGKILL":
        subprocess.run(["pkill", "-KILL", "-f", f"beam.smp.*{work / 'checkout.exs'}"], check=False)
    else:
        proc.send_signal(signal.SIGTERM)
    hung = time.monotonic() - began
    proc.communicate(timeout=60)
    findings = json.loads(subprocess.run([devtrace, "--data", str(data), "insights", "--json"], capture_output=True, text=True, check=True).stdout)["findings"]
    found = [f for f in findings if f["kind"] == "call_timeout" and f["numbers"].get("unanswered") == 1]
    waited = found[0]["numbers"]["waited_ms"] / 1000 if found else None
    return {"how": how, "found": bool(found), "error": abs(waited - hung) / hung if waited else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devtrace", required=True)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--seed", type=int, default=71)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "checkout.exs").write_text(PROGRAM)
        results = [
            trial(args.devtrace, work, n, rng.uniform(1.5, 6.0), rng.choice(["SIGKILL", "SIGTERM"]))
            for n in range(args.trials)
        ]
    by_how = {how: [r for r in results if r["how"] == how] for how in ("SIGKILL", "SIGTERM")}
    print(json.dumps({
        "trials": len(results),
        "stopped": {how: len(rs) for how, rs in by_how.items()},
        "found": {how: sum(r["found"] for r in rs) for how, rs in by_how.items()},
        "worst_wait_error": {
            how: max((r["error"] for r in rs if r["error"] is not None), default=None) for how, rs in by_how.items()
        },
    }))


if __name__ == "__main__":
    main()
