"""Scenario: an agent backend answering questions with an LLM and two tools.

`POST /agent/ask` (service `agent-api`) checks a response cache (a miss raises `KeyError`,
which the code catches: the span ends fine), asks the model for a plan, runs the tools the plan
names — a document search over HTTP and an order lookup in the database, with the order id the
plan returned — then asks the model for the answer with everything the tools returned pasted
into the prompt.

Planted problems:
- token_waste on `chat answer`: the answer's prompt carries the whole retrieved document set,
  22,400 tokens on average, of which the answer needs about 2,400 (the passage it quotes): the
  tokens recoverable per run are the difference.
- recurring_error on `tool.lookup_order`: the lookup times out in the runs whose order has
  more than 400 lines (the request fails).
- failure_correlation for that error: `tool.lookup_order.order.lines` separates the failing
  runs (smallest failing value) from the passing ones (largest passing value).
Built to be clean: plan → tools → answer is a dependent chain (no sequential_work on
`POST /agent/ask`), and the handled cache misses are never a failure.
"""

from __future__ import annotations

import argparse
import random

from opentelemetry.trace import SpanKind

from sim import MS, Run, Services, emit_truth, fail, jitter, start_of_runs

RUNS = 14


def one_run(services: Services, start: int, rng: random.Random, n: int, lines: int) -> dict:
    run = Run(services, start)
    order = f"ord_{55_000 + n * 13}"
    failed = lines > 400
    with run.span(
        "POST /agent/ask",
        "agent-api",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "http.route": "/agent/ask"},
    ) as root:
        with run.span("cache.get", "agent-api", attributes={"cache.key": f"q:{n}"}) as cache:
            run.work(0.4)
            # A miss: raised and caught by the caller's own code.
            fail(cache, "KeyError", f"'q:{n}'", run.now, escaped=False)
        with run.span(
            "chat plan",
            "agent-api",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1_150 + n,
                "gen_ai.usage.output_tokens": 90,
            },
        ) as plan:
            run.work(jitter(rng, 700))
            plan.set_attribute(
                "gen_ai.completion", f'{{"tools": ["search_docs", "lookup_order"], "order": "{order}"}}'
            )
        run.call(
            "tool.search_docs",
            "agent-api",
            jitter(rng, 85),
            **{
                "http.request.method": "GET",
                "url.full": "https://docs.internal/v1/search?q=refund+policy",
                "server.address": "docs.internal",
            },
        )
        with run.span(
            "tool.lookup_order",
            "agent-api",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": f"SELECT * FROM order_lines WHERE order_id = '{order}'",
                "order.lines": lines,
            },
        ) as lookup:
            if failed:
                run.work(2_000)
                fail(lookup, "TimeoutError", "canceling statement due to statement timeout", run.now)
            else:
                run.work(jitter(rng, 30 + lines * 0.2))
        if failed:
            fail(root, "TimeoutError", "canceling statement due to statement timeout", run.now)
            return {"failed": True, "lines": lines}
        document_tokens = int(rng.uniform(19_400, 20_600))
        run.call(
            "chat answer",
            "agent-api",
            jitter(rng, 2_400),
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": document_tokens + 2_400,
                "gen_ai.usage.output_tokens": 160,
                "gen_ai.prompt": f"Order {order}: see the documents below.",
            },
        )
    return {"failed": False, "lines": lines, "recoverable_tokens": document_tokens}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    rng = random.Random(11)
    services = Services("agent-api")
    start = start_of_runs(args.runs)
    # Order sizes: most small, four over the limit.
    sizes = [rng.randint(20, 180) for _ in range(args.runs)]
    for i in (2, 6, 9, 12):
        if i < args.runs:
            sizes[i] = rng.randint(420, 900)
    truths = [
        one_run(services, start + i * 20_000 * MS, rng, i, sizes[i]) for i in range(args.runs)
    ]
    services.shutdown()
    failing = [t["lines"] for t in truths if t["failed"]]
    passing = [t["lines"] for t in truths if not t["failed"]]
    recoverable = [t["recoverable_tokens"] for t in truths if not t["failed"]]
    emit_truth(
        {
            "traces": args.runs,
            "planted": [
                {
                    "kind": "token_waste",
                    "operation": "chat answer",
                    "tokens_per_run": sum(recoverable) / len(recoverable),
                },
                {
                    "kind": "recurring_error",
                    "operation": "tool.lookup_order",
                    "failing_runs": len(failing),
                },
                {
                    "kind": "failure_correlation",
                    "operation": "tool.lookup_order",
                    "attribute": "order.lines",
                    "failing_edge": min(failing),
                    "passing_edge": max(passing),
                },
            ],
            # The plan → tools → answer chain depends on itself: nothing to run concurrently.
            "clean": [{"kind": "sequential_work", "operation": "POST /agent/ask"}],
            "handled": ["cache.get"],
        }
    )


if __name__ == "__main__":
    main()
