"""Scenario: a nightly batch import with thousands of spans a run.

`import.run` (service `importer`) reads a manifest, then processes 120 chunks. Each chunk
parses its records (an internal loop: one `parse.record` span per record, all in the
program's own code), validates them, inserts its 10 rows one `INSERT` at a time and commits.
Finally it uploads 12 result files through a worker pool of 3.

Planted problems:
- repeated_calls under `chunk.process`: ten single-row INSERTs one after another in every
  chunk; the saving of one multi-row INSERT is the loop's time minus one round trip, times the
  120 chunks of a run.
- concurrency_limit under `upload.results`: 12 uploads that never run more than 3 at a time;
  the saving of a larger pool is the phase's time minus the longest upload.
Built to be clean: the `parse.record` loop (internal work: nothing to batch), `validate`.
"""

from __future__ import annotations

import argparse
import random

from opentelemetry.trace import SpanKind

from sim import MS, Run, Services, emit_truth, jitter, median, start_of_runs

CHUNKS = 120
ROWS = 10
UPLOADS = 12
POOL = 3


def one_run(services: Services, start: int, rng: random.Random, n: int) -> dict:
    run = Run(services, start)
    inserts_saving = 0.0
    with run.span("import.run", "importer", attributes={"import.batch": f"b{n:03d}"}):
        run.call(
            "manifest.read",
            "importer",
            jitter(rng, 4),
            kind=SpanKind.INTERNAL,
            **{"file.path": "/data/incoming/manifest.json"},
        )
        for chunk in range(CHUNKS):
            with run.span("chunk.process", "importer", attributes={"chunk.index": chunk}):
                with run.span("parse", "importer"):
                    for _ in range(ROWS):
                        with run.span("parse.record", "importer"):
                            run.work(jitter(rng, 0.12))
                with run.span("validate", "importer"):
                    run.work(jitter(rng, 0.6))
                loop = []
                for row in range(ROWS):
                    begin = run.now
                    run.call(
                        "INSERT items",
                        "importer",
                        jitter(rng, 1.8),
                        **{
                            "db.system.name": "postgresql",
                            "db.query.text": f"INSERT INTO items (id, chunk) VALUES ({chunk * ROWS + row}, {chunk})",
                        },
                    )
                    loop.append(run.now - begin)
                inserts_saving += sum(loop) - sum(loop) / len(loop)
                run.call(
                    "COMMIT",
                    "importer",
                    jitter(rng, 0.9),
                    **{"db.system.name": "postgresql", "db.query.text": "COMMIT"},
                )
        # The uploads: a pool of three workers, each taking the next file when it is free.
        with run.span("upload.results", "importer"):
            begin = run.now
            free_at = [begin] * POOL
            durations = [jitter(rng, 40, 0.25) for _ in range(UPLOADS)]
            for i, ms in enumerate(durations):
                slot = min(range(POOL), key=lambda s: (free_at[s], s))
                free_at[slot] = run.call_at(
                    free_at[slot],
                    "PUT",
                    "importer",
                    ms,
                    **{
                        "http.request.method": "PUT",
                        "url.full": f"https://blob.internal/v1/objects/result-{n}-{i}",
                        "server.address": "blob.internal",
                    },
                )
            run.at(max(free_at))
            phase = run.now - begin
    return {
        "n_plus_one_saving": inserts_saving,
        "pool_saving": phase - max(durations) * MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(7)
    services = Services("importer")
    start = start_of_runs(args.runs)
    truths = [one_run(services, start + i * 20_000 * MS, rng, i) for i in range(args.runs)]
    services.shutdown()
    emit_truth(
        {
            "traces": args.runs,
            "planted": [
                {
                    "kind": "repeated_calls",
                    "operation": "chunk.process",
                    "saving_nanos": median([t["n_plus_one_saving"] for t in truths]),
                },
                {
                    "kind": "concurrency_limit",
                    "operation": "upload.results",
                    "saving_nanos": median([t["pool_saving"] for t in truths]),
                },
            ],
            "clean": [
                {"operation": "parse"},
                {"operation": "parse.record"},
                {"operation": "validate"},
            ],
        }
    )


if __name__ == "__main__":
    main()
