"""`devtrace import` of the canonical OTLP/JSON examples (the third-party conformance set named by
DEVTRACE_EXTERNAL_FIXTURES: otlp/, from
open-telemetry/opentelemetry-proto) into a fresh store without a server, and `devtrace export`
back to OTLP/JSON."""

from __future__ import annotations

import json
from pathlib import Path

from harness import (
    OTLP_FIXTURES_REL,
    external,
    REPO_ROOT,
    Store,
    assert_strict,
    assert_subset,
    check_ls_entry,
    check_show,
    normalise_otlp,
    run_python_sender,
)

TRACE_JSON = OTLP_FIXTURES_REL / "trace.json"  # relative to the repository root
LOGS_JSON = OTLP_FIXTURES_REL / "logs.json"
FIXTURE_TRACE_ID = "5b8efff798038103d269b633813fc60c"


def import_fixtures(store: Store) -> dict:
    return store.json("import", "--json", str(TRACE_JSON), str(LOGS_JSON))


@external
def test_import_fixtures_then_ls_and_show(store: Store):
    summary = import_fixtures(store)
    assert_subset(summary, {"files": 2, "spans": 1, "logs": 1, "rejected": 0}, "import --json summary")

    [entry] = store.ls()
    check_ls_entry(entry)
    assert entry["trace_id"] == FIXTURE_TRACE_ID
    # trace.json holds a single span, whose parent (eee19b7ec3c1b173) is not in the file.
    assert entry["span_count"] == 1
    assert entry["error_count"] == 0
    assert entry["root_name"] == "I'm a server span"
    assert entry["service"] == "my.service"
    assert entry["start_unix_nano"] == 1544712660000000000
    assert entry["duration_ns"] == 1_000_000_000

    doc = check_show(store.show(FIXTURE_TRACE_ID))
    [span] = doc["spans"]
    assert span["span_id"] == "eee19b7ec3c1b174"
    assert span["parent_span_id"] == "eee19b7ec3c1b173"
    assert span["depth"] == 0
    assert span["name"] == "I'm a server span"
    assert span["kind"] == "server"
    assert span["service"] == "my.service"
    assert_strict(span["scope"], {"name": "my.library", "version": "1.0.0"}, "scope")
    assert (span["start_unix_nano"], span["end_unix_nano"]) == (1544712660000000000, 1544712661000000000)
    assert span["status"]["code"] == "unset"
    assert_strict(span["attributes"], {"my.span.attr": "some value"}, "span attributes")
    assert_strict(span["resource"], {"service.name": "my.service"}, "resource")
    assert span["events"] == [] and span["links"] == []

    # logs.json: upper-case hex ids, every attribute type, correlated to the span.
    [log] = doc["logs"]
    assert log["time_unix_nano"] == 1544712660300000000
    assert (log["severity_number"], log["severity_text"]) == (10, "Information")
    assert log["body"] == "Example log record"
    assert log["span_id"] == "eee19b7ec3c1b174"
    assert log["service"] == "my.service"
    assert_strict(
        log["attributes"],
        {
            "string.attribute": "some string",
            "boolean.attribute": True,
            "int.attribute": 10,
            "double.attribute": 637.704,
            "array.attribute": ["many", "values"],
            "map.attribute": {"some.map.key": "some value"},
        },
        "log attributes",
    )


@external
def test_import_twice_stores_nothing_twice(store: Store):
    import_fixtures(store)
    first = store.show(FIXTURE_TRACE_ID)
    import_fixtures(store)
    [entry] = store.ls()
    assert entry["span_count"] == 1
    again = store.show(FIXTURE_TRACE_ID)
    assert len(again["spans"]) == 1 and len(again["logs"]) == 1, again
    assert again == first


@external
def test_export_is_semantically_the_fixture(store: Store):
    import_fixtures(store)
    result = store.cli("export", FIXTURE_TRACE_ID, "--format", "otlp-json")
    try:
        exported = json.loads(result.stdout)
    except json.JSONDecodeError as e:
        raise AssertionError(f"export output is not JSON ({e}):\n{result.stdout[:2000]}") from e
    expected = json.loads((REPO_ROOT / TRACE_JSON).read_text())
    got, want = normalise_otlp(exported), normalise_otlp(expected)
    assert got == want, (
        "export differs from the fixture (normalised):\n"
        f"got  {json.dumps(got, indent=1, sort_keys=True)}\n"
        f"want {json.dumps(want, indent=1, sort_keys=True)}"
    )


@external
def test_import_json_lines(store: Store, tmp_path: Path):
    doc = json.loads((REPO_ROOT / TRACE_JSON).read_text())
    second = json.loads(json.dumps(doc))
    span = second["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["traceId"] = "00000000000000000000000000000abc"
    span["spanId"] = "0000000000000001"
    span.pop("parentSpanId")
    span["name"] = "second"
    path = tmp_path / "two.jsonl"
    path.write_text(json.dumps(doc) + "\n" + json.dumps(second) + "\n")
    summary = store.json("import", "--json", str(path))
    assert_subset(summary, {"files": 1, "spans": 2, "logs": 0, "rejected": 0}, "import --json summary")
    assert sorted(e["trace_id"] for e in store.ls()) == sorted([FIXTURE_TRACE_ID, "00000000000000000000000000000abc"])


def test_import_malformed_file_fails_and_stores_nothing(store: Store, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceSpans": [{"scopeSpans": [')
    result = store.cli("import", str(bad), check=False)
    assert result.returncode == 1, result.describe()
    assert result.stderr.strip(), result.describe()
    assert store.ls() == []


def test_export_then_import_round_trips(server, devtrace_bin: Path, tmp_path: Path):
    """Every value type, event, link and status survives export → import (spans only: an
    OTLP TracesData document has no logs)."""
    trace_id = run_python_sender(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": server.grpc_endpoint, "OTEL_SERVICE_NAME": "roundtrip-e2e"}
    )
    original = check_show(server.show(trace_id))
    exported = tmp_path / "exported.json"
    exported.write_text(server.cli("export", trace_id, "--format", "otlp-json").stdout)

    fresh_dir = tmp_path / "fresh"
    fresh_dir.mkdir()
    fresh = Store(bin=devtrace_bin, data_dir=fresh_dir)
    summary = fresh.json("import", "--json", str(exported))
    assert_subset(summary, {"files": 1, "spans": 7, "logs": 0, "rejected": 0}, "import --json summary")
    again = check_show(fresh.show(trace_id))
    assert again["logs"] == []
    original.pop("logs")
    again.pop("logs")
    assert again == original
