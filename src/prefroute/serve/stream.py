"""The client's side of a request: noticing it leave, and relaying a stream to it.

``Lifeline`` watches for the client going away from the moment its body is
read: whatever the request is doing then (waiting for a slot of an upstream,
for the upstream's first byte, relaying), it is cancelled, its slots are
freed and the upstream connection is closed, so an abandoned answer stops
costing tokens and capacity.

``ProxyStream`` relays server-sent events as they arrive; nothing buffers
the answer. Every way a stream can end still ends the HTTP body cleanly: an
upstream that breaks off mid-answer (connection dropped, ``chunk_timeout``)
gets an OpenAI-style ``data: {"error": ...}`` event, which the OpenAI SDKs
raise as an APIError, and so does a stream still running when the server's
shutdown grace period is over, instead of a chunked body cut in half.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from prefroute.errors import ServeError, UpstreamError
from prefroute.serve.metrics import StreamUsage
from prefroute.serve.upstream import TRANSPORT_ERRORS


class Lifeline:
    """Cancels the request's task when the client disconnects, while ``armed``.

    Armed only while the task runs prefroute's own code, which catches the
    ``CancelledError`` and calls ``absorb``; disarmed before the last bytes of
    a response go out (a completed response also reads as a disconnect).
    """

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self.armed = True
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self.armed:
            self._task.cancel()

    def absorb(self) -> None:
        """The cancellation this lifeline caused was caught: the task goes on normally."""
        self.armed = False
        self._task.uncancel()

    def close(self) -> None:
        self.armed = False
        self._watcher.cancel()


class ProxyStream(Response):
    """Relay an upstream SSE body (``head`` first: the part already read to check it);
    ``on_close(outcome, usage)`` runs exactly once at the end.

    ``outcome`` is ``ok``, ``client_disconnect``, ``upstream_stream_error`` or
    ``server_shutdown``.
    """

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        head: bytes,
        headers: Mapping[str, str],
        lifeline: Lifeline,
        on_close: Callable[[str, StreamUsage], Awaitable[None]],
    ) -> None:
        self.upstream = upstream
        self.head = head
        self.lifeline = lifeline
        self.on_close = on_close
        self.status_code = upstream.status
        self.background = None
        self.init_headers(headers)
        self._ended = True  # whether the bytes sent so far end on an event boundary
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        usage = StreamUsage()
        outcome = "client_disconnect"
        life = self.lifeline
        try:
            if not life.gone:
                life.armed = True
                outcome = await self._relay(send, usage)
        except asyncio.CancelledError:
            if not life.gone:  # cancelled by the server: its shutdown grace period is over
                outcome = "server_shutdown"
                error = ServeError(
                    "the server is shutting down; the answer was cut off, retry it",
                    code="server_shutting_down",
                )
                await self._end(send, error)
            else:
                life.absorb()
        finally:
            life.close()
            # a finished body returns its connection to the pool; any other is closed
            if outcome == "ok":
                self.upstream.release()
            else:
                self.upstream.close()
            await self.on_close(outcome, usage)

    async def _relay(self, send: Send, usage: StreamUsage) -> str:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        self._started = True
        try:
            chunk = self.head
            while chunk:
                usage.feed(chunk)
                self._ended = chunk.endswith(b"\n\n")
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await self.upstream.content.readany()
        except TRANSPORT_ERRORS as exc:
            why = "no data for too long" if isinstance(exc, TimeoutError) else "connection lost"
            error = UpstreamError(
                f"the upstream stream broke off ({why})", code="upstream_stream_error"
            )
            await self._end(send, error)
            return "upstream_stream_error"
        self.lifeline.armed = False
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return "ok"

    async def _end(self, send: Send, error: ServeError) -> None:
        """Finish the body with ``error`` as an event of its own."""
        self.lifeline.armed = False
        if not self._started:
            return
        event = b"data: " + orjson.dumps(error.body()) + b"\n\n"
        body = event if self._ended else b"\n\n" + event
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
