"""The training recipe: one function every router and the quickstart train from.

All human battles, judge preferences and golden labels, with canonical
model names, decontaminated against MT-Bench, MMLU and GSM8K before every
fit, weighted by label source. As the paper's D_gold, a fixed seeded slice of
MMLU questions with golden labels for the strong/weak pair may join the
training data; the slice's ids travel with the artifact so the evaluation
leaves exactly those questions out.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from prefroute.conversation import Turns
from prefroute.data import shipped
from prefroute.data.account import FileAccount
from prefroute.data.augment import battles_from_scores
from prefroute.data.collect import CollectedData, collect_battles
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK, canonical_name
from prefroute.data.schema import SOURCES, Battles, Scores
from prefroute.data.tiers import MIN_BATTLES, rating_table
from prefroute.embed import Embedder
from prefroute.errors import InvalidParameterError

GOLD_SLICE_DATASET = "routellm-evals/mmlu-gold-slice"
DEFAULT_MMLU_GOLD_SLICE = 1500
"""The gold slice ``prefroute train`` adds by default, as in the paper; ``data stats``
builds the same training set, so it shows the tiers that training fits."""
GOLD_SLICE_WEIGHT = 20.0
"""Weight of each gold-slice battle. They are the only rows labelled for the
strong/weak pair itself; at weight 1 their 1,500 rows vanish among ~2.6M and MF
learns the pair's difference from other models' data. At 20, APGR for the pair
on held-out RouterBench questions (ARC, MBPP, Winogrande; not an eval set) rose
from 0.46 to 0.56 (`benchmarks/paper_table.py` shows the benchmark side)."""
DEFAULT_SOURCE_WEIGHTS: dict[str, float] = {"human": 1.0, "judge": 0.0, "golden": 1.0}
"""Judge labels are off by default: ~90% of them are AlpacaEval's, 805 prompts
whose labels favour long open-ended answers; with them MF routed MT-Bench below
random (APGR 0.35 vs 0.72 without), as ../shared/REFERENCE.md's probe also found.
Pass ``source_weights={"judge": 1.0}`` to use them."""


VALIDATION_FRACTION = 0.2
"""Share of the prompts held out for validation (early stopping and ``train``'s report):
the user's prompts when there are any, else all prompts."""
MAX_VALIDATION_PROMPTS = 1000
"""At most this many validation prompts: enough for a report (±0.03 APGR) without
taking a fifth of the shipped data's 26k prompts out of the fit."""
MIN_VALIDATION_PROMPTS = 10
"""Fewer held-out prompts than this say nothing: no validation split then."""
DEFAULT_USER_WEIGHT = 0.1
"""Share of the fit's total weight the user's rows carry when shipped data joins them.
At their natural weight 300 rows are 0.01% of 2.8M and the shipped data lowered the
user's held-out APGR by 0.05-0.09 on two of three pairs; at a share of 0.1, 0.5 or 0.9
it was at or above the labels alone on all three (mean +0.009 at 0.1, +0.007 at 0.5),
0.1 the best by a hair (``benchmarks/own_data_weight.py``, 300 labels, 3 seeds, MMLU-Pro,
LLMRouter and RouterBench pairs, the user's source set left out of the shipped data)."""
MIN_PAIR_BATTLES = 20
"""Decisive battles a model needs to be chosen as the strong or weak model."""


@dataclass(frozen=True)
class PairChoice:
    """The strong and weak model, and one line saying why these two."""

    strong: str
    weak: str
    reason: str

    def __str__(self) -> str:
        return f"pair: {self.strong} (strong) vs {self.weak} (weak), {self.reason}"


@dataclass(frozen=True)
class TrainingSet:
    """Battles to fit on, the model tiers behind the labels, and where it all came from.

    ``battles`` is what the router fits; ``validation`` the battles of the prompts
    held out (``VALIDATION_FRACTION`` of the user's prompts, or of all when the user
    gave no files), on which ``train`` stops early and reports. ``pair`` is the
    strong/weak pair, chosen from the data when not given; ``accounts`` says what
    became of each user file's rows; ``user_weight`` is the share of the fit's
    weight the user's rows carry (None: no shipped data to weigh them against);
    ``notes`` are the lines a user must hear (pair, gold slice, weights, split).

    ``ratings`` is ``tiers.rating_table`` of exactly ``battles`` (weights and gold
    slice included), without bootstrap intervals: the tiers a label-head
    router's fit computes from them. ``rating_table(n_bootstrap)`` recomputes it
    with intervals (same ratings and tiers).
    """

    battles: Battles
    ratings: pl.DataFrame
    gold_slice_ids: tuple[str, ...]
    collected: CollectedData = field(repr=False)
    pair: PairChoice = PairChoice(DEFAULT_STRONG, DEFAULT_WEAK, "the paper's pair")
    validation: Battles = field(default_factory=Battles.empty, repr=False)
    accounts: tuple[FileAccount, ...] = ()
    user_weight: float | None = None
    notes: tuple[str, ...] = ()
    n_tiers: int = 10
    min_battles: int = MIN_BATTLES
    random_state: int = 0

    @property
    def strong_model(self) -> str:
        return self.pair.strong

    @property
    def weak_model(self) -> str:
        return self.pair.weak

    @property
    def fingerprint(self) -> str:
        """sha256 over per-row hashes: same data, same fingerprint.

        NOTE: row hashes are polars', stable for one polars version; a different
        version may give another fingerprint for the same data.
        """
        rows = self.battles.frame.hash_rows(seed=0)
        return hashlib.sha256(rows.to_numpy().tobytes()).hexdigest()

    def rating_table(self, n_bootstrap: int = 0) -> pl.DataFrame:
        """``tiers.rating_table`` of ``battles`` with the settings ``ratings`` was made with."""
        return rating_table(
            self.battles,
            n_tiers=self.n_tiers,
            min_battles=self.min_battles,
            n_bootstrap=n_bootstrap,
            random_state=self.random_state,
        )

    def tiers(self) -> dict[str, int]:
        """Model -> tier, for ranked models only (see ``ratings`` for the others and why)."""
        return dict(self.ratings.drop_nulls("tier").select("model", "tier").iter_rows())

    def is_user(self) -> pl.Expr:
        """True on the rows of the user's files (each file's battles carry its own dataset)."""
        return pl.col("dataset").is_in(list(self.collected.user_datasets))


def training_set(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    score_files: Sequence[str | Path] = (),
    shipped_data: bool = True,
    eval_files: Sequence[str | Path] = (),
    exclude_datasets: Sequence[str] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    source_weights: Mapping[str, float] | None = None,
    strong_model: str | None = None,
    weak_model: str | None = None,
    mmlu_gold_slice: int | None = None,
    gold_slice_weight: float = GOLD_SLICE_WEIGHT,
    user_weight: float | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    n_tiers: int = 10,
    min_battles: int = MIN_BATTLES,
    embedder: Embedder | None = None,
    filters: str | Path | None = None,
    random_state: int = 0,
    collected: CollectedData | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TrainingSet:
    """Collect, decontaminate, weight, choose the pair, split, add the gold slice, and tier.

    The collection (``collect_battles``) reads the shipped sets unless
    ``shipped_data=False``, the user's ``battle_files`` and ``score_files``, and
    removes the prompts of the benchmarks and of ``eval_files``;
    ``exclude_datasets`` leaves shipped sets out by name.

    ``source_weights`` multiplies each battle's weight by its label source
    (``DEFAULT_SOURCE_WEIGHTS`` for those not given; 0 drops the source). The
    defaults apply to the shipped data only: rows of the user's files keep
    weight 1 for every source unless ``source_weights`` names it. With shipped
    data, the user's rows are then scaled to carry ``user_weight`` of the fit's
    total weight (default ``DEFAULT_USER_WEIGHT``), so a few hundred rows count
    beside millions.

    ``strong_model`` / ``weak_model`` (canonicalised) default to a pair chosen
    from the data (``choose_pair``): the user's files first, else the paper's pair.
    ``mmlu_gold_slice`` > 0 adds that many MMLU questions (seeded by
    ``random_state``) as golden battles between the pair, each weighing
    ``gold_slice_weight``; they are eval questions, so they must be left out of
    the MMLU evaluation: ``gold_slice_ids`` lists them. ``None`` (the default)
    adds ``DEFAULT_MMLU_GOLD_SLICE`` when the shipped MMLU answers cover the pair
    (the paper's pair only), else none, with a note.

    ``validation_fraction`` of the prompts (of the user's battles when there are
    any, else of all; seeded, at most ``MAX_VALIDATION_PROMPTS``) are held out in
    ``validation``: every battle on them leaves the fit.

    Tiers go to models with at least ``min_battles`` battles here (see
    ``tiers.rating_table``); ``filters`` adds a model filter file to
    ``model_filters.toml`` (entries that are not models, dropped and reported).

    ``collected`` reuses one ``collect_battles`` result for several training sets
    (collecting and decontaminating is the slow part); ``data_dir`` still locates
    the gold slice, and the collection arguments must then stay at their defaults.
    ``on_phase`` hears the collection's slow steps (``collect_battles``).
    """
    weights = DEFAULT_SOURCE_WEIGHTS | dict(source_weights or {})
    unknown = sorted(set(weights) - set(SOURCES))
    if unknown:
        raise InvalidParameterError(
            f"unknown label sources {unknown}; expected some of {list(SOURCES)}"
        )
    if user_weight is not None and not 0.0 < user_weight < 1.0:
        raise InvalidParameterError(
            f"user_weight is the share of the fit's weight your rows carry, in (0, 1); "
            f"got {user_weight}"
        )
    if not 0.0 <= validation_fraction < 1.0:
        raise InvalidParameterError(
            f"validation_fraction must be in [0, 1), got {validation_fraction}"
        )
    collection = {
        "battle_files": battle_files,
        "score_files": score_files,
        "shipped_data": shipped_data,
        "eval_files": eval_files,
        "exclude_datasets": exclude_datasets,
        "skip_bad": skip_bad,
        "turns": turns,
        "embedder": embedder,
        "filters": filters,
    }
    if collected is None:
        collected = collect_battles(data_dir, **collection, on_phase=on_phase)  # type: ignore[arg-type]
    else:
        defaults = {**dict.fromkeys(collection, ()), "shipped_data": True, "turns": "first"}
        defaults |= {"skip_bad": False, "embedder": None, "filters": None}
        given = [
            name
            for name, value in collection.items()
            if (tuple(value) if isinstance(value, list) else value) != defaults[name]
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} given with collected=: the battles are already "
                "collected; pass them to collect_battles instead"
            )
    if user_weight is not None and not collected.shipped_data:
        raise InvalidParameterError(
            "user_weight weighs your files against the shipped data; without the shipped "
            "data (--no-shipped) there is nothing to weigh them against"
        )
    accounts = {a.dataset: a for a in collected.accounts}
    is_user = pl.col("dataset").is_in(list(accounts))
    user_weights = dict.fromkeys(SOURCES, 1.0) | dict(source_weights or {})
    source = pl.col("source").cast(pl.String)
    factor = (
        pl.when(is_user)
        .then(source.replace_strict(user_weights, return_dtype=pl.Float32))
        .otherwise(source.replace_strict(weights, return_dtype=pl.Float32))
    )
    frame = collected.battles.frame.with_columns(
        _zero=pl.when(pl.col("weight") <= 0)
        .then(pl.lit("weight 0 (the row's own weight)"))
        .when(factor <= 0)
        .then(pl.lit("weight 0 (source ") + source + pl.lit(" weighed 0)"))
    )
    for (dataset, reason), rows in _group_counts(frame.filter(is_user), "_zero").items():
        accounts[dataset] = accounts[dataset].with_removed(reason, rows)
    weighted = Battles(
        frame.filter(pl.col("_zero").is_null())
        .drop("_zero")
        .with_columns(weight=pl.col("weight") * factor)
    )

    user_rows = Battles(weighted.frame.filter(is_user))
    pair = choose_pair(
        user_rows if accounts else weighted, strong_model, weak_model, from_files=bool(accounts)
    )
    notes = [str(pair)]

    fit, validation, split_note = _validation_split(
        weighted, is_user if accounts else None, validation_fraction, random_state
    )
    notes.append(split_note)
    for dataset, rows in _group_counts(validation.frame.filter(is_user), None).items():
        accounts[dataset] = dataclasses.replace(accounts[dataset], validation=rows)

    parts = [fit]
    slice_ids: tuple[str, ...] = ()
    size, gold_note = _gold_slice_size(
        mmlu_gold_slice, collected.shipped_data, data_dir, (pair.strong, pair.weak)
    )
    if gold_note:
        notes.append(gold_note)
    if size > 0:
        gold, slice_ids = _mmlu_gold_slice(
            resolve_data_dir(data_dir), size, (pair.strong, pair.weak), random_state
        )
        parts.append(Battles(gold.frame.with_columns(weight=pl.col("weight") * gold_slice_weight)))
    battles = Battles.concat(parts)

    share = None
    if accounts and collected.shipped_data:
        share = DEFAULT_USER_WEIGHT if user_weight is None else user_weight
        battles, validation, weight_note = _weigh_user_rows(battles, validation, is_user, share)
        notes.append(weight_note)
    for dataset, rows in _group_counts(battles.frame.filter(is_user), None).items():
        accounts[dataset] = dataclasses.replace(accounts[dataset], fit=rows)

    ratings = rating_table(
        battles,
        n_tiers=n_tiers,
        min_battles=min_battles,
        n_bootstrap=0,
        random_state=random_state,
    )
    return TrainingSet(
        battles=battles,
        ratings=ratings,
        gold_slice_ids=slice_ids,
        collected=collected,
        pair=pair,
        validation=validation,
        accounts=tuple(accounts[a.dataset] for a in collected.accounts),
        user_weight=share,
        notes=tuple(notes),
        n_tiers=n_tiers,
        min_battles=min_battles,
        random_state=random_state,
    )


def _group_counts(frame: pl.DataFrame, column: str | None) -> dict[Any, int]:
    """Rows per dataset (``column`` None) or per (dataset, value of ``column``), non-null."""
    if column is None:
        return dict(frame.group_by("dataset").len().iter_rows())
    counted = frame.filter(pl.col(column).is_not_null()).group_by("dataset", column).len()
    return {(d, v): n for d, v, n in counted.iter_rows()}


def choose_pair(
    battles: Battles,
    strong_model: str | None = None,
    weak_model: str | None = None,
    *,
    from_files: bool = True,
) -> PairChoice:
    """The strong and weak model: the given ones (canonicalised), else the extremes of
    ``battles``' Bradley-Terry ratings.

    A model not given is the highest rated (strong) or lowest rated (weak) of the
    models with at least ``MIN_PAIR_BATTLES`` decisive battles (all rated models if
    fewer than two have that many): for a user's two models, the one that wins
    more is the strong one; for N models, the top and the bottom. Without files
    of the user's (``from_files=False``) and with neither given, the paper's pair.
    """
    strong = canonical_name(strong_model) if strong_model else None
    weak = canonical_name(weak_model) if weak_model else None
    if strong and weak:
        return PairChoice(strong, weak, "as given")
    if not from_files and strong is None and weak is None:
        return PairChoice(
            DEFAULT_STRONG,
            DEFAULT_WEAK,
            "the paper's pair (no --strong/--weak, and no files of yours to choose from)",
        )
    where = "your files" if from_files else "the training data"
    table = rating_table(battles, min_battles=MIN_PAIR_BATTLES, n_bootstrap=0, n_tiers=1)
    rated = table.filter(pl.col("no_tier_reason").is_null())
    enough = f"with >= {MIN_PAIR_BATTLES} decisive battles"
    if rated.height < 2:
        rated = table.filter(~pl.col("no_tier_reason").str.starts_with("not compared"))
        enough = "rated (too few have enough battles to be sure)"
    rated = rated.sort("rating", descending=True)
    models = rated["model"].to_list()
    others = [m for m in models if m not in (strong, weak)]
    if len(others) < (2 if strong is None and weak is None else 1):
        have = ", ".join(models) or "none"
        raise InvalidParameterError(
            f"cannot choose a strong/weak pair from {where}: they compare too few models "
            f"({have}); pass --strong and --weak"
        )
    strong = strong or others[0]
    weak = weak or [m for m in others if m != strong][-1]
    rating = dict(rated.select("model", "rating").iter_rows())
    shown = "; ".join(
        f"{m} {rating[m]:.0f}" if m in rating else f"{m} (given)" for m in (strong, weak)
    )
    return PairChoice(
        strong,
        weak,
        f"chosen from {where}: the highest and lowest Bradley-Terry rating of the "
        f"{len(models)} models {enough} ({shown}); --strong/--weak pick others",
    )


def _validation_split(
    battles: Battles, pool: pl.Expr | None, fraction: float, random_state: int
) -> tuple[Battles, Battles, str]:
    """(fit, validation, note): a seeded share of ``pool``'s prompts (all when None) held
    out; every battle on those prompts leaves the fit, ``pool``'s rows form ``validation``."""
    candidates = battles.frame if pool is None else battles.frame.filter(pool)
    prompts = candidates["prompt"].unique().sort()
    size = min(MAX_VALIDATION_PROMPTS, int(fraction * len(prompts)))
    of_n = f"{'your' if pool is not None else 'the'} {len(prompts):,} prompts"
    if size < MIN_VALIDATION_PROMPTS:
        why = "none asked for" if fraction == 0 else "too few to hold some out"
        return battles, Battles.empty(), f"validation: none (of {of_n}: {why})"
    rng = np.random.default_rng(random_state)
    held = prompts.gather(np.sort(rng.choice(len(prompts), size, replace=False)))
    on_held = pl.col("prompt").is_in(held.implode())
    validation = Battles(candidates.filter(on_held))
    fit = Battles(battles.frame.filter(~on_held))
    left = len(battles) - len(fit) - len(validation)
    also = f"; {left:,} other battles on those prompts also left the fit" if left else ""
    note = (
        f"validation: {size:,} of {of_n} held out (seed {random_state}), "
        f"{len(validation):,} battles{also}"
    )
    return fit, validation, note


def _gold_slice_size(
    asked: int | None, shipped_data: bool, data_dir: str | Path | None, pair: tuple[str, str]
) -> tuple[int, str | None]:
    """How many gold-slice questions to add, and the note when it is none."""
    if asked == 0:
        return 0, None
    if not shipped_data:
        if asked is not None:
            raise InvalidParameterError(
                "the MMLU gold slice is shipped data; without the shipped data "
                "(--no-shipped) there is none to add: leave mmlu_gold_slice at 0"
            )
        return 0, "MMLU gold slice: none (no shipped data)"
    have = _mmlu_models(resolve_data_dir(data_dir))
    if all(m in have for m in pair):
        return DEFAULT_MMLU_GOLD_SLICE if asked is None else asked, None
    if asked is not None:
        raise InvalidParameterError(
            f"mmlu_gold_slice={asked}, but the shipped MMLU answers are of "
            f"{' and '.join(sorted(have))} only, not of {' and '.join(pair)}; "
            "leave mmlu_gold_slice at 0 (or unset) for this pair"
        )
    return 0, (
        f"MMLU gold slice: none (the shipped MMLU answers are of {' and '.join(sorted(have))} only)"
    )


def _mmlu_models(root: Path) -> set[str]:
    frame = shipped.load_eval_scores(root).table.frame
    return set(frame.filter(pl.col("dataset") == "routellm-evals/mmlu")["model"].unique())


def _weigh_user_rows(
    fit: Battles, validation: Battles, is_user: pl.Expr, share: float
) -> tuple[Battles, Battles, str]:
    """Scale the user's rows (fit and validation alike) so that in a fit on both they carry
    ``share`` of the total weight; says so."""
    user = float(pl.concat([fit.frame, validation.frame]).filter(is_user)["weight"].sum() or 0.0)
    rest = float(fit.frame.filter(~is_user)["weight"].sum() or 0.0)
    if user == 0 or rest == 0:
        return fit, validation, "weights: only your rows are left in the fit"
    factor = share * rest / ((1.0 - share) * user)
    scale = pl.when(is_user).then(pl.col("weight") * factor).otherwise(pl.col("weight"))
    n_user = fit.frame.select(is_user.sum()).item() + len(validation)
    note = (
        f"weights: your {n_user:,} battles carry {share:.0%} of the fit's weight (each x "
        f"{factor:,.4g}; --user-weight sets the share), the shipped data's "
        f"{fit.frame.select((~is_user).sum()).item():,} the rest"
    )
    return (
        Battles(fit.frame.with_columns(weight=scale)),
        Battles(validation.frame.with_columns(weight=scale)),
        note,
    )


def _mmlu_gold_slice(
    root: Path, size: int, pair: tuple[str, str], random_state: int
) -> tuple[Battles, tuple[str, ...]]:
    """A seeded slice of MMLU questions as golden battles between the pair."""
    mmlu = shipped.load_eval_scores(root).table.frame.filter(
        (pl.col("dataset") == "routellm-evals/mmlu") & pl.col("model").is_in(pair)
    )
    ids = np.array(sorted(mmlu["prompt_id"].unique().to_list()))
    if size > len(ids):
        raise InvalidParameterError(
            f"mmlu_gold_slice={size}, but MMLU has only {len(ids)} questions"
        )
    chosen = tuple(sorted(np.random.default_rng(random_state).choice(ids, size, replace=False)))
    slice_scores = Scores(
        mmlu.filter(pl.col("prompt_id").is_in(chosen)).with_columns(
            dataset=pl.lit(GOLD_SLICE_DATASET)
        )
    )
    return battles_from_scores(slice_scores), chosen
