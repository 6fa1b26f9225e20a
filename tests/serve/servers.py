"""Real servers on 127.0.0.1 for the serve tests: uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from prefroute.serve.config import ServeSettings, load_settings
from prefroute.testing import FakeUpstream

STRONG, WEAK = "big-model", "small-model"


@contextmanager
def serve_in_thread(app: Any, **config: Any) -> Iterator[tuple[str, uvicorn.Server]]:
    """Run ``app`` on a free port of 127.0.0.1; yields its base URL and the server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **config)
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


def settings_for(fake: FakeUpstream, routers: list[Path], **overrides: Any) -> ServeSettings:
    """Server settings pointing both models at the fake, with quick retries."""
    base: dict[str, Any] = {
        "routers": [str(r) for r in routers],
        "strong": {"base_url": fake.url, "timeout": 2.0},  # type: ignore[attr-defined]
        "weak": {"base_url": fake.url, "timeout": 2.0},  # type: ignore[attr-defined]
        "retries": 1,
        "backoff": 0.01,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return load_settings(None, base)
