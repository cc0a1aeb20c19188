"""App 1: a dashboard (`web`, Flask + requests) over an `orders` service (Flask + the
SQLAlchemy ORM on PostgreSQL through psycopg2), instrumented only by `opentelemetry-instrument`
(the official Flask, requests, SQLAlchemy and psycopg2 instrumentations).

Users load `GET /dashboard?limit=N` with page sizes from 5 to 40. Planted:
- repeated_calls: `orders` loads each order's customer with its own SELECT (a lazy ORM
  relationship): N queries per page. Truth: per run, the customer loads' time (measured around
  each cursor execute) minus 1.5 × their mean; the median over runs.
- failure_correlation: a limit of 30 or more fails in `orders` (its table of page shapes stops
  at 29), and the dashboard with it. The cause lives only in the URL's query (`limit=`).
  Truth: the failing runs, the smallest failing and the largest passing limit.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from corpus import Services, emit_truth, free_port, get, median, n_plus_one_saving, pg_schema

PASSING = [5, 8, 10, 12, 15, 18, 20, 22, 25, 9, 14, 16]
FAILING = [30, 35, 40, 32]


def main() -> None:
    dsn, _ = pg_schema("flask_orders")
    database_url = dsn.replace("postgres://", "postgresql+psycopg2://", 1)
    os.environ["ORDERS_DATABASE_URL"] = database_url
    from flask_orders import orders

    orders.create_schema()
    orders.engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        try:
            orders_url = services.python(
                "orders", "flask_orders.orders", free_port(), {"ORDERS_DATABASE_URL": database_url}
            )
            web_url = services.python("web", "flask_orders.web", free_port(), {"ORDERS_URL": orders_url})
            limits = PASSING[:4] + FAILING[:2] + PASSING[4:8] + FAILING[2:] + PASSING[8:]
            statuses = {limit: get(f"{web_url}/dashboard?limit={limit}") for limit in limits}
        finally:
            services.stop()
        readings = services.readings()
    failed = sorted(limit for limit, status in statuses.items() if status >= 500)
    assert failed == sorted(FAILING), f"expected the limits {FAILING} to fail, got {statuses}"
    loops = [r["durations"] for r in readings if r["problem"] == "n_plus_one"]
    assert len(loops) == len(PASSING), readings
    emit_truth(
        {
            "app": "flask_orders",
            "traces": len(limits),
            "planted": [
                {
                    "kind": "repeated_calls",
                    "operation": "GET /orders",
                    "title_contains": "customers",
                    "saving_nanos": median([n_plus_one_saving(d) for d in loops]),
                },
                {
                    "kind": "failure_correlation",
                    "attribute": "limit",
                    "failing_runs": len(FAILING),
                    "failing_edge": min(FAILING),
                    "passing_edge": max(PASSING),
                },
            ],
            "also_true": [
                {
                    "kind": "recurring_error",
                    "operation": "GET /orders",
                    "reason": "the same IndexError fails every page of 30 or more rows",
                },
                {
                    "kind": "recurring_error",
                    "operation": "GET /dashboard",
                    "reason": "the dashboard raises the 500 of every such page (raise_for_status)",
                },
                {
                    "kind": "blind_spot",
                    "operation": "GET /orders",
                    "reason": "it signs each page with a key stretched per request (PBKDF2) in "
                    "code no span covers: most of the request is its own time in every run",
                },
                {
                    "kind": "dominant_cost",
                    "operation": "GET /dashboard",
                    "reason": "the dashboard only waits for its one call to orders",
                },
            ],
            "dependent": [],
        }
    )


if __name__ == "__main__":
    sys.exit(main())
