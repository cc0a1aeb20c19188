"""App 3: an `api` (Express, pg, Node's fetch) over `inventory` (Express), instrumented only by
`@opentelemetry/auto-instrumentations-node` (its `register`: the NodeSDK with the OTLP/HTTP
exporter, and the http, express, pg and undici instrumentations among the defaults).

Users ask `GET /orders/:id/summary` and `GET /reports/:year`. Planted (api.js says how):
- repeated_calls under `GET /orders/:id/summary`: one products query per order line (8).
  Truth: per run, the product loads' time (measured around each `client.query`) minus 1.5 ×
  their mean; the median over runs.
- sequential_work under `GET /orders/:id/summary`: the stock, shipping and loyalty fetches,
  awaited one after another though each needs only the order id. Truth: the median over runs
  of sum − max of the three (measured around each fetch).
- concurrency_limit under `GET /regions/totals`: six region sums started at once through a pool
  of two connections. Truth: the median over runs of the phase (first query start to last end)
  minus the longest query.
- lock_contention (a queue wait) under `GET /regions/totals`: the queries waiting for one of
  the pool's two connections, each wait recorded by the pg-pool instrumentation as its
  `pg-pool.connect` span — the way real instrumentation records a pool wait (no official
  instrumentation records wait events). Truth: the mean over runs of the waits' sum.
- failure_correlation under `GET /reports/:year`: a year without its sales table (2025 and
  later) fails. The cause lives only in a path segment. Truth: the failing runs, the smallest
  failing and the largest passing year.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import psycopg2

from corpus import Services, emit_truth, free_port, get, median, n_plus_one_saving, pg_schema

HERE = Path(__file__).resolve().parent
# Express's instrumentation puts each route's handler in a span of its own, under the server
# span: the calls it makes are that span's children.
HANDLER = "request handler - /orders/:id/summary"
ORDERS = [f"ord-{7300 + i}" for i in range(8)]
LINES_PER_ORDER = 8
PASSING_YEARS = [2018, 2019, 2020, 2021, 2022, 2023, 2024]
FAILING_YEARS = [2025, 2026, 2027]
REGION_RUNS = 6


def create_schema(dsn: str) -> None:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE products (id int PRIMARY KEY, name text, price_cents int)")
        cur.execute("CREATE TABLE order_lines (id serial PRIMARY KEY, order_id text, product_id int)")
        cur.executemany(
            "INSERT INTO products VALUES (%s, %s, %s)", [(i, f"product {i}", 100 * i) for i in range(1, 65)]
        )
        cur.executemany(
            "INSERT INTO order_lines (order_id, product_id) VALUES (%s, %s)",
            [(order, n * LINES_PER_ORDER + k + 1) for n, order in enumerate(ORDERS) for k in range(LINES_PER_ORDER)],
        )
        for year in PASSING_YEARS:
            cur.execute(f"CREATE TABLE sales_{year} (total_cents bigint)")
            cur.execute(f"INSERT INTO sales_{year} VALUES (100000), ({year})")


def main() -> None:
    dsn, _ = pg_schema("express_shop")
    create_schema(dsn)
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        try:
            inventory = services.node("inventory", HERE, "inventory.js", free_port())
            api = services.node("api", HERE, "api.js", free_port(), {"INVENTORY_URL": inventory, "DATABASE_URL": dsn})
            summaries = [get(f"{api}/orders/{order}/summary") for order in ORDERS]
            totals = [get(f"{api}/regions/totals") for _ in range(REGION_RUNS)]
            years = PASSING_YEARS[:3] + FAILING_YEARS[:1] + PASSING_YEARS[3:5] + FAILING_YEARS[1:] + PASSING_YEARS[5:]
            reports = {year: get(f"{api}/reports/{year}") for year in years}
        finally:
            services.stop()
        readings = services.readings()
    assert summaries == [200] * len(ORDERS), summaries
    assert totals == [200] * REGION_RUNS, totals
    failed = sorted(year for year, status in reports.items() if status >= 500)
    assert failed == FAILING_YEARS, reports
    loops = [r["durations"] for r in readings if r["problem"] == "n_plus_one"]
    reads = [r["durations"] for r in readings if r["problem"] == "sequential"]
    pools = [r for r in readings if r["problem"] == "pool"]
    emit_truth(
        {
            "app": "express_shop",
            "traces": len(ORDERS) + REGION_RUNS + len(years),
            "planted": [
                {
                    "kind": "repeated_calls",
                    "operation": HANDLER,
                    "title_contains": "products",
                    "saving_nanos": median([n_plus_one_saving(d) for d in loops]),
                },
                {
                    "kind": "sequential_work",
                    "operation": HANDLER,
                    "saving_nanos": median([sum(d) - max(d) for d in reads]),
                    "group_size": 3,
                },
                {
                    "kind": "concurrency_limit",
                    "operation": "request handler - /regions/totals",
                    "saving_nanos": median([r["phase"] - r["longest"] for r in pools]),
                },
                {
                    "kind": "lock_contention",
                    "saving_nanos": sum(r["wait"] for r in pools) / len(pools),
                },
                {
                    "kind": "failure_correlation",
                    "attribute": "year",
                    "failing_runs": len(FAILING_YEARS),
                    "failing_edge": min(FAILING_YEARS),
                    "passing_edge": max(PASSING_YEARS),
                },
            ],
            "also_true": [
                {
                    "kind": "recurring_error",
                    "operation": "request handler",
                    "reason": "the reports handler's query fails for every year without a table",
                },
                {
                    "kind": "recurring_error",
                    "operation": "pg.query:SELECT devtrace",
                    "reason": "the query itself fails: relation sales_YEAR does not exist",
                },
                *(
                    {
                        "kind": "dominant_cost",
                        "operation": operation,
                        "reason": "Express's middleware span wraps all of the handler's time",
                    }
                    for operation in ("GET /orders/:id/summary", "GET /regions/totals", "GET /reports/:year")
                ),
            ],
            "dependent": [],
            "background": {"dns.lookup": "pg resolves the database host when the pool opens a connection"},
        }
    )


if __name__ == "__main__":
    sys.exit(main())
