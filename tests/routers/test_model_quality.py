"""Per-model quality of the pairwise kinds (MF, SW ranking) on real multi-model battles
(LLMRouter scores, 9 models, read as battles): one column per candidate, comparable
across models, and for two candidates exactly the binary router's win rate. Binary-only
kinds say they route between two models."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.data.augment import battles_from_scores
from prefroute.errors import BinaryOnlyError, PrefrouteError
from prefroute.routers.base import Router, win_rate_quality
from prefroute.routers.random import RandomRouter
from prefroute.routers.registry import KINDS, router_class
from prefroute.routers.sw_ranking import SWRankingRouter

STRONG, WEAK = "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"
CANDIDATES = [STRONG, "gemma-2-9b-it", "llama3-chatqa-1.5-8b", WEAK]


@pytest.fixture(scope="module")
def battles(n_model_scores):
    return battles_from_scores(n_model_scores[0])


@pytest.fixture(scope="module")
def held_prompts(n_model_scores) -> list[str]:
    return n_model_scores[1].frame["prompt"].unique(maintain_order=True).to_list()[:60]


@pytest.fixture(scope="module")
def mf(battles):
    pytest.importorskip("torch")
    from prefroute.routers.mf import MFRouter

    fast = {"dim": 16, "epochs": 20, "lr": 1e-2, "batch_size": 512, "weight_decay": 1e-2}
    return MFRouter(strong_model=STRONG, weak_model=WEAK, verbose=False, **fast).fit(battles)


@pytest.fixture(scope="module")
def sw(battles):
    return SWRankingRouter(strong_model=STRONG, weak_model=WEAK, k=64).fit(battles)


@pytest.mark.parametrize("kind", ["mf", "sw"])
def test_two_candidates_give_the_binary_win_rate(kind, request, held_prompts) -> None:
    router: Router = request.getfixturevalue(kind)
    for strong, weak in ((STRONG, WEAK), ("gemma-2-9b-it", "codegemma-7b")):
        q = router.model_quality(held_prompts, [strong, weak])
        expected = router.retarget(strong, weak).strong_win_rate(held_prompts)
        np.testing.assert_allclose(0.5 + 0.5 * (q[:, 0] - q[:, 1]), expected, atol=2e-6)


@pytest.mark.parametrize("kind", ["mf", "sw"])
def test_columns_are_win_rates_against_the_other_candidates(kind, request, held_prompts) -> None:
    router: Router = request.getfixturevalue(kind)
    q = router.model_quality(held_prompts, CANDIDATES)
    assert q.shape == (len(held_prompts), len(CANDIDATES))
    assert ((q >= 0) & (q <= 1)).all()
    # each pair's win chances add up to one, so the columns add up to N / 2
    np.testing.assert_allclose(q.sum(axis=1), len(CANDIDATES) / 2, atol=1e-9)
    full = router.model_quality(held_prompts)
    assert full.shape == (len(held_prompts), len(router.models_))


def test_mf_ranks_models_as_their_held_out_scores_do(mf, n_model_scores) -> None:
    held = n_model_scores[1].frame
    prompts = held["prompt"].unique(maintain_order=True).to_list()
    predicted = mf.model_quality(prompts).mean(axis=0)
    truth = [held.filter(held["model"] == m)["score"].mean() for m in mf.models_]
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    assert np.corrcoef(rank(predicted), rank(np.array(truth)))[0, 1] > 0.7


def test_win_rate_quality_of_known_strengths() -> None:
    strengths = np.array([[0.0, np.log(3.0)], [2.0, 2.0]])
    np.testing.assert_allclose(win_rate_quality(strengths), [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_array_equal(win_rate_quality(np.zeros((3, 1))), np.full((3, 1), 0.5))


def test_binary_only_kinds_say_they_route_between_two_models(battles) -> None:
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(battles)
    with pytest.raises(BinaryOnlyError, match="routes between two models") as info:
        router.model_quality(["hi"])
    assert isinstance(info.value, PrefrouteError) and isinstance(info.value, TypeError)
    assert STRONG in str(info.value) and "quality" in str(info.value)
    with pytest.raises(BinaryOnlyError):
        router.candidate_index(None)
    per_model = {kind for kind in KINDS if router_class(kind).per_model_quality}
    assert per_model == {"mf", "sw_ranking", "quality"}
    for kind in KINDS.keys() - per_model:
        assert router_class(kind).model_quality is Router.model_quality
