"""Own-data pairs from the shipped golden sets: the prompts two models were both scored on.

Used by ``own_data.py`` (learning curves): each pair stands in for a user's own
labels, from sets that are training data (never the MT-Bench / MMLU / GSM8K eval sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from prefroute.data import shipped


@dataclass(frozen=True)
class Pair:
    name: str
    dataset: str
    """Prefix of the shipped ``dataset`` column the prompts come from."""
    strong: str
    weak: str
    source_set: str
    """The shipped set the pair comes from: left out whole when shipped data is added."""
    short: str
    """For plot titles and footnotes."""


PAIRS = (
    Pair(
        "MMLU-Pro (non-MMLU): gemini-1.5-pro-002 vs llama-3.1-8b-instruct",
        "mmlu-pro-29model/non-mmlu",
        "gemini-1.5-pro-002",
        "llama-3.1-8b-instruct",
        "mmlu-pro-29model",
        "MMLU-Pro gemini-1.5-pro / llama-3.1-8b",
    ),
    Pair(
        "MMLU-Pro (non-MMLU): llama-3.1-70b-instruct vs mistral-7b-instruct-v0.2",
        "mmlu-pro-29model/non-mmlu",
        "llama-3.1-70b-instruct",
        "mistral-7b-instruct-v0.2",
        "mmlu-pro-29model",
        "MMLU-Pro llama-3.1-70b / mistral-7b-v0.2",
    ),
    Pair(
        "RouterBench: gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1",
        "routerbench-routerdc",
        "gpt-4-1106-preview",
        "mixtral-8x7b-instruct-v0.1",
        "routerbench-routerdc",
        "RouterBench gpt-4 / mixtral-8x7b",
    ),
    Pair(
        "LLMRouter train: llama-3.1-nemotron-51b-instruct vs mistral-7b-instruct-v0.3",
        "llmrouter-uiuc-9model/train",
        "llama-3.1-nemotron-51b-instruct",
        "mistral-7b-instruct-v0.3",
        "llmrouter-uiuc-9model",
        "LLMRouter nemotron-51b / mistral-7b-v0.3",
    ),
)


@dataclass(frozen=True)
class PairTable:
    """One row per prompt both models were scored on, sorted by ``prompt_id``."""

    pair: Pair
    prompt_ids: list[str]
    prompts: list[str]
    strong: np.ndarray
    weak: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    def halves(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(pool, held out): a seeded split of the prompts in two halves. The user's
        labelled prompts are drawn from the pool in order, so a larger size holds
        every smaller one, and the held-out half is never trained on."""
        order = np.random.default_rng(seed).permutation(len(self))
        half = len(self) // 2
        return order[:half], order[half:]

    def scores_rows(self, rows: np.ndarray) -> list[dict[str, object]]:
        """The chosen prompts as a user's long-format scores file: one record per
        prompt and model, ``prompt_id, prompt, model, score``."""
        records: list[dict[str, object]] = []
        for i in rows.tolist():
            for model, score in (
                (self.pair.strong, self.strong[i]),
                (self.pair.weak, self.weak[i]),
            ):
                records.append(
                    {
                        "prompt_id": self.prompt_ids[i],
                        "prompt": self.prompts[i],
                        "model": model,
                        "score": float(score),
                    }
                )
        return records


def pair_tables(data_dir: Path, pairs: tuple[Pair, ...] = PAIRS) -> list[PairTable]:
    """Each pair's prompts and per-model scores (a model scored twice: the mean)."""
    scores = shipped.load_scores(data_dir).table.frame
    tables = []
    for pair in pairs:
        rows = scores.filter(
            pl.col("dataset").str.starts_with(pair.dataset)
            & pl.col("model").is_in([pair.strong, pair.weak])
            & pl.col("score").is_not_null()
        )
        wide = (
            rows.group_by("prompt_id", "model")
            .agg(pl.col("prompt").first(), pl.col("score").mean())
            .pivot(on="model", index=["prompt_id", "prompt"], values="score")
        )
        missing = {pair.strong, pair.weak} - set(wide.columns)
        if missing:
            raise SystemExit(f"{pair.name}: no scores for {sorted(missing)} in {pair.dataset}")
        wide = wide.drop_nulls([pair.strong, pair.weak]).sort("prompt_id")
        tables.append(
            PairTable(
                pair=pair,
                prompt_ids=wide["prompt_id"].to_list(),
                prompts=wide["prompt"].to_list(),
                strong=wide[pair.strong].to_numpy().astype(np.float64),
                weak=wide[pair.weak].to_numpy().astype(np.float64),
            )
        )
    return tables
