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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from prefroute.conversation import Turns
from prefroute.data import shipped
from prefroute.data.account import FileAccount
from prefroute.data.augment import battles_from_preferences, battles_from_scores
from prefroute.data.decontam import COSINE_THRESHOLD, EXTRA_SET, DecontamResult, decontaminate
from prefroute.data.files import dataset_name
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import FilterRule, ModelFilters, model_filters
from prefroute.data.prompts import read_prompts
from prefroute.data.readers import ReadReport, read_battles, read_scores
from prefroute.data.schema import Battles, Scores
from prefroute.embed import Embedder
from prefroute.errors import DataDirNotFoundError, DataError, InvalidParameterError


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
    benchmark; ``excluded``: battles per shipped set left out by request
    (``exclude_datasets``); ``dropped``: rows the shipped loaders left out (null
    labels, ...); ``not_models``: battles dropped because a side is not a model
    (``model_filters.toml``), one entry per (dataset, rule), with the reason.
    ``user_files`` are the reads of the user's files, ``accounts`` what became of
    each file's rows so far (the recipe adds its own removals), in the same order;
    ``notes`` anything else a user must hear (a skipped decontamination).
    """

    battles: Battles
    decontamination: DecontamResult[Battles]
    overlap_removed: dict[str, int]
    dropped: tuple[shipped.Dropped, ...]
    user_files: tuple[ReadReport[Any], ...]
    eval_prompt_counts: dict[str, int]
    not_models: tuple[NotModels, ...] = ()
    near_threshold: float | None = COSINE_THRESHOLD
    accounts: tuple[FileAccount, ...] = ()
    excluded: dict[str, int] = field(default_factory=dict)
    shipped_data: bool = True
    notes: tuple[str, ...] = ()

    @property
    def user_datasets(self) -> tuple[str, ...]:
        """The ``dataset`` names the user's files' battles carry (one per file)."""
        return tuple(account.dataset for account in self.accounts)

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
        that are not models, by rule (``not_models`` has each reason), then the shipped
        sets left out by request."""
        lines = [*self.notes, self.decontamination_summary()]
        if self.not_models:
            per_rule: dict[str, int] = {}
            for drop in self.not_models:
                per_rule[drop.rule.pattern] = per_rule.get(drop.rule.pattern, 0) + drop.rows
            lines.append(
                f"dropped {sum(per_rule.values()):,} battles of entries that are not models "
                f"(model_filters.toml; the reasons: prefroute data stats): "
                + ", ".join(f"{pattern} {rows:,}" for pattern, rows in per_rule.items())
            )
        if self.excluded:
            lines.append(
                f"left out {sum(self.excluded.values()):,} shipped battles of the sets "
                "excluded by request: "
                + ", ".join(f"{name} {rows:,}" for name, rows in self.excluded.items())
            )
        return lines


def collect_battles(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    score_files: Sequence[str | Path] = (),
    shipped_data: bool = True,
    eval_files: Sequence[str | Path] = (),
    exclude_datasets: Sequence[str] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    embedder: Embedder | None = None,
    threshold: float | None = COSINE_THRESHOLD,
    filters: str | Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> CollectedData:
    """Read every shipped set and the user's files, augment, then decontaminate.

    ``battle_files`` are read with ``read_battles``; ``score_files`` (per prompt
    and model: ``score`` or ``correct``) with ``read_scores`` and turned into
    battles by ``battles_from_scores`` (every pair of models scored on a prompt).
    ``shipped_data=False`` leaves the shipped sets out: the user's files alone.
    ``exclude_datasets`` leaves out shipped sets by name (a name covers its
    sub-sets: ``mmlu-pro-29model`` is both of its parts), e.g. the set a user's
    own labels were drawn from, so a benchmark of "your data plus ours" is honest.

    Sets that *contain* a benchmark (``shipped.BENCHMARK_OVERLAP``) are dropped
    by name first: their copies of MMLU/GSM8K questions are reformatted, so text
    matching alone would let some through. Then battles with a side that is not
    a model go (``model_filters.toml``, plus ``filters`` or
    ``PREFROUTE_MODEL_FILTERS``), before the costly near-duplicate search, which
    removes every battle whose prompt is (nearly) an MT-Bench, MMLU or GSM8K
    prompt, or is a prompt of one of ``eval_files`` (any file with a ``prompt``
    column, or chats: ``read_prompts``; matched exactly, after normalising: a
    user's held-out file split by prompt shares its templates with the training
    file, and near matching removed 87% of a RouterBench split as "copies").
    Without the shipped data the benchmarks' prompts are still matched when the
    data directory has them (a note says so when it does not). ``on_phase``
    hears what is being done next (a CLI shows it: the whole takes tens of
    seconds).
    """
    phase = on_phase or (lambda _: None)
    parts: list[Battles] = []
    dropped: tuple[shipped.Dropped, ...] = ()
    root = _optional_data_dir(data_dir)
    if shipped_data:
        root = resolve_data_dir(data_dir)  # here a missing directory is an error
        phase("reading the shipped data sets")
        battles = shipped.load_battles(root, turns=turns)
        scores = shipped.load_scores(root)
        prefs = shipped.load_judge_preferences(root)
        parts += [
            battles.table,
            battles_from_scores(scores.table),
            battles_from_preferences(prefs.table),
        ]
        dropped = battles.dropped + scores.dropped + prefs.dropped
    shipped_sets = {name for part in parts for name in part.frame["dataset"].unique()}
    taken = set(shipped_sets)
    if battle_files or score_files:
        phase(f"reading {len(battle_files) + len(score_files)} file(s) of yours")
    user_files: list[ReadReport[Any]] = []
    accounts: list[FileAccount] = []
    for path in battle_files:
        taken.add(name := _unique_name(dataset_name(path), taken))
        read = read_battles(path, turns=turns, skip_bad=skip_bad, dataset=name)
        user_files.append(read)
        accounts.append(_battles_account(read, name))
        parts.append(read.table)
    for path in score_files:
        taken.add(name := _unique_name(dataset_name(path), taken))
        scored = read_scores(path, skip_bad=skip_bad, dataset=name)
        made = battles_from_scores(scored.table)
        user_files.append(scored)
        accounts.append(_scores_account(scored, name, len(made)))
        parts.append(made)
    if not parts:
        raise DataError.file(
            "the training data",
            "battles or scores to train on: --battles FILE or --scores FILE (or the "
            "shipped data, without --no-shipped)",
            "no files and no shipped data",
        )
    pooled = Battles.concat(parts)
    user_sets = [account.dataset for account in accounts]
    is_user = pl.col("dataset").is_in(user_sets)
    overlapping = [name for names in shipped.BENCHMARK_OVERLAP.values() for name in names]
    is_overlap = pl.col("dataset").is_in(overlapping)
    overlap_removed = _counts(pooled.frame.filter(is_overlap))
    pooled = pooled.filter(~is_overlap)
    excluded: dict[str, int] = {}
    if exclude_datasets:
        names = list(exclude_datasets)
        prefixes = [f"{name}/" for name in names]
        is_excluded = (
            pl.col("dataset").is_in(names)
            | pl.any_horizontal([pl.col("dataset").str.starts_with(p) for p in prefixes])
        ) & ~is_user
        excluded = _counts(pooled.frame.filter(is_excluded))
        unknown = [
            n for n in names if not any(d == n or d.startswith(f"{n}/") for d in shipped_sets)
        ]
        if unknown:
            raise InvalidParameterError(
                f"exclude_datasets names no shipped data set: {unknown}; they are "
                f"{sorted(shipped_sets)}"
            )
        pooled = pooled.filter(~is_excluded)
    kept, not_models = drop_not_models(pooled, model_filters(str(filters) if filters else None))
    evals, extra_exact, notes = _eval_prompts(root, shipped_data)
    own_evals = [f"eval file {Path(path).name}" for path in eval_files]
    for name, path in zip(own_evals, eval_files, strict=True):
        evals[name] = read_prompts(path, turns=turns)[1]
    if evals:
        phase(f"decontaminating {kept.frame.height:,} battles against {', '.join(evals)}")
    result = decontaminate(
        kept,
        evals,
        embedder=embedder,
        threshold=threshold,
        extra_exact=extra_exact,
        exact_only=own_evals,
    )
    accounts = [_after_collection(a, not_models, result) for a in accounts]
    return CollectedData(
        battles=result.kept,
        decontamination=result,
        overlap_removed=overlap_removed,
        dropped=dropped,
        user_files=tuple(user_files),
        eval_prompt_counts={name: len(prompts) for name, prompts in evals.items()},
        not_models=not_models,
        near_threshold=threshold,
        accounts=tuple(accounts),
        excluded=excluded,
        shipped_data=shipped_data,
        notes=notes,
    )


def _counts(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.group_by("dataset").len().sort("dataset").iter_rows())


def _optional_data_dir(data_dir: str | Path | None) -> Path | None:
    """The data directory when there is one: without the shipped data it only
    supplies the benchmarks' prompts to decontaminate against."""
    try:
        return resolve_data_dir(data_dir)
    except DataDirNotFoundError:
        return None


def _eval_prompts(
    root: Path | None, required: bool
) -> tuple[dict[str, list[str]], list[str], tuple[str, ...]]:
    """The benchmarks' prompts, RouteLLM's contaminated train prompts, and a note
    when they are not there (only allowed without the shipped data)."""
    if root is not None:
        try:
            return shipped.eval_prompts(root), shipped.contaminated_prompts(root), ()
        except DataError:
            if required:
                raise
    where = "no data directory" if root is None else f"{root} lacks routellm-evals"
    note = (
        f"not decontaminated against MT-Bench, MMLU and GSM8K ({where}): do not evaluate "
        "this router on them"
    )
    return {}, [], (note,)


def _unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, ...: a user file's battles must be told
    apart from every other file's and from the shipped sets'."""
    candidate, n = name, 1
    while candidate in taken or any(t.startswith(f"{candidate}/") for t in taken):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _read_losses(read: ReadReport[Any]) -> dict[str, int]:
    return {"bad records skipped (--skip-bad)": read.skipped} if read.skipped else {}


def _battles_account(read: ReadReport[Battles], dataset: str) -> FileAccount:
    """A battles file: one battle per record left after the read."""
    return FileAccount(
        file=read.file,
        format=read.format,
        dataset=dataset,
        rows=read.records,
        battles=len(read.table),
        row_losses=_read_losses(read),
    )


def _scores_account(read: ReadReport[Scores], dataset: str, battles: int) -> FileAccount:
    """A scores file: rows of a model alone on its prompt make no battle; a model
    scored again on a prompt is averaged (``battles_from_scores``)."""
    frame = read.table.frame.with_columns(_key=pl.coalesce("prompt_id", "prompt"))
    per_prompt = frame.group_by("_key", "source").agg(
        rows=pl.len(), models=pl.col("model").n_unique()
    )
    alone = int(per_prompt.filter(pl.col("models") == 1)["rows"].sum())
    paired = per_prompt.filter(pl.col("models") > 1)
    losses = _read_losses(read)
    if alone:
        losses["no other model scored on the prompt"] = alone
    return FileAccount(
        file=read.file,
        format=read.format,
        dataset=dataset,
        rows=read.records,
        battles=battles,
        row_losses=losses,
        averaged=int((paired["rows"] - paired["models"]).sum()),
    )


def _after_collection(
    account: FileAccount, not_models: Sequence[NotModels], result: DecontamResult[Battles]
) -> FileAccount:
    """The account with the file's battles that collection removed, per reason."""
    for drop in not_models:
        if drop.dataset == account.dataset:
            reason = f"not a model ({', '.join(drop.models)}: rule {drop.rule.pattern!r} in "
            account = account.with_removed(f"{reason}{Path(drop.rule.source).name})", drop.rows)
    for (dataset, eval_set), rows in result.by_eval_set.items():
        if dataset == account.dataset:
            what = "RouteLLM's contaminated prompts" if eval_set == EXTRA_SET else eval_set
            account = account.with_removed(f"eval contamination ({what})", rows)
    return account


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
