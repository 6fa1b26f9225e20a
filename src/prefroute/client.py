"""Drop-in replacements for ``openai.OpenAI`` / ``openai.AsyncOpenAI`` that route in-process.

``client.chat.completions.create(model="router-mf@30%", messages=..., stream=...)``
scores the prompt here (no prefroute server to run), then calls the chosen
upstream through the official ``openai`` package, so the return value is
exactly what ``openai`` returns (a ``ChatCompletion`` or a stream of chunks)
with ``model`` set to the model that answered. The model names are the
server's (``prefroute.serve.routing``), among N ``models`` upstreams too
(``router-quality@budget=0.5``, ``router-quality:cheap``). The ``openai``
package retries connect errors, timeouts, 429 and 5xx (``retries`` times); if
the chosen model still fails, or refuses its key (401/403), the next model of
the decision's plan is tried (``fallback``): the other of two, or the
policy's next choice among N. The server's circuit breaker works here too: a
model that keeps failing, or answered 429 with ``Retry-After``, is skipped
for a while in favour of the next. Timeouts are the ``openai`` package's: per attempt,
``connect_timeout`` and ``answer_timeout`` as its read timeout, which
there also bounds each gap between stream chunks; the package has no
per-request deadline. ``client.route(model, messages)`` shows the decision
without calling anything.

Settings are the server's (``prefroute.serve.config.RoutingSettings``): a TOML
file and/or keyword arguments, e.g.::

    Client(["routers/mf"], strong={"model": "gpt-4o", "api_key_env": "OPENAI_API_KEY"},
           weak={"model": "llama3.1:8b", "base_url": "http://localhost:11434/v1"})
    Client(["routers/quality"], models={"gpt-4o": {...}, "llama-3.1-8b-instruct": {...}})
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from prefroute.serve.breaker import Breaker
from prefroute.serve.config import RoutingSettings, UpstreamSettings, load_settings
from prefroute.serve.routing import Choice, Decision, RouterSet

RETRYABLE = (
    openai.APIConnectionError,
    openai.InternalServerError,
    openai.RateLimitError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
)
"""Failures worth the other model: no connection, a timeout (a subclass), a 5xx, a 429,
and a key the upstream refused (the client's configuration, not the caller's request)."""


Calls = Generator[Callable[[], Any], Any, Any]
"""A routed ``create``: yields each upstream call to make, is sent its answer or thrown
its error, and returns the answer (``_Base._calls``)."""


class _Base:
    """Settings, routers and the per-upstream ``openai`` client arguments, sync or async."""

    def __init__(
        self,
        routers: Sequence[str | Path] | None = None,
        *,
        config: str | Path | None = None,
        strong: Mapping[str, Any] | None = None,
        weak: Mapping[str, Any] | None = None,
        models: Mapping[str, Mapping[str, Any]] | None = None,
        **settings: Any,
    ) -> None:
        overrides: dict[str, Any] = dict(settings)
        if routers is not None:
            overrides["routers"] = [str(r) for r in routers]
        for role, given in (("strong", strong), ("weak", weak)):
            if given is not None:
                overrides[role] = dict(given)
        if models is not None:
            overrides["models"] = {name: dict(given) for name, given in models.items()}
        self.settings = load_settings(config, overrides, cls=RoutingSettings)
        self.routers = RouterSet.load(self.settings)
        self.breakers = {
            name: Breaker(
                failures=self.settings.breaker_failures, cooldown=self.settings.breaker_cooldown
            )
            for name in self.settings.upstreams()
        }

    def route(self, model: str, messages: Iterable[Mapping[str, Any]]) -> Decision | Choice:
        """Where ``create`` would send this request, and why (score and threshold, or
        every candidate ranked).

        Raises ``InvalidRequestError`` (a ``ValueError``) for a model name that
        selects no router, as the server answers 400.
        """
        return self.routers.select(model).decide(list(messages))

    def _calls(self, model: str, messages: Iterable[Any], kwargs: dict[str, Any]) -> Calls:
        """The one definition of a routed ``create``, for the sync and async clients alike.

        Routes, then calls the plan's upstreams in turn; one whose circuit is
        open is passed over unless it is the last, which is always called (its
        error is the one to raise). Written as a generator so that the caller
        does the I/O, awaiting it or not.
        """
        messages = list(messages)
        decision = self.route(model, messages)
        plan = decision.plan if self.settings.fallback else decision.plan[:1]
        last = len(plan) - 1
        for n, (name, upstream_model) in enumerate(plan):
            breaker = self.breakers[name]
            if n < last and not breaker.allow():
                continue
            create = self.upstreams[name].chat.completions.create  # type: ignore[attr-defined]
            try:
                answer = yield functools.partial(
                    create, model=upstream_model, messages=messages, **kwargs
                )
            except RETRYABLE as exc:
                _failed(breaker, exc)
                if n == last:
                    raise
                continue
            except BaseException:
                breaker.abandoned()
                raise
            breaker.succeeded()
            return answer
        raise AssertionError("unreachable: the last model is always called")

    def _openai_args(self, upstream: UpstreamSettings) -> dict[str, Any]:
        key = upstream.api_key()
        headers = {k: v for k, v in upstream.headers().items() if k != "authorization"}
        return {
            "base_url": upstream.base_url,
            "api_key": key or "-",  # the SDK insists on one; keyless local servers ignore it
            "timeout": openai.Timeout(
                upstream.chunk_timeout,
                connect=upstream.connect_timeout,
                read=upstream.answer_timeout,
            ),
            "max_retries": self.settings.retries,
            "default_headers": headers or None,
            "default_query": upstream.query or None,
        }


def _failed(breaker: Breaker, exc: Exception) -> None:
    """Tell the breaker: a 429 holds the model aside for its ``Retry-After``."""
    if isinstance(exc, openai.RateLimitError):
        after = exc.response.headers.get("retry-after")
        breaker.hold(float(after) if after and after.replace(".", "", 1).isdigit() else 0.0)
    else:
        breaker.failed()


def _step(calls: Calls, answer: Any = None, error: BaseException | None = None) -> tuple[bool, Any]:
    """Send ``calls`` the last call's answer (or error): ``(True, next call)`` or
    ``(False, the final answer)``; an error no model is left for propagates."""
    try:
        return True, calls.throw(error) if error is not None else calls.send(answer)
    except StopIteration as stop:
        return False, stop.value


class Client(_Base):
    """``openai.OpenAI``'s ``chat.completions.create``, routed among the upstreams."""

    def __init__(self, routers: Sequence[str | Path] | None = None, **kwargs: Any) -> None:
        super().__init__(routers, **kwargs)
        self.upstreams = {
            name: openai.OpenAI(**self._openai_args(upstream))
            for name, upstream in self.settings.upstreams().items()
        }
        self.chat = SimpleNamespace(completions=_Completions(self))

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()


class AsyncClient(_Base):
    """``openai.AsyncOpenAI``'s ``chat.completions.create``, routed among the upstreams.

    NOTE: routing runs on the event loop; it takes well under a millisecond
    for the mf router, less than a thread hop would.
    """

    def __init__(self, routers: Sequence[str | Path] | None = None, **kwargs: Any) -> None:
        super().__init__(routers, **kwargs)
        self.upstreams = {
            name: openai.AsyncOpenAI(**self._openai_args(upstream))
            for name, upstream in self.settings.upstreams().items()
        }
        self.chat = SimpleNamespace(completions=_AsyncCompletions(self))

    async def close(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.close()


class _Completions:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, *, model: str, messages: Iterable[ChatCompletionMessageParam], **kwargs: Any
    ) -> Any:
        """As ``openai.OpenAI().chat.completions.create``; ``model`` names a router."""
        calls = self._client._calls(model, messages, kwargs)
        more, step = _step(calls)
        while more:
            try:
                answer = step()
            except BaseException as exc:  # the generator tells the breaker, or re-raises
                more, step = _step(calls, error=exc)
            else:
                more, step = _step(calls, answer)
        return step


class _AsyncCompletions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, *, model: str, messages: Iterable[ChatCompletionMessageParam], **kwargs: Any
    ) -> Any:
        """As ``openai.AsyncOpenAI().chat.completions.create``; ``model`` names a router."""
        calls = self._client._calls(model, messages, kwargs)
        more, step = _step(calls)
        while more:
            try:
                answer = await step()
            except BaseException as exc:  # the generator tells the breaker, or re-raises
                more, step = _step(calls, error=exc)
            else:
                more, step = _step(calls, answer)
        return step
