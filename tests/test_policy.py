"""The λ policy among N models: exact frontiers, calibration to a budget, a quality target
or shares, two-model routing as its N = 2 case, and operating points stored in the artifact.

Real qualities come from the quality kind fitted on LLMRouter scores (9 models) with the
shipped price table; the frontier's exactness is checked against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prefroute.calibrate import calibrate_models, operating_point, threshold_for_share
from prefroute.errors import InvalidParameterError, UnknownPriceError
from prefroute.policy import (
    CallCosts,
    Frontier,
    Policy,
    budget_per_call,
    choose,
    lambda_for_budget,
    lambda_for_quality,
    offsets_for_shares,
    threshold_for_lambda,
)
from prefroute.prices import PriceTable, TokenMix, price_table
from prefroute.routers.base import Router
from prefroute.tokens import message_tokens

STRONG, WEAK = "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"
PRICED = [
    "gemma-2-9b-it",
    "llama-3.1-8b-instruct",
    "mistral-7b-instruct-v0.3",
    "qwen2.5-7b-instruct",
]
"""The LLMRouter models the shipped price table has (all Together AI list prices)."""


@pytest.fixture(scope="module")
def held(n_model_scores) -> tuple[list[str], np.ndarray]:
    """Held-out prompts and their true scores for ``PRICED``."""
    wide = (
        n_model_scores[1]
        .frame.pivot(on="model", index=["prompt_id", "prompt"], values="score")
        .sort("prompt_id")
    )
    return wide["prompt"].to_list(), wide.select(PRICED).to_numpy()


@pytest.fixture(scope="module")
def costs() -> CallCosts:
    return CallCosts.from_prices(PRICED, price_table())


def test_call_costs_price_each_prompt_by_its_length(costs: CallCosts) -> None:
    table = price_table()
    prompts = ["Explain, step by step, why the sky is blue. " * 20, "short"]
    per_call = costs.per_call(prompts)
    for j, model in enumerate(PRICED):
        price = table.price(model)
        for i, prompt in enumerate(prompts):
            tokens = message_tokens([{"role": "user", "content": prompt}])
            assert per_call[i, j] == pytest.approx(price.cost(tokens, 264))
    assert (per_call[0] > per_call[1]).all()
    mix = CallCosts.from_prices(PRICED, table, mix=TokenMix(95, 264))
    assert (mix.per_call(prompts)[0] == mix.per_call(prompts)[1]).all()
    assert mix.subset(PRICED[::-1]).models == tuple(PRICED[::-1])
    with pytest.raises(UnknownPriceError, match="codegemma-7b"):
        CallCosts.from_prices(["codegemma-7b"], PriceTable({}))
    tokens = np.array([100.0, 300.0])
    assert budget_per_call(2.0, "1m-tokens", tokens) == pytest.approx(2.0 * 200 / 1e6)
    assert budget_per_call(2.0, "1k-requests", tokens) == pytest.approx(0.002)
    with pytest.raises(InvalidParameterError, match="unit"):
        budget_per_call(2.0, "per-day", tokens)


def test_choose_takes_the_best_at_zero_and_the_cheapest_at_a_high_price() -> None:
    quality = np.array([[0.9, 0.9, 0.2], [0.1, 0.5, 0.4]])
    cost = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    assert choose(quality, cost, 0.0).tolist() == [1, 1]  # tie at 0.9 goes to the cheaper
    assert choose(quality, cost, 100.0).tolist() == [2, 2]
    assert choose(quality, cost, 0.0, offsets=[0.0, 0.0, 0.75]).tolist() == [2, 2]


def test_frontier_is_exact_against_brute_force() -> None:
    rng = np.random.default_rng(0)
    quality = rng.random((300, 6))
    cost = rng.random((300, 6)) + 0.01
    truth = rng.random((300, 6))
    frontier = Frontier.of(quality, cost)
    lams, mean_cost = frontier.sweep(cost)
    _, mean_truth = frontier.sweep(truth)
    shares = frontier.share_sweep(6)
    assert (np.diff(mean_cost) <= 1e-12).all(), "mean cost must fall as λ grows"
    # probe the middle of every interval, and beyond the last breakpoint
    probes = np.append((lams[:-1] + lams[1:]) / 2, 2 * lams[-1] + 1)
    for k, lam in enumerate(probes):
        chosen = choose(quality, cost, lam)
        assert mean_cost[k] == pytest.approx(cost[np.arange(300), chosen].mean(), abs=1e-12)
        assert mean_truth[k] == pytest.approx(truth[np.arange(300), chosen].mean(), abs=1e-12)
        np.testing.assert_allclose(shares[k], np.bincount(chosen, minlength=6) / 300)
        np.testing.assert_array_equal(frontier.choices_at(lam), chosen)
    assert (choose(quality, cost, probes[-1]) == cost.argmin(axis=1)).all()


def test_budget_buys_the_best_mix_that_fits(quality_router, held, costs: CallCosts) -> None:
    prompts, _ = held
    quality = quality_router.model_quality(prompts, PRICED)
    per_call = costs.per_call(prompts)
    frontier = Frontier.of(quality, per_call)
    lams, mean_cost = frontier.sweep(per_call)
    budget = float(np.quantile(mean_cost, 0.5))
    lam = lambda_for_budget(frontier, per_call, budget)
    spent = per_call[np.arange(len(prompts)), choose(quality, per_call, lam)].mean()
    assert spent <= budget
    # the interval before it is over the budget: no smaller λ fits
    k = int(np.searchsorted(lams, lam, side="right")) - 1
    assert k > 0 and mean_cost[k - 1] > budget
    assert lambda_for_budget(frontier, per_call, 10 * mean_cost[0]) == 0.0
    with pytest.raises(InvalidParameterError, match="cheapest"):
        lambda_for_budget(frontier, per_call, 0.5 * mean_cost[-1])


def test_quality_target_is_the_cheapest_mix_that_keeps_it(
    quality_router, held, costs: CallCosts
) -> None:
    prompts, truth = held
    quality = quality_router.model_quality(prompts, PRICED)
    per_call = costs.per_call(prompts)
    frontier = Frontier.of(quality, per_call)
    target = 0.97 * truth.mean(axis=0).max()
    lam = lambda_for_quality(frontier, per_call, truth, target)
    chosen = choose(quality, per_call, lam)
    got = truth[np.arange(len(prompts)), chosen].mean()
    spent = per_call[np.arange(len(prompts)), chosen].mean()
    assert got >= target
    _, mean_cost = frontier.sweep(per_call)
    _, mean_truth = frontier.sweep(truth)
    assert not ((mean_truth >= target) & (mean_cost < spent - 1e-15)).any()
    with pytest.raises(InvalidParameterError, match="lower the target"):
        lambda_for_quality(frontier, per_call, truth, 1.5)


def test_offsets_meet_a_share_per_model(quality_router, held) -> None:
    prompts, _ = held
    quality = quality_router.model_quality(prompts, PRICED)
    wanted = np.array([0.1, 0.2, 0.3, 0.4])
    offsets = offsets_for_shares(quality, wanted)
    got = np.bincount((quality + offsets).argmax(axis=1), minlength=4) / len(prompts)
    assert np.abs(got - wanted).max() <= 1.5 / len(prompts)
    with pytest.raises(InvalidParameterError, match="add up to 1"):
        offsets_for_shares(quality, [0.5, 0.5, 0.5, 0.5])


def test_two_models_are_threshold_routing(quality_router, held) -> None:
    """The N = 2 policy with per-call costs c_s > c_w at λ chooses exactly as the
    threshold t = 1/2 + λ (c_s - c_w) / 2 on ``strong_win_rate``; the share-calibrated
    N = 2 policy makes the choices of ``@share%`` routing."""
    prompts, _ = held
    # LLMRouter's own list prices for the two (ulab-uiuc/LLMRouter default_llm.json)
    pair = CallCosts((STRONG, WEAK), (0.9, 0.2), (0.9, 0.2), output_tokens=264, input_tokens=95)
    c_s, c_w = pair.per_call(prompts[:1])[0]
    scores = quality_router.strong_win_rate(prompts).astype(np.float64)
    quality = quality_router.model_quality(prompts, [STRONG, WEAK])
    distinct = np.unique(scores)
    for share in (0.2, 0.5, 0.8):
        t = threshold_for_share(scores, share)
        below = distinct[distinct < t].max()
        t = (t + below) / 2  # the same choices, away from any score
        lam = 2 * (t - 0.5) / (c_s - c_w)
        assert threshold_for_lambda(lam, c_s, c_w) == pytest.approx(t)
        policy = Policy(costs=pair, lam=lam).decide(quality, prompts)
        threshold = quality_router.route(prompts, t)
        assert policy.names == threshold
        offsets = offsets_for_shares(quality, [share, 1 - share])
        by_share = Policy(costs=pair, offsets=tuple(offsets)).decide(quality, prompts)
        assert by_share.names == threshold


def test_operating_points_are_stored_and_route_the_same(
    quality_router, held, n_model_scores, tmp_path: Path
) -> None:
    prompts, _ = held
    path = quality_router.save(tmp_path / "q")
    prompt_file = tmp_path / "prompts.jsonl"
    prompt_file.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    _, point = calibrate_models(path, models=PRICED, budget=0.22, prompts=prompt_file, name="tight")
    assert point.cost_per_1m_tokens <= 0.22 and point.models == tuple(PRICED)
    assert sum(point.shares.values()) == pytest.approx(1.0)
    _, shares = calibrate_models(
        path, models=PRICED[:2], shares={PRICED[0]: 0.25, PRICED[1]: 0.75}, prompts=prompt_file
    )
    loaded = Router.load(path)
    assert [p.name for p in loaded.operating_points_] == ["shares", "tight"]
    assert loaded.operating_point("tight") == point
    decision = Policy.from_operating_point(loaded.operating_point("tight")).route(loaded, prompts)
    assert decision.shares() == pytest.approx(dict(point.shares))
    assert decision.mean_cost() * 1000 == pytest.approx(point.cost_per_1k_requests)
    assert (decision.ranking[:, 0] == decision.chosen).all()
    assert shares.shares[PRICED[0]] == pytest.approx(0.25, abs=0.01)
    # a refit forgets operating points measured on the old scores
    refit = Router.load(path)
    refit.fit_scores(n_model_scores[0])
    assert not hasattr(refit, "operating_points_")
    direct = operating_point(
        quality_router.model_quality(prompts, PRICED), prompts,
        CallCosts.from_prices(PRICED, price_table()), budget=0.22, described="x",
    )  # fmt: skip
    assert direct.lam == pytest.approx(point.lam)
