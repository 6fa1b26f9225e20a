"""Text -> L2-normalised float32 vectors, behind one small protocol.

Every router embeds prompts the same way at training and serving time, so an
embedder is named by a *spec* string stored in the artifact:

- ``static`` / ``static:<dir-or-hub-name>``: model2vec static embeddings (default;
  distilled once from the packaged all-MiniLM-L6-v2, cached in the user cache dir)
- ``minilm`` / ``minilm:onnx-int8``: all-MiniLM-L6-v2 through ONNX Runtime, int8
- ``api:<model>``: any OpenAI-compatible ``/v1/embeddings`` endpoint

``get_embedder(spec)`` builds one; ``CachedEmbedder`` keeps vectors on disk.
Backends are imported on first use, so ``import prefroute.embed`` stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from prefroute.embed.factory import DEFAULT_SPEC, VALID_SPECS, get_embedder

if TYPE_CHECKING:
    from prefroute.embed.api import ApiEmbedder
    from prefroute.embed.cache import CachedEmbedder
    from prefroute.embed.minilm import MiniLMEmbedder
    from prefroute.embed.static import StaticEmbedder

__all__ = [
    "DEFAULT_SPEC",
    "VALID_SPECS",
    "ApiEmbedder",
    "CachedEmbedder",
    "Embedder",
    "MiniLMEmbedder",
    "StaticEmbedder",
    "get_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """What routers and decontamination need from an embedder."""

    spec: str

    @property
    def dim(self) -> int:
        """Width of every vector (read-only: an API embedder learns it on first call)."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        ...


_LAZY = {
    "ApiEmbedder": "prefroute.embed.api",
    "CachedEmbedder": "prefroute.embed.cache",
    "MiniLMEmbedder": "prefroute.embed.minilm",
    "StaticEmbedder": "prefroute.embed.static",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefroute.embed' has no attribute {name!r}")
