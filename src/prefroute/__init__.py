"""prefroute: learn LLM routers from preference data and serve them."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from prefroute.errors import PrefrouteError

try:
    __version__ = version("prefroute")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["PrefrouteError", "__version__"]
