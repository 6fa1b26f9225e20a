"""Thresholds that mean something on the user's traffic.

A raw threshold (``router-mf-0.1159``) is meaningless on its own; users ask
for "30% of calls to the strong model" or "at most $X per 1M tokens". Both
reduce to a strong-call share, and a share to the threshold that sends that
share of a set of calibration prompts to the strong model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prefroute.errors import InvalidParameterError

if TYPE_CHECKING:
    from prefroute.routers.base import Router


def strong_share(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """Share of prompts whose score reaches ``threshold`` (those go to the strong model)."""
    values = np.asarray(scores, dtype=np.float64)
    return float((values >= threshold).mean()) if values.size else 0.0


def threshold_for_share(scores: Sequence[float] | np.ndarray, share: float) -> float:
    """The threshold that sends as close to ``share`` of these prompts to the strong model.

    Candidates are the distinct scores themselves (plus one above the maximum,
    for share 0), so ties never split: a group of equal scores goes one way.
    Among equally close candidates the higher threshold wins (fewer strong calls).
    """
    if not 0.0 <= share <= 1.0:
        raise InvalidParameterError(f"share must be in [0, 1], got {share}")
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise InvalidParameterError("need at least one calibration score")
    distinct = np.unique(values)  # ascending
    above = np.nextafter(distinct[-1], np.inf)
    candidates = np.append(distinct, above)
    # share reached by each candidate: count of scores >= it
    counts = values.size - np.searchsorted(np.sort(values), candidates, side="left")
    error = np.abs(counts / values.size - share)
    best = np.flatnonzero(error == error.min())[-1]
    return float(candidates[best])


def share_for_budget(budget: float, strong_cost: float, weak_cost: float) -> float:
    """Strong share whose blended price per 1M tokens equals ``budget``, clipped to [0, 1].

    Assumes prompts of similar length on both sides, the usual blended-price view.
    """
    if strong_cost <= weak_cost:
        raise InvalidParameterError(
            f"strong model cost ({strong_cost}) must exceed the weak model's ({weak_cost})"
        )
    if budget < weak_cost:
        raise InvalidParameterError(
            f"budget ${budget}/1M tokens is below the weak model's own price ${weak_cost}"
        )
    return float(min(1.0, (budget - weak_cost) / (strong_cost - weak_cost)))


def calibration_table(scores: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Threshold for every whole-percent strong share, 0 to 100 (the index is the percent).

    Stored in the artifact (``Calibration.thresholds``), it serves
    ``router-<kind>@<share>%`` without re-scoring the calibration prompts.
    """
    from prefroute.routers.artifact import SHARES

    return tuple(threshold_for_share(scores, p / 100) for p in range(SHARES))


def calibrate_artifact(
    artifact: str | Path,
    *,
    prompts: str | Path | None = None,
    data_dir: str | Path | None = None,
) -> tuple[Router, np.ndarray]:
    """Score calibration prompts with a saved router and store its threshold table.

    Default prompts: the shipped real Arena prompts (real traffic, not the
    benchmarks). Returns the reloaded router and the scores.
    """
    from prefroute.data import shipped
    from prefroute.data.location import data_dir as resolve_data_dir
    from prefroute.data.readers import read_prompts
    from prefroute.routers.artifact import Calibration, update_config
    from prefroute.routers.base import Router

    router = Router.load(artifact)
    if prompts is None:
        texts = shipped.arena_prompts(resolve_data_dir(data_dir))
        described = "shipped real Chatbot Arena prompts"
    else:
        texts = read_prompts(prompts)[1]
        described = str(prompts)
    scores = router.strong_win_rate(texts)
    calibration = Calibration(
        thresholds=calibration_table(scores), prompts=described, n_prompts=len(texts)
    )
    update_config(artifact, calibration=calibration)
    router.calibration_ = calibration
    return router, scores
