"""A circuit breaker per upstream: stop sending requests to a model that keeps failing.

Without one, every request re-learns that a model is down, each paying a
timeout before its fallback. With one, ``failures`` failed attempts in a row
open the circuit: for ``cooldown`` seconds the model is skipped, so its
requests go straight to the other model. Then the circuit is half-open: one
request probes it (the others still go elsewhere), and the probe's success
closes the circuit while its failure opens it for another ``cooldown``. A
429's ``Retry-After`` holds a model aside the same way for that long, without
counting as a failure: a rate-limited model is healthy, just busy.

Plain synchronous state read from the clock, so the server's event loop and
``prefroute.Client`` share it; the transitions are cheap enough to run on
every attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
STATES: tuple[State, ...] = ("closed", "open", "half_open")
MAX_HOLD = 300.0
"""The longest a ``Retry-After`` holds a model aside: a far-off date is more likely a
misconfigured upstream than a promise worth five minutes of fallback."""


class Breaker:
    """One upstream's circuit. ``failures=0`` turns the breaker off (``Retry-After`` still
    holds); ``on_change(state)`` runs on every transition, e.g. to update a gauge."""

    def __init__(
        self,
        *,
        failures: int = 5,
        cooldown: float = 10.0,
        on_change: Callable[[State], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self.on_change = on_change
        self.clock = clock
        self._state: State = "closed"
        self._failed = 0
        self._until = 0.0  # open (or held aside) until this time
        self._probing = False
        self.held = False
        """Whether the circuit is open for a ``Retry-After`` rather than for failures."""

    @property
    def state(self) -> State:
        """``closed``, ``open`` or ``half_open`` (open, but its cool-down is over)."""
        if self._state == "open" and self.clock() >= self._until:
            self._set("half_open")
        return self._state

    def retry_in(self) -> float:
        """Seconds until the model may be tried again (0 when it may be tried now)."""
        return max(0.0, self._until - self.clock()) if self._state == "open" else 0.0

    def allow(self) -> bool:
        """Whether to send this attempt; in half-open state only one probe at a time."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._probing = True
            return True
        return False

    def succeeded(self) -> None:
        self._failed = 0
        self._probing = False
        if self._state != "closed":
            self._set("closed")

    def failed(self) -> None:
        """One failed attempt: a connect error, a timeout, a 5xx, a refused key, a bad answer."""
        self._failed += 1
        probe, self._probing = self._probing, False
        if self.failures and (probe or self._failed >= self.failures):
            self.held = False
            self._open(self.cooldown)

    def hold(self, seconds: float) -> None:
        """Keep the model aside for ``seconds`` (a 429's ``Retry-After``), then probe it."""
        self._probing = False
        if seconds > 0:
            self.held = self._state != "open" or self.held
            self._open(min(seconds, MAX_HOLD))

    def abandoned(self) -> None:
        """The attempt ended with no verdict (the client left): another may probe."""
        self._probing = False

    def _open(self, seconds: float) -> None:
        self._until = max(self._until if self._state == "open" else 0.0, self.clock() + seconds)
        self._set("open")

    def _set(self, state: State) -> None:
        if state != self._state:
            self._state = state
            if self.on_change is not None:
                self.on_change(state)
