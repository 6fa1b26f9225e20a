"""Evaluate routers among N models: what ``prefroute eval --models`` runs.

An N-model eval set is a table of prompts x candidate models: each model's
true quality on each prompt (a scores file: ``prompt, model, score|correct``)
and what calling it costs (list prices with a token estimate, or the set's own
per-call costs). Each router scores every candidate on every prompt once
(``model_quality``); the λ policy's whole curve follows exactly
(``cost_quality.policy_curve``), and is measured against the single models,
their hull (what random mixing of them buys), and the oracle.

Per router it reports AIQ over the candidates' cost range, its quality at the
best single model's cost, and the cost at which it matches that model's
quality (or that it never does), for the N-model policy and for the best
two-model router (the same router's qualities, between the best and the
cheapest model only).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.errors import DataError, EvalError
from prefroute.evals.cost_quality import CostCurve, Hull, hull, oracle_curve, policy_curve
from prefroute.policy import CallCosts
from prefroute.routers.base import Router

if TYPE_CHECKING:
    import polars as pl

    from prefroute.prices import PriceTable

__all__ = [
    "ModelSet",
    "ModelsResult",
    "RouterCurves",
    "Summary",
    "evaluate_models",
    "measure",
    "model_set",
    "models_file",
    "references",
]

BATCH = 512
"""Prompts per ``model_quality`` call."""


@dataclass(frozen=True, eq=False)
class ModelSet:
    """Prompts with every candidate's true quality and per-call cost.

    ``quality`` and ``costs`` are (prompts, models); ``cost_source`` says where
    the costs came from (shown in every report); ``dropped`` counts prompts
    left out, by reason.
    """

    name: str
    prompt_ids: tuple[str, ...]
    prompts: tuple[str, ...]
    models: tuple[str, ...]
    quality: np.ndarray
    costs: np.ndarray
    cost_source: str
    dropped: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, n_models = len(self.prompts), len(self.models)
        if len(self.prompt_ids) != n or self.quality.shape != (n, n_models):
            raise ValueError(f"{self.name}: ids, prompts and qualities differ in size")
        if self.costs.shape != (n, n_models):
            raise ValueError(f"{self.name}: costs {self.costs.shape}, qualities {(n, n_models)}")
        if n == 0:
            dropped = ", ".join(f"{c:,} {why}" for why, c in self.dropped.items()) or "none"
            raise EvalError(f"{self.name}: no prompts left to evaluate on (dropped: {dropped})")
        if n_models < 2:
            raise EvalError(
                f"{self.name}: choosing among models needs at least two, got {n_models}"
            )

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def mean_cost(self) -> np.ndarray:
        return self.costs.mean(axis=0)

    @property
    def mean_quality(self) -> np.ndarray:
        return self.quality.mean(axis=0)

    @property
    def best(self) -> int:
        """The best single model (highest mean quality; the cheaper of equals)."""
        q = self.mean_quality
        return int(np.where(q == q.max(), self.mean_cost, np.inf).argmin())

    @property
    def cheapest(self) -> int:
        """The cheapest single model (lowest mean cost; the better of equals)."""
        c = self.mean_cost
        return int(np.where(c == c.min(), -self.mean_quality, np.inf).argmin())

    @property
    def cost_range(self) -> tuple[float, float]:
        """The candidates' cost range AIQ is taken over: cheapest to dearest mean cost."""
        return float(self.mean_cost.min()), float(self.mean_cost.max())

    def subset(self, rows: np.ndarray, name: str | None = None) -> ModelSet:
        """The set on some of its prompts (e.g. a held-out half)."""
        return ModelSet(
            name=name or self.name,
            prompt_ids=tuple(self.prompt_ids[i] for i in rows),
            prompts=tuple(self.prompts[i] for i in rows),
            models=self.models,
            quality=self.quality[rows],
            costs=self.costs[rows],
            cost_source=self.cost_source,
            dropped=self.dropped,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_prompts": len(self),
            "cost_source": self.cost_source,
            "dropped": dict(self.dropped),
            "models": [
                {"model": m, "quality": float(q), "cost_per_1k_requests": 1000 * float(c)}
                for m, q, c in zip(self.models, self.mean_quality, self.mean_cost, strict=True)
            ],
            "best": self.models[self.best],
            "cheapest": self.models[self.cheapest],
        }


def model_set(
    scores: pl.DataFrame,
    models: Sequence[str] | None,
    costs: CallCosts | pl.DataFrame,
    *,
    name: str,
    cost_source: str,
) -> ModelSet:
    """A (prompts x models) set from long scores ``prompt_id, prompt, model, score``.

    ``models`` are the candidates (None: every model in the scores). A model's
    several scores on one prompt are averaged. A prompt lacking a candidate's
    score is dropped and counted (naming the model). ``costs`` is a
    ``CallCosts`` (prices and a token estimate) for the candidates, or a frame
    ``prompt_id, model, cost`` of $ per call (the set's own).
    """
    import polars as pl

    present = sorted(scores["model"].unique().to_list())
    chosen = list(present if models is None else models)
    missing = [m for m in chosen if m not in present]
    if missing:
        raise EvalError(
            f"{name}: no scores for {', '.join(missing)}; the file has {', '.join(present)}"
        )
    means = (
        scores.filter(pl.col("model").is_in(chosen))
        .group_by("prompt_id", "model")
        .agg(pl.col("score").mean())
        .pivot(on="model", index="prompt_id", values="score")
    )
    prompts = scores.unique("prompt_id", keep="first").select("prompt_id", "prompt")
    wide = prompts.join(means, on="prompt_id", how="left")
    if not isinstance(costs, CallCosts):
        own = (
            costs.filter(pl.col("model").is_in(chosen))
            .group_by("prompt_id", "model")
            .agg(pl.col("cost").mean())
            .pivot(on="model", index="prompt_id", values="cost")
            .rename({m: _cost_column(m) for m in chosen})
        )
        wide = wide.join(own, on="prompt_id", how="left")
    dropped: dict[str, int] = {}
    for model in chosen:
        columns = [model] if isinstance(costs, CallCosts) else [model, _cost_column(model)]
        lacking = pl.any_horizontal(pl.col(c).is_null() for c in columns)
        count = int(wide.select(lacking.sum()).item())
        if count:
            what = "score" if isinstance(costs, CallCosts) else "score or cost"
            dropped[f"no {what} for {model}"] = count
            wide = wide.filter(~lacking)
    wide = wide.sort("prompt_id")
    texts = wide["prompt"].to_list()
    if isinstance(costs, CallCosts):
        call_costs = costs.subset(chosen).per_call(texts) if texts else np.zeros((0, len(chosen)))
    else:
        call_costs = wide.select([_cost_column(m) for m in chosen]).to_numpy().astype(np.float64)
    return ModelSet(
        name=name,
        prompt_ids=tuple(wide["prompt_id"].to_list()),
        prompts=tuple(texts),
        models=tuple(chosen),
        quality=wide.select(chosen).to_numpy().astype(np.float64),
        costs=call_costs,
        cost_source=cost_source,
        dropped=dropped,
    )


def _cost_column(model: str) -> str:
    """The wide table's cost column of a model (canonical names have no spaces)."""
    return f"{model} (cost)"


def models_file(
    path: str | Path,
    models: Sequence[str] | None,
    prices: PriceTable,
    *,
    output_tokens: float,
    within: Collection[str] | None = None,
) -> ModelSet:
    """A user's scores file (``prompt, model, score|correct``) as an N-model set, priced
    from ``prices`` with each prompt's input tokens estimated and ``output_tokens``
    per answer. ``models`` None: every model in the file (each needs a price), or of
    those, the ones in ``within`` (e.g. the models a router learned)."""
    import polars as pl

    from prefroute.data.model_names import canonical_name
    from prefroute.data.readers import read_scores

    frame = read_scores(path).table.frame.with_columns(
        pl.coalesce("prompt_id", "prompt").alias("prompt_id")
    )
    present = sorted(frame["model"].unique().to_list())
    if models is None:
        chosen = [m for m in present if within is None or m in within]
    else:
        chosen = [canonical_name(m) for m in models]
    unknown = [m for m in chosen if m not in present]
    if unknown:
        raise DataError.file(
            path, f"records for model(s) {', '.join(unknown)}", f"only {', '.join(present)}"
        )
    costs = CallCosts.from_prices(chosen, prices, output_tokens=output_tokens)
    source = (
        f"list prices ({', '.join(prices.sources)}), input tokens estimated from each "
        f"prompt's text, {output_tokens:g} output tokens per call"
    )
    return model_set(frame, chosen, costs, name=Path(path).name, cost_source=source)


# ------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Summary:
    """One hull's headline numbers on a set (costs in $ per call)."""

    aiq: float
    quality_at_best_cost: float
    cost_to_match_best: float | None

    @classmethod
    def of(cls, h: Hull, s: ModelSet) -> Summary:
        low, high = s.cost_range
        best = s.best
        return cls(
            aiq=h.aiq(low, high),
            quality_at_best_cost=float(h.at(s.mean_cost[best])),
            cost_to_match_best=h.cost_to_reach(float(s.mean_quality[best])),
        )

    def to_dict(self, s: ModelSet) -> dict[str, Any]:
        best_cost = float(s.mean_cost[s.best])
        match = self.cost_to_match_best
        return {
            "aiq": self.aiq,
            "quality_at_best_cost": self.quality_at_best_cost,
            "cost_to_match_best_per_1k_requests": None if match is None else 1000 * match,
            "cost_to_match_best_share_of_its_cost": None if match is None else match / best_cost,
        }


@dataclass(frozen=True, eq=False)
class RouterCurves:
    """One router on one set: its N-model policy curve and its best-vs-cheapest curve."""

    label: str
    kind: str
    curve: CostCurve
    summary: Summary
    two_model: CostCurve | None
    two_model_summary: Summary | None
    seconds: float


@dataclass(frozen=True, eq=False)
class ModelsResult:
    """Every router on one N-model set, with the single models, their hull and the oracle."""

    eval_set: ModelSet
    routers: tuple[RouterCurves, ...]
    singles: Hull
    singles_summary: Summary
    oracle: CostCurve
    oracle_summary: Summary

    def to_dict(self) -> dict[str, Any]:
        s = self.eval_set

        def curve(c: CostCurve) -> dict[str, Any]:
            return {
                "cost_per_1k_requests": (1000 * c.cost).tolist(),
                "quality": c.quality.tolist(),
                "lambda": c.lam.tolist(),
            }

        return {
            "set": s.to_dict(),
            "cost_range_per_1k_requests": [1000 * c for c in s.cost_range],
            "routers": [
                {
                    "router": r.label,
                    "kind": r.kind,
                    "seconds": round(r.seconds, 3),
                    **r.summary.to_dict(s),
                    "curve": curve(r.curve),
                    "two_model": None
                    if r.two_model is None or r.two_model_summary is None
                    else {
                        "models": [s.models[s.best], s.models[s.cheapest]],
                        **r.two_model_summary.to_dict(s),
                        "curve": curve(r.two_model),
                    },
                }
                for r in self.routers
            ],
            "singles_hull": self.singles_summary.to_dict(s),
            "oracle": {**self.oracle_summary.to_dict(s), "curve": curve(self.oracle)},
        }


def _scores(router: Router, s: ModelSet) -> np.ndarray:
    """The router's qualities for every prompt and candidate, in batches."""
    out = np.empty((len(s), len(s.models)))
    for start in range(0, len(s), BATCH):
        batch = list(s.prompts[start : start + BATCH])
        q = np.asarray(router.model_quality(batch, s.models), dtype=np.float64)
        if q.shape != (len(batch), len(s.models)):
            raise EvalError(
                f"{router.kind} router returned {q.shape} qualities for {len(batch)} prompts "
                f"and {len(s.models)} models"
            )
        out[start : start + len(batch)] = q
    return out


def measure(
    label: str, kind: str, predicted: np.ndarray, s: ModelSet, seconds: float = 0.0
) -> RouterCurves:
    """The curves and summaries of a router's predicted qualities on ``s``."""
    curve = policy_curve(predicted, s.costs, s.quality)
    pair = [s.best, s.cheapest]
    two = None
    if s.best != s.cheapest:
        two = policy_curve(predicted[:, pair], s.costs[:, pair], s.quality[:, pair])
    return RouterCurves(
        label=label,
        kind=kind,
        curve=curve,
        summary=Summary.of(curve.hull, s),
        two_model=two,
        two_model_summary=None if two is None else Summary.of(two.hull, s),
        seconds=seconds,
    )


def references(s: ModelSet) -> tuple[Hull, Summary, CostCurve, Summary]:
    """The singles hull and the oracle curve of a set, with their summaries."""
    singles = hull(s.mean_cost, s.mean_quality)
    oracle = oracle_curve(s.costs, s.quality)
    return singles, Summary.of(singles, s), oracle, Summary.of(oracle.hull, s)


def evaluate_models(routers: Mapping[str, Router], s: ModelSet) -> ModelsResult:
    """Score every router's candidates on the set once and measure its curves."""
    measured = []
    for label, router in routers.items():
        started = time.perf_counter()
        predicted = _scores(router, s)
        seconds = time.perf_counter() - started
        measured.append(measure(label, router.kind, predicted, s, seconds))
    singles, singles_summary, oracle, oracle_summary = references(s)
    return ModelsResult(s, tuple(measured), singles, singles_summary, oracle, oracle_summary)
