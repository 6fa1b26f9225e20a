"""SW ranking on a known truth built from real prompts: math where S wins, writing where W wins.

Math prompts are GSM8K-train questions (routerdc-7model), writing prompts are
AlpacaEval creative instructions; a third model M plays both at even odds so
the Bradley-Terry fit has more than the one pair. Held-out prompts of each
kind must land on their side of 0.5.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from battle_rows import battles_from_rows
from scipy.special import expit
from threadpoolctl import threadpool_info, threadpool_limits

from prefroute.data.schema import Battles
from prefroute.data.tiers import BradleyTerry
from prefroute.errors import NotFittedError
from prefroute.routers.base import Router
from prefroute.routers.sw_ranking import SMALL_BATCH, SWRankingRouter, one_blas_thread

S, W, M = "strong-model", "weak-model", "middle-model"
N_HELD_OUT = 20
WRITING = (
    r"(?i)(^\s*(write|compose|create|draft|brainstorm|generate|come up with|invent|imagine)\b"
    r"|\b(poem|story|song|lyrics|haiku|limerick|fiction|slogan|rap|rhyme|novel|verse)\b)"
)
NOT_WRITING = r"(?i)(code|python|function|program|sql|javascript|\d)"


@pytest.fixture(scope="module")
def prompts(data_dir: Path) -> dict[str, list[str]]:
    """As many GSM8K-train math questions as AlpacaEval creative-writing instructions (77)."""
    writing = (
        pl.read_ndjson(data_dir / "alpaca-eval" / "instructions.jsonl.gz")
        .filter(
            pl.col("instruction").str.contains(WRITING)
            & ~pl.col("instruction").str.contains(NOT_WRITING)
        )["instruction"]
        .to_list()
    )
    math = (
        pl.read_ndjson(
            data_dir / "routerdc-7model" / "golden.jsonl.gz",
            schema={"prompt": pl.String, "task": pl.String},
        )
        .filter(pl.col("task") == "gsm8k-train")
        .unique("prompt", maintain_order=True)["prompt"]
        .head(len(writing))
        .to_list()
    )
    assert len(math) == len(writing) >= 60
    return {"math": math, "writing": writing}


def known_truth(prompts: dict[str, list[str]], seed: int = 0) -> Battles:
    """S beats W on 90% of math battles, W beats S on 90% of writing ones; M is even."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, texts in prompts.items():
        for prompt in texts[N_HELD_OUT:]:
            for _ in range(3):
                s_wins = rng.random() < (0.9 if kind == "math" else 0.1)
                rows.append((prompt, S, W, "model_a" if s_wins else "model_b"))
            for other in (S, W):
                rows.append((prompt, M, other, "model_a" if rng.random() < 0.5 else "model_b"))
    return battles_from_rows(rows, dataset="test")


def held_out(prompts: dict[str, list[str]]) -> tuple[list[str], np.ndarray]:
    texts = prompts["math"][:N_HELD_OUT] + prompts["writing"][:N_HELD_OUT]
    return texts, np.repeat([1, 0], N_HELD_OUT)


@pytest.fixture(scope="module")
def battles(prompts: dict[str, list[str]]) -> Battles:
    return known_truth(prompts)


@pytest.fixture(scope="module")
def router(battles: Battles) -> SWRankingRouter:
    # A small k for a small training set: ~57 prompts of each kind, and the static
    # embedder finds GSM8K word problems close to story prompts (both narrative).
    return SWRankingRouter(k=32, strong_model=S, weak_model=W).fit(battles)


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def test_held_out_prompts_land_on_the_right_side(
    router: SWRankingRouter, prompts: dict[str, list[str]]
) -> None:
    texts, is_math = held_out(prompts)
    scores = router.strong_win_rate(texts)
    assert auc(is_math, scores) > 0.95
    assert scores[is_math == 1].mean() > 0.6 and scores[is_math == 0].mean() < 0.4
    assert (scores[is_math == 1] > 0.5).mean() >= 0.85
    assert (scores[is_math == 0] < 0.5).mean() >= 0.85
    routed = router.route(texts, 0.5)
    assert routed[0] == S and routed[-1] == W


def test_unfamiliar_prompts_fall_back_to_the_global_ratings(
    router: SWRankingRouter, battles: Battles, prompts: dict[str, list[str]]
) -> None:
    bt = BradleyTerry(n_bootstrap=0).fit(battles)
    texts, _ = held_out(prompts)
    far = SWRankingRouter(**{**router.get_params(), "min_similarity": 0.99}).fit(battles)
    assert (far.embed(texts) @ far._vectors.T).max() < 0.99  # no neighbour close enough
    global_p = bt.predict_proba(S, W)
    np.testing.assert_allclose(far.strong_win_rate(texts), global_p, rtol=1e-6)
    # An empty prompt embeds to the zero vector: similar to nothing at the default cut.
    np.testing.assert_allclose(router.strong_win_rate([""]), global_p, rtol=1e-6)
    natural = np.log(10) / 400
    elo = dict(bt.ratings_.select("model", "rating").iter_rows())
    assert global_p == pytest.approx(expit((elo[S] - elo[W]) * natural))


def test_batch_equals_one_by_one_float32_in_unit_interval(
    router: SWRankingRouter, prompts: dict[str, list[str]]
) -> None:
    texts = prompts["math"][:30] + prompts["writing"][:30] + [""]
    batch = router.strong_win_rate(texts)
    single = np.concatenate([router.strong_win_rate([t]) for t in texts])
    assert batch.dtype == np.float32 and batch.shape == (len(texts),)
    assert ((batch >= 0) & (batch <= 1)).all()
    # BLAS sums a batch in another order than one row: equal to float32 rounding.
    np.testing.assert_allclose(batch, single, rtol=0, atol=1e-5)
    assert router.strong_win_rate([]).shape == (0,)


def test_save_load_round_trip_is_identical(
    router: SWRankingRouter, prompts: dict[str, list[str]], tmp_path: Path
) -> None:
    texts, _ = held_out(prompts)
    path = router.save(tmp_path / "art")
    loaded = Router.load(path)
    assert isinstance(loaded, SWRankingRouter)
    assert loaded.get_params() == router.get_params()
    assert loaded.models_ == router.models_
    assert loaded.prompt_embeddings_.dtype == np.float16  # half the size of float32
    np.testing.assert_array_equal(loaded.strong_win_rate(texts), router.strong_win_rate(texts))


def test_loading_and_routing_need_no_torch(
    router: SWRankingRouter, prompts: dict[str, list[str]], tmp_path: Path
) -> None:
    texts, _ = held_out(prompts)
    path = router.save(tmp_path / "art")
    code = (
        "import json, sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises
        "from prefroute.routers.base import Router\n"
        f"r = Router.load({str(path)!r})\n"
        f"texts = json.loads({json.dumps(json.dumps(texts))})\n"
        "print(json.dumps([float(s) for s in r.strong_win_rate(texts)]))\n"
        "print(r.route(texts[:1], 0.5)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    scores, first = out.stdout.strip().splitlines()
    np.testing.assert_array_equal(
        np.array(json.loads(scores), dtype=np.float32), router.strong_win_rate(texts)
    )
    assert first == S


def test_retarget_without_refit(
    router: SWRankingRouter, prompts: dict[str, list[str]], tmp_path: Path
) -> None:
    texts, is_math = held_out(prompts)
    scores = router.strong_win_rate(texts)
    swapped = router.retarget(W, S)
    assert (swapped.strong_model, swapped.weak_model) == (W, S)
    assert (router.strong_model, router.weak_model) == (S, W)  # the original is unchanged
    np.testing.assert_allclose(swapped.strong_win_rate(texts), 1.0 - scores, atol=1e-5)
    # M against W: M is even with both, so W's writing strength shows up as M losing there.
    vs_middle = router.retarget(M, W).strong_win_rate(texts)
    assert vs_middle[is_math == 1].mean() > vs_middle[is_math == 0].mean()
    loaded = Router.load(swapped.save(tmp_path / "swapped"))
    assert (loaded.strong_model, loaded.weak_model) == (W, S)
    np.testing.assert_allclose(loaded.strong_win_rate(texts), 1.0 - scores, atol=1e-5)


def test_unknown_models_are_refused_with_the_closest_names(
    router: SWRankingRouter, battles: Battles
) -> None:
    with pytest.raises(ValueError, match=r"unknown strong model 'strong-modle'.*strong-model"):
        router.retarget("strong-modle", W)
    with pytest.raises(ValueError, match="unknown weak model 'gpt-4o'"):
        router.retarget(S, "gpt-4o")
    with pytest.raises(ValueError, match="both 'strong-model'"):
        router.retarget(S, S)
    with pytest.raises(ValueError, match="unknown weak model 'nope'"):
        SWRankingRouter(strong_model=S, weak_model="nope").fit(battles)
    renamed = router.retarget(S, W)
    renamed.weak_model = "nope"  # set by hand: caught when scoring
    with pytest.raises(ValueError, match="unknown weak model 'nope'"):
        renamed.strong_win_rate(["x"])


def test_unfitted_and_bad_parameters_are_refused(battles: Battles) -> None:
    with pytest.raises(NotFittedError, match="fit"):
        SWRankingRouter().strong_win_rate(["x"])
    with pytest.raises(ValueError, match="^SWRankingRouter: parameter 'k' must be an int >= 1"):
        SWRankingRouter(k=0, strong_model=S, weak_model=W).fit(battles)
    with pytest.raises(ValueError, match=r"'min_similarity' must be a number in \[-1, 1\]"):
        SWRankingRouter(min_similarity=2.0, strong_model=S, weak_model=W).fit(battles)


def test_parameters_changed_after_fit_are_checked_when_scoring(router: SWRankingRouter) -> None:
    changed = copy.copy(router)
    changed.gamma = 0.5  # read when scoring, so it may be set after fit: checked there
    with pytest.raises(ValueError, match="parameter 'gamma' must be a number >= 1, got 0.5"):
        changed.strong_win_rate(["x"])


def test_small_batches_score_on_one_blas_thread_and_restore_it(
    router: SWRankingRouter, prompts: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One query keeps BLAS to one thread (both cores busy for a 3 ms query otherwise);
    the process's own setting is back afterwards, and the scores are the same."""
    seen: list[list[int]] = []
    score = SWRankingRouter._score

    def spy(self: SWRankingRouter, queries: np.ndarray, design: object) -> np.ndarray:
        seen.append(blas_threads())
        return score(self, queries, design)  # type: ignore[arg-type]

    monkeypatch.setattr(SWRankingRouter, "_score", spy)
    texts = held_out(prompts)[0][:SMALL_BATCH]
    with threadpool_limits(limits=2, user_api="blas"):  # as on a 2-core machine
        before = blas_threads()
        limited = np.concatenate([router.strong_win_rate([t]) for t in texts])
        assert seen and all(threads == [1] * len(before) for threads in seen)
        assert blas_threads() == before
        seen.clear()
        batch = router.strong_win_rate(texts)  # SMALL_BATCH queries: the default threads
        assert seen == [before]
    np.testing.assert_allclose(limited, batch, rtol=0, atol=1e-5)


def test_concurrent_limits_restore_the_original_once() -> None:
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with one_blas_thread():
            with one_blas_thread():  # a second thread scoring meanwhile
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {1}  # the first block is still running
        assert blas_threads() == before


def blas_threads() -> list[int]:
    """The thread count of every BLAS library loaded in this process."""
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_deterministic_whatever_the_row_order(
    router: SWRankingRouter, battles: Battles, prompts: dict[str, list[str]]
) -> None:
    texts, _ = held_out(prompts)
    shuffled = Battles(battles.frame.sample(fraction=1.0, shuffle=True, seed=3))
    again = SWRankingRouter(**router.get_params()).fit(shuffled)
    for name, array in router._arrays().items():
        np.testing.assert_array_equal(again._arrays()[name], array, err_msg=name)
    assert again._state() == router._state()
    np.testing.assert_array_equal(again.strong_win_rate(texts), router.strong_win_rate(texts))
