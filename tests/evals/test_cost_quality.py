"""Cost-quality metrics: the non-decreasing convex hull, AIQ, costs to reach a quality,
and the policy and oracle curves on real scores and prices."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.errors import EvalError
from prefroute.evals.cost_quality import hull, oracle_curve, policy_curve, single_points


def test_hull_keeps_the_upper_non_decreasing_frontier() -> None:
    cost = np.array([1.0, 2.0, 3.0, 4.0, 2.0, 5.0, 1.0])
    quality = np.array([0.2, 0.3, 0.7, 0.8, 0.6, 0.75, 0.1])
    h = hull(cost, quality)
    # (2, .3) is below (2, .6) at the same cost, (3, .7) on the chord from (2, .6) to
    # (4, .8); (5, .75) and (1, .1) are dominated
    assert h.cost.tolist() == [1.0, 2.0, 4.0]
    assert h.quality.tolist() == [0.2, 0.6, 0.8]
    assert (np.diff(h.quality) > 0).all()
    slopes = np.diff(h.quality) / np.diff(h.cost)
    assert (np.diff(slopes) < 0).all(), "a convex hull's slopes fall"


def test_aiq_is_the_mean_quality_over_the_cost_range() -> None:
    h = hull(np.array([1.0, 3.0]), np.array([0.2, 0.6]))
    assert h.aiq(1.0, 3.0) == pytest.approx(0.4)
    # flat beyond the dearest point, flat at the cheapest below it
    assert h.aiq(1.0, 5.0) == pytest.approx((0.4 * 2 + 0.6 * 2) / 4)
    assert h.aiq(0.0, 1.0) == pytest.approx(0.2)
    with pytest.raises(EvalError, match="cost range"):
        h.aiq(2.0, 2.0)


def test_cost_to_reach_interpolates_or_says_never() -> None:
    h = hull(np.array([1.0, 3.0, 5.0]), np.array([0.2, 0.6, 0.7]))
    assert h.cost_to_reach(0.4) == pytest.approx(2.0)
    assert h.cost_to_reach(0.1) == pytest.approx(1.0)
    assert h.cost_to_reach(0.7) == pytest.approx(5.0)
    assert h.cost_to_reach(0.71) is None
    assert float(h.at(4.0)) == pytest.approx(0.65)


def test_oracle_beats_the_singles_hull_everywhere_on_real_scores(n_model_scores) -> None:
    """LLMRouter held-out scores, the shipped price table's four priced models."""
    from prefroute.policy import CallCosts
    from prefroute.prices import price_table

    models = [
        "gemma-2-9b-it",
        "llama-3.1-8b-instruct",
        "mistral-7b-instruct-v0.3",
        "qwen2.5-7b-instruct",
    ]
    wide = n_model_scores[1].frame.pivot(on="model", index=["prompt_id", "prompt"], values="score")
    prompts, truth = wide["prompt"].to_list(), wide.select(models).to_numpy()
    costs = CallCosts.from_prices(models, price_table()).per_call(prompts)
    single_cost, single_quality = single_points(costs, truth)
    singles = hull(single_cost, single_quality)
    oracle = oracle_curve(costs, truth)
    grid = np.linspace(single_cost.min(), single_cost.max(), 50)
    assert (oracle.hull.at(grid) >= singles.at(grid) - 1e-12).all()
    low, high = single_cost.min(), single_cost.max()
    assert oracle.hull.aiq(low, high) > singles.aiq(low, high) + 0.1
    # the λ = 0 end of the oracle takes a best model of every prompt
    assert oracle.quality[0] == pytest.approx(truth.max(axis=1).mean())
    # the far end takes the cheapest model of every prompt
    assert oracle.cost[-1] == pytest.approx(costs.min(axis=1).mean())
    np.testing.assert_allclose(oracle.shares.sum(axis=1), 1.0)
    # a router that knows nothing (the same quality for every model) is the cheapest model
    flat = policy_curve(np.zeros_like(truth), costs, truth)
    assert len(flat.cost) == 1 and flat.cost[0] == pytest.approx(costs.min(axis=1).mean())
