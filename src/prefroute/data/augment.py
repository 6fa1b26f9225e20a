"""Golden labels, judge grades and judge preferences -> ``Battles``.

The routers learn from pairwise outcomes, but most shipped sets are per-model
scores (golden correctness, 1-10 judge grades) or a judge's preference against
a fixed baseline (AlpacaEval). These functions turn them into battle rows with
column operations only: the sets hold 100k+ rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from prefroute.data.schema import BATTLE_SCHEMA, Battles, Scores
from prefroute.errors import DataError, Problem

_PAIR_KEYS = ["dataset", "source", "_key"]


def battles_from_scores(
    scores: Scores,
    *,
    tie_margin: float = 0.0,
    models: Sequence[str] | None = None,
    max_pairs_per_prompt: int | None = None,
    random_state: int | None = 0,
) -> Battles:
    """Every pair of models scored on the same prompt becomes one battle.

    The higher score wins; ``|diff| <= tie_margin`` is a tie. A golden pair that
    is *both wrong* (both scores 0 on the 0/1 correctness scale) is
    ``tie_bothbad``, the Chatbot Arena label for "neither answer is good": it
    tells a router the prompt is hard, which "both right" does not. Judge grades
    have no agreed floor, so their ties are plain ``tie``.

    Pairs are formed within one prompt *and* one (dataset, source): scales
    differ between sets, so a 7/10 grade must never meet a 0/1 correctness.
    Prompts are matched on ``prompt_id`` (the prompt text when the id is null).
    A model scored twice on a prompt has its scores averaged first. Each pair
    appears once, with ``model_a < model_b`` alphabetically.

    The pair count grows as k(k-1)/2 per prompt (29 models -> 406): restrict to
    ``models`` (e.g. a strong/weak pair) or cap with ``max_pairs_per_prompt``, a
    uniform sample of the pairs seeded by ``random_state``.
    """
    if tie_margin < 0:
        raise ValueError(f"tie_margin must be >= 0, got {tie_margin}")
    if max_pairs_per_prompt is not None and max_pairs_per_prompt < 1:
        raise ValueError(f"max_pairs_per_prompt must be >= 1 or None, got {max_pairs_per_prompt}")

    frame = scores.frame.filter(pl.col("score").is_not_null() & pl.col("model").is_not_null())
    if models is not None:
        frame = frame.filter(pl.col("model").is_in(list(models)))
    frame = frame.with_columns(_key=pl.coalesce("prompt_id", "prompt")).filter(
        pl.col("_key").is_not_null()
    )
    per_model = frame.group_by([*_PAIR_KEYS, "model"], maintain_order=True).agg(
        pl.col("prompt_id").first(), pl.col("prompt").first(), pl.col("score").mean()
    )
    # Self-join on small integer columns, then gather the strings once: joining
    # and filtering the string columns themselves is ~3x slower at 5M pairs.
    index = per_model.select(
        _group=pl.struct(_PAIR_KEYS).rank("dense"),
        _model=pl.col("model").rank("dense"),
        score=pl.col("score"),
    ).with_row_index("_row")
    pairs = index.join(index, on="_group", suffix="_b", maintain_order="left_right").filter(
        pl.col("_model") < pl.col("_model_b")
    )
    if max_pairs_per_prompt is not None:
        draw = np.random.default_rng(random_state).random(pairs.height)
        pairs = pairs.with_columns(_draw=draw).filter(
            pl.col("_draw").rank("ordinal").over("_group") <= max_pairs_per_prompt
        )
    pairs = per_model[pairs["_row"]].with_columns(
        model_b=per_model["model"].gather(pairs["_row_b"]), score_b=pairs["score_b"]
    )

    diff = pl.col("score") - pl.col("score_b")
    both_wrong = (pl.col("source") == "golden") & (pl.col("score") == 0) & (pl.col("score_b") == 0)
    winner = (
        pl.when(diff.abs() <= tie_margin)
        .then(pl.when(both_wrong).then(pl.lit("tie_bothbad")).otherwise(pl.lit("tie")))
        .when(diff > 0)
        .then(pl.lit("model_a"))
        .otherwise(pl.lit("model_b"))
    )
    return Battles(
        pairs.select(
            "prompt_id",
            "prompt",
            pl.col("model").alias("model_a"),
            "model_b",
            winner.cast(BATTLE_SCHEMA["winner"]).alias("winner"),
            "source",
            "dataset",
            pl.lit(1.0, dtype=pl.Float32).alias("weight"),
        )
    )


_PREFERENCE_COLUMNS = ("prompt_id", "prompt", "model", "baseline", "preference")


def battles_from_preferences(prefs: pl.DataFrame, *, dataset: str | None = None) -> Battles:
    """A judge's P(model beats baseline) -> soft-labelled battles (source ``judge``).

    Input columns: ``prompt_id, prompt, model, baseline, preference`` (in [0, 1],
    AlpacaEval's ``model_win``), plus ``dataset`` unless ``dataset=`` names it.
    A fractional p keeps the judge's uncertainty instead of rounding it away:
    two rows, model wins with weight p and baseline wins with weight 1-p, so
    each judgement still weighs 1 in total. Exactly 0.5 is one tie row, and 0 or
    1 is one decisive row. Null preferences (AlpacaEval's invalid judgements)
    and self-comparisons are dropped; a value outside [0, 1] is a ``DataError``.
    """
    missing = [c for c in _PREFERENCE_COLUMNS if c not in prefs.columns]
    if dataset is None and "dataset" not in prefs.columns:
        missing.append("dataset (or pass dataset=)")
    if missing:
        raise DataError.file(
            "preferences frame", f"columns {list(_PREFERENCE_COLUMNS)} + dataset", f"no {missing}"
        )

    frame = (
        prefs.with_row_index("_row")
        .with_columns(
            pl.col("preference").cast(pl.Float64),
            dataset=pl.lit(dataset, dtype=pl.String) if dataset is not None else pl.col("dataset"),
        )
        .filter(pl.col("preference").is_not_null() & (pl.col("model") != pl.col("baseline")))
    )
    p = pl.col("preference")
    bad = frame.filter(~p.is_between(0.0, 1.0) | p.is_nan())
    if bad.height:
        raise DataError(
            [
                Problem("preferences frame", row, "preference", "a probability in [0, 1]", str(v))
                for row, v in bad.select("_row", "preference").iter_rows()
            ]
        )

    soft = p != 0.5
    rows = pl.concat(
        [
            frame.filter((p > 0) & soft).with_columns(winner=pl.lit("model_a"), weight=p),
            frame.filter((p < 1) & soft).with_columns(winner=pl.lit("model_b"), weight=1 - p),
            frame.filter(p == 0.5).with_columns(winner=pl.lit("tie"), weight=pl.lit(1.0)),
        ]
    ).sort("_row", maintain_order=True)
    return Battles(
        rows.select(
            "prompt_id",
            "prompt",
            pl.col("model").alias("model_a"),
            pl.col("baseline").alias("model_b"),
            "winner",
            pl.lit("judge").alias("source"),
            "dataset",
            "weight",
        )
    )
