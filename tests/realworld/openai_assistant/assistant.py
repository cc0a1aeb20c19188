"""The `assistant` service (Flask, the `openai` client). `GET /brief/<topic>` asks the model
three questions about the topic — risks, costs, timeline — each with the same handbook as the
system prompt (about 3,000 tokens, resent uncached with every call for a 60-token answer), and
awaits each answer before asking the next, though none uses another's answer."""

from __future__ import annotations

import os
import time

from flask import Flask, jsonify
from openai import OpenAI

from corpus import record

HANDBOOK = "\n".join(
    f"Section {i}: every project review covers scope, owners, budget lines, supplier terms, "
    f"acceptance criteria and the escalation path; reviewers quote the clause they rely on ({i})."
    for i in range(1, 76)
)
QUESTIONS = ("What are the main risks of {}?", "What will {} cost?", "What is the timeline of {}?")

app = Flask(__name__)
client = OpenAI(base_url=os.environ["MODEL_URL"] + "/v1", api_key="not-a-key", max_retries=0)


@app.get("/brief/<topic>")
def brief(topic: str):
    answers, durations, usage = [], [], []
    for question in QUESTIONS:
        begin = time.monotonic_ns()
        response = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": HANDBOOK},
                {"role": "user", "content": question.format(topic)},
            ],
            max_tokens=80,
        )
        durations.append(time.monotonic_ns() - begin)
        usage.append((response.usage.prompt_tokens, response.usage.completion_tokens))
        answers.append(response.choices[0].message.content)
    record(problem="llm", durations=durations, usage=usage)
    return jsonify({"topic": topic, "answers": answers})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
