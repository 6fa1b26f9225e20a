"""Per-model quality from the prompt's text: a router built for choosing among N models.

Choosing among N models needs each model's expected quality on a prompt, not
only who wins between two. This kind predicts it pointwise, as CARROT and
IRT-Router do, from the prompt's embedding and length features x:

    P(model m answers well | x) = σ(b_m + xᵀ(w + v_m))

``w`` is shared by all models: what makes a prompt hard for every model (item
response theory's difficulty, predicted from the text); ``v_m`` is model m's
own deviation from it (what it is better or worse at); ``b_m`` its overall
ability. L2 penalties, summed over rows as scikit-learn's ``1 / C``:
``shared_penalty`` on ``w`` and ``model_penalty`` on each ``v_m``. A model
with few rows keeps its ability and the shared direction; a model with many
learns its own. With ``model_penalty`` → ∞ it is a Rasch model with
text-predicted difficulty; with ``shared_penalty`` → ∞ one logistic
regression per model.

Why this one: on held-out halves of the three shipped N-model sets (MMLU-Pro,
RouterBench, LLMRouter), it gave the highest AIQ of the candidates measured
on the same static embedding: a 25-NN per-model correctness average (CARROT's
kNN), per-model logistic regressions, a low-rank pointwise model (MIRT-style,
torch), and MF's pairwise scores (``benchmarks/n_models.py``, docs/n-models.md).

Training rows are (prompt, model, target in [0, 1], weight):

- ``fit_scores(scores)``: a per-model score. Scores within [0, 1]
  (correctness, F1, pass rates) are the targets as they are; a data set with
  scores outside [0, 1] (a 1-10 judge grade) is mapped from its own min and
  max onto [0, 1].
- ``fit(battles)`` (the router contract, and what ``prefroute train`` calls):
  each battle read pointwise, as ``BATTLE_TARGET`` says: the winner's answer
  was good (1), the loser's not (0), a tie half each, both bad 0 each. Golden
  battles (``source`` golden, made from per-model scores by
  ``battles_from_scores``) read a tie as both right (1 each): so battles made
  from 0/1 correctness give back exactly the scores they came from.

A model scored several times on a prompt becomes one row: the weighted mean
target, weighing the sum of the weights; except that a golden score repeated
in every pair of its prompt is one fact, so golden battles weigh their mean.
Fitting is one L-BFGS (scipy) over every model at once; scoring is numpy only:
one (features x N) product and a sigmoid, so N = 30 candidates cost about what
two do.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prefroute.errors import ArtifactError, DataError
from prefroute.routers.base import (
    DEFAULT_STRONG,
    DEFAULT_WEAK,
    EmbeddingRouter,
    ParameterTable,
    check_pair,
)
from prefroute.routers.mf import length_features
from prefroute.routers.params import Interval

if TYPE_CHECKING:
    import polars as pl

    from prefroute.data.schema import Battles, Scores

BATTLE_TARGET: dict[str, tuple[float, float]] = {
    "model_a": (1.0, 0.0),
    "model_b": (0.0, 1.0),
    "tie": (0.5, 0.5),
    "tie_bothbad": (0.0, 0.0),
}
"""A battle's ``winner`` read as one target per side, (model_a's, model_b's). Unlike the
pairwise ``OUTCOME_SCORE``, "both bad" says something about each answer: both were poor."""
GOLDEN_TIE = (1.0, 1.0)
"""A golden battle's plain tie: equal scores, not both wrong (that is ``tie_bothbad``)."""


class QualityRouter(EmbeddingRouter):
    """Each model's chance of a good answer per prompt: shared plus per-model logistic weights.

    - ``shared_penalty``: L2 strength on the weights all models share (the
      prompt's difficulty direction).
    - ``model_penalty``: L2 strength on each model's own deviation from them.
    - ``length_features``: append the prompt's log length (``mf.length_features``).
    - ``max_iter``: L-BFGS iterations at most.

    ``strong_win_rate`` is ``1/2 + (q_strong - q_weak) / 2``: the chance the
    strong model's answer beats the weak one's, ties counted half, if the two
    answers succeed independently with those chances.
    """

    kind = "quality"
    per_model_quality = True
    shipped_mix_note = (
        "quality reads each shipped battle as two pointwise rows (won 1, lost 0): on four "
        "measured pairs (one seed), 300 labels plus the shipped data scored 0.032 APGR lower on "
        "held-out prompts than your labels alone (docs/own-data.md); compare with --no-shipped"
    )
    _parameter_constraints: ClassVar[ParameterTable] = {
        "shared_penalty": [Interval(float, 0, None, closed="neither")],
        "model_penalty": [Interval(float, 0, None, closed="neither")],
        "length_features": [bool],
        "max_iter": [Interval(int, 1, None)],
        "verbose": [bool],
    }

    def __init__(
        self,
        *,
        shared_penalty: float = 1.0,
        model_penalty: float = 10.0,
        length_features: bool = True,
        max_iter: int = 500,
        embedder: str = "static",
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
        verbose: bool = True,
    ) -> None:
        super().__init__(
            embedder=embedder,
            strong_model=strong_model,
            weak_model=weak_model,
            random_state=random_state,
        )
        self.shared_penalty = shared_penalty
        self.model_penalty = model_penalty
        self.length_features = length_features
        self.max_iter = max_iter
        self.verbose = verbose

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "weights_")

    # ----------------------------------------------------------------- fit
    def fit(self, battles: Battles) -> QualityRouter:
        """Learn from battles, each read as two pointwise rows (``BATTLE_TARGET``)."""
        return self.fit_scores(None, battles=battles)

    def fit_scores(self, scores: Scores | None, *, battles: Battles | None = None) -> QualityRouter:
        """Learn from per-model scores and, if given, battles read pointwise; returns self.

        The scores are the targets this kind is built for (see the module
        docstring for the scale); battles add rows where only a comparison is known.
        """
        import polars as pl

        self._begin_fit()
        parts = []
        if scores is not None and len(scores):
            parts.append(_score_rows(scores))
        if battles is not None and len(battles):
            parts.append(_battle_rows(battles))
        if not parts:
            raise DataError("no rows to fit on: give scores or battles with weight > 0")
        rows = _aggregate(pl.concat(parts))
        models = sorted(rows["model"].unique().to_list())
        check_pair(self.strong_model, self.weak_model, models)
        started = time.perf_counter()
        prompts = rows["prompt"].unique(maintain_order=True).to_list()
        embedder = self._fit_embedder()
        x = self._features(embedder.encode(prompts), prompts).astype(np.float64)
        prompt_index = {p: i for i, p in enumerate(prompts)}
        model_index = {m: i for i, m in enumerate(models)}
        p = np.array([prompt_index[v] for v in rows["prompt"].to_list()], dtype=np.int64)
        m = np.array([model_index[v] for v in rows["model"].to_list()], dtype=np.int64)
        target = np.zeros((len(prompts), len(models)))
        weight = np.zeros((len(prompts), len(models)))
        target[p, m] = rows["target"].to_numpy()
        weight[p, m] = rows["weight"].to_numpy()
        learned = _fit_logistic(
            x,
            target,
            weight,
            shared_penalty=float(self.shared_penalty),
            model_penalty=float(self.model_penalty),
            max_iter=int(self.max_iter),
        )
        self.weights_ = learned.weights.astype(np.float32)
        self.bias_ = learned.bias.astype(np.float32)
        self.models_ = models
        self.n_rows_ = {
            mod: int(n) for mod, n in zip(models, (weight > 0).sum(axis=0), strict=True)
        }
        self.n_prompts_ = len(prompts)
        self.loss_ = learned.loss
        self.converged_ = learned.converged
        if self.verbose:
            from rich.console import Console

            Console(stderr=True).print(
                f"quality: {len(rows):,} rows, {len(prompts):,} prompts, {len(models)} models, "
                f"{learned.iterations} L-BFGS steps in {time.perf_counter() - started:.1f} s "
                f"(loss {learned.loss:.4f} per row{'' if learned.converged else ', not converged'})"
            )
        return self

    # ------------------------------------------------------------- routing
    def model_quality(
        self, prompts: Sequence[str], models: Sequence[str] | None = None
    ) -> np.ndarray:
        """Each candidate's predicted chance of a good answer (on the targets' [0, 1] scale)."""
        self.check_is_fitted()
        _, rows = self.candidate_index(models)
        inputs = self._features(self.embed(prompts), prompts).astype(np.float64)
        logits = inputs @ self.weights_[:, rows].astype(np.float64) + self.bias_[rows]
        return 0.5 + 0.5 * np.tanh(0.5 * logits)

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """``1/2 + (q_strong - q_weak) / 2`` per prompt, float32 in [0, 1].

        Row-wise sums rather than a matrix product, so a prompt gets the same
        bits whatever the batch (as MF's scores).
        """
        self.check_is_fitted()
        check_pair(self.strong_model, self.weak_model, self.models_)
        index = {m: i for i, m in enumerate(self.models_)}
        inputs = self._features(self.embed(prompts), prompts)
        quality = []
        for model in (self.strong_model, self.weak_model):
            j = index[model]
            logit = (inputs * self.weights_[:, j]).sum(axis=1, dtype=np.float64) + self.bias_[j]
            quality.append(0.5 + 0.5 * np.tanh(0.5 * logit))
        return (0.5 + 0.5 * (quality[0] - quality[1])).astype(np.float32)

    def _features(self, vectors: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        if not self.length_features:
            return vectors
        return np.hstack([vectors, length_features(prompts)])

    # --------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "bias": self.bias_}

    def _state(self) -> dict[str, Any]:
        return {
            "models": self.models_,
            "n_rows": self.n_rows_,
            "n_prompts": self.n_prompts_,
            "loss": self.loss_,
            "converged": self.converged_,
        }

    def _restore(self, arrays: dict[str, np.ndarray], state: Mapping[str, Any], root: Path) -> None:
        self.weights_ = arrays["weights"]
        self.bias_ = arrays["bias"]
        self.models_ = list(state["models"])
        self.n_rows_ = {str(k): int(v) for k, v in dict(state.get("n_rows", {})).items()}
        self.n_prompts_ = int(state.get("n_prompts", 0))
        self.loss_ = float(state.get("loss", float("nan")))
        self.converged_ = bool(state.get("converged", True))
        inputs = self.embedder_.dim + (2 if self.length_features else 0)
        if self.weights_.shape != (inputs, len(self.models_)) or self.bias_.shape != (
            len(self.models_),
        ):
            raise ArtifactError(
                f"{root}: weights {self.weights_.shape} and bias {self.bias_.shape} do not fit "
                f"{len(self.models_)} models over {inputs} inputs; the artifact is damaged"
            )


# -------------------------------------------------------------- internals


def _score_rows(scores: Scores) -> pl.DataFrame:
    """(prompt, model, target, weight) from scores, each data set on [0, 1] (module docstring)."""
    import polars as pl

    frame = scores.frame.filter(pl.col("score").is_not_null() & pl.col("model").is_not_null())
    low = pl.col("score").min().over("dataset")
    high = pl.col("score").max().over("dataset")
    inside = (low >= 0) & (high <= 1)
    scaled = pl.when(high > low).then((pl.col("score") - low) / (high - low)).otherwise(0.5)
    return frame.select(
        "prompt",
        "model",
        target=pl.when(inside).then(pl.col("score")).otherwise(scaled),
        weight=pl.lit(1.0),
        golden=pl.lit(False),
    )


def _battle_rows(battles: Battles) -> pl.DataFrame:
    """Two rows per battle, one per side, targets from ``BATTLE_TARGET`` (``GOLDEN_TIE``
    for a golden tie); ``golden`` marks rows whose repeats are one fact."""
    import polars as pl

    frame = battles.frame.filter(
        pl.col("winner").is_not_null()
        & (pl.col("model_a") != pl.col("model_b"))
        & (pl.col("weight") > 0)
    )
    winner = pl.col("winner").cast(pl.String)
    golden = pl.col("source").cast(pl.String) == "golden"
    sides = []
    for side, column in enumerate(("model_a", "model_b")):
        target = winner.replace_strict(
            {w: t[side] for w, t in BATTLE_TARGET.items()}, return_dtype=pl.Float64
        )
        sides.append(
            frame.select(
                "prompt",
                pl.col(column).alias("model"),
                target=pl.when(golden & (winner == "tie"))
                .then(pl.lit(GOLDEN_TIE[side]))
                .otherwise(target),
                weight=pl.col("weight").cast(pl.Float64),
                golden=golden,
            )
        )
    return pl.concat(sides)


def _aggregate(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per (prompt, model): the weighted mean target; the summed weight, or for
    golden rows (one score repeated in every pair of its prompt) the mean weight."""
    import polars as pl

    return (
        rows.filter(pl.col("weight") > 0)
        .group_by("prompt", "model", "golden", maintain_order=True)
        .agg(
            target=(pl.col("target") * pl.col("weight")).sum() / pl.col("weight").sum(),
            weight=pl.when(pl.col("golden").first())
            .then(pl.col("weight").mean())
            .otherwise(pl.col("weight").sum()),
        )
        .group_by("prompt", "model", maintain_order=True)
        .agg(
            target=(pl.col("target") * pl.col("weight")).sum() / pl.col("weight").sum(),
            weight=pl.col("weight").sum(),
        )
    )


@dataclass(frozen=True)
class _Learned:
    weights: np.ndarray  # (features, models): w + v_m
    bias: np.ndarray
    loss: float  # weighted cross-entropy per unit of weight, without the penalties
    iterations: int
    converged: bool


def _fit_logistic(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray,
    *,
    shared_penalty: float,
    model_penalty: float,
    max_iter: int,
) -> _Learned:
    """Weighted cross-entropy of σ(b_m + xᵀ(w + v_m)) against ``target`` (prompts x models),
    entries of weight 0 absent, with L2 on w and every v_m; one L-BFGS over all of them.

    Dense (prompts x models) products: user and golden score sets score most
    models on most prompts. Starts from each model's mean target (b_m) and zero
    weights; deterministic.
    """
    from scipy.optimize import minimize

    n, d = x.shape
    n_models = target.shape[1]
    total = weight.sum(axis=0)
    mean = (weight * target).sum(axis=0) / np.maximum(total, 1e-12)
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    start = np.concatenate([np.zeros(d), np.zeros(d * n_models), np.log(mean / (1 - mean))])
    rows = float(total.sum())

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        shared = theta[:d]
        own = theta[d : d + d * n_models].reshape(d, n_models)
        return shared, own, theta[d + d * n_models :]

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        shared, own, bias = unpack(theta)
        z = x @ (shared[:, None] + own) + bias
        # softplus(z) - y z, stably; gradient w (σ(z) - y)
        loss = float((weight * (np.logaddexp(0.0, z) - target * z)).sum())
        residual = weight * (0.5 + 0.5 * np.tanh(0.5 * z) - target)
        grad_w = x.T @ residual
        loss += 0.5 * shared_penalty * float(shared @ shared)
        loss += 0.5 * model_penalty * float((own * own).sum())
        gradient = np.concatenate(
            [
                grad_w.sum(axis=1) + shared_penalty * shared,
                (grad_w + model_penalty * own).ravel(),
                residual.sum(axis=0),
            ]
        )
        return loss / rows, gradient / rows

    result = minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    shared, own, bias = unpack(result.x)
    weights = shared[:, None] + own
    z = x @ weights + bias
    data_loss = float((weight * (np.logaddexp(0.0, z) - target * z)).sum())
    return _Learned(
        weights=weights,
        bias=bias,
        loss=data_loss / rows,
        iterations=int(result.nit),
        converged=bool(result.success),
    )
