"""prefroute: learn LLM routers from preference data and serve them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prefroute.errors import PrefrouteError

try:
    __version__ = version("prefroute")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["AsyncClient", "Client", "PrefrouteError", "__version__"]


def __getattr__(name: str) -> object:
    """``Client`` and ``AsyncClient`` on first use: they import ``openai`` (the serve extra)."""
    if name in ("Client", "AsyncClient"):
        from prefroute import client

        return getattr(client, name)
    raise AttributeError(f"module 'prefroute' has no attribute {name!r}")
