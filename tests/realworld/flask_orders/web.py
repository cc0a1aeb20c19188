"""The `web` service: Flask, calling `orders` with requests. `GET /dashboard?limit=N` passes
the page size on; an error from `orders` is raised (raise_for_status) and fails the page."""

from __future__ import annotations

import os

import requests
from flask import Flask, jsonify, request

ORDERS = os.environ["ORDERS_URL"]
app = Flask(__name__)
http = requests.Session()


@app.get("/dashboard")
def dashboard():
    limit = request.args.get("limit", "10")
    response = http.get(f"{ORDERS}/orders", params={"limit": limit}, timeout=10)
    response.raise_for_status()
    orders = response.json()["orders"]
    return jsonify({"orders": len(orders), "total": sum(o["total"] for o in orders)})


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
