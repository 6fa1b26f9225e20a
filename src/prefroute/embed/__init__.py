"""Text -> L2-normalised float32 vectors, behind one small protocol.

Every router embeds prompts the same way at training and serving time, so an
embedder is named by a *spec* string stored in the artifact:

- ``static`` / ``static:<dir-or-hub-name>``: model2vec static embeddings (default;
  distilled once from the packaged all-MiniLM-L6-v2, cached in the user cache dir)
- ``minilm`` / ``minilm:onnx-int8``: all-MiniLM-L6-v2 through ONNX Runtime, int8
- ``api:<model>``: any OpenAI-compatible ``/v1/embeddings`` endpoint
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """What routers and decontamination need from an embedder."""

    spec: str
    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        ...
