"""App 4: an `assistant` (Flask, the `openai` client) over a local `model` server speaking the
Chat Completions API, instrumented only by `opentelemetry-instrument` (the official Flask and
OpenAI — opentelemetry-instrumentation-openai-v2 — instrumentations; no message content is
captured, the default). Users ask `GET /brief/<topic>`. Planted (assistant.py says how):
- token_waste on the chat call: the same ~3,000-token handbook resent uncached as the system
  prompt of every call, for 60-token answers. Without captured content the trace shows it as
  input far beyond output. Truth: per run, the calls' (mean input − 20 × mean output) × calls
  per run, from the usage the model reported (docs/analysis.md, token_waste (a)).
- sequential_work under `GET /brief/<topic>`: the three questions, asked one after another
  though none uses another's answer. Truth: the median over runs of sum − max of the three
  (measured around each call).

No lock or queue wait is planted: none of these instrumentations records one (a wait is
visible to devtrace only as wait events or lock spans, which no official instrumentation here
emits).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from corpus import Services, emit_truth, free_port, get, median

TOPICS = ["apollo", "borealis", "cascade", "delta", "ember", "fjord", "granite", "harbor"]
NORMAL_RATIO = 20  # token_waste (a): input beyond 20 × output is waste


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        try:
            model = services.start("model", [sys.executable, "-m", "openai_assistant.model"], free_port(), Path.cwd())
            assistant = services.python("assistant", "openai_assistant.assistant", free_port(), {"MODEL_URL": model})
            statuses = [get(f"{assistant}/brief/{topic}") for topic in TOPICS]
        finally:
            services.stop()
        readings = services.readings()
    assert statuses == [200] * len(TOPICS), statuses
    calls = [u for r in readings for u in r["usage"]]
    mean_in = statistics.fmean(i for i, _ in calls)
    mean_out = statistics.fmean(o for _, o in calls)
    emit_truth(
        {
            "app": "openai_assistant",
            "traces": len(TOPICS),
            "planted": [
                {
                    "kind": "token_waste",
                    "operation": "chat gpt-4o-mini",
                    "tokens_per_run": (mean_in - NORMAL_RATIO * mean_out) * len(calls) / len(TOPICS),
                },
                {
                    "kind": "sequential_work",
                    "operation": "GET /brief/<topic>",
                    "saving_nanos": median([sum(r["durations"]) - max(r["durations"]) for r in readings]),
                    "group_size": 3,
                },
            ],
            "also_true": [
                {
                    "kind": "dominant_cost",
                    "operation": "GET /brief/<topic>",
                    "reason": "a brief is nothing but its three model calls",
                },
            ],
            "dependent": [],
        }
    )


if __name__ == "__main__":
    sys.exit(main())
