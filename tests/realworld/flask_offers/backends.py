"""The `catalog`, `inventory` and `pricing` services (Flask): reads that take a fixed time.

`catalog` answers `GET /recommend?user=` with a sku it picks for the user, after asking
`inventory` whether it is in stock (`GET /stock/<sku>`, with requests): that call is the only
place the trace shows the sku before the storefront sends it on. It also answers
`GET /reviews/<user>`. `pricing` answers `GET /price?sku=` and `GET /loyalty?user=`."""

from __future__ import annotations

import os
import sys
import time
import zlib

import requests
from flask import Flask, jsonify, request

RECOMMEND_MS, STOCK_MS, PRICE_MS, REVIEWS_MS, LOYALTY_MS = 30, 15, 50, 40, 35

catalog = Flask("catalog")
inventory = Flask("inventory")
pricing = Flask("pricing")
http = requests.Session()


@catalog.get("/recommend")
def recommend():
    user = request.args["user"]
    time.sleep(RECOMMEND_MS / 1000)
    sku = f"sku-{zlib.crc32(user.encode()) % 9000 + 1000}"
    http.get(f"{os.environ['INVENTORY_URL']}/stock/{sku}", timeout=10).raise_for_status()
    return jsonify({"sku": sku})


@catalog.get("/reviews/<user>")
def reviews(user: str):
    time.sleep(REVIEWS_MS / 1000)
    return jsonify({"reviews": 3})


@inventory.get("/stock/<sku>")
def stock(sku: str):
    time.sleep(STOCK_MS / 1000)
    return jsonify({"sku": sku, "in_stock": True})


@pricing.get("/price")
def price():
    time.sleep(PRICE_MS / 1000)
    return jsonify({"sku": request.args["sku"], "cents": 2499})


@pricing.get("/loyalty")
def loyalty():
    time.sleep(LOYALTY_MS / 1000)
    return jsonify({"points": 120})


if __name__ == "__main__":
    app = {"catalog": catalog, "inventory": inventory, "pricing": pricing}[sys.argv[1]]
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]), threaded=True)
