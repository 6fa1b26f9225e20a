"""The paper's routing metrics, computed exactly from per-prompt scores.

A router with score s sends a prompt to the strong model when s ≥ t. Sweeping t
over every distinct score traces the *curve* of (strong share c, mean quality
r). Prompts with equal scores cross any threshold together, so the curve has one
point per distinct score, plus (0, r_weak), and is linear between points: the
expected quality if the tied group were split at random. That is why ties give
no free credit: a constant score is exactly the random line (APGR 0.5).

- PGR(c) = (r(c) − r_weak) / (r_strong − r_weak)
- AUC = ∫₀¹ r(c) dc (trapezoids, exact for a piecewise-linear curve)
- APGR = ∫₀¹ PGR(c) dc = (AUC − r_weak) / (r_strong − r_weak)
- CPT(x) = the smallest c at which PGR(c) reaches x
- oracle: score = strong quality − weak quality (the best any router can do)
- uncertainty: APGR's bootstrap interval (prompts resampled), the band random
  routers reach on the same prompts, and the strong model's quality gap with its
  interval (PGR divides by it: a gap within noise makes every PGR noise)

Pure numpy, no I/O: ``report.py`` draws and prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from prefroute.errors import EvalError

__all__ = [
    "CPT_LEVELS",
    "CallCosts",
    "Curve",
    "Gap",
    "Interval",
    "apgr",
    "apgr_interval",
    "cost_saving",
    "curve",
    "oracle_curve",
    "quality_gap",
    "random_band",
    "random_curve",
]

CPT_LEVELS = (0.2, 0.5, 0.8)
"""The PGR levels the paper reports CPT at."""


@dataclass(frozen=True, eq=False)
class Curve:
    """Mean quality against the share of calls sent to the strong model.

    Points are sorted by ``share``, from (0, r_weak) to (1, r_strong);
    ``thresholds[i]`` is the score threshold giving point i (+inf for share 0).
    The curve is linear between points.
    """

    share: np.ndarray
    quality: np.ndarray
    pgr: np.ndarray
    thresholds: np.ndarray
    r_strong: float
    r_weak: float

    @property
    def auc(self) -> float:
        """Area under quality over share in [0, 1], in the quality's own units."""
        return _area(self.quality, self.share)

    @property
    def apgr(self) -> float:
        """Average performance gap recovered: the mean PGR over share in [0, 1]."""
        return _area(self.pgr, self.share)

    def cpt(self, level: float) -> float:
        """Call-performance threshold: the smallest share whose PGR reaches ``level``.

        ``level`` in (0, 1]; PGR is 1 at share 1, so such a share always exists.
        Interpolated inside a segment (a tied group split at random).
        """
        if not 0.0 < level <= 1.0:
            raise ValueError(f"CPT level must be in (0, 1], got {level}")
        j = int(np.argmax(self.pgr >= level))  # first point reaching it; pgr[0] = 0
        lo, hi = self.pgr[j - 1], self.pgr[j]
        step = self.share[j] - self.share[j - 1]
        return float(self.share[j - 1] + (level - lo) / (hi - lo) * step)

    def quality_at(self, share: ArrayLike) -> np.ndarray:
        """Mean quality at any strong shares (linear between points)."""
        return np.interp(np.asarray(share, dtype=np.float64), self.share, self.quality)


def _area(y: np.ndarray, x: np.ndarray) -> float:
    """Trapezoid rule (``np.trapezoid`` needs numpy 2; we support 1.26)."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def _qualities(strong: ArrayLike, weak: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(strong, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    if s.ndim != 1 or s.shape != w.shape:
        raise ValueError(
            f"strong and weak qualities must be 1-d and of one length, got {s.shape} and {w.shape}"
        )
    if s.size == 0:
        raise EvalError("no prompts to evaluate on")
    if not (np.isfinite(s).all() and np.isfinite(w).all()):
        raise ValueError("qualities must be finite numbers")
    return s, w


def curve(scores: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> Curve:
    """The quality/strong-share curve of a router's ``scores`` (higher → strong).

    ``strong`` and ``weak`` are each prompt's quality under either model (any
    scale, higher is better). Raises ``EvalError`` if both models have the same
    mean quality: there is no gap to recover, so PGR is undefined.
    """
    s, w = _qualities(strong, weak)
    x = np.asarray(scores, dtype=np.float64)
    if x.shape != s.shape:
        raise ValueError(f"got {x.size} scores for {s.size} prompts")
    if not np.isfinite(x).all():
        raise ValueError("router scores must be finite numbers")
    order = np.argsort(-x, kind="stable")
    ranked = x[order]
    gains = np.cumsum(s[order] - w[order])
    # the last prompt of each group of equal scores, in descending score order
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    gain = np.concatenate([[0.0], gains[ends]])
    if gain[-1] == 0.0:
        raise EvalError(
            f"the strong and weak models have the same mean quality ({s.mean():.6g}) on these "
            "prompts, so there is no gap to recover: PGR, APGR and CPT are undefined"
        )
    r_strong, r_weak = float(s.mean()), float(w.mean())
    pgr = gain / gain[-1]  # exactly 0 at share 0 and 1 at share 1
    return Curve(
        share=np.concatenate([[0.0], (ends + 1) / x.size]),
        quality=r_weak + pgr * (r_strong - r_weak),
        pgr=pgr,
        thresholds=np.concatenate([[np.inf], ranked[ends]]),
        r_strong=r_strong,
        r_weak=r_weak,
    )


def oracle_curve(strong: ArrayLike, weak: ArrayLike) -> Curve:
    """The perfect router's curve: it sends first the prompts the strong model helps most."""
    s, w = _qualities(strong, weak)
    return curve(s - w, s, w)


def random_curve(strong: ArrayLike, weak: ArrayLike) -> Curve:
    """The random router's line from (0, r_weak) to (1, r_strong): APGR 0.5, CPT(x) = x."""
    s, _ = _qualities(strong, weak)
    return curve(np.zeros_like(s), strong, weak)


def apgr(scores: ArrayLike, strong: ArrayLike, weak: ArrayLike) -> float:
    """APGR of a router's scores: the paper's headline number (random 0.5, perfect ≥ 1)."""
    return curve(scores, strong, weak).apgr


@dataclass(frozen=True)
class CallCosts:
    """$ per call of the strong and of the weak model: what a saving is a ratio of.

    Built from the price table and a token mix (``prefroute.prices``), so the
    input/output split of each model's price counts; ``evaluate`` says which.
    """

    strong: float
    weak: float

    def __post_init__(self) -> None:
        if not (self.strong >= 0 and self.weak >= 0 and self.strong + self.weak > 0):
            raise EvalError(
                f"call costs must be >= 0 and not both 0, got strong {self.strong}, "
                f"weak {self.weak}"
            )

    def blended(self, share: float) -> float:
        """$ per call when ``share`` of the calls go to the strong model."""
        return share * self.strong + (1.0 - share) * self.weak


def cost_saving(share: float, costs: CallCosts, *, baseline_share: float = 1.0) -> float:
    """How many times cheaper ``share`` strong calls are than ``baseline_share`` of them.

    ``baseline_share=1`` compares with calling the strong model always. With
    ``share = CPT(x)`` and ``baseline_share = x`` it compares with the random
    router reaching the same PGR. NOTE: the paper's savings at CPT(50%) (1.41x
    MMLU, 1.49x GSM8K) match this second reading, not the first.
    """
    spent = costs.blended(share)
    return costs.blended(baseline_share) / spent if spent > 0 else math.inf


# ----------------------------------------------------------------- uncertainty

BOOTSTRAP_RESAMPLES = 1000
RANDOM_ROUTERS = 1000
_BLOCK = 2_000_000
"""Matrix cells per block of resamples: bounds memory (16 MB of float64) on 14k prompts."""


@dataclass(frozen=True)
class Interval:
    """A range of a statistic: ``low`` to ``high``, and the quantiles that bound it."""

    low: float
    high: float
    quantiles: tuple[float, float]

    def __str__(self) -> str:
        return f"[{self.low:.3f}, {self.high:.3f}]"

    def to_dict(self) -> dict[str, float | list[float]]:
        return {"low": self.low, "high": self.high, "quantiles": list(self.quantiles)}


def _apgr_rows(gains: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """APGR of many curves at once, one per row of cumulative gains and prompt counts
    at each point after (0, 0). A row whose models tie (no gap) gives NaN."""
    zeros = np.zeros((gains.shape[0], 1))
    gain = np.hstack([zeros, gains])
    share = np.hstack([zeros, counts]) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        pgr = gain / gain[:, -1:]
        return np.sum(np.diff(share, axis=1) * (pgr[:, 1:] + pgr[:, :-1]) / 2.0, axis=1)


def apgr_interval(
    scores: ArrayLike,
    strong: ArrayLike,
    weak: ArrayLike,
    *,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of a router's APGR, resampling prompts with replacement.

    Each resample is a new set of prompts drawn from this one, so the interval
    says how much the APGR would move on another set of this size from the same
    traffic. The same ``seed`` draws the same resamples for every router on a
    set, so their intervals compare like with like. Ties are grouped as in
    ``curve`` (a resampled prompt keeps its score).
    """
    s, w = _qualities(strong, weak)
    x = np.asarray(scores, dtype=np.float64)
    if x.shape != s.shape:
        raise ValueError(f"got {x.size} scores for {s.size} prompts")
    order = np.argsort(-x, kind="stable")
    ranked = x[order]
    ends = np.flatnonzero(np.append(ranked[1:] != ranked[:-1], True))
    diff = (s - w)[order]
    n = s.size
    rng = np.random.default_rng(seed)
    values = []
    for size in _blocks(resamples, n):
        picks = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        counts = np.bincount(picks.ravel(), minlength=size * n).reshape(size, n)[:, order]
        gains = np.cumsum(counts * diff, axis=1)[:, ends]
        values.append(_apgr_rows(gains, np.cumsum(counts, axis=1)[:, ends], n))
    tail = round((1 - level) / 2, 12)  # 0.025, not 0.025000000000000022, in the JSON
    return _quantiles(np.concatenate(values), (tail, 1 - tail))


def random_band(
    strong: ArrayLike,
    weak: ArrayLike,
    *,
    quantiles: tuple[float, float] = (0.05, 0.95),
    routers: int = RANDOM_ROUTERS,
    seed: int = 0,
) -> Interval:
    """The spread of APGR that routers scoring at random reach on these prompts.

    The random line is APGR 0.5 on average, but one random router on a few
    hundred prompts lands well off it; a router whose APGR sits inside this band
    has not shown it beats chance.
    """
    s, w = _qualities(strong, weak)
    n = s.size
    rng = np.random.default_rng(seed)
    diff = s - w
    values = []
    for size in _blocks(routers, n):
        shuffled = rng.permuted(np.broadcast_to(diff, (size, n)), axis=1)
        steps = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), (size, n))
        values.append(_apgr_rows(np.cumsum(shuffled, axis=1), steps, n))
    return _quantiles(np.concatenate(values), quantiles)


def _blocks(total: int, n: int) -> list[int]:
    if total < 1:
        raise ValueError(f"need at least one resample, got {total}")
    per = max(1, _BLOCK // max(n, 1))
    return [min(per, total - start) for start in range(0, total, per)]


def _quantiles(values: np.ndarray, quantiles: tuple[float, float]) -> Interval:
    finite = values[np.isfinite(values)]
    if finite.size == 0:  # every resample had no gap: nothing to say
        return Interval(math.nan, math.nan, quantiles)
    low, high = np.quantile(finite, quantiles)
    return Interval(float(low), float(high), quantiles)


@dataclass(frozen=True)
class Gap:
    """The strong model's mean quality advantage on a set, with its 95% interval.

    From the per-prompt differences (normal approximation of their mean): the
    interval is what another set of this size could show. PGR divides by this
    gap, so when it is negative the metrics are inverted, and when the interval
    holds 0 they are measured against noise.
    """

    mean: float
    low: float
    high: float

    @property
    def within_noise(self) -> bool:
        return self.low <= 0.0 <= self.high

    @property
    def inverted(self) -> bool:
        return self.mean < 0.0


def quality_gap(strong: ArrayLike, weak: ArrayLike) -> Gap:
    """``Gap`` of mean(strong - weak) over the prompts, with a 95% interval."""
    s, w = _qualities(strong, weak)
    d = s - w
    mean = float(d.mean())
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(d.size) if d.size > 1 else math.inf
    return Gap(mean, mean - half, mean + half)
