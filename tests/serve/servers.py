"""Real servers on 127.0.0.1 for the serve tests: uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from prefroute.serve.app import uvicorn_config
from prefroute.serve.config import ServeSettings, load_settings
from prefroute.testing import FakeUpstream, FaultUpstream

STRONG, WEAK = "big-model", "small-model"


@contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """Run ``app`` on a free port of 127.0.0.1; yields its base URL and the server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    options = {"log_level": "warning", "access_log": False, "lifespan": "on", **config}
    settings = getattr(app.state, "settings", None)  # a prefroute app, served as in `serve`
    server = uvicorn.Server(
        uvicorn_config(app, settings, **options) if settings else uvicorn.Config(app, **options)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    """Poll for something another thread does; fail (not hang) if it never happens."""
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def settings_for(
    fake: FakeUpstream | FaultUpstream, routers: list[Path], **overrides: Any
) -> ServeSettings:
    """Server settings pointing both models at the fake, with quick timeouts and retries,
    and no circuit breaker (its state would carry from one test to the next)."""
    url = fake.url  # type: ignore[union-attr]
    quick = {
        "base_url": url,
        "first_byte_timeout": 1.0,
        "answer_timeout": 1.0,
        "chunk_timeout": 2.0,
    }
    base: dict[str, Any] = {
        "routers": [str(r) for r in routers],
        "strong": quick,
        "weak": quick,
        "retries": 1,
        "backoff": 0.01,
        "breaker_failures": 0,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(None, base)
