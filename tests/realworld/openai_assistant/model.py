"""The `model` service: a stdlib HTTP server speaking OpenAI's Chat Completions API
(`POST /v1/chat/completions`, not streamed), standing in for the provider. It is not
instrumented (the provider's side is not the app's). Usage as a provider reports it: prompt
tokens at four characters a token over every message's content, completion tokens for the
answer, no cached tokens (nothing here caches a prompt). Answers take 30 ms plus 1 ms per 200
prompt tokens."""

from __future__ import annotations

import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER_WORDS = 45


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        prompt_tokens = sum(len(m.get("content") or "") for m in body["messages"]) // 4
        time.sleep(0.030 + prompt_tokens / 200 / 1000)
        question = body["messages"][-1]["content"]
        text = " ".join(["noted"] * (ANSWER_WORDS - 1) + [f"({len(question)})"])
        completion_tokens = ANSWER_WORDS + 15
        answer = {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
