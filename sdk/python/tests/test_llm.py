"""LLM calls: GenAI attributes, bounded and redacted prompt/response, and automatic capture of
the real openai and anthropic clients talking to a local server that answers like their APIs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import devtrace
from conftest import named


def test_llm_call_records_a_genai_span(spans):
    with devtrace.llm_call(
        "plan.llm", model="sim-1", provider="simulated", system="You plan tasks.", prompt="Plan: write docs", max_tokens=300
    ) as call:
        call.record_response('{"steps": ["outline", "draft"]}', input_tokens=12, output_tokens=9, finish_reasons=["stop"])
    span = named(spans(), "plan.llm")
    assert span.kind == SpanKind.CLIENT
    a = dict(span.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "simulated"
    assert a["gen_ai.system"] == "simulated"
    assert a["gen_ai.request.model"] == "sim-1"
    assert a["gen_ai.request.max_tokens"] == 300
    assert a["gen_ai.usage.input_tokens"] == 12
    assert a["gen_ai.usage.output_tokens"] == 9
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You plan tasks."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Plan: write docs"}]},
    ]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": '{"steps": ["outline", "draft"]}'}]}
    ]
    assert a["devtrace.llm.prompt_chars"] == len("You plan tasks.") + len("Plan: write docs")
    assert a["devtrace.llm.response_chars"] == 31
    assert len(a["devtrace.llm.prompt_hash"]) == 32


def test_identical_requests_share_a_prompt_hash_and_different_ones_do_not(spans):
    for prompt in ("same", "same", "other"):
        with devtrace.llm_call("q", model="m", prompt=prompt):
            pass
    hashes = [s.attributes["devtrace.llm.prompt_hash"] for s in spans()]
    assert hashes[0] == hashes[1] != hashes[2]


def test_prompt_and_response_are_redacted_and_bounded(spans):
    secret = "sk-proj-" + "x" * 40
    with devtrace.llm_call("q", model="m", prompt=f"use key {secret} " + "y" * 500, max_chars=100) as call:
        call.record_response("z" * 1000)
    a = named(spans(), "q").attributes
    sent = json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"]
    assert sent.startswith("use key [REDACTED:openai_api_key] yyy")
    assert len(sent) == 100 and sent.endswith("… (+448 chars)")  # of the redacted text
    got = json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"]
    assert len(got) == 100 and got.endswith("… (+914 chars)")
    assert a["devtrace.llm.prompt_chars"] == len(f"use key {secret} ") + 500
    assert a["devtrace.llm.response_chars"] == 1000


def test_an_exception_in_the_call_is_recorded(spans):
    with pytest.raises(TimeoutError):
        with devtrace.llm_call("slow", model="m", prompt="hi"):
            raise TimeoutError("no answer in 30 s")
    span = named(spans(), "slow")
    assert span.status.status_code == StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in span.events] == ["TimeoutError"]


def test_traced_llm_decorator(spans):
    @devtrace.traced_llm(model="sim-2", provider="simulated")
    def complete(prompt):
        return prompt.upper()

    assert complete("hello") == "HELLO"
    a = spans()[0].attributes
    assert spans()[0].name.endswith("complete")
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "HELLO"


# --- the real client libraries against a local server ----------------------------------------

REQUESTS: list = []


class FakeAPI(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions, /v1/responses (OpenAI) and /v1/messages (Anthropic)."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        REQUESTS.append((self.path, body))
        if body.get("stream"):
            return self.stream(body)
        if self.path.endswith("/chat/completions"):
            if body["model"] == "overloaded":
                return self.reply(429, {"error": {"message": "Rate limit reached", "type": "rate_limit"}})
            reply = {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1763730000, "model": body["model"] + "-2026",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Step 1: outline"}}],
                "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
            }
        elif self.path.endswith("/responses"):
            reply = {
                "id": "resp_1", "object": "response", "created_at": 1763730000, "model": body["model"], "status": "completed",
                "output": [{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                            "content": [{"type": "output_text", "text": "Two steps.", "annotations": []}]}],
                "usage": {"input_tokens": 8, "output_tokens": 3, "total_tokens": 11,
                          "input_tokens_details": {"cached_tokens": 0}, "output_tokens_details": {"reasoning_tokens": 0}},
                "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
            }
        elif self.path.endswith("/messages"):
            reply = {
                "id": "msg_01", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": "Plan: 3 steps"}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 17, "output_tokens": 5},
            }
        else:
            return self.reply(404, {"error": {"message": f"no route {self.path}"}})
        self.reply(200, reply)

    def stream(self, body):
        """Server-sent events as the two APIs stream them."""
        if self.path.endswith("/chat/completions"):
            chunk = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1763730000, "model": body["model"]}
            events = [
                (None, {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Step "}, "finish_reason": None}]}),
                (None, {**chunk, "choices": [{"index": 0, "delta": {"content": "one"}, "finish_reason": None}]}),
                (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                (None, {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}),
                (None, "[DONE]"),
            ]
        else:
            message = {"id": "msg_2", "type": "message", "role": "assistant", "model": body["model"], "content": [],
                       "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 11, "output_tokens": 1}}
            events = [
                ("message_start", {"type": "message_start", "message": message}),
                ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Plan "}}),
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ready"}}),
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 2}}),
                ("message_stop", {"type": "message_stop"}),
            ]
        text = "".join(
            (f"event: {name}\n" if name else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            for name, data in events
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def reply(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_clients_are_not_imported_by_devtrace():
    code = (
        "import sys, devtrace; devtrace.instrument_llm_clients();"
        "assert 'openai' not in sys.modules and 'anthropic' not in sys.modules, 'imported';"
        "import openai, anthropic;"
        "from openai.resources.chat.completions.completions import Completions;"
        "from anthropic.resources.messages.messages import Messages;"
        "print(Completions.create.__devtrace_wrapped__, Messages.create.__devtrace_wrapped__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "True True\n"


def test_openai_chat_completions_are_captured(spans, api):
    devtrace.instrument_llm_clients()
    import openai

    client = openai.OpenAI(base_url=api + "/v1", api_key="sk-test-" + "k" * 30, max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-sim", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Plan my day"}], temperature=0.2
    )
    assert reply.choices[0].message.content == "Step 1: outline"
    span = named(spans(), "chat gpt-sim")
    assert span.kind == SpanKind.CLIENT
    a = dict(span.attributes)
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-sim"
    assert a["gen_ai.response.model"] == "gpt-sim-2026"
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.usage.input_tokens"] == 21
    assert a["gen_ai.usage.output_tokens"] == 4
    assert a["gen_ai.response.id"] == "chatcmpl-1"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert [m["role"] for m in json.loads(a["gen_ai.input.messages"])] == ["system", "user"]
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Step 1: outline"}], "finish_reason": "stop"}
    ]


def test_openai_errors_are_recorded_on_the_span(spans, api):
    devtrace.instrument_llm_clients()
    import openai

    client = openai.OpenAI(base_url=api + "/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="overloaded", messages=[{"role": "user", "content": "hi"}])
    span = named(spans(), "chat overloaded")
    assert span.status.status_code == StatusCode.ERROR
    assert span.events[0].attributes["exception.type"] == "openai.RateLimitError"


def test_openai_responses_and_async_clients_are_captured(spans, api):
    devtrace.instrument_llm_clients()
    import asyncio

    import openai

    client = openai.OpenAI(base_url=api + "/v1", api_key="sk-test", max_retries=0)
    assert client.responses.create(model="gpt-sim", input="Two steps?").output_text == "Two steps."

    async def ask():
        async_client = openai.AsyncOpenAI(base_url=api + "/v1", api_key="sk-test", max_retries=0)
        reply = await async_client.chat.completions.create(model="gpt-async", messages=[{"role": "user", "content": "hi"}])
        await async_client.close()
        return reply

    assert asyncio.run(ask()).choices[0].message.content == "Step 1: outline"
    finished = spans()
    responses = named(finished, "chat gpt-sim").attributes
    assert responses["gen_ai.usage.input_tokens"] == 8 and responses["gen_ai.usage.output_tokens"] == 3
    assert json.loads(responses["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Two steps."
    assert named(finished, "chat gpt-async").attributes["gen_ai.usage.output_tokens"] == 4


def test_anthropic_messages_are_captured(spans, api):
    devtrace.instrument_llm_clients()
    import anthropic

    client = anthropic.Anthropic(base_url=api, api_key="sk-ant-test", max_retries=0)
    message = client.messages.create(
        model="claude-sim", max_tokens=256, system="You plan.", messages=[{"role": "user", "content": "Plan it"}]
    )
    assert message.content[0].text == "Plan: 3 steps"
    a = dict(named(spans(), "chat claude-sim").attributes)
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.max_tokens"] == 256
    assert a["gen_ai.usage.input_tokens"] == 17
    assert a["gen_ai.usage.output_tokens"] == 5
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "You plan."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Plan it"}]},
    ]
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Plan: 3 steps"


def test_streamed_responses_are_recorded_when_the_stream_ends(spans, api):
    devtrace.instrument_llm_clients()
    import anthropic
    import openai

    client = openai.OpenAI(base_url=api + "/v1", api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-stream", messages=[{"role": "user", "content": "go"}], stream=True, stream_options={"include_usage": True}
    )
    assert spans() == []  # the call lasts as long as its stream
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Step one"
    a = dict(named(spans(), "chat gpt-stream").attributes)
    assert a["devtrace.llm.stream"] is True
    assert json.loads(a["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Step one"}], "finish_reason": "stop"}
    ]
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (9, 2)

    claude = anthropic.Anthropic(base_url=api, api_key="sk-ant-test", max_retries=0)
    with claude.messages.create(model="claude-stream", max_tokens=64, messages=[{"role": "user", "content": "go"}], stream=True) as events:
        kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    a = dict(named(spans(), "chat claude-stream").attributes)
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Plan ready"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (11, 2)
    assert a["gen_ai.response.finish_reasons"] == ("end_turn",)


def test_async_streams_are_recorded_too(spans, api):
    devtrace.instrument_llm_clients()
    import asyncio

    import anthropic

    async def ask():
        client = anthropic.AsyncAnthropic(base_url=api, api_key="sk-ant-test", max_retries=0)
        stream = await client.messages.create(model="claude-async-stream", max_tokens=64, messages=[{"role": "user", "content": "go"}], stream=True)
        texts = [e.delta.text async for e in stream if e.type == "content_block_delta"]
        await client.close()
        return "".join(texts)

    assert asyncio.run(ask()) == "Plan ready"
    a = dict(named(spans(), "chat claude-async-stream").attributes)
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "Plan ready"
