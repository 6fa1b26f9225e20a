"""Evaluation sets: every benchmark and user file in one shape, ``EvalSet``.

An eval set is a list of prompts, each with the strong and the weak model's
quality on it. The paper's three benchmarks come from ``routellm-evals`` for
its pair (gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1):

- ``mt-bench``: 80 questions, GPT-4 judge 1-10 per model and turn; quality is
  the mean of a question's judged turns (judge failures left out); a router
  sees the first turn, the text it would route on;
- ``mmlu`` (14,042 questions) and ``gsm8k`` (1,319): correctness 0/1.

RouteLLM's contaminated eval prompts (near-copies of its Arena training data)
are dropped, as the paper did: 72, 14,037 and 1,307 prompts remain. Any user
file in the long format (``prompt, model, score|correct``) becomes a set too.
Every prompt left out is counted in ``EvalSet.dropped`` with its reason.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK, canonical_name
from prefroute.data.readers import read_scores
from prefroute.data.shipped import load_eval_scores, read_shipped
from prefroute.errors import DataError, EvalError

__all__ = ["BENCHMARKS", "EvalSet", "benchmark", "eval_file"]

BENCHMARKS = ("mt-bench", "mmlu", "gsm8k")
_SET = "routellm-evals"
_S = pl.String()


@dataclass(frozen=True, eq=False)
class EvalSet:
    """Prompts with both models' quality on each; what every metric is computed on.

    ``prompts`` are the texts a router scores (MT-Bench: the first turn);
    ``dropped`` counts the prompts left out, by reason.
    """

    name: str
    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    strong_quality: np.ndarray
    weak_quality: np.ndarray
    strong_model: str
    weak_model: str
    dropped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        sizes = {
            len(self.prompt_ids),
            len(self.prompts),
            len(self.strong_quality),
            len(self.weak_quality),
        }
        if len(sizes) != 1:
            raise ValueError(f"{self.name}: ids, prompts and qualities differ in length ({sizes})")
        if not self.prompt_ids:
            dropped = ", ".join(f"{n} {why}" for why, n in self.dropped.items()) or "none"
            raise EvalError(f"{self.name}: no prompts left to evaluate on (dropped: {dropped})")
        if self.strong_quality.mean() == self.weak_quality.mean():
            raise EvalError(
                f"{self.name}: {self.strong_model} and {self.weak_model} have the same mean "
                f"quality ({self.strong_quality.mean():.6g}), so PGR is undefined; is the "
                "file's score higher-is-better for both?"
            )

    def __len__(self) -> int:
        return len(self.prompt_ids)

    def without(self, ids: Collection[str], reason: str) -> EvalSet:
        """This set minus the prompts with these ids, counted under ``reason``."""
        ids = set(ids)
        keep = np.array([i not in ids for i in self.prompt_ids], dtype=bool)
        removed = int((~keep).sum())
        if not removed:
            return self
        dropped = dict(self.dropped)
        dropped[reason] = dropped.get(reason, 0) + removed
        return EvalSet(
            name=self.name,
            prompt_ids=tuple(i for i, k in zip(self.prompt_ids, keep, strict=True) if k),
            prompts=tuple(p for p, k in zip(self.prompts, keep, strict=True) if k),
            strong_quality=self.strong_quality[keep],
            weak_quality=self.weak_quality[keep],
            strong_model=self.strong_model,
            weak_model=self.weak_model,
            dropped=dropped,
        )

    def to_dict(self) -> dict:
        """The set's description for JSON (not its prompts)."""
        return {
            "name": self.name,
            "strong_model": self.strong_model,
            "weak_model": self.weak_model,
            "n_prompts": len(self),
            "strong_quality": float(self.strong_quality.mean()),
            "weak_quality": float(self.weak_quality.mean()),
            "dropped": dict(self.dropped),
        }


def _pair_set(
    name: str, scores: pl.DataFrame, prompts: pl.DataFrame, strong: str, weak: str
) -> EvalSet:
    """Join per-(prompt, model) scores onto prompts; a model's several scores on one
    prompt (MT-Bench turns, repeated samples) are averaged. Prompts missing either
    model's score are dropped and counted."""
    means = (
        scores.filter(pl.col("model").is_in([strong, weak]))
        .group_by("prompt_id", "model")
        .agg(pl.col("score").mean())
    )
    wide = prompts.join(
        means.filter(pl.col("model") == strong).select("prompt_id", pl.col("score").alias("s")),
        on="prompt_id",
        how="left",
    ).join(
        means.filter(pl.col("model") == weak).select("prompt_id", pl.col("score").alias("w")),
        on="prompt_id",
        how="left",
    )
    dropped: dict[str, int] = {}
    for reason, missing in (
        ("no score for either model", pl.col("s").is_null() & pl.col("w").is_null()),
        (f"no score for {strong}", pl.col("s").is_null() & pl.col("w").is_not_null()),
        (f"no score for {weak}", pl.col("w").is_null() & pl.col("s").is_not_null()),
    ):
        count = wide.select(missing.sum()).item()
        if count:
            dropped[reason] = count
    wide = wide.drop_nulls(["s", "w"])
    return EvalSet(
        name=name,
        prompt_ids=tuple(wide["prompt_id"].to_list()),
        prompts=tuple(wide["prompt"].to_list()),
        strong_quality=wide["s"].to_numpy().astype(np.float64),
        weak_quality=wide["w"].to_numpy().astype(np.float64),
        strong_model=strong,
        weak_model=weak,
        dropped=dropped,
    )


def benchmark(
    name: str, data_dir: str | Path | None = None, *, exclude_ids: Collection[str] = ()
) -> EvalSet:
    """One of ``BENCHMARKS`` as an ``EvalSet``, decontaminated as in the paper.

    ``exclude_ids`` are prompt ids a router was trained on (an artifact's
    ``training_data.mmlu_gold_slice``, ids like ``mmlu/<subject>/<row>``); they
    are dropped and counted as "trained on", so every router compares on the
    same questions it never saw.
    """
    if name not in BENCHMARKS:
        raise EvalError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
    root = resolve_data_dir(data_dir)
    file = name.replace("-", "_")
    scores = load_eval_scores(root).table.frame
    if name == "mt-bench":
        turns = [f"{_SET}/mt_bench/turn1", f"{_SET}/mt_bench/turn2"]
        scores = scores.filter(pl.col("dataset").is_in(turns))
        questions = read_shipped(
            root, _SET, "mt_bench_questions", {"prompt_id": _S, "turns": pl.List(_S)}
        )
        prompts = questions.select("prompt_id", pl.col("turns").list.first().alias("prompt"))
    else:
        scores = scores.filter(pl.col("dataset") == f"{_SET}/{file}")
        prompts = scores.unique("prompt_id", maintain_order=True).select("prompt_id", "prompt")
    full = _pair_set(name, scores, prompts, DEFAULT_STRONG, DEFAULT_WEAK)
    contaminated = set(
        read_shipped(root, _SET, f"contaminated_{file}", {"eval_prompt": _S})["eval_prompt"]
    )
    ids = [i for i, p in zip(full.prompt_ids, full.prompts, strict=True) if p in contaminated]
    return full.without(ids, "contaminated").without(exclude_ids, "trained on")


def eval_file(path: str | Path, strong: str, weak: str) -> EvalSet:
    """A user's long-format scores (``prompt, model, score|correct``) as an ``EvalSet``.

    JSONL, CSV or Parquet, read by the data layer (bad records raise
    ``DataError`` with FILE:LINE). Prompts are matched by ``prompt_id`` when the
    file has one, else by text. Scores on any scale, higher is better; other
    models in the file are ignored.
    """
    strong, weak = canonical_name(strong), canonical_name(weak)
    if strong == weak:
        raise EvalError(f"strong and weak model are both {strong!r}; pick two different models")
    frame = read_scores(path).table.frame.with_columns(
        pl.coalesce("prompt_id", "prompt").alias("prompt_id")
    )
    found = sorted(frame["model"].unique().to_list())
    for model in (strong, weak):
        if model not in found:
            raise DataError.file(
                path, f"records for model {model!r}", f"only models {', '.join(found)}"
            )
    prompts = frame.unique("prompt_id", maintain_order=True).select("prompt_id", "prompt")
    return _pair_set(Path(path).name, frame, prompts, strong, weak)
