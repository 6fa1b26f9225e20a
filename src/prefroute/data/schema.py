"""The two tables everything else speaks: ``Battles`` and ``Scores``.

Columnar (polars) rather than per-row objects: the public Arena files hold
100k+ battles, and every step (normalise names, decontaminate, fit tiers)
is a column operation.

``Battles``: one pairwise judgement per row.
``Scores``: one (prompt, model, score) per row -- golden correctness or a
judge's grade -- which ``augment`` turns into battles and the evaluation
reads as is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Self

import polars as pl

WINNERS = ("model_a", "model_b", "tie", "tie_bothbad")
OUTCOME_SCORE: dict[str, float] = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie_bothbad": 0.5}
"""``model_a``'s score per ``winner``: what Bradley-Terry, SW ranking and MF fit to.
A tie is half a win whether or not both answers were bad."""
WINNER_SYNONYMS = {"tie (bothbad)": "tie_bothbad", "both_bad": "tie_bothbad"}
"""Spellings of the arena's "both are bad" tie across its releases -> ``tie_bothbad``."""
SOURCES = ("human", "judge", "golden")

BATTLE_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "prompt": pl.String(),
    "model_a": pl.String(),
    "model_b": pl.String(),
    "winner": pl.Enum(WINNERS),
    "source": pl.Enum(SOURCES),
    "dataset": pl.String(),
    "weight": pl.Float32(),
}

SCORE_SCHEMA: dict[str, pl.DataType] = {
    "prompt_id": pl.String(),
    "prompt": pl.String(),
    "model": pl.String(),
    "score": pl.Float64(),
    "source": pl.Enum(SOURCES),
    "dataset": pl.String(),
}


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType], what: str) -> pl.DataFrame:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks columns {missing}; expected {list(schema)}")
    return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])


@dataclass(frozen=True)
class _Table:
    frame: pl.DataFrame

    def __len__(self) -> int:
        return self.frame.height

    @property
    def prompts(self) -> list[str]:
        return self.frame["prompt"].to_list()

    def filter(self, mask: pl.Expr | pl.Series) -> Self:
        return type(self)(self.frame.filter(mask))


@dataclass(frozen=True)
class Battles(_Table):
    """Pairwise preferences: ``prompt, model_a, model_b, winner, source, dataset, weight``.

    ``winner`` is one of ``WINNERS``; ``weight`` carries soft labels (a judge's
    fractional preference becomes two rows, one per side, weighted p and 1-p).
    """

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", _conform(self.frame, BATTLE_SCHEMA, "Battles"))

    @classmethod
    def empty(cls) -> Battles:
        return cls(pl.DataFrame(schema=BATTLE_SCHEMA))

    @classmethod
    def concat(cls, parts: Iterable[Battles]) -> Battles:
        frames = [p.frame for p in parts]
        return cls(pl.concat(frames)) if frames else cls.empty()

    @property
    def models(self) -> list[str]:
        return sorted(set(self.frame["model_a"].unique()) | set(self.frame["model_b"].unique()))


@dataclass(frozen=True)
class Scores(_Table):
    """Per-model quality on a prompt: ``prompt, model, score, source, dataset``.

    ``score`` is on the set's own scale (higher is better); golden correctness
    is 1.0 / 0.0. Scales differ between sets, so only compare within a prompt.
    """

    def __post_init__(self) -> None:
        object.__setattr__(self, "frame", _conform(self.frame, SCORE_SCHEMA, "Scores"))

    @classmethod
    def empty(cls) -> Scores:
        return cls(pl.DataFrame(schema=SCORE_SCHEMA))

    @classmethod
    def concat(cls, parts: Iterable[Scores]) -> Scores:
        frames = [p.frame for p in parts]
        return cls(pl.concat(frames)) if frames else cls.empty()

    @property
    def models(self) -> list[str]:
        return sorted(self.frame["model"].unique().to_list())
