"""The metrics against values computed by hand on four-prompt cases."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.errors import EvalError
from prefroute.evals.metrics import (
    CallCosts,
    apgr,
    apgr_interval,
    cost_saving,
    curve,
    oracle_curve,
    quality_gap,
    random_band,
    random_curve,
)
from prefroute.prices import price_table

# Four prompts; strong wins on the first two, both are right on the third, both
# wrong on the fourth. d = strong - weak = [1, 1, 0, 0]; r_strong = 3/4, r_weak = 1/4.
STRONG = [1.0, 1.0, 1.0, 0.0]
WEAK = [0.0, 0.0, 1.0, 0.0]
# The router ties prompts 2 and 3 (d = 1 and d = 0).
SCORES = [0.9, 0.5, 0.5, 0.1]


def test_curve_points_auc_apgr_by_hand() -> None:
    # Thresholds 0.9, 0.5, 0.1 send 1, 3, 4 prompts to the strong model:
    #   share 1/4: gain 1 of 2 -> PGR 0.5; share 3/4: gain 2 -> PGR 1; share 1: PGR 1.
    # quality = 1/4 + PGR * 1/2 = 0.25, 0.5, 0.75, 0.75.
    c = curve(SCORES, STRONG, WEAK)
    np.testing.assert_array_equal(c.share, [0.0, 0.25, 0.75, 1.0])
    np.testing.assert_array_equal(c.pgr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_array_equal(c.quality, [0.25, 0.5, 0.75, 0.75])
    np.testing.assert_array_equal(c.thresholds, [np.inf, 0.9, 0.5, 0.1])
    assert (c.r_strong, c.r_weak) == (0.75, 0.25)
    # APGR = 1/4 (0 + .5)/2 + 1/2 (.5 + 1)/2 + 1/4 (1 + 1)/2 = .0625 + .375 + .25
    assert c.apgr == pytest.approx(0.6875)
    # AUC = 1/4 (.25 + .5)/2 + 1/2 (.5 + .75)/2 + 1/4 (.75 + .75)/2 = .59375
    #     = r_weak + APGR (r_strong - r_weak) = .25 + .6875 * .5
    assert c.auc == pytest.approx(0.59375)
    assert apgr(SCORES, STRONG, WEAK) == c.apgr


def test_cpt_interpolates_between_points() -> None:
    c = curve(SCORES, STRONG, WEAK)
    # PGR 0.2: on the segment (0, 0) -> (1/4, .5): 0.2 / 0.5 * 1/4 = 0.1
    assert c.cpt(0.2) == pytest.approx(0.1)
    # PGR 0.5 is reached exactly at share 1/4
    assert c.cpt(0.5) == pytest.approx(0.25)
    # PGR 0.8: on (1/4, .5) -> (3/4, 1): 1/4 + (.8 - .5) / .5 * 1/2 = 0.55
    assert c.cpt(0.8) == pytest.approx(0.55)
    assert c.cpt(1.0) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="CPT level"):
        c.cpt(0.0)


def test_ties_count_as_a_random_split_not_the_lucky_order() -> None:
    # Breaking the tie towards the prompt the strong model helps (0.6 > 0.5):
    #   PGR 0, .5, 1, 1, 1 at shares 0, 1/4, 1/2, 3/4, 1 -> APGR .0625 + .1875 + .25 + .25 = .75
    # Breaking it the other way: PGR 0, .5, .5, 1, 1 -> .0625 + .125 + .1875 + .25 = .625
    # The tied router gets their mean, 0.6875: no credit for an order it did not choose.
    lucky = apgr([0.9, 0.6, 0.5, 0.1], STRONG, WEAK)
    unlucky = apgr([0.9, 0.5, 0.6, 0.1], STRONG, WEAK)
    assert (lucky, unlucky) == (pytest.approx(0.75), pytest.approx(0.625))
    assert apgr(SCORES, STRONG, WEAK) == pytest.approx((lucky + unlucky) / 2)


def test_a_constant_router_is_exactly_the_random_line() -> None:
    rng = np.random.default_rng(0)
    strong, weak = rng.integers(0, 2, 1000), rng.integers(0, 2, 1000)
    constant = curve(np.full(1000, 0.42), strong, weak)
    assert constant.apgr == 0.5
    for level in (0.2, 0.5, 0.8):
        assert constant.cpt(level) == pytest.approx(level)
    line = random_curve(strong, weak)
    np.testing.assert_array_equal(line.share, [0.0, 1.0])
    np.testing.assert_array_equal(line.quality, [weak.mean(), strong.mean()])
    assert line.apgr == 0.5


def test_oracle_sends_the_prompts_the_strong_model_helps_first() -> None:
    # d = [1, 1, -1]: r_strong = 2/3, r_weak = 1/3, total gain 1.
    # Oracle scores = d: share 2/3 with gain 2 (PGR 2), then share 1 with PGR 1.
    # APGR = 2/3 (0 + 2)/2 + 1/3 (2 + 1)/2 = 2/3 + 1/2 = 7/6; CPT(.5) = .5/2 * 2/3 = 1/6.
    c = oracle_curve([1, 1, 0], [0, 0, 1])
    np.testing.assert_allclose(c.share, [0.0, 2 / 3, 1.0])
    np.testing.assert_allclose(c.pgr, [0.0, 2.0, 1.0])
    assert c.apgr == pytest.approx(7 / 6)
    assert c.cpt(0.5) == pytest.approx(1 / 6)
    assert oracle_curve(STRONG, WEAK).apgr == pytest.approx(0.75)  # PGR 1 from share 1/2


def test_quality_on_any_scale() -> None:
    # MT-Bench-like 1-10 scores: d = [2, 0], r_strong = 8, r_weak = 7.
    c = curve([1.0, 0.0], [9.0, 7.0], [7.0, 7.0])
    np.testing.assert_allclose(c.quality, [7.0, 8.0, 8.0])
    assert c.auc == pytest.approx(0.5 * (7 + 8) / 2 + 0.5 * 8)  # 7.75
    assert c.apgr == pytest.approx(0.75)
    np.testing.assert_allclose(c.quality_at([0.25, 1.0]), [7.5, 8.0])


def test_cost_saving_at_a_share() -> None:
    # the paper's pair from the price table at the paper's token mix: $24.7 and $0.24
    table = price_table()
    paper = CallCosts(
        table.price("gpt-4-1106-preview").blended(),
        table.price("mixtral-8x7b-instruct-v0.1").blended(),
    )
    assert paper.strong == pytest.approx(24.708, abs=1e-3) and paper.weak == 0.24
    # 1/4 strong calls: 0.25 * 24.708 + 0.75 * 0.24 = 6.357
    assert cost_saving(0.25, paper) == pytest.approx(paper.strong / paper.blended(0.25))
    # vs the random router at the same PGR (share 1/2)
    assert cost_saving(0.25, paper, baseline_share=0.5) == pytest.approx(
        paper.blended(0.5) / paper.blended(0.25)
    )
    assert cost_saving(1.0, CallCosts(10.0, 1.0)) == 1.0
    assert cost_saving(0.0, CallCosts(10.0, 1.0)) == 10.0
    assert cost_saving(0.0, CallCosts(10.0, 0.0)) == float("inf")  # a free local model
    with pytest.raises(EvalError, match="call costs must be >= 0"):
        CallCosts(-1.0, 2.0)


def _noisy_router(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A router that knows a little: scores lean towards the prompts the strong model helps."""
    rng = np.random.default_rng(seed)
    strong = (rng.random(n) < 0.8).astype(float)
    weak = (rng.random(n) < 0.4).astype(float)
    return rng.random(n) + 0.5 * (strong - weak), strong, weak


def test_the_apgr_interval_is_the_spread_over_prompt_resamples() -> None:
    scores, strong, weak = _noisy_router(60)
    scores = np.round(scores, 1)  # ties: a resampled prompt keeps its tied group
    interval = apgr_interval(scores, strong, weak, resamples=200, seed=3)
    picks = np.random.default_rng(3).integers(0, 60, size=(200, 60))
    values = []
    for p in picks:  # the slow way: re-run the metric on each resampled set
        if strong[p].mean() != weak[p].mean():
            values.append(curve(scores[p], strong[p], weak[p]).apgr)
    low, high = np.quantile(values, [0.025, 0.975])
    assert (interval.low, interval.high) == pytest.approx((low, high))
    assert interval.low < curve(scores, strong, weak).apgr < interval.high
    assert apgr_interval(scores, strong, weak, resamples=200, seed=3) == interval  # seeded


def test_the_apgr_interval_narrows_with_more_prompts_and_a_constant_router_has_none() -> None:
    small = apgr_interval(*_noisy_router(100))
    large = apgr_interval(*_noisy_router(3000))
    assert large.high - large.low < (small.high - small.low) / 3  # ~1/sqrt(30)
    _, strong, weak = _noisy_router(100)
    constant = apgr_interval(np.zeros(100), strong, weak)  # every resample is the random line
    assert (constant.low, constant.high) == pytest.approx((0.5, 0.5))


def test_the_random_band_is_where_random_routers_land() -> None:
    _, strong, weak = _noisy_router(200)
    band = random_band(strong, weak, routers=400, seed=1)
    rng = np.random.default_rng(7)
    slow = [curve(rng.random(200), strong, weak).apgr for _ in range(400)]
    low, high = np.quantile(slow, [0.05, 0.95])
    assert band.low < 0.5 < band.high
    assert band.low == pytest.approx(low, abs=0.02) and band.high == pytest.approx(high, abs=0.02)
    assert band.quantiles == (0.05, 0.95)
    wide = random_band(strong[:40], weak[:40])
    assert wide.high - wide.low > band.high - band.low  # fewer prompts, more luck


def test_the_quality_gap_says_when_pgr_is_inverted_or_noise() -> None:
    _, strong, weak = _noisy_router(400)
    gap = quality_gap(strong, weak)
    assert gap.mean == pytest.approx(strong.mean() - weak.mean())
    assert not gap.inverted and not gap.within_noise and gap.low > 0
    assert quality_gap(weak, strong).inverted
    near = quality_gap(strong[:30], np.roll(strong, 1)[:30])  # two models of one quality
    assert near.within_noise and near.low < 0 < near.high


def test_bad_inputs_are_refused_clearly() -> None:
    with pytest.raises(EvalError, match="same mean quality"):
        curve([0.1, 0.2], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="3 scores for 4 prompts"):
        curve([0.1, 0.2, 0.3], STRONG, WEAK)
    with pytest.raises(ValueError, match="finite"):
        curve([0.1, np.nan, 0.3, 0.4], STRONG, WEAK)
    with pytest.raises(EvalError, match="no prompts"):
        curve([], [], [])
