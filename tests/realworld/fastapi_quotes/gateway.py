"""The `gateway` service (FastAPI, httpx.AsyncClient). `GET /quote/{user}`:

1. reads the user from `accounts`, whose answer names the user's cart (`X-Cart-Id`);
2. reads prices and 3. stock from `catalog` — both need only the user, yet are awaited one
   after the other (with 1, the sequential work);
4. reads the cart the first answer named: it sends a value an earlier call returned, so it
   depends on call 1 and must never be grouped with it;
5. scores six risk signals through a semaphore of two, each task starting a couple of
   milliseconds after the previous one, as real clients do (the pool limit)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import uvicorn
from fastapi import FastAPI

from corpus import record

ACCOUNTS = os.environ["ACCOUNTS_URL"]
CATALOG = os.environ["CATALOG_URL"]
SCORES = 6
POOL = 2

app = FastAPI()
client = httpx.AsyncClient(timeout=10)


async def timed(url: str, **kwargs) -> tuple[httpx.Response, int, int]:
    begin = time.monotonic_ns()
    response = await client.get(url, **kwargs)
    response.raise_for_status()
    return response, begin, time.monotonic_ns()


@app.get("/quote/{user}")
async def quote(user: str):
    account, *t1 = await timed(f"{ACCOUNTS}/users/{user}")
    prices, *t2 = await timed(f"{CATALOG}/prices", params={"user": user})
    stock, *t3 = await timed(f"{CATALOG}/stock", params={"user": user})
    cart, *_ = await timed(f"{CATALOG}/carts/{account.headers['x-cart-id']}")
    record(problem="sequential", durations=[end - begin for begin, end in (t1, t2, t3)])

    limit = asyncio.Semaphore(POOL)

    async def score(i: int):
        await asyncio.sleep(0.002 * i)
        async with limit:
            _, begin, end = await timed(f"{CATALOG}/scores/{i}")
        return begin, end

    spans = await asyncio.gather(*(score(i) for i in range(SCORES)))
    phase = max(end for _, end in spans) - min(begin for begin, _ in spans)
    record(problem="pool", phase=phase, longest=max(end - begin for begin, end in spans))
    return {"user": user, "cart": cart.json(), "prices": prices.json(), "stock": stock.json()}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
