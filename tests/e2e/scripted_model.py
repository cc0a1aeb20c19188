"""A scripted model server speaking the three providers' APIs, for driving real agent CLIs.

A real model cannot run here (no network, no weights), so the agent CLIs under test are pointed
at this server instead: it answers the Anthropic Messages API (`POST /v1/messages`, streamed or
not), the OpenAI Responses API (`POST /v1/responses`, streamed) and Chat Completions
(`POST /v1/chat/completions`), and the Gemini API (`:generateContent`,
`:streamGenerateContent`, `:countTokens`), following one script: while the conversation holds
fewer than `attempts` results of the scripted command, ask for the command once more (a tool
call of whichever shell tool the agent offers); then answer with `final_text`. Requests that
offer no tools (titles, summaries, quota checks) get a short text answer.

Every answer reports the same token usage (`Usage`), so a test can check the sums an agent
exports. Stdlib only; runs in a thread of the test process.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Tokens reported for every model call: fresh input, output, cache read, cache write."""

    input: int = 1200
    output: int = 40
    cache_read: int = 800
    cache_write: int = 100


@dataclass
class Script:
    command: str
    attempts: int = 3
    final_text: str = "The check keeps failing: config.toml is missing. I stopped retrying."
    usage: Usage = field(default_factory=Usage)
    # When set, the answer after the last attempt waits for it (at most `hold_seconds`): the
    # agent is still running while a test looks at what it has sent so far.
    hold: threading.Event | None = None
    hold_seconds: float = 120.0


@dataclass
class Request:
    provider: str
    path: str
    body: dict
    answer: str  # "tool" or "text"


class ScriptedModel:
    """Starts on an ephemeral loopback port; `url` is its base address."""

    def __init__(self, script: Script):
        self.script = script
        self.requests: list[Request] = []
        # Whether an answer has been held back by `script.hold` (the agent is waiting).
        self.held = False
        self._lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # model listings some CLIs ask for at start
                if self.path.rstrip("/").endswith("/models") or "/models?" in self.path:
                    self._json(200, {"object": "list", "data": [], "models": []})
                else:
                    self._json(404, {"error": {"message": f"no such path {self.path}"}})

            def do_HEAD(self) -> None:
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._json(400, {"error": {"message": "body is not JSON"}})
                    return
                path = self.path.split("?")[0]
                if path.endswith("/v1/messages/count_tokens"):
                    self._json(200, {"input_tokens": model.script.usage.input})
                elif path.endswith("/v1/messages"):
                    model._anthropic(self, path, body)
                elif path.endswith("/responses"):
                    model._responses(self, path, body)
                elif path.endswith("/chat/completions"):
                    model._chat(self, path, body)
                elif ":countTokens" in path:
                    self._json(200, {"totalTokens": model.script.usage.input})
                elif ":generateContent" in path or ":streamGenerateContent" in path:
                    model._gemini(self, path, body, stream=":stream" in path)
                else:
                    self._json(404, {"error": {"message": f"no such path {path}"}})

            def _json(self, status: int, value: Any, headers: dict | None = None) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                for name, header in (headers or {}).items():
                    self.send_header(name, header)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def sse(
                self, events: list[tuple[str | None, Any]], headers: dict | None = None
            ) -> None:
                self.send_response(200)
                for name, header in (headers or {}).items():
                    self.send_header(name, header)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                for name, data in events:
                    chunk = ""
                    if name:
                        chunk += f"event: {name}\n"
                    chunk += f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
                    self.wfile.write(chunk.encode())
                    self.wfile.flush()
                self.close_connection = True

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> "ScriptedModel":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def calls(self, answer: str | None = None) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if answer is None or r.answer == answer]

    def _record(self, provider: str, path: str, body: dict, answer: str) -> None:
        with self._lock:
            self.requests.append(Request(provider, path, body, answer))

    def _wants_tool(self, offered: bool, results: int) -> bool:
        wants = offered and results < self.script.attempts
        if offered and not wants and self.script.hold is not None:
            self.held = True
            self.script.hold.wait(self.script.hold_seconds)
        return wants

    # -- Anthropic Messages --------------------------------------------------------------

    def _anthropic(self, handler: Any, path: str, body: dict) -> None:
        tools = [t.get("name") for t in body.get("tools") or []]
        results = sum(
            1
            for m in body.get("messages") or []
            if m.get("role") == "user" and isinstance(m.get("content"), list)
            for block in m["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        )
        use_tool = self._wants_tool("Bash" in tools, results)
        self._record("anthropic", path, body, "tool" if use_tool else "text")
        usage = self.script.usage
        model = body.get("model", "claude-scripted")
        message_id = f"msg_{uuid.uuid4().hex[:24]}"
        # The Messages API names every request; Claude Code records it in its telemetry and
        # its transcript, which is how the two are matched.
        headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}"}
        if use_tool:
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": "Bash",
                "input": {"command": self.script.command, "description": "Run the check"},
            }
            stop = "tool_use"
        else:
            block = {"type": "text", "text": self._text(tools)}
            stop = "end_turn"
        full_usage = {
            "input_tokens": usage.input,
            "output_tokens": usage.output,
            "cache_read_input_tokens": usage.cache_read,
            "cache_creation_input_tokens": usage.cache_write,
        }
        if not body.get("stream"):
            handler._json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [block],
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": full_usage,
                },
                headers,
            )
            return
        start = dict(block)
        if block["type"] == "tool_use":
            start["input"] = {}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        else:
            start["text"] = ""
            delta = {"type": "text_delta", "text": block["text"]}
        handler.sse(
            [
                (
                    "message_start",
                    {
                        "type": "message_start",
                        "message": {
                            "id": message_id,
                            "type": "message",
                            "role": "assistant",
                            "model": model,
                            "content": [],
                            "stop_reason": None,
                            "stop_sequence": None,
                            "usage": {**full_usage, "output_tokens": 1},
                        },
                    },
                ),
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": start},
                ),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": stop, "stop_sequence": None},
                        "usage": {"output_tokens": usage.output},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ],
            headers,
        )

    # -- OpenAI Responses ----------------------------------------------------------------

    @staticmethod
    def _shell_call(tools: list[dict], command: str) -> tuple[str, str, dict] | None:
        """(kind, tool name, arguments) for the shell tool a Codex request offers."""
        by_name = {(t.get("name") or t.get("type")): t for t in tools}
        if "exec_command" in by_name:
            return ("function", "exec_command", {"cmd": command})
        if "shell_command" in by_name:
            return ("function", "shell_command", {"command": command})
        if "shell" in by_name:
            return ("function", "shell", {"command": ["bash", "-lc", command]})
        if "local_shell" in by_name:
            return ("local_shell", "local_shell", {"command": ["bash", "-lc", command]})
        return None

    def _responses(self, handler: Any, path: str, body: dict) -> None:
        tools = body.get("tools") or []
        call = self._shell_call(tools, self.script.command)
        results = sum(
            1
            for item in body.get("input") or []
            if isinstance(item, dict)
            and item.get("type")
            in ("function_call_output", "custom_tool_call_output", "local_shell_call_output")
        )
        use_tool = self._wants_tool(call is not None, results)
        self._record("openai-responses", path, body, "tool" if use_tool else "text")
        usage = self.script.usage
        response_id = f"resp_{uuid.uuid4().hex[:24]}"
        if use_tool:
            kind, name, arguments = call
            call_id = f"call_{uuid.uuid4().hex[:24]}"
            if kind == "local_shell":
                item = {
                    "type": "local_shell_call",
                    "id": f"lsh_{uuid.uuid4().hex[:16]}",
                    "call_id": call_id,
                    "status": "completed",
                    "action": {"type": "exec", "command": arguments["command"]},
                }
            else:
                item = {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:16]}",
                    "call_id": call_id,
                    "name": name,
                    "arguments": json.dumps(arguments),
                    "status": "completed",
                }
        else:
            item = {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex[:16]}",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": self._text(tools), "annotations": []}
                ],
            }
        total_input = usage.input + usage.cache_read
        response = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "completed",
            "model": body.get("model", "gpt-scripted"),
            "output": [item],
            "usage": {
                "input_tokens": total_input,
                "input_tokens_details": {"cached_tokens": usage.cache_read},
                "output_tokens": usage.output,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": total_input + usage.output,
            },
        }
        if not body.get("stream"):
            handler._json(200, response)
            return
        created = {**response, "status": "in_progress", "output": [], "usage": None}
        handler.sse(
            [
                ("response.created", {"type": "response.created", "response": created}),
                (
                    "response.output_item.added",
                    {"type": "response.output_item.added", "output_index": 0, "item": item},
                ),
                (
                    "response.output_item.done",
                    {"type": "response.output_item.done", "output_index": 0, "item": item},
                ),
                ("response.completed", {"type": "response.completed", "response": response}),
            ]
        )

    # -- OpenAI Chat Completions ---------------------------------------------------------

    def _chat(self, handler: Any, path: str, body: dict) -> None:
        tools = [
            {"name": (t.get("function") or {}).get("name"), "type": t.get("type")}
            for t in body.get("tools") or []
        ]
        call = self._shell_call(tools, self.script.command)
        results = sum(1 for m in body.get("messages") or [] if m.get("role") == "tool")
        use_tool = self._wants_tool(call is not None and call[0] == "function", results)
        self._record("openai-chat", path, body, "tool" if use_tool else "text")
        usage = self.script.usage
        if use_tool:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{uuid.uuid4().hex[:24]}",
                        "type": "function",
                        "function": {"name": call[1], "arguments": json.dumps(call[2])},
                    }
                ],
            }
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": self._text(tools)}
            finish = "stop"
        usage_body = {
            "prompt_tokens": usage.input + usage.cache_read,
            "completion_tokens": usage.output,
            "total_tokens": usage.input + usage.cache_read + usage.output,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read},
        }
        chat_id = f"chatcmpl-{uuid.uuid4().hex[:20]}"
        if not body.get("stream"):
            handler._json(
                200,
                {
                    "id": chat_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "gpt-scripted"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage_body,
                },
            )
            return
        delta = dict(message)
        if "tool_calls" in delta:
            delta["tool_calls"] = [{"index": 0, **c} for c in delta["tool_calls"]]
        chunk = {
            "id": chat_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", "gpt-scripted"),
        }
        handler.sse(
            [
                (None, {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}),
                (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}),
                (None, {**chunk, "choices": [], "usage": usage_body}),
                (None, "[DONE]"),
            ]
        )

    # -- Gemini --------------------------------------------------------------------------

    def _gemini(self, handler: Any, path: str, body: dict, stream: bool) -> None:
        names = [
            d.get("name")
            for t in body.get("tools") or []
            for d in t.get("functionDeclarations") or t.get("function_declarations") or []
        ]
        results = sum(
            1
            for c in body.get("contents") or []
            for p in c.get("parts") or []
            if isinstance(p, dict) and ("functionResponse" in p or "function_response" in p)
        )
        use_tool = self._wants_tool("run_shell_command" in names, results)
        self._record("gemini", path, body, "tool" if use_tool else "text")
        usage = self.script.usage
        if use_tool:
            part = {
                "functionCall": {
                    "name": "run_shell_command",
                    "args": {"command": self.script.command, "description": "Run the check"},
                }
            }
        elif body.get("generationConfig", {}).get("responseMimeType") == "application/json":
            # Side questions Gemini CLI asks with a JSON schema (who speaks next, routing).
            part = {"text": json.dumps(self._gemini_json_answer(body))}
        else:
            part = {"text": self._text(names)}
        answer = {
            "candidates": [
                {"content": {"role": "model", "parts": [part]}, "finishReason": "STOP", "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": usage.input + usage.cache_read,
                "candidatesTokenCount": usage.output,
                "cachedContentTokenCount": usage.cache_read,
                "totalTokenCount": usage.input + usage.cache_read + usage.output,
            },
            "modelVersion": path.split("/models/")[-1].split(":")[0],
            "responseId": uuid.uuid4().hex[:20],
        }
        if stream:
            handler.sse([(None, answer)])
        else:
            handler._json(200, answer)

    @staticmethod
    def _gemini_json_answer(body: dict) -> dict:
        """An answer of the shape a side question's JSON schema asks for (who speaks next,
        which model to route to, how complex the task is)."""
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
        properties = schema.get("properties") or {}
        known = {"next_speaker": "user", "model_choice": "flash", "complexity_score": 10}
        answer = {}
        for key, spec in properties.items():
            kind = str(spec.get("type", "string")).lower()
            if key in known:
                answer[key] = known[key]
            elif "enum" in spec and spec["enum"]:
                answer[key] = spec["enum"][0]
            elif kind in ("integer", "number"):
                answer[key] = 1
            elif kind == "boolean":
                answer[key] = False
            elif kind == "array":
                answer[key] = []
            elif kind == "object":
                answer[key] = {}
            else:
                answer[key] = "Scripted."
        return answer

    def _text(self, tools: list) -> str:
        return self.script.final_text if tools else "Scripted answer."
