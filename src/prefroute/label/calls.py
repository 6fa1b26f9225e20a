"""Chat-completion calls to OpenAI-compatible upstreams, within each one's limits.

An upstream *server* (a base URL) gets at most ``concurrency`` calls in
flight and, with ``rpm``, at most that many started per minute: roles that
share a base URL (a strong model and a judge on one provider) share its
limits, as they share its rate limits. A connect error, a timeout or a 5xx is
retried ``retries`` times with exponential backoff and jitter (so calls that
failed together do not return together); a ``429`` pauses the whole server
for its ``Retry-After`` (or the backoff when it sends none) and does not use
up the retries, since it says "later", not "broken". Any other 4xx is
``UpstreamRefusedError``: a wrong key or model name fails every call alike.

aiohttp, as the server uses: on the label benchmark's calls it costs a
fraction of httpx's CPU per call, and that CPU, not the network, is what
bounds calls per second on a small machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from yarl import URL

from prefroute.errors import UpstreamError, UpstreamRefusedError, UpstreamTimeoutError
from prefroute.serve.config import UpstreamSettings

RATE_LIMIT_WAITS = 20
"""429s one call waits out before it fails: enough for a minute-long limit window."""
MAX_RETRY_AFTER = 120.0
"""Longest ``Retry-After`` honoured as given (s); a longer one is likely a daily quota."""


@dataclass(frozen=True)
class Reply:
    """A completion's message text and the upstream's token counts (None if it sent none)."""

    content: str
    prompt_tokens: int | None
    completion_tokens: int | None


class Lane:
    """One upstream server's limits: call slots, start pacing, and 429 pauses."""

    def __init__(self, concurrency: int, rpm: float | None) -> None:
        self.slots = asyncio.Semaphore(concurrency)
        self.interval = 60.0 / rpm if rpm else 0.0
        self._next_start = 0.0
        self._paused_until = 0.0

    async def wait_turn(self) -> None:
        """Sleep until this call may start: after any pause, one ``interval`` after the last."""
        while True:
            now = time.monotonic()
            start = max(now, self._next_start, self._paused_until)
            if start <= now:
                self._next_start = now + self.interval
                return
            await asyncio.sleep(start - now)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)


@dataclass(frozen=True)
class _Target:
    url: URL
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout
    lane: Lane


class Caller:
    """Sends chat completions for named roles (strong, weak, judge) through their lanes."""

    def __init__(
        self,
        upstreams: Mapping[Any, UpstreamSettings],
        session: aiohttp.ClientSession,
        *,
        concurrency: int,
        rpm: float | None = None,
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        self.session = session
        self.retries = retries
        self.backoff = backoff
        self.attempts = 0
        self.rate_limited = 0
        lanes: dict[str, Lane] = {}
        self._targets: dict[str, _Target] = {}
        for role, upstream in upstreams.items():
            lane = lanes.setdefault(upstream.base_url, Lane(concurrency, rpm))
            self._targets[role] = _Target(
                URL(f"{upstream.base_url}/chat/completions").update_query(upstream.query),
                {"content-type": "application/json", **upstream.headers()},
                aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=upstream.connect_timeout,
                    sock_read=upstream.read_timeout(stream=False),
                ),
                lane,
            )

    @staticmethod
    def make_session(connections: int) -> aiohttp.ClientSession:
        """A keep-alive pool with a connection per call slot; no cookies shared between calls."""
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def complete(self, role: str, body: Mapping[str, Any]) -> Reply:
        """One chat completion for ``role``, retried as the module docstring says."""
        target = self._targets[role]
        payload = orjson.dumps(body)
        failures: list[str] = []
        timed_out = False
        waits = 0
        attempt = 0
        while attempt <= self.retries:
            if attempt:
                await asyncio.sleep(self._backoff(attempt))
            async with target.lane.slots:
                await target.lane.wait_turn()
                self.attempts += 1
                try:
                    async with self.session.post(
                        target.url, data=payload, headers=target.headers, timeout=target.timeout
                    ) as response:
                        status = response.status
                        data = await response.read()
                        retry_after = response.headers.get("retry-after")
                except TimeoutError as exc:
                    failures.append(f"timed out ({type(exc).__name__})")
                    timed_out, attempt = True, attempt + 1
                    continue
                except aiohttp.ClientError as exc:
                    failures.append(str(exc) or type(exc).__name__)
                    timed_out, attempt = False, attempt + 1
                    continue
                if status == 429 and waits < RATE_LIMIT_WAITS:
                    waits += 1
                    self.rate_limited += 1
                    target.lane.pause(_retry_after(retry_after, self._backoff(waits)))
                    continue
            timed_out = False
            if 200 <= status < 300:
                reply = _reply(data)
                if reply is not None:
                    return reply
                failures.append(f"HTTP {status} without choices[0].message.content")
            elif status >= 500 or status == 429:
                failures.append(f"HTTP {status} {_snippet(data)}")
            else:
                raise UpstreamRefusedError(
                    f"the {role} upstream ({target.url}) refused the call with HTTP {status}: "
                    f"{_snippet(data)}"
                )
            attempt += 1
        error = UpstreamTimeoutError if timed_out else UpstreamError
        raise error(
            f"the {role} upstream failed after {len(failures)} attempts: " + "; ".join(failures)
        )

    def _backoff(self, attempt: int) -> float:
        return self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def _retry_after(value: str | None, default: float) -> float:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), else ``default``."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _reply(data: bytes) -> Reply | None:
    """The message text and usage of a completion body; None when it has no text."""
    try:
        body = orjson.loads(data)
        content = body["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return None
    if not isinstance(content, str):
        return None
    usage = body.get("usage") if isinstance(body, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Reply(
        content,
        prompt if isinstance(prompt, int) else None,
        completion if isinstance(completion, int) else None,
    )


def _snippet(data: bytes, limit: int = 200) -> str:
    return " ".join(data.decode("utf-8", "replace").split())[:limit]
