"""Server-sent events passed through as they arrive, ending cleanly on every failure.

Chunks go to the client the moment the upstream sends them; nothing buffers
the answer. While relaying, the response also listens for the client going
away and then closes the upstream connection, so an abandoned answer stops
costing tokens. An upstream that breaks off mid-answer (connection dropped,
read timeout) gets an OpenAI-style ``data: {"error": ...}`` event, which the
OpenAI SDKs raise as an APIError, instead of a stream that hangs or just stops.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import anyio
import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from prefroute.errors import UpstreamError
from prefroute.serve.metrics import StreamUsage
from prefroute.serve.upstream import TRANSPORT_ERRORS


class ProxyStream(Response):
    """Relay an upstream SSE body; ``on_close(outcome, usage)`` runs exactly once at the end.

    ``outcome`` is ``ok``, ``client_disconnect`` or ``upstream_stream_error``.
    """

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        headers: Mapping[str, str],
        on_close: Callable[[str, StreamUsage], Awaitable[None]],
    ) -> None:
        self.upstream = upstream
        self.on_close = on_close
        self.status_code = upstream.status
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        usage = StreamUsage()
        outcome = "client_disconnect"  # unless the relay finishes
        try:
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                outcome = await self._relay(send, usage)
                tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
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
        outcome, ended = "ok", True
        try:
            async for chunk in self.upstream.content.iter_any():
                usage.feed(chunk)
                ended = chunk.endswith(b"\n\n")
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except TRANSPORT_ERRORS as exc:
            error = UpstreamError(
                f"the upstream stream broke off: {str(exc) or type(exc).__name__}",
                code="upstream_stream_error",
            )
            event = b"data: " + orjson.dumps(error.body()) + b"\n\n"
            # finish a half-sent event first, so the error is an event of its own
            body = event if ended else b"\n\n" + event
            await send({"type": "http.response.body", "body": body, "more_body": True})
            outcome = "upstream_stream_error"
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return outcome
