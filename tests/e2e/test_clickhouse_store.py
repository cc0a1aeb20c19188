"""The ClickHouse store end to end: scenario traces sent over OTLP through `devtrace serve
--store clickhouse://…` (the real ClickHouse engine behind the test front, tokens required as
on any shared store) give the same `insights` findings and the same `show` of each trace as
the same scenario through a server on the embedded SQLite store.

The scenarios run on a simulated, seeded clock: both runs make the same spans; only their
random ids and the wall-clock time they start at differ, so traces are compared by position
and everything else exactly."""

from __future__ import annotations

import re
import signal

import pytest

from harness import fresh_clickhouse_store, start_team_server, stop_server
from test_scenarios import check, run_scenario


def without_ids(value):
    """`value` without trace, span and service instance ids (random per run) and wall-clock
    times (the runs start a moment apart; durations and offsets stay)."""
    if isinstance(value, dict):
        return {
            k: without_ids(v)
            for k, v in value.items()
            if "trace_id" not in k
            and "span_id" not in k
            and "unix_nano" not in k
            and k not in ("id", "service.instance.id")
        }
    if isinstance(value, list):
        return [without_ids(v) for v in value]
    if isinstance(value, str):
        # A title's wall-clock minutes ("first 2026-11-26 02:00 UTC", "latest 15:16 UTC": the
        # day left out when it is today's): the runs start a moment apart, which can be either
        # side of a minute's turn.
        return WALL_CLOCK_MINUTE.sub("<minute> UTC", value)
    return value


WALL_CLOCK_MINUTE = re.compile(r"(?:\d{4}-\d{2}-\d{2} )?\d{2}:\d{2} UTC")


@pytest.mark.parametrize("name", ["search_api", "agent_backend"])
def test_a_clickhouse_store_gives_the_findings_and_traces_of_the_embedded_store(devtrace_bin, tmp_path, server, name):
    data_dir = tmp_path / "clickhouse-node"
    data_dir.mkdir()
    clickhouse = start_team_server(
        devtrace_bin, data_dir, tmp_path / "serve-clickhouse.log", name, store_url=fresh_clickhouse_store(name)
    )
    try:
        truth = run_scenario(clickhouse, name)
        embedded_truth = run_scenario(server, name)
        assert truth == embedded_truth, "the scenario is seeded: both runs plant the same"
        on_clickhouse = check(clickhouse, truth)
        on_sqlite = check(server, embedded_truth)
        assert without_ids(on_clickhouse) == without_ids(on_sqlite)

        # Every trace, newest first, shown alike (ids apart).
        listed = clickhouse.ls("--limit", "1000")
        embedded_listed = server.ls("--limit", "1000")
        assert without_ids(listed) == without_ids(embedded_listed)
        for mine, theirs in zip(listed, embedded_listed):
            assert without_ids(clickhouse.show(mine["trace_id"])) == without_ids(server.show(theirs["trace_id"]))
    finally:
        stop_server(clickhouse, signal.SIGTERM)
