"""Scenario: a search API spread over four services.

`GET /search` (service `search-api`) authenticates the session (auth returns the user id),
loads the user's preferences with that id (they return a segment), then queries three backends
one after another — the catalog (its own service, with a database query inside), the reviews
service and the ads service, each sending the segment — writes a search-log row, loads the
thumbnails of the top results one at a time, and renders the page. The ads client is an
OpenTracing-era instrumentation (`http.method`, `http.url`, a `span.kind` tag on an internal
span).

Planted problems (the ground truth printed on stdout):
- sequential_work under `GET /search`: catalog, reviews and ads are independent of each
  other (each only needs the segment prefs returned) and run back to back; the saving is the
  median over runs of their sum minus their maximum.
- repeated_calls under `thumbnails.load`: eight thumbnails fetched one at a time; the saving of
  one batched request is the loop's time minus one round trip.
Built to be clean: auth → prefs (prefs needs auth's user id), the log write, the render.
"""

from __future__ import annotations

import argparse
import random

from opentelemetry.trace import SpanKind

from sim import MS, Run, Services, emit_truth, jitter, median, start_of_runs


def one_run(services: Services, start: int, rng: random.Random, n: int) -> dict:
    run = Run(services, start)
    user = f"u_{40_000 + n * 37}"
    segment = f"seg_{4_400 + n}"
    searches = {}
    thumbs = []
    with run.span(
        "GET /search",
        "search-api",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/search",
            "url.query": "q=trail+shoes",
            "http.response.status_code": 200,
        },
    ):
        run.work(jitter(rng, 1.5))
        with run.span(
            "GET",
            "search-api",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET",
                "url.full": f"https://auth.internal/v1/sessions/tok{n:04d}",
                "server.address": "auth.internal",
            },
        ) as auth:
            run.work(jitter(rng, 12))
            auth.set_attribute("enduser.id", user)
        with run.span(
            "GET",
            "search-api",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET",
                "url.full": f"https://prefs.internal/v1/users/{user}/preferences",
                "server.address": "prefs.internal",
            },
        ) as prefs:
            run.work(jitter(rng, 18))
            prefs.set_attribute("user.segment", segment)
        run.work(0.2)
        # The catalog: a client span, and the catalog service's own server span and query.
        begin = run.now
        with run.span(
            "GET",
            "search-api",
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "GET",
                "url.full": f"https://catalog.internal/v1/search?q=trail+shoes&seg={segment}",
                "server.address": "catalog.internal",
            },
        ):
            run.work(0.8)
            with run.span(
                "GET /v1/search",
                "catalog",
                kind=SpanKind.SERVER,
                attributes={"http.request.method": "GET", "http.route": "/v1/search"},
            ):
                run.work(2)
                run.call(
                    "SELECT products",
                    "catalog",
                    jitter(rng, 95),
                    **{
                        "db.system.name": "postgresql",
                        "db.query.text": "SELECT id, name, price FROM products WHERE name ILIKE $1 LIMIT 20",
                    },
                )
                run.work(3)
            run.work(0.8)
        searches["catalog"] = run.now - begin
        begin = run.now
        run.call(
            "GET",
            "search-api",
            jitter(rng, 140),
            **{
                "http.request.method": "GET",
                "url.full": f"https://reviews.internal/v1/search?q=trail+shoes&seg={segment}",
                "server.address": "reviews.internal",
            },
        )
        searches["reviews"] = run.now - begin
        begin = run.now
        # An OpenTracing-era client: old attribute names, the kind as a tag.
        run.call(
            "HTTP GET",
            "search-api",
            jitter(rng, 60),
            kind=SpanKind.INTERNAL,
            **{
                "http.method": "GET",
                "http.url": f"http://ads.internal/match?seg={segment}&slots=2",
                "peer.service": "ads",
                "span.kind": "client",
            },
        )
        searches["ads"] = run.now - begin
        run.work(jitter(rng, 4))
        run.call(
            "INSERT search_log",
            "search-api",
            jitter(rng, 6),
            **{
                "db.system.name": "postgresql",
                "db.query.text": "INSERT INTO search_log (user_id, q) VALUES ($1, $2)",
            },
        )
        with run.span("thumbnails.load", "search-api"):
            for item in range(8):
                begin = run.now
                run.call(
                    "GET",
                    "search-api",
                    jitter(rng, 9),
                    **{
                        "http.request.method": "GET",
                        "url.full": f"https://img.internal/v1/thumbs/{910_000 + n * 10 + item}",
                        "server.address": "img.internal",
                    },
                )
                thumbs.append(run.now - begin)
        with run.span("render", "search-api"):
            run.work(jitter(rng, 25))
    durations = list(searches.values())
    return {
        "sequential_saving": sum(durations) - max(durations),
        "n_plus_one_saving": sum(thumbs) - sum(thumbs) / len(thumbs),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args()
    rng = random.Random(2026)
    services = Services("search-api", "catalog")
    start = start_of_runs(args.runs)
    truths = [one_run(services, start + i * 20_000 * MS, rng, i) for i in range(args.runs)]
    services.shutdown()
    emit_truth(
        {
            "traces": args.runs,
            "planted": [
                {
                    "kind": "sequential_work",
                    "operation": "GET /search",
                    "saving_nanos": median([t["sequential_saving"] for t in truths]),
                    "group_size": 3,
                },
                {
                    "kind": "repeated_calls",
                    "operation": "thumbnails.load",
                    "saving_nanos": median([t["n_plus_one_saving"] for t in truths]),
                },
            ],
            # No finding of any kind about these.
            "clean": [
                {"operation": "render"},
                {"operation": "INSERT search_log"},
                {"operation": "GET /v1/search"},
                {"operation": "SELECT products"},
            ],
        }
    )


if __name__ == "__main__":
    main()
