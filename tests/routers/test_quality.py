"""The quality kind on real per-model scores (LLMRouter, 9 models, held-out prompts): it
predicts each model's score better than the model's average, keeps the binary contract,
round-trips through an artifact and routes with numpy only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from prefroute.data.augment import battles_from_scores
from prefroute.data.schema import Scores
from prefroute.errors import InvalidParameterError, UnknownModelError
from prefroute.routers.base import Router
from prefroute.routers.quality import QualityRouter, _score_rows
from prefroute.routers.registry import router_class

STRONG, WEAK = "llama-3.1-nemotron-51b-instruct", "mistral-7b-instruct-v0.3"


def _wide(scores: Scores, models: list[str]) -> tuple[list[str], np.ndarray]:
    """Prompts and their (prompts x models) scores."""
    wide = (
        scores.frame.pivot(on="model", index=["prompt_id", "prompt"], values="score")
        .drop_nulls(models)
        .sort("prompt_id")
    )
    return wide["prompt"].to_list(), wide.select(models).to_numpy()


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def test_predicts_held_out_scores_better_than_each_models_average(
    quality_router: QualityRouter, n_model_scores
) -> None:
    train, held = n_model_scores
    models = quality_router.models_
    prompts, truth = _wide(held, models)
    _, seen = _wide(train, models)
    predicted = quality_router.model_quality(prompts)
    constant = np.broadcast_to(seen.mean(axis=0), truth.shape)
    assert _log_loss(predicted, truth) < _log_loss(constant, truth) - 0.01
    # per prompt, the model it rates best is right more often than the best model on average
    best_on_average = int(seen.mean(axis=0).argmax())
    picked = truth[np.arange(len(truth)), predicted.argmax(axis=1)].mean()
    assert picked >= truth[:, best_on_average].mean()


def test_columns_follow_the_models_asked_for(quality_router: QualityRouter, n_model_scores) -> None:
    prompts = _wide(n_model_scores[1], quality_router.models_)[0][:20]
    full = quality_router.model_quality(prompts)
    assert full.shape == (20, 9) and full.dtype == np.float64
    assert ((full > 0) & (full < 1)).all()
    asked = [STRONG, "gemma-2-9b-it", WEAK]
    part = quality_router.model_quality(prompts, asked)
    index = [quality_router.models_.index(m) for m in asked]
    np.testing.assert_allclose(part, full[:, index], rtol=1e-12)
    # an alias of a learned model is found by its canonical name
    alias = quality_router.model_quality(prompts, ["meta-llama/Llama-3.1-8B-Instruct"])
    np.testing.assert_allclose(
        alias[:, 0], full[:, quality_router.models_.index("llama-3.1-8b-instruct")]
    )
    with pytest.raises(UnknownModelError, match="gpt-5"):
        quality_router.model_quality(prompts, ["gpt-5"])
    with pytest.raises(InvalidParameterError, match="repeat"):
        quality_router.model_quality(prompts, [WEAK, WEAK])


def test_strong_win_rate_is_half_plus_half_the_quality_gap(
    quality_router: QualityRouter, n_model_scores
) -> None:
    prompts = _wide(n_model_scores[1], quality_router.models_)[0][:50]
    q = quality_router.model_quality(prompts, [STRONG, WEAK])
    scores = quality_router.strong_win_rate(prompts)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores, 0.5 + 0.5 * (q[:, 0] - q[:, 1]), atol=1e-6)
    one_by_one = np.concatenate([quality_router.strong_win_rate([p]) for p in prompts])
    np.testing.assert_array_equal(scores, one_by_one)
    other = quality_router.retarget("gemma-2-9b-it", "codegemma-7b")
    q2 = quality_router.model_quality(prompts, ["gemma-2-9b-it", "codegemma-7b"])
    np.testing.assert_allclose(
        other.strong_win_rate(prompts), 0.5 + 0.5 * (q2[:, 0] - q2[:, 1]), atol=1e-6
    )


def test_round_trip_routes_with_numpy_only(
    quality_router: QualityRouter, n_model_scores, tmp_path: Path
) -> None:
    path = quality_router.save(tmp_path / "quality")
    config = json.loads((path / "router.json").read_text())
    assert config["kind"] == "quality" and config["state"]["models"] == quality_router.models_
    prompts = _wide(n_model_scores[1], quality_router.models_)[0][:10]
    loaded = Router.load(path)
    np.testing.assert_array_equal(
        loaded.model_quality(prompts), quality_router.model_quality(prompts)
    )
    script = (
        "import sys, json; from prefroute.routers.base import Router; "
        f"r = Router.load({str(path)!r}); q = r.model_quality(json.loads(sys.stdin.read())); "
        "heavy = sorted(m for m in ('torch', 'sklearn', 'polars', 'transformers') "
        "if m in sys.modules); print(json.dumps({'q': q.tolist(), 'heavy': heavy}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(prompts), capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout)
    assert result["heavy"] == []
    np.testing.assert_allclose(result["q"], quality_router.model_quality(prompts), rtol=1e-12)


def test_same_data_same_weights_and_registered(n_model_scores) -> None:
    train = Scores(n_model_scores[0].frame.head(900))
    kwargs = {"strong_model": STRONG, "weak_model": WEAK, "verbose": False}
    a = QualityRouter(**kwargs).fit_scores(train)
    b = QualityRouter(**kwargs).fit_scores(train)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.bias_, b.bias_)
    assert router_class("quality") is QualityRouter
    assert sum(a.n_rows_.values()) == train.frame.select(["prompt", "model"]).n_unique()


def test_fits_battles_read_pointwise(n_model_scores) -> None:
    """From battles alone (the router contract) it still ranks the models as their
    held-out accuracy does."""
    train, held = n_model_scores
    battles = battles_from_scores(train)
    router = QualityRouter(strong_model=STRONG, weak_model=WEAK, verbose=False).fit(battles)
    models = router.models_
    prompts, truth = _wide(held, models)
    predicted = router.model_quality(prompts).mean(axis=0)
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    correlation = np.corrcoef(rank(predicted), rank(truth.mean(axis=0)))[0, 1]
    assert correlation > 0.8, f"rank correlation {correlation:.2f}"


def test_battles_made_from_correctness_give_back_its_fit(n_model_scores) -> None:
    """What ``prefroute train --scores`` hands the kind (the scores as golden battles)
    fits the same model as the scores themselves, for 0/1 correctness."""
    frame = n_model_scores[0].frame.head(1800).with_columns(score=(pl.col("score") >= 0.5) * 1.0)
    scores = Scores(frame)
    kwargs = {"strong_model": STRONG, "weak_model": WEAK, "verbose": False}
    direct = QualityRouter(**kwargs).fit_scores(scores)
    via_battles = QualityRouter(**kwargs).fit(battles_from_scores(scores))
    assert via_battles.n_rows_ == direct.n_rows_
    np.testing.assert_allclose(via_battles.bias_, direct.bias_, atol=2e-3)
    np.testing.assert_allclose(via_battles.weights_, direct.weights_, atol=2e-3)


def test_scores_outside_zero_one_are_scaled_per_data_set(n_model_scores) -> None:
    frame = n_model_scores[0].frame.head(20)
    grades = frame.with_columns(
        score=pl.col("score") * 9 + 1, dataset=pl.lit("judge-1-10")
    )  # a 1-10 scale
    rows = _score_rows(Scores(pl.concat([frame, grades])))
    assert rows["target"].min() >= 0 and rows["target"].max() <= 1
    golden, judged = rows.head(20)["target"], rows.tail(20)["target"]
    np.testing.assert_allclose(golden.to_numpy(), frame["score"].to_numpy())
    lo, hi = frame["score"].min(), frame["score"].max()
    np.testing.assert_allclose(judged.to_numpy(), (frame["score"].to_numpy() - lo) / (hi - lo))


def test_bad_parameters_are_refused_before_any_work(n_model_scores) -> None:
    with pytest.raises(InvalidParameterError, match="model_penalty"):
        QualityRouter(model_penalty=0.0, strong_model=STRONG, weak_model=WEAK).fit_scores(
            n_model_scores[0]
        )
    with pytest.raises(UnknownModelError, match="gpt-4o"):
        QualityRouter(strong_model="gpt-4o", weak_model=WEAK, verbose=False).fit_scores(
            n_model_scores[0]
        )
