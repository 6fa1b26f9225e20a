"""Battles from ``(prompt, model_a, model_b, winner)`` rows, as the router tests build them.

Importable from every test module: ``tests/`` is on ``sys.path`` through its
conftest.py (pytest's default import mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from prefroute.data.schema import Battles


def battles_from_rows(rows: Sequence[tuple[str, str, str, str]], *, dataset: str) -> Battles:
    """Human battles of weight 1, each prompt's id a hash of its text (equal prompts, one id)."""
    frame = pl.DataFrame(rows, schema=["prompt", "model_a", "model_b", "winner"], orient="row")
    return Battles(
        frame.with_columns(
            prompt_id=pl.col("prompt").hash().cast(pl.String),
            source=pl.lit("human"),
            dataset=pl.lit(dataset),
            weight=pl.lit(1.0),
        )
    )
