"""Calls to the OpenAI-compatible upstreams: bounded retries, a deadline, then the other model.

Per attempt, ``first_byte_timeout`` bounds the wait for the response headers
(for a stream, for its first event) and ``chunk_timeout`` each read after
that; every attempt of one request fits in ``deadline``. A connect error, a
5xx or an answer that breaks off is worth another try after a short backoff;
a timeout, a 429 or a 401/403 (the *server's* upstream key refused) is not,
on the same model. When the chosen model fails, is out of slots, or its
circuit is open (``breaker``), the next model of the decision's plan gets the
request (``fallback``, on by default): for two models the other one, among N
the policy's next choice; a cheaper or dearer answer beats none. Other
4xx are the client's problem and go back to it as the upstream said them.

A 200 counts only if it is what was asked for: a JSON chat completion, or an
event stream whose first event is JSON. Anything else (an HTML login page, a
cut body, an empty stream) fails like a 5xx, so the client never gets a
``str`` or an empty answer where the SDK expects a completion. Client-facing
messages name the model and its role, never the upstream's address, and
never repeat the upstream's body.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from yarl import URL

from prefroute.errors import (
    OverloadedError,
    UpstreamError,
    UpstreamRateLimitError,
    UpstreamTimeoutError,
)
from prefroute.serve.breaker import Breaker
from prefroute.serve.config import ROLES, RoutingSettings
from prefroute.serve.limits import UpstreamSlots
from prefroute.serve.metrics import Metrics
from prefroute.serve.routing import Choice, Decision
from prefroute.serve.schema import ChatBody

TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What a call or a body read raises when the upstream is unreachable, slow or breaks off."""
MAX_FIRST_EVENT = 1 << 20
"""Bytes of a stream read while looking for its first event, before calling it malformed."""
AUTH_REFUSED = (401, 403)
NOT_RETRIED = frozenset({"timeout", "deadline", "rate_limited", "auth"})
"""Failures that another try at the same model within one request would only repeat."""


@dataclass
class Failure:
    """One failed or skipped attempt, described for the client without internal details."""

    upstream: str
    model: str
    kind: str
    detail: str
    retry_after: float | None = None

    def __str__(self) -> str:
        role = f"{self.upstream} " if self.upstream in ROLES else ""
        return f"{role}model {self.model}: {self.detail}"


@dataclass
class Reply:
    """An upstream answer: the whole body in ``content``, or a stream to relay after ``head``.

    A stream keeps its model's slot until ``finish`` is called with the relay's outcome.
    """

    response: aiohttp.ClientResponse
    upstream: str
    model: str
    attempts: int
    fell_back: bool
    content: bytes | None
    usage: Any = None
    head: bytes = b""
    failures: list[Failure] = field(default_factory=list)
    finish: Callable[[str], None] = lambda outcome: None

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def ok(self) -> bool:
        return _success(self.response.status)


class _Bad(Exception):
    """An attempt's answer was not usable: ``kind`` and ``detail`` become a ``Failure``."""

    def __init__(self, kind: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.retry_after = kind, detail, retry_after


class Upstreams:
    """Every upstream (strong, weak, each of ``[models]``), behind its own pooled
    ``aiohttp.ClientSession``.

    Its own session each, so a hung model's open connections never hold up the
    other's. aiohttp rather than httpx: on the load benchmark's calls it spends
    about a quarter of httpx's CPU per call (0.2 vs 0.87 ms), and that CPU is
    what queues requests behind each other on the server's event loop. Use as
    ``async with Upstreams(...) as upstreams``.
    """

    def __init__(self, settings: RoutingSettings, metrics: Metrics, per_upstream: int) -> None:
        self.settings = settings
        self.metrics = metrics
        self.names = list(settings.upstreams())
        self.slots = UpstreamSlots(per_upstream, self.names)
        self.breakers = {
            name: Breaker(
                failures=settings.breaker_failures,
                cooldown=settings.breaker_cooldown,
                on_change=functools.partial(metrics.circuit_state, name),
            )
            for name in self.names
        }
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self._targets: dict[str, tuple[URL, dict[str, str]]] = {}
        self._timeouts: dict[tuple[str, bool], aiohttp.ClientTimeout] = {}
        for name, upstream in settings.upstreams().items():
            headers = {
                "content-type": "application/json",
                "accept-encoding": "identity",  # chunks pass on as sent, nothing to decompress
                **upstream.headers(),
            }
            url = URL(f"{upstream.base_url}/chat/completions").update_query(upstream.query)
            self._targets[name] = (url, headers)
            for stream in (True, False):
                self._timeouts[name, stream] = aiohttp.ClientTimeout(
                    total=None,
                    sock_connect=upstream.connect_timeout,
                    sock_read=upstream.read_timeout(stream),
                )
        self._seconds = {n: metrics.upstream_seconds.labels(n) for n in self.names}
        self._in_flight = {n: metrics.upstream_in_flight.labels(n) for n in self.names}

    async def __aenter__(self) -> Upstreams:
        for name in self.names:
            # No cookie jar: one upstream's cookies must never reach another user's request.
            self.sessions[name] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.slots.per_upstream),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("user-agent",),
            )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for session in self.sessions.values():
            await session.close()

    def health(self) -> dict[str, Any]:
        """Per upstream: calls in flight, circuit state, seconds until it may be tried."""
        return {
            name: {
                "in_flight": self.slots.in_use[name],
                "circuit": self.breakers[name].state,
                "retry_in": round(self.breakers[name].retry_in(), 3) or None,
            }
            for name in self.names
        }

    async def open(
        self, decision: Decision | Choice, body: ChatBody, request_id: str, *, stream: bool
    ) -> Reply:
        """Send ``body`` to the decided model, then, failing that, along the decision's plan.

        Unless the answer is a stream to relay, it is read here in full, so an
        upstream that breaks off mid-answer is retried like one that never
        answered. Raises ``UpstreamTimeoutError`` (504) when the last attempt
        timed out, ``UpstreamRateLimitError`` (429) when every model is
        rate-limited, ``OverloadedError`` (503) when every model's slots are
        busy, ``UpstreamError`` (502) otherwise, listing each failure.
        """
        deadline = time.monotonic() + self.settings.deadline
        plan = decision.plan if self.settings.fallback else decision.plan[:1]
        failures: list[Failure] = []
        attempts = 0
        for n, (role, model) in enumerate(plan):
            breaker = self.breakers[role]
            if not breaker.allow():
                kind = "rate_limited" if breaker.held else "circuit_open"
                wait = breaker.retry_in()
                why = "rate-limited" if breaker.held else "failing (circuit open)"
                self._failed(failures, Failure(role, model, kind, f"skipped: {why}, retry in "
                                               f"{wait:.0f} s", wait))  # fmt: skip
                continue
            if not self.slots.take(role):
                breaker.abandoned()
                self._failed(failures, Failure(role, model, "at_capacity", "skipped: all "
                             f"{self.slots.per_upstream} of its slots are busy"))  # fmt: skip
                continue
            self._in_flight[role].inc()
            if n:
                self.metrics.fallbacks.labels(role).inc()
            payload = body.payload(model)
            keep = False
            try:
                for attempt in range(self.settings.retries + 1):
                    if attempt:
                        self.metrics.retries.labels(role).inc()
                        left = deadline - time.monotonic()
                        await asyncio.sleep(min(self._backoff(attempt), left))
                    attempts += 1
                    try:
                        reply = await self._attempt(role, model, payload, request_id, stream,
                                                    deadline)  # fmt: skip
                    except _Bad as bad:
                        failure = Failure(role, model, bad.kind, bad.detail, bad.retry_after)
                        self._failed(failures, failure)
                        if bad.kind == "rate_limited":
                            breaker.hold(bad.retry_after or 0.0)
                        else:
                            breaker.failed()
                        if bad.kind in NOT_RETRIED or not breaker.allow():
                            break
                        continue
                    breaker.succeeded()
                    reply.attempts, reply.fell_back, reply.failures = attempts, n > 0, failures
                    if reply.content is None:  # a stream: the slot is held while it is relayed
                        keep = True
                        reply.finish = self._finisher(role)
                    return reply
            except BaseException:
                breaker.abandoned()
                raise
            finally:
                if not keep:
                    self.slots.give(role)
                    self._in_flight[role].dec()
        raise _error(failures, attempts)

    async def _attempt(
        self, role: str, model: str, payload: bytearray, request_id: str, stream: bool,
        deadline: float,
    ) -> Reply:  # fmt: skip
        """One attempt: a usable ``Reply``, or ``_Bad`` saying what was wrong."""
        url, headers = self._targets[role]
        timeout = self._timeouts[role, stream]
        upstream = self.settings.upstream(role)
        first_byte = upstream.first_byte_timeout if stream else upstream.answer_timeout
        wait = min(first_byte, deadline - time.monotonic())
        if wait <= 0:
            raise _Bad("deadline", f"no time left of the {self.settings.deadline:g} s deadline")
        response: aiohttp.ClientResponse | None = None
        relay = False  # a stream handed on to be relayed stays open
        start = time.perf_counter()
        try:
            try:
                async with asyncio.timeout(wait):
                    response = await self.sessions[role].post(
                        url, data=payload, headers={**headers, "x-request-id": request_id},
                        timeout=timeout, allow_redirects=False,
                    )  # fmt: skip
                    self._seconds[role].observe(time.perf_counter() - start)
                    if stream and _success(response.status):
                        head = await _first_event(response)
                        relay = True
                        return Reply(response, role, model, 0, False, None, head=head)
            except TimeoutError:
                kind = "timeout" if wait == first_byte else "deadline"
                raise _Bad(kind, f"no response within {wait:.3g} s") from None
            status = response.status
            if status == 429:
                raise _Bad("rate_limited", "HTTP 429 (rate-limited)", _retry_after(response))
            if status in AUTH_REFUSED:
                raise _Bad("auth", f"HTTP {status}: it refused this server's credentials")
            if status >= 500 or status < 200 or 300 <= status < 400:
                raise _Bad("http_5xx" if status >= 500 else "http_other", f"HTTP {status}")
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                content = await _read(response)
            if not _success(status):
                return Reply(response, role, model, 0, False, content)  # the client's mistake
            return Reply(response, role, model, 0, False, content, usage=_completion(content))
        except TimeoutError:
            raise _Bad("deadline", "the answer did not arrive before the deadline") from None
        except aiohttp.ClientConnectorError as exc:
            errno = exc.os_error.errno
            reason = os.strerror(errno).lower() if errno else "no connection"
            raise _Bad("connect", f"could not connect ({reason})") from None
        except aiohttp.ClientError:
            raise _Bad("broken", "the connection closed before the answer was complete") from None
        finally:
            if response is not None and not relay:
                response.close()

    def _failed(self, failures: list[Failure], failure: Failure) -> None:
        failures.append(failure)
        self.metrics.upstream_failures.labels(failure.upstream, failure.kind).inc()

    def _finisher(self, role: str) -> Callable[[str], None]:
        """What a relayed stream calls once, when it ends: free the slot, tell the breaker."""

        def finish(outcome: str) -> None:
            self.slots.give(role)
            self._in_flight[role].dec()
            if outcome == "upstream_stream_error":
                self.breakers[role].failed()

        return finish

    def _backoff(self, attempt: int) -> float:
        """Exponential, with jitter so retries from many requests do not arrive together."""
        return self.settings.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def _success(status: int) -> bool:
    """2xx; aiohttp's own ``ok`` also counts 3xx, which is not an answer to relay."""
    return 200 <= status < 300


async def _read(response: aiohttp.ClientResponse) -> bytes:
    async with response:  # released to the pool when read in full, else closed
        return await response.read()


def _completion(content: bytes) -> Any:
    """The ``usage`` of a JSON chat completion; ``_Bad`` when ``content`` is not one."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        what = "an empty body" if not content.strip() else "a body that is not JSON"
        raise _Bad("malformed", f"answered 200 with {what}") from None
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _Bad("malformed", "answered 200 with JSON that is not a chat completion")
    return data.get("usage")


async def _first_event(response: aiohttp.ClientResponse) -> bytes:
    """The stream's bytes up to its first ``data:`` event, which must be a JSON object.

    Read before the client gets anything, so a stream that is not one (an HTML
    page, a cut event, nothing at all) can still go to the other model.
    """
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/event-stream"):
        raise _Bad("malformed", f"answered a stream request with {kind or 'no content type'}")
    head = b""
    while True:
        chunk = await response.content.readany()
        if not chunk:
            raise _Bad("malformed", "its stream ended before any event")
        head += chunk
        for event in head.replace(b"\r\n", b"\n").split(b"\n\n")[:-1]:
            data = b"\n".join(
                line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")
            )
            if not data:
                continue  # a comment or a keep-alive
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise _Bad("malformed", "its stream's first event is not JSON") from None
            if not isinstance(parsed, dict) or "error" in parsed:
                raise _Bad("malformed", "its stream's first event is not a completion chunk")
            return head
        if len(head) > MAX_FIRST_EVENT:
            raise _Bad("malformed", "its stream sent no event in its first MiB")


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) or ``retry-after-ms``, in seconds."""
    millis = response.headers.get("retry-after-ms")
    value = response.headers.get("retry-after")
    try:
        if millis is not None:
            return float(millis) / 1000
        if value is not None:
            return float(value)
    except ValueError:
        pass
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _error(failures: list[Failure], attempts: int) -> Exception:
    """The client's error when no model answered: its status says what to do."""
    listed = "; ".join(str(f) for f in failures)
    kinds = {f.kind for f in failures}
    waits = [f.retry_after for f in failures if f.retry_after]
    retry = max(1.0, min(waits)) if waits else None
    if kinds <= {"rate_limited"}:
        return UpstreamRateLimitError(
            f"every upstream model is rate-limited for now: {listed}",
            code="upstream_rate_limited", retry_after=retry or 1.0,
        )  # fmt: skip
    if kinds <= {"at_capacity"}:
        return OverloadedError(f"server at capacity: {listed}", code="server_overloaded")
    if kinds <= {"auth", "circuit_open", "at_capacity"} and "auth" in kinds:
        return UpstreamError(
            "the upstream models refused this server's own credentials; the server's "
            f"upstream API key needs fixing, the request itself was fine: {listed}",
            code="upstream_auth_failed",
        )
    message = f"the upstream models failed after {attempts} attempts: {listed}"
    if failures and failures[-1].kind in ("timeout", "deadline"):
        return UpstreamTimeoutError(message, code="upstream_timeout")
    return UpstreamError(message, code="upstream_unavailable", retry_after=retry)
