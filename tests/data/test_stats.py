"""``data stats`` shows the training set ``prefroute train`` fits: same tiers, every drop."""

from __future__ import annotations

import inspect
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console

from prefroute import cli
from prefroute.data.recipe import GOLD_SLICE_DATASET, TrainingSet, training_set
from prefroute.data.stats import TOP_MODELS, DataSummary, render, summarize, summarize_training
from prefroute.training import train_router


def _default(function: object, name: str) -> object:
    return inspect.signature(function).parameters[name].default  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained_on(data_dir: Path) -> TrainingSet:
    """The training set ``prefroute train`` builds by default."""
    return training_set(data_dir, mmlu_gold_slice=_default(train_router, "mmlu_gold_slice"))


@pytest.fixture(scope="module")
def summary(trained_on: TrainingSet) -> DataSummary:
    return summarize_training(trained_on, n_bootstrap=10)


def test_stats_builds_the_training_set_train_builds() -> None:
    gold = _default(summarize, "mmlu_gold_slice")
    assert (
        gold == _default(train_router, "mmlu_gold_slice") == _default(cli.train, "mmlu_gold_slice")
    )


def test_stats_shows_the_tiers_the_fit_sees(summary: DataSummary, trained_on: TrainingSet) -> None:
    shown = summary.ratings.select("model", "rating", "n_battles", "tier", "no_tier_reason")
    fitted = trained_on.ratings.select("model", "rating", "n_battles", "tier", "no_tier_reason")
    assert shown.equals(fitted)
    assert dict(summary.ratings.drop_nulls("tier").select("model", "tier").iter_rows()) == (
        trained_on.tiers()
    )
    assert summary.ratings["ci_low"].is_not_null().all()


def test_every_set_is_counted_with_what_reaches_the_fit(
    summary: DataSummary, trained_on: TrainingSet
) -> None:
    per_set = {(r["dataset"], r["source"]): r for r in summary.per_dataset.iter_rows(named=True)}
    assert per_set[("alpaca-eval", "judge")]["in_fit"] == 0  # judge labels are off by default
    assert per_set[("alpaca-eval", "judge")]["battles"] > 100_000
    gold = per_set[(GOLD_SLICE_DATASET, "golden")]
    assert gold["battles"] == gold["in_fit"] == len(trained_on.gold_slice_ids)
    assert summary.per_dataset["in_fit"].sum() == len(trained_on.battles)
    assert summary.not_models.height and summary.not_models["removed"].sum() == sum(
        d.rows for d in trained_on.collected.not_models
    )


def _printed(summary: DataSummary, top: int | None) -> tuple[list[str], str]:
    """The models in the ratings table (its rows have 5 cells), and the whole text."""
    console = Console(record=True, width=400)
    render(summary, console, top=top)
    text = console.export_text()
    cells = [line.split("│") for line in text.splitlines()]
    return [c[2].strip() for c in cells if len(c) == 7 and c[2].strip() != "model"], text


def test_the_table_shows_the_top_by_default_and_every_model_on_request(
    summary: DataSummary,
) -> None:
    ratings = summary.ratings
    ranked = ratings.drop_nulls("tier")
    unranked = ratings.filter(pl.col("tier").is_null())
    top, top_text = _printed(summary, TOP_MODELS)
    everything, _ = _printed(summary, None)
    assert top == ranked["model"].head(TOP_MODELS).to_list()
    assert everything == ratings["model"].to_list()  # ranked first, then the others
    assert f"… {ranked.height - TOP_MODELS} more ranked models (--all" in top_text
    reasons = dict(unranked.group_by("no_tier_reason").len().iter_rows())
    assert f"{unranked.height} models without a tier: " in top_text
    assert f"fewer than 100 battles: {reasons['fewer than 100 battles']}" in top_text
    assert "rule 'example' in prefroute/data/model_filters.toml" in top_text  # not eaten as markup
    assert "removed 2," in top_text and "sets dropped whole" in top_text
