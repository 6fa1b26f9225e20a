"""Router kinds by name, imported only when asked for.

Loading a ``random`` artifact must not import torch, so each kind is a
``module:Class`` path rather than an imported class.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from prefroute.errors import ArtifactError

if TYPE_CHECKING:
    from prefroute.routers.base import Router

KINDS: dict[str, str] = {
    "random": "prefroute.routers.random:RandomRouter",
    "sw_ranking": "prefroute.routers.sw_ranking:SWRankingRouter",
    "mf": "prefroute.routers.mf:MFRouter",
    "quality": "prefroute.routers.quality:QualityRouter",
    "classifier": "prefroute.routers.classifier:ClassifierRouter",
    "causal_llm": "prefroute.routers.causal_llm:CausalLLMRouter",
}


def router_class(kind: str) -> type[Router]:
    """The class behind a kind name."""
    try:
        module, name = KINDS[kind].split(":")
    except KeyError:
        raise ArtifactError(
            f"unknown router kind {kind!r}; expected one of {sorted(KINDS)}"
        ) from None
    return getattr(import_module(module), name)
