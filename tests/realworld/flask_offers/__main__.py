"""App 5: a `storefront` (Flask, requests) over `catalog`, `inventory` and `pricing` (Flask),
instrumented only by `opentelemetry-instrument` (the official Flask and requests
instrumentations). Users ask `GET /offer/<user>`. Planted (storefront.py says how):
- sequential_work under `GET /offer/<user>`: the recommendation, reviews and loyalty reads,
  awaited one after another though independent. Truth: the median over runs of sum − max of
  the three (measured around each call).
- between them, the price read sends the sku the recommendation's answer chose. Bodies are not
  recorded: the trace shows the sku only in the call catalog's server side made to inventory
  (`/stock/<sku>`). The finding must leave the price read out of the group, say it may need the
  recommendation's answer, and give the saving if it proved independent (truth: sum − max of
  all four).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from corpus import Services, emit_truth, free_port, get, median

BACKEND_OPERATIONS = ["GET /recommend", "GET /reviews/<user>", "GET /stock/<sku>", "GET /price", "GET /loyalty"]
USERS = [f"u-{5100 + i}" for i in range(10)]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        services = Services(Path(tmp))
        try:
            inventory = services.python("inventory", "flask_offers.backends", free_port(), None, ["inventory"])
            catalog = services.python(
                "catalog", "flask_offers.backends", free_port(), {"INVENTORY_URL": inventory}, ["catalog"]
            )
            pricing = services.python("pricing", "flask_offers.backends", free_port(), None, ["pricing"])
            storefront = services.python(
                "storefront", "flask_offers.storefront", free_port(), {"CATALOG_URL": catalog, "PRICING_URL": pricing}
            )
            statuses = [get(f"{storefront}/offer/{user}") for user in USERS]
        finally:
            services.stop()
        readings = services.readings()
    assert statuses == [200] * len(USERS), statuses
    safe = [sum(r["independent"]) - max(r["independent"]) for r in readings]
    every = [sum(r["independent"]) + r["dependent"] - max([*r["independent"], r["dependent"]]) for r in readings]
    emit_truth(
        {
            "app": "flask_offers",
            "traces": len(USERS),
            "planted": [
                {
                    "kind": "sequential_work",
                    "operation": "GET /offer/<user>",
                    "saving_nanos": median(safe),
                    "saving_if_independent_nanos": median(every),
                    "group_size": 3,
                    "held_out": "/price",
                },
            ],
            "also_true": [
                {
                    "kind": "dominant_cost",
                    "operation": "GET /offer/<user>",
                    "reason": "the offer only waits for its four calls",
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
            "dependent": ["/price"],
        }
    )


if __name__ == "__main__":
    sys.exit(main())
