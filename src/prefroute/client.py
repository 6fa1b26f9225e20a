"""Drop-in replacements for ``openai.OpenAI`` / ``openai.AsyncOpenAI`` that route in-process.

``client.chat.completions.create(model="router-mf@30%", messages=..., stream=...)``
scores the prompt here (no prefroute server to run), then calls the chosen
upstream through the official ``openai`` package, so the return value is
exactly what ``openai`` returns (a ``ChatCompletion`` or a stream of chunks)
with ``model`` set to the model that answered. The ``openai`` package retries
connect errors, timeouts, 429 and 5xx (``retries`` times); if the chosen
model still fails, or refuses its key (401/403), the other one is tried
(``fallback``). The server's circuit breaker works here too: a model that
keeps failing, or answered 429 with ``Retry-After``, is skipped for a while
in favour of the other. Timeouts are the ``openai`` package's: per attempt,
``connect_timeout`` and ``answer_timeout`` as its read timeout, which
there also bounds each gap between stream chunks; the package has no
per-request deadline. ``client.route(model, messages)`` shows the decision
without calling anything.

Settings are the server's (``prefroute.serve.config.RoutingSettings``): a TOML
file and/or keyword arguments, e.g.::

    Client(["routers/mf"], strong={"model": "gpt-4o", "api_key_env": "OPENAI_API_KEY"},
           weak={"model": "llama3.1:8b", "base_url": "http://localhost:11434/v1"})
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from prefroute.serve.breaker import Breaker
from prefroute.serve.config import ROLES, Role, RoutingSettings, UpstreamSettings, load_settings
from prefroute.serve.routing import Decision, RouterSet

RETRYABLE = (
    openai.APIConnectionError,
    openai.InternalServerError,
    openai.RateLimitError,
    openai.AuthenticationError,
    openai.PermissionDeniedError,
)
"""Failures worth the other model: no connection, a timeout (a subclass), a 5xx, a 429,
and a key the upstream refused (the client's configuration, not the caller's request)."""


class _Base:
    """Settings, routers and the per-model ``openai`` client arguments, sync or async."""

    def __init__(
        self,
        routers: Sequence[str | Path] | None = None,
        *,
        config: str | Path | None = None,
        strong: Mapping[str, Any] | None = None,
        weak: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> None:
        overrides: dict[str, Any] = dict(settings)
        if routers is not None:
            overrides["routers"] = [str(r) for r in routers]
        for role, given in (("strong", strong), ("weak", weak)):
            if given is not None:
                overrides[role] = dict(given)
        self.settings = load_settings(config, overrides, cls=RoutingSettings)
        self.routers = RouterSet.load(self.settings)
        self.breakers = {
            role: Breaker(
                failures=self.settings.breaker_failures, cooldown=self.settings.breaker_cooldown
            )
            for role in ROLES
        }

    def route(self, model: str, messages: Iterable[Mapping[str, Any]]) -> Decision:
        """Where ``create`` would send this request, and the score and threshold why.

        Raises ``InvalidRequestError`` (a ``ValueError``) for a model name that
        selects no router, as the server answers 400.
        """
        return self.routers.select(model).decide(list(messages))

    def _plan(self, decision: Decision) -> Iterator[Role]:
        """The models to call in turn; one whose circuit is open is passed over unless it
        is the last, which is always called (its error is the one to raise)."""
        roles = [decision.role, decision.other] if self.settings.fallback else [decision.role]
        for n, role in enumerate(roles):
            if n == len(roles) - 1 or self.breakers[role].allow():
                yield role

    def _failed(self, role: Role, exc: Exception, decision: Decision) -> None:
        """Tell the breaker; re-raise when no model is left to try."""
        breaker = self.breakers[role]
        if isinstance(exc, openai.RateLimitError):
            after = exc.response.headers.get("retry-after")
            breaker.hold(float(after) if after and after.replace(".", "", 1).isdigit() else 0.0)
        else:
            breaker.failed()
        if role == decision.other or not self.settings.fallback:
            raise exc

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


class Client(_Base):
    """``openai.OpenAI``'s ``chat.completions.create``, routed between two upstreams."""

    def __init__(self, routers: Sequence[str | Path] | None = None, **kwargs: Any) -> None:
        super().__init__(routers, **kwargs)
        self.upstreams = {
            role: openai.OpenAI(**self._openai_args(self.settings.upstream(role))) for role in ROLES
        }
        self.chat = SimpleNamespace(completions=_Completions(self))

    def close(self) -> None:
        for upstream in self.upstreams.values():
            upstream.close()


class AsyncClient(_Base):
    """``openai.AsyncOpenAI``'s ``chat.completions.create``, routed between two upstreams.

    NOTE: routing runs on the event loop; it takes well under a millisecond
    for the mf router, less than a thread hop would.
    """

    def __init__(self, routers: Sequence[str | Path] | None = None, **kwargs: Any) -> None:
        super().__init__(routers, **kwargs)
        self.upstreams = {
            role: openai.AsyncOpenAI(**self._openai_args(self.settings.upstream(role)))
            for role in ROLES
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
        client = self._client
        messages = list(messages)
        decision = client.route(model, messages)
        for role in client._plan(decision):
            upstream = client.upstreams[role].chat.completions
            try:
                answer = upstream.create(model=decision.models[role], messages=messages, **kwargs)
            except RETRYABLE as exc:
                client._failed(role, exc, decision)
                continue
            except BaseException:
                client.breakers[role].abandoned()
                raise
            client.breakers[role].succeeded()
            return answer
        raise AssertionError("unreachable: the last model is always called")


class _AsyncCompletions:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, *, model: str, messages: Iterable[ChatCompletionMessageParam], **kwargs: Any
    ) -> Any:
        """As ``openai.AsyncOpenAI().chat.completions.create``; ``model`` names a router."""
        client = self._client
        messages = list(messages)
        decision = client.route(model, messages)
        for role in client._plan(decision):
            upstream = client.upstreams[role].chat.completions
            try:
                answer = await upstream.create(
                    model=decision.models[role], messages=messages, **kwargs
                )
            except RETRYABLE as exc:
                client._failed(role, exc, decision)
                continue
            except BaseException:
                client.breakers[role].abandoned()
                raise
            client.breakers[role].succeeded()
            return answer
        raise AssertionError("unreachable: the last model is always called")
