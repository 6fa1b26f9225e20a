"""prefroute: learn LLM routers from preference data and serve them."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from prefroute.errors import PrefrouteError

if TYPE_CHECKING:
    from prefroute.client import AsyncClient, Client
    from prefroute.routers.base import Router

try:
    __version__ = version("prefroute")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["AsyncClient", "Client", "PrefrouteError", "Router", "__version__", "load"]


def load(path: str | os.PathLike[str]) -> Router:
    """The router artifact at ``path``, of whatever kind (``prefroute.routers.load``)."""
    from prefroute.routers import load as load_router

    return load_router(path)


def __getattr__(name: str) -> object:
    """``Router`` (numpy), ``Client`` and ``AsyncClient`` (``openai``, the serve extra) on
    first use, so ``import prefroute`` stays cheap."""
    if name == "Router":
        from prefroute.routers.base import Router

        return Router
    if name in ("Client", "AsyncClient"):
        from prefroute import client

        return getattr(client, name)
    raise AttributeError(f"module 'prefroute' has no attribute {name!r}")
