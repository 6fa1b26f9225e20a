"""All the training data there is, as one decontaminated ``Battles`` table.

The shipped pairwise sets, the user's battle files, golden correctness and
judge grades (every pair of models on a prompt), and AlpacaEval's judge
preferences, with the eval benchmarks removed. ``data stats`` summarises this
table and the training recipe builds on it, so both see the same data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from prefroute.conversation import Turns
from prefroute.data import shipped
from prefroute.data.augment import battles_from_preferences, battles_from_scores
from prefroute.data.decontam import COSINE_THRESHOLD, DecontamResult, decontaminate
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.readers import ReadReport, read_battles
from prefroute.data.schema import Battles
from prefroute.embed import Embedder


@dataclass(frozen=True)
class CollectedData:
    """The decontaminated battles and everything a user must hear about how they were made."""

    battles: Battles
    decontamination: DecontamResult[Battles]
    overlap_removed: dict[str, int]
    dropped: tuple[shipped.Dropped, ...]
    user_files: tuple[ReadReport[Battles], ...]
    eval_prompt_counts: dict[str, int]


def collect_battles(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    embedder: Embedder | None = None,
    threshold: float | None = COSINE_THRESHOLD,
    on_phase: Callable[[str], None] | None = None,
) -> CollectedData:
    """Read every shipped set and the user's files, augment, then decontaminate.

    Sets that *contain* a benchmark (``shipped.BENCHMARK_OVERLAP``) are dropped
    by name first: their copies of MMLU/GSM8K questions are reformatted, so text
    matching alone would let some through. ``on_phase`` hears what is being done
    next (a CLI shows it: the whole takes tens of seconds).
    """
    phase = on_phase or (lambda _: None)
    root = resolve_data_dir(data_dir)
    phase("reading the shipped data sets")
    battles = shipped.load_battles(root, turns=turns)
    scores = shipped.load_scores(root)
    prefs = shipped.load_judge_preferences(root)
    if battle_files:
        phase(f"reading {len(battle_files)} battle file(s)")
    user_files = tuple(read_battles(path, turns=turns, skip_bad=skip_bad) for path in battle_files)
    pooled = Battles.concat(
        [
            battles.table,
            *(report.table for report in user_files),
            battles_from_scores(scores.table),
            battles_from_preferences(prefs.table),
        ]
    )
    overlapping = [name for names in shipped.BENCHMARK_OVERLAP.values() for name in names]
    is_overlap = pl.col("dataset").is_in(overlapping)
    overlap_removed = dict(
        pooled.frame.filter(is_overlap).group_by("dataset").len().sort("dataset").iter_rows()
    )
    evals = shipped.eval_prompts(root)
    phase(f"decontaminating {pooled.frame.height:,} battles against {', '.join(evals)}")
    result = decontaminate(
        pooled.filter(~is_overlap),
        evals,
        embedder=embedder,
        threshold=threshold,
        extra_exact=shipped.contaminated_prompts(root),
    )
    return CollectedData(
        battles=result.kept,
        decontamination=result,
        overlap_removed=overlap_removed,
        dropped=battles.dropped + scores.dropped + prefs.dropped,
        user_files=user_files,
        eval_prompt_counts={name: len(prompts) for name, prompts in evals.items()},
    )
