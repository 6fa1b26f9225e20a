"""Evaluation sets: every benchmark and user file in one shape, ``EvalSet``.

An eval set is a list of prompts, each with the strong and the weak model's
quality on it. The paper's three benchmarks come from ``routellm-evals`` for
its pair (gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1):

- ``mt-bench``: 80 questions, GPT-4 judge 1-10 per model and turn; quality is
  the mean of a question's judged turns (judge failures left out); a router
  sees the first turn, the text it would route on;
- ``mmlu`` (14,042 questions) and ``gsm8k`` (1,319): correctness 0/1.

RouteLLM's contaminated eval prompts (near-copies of its Arena training data)
are dropped, as the paper did: 72, 14,037 and 1,307 prompts remain.

A user's file becomes a set too (``eval_file``), in either format the training
readers take, told apart by its columns as they do:

- scores (``prompt, model, score|correct``): quality is the score, averaged
  over a model's rows for a prompt;
- battles (``prompt, model_a, model_b, winner``, or the arena formats): quality
  is the strong model's result against the weak one, win 1 / tie 0.5 / loss 0
  (``OUTCOME_SCORE``, weighted by ``weight``), and the weak model's is its
  complement, so the curve is the share of the held-out wins recovered.

Every prompt left out is counted in ``EvalSet.dropped`` and every row of a file
not used in ``FileSource.ignored``, each with its reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefroute.data.fields import FieldProblems, number_values
from prefroute.data.files import Rows, load_rows
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK, canonical_name, canonicalise
from prefroute.data.readers import FORMATS, read_battles, read_scores
from prefroute.data.schema import OUTCOME_SCORE
from prefroute.data.shipped import load_eval_scores, read_shipped
from prefroute.errors import DataError, EvalError
from prefroute.prices import TokenMix

__all__ = ["BENCHMARKS", "EvalSet", "FileSource", "benchmark", "eval_file"]

BENCHMARKS = ("mt-bench", "mmlu", "gsm8k")
_SET = "routellm-evals"
_S = pl.String()
_QUALITY = {"mt-bench": "MT-Bench score (1-10)", "mmlu": "accuracy", "gsm8k": "accuracy"}
WIN_RATE = "win rate against the other model (win 1, tie 0.5, loss 0)"
TOKEN_COLUMNS = (("input_tokens", "output_tokens"), ("prompt_tokens", "completion_tokens"))
"""Per-row token counts an eval file may carry (ours, or OpenAI's ``usage`` names):
when present, savings are priced at each model's own mean call."""
Pair = tuple[str, str]


@dataclass(frozen=True)
class FileSource:
    """What a user's eval file held and what of it the set uses: the report's account.

    ``rows`` counts the file's records and ``used`` those that went into the set;
    ``ignored`` counts the others by reason, each read after "N rows": "of other
    models" (or pairs), "of prompts left out", "of weight 0", "bad, skipped".
    ``pair_choice`` says how the pair was chosen when it was not given; ``tokens``
    are each model's mean tokens a call from the file's token columns, if any.
    """

    file: str
    format: str
    rows: int
    used: int
    ignored: Mapping[str, int] = field(default_factory=dict)
    pair_choice: str | None = None
    tokens: Mapping[str, TokenMix] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "format": self.format,
            "rows": self.rows,
            "rows_used": self.used,
            "rows_ignored": dict(self.ignored),
            "pair_choice": self.pair_choice,
            "tokens": {
                m: {"input": t.input_tokens, "output": t.output_tokens, "source": t.source}
                for m, t in self.tokens.items()
            },
        }


@dataclass(frozen=True, eq=False)
class EvalSet:
    """Prompts with both models' quality on each; what every metric is computed on.

    ``prompts`` are the texts a router scores (MT-Bench: the first turn);
    ``dropped`` counts the prompts left out, by reason; ``quality`` says what the
    qualities are (the plot's axis); ``source`` describes a user's file.
    """

    name: str
    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    strong_quality: np.ndarray
    weak_quality: np.ndarray
    strong_model: str
    weak_model: str
    dropped: Mapping[str, int] = field(default_factory=dict)
    quality: str = "mean quality"
    source: FileSource | None = None

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
            quality=self.quality,
            source=self.source,
        )

    def to_dict(self) -> dict:
        """The set's description for JSON (not its prompts)."""
        return {
            "name": self.name,
            "strong_model": self.strong_model,
            "weak_model": self.weak_model,
            "n_prompts": len(self),
            "quality_measure": self.quality,
            "strong_quality": float(self.strong_quality.mean()),
            "weak_quality": float(self.weak_quality.mean()),
            "dropped": dict(self.dropped),
            "file": self.source.to_dict() if self.source is not None else None,
        }


def _pair_set(
    name: str,
    scores: pl.DataFrame,
    prompts: pl.DataFrame,
    strong: str,
    weak: str,
    *,
    quality: str,
    source: FileSource | None = None,
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
        ("without a score for either model", pl.col("s").is_null() & pl.col("w").is_null()),
        (f"without a score for {strong}", pl.col("s").is_null() & pl.col("w").is_not_null()),
        (f"without a score for {weak}", pl.col("w").is_null() & pl.col("s").is_not_null()),
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
        quality=quality,
        source=source,
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
    full = _pair_set(name, scores, prompts, DEFAULT_STRONG, DEFAULT_WEAK, quality=_QUALITY[name])
    contaminated = set(
        read_shipped(root, _SET, f"contaminated_{file}", {"eval_prompt": _S})["eval_prompt"]
    )
    ids = [i for i, p in zip(full.prompt_ids, full.prompts, strict=True) if p in contaminated]
    return full.without(ids, "contaminated").without(exclude_ids, "trained on")


def eval_file(
    path: str | Path,
    strong: str | None = None,
    weak: str | None = None,
    *,
    skip_bad: bool = False,
    prefer: Sequence[Pair] = (),
) -> EvalSet:
    """A user's scores or battles (JSONL, CSV or Parquet) as an ``EvalSet`` for one pair.

    The format is told from the columns, as the training readers do, and the
    file is read by them (bad records raise ``DataError`` with FILE:LINE, or are
    skipped and counted with ``skip_bad``). Prompts are matched by ``prompt_id``
    when the file has one, else by text; models by canonical name.

    Without ``strong``/``weak`` the pair is the first of ``prefer`` (the routers'
    own pairs) the file has, else the file's only pair (scores) or its most
    frequent one (battles); the strong model is then the better of the two on
    the file, and ``source.pair_choice`` says so.
    """
    if (strong is None) != (weak is None):
        raise EvalError("give both the strong and the weak model of the eval file, or neither")
    given = None if strong is None or weak is None else _pair(strong, weak)
    rows = load_rows(path)
    columns = set(rows.columns)
    if columns & {"model_a", "conversation_a"}:
        return _battles_set(path, given, prefer, skip_bad)
    if "model" in columns:
        return _scores_set(path, rows, given, prefer, skip_bad)
    raise DataError.file(
        path,
        "an eval file of scores (prompt, model, score|correct) or battles (prompt, model_a, "
        "model_b, winner)",
        f"columns {', '.join(rows.columns) or 'none'}",
    )


def _pair(strong: str, weak: str) -> Pair:
    strong, weak = canonical_name(strong), canonical_name(weak)
    if strong == weak:
        raise EvalError(f"strong and weak model are both {strong!r}; pick two different models")
    return strong, weak


def _choose_pair(
    path: str | Path,
    given: Pair | None,
    prefer: Sequence[Pair],
    counts: Mapping[frozenset[str], int],
    advantage: Mapping[str, float],
    unit: str,
) -> tuple[Pair, str | None]:
    """The pair to evaluate and, when it was not given, how it was chosen.

    ``counts`` holds each pair the file has (``unit``s of it); ``advantage`` the
    models' quality on the file, which orients a chosen pair (strong = better).
    """
    if given is not None:
        return given, None
    for pair in prefer:
        pair = _pair(*pair)
        if frozenset(pair) in counts:
            return pair, f"the router's own pair, found in {Path(path).name}"
    if not counts:
        raise EvalError(f"{path}: no pair of models with {unit} on the same prompts")
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], sorted(kv[0])))
    if unit == "prompts" and len(ranked) > 1:
        models = sorted({m for found in counts for m in found})
        raise EvalError(
            f"{path} scores {len(models)} models ({', '.join(models[:12])}"
            f"{', ...' if len(models) > 12 else ''}); say which pair to evaluate with "
            "--strong and --weak"
        )
    top, n = ranked[0]
    a, b = sorted(top, key=lambda m: (-advantage[m], m))
    tied = sum(count == n for _, count in ranked)
    if len(ranked) == 1:
        which = "its only pair"
    elif tied == 1:
        which = f"its most frequent of {len(ranked)} pairs"
    else:
        which = f"the first by name of its {tied} most frequent pairs (of {len(ranked)})"
    return (a, b), (
        f"{which} ({n:,} {unit}); strong is the better of the two on the file "
        f"({advantage[a]:.3f} vs {advantage[b]:.3f}); pass --strong/--weak to choose"
    )


def _scores_set(
    path: str | Path, rows: Rows, given: Pair | None, prefer: Sequence[Pair], skip_bad: bool
) -> EvalSet:
    """Long-format scores: other models in the file are ignored and counted."""
    report = read_scores(path, skip_bad=skip_bad)
    frame = report.table.frame.with_columns(pl.coalesce("prompt_id", "prompt").alias("prompt_id"))
    means = frame.group_by("prompt_id", "model").agg(pl.col("score").mean())
    models = sorted(frame["model"].unique().to_list())
    scored = {m: set(means.filter(pl.col("model") == m)["prompt_id"]) for m in models}
    counts = {
        frozenset((a, b)): len(scored[a] & scored[b])
        for i, a in enumerate(models)
        for b in models[i + 1 :]
        if scored[a] & scored[b]
    }
    mean_score = {
        m: float(means.filter(pl.col("model") == m)["score"].to_numpy().mean()) for m in models
    }
    (strong, weak), choice = _choose_pair(path, given, prefer, counts, mean_score, "prompts")
    for model in (strong, weak):
        if model not in models:
            raise DataError.file(
                path, f"records for model {model!r}", f"only models {', '.join(models)}"
            )
    in_pair = frame.filter(pl.col("model").is_in([strong, weak]))
    prompts = frame.unique("prompt_id", maintain_order=True).select("prompt_id", "prompt")
    quality = "mean score" if "score" in rows.columns else "share correct"
    built = _pair_set(Path(path).name, in_pair, prompts, strong, weak, quality=quality)
    used = in_pair.filter(pl.col("prompt_id").is_in(built.prompt_ids)).height
    ignored = {
        "bad, skipped (--skip-bad)": report.skipped,
        "of other models": frame.height - in_pair.height,
        "of prompts left out": in_pair.height - used,
    }
    source = FileSource(
        file=str(path),
        format=FORMATS["scores"],
        rows=report.records,
        used=used,
        ignored={k: v for k, v in ignored.items() if v},
        pair_choice=choice,
        tokens=_token_mixes(rows, (strong, weak)),
    )
    return dataclasses.replace(built, source=source)


def _battles_set(
    path: str | Path, given: Pair | None, prefer: Sequence[Pair], skip_bad: bool
) -> EvalSet:
    """Battles of one pair: each prompt's quality is the strong model's weighted mean result
    against the weak one (``OUTCOME_SCORE``), the weak model's its complement."""
    report = read_battles(path, skip_bad=skip_bad)
    outcome = (
        pl.col("winner").cast(pl.String).replace_strict(OUTCOME_SCORE, return_dtype=pl.Float64)
    )
    frame = report.table.frame.with_columns(
        pl.coalesce("prompt_id", "prompt").alias("prompt_id"),
        pl.min_horizontal("model_a", "model_b").alias("_lo"),
        pl.max_horizontal("model_a", "model_b").alias("_hi"),
        outcome.alias("_a_score"),
    )
    weighted = frame.filter(pl.col("weight") > 0)
    pairs = weighted.group_by("_lo", "_hi").agg(pl.len().alias("n"))
    counts = {frozenset((r["_lo"], r["_hi"])): r["n"] for r in pairs.iter_rows(named=True)}
    results = pl.concat(
        [
            weighted.select(pl.col("model_a").alias("model"), "_a_score", "weight"),
            weighted.select(
                pl.col("model_b").alias("model"),
                (1 - pl.col("_a_score")).alias("_a_score"),
                "weight",
            ),
        ]
    )
    win_rate = {
        r["model"]: r["rate"]
        for r in results.group_by("model")
        .agg(((pl.col("_a_score") * pl.col("weight")).sum() / pl.col("weight").sum()).alias("rate"))
        .iter_rows(named=True)
    }
    (strong, weak), choice = _choose_pair(path, given, prefer, counts, win_rate, "battles")
    if frozenset((strong, weak)) not in counts:
        found = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
        shown = "; ".join(f"{' vs '.join(sorted(p))} ({n:,})" for p, n in found) or "none"
        raise DataError.file(path, f"battles between {strong} and {weak}", f"pairs {shown}")
    in_pair = weighted.filter(
        pl.col("_lo") == min(strong, weak), pl.col("_hi") == max(strong, weak)
    )
    zero = frame.height - weighted.height
    ignored = {
        "bad, skipped (--skip-bad)": report.skipped,
        "of other pairs": weighted.height - in_pair.height,
        "of weight 0": zero,
    }
    strong_result = (
        pl.when(pl.col("model_a") == strong)
        .then(pl.col("_a_score"))
        .otherwise(1 - pl.col("_a_score"))
    )
    per_prompt = in_pair.group_by("prompt_id", maintain_order=True).agg(
        pl.col("prompt").first(),
        ((strong_result * pl.col("weight")).sum() / pl.col("weight").sum()).alias("s"),
    )
    quality = per_prompt["s"].to_numpy().astype(np.float64)
    return EvalSet(
        name=Path(path).name,
        prompt_ids=tuple(per_prompt["prompt_id"].to_list()),
        prompts=tuple(per_prompt["prompt"].to_list()),
        strong_quality=quality,
        weak_quality=1.0 - quality,
        strong_model=strong,
        weak_model=weak,
        quality=WIN_RATE,
        source=FileSource(
            file=str(path),
            format=FORMATS[report.format],
            rows=report.records,
            used=in_pair.height,
            ignored={k: v for k, v in ignored.items() if v},
            pair_choice=choice,
        ),
    )


def _token_mixes(rows: Rows, models: Pair) -> dict[str, TokenMix]:
    """Each model's mean input and output tokens a call, from the file's token columns.

    Rows whose counts are not numbers >= 0 are left out of the mean (the counts
    only price the calls; the mix says how many rows it comes from).
    """
    columns = next((c for c in TOKEN_COLUMNS if set(c) <= set(rows.columns)), None)
    if columns is None:
        return {}
    ignore = FieldProblems()
    counts = pl.DataFrame(
        {
            "model": pl.Series([v if isinstance(v, str) else None for v in rows.values("model")]),
            "input": number_values(rows.values(columns[0]), columns[0], ignore, "a count"),
            "output": number_values(rows.values(columns[1]), columns[1], ignore, "a count"),
        }
    ).with_columns(canonicalise(pl.col("model")).alias("model"))
    usable = counts.drop_nulls().filter(
        pl.col("input").is_finite(), pl.col("output").is_finite(),
        pl.col("input") >= 0, pl.col("output") >= 0,
    )  # fmt: skip
    mixes = {}
    for model in models:
        mine = usable.filter(pl.col("model") == model)
        if mine.height:
            mixes[model] = TokenMix(
                float(mine["input"].mean()),  # type: ignore[arg-type]
                float(mine["output"].mean()),  # type: ignore[arg-type]
                f"mean {'/'.join(columns)} of {mine.height:,} rows in {Path(rows.file).name}",
            )
    return mixes
