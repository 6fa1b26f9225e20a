"""The baseline: a score that ignores the prompt."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.routers.base import Router

if TYPE_CHECKING:
    from prefroute.data.schema import Battles


class RandomRouter(Router):
    """Uniform scores, so any threshold t sends a share 1 - t to the strong model.

    The score is a hash of the prompt and ``random_state`` rather than a draw
    from a generator: the same prompt always routes the same way, across
    batches, processes and replicas.
    """

    kind = "random"

    def fit(self, battles: Battles) -> RandomRouter:
        self._begin_fit()
        self.seed_ = 0 if self.random_state is None else int(self.random_state)
        return self

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        self.check_is_fitted()
        salt = self.seed_.to_bytes(8, "little", signed=True)
        digests = [
            int.from_bytes(hashlib.blake2b(p.encode("utf-8"), digest_size=8, salt=salt).digest())
            for p in prompts
        ]
        return (np.asarray(digests, dtype=np.float64) / 2.0**64).astype(np.float32)

    def _state(self) -> dict[str, int]:
        return {"seed": self.seed_}

    def _restore(self, arrays: dict[str, np.ndarray], state: Mapping[str, Any], root: Path) -> None:
        self.seed_ = int(state["seed"])
