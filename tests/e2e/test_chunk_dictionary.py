"""Span chunks compressed with a dictionary (issue 46): a process that writes enough spans trains
one, the store keeps it beside the chunks that name it, and every other process — a reader that
never saw it, a writer re-checking re-sent spans, the next importer — uses the store's copy.
On the embedded store and on PostgreSQL, driven through the CLI as users run it."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
from pathlib import Path

import pytest

from harness import CLI_TIMEOUT_S, Store, fresh_postgres_store

SPANS_PER_TRACE = 4


def write_traces(path: Path, first: int, count: int, indent: int | None = None) -> None:
    """`count` traces of a web shop's request (server span, query, outgoing call, template), the
    way an instrumented Flask app exports them, trace ids from `first`."""
    rnd = random.Random(first)
    spans = []
    for t in range(first, first + count):
        base = 1_700_000_000_000_000_000 + t * 10_000_000
        user = rnd.randrange(500)

        def span(n: int, parent: int, name: str, attributes: dict, kind: int) -> dict:
            return {
                "traceId": f"{t:032x}",
                "spanId": f"{t:012x}{n:04x}",
                "parentSpanId": f"{t:012x}{parent:04x}" if parent else "",
                "name": name,
                "kind": kind,
                "startTimeUnixNano": str(base + n * 1000),
                "endTimeUnixNano": str(base + 5_000_000 - n * 1000),
                "attributes": [
                    {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
                    for k, v in attributes.items()
                ],
            }

        spans += [
            span(1, 0, "GET /users/{id}/orders", {
                "http.request.method": "GET", "url.path": f"/users/{user}/orders",
                "http.response.status_code": 200, "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
            }, 2),
            span(2, 1, "SELECT shop.orders", {
                "db.system": "postgresql",
                "db.query.text": f"SELECT id, total FROM orders WHERE user_id = {user} ORDER BY created_at DESC LIMIT 20",
            }, 3),
            span(3, 1, "GET", {"http.request.method": "GET", "server.address": "inventory.internal",
                               "url.full": f"http://inventory.internal/stock?user={user}"}, 3),
            span(4, 1, "render orders.html", {"template.name": "orders.html", "orders.count": rnd.randrange(20)}, 1),
        ]  # fmt: skip
    resource = [{"key": "service.name", "value": {"stringValue": "shop"}}]
    doc = {"resourceSpans": [{"resource": {"attributes": resource},
                              "scopeSpans": [{"scope": {"name": "opentelemetry.instrumentation.flask"}, "spans": spans}]}]}  # fmt: skip
    path.write_text(json.dumps(doc, indent=indent))


class Backend:
    """The store under test, and a look at its raw tables."""

    def __init__(self, kind: str, bin: Path, tmp_path: Path):
        self.kind = kind
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        self.store = Store(bin=bin, data_dir=data_dir)
        if kind == "postgres":
            self.url = fresh_postgres_store("dictionary")
            self.store.store_args = ("--store", self.url)

    def rows(self, sql: str) -> list[tuple]:
        if self.kind == "embedded":
            with sqlite3.connect(self.store.data_dir / "devtrace.db") as db:
                return db.execute(sql).fetchall()
        out = subprocess.run(
            ["psql", self.url, "-q", "-At", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=True,
        ).stdout  # fmt: skip
        return [tuple(int(v) for v in line.split("\t")) for line in out.splitlines() if line]

    def chunk_formats(self) -> dict[int, tuple[int, int]]:
        """Chunks by format (the first byte: 1 plain, 2 with a dictionary): (count, bytes)."""
        first_byte = "unicode(data)" if self.kind == "embedded" else "get_byte(data, 0)"
        rows = self.rows(f"SELECT {first_byte}, count(*), sum(length(data)) FROM span_chunks GROUP BY 1")
        return {int(f): (int(n), int(size)) for f, n, size in rows}

    def dictionaries(self) -> int:
        return self.rows("SELECT count(*) FROM chunk_dictionaries")[0][0]


@pytest.mark.parametrize("kind", ["embedded", "postgres"])
def test_chunks_name_a_dictionary_the_store_keeps_and_every_process_reads(kind, devtrace_bin, tmp_path):
    backend = Backend(kind, devtrace_bin, tmp_path)
    store = backend.store
    # An importer trains a dictionary on its first MiB of chunks (on a thread of its own) and
    # compresses the rest with it. A process that ends before its training does keeps none, so
    # on a slow machine it may take another import.
    imported = 0
    while imported == 0 or (backend.dictionaries() == 0 and imported < 4 * 6000):
        batch = tmp_path / f"traces-{imported}.json"
        write_traces(batch, 1 + imported, 6000)
        assert store.json("import", "--json", str(batch))["spans"] == 6000 * SPANS_PER_TRACE
        imported += 6000
    assert backend.dictionaries() == 1, "no import trained a dictionary"
    formats = backend.chunk_formats()
    plain_count, plain_bytes = formats[1]
    assert plain_count > 0 and sum(n for n, _ in formats.values()) == imported, formats

    # The next process adopts the store's dictionary: no second one, every chunk names it.
    later = tmp_path / "later.json"
    first_later = 1 + imported
    write_traces(later, first_later, 500)
    store.json("import", "--json", str(later))
    assert backend.dictionaries() == 1
    after = backend.chunk_formats()
    assert after[1] == formats[1], after
    new_count = after[2][0] - formats.get(2, (0, 0))[0]
    new_bytes = after[2][1] - formats.get(2, (0, 0))[1]
    assert new_count == 500, after
    # Every trace has the same shape: a chunk with the dictionary is much smaller.
    assert new_bytes / new_count < 0.6 * plain_bytes / plain_count, after

    # New processes, which never registered the dictionary, read chunks of both formats.
    for trace in (1, first_later, first_later + 499):
        shown = store.show(f"{trace:032x}")
        spans = shown["spans"]
        assert len(spans) == SPANS_PER_TRACE, shown
        root = next(s for s in spans if s["name"] == "GET /users/{id}/orders")
        assert root["attributes"]["url.path"].startswith("/users/"), root

    # The same spans in another document: the writer reads the stored chunks back to recognise
    # them as re-sent, and stores nothing twice.
    resent = tmp_path / "resent.json"
    write_traces(resent, first_later, 500, indent=1)
    again = store.json("import", "--json", str(resent))
    assert (again["spans"], again["duplicate_spans"]) == (0, 500 * SPANS_PER_TRACE), again
    # The embedded store's SQL face decodes every chunk, of both formats, for its `spans` view.
    sql = "SELECT count(*) FROM spans" if kind == "embedded" else "SELECT sum(span_count) FROM traces"
    counted = store.json("query", "--json", sql)
    assert counted["rows"] == [[(imported + 500) * SPANS_PER_TRACE]], counted
