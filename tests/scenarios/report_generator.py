"""Scenario: a monthly report generator.

`report.generate` (service `reports`) resolves the period, reads sales and costs from the
reporting database one query after the other (both only need the period, which the job was
given), fetches exchange rates over HTTP, draws six charts (the program's own code), and marks
the report done with an UPDATE that often waits for a row lock held by other writers: the
database client records "Waiting for lock behind N transactions" and "Acquired lock" as events
on the query span.

Planted problems:
- blind_spot on `totals.compute`: 63 of its 130 ms (48 %) are its own code between a query and
  an HTTP call, in every run; the old rule (over half the duration) missed it.
- sequential_work under `report.generate`: the two queries are independent reads of the same
  database, one after another; the saving is the median over runs of the shorter one.
- lock_contention: the UPDATE waits for its row lock; the time lost per run is the wait
  between the two events.
Built to be clean: `charts.render` (an internal loop of `chart.draw`), `period.resolve`.
"""

from __future__ import annotations

import argparse
import random

from opentelemetry.trace import SpanKind

from sim import MS, Run, Services, emit_truth, jitter, median, start_of_runs


def one_run(services: Services, start: int, rng: random.Random, n: int) -> dict:
    run = Run(services, start)
    period = f"2026-{(n % 12) + 1:02d}"
    with run.span("report.generate", "reports", attributes={"report.period": period}):
        with run.span("period.resolve", "reports"):
            run.work(jitter(rng, 3))
        reads = []
        for table, ms in (("sales", 420), ("costs", 260)):
            begin = run.now
            run.call(
                f"SELECT {table}",
                "reports",
                jitter(rng, ms),
                **{
                    "db.system.name": "postgresql",
                    "db.namespace": "reporting",
                    "server.address": "reporting-db.internal",
                    "db.query.text": f"SELECT region, SUM(amount) FROM {table} WHERE period = $1 GROUP BY region",
                },
            )
            reads.append(run.now - begin)
        run.work(1)
        run.call(
            "GET",
            "reports",
            jitter(rng, 120),
            **{
                "http.request.method": "GET",
                "url.full": f"https://fx.internal/v1/rates?period={period}",
                "server.address": "fx.internal",
            },
        )
        # Totals per region: the program's own arithmetic between a budget query and an FX
        # lookup, 63 of 130 ms in no child span — the old 50 % rule's near miss (48 %).
        with run.span("totals.compute", "reports"):
            run.work(20)
            run.call(
                "SELECT budgets",
                "reports",
                35,
                **{
                    "db.system.name": "postgresql",
                    "db.namespace": "reporting",
                    "server.address": "reporting-db.internal",
                    "db.query.text": "SELECT region, budget FROM budgets WHERE period = $1",
                },
            )
            run.work(23)
            run.call(
                "GET",
                "reports",
                32,
                **{
                    "http.request.method": "GET",
                    "url.full": f"https://fx.internal/v1/targets?period={period}",
                    "server.address": "fx.internal",
                },
            )
            run.work(20)
        with run.span("charts.render", "reports"):
            for chart in range(6):
                with run.span("chart.draw", "reports", attributes={"chart.index": chart}):
                    run.work(jitter(rng, 35))
        with run.span(
            "UPDATE reports",
            "reports",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.namespace": "reporting",
                "db.query.text": "UPDATE reports SET status = 'done' WHERE period = $1",
            },
        ) as update:
            run.work(2)
            waiting = rng.random() < 0.8
            wait = 0
            if waiting:
                behind = rng.randint(1, 4)
                update.add_event(
                    f"Waiting for lock behind {behind} transactions", timestamp=run.now
                )
                wait = int(jitter(rng, 600, 0.3) * MS)
                run.now += wait
                update.add_event("Acquired lock", timestamp=run.now)
            run.work(jitter(rng, 8))
    return {"sequential_saving": sum(reads) - max(reads), "wait": wait}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    rng = random.Random(5)
    services = Services("reports")
    start = start_of_runs(args.runs)
    truths = [one_run(services, start + i * 20_000 * MS, rng, i) for i in range(args.runs)]
    services.shutdown()
    waits = [t["wait"] for t in truths if t["wait"] > 0]
    emit_truth(
        {
            "traces": args.runs,
            "planted": [
                {
                    "kind": "sequential_work",
                    "operation": "report.generate",
                    "saving_nanos": median([t["sequential_saving"] for t in truths]),
                    "group_size": 2,
                },
                {
                    "kind": "lock_contention",
                    "operation": None,
                    "title_contains": "UPDATE reports",
                    "saving_nanos": sum(waits) / len(waits),
                },
                {
                    "kind": "blind_spot",
                    "operation": "totals.compute",
                    "own_share": 63 / 130,
                },
            ],
            "clean": [
                {"operation": "charts.render"},
                {"operation": "chart.draw"},
                {"operation": "period.resolve"},
            ],
        }
    )


if __name__ == "__main__":
    main()
