"""Bradley-Terry ratings from battles, and model tiers from the ratings.

The paper groups Chatbot Arena's models into 10 tiers by rating and trains on
"tier 1-2 vs tier 3" battles, so a router learns *strong vs weak* rather than
one pair of names. Ratings are computed the way the Arena leaderboard does:
a logistic regression on +1/-1 design rows, on the Elo scale (400, base 10,
1000), a tie counted as half a win for each side, and percentile bootstrap CIs.

Battles are first summed per (model pair, outcome), so the regression has at
most one row per pair and side whatever the number of battles: 1M battles over
100 models is a 9,900-row fit.

``rating_table`` (the tiers behind the labels) rates models only on battles
that say which of two models is better: a golden tie (both answers right, or
both wrong) says the question was easy or hard, not that the two models are
equal, and counted as half a win it pulls every pair towards equal by an
amount set by the questions' difficulty, so sets of easy questions put their
models on a compressed scale (with them, zephyr-7b-beta rated above
gpt-4-1106-preview). A rating is only believed, and a model only gets a tier,
when it rests on enough such battles (``MIN_BATTLES``) compared with the main
group of models; the others keep their rating and interval with ``tier`` null
and the reason in ``no_tier_reason``, and are in neither label class.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression

from prefroute.data.schema import OUTCOME_SCORE, Battles
from prefroute.errors import NotFittedError

_TOL = 1e-8
_MAX_ITER = 1000
MIN_BATTLES = 100
"""Battles (``informative_battles``) a model needs for a tier. Measured on the
default training set (``docs/data.md``, "Ratings and tiers"): below 50 battles
every 95% bootstrap interval is 235-718 rating points wide, 3.3 to 10 times the
median gap of 71 points between neighbouring tiers, so such a model's tier is
noise (command-r-plus, 4 battles, rated 1284 in tier 1 above GPT-4); from 100
battles on the widest is 108 points (144 with judge labels on), about a tier
and a half, and from 200 on at most 76. The shipped data has no model between
50 and 99 battles, so any cut from 50 to 100 gives the same tiers."""


class BradleyTerry:
    """Bradley-Terry (Elo-scale) ratings with ties, battle weights and bootstrap CIs.

    ``P(a beats b) = 1 / (1 + base ** ((R_b - R_a) / scale))``. Ratings are
    centred on ``init_rating`` unless ``anchor=(model, rating)`` pins one model,
    as the Arena pins a reference model so numbers stay comparable across fits.

    ``C`` is the inverse strength of a Gaussian prior on the (natural-log)
    strengths, as in scikit-learn. The Arena fits with none, but then a model
    seen in one battle that it won gets an unbounded rating and a tier of its
    own above GPT-4. ``C=1`` shrinks such models towards the mean while moving
    a model with thousands of battles by a few points; ``C=1e6`` is
    effectively the Arena's unpenalised fit.
    """

    def __init__(
        self,
        *,
        scale: float = 400.0,
        base: float = 10.0,
        init_rating: float = 1000.0,
        anchor: tuple[str, float] | None = None,
        C: float = 1.0,
        n_bootstrap: int = 100,
        random_state: int | None = None,
    ) -> None:
        self.scale = scale
        self.base = base
        self.init_rating = init_rating
        self.anchor = anchor
        self.C = C
        self.n_bootstrap = n_bootstrap
        self.random_state = random_state

    def fit(self, battles: Battles) -> BradleyTerry:
        """Fit ratings; sets ``models_`` and ``ratings_`` (sorted by rating, best first).

        ``ratings_`` columns: model, rating, ci_low, ci_high (2.5/97.5 bootstrap
        percentiles; null when ``n_bootstrap=0``), n_battles (rows involving the
        model). Battles are resampled as the Arena does, as whole rows; rows of
        one (pair, outcome) group share its mean weight in a resample.
        ``tie_bothbad`` counts as a tie. Rows with a null winner, a model against
        itself or weight <= 0 carry no information and are skipped.
        """
        if self.n_bootstrap < 0:
            raise ValueError(f"n_bootstrap must be >= 0, got {self.n_bootstrap}")
        groups, models = _group_battles(battles)
        if len(models) < 2:
            raise ValueError(
                f"need battles between at least 2 models to rate them, got models {models}"
            )
        if self.anchor is not None and self.anchor[0] not in models:
            raise ValueError(f"anchor model {self.anchor[0]!r} is not in the battles")

        lo, hi = groups["lo"].to_numpy(), groups["hi"].to_numpy()
        outcome = groups["outcome"].to_numpy()
        n_rows = groups["n"].to_numpy().astype(np.int64)
        mean_weight = groups["weight"].to_numpy() / n_rows

        # One design row per (pair, side): +ln(base) for lo, -ln(base) for hi.
        pair_of_group, pair_lo, pair_hi = _pairs(lo, hi)
        n_pairs, n_models = len(pair_lo), len(models)
        log_base = np.log(self.base)
        pair_design = sparse.csr_matrix(
            (
                np.tile([log_base, -log_base], n_pairs),
                (np.repeat(np.arange(n_pairs), 2), np.stack([pair_lo, pair_hi], axis=1).ravel()),
            ),
            shape=(n_pairs, n_models),
        )
        # Sparse (two non-zeros a row): each Newton step is ~5x cheaper than dense.
        design = sparse.vstack([pair_design, pair_design], format="csr")
        target = np.repeat([1, 0], n_pairs)
        # Group weight -> (win rows | loss rows) weight: a tie gives half to each.
        to_rows = sparse.csr_matrix(
            (
                np.concatenate([outcome, 1.0 - outcome]),
                (
                    np.tile(np.arange(len(lo)), 2),
                    np.concatenate([pair_of_group, pair_of_group + n_pairs]),
                ),
            ),
            shape=(len(lo), 2 * n_pairs),
        )

        regression = LogisticRegression(
            C=self.C,
            fit_intercept=False,
            solver="newton-cholesky",
            tol=_TOL,
            max_iter=_MAX_ITER,
            warm_start=True,
        )

        def fit_ratings(group_weight: np.ndarray) -> np.ndarray:
            regression.fit(design, target, sample_weight=to_rows.T @ group_weight)
            return self._to_scale(regression.coef_[0], models)

        rating = fit_ratings(groups["weight"].to_numpy())
        # Each bootstrap fit starts from the previous one (warm start): ~3 Newton steps.
        rng = np.random.default_rng(self.random_state)
        draws = rng.multinomial(n_rows.sum(), n_rows / n_rows.sum(), size=self.n_bootstrap)
        boot = np.array([fit_ratings(d * mean_weight) for d in draws]).reshape(-1, n_models)

        n_battles = np.bincount(lo, n_rows, n_models) + np.bincount(hi, n_rows, n_models)
        ci = np.percentile(boot, [2.5, 97.5], axis=0) if len(boot) else np.full((2, n_models), None)
        self.models_ = models
        self.ratings_ = pl.DataFrame(
            {
                "model": models,
                "rating": rating,
                "ci_low": ci[0],
                "ci_high": ci[1],
                "n_battles": n_battles.astype(np.int64),
            },
            schema={
                "model": pl.String,
                "rating": pl.Float64,
                "ci_low": pl.Float64,
                "ci_high": pl.Float64,
                "n_battles": pl.Int64,
            },
        ).sort("rating", "model", descending=[True, False])
        return self

    def predict_proba(self, model_a: str, model_b: str) -> float:
        """P(model_a's answer beats model_b's), a tie counting half."""
        if not hasattr(self, "ratings_"):
            raise NotFittedError("BradleyTerry is not fitted yet; call fit(battles) first")
        rating = dict(self.ratings_.select("model", "rating").iter_rows())
        for model in (model_a, model_b):
            if model not in rating:
                raise ValueError(f"unknown model {model!r}; expected one of {self.models_}")
        return float(1.0 / (1.0 + self.base ** ((rating[model_b] - rating[model_a]) / self.scale)))

    def _to_scale(self, coef: np.ndarray, models: list[str]) -> np.ndarray:
        rating = self.scale * coef + self.init_rating
        if self.anchor is not None:
            name, value = self.anchor
            rating += value - rating[models.index(name)]
        return rating


def _group_battles(battles: Battles) -> tuple[pl.DataFrame, list[str]]:
    """Battles summed per (lo, hi, outcome for lo): lo < hi model indices, n rows, weight."""
    frame = battles.frame.filter(
        pl.col("winner").is_not_null()
        & (pl.col("model_a") != pl.col("model_b"))
        & (pl.col("weight") > 0)
    )
    models = sorted(
        set(frame["model_a"].unique().to_list()) | set(frame["model_b"].unique().to_list())
    )
    model_index = pl.Enum(models)
    a = pl.col("model_a").cast(model_index).to_physical().cast(pl.Int64)
    b = pl.col("model_b").cast(model_index).to_physical().cast(pl.Int64)
    score_a = (
        pl.col("winner").cast(pl.String).replace_strict(OUTCOME_SCORE, return_dtype=pl.Float64)
    )
    groups = (
        frame.select(
            lo=pl.min_horizontal(a, b),
            hi=pl.max_horizontal(a, b),
            outcome=pl.when(a < b).then(score_a).otherwise(1.0 - score_a),
            weight=pl.col("weight").cast(pl.Float64),
        )
        .group_by("lo", "hi", "outcome")
        .agg(n=pl.len(), weight=pl.col("weight").sum())
        .sort("lo", "hi", "outcome")
    )
    return groups, models


def _pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index of each group's model pair, and the pairs' (lo, hi) model indices."""
    unique, pair_of_group = np.unique(np.stack([lo, hi], axis=1), axis=0, return_inverse=True)
    return pair_of_group.ravel(), unique[:, 0], unique[:, 1]


def assign_tiers(
    ratings: Mapping[str, float], n_tiers: int = 10, random_state: int | None = 0
) -> dict[str, int]:
    """Model -> tier (1 = best) by 1-D k-means on the ratings, as the paper's 10 tiers.

    Clusters are numbered by centroid, best first. With no more distinct ratings
    than tiers, each distinct rating is its own tier (k-means has nothing to
    group). In 1-D every k-means cluster is an interval, so tiers never interleave.
    """
    if n_tiers < 1:
        raise ValueError(f"n_tiers must be >= 1, got {n_tiers}")
    names = list(ratings)
    values = np.array([ratings[m] for m in names], dtype=np.float64)
    distinct = np.unique(values)
    if len(distinct) <= n_tiers:
        tier_of_value = {v: len(distinct) - i for i, v in enumerate(distinct)}
        return {m: tier_of_value[v] for m, v in zip(names, values, strict=True)}
    kmeans = KMeans(n_clusters=n_tiers, n_init=10, random_state=random_state)
    labels = kmeans.fit_predict(values.reshape(-1, 1))
    used = np.unique(labels)
    order = used[np.argsort(-kmeans.cluster_centers_[used, 0])]
    tier_of_label = {label: rank + 1 for rank, label in enumerate(order)}
    return {m: tier_of_label[label] for m, label in zip(names, labels, strict=True)}


def rating_table(
    battles: Battles,
    *,
    n_tiers: int = 10,
    min_battles: int = MIN_BATTLES,
    n_bootstrap: int = 100,
    random_state: int | None = 0,
) -> pl.DataFrame:
    """model, rating, ci_low, ci_high, n_battles, tier, no_tier_reason: what ``data stats``
    prints and the label classes come from.

    Ratings are fitted on ``informative_battles`` (no golden ties), and
    ``n_battles`` counts those. Tiers (``assign_tiers``) go only to models with
    at least ``min_battles`` battles in the main group of models (the connected
    part of the comparison graph with the most battles: ratings of a group that
    never meets it, like PandaLM's five models, are on another scale). The others keep their rating
    with ``tier`` null and ``no_tier_reason`` saying why. Ranked models come
    first, best first, then the others by rating.
    """
    if min_battles < 1:
        raise ValueError(f"min_battles must be >= 1, got {min_battles}")
    battles = informative_battles(battles)
    bt = BradleyTerry(n_bootstrap=n_bootstrap, random_state=random_state).fit(battles)
    main = _main_group(battles)
    reason = (
        pl.when(~pl.col("model").is_in(sorted(main)))
        .then(pl.lit("not compared with the main group of models (a rating on another scale)"))
        .when(pl.col("n_battles") < min_battles)
        .then(pl.lit(f"fewer than {min_battles} battles"))
    )
    table = bt.ratings_.with_columns(no_tier_reason=reason)
    ranked = table.filter(pl.col("no_tier_reason").is_null())
    tiers = assign_tiers(
        dict(ranked.select("model", "rating").iter_rows()),
        n_tiers=n_tiers,
        random_state=random_state,
    )
    return (
        table.with_columns(
            tier=pl.col("model").replace_strict(tiers, default=None, return_dtype=pl.Int64)
        )
        .select("model", "rating", "ci_low", "ci_high", "n_battles", "tier", "no_tier_reason")
        .sort(pl.col("tier").is_null(), "rating", "model", descending=[False, True, False])
    )


def informative_battles(battles: Battles) -> Battles:
    """``battles`` without golden ties: the battles that say which model is better.

    Golden battles come from correctness (``augment.battles_from_scores``): both
    right or both wrong is a tie that depends on the question, not the models.
    Human and judge ties are judgements and stay.
    """
    golden_tie = (pl.col("source").cast(pl.String) == "golden") & pl.col("winner").cast(
        pl.String
    ).is_in(["tie", "tie_bothbad"])
    return Battles(battles.frame.filter(~golden_tie.fill_null(False)))


def _main_group(battles: Battles) -> set[str]:
    """The models of the connected comparison graph's part holding the most battles."""
    groups, models = _group_battles(battles)
    if not models:
        return set()
    lo, hi = groups["lo"].to_numpy(), groups["hi"].to_numpy()
    graph = sparse.coo_matrix((np.ones(len(lo)), (lo, hi)), shape=(len(models), len(models)))
    _, part = connected_components(graph, directed=False)
    n_rows = groups["n"].to_numpy().astype(np.int64)
    battles_per_part = np.bincount(part[lo], n_rows, part.max() + 1)
    main = int(np.argmax(battles_per_part))
    return {m for m, p in zip(models, part, strict=True) if p == main}
