"""The `storefront` service (Flask, requests). `GET /offer/<user>`:

1. asks `catalog` for a recommendation (`/recommend?user=`); the answer's body names a sku;
2. prices that sku at `pricing` (`/price?sku=`): it sends what the first answer chose, so it
   needs that answer — which no instrumentation records (bodies are never captured);
3. reads the user's reviews from `catalog` and 4. the user's loyalty points from `pricing`:
   both need only the user, yet are awaited one after the other, after the first.

It records how long each call took, so the test knows the truth."""

from __future__ import annotations

import os
import time

import requests
from flask import Flask, jsonify

from corpus import record

CATALOG = os.environ["CATALOG_URL"]
PRICING = os.environ["PRICING_URL"]
app = Flask(__name__)
http = requests.Session()


def timed(url: str, **params) -> tuple[dict, int]:
    begin = time.monotonic_ns()
    response = http.get(url, params=params, timeout=10)
    response.raise_for_status()
    return response.json(), time.monotonic_ns() - begin


@app.get("/offer/<user>")
def offer(user: str):
    recommended, recommend_ns = timed(f"{CATALOG}/recommend", user=user)
    price, price_ns = timed(f"{PRICING}/price", sku=recommended["sku"])
    reviews, reviews_ns = timed(f"{CATALOG}/reviews/{user}")
    loyalty, loyalty_ns = timed(f"{PRICING}/loyalty", user=user)
    record(independent=[recommend_ns, reviews_ns, loyalty_ns], dependent=price_ns)
    return jsonify({"sku": recommended["sku"], "cents": price["cents"], **reviews, **loyalty})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
