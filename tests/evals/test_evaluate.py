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
from prefroute.prices import price_table
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


def test_a_router_for_another_pair_is_retargeted_or_says_its_scores_are_unchanged() -> None:
    router = RandomRouter().fit(Battles.empty())  # built for the paper's pair
    same, note = for_pair(router, "big", "small")  # random learned no per-model parameters
    assert same is router
    assert note is not None and note.startswith(
        "scores unchanged, for its own pair gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1: "
        "a random router cannot retarget"
    )
    router.models_ = ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "big", "small"]
    retargeted, note = for_pair(router, "big", "small")  # as MF, which learns every model
    assert (retargeted.strong_model, retargeted.weak_model) == ("big", "small")
    assert note == "retargeted from gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1"
    router.models_ = ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"]
    same, note = for_pair(router, "big", "small")
    assert same is router
    assert note is not None and note.startswith("scores unchanged")
    assert "unknown strong model 'big'" in note


def test_to_dict_is_json_with_every_metric_its_interval_and_the_random_band() -> None:
    router = RandomRouter(strong_model="big", weak_model="small").fit(Battles.empty())
    results = evaluate({"random-router": router}, [small_set()])
    report = json.loads(json.dumps(results.to_dict()))
    (s,) = report["sets"]
    assert (s["name"], s["n_prompts"], s["strong_quality"]) == ("small", 4, 0.5)
    assert s["prices"] is None and "no price for model 'big'" in s["missing_price"]
    (r,) = s["routers"]
    assert r["router"] == "random-router" and set(r["cpt"]) == {"20", "50", "80"}
    assert r["cost_saving"]["50"] == {"vs_all_strong": None, "vs_random": None}  # unpriced
    interval = r["apgr_interval"]
    assert interval["low"] <= r["apgr"] <= interval["high"]
    assert interval["quantiles"] == [0.025, 0.975]
    band = s["random"]["apgr_band"]
    assert band["low"] <= 0.5 <= band["high"] and band["quantiles"] == [0.05, 0.95]
    assert s["random"]["cpt"]["50"] == pytest.approx(0.5)
    assert len(r["curve"]["share"]) == len(r["curve"]["quality"]) == 101
    # four prompts, two where strong helps: a gap within noise, said in the report
    assert s["gap"]["within_noise"] and "within noise" in s["warnings"][0]


def test_savings_use_the_pairs_list_prices_and_say_which(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('["big"]\ninput = 3.0\noutput = 15.0\ndate = "2025-01-01"\n'
                      '["small"]\ninput = 0.25\noutput = 1.25\n')  # fmt: skip
    router = RandomRouter(strong_model="big", weak_model="small").fit(Battles.empty())
    (s,) = evaluate({"r": router}, [small_set()], prices=price_table([prices])).sets
    assert s.prices is not None and s.missing_price is None
    strong_call = (95 * 3.0 + 264 * 15.0) / 1e6  # the paper's token mix, stated
    weak_call = (95 * 0.25 + 264 * 1.25) / 1e6
    assert s.prices.costs.strong == pytest.approx(strong_call)
    assert s.saving(0.5) == pytest.approx(strong_call / (0.5 * strong_call + 0.5 * weak_call))
    lines = s.prices.lines("big", "small")
    assert lines[0] == f"big $3 in / $15 out per 1M tokens (2025-01-01, {prices})"
    assert lines[1] == f"small $0.25 in / $1.25 out per 1M tokens (undated, {prices})"
    assert lines[2].startswith("at 95 input + 264 output tokens a call (the RouteLLM paper's")


def test_an_inverted_pair_is_warned_about() -> None:
    s = small_set()
    flipped = EvalSet(
        "flipped", s.prompt_ids * 20, s.prompts * 20, np.tile(s.weak_quality, 20),
        np.tile(s.strong_quality, 20), "big", "small",
    )  # fmt: skip
    router = RandomRouter(strong_model="big", weak_model="small").fit(Battles.empty())
    (result,) = evaluate({"r": router}, [flipped]).sets
    (warning,) = result.warnings
    assert warning.startswith("big is not better than small on flipped (0.000 vs 0.500)")
    assert f"the oracle's APGR is {result.oracle.apgr:.3f}" in warning


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
