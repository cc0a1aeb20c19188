"""A simulated LLM: answers planning prompts with JSON after a realistic delay.

TASKPLAN_LLM_LATENCY_MS sets the delay (default 120). TASKPLAN_LLM_FAULT=truncate makes it
return a reply cut off mid-string, as a model that hit its token limit does.
"""

from __future__ import annotations

import json
import os
import time

import devtrace

MODEL = "taskplan-sim-1"
SYSTEM = "You split a task into three to five concrete steps. Answer with JSON: {\"steps\": [...]}"


def _steps_for(title: str) -> list:
    return [f"Outline: {title}", f"Draft: {title}", f"Review: {title}"]


def complete(prompt: str, title: str) -> str:
    """The model's reply to a planning prompt, recorded as an LLM call."""
    with devtrace.llm_call("plan.llm", model=MODEL, provider="simulated", system=SYSTEM, prompt=prompt, max_tokens=256) as call:
        time.sleep(int(os.environ.get("TASKPLAN_LLM_LATENCY_MS", "120")) / 1000)
        reply = json.dumps({"steps": _steps_for(title)})
        finish = "stop"
        if os.environ.get("TASKPLAN_LLM_FAULT") == "truncate":
            reply, finish = reply[:30], "length"
        call.record_response(
            reply,
            input_tokens=(len(SYSTEM) + len(prompt)) // 4,
            output_tokens=max(len(reply) // 4, 1),
            finish_reasons=[finish],
        )
        return reply
