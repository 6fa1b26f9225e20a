"""Bounded concurrency: a fixed number of upstream calls, a bounded queue, then 503.

Without a bound, a burst makes every request slow instead of some fast and
some told to retry; OpenAI SDKs retry a 503 with backoff on their own.
"""

from __future__ import annotations

import asyncio

from prefroute.errors import OverloadedError


class Limiter:
    """At most ``slots`` requests at once; ``queue`` more wait up to ``timeout`` s."""

    def __init__(self, slots: int, queue: int, timeout: float) -> None:
        self.slots, self.queue, self.timeout = slots, queue, timeout
        self._free = asyncio.Semaphore(slots)
        self._waiting = 0
        self.in_use = 0

    async def acquire(self) -> None:
        """Take a slot, waiting in the queue if there is room; else ``OverloadedError``."""
        if self._free.locked():
            if self._waiting >= self.queue:
                raise OverloadedError(
                    f"server at capacity ({self.slots} requests in flight, {self._waiting} "
                    "waiting); retry shortly",
                    code="server_overloaded",
                )
            self._waiting += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await self._free.acquire()
            except TimeoutError:
                raise OverloadedError(
                    f"no free slot within {self.timeout:g} s ({self.slots} requests in "
                    "flight); retry shortly",
                    code="server_overloaded",
                ) from None
            finally:
                self._waiting -= 1
        else:
            await self._free.acquire()
        self.in_use += 1

    @property
    def waiting(self) -> int:
        return self._waiting

    def release(self) -> None:
        self.in_use -= 1
        self._free.release()
