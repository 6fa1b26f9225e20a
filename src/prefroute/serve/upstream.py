"""Calls to the OpenAI-compatible upstreams: bounded retries, then the other model.

A connect error, a timeout or a 5xx is worth another try after a short
backoff; a 4xx is the client's problem and goes back to it as the upstream
said it. When every attempt at the chosen model fails, the other model gets
the same number of tries (``fallback``, on by default): a cheaper or dearer
answer beats none. Responses are opened as streams so the caller passes
bytes on as they arrive, streaming or not.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from yarl import URL

from prefroute.errors import UpstreamError, UpstreamTimeoutError
from prefroute.serve.config import ROLES, Role, RoutingSettings
from prefroute.serve.metrics import Metrics
from prefroute.serve.routing import Decision

TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a call or a body read raises when the upstream is unreachable, slow or breaks off."""


@dataclass
class Reply:
    """An upstream response: the whole body in ``content``, or None for a stream to relay."""

    response: aiohttp.ClientResponse
    role: Role
    model: str
    attempts: int
    fell_back: bool
    content: bytes | None

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def ok(self) -> bool:
        return _success(self.response.status)


class Upstreams:
    """The strong and weak upstreams behind one pooled ``aiohttp.ClientSession``.

    aiohttp rather than httpx: on the load benchmark's calls it spends about a
    quarter of httpx's CPU per call (0.2 vs 0.87 ms), and that CPU is what
    queues requests behind each other on the server's event loop.
    """

    def __init__(self, settings: RoutingSettings, client: aiohttp.ClientSession, metrics: Metrics):
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self._targets: dict[Role, tuple[URL, dict[str, str], aiohttp.ClientTimeout]] = {}
        for role in ROLES:
            upstream = settings.upstream(role)
            headers = {
                "content-type": "application/json",
                "accept-encoding": "identity",  # chunks pass on as sent, nothing to decompress
                **upstream.headers(),
            }
            url = URL(f"{upstream.base_url}/chat/completions").update_query(upstream.query)
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=upstream.connect_timeout, sock_read=upstream.timeout
            )
            self._targets[role] = (url, headers, timeout)

    @staticmethod
    def make_client(max_connections: int) -> aiohttp.ClientSession:
        """A session with a keep-alive connection per concurrency slot.

        No cookie jar: one upstream's cookies must never reach another user's request.
        """
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=max_connections),
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("user-agent",),
        )

    async def open(
        self, decision: Decision, body: Mapping[str, Any], request_id: str, *, stream: bool
    ) -> Reply:
        """Send ``body`` to the decided model (then, failing that, the other one).

        Unless the answer is a stream to relay, it is read here in full, so an
        upstream that breaks off mid-answer is retried like one that never
        answered. Raises ``UpstreamTimeoutError`` (504) when the last attempt
        timed out, ``UpstreamError`` (502) otherwise, listing each failure.
        """
        roles: list[Role] = [decision.role]
        if self.settings.fallback:
            roles.append(decision.other)
        failures: list[str] = []
        timed_out = False
        attempts = 0
        for n, role in enumerate(roles):
            if n:
                self.metrics.fallbacks.labels(role).inc()
            model = decision.models[role]
            payload = orjson.dumps({**body, "model": model})
            for attempt in range(self.settings.retries + 1):
                if attempt:
                    self.metrics.retries.labels(role).inc()
                    await asyncio.sleep(self._backoff(attempt))
                attempts += 1
                content = None
                try:
                    response = await self._send(role, payload, request_id)
                    if response.status >= 500:
                        failure = f"HTTP {response.status} {await _snippet(response)}"
                    elif not (stream and _success(response.status)):
                        content = await _read(response)
                except TimeoutError as exc:
                    failure, timed_out = f"timed out ({type(exc).__name__})", True
                except aiohttp.ClientError as exc:
                    failure, timed_out = str(exc) or type(exc).__name__, False
                else:
                    if response.status < 500:
                        return Reply(response, role, model, attempts, n > 0, content)
                    timed_out = False
                failures.append(f"{model}: {failure}")
        error = UpstreamTimeoutError if timed_out else UpstreamError
        raise error(
            f"the upstream models failed after {attempts} attempts: " + "; ".join(failures),
            code="upstream_timeout" if timed_out else "upstream_unavailable",
        )

    async def _send(self, role: Role, payload: bytes, request_id: str) -> aiohttp.ClientResponse:
        """One attempt, up to the response headers (whose wait is the upstream latency)."""
        url, headers, timeout = self._targets[role]
        start = time.perf_counter()
        response = await self.client.post(
            url, data=payload, headers={**headers, "x-request-id": request_id},
            timeout=timeout, allow_redirects=False,
        )  # fmt: skip
        self.metrics.upstream_seconds.labels(role).observe(time.perf_counter() - start)
        return response

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so retries from many requests do not arrive together."""
        return self.settings.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def _success(status: int) -> bool:
    """2xx; aiohttp's own ``ok`` also counts 3xx, which is not an answer to relay."""
    return 200 <= status < 300


async def _read(response: aiohttp.ClientResponse) -> bytes:
    async with response:  # released to the pool when read in full, else closed
        return await response.read()


async def _snippet(response: aiohttp.ClientResponse, limit: int = 200) -> str:
    """The start of an error body for the message, then the connection is let go."""
    try:
        text = (await _read(response)).decode("utf-8", "replace")
    except TRANSPORT_ERRORS:
        text = ""
    return " ".join(text.split())[:limit]
