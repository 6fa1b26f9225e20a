"""The training recipe: one function every router and the quickstart train from.

All human battles, judge preferences and golden labels, with canonical
model names, decontaminated against MT-Bench, MMLU and GSM8K before every
fit, weighted by label source. As the paper's D_gold, a fixed seeded slice of
MMLU questions with golden labels for the strong/weak pair may join the
training data; the slice's ids travel with the artifact so the evaluation
leaves exactly those questions out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from prefroute.conversation import Turns
from prefroute.data import shipped
from prefroute.data.augment import battles_from_scores
from prefroute.data.collect import CollectedData, collect_battles
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK
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


@dataclass(frozen=True)
class TrainingSet:
    """Battles to fit on, the model tiers behind the labels, and where it all came from.

    ``ratings`` is ``tiers.rating_table`` of exactly ``battles`` (weights and gold
    slice included), without bootstrap intervals: the tiers a label-head
    router's fit computes from them. ``rating_table(n_bootstrap)`` recomputes it
    with intervals (same ratings and tiers).
    """

    battles: Battles
    ratings: pl.DataFrame
    gold_slice_ids: tuple[str, ...]
    collected: CollectedData = field(repr=False)
    n_tiers: int = 10
    min_battles: int = MIN_BATTLES
    random_state: int = 0

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


def training_set(
    data_dir: str | Path | None = None,
    *,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    source_weights: Mapping[str, float] | None = None,
    strong_model: str = DEFAULT_STRONG,
    weak_model: str = DEFAULT_WEAK,
    mmlu_gold_slice: int = 0,
    gold_slice_weight: float = GOLD_SLICE_WEIGHT,
    n_tiers: int = 10,
    min_battles: int = MIN_BATTLES,
    embedder: Embedder | None = None,
    filters: str | Path | None = None,
    random_state: int = 0,
    collected: CollectedData | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> TrainingSet:
    """Collect, decontaminate, weight, optionally add the MMLU gold slice, and tier.

    ``source_weights`` multiplies each battle's weight by its label source
    (``DEFAULT_SOURCE_WEIGHTS`` for those not given; 0 drops the source). The
    defaults apply to the shipped data only: rows of the user's ``battle_files``
    keep weight 1 for every source unless ``source_weights`` names it.
    ``mmlu_gold_slice`` > 0 adds that many MMLU questions (seeded by
    ``random_state``) as golden battles between ``strong_model`` and
    ``weak_model``, each weighing ``gold_slice_weight``; they are eval questions,
    so they must be left out of the MMLU evaluation: ``gold_slice_ids`` lists them.

    Tiers go to models with at least ``min_battles`` battles here (see
    ``tiers.rating_table``); ``filters`` adds a model filter file to
    ``model_filters.toml`` (entries that are not models, dropped and reported).

    ``collected`` reuses one ``collect_battles`` result for several training sets
    (collecting and decontaminating is the slow part); ``data_dir`` still locates
    the gold slice, and the collection arguments (``battle_files``, ``skip_bad``,
    ``turns``, ``embedder``, ``filters``) must then stay at their defaults.
    ``on_phase`` hears the collection's slow steps (``collect_battles``).
    """
    weights = DEFAULT_SOURCE_WEIGHTS | dict(source_weights or {})
    unknown = sorted(set(weights) - set(SOURCES))
    if unknown:
        raise InvalidParameterError(
            f"unknown label sources {unknown}; expected some of {list(SOURCES)}"
        )
    if collected is None:
        collected = collect_battles(
            data_dir,
            battle_files=battle_files,
            skip_bad=skip_bad,
            turns=turns,
            embedder=embedder,
            filters=filters,
            on_phase=on_phase,
        )
    else:
        given = [
            name
            for name, is_given in (
                ("battle_files", bool(battle_files)),
                ("skip_bad", skip_bad),
                ("turns", turns != "first"),
                ("embedder", embedder is not None),
                ("filters", filters is not None),
            )
            if is_given
        ]
        if given:
            raise ValueError(
                f"{', '.join(given)} given with collected=: the battles are already "
                "collected; pass them to collect_battles instead"
            )
    parts = [collected.battles]
    slice_ids: tuple[str, ...] = ()
    if mmlu_gold_slice > 0:
        gold, slice_ids = _mmlu_gold_slice(
            resolve_data_dir(data_dir), mmlu_gold_slice, (strong_model, weak_model), random_state
        )
        parts.append(Battles(gold.frame.with_columns(weight=pl.col("weight") * gold_slice_weight)))
    battles = Battles.concat(parts)
    # The defaults are for the shipped data; the user's own files get only the weights asked for.
    user_sets = {d for r in collected.user_files for d in r.table.frame["dataset"].unique()}
    user_weights = dict.fromkeys(SOURCES, 1.0) | dict(source_weights or {})
    source = pl.col("source").cast(pl.String)
    battles = Battles(
        battles.frame.with_columns(
            weight=pl.col("weight")
            * pl.when(pl.col("dataset").is_in(sorted(user_sets)))
            .then(source.replace_strict(user_weights, return_dtype=pl.Float32))
            .otherwise(source.replace_strict(weights, return_dtype=pl.Float32))
        ).filter(pl.col("weight") > 0)
    )
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
        n_tiers=n_tiers,
        min_battles=min_battles,
        random_state=random_state,
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
