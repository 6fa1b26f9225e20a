"""Calibration: a share or budget in, the threshold that achieves it out."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.calibrate import share_for_budget, strong_share, threshold_for_share
from prefroute.errors import InvalidParameterError


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
