"""Scoring routers on eval sets: once per distinct prompt, matched to the set's pair."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from prefroute.data.schema import Battles
from prefroute.errors import EvalError
from prefroute.evals.benchmarks import EvalSet
from prefroute.evals.evaluate import evaluate, evaluate_artifacts, for_pair, load_artifacts
from prefroute.evals.metrics import curve
from prefroute.routers.artifact import TrainingData
from prefroute.routers.random import RandomRouter


class CountingRouter(RandomRouter):
    """A random router that records every batch it is asked to score."""

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        self.batches_ = [*getattr(self, "batches_", []), list(prompts)]
        return super().strong_win_rate(prompts)


def small_set(prompts: Sequence[str] = ("a", "b", "a", "c")) -> EvalSet:
    n = len(prompts)
    return EvalSet(
        name="small",
        prompt_ids=tuple(f"q{i}" for i in range(n)),
        prompts=tuple(prompts),
        strong_quality=np.arange(n, dtype=float) % 2,
        weak_quality=np.zeros(n),
        strong_model="big",
        weak_model="small",
    )


def test_each_distinct_prompt_is_scored_once_and_mapped_back() -> None:
    router = CountingRouter(strong_model="big", weak_model="small").fit(Battles.empty())
    s = small_set()
    results = evaluate({"counting": router}, [s])
    assert sorted(p for batch in router.batches_ for p in batch) == ["a", "b", "c"]
    (result,) = results.sets[0].routers
    expected = curve(router.strong_win_rate(s.prompts), s.strong_quality, s.weak_quality)
    np.testing.assert_array_equal(result.curve.share, expected.share)
    assert result.curve.apgr == expected.apgr
    assert (result.label, result.kind, result.note) == ("counting", "random", None)
    assert results.sets[0].random.apgr == 0.5


def test_a_router_for_another_pair_is_retargeted_or_used_as_is_with_a_note() -> None:
    router = RandomRouter().fit(Battles.empty())  # built for the paper's pair
    retargeted, note = for_pair(router, "big", "small")
    assert (retargeted.strong_model, retargeted.weak_model) == ("big", "small")
    assert note == "retargeted from gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1"
    router.models_ = ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"]  # as MF learns
    same, note = for_pair(router, "big", "small")
    assert same is router
    assert note is not None and note.startswith("scores for its own pair")
    assert "unknown strong model 'big'" in note


def test_to_dict_is_json_with_every_metric(tmp_path: Path) -> None:
    router = RandomRouter(strong_model="big", weak_model="small").fit(Battles.empty())
    results = evaluate({"random-router": router}, [small_set()])
    report = json.loads(json.dumps(results.to_dict()))
    assert report["prices_per_1m_tokens"] == {"strong": 24.7, "weak": 0.24}
    (s,) = report["sets"]
    assert (s["name"], s["n_prompts"], s["strong_quality"]) == ("small", 4, 0.5)
    (r,) = s["routers"]
    assert r["router"] == "random-router" and set(r["cpt"]) == {"20", "50", "80"}
    assert s["random"]["cpt"]["50"] == pytest.approx(0.5)
    assert s["random"]["cost_saving"]["50"]["vs_random"] == pytest.approx(1.0)
    assert len(r["curve"]["share"]) == len(r["curve"]["quality"]) == 101


def _artifact(path: Path, seed: int, trained: Sequence[str] = ()) -> Path:
    router = RandomRouter(random_state=seed).fit(Battles.empty())
    router.training_data_ = TrainingData(gold_slice_ids=tuple(trained))
    return router.save(path)


def test_artifacts_are_labelled_and_their_trained_ids_pooled(tmp_path: Path) -> None:
    a = _artifact(tmp_path / "one" / "rnd", 1, ["mmlu/x/1", "mmlu/x/2"])
    b = _artifact(tmp_path / "two" / "rnd", 2, ["mmlu/x/2", "mmlu/x/3"])
    c = _artifact(tmp_path / "other", 3)
    routers, trained = load_artifacts([a])
    assert list(routers) == ["random"]  # the kind, when unique
    routers, trained = load_artifacts([a, b, c])
    assert list(routers) == ["one/rnd", "two/rnd", "other"]
    assert trained == {"mmlu/x/1", "mmlu/x/2", "mmlu/x/3"}
    with pytest.raises(EvalError, match="twice"):
        load_artifacts([a, a])


def test_evaluate_artifacts_leaves_out_what_any_router_trained_on(
    tmp_path: Path, data_dir: Path
) -> None:
    from prefroute.evals.benchmarks import benchmark

    ids = benchmark("mmlu", data_dir).prompt_ids
    a = _artifact(tmp_path / "a", 1, ids[:10])
    b = _artifact(tmp_path / "b", 2, ids[5:20])
    results = evaluate_artifacts([a, b], benchmarks=["mmlu"], data_dir=data_dir)
    (s,) = results.sets
    assert dict(s.eval_set.dropped) == {"contaminated": 5, "trained on": 20}
    assert [r.label for r in s.routers] == ["a", "b"]
    for r in s.routers:  # a random router on 14k questions is close to the random line
        assert r.curve.apgr == pytest.approx(0.5, abs=0.03)
    with pytest.raises(EvalError, match="nothing to evaluate on"):
        evaluate_artifacts([a], benchmarks=[], data_dir=data_dir)
