"""Thresholds that mean something on the user's traffic.

A raw threshold (``router-mf-0.1159``) is meaningless on its own; users ask
for "30% of calls to the strong model", "at most $X per 1M tokens" or "keep
95% of the strong model's quality". The first two reduce to a strong-call
share, and a share to the threshold that sends that share of a set of
calibration prompts to the strong model. A quality target needs labels: on
the user's eval file, the cheapest threshold (fewest strong calls) whose mix
keeps the target, either as a share of the strong model's mean quality
(``--quality 0.95``) or of the gap between the two models (``--gap-recovered
0.8``, the paper's PGR).

Among N models the same targets (a budget, a quality target, shares per model)
fix the λ of the policy ``prefroute.policy`` (``operating_point``), stored in
the artifact by name (``calibrate_models``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prefroute.errors import EvalError, InvalidParameterError

if TYPE_CHECKING:
    from prefroute.evals.benchmarks import EvalSet
    from prefroute.policy import CallCosts
    from prefroute.routers.artifact import OperatingPoint, QualityTarget
    from prefroute.routers.base import Router


def strong_share(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """Share of prompts whose score reaches ``threshold`` (those go to the strong model)."""
    values = np.asarray(scores, dtype=np.float64)
    return float((values >= threshold).mean()) if values.size else 0.0


def threshold_for_share(scores: Sequence[float] | np.ndarray, share: float) -> float:
    """The threshold that sends as close to ``share`` of these prompts to the strong model.

    Candidates are the distinct scores themselves (plus one above the maximum,
    for share 0), so ties never split: a group of equal scores goes one way.
    Among equally close candidates the higher threshold wins (fewer strong calls).
    """
    if not 0.0 <= share <= 1.0:
        raise InvalidParameterError(f"share must be in [0, 1], got {share}")
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise InvalidParameterError("need at least one calibration score")
    distinct = np.unique(values)  # ascending
    above = np.nextafter(distinct[-1], np.inf)
    candidates = np.append(distinct, above)
    # share reached by each candidate: count of scores >= it
    counts = values.size - np.searchsorted(np.sort(values), candidates, side="left")
    error = np.abs(counts / values.size - share)
    best = np.flatnonzero(error == error.min())[-1]
    return float(candidates[best])


def share_for_budget(budget: float, strong_cost: float, weak_cost: float) -> float:
    """Strong share whose blended price per 1M tokens equals ``budget``, clipped to [0, 1].

    ``strong_cost``/``weak_cost`` are the pair's blended prices (``Price.blended`` at
    a token mix); assumes calls of similar length on both sides.
    """
    if strong_cost <= weak_cost:
        raise InvalidParameterError(
            f"strong model cost ({strong_cost:.4g}) must exceed the weak model's "
            f"({weak_cost:.4g}) for a budget to pick a share"
        )
    if budget < weak_cost:
        raise InvalidParameterError(
            f"budget ${budget:g}/1M tokens is below the weak model's own price ${weak_cost:.4g}"
        )
    return float(min(1.0, (budget - weak_cost) / (strong_cost - weak_cost)))


def calibration_table(scores: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Threshold for every whole-percent strong share, 0 to 100 (the index is the percent).

    Stored in the artifact (``Calibration.thresholds``), it serves
    ``router-<kind>@<share>%`` without re-scoring the calibration prompts.
    """
    from prefroute.routers.artifact import SHARES

    return tuple(threshold_for_share(scores, p / 100) for p in range(SHARES))


def threshold_for_quality(
    scores: Sequence[float] | np.ndarray,
    strong: Sequence[float] | np.ndarray,
    weak: Sequence[float] | np.ndarray,
    target: float,
    *,
    measure: str = "quality",
) -> tuple[float, float, float]:
    """The cheapest threshold keeping ``target`` on labelled prompts:
    ``(threshold, strong share, reached)``.

    ``measure="quality"``: the mix's mean quality reaches ``target`` times the
    strong model's (qualities >= 0); ``"gap"``: it recovers ``target`` of the
    gap between the two models (PGR). Only thresholds a router can apply are
    candidates (a tied group goes one way), and the one with the fewest strong
    calls wins; share 1 always qualifies, so one exists.
    """
    from prefroute.evals.metrics import curve

    if not 0.0 < target <= 1.0:
        raise InvalidParameterError(f"a quality target must be in (0, 1], got {target}")
    c = curve(scores, strong, weak)
    if measure == "quality":
        if c.r_strong <= 0:
            raise EvalError(
                f"the strong model's mean quality is {c.r_strong:.4g}, so a share of it means "
                "nothing; give the target as a share of the gap (--gap-recovered)"
            )
        reached = c.quality / c.r_strong
    elif measure == "gap":
        if c.r_strong < c.r_weak:
            raise EvalError(
                f"the strong model is worse than the weak one on these prompts ({c.r_strong:.4g} "
                f"vs {c.r_weak:.4g}), so there is no gap to recover; check which model is strong"
            )
        reached = c.pgr
    else:
        raise InvalidParameterError(f"measure must be 'quality' or 'gap', got {measure!r}")
    j = int(np.argmax(reached >= target - 1e-12))  # the first point that keeps it
    threshold = float(c.thresholds[j])
    if not np.isfinite(threshold):  # share 0: above every score
        threshold = float(np.nextafter(np.max(np.asarray(scores, dtype=np.float64)), np.inf))
    return threshold, float(c.share[j]), float(reached[j])


@dataclass(frozen=True)
class Calibrated:
    """What ``calibrate_artifact`` stored: the reloaded router, the share table's
    scores and prompts, and the quality targets measured on ``eval_set``."""

    router: Router
    scores: np.ndarray
    prompts: str
    eval_set: EvalSet | None = None
    targets: tuple[QualityTarget, ...] = ()


def calibrate_artifact(
    artifact: str | Path,
    *,
    prompts: str | Path | None = None,
    eval_file: str | Path | None = None,
    quality: Sequence[float] = (),
    gap_recovered: Sequence[float] = (),
    skip_bad: bool = False,
    data_dir: str | Path | None = None,
) -> Calibrated:
    """Score calibration prompts with a saved router and store its threshold table,
    and the quality targets asked for, measured on ``eval_file``.

    The table's prompts: ``prompts``, else the eval file's (the user's own
    traffic), else the shipped real Arena prompts (real traffic, not the
    benchmarks). ``quality`` / ``gap_recovered`` targets need ``eval_file``, with
    labels for the router's pair (scores or battles, as ``prefroute eval`` reads
    them). Targets stored before are kept unless one of the same name is
    measured again: a refit or retarget already dropped them with the table.
    """
    from prefroute.data import shipped
    from prefroute.data.location import data_dir as resolve_data_dir
    from prefroute.data.prompts import read_prompts
    from prefroute.evals.benchmarks import eval_file as read_eval_file
    from prefroute.routers.artifact import Calibration, QualityTarget, update_config
    from prefroute.routers.base import Router

    asked = [("quality", q) for q in quality] + [("gap", g) for g in gap_recovered]
    if asked and eval_file is None:
        raise InvalidParameterError(
            "a quality target is measured on labelled prompts: give --eval-file with scores "
            "or battles of the router's pair"
        )
    router = Router.load(artifact)
    eval_set = None
    if eval_file is not None:
        eval_set = read_eval_file(
            eval_file, router.strong_model, router.weak_model, skip_bad=skip_bad
        )
    if prompts is not None:
        texts, described = read_prompts(prompts)[1], str(prompts)
    elif eval_set is not None:
        texts, described = list(eval_set.prompts), f"eval file {eval_file}"
    else:
        texts = shipped.arena_prompts(resolve_data_dir(data_dir))
        described = "shipped real Chatbot Arena prompts"
    scores = router.strong_win_rate(texts)
    targets: list[QualityTarget] = []
    if eval_file is not None and eval_set is not None and asked:
        labelled = scores if prompts is None else router.strong_win_rate(list(eval_set.prompts))
        for measure, target in asked:
            threshold, share, reached = threshold_for_quality(
                labelled, eval_set.strong_quality, eval_set.weak_quality, target, measure=measure
            )
            targets.append(
                QualityTarget(
                    measure, target, threshold, share, reached, Path(eval_file).name, len(eval_set)
                )
            )
    previous = getattr(router, "calibration_", None)
    names = {t.name for t in targets}
    kept = tuple(t for t in (previous.targets if previous else ()) if t.name not in names)
    calibration = Calibration(
        thresholds=calibration_table(scores),
        prompts=described,
        n_prompts=len(texts),
        targets=tuple(sorted(kept + tuple(targets), key=lambda t: (t.measure, t.target))),
    )
    update_config(artifact, calibration=calibration)
    router.calibration_ = calibration
    return Calibrated(router, scores, described, eval_set, tuple(targets))


# ------------------------------------------------------------- among N models


def operating_point(
    quality: np.ndarray,
    prompts: Sequence[str],
    costs: CallCosts,
    *,
    budget: float | None = None,
    budget_unit: str = "1m-tokens",
    quality_target: float | None = None,
    true_quality: np.ndarray | None = None,
    shares: Mapping[str, float] | None = None,
    name: str | None = None,
    described: str | None = None,
) -> OperatingPoint:
    """The λ (or offsets) that meets one target on these prompts, as a storable point.

    ``quality`` is the router's (prompts x candidates) ``model_quality``. Give
    exactly one target:

    - ``budget``: mean cost within ``budget`` $ per 1M tokens or per 1,000
      requests (``budget_unit``), at the best predicted quality that buys;
    - ``quality_target`` with ``true_quality`` (the user's eval scores for the same
      prompts and candidates): the cheapest mix whose mean true quality keeps
      ``quality_target`` (e.g. 0.95) of the best single model's;
    - ``shares``: model -> share of calls (adding up to 1), by offsets at λ = 0.
    """
    from prefroute.policy import (
        BUDGET_UNITS,
        Frontier,
        Policy,
        budget_per_call,
        lambda_for_budget,
        lambda_for_quality,
        offsets_for_shares,
    )
    from prefroute.routers.artifact import OperatingPoint

    given = [t for t in (budget, quality_target, shares) if t is not None]
    if len(given) != 1:
        raise InvalidParameterError(
            "give exactly one target: a budget, a quality target (with eval scores) or shares"
        )
    if budget_unit not in BUDGET_UNITS:
        raise InvalidParameterError(
            f"unknown budget unit {budget_unit!r}; expected one of {BUDGET_UNITS}"
        )
    per_call = costs.per_call(prompts)
    tokens = costs.tokens(prompts)
    lam, offsets = 0.0, ()
    if budget is not None:
        unit = "1M tokens" if budget_unit == "1m-tokens" else "1k requests"
        allowed = budget_per_call(budget, budget_unit, tokens)
        cheapest = float(per_call.min(axis=1).mean())
        if allowed < cheapest:
            least = cheapest * (1000 if budget_unit == "1k-requests" else 1e6 / tokens.mean())
            raise InvalidParameterError(
                f"a budget of ${budget:g} per {unit} is below the cheapest mix of these "
                f"models on these {len(prompts):,} prompts: ${least:.4g} per {unit} (the "
                "cheapest candidate on every prompt); raise the budget or add a cheaper model"
            )
        lam = lambda_for_budget(Frontier.of(quality, per_call), per_call, allowed)
        target = f"budget: ${budget:g} per {unit}"
        default_name = f"budget-{budget:g}" + ("" if budget_unit == "1m-tokens" else "-per-1k")
    elif quality_target is not None:
        if true_quality is None:
            raise InvalidParameterError("a quality target needs the eval scores (true_quality)")
        if not 0.0 < quality_target <= 1.0:
            raise InvalidParameterError(
                f"a quality target is a share of the best model's quality in (0, 1], "
                f"got {quality_target}"
            )
        means = np.asarray(true_quality, dtype=np.float64).mean(axis=0)
        best = int(means.argmax())
        lam = lambda_for_quality(
            Frontier.of(quality, per_call), per_call, true_quality, quality_target * means[best]
        )
        target = (
            f"quality: {quality_target:.0%} of {costs.models[best]}'s mean quality "
            f"({means[best]:.4g}) on the eval data"
        )
        default_name = f"quality-{quality_target * 100:g}"
    else:
        assert shares is not None
        unknown = sorted(set(shares) - set(costs.models))
        if unknown:
            raise InvalidParameterError(
                f"shares for models that are not candidates: {unknown}; candidates: "
                f"{list(costs.models)}"
            )
        wanted = [float(shares.get(m, 0.0)) for m in costs.models]
        offsets = tuple(offsets_for_shares(quality, wanted).tolist())
        target = "shares: " + ", ".join(f"{m} {s:.0%}" for m, s in shares.items())
        default_name = "shares"
    decision = Policy(costs=costs, lam=lam, offsets=offsets).decide(quality, prompts)
    mean_cost = decision.mean_cost()
    return OperatingPoint(
        name=name or default_name,
        models=costs.models,
        lam=lam,
        input_prices=costs.input_prices,
        output_prices=costs.output_prices,
        output_tokens=costs.output_tokens,
        input_tokens=costs.input_tokens,
        offsets=offsets,
        target=target,
        prompts=described,
        n_prompts=len(prompts),
        cost_per_1m_tokens=1e6 * mean_cost / float(np.mean(tokens)) if len(tokens) else None,
        cost_per_1k_requests=1000 * mean_cost,
        shares=decision.shares(),
    )


def calibrate_models(
    artifact: str | Path,
    *,
    models: Sequence[str] | None,
    budget: float | None = None,
    budget_unit: str = "1m-tokens",
    quality_target: float | None = None,
    eval_file: str | Path | None = None,
    shares: Mapping[str, float] | None = None,
    prompts: str | Path | None = None,
    prices: Sequence[str | Path] = (),
    output_tokens: float | None = None,
    name: str | None = None,
    data_dir: str | Path | None = None,
) -> tuple[Router, OperatingPoint]:
    """Calibrate an N-model operating point of a saved router and store it (by name).

    ``models`` are the candidates (None: every model the router learned; each
    needs a price, from the shipped table and ``prices`` files). A budget or
    shares are met on the calibration ``prompts`` (default: the shipped real
    Arena prompts); a quality target on ``eval_file``'s prompts and scores. A
    point of the same name is replaced. Returns the reloaded router and the point.
    """
    from prefroute.data import shipped
    from prefroute.data.location import data_dir as resolve_data_dir
    from prefroute.data.prompts import read_prompts
    from prefroute.policy import CallCosts
    from prefroute.prices import PAPER_MIX, price_table
    from prefroute.routers.artifact import update_config
    from prefroute.routers.base import Router

    router = Router.load(artifact)
    candidates, _ = router.candidate_index(models)
    table = price_table(prices)
    tokens_out = PAPER_MIX.output_tokens if output_tokens is None else output_tokens
    costs = CallCosts.from_prices(candidates, table, output_tokens=tokens_out)
    true_quality = None
    if quality_target is not None:
        if eval_file is None:
            raise InvalidParameterError("a quality target needs --eval-file (your scores)")
        from prefroute.evals.n_models import models_file

        eval_set = models_file(eval_file, candidates, table, output_tokens=tokens_out)
        texts, true_quality = list(eval_set.prompts), eval_set.quality
        described = f"{eval_file} ({eval_set.cost_source})"
    elif prompts is None:
        texts = shipped.arena_prompts(resolve_data_dir(data_dir))
        described = "shipped real Chatbot Arena prompts"
    else:
        texts = read_prompts(prompts)[1]
        described = str(prompts)
    quality = router.model_quality(texts, candidates)
    point = operating_point(
        quality,
        texts,
        costs,
        budget=budget,
        budget_unit=budget_unit,
        quality_target=quality_target,
        true_quality=true_quality,
        shares=shares,
        name=name,
        described=described,
    )
    kept = tuple(p for p in getattr(router, "operating_points_", ()) if p.name != point.name)
    router.operating_points_ = tuple(sorted((*kept, point), key=lambda p: p.name))
    update_config(artifact, operating_points=router.operating_points_)
    return router, point
