"""OTLP/HTTP edge cases with hand-made requests (stdlib urllib): JSON partial success, malformed
bodies, gzip protobuf, and the OTLP value → CLI JSON mapping for every value type and span kind."""

from __future__ import annotations

import gzip
import json
import re
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from harness import Server, assert_strict, assert_subset, check_ls_entry, check_show, is_int, one, tree, sort_tree

JSON = {"Content-Type": "application/json"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}
SERVICE = "http-e2e"


def kv(key: str, value: dict) -> dict:
    return {"key": key, "value": value}


def span_json(trace_id, span_id, name, *, parent=None, kind=1, start, end, **extra) -> dict:
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
    }
    if parent:
        span["parentSpanId"] = parent
    span.update(extra)
    return span


def traces_json(spans: list[dict]) -> bytes:
    return json.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [kv("service.name", {"stringValue": SERVICE})]},
                    "scopeSpans": [{"scope": {"name": "e2e.http", "version": "0.0.1"}, "spans": spans}],
                }
            ]
        }
    ).encode()


def post_json(server: Server, path: str, body: bytes):
    status, headers, raw = server.post(path, body, JSON)
    return status, headers, raw


def parse_json_response(raw: bytes) -> dict:
    body = json.loads(raw) if raw.strip() else {}
    assert isinstance(body, dict), body
    return body


def assert_full_success(status: int, raw: bytes, what: str) -> None:
    assert status == 200, f"{what}: HTTP {status} {raw[:500]!r}"
    body = parse_json_response(raw)
    partial = body.get("partialSuccess") or {}
    assert int(partial.get("rejectedSpans", 0) or 0) == 0, f"{what}: {body}"
    assert int(partial.get("rejectedLogRecords", 0) or 0) == 0, f"{what}: {body}"


def now_ns() -> int:
    return time.time_ns()


def test_health_and_empty_stats(server: Server):
    status, health = server.api_get("/api/v1/health")
    assert status == 200, health
    assert_subset(health, {"status": "ok"}, "GET /api/v1/health")
    status, stats = server.api_get("/api/v1/stats")
    assert status == 200
    for key in ("spans", "traces", "logs", "bytes_on_disk"):
        assert is_int(stats.get(key)), f"stats {key}: {stats!r}"
    assert (stats["spans"], stats["traces"], stats["logs"]) == (0, 0, 0), stats
    assert stats["bytes_on_disk"] >= 0
    assert isinstance(stats.get("ingest_spans_per_second"), float), f"ingest_spans_per_second: {stats!r}"
    assert server.ls() == []


def test_json_partial_success_rejects_zero_trace_id(server: Server):
    t = now_ns()
    valid = "4bf92f3577b34da6a3ce929d0e0e4736"
    body = traces_json(
        [
            span_json(valid, "00f067aa0ba902b7", "valid", kind=2, start=t, end=t + 1000),
            span_json("0" * 32, "00f067aa0ba902b8", "zero-trace-id", kind=2, start=t, end=t + 1000),
        ]
    )
    status, headers, raw = post_json(server, "/v1/traces", body)
    assert status == 200, f"HTTP {status} {raw[:500]!r}"
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    reply = parse_json_response(raw)
    partial = reply.get("partialSuccess")
    assert isinstance(partial, dict), f"no partialSuccess in {reply!r}"
    rejected = partial.get("rejectedSpans")
    assert rejected in (1, "1"), f"rejectedSpans {rejected!r} (want 1 or \"1\") in {reply!r}"
    message = partial.get("errorMessage", "")
    assert re.search(r"trace[_ ]?id", message, re.IGNORECASE), f"errorMessage {message!r} does not mention trace_id"

    listing = server.ls()
    assert [e["trace_id"] for e in listing] == [valid], listing
    assert listing[0]["span_count"] == 1
    doc = check_show(server.show(valid))
    assert [s["name"] for s in doc["spans"]] == ["valid"]
    _, stats = server.api_get("/api/v1/stats")
    assert (stats["spans"], stats["traces"]) == (1, 1), stats


def test_malformed_json_gets_400_and_stores_nothing(server: Server):
    t = now_ns()
    good = traces_json([span_json("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "x", start=t, end=t + 1)])
    for bad in (good[: len(good) // 2], b"not json at all", b'{"resourceSpans": 42}'):
        status, _, raw = post_json(server, "/v1/traces", bad)
        assert status == 400, f"body {bad[:60]!r}: HTTP {status} (want 400) {raw[:300]!r}"
    status, _, raw = server.post("/v1/logs", b'{"resourceLogs": [', JSON)
    assert status == 400, f"/v1/logs malformed: HTTP {status} {raw[:300]!r}"
    assert server.ls() == []
    _, stats = server.api_get("/api/v1/stats")
    assert (stats["spans"], stats["traces"], stats["logs"]) == (0, 0, 0), stats

    # The receiver still works afterwards.
    status, _, raw = post_json(server, "/v1/traces", good)
    assert_full_success(status, raw, "valid request after malformed ones")
    assert len(server.ls()) == 1


def _any(v) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, str):
        return AnyValue(string_value=v)
    if isinstance(v, bytes):
        return AnyValue(bytes_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[_any(x) for x in v]))
    if isinstance(v, dict):
        return AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key=k, value=_any(x)) for k, x in v.items()]))
    raise TypeError(v)


def test_gzip_protobuf_is_accepted(server: Server):
    t = now_ns()
    trace_id = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
    root_id = bytes.fromhex("b7ad6b7169203331")
    child_id = bytes.fromhex("b7ad6b7169203332")
    attrs = {"s": "v", "b": True, "i": -3, "d": 0.5, "arr": [1, 2], "kv": {"k": "v"}, "raw": b"\x00\xffhi"}
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[KeyValue(key="service.name", value=_any("proto-gzip"))]),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name="e2e.proto", version="9"),
                        spans=[
                            Span(
                                trace_id=trace_id,
                                span_id=root_id,
                                name="proto-root",
                                kind=Span.SPAN_KIND_SERVER,
                                start_time_unix_nano=t,
                                end_time_unix_nano=t + 5_000_000,
                                attributes=[KeyValue(key=k, value=_any(v)) for k, v in attrs.items()],
                            ),
                            Span(
                                trace_id=trace_id,
                                span_id=child_id,
                                parent_span_id=root_id,
                                name="proto-child",
                                kind=Span.SPAN_KIND_CONSUMER,
                                start_time_unix_nano=t + 1_000_000,
                                end_time_unix_nano=t + 2_000_000,
                                status=Status(code=Status.STATUS_CODE_ERROR, message="nope"),
                            ),
                        ],
                    )
                ],
            )
        ]
    )
    body = gzip.compress(request.SerializeToString())
    status, headers, raw = server.post("/v1/traces", body, {**PROTOBUF, "Content-Encoding": "gzip"})
    assert status == 200, f"HTTP {status} {raw[:500]!r}"
    assert headers.get("Content-Type", "").startswith("application/x-protobuf"), headers
    reply = ExportTraceServiceResponse.FromString(raw)
    assert reply.partial_success.rejected_spans == 0, reply

    doc = check_show(server.show(trace_id.hex()))
    assert (doc["service"], doc["span_count"], doc["error_count"]) == ("proto-gzip", 2, 1)
    assert tree(doc) == [["proto-root", [["proto-child", []]]]]
    root = one(doc, "proto-root")
    assert root["kind"] == "server"
    assert root["start_unix_nano"] == t and root["end_unix_nano"] == t + 5_000_000
    assert_strict(root["scope"], {"name": "e2e.proto", "version": "9"}, "scope")
    assert_strict(
        root["attributes"],
        {
            "s": "v",
            "b": True,
            "i": -3,
            "d": 0.5,
            "arr": [1, 2],
            "kv": {"k": "v"},
            "raw": {"bytes_base64": "AP9oaQ=="},
        },
        "protobuf attributes",
    )
    child = one(doc, "proto-child")
    assert child["kind"] == "consumer"
    assert_strict(child["status"], {"code": "error", "message": "nope"}, "child status")


def test_json_value_mapping_and_kinds(server: Server):
    t = now_ns()
    tid = "5b8efff798038103d269b633813fc60d"
    other_tid = "11112222333344445555666677778888"
    root_id, ids = "a000000000000001", [f"a00000000000000{i}" for i in range(2, 7)]
    attributes = [
        kv("s", {"stringValue": "text"}),
        kv("b", {"boolValue": False}),
        kv("i_str", {"intValue": "-9007199254740993"}),
        kv("i_num", {"intValue": 42}),
        kv("i_max", {"intValue": "9223372036854775807"}),
        kv("d_one", {"doubleValue": 1.0}),
        kv("d_int_literal", {"doubleValue": 2}),
        kv("d_big", {"doubleValue": 1e300}),
        kv("d_neg", {"doubleValue": -0.125}),
        kv("arr", {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}, {"boolValue": True}]}}),
        kv("arr_empty", {"arrayValue": {}}),
        kv(
            "kv",
            {
                "kvlistValue": {
                    "values": [
                        kv("inner", {"intValue": "1"}),
                        kv("nested", {"kvlistValue": {"values": [kv("deep", {"stringValue": "x"})]}}),
                    ]
                }
            },
        ),
        kv("by", {"bytesValue": "aGVsbG8="}),
    ]
    spans = [
        span_json(
            tid, root_id, "root", kind=2, start=t, end=t + 10_000,
            attributes=attributes,
            events=[
                {"timeUnixNano": str(t + 5), "name": "ev", "attributes": [kv("n", {"doubleValue": 0.5})]},
                {"timeUnixNano": str(t + 6), "name": "bare"},
            ],
            links=[
                {
                    "traceId": other_tid,
                    "spanId": "b000000000000001",
                    "traceState": "vendor=1",
                    "attributes": [kv("why", {"stringValue": "batch"})],
                }
            ],
            status={"code": 1},
        ),
        span_json(tid, ids[0], "k-client", parent=root_id, kind=3, start=t + 1, end=t + 2,
                  status={"code": 2, "message": "boom"}),
        span_json(tid, ids[1], "k-internal", parent=root_id, kind=1, start=t + 2, end=t + 3),
        span_json(tid, ids[2], "k-producer", parent=root_id, kind=4, start=t + 3, end=t + 4),
        span_json(tid, ids[3], "k-consumer", parent=ids[2], kind=5, start=t + 4, end=t + 5),
        span_json(tid, ids[4], "k-unspecified", parent=root_id, kind=0, start=t + 5, end=t + 6),
    ]
    status, _, raw = post_json(server, "/v1/traces", traces_json(spans))
    assert_full_success(status, raw, "/v1/traces")

    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [kv("service.name", {"stringValue": SERVICE})]},
                "scopeLogs": [
                    {
                        "scope": {"name": "e2e.http"},
                        "logRecords": [
                            {
                                "timeUnixNano": str(t + 3),
                                "observedTimeUnixNano": str(t + 4),
                                "severityNumber": 13,
                                "severityText": "WARN",
                                "traceId": tid,
                                "spanId": ids[0],
                                "eventName": "my.event",
                                "body": {
                                    "kvlistValue": {"values": [kv("msg", {"stringValue": "hi"}), kv("n", {"intValue": "2"})]}
                                },
                                "attributes": [kv("k", {"stringValue": "v"}), kv("f", {"doubleValue": 3})],
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, _, raw = post_json(server, "/v1/logs", json.dumps(logs).encode())
    assert_full_success(status, raw, "/v1/logs")

    [entry] = server.ls()
    check_ls_entry(entry)
    assert (entry["trace_id"], entry["span_count"], entry["error_count"], entry["service"]) == (tid, 6, 1, SERVICE)

    doc = check_show(server.show(tid))
    assert tree(doc) == sort_tree(
        [["root", [["k-client", []], ["k-internal", []], ["k-producer", [["k-consumer", []]]], ["k-unspecified", []]]]]
    )
    kinds = {s["name"]: s["kind"] for s in doc["spans"]}
    assert kinds == {
        "root": "server",
        "k-client": "client",
        "k-internal": "internal",
        "k-producer": "producer",
        "k-consumer": "consumer",
        "k-unspecified": "unspecified",
    }
    root = one(doc, "root")
    assert_strict(
        root["attributes"],
        {
            "s": "text",
            "b": False,
            "i_str": -9007199254740993,
            "i_num": 42,
            "i_max": 9223372036854775807,
            "d_one": 1.0,
            "d_int_literal": 2.0,
            "d_big": 1e300,
            "d_neg": -0.125,
            "arr": ["a", 1, True],
            "arr_empty": [],
            "kv": {"inner": 1, "nested": {"deep": "x"}},
            "by": {"bytes_base64": "aGVsbG8="},
        },
        "attributes",
    )
    assert root["status"]["code"] == "ok"
    assert [(e["name"], e["time_unix_nano"]) for e in root["events"]] == [("ev", t + 5), ("bare", t + 6)]
    assert_strict(root["events"][0]["attributes"], {"n": 0.5}, "event attributes")
    assert_strict(root["events"][1]["attributes"], {}, "event without attributes")
    assert_strict(
        root["links"],
        [{"trace_id": other_tid, "span_id": "b000000000000001", "trace_state": "vendor=1", "attributes": {"why": "batch"}}],
        "links",
    )
    assert_strict(one(doc, "k-client")["status"], {"code": "error", "message": "boom"}, "client status")
    assert one(doc, "k-internal")["status"]["code"] == "unset"

    [log] = doc["logs"]
    assert_strict(log["body"], {"msg": "hi", "n": 2}, "kvlist log body")
    assert (log["time_unix_nano"], log["severity_number"], log["severity_text"]) == (t + 3, 13, "WARN")
    assert (log["span_id"], log["event_name"], log["service"]) == (ids[0], "my.event", SERVICE)
    assert_strict(log["attributes"], {"k": "v", "f": 3.0}, "log attributes")


def test_show_ambiguous_prefix_fails(server: Server):
    t = now_ns()
    a, b = "abcdef00000000000000000000000001", "abcdef00000000000000000000000002"
    spans = [
        span_json(a, "c000000000000001", "first", start=t, end=t + 1),
        span_json(b, "c000000000000002", "second", start=t + 2, end=t + 3),
    ]
    status, _, raw = post_json(server, "/v1/traces", traces_json(spans))
    assert_full_success(status, raw, "/v1/traces")
    assert [e["trace_id"] for e in server.ls()] == [b, a]
    for prefix in ("abcdef", a[:31]):
        result = server.cli("show", prefix, "--json", check=False)
        assert result.returncode == 1, f"ambiguous prefix {prefix}: {result.describe()}"
        assert result.stderr.strip(), result.describe()
    assert server.show(a)["root_name"] == "first"
    assert server.show(b[:32])["root_name"] == "second"
