"""The training recipe on all the shipped data: decontaminated, weighted, gold slice apart."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from prefroute.data import shipped
from prefroute.data.augment import battles_from_preferences, battles_from_scores
from prefroute.data.decontam import normalise_prompt
from prefroute.data.labels import LABELS, tier_labels
from prefroute.data.model_names import model_filters
from prefroute.data.recipe import GOLD_SLICE_DATASET, GOLD_SLICE_WEIGHT, TrainingSet, training_set
from prefroute.data.tiers import MIN_BATTLES
from prefroute.errors import InvalidParameterError


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


def test_no_training_prompt_is_a_near_copy_of_an_eval_prompt(
    recipe: TrainingSet, data_dir: Path
) -> None:
    """Cosine < 0.95 to every eval prompt, recomputed here: paraphrases and reformats
    (a changed number, an added instruction) that exact matching lets through."""
    from prefroute.embed import get_embedder

    embedder = get_embedder(cache=True)  # the decontamination's default embedder
    evals = [p for prompts in shipped.eval_prompts(data_dir).values() for p in prompts]
    frame = recipe.battles.frame.filter(pl.col("dataset") != GOLD_SLICE_DATASET)
    train = frame["prompt"].unique().to_list()
    eval_vectors = _unit(embedder.encode(evals))
    train_vectors = _unit(embedder.encode(train))
    best = np.concatenate(
        [(block @ eval_vectors.T).max(axis=1) for block in np.array_split(train_vectors, 16)]
    )
    near = [(train[i], float(best[i])) for i in np.flatnonzero(best >= 0.95)]
    assert not near, near[:5]
    assert recipe.collected.decontamination.by_reason["near"] > 0


def test_sets_made_of_benchmark_questions_are_left_out_whole(
    recipe: TrainingSet, data_dir: Path
) -> None:
    """A set whose prompts mostly contain an MMLU or GSM8K question (reformatted, so
    neither exact nor near matching finds them all) gives the router no row at all."""
    evals = shipped.eval_prompts(data_dir)
    questions = [normalise_prompt(p.split("\nA.")[0]) for p in evals["mmlu"]]  # stem only
    questions += [normalise_prompt(p) for p in evals["gsm8k"]]
    questions = [q for q in questions if len(q) >= 40]  # short stems match by chance
    prompts = pl.concat(
        [
            report.table.frame.select("dataset", "prompt").unique()
            for report in (shipped.load_scores(data_dir), shipped.load_battles(data_dir))
        ]
    )
    normalised = pl.Series([normalise_prompt(p) for p in prompts["prompt"]], dtype=pl.String)
    share = (
        prompts.with_columns(contains=normalised.str.contains_any(questions))
        .group_by("dataset")
        .agg(pl.col("contains").mean())
    )
    benchmark_sets = share.filter(pl.col("contains") >= 0.5)["dataset"].to_list()
    assert "routerdc-7model/mmlu_test" in benchmark_sets  # 0 of its rows match exactly
    left = recipe.battles.frame.filter(pl.col("dataset").is_in(benchmark_sets))
    assert left.is_empty(), left.group_by("dataset").len()


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


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
    with pytest.raises(InvalidParameterError, match="unknown label sources"):
        training_set(data_dir, source_weights={"crowd": 1.0})
    with pytest.raises(InvalidParameterError, match="MMLU has only 14042 questions"):
        training_set(data_dir, collected=recipe.collected, mmlu_gold_slice=20_000)


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
    [
        {"battle_files": ["mine.jsonl"]},
        {"skip_bad": True},
        {"turns": "all"},
        {"filters": "mine.toml"},
    ],
)
def test_collection_arguments_with_collected_data_raise(
    recipe: TrainingSet, data_dir: Path, collection_args: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match=f"{next(iter(collection_args))} given with collected="):
        training_set(data_dir, collected=recipe.collected, **collection_args)


def test_the_decontamination_line_adds_up_to_the_rows_removed(
    recipe: TrainingSet, data_dir: Path
) -> None:
    collected = recipe.collected
    pooled = (
        len(shipped.load_battles(data_dir).table)
        + len(battles_from_scores(shipped.load_scores(data_dir).table))
        + len(battles_from_preferences(shipped.load_judge_preferences(data_dir).table))
    )
    not_models = sum(d.rows for d in collected.not_models)
    assert collected.n_contaminated == pooled - not_models - len(collected.battles)

    line = collected.decontamination_summary()
    found = re.fullmatch(
        r"removed ([\d,]+) battles as eval contamination = ([\d,]+) exact \+ ([\d,]+) near "
        r"\(cosine >= 0\.95\) matches of an eval prompt \+ ([\d,]+) in (\d+) sets dropped whole "
        r"for containing a benchmark: (.*)",
        line,
    )
    assert found, line
    total, exact, near, whole = (int(found[i].replace(",", "")) for i in (1, 2, 3, 4))
    assert total == collected.n_contaminated == exact + near + whole
    assert exact > 0 and near > 0
    sets = dict(re.findall(r"(\S+) \((?:mmlu|gsm8k)\) ([\d,]+)", found[6]))
    assert int(found[5]) == len(sets) == len(collected.overlap_removed)
    assert sum(int(n.replace(",", "")) for n in sets.values()) == whole
    assert "mmlu-pro-29model/from-mmlu" in sets  # the big one: 6,810 questions x 406 pairs


def test_entries_that_are_not_models_leave_the_data_and_are_reported(
    recipe: TrainingSet,
) -> None:
    filters = model_filters()
    names = set(recipe.battles.frame["model_a"]) | set(recipe.battles.frame["model_b"])
    assert not [n for n in names if filters.rule(n)]
    assert "example" not in set(recipe.ratings["model"])  # AlpacaEval's placeholder
    reported = {(d.dataset, d.rule.pattern) for d in recipe.collected.not_models}
    assert {("alpaca-eval", "example"), ("just-eval-safety-scores", "urial=*")} <= reported
    lines = recipe.collected.removal_lines()
    total = sum(d.rows for d in recipe.collected.not_models)
    assert len(lines) == 2 and lines[1].startswith(f"dropped {total:,} battles of entries")
    per_rule = re.findall(r"(\S+) ([\d,]+)(?:,|$)", lines[1].split(": ", 1)[1])
    assert sum(int(n.replace(",", "")) for _, n in per_rule) == total


def test_tiers_only_for_models_with_enough_battles(recipe: TrainingSet) -> None:
    ratings = recipe.ratings
    unranked = ratings.filter(pl.col("tier").is_null())
    assert unranked.height and unranked["no_tier_reason"].is_not_null().all()
    few = unranked.filter(pl.col("no_tier_reason").str.starts_with("fewer than"))
    assert few["n_battles"].max() < MIN_BATTLES <= ratings.drop_nulls("tier")["n_battles"].min()
    assert "command-r-plus" in set(few["model"])  # 4 Arena battles: rated 1284, tier 1 before
    tiers = recipe.tiers()
    assert set(tiers) == set(ratings.drop_nulls("tier")["model"])
    # PandaLM's 5 models only ever meet each other: rated on their own scale, no tier
    apart = ratings.filter(pl.col("no_tier_reason").str.starts_with("not compared"))
    assert set(apart["model"]) == {
        "llama-7b",
        "bloom-7b",
        "cerebras-gpt-6.7b",
        "opt-7b",
        "pythia-6.9b",
    }
    # bootstrap intervals (what data stats adds) leave ratings and tiers as they are
    with_intervals = recipe.rating_table(n_bootstrap=5)
    assert with_intervals.select("model", "rating", "tier").equals(
        ratings.select("model", "rating", "tier")
    )
    assert with_intervals["ci_low"].is_not_null().all()


def test_a_users_filter_file_and_battles_are_reported_not_dropped_silently(
    data_dir: Path, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.jsonl"
    rows = [
        {"prompt": f"question {i}", "model_a": a, "model_b": "gpt-4o", "winner": "model_a"}
        for i, a in enumerate(["house-stub", "house-stub", "gpt-4o-mini-2024-07-18"])
    ]
    mine.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    filters = tmp_path / "filters.toml"
    filters.write_text('[drop]\n"house-*" = "our stub that echoes the prompt"\n')
    data = training_set(data_dir, battle_files=[mine], filters=filters)
    report = [d for d in data.collected.not_models if d.models == ("house-stub",)]
    assert [(d.rows, d.rule.source) for d in report] == [(2, str(filters))]
    user_rows = data.battles.frame.filter(pl.col("model_b") == "gpt-4o")
    assert user_rows["model_a"].to_list() == ["gpt-4o-mini"]  # the dated name joined
    # 3 rows given = 1 in the fit + 2 reported
    assert len(user_rows) + report[0].rows == len(rows)
