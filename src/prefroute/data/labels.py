"""Battles -> the labels a label-head router learns: did this prompt need the strong class?

The paper's recipe: models are grouped into tiers by Bradley-Terry rating, and
a battle between a strong-tier and a weak-tier model says whether a strong model
was needed on its prompt (``strong``), a weak one sufficed (``weak``), or both
did as well (``tie``). Labels are then folded into one soft target per distinct
prompt. Data-side, so routers never import the training recipe.

polars and the tier fit are imported inside the functions: ``LABELS`` is read
on the scoring path (a loaded classifier checks its graph's label order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from prefroute.errors import DataError

if TYPE_CHECKING:
    import polars as pl

    from prefroute.data.schema import Battles

LABELS = ("strong", "tie", "weak")
"""The label order: the columns of ``soft_targets`` and the logits of every label graph."""


def tier_labels(
    battles: Battles,
    tiers: Mapping[str, int | None],
    *,
    strong_tiers: Sequence[int] = (1, 2),
    weak_tiers: Sequence[int] = (3,),
) -> pl.DataFrame:
    """``prompt, label, weight, dataset, source``: battles of a strong-class against a
    weak-class model.

    As in the paper: a battle between a model of ``strong_tiers`` and one of
    ``weak_tiers`` says whether a strong model was needed on its prompt.
    ``label`` is one of ``LABELS``; both-bad ties count as ties. Battles of two
    models of the same class, or of a model outside both (a model absent from
    ``tiers`` or with tier None: too few battles to rank), are left out.
    """
    import polars as pl

    strong = [m for m, t in tiers.items() if t in strong_tiers]
    weak = [m for m, t in tiers.items() if t in weak_tiers]
    a_strong = pl.col("model_a").is_in(strong) & pl.col("model_b").is_in(weak)
    b_strong = pl.col("model_b").is_in(strong) & pl.col("model_a").is_in(weak)
    winner = pl.col("winner").cast(pl.String)
    return (
        battles.frame.filter(a_strong | b_strong)
        .with_columns(
            label=pl.when(winner.str.starts_with("tie"))
            .then(pl.lit("tie"))
            .when((winner == "model_a") == a_strong)
            .then(pl.lit("strong"))
            .otherwise(pl.lit("weak"))
        )
        .select("prompt", "label", "weight", "dataset", "source")
    )


def preference_labels(
    battles: Battles,
    *,
    strong_model: str,
    weak_model: str,
    strong_tiers: Sequence[int] = (1, 2),
    weak_tiers: Sequence[int] = (3,),
    min_battles: int | None = None,
    random_state: int | None = 0,
) -> pl.DataFrame:
    """``tier_labels`` over tiers fitted on ``battles`` (``rating_table``, no bootstrap).

    Models with fewer than ``min_battles`` battles (default ``tiers.MIN_BATTLES``)
    or outside the main group of models have no tier and label nothing. The
    router's own pair counts as strong vs weak whatever its tiers or battles, so
    battles of exactly that pair always label (a gold slice of two models would
    otherwise land in tiers 1 and 2, both strong).
    """
    import polars as pl

    from prefroute.data.tiers import MIN_BATTLES, rating_table

    if not strong_tiers or not weak_tiers or set(strong_tiers) & set(weak_tiers):
        raise ValueError(
            f"strong_tiers {tuple(strong_tiers)} and weak_tiers {tuple(weak_tiers)} must be "
            "non-empty and disjoint"
        )
    if len(battles.models) < 2:  # nothing to rate, so nothing to label
        ratings = pl.DataFrame(schema={"model": pl.String, "tier": pl.Int64})
    else:
        ratings = rating_table(
            battles,
            min_battles=MIN_BATTLES if min_battles is None else min_battles,
            n_bootstrap=0,
            random_state=random_state,
        )
    ratings = ratings.with_columns(
        tier=pl.when(pl.col("model") == strong_model)
        .then(pl.lit(min(strong_tiers), dtype=pl.Int64))
        .when(pl.col("model") == weak_model)
        .then(pl.lit(min(weak_tiers), dtype=pl.Int64))
        .otherwise(pl.col("tier"))
    )
    tiers = dict(ratings.select("model", "tier").iter_rows())
    return tier_labels(battles, tiers, strong_tiers=strong_tiers, weak_tiers=weak_tiers)


def soft_targets(labels: pl.DataFrame) -> tuple[list[str], np.ndarray]:
    """Distinct prompts and, per prompt, the weighted share of each label, shape (n, 3).

    One example per distinct prompt rather than per battle: a prompt judged for
    30 model pairs becomes one example with a 30-vote target, which is the same
    expected loss as 30 hard-label rows for a thirtieth of the compute. Prompts
    come out sorted, so the result does not depend on row order. Rows of weight
    0 or with an empty prompt are left out.
    """
    import polars as pl

    missing = {"prompt", "label"} - set(labels.columns)
    if missing:
        raise DataError.file("labels", "columns prompt, label[, weight]", f"no {sorted(missing)}")
    bad = labels.filter(~pl.col("label").is_in(LABELS))
    if bad.height:
        raise DataError.file(
            "labels", f"label in {LABELS}", repr(bad["label"].unique().head(5).to_list())
        )
    weight = pl.col("weight").cast(pl.Float64) if "weight" in labels.columns else pl.lit(1.0)
    frame = (
        labels.select("prompt", "label", weight=weight)
        .filter((pl.col("weight") > 0) & (pl.col("prompt").str.len_chars() > 0))
        .group_by("prompt")
        .agg(
            [pl.col("weight").filter(pl.col("label") == name).sum().alias(name) for name in LABELS]
        )
        .sort("prompt")
    )
    counts = frame.select(LABELS).to_numpy().astype(np.float64)
    targets = counts / counts.sum(axis=1, keepdims=True)
    return frame["prompt"].to_list(), targets.astype(np.float32)
