"""The `accounts` and `catalog` services (FastAPI): reads that take a fixed time each.

`accounts` answers `GET /users/{user}` with the user's open cart in an `X-Cart-Id` header, which
its server instrumentation records (OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE).
`catalog` answers prices, stock, a cart's contents and risk scores."""

from __future__ import annotations

import asyncio
import os
import sys
import zlib

import uvicorn
from fastapi import FastAPI, Response

accounts = FastAPI()
catalog = FastAPI()

USER_MS, PRICES_MS, STOCK_MS, CART_MS = 30, 40, 25, 20
SCORE_MS = (34, 48, 30, 52, 38, 44)


@accounts.get("/users/{user}")
async def user(user: str, response: Response):
    await asyncio.sleep(USER_MS / 1000)
    response.headers["X-Cart-Id"] = f"cart-{zlib.crc32(user.encode()) % 90000 + 10000}"
    return {"user": user, "tier": "gold"}


@catalog.get("/prices")
async def prices(user: str):
    await asyncio.sleep(PRICES_MS / 1000)
    return {"user": user, "cents": [1999, 2999]}


@catalog.get("/stock")
async def stock(user: str):
    await asyncio.sleep(STOCK_MS / 1000)
    return {"user": user, "in_stock": True}


@catalog.get("/carts/{cart}")
async def cart(cart: str):
    await asyncio.sleep(CART_MS / 1000)
    return {"cart": cart, "items": 2}


@catalog.get("/scores/{i}")
async def score(i: int):
    await asyncio.sleep(SCORE_MS[i] / 1000)
    return {"i": i, "score": 0.1 * i}


if __name__ == "__main__":
    app = {"accounts": accounts, "catalog": catalog}[sys.argv[1]]
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
