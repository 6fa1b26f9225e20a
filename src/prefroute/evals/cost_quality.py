"""Quality against cost among N models: curves, the convex hull and AIQ, pure numpy.

A router with a policy (``prefroute.policy``) traces, as λ sweeps from 0 to
∞, points of (mean $ per call, mean true quality) over an eval set's prompts.
Any two points can be mixed (route a random part of the traffic at one λ, the
rest at the other), so what a router offers is the **upper convex hull** of
its points, made non-decreasing (paying more never has to buy less). RouterBench
(arXiv 2403.12031) summarises a hull by

    AIQ = 1 / (c_max − c_min) · ∫_{c_min}^{c_max} hull(c) dc

over the candidates' cost range: c_min the cheapest single model's mean cost,
c_max the dearest's. The single models' own hull is what routing at random
between them buys (the "zero router"): a router must beat it to be worth
having. The oracle knows each prompt's true qualities.

Conventions: a hull is flat beyond its dearest point; below its cheapest
point (which a λ sweep reaching λ = ∞ never leaves uncovered, since there it
takes the cheapest model of every prompt) it is taken at that point's quality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prefroute.errors import EvalError
from prefroute.policy import Frontier

__all__ = [
    "CostCurve",
    "Hull",
    "hull",
    "oracle_curve",
    "policy_curve",
    "single_points",
]


@dataclass(frozen=True, eq=False)
class Hull:
    """A non-decreasing concave frontier of (cost, quality), linear between its vertices."""

    cost: np.ndarray
    quality: np.ndarray

    def at(self, cost: float | np.ndarray) -> np.ndarray:
        """Quality at any cost: linear between vertices, flat outside them."""
        return np.interp(np.asarray(cost, dtype=np.float64), self.cost, self.quality)

    def aiq(self, low: float, high: float) -> float:
        """Mean quality over the cost range [low, high] (RouterBench's AIQ)."""
        if not high > low:
            raise EvalError(
                f"AIQ needs a cost range, got [{low:.6g}, {high:.6g}]: the candidates all "
                "cost the same, so there is no trade-off to measure"
            )
        inside = self.cost[(self.cost > low) & (self.cost < high)]
        x = np.concatenate([[low], inside, [high]])
        y = self.at(x)
        return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0) / (high - low))

    def cost_to_reach(self, quality: float) -> float | None:
        """The lowest cost at which the hull reaches ``quality``; None if it never does."""
        q = self.quality
        if q[-1] < quality - 1e-12:
            return None
        j = int(np.argmax(q >= quality - 1e-12))
        if j == 0:
            return float(self.cost[0])
        lo, hi = q[j - 1], q[j]
        return float(
            self.cost[j - 1] + (quality - lo) / (hi - lo) * (self.cost[j] - self.cost[j - 1])
        )


def hull(cost: np.ndarray, quality: np.ndarray) -> Hull:
    """The non-decreasing upper convex hull of points (Andrew's monotone chain).

    From the cheapest point (the best of those at that cost) up to the best
    point; points below the chords are dropped.
    """
    c = np.asarray(cost, dtype=np.float64).ravel()
    q = np.asarray(quality, dtype=np.float64).ravel()
    if c.shape != q.shape or c.size == 0:
        raise EvalError(f"a hull needs points of (cost, quality), got {c.size} and {q.size}")
    if not (np.isfinite(c).all() and np.isfinite(q).all()):
        raise EvalError("costs and qualities must be finite numbers")
    order = np.lexsort((-q, c))  # by cost, the best first among equal costs
    c, q = c[order], q[order]
    keep: list[int] = []
    for i in range(len(c)):
        if keep and c[i] == c[keep[-1]]:
            continue  # a worse point at the same cost
        if keep and q[i] <= q[keep[-1]]:
            continue  # dearer and no better: never on a non-decreasing hull
        while len(keep) >= 2:
            a, b = keep[-2], keep[-1]
            # drop b when it lies on or below the chord from a to i
            cross = (c[b] - c[a]) * (q[i] - q[a]) - (q[b] - q[a]) * (c[i] - c[a])
            if cross >= 0:
                keep.pop()
            else:
                break
        keep.append(i)
    return Hull(cost=c[keep], quality=q[keep])


@dataclass(frozen=True, eq=False)
class CostCurve:
    """A policy's operating points over λ: mean $ per call and mean true quality.

    ``lam[k]`` is where point k starts (``lam[0]`` = 0, the best predicted
    models); points run from dear to cheap. ``shares`` (points x models) is the
    share of prompts each candidate gets at each point.
    """

    lam: np.ndarray
    cost: np.ndarray
    quality: np.ndarray
    shares: np.ndarray

    @property
    def hull(self) -> Hull:
        return hull(self.cost, self.quality)


def policy_curve(predicted: np.ndarray, costs: np.ndarray, true_quality: np.ndarray) -> CostCurve:
    """Every operating point of the λ policy on a router's ``predicted`` qualities,
    measured with the eval set's ``true_quality`` (all (prompts, models))."""
    p = np.asarray(predicted, dtype=np.float64)
    t = np.asarray(true_quality, dtype=np.float64)
    if p.shape != t.shape:
        raise EvalError(f"predicted {p.shape} and true {t.shape} qualities differ in shape")
    frontier = Frontier.of(p, costs)
    lams, mean_cost = frontier.sweep(costs)
    _, mean_quality = frontier.sweep(t)
    shares = frontier.share_sweep(p.shape[1])
    return CostCurve(lam=lams, cost=mean_cost, quality=mean_quality, shares=shares)


def oracle_curve(costs: np.ndarray, true_quality: np.ndarray) -> CostCurve:
    """The policy that knows every prompt's true qualities: the best any router can do."""
    return policy_curve(true_quality, costs, true_quality)


def single_points(costs: np.ndarray, true_quality: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each model's (mean $ per call, mean quality) when it answers every prompt."""
    return (
        np.asarray(costs, dtype=np.float64).mean(axis=0),
        np.asarray(true_quality, dtype=np.float64).mean(axis=0),
    )
