"""The OpenAI-compatible routing server: score the prompt, call the chosen upstream.

``POST /v1/chat/completions`` takes any OpenAI chat request whose ``model``
names a router (``router-mf@30%``, ``router-mf-0.1159``), routes on the user
text and forwards the body (only ``model`` replaced) to the strong or weak
upstream; the answer comes back as the upstream sent it, so its ``model``
field is the model that answered. ``x-prefroute-*`` headers say what was
chosen and why; one log line per request says the same (no prompt text
unless ``log_prompts``). ``GET /v1/models``, ``/health`` and ``/metrics``
(Prometheus) complete it.

Everything a request needs lives on ``app.state`` (set up in the lifespan),
so several apps, e.g. in tests, never share state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from prefroute import __version__
from prefroute.conversation import conversation_text
from prefroute.errors import (
    AuthenticationError,
    InvalidRequestError,
    OverloadedError,
    RequestTooLargeError,
    ServeError,
)
from prefroute.serve.config import SETTINGS_ENV, ServeSettings
from prefroute.serve.limits import Limiter
from prefroute.serve.metrics import Metrics, StreamUsage, error_kind, usage_of
from prefroute.serve.routing import RouterSet
from prefroute.serve.schema import openapi_body, parse_chat_request
from prefroute.serve.stream import ProxyStream
from prefroute.serve.upstream import Reply, Upstreams

log = logging.getLogger("prefroute.serve")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "content-encoding",
        "date",
        "server",
        "x-request-id",
    }
)
"""Upstream response headers not passed on: the server sets its own."""
REQUEST_ID = re.compile(r"[\w.:-]{1,128}")
THREAD_ROUTING_MIN_CHARS = 1000
"""With ``routing = "auto"``, prompts longer than this are scored in the threadpool."""


@dataclass
class Trace:
    """What happened to one request: the log line and the final metrics."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    stream: bool = False
    router: str = "-"
    role: str = "-"
    score: float | None = None
    threshold: float | None = None
    model: str = "-"
    attempts: int = 0
    fell_back: bool = False
    status: int = 0
    outcome: str = "ok"
    cost: float | None = None
    prompt: str | None = None

    def line(self) -> str:
        ms = (time.perf_counter() - self.started) * 1000
        parts = [
            f"id={self.request_id} status={self.status} outcome={self.outcome}",
            f"router={self.router} role={self.role} model={self.model}",
            f"score={_num(self.score)} threshold={_num(self.threshold)}",
            f"stream={str(self.stream).lower()} attempts={self.attempts}",
            f"fallback={str(self.fell_back).lower()} cost_usd={_num(self.cost, 8)} ms={ms:.1f}",
        ]
        if self.prompt is not None:
            parts.append(f"prompt={self.prompt[:200]!r}")
        return " ".join(parts)


class Gateway:
    """The per-app state: routers, upstreams, limits, metrics, accepted key digests."""

    def __init__(
        self, settings: ServeSettings, routers: RouterSet, upstreams: Upstreams, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.routers = routers
        self.upstreams = upstreams
        self.metrics = metrics
        self.limiter = Limiter(settings.max_concurrency, settings.max_queue, settings.queue_timeout)
        self.key_digests = [_digest(k) for k in settings.accepted_keys()]
        self.created = int(time.time())
        routers.warm_up()

    def finish(self, trace: Trace) -> None:
        """Count and log a request once, when its answer is complete."""
        self.metrics.requests.labels(str(trace.status)).inc()
        if trace.outcome != "ok":
            self.metrics.error(trace.outcome)
        log.info(trace.line())


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: ``ServeSettings.from_env()``).

    The factory form is how each of ``prefroute serve --workers N``'s processes
    builds its app; ``uvicorn --factory prefroute.serve.app:create_app`` works too.
    """
    if settings is None:
        settings = ServeSettings.from_env()
    metrics = Metrics({"strong": settings.strong, "weak": settings.weak})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        routers = RouterSet.load(settings)
        async with Upstreams.make_client(settings.max_concurrency) as client:
            app.state.gateway = Gateway(
                settings, routers, Upstreams(settings, client, metrics), metrics
            )
            log.info(
                "serving routers %s; strong=%s weak=%s; routing in the %s",
                ", ".join(routers.kinds),
                settings.strong.base_url,
                settings.weak.base_url,
                {"auto": "event loop (long prompts in the threadpool)", "inline": "event loop"}.get(
                    settings.routing, "threadpool"
                ),
            )
            yield

    app = FastAPI(title="prefroute", version=__version__, lifespan=lifespan)
    app.include_router(api)
    app.add_exception_handler(ServeError, _serve_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
    return app


def gateway(request: Request) -> Gateway:
    return request.app.state.gateway


async def authorize(request: Request) -> None:
    """Bearer keys, compared in constant time against every accepted key's digest."""
    digests = gateway(request).key_digests
    if not digests:
        return
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError(
            "missing API key: send the header 'Authorization: Bearer <key>'",
            code="missing_api_key",
        )
    given = _digest(key.strip())
    if not any([hmac.compare_digest(given, d) for d in digests]):  # a list: no early exit
        raise AuthenticationError("invalid API key", code="invalid_api_key")


api = APIRouter()
protected = [Depends(authorize)]


@api.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness and what is served; open without a key, for load balancers."""
    gw = gateway(request)
    limiter = gw.limiter
    return {
        "status": "ok",
        "routers": gw.routers.kinds,
        "in_flight": limiter.in_use,
        "queued": limiter.waiting,
    }


@api.get("/metrics", dependencies=protected)
async def metrics(request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(gateway(request).metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@api.get("/v1/models", dependencies=protected)
async def models(request: Request) -> dict[str, Any]:
    """Router names a client can use as ``model`` (any threshold or share works)."""
    gw = gateway(request)
    data = [
        {"object": "model", "created": gw.created, "owned_by": "prefroute", **entry}
        for entry in gw.routers.model_names()
    ]
    return {"object": "list", "data": data}


@api.post("/v1/chat/completions", openapi_extra=openapi_body())
async def chat_completions(request: Request) -> Response:
    """Route the chat request and relay the chosen upstream's answer."""
    gw = gateway(request)
    trace = Trace(_request_id(request))
    request.state.trace = trace
    # called, not declared as a dependency: FastAPI's dependency solving took ~5%
    # of the server's CPU per request, and this is the endpoint under load
    await authorize(request)
    body = parse_chat_request(await _read_body(request, gw.settings.max_body_bytes))
    trace.stream = body.get("stream") is True
    selection = gw.routers.select(body["model"])
    start = time.perf_counter()
    text = conversation_text(body["messages"], selection.turns) or ""  # no user text: ""
    if _inline(gw.settings.routing, text):
        decision = selection.decide_text(text)
    else:
        decision = await run_in_threadpool(selection.decide_text, text)
    gw.metrics.routing_seconds.observe(time.perf_counter() - start)
    gw.metrics.routed.labels(decision.kind, decision.role).inc()
    trace.router, trace.score, trace.threshold = decision.kind, decision.score, decision.threshold
    if gw.settings.log_prompts:
        trace.prompt = text

    await gw.limiter.acquire()
    gw.metrics.in_flight.inc()
    try:
        reply = await gw.upstreams.open(decision, body, trace.request_id, stream=trace.stream)
    except BaseException:
        _release(gw)
        raise
    trace.role, trace.model = reply.role, reply.model
    trace.attempts, trace.fell_back = reply.attempts, reply.fell_back
    trace.status = reply.status
    headers = _headers(reply, decision.score, decision.threshold, trace.request_id)

    if reply.content is None:

        async def close(outcome: str, usage: StreamUsage) -> None:
            _release(gw)
            trace.outcome = outcome
            trace.cost = gw.metrics.usage(reply.role, reply.model, usage.usage)
            gw.finish(trace)

        return ProxyStream(reply.response, headers, close)
    _release(gw)
    if reply.ok:
        trace.cost = gw.metrics.usage(reply.role, reply.model, usage_of(reply.content))
    else:
        trace.outcome = "upstream_client_error"
    gw.finish(trace)
    return Response(reply.content, status_code=reply.status, headers=headers)


def _inline(mode: str, text: str) -> bool:
    """Whether to score ``text`` on the event loop rather than in the threadpool.

    ``auto`` hands a prompt to a pool thread only when tokenizing it (~0.4 µs a
    character) would hold the loop longer than the hop to the thread costs
    (~0.3 ms): short prompts are cheaper inline, and long ones, tokenized with
    the GIL released, no longer stall every other request's stream.
    """
    if mode == "auto":
        return len(text) <= THREAD_ROUTING_MIN_CHARS
    return mode == "inline"


def _release(gw: Gateway) -> None:
    gw.limiter.release()
    gw.metrics.in_flight.dec()


def _headers(reply: Reply, score: float, threshold: float, request_id: str) -> dict[str, str]:
    """The upstream's headers (minus hop-by-hop ones) and prefroute's own."""
    headers = {k: v for k, v in reply.response.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.update(
        {
            "x-prefroute-model": reply.model,
            "x-prefroute-role": reply.role,
            "x-prefroute-score": f"{score:.6g}",
            "x-prefroute-threshold": f"{threshold:.6g}",
            "x-prefroute-fallback": str(reply.fell_back).lower(),
            "x-request-id": request_id,
        }
    )
    return headers


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    too_large = RequestTooLargeError(
        f"the request body is larger than the server's limit of {limit:,} bytes",
        code="request_too_large",
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _digest(key: str) -> bytes:
    """Keys are compared as SHA-256 digests: equal length, so no length leaks either."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _error_response(request: Request, exc: ServeError) -> JSONResponse:
    """Every error as OpenAI sends it; the request's trace (if any) is counted and logged."""
    trace = getattr(request.state, "trace", None) or Trace(_request_id(request))
    trace.status, trace.outcome = exc.status, error_kind(exc)
    if hasattr(request.app.state, "gateway"):
        gateway(request).finish(trace)
    headers = {"x-request-id": trace.request_id}
    if isinstance(exc, OverloadedError):
        headers["retry-after"] = "1"
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _serve_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServeError)
    return _error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """404 and 405 in OpenAI's error shape too, so every client parses one format."""
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return _error_response(request, InvalidRequestError(message, status=exc.status_code))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a client mistake: logged with its traceback, answered in OpenAI's shape."""
    log.exception("unexpected error", exc_info=exc)
    error = ServeError("internal server error; see the server log", code="internal_error")
    return _error_response(request, error)


def run(settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout`` s to finish.

    NOTE: with ``workers`` > 1 each process counts its own ``/metrics`` and
    ``/health``, and ``max_concurrency`` applies per process.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    for upstream in (settings.strong, settings.weak):
        upstream.api_key()  # a missing key is one clear line, before starting

    log_config = {
        **LOGGING_CONFIG,
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "prefroute": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,  # prefroute's own line per request says more
        "log_config": log_config,
        "timeout_graceful_shutdown": settings.shutdown_timeout,
    }
    if settings.workers == 1:
        uvicorn.run(create_app(settings), **options)
        return
    # Worker processes import the app by name, so the settings travel in the environment.
    os.environ[SETTINGS_ENV] = settings.to_env()
    uvicorn.run(f"{__name__}:create_app", factory=True, workers=settings.workers, **options)
