"""Calibration: a share, budget or quality target in, the threshold that achieves it out."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.calibrate import (
    share_for_budget,
    strong_share,
    threshold_for_quality,
    threshold_for_share,
)
from prefroute.errors import EvalError, InvalidParameterError


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 0.8, 1.0])
def test_threshold_hits_the_share_on_continuous_scores(share: float) -> None:
    scores = np.random.default_rng(0).random(1000)
    threshold = threshold_for_share(scores, share)
    assert strong_share(scores, threshold) == pytest.approx(share, abs=0.001)


def test_ties_never_split_and_the_closest_share_wins() -> None:
    scores = [0.2, 0.5, 0.5, 0.5, 0.9]
    # 40% is unreachable: 0.9 gives 20%, 0.5 gives 80%; 20% is closer
    assert threshold_for_share(scores, 0.4) == 0.9
    assert threshold_for_share(scores, 0.6) == 0.5
    assert strong_share(scores, threshold_for_share(scores, 0.0)) == 0.0


def test_bad_shares_and_empty_scores_are_refused() -> None:
    with pytest.raises(InvalidParameterError, match=r"share must be in \[0, 1\]"):
        threshold_for_share([0.1], 1.5)
    with pytest.raises(InvalidParameterError, match="at least one"):
        threshold_for_share([], 0.5)


def test_budget_maps_linearly_to_share() -> None:
    assert share_for_budget(0.24, 24.7, 0.24) == 0.0
    assert share_for_budget(24.7, 24.7, 0.24) == pytest.approx(1.0)
    assert share_for_budget((24.7 + 0.24) / 2, 24.7, 0.24) == pytest.approx(0.5)
    assert share_for_budget(100.0, 24.7, 0.24) == 1.0
    with pytest.raises(InvalidParameterError, match="below the weak model"):
        share_for_budget(0.1, 24.7, 0.24)
    with pytest.raises(InvalidParameterError, match="must exceed the weak model's"):
        share_for_budget(5.0, 0.1, 0.24)


# Four prompts; the router ranks them 0.9 > 0.6 > 0.6 > 0.1 (a tie in the middle).
SCORES = [0.9, 0.6, 0.6, 0.1]
STRONG = [1.0, 1.0, 0.0, 1.0]  # r_strong = 0.75
WEAK = [0.0, 0.0, 0.0, 1.0]  # r_weak = 0.25


def test_the_cheapest_threshold_keeping_a_share_of_the_strong_models_quality() -> None:
    # points: share 0 -> 0.25, 1/4 -> 0.5, 3/4 (the tie goes together) -> 0.75, 1 -> 0.75
    threshold, share, reached = threshold_for_quality(SCORES, STRONG, WEAK, 0.6)
    assert (threshold, share) == (0.9, 0.25) and reached == pytest.approx(0.5 / 0.75)
    threshold, share, reached = threshold_for_quality(SCORES, STRONG, WEAK, 0.95)
    assert (threshold, share, reached) == (0.6, 0.75, 1.0)  # the tie cannot be split
    assert strong_share(SCORES, threshold) == share  # routing at it gives that share
    threshold, share, _ = threshold_for_quality(SCORES, STRONG, WEAK, 0.3)  # weak alone: 1/3
    assert share == 0.0 and threshold > max(SCORES)


def test_a_share_of_the_gap_is_pgr() -> None:
    threshold, share, reached = threshold_for_quality(SCORES, STRONG, WEAK, 0.5, measure="gap")
    assert (threshold, share, reached) == (0.9, 0.25, 0.5)  # (0.5 - 0.25) / (0.75 - 0.25)
    with pytest.raises(EvalError, match="strong model is worse than the weak one"):
        threshold_for_quality(SCORES, WEAK, STRONG, 0.5, measure="gap")
    with pytest.raises(EvalError, match="mean quality is -1, so a share of it means nothing"):
        threshold_for_quality(SCORES, [-1.0] * 4, [-2.0] * 4, 0.9)
    with pytest.raises(InvalidParameterError, match=r"quality target must be in \(0, 1\]"):
        threshold_for_quality(SCORES, STRONG, WEAK, 0.0)
