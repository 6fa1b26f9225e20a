"""Bounded admission: requests and body bytes at once, a bounded queue, then 503; and a
fixed number of calls per upstream.

Admission is decided from the request head, before the body is read: the
body's bytes count against ``memory`` from the moment it is admitted, so
memory stays bounded however many clients send large bodies at once.
Without a bound, a burst makes every request slow instead of some fast and
some told to retry; OpenAI SDKs retry a 503 with backoff on their own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from prefroute.errors import OverloadedError


class Admission:
    """At most ``slots`` requests and ``memory`` body bytes at once; ``queue`` more wait
    (first come, first served) up to ``timeout`` s."""

    def __init__(self, slots: int, memory: int, queue: int, timeout: float) -> None:
        self.slots, self.memory, self.queue, self.timeout = slots, memory, queue, timeout
        self.in_use = 0
        self.body_bytes = 0
        self._waiting: deque[tuple[asyncio.Future[None], int]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def admit(self, size: int) -> None:
        """Take a slot and ``size`` bytes, waiting in the queue if there is room; else
        ``OverloadedError``."""
        if not self._waiting and self._fits(size):
            self._take(size)
            return
        if len(self._waiting) >= self.queue:
            raise OverloadedError(self._full(size), code="server_overloaded")
        entry = (asyncio.get_running_loop().create_future(), size)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(self.timeout):
                await entry[0]
        except TimeoutError:
            if not entry[0].done() or entry[0].cancelled():
                raise OverloadedError(
                    f"no room within {self.timeout:g} s: {self._full(size)}",
                    code="server_overloaded",
                ) from None
        except BaseException:
            if entry[0].done() and not entry[0].cancelled():
                self.leave(size)  # admitted just as the caller went away
            raise
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def shrink(self, size: int, actual: int) -> None:
        """A body turned out smaller than reserved (no ``Content-Length``): return the rest."""
        self.body_bytes -= size - actual
        self._wake()

    def leave(self, size: int) -> None:
        self.in_use -= 1
        self.body_bytes -= size
        self._wake()

    def _fits(self, size: int) -> bool:
        return self.in_use < self.slots and self.body_bytes + size <= self.memory

    def _take(self, size: int) -> None:
        self.in_use += 1
        self.body_bytes += size

    def _wake(self) -> None:
        while self._waiting and self._fits(self._waiting[0][1]):
            waiter, size = self._waiting.popleft()
            if not waiter.done():
                self._take(size)
                waiter.set_result(None)

    def _full(self, size: int) -> str:
        if self.in_use >= self.slots:
            return (
                f"server at capacity ({self.in_use} requests in flight, {self.waiting} "
                "waiting); retry shortly"
            )
        return (
            f"no room for a {size:,}-byte request body ({self.body_bytes:,} of "
            f"{self.memory:,} bytes of bodies held); retry shortly"
        )


class UpstreamSlots:
    """At most ``per_upstream`` calls in flight to each named upstream; taking a slot never
    waits."""

    def __init__(self, per_upstream: int, names: Iterable[str] = ("strong", "weak")) -> None:
        self.per_upstream = per_upstream
        self.in_use: dict[str, int] = dict.fromkeys(names, 0)

    def take(self, role: str) -> bool:
        if self.in_use[role] >= self.per_upstream:
            return False
        self.in_use[role] += 1
        return True

    def give(self, role: str) -> None:
        self.in_use[role] -= 1
