"""App 2: a quote `gateway` (FastAPI, asyncio, httpx.AsyncClient) over `accounts` and `catalog`
(FastAPI), instrumented only by `opentelemetry-instrument` (the official FastAPI/ASGI and httpx
instrumentations). Users ask `GET /quote/{user}`. Planted (gateway.py says how):
- sequential_work under `GET /quote/{user}`: the user, prices and stock reads, awaited one after
  another though independent. Truth: the median over runs of sum − max of the three (measured
  around each await). The cart read that follows sends the cart id the user read returned:
  it depends on it and must not be grouped.
- concurrency_limit under `GET /quote/{user}`: six score reads through a semaphore of two,
  started 2 ms apart. Truth: the median over runs of the phase (first start to last end) minus
  the longest read (what one slot per call would take).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from corpus import Services, emit_truth, free_port, get, median

BACKEND_OPERATIONS = ["GET /users/{user}", "GET /prices", "GET /stock", "GET /carts/{cart}", "GET /scores/{i}"]
USERS = [f"u-{4100 + i}" for i in range(10)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        try:
            capture = {"OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": "x-cart-id"}
            accounts = services.python("accounts", "fastapi_quotes.backends", free_port(), capture, ["accounts"])
            catalog = services.python("catalog", "fastapi_quotes.backends", free_port(), None, ["catalog"])
            gateway = services.python(
                "gateway", "fastapi_quotes.gateway", free_port(), {"ACCOUNTS_URL": accounts, "CATALOG_URL": catalog}
            )
            statuses = [get(f"{gateway}/quote/{user}") for user in USERS]
        finally:
            services.stop()
        readings = services.readings()
    assert statuses == [200] * len(USERS), statuses
    sequential = [sum(r["durations"]) - max(r["durations"]) for r in readings if r["problem"] == "sequential"]
    pool = [r["phase"] - r["longest"] for r in readings if r["problem"] == "pool"]
    emit_truth(
        {
            "app": "fastapi_quotes",
            "traces": len(USERS),
            "planted": [
                {
                    "kind": "sequential_work",
                    "operation": "GET /quote/{user}",
                    "saving_nanos": median(sequential),
                    "group_size": 3,
                },
                {
                    "kind": "concurrency_limit",
                    "operation": "GET /quote/{user}",
                    "saving_nanos": median(pool),
                },
            ],
            "also_true": [
                {
                    "kind": "dominant_cost",
                    "operation": "GET /quote/{user}",
                    "reason": "the six score reads are over half of every quote",
                },
                *(
                    {
                        "kind": "blind_spot",
                        "operation": operation,
                        "reason": "the backends do their work (a sleep standing for it) in their own code",
                    }
                    for operation in BACKEND_OPERATIONS
                ),
            ],
            "dependent": ["/carts/"],
        }
    )


if __name__ == "__main__":
    sys.exit(main())
