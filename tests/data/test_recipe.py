"""The training recipe on all the shipped data: decontaminated, weighted, gold slice apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from prefroute.data import shipped
from prefroute.data.decontam import normalise_prompt
from prefroute.data.labels import LABELS, tier_labels
from prefroute.data.recipe import GOLD_SLICE_DATASET, GOLD_SLICE_WEIGHT, TrainingSet, training_set


@pytest.fixture(scope="module")
def recipe(data_dir: Path) -> TrainingSet:
    return training_set(data_dir, mmlu_gold_slice=300, source_weights={"judge": 0.5})


@pytest.fixture(scope="module")
def default_recipe(data_dir: Path) -> TrainingSet:
    return training_set(data_dir, mmlu_gold_slice=300)


def test_no_eval_prompt_left_except_the_gold_slice(recipe: TrainingSet, data_dir: Path) -> None:
    evals = shipped.eval_prompts(data_dir)
    held_out = {normalise_prompt(p) for prompts in evals.values() for p in prompts}
    frame = recipe.battles.frame.filter(pl.col("dataset") != GOLD_SLICE_DATASET)
    leaked = {normalise_prompt(p) for p in frame["prompt"].unique()} & held_out
    assert not leaked
    assert recipe.collected.decontamination.n_removed > 0


def test_gold_slice_is_seeded_and_labelled_for_the_pair(
    recipe: TrainingSet, default_recipe: TrainingSet
) -> None:
    assert len(recipe.gold_slice_ids) == 300
    assert all(i.startswith("mmlu/") for i in recipe.gold_slice_ids)
    gold = recipe.battles.frame.filter(pl.col("dataset") == GOLD_SLICE_DATASET)
    assert gold.height == 300  # one battle per question: the pair
    assert gold["weight"].unique().to_list() == [GOLD_SLICE_WEIGHT]
    assert set(gold["model_a"]) | set(gold["model_b"]) == {
        "gpt-4-1106-preview",
        "mixtral-8x7b-instruct-v0.1",
    }
    assert default_recipe.gold_slice_ids == recipe.gold_slice_ids
    assert default_recipe.fingerprint != recipe.fingerprint  # judge weights differ


def test_source_weights_scale_and_zero_drops(recipe: TrainingSet, data_dir: Path) -> None:
    judge = recipe.battles.frame.filter(pl.col("source") == "judge")
    assert judge.height and judge["weight"].max() <= 0.5
    no_judge = training_set(data_dir, collected=recipe.collected)  # judge off by default
    assert "judge" not in no_judge.battles.frame["source"].cast(pl.String).unique().to_list()
    with pytest.raises(ValueError, match="unknown label sources"):
        training_set(data_dir, source_weights={"crowd": 1.0})


def test_labels_pit_strong_tiers_against_weak_tiers(recipe: TrainingSet) -> None:
    tiers = recipe.tiers()
    labels = tier_labels(recipe.battles, tiers)
    assert set(labels["label"].unique()) <= set(LABELS)
    assert labels.height > 1000
    assert tiers["gpt-4-1106-preview"] < tiers["mixtral-8x7b-instruct-v0.1"]


def test_one_collection_builds_the_same_sets_as_collecting_each(
    recipe: TrainingSet, default_recipe: TrainingSet, data_dir: Path
) -> None:
    for own, source_weights in ((recipe, {"judge": 0.5}), (default_recipe, None)):
        reused = training_set(
            data_dir,
            collected=recipe.collected,
            mmlu_gold_slice=300,
            source_weights=source_weights,
        )
        assert reused.collected is recipe.collected
        assert reused.fingerprint == own.fingerprint
        assert reused.gold_slice_ids == own.gold_slice_ids
        assert reused.ratings.equals(own.ratings)


@pytest.mark.parametrize(
    "collection_args",
    [{"battle_files": ["mine.jsonl"]}, {"skip_bad": True}, {"turns": "all"}],
)
def test_collection_arguments_with_collected_data_raise(
    recipe: TrainingSet, data_dir: Path, collection_args: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(collection_args))} given with collected="):
        training_set(data_dir, collected=recipe.collected, **collection_args)
