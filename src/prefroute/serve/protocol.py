"""uvicorn's HTTP/1.1 protocols with a deadline for the request head (slowloris).

uvicorn closes idle keep-alive connections, but a client that sends the
first bytes of a request and then trickles the rest (or nothing) holds its
connection for as long as it likes: 64 such clients held theirs for a
minute. Here the head of every request must arrive within
``config.client_timeout`` seconds of its first byte (or of the connection
opening); a client that is slower gets ``408`` and the connection closes. A
head that arrives in one piece, as with every real client, costs no timer.
The body has its own deadline in the app, between its parts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 40\r\nconnection: close\r\n\r\nthe request head did not arrive in time\n"
)


class HeadTimeout:
    """Mixed into a uvicorn protocol: close a connection whose request head is too slow."""

    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)  # type: ignore[call-arg]
        self._head_seconds: float | None = getattr(config, "client_timeout", None)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        super().data_received(data)  # type: ignore[misc]
        if self.cycle is not before:
            self._disarm()  # a head arrived in full
        elif self._head_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first part of a head; the rest must follow in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        if self._head_seconds is not None:
            self._head_timer = self.loop.call_later(self._head_seconds, self._expire)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _expire(self) -> None:
        self._head_timer = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.write(TIMEOUT_RESPONSE)
            self.transport.close()


class H11HeadTimeout(HeadTimeout, H11Protocol):  # type: ignore[misc]
    """The pure-Python protocol, when httptools is not installed."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover
    Protocol: type[asyncio.Protocol] = H11HeadTimeout
else:

    class HttpToolsHeadTimeout(HeadTimeout, HttpToolsProtocol):  # type: ignore[misc]
        """uvicorn's default protocol when httptools is installed (the serve extra)."""

    Protocol = HttpToolsHeadTimeout
