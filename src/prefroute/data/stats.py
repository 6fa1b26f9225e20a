"""``prefroute data stats``: what the training data is, in numbers.

Counts per data set and label source, model ratings with confidence
intervals and tiers, and what decontamination and the model filter removed,
as rich tables for people and as a plain dict for ``--json``.

The ratings and tiers are those of the training set ``prefroute train``
builds by default (``recipe.training_set``: source weights, gold slice and
all), so the table is the one the classifier and causal-LLM labels come from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from prefroute.data.recipe import TrainingSet, training_set

OVERLAP_REASON = "set contains a benchmark"
TOP_MODELS = 25
"""Ranked models ``data stats`` prints unless ``--all``."""


@dataclass(frozen=True)
class DataSummary:
    """The numbers ``data stats`` prints."""

    per_dataset: pl.DataFrame  # dataset, source, battles, in_fit, prompts, models
    ratings: pl.DataFrame  # model, rating, ci_low, ci_high, n_battles, tier, no_tier_reason
    decontamination: pl.DataFrame  # dataset, matched (eval set or overlap), removed
    decontamination_summary: str
    not_models: pl.DataFrame  # dataset, models, rule, reason, removed
    notes: tuple[str, ...]
    eval_prompt_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "datasets": self.per_dataset.to_dicts(),
            "ratings": self.ratings.to_dicts(),
            "decontamination": self.decontamination.to_dicts(),
            "decontamination_summary": self.decontamination_summary,
            "not_models": self.not_models.to_dicts(),
            "eval_prompts": self.eval_prompt_counts,
            "notes": list(self.notes),
        }


def summarize(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    mmlu_gold_slice: int | None = None,
    n_bootstrap: int = 100,
    random_state: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> DataSummary:
    """Build the training set ``prefroute train`` builds by default and summarise it;
    ``on_phase`` hears each slow step."""
    data = training_set(
        data_dir,
        battle_files=battle_files,
        skip_bad=skip_bad,
        mmlu_gold_slice=mmlu_gold_slice,
        random_state=random_state,
        on_phase=on_phase,
    )
    if on_phase is not None:
        on_phase(f"fitting Bradley–Terry ratings with {n_bootstrap} bootstrap refits")
    return summarize_training(
        data,
        n_bootstrap=n_bootstrap,
    )


def summarize_training(data: TrainingSet, *, n_bootstrap: int = 100) -> DataSummary:
    """Summarise a training set already built (the quickstart builds one and reuses it).

    The ratings are ``data.rating_table`` with bootstrap intervals: the same
    function, battles and settings as ``data.ratings``, so the same tiers.
    """
    collected = data.collected
    fit = data.battles.frame
    # The gold slice joins in the recipe: count it from the training set.
    collected_sets = collected.battles.frame["dataset"].unique().to_list()
    gold = fit.filter(~pl.col("dataset").is_in(collected_sets))
    counted = pl.concat([collected.battles.frame, gold])
    in_fit = fit.group_by("dataset", "source").agg(in_fit=pl.len())
    per_dataset = (
        counted.group_by("dataset", "source")
        .agg(
            battles=pl.len(),
            prompts=pl.col("prompt").n_unique(),
            models=pl.concat_list("model_a", "model_b").explode().n_unique(),
        )
        .join(in_fit, on=["dataset", "source"], how="left")
        .select(
            "dataset",
            pl.col("source").cast(pl.String),
            "battles",
            pl.col("in_fit").fill_null(0).cast(pl.UInt32),
            "prompts",
            "models",
        )
        .sort("source", "dataset")
    )
    decontam = collected.decontamination
    rows = [(d, e, n) for (d, e), n in decontam.by_eval_set.items()]
    rows += [(d, OVERLAP_REASON, n) for d, n in collected.overlap_removed.items()]
    decontamination = pl.DataFrame(
        rows, schema={"dataset": pl.String, "matched": pl.String, "removed": pl.Int64}, orient="row"
    ).sort("dataset", "matched")
    not_models = pl.DataFrame(
        [
            (d.dataset, list(d.models), d.rule.pattern, d.rule.describe(), d.rows)
            for d in collected.not_models
        ],
        schema={
            "dataset": pl.String,
            "models": pl.List(pl.String),
            "rule": pl.String,
            "reason": pl.String,
            "removed": pl.Int64,
        },
        orient="row",
    )
    notes = tuple(str(d) for d in collected.dropped) + tuple(
        r.summary() for r in collected.user_files
    )
    return DataSummary(
        per_dataset=per_dataset,
        ratings=data.rating_table(n_bootstrap=n_bootstrap),
        decontamination=decontamination,
        decontamination_summary=collected.decontamination_summary(),
        not_models=not_models,
        notes=notes,
        eval_prompt_counts=collected.eval_prompt_counts,
    )


def render(summary: DataSummary, console: Console, *, top: int | None = TOP_MODELS) -> None:
    """Print the summary as rich tables; ``top`` ranked models (None: every model)."""
    table = Table(title="Battles per data set (after decontamination), and how many reach the fit")
    columns = ("dataset", "source", "battles", "in fit", "prompts", "models")
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "source") else "right")
    for row in summary.per_dataset.iter_rows():
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    totals = summary.per_dataset.select(pl.sum("battles"), pl.sum("in_fit")).row(0)
    table.add_section()
    table.add_row("total", "", f"{totals[0]:,}", f"{totals[1]:,}", "", "")
    console.print(table)
    _render_ratings(summary.ratings, console, top)

    decontam = Table(title="Removed as eval contamination (MT-Bench, MMLU, GSM8K)")
    for column in ("dataset", "matched", "rows removed"):
        decontam.add_column(column, justify="right" if column == "rows removed" else "left")
    for dataset, matched, removed in summary.decontamination.iter_rows():
        decontam.add_row(dataset, matched, f"{removed:,}")
    console.print(decontam)
    console.print(summary.decontamination_summary, highlight=False, markup=False)
    for dataset, models, _, reason, removed in summary.not_models.iter_rows():
        line = (
            f"not a model: {dataset}: dropped {removed:,} battles of {', '.join(models)} ({reason})"
        )
        console.print(line, highlight=False, markup=False)
    evals = ", ".join(f"{k} {v:,}" for k, v in summary.eval_prompt_counts.items())
    console.print(f"eval prompts held out: {evals}")
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False, markup=False)


def _render_ratings(ratings: pl.DataFrame, console: Console, top: int | None) -> None:
    ranked = ratings.filter(pl.col("tier").is_not_null())
    unranked = ratings.filter(pl.col("tier").is_null())
    shown = ratings if top is None else ranked.head(top)
    table = Table(
        title="Model ratings (Bradley–Terry, 95% bootstrap CI) and tiers, "
        "on the battles training uses"
    )
    for column in ("tier", "model", "rating", "95% CI", "battles"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in shown.iter_rows(named=True):
        ci = "" if r["ci_low"] is None else f"{r['ci_low']:.0f} – {r['ci_high']:.0f}"
        table.add_row(
            "–" if r["tier"] is None else str(r["tier"]),
            r["model"],
            f"{r['rating']:.0f}",
            ci,
            f"{r['n_battles']:,}",
        )
    console.print(table)
    if top is not None and ranked.height > top:
        console.print(f"… {ranked.height - top} more ranked models (--all prints every model)")
    if unranked.height:
        reasons = unranked.group_by("no_tier_reason").len().sort("len", descending=True)
        why = "; ".join(f"{reason}: {n}" for reason, n in reasons.iter_rows())
        where = "listed above with tier –" if top is None else "--all lists them"
        console.print(f"{unranked.height} models without a tier: {why} ({where})")
