"""Routers: learn P(strong beats weak | prompt) from battles, save and load them.

    from prefroute.routers import KINDS, Router, load

    router = load("prefroute-out/mf")          # any artifact, whatever its kind
    router.route(["Prove that √2 is irrational."], threshold=0.5)

Names are imported on first use, so ``import prefroute.routers`` (and ``KINDS``,
``load``) costs no numpy, and a router kind's module (scipy for ``sw_ranking``,
ONNX Runtime for ``classifier``) only when that kind is asked for.
"""

from __future__ import annotations

import os
from importlib import import_module
from typing import TYPE_CHECKING, Any

from prefroute.routers.registry import KINDS

if TYPE_CHECKING:
    from prefroute.routers.artifact import ArtifactConfig, read_config
    from prefroute.routers.base import EmbeddingRouter, Router
    from prefroute.routers.causal_llm import CausalLLMRouter
    from prefroute.routers.classifier import ClassifierRouter
    from prefroute.routers.mf import MFRouter
    from prefroute.routers.random import RandomRouter
    from prefroute.routers.sw_ranking import SWRankingRouter

__all__ = [
    "KINDS",
    "ArtifactConfig",
    "CausalLLMRouter",
    "ClassifierRouter",
    "EmbeddingRouter",
    "MFRouter",
    "RandomRouter",
    "Router",
    "SWRankingRouter",
    "load",
    "read_config",
]

_LAZY = {
    "Router": "prefroute.routers.base",
    "EmbeddingRouter": "prefroute.routers.base",
    "ArtifactConfig": "prefroute.routers.artifact",
    "read_config": "prefroute.routers.artifact",
    **{path.rsplit(":", 1)[1]: path.split(":")[0] for path in KINDS.values()},
}


def load(path: str | os.PathLike[str]) -> Router:
    """The router saved at ``path``, of whatever kind (``Router.load``)."""
    from prefroute.routers.base import Router

    return Router.load(path)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefroute.routers' has no attribute {name!r}")
