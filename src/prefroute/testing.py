"""A fake OpenAI-compatible upstream: real HTTP, real SSE, scripted failures.

For tests, the load benchmark and trying ``prefroute serve`` without API
keys. It answers ``POST /v1/chat/completions`` like OpenAI does (a
completion, or ``data: {chunk}`` events then ``data: [DONE]``), echoing the
requested model, and each model can be told to be slow, to fail with a
status (always or the first N times), or to drop the connection mid-stream.
Run it alone with ``python -m prefroute.testing --port 9000 --delay 0.05``.

``FaultUpstream`` is a second fake that shares no code with the server's
stack: HTTP/1.1 on raw asyncio streams and the stdlib ``json``, so a fault it
injects (a hang, a 429, a dropped stream, a 200 that is not JSON) reaches the
server exactly as written, not as Starlette or aiohttp would shape it.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
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


# ----------------------------------------------------------- prefroute label's upstreams


@dataclass
class LabelScript:
    """What the fake says and how it fails when it plays ``prefroute label``'s upstreams.

    Which requests misbehave is decided by a hash of the user's question (the
    last user message of an answer call, the conversation a judge call quotes),
    so the same prompts misbehave in every run, whatever order calls arrive in.
    The shares (0-1) pick prompts: ``slow`` ones answer ``slow_delay`` s late,
    ``malformed`` ones get a first verdict or grade without its ``[[…]]`` (and a
    proper one when asked again), ``unparseable`` ones never get one,
    ``position_biased`` ones a judge that always prefers the answer shown first.
    ``rate_limited`` and ``server_errors`` requests are answered 429 (with
    ``Retry-After: retry_after``) or 503 the first time they arrive.

    Answers are ``answers[(model, question)]`` when given (real answers, say),
    else made-up text of ``answer_words`` words chosen from a hash of model and question.
    The judge prefers the longer answer (a real judges' bias, and deterministic):
    ``>>`` beyond 1.5x the words, ``>`` beyond 1.1x, ``=`` otherwise; the grader
    gives one point per 50 words, from 1 to 10.
    """

    answers: dict[tuple[str, str], str] = field(default_factory=dict)
    answer_words: tuple[int, int] = (40, 400)
    delay: float = 0.0
    slow: float = 0.0
    slow_delay: float = 1.0
    malformed: float = 0.0
    unparseable: float = 0.0
    position_biased: float = 0.0
    rate_limited: float = 0.0
    retry_after: float = 1.0
    server_errors: float = 0.0


class FakeLabelUpstream:
    """An OpenAI-compatible fake that plays the models and the judge of ``prefroute label``.

    A request whose system message asks for an ``[[A>B]]``-style verdict is a
    judge call, one that asks for ``[[rating]]`` a grading call, any other an
    answer. It counts calls per ``(model, kind)`` in ``calls``, answers per
    request body in ``answered`` (keyed like prefroute's store: sha256 of the
    body's JSON with sorted keys, so a test can tell which finished calls were
    made again) and the most calls it held at once in ``peak_in_flight``.
    ``usage`` is counted with OpenAI's o200k tokenizer (3 tokens per message and
    3 per request, as OpenAI documents), independently of ``prefroute label``'s
    own estimate. ``GET /fake/answered`` returns ``answered`` for a fake in
    another process.
    """

    def __init__(self, script: LabelScript | None = None) -> None:
        with warnings.catch_warnings():  # its resource loading uses a deprecated call
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import bpe_openai  # type: ignore[import-untyped,import-not-found,unused-ignore]
            except ModuleNotFoundError:
                raise ModuleNotFoundError(
                    "the label fake counts tokens with bpe-openai: pip install 'prefroute[dev]'"
                ) from None
            self._encoding = bpe_openai.get_encoding("o200k_base")
        self.script = script or LabelScript()
        self.calls: Counter[tuple[str, str]] = Counter()
        self.answered: Counter[str] = Counter()
        self.arrivals: dict[str, list[tuple[float, int]]] = {}
        self.in_flight = 0
        self.peak_in_flight = 0
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/fake/answered", self._answered, methods=["GET"]),
            ]
        )

    def reset(self, script: LabelScript | None = None) -> None:
        """A new script (or the same) and an empty record."""
        self.script = script or self.script
        self.calls.clear()
        self.answered.clear()
        self.arrivals.clear()
        self.peak_in_flight = 0

    def tokens(self, text: str) -> int:
        return len(self._encoding.encode(text))

    async def _answered(self, request: Request) -> Response:
        return Response(orjson.dumps(dict(self.answered)), media_type="application/json")

    async def _chat(self, request: Request) -> Response:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            return await self._reply(orjson.loads(await request.body()))
        finally:
            self.in_flight -= 1

    async def _reply(self, body: dict[str, Any]) -> Response:
        key = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
        model = str(body.get("model"))
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        texts = [str(m["content"]) if isinstance(m.get("content"), str) else "" for m in messages]
        roles = [m.get("role") for m in messages]
        system = next((t for r, t in zip(roles, texts, strict=True) if r == "system"), "")
        kind = "judge" if "[[A>B]]" in system else "grade" if "[[rating]]" in system else "answer"
        question = _question(kind, texts)
        self.calls[(model, kind)] += 1
        seen = self.arrivals.setdefault(key, [])
        script = self.script
        delay = script.delay + (script.slow_delay if _picked(question, "slow", script.slow) else 0)
        if delay:
            await asyncio.sleep(delay)
        first = not seen
        if first and _picked(key, "429", script.rate_limited):
            seen.append((time.monotonic(), 429))
            headers = {"retry-after": f"{script.retry_after:g}"}
            return _error(429, "fake rate limit", headers)
        if first and _picked(key, "5xx", script.server_errors):
            seen.append((time.monotonic(), 503))
            return _error(503, "fake overload")
        seen.append((time.monotonic(), 200))
        asked_again = len(messages) > 2 and kind != "answer"
        if kind == "answer":
            reply = script.answers.get((model, question)) or _made_up(model, question, script)
        else:
            reply = _judgement(kind, texts[1], question, script, asked_again)
        self.answered[key] += 1
        prompt_tokens = sum(3 + self.tokens(t) for t in texts) + 3
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": self.tokens(reply)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        message = {"role": "assistant", "content": reply}
        completion = {
            "id": f"chatcmpl-fake-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
        return Response(orjson.dumps(completion), media_type="application/json")


_QUOTED = re.compile(r"<(conversation|answer_a|answer_b|answer)>\n(.*?)\n</\1>", re.DOTALL)


def _question(kind: str, texts: list[str]) -> str:
    """The user's question: the last user text of an answer call, the quoted one of a judge's."""
    if kind == "answer":
        return texts[-1] if texts else ""
    quoted = dict(_QUOTED.findall(texts[1] if len(texts) > 1 else ""))
    return quoted.get("conversation", "")


def _picked(key: str, salt: str, share: float) -> bool:
    """Whether ``key`` falls in the ``share`` of keys picked for ``salt``."""
    if share <= 0:
        return False
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _made_up(model: str, question: str, script: LabelScript) -> str:
    low, high = script.answer_words
    digest = hashlib.sha256(f"{model}\0{question}".encode()).digest()
    words = low + int.from_bytes(digest[:4], "big") % max(1, high - low + 1)
    vocabulary = ("the", "answer", "is", "that", "we", "first", "consider", "a", "careful",
                  "step,", "then", "check", "each", "case.")  # fmt: skip
    return " ".join(vocabulary[(digest[i % 32] + i) % len(vocabulary)] for i in range(words))


def _judgement(kind: str, quoted: str, question: str, script: LabelScript, again: bool) -> str:
    """A judge's reply: reasons, then a verdict or grade (or none, as scripted)."""
    parts = dict(_QUOTED.findall(quoted))
    never = _picked(question, "unparseable", script.unparseable)
    if never or (not again and _picked(question, "malformed", script.malformed)):
        return "Both answers have merits; on balance I lean one way but will not commit."
    if kind == "grade":
        words = len(parts.get("answer", "").split())
        grade = min(10, max(1, words // 50))
        return f"The answer is {words} words long and addresses the question.\n[[{grade}]]"
    a, b = (len(parts.get(side, "").split()) for side in ("answer_a", "answer_b"))
    if _picked(question, "position", script.position_biased):
        verdict = "A>B"
    elif a > 1.5 * b:
        verdict = "A>>B"
    elif a > 1.1 * b:
        verdict = "A>B"
    elif b > 1.5 * a:
        verdict = "B>>A"
    elif b > 1.1 * a:
        verdict = "B>A"
    else:
        verdict = "A=B"
    reasons = f"Answer A has {a} words and answer B {b}; the fuller one covers more of the request."
    return f"[[{verdict}]]" if again else f"{reasons}\n[[{verdict}]]"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    error = {"message": message, "type": "fake", "param": None, "code": None}
    return Response(orjson.dumps({"error": error}), status, headers=headers,
                    media_type="application/json")  # fmt: skip


FAULTS = (
    "ok", "slow", "hang", "status", "close", "drop", "stall", "malformed", "wrong_type", "empty",
    "negative_usage",
)  # fmt: skip
"""What ``FaultUpstream`` can do to a request (``refused`` is a port nobody listens on)."""


@dataclass
class Fault:
    """One model's misbehaviour in ``FaultUpstream``.

    ``kind``: ``ok``; ``slow`` (answer after ``delay`` s); ``hang`` (read the
    request, never answer); ``status`` (answer ``status``, with ``retry_after``
    as the header when set); ``close`` (close the connection without a word);
    ``drop`` (break off mid-answer); ``stall`` (a stream that sends its first
    event, then nothing); ``malformed`` (a 200 whose JSON or SSE is cut);
    ``wrong_type`` (a 200 HTML page); ``empty`` (a 200 with no body); or
    ``negative_usage`` (a good answer whose ``usage`` counts are negative).
    ``times``: misbehave for the first N requests only, then answer.
    """

    kind: str = "ok"
    status: int = 500
    delay: float = 0.0
    retry_after: str | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {FAULTS}")


class FaultUpstream:
    """An OpenAI-compatible upstream on raw asyncio streams, misbehaving per model.

    ``with FaultUpstream() as up:`` serves on a free port of 127.0.0.1 in a
    background thread; ``up.url`` is its base URL (``.../v1``). Set
    ``up.faults[model] = Fault(...)``; other models answer normally.
    ``requests`` keeps each request body's raw bytes, ``calls`` counts them per
    model and ``abandoned`` counts requests whose caller hung up before the
    answer was complete.
    """

    def __init__(self) -> None:
        self.faults: dict[str, Fault] = {}
        self.requests: deque[bytes] = deque(maxlen=1000)
        self.calls: Counter[str] = Counter()
        self.abandoned = 0
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._released = asyncio.Event()
        self._thread: threading.Thread | None = None

    def reset(self) -> None:
        """Forget the faults and the record; break off every hung call."""
        self.faults.clear()
        self.release()
        self.requests.clear()
        self.calls.clear()
        self.abandoned = 0

    def release(self) -> None:
        """Close the connection of every call that hangs or stalls now."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release_all)

    def _release_all(self) -> None:
        self._released.set()
        self._released = asyncio.Event()

    def __enter__(self) -> FaultUpstream:
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault upstream did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)

    async def _serve(self, ready: threading.Event) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
        ready.set()
        async with server:
            await self._stop.wait()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its (mis)answer; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(raw)
        body = json.loads(raw)
        model = str(body.get("model"))
        self.calls[model] += 1
        fault = self.faults.get(model, Fault())
        kind = fault.kind
        if fault.times is not None and self.calls[model] > fault.times:
            kind = "ok"
        stream = body.get("stream") is True
        if kind == "slow":
            await asyncio.sleep(fault.delay)
        elif kind == "hang":
            await self._until_closed(reader)
            return False
        elif kind == "close":
            return False
        elif kind == "status":
            error = {"error": {"message": f"fault {fault.status}", "type": "fault", "param": None,
                               "code": None}}  # fmt: skip
            extra = {"retry-after": fault.retry_after} if fault.retry_after else {}
            await _respond(writer, fault.status, "application/json", json.dumps(error), extra)
            return True
        answer = _answer(body, model)
        if kind == "negative_usage":
            answer["usage"] = {"prompt_tokens": -5, "completion_tokens": -1, "total_tokens": -6}
        if kind == "wrong_type":
            await _respond(writer, 200, "text/html", "<html><body>Please log in</body></html>")
        elif kind == "empty":
            await _respond(writer, 200, "text/event-stream" if stream else "application/json", "")
        elif not stream:
            text = json.dumps(answer)
            if kind == "malformed":
                await _respond(writer, 200, "application/json", text[: len(text) // 2])
            elif kind == "drop":
                writer.write(_head(200, "application/json", len(text.encode())))
                writer.write(text.encode()[: len(text) // 2])
                await writer.drain()
                return False
            else:
                await _respond(writer, 200, "application/json", text)
        else:
            events = [b"data: %s\n\n" % json.dumps(c).encode() for c in _chunks(answer, body)]
            events.append(b"data: [DONE]\n\n")
            if kind == "malformed":
                events = [b'data: {"id": "chatcmpl-cut", "choices": [\n\n']
            writer.write(_head(200, "text/event-stream", None))
            for n, event in enumerate(events):
                if kind == "drop" and n == 2 or kind == "stall" and n == 1:
                    await writer.drain()
                    if kind == "stall":
                        await self._until_closed(reader)
                    return False
                writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return headers.get("connection", "").lower() != "close"

    async def _until_closed(self, reader: asyncio.StreamReader) -> None:
        """Answer nothing until the caller gives up (then count it), ``release`` or the end."""
        assert self._stop is not None
        gone = asyncio.ensure_future(reader.read())
        ends = [asyncio.ensure_future(e.wait()) for e in (self._stop, self._released)]
        await asyncio.wait({gone, *ends}, return_when=asyncio.FIRST_COMPLETED)
        if gone.done():
            self.abandoned += 1
        for task in (gone, *ends):
            task.cancel()


def _head(
    status: int, content_type: str, length: int | None, extra: dict[str, str] | None = None
) -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    lines = [f"HTTP/1.1 {status} Fault", f"content-type: {content_type}", framing]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    content_type: str,
    text: str,
    extra: dict[str, str] | None = None,
) -> None:
    data = text.encode()
    writer.write(_head(status, content_type, len(data), extra) + data)
    await writer.drain()


def _chunks(answer: dict[str, Any], body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The answer as stream chunks: role, the words, the finish, then usage if asked for."""
    base = {k: answer[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    words = str(answer["choices"][0]["message"]["content"]).split(" ")
    deltas = [{"role": "assistant", "content": ""}] + [
        {"content": w if not i else f" {w}"} for i, w in enumerate(words)
    ]
    for delta in deltas:
        yield {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    options = body.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage"):
        yield {**base, "choices": [], "usage": answer["usage"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--chunks", type=int, default=4, help="content chunks per stream")
    parser.add_argument(
        "--label", action="store_true", help="play prefroute label's models and judge"
    )
    parser.add_argument(
        "--answers", help="with --label: JSONL of real answers {model, prompt, response}"
    )
    args = parser.parse_args()
    import uvicorn

    app: Any
    if args.label:
        answers = {}
        if args.answers:
            with open(args.answers, "rb") as file:
                rows = [orjson.loads(line) for line in file if line.strip()]
            answers = {(r["model"], r["prompt"]): r["response"] for r in rows}
        app = FakeLabelUpstream(LabelScript(answers=answers, delay=args.delay)).app
    else:
        app = FakeUpstream(Behaviour(delay=args.delay, chunks=args.chunks), keep=1).app
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
