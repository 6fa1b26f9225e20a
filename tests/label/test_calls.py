"""Calls over real HTTP: limits per upstream server, retries, 429s, refusals."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest
from serve.servers import free_port, serve_in_thread

from prefroute.errors import UpstreamError, UpstreamRefusedError, UpstreamTimeoutError
from prefroute.label.calls import Caller, Reply
from prefroute.label.store import request_key
from prefroute.serve.config import UpstreamSettings
from prefroute.testing import Behaviour, FakeLabelUpstream, FakeUpstream, LabelScript


def body(n: int, model: str = "m") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"question {n}"}]}


def complete_all(
    url: str, bodies: list[dict[str, Any]], **limits: Any
) -> tuple[list[Reply | BaseException], Caller]:
    async def main() -> tuple[list[Reply | BaseException], Caller]:
        wait = limits.pop("timeout", 5.0)
        upstream = UpstreamSettings(base_url=url, chunk_timeout=wait, answer_timeout=wait)
        async with Caller.make_session(8) as session:
            caller = Caller({"strong": upstream}, session, **{"concurrency": 4, **limits})
            results = await asyncio.gather(
                *(caller.complete("strong", b) for b in bodies), return_exceptions=True
            )
            return list(results), caller

    return asyncio.run(main())


def test_429_waits_for_retry_after_and_does_not_use_up_retries(fake: FakeLabelUpstream) -> None:
    fake.reset(LabelScript(rate_limited=1.0, retry_after=0.3))
    results, caller = complete_all(fake.url, [body(n) for n in range(3)], retries=0)
    assert all(isinstance(r, Reply) and r.prompt_tokens for r in results)
    assert caller.rate_limited == 3
    for b in map(body, range(3)):
        (refused, status), (answered, ok) = fake.arrivals[request_key(b)]
        assert (status, ok) == (429, 200)
        assert answered - refused >= 0.3  # Retry-After honoured


def test_5xx_is_retried_with_backoff(fake: FakeLabelUpstream) -> None:
    fake.reset(LabelScript(server_errors=1.0))
    results, _ = complete_all(fake.url, [body(n) for n in range(4)], retries=1, backoff=0.01)
    assert all(isinstance(r, Reply) for r in results)
    assert [s for b in map(body, range(4)) for _, s in fake.arrivals[request_key(b)]] == [
        503,
        200,
    ] * 4


def test_concurrency_and_rpm_hold_per_upstream_server(fake: FakeLabelUpstream) -> None:
    fake.reset(LabelScript(delay=0.05))
    bodies = [body(n) for n in range(12)]
    results, _ = complete_all(fake.url, bodies, concurrency=3)
    assert all(isinstance(r, Reply) for r in results)
    assert fake.peak_in_flight == 3
    fake.reset(LabelScript())
    complete_all(fake.url, bodies[:5], concurrency=5, rpm=600)  # one start per 0.1 s
    starts = sorted(fake.arrivals[request_key(b)][0][0] for b in bodies[:5])
    # Arrivals, not sends, are seen here: a loaded machine delays one arrival by some
    # milliseconds, so the bounds leave room for that and still fail without pacing
    # (five unpaced calls arrive within a few ms of each other).
    assert all(later - earlier >= 0.05 for earlier, later in pairwise(starts))
    assert starts[-1] - starts[0] >= 0.3


def test_an_unreachable_upstream_fails_after_its_retries() -> None:
    results, caller = complete_all(
        f"http://127.0.0.1:{free_port()}/v1", [body(0)], retries=2, backoff=0.01
    )
    assert isinstance(results[0], UpstreamError)
    assert "after 3 attempts" in str(results[0])
    assert caller.attempts == 3


def test_a_slow_upstream_times_out(fake: FakeLabelUpstream) -> None:
    fake.reset(LabelScript(slow=1.0, slow_delay=1.0))
    results, _ = complete_all(fake.url, [body(0)], retries=0, timeout=0.2)
    assert isinstance(results[0], UpstreamTimeoutError)


@pytest.mark.parametrize("status", [401, 404])
def test_a_4xx_is_refused_at_once(status: int) -> None:
    upstream = FakeUpstream(Behaviour(status=status))
    with serve_in_thread(upstream.app) as (url, _):
        results, caller = complete_all(f"{url}/v1", [body(0)], retries=3)
    assert isinstance(results[0], UpstreamRefusedError)
    assert f"HTTP {status}" in str(results[0])
    assert caller.attempts == 1
