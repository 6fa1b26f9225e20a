"""Choosing among N models: per prompt, expected quality minus λ times cost.

A router that can (``Router.model_quality``) estimates every candidate model's
quality q_m(x) on a prompt x; a call to each candidate has a price
(``prefroute.prices``) and so a cost c_m(x) in $. The policy picks

    choice(x) = argmax_m  q_m(x) + β_m − λ · c_m(x)

λ ≥ 0 is the price of quality: 0 takes the best predicted model whatever it
costs, a large λ the cheapest model. β (``offsets``) are 0 except when a share
per model is asked for. Ties go to the cheaper model. λ is found on real
traffic (``lambda_for_budget``, ``lambda_for_quality``; ``offsets_for_shares``):
the chosen cost of every prompt only falls as λ grows, so the mean cost is a
non-increasing step function of λ, computed exactly by ``Frontier``.

Binary routing is the N = 2 case. Every kind's qualities satisfy
``strong_win_rate = 1/2 + (q_s − q_w) / 2`` (see ``Router.model_quality``), so
with constant per-call costs c_s > c_w the policy sends a prompt to the
strong model exactly when ``strong_win_rate > 1/2 + λ (c_s − c_w) / 2``: the
threshold ``t = 1/2 + λ Δc / 2`` (``threshold_for_lambda``). A threshold below
1/2 is a negative λ (the router's scores lean towards the weak model); a
share target (``offsets_for_shares``) reproduces ``@<share>%`` routing with
λ = 0 and β_s − β_w = 1 − 2t.

numpy only: serving imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from prefroute.errors import InvalidParameterError
from prefroute.prices import PAPER_MIX, PriceTable, TokenMix

if TYPE_CHECKING:
    from prefroute.routers.artifact import OperatingPoint
    from prefroute.routers.base import Router

__all__ = [
    "BUDGET_UNITS",
    "CallCosts",
    "Decision",
    "Frontier",
    "Policy",
    "budget_per_call",
    "choose",
    "lambda_for_budget",
    "lambda_for_quality",
    "offsets_for_shares",
    "shares_of",
    "threshold_for_lambda",
]

BUDGET_UNITS = ("1m-tokens", "1k-requests")
"""A budget is $ per 1M tokens (input and output together, as blended prices are
quoted) or $ per 1,000 requests."""
_SHARE_PASSES = 100
"""Coordinate passes of ``offsets_for_shares``; two models need one, ten models a few."""


# ------------------------------------------------------------------------ costs


@dataclass(frozen=True)
class CallCosts:
    """What one call to each candidate costs: list prices and a token count per call.

    ``input_prices`` / ``output_prices`` are $ per 1M tokens, one per model in
    ``models``. A call has ``output_tokens`` output tokens and ``input_tokens``
    input tokens, or, when that is None, as many as ``prefroute.tokens`` estimates
    from the prompt's text (the rule ``route`` and ``label`` price calls with):
    long prompts cost more, per model as its input price says.
    """

    models: tuple[str, ...]
    input_prices: tuple[float, ...]
    output_prices: tuple[float, ...]
    output_tokens: float = PAPER_MIX.output_tokens
    input_tokens: float | None = None

    def __post_init__(self) -> None:
        n = len(self.models)
        if n == 0:
            raise InvalidParameterError("no candidate models: give at least one")
        if len(set(self.models)) != n:
            raise InvalidParameterError(f"candidate models repeat: {list(self.models)}")
        if len(self.input_prices) != n or len(self.output_prices) != n:
            raise InvalidParameterError(
                f"{n} candidate models but {len(self.input_prices)} input and "
                f"{len(self.output_prices)} output prices"
            )
        prices = (*self.input_prices, *self.output_prices, self.output_tokens)
        if not all(np.isfinite(p) and p >= 0 for p in prices):
            raise InvalidParameterError("prices and token counts must be finite and >= 0")
        if self.input_tokens is not None and not self.input_tokens >= 0:
            raise InvalidParameterError(f"input_tokens must be >= 0, got {self.input_tokens}")

    @classmethod
    def from_prices(
        cls,
        models: Sequence[str],
        table: PriceTable,
        *,
        mix: TokenMix | None = None,
        output_tokens: float = PAPER_MIX.output_tokens,
    ) -> CallCosts:
        """Each model's price from ``table`` (``UnknownPriceError`` for a missing one).

        ``mix`` fixes both token counts for every call (the paper's view: every
        call costs the blended price); without it the input is estimated per prompt.
        """
        prices = table.prices(models)
        return cls(
            models=tuple(models),
            input_prices=tuple(p.input for p in prices),
            output_prices=tuple(p.output for p in prices),
            output_tokens=output_tokens if mix is None else mix.output_tokens,
            input_tokens=None if mix is None else mix.input_tokens,
        )

    def input_token_counts(self, prompts: Sequence[str]) -> np.ndarray:
        """(n,) input tokens per call: fixed, or estimated from each prompt's text."""
        if self.input_tokens is not None:
            return np.full(len(prompts), float(self.input_tokens))
        from prefroute.tokens import message_tokens

        estimates = (message_tokens([{"role": "user", "content": p}]) for p in prompts)
        return np.fromiter(estimates, dtype=np.float64, count=len(prompts))

    def tokens(self, prompts: Sequence[str]) -> np.ndarray:
        """(n,) input plus output tokens per call (the same whichever model answers)."""
        return self.input_token_counts(prompts) + self.output_tokens

    def per_call(self, prompts: Sequence[str]) -> np.ndarray:
        """(n, N) $ per call of each prompt to each candidate."""
        tokens_in = self.input_token_counts(prompts)[:, None]
        price_in = np.asarray(self.input_prices, dtype=np.float64)[None, :]
        price_out = np.asarray(self.output_prices, dtype=np.float64)[None, :]
        return (tokens_in * price_in + self.output_tokens * price_out) / 1e6

    def subset(self, models: Sequence[str]) -> CallCosts:
        """The same costs for some of the candidates, in the order given."""
        index = [self._index(m) for m in models]
        return CallCosts(
            models=tuple(models),
            input_prices=tuple(self.input_prices[i] for i in index),
            output_prices=tuple(self.output_prices[i] for i in index),
            output_tokens=self.output_tokens,
            input_tokens=self.input_tokens,
        )

    def _index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise InvalidParameterError(
                f"{model!r} is not a candidate; the candidates are {list(self.models)}"
            ) from None


def budget_per_call(budget: float, unit: str, tokens: np.ndarray) -> float:
    """A budget as mean $ per call on prompts with these ``tokens`` per call.

    ``unit`` is one of ``BUDGET_UNITS``: $ per 1M tokens (of the calls' own
    input and output) or $ per 1,000 requests.
    """
    if not (np.isfinite(budget) and budget > 0):
        raise InvalidParameterError(f"a budget must be a positive number of $, got {budget}")
    if unit == "1k-requests":
        return budget / 1000.0
    if unit == "1m-tokens":
        return budget * float(np.mean(tokens)) / 1e6
    raise InvalidParameterError(f"unknown budget unit {unit!r}; expected one of {BUDGET_UNITS}")


# --------------------------------------------------------------------- choosing


def _check(quality: np.ndarray, costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(quality, dtype=np.float64)
    c = np.asarray(costs, dtype=np.float64)
    if q.ndim != 2 or q.shape != c.shape:
        raise InvalidParameterError(
            f"quality and costs must both be (prompts, models), got {q.shape} and {c.shape}"
        )
    if q.shape[1] == 0:
        raise InvalidParameterError("no candidate models: give at least one")
    if not (np.isfinite(q).all() and np.isfinite(c).all()):
        raise InvalidParameterError("qualities and costs must be finite numbers")
    return q, c


def choose(
    quality: np.ndarray,
    costs: np.ndarray,
    lam: float,
    offsets: Sequence[float] | np.ndarray | None = None,
) -> np.ndarray:
    """(n,) the index of each prompt's model: argmax of q + β − λc, ties to the cheaper."""
    q, c = _check(quality, costs)
    utility = _utility(q, c, lam, offsets)
    best = utility.max(axis=1, keepdims=True)
    return np.where(utility == best, c, np.inf).argmin(axis=1)


def _utility(
    q: np.ndarray, c: np.ndarray, lam: float, offsets: Sequence[float] | np.ndarray | None
) -> np.ndarray:
    utility = q - lam * c
    if offsets is not None and len(offsets):
        utility = utility + np.asarray(offsets, dtype=np.float64)[None, :]
    return utility


def threshold_for_lambda(lam: float, strong_cost: float, weak_cost: float) -> float:
    """The ``strong_win_rate`` threshold at which two-model routing makes the choices of
    the N = 2 policy at ``lam`` with these per-call costs: 1/2 + λ (c_s − c_w) / 2."""
    return 0.5 + 0.5 * lam * (strong_cost - weak_cost)


@dataclass(frozen=True, eq=False)
class Frontier:
    """Every prompt's choice at every λ ≥ 0, exactly.

    Per prompt, the choice as λ grows walks down the upper envelope of the lines
    q_m − λ c_m: from the best model at λ = 0 to ever cheaper ones. ``start`` is
    each prompt's model at λ = 0; an event e moves prompt ``prompt[e]`` from
    model ``old[e]`` to the cheaper ``new[e]`` once λ passes ``lam[e]``. Events
    are sorted by λ, so any mean over the prompts (cost, predicted or true
    quality, a model's share) is a step function swept in one cumulative sum.
    """

    start: np.ndarray
    lam: np.ndarray
    prompt: np.ndarray
    old: np.ndarray
    new: np.ndarray

    @classmethod
    def of(cls, quality: np.ndarray, costs: np.ndarray) -> Frontier:
        """The frontier of predicted ``quality`` (n, N) at ``costs`` (n, N).

        At most N - 1 steps, each over all prompts at once: ~N^2 n operations.
        """
        q, c = _check(quality, costs)
        n = len(q)
        rows = np.arange(n)
        # λ = 0: the best model, the cheapest of those that tie.
        current = np.where(q == q.max(axis=1, keepdims=True), c, np.inf).argmin(axis=1)
        start = current.copy()
        parts: list[tuple[np.ndarray, ...]] = []
        active = np.ones(n, dtype=bool)
        while active.any():
            idx = rows[active]
            cur = current[idx]
            q_cur, c_cur = q[idx, cur][:, None], c[idx, cur][:, None]
            cheaper = c[idx] < c_cur
            with np.errstate(divide="ignore", invalid="ignore"):
                switch = np.where(cheaper, (q_cur - q[idx]) / (c_cur - c[idx]), np.inf)
            at = switch.min(axis=1)
            found = np.isfinite(at)
            # Lines meeting at one λ: the cheapest of them takes over beyond it.
            nxt = np.where(switch == at[:, None], c[idx], np.inf).argmin(axis=1)
            parts.append((at[found], idx[found], cur[found], nxt[found]))
            current[idx[found]] = nxt[found]
            active[idx[~found]] = False
        if parts:
            lam, prompt, old, new = (np.concatenate(p) for p in zip(*parts, strict=True))
        else:
            lam = prompt = old = new = np.zeros(0)
        order = np.argsort(lam, kind="stable")
        return cls(
            start=start,
            lam=np.maximum(lam[order].astype(np.float64), 0.0),
            prompt=prompt[order].astype(np.int64),
            old=old[order].astype(np.int64),
            new=new[order].astype(np.int64),
        )

    @property
    def n_prompts(self) -> int:
        return len(self.start)

    def _group_ends(self) -> np.ndarray:
        """The last event at each distinct λ: the state once all of its events happened."""
        return np.flatnonzero(np.append(self.lam[1:] != self.lam[:-1], True))

    def sweep(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The mean of ``values[i, choice_i]`` over prompts, on every interval of λ.

        Returns ``(lams, means)`` of length K + 1: ``means[0]`` holds on
        [0, lams[1]), ``means[k]`` from ``lams[k]`` (a breakpoint) to the next;
        ``lams[0]`` is 0.
        """
        v = np.asarray(values, dtype=np.float64)
        n = self.n_prompts
        if v.shape[0] != n:
            raise InvalidParameterError(f"{v.shape[0]} rows of values for {n} prompts")
        first = v[np.arange(n), self.start].sum()
        if len(self.lam) == 0:
            return np.zeros(1), np.array([first / n])
        delta = v[self.prompt, self.new] - v[self.prompt, self.old]
        totals = first + np.cumsum(delta)
        last = self._group_ends()
        return np.concatenate([[0.0], self.lam[last]]), np.concatenate([[first], totals[last]]) / n

    def share_sweep(self, n_models: int) -> np.ndarray:
        """(K + 1, n_models) each model's share of the prompts on every interval of λ
        (the intervals of ``sweep``)."""
        n = self.n_prompts
        first = np.bincount(self.start, minlength=n_models).astype(np.float64)
        if len(self.lam) == 0:
            return (first / n)[None, :]
        delta = np.zeros((len(self.lam), n_models))
        steps = np.arange(len(self.lam))
        delta[steps, self.old] -= 1.0
        delta[steps, self.new] += 1.0
        totals = first + np.cumsum(delta, axis=0)
        last = self._group_ends()
        return np.vstack([first, totals[last]]) / n

    def choices_at(self, lam: float) -> np.ndarray:
        """(n,) each prompt's model once every event at or below ``lam`` has happened."""
        chosen = self.start.copy()
        k = int(np.searchsorted(self.lam, lam, side="right"))
        # events of one prompt come in λ order, so the last one applied wins
        chosen[self.prompt[:k]] = self.new[:k]
        return chosen


def _inside(lams: np.ndarray, k: int) -> float:
    """A λ inside interval ``k`` of a sweep (from ``lams[k]`` to the next breakpoint).

    The geometric middle of the interval, so a new prompt near the calibration
    ones sees a λ away from both ends; the last interval is open: twice its start.
    """
    lo = float(lams[k])
    if k + 1 >= len(lams):
        return 2.0 * lo if lo > 0 else 1.0
    hi = float(lams[k + 1])
    return float(np.sqrt(lo * hi)) if lo > 0 else hi / 2.0


def lambda_for_budget(frontier: Frontier, costs: np.ndarray, budget: float) -> float:
    """The smallest λ whose mean cost per call over the frontier's prompts is within
    ``budget`` ($ per call), i.e. the best predicted quality the budget buys.

    ``InvalidParameterError`` when even the cheapest model on every prompt
    costs more than the budget; 0 when the best models fit in it.
    """
    lams, mean_cost = frontier.sweep(costs)
    fits = np.flatnonzero(mean_cost <= budget * (1 + 1e-12))
    if len(fits) == 0:
        raise InvalidParameterError(
            f"a budget of ${budget * 1000:.4g} per 1k requests is below the cheapest mix on "
            f"these prompts (${mean_cost[-1] * 1000:.4g} per 1k requests: the cheapest "
            "candidate on every prompt)"
        )
    k = int(fits[0])
    return 0.0 if k == 0 else _inside(lams, k)


def lambda_for_quality(
    frontier: Frontier, costs: np.ndarray, true_quality: np.ndarray, target: float
) -> float:
    """The λ of the cheapest mix whose mean *true* quality on these prompts reaches
    ``target`` (the user's eval data: e.g. 0.95 of the best model's mean).

    ``InvalidParameterError`` when no λ reaches it.
    """
    lams, mean_cost = frontier.sweep(costs)
    _, quality = frontier.sweep(true_quality)
    reaches = np.flatnonzero(quality >= target - 1e-12)
    if len(reaches) == 0:
        raise InvalidParameterError(
            f"no mix of these models reaches quality {target:.4g} on these prompts: the "
            f"router's best is {quality.max():.4g}; lower the target"
        )
    k = int(reaches[np.argmin(mean_cost[reaches])])  # the first (smallest λ) of equals
    return 0.0 if k == 0 else _inside(lams, k)


def offsets_for_shares(quality: np.ndarray, shares: Sequence[float]) -> np.ndarray:
    """(N,) offsets β with which argmax(q + β) sends ``shares`` of the prompts to each model.

    λ = 0 (the shares fix the cost). Coordinate passes: each model's offset in
    turn is set to the one that gives it its share against the others' current
    offsets (a quantile of its margins); two models need one pass. Shares are
    met to the nearest prompt unless ties in the qualities make that impossible.
    Offsets are returned with the largest at 0.
    """
    q = np.asarray(quality, dtype=np.float64)
    target = np.asarray(shares, dtype=np.float64)
    if q.ndim != 2 or target.shape != (q.shape[1],):
        raise InvalidParameterError(
            f"need one share per model: {q.shape[1] if q.ndim == 2 else '?'} models, "
            f"{target.size} shares"
        )
    if (target < 0).any() or abs(target.sum() - 1.0) > 1e-6:
        raise InvalidParameterError(
            f"shares must be >= 0 and add up to 1, got {target.tolist()} (sum {target.sum():g})"
        )
    n, n_models = q.shape
    if n == 0:
        raise InvalidParameterError("need at least one prompt to calibrate shares on")
    counts = _whole_counts(target, n)
    beta = np.zeros(n_models)
    for _ in range(_SHARE_PASSES):
        for m in range(n_models):
            others = np.delete(q + beta, m, axis=1).max(axis=1) if n_models > 1 else None
            if others is None:
                continue
            margin = np.sort(others - q[:, m])  # model m wins where β_m > margin
            k = counts[m]
            if k == 0:
                beta[m] = margin[0] - 1.0
            elif k == n:
                beta[m] = margin[-1] + 1.0
            else:
                beta[m] = 0.5 * (margin[k - 1] + margin[k])
        got = np.bincount((q + beta).argmax(axis=1), minlength=n_models)
        if (got == counts).all():
            break
    return beta - beta.max()


def _whole_counts(shares: np.ndarray, n: int) -> np.ndarray:
    """Shares of n prompts as whole counts adding up to n (largest remainders)."""
    raw = shares * n
    counts = np.floor(raw).astype(np.int64)
    left = n - int(counts.sum())
    counts[np.argsort(-(raw - counts), kind="stable")[:left]] += 1
    return counts


# ---------------------------------------------------------------------- routing


@dataclass(frozen=True, eq=False)
class Decision:
    """A policy's choice for a batch of prompts, with what it was made from.

    ``chosen`` indexes ``models``; ``quality`` / ``cost`` / ``utility`` are
    (n, N). ``ranking`` orders each prompt's candidates from chosen to last
    choice: a server falls back along it when the chosen upstream fails.
    """

    models: tuple[str, ...]
    chosen: np.ndarray
    quality: np.ndarray
    cost: np.ndarray
    utility: np.ndarray

    @property
    def names(self) -> list[str]:
        return [self.models[i] for i in self.chosen.tolist()]

    @property
    def ranking(self) -> np.ndarray:
        """(n, N) candidate indices by utility, best first; ties to the cheaper."""
        return np.lexsort((self.cost, -self.utility), axis=-1)

    def shares(self) -> dict[str, float]:
        """Share of the prompts sent to each candidate."""
        return shares_of(self.chosen, self.models)

    def mean_cost(self) -> float:
        """Mean $ per call of the chosen models."""
        if len(self.chosen) == 0:
            return 0.0
        return float(self.cost[np.arange(len(self.chosen)), self.chosen].mean())


@dataclass(frozen=True)
class Policy:
    """An operating point: candidates with their costs, λ and offsets; routes prompts.

    Built by calibration (``prefroute.calibrate``) and stored in the artifact
    (``OperatingPoint``); ``route`` is what ``prefroute route --models`` and a
    server choosing among N upstreams call per batch.
    """

    costs: CallCosts
    lam: float = 0.0
    offsets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.offsets and len(self.offsets) != len(self.costs.models):
            raise InvalidParameterError(
                f"{len(self.offsets)} offsets for {len(self.costs.models)} candidate models"
            )
        if not np.isfinite(self.lam):
            raise InvalidParameterError(f"λ must be a finite number, got {self.lam}")

    @property
    def models(self) -> tuple[str, ...]:
        return self.costs.models

    @classmethod
    def from_operating_point(cls, point: OperatingPoint) -> Policy:
        """The policy an artifact stored (prices as they were at calibration)."""
        costs = CallCosts(
            models=point.models,
            input_prices=point.input_prices,
            output_prices=point.output_prices,
            output_tokens=point.output_tokens,
            input_tokens=point.input_tokens,
        )
        return cls(costs=costs, lam=point.lam, offsets=point.offsets)

    def decide(self, quality: np.ndarray, prompts: Sequence[str]) -> Decision:
        """The choice for prompts whose candidates' qualities are ``quality`` (n, N)."""
        cost = self.costs.per_call(prompts)
        q, c = _check(quality, cost)
        chosen = choose(q, c, self.lam, self.offsets or None)
        utility = _utility(q, c, self.lam, self.offsets or None)
        return Decision(self.models, chosen, q, c, utility)

    def route(self, router: Router, prompts: Sequence[str]) -> Decision:
        """Score the candidates with ``router`` (one batched call) and choose."""
        return self.decide(router.model_quality(prompts, self.models), prompts)


def shares_of(chosen: np.ndarray, models: Sequence[str]) -> dict[str, float]:
    """Share of prompts per model for an array of chosen indices."""
    counts = np.bincount(np.asarray(chosen, dtype=np.int64), minlength=len(models))
    total = max(int(counts.sum()), 1)
    return {m: float(c) / total for m, c in zip(models, counts.tolist(), strict=True)}
