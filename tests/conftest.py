"""Shared fixtures: the real shipped data directory, located as users locate it."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefroute.data.location import data_dir as resolve_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shipped data sets (../shared/data next to the checkout)."""
    return resolve_data_dir()


N_MODEL_PROMPTS = 600
"""Prompts of the shared N-model subset: 400 to train on, 200 held out."""


@pytest.fixture(scope="session")
def n_model_scores(data_dir: Path):
    """A real multi-model scores subset: LLMRouter (UIUC) train, 9 open models, 600 prompts
    drawn with a seed across its 14 tasks, as ``(train, held_out)`` Scores split by prompt."""
    import numpy as np
    import polars as pl

    from prefroute.data.schema import Scores
    from prefroute.data.shipped import load_scores

    frame = load_scores(data_dir).table.frame.filter(
        pl.col("dataset").str.starts_with("llmrouter-uiuc-9model/train/")
    )
    ids = np.array(sorted(frame["prompt_id"].unique().to_list()))
    chosen = np.random.default_rng(0).choice(ids, N_MODEL_PROMPTS, replace=False)
    train, held = chosen[: 2 * N_MODEL_PROMPTS // 3], chosen[2 * N_MODEL_PROMPTS // 3 :]
    return (
        Scores(frame.filter(pl.col("prompt_id").is_in(train.tolist()))),
        Scores(frame.filter(pl.col("prompt_id").is_in(held.tolist()))),
    )


@pytest.fixture(scope="session")
def quality_router(n_model_scores):
    """The ``quality`` kind fitted on the subset's training prompts (a few seconds)."""
    from prefroute.routers.quality import QualityRouter

    return QualityRouter(
        strong_model="llama-3.1-nemotron-51b-instruct",
        weak_model="mistral-7b-instruct-v0.3",
        verbose=False,
    ).fit_scores(n_model_scores[0])
