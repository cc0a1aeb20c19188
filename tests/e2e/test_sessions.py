"""Development sessions against a running `devtrace serve`: a trace-1.0.0 document round trip
through the REST API (create, list, read back, add events, delete), errors that name the field,
and the same session read through the CLI while the server writes (one store, every face)."""

from __future__ import annotations

import json
from pathlib import Path

from harness import REPO_ROOT, http_request

SESSION_ID = "5f0c7a52-1b3e-4d8a-9c6f-2e7d8b9a0c1d"
TRACE_ID = SESSION_ID.replace("-", "")
# The repository's synthetic Claude Code project (tests/fixtures/claude-code/generate.py).
SAMPLE_PROJECT = Path("tests") / "fixtures" / "claude-code" / "sample-project"


def document() -> dict:
    return {
        "trace_id": SESSION_ID,
        "created_at": "2025-06-14T11:00:00Z",
        "version": "trace-1.0.0",
        "developer": {"name": "Grace", "experience_level": "mid", "ide": "vim", "os": "macos"},
        "task": {
            "description": "Handle empty carts",
            "repository": "https://github.com/acme/shop",
            "branch": "main",
            "commit": "abc123",
            "test_command": "go test ./...",
            "complexity": "medium",
        },
        "events": [
            {"t": "2025-06-14T11:00:01Z", "type": "file_opened", "session_id": "s1", "file_path": "cart.go", "language": "go"},
            {"t": "2025-06-14T11:00:03Z", "type": "edit", "session_id": "s1", "file_path": "cart.go",
             "op": "replace", "patch_unified": "-\treturn 0\n+\treturn total\n", "before_hash": "h1", "after_hash": "h2"},
            {"t": "2025-06-14T11:00:06Z", "type": "terminal_command", "session_id": "s1", "cmd": "go",
             "args": ["test", "./..."], "cwd": "/workspace", "exit_code": 1, "duration_ms": 1800,
             "stdout": "--- FAIL: TestEmptyCart (0.00s)\n", "stderr": ""},
            {"t": "2025-06-14T11:00:09Z", "type": "pairing", "partner": "bob"},
        ],
        "artifacts": {"final_patch": "diff --git a/cart.go b/cart.go", "test_results": {"passed": 4, "failed": 1}},
    }


def call(server, method: str, path: str, body=None, content_type: str = "application/json"):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    status, _, raw = http_request(method, f"http://{server.api}{path}", data, {"Content-Type": content_type})
    return status, (json.loads(raw) if raw else None)


def test_a_document_round_trips_through_the_rest_api_and_shows_in_the_cli(server):
    status, created = call(server, "POST", "/api/v1/sessions", document())
    assert status == 201, created
    assert created == {"trace_id": TRACE_ID, "session_id": SESSION_ID, "created": True, "events": 4, "spans": 5}

    status, back = call(server, "GET", f"/api/v1/sessions/{SESSION_ID}")
    assert status == 200
    assert back == document()

    status, listing = call(server, "GET", "/api/v1/sessions?agent=developer&repo=https://github.com/acme/shop")
    assert status == 200
    [item] = listing["sessions"]
    assert (item["trace_id"], item["title"], item["errors"], item["tool_calls"]) == (
        TRACE_ID, "Handle empty carts", 1, 0)

    # The CLI reads the same store while the server runs.
    [row] = server.json("sessions", "--json")
    assert row["trace_id"] == TRACE_ID
    overview = server.json("session", "show", TRACE_ID[:8], "--json")
    labels = [entry["label"] for entry in overview["timeline"]]
    assert labels == ["file_opened", "edit", "terminal_command", "pairing"]
    failing = overview["timeline"][2]
    assert (failing["outcome"], failing["exit_code"], failing["command"]) == ("failed", 1, "go test ./...")

    status, added = call(server, "POST", f"/api/v1/sessions/{TRACE_ID}/events", {"events": [
        {"t": "2025-06-14T11:01:00Z", "type": "terminal_command", "cmd": "go", "args": ["test", "./..."], "exit_code": 0},
    ]})
    assert status == 200, added
    assert (added["added"], added["events"]) == (1, 5)
    status, back = call(server, "GET", f"/api/v1/sessions/{TRACE_ID}")
    assert back["events"][4]["exit_code"] == 0

    status, _ = call(server, "DELETE", f"/api/v1/sessions/{TRACE_ID}")
    assert status == 204
    status, gone = call(server, "GET", f"/api/v1/sessions/{TRACE_ID}")
    assert status == 404 and "no session" in gone["error"]
    assert server.json("sessions", "--json") == []


def test_invalid_documents_are_refused_with_the_field_path(server):
    bad = document()
    bad["version"] = "trace-2"
    bad["events"][2]["duration_ms"] = -5
    status, answer = call(server, "POST", "/api/v1/sessions", bad)
    assert status == 400
    assert [(e["path"], e["message"]) for e in answer["errors"]] == [
        ("version", '"trace-2" is not supported: expected "trace-1.0.0"'),
        ("events[2].duration_ms", "must not be negative, found -5"),
    ]
    status, answer = call(server, "POST", "/api/v1/sessions", b"not json")
    assert status == 400 and answer["errors"][0]["path"] == "$"
    status, answer = call(server, "POST", "/api/v1/sessions", document(), content_type="text/plain")
    assert status == 415
    status, stats = server.api_get("/api/v1/stats")
    assert stats["traces"] == 0, "nothing stored"


def test_transcripts_imported_while_the_server_runs_are_served(server):
    imported = server.json("import", "claude-code", str(SAMPLE_PROJECT), "--json", cwd=REPO_ROOT)
    assert (imported["files"], imported["sessions"]) == (5, 3)
    status, listing = call(server, "GET", "/api/v1/sessions?limit=2")
    assert status == 200
    assert [s["trace_id"][:8] for s in listing["sessions"]] == ["3f2a9b1c", "7c4d1e2f"]
    status, overview = call(server, "GET", "/api/v1/sessions/3f2a9b1c")
    assert status == 200
    kinds = {f["kind"] for f in overview["findings"]}
    # Two blind edits refused by the tool; src/cart.ts edited v1 → v2 → v3 → v2.
    assert {"anti_pattern", "circular_edit"} <= kinds
