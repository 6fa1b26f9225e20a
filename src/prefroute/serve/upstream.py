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
import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from prefroute.errors import UpstreamError, UpstreamTimeoutError
from prefroute.serve.config import ROLES, Role, RoutingSettings
from prefroute.serve.metrics import Metrics
from prefroute.serve.routing import Decision


@dataclass
class Reply:
    """An upstream response: the whole body in ``content``, or None for a stream to relay."""

    response: httpx.Response
    role: Role
    model: str
    attempts: int
    fell_back: bool
    content: bytes | None


class Upstreams:
    """The strong and weak upstreams behind one pooled ``httpx.AsyncClient``."""

    def __init__(self, settings: RoutingSettings, client: httpx.AsyncClient, metrics: Metrics):
        self.settings = settings
        self.client = client
        self.metrics = metrics
        self._targets: dict[Role, tuple[httpx.URL, dict[str, str], httpx.Timeout]] = {}
        for role in ROLES:
            upstream = settings.upstream(role)
            headers = {
                "content-type": "application/json",
                "accept-encoding": "identity",  # chunks pass on as sent, nothing to decompress
                **upstream.headers(),
            }
            url = httpx.URL(f"{upstream.base_url}/chat/completions", params=upstream.query)
            timeout = httpx.Timeout(upstream.timeout, connect=upstream.connect_timeout)
            self._targets[role] = (url, headers, timeout)

    @staticmethod
    def make_client(max_connections: int) -> httpx.AsyncClient:
        """A client that keeps a connection per concurrency slot, in small pools."""
        transport = ShardedTransport(max_connections)
        return httpx.AsyncClient(transport=transport, timeout=None, follow_redirects=False)

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
                    if response.status_code >= 500:
                        failure = f"HTTP {response.status_code} {await _snippet(response)}"
                    elif not (stream and response.is_success):
                        content = await _read(response)
                except httpx.TimeoutException as exc:
                    failure, timed_out = f"timed out ({type(exc).__name__})", True
                except httpx.TransportError as exc:
                    failure, timed_out = str(exc) or type(exc).__name__, False
                else:
                    if response.status_code < 500:
                        return Reply(response, role, model, attempts, n > 0, content)
                    timed_out = False
                failures.append(f"{model}: {failure}")
        error = UpstreamTimeoutError if timed_out else UpstreamError
        raise error(
            f"the upstream models failed after {attempts} attempts: " + "; ".join(failures),
            code="upstream_timeout" if timed_out else "upstream_unavailable",
        )

    async def _send(self, role: Role, payload: bytes, request_id: str) -> httpx.Response:
        """One attempt, up to the response headers (whose wait is the upstream latency)."""
        url, headers, timeout = self._targets[role]
        request = self.client.build_request(
            "POST", url, content=payload, headers={**headers, "x-request-id": request_id},
            timeout=timeout,
        )  # fmt: skip
        start = time.perf_counter()
        response = await self.client.send(request, stream=True)
        self.metrics.upstream_seconds.labels(role).observe(time.perf_counter() - start)
        return response

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so retries from many requests do not arrive together."""
        return self.settings.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


class ShardedTransport(httpx.AsyncBaseTransport):
    """Connection pools of ``POOL_SIZE`` connections, taken in turn.

    httpcore's pool re-scans every connection (and, for idle ones, every other
    connection, with a ``poll`` system call each) whenever a request starts or
    ends: quadratic in the pool size. At 64 concurrent requests that scan cost
    more than everything else the server does per request; pools of 8 make it
    negligible and still reuse connections.
    """

    POOL_SIZE = 8

    def __init__(self, max_connections: int) -> None:
        ssl = httpx.create_ssl_context()  # one CA bundle load (~30 ms, ~1 MB), not one per pool
        per_pool = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=self.POOL_SIZE
        )
        count = max(1, -(-max_connections // self.POOL_SIZE))
        self._pools = [httpx.AsyncHTTPTransport(verify=ssl, limits=per_pool) for _ in range(count)]
        self._next = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


async def _read(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    finally:
        await response.aclose()


async def _snippet(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error body for the message, then the connection is let go."""
    try:
        text = (await response.aread()).decode("utf-8", "replace")
    except httpx.HTTPError:
        text = ""
    finally:
        await response.aclose()
    return " ".join(text.split())[:limit]
