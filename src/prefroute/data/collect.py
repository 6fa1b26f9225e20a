"""All the training data there is, as one decontaminated ``Battles`` table.

The shipped pairwise sets, the user's battle files, golden correctness and
judge grades (every pair of models on a prompt), and AlpacaEval's judge
preferences, with the eval benchmarks removed and the entries that are not
models (``model_filters.toml``) dropped. The training recipe builds on this
table and ``data stats`` summarises the recipe's result, so both see the same
data. Every row that leaves is counted with its reason.
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
from prefroute.data.model_names import FilterRule, ModelFilters, model_filters
from prefroute.data.readers import ReadReport, read_battles
from prefroute.data.schema import Battles
from prefroute.embed import Embedder


@dataclass(frozen=True)
class NotModels:
    """Battles of one dataset dropped by one ``model_filters.toml`` rule: a side is not a model."""

    dataset: str
    models: tuple[str, ...]
    rule: FilterRule
    rows: int

    def __str__(self) -> str:
        return (
            f"{self.dataset}: dropped {self.rows:,} battles of {', '.join(self.models)} "
            f"({self.rule.describe()})"
        )


@dataclass(frozen=True)
class CollectedData:
    """The decontaminated battles and everything a user must hear about how they were made.

    ``overlap_removed``: battles per set dropped whole because the set contains a
    benchmark; ``dropped``: rows the shipped loaders left out (null labels, ...);
    ``not_models``: battles dropped because a side is not a model
    (``model_filters.toml``), one entry per (dataset, rule), with the reason.
    """

    battles: Battles
    decontamination: DecontamResult[Battles]
    overlap_removed: dict[str, int]
    dropped: tuple[shipped.Dropped, ...]
    user_files: tuple[ReadReport[Battles], ...]
    eval_prompt_counts: dict[str, int]
    not_models: tuple[NotModels, ...] = ()
    near_threshold: float | None = COSINE_THRESHOLD

    @property
    def n_contaminated(self) -> int:
        """Battles removed as eval contamination: matched prompts plus sets dropped whole."""
        return self.decontamination.n_removed + sum(self.overlap_removed.values())

    def decontamination_summary(self) -> str:
        """One line that adds up: the total, then each part it is the sum of.

        Rows are battles (a pair of models on a prompt), so a set of per-model
        scores counts every pair of its models on each removed question.
        """
        by_reason = self.decontamination.by_reason
        near = "near" if self.near_threshold is None else f"near (cosine >= {self.near_threshold})"
        parts = [
            f"{by_reason.get('exact', 0):,} exact",
            f"{by_reason.get('near', 0):,} {near}",
        ]
        line = (
            f"removed {self.n_contaminated:,} battles as eval contamination = "
            f"{' + '.join(parts)} matches of an eval prompt"
        )
        if self.overlap_removed:
            benchmark_of = {
                name: benchmark
                for benchmark, names in shipped.BENCHMARK_OVERLAP.items()
                for name in names
            }
            sets = ", ".join(
                f"{name} ({benchmark_of.get(name, 'benchmark')}) {rows:,}"
                for name, rows in self.overlap_removed.items()
            )
            line += (
                f" + {sum(self.overlap_removed.values()):,} in {len(self.overlap_removed)} "
                f"sets dropped whole for containing a benchmark: {sets}"
            )
        return line

    def removal_lines(self) -> list[str]:
        """What left the data on the way to the fit: contamination, then the entries
        that are not models, by rule (``not_models`` has each reason)."""
        lines = [self.decontamination_summary()]
        if self.not_models:
            per_rule: dict[str, int] = {}
            for drop in self.not_models:
                per_rule[drop.rule.pattern] = per_rule.get(drop.rule.pattern, 0) + drop.rows
            lines.append(
                f"dropped {sum(per_rule.values()):,} battles of entries that are not models "
                f"(model_filters.toml; the reasons: prefroute data stats): "
                + ", ".join(f"{pattern} {rows:,}" for pattern, rows in per_rule.items())
            )
        return lines


def collect_battles(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    embedder: Embedder | None = None,
    threshold: float | None = COSINE_THRESHOLD,
    filters: str | Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> CollectedData:
    """Read every shipped set and the user's files, augment, then decontaminate.

    Sets that *contain* a benchmark (``shipped.BENCHMARK_OVERLAP``) are dropped
    by name first: their copies of MMLU/GSM8K questions are reformatted, so text
    matching alone would let some through. Then battles with a side that is not
    a model go (``model_filters.toml``, plus ``filters`` or
    ``PREFROUTE_MODEL_FILTERS``), before the costly near-duplicate search.
    ``on_phase`` hears what is being done next (a CLI shows it: the whole takes
    tens of seconds).
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
    kept, not_models = drop_not_models(
        pooled.filter(~is_overlap), model_filters(str(filters) if filters else None)
    )
    evals = shipped.eval_prompts(root)
    phase(f"decontaminating {kept.frame.height:,} battles against {', '.join(evals)}")
    result = decontaminate(
        kept,
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
        not_models=not_models,
        near_threshold=threshold,
    )


def drop_not_models(
    battles: Battles, filters: ModelFilters
) -> tuple[Battles, tuple[NotModels, ...]]:
    """``battles`` without the rows where a side is not a model, and the drops per
    (dataset, rule). A row with both sides caught counts under model_a's rule."""
    names = set(battles.frame["model_a"].drop_nulls()) | set(battles.frame["model_b"].drop_nulls())
    rules = {name: rule for name in sorted(names) if (rule := filters.rule(name)) is not None}
    if not rules:
        return battles, ()
    caught_names = list(rules)
    caught = pl.col("model_a").is_in(caught_names) | pl.col("model_b").is_in(caught_names)
    side = (
        pl.when(pl.col("model_a").is_in(caught_names))
        .then(pl.col("model_a"))
        .otherwise(pl.col("model_b"))
    )
    index = {rule: i for i, rule in enumerate(filters.drop)}
    rule_of = {name: index[rule] for name, rule in rules.items()}
    counts = (
        battles.frame.filter(caught)
        .select(dataset=pl.col("dataset").cast(pl.String), model=side)
        .with_columns(rule=pl.col("model").replace_strict(rule_of, return_dtype=pl.Int64))
        .group_by("dataset", "rule")
        .agg(models=pl.col("model").unique().sort(), rows=pl.len())
        .sort("dataset", "rule")
    )
    dropped = tuple(
        NotModels(dataset, tuple(models), filters.drop[rule], rows)
        for dataset, rule, models, rows in counts.iter_rows()
    )
    return Battles(battles.frame.filter(~caught)), dropped
