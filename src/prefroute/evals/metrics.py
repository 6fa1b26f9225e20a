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

Pure numpy, no I/O: ``report.py`` draws and prints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from prefroute.errors import EvalError

__all__ = [
    "CPT_LEVELS",
    "Curve",
    "Prices",
    "apgr",
    "cost_saving",
    "curve",
    "oracle_curve",
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
class Prices:
    """$ per 1M tokens per model; defaults are the paper's (GPT-4 $24.7, Mixtral $0.24)."""

    strong: float = 24.7
    weak: float = 0.24

    def __post_init__(self) -> None:
        if not self.strong > self.weak >= 0:
            raise EvalError(
                f"prices must satisfy strong > weak >= 0, got strong {self.strong}, "
                f"weak {self.weak}"
            )

    def blended(self, share: float) -> float:
        """$ per 1M tokens when ``share`` of the calls go to the strong model.

        Assumes calls of similar length on both models, the paper's blended view.
        """
        return share * self.strong + (1.0 - share) * self.weak


def cost_saving(share: float, prices: Prices = Prices(), *, baseline_share: float = 1.0) -> float:
    """How many times cheaper ``share`` strong calls are than ``baseline_share`` of them.

    ``baseline_share=1`` compares with calling the strong model always. With
    ``share = CPT(x)`` and ``baseline_share = x`` it compares with the random
    router reaching the same PGR. NOTE: the paper's savings at CPT(50%) (1.41x
    MMLU, 1.49x GSM8K) match this second reading, not the first.
    """
    return prices.blended(baseline_share) / prices.blended(share)
