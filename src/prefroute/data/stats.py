"""``prefroute data stats``: what the training data is, in numbers.

Counts per data set and label source, model ratings with confidence
intervals and tiers, and what decontamination removed, as rich tables for
people and as a plain dict for ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from prefroute.data.collect import CollectedData, collect_battles
from prefroute.data.tiers import rating_table

OVERLAP_REASON = "set contains a benchmark"


@dataclass(frozen=True)
class DataSummary:
    """The numbers ``data stats`` prints."""

    per_dataset: pl.DataFrame  # dataset, source, battles, prompts, models
    ratings: pl.DataFrame  # model, rating, ci_low, ci_high, n_battles, tier
    decontamination: pl.DataFrame  # dataset, matched (eval set or overlap), removed
    notes: tuple[str, ...]
    eval_prompt_counts: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "datasets": self.per_dataset.to_dicts(),
            "ratings": self.ratings.to_dicts(),
            "decontamination": self.decontamination.to_dicts(),
            "eval_prompts": self.eval_prompt_counts,
            "notes": list(self.notes),
        }


def summarize(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    n_tiers: int = 10,
    n_bootstrap: int = 100,
    random_state: int = 0,
    on_phase: Callable[[str], None] | None = None,
) -> DataSummary:
    """Collect all training data and summarise it; ``on_phase`` hears each slow step."""
    collected = collect_battles(
        data_dir, battle_files=battle_files, skip_bad=skip_bad, on_phase=on_phase
    )
    if on_phase is not None:
        on_phase(f"fitting Bradley–Terry ratings with {n_bootstrap} bootstrap refits")
    return summarize_collected(
        collected,
        n_tiers=n_tiers,
        n_bootstrap=n_bootstrap,
        random_state=random_state,
    )


def summarize_collected(
    data: CollectedData, *, n_tiers: int = 10, n_bootstrap: int = 100, random_state: int = 0
) -> DataSummary:
    """Summarise data already collected (the quickstart collects once and reuses it)."""
    per_dataset = (
        data.battles.frame.group_by("dataset", "source")
        .agg(
            battles=pl.len(),
            prompts=pl.col("prompt").n_unique(),
            models=pl.concat_list("model_a", "model_b").explode().n_unique(),
        )
        .with_columns(pl.col("source").cast(pl.String))
        .sort("source", "dataset")
    )
    decontam = data.decontamination
    rows = [(d, e, n) for (d, e), n in decontam.by_eval_set.items()]
    rows += [(d, OVERLAP_REASON, n) for d, n in data.overlap_removed.items()]
    decontamination = pl.DataFrame(
        rows, schema={"dataset": pl.String, "matched": pl.String, "removed": pl.Int64}, orient="row"
    ).sort("dataset", "matched")
    notes = tuple(str(d) for d in data.dropped) + tuple(r.summary() for r in data.user_files)
    return DataSummary(
        per_dataset=per_dataset,
        ratings=rating_table(
            data.battles, n_tiers=n_tiers, n_bootstrap=n_bootstrap, random_state=random_state
        ),
        decontamination=decontamination,
        notes=notes,
        eval_prompt_counts=data.eval_prompt_counts,
    )


def render(summary: DataSummary, console: Console) -> None:
    """Print the summary as rich tables."""
    table = Table(title="Battles per data set (after decontamination)")
    for column in ("dataset", "source", "battles", "prompts", "models"):
        table.add_column(column, justify="left" if column in ("dataset", "source") else "right")
    for row in summary.per_dataset.iter_rows():
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    totals = summary.per_dataset.select(pl.sum("battles")).item()
    table.add_section()
    table.add_row("total", "", f"{totals:,}", "", "")
    console.print(table)

    ratings = Table(title="Model ratings (Bradley–Terry, 95% bootstrap CI) and tiers")
    for column in ("tier", "model", "rating", "95% CI", "battles"):
        ratings.add_column(column, justify="left" if column == "model" else "right")
    for r in summary.ratings.iter_rows(named=True):
        ratings.add_row(
            str(r["tier"]),
            r["model"],
            f"{r['rating']:.0f}",
            f"{r['ci_low']:.0f} – {r['ci_high']:.0f}",
            f"{r['n_battles']:,}",
        )
    console.print(ratings)

    decontam = Table(title="Removed as eval contamination (MT-Bench, MMLU, GSM8K)")
    for column in ("dataset", "matched", "rows removed"):
        decontam.add_column(column, justify="right" if column == "rows removed" else "left")
    for dataset, matched, removed in summary.decontamination.iter_rows():
        decontam.add_row(dataset, matched, f"{removed:,}")
    console.print(decontam)
    evals = ", ".join(f"{k} {v:,}" for k, v in summary.eval_prompt_counts.items())
    console.print(f"eval prompts held out: {evals}")
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False)
