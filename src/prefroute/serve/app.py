"""The OpenAI-compatible routing server: score the prompt, call the chosen upstream.

``POST /v1/chat/completions`` takes any OpenAI chat request whose ``model``
names a router (``router-mf@30%``, ``router-mf-0.1159``, or among N upstreams
``router-quality@budget=0.5``, ``router-quality:cheap``), routes on the user
text and forwards the body (only ``model`` replaced) to the chosen upstream;
the answer comes back as the upstream sent it, so its ``model`` field is the
model that answered. ``x-prefroute-*`` headers say what was
chosen and why; one log line per request says the same (no prompt text
unless ``log_prompts``). ``GET /v1/models``, ``/health`` and ``/metrics``
(Prometheus) complete it.

A request is admitted from its head, before its body is read; its client
leaving cancels it at any stage; every error is an OpenAI-style body on a
connection that stays usable (or says ``Connection: close``).

Everything a request needs lives on ``app.state`` (set up in the lifespan),
so several apps, e.g. in tests, never share state.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Receive

from prefroute import __version__
from prefroute.conversation import conversation_text
from prefroute.errors import (
    AuthenticationError,
    InvalidRequestError,
    OverloadedError,
    RequestTimeoutError,
    RequestTooLargeError,
    ServeError,
)
from prefroute.prices import price_table
from prefroute.serve.config import ROLES, SETTINGS_ENV, ServeSettings
from prefroute.serve.limits import Admission
from prefroute.serve.metrics import Metrics, StreamUsage, error_kind
from prefroute.serve.routing import Choice, RouterSet, model_price
from prefroute.serve.schema import openapi_body, parse_chat_request
from prefroute.serve.stream import Lifeline, ProxyStream
from prefroute.serve.upstream import Reply, Upstreams

if TYPE_CHECKING:
    import uvicorn

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
    lam: float | None = None
    runner_up: str | None = None
    model: str = "-"
    attempts: int = 0
    fell_back: bool = False
    status: int = 0
    outcome: str = "ok"
    upstream_error: str = "-"
    cost: float | None = None
    prompt: str | None = None

    def line(self) -> str:
        ms = (time.perf_counter() - self.started) * 1000
        parts = [
            f"id={self.request_id} status={self.status} outcome={self.outcome}",
            f"router={self.router} role={self.role} model={self.model}",
            f"score={_num(self.score)} threshold={_num(self.threshold)}",
            *(
                []
                if self.lam is None
                else [f"lambda={_num(self.lam)} runner_up={self.runner_up or '-'}"]
            ),
            f"stream={str(self.stream).lower()} attempts={self.attempts}",
            f"fallback={str(self.fell_back).lower()} upstream_error={self.upstream_error}",
            f"cost_usd={_num(self.cost, 8)} ms={ms:.1f}",
        ]
        if self.prompt is not None:
            parts.append(f"prompt={self.prompt!r}")
        return " ".join(parts)


class Gateway:
    """The per-app state: routers, upstreams, admission, metrics, accepted key digests."""

    def __init__(
        self, settings: ServeSettings, routers: RouterSet, upstreams: Upstreams, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.routers = routers
        self.upstreams = upstreams
        self.metrics = metrics
        self.admission = Admission(
            len(upstreams.names) * settings.max_concurrency,  # a full set of slots per model
            settings.max_body_memory,
            settings.max_queue,
            settings.queue_timeout,
        )
        self.key_digests = [_digest(k) for k in settings.accepted_keys()]
        self.created = int(time.time())
        routers.warm_up()

    def finish(self, trace: Trace) -> None:
        """Count and log a request once, when its answer is complete."""
        self.metrics.requests.labels(str(trace.status)).inc()
        if trace.outcome != "ok":
            self.metrics.error(trace.outcome)
        log.info(trace.line())

    def leave(self, size: int) -> None:
        """A request is over: its admission slot and body bytes are free."""
        self.admission.leave(size)
        self.metrics.in_flight.dec()


def create_app(settings: ServeSettings | None = None) -> FastAPI:
    """The app for ``settings`` (default: ``ServeSettings.from_env()``).

    The factory form is how each of ``prefroute serve --workers N``'s processes
    builds its app; ``uvicorn --factory prefroute.serve.app:create_app`` works too.
    """
    if settings is None:
        settings = ServeSettings.from_env()
    prices = price_table(settings.prices)
    metrics = Metrics(settings.upstreams(), prices)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        routers = RouterSet.load(settings)
        _log_prices(routers, metrics)
        async with Upstreams(settings, metrics, settings.max_concurrency) as upstreams:
            app.state.gateway = Gateway(settings, routers, upstreams, metrics)
            log.info(
                "serving routers %s; strong=%s weak=%s%s; routing in the %s",
                ", ".join(routers.kinds),
                settings.strong.base_url,
                settings.weak.base_url,
                "".join(f" {n}={m.base_url}" for n, m in settings.models.items()),
                {"auto": "event loop (long prompts in the threadpool)", "inline": "event loop"}.get(
                    settings.routing, "threadpool"
                ),
            )
            yield

    # the docs are routes of their own below, behind the API keys when keys are set
    app = FastAPI(
        title="prefroute", version=__version__, lifespan=lifespan,
        docs_url=None, redoc_url=None, openapi_url=None,
    )  # fmt: skip
    app.state.settings = settings
    app.include_router(api)
    app.add_exception_handler(ServeError, _serve_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _http_error)
    return app


def _log_prices(routers: RouterSet, metrics: Metrics) -> None:
    """One line per upstream model: the price the cost metric uses, or that it has none."""
    for role, model in routers.upstream_models():
        price = metrics.price(role, model)
        table = role if role in ROLES else f"models.{role}"
        if price is not None:
            log.info("cost metric prices %s (%s upstream)", price.line(model), role)
        else:
            log.warning(
                "no price for upstream model %s (%s): prefroute_cost_dollars leaves its calls "
                "out; set input_cost/output_cost in the [%s] table of the config, or give a "
                "price file (--prices FILE)",
                model, role, table,
            )  # fmt: skip


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


class _GuardedRoute(APIRoute):
    """A route whose bugs are answered here, as a 500 in OpenAI's shape.

    Not with an ``Exception`` handler: FastAPI gives that one to Starlette's
    ServerErrorMiddleware, which answers and then re-raises, so uvicorn logs a
    second traceback and drops the keep-alive connection without saying so.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except (ServeError, HTTPException, RequestValidationError):
                raise
            except Exception as exc:
                return await _unexpected(request, exc)

        return guarded


api = APIRouter(route_class=_GuardedRoute)
protected = [Depends(authorize)]


@api.get("/health")
async def health(request: Request) -> dict[str, Any]:
    """Liveness and what is served; open without a key, for load balancers.

    ``degraded`` while an upstream's circuit is open (requests still get answers,
    from the other model); the status code stays 200 either way, since another
    replica behind the same upstreams would fare no better.
    """
    gw = gateway(request)
    upstreams = gw.upstreams.health()
    degraded = any(u["circuit"] != "closed" for u in upstreams.values())
    return {
        "status": "degraded" if degraded else "ok",
        "routers": gw.routers.kinds,
        "in_flight": gw.admission.in_use,
        "queued": gw.admission.waiting,
        "body_bytes": gw.admission.body_bytes,
        "upstreams": upstreams,
    }


@api.get("/openapi.json", include_in_schema=False, dependencies=protected)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@api.get("/docs", include_in_schema=False, dependencies=protected)
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="prefroute")


@api.get("/redoc", include_in_schema=False, dependencies=protected)
async def redoc() -> HTMLResponse:
    return get_redoc_html(openapi_url="/openapi.json", title="prefroute")


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
    """Admit, read, route, and relay the chosen upstream's answer.

    Admission is decided from the head (key, declared size) before a byte of
    the body is read; from then on the request holds an admission slot and its
    body's bytes until its answer is complete, however it ends.
    """
    gw = gateway(request)
    trace = Trace(_request_id(request))
    request.state.trace = trace
    # called, not declared as a dependency: FastAPI's dependency solving took ~5%
    # of the server's CPU per request, and this is the endpoint under load
    await authorize(request)
    limit = gw.settings.max_body_bytes
    size = _declared_size(request, limit)
    await gw.admission.admit(size)
    gw.metrics.in_flight.inc()
    lifeline: Lifeline | None = None
    try:
        raw = await _read_body(request.receive, limit, gw.settings.client_timeout)
        if len(raw) != size:
            gw.admission.shrink(size, len(raw))
            size = len(raw)
        lifeline = Lifeline(request.receive)
        response = await _answer(gw, trace, raw, lifeline, size)
    except asyncio.CancelledError:
        if lifeline is None or not lifeline.gone:
            # the server's shutdown grace period is over: say so rather than vanish
            error = OverloadedError(
                "the server is shutting down; retry the request", code="server_shutting_down"
            )
            gw.leave(size)
            return _error_response(request, error, close=True)
        lifeline.absorb()
        lifeline.close()
        trace.status, trace.outcome = 499, "client_disconnect"  # nginx's code for it
        gw.finish(trace)
        gw.leave(size)
        return Response(status_code=499)
    except BaseException:
        if lifeline is not None:
            lifeline.close()
        gw.leave(size)
        raise
    return response


async def _answer(
    gw: Gateway, trace: Trace, raw: bytearray, lifeline: Lifeline, size: int
) -> Response:
    """Parse, route and call the upstream; the admission is left when the answer is done."""
    body = parse_chat_request(raw)
    trace.stream = body.data.get("stream") is True
    selection = gw.routers.select(body.data["model"])
    start = time.perf_counter()
    text = conversation_text(body.data["messages"], selection.turns) or ""  # no user text
    if _inline(gw.settings.routing, text):
        decision = selection.decide_text(text)
    else:
        decision = await run_in_threadpool(selection.decide_text, text)
    gw.metrics.routing_seconds.observe(time.perf_counter() - start)
    trace.router, trace.score = decision.kind, decision.score
    if isinstance(decision, Choice):
        gw.metrics.chosen.labels(decision.kind, decision.chosen).inc()
        trace.lam, trace.runner_up = decision.lam, decision.runner_up
    else:
        gw.metrics.routed.labels(decision.kind, decision.role).inc()
        trace.threshold = decision.threshold
    if gw.settings.log_prompts:
        trace.prompt = text[:200]
    del text
    body = dataclasses.replace(body, data={})  # only the raw bytes travel on

    reply = await gw.upstreams.open(decision, body, trace.request_id, stream=trace.stream)
    trace.role, trace.model = reply.upstream, reply.model
    trace.attempts, trace.fell_back = reply.attempts, reply.fell_back
    trace.status = reply.status
    if reply.failures:
        trace.upstream_error = reply.failures[-1].kind
    gw.metrics.answered.labels(reply.upstream, reply.model).inc()
    headers = _headers(reply, decision.headers(reply.upstream), trace.request_id)

    if reply.content is None:
        lifeline.armed = False  # the stream re-arms it while it relays

        async def close(outcome: str, usage: StreamUsage) -> None:
            reply.finish(outcome)
            gw.leave(size)
            trace.outcome = outcome
            if outcome == "client_disconnect":
                trace.status = 499
            trace.cost = gw.metrics.usage(reply.upstream, reply.model, usage.usage)
            gw.finish(trace)

        return ProxyStream(reply.response, reply.head, headers, lifeline, close)
    lifeline.close()
    gw.leave(size)
    if reply.ok:
        headers["content-type"] = "application/json"  # checked to be a JSON completion
        trace.cost = gw.metrics.usage(reply.upstream, reply.model, reply.usage)
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


def _headers(reply: Reply, routing: dict[str, str], request_id: str) -> dict[str, str]:
    """The upstream's headers (minus hop-by-hop ones) and prefroute's own: the model that
    answered, why it was chosen (``routing``), whether it was a fallback."""
    headers = {k: v for k, v in reply.response.headers.items() if k.lower() not in HOP_BY_HOP}
    headers.update(
        {
            "x-prefroute-model": reply.model,
            **routing,
            "x-prefroute-fallback": str(reply.fell_back).lower(),
            "x-request-id": request_id,
        }
    )
    return headers


def _too_large(limit: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is larger than the server's limit of {limit:,} bytes",
        code="request_too_large",
    )


def _declared_size(request: Request, limit: int) -> int:
    """The bytes to admit the body for: its ``Content-Length``, else the limit (413 if over)."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return limit
    if int(declared) > limit:
        raise _too_large(limit)
    return int(declared)


async def _read_body(receive: Receive, limit: int, timeout: float) -> bytearray:
    """The body, into one buffer; 413 past ``limit`` bytes, 408 after ``timeout`` s of
    silence between its parts, and a cancelled request if the client leaves."""
    body = bytearray()
    while True:
        try:
            async with asyncio.timeout(timeout):
                message = await receive()
        except TimeoutError:
            raise RequestTimeoutError(
                f"the request body stopped arriving for {timeout:g} s", code="request_timeout"
            ) from None
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        body += message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return body


def _request_id(request: Request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _digest(key: str) -> bytes:
    """Keys are compared as SHA-256 digests: equal length, so no length leaks either."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _error_response(request: Request, exc: ServeError, *, close: bool = False) -> JSONResponse:
    """Every error as OpenAI sends it; the request's trace (if any) is counted and logged.

    The connection stays open for the next request unless the error says otherwise
    (``Connection: close``): a body left unread, a client too slow, a bug.
    """
    trace = getattr(request.state, "trace", None) or Trace(_request_id(request))
    trace.status, trace.outcome = exc.status, error_kind(exc)
    if hasattr(request.app.state, "gateway"):
        gateway(request).finish(trace)
    headers = {"x-request-id": trace.request_id}
    if exc.retry_after is not None:
        headers["retry-after"] = str(max(1, round(exc.retry_after)))
    if close or exc.closes:
        headers["connection"] = "close"
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def _serve_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServeError)
    return _error_response(request, exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """404, 405 and FastAPI's own 422 in OpenAI's error shape too, so every client parses
    one format."""
    if isinstance(exc, HTTPException):
        status, detail = exc.status_code, exc.detail
    else:
        status, detail = 422, "invalid request"
    message = f"{request.method} {request.url.path}: {detail}"
    return _error_response(request, InvalidRequestError(message, status=status))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not a client mistake: logged once with its traceback, answered in OpenAI's
    shape, and the connection closed (the request may be half read)."""
    log.exception("unexpected error", exc_info=exc)
    error = ServeError("internal server error; see the server log", code="internal_error")
    return _error_response(request, error, close=True)


def uvicorn_config(app: Any, settings: ServeSettings, **options: Any) -> uvicorn.Config:
    """uvicorn's settings for serving ``app``: prefroute's HTTP protocol (with the head
    deadline, ``client_timeout``) and the shutdown grace period; ``options`` on top."""
    import uvicorn

    from prefroute.serve.protocol import Protocol

    options = {
        "host": settings.host,
        "port": settings.port,
        "access_log": False,  # prefroute's own line per request says more
        "timeout_graceful_shutdown": settings.shutdown_timeout,
        "http": Protocol,
        **options,
    }
    config = uvicorn.Config(app, **options)
    config.client_timeout = settings.client_timeout  # type: ignore[attr-defined]
    return config


def _return_large_buffers() -> None:
    """Have glibc's malloc give every buffer of 1 MiB or more back to the OS when freed.

    By default glibc raises its mmap threshold to the size of the largest block
    freed (up to 32 MiB), so after a few large request bodies their memory is
    carved from the heap and stays with the process: 16 bodies of 15 MB left
    the server 500 MB larger. A fixed threshold keeps big bodies in their own
    mappings, returned when the request ends. No-op off glibc.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold = -3  # glibc's <malloc.h>
    mallopt(m_mmap_threshold, 1 << 20)


def run(settings: ServeSettings) -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests get ``shutdown_timeout`` s to finish.

    The port is bound and listening before the routers load, so a client that
    connects while the server starts waits in the kernel's queue and is
    answered once the routers are ready, instead of being refused. With
    ``workers`` > 1 the parent process holds the port, and SIGHUP to it
    restarts the workers one by one, each new one loading its routers before
    the old one stops: a restart with no moment without a listener.

    NOTE: with ``workers`` > 1 each process counts its own ``/metrics`` and
    ``/health``, and ``max_concurrency`` applies per process.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG
    from uvicorn.supervisors import Multiprocess

    for upstream in settings.upstreams().values():
        upstream.api_key()  # a missing key is one clear line, before starting
    settings.accepted_keys()  # and so is an unreadable key file
    table = price_table(settings.prices)  # and a bad price file
    for name in settings.models:
        model_price(settings, name, table)  # and an N-model upstream without a price
    _return_large_buffers()

    log_config = {
        **LOGGING_CONFIG,
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "prefroute": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
    if settings.workers == 1:
        config = uvicorn_config(create_app(settings), settings, log_config=log_config)
    else:
        # Worker processes import the app by name, so the settings travel in the environment.
        os.environ[SETTINGS_ENV] = settings.to_env()
        config = uvicorn_config(
            f"{__name__}:create_app", settings, log_config=log_config, factory=True,
            workers=settings.workers,
        )  # fmt: skip
    sock = config.bind_socket()
    sock.listen(config.backlog)
    try:
        if settings.workers == 1:
            uvicorn.Server(config).run(sockets=[sock])
        else:
            Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
