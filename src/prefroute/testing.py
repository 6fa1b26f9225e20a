"""A fake OpenAI-compatible upstream: real HTTP, real SSE, scripted failures.

For tests, the load benchmark and trying ``prefroute serve`` without API
keys. It answers ``POST /v1/chat/completions`` like OpenAI does (a
completion, or ``data: {chunk}`` events then ``data: [DONE]``), echoing the
requested model, and each model can be told to be slow, to fail with a
status (always or the first N times), or to drop the connection mid-stream.
Run it alone with ``python -m prefroute.testing --port 9000 --delay 0.05``.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Behaviour:
    """How the fake answers one model.

    ``delay`` s before the response starts; ``status`` >= 400 answers with that
    error, for the first ``fail_times`` requests only when that is set;
    streams send ``chunks`` content chunks ``chunk_delay`` s apart and, with
    ``drop_after``, break the connection after that many (a plain answer then
    breaks off halfway). ``hold`` makes the
    answer wait for the event: before it starts, or in a stream after the first
    chunk (which shows that chunks are not buffered on the way).
    """

    delay: float = 0.0
    status: int = 200
    fail_times: int | None = None
    chunks: int = 4
    chunk_delay: float = 0.0
    drop_after: int | None = None
    hold: threading.Event | None = None


class DroppedConnection(Exception):
    """Raised inside a stream to make the server abort the connection mid-body."""


class FakeUpstream:
    """The fake's script and record; ``app`` is the ASGI app to serve."""

    def __init__(self, default: Behaviour | None = None, *, keep: int = 1000) -> None:
        self.default = default or Behaviour()
        self.behaviours: dict[str, Behaviour] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=keep)
        self.headers: deque[dict[str, str]] = deque(maxlen=keep)
        self.calls: dict[str, int] = {}
        self.cancelled = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def reset(self) -> None:
        """Forget the script and the record (between tests); release held answers."""
        for how in self.behaviours.values():
            if how.hold is not None:
                how.hold.set()
        self.behaviours.clear()
        self.requests.clear()
        self.headers.clear()
        self.calls.clear()
        self.cancelled = 0

    async def _chat(self, request: Request) -> Response:
        body = orjson.loads(await request.body())
        model = str(body.get("model"))
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        self.calls[model] = calls = self.calls.get(model, 0) + 1
        how = self.behaviours.get(model, self.default)
        if how.delay:
            await asyncio.sleep(how.delay)
        if how.hold is not None and body.get("stream") is not True:
            await _wait(how.hold)
        if how.status >= 400 and (how.fail_times is None or calls <= how.fail_times):
            error = {"message": f"fake failure {how.status}", "type": "fake", "param": None,
                     "code": None}  # fmt: skip
            return Response(orjson.dumps({"error": error}), how.status,
                            media_type="application/json")  # fmt: skip
        answer = _answer(body, model)
        if body.get("stream") is True:
            return StreamingResponse(
                self._events(body, answer, how), media_type="text/event-stream"
            )
        if how.drop_after is not None:
            return StreamingResponse(_cut(orjson.dumps(answer)), media_type="application/json")
        return Response(orjson.dumps(answer), media_type="application/json")

    async def _events(
        self, body: dict[str, Any], answer: dict[str, Any], how: Behaviour
    ) -> AsyncIterator[bytes]:
        message = answer["choices"][0]["message"]
        text = message["content"] or ""
        size = -(-len(text) // how.chunks) or 1
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        base = {k: answer[k] for k in ("id", "created", "model")} | {
            "object": "chat.completion.chunk"
        }
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        if message.get("tool_calls"):
            deltas.append({"tool_calls": [{"index": 0, **message["tool_calls"][0]}]})
        deltas += [{"content": piece} for piece in pieces]
        try:
            for sent, delta in enumerate(deltas):
                if how.drop_after is not None and sent >= how.drop_after:
                    raise DroppedConnection
                if how.chunk_delay and sent:
                    await asyncio.sleep(how.chunk_delay)
                if how.hold is not None and sent == 1:
                    await _wait(how.hold)
                yield _event(
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                )
            finish = answer["choices"][0]["finish_reason"]
            yield _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            options = body.get("stream_options")
            if isinstance(options, dict) and options.get("include_usage"):
                yield _event({**base, "choices": [], "usage": answer["usage"]})
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def _cut(data: bytes) -> AsyncIterator[bytes]:
    """Half an answer, then a broken connection."""
    yield data[: len(data) // 2]
    raise DroppedConnection


async def _wait(event: threading.Event) -> None:
    """Wait for a test thread's event without tying up an executor thread."""
    while not event.is_set():
        await asyncio.sleep(0.005)


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def _answer(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An echo completion; a tool call to the first tool when tools are offered."""
    messages = body.get("messages") or []
    words = sum(len(str(m.get("content") or "").split()) for m in messages if isinstance(m, dict))
    message: dict[str, Any] = {"role": "assistant", "content": f"answer from {model}"}
    finish = "stop"
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        name = (tools[0].get("function") or {}).get("name", "tool")
        call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    completion = len(str(message["content"] or "").split()) or 1
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {
            "prompt_tokens": words,
            "completion_tokens": completion,
            "total_tokens": words + completion,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunks", type=int, default=4, help="content chunks per stream")
    args = parser.parse_args()
    import uvicorn

    fake = FakeUpstream(Behaviour(delay=args.delay, chunks=args.chunks), keep=1)
    uvicorn.run(fake.app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
