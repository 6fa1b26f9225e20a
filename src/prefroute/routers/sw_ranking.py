"""Similarity-weighted Bradley-Terry ranking: the paper's SW ranking router, made fast.

For a query q the paper weights every training battle by its prompt's
similarity to q and fits Bradley-Terry (BT) over the weighted battles; the
score is P(strong beats weak) under that fit. RouteLLM re-runs a full
logistic regression over all battles per query (2.9 requests/s). Here:

- **fit** embeds each *distinct* training prompt once and sums its battles per
  model pair into two sufficient statistics, the weighted wins of the
  lower-index model and of the other (a tie is half a win for each side, as
  in ``prefroute.data.tiers``). BT's likelihood needs nothing else.
- **per query batch** one matrix product gives the similarities to all
  training prompts; the top ``k`` become weights ``gamma ** (s - 1)`` (the
  paper's ``gamma ** (1 + s)`` family, scaled so an identical prompt weighs 1,
  and 0 below ``min_similarity``); one sparse product (queries x prompts) @
  (prompts x pair statistics) gives each query's weighted statistics per model
  pair; a few batched Newton steps fit a *local correction* to the global BT
  ratings; the score is ``sigmoid(r_strong - r_weak)`` on the natural scale.

The local correction (why not 268 free ratings per query): ratings are
``global_rating[m] + u[tier(m)] + e[m]``, where ``u`` is one shift per tier
(the paper's BT over tiers) and ``e`` is a shift for the strong and the weak
model only (zero for every other model), all under an L2 pull
``prior_strength`` towards 0. So the per-query fit has ``n_tiers + 2``
parameters whatever the number of models, every battle still counts (a
battle between two other models moves their tiers, which are the strong and
weak models' opponents), the strong model moves with its tier peers on
prompts where it never played (e.g. GPT-4 on MMLU-Pro questions, through
Gemini and Llama-70B), and two models of the same tier still get different
scores. A query with no training prompt above ``min_similarity`` keeps the
correction at 0: its score is exactly the global BT probability.

Among N models (``model_quality``) the same fit gives every candidate its own
shift instead of the strong and the weak model only (``n_tiers`` + N
parameters); a candidate's quality is its mean chance of beating the others
under the query's ratings, and for two candidates exactly ``strong_win_rate``.

Re-targeting: the statistics are per model pair, not per strong/weak label,
so ``retarget(strong, weak)`` routes between any two models seen in training
without refitting; the per-pair design (a few kB) is built on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prefroute.routers.base import (
    DEFAULT_STRONG,
    DEFAULT_WEAK,
    EmbeddingRouter,
    ParameterTable,
    check_pair,
    win_rate_quality,
)
from prefroute.routers.params import Interval

if TYPE_CHECKING:
    import polars as pl

    from prefroute.data.schema import Battles

_CHUNK = 128
"""Queries scored together: bounds the (chunk x training prompts) similarity block and
its top-k index (128 x 28k: 14 MB float32 + 28 MB int64) while keeping the products
batched."""
_MAX_STEP = 2.0
"""Largest change of any rating (natural-log scale) in one Newton step. BT's
log-likelihood is concave, but a full Newton step from the global ratings can
overshoot when a neighbourhood is one-sided (a pair that only ever won); the
cap keeps such steps sane without a line search, and is inactive near the optimum."""
SMALL_BATCH = 16
"""Calls scoring fewer queries run BLAS on one thread (``one_blas_thread``). One query's
products are too small to split: with the default two threads on 2 cores one query
took 6.8 ms CPU for 2.9 ms wall, and 8.0 ms wall instead of 3.1 on a busy machine
(Arena-Hard prompts, benchmarks/startup.py)."""


@dataclass(frozen=True)
class _Design:
    """What scoring needs for one list of candidates, built from the stored arrays.

    The candidates are the strong and the weak model for ``strong_win_rate``, or
    those asked of ``model_quality``; each gets its own shift on top of its tier's.
    Only model pairs whose logit depends on a parameter are kept (``pairs``; two
    models of one tier, neither of them a candidate, carry no information).
    ``rows`` (kept pairs x parameters) is each pair's change in logit per
    parameter, at most 4 non-zeros a row; ``outer`` (parameters**2 x kept pairs)
    holds each row's outer product, so the Hessian of a whole batch is one sparse
    product. Both are sparse: a dense product would do ~10x the work and hand
    the batch to BLAS, whose summation order depends on the batch size.
    ``offset`` is each kept pair's global logit; ``effect`` (candidates x
    parameters) how each candidate's rating moves with the parameters, and
    ``rating`` the candidates' global ratings. ``target`` / ``target_offset``: the
    same for the first candidate minus the second (strong vs weak).
    """

    pairs: np.ndarray
    rows: Any  # scipy.sparse.csr_matrix, (n_kept_pairs, n_params)
    rows_t: Any  # its transpose, CSR
    outer: Any  # scipy.sparse.csr_matrix, (n_params**2, n_kept_pairs)
    offset: np.ndarray
    effect: np.ndarray
    rating: np.ndarray

    @property
    def target(self) -> np.ndarray:
        return self.effect[0] - self.effect[1]

    @property
    def target_offset(self) -> float:
        return float(self.rating[0] - self.rating[1])


class SWRankingRouter(EmbeddingRouter):
    """P(strong beats weak) from a Bradley-Terry fit on the query's nearest training prompts.

    Hyper-parameters (all but ``n_tiers`` and ``embedder`` may be changed after
    ``fit``: they are read when scoring):

    - ``k``: neighbours (distinct training prompts) per query; all their battles count.
    - ``gamma``: a neighbour at cosine ``s`` weighs ``gamma ** (s - 1)``, the paper's
      ``gamma ** (1 + s)`` up to a constant; larger is more local.
    - ``min_similarity``: neighbours below this cosine weigh 0, so an unfamiliar
      query falls back to the global ratings instead of borrowing far battles.
    - ``n_newton_steps``: Newton steps from the global ratings (the fit is a few
      parameters and concave: on real queries 3 steps are within 2e-5 of the optimum,
      4 within float32 precision).
    - ``prior_strength``: L2 pull of each local correction towards 0, in units of
      the Fisher information of ~4 battles on an identical prompt.
    - ``n_tiers``: tiers of the global ratings that share one local shift.
    """

    kind = "sw_ranking"
    per_model_quality = True
    _parameter_constraints: ClassVar[ParameterTable] = {
        "k": [Interval(int, 1, None)],
        "gamma": [Interval(float, 1, None)],
        "min_similarity": [Interval(float, -1, 1)],
        "n_newton_steps": [Interval(int, 0, None)],
        "prior_strength": [Interval(float, 0, None, closed="neither")],
        "n_tiers": [Interval(int, 1, None)],
    }

    def __init__(
        self,
        *,
        k: int = 1024,
        gamma: float = 10.0,
        min_similarity: float = 0.3,
        n_newton_steps: int = 4,
        prior_strength: float = 1.0,
        n_tiers: int = 10,
        embedder: str = "static",
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(
            embedder=embedder,
            strong_model=strong_model,
            weak_model=weak_model,
            random_state=random_state,
        )
        self.k = k
        self.gamma = gamma
        self.min_similarity = min_similarity
        self.n_newton_steps = n_newton_steps
        self.prior_strength = prior_strength
        self.n_tiers = n_tiers

    # ------------------------------------------------------------------ fit
    def fit(self, battles: Battles) -> SWRankingRouter:
        """Global BT ratings and tiers, prompt embeddings, per (prompt, pair) statistics.

        Rows with a null winner, a model against itself or weight <= 0 are
        skipped (they carry no information), as in ``BradleyTerry``.
        """
        import polars as pl

        from prefroute.data.schema import Battles
        from prefroute.data.tiers import BradleyTerry, assign_tiers

        self._begin_fit()
        embedder = self._fit_embedder()
        frame = battles.frame.filter(
            pl.col("winner").is_not_null()
            & (pl.col("model_a") != pl.col("model_b"))
            & (pl.col("weight") > 0)
        )
        if frame.height == 0:
            raise ValueError(
                "no usable battles: every row has a null winner, a model against "
                "itself or a weight <= 0"
            )
        models = sorted(set(frame["model_a"].unique()) | set(frame["model_b"].unique()))
        check_pair(self.strong_model, self.weak_model, models)

        # Global ratings, Elo scale -> natural log-odds scale (sigmoid of a difference).
        bt = BradleyTerry(n_bootstrap=0, random_state=self.random_state).fit(Battles(frame))
        elo = dict(bt.ratings_.select("model", "rating").iter_rows())
        natural = np.log(bt.base) / bt.scale
        global_rating = np.array([(elo[m] - bt.init_rating) * natural for m in models])
        tier_of = assign_tiers(elo, n_tiers=self.n_tiers, random_state=self.random_state)
        tiers = np.array([tier_of[m] - 1 for m in models], dtype=np.int32)

        prompts, indptr, pair, wins, pair_models = _sufficient_statistics(frame, models)
        vectors = embedder.encode(prompts)

        self.models_ = models
        self.global_rating_ = global_rating
        self.tier_ = tiers
        self.pair_models_ = pair_models
        # float16 halves the artifact; cosines move by < 2e-4 (measured on MMLU prompts).
        self.prompt_embeddings_ = vectors.astype(np.float16)
        self.stats_indptr_ = indptr
        self.stats_pair_ = pair
        self.stats_wins_ = wins
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Working forms of the stored arrays (the same after fit and after load)."""
        from scipy import sparse

        self._vectors = self.prompt_embeddings_.astype(np.float32)
        n_prompts, n_pairs = len(self._vectors), len(self.pair_models_)
        # Interleaved columns: 2p = wins of pair p's lower-index model, 2p + 1 = the other's.
        pair = self.stats_pair_.astype(np.int32)  # stored as uint16 when it fits
        columns = np.stack([2 * pair, 2 * pair + 1], axis=1).ravel()
        self._stats = sparse.csr_matrix(
            (self.stats_wins_.ravel(), columns, 2 * self.stats_indptr_),
            shape=(n_prompts, 2 * n_pairs),
        )
        self._index = {m: i for i, m in enumerate(self.models_)}
        self._designs: dict[tuple[str, ...], _Design] = {}

    # -------------------------------------------------------------- scoring
    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        self.check_is_fitted()
        self._validate_params()  # read when scoring, so they may have changed since fit
        pair = (self.strong_model, self.weak_model)
        if pair not in self._designs:
            check_pair(*pair, self.models_)
        design = self._design(pair)
        scores = self._by_block(prompts, lambda block: self._score(block, design))
        return scores.astype(np.float32).reshape(len(prompts))

    def model_quality(
        self, prompts: Sequence[str], models: Sequence[str] | None = None
    ) -> np.ndarray:
        """Each candidate's mean chance of beating the other candidates under the query's
        local Bradley-Terry fit (``win_rate_quality`` of the per-query ratings).

        Every candidate gets its own local shift, as the strong and weak model do
        in ``strong_win_rate`` (for ``[strong, weak]`` the two agree exactly), so
        the fit has ``n_tiers`` + N parameters: pass the candidates you route
        among rather than every model trained on.
        """
        self.check_is_fitted()
        self._validate_params()
        names, _ = self.candidate_index(models)
        design = self._design(tuple(names))

        def ratings(block: np.ndarray) -> np.ndarray:
            return (design.rating[:, None] + design.effect @ self._local_fit(block, design)).T

        found = self._by_block(prompts, ratings)
        return win_rate_quality(found.reshape(len(prompts), len(names)))

    def _by_block(
        self, prompts: Sequence[str], score: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """``score`` of the prompts' embeddings, ``_CHUNK`` queries at a time, rows stacked;
        BLAS on one thread for small calls (``SMALL_BATCH``)."""
        if len(prompts) == 0:
            return np.zeros(0)
        queries = self.embed(prompts)
        with one_blas_thread(len(prompts) < SMALL_BATCH):
            parts = [score(queries[i : i + _CHUNK]) for i in range(0, len(prompts), _CHUNK)]
        return np.concatenate(parts)

    def _neighbour_wins(self, queries: np.ndarray) -> np.ndarray:
        """Per query (rows of embeddings), the similarity-weighted wins per model pair.

        Column ``2p`` is pair ``p``'s lower-index model's weighted wins, ``2p + 1``
        the other's (``pair_models_[p]`` names the pair).
        """
        from scipy import sparse

        n_queries, n_prompts = len(queries), len(self._vectors)
        similarity = queries @ self._vectors.T
        # The k nearest are those at or above the k-th largest similarity: a value
        # partition (no index array) and one mask, whose non-zeros come row-major
        # sorted, i.e. already a canonical CSR. An exact tie at the k-th value
        # keeps every tied prompt, so the set never depends on the batch.
        k = min(int(self.k), n_prompts)
        kth = np.partition(similarity, n_prompts - k, axis=1)[:, n_prompts - k]
        keep = similarity >= np.maximum(kth, np.float32(self.min_similarity))[:, None]
        rows, nearest = np.nonzero(keep)
        s = similarity[rows, nearest].astype(np.float64)
        # float32 like the statistics: a float64 operand would make scipy upcast (copy)
        # the whole statistics matrix on every call.
        weight = np.power(float(self.gamma), s - 1.0).astype(np.float32)
        indptr = np.concatenate([[0], np.cumsum(np.count_nonzero(keep, axis=1))])
        neighbours = sparse.csr_matrix((weight, nearest, indptr), shape=(n_queries, n_prompts))
        return (neighbours @ self._stats).toarray()

    def _score(self, queries: np.ndarray, design: _Design) -> np.ndarray:
        """P(first candidate beats the second) per query (rows of embeddings)."""
        from scipy.special import expit

        theta = self._local_fit(queries, design)
        return expit(design.target_offset + design.target @ theta)

    def _local_fit(self, queries: np.ndarray, design: _Design) -> np.ndarray:
        """(parameters x queries): Newton's method on the local correction, batched."""
        from scipy.special import expit

        wins = self._neighbour_wins(queries)
        # Pair-major (kept pairs x queries), so every product below is sparse @ dense.
        wins_lo = np.ascontiguousarray(wins[:, 2 * design.pairs].T, dtype=np.float64)
        total = wins_lo + wins[:, 2 * design.pairs + 1].T
        n_queries, n_params = len(queries), design.effect.shape[1]
        prior = float(self.prior_strength)
        theta = np.zeros((n_params, n_queries))
        for _ in range(int(self.n_newton_steps)):
            p = expit(design.offset[:, None] + design.rows @ theta)
            gradient = design.rows_t @ (wins_lo - total * p) - prior * theta
            curvature = design.outer @ (total * p * (1.0 - p))
            hessian = curvature.T.reshape(n_queries, n_params, n_params)
            hessian[:, np.arange(n_params), np.arange(n_params)] += prior
            step = np.linalg.solve(hessian, gradient.T[..., None])[..., 0].T
            largest = np.abs(step).max(axis=0)
            theta += step * np.minimum(1.0, _MAX_STEP / np.maximum(largest, 1e-12))
        return theta

    # ------------------------------------------------------------ targeting
    def _design(self, candidates: tuple[str, ...]) -> _Design:
        """The design for known, distinct candidates (cached): parameters are ``n_tiers``
        shifts, then one shift per candidate (e_s, e_w for a pair)."""
        from scipy import sparse

        if candidates in self._designs:
            return self._designs[candidates]
        n_models, n_tiers = len(self.models_), int(self.tier_.max()) + 1
        effect = np.zeros((n_models, n_tiers + len(candidates)))
        effect[np.arange(n_models), self.tier_] = 1.0
        chosen = np.array([self._index[m] for m in candidates])
        effect[chosen, n_tiers + np.arange(len(candidates))] = 1.0
        lo, hi = self.pair_models_[:, 0], self.pair_models_[:, 1]
        rows = effect[lo] - effect[hi]
        pairs = np.flatnonzero(np.any(rows != 0, axis=1))
        rows, lo, hi = rows[pairs], lo[pairs], hi[pairs]
        outer = (rows[:, :, None] * rows[:, None, :]).reshape(len(rows), -1)
        rating = self.global_rating_
        design = _Design(
            pairs=pairs,
            rows=sparse.csr_matrix(rows),
            rows_t=sparse.csr_matrix(rows.T),
            outer=sparse.csr_matrix(outer.T),
            offset=rating[lo] - rating[hi],
            effect=effect[chosen],
            rating=rating[chosen],
        )
        self._designs[candidates] = design
        return design

    # ---------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "prompt_embeddings": self.prompt_embeddings_,
            "stats_indptr": self.stats_indptr_,
            "stats_pair": self.stats_pair_,
            "stats_wins": self.stats_wins_,
            "pair_models": self.pair_models_,
            "global_rating": self.global_rating_,
            "tier": self.tier_,
        }

    def _state(self) -> dict[str, Any]:
        return {"models": self.models_}

    def _restore(self, arrays: dict[str, np.ndarray], state: Mapping[str, Any], root: Path) -> None:
        self.models_ = list(state["models"])
        self.prompt_embeddings_ = arrays["prompt_embeddings"]
        self.stats_indptr_ = arrays["stats_indptr"]
        self.stats_pair_ = arrays["stats_pair"]
        self.stats_wins_ = arrays["stats_wins"]
        self.pair_models_ = arrays["pair_models"]
        self.global_rating_ = arrays["global_rating"]
        self.tier_ = arrays["tier"]
        self._prepare()


def _sufficient_statistics(
    frame: pl.DataFrame, models: list[str]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Battles summed per (distinct prompt, model pair), as a CSR table over prompts.

    Returns the distinct prompts (sorted, so the order does not depend on the
    row order), ``indptr`` (prompt i's rows are ``indptr[i]:indptr[i+1]``), the
    pair index of each row, its ``(wins of lo, wins of hi)`` weighted by
    ``weight`` with a tie half each, and each pair's ``(lo, hi)`` model indices.
    """
    import polars as pl

    from prefroute.data.schema import OUTCOME_SCORE

    prompts = frame["prompt"].unique().sort().to_list()
    model_enum, prompt_enum = pl.Enum(models), pl.Enum(prompts)
    a = pl.col("model_a").cast(model_enum).to_physical().cast(pl.Int64)
    b = pl.col("model_b").cast(model_enum).to_physical().cast(pl.Int64)
    score_a = (
        pl.col("winner").cast(pl.String).replace_strict(OUTCOME_SCORE, return_dtype=pl.Float64)
    )
    rows = frame.select(
        prompt=pl.col("prompt").cast(prompt_enum).to_physical().cast(pl.Int64),
        lo=pl.min_horizontal(a, b),
        hi=pl.max_horizontal(a, b),
        score_lo=pl.when(a < b).then(score_a).otherwise(1.0 - score_a),
        weight=pl.col("weight").cast(pl.Float64),
    )
    # One int64 key per (prompt, lo, hi): unique keys come out sorted by prompt, then pair.
    n_models = len(models)
    pair_key = rows["lo"].to_numpy() * n_models + rows["hi"].to_numpy()
    key = rows["prompt"].to_numpy() * n_models * n_models + pair_key
    keys, group = np.unique(key, return_inverse=True)
    weight, score_lo = rows["weight"].to_numpy(), rows["score_lo"].to_numpy()
    wins = np.stack(
        [
            np.bincount(group, weight * score_lo, len(keys)),
            np.bincount(group, weight * (1.0 - score_lo), len(keys)),
        ],
        axis=1,
    )
    pairs, pair = np.unique(keys % (n_models * n_models), return_inverse=True)
    pair_models = np.stack([pairs // n_models, pairs % n_models], axis=1)
    counts = np.bincount(keys // (n_models * n_models), minlength=len(prompts))
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return (
        prompts,
        indptr,
        pair.astype(np.uint16 if len(pairs) <= np.iinfo(np.uint16).max + 1 else np.int32),
        wins.astype(np.float32),
        pair_models.astype(np.int32),
    )


# -------------------------------------------------------------- BLAS threads

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the BLAS libraries loaded so far (numpy's, scipy's)."""
    from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

    return ThreadpoolController()


@contextmanager
def one_blas_thread(enabled: bool = True) -> Iterator[None]:
    """Run the block with BLAS on one thread (when ``enabled``), then restore it.

    BLAS thread counts are process-wide, so concurrent blocks (a server scoring
    on several threads) share one limit: the first in sets it, the last out
    restores the original, and no block restores it under another.
    """
    global _blas_users, _blas_limit
    if not enabled:
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = _blas_controller().limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None
