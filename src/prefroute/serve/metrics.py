"""Prometheus metrics for one server, and what each answer cost.

Each app owns its registry (no module-level collectors), so tests and
several apps in one process never share counts. Token counts come from the
upstream's ``usage`` (for streams, the final chunk that ``stream_options:
{"include_usage": true}`` asks for); cost is input and output tokens times
the $ per 1M tokens of the model that answered: the upstream's
``input_cost``/``output_cost`` when its config sets them, else the price
table's entry for the model (``prefroute.prices``, plus ``prices`` files). A
model with neither has its tokens counted and no cost: never a made-up $0.

Upstreams are labelled by name: ``strong`` / ``weak``, or an N-model upstream's
``[models.<name>]`` name (the ``role`` label holds it, so two-model dashboards
keep working).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from prefroute.prices import Price, PriceTable, price_table
from prefroute.serve.breaker import STATES, State
from prefroute.serve.config import ROLES, UpstreamSettings

FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
"""Routing takes well under a millisecond for mf; the default buckets start at 5 ms."""
MAX_TAIL = 1 << 20
"""Bytes of an unfinished SSE event kept while looking for ``usage``."""


class Metrics:
    """The server's counters: requests, routing, upstream latency, errors, tokens, cost."""

    def __init__(
        self, upstreams: Mapping[str, UpstreamSettings], prices: PriceTable | None = None
    ) -> None:
        self.upstreams = upstreams
        self.prices = prices if prices is not None else price_table()
        self._price: dict[tuple[str, str], Price | None] = {}
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "prefroute_requests", "Chat completion requests by HTTP status.", ["status"], registry=r
        )
        self.routed = Counter(
            "prefroute_routed",
            "Requests routed, by router kind and role.",
            ["router", "role"],
            registry=r,
        )
        self.chosen = Counter(
            "prefroute_chosen",
            "Requests an N-model policy chose each model for (before any fallback), by "
            "router kind and upstream name.",
            ["router", "model"],
            registry=r,
        )
        self.answered = Counter(
            "prefroute_answered",
            "Answers relayed, by the upstream that answered (role or [models] name) and "
            "the model id it was called with.",
            ["upstream", "model"],
            registry=r,
        )
        self.routing_seconds = Histogram(
            "prefroute_routing_seconds",
            "Time to score one request.",
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "prefroute_upstream_seconds",
            "Time to the upstream's response headers.",
            ["role"],
            registry=r,
        )
        self.errors = Counter("prefroute_errors", "Errors by kind.", ["kind"], registry=r)
        self.retries = Counter(
            "prefroute_upstream_retries", "Upstream attempts retried.", ["role"], registry=r
        )
        self.fallbacks = Counter(
            "prefroute_fallbacks", "Requests sent to the other model.", ["to_role"], registry=r
        )
        self.tokens = Counter(
            "prefroute_tokens", "Tokens reported by upstreams.", ["model", "direction"], registry=r
        )
        self.cost = Counter(
            "prefroute_cost_dollars", "Cost at the upstreams' prices ($).", ["model"], registry=r
        )
        self.in_flight = Gauge(
            "prefroute_in_flight_requests", "Requests admitted (reading, routing, calling).",
            registry=r,
        )  # fmt: skip
        self.upstream_in_flight = Gauge(
            "prefroute_upstream_in_flight", "Calls in flight per upstream.", ["role"], registry=r
        )
        self.upstream_failures = Counter(
            "prefroute_upstream_failures",
            "Failed or skipped upstream attempts by kind (timeout, connect, http_5xx, "
            "rate_limited, auth, broken, malformed, circuit_open, at_capacity).",
            ["role", "kind"],
            registry=r,
        )
        self.circuit = Gauge(
            "prefroute_upstream_circuit",
            "1 for the circuit-breaker state each upstream is in (closed, open, half_open).",
            ["role", "state"],
            registry=r,
        )
        for name in upstreams:
            self.circuit_state(name, "closed")
            self.upstream_in_flight.labels(name)

    def circuit_state(self, role: str, state: State) -> None:
        for each in STATES:
            self.circuit.labels(role, each).set(1.0 if each == state else 0.0)

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def price(self, role: str, model: str) -> Price | None:
        """What a call of ``model`` through the ``role`` upstream costs; None: unknown.

        An N-model upstream is priced by its name (what its price check at start-up
        found) before the id it is called with."""
        key = (role, model)
        if key not in self._price:
            upstream = self.upstreams[role]
            names = (model,) if role in ROLES else (role, model)
            found = (upstream.price(n, self.prices) for n in names)
            self._price[key] = next((p for p in found if p is not None), None)
        return self._price[key]

    def usage(self, role: str, model: str, usage: Mapping[str, Any] | None) -> float | None:
        """Count an answer's tokens; returns its cost in $, or None without usage or price."""
        if not usage:
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not (_count(prompt) and _count(completion)):
            return None  # an upstream's odd usage must not cost the client its answer
        self.tokens.labels(model, "input").inc(prompt)
        self.tokens.labels(model, "output").inc(completion)
        price = self.price(role, model)
        if price is None:
            return None
        cost = price.cost(prompt, completion)
        self.cost.labels(model).inc(cost)
        return cost

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _count(value: Any) -> TypeGuard[int]:
    """A token count the counters can take: a non-negative int (not a bool)."""
    return type(value) is int and value >= 0


def error_kind(exc: BaseException) -> str:
    """``UpstreamTimeoutError`` -> ``upstream_timeout``: a bounded label per error class."""
    name = type(exc).__name__.removesuffix("Error")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def usage_of(payload: bytes) -> Mapping[str, Any] | None:
    """The ``usage`` object of a chat completion or stream chunk, if it has one."""
    if b'"usage"' not in payload:
        return None
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    usage = data.get("usage") if isinstance(data, dict) else None
    return usage if isinstance(usage, dict) else None


class StreamUsage:
    """Watches SSE bytes pass by for the chunk that carries ``usage``, keeping only
    the unfinished tail of the current event."""

    def __init__(self) -> None:
        self.usage: Mapping[str, Any] | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        data = self._tail + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._tail = data[-MAX_TAIL:]
            return
        self._tail = data[end + 2 :]
        if b'"usage"' not in data[:end]:
            return
        for event in data[:end].split(b"\n\n"):
            lines = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
            found = usage_of(b"\n".join(lines))
            if found is not None:
                self.usage = found
