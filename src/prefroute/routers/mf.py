"""Matrix factorisation router (RouteLLM's MF), trained with torch, served with numpy.

The paper's model scores a model m on a prompt q as

    δ(m, q) = w2ᵀ (v_m ⊙ (W1ᵀ v_q + b))

with v_q the prompt's embedding and v_m a learned vector per model, and fits
P(a beats b | q) = σ(δ(a, q) − δ(b, q)) to pairwise battles. Every model in the
training battles gets a vector, so the router can be re-targeted to any pair it
has seen (``set_models``) without retraining.

Among N models, δ(m, q) for every candidate is one (features x N) product, and a
candidate's quality its mean chance of beating the others (``model_quality``).

Serving collapses the pair into one vector: δ(s, q) − δ(w, q) = gᵀ v_q + c with
g = W1 (w2 ⊙ (v_s − v_w)) and c = bᵀ (w2 ⊙ (v_s − v_w)), so a score is the
embedding plus one dot product, in numpy; torch is imported by ``fit`` only.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prefroute.errors import ArtifactError
from prefroute.routers.base import (
    DEFAULT_STRONG,
    DEFAULT_WEAK,
    EmbeddingRouter,
    ParameterTable,
    check_pair,
    win_rate_quality,
)
from prefroute.routers.params import Interval, Options

if TYPE_CHECKING:
    from prefroute.data.schema import Battles

TIE_HANDLING = ("half", "drop")
"""``half``: a tie (either kind) is a half win for each side, target 0.5, which
pulls the two models' scores together on that prompt (on golden data most rows
are ties: both right or both wrong). ``drop``: ties are left out, as a pure
win/loss model; 2-3x faster on the shipped recipe, where 61% of rows are ties."""


AUTO = "auto"
"""A hyper-parameter resolved from the data at ``fit`` (``resolve_schedule``)."""
LARGE_BATCH = 8192
SMALL_BATCH = 64
BATTLES_PER_STEP_SHARE = 100
"""``batch_size="auto"``: a step sees a hundredth of the battles, between ``SMALL_BATCH``
and ``LARGE_BATCH``."""
TARGET_STEPS = 3000
"""``epochs="auto"``: enough epochs for about this many optimiser steps, 10 to 100."""
MIN_EPOCHS, MAX_EPOCHS = 10, 100
SMALL_DATA_PROMPTS = 10_000
"""Below this many distinct prompts ``lr`` and ``weight_decay`` "auto" take the small-data
values (3e-3, 1e-2); from it on, the paper's (3e-4, 0)."""


class MFRouter(EmbeddingRouter):
    """RouteLLM's matrix factorisation router over the router's own embedder.

    ``dim`` is the latent size (the paper's 128); ``lr`` the Adam step;
    ``weight_decay`` Adam's L2 penalty. ``batch_size``, ``epochs``, ``lr`` and
    ``weight_decay`` default to ``"auto"``: resolved at ``fit`` from the number of
    battles and prompts (``resolve_schedule``; the values used are in
    ``schedule_``). The paper's settings (batch 8192, 10 epochs, lr 3e-4, no
    decay) suit the shipped recipe's 2.8M battles, but on a few hundred rows they
    make 10 optimiser steps and learn nothing (every score within 0.005 of 0.5);
    there ``"auto"`` takes batches of 64, up to 100 epochs, lr 3e-3 and decay 1e-2,
    or the router memorises its prompts. ``tie_handling`` is one of
    ``TIE_HANDLING``. ``length_features`` appends the prompt's log length in
    characters and words to its embedding (see ``length_features``).
    ``patience``: with ``fit(..., validation=)``, training stops after this many
    epochs without a lower validation loss and keeps the best epoch's weights.
    ``verbose`` draws a progress bar on stderr.

    ``batch_size`` counts battles per optimiser step; batches are whole prompts
    (every battle of a prompt in one step), because the shipped battles repeat
    each prompt ~100 times: a step projects each of its prompts once, scores it
    against all models with one small matmul and reads its battles from that
    table. That makes the full recipe (2.9M battles x 10 epochs) a ~20 s fit on
    one CPU core instead of one projection per battle.
    Model vectors are L2-normalised, as in RouteLLM's code, so their scale lives
    in ``w2`` and the projection.
    """

    kind = "mf"
    per_model_quality = True
    added_params: ClassVar[dict[str, Any]] = {"length_features": False, "patience": 10}
    _parameter_constraints: ClassVar[ParameterTable] = {
        "dim": [Interval(int, 1, None)],
        "epochs": [Interval(int, 1, None), Options(AUTO)],
        "lr": [Interval(float, 0, None, closed="neither"), Options(AUTO)],
        "batch_size": [Interval(int, 1, None), Options(AUTO)],
        "weight_decay": [Interval(float, 0, None), Options(AUTO)],
        "tie_handling": [Options(*TIE_HANDLING)],
        "length_features": [bool],
        "patience": [Interval(int, 1, None)],
        "verbose": [bool],
    }

    def __init__(
        self,
        *,
        dim: int = 128,
        epochs: int | str = AUTO,
        lr: float | str = AUTO,
        batch_size: int | str = AUTO,
        weight_decay: float | str = AUTO,
        tie_handling: str = "half",
        length_features: bool = True,
        patience: int = 10,
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
        self.dim = dim
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.tie_handling = tie_handling
        self.length_features = length_features
        self.patience = patience
        self.verbose = verbose

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "model_vecs_")

    # ----------------------------------------------------------------- fit
    def fit(self, battles: Battles, *, validation: Battles | None = None) -> MFRouter:
        """Learn W1, b, w2 and a vector per model from ``battles``; returns self.

        Each distinct prompt is embedded once. ``weight`` is a sample weight
        (a soft label arrives as two rows weighted p and 1 - p). ``validation``
        (battles on other prompts) is scored after every epoch: training stops
        after ``patience`` epochs without a lower validation loss, and the best
        epoch's weights are kept (``best_epoch_``). Same battles (same row order)
        and ``random_state`` give the same arrays.
        """
        self._begin_fit()
        data = _Prepared(battles, self.tie_handling)
        check_pair(self.strong_model, self.weak_model, data.models)
        held = None
        if validation is not None:
            held = _Prepared(validation, self.tie_handling, models=data.models, allow_empty=True)
        self.schedule_ = resolve_schedule(
            len(data.target),
            len(data.prompts),
            batch_size=self.batch_size,
            epochs=self.epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
        )
        started = time.perf_counter()
        embedder = self._fit_embedder()
        vectors = self._features(embedder.encode(data.prompts), data.prompts)
        held_vectors = None
        if held is not None and held.prompts:
            held_vectors = self._features(embedder.encode(held.prompts), held.prompts)
        learned = _train(
            vectors,
            data,
            dim=self.dim,
            **self.schedule_,
            validation=(held_vectors, held) if held_vectors is not None and held else None,
            patience=self.patience,
            seed=0 if self.random_state is None else int(self.random_state),
            verbose=self.verbose,
        )
        self.w1_ = learned["w1"]
        self.b_ = learned["b"]
        self.w2_ = learned["w2"]
        self.models_ = list(data.models)
        self.loss_history_ = learned["loss_history"]
        self.validation_loss_history_ = learned["validation_loss_history"]
        self.best_epoch_ = learned["best_epoch"]
        self.n_battles_ = len(data.target)
        self.n_prompts_ = len(data.prompts)
        self.model_vecs_ = learned["model_vecs"]
        self._pair_cache: tuple[tuple[str, str], np.ndarray, float] | None = None
        self._candidate_cache: tuple[list[str], np.ndarray, np.ndarray] | None = None
        if self.verbose:
            ran = len(self.loss_history_)
            stop = (
                f", best validation epoch {self.best_epoch_}"
                if self.validation_loss_history_
                else ""
            )
            _console().print(
                f"mf: {self.n_battles_:,} battles, {self.n_prompts_:,} prompts, "
                f"{len(self.models_)} models, {ran} epochs{stop} in "
                f"{time.perf_counter() - started:.1f} s (batch {self.schedule_['batch_size']}, "
                f"lr {self.schedule_['lr']:g}, weight decay {self.schedule_['weight_decay']:g}; "
                f"final loss {self.loss_history_[-1]:.4f})"
            )
        return self

    # ------------------------------------------------------------- routing
    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """σ(δ(strong, q) − δ(weak, q)) per prompt, float32 in [0, 1]."""
        self.check_is_fitted()
        g, c = self._pair()
        # A row-wise sum rather than a BLAS matvec: the same prompt gets the same
        # bits in a batch of one or of thousands (gemv's blocking depends on n).
        inputs = self._features(self.embed(prompts), prompts)
        logits = (inputs * g).sum(axis=1, dtype=np.float64) + c
        return (0.5 + 0.5 * np.tanh(0.5 * logits)).astype(np.float32)

    def model_quality(
        self, prompts: Sequence[str], models: Sequence[str] | None = None
    ) -> np.ndarray:
        """Each candidate's mean chance of beating the other candidates (``win_rate_quality``
        of δ(m, q)); for ``[strong, weak]`` exactly ``strong_win_rate``'s win rate.

        δ for all candidates is one embedding and one (features x N) product:
        δ(m, q) = v_qᵀ G_m + c_m with G = W1 (w2 ⊙ V_m)ᵀ, cached per candidate list.
        """
        self.check_is_fitted()
        g, c = self._candidate_projection(models)
        inputs = self._features(self.embed(prompts), prompts).astype(np.float64)
        return win_rate_quality(inputs @ g + c)

    def _candidate_projection(self, models: Sequence[str] | None) -> tuple[np.ndarray, np.ndarray]:
        """(G, c) with δ(candidates, q) = v_qᵀ G + c, cached for the last candidate list."""
        names, rows = self.candidate_index(models)
        cache = getattr(self, "_candidate_cache", None)
        if cache is not None and cache[0] == names:
            return cache[1], cache[2]
        u = self.w2_.astype(np.float64)[None, :] * self.model_vecs_[rows].astype(np.float64)
        g = self.w1_.astype(np.float64) @ u.T
        c = self.b_.astype(np.float64) @ u.T
        self._candidate_cache = (names, g, c)
        return g, c

    def _features(self, vectors: np.ndarray, prompts: Sequence[str]) -> np.ndarray:
        if not self.length_features:
            return vectors
        return np.hstack([vectors, length_features(prompts)])

    def _pair(self) -> tuple[np.ndarray, float]:
        """(g, c) with δ(strong) − δ(weak) = gᵀ v_q + c, cached per pair.

        Checked here rather than only in ``retarget``: ``strong_model`` and
        ``weak_model`` are plain attributes, so they may be set directly.
        """
        pair = (self.strong_model, self.weak_model)
        cache = getattr(self, "_pair_cache", None)
        if cache is not None and cache[0] == pair:
            return cache[1], cache[2]
        index = {m: i for i, m in enumerate(self.models_)}
        check_pair(*pair, self.models_)
        vecs = self.model_vecs_.astype(np.float64)
        u = self.w2_.astype(np.float64) * (vecs[index[pair[0]]] - vecs[index[pair[1]]])
        g = (self.w1_.astype(np.float64) @ u).astype(np.float32)
        c = float(self.b_.astype(np.float64) @ u)
        self._pair_cache = (pair, g, c)
        return g, c

    # --------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        return {"w1": self.w1_, "b": self.b_, "w2": self.w2_, "model_vecs": self.model_vecs_}

    def _state(self) -> dict[str, Any]:
        return {
            "models": self.models_,
            "loss_history": self.loss_history_,
            "validation_loss_history": self.validation_loss_history_,
            "best_epoch": self.best_epoch_,
            "schedule": self.schedule_,
            "n_battles": self.n_battles_,
            "n_prompts": self.n_prompts_,
        }

    def _restore(self, arrays: dict[str, np.ndarray], state: Mapping[str, Any], root: Path) -> None:
        self.w1_ = arrays["w1"]
        self.b_ = arrays["b"]
        self.w2_ = arrays["w2"]
        self.models_ = list(state["models"])
        self.loss_history_ = list(state.get("loss_history", []))
        self.validation_loss_history_ = list(state.get("validation_loss_history", []))
        self.best_epoch_ = int(state.get("best_epoch", len(self.loss_history_)))
        self.schedule_ = dict(state.get("schedule", {}))
        self.n_battles_ = int(state.get("n_battles", 0))
        self.n_prompts_ = int(state.get("n_prompts", 0))
        self._pair_cache = None
        self._candidate_cache = None
        self.model_vecs_ = arrays["model_vecs"]
        if self.model_vecs_.shape[0] != len(self.models_):
            raise ArtifactError(
                f"{root}: {self.model_vecs_.shape[0]} model vectors but {len(self.models_)} "
                "model names; the artifact is damaged"
            )
        inputs = self.embedder_.dim + (2 if self.length_features else 0)
        if self.w1_.shape[0] != inputs:
            raise ArtifactError(
                f"{root}: W1 takes {self.w1_.shape[0]} inputs, but the embedder gives "
                f"{self.embedder_.dim} (length_features={self.length_features}); "
                "the artifact is damaged"
            )


def length_features(prompts: Sequence[str]) -> np.ndarray:
    """``(n, 2)`` float32: log(1 + characters) / 8 and log(1 + words) / 6, about [0, 1.5].

    Embeddings are L2-normalised mean pools, so they cannot tell a one-line
    question from a page-long problem; length alone routes MMLU and GSM8K
    better than chance (../shared/REFERENCE.md), so MF gets it as two inputs.

    NOTE: ``str.split`` over the whole prompt is 1-2% of an MF call on real
    Arena-Hard prompts (2 µs of ~0.1 ms; 5 of 236 ms per 2,490 batched), and a
    numpy count over the bytes measured no faster in batches, so it stays.
    """
    chars = np.fromiter((len(p) for p in prompts), dtype=np.float64, count=len(prompts))
    words = np.fromiter((len(p.split()) for p in prompts), dtype=np.float64, count=len(prompts))
    return np.stack([np.log1p(chars) / 8, np.log1p(words) / 6], axis=1).astype(np.float32)


def resolve_schedule(
    n_battles: int,
    n_prompts: int,
    *,
    batch_size: int | str = AUTO,
    epochs: int | str = AUTO,
    lr: float | str = AUTO,
    weight_decay: float | str = AUTO,
) -> dict[str, Any]:
    """The optimiser settings for a fit on ``n_battles`` battles over ``n_prompts`` prompts.

    Each ``"auto"`` is replaced by its data-dependent value, given values are kept:

    - ``batch_size``: n_battles / ``BATTLES_PER_STEP_SHARE``, within ``SMALL_BATCH`` ..
      ``LARGE_BATCH`` (the shipped recipe's 2.8M battles: 8192, the paper's);
    - ``epochs``: enough for ``TARGET_STEPS`` optimiser steps, within ``MIN_EPOCHS`` ..
      ``MAX_EPOCHS`` (the recipe: 10; 300 battles: 100);
    - ``lr`` and ``weight_decay``: 3e-3 and 1e-2 below ``SMALL_DATA_PROMPTS`` prompts,
      where few steps need larger ones and decay keeps the prompts from being memorised;
      from it on the paper's 3e-4 and 0.
    """
    small = n_prompts < SMALL_DATA_PROMPTS
    if batch_size == AUTO:
        batch_size = int(np.clip(n_battles // BATTLES_PER_STEP_SHARE, SMALL_BATCH, LARGE_BATCH))
    if epochs == AUTO:
        steps_per_epoch = max(1, -(-n_battles // int(batch_size)))
        epochs = int(np.clip(-(-TARGET_STEPS // steps_per_epoch), MIN_EPOCHS, MAX_EPOCHS))
    if lr == AUTO:
        lr = 3e-3 if small else 3e-4
    if weight_decay == AUTO:
        weight_decay = 1e-2 if small else 0.0
    return {
        "batch_size": int(batch_size),
        "epochs": int(epochs),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
    }


# -------------------------------------------------------------- internals


class _Prepared:
    """Battles as arrays, sorted by prompt: ``pid`` indexes ``prompts``, ``a``/``b`` ``models``."""

    def __init__(
        self,
        battles: Battles,
        tie_handling: str,
        *,
        models: Sequence[str] | None = None,
        allow_empty: bool = False,
    ) -> None:
        import polars as pl

        from prefroute.data.schema import OUTCOME_SCORE

        frame = battles.frame.filter(pl.col("weight") > 0)
        if tie_handling == "drop":
            frame = frame.filter(~pl.col("winner").is_in(["tie", "tie_bothbad"]))
        if models is not None:  # validation battles: only models the fit has vectors for
            frame = frame.filter(pl.col("model_a").is_in(models) & pl.col("model_b").is_in(models))
        if frame.height == 0 and not allow_empty:
            raise ValueError(
                "no battles to fit on (need rows with weight > 0"
                + (" that are not ties" if tie_handling == "drop" else "")
                + f"; got {len(battles)} rows)"
            )
        # Sorting by prompt numbers the prompts and groups each prompt's battles,
        # which is the order training reads them in. Stable, so deterministic.
        frame = frame.sort("prompt", maintain_order=True)
        first = pl.col("prompt") != pl.col("prompt").shift(1)
        if models is None:
            models = sorted(set(frame["model_a"].unique()) | set(frame["model_b"].unique()))
        self.models: tuple[str, ...] = tuple(models)
        enum = pl.Enum(list(models))
        arrays = frame.select(
            pid=first.fill_null(True).cum_sum().cast(pl.Int64) - 1,
            a=pl.col("model_a").cast(enum).to_physical().cast(pl.Int64),
            b=pl.col("model_b").cast(enum).to_physical().cast(pl.Int64),
            y=pl.col("winner")
            .cast(pl.String)
            .replace_strict(OUTCOME_SCORE, return_dtype=pl.Float32),
            w=pl.col("weight").cast(pl.Float32),
        )
        self.prompts: list[str] = frame.filter(first.fill_null(True))["prompt"].to_list()
        self.pid = arrays["pid"].to_numpy().copy()
        self.a = arrays["a"].to_numpy().copy()
        self.b = arrays["b"].to_numpy().copy()
        self.target = arrays["y"].to_numpy().copy()
        self.weight = arrays["w"].to_numpy().copy()

    def __len__(self) -> int:
        return len(self.target)


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _train(
    vectors: np.ndarray,
    data: _Prepared,
    *,
    dim: int,
    epochs: int,
    lr: float,
    batch_size: int,
    weight_decay: float,
    validation: tuple[np.ndarray, _Prepared] | None,
    patience: int,
    seed: int,
    verbose: bool,
) -> dict[str, Any]:
    """Adam on the weighted BCE of σ(δ(a) − δ(b)) against the targets; numpy out.

    Each epoch shuffles the prompts (numpy, seeded) and cuts them into batches
    of about ``batch_size`` battles. A step computes δ for its k prompts and
    all M models as one (k x M) matrix, then gathers each battle's two entries
    with ``index_select`` (whose backward is a cheap scatter-add). With
    ``validation`` (its prompts' vectors and battles), the weighted BCE on it is
    measured after every epoch; ``patience`` epochs without a new best stop the
    fit, and the best epoch's weights are returned.
    """
    try:
        import torch
        import torch.nn.functional as F  # noqa: N812
    except ImportError:
        raise ImportError(
            "fitting an MF router needs torch: pip install 'prefroute[train]' "
            "(loading and routing a fitted one does not)"
        ) from None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    n_prompts, n_models = len(data.prompts), len(data.models)
    counts = np.bincount(data.pid, minlength=n_prompts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = len(data.pid)

    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    d = vectors.shape[1]
    emb = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    a_all, b_all = torch.from_numpy(data.a), torch.from_numpy(data.b)
    y_all, w_all = torch.from_numpy(data.target), torch.from_numpy(data.weight)
    # Initialised as RouteLLM's modules are: Linear (uniform ±1/sqrt(fan_in)) for
    # the projection and w2, Embedding (standard normal) for the model vectors.
    w1 = ((torch.rand(d, dim, generator=gen) * 2 - 1) / d**0.5).requires_grad_()
    b = torch.zeros(dim, requires_grad=True)
    w2 = ((torch.rand(dim, generator=gen) * 2 - 1) / dim**0.5).requires_grad_()
    models = torch.randn(n_models, dim, generator=gen).requires_grad_()
    params = [w1, b, w2, models]
    optimiser = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)

    def validation_loss() -> float:
        """Weighted mean BCE on the validation battles under the current weights."""
        assert validation is not None
        held_vectors, held = validation
        with torch.no_grad():
            proj = torch.from_numpy(np.ascontiguousarray(held_vectors, dtype=np.float32)) @ w1 + b
            delta = proj @ (F.normalize(models, dim=1) * w2).T
            pid = torch.from_numpy(held.pid)
            logit = delta[pid, torch.from_numpy(held.a)] - delta[pid, torch.from_numpy(held.b)]
            weight = torch.from_numpy(held.weight)
            loss = F.binary_cross_entropy_with_logits(
                logit, torch.from_numpy(held.target), weight=weight, reduction="sum"
            )
            return float(loss / weight.sum())

    # Batches per epoch, known up front for the progress bar: a prompt joins the
    # batch its last battle falls in, so a batch ends on a prompt boundary.
    def epoch_batches(order: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = counts[order]
        ends = np.cumsum(c)
        index = np.repeat(starts[order] - (ends - c), c) + np.arange(n)
        batch_of = (ends - 1) // batch_size
        cuts = np.concatenate([[0], np.flatnonzero(np.diff(batch_of)) + 1, [len(order)]])
        return index, np.concatenate([[0], ends]), cuts

    present = np.flatnonzero(counts)
    history: list[float] = []
    held_history: list[float] = []
    best: tuple[int, float, list[Any]] | None = None  # (epoch, loss, weights)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # One thread: a step's tensors are small (k prompts x 256, ~8k battles), so
    # threads cost more in synchronisation than they save (3 ms a step on one
    # thread; on 2 busy cores, OpenMP barriers made 2 threads 100x slower), and
    # results do not depend on the machine's core count.
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        with Progress(*columns, console=_console(), disable=not verbose) as progress:
            task = progress.add_task("mf: fitting", total=None)
            for epoch in range(epochs):
                order = rng.permutation(present)
                index, bounds, cuts = epoch_batches(order)
                if epoch == 0:
                    progress.update(task, total=epochs * (len(cuts) - 1))
                index_t = torch.from_numpy(index)
                position = torch.from_numpy(np.repeat(np.arange(len(order)), counts[order]))
                order_t = torch.from_numpy(order)
                total, weight_sum = 0.0, 0.0
                for p0, p1 in zip(cuts[:-1], cuts[1:], strict=True):
                    lo, hi = int(bounds[p0]), int(bounds[p1])
                    rows = index_t[lo:hi]
                    local = (position[lo:hi] - int(p0)) * n_models
                    proj = emb.index_select(0, order_t[p0:p1]) @ w1 + b
                    table = F.normalize(models, dim=1) * w2
                    delta = (proj @ table.T).reshape(-1)
                    logit = delta.index_select(0, local + a_all.index_select(0, rows))
                    logit = logit - delta.index_select(0, local + b_all.index_select(0, rows))
                    w = w_all.index_select(0, rows)
                    loss_sum = F.binary_cross_entropy_with_logits(
                        logit, y_all.index_select(0, rows), weight=w, reduction="sum"
                    )
                    batch_weight = float(w.sum())
                    optimiser.zero_grad(set_to_none=True)
                    (loss_sum / batch_weight).backward()
                    optimiser.step()
                    total += float(loss_sum.detach())
                    weight_sum += batch_weight
                    progress.update(
                        task,
                        advance=1,
                        description=f"mf: epoch {epoch + 1}/{epochs} loss {total / weight_sum:.4f}",
                    )
                history.append(round(total / weight_sum, 6))
                if validation is None:
                    continue
                held_history.append(round(validation_loss(), 6))
                if best is None or held_history[-1] < best[1]:
                    best = (epoch + 1, held_history[-1], [p.detach().clone() for p in params])
                elif epoch + 1 - best[0] >= patience:
                    progress.update(task, total=(epoch + 1) * (len(cuts) - 1))
                    break
    finally:
        torch.use_deterministic_algorithms(deterministic)
        torch.set_num_threads(threads)

    best_epoch = len(history)
    if best is not None:
        best_epoch = best[0]
        with torch.no_grad():
            for param, kept in zip(params, best[2], strict=True):
                param.copy_(kept)
    with torch.no_grad():
        return {
            "w1": w1.detach().numpy().astype(np.float32),
            "b": b.detach().numpy().astype(np.float32),
            "w2": w2.detach().numpy().astype(np.float32),
            "model_vecs": F.normalize(models, dim=1).detach().numpy().astype(np.float32),
            "loss_history": history,
            "validation_loss_history": held_history,
            "best_epoch": best_epoch,
        }
